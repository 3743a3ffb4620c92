//! Steady-state stepping of the simulated network does not allocate per packet.
//! (One test only in this binary: the counting allocator is process-wide.)

use mptun::io::sim::{Endpoint, SimNet};
use mptun::io::Impairment;
use mptun::time::{Duration, Instant};
use std::net::IpAddr;
use std::sync::atomic::Ordering;

#[path = "common/alloc.rs"]
mod alloc;
use alloc::{ALLOCS, COUNTING};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// Sends a 1200-byte packet every 100 us to `dst`, forever; counts what it receives.
struct Source {
    src: [u8; 4],
    dst: [u8; 4],
    next: Instant,
    due: u32,
    seq: u64,
    received: u64,
}

impl Endpoint for Source {
    fn handle_packet(&mut self, _now: Instant, p: &[u8]) {
        assert!(p.len() >= 20);
        self.received += 1;
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
        if self.due == 0 {
            return None;
        }
        self.due -= 1;
        let len = 1200;
        buf[..len].fill(0);
        buf[0] = 0x45;
        buf[12..16].copy_from_slice(&self.src);
        buf[16..20].copy_from_slice(&self.dst);
        buf[20..28].copy_from_slice(&self.seq.to_be_bytes());
        self.seq += 1;
        Some(len)
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        Some(self.next)
    }
    fn handle_timeout(&mut self, now: Instant) {
        while self.next <= now {
            self.due += 1;
            self.next += Duration::from_micros(100);
        }
    }
}

#[test]
fn steady_state_stepping_does_not_allocate() {
    alloc::watch_this_thread();
    let a: IpAddr = "198.19.0.1".parse().unwrap();
    let b: IpAddr = "198.19.0.2".parse().unwrap();
    let mut net = SimNet::new(77);
    net.add_host(&[a]);
    net.add_host(&[b]);
    let cfg: Impairment = "delay=20ms,jitter=2ms,loss=3%,reorder=1%,rate=200mbit,queue=1mb"
        .parse()
        .unwrap();
    net.add_link(a, b, cfg.clone(), cfg);
    let mut x = Source {
        src: [198, 19, 0, 1],
        dst: [198, 19, 0, 2],
        next: Instant::ZERO,
        due: 0,
        seq: 0,
        received: 0,
    };
    let mut y = Source {
        src: [198, 19, 0, 2],
        dst: [198, 19, 0, 1],
        next: Instant::ZERO,
        due: 0,
        seq: 0,
        received: 0,
    };
    // Warm up: pool, heaps and scratch reach their working sizes.
    net.run_until(&mut [&mut x, &mut y], Instant::from_millis(1000), |_| false);
    let before = (x.received, y.received);
    COUNTING.store(true, Ordering::SeqCst);
    net.run_until(&mut [&mut x, &mut y], Instant::from_millis(2000), |_| false);
    COUNTING.store(false, Ordering::SeqCst);
    let allocs = ALLOCS.load(Ordering::SeqCst);
    let moved = (x.received - before.0) + (y.received - before.1);
    assert!(moved > 15_000, "packets delivered while counting: {moved}");
    // The free list, heaps and pool only grow at a new in-flight peak (amortized, a
    // handful at most); one allocation per packet would show ~20 000 here.
    assert!(
        allocs <= 4,
        "{allocs} allocations while delivering {moved} packets"
    );
}
