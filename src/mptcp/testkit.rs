//! Unit-test kit for the connection's parts: two `Connection`s wired back to back, without
//! a stack. Packets are parsed with the wire layer and handed to `handle_segment` as the
//! stack would (the stack's own demultiplexing is tested in `stack.rs`).

use super::*;
use crate::wire::{ip, tcp::TcpPacket, tcp_opt};
use core::net::Ipv4Addr;

pub(super) const CLIENT: [u8; 4] = [198, 19, 0, 2];
pub(super) const SERVER: [u8; 4] = [198, 19, 0, 1];

/// A packet one side sent, parsed back.
#[derive(Clone, Debug)]
pub(super) struct Packet {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub tcp: tcp::TcpOptions,
    /// The whole MPTCP options, kind and length included.
    pub mptcp: Vec<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl Packet {
    pub fn parse(buf: &[u8]) -> Packet {
        let info = ip::parse(buf).expect("an IP packet");
        let tcp = TcpPacket::new_checked(&buf[info.header_len..info.total_len]).expect("TCP");
        assert!(tcp.verify_checksum(info.src, info.dst), "TCP checksum");
        let opts = tcp_opt::parse_all(tcp.options());
        Packet {
            src: SocketAddr::new(info.src, tcp.src_port()),
            dst: SocketAddr::new(info.dst, tcp.dst_port()),
            seq: tcp.seq_number(),
            ack: tcp.ack_number(),
            flags: tcp.flags(),
            window: tcp.window_len(),
            tcp: opts.tcp,
            mptcp: opts.mptcp[..opts.mptcp_len]
                .iter()
                .map(|o| o.to_vec())
                .collect(),
            payload: tcp.payload().to_vec(),
        }
    }

    pub fn segment(&self) -> SegmentIn<'_> {
        SegmentIn {
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            options: self.tcp,
            payload: &self.payload,
        }
    }

    pub fn options(&self) -> Vec<MptcpOption<'_>> {
        self.mptcp
            .iter()
            .map(|o| MptcpOption::parse(o).expect("our own options parse"))
            .collect()
    }
}

/// One end of a pair: its connection and its counters.
pub(super) struct End {
    pub conn: Connection,
    pub mib: Mib,
}

impl End {
    /// Every packet this end has to send now.
    pub fn drain(&mut self, now: Instant) -> Vec<Packet> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Some(n) = self.conn.poll_transmit(now, &mut buf, &mut self.mib) {
            out.push(Packet::parse(&buf[..n]));
        }
        out
    }

    /// Hand `p` to the subflow it is addressed to, as the stack does.
    pub fn input(&mut self, now: Instant, p: &Packet) {
        let idx = self.conn.subflow_index(p.dst, p.src).expect("a known 4-tuple");
        let opts = p.options();
        self.conn
            .handle_segment(now, idx, &p.segment(), &opts, &mut self.mib);
    }
}

/// A client and a server connection, back to back on one path (more with `join`).
pub(super) struct Pair {
    pub c: End,
    pub s: End,
    pub now: Instant,
}

pub(super) fn v4(a: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port)
}

impl Pair {
    /// An established MPTCP connection with both ends configured by `cfg`.
    pub fn new(cfg: ConnConfig) -> Pair {
        Self::with(cfg.clone(), cfg)
    }

    /// An established connection, the client configured by `c`, the server by `s`.
    pub fn with(c: ConnConfig, s: ConnConfig) -> Pair {
        let now = Instant::from_millis(1);
        let (ca, sa) = (v4(CLIENT, 40000), v4(SERVER, 80));
        let mut client = End {
            conn: Connection::connect(c, ca, sa, 0x0123_4567_89ab_cdef, 1000, now),
            mib: Mib::default(),
        };
        let syn = client.drain(now);
        assert_eq!(syn.len(), 1, "one SYN");
        let opts = syn[0].options();
        let mpc = opts.iter().find_map(|o| match o {
            MptcpOption::MpCapable(m) => Some(*m),
            _ => None,
        });
        let server = End {
            conn: Connection::accept(
                s,
                sa,
                ca,
                &syn[0].segment(),
                mpc.as_ref(),
                0xfedc_ba98_7654_3210,
                5000,
                now,
            ),
            mib: Mib::default(),
        };
        let mut p = Pair {
            c: client,
            s: server,
            now,
        };
        p.exchange();
        assert!(p.c.conn.is_established() && p.s.conn.is_established());
        p
    }

    /// Deliver packets both ways until neither side has any (at most `rounds` rounds);
    /// returns how many moved.
    pub fn exchange(&mut self) -> usize {
        let mut moved = 0;
        for _ in 0..1000 {
            let a = self.c.drain(self.now);
            let b = self.s.drain(self.now);
            if a.is_empty() && b.is_empty() {
                break;
            }
            moved += a.len() + b.len();
            for p in &a {
                self.s.input(self.now, p);
            }
            for p in &b {
                self.c.input(self.now, p);
            }
        }
        moved
    }

    /// Move time on by `d` in steps of 10 ms, running timers and exchanging packets.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(10).min(end.saturating_duration_since(self.now));
            for e in [&mut self.c, &mut self.s] {
                if e.conn.poll_timeout().is_some_and(|t| t <= self.now) {
                    e.conn.handle_timeout(self.now, &mut e.mib);
                }
            }
            self.exchange();
        }
    }

    /// Send `data` from the client and read it all at the server.
    pub fn client_to_server(&mut self, data: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut sent = 0;
        let mut buf = vec![0u8; 65536];
        for _ in 0..10_000 {
            if sent < data.len() {
                sent += self.c.conn.send(&data[sent..]);
            }
            self.exchange();
            loop {
                let n = self.s.conn.recv(&mut buf);
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            if got.len() >= data.len() {
                break;
            }
            self.advance(Duration::from_millis(10));
        }
        got
    }
}

/// A DSS mapping for tests.
pub(super) fn mapping(dsn: u64, ssn: u32, data_len: u16) -> DssMapping {
    DssMapping {
        dsn,
        dsn64: true,
        ssn,
        data_len,
        checksum: None,
    }
}
