//! The MPTCP data path allocates nothing per packet in steady state: a counting global
//! allocator watches 2000 full-sized segments go from one stack to the other and back
//! (transmit path, receive path, reassembly, application read, ACK).

use mptun::crypto::KeyGen;
use mptun::stack::{Stack, StackConfig};
use mptun::time::{Duration, Instant};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;

#[path = "common/alloc.rs"]
mod alloc;
use alloc::{ALLOCS, COUNTING};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

const C: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const S: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1));

/// One test (the allocation counter is global): the default controller, then LIA, whose
/// coupling view is rebuilt before every ACK.
#[test]
fn steady_state_data_path_does_not_allocate() {
    alloc::watch_this_thread();
    for cc in ["cubic", "lia"] {
        steady_state(cc);
    }
}

fn steady_state(cc: &'static str) {
    let mut conn = mptun::mptcp::ConnConfig::default();
    conn.tcp.congestion = cc;
    let mut c = Stack::new(
        StackConfig {
            addrs: vec![C],
            conn: conn.clone(),
            ..StackConfig::default()
        },
        KeyGen::from_seed(1),
    );
    let mut s = Stack::new(
        StackConfig {
            addrs: vec![S],
            conn,
            ..StackConfig::default()
        },
        KeyGen::from_seed(2),
    );
    s.listen(5201).unwrap();
    let mut now = Instant::from_millis(1);
    let cid = c
        .connect(now, SocketAddr::new(S, 5201), Some(C), None)
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut rbuf = vec![0u8; 65536];
    let payload = vec![0x5au8; 1400];
    let mut sid = None;
    let mut received = 0usize;
    let mut step = |c: &mut Stack,
                    s: &mut Stack,
                    now: Instant,
                    send: bool,
                    sid: &mut Option<mptun::stack::ConnId>|
     -> usize {
        if send {
            c.send(cid, &payload).unwrap();
        }
        while let Some(n) = c.poll_transmit(now, &mut buf) {
            s.handle_packet(now, &buf[..n]);
        }
        if sid.is_none() {
            *sid = s.accept(5201);
        }
        let mut got = 0;
        if let Some(x) = *sid {
            while let Ok(n) = s.recv(x, &mut rbuf) {
                if n == 0 {
                    break;
                }
                got += n;
            }
        }
        s.handle_timeout(now + Duration::from_millis(50));
        while let Some(n) = s.poll_transmit(now, &mut buf) {
            c.handle_packet(now, &buf[..n]);
        }
        c.handle_timeout(now);
        got
    };
    // handshake and warm-up (buffers, tables and windows reach their steady size)
    for i in 0..3000 {
        now += Duration::from_micros(100);
        received += step(&mut c, &mut s, now, i > 50, &mut sid);
    }
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for _ in 0..2000 {
        now += Duration::from_micros(100);
        received += step(&mut c, &mut s, now, true, &mut sid);
    }
    COUNTING.store(false, Ordering::Relaxed);
    let allocs = ALLOCS.load(Ordering::Relaxed);
    assert!(received >= 4000 * 1400, "{cc}: data must flow: {received}");
    assert_eq!(
        allocs, 0,
        "{cc}: allocations during 2000 segments in steady state"
    );
}
