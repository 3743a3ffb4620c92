//! Fuzzing harnesses, shared by the libFuzzer targets in `fuzz/` and by the bounded,
//! deterministic run in `tests/fuzz_smoke.rs`. Each takes arbitrary bytes; the oracle is
//! "no panic" (the targets build with debug assertions and overflow checks) plus the
//! round-trip checks of the option parsers.
//!
//! - [`options`]: the TCP option walker and every MPTCP option parser (parse, re-emit,
//!   re-parse).
//! - [`stack`]: whole IP packets into a listening stack and into a connecting one; each
//!   packet's IPv4/TCP checksums are fixed up unless the input asks for them raw, so the
//!   fuzzer gets past the checksum checks.
//! - [`established`]: a live MPTCP connection (two stacks, a join, data both ways) into
//!   which the input injects segments forged from the connection's real packets: any
//!   sequence/ACK offset, flags, window, option bytes and payload, with correct checksums,
//!   interleaved with application reads and writes, time passing, loss and reordering.

use crate::crypto::KeyGen;
use crate::stack::{ConnId, Stack, StackConfig};
use crate::time::{Duration, Instant};
use crate::wire::mptcp::{MptcpOption, KIND_MPTCP};
use crate::wire::tcp_opt;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The TCP option walker, `parse_all` and `MptcpOption::parse`: whatever parses re-emits into
/// a 40-byte buffer and re-parses to the same value. Panics (assertion) otherwise.
pub fn options(data: &[u8]) {
    // A TCP header carries at most 40 option bytes.
    let data = &data[..data.len().min(40)];
    let mut out = [0u8; 40];
    let mut at = 0;
    let mut first = Vec::new();
    for item in tcp_opt::iter(data) {
        match item {
            Ok(o) => {
                at += o
                    .emit(&mut out[at..])
                    .expect("a parsed TCP option re-emits");
                first.push(o);
            }
            Err(_) => break,
        }
    }
    let again: Vec<_> = tcp_opt::iter(&out[..at])
        .map(|r| r.expect("re-emitted options parse"))
        .collect();
    assert_eq!(first, again);

    let parsed = tcp_opt::parse_all(data);
    for raw in parsed.mptcp() {
        check_mptcp(raw);
    }
    // The input as one MPTCP option, raw and with kind/length fixed up to go deeper.
    check_mptcp(data);
    if data.len() >= 3 {
        let mut fixed = [0u8; 40];
        fixed[..data.len()].copy_from_slice(data);
        fixed[0] = KIND_MPTCP;
        fixed[1] = data.len() as u8;
        check_mptcp(&fixed[..data.len()]);
    }
}

fn check_mptcp(raw: &[u8]) {
    if let Ok(opt) = MptcpOption::parse(raw) {
        let mut out = [0u8; 40];
        let n = opt.emit(&mut out).expect("a parsed MPTCP option re-emits");
        assert_eq!(n, raw.len(), "{opt:?}");
        assert_eq!(MptcpOption::parse(&out[..n]), Ok(opt));
    }
}

const C1: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const C2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 2));
const S1: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1));
const S2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 1));
const PORT: u16 = 5201;

/// Whole packets into a listening stack and a connecting one. The input is a sequence of
/// records: a 2-byte big-endian length with its top bit meaning "leave the checksums as
/// they are", then the packet.
pub fn stack(data: &[u8]) {
    let cfg = StackConfig {
        addrs: vec![S1],
        ..StackConfig::default()
    };
    let mut listener = Stack::new(cfg, KeyGen::from_seed(1));
    let _ = listener.listen(PORT);
    let mut client = Stack::new(
        StackConfig {
            addrs: vec![C1],
            ..StackConfig::default()
        },
        KeyGen::from_seed(2),
    );
    let now = Instant::from_millis(1);
    let _ = client.connect(now, SocketAddr::new(S1, PORT), Some(C1), None);
    let mut buf = vec![0u8; 65536];
    while client.poll_transmit(now, &mut buf).is_some() {}
    let mut rest = data;
    let mut t = now;
    let mut pkt = Vec::new();
    while rest.len() >= 2 {
        let word = u16::from_be_bytes([rest[0], rest[1]]);
        let raw = word & 0x8000 != 0;
        let len = usize::from(word & 0x7fff).min(rest.len() - 2);
        pkt.clear();
        pkt.extend_from_slice(&rest[2..2 + len]);
        rest = &rest[2 + len..];
        if !raw {
            fix_checksums(&mut pkt);
        }
        listener.handle_packet(t, &pkt);
        client.handle_packet(t, &pkt);
        while listener.poll_transmit(t, &mut buf).is_some() {}
        while client.poll_transmit(t, &mut buf).is_some() {}
        t += Duration::from_millis(10);
        listener.handle_timeout(t);
        client.handle_timeout(t);
    }
}

/// Recompute the IPv4 header checksum and the TCP checksum of `p` where the headers are
/// complete enough to locate them; leave anything else alone.
pub fn fix_checksums(p: &mut [u8]) {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return;
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
    if ihl < 20 || p.len() < ihl || total < ihl || total > p.len() {
        return;
    }
    p[10] = 0;
    p[11] = 0;
    let c = !fold(sum(&p[..ihl], 0));
    p[10..12].copy_from_slice(&c.to_be_bytes());
    if p[9] != 6 || total < ihl + 20 {
        return;
    }
    p[ihl + 16] = 0;
    p[ihl + 17] = 0;
    let mut s = sum(&p[12..20], 0);
    s += 6;
    s += (total - ihl) as u32;
    let c = !fold(sum(&p[ihl..total], s));
    p[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
}

fn sum(b: &[u8], mut acc: u32) -> u32 {
    for c in b.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        acc += u32::from(w);
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// A reader over the fuzz input; runs out into zeros.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Two stacks with one MPTCP connection over two paths, and the packets in flight.
struct Live {
    client: Stack,
    server: Stack,
    c: ConnId,
    s: Option<ConnId>,
    now: Instant,
    /// (to the server?, packet)
    wire: VecDeque<(bool, Vec<u8>)>,
    /// The newest real packet each way, to forge from.
    last_up: Option<Vec<u8>>,
    last_down: Option<Vec<u8>>,
    buf: Vec<u8>,
}

impl Live {
    fn new() -> Live {
        let mk = |addrs: Vec<IpAddr>, seed| {
            Stack::new(
                StackConfig {
                    addrs,
                    ..StackConfig::default()
                },
                KeyGen::from_seed(seed),
            )
        };
        let mut server = mk(vec![S1, S2], 11);
        let _ = server.listen(PORT);
        let mut client = mk(vec![C1, C2], 12);
        let now = Instant::from_millis(1);
        let c = client
            .connect(now, SocketAddr::new(S1, PORT), Some(C1), None)
            .expect("connect in the fuzz harness");
        let mut l = Live {
            client,
            server,
            c,
            s: None,
            now,
            wire: VecDeque::new(),
            last_up: None,
            last_down: None,
            buf: vec![0u8; 65536],
        };
        l.pump(64);
        let now = l.now;
        let _ = l.client.open_subflow(
            now,
            c,
            SocketAddr::new(C2, 0),
            SocketAddr::new(S2, PORT),
            false,
        );
        let _ = l.client.send(c, &[0x5a; 3000]);
        l.pump(64);
        if let Some(s) = l.s {
            let _ = l.server.send(s, &[0xa5; 3000]);
        }
        l.pump(64);
        l
    }

    /// Collect what both stacks send, then deliver up to `n` packets in order.
    fn pump(&mut self, n: usize) {
        for _ in 0..n {
            self.collect();
            let Some((up, p)) = self.wire.pop_front() else {
                break;
            };
            self.deliver(up, &p);
        }
        self.collect();
    }

    fn collect(&mut self) {
        let now = self.now;
        while let Some(len) = self.client.poll_transmit(now, &mut self.buf) {
            let p = self.buf[..len].to_vec();
            self.last_up = Some(p.clone());
            if self.wire.len() < 4096 {
                self.wire.push_back((true, p));
            }
        }
        while let Some(len) = self.server.poll_transmit(now, &mut self.buf) {
            let p = self.buf[..len].to_vec();
            self.last_down = Some(p.clone());
            if self.wire.len() < 4096 {
                self.wire.push_back((false, p));
            }
        }
        if self.s.is_none() {
            self.s = self.server.accept(PORT);
        }
    }

    fn deliver(&mut self, up: bool, p: &[u8]) {
        let now = self.now;
        if up {
            self.server.handle_packet(now, p);
        } else {
            self.client.handle_packet(now, p);
        }
    }

    /// A segment forged from the newest real packet of one direction.
    fn forge(&mut self, up: bool, inp: &mut Input) -> Option<Vec<u8>> {
        let tpl = if up { &self.last_up } else { &self.last_down };
        let tpl = tpl.as_ref()?;
        if tpl.len() < 40 || tpl[0] != 0x45 || tpl[9] != 6 {
            return None;
        }
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let (seq, ack) = (be32(&tpl[24..28]), be32(&tpl[28..32]));
        let mode = inp.byte();
        // sequence offsets: mostly small (near the edges), sometimes anything
        let delta = |inp: &mut Input, wide: bool| -> u32 {
            if wide {
                inp.u32()
            } else {
                i32::from(inp.u16() as i16) as u32
            }
        };
        let seq = seq.wrapping_add(delta(inp, mode & 1 != 0));
        let ack = ack.wrapping_add(delta(inp, mode & 2 != 0));
        let flags = if mode & 4 != 0 { inp.byte() } else { 0x10 };
        let window = if mode & 8 != 0 {
            inp.u16()
        } else {
            u16::from_be_bytes([tpl[34], tpl[35]])
        };
        let olen = usize::from(inp.byte() % 41);
        let mut opts = inp.bytes(olen).to_vec();
        if mode & 16 != 0 && opts.len() >= 4 {
            // steer towards a well-formed MPTCP option
            opts[0] = KIND_MPTCP;
            opts[1] = opts.len() as u8;
        }
        while opts.len() % 4 != 0 {
            opts.push(1);
        }
        let plen = if mode & 32 != 0 {
            usize::from(inp.u16() % 1500)
        } else {
            0
        };
        let fill = inp.byte();
        let total = 40 + opts.len() + plen;
        let mut p = vec![0u8; total];
        p[..20].copy_from_slice(&tpl[..20]);
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[20..24].copy_from_slice(&tpl[20..24]);
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[28..32].copy_from_slice(&ack.to_be_bytes());
        p[32] = (((20 + opts.len()) / 4) as u8) << 4;
        p[33] = flags;
        p[34..36].copy_from_slice(&window.to_be_bytes());
        p[40..40 + opts.len()].copy_from_slice(&opts);
        p[40 + opts.len()..].fill(fill);
        fix_checksums(&mut p);
        Some(p)
    }

    fn app(&mut self, inp: &mut Input) {
        let what = inp.byte();
        let n = usize::from(inp.u16() % 20_000);
        let data = [what; 1024];
        let mut left = n;
        let (stack, id) = if what & 1 == 0 {
            (&mut self.client, Some(self.c))
        } else {
            (&mut self.server, self.s)
        };
        let Some(id) = id else { return };
        while left > 0 {
            match stack.send(id, &data[..left.min(data.len())]) {
                Ok(0) | Err(_) => break,
                Ok(k) => left -= k,
            }
        }
        if what & 2 != 0 {
            let _ = stack.shutdown(self.now, id);
        }
    }

    fn read_all(&mut self) {
        let mut b = [0u8; 8192];
        while matches!(self.client.recv(self.c, &mut b), Ok(n) if n > 0) {}
        if let Some(s) = self.s {
            while matches!(self.server.recv(s, &mut b), Ok(n) if n > 0) {}
        }
    }
}

/// The state [`established`] starts from: (MPTCP subflows established on the client, bytes
/// the server holds for its application). The harness is only as good as this start: the
/// smoke test checks it is a live multi-subflow connection with data buffered.
pub fn established_start() -> (usize, usize) {
    let l = Live::new();
    let subflows = l
        .client
        .connection(l.c)
        .map_or(0, |c| c.subflows().iter().filter(|s| s.established).count());
    let readable =
        l.s.and_then(|s| l.server.connection(s))
            .map_or(0, |c| c.readable());
    (subflows, readable)
}

/// A live MPTCP connection under forged segments, application activity, time, loss and
/// reordering, driven by the input. Nothing may panic.
pub fn established(data: &[u8]) {
    let mut l = Live::new();
    let mut inp = Input(data);
    let mut ops = 0;
    while !inp.is_empty() && ops < 256 {
        ops += 1;
        match inp.byte() % 8 {
            0 | 1 => {
                let up = inp.byte() & 1 == 0;
                if let Some(p) = l.forge(up, &mut inp) {
                    l.deliver(up, &p);
                }
                l.collect();
            }
            2 => l.app(&mut inp),
            3 => l.read_all(),
            4 => {
                l.now += Duration::from_millis(u64::from(inp.byte()) * 20);
                let now = l.now;
                l.client.handle_timeout(now);
                l.server.handle_timeout(now);
                l.collect();
            }
            5 => {
                let n = usize::from(inp.byte());
                l.pump(n);
            }
            6 => {
                // lose or reorder one packet in flight
                let i = usize::from(inp.byte());
                if !l.wire.is_empty() {
                    let i = i % l.wire.len();
                    if let Some(p) = l.wire.remove(i) {
                        if inp.byte() & 1 == 0 {
                            l.wire.push_back(p);
                        }
                    }
                }
            }
            _ => {
                // a real packet delivered twice, or with one byte flipped (checksums fixed)
                if let Some((up, mut p)) = l.wire.front().cloned() {
                    let at = usize::from(inp.u16()) % p.len().max(1);
                    let x = inp.byte();
                    if let Some(b) = p.get_mut(at) {
                        *b ^= x;
                    }
                    fix_checksums(&mut p);
                    l.deliver(up, &p);
                }
            }
        }
    }
    // let whatever is left run its course
    for _ in 0..8 {
        l.pump(512);
        l.read_all();
        l.now += Duration::from_millis(500);
        let now = l.now;
        l.client.handle_timeout(now);
        l.server.handle_timeout(now);
    }
}
