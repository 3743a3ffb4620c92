//! Per-subflow congestion control (RFC 5681 Reno, RFC 9438 CUBIC) and the MPTCP coupled
//! algorithms (RFC 6356 LIA, OLIA, BALIA).
//!
//! Every controller works on one subflow. The coupled ones additionally read a
//! [`CouplingView`] of all subflows of the MPTCP connection, which the connection fills in
//! before feeding segments to each subflow. Without a view (or with a single usable path)
//! they behave like Reno.
//!
//! Units: windows are in bytes; `acked` is the number of newly acknowledged bytes.

pub use crate::registry::RegisterError;
use crate::registry::Registry;
use crate::time::{Duration, Instant};

mod balia;
mod cubic;
pub mod hystart;
mod lia;
mod olia;
mod reno;

pub use balia::{Balia, BaliaIncrease};
pub use cubic::{Cubic, CubicIncrease};
pub use lia::{lia_alpha, Lia, LiaIncrease};
pub use olia::{Olia, OliaIncrease};
pub use reno::{Reno, RenoIncrease};

/// Maximum number of subflows in a coupling view.
pub const MAX_COUPLED: usize = 8;

/// The built-in names accepted by [`by_name`]; [`names`] lists these and the registered
/// ones.
pub const NAMES: &[&str] = &["reno", "cubic", "lia", "olia", "balia"];

/// What [`register`] keeps: a function making a fresh controller for a subflow, given the
/// subflow's MSS (the initial window is 10 of them, RFC 6928).
pub type ControllerFactory = dyn Fn(u16) -> Box<dyn CongestionControl> + Send + Sync;

static REGISTRY: Registry<ControllerFactory> = Registry::new(NAMES);

/// Make a congestion controller of your own available under `name` (the runtime builder's
/// `congestion`, `tcp::Config::congestion` through [`canonical`], the C ABI's
/// `congestion=`). Fails if the name is taken or malformed.
pub fn register(
    name: &str,
    factory: impl Fn(u16) -> Box<dyn CongestionControl> + Send + Sync + 'static,
) -> Result<(), RegisterError> {
    REGISTRY.register(name, std::sync::Arc::new(factory))
}

/// Every controller name: the built-ins ([`NAMES`]), then the registered ones.
pub fn names() -> Vec<&'static str> {
    REGISTRY.names()
}

/// `name` as the `&'static str` a `tcp::Config` holds, if it names a controller.
pub fn canonical(name: &str) -> Option<&'static str> {
    REGISTRY.canonical(name)
}

/// One subflow as seen by a coupled controller.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PathCc {
    pub cwnd: u32,
    pub srtt: Duration,
    pub mss: u16,
    /// Bytes acknowledged since the last loss on this path (OLIA's l2).
    pub bytes_since_loss: u64,
    /// Bytes acknowledged between the last two losses (OLIA's l1).
    pub bytes_between_last_losses: u64,
    /// False for paths that must not be counted (backup, not established, failed).
    pub usable: bool,
}

/// All subflows of one MPTCP connection; `paths[me]` is the subflow being driven.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CouplingView {
    pub me: usize,
    pub len: usize,
    pub paths: [PathCc; MAX_COUPLED],
}

impl CouplingView {
    /// The filled-in paths.
    pub fn paths(&self) -> &[PathCc] {
        &self.paths[..self.len.min(MAX_COUPLED)]
    }

    /// Number of usable paths.
    pub fn usable_count(&self) -> usize {
        self.paths().iter().filter(|p| p.usable).count()
    }

    /// A copy in which path `me` carries the live window `cwnd` (the view may be stale)
    /// and is marked usable; `None` if `me` is out of range or fewer than 2 paths are usable.
    pub(crate) fn with_me(&self, cwnd: u32) -> Option<CouplingView> {
        if self.me >= self.len.min(MAX_COUPLED) {
            return None;
        }
        let mut v = *self;
        v.paths[v.me].cwnd = cwnd;
        v.paths[v.me].usable = true;
        if v.usable_count() < 2 {
            return None;
        }
        Some(v)
    }
}

/// Round-trip time in seconds, floored at 100 us so that divisions stay finite.
pub(crate) fn rtt_secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-4)
}

/// What a controller may look at when an ACK or a loss is processed.
#[derive(Clone, Copy, Debug)]
pub struct AckContext<'a> {
    /// Bytes in flight before this event (RFC 5681 FlightSize).
    pub in_flight: u32,
    /// Sender MSS of the subflow.
    pub mss: u16,
    pub srtt: Option<Duration>,
    pub coupling: Option<&'a CouplingView>,
    /// `on_rto` only: the loss this timeout reports was already answered (the timer fired
    /// during fast recovery, whose reduction stands, or it fired again for a segment the
    /// timer already retransmitted, RFC 5681 3.1): keep ssthresh, collapse cwnd alone.
    pub hold_ssthresh: bool,
}

/// A congestion controller for one subflow.
pub trait CongestionControl: Send + core::fmt::Debug {
    fn name(&self) -> &'static str;
    /// Congestion window in bytes.
    fn cwnd(&self) -> u32;
    /// Slow-start threshold in bytes (`u32::MAX` until the first loss).
    fn ssthresh(&self) -> u32;
    /// `acked` new bytes were cumulatively acknowledged (outside loss recovery).
    fn on_ack(&mut self, now: Instant, acked: u32, rtt: Option<Duration>, ctx: &AckContext);
    /// A loss was detected by fast retransmit / SACK (once per recovery episode).
    fn on_congestion_event(&mut self, now: Instant, ctx: &AckContext);
    /// The retransmission timer expired.
    fn on_rto(&mut self, now: Instant, ctx: &AckContext);
    /// Loss recovery ended (the recovery point was acknowledged).
    fn on_recovery_end(&mut self, _now: Instant) {}
    /// MPTCP penalisation: the connection's scheduler found this subflow holding the oldest
    /// unacknowledged data while the data-level window is full, and a faster subflow takes
    /// that data over (Raiciu et al., NSDI 2012, 4.2). Not a loss: by default the window is
    /// halved and, in congestion avoidance only, ssthresh too, so a subflow still in slow
    /// start goes on doubling from the smaller window (the rule of the reference
    /// implementation, multipath-tcp.org's `mptcp_rcv_buf_optimization`). Ending slow start
    /// here left a wide long-RTT path at a few segments growing one per RTT
    /// (docs/PERFORMANCE.md, "Aggregation").
    fn on_penalty(&mut self, now: Instant, ctx: &AckContext) {
        self.on_congestion_event(now, ctx);
    }
    /// True for controllers that read a [`CouplingView`] (the connection builds one for
    /// them before every ACK and timeout).
    fn coupled(&self) -> bool {
        false
    }
}

/// A controller by name (see [`names`]), with an initial window of 10 * `mss` (RFC 6928);
/// `None` for an unknown name.
pub fn by_name(name: &str, mss: u16) -> Option<Box<dyn CongestionControl>> {
    match name {
        "reno" => Some(Box::new(Reno::new(mss))),
        "cubic" => Some(Box::new(Cubic::new(mss))),
        "lia" => Some(Box::new(Lia::new(mss))),
        "olia" => Some(Box::new(Olia::new(mss))),
        "balia" => Some(Box::new(Balia::new(mss))),
        _ => REGISTRY.get(name).map(|f| f(mss)),
    }
}

/// What differs between classic (loss-based, window) controllers: how congestion
/// avoidance grows the window, and optionally how a loss, an RTO or the end of recovery
/// change it. [`Classic`] does the rest (slow start by byte counting, the window and
/// ssthresh, the MSS) the same way for every algorithm, so a new controller is one type
/// implementing this and one `cc::register` line (neqo's shape). Reno, LIA, OLIA, BALIA
/// and CUBIC are built this way.
pub trait WindowIncrease: Send + core::fmt::Debug + 'static {
    /// Name as in the registry.
    fn name(&self) -> &'static str;
    /// Whether it reads the [`CouplingView`] in [`AckContext::coupling`] (LIA, OLIA,
    /// BALIA): the connection builds one before every ACK and timeout.
    fn coupled(&self) -> bool {
        false
    }
    /// Congestion avoidance: `acked` bytes were newly acknowledged beyond slow start
    /// (`core.cwnd >= core.ssthresh`); grow `core.cwnd` (`RenoCore::grow`, `reno_ca`).
    fn on_ca_ack(
        &mut self,
        core: &mut RenoCore,
        now: Instant,
        acked: u32,
        rtt: Option<Duration>,
        ctx: &AckContext,
    );
    /// A loss (fast retransmit): by default ssthresh = cwnd = FlightSize / 2 (RFC 5681).
    fn on_congestion_event(&mut self, core: &mut RenoCore, _now: Instant, ctx: &AckContext) {
        core.halve(ctx.in_flight);
    }
    /// The retransmission timer expired: by default one segment (RFC 5681).
    fn on_rto(&mut self, core: &mut RenoCore, _now: Instant, ctx: &AckContext) {
        core.rto(ctx);
    }
    /// Loss recovery ended.
    fn on_recovery_end(&mut self, _core: &mut RenoCore, _now: Instant) {}
    /// MPTCP penalisation (see [`CongestionControl::on_penalty`]): by default
    /// [`RenoCore::penalise`].
    fn on_penalty(&mut self, core: &mut RenoCore, _now: Instant, _ctx: &AckContext) {
        core.penalise();
    }
}

/// A classic controller: [`RenoCore`]'s window with the increase (and reductions) of `I`.
#[derive(Clone, Debug)]
pub struct Classic<I> {
    core: RenoCore,
    inc: I,
}

impl<I: WindowIncrease + Default> Classic<I> {
    /// Initial window 10 * `mss` (RFC 6928), ssthresh unbounded.
    pub fn new(mss: u16) -> Self {
        Self::with(mss, I::default())
    }
}

impl<I: WindowIncrease> Classic<I> {
    /// With this increase state.
    pub fn with(mss: u16, inc: I) -> Self {
        Classic {
            core: RenoCore::new(mss),
            inc,
        }
    }
}

impl<I: WindowIncrease> CongestionControl for Classic<I> {
    fn name(&self) -> &'static str {
        self.inc.name()
    }
    fn coupled(&self) -> bool {
        self.inc.coupled()
    }
    fn cwnd(&self) -> u32 {
        self.core.cwnd
    }
    fn ssthresh(&self) -> u32 {
        self.core.ssthresh
    }
    fn on_ack(&mut self, now: Instant, acked: u32, rtt: Option<Duration>, ctx: &AckContext) {
        self.core.set_mss(ctx.mss);
        let mut acked = acked;
        if self.core.in_slow_start() {
            acked = self.core.slow_start_hystart(now, acked, rtt, ctx.in_flight);
        }
        if acked > 0 {
            self.inc.on_ca_ack(&mut self.core, now, acked, rtt, ctx);
        }
    }
    fn on_congestion_event(&mut self, now: Instant, ctx: &AckContext) {
        self.core.set_mss(ctx.mss);
        self.inc.on_congestion_event(&mut self.core, now, ctx);
    }
    fn on_rto(&mut self, now: Instant, ctx: &AckContext) {
        self.core.set_mss(ctx.mss);
        self.inc.on_rto(&mut self.core, now, ctx);
    }
    fn on_recovery_end(&mut self, now: Instant) {
        self.inc.on_recovery_end(&mut self.core, now);
    }
    fn on_penalty(&mut self, now: Instant, ctx: &AckContext) {
        self.core.set_mss(ctx.mss);
        self.inc.on_penalty(&mut self.core, now, ctx);
    }
}

/// The Reno window logic shared by all controllers (RFC 5681): the window, ssthresh and
/// MSS, slow start by byte counting, Reno's increase, halving and the RTO reset.
#[derive(Clone, Debug)]
pub struct RenoCore {
    pub cwnd: u32,
    pub ssthresh: u32,
    pub mss: u32,
    /// Bytes acknowledged in congestion avoidance not yet turned into window.
    ca_acc: u64,
    /// Fractional window growth (bytes) for the float-based coupled increases.
    frac: f64,
    /// HyStart++ (RFC 9406) for the initial slow start, used by
    /// [`RenoCore::slow_start_hystart`] while `hystart_enabled` and ssthresh is unset (a
    /// loss, an RTO or HyStart++ itself sets it for good).
    pub hystart: hystart::HyStart,
    /// Whether the initial slow start ends on a rising RTT (RFC 9406); on by default.
    pub hystart_enabled: bool,
}

impl RenoCore {
    /// Initial window 10 * `mss` (RFC 6928), ssthresh unbounded.
    pub fn new(mss: u16) -> Self {
        let mss = u32::from(mss.max(1));
        RenoCore {
            cwnd: 10 * mss,
            ssthresh: u32::MAX,
            mss,
            ca_acc: 0,
            frac: 0.0,
            hystart: hystart::HyStart::default(),
            hystart_enabled: true,
        }
    }

    /// Follow the subflow's current MSS (0 is ignored).
    pub fn set_mss(&mut self, mss: u16) {
        if mss > 0 {
            self.mss = u32::from(mss);
        }
    }

    /// cwnd below ssthresh.
    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// Slow start by byte counting: cwnd += N, the bytes newly acknowledged, not beyond
    /// ssthresh. Returns acked bytes left over for congestion avoidance when ssthresh was
    /// crossed. As Linux (`tcp_slow_start`), the increase per ACK is not capped at one or two
    /// MSS (RFC 5681 3.1 / RFC 3465's L): a cap makes growth depend on the ACK rate (a peer
    /// that ACKs every segment doubled the window twice as fast as one that ACKs every
    /// second, which skewed the coupled controllers' fairness), and stretch ACKs are the norm
    /// from receivers that coalesce segments (GRO, TSO super-segments over TUN).
    pub fn slow_start(&mut self, acked: u32) -> u32 {
        let inc = acked;
        let room = self.ssthresh.saturating_sub(self.cwnd);
        if inc <= room {
            self.cwnd = self.cwnd.saturating_add(inc);
            0
        } else {
            self.cwnd = self.cwnd.saturating_add(room);
            acked.saturating_sub(room)
        }
    }

    /// Slow start with HyStart++ (RFC 9406, [`hystart`]) during the initial slow start:
    /// every acknowledged byte grows the window until the round's minimum RTT rises, a
    /// quarter of them during conservative slow start, and when that ends ssthresh becomes
    /// the window (congestion avoidance). `rtt` is this ACK's sample, `in_flight` the bytes
    /// outstanding before it. Returns the bytes left for congestion avoidance, as
    /// [`RenoCore::slow_start`].
    pub fn slow_start_hystart(
        &mut self,
        now: Instant,
        acked: u32,
        rtt: Option<Duration>,
        in_flight: u32,
    ) -> u32 {
        if !self.hystart_enabled || self.ssthresh != u32::MAX {
            return self.slow_start(acked);
        }
        match self
            .hystart
            .on_ack(now, acked, rtt, in_flight, self.mss, self.cwnd)
        {
            hystart::Phase::SlowStart => self.slow_start(acked),
            hystart::Phase::Conservative => {
                // a quarter of the growth; the remainder carries over in ca_acc
                let total = self.ca_acc + u64::from(acked);
                let div = u64::from(hystart::CSS_GROWTH_DIVISOR);
                self.ca_acc = total % div;
                let inc = u32::try_from(total / div).unwrap_or(u32::MAX);
                self.cwnd = self.cwnd.saturating_add(inc);
                0
            }
            hystart::Phase::Exit => {
                self.ssthresh = self.cwnd.max(2 * self.mss);
                self.ca_acc = 0;
                acked
            }
        }
    }

    /// RFC 5681 congestion avoidance by appropriate byte counting: one MSS per window acked.
    pub fn reno_ca(&mut self, acked: u32) {
        self.ca_acc += u64::from(acked);
        let w = u64::from(self.cwnd.max(1));
        if self.ca_acc >= w {
            self.ca_acc -= w;
            self.cwnd = self.cwnd.saturating_add(self.mss);
        }
    }

    /// Add a (possibly fractional) number of bytes to the window.
    pub fn grow(&mut self, bytes: f64) {
        if !bytes.is_finite() || bytes <= 0.0 {
            return;
        }
        self.frac += bytes;
        let whole = self.frac.floor();
        self.frac -= whole;
        let whole = if whole > f64::from(u32::MAX) {
            u32::MAX
        } else {
            whole as u32
        };
        self.cwnd = self.cwnd.saturating_add(whole);
    }

    /// Fast retransmit (RFC 5681 eq. 4): ssthresh = max(FlightSize / 2, 2*SMSS), cwnd = ssthresh.
    pub fn halve(&mut self, in_flight: u32) {
        self.ssthresh = (in_flight / 2).max(2 * self.mss);
        self.cwnd = self.ssthresh;
        self.ca_acc = 0;
        self.frac = 0.0;
    }

    /// MPTCP penalisation: cwnd halved (at least one segment); ssthresh halved (at least two
    /// segments) only when the window had reached it, so slow start goes on in slow start.
    pub fn penalise(&mut self) {
        let prior = self.cwnd;
        self.cwnd = (self.cwnd / 2).max(self.mss);
        if prior >= self.ssthresh {
            self.ssthresh = (self.ssthresh / 2).max(2 * self.mss);
        }
        self.ca_acc = 0;
        self.frac = 0.0;
    }

    /// RTO: ssthresh as on loss (unless `ctx.hold_ssthresh`), cwnd = one segment (RFC 5681
    /// eq. 4 and LW = 1 SMSS). `ctx.in_flight` is FlightSize (all outstanding data).
    pub fn rto(&mut self, ctx: &AckContext) {
        if !ctx.hold_ssthresh {
            self.ssthresh = (ctx.in_flight / 2).max(2 * self.mss);
        }
        self.cwnd = self.mss;
        self.ca_acc = 0;
        self.frac = 0.0;
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    pub fn ctx(in_flight: u32, mss: u16) -> AckContext<'static> {
        AckContext {
            in_flight,
            mss,
            srtt: Some(Duration::from_millis(100)),
            coupling: None,
            hold_ssthresh: false,
        }
    }

    pub fn view(paths: &[(u32, u64)], me: usize) -> CouplingView {
        let mut v = CouplingView {
            me,
            len: paths.len(),
            ..Default::default()
        };
        for (i, (cwnd, rtt_ms)) in paths.iter().enumerate() {
            v.paths[i] = PathCc {
                cwnd: *cwnd,
                srtt: Duration::from_millis(*rtt_ms),
                mss: 1000,
                bytes_since_loss: 0,
                bytes_between_last_losses: 0,
                usable: true,
            };
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_name_knows_every_name_and_initial_window() {
        for n in NAMES {
            let cc = by_name(n, 1000).expect("known name");
            assert_eq!(cc.name(), *n);
            assert_eq!(cc.cwnd(), 10_000);
            assert_eq!(cc.ssthresh(), u32::MAX);
        }
        assert!(by_name("vegas", 1000).is_none());
    }

    #[test]
    fn slow_start_growth_does_not_depend_on_the_ack_rate() {
        let t = Instant::ZERO;
        let v = test_util::view(&[(10_000, 100), (10_000, 50)], 0);
        for n in NAMES {
            // the same 10 segments acknowledged one by one, two by two, and by one stretch ACK
            let mut grown = Vec::new();
            for per_ack in [1u32, 2, 10] {
                let mut cc = by_name(n, 1000).unwrap();
                let c = AckContext {
                    coupling: Some(&v),
                    ..test_util::ctx(10_000, 1000)
                };
                for _ in 0..10 / per_ack {
                    cc.on_ack(t, 1000 * per_ack, None, &c);
                }
                grown.push(cc.cwnd());
            }
            assert_eq!(grown, vec![20_000; 3], "{n}");
        }
    }

    #[test]
    fn every_controller_slow_starts_and_backs_off() {
        let t = Instant::ZERO;
        let v = test_util::view(&[(10_000, 100), (10_000, 50)], 0);
        for n in NAMES {
            let mut cc = by_name(n, 1000).unwrap();
            let c = AckContext {
                coupling: Some(&v),
                ..test_util::ctx(10_000, 1000)
            };
            // slow start: +1 MSS per MSS acked, whatever the coupling
            for _ in 0..10 {
                cc.on_ack(t, 1000, None, &c);
            }
            assert_eq!(cc.cwnd(), 20_000, "{n}");
            let before = cc.cwnd();
            cc.on_congestion_event(t, &test_util::ctx(20_000, 1000));
            assert!(cc.cwnd() < before, "{n}");
            assert!(cc.cwnd() >= 2000, "{n}");
            assert_eq!(cc.ssthresh(), cc.cwnd(), "{n}");
            cc.on_rto(t, &test_util::ctx(8000, 1000));
            assert_eq!(cc.cwnd(), 1000, "{n}");
        }
    }

    /// HyStart++ in every built-in controller: a flat RTT keeps slow start going, a rising
    /// one ends it without a loss (ssthresh becomes the window reached); penalisation
    /// halves the window and keeps slow start.
    #[test]
    fn every_controller_leaves_slow_start_on_a_rising_rtt() {
        let t = Instant::ZERO;
        for n in NAMES {
            let mut cc = by_name(n, 1000).unwrap();
            // rounds of 16 ACKs of 1000 bytes; the last ACK of each round leaves 16 000
            // outstanding, so every round is 16 ACKs
            let ack = |cc: &mut Box<dyn CongestionControl>, rtt_ms: u64| {
                for _ in 0..16 {
                    let c = test_util::ctx(17_000, 1000);
                    cc.on_ack(t, 1000, Some(Duration::from_millis(rtt_ms)), &c);
                }
            };
            cc.on_ack(t, 1000, None, &test_util::ctx(17_000, 1000));
            for _ in 0..3 {
                ack(&mut cc, 50);
            }
            assert_eq!(cc.ssthresh(), u32::MAX, "{n}: flat RTT");
            let before = cc.cwnd();
            assert_eq!(before, 10_000 + 49 * 1000, "{n}");
            cc.on_penalty(t, &test_util::ctx(17_000, 1000));
            assert_eq!(cc.cwnd(), before / 2, "{n}: penalised");
            assert_eq!(cc.ssthresh(), u32::MAX, "{n}: penalised in slow start");
            // the RTT rises by 10 ms (> 50 / 8): conservative slow start, then at most
            // five rounds later congestion avoidance
            for _ in 0..7 {
                ack(&mut cc, 60);
            }
            assert!(cc.ssthresh() < u32::MAX, "{n}: still in slow start");
            assert!(cc.cwnd() >= cc.ssthresh(), "{n}");
            // conservative growth: far below the 16 000 a round of slow start adds
            assert!(
                cc.cwnd() < before / 2 + 8 * 16_000 / 2,
                "{n}: {}",
                cc.cwnd()
            );
        }
    }

    #[test]
    fn coupled_without_view_behaves_like_reno() {
        let t = Instant::ZERO;
        for n in ["lia", "olia", "balia"] {
            let mut a = by_name("reno", 1000).unwrap();
            let mut b = by_name(n, 1000).unwrap();
            let c = test_util::ctx(20_000, 1000);
            a.on_congestion_event(t, &c);
            b.on_congestion_event(t, &c);
            for _ in 0..200 {
                a.on_ack(t, 1000, None, &c);
                b.on_ack(t, 1000, None, &c);
            }
            let diff = i64::from(a.cwnd()) - i64::from(b.cwnd());
            assert!(diff.abs() <= 1000, "{n}: reno {} vs {}", a.cwnd(), b.cwnd());
        }
    }
}
