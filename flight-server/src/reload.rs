//! Hot reload: SIGHUP, or a change of `catalog.toml`, `security.toml` or `server.toml`,
//! loads the configuration again. A valid new version replaces the engine at once (its new
//! version refuses tickets and handles issued under the old one); an invalid one is logged
//! with every error and the running version stays.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bund_catalogs::LoadOptions;

use crate::load_configuration;
use crate::service::EngineSlot;
use crate::settings::ServerSettings;

/// What the reloader has done so far: an observable signal for whoever waits on a reload
/// (tests, an embedding application), instead of a log line or a fixed sleep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloads {
    /// The configuration version now serving.
    pub version: String,
    /// New versions loaded since the server started.
    pub loaded: u64,
    /// New versions refused as invalid (the previous one kept serving).
    pub refused: u64,
}

/// How often the files' modification times are checked.
const POLL: Duration = Duration::from_secs(2);
const FILES: [&str; 3] = ["catalog.toml", "security.toml", "server.toml"];

fn stamps(dir: &std::path::Path) -> Vec<Option<(SystemTime, u64)>> {
    FILES
        .iter()
        .map(|f| {
            std::fs::metadata(dir.join(f))
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}

/// Watches the configuration until the server's runtime ends, publishing each outcome to
/// `reloads`.
/// `settings` are those the server started with: a change of `server.toml` applies to the
/// planner's limits at once, to the rest after a restart.
pub(crate) fn spawn(
    opts: LoadOptions,
    settings: ServerSettings,
    slot: EngineSlot,
    reloads: tokio::sync::watch::Sender<Reloads>,
) {
    tokio::spawn(async move {
        let mut last = stamps(&opts.config_dir);
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let signalled = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let signalled = std::future::pending::<()>();
            let reason = tokio::select! {
                () = signalled => "SIGHUP",
                () = tokio::time::sleep(POLL) => {
                    let now = stamps(&opts.config_dir);
                    if now == last {
                        continue;
                    }
                    "a configuration file changed"
                }
            };
            last = stamps(&opts.config_dir);
            let version = reload(&opts, &settings, &slot, reason).await;
            reloads.send_modify(|r| match version {
                Some(v) => {
                    r.version = v;
                    r.loaded += 1;
                }
                None => r.refused += 1,
            });
        }
    });
}

async fn reload(
    opts: &LoadOptions,
    started_with: &ServerSettings,
    slot: &EngineSlot,
    reason: &str,
) -> Option<String> {
    tracing::info!(reason, dir = %opts.config_dir.display(), "reloading the configuration");
    match load_configuration(opts).await {
        Ok((settings, engine)) => {
            let catalog = engine.catalog();
            for w in &catalog.warnings {
                tracing::warn!("{w}");
            }
            if settings != *started_with {
                tracing::warn!("server.toml changed: limits and lifetimes apply after a restart");
            }
            let version = catalog.version.clone();
            let engine = Arc::new(engine);
            match slot.write() {
                Ok(mut e) => *e = engine,
                Err(poisoned) => *poisoned.into_inner() = engine,
            }
            tracing::info!(
                version,
                "configuration reloaded; tickets of the old version are refused"
            );
            Some(version)
        }
        Err(e) => {
            tracing::error!(
                "the new configuration is invalid; still serving the previous one:\n{e}"
            );
            None
        }
    }
}
