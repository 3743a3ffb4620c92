//! SYN flood resistance (issue 8, case 4): the half-open table, SYN cookies for TCP and
//! MPTCP v1, early eviction, half-open entries reaped by timers without `accept()`.

mod simutil;

use mptun::crypto::{token_and_idsn, KeyGen};
use mptun::io::impair::Impairment;
use mptun::io::sim::{Endpoint, SimNet};
use mptun::listen::SynCookies;
use mptun::mptcp::{emit, ConnConfig, OptBuf};
use mptun::stack::{ConnId, Stack, StackConfig, StackError};
use mptun::tcp::{flags, SegmentOut, TcpOptions};
use mptun::time::{Duration, Instant};
use mptun::wire::mptcp::{MpCapable, MptcpOption};
use mptun::wire::tcp::TcpPacket;
use mptun::wire::{ip, tcp_opt};
use simutil::*;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const CLIENT3: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 3, 2));
const CLIENT4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 4, 2));

fn link(rate_bps: u64) -> Impairment {
    Impairment {
        delay: Duration::from_millis(10),
        rate_bps,
        queue_limit: 1 << 20,
        ..Impairment::default()
    }
}

fn server_stack(seed: u64, tweak: impl FnOnce(&mut StackConfig)) -> Stack {
    let mut cfg = StackConfig {
        addrs: vec![SERVER1, SERVER2],
        ..StackConfig::default()
    };
    tweak(&mut cfg);
    let mut s = Stack::new(cfg, KeyGen::from_seed(seed));
    s.listen(PORT).expect("listen");
    s
}

/// A crafted segment from `src` to `dst` (valid IP and TCP checksums).
#[allow(clippy::too_many_arguments)]
fn segment(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    fl: u8,
    options: TcpOptions,
    mpc: Option<MpCapable>,
) -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let seg = SegmentOut {
        seq,
        ack,
        flags: fl,
        window: 65535,
        options,
        offset: 0,
        payload_len: 0,
        retransmission: false,
        gso_size: 0,
    };
    let mut o = OptBuf::default();
    if let Some(m) = mpc {
        o.push(MptcpOption::MpCapable(m));
    }
    let n = emit::emit_segment(&mut buf, src, dst, &seg, &mut o, 0, 64, |_| {}).expect("emit");
    buf.truncate(n);
    buf
}

fn mpc_syn() -> MpCapable {
    MpCapable {
        version: 1,
        flags: 0x01,
        sender_key: None,
        receiver_key: None,
        data_len: None,
        checksum: None,
    }
}

fn syn_opts() -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((1000, 0)),
        ..TcpOptions::default()
    }
}

/// What we read back from a segment the stack sent.
#[derive(Debug)]
struct Seen {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    opts: TcpOptions,
    mpc_key: Option<u64>,
}

fn parse(pkt: &[u8]) -> Seen {
    let info = ip::parse(pkt).expect("ip");
    let t = TcpPacket::new_checked(&pkt[info.header_len..info.total_len]).expect("tcp");
    assert!(t.verify_checksum(info.src, info.dst));
    let parsed = tcp_opt::parse_all(t.options());
    let mpc_key = parsed.mptcp[..parsed.mptcp_len]
        .iter()
        .find_map(|raw| match MptcpOption::parse(raw) {
            Ok(MptcpOption::MpCapable(m)) => m.sender_key,
            _ => None,
        });
    Seen {
        src: SocketAddr::new(info.src, t.src_port()),
        dst: SocketAddr::new(info.dst, t.dst_port()),
        seq: t.seq_number(),
        ack: t.ack_number(),
        flags: t.flags(),
        opts: parsed.tcp,
        mpc_key,
    }
}

fn drain(s: &mut Stack, now: Instant) -> Vec<Seen> {
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    while let Some(n) = s.poll_transmit(now, &mut buf) {
        out.push(parse(&buf[..n]));
    }
    out
}

// ------------------------------------------------------------------------------------------
// The flood on the simulated network.

/// The server stack with an attacker injecting spoofed MP_CAPABLE SYNs straight into it:
/// `per_tick` SYNs every `tick` until `left` is used up, each from a random address in
/// 198.18.0.0/15 (none owned by a simulated host: the SYN/ACKs go nowhere) and port.
struct Flooded {
    stack: Stack,
    next: Instant,
    left: u32,
    per_tick: u32,
    tick: Duration,
    rng: u64,
    sent: u32,
    max_half_open_seen: usize,
}

impl Flooded {
    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn inject(&mut self, now: Instant) {
        for _ in 0..self.per_tick.min(self.left) {
            let r = self.rand();
            let b = (r >> 8) as u8 | 0x80; // 198.18.128.0/17 and 198.19.128.0/17: no host
            let src = SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(198, 18 + (r & 1) as u8, b, (r >> 16) as u8)),
                1024 + (r >> 24) as u16 % 60000,
            );
            let syn = segment(
                src,
                SocketAddr::new(SERVER1, PORT),
                (r >> 32) as u32,
                0,
                flags::SYN,
                syn_opts(),
                Some(mpc_syn()),
            );
            self.stack.handle_packet(now, &syn);
            self.left -= 1;
            self.sent += 1;
        }
        self.max_half_open_seen = self.max_half_open_seen.max(self.stack.half_open_count());
    }
}

impl Endpoint for Flooded {
    fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.stack.handle_packet(now, packet)
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.stack.poll_transmit(now, buf)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        let flood = (self.left > 0).then_some(self.next);
        [self.stack.poll_timeout(), flood]
            .into_iter()
            .flatten()
            .min()
    }
    fn handle_timeout(&mut self, now: Instant) {
        while self.left > 0 && self.next <= now {
            self.inject(now);
            self.next += self.tick;
        }
        if self.stack.poll_timeout().is_some_and(|t| t <= now) {
            self.stack.handle_timeout(now);
        }
    }
}

/// One side of an application transfer on a stack.
struct App {
    id: Option<ConnId>,
    out: Vec<u8>,
    sent: usize,
    got: Vec<u8>,
    eof: bool,
    shut: bool,
}

impl App {
    fn new(id: Option<ConnId>, out: Vec<u8>) -> App {
        App {
            id,
            out,
            sent: 0,
            got: Vec::new(),
            eof: false,
            shut: false,
        }
    }

    fn pump(&mut self, s: &mut Stack, now: Instant) {
        let Some(id) = self.id else {
            return;
        };
        if !s.connection(id).is_some_and(|c| c.is_established()) {
            return;
        }
        while self.sent < self.out.len() {
            match s.send(id, &self.out[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(StackError::WouldBlock) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        if self.sent == self.out.len() && !self.shut {
            s.shutdown(now, id).expect("shutdown");
            self.shut = true;
        }
        let mut buf = [0u8; 16384];
        loop {
            match s.recv(id, &mut buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(StackError::WouldBlock) => break,
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
}

#[test]
fn legitimate_client_connects_during_a_100k_syn_flood_and_the_live_transfer_survives() {
    let _ = env_logger::builder().is_test(true).try_init();
    let mut net = SimNet::new(81);
    let h_busy = net.add_host(&[CLIENT1]);
    let h_legit = net.add_host(&[CLIENT3, CLIENT4]);
    let h_server = net.add_host(&[SERVER1, SERVER2]);
    assert_eq!((h_busy, h_legit, h_server), (0, 1, 2));
    net.add_link(CLIENT1, SERVER1, link(20_000_000), link(20_000_000));
    net.add_link(CLIENT3, SERVER1, link(20_000_000), link(20_000_000));
    net.add_link(CLIENT4, SERVER1, link(20_000_000), link(20_000_000));
    let mut busy = Stack::new(
        StackConfig {
            addrs: vec![CLIENT1],
            ..StackConfig::default()
        },
        KeyGen::from_seed(1),
    );
    let manual = ConnConfig {
        path_manager: "manual".into(),
        ..ConnConfig::default()
    };
    let mut legit = Stack::new(
        StackConfig {
            addrs: vec![CLIENT3, CLIENT4],
            conn: manual,
            ..StackConfig::default()
        },
        KeyGen::from_seed(2),
    );
    let mut server = Flooded {
        stack: server_stack(3, |_| {}),
        next: Instant::ZERO,
        left: 0,
        per_tick: 50,
        tick: Duration::from_millis(1),
        rng: 0x1234_5678_9abc_def1,
        sent: 0,
        max_half_open_seen: 0,
    };
    let max_half_open = server.stack.config().max_half_open;

    // the live transfer: 6 MB each way at 20 Mbit/s, about 2.5 s
    let busy_id = busy
        .connect(
            Instant::ZERO,
            SocketAddr::new(SERVER1, PORT),
            Some(CLIENT1),
            None,
        )
        .expect("connect");
    let size = 6_000_000;
    let mut b_app = App::new(Some(busy_id), data(size, 1));
    let mut s_app = App::new(None, data(size, 2));
    let mut l_app: Option<App> = None;
    let mut ls_app: Option<App> = None;
    let mut legit_id = None;
    let mut legit_connected_at = None;
    let mut legit_accepted_at = None;
    let mut join_started = None;
    let mut join_done_at = None;
    let flood_start = Instant::from_millis(300);
    let mut flood_end = None;
    let legit_start = Instant::from_millis(800);

    let deadline = Instant::from_millis(20_000);
    loop {
        let now = net.now();
        if s_app.id.is_none() {
            s_app.id = server.stack.accept(PORT);
            if let Some(id) = s_app.id {
                // the busy connection is accepted before the flood begins
                assert!(now < flood_start, "busy connection accepted at {now:?}");
                let _ = id;
            }
        }
        if now >= flood_start && server.sent == 0 && server.left == 0 {
            server.left = 100_000;
            server.next = now;
        }
        if now >= legit_start && legit_id.is_none() {
            let id = legit
                .connect(now, SocketAddr::new(SERVER1, PORT), Some(CLIENT3), None)
                .expect("legit connect");
            legit_id = Some(id);
            legit_connected_at = Some(now);
            l_app = Some(App::new(Some(id), data(200_000, 3)));
        }
        if let (Some(_), None) = (legit_id, legit_accepted_at) {
            if let Some(sid) = server.stack.accept(PORT) {
                legit_accepted_at = Some(now);
                ls_app = Some(App::new(Some(sid), data(300_000, 4)));
            }
        }
        // a join of the legit connection during the flood, to the flooded address
        if let (Some(id), None, Some(_)) = (legit_id, join_started, legit_accepted_at) {
            if legit.connection(id).is_some_and(|c| c.is_established()) {
                let sid = legit
                    .open_subflow(
                        now,
                        id,
                        SocketAddr::new(CLIENT4, 0),
                        SocketAddr::new(SERVER1, PORT),
                        false,
                    )
                    .expect("join");
                join_started = Some((now, sid));
            }
        }
        if let (Some(id), Some((_, sid)), None) = (legit_id, join_started, join_done_at) {
            if legit
                .connection(id)
                .is_some_and(|c| c.subflows().iter().any(|s| s.id == sid && s.established))
            {
                join_done_at = Some(now);
            }
        }
        if server.sent == 100_000 && flood_end.is_none() {
            flood_end = Some(now);
            // the live transfer is still running when the flood ends
            assert!(
                !b_app.eof && !s_app.eof,
                "the transfer finished before the flood"
            );
        }
        b_app.pump(&mut busy, now);
        s_app.pump(&mut server.stack, now);
        if let Some(a) = l_app.as_mut() {
            a.pump(&mut legit, now);
        }
        if let Some(a) = ls_app.as_mut() {
            a.pump(&mut server.stack, now);
        }
        let legit_done =
            l_app.as_ref().is_some_and(|a| a.eof) && ls_app.as_ref().is_some_and(|a| a.eof);
        if b_app.eof && s_app.eof && legit_done && server.left == 0 && server.sent > 0 {
            break;
        }
        assert!(now < deadline, "stuck at {now:?}: busy eof {} server eof {} legit accepted {legit_accepted_at:?} flood sent {}", b_app.eof, s_app.eof, server.sent);
        if !net.step(&mut [&mut busy, &mut legit, &mut server]) {
            panic!("simulation ran dry at {now:?}");
        }
    }
    let mib = server.stack.mib().clone();
    eprintln!(
        "flood: sent={} max_half_open_seen={} legit connect->accept {:?} join {:?} mib: SynCookiesSent={} SynCookiesRecv={} HalfOpenEvicted={} SynAckRetrans={} ListenOverflows={} OutDrops={}",
        server.sent,
        server.max_half_open_seen,
        legit_accepted_at.zip(legit_connected_at).map(|(a, c)| a - c),
        join_done_at.zip(join_started).map(|(d, (s, _))| d - s),
        mib.SynCookiesSent,
        mib.SynCookiesRecv,
        mib.HalfOpenEvicted,
        mib.SynAckRetrans,
        mib.ListenOverflows,
        mib.OutDrops,
    );
    assert_eq!(server.sent, 100_000);
    assert!(flood_end.is_some());
    // the legit client got in within 3 s during the flood (which lasted 2 s from 0.3 s)
    let (conn_at, acc_at) = (legit_connected_at.unwrap(), legit_accepted_at.unwrap());
    assert!(
        acc_at - conn_at <= Duration::from_secs(3),
        "accepted after {:?}",
        acc_at - conn_at
    );
    assert!(
        acc_at < flood_start + Duration::from_millis(2000),
        "not during the flood"
    );
    let (js, _) = join_started.unwrap();
    assert!(
        join_done_at.unwrap() - js <= Duration::from_secs(3),
        "join too slow"
    );
    // the flood was absorbed by the bounded table and cookies, not by connections
    assert!(server.max_half_open_seen <= max_half_open);
    assert!(mib.SynCookiesSent > 10_000, "{mib:?}");
    assert_eq!(mib.SynCookiesFailed, 0);
    assert!(mib.MPCapableSYNRX >= 100_000 + 2, "{mib:?}");
    // transfers intact, both MPTCP
    assert!(b_app.got == s_app.out, "server->busy corrupted");
    assert!(s_app.got == b_app.out, "busy->server corrupted");
    let (l, ls) = (l_app.unwrap(), ls_app.unwrap());
    assert!(
        l.got == ls.out && ls.got == l.out,
        "legit transfer corrupted"
    );
    assert!(!server.stack.info(s_app.id.unwrap()).unwrap().fallback);
    assert!(!server.stack.info(ls.id.unwrap()).unwrap().fallback);
    assert_eq!(server.stack.info(ls.id.unwrap()).unwrap().subflows_total, 2);
    // spoofed SYNs never became connections
    assert!(server.stack.connections().count() <= 2);

    // every half-open entry left by the flood is reaped by the timers, no accept()
    let end = net.now() + Duration::from_secs(70);
    net.run_until(&mut [&mut busy, &mut legit, &mut server], end, |_| false);
    assert_eq!(server.stack.half_open_count(), 0);
    let mib = server.stack.mib();
    assert!(mib.HalfOpenTimedOut > 0, "{mib:?}");
    assert_eq!(
        mib.MPCapableSYNRX,
        mib.SynCookiesSent
            + mib.HalfOpenEvicted
            + mib.HalfOpenTimedOut
            + (mib.MPCapableACKRX - mib.SynCookiesRecv),
        "every SYN ended as a cookie, an eviction, a timeout or a connection: {mib:?}"
    );
}

// ------------------------------------------------------------------------------------------
// The cookie path on its own.

#[test]
fn cookie_handshake_gives_a_full_mptcp_connection_with_joins() {
    for (k, (mptcp, checksum)) in [(true, false), (true, true), (false, false)]
        .into_iter()
        .enumerate()
    {
        let ccfg = ConnConfig {
            mptcp,
            checksum,
            path_manager: "manual".into(),
            ..ConnConfig::default()
        };
        let mut p = Pair::two_paths(
            40 + k as u64,
            link(100_000_000),
            link(100_000_000),
            ccfg,
            ConnConfig::default(),
        );
        p.server = server_stack(77 + k as u64, |c| c.syn_cookies = SynCookies::Always);
        let c = p.connect();
        let mut t = Transfer::new(c, data(1_000_000, 5), data(1_500_000, 6));
        assert!(
            p.run_until(Duration::from_secs(5), |p| {
                t.pump(p);
                t.server.is_some()
            }),
            "no connection accepted"
        );
        assert_eq!(p.server.half_open_count(), 0, "cookies keep no state");
        let sm = p.server.mib().clone();
        assert_eq!(sm.SynCookiesSent, 1);
        assert_eq!(sm.SynCookiesRecv, 1);
        assert_eq!(sm.SynCookiesFailed, 0);
        let s = t.server.unwrap();
        if mptcp {
            let (ci, si) = (p.client.info(c).unwrap(), p.server.info(s).unwrap());
            assert!(!ci.fallback && !si.fallback);
            assert_eq!(ci.remote_token, si.local_token);
            assert_eq!(si.remote_token, ci.local_token);
            assert_eq!(ci.checksum, checksum);
            assert_eq!(si.checksum, checksum);
            assert_eq!(sm.MPCapableACKRX, 1);
            // a join after the cookie handshake
            let id = p.open_second_path(c, false);
            assert!(p.wait_subflow(c, id), "join after cookie handshake failed");
            assert_eq!(p.server.mib().MPJoinAckRx, 1);
        } else {
            assert!(p.server.info(s).unwrap().fallback);
        }
        assert!(
            t.run(&mut p, Duration::from_secs(30)),
            "transfer {k} did not finish"
        );
        t.assert_intact();
        if mptcp {
            let si = p.server.info(s).unwrap();
            assert_eq!(si.subflows_total, 2);
        }
        // the cookie connection negotiated the client's options: window scaling works
        // (1.5 MB in well under the 65535-byte unscaled window's time)
    }
}

#[test]
fn forged_and_stale_cookies_are_refused_with_a_counted_rst() {
    let mut s = server_stack(5, |c| c.syn_cookies = SynCookies::Always);
    let srv = SocketAddr::new(SERVER1, PORT);
    let cli = SocketAddr::new(CLIENT3, 40000);
    let t0 = Instant::from_millis(10_000);
    let irs = 7_000;
    s.handle_packet(
        t0,
        &segment(cli, srv, irs, 0, flags::SYN, syn_opts(), Some(mpc_syn())),
    );
    let out = drain(&mut s, t0);
    assert_eq!(out.len(), 1);
    let sa = &out[0];
    assert_eq!(sa.flags, flags::SYN | flags::ACK);
    assert_eq!((sa.src, sa.dst, sa.ack), (srv, cli, irs + 1));
    assert_eq!(sa.opts.mss, Some(1460));
    assert_eq!(sa.opts.window_scale, Some(7));
    assert!(sa.opts.sack_permitted);
    let cookie = sa.seq;
    let key = sa.mpc_key.expect("MP_CAPABLE key in the cookie SYN/ACK");
    assert_eq!(s.half_open_count(), 0);
    assert_eq!(s.connections().count(), 0);
    let ck = 0x1111_2222_3333_4444u64;
    let ack_mpc = |rk: u64| MpCapable {
        version: 1,
        flags: 0x01,
        sender_key: Some(ck),
        receiver_key: Some(rk),
        data_len: None,
        checksum: None,
    };
    let ts = TcpOptions {
        timestamps: Some((1001, sa.opts.timestamps.map_or(0, |t| t.0))),
        ..TcpOptions::default()
    };
    let mut expect_failed = 0;
    let mut refuse = |s: &mut Stack, now: Instant, pkt: Vec<u8>, what: &str| {
        s.handle_packet(now, &pkt);
        expect_failed += 1;
        assert_eq!(s.mib().SynCookiesFailed, expect_failed, "{what}");
        let out = drain(s, now);
        assert!(
            out.len() == 1 && out[0].flags & flags::RST != 0,
            "{what}: expected one RST, got {out:?}"
        );
        assert_eq!(s.connections().count(), 0, "{what}");
        assert_eq!(s.accept(PORT), None, "{what}");
    };
    let now = t0 + Duration::from_millis(20);
    // forged: wrong cookie (ACK number), wrong ISN (sequence number), other port
    refuse(
        &mut s,
        now,
        segment(
            cli,
            srv,
            irs + 1,
            cookie.wrapping_add(2),
            flags::ACK,
            ts,
            Some(ack_mpc(key)),
        ),
        "wrong cookie",
    );
    refuse(
        &mut s,
        now,
        segment(
            cli,
            srv,
            irs + 2,
            cookie.wrapping_add(1),
            flags::ACK,
            ts,
            Some(ack_mpc(key)),
        ),
        "wrong ISN",
    );
    let other = SocketAddr::new(CLIENT3, 40001);
    refuse(
        &mut s,
        now,
        segment(
            other,
            srv,
            irs + 1,
            cookie.wrapping_add(1),
            flags::ACK,
            ts,
            Some(ack_mpc(key)),
        ),
        "other flow",
    );
    // valid cookie, but the MPTCP key echoed is not the one we sent
    refuse(
        &mut s,
        now,
        segment(
            cli,
            srv,
            irs + 1,
            cookie.wrapping_add(1),
            flags::ACK,
            ts,
            Some(ack_mpc(key ^ 1)),
        ),
        "wrong key",
    );
    // stale: two counter periods (128 s) later; another cookie keeps the check active
    let late = t0 + Duration::from_secs(140);
    s.handle_packet(
        late,
        &segment(
            SocketAddr::new(CLIENT4, 9),
            srv,
            1,
            0,
            flags::SYN,
            syn_opts(),
            None,
        ),
    );
    assert_eq!(drain(&mut s, late).len(), 1);
    refuse(
        &mut s,
        late,
        segment(
            cli,
            srv,
            irs + 1,
            cookie.wrapping_add(1),
            flags::ACK,
            ts,
            Some(ack_mpc(key)),
        ),
        "stale",
    );
    assert_eq!(s.mib().SynCookiesRecv, 0);

    // the genuine third ACK within its lifetime still works after all that
    let mut s = server_stack(5, |c| c.syn_cookies = SynCookies::Always);
    s.handle_packet(
        t0,
        &segment(cli, srv, irs, 0, flags::SYN, syn_opts(), Some(mpc_syn())),
    );
    let sa = drain(&mut s, t0).remove(0);
    assert_eq!(
        (sa.seq, sa.mpc_key),
        (cookie, Some(key)),
        "same seed, same cookie"
    );
    let ok = t0 + Duration::from_secs(70);
    s.handle_packet(
        ok,
        &segment(
            cli,
            srv,
            irs + 1,
            cookie.wrapping_add(1),
            flags::ACK,
            ts,
            Some(ack_mpc(key)),
        ),
    );
    assert_eq!(s.mib().SynCookiesRecv, 1);
    assert_eq!(s.mib().SynCookiesFailed, 0);
    let id = s.accept(PORT).expect("accepted");
    let info = s.info(id).unwrap();
    assert!(!info.fallback);
    assert_eq!(info.local_token, token_and_idsn(key).0);
    assert_eq!(info.remote_token, token_and_idsn(ck).0);
}

#[test]
fn half_open_entries_are_bounded_evicted_and_reaped_without_accept() {
    // no cookies: the oldest entry is evicted for every new SYN beyond the bound
    let mut s = server_stack(6, |c| {
        c.max_half_open = 4;
        c.syn_cookies = SynCookies::Never;
    });
    let srv = SocketAddr::new(SERVER1, PORT);
    let t0 = Instant::from_millis(1_000);
    for i in 0..10u16 {
        let src = SocketAddr::new(CLIENT3, 1000 + i);
        s.handle_packet(
            t0,
            &segment(
                src,
                srv,
                u32::from(i) * 1000,
                0,
                flags::SYN,
                syn_opts(),
                Some(mpc_syn()),
            ),
        );
    }
    assert_eq!(s.half_open_count(), 4);
    assert_eq!(s.mib().HalfOpenEvicted, 6);
    assert_eq!(
        s.connections().count(),
        0,
        "no connection before the third ACK"
    );
    let first = drain(&mut s, t0);
    assert_eq!(first.len(), 10, "every SYN was answered");
    // the four newest complete; the evicted ones are refused with a RST
    let kept: Vec<&Seen> = first.iter().filter(|x| x.dst.port() >= 1006).collect();
    let evicted = first.iter().find(|x| x.dst.port() == 1000).unwrap();
    let t1 = t0 + Duration::from_millis(20);
    s.handle_packet(
        t1,
        &segment(
            evicted.dst,
            srv,
            evicted.ack,
            evicted.seq.wrapping_add(1),
            flags::ACK,
            TcpOptions::default(),
            None,
        ),
    );
    assert_eq!(
        drain(&mut s, t1)
            .iter()
            .filter(|x| x.flags & flags::RST != 0)
            .count(),
        1
    );
    // a wrong ACK number for a live entry: RST, entry kept
    let k0 = kept[0];
    s.handle_packet(
        t1,
        &segment(
            k0.dst,
            srv,
            k0.ack,
            k0.seq.wrapping_add(9),
            flags::ACK,
            TcpOptions::default(),
            None,
        ),
    );
    assert_eq!(s.mib().HalfOpenBadAck, 1);
    assert_eq!(
        drain(&mut s, t1)
            .iter()
            .filter(|x| x.flags & flags::RST != 0)
            .count(),
        1
    );
    assert_eq!(s.half_open_count(), 4);
    // its right ACK (with the MPTCP keys) completes it into the accept queue
    let mpc = MpCapable {
        version: 1,
        flags: 0x01,
        sender_key: Some(99),
        receiver_key: k0.mpc_key,
        data_len: None,
        checksum: None,
    };
    s.handle_packet(
        t1,
        &segment(
            k0.dst,
            srv,
            k0.ack,
            k0.seq.wrapping_add(1),
            flags::ACK,
            TcpOptions {
                timestamps: Some((1002, 0)),
                ..TcpOptions::default()
            },
            Some(mpc),
        ),
    );
    assert_eq!(s.half_open_count(), 3);
    assert_eq!(s.mib().MPCapableACKRX, 1);
    let id = s.accept(PORT).expect("completed connection");
    assert!(s.connection(id).unwrap().is_established());

    // the three left are retransmitted 5 times (1+2+4+8+16 s) and forgotten after 63 s,
    // with no accept() call
    let mut now = t1;
    let mut synacks = 0;
    while let Some(t) = s.poll_timeout().filter(|_| s.half_open_count() > 0) {
        assert!(t >= now);
        now = t;
        s.handle_timeout(now);
        synacks += drain(&mut s, now)
            .iter()
            .filter(|x| x.flags == flags::SYN | flags::ACK)
            .count();
        assert!(now < t0 + Duration::from_secs(200), "never reaped");
    }
    assert_eq!(s.half_open_count(), 0);
    assert_eq!(synacks, 3 * 5);
    assert_eq!(s.mib().SynAckRetrans, 15);
    assert_eq!(s.mib().HalfOpenTimedOut, 3);
    let lifetime = now - t0;
    assert!(
        lifetime >= Duration::from_secs(63) && lifetime < Duration::from_secs(64),
        "{lifetime:?}"
    );

    // WhenFull: young entries are kept and the new SYN gets a cookie; once they were
    // retransmitted (unanswered for an RTO) a new SYN evicts the oldest instead
    let mut s = server_stack(7, |c| c.max_half_open = 2);
    for i in 0..3u16 {
        let src = SocketAddr::new(CLIENT3, 2000 + i);
        s.handle_packet(t0, &segment(src, srv, 5, 0, flags::SYN, syn_opts(), None));
    }
    assert_eq!((s.half_open_count(), s.mib().SynCookiesSent), (2, 1));
    let t2 = t0 + Duration::from_millis(1_001);
    s.handle_timeout(t2);
    assert_eq!(s.mib().SynAckRetrans, 2);
    s.handle_packet(
        t2,
        &segment(
            SocketAddr::new(CLIENT3, 2010),
            srv,
            5,
            0,
            flags::SYN,
            syn_opts(),
            None,
        ),
    );
    assert_eq!(
        (
            s.half_open_count(),
            s.mib().SynCookiesSent,
            s.mib().HalfOpenEvicted
        ),
        (2, 1, 1)
    );
    // an in-window RST ends a half-open entry
    let out = drain(&mut s, t2);
    let last = out.iter().find(|x| x.dst.port() == 2010).unwrap();
    s.handle_packet(
        t2,
        &segment(last.dst, srv, 6, 0, flags::RST, TcpOptions::default(), None),
    );
    assert_eq!((s.half_open_count(), s.mib().HalfOpenReset), (1, 1));
}

#[test]
fn a_connection_reset_in_the_accept_queue_is_reaped_without_accept() {
    let mut p = Pair::new(9, link(100_000_000));
    let c = p.connect();
    assert!(p.run_until(Duration::from_secs(2), |p| p
        .client
        .connection(c)
        .is_some_and(|x| x.is_established())));
    assert!(
        p.run_until(Duration::from_secs(1), |p| p.server.connections().count()
            == 1)
    );
    p.client.abort(c).unwrap();
    let gone = p.run_until(Duration::from_secs(5), |p| {
        p.server.connections().count() == 0
    });
    assert!(gone, "reset connection stayed in the accept queue");
    assert_eq!(p.server.accept(PORT), None);
}
