//! The engine's clock. Every time the engine reads (measurement times checked against it, the
//! alarm rules, the link state, security events, retention) comes from one [`Clock`]: the
//! system's wall clock, unless [`super::Engine::start_clocked`] is given another. Timers
//! (`tokio::time` sleeps and intervals) only pace the engine's loops and are not clocks.

use std::sync::atomic::{AtomicI64, Ordering};

/// Wall-clock time as the engine sees it.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock ([`crate::store::now_ms`]): the engine's clock by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::store::now_ms()
    }
}

/// A clock that stands still until it is set or advanced: for tests and simulations that
/// need the engine to see a given time.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(now_ms: i64) -> ManualClock {
        ManualClock(AtomicI64::new(now_ms))
    }

    pub fn set(&self, now_ms: i64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
