//! Wall-clock mapping for real drivers: `std::time::Instant` <-> [`crate::time::Instant`].
//!
//! This is one of the few places allowed to read a clock. The sans-IO core only sees the
//! microsecond counter this produces.

use crate::time::Instant;
use std::time::Duration;

/// Maps the monotonic OS clock onto the stack's microsecond [`Instant`], counting from
/// the moment the `Clock` was created (which is `Instant::ZERO`).
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        Clock {
            epoch: std::time::Instant::now(),
        }
    }

    /// A clock with an explicit epoch (for drivers that share one epoch across threads).
    pub fn with_epoch(epoch: std::time::Instant) -> Self {
        Clock { epoch }
    }

    /// The OS instant that maps to `Instant::ZERO`.
    pub fn epoch(&self) -> std::time::Instant {
        self.epoch
    }

    /// The current time as a stack instant.
    pub fn now(&self) -> Instant {
        self.from_std(std::time::Instant::now())
    }

    /// Converts an OS instant; instants before the epoch map to `Instant::ZERO`.
    pub fn from_std(&self, t: std::time::Instant) -> Instant {
        let d = t.saturating_duration_since(self.epoch);
        Instant::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    /// Converts a stack instant back to an OS instant (e.g. to compute a poll timeout).
    /// Saturates far in the future instead of overflowing.
    pub fn to_std(&self, t: Instant) -> std::time::Instant {
        let d = Duration::from_micros(t.total_micros());
        self.epoch
            .checked_add(d)
            .unwrap_or_else(|| self.epoch + Duration::from_secs(100 * 365 * 24 * 3600))
    }

    /// How long to sleep from now until `deadline` (zero if it has passed).
    pub fn until(&self, deadline: Instant) -> Duration {
        self.to_std(deadline)
            .saturating_duration_since(std::time::Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_monotonic() {
        let c = Clock::new();
        let a = c.now();
        std::thread::sleep(Duration::from_millis(2));
        let b = c.now();
        assert!(b > a);
        assert!(b - a >= Duration::from_millis(2));
        let t = Instant::from_millis(1234);
        assert_eq!(c.from_std(c.to_std(t)), t);
        assert_eq!(
            c.from_std(c.epoch() - Duration::from_secs(0)),
            Instant::ZERO
        );
        // Before the epoch saturates to zero.
        let later = Clock::with_epoch(std::time::Instant::now() + Duration::from_secs(10));
        assert_eq!(later.now(), Instant::ZERO);
        assert_eq!(c.until(Instant::ZERO), Duration::ZERO);
    }
}
