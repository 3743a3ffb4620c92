//! The transmission control block: one TCP connection's state machine (RFC 9293 3.10),
//! RTT/RTO (RFC 6298), loss recovery (RFC 5681, RFC 6582 NewReno, RFC 6675 SACK), window
//! scaling and timestamps (RFC 7323), delayed ACKs, zero-window probing, Nagle.
//!
//! Internally both directions are tracked in 64-bit *sequence-space offsets* that never wrap:
//! on the send side offset 0 is the ISS (our SYN), offset `1 + k` is stream byte `k` and the
//! FIN sits at `1 + send_end`; on the receive side offset 0 is the IRS. Wire sequence numbers
//! are converted at the edges with wrapping 32-bit arithmetic relative to a known point
//! (`snd_una`, `rcv_nxt`), so a segment can never move the state by more than 2^31.

use super::{
    flags, CloseReason, Config, Event, RxSink, SackBlocks, SegmentIn, SegmentOut, State, Stats,
    TcpOptions,
};
use crate::cc::{self, AckContext, CongestionControl, CouplingView, PathCc};
use crate::storage::RangeSet;
use crate::time::{Duration, Instant};
use std::collections::VecDeque;

/// Out-of-order ranges kept by the receiver (more are refused and not acknowledged).
const RX_RANGES: usize = 64;
/// Most chunk boundaries remembered (the MPTCP layer keeps fewer mappings than this).
pub const MAX_BOUNDARIES: usize = 512;
/// Most sent-segment ends remembered when [`Tcb::keep_segment_marks`] is on; new data waits
/// while the table is full (acknowledgements free it).
pub const MAX_SEGMENT_MARKS: usize = 16384;
/// SACKed ranges kept by the sender.
const SACK_RANGES: usize = 32;
/// RFC 9293 3.7.1: MSS to assume when the peer sent no MSS option.
const DEFAULT_MSS: u16 = 536;
/// Smallest payload size a path MTU report may set (Linux's min_pmtu 552 minus headers).
const MIN_PATH_MSS: u16 = 512;
/// Receivers ACK every segment until this many segments arrived (Linux's quick-ACK mode
/// at start), so the sender's slow start is not slowed by delayed ACKs.
const QUICKACK_SEGS: u64 = 16;
/// Duplicate ACK threshold (RFC 5681, RFC 6675 DupThresh).
const DUPTHRESH: u32 = 3;
/// Length of the timestamps option with its two NOPs.
const TS_LEN: usize = 12;
/// Maximum TCP option space.
const MAX_OPT: usize = 40;

/// What the caller tells `poll_transmit` about the segment being built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxParams {
    /// Option bytes the caller will add (MPTCP) to a segment carrying data; payload and SACK
    /// blocks shrink to fit.
    pub extra_option_len: usize,
    /// Option bytes the caller will add to a segment without data (a pure ACK); SACK blocks
    /// shrink to fit. The caller drops SACK blocks (newest kept) if it adds more.
    pub extra_option_len_ack: usize,
    /// Free receive space to advertise, in bytes.
    pub rcv_space: u32,
    /// `rcv_space` is a connection-level window whose right edge the caller keeps from
    /// shrinking (MPTCP: relative to the DATA_ACK, RFC 8684 3.3.4): advertise it as it is.
    /// Otherwise the engine keeps its own right edge from moving left (RFC 9293), which for
    /// an MPTCP subflow would announce space the connection does not have when another
    /// subflow filled it.
    pub data_level_window: bool,
    /// Largest payload of one new-data segment when the device splits super-segments
    /// (TSO): 0 or anything below one full segment means ordinary segments. A super-segment
    /// carries whole segments of the payload size the options leave (the last one may be
    /// short when it ends the queued data) and only what the congestion window admits.
    pub tso_bytes: u32,
}

/// One TCP connection (subflow). See the module documentation of `crate::tcp`.
#[derive(Debug)]
pub struct Tcb {
    cfg: Config,
    state: State,

    // ---- send side (send-space offsets: 0 = SYN, 1 + k = stream byte k) ----
    iss: u32,
    snd_una: u64,
    snd_nxt: u64,
    /// One past the highest offset ever sent.
    snd_max: u64,
    /// Stream bytes enqueued.
    send_end: u64,
    /// Stream offsets no segment may cross (starts of `enqueue_chunk` runs), ascending.
    boundaries: VecDeque<u64>,
    /// Stream offsets where a data segment sent for the first time ended, ascending, from
    /// the last one at or below snd_una (the start of the segment snd_una is in) on; kept
    /// only with `keep_marks`. Retransmissions never cross one, so every byte is sent again
    /// within the segment it first went in (MPTCP: under the mapping first declared for it).
    marks: VecDeque<u64>,
    keep_marks: bool,
    /// Marks below snd_una were dropped: the first one no longer starts the stream.
    marks_pruned: bool,
    fin_queued: bool,
    /// Peer window in bytes (already scaled).
    snd_wnd: u32,
    max_snd_wnd: u32,
    /// Receive-space offset of the segment that last updated the window.
    snd_wl1: u64,
    /// Send-space offset acknowledged by that segment.
    snd_wl2: u64,
    snd_wscale: u8,
    rcv_wscale: u8,
    /// The peer's SYN carried a window scale option.
    ws_negotiated: bool,
    sack_ok: bool,
    ts_ok: bool,
    peer_mss: u16,
    /// Largest payload the path carries (from the device MTU or ICMP "packet too big"),
    /// before TCP options are taken out.
    path_mss: u16,
    /// Option bytes the caller adds to data segments (`TxParams::extra_option_len`, last
    /// seen), so that the congestion window counts segments of the payload they carry.
    data_extra: usize,

    // ---- receive side (receive-space offsets: 0 = SYN, 1 + k = stream byte k) ----
    irs: u32,
    /// Stream offset: everything below was received in order.
    rcv_nxt_off: u64,
    /// The peer's FIN was received in order.
    fin_rcvd: bool,
    /// Stream offset at which the peer's FIN sits (it may have arrived out of order).
    peer_fin_off: Option<u64>,
    /// Receive-space offset of the right edge of the window we advertised.
    rcv_right: u64,
    /// Window advertised in our SYN, applied once the IRS is known.
    syn_wnd: u32,
    /// Stream ranges received above `rcv_nxt_off`.
    rx_ranges: RangeSet,
    /// Stream offsets of the most recently received out-of-order segments, newest first.
    sack_recent: [u64; 4],
    sack_recent_len: usize,
    ts_recent: u32,
    /// Receive-space offset acknowledged by the last segment we sent.
    last_ack_sent: u64,
    ts_offset: u32,
    unacked_segs: u32,
    /// The held ACK covers a segment shorter than a full one, the end of the sender's
    /// burst (Linux's ICSK_ACK_PUSHED); see `flush_delayed_ack`.
    ack_pushed: bool,
    /// The largest single segment received (Linux's rcv_mss): what "full" means above.
    rcv_mss_seen: u32,

    // ---- ACK scheduling ----
    ack_now: bool,
    /// Immediate ACKs still owed (one per out-of-order or duplicate segment, capped), so
    /// that a caller processing a batch of segments still emits duplicate ACKs.
    acks_owed: u8,
    delack_at: Option<Instant>,
    win_update: bool,

    // ---- timers and RTT ----
    rto: Duration,
    srtt: Option<Duration>,
    rttvar: Option<Duration>,
    rto_at: Option<Instant>,
    retries: u8,
    /// Karn's rule timing: (send offset that must be acked, send time).
    rtt_sample: Option<(u64, Instant)>,
    persist_at: Option<Instant>,
    persist_backoff: u32,
    /// Zero-window probes sent since the peer last acknowledged anything.
    probes_unanswered: u8,
    probe_pending: bool,
    tw_at: Option<Instant>,
    /// Last forward progress while data was outstanding (user timeout).
    last_progress: Option<Instant>,

    // ---- loss recovery ----
    dupacks: u32,
    in_recovery: bool,
    /// RFC 6582 "recover": snd_max when recovery (or the last RTO) started.
    recover: u64,
    /// Retransmit the first hole / first unacked segment on the next poll.
    rexmit_pending: bool,
    /// SACK recovery: holes below this were retransmitted.
    rexmit_next: u64,
    /// SACKed send-space ranges above `snd_una`.
    scoreboard: RangeSet,

    // ---- congestion window validation (RFC 7661's purpose, Linux's rule) ----
    /// Highest bytes in flight seen in the current window of data (sampled before each ACK,
    /// which is the peak since the previous one).
    flight_peak: u32,
    /// `flight_peak` of the previous window.
    flight_peak_prev: u32,
    /// The current window ends when `snd_una` reaches this.
    flight_peak_end: u64,

    /// `stats.bytes_acked` at the last loss event, and the bytes acked between the last two.
    acked_at_loss: u64,
    acked_between_losses: u64,
    cc: Box<dyn CongestionControl>,
    coupling: Option<CouplingView>,
    events: VecDeque<Event>,
    rst_pending: bool,
    reply: Option<SegmentOut>,
    stats: Stats,
}

fn seq_diff(a: u32, b: u32) -> i64 {
    i64::from(a.wrapping_sub(b) as i32)
}

fn controller(cfg: &Config, mss: u16) -> Box<dyn CongestionControl> {
    cc::by_name(cfg.congestion, mss).unwrap_or_else(|| Box::new(cc::Reno::new(mss)))
}

impl Tcb {
    fn new(config: Config, iss: u32, state: State) -> Tcb {
        let mut cfg = config;
        cfg.window_scale = cfg.window_scale.min(14);
        cfg.mss = cfg.mss.max(64);
        let cc = controller(&cfg, cfg.mss);
        Tcb {
            state,
            iss,
            snd_una: 0,
            snd_nxt: 0,
            snd_max: 0,
            send_end: 0,
            fin_queued: false,
            snd_wnd: 0,
            max_snd_wnd: 0,
            snd_wl1: 0,
            snd_wl2: 0,
            snd_wscale: 0,
            rcv_wscale: 0,
            ws_negotiated: false,
            sack_ok: false,
            ts_ok: false,
            peer_mss: DEFAULT_MSS,
            path_mss: u16::MAX,
            data_extra: 0,
            irs: 0,
            rcv_nxt_off: 0,
            fin_rcvd: false,
            peer_fin_off: None,
            rcv_right: 1,
            syn_wnd: 0,
            rx_ranges: RangeSet::with_capacity(RX_RANGES),
            sack_recent: [0; 4],
            sack_recent_len: 0,
            ts_recent: 0,
            last_ack_sent: 0,
            ts_offset: ts_offset_for(iss),
            unacked_segs: 0,
            ack_pushed: false,
            rcv_mss_seen: 0,
            ack_now: false,
            acks_owed: 0,
            delack_at: None,
            win_update: false,
            rto: cfg
                .rto_initial
                .clamp(cfg.rto_min, cfg.rto_max.max(cfg.rto_min)),
            srtt: None,
            rttvar: None,
            rto_at: None,
            retries: 0,
            rtt_sample: None,
            persist_at: None,
            persist_backoff: 0,
            probes_unanswered: 0,
            probe_pending: false,
            tw_at: None,
            last_progress: None,
            dupacks: 0,
            in_recovery: false,
            recover: 0,
            rexmit_pending: false,
            rexmit_next: 0,
            scoreboard: RangeSet::with_capacity(SACK_RANGES),
            flight_peak: 0,
            flight_peak_prev: 0,
            flight_peak_end: 0,
            acked_at_loss: 0,
            acked_between_losses: 0,
            cc,
            coupling: None,
            events: VecDeque::with_capacity(8),
            rst_pending: false,
            boundaries: VecDeque::new(),
            marks: VecDeque::new(),
            keep_marks: false,
            marks_pruned: false,
            reply: None,
            stats: Stats::default(),
            cfg,
        }
    }

    /// Active open: SYN-SENT; the first `poll_transmit` yields the SYN.
    pub fn connect(config: Config, iss: u32, _now: Instant) -> Tcb {
        Tcb::new(config, iss, State::SynSent)
    }

    /// Passive open from a received SYN (the caller checked: SYN set, ACK and RST clear).
    /// SYN-RECEIVED; the first `poll_transmit` yields the SYN/ACK.
    pub fn accept(config: Config, syn: &SegmentIn, iss: u32, _now: Instant) -> Tcb {
        let mut t = Tcb::new(config, iss, State::SynReceived);
        t.irs = syn.seq;
        t.negotiate(&syn.options);
        t.snd_wnd = u32::from(syn.window);
        t.max_snd_wnd = t.snd_wnd;
        t
    }

    /// Passive open whose SYN/ACK was already sent by someone else (the stack's SYN queue
    /// or a SYN cookie, built with [`syn_ack_for`] from the same `config`, `syn` and `iss`
    /// and advertising `window`): SYN-RECEIVED with the SYN/ACK counted as sent, so the
    /// third ACK completes the handshake. `sent_at` is when a SYN/ACK that was never
    /// retransmitted left (an RTT sample, Karn's rule); `None` otherwise.
    pub fn accept_answered(
        config: Config,
        syn: &SegmentIn,
        iss: u32,
        now: Instant,
        sent_at: Option<Instant>,
        window: u16,
    ) -> Tcb {
        let mut t = Tcb::accept(config, syn, iss, now);
        t.snd_nxt = 1;
        t.snd_max = 1;
        t.rcv_right = 1 + u64::from(window);
        t.last_ack_sent = 1;
        t.rtt_sample = sent_at.map(|at| (1, at));
        t.rto_at = Some(now + t.rto);
        t
    }

    /// Apply the options of the peer's SYN.
    fn negotiate(&mut self, o: &TcpOptions) {
        self.peer_mss = o.mss.unwrap_or(DEFAULT_MSS).max(64);
        self.ws_negotiated = o.window_scale.is_some();
        if let Some(ws) = o.window_scale {
            self.snd_wscale = ws.min(14);
            self.rcv_wscale = self.cfg.window_scale;
        } else {
            self.snd_wscale = 0;
            self.rcv_wscale = 0;
        }
        self.sack_ok = self.cfg.sack && o.sack_permitted;
        self.ts_ok = self.cfg.timestamps && o.timestamps.is_some();
        if let Some((tsval, _)) = o.timestamps {
            self.ts_recent = tsval;
        }
    }

    pub fn state(&self) -> State {
        self.state
    }
    pub fn iss(&self) -> u32 {
        self.iss
    }
    pub fn irs(&self) -> u32 {
        self.irs
    }
    pub fn peer_mss(&self) -> u16 {
        self.peer_mss
    }
    /// Appended stream length: the offset one past the last enqueued byte.
    pub fn send_queue_end(&self) -> u64 {
        self.send_end
    }
    /// First unacknowledged stream byte.
    pub fn snd_una_offset(&self) -> u64 {
        self.snd_una.saturating_sub(1).min(self.send_end)
    }
    /// Next stream byte to be sent for the first time (or again after an RTO).
    pub fn snd_nxt_offset(&self) -> u64 {
        self.snd_nxt.saturating_sub(1).min(self.send_end)
    }
    /// All stream bytes below were received in order.
    pub fn rcv_nxt_offset(&self) -> u64 {
        self.rcv_nxt_off
    }
    /// Handshake done and the connection not closed.
    pub fn is_synchronized(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
                | State::Closing
                | State::LastAck
                | State::TimeWait
        )
    }
    pub fn set_nodelay(&mut self, on: bool) {
        self.cfg.nodelay = on;
    }
    pub fn set_user_timeout(&mut self, t: Option<Duration>) {
        self.cfg.user_timeout = t;
    }
    /// Coupling view for the coupled congestion controllers (LIA, OLIA, BALIA).
    pub fn set_coupling(&mut self, view: CouplingView) {
        self.coupling = Some(view);
    }
    /// Whether the congestion controller reads a coupling view (LIA, OLIA, BALIA).
    pub fn coupled(&self) -> bool {
        self.cc.coupled()
    }
    /// This subflow's entry for a coupling view (`usable` is true while synchronized).
    pub fn path_cc(&self) -> PathCc {
        PathCc {
            cwnd: self.cc.cwnd(),
            srtt: self.srtt.unwrap_or(self.rto),
            mss: self.seg_mss() as u16,
            bytes_since_loss: self.stats.bytes_acked - self.acked_at_loss,
            bytes_between_last_losses: self.acked_between_losses,
            usable: matches!(self.state, State::Established | State::CloseWait),
        }
    }

    fn note_loss(&mut self) {
        self.acked_between_losses = self.stats.bytes_acked - self.acked_at_loss;
        self.acked_at_loss = self.stats.bytes_acked;
    }

    /// Current congestion window in bytes.
    pub fn cwnd(&self) -> u32 {
        self.cc.cwnd()
    }
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// Sender MSS: what the peer accepts, bounded by our own and by the path MTU. TCP
    /// options come out of it (RFC 6691), see `data_segment`.
    fn smss(&self) -> u32 {
        u32::from(self.peer_mss.min(self.cfg.mss).min(self.path_mss).max(64))
    }

    /// Payload of a full data segment: SMSS minus the options every data segment carries
    /// (timestamps and the caller's, padded; SACK blocks, which come and go, aside). The
    /// congestion window is kept in units of it (RFC 5681's SMSS is the largest segment
    /// the sender can send, options excluded): counted in SMSS, a window of N SMSS would
    /// carry N full segments plus a runt of N times the option bytes.
    fn seg_mss(&self) -> u32 {
        let ts = if self.ts_ok { TS_LEN } else { 0 };
        let opts = (ts + self.data_extra + 3) & !3;
        self.smss().saturating_sub(opts as u32).max(1)
    }

    /// The path MTU (minus IP and TCP headers) is `mss` (RFC 1191 / RFC 8201: an ICMP
    /// "fragmentation needed" / "packet too big" for one of our segments). Lowers the
    /// segment size; never raises it. Segments in flight that were too big are lost: they
    /// are sent again at once at the new size, without a congestion response (as Linux's
    /// `tcp_simple_retransmit`). Returns whether the size went down.
    pub fn set_path_mss(&mut self, mss: u16) -> bool {
        let mss = mss.max(MIN_PATH_MSS);
        if mss >= self.smss() as u16 {
            self.path_mss = self.path_mss.min(mss);
            return false;
        }
        self.path_mss = mss;
        if self.is_synchronized() && self.snd_max > self.snd_una {
            // go back to the first unacknowledged byte; SACKed ranges are skipped
            self.snd_nxt = self.snd_una;
            self.rexmit_pending = false;
            self.rexmit_next = self.snd_una;
            self.rtt_sample = None;
        }
        true
    }

    /// Whether `seq` lies in what was sent and is not yet acknowledged (a quoted segment in an
    /// ICMP error must be one of ours in flight, RFC 5927).
    pub fn seq_outstanding(&self, seq: u32) -> bool {
        let s = self.snd_unwrap(seq);
        self.is_synchronized() && s >= self.snd_una as i64 && s < self.snd_max as i64
    }

    /// Send a window probe on the next poll: a segment with an old sequence number, which
    /// the peer answers with an ACK carrying its current window (and, with MPTCP, its
    /// DATA_ACK). Used by the connection when the data-level window is closed.
    pub fn probe_window(&mut self) {
        if self.is_synchronized() && self.state != State::Closed {
            self.probe_pending = true;
        }
    }

    /// The peer's window scale shift (0 before the handshake or without scaling).
    pub fn snd_wscale(&self) -> u8 {
        self.snd_wscale
    }

    /// Our receive window scale shift (0 before the handshake or without scaling).
    pub fn rcv_wscale(&self) -> u8 {
        self.rcv_wscale
    }

    /// The current path-MTU bound on the payload (u16::MAX: none known).
    pub fn path_mss(&self) -> u16 {
        self.path_mss
    }

    fn rcv_nxt_space(&self) -> u64 {
        self.rcv_nxt_off + 1 + u64::from(self.fin_rcvd)
    }
    fn snd_seq(&self, off: u64) -> u32 {
        self.iss.wrapping_add(off as u32)
    }
    fn rcv_seq(&self, off: u64) -> u32 {
        self.irs.wrapping_add(off as u32)
    }
    /// Send-space offset of a wire ACK number (may be negative or beyond `snd_max`).
    fn snd_unwrap(&self, seq: u32) -> i64 {
        self.snd_una as i64 + seq_diff(seq, self.snd_seq(self.snd_una))
    }
    /// Receive-space offset of a wire sequence number.
    fn rcv_unwrap(&self, seq: u32) -> i64 {
        let nxt = self.rcv_nxt_space();
        nxt as i64 + seq_diff(seq, self.rcv_seq(nxt))
    }
    /// Send-space offset one past the last data byte (the FIN's offset).
    fn data_end(&self) -> u64 {
        self.send_end + 1
    }
    fn fin_sent(&self) -> bool {
        self.fin_queued && self.snd_max > self.data_end()
    }
    /// Our FIN was sent and acknowledged.
    pub fn fin_acked(&self) -> bool {
        self.fin_queued && self.snd_una > self.data_end()
    }
    fn ts_now(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }

    /// One past the highest stream byte sent so far.
    pub fn snd_max_offset(&self) -> u64 {
        self.snd_max.saturating_sub(1).min(self.send_end)
    }

    /// Append `len` bytes that must not share a segment with the bytes before them (MPTCP:
    /// a run whose data-sequence mapping does not continue the previous one). Returns
    /// false, enqueuing nothing, when too many boundaries are outstanding.
    pub fn enqueue_chunk(&mut self, len: u32) -> bool {
        if self.fin_queued || matches!(self.state, State::Closed | State::TimeWait) {
            return false;
        }
        let una = self.snd_una_offset();
        while self.boundaries.front().is_some_and(|&b| b <= una) {
            self.boundaries.pop_front();
        }
        if self.boundaries.len() >= MAX_BOUNDARIES {
            return false;
        }
        if self.boundaries.back() != Some(&self.send_end) {
            self.boundaries.push_back(self.send_end);
        }
        self.send_end += u64::from(len);
        true
    }

    /// Send-space bytes from `start` (send-space offset) to the next chunk boundary, or to
    /// the end of the segment the byte first went in (with segment marks kept).
    fn to_boundary(&self, start: u64) -> u64 {
        let off = start.saturating_sub(1);
        let i = self.boundaries.partition_point(|&b| b <= off);
        let chunk = self.boundaries.get(i).map_or(u64::MAX, |&b| b - off);
        let j = self.marks.partition_point(|&m| m <= off);
        let seg = self.marks.get(j).map_or(u64::MAX, |&m| m - off);
        chunk.min(seg)
    }

    /// Remember where each data segment sent for the first time ends, and send every byte
    /// again only within the segment it first went in: a retransmission never spans two
    /// original segments, and [`Tcb::sent_span`] tells which original segment a byte was
    /// in. MPTCP needs this (RFC 8684 3.3.1: a mapping, once declared, does not change;
    /// Linux's receiver refuses a different mapping for bytes inside the one it is
    /// consuming, `DSSNotMatching`, and falls back to TCP). Call before any data is sent.
    pub fn keep_segment_marks(&mut self) {
        self.keep_marks = true;
    }

    /// For a stream offset already sent: the (start, end) stream offsets of the data
    /// segment it was first sent in. `None` for bytes never sent, without segment marks, or
    /// once that segment is acknowledged.
    pub fn sent_span(&self, off: u64) -> Option<(u64, u64)> {
        if !self.keep_marks || off < self.snd_una_offset() {
            return None;
        }
        let i = self.marks.partition_point(|&m| m <= off);
        let end = *self.marks.get(i)?;
        let start = match i.checked_sub(1) {
            Some(k) => self.marks[k],
            None if !self.marks_pruned => 0,
            None => return None,
        };
        Some((start, end))
    }

    /// Drop the marks of acknowledged segments, keeping the start of the one snd_una is in.
    fn prune_marks(&mut self) {
        let una = self.snd_una_offset();
        while self.marks.len() >= 2 && self.marks[1] <= una {
            self.marks.pop_front();
            self.marks_pruned = true;
        }
    }

    /// Refuse the connection in answer to `seg` (e.g. a SYN/ACK whose MPTCP HMAC is
    /// wrong): a RST acceptable to the peer goes out on the next poll and the TCB closes.
    pub fn reject(&mut self, seg: &SegmentIn) {
        if self.state == State::Closed {
            return;
        }
        self.reply = reset_for(seg);
        self.close_with(CloseReason::Aborted);
    }

    /// The MSS we advertise and send with (in the SYN when set before it is sent).
    pub fn set_mss(&mut self, mss: u16) {
        self.cfg.mss = mss.max(64);
    }

    pub fn nodelay(&self) -> bool {
        self.cfg.nodelay
    }

    pub fn user_timeout(&self) -> Option<Duration> {
        self.cfg.user_timeout
    }

    /// MPTCP penalisation of a subflow that blocks the connection's receive window (Raiciu
    /// et al. NSDI 2012 section 4.2): the controller's [`CongestionControl::on_penalty`]
    /// (halve cwnd; ssthresh only in congestion avoidance). Skipped during loss recovery,
    /// whose reduction already stands (as the reference implementation, which penalises
    /// only in the `Open` state). Returns whether the window was reduced.
    ///
    /// [`CongestionControl::on_penalty`]: crate::cc::CongestionControl::on_penalty
    pub fn penalise(&mut self, now: Instant) -> bool {
        if self.in_recovery {
            return false;
        }
        let ctx = AckContext {
            in_flight: u32::try_from(self.snd_max - self.snd_una).unwrap_or(u32::MAX),
            mss: self.seg_mss() as u16,
            srtt: self.srtt(),
            coupling: None,
            hold_ssthresh: false,
        };
        self.cc.on_penalty(now, &ctx);
        true
    }

    /// Append `len` bytes to the send stream (the caller keeps them until acknowledged).
    pub fn enqueue(&mut self, len: u32) {
        if self.fin_queued || matches!(self.state, State::Closed | State::TimeWait) {
            return;
        }
        self.send_end += u64::from(len);
    }

    /// Whether the window was used enough to be grown (Linux's `tcp_is_cwnd_limited`, the
    /// purpose of RFC 7661): in slow start while the window is below twice the peak flight
    /// of the last two windows of data, in congestion avoidance while that peak left no
    /// room for another segment. A subflow held back by something else (the MPTCP
    /// scheduler, the data-level window, the application) keeps its window: grown on ACKs
    /// of a small flight, it later let out a burst of its whole size into the queue (seen
    /// against Linux: a 25 ms subflow limited by the data-level window reached 350 kB of
    /// window on 7 kB in flight, then lost 180 segments once the window opened).
    /// The window of data ends (and the peak moves to `flight_peak_prev`) when `snd_una`
    /// reaches what was sent when it began.
    fn cwnd_limited(&mut self) -> bool {
        let peak = self.flight_peak.max(self.flight_peak_prev);
        if self.snd_una >= self.flight_peak_end {
            self.flight_peak_prev = self.flight_peak;
            self.flight_peak = self.in_flight();
            self.flight_peak_end = self.snd_nxt.max(self.snd_una + 1);
        }
        let cwnd = self.cc.cwnd();
        if cwnd < self.cc.ssthresh() {
            cwnd < peak.saturating_mul(2)
        } else {
            peak.saturating_add(self.seg_mss()) > cwnd
        }
    }

    /// Bytes that may be sent now (congestion and peer window minus what is in flight).
    pub fn send_capacity(&self) -> u32 {
        if !matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait1 | State::LastAck
        ) {
            return 0;
        }
        // whole segments only (cwnd counts them, see `seg_mss`), so that a caller that
        // hands over exactly this much does not make the last segment a runt; with
        // nothing in flight one segment always may go
        let flight = self.in_flight();
        let seg = self.seg_mss();
        let room = self.cc.cwnd().saturating_sub(flight);
        let cwnd_room = (room - room % seg).max(if flight == 0 { seg } else { 0 });
        let mut wnd_room = (self.snd_una + u64::from(self.snd_wnd)).saturating_sub(self.snd_nxt);
        // sender SWS avoidance (RFC 9293 3.8.6.2.1, MUST-38): while data is in flight only
        // whole segments of the peer's window are offered (the ACKs will open the rest). A
        // caller handing over what is offered would otherwise make a runt of the remainder:
        // the engine cannot tell whether the caller has more, and sends what it was given
        // as the end of the data. With nothing in flight what fits may go.
        if flight > 0 {
            wnd_room -= wnd_room % u64::from(seg.max(1));
        }
        cwnd_room.min(u32::try_from(wnd_room).unwrap_or(u32::MAX))
    }

    /// Sacked bytes inside `[a, b)`.
    fn sacked_in(&self, a: u64, b: u64) -> u64 {
        self.scoreboard
            .iter()
            .map(|r| r.end.min(b).saturating_sub(r.start.max(a)))
            .sum()
    }

    /// Bytes estimated to be in the network (RFC 6675 "pipe", NewReno flight size).
    pub fn in_flight(&self) -> u32 {
        let out = self.snd_nxt.saturating_sub(self.snd_una);
        let pipe = if !self.in_recovery {
            out.saturating_sub(self.sacked_in(self.snd_una, self.snd_nxt))
        } else if self.sack_ok && !self.scoreboard.is_empty() {
            let hs = self.scoreboard.last().map_or(self.snd_una, |r| r.start);
            let sacked = self.sacked_in(self.snd_una, self.snd_max);
            let lost = hs.saturating_sub(self.snd_una) - self.sacked_in(self.snd_una, hs);
            let re_end = self.rexmit_next.min(hs).max(self.snd_una);
            let retrans = (re_end - self.snd_una) - self.sacked_in(self.snd_una, re_end);
            (out + retrans).saturating_sub(sacked + lost)
        } else {
            out.saturating_sub(u64::from(self.dupacks) * u64::from(self.seg_mss()))
        };
        u32::try_from(pipe).unwrap_or(u32::MAX)
    }

    /// The first un-SACKed hole at or above `from` that lies below the highest SACKed byte.
    fn next_hole(&self, from: u64) -> Option<(u64, u64)> {
        let hs = self.scoreboard.last()?.start;
        let mut s = from.max(self.snd_una);
        for r in self.scoreboard.iter() {
            if s < r.start {
                return (s < hs).then_some((s, r.start));
            }
            if s < r.end {
                s = r.end;
            }
        }
        None
    }

    // ------------------------------------------------------------------------------------
    // user calls
    // ------------------------------------------------------------------------------------

    /// The application read data: `space` bytes are free now. Schedules a window update if
    /// the window grew enough (RFC 9293 3.8.6.2.2 receiver SWS avoidance).
    pub fn note_receive_space(&mut self, space: u32) {
        if !self.is_synchronized() || self.fin_rcvd {
            return;
        }
        let max = 65535u64 << self.rcv_wscale;
        let space = u64::from(space).min(max);
        let cur = self.rcv_right.saturating_sub(self.rcv_nxt_space());
        let step = (space / 2).min(u64::from(self.cfg.mss)).max(1);
        if space >= cur + step {
            self.win_update = true;
        }
    }

    /// The application has read everything received: an ACK held back by the delayed-ACK
    /// timer for a segment shorter than a full one goes out now (Linux's `tcp_cleanup_rbuf`
    /// rule with ICSK_ACK_PUSHED). Holding it only delays the sender's clock: when a sender switches between subflows (MPTCP) or pauses, the last
    /// segment of a burst would otherwise wait the whole delayed-ACK timeout, the sender's
    /// tail-loss probe fires first, and the data level stalls behind that subflow.
    pub fn flush_delayed_ack(&mut self) {
        if self.delack_at.is_some() && self.ack_pushed {
            self.ack_now = true;
        }
    }

    /// Send a pure ACK on the next poll.
    pub fn request_ack(&mut self) {
        self.ack_now = true;
    }

    /// Send FIN after all enqueued data (RFC 9293 3.10.4 CLOSE).
    pub fn close(&mut self) {
        match self.state {
            State::SynSent | State::Listen => self.close_with(CloseReason::Normal),
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
    }

    /// Abort: RST on the next poll (if the peer knows us), then `Closed(Aborted)`.
    pub fn abort(&mut self) {
        match self.state {
            State::Closed => {}
            State::SynSent | State::Listen => self.close_with(CloseReason::Aborted),
            _ => {
                self.clear_timers();
                self.state = State::Closed;
                self.rst_pending = true;
            }
        }
    }

    fn clear_timers(&mut self) {
        self.rto_at = None;
        self.delack_at = None;
        self.persist_at = None;
        self.tw_at = None;
        self.ack_now = false;
        self.acks_owed = 0;
        self.win_update = false;
        self.probe_pending = false;
        self.rexmit_pending = false;
    }

    fn close_with(&mut self, reason: CloseReason) {
        self.clear_timers();
        self.state = State::Closed;
        self.events.push_back(Event::Closed(reason));
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Heap bytes this engine owns now: its range tables (out-of-order receive ranges, SACK
    /// scoreboard), chunk boundaries, event queue and congestion controller. The engine holds
    /// no payload bytes.
    pub fn heap_bytes(&self) -> usize {
        self.rx_ranges.heap_bytes()
            + self.scoreboard.heap_bytes()
            + self.boundaries.capacity() * core::mem::size_of::<u64>()
            + self.marks.capacity() * core::mem::size_of::<u64>()
            + self.events.capacity() * core::mem::size_of::<Event>()
            + core::mem::size_of_val(&*self.cc)
    }

    /// Give back table room beyond what is held (the range tables, chunk boundaries); for
    /// idle moments, never on the per-packet path.
    pub fn trim_memory(&mut self) {
        self.rx_ranges.shrink();
        self.scoreboard.shrink();
        if self.boundaries.len() <= self.boundaries.capacity() / 4 {
            self.boundaries.shrink_to(self.boundaries.len());
        }
        self.prune_marks();
        if self.marks.len() <= self.marks.capacity() / 4 {
            self.marks.shrink_to(self.marks.len());
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            srtt: self.srtt,
            rttvar: self.rttvar,
            rto: self.rto,
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            bytes_in_flight: self.in_flight(),
            snd_mss: self.smss() as u16,
            rcv_mss: self.cfg.mss,
            peer_window: self.snd_wnd,
            ..self.stats
        }
    }

    // ------------------------------------------------------------------------------------
    // timers
    // ------------------------------------------------------------------------------------

    fn user_deadline(&self) -> Option<Instant> {
        let ut = self.cfg.user_timeout?;
        if self.snd_max > self.snd_una && self.is_synchronized() {
            self.last_progress.map(|t| t + ut)
        } else {
            None
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.rto_at,
            self.delack_at,
            self.persist_at,
            self.tw_at,
            self.user_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.tw_at.is_some_and(|t| now >= t) {
            self.tw_at = None;
            self.close_with(CloseReason::Normal);
            return;
        }
        if self.user_deadline().is_some_and(|t| now >= t) {
            self.close_with(CloseReason::Timeout);
            return;
        }
        if self.delack_at.is_some_and(|t| now >= t) {
            self.delack_at = None;
            self.ack_now = true;
        }
        if self.persist_at.is_some_and(|t| now >= t) {
            // a peer that answers probes stays alive forever; one that does not is given
            // up on like unanswered retransmissions
            if self.probes_unanswered >= self.cfg.max_retries {
                self.close_with(CloseReason::Timeout);
                return;
            }
            self.probe_pending = true;
            self.persist_backoff = self.persist_backoff.saturating_add(1);
            self.persist_at = Some(now + self.backed_off(self.persist_backoff));
        }
        if self.rto_at.is_some_and(|t| now >= t) {
            self.rto_at = None;
            self.on_rto(now);
        }
    }

    fn backed_off(&self, n: u32) -> Duration {
        let f = 1u32 << n.min(16);
        self.rto.saturating_mul(f).min(self.cfg.rto_max)
    }

    fn on_rto(&mut self, now: Instant) {
        match self.state {
            State::SynSent | State::SynReceived => {
                self.retries = self.retries.saturating_add(1);
                if self.retries > self.cfg.syn_retries {
                    self.close_with(CloseReason::Timeout);
                    return;
                }
                self.rto = self.rto.saturating_mul(2).min(self.cfg.rto_max);
                self.snd_nxt = 0;
                self.rtt_sample = None;
                self.stats.rto_count += 1;
            }
            _ if self.is_synchronized() && self.snd_max > self.snd_una => {
                self.retries = self.retries.saturating_add(1);
                if self.retries > self.cfg.max_retries {
                    self.close_with(CloseReason::Timeout);
                    return;
                }
                // RFC 5681 eq. 4: ssthresh from FlightSize (everything outstanding; not
                // `pipe`, which during SACK recovery counts only what is believed in the
                // network and may be nearly 0). A timeout during fast recovery, whose
                // reduction stands, or a repeated timeout keeps ssthresh (RFC 5681 3.1;
                // Linux's tcp_enter_loss): the same loss must not shrink it twice.
                let ctx = AckContext {
                    in_flight: u32::try_from(self.snd_max - self.snd_una).unwrap_or(u32::MAX),
                    mss: self.seg_mss() as u16,
                    srtt: self.srtt,
                    coupling: self.coupling.as_ref(),
                    hold_ssthresh: self.in_recovery || self.retries > 1,
                };
                self.cc.on_rto(now, &ctx);
                self.note_loss();
                self.rto = self.rto.saturating_mul(2).min(self.cfg.rto_max);
                // go back N from the first unacknowledged byte (RFC 5681 3.1, RFC 6582 4)
                self.snd_nxt = self.snd_una;
                self.in_recovery = false;
                self.recover = self.snd_max;
                self.dupacks = 0;
                self.rexmit_pending = false;
                self.scoreboard.clear();
                self.rtt_sample = None;
                self.stats.rto_count += 1;
            }
            _ => {}
        }
    }

    fn update_rtt(&mut self, r: Duration) {
        match (self.srtt, self.rttvar) {
            (Some(s), Some(v)) => {
                let diff = s.abs_diff(r);
                self.rttvar = Some(v * 3 / 4 + diff / 4);
                self.srtt = Some(s * 7 / 8 + r / 8);
            }
            _ => {
                self.srtt = Some(r);
                self.rttvar = Some(r / 2);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        let var = self.rttvar.unwrap_or(r / 2);
        let rto = srtt + (var * 4).max(Duration::from_millis(1));
        self.rto = rto.clamp(self.cfg.rto_min, self.cfg.rto_max.max(self.cfg.rto_min));
    }

    fn update_persist(&mut self, now: Instant) {
        let sending = matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait1 | State::LastAck
        );
        let unsent = self.snd_nxt < self.data_end();
        if sending && self.snd_wnd == 0 && unsent && self.snd_max == self.snd_una {
            if self.persist_at.is_none() {
                self.persist_at = Some(now + self.backed_off(self.persist_backoff));
            }
        } else {
            self.persist_at = None;
            self.persist_backoff = 0;
        }
    }

    // ------------------------------------------------------------------------------------
    // segment arrival
    // ------------------------------------------------------------------------------------

    /// Whether [`handle_segment`](Self::handle_segment) would accept `seg` as a valid part of
    /// this connection: the sequence-number and ACK checks of RFC 9293 3.10.7, RFC 5961
    /// (RST exactly at RCV.NXT, no SYN in a synchronized state, ACK not beyond what was sent
    /// nor too far below SND.UNA) and PAWS (RFC 7323). Read-only. MPTCP acts on the options
    /// of accepted segments only (RFC 8684 3.3): a blind attacker who knows the 4-tuple but
    /// not the sequence numbers cannot inject a DATA_FIN, DATA_ACK, mapping or signal.
    pub fn accepts(&self, seg: &SegmentIn) -> bool {
        let has = |f: u8| seg.flags & f != 0;
        let ack_in = |lo: i64| {
            let a = self.snd_unwrap(seg.ack);
            a >= lo && a <= self.snd_max as i64
        };
        match self.state {
            State::Closed | State::Listen => return false,
            State::SynSent => {
                // a SYN/ACK acknowledging our SYN (or a bare SYN: simultaneous open)
                return !has(flags::RST) && has(flags::SYN) && (!has(flags::ACK) || ack_in(1));
            }
            _ => {}
        }
        let rcv_nxt = self.rcv_nxt_space();
        let s = self.rcv_unwrap(seg.seq);
        let wnd = self.rcv_right.saturating_sub(rcv_nxt);
        let in_window = |x: i64| x >= rcv_nxt as i64 && x < (rcv_nxt + wnd.max(1)) as i64;
        if has(flags::RST) {
            return s == rcv_nxt as i64 || (self.state == State::SynReceived && in_window(s));
        }
        if self.ts_ok {
            if let Some((tsval, _)) = seg.options.timestamps {
                if seq_diff(tsval, self.ts_recent) < 0 {
                    return false;
                }
            }
        }
        if has(flags::SYN) || !has(flags::ACK) {
            return false;
        }
        let seg_len = seg.payload.len() as u64 + u64::from(has(flags::FIN));
        let acceptable = match (seg_len, wnd) {
            (0, 0) => s == rcv_nxt as i64,
            (0, _) => in_window(s),
            (_, 0) => s == rcv_nxt as i64,
            (l, w) => s < (rcv_nxt + w) as i64 && s + l as i64 > rcv_nxt as i64,
        };
        if !acceptable {
            return false;
        }
        if self.state == State::SynReceived {
            return ack_in(1);
        }
        let max_back = i64::from(self.max_snd_wnd.max(65535));
        ack_in(self.snd_una as i64 - max_back)
    }

    /// RFC 9293 3.10.7 SEGMENT ARRIVES.
    pub fn handle_segment(&mut self, now: Instant, seg: &SegmentIn, rx: &mut dyn RxSink) {
        self.stats.segs_in += 1;
        match self.state {
            State::Closed | State::Listen => return,
            State::SynSent => {
                self.on_syn_sent(now, seg);
                return;
            }
            _ => {}
        }
        let has = |f: u8| seg.flags & f != 0;
        let rcv_nxt = self.rcv_nxt_space();
        let s = self.rcv_unwrap(seg.seq);
        let wnd = self.rcv_right.saturating_sub(rcv_nxt);
        let in_window = |x: i64| x >= rcv_nxt as i64 && x < (rcv_nxt + wnd.max(1)) as i64;

        // RST (RFC 5961 3.2)
        if has(flags::RST) {
            if s == rcv_nxt as i64 && self.state == State::TimeWait {
                // both FINs were exchanged and acknowledged: the connection ended normally
                // and a RST now (the peer's socket is gone, e.g. it answered our ACK of
                // its retransmitted FIN) only ends TIME-WAIT early (RFC 1337); reporting it
                // as a reset would turn a complete close into an error
                self.close_with(CloseReason::Normal);
            } else if s == rcv_nxt as i64 || (self.state == State::SynReceived && in_window(s)) {
                self.close_with(CloseReason::Reset);
            } else if in_window(s) {
                self.ack_now = true; // challenge ACK
            }
            return;
        }
        // PAWS (RFC 7323 5.3)
        if self.ts_ok {
            if let Some((tsval, _)) = seg.options.timestamps {
                if seq_diff(tsval, self.ts_recent) < 0 {
                    self.ack_now = true;
                    return;
                }
            }
        }
        if has(flags::SYN) {
            if self.state == State::SynReceived && seg.seq == self.irs {
                let a = self.snd_unwrap(seg.ack);
                if has(flags::ACK) && a >= 1 && a <= self.snd_max as i64 {
                    // simultaneous open: the peer's SYN/ACK acknowledges our SYN
                    self.snd_una = 1;
                    self.snd_nxt = self.snd_nxt.max(1);
                    self.snd_wnd = u32::from(seg.window);
                    self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                    self.snd_wl1 = 0;
                    self.snd_wl2 = 1;
                    self.rto_at = None;
                    self.retries = 0;
                    self.on_established();
                    self.ack_now = true;
                } else if !has(flags::ACK) && self.snd_max > 0 {
                    // our SYN/ACK was lost: send it again
                    self.snd_nxt = 0;
                }
                return;
            }
            // RFC 5961 4.2: SYN in a synchronized state -> challenge ACK
            self.ack_now = true;
            return;
        }

        // acceptability (RFC 9293 3.10.7.4)
        let seg_len = seg.payload.len() as u64 + u64::from(has(flags::FIN));
        let acceptable = match (seg_len, wnd) {
            (0, 0) => s == rcv_nxt as i64,
            (0, _) => in_window(s),
            (_, 0) => s == rcv_nxt as i64, // only the ACK is processed, data is dropped
            (l, w) => s < (rcv_nxt + w) as i64 && s + l as i64 > rcv_nxt as i64,
        };
        if !acceptable {
            self.ack_now = true;
            if self.state == State::TimeWait && has(flags::FIN) {
                self.tw_at = Some(now + self.cfg.time_wait);
            }
            return;
        }
        if self.ts_ok {
            if let Some((tsval, _)) = seg.options.timestamps {
                if s <= self.last_ack_sent as i64 {
                    self.ts_recent = tsval;
                }
            }
        }
        if !has(flags::ACK) {
            return;
        }
        if self.state == State::SynReceived {
            let a = self.snd_unwrap(seg.ack);
            if a < 1 || a > self.snd_max as i64 {
                self.reply = Some(rst_segment(seg.ack, 0, flags::RST));
                return;
            }
            self.on_established();
        }
        if !self.process_ack(now, seg, s) {
            return;
        }
        match self.state {
            State::FinWait1 if self.fin_acked() => self.state = State::FinWait2,
            State::Closing if self.fin_acked() => {
                self.enter_time_wait(now);
                return;
            }
            State::LastAck if self.fin_acked() => {
                self.close_with(CloseReason::Normal);
                return;
            }
            _ => {}
        }
        if matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            if seg_len > 0 {
                self.process_data(now, seg, s, rx);
            }
        } else if seg_len > 0 {
            // data or FIN after the peer's FIN: acknowledge what we have
            self.ack_now = true;
        }
        self.update_persist(now);
    }

    fn on_established(&mut self) {
        self.state = if self.fin_queued {
            State::FinWait1
        } else {
            State::Established
        };
        self.cc = controller(&self.cfg, self.seg_mss() as u16);
        self.events.push_back(Event::Established);
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.rto_at = None;
        self.persist_at = None;
        self.delack_at = None;
        self.tw_at = Some(now + self.cfg.time_wait);
    }

    fn on_syn_sent(&mut self, now: Instant, seg: &SegmentIn) {
        let has = |f: u8| seg.flags & f != 0;
        let a = self.snd_unwrap(seg.ack);
        let ack_ok = has(flags::ACK) && a >= 1 && a <= self.snd_max as i64;
        if has(flags::ACK) && !ack_ok {
            if !has(flags::RST) {
                self.reply = Some(rst_segment(seg.ack, 0, flags::RST));
            }
            return;
        }
        if has(flags::RST) {
            if ack_ok {
                self.close_with(CloseReason::Reset);
            }
            return;
        }
        if !has(flags::SYN) {
            return;
        }
        self.irs = seg.seq;
        self.rcv_nxt_off = 0;
        self.negotiate(&seg.options);
        self.rcv_right = 1 + u64::from(self.syn_wnd);
        self.snd_wnd = u32::from(seg.window);
        self.max_snd_wnd = self.snd_wnd;
        self.snd_wl1 = 0;
        self.ack_now = true;
        if ack_ok {
            self.snd_una = 1;
            self.snd_wl2 = 1;
            self.rto_at = None;
            self.retries = 0;
            let rtt = self.ack_rtt(now, seg);
            if let Some(r) = rtt {
                self.update_rtt(r);
            }
            self.on_established();
        } else {
            // simultaneous open: answer with SYN/ACK from the same ISS
            self.state = State::SynReceived;
            self.snd_nxt = 0;
            self.rtt_sample = None;
        }
    }

    /// RTT sample carried by an ACK that advanced `snd_una`.
    fn ack_rtt(&mut self, now: Instant, seg: &SegmentIn) -> Option<Duration> {
        let a = self.snd_unwrap(seg.ack);
        let karn = match self.rtt_sample {
            Some((off, t)) if a >= off as i64 => {
                self.rtt_sample = None;
                Some(now - t)
            }
            _ => None,
        };
        // The timed segment (Karn's rule: never a retransmitted one) measures with the
        // clock's full resolution; timestamp echoes have 1 ms ticks, so they serve the ACKs
        // without a timed segment, and only when they can tell (2 ticks or more: a
        // sub-millisecond path would read 0 or 1 ms and drag the estimate off).
        if karn.is_some() {
            return karn;
        }
        if self.ts_ok {
            if let Some((_, tsecr)) = seg.options.timestamps {
                if tsecr != 0 {
                    let ms = self.ts_now(now).wrapping_sub(tsecr);
                    if (2..3_600_000).contains(&ms) {
                        return Some(Duration::from_millis(u64::from(ms)));
                    }
                }
            }
        }
        None
    }

    /// ACK field processing; returns false if the segment must be dropped.
    fn process_ack(&mut self, now: Instant, seg: &SegmentIn, s: i64) -> bool {
        let a = self.snd_unwrap(seg.ack);
        if a > self.snd_max as i64 {
            self.ack_now = true; // ACK of unsent data
            return false;
        }
        let max_back = i64::from(self.max_snd_wnd.max(65535));
        if a < self.snd_una as i64 - max_back {
            self.ack_now = true; // RFC 5961 5.2 challenge ACK
            return false;
        }
        if a < self.snd_una as i64 {
            return true; // old duplicate: ignore the ACK, keep the data
        }
        let a = a as u64;
        let smss = self.seg_mss();
        self.probes_unanswered = 0;
        if self.sack_ok {
            for &(l, r) in seg.options.sack.as_slice() {
                let (l, r) = (self.snd_unwrap(l), self.snd_unwrap(r));
                if l >= a as i64 && l < r && r <= self.snd_max as i64 {
                    let _ = self.scoreboard.insert(l as u64..r as u64);
                }
            }
        }
        let new_wnd = u32::from(seg.window) << self.snd_wscale;
        let old_una = self.snd_una;
        if a > old_una {
            let data_acked = a.min(self.data_end()).saturating_sub(old_una.max(1));
            self.stats.bytes_acked += data_acked;
            let flight_before = self.in_flight();
            self.flight_peak = self.flight_peak.max(flight_before);
            self.snd_una = a;
            if self.snd_nxt < a {
                self.snd_nxt = a;
            }
            self.scoreboard.remove_below(a);
            let rtt = self.ack_rtt(now, seg);
            if let Some(r) = rtt {
                self.update_rtt(r);
            }
            self.retries = 0;
            let outstanding = self.snd_max > self.snd_una;
            self.last_progress = outstanding.then_some(now);
            self.rto_at = outstanding.then(|| now + self.rto);
            if self.in_recovery {
                if a >= self.recover {
                    self.in_recovery = false;
                    self.dupacks = 0;
                    self.cc.on_recovery_end(now);
                } else {
                    // partial ACK (RFC 6582 3.2 step 5)
                    if !self.sack_ok {
                        self.rexmit_pending = true;
                        self.dupacks = 0;
                    }
                    self.rexmit_next = self.rexmit_next.max(a);
                }
            } else {
                self.dupacks = 0;
                if data_acked > 0 && self.cwnd_limited() {
                    let ctx = AckContext {
                        in_flight: flight_before,
                        mss: smss as u16,
                        srtt: self.srtt,
                        coupling: self.coupling.as_ref(),
                        hold_ssthresh: false,
                    };
                    let acked = u32::try_from(data_acked).unwrap_or(u32::MAX);
                    self.cc.on_ack(now, acked, rtt, &ctx);
                }
            }
        } else if self.snd_max > self.snd_una
            && seg.payload.is_empty()
            && seg.flags & (flags::SYN | flags::FIN) == 0
            && new_wnd == self.snd_wnd
        {
            self.dupacks = self.dupacks.saturating_add(1);
        }
        if !self.in_recovery
            && self.snd_max > self.snd_una
            && self.snd_una >= self.recover
            && (self.dupacks >= DUPTHRESH
                || (self.sack_ok
                    && self.sacked_in(self.snd_una, self.snd_max) >= u64::from(DUPTHRESH * smss)))
        {
            self.enter_recovery(now);
        }
        // window update (RFC 9293 3.10.7.4, fifth check)
        let s = s.max(0) as u64;
        if self.snd_wl1 < s || (self.snd_wl1 == s && self.snd_wl2 <= a) {
            self.snd_wnd = new_wnd;
            self.max_snd_wnd = self.max_snd_wnd.max(new_wnd);
            self.snd_wl1 = s;
            self.snd_wl2 = a;
        }
        true
    }

    fn enter_recovery(&mut self, now: Instant) {
        let ctx = AckContext {
            in_flight: u32::try_from(self.snd_max - self.snd_una).unwrap_or(u32::MAX),
            mss: self.seg_mss() as u16,
            srtt: self.srtt,
            coupling: self.coupling.as_ref(),
            hold_ssthresh: false,
        };
        self.cc.on_congestion_event(now, &ctx);
        self.note_loss();
        self.in_recovery = true;
        self.recover = self.snd_max;
        self.rexmit_pending = true;
        self.rexmit_next = self.snd_una;
        self.stats.fast_retransmits += 1;
    }

    fn process_data(&mut self, now: Instant, seg: &SegmentIn, s: i64, rx: &mut dyn RxSink) {
        if self.fin_rcvd {
            self.ack_now = true;
            return;
        }
        let rcv_nxt = self.rcv_nxt_space();
        let mut d = seg.payload;
        let mut start = s;
        if start < rcv_nxt as i64 {
            let skip = usize::try_from(rcv_nxt as i64 - start).unwrap_or(usize::MAX);
            d = d.get(skip..).unwrap_or(&[]);
            start = rcv_nxt as i64;
        }
        let start = start as u64;
        let mut right = self.rcv_right;
        if let Some(f) = self.peer_fin_off {
            right = right.min(f + 1);
        }
        let mut fin = seg.flags & flags::FIN != 0;
        let allowed = usize::try_from(right.saturating_sub(start)).unwrap_or(usize::MAX);
        if d.len() > allowed {
            d = d.get(..allowed).unwrap_or(&[]);
            fin = false;
        }
        let had_ooo = !self.rx_ranges.is_empty();
        let nxt_before = self.rcv_nxt_off;
        let off = start - 1;
        if !d.is_empty() {
            let n = rx.deliver(off, d).min(d.len());
            if n < d.len() {
                fin = false;
            }
            let end = off + n as u64;
            if n > 0 {
                if off <= self.rcv_nxt_off {
                    self.rcv_nxt_off = self.rcv_nxt_off.max(end);
                } else if self.rx_ranges.insert(off..end) {
                    self.note_ooo(off);
                    self.owe_ack();
                } else {
                    fin = false;
                    self.ack_now = true;
                }
            } else {
                self.ack_now = true;
            }
        } else if !seg.payload.is_empty() {
            self.owe_ack(); // duplicate
        }
        if fin && self.peer_fin_off.is_none() {
            let fin_off = start - 1 + d.len() as u64;
            if fin_off >= self.rcv_nxt_off {
                self.peer_fin_off = Some(fin_off);
            }
        }
        // advance over out-of-order data that is now contiguous
        let end = self.rx_ranges.contiguous_end(self.rcv_nxt_off);
        self.rcv_nxt_off = end;
        self.rx_ranges.remove_below(end);
        // in-order bytes (as Linux's tcpi_bytes_received): overlapping out-of-order copies
        // are not counted twice
        self.stats.bytes_received += self.rcv_nxt_off.saturating_sub(nxt_before);
        let advanced = self.rcv_nxt_off + 1 > rcv_nxt;
        if advanced {
            if had_ooo {
                self.ack_now = true; // gap filled (RFC 5681 4.2)
            } else {
                // a coalesced super-segment (GRO / TSO from the device) counts as the
                // full-sized segments it carries
                let carried = (d.len() as u64).div_ceil(u64::from(self.cfg.mss.max(1)));
                self.unacked_segs = self
                    .unacked_segs
                    .saturating_add(carried.clamp(1, 1 << 16) as u32);
                // a coalesced super-segment is full segments and maybe one short tail
                let len = d.len() as u64;
                if len <= u64::from(self.cfg.mss) {
                    self.rcv_mss_seen = self.rcv_mss_seen.max(len as u32);
                }
                if self.rcv_mss_seen > 0 && len % u64::from(self.rcv_mss_seen) != 0 {
                    self.ack_pushed = true;
                }
                if self.unacked_segs >= 2 || self.stats.segs_in <= QUICKACK_SEGS {
                    self.ack_now = true;
                } else if self.delack_at.is_none() {
                    self.delack_at = Some(now + self.cfg.delayed_ack);
                }
            }
        }
        if self.peer_fin_off == Some(self.rcv_nxt_off) && !self.fin_rcvd {
            self.fin_rcvd = true;
            self.ack_now = true;
            self.events.push_back(Event::PeerFin);
            match self.state {
                State::Established => self.state = State::CloseWait,
                State::FinWait1 if self.fin_acked() => self.enter_time_wait(now),
                State::FinWait1 => self.state = State::Closing,
                State::FinWait2 => self.enter_time_wait(now),
                _ => {}
            }
        }
    }

    fn owe_ack(&mut self) {
        self.ack_now = true;
        self.acks_owed = self.acks_owed.saturating_add(1).min(DUPTHRESH as u8);
    }

    fn note_ooo(&mut self, off: u64) {
        let n = self.sack_recent_len.min(3);
        self.sack_recent.copy_within(0..n, 1);
        self.sack_recent[0] = off;
        self.sack_recent_len = (n + 1).min(4);
    }

    // ------------------------------------------------------------------------------------
    // transmission
    // ------------------------------------------------------------------------------------

    /// Next segment to transmit, if any.
    pub fn poll_transmit(&mut self, now: Instant, tx: &TxParams) -> Option<SegmentOut> {
        self.data_extra = tx.extra_option_len.min(MAX_OPT);
        let seg = self.poll_inner(now, tx);
        if let Some(s) = &seg {
            self.stats.segs_out += if s.gso_size > 0 {
                u64::from(s.payload_len.div_ceil(u32::from(s.gso_size)))
            } else {
                1
            };
            self.stats.bytes_sent += u64::from(s.payload_len);
        } else {
            self.update_persist(now);
        }
        seg
    }

    fn poll_inner(&mut self, now: Instant, tx: &TxParams) -> Option<SegmentOut> {
        if let Some(r) = self.reply.take() {
            return Some(r);
        }
        if self.rst_pending {
            self.rst_pending = false;
            self.events.push_back(Event::Closed(CloseReason::Aborted));
            return Some(rst_segment(
                self.snd_seq(self.snd_max),
                self.rcv_seq(self.rcv_nxt_space()),
                flags::RST | flags::ACK,
            ));
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent => {
                return (self.snd_nxt == 0).then(|| self.syn_segment(now, tx, false));
            }
            State::SynReceived if self.snd_nxt == 0 => {
                return Some(self.syn_segment(now, tx, true));
            }
            _ => {}
        }
        if let Some(s) = self.data_segment(now, tx) {
            return Some(s);
        }
        if self.probe_pending && self.is_synchronized() {
            self.probe_pending = false;
            self.probes_unanswered = self.probes_unanswered.saturating_add(1);
            // zero-window probe: an old sequence number elicits an ACK with the window
            let seq = self.snd_seq(self.snd_una.saturating_sub(1));
            return Some(self.control_segment(now, tx, seq, flags::ACK));
        }
        if (self.ack_now || self.win_update) && self.state != State::SynSent {
            // SND.NXT, but never a value rewound by go-back-N: the peer may already have
            // received more, and would drop a segment with an old sequence number
            let seq = self.snd_seq(self.snd_max);
            return Some(self.control_segment(now, tx, seq, flags::ACK));
        }
        None
    }

    fn syn_segment(&mut self, now: Instant, tx: &TxParams, passive: bool) -> SegmentOut {
        let mut o = TcpOptions {
            mss: Some(self.cfg.mss),
            ..Default::default()
        };
        let ts = self.ts_now(now);
        if passive {
            if self.ws_negotiated {
                o.window_scale = Some(self.rcv_wscale);
            }
            o.sack_permitted = self.sack_ok;
            if self.ts_ok {
                o.timestamps = Some((ts, self.ts_recent));
            }
        } else {
            o.window_scale = Some(self.cfg.window_scale);
            o.sack_permitted = self.cfg.sack;
            if self.cfg.timestamps {
                o.timestamps = Some((ts, 0));
            }
        }
        let window = tx.rcv_space.min(65535) as u16;
        let retransmission = self.snd_max > 0;
        self.snd_nxt = 1;
        self.snd_max = self.snd_max.max(1);
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rto);
        }
        if retransmission {
            self.stats.retransmits += 1;
        } else {
            self.rtt_sample = Some((1, now));
        }
        let mut flags_ = flags::SYN;
        let mut ack = 0;
        if passive {
            flags_ |= flags::ACK;
            ack = self.rcv_seq(1);
            self.rcv_right = self.rcv_right.max(1 + u64::from(window));
            self.last_ack_sent = 1;
            self.ack_now = false;
        } else {
            self.syn_wnd = u32::from(window);
        }
        SegmentOut {
            seq: self.iss,
            ack,
            flags: flags_,
            window,
            options: o,
            offset: 0,
            payload_len: 0,
            retransmission,
            gso_size: 0,
        }
    }

    /// The window field to send and the right edge it implies (never shrinking the window).
    fn window_field(&mut self, tx: &TxParams) -> u16 {
        let shift = self.rcv_wscale;
        let max = 65535u64 << shift;
        let space = u64::from(tx.rcv_space).min(max);
        let nxt = self.rcv_nxt_space();
        let cur = self.rcv_right.saturating_sub(nxt);
        let mut field = space >> shift;
        if field << shift < cur && !tx.data_level_window {
            // never shrink the window, except by the scaling granularity (RFC 7323 2.4)
            field = cur >> shift;
        }
        let field = field.min(65535);
        self.rcv_right = self.rcv_right.max(nxt + (field << shift));
        field as u16
    }

    /// Timestamps and SACK options for a non-SYN segment; returns them and the option bytes
    /// used including the caller's extra options.
    fn options(&self, now: Instant, extra: usize) -> (TcpOptions, usize) {
        let mut o = TcpOptions::default();
        let mut len = extra;
        if self.ts_ok {
            o.timestamps = Some((self.ts_now(now), self.ts_recent));
            len += TS_LEN;
        }
        if self.sack_ok && !self.rx_ranges.is_empty() {
            let avail = MAX_OPT.saturating_sub(len);
            if avail >= 12 {
                let n = ((avail - 4) / 8).min(4);
                let mut chosen = [(0u64, 0u64); 4];
                let mut k = 0;
                let recent = self.sack_recent.iter().take(self.sack_recent_len);
                for &off in recent {
                    if k >= n {
                        break;
                    }
                    if let Some(r) = self
                        .rx_ranges
                        .iter()
                        .find(|r| r.start <= off && off < r.end)
                    {
                        if !chosen[..k].iter().any(|c| c.0 == r.start) {
                            chosen[k] = (r.start, r.end);
                            k += 1;
                        }
                    }
                }
                for r in self.rx_ranges.iter().rev() {
                    if k >= n {
                        break;
                    }
                    if !chosen[..k].iter().any(|c| c.0 == r.start) {
                        chosen[k] = (r.start, r.end);
                        k += 1;
                    }
                }
                let mut sack = SackBlocks::default();
                for c in &chosen[..k] {
                    sack.push(self.rcv_seq(c.0 + 1), self.rcv_seq(c.1 + 1));
                }
                o.sack = sack;
                len += 4 + 8 * k;
            }
        }
        // options are padded to a multiple of 4 bytes on the wire
        (o, (len + 3) & !3)
    }

    /// Bookkeeping for any non-SYN segment carrying an ACK.
    fn acked_now(&mut self) {
        self.acks_owed = self.acks_owed.saturating_sub(1);
        self.ack_now = self.acks_owed > 0;
        self.win_update = false;
        self.delack_at = None;
        self.unacked_segs = 0;
        self.ack_pushed = false;
        self.last_ack_sent = self.rcv_nxt_space();
    }

    fn control_segment(&mut self, now: Instant, tx: &TxParams, seq: u32, fl: u8) -> SegmentOut {
        let (options, _) = self.options(now, tx.extra_option_len_ack);
        let window = self.window_field(tx);
        self.acked_now();
        SegmentOut {
            seq,
            ack: self.rcv_seq(self.rcv_nxt_space()),
            flags: fl,
            window,
            options,
            offset: self.snd_una_offset(),
            payload_len: 0,
            retransmission: false,
            gso_size: 0,
        }
    }

    fn data_segment(&mut self, now: Instant, tx: &TxParams) -> Option<SegmentOut> {
        if !matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        ) {
            return None;
        }
        let data_end = self.data_end();
        let (opts, opt_len) = self.options(now, tx.extra_option_len);
        let max_payload = u64::from(self.smss()).saturating_sub(opt_len as u64).max(1);
        self.prune_marks();

        // 1. fast retransmit of the first hole / first unacknowledged segment
        if self.rexmit_pending {
            self.rexmit_pending = false;
            let (start, hole_end) = match self.next_hole(self.snd_una) {
                Some(h) if self.sack_ok => h,
                _ => (self.snd_una, self.snd_max),
            };
            if start < self.snd_max {
                let len = hole_end
                    .min(start + max_payload)
                    .min(data_end)
                    .min(start.saturating_add(self.to_boundary(start)))
                    .saturating_sub(start);
                let fin = self.fin_sent() && start + len == data_end && hole_end > data_end;
                if len > 0 || fin {
                    self.rexmit_next = self.rexmit_next.max(start + len);
                    return Some(self.emit(now, tx, opts, start, len, fin, true));
                }
            }
        }
        let cwnd = self.cc.cwnd();
        // 2. SACK loss recovery: the next hole while it fits in cwnd - pipe (RFC 6675 5 (C)
        // and NextSeg rule 1)
        if self.in_recovery && self.sack_ok {
            let pipe = self.in_flight();
            if let Some((s, e)) = self.next_hole(self.rexmit_next) {
                let len = e
                    .min(s + max_payload)
                    .min(data_end)
                    .min(s.saturating_add(self.to_boundary(s)))
                    .saturating_sub(s);
                if len > 0 && (pipe == 0 || u64::from(cwnd.saturating_sub(pipe)) >= len) {
                    self.rexmit_next = s + len;
                    return Some(self.emit(now, tx, opts, s, len, false, true));
                }
            }
        }
        // 3. new data (or go-back-N after an RTO), skipping SACKed ranges
        let mut start = self.snd_nxt.max(self.snd_una);
        start = self.scoreboard.contiguous_end(start);
        self.snd_nxt = start;
        let flight = self.in_flight();
        let cwnd_room = u64::from(cwnd.saturating_sub(flight));
        let wnd_room = (self.snd_una + u64::from(self.snd_wnd)).saturating_sub(start);
        let marks_full = self.keep_marks && self.marks.len() >= MAX_SEGMENT_MARKS;
        let avail = if marks_full && start >= self.snd_max {
            0 // no room to remember another segment: new data waits for acknowledgements
        } else {
            data_end.saturating_sub(start)
        };
        // new data may go as a super-segment of whole segments (TSO); retransmissions of
        // a go-back-N (start below snd_max) go one segment at a time
        let budget = if start >= self.snd_max && u64::from(tx.tso_bytes) > max_payload {
            u64::from(tx.tso_bytes) / max_payload * max_payload
        } else {
            max_payload
        };
        let boundary = self.to_boundary(start);
        let mut len = avail.min(budget).min(wnd_room).min(boundary);
        if let Some(r) = self.scoreboard.iter().find(|r| r.start > start) {
            len = len.min(r.start - start);
        }
        if len > cwnd_room {
            // cwnd counts whole segments: one that does not fit waits for the ACKs of
            // what is in flight (never a runt cut to the room left, new data or a go-back-N
            // retransmission alike); with nothing in flight one segment always may go
            let fit = cwnd_room / max_payload * max_payload;
            if fit > 0 {
                len = len.min(fit);
            } else if flight > 0 {
                return None;
            } else {
                len = len.min(max_payload);
            }
        }
        if len > max_payload && start + len != data_end && len != boundary {
            // a super-segment ends on a whole segment unless it ends the data
            len -= len % max_payload;
        }
        let fin = self.fin_queued && start <= data_end && start + len == data_end;
        if len == 0 && !fin {
            return None;
        }
        let retrans = start < self.snd_max;
        let cut_by_boundary = len == self.to_boundary(start);
        if len > 0 && !retrans && len < max_payload && !fin && !cut_by_boundary {
            let outstanding = self.snd_max > self.snd_una;
            let all_queued = start + len == data_end;
            // sender SWS avoidance (RFC 9293 3.8.6.2.1) and Nagle (RFC 896)
            if outstanding && (!all_queued || !self.cfg.nodelay) {
                return None;
            }
        }
        let mut seg = self.emit(now, tx, opts, start, len, fin, false);
        if len > max_payload {
            // u16: max_payload is below one MSS
            seg.gso_size = max_payload.min(u64::from(u16::MAX)) as u16;
        }
        Some(seg)
    }

    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        now: Instant,
        tx: &TxParams,
        options: TcpOptions,
        start: u64,
        len: u64,
        fin: bool,
        hole: bool,
    ) -> SegmentOut {
        let end = start + len + u64::from(fin);
        let retransmission = start < self.snd_max;
        if self.keep_marks && len > 0 {
            // stream offset where this segment's data ends (send-space offset - 1)
            let data_end = start - 1 + len;
            if self.marks.back().is_none_or(|&m| m < data_end) {
                self.marks.push_back(data_end);
            }
        }
        if !hole {
            self.snd_nxt = self.snd_nxt.max(end);
        }
        self.snd_max = self.snd_max.max(end);
        if retransmission {
            self.stats.retransmits += 1;
            if self.rtt_sample.is_some_and(|(off, _)| off > start) {
                self.rtt_sample = None; // Karn
            }
        } else if self.rtt_sample.is_none() && !self.ts_ok {
            self.rtt_sample = Some((end, now));
        }
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rto);
        }
        if self.last_progress.is_none() {
            self.last_progress = Some(now);
        }
        let mut fl = flags::ACK;
        if fin {
            fl |= flags::FIN;
        }
        if len > 0 && start + len == self.data_end() {
            fl |= flags::PSH;
        }
        let window = self.window_field(tx);
        self.acked_now();
        SegmentOut {
            seq: self.snd_seq(start),
            ack: self.rcv_seq(self.rcv_nxt_space()),
            flags: fl,
            window,
            options,
            offset: start.saturating_sub(1),
            payload_len: len as u32,
            retransmission,
            gso_size: 0,
        }
    }
}

fn rst_segment(seq: u32, ack: u32, fl: u8) -> SegmentOut {
    SegmentOut {
        seq,
        ack,
        flags: fl,
        window: 0,
        options: TcpOptions::default(),
        offset: 0,
        payload_len: 0,
        retransmission: false,
        gso_size: 0,
    }
}

/// The timestamp offset of a connection with initial sequence number `iss` (TSval = time in
/// ms + offset): a function of the ISS so a stateless SYN/ACK and the `Tcb` created later
/// from its third ACK agree.
fn ts_offset_for(iss: u32) -> u32 {
    iss.rotate_left(13) ^ 0x5bd1_e995
}

/// The SYN/ACK a passive opener with `config` sends for a SYN with sequence number `irs` and
/// options `syn_opts`, built without a `Tcb` (the stack's SYN queue and SYN cookies); it is
/// the segment `Tcb::accept(config, syn, iss, now)` would send first, with `window` as its
/// window field. [`Tcb::accept_answered`] continues from it.
pub fn syn_ack_for(
    config: &Config,
    irs: u32,
    syn_opts: &TcpOptions,
    iss: u32,
    now: Instant,
    window: u16,
) -> SegmentOut {
    let wscale = config.window_scale.min(14);
    let mut o = TcpOptions {
        mss: Some(config.mss.max(64)),
        window_scale: syn_opts.window_scale.map(|_| wscale),
        sack_permitted: config.sack && syn_opts.sack_permitted,
        ..Default::default()
    };
    if config.timestamps {
        if let Some((tsval, _)) = syn_opts.timestamps {
            let ts = (now.total_millis() as u32).wrapping_add(ts_offset_for(iss));
            o.timestamps = Some((ts, tsval));
        }
    }
    SegmentOut {
        seq: iss,
        ack: irs.wrapping_add(1),
        flags: flags::SYN | flags::ACK,
        window,
        options: o,
        offset: 0,
        payload_len: 0,
        retransmission: false,
        gso_size: 0,
    }
}

/// A RST answering a segment that matches no connection (RFC 9293 3.10.7.1 / "reset
/// generation"); `None` if the segment itself is a RST.
pub fn reset_for(seg: &SegmentIn) -> Option<SegmentOut> {
    if seg.flags & flags::RST != 0 {
        return None;
    }
    if seg.flags & flags::ACK != 0 {
        return Some(rst_segment(seg.ack, 0, flags::RST));
    }
    let len = seg.payload.len() as u32
        + u32::from(seg.flags & flags::SYN != 0)
        + u32::from(seg.flags & flags::FIN != 0);
    Some(rst_segment(
        0,
        seg.seq.wrapping_add(len),
        flags::RST | flags::ACK,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NullSink(u64);
    impl RxSink for NullSink {
        fn deliver(&mut self, _offset: u64, data: &[u8]) -> usize {
            self.0 += data.len() as u64;
            data.len()
        }
        fn window(&self) -> u32 {
            65535
        }
    }

    const TX: TxParams = TxParams {
        extra_option_len: 0,
        extra_option_len_ack: 0,
        data_level_window: false,
        rcv_space: 65535,
        tso_bytes: 0,
    };

    fn seg(seq: u32, ack: u32, fl: u8, payload: &[u8]) -> SegmentIn<'_> {
        SegmentIn {
            seq,
            ack,
            flags: fl,
            window: 65535,
            options: TcpOptions::default(),
            payload,
        }
    }

    fn plain() -> Config {
        Config {
            timestamps: false,
            sack: false,
            ..Config::default()
        }
    }

    #[test]
    fn stateless_syn_ack_matches_the_engine_and_accept_answered_establishes() {
        let now = Instant::from_millis(12_345);
        let opt_sets = [
            TcpOptions::default(),
            TcpOptions {
                mss: Some(1400),
                window_scale: Some(9),
                sack_permitted: true,
                timestamps: Some((777, 0)),
                ..TcpOptions::default()
            },
            TcpOptions {
                mss: Some(536),
                sack_permitted: true,
                ..TcpOptions::default()
            },
        ];
        for (k, o) in opt_sets.iter().enumerate() {
            for cfg in [Config::default(), plain()] {
                let mut syn = seg(1000, 0, flags::SYN, &[]);
                syn.options = *o;
                let iss = 0xdead_0000 + k as u32;
                let mut t = Tcb::accept(cfg.clone(), &syn, iss, now);
                let engine = t.poll_transmit(now, &TX).expect("SYN/ACK");
                let stateless = syn_ack_for(&cfg, 1000, o, iss, now, 65535);
                assert_eq!(engine, stateless, "options {o:?}");

                // the engine built from that SYN/ACK takes the third ACK
                let later = now + Duration::from_millis(30);
                let mut t = Tcb::accept_answered(cfg.clone(), &syn, iss, now, Some(now), 65535);
                assert_eq!(t.state(), State::SynReceived);
                let mut ack = seg(1001, iss.wrapping_add(1), flags::ACK, b"hello");
                if let Some((ts, _)) = stateless.options.timestamps {
                    ack.options.timestamps = Some((800, ts));
                }
                t.handle_segment(later, &ack, &mut NullSink(0));
                assert_eq!(t.state(), State::Established);
                assert_eq!(t.rcv_nxt_offset(), 5);
                assert_eq!(t.srtt(), Some(Duration::from_millis(30)));
                assert_eq!(t.poll_event(), Some(Event::Established));

                // a wrong ACK number is refused with a RST, no state change
                let mut t = Tcb::accept_answered(cfg.clone(), &syn, iss, now, None, 65535);
                t.handle_segment(
                    later,
                    &seg(1001, iss.wrapping_add(7), flags::ACK, &[]),
                    &mut NullSink(0),
                );
                assert_eq!(t.state(), State::SynReceived);
                let rst = t.poll_transmit(later, &TX).expect("RST");
                assert_eq!(rst.flags & flags::RST, flags::RST);
            }
        }
    }

    /// A client in ESTABLISHED with ISS 100 talking to a peer with IRS 500.
    fn established() -> Tcb {
        let now = Instant::ZERO;
        let mut t = Tcb::connect(plain(), 100, now);
        let syn = t.poll_transmit(now, &TX).unwrap();
        assert_eq!((syn.seq, syn.flags), (100, flags::SYN));
        let mut sa = seg(500, 101, flags::SYN | flags::ACK, &[]);
        sa.options.mss = Some(1000);
        t.handle_segment(Instant::from_millis(50), &sa, &mut NullSink(0));
        assert_eq!(t.state(), State::Established);
        assert_eq!(t.poll_event(), Some(Event::Established));
        let ack = t.poll_transmit(Instant::from_millis(50), &TX).unwrap();
        assert_eq!((ack.seq, ack.ack, ack.flags), (101, 501, flags::ACK));
        t
    }

    /// Against Linux (interop `mp_fail_on_the_only_subflow_falls_back_to_tcp_with_linux`,
    /// about one run in three under CPU load): both FINs exchanged and acknowledged, the
    /// peer's FIN comes again, our ACK of it meets no socket and the peer answers with a
    /// RST. TIME-WAIT ends, but the close is reported as normal, not as a reset.
    #[test]
    fn a_rst_in_time_wait_ends_it_without_turning_the_close_into_a_reset() {
        let mut t = established();
        let mut sink = NullSink(0);
        let now = Instant::from_millis(60);
        t.close();
        let fin = t.poll_transmit(now, &TX).expect("FIN");
        assert_eq!((fin.seq, fin.flags & flags::FIN), (101, flags::FIN));
        // the peer acknowledges our FIN and sends its own
        t.handle_segment(now, &seg(501, 102, flags::ACK | flags::FIN, &[]), &mut sink);
        assert_eq!(t.state(), State::TimeWait);
        let ack = t.poll_transmit(now, &TX).expect("ACK of the FIN");
        assert_eq!(ack.ack, 502);
        // its FIN again: acknowledged again
        t.handle_segment(now, &seg(501, 102, flags::ACK | flags::FIN, &[]), &mut sink);
        assert_eq!(t.state(), State::TimeWait);
        assert_eq!(t.poll_transmit(now, &TX).map(|a| a.ack), Some(502));
        // an out-of-window RST changes nothing; one at RCV.NXT ends TIME-WAIT, normally
        t.handle_segment(now, &seg(9000, 0, flags::RST, &[]), &mut sink);
        assert_eq!(t.state(), State::TimeWait);
        t.handle_segment(now, &seg(502, 0, flags::RST, &[]), &mut sink);
        assert_eq!(t.state(), State::Closed);
        let mut last = None;
        while let Some(e) = t.poll_event() {
            last = Some(e);
        }
        assert_eq!(last, Some(Event::Closed(CloseReason::Normal)));
    }

    #[test]
    fn a_held_ack_leaves_when_the_application_has_read_everything() {
        let mut t = established();
        let mut sink = NullSink(0);
        let mut seq = 501u32;
        let mut now = Instant::from_millis(60);
        // past the quick-ACK start, two segments at a time (each pair acknowledged)
        while t.stats.segs_in <= QUICKACK_SEGS {
            for _ in 0..2 {
                t.handle_segment(now, &seg(seq, 101, flags::ACK, &[7; 100]), &mut sink);
                seq += 100;
            }
            assert!(t.poll_transmit(now, &TX).is_some());
            assert!(t.poll_transmit(now, &TX).is_none());
        }
        now += Duration::from_millis(1);
        // a lone full-sized segment: the sender is probably not done, the ACK stays held
        t.handle_segment(now, &seg(seq, 101, flags::ACK, &[7; 100]), &mut sink);
        seq += 100;
        assert!(t.poll_transmit(now, &TX).is_none());
        assert_eq!(t.poll_timeout(), Some(now + t.cfg.delayed_ack));
        t.flush_delayed_ack();
        assert!(t.poll_transmit(now, &TX).is_none());
        let later = now + t.cfg.delayed_ack;
        t.handle_timeout(later);
        let ack = t.poll_transmit(later, &TX).expect("the delayed ACK");
        assert_eq!(ack.ack, seq);
        // a lone short segment ends the sender's burst: read, it is acknowledged at once
        t.handle_segment(now, &seg(seq, 101, flags::ACK, &[7; 60]), &mut sink);
        seq += 60;
        assert!(t.poll_transmit(now, &TX).is_none());
        t.flush_delayed_ack();
        let ack = t.poll_transmit(now, &TX).expect("the held ACK");
        assert_eq!(ack.ack, seq);
        // nothing held: flushing sends nothing
        t.flush_delayed_ack();
        assert!(t.poll_transmit(now, &TX).is_none());
    }

    #[test]
    fn retransmissions_stay_within_the_segments_first_sent() {
        for keep in [false, true] {
            let mut t = established();
            if keep {
                t.keep_segment_marks();
            }
            let now = Instant::from_millis(60);
            t.enqueue(300);
            let a = t.poll_transmit(now, &TX).expect("first segment");
            assert_eq!((a.offset, a.payload_len), (0, 300));
            t.enqueue(2000);
            let b = t.poll_transmit(now, &TX).expect("second segment");
            assert_eq!((b.offset, b.payload_len), (300, 1000));
            if keep {
                assert_eq!(t.sent_span(0), Some((0, 300)));
                assert_eq!(t.sent_span(299), Some((0, 300)));
                assert_eq!(t.sent_span(300), Some((300, 1300)));
                assert_eq!(t.sent_span(1299), Some((300, 1300)));
                assert_eq!(t.sent_span(1300), None, "not sent yet");
            } else {
                assert_eq!(t.sent_span(0), None);
            }
            // nothing acknowledged: the RTO resends from the first byte (go-back-N)
            let rto = now + t.rto;
            t.handle_timeout(rto);
            let r = t.poll_transmit(rto, &TX).expect("retransmission");
            assert!(r.retransmission);
            // with marks, only the first segment's 300 bytes; without, a full segment that
            // would straddle two original segments
            let want = if keep { 300 } else { 1000 };
            assert_eq!((r.offset, r.payload_len), (0, want), "keep {keep}");
            if keep {
                // the first segment acknowledged: its mark goes, the next one's stays
                let ack = seg(501, 101 + 300, flags::ACK, &[]);
                t.handle_segment(rto, &ack, &mut NullSink(0));
                let _ = t.poll_transmit(rto, &TX);
                t.trim_memory();
                assert_eq!(t.sent_span(0), None);
                assert_eq!(t.sent_span(300), Some((300, 1300)));
            }
        }
    }

    #[test]
    fn rtt_estimator_follows_rfc6298() {
        let mut t = established();
        // Karn timing of the SYN: first sample 50 ms -> srtt 50, rttvar 25, rto = 150 -> 200 (min)
        assert_eq!(t.srtt, Some(Duration::from_millis(50)));
        assert_eq!(t.rttvar, Some(Duration::from_millis(25)));
        assert_eq!(t.rto, Duration::from_millis(200));
        t.update_rtt(Duration::from_millis(130));
        // rttvar = 3/4 * 25 + 1/4 * 80 = 38.75; srtt = 7/8 * 50 + 1/8 * 130 = 60
        assert_eq!(t.srtt, Some(Duration::from_millis(60)));
        assert_eq!(t.rttvar, Some(Duration::from_micros(38_750)));
        assert_eq!(t.rto, Duration::from_millis(60 + 155));
    }

    #[test]
    fn syn_sent_answers_a_bad_ack_with_rst() {
        let now = Instant::ZERO;
        let mut t = Tcb::connect(plain(), 100, now);
        t.poll_transmit(now, &TX).unwrap();
        t.handle_segment(
            now,
            &seg(9, 4242, flags::SYN | flags::ACK, &[]),
            &mut NullSink(0),
        );
        assert_eq!(t.state(), State::SynSent);
        let r = t.poll_transmit(now, &TX).unwrap();
        assert_eq!((r.seq, r.flags), (4242, flags::RST));
        // an unacceptable RST is ignored, an acceptable one resets
        t.handle_segment(
            now,
            &seg(0, 55, flags::RST | flags::ACK, &[]),
            &mut NullSink(0),
        );
        assert_eq!(t.state(), State::SynSent);
        t.handle_segment(
            now,
            &seg(0, 101, flags::RST | flags::ACK, &[]),
            &mut NullSink(0),
        );
        assert_eq!(t.poll_event(), Some(Event::Closed(CloseReason::Reset)));
    }

    #[test]
    fn out_of_order_fin_completes_when_the_gap_fills() {
        let mut t = established();
        let now = Instant::from_millis(60);
        let mut sink = NullSink(0);
        t.handle_segment(
            now,
            &seg(511, 101, flags::ACK | flags::FIN, b"0123456789"),
            &mut sink,
        );
        assert_eq!(t.rcv_nxt_offset(), 0);
        assert_eq!(t.state(), State::Established);
        t.handle_segment(now, &seg(501, 101, flags::ACK, b"abcdefghij"), &mut sink);
        assert_eq!(t.rcv_nxt_offset(), 20);
        assert_eq!(t.state(), State::CloseWait);
        assert_eq!(t.poll_event(), Some(Event::PeerFin));
        let ack = t.poll_transmit(now, &TX).unwrap();
        assert_eq!(ack.ack, 501 + 20 + 1);
        // data beyond the FIN is never accepted
        t.handle_segment(now, &seg(521, 101, flags::ACK, b"zz"), &mut sink);
        assert_eq!(sink.0, 20);
    }

    #[test]
    fn paws_drops_old_timestamps() {
        let now = Instant::ZERO;
        let mut syn = seg(1000, 0, flags::SYN, &[]);
        syn.options.timestamps = Some((5000, 0));
        let mut t = Tcb::accept(Config::default(), &syn, 7, now);
        let sa = t.poll_transmit(now, &TX).unwrap();
        assert_eq!(sa.options.timestamps.map(|x| x.1), Some(5000));
        let mut ack = seg(1001, 8, flags::ACK, &[]);
        ack.options.timestamps = Some((5001, sa.options.timestamps.unwrap().0));
        let mut sink = NullSink(0);
        t.handle_segment(now, &ack, &mut sink);
        assert_eq!(t.state(), State::Established);
        let mut old = seg(1001, 8, flags::ACK, b"data");
        old.options.timestamps = Some((4000, 0));
        t.handle_segment(now, &old, &mut sink);
        assert_eq!(sink.0, 0, "PAWS dropped the segment");
        assert!(t.poll_transmit(now, &TX).is_some(), "and ACKed it");
        old.options.timestamps = Some((5002, 0));
        t.handle_segment(now, &old, &mut sink);
        assert_eq!(sink.0, 4);
    }

    #[test]
    fn ack_of_unsent_data_is_dropped_and_acked() {
        let mut t = established();
        let now = Instant::from_millis(60);
        let mut sink = NullSink(0);
        t.handle_segment(now, &seg(501, 5000, flags::ACK, b"abc"), &mut sink);
        assert_eq!(sink.0, 0);
        assert_eq!(t.snd_una_offset(), 0);
        let a = t.poll_transmit(now, &TX).unwrap();
        assert_eq!((a.ack, a.flags), (501, flags::ACK));
    }

    #[test]
    fn path_cc_tracks_inter_loss_distance() {
        let mut t = established();
        t.stats.bytes_acked = 5000;
        t.note_loss();
        t.stats.bytes_acked = 8000;
        let p = t.path_cc();
        assert_eq!(p.bytes_between_last_losses, 5000);
        assert_eq!(p.bytes_since_loss, 3000);
        assert!(p.usable);
        assert_eq!(p.mss, 1000);
    }

    /// `established()` with SACK negotiated.
    fn established_sack() -> Tcb {
        let now = Instant::ZERO;
        let cfg = Config {
            timestamps: false,
            congestion: "reno",
            ..Config::default()
        };
        let mut t = Tcb::connect(cfg, 100, now);
        t.poll_transmit(now, &TX).unwrap();
        let mut sa = seg(500, 101, flags::SYN | flags::ACK, &[]);
        sa.options.mss = Some(1000);
        sa.options.sack_permitted = true;
        t.handle_segment(Instant::from_millis(50), &sa, &mut NullSink(0));
        assert_eq!(t.poll_event(), Some(Event::Established));
        t.poll_transmit(Instant::from_millis(50), &TX).unwrap();
        t
    }

    /// Sends what cwnd allows the way the MPTCP connection feeds a subflow: it enqueues
    /// what `send_capacity()` allows beyond what is queued unsent, then polls. Returns the payload sizes sent.
    fn fill(t: &mut Tcb, now: Instant, tx: &TxParams) -> Vec<u32> {
        let mut out = Vec::new();
        loop {
            let unsent = t.send_queue_end() - t.snd_max_offset();
            let room = u64::from(t.send_capacity()).saturating_sub(unsent) as u32;
            if room > 0 {
                t.enqueue(room);
            }
            match t.poll_transmit(now, tx) {
                Some(s) if s.payload_len > 0 => out.push(s.payload_len),
                Some(_) => {}
                None => return out,
            }
        }
    }

    /// RFC 5681 / RFC 6675: cwnd counts segments of the payload the sender can actually
    /// put in one (SMSS minus the options every data segment carries, here 20 bytes of
    /// MPTCP DSS), so filling the window never leaves a runt.
    #[test]
    fn cwnd_counts_full_segments_of_the_payload_size() {
        let mut t = established_sack();
        let tx = TxParams {
            extra_option_len: 20,
            ..TX
        };
        let mut now = Instant::from_millis(60);
        // the engine learns the caller's option budget from its polls
        assert!(t.poll_transmit(now, &tx).is_none());
        let sizes = fill(&mut t, now, &tx);
        assert_eq!(sizes, vec![980; 10], "initial window: 10 full segments");
        // ACK every second segment for a few rounds, then halve on a loss
        let mut una = 0u32;
        for _ in 0..3 {
            let n = t.snd_nxt_offset() as u32;
            while una < n {
                una = (una + 1960).min(n);
                now += Duration::from_millis(1);
                t.handle_segment(now, &seg(501, 101 + una, flags::ACK, &[]), &mut NullSink(0));
                let sizes = fill(&mut t, now, &tx);
                assert!(sizes.iter().all(|&s| s == 980), "runt sent: {sizes:?}");
            }
        }
        // a loss: three duplicate ACKs, recovery, then the recovery point acked
        let before = t.cwnd();
        for _ in 0..3 {
            t.handle_segment(now, &seg(501, 101 + una, flags::ACK, &[]), &mut NullSink(0));
        }
        assert!(t.cwnd() < before);
        let n = t.snd_max_offset() as u32;
        t.handle_segment(now, &seg(501, 101 + n, flags::ACK, &[]), &mut NullSink(0));
        let sizes = fill(&mut t, now, &tx);
        assert!(
            !sizes.is_empty() && sizes.iter().all(|&s| s == 980),
            "{sizes:?}"
        );
    }

    /// After a retransmission timeout the window is one full segment: the go-back-N
    /// retransmission is one segment of the payload size, never followed by a sliver of
    /// the next one (the difference between SMSS and the payload).
    #[test]
    fn rto_retransmits_one_full_segment_and_no_sliver() {
        let mut t = established_sack();
        let tx = TxParams {
            extra_option_len: 20,
            ..TX
        };
        let now = Instant::from_millis(60);
        assert!(t.poll_transmit(now, &tx).is_none());
        fill(&mut t, now, &tx);
        let at = t.poll_timeout().expect("RTO armed");
        t.handle_timeout(at);
        let mut sizes = Vec::new();
        while let Some(s) = t.poll_transmit(at, &tx) {
            assert!(s.retransmission);
            sizes.push(s.payload_len);
        }
        assert_eq!(sizes, vec![980]);
        assert_eq!(t.cwnd(), 980);
    }

    /// RFC 5681 3.1 / RFC 6675 5.1: a timeout during SACK recovery does not reduce ssthresh
    /// below what the recovery already set (from FlightSize, not from `pipe`, which is
    /// nearly 0 when everything but the hole is SACKed); a repeated timeout keeps it too.
    #[test]
    fn rto_during_sack_recovery_keeps_the_ssthresh_from_flight_size() {
        let mut t = established_sack();
        let now = Instant::from_millis(60);
        assert_eq!(fill(&mut t, now, &TX), vec![1000; 10]);
        // segment 1 lost, 2..10 SACKed
        let mut ack = seg(501, 101, flags::ACK, &[]);
        ack.options.sack.push(1101, 10101);
        t.handle_segment(now, &ack, &mut NullSink(0));
        assert_eq!(t.cc.ssthresh(), 5000, "recovery: FlightSize / 2");
        let rx = t.poll_transmit(now, &TX).expect("fast retransmit");
        assert_eq!((rx.seq, rx.payload_len), (101, 1000));
        // the retransmission is lost too
        let at = t.poll_timeout().unwrap();
        t.handle_timeout(at);
        assert_eq!(t.cwnd(), 1000);
        assert_eq!(t.cc.ssthresh(), 5000, "not from pipe");
        let rx = t.poll_transmit(at, &TX).expect("retransmission");
        assert_eq!((rx.seq, rx.payload_len), (101, 1000));
        let at = t.poll_timeout().unwrap();
        t.handle_timeout(at);
        assert_eq!(t.cc.ssthresh(), 5000, "repeated timeout holds ssthresh");

        // outside recovery, ssthresh comes from FlightSize: 10 segments out, none SACKed
        let mut t = established_sack();
        assert_eq!(fill(&mut t, now, &TX).len(), 10);
        let at = t.poll_timeout().unwrap();
        t.handle_timeout(at);
        assert_eq!(t.cc.ssthresh(), 5000);
    }

    /// MPTCP penalisation is skipped during loss recovery, whose reduction stands (the
    /// reference implementation penalises only in the Open state).
    #[test]
    fn penalisation_is_skipped_during_sack_recovery() {
        let mut t = established_sack();
        let now = Instant::from_millis(60);
        assert_eq!(fill(&mut t, now, &TX).len(), 10);
        let mut ack = seg(501, 101, flags::ACK, &[]);
        ack.options.sack.push(1101, 10101);
        t.handle_segment(now, &ack, &mut NullSink(0));
        t.poll_transmit(now, &TX).expect("fast retransmit");
        assert_eq!(t.cc.ssthresh(), 5000);
        let cwnd = t.cwnd();
        assert!(!t.penalise(now));
        assert_eq!(t.cc.ssthresh(), 5000);
        assert_eq!(t.cwnd(), cwnd);
    }

    /// Penalised in slow start, a subflow halves its window but stays in slow start
    /// (ssthresh untouched); in congestion avoidance both halve.
    #[test]
    fn penalisation_keeps_slow_start_and_halves_ssthresh_in_congestion_avoidance() {
        let mut t = established_sack();
        let now = Instant::from_millis(60);
        let cwnd = t.cwnd();
        assert_eq!(t.cc.ssthresh(), u32::MAX);
        assert!(t.penalise(now));
        assert_eq!(t.cwnd(), cwnd / 2);
        assert_eq!(t.cc.ssthresh(), u32::MAX, "still in slow start");
        // a loss puts it in congestion avoidance (ssthresh = cwnd = FlightSize / 2)
        assert_eq!(fill(&mut t, now, &TX).len(), 5);
        let mut ack = seg(501, 101, flags::ACK, &[]);
        ack.options.sack.push(1101, 5101);
        t.handle_segment(now, &ack, &mut NullSink(0));
        t.poll_transmit(now, &TX).expect("fast retransmit");
        let full = seg(501, 5101, flags::ACK, &[]);
        t.handle_segment(now, &full, &mut NullSink(0));
        let (cwnd, ssthresh) = (t.cwnd(), t.cc.ssthresh());
        assert!(ssthresh < u32::MAX && cwnd >= ssthresh, "{cwnd} {ssthresh}");
        assert!(t.penalise(now));
        assert_eq!(t.cwnd(), cwnd / 2);
        // halved, not below two segments
        assert_eq!(t.cc.ssthresh(), (ssthresh / 2).max(2000));
        assert!(t.cc.ssthresh() < ssthresh);
    }

    /// A subflow that is not using its window (held back by the application, the MPTCP
    /// scheduler or the data-level window) does not grow it (Linux's
    /// `tcp_is_cwnd_limited`): grown on ACKs of a small flight, the window later let out a
    /// burst of its whole size into the bottleneck's queue.
    #[test]
    fn the_window_grows_only_while_it_is_used() {
        let mut t = established_sack();
        let cwnd0 = t.cwnd();
        assert_eq!(cwnd0, 10_000);
        let mut now = Instant::from_millis(60);
        let mut seq = 101u32;
        // 40 rounds of two segments each: 2 000 in flight, a tenth of the window
        for _ in 0..40 {
            t.enqueue(2000);
            while t.poll_transmit(now, &TX).is_some() {}
            now += Duration::from_millis(50);
            seq += 2000;
            t.handle_segment(now, &seg(501, seq, flags::ACK, &[]), &mut NullSink(0));
        }
        assert_eq!(
            t.cwnd(),
            cwnd0,
            "the window grew on a flight of 2 000 bytes"
        );
        // using the whole window grows it (slow start: by what is acknowledged)
        let sent: u32 = fill(&mut t, now, &TX).iter().sum();
        assert_eq!(sent, cwnd0);
        now += Duration::from_millis(50);
        seq += sent;
        t.handle_segment(now, &seg(501, seq, flags::ACK, &[]), &mut NullSink(0));
        assert_eq!(t.cwnd(), 2 * cwnd0);
    }
}
