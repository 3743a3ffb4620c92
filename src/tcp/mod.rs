//! Sans-IO TCP subflow engine (RFC 9293, RFC 6298, RFC 5681/6582, RFC 2018/6675, RFC 7323).
//!
//! The engine keeps sequence state, timers and congestion control, but it **owns no payload
//! bytes**: outgoing segments name a range of the subflow byte stream (`SegmentOut::offset`,
//! `payload_len`) and the caller copies those bytes from wherever they live (the MPTCP
//! connection's send ring) straight into the transmit buffer; incoming in-window payload is
//! handed to an [`RxSink`] together with its stream offset, so the caller copies it once into
//! its own reassembly buffer. The engine tracks only *which* stream ranges were received.
//!
//! MPTCP options enter through the caller: it adds its own options when it serialises a
//! `SegmentOut`, and reads them from the packet before calling `handle_segment`. This module
//! names no MPTCP type.
//!
//! Stream offsets: byte 0 of the stream is the byte with sequence number ISN+1 (the first
//! byte after the SYN), in each direction. Offsets are `u64` so they never wrap.
//!
//! Driving a [`Tcb`] (sans-IO, quinn-style):
//! 1. feed input: `handle_segment(now, seg, sink)` for each packet, `handle_timeout(now)`
//!    once `now >= poll_timeout()`; user calls (`enqueue`, `close`, `abort`,
//!    `note_receive_space`, `request_ack`) at any time;
//! 2. then drain `poll_transmit(now, tx)` until `None` (the engine may owe several
//!    duplicate ACKs after a batch of out-of-order segments), and `poll_event()`;
//! 3. sleep until `poll_timeout()` or the next packet.
//!
//! Segments that match no connection are answered with [`reset_for`].

use crate::time::Duration;

mod tcb;
pub use tcb::{reset_for, syn_ack_for, Tcb, TxParams};
// the option representations belong to the wire layer (below this one); re-exported here
// because the engine's segments carry them
pub use crate::wire::tcp_opt::{SackBlocks, TcpOptions};

/// TCP header flag bits.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// An incoming segment, already parsed by the caller (the checksum was verified).
#[derive(Clone, Copy, Debug)]
pub struct SegmentIn<'a> {
    pub seq: u32,
    pub ack: u32,
    /// `flags::*` bits.
    pub flags: u8,
    /// The raw (unscaled) window field.
    pub window: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

/// An outgoing segment chosen by the engine. The caller writes the IP and TCP headers, these
/// options plus its own, and copies `payload_len` stream bytes starting at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentOut {
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    /// The window field to put on the wire (already scaled down).
    pub window: u16,
    pub options: TcpOptions,
    /// Stream offset of the first payload byte (meaningful when `payload_len > 0`).
    pub offset: u64,
    pub payload_len: u32,
    /// True if this segment re-sends bytes already sent once.
    pub retransmission: bool,
    /// Non-zero: a super-segment (TSO) of `payload_len` bytes that the device splits into
    /// segments of `gso_size` payload bytes, each with these headers and options (see
    /// [`TxParams::tso_bytes`](crate::tcp::TxParams)).
    pub gso_size: u16,
}

/// Receives in-window payload for the caller's reassembly buffer.
pub trait RxSink {
    /// In-window payload starting at stream `offset` (it may be out of order or overlap data
    /// delivered before). Returns how many leading bytes of `data` were accepted; bytes not
    /// accepted count as not received and are not acknowledged.
    fn deliver(&mut self, offset: u64, data: &[u8]) -> usize;
    /// Free receive space to advertise, in bytes (before window scaling).
    fn window(&self) -> u32;
}

/// TCP states (RFC 9293 section 3.3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

impl State {
    /// The RFC 9293 name in lower case (`established`, `syn-sent`, `time-wait`, ...), as
    /// printed in summaries and statistics.
    pub fn name(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Listen => "listen",
            State::SynSent => "syn-sent",
            State::SynReceived => "syn-received",
            State::Established => "established",
            State::FinWait1 => "fin-wait-1",
            State::FinWait2 => "fin-wait-2",
            State::CloseWait => "close-wait",
            State::Closing => "closing",
            State::LastAck => "last-ack",
            State::TimeWait => "time-wait",
        }
    }
}

impl core::fmt::Display for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a subflow ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// Both FINs exchanged and acknowledged (after TIME-WAIT, or LAST-ACK acked).
    Normal,
    /// The peer sent a valid RST.
    Reset,
    /// Retransmissions exhausted (or the user timeout expired).
    Timeout,
    /// The local side aborted (sent RST).
    Aborted,
}

impl CloseReason {
    /// `normal`, `reset`, `timeout` or `aborted`.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Normal => "normal",
            CloseReason::Reset => "reset",
            CloseReason::Timeout => "timeout",
            CloseReason::Aborted => "aborted",
        }
    }
}

impl core::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Events for the owner of the engine, drained with `poll_event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The three-way handshake completed (either role).
    Established,
    /// The peer's FIN arrived in order: no more stream bytes will come.
    PeerFin,
    /// The connection left the synchronized states for good.
    Closed(CloseReason),
}

/// Configuration of one subflow.
#[derive(Clone, Debug)]
pub struct Config {
    /// MSS we advertise (MTU minus IP and TCP headers).
    pub mss: u16,
    /// Our window scale shift (0..=14).
    pub window_scale: u8,
    pub sack: bool,
    pub timestamps: bool,
    /// Delayed-ACK timeout (RFC 9293 says < 500 ms; Linux uses 40 ms).
    pub delayed_ack: Duration,
    pub nodelay: bool,
    pub rto_initial: Duration,
    pub rto_min: Duration,
    pub rto_max: Duration,
    /// SYN retransmissions before giving up.
    pub syn_retries: u8,
    /// Data retransmissions (RTO backoffs) before giving up.
    pub max_retries: u8,
    /// RFC 5482 user timeout: abort when data stays unacknowledged this long.
    pub user_timeout: Option<Duration>,
    pub time_wait: Duration,
    /// Congestion control algorithm name, see `crate::cc::by_name`.
    pub congestion: &'static str,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mss: 1460,
            window_scale: 7,
            sack: true,
            timestamps: true,
            delayed_ack: Duration::from_millis(40),
            nodelay: true,
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(60),
            syn_retries: 6,
            max_retries: 15,
            user_timeout: None,
            time_wait: Duration::from_secs(60),
            congestion: "cubic",
        }
    }
}

/// TCP_INFO-like statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub srtt: Option<Duration>,
    pub rttvar: Option<Duration>,
    pub rto: Duration,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub bytes_in_flight: u32,
    pub snd_mss: u16,
    pub rcv_mss: u16,
    pub bytes_sent: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_out: u64,
    pub segs_in: u64,
    pub retransmits: u64,
    pub fast_retransmits: u64,
    pub rto_count: u64,
    pub peer_window: u32,
}
