//! `bund`: Bund's command line. `serve` runs the Flight SQL server, `check` validates a
//! configuration directory without serving, `example-data` writes the Shanghai example's
//! synthetic data, `hash-password` makes a password hash for `security.toml`,
//! `new-api-key` an API key. The server itself is the bund-server library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use bund_server::{DEFAULT_ADDR, DEFAULT_CONFIG};
use clap::{Parser, Subcommand};

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
        /// This process's name among replicas of one configuration that share an audit
        /// directory: each writes its own audit files there [default: $BUND_REPLICA].
        #[arg(long)]
        replica: Option<String>,
        /// Also serve HTTP here: `GET /healthz` for load balancers (200, or 503 once the
        /// process is stopping) [default: none].
        #[arg(long)]
        http_addr: Option<SocketAddr>,
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
            Ok(rt.block_on(bund_server::check(&bund_server::load_options(
                &config, data_dir,
            ))))
        }
        Command::Serve {
            config,
            flight_addr,
            data_dir,
            example_rows,
            replica,
            http_addr,
        } => {
            init_logging();
            let rt = tokio::runtime::Runtime::new()?;
            let code = rt.block_on(bund_server::serve(
                config,
                flight_addr,
                data_dir,
                example_rows,
                replica,
                http_addr,
            ));
            // Whatever still runs (a password check, a query's last task) does not hold the
            // process past its grace period.
            rt.shutdown_timeout(std::time::Duration::from_secs(1));
            code
        }
    }
}
