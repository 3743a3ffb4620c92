//! Simulated network tests with toy endpoints: determinism, loss, link down, rate, hook.

use mptun::io::sim::{Endpoint, PacketInfo, SimNet, Verdict};
use mptun::io::Impairment;
use mptun::time::{Duration, Instant};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

const HDR: usize = 20;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => panic!("toy endpoints speak IPv4 only"),
    }
}

/// Writes a minimal IPv4 header + 8-byte sequence number, padded to `size`.
fn build(buf: &mut [u8], src: IpAddr, dst: IpAddr, seq: u64, size: usize) -> usize {
    let size = size.max(HDR + 8);
    buf[..size].fill(0);
    buf[0] = 0x45;
    buf[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    buf[8] = 64;
    buf[9] = 17;
    buf[12..16].copy_from_slice(&v4(src));
    buf[16..20].copy_from_slice(&v4(dst));
    buf[HDR..HDR + 8].copy_from_slice(&seq.to_be_bytes());
    size
}

fn seq_of(p: &[u8]) -> u64 {
    u64::from_be_bytes(p[HDR..HDR + 8].try_into().unwrap())
}

/// Sends `count` packets, one every `interval` (all at once if zero), and records replies.
struct Pinger {
    src: IpAddr,
    dst: IpAddr,
    size: usize,
    interval: Duration,
    count: u64,
    scheduled: u64,
    pending: VecDeque<u64>,
    next_send: Instant,
    received: Vec<(Instant, u64)>,
}

impl Pinger {
    fn new(src: &str, dst: &str, count: u64, interval: Duration, size: usize) -> Self {
        Pinger {
            src: ip(src),
            dst: ip(dst),
            size,
            interval,
            count,
            scheduled: 0,
            pending: VecDeque::with_capacity(count as usize),
            next_send: Instant::ZERO,
            received: Vec::with_capacity(2 * count as usize),
        }
    }
}

impl Endpoint for Pinger {
    fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.received.push((now, seq_of(packet)));
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
        let seq = self.pending.pop_front()?;
        Some(build(buf, self.src, self.dst, seq, self.size))
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        (self.scheduled < self.count).then_some(self.next_send)
    }
    fn handle_timeout(&mut self, now: Instant) {
        while self.scheduled < self.count && self.next_send <= now {
            self.pending.push_back(self.scheduled);
            self.scheduled += 1;
            self.next_send += self.interval;
        }
    }
}

/// Answers every packet by swapping addresses; logs what it saw.
struct Echo {
    replies: VecDeque<(IpAddr, IpAddr, u64, usize)>,
    log: Vec<(Instant, u64)>,
}

impl Echo {
    fn new() -> Self {
        Echo {
            replies: VecDeque::with_capacity(4096),
            log: Vec::with_capacity(20_000),
        }
    }
}

impl Endpoint for Echo {
    fn handle_packet(&mut self, now: Instant, p: &[u8]) {
        let src = Ipv4Addr::from(<[u8; 4]>::try_from(&p[12..16]).unwrap());
        let dst = Ipv4Addr::from(<[u8; 4]>::try_from(&p[16..20]).unwrap());
        let seq = seq_of(p);
        self.log.push((now, seq));
        self.replies
            .push_back((dst.into(), src.into(), seq, p.len()));
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
        let (s, d, seq, len) = self.replies.pop_front()?;
        Some(build(buf, s, d, seq, len))
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }
    fn handle_timeout(&mut self, _now: Instant) {}
}

fn two_hosts(net: &mut SimNet, ab: Impairment, ba: Impairment) -> usize {
    net.add_host(&[ip("198.19.0.1")]);
    net.add_host(&[ip("198.19.0.2")]);
    net.add_link(ip("198.19.0.1"), ip("198.19.0.2"), ab, ba)
}

type Trace = (Vec<(Instant, u64)>, Vec<(Instant, u64)>);

fn impaired_run(seed: u64) -> Trace {
    let cfg: Impairment = "delay=10ms,jitter=3ms,loss=5%,dup=2%,reorder=5%"
        .parse()
        .unwrap();
    let mut net = SimNet::new(seed);
    two_hosts(&mut net, cfg.clone(), cfg);
    let mut a = Pinger::new(
        "198.19.0.1",
        "198.19.0.2",
        500,
        Duration::from_millis(1),
        100,
    );
    let mut b = Echo::new();
    while net.step(&mut [&mut a, &mut b]) {}
    (a.received, b.log)
}

#[test]
fn same_seed_same_trace_different_seed_different() {
    let t1 = impaired_run(7);
    let t2 = impaired_run(7);
    let t3 = impaired_run(8);
    assert!(t1.0.len() > 400, "most pings come back: {}", t1.0.len());
    assert_eq!(t1, t2);
    assert_ne!(t1, t3);
}

#[test]
fn perfect_link_round_trip_timing() {
    let cfg: Impairment = "delay=5ms".parse().unwrap();
    let mut net = SimNet::new(1);
    two_hosts(&mut net, cfg.clone(), cfg);
    let mut a = Pinger::new(
        "198.19.0.1",
        "198.19.0.2",
        10,
        Duration::from_millis(2),
        100,
    );
    let mut b = Echo::new();
    while net.step(&mut [&mut a, &mut b]) {}
    let expect: Vec<(Instant, u64)> = (0..10)
        .map(|i| (Instant::from_millis(10 + 2 * i), i))
        .collect();
    assert_eq!(a.received, expect);
    let s = net.stats();
    assert_eq!((s.transmitted, s.routed, s.delivered), (20, 20, 20));
    assert_eq!(s.links[0].a_to_b.passed, 10);
    assert_eq!(s.links[0].b_to_a.passed, 10);
}

#[test]
fn loss_rate_roughly_matches() {
    let lossy: Impairment = "loss=20%".parse().unwrap();
    let mut net = SimNet::new(1234);
    two_hosts(&mut net, lossy, Impairment::default());
    let mut a = Pinger::new(
        "198.19.0.1",
        "198.19.0.2",
        5000,
        Duration::from_micros(100),
        100,
    );
    let mut b = Echo::new();
    while net.step(&mut [&mut a, &mut b]) {}
    let got = b.log.len() as u64;
    assert!(
        (3700..4300).contains(&got),
        "delivered {got} of 5000 at 20% loss"
    );
    let s = net.stats();
    assert_eq!(s.links[0].a_to_b.lost, 5000 - got);
    assert_eq!(a.received.len() as u64, got);
}

#[test]
fn link_down_drops_and_recovers() {
    let cfg: Impairment = "delay=5ms".parse().unwrap();
    let mut net = SimNet::new(3);
    let link = two_hosts(&mut net, cfg.clone(), cfg);
    // One ping per ms for 300 ms.
    let mut a = Pinger::new(
        "198.19.0.1",
        "198.19.0.2",
        300,
        Duration::from_millis(1),
        100,
    );
    let mut b = Echo::new();
    net.run_until(&mut [&mut a, &mut b], Instant::from_millis(100), |_| false);
    assert_eq!(net.now(), Instant::from_millis(100));
    net.set_link_up(link, false);
    net.run_until(&mut [&mut a, &mut b], Instant::from_millis(200), |_| false);
    net.set_link_up(link, true);
    while net.step(&mut [&mut a, &mut b]) {}
    let s = net.stats();
    let down = s.links[0].a_to_b.down_drops + s.links[0].b_to_a.down_drops;
    // Pings 100..=199 are sent while down, plus those in flight at 100 ms were flushed.
    assert!(down >= 100, "{s:?}");
    let lost: Vec<u64> = (0..300)
        .filter(|i| !a.received.iter().any(|r| r.1 == *i))
        .collect();
    assert_eq!(
        lost.len() as u64,
        down,
        "every missing ping is a counted drop"
    );
    // In flight at 100 ms (sent from 95 ms on) up to the ping sent at exactly 200 ms.
    assert!(lost.iter().all(|i| (90..=200).contains(i)), "{lost:?}");
    assert!(
        a.received.iter().any(|r| r.1 >= 200),
        "traffic resumes after up"
    );
}

#[test]
fn rate_limits_throughput() {
    // 1000-byte packets at 1 Mbit/s take 8 ms each; an unbounded queue (a parsed rate
    // alone gets a 64 KiB one, which would tail-drop most of this 100 kB burst)
    let slow: Impairment = "rate=1mbit,queue=0b".parse().unwrap();
    let mut net = SimNet::new(5);
    two_hosts(&mut net, slow, Impairment::default());
    let mut a = Pinger::new("198.19.0.1", "198.19.0.2", 100, Duration::ZERO, 1000);
    let mut b = Echo::new();
    while net.step(&mut [&mut a, &mut b]) {}
    assert_eq!(b.log.len(), 100);
    let last = b.log.last().unwrap().0;
    assert_eq!(last, Instant::from_millis(800));
    let first = b.log.first().unwrap().0;
    assert_eq!(first, Instant::from_millis(8));
    // Tail drop with a small queue.
    let mut net = SimNet::new(5);
    two_hosts(
        &mut net,
        "rate=1mbit,queue=10kb".parse().unwrap(),
        Impairment::default(),
    );
    let mut a = Pinger::new("198.19.0.1", "198.19.0.2", 100, Duration::ZERO, 1000);
    let mut b = Echo::new();
    while net.step(&mut [&mut a, &mut b]) {}
    let s = net.stats();
    assert_eq!(b.log.len(), 10);
    assert_eq!(s.links[0].a_to_b.queue_drops, 90);
}

#[test]
fn hook_drops_and_rewrites() {
    let mut net = SimNet::new(9);
    two_hosts(&mut net, Impairment::default(), Impairment::default());
    let seen = std::rc::Rc::new(std::cell::RefCell::new(Vec::<PacketInfo>::new()));
    let seen2 = seen.clone();
    net.set_hook(Box::new(move |info: &PacketInfo, pkt: &mut Vec<u8>| {
        seen2.borrow_mut().push(*info);
        if info.from_host == 0 && seq_of(pkt) % 3 == 0 {
            return Verdict::Drop;
        }
        if info.from_host == 1 {
            // Rewrite the echoed sequence number.
            let s = seq_of(pkt) + 1000;
            pkt[HDR..HDR + 8].copy_from_slice(&s.to_be_bytes());
        }
        Verdict::Pass
    }));
    let mut a = Pinger::new(
        "198.19.0.1",
        "198.19.0.2",
        30,
        Duration::from_millis(1),
        100,
    );
    let mut b = Echo::new();
    while net.step(&mut [&mut a, &mut b]) {}
    let s = net.stats();
    assert_eq!(s.hook_drops, 10);
    assert_eq!(b.log.len(), 20);
    assert!(a
        .received
        .iter()
        .all(|r| r.1 >= 1000 && (r.1 - 1000) % 3 != 0));
    let seen = seen.borrow();
    assert_eq!(seen.len(), 50);
    let seqs: Vec<u64> = seen.iter().map(|i| i.seq_no).collect();
    assert_eq!(seqs, (0..50).collect::<Vec<_>>());
    assert!(seen.iter().all(|i| i.link == 0 && i.from_host != i.to_host));
}

#[test]
fn unroutable_and_no_link_are_counted() {
    let mut net = SimNet::new(2);
    net.add_host(&[ip("198.19.0.1")]);
    net.add_host(&[ip("198.19.0.2"), ip("198.19.1.2")]);
    net.add_link(
        ip("198.19.0.1"),
        ip("198.19.0.2"),
        Impairment::default(),
        Impairment::default(),
    );
    let mut a = Pinger::new(
        "198.19.0.1",
        "198.19.39.9",
        3,
        Duration::from_millis(1),
        100,
    );
    let mut c = Pinger::new("198.19.0.1", "198.19.1.2", 4, Duration::from_millis(1), 100);
    let mut b = Echo::new();
    while net.step(&mut [&mut a, &mut b]) {}
    // Host 0 is now `c` (same address, different destination).
    while net.step(&mut [&mut c, &mut b]) {}
    let s = net.stats();
    assert_eq!(s.unroutable, 3);
    assert_eq!(s.no_link, 4);
    assert_eq!(s.delivered, 0);
}

#[test]
fn run_until_stops_on_done_and_deadline() {
    let mut net = SimNet::new(4);
    two_hosts(
        &mut net,
        "delay=1ms".parse().unwrap(),
        "delay=1ms".parse().unwrap(),
    );
    let mut a = Pinger::new(
        "198.19.0.1",
        "198.19.0.2",
        1000,
        Duration::from_millis(1),
        100,
    );
    let mut b = Echo::new();
    let mut calls = 0;
    let ok = net.run_until(&mut [&mut a, &mut b], Instant::from_millis(10_000), |_| {
        calls += 1;
        calls > 50
    });
    assert!(ok);
    assert_eq!(calls, 51);
    let before = net.now();
    assert!(before < Instant::from_millis(100));
    let deadline = before + Duration::from_millis(20);
    let ok = net.run_until(&mut [&mut a, &mut b], deadline, |_| false);
    assert!(!ok);
    assert_eq!(net.now(), deadline);
    // A reply due at exactly the deadline was delivered, none after it.
    assert!(a.received.iter().any(|r| r.0 == deadline));
    assert!(a.received.iter().all(|r| r.0 <= deadline));
    // A deadline in the past does not move the clock backwards.
    assert!(!net.run_until(&mut [&mut a, &mut b], Instant::ZERO, |_| false));
    assert_eq!(net.now(), deadline);
}

#[test]
fn ipv6_and_multiple_links() {
    struct V6Once(Option<(IpAddr, IpAddr)>, Vec<IpAddr>);
    impl Endpoint for V6Once {
        fn handle_packet(&mut self, _now: Instant, p: &[u8]) {
            let dst: [u8; 16] = p[24..40].try_into().unwrap();
            self.1.push(IpAddr::from(dst));
        }
        fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<usize> {
            let (s, d) = self.0.take()?;
            buf[..40].fill(0);
            buf[0] = 0x60;
            if let (IpAddr::V6(s), IpAddr::V6(d)) = (s, d) {
                buf[8..24].copy_from_slice(&s.octets());
                buf[24..40].copy_from_slice(&d.octets());
            }
            Some(40)
        }
        fn poll_timeout(&mut self) -> Option<Instant> {
            None
        }
        fn handle_timeout(&mut self, _now: Instant) {}
    }
    let mut net = SimNet::new(11);
    net.add_host(&[ip("2001:2::1"), ip("fd01::1")]);
    net.add_host(&[ip("2001:2::2"), ip("fd01::2")]);
    net.add_link(
        ip("2001:2::1"),
        ip("2001:2::2"),
        Impairment::default(),
        Impairment::default(),
    );
    let l1 = net.add_link(
        ip("fd01::2"),
        ip("fd01::1"),
        "delay=3ms".parse().unwrap(),
        Impairment::default(),
    );
    let mut a = V6Once(Some((ip("fd01::1"), ip("fd01::2"))), vec![]);
    let mut b = V6Once(None, vec![]);
    while net.step(&mut [&mut a, &mut b]) {}
    assert_eq!(b.1, vec![ip("fd01::2")]);
    let s = net.stats();
    // Sent from fd01::1 to fd01::2 = the b -> a direction of link l1 (zero delay).
    assert_eq!(s.links[l1].b_to_a.passed, 1);
    assert_eq!(s.links[l1].a_to_b.passed, 0);
    assert_eq!(net.now(), Instant::ZERO);
}

#[test]
fn pcap_capture_of_routed_packets() {
    use pcap_file::pcap::PcapReader;
    let path = std::env::temp_dir().join(format!("mptun-sim-{}.pcap", std::process::id()));
    let mut net = SimNet::new(6);
    two_hosts(
        &mut net,
        "delay=1ms".parse().unwrap(),
        Impairment::default(),
    );
    net.enable_pcap(&path).unwrap();
    let mut a = Pinger::new("198.19.0.1", "198.19.0.2", 5, Duration::from_millis(1), 60);
    let mut b = Echo::new();
    while net.step(&mut [&mut a, &mut b]) {}
    net.flush_pcap().unwrap();
    let mut r = PcapReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut n = 0;
    while let Some(p) = r.next_packet() {
        let p = p.unwrap();
        assert_eq!(p.data.len(), 60);
        n += 1;
    }
    assert_eq!(n, 10);
    let _ = std::fs::remove_file(&path);
}
