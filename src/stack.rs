//! The sans-IO stack: demultiplexes packets to connections and listeners.
//!
//! Inputs: `handle_packet(now, packet)`, `handle_timeout(now)` and the application calls
//! (`connect`, `listen`, `send`, `recv`, `shutdown`, `close`). Outputs: `poll_transmit(now,
//! buf)` writes one IP packet into the caller's buffer, `poll_timeout()` says when to call
//! `handle_timeout`, `poll_event()` reports connection events. Call order per wake-up:
//! handle every received packet, `handle_timeout` if due, then `poll_transmit` until it
//! returns `None`, then sleep until the next packet or `poll_timeout()`.

use crate::crypto::KeyGen;
use crate::listen::{CookieJar, HalfOpen, HalfOpenTable, SynAck, SynCookies};
use crate::mptcp::{
    emit, ConnConfig, ConnError, ConnEvent, ConnInfo, Connection, EndpointEvent, Mib, OptBuf,
};
pub use crate::mptcp::{TxOffload, TxPacket};
use crate::tcp::{self, SegmentIn, SegmentOut, TcpOptions};
use crate::time::Instant;
use crate::wire::mptcp::{cap_flags, rst_reason, MpCapable, MpJoin, MptcpOption};
use crate::wire::tcp::TcpPacket;
use crate::wire::{ip, tcp_opt};
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::collections::{HashMap, VecDeque};

/// A connection handle. Stale handles (of a connection since removed) are detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    idx: u32,
    gen: u32,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.idx, self.gen)
    }
}

/// Errors of the application-facing calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackError {
    /// The handle names no live connection.
    InvalidHandle,
    /// No local address of the right family (or the given one is not ours).
    NoAddress,
    /// The port is already in use by a listener.
    AddrInUse,
    /// No free ephemeral port.
    NoPorts,
    /// Nothing to read or no room to write now.
    WouldBlock,
    /// Not connected yet.
    NotConnected,
    /// The connection ended; with the reason when it was not clean.
    Closed(Option<ConnError>),
    /// The sending direction was shut down.
    Shutdown,
    /// Invalid argument.
    InvalidInput,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StackError::InvalidHandle => write!(f, "invalid connection handle"),
            StackError::NoAddress => write!(f, "no usable local address"),
            StackError::AddrInUse => write!(f, "address in use"),
            StackError::NoPorts => write!(f, "no free ephemeral port"),
            StackError::WouldBlock => write!(f, "operation would block"),
            StackError::NotConnected => write!(f, "not connected"),
            StackError::Closed(None) => write!(f, "connection closed"),
            StackError::Closed(Some(e)) => write!(f, "connection closed: {e}"),
            StackError::Shutdown => write!(f, "sending direction shut down"),
            StackError::InvalidInput => write!(f, "invalid argument"),
        }
    }
}

impl std::error::Error for StackError {}

/// Errors of the subflow operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubflowError {
    /// The connection handle is stale.
    InvalidHandle,
    /// No subflow with that id.
    UnknownId,
    /// No free ephemeral port.
    NoPorts,
    /// The connection refused to open it.
    Open(crate::mptcp::OpenError),
}

impl fmt::Display for SubflowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubflowError::InvalidHandle => write!(f, "invalid connection handle"),
            SubflowError::UnknownId => write!(f, "no subflow with that id"),
            SubflowError::NoPorts => write!(f, "no free ephemeral port"),
            SubflowError::Open(e) => write!(f, "cannot open subflow: {e}"),
        }
    }
}

impl std::error::Error for SubflowError {}

/// The window field of a listener's SYN/ACKs (the connection-level receive window, as the
/// first segment of `Connection::accept` would advertise it).
fn synack_window(l: Option<&Listener>) -> u16 {
    l.map_or(65535, |l| l.cfg.recv_buffer.min(65535) as u16)
}

/// Stack-wide settings.
#[derive(Clone, Debug)]
pub struct StackConfig {
    /// Our addresses.
    pub addrs: Vec<IpAddr>,
    /// Defaults for new connections.
    pub conn: ConnConfig,
    /// Most established connections waiting in a listener's accept queue (half-open ones
    /// do not count: see `max_half_open`).
    pub backlog: usize,
    /// Most half-open (SYN-RECEIVED) connection requests kept, all listeners together
    /// (about 150 bytes each; Linux's `tcp_max_syn_backlog`). See `crate::listen`.
    pub max_half_open: usize,
    /// SYN/ACK retransmissions of a half-open request before it is forgotten (Linux's
    /// `tcp_synack_retries`): with the default RTO of 1 s doubling, 5 gives 63 s.
    pub synack_retries: u8,
    /// When SYNs are answered with SYN cookies instead of half-open state.
    pub syn_cookies: SynCookies,
    /// Ephemeral port range.
    pub ephemeral: (u16, u16),
    /// MTU of the link each address is on (see `Stack::set_mtu`); others use
    /// `mptcp::DEFAULT_MTU` (1500).
    pub link_mtus: Vec<(IpAddr, u16)>,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            addrs: Vec::new(),
            conn: ConnConfig::default(),
            backlog: 128,
            max_half_open: 1024,
            synack_retries: 5,
            syn_cookies: SynCookies::WhenFull,
            ephemeral: (32768, 60999),
            link_mtus: Vec::new(),
        }
    }
}

#[derive(Debug)]
struct Slot {
    gen: u32,
    conn: Option<Connection>,
    /// The application dropped its handle: reap when closed.
    released: bool,
    /// Waiting in this listener's queue.
    listener: Option<u16>,
}

#[derive(Debug)]
struct Listener {
    cfg: ConnConfig,
    queue: VecDeque<ConnId>,
}

#[derive(Debug)]
struct PendingRst {
    local: SocketAddr,
    remote: SocketAddr,
    seg: SegmentOut,
    mptcp_reason: Option<u8>,
}

/// The stack.
#[derive(Debug)]
pub struct Stack {
    cfg: StackConfig,
    keygen: KeyGen,
    mib: Mib,
    slots: Vec<Slot>,
    free: Vec<u32>,
    tuples: HashMap<(SocketAddr, SocketAddr), (u32, usize)>,
    tokens: HashMap<u32, u32>,
    listeners: HashMap<u16, Listener>,
    next_port: u16,
    tx_cursor: usize,
    rsts: VecDeque<PendingRst>,
    half_open: HalfOpenTable,
    cookies: CookieJar,
    /// SYN/ACKs to send (from the half-open table or cookies).
    synacks: VecDeque<SynAck>,
}

const MAX_PENDING_RST: usize = 64;
/// SYN/ACKs waiting for `poll_transmit`; beyond, they are dropped (`OutDrops`): a table
/// entry's timer sends it again, a cookie's client repeats its SYN.
const MAX_PENDING_SYNACK: usize = 256;

impl Stack {
    /// A stack with these addresses; `keygen` supplies keys, nonces and ISNs.
    pub fn new(cfg: StackConfig, mut keygen: KeyGen) -> Self {
        let span = u32::from(cfg.ephemeral.1.saturating_sub(cfg.ephemeral.0)).max(1);
        let next_port = cfg.ephemeral.0 + (keygen.u32() % span) as u16;
        Stack {
            cfg,
            keygen,
            mib: Mib::default(),
            slots: Vec::new(),
            free: Vec::new(),
            tuples: HashMap::new(),
            tokens: HashMap::new(),
            listeners: HashMap::new(),
            next_port,
            tx_cursor: 0,
            rsts: VecDeque::with_capacity(MAX_PENDING_RST),
            half_open: HalfOpenTable::default(),
            cookies: CookieJar::default(),
            synacks: VecDeque::with_capacity(MAX_PENDING_SYNACK),
        }
    }

    /// The stack's configuration.
    pub fn config(&self) -> &StackConfig {
        &self.cfg
    }

    /// The counters.
    pub fn mib(&self) -> &Mib {
        &self.mib
    }

    /// Add a local address.
    pub fn add_address(&mut self, addr: IpAddr) {
        if !self.cfg.addrs.contains(&addr) {
            self.cfg.addrs.push(addr);
        }
    }

    // ----- application calls -----------------------------------------------------------

    /// Accept connections on `port` with the stack's default connection settings.
    pub fn listen(&mut self, port: u16) -> Result<(), StackError> {
        let cfg = self.cfg.conn.clone();
        self.listen_with(port, cfg)
    }

    /// Accept connections on `port` with these connection settings (`InvalidInput` for port
    /// 0 or settings naming an unknown policy: [`ConnConfig::check_policies`]).
    pub fn listen_with(&mut self, port: u16, cfg: ConnConfig) -> Result<(), StackError> {
        if port == 0 || cfg.check_policies().is_err() {
            return Err(StackError::InvalidInput);
        }
        if self.listeners.contains_key(&port) {
            return Err(StackError::AddrInUse);
        }
        self.listeners.insert(
            port,
            Listener {
                cfg,
                queue: VecDeque::new(),
            },
        );
        Ok(())
    }

    /// Half-open connection requests (SYN received, SYN/ACK sent, no third ACK yet).
    pub fn half_open_count(&self) -> usize {
        self.half_open.len()
    }

    /// Stop listening on `port` (queued connections are aborted, half-open ones forgotten).
    pub fn unlisten(&mut self, port: u16) {
        for t in self.half_open.on_port(port) {
            self.half_open.remove(&t);
        }
        if let Some(l) = self.listeners.remove(&port) {
            for id in l.queue {
                let _ = self.abort(id);
                let _ = self.close(id);
            }
        }
    }

    /// An established connection from `port`'s queue, if any.
    pub fn accept(&mut self, port: u16) -> Option<ConnId> {
        let l = self.listeners.get_mut(&port)?;
        let mut i = 0;
        while i < l.queue.len() {
            let id = l.queue[i];
            let slot = self.slots.get(id.idx as usize);
            let conn = slot
                .filter(|s| s.gen == id.gen)
                .and_then(|s| s.conn.as_ref());
            match conn {
                Some(c) if c.is_established() || c.readable() > 0 || c.at_eof() => {
                    l.queue.remove(i);
                    if let Some(s) = self.slots.get_mut(id.idx as usize) {
                        s.listener = None;
                    }
                    return Some(id);
                }
                Some(c) if c.error().is_none() => i += 1,
                _ => {
                    l.queue.remove(i);
                    if let Some(s) = self.slots.get_mut(id.idx as usize) {
                        s.released = true;
                    }
                }
            }
        }
        None
    }

    /// Open a connection to `remote` from `local` (or the first address of its family);
    /// `InvalidInput` for settings naming an unknown policy ([`ConnConfig::check_policies`]).
    pub fn connect(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        local: Option<IpAddr>,
        cfg: Option<ConnConfig>,
    ) -> Result<ConnId, StackError> {
        let local_ip = match local {
            Some(a) if self.cfg.addrs.contains(&a) && a.is_ipv4() == remote.is_ipv4() => a,
            Some(_) => return Err(StackError::NoAddress),
            None => *self
                .cfg
                .addrs
                .iter()
                .find(|a| a.is_ipv4() == remote.is_ipv4())
                .ok_or(StackError::NoAddress)?,
        };
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(StackError::InvalidInput);
        }
        let port = self.ephemeral_port(local_ip, remote)?;
        let local = SocketAddr::new(local_ip, port);
        let mut cfg = cfg.unwrap_or_else(|| self.cfg.conn.clone());
        // an unknown policy name is the caller's error, never a silent default
        cfg.check_policies().map_err(|_| StackError::InvalidInput)?;
        self.fill_local_addrs(&mut cfg);
        let key = self.unique_key();
        let iss = self.keygen.u32();
        let conn = Connection::connect(cfg, local, remote, key, iss, now);
        Ok(self.insert(conn, None))
    }

    /// Queue `data`; returns the number of bytes taken.
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, StackError> {
        let c = self.conn_mut(id)?;
        if let Some(e) = c.error() {
            return Err(StackError::Closed(Some(e)));
        }
        match c.send(data) {
            0 if data.is_empty() => Ok(0),
            0 => Err(StackError::WouldBlock),
            n => Ok(n),
        }
    }

    /// Read in-order data. `Ok(0)` means end of stream (the peer closed and all was read).
    pub fn recv(&mut self, id: ConnId, buf: &mut [u8]) -> Result<usize, StackError> {
        Ok(self.readable_conn(id)?.map_or(0, |c| c.recv(buf)))
    }

    /// Like [`recv`](Self::recv), but the data stays readable (MSG_PEEK).
    pub fn peek(&mut self, id: ConnId, buf: &mut [u8]) -> Result<usize, StackError> {
        Ok(self.readable_conn(id)?.map_or(0, |c| c.peek(buf)))
    }

    /// The connection when it has data to read; `None` at the end of the stream; its error,
    /// or `WouldBlock` when nothing is readable yet.
    fn readable_conn(&mut self, id: ConnId) -> Result<Option<&mut Connection>, StackError> {
        let c = self.conn_mut(id)?;
        if c.readable() > 0 {
            return Ok(Some(c));
        }
        if c.at_eof() {
            return Ok(None);
        }
        match c.error() {
            Some(e) => Err(StackError::Closed(Some(e))),
            None => Err(StackError::WouldBlock),
        }
    }

    /// Close the sending direction after all queued data (DATA_FIN).
    pub fn shutdown(&mut self, now: Instant, id: ConnId) -> Result<(), StackError> {
        self.conn_mut(id)?.shutdown(now);
        Ok(())
    }

    /// Abort the connection (RST / MP_FASTCLOSE).
    pub fn abort(&mut self, id: ConnId) -> Result<(), StackError> {
        self.conn_mut(id)?.abort();
        Ok(())
    }

    /// Release the handle: the connection finishes in the background (graceful if the
    /// sending direction was shut down; call `shutdown` first) and is then forgotten.
    pub fn close(&mut self, id: ConnId) -> Result<(), StackError> {
        self.slot_mut(id)?.released = true;
        Ok(())
    }

    /// The connection behind a handle.
    pub fn connection(&self, id: ConnId) -> Option<&Connection> {
        self.slots
            .get(id.idx as usize)
            .filter(|s| s.gen == id.gen)
            .and_then(|s| s.conn.as_ref())
    }

    /// Bytes of memory the stack's connections own (`Connection::memory_footprint` summed
    /// over every connection, plus the connection table).
    pub fn connections_memory(&self) -> usize {
        self.slots.capacity() * core::mem::size_of::<Slot>()
            + self
                .slots
                .iter()
                .filter_map(|s| s.conn.as_ref())
                .map(Connection::memory_footprint)
                .sum::<usize>()
    }

    /// Connection-level statistics.
    pub fn info(&self, id: ConnId) -> Result<ConnInfo, StackError> {
        self.connection(id)
            .map(|c| c.info())
            .ok_or(StackError::InvalidHandle)
    }

    /// The connection, mutably (subflow operations of the API).
    pub fn connection_mut(&mut self, id: ConnId) -> Option<&mut Connection> {
        self.conn_mut(id).ok()
    }

    /// Handles of all live connections.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.conn.is_some())
            .map(|(i, s)| ConnId {
                idx: i as u32,
                gen: s.gen,
            })
    }

    /// Next event of any connection.
    pub fn poll_event(&mut self) -> Option<(ConnId, ConnEvent)> {
        for (i, s) in self.slots.iter_mut().enumerate() {
            if let Some(ev) = s.conn.as_mut().and_then(|c| c.poll_event()) {
                return Some((
                    ConnId {
                        idx: i as u32,
                        gen: s.gen,
                    },
                    ev,
                ));
            }
        }
        None
    }

    /// Next event of one connection.
    pub fn poll_conn_event(&mut self, id: ConnId) -> Option<ConnEvent> {
        self.conn_mut(id).ok()?.poll_event()
    }

    // ----- sans-IO driver calls --------------------------------------------------------

    /// The link `addr` is on has this MTU: new subflows from `addr` use segments that fit
    /// (MSS = MTU minus IP and TCP headers, TCP options taken out of the payload). Lower MTUs
    /// on the way are learnt per subflow from ICMP (path-MTU discovery).
    pub fn set_mtu(&mut self, addr: IpAddr, mtu: u16) {
        self.cfg.link_mtus.retain(|(a, _)| *a != addr);
        self.cfg.link_mtus.push((addr, mtu));
    }

    /// Process one received IP packet. Never panics; bad packets are counted and dropped.
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        let _ = self.handle_packet_offload(now, packet, false);
    }

    /// [`Self::handle_packet`] for a packet from a device with receive offload: it may be a
    /// coalesced super-segment (several TCP segments' payload behind one header, handled as
    /// one segment), and with `csum_trusted` its TCP checksum is not verified (the device
    /// or the kernel checked it, or it is a partial checksum a local sender left for the
    /// device to complete). Returns the packet's (source, destination) addresses if it
    /// was an IP packet, so a driver learns which device a peer uses without parsing the
    /// header again.
    pub fn handle_packet_offload(
        &mut self,
        now: Instant,
        packet: &[u8],
        csum_trusted: bool,
    ) -> Option<(IpAddr, IpAddr)> {
        let info = match ip::parse(packet) {
            Ok(i) => i,
            Err(_) => {
                self.mib.InIpErrors += 1;
                return None;
            }
        };
        let addrs = (info.src, info.dst);
        self.handle_ip(now, info, packet, csum_trusted);
        Some(addrs)
    }

    fn handle_ip(&mut self, now: Instant, info: ip::IpInfo, packet: &[u8], csum_trusted: bool) {
        let icmp = if info.src.is_ipv4() {
            crate::wire::icmp::IPPROTO_ICMP
        } else {
            crate::wire::icmp::IPPROTO_ICMPV6
        };
        if info.protocol == icmp && self.cfg.addrs.contains(&info.dst) {
            self.handle_icmp(&info, packet);
            return;
        }
        if info.protocol != emit::IPPROTO_TCP || !self.cfg.addrs.contains(&info.dst) {
            self.mib.InNotForUs += 1;
            return;
        }
        let Some(tcp_bytes) = packet.get(info.header_len..info.total_len) else {
            self.mib.InIpErrors += 1;
            return;
        };
        let pkt = match TcpPacket::new_checked(tcp_bytes) {
            Ok(p) => p,
            Err(_) => {
                self.mib.InTcpErrors += 1;
                return;
            }
        };
        if !csum_trusted && !pkt.verify_checksum(info.src, info.dst) {
            self.mib.InCsumErrors += 1;
            return;
        }
        let parsed = tcp_opt::parse_all(pkt.options());
        let mut mopts: [Option<MptcpOption<'_>>; 4] = [None; 4];
        let mut n = 0;
        for raw in parsed.mptcp.iter().take(parsed.mptcp_len.min(4)) {
            match MptcpOption::parse(raw) {
                // RFC 8684 3.1: an MP_CAPABLE with the extensibility flag B set (not
                // understood) or without a supported crypto algorithm (H) MUST be ignored,
                // which means plain TCP; Linux ignores it at parse time in every form
                Ok(MptcpOption::MpCapable(m))
                    if m.flags & cap_flags::B != 0 || m.flags & cap_flags::H == 0 =>
                {
                    self.mib.MPCapableIgnored += 1;
                }
                Ok(o) => {
                    mopts[n] = Some(o);
                    n += 1;
                }
                Err(_) => self.mib.MPTcpOptionErrors += 1,
            }
        }
        let mut opts_arr: [MptcpOption<'_>; 4] = [MptcpOption::MpTcpRst {
            flags: 0,
            reason: 0,
        }; 4];
        for (i, o) in mopts.iter().take(n).enumerate() {
            if let Some(o) = o {
                opts_arr[i] = *o;
            }
        }
        let opts = &opts_arr[..n];
        let seg = SegmentIn {
            seq: pkt.seq_number(),
            ack: pkt.ack_number(),
            flags: pkt.flags(),
            window: pkt.window_len(),
            options: parsed.tcp,
            payload: pkt.payload(),
        };
        let local = SocketAddr::new(info.dst, pkt.dst_port());
        let remote = SocketAddr::new(info.src, pkt.src_port());

        if let Some(&(idx, sf)) = self.tuples.get(&(local, remote)) {
            if let Some(conn) = self
                .slots
                .get_mut(idx as usize)
                .and_then(|s| s.conn.as_mut())
            {
                // a subflow whose engine reached CLOSED (reset, aborted, timed out, or
                // LAST-ACK done) has no TCB in RFC 9293's sense: a segment to its 4-tuple
                // gets the answer for a connection that does not exist (3.10.7.1: RST), as
                // Linux answers once it has destroyed the socket
                let dead = conn
                    .subflow(sf)
                    .is_some_and(|f| f.closed.is_some() && f.tcb.state() == tcp::State::Closed);
                if !dead {
                    conn.handle_segment(now, sf, &seg, opts, &mut self.mib);
                    self.endpoint_events(now, idx);
                    return;
                }
            }
        }
        let syn = seg.flags & tcp::flags::SYN != 0;
        let ack = seg.flags & tcp::flags::ACK != 0;
        let rst = seg.flags & tcp::flags::RST != 0;
        if self.half_open.get(&(local, remote)).is_some()
            && self.half_open_input(now, local, remote, &seg, opts)
        {
            return;
        }
        if !syn && ack && !rst && self.listeners.contains_key(&local.port()) {
            let check = match self.cfg.syn_cookies {
                SynCookies::Never => false,
                SynCookies::Always => true,
                SynCookies::WhenFull => self.cookies.recently_sent(now),
            };
            if check {
                self.cookie_input(now, local, remote, &seg, opts);
                return;
            }
        }
        if syn && !ack && !rst {
            let join = opts.iter().find_map(|o| match o {
                MptcpOption::MpJoin(j @ MpJoin::Syn { .. }) => Some(*j),
                _ => None,
            });
            if let Some(j @ MpJoin::Syn { token, .. }) = join {
                self.mib.MPJoinSynRx += 1;
                let Some(&idx) = self.tokens.get(&token) else {
                    self.mib.MPJoinNoTokenFound += 1;
                    self.queue_rst(local, remote, &seg, Some(rst_reason::MPTCP_SPECIFIC));
                    return;
                };
                let iss = self.keygen.u32();
                let nonce = self.keygen.nonce();
                let res = match self
                    .slots
                    .get_mut(idx as usize)
                    .and_then(|s| s.conn.as_mut())
                {
                    Some(conn) => {
                        conn.accept_join(now, local, remote, &seg, &j, iss, nonce, &mut self.mib)
                    }
                    None => Err(rst_reason::MPTCP_SPECIFIC),
                };
                match res {
                    Ok(sf) => {
                        self.tuples.insert((local, remote), (idx, sf));
                    }
                    Err(reason) => self.queue_rst(local, remote, &seg, Some(reason)),
                }
                return;
            }
            if self.listeners.contains_key(&local.port()) {
                self.passive_open(now, local, remote, &seg, opts);
                return;
            }
        }
        self.mib.InNoSocket += 1;
        self.queue_rst(local, remote, &seg, None);
    }

    /// ICMP "fragmentation needed" / ICMPv6 "packet too big": validated against the subflow
    /// it quotes (its 4-tuple and a sequence number in flight, RFC 5927) before the
    /// subflow's segment size goes down.
    fn handle_icmp(&mut self, info: &ip::IpInfo, packet: &[u8]) {
        let tb = match crate::wire::icmp::parse_too_big(info, packet) {
            Ok(Some(tb)) => tb,
            Ok(None) => {
                self.mib.InNotForUs += 1;
                return;
            }
            Err(_) => {
                self.mib.IcmpIgnored += 1;
                return;
            }
        };
        let local = SocketAddr::new(tb.src, tb.src_port);
        let remote = SocketAddr::new(tb.dst, tb.dst_port);
        let conn = self.tuples.get(&(local, remote)).and_then(|&(idx, sf)| {
            self.slots
                .get_mut(idx as usize)
                .and_then(|s| s.conn.as_mut())
                .map(|c| (c, sf))
        });
        match conn {
            Some((c, sf)) => c.path_too_big(sf, tb.seq, tb.mtu, &mut self.mib),
            None => self.mib.IcmpIgnored += 1,
        }
    }

    /// A SYN to a listener: a half-open entry, or a SYN cookie (see `crate::listen`). No
    /// connection exists until the third ACK.
    fn passive_open(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &SegmentIn<'_>,
        opts: &[MptcpOption<'_>],
    ) {
        let backlog = self.cfg.backlog;
        let Some(l) = self.listeners.get(&local.port()) else {
            return;
        };
        if l.queue.len() >= backlog {
            self.mib.ListenOverflows += 1;
            return; // drop the SYN: the peer retries
        }
        let mptcp_listener = l.cfg.mptcp;
        let checksum = l.cfg.checksum;
        let Some(tcp_cfg) = self.listener_tcp_config(local) else {
            return;
        };
        let mpc = opts.iter().find_map(|o| match o {
            MptcpOption::MpCapable(m) if m.sender_key.is_none() => Some(*m),
            _ => None,
        });
        if mpc.is_some() {
            self.mib.MPCapableSYNRX += 1;
        } else {
            self.mib.PlainTcpSYNRX += 1;
        }
        // the flags of our SYN/ACK's MP_CAPABLE, as `Connection::options_for` sets them
        let mpc_flags = mpc
            .filter(|m| mptcp_listener && m.version == crate::mptcp::VERSION)
            .map(|m| {
                cap_flags::H
                    | if checksum || m.flags & cap_flags::A != 0 {
                        cap_flags::A
                    } else {
                        0
                    }
            });
        let full = self.half_open.len() >= self.cfg.max_half_open;
        let want_cookie = match self.cfg.syn_cookies {
            SynCookies::Always => true,
            SynCookies::Never => false,
            // an entry whose first SYN/ACK went unanswered for a whole RTO makes room for
            // the new SYN; when all are younger, the new SYN gets a cookie
            SynCookies::WhenFull => {
                full && self.half_open.oldest().is_none_or(|(_, e)| e.retries == 0)
            }
        };
        if want_cookie {
            let (cookie, syn_opts) =
                self.cookies
                    .make(&mut self.keygen, now, local, remote, seg.seq, &seg.options);
            let mut mpc_out = None;
            if let Some(flags) = mpc_flags {
                match self.cookies.key(local, remote, seg.seq, cookie) {
                    Some(key) if !self.token_in_use(crate::crypto::token_and_idsn(key).0) => {
                        mpc_out = Some((key, flags));
                    }
                    // its token is taken: answer as plain TCP (Linux: TokenFallbackInit)
                    _ => self.mib.TokenFallbackInit += 1,
                }
            }
            self.mib.SynCookiesSent += 1;
            self.queue_synack(SynAck {
                local,
                remote,
                irs: seg.seq,
                iss: cookie,
                syn_opts,
                mpc: mpc_out,
                retransmission: false,
            });
            return;
        }
        while self.half_open.len() >= self.cfg.max_half_open.max(1) {
            let Some((oldest, _)) = self.half_open.oldest() else {
                break;
            };
            self.half_open.remove(&oldest);
            self.mib.HalfOpenEvicted += 1;
        }
        if self.cfg.max_half_open == 0 {
            // no table and no cookies: refuse like a full accept queue
            self.mib.ListenOverflows += 1;
            return;
        }
        let mpc_out = mpc_flags.map(|f| (self.unique_key(), f));
        let iss = self.keygen.u32();
        let syn_opts = TcpOptions {
            sack: tcp::SackBlocks::default(),
            ..seg.options
        };
        let synack = SynAck {
            local,
            remote,
            irs: seg.seq,
            iss,
            syn_opts,
            mpc: mpc_out,
            retransmission: false,
        };
        let deadline = now + tcp_cfg.rto_initial;
        self.half_open.insert(
            (local, remote),
            HalfOpen::new(synack, seg.window, now, deadline),
        );
        self.queue_synack(synack);
    }

    /// A segment for a half-open entry. Returns false if the caller should treat it as
    /// matching nothing (a new SYN replacing the entry).
    fn half_open_input(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &SegmentIn<'_>,
        opts: &[MptcpOption<'_>],
    ) -> bool {
        let tuple = (local, remote);
        let Some(e) = self.half_open.get(&tuple) else {
            return false;
        };
        let sa = e.synack;
        let has = |f: u8| seg.flags & f != 0;
        let expected_seq = sa.irs.wrapping_add(1);
        if has(tcp::flags::RST) {
            // RFC 5961 3.2 in SYN-RECEIVED: in window is enough, we sent no data
            let off = seg.seq.wrapping_sub(expected_seq);
            if off < u32::from(synack_window(self.listeners.get(&local.port()))).max(1) {
                self.half_open.remove(&tuple);
                self.mib.HalfOpenReset += 1;
            }
            return true;
        }
        if has(tcp::flags::SYN) {
            if !has(tcp::flags::ACK) && seg.seq == sa.irs {
                // the SYN again: our SYN/ACK was lost
                self.queue_synack(SynAck {
                    retransmission: true,
                    ..sa
                });
                return true;
            }
            if !has(tcp::flags::ACK) {
                // a new SYN on this 4-tuple: forget the old request
                self.half_open.remove(&tuple);
                return false;
            }
            self.mib.HalfOpenBadAck += 1;
            return true;
        }
        if !has(tcp::flags::ACK) {
            self.mib.HalfOpenBadAck += 1;
            return true;
        }
        if seg.ack != sa.iss.wrapping_add(1) {
            self.mib.HalfOpenBadAck += 1;
            self.queue_rst(local, remote, seg, None);
            return true;
        }
        let window = synack_window(self.listeners.get(&local.port()));
        if seg.seq.wrapping_sub(expected_seq) >= u32::from(window).max(1) {
            self.mib.HalfOpenBadAck += 1;
            return true;
        }
        let Some(e) = self.half_open.remove(&tuple) else {
            return true;
        };
        let syn = SegmentIn {
            seq: sa.irs,
            ack: 0,
            flags: tcp::flags::SYN,
            window: e.syn_window,
            options: sa.syn_opts,
            payload: &[],
        };
        if !self.complete_passive(now, local, remote, seg, opts, &syn, sa, e.sent_at) {
            // accept queue full: keep the request, the client repeats its ACK when our
            // SYN/ACK is retransmitted
            self.half_open.insert(tuple, e);
        }
        true
    }

    /// An ACK matching nothing on a listening port while cookies may be outstanding.
    fn cookie_input(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &SegmentIn<'_>,
        opts: &[MptcpOption<'_>],
    ) {
        let irs = seg.seq.wrapping_sub(1);
        let cookie = seg.ack.wrapping_sub(1);
        let Some(mut syn_opts) = self.cookies.check(now, local, remote, irs, cookie) else {
            self.mib.SynCookiesFailed += 1;
            self.queue_rst(local, remote, seg, None);
            return;
        };
        let mptcp_listener = self
            .listeners
            .get(&local.port())
            .is_some_and(|l| l.cfg.mptcp);
        let ack_mpc = opts.iter().find_map(|o| match o {
            MptcpOption::MpCapable(m) if m.sender_key.is_some() && m.receiver_key.is_some() => {
                Some(*m)
            }
            _ => None,
        });
        let mut mpc = None;
        if let Some(m) = ack_mpc.filter(|_| mptcp_listener) {
            // the key we put in the SYN/ACK is derived from the cookie: the echo must match
            let key = self.cookies.key(local, remote, irs, cookie);
            let token = key.map(|k| crate::crypto::token_and_idsn(k).0);
            if key.is_none() || m.receiver_key != key || token.is_some_and(|t| self.token_in_use(t))
            {
                self.mib.SynCookiesFailed += 1;
                self.queue_rst(local, remote, seg, None);
                return;
            }
            mpc = key.map(|k| (k, m.flags));
        }
        // the timestamps negotiated are those the third ACK carries
        syn_opts.timestamps = seg.options.timestamps.map(|(tsval, _)| (tsval, 0));
        self.mib.SynCookiesRecv += 1;
        let syn = SegmentIn {
            seq: irs,
            ack: 0,
            flags: tcp::flags::SYN,
            window: seg.window,
            options: syn_opts,
            payload: &[],
        };
        let sa = SynAck {
            local,
            remote,
            irs,
            iss: cookie,
            syn_opts,
            mpc,
            retransmission: false,
        };
        // a full accept queue drops the ACK (counted in ListenOverflows)
        let _ = self.complete_passive(now, local, remote, seg, opts, &syn, sa, None);
    }

    /// Creates the connection of a validated third ACK and queues it for `accept`; false
    /// (ACK dropped, `ListenOverflows`) if the accept queue is full or the listener gone.
    #[allow(clippy::too_many_arguments)]
    fn complete_passive(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        ack: &SegmentIn<'_>,
        opts: &[MptcpOption<'_>],
        syn: &SegmentIn<'_>,
        sa: SynAck,
        sent_at: Option<Instant>,
    ) -> bool {
        let port = local.port();
        let Some(l) = self.listeners.get(&port) else {
            return false;
        };
        if l.queue.len() >= self.cfg.backlog {
            self.mib.ListenOverflows += 1;
            return false;
        }
        let window = synack_window(Some(l));
        let mut cfg = l.cfg.clone();
        self.fill_local_addrs(&mut cfg);
        let mpc = sa.mpc.map(|(_, flags)| MpCapable {
            version: crate::mptcp::VERSION,
            flags,
            sender_key: None,
            receiver_key: None,
            data_len: None,
            checksum: None,
        });
        // without MP_CAPABLE the key only names the connection locally
        let key = match sa.mpc {
            Some((k, _)) => k,
            None => self.unique_key(),
        };
        let conn = Connection::accept_answered(
            cfg,
            local,
            remote,
            syn,
            mpc.as_ref(),
            key,
            sa.iss,
            now,
            sent_at,
            window,
        );
        let id = self.insert(conn, Some(port));
        if let Some(c) = self.slots[id.idx as usize].conn.as_mut() {
            c.handle_segment(now, 0, ack, opts, &mut self.mib);
        }
        self.endpoint_events(now, id.idx);
        if let Some(l) = self.listeners.get_mut(&port) {
            l.queue.push_back(id);
        }
        true
    }

    fn queue_synack(&mut self, sa: SynAck) {
        if self.synacks.len() >= MAX_PENDING_SYNACK {
            self.mib.OutDrops += 1;
            return;
        }
        self.synacks.push_back(sa);
    }

    /// The TCP configuration of a subflow accepted on `local` (as `Connection::accept`
    /// derives it: the listener's, MSS bounded by the link MTU).
    fn listener_tcp_config(&self, local: SocketAddr) -> Option<tcp::Config> {
        let l = self.listeners.get(&local.port())?;
        let mtu = l
            .cfg
            .link_mtus
            .iter()
            .chain(self.cfg.link_mtus.iter())
            .find(|(a, _)| *a == local.ip())
            .map_or(crate::mptcp::DEFAULT_MTU, |(_, m)| *m);
        let mut t = l.cfg.tcp.clone();
        t.mss = t.mss.min(crate::mptcp::mss_for_mtu(local.ip(), mtu));
        Some(t)
    }

    fn emit_synack(&mut self, now: Instant, sa: &SynAck, buf: &mut [u8]) -> Option<usize> {
        let tcp_cfg = self.listener_tcp_config(sa.local)?;
        let l = self.listeners.get(&sa.local.port())?;
        let mut seg = tcp::syn_ack_for(
            &tcp_cfg,
            sa.irs,
            &sa.syn_opts,
            sa.iss,
            now,
            synack_window(Some(l)),
        );
        seg.retransmission = sa.retransmission;
        let mut opts = OptBuf::default();
        if let Some((key, flags)) = sa.mpc {
            opts.push(MptcpOption::MpCapable(MpCapable {
                version: crate::mptcp::VERSION,
                flags,
                sender_key: Some(key),
                receiver_key: None,
                data_len: None,
                checksum: None,
            }));
        }
        match emit::emit_segment(
            buf,
            sa.local,
            sa.remote,
            &seg,
            &mut opts,
            l.cfg.tos,
            l.cfg.ttl,
            |_| {},
        ) {
            Ok(n) => Some(n),
            Err(_) => {
                self.mib.OutDrops += 1;
                None
            }
        }
    }

    /// SYN/ACK retransmissions and expiry of half-open entries.
    fn half_open_timers(&mut self, now: Instant) {
        while let Some(t) = self.half_open.pop_due(now) {
            let retries = self.half_open.get(&t).map_or(0, |e| e.retries);
            let Some(tcp_cfg) = self.listener_tcp_config(t.0) else {
                self.half_open.remove(&t);
                continue;
            };
            if retries >= self.cfg.synack_retries {
                self.half_open.remove(&t);
                self.mib.HalfOpenTimedOut += 1;
                continue;
            }
            let rto = tcp_cfg
                .rto_initial
                .saturating_mul(1u32 << (u32::from(retries) + 1).min(16))
                .min(tcp_cfg.rto_max.max(tcp_cfg.rto_initial));
            if let Some(sa) = self.half_open.rearm(&t, now + rto) {
                self.mib.SynAckRetrans += 1;
                self.queue_synack(sa);
            }
        }
    }

    /// The token is a connection's or a half-open request's.
    fn token_in_use(&self, token: u32) -> bool {
        self.tokens.contains_key(&token) || self.half_open.has_token(token)
    }

    /// Write the next packet to send into `buf` (at least 1500 bytes; 65535 allows
    /// super-segments); returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        self.poll_transmit_offload(now, buf, &TxOffload::default())
            .map(|p| p.len)
    }

    /// [`Self::poll_transmit`] for a device that can split super-segments (TSO) and/or
    /// complete TCP checksums, as `off` says: new data may leave as one packet of up to
    /// `off.tso_bytes` payload whose TCP options (DSS mapping included) hold for every
    /// segment it is split into, and checksums may be left partial. The result says what
    /// the device must do with the packet (`buf` should then be 64 KiB).
    pub fn poll_transmit_offload(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        off: &TxOffload,
    ) -> Option<TxPacket> {
        let tso = if buf.len() >= usize::from(u16::MAX) {
            *off
        } else {
            TxOffload {
                tso_bytes: 0,
                ..*off
            }
        };
        let off = &tso;
        while let Some(r) = self.rsts.pop_front() {
            let mut opts = OptBuf::default();
            if let Some(reason) = r.mptcp_reason {
                opts.push(MptcpOption::MpTcpRst { flags: 0, reason });
                self.mib.MPRstTx += 1;
            }
            match emit::emit_segment(buf, r.local, r.remote, &r.seg, &mut opts, 0, 64, |_| {}) {
                Ok(n) => {
                    self.mib.OutRstNoSocket += 1;
                    return Some(TxPacket::plain(n).from_to(r.local.ip(), r.remote.ip()));
                }
                Err(_) => self.mib.OutDrops += 1,
            }
        }
        while let Some(sa) = self.synacks.pop_front() {
            if let Some(n) = self.emit_synack(now, &sa, buf) {
                return Some(TxPacket::plain(n).from_to(sa.local.ip(), sa.remote.ip()));
            }
        }
        let n = self.slots.len();
        for k in 0..n {
            let i = (self.tx_cursor + k) % n;
            let Some(conn) = self.slots[i].conn.as_mut() else {
                continue;
            };
            let sent = conn.poll_transmit_offload(now, buf, off, &mut self.mib);
            self.endpoint_events(now, i as u32);
            if let Some(p) = sent {
                self.tx_cursor = i;
                return Some(p);
            }
        }
        self.reap();
        None
    }

    /// Open a subflow of connection `id` from `local` (port 0: ephemeral) to `remote`,
    /// with MP_JOIN. Returns the new subflow's id (never reused within the connection).
    pub fn open_subflow(
        &mut self,
        now: Instant,
        id: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
    ) -> Result<u32, SubflowError> {
        self.open_subflow_with(now, id, local, remote, backup, None)
    }

    /// `open_subflow` with per-subflow options applied before the SYN leaves (MSS, TOS...).
    pub fn open_subflow_with(
        &mut self,
        now: Instant,
        id: ConnId,
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
        opts: Option<crate::mptcp::SubflowOptions>,
    ) -> Result<u32, SubflowError> {
        self.conn_mut(id).map_err(|_| SubflowError::InvalidHandle)?;
        if !self.cfg.addrs.contains(&local.ip()) {
            return Err(SubflowError::Open(crate::mptcp::OpenError::BadAddress));
        }
        let port = match local.port() {
            0 => self
                .ephemeral_port(local.ip(), remote)
                .map_err(|_| SubflowError::NoPorts)?,
            p if self.tuples.contains_key(&(local, remote)) => {
                let _ = p;
                return Err(SubflowError::Open(crate::mptcp::OpenError::Exists));
            }
            p => p,
        };
        let local = SocketAddr::new(local.ip(), port);
        let iss = self.keygen.u32();
        let nonce = self.keygen.nonce();
        let conn = self.conn_mut(id).map_err(|_| SubflowError::InvalidHandle)?;
        let sf = conn
            .open_subflow(now, local, remote, backup, iss, nonce)
            .map_err(SubflowError::Open)?;
        if let Some(o) = opts {
            conn.apply_subflow_options(sf, o);
        }
        let sid = conn.subflows()[sf].id;
        self.tuples.insert((local, remote), (id.idx, sf));
        Ok(sid)
    }

    /// Change connection `id`'s limits at run time (see `Connection::set_limits`); the
    /// path manager's resulting joins are opened at once.
    pub fn set_limits(
        &mut self,
        now: Instant,
        id: ConnId,
        limits: crate::pm::Limits,
    ) -> Result<(), StackError> {
        self.conn_mut(id)?.set_limits(now, limits);
        self.endpoint_events(now, id.idx);
        Ok(())
    }

    /// Add a local endpoint or change its flags (Linux's `ip mptcp endpoint add` /
    /// `change`; `LocalAddr::announce` is `signal`, `backup` is `backup`): for every
    /// connection (`Connection::set_endpoint`: ADD_ADDR, joins from it, MP_PRIO follow) and
    /// for connections made later. The address must be one of the stack's
    /// (`StackError::NoAddress` otherwise).
    pub fn set_endpoint(
        &mut self,
        now: Instant,
        ep: crate::pm::LocalAddr,
    ) -> Result<(), StackError> {
        if !self.cfg.addrs.contains(&ep.addr) {
            return Err(StackError::NoAddress);
        }
        self.materialize_endpoints();
        match self
            .cfg
            .conn
            .local_addrs
            .iter_mut()
            .find(|l| l.addr == ep.addr)
        {
            Some(l) => *l = ep,
            None => self.cfg.conn.local_addrs.push(ep),
        }
        for l in self.listeners.values_mut() {
            match l.cfg.local_addrs.iter_mut().find(|x| x.addr == ep.addr) {
                Some(x) => *x = ep,
                None => l.cfg.local_addrs.push(ep),
            }
        }
        for i in 0..self.slots.len() {
            if let Some(c) = self.slots[i].conn.as_mut() {
                if !c.is_closed() {
                    c.set_endpoint(now, ep);
                    self.endpoint_events(now, i as u32);
                }
            }
        }
        Ok(())
    }

    /// Remove a local endpoint (Linux's `ip mptcp endpoint delete`): every connection sends
    /// REMOVE_ADDR if it announced it and closes its subflows from it
    /// (`Connection::remove_endpoint`); later connections do not use it.
    pub fn remove_endpoint(&mut self, now: Instant, addr: IpAddr) -> Result<(), StackError> {
        self.materialize_endpoints();
        self.cfg.conn.local_addrs.retain(|l| l.addr != addr);
        for l in self.listeners.values_mut() {
            l.cfg.local_addrs.retain(|x| x.addr != addr);
        }
        for i in 0..self.slots.len() {
            if let Some(c) = self.slots[i].conn.as_mut() {
                if !c.is_closed() {
                    c.remove_endpoint(now, addr);
                }
            }
        }
        Ok(())
    }

    /// An empty endpoint list means "every address of the stack" (`fill_local_addrs`);
    /// before one endpoint changes, spell that list out.
    fn materialize_endpoints(&mut self) {
        let all = self.stack_local_addrs();
        if self.cfg.conn.local_addrs.is_empty() {
            self.cfg.conn.local_addrs = all.clone();
        }
        for l in self.listeners.values_mut() {
            if l.cfg.local_addrs.is_empty() {
                l.cfg.local_addrs = all.clone();
            }
        }
    }

    /// Answer connection `idx`'s endpoint events (`Connection::poll_endpoint_event`):
    /// called after every call into a connection that may have produced one.
    fn endpoint_events(&mut self, now: Instant, idx: u32) {
        let Some(slot) = self.slots.get(idx as usize) else {
            return;
        };
        let id = ConnId { idx, gen: slot.gen };
        // bounded: a failed open is reported to the path manager, which may ask again
        for _ in 0..16 {
            let ev = match self
                .slots
                .get_mut(idx as usize)
                .and_then(|s| s.conn.as_mut())
            {
                Some(c) => c.poll_endpoint_event(),
                None => None,
            };
            match ev {
                None => break,
                Some(EndpointEvent::OpenSubflow {
                    local,
                    remote,
                    backup,
                }) => {
                    if let Err(e) = self.open_subflow(now, id, local, remote, backup) {
                        tracing::debug!(
                            "{id}: path manager subflow {local} -> {remote} not opened: {e}"
                        );
                        if let Some(c) = self
                            .slots
                            .get_mut(idx as usize)
                            .and_then(|s| s.conn.as_mut())
                        {
                            c.open_failed(now, local, remote);
                        }
                    }
                }
            }
        }
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| s.conn.as_ref())
            .filter_map(|c| c.poll_timeout())
            .chain(self.half_open.next_deadline())
            .min()
    }

    /// Run due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.half_open_timers(now);
        for i in 0..self.slots.len() {
            if let Some(conn) = self.slots[i].conn.as_mut() {
                if conn.poll_timeout().is_some_and(|t| t <= now) {
                    conn.handle_timeout(now, &mut self.mib);
                    self.endpoint_events(now, i as u32);
                }
            }
        }
        self.reap();
    }

    // ----- internals -------------------------------------------------------------------

    fn reap(&mut self) {
        // connections that died in an accept queue (reset before `accept`) leave it now
        let slots = &mut self.slots;
        for l in self.listeners.values_mut() {
            l.queue.retain(|id| {
                let Some(slot) = slots.get_mut(id.idx as usize).filter(|s| s.gen == id.gen) else {
                    return false;
                };
                let dead = match slot.conn.as_ref() {
                    None => true,
                    Some(c) => c.error().is_some() && c.readable() == 0 && !c.at_eof(),
                };
                if dead {
                    slot.released = true;
                    slot.listener = None;
                }
                !dead
            });
        }
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let done = match slot.conn.as_ref() {
                Some(c) => slot.released && c.is_reapable(),
                None => false,
            };
            if done {
                if let Some(c) = slot.conn.take() {
                    for s in c.subflows() {
                        self.tuples.remove(&(s.local, s.remote));
                    }
                    self.tokens.remove(&c.local_token());
                }
                slot.gen = slot.gen.wrapping_add(1);
                slot.released = false;
                slot.listener = None;
                self.free.push(i as u32);
            }
        }
    }

    fn insert(&mut self, conn: Connection, listener: Option<u16>) -> ConnId {
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    gen: 0,
                    conn: None,
                    released: false,
                    listener: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        for (k, s) in conn.subflows().iter().enumerate() {
            self.tuples.insert((s.local, s.remote), (idx, k));
        }
        self.tokens.insert(conn.local_token(), idx);
        let slot = &mut self.slots[idx as usize];
        slot.conn = Some(conn);
        slot.released = false;
        slot.listener = listener;
        ConnId { idx, gen: slot.gen }
    }

    fn slot_mut(&mut self, id: ConnId) -> Result<&mut Slot, StackError> {
        self.slots
            .get_mut(id.idx as usize)
            .filter(|s| s.gen == id.gen && s.conn.is_some())
            .ok_or(StackError::InvalidHandle)
    }

    fn conn_mut(&mut self, id: ConnId) -> Result<&mut Connection, StackError> {
        self.slot_mut(id)?
            .conn
            .as_mut()
            .ok_or(StackError::InvalidHandle)
    }

    /// Every address of the stack as a plain path-manager endpoint.
    fn stack_local_addrs(&self) -> Vec<crate::pm::LocalAddr> {
        self.cfg
            .addrs
            .iter()
            .map(|&addr| crate::pm::LocalAddr::device(addr))
            .collect()
    }

    /// Give the path manager the stack's addresses (unless the caller listed its own).
    fn fill_local_addrs(&self, cfg: &mut ConnConfig) {
        if cfg.local_addrs.is_empty() {
            cfg.local_addrs = self.stack_local_addrs();
        }
        for &(a, m) in &self.cfg.link_mtus {
            if !cfg.link_mtus.iter().any(|(b, _)| *b == a) {
                cfg.link_mtus.push((a, m));
            }
        }
    }

    fn unique_key(&mut self) -> u64 {
        loop {
            let key = self.keygen.key();
            let (token, _) = crate::crypto::token_and_idsn(key);
            if !self.token_in_use(token) {
                return key;
            }
        }
    }

    fn ephemeral_port(&mut self, local: IpAddr, remote: SocketAddr) -> Result<u16, StackError> {
        let (lo, hi) = self.cfg.ephemeral;
        let span = u32::from(hi.saturating_sub(lo)) + 1;
        for _ in 0..span {
            let p = self.next_port;
            self.next_port = if p >= hi { lo } else { p + 1 };
            if !self
                .tuples
                .contains_key(&(SocketAddr::new(local, p), remote))
                && !self.listeners.contains_key(&p)
            {
                return Ok(p);
            }
        }
        Err(StackError::NoPorts)
    }

    fn queue_rst(
        &mut self,
        local: SocketAddr,
        remote: SocketAddr,
        seg: &SegmentIn<'_>,
        reason: Option<u8>,
    ) {
        if self.rsts.len() >= MAX_PENDING_RST {
            self.mib.OutDrops += 1;
            return;
        }
        if let Some(out) = tcp::reset_for(seg) {
            self.rsts.push_back(PendingRst {
                local,
                remote,
                seg: out,
                mptcp_reason: reason,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn stack(addr: [u8; 4], seed: u64) -> Stack {
        Stack::new(
            StackConfig {
                addrs: vec![IpAddr::V4(Ipv4Addr::from(addr))],
                ..StackConfig::default()
            },
            KeyGen::from_seed(seed),
        )
    }

    /// Every packet the stack hands out says its addresses (`TxPacket::addrs`), and they are
    /// the header's: the driver picks the device without parsing the header again. Checked
    /// for a connection's segments (SYN, SYN/ACK, ACK, data) and a stateless RST.
    #[test]
    fn transmitted_packets_carry_the_addresses_of_their_header() {
        let (ca, sa) = ([198, 19, 0, 2], [198, 19, 0, 1]);
        let mut c = stack(ca, 1);
        let mut s = stack(sa, 2);
        s.listen(5201).expect("listen");
        let now = Instant::from_millis(1);
        let id = c
            .connect(
                now,
                SocketAddr::new(Ipv4Addr::from(sa).into(), 5201),
                None,
                None,
            )
            .expect("connect");
        let _ = c.send(id, b"hello");
        let mut buf = vec![0u8; 70_000];
        let off = TxOffload::default();
        let mut seen = 0;
        let check = |p: &TxPacket, buf: &[u8]| {
            let info = ip::parse(&buf[..p.len]).expect("an IP packet");
            assert_eq!(p.addrs(), Some((info.src, info.dst)), "{p:?}");
        };
        for _ in 0..10 {
            while let Some(p) = c.poll_transmit_offload(now, &mut buf, &off) {
                check(&p, &buf);
                seen += 1;
                s.handle_packet(now, &buf[..p.len]);
            }
            while let Some(p) = s.poll_transmit_offload(now, &mut buf, &off) {
                check(&p, &buf);
                seen += 1;
                c.handle_packet(now, &buf[..p.len]);
            }
        }
        assert!(seen >= 4, "handshake and data: {seen} packets");
        // a segment for no connection gets a RST, which says its addresses too
        let mut stray = stack([198, 19, 0, 3], 3);
        let now2 = Instant::from_millis(2);
        let _ = stray.connect(
            now2,
            SocketAddr::new(Ipv4Addr::from(sa).into(), 9),
            None,
            None,
        );
        let p = stray
            .poll_transmit_offload(now2, &mut buf, &off)
            .expect("SYN");
        s.handle_packet(now2, &buf[..p.len]);
        let rst = s.poll_transmit_offload(now2, &mut buf, &off).expect("RST");
        check(&rst, &buf);
        assert_eq!(
            rst.addrs(),
            Some((
                Ipv4Addr::from(sa).into(),
                Ipv4Addr::from([198, 19, 0, 3]).into()
            ))
        );
    }
}
