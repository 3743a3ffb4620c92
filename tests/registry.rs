//! One registry per policy kind (issue 12): a scheduler, a congestion controller and a path
//! manager defined here, outside the crate, are registered with one line each, listed with
//! the built-ins, chosen by name in a `ConnConfig`, and really used on a two-path transfer
//! on the simulated network. Unknown names are errors everywhere (stack, builder, command
//! line parsers, C ABI config), never a silent default.

mod simutil;

use mptun::cc::{self, AckContext, CongestionControl, Reno};
use mptun::mptcp::ConnConfig;
use mptun::pm::{self, CommandQueue, PathManager, PmContext, PmEvent};
use mptun::registry::RegisterError;
use mptun::sched::{self, Decision, MinRtt, SchedContext, Scheduler, SubflowView};
use mptun::stack::StackError;
use mptun::time::{Duration, Instant};
use simutil::*;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

static SCHED_CALLS: AtomicU64 = AtomicU64::new(0);
static CC_MADE: AtomicU64 = AtomicU64::new(0);
static CC_ACKS: AtomicU64 = AtomicU64::new(0);
static PM_EVENTS: AtomicU64 = AtomicU64::new(0);
static RETRANS_CALLS: AtomicU64 = AtomicU64::new(0);
static RETRANS_PICKED: AtomicU64 = AtomicU64::new(0);
static SIGNAL_CALLS: AtomicU64 = AtomicU64::new(0);

/// minRTT underneath, counting its decisions.
#[derive(Debug, Default)]
struct Counted(MinRtt);
impl Scheduler for Counted {
    fn name(&self) -> &'static str {
        "counted"
    }
    fn schedule(&mut self, ctx: &SchedContext, subflows: &[SubflowView]) -> Decision {
        SCHED_CALLS.fetch_add(1, Ordering::Relaxed);
        self.0.schedule(ctx, subflows)
    }
    /// Re-sent data goes on the subflow with the lowest id that has room (not the default's
    /// lowest RTT), and every call is counted.
    /// Signals go where the default puts them; every call is counted.
    fn signal_subflow(&self, subflows: &mut dyn Iterator<Item = SubflowView>) -> Option<usize> {
        SIGNAL_CALLS.fetch_add(1, Ordering::Relaxed);
        sched::default_signal_subflow(subflows)
    }
    fn retransmit_subflow(
        &mut self,
        _ctx: &SchedContext,
        subflows: &[SubflowView],
    ) -> Option<usize> {
        RETRANS_CALLS.fetch_add(1, Ordering::Relaxed);
        let i = subflows
            .iter()
            .enumerate()
            .filter(|(_, v)| v.usable && v.available() > 0 && !v.potentially_failed)
            .min_by_key(|(_, v)| v.id)
            .map(|(i, _)| i);
        if i.is_some() {
            RETRANS_PICKED.fetch_add(1, Ordering::Relaxed);
        }
        i
    }
}

/// Reno underneath, counting ACKs.
#[derive(Debug)]
struct CountedReno(Reno);
impl CongestionControl for CountedReno {
    fn name(&self) -> &'static str {
        "counted-reno"
    }
    fn cwnd(&self) -> u32 {
        self.0.cwnd()
    }
    fn ssthresh(&self) -> u32 {
        self.0.ssthresh()
    }
    fn on_ack(&mut self, now: Instant, acked: u32, rtt: Option<Duration>, ctx: &AckContext) {
        CC_ACKS.fetch_add(1, Ordering::Relaxed);
        self.0.on_ack(now, acked, rtt, ctx)
    }
    fn on_congestion_event(&mut self, now: Instant, ctx: &AckContext) {
        self.0.on_congestion_event(now, ctx)
    }
    fn on_rto(&mut self, now: Instant, ctx: &AckContext) {
        self.0.on_rto(now, ctx)
    }
    fn on_recovery_end(&mut self, now: Instant) {
        self.0.on_recovery_end(now)
    }
}

/// Full mesh underneath (with the spec's parameter checked), counting events.
#[derive(Debug)]
struct CountedMesh(pm::FullMesh);
impl PathManager for CountedMesh {
    fn name(&self) -> &'static str {
        "counted-mesh"
    }
    fn on_event(&mut self, ctx: &PmContext, ev: &PmEvent, out: &mut CommandQueue) {
        PM_EVENTS.fetch_add(1, Ordering::Relaxed);
        self.0.on_event(ctx, ev, out)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.0.poll_timeout()
    }
    fn on_timeout(&mut self, ctx: &PmContext, out: &mut CommandQueue) {
        self.0.on_timeout(ctx, out)
    }
}

fn register_all() {
    // several tests of this binary may get here first; only the first registration counts
    let _ = sched::register("counted", || Box::new(Counted::default()));
    let _ = cc::register("counted-reno", |mss| {
        CC_MADE.fetch_add(1, Ordering::Relaxed);
        Box::new(CountedReno(Reno::new(mss)))
    });
    let _ = pm::register("counted-mesh", |arg| match arg {
        None => Ok(Box::new(CountedMesh(pm::FullMesh::new()))),
        Some(a) => Err(format!("counted-mesh takes no parameter, got {a:?}")),
    });
}

fn cfg() -> ConnConfig {
    let mut c = ConnConfig {
        scheduler: "counted".into(),
        path_manager: "counted-mesh".into(),
        ..ConnConfig::default()
    };
    c.tcp.congestion = cc::canonical("counted-reno").expect("registered");
    c
}

#[test]
fn registered_policies_are_listed_and_refuse_taken_or_bad_names() {
    register_all();
    assert!(sched::names().contains(&"counted"));
    assert!(cc::names().contains(&"counted-reno"));
    assert!(pm::names().contains(&"counted-mesh"));
    assert_eq!(
        &sched::names()[..sched::NAMES.len()],
        sched::NAMES,
        "built-ins first"
    );
    assert_eq!(
        sched::register("minrtt", || Box::new(MinRtt::new())),
        Err(RegisterError::Taken("minrtt".into()))
    );
    assert_eq!(
        sched::register("counted", || Box::new(MinRtt::new())),
        Err(RegisterError::Taken("counted".into()))
    );
    assert!(matches!(
        cc::register("Bad Name", |m| Box::new(Reno::new(m))),
        Err(RegisterError::BadName(_))
    ));
    assert!(matches!(
        pm::register("a:b", |_| Ok(Box::new(pm::Manual::new()))),
        Err(RegisterError::BadName(_))
    ));
    // a registered path manager's factory sees the parameter and may refuse it
    assert!(pm::by_name("counted-mesh").is_ok());
    let e = pm::by_name("counted-mesh:3").expect_err("refused");
    assert!(e.contains("no parameter"), "{e}");
    // unknown names are errors, and the message lists what is known
    let e = pm::by_name("nosuch").expect_err("unknown");
    assert!(e.contains("counted-mesh"), "{e}");
    assert!(sched::by_name("nosuch").is_none());
    assert!(cc::by_name("nosuch", 1400).is_none());
    assert_eq!(cc::canonical("nosuch"), None);
    assert!(cfg().check_policies().is_ok());
}

#[test]
fn the_stack_refuses_unknown_policy_names() {
    register_all();
    for bad in [
        ConnConfig {
            scheduler: "fastest".into(),
            ..ConnConfig::default()
        },
        ConnConfig {
            path_manager: "mesh".into(),
            ..ConnConfig::default()
        },
        ConnConfig {
            tcp: mptun::tcp::Config {
                congestion: "vegas",
                ..mptun::tcp::Config::default()
            },
            ..ConnConfig::default()
        },
    ] {
        assert!(bad.check_policies().is_err());
        let mut p = Pair::new(1, Default::default());
        let now = p.now();
        let remote = SocketAddr::new(SERVER1, PORT);
        assert_eq!(
            p.client.connect(now, remote, None, Some(bad.clone())),
            Err(StackError::InvalidInput)
        );
        assert_eq!(
            p.server.listen_with(PORT + 1, bad),
            Err(StackError::InvalidInput)
        );
    }
}

#[test]
fn registered_policies_run_a_two_path_transfer() {
    register_all();
    let g0 = SIGNAL_CALLS.load(Ordering::Relaxed);
    let (s0, c0, a0, p0) = (
        SCHED_CALLS.load(Ordering::Relaxed),
        CC_MADE.load(Ordering::Relaxed),
        CC_ACKS.load(Ordering::Relaxed),
        PM_EVENTS.load(Ordering::Relaxed),
    );
    let path = || mptun::io::Impairment {
        delay: Duration::from_millis(10),
        ..Default::default()
    };
    let mut p = Pair::two_paths(7, path(), path(), cfg(), cfg());
    let c = p.connect();
    let mut t = Transfer::new(c, data(2 << 20, 1), data(1 << 20, 2));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    let conn = p.client.connection(c).expect("connection");
    let info = conn.subflows();
    assert!(
        info.len() >= 2,
        "the registered full mesh joined: {} subflows",
        info.len()
    );
    assert!(
        SCHED_CALLS.load(Ordering::Relaxed) > s0,
        "the registered scheduler decided"
    );
    // one controller per subflow, both ends
    assert!(
        CC_MADE.load(Ordering::Relaxed) >= c0 + 3,
        "controllers made"
    );
    assert!(
        CC_ACKS.load(Ordering::Relaxed) > a0,
        "the registered controller saw ACKs"
    );
    assert!(
        PM_EVENTS.load(Ordering::Relaxed) > p0,
        "the registered path manager saw events"
    );
    // our DATA_FIN (and window updates) went on the subflow the scheduler chose
    assert!(
        SIGNAL_CALLS.load(Ordering::Relaxed) > g0,
        "the registered scheduler placed signals"
    );
}

/// The scheduler decides reinjection too (`Scheduler::retransmit_subflow`, Linux's
/// `get_retrans`): when a path dies mid-transfer, the data it held is sent again on the
/// subflow the registered scheduler picks, and the transfer completes intact.
#[test]
fn the_scheduler_picks_where_reinjected_data_goes() {
    register_all();
    let (c0, p0) = (
        RETRANS_CALLS.load(Ordering::Relaxed),
        RETRANS_PICKED.load(Ordering::Relaxed),
    );
    // rate-limited paths, so that data is in flight on the path when it dies
    let path = || mptun::io::Impairment {
        delay: Duration::from_millis(10),
        rate_bps: 20_000_000,
        queue_limit: 256 * 1024,
        ..Default::default()
    };
    let mut p = Pair::two_paths(9, path(), path(), cfg(), cfg());
    // the second path (CLIENT2 - SERVER2) is opened explicitly: the simulated network has
    // no CLIENT2 - SERVER1 link for the full mesh to use
    let (c, _) = p.connect_and_join();
    let mut t = Transfer::new(c, data(4 << 20, 3), data(4 << 20, 4));
    assert!(p.run_until(Duration::from_secs(60), |p| {
        t.pump(p);
        t.s_recv.len() > 1 << 20
    }));
    // the initial path, which carries most of minRTT's data
    p.net.set_link_up(0, false);
    assert!(
        t.run(&mut p, Duration::from_secs(600)),
        "transfer did not survive the path death"
    );
    t.assert_intact();
    assert!(
        p.client.mib().Reinjections > 0,
        "data of the dead path was reinjected: {}",
        p.client.mib().nonzero_text()
    );
    assert!(
        RETRANS_CALLS.load(Ordering::Relaxed) > c0 && RETRANS_PICKED.load(Ordering::Relaxed) > p0,
        "the registered scheduler chose where reinjected data went"
    );
}
