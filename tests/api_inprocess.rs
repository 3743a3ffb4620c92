//! The Rust socket API's subflow operations (draft-hesmans-mptcp-socket) end to end, without
//! root: two `Runtime`s in one process joined by two `SeqPacketDevice` pairs.
//!
//! Client 198.18.1.2 (port 0) / 198.18.2.2 (port 1), server 198.18.1.1 / 198.18.2.1. Both use
//! the `manual` path manager, so every subflow beyond the initial one is opened by the test.

use mptun::api::{
    CloseHow, MptcpListener, MptcpStream, SubflowApiError, SubflowOpt, SubflowOptName,
    SubflowStatus,
};
use mptun::crypto::KeyGen;
use mptun::io::driver::{Port, Runtime, SeqPacketDevice};
use mptun::mptcp::{ConnConfig, ConnEvent, SubflowOptions};
use mptun::stack::{Stack, StackConfig};
use mptun::tcp::CloseReason;
use sha2::{Digest, Sha256};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const C1: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const C2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 2));
const S1: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1));
const S2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 1));
const PORT: u16 = 5201;
const T: Duration = Duration::from_secs(10);

fn sa(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// The application alone opens subflows; a short TIME-WAIT so that gracefully closed
/// subflows report their close within the test.
fn manual() -> ConnConfig {
    let mut c = ConnConfig {
        path_manager: "manual".into(),
        ..ConnConfig::default()
    };
    c.tcp.time_wait = Duration::from_millis(300);
    c
}

/// One connection between two in-process runtimes. Field order = drop order: the streams
/// go before the runtimes that carry them.
struct Net {
    client: MptcpStream,
    server: MptcpStream,
    _listener: MptcpListener,
    client_rt: Runtime,
    server_rt: Runtime,
}

fn runtime(addrs: [IpAddr; 2], devs: [SeqPacketDevice; 2], cfg: ConnConfig, seed: u64) -> Runtime {
    let stack = Stack::new(
        StackConfig {
            addrs: addrs.to_vec(),
            conn: cfg,
            ..StackConfig::default()
        },
        KeyGen::from_seed(seed),
    );
    let ports = devs
        .into_iter()
        .zip(addrs)
        .map(|(d, a)| Port {
            device: Box::new(d),
            addrs: vec![a],
            egress: None,
            ingress: None,
        })
        .collect();
    Runtime::start(stack, ports, seed).expect("start runtime")
}

fn net_with(seed: u64, ccfg: ConnConfig, scfg: ConnConfig) -> Net {
    let _ = env_logger::builder().is_test(true).try_init();
    let (ca, sa_) = SeqPacketDevice::pair("c0", "s0").expect("pair 0");
    let (cb, sb) = SeqPacketDevice::pair("c1", "s1").expect("pair 1");
    let server_rt = runtime([S1, S2], [sa_, sb], scfg.clone(), seed * 2 + 1);
    let client_rt = runtime([C1, C2], [ca, cb], ccfg.clone(), seed * 2 + 2);
    let listener = MptcpListener::bind_with(server_rt.handle(), PORT, Some(scfg)).expect("bind");
    let client = MptcpStream::connect_with(
        client_rt.handle(),
        sa(S1, PORT),
        Some(C1),
        Some(ccfg),
        Some(T),
    )
    .expect("connect");
    let (server, peer) = listener.accept_timeout(Some(T)).expect("accept");
    assert_eq!(peer.ip(), C1);
    Net {
        client,
        server,
        _listener: listener,
        client_rt,
        server_rt,
    }
}

fn net(seed: u64) -> Net {
    net_with(seed, manual(), manual())
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Drain events until `pred` holds for one of them (all drained events are returned).
fn events_until(
    s: &MptcpStream,
    timeout: Duration,
    pred: impl Fn(&ConnEvent) -> bool,
) -> Vec<ConnEvent> {
    let end = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        while let Some(e) = s.poll_event() {
            let hit = pred(&e);
            seen.push(e);
            if hit {
                return seen;
            }
        }
        assert!(Instant::now() < end, "event not seen; got {seen:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn status(s: &MptcpStream, id: u32) -> SubflowStatus {
    s.subflows()
        .expect("subflows")
        .into_iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| panic!("subflow {id} not listed"))
}

fn initial_id(s: &MptcpStream) -> u32 {
    let l = s.subflows().expect("subflows");
    let init: Vec<_> = l.iter().filter(|f| f.initial).collect();
    assert_eq!(init.len(), 1, "exactly one initial subflow: {l:?}");
    init[0].id
}

/// Deterministic pseudo-random bytes (xorshift64*), different per `seed`.
struct Pattern(u64);

impl Pattern {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Write `len` pattern bytes in uneven chunks, then shut down the write half; returns the
/// SHA-256 of what was written.
fn send_all(s: &MptcpStream, len: usize, seed: u64) -> [u8; 32] {
    send_gated(s, len, seed, &AtomicUsize::new(usize::MAX))
}

/// `send_all`, writing no further than `gate` (bytes from the start) allows at each moment:
/// the test moves the gate so that the transfer is still running when it changes subflows,
/// however fast the stack is.
fn send_gated(s: &MptcpStream, len: usize, seed: u64, gate: &AtomicUsize) -> [u8; 32] {
    let mut p = Pattern(seed | 1);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 70_001];
    let mut left = len;
    while left > 0 {
        let allowed = gate.load(Ordering::Acquire).saturating_sub(len - left);
        if allowed == 0 {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let n = left.min(buf.len() - (left % 977));
        let n = n.max(1).min(left).min(allowed);
        p.fill(&mut buf[..n]);
        (&*s).write_all(&buf[..n]).expect("write");
        h.update(&buf[..n]);
        left -= n;
    }
    s.shutdown(Shutdown::Write).expect("shutdown");
    h.finalize().into()
}

/// Read until EOF; returns (bytes, SHA-256).
fn recv_all(s: &MptcpStream) -> (usize, [u8; 32]) {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 50_000];
    let mut total = 0;
    loop {
        match (&*s).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
                total += n;
            }
            Err(e) => panic!("read failed after {total} bytes: {e}"),
        }
    }
    (total, h.finalize().into())
}

fn open_second(s: &MptcpStream, backup: bool) -> u32 {
    let id = s
        .open_subflow(sa(C2, 0), sa(S2, PORT), backup)
        .expect("open subflow");
    s.wait_subflow_established(id, T).expect("join established");
    id
}

#[test]
fn open_subflow_on_second_tuple() {
    let n = net(1);
    let init = initial_id(&n.client);
    assert_eq!(
        n.client.subflows().unwrap().len(),
        1,
        "manual PM opened nothing"
    );
    let id = n
        .client
        .open_subflow(sa(C2, 0), sa(S2, PORT), false)
        .expect("open");
    assert_ne!(id, init);
    n.client
        .wait_subflow_established(id, T)
        .expect("established");
    let st = status(&n.client, id);
    assert!(st.established && !st.initial && !st.backup && st.closed.is_none());
    assert_eq!(st.local.ip(), C2);
    assert_ne!(st.local.port(), 0, "an ephemeral port was chosen");
    assert_eq!(st.remote, sa(S2, PORT));
    // MPTCP_GET_SUB_TUPLE reads back what the listing says
    assert_eq!(n.client.subflow_tuple(id).unwrap(), (st.local, st.remote));
    assert_eq!(
        n.client.subflow_tuple(init).unwrap(),
        (n.client.local_addr().unwrap(), sa(S1, PORT))
    );
    // the event stream reports the join on both sides
    events_until(&n.client, T, |e| *e == ConnEvent::SubflowEstablished { id });
    events_until(&n.server, T, |e| {
        matches!(e, ConnEvent::SubflowEstablished { .. })
    });
    // the server lists the mirror tuple
    wait_until("server sees two subflows", T, || {
        n.server
            .subflows()
            .unwrap()
            .iter()
            .filter(|f| f.established)
            .count()
            == 2
    });
    let srv = n.server.subflows().unwrap();
    assert!(srv
        .iter()
        .any(|f| f.local == st.remote && f.remote == st.local && !f.initial));
    let info = n.client.info().unwrap();
    assert_eq!((info.subflows, info.subflows_total), (2, 2));
    // an explicit source port is honoured; the same tuple twice is rejected
    let id2 = n
        .client
        .open_subflow(sa(C2, 40001), sa(S2, PORT), false)
        .expect("explicit port");
    n.client.wait_subflow_established(id2, T).unwrap();
    assert_eq!(n.client.subflow_tuple(id2).unwrap().0, sa(C2, 40001));
    assert_eq!(
        n.client.open_subflow(sa(C2, 40001), sa(S2, PORT), false),
        Err(SubflowApiError::InvalidArgument)
    );
    // some data still goes through
    (&n.client).write_all(b"ping").unwrap();
    let mut b = [0u8; 4];
    (&n.server).read_exact(&mut b).unwrap();
    assert_eq!(&b, b"ping");
}

#[test]
fn ids_are_never_reused() {
    let n = net(2);
    let init = initial_id(&n.client);
    let mut seen = vec![init];
    for round in 0..4 {
        let id = open_second(&n.client, false);
        assert!(!seen.contains(&id), "id {id} reused (round {round})");
        assert!(id > *seen.iter().max().unwrap(), "ids increase");
        seen.push(id);
        let how = if round % 2 == 0 {
            CloseHow::Graceful
        } else {
            CloseHow::Abortive
        };
        n.client.close_subflow(id, how).expect("close");
        assert!(
            !status(&n.client, id).established,
            "a closing subflow is not listed as established"
        );
        events_until(
            &n.client,
            T,
            |e| matches!(e, ConnEvent::SubflowClosed { id: x, .. } if *x == id),
        );
        // once closed, a second close of the same id is refused
        assert_eq!(
            n.client.close_subflow(id, how),
            Err(SubflowApiError::UnknownId)
        );
        if let Some(st) = n.client.subflows().unwrap().iter().find(|f| f.id == id) {
            assert!(st.closed.is_some() && !st.established, "{st:?}");
        }
        // options on a closed subflow are refused
        assert_eq!(
            n.client.set_subflow_option(id, SubflowOpt::NoDelay(true)),
            Err(SubflowApiError::UnknownId)
        );
    }
    assert!(status(&n.client, init).established);
}

/// Multi-MB transfer both ways while subflows are opened and closed, gracefully and
/// abortively, including the initial one: every byte arrives intact and in order.
#[test]
fn churn_keeps_data_intact() {
    const UP: usize = 12 << 20;
    const DOWN: usize = 6 << 20;
    let n = net(3);
    let init = initial_id(&n.client);
    // both directions are gated: each change happens while data is still being written
    let (gate_up, gate_down) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let (up, down, ids) = std::thread::scope(|sc| {
        let tx = sc.spawn(|| send_gated(&n.client, UP, 11, &gate_up));
        let rx = sc.spawn(|| recv_all(&n.server));
        let tx2 = sc.spawn(|| send_gated(&n.server, DOWN, 22, &gate_down));
        let rx2 = sc.spawn(|| recv_all(&n.client));
        let release = |up: usize| {
            gate_up.store(up, Ordering::Release);
            gate_down.store(up / 2, Ordering::Release);
        };
        let progressed = |min: u64| {
            wait_until("transfer progress", Duration::from_secs(60), || {
                n.server.info().unwrap().bytes_received >= min
            })
        };
        release(1 << 20);
        progressed(512 << 10);
        let a = open_second(&n.client, false);
        release(3 << 20);
        progressed(2 << 20);
        n.client.close_subflow(a, CloseHow::Graceful).unwrap();
        let b = open_second(&n.client, false);
        release(5 << 20);
        progressed(4 << 20);
        n.client.close_subflow(init, CloseHow::Abortive).unwrap();
        let c = n
            .client
            .open_subflow(sa(C1, 0), sa(S1, PORT), false)
            .unwrap();
        n.client.wait_subflow_established(c, T).unwrap();
        release(8 << 20);
        progressed(7 << 20);
        n.client.close_subflow(b, CloseHow::Abortive).unwrap();
        release(UP);
        let ids = [init, a, b, c];
        for (i, x) in ids.iter().enumerate() {
            assert!(!ids[..i].contains(x), "ids distinct: {ids:?}");
        }
        let (up_sent, (up_n, up_got)) = (tx.join().unwrap(), rx.join().unwrap());
        let (down_sent, (down_n, down_got)) = (tx2.join().unwrap(), rx2.join().unwrap());
        assert_eq!(up_n, UP);
        assert_eq!(down_n, DOWN);
        (up_sent == up_got, down_sent == down_got, [a, b, c])
    });
    let [a, b, c] = ids;
    assert!(up, "client -> server SHA-256 differs");
    assert!(down, "server -> client SHA-256 differs");
    // the closes were reported; abortive ones with the local-abort reason
    let mut closed = std::collections::HashMap::new();
    let mut established = Vec::new();
    // the graceful close may still be in TIME-WAIT: wait for all three closes
    let end = Instant::now() + T;
    while ![init, a, b].iter().all(|x| closed.contains_key(x)) && Instant::now() < end {
        while let Some(e) = n.client.poll_event() {
            match e {
                ConnEvent::SubflowClosed { id, reason } => {
                    closed.insert(id, reason);
                }
                ConnEvent::SubflowEstablished { id } => established.push(id),
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    established.sort_unstable();
    assert_eq!(
        established,
        [init, a, b, c],
        "the initial subflow and three joins"
    );
    assert!(closed.len() >= 3, "three closes: {closed:?}");
    assert_eq!(closed.get(&init), Some(&CloseReason::Aborted), "{closed:?}");
    assert_eq!(closed.get(&b), Some(&CloseReason::Aborted), "{closed:?}");
    assert!(closed.contains_key(&a), "{closed:?}");
    let info = n.client.info().unwrap();
    assert!(!info.fallback);
    assert_eq!(info.bytes_received, DOWN as u64);
    assert_eq!(info.bytes_sent, UP as u64);
}

#[test]
fn backup_subflow_is_avoided_then_used() {
    const LEN: usize = 3 << 20;
    let n = net(4);
    let init = initial_id(&n.client);
    let bk = open_second(&n.client, true);
    let st = status(&n.client, bk);
    assert!(st.backup, "status shows backup: {st:?}");
    assert!(!status(&n.client, init).backup);
    assert_eq!(
        n.client.subflow_option(bk, SubflowOptName::Backup),
        Ok(SubflowOpt::Backup(true))
    );
    // the server learnt it from the B bit of MP_JOIN
    wait_until("server lists the backup join", T, || {
        n.server
            .subflows()
            .unwrap()
            .iter()
            .any(|f| !f.initial && f.established && f.backup)
    });
    std::thread::scope(|sc| {
        let rx = sc.spawn(|| recv_all(&n.server));
        // no shutdown: keep the connection for the second phase
        let mut p = Pattern(5);
        let mut buf = vec![0u8; 64 << 10];
        let mut h = Sha256::new();
        let mut left = LEN;
        while left > 0 {
            let k = left.min(buf.len());
            p.fill(&mut buf[..k]);
            h.update(&buf[..k]);
            (&n.client).write_all(&buf[..k]).unwrap();
            left -= k;
        }
        n.client.wait_all_acked(Some(T)).unwrap();
        let b = n.client.subflow_info(bk).unwrap();
        let i = n.client.subflow_info(init).unwrap();
        assert_eq!(
            b.data_sent, 0,
            "backup carried data while the regular one worked"
        );
        assert_eq!(i.data_sent, LEN as u64);
        // the regular subflow fails: the backup takes over
        n.client.close_subflow(init, CloseHow::Abortive).unwrap();
        let more = 1 << 20;
        for _ in 0..more / buf.len() {
            p.fill(&mut buf);
            h.update(&buf);
            (&n.client).write_all(&buf).unwrap();
        }
        n.client.shutdown(Shutdown::Write).unwrap();
        let (got, digest) = rx.join().unwrap();
        assert_eq!(got, LEN + more);
        let sent: [u8; 32] = h.finalize().into();
        assert_eq!(sent, digest);
        let b = n.client.subflow_info(bk).unwrap();
        assert!(
            b.data_sent >= more as u64,
            "backup used after failure: {b:?}"
        );
    });
}

#[test]
fn per_subflow_options_set_and_read_back() {
    let n = net(5);
    let init = initial_id(&n.client);
    let c = &n.client;
    for id in [init, open_second(c, false)] {
        for v in [true, false] {
            c.set_subflow_option(id, SubflowOpt::NoDelay(v)).unwrap();
            assert_eq!(
                c.subflow_option(id, SubflowOptName::NoDelay),
                Ok(SubflowOpt::NoDelay(v))
            );
        }
        for tos in [0x28u8, 0xb8, 0] {
            c.set_subflow_option(id, SubflowOpt::Tos(tos)).unwrap();
            assert_eq!(
                c.subflow_option(id, SubflowOptName::Tos),
                Ok(SubflowOpt::Tos(tos))
            );
        }
        for ut in [Some(Duration::from_secs(7)), None] {
            c.set_subflow_option(id, SubflowOpt::UserTimeout(ut))
                .unwrap();
            assert_eq!(
                c.subflow_option(id, SubflowOptName::UserTimeout),
                Ok(SubflowOpt::UserTimeout(ut))
            );
        }
        let SubflowOpt::MaxSeg(before) = c.subflow_option(id, SubflowOptName::MaxSeg).unwrap()
        else {
            panic!("MaxSeg reads back as MaxSeg");
        };
        assert!(before > 1000, "initial MSS {before}");
        c.set_subflow_option(id, SubflowOpt::MaxSeg(1000)).unwrap();
        assert_eq!(
            c.subflow_option(id, SubflowOptName::MaxSeg),
            Ok(SubflowOpt::MaxSeg(1000))
        );
        assert_eq!(c.subflow_info(id).unwrap().snd_mss, 1000);
        for bad in [0u16, 10, 87] {
            assert_eq!(
                c.set_subflow_option(id, SubflowOpt::MaxSeg(bad)),
                Err(SubflowApiError::InvalidArgument)
            );
        }
        assert_eq!(
            c.subflow_option(id, SubflowOptName::MaxSeg),
            Ok(SubflowOpt::MaxSeg(1000)),
            "a rejected value changes nothing"
        );
    }
    // Backup through setsockopt sends MP_PRIO: the peer reports the priority change.
    c.set_subflow_option(init, SubflowOpt::Backup(true))
        .unwrap();
    assert_eq!(
        c.subflow_option(init, SubflowOptName::Backup),
        Ok(SubflowOpt::Backup(true))
    );
    assert!(status(c, init).backup);
    events_until(&n.server, T, |e| {
        matches!(e, ConnEvent::SubflowPriority { backup: true, .. })
    });
    wait_until("server sees the initial subflow as backup", T, || {
        n.server
            .subflows()
            .unwrap()
            .iter()
            .any(|f| f.initial && f.backup)
    });
    c.set_subflow_option(init, SubflowOpt::Backup(false))
        .unwrap();
    events_until(&n.server, T, |e| {
        matches!(e, ConnEvent::SubflowPriority { backup: false, .. })
    });
    assert!(!status(c, init).backup);
    // Options given at open time apply before the SYN: the peer sees our MSS option.
    let id = c
        .open_subflow_with(
            sa(C2, 0),
            sa(S2, PORT),
            false,
            SubflowOptions {
                mss: Some(900),
                tos: Some(0x48),
                nodelay: Some(true),
                user_timeout: Some(Some(Duration::from_secs(3))),
            },
        )
        .unwrap();
    c.wait_subflow_established(id, T).unwrap();
    assert_eq!(
        c.subflow_option(id, SubflowOptName::Tos),
        Ok(SubflowOpt::Tos(0x48))
    );
    assert_eq!(
        c.subflow_option(id, SubflowOptName::NoDelay),
        Ok(SubflowOpt::NoDelay(true))
    );
    assert_eq!(
        c.subflow_option(id, SubflowOptName::UserTimeout),
        Ok(SubflowOpt::UserTimeout(Some(Duration::from_secs(3))))
    );
    let SubflowOpt::MaxSeg(m) = c.subflow_option(id, SubflowOptName::MaxSeg).unwrap() else {
        panic!()
    };
    assert!(m <= 900, "MSS {m}");
    let (local, _) = c.subflow_tuple(id).unwrap();
    let srv = n
        .server
        .subflows()
        .unwrap()
        .into_iter()
        .find(|f| f.remote == local)
        .expect("server side of the new subflow");
    let si = n.server.subflow_info(srv.id).unwrap();
    assert!(si.snd_mss <= 900, "server honours our MSS option: {si:?}");
}

#[test]
fn subflow_stats_match_bytes_transferred() {
    const LEN: usize = 6 << 20;
    let ccfg = ConnConfig {
        scheduler: "roundrobin".into(),
        ..manual()
    };
    let n = net_with(6, ccfg, manual());
    let init = initial_id(&n.client);
    let second = open_second(&n.client, false);
    let (digest_ok, got) = std::thread::scope(|sc| {
        let rx = sc.spawn(|| recv_all(&n.server));
        let sent = send_all(&n.client, LEN, 66);
        let (got, d) = rx.join().unwrap();
        (sent == d, got)
    });
    assert!(digest_ok);
    assert_eq!(got, LEN);
    n.client.wait_all_acked(Some(T)).unwrap();
    // a DATA_ACK can arrive on one subflow before the other subflow's own (delayed) ACK:
    // wait for the subflow-level ACKs too
    wait_until("subflow-level ACKs", T, || {
        [init, second]
            .iter()
            .all(|id| n.client.subflow_info(*id).unwrap().in_flight == 0)
    });
    let ci = n.client.info().unwrap();
    let si = n.server.info().unwrap();
    let c = [init, second].map(|id| n.client.subflow_info(id).unwrap());
    let sub_ids: Vec<u32> = n.server.subflows().unwrap().iter().map(|f| f.id).collect();
    assert_eq!(sub_ids.len(), 2);
    let s: Vec<_> = sub_ids
        .iter()
        .map(|id| n.server.subflow_info(*id).unwrap())
        .collect();
    // data-level: first transmissions sum to what was written, on both ends
    assert_eq!(c.iter().map(|x| x.data_sent).sum::<u64>(), LEN as u64);
    assert_eq!(ci.bytes_sent, LEN as u64);
    assert!(ci.bytes_acked >= LEN as u64 && ci.bytes_acked <= LEN as u64 + 1);
    assert_eq!(s.iter().map(|x| x.data_received).sum::<u64>(), LEN as u64);
    assert_eq!(si.bytes_received, LEN as u64);
    // subflow-level: acknowledged payload covers everything (plus any reinjected copies)
    let acked: u64 = c.iter().map(|x| x.bytes_acked).sum();
    assert!(
        acked >= LEN as u64 && acked <= LEN as u64 + ci.reinjected,
        "acked {acked}, reinjected {}",
        ci.reinjected
    );
    for (x, id) in c.iter().zip([init, second]) {
        assert!(x.data_sent > 0, "round robin used subflow {id}: {x:?}");
        assert!(x.bytes_sent >= x.bytes_acked, "{x:?}");
        assert!(x.bytes_sent >= x.data_sent, "{x:?}");
        assert_eq!(x.state, 1, "ESTABLISHED");
        assert!(x.rtt.is_some() && x.cwnd > 0 && x.snd_mss > 0, "{x:?}");
        assert_eq!(x.in_flight, 0, "all acknowledged");
    }
    let recv_sum: u64 = s.iter().map(|x| x.bytes_received).sum();
    assert!(
        recv_sum >= LEN as u64,
        "server subflows received {recv_sum}"
    );
    // connection info of both ends agrees
    assert!(!ci.fallback && !si.fallback);
    assert_eq!(ci.local_token, si.remote_token);
    assert_eq!(ci.remote_token, si.local_token);
    assert_eq!((ci.subflows, si.subflows), (2, 2));
    assert_eq!(si.bytes_sent, 0, "nothing sent back");
}

#[test]
fn timeouts_nonblocking_and_try_clone() {
    let small = ConnConfig {
        send_buffer: 64 << 10,
        recv_buffer: 64 << 10,
        ..manual()
    };
    let n = net_with(7, small.clone(), small);
    let c = &n.client;
    // read timeout: nothing to read -> WouldBlock after about the timeout
    assert_eq!(
        c.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    c.set_read_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    assert_eq!(c.read_timeout().unwrap(), Some(Duration::from_millis(150)));
    let t0 = Instant::now();
    let mut b = [0u8; 16];
    let e = (&*c).read(&mut b).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(140),
        "{:?}",
        t0.elapsed()
    );
    c.set_read_timeout(None).unwrap();
    // nonblocking read
    c.set_nonblocking(true).unwrap();
    let t0 = Instant::now();
    assert_eq!(
        (&*c).read(&mut b).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    assert!(t0.elapsed() < Duration::from_millis(100));
    // nonblocking write fills the buffers (the server does not read) then WouldBlock
    let chunk = vec![7u8; 8192];
    let mut written = 0usize;
    let end = Instant::now() + T;
    let mut quiet_since = Instant::now();
    // until the stack takes nothing for 300 ms: buffers and windows are all full
    while quiet_since.elapsed() < Duration::from_millis(300) {
        match (&*c).write(&chunk) {
            Ok(k) => {
                written += k;
                quiet_since = Instant::now();
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("{e}"),
        }
        assert!(
            Instant::now() < end,
            "writes never blocked ({written} bytes)"
        );
    }
    assert!(written >= 64 << 10, "send buffer took {written}");
    assert!(written < 16 << 20, "bounded buffers: {written}");
    // blocking write with a timeout while the buffers are full
    c.set_nonblocking(false).unwrap();
    c.set_write_timeout(Some(Duration::from_millis(150)))
        .unwrap();
    assert_eq!(c.write_timeout().unwrap(), Some(Duration::from_millis(150)));
    let t0 = Instant::now();
    let e = (&*c).write(&chunk[..]).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    assert!(t0.elapsed() >= Duration::from_millis(140));
    c.set_write_timeout(None).unwrap();
    // drain on the server: exactly what was written
    let mut got = 0usize;
    let mut buf = vec![0u8; 32 << 10];
    while got < written {
        let k = (&n.server).read(&mut buf).unwrap();
        assert!(buf[..k].iter().all(|x| *x == 7));
        got += k;
    }
    assert_eq!(got, written);
    // try_clone: same connection, shared options, survives the original's drop
    let clone = c.try_clone().unwrap();
    assert_eq!(clone.id(), c.id());
    clone.set_nonblocking(true).unwrap();
    assert_eq!(
        (&*c).read(&mut b).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    clone.set_nonblocking(false).unwrap();
    let Net {
        client,
        server,
        _listener,
        client_rt,
        server_rt,
    } = n;
    drop(client);
    (&clone).write_all(b"via clone").unwrap();
    let mut b9 = [0u8; 9];
    (&server).read_exact(&mut b9).unwrap();
    assert_eq!(&b9, b"via clone");
    (&server).write_all(b"back").unwrap();
    let mut b4 = [0u8; 4];
    (&clone).read_exact(&mut b4).unwrap();
    assert_eq!(&b4, b"back");
    assert!(clone.subflows().unwrap().len() == 1);
    // shutdown(Read): reads report end of stream even though the peer sends more
    clone.shutdown(Shutdown::Read).unwrap();
    (&server).write_all(b"ignored").unwrap();
    assert_eq!((&clone).read(&mut b4).unwrap(), 0);
    (&clone).write_all(b"still writable").unwrap();
    drop((clone, server, _listener, client_rt, server_rt));
}

#[test]
fn shutdown_gives_eof_and_half_close() {
    let n = net(8);
    (&n.client).write_all(b"hello").unwrap();
    n.client.shutdown(Shutdown::Write).unwrap();
    let e = (&n.client).write(b"more").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BrokenPipe, "{e}");
    let mut got = Vec::new();
    (&n.server).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello");
    assert_eq!((&n.server).read(&mut [0u8; 8]).unwrap(), 0, "EOF again");
    events_until(&n.server, T, |e| *e == ConnEvent::PeerClosed);
    // the other direction still works
    (&n.server).write_all(b"bye").unwrap();
    n.server.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    (&n.client).read_to_end(&mut back).unwrap();
    assert_eq!(back, b"bye");
    n.client.wait_closed(Some(T)).unwrap();
    n.server.wait_closed(Some(T)).unwrap();
    events_until(&n.client, T, |e| {
        matches!(e, ConnEvent::Closed { error: None })
    });
    // after the close: operations that change subflows say so; reads give final values
    let c = &n.client;
    let last = c.subflows().expect("final subflow list stays readable");
    let init = last.iter().find(|f| f.initial).expect("initial subflow").id;
    // the connection closes once both DATA_FINs are acknowledged; the subflow's own FIN
    // exchange finishes in the background
    wait_until("subflow in TIME-WAIT or CLOSED", T, || {
        c.subflow_info(init)
            .is_ok_and(|f| [6, 7].contains(&f.state))
    });
    let fin = c
        .subflow_info(init)
        .expect("final statistics stay readable");
    assert_eq!(fin.data_sent, 5, "the five bytes of hello");
    assert_eq!(fin.data_received, 3, "the three bytes of bye");
    assert_eq!(
        c.open_subflow(sa(C2, 0), sa(S2, PORT), false),
        Err(SubflowApiError::NotConnected)
    );
    const NC: SubflowApiError = SubflowApiError::NotConnected;
    assert_eq!(NC.errno(), 107);
    for id in [init, 2, 99] {
        assert_eq!(c.set_subflow_option(id, SubflowOpt::Tos(1)), Err(NC));
        assert_eq!(c.close_subflow(id, CloseHow::Abortive), Err(NC));
        assert_eq!(
            c.wait_subflow_established(id, Duration::from_millis(5)),
            Err(NC)
        );
    }
    // the server's handle too
    let sid = n.server.subflows().unwrap()[0].id;
    assert_eq!(n.server.close_subflow(sid, CloseHow::Graceful), Err(NC));
    // and once the handle is dropped the stack forgets the connection
    let Net { client, .. } = n;
    let other = client.try_clone().unwrap();
    drop(client);
    assert!(other.subflows().is_ok(), "a clone keeps the connection");
}

#[test]
fn unknown_ids_and_bad_arguments() {
    let n = net(9);
    let c = &n.client;
    for id in [7u32, 1000, u32::MAX] {
        assert_eq!(c.subflow_tuple(id), Err(SubflowApiError::UnknownId));
        assert_eq!(c.subflow_info(id), Err(SubflowApiError::UnknownId));
        assert_eq!(
            c.subflow_option(id, SubflowOptName::NoDelay),
            Err(SubflowApiError::UnknownId)
        );
        assert_eq!(
            c.set_subflow_option(id, SubflowOpt::Tos(4)),
            Err(SubflowApiError::UnknownId)
        );
        assert_eq!(
            c.close_subflow(id, CloseHow::Graceful),
            Err(SubflowApiError::UnknownId)
        );
        assert_eq!(
            c.wait_subflow_established(id, Duration::from_millis(10)),
            Err(SubflowApiError::UnknownId)
        );
    }
    assert_eq!(SubflowApiError::UnknownId.errno(), 22);
    // families must match
    let v6: SocketAddr = "[2001:db8::1]:5201".parse().unwrap();
    let v6l: SocketAddr = "[2001:db8::2]:0".parse().unwrap();
    let e = c.open_subflow(sa(C2, 0), v6, false);
    assert_eq!(e, Err(SubflowApiError::InvalidArgument));
    assert_eq!(SubflowApiError::InvalidArgument.errno(), 22);
    assert_eq!(
        c.open_subflow(v6l, sa(S2, PORT), false),
        Err(SubflowApiError::InvalidArgument)
    );
    // a local address that is not ours
    assert_eq!(
        c.open_subflow(
            sa(IpAddr::V4(Ipv4Addr::new(198, 19, 39, 9)), 0),
            sa(S2, PORT),
            false
        ),
        Err(SubflowApiError::InvalidArgument)
    );
    // nothing above created a subflow
    assert_eq!(c.subflows().unwrap().len(), 1);
    assert_eq!(c.info().unwrap().subflows_total, 1);
}

#[test]
fn fallback_connection_is_not_mptcp() {
    let plain = ConnConfig {
        mptcp: false,
        ..manual()
    };
    let n = net_with(10, plain, manual());
    for s in [&n.client, &n.server] {
        assert!(s.info().unwrap().fallback);
        assert_eq!(s.subflows(), Err(SubflowApiError::NotMptcp));
        assert_eq!(s.subflow_tuple(0), Err(SubflowApiError::NotMptcp));
        assert_eq!(s.subflow_info(0), Err(SubflowApiError::NotMptcp));
        assert_eq!(
            s.subflow_option(0, SubflowOptName::MaxSeg),
            Err(SubflowApiError::NotMptcp)
        );
        assert_eq!(
            s.set_subflow_option(0, SubflowOpt::NoDelay(true)),
            Err(SubflowApiError::NotMptcp)
        );
        assert_eq!(
            s.close_subflow(0, CloseHow::Abortive),
            Err(SubflowApiError::NotMptcp)
        );
        assert_eq!(
            s.wait_subflow_established(0, Duration::from_millis(10)),
            Err(SubflowApiError::NotMptcp)
        );
    }
    assert_eq!(
        n.client.open_subflow(sa(C2, 0), sa(S2, PORT), false),
        Err(SubflowApiError::NotMptcp)
    );
    assert_eq!(SubflowApiError::NotMptcp.errno(), 95);
    // the plain TCP connection carries data normally
    std::thread::scope(|sc| {
        let rx = sc.spawn(|| recv_all(&n.server));
        let d = send_all(&n.client, 1 << 20, 99);
        let (k, got) = rx.join().unwrap();
        assert_eq!(k, 1 << 20);
        assert_eq!(d, got);
    });
}

#[test]
fn driver_counts_packets_both_ways() {
    let n = net(11);
    let _ = open_second(&n.client, false);
    (&n.client).write_all(&[1u8; 10_000]).unwrap();
    let mut b = vec![0u8; 10_000];
    (&n.server).read_exact(&mut b).unwrap();
    let (c, s) = (n.client_rt.stats(), n.server_rt.stats());
    assert!(c.tx_packets > 0 && c.rx_packets > 0 && s.tx_packets > 0 && s.rx_packets > 0);
    assert_eq!(c.rx_errors + s.rx_errors, 0);
}
