//! A memory pool inside another: what its reservations hold counts against the shared pool
//! (the server's `memory_limit_mb`) and against a cap of its own, so the queries of one kind
//! of principal (requests without credentials) can never take more than their share.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{Result, resources_datafusion_err};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

#[derive(Debug)]
pub(crate) struct CappedPool {
    shared: Arc<dyn MemoryPool>,
    cap: usize,
    used: AtomicUsize,
}

impl CappedPool {
    pub(crate) fn new(shared: Arc<dyn MemoryPool>, cap: usize) -> Self {
        Self {
            shared,
            cap,
            used: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Display for CappedPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "capped({} bytes) of {}", self.cap, self.shared.name())
    }
}

impl MemoryPool for CappedPool {
    fn name(&self) -> &str {
        "bund_capped"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.shared.grow(reservation, additional);
        self.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.shared.shrink(reservation, shrink);
        self.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(additional).filter(|n| *n <= self.cap)
            })
            .map_err(|used| {
                resources_datafusion_err!(
                    "Failed to allocate {additional} bytes for {}: the queries of requests without credentials hold {used} of their {} bytes",
                    reservation.consumer().name(),
                    self.cap
                )
            })?;
        if let Err(e) = self.shared.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(e);
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    use super::*;

    #[test]
    fn the_cap_and_the_shared_limit_both_hold() {
        let shared: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1000));
        let capped: Arc<dyn MemoryPool> = Arc::new(CappedPool::new(Arc::clone(&shared), 300));
        let a = MemoryConsumer::new("a").register(&capped);
        a.try_grow(200).unwrap();
        assert!(a.try_grow(200).is_err(), "past the cap");
        assert_eq!(shared.reserved(), 200);
        let other = MemoryConsumer::new("other").register(&shared);
        other.try_grow(750).unwrap();
        assert!(a.try_grow(100).is_err(), "past the shared limit");
        assert_eq!(capped.reserved(), 200);
        drop(a);
        assert_eq!(capped.reserved(), 0);
        assert_eq!(shared.reserved(), 750);
    }
}
