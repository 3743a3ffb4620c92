//! The MPTCP connection (RFC 8684): handshake and fallback, DSS mapping on send and receive,
//! DATA_ACK, connection-level reassembly and window, DATA_FIN, subflows.
//!
//! A `Connection` is sans-IO: the stack hands it parsed segments for one of its subflows and
//! asks it for packets to send; it never reads a clock.

pub mod dsn;
pub mod emit;
pub mod mib;
mod multipath;
pub mod subflow;

pub use multipath::{OpenError, SubflowOptions};

use crate::crypto;
use crate::storage::ring::{RecvBuffer, SendBuffer};
use crate::tcp::{self, CloseReason, RxSink, SegmentIn, SegmentOut, TxParams};
use crate::time::{Duration, Instant};
use crate::wire::mptcp::{cap_flags, rst_reason, DataAck, Dss, DssMapping, MpCapable, MptcpOption};
use core::net::{IpAddr, SocketAddr};
use std::collections::VecDeque;

pub use emit::{TxOffload, TxPacket};
pub use mib::Mib;
pub use subflow::{JoinState, Map, MapInsert, MapList, Subflow};

/// Out-of-order ranges the connection-level receive buffer tracks: subflows interleave
/// chunks, so a dead subflow leaves a hole every other chunk until reinjection fills them.
pub const RECV_RANGES: usize = 4096;

/// Most bytes one data-level retransmission timeout queues again (Linux re-sends one
/// fragment per timeout; while nothing else is in flight the next chunk follows at once).
const DATA_RTX_CHUNK: u64 = 64 * 1024;

/// With more than one subflow carrying data, at most this share (numerator, denominator)
/// of the peer's data-level window is used beyond the DATA_ACK. Data on one subflow may
/// overtake a hole on another, and Linux keeps such out-of-order data in its connection-level
/// receive memory, charged at the skb's true size: 1.2-1.6 times the payload for packets
/// that came through a TUN device, while the window it announces assumes its measured ratio.
/// Once that memory exceeds the connection's receive buffer, Linux stops moving data from
/// its subflows, including the bytes that fill the hole, and the connection stalls for good
/// (seen against Linux 6.18 with 16 concurrent two-path connections: msk `skmem r144320
/// rb131072`, the hole's bytes at the head of a subflow's queue, DATA_ACK stuck). Half the
/// window keeps the out-of-order memory under the buffer whatever the ratio; one subflow
/// delivers in order and uses the whole window.
const MULTIPATH_WINDOW_SHARE: (u64, u64) = (1, 2);

/// How long a connection's buffers must go without activity (no segment in, nothing
/// written or read by the application) before their memory is given back (see
/// [`Connection::trim_memory`]). Long enough that a transfer in progress never pays for a
/// release and a re-growth; one timer per burst of activity.
pub const MEM_IDLE_TRIM: Duration = Duration::from_secs(1);

/// MPTCP protocol version spoken.
pub const VERSION: u8 = 1;

/// Per-connection configuration.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    /// Ask for MPTCP (false: plain TCP).
    pub mptcp: bool,
    /// Request DSS checksums (A flag).
    pub checksum: bool,
    /// Connection-level send buffer, bytes.
    pub send_buffer: usize,
    /// Connection-level receive buffer (and window), bytes.
    pub recv_buffer: usize,
    /// Subflow TCP configuration. `tcp.mss` caps the MSS; each subflow uses at most its link
    /// MTU minus headers (`link_mtus`), so the default `u16::MAX` means "from the MTU".
    pub tcp: tcp::Config,
    /// IP TOS of new subflows.
    pub tos: u8,
    /// IP TTL / hop limit.
    pub ttl: u8,
    /// Path manager spec (`fullmesh`, `ndiffports:N`, `manual`), see `crate::pm::by_name`.
    pub path_manager: String,
    /// Scheduler name, see `crate::sched::by_name`.
    pub scheduler: String,
    /// Subflow and address limits.
    pub limits: crate::pm::Limits,
    /// Local addresses the path manager may use (the stack fills this in).
    pub local_addrs: Vec<crate::pm::LocalAddr>,
    /// How long a joining subflow waits for the peer to acknowledge its third ACK.
    pub join_timeout: Duration,
    /// ADD_ADDR retransmission interval while no echo arrives (Linux's
    /// `net.mptcp.add_addr_timeout`, 120 s there; 2 s by default here).
    pub add_addr_timeout: Duration,
    /// ADD_ADDR retransmissions before giving up on an echo (Linux: 3).
    pub add_addr_retries: u8,
    /// MTU of the link each local address is on (the stack fills this in from
    /// `Stack::set_mtu`); a subflow's MSS is at most this MTU minus the IP and TCP headers.
    /// Addresses not listed use `DEFAULT_MTU`.
    pub link_mtus: Vec<(IpAddr, u16)>,
}

/// MTU assumed for a local address with no known link MTU.
pub const DEFAULT_MTU: u16 = 1500;

/// IPv4 and IPv6 minimum MTUs (RFC 791, RFC 8200).
pub const MIN_MTU_V4: u16 = 576;
pub const MIN_MTU_V6: u16 = 1280;

/// The MSS (payload without TCP options) an MTU allows for `local`'s IP version.
pub fn mss_for_mtu(local: IpAddr, mtu: u16) -> u16 {
    let (min, hdr) = if local.is_ipv4() {
        (MIN_MTU_V4, 20 + 20)
    } else {
        (MIN_MTU_V6, 40 + 20)
    };
    mtu.max(min) - hdr
}

/// The TCP configuration of a new subflow from `local`: the connection's, with the MSS
/// bounded by the link MTU.
pub fn subflow_tcp_config(cfg: &ConnConfig, local: IpAddr) -> tcp::Config {
    let mtu = cfg
        .link_mtus
        .iter()
        .find(|(a, _)| *a == local)
        .map_or(DEFAULT_MTU, |(_, m)| *m);
    let mut t = cfg.tcp.clone();
    t.mss = t.mss.min(mss_for_mtu(local, mtu));
    t
}

impl ConnConfig {
    /// Whether the path manager spec, the scheduler and the congestion controller name
    /// policies that exist (built in or registered); the message says which does not.
    /// `Stack::connect` and `Stack::listen_with` refuse a configuration that fails this.
    pub fn check_policies(&self) -> Result<(), String> {
        crate::pm::by_name(&self.path_manager)?;
        if crate::sched::by_name(&self.scheduler).is_none() {
            return Err(format!(
                "unknown scheduler {:?} (known: {})",
                self.scheduler,
                crate::sched::names().join(", ")
            ));
        }
        if crate::cc::by_name(self.tcp.congestion, 1000).is_none() {
            return Err(format!(
                "unknown congestion control {:?} (known: {})",
                self.tcp.congestion,
                crate::cc::names().join(", ")
            ));
        }
        Ok(())
    }
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            mptcp: true,
            checksum: false,
            send_buffer: 4 << 20,
            recv_buffer: 4 << 20,
            // no cap of our own: each subflow's MSS comes from its link MTU
            tcp: tcp::Config {
                mss: u16::MAX,
                ..tcp::Config::default()
            },
            tos: 0,
            ttl: 64,
            path_manager: "fullmesh".into(),
            scheduler: crate::sched::DEFAULT.into(),
            limits: crate::pm::Limits::default(),
            local_addrs: Vec::new(),
            join_timeout: Duration::from_secs(10),
            add_addr_timeout: Duration::from_secs(2),
            add_addr_retries: 6,
            link_mtus: Vec::new(),
        }
    }
}

/// Which side opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// What the connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// MP_CAPABLE handshake under way.
    Handshake,
    /// MPTCP.
    Mptcp,
    /// Plain TCP on the initial subflow.
    Fallback,
}

/// Why a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnError {
    /// The peer reset the connection (RST or MP_FASTCLOSE).
    Reset,
    /// The peer stopped answering.
    TimedOut,
    /// Connection refused (RST answering our SYN).
    Refused,
    /// Aborted locally.
    Aborted,
}

impl core::fmt::Display for ConnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConnError::Reset => "reset by the peer",
            ConnError::TimedOut => "the peer stopped answering",
            ConnError::Refused => "connection refused",
            ConnError::Aborted => "aborted locally",
        })
    }
}

/// Events for the application, drained with `Connection::poll_event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    /// The connection is established (MPTCP or fallback).
    Established,
    /// The connection fell back to plain TCP.
    Fallback,
    /// A subflow completed its handshake.
    SubflowEstablished { id: u32 },
    /// A subflow closed.
    SubflowClosed { id: u32, reason: CloseReason },
    /// The peer will send no more data (DATA_FIN or FIN in fallback).
    PeerClosed,
    /// The connection ended (cleanly when `error` is None).
    Closed { error: Option<ConnError> },
    /// The peer announced an address (ADD_ADDR).
    AddressAnnounced { addr_id: u8, addr: SocketAddr },
    /// The peer withdrew an address (REMOVE_ADDR).
    AddressRemoved { addr_id: u8 },
    /// The peer changed a subflow's priority (MP_PRIO).
    SubflowPriority { id: u32, backup: bool },
}

/// Connection-level statistics (like Linux's MPTCP_INFO).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnInfo {
    pub fallback: bool,
    pub checksum: bool,
    pub local_token: u32,
    pub remote_token: u32,
    pub subflows: u32,
    pub subflows_total: u32,
    pub write_seq: u64,
    pub snd_una: u64,
    pub rcv_nxt: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub bytes_acked: u64,
    /// Data-level bytes sent again on another subflow (reinjection).
    pub reinjected: u64,
    /// Data-level retransmission timeouts that re-sent data (data a subflow delivered but
    /// the peer did not accept at the data level, or whose DATA_ACK was lost).
    pub data_retransmits: u64,
    /// Segments retransmitted by the subflows, summed over every subflow the connection had.
    pub retransmits: u64,
}

/// One MPTCP connection.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    mode: Mode,
    cfg: ConnConfig,
    local_key: u64,
    local_token: u32,
    local_idsn: u64,
    remote_key: u64,
    remote_token: u32,
    remote_idsn: u64,
    checksum: bool,
    /// Client: the server showed it has our key (a DSS arrived). Server: keys received.
    fully_established: bool,
    /// The peer set the C flag: no joins to its initial address.
    peer_deny_join_initial: bool,

    sbuf: SendBuffer,
    snd_una: u64,
    snd_nxt: u64,
    snd_wnd_edge: u64,
    /// `snd_wnd_edge` comes from an MP_CAPABLE segment alone (the SYN/ACK, or the third
    /// ACK), no DATA_ACK yet. Linux does not count the windows of those segments in the
    /// data-level window it enforces (its listener answers the SYN before the
    /// connection-level socket exists; its `rcv_wnd_sent` starts at the first DSN and grows
    /// with DSS ACKs only), so the first DSS-carried edge replaces this one, even if
    /// smaller. Sending up to the provisional edge is safe only in order, on the initial
    /// subflow: while it is provisional, joins get no data (`subflow_room`, `fill_views`).
    /// Seen in routed MTU 9000 runs: SYN/ACK or third ACK 62-63 KiB, DSS windows 56 KiB, a
    /// join sent data between the two edges and Linux dropped it (NoDSSInWindow); again,
    /// rarer, under CPU load with joins established before the peer's first DSS.
    wnd_provisional: bool,
    /// DSN of our DATA_FIN once the application shut down its direction.
    fin_dsn: Option<u64>,
    fin_acked: bool,
    fin_timer: Option<Instant>,
    fin_backoff: u32,
    /// DSN ranges to send again on another subflow.
    reinject: VecDeque<(u64, u32)>,
    /// Data-level retransmission timer (armed while data is unacknowledged at the data
    /// level) and its backoff.
    rtx_at: Option<Instant>,
    rtx_backoff: u32,
    /// After a data-level timeout: keep re-sending from DATA_ACK while nothing is in flight
    /// and the DATA_ACK is below this DSN (the drop may have taken more than one chunk).
    rtx_recover: Option<u64>,
    /// Data-level zero-window probe timer and its backoff.
    zwp_at: Option<Instant>,
    zwp_backoff: u32,

    rbuf: RecvBuffer,
    peer_fin_dsn: Option<u64>,
    peer_closed: bool,
    /// Send 64-bit DATA_ACKs: the peer's latest mapping had a 64-bit DSN.
    ack64: bool,

    subflows: Vec<Subflow>,
    next_subflow_id: u32,
    tx_cursor: usize,
    events: VecDeque<ConnEvent>,
    events_dropped: u64,
    error: Option<ConnError>,
    closed_reported: bool,
    established_reported: bool,
    app_shutdown_write: bool,
    subflows_closing: bool,
    stats_reinjected: u64,
    stats_data_retrans: u64,
    mib_reinjections: u64,
    stats_bytes_sent: u64,
    stats_bytes_received: u64,
    /// The application wrote or read since the memory-trim timer was last armed.
    mem_dirty: bool,
    /// The highest data-level right edge we advertised (DATA_ACK + scaled window of a
    /// segment carrying a DATA_ACK): what the peer may send up to, whichever subflow it
    /// learnt it from (RFC 8684 3.3.4; Linux keeps the maximum).
    rcv_adv_edge: u64,
    /// Every mapping so far, both ways, put DSN idsn + 1 + o at offset o of the initial
    /// subflow (no other subflow carried data, nothing was sent again at the data level):
    /// the condition for falling back to TCP after a checksum failure (RFC 8684 3.7).
    tx_linear: bool,
    rx_linear: bool,
    /// A checksum failure on the only subflow: MP_FAIL (this DSN) rides on every pure ACK
    /// until the peer's infinite mapping arrives, or until the deadline (then the subflow
    /// is reset, as Linux does when its MP_FAIL goes unanswered).
    mp_fail_pending: Option<(u64, Instant)>,
    /// The peer's MP_FAIL arrived on the only subflow: the next data segment carries an
    /// infinite mapping, then the connection is plain TCP.
    infinite_map_pending: bool,
    /// The infinite mapping just left: fall back once the segment is out.
    infinite_map_sent: bool,
    /// When to give buffer memory back if nothing happens before (`MEM_IDLE_TRIM`).
    trim_at: Option<Instant>,
    pub(crate) mp: multipath::MpState,
}

impl Connection {
    /// Active open. `key` must give a token unique in the stack; `iss` is the initial
    /// sequence number of the first subflow.
    pub fn connect(
        cfg: ConnConfig,
        local: SocketAddr,
        remote: SocketAddr,
        key: u64,
        iss: u32,
        now: Instant,
    ) -> Self {
        let tcb = tcp::Tcb::connect(subflow_tcp_config(&cfg, local.ip()), iss, now);
        let mode = if cfg.mptcp {
            Mode::Handshake
        } else {
            Mode::Fallback
        };
        let mut c = Connection::new(Role::Client, mode, cfg, key);
        let mut sf = Subflow::new(c.alloc_subflow_id(), tcb, local, remote, JoinState::Initial);
        sf.tos = c.cfg.tos;
        c.subflows.push(sf);
        c
    }

    /// Passive open from a SYN. `mpc` is the MP_CAPABLE option of the SYN, if any (and if
    /// MPTCP is enabled on the listener).
    #[allow(clippy::too_many_arguments)]
    pub fn accept(
        cfg: ConnConfig,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &SegmentIn<'_>,
        mpc: Option<&MpCapable>,
        key: u64,
        iss: u32,
        now: Instant,
    ) -> Self {
        let tcb = tcp::Tcb::accept(subflow_tcp_config(&cfg, local.ip()), syn, iss, now);
        Self::accept_with(cfg, local, remote, tcb, mpc, key)
    }

    /// Passive open whose SYN/ACK the stack already sent (from its SYN queue or as a SYN
    /// cookie, see `crate::listen`): the SYN/ACK carried `window` and, when `mpc` is given,
    /// MP_CAPABLE with `key`. `sent_at`: see `tcp::Tcb::accept_answered`. The caller then
    /// hands the third ACK to `handle_segment`.
    #[allow(clippy::too_many_arguments)]
    pub fn accept_answered(
        cfg: ConnConfig,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &SegmentIn<'_>,
        mpc: Option<&MpCapable>,
        key: u64,
        iss: u32,
        now: Instant,
        sent_at: Option<Instant>,
        window: u16,
    ) -> Self {
        let tcb = tcp::Tcb::accept_answered(
            subflow_tcp_config(&cfg, local.ip()),
            syn,
            iss,
            now,
            sent_at,
            window,
        );
        Self::accept_with(cfg, local, remote, tcb, mpc, key)
    }

    fn accept_with(
        cfg: ConnConfig,
        local: SocketAddr,
        remote: SocketAddr,
        tcb: tcp::Tcb,
        mpc: Option<&MpCapable>,
        key: u64,
    ) -> Self {
        let mptcp = cfg.mptcp && mpc.is_some();
        let mode = if mptcp {
            Mode::Handshake
        } else {
            Mode::Fallback
        };
        let mut c = Connection::new(Role::Server, mode, cfg, key);
        if let Some(m) = mpc.filter(|_| mptcp) {
            c.checksum = c.cfg.checksum || m.flags & cap_flags::A != 0;
        }
        let mut sf = Subflow::new(c.alloc_subflow_id(), tcb, local, remote, JoinState::Initial);
        sf.tos = c.cfg.tos;
        c.subflows.push(sf);
        c
    }

    fn new(role: Role, mode: Mode, cfg: ConnConfig, key: u64) -> Self {
        let (local_token, local_idsn) = crypto::token_and_idsn(key);
        let start = local_idsn.wrapping_add(1);
        let sbuf = SendBuffer::new(cfg.send_buffer, start);
        // the receive buffer is re-based once the peer's key (and so its IDSN) is known
        let rbuf = RecvBuffer::with_max_ranges(cfg.recv_buffer, 1, RECV_RANGES);
        Connection {
            role,
            mode,
            checksum: cfg.checksum && mode != Mode::Fallback,
            local_key: key,
            local_token,
            local_idsn,
            remote_key: 0,
            remote_token: 0,
            remote_idsn: 0,
            fully_established: false,
            peer_deny_join_initial: false,
            sbuf,
            snd_una: start,
            snd_nxt: start,
            snd_wnd_edge: start,
            wnd_provisional: false,
            fin_dsn: None,
            fin_acked: false,
            fin_timer: None,
            fin_backoff: 0,
            reinject: VecDeque::new(),
            rtx_at: None,
            rtx_backoff: 0,
            rtx_recover: None,
            zwp_at: None,
            zwp_backoff: 0,
            rbuf,
            peer_fin_dsn: None,
            peer_closed: false,
            ack64: false,
            subflows: Vec::with_capacity(4),
            next_subflow_id: 1,
            tx_cursor: 0,
            events: VecDeque::with_capacity(16),
            events_dropped: 0,
            error: None,
            closed_reported: false,
            established_reported: false,
            app_shutdown_write: false,
            subflows_closing: false,
            stats_reinjected: 0,
            stats_data_retrans: 0,
            mib_reinjections: 0,
            stats_bytes_sent: 0,
            stats_bytes_received: 0,
            mem_dirty: false,
            rcv_adv_edge: 0,
            tx_linear: true,
            rx_linear: true,
            mp_fail_pending: None,
            infinite_map_pending: false,
            infinite_map_sent: false,
            trim_at: None,
            mp: multipath::MpState::new(&cfg),
            cfg,
        }
    }

    /// Queue an event for the application; the oldest is dropped past 256 undrained ones.
    fn push_event(&mut self, ev: ConnEvent) {
        if self.events.len() >= 256 {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(ev);
    }

    /// Events dropped because the application did not drain them.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    fn alloc_subflow_id(&mut self) -> u32 {
        let id = self.next_subflow_id;
        self.next_subflow_id += 1;
        id
    }

    // ----- accessors -------------------------------------------------------------------

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn mode(&self) -> Mode {
        self.mode
    }
    pub fn is_fallback(&self) -> bool {
        self.mode == Mode::Fallback
    }
    pub fn local_token(&self) -> u32 {
        self.local_token
    }
    pub fn local_key(&self) -> u64 {
        self.local_key
    }
    pub fn remote_key(&self) -> u64 {
        self.remote_key
    }
    pub fn subflows(&self) -> &[Subflow] {
        &self.subflows
    }
    pub fn subflow(&self, idx: usize) -> Option<&Subflow> {
        self.subflows.get(idx)
    }
    pub fn error(&self) -> Option<ConnError> {
        self.error
    }
    pub fn checksum_enabled(&self) -> bool {
        self.checksum
    }

    /// The connection is established (data may flow).
    pub fn is_established(&self) -> bool {
        self.established_reported && self.error.is_none()
    }

    /// The connection has ended: both data-level directions closed (MPTCP), or every
    /// subflow closed or in TIME-WAIT (plain TCP), or it failed.
    pub fn is_closed(&self) -> bool {
        // In MPTCP the connection is over once both DATA_FINs are acknowledged; its
        // subflows finish their own FIN exchanges in the background.
        self.error.is_some()
            || (self.mode == Mode::Mptcp && self.peer_closed && self.fin_acked)
            || (!self.subflows.is_empty()
                && self.subflows.iter().all(|s| {
                    s.closed.is_some()
                        || matches!(s.tcb.state(), tcp::State::TimeWait | tcp::State::Closed)
                }))
    }

    /// Every subflow engine is gone (TIME-WAIT expired): the stack may drop the connection.
    pub fn is_reapable(&self) -> bool {
        self.subflows
            .iter()
            .all(|s| s.tcb.state() == tcp::State::Closed)
    }

    /// Bytes the application can read now.
    pub fn readable(&self) -> usize {
        self.rbuf.readable()
    }

    /// The peer closed its direction and everything it sent has been read.
    pub fn at_eof(&self) -> bool {
        self.peer_closed && self.rbuf.readable() == 0
    }

    /// Space in the send buffer.
    pub fn send_space(&self) -> usize {
        if self.app_shutdown_write {
            0
        } else {
            self.sbuf.free()
        }
    }

    /// All data written was acknowledged at the data level (and the DATA_FIN, if sent).
    pub fn all_acked(&self) -> bool {
        if self.snd_una < self.sbuf.end() {
            return false;
        }
        match self.mode {
            // in fallback the end of our stream is the subflow's FIN (a DATA_FIN queued
            // before the fallback is never acknowledged at the data level)
            Mode::Fallback if self.app_shutdown_write => {
                self.subflows.first().is_some_and(|s| s.tcb.fin_acked())
            }
            _ => self.fin_dsn.is_none() || self.fin_acked,
        }
    }

    /// Connection-level statistics.
    pub fn info(&self) -> ConnInfo {
        ConnInfo {
            fallback: self.mode == Mode::Fallback,
            checksum: self.checksum,
            local_token: self.local_token,
            remote_token: self.remote_token,
            subflows: self.subflows.iter().filter(|s| s.closed.is_none()).count() as u32,
            subflows_total: self.subflows.len() as u32,
            write_seq: self.sbuf.end(),
            snd_una: self.snd_una,
            rcv_nxt: self.rbuf.contiguous_end(),
            bytes_sent: self.stats_bytes_sent,
            bytes_received: self.stats_bytes_received,
            bytes_acked: self.snd_una.saturating_sub(self.local_idsn.wrapping_add(1)),
            reinjected: self.stats_reinjected,
            data_retransmits: self.stats_data_retrans,
            retransmits: self
                .subflows
                .iter()
                .map(|s| s.tcb.stats().retransmits)
                .sum(),
        }
    }

    pub fn poll_event(&mut self) -> Option<ConnEvent> {
        self.events.pop_front()
    }

    // ----- application side ------------------------------------------------------------

    /// Queue data for sending; returns how much was taken (0 when the buffer is full).
    pub fn send(&mut self, data: &[u8]) -> usize {
        if self.app_shutdown_write || self.error.is_some() {
            return 0;
        }
        let n = self.sbuf.push(data);
        self.mem_dirty |= n > 0;
        if n > 0 && self.mode == Mode::Fallback {
            self.push_fallback();
        }
        n
    }

    /// Copy readable in-order data into `buf` without consuming it (MSG_PEEK); returns how
    /// many bytes.
    pub fn peek(&self, buf: &mut [u8]) -> usize {
        self.rbuf.copy_out(buf)
    }

    /// Read received data in order.
    pub fn recv(&mut self, buf: &mut [u8]) -> usize {
        let before = self.rbuf.window();
        let n = self.rbuf.read(buf);
        if n > 0 {
            self.mem_dirty = true;
            let after = self.rbuf.window();
            if after > before {
                for s in self.subflows.iter_mut().filter(|s| s.closed.is_none()) {
                    s.tcb.note_receive_space(after);
                }
                if self.mode == Mode::Mptcp {
                    self.note_data_level_space();
                }
            }
            if self.rbuf.readable() == 0 {
                for s in self.subflows.iter_mut().filter(|s| s.closed.is_none()) {
                    s.tcb.flush_delayed_ack();
                }
            }
        }
        n
    }

    /// After the application read: announce the reopened data-level window when the peer
    /// is short of it. Each subflow's own rule (`Tcb::note_receive_space`) sees only the
    /// bytes that arrived on that subflow, so with several subflows every one of them can
    /// believe the peer still has room while the data-level window is closed, and the
    /// peer then waits for its zero-window probe. The rule is Linux's
    /// (`__tcp_cleanup_rbuf`) at the data level: update when what the peer may still send
    /// is at most half the buffer and the window we can offer now is at least twice that
    /// (and at least a segment more).
    fn note_data_level_space(&mut self) {
        let now_edge = self.rbuf.contiguous_end();
        let remaining = self.rcv_adv_edge.saturating_sub(now_edge);
        let offer = u64::from(self.rbuf.window());
        let cap = self.rbuf.capacity() as u64;
        let step = u64::from(self.cfg.tcp.mss.clamp(536, 1460));
        if remaining * 2 <= cap && offer >= remaining * 2 && offer >= remaining + step {
            if let Some(b) = self.ack_subflow() {
                self.subflows[b].tcb.request_ack();
            }
        }
    }

    /// The subflow for a pure ACK that carries no data: the best usable one, else any
    /// established one.
    fn ack_subflow(&self) -> Option<usize> {
        self.best_subflow().or_else(|| {
            self.subflows
                .iter()
                .position(|s| s.established && s.closed.is_none())
        })
    }

    /// Close our sending direction after everything queued (DATA_FIN, or FIN in fallback).
    pub fn shutdown(&mut self, now: Instant) {
        if self.app_shutdown_write {
            return;
        }
        self.app_shutdown_write = true;
        match self.mode {
            Mode::Fallback => {
                self.push_fallback();
                if let Some(s) = self.subflows.first_mut() {
                    s.tcb.close();
                }
            }
            _ => {
                self.fin_dsn = Some(self.sbuf.end());
                self.maybe_arm_fin(now);
            }
        }
    }

    /// Abort: RST every subflow (MP_FASTCLOSE when MPTCP).
    pub fn abort(&mut self) {
        self.mp.fastclose = self.mode == Mode::Mptcp;
        for s in self.subflows.iter_mut() {
            if s.closed.is_none() {
                s.rst_reason = Some(rst_reason::UNSPECIFIED);
                s.tcb.abort();
            }
        }
        if self.error.is_none() {
            self.error = Some(ConnError::Aborted);
        }
    }

    // ----- receive path ----------------------------------------------------------------

    /// Process one segment that arrived on subflow `idx`; `opts` are its MPTCP options.
    pub fn handle_segment(
        &mut self,
        now: Instant,
        idx: usize,
        seg: &SegmentIn<'_>,
        opts: &[MptcpOption<'_>],
        mib: &mut Mib,
    ) {
        if idx >= self.subflows.len() {
            return;
        }
        // RFC 8684 3.3: MPTCP options count only on segments TCP accepts. A segment that
        // fails the sequence/ACK checks gets TCP's answer (challenge or duplicate ACK, RST
        // for an unacceptable ACK in SYN-RECEIVED) and nothing else: its DSS, DATA_FIN,
        // DATA_ACK, MP_CAPABLE, MP_JOIN and signals are dropped unseen.
        if !self.subflows[idx].tcb.accepts(seg) {
            if !opts.is_empty() {
                mib.OptsUnacceptable += 1;
            }
            self.tcp_input(now, idx, seg, mib);
            self.process_tcb_events(now, mib);
            return;
        }
        // a segment TCP accepted: activity (postpones giving buffer memory back)
        self.note_activity(now);
        let mut mpc = None;
        let mut dss = None;
        let mut join = None;
        let mut signals = false;
        for o in opts {
            match o {
                MptcpOption::MpCapable(m) => mpc = Some(*m),
                MptcpOption::MpJoin(j) => join = Some(*j),
                MptcpOption::AddAddr(_) | MptcpOption::RemoveAddr { .. } => signals = true,
                MptcpOption::Dss(d) => dss = Some(*d),
                MptcpOption::MpTcpRst { .. } => mib.MPRstRx += 1,
                MptcpOption::MpFastclose { key } => {
                    mib.MPFastcloseRx += 1;
                    if self.mode == Mode::Mptcp && *key == self.local_key {
                        self.fastclosed(now);
                        return;
                    }
                }
                MptcpOption::MpPrio { backup, .. } => {
                    mib.MPPrioRx += 1;
                    let sf = &mut self.subflows[idx];
                    if sf.peer_backup != *backup {
                        sf.peer_backup = *backup;
                        let id = sf.id;
                        self.push_event(ConnEvent::SubflowPriority {
                            id,
                            backup: *backup,
                        });
                    }
                }
                MptcpOption::MpFail { .. } => {
                    mib.MPFailRx += 1;
                    if seg.flags & tcp::flags::RST != 0 {
                        // with RST: the subflow closes, its data goes on elsewhere
                    } else if self.mode == Mode::Mptcp && self.can_fall_back(idx) {
                        // RFC 8684 3.7: our data failed the peer's checksum on the only
                        // subflow; answer with an infinite mapping and continue as TCP
                        self.infinite_map_pending = true;
                        self.subflows[idx].tcb.request_ack();
                    }
                    // else ignored, as Linux does: the peer resets the subflow when its
                    // MP_FAIL goes unanswered
                }
            }
        }
        let syn = seg.flags & tcp::flags::SYN != 0;
        let ack = seg.flags & tcp::flags::ACK != 0;
        let rst = seg.flags & tcp::flags::RST != 0;

        if self.mode == Mode::Handshake && idx == 0 && !rst {
            match self.role {
                Role::Client if syn && ack => match mpc {
                    Some(m) if m.sender_key.is_some() && m.version == VERSION => {
                        mib.MPCapableSYNACKRX += 1;
                        self.set_remote_key(m.sender_key.unwrap_or_default());
                        self.checksum = self.checksum || m.flags & cap_flags::A != 0;
                        self.peer_deny_join_initial = m.flags & cap_flags::C != 0;
                        self.mode = Mode::Mptcp;
                    }
                    _ => {
                        mib.MPCapableFallbackSYNACK += 1;
                        self.enter_fallback(0);
                    }
                },
                Role::Server if !syn && ack => match mpc {
                    // RFC 8684 3.1: the version is the one the SYN/ACK agreed; an MP_CAPABLE
                    // of another version is no valid one, and the connection falls back (as
                    // Linux)
                    Some(m)
                        if m.sender_key.is_some()
                            && m.receiver_key.is_some()
                            && m.version == VERSION =>
                    {
                        if m.receiver_key != Some(self.local_key) {
                            mib.MPCapableBadKey += 1;
                            self.enter_fallback(0);
                        } else {
                            mib.MPCapableACKRX += 1;
                            // no ACK of its own (as Linux): the client learns we have its key
                            // from the DSS on our next segment, and repeats MP_CAPABLE on its
                            // data until then (RFC 8684 3.1)
                            self.set_remote_key(m.sender_key.unwrap_or_default());
                            self.checksum = self.checksum || m.flags & cap_flags::A != 0;
                            self.peer_deny_join_initial = m.flags & cap_flags::C != 0;
                            self.mode = Mode::Mptcp;
                            self.fully_established = true;
                        }
                    }
                    _ => {
                        // RFC 8684 3.1: no MP_CAPABLE on the third ACK (or the first data
                        // packet) means the path dropped it: plain TCP.
                        mib.MPCapableFallbackACK += 1;
                        self.enter_fallback(0);
                    }
                },
                _ => {}
            }
        }

        // MP_JOIN handshake of additional subflows.
        if self.subflows[idx].join != JoinState::Initial
            && !self.join_input(now, idx, seg, join.as_ref(), mib)
        {
            self.process_tcb_events(now, mib);
            return;
        }

        // Client side of the initial subflow: the server has our key once it sends a DSS.
        if self.mode == Mode::Mptcp && self.role == Role::Client && idx == 0 && !syn && !rst {
            if dss.is_some() {
                self.fully_established = true;
            } else if !self.fully_established && mpc.is_none() && !seg.payload.is_empty() {
                // data without any MPTCP option before the server confirmed: middlebox
                mib.MPCapableFallbackACK += 1;
                self.enter_fallback(0);
            }
        }

        // Record the mapping carried by this segment.
        if self.mode == Mode::Mptcp && !syn {
            if let Some(m) = mpc.filter(|m| m.data_len.is_some()) {
                // MP_CAPABLE with data: implicit mapping of the first data bytes.
                let len = m.data_len.unwrap_or(0);
                let dsn = self.remote_idsn.wrapping_add(1);
                let csum_ok = !self.checksum
                    || usize::from(len) != seg.payload.len()
                    || m.checksum.is_some_and(|c| {
                        crate::wire::mptcp::dss_checksum_ok(dsn, 1, len, c, seg.payload)
                    });
                if m.checksum.is_some() != self.checksum {
                    // the subflow is reset; the segment goes on to its engine, which drops it
                    self.checksum_presence_mismatch(idx, mib);
                } else if !csum_ok {
                    mib.DataCsumErr += 1;
                } else if idx == 0 && len > 0 {
                    let map = Map {
                        off: 0,
                        dsn: self.remote_idsn.wrapping_add(1),
                        len: u32::from(len),
                    };
                    // the implicit mapping is a 64-bit one (Linux then answers with a
                    // 64-bit DATA_ACK)
                    self.ack64 = true;
                    self.record_rx_map(idx, map, mib);
                }
            }
            if let Some(d) = dss.as_ref() {
                mib.DSSRx += 1;
                if let Some(m) = d.mapping {
                    self.handle_rx_mapping(now, idx, &m, d.data_fin, seg.payload, mib);
                }
            }
            let mapped_here = mpc.is_some_and(|m| m.data_len.is_some())
                || dss.as_ref().is_some_and(|d| d.mapping.is_some());
            if !mapped_here && !rst && !seg.payload.is_empty() && self.mode == Mode::Mptcp {
                self.unmapped_data(idx, seg, mib);
            }
        }

        // TCP processing, delivering payload into the connection's reassembly buffer.
        self.tcp_input(now, idx, seg, mib);

        // DATA_ACK and the peer's window.
        if self.mode == Mode::Mptcp {
            if let Some(DataAck { ack, ack64 }) = dss.and_then(|d| d.data_ack) {
                let ack = if ack64 {
                    ack
                } else {
                    dsn::expand32(ack as u32, self.snd_una)
                };
                self.handle_data_ack(now, idx, ack, seg, mib);
            } else if mpc.is_some() && self.snd_una == self.local_idsn.wrapping_add(1) {
                // nothing acknowledged yet; the window starts at our first DSN
                self.update_window_edge(self.snd_una, idx, seg, true);
            }
        } else if self.mode == Mode::Fallback {
            // plain TCP: the subflow's acknowledgements are the data-level ones
            let acked = self.local_idsn.wrapping_add(1) + self.subflows[0].tcb.snd_una_offset();
            if acked > self.snd_una {
                self.snd_una = acked.min(self.sbuf.end());
                self.sbuf.release(self.snd_una);
            }
        }

        if signals && self.mode == Mode::Mptcp {
            self.addr_input(now, opts, mib);
        }
        self.check_peer_fin();
        self.process_tcb_events(now, mib);
        self.maybe_start_pm(now);
    }

    /// The subflow's TCP processing of `seg`, delivering payload (through the subflow's
    /// receive mappings) into the connection's reassembly buffer.
    fn tcp_input(&mut self, now: Instant, idx: usize, seg: &SegmentIn<'_>, mib: &mut Mib) {
        let before_recv = self.rbuf.contiguous_end();
        self.feed_coupling(idx);
        {
            let fallback_base = if self.mode == Mode::Fallback {
                Some(self.rbuf_stream_base())
            } else {
                None
            };
            let Connection { subflows, rbuf, .. } = self;
            let sf = &mut subflows[idx];
            let mut sink = Sink {
                maps: &sf.rx_maps,
                rbuf,
                fallback_base,
                no_map: 0,
            };
            sf.tcb.handle_segment(now, seg, &mut sink);
            mib.DSSNoMapping += sink.no_map;
            sf.rx_maps.forget_below(sf.tcb.rcv_nxt_offset());
            sf.tx_maps.forget_below(sf.tcb.snd_una_offset());
        }
        if !self.subflows[idx].csum_pending.is_empty() {
            self.verify_pending_checksums(now, idx, mib);
        }
        let got = self.rbuf.contiguous_end().wrapping_sub(before_recv);
        self.stats_bytes_received += got;
        self.subflows[idx].data_received += got;
        if got > seg.payload.len() as u64 && self.mode == Mode::Mptcp {
            // a data-level hole filled (reordering across subflows resolved): tell the peer
            // at once, its send buffer is waiting for this DATA_ACK
            self.subflows[idx].tcb.request_ack();
        }
    }

    fn rbuf_stream_base(&self) -> u64 {
        // In fallback, subflow offset 0 is the receive buffer's initial offset.
        self.remote_idsn.wrapping_add(1)
    }

    fn set_remote_key(&mut self, key: u64) {
        self.remote_key = key;
        let (token, idsn) = crypto::token_and_idsn(key);
        self.remote_token = token;
        self.remote_idsn = idsn;
        self.rbuf =
            RecvBuffer::with_max_ranges(self.cfg.recv_buffer, idsn.wrapping_add(1), RECV_RANGES);
        self.rcv_adv_edge = 0;
    }

    fn enter_fallback(&mut self, idx: usize) {
        if self.mode == Mode::Fallback {
            return;
        }
        let after_established = self.mode == Mode::Mptcp && self.established_reported;
        self.mode = Mode::Fallback;
        self.checksum = false;
        if !after_established {
            // fallback from the start: both streams map 1:1 to the data streams
            self.remote_idsn = 0;
            self.rbuf = RecvBuffer::with_max_ranges(self.cfg.recv_buffer, 1, RECV_RANGES);
            self.rcv_adv_edge = 0;
        }
        let _ = idx;
        self.push_event(ConnEvent::Fallback);
        self.push_fallback();
        if after_established && self.app_shutdown_write {
            // the end of our stream is now the subflow's FIN, after everything queued
            if let Some(sf) = self.subflows.first_mut() {
                sf.tcb.close();
            }
        }
    }

    /// In fallback, hand everything buffered to the single subflow.
    fn push_fallback(&mut self) {
        let Some(sf) = self.subflows.first_mut() else {
            return;
        };
        // subflow offset o carries DSN local_idsn + 1 + o
        let base = self.local_idsn.wrapping_add(1);
        let have = sf.tcb.send_queue_end();
        let want = self.sbuf.end() - base;
        if want > have {
            let mut more = want - have;
            while more > 0 {
                let n = more.min(u64::from(u32::MAX)) as u32;
                sf.tcb.enqueue(n);
                more -= u64::from(n);
            }
            self.snd_nxt = self.sbuf.end();
        }
    }

    /// Whether the connection can fall back to TCP on subflow `idx` (RFC 8684 3.7): it is
    /// the initial subflow and the only one, and both streams were mapped 1:1 so far, so
    /// that its sequence numbers keep meaning the same data-level bytes without options.
    fn can_fall_back(&self, idx: usize) -> bool {
        idx == 0
            && self.subflows[0].join == JoinState::Initial
            && self.subflows.len() == 1
            && self.tx_linear
            && self.rx_linear
            && self.reinject.is_empty()
    }

    /// Whether a subflow other than `idx` can carry data.
    fn other_usable(&self, idx: usize) -> bool {
        self.subflows
            .iter()
            .enumerate()
            .any(|(i, s)| i != idx && s.usable())
    }

    /// Close subflow `idx` with RST + MP_TCPRST (middlebox interference) + MP_FAIL when one
    /// is pending; its data goes on over the other subflows, if any.
    fn reset_subflow(&mut self, idx: usize) {
        self.reset_subflow_with(idx, rst_reason::MIDDLEBOX_INTERFERENCE);
    }

    /// Close subflow `idx` with RST + MP_TCPRST `reason`; its data goes on over the other
    /// subflows, if any.
    fn reset_subflow_with(&mut self, idx: usize, reason: u8) {
        let sf = &mut self.subflows[idx];
        sf.rst_reason = Some(reason);
        sf.tcb.abort();
        self.reinject_outstanding(idx);
    }

    /// Record a received mapping for delivery; false if it was refused (counted).
    fn record_rx_map(&mut self, idx: usize, map: Map, mib: &mut Mib) -> bool {
        if idx != 0 || map.dsn != self.remote_idsn.wrapping_add(1).wrapping_add(map.off) {
            self.rx_linear = false;
        }
        match self.subflows[idx].rx_maps.insert_rx(map) {
            MapInsert::Ok => true,
            MapInsert::Conflict => {
                mib.DSSNotMatching += 1;
                false
            }
            MapInsert::Full => {
                mib.DSSMapTableFull += 1;
                false
            }
        }
    }

    fn handle_rx_mapping(
        &mut self,
        now: Instant,
        idx: usize,
        m: &DssMapping,
        fin: bool,
        payload: &[u8],
        mib: &mut Mib,
    ) {
        if m.checksum.is_some() != self.checksum && self.mode == Mode::Mptcp {
            self.checksum_presence_mismatch(idx, mib);
            return;
        }
        let dsn = if m.dsn64 {
            m.dsn
        } else {
            dsn::expand32(m.dsn as u32, self.rbuf.contiguous_end())
        };
        let mut data_len = u64::from(m.data_len);
        if fin {
            mib.DataFinRx += 1;
            if data_len == 0 {
                mib.DSSInvalidMapping += 1;
                return;
            }
            // the DATA_FIN occupies the last DSN of the mapping
            let fin_dsn = dsn.wrapping_add(data_len - 1);
            // a repeat of the recorded one (a peer repeats it on every ACK until acknowledged)
            // stays plausible: only data mapped past it undoes it, and that forgets it
            if self.peer_fin_dsn != Some(fin_dsn) && !self.data_fin_plausible(fin_dsn) {
                // the whole mapping is ignored: a genuine peer sends it again
                mib.DataFinInvalid += 1;
                return;
            }
            match self.peer_fin_dsn {
                Some(f) if f == fin_dsn => {}
                Some(_) => {
                    // as Linux: the peer contradicts itself; the most recent position wins
                    // (the earlier one was not reached, or plausibility would fail)
                    mib.DSSNotMatching += 1;
                    self.peer_fin_dsn = Some(fin_dsn);
                }
                None => self.peer_fin_dsn = Some(fin_dsn),
            }
            data_len -= 1;
            if data_len == 0 {
                return; // a bare DATA_FIN carries no subflow bytes (ssn 0)
            }
        }
        if data_len == 0 && payload.is_empty() && self.mp_fail_pending.is_none() {
            // as Linux, which looks at a mapping only with the data it maps: a data-level
            // length of 0 on a segment without data, when we sent no MP_FAIL, is no
            // infinite mapping (packetdrill's scripts acknowledge with `dll=0` mappings)
            return;
        }
        // our DATA_ACK takes the size of the peer's latest mapping with data (Linux's rule:
        // 4 bytes until a 64-bit mapping arrives, which also leaves option room for SACK
        // blocks; a bare DATA_FIN does not change it)
        self.ack64 = m.dsn64;
        if data_len == 0 {
            // infinite mapping (data_len 0, RFC 8684 3.7): the peer fell back to TCP after
            // our MP_FAIL; from here the subflow's bytes are the data stream, 1:1
            mib.InfiniteMapRx += 1;
            let off = dsn::expand32(
                m.ssn.wrapping_sub(1),
                self.subflows[idx].tcb.rcv_nxt_offset(),
            );
            let linear = dsn == self.remote_idsn.wrapping_add(1).wrapping_add(off);
            if linear && self.can_fall_back(idx) {
                self.mp_fail_pending = None;
                self.enter_fallback(idx);
            } else {
                mib.FallbackFailed += 1;
                self.reset_subflow(idx);
            }
            return;
        }
        if let Some(f) = self.peer_fin_dsn {
            if dsn::diff(dsn.wrapping_add(data_len), f) > 0 {
                mib.DSSNotMatching += 1;
                if self.peer_closed {
                    return; // nothing exists beyond the end of a finished stream
                }
                // the stream goes on past a DATA_FIN not reached yet: that DATA_FIN was
                // wrong (forged, or the peer contradicts itself); forget it, or the data
                // beyond it would be refused until a window deadlock
                self.peer_fin_dsn = None;
            }
        }
        let sf = &self.subflows[idx];
        let off = dsn::expand32(m.ssn.wrapping_sub(1), sf.tcb.rcv_nxt_offset());
        let len = data_len.min(u64::from(u32::MAX)) as u32;
        // DSS checksum (RFC 8684 3.3.1): a mapping whose data is all in this segment is
        // verified now; one spanning several segments (a TSO sender) once all of its bytes
        // are stored, and its data is held back from the application and the DATA_ACK until
        // then (`verify_pending_checksums`).
        if self.checksum && data_len as usize == payload.len() {
            let ok = m.checksum.is_some_and(|c| {
                crate::wire::mptcp::dss_checksum_ok(dsn, m.ssn, m.data_len, c, payload)
            });
            if !ok {
                // a corrupted mapping is not recorded: its data is not acknowledged, so the
                // peer sends it again
                self.checksum_failed(now, idx, dsn, true, mib);
                return;
            }
        }
        let map = Map { off, dsn, len };
        if self.checksum && data_len as usize != payload.len() {
            let sf = &self.subflows[idx];
            let known = sf.csum_pending.iter().any(|p| p.map.off == off);
            if !known && map.end() > sf.tcb.rcv_nxt_offset() {
                let Some(checksum) = m.checksum else {
                    return; // cannot be: a mapping without one reset the subflow above
                };
                if sf.csum_pending.len() >= subflow::MAX_MAPS {
                    // not recorded: its data is not taken, so the peer sends it again
                    mib.DSSMapTableFull += 1;
                    return;
                }
                if !self.record_rx_map(idx, map, mib) {
                    return;
                }
                let pending = &mut self.subflows[idx].csum_pending;
                let pos = pending.partition_point(|p| p.map.off < off);
                pending.insert(
                    pos,
                    subflow::PendingCsum {
                        map,
                        ssn: m.ssn,
                        data_len: m.data_len,
                        checksum,
                    },
                );
                self.update_csum_hold();
                return;
            }
        }
        self.record_rx_map(idx, map, mib);
    }

    /// A data segment without a mapping. If it starts at the subflow's next expected byte
    /// and no known mapping covers that byte, the peer no longer maps its data (it fell back
    /// to TCP, or a middlebox strips the options): RFC 8684 3.7, as Linux does it. On the
    /// only subflow with both streams mapped 1:1 the connection falls back too and the
    /// bytes are taken as plain TCP when they come again; otherwise the subflow is reset,
    /// rather than wait for ever for a mapping that will not come. Out-of-order data
    /// without a mapping (its mapping may be on a segment still missing) waits as before.
    fn unmapped_data(&mut self, idx: usize, seg: &SegmentIn<'_>, mib: &mut Mib) {
        let sf = &self.subflows[idx];
        if !sf.established || sf.tcb.state() != tcp::State::Established {
            return;
        }
        let rcv = sf.tcb.rcv_nxt_offset();
        let off = dsn::expand32(seg.seq.wrapping_sub(sf.tcb.irs()).wrapping_sub(1), rcv);
        if off != rcv || sf.rx_maps.lookup(rcv).is_some() {
            return;
        }
        if self.other_usable(idx) || !self.can_fall_back(idx) {
            mib.DSSUnmappedReset += 1;
            self.reset_subflow_with(idx, rst_reason::MPTCP_SPECIFIC);
        } else {
            mib.DssFallback += 1;
            self.enter_fallback(idx);
        }
    }

    /// RFC 8684 3.3: a mapping with a checksum although none was negotiated, or without one
    /// although it was: the peer does not behave as agreed. The subflow is closed with a RST
    /// (MP_TCPRST "MPTCP-specific error"); its data is not taken.
    fn checksum_presence_mismatch(&mut self, idx: usize, mib: &mut Mib) {
        mib.DSSCsumMismatch += 1;
        self.reset_subflow_with(idx, rst_reason::MPTCP_SPECIFIC);
    }

    /// A DSS checksum failed for the mapping at `dsn` on subflow `idx` (RFC 8684 3.7).
    /// `refetchable`: none of its bytes were taken at the subflow level, so the peer's TCP
    /// sends them again.
    fn checksum_failed(
        &mut self,
        now: Instant,
        idx: usize,
        dsn: u64,
        refetchable: bool,
        mib: &mut Mib,
    ) {
        mib.DataCsumErr += 1;
        mib.MPFailTx += 1;
        // With other subflows to carry the data, close this one with RST + MP_FAIL (the
        // sender re-sends its data that is not DATA_ACKed elsewhere). With this subflow
        // alone, both streams mapped 1:1 and the bad bytes still to come again at the TCP
        // level, send MP_FAIL and fall back to TCP on the peer's infinite mapping. Otherwise
        // the stream cannot be delivered intact: reset, with an error to the application.
        let others = self.other_usable(idx);
        if !others && refetchable && self.can_fall_back(idx) {
            // MP_FAIL on our ACKs until the peer's infinite mapping; the corrupted bytes are
            // not acknowledged, so they come again, then as plain TCP
            if self.mp_fail_pending.is_none() {
                let rto = self.subflows[idx].tcb.stats().rto;
                let wait = (rto * 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
                self.mp_fail_pending = Some((dsn, now + wait));
            }
            self.subflows[idx].tcb.request_ack();
        } else {
            if !others {
                // nothing to fall back to: the connection ends with an error rather than
                // deliver what a middlebox changed
                mib.FallbackFailed += 1;
            }
            self.subflows[idx].mp_fail = Some(dsn);
            self.reset_subflow(idx);
        }
    }

    /// Verify the pending DSS checksums of subflow `idx` whose mappings are now complete
    /// (every byte taken at the subflow level, so stored in the reassembly buffer), then
    /// move the hold on the reassembly buffer to the first mapping still unverified.
    fn verify_pending_checksums(&mut self, now: Instant, idx: usize, mib: &mut Mib) {
        let rcv = self.subflows[idx].tcb.rcv_nxt_offset();
        while let Some(p) = self.subflows[idx].csum_pending.front().copied() {
            if p.map.end() > rcv {
                break;
            }
            self.subflows[idx].csum_pending.pop_front();
            if dsn::diff(p.map.dsn, self.rbuf.read_offset()) < 0 {
                // delivered already from another copy (a reinjection) that was verified
                continue;
            }
            let ok = match self.rbuf.stored(p.map.dsn, p.map.len as usize) {
                Some((a, b)) => crate::wire::mptcp::dss_checksum_ok_split(
                    p.map.dsn, p.ssn, p.data_len, p.checksum, a, b,
                ),
                None => {
                    // some of its bytes were forgotten since (another mapping over them
                    // failed): nothing here to verify; the peer sends them again
                    self.rbuf.discard(p.map.dsn, u64::from(p.map.len));
                    continue;
                }
            };
            if !ok {
                // the bytes were acknowledged at the subflow level: forget them here, so that
                // the peer's data-level retransmission (they are never DATA_ACKed) fills in
                self.rbuf.discard(p.map.dsn, u64::from(p.map.len));
                self.checksum_failed(now, idx, p.map.dsn, false, mib);
                break;
            }
        }
        self.update_csum_hold();
    }

    /// Forget the unverified data of a subflow that closed with mappings still pending: it
    /// can no longer be verified, and the peer re-sends it (it was never DATA_ACKed).
    fn drop_pending_checksums(&mut self, idx: usize) {
        while let Some(p) = self.subflows[idx].csum_pending.pop_front() {
            self.rbuf.discard(p.map.dsn, u64::from(p.map.len));
        }
        self.update_csum_hold();
    }

    /// Hold the reassembly buffer at the first DSN of an unverified mapping (none: no hold).
    fn update_csum_hold(&mut self) {
        let read = self.rbuf.read_offset();
        let first = self
            .subflows
            .iter()
            .flat_map(|s| s.csum_pending.iter())
            .map(|p| p.map.dsn)
            .min_by_key(|d| dsn::diff(*d, read));
        self.rbuf.set_hold(first);
    }

    /// Whether a DATA_FIN at `fin` fits what is known of the peer's stream: not below data
    /// already received or mapped (the stream cannot end before bytes it contains), within
    /// the receive window, and no other position after the stream already ended.
    fn data_fin_plausible(&self, fin: u64) -> bool {
        let rcv = self.rbuf.contiguous_end();
        if self.peer_closed {
            return self.peer_fin_dsn == Some(fin); // a retransmission of the one we have
        }
        let ahead = dsn::diff(fin, rcv);
        if ahead < 0 || ahead > i64::from(self.rbuf.window()) {
            return false;
        }
        let past = |end: u64| dsn::diff(end, fin) > 0;
        if self.rbuf.out_of_order_iter().any(|r| past(r.end)) {
            return false;
        }
        !self.subflows.iter().any(|s| {
            s.rx_maps
                .iter()
                .any(|m| past(m.dsn.wrapping_add(u64::from(m.len))))
        })
    }

    fn handle_data_ack(
        &mut self,
        now: Instant,
        idx: usize,
        ack: u64,
        seg: &SegmentIn<'_>,
        mib: &mut Mib,
    ) {
        let max = self.snd_nxt + u64::from(self.fin_dsn.is_some_and(|f| self.snd_nxt >= f));
        if ack < self.snd_una {
            return; // old
        }
        if ack > max {
            mib.DataAckInvalid += 1;
            return;
        }
        if ack > self.snd_una {
            self.snd_una = ack;
            self.sbuf.release(ack.min(self.sbuf.end()));
            // what is acknowledged needs no reinjection
            self.reinject.retain(|(d, l)| d + u64::from(*l) > ack);
            for r in self.reinject.iter_mut() {
                if r.0 < ack {
                    r.1 -= (ack - r.0) as u32;
                    r.0 = ack;
                }
            }
            // data-level progress: the retransmission timer starts again, unbacked-off
            self.rtx_backoff = 0;
            self.rtx_at = None;
            self.arm_rtx(now);
            if let Some(r) = self.rtx_recover {
                if ack >= r {
                    self.rtx_recover = None;
                } else if self.data_idle() {
                    // nothing in flight can fill what is still missing: it was lost at the
                    // data level too; go on re-sending without waiting for the timer
                    self.queue_data_retransmit(mib);
                }
            }
            if let Some(f) = self.fin_dsn {
                if ack > f && !self.fin_acked {
                    self.fin_acked = true;
                    self.fin_timer = None;
                }
            }
            self.fin_backoff = 0;
            if self.fin_timer.is_some() {
                self.arm_fin_timer(now);
            }
        }
        self.update_window_edge(ack, idx, seg, false);
        self.maybe_close_subflows();
    }

    /// RFC 8684 3.3.5: the data-level window's right edge is the DATA_ACK plus the window of
    /// the same segment (scaled as that subflow negotiated; a SYN's window is not scaled).
    /// It never moves left, except once: the first DSS-carried edge replaces a provisional
    /// one taken from an MP_CAPABLE segment without DATA_ACK (see `wnd_provisional`).
    fn update_window_edge(&mut self, ack: u64, idx: usize, seg: &SegmentIn<'_>, provisional: bool) {
        let shift = if seg.flags & tcp::flags::SYN != 0 {
            0
        } else {
            self.subflows[idx].tcb.snd_wscale()
        };
        let wnd = u64::from(seg.window) << shift;
        let edge = ack.saturating_add(wnd);
        if provisional {
            if edge > self.snd_wnd_edge {
                self.snd_wnd_edge = edge;
                self.wnd_provisional = true;
            }
        } else {
            if edge > self.snd_wnd_edge || self.wnd_provisional {
                self.snd_wnd_edge = edge;
            }
            self.wnd_provisional = false;
        }
    }

    /// Nothing is on its way to the peer: every subflow has all it sent acknowledged and
    /// nothing queued, and no reinjection waits. A subflow still in its handshake carries no
    /// data (its SYN in flight, retransmitted for as long as a join to an unreachable
    /// address keeps trying, must not hold off window probing).
    fn data_idle(&self) -> bool {
        self.reinject.is_empty()
            && self.subflows.iter().all(|s| {
                s.closed.is_some() || !s.established || (s.tcb.in_flight() == 0 && s.unsent() == 0)
            })
    }

    /// The connection-level RTO: the largest RTO of the usable subflows (as Linux's MPTCP
    /// retransmit timer), 1 s before any is known.
    fn conn_rto(&self) -> Duration {
        self.subflows
            .iter()
            .filter(|s| s.usable())
            .map(|s| s.tcb.stats().rto)
            .max()
            .unwrap_or(Duration::from_secs(1))
    }

    /// Arm the data-level retransmission timer if data is outstanding and it is not armed.
    fn arm_rtx(&mut self, now: Instant) {
        if self.mode != Mode::Mptcp || self.snd_una >= self.snd_nxt {
            self.rtx_at = None;
            return;
        }
        if self.rtx_at.is_none() {
            let t = self.conn_rto().saturating_mul(1 << self.rtx_backoff.min(6));
            self.rtx_at = Some(now + t.min(Duration::from_secs(60)));
        }
    }

    /// Queue the oldest data-level-unacknowledged chunk for sending again, on whichever
    /// subflow the reinjection path picks, whatever the subflows think they delivered.
    fn queue_data_retransmit(&mut self, mib: &mut Mib) {
        let from = self.snd_una;
        let len = (self.snd_nxt - from).min(DATA_RTX_CHUNK);
        if len == 0 {
            return;
        }
        let queued = self
            .reinject
            .iter()
            .any(|&(d, l)| d <= from && d + u64::from(l) > from);
        if !queued {
            self.reinject.push_front((from, len as u32));
            self.stats_reinjected += len;
        }
        if self.rtx_recover.is_none_or(|r| r < self.snd_nxt) {
            self.rtx_recover = Some(self.snd_nxt);
        }
        mib.DataRetrans += 1;
        mib.DataRetransBytes += len;
        self.stats_data_retrans += 1;
    }

    /// Data-level timers: retransmission and zero-window probing.
    fn data_timers(&mut self, now: Instant, mib: &mut Mib) {
        if self.mode != Mode::Mptcp || self.error.is_some() {
            self.rtx_at = None;
            self.zwp_at = None;
            return;
        }
        if self.rtx_at.is_some_and(|t| t <= now) {
            self.rtx_at = None;
            if self.snd_una < self.snd_nxt && self.subflows.iter().any(|s| s.usable()) {
                self.queue_data_retransmit(mib);
                self.rtx_backoff = self.rtx_backoff.saturating_add(1);
            }
            self.arm_rtx(now);
        }
        if self.zwp_at.is_some_and(|t| t <= now) {
            self.zwp_at = None;
            if let Some(i) = self.best_subflow() {
                self.subflows[i].tcb.probe_window();
                mib.DataWindowProbes += 1;
                self.zwp_backoff = self.zwp_backoff.saturating_add(1);
            }
        }
    }

    fn check_peer_fin(&mut self) {
        if self.peer_closed {
            return;
        }
        match self.mode {
            Mode::Mptcp => {
                if let Some(f) = self.peer_fin_dsn {
                    // reached (or passed: data mapped before the DATA_FIN was known)
                    if dsn::diff(self.rbuf.contiguous_end(), f) >= 0 {
                        self.peer_closed = true;
                        self.push_event(ConnEvent::PeerClosed);
                        // acknowledge the DATA_FIN promptly
                        if let Some(s) = self.subflows.iter_mut().find(|s| s.usable()) {
                            s.tcb.request_ack();
                        }
                        self.maybe_close_subflows();
                    }
                }
            }
            Mode::Fallback => {
                if self.subflows.first().is_some_and(|s| s.peer_fin) {
                    self.peer_closed = true;
                    self.push_event(ConnEvent::PeerClosed);
                }
            }
            Mode::Handshake => {}
        }
    }

    /// Our DATA_ACK: everything received in order (plus the DATA_FIN once reached).
    fn data_ack(&self) -> u64 {
        self.rbuf.contiguous_end() + u64::from(self.peer_closed && self.mode == Mode::Mptcp)
    }

    fn maybe_close_subflows(&mut self) {
        if self.mode != Mode::Mptcp || self.subflows_closing {
            return;
        }
        if self.peer_closed && self.fin_acked {
            self.subflows_closing = true;
            for s in self.subflows.iter_mut().filter(|s| s.closed.is_none()) {
                if s.established && !s.potentially_failed {
                    s.tcb.close();
                } else {
                    // a join still in its handshake, or a subflow whose path seems dead, is
                    // not worth a FIN exchange
                    s.rst_reason = Some(rst_reason::UNSPECIFIED);
                    s.tcb.abort();
                }
            }
        }
    }

    fn fastclosed(&mut self, _now: Instant) {
        for s in self.subflows.iter_mut() {
            if s.closed.is_none() {
                s.tcb.abort();
            }
        }
        self.error = Some(ConnError::Reset);
    }

    fn process_tcb_events(&mut self, now: Instant, _mib: &mut Mib) {
        let mut i = 0;
        while i < self.subflows.len() {
            while let Some(ev) = self.subflows[i].tcb.poll_event() {
                match ev {
                    tcp::Event::Established => {
                        if self.subflows[i].join == JoinState::Initial {
                            self.subflows[i].established = true;
                            if !self.established_reported {
                                self.established_reported = true;
                                let id = self.subflows[i].id;
                                self.push_event(ConnEvent::Established);
                                self.push_event(ConnEvent::SubflowEstablished { id });
                            }
                            if self.mode == Mode::Mptcp && self.role == Role::Client {
                                // the third ACK carries MP_CAPABLE with both keys
                                self.subflows[i].tcb.request_ack();
                            }
                        }
                        if self.mode == Mode::Fallback {
                            self.push_fallback();
                        }
                        if self.subflows[i].join == JoinState::Joined {
                            self.join_complete(now, i);
                        }
                        self.maybe_start_pm(now);
                    }
                    tcp::Event::PeerFin => {
                        self.subflows[i].peer_fin = true;
                        if self.mode == Mode::Mptcp && self.other_usable(i) {
                            // RFC 8684 3.3.3: a subflow FIN closes only that subflow; finish it
                            // (its unacknowledged data, if any, is reinjected when it closes)
                            self.subflows[i].tcb.close();
                        }
                        // the last usable subflow stays half-open (CLOSE-WAIT), as in Linux:
                        // our data and DATA_FIN still leave on it, and it closes with the
                        // connection (`maybe_close_subflows`)
                        self.check_peer_fin();
                    }
                    tcp::Event::Closed(reason) => {
                        let sf = &mut self.subflows[i];
                        if sf.closed.is_none() {
                            sf.closed = Some(reason);
                            sf.join_timer = None;
                            let (id, local, remote) = (sf.id, sf.local, sf.remote);
                            let error = reason != CloseReason::Normal && !sf.closing_by_app;
                            self.push_event(ConnEvent::SubflowClosed { id, reason });
                            self.on_subflow_closed(now, i, reason);
                            if !self.subflows_closing && self.error.is_none() {
                                self.pm_event(
                                    now,
                                    &crate::pm::PmEvent::SubflowClosed {
                                        id,
                                        local,
                                        remote,
                                        error,
                                    },
                                );
                            }
                        }
                    }
                }
            }
            i += 1;
        }
        self.check_peer_fin();
        self.check_closed();
    }

    fn on_subflow_closed(&mut self, _now: Instant, idx: usize, reason: CloseReason) {
        // Reinject data the subflow carried that is not acknowledged at the data level.
        if self.mode == Mode::Mptcp {
            self.reinject_outstanding(idx);
        }
        self.subflows[idx].tx_maps.clear();
        if !self.subflows[idx].csum_pending.is_empty() {
            self.drop_pending_checksums(idx);
        }
        let alive = self.subflows.iter().any(|s| s.closed.is_none());
        if !alive && self.error.is_none() {
            // once both DATA_FINs are through, how the last subflow ended does not matter
            let data_done = self.mode == Mode::Mptcp && self.peer_closed && self.fin_acked;
            let clean = data_done || (reason == CloseReason::Normal && self.mode == Mode::Fallback);
            if !clean {
                self.error = Some(match reason {
                    CloseReason::Timeout => ConnError::TimedOut,
                    CloseReason::Reset if !self.established_reported => ConnError::Refused,
                    CloseReason::Aborted => ConnError::Aborted,
                    _ => ConnError::Reset,
                });
            }
        }
    }

    fn check_closed(&mut self) {
        if self.closed_reported {
            return;
        }
        if self.error.is_some() || (self.is_closed() && self.peer_closed && self.all_acked()) {
            self.closed_reported = true;
            self.push_event(ConnEvent::Closed { error: self.error });
        }
    }

    // ----- timers ----------------------------------------------------------------------

    /// Once everything before the DATA_FIN is scheduled, send it (on a pure ACK) and arm
    /// its retransmission timer; the timer re-sends it until it is acknowledged.
    fn maybe_arm_fin(&mut self, now: Instant) {
        if let Some(f) = self.fin_dsn {
            if self.snd_nxt >= f
                && !self.fin_acked
                && self.mode == Mode::Mptcp
                && self.fin_timer.is_none()
            {
                if let Some(s) = self.best_subflow() {
                    self.subflows[s].tcb.request_ack();
                }
                self.arm_fin_timer(now);
            }
        }
    }

    fn arm_fin_timer(&mut self, now: Instant) {
        let rto = self
            .subflows
            .iter()
            .filter(|s| s.closed.is_none())
            .map(|s| s.tcb.stats().rto)
            .max()
            .unwrap_or(Duration::from_secs(1));
        let backoff = rto.saturating_mul(1 << self.fin_backoff.min(6));
        self.fin_timer = Some(now + backoff.min(Duration::from_secs(60)));
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let sub = self
            .subflows
            .iter()
            .filter_map(|s| s.tcb.poll_timeout())
            .min();
        let held = self.subflows.iter().filter_map(|s| s.held).min();
        [
            sub,
            self.fin_timer,
            self.mp_poll_timeout(),
            held,
            self.mp_fail_pending.map(|(_, t)| t),
            self.rtx_at,
            self.zwp_at,
            self.trim_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Coupled congestion control (RFC 6356 LIA, OLIA, BALIA): before subflow `idx`
    /// processes an ACK or a timeout, give it the current window, RTT and loss history of
    /// every subflow of the connection. Backup subflows are not counted while a regular
    /// one is usable; closed ones are left out. No allocation (a fixed-size array).
    fn feed_coupling(&mut self, idx: usize) {
        if !self.subflows[idx].tcb.coupled() {
            return;
        }
        let any_regular = self
            .subflows
            .iter()
            .any(|s| s.usable() && !s.backup && !s.peer_backup);
        let mut view = crate::cc::CouplingView::default();
        let mut me = None;
        for (i, s) in self.subflows.iter().enumerate() {
            if i != idx && s.closed.is_some() {
                continue;
            }
            if view.len == crate::cc::MAX_COUPLED {
                break;
            }
            let mut p = s.tcb.path_cc();
            if any_regular && (s.backup || s.peer_backup) {
                p.usable = false;
            }
            if i == idx {
                me = Some(view.len);
            }
            view.paths[view.len] = p;
            view.len += 1;
        }
        if let Some(m) = me {
            view.me = m;
            self.subflows[idx].tcb.set_coupling(view);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant, mib: &mut Mib) {
        for i in 0..self.subflows.len() {
            if self.subflows[i]
                .tcb
                .poll_timeout()
                .is_some_and(|t| t <= now)
            {
                self.feed_coupling(i);
                self.subflows[i].tcb.handle_timeout(now);
            }
        }
        if self.fin_timer.is_some_and(|t| t <= now) {
            self.fin_timer = None;
            if !self.fin_acked {
                // the subflow that carried it may be dead: retransmit on every usable one
                self.fin_backoff += 1;
                for s in self.subflows.iter_mut().filter(|s| s.usable()) {
                    s.tcb.request_ack();
                }
                self.arm_fin_timer(now);
            }
        }
        self.data_timers(now, mib);
        if let Some((dsn, _)) = self.mp_fail_pending.filter(|&(_, t)| t <= now) {
            self.mp_fail_pending = None;
            // the peer did not fall back; if the bytes came again intact meanwhile (the
            // change was transient), the stream is whole and goes on as MPTCP
            // (with a join up meanwhile, the bytes come again on any subflow and a second
            // failure resets the subflow with RST + MP_FAIL)
            let stuck = dsn::diff(self.rbuf.contiguous_end(), dsn) <= 0;
            if self.mode == Mode::Mptcp && stuck && !self.other_usable(0) {
                // no infinite mapping came: end with an error rather than deliver what a
                // middlebox changed
                mib.FallbackFailed += 1;
                self.subflows[0].mp_fail = Some(dsn);
                self.reset_subflow(0);
            }
        }
        if self.mode == Mode::Mptcp {
            self.mp_handle_timeout(now, mib);
            self.detect_stalls();
        }
        self.process_tcb_events(now, mib);
        if self.trim_at.is_some_and(|t| t <= now) {
            self.trim_at = None;
            self.trim_memory();
        }
    }

    // ----- memory ----------------------------------------------------------------------

    /// Something happened (a segment arrived, the application wrote or read): give buffer
    /// memory back only after `MEM_IDLE_TRIM` without activity. Nothing is armed while the
    /// data-level buffers own no memory (an idle connection that never moved data).
    fn note_activity(&mut self, now: Instant) {
        if self.sbuf.allocated() > 0 || self.rbuf.allocated() > 0 {
            self.trim_at = Some(now + MEM_IDLE_TRIM);
        } else {
            self.trim_at = None;
        }
    }

    /// Give memory back: the data-level send and receive rings shrink to what they hold
    /// (nothing once drained), and every subflow's tables to what they hold. Data, windows
    /// and sequence state are untouched; the buffers grow again when data comes. Returns
    /// the bytes freed. Runs on its own after `MEM_IDLE_TRIM` of inactivity; calling it at
    /// any other time is harmless but costs a copy of what is buffered.
    pub fn trim_memory(&mut self) -> usize {
        let before = self.memory_footprint();
        self.sbuf.trim();
        self.rbuf.trim();
        for s in self.subflows.iter_mut() {
            s.tcb.trim_memory();
            s.tx_maps.shrink();
            s.rx_maps.shrink();
        }
        if self.reinject.is_empty() {
            self.reinject.shrink_to(0);
        }
        before.saturating_sub(self.memory_footprint())
    }

    /// Bytes of memory this connection owns: the `Connection` itself, its data-level send and
    /// receive rings (what is allocated, not the configured maximum) with the reassembly range
    /// table, every subflow with its TCP engine's tables and its mapping tables, the
    /// reinjection and event queues and the multipath state. Heap blocks are counted at their
    /// capacity; allocator overhead is not included.
    pub fn memory_footprint(&self) -> usize {
        use core::mem::size_of;
        size_of::<Connection>()
            + self.sbuf.allocated()
            + self.rbuf.allocated()
            + self.subflows.capacity() * size_of::<Subflow>()
            + self
                .subflows
                .iter()
                .map(|s| s.tcb.heap_bytes() + s.tx_maps.heap_bytes() + s.rx_maps.heap_bytes())
                .sum::<usize>()
            + self.reinject.capacity() * size_of::<(u64, u32)>()
            + self.events.capacity() * size_of::<ConnEvent>()
            + self.mp.heap_bytes()
            + self.cfg.path_manager.capacity()
            + self.cfg.scheduler.capacity()
            + self.cfg.local_addrs.capacity() * size_of::<crate::pm::LocalAddr>()
            + self.cfg.link_mtus.capacity() * size_of::<(IpAddr, u16)>()
    }

    /// The connection-level receive window we advertise: the receive buffer's capacity minus
    /// what waits to be read, whatever is allocated of the buffer now (it grows on demand).
    pub fn recv_window(&self) -> u32 {
        self.rbuf.window()
    }

    /// The configured data-level buffer sizes and what is allocated of them now:
    /// `(send capacity, send allocated, receive capacity, receive allocated)`.
    pub fn buffer_sizes(&self) -> (usize, usize, usize, usize) {
        (
            self.sbuf.capacity(),
            self.sbuf.allocated(),
            self.rbuf.capacity(),
            self.rbuf.allocated(),
        )
    }

    // ----- send path -------------------------------------------------------------------

    fn best_subflow(&self) -> Option<usize> {
        let mut best: Option<(usize, bool, Duration)> = None;
        for (i, s) in self.subflows.iter().enumerate() {
            if !s.usable() {
                continue;
            }
            let backup = s.backup || s.peer_backup;
            let rtt = s.tcb.stats().srtt.unwrap_or(Duration::from_secs(1));
            let better = match best {
                None => true,
                Some((_, b, r)) => (backup, rtt) < (b, r),
            };
            if better {
                best = Some((i, backup, rtt));
            }
        }
        best.map(|b| b.0)
    }

    /// Assign unsent (and reinjected) data to subflows, as the scheduler decides.
    fn schedule(&mut self, now: Instant) {
        if self.mode != Mode::Mptcp {
            return;
        }
        for _ in 0..64 {
            // reinjections first, on the best other subflow with room
            if let Some(&(dsn, len)) = self.reinject.front() {
                match self.pick_for_reinjection() {
                    Some((i, room)) => {
                        let n = u64::from(len).min(room).min(64 * 1024) as u32;
                        if n == 0 || !self.assign(i, dsn, n) {
                            break;
                        }
                        self.mib_reinjections += 1;
                        if let Some(front) = self.reinject.front_mut() {
                            front.0 += u64::from(n);
                            front.1 -= n;
                            if front.1 == 0 {
                                self.reinject.pop_front();
                            }
                        }
                        continue;
                    }
                    None => {
                        // nowhere to reinject now; new data may still go out
                    }
                }
            }
            let unsent = self.sbuf.end().saturating_sub(self.snd_nxt);
            if unsent == 0 {
                break;
            }
            // never past the right edge the peer announced (RFC 8684 3.3.5): Linux drops
            // such data at the data level after its subflow acknowledged it
            let mut wnd = self.snd_wnd_edge.saturating_sub(self.snd_nxt);
            if self.data_subflows() > 1 {
                let (num, den) = MULTIPATH_WINDOW_SHARE;
                let share = self.snd_wnd_edge.saturating_sub(self.snd_una) / den * num;
                wnd = wnd.min((self.snd_una + share).saturating_sub(self.snd_nxt));
            }
            // A window open by a few bytes is as closed as a zero one when no subflow may
            // send into it: each subflow's TCP window is the same edge relative to the same
            // DATA_ACK, rounded down by its window scale, so it can read zero (seen with a
            // 64 KiB receive buffer filled to 12 bytes short, window scale 7).
            let blocked = wnd == 0
                || (self.data_idle()
                    && self.subflows.iter().any(|s| s.usable())
                    && (0..self.subflows.len()).all(|i| self.subflow_room(i) == 0));
            if blocked {
                // closed window: probe it (timer with backoff) once nothing is in flight
                // that would bring a window update
                if self.zwp_at.is_none() && self.data_idle() {
                    let t = self.conn_rto().saturating_mul(1 << self.zwp_backoff.min(6));
                    self.zwp_at = Some(now + t.min(Duration::from_secs(60)));
                }
            } else {
                self.zwp_at = None;
                self.zwp_backoff = 0;
            }
            self.fill_views();
            let ctx = crate::sched::SchedContext {
                now,
                unsent,
                conn_window: wnd,
                send_buffer_free: self.sbuf.free() as u64,
                blocked: self.blocked_info(wnd),
            };
            let decision = {
                let Connection { mp, .. } = self;
                let views = std::mem::take(&mut mp.views);
                let d = mp.scheduler().schedule(&ctx, &views);
                mp.views = views;
                d
            };
            use crate::sched::Decision;
            match decision {
                Decision::Wait => break,
                Decision::Send { subflow, max_len } => {
                    let room = self.subflow_room(subflow);
                    let len = unsent
                        .min(wnd)
                        .min(u64::from(max_len))
                        .min(room)
                        .min(64 * 1024) as u32;
                    if len == 0 || !self.assign(subflow, self.snd_nxt, len) {
                        break;
                    }
                    self.account_new(subflow, len);
                }
                Decision::Redundant { subflows, max_len } => {
                    let mut len = unsent.min(wnd).min(u64::from(max_len)).min(64 * 1024);
                    for i in subflows.iter() {
                        len = len.min(self.subflow_room(i));
                    }
                    let len = len as u32;
                    if len == 0 {
                        break;
                    }
                    let dsn = self.snd_nxt;
                    let mut first = None;
                    for i in subflows.iter() {
                        if self.assign(i, dsn, len) {
                            if first.is_none() {
                                first = Some(i);
                            } else {
                                // a copy: counted on this subflow, not in the connection's bytes
                                self.subflows[i].data_sent += u64::from(len);
                            }
                        }
                    }
                    match first {
                        Some(i) => self.account_new(i, len),
                        None => break,
                    }
                }
                Decision::Reinject {
                    subflow,
                    dsn,
                    len,
                    penalise,
                } => {
                    let room = self.subflow_room(subflow);
                    let n = u64::from(len).min(room) as u32;
                    if n == 0 || dsn < self.snd_una || !self.assign(subflow, dsn, n) {
                        break;
                    }
                    self.mib_reinjections += 1;
                    if let Some(p) = penalise.and_then(|p| self.subflows.get_mut(p)) {
                        p.tcb.penalise(now);
                    }
                }
            }
        }
        self.maybe_arm_fin(now);
        self.arm_rtx(now);
    }

    /// Subflows that carry data side by side now: usable, not backups, not held back by a
    /// provisional window.
    fn data_subflows(&self) -> usize {
        self.subflows
            .iter()
            .filter(|s| {
                s.usable()
                    && !(s.backup || s.peer_backup)
                    && !(self.wnd_provisional && s.join != JoinState::Initial)
            })
            .count()
    }

    fn account_new(&mut self, i: usize, len: u32) {
        self.snd_nxt += u64::from(len);
        self.subflows[i].data_sent += u64::from(len);
        self.stats_bytes_sent += u64::from(len);
    }

    /// Record that subflow `i` carries `len` bytes from `dsn` and tell its engine.
    fn assign(&mut self, i: usize, dsn: u64, len: u32) -> bool {
        let Some(sf) = self.subflows.get_mut(i) else {
            return false;
        };
        if !sf.usable() {
            return false;
        }
        let off = sf.tcb.send_queue_end();
        if !sf.tx_maps.has_room() {
            return false;
        }
        let continues = sf
            .tx_maps
            .last()
            .is_some_and(|m| m.end() == off && m.dsn + u64::from(m.len) == dsn);
        if continues {
            sf.tcb.enqueue(len);
        } else if !sf.tcb.enqueue_chunk(len) {
            return false;
        }
        if i != 0 || dsn != self.local_idsn.wrapping_add(1).wrapping_add(off) {
            self.tx_linear = false;
        }
        self.subflows[i].tx_maps.push_tx(Map { off, dsn, len })
    }

    /// Bytes subflow `i` may take now (congestion and peer window, minus what it holds unsent).
    fn subflow_room(&self, i: usize) -> u64 {
        self.subflows.get(i).map_or(0, |s| {
            if !s.usable()
                || !s.tx_maps.has_room()
                || (self.wnd_provisional && s.join != JoinState::Initial)
            {
                0
            } else {
                u64::from(s.tcb.send_capacity()).saturating_sub(s.unsent())
            }
        })
    }

    fn pick_for_reinjection(&self) -> Option<(usize, u64)> {
        let mut best: Option<(usize, bool, Duration, u64)> = None;
        for (i, s) in self.subflows.iter().enumerate() {
            let room = self.subflow_room(i);
            if room == 0 || s.potentially_failed {
                continue;
            }
            let backup = s.backup || s.peer_backup;
            let rtt = s.tcb.stats().srtt.unwrap_or(Duration::from_millis(100));
            if best.is_none_or(|(_, b, r, _)| (backup, rtt) < (b, r)) {
                best = Some((i, backup, rtt, room));
            }
        }
        best.map(|(i, _, _, room)| (i, room))
    }

    fn fill_views(&mut self) {
        let provisional = self.wnd_provisional;
        let Connection { mp, subflows, .. } = self;
        mp.views.clear();
        for s in subflows.iter() {
            let st = s.tcb.stats();
            // under a provisional window only the initial subflow may carry data (in order:
            // Linux drops data past its real window only when it arrives out of order)
            let provisional_hold = provisional && s.join != JoinState::Initial;
            mp.views.push(crate::sched::SubflowView {
                id: s.id,
                srtt: st.srtt,
                rttvar: st.rttvar,
                cwnd: st.cwnd,
                in_flight: st.bytes_in_flight,
                send_capacity: if s.tx_maps.has_room() && !provisional_hold {
                    s.tcb.send_capacity()
                } else {
                    0
                },
                queued: s.unsent().min(u64::from(u32::MAX)) as u32,
                mss: st.snd_mss,
                backup: s.backup || s.peer_backup,
                usable: s.usable(),
                potentially_failed: s.potentially_failed,
            });
        }
    }

    /// When the connection window is exhausted: the subflow holding the oldest
    /// data-level-unacknowledged byte (for opportunistic retransmission).
    fn blocked_info(&self, wnd: u64) -> Option<crate::sched::Blocked> {
        if wnd > 0 || self.snd_una >= self.snd_nxt {
            return None;
        }
        for (i, s) in self.subflows.iter().enumerate() {
            for m in s.tx_maps.iter() {
                let end = m.dsn + u64::from(m.len);
                if m.dsn <= self.snd_una && end > self.snd_una {
                    let len = (end - self.snd_una).min(64 * 1024) as u32;
                    return Some(crate::sched::Blocked {
                        subflow: i,
                        dsn: self.snd_una,
                        len,
                    });
                }
            }
        }
        None
    }

    /// Subflows with repeated RTOs and no progress are potentially failed: their
    /// outstanding data goes to the others.
    fn detect_stalls(&mut self) {
        let others = |conn: &Connection, me: usize| {
            conn.subflows
                .iter()
                .enumerate()
                .any(|(j, s)| j != me && s.usable() && !s.potentially_failed)
        };
        for i in 0..self.subflows.len() {
            let st = self.subflows[i].tcb.stats();
            let una = self.subflows[i].tcb.snd_una_offset();
            let (rto_mark, una_mark) = self.subflows[i].stall_mark;
            let outstanding = self.subflows[i].tcb.snd_max_offset() > una;
            if una != una_mark || !outstanding {
                self.subflows[i].stall_mark = (st.rto_count, una);
                self.subflows[i].potentially_failed = false;
                continue;
            }
            if st.rto_count >= rto_mark + 2
                && !self.subflows[i].potentially_failed
                && others(self, i)
            {
                self.subflows[i].potentially_failed = true;
                self.reinject_outstanding(i);
            }
        }
    }

    /// A held join may go once the connection is fully established; if the connection fell
    /// back to TCP or failed first, the join is abandoned (`SubflowClosed { Aborted }`).
    fn release_held(&mut self, now: Instant, i: usize, mib: &mut Mib) -> bool {
        if self.mode == Mode::Mptcp && self.error.is_none() && !self.subflows_closing {
            if !self.fully_established && self.subflows[i].held.is_some_and(|t| now < t) {
                return false;
            }
            self.subflows[i].held = None;
            return true;
        }
        self.subflows[i].held = None;
        self.subflows[i].tcb.abort();
        self.process_tcb_events(now, mib);
        false
    }

    /// Write the next packet to send into `buf`; returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8], mib: &mut Mib) -> Option<usize> {
        self.poll_transmit_offload(now, buf, &TxOffload::default(), mib)
            .map(|p| p.len)
    }

    /// [`Self::poll_transmit`] for a device that splits super-segments and/or completes
    /// checksums (`off`); the result says what the device must do with the packet.
    pub fn poll_transmit_offload(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        off: &TxOffload,
        mib: &mut Mib,
    ) -> Option<TxPacket> {
        if self.mem_dirty {
            self.mem_dirty = false;
            self.note_activity(now);
        }
        self.schedule(now);
        mib.Reinjections += core::mem::take(&mut self.mib_reinjections);
        let n = self.subflows.len();
        for k in 0..n {
            let i = (self.tx_cursor + k) % n;
            if self.subflows[i].held.is_some() && !self.release_held(now, i, mib) {
                continue;
            }
            let (extra, extra_ack) = self.option_budget(i);
            let tx = TxParams {
                extra_option_len: extra,
                extra_option_len_ack: extra_ack,
                rcv_space: self.rbuf.window(),
                // the receive buffer's right edge (read point + capacity) never moves left
                data_level_window: self.mode == Mode::Mptcp,
                // a super-segment's DSS mapping covers its whole payload: at most 64 KiB
                tso_bytes: off.tso_bytes.min(u32::from(u16::MAX)),
            };
            let Some(seg) = self.subflows[i].tcb.poll_transmit(now, &tx) else {
                continue;
            };
            self.tx_cursor = (i + 1) % n;
            match self.emit(now, i, &seg, buf, off.csum_partial, mib) {
                Ok(p) => {
                    if core::mem::take(&mut self.infinite_map_sent) {
                        self.enter_fallback(i);
                    }
                    // one signal per pure ACK: if this one carried a signal and more wait
                    // (several ADD_ADDRs queued at once), ask for the next ACK now rather
                    // than with unrelated traffic (only then: an ACK that cannot carry a
                    // signal, e.g. MP_CAPABLE's, must not ask for another)
                    if self.mp.take_signal_sent() && self.signal_pending() {
                        if let Some(b) = self.best_subflow() {
                            self.subflows[b].tcb.request_ack();
                        }
                    }
                    self.process_tcb_events(now, mib);
                    return Some(p);
                }
                Err(e) => {
                    log::warn!("could not emit a segment: {e}");
                    mib.OutDrops += 1;
                }
            }
        }
        self.process_tcb_events(now, mib);
        None
    }

    /// The mapping a data segment of subflow `i` declares: (first subflow offset, length,
    /// checksum). A first transmission maps its own payload (the checksum is computed when
    /// the payload is written: `None`). A retransmission maps the whole segment its bytes
    /// first went in (the engine never lets it span two), with the checksum first sent;
    /// without that checksum on record it maps its own payload instead (counted).
    fn tx_mapping_span(&self, i: usize, seg: &SegmentOut) -> (u64, u64, Option<u16>) {
        let own = (seg.offset, u64::from(seg.payload_len), None);
        let sf = &self.subflows[i];
        let Some((s, e)) = sf.tcb.sent_span(seg.offset) else {
            return own;
        };
        if s > seg.offset
            || e < seg.offset + u64::from(seg.payload_len)
            || (s, e) == (seg.offset, seg.offset + u64::from(seg.payload_len))
            || e - s > u64::from(u16::MAX)
        {
            return own;
        }
        if !self.checksum {
            return (s, e - s, None);
        }
        match sf.sent_csums.iter().rev().find(|c| c.0 == s) {
            Some(&(_, c)) => (s, e - s, Some(c)),
            None => own,
        }
    }

    /// With DSS checksums: remember the checksum of a data segment sent for the first time
    /// (its mapping is its payload), and forget those of acknowledged segments.
    fn record_sent_csum(&mut self, i: usize, seg: &SegmentOut, opts: &OptBuf<'_>) {
        let sf = &mut self.subflows[i];
        let first = sf.tcb.sent_span(seg.offset)
            == Some((seg.offset, seg.offset + u64::from(seg.payload_len)));
        if first {
            let c = opts.iter().find_map(|o| match o {
                MptcpOption::Dss(d) => d.mapping.and_then(|m| m.checksum),
                MptcpOption::MpCapable(c) => c.checksum,
                _ => None,
            });
            if let Some(c) = c {
                if sf.sent_csums.back().is_none_or(|b| b.0 < seg.offset) {
                    sf.sent_csums.push_back((seg.offset, c));
                }
            }
        }
        let una = sf.tcb.snd_una_offset();
        let keep_from = sf.tcb.sent_span(una).map_or(una, |(s, _)| s);
        while sf.sent_csums.front().is_some_and(|f| f.0 < keep_from) {
            sf.sent_csums.pop_front();
        }
    }

    /// The DSN of our DATA_FIN when a segment should carry it now: queued, every byte before
    /// it sent, not yet acknowledged.
    fn due_data_fin(&self) -> Option<u64> {
        self.fin_dsn
            .filter(|&f| !self.fin_acked && self.snd_nxt >= f)
    }

    /// Bytes of MPTCP options we may add to the next segment of subflow `i`: (with data,
    /// without data). Segment sizes are computed from these, so the data budget must cover
    /// the largest option a data segment can get; a pure ACK that gets more than its budget
    /// (a signal, a DATA_FIN) loses SACK blocks in `emit_segment` instead.
    fn option_budget(&self, i: usize) -> (usize, usize) {
        match self.mode {
            Mode::Fallback => (0, 0),
            Mode::Handshake => (24, 24),
            Mode::Mptcp => {
                let sf = &self.subflows[i];
                let csum = if self.checksum { 2 } else { 0 };
                // data: DSS with 64-bit DATA_ACK and a 64-bit mapping (+ checksum), or the
                // client's first data packet with MP_CAPABLE (22/24)
                let data = (4 + 8 + 14 + csum).max(24);
                if (self.role == Role::Client && i == 0 && !self.fully_established)
                    || matches!(sf.join, JoinState::AckPending { .. })
                {
                    // MP_CAPABLE third ACK (20), MP_JOIN third ACK (24)
                    (data, 24)
                } else {
                    // pure ACK: DSS with the DATA_ACK alone
                    (data, 4 + 8)
                }
            }
        }
    }

    /// The MPTCP options for an outgoing segment of subflow `i`.
    fn options_for(
        &mut self,
        now: Instant,
        i: usize,
        seg: &SegmentOut,
        out: &mut OptBuf,
        mib: &mut Mib,
    ) {
        let syn = seg.flags & tcp::flags::SYN != 0;
        let ack = seg.flags & tcp::flags::ACK != 0;
        let rst = seg.flags & tcp::flags::RST != 0;
        let cflags = cap_flags::H
            | if self.checksum || self.cfg.checksum {
                cap_flags::A
            } else {
                0
            };
        if rst {
            if self.mode == Mode::Mptcp || self.subflows[i].join != JoinState::Initial {
                let reason = self.subflows[i]
                    .rst_reason
                    .unwrap_or(rst_reason::UNSPECIFIED);
                out.push(MptcpOption::MpTcpRst { flags: 0, reason });
                if let Some(dsn) = self.subflows[i].mp_fail {
                    out.push(MptcpOption::MpFail { dsn });
                }
                if self.mp.fastclose && self.mode == Mode::Mptcp {
                    out.push(MptcpOption::MpFastclose {
                        key: self.remote_key,
                    });
                    mib.MPFastcloseTx += 1;
                }
            }
            return;
        }
        if self.mode == Mode::Fallback {
            return;
        }
        if self.subflows[i].join != JoinState::Initial {
            if let Some(j) = self.join_option(i, syn, ack) {
                out.push(j);
                return;
            }
            if syn {
                return;
            }
        } else {
            let sf = &self.subflows[i];
            if syn && !ack {
                out.push(MptcpOption::MpCapable(MpCapable {
                    version: VERSION,
                    flags: cflags,
                    sender_key: None,
                    receiver_key: None,
                    data_len: None,
                    checksum: None,
                }));
                return;
            }
            if syn && ack {
                out.push(MptcpOption::MpCapable(MpCapable {
                    version: VERSION,
                    flags: cflags,
                    sender_key: Some(self.local_key),
                    receiver_key: None,
                    data_len: None,
                    checksum: None,
                }));
                return;
            }
            if self.mode != Mode::Mptcp {
                return;
            }
            // client: MP_CAPABLE on the third ACK and on the first data packet (RFC 8684 3.1).
            // Its mapping is implicit: the payload is the data stream's first bytes. Data
            // that starts elsewhere (the first DSNs went to another subflow) needs a DSS.
            let idsn1 = self.local_idsn.wrapping_add(1);
            // a bare DATA_FIN due (the application closed before the server's first DSS)
            // leaves in a DSS, as Linux sends it, not in another MP_CAPABLE
            let data_fin_due = seg.payload_len == 0 && self.due_data_fin().is_some();
            if self.role == Role::Client
                && !self.fully_established
                && !data_fin_due
                && seg.seq == sf.tcb.iss().wrapping_add(1)
                && (seg.payload_len == 0
                    || sf
                        .tx_maps
                        .lookup(seg.offset)
                        .is_some_and(|(d, _)| d == idsn1))
            {
                // a retransmission declares the mapping of the segment first sent
                let (_, span_len, given) = self.tx_mapping_span(i, seg);
                let data_len =
                    (seg.payload_len > 0).then_some(span_len.min(u64::from(u16::MAX)) as u16);
                // the checksum value is computed by emit_segment once the payload is written
                // (or is the one first sent, `given`)
                let checksum = data_len
                    .filter(|_| self.checksum)
                    .map(|_| given.unwrap_or(0));
                out.csum_given = given.is_some();
                out.push(MptcpOption::MpCapable(MpCapable {
                    version: VERSION,
                    flags: cflags,
                    sender_key: Some(self.local_key),
                    receiver_key: Some(self.remote_key),
                    data_len,
                    checksum,
                }));
                out.mpc_dsn = idsn1;
                return;
            }
        }
        if self.mode != Mode::Mptcp {
            return;
        }
        // Signals ride on pure ACKs, with a DSS carrying the DATA_ACK beside them when both
        // fit (as Linux sends them; its peer also learns from that DSS that we have its key).
        // An ADD_ADDR with a port or an IPv6 address goes alone, as Linux's does, and so does
        // any signal when a DATA_FIN is due (they would not fit together).
        if seg.payload_len == 0 {
            if let Some(sig) = self.take_signal(now, mib) {
                let small = match &sig {
                    MptcpOption::AddAddr(a) => a.addr.is_ipv4() && a.port.is_none(),
                    MptcpOption::RemoveAddr { .. } | MptcpOption::MpPrio { .. } => true,
                    _ => false,
                };
                out.push(sig);
                if !small || self.due_data_fin().is_some() {
                    return;
                }
            }
        }
        // DSS: DATA_ACK always, a mapping when carrying data, DATA_FIN when due.
        let sf = &self.subflows[i];
        let mut dss = Dss {
            data_ack: Some(DataAck {
                // a 4-byte DATA_ACK carries the low 32 bits (RFC 8684 3.3.1)
                ack: if self.ack64 {
                    self.data_ack()
                } else {
                    self.data_ack() & 0xffff_ffff
                },
                ack64: self.ack64,
            }),
            mapping: None,
            data_fin: false,
        };
        if seg.payload_len > 0 && self.infinite_map_pending {
            // RFC 8684 3.7: the infinite mapping, on the first data segment after the
            // peer's MP_FAIL; the connection is plain TCP once it is out
            dss.mapping = Some(DssMapping {
                dsn: self.local_idsn.wrapping_add(1).wrapping_add(seg.offset),
                dsn64: true,
                ssn: (seg.offset as u32).wrapping_add(1),
                data_len: 0,
                checksum: self.checksum.then_some(0),
            });
            self.infinite_map_pending = false;
            self.infinite_map_sent = true;
            mib.InfiniteMapTx += 1;
        } else if seg.payload_len > 0 {
            // a retransmission declares the mapping its bytes first went with: Linux refuses
            // a different one for bytes inside the mapping it is consuming (DSSNotMatching)
            // and falls back to TCP
            let (m_off, m_len, given) = self.tx_mapping_span(i, seg);
            let sf = &self.subflows[i];
            if let Some((dsn, avail)) = sf.tx_maps.lookup(m_off) {
                // the engine never lets a segment cross a mapping boundary
                let len = m_len.min(avail).min(u64::from(u16::MAX)) as u16;
                dss.mapping = Some(DssMapping {
                    dsn,
                    dsn64: true,
                    ssn: (m_off as u32).wrapping_add(1),
                    data_len: len,
                    checksum: self.checksum.then_some(given.unwrap_or(0)),
                });
                out.csum_given = given.is_some();
                if m_off + u64::from(len) < seg.offset + u64::from(seg.payload_len) {
                    mib.DSSTxPartialMapping += 1;
                }
            } else {
                mib.DSSTxPartialMapping += 1;
            }
        } else if let Some(f) = self.due_data_fin() {
            dss.data_fin = true;
            dss.mapping = Some(DssMapping {
                dsn: f,
                dsn64: true,
                ssn: 0,
                data_len: 1,
                checksum: self.checksum.then_some(0),
            });
        }
        if let Some(a) = dss.data_ack {
            let edge = a
                .ack
                .saturating_add(u64::from(seg.window) << sf.tcb.rcv_wscale());
            self.rcv_adv_edge = self.rcv_adv_edge.max(edge);
        }
        out.push(MptcpOption::Dss(dss));
        let bare = seg.payload_len == 0 && dss.mapping.is_none();
        // beside timestamps (12 bytes) at most 28 bytes of MPTCP options fit
        let room = |out: &OptBuf, extra: usize| out.wire_len() + extra <= 28;
        if let Some((dsn, _)) = self.mp_fail_pending.filter(|_| bare && room(out, 12)) {
            // on pure ACKs, where it fits beside the DSS (as Linux sends it)
            out.push(MptcpOption::MpFail { dsn });
        }
        let sf = &self.subflows[i];
        if sf.prio_pending && seg.payload_len == 0 {
            if room(out, 4) {
                let backup = sf.backup;
                out.push(MptcpOption::MpPrio {
                    backup,
                    addr_id: None,
                });
                self.subflows[i].prio_pending = false;
                mib.MPPrioTx += 1;
            } else {
                // a signal took the room: on the next ACK
                self.subflows[i].tcb.request_ack();
            }
        }
    }

    fn emit(
        &mut self,
        now: Instant,
        i: usize,
        seg: &SegmentOut,
        buf: &mut [u8],
        csum_partial: bool,
        mib: &mut Mib,
    ) -> Result<TxPacket, crate::wire::WireError> {
        let mut opts = OptBuf::default();
        self.options_for(now, i, seg, &mut opts, mib);
        if seg.flags & tcp::flags::RST != 0 && !opts.is_empty() {
            mib.MPRstTx += 1;
        }
        if seg.flags & tcp::flags::SYN != 0 && seg.flags & tcp::flags::ACK == 0 && !opts.is_empty()
        {
            mib.MPCapableSYNTX += 1;
        }
        let sf = &self.subflows[i];
        let sbuf = &self.sbuf;
        let maps = &sf.tx_maps;
        let fallback = self.mode == Mode::Fallback;
        let base = self.local_idsn.wrapping_add(1);
        let fill = |dst: &mut [u8]| {
            let mut off = seg.offset;
            let mut done = 0;
            while done < dst.len() {
                let (dsn, avail) = if fallback {
                    (base + off, u64::MAX)
                } else {
                    maps.lookup(off).unwrap_or((u64::MAX, u64::MAX))
                };
                let n = ((dst.len() - done) as u64).min(avail) as usize;
                let piece = &mut dst[done..done + n];
                copy_from_sbuf(sbuf, dsn, piece);
                done += n;
                off += n as u64;
            }
        };
        let ttl = self.cfg.ttl;
        let len = emit::emit_segment_csum(
            buf,
            sf.local,
            sf.remote,
            seg,
            &mut opts,
            sf.tos,
            ttl,
            csum_partial,
            fill,
        )?;
        if self.checksum && seg.payload_len > 0 {
            self.record_sent_csum(i, seg, &opts);
        }
        let sf = &self.subflows[i];
        let l4 = crate::wire::ip::header_len(sf.local.ip());
        Ok(TxPacket {
            len,
            gso_size: seg.gso_size,
            csum_partial,
            l4_offset: l4 as u16,
            hdr_len: (len - seg.payload_len as usize) as u16,
            ipv6: sf.local.is_ipv6(),
        })
    }

    // ----- subflow bookkeeping used by the stack ---------------------------------------

    /// An ICMP "packet too big" for subflow `idx` quoting sequence number `seq`, next-hop MTU
    /// `mtu`: if `seq` is in flight on that subflow, its segments shrink to fit (RFC 1191,
    /// RFC 8201), bounded below by the IP version's minimum MTU.
    pub fn path_too_big(&mut self, idx: usize, seq: u32, mtu: u32, mib: &mut Mib) {
        let Some(sf) = self.subflows.get_mut(idx) else {
            mib.IcmpIgnored += 1;
            return;
        };
        if !sf.tcb.seq_outstanding(seq) || mtu < 68 {
            mib.IcmpIgnored += 1;
            return;
        }
        let mss = mss_for_mtu(sf.local.ip(), mtu.min(u32::from(u16::MAX)) as u16);
        if sf.tcb.set_path_mss(mss) {
            mib.PmtuUpdates += 1;
            log::debug!(
                "subflow {} {}->{}: path MTU {mtu}, MSS now {mss}",
                sf.id,
                sf.local,
                sf.remote
            );
        }
    }

    /// Index of the subflow with this 4-tuple.
    pub fn subflow_index(&self, local: SocketAddr, remote: SocketAddr) -> Option<usize> {
        self.subflows
            .iter()
            .position(|s| s.local == local && s.remote == remote)
    }
}

/// Copy `dst.len()` bytes of the data stream at `dsn` from the send buffer. Bytes already
/// released (acknowledged at the data level through another subflow) are written as zeros:
/// the receiver has them already and discards the copy.
fn copy_from_sbuf(sbuf: &SendBuffer, dsn: u64, dst: &mut [u8]) {
    let start = sbuf.start();
    let mut done = 0;
    if dsn < start {
        let z = ((start - dsn) as usize).min(dst.len());
        dst[..z].fill(0);
        done = z;
    }
    if done < dst.len() {
        let got = sbuf.copy_out(dsn + done as u64, &mut dst[done..]);
        dst[done + got..].fill(0);
    }
}

/// Up to four MPTCP options for one segment, without allocation.
#[derive(Default)]
pub struct OptBuf<'a> {
    opts: [Option<MptcpOption<'a>>; 4],
    len: usize,
    /// DSN of the first byte of an MP_CAPABLE-with-data packet (for its checksum).
    pub mpc_dsn: u64,
    /// The DSS / MP_CAPABLE checksum is already set (a retransmission under the mapping
    /// first sent, which covers more than this segment): `emit_segment` keeps it.
    pub csum_given: bool,
}

impl<'a> OptBuf<'a> {
    pub fn push(&mut self, o: MptcpOption<'a>) {
        if self.len < 4 {
            self.opts[self.len] = Some(o);
            self.len += 1;
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes the options take on the wire (each padded to 4 bytes, as `emit_segment` lays
    /// them out at worst).
    pub fn wire_len(&self) -> usize {
        self.iter().map(|o| o.len().div_ceil(4) * 4).sum()
    }
    pub fn iter(&self) -> impl Iterator<Item = &MptcpOption<'a>> + Clone {
        self.opts[..self.len].iter().flatten()
    }
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut MptcpOption<'a>> {
        self.opts[..self.len].iter_mut().flatten()
    }
}

/// Delivers a subflow's in-window payload into the connection's reassembly buffer.
struct Sink<'a> {
    maps: &'a MapList,
    rbuf: &'a mut RecvBuffer,
    fallback_base: Option<u64>,
    no_map: u64,
}

impl RxSink for Sink<'_> {
    fn deliver(&mut self, offset: u64, data: &[u8]) -> usize {
        let mut done = 0usize;
        while done < data.len() {
            let off = offset + done as u64;
            let (dsn, avail) = match self.fallback_base {
                Some(base) => (base.wrapping_add(off), u64::MAX),
                None => match self.maps.lookup(off) {
                    Some(x) => x,
                    None => {
                        self.no_map += 1;
                        break;
                    }
                },
            };
            let n = ((data.len() - done) as u64).min(avail) as usize;
            let acc = self.rbuf.write_at(dsn, &data[done..done + n]);
            done += acc;
            if acc < n {
                break;
            }
        }
        done
    }

    fn window(&self) -> u32 {
        self.rbuf.window()
    }
}
