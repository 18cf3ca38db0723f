//! bund-server serves Bund: the Arrow Flight SQL service (`service`, `query`, `metadata`),
//! authentication and signed tokens (`auth`), the query and login threads (`executor`,
//! `logins`), the audit log (`audit`), hot reload (`reload`) and the mapping of errors to
//! what a client may read (`error`, `wire`). The `bund` binary (`main.rs`) is its command
//! line and nothing more: [`serve`] runs the server, [`check`] validates a configuration.
//!
//! It is the only crate that knows tonic, HTTP and the command line; it plans through
//! bund-planner and never applies a policy itself.

mod audit;
mod error;
mod executor;
mod logins;
mod metadata;
mod query;
mod reload;
mod service;
mod settings;
mod tokens;
mod wire;

pub use settings::ServerSettings;
pub use tokens::{Clock, SystemClock};

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arrow_flight::flight_service_server::FlightServiceServer;
use bund_catalogs::{ConfigErrors, LoadOptions};
use bund_planner::Engine;

/// The Shanghai example's configuration directory, the default of `serve` and `check`.
pub const DEFAULT_CONFIG: &str = "examples/shanghai";
/// Where `serve` listens unless told otherwise.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";
/// How long open connections may drain after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// Largest message a client may send: a statement (`max_statement_kb`, 4 MiB by default)
/// or one message of bound parameters (`max_parameter_kb`), with room to spare.
const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Where to read a configuration: `config`, with relative file locations under `data_dir`
/// (by default `config/data`).
pub fn load_options(config: &Path, data_dir: Option<PathBuf>) -> LoadOptions {
    LoadOptions::new(
        config.to_path_buf(),
        data_dir.unwrap_or_else(|| config.join("data")),
    )
}

/// Reads `server.toml`, then loads and resolves the configuration under its settings;
/// every problem of the three files is reported together.
pub(crate) async fn load_configuration(
    opts: &LoadOptions,
) -> Result<(ServerSettings, Engine), bund_catalogs::Error> {
    let mut errors = ConfigErrors::default();
    let settings = ServerSettings::load(&opts.config_dir, &mut errors);
    let mut opts = opts.clone();
    settings.apply(&mut opts);
    match Engine::load(&opts, settings.planner()).await {
        Ok(engine) if errors.is_empty() => Ok((settings, engine)),
        Ok(_) => Err(bund_catalogs::Error::Invalid(errors)),
        Err(bund_catalogs::Error::Invalid(more)) => {
            errors.0.extend(more.0);
            Err(bund_catalogs::Error::Invalid(errors))
        }
        Err(e) => Err(e),
    }
}

/// Loads and resolves a configuration, printing every error to standard error.
async fn load(opts: &LoadOptions) -> Result<(ServerSettings, Engine), ExitCode> {
    match load_configuration(opts).await {
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

/// Serves `config` over Flight SQL on `addr` until SIGINT or SIGTERM: generates the Shanghai
/// example's data when it is absent, opens the audit log, starts the query and login
/// threads and watches the configuration for changes.
pub async fn serve(
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
    let (settings, engine) = match load(&opts).await {
        Ok((settings, engine)) => (settings, Arc::new(engine)),
        Err(code) => return Ok(code),
    };
    let catalog = Arc::clone(engine.catalog());
    for w in &catalog.warnings {
        tracing::warn!("{w}");
    }
    for w in engine.derivable_masks() {
        tracing::warn!("{w}");
    }
    tracing::info!(
        datasets = catalog.datasets.len(),
        principals = catalog.security.len(),
        "catalog loaded"
    );
    let audit_dir = settings.audit_dir(&opts.data_dir);
    let log = audit::AuditLog::open(
        &audit_dir,
        audit::AuditSettings {
            max_file_bytes: settings.audit_max_file_bytes,
            max_files: settings.audit_max_files,
            retention: settings.audit_retention,
            records_per_minute: settings.audit_records_per_minute,
        },
    )
    .with_context(|| format!("cannot open the audit log in {}", audit_dir.display()))?;
    audit::install(log);
    tracing::info!(dir = %audit_dir.display(), "audit log open");
    let executors =
        Arc::new(executor::Executors::new(&settings).context("cannot start the query threads")?);
    let logins = logins::Logins::new(settings.max_concurrent_logins)
        .context("cannot start the login threads")?;
    drop(catalog);
    let service = service::BundService::new(
        engine,
        settings.clone(),
        tokens::Signer::from_env(),
        executors,
        logins,
    );
    reload::spawn(opts.clone(), settings, service.engine_slot());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    println!("bund: serving Flight SQL on grpc://{local}");
    std::io::stdout().flush()?;
    let server = FlightServiceServer::new(wire::Wire(service))
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

/// Validates a configuration directory without serving: prints the masks another column
/// undoes as warnings, and exits 1 listing every error or unreachable source.
pub async fn check(opts: &LoadOptions) -> ExitCode {
    let config = &opts.config_dir;
    let engine = match load(opts).await {
        Ok((_, engine)) => engine,
        Err(code) => return code,
    };
    for w in engine.derivable_masks() {
        eprintln!("bund: warning: {w}");
    }
    let c = engine.catalog();
    if !c.warnings.is_empty() {
        eprintln!(
            "bund: {} has {} unreachable source(s):",
            config.display(),
            c.warnings.len()
        );
        for w in &c.warnings {
            eprintln!("  - {w}");
        }
        return ExitCode::from(1);
    }
    println!(
        "bund: {} is valid: {} bureaus, {} datasets, {} principals",
        config.display(),
        c.bureaus.len(),
        c.datasets.len(),
        c.security.len()
    );
    ExitCode::SUCCESS
}
