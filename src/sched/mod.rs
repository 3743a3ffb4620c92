//! Packet schedulers: which subflow carries the next bytes of the connection.
//!
//! A scheduler is a per-connection policy. It sees the connection only through its own input
//! types ([`SchedContext`], [`SubflowView`]) and answers with a [`Decision`]; it never imports
//! connection internals (the MPTCP connection depends on this module, never the reverse).
//!
//! # Calling convention
//! The connection calls [`Scheduler::schedule`] in a loop while it has something to send:
//! after a [`Decision::Send`] it assigns up to `max_len` bytes of new data to that subflow
//! (raising the subflow's [`SubflowView::queued`] by the amount assigned, lowering
//! [`SchedContext::unsent`] and [`SchedContext::conn_window`]) and asks again; it stops at
//! [`Decision::Wait`]. Every decision is bounded by what the views say is possible, so the
//! loop terminates as long as the caller updates the views it passes.
//!
//! # Units and conventions
//! * Byte counts everywhere; `cwnd` is in bytes.
//! * The room a subflow has for newly assigned data is
//!   [`SubflowView::available`] = `send_capacity - queued` (saturating): `send_capacity` is what
//!   the congestion and peer windows allow now, `queued` what has already been assigned to the
//!   subflow but not yet sent.
//! * Indices in decisions (`subflow`, [`SubflowSet`], [`Blocked::subflow`]) are positions in the
//!   `subflows` slice passed to `schedule`, not subflow ids.
//! * Backup subflows (RFC 8684 section 3.3.8, "B" flag) carry data only when no regular usable
//!   subflow exists; potentially failed subflows only when no healthy usable subflow exists
//!   (see [`Class`]). All schedulers here follow that rule.
//!
//! Adding a scheduler: write one file with a type implementing [`Scheduler`], then add it to
//! [`NAMES`] and [`by_name`]. `schedule` must not allocate.

pub use crate::registry::RegisterError;
use crate::registry::Registry;
use crate::time::{Duration, Instant};

pub mod blest;
pub mod ecf;
pub mod minrtt;
pub mod redundant;
pub mod roundrobin;

pub use blest::Blest;
pub use ecf::Ecf;
pub use minrtt::MinRtt;
pub use redundant::Redundant;
pub use roundrobin::RoundRobin;

/// What a scheduler knows about one subflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubflowView {
    /// The connection's subflow id (stable while the subflow lives).
    pub id: u32,
    /// Smoothed RTT; `None` before the first sample.
    pub srtt: Option<Duration>,
    /// RTT variation; `None` before the first sample.
    pub rttvar: Option<Duration>,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Bytes sent and not yet acknowledged at subflow level.
    pub in_flight: u32,
    /// Bytes sendable now (limited by cwnd and the peer's subflow window).
    pub send_capacity: u32,
    /// Bytes assigned to this subflow and not yet sent.
    pub queued: u32,
    /// Sender MSS.
    pub mss: u16,
    /// The subflow is a backup path (ours or the peer's MP_PRIO / MP_JOIN B flag).
    pub backup: bool,
    /// Established, not closing, not failed.
    pub usable: bool,
    /// Retransmission timeouts suggest the path may be dead (TCP-PF).
    pub potentially_failed: bool,
}

impl SubflowView {
    /// Bytes of new data this subflow can take now: `send_capacity - queued`, saturating.
    pub fn available(&self) -> u32 {
        self.send_capacity.saturating_sub(self.queued)
    }

    /// Smoothed RTT in microseconds, `u64::MAX` when unknown (unmeasured subflows sort last).
    pub fn srtt_key(&self) -> u64 {
        self.srtt.map_or(u64::MAX, |d| {
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX - 1)
        })
    }

    /// Sender MSS, at least 1 so it can be used as a divisor.
    pub fn mss_nonzero(&self) -> u32 {
        u32::from(self.mss).max(1)
    }
}

/// The subflow holding the oldest data that is not yet acknowledged at data level, reported
/// when the connection-level receive window is full (input to opportunistic retransmission).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Blocked {
    /// Index in the `subflows` slice of the subflow the data was sent on.
    pub subflow: usize,
    /// Data sequence number of the first unacknowledged byte.
    pub dsn: u64,
    /// Length of that mapping.
    pub len: u32,
}

/// Connection-level state the scheduler sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedContext {
    pub now: Instant,
    /// Bytes waiting at connection level, not yet assigned to any subflow.
    pub unsent: u64,
    /// Peer's connection-level receive window left (bytes beyond what is already sent/assigned).
    pub conn_window: u64,
    /// Free space in the connection's send buffer.
    pub send_buffer_free: u64,
    /// Set when the connection window is full: who holds the oldest unacknowledged data.
    pub blocked: Option<Blocked>,
}

impl SchedContext {
    /// Bytes of new data the connection may hand out now: `min(unsent, conn_window)`.
    pub fn send_budget(&self) -> u64 {
        self.unsent.min(self.conn_window)
    }
}

/// A small set of subflow indices (`0..SubflowSet::CAPACITY`), a bitset; never allocates.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SubflowSet(u64);

impl SubflowSet {
    /// Largest index + 1 the set can hold.
    pub const CAPACITY: usize = 64;

    /// The empty set.
    pub const fn new() -> Self {
        SubflowSet(0)
    }
    /// Add `idx`; false (and nothing added) if `idx >= CAPACITY`.
    pub fn insert(&mut self, idx: usize) -> bool {
        if idx >= Self::CAPACITY {
            return false;
        }
        self.0 |= 1u64 << idx;
        true
    }
    /// Remove `idx` (no-op if absent or out of range).
    pub fn remove(&mut self, idx: usize) {
        if idx < Self::CAPACITY {
            self.0 &= !(1u64 << idx);
        }
    }
    pub fn contains(&self, idx: usize) -> bool {
        idx < Self::CAPACITY && self.0 & (1u64 << idx) != 0
    }
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    /// Indices in increasing order.
    pub fn iter(&self) -> SubflowSetIter {
        SubflowSetIter(self.0)
    }
}

impl core::fmt::Debug for SubflowSet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl IntoIterator for SubflowSet {
    type Item = usize;
    type IntoIter = SubflowSetIter;
    fn into_iter(self) -> SubflowSetIter {
        self.iter()
    }
}

/// Iterator over a [`SubflowSet`], increasing order.
#[derive(Clone, Copy, Debug)]
pub struct SubflowSetIter(u64);

impl Iterator for SubflowSetIter {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        if self.0 == 0 {
            return None;
        }
        let idx = self.0.trailing_zeros() as usize;
        self.0 &= self.0 - 1;
        Some(idx)
    }
}

/// A scheduler's answer.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Assign up to `max_len` bytes of new data to `subflows[subflow]`.
    Send { subflow: usize, max_len: u32 },
    /// Send the same next `max_len` bytes of new data on every subflow in the set.
    Redundant { subflows: SubflowSet, max_len: u32 },
    /// Re-send data-level bytes `dsn..dsn+len` (already sent elsewhere) on `subflows[subflow]`.
    /// If `penalise` is set, the connection should reduce that subflow's congestion window
    /// (halve cwnd and ssthresh, Raiciu et al. NSDI 2012 section 4.2).
    Reinject {
        subflow: usize,
        dsn: u64,
        len: u32,
        penalise: Option<usize>,
    },
    /// Nothing to do now; ask again when something changes (ack, new data, window update).
    Wait,
}

/// A per-connection scheduling policy. Implementations must not allocate in `schedule`.
pub trait Scheduler: Send + core::fmt::Debug {
    /// Name as accepted by [`by_name`].
    fn name(&self) -> &'static str;
    /// Pick the next action. Indices in the answer refer to `subflows`.
    fn schedule(&mut self, ctx: &SchedContext, subflows: &[SubflowView]) -> Decision;

    /// The subflow that sends again data already sent on another one: reinjection after
    /// a subflow failed or was closed, and the data-level retransmission timer's chunks
    /// (Linux's `get_retrans`). An index into `subflows`, which must be usable with room;
    /// `None` to wait. The default takes the regular subflow (backups only without one)
    /// with the lowest smoothed RTT among those with room that are not potentially failed.
    fn retransmit_subflow(
        &mut self,
        _ctx: &SchedContext,
        subflows: &[SubflowView],
    ) -> Option<usize> {
        default_retransmit_subflow(subflows)
    }

    /// The subflow that carries a connection-level signal on a pure ACK when no data
    /// segment does: our DATA_FIN, a reopened data-level window, ADD_ADDR, REMOVE_ADDR,
    /// MP_PRIO. `subflows` yields every subflow's view in order (index = position); the
    /// answer must be a usable one. The default: regular before backup, then the lowest
    /// smoothed RTT (1 s when unmeasured), the first of equals.
    fn signal_subflow(&self, subflows: &mut dyn Iterator<Item = SubflowView>) -> Option<usize> {
        default_signal_subflow(subflows)
    }
}

/// [`Scheduler::signal_subflow`]'s default: usable; regular before backup, then the lowest
/// smoothed RTT (1 s when unmeasured); the first of equals.
pub fn default_signal_subflow(subflows: &mut dyn Iterator<Item = SubflowView>) -> Option<usize> {
    subflows
        .enumerate()
        .filter(|(_, v)| v.usable)
        .min_by_key(|(_, v)| (v.backup, v.srtt.unwrap_or(Duration::from_secs(1))))
        .map(|(i, _)| i)
}

/// [`Scheduler::retransmit_subflow`]'s default: usable, room, not potentially failed;
/// regular before backup, then the lowest smoothed RTT (100 ms when unmeasured); the
/// first of equals.
pub fn default_retransmit_subflow(subflows: &[SubflowView]) -> Option<usize> {
    subflows
        .iter()
        .enumerate()
        .filter(|(_, v)| v.usable && v.available() > 0 && !v.potentially_failed)
        .min_by_key(|(_, v)| (v.backup, v.srtt.unwrap_or(Duration::from_millis(100))))
        .map(|(i, _)| i)
}

/// The built-in names accepted by [`by_name`]; the first is the default. [`names`] lists
/// these and the registered ones.
pub const NAMES: &[&str] = &["minrtt", "roundrobin", "redundant", "blest", "ecf"];

/// What [`register`] keeps: a function making a fresh scheduler for each connection.
pub type SchedulerFactory = dyn Fn() -> Box<dyn Scheduler> + Send + Sync;

static REGISTRY: Registry<SchedulerFactory> = Registry::new(NAMES);

/// Make a scheduler of your own available under `name` to every way of choosing one (the
/// command line's `--scheduler` in a program that registers it first, the runtime
/// builder, `ConnConfig::scheduler`, the C ABI's `scheduler=`): see `examples/
/// custom_scheduler.rs`. Fails if the name is taken or malformed.
pub fn register(
    name: &str,
    factory: impl Fn() -> Box<dyn Scheduler> + Send + Sync + 'static,
) -> Result<(), RegisterError> {
    REGISTRY.register(name, std::sync::Arc::new(factory))
}

/// Every scheduler name: the built-ins ([`NAMES`]), then the registered ones.
pub fn names() -> Vec<&'static str> {
    REGISTRY.names()
}

/// The default scheduler's name.
pub const DEFAULT: &str = "minrtt";

/// A fresh scheduler by name (`"default"` is an alias for [`DEFAULT`]); `None` for an
/// unknown name.
pub fn by_name(name: &str) -> Option<Box<dyn Scheduler>> {
    match name {
        "minrtt" | "default" => Some(Box::new(MinRtt::new())),
        "roundrobin" => Some(Box::new(RoundRobin::new())),
        "redundant" => Some(Box::new(Redundant::new())),
        "blest" => Some(Box::new(Blest::new())),
        "ecf" => Some(Box::new(Ecf::new())),
        _ => REGISTRY.get(name).map(|f| f()),
    }
}

/// The class of subflows allowed to carry new data: regular before backup, healthy before
/// potentially failed. Order of preference: (regular, healthy), (backup, healthy),
/// (regular, potentially failed), (backup, potentially failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Class {
    pub backup: bool,
    pub potentially_failed: bool,
}

impl Class {
    /// The most preferred class with at least one usable member, or `None` if no subflow is
    /// usable. Capacity plays no part: a regular subflow with a full window still keeps backup
    /// subflows idle.
    pub fn select(subflows: &[SubflowView]) -> Option<Class> {
        const ORDER: [Class; 4] = [
            Class {
                backup: false,
                potentially_failed: false,
            },
            Class {
                backup: true,
                potentially_failed: false,
            },
            Class {
                backup: false,
                potentially_failed: true,
            },
            Class {
                backup: true,
                potentially_failed: true,
            },
        ];
        ORDER
            .into_iter()
            .find(|c| subflows.iter().any(|v| c.admits(v)))
    }

    /// `v` is usable and belongs to this class.
    pub fn admits(&self, v: &SubflowView) -> bool {
        v.usable && v.backup == self.backup && v.potentially_failed == self.potentially_failed
    }
}

/// Index of the admitted subflow with the lowest srtt (unknown srtt last, ties to the lower
/// index), optionally only among those with room for new data.
pub fn lowest_rtt(subflows: &[SubflowView], class: Class, need_room: bool) -> Option<usize> {
    let mut best: Option<(u64, usize)> = None;
    for (i, v) in subflows.iter().enumerate() {
        if !class.admits(v) || (need_room && v.available() == 0) {
            continue;
        }
        let key = v.srtt_key();
        if best.is_none_or(|(k, _)| key < k) {
            best = Some((key, i));
        }
    }
    best.map(|(_, i)| i)
}

/// An admitted subflow with room that has no RTT estimate yet and nothing in flight or
/// queued: RTT-driven schedulers give it one segment so that it gets measured. Without this,
/// a subflow whose handshake gave no sample (a join whose SYN was retransmitted on a path
/// too short for timestamp echoes to measure) sorts last for ever while the measured
/// subflow always has room, carries nothing, and a dead path under it is never noticed.
pub fn unmeasured_probe(subflows: &[SubflowView], class: Class) -> Option<usize> {
    subflows.iter().position(|v| {
        class.admits(v)
            && v.srtt.is_none()
            && v.in_flight == 0
            && v.queued == 0
            && v.available() > 0
    })
}

/// A duration in microseconds, clamped to `u32::MAX` (about 71 minutes) so products of a
/// few such values and byte counts cannot overflow `u128`.
pub fn rtt_micros(d: Duration) -> u128 {
    d.as_micros().min(u128::from(u32::MAX))
}

/// `min(a, b)` as u32 (b already u32).
pub(crate) fn min_len(a: u64, b: u32) -> u32 {
    u32::try_from(a).map_or(b, |a| a.min(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subflow_set_basics() {
        let mut s = SubflowSet::new();
        assert!(s.is_empty());
        assert!(s.insert(0));
        assert!(s.insert(5));
        assert!(s.insert(63));
        assert!(!s.insert(64));
        assert_eq!(s.len(), 3);
        assert!(s.contains(5) && !s.contains(4) && !s.contains(1000));
        let v: Vec<usize> = s.iter().collect();
        assert_eq!(v, vec![0, 5, 63]);
        s.remove(5);
        s.remove(999);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 63]);
    }

    #[test]
    fn default_retransmit_subflow_prefers_regular_then_lowest_rtt_with_room() {
        let v = |id: u32, rtt_ms: Option<u64>, backup: bool, room: u32, pf: bool| SubflowView {
            id,
            srtt: rtt_ms.map(Duration::from_millis),
            send_capacity: room,
            mss: 1400,
            backup,
            usable: true,
            potentially_failed: pf,
            ..SubflowView::default()
        };
        // the backup is faster, but a regular subflow with room comes first
        let s = [
            v(1, Some(50), false, 10_000, false),
            v(2, Some(5), true, 10_000, false),
        ];
        assert_eq!(default_retransmit_subflow(&s), Some(0));
        // among regular ones the lowest RTT; no room, potentially failed or unusable: skipped
        let mut s = vec![
            v(1, Some(50), false, 10_000, false),
            v(2, Some(20), false, 0, false),
            v(3, Some(10), false, 10_000, true),
            v(4, Some(30), false, 10_000, false),
        ];
        assert_eq!(default_retransmit_subflow(&s), Some(3));
        s[3].usable = false;
        assert_eq!(default_retransmit_subflow(&s), Some(0));
        // only a backup left
        let s = [
            v(1, Some(50), false, 0, false),
            v(2, None, true, 100, false),
        ];
        assert_eq!(default_retransmit_subflow(&s), Some(1));
        assert_eq!(
            default_retransmit_subflow(&[v(1, None, false, 0, false)]),
            None
        );
        // every built-in scheduler keeps the default
        for n in NAMES {
            let s = [
                v(1, Some(50), false, 10_000, false),
                v(2, Some(5), false, 10_000, false),
            ];
            let ctx = SchedContext {
                now: Instant::ZERO,
                unsent: 1000,
                conn_window: 1000,
                send_buffer_free: 0,
                blocked: None,
            };
            assert_eq!(
                by_name(n).unwrap().retransmit_subflow(&ctx, &s),
                Some(1),
                "{n}"
            );
        }
    }

    #[test]
    fn default_signal_subflow_prefers_usable_regular_then_lowest_rtt() {
        let v = |rtt_ms: Option<u64>, backup: bool, usable: bool| SubflowView {
            srtt: rtt_ms.map(Duration::from_millis),
            backup,
            usable,
            ..SubflowView::default()
        };
        let pick = |s: &[SubflowView]| default_signal_subflow(&mut s.iter().copied());
        // a faster backup loses to a regular one; unusable ones never count
        assert_eq!(
            pick(&[v(Some(50), false, true), v(Some(5), true, true)]),
            Some(0)
        );
        assert_eq!(
            pick(&[v(Some(5), false, false), v(Some(50), false, true)]),
            Some(1)
        );
        // among regular ones the lowest RTT; unmeasured counts as 1 s; first of equals
        assert_eq!(
            pick(&[
                v(None, false, true),
                v(Some(900), false, true),
                v(Some(900), false, true)
            ]),
            Some(1)
        );
        assert_eq!(
            pick(&[v(None, true, true)]),
            Some(0),
            "a backup when nothing else"
        );
        assert_eq!(pick(&[v(Some(1), false, false)]), None);
        // every built-in scheduler keeps the default
        for n in NAMES {
            let s = [v(Some(50), false, true), v(Some(5), false, true)];
            assert_eq!(
                by_name(n).unwrap().signal_subflow(&mut s.iter().copied()),
                Some(1),
                "{n}"
            );
        }
    }

    #[test]
    fn by_name_knows_every_name() {
        for n in NAMES {
            let s = by_name(n).expect("listed name");
            assert_eq!(s.name(), *n);
        }
        assert_eq!(by_name("default").map(|s| s.name()), Some(DEFAULT));
        assert!(by_name("nope").is_none());
    }

    #[test]
    fn class_prefers_healthy_regular() {
        let reg = SubflowView {
            usable: true,
            ..Default::default()
        };
        let bak = SubflowView {
            usable: true,
            backup: true,
            ..Default::default()
        };
        let pf = SubflowView {
            usable: true,
            potentially_failed: true,
            ..Default::default()
        };
        let dead = SubflowView::default();
        assert_eq!(Class::select(&[bak, reg]).map(|c| c.backup), Some(false));
        assert_eq!(
            Class::select(&[bak, pf]),
            Some(Class {
                backup: true,
                potentially_failed: false
            })
        );
        assert_eq!(
            Class::select(&[pf, dead]),
            Some(Class {
                backup: false,
                potentially_failed: true
            })
        );
        assert_eq!(Class::select(&[dead]), None);
    }
}
