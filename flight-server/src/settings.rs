//! The server's limits and lifetimes, from the optional `server.toml`: owned by the server,
//! which hands the catalog its memory limit and audit directory and the planner the limits
//! statements are planned under.

use std::path::Path;
use std::time::Duration;

use bund_catalogs::{ConfigErrors, LoadOptions};
use bund_planner::{Limits, PlannerSettings};
use serde::Deserialize;

/// The deepest `max_expression_depth` accepted: the query threads' stacks are sized for it
/// (`bund-server`'s executor).
pub(crate) const MAX_EXPRESSION_DEPTH: usize = 2_000;

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
    /// Rotated audit files kept; files younger than [`ServerSettings::audit_retention`]
    /// are kept beyond it.
    pub audit_max_files: usize,
    /// Audit files younger than this are never deleted.
    pub audit_retention: Duration,
    /// Audit records one principal (or, without credentials, one client address) may add
    /// a minute; requests past it are refused.
    pub audit_records_per_minute: u64,
    /// Longest statement text accepted.
    pub max_statement_bytes: usize,
    /// Deepest chain of operators a statement may nest (bounded from its tokens).
    pub max_expression_depth: usize,
    /// Most operators a statement may plan to, shared CTEs and views expanded.
    pub max_plan_nodes: usize,
    /// Longest planning may take (within the query's own time limit).
    pub planning_timeout: Duration,
    /// Queries one principal may run at once (of `max_concurrent_queries`).
    pub max_queries_per_principal: usize,
    /// Queries all requests without credentials may run at once together.
    pub anonymous_max_queries: usize,
    /// Time limit of a query without credentials.
    pub anonymous_query_timeout: Duration,
    /// Memory the queries without credentials may hold together (of `memory_limit_bytes`).
    pub anonymous_memory_limit_bytes: u64,
    /// Threads that plan and run queries.
    pub query_threads: usize,
    /// Threads that plan and run queries without credentials (apart from the others, so
    /// they never take more of the machine than this).
    pub anonymous_threads: usize,
    /// Password checks (argon2, 19 MiB each) running at once; more logins wait.
    pub max_concurrent_logins: usize,
    /// How long a user and password that passed the check log in again without it (zero:
    /// every login is checked).
    pub login_cache: Duration,
    /// Largest set of bound parameters of one prepared statement, encoded.
    pub max_parameter_bytes: usize,
    /// Largest output of one call of a function whose result size its arguments choose
    /// (`repeat`, `lpad`, …) over one batch.
    pub max_function_output_bytes: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServerFile {
    max_concurrent_queries: Option<usize>,
    queue_timeout_secs: Option<u64>,
    query_timeout_secs: Option<u64>,
    session_ttl_secs: Option<u64>,
    ticket_ttl_secs: Option<u64>,
    prepared_ttl_secs: Option<u64>,
    memory_limit_mb: Option<u64>,
    /// Directory of the audit log (JSON Lines); relative to the data directory.
    audit_dir: Option<String>,
    /// Size at which the audit log file is rotated.
    audit_max_file_mb: Option<u64>,
    /// Rotated audit files kept; older ones are deleted (never those within retention).
    audit_max_files: Option<usize>,
    /// Audit files younger than this are never deleted.
    audit_retention_days: Option<u64>,
    /// Audit records one principal (or, without credentials, one address) may add a minute.
    audit_records_per_minute: Option<u64>,
    max_statement_kb: Option<usize>,
    max_expression_depth: Option<usize>,
    max_plan_nodes: Option<usize>,
    planning_timeout_secs: Option<u64>,
    max_queries_per_principal: Option<usize>,
    anonymous_max_queries: Option<usize>,
    anonymous_query_timeout_secs: Option<u64>,
    anonymous_memory_limit_mb: Option<u64>,
    query_threads: Option<usize>,
    anonymous_threads: Option<usize>,
    max_concurrent_logins: Option<usize>,
    login_cache_secs: Option<u64>,
    max_parameter_kb: Option<usize>,
    max_function_output_mb: Option<u64>,
}

/// The machine's cores as the process may use them.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
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
    /// The statement limits are the planner's defaults.
    fn default() -> Self {
        let planner = PlannerSettings::default();
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
            audit_retention: Duration::from_secs(180 * 86_400),
            audit_records_per_minute: 6_000,
            max_statement_bytes: planner.limits.max_statement_bytes,
            max_expression_depth: planner.limits.max_expression_depth,
            max_plan_nodes: planner.limits.max_plan_nodes,
            planning_timeout: Duration::from_secs(60),
            max_queries_per_principal: 8,
            anonymous_max_queries: 2,
            anonymous_query_timeout: Duration::from_secs(60),
            anonymous_memory_limit_bytes: default_memory_limit() / 4,
            query_threads: cores(),
            anonymous_threads: cores().div_ceil(2),
            max_concurrent_logins: cores().max(2),
            login_cache: Duration::from_secs(300),
            max_parameter_bytes: 1 << 20,
            max_function_output_bytes: planner.max_function_output_bytes,
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

    /// What the planner needs of these settings.
    pub fn planner(&self) -> PlannerSettings {
        PlannerSettings {
            limits: Limits {
                max_statement_bytes: self.max_statement_bytes,
                max_expression_depth: self.max_expression_depth,
                max_plan_nodes: self.max_plan_nodes,
            },
            max_function_output_bytes: self.max_function_output_bytes,
            anonymous_memory_limit_bytes: self.anonymous_memory_limit_bytes,
        }
    }

    /// Where to read a configuration, with this memory limit and audit directory.
    pub fn apply(&self, opts: &mut LoadOptions) {
        opts.memory_limit_bytes = Some(self.memory_limit_bytes);
        opts.audit_dir = self.audit_dir(&opts.data_dir);
    }

    /// Reads `server.toml` of a configuration directory: defaults where it is absent or
    /// silent, every problem in `errors`.
    pub fn load(config_dir: &Path, errors: &mut ConfigErrors) -> Self {
        let path = &config_dir.join("server.toml");
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
        let count = |v: Option<usize>, field: &str, errors: &mut ConfigErrors, d: usize| match v {
            Some(0) => {
                errors.push(path, "", field, "must be at least 1");
                d
            }
            Some(n) => n,
            None => d,
        };
        settings.audit_retention = Duration::from_secs(
            raw.audit_retention_days
                .map_or(settings.audit_retention.as_secs(), |d| {
                    d.saturating_mul(86_400)
                }),
        );
        if let Some(n) = raw.audit_records_per_minute {
            if n == 0 {
                errors.push(path, "", "audit_records_per_minute", "must be at least 1");
            } else {
                settings.audit_records_per_minute = n;
            }
        }
        settings.max_statement_bytes = count(
            raw.max_statement_kb,
            "max_statement_kb",
            errors,
            settings.max_statement_bytes >> 10,
        )
        .saturating_mul(1024);
        settings.max_expression_depth = count(
            raw.max_expression_depth,
            "max_expression_depth",
            errors,
            settings.max_expression_depth,
        );
        if settings.max_expression_depth > MAX_EXPRESSION_DEPTH {
            errors.push(
                path,
                "",
                "max_expression_depth",
                format!("at most {MAX_EXPRESSION_DEPTH}: deeper expressions need more stack than the query threads have"),
            );
            settings.max_expression_depth = MAX_EXPRESSION_DEPTH;
        }
        settings.max_plan_nodes = count(
            raw.max_plan_nodes,
            "max_plan_nodes",
            errors,
            settings.max_plan_nodes,
        );
        settings.max_queries_per_principal = count(
            raw.max_queries_per_principal,
            "max_queries_per_principal",
            errors,
            settings.max_queries_per_principal,
        );
        settings.anonymous_max_queries = count(
            raw.anonymous_max_queries,
            "anonymous_max_queries",
            errors,
            settings.anonymous_max_queries,
        );
        settings.query_threads = count(
            raw.query_threads,
            "query_threads",
            errors,
            settings.query_threads,
        );
        settings.anonymous_threads = count(
            raw.anonymous_threads,
            "anonymous_threads",
            errors,
            settings.anonymous_threads,
        );
        settings.max_concurrent_logins = count(
            raw.max_concurrent_logins,
            "max_concurrent_logins",
            errors,
            settings.max_concurrent_logins,
        );
        if let Some(secs) = raw.login_cache_secs {
            settings.login_cache = Duration::from_secs(secs);
        }
        settings.max_parameter_bytes = count(
            raw.max_parameter_kb,
            "max_parameter_kb",
            errors,
            settings.max_parameter_bytes >> 10,
        )
        .saturating_mul(1024);
        match raw.max_function_output_mb {
            Some(0) => errors.push(path, "", "max_function_output_mb", "must be at least 1"),
            Some(mb) => settings.max_function_output_bytes = mb.saturating_mul(1 << 20),
            None => {}
        }
        match raw.anonymous_memory_limit_mb {
            Some(0) => errors.push(path, "", "anonymous_memory_limit_mb", "must be at least 1"),
            Some(mb) => settings.anonymous_memory_limit_bytes = mb.saturating_mul(1 << 20),
            // a quarter of the (configured) limit
            None => settings.anonymous_memory_limit_bytes = settings.memory_limit_bytes / 4,
        }
        if settings.anonymous_memory_limit_bytes > settings.memory_limit_bytes {
            errors.push(
                path,
                "",
                "anonymous_memory_limit_mb",
                "must not exceed memory_limit_mb",
            );
        }
        settings.planning_timeout = secs(
            raw.planning_timeout_secs,
            "planning_timeout_secs",
            errors,
            settings.planning_timeout,
        );
        settings.anonymous_query_timeout = secs(
            raw.anonymous_query_timeout_secs,
            "anonymous_query_timeout_secs",
            errors,
            settings.anonymous_query_timeout,
        );
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
