//! The audit log: one JSON object per line for every request — queries, statements planned,
//! prepared statements, logins, metadata calls and every refusal — appended by a writer
//! thread. Each record is written to the file as soon as it arrives (it survives a crash of
//! the process), and the file is fsynced at least every [`SYNC_EVERY`] or every
//! [`SYNC_RECORDS`] records (it survives a crash of the machine within that bound). The file
//! is rotated by size; `system.audit_log` reads every file of the directory.
//!
//! A hostile client must not be able to flush the trail away:
//! - a record is bounded: a statement longer than [`STATEMENT_PREFIX`] bytes is kept as its
//!   prefix, its length and its SHA-256; an error text as its first [`ERROR_PREFIX`] bytes;
//! - every source has a budget of records a minute: a principal `audit_records_per_minute`;
//!   a client address a tenth of it for its anonymous requests and another tenth for its
//!   requests without valid credentials (logins, bad tokens), and all addresses together as
//!   much as one principal for each of the two; a source's requests past its budget are
//!   refused before they do any work (ResourceExhausted, "retry after"), and the records
//!   it could not write are counted in one `suppressed` record per source and minute;
//! - rotation never deletes a file younger than `audit_retention_days`, whatever
//!   `audit_max_files` says;
//! - when a record cannot be written (the disk is full), the log keeps up to
//!   [`PENDING_MAX`] records in memory and retries every [`SYNC_EVERY`]; meanwhile the
//!   server refuses every request with Unavailable (no query runs unaudited), and serves
//!   again as soon as the backlog is written.
//!
//! What the auditor reads is what was asked, never values from rows: statements stay as
//! they were sent; the error of a query that failed while running is recorded as its kind
//! (`error::audit_text`), because its text may quote a value of a row the auditor's own
//! grants do not show.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// Longest time a written record waits for fsync.
const SYNC_EVERY: Duration = Duration::from_millis(200);
/// Most records written between two fsyncs.
const SYNC_RECORDS: usize = 256;
/// Records waiting for the writer before callers wait for it.
const QUEUE: usize = 16_384;
/// The stem of the audit files: `audit.jsonl` is written, `audit-<time>.jsonl` rotated; a
/// named replica writes `audit@<name>.jsonl` and rotates `audit@<name>-<time>.jsonl`, so
/// replicas share a directory and `system.audit_log` reads them all.
const STEM: &str = "audit";
/// How long opening the log waits for another process to release its files.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// Bytes of a statement kept in a record; a longer one is kept as prefix, length and hash.
pub(crate) const STATEMENT_PREFIX: usize = 4096;
/// Bytes of an error text kept in a record.
const ERROR_PREFIX: usize = 1024;
/// Records kept in memory while the disk refuses them.
const PENDING_MAX: usize = 100_000;
/// The key of the budget the anonymous principal's requests share, from every address.
const ALL_ANONYMOUS: &str = "anonymous:*";
/// The key of the budget requests without valid credentials share, from every address.
const ALL_ADDRESSES: &str = "address:*";
/// Budgets tracked before the ones untouched for a minute are forgotten.
const MAX_BUDGETS: usize = 100_000;

/// One audited request. Field names are the columns of `system.audit_log`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AuditRecord {
    /// RFC 3339, UTC, milliseconds.
    pub(crate) time: String,
    pub(crate) request_id: String,
    pub(crate) principal: String,
    pub(crate) roles: Vec<String>,
    pub(crate) rpc: String,
    /// The client's address.
    pub(crate) client: Option<String>,
    pub(crate) statement: Option<String>,
    /// Length of the statement in bytes, when it was longer than the prefix kept.
    pub(crate) statement_bytes: Option<u64>,
    /// SHA-256 (hex) of the whole statement, when only its prefix is kept.
    pub(crate) statement_sha256: Option<String>,
    pub(crate) datasets: Vec<String>,
    pub(crate) policies: Vec<String>,
    pub(crate) rows: Option<u64>,
    pub(crate) bytes: Option<u64>,
    pub(crate) duration_ms: Option<f64>,
    pub(crate) outcome: Outcome,
    /// The gRPC status code of a failure.
    pub(crate) code: Option<String>,
    pub(crate) error: Option<String>,
    /// For `suppressed` records: how many records were not written.
    pub(crate) suppressed: Option<u64>,
    /// Whose budget the record is charged to (not written).
    #[serde(skip)]
    pub(crate) source: String,
}

/// How a request ended, as the audit log's `outcome` column reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Outcome {
    Ok,
    /// The statement or a source failed.
    Error,
    /// Not authenticated, not permitted, or not found.
    Refused,
    /// Past a limit of concurrent work or of the audit budget.
    Busy,
    Cancelled,
    Timeout,
    /// The client went away before the end.
    Dropped,
    /// A count of the records a source was over its budget for.
    Suppressed,
}

impl AuditRecord {
    pub(crate) fn new(request_id: &str, rpc: &str, principal: &str, roles: &[String]) -> Self {
        Self {
            time: rfc3339_now(),
            request_id: request_id.to_string(),
            principal: principal.to_string(),
            roles: roles.to_vec(),
            rpc: rpc.to_string(),
            client: None,
            statement: None,
            statement_bytes: None,
            statement_sha256: None,
            datasets: Vec::new(),
            policies: Vec::new(),
            rows: None,
            bytes: None,
            duration_ms: None,
            outcome: Outcome::Ok,
            code: None,
            error: None,
            suppressed: None,
            source: source_key(Some(principal), None),
        }
    }

    /// Sets the statement, bounded: past [`STATEMENT_PREFIX`] bytes, its prefix, its length
    /// and its SHA-256.
    pub(crate) fn set_statement(&mut self, sql: &str) {
        if sql.len() <= STATEMENT_PREFIX {
            self.statement = Some(sql.to_string());
            return;
        }
        self.statement = Some(prefix(sql, STATEMENT_PREFIX).to_string());
        self.statement_bytes = Some(sql.len() as u64);
        let digest = Sha256::digest(sql.as_bytes());
        self.statement_sha256 = Some(digest.iter().map(|b| format!("{b:02x}")).collect());
    }

    /// Sets the error text, bounded to [`ERROR_PREFIX`] bytes.
    pub(crate) fn set_error(&mut self, text: &str) {
        self.error = Some(if text.len() > ERROR_PREFIX {
            format!("{}…", prefix(text, ERROR_PREFIX))
        } else {
            text.to_string()
        });
    }

    /// Charges the record to the request's source: the principal, or without credentials
    /// the client's address.
    pub(crate) fn set_source(&mut self, authenticated: Option<&str>, client: Option<&str>) {
        self.client = client.map(str::to_string);
        self.source = source_key(authenticated, client);
    }
}

/// The longest prefix of `s` of at most `n` bytes that ends on a character boundary.
fn prefix(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The budget a request is charged to: an authenticated principal's own; for the anonymous
/// principal, its client address's anonymous budget; for requests whose credentials have not
/// (yet) held — logins, bad tokens — its client address's. A flood of anonymous queries
/// from an address then does not stop logins from it, nor failed logins its open data.
pub(crate) fn source_key(authenticated: Option<&str>, client: Option<&str>) -> String {
    let address = client.unwrap_or("unknown");
    match authenticated {
        Some(bund_catalogs::ANONYMOUS) => format!("anonymous:{address}"),
        Some(id) if id != "-" => format!("principal:{id}"),
        _ => format!("address:{address}"),
    }
}

/// The current time as `2026-11-27T21:30:05.123Z`.
pub(crate) fn rfc3339_now() -> String {
    rfc3339(SystemTime::now())
}

fn rfc3339(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i32::try_from(secs / 86_400).unwrap_or(i32::MAX);
    let (y, m, d) = bund_udfs::domain::civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_millis()
    )
}

/// How rotation and budgets behave.
#[derive(Debug, Clone)]
pub(crate) struct AuditSettings {
    pub(crate) max_file_bytes: u64,
    pub(crate) max_files: usize,
    pub(crate) retention: Duration,
    pub(crate) records_per_minute: u64,
    /// The replica's name ([`crate::valid_replica`]), written into every record and into
    /// its files' names; `None` for a server that has its audit directory to itself.
    pub(crate) replica: Option<String>,
}

/// A record as written: with the replica that wrote it.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(flatten)]
    record: &'a AuditRecord,
    replica: Option<&'a str>,
}

/// A token bucket: `per_minute` records, refilled continuously.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// What the request side and the writer share.
#[derive(Debug)]
struct Shared {
    /// False while records cannot be written.
    healthy: AtomicBool,
    budgets: Mutex<HashMap<String, Bucket>>,
    /// Budgets tracked before the next pruning.
    prune_at: std::sync::atomic::AtomicUsize,
    /// Records not written, by source, since the last `suppressed` record.
    suppressed: Mutex<HashMap<String, u64>>,
    per_minute: f64,
}

impl Shared {
    /// A principal may add `per_minute` records a minute; one client address without
    /// credentials a tenth of that, and all of those addresses together as much as one
    /// principal.
    fn capacity(&self, key: &str) -> f64 {
        if key.ends_with(":*") || key.starts_with("principal:") {
            self.per_minute
        } else {
            (self.per_minute / 10.0).max(1.0)
        }
    }

    /// Tokens of `key` now, after refilling.
    fn refill(&self, budgets: &mut HashMap<String, Bucket>, key: &str, now: Instant) -> f64 {
        let cap = self.capacity(key);
        let b = budgets.entry(key.to_string()).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * cap / 60.0).min(cap);
        b.at = now;
        b.tokens
    }

    /// The keys a source's records are charged to: its own, and for an address the
    /// budget all addresses of its kind share.
    fn keys(source: &str) -> Vec<&str> {
        if source.starts_with("anonymous:") {
            vec![source, ALL_ANONYMOUS]
        } else if source.starts_with("address:") {
            vec![source, ALL_ADDRESSES]
        } else {
            vec![source]
        }
    }

    /// Seconds until `source` may add a record again; `None` when it may now.
    fn wait(&self, source: &str) -> Option<u64> {
        let now = Instant::now();
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = None;
        for key in Self::keys(source) {
            let tokens = self.refill(&mut budgets, key, now);
            if tokens < 1.0 {
                let secs = ((1.0 - tokens) * 60.0 / self.capacity(key)).ceil() as u64;
                wait = Some(wait.map_or(secs, |w: u64| w.max(secs)).max(1));
            }
        }
        wait
    }

    /// Takes one record from `source`'s budget; false when it has none left.
    fn charge(&self, source: &str) -> bool {
        let now = Instant::now();
        let mut budgets = self.budgets.lock().unwrap_or_else(|p| p.into_inner());
        let keys = Self::keys(source);
        if keys.iter().any(|k| self.refill(&mut budgets, k, now) < 1.0) {
            return false;
        }
        for k in keys {
            if let Some(b) = budgets.get_mut(k) {
                b.tokens -= 1.0;
            }
        }
        if budgets.len() > self.prune_at.load(Ordering::Relaxed) {
            // a bucket untouched for a minute is full again: nothing worth remembering.
            // The next pruning waits until the map has doubled, so that many sources active
            // at once do not make every record scan it.
            budgets.retain(|_, b| now.saturating_duration_since(b.at) < Duration::from_secs(60));
            self.prune_at
                .store((budgets.len() * 2).max(MAX_BUDGETS), Ordering::Relaxed);
        }
        true
    }
}

enum Msg {
    Record(Box<AuditRecord>),
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// Where records go. Cheap to clone; the writer thread ends when every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct AuditLog {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("audit message")
    }
}

impl AuditLog {
    /// Opens (creating) the directory and starts the writer thread.
    pub(crate) fn open(dir: &Path, settings: AuditSettings) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(true),
            budgets: Mutex::new(HashMap::new()),
            prune_at: std::sync::atomic::AtomicUsize::new(MAX_BUDGETS),
            suppressed: Mutex::new(HashMap::new()),
            per_minute: settings.records_per_minute as f64,
        });
        let writer = Writer::open(dir.to_path_buf(), settings, Arc::clone(&shared))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("bund-audit".into())
            .spawn(move || writer.run(&rx))?;
        Ok(Self { tx, shared })
    }

    /// Appends a record, charged to its source; past the source's budget it is only
    /// counted. Waits only when the writer is [`QUEUE`] records behind.
    pub(crate) fn append(&self, record: AuditRecord) {
        if !self.shared.charge(&record.source) {
            let mut s = self
                .shared
                .suppressed
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *s.entry(record.source).or_insert(0) += 1;
            return;
        }
        if self.tx.send(Msg::Record(Box::new(record))).is_err() {
            tracing::error!("the audit writer has stopped; a record was not written");
        }
    }

    /// Waits (up to `timeout`) until every record appended so far is written and synced.
    pub(crate) fn flush(&self, timeout: Duration) {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self.tx.send(Msg::Flush(done)).is_ok() {
            let _ = wait.recv_timeout(timeout);
        }
    }

    /// Whether a request of `source` may proceed.
    pub(crate) fn admit(&self, source: &str) -> Result<(), Refusal> {
        if !self.shared.healthy.load(Ordering::SeqCst) {
            return Err(Refusal::Unwritable);
        }
        match self.shared.wait(source) {
            Some(secs) => Err(Refusal::Budget {
                retry_after_secs: secs,
            }),
            None => Ok(()),
        }
    }
}

struct Writer {
    dir: PathBuf,
    /// `audit` or `audit@<replica>`: the current file is `<base>.jsonl`.
    base: String,
    file: File,
    /// Locked while this process writes: a second writer of the same files is refused.
    _lock: File,
    size: u64,
    settings: AuditSettings,
    unsynced: usize,
    last_sync: Instant,
    /// Lines the disk refused, oldest first.
    pending: VecDeque<Vec<u8>>,
    /// Records lost because the backlog was full.
    lost: u64,
    last_suppressed: Instant,
    shared: Arc<Shared>,
}

impl Writer {
    fn open(dir: PathBuf, settings: AuditSettings, shared: Arc<Shared>) -> std::io::Result<Self> {
        let base = match &settings.replica {
            Some(name) => format!("{STEM}@{name}"),
            None => STEM.to_string(),
        };
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{base}.lock")))?;
        // a process that stopped a moment ago may still be closing its files
        let give_up = Instant::now() + LOCK_WAIT;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < give_up => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(std::io::Error::other(format!(
                        "another bund process writes {base}.jsonl in this directory; give \
                         each replica that shares an audit directory its own name (`bund \
                         serve --replica NAME` or BUND_REPLICA)"
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(std::io::Error::other(format!(
                        "cannot lock {base}.lock: {e}"
                    )));
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(format!("{base}.jsonl")))?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir,
            base,
            file,
            _lock: lock,
            size,
            settings,
            unsynced: 0,
            last_sync: Instant::now(),
            pending: VecDeque::new(),
            lost: 0,
            last_suppressed: Instant::now(),
            shared,
        })
    }

    fn run(mut self, rx: &Receiver<Msg>) {
        loop {
            match rx.recv_timeout(SYNC_EVERY) {
                Ok(Msg::Record(record)) => self.record(&record),
                Ok(Msg::Flush(done)) => {
                    self.retry_pending();
                    self.sync();
                    let _ = done.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.retry_pending();
                    self.sync();
                    return;
                }
            }
            self.retry_pending();
            if self.last_suppressed.elapsed() >= Duration::from_secs(60) {
                self.write_suppressed();
            }
            if self.unsynced > 0
                && (self.unsynced >= SYNC_RECORDS || self.last_sync.elapsed() >= SYNC_EVERY)
            {
                self.sync();
            }
        }
    }

    /// `record` as one line of JSON, with this replica's name.
    fn line(&self, record: &AuditRecord) -> Option<Vec<u8>> {
        let mut line = Vec::with_capacity(1024);
        let written = Line {
            record,
            replica: self.settings.replica.as_deref(),
        };
        serde_json::to_writer(&mut line, &written).ok()?;
        line.push(b'\n');
        Some(line)
    }

    fn current(&self) -> PathBuf {
        self.dir.join(format!("{}.jsonl", self.base))
    }

    fn record(&mut self, record: &AuditRecord) {
        let Some(line) = self.line(record) else {
            return;
        };
        if !self.pending.is_empty() {
            self.queue(line);
            return;
        }
        if let Err(e) = self.write(&line) {
            tracing::error!(error = %e, "cannot write the audit log; requests are refused until it can be written");
            self.shared.healthy.store(false, Ordering::SeqCst);
            self.queue(line);
        }
    }

    fn queue(&mut self, line: Vec<u8>) {
        if self.pending.len() < PENDING_MAX {
            self.pending.push_back(line);
        } else {
            self.lost += 1;
        }
    }

    /// Writes the backlog, oldest first; the server serves again once it is empty.
    fn retry_pending(&mut self) {
        if !self.pending.is_empty() {
            // the file may have been moved or replaced to make room: write where it now is
            match OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.current())
            {
                Ok(f) => {
                    self.size = f.metadata().map_or(self.size, |m| m.len());
                    self.file = f;
                }
                Err(_) => return,
            }
        }
        while let Some(line) = self.pending.front() {
            let line = line.clone();
            if self.write(&line).is_err() {
                return;
            }
            self.pending.pop_front();
        }
        if self.lost > 0 {
            let mut r = AuditRecord::new("-", "audit", "-", &[]);
            r.outcome = Outcome::Suppressed;
            r.suppressed = Some(self.lost);
            r.set_error("records were lost while the audit log could not be written");
            if let Some(line) = self.line(&r)
                && self.write(&line).is_err()
            {
                return;
            }
            self.lost = 0;
        }
        if !self.shared.healthy.swap(true, Ordering::SeqCst) {
            tracing::warn!("the audit log is written again; serving resumes");
        }
    }

    /// One `suppressed` record per source that went over its budget in the last minute.
    fn write_suppressed(&mut self) {
        self.last_suppressed = Instant::now();
        let counts: Vec<(String, u64)> = {
            let mut s = self
                .shared
                .suppressed
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            s.drain().collect()
        };
        for (source, n) in counts {
            let who = source.split_once(':').map_or("-", |(_, w)| w).to_string();
            let mut r = AuditRecord::new("-", "audit", &who, &[]);
            r.outcome = Outcome::Suppressed;
            r.suppressed = Some(n);
            r.set_error(&format!(
                "{n} record(s) of {source} were not written: over audit_records_per_minute"
            ));
            self.record(&r);
        }
    }

    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.settings.max_file_bytes {
            self.rotate()?;
        }
        // One write per record: a reader never sees half of one unless the disk is full.
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        self.unsynced += 1;
        Ok(())
    }

    fn sync(&mut self) {
        if self.unsynced == 0 {
            return;
        }
        if let Err(e) = self.file.sync_data() {
            tracing::error!(error = %e, "cannot fsync the audit log");
        }
        self.unsynced = 0;
        self.last_sync = Instant::now();
    }

    /// `audit.jsonl` → `audit-<time>.jsonl`, a new `audit.jsonl`, and the oldest rotated
    /// files beyond `max_files` deleted — never one younger than the retention. A replica
    /// rotates and deletes its own files only.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.sync();
        let stamp: String = rfc3339_now().chars().filter(char::is_ascii_digit).collect();
        let base = &self.base;
        let mut target = self.dir.join(format!("{base}-{stamp}.jsonl"));
        let mut n = 1;
        while target.exists() {
            target = self.dir.join(format!("{base}-{stamp}-{n}.jsonl"));
            n += 1;
        }
        std::fs::rename(self.current(), &target)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.current())?;
        self.size = 0;
        let own = format!("{base}-");
        let mut rotated: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&own) && n.ends_with(".jsonl"))
            })
            .collect();
        rotated.sort();
        while rotated.len() > self.settings.max_files {
            let oldest = rotated.remove(0);
            let age = std::fs::metadata(&oldest)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .unwrap_or_default();
            if age < self.settings.retention {
                // the oldest is within retention, so are all the others
                tracing::warn!(
                    files = rotated.len() + 1,
                    "audit files beyond audit_max_files are kept: they are within audit_retention_days"
                );
                break;
            }
            if let Err(e) = std::fs::remove_file(&oldest) {
                tracing::warn!(file = %oldest.display(), error = %e, "cannot delete an old audit file");
            }
        }
        Ok(())
    }
}

/// Why a request may not proceed before it does any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Records cannot be written (the disk is full): nothing runs unaudited.
    Unwritable,
    /// The source is past its budget; it may try again after this many seconds.
    Budget { retry_after_secs: u64 },
}

/// What one request has learnt about itself so far, for its audit record.
#[derive(Debug, Default, Clone)]
pub(crate) struct RequestContext {
    pub(crate) principal: Option<String>,
    pub(crate) roles: Vec<String>,
    /// Set once the principal is authenticated (not merely claimed in a login).
    pub(crate) authenticated: bool,
    pub(crate) client: Option<String>,
    pub(crate) statement: Option<String>,
    pub(crate) datasets: Vec<String>,
    pub(crate) policies: Vec<String>,
    /// The request writes its own record (a query stream, when it ends).
    pub(crate) recorded_elsewhere: bool,
}

impl RequestContext {
    /// A record of this request, its source and statement set.
    pub(crate) fn record(&self, request_id: &str, rpc: &str) -> AuditRecord {
        let principal = self.principal.as_deref().unwrap_or("-");
        let mut r = AuditRecord::new(request_id, rpc, principal, &self.roles);
        r.set_source(
            self.authenticated.then_some(principal),
            self.client.as_deref(),
        );
        if let Some(sql) = &self.statement {
            r.set_statement(sql);
        }
        r.datasets = self.datasets.clone();
        r.policies = self.policies.clone();
        r
    }

    /// The budget this request is charged to.
    pub(crate) fn source(&self) -> String {
        source_key(
            self.authenticated
                .then_some(self.principal.as_deref().unwrap_or("-")),
            self.client.as_deref(),
        )
    }
}

tokio::task_local! {
    static REQUEST: std::cell::RefCell<RequestContext>;
}

/// Runs a request's future with its own [`RequestContext`].
pub(crate) async fn with_context<F: std::future::Future>(
    client: Option<String>,
    fut: F,
) -> (F::Output, RequestContext) {
    let ctx = RequestContext {
        client,
        ..RequestContext::default()
    };
    REQUEST
        .scope(std::cell::RefCell::new(ctx), async {
            let out = fut.await;
            let ctx = REQUEST.with(|c| c.borrow().clone());
            (out, ctx)
        })
        .await
}

/// Reads the current request's context.
pub(crate) fn context() -> RequestContext {
    REQUEST.try_with(|c| c.borrow().clone()).unwrap_or_default()
}

fn update(f: impl FnOnce(&mut RequestContext)) {
    let _ = REQUEST.try_with(|c| f(&mut c.borrow_mut()));
}

/// Notes who is asking, for the audit record; `authenticated` once the credentials held.
pub(crate) fn note_principal(id: &str, roles: &[String], authenticated: bool) {
    update(|c| {
        c.principal = Some(id.to_string());
        c.roles = roles.to_vec();
        c.authenticated = authenticated;
    });
}

/// Notes the statement a request runs.
pub(crate) fn note_statement(sql: &str) {
    update(|c| c.statement = Some(sql.to_string()));
}

/// Notes the datasets and policies a planned statement touches.
pub(crate) fn note_touched(datasets: Vec<String>, policies: Vec<String>) {
    update(|c| {
        c.datasets = datasets;
        c.policies = policies;
    });
}

/// Notes that the request writes its own record (a query stream).
pub(crate) fn note_recorded_elsewhere() {
    update(|c| c.recorded_elsewhere = true);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(max_file_bytes: u64, max_files: usize, retention: Duration) -> AuditSettings {
        AuditSettings {
            max_file_bytes,
            max_files,
            retention,
            records_per_minute: 1_000_000,
            replica: None,
        }
    }

    fn jsonl_files(dir: &Path, prefix: &str) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                name.starts_with(prefix) && name.ends_with(".jsonl")
            })
            .count()
    }

    fn record(i: usize) -> AuditRecord {
        let mut r = AuditRecord::new(&format!("{i:016x}"), "DoGet(Statement)", "alice", &[]);
        r.set_statement(&format!("SELECT {i}"));
        r
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("bund-audit-{name}-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn read_all(dir: &Path) -> Vec<serde_json::Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut lines = Vec::new();
        for f in &files {
            for l in std::fs::read_to_string(f).unwrap().lines() {
                lines.push(serde_json::from_str::<serde_json::Value>(l).unwrap());
            }
        }
        lines
    }

    #[test]
    fn records_are_lines_of_json_and_files_rotate_by_size() {
        let dir = scratch("rotate");
        let log = AuditLog::open(&dir, settings(2_000, 3, Duration::ZERO)).unwrap();
        for i in 0..100 {
            log.append(record(i));
        }
        log.flush(Duration::from_secs(5));
        let lines = read_all(&dir);
        let files = jsonl_files(&dir, "audit");
        // The current file plus at most three rotated ones; the oldest records are gone.
        assert_eq!(files, 4, "{files} files");
        assert!(lines.iter().any(|l| l["statement"] == "SELECT 99"));
        assert!(!lines.iter().any(|l| l["statement"] == "SELECT 0"));
        for l in &lines {
            assert_eq!(l["principal"], "alice");
            assert!(l["time"].as_str().unwrap().ends_with('Z'));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_within_retention_are_never_deleted() {
        let dir = scratch("retention");
        let log = AuditLog::open(&dir, settings(2_000, 3, Duration::from_secs(3600))).unwrap();
        for i in 0..100 {
            log.append(record(i));
        }
        log.flush(Duration::from_secs(5));
        let lines = read_all(&dir);
        assert!(std::fs::read_dir(&dir).unwrap().count() > 4);
        for i in 0..100 {
            let s = format!("SELECT {i}");
            assert!(lines.iter().any(|l| l["statement"] == s.as_str()), "{s}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn replicas_share_a_directory_each_writing_rotating_and_deleting_its_own_files() {
        let dir = scratch("replicas");
        let named = |name: &str| {
            let mut s = settings(2_000, 2, Duration::ZERO);
            s.replica = Some(name.to_string());
            s
        };
        let a = AuditLog::open(&dir, named("a")).unwrap();
        let a_b = AuditLog::open(&dir, named("a_b")).unwrap();
        let unnamed = AuditLog::open(&dir, settings(2_000, 2, Duration::ZERO)).unwrap();
        // a second writer of the same files is refused, saying what to do
        let again = AuditLog::open(&dir, named("a")).unwrap_err().to_string();
        assert!(again.contains("--replica NAME"), "{again}");
        let again = AuditLog::open(&dir, settings(1, 1, Duration::ZERO))
            .unwrap_err()
            .to_string();
        assert!(again.contains("another bund process"), "{again}");
        for i in 0..100 {
            a.append(record(i));
        }
        a.flush(Duration::from_secs(5));
        a_b.append(record(1000));
        unnamed.append(record(2000));
        a_b.flush(Duration::from_secs(5));
        unnamed.flush(Duration::from_secs(5));
        // "a" rotated past two old files and deleted its oldest, never the others'
        assert_eq!(jsonl_files(&dir, "audit@a-"), 2);
        assert_eq!(jsonl_files(&dir, "audit@a.jsonl"), 1);
        assert_eq!(jsonl_files(&dir, "audit@a_b"), 1);
        assert_eq!(jsonl_files(&dir, "audit.jsonl"), 1);
        let lines = read_all(&dir);
        let of = |statement: &str| lines.iter().find(|l| l["statement"] == statement).cloned();
        assert_eq!(of("SELECT 99").unwrap()["replica"], "a");
        assert_eq!(of("SELECT 1000").unwrap()["replica"], "a_b");
        assert!(of("SELECT 2000").unwrap()["replica"].is_null());
        assert!(of("SELECT 0").is_none(), "a's oldest file was deleted");
        // a replica that stops leaves its name free
        drop(a);
        let deadline = Instant::now() + Duration::from_secs(5);
        while AuditLog::open(&dir, named("a")).is_err() {
            assert!(Instant::now() < deadline, "the writer thread kept its lock");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_long_statement_is_kept_as_prefix_length_and_hash() {
        let mut r = AuditRecord::new("1", "GetFlightInfo(Statement)", "alice", &[]);
        let sql = format!("SELECT '{}'", "数".repeat(100_000));
        r.set_statement(&sql);
        let kept = r.statement.as_deref().unwrap();
        assert!(kept.len() <= STATEMENT_PREFIX && sql.starts_with(kept));
        assert_eq!(r.statement_bytes, Some(sql.len() as u64));
        assert_eq!(r.statement_sha256.as_deref().map(str::len), Some(64));
        r.set_error(&"x".repeat(100_000));
        assert!(r.error.as_deref().unwrap().len() <= ERROR_PREFIX + 3);
    }

    #[test]
    fn a_source_past_its_budget_is_refused_and_counted() {
        let dir = scratch("budget");
        let mut s = settings(1 << 20, 10, Duration::ZERO);
        s.records_per_minute = 50;
        let log = AuditLog::open(&dir, s).unwrap();
        for i in 0..20 {
            let mut r = record(i);
            r.set_source(None, Some("10.0.0.1"));
            log.append(r);
        }
        assert!(log.shared.wait("address:10.0.0.1").is_some());
        assert!(log.shared.wait("address:10.0.0.2").is_none());
        assert!(
            log.shared.wait("anonymous:10.0.0.1").is_none(),
            "failed logins do not use up the address's open data"
        );
        assert!(log.shared.wait("principal:bob").is_none());
        log.flush(Duration::from_secs(5));
        assert_eq!(read_all(&dir).len(), 5);
        let suppressed = log.shared.suppressed.lock().unwrap().clone();
        assert_eq!(suppressed.get("address:10.0.0.1"), Some(&15));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_disk_stops_service_until_the_backlog_is_written() {
        let dir = scratch("full");
        let current = dir.join("audit.jsonl");
        std::os::unix::fs::symlink("/dev/full", &current).unwrap();
        let log = AuditLog::open(&dir, settings(1 << 20, 10, Duration::ZERO)).unwrap();
        for i in 0..10 {
            log.append(record(i));
        }
        log.flush(Duration::from_secs(5));
        assert!(
            !log.shared.healthy.load(Ordering::SeqCst),
            "writes to /dev/full fail"
        );
        // room again: the file is replaced by a writable one
        std::fs::remove_file(&current).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !log.shared.healthy.load(Ordering::SeqCst) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(log.shared.healthy.load(Ordering::SeqCst));
        log.flush(Duration::from_secs(5));
        let lines = read_all(&dir);
        assert_eq!(lines.len(), 10, "the backlog was written, in order");
        assert_eq!(lines[0]["statement"], "SELECT 0");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn time_is_rfc3339_utc() {
        let t = rfc3339_now();
        assert_eq!(t.len(), "2026-11-27T21:30:05.123Z".len(), "{t}");
        assert!(t.starts_with("20"), "{t}");
    }
}
