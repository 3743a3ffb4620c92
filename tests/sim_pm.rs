//! Path-manager parity with Linux on the simulated network (issue 13): late ADD_ADDRs are
//! joined for the whole life of the connection, joins to several announced addresses go out
//! in parallel (an unreachable address never delays a reachable one), and Linux-style limits
//! (`ip mptcp limits set subflows N add_addr_accepted M`, plus the number of addresses
//! announced) per connection.

mod simutil;

use mptun::crypto::KeyGen;
use mptun::io::impair::Impairment;
use mptun::io::sim::{SimNet, Verdict};
use mptun::mptcp::ConnConfig;
use mptun::pm::{Limits, LocalAddr};
use mptun::stack::{ConnId, Stack, StackConfig};
use mptun::time::{Duration, Instant};
use simutil::*;
use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

/// Server addresses with a link to CLIENT1 that drops everything: announced but unreachable.
const DEAD1: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 3, 1));
const DEAD2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 4, 1));
/// A third reachable server address (with a link from CLIENT1).
const SERVER3: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 5, 1));

fn path() -> Impairment {
    Impairment {
        delay: Duration::from_millis(10),
        rate_bps: 20_000_000,
        queue_limit: 256 * 1024,
        ..Impairment::default()
    }
}

fn cfg(pm: &str) -> ConnConfig {
    ConnConfig {
        path_manager: pm.into(),
        ..ConnConfig::default()
    }
}

/// Client (only CLIENT1 used by its path manager) and server (manual: it announces what the
/// test tells it to). CLIENT1 has links to SERVER1, SERVER2, SERVER3, DEAD1 and DEAD2; the
/// server host owns all five addresses.
fn star(seed: u64, mut ccfg: ConnConfig, scfg: ConnConfig) -> Pair {
    let _ = env_logger::builder().is_test(true).try_init();
    let server_addrs = [SERVER1, SERVER2, SERVER3, DEAD1, DEAD2];
    let mut net = SimNet::new(seed);
    net.add_host(&[CLIENT1]);
    net.add_host(&server_addrs);
    for a in server_addrs {
        net.add_link(CLIENT1, a, path(), path());
    }
    if ccfg.local_addrs.is_empty() {
        ccfg.local_addrs = vec![LocalAddr {
            addr: CLIENT1,
            backup: false,
            announce: false,
            port: 0,
            subflow: true,
            fullmesh: false,
        }];
    }
    stacks_on(net, seed, (&[CLIENT1], ccfg), (&server_addrs, scfg))
}

/// A pair over `net`: a client stack with addresses and configuration `c`, a server stack
/// (listening on PORT) with `s`.
fn stacks_on(
    net: SimNet,
    seed: u64,
    c: (&[IpAddr], ConnConfig),
    s: (&[IpAddr], ConnConfig),
) -> Pair {
    let client = Stack::new(
        StackConfig {
            addrs: c.0.to_vec(),
            conn: c.1,
            ..StackConfig::default()
        },
        KeyGen::from_seed(seed * 3 + 1),
    );
    let mut server = Stack::new(
        StackConfig {
            addrs: s.0.to_vec(),
            conn: s.1,
            ..StackConfig::default()
        },
        KeyGen::from_seed(seed * 5 + 2),
    );
    server.listen(PORT).expect("listen");
    Pair {
        net,
        client,
        server,
        client_offload: None,
        server_offload: None,
    }
}

/// Connect and wait until both sides have the connection established and fully so.
fn establish(p: &mut Pair) -> (ConnId, ConnId) {
    let c = p.connect();
    let mut s = None;
    assert!(p.run_until(Duration::from_secs(10), |p| {
        if s.is_none() {
            s = p.server.accept(PORT);
        }
        s.is_some()
            && p.client
                .connection(c)
                .is_some_and(|x| x.is_established() && x.subflows()[0].established)
    }));
    // let the first DSS go by so the connection is fully established on both sides
    let t = p.now() + Duration::from_millis(200);
    p.run_until(Duration::from_secs(1), |p| p.now() >= t);
    (c, s.unwrap())
}

fn established_to(p: &Pair, c: ConnId, remote: IpAddr) -> usize {
    p.client.connection(c).map_or(0, |x| {
        x.subflows()
            .iter()
            .filter(|s| s.remote.ip() == remote && s.established && s.closed.is_none())
            .count()
    })
}

fn sa(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, PORT)
}

type JoinLog = Rc<RefCell<Vec<(Instant, IpAddr)>>>;

/// Records (time, destination) of every MP_JOIN SYN and of every MP_JOIN third ACK the
/// client sends, drops what goes to the dead addresses.
fn join_log(p: &mut Pair) -> (JoinLog, JoinLog) {
    let syns = Rc::new(RefCell::new(Vec::new()));
    let acks = Rc::new(RefCell::new(Vec::new()));
    let (l, a) = (syns.clone(), acks.clone());
    p.net.set_hook(Box::new(move |info, pkt| {
        let flags = tcp_flags(pkt).unwrap_or(0);
        // MP_JOIN is subtype 1; its third-ACK form is 24 bytes long
        let join = mptcp_options(pkt)
            .iter()
            .find(|o| o.len() >= 3 && o[2] >> 4 == 1)
            .map(Vec::len);
        if flags & 0x12 == 0x02 && join.is_some() {
            l.borrow_mut().push((info.time, info.dst));
        }
        if flags & 0x12 == 0x10 && join == Some(24) && info.src == CLIENT1 {
            a.borrow_mut().push((info.time, info.dst));
        }
        if info.dst == DEAD1 || info.dst == DEAD2 {
            return Verdict::Drop;
        }
        Verdict::Pass
    }));
    (syns, acks)
}

/// (a) An ADD_ADDR arriving a second into the connection, after the client's own send side
/// is finished (its DATA_FIN acknowledged), is still joined: joins are legal for the whole
/// life of the connection. Data the server sends afterwards uses the new subflow too.
#[test]
fn late_add_addr_after_our_send_side_is_done_is_joined() {
    let mut p = star(131, cfg("fullmesh"), cfg("manual"));
    let (c, s) = establish(&mut p);
    let mut buf = vec![0u8; 65536];
    // the client sends 64 kB and finishes its send side
    let out = data(64 * 1024, 7);
    let mut sent = 0;
    let mut got = Vec::new();
    assert!(p.run_until(Duration::from_secs(10), |p| {
        let now = p.now();
        if sent < out.len() {
            sent += p.client.send(c, &out[sent..]).unwrap_or(0);
            if sent == out.len() {
                p.client.shutdown(now, c).unwrap();
            }
        }
        while let Ok(n) = p.server.recv(s, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        // (all_acked after shutdown: our DATA_FIN is acknowledged)
        got.len() == out.len()
            && sent == out.len()
            && p.client.connection(c).is_some_and(|x| x.all_acked())
    }));
    // a second later, the server announces SERVER2
    let t = p.now() + Duration::from_secs(1);
    p.run_until(Duration::from_secs(2), |p| p.now() >= t);
    p.server
        .connection_mut(s)
        .unwrap()
        .announce(1, SERVER2, None);
    assert!(
        p.run_until(Duration::from_secs(5), |p| established_to(p, c, SERVER2)
            == 1),
        "the client did not join the late announcement: {:?}",
        p.client.connection(c).unwrap().subflows()
    );
    assert_eq!(p.client.mib().AddAddr, 1);
    assert_eq!(p.server.mib().EchoAdd, 1);
    assert_eq!(p.server.mib().MPJoinAckRx, 1);
    // the server's data still arrives, and the connection closes cleanly
    let back = data(256 * 1024, 8);
    let mut bsent = 0;
    let mut bgot = Vec::new();
    let mut shut = false;
    assert!(p.run_until(Duration::from_secs(30), |p| {
        let now = p.now();
        if bsent < back.len() {
            bsent += p.server.send(s, &back[bsent..]).unwrap_or(0);
        } else if !shut {
            p.server.shutdown(now, s).unwrap();
            shut = true;
        }
        loop {
            match p.client.recv(c, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => bgot.extend_from_slice(&buf[..n]),
            }
        }
        bgot.len() == back.len()
            && p.client
                .connection(c)
                .is_some_and(|x| x.is_closed() && x.error().is_none())
    }));
    assert!(bgot == back);
}

/// (a) The same announcement a second into an idle connection (nobody shut down) is joined.
#[test]
fn late_add_addr_on_an_idle_connection_is_joined() {
    let mut p = star(132, cfg("fullmesh"), cfg("manual"));
    let (c, s) = establish(&mut p);
    let t = p.now() + Duration::from_millis(1500);
    p.run_until(Duration::from_secs(2), |p| p.now() >= t);
    p.server
        .connection_mut(s)
        .unwrap()
        .announce(1, SERVER2, None);
    assert!(
        p.run_until(Duration::from_secs(5), |p| established_to(p, c, SERVER2)
            == 1)
    );
}

/// (b) Three addresses announced at once, two of them black holes listed first: the join to
/// the reachable one leaves at once and completes within a few RTTs; each join to a dead
/// address retransmits its own SYN and finally gives up on its own.
#[test]
fn joins_to_announced_addresses_go_out_in_parallel() {
    let mut p = star(133, cfg("fullmesh"), cfg("manual"));
    let (c, s) = establish(&mut p);
    let (syns, acks) = join_log(&mut p);
    let t0 = p.now();
    {
        let sc = p.server.connection_mut(s).unwrap();
        sc.announce(1, DEAD1, None);
        sc.announce(2, DEAD2, None);
        sc.announce(3, SERVER2, None);
    }
    assert!(
        p.run_until(Duration::from_secs(2), |p| established_to(p, c, SERVER2)
            == 1)
    );
    // (the simulator's clock jumps to the next event, so time the join by its packets: the
    // client's third ACK to SERVER2 completes it, one RTT after the SYN/ACK)
    let third = acks.borrow().iter().find(|x| x.1 == SERVER2).map(|x| x.0);
    let took = third.expect("no third ACK to SERVER2") - t0;
    assert!(
        took < Duration::from_millis(150),
        "the reachable join took {took:?} (RTT 20 ms); join SYNs {:?}",
        syns.borrow()
    );
    // the three SYNs left within the same few milliseconds, the dead ones first or not
    let first: Vec<(Instant, IpAddr)> = syns.borrow().iter().take(3).copied().collect();
    let dests: Vec<IpAddr> = first.iter().map(|x| x.1).collect();
    for a in [DEAD1, DEAD2, SERVER2] {
        assert!(dests.contains(&a), "no SYN to {a}: {first:?}");
    }
    let spread = first.last().unwrap().0 - first.first().unwrap().0;
    assert!(spread < Duration::from_millis(50), "SYNs spread {spread:?}");
    // each dead join retransmits on its own and gives up on its own
    assert!(p.run_until(Duration::from_secs(300), |p| {
        p.client.connection(c).is_some_and(|x| {
            x.subflows()
                .iter()
                .filter(|s| s.remote.ip() == DEAD1 || s.remote.ip() == DEAD2)
                .count()
                >= 2
                && x.subflows()
                    .iter()
                    .filter(|s| s.remote.ip() == DEAD1 || s.remote.ip() == DEAD2)
                    .all(|s| s.closed.is_some())
        })
    }));
    let log = syns.borrow();
    for a in [DEAD1, DEAD2] {
        let n = log.iter().filter(|x| x.1 == a).count();
        assert!(n >= 3, "{n} SYNs to {a}: the join must retransmit");
    }
    // the reachable subflow was never disturbed
    assert_eq!(established_to(&p, c, SERVER2), 1);
    assert!(p.client.connection(c).unwrap().error().is_none());
}

/// (c) `add_addr_accepted 0` on the client: announcements are echoed, counted as dropped, and
/// never joined (Linux's "unused signal address").
#[test]
fn add_addr_accepted_zero_ignores_announcements() {
    let mut ccfg = cfg("fullmesh");
    ccfg.limits = Limits {
        max_add_addr_accepted: 0,
        ..Limits::default()
    };
    let mut p = star(134, ccfg, cfg("manual"));
    let (c, s) = establish(&mut p);
    p.server
        .connection_mut(s)
        .unwrap()
        .announce(1, SERVER2, None);
    let t = p.now() + Duration::from_secs(3);
    p.run_until(Duration::from_secs(4), |p| p.now() >= t);
    assert_eq!(p.client.mib().AddAddr, 1);
    assert_eq!(p.client.mib().AddAddrDrop, 1);
    assert_eq!(p.server.mib().EchoAdd, 1);
    assert_eq!(p.server.mib().MPJoinSynRx, 0);
    assert_eq!(p.client.connection(c).unwrap().subflows().len(), 1);
}

/// (c) `subflows 1 add_addr_accepted 2` on the client, three reachable addresses announced:
/// two accepted, one subflow created; after a run-time change of the limits to
/// `subflows 2`, the second accepted address is joined too.
#[test]
fn subflow_and_accept_limits_bound_joins_and_can_change_at_run_time() {
    let mut ccfg = cfg("fullmesh");
    ccfg.limits = Limits {
        max_subflows: 1,
        max_add_addr_accepted: 2,
        ..Limits::default()
    };
    let mut p = star(135, ccfg, cfg("manual"));
    let (c, s) = establish(&mut p);
    {
        let sc = p.server.connection_mut(s).unwrap();
        sc.announce(1, SERVER2, None);
        sc.announce(2, SERVER3, None);
        sc.announce(3, SERVER1, Some(PORT + 1));
    }
    let t = p.now() + Duration::from_secs(3);
    p.run_until(Duration::from_secs(4), |p| p.now() >= t);
    let cl = p.client.connection(c).unwrap();
    assert_eq!(cl.subflows().len(), 2, "{:?}", cl.subflows());
    assert_eq!(p.client.mib().AddAddr, 3);
    assert_eq!(p.client.mib().AddAddrDrop, 1);
    assert_eq!(p.server.mib().EchoAdd, 3);
    assert_eq!(p.server.mib().MPJoinAckRx, 1);
    // raise the subflow limit at run time: the other accepted address is joined
    let now = p.now();
    p.client
        .set_limits(
            now,
            c,
            Limits {
                max_subflows: 2,
                max_add_addr_accepted: 2,
                ..Limits::default()
            },
        )
        .unwrap();
    assert!(p.run_until(Duration::from_secs(3), |p| {
        established_to(p, c, SERVER2) + established_to(p, c, SERVER3) == 2
    }));
    assert_eq!(p.client.connection(c).unwrap().subflows().len(), 3);
    assert_eq!(p.server.mib().MPJoinAckRx, 2);
}

/// (c) Server side: `subflows 0` refuses joins (MPJoinRejected, RST with MP_TCPRST), and
/// `max_announced 1` lets only one of two configured addresses be announced.
#[test]
fn server_limits_refuse_joins_and_bound_announcements() {
    let mut scfg = cfg("fullmesh");
    scfg.limits = Limits {
        max_subflows: 0,
        max_announced: 1,
        ..Limits::default()
    };
    scfg.local_addrs = vec![
        LocalAddr {
            addr: SERVER2,
            backup: false,
            announce: true,
            port: 0,
            subflow: true,
            fullmesh: false,
        },
        LocalAddr {
            addr: SERVER3,
            backup: false,
            announce: true,
            port: 0,
            subflow: true,
            fullmesh: false,
        },
    ];
    let mut p = star(136, cfg("fullmesh"), scfg);
    let (c, _s) = establish(&mut p);
    let t = p.now() + Duration::from_secs(3);
    p.run_until(Duration::from_secs(4), |p| p.now() >= t);
    assert_eq!(p.server.mib().AddAddrTx, 1);
    assert_eq!(p.client.mib().AddAddr, 1);
    assert!(p.server.mib().MPJoinRejected >= 1);
    assert_eq!(p.server.mib().MPJoinAckRx, 0);
    let cl = p.client.connection(c).unwrap();
    assert_eq!(
        cl.subflows().iter().filter(|s| s.established).count(),
        1,
        "{:?}",
        cl.subflows()
    );
    assert!(cl.error().is_none());
    let _ = sa(SERVER1);
}

/// Endpoints changed while a transfer runs, as `ip mptcp endpoint add ... signal`,
/// `change ... backup` and `delete` do: the new address is announced and joined, the
/// backup flag follows with MP_PRIO, the removal sends REMOVE_ADDR and ends the subflow;
/// the transfer completes intact.
#[test]
fn endpoints_added_reflagged_and_removed_at_run_time() {
    let mut scfg = cfg("fullmesh");
    scfg.local_addrs = vec![LocalAddr {
        addr: SERVER1,
        backup: false,
        announce: false,
        port: 0,
        subflow: true,
        fullmesh: false,
    }];
    let mut p = star(137, cfg("fullmesh"), scfg);
    let c = p.connect();
    let mut t = Transfer::new(c, data(6 << 20, 21), data(6 << 20, 22));
    assert!(p.run_until(Duration::from_secs(5), |p| {
        t.pump(p);
        t.server.is_some() && t.c_recv.len() > 64 * 1024
    }));
    assert_eq!(p.server.mib().AddAddrTx, 0);
    // add: `ip mptcp endpoint add SERVER2 signal`
    let now = p.now();
    let ep = LocalAddr {
        addr: SERVER2,
        backup: false,
        announce: true,
        port: 0,
        subflow: true,
        fullmesh: false,
    };
    p.server.set_endpoint(now, ep).unwrap();
    assert!(p.run_until(Duration::from_secs(3), |p| {
        t.pump(p);
        established_to(p, c, SERVER2) == 1
    }));
    assert_eq!(p.server.mib().AddAddrTx, 1);
    // change: `ip mptcp endpoint change SERVER2 backup`
    let now = p.now();
    p.server
        .set_endpoint(now, LocalAddr { backup: true, ..ep })
        .unwrap();
    let peer_backup = |p: &Pair| {
        p.client.connection(c).is_some_and(|x| {
            x.subflows()
                .iter()
                .any(|s| s.remote.ip() == SERVER2 && s.closed.is_none() && s.peer_backup)
        })
    };
    assert!(p.run_until(Duration::from_secs(3), |p| {
        t.pump(p);
        peer_backup(p)
    }));
    assert!(p.server.mib().MPPrioTx >= 1);
    assert!(p.client.mib().MPPrioRx >= 1);
    // delete: `ip mptcp endpoint delete SERVER2`
    let now = p.now();
    p.server.remove_endpoint(now, SERVER2).unwrap();
    assert!(p.run_until(Duration::from_secs(10), |p| {
        t.pump(p);
        p.client.mib().RmAddr >= 1 && established_to(p, c, SERVER2) == 0
    }));
    // an address the stack does not own is refused
    let now = p.now();
    assert!(p
        .server
        .set_endpoint(
            now,
            LocalAddr {
                addr: CLIENT1,
                ..ep
            }
        )
        .is_err());
    assert!(t.run(&mut p, Duration::from_secs(120)));
    t.assert_intact();
    // Linux's counters: RmSubflow where the endpoint was deleted, RmAddr where the signal
    // arrived
    assert_eq!(p.server.mib().RmSubflow, 1);
    assert_eq!(p.client.mib().RmAddr, 1);
    assert_eq!(p.client.mib().RmSubflow, 0);
    // the removed address was not announced again, nor joined again
    assert_eq!(p.server.mib().AddAddrTx, 1);
    assert_eq!(p.server.mib().MPJoinAckRx, 1);
}

/// ADD_ADDR retransmission timeout and count are configurable (Linux's `add_addr_timeout`;
/// mptcp_join.sh "signal address, ADD_ADDR timeout"): with every ADD_ADDR dropped, the
/// announcer sends it 1 + `add_addr_retries` times, `add_addr_timeout` apart, then stops.
#[test]
fn add_addr_retransmission_timeout_is_configurable() {
    let mut scfg = cfg("manual");
    scfg.add_addr_timeout = Duration::from_millis(300);
    scfg.add_addr_retries = 3;
    let mut p = star(138, cfg("fullmesh"), scfg);
    let (c, s) = establish(&mut p);
    let sent = Rc::new(RefCell::new(Vec::new()));
    let l = sent.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        // ADD_ADDR is subtype 3; the E (echo) flag is the low bit
        if mptcp_options(pkt)
            .iter()
            .any(|o| o.len() >= 3 && o[2] >> 4 == 3 && o[2] & 1 == 0)
        {
            l.borrow_mut().push(info.time);
            return Verdict::Drop;
        }
        Verdict::Pass
    }));
    p.server
        .connection_mut(s)
        .unwrap()
        .announce(1, SERVER2, None);
    let t = p.now() + Duration::from_secs(5);
    p.run_until(Duration::from_secs(6), |p| p.now() >= t);
    let times = sent.borrow();
    assert_eq!(times.len(), 4, "ADD_ADDR sent at {times:?}");
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(300) && gap < Duration::from_millis(400),
            "gap {gap:?} in {times:?}"
        );
    }
    assert_eq!(p.server.mib().AddAddrTx, 1);
    assert_eq!(p.server.mib().AddAddrRetrans, 3);
    assert_eq!(p.client.mib().AddAddr, 0);
    assert_eq!(p.client.connection(c).unwrap().subflows().len(), 1);
}

/// Client side of run-time endpoints (`ip mptcp endpoint add ADDR subflow` on the client):
/// a new local address is joined from, flagging it backup sends MP_PRIO, deleting it closes
/// its subflow (RmSubflow 1, no REMOVE_ADDR since it was never announced).
#[test]
fn client_endpoint_added_reflagged_and_removed_at_run_time() {
    let mut ccfg = cfg("fullmesh");
    ccfg.local_addrs = vec![LocalAddr {
        addr: CLIENT1,
        backup: false,
        announce: false,
        port: 0,
        subflow: true,
        fullmesh: false,
    }];
    let mut p = Pair::with_configs(139, path(), ccfg, cfg("manual"));
    p.net.add_link(CLIENT2, SERVER1, path(), path());
    let c = p.connect();
    let mut t = Transfer::new(c, data(4 << 20, 23), data(4 << 20, 24));
    assert!(p.run_until(Duration::from_secs(5), |p| {
        t.pump(p);
        t.server.is_some() && t.c_recv.len() > 64 * 1024
    }));
    let from2 = |p: &Pair| {
        p.client.connection(c).map_or(0, |x| {
            x.subflows()
                .iter()
                .filter(|s| s.local.ip() == CLIENT2 && s.established && s.closed.is_none())
                .count()
        })
    };
    assert_eq!(from2(&p), 0);
    let ep = LocalAddr {
        addr: CLIENT2,
        backup: false,
        announce: false,
        port: 0,
        subflow: true,
        fullmesh: false,
    };
    let now = p.now();
    p.client.set_endpoint(now, ep).unwrap();
    assert!(p.run_until(Duration::from_secs(3), |p| {
        t.pump(p);
        from2(p) == 1
    }));
    let now = p.now();
    p.client
        .set_endpoint(now, LocalAddr { backup: true, ..ep })
        .unwrap();
    assert!(p.run_until(Duration::from_secs(3), |p| {
        t.pump(p);
        p.server.mib().MPPrioRx >= 1
    }));
    let now = p.now();
    p.client.remove_endpoint(now, CLIENT2).unwrap();
    // closed gracefully: both FINs exchanged (TIME-WAIT then keeps the record a while)
    assert!(p.run_until(Duration::from_secs(10), |p| {
        t.pump(p);
        p.client.connection(c).is_some_and(|x| {
            x.subflows()
                .iter()
                .filter(|s| s.local.ip() == CLIENT2)
                .all(|s| {
                    s.closed.is_some() || matches!(s.tcb.state().name(), "time-wait" | "closed")
                })
        })
    }));
    assert!(t.run(&mut p, Duration::from_secs(120)));
    t.assert_intact();
    assert_eq!(p.client.mib().RmSubflow, 1);
    assert_eq!(p.server.mib().RmAddr, 0);
    assert_eq!(p.server.mib().MPJoinAckRx, 1);
}

/// A signal queued while the client still has to send MP_CAPABLE on its ACKs (the server
/// sent no DSS yet) waits for a segment that can carry it, without an ACK storm: asking for
/// the next ACK happens only after an ACK that really carried a signal.
#[test]
fn queued_signal_behind_mp_capable_acks_does_not_storm() {
    let mut ccfg = cfg("fullmesh");
    ccfg.local_addrs = vec![
        LocalAddr {
            addr: CLIENT1,
            backup: false,
            announce: false,
            port: 0,
            subflow: true,
            fullmesh: false,
        },
        LocalAddr {
            addr: CLIENT2,
            backup: false,
            announce: true,
            port: 0,
            subflow: true,
            fullmesh: false,
        },
    ];
    let mut p = Pair::with_configs(140, path(), ccfg, cfg("manual"));
    let count = Rc::new(RefCell::new(0u64));
    let n = count.clone();
    p.net.set_hook(Box::new(move |info, _pkt| {
        if info.src == CLIENT1 {
            *n.borrow_mut() += 1;
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let t = p.now() + Duration::from_secs(2);
    p.run_until(Duration::from_secs(3), |p| {
        p.now() >= t || *count.borrow() > 1000
    });
    let sent = *count.borrow();
    assert!(sent < 50, "{sent} packets from the client in 2 s");
    assert!(p.client.connection(c).unwrap().is_established());
}

/// A third client address, for mptcp_join.sh's topology (ns2's 198.19.3.2).
const CLIENT3: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 3, 2));

/// mptcp_join.sh's topology: client CLIENT1..3, server SERVER1 and SERVER2, every client
/// address able to reach every server address (the script's per-interface default routes).
/// The client runs the `kernel` path manager with `endpoints` (Linux's flags) and `limits`;
/// the server the `manual` one with `slimits`, announcing what the test tells it to.
fn join_topology(seed: u64, endpoints: Vec<LocalAddr>, limits: Limits, slimits: Limits) -> Pair {
    let _ = env_logger::builder().is_test(true).try_init();
    let (caddrs, saddrs) = ([CLIENT1, CLIENT2, CLIENT3], [SERVER1, SERVER2]);
    let mut net = SimNet::new(seed);
    net.add_host(&caddrs);
    net.add_host(&saddrs);
    for c in caddrs {
        for s in saddrs {
            net.add_link(c, s, path(), path());
        }
    }
    let mut ccfg = cfg("kernel");
    ccfg.local_addrs = endpoints;
    ccfg.limits = limits;
    let mut scfg = cfg("manual");
    scfg.limits = slimits;
    stacks_on(net, seed, (&caddrs, ccfg), (&saddrs, scfg))
}

/// A Linux endpoint: `ip mptcp endpoint add ADDR subflow [fullmesh]`.
fn endpoint(addr: IpAddr, fullmesh: bool) -> LocalAddr {
    LocalAddr {
        addr,
        backup: false,
        announce: false,
        port: 0,
        subflow: true,
        fullmesh,
    }
}

/// No endpoint but the initial address, without flags (an empty list would make every
/// address of the stack a `subflow` endpoint).
fn no_endpoints() -> Vec<LocalAddr> {
    vec![LocalAddr {
        subflow: false,
        ..endpoint(CLIENT1, false)
    }]
}

fn limits(add_addr_accepted: u32, subflows: u32) -> Limits {
    Limits {
        max_subflows: subflows,
        max_add_addr_accepted: add_addr_accepted,
        ..Limits::default()
    }
}

/// The established client subflows other than the initial one, as (local, remote) pairs.
fn joined_pairs(p: &Pair, c: ConnId) -> Vec<(IpAddr, IpAddr)> {
    let mut v: Vec<_> = p.client.connection(c).map_or(Vec::new(), |x| {
        x.subflows()
            .iter()
            .skip(1)
            .filter(|s| s.established && s.closed.is_none())
            .map(|s| (s.local.ip(), s.remote.ip()))
            .collect()
    });
    v.sort();
    v
}

/// Run with a transfer in both directions until `joins` subflows joined (then 1 s more,
/// so that a join too many would show), and check the script's `chk_join_nr N N N` and
/// `chk_add_nr A A` on both sides' counters.
fn run_join_case(p: &mut Pair, (c, s): (ConnId, ConnId), joins: u64, adds: u64, seed: u64) {
    let mut t = Transfer::new(c, data(2 << 20, seed), data(2 << 20, seed + 1));
    t.server = Some(s); // accepted by `establish`
    assert!(p.run_until(Duration::from_secs(10), |p| {
        t.pump(p);
        p.server.mib().MPJoinAckRx >= joins
    }));
    let until = p.now() + Duration::from_secs(1);
    p.run_until(Duration::from_secs(2), |p| {
        t.pump(p);
        p.now() >= until
    });
    assert!(t.run(p, Duration::from_secs(60)), "transfer did not finish");
    t.assert_intact();
    let (cm, sm) = (p.client.mib(), p.server.mib());
    // chk_join_nr: SYNs received, SYN/ACKs received, third ACKs received
    assert_eq!(sm.MPJoinSynRx, joins, "server MPJoinSynRx");
    assert_eq!(cm.MPJoinSynAckRx, joins, "client MPJoinSynAckRx");
    assert_eq!(sm.MPJoinAckRx, joins, "server MPJoinAckRx");
    // chk_add_nr: ADD_ADDRs received, echoes received
    assert_eq!(cm.AddAddr, adds, "client AddAddr");
    assert_eq!(sm.EchoAdd, adds, "server EchoAdd");
}

/// mptcp_join.sh "fullmesh test 2x1": two `subflow,fullmesh` endpoints on the client before
/// the connection (limits 1 4), one address announced by the server during it (limits 0 4):
/// each fullmesh endpoint joins the initial address, then each joins the announced one; the
/// initial address does not (fullmesh endpoints take announcements). chk_join_nr 4 4 4,
/// chk_add_nr 1 1.
#[test]
fn kernel_pm_fullmesh_2x1() {
    let mut p = join_topology(
        161,
        vec![endpoint(CLIENT2, true), endpoint(CLIENT3, true)],
        limits(1, 4),
        limits(0, 4),
    );
    let (c, s) = establish(&mut p);
    p.server
        .connection_mut(s)
        .unwrap()
        .announce(1, SERVER2, None);
    run_join_case(&mut p, (c, s), 4, 1, 161);
    assert_eq!(
        joined_pairs(&p, c),
        vec![
            (CLIENT2, SERVER1),
            (CLIENT2, SERVER2),
            (CLIENT3, SERVER1),
            (CLIENT3, SERVER2)
        ]
    );
}

/// The server announces SERVER2 (id 1); the client's join to it is up within 3 s.
fn announce_server2_and_wait_for_the_join(p: &mut Pair, c: ConnId, s: ConnId) {
    p.server
        .connection_mut(s)
        .unwrap()
        .announce(1, SERVER2, None);
    assert!(
        p.run_until(Duration::from_secs(3), |p| established_to(p, c, SERVER2)
            == 1)
    );
}

/// "fullmesh test 1x1": the server announces one address (limits 1 3); one `subflow,
/// fullmesh` endpoint is added on the client during the connection: the announcement is
/// joined from the initial address (no fullmesh endpoint yet), then the new endpoint joins
/// both server addresses. chk_join_nr 3 3 3, chk_add_nr 1 1.
#[test]
fn kernel_pm_fullmesh_1x1() {
    let mut p = join_topology(162, no_endpoints(), limits(1, 3), limits(1, 3));
    let (c, s) = establish(&mut p);
    announce_server2_and_wait_for_the_join(&mut p, c, s);
    let now = p.now();
    p.client.set_endpoint(now, endpoint(CLIENT3, true)).unwrap();
    run_join_case(&mut p, (c, s), 3, 1, 162);
    assert_eq!(
        joined_pairs(&p, c),
        vec![(CLIENT1, SERVER2), (CLIENT3, SERVER1), (CLIENT3, SERVER2)]
    );
}

/// "fullmesh test 1x2" and "fullmesh test 1x2, limited": as 1x1 with two fullmesh endpoints
/// added (client limits 1 5: chk_join_nr 5 5 5), and with the client's subflow limit at 4
/// (chk_join_nr 4 4 4: the limit, not the mesh, ends it).
#[test]
fn kernel_pm_fullmesh_1x2_and_limited() {
    for (seed, max, joins) in [(163u64, 5u32, 5u64), (164, 4, 4)] {
        let mut p = join_topology(seed, no_endpoints(), limits(1, max), limits(2, 5));
        let (c, s) = establish(&mut p);
        announce_server2_and_wait_for_the_join(&mut p, c, s);
        let now = p.now();
        p.client.set_endpoint(now, endpoint(CLIENT2, true)).unwrap();
        p.client.set_endpoint(now, endpoint(CLIENT3, true)).unwrap();
        run_join_case(&mut p, (c, s), joins, 1, seed);
        assert_eq!(joined_pairs(&p, c).len() as u64, joins, "seed {seed}");
    }
}

/// Without `fullmesh` (Linux's plain `subflow` endpoint, mptcp_join.sh "subflow and signal",
/// limits 2 2): the endpoint joins the initial server address only and the announcement is
/// joined from the initial client address, exactly those two pairs. The `fullmesh` path
/// manager, given the same addresses, meshes them instead (three candidate pairs, two by the
/// limit), which is why the flags matter only to `kernel`.
#[test]
fn kernel_pm_subflow_endpoint_without_fullmesh_joins_the_initial_address_only() {
    let mut p = join_topology(
        165,
        vec![endpoint(CLIENT3, false)],
        limits(2, 2),
        limits(2, 3),
    );
    let (c, s) = establish(&mut p);
    p.server
        .connection_mut(s)
        .unwrap()
        .announce(1, SERVER2, None);
    // long enough to be still running at the endpoint change below (a join is made only
    // while the connection is open)
    let mut t = Transfer::new(c, data(16 << 20, 165), data(16 << 20, 166));
    t.server = Some(s);
    assert!(p.run_until(Duration::from_secs(5), |p| {
        t.pump(p);
        joined_pairs(p, c).len() == 2
    }));
    let until = p.now() + Duration::from_secs(1);
    p.run_until(Duration::from_secs(2), |p| {
        t.pump(p);
        p.now() >= until
    });
    assert_eq!(
        joined_pairs(&p, c),
        vec![(CLIENT1, SERVER2), (CLIENT3, SERVER1)]
    );
    // the endpoint turned `fullmesh` at run time (`endpoint change`), the limit raised: its
    // pair to the announced address follows
    let now = p.now();
    assert!(
        t.s_recv.len() < 16 << 20 && t.c_recv.len() < 16 << 20,
        "the transfer ended before the endpoint change"
    );
    p.client.set_limits(now, c, limits(2, 3)).unwrap();
    p.client.set_endpoint(now, endpoint(CLIENT3, true)).unwrap();
    assert!(p.run_until(Duration::from_secs(5), |p| {
        t.pump(p);
        joined_pairs(p, c).contains(&(CLIENT3, SERVER2))
    }));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    assert_eq!(p.server.mib().MPJoinAckRx, 3);
    assert_eq!(p.client.mib().AddAddr, 1);
}

/// mptcp_join.sh "userspace pm add & remove address": the server's path manager is the
/// application (`manual`, Linux's userspace PM); it announces SERVER2 under id 10 with
/// `announce_address` (Linux's `ANNOUNCE`), the client (`kernel` PM, limits 1 1) joins it,
/// then the server withdraws id 10 (`REMOVE`): chk_join_nr 1 1 1, chk_add_nr 1 1, chk_rm_nr
/// 1 1 invert (the client receives one REMOVE_ADDR, the server removes the one subflow), the
/// client's subflow to the address ends, and the transfer stays intact.
#[test]
fn userspace_pm_add_and_remove_address() {
    let mut p = join_topology(171, no_endpoints(), limits(1, 1), limits(0, 1));
    let (c, s) = establish(&mut p);
    let mut t = Transfer::new(c, data(2 << 20, 171), data(2 << 20, 172));
    t.server = Some(s);
    {
        let conn = p.server.connection_mut(s).unwrap();
        // the initial subflow's address and id 0 are not the application's to announce
        assert!(conn.announce_address(0, SERVER2, None).is_err());
        assert!(conn.announce_address(10, SERVER1, None).is_err());
        conn.announce_address(10, SERVER2, None).expect("announce");
        assert!(
            conn.announce_address(11, SERVER2, None).is_err(),
            "SERVER2 has id 10"
        );
    }
    assert!(p.run_until(Duration::from_secs(5), |p| {
        t.pump(p);
        established_to(p, c, SERVER2) == 1
    }));
    // the server's joined subflow carries the application's id
    let joined = &p.server.connection(s).unwrap().subflows()[1];
    assert_eq!((joined.local.ip(), joined.local_addr_id), (SERVER2, 10));
    let until = p.now() + Duration::from_millis(500);
    p.run_until(Duration::from_secs(1), |p| {
        t.pump(p);
        p.now() >= until
    });
    p.server
        .connection_mut(s)
        .unwrap()
        .withdraw_address(10)
        .expect("withdraw");
    assert!(
        p.run_until(Duration::from_secs(5), |p| {
            t.pump(p);
            established_to(p, c, SERVER2) == 0
        }),
        "the client kept its subflow to the withdrawn address"
    );
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    let (cm, sm) = (p.client.mib(), p.server.mib());
    assert_eq!(
        (sm.MPJoinSynRx, cm.MPJoinSynAckRx, sm.MPJoinAckRx),
        (1, 1, 1)
    );
    assert_eq!((cm.AddAddr, sm.EchoAdd), (1, 1));
    // chk_rm_nr 1 1 invert: the REMOVE_ADDR counted where it arrives, the removed subflow
    // where the address was withdrawn (Linux's meaning of RmAddr / RmSubflow)
    assert_eq!(
        (cm.RmAddr, sm.RmSubflow),
        (1, 1),
        "client {cm:?}, server {sm:?}"
    );
    assert!(
        p.server
            .connection_mut(s)
            .unwrap()
            .withdraw_address(10)
            .is_err(),
        "id 10 is no longer announced"
    );
}

/// mptcp_join.sh "userspace pm create destroy subflow": the client's path manager is the
/// application (`manual`); it opens a subflow from CLIENT2 to the server's initial address
/// (Linux's `SUBFLOW_CREATE`), then closes it (`SUBFLOW_DESTROY`) while data flows: the
/// server (limits 0 1) counts chk_join_nr 1 1 1, no REMOVE_ADDR is sent (chk_rm_nr 0 ...),
/// the subflow ends on both sides and the transfer stays intact.
#[test]
fn userspace_pm_create_and_destroy_subflow() {
    let _ = env_logger::builder().is_test(true).try_init();
    let (caddrs, saddrs) = ([CLIENT1, CLIENT2], [SERVER1]);
    let mut net = SimNet::new(173);
    net.add_host(&caddrs);
    net.add_host(&saddrs);
    for a in caddrs {
        net.add_link(a, SERVER1, path(), path());
    }
    let mut scfg = cfg("kernel");
    scfg.limits = limits(0, 1);
    let mut p = stacks_on(net, 173, (&caddrs, cfg("manual")), (&saddrs, scfg));
    let (c, s) = establish(&mut p);
    let mut t = Transfer::new(c, data(2 << 20, 173), data(2 << 20, 174));
    t.server = Some(s);
    let now = p.now();
    let id = p
        .client
        .open_subflow(now, c, SocketAddr::new(CLIENT2, 0), sa(SERVER1), false)
        .expect("open");
    assert!(p.run_until(Duration::from_secs(5), |p| {
        t.pump(p);
        let conn = p.client.connection(c).unwrap();
        conn.subflow_by_id(id)
            .is_some_and(|i| conn.subflows()[i].established)
    }));
    let until = p.now() + Duration::from_millis(500);
    p.run_until(Duration::from_secs(1), |p| {
        t.pump(p);
        p.now() >= until
    });
    let conn = p.client.connection_mut(c).unwrap();
    let idx = conn.subflow_by_id(id).unwrap();
    assert!(conn.close_subflow(idx, false));
    assert!(
        p.run_until(Duration::from_secs(5), |p| {
            t.pump(p);
            let sv = p.server.connection(s).unwrap();
            sv.subflows().len() == 2 && sv.subflows()[1].closed.is_some()
        }),
        "the server's end of the subflow did not close"
    );
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    let (cm, sm) = (p.client.mib(), p.server.mib());
    assert_eq!(
        (sm.MPJoinSynRx, cm.MPJoinSynAckRx, sm.MPJoinAckRx),
        (1, 1, 1)
    );
    assert_eq!(sm.RmAddr, 0, "no REMOVE_ADDR for a destroyed subflow");
}
