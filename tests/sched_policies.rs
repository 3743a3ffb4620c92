//! Characteristic behaviour of each scheduler on crafted subflow views.

use mptun::sched::{
    by_name, Blest, Blocked, Decision, Ecf, MinRtt, RoundRobin, SchedContext, Scheduler,
    SubflowView, NAMES,
};
use mptun::time::{Duration, Instant};

const MSS: u16 = 1400;

fn sf(id: u32, rtt_ms: u64, capacity: u32) -> SubflowView {
    SubflowView {
        id,
        srtt: Some(Duration::from_millis(rtt_ms)),
        rttvar: Some(Duration::from_millis(rtt_ms / 4)),
        cwnd: 10 * u32::from(MSS),
        in_flight: 0,
        send_capacity: capacity,
        queued: 0,
        mss: MSS,
        backup: false,
        usable: true,
        potentially_failed: false,
    }
}

fn ctx(unsent: u64, window: u64) -> SchedContext {
    SchedContext {
        now: Instant::from_millis(1000),
        unsent,
        conn_window: window,
        send_buffer_free: 1 << 20,
        blocked: None,
    }
}

fn target(d: Decision) -> Option<usize> {
    match d {
        Decision::Send { subflow, .. } => Some(subflow),
        _ => None,
    }
}

/// Apply a Send decision to the views the way a connection would.
fn apply(d: Decision, c: &mut SchedContext, views: &mut [SubflowView]) {
    if let Decision::Send { subflow, max_len } = d {
        views[subflow].queued += max_len;
        c.unsent -= u64::from(max_len);
        c.conn_window -= u64::from(max_len);
    }
}

#[test]
fn minrtt_picks_lowest_rtt_with_capacity() {
    let mut s = MinRtt::new();
    let views = [sf(1, 50, 10_000), sf(2, 10, 10_000), sf(3, 30, 10_000)];
    assert_eq!(
        s.schedule(&ctx(100_000, 1 << 20), &views),
        Decision::Send {
            subflow: 1,
            max_len: 10_000
        }
    );
    // Fastest full: next fastest.
    let views = [sf(1, 50, 10_000), sf(2, 10, 0), sf(3, 30, 10_000)];
    assert_eq!(target(s.schedule(&ctx(100_000, 1 << 20), &views)), Some(2));
    // Queued data counts against capacity.
    let mut views = [sf(1, 50, 10_000), sf(2, 10, 5_000), sf(3, 30, 10_000)];
    views[1].queued = 5_000;
    assert_eq!(target(s.schedule(&ctx(100_000, 1 << 20), &views)), Some(2));
    // max_len bounded by unsent and by connection window.
    let views = [sf(1, 10, 10_000)];
    assert_eq!(
        s.schedule(&ctx(300, 1 << 20), &views),
        Decision::Send {
            subflow: 0,
            max_len: 300
        }
    );
    assert_eq!(
        s.schedule(&ctx(5000, 700), &views),
        Decision::Send {
            subflow: 0,
            max_len: 700
        }
    );
    // Nothing to send, or nothing usable: wait.
    assert_eq!(s.schedule(&ctx(0, 1 << 20), &views), Decision::Wait);
    let mut dead = sf(1, 10, 10_000);
    dead.usable = false;
    assert_eq!(s.schedule(&ctx(1000, 1 << 20), &[dead]), Decision::Wait);
}

#[test]
fn minrtt_loop_terminates_and_fills_fastest_first() {
    let mut s = MinRtt::new();
    let mut views = [sf(1, 40, 4_000), sf(2, 10, 3_000)];
    let mut c = ctx(100_000, 1 << 20);
    let mut order = Vec::new();
    for _ in 0..10 {
        let d = s.schedule(&c, &views);
        if d == Decision::Wait {
            break;
        }
        order.push(target(d).unwrap());
        apply(d, &mut c, &mut views);
    }
    assert_eq!(order, vec![1, 0]);
    assert_eq!(c.unsent, 100_000 - 7_000);
}

#[test]
fn backup_untouched_while_regular_works_used_when_none() {
    let mut bak = sf(9, 5, 50_000);
    bak.backup = true;
    for name in NAMES {
        let mut s = by_name(name).unwrap();
        // Regular subflow is slower and even has a full window: still no backup use.
        let views = [bak, sf(1, 80, 0)];
        let d = s.schedule(&ctx(100_000, 1 << 20), &views);
        assert_eq!(
            d,
            Decision::Wait,
            "{name}: backup used while regular usable"
        );
        let views = [bak, sf(1, 80, 10_000)];
        let d = s.schedule(&ctx(100_000, 1 << 20), &views);
        match d {
            Decision::Send { subflow, .. } => assert_eq!(subflow, 1, "{name}"),
            Decision::Redundant { subflows, .. } => {
                assert!(subflows.contains(1) && !subflows.contains(0), "{name}")
            }
            other => panic!("{name}: {other:?}"),
        }
        // Regular subflow gone: the backup carries data.
        let mut gone = sf(1, 80, 10_000);
        gone.usable = false;
        let d = s.schedule(&ctx(100_000, 1 << 20), &[bak, gone]);
        match d {
            Decision::Send { subflow, .. } => assert_eq!(subflow, 0, "{name}"),
            Decision::Redundant { subflows, .. } => assert!(subflows.contains(0), "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn potentially_failed_avoided_while_healthy_exists() {
    let mut s = MinRtt::new();
    let mut pf = sf(1, 5, 10_000);
    pf.potentially_failed = true;
    let views = [pf, sf(2, 100, 10_000)];
    assert_eq!(target(s.schedule(&ctx(10_000, 1 << 20), &views)), Some(1));
    // Only a potentially failed subflow left: use it rather than stall.
    assert_eq!(target(s.schedule(&ctx(10_000, 1 << 20), &[pf])), Some(0));
}

#[test]
fn roundrobin_alternates_in_id_order() {
    let mut s = RoundRobin::new();
    // Slice order differs from id order on purpose.
    let views = [sf(7, 10, 100_000), sf(3, 50, 100_000), sf(5, 30, 100_000)];
    let c = ctx(1 << 30, 1 << 30);
    let picks: Vec<u32> = (0..6)
        .map(|_| views[target(s.schedule(&c, &views)).unwrap()].id)
        .collect();
    assert_eq!(picks, vec![3, 5, 7, 3, 5, 7]);
    // Each decision is at most one MSS.
    assert_eq!(
        s.schedule(&c, &views),
        Decision::Send {
            subflow: 1,
            max_len: u32::from(MSS)
        }
    );
    // Subflows without room are skipped.
    let views = [sf(7, 10, 100_000), sf(3, 50, 0), sf(5, 30, 100_000)];
    let picks: Vec<u32> = (0..4)
        .map(|_| views[target(s.schedule(&c, &views)).unwrap()].id)
        .collect();
    assert_eq!(picks, vec![5, 7, 5, 7]);
}

#[test]
fn redundant_picks_every_usable_subflow() {
    let mut s = by_name("redundant").unwrap();
    let mut dead = sf(4, 1, 10_000);
    dead.usable = false;
    let views = [sf(1, 10, 5_000), sf(2, 100, 3_000), dead, sf(3, 40, 0)];
    match s.schedule(&ctx(100_000, 1 << 20), &views) {
        Decision::Redundant { subflows, max_len } => {
            assert_eq!(subflows.iter().collect::<Vec<_>>(), vec![0, 1]);
            assert_eq!(max_len, 3_000);
        }
        d => panic!("{d:?}"),
    }
    let views = [sf(1, 10, 0), sf(2, 100, 0)];
    assert_eq!(s.schedule(&ctx(100_000, 1 << 20), &views), Decision::Wait);
}

/// Fast subflow 10 ms with a full window, slow subflow 100 ms with room.
fn fast_full_slow_free() -> [SubflowView; 2] {
    let mut fast = sf(1, 10, 0);
    fast.in_flight = fast.cwnd;
    let slow = sf(2, 100, 20_000);
    [fast, slow]
}

#[test]
fn blest_skips_slow_path_when_it_would_block_window() {
    let views = fast_full_slow_free();
    let mut s = Blest::new();
    // Window left small: the fast subflow will need far more than what remains.
    assert_eq!(s.schedule(&ctx(1 << 20, 20_000), &views), Decision::Wait);
    assert_eq!(s.skipped, 1);
    // Ample window: the slow subflow is used, one segment at a time.
    let mut s = Blest::new();
    assert_eq!(
        s.schedule(&ctx(1 << 20, 10 << 20), &views),
        Decision::Send {
            subflow: 1,
            max_len: u32::from(MSS)
        }
    );
    // Fast subflow with room is always preferred.
    let views = [sf(1, 10, 5_000), sf(2, 100, 20_000)];
    assert_eq!(target(s.schedule(&ctx(1 << 20, 20_000), &views)), Some(0));
}

#[test]
fn blest_threshold_tracks_estimate() {
    // X = (cwnd_f + mss_f * (ratio-1)/2) * ratio with ratio = 10:
    // (14000 + 1400*4.5) * 10 = 203_000 bytes. Window total = conn_window + in_flight_f (14000);
    // slow holds 1400. Block iff 203_000 > conn_window + 14_000 - 1_400.
    let views = fast_full_slow_free();
    let x = 203_000u64;
    let edge = x - 14_000 + 1_400; // conn_window at which avail == X
    let mut s = Blest::new();
    assert_eq!(s.schedule(&ctx(1 << 20, edge - 1), &views), Decision::Wait);
    let mut s = Blest::new();
    assert!(matches!(
        s.schedule(&ctx(1 << 20, edge), &views),
        Decision::Send { subflow: 1, .. }
    ));
}

#[test]
fn blest_lambda_adapts() {
    let views = fast_full_slow_free();
    let mut s = Blest::new();
    let mut c = ctx(1 << 20, 10 << 20);
    c.blocked = Some(Blocked {
        subflow: 1,
        dsn: 1,
        len: 1400,
    });
    let _ = s.schedule(&c, &views);
    assert_eq!(s.lambda_milli(), 1000);
    c.now += Duration::from_millis(10);
    let _ = s.schedule(&c, &views);
    assert_eq!(s.lambda_milli(), 1040, "blocking raises lambda");
    c.blocked = None;
    for _ in 0..200 {
        c.now += Duration::from_millis(10);
        let _ = s.schedule(&c, &views);
    }
    assert_eq!(
        s.lambda_milli(),
        700,
        "lambda decays to its floor without blocking"
    );
}

#[test]
fn ecf_waits_for_fast_path_when_it_finishes_earlier() {
    let views = fast_full_slow_free();
    // Little left to send: fast path (10 ms, 14 kB cwnd) finishes 28 kB in ~2 RTTs = 20 ms,
    // well before one slow RTT (100 ms): wait.
    let mut s = Ecf::new();
    assert_eq!(s.schedule(&ctx(28_000, 10 << 20), &views), Decision::Wait);
    assert!(s.waiting());
    assert_eq!(s.waits, 1);
    // Lots to send: the slow path helps.
    let mut s = Ecf::new();
    assert!(matches!(
        s.schedule(&ctx(10 << 20, 10 << 20), &views),
        Decision::Send { subflow: 1, .. }
    ));
    assert!(!s.waiting());
}

#[test]
fn ecf_small_tail_sent_on_slow_when_slow_is_quick_enough() {
    // k tiny: (k / cwnd_s) * rtt_s < 2 rtt_f + delta, so using the slow path costs nothing.
    let mut views = fast_full_slow_free();
    views[1].srtt = Some(Duration::from_millis(15));
    views[1].rttvar = Some(Duration::from_millis(1));
    let mut s = Ecf::new();
    assert!(matches!(
        s.schedule(&ctx(1_000, 1 << 20), &views),
        Decision::Send { subflow: 1, .. }
    ));
}

#[test]
fn opportunistic_retransmission_and_penalisation() {
    let mut s = MinRtt::new();
    let mut slow = sf(2, 200, 0);
    slow.in_flight = 30_000;
    let fast = sf(1, 10, 8_000);
    let views = [fast, slow];
    let mut c = ctx(50_000, 0); // window full
    c.blocked = Some(Blocked {
        subflow: 1,
        dsn: 4242,
        len: 1400,
    });
    assert_eq!(
        s.schedule(&c, &views),
        Decision::Reinject {
            subflow: 0,
            dsn: 4242,
            len: 1400,
            penalise: Some(1)
        }
    );
    assert_eq!((s.reinjections, s.penalisations), (1, 1));
    // The same blocking DSN is not reinjected twice.
    assert_eq!(s.schedule(&c, &views), Decision::Wait);
    // A new blocking DSN within the slow RTT: reinjected, but not penalised again.
    c.now += Duration::from_millis(50);
    c.blocked = Some(Blocked {
        subflow: 1,
        dsn: 5642,
        len: 1400,
    });
    assert_eq!(
        s.schedule(&c, &views),
        Decision::Reinject {
            subflow: 0,
            dsn: 5642,
            len: 1400,
            penalise: None
        }
    );
    // After one slow RTT, penalisation is allowed again.
    c.now += Duration::from_millis(200);
    c.blocked = Some(Blocked {
        subflow: 1,
        dsn: 7042,
        len: 20_000,
    });
    assert_eq!(
        s.schedule(&c, &views),
        Decision::Reinject {
            subflow: 0,
            dsn: 7042,
            len: 8_000,
            penalise: Some(1)
        }
    );
}

#[test]
fn no_opportunistic_retransmission_without_faster_room() {
    let mut s = MinRtt::new();
    let views = [sf(1, 10, 0), sf(2, 200, 0)];
    let mut c = ctx(50_000, 0);
    c.blocked = Some(Blocked {
        subflow: 1,
        dsn: 1,
        len: 1400,
    });
    assert_eq!(
        s.schedule(&c, &views),
        Decision::Wait,
        "fast subflow has no room"
    );
    // A slower subflow with room does not take over the blocking data.
    let views = [sf(1, 10, 0), sf(2, 200, 0), sf(3, 500, 10_000)];
    assert_eq!(s.schedule(&c, &views), Decision::Wait);
    // Blocked index out of range is ignored, never a panic.
    c.blocked = Some(Blocked {
        subflow: 99,
        dsn: 1,
        len: 1400,
    });
    assert_eq!(s.schedule(&c, &views), Decision::Wait);
    // Window not full: no reinjection, ordinary sending.
    let views = [sf(1, 10, 5_000), sf(2, 200, 0)];
    let mut c = ctx(50_000, 100_000);
    c.blocked = None;
    assert_eq!(target(s.schedule(&c, &views)), Some(0));
}

#[test]
fn every_scheduler_survives_odd_views() {
    let odd = [
        SubflowView {
            usable: true,
            ..Default::default()
        },
        SubflowView {
            usable: true,
            srtt: Some(Duration::ZERO),
            cwnd: 0,
            send_capacity: u32::MAX,
            queued: 0,
            mss: 0,
            ..Default::default()
        },
        SubflowView {
            usable: true,
            srtt: Some(Duration::from_secs(u64::MAX / 2)),
            rttvar: Some(Duration::from_secs(u64::MAX / 2)),
            cwnd: u32::MAX,
            in_flight: u32::MAX,
            send_capacity: 5,
            queued: u32::MAX,
            ..Default::default()
        },
    ];
    // Fast and slow both extreme, fast full: exercises the BLEST/ECF estimates.
    let huge = |id, secs: u64, cap| SubflowView {
        id,
        usable: true,
        srtt: Some(Duration::from_secs(secs)),
        rttvar: Some(Duration::from_secs(u64::MAX)),
        cwnd: u32::MAX,
        in_flight: u32::MAX,
        send_capacity: cap,
        mss: u16::MAX,
        ..Default::default()
    };
    let extreme = [huge(1, u64::MAX / 4, 0), huge(2, u64::MAX, u32::MAX)];
    for name in NAMES {
        let mut s = by_name(name).unwrap();
        for unsent in [1, u64::MAX] {
            let _ = s.schedule(&ctx(unsent, u64::MAX), &extreme);
            let _ = s.schedule(&ctx(unsent, 1), &extreme);
        }
        for unsent in [0, 1, u64::MAX] {
            for window in [0, 1, u64::MAX] {
                let mut c = ctx(unsent, window);
                c.blocked = Some(Blocked {
                    subflow: 2,
                    dsn: u64::MAX,
                    len: u32::MAX,
                });
                let _ = s.schedule(&c, &odd);
                let _ = s.schedule(&c, &[]);
            }
        }
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn view() -> impl Strategy<Value = SubflowView> {
        (
            (
                0u32..6,
                prop::option::of(0u64..500_000),
                prop::option::of(0u64..100_000),
            ),
            (
                0u32..200_000,
                0u32..200_000,
                0u32..100_000,
                0u32..50_000,
                0u16..9000,
            ),
            (any::<bool>(), any::<bool>(), any::<bool>()),
        )
            .prop_map(|((id, srtt, var), (cwnd, fl, cap, q, mss), (b, u, pf))| {
                SubflowView {
                    id,
                    srtt: srtt.map(Duration::from_micros),
                    rttvar: var.map(Duration::from_micros),
                    cwnd,
                    in_flight: fl,
                    send_capacity: cap,
                    queued: q,
                    mss,
                    backup: b,
                    usable: u,
                    potentially_failed: pf,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Every decision is executable as given, respects the backup rule, and a connection
        /// applying decisions reaches Wait.
        #[test]
        fn decisions_are_within_bounds(
            mut views in prop::collection::vec(view(), 0..6),
            unsent in 0u64..2_000_000,
            window in 0u64..2_000_000,
            blocked in prop::option::of((0usize..8, any::<u64>(), 0u32..100_000)),
            which in 0usize..5,
        ) {
            let mut s = by_name(NAMES[which]).unwrap();
            let mut c = ctx(unsent, window);
            c.blocked = blocked.map(|(subflow, dsn, len)| Blocked { subflow, dsn, len });
            let healthy_regular = views.iter().any(|v| v.usable && !v.backup && !v.potentially_failed);
            // every Send moves at least one byte (a view's mss may be 0: 1-byte decisions),
            // so a terminating scheduler needs at most `unsent` sends plus the other kinds
            let limit = unsent + 10_000;
            let mut steps = 0u64;
            loop {
                steps += 1;
                prop_assert!(steps < limit, "scheduling loop does not terminate");
                let budget = c.send_budget();
                match s.schedule(&c, &views) {
                    Decision::Wait => break,
                    Decision::Send { subflow, max_len } => {
                        let v = views[subflow];
                        prop_assert!(v.usable && max_len > 0);
                        prop_assert!(max_len <= v.available() && u64::from(max_len) <= budget);
                        prop_assert!(!(healthy_regular && (v.backup || v.potentially_failed)));
                        views[subflow].queued += max_len;
                        c.unsent -= u64::from(max_len);
                        c.conn_window -= u64::from(max_len);
                    }
                    Decision::Redundant { subflows, max_len } => {
                        prop_assert!(!subflows.is_empty() && max_len > 0);
                        prop_assert!(u64::from(max_len) <= budget);
                        for i in subflows {
                            let v = views[i];
                            prop_assert!(v.usable && max_len <= v.available());
                            prop_assert!(!(healthy_regular && (v.backup || v.potentially_failed)));
                            views[i].queued += max_len;
                        }
                        c.unsent -= u64::from(max_len);
                        c.conn_window -= u64::from(max_len);
                    }
                    Decision::Reinject { subflow, dsn, len, penalise } => {
                        let b = c.blocked.expect("reinjection only when blocked");
                        let v = views[subflow];
                        prop_assert!(v.usable && subflow != b.subflow);
                        prop_assert!(len > 0 && len <= b.len && len <= v.available());
                        prop_assert_eq!(dsn, b.dsn);
                        prop_assert!(penalise.is_none() || penalise == Some(b.subflow));
                        views[subflow].queued += len;
                    }
                }
            }
        }
    }
}

/// A subflow with no RTT estimate (its handshake gave no sample) and nothing in flight gets
/// one segment from each RTT-driven scheduler, so it is measured; minRTT would otherwise
/// never choose it while the measured subflow has room (seen against Linux: a join that
/// carried nothing for a whole transfer, so its path's death was never noticed).
#[test]
fn unmeasured_subflow_gets_a_probe_segment() {
    for name in ["minrtt", "blest", "ecf"] {
        let mut s = by_name(name).expect("scheduler");
        let mut unmeasured = sf(2, 0, 100_000);
        unmeasured.srtt = None;
        unmeasured.rttvar = None;
        let mut views = [sf(1, 10, 100_000), unmeasured];
        let mut c = ctx(1_000_000, 1 << 20);
        let d = s.schedule(&c, &views);
        assert_eq!(
            d,
            Decision::Send {
                subflow: 1,
                max_len: u32::from(MSS)
            },
            "{name}: one MSS to the unmeasured subflow"
        );
        apply(d, &mut c, &mut views);
        // the probe is queued: the measured subflow takes the rest
        let d = s.schedule(&c, &views);
        assert_eq!(target(d), Some(0), "{name}: then the measured one ({d:?})");
        // in flight, still unmeasured: no second probe
        views[1].queued = 0;
        views[1].in_flight = u32::from(MSS);
        let d = s.schedule(&c, &views);
        assert_eq!(target(d), Some(0), "{name}: no second probe ({d:?})");
    }
}
