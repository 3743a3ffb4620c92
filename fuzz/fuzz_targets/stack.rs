//! Whole-stack input: arbitrary bytes as IP packets into a listening stack and into a stack
//! with a connection in progress. Nothing may panic; every packet is handled or counted.
//!
//! Run: `cd fuzz && cargo +nightly fuzz run stack`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptun::crypto::KeyGen;
use mptun::stack::{Stack, StackConfig};
use mptun::time::{Duration, Instant};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const REMOTE: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1));

fuzz_target!(|data: &[u8]| {
    let cfg = StackConfig { addrs: vec![LOCAL], ..StackConfig::default() };
    let mut listener = Stack::new(cfg.clone(), KeyGen::from_seed(1));
    let _ = listener.listen(5201);
    let mut client = Stack::new(cfg, KeyGen::from_seed(2));
    let now = Instant::from_millis(1);
    let _ = client.connect(now, SocketAddr::new(REMOTE, 5201), Some(LOCAL), None);
    let mut buf = vec![0u8; 65536];
    while client.poll_transmit(now, &mut buf).is_some() {}
    // the input is split into packets by a leading 2-byte length
    let mut rest = data;
    let mut t = now;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let pkt = &rest[2..2 + len];
        rest = &rest[2 + len..];
        listener.handle_packet(t, pkt);
        client.handle_packet(t, pkt);
        while listener.poll_transmit(t, &mut buf).is_some() {}
        while client.poll_transmit(t, &mut buf).is_some() {}
        t += Duration::from_millis(10);
        listener.handle_timeout(t);
        client.handle_timeout(t);
    }
});
