//! Hostile input to the whole stack: random bytes, and real packets of an MPTCP exchange
//! with random corruption, fed to live stacks. Nothing may panic; the stacks keep working.

mod simutil;

use mptun::crypto::KeyGen;
use mptun::stack::{Stack, StackConfig};
use mptun::time::{Duration, Instant};
use proptest::prelude::*;
use simutil::*;

fn stacks() -> (Stack, Stack) {
    let c = Stack::new(
        StackConfig {
            addrs: vec![CLIENT1],
            ..StackConfig::default()
        },
        KeyGen::from_seed(1),
    );
    let mut s = Stack::new(
        StackConfig {
            addrs: vec![SERVER1],
            ..StackConfig::default()
        },
        KeyGen::from_seed(2),
    );
    s.listen(PORT).unwrap();
    (c, s)
}

/// The packets of a short MPTCP exchange (handshake, data both ways, close), in order.
fn capture() -> Vec<Vec<u8>> {
    let (mut c, mut s) = stacks();
    let mut now = Instant::from_millis(1);
    let id = c
        .connect(
            now,
            std::net::SocketAddr::new(SERVER1, PORT),
            Some(CLIENT1),
            None,
        )
        .unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    let mut sid = None;
    for round in 0..200 {
        now += Duration::from_millis(5);
        while let Some(n) = c.poll_transmit(now, &mut buf) {
            out.push(buf[..n].to_vec());
            s.handle_packet(now, &buf[..n]);
        }
        while let Some(n) = s.poll_transmit(now, &mut buf) {
            out.push(buf[..n].to_vec());
            c.handle_packet(now, &buf[..n]);
        }
        c.handle_timeout(now);
        s.handle_timeout(now);
        if sid.is_none() {
            sid = s.accept(PORT);
        }
        if round == 5 {
            let _ = c.send(id, &[7u8; 3000]);
            c.shutdown(now, id).unwrap();
        }
        if let Some(x) = sid {
            let mut r = [0u8; 4096];
            while let Ok(n) = s.recv(x, &mut r) {
                if n == 0 {
                    let _ = s.send(x, b"bye");
                    let _ = s.shutdown(now, x);
                    break;
                }
            }
        }
    }
    assert!(out.len() > 6, "capture too short");
    out
}

fn feed_all(pkts: &[Vec<u8>]) {
    let (mut c, mut s) = stacks();
    let mut now = Instant::from_millis(1);
    let mut buf = vec![0u8; 65536];
    let _ = c.connect(
        now,
        std::net::SocketAddr::new(SERVER1, PORT),
        Some(CLIENT1),
        None,
    );
    for p in pkts {
        now += Duration::from_millis(3);
        c.handle_packet(now, p);
        s.handle_packet(now, p);
        while c.poll_transmit(now, &mut buf).is_some() {}
        while s.poll_transmit(now, &mut buf).is_some() {}
        c.handle_timeout(now);
        s.handle_timeout(now);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(pkts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..120), 1..20)) {
        feed_all(&pkts);
    }

    #[test]
    fn corrupted_real_packets_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<u8>()), 1..40)) {
        let mut pkts = capture();
        for (p, b, v) in flips {
            let n = pkts.len();
            let pkt = &mut pkts[p % n];
            if !pkt.is_empty() {
                let l = pkt.len();
                pkt[b % l] ^= v | 1;
            }
        }
        // fix TCP checksums on half of them so corruption reaches the option parsers
        for (i, p) in pkts.iter_mut().enumerate() {
            if i % 2 == 0 && p.len() >= 40 && p[0] >> 4 == 4 && usize::from(u16::from_be_bytes([p[2], p[3]])) == p.len() && (p[0] & 0xf) == 5 && p[9] == 6 {
                fix_tcp_checksum(p);
            }
        }
        feed_all(&pkts);
    }
}

#[test]
fn bad_checksums_and_garbage_are_counted_not_accepted() {
    let pkts = capture();
    let (_, mut s) = stacks();
    let now = Instant::from_millis(1);
    let mut bad = pkts[0].clone();
    let l = bad.len();
    bad[l - 1] ^= 0xff; // payload/option byte: TCP checksum no longer matches
    s.handle_packet(now, &bad);
    s.handle_packet(now, &[0x45, 0, 0]);
    s.handle_packet(now, &[]);
    assert_eq!(s.mib().InCsumErrors + s.mib().InTcpErrors, 1);
    assert_eq!(s.mib().InIpErrors, 2);
    assert_eq!(
        s.mib().MPCapableSYNRX,
        0,
        "a corrupted SYN must not open a connection"
    );
}
