//! `bund`: Bund's command line. `serve` runs the Flight SQL server, `check` validates a
//! configuration directory without serving, `example-data` writes the Shanghai example's
//! synthetic data, `hash-password` makes a password hash for `security.toml`.
//!
//! bund-server is the only crate that knows tonic, HTTP and the command line.

mod audit;
mod auth;
mod error;
mod executor;
mod guarded;
mod logins;
mod metadata;
mod query;
mod reload;
mod service;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arrow_flight::flight_service_server::FlightServiceServer;
use bund_catalogs::{Catalog, LoadOptions};
use bund_planner::Engine;
use clap::{Parser, Subcommand};

const DEFAULT_CONFIG: &str = "examples/shanghai";
const DEFAULT_ADDR: &str = "127.0.0.1:50051";
/// How long open connections may drain after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// Largest message a client may send: a statement (`max_statement_kb`, 4 MiB by default)
/// or one message of bound parameters (`max_parameter_kb`), with room to spare.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

#[derive(Parser)]
#[command(
    name = "bund",
    version,
    about = "Bund: SQL federation for a city's data platform, served over Arrow Flight SQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the catalog over Arrow Flight SQL.
    Serve {
        /// Directory with catalog.toml, security.toml and the optional server.toml.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Address to listen on; port 0 picks a free port (the address is printed).
        #[arg(long, default_value = DEFAULT_ADDR)]
        flight_addr: SocketAddr,
        /// Directory that relative file locations are read from [default: CONFIG/data].
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Residents to generate when the Shanghai example's data is absent.
        #[arg(long, default_value_t = 1_000_000)]
        example_rows: u64,
    },
    /// Validate a configuration directory without serving; exits 1 listing every error.
    Check {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Write the Shanghai example's deterministic synthetic data.
    ExampleData {
        /// Residents; every other table scales with it.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print an argon2id hash of a password (read from standard input) for security.toml.
    HashPassword,
    /// Create an API key for a service account: prints the key (give it to the client, who
    /// sends it in the `x-api-key` header) and the line for security.toml (its SHA-256 only).
    NewApiKey {
        /// A name for the key, to tell keys apart and revoke one.
        #[arg(long, default_value = "key1")]
        id: String,
    },
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("BUND_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn load_options(config: &Path, data_dir: Option<PathBuf>) -> LoadOptions {
    LoadOptions {
        config_dir: config.to_path_buf(),
        data_dir: data_dir.unwrap_or_else(|| config.join("data")),
    }
}

async fn load(opts: &LoadOptions) -> anyhow::Result<Catalog, ExitCode> {
    match Catalog::load(opts).await {
        Ok(c) => Ok(c),
        Err(bund_catalogs::Error::Invalid(errors)) => {
            eprintln!(
                "bund: {} has {} error(s):",
                opts.config_dir.display(),
                errors.len()
            );
            for e in &errors.0 {
                eprintln!("  - {e}");
            }
            Err(ExitCode::from(1))
        }
        Err(e) => {
            eprintln!("bund: {e}");
            Err(ExitCode::from(1))
        }
    }
}

/// The Shanghai example generates its data on first run; other catalogs never do.
fn is_shanghai_example(config: &Path) -> bool {
    config
        .canonicalize()
        .is_ok_and(|p| p.ends_with(DEFAULT_CONFIG))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!(
        "shutting down: no new connections; open ones get {} s to finish",
        SHUTDOWN_GRACE.as_secs()
    );
}

async fn serve(
    config: PathBuf,
    addr: SocketAddr,
    data_dir: Option<PathBuf>,
    example_rows: u64,
) -> anyhow::Result<ExitCode> {
    let opts = load_options(&config, data_dir);
    let existing = bund_example_data::existing(&opts.data_dir);
    if is_shanghai_example(&config) && !existing.is_some_and(|(_, current)| current) {
        // Absent, or written by an older bund in another layout: (re)generate it.
        let residents = existing.map_or(example_rows, |(n, _)| n);
        eprintln!(
            "bund: {} the Shanghai example's data ({residents} residents) in {}",
            if existing.is_some() {
                "regenerating (made by an older bund)"
            } else {
                "generating"
            },
            opts.data_dir.display()
        );
        let example_rows = residents;
        let out = opts.data_dir.clone();
        let counts = tokio::task::spawn_blocking(move || {
            bund_example_data::generate(&bund_example_data::ExampleData {
                residents: example_rows,
                out,
            })
        })
        .await
        .context("example data generator")??;
        for (table, rows) in counts {
            eprintln!("bund:   {table}: {rows} rows");
        }
    }
    let catalog = match load(&opts).await {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    for w in &catalog.warnings {
        tracing::warn!("{w}");
    }
    for w in bund_catalogs::derivable_masks(&catalog) {
        tracing::warn!("{w}");
    }
    tracing::info!(
        datasets = catalog.datasets.len(),
        principals = catalog.security.len(),
        "catalog loaded"
    );
    let audit_dir = catalog.settings.audit_dir(&opts.data_dir);
    let log = audit::AuditLog::open(
        &audit_dir,
        audit::AuditSettings {
            max_file_bytes: catalog.settings.audit_max_file_bytes,
            max_files: catalog.settings.audit_max_files,
            retention: catalog.settings.audit_retention,
            records_per_minute: catalog.settings.audit_records_per_minute,
        },
    )
    .with_context(|| format!("cannot open the audit log in {}", audit_dir.display()))?;
    audit::install(log);
    tracing::info!(dir = %audit_dir.display(), "audit log open");
    let executors = Arc::new(
        executor::Executors::new(&catalog.settings).context("cannot start the query threads")?,
    );
    let logins = logins::Logins::new(catalog.settings.max_concurrent_logins)
        .context("cannot start the login threads")?;
    let engine = Arc::new(Engine::new(Arc::new(catalog)));
    let service = service::BundService::new(engine, auth::Signer::from_env(), executors, logins);
    reload::spawn(opts.clone(), service.engine_slot());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    println!("bund: serving Flight SQL on grpc://{local}");
    std::io::stdout().flush()?;
    let server = FlightServiceServer::new(guarded::Guarded(service))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(usize::MAX);
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let mut graceful = stopping;
    let serving = tonic::transport::Server::builder()
        .add_service(server)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            async move {
                let _ = graceful.wait_for(|s| *s).await;
            },
        );
    tokio::select! {
        result = serving => result.context("Flight SQL server failed")?,
        () = async {
            shutdown_signal().await;
            let _ = stopping_tx.send(true);
            // Clients that keep their connections open do not hold the process hostage.
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!("connections still open {} s after the signal; stopping anyway", SHUTDOWN_GRACE.as_secs()),
    }
    audit::flush(std::time::Duration::from_secs(2));
    eprintln!("bund: stopped");
    Ok(ExitCode::SUCCESS)
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::ExampleData { rows, out } => {
            let counts = bund_example_data::generate(&bund_example_data::ExampleData {
                residents: rows,
                out,
            })?;
            for (table, n) in counts {
                println!("{table}: {n} rows");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::NewApiKey { id } => {
            use base64::Engine as _;
            let bytes: [u8; 32] = rand::random();
            let key = format!(
                "bund_{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
            );
            println!("key (give it to the client; it is not stored): {key}");
            println!("security.toml, in the principal's entry:");
            println!(
                "api_keys = [{{ id = \"{id}\", sha256 = \"{}\" }}]",
                bund_catalogs::sha256_hex(key.as_bytes())
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::HashPassword => {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line)?;
            let password = line.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!password.is_empty(), "type the password on standard input");
            println!("{}", bund_catalogs::hash_password(password));
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { config, data_dir } => {
            let rt = tokio::runtime::Runtime::new()?;
            let opts = load_options(&config, data_dir);
            let loaded = rt.block_on(load(&opts));
            if let Ok(c) = &loaded {
                for w in bund_catalogs::derivable_masks(c) {
                    eprintln!("bund: warning: {w}");
                }
            }
            Ok(match loaded {
                Ok(c) if !c.warnings.is_empty() => {
                    eprintln!(
                        "bund: {} has {} unreachable source(s):",
                        config.display(),
                        c.warnings.len()
                    );
                    for w in &c.warnings {
                        eprintln!("  - {w}");
                    }
                    ExitCode::from(1)
                }
                Ok(c) => {
                    println!(
                        "bund: {} is valid: {} bureaus, {} datasets, {} principals",
                        config.display(),
                        c.bureaus.len(),
                        c.datasets.len(),
                        c.security.len()
                    );
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            })
        }
        Command::Serve {
            config,
            flight_addr,
            data_dir,
            example_rows,
        } => {
            init_logging();
            let rt = tokio::runtime::Runtime::new()?;
            let code = rt.block_on(serve(config, flight_addr, data_dir, example_rows));
            // Whatever still runs (a password check, a query's last task) does not hold the
            // process past its grace period.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            code
        }
    }
}
