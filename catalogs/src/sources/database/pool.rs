//! The connection pool shared by the networked databases: at most `pool_size` connections
//! in use, idle ones kept for the next statement. A connection goes back to the idle list
//! only through [`Pooled::release`], after its statement ran to the end; dropped otherwise
//! (an error, or a scan whose consumer went away mid-stream) it is closed, which also
//! stops the server sending rows nobody reads.

use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A connection the pool can tell is closed.
pub(crate) trait Connection {
    fn is_open(&self) -> bool;
}

impl Connection for tokio_postgres::Client {
    fn is_open(&self) -> bool {
        !self.is_closed()
    }
}

impl Connection for mysql_async::Conn {
    fn is_open(&self) -> bool {
        !self.is_disconnected()
    }
}

pub(crate) struct Pool<C> {
    idle: Mutex<Vec<C>>,
    slots: Arc<Semaphore>,
}

impl<C: Connection> Pool<C> {
    pub(crate) fn new(size: usize) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(size)),
        }
    }

    /// Waits for a free slot; `None` when the pool is closed.
    pub(crate) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }

    /// The most recently used idle connection that is still open, if any.
    pub(crate) fn idle(&self) -> Option<C> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(c) = idle.pop() {
            if c.is_open() {
                return Some(c);
            }
        }
        None
    }

    /// A connection on loan, holding `slot` until it is dropped.
    pub(crate) fn lend(&self, conn: C, slot: OwnedSemaphorePermit) -> Pooled<'_, C> {
        Pooled {
            pool: self,
            conn: Some(conn),
            reusable: false,
            _slot: slot,
        }
    }
}

/// A connection on loan; see the module documentation.
pub(crate) struct Pooled<'a, C: Connection> {
    pool: &'a Pool<C>,
    conn: Option<C>,
    reusable: bool,
    _slot: OwnedSemaphorePermit,
}

impl<C: Connection> Pooled<'_, C> {
    /// Back to the idle list: the connection is between statements.
    pub(crate) fn release(mut self) {
        self.reusable = true;
    }
}

impl<C: Connection> std::ops::Deref for Pooled<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl<C: Connection> std::ops::DerefMut for Pooled<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl<C: Connection> Drop for Pooled<'_, C> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take()
            && self.reusable
            && c.is_open()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(c);
        }
    }
}
