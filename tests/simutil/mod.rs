//! Shared harness for scenario tests on the deterministic simulated network.
#![allow(dead_code)]

use mptun::crypto::KeyGen;
use mptun::io::impair::Impairment;
use mptun::io::sim::{OffloadEndpoint, OffloadState, SimNet, Verdict};
use mptun::mptcp::ConnConfig;
use mptun::stack::{ConnId, Stack, StackConfig, StackError};
use mptun::time::{Duration, Instant};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub const CLIENT1: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
pub const SERVER1: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1));
pub const CLIENT2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 2));
pub const SERVER2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 1));
pub const PORT: u16 = 5201;

/// Two stacks joined by one link (or two with `paths = 2`).
pub struct Pair {
    pub net: SimNet,
    pub client: Stack,
    pub server: Stack,
    /// Drive the client / server through a device with TSO and checksum offload.
    pub client_offload: Option<OffloadState>,
    pub server_offload: Option<OffloadState>,
}

impl Pair {
    pub fn new(seed: u64, imp: Impairment) -> Pair {
        Self::with_configs(seed, imp, ConnConfig::default(), ConnConfig::default())
    }

    pub fn with_configs(seed: u64, imp: Impairment, ccfg: ConnConfig, scfg: ConnConfig) -> Pair {
        let _ = env_logger::builder().is_test(true).try_init();
        let mut net = SimNet::new(seed);
        net.add_host(&[CLIENT1, CLIENT2]);
        net.add_host(&[SERVER1, SERVER2]);
        net.add_link(CLIENT1, SERVER1, imp.clone(), imp);
        let client = Stack::new(
            StackConfig {
                addrs: vec![CLIENT1, CLIENT2],
                conn: ccfg,
                ..StackConfig::default()
            },
            KeyGen::from_seed(seed.wrapping_mul(3) + 1),
        );
        let mut server = Stack::new(
            StackConfig {
                addrs: vec![SERVER1, SERVER2],
                conn: scfg,
                ..StackConfig::default()
            },
            KeyGen::from_seed(seed.wrapping_mul(5) + 2),
        );
        server.listen(PORT).expect("listen");
        Pair {
            net,
            client,
            server,
            client_offload: None,
            server_offload: None,
        }
    }

    /// Two stacks joined by two independent paths: CLIENT1-SERVER1 and CLIENT2-SERVER2.
    pub fn two_paths(
        seed: u64,
        p1: Impairment,
        p2: Impairment,
        ccfg: ConnConfig,
        scfg: ConnConfig,
    ) -> Pair {
        let mut p = Self::with_configs(seed, p1, ccfg, scfg);
        p.net.add_link(CLIENT2, SERVER2, p2.clone(), p2);
        p
    }

    /// Open a subflow CLIENT2 -> SERVER2 on connection `c`.
    pub fn open_second_path(&mut self, c: ConnId, backup: bool) -> u32 {
        let now = self.now();
        self.client
            .open_subflow(
                now,
                c,
                SocketAddr::new(CLIENT2, 0),
                SocketAddr::new(SERVER2, PORT),
                backup,
            )
            .expect("open subflow")
    }

    /// Connect, wait until established, open the second path and wait for it; returns
    /// (connection, second subflow id).
    pub fn connect_and_join(&mut self) -> (ConnId, u32) {
        let c = self.connect();
        assert!(
            self.run_until(Duration::from_secs(5), |p| p
                .client
                .connection(c)
                .is_some_and(|x| x.is_established())),
            "not established"
        );
        let id = self.open_second_path(c, false);
        assert!(
            self.wait_subflow(c, id),
            "the second subflow did not come up"
        );
        (c, id)
    }

    /// Step until connection `c`'s subflow `id` is established.
    pub fn wait_subflow(&mut self, c: ConnId, id: u32) -> bool {
        self.run_until(Duration::from_secs(20), |p| {
            p.client
                .connection(c)
                .is_some_and(|x| x.subflows().iter().any(|s| s.id == id && s.established))
        })
    }

    /// One simulator event.
    pub fn step(&mut self) -> bool {
        let Pair {
            net,
            client,
            server,
            client_offload,
            server_offload,
        } = self;
        match (client_offload.as_mut(), server_offload.as_mut()) {
            (None, None) => net.step(&mut [client, server]),
            (Some(c), None) => {
                let mut ce = OffloadEndpoint {
                    stack: client,
                    state: c,
                };
                net.step(&mut [&mut ce, server])
            }
            (None, Some(s)) => {
                let mut se = OffloadEndpoint {
                    stack: server,
                    state: s,
                };
                net.step(&mut [client, &mut se])
            }
            (Some(c), Some(s)) => {
                let mut ce = OffloadEndpoint {
                    stack: client,
                    state: c,
                };
                let mut se = OffloadEndpoint {
                    stack: server,
                    state: s,
                };
                net.step(&mut [&mut ce, &mut se])
            }
        }
    }

    pub fn now(&self) -> Instant {
        self.net.now()
    }

    pub fn connect(&mut self) -> ConnId {
        let now = self.now();
        self.client
            .connect(now, SocketAddr::new(SERVER1, PORT), Some(CLIENT1), None)
            .expect("connect")
    }

    /// Step until `cond` holds or `limit` of virtual time passes; returns whether it held.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&mut Pair) -> bool) -> bool {
        let deadline = self.now() + limit;
        loop {
            if cond(self) {
                return true;
            }
            if self.now() > deadline || !self.step() {
                return cond(self);
            }
        }
    }
}

/// Progress of one bidirectional transfer.
pub struct Transfer {
    pub client: ConnId,
    pub server: Option<ConnId>,
    pub c_data: Vec<u8>,
    pub s_data: Vec<u8>,
    pub c_sent: usize,
    pub s_sent: usize,
    pub c_recv: Vec<u8>,
    pub s_recv: Vec<u8>,
    pub c_eof: bool,
    pub s_eof: bool,
    pub c_shut: bool,
    pub s_shut: bool,
}

impl Transfer {
    pub fn new(client: ConnId, c_data: Vec<u8>, s_data: Vec<u8>) -> Transfer {
        Transfer {
            client,
            server: None,
            c_data,
            s_data,
            c_sent: 0,
            s_sent: 0,
            c_recv: Vec::new(),
            s_recv: Vec::new(),
            c_eof: false,
            s_eof: false,
            c_shut: false,
            s_shut: false,
        }
    }

    /// Move data between the applications and the stacks.
    pub fn pump(&mut self, p: &mut Pair) {
        let now = p.now();
        let mut buf = [0u8; 16384];
        if self.server.is_none() {
            self.server = p.server.accept(PORT);
        }
        // client side
        let c = self.client;
        if p.client.connection(c).is_some_and(|x| x.is_established()) {
            while self.c_sent < self.c_data.len() {
                match p.client.send(c, &self.c_data[self.c_sent..]) {
                    Ok(n) => self.c_sent += n,
                    Err(StackError::WouldBlock) => break,
                    Err(e) => panic!("client send: {e}"),
                }
            }
            if self.c_sent == self.c_data.len() && !self.c_shut {
                p.client.shutdown(now, c).expect("shutdown");
                self.c_shut = true;
            }
        }
        loop {
            match p.client.recv(c, &mut buf) {
                Ok(0) => {
                    self.c_eof = true;
                    break;
                }
                Ok(n) => self.c_recv.extend_from_slice(&buf[..n]),
                Err(StackError::WouldBlock) | Err(StackError::InvalidHandle) => break,
                Err(e) => panic!("client recv: {e}"),
            }
        }
        // server side
        if let Some(s) = self.server {
            while self.s_sent < self.s_data.len() {
                match p.server.send(s, &self.s_data[self.s_sent..]) {
                    Ok(n) => self.s_sent += n,
                    Err(StackError::WouldBlock) => break,
                    Err(e) => panic!("server send: {e}"),
                }
            }
            if self.s_sent == self.s_data.len() && !self.s_shut {
                p.server.shutdown(now, s).expect("shutdown");
                self.s_shut = true;
            }
            loop {
                match p.server.recv(s, &mut buf) {
                    Ok(0) => {
                        self.s_eof = true;
                        break;
                    }
                    Ok(n) => self.s_recv.extend_from_slice(&buf[..n]),
                    Err(StackError::WouldBlock) | Err(StackError::InvalidHandle) => break,
                    Err(e) => panic!("server recv: {e}"),
                }
            }
        }
    }

    /// Both directions delivered and both connections closed cleanly.
    pub fn done(&self, p: &Pair) -> bool {
        let closed = |st: &Stack, id: Option<ConnId>| {
            id.and_then(|i| st.connection(i))
                .is_some_and(|c| c.is_closed() && c.error().is_none())
        };
        self.c_eof
            && self.s_eof
            && closed(&p.client, Some(self.client))
            && closed(&p.server, self.server)
    }

    /// Run to completion within `limit` of virtual time.
    pub fn run(&mut self, p: &mut Pair, limit: Duration) -> bool {
        p.run_until(limit, |p| {
            self.pump(p);
            self.done(p)
        })
    }

    pub fn assert_intact(&self) {
        assert_eq!(
            self.s_recv.len(),
            self.c_data.len(),
            "server received the wrong amount"
        );
        assert_eq!(
            self.c_recv.len(),
            self.s_data.len(),
            "client received the wrong amount"
        );
        assert!(self.s_recv == self.c_data, "client->server data corrupted");
        assert!(self.c_recv == self.s_data, "server->client data corrupted");
    }
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The TCP header flags of an IPv4 packet, if it is TCP.
pub fn tcp_flags(pkt: &[u8]) -> Option<u8> {
    let ihl = usize::from(pkt.first()? & 0x0f) * 4;
    if pkt.get(9) != Some(&6) {
        return None;
    }
    pkt.get(ihl + 13).copied()
}

/// The TCP payload length of an IPv4 packet.
pub fn tcp_payload_len(pkt: &[u8]) -> usize {
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    let doff = usize::from(pkt[ihl + 12] >> 4) * 4;
    total - ihl - doff
}

/// (offset in the packet, length) of every MPTCP option of an IPv4 TCP packet.
pub fn mptcp_option_spans(pkt: &[u8]) -> Vec<(usize, usize)> {
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let end = ihl + usize::from(pkt[ihl + 12] >> 4) * 4;
    let mut out = Vec::new();
    let mut i = ihl + 20;
    while i < end {
        match pkt[i] {
            0 => break,
            1 => i += 1,
            k => {
                let l = usize::from(*pkt.get(i + 1).unwrap_or(&0));
                if l < 2 || i + l > end {
                    break;
                }
                if k == 30 {
                    out.push((i, l));
                }
                i += l;
            }
        }
    }
    out
}

/// The raw MPTCP options (kind 30) of an IPv4 TCP packet.
pub fn mptcp_options(pkt: &[u8]) -> Vec<Vec<u8>> {
    mptcp_option_spans(pkt)
        .into_iter()
        .map(|(i, l)| pkt[i..i + l].to_vec())
        .collect()
}

/// Whether the packet has a DSS option with a DATA_ACK (of either size).
pub fn carries_data_ack(pkt: &[u8]) -> bool {
    mptcp_options(pkt)
        .iter()
        .any(|o| o.len() >= 4 && o[2] >> 4 == 2 && o[3] & 0x01 != 0)
}

/// (DATA_ACK, window field, DSN, data length) of the DSS of an IPv4 TCP packet. Only an
/// 8-byte DATA_ACK is returned: a 4-byte one (sent until the first 64-bit mapping arrives)
/// holds only the low 32 bits of the data-level sequence number.
pub fn dss_fields(pkt: &[u8]) -> Option<(Option<u64>, u16, Option<u64>, u16)> {
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let window = u16::from_be_bytes([pkt[ihl + 14], pkt[ihl + 15]]);
    for o in mptcp_options(pkt) {
        if o.len() < 4 || o[2] >> 4 != 2 {
            continue;
        }
        let f = o[3];
        let mut i = 4;
        let mut read = |n: usize| {
            let v = o
                .get(i..i + n)
                .map(|b| b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x)));
            i += n;
            v
        };
        let ack = match f & 0x03 {
            0x03 => read(8),
            0x01 => read(4).and(None),
            _ => None,
        };
        let (dsn, len) = if f & 0x04 != 0 {
            let dsn = read(if f & 0x08 != 0 { 8 } else { 4 });
            let _ssn = read(4);
            (dsn, read(2).unwrap_or(0) as u16)
        } else {
            (None, 0)
        };
        return Some((ack, window, dsn, len));
    }
    None
}

/// Replace every MPTCP option of an IPv4 TCP packet with NOPs and fix the TCP checksum.
pub fn strip_mptcp(pkt: &mut [u8]) {
    for (i, l) in mptcp_option_spans(pkt) {
        pkt[i..i + l].fill(1);
    }
    fix_tcp_checksum(pkt);
}

/// Recompute the TCP checksum of an IPv4 packet.
pub fn fix_tcp_checksum(pkt: &mut [u8]) {
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    pkt[ihl + 16] = 0;
    pkt[ihl + 17] = 0;
    let mut sum: u32 = 0;
    let mut add = |b: &[u8]| {
        for c in b.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            sum += u32::from(w);
        }
    };
    add(&pkt[12..20]);
    add(&[0, 6]);
    add(&((total - ihl) as u16).to_be_bytes());
    add(&pkt[ihl..total]);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    pkt[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;

pub fn verdict(drop: bool) -> Verdict {
    if drop {
        Verdict::Drop
    } else {
        Verdict::Pass
    }
}
