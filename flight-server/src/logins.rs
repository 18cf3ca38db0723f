//! Password checks on threads of their own. An argon2 check takes 19 MiB and tens of
//! milliseconds by design. Run on tokio's blocking pool, a hundred logins at once had
//! spread those allocations over as many threads, and the allocator kept up to 38 MiB per
//! thread's arena afterwards: 540 MiB resident for a hundred failed logins. Here a fixed
//! number of threads (`max_concurrent_logins`) check passwords one at a time each, so the
//! memory they hold is bounded by their number; logins past what they can take within the
//! queue timeout are refused as busy.
//!
//! A user and password that passed the check are remembered for `login_cache_secs` (five
//! minutes by default; [`Verified`]): a BI tool or a driver that opens a connection, and so
//! logs in, for each query window does not wait for argon2 each time (a handshake took 19 ms
//! with the check and 0.4 ms without here; ADBC's connect 38 against 14 ms). Only successes
//! are remembered, so every wrong password still costs the whole check.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Logins waiting for a thread, per thread.
const QUEUED_PER_THREAD: usize = 64;

pub(crate) struct Logins {
    tx: SyncSender<Job>,
    threads: usize,
}

/// Why a check produced no answer.
#[derive(Debug)]
pub(crate) enum NotChecked {
    /// Every thread is busy and the queue is full, or the answer did not come in time.
    Busy,
    /// The checking thread is gone (a bug).
    Lost,
}

impl Logins {
    pub(crate) fn new(threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(threads * QUEUED_PER_THREAD);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads {
            let rx = std::sync::Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("bund-login-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Self { tx, threads })
    }

    /// Runs `check` on a login thread and waits for its answer up to `timeout`.
    pub(crate) async fn check<T: Send + 'static>(
        &self,
        check: impl FnOnce() -> T + Send + 'static,
        timeout: Duration,
    ) -> Result<T, NotChecked> {
        let (done, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(check());
        });
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(NotChecked::Busy),
            Err(TrySendError::Disconnected(_)) => return Err(NotChecked::Lost),
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(NotChecked::Lost),
            Err(_) => Err(NotChecked::Busy),
        }
    }

    pub(crate) fn threads(&self) -> usize {
        self.threads
    }
}

/// Most logins remembered; past it, expired ones are forgotten and, when none has
/// expired, a new one is not remembered.
const MAX_VERIFIED: usize = 4096;

/// Logins that passed the password check recently. Each is kept as an HMAC, under a key
/// this process draws at start, of the configuration version, the user and the password:
/// no password is kept, nothing is shared with other processes, and a new configuration
/// (a changed password hash, a removed principal) checks every password again.
pub(crate) struct Verified {
    key: [u8; 32],
    ttl: Duration,
    seen: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Verified {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            key: rand::random(),
            ttl,
            seen: Mutex::default(),
        }
    }

    /// The digest a login is remembered by.
    pub(crate) fn digest(&self, version: &str, user: &str, password: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in [version, user, password] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// Whether this login passed the check within the cache's lifetime.
    pub(crate) fn contains(&self, digest: &[u8; 32]) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(digest).is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// Remembers a login that passed the check.
    pub(crate) fn insert(&self, digest: [u8; 32]) {
        if self.ttl.is_zero() {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_VERIFIED && !seen.contains_key(&digest) {
            let ttl = self.ttl;
            seen.retain(|_, at| at.elapsed() < ttl);
            if seen.len() >= MAX_VERIFIED {
                return;
            }
        }
        seen.insert(digest, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_remembered_for_its_version_user_and_password_only() {
        let verified = Verified::new(Duration::from_secs(300));
        let ok = verified.digest("v1", "alice", "secret");
        assert!(!verified.contains(&ok));
        verified.insert(ok);
        assert!(verified.contains(&verified.digest("v1", "alice", "secret")));
        for (version, user, password) in [
            ("v2", "alice", "secret"),
            ("v1", "alice", "secreT"),
            ("v1", "bob", "secret"),
            // the parts are length-prefixed: moving a character across them is another login
            ("v1", "alices", "ecret"),
        ] {
            assert!(
                !verified.contains(&verified.digest(version, user, password)),
                "{version} {user} {password}"
            );
        }
        let other_process = Verified::new(Duration::from_secs(300));
        assert_ne!(other_process.digest("v1", "alice", "secret"), ok);
    }

    #[test]
    fn nothing_is_remembered_with_a_zero_lifetime_or_past_the_limit() {
        let off = Verified::new(Duration::ZERO);
        let d = off.digest("v1", "alice", "secret");
        off.insert(d);
        assert!(!off.contains(&d));
        let full = Verified::new(Duration::from_secs(300));
        for i in 0..MAX_VERIFIED {
            full.insert(full.digest("v1", &format!("user{i}"), "pw"));
        }
        let late = full.digest("v1", "late", "pw");
        full.insert(late);
        assert!(!full.contains(&late), "none had expired: not remembered");
        assert!(full.contains(&full.digest("v1", "user0", "pw")));
    }
}
