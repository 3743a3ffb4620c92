//! Issue 8's done criterion against the real kernel: a legitimate Linux MPTCP client connects
//! to a busy mptun listener within 3 s during a flood of 100k spoofed MP_CAPABLE SYNs.
//!
//! One namespace with one TUN device (tun0: the kernel 198.18.1.1/24, mptun 198.18.1.2).
//! mptun runs in-process (a `Runtime` over tun0, opened from a thread that entered the
//! namespace with `setns`), so the test reads its counters and half-open table directly.
//! Every Linux socket (the MPTCP clients, protocol 262, and the flood's raw socket) is
//! created in that namespace too. Nothing is routed outside it:
//!
//! - the flood is sent by a raw socket (`IPPROTO_RAW`, so the test writes the IP header)
//!   towards 198.18.1.2, which the kernel routes into tun0, i.e. to mptun; the spoofed
//!   sources are random addresses of 198.18.128.0/17 and 198.19.128.0/17 (no host has them)
//!   with random ports and ISNs;
//! - mptun's SYN/ACKs to those addresses come back out of tun0 into the kernel, which does
//!   not forward (`ip_forward=0`) and has a blackhole route for 198.18.0.0/15 besides: they
//!   are dropped silently, never answered with a RST.
//!
//! The busy listener: a Linux MPTCP client (198.18.1.1:40001) and mptun exchange a paced
//! stream both ways from before the flood until after it (SHA-256 compared at both ends).
//! The legitimate client (198.18.1.1:40002) connects once the flood has filled mptun's
//! half-open table and mptun is answering with cookies or evicting; the flood keeps going
//! until both 100k SYNs are sent and the legitimate exchange is over.

mod common;
use common::in_ns;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mptun::api::{MptcpListener, MptcpStream, StackHandle};
use mptun::crypto::KeyGen;
use mptun::io::driver::{Port, Runtime};
use mptun::io::tun::Tun;
use mptun::mptcp::{emit, OptBuf};
use mptun::stack::{Stack, StackConfig};
use mptun::tcp::{flags, SegmentOut, TcpOptions};
use mptun::testbed::peer::Pattern;
use mptun::testbed::{delta, require_privileges, NetNs};
use mptun::wire::mptcp::{MpCapable, MptcpOption};
use sha2::{Digest, Sha256};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const KERNEL: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const MPTUN: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const PORT: u16 = 5201;
const LIVE_PORT: u16 = 40001;
const LEGIT_PORT: u16 = 40002;
const IPPROTO_MPTCP: i32 = 262;
const SOL_MPTCP: i32 = 284;
const MPTCP_INFO: i32 = 1;

const FLOOD: u64 = 100_000;
/// Flood pacing: `BURST` SYNs every `TICK` (50k SYNs/s, 100k in about 2 s), never more than
/// `MAX_AHEAD` ahead of what mptun has read: on a loaded machine the kernel would otherwise
/// drop SYNs at tun0's queue (10000 packets) and fewer than 100k would reach mptun.
const BURST: u64 = 200;
const MAX_AHEAD: u64 = 5000;
const TICK: Duration = Duration::from_millis(4);
/// The bound, from connect() to the echoed bytes.
const LEGIT_BOUND: Duration = Duration::from_secs(3);
/// Live transfer pacing, each way: `CHUNK` bytes every `PACE` (about 50 Mbit/s).
const CHUNK: usize = 64 * 1024;
const PACE: Duration = Duration::from_millis(10);
/// The live transfer sends at least this much each way, and goes on until the flood ends.
const LIVE_MIN: u64 = 8 << 20;
/// Any single blocking step of the test gives up after this long: a hang fails.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A Linux MPTCP socket bound to 198.18.1.1:`port`, created in `ns`.
fn linux_mptcp_socket(ns: &NetNs, port: u16) -> Socket {
    in_ns(ns, || {
        let s = Socket::new(
            Domain::IPV4,
            Type::STREAM,
            Some(Protocol::from(IPPROTO_MPTCP)),
        )
        .expect("socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP)");
        s.set_reuse_address(true).expect("SO_REUSEADDR");
        s.bind(&SocketAddr::new(IpAddr::V4(KERNEL), port).into())
            .expect("bind the Linux client");
        s
    })
}

/// Whether Linux runs `s` as MPTCP: getsockopt(SOL_MPTCP, MPTCP_INFO) succeeds only on an
/// MPTCP connection that did not fall back (a fallen-back one passes it to its TCP subflow,
/// which refuses the level).
fn linux_socket_is_mptcp(s: &TcpStream) -> Result<(), io::Error> {
    let mut buf = [0u8; 256];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` is valid for `len` bytes and `len` is a valid socklen_t, both for the call.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            SOL_MPTCP,
            MPTCP_INFO,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends the pattern `seed` in paced chunks until `stop` is set and at least `LIVE_MIN`
/// bytes went, then shuts the sending side. Returns (bytes, SHA-256 hex).
fn paced_send(w: &mut impl Write, seed: u64, stop: &AtomicBool) -> io::Result<(u64, String)> {
    let mut pattern = Pattern::new(seed);
    let mut chunk = vec![0u8; CHUNK];
    let mut sha = Sha256::new();
    let mut sent = 0u64;
    let mut next = Instant::now();
    while sent < LIVE_MIN || !stop.load(Ordering::Relaxed) {
        pattern.fill(&mut chunk);
        w.write_all(&chunk)?;
        sha.update(&chunk);
        sent += chunk.len() as u64;
        next += PACE;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    w.flush()?;
    Ok((sent, hex(&sha.finalize())))
}

/// Reads to EOF, counting into `progress`. Returns (bytes, SHA-256 hex).
fn read_all(r: &mut impl Read, progress: &AtomicU64) -> io::Result<(u64, String)> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut sha = Sha256::new();
    let mut n_total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok((n_total, hex(&sha.finalize()))),
            Ok(n) => {
                sha.update(&buf[..n]);
                n_total += n as u64;
                progress.store(n_total, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A spoofed MP_CAPABLE v1 SYN (Linux's option set) from `src` to mptun's listener.
fn spoofed_syn(buf: &mut [u8], src: SocketAddr, isn: u32) -> usize {
    let seg = SegmentOut {
        seq: isn,
        ack: 0,
        flags: flags::SYN,
        window: 64240,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((isn ^ 0x5a5a_5a5a, 0)),
            ..TcpOptions::default()
        },
        offset: 0,
        payload_len: 0,
        retransmission: false,
        gso_size: 0,
    };
    let mut o = OptBuf::default();
    o.push(MptcpOption::MpCapable(MpCapable {
        version: 1,
        flags: 0x01,
        sender_key: None,
        receiver_key: None,
        data_len: None,
        checksum: None,
    }));
    let dst = SocketAddr::new(IpAddr::V4(MPTUN), PORT);
    emit::emit_segment(buf, src, dst, &seg, &mut o, 0, 64, |_| {}).expect("emit a SYN")
}

/// The flood: spoofed SYNs through a raw socket in the namespace, paced, until at least
/// `FLOOD` went and `legit_done` is set (so the legitimate exchange happens during it).
struct Flood {
    sent: AtomicU64,
    legit_done: AtomicBool,
    finished: AtomicBool,
}

fn flood(raw: Socket, state: &Flood, handle: &StackHandle) {
    let base = handle.with_stack(|s| s.mib().MPCapableSYNRX);
    let dst: SockAddr = SocketAddr::new(IpAddr::V4(MPTUN), 0).into();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    let mut rand = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut buf = [0u8; 128];
    let deadline = Instant::now() + 4 * IO_TIMEOUT;
    let mut next = Instant::now();
    loop {
        let sent = state.sent.load(Ordering::Relaxed);
        if sent >= FLOOD && state.legit_done.load(Ordering::Relaxed) {
            break;
        }
        assert!(Instant::now() < deadline, "the flood ran too long");
        while sent > handle.with_stack(|s| s.mib().MPCapableSYNRX) - base + MAX_AHEAD {
            assert!(Instant::now() < deadline, "mptun stopped reading SYNs");
            std::thread::sleep(Duration::from_millis(1));
            next = Instant::now();
        }
        for _ in 0..BURST {
            let r = rand();
            // 198.18.128.0/17 and 198.19.128.0/17: no host of the test has these
            let src = SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(
                    198,
                    18 + (r & 1) as u8,
                    (r >> 8) as u8 | 0x80,
                    (r >> 16) as u8,
                )),
                1024 + ((r >> 24) % 60000) as u16,
            );
            let n = spoofed_syn(&mut buf, src, (r >> 32) as u32);
            raw.send_to(&buf[..n], &dst).expect("raw send");
            state.sent.fetch_add(1, Ordering::Relaxed);
        }
        next += TICK;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    state.finished.store(true, Ordering::Relaxed);
}

/// mptun's side: accepts the live connection and the legitimate one (told apart by the
/// client's port), sends a paced stream on the first and echoes the second.
struct Server {
    live_received: AtomicU64,
    stop_live: AtomicBool,
}

type LiveResult = io::Result<((u64, String), (u64, String), bool)>;

fn serve_live(s: MptcpStream, h: &StackHandle, st: &Server) -> LiveResult {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let id = s.id();
    let mptcp = h.with_stack(|k| k.connection(id).is_some_and(|c| !c.is_fallback()));
    let mut w = s.try_clone()?;
    std::thread::scope(|sc| {
        let writer = sc.spawn(move || {
            let r = paced_send(&mut w, 2, &st.stop_live);
            w.shutdown(Shutdown::Write)?;
            r
        });
        let got = read_all(&mut &s, &st.live_received);
        let sent = writer.join().expect("mptun's live writer");
        Ok((sent?, got?, mptcp))
    })
}

fn serve_echo(s: MptcpStream, h: &StackHandle) -> io::Result<bool> {
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let id = s.id();
    let mptcp = h.with_stack(|k| k.connection(id).is_some_and(|c| !c.is_fallback()));
    let mut buf = [0u8; 4096];
    loop {
        let n = (&s).read(&mut buf)?;
        if n == 0 {
            break;
        }
        (&s).write_all(&buf[..n])?;
    }
    s.shutdown(Shutdown::Write)?;
    Ok(mptcp)
}

#[test]
fn linux_client_connects_within_3s_during_100k_syn_flood_on_busy_listener() {
    let test = "linux_client_connects_within_3s_during_100k_syn_flood_on_busy_listener";
    if !require_privileges(test) {
        return;
    }
    let started = Instant::now();
    let ns = NetNs::new("synflood").expect("namespace");
    ns.add_tun("tun0", &format!("{KERNEL}/24")).expect("tun0");
    // room for bursts of SYNs next to the live transfer in the device's queue
    ns.run(["ip", "link", "set", "tun0", "txqueuelen", "10000"])
        .expect("txqueuelen");
    // SYN/ACKs to the spoofed addresses end here: no forwarding, and a blackhole besides
    ns.sysctl("net.ipv4.ip_forward", "0").expect("ip_forward");
    ns.run(["ip", "route", "add", "blackhole", "198.18.0.0/15"])
        .expect("blackhole route");

    // mptun, in-process, over tun0
    let tun = in_ns(&ns, || Tun::open("tun0")).expect("open tun0");
    let cfg = StackConfig {
        addrs: vec![IpAddr::V4(MPTUN)],
        ..StackConfig::default()
    };
    let max_half_open = cfg.max_half_open;
    let rt = Runtime::start(
        Stack::new(cfg, KeyGen::from_entropy()),
        vec![Port {
            device: Box::new(tun),
            addrs: vec![IpAddr::V4(MPTUN)],
            egress: None,
            ingress: None,
        }],
        KeyGen::from_entropy().key(),
    )
    .expect("runtime");
    let handle = rt.handle().clone();
    let listener = MptcpListener::bind(&handle, PORT).expect("listen");
    let raw = in_ns(&ns, || {
        Socket::new(
            Domain::IPV4,
            Type::from(libc::SOCK_RAW),
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
    })
    .expect("raw socket (IPPROTO_RAW)");

    let server = Server {
        live_received: AtomicU64::new(0),
        stop_live: AtomicBool::new(false),
    };
    let fl = Flood {
        sent: AtomicU64::new(0),
        legit_done: AtomicBool::new(false),
        finished: AtomicBool::new(false),
    };
    let linux_live_received = Arc::new(AtomicU64::new(0));
    let addr = SocketAddr::new(IpAddr::V4(MPTUN), PORT);
    let mib0 = handle.with_stack(|s| s.mib().clone());
    let tx_dropped0 = ns.dev_stat("tun0", "tx_dropped").expect("tx_dropped");
    let tx_packets0 = ns.dev_stat("tun0", "tx_packets").expect("tx_packets");
    let drv0 = rt.stats();

    std::thread::scope(|sc| {
        // mptun's application: accept both connections, serve each on its own thread
        let accepter = sc.spawn(|| {
            let mut live = None;
            let mut echo = None;
            while live.is_none() || echo.is_none() {
                let (s, peer) = listener
                    .accept_timeout(Some(4 * IO_TIMEOUT))
                    .expect("mptun accept");
                let h = handle.clone();
                let srv = &server;
                match peer.port() {
                    LIVE_PORT => live = Some(sc.spawn(move || serve_live(s, &h, srv))),
                    LEGIT_PORT => echo = Some(sc.spawn(move || serve_echo(s, &h))),
                    p => panic!("unexpected connection from port {p}"),
                }
            }
            (live.unwrap(), echo.unwrap())
        });

        // the live transfer: a Linux MPTCP client, paced both ways
        let live_sock = linux_mptcp_socket(&ns, LIVE_PORT);
        live_sock
            .connect_timeout(&addr.into(), IO_TIMEOUT)
            .expect("live connect");
        let live = TcpStream::from(live_sock);
        live.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        live.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let live_mptcp = linux_socket_is_mptcp(&live);
        let mut live_w = live.try_clone().unwrap();
        let stop = &server.stop_live;
        let live_writer = sc.spawn(move || {
            let r = paced_send(&mut live_w, 1, stop);
            live_w.shutdown(Shutdown::Write)?;
            r
        });
        let ll = linux_live_received.clone();
        let live_reader = sc.spawn(move || read_all(&mut &live, &ll));

        // both directions flow before the flood starts
        let t = Instant::now();
        while server.live_received.load(Ordering::Relaxed) < (1 << 20)
            || linux_live_received.load(Ordering::Relaxed) < (1 << 20)
        {
            assert!(t.elapsed() < IO_TIMEOUT, "the live transfer does not flow");
            std::thread::sleep(Duration::from_millis(10));
        }
        let live_at_flood_start = (
            server.live_received.load(Ordering::Relaxed),
            linux_live_received.load(Ordering::Relaxed),
        );

        let nstat_flood0 = ns.nstat().expect("nstat");
        let flood_start = Instant::now();
        let flooder = sc.spawn(|| flood(raw, &fl, &handle));

        // wait until the flood really hit the table: full, and cookies or evictions
        let t = Instant::now();
        let table_at_legit = loop {
            let (n, cookies, evicted) = handle.with_stack(|s| {
                (
                    s.half_open_count(),
                    s.mib().SynCookiesSent - mib0.SynCookiesSent,
                    s.mib().HalfOpenEvicted - mib0.HalfOpenEvicted,
                )
            });
            let sent = fl.sent.load(Ordering::Relaxed);
            if n >= max_half_open && cookies + evicted > 0 && sent >= FLOOD / 3 {
                break (n, cookies, evicted, sent);
            }
            assert!(
                t.elapsed() < IO_TIMEOUT,
                "the flood does not fill the table: half_open={n} cookies={cookies} evicted={evicted} sent={sent}"
            );
            std::thread::sleep(Duration::from_millis(5));
        };

        // the legitimate client, during the flood
        let nstat0 = ns.nstat().expect("nstat");
        let sock = linux_mptcp_socket(&ns, LEGIT_PORT);
        let msg = *b"legit-ping-0123456789-abcdefghij";
        let t0 = Instant::now();
        sock.connect_timeout(&addr.into(), IO_TIMEOUT)
            .expect("legitimate connect during the flood");
        let connected = t0.elapsed();
        let legit = TcpStream::from(sock);
        legit.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        (&legit).write_all(&msg).expect("legitimate write");
        let mut echo = [0u8; 32];
        (&legit).read_exact(&mut echo).expect("legitimate echo");
        let echoed = t0.elapsed();
        let flood_sent_at_echo = fl.sent.load(Ordering::Relaxed);
        let flood_running_at_echo = !fl.finished.load(Ordering::Relaxed);
        let legit_mptcp = linux_socket_is_mptcp(&legit);
        legit.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        (&legit).read_to_end(&mut rest).expect("legitimate EOF");
        fl.legit_done.store(true, Ordering::Relaxed);
        let nstat1 = ns.nstat().expect("nstat");

        flooder.join().expect("flood thread");
        let flood_time = flood_start.elapsed();
        let live_at_flood_end = (
            server.live_received.load(Ordering::Relaxed),
            linux_live_received.load(Ordering::Relaxed),
        );
        let table_after = handle.with_stack(|s| s.half_open_count());
        server.stop_live.store(true, Ordering::Relaxed);

        let linux_sent = live_writer.join().expect("Linux live writer");
        let linux_got = live_reader.join().expect("Linux live reader");
        let (live_h, echo_h) = accepter.join().expect("mptun accepter");
        let mptun_live = live_h.join().expect("mptun live thread");
        let mptun_echo = echo_h.join().expect("mptun echo thread");
        // everything is drained now: the final counters
        let mib1 = handle.with_stack(|s| s.mib().clone());
        let nstat_flood1 = ns.nstat().expect("nstat");
        let tx_dropped = ns.dev_stat("tun0", "tx_dropped").expect("tx_dropped") - tx_dropped0;

        let kf = |name: &str| delta(&nstat_flood0, &nstat_flood1, name);
        let tx_packets = ns.dev_stat("tun0", "tx_packets").expect("tx_packets") - tx_packets0;
        let drv1 = rt.stats();
        eprintln!(
            "diag: IpOutRequests+{} IpOutDiscards+{} IpOutNoRoutes+{}; tun0 tx_packets +{tx_packets}, driver rx +{} rx_errors +{} impaired_drops +{}; mib changes: {:?}",
            kf("IpOutRequests"),
            kf("IpOutDiscards"),
            kf("IpOutNoRoutes"),
            drv1.rx_packets - drv0.rx_packets,
            drv1.rx_errors - drv0.rx_errors,
            drv1.impaired_drops - drv0.impaired_drops,
            mib1.iter()
                .filter_map(|(n, v)| {
                    let b = mib0.get(n).unwrap_or(0);
                    (v != b).then(|| format!("{n}+{}", v - b))
                })
                .collect::<Vec<_>>(),
        );
        let d = |name: &str| mib1.get(name).unwrap_or(0) - mib0.get(name).unwrap_or(0);
        let k = |name: &str| delta(&nstat0, &nstat1, name);
        let flood_sent = fl.sent.load(Ordering::Relaxed);
        eprintln!(
            "synflood: flood sent={flood_sent} in {flood_time:?}, tun0 tx_dropped +{tx_dropped}; \
             table at legit connect: half_open={} cookies={} evicted={} after {} SYNs; \
             legit connect {connected:?}, echo {echoed:?} (flood at {flood_sent_at_echo} SYNs, running={flood_running_at_echo}); \
             half_open after flood={table_after}; mptun: MPCapableSYNRX+{} SynCookiesSent+{} SynCookiesRecv+{} \
             HalfOpenEvicted+{} SynAckRetrans+{} HalfOpenTimedOut+{} ListenOverflows+{} TokenFallbackInit+{}; \
             Linux (legit window): MPTcpExtMPCapableSYNTX+{} MPTcpExtMPCapableSYNACKRX+{} MPTcpExtMPCapableFallbackSYNACK+{} \
             TcpExtTCPSynRetrans+{}; Linux (flood): IpInAddrErrors+{} IpInNoRoutes+{} TcpOutRsts+{} TcpInSegs+{}; live bytes at flood start {live_at_flood_start:?}, end {live_at_flood_end:?}; total {:?}",
            table_at_legit.0,
            table_at_legit.1,
            table_at_legit.2,
            table_at_legit.3,
            d("MPCapableSYNRX"),
            d("SynCookiesSent"),
            d("SynCookiesRecv"),
            d("HalfOpenEvicted"),
            d("SynAckRetrans"),
            d("HalfOpenTimedOut"),
            d("ListenOverflows"),
            d("TokenFallbackInit"),
            k("MPTcpExtMPCapableSYNTX"),
            k("MPTcpExtMPCapableSYNACKRX"),
            k("MPTcpExtMPCapableFallbackSYNACK"),
            k("TcpExtTCPSynRetrans"),
            kf("IpInAddrErrors"),
            kf("IpInNoRoutes"),
            kf("TcpOutRsts"),
            kf("TcpInSegs"),
            started.elapsed(),
        );

        // the legitimate client: in within the bound, during the flood, echo intact, MPTCP
        assert_eq!(echo, msg, "the echo");
        assert!(rest.is_empty(), "extra bytes after the echo: {rest:?}");
        assert!(
            echoed < LEGIT_BOUND,
            "legitimate connect+echo took {echoed:?} (connect {connected:?}) during the flood"
        );
        assert!(
            flood_running_at_echo && flood_sent_at_echo > table_at_legit.3,
            "the flood was not running during the legitimate exchange"
        );
        legit_mptcp.expect("Linux: the legitimate socket is MPTCP (MPTCP_INFO)");
        assert!(
            mptun_echo.expect("mptun's echo side"),
            "mptun: the legitimate connection fell back"
        );
        assert_eq!(
            k("MPTcpExtMPCapableSYNTX"),
            1,
            "Linux sent one MP_CAPABLE SYN"
        );
        assert_eq!(
            k("MPTcpExtMPCapableSYNACKRX"),
            1,
            "Linux got mptun's MP_CAPABLE SYN/ACK"
        );
        assert_eq!(
            k("MPTcpExtMPCapableFallbackSYNACK"),
            0,
            "fallback at SYN/ACK"
        );
        assert_eq!(
            k("MPTcpExtMPFallbackTokenInit"),
            0,
            "fallback at token init"
        );

        // the flood: 100k SYNs reached mptun (or were dropped by the kernel's queue, counted)
        // and really hit the half-open table
        assert!(flood_sent >= FLOOD);
        let seen = d("MPCapableSYNRX");
        assert!(
            seen + tx_dropped >= flood_sent + 2,
            "SYNs unaccounted: mptun saw {seen}, tun0 dropped {tx_dropped}, sent {flood_sent}"
        );
        assert!(
            seen >= FLOOD * 9 / 10,
            "mptun saw only {seen} of {flood_sent} SYNs (tun0 tx_dropped +{tx_dropped})"
        );
        assert!(
            d("SynCookiesSent") + d("HalfOpenEvicted") > 0,
            "no cookies and no evictions: the flood did not hit the table"
        );
        assert!(
            table_after <= max_half_open,
            "half-open table over its bound"
        );

        // the busy listener's transfer went on during the flood and is intact
        assert!(
            live_at_flood_end.0 > live_at_flood_start.0
                && live_at_flood_end.1 > live_at_flood_start.1,
            "the live transfer stalled during the flood: {live_at_flood_start:?} -> {live_at_flood_end:?}"
        );
        let linux_sent = linux_sent.expect("Linux live send");
        let linux_got = linux_got.expect("Linux live receive");
        let (mptun_sent, mptun_got, mptun_live_mptcp) = mptun_live.expect("mptun live side");
        assert_eq!(mptun_got, linux_sent, "Linux -> mptun (bytes, SHA-256)");
        assert_eq!(linux_got, mptun_sent, "mptun -> Linux (bytes, SHA-256)");
        live_mptcp.expect("Linux: the live socket is MPTCP (MPTCP_INFO)");
        assert!(mptun_live_mptcp, "mptun: the live connection fell back");
    });
    drop(listener);
    rt.stop().expect("runtime stop");
    let total = started.elapsed();
    assert!(total < Duration::from_secs(60), "the test took {total:?}");
}
