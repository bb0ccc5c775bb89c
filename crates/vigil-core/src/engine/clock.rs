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

/// A clock that runs `speed` times faster than the system's, from `origin_ms` at the instant it
/// is made: "a day in a few minutes" for the headless demonstration of the remote cohort
/// (`vigilctl remote demo`), whose engine, watch and simulated devices all read it. Never a
/// station's clock: all it stamps is in the future of the wall clock, so it writes only to a
/// database of its own.
#[derive(Debug)]
pub struct ScaledClock {
    origin_ms: i64,
    speed: f64,
    start: std::time::Instant,
}

impl ScaledClock {
    /// `speed` below 1, or not a number, is taken as 1.
    pub fn new(origin_ms: i64, speed: f64) -> ScaledClock {
        ScaledClock {
            origin_ms,
            speed: if speed.is_finite() {
                speed.max(1.0)
            } else {
                1.0
            },
            start: std::time::Instant::now(),
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }
}

impl Clock for ScaledClock {
    fn now_ms(&self) -> i64 {
        let ms = self.start.elapsed().as_secs_f64() * 1000.0 * self.speed;
        self.origin_ms.saturating_add(ms as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scaled_clock_runs_its_speed_times_faster_and_never_goes_back() {
        let c = ScaledClock::new(1_000_000, 1_000.0);
        let first = c.now_ms();
        assert!(first >= 1_000_000);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let later = c.now_ms();
        // At least 20 ms of real time passed: at least 20 s of the clock's.
        assert!(later - 1_000_000 >= 20_000, "{later}");
        assert!(later >= first);
        assert_eq!(ScaledClock::new(0, 0.5).speed(), 1.0);
        assert_eq!(ScaledClock::new(0, f64::NAN).speed(), 1.0);
    }
}
