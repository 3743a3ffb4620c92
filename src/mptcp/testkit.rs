//! Unit-test kit for the connection's parts: two `Connection`s wired back to back, without
//! a stack. Packets are parsed with the wire layer and handed to `handle_segment` as the
//! stack would (the stack's own demultiplexing is tested in `stack.rs`).

use super::*;
use crate::wire::mptcp::MpJoin;
use crate::wire::{ip, tcp::TcpPacket, tcp_opt};
use core::net::Ipv4Addr;

pub(super) const CLIENT: [u8; 4] = [198, 19, 0, 2];
pub(super) const SERVER: [u8; 4] = [198, 19, 0, 1];
/// Second addresses of each end (for joins and announcements).
pub(super) const CLIENT2: [u8; 4] = [198, 19, 1, 2];
pub(super) const SERVER2: [u8; 4] = [198, 19, 1, 1];

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

    /// Replace the MPTCP options by `opts` (to forge or alter a segment).
    pub fn set_options(&mut self, opts: &[MptcpOption<'_>]) {
        self.mptcp = opts
            .iter()
            .map(|o| {
                let mut b = vec![0u8; o.len()];
                let n = o.emit(&mut b).expect("an option that fits");
                b.truncate(n);
                b
            })
            .collect();
    }

    /// The DSS option, if any.
    pub fn dss(&self) -> Option<Dss> {
        self.options().into_iter().find_map(|o| match o {
            MptcpOption::Dss(d) => Some(d),
            _ => None,
        })
    }

    /// The MP_CAPABLE option, if any.
    pub fn mp_capable(&self) -> Option<MpCapable> {
        self.options().into_iter().find_map(|o| match o {
            MptcpOption::MpCapable(m) => Some(m),
            _ => None,
        })
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
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
        let idx = self
            .conn
            .subflow_index(p.dst, p.src)
            .expect("a known 4-tuple");
        let opts = p.options();
        self.conn
            .handle_segment(now, idx, &p.segment(), &opts, &mut self.mib);
    }

    /// As `input`, and, as the stack does, an MP_JOIN SYN for an unknown 4-tuple goes to
    /// `accept_join` (a refused one is dropped: the stack would answer with a RST). Other
    /// packets for unknown 4-tuples are dropped. Returns whether the connection took it.
    pub fn deliver(&mut self, now: Instant, p: &Packet) -> bool {
        if self.conn.subflow_index(p.dst, p.src).is_some() {
            self.input(now, p);
            return true;
        }
        let join = p.options().into_iter().find_map(|o| match o {
            MptcpOption::MpJoin(j @ MpJoin::Syn { .. }) => Some(j),
            _ => None,
        });
        let (Some(j), true) = (join, p.has(tcp::flags::SYN) && !p.has(tcp::flags::ACK)) else {
            return false;
        };
        let n = self.conn.subflows().len() as u32;
        let (iss, nonce) = (7_000_000 + n * 1000, 0x5eed_0000 + n);
        self.conn
            .accept_join(
                now,
                p.dst,
                p.src,
                &p.segment(),
                &j,
                iss,
                nonce,
                &mut self.mib,
            )
            .is_ok()
    }

    /// A pure ACK of subflow `idx` as this end sends it now (asked for and drained; the end
    /// must have nothing else to send).
    pub fn pure_ack(&mut self, now: Instant, idx: usize) -> Packet {
        self.conn.subflows[idx].tcb.request_ack();
        let mut out = self.drain(now);
        assert!(
            out.iter().all(|p| p.payload.is_empty()),
            "only pure ACKs: {out:?}"
        );
        let me = (
            self.conn.subflows[idx].local,
            self.conn.subflows[idx].remote,
        );
        out.retain(|p| (p.src, p.dst) == me);
        out.pop().expect("an ACK")
    }

    /// Every event queued so far.
    pub fn events(&mut self) -> Vec<ConnEvent> {
        core::iter::from_fn(|| self.conn.poll_event()).collect()
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

    /// An established connection whose server has `limits` (the client the defaults).
    pub fn server_limits(limits: crate::pm::Limits) -> Pair {
        let s = ConnConfig {
            limits,
            ..ConnConfig::default()
        };
        Self::with(ConnConfig::default(), s)
    }

    /// An established connection, the client configured by `c`, the server by `s`.
    pub fn with(c: ConnConfig, s: ConnConfig) -> Pair {
        let p = Self::handshake(c, s, |_, _| true);
        assert!(p.c.conn.is_established() && p.s.conn.is_established());
        p
    }

    /// The handshake, every packet (the SYN included) passed through `filter` first (see
    /// `exchange_with`); nothing is asserted of the outcome.
    pub fn handshake(
        c: ConnConfig,
        s: ConnConfig,
        mut filter: impl FnMut(bool, &mut Packet) -> bool,
    ) -> Pair {
        let now = Instant::from_millis(1);
        let (ca, sa) = (v4(CLIENT, 40000), v4(SERVER, 80));
        let mut client = End {
            conn: Connection::connect(c, ca, sa, 0x0123_4567_89ab_cdef, 1000, now),
            mib: Mib::default(),
        };
        let mut syn = client.drain(now);
        assert_eq!(syn.len(), 1, "one SYN");
        assert!(filter(true, &mut syn[0]), "the SYN is not dropped");
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
        p.exchange_with(filter);
        p
    }

    /// Deliver packets both ways until neither side has any (at most 1000 rounds);
    /// returns how many moved.
    pub fn exchange(&mut self) -> usize {
        self.exchange_with(|_, _| true)
    }

    /// `exchange`, each packet first given to `filter(from_client, &mut packet)`, which may
    /// alter it, or drop it by returning false. Returns how many packets were sent.
    pub fn exchange_with(&mut self, mut filter: impl FnMut(bool, &mut Packet) -> bool) -> usize {
        let mut moved = 0;
        for _ in 0..1000 {
            let a = self.c.drain(self.now);
            let b = self.s.drain(self.now);
            if a.is_empty() && b.is_empty() {
                break;
            }
            moved += a.len() + b.len();
            for mut p in a {
                if filter(true, &mut p) {
                    self.s.deliver(self.now, &p);
                }
            }
            for mut p in b {
                if filter(false, &mut p) {
                    self.c.deliver(self.now, &p);
                }
            }
        }
        moved
    }

    /// Run both ends' timers that are due at `self.now`.
    pub fn run_timers(&mut self) {
        for e in [&mut self.c, &mut self.s] {
            if e.conn.poll_timeout().is_some_and(|t| t <= self.now) {
                e.conn.handle_timeout(self.now, &mut e.mib);
            }
        }
    }

    /// Join a subflow from the client's `local` to the server's `remote` as the stack does
    /// (client `open_subflow`, server `accept_join` on the MP_JOIN SYN), moving time on
    /// until both ends have it established (a join SYN is held until the client knows the
    /// server has its key). Returns (client index, server index).
    pub fn join(&mut self, local: SocketAddr, remote: SocketAddr, backup: bool) -> (usize, usize) {
        let n = self.c.conn.subflows().len() as u32;
        let ci = self
            .c
            .conn
            .open_subflow(self.now, local, remote, backup, 9_000_000 + n, 0xc0ffee + n)
            .expect("open_subflow");
        for _ in 0..300 {
            self.exchange();
            let si = self.s.conn.subflow_index(remote, local);
            if self.c.conn.subflows[ci].established
                && si.is_some_and(|i| self.s.conn.subflows[i].established)
            {
                return (ci, si.unwrap_or_default());
            }
            self.advance(Duration::from_millis(10));
        }
        panic!("the join did not complete");
    }

    /// Move time on by `d` in steps of 10 ms, running timers and exchanging packets.
    pub fn advance(&mut self, d: Duration) {
        self.advance_with(d, |_, _| true);
    }

    /// `advance`, every packet passed through `filter` (see `exchange_with`).
    pub fn advance_with(&mut self, d: Duration, mut filter: impl FnMut(bool, &mut Packet) -> bool) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(10).min(end.saturating_duration_since(self.now));
            self.run_timers();
            self.exchange_with(&mut filter);
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

/// Everything readable at `e`, read out.
pub(super) fn read_all(e: &mut End) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        let n = e.conn.recv(&mut buf);
        if n == 0 {
            return got;
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// `n` bytes of a recognisable pattern.
pub(super) fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
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
