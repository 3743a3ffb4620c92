//! The connection's own timers in one table (the subflows' TCP timers live in their
//! engines, the path manager's in the path manager). Each [`Timer`] is armed with a
//! deadline or not; `Connection::poll_timeout` is the earliest of the table's
//! [`TimerTable::next`] and the others, and `Connection::handle_timeout` handles each
//! timer that is due.

use crate::time::Instant;

/// A connection-level timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// Our DATA_FIN is not acknowledged: send it again on every usable subflow (backoff).
    DataFin,
    /// Data not acknowledged at the data level: send it again (RFC 8684 3.3.6; backoff).
    DataRtx,
    /// The peer's data-level window is closed while we have data: probe it.
    ZeroWindowProbe,
    /// Our MP_FAIL on the only subflow went unanswered (no infinite mapping): reset.
    MpFail,
    /// Idle long enough: give buffer memory back (`MEM_IDLE_TRIM`).
    MemTrim,
}

impl Timer {
    /// Every timer, in the order `handle_timeout` looks at them.
    pub const ALL: [Timer; 5] = [
        Timer::DataFin,
        Timer::DataRtx,
        Timer::ZeroWindowProbe,
        Timer::MpFail,
        Timer::MemTrim,
    ];

    fn idx(self) -> usize {
        self as usize
    }
}

/// Deadlines of the [`Timer`]s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimerTable {
    at: [Option<Instant>; 5],
}

impl TimerTable {
    /// Arm `t` for `at` (re-arming moves the deadline).
    pub fn set(&mut self, t: Timer, at: Instant) {
        self.at[t.idx()] = Some(at);
    }
    /// Disarm `t`.
    pub fn clear(&mut self, t: Timer) {
        self.at[t.idx()] = None;
    }
    /// `t`'s deadline, if armed.
    pub fn get(&self, t: Timer) -> Option<Instant> {
        self.at[t.idx()]
    }
    /// Whether `t` is armed.
    pub fn is_armed(&self, t: Timer) -> bool {
        self.at[t.idx()].is_some()
    }
    /// Whether `t` is armed and its deadline has come.
    pub fn is_due(&self, t: Timer, now: Instant) -> bool {
        self.at[t.idx()].is_some_and(|d| d <= now)
    }
    /// If `t` is due: disarm it and say so.
    pub fn take_due(&mut self, t: Timer, now: Instant) -> bool {
        let due = self.is_due(t, now);
        if due {
            self.clear(t);
        }
        due
    }
    /// The earliest armed deadline.
    pub fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_arms_reports_and_disarms_each_timer_on_its_own() {
        let t0 = Instant::from_millis(1000);
        let mut tt = TimerTable::default();
        assert_eq!(tt.next(), None);
        for t in Timer::ALL {
            assert!(!tt.is_armed(t) && !tt.is_due(t, t0));
        }
        tt.set(Timer::DataRtx, Instant::from_millis(1200));
        tt.set(Timer::MemTrim, Instant::from_millis(1100));
        assert_eq!(tt.next(), Some(Instant::from_millis(1100)));
        assert!(!tt.take_due(Timer::MemTrim, t0), "not yet");
        assert!(tt.is_armed(Timer::MemTrim));
        let t1 = Instant::from_millis(1150);
        assert!(tt.take_due(Timer::MemTrim, t1));
        assert!(!tt.is_armed(Timer::MemTrim), "disarmed once taken");
        assert!(!tt.is_due(Timer::DataRtx, t1));
        assert_eq!(tt.next(), Some(Instant::from_millis(1200)));
        // re-arming moves the deadline, later or earlier
        tt.set(Timer::DataRtx, Instant::from_millis(900));
        assert!(tt.is_due(Timer::DataRtx, t0));
        assert_eq!(tt.get(Timer::DataRtx), Some(Instant::from_millis(900)));
        tt.clear(Timer::DataRtx);
        assert_eq!(tt.next(), None);
    }
}
