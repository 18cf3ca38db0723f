//! Password checks on threads of their own. An argon2 check takes 19 MiB and tens of
//! milliseconds by design. Run on tokio's blocking pool, a hundred logins at once had
//! spread those allocations over as many threads, and the allocator kept up to 38 MiB per
//! thread's arena afterwards: 540 MiB resident for a hundred failed logins. Here a fixed
//! number of threads (`max_concurrent_logins`) check passwords one at a time each, so the
//! memory they hold is bounded by their number; logins past what they can take within the
//! queue timeout are refused as busy.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::Duration;

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
