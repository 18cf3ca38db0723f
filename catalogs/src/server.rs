use std::path::Path;
use std::time::Duration;

use crate::error::ConfigErrors;
use crate::raw::RawServerFile;

/// Limits and lifetimes of the server, from the optional `server.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// Queries executing at once; more wait in a queue.
    pub max_concurrent_queries: usize,
    /// How long a query waits for a slot before it is refused with ResourceExhausted.
    pub queue_timeout: Duration,
    /// Longest a query may run (planning and streaming) before it is cancelled.
    pub query_timeout: Duration,
    /// Lifetime of the bearer token returned by the handshake.
    pub session_ttl: Duration,
    /// Lifetime of a statement ticket returned by GetFlightInfo.
    pub ticket_ttl: Duration,
    /// Lifetime of a prepared-statement handle.
    pub prepared_ttl: Duration,
    /// Memory all running queries may hold together; sorts and aggregations spill to disk
    /// past it, and a query that cannot is refused with ResourceExhausted instead of the
    /// process running out of memory.
    pub memory_limit_bytes: u64,
    /// Where the audit log is written, as configured (relative paths are resolved against
    /// the data directory by [`ServerSettings::audit_dir`]).
    pub audit_dir: String,
    /// Size at which the audit log file is rotated.
    pub audit_max_file_bytes: u64,
    /// Rotated audit files kept.
    pub audit_max_files: usize,
}

/// Half of the machine's memory (from /proc/meminfo), or 4 GiB where that cannot be read.
fn default_memory_limit() -> u64 {
    let total_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    total_kib.map_or(4 << 30, |kib| kib * 1024 / 2)
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_concurrent_queries: 16,
            queue_timeout: Duration::from_secs(30),
            query_timeout: Duration::from_secs(600),
            session_ttl: Duration::from_secs(8 * 3600),
            ticket_ttl: Duration::from_secs(600),
            prepared_ttl: Duration::from_secs(12 * 3600),
            memory_limit_bytes: default_memory_limit(),
            audit_dir: "audit".to_string(),
            audit_max_file_bytes: 64 << 20,
            audit_max_files: 100,
        }
    }
}

impl ServerSettings {
    /// The audit log's directory, resolved against the data directory.
    pub fn audit_dir(&self, data_dir: &Path) -> std::path::PathBuf {
        let dir = Path::new(&self.audit_dir);
        if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            data_dir.join(dir)
        }
    }

    pub(crate) fn load(path: &Path, errors: &mut ConfigErrors) -> Self {
        let mut settings = Self::default();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return settings,
            Err(e) => {
                errors.push(path, "", "", format!("cannot read: {e}"));
                return settings;
            }
        };
        let raw: RawServerFile = match toml::from_str(&text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(path, "", "", e.to_string());
                return settings;
            }
        };
        let secs = |v: Option<u64>, field: &str, errors: &mut ConfigErrors, d: Duration| match v {
            Some(0) => {
                errors.push(path, "", field, "must be at least 1 second");
                d
            }
            Some(s) => Duration::from_secs(s),
            None => d,
        };
        if let Some(n) = raw.max_concurrent_queries {
            if n == 0 {
                errors.push(path, "", "max_concurrent_queries", "must be at least 1");
            } else {
                settings.max_concurrent_queries = n;
            }
        }
        match raw.memory_limit_mb {
            Some(0) => errors.push(path, "", "memory_limit_mb", "must be at least 1"),
            Some(mb) => settings.memory_limit_bytes = mb.saturating_mul(1 << 20),
            None => {}
        }
        if let Some(d) = raw.audit_dir {
            if d.is_empty() {
                errors.push(path, "", "audit_dir", "must not be empty");
            } else {
                settings.audit_dir = d;
            }
        }
        match raw.audit_max_file_mb {
            Some(0) => errors.push(path, "", "audit_max_file_mb", "must be at least 1"),
            Some(mb) => settings.audit_max_file_bytes = mb.saturating_mul(1 << 20),
            None => {}
        }
        match raw.audit_max_files {
            Some(0) => errors.push(path, "", "audit_max_files", "must be at least 1"),
            Some(n) => settings.audit_max_files = n,
            None => {}
        }
        settings.queue_timeout = secs(
            raw.queue_timeout_secs,
            "queue_timeout_secs",
            errors,
            settings.queue_timeout,
        );
        settings.query_timeout = secs(
            raw.query_timeout_secs,
            "query_timeout_secs",
            errors,
            settings.query_timeout,
        );
        settings.session_ttl = secs(
            raw.session_ttl_secs,
            "session_ttl_secs",
            errors,
            settings.session_ttl,
        );
        settings.ticket_ttl = secs(
            raw.ticket_ttl_secs,
            "ticket_ttl_secs",
            errors,
            settings.ticket_ttl,
        );
        settings.prepared_ttl = secs(
            raw.prepared_ttl_secs,
            "prepared_ttl_secs",
            errors,
            settings.prepared_ttl,
        );
        settings
    }
}
