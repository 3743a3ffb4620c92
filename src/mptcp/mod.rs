//! The MPTCP connection (RFC 8684): handshake and fallback, DSS mapping on send and receive,
//! DATA_ACK, connection-level reassembly and window, DATA_FIN, subflows.
//!
//! A `Connection` is sans-IO: the stack hands it parsed segments for one of its subflows and
//! asks it for packets to send; it never reads a clock.

mod commands;
mod config;
mod data;
pub mod dsn;
pub mod emit;
mod mapping;
pub mod mib;
mod multipath;
mod output;
mod rx;
mod signals;
pub mod subflow;
#[cfg(test)]
mod testkit;
mod timer;
mod timers;
mod tx;

pub use commands::AddressError;
pub use config::*;
pub use multipath::{EndpointEvent, OpenError, SubflowOptions};
pub use output::OptBuf;
pub use timer::{Timer, TimerTable};

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
    fin_backoff: u32,
    /// DSN ranges to send again on another subflow.
    reinject: VecDeque<(u64, u32)>,
    /// Backoff of the data-level retransmission timer (`Timer::DataRtx`, armed while data
    /// is unacknowledged at the data level).
    rtx_backoff: u32,
    /// After a data-level timeout: keep re-sending from DATA_ACK while nothing is in flight
    /// and the DATA_ACK is below this DSN (the drop may have taken more than one chunk).
    rtx_recover: Option<u64>,
    /// Backoff of the data-level zero-window probe (`Timer::ZeroWindowProbe`).
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
    /// until the peer's infinite mapping arrives, or until `Timer::MpFail` (then the
    /// subflow is reset, as Linux does when its MP_FAIL goes unanswered).
    mp_fail_dsn: Option<u64>,
    /// The peer's MP_FAIL arrived on the only subflow: the next data segment carries an
    /// infinite mapping, then the connection is plain TCP.
    infinite_map_pending: bool,
    /// The infinite mapping just left: fall back once the segment is out.
    infinite_map_sent: bool,
    /// The connection's own timers (DATA_FIN, data-level retransmission, zero-window probe,
    /// MP_FAIL wait, memory trim).
    timers: TimerTable,
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
            fin_backoff: 0,
            reinject: VecDeque::new(),
            rtx_backoff: 0,
            rtx_recover: None,
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
            mp_fail_dsn: None,
            infinite_map_pending: false,
            infinite_map_sent: false,
            timers: TimerTable::default(),
            mp: multipath::MpState::new(&cfg),
            cfg,
        }
    }

    /// Queue an event for the application; the oldest is dropped past 256 undrained ones.
    fn push_event(&mut self, ev: ConnEvent) {
        // every connection and subflow event, for `-v` (info): joins, announcements,
        // priorities, fallback, and why subflows and the connection closed
        tracing::info!(conn = %format_args!("{:08x}", self.local_token), "{ev:?}");
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
            tracing::debug!(
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
