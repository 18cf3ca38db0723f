//! The audit log: one JSON object per line for every query and every refusal, appended by a
//! writer thread. Each record is written to the file as soon as it arrives (it survives a
//! crash of the process), and the file is fsynced at least every [`SYNC_EVERY`] or every
//! [`SYNC_RECORDS`] records (it survives a crash of the machine within that bound). The
//! file is rotated by size; `system.audit_log` reads every file of the directory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Longest time a written record waits for fsync.
const SYNC_EVERY: Duration = Duration::from_millis(200);
/// Most records written between two fsyncs.
const SYNC_RECORDS: usize = 256;
/// Records waiting for the writer before callers wait for it.
const QUEUE: usize = 16_384;
/// The file being written.
const CURRENT: &str = "audit.jsonl";

/// One audited request. Field names are the columns of `system.audit_log`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AuditRecord {
    /// RFC 3339, UTC, milliseconds.
    pub(crate) time: String,
    pub(crate) request_id: String,
    pub(crate) principal: String,
    pub(crate) roles: Vec<String>,
    pub(crate) rpc: String,
    pub(crate) statement: Option<String>,
    pub(crate) datasets: Vec<String>,
    pub(crate) policies: Vec<String>,
    pub(crate) rows: Option<u64>,
    pub(crate) bytes: Option<u64>,
    pub(crate) duration_ms: Option<f64>,
    /// ok, error, refused, cancelled, timeout or dropped (the client went away).
    pub(crate) outcome: String,
    /// The gRPC status code of a failure.
    pub(crate) code: Option<String>,
    pub(crate) error: Option<String>,
}

impl AuditRecord {
    pub(crate) fn new(request_id: &str, rpc: &str, principal: &str, roles: &[String]) -> Self {
        Self {
            time: rfc3339_now(),
            request_id: request_id.to_string(),
            principal: principal.to_string(),
            roles: roles.to_vec(),
            rpc: rpc.to_string(),
            statement: None,
            datasets: Vec::new(),
            policies: Vec::new(),
            rows: None,
            bytes: None,
            duration_ms: None,
            outcome: "ok".to_string(),
            code: None,
            error: None,
        }
    }
}

/// The current time as `2026-11-27T21:30:05.123Z`.
pub(crate) fn rfc3339_now() -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
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

/// Where records go. Cheap to clone; the writer thread ends when every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct AuditLog {
    tx: SyncSender<AuditRecord>,
}

impl AuditLog {
    /// Opens (creating) the directory and starts the writer thread.
    pub(crate) fn open(dir: &Path, max_file_bytes: u64, max_files: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let writer = Writer::open(dir.to_path_buf(), max_file_bytes, max_files)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("bund-audit".into())
            .spawn(move || writer.run(&rx))?;
        Ok(Self { tx })
    }

    /// Appends a record. Waits only when the writer is [`QUEUE`] records behind.
    pub(crate) fn append(&self, record: AuditRecord) {
        if self.tx.send(record).is_err() {
            tracing::error!("the audit writer has stopped; a record was not written");
        }
    }
}

struct Writer {
    dir: PathBuf,
    file: File,
    size: u64,
    max_file_bytes: u64,
    max_files: usize,
    unsynced: usize,
    last_sync: Instant,
}

impl Writer {
    fn open(dir: PathBuf, max_file_bytes: u64, max_files: usize) -> std::io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(CURRENT))?;
        let size = file.metadata()?.len();
        Ok(Self {
            dir,
            file,
            size,
            max_file_bytes,
            max_files,
            unsynced: 0,
            last_sync: Instant::now(),
        })
    }

    fn run(mut self, rx: &Receiver<AuditRecord>) {
        let mut line = Vec::with_capacity(1024);
        loop {
            match rx.recv_timeout(SYNC_EVERY) {
                Ok(record) => {
                    line.clear();
                    if serde_json::to_writer(&mut line, &record).is_err() {
                        continue;
                    }
                    line.push(b'\n');
                    if let Err(e) = self.write(&line) {
                        tracing::error!(error = %e, "cannot write the audit log");
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.sync();
                    return;
                }
            }
            if self.unsynced > 0
                && (self.unsynced >= SYNC_RECORDS || self.last_sync.elapsed() >= SYNC_EVERY)
            {
                self.sync();
            }
        }
    }

    fn write(&mut self, line: &[u8]) -> std::io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 > self.max_file_bytes {
            self.rotate()?;
        }
        // One write per record: a reader never sees half of one unless the disk is full.
        self.file.write_all(line)?;
        self.size += line.len() as u64;
        self.unsynced += 1;
        Ok(())
    }

    fn sync(&mut self) {
        if let Err(e) = self.file.sync_data() {
            tracing::error!(error = %e, "cannot fsync the audit log");
        }
        self.unsynced = 0;
        self.last_sync = Instant::now();
    }

    /// `audit.jsonl` → `audit-<time>.jsonl`, a new `audit.jsonl`, and the oldest rotated
    /// files beyond `max_files` deleted.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.sync();
        let stamp: String = rfc3339_now().chars().filter(char::is_ascii_digit).collect();
        let mut target = self.dir.join(format!("audit-{stamp}.jsonl"));
        let mut n = 1;
        while target.exists() {
            target = self.dir.join(format!("audit-{stamp}-{n}.jsonl"));
            n += 1;
        }
        std::fs::rename(self.dir.join(CURRENT), &target)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(CURRENT))?;
        self.size = 0;
        let mut rotated: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
            })
            .collect();
        rotated.sort();
        while rotated.len() > self.max_files {
            let oldest = rotated.remove(0);
            if let Err(e) = std::fs::remove_file(&oldest) {
                tracing::warn!(file = %oldest.display(), error = %e, "cannot delete an old audit file");
            }
        }
        Ok(())
    }
}

/// The server's audit log, installed once at start.
static LOG: std::sync::OnceLock<AuditLog> = std::sync::OnceLock::new();

/// Makes `log` the destination of [`append`]. Only the first call has an effect.
pub(crate) fn install(log: AuditLog) {
    let _ = LOG.set(log);
}

/// Appends a record to the installed log (nowhere when none is installed: unit tests).
pub(crate) fn append(record: AuditRecord) {
    if let Some(log) = LOG.get() {
        log.append(record);
    }
}

/// What one request has learnt about itself so far, for the record of a refusal.
#[derive(Debug, Default, Clone)]
pub(crate) struct RequestContext {
    pub(crate) principal: Option<String>,
    pub(crate) roles: Vec<String>,
    pub(crate) statement: Option<String>,
}

tokio::task_local! {
    static REQUEST: std::cell::RefCell<RequestContext>;
}

/// Runs a request's future with its own [`RequestContext`].
pub(crate) async fn with_context<F: std::future::Future>(fut: F) -> (F::Output, RequestContext) {
    REQUEST
        .scope(std::cell::RefCell::new(RequestContext::default()), async {
            let out = fut.await;
            let ctx = REQUEST.with(|c| c.borrow().clone());
            (out, ctx)
        })
        .await
}

/// Notes who is asking, for the audit record of a refusal.
pub(crate) fn note_principal(id: &str, roles: &[String]) {
    let _ = REQUEST.try_with(|c| {
        let mut c = c.borrow_mut();
        c.principal = Some(id.to_string());
        c.roles = roles.to_vec();
    });
}

/// Notes the statement a request runs.
pub(crate) fn note_statement(sql: &str) {
    let _ = REQUEST.try_with(|c| c.borrow_mut().statement = Some(sql.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> AuditRecord {
        let mut r = AuditRecord::new(&format!("{i:016x}"), "DoGet(Statement)", "alice", &[]);
        r.statement = Some(format!("SELECT {i}"));
        r
    }

    #[test]
    fn records_are_lines_of_json_and_files_rotate_by_size() {
        let dir = std::env::temp_dir().join(format!("bund-audit-{}", rand::random::<u64>()));
        let log = AuditLog::open(&dir, 2_000, 3).unwrap();
        for i in 0..100 {
            log.append(record(i));
        }
        drop(log);
        // The writer syncs and stops once every handle is gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut lines = Vec::new();
        while Instant::now() < deadline {
            lines.clear();
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for f in &files {
                for l in std::fs::read_to_string(f).unwrap().lines() {
                    lines.push(serde_json::from_str::<serde_json::Value>(l).unwrap());
                }
            }
            if lines.iter().any(|l| l["statement"] == "SELECT 99") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let files = std::fs::read_dir(&dir).unwrap().count();
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
    fn time_is_rfc3339_utc() {
        let t = rfc3339_now();
        assert_eq!(t.len(), "2026-11-27T21:30:05.123Z".len(), "{t}");
        assert!(t.starts_with("20"), "{t}");
    }
}
