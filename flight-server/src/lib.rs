//! bund-server serves Bund: the Arrow Flight SQL service (`service`, `query`, `metadata`),
//! signed tokens and tickets (`tokens`), the query and login threads (`executor`,
//! `logins`), the audit log of each server (`audit`), hot reload (`reload`) and the mapping
//! of errors to what a client may read (`error`, `wire`). The `bund` binary (`main.rs`) is
//! its command line and nothing more: [`serve`] runs the server until a signal, [`check`]
//! validates a configuration. [`start`] serves in the calling process on a thread of its
//! own, with a clock and environment of the caller's choosing (the end-to-end tests).
//!
//! It is the only crate that knows tonic, HTTP and the command line; it plans through
//! bund-planner and never applies a policy itself.

mod audit;
mod error;
mod executor;
mod health;
mod logins;
mod metadata;
mod query;
mod reload;
mod service;
mod settings;
mod tokens;
mod wire;

pub use reload::Reloads;
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
/// The variable naming a replica: replicas of one configuration that share an audit
/// directory each write their own files there, named after it (`bund serve --replica`).
pub const REPLICA_ENV: &str = "BUND_REPLICA";

/// Whether `name` can name a replica: 1 to 63 ASCII letters, digits or `_` (it becomes part
/// of the audit files' names, and `-` separates a rotated file's time).
pub(crate) fn valid_replica(name: &str) -> bool {
    (1..=63).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
/// How long open connections may drain after SIGINT/SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// Of the grace, how long a stopping server still accepts connections while its health
/// service says NOT_SERVING, for balancers that poll it to notice.
const STOPPING_NOTICE: std::time::Duration = std::time::Duration::from_secs(1);

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

/// Resolves on SIGINT or SIGTERM.
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
}

/// Generates the Shanghai example's data when `config` is that example and its data is
/// absent or was written by an older bund; other catalogs never generate anything.
async fn generate_example_data(
    config: &Path,
    opts: &LoadOptions,
    example_rows: u64,
) -> anyhow::Result<()> {
    let existing = bund_example_data::existing(&opts.data_dir);
    if !is_shanghai_example(config) || existing.is_some_and(|(_, current)| current) {
        return Ok(());
    }
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
    let out = opts.data_dir.clone();
    let counts = tokio::task::spawn_blocking(move || {
        bund_example_data::generate(&bund_example_data::ExampleData { residents, out })
    })
    .await
    .context("example data generator")??;
    for (table, rows) in counts {
        eprintln!("bund:   {table}: {rows} rows");
    }
    Ok(())
}

/// A loaded configuration with everything that serves it, bound to its address but not
/// yet serving.
struct Prepared {
    opts: LoadOptions,
    settings: ServerSettings,
    service: service::BundService,
    listener: tokio::net::TcpListener,
    /// The HTTP listener (`/healthz`), when asked for one.
    http: Option<tokio::net::TcpListener>,
    /// Where the reloader publishes what it did (`Running::reloads` subscribes).
    reloads: tokio::sync::watch::Sender<Reloads>,
}

/// Opens the audit log, starts the query and login threads and binds `addr` (and
/// `http_addr`, when given).
async fn prepare(
    opts: LoadOptions,
    settings: ServerSettings,
    engine: Engine,
    addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    signer: tokens::Signer,
) -> anyhow::Result<Prepared> {
    let engine = Arc::new(engine);
    let catalog = Arc::clone(engine.catalog());
    let (reloads, _) = tokio::sync::watch::channel(Reloads {
        version: catalog.version.clone(),
        ..Reloads::default()
    });
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
    drop(catalog);
    let audit_dir = settings.audit_dir(&opts.data_dir);
    let replica = opts.env.var(REPLICA_ENV).filter(|r| !r.is_empty());
    if let Some(name) = &replica
        && !valid_replica(name)
    {
        anyhow::bail!(
            "the replica name {name:?} ({REPLICA_ENV} or --replica) must be 1 to 63 letters, digits or _"
        );
    }
    let log = audit::AuditLog::open(
        &audit_dir,
        audit::AuditSettings {
            max_file_bytes: settings.audit_max_file_bytes,
            max_files: settings.audit_max_files,
            retention: settings.audit_retention,
            records_per_minute: settings.audit_records_per_minute,
            replica: replica.clone(),
        },
    )
    .with_context(|| format!("cannot open the audit log in {}", audit_dir.display()))?;
    tracing::info!(dir = %audit_dir.display(), replica = replica.as_deref().unwrap_or("-"), "audit log open");
    let executors =
        Arc::new(executor::Executors::new(&settings).context("cannot start the query threads")?);
    let logins = logins::Logins::new(settings.max_concurrent_logins)
        .context("cannot start the login threads")?;
    let service =
        service::BundService::new(engine, settings.clone(), signer, executors, logins, log);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let http = match http_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (--http-addr)"))?,
        ),
        None => None,
    };
    Ok(Prepared {
        opts,
        settings,
        service,
        listener,
        http,
        reloads,
    })
}

/// Serves until `shutdown` resolves, then lets open connections drain for `grace` and
/// writes what the audit log still holds.
async fn run(
    prepared: Prepared,
    shutdown: impl std::future::Future<Output = ()>,
    grace: std::time::Duration,
) -> anyhow::Result<()> {
    let Prepared {
        opts,
        settings,
        service,
        listener,
        http,
        reloads,
    } = prepared;
    let audit = service.audit_log();
    reload::spawn(opts, settings, service.engine_slot(), reloads);
    let server = FlightServiceServer::new(wire::Wire(service))
        .max_decoding_message_size(MAX_REQUEST_BYTES)
        .max_encoding_message_size(usize::MAX);
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let mut graceful = stopping;
    // Small answers go out at once: without TCP_NODELAY, Nagle's algorithm holds a
    // response's last segment until the client's delayed ACK (about 40 ms a round trip).
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |accepted| {
            if let Ok(stream) = &accepted
                && let Err(e) = stream.set_nodelay(true)
            {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY on a connection");
            }
            accepted
        },
    );
    // The standard gRPC health service (grpc.health.v1.Health), for load balancers and
    // probes: SERVING while this process takes queries, NOT_SERVING once it is stopping.
    let (health, health_service) = health::Health::serving().await;
    let http = match http {
        Some(listener) => {
            let mut stopped = graceful.clone();
            let server = axum::serve(listener, health.http()).with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            Some(tokio::spawn(async move {
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "the HTTP server failed");
                }
            }))
        }
        None => None,
    };
    let serving = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(server)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = graceful.wait_for(|s| *s).await;
        });
    tokio::select! {
        result = serving => result.context("Flight SQL server failed")?,
        () = async {
            shutdown.await;
            // Say so first, while still answering, so that a balancer that asks sends the
            // next clients elsewhere; then stop accepting and let open connections finish.
            health.stopping().await;
            let notice = grace.min(STOPPING_NOTICE);
            tracing::info!(
                "shutting down: health says NOT_SERVING; in {} s no new connections, and open ones get {} s more to finish",
                notice.as_secs_f64(),
                grace.saturating_sub(notice).as_secs_f64()
            );
            tokio::time::sleep(notice).await;
            let grace = grace.saturating_sub(notice);
            let _ = stopping_tx.send(true);
            // Clients that keep their connections open do not hold the process hostage.
            tokio::time::sleep(grace).await;
        } => tracing::warn!("connections still open {} s after the signal; stopping anyway", grace.as_secs_f64()),
    }
    if let Some(http) = http {
        http.abort();
    }
    audit.flush(std::time::Duration::from_secs(2));
    Ok(())
}

/// Serves `config` over Flight SQL on `addr` until SIGINT or SIGTERM: generates the Shanghai
/// example's data when it is absent, opens the audit log, starts the query and login
/// threads and watches the configuration for changes. `replica` names this process among
/// replicas of one configuration (else [`REPLICA_ENV`]).
pub async fn serve(
    config: PathBuf,
    addr: SocketAddr,
    data_dir: Option<PathBuf>,
    example_rows: u64,
    replica: Option<String>,
    http_addr: Option<SocketAddr>,
) -> anyhow::Result<ExitCode> {
    let mut opts = load_options(&config, data_dir);
    if let Some(name) = replica {
        opts.env = opts.env.with(REPLICA_ENV, name);
    }
    generate_example_data(&config, &opts, example_rows).await?;
    let (settings, engine) = match load(&opts).await {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let prepared = prepare(
        opts,
        settings,
        engine,
        addr,
        http_addr,
        tokens::Signer::from_env(),
    )
    .await?;
    let local = prepared.listener.local_addr()?;
    if let Some(http) = &prepared.http {
        println!(
            "bund: serving HTTP (/healthz) on http://{}",
            http.local_addr()?
        );
    }
    println!("bund: serving Flight SQL on grpc://{local}");
    std::io::stdout().flush()?;
    run(prepared, shutdown_signal(), SHUTDOWN_GRACE).await?;
    eprintln!("bund: stopped");
    Ok(ExitCode::SUCCESS)
}

/// What [`start`] serves, and how.
pub struct Start {
    /// The configuration and its data; its [`bund_catalogs::Environment`] holds the
    /// variables its `*_env` settings name.
    pub options: LoadOptions,
    /// Where to listen; port 0 picks a free port ([`Running::addr`] says which).
    pub addr: SocketAddr,
    /// The clock tokens and tickets are issued and checked by.
    pub clock: Arc<dyn Clock>,
    /// The key tokens, tickets and handles are signed with; `None`: `BUND_SIGNING_KEY`, or
    /// a random key when it is unset.
    pub signing_key: Option<Vec<u8>>,
    /// How long open connections may drain once told to stop (as after SIGTERM).
    pub grace: std::time::Duration,
    /// Where to serve HTTP (`/healthz`); `None`: nowhere.
    pub http_addr: Option<SocketAddr>,
}

impl Start {
    /// `options` served on a free port of 127.0.0.1, by the system clock.
    pub fn new(options: LoadOptions) -> Self {
        Self {
            options,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            clock: Arc::new(SystemClock),
            signing_key: None,
            grace: SHUTDOWN_GRACE,
            http_addr: None,
        }
    }
}

/// A server started in this process by [`start`]: it runs on its own thread and runtime
/// (its queries on their own threads, as in `bund serve`) and stops when dropped.
pub struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
    reloads: tokio::sync::watch::Receiver<reload::Reloads>,
}

impl Running {
    /// The address it serves Flight SQL on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What its reloader has done so far; [`Running::reloaded`] waits for a change.
    pub fn reloads(&self) -> Reloads {
        self.reloads.borrow().clone()
    }

    /// Waits until the reloader's state satisfies `done`, at most `within`; false if it did
    /// not.
    pub async fn reloaded(
        &self,
        within: std::time::Duration,
        done: impl FnMut(&Reloads) -> bool,
    ) -> bool {
        let mut rx = self.reloads.clone();
        tokio::time::timeout(within, rx.wait_for(done))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Stops serving as SIGTERM does (open connections get their grace period) and waits
    /// for the server's thread.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.shut_down()
    }

    /// Tells the server to stop, once.
    fn send_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    fn shut_down(&mut self) -> anyhow::Result<()> {
        self.send_stop();
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("the server's thread panicked"))?,
            None => Ok(()),
        }
    }
}

/// Dropping it stops serving without waiting: the server's thread ends on its own once
/// open connections have drained (at most the grace period of SIGTERM).
impl Drop for Running {
    fn drop(&mut self) {
        self.send_stop();
    }
}

/// Loads `start.options` and serves them in this process until the returned [`Running`] is
/// stopped or dropped. Unlike [`serve`] it generates no example data, installs no signal
/// handler for shutdown and prints nothing; an invalid configuration is an error listing
/// every problem.
pub fn start(start: Start) -> anyhow::Result<Running> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("bund-rpc")
        .enable_all()
        .build()
        .context("cannot start the server's runtime")?;
    let (ready_tx, ready) = std::sync::mpsc::sync_channel(1);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("bund-server".into())
        .spawn(move || -> anyhow::Result<()> {
            let served = runtime.block_on(async move {
                let Start {
                    options,
                    addr,
                    clock,
                    signing_key,
                    grace,
                    http_addr,
                } = start;
                let prepared = async {
                    let (settings, engine) = load_configuration(&options).await?;
                    let signer = match signing_key {
                        Some(key) => tokens::Signer::new(key),
                        None => tokens::Signer::from_env(),
                    }
                    .with_clock(clock);
                    let prepared =
                        prepare(options, settings, engine, addr, http_addr, signer).await?;
                    anyhow::Ok(prepared)
                }
                .await;
                match prepared.and_then(|p| Ok((p.listener.local_addr()?, p))) {
                    Ok((local, prepared)) => {
                        let _ = ready_tx.send(Ok((local, prepared.reloads.subscribe())));
                        let stopped = async {
                            let _ = stopped.await;
                        };
                        run(prepared, stopped, grace).await
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        Ok(())
                    }
                }
            });
            // Whatever still runs (a password check, a query's last task) does not hold
            // the thread past its grace period.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            served
        })
        .context("cannot start the server's thread")?;
    match ready.recv() {
        Ok(Ok((addr, reloads))) => Ok(Running {
            addr,
            stop: Some(stop),
            thread: Some(thread),
            reloads,
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => match thread.join() {
            Ok(Err(e)) => Err(e),
            _ => Err(anyhow::anyhow!("the server's thread ended before serving")),
        },
    }
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
