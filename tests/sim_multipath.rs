//! Multipath scenarios on the simulated network: joins, schedulers, backup, path failure,
//! bad joins, address signalling.

mod simutil;

use mptun::io::impair::Impairment;
use mptun::io::sim::Verdict;
use mptun::mptcp::{ConnConfig, Mode};
use mptun::time::{Duration, Instant};
use simutil::*;
use std::cell::Cell;
use std::rc::Rc;

fn path(delay_ms: u64, mbit: u64) -> Impairment {
    Impairment {
        delay: Duration::from_millis(delay_ms),
        rate_bps: mbit * 1_000_000,
        queue_limit: 256 * 1024,
        ..Impairment::default()
    }
}

fn cfg(sched: &str, pm: &str) -> ConnConfig {
    ConnConfig {
        scheduler: sched.into(),
        path_manager: pm.into(),
        ..ConnConfig::default()
    }
}

/// Connect, wait for establishment, open the second path; returns (conn, second subflow id).
fn connect_two(p: &mut Pair, backup: bool) -> (mptun::stack::ConnId, u32) {
    let c = p.connect();
    assert!(p.run_until(Duration::from_secs(10), |p| p
        .client
        .connection(c)
        .is_some_and(|x| x.is_established() && x.subflows()[0].established)));
    // the client may join once the server confirmed the key (first DSS)
    assert!(p.run_until(Duration::from_secs(10), |p| {
        let now = p.now();
        p.client
            .open_subflow(
                now,
                c,
                std::net::SocketAddr::new(CLIENT2, 0),
                std::net::SocketAddr::new(SERVER2, PORT),
                backup,
            )
            .is_ok()
    }));
    let id = p
        .client
        .connection(c)
        .unwrap()
        .subflows()
        .last()
        .unwrap()
        .id;
    assert!(p.wait_subflow(c, id), "join did not complete");
    (c, id)
}

fn sent_per_subflow(p: &Pair, c: mptun::stack::ConnId) -> Vec<u64> {
    p.client
        .connection(c)
        .unwrap()
        .subflows()
        .iter()
        .map(|s| s.data_sent)
        .collect()
}

#[test]
fn two_paths_share_a_transfer() {
    let mut p = Pair::two_paths(
        21,
        path(10, 50),
        path(10, 50),
        cfg("minrtt", "manual"),
        cfg("minrtt", "manual"),
    );
    let (c, _) = connect_two(&mut p, false);
    let mut t = Transfer::new(c, data(4 << 20, 1), data(4 << 20, 2));
    assert!(
        t.run(&mut p, Duration::from_secs(120)),
        "transfer did not finish"
    );
    t.assert_intact();
    let sent = sent_per_subflow(&p, c);
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter().all(|&b| b > 100_000),
        "both subflows must carry data: {sent:?}"
    );
    let s = t.server.unwrap();
    let srv: Vec<u64> = p
        .server
        .connection(s)
        .unwrap()
        .subflows()
        .iter()
        .map(|s| s.data_sent)
        .collect();
    assert!(
        srv.iter().all(|&b| b > 100_000),
        "server used both subflows: {srv:?}"
    );
    assert_eq!(p.server.mib().MPJoinSynRx, 1);
    assert_eq!(p.server.mib().MPJoinAckRx, 1);
    assert_eq!(p.client.mib().MPJoinSynAckRx, 1);
    assert_eq!(
        p.client.mib().MPJoinSynAckHMacFailure + p.server.mib().MPJoinAckHMacFailure,
        0
    );
}

#[test]
fn four_subflows() {
    let mut p = Pair::two_paths(
        22,
        path(5, 50),
        path(5, 50),
        cfg("roundrobin", "manual"),
        cfg("minrtt", "manual"),
    );
    let (c, _) = connect_two(&mut p, false);
    let now = p.now();
    let a = p
        .client
        .open_subflow(
            now,
            c,
            std::net::SocketAddr::new(CLIENT1, 0),
            std::net::SocketAddr::new(SERVER1, PORT),
            false,
        )
        .unwrap();
    let b = p
        .client
        .open_subflow(
            now,
            c,
            std::net::SocketAddr::new(CLIENT2, 0),
            std::net::SocketAddr::new(SERVER2, PORT),
            false,
        )
        .unwrap();
    assert!(p.wait_subflow(c, a) && p.wait_subflow(c, b));
    let ids: Vec<u32> = p
        .client
        .connection(c)
        .unwrap()
        .subflows()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(
        ids,
        vec![1, 2, 3, 4],
        "ids are allocated in order and never reused"
    );
    let mut t = Transfer::new(c, data(2 << 20, 3), data(64 << 10, 4));
    assert!(t.run(&mut p, Duration::from_secs(120)));
    t.assert_intact();
    let sent = sent_per_subflow(&p, c);
    assert!(
        sent.iter().all(|&b| b > 50_000),
        "all four subflows carry data: {sent:?}"
    );
}

#[test]
fn roundrobin_alternates_and_redundant_duplicates() {
    for (sched, check) in [("roundrobin", 0), ("redundant", 1)] {
        let mut p = Pair::two_paths(
            23,
            path(10, 50),
            path(10, 50),
            cfg(sched, "manual"),
            cfg("minrtt", "manual"),
        );
        let (c, _) = connect_two(&mut p, false);
        let total = 2 << 20;
        let mut t = Transfer::new(c, data(total, 5), data(1000, 6));
        assert!(
            t.run(&mut p, Duration::from_secs(120)),
            "{sched}: did not finish"
        );
        t.assert_intact();
        let sent = sent_per_subflow(&p, c);
        let sum: u64 = sent.iter().sum();
        if check == 0 {
            for &s in &sent {
                let share = s as f64 / total as f64;
                assert!((0.3..0.7).contains(&share), "roundrobin shares {sent:?}");
            }
        } else {
            // every byte goes on each subflow that has room when it is scheduled
            assert!(
                sum as f64 >= 1.5 * total as f64,
                "redundant must duplicate: {sent:?}"
            );
            assert!(
                sent.iter().all(|&b| b as f64 >= 0.75 * total as f64),
                "redundant shares {sent:?}"
            );
        }
    }
}

#[test]
fn minrtt_prefers_the_fast_path() {
    let mut p = Pair::two_paths(
        24,
        path(5, 100),
        path(80, 100),
        cfg("minrtt", "manual"),
        cfg("minrtt", "manual"),
    );
    let (c, _) = connect_two(&mut p, false);
    let mut t = Transfer::new(c, data(1 << 20, 7), data(1000, 8));
    assert!(t.run(&mut p, Duration::from_secs(120)));
    t.assert_intact();
    let sent = sent_per_subflow(&p, c);
    assert!(sent[0] > 3 * sent[1], "fast path must dominate: {sent:?}");
}

#[test]
fn backup_is_idle_until_the_regular_path_fails() {
    let mut p = Pair::two_paths(
        25,
        path(10, 50),
        path(10, 50),
        cfg("minrtt", "manual"),
        cfg("minrtt", "manual"),
    );
    let (c, _) = connect_two(&mut p, true);
    let mut t = Transfer::new(c, data(1 << 20, 9), data(1000, 10));
    // first half: backup must stay idle
    assert!(p.run_until(Duration::from_secs(60), |p| {
        t.pump(p);
        t.s_recv.len() > 512 << 10
    }));
    assert_eq!(
        sent_per_subflow(&p, c)[1],
        0,
        "backup carried data while the regular path worked"
    );
    // kill the regular path: the backup takes over and the transfer completes
    p.net.set_link_up(0, false);
    assert!(
        t.run(&mut p, Duration::from_secs(300)),
        "transfer did not complete on the backup path"
    );
    t.assert_intact();
    assert!(sent_per_subflow(&p, c)[1] > 0);
}

#[test]
fn path_death_mid_transfer_reinjects() {
    let mut ccfg = cfg("minrtt", "manual");
    ccfg.tcp.user_timeout = Some(std::time::Duration::from_secs(5));
    let mut p = Pair::two_paths(
        26,
        path(10, 20),
        path(10, 20),
        ccfg,
        cfg("minrtt", "manual"),
    );
    let (c, _) = connect_two(&mut p, false);
    let a = data(4 << 20, 11);
    let b = data(4 << 20, 12);
    let mut t = Transfer::new(c, a, b);
    assert!(p.run_until(Duration::from_secs(60), |p| {
        t.pump(p);
        t.s_recv.len() > 1 << 20
    }));
    p.net.set_link_up(1, false);
    assert!(
        t.run(&mut p, Duration::from_secs(600)),
        "transfer did not survive the path death"
    );
    t.assert_intact();
    assert!(
        p.client.mib().Reinjections > 0,
        "outstanding data of the dead path must be reinjected"
    );
}

/// Rewrite the first packet whose MPTCP option matches `pick` with `edit`, fixing the checksum.
fn corrupt_once(
    p: &mut Pair,
    pick: impl Fn(&[u8]) -> bool + 'static,
    edit: impl Fn(&mut [u8]) + 'static,
) -> Rc<Cell<bool>> {
    let done = Rc::new(Cell::new(false));
    let d = done.clone();
    p.net.set_hook(Box::new(move |_info, pkt| {
        if d.get() {
            return Verdict::Pass;
        }
        let ihl = usize::from(pkt[0] & 0x0f) * 4;
        let doff = usize::from(pkt[ihl + 12] >> 4) * 4;
        let mut i = ihl + 20;
        while i + 1 < ihl + doff {
            match pkt[i] {
                0 => break,
                1 => i += 1,
                k => {
                    let l = usize::from(pkt[i + 1]);
                    if l < 2 || i + l > ihl + doff {
                        break;
                    }
                    if k == 30 && pick(&pkt[i..i + l]) {
                        edit(&mut pkt[i..i + l]);
                        fix_tcp_checksum(pkt);
                        d.set(true);
                        return Verdict::Pass;
                    }
                    i += l;
                }
            }
        }
        Verdict::Pass
    }));
    done
}

fn join_fails(
    seed: u64,
    pick: impl Fn(&[u8]) -> bool + 'static,
    edit: impl Fn(&mut [u8]) + 'static,
) -> Pair {
    let mut p = Pair::two_paths(
        seed,
        path(10, 50),
        path(10, 50),
        cfg("minrtt", "manual"),
        cfg("minrtt", "manual"),
    );
    let c = p.connect();
    assert!(p.run_until(Duration::from_secs(10), |p| p
        .client
        .connection(c)
        .is_some_and(|x| x.is_established())));
    let done = corrupt_once(&mut p, pick, edit);
    assert!(p.run_until(Duration::from_secs(10), |p| {
        let now = p.now();
        p.client
            .open_subflow(
                now,
                c,
                std::net::SocketAddr::new(CLIENT2, 0),
                std::net::SocketAddr::new(SERVER2, PORT),
                false,
            )
            .is_ok()
    }));
    assert!(p.run_until(Duration::from_secs(30), |p| p
        .client
        .connection(c)
        .is_some_and(|x| x.subflows().last().unwrap().closed.is_some())));
    assert!(done.get(), "the hook never found its packet");
    // the connection itself is unharmed
    let mut t = Transfer::new(c, data(100_000, 13), data(100_000, 14));
    assert!(t.run(&mut p, Duration::from_secs(60)));
    t.assert_intact();
    assert_eq!(p.client.connection(c).unwrap().mode(), Mode::Mptcp);
    p
}

#[test]
fn join_with_bad_token_is_refused() {
    // MP_JOIN SYN: length 12, token at bytes 4..8
    let p = join_fails(27, |o| o[2] >> 4 == 1 && o[1] == 12, |o| o[4] ^= 0xff);
    assert_eq!(p.server.mib().MPJoinNoTokenFound, 1);
    assert!(p.server.mib().MPRstTx >= 1, "refused with RST + MP_TCPRST");
    assert_eq!(p.server.mib().MPJoinAckRx, 0);
}

#[test]
fn join_with_bad_synack_hmac_is_refused() {
    // MP_JOIN SYN/ACK: length 16, truncated HMAC at bytes 4..12
    let p = join_fails(28, |o| o[2] >> 4 == 1 && o[1] == 16, |o| o[6] ^= 0x01);
    assert_eq!(p.client.mib().MPJoinSynAckHMacFailure, 1);
    assert_eq!(p.server.mib().MPJoinAckRx, 0);
}

#[test]
fn join_with_bad_third_ack_hmac_is_refused() {
    // MP_JOIN ACK: length 24, HMAC at bytes 4..24
    let p = join_fails(29, |o| o[2] >> 4 == 1 && o[1] == 24, |o| o[10] ^= 0x80);
    assert_eq!(p.server.mib().MPJoinAckHMacFailure, 1);
    assert_eq!(p.server.mib().MPJoinAckRx, 0);
}

#[test]
fn add_addr_lost_is_retransmitted_and_remove_addr_closes_subflows() {
    let mut scfg = cfg("minrtt", "fullmesh");
    scfg.local_addrs = vec![
        mptun::pm::LocalAddr {
            addr: SERVER1,
            backup: false,
            announce: false,
            port: 0,
            subflow: true,
            fullmesh: false,
        },
        mptun::pm::LocalAddr {
            addr: SERVER2,
            backup: false,
            announce: true,
            port: 0,
            subflow: true,
            fullmesh: false,
        },
    ];
    let mut ccfg = cfg("minrtt", "fullmesh");
    ccfg.local_addrs = vec![mptun::pm::LocalAddr {
        addr: CLIENT2,
        backup: false,
        announce: false,
        port: 0,
        subflow: true,
        fullmesh: false,
    }];
    // slow paths: the transfer must outlast the ADD_ADDR retransmission timer
    let mut p = Pair::two_paths(30, path(10, 10), path(10, 10), ccfg, scfg);
    // drop the first ADD_ADDR (subtype 3, E flag clear)
    let dropped = Rc::new(Cell::new(0u32));
    let d = dropped.clone();
    p.net.set_hook(Box::new(move |_info, pkt| {
        if mptcp_options(pkt)
            .iter()
            .any(|o| o.len() >= 3 && o[2] >> 4 == 3 && o[2] & 1 == 0)
            && d.get() == 0
        {
            d.set(1);
            return Verdict::Drop;
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(6 << 20, 15), data(6 << 20, 16));
    // the client learns SERVER2 and joins to it (CLIENT2 -> SERVER2)
    assert!(p.run_until(Duration::from_secs(60), |p| {
        t.pump(p);
        p.client.connection(c).is_some_and(|x| {
            x.subflows()
                .iter()
                .any(|s| s.remote.ip() == SERVER2 && s.established)
        })
    }));
    assert_eq!(dropped.get(), 1);
    assert!(p.server.mib().AddAddrRetrans >= 1);
    assert_eq!(p.client.mib().AddAddr, 1);
    assert!(p.run_until(Duration::from_secs(10), |p| {
        t.pump(p);
        p.server.mib().EchoAdd >= 1
    }));
    // the server withdraws SERVER2: the client closes its subflow there
    let s = t.server.unwrap();
    let id = p.server.connection(s).unwrap().local_addr_id(SERVER2);
    p.server.connection_mut(s).unwrap().remove_address(id);
    // (the server also resets its own subflows on that address, so the client may see the
    // RST before the REMOVE_ADDR: either way the subflow ends and the signal is counted)
    assert!(p.run_until(Duration::from_secs(30), |p| {
        t.pump(p);
        p.client.mib().RmAddr >= 1
            && p.client.connection(c).is_some_and(|x| {
                x.subflows()
                    .iter()
                    .filter(|s| s.remote.ip() == SERVER2)
                    .all(|s| s.closed.is_some())
            })
    }));
    assert!(t.run(&mut p, Duration::from_secs(300)));
    t.assert_intact();
}

/// Share of the client's bytes sent on the slow path (index 1) for a scheduler, when the
/// receiver's buffer (the connection window) is small and the paths' RTTs differ widely.
fn slow_path_share(sched: &str, total: usize) -> (f64, f64) {
    let ccfg = cfg(sched, "manual");
    let scfg = ConnConfig {
        recv_buffer: 64 * 1024,
        ..cfg("minrtt", "manual")
    };
    // a short queue on the fast path keeps its window near the path's capacity, so new data
    // must either wait for it or go on the slow path
    let fast = Impairment {
        queue_limit: 16 * 1024,
        ..path(10, 4)
    };
    let mut p = Pair::two_paths(31, fast, path(100, 8), ccfg, scfg);
    let (c, _) = connect_two(&mut p, false);
    let mut t = Transfer::new(c, data(total, 17), data(1000, 18));
    let start = p.now();
    assert!(
        t.run(&mut p, Duration::from_secs(600)),
        "{sched}: did not finish"
    );
    t.assert_intact();
    let secs = (p.now() - start).as_secs_f64();
    let sent = sent_per_subflow(&p, c);
    (sent[1] as f64 / sent.iter().sum::<u64>() as f64, secs)
}

#[test]
fn blest_and_ecf_avoid_the_slow_path_when_it_would_block_the_window() {
    // bulk: BLEST keeps the slow path from blocking the small connection window
    let (minrtt, _) = slow_path_share("minrtt", 1 << 20);
    let (blest, _) = slow_path_share("blest", 1 << 20);
    println!("bulk slow-path share: minrtt {minrtt:.3} blest {blest:.3}");
    assert!(
        minrtt > 0.05,
        "minRTT spills onto the slow path when the fast one is full"
    );
    assert!(
        blest < minrtt / 2.0,
        "BLEST must avoid the slow path: {blest} vs {minrtt}"
    );
    // short transfer: ECF waits for the fast path, which finishes first
    let (minrtt, _) = slow_path_share("minrtt", 96 * 1024);
    let (ecf, _) = slow_path_share("ecf", 96 * 1024);
    println!("short slow-path share: minrtt {minrtt:.3} ecf {ecf:.3}");
    assert!(
        ecf < minrtt,
        "ECF must put less on the slow path than minRTT: {ecf} vs {minrtt}"
    );
}

#[test]
fn fullmesh_recreates_a_subflow_after_its_path_returns() {
    let mut ccfg = cfg("minrtt", "fullmesh");
    ccfg.local_addrs = vec![mptun::pm::LocalAddr {
        addr: CLIENT2,
        backup: false,
        announce: false,
        port: 0,
        subflow: true,
        fullmesh: false,
    }];
    ccfg.tcp.user_timeout = Some(std::time::Duration::from_secs(3));
    let mut p = Pair::with_configs(32, path(10, 20), ccfg, cfg("minrtt", "manual"));
    // the second path reaches the server's (only) address
    let link2 = p.net.add_link(CLIENT2, SERVER1, path(10, 20), path(10, 20));
    let c = p.connect();
    let mut t = Transfer::new(c, data(24 << 20, 19), data(1 << 20, 20));
    let on_path2 = |p: &Pair| {
        p.client
            .connection(c)
            .map(|x| {
                x.subflows()
                    .iter()
                    .filter(|s| s.local.ip() == CLIENT2 && s.established && s.closed.is_none())
                    .map(|s| s.id)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert!(p.run_until(Duration::from_secs(20), |p| {
        t.pump(p);
        !on_path2(p).is_empty()
    }));
    let first = on_path2(&p)[0];
    p.net.set_link_up(link2, false);
    // the subflow on the dead path times out and closes
    assert!(p.run_until(Duration::from_secs(60), |p| {
        t.pump(p);
        on_path2(p).is_empty()
    }));
    p.net.set_link_up(link2, true);
    // the path manager opens a new subflow there, with a new id
    assert!(
        p.run_until(Duration::from_secs(120), |p| {
            t.pump(p);
            !on_path2(p).is_empty()
        }),
        "the subflow was not re-created"
    );
    let again = on_path2(&p)[0];
    assert!(
        again > first,
        "a new subflow with a fresh id ({again} after {first})"
    );
    assert!(t.run(&mut p, Duration::from_secs(600)));
    t.assert_intact();
}

#[test]
fn abort_sends_fastclose_and_the_peer_resets() {
    let mut p = Pair::two_paths(
        33,
        path(10, 20),
        path(10, 20),
        cfg("minrtt", "manual"),
        cfg("minrtt", "manual"),
    );
    let (c, _) = connect_two(&mut p, false);
    let mut t = Transfer::new(c, data(4 << 20, 23), data(4 << 20, 24));
    assert!(p.run_until(Duration::from_secs(30), |p| {
        t.pump(p);
        t.s_recv.len() > 256 << 10
    }));
    let s = t.server.unwrap();
    p.client.abort(c).unwrap();
    assert!(p.run_until(Duration::from_secs(10), |p| p
        .server
        .connection(s)
        .is_some_and(|x| x.error().is_some())));
    assert_eq!(
        p.server.connection(s).unwrap().error(),
        Some(mptun::mptcp::ConnError::Reset)
    );
    assert!(p.client.mib().MPFastcloseTx >= 1, "RSTs carry MP_FASTCLOSE");
    assert!(p.server.mib().MPFastcloseRx >= 1);
    assert!(p.server.mib().MPRstRx >= 1, "with MP_TCPRST");
    assert!(
        p.server
            .connection(s)
            .unwrap()
            .subflows()
            .iter()
            .all(|f| f.closed.is_some()),
        "every subflow closed"
    );
}

/// A join opened right after the handshake waits until the server confirmed the client's
/// key (its first DSS). Here the third ACK is lost and the second path is much faster: a
/// join SYN sent at once would reach a server that does not know the token yet and be
/// reset; held, it follows the first data packet (which repeats MP_CAPABLE) and succeeds.
#[test]
fn join_waits_for_the_server_to_confirm_the_key() {
    let mut p = Pair::two_paths(
        41,
        path(30, 50),
        path(2, 50),
        cfg("minrtt", "manual"),
        cfg("minrtt", "manual"),
    );
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        // the client's third ACK: pure ACK on path 1 carrying MP_CAPABLE
        let is_third_ack = info.from_host == 0
            && info.link == 0
            && tcp_flags(pkt) == Some(ACK)
            && tcp_payload_len(pkt) == 0
            && mptcp_options(pkt)
                .iter()
                .any(|o| o.len() >= 3 && o[2] >> 4 == 0);
        if is_third_ack && !d.get() {
            d.set(true);
            return Verdict::Drop;
        }
        Verdict::Pass
    }));
    let c = p.connect();
    assert!(p.run_until(Duration::from_secs(10), |p| p
        .client
        .connection(c)
        .is_some_and(|x| x.subflows()[0].established)));
    let id = p.open_second_path(c, false);
    p.client.send(c, &data(1000, 5)).expect("send");
    assert!(p.run_until(Duration::from_secs(10), |p| {
        let conn = p.client.connection(c).unwrap();
        let sf = conn.subflows().iter().find(|s| s.id == id).unwrap();
        sf.established || sf.closed.is_some()
    }));
    assert!(dropped.get(), "the third ACK was never seen");
    let conn = p.client.connection(c).unwrap();
    let sf = conn.subflows().iter().find(|s| s.id == id).unwrap();
    assert!(
        sf.established && sf.closed.is_none(),
        "join failed: {:?}",
        sf.closed
    );
    assert_eq!(p.server.mib().MPJoinNoTokenFound, 0);
    assert_eq!(p.server.mib().MPJoinAckRx, 1);
}

/// Bytes acknowledged for a 2-subflow connection using `cc` (both subflows on the same
/// bottleneck, `ndiffports:2`) and for a competing single-path Reno connection on that
/// bottleneck, after `secs` of bulk upload.
fn shared_bottleneck(cc: &'static str, secs: u64) -> (u64, u64) {
    shared_bottleneck_with(cc, secs, Duration::from_millis(10), 60 * 1500)
}

/// `shared_bottleneck` with the bottleneck's one-way delay and queue (bytes) given.
fn shared_bottleneck_with(
    cc: &'static str,
    secs: u64,
    delay: Duration,
    queue_limit: usize,
) -> (u64, u64) {
    let bottleneck = Impairment {
        delay,
        rate_bps: 20_000_000,
        queue_limit,
        ..Impairment::default()
    };
    let mut p = Pair::with_configs(
        51,
        bottleneck,
        ConnConfig::default(),
        cfg("minrtt", "fullmesh"),
    );
    let mut multi = cfg("minrtt", "ndiffports:2");
    multi.tcp.congestion = cc;
    let mut single = cfg("minrtt", "manual");
    single.tcp.congestion = "reno";
    let now = p.now();
    let server = std::net::SocketAddr::new(SERVER1, PORT);
    let a = p
        .client
        .connect(now, server, Some(CLIENT1), Some(multi))
        .expect("connect multipath");
    let b = p
        .client
        .connect(now, server, Some(CLIENT1), Some(single))
        .expect("connect single");
    let chunk = data(64 * 1024, 3);
    let mut accepted = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut t0 = None;
    let mut base = (0u64, 0u64);
    let acked = |p: &Pair, c| p.client.info(c).map_or(0, |i| i.bytes_acked);
    p.run_until(Duration::from_secs(secs + 30), |p| {
        for c in [a, b] {
            if p.client.connection(c).is_some_and(|x| x.is_established()) {
                while p.client.send(c, &chunk).is_ok_and(|n| n > 0) {}
            }
        }
        while let Some(s) = p.server.accept(PORT) {
            accepted.push(s);
        }
        for &s in &accepted {
            while p.server.recv(s, &mut buf).is_ok_and(|n| n > 0) {}
        }
        // measure from the moment both subflows of `a` carry data (after slow start)
        let two = p
            .client
            .connection(a)
            .is_some_and(|x| x.subflows().iter().filter(|s| s.established).count() == 2);
        if t0.is_none() && two && p.now() > Instant::ZERO + Duration::from_secs(2) {
            t0 = Some(p.now());
            base = (acked(p, a), acked(p, b));
        }
        t0.is_some_and(|t| p.now() >= t + Duration::from_secs(secs))
    });
    assert!(
        t0.is_some(),
        "the multipath connection never had two subflows"
    );
    (acked(&p, a) - base.0, acked(&p, b) - base.1)
}

/// RFC 6356's goal: on a shared bottleneck, a multipath connection coupled with LIA, OLIA
/// or BALIA takes about what one TCP takes; two uncoupled Reno subflows take about twice.
#[test]
fn coupled_congestion_control_is_fair_on_a_shared_bottleneck() {
    let (ua, ub) = shared_bottleneck("reno", 60);
    let uncoupled = ua as f64 / ub as f64;
    for cc in ["lia", "olia", "balia"] {
        let (ca, cb) = shared_bottleneck(cc, 60);
        let coupled = ca as f64 / cb as f64;
        eprintln!("{cc}: multipath/single = {coupled:.2} (uncoupled reno: {uncoupled:.2})");
        assert!(
            coupled < 1.4 && coupled < uncoupled * 0.8,
            "{cc}: multipath/single = {coupled:.2}, uncoupled reno {uncoupled:.2}"
        );
    }
    assert!(uncoupled > 1.4, "uncoupled reno subflows: {uncoupled:.2}");
}

/// The fairness above on 8 neighbouring bottlenecks (delay 9.0-11.2 ms, queue 80-99 kB):
/// one deterministic run can land anywhere in the spread drop-tail dynamics give, so this
/// checks the mean (32 runs of 60 s simulated, ~15 s in release; deterministic, so it runs
/// with the suite). Ratios before and after the TCP loss-recovery fixes: docs/PERFORMANCE.md.
#[test]
fn coupled_fairness_sweep_over_neighbouring_bottlenecks() {
    let mut means = Vec::new();
    for cc in ["reno", "lia", "olia", "balia"] {
        let ratios: Vec<f64> = (0..8u64)
            .map(|k| {
                let delay = Duration::from_micros(9_000 + k * 311);
                let (a, b) = shared_bottleneck_with(cc, 60, delay, 80_000 + k as usize * 2_713);
                a as f64 / b as f64
            })
            .collect();
        let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
        eprintln!("{cc}: mean multipath/single = {mean:.2} {ratios:.2?}");
        means.push(mean);
    }
    assert!(means[0] > 1.6, "uncoupled reno: {:.2}", means[0]);
    for (cc, m) in ["lia", "olia", "balia"].iter().zip(&means[1..]) {
        assert!(*m < 1.3, "{cc}: mean {m:.2}");
    }
}

/// RFC 8684 3.7: a DSS checksum failure on one of several subflows closes that subflow with
/// RST + MP_TCPRST + MP_FAIL; the sender re-sends what it carried on the other subflow and
/// the transfer completes intact.
#[test]
fn checksum_failure_with_two_subflows_resets_the_subflow_with_mp_fail() {
    let mut c = cfg("roundrobin", "manual");
    c.checksum = true;
    let mut p = Pair::two_paths(61, path(10, 50), path(10, 50), c.clone(), c);
    let seen = Rc::new(Cell::new(0u32));
    let done = Rc::new(Cell::new(false));
    let (s, d) = (seen.clone(), done.clone());
    p.net.set_hook(Box::new(move |info, pkt| {
        // the 20th data segment the server sends over path 2: flip a payload byte and fix
        // the TCP checksum, so only the DSS checksum can tell
        if d.get() || info.from_host != 1 || info.link != 1 || tcp_payload_len(pkt) < 100 {
            return Verdict::Pass;
        }
        s.set(s.get() + 1);
        if s.get() == 20 {
            let n = pkt.len();
            pkt[n - 10] ^= 0x5a;
            fix_tcp_checksum(pkt);
            d.set(true);
        }
        Verdict::Pass
    }));
    let (conn, id) = connect_two(&mut p, false);
    let mut t = Transfer::new(conn, data(300_000, 21), data(3_000_000, 22));
    assert!(
        t.run(&mut p, Duration::from_secs(120)),
        "transfer did not finish"
    );
    t.assert_intact();
    assert!(done.get(), "the hook never corrupted a segment");
    let (cm, sm) = (p.client.mib(), p.server.mib());
    assert_eq!(cm.DataCsumErr, 1, "the client saw the bad checksum");
    assert_eq!(cm.MPFailTx, 1);
    assert_eq!(sm.MPFailRx, 1, "the server got MP_FAIL");
    assert!(sm.MPRstRx >= 1, "with MP_TCPRST");
    let sf = p
        .client
        .connection(conn)
        .unwrap()
        .subflows()
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.closed);
    assert_eq!(sf, Some(Some(mptun::tcp::CloseReason::Aborted)));
}

/// RFC 8684 3.7 on the only subflow: a payload byte changed in transit (TCP checksum fixed,
/// as a rewriting middlebox would) fails the DSS checksum; the receiver sends MP_FAIL on its
/// ACKs, the sender answers with an infinite mapping, both fall back to plain TCP on the same
/// subflow, and the transfer completes intact both ways (the changed bytes are not
/// acknowledged, so they come again). `from_server` picks the direction corrupted.
fn single_subflow_checksum_failure_falls_back(from_server: bool) {
    let mut c = cfg("minrtt", "manual");
    c.checksum = true;
    let mut p = Pair::with_configs(67, path(10, 50), c.clone(), c);
    let done = Rc::new(Cell::new(false));
    let seen = Rc::new(Cell::new(0u32));
    let (d, n) = (done.clone(), seen.clone());
    let sender = usize::from(from_server);
    p.net.set_hook(Box::new(move |info, pkt| {
        if d.get() || info.from_host != sender || tcp_payload_len(pkt) < 100 {
            return Verdict::Pass;
        }
        n.set(n.get() + 1);
        if n.get() == 30 {
            let len = pkt.len();
            pkt[len - 10] ^= 0x5a;
            fix_tcp_checksum(pkt);
            d.set(true);
        }
        Verdict::Pass
    }));
    let conn = p.connect();
    let mut t = Transfer::new(conn, data(2_000_000, 31), data(2_000_000, 32));
    let ok = t.run(&mut p, Duration::from_secs(120));
    if !ok {
        eprintln!("client {:?}\nserver {:?}", p.client.mib(), p.server.mib());
        eprintln!(
            "c_recv {} s_recv {} c_eof {} s_eof {}",
            t.c_recv.len(),
            t.s_recv.len(),
            t.c_eof,
            t.s_eof
        );
        eprintln!(
            "client conn {:?}",
            p.client
                .connection(conn)
                .map(|c| (c.info(), c.is_fallback(), c.error()))
        );
        eprintln!(
            "server conn {:?}",
            t.server.and_then(|s| p.server.connection(s)).map(|c| (
                c.info(),
                c.is_fallback(),
                c.error()
            ))
        );
    }
    assert!(ok, "transfer did not finish");
    t.assert_intact();
    assert!(done.get(), "the hook never corrupted a segment");
    let (rx, tx) = if from_server {
        (p.client.mib(), p.server.mib())
    } else {
        (p.server.mib(), p.client.mib())
    };
    assert_eq!(rx.DataCsumErr, 1, "the receiver saw the bad checksum");
    assert_eq!(rx.MPFailTx, 1, "one MP_FAIL episode");
    assert!(tx.MPFailRx >= 1, "the sender got MP_FAIL");
    assert_eq!(tx.InfiniteMapTx, 1, "one infinite mapping sent");
    assert_eq!(rx.InfiniteMapRx, 1, "and received");
    assert_eq!(rx.FallbackFailed + tx.FallbackFailed, 0);
    let c = p.client.connection(conn).expect("client connection");
    assert!(c.is_fallback(), "the client fell back to TCP");
    let s = p
        .server
        .connection(t.server.expect("accepted"))
        .expect("server connection");
    assert!(s.is_fallback(), "the server fell back to TCP");
    assert!(c.error().is_none() && s.error().is_none());
    // the end of each stream (a DATA_FIN queued before the fallback, the subflow's FIN
    // after it) counts as acknowledged: `wait_all_acked` returns (against Linux it waited
    // for a data-level acknowledgement of a DATA_FIN that no longer exists)
    assert!(
        c.all_acked(),
        "client: everything acknowledged, its FIN included"
    );
    assert!(
        s.all_acked(),
        "server: everything acknowledged, its FIN included"
    );
}

#[test]
fn single_subflow_checksum_failure_client_to_server_falls_back_to_tcp() {
    single_subflow_checksum_failure_falls_back(false);
}

#[test]
fn single_subflow_checksum_failure_server_to_client_falls_back_to_tcp() {
    single_subflow_checksum_failure_falls_back(true);
}

/// A join whose SYN was lost and retransmitted gets no RTT sample from its handshake (Karn's
/// rule; on a sub-millisecond path the timestamp echo cannot measure either). minRTT sorted
/// such a subflow last for ever: while the measured subflow had room it carried nothing, so
/// a path failure under it went unnoticed (seen against Linux under load: a join sent 0
/// bytes of a 32 MiB upload and was never re-created after its path died). The scheduler
/// now probes it with one segment; both subflows carry data.
#[test]
fn a_join_without_an_rtt_sample_is_measured_and_used() {
    let fast = |mbit: u64| Impairment {
        delay: Duration::from_micros(300),
        rate_bps: mbit * 1_000_000,
        queue_limit: 4 << 20,
        ..Impairment::default()
    };
    let mut p = Pair::two_paths(
        23,
        fast(400),
        fast(200),
        cfg("minrtt", "manual"),
        cfg("minrtt", "manual"),
    );
    // the first MP_JOIN SYN is lost
    let dropped = Rc::new(Cell::new(false));
    let d2 = dropped.clone();
    p.net.set_hook(Box::new(move |_info, pkt| {
        let join_syn = tcp_flags(pkt) == Some(SYN)
            && mptcp_options(pkt)
                .iter()
                .any(|o| o.len() > 2 && o[2] >> 4 == 1);
        let drop = join_syn && !d2.get();
        if drop {
            d2.set(true);
        }
        verdict(drop)
    }));
    let (c, id) = connect_two(&mut p, false);
    assert!(dropped.get(), "the join SYN was not dropped");
    let joined = p
        .client
        .connection(c)
        .unwrap()
        .subflows()
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.tcb.stats().srtt);
    assert_eq!(joined, Some(None), "the join has no RTT sample yet");
    let mut t = Transfer::new(c, data(8 << 20, 23), data(10_000, 24));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    let sent = sent_per_subflow(&p, c);
    assert!(
        sent.iter().all(|&b| b > 100_000),
        "both subflows must carry data: {sent:?}"
    );
}

/// The MP_CAPABLE-with-data form maps its payload implicitly to the first DSN. A join can
/// complete before the initial subflow sends any data (its hold timer expired while the
/// server had sent no DSS yet: seen with 16 concurrent connections through the SOCKS proxy
/// against Linux); the first DSNs then go to the join and the initial subflow's first data
/// packet carries later bytes. It must use a DSS mapping, or the peer files those bytes
/// under the first DSN (Linux delivered the stream shifted). Every MP_CAPABLE packet with
/// data must carry exactly the stream's first bytes; the transfer is intact.
#[test]
fn mp_capable_with_data_carries_only_the_first_bytes() {
    let mut p = Pair::two_paths(
        25,
        path(20, 50),
        path(1, 50),
        cfg("minrtt", "manual"),
        cfg("minrtt", "manual"),
    );
    let up = data(2 << 20, 25);
    let first = up[..4096].to_vec();
    let bad = Rc::new(Cell::new(0u32));
    let mpc_data = Rc::new(Cell::new(0u32));
    let (b2, m2) = (bad.clone(), mpc_data.clone());
    p.net.set_hook(Box::new(move |info, pkt| {
        // the server's pure ACKs on the first path are lost for 400 ms: no DSS reaches the
        // client there, so only the join can tell it the server has its key
        let flags = tcp_flags(pkt).unwrap_or(0);
        if info.from_host == 1
            && info.link == 0
            && flags & SYN == 0
            && tcp_payload_len(pkt) == 0
            && info.time < Instant::ZERO + Duration::from_millis(400)
        {
            return Verdict::Drop;
        }
        if info.from_host == 0 && tcp_payload_len(pkt) > 0 {
            let mpc = mptcp_options(pkt)
                .into_iter()
                .any(|o| o.len() >= 22 && o[2] >> 4 == 0);
            if mpc {
                m2.set(m2.get() + 1);
                let n = tcp_payload_len(pkt);
                let payload = &pkt[pkt.len() - n..];
                if payload != &first[..n.min(first.len())] {
                    b2.set(b2.get() + 1);
                }
            }
        }
        Verdict::Pass
    }));
    let (c, _) = p.connect_and_join();
    let mut t = Transfer::new(c, up, data(10_000, 26));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    assert_eq!(
        bad.get(),
        0,
        "MP_CAPABLE packets with data not carrying the first bytes (of {})",
        mpc_data.get()
    );
}

/// A lost MP_JOIN SYN is sent again after about three RTTs of the initial subflow (at least
/// 200 ms), not after RFC 6298's 1 s initial RTO, which outlasts a whole fast transfer
/// (seen once against Linux in the full suite: the join's SYN was lost, the 32 MiB
/// transfer was over before the retry and the second path carried nothing).
#[test]
fn a_lost_join_syn_is_retried_within_a_few_rtts() {
    let path = Impairment {
        delay: Duration::from_millis(10),
        rate_bps: 100_000_000,
        queue_limit: 1 << 20,
        ..Impairment::default()
    };
    let mut p = Pair::two_paths(
        61,
        path.clone(),
        path,
        ConnConfig::default(),
        ConnConfig::default(),
    );
    // times the client sent a SYN on the second path; the first is dropped
    let syns = Rc::new(std::cell::RefCell::new(Vec::<Instant>::new()));
    let s2 = syns.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        let syn = tcp_flags(pkt).is_some_and(|f| f & SYN != 0 && f & ACK == 0);
        if info.from_host == 0 && info.link == 1 && syn {
            let mut s = s2.borrow_mut();
            s.push(info.time);
            if s.len() == 1 {
                return Verdict::Drop;
            }
        }
        Verdict::Pass
    }));
    let c = p.connect();
    assert!(p.run_until(Duration::from_secs(5), |p| p
        .client
        .connection(c)
        .is_some_and(|x| x.is_established())));
    // the server's first DSS makes the connection fully established, releasing the join
    // (long enough to outlast the old 1 s retry)
    let mut t = Transfer::new(c, data(30_000_000, 1), data(30_000_000, 2));
    let id = p.open_second_path(c, false);
    assert!(
        p.run_until(Duration::from_secs(5), |p| {
            t.pump(p);
            p.client
                .connection(c)
                .is_some_and(|x| x.subflows().iter().any(|s| s.id == id && s.established))
        }),
        "join never completed; SYNs at {:?}; subflows {:?}",
        syns.borrow(),
        p.client.connection(c).map(|x| x
            .subflows()
            .iter()
            .map(|s| (s.id, s.established, s.tcb.state()))
            .collect::<Vec<_>>())
    );
    let s = syns.borrow();
    assert!(s.len() >= 2, "join SYN never retried: {s:?}");
    let gap = s[1] - s[0];
    assert!(
        gap >= Duration::from_millis(199) && gap <= Duration::from_millis(300),
        "join SYN retried after {gap:?}"
    );
}

/// RFC 8684 3.7 (docs/RFC8684.md 3.7-2): a middlebox starts stripping every MPTCP option
/// from what the server sends over path 2 mid-transfer. The client then gets in-order data
/// without a mapping on a subflow that cannot fall back (another subflow exists): it resets
/// that subflow (`DSSUnmappedReset`) instead of waiting for ever for a mapping, and the
/// server re-sends what the subflow carried on path 1. Both directions complete intact.
#[test]
fn data_without_mappings_on_a_join_resets_that_subflow() {
    let c = cfg("roundrobin", "manual");
    let mut p = Pair::two_paths(63, path(10, 50), path(10, 50), c.clone(), c);
    let seen = Rc::new(Cell::new(0u32));
    let s = seen.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        // from the server's 20th data segment on path 2 on: no MPTCP options at all
        if info.from_host != 1 || info.link != 1 || tcp_payload_len(pkt) == 0 {
            return Verdict::Pass;
        }
        s.set(s.get() + 1);
        if s.get() >= 20 {
            strip_mptcp(pkt);
        }
        Verdict::Pass
    }));
    let (conn, id) = connect_two(&mut p, false);
    let mut t = Transfer::new(conn, data(300_000, 23), data(3_000_000, 24));
    assert!(
        t.run(&mut p, Duration::from_secs(120)),
        "transfer did not finish"
    );
    t.assert_intact();
    assert!(seen.get() >= 20, "the hook never stripped a segment");
    let cm = p.client.mib();
    assert_eq!(
        cm.DSSUnmappedReset, 1,
        "the client reset the subflow: {cm:?}"
    );
    assert_eq!(cm.DssFallback, 0, "and did not fall back");
    let client = p.client.connection(conn).unwrap();
    assert!(!client.is_fallback());
    let sf = client
        .subflows()
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.closed);
    assert_eq!(sf, Some(Some(mptun::tcp::CloseReason::Aborted)));
}
