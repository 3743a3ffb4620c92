//! The data path end to end in one process, no I/O: one full-sized data segment from an
//! MPTCP client stack through its transmit path, the server's receive path (parse, demux,
//! DSS mapping, reassembly, DATA_ACK), the application read, and the ACK back.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mptun::crypto::KeyGen;
use mptun::stack::{ConnId, Stack, StackConfig};
use mptun::time::{Duration, Instant};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const C: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const S: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1));

struct Pair {
    c: Stack,
    s: Stack,
    cid: ConnId,
    sid: ConnId,
    now: Instant,
    buf: Vec<u8>,
    rbuf: Vec<u8>,
}

impl Pair {
    fn new() -> Pair {
        let mut c = Stack::new(
            StackConfig {
                addrs: vec![C],
                ..StackConfig::default()
            },
            KeyGen::from_seed(1),
        );
        let mut s = Stack::new(
            StackConfig {
                addrs: vec![S],
                ..StackConfig::default()
            },
            KeyGen::from_seed(2),
        );
        s.listen(5201).unwrap();
        let mut now = Instant::from_millis(1);
        let cid = c
            .connect(now, SocketAddr::new(S, 5201), Some(C), None)
            .unwrap();
        let mut p = Pair {
            c,
            s,
            cid,
            sid: cid,
            now,
            buf: vec![0; 65536],
            rbuf: vec![0; 65536],
        };
        let mut sid = None;
        for _ in 0..100 {
            now += Duration::from_millis(1);
            p.now = now;
            p.shuttle();
            if sid.is_none() {
                sid = p.s.accept(5201);
            }
        }
        p.sid = sid.expect("handshake");
        p
    }

    fn shuttle(&mut self) {
        while let Some(n) = self.c.poll_transmit(self.now, &mut self.buf) {
            self.s.handle_packet(self.now, &self.buf[..n]);
        }
        while let Some(n) = self.s.poll_transmit(self.now, &mut self.buf) {
            self.c.handle_packet(self.now, &self.buf[..n]);
        }
    }

    fn one_segment(&mut self, payload: &[u8]) -> usize {
        self.now += Duration::from_micros(50);
        self.c.send(self.cid, payload).unwrap();
        self.shuttle();
        let mut got = 0;
        while let Ok(n) = self.s.recv(self.sid, &mut self.rbuf) {
            if n == 0 {
                break;
            }
            got += n;
        }
        self.s.handle_timeout(self.now + Duration::from_millis(50)); // delayed ACK
        self.shuttle();
        got
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("data_path");
    let payload = vec![0x5au8; 1400];
    g.throughput(Throughput::Bytes(payload.len() as u64));
    let mut p = Pair::new();
    g.bench_function("one_1400B_segment_both_stacks", |b| {
        b.iter(|| p.one_segment(&payload))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
