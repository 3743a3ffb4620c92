//! The TCP control block: one subflow's state machine, timers, loss recovery.

use super::*;
use crate::cc::{self, AckContext, CongestionControl, CouplingView};
use crate::storage::RangeSet;
use std::collections::VecDeque;

/// Extra TCP option parameters for one `poll_transmit`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TxParams {
    /// Bytes of options the caller adds (MPTCP).
    pub extra_option_len: usize,
    /// Free receive space to advertise.
    pub rcv_space: u32,
}

const MAX_RANGES: usize = 64;
/// Most segment boundaries remembered (the MPTCP layer keeps fewer mappings than this).
pub const MAX_BOUNDARIES: usize = 512;
const MAX_OPT: usize = 40;

fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
fn seq_le(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) <= 0
}
fn seq_gt(a: u32, b: u32) -> bool {
    seq_lt(b, a)
}
fn seq_ge(a: u32, b: u32) -> bool {
    seq_le(b, a)
}

/// One TCP connection (subflow). See the module documentation.
pub struct Tcb {
    cfg: Config,
    state: State,
    // ---- send side
    iss: u32,
    snd_una: u32,
    /// Stream offset of `snd_una` (once the SYN is acknowledged).
    snd_una_off: u64,
    /// Next stream offset to send (below `snd_max_off` after a timeout: go-back-N).
    snd_nxt_off: u64,
    /// Highest stream offset sent + 1.
    snd_max_off: u64,
    queue_end: u64,
    /// Stream offsets no segment may cross (ends of `enqueue_chunk` calls), ascending.
    boundaries: VecDeque<u64>,
    snd_wnd: u32,
    snd_wl1: u32,
    snd_wl2: u32,
    snd_wscale: u8,
    rcv_wscale: u8,
    peer_mss: u16,
    sack_ok: bool,
    ts_ok: bool,
    fin_queued: bool,
    fin_sent: bool,
    fin_acked: bool,
    syn_acked: bool,
    /// Peer SACKed stream ranges above snd_una.
    sacked: RangeSet,
    in_recovery: bool,
    recover_off: u64,
    high_rxt: u64,
    dupacks: u32,
    // ---- receive side
    irs: u32,
    rcv_nxt: u32,
    rcv_nxt_off: u64,
    rcv_ranges: RangeSet,
    /// Most recently received out-of-order range (first SACK block).
    last_ooo: Option<(u64, u64)>,
    peer_fin_off: Option<u64>,
    peer_fin_done: bool,
    rcv_adv_edge: u32,
    last_adv_wnd: u32,
    ts_recent: u32,
    last_ack_sent: u32,
    // ---- timers
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    backoff: u32,
    retries: u8,
    rtx_timer: Option<Instant>,
    delack_timer: Option<Instant>,
    persist_timer: Option<Instant>,
    persist_backoff: u32,
    timewait_timer: Option<Instant>,
    rtt_probe: Option<(u64, Instant)>,
    unacked_since: Option<Instant>,
    // ---- output flags
    ack_now: bool,
    segs_unacked: u32,
    need_syn: bool,
    need_rst: bool,
    pending_rst: Option<SegmentOut>,
    probe_now: bool,
    fin_rtx: bool,
    // ---- misc
    cc: Box<dyn CongestionControl>,
    coupling: Option<CouplingView>,
    events: VecDeque<Event>,
    stats: Stats,
    ts_base: u32,
}

impl core::fmt::Debug for Tcb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tcb")
            .field("state", &self.state)
            .field("snd_una_off", &self.snd_una_off)
            .field("snd_nxt_off", &self.snd_nxt_off)
            .field("queue_end", &self.queue_end)
            .field("rcv_nxt_off", &self.rcv_nxt_off)
            .finish_non_exhaustive()
    }
}

impl Tcb {
    fn new(cfg: Config, iss: u32, state: State) -> Tcb {
        let cc = cc::by_name(cfg.congestion, cfg.mss)
            .unwrap_or_else(|| Box::new(cc::cubic::Cubic::new(cfg.mss)));
        let rto = cfg.rto_initial;
        Tcb {
            state,
            iss,
            snd_una: iss,
            snd_una_off: 0,
            snd_nxt_off: 0,
            snd_max_off: 0,
            queue_end: 0,
            boundaries: VecDeque::with_capacity(MAX_BOUNDARIES),
            snd_wnd: 0,
            snd_wl1: 0,
            snd_wl2: 0,
            snd_wscale: 0,
            rcv_wscale: 0,
            peer_mss: 536,
            sack_ok: false,
            ts_ok: false,
            fin_queued: false,
            fin_sent: false,
            fin_acked: false,
            syn_acked: false,
            sacked: RangeSet::with_capacity(MAX_RANGES),
            in_recovery: false,
            recover_off: 0,
            high_rxt: 0,
            dupacks: 0,
            irs: 0,
            rcv_nxt: 0,
            rcv_nxt_off: 0,
            rcv_ranges: RangeSet::with_capacity(MAX_RANGES),
            last_ooo: None,
            peer_fin_off: None,
            peer_fin_done: false,
            rcv_adv_edge: 0,
            last_adv_wnd: 0,
            ts_recent: 0,
            last_ack_sent: 0,
            srtt: None,
            rttvar: Duration::ZERO,
            rto,
            backoff: 0,
            retries: 0,
            rtx_timer: None,
            delack_timer: None,
            persist_timer: None,
            persist_backoff: 0,
            timewait_timer: None,
            rtt_probe: None,
            unacked_since: None,
            ack_now: false,
            segs_unacked: 0,
            need_syn: false,
            need_rst: false,
            pending_rst: None,
            probe_now: false,
            fin_rtx: false,
            cc,
            coupling: None,
            events: VecDeque::with_capacity(8),
            stats: Stats::default(),
            ts_base: iss.rotate_left(7),
            cfg,
        }
    }

    /// Active open: SYN-SENT; the first `poll_transmit` yields the SYN.
    pub fn connect(config: Config, iss: u32, _now: Instant) -> Tcb {
        let mut t = Tcb::new(config, iss, State::SynSent);
        t.need_syn = true;
        t
    }

    /// Passive open from a received SYN: SYN-RECEIVED; the first `poll_transmit` yields the SYN/ACK.
    pub fn accept(config: Config, syn: &SegmentIn<'_>, iss: u32, _now: Instant) -> Tcb {
        let mut t = Tcb::new(config, iss, State::SynReceived);
        t.take_syn_options(syn);
        t.irs = syn.seq;
        t.rcv_nxt = syn.seq.wrapping_add(1);
        t.snd_wnd = u32::from(syn.window);
        t.snd_wl1 = syn.seq;
        t.need_syn = true;
        t
    }

    fn take_syn_options(&mut self, syn: &SegmentIn<'_>) {
        let o = &syn.options;
        self.peer_mss = o.mss.unwrap_or(536).max(64);
        if let Some(ws) = o.window_scale {
            self.snd_wscale = ws.min(14);
            self.rcv_wscale = self.cfg.window_scale.min(14);
        } else {
            self.snd_wscale = 0;
            self.rcv_wscale = 0;
        }
        self.sack_ok = self.cfg.sack && o.sack_permitted;
        if let (true, Some((tsval, _))) = (self.cfg.timestamps, o.timestamps) {
            self.ts_ok = true;
            self.ts_recent = tsval;
        } else {
            self.ts_ok = false;
        }
    }

    // ----- accessors -------------------------------------------------------------------

    pub fn state(&self) -> State {
        self.state
    }
    pub fn iss(&self) -> u32 {
        self.iss
    }
    pub fn irs(&self) -> u32 {
        self.irs
    }
    pub fn send_queue_end(&self) -> u64 {
        self.queue_end
    }
    pub fn snd_una_offset(&self) -> u64 {
        self.snd_una_off
    }
    pub fn snd_nxt_offset(&self) -> u64 {
        self.snd_max_off
    }
    pub fn rcv_nxt_offset(&self) -> u64 {
        self.rcv_nxt_off
    }
    pub fn peer_mss(&self) -> u16 {
        self.peer_mss
    }
    pub fn nodelay(&self) -> bool {
        self.cfg.nodelay
    }
    pub fn user_timeout(&self) -> Option<Duration> {
        self.cfg.user_timeout
    }
    pub fn is_synchronized(&self) -> bool {
        !matches!(
            self.state,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }

    /// Effective sender MSS (before options).
    fn snd_mss(&self) -> u16 {
        self.peer_mss.min(self.cfg.mss).max(64)
    }

    /// Bytes in flight (sent, not acknowledged, not SACKed; RFC 6675 style "pipe").
    pub fn in_flight(&self) -> u32 {
        let outstanding = self.snd_max_off.saturating_sub(self.snd_una_off);
        let pipe = if self.in_recovery {
            let high_sack = self
                .sacked
                .last()
                .map_or(self.snd_una_off, |r| r.end)
                .max(self.snd_una_off);
            let above = self.snd_max_off.saturating_sub(high_sack);
            let rtx = self
                .high_rxt
                .saturating_sub(self.snd_una_off)
                .saturating_sub(self.sacked_below(self.high_rxt));
            above + rtx
        } else {
            let sent = self.snd_nxt_off.max(self.snd_una_off);
            let below = sent - self.snd_una_off;
            below.saturating_sub(self.sacked_below(sent))
                + self.snd_max_off.saturating_sub(sent).min(0)
        };
        pipe.min(outstanding).min(u64::from(u32::MAX)) as u32
    }

    fn sacked_below(&self, off: u64) -> u64 {
        self.sacked
            .iter()
            .map(|r| r.end.min(off).saturating_sub(r.start))
            .sum()
    }

    /// Bytes that may be sent now.
    pub fn send_capacity(&self) -> u32 {
        if !matches!(self.state, State::Established | State::CloseWait) {
            return 0;
        }
        let wnd = self.cc.cwnd().min(self.snd_wnd);
        wnd.saturating_sub(self.in_flight())
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        s.srtt = self.srtt;
        s.rttvar = self.srtt.map(|_| self.rttvar);
        s.rto = self.rto;
        s.cwnd = self.cc.cwnd();
        s.ssthresh = self.cc.ssthresh();
        s.bytes_in_flight = self.in_flight();
        s.snd_mss = self.snd_mss();
        s.rcv_mss = self.cfg.mss;
        s.peer_window = self.snd_wnd;
        s
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn event(&mut self, e: Event) {
        if self.events.len() < 16 {
            self.events.push_back(e);
        }
    }

    // ----- user calls ------------------------------------------------------------------

    pub fn enqueue(&mut self, len: u32) {
        if !self.fin_queued {
            self.queue_end += u64::from(len);
        }
    }

    /// Append `len` bytes that must not share a segment with the bytes before them
    /// (MPTCP: a run whose data-sequence mapping does not continue the previous one).
    /// Returns false, enqueuing nothing, when too many boundaries are outstanding.
    pub fn enqueue_chunk(&mut self, len: u32) -> bool {
        if self.fin_queued || self.boundaries.len() >= MAX_BOUNDARIES {
            return false;
        }
        if self.boundaries.back() != Some(&self.queue_end) {
            self.boundaries.push_back(self.queue_end);
        }
        self.queue_end += u64::from(len);
        true
    }

    /// Bytes from `off` to the next boundary (or `u64::MAX` if none).
    fn to_boundary(&self, off: u64) -> u64 {
        let i = self.boundaries.partition_point(|&b| b <= off);
        self.boundaries.get(i).map_or(u64::MAX, |&b| b - off)
    }

    pub fn note_receive_space(&mut self, space: u32) {
        let mss = u32::from(self.cfg.mss);
        if self.is_synchronized() && space >= self.last_adv_wnd.saturating_add(2 * mss) {
            self.ack_now = true;
        }
    }

    pub fn request_ack(&mut self) {
        if self.state != State::Closed {
            self.ack_now = true;
        }
    }

    pub fn close(&mut self) {
        match self.state {
            State::SynSent | State::Listen => self.enter_closed(CloseReason::Normal),
            State::SynReceived | State::Established => {
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

    pub fn abort(&mut self) {
        if matches!(self.state, State::Closed | State::TimeWait) {
            return;
        }
        if self.state != State::SynSent {
            self.need_rst = true;
        }
        self.enter_closed(CloseReason::Aborted);
    }

    /// Refuse the connection in answer to `seg` (e.g. a SYN/ACK whose MPTCP HMAC is wrong):
    /// a RST acceptable to the peer goes out on the next poll and the TCB closes.
    pub fn reject(&mut self, seg: &SegmentIn<'_>) {
        if self.state == State::Closed {
            return;
        }
        self.pending_rst = reset_for(seg);
        self.enter_closed(CloseReason::Aborted);
    }

    pub fn set_nodelay(&mut self, on: bool) {
        self.cfg.nodelay = on;
    }

    pub fn set_user_timeout(&mut self, t: Option<Duration>) {
        self.cfg.user_timeout = t;
    }

    /// Set the MSS we advertise and send with; before the SYN it appears in the SYN.
    pub fn set_mss(&mut self, mss: u16) {
        self.cfg.mss = mss.max(64);
    }

    pub fn set_coupling(&mut self, view: CouplingView) {
        self.coupling = Some(view);
    }

    /// Halve the congestion window (MPTCP penalisation).
    pub fn penalise(&mut self) {
        let mss = self.snd_mss();
        self.cc.penalise(mss);
    }

    fn enter_closed(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.state = State::Closed;
        self.rtx_timer = None;
        self.delack_timer = None;
        self.persist_timer = None;
        self.timewait_timer = None;
        self.event(Event::Closed(reason));
    }

    fn enter_time_wait(&mut self, now: Instant) {
        self.state = State::TimeWait;
        self.rtx_timer = None;
        self.persist_timer = None;
        self.timewait_timer = Some(now + self.cfg.time_wait);
    }

    // ----- RTT / RTO ---------------------------------------------------------------------

    fn rtt_sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                let diff = if s > r { s - r } else { r - s };
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((s * 7 + r) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or(r);
        let rto = srtt + (self.rttvar * 4).max(Duration::from_millis(1));
        self.rto = rto.clamp(self.cfg.rto_min, self.cfg.rto_max);
    }

    fn current_rto(&self) -> Duration {
        let factor = 1u32 << self.backoff.min(16);
        self.rto.saturating_mul(factor).min(self.cfg.rto_max)
    }

    fn arm_rtx(&mut self, now: Instant) {
        self.rtx_timer = Some(now + self.current_rto());
    }

    fn ts_now(&self, now: Instant) -> u32 {
        (now.total_millis() as u32).wrapping_add(self.ts_base)
    }

    // ----- input -------------------------------------------------------------------------

    pub fn handle_segment(&mut self, now: Instant, seg: &SegmentIn<'_>, rx: &mut dyn RxSink) {
        self.stats.segs_in += 1;
        let syn = seg.flags & flags::SYN != 0;
        let ack = seg.flags & flags::ACK != 0;
        let rst = seg.flags & flags::RST != 0;
        let fin = seg.flags & flags::FIN != 0;
        match self.state {
            State::Closed | State::Listen => {}
            State::SynSent => {
                if ack && (seq_le(seg.ack, self.iss) || seq_gt(seg.ack, self.iss.wrapping_add(1))) {
                    if !rst {
                        self.need_rst_for(seg);
                    }
                    return;
                }
                if rst {
                    if ack {
                        self.enter_closed(CloseReason::Reset);
                    }
                    return;
                }
                if !syn {
                    return;
                }
                self.take_syn_options(seg);
                self.irs = seg.seq;
                self.rcv_nxt = seg.seq.wrapping_add(1);
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
                self.snd_wnd = u32::from(seg.window); // never scaled in a SYN
                if ack {
                    self.syn_acked(now, seg);
                    self.state = State::Established;
                    self.event(Event::Established);
                    self.ack_now = true;
                } else {
                    // simultaneous open
                    self.state = State::SynReceived;
                    self.need_syn = true;
                }
            }
            _ => self.handle_synchronized(now, seg, rx, syn, ack, rst, fin),
        }
    }

    fn need_rst_for(&mut self, _seg: &SegmentIn<'_>) {
        // A RST answering an unacceptable ACK in SYN-SENT is left to the stack's
        // stateless reset path; the connection itself keeps waiting for a valid SYN/ACK.
    }

    fn syn_acked(&mut self, now: Instant, seg: &SegmentIn<'_>) {
        self.syn_acked = true;
        self.snd_una = self.iss.wrapping_add(1);
        self.retries = 0;
        self.backoff = 0;
        self.rtx_timer = None;
        if let Some((_, ecr)) = seg.options.timestamps.filter(|_| self.ts_ok) {
            let r = self.ts_now(now).wrapping_sub(ecr);
            if r < 60_000 {
                self.rtt_sample(Duration::from_millis(u64::from(r.max(1))));
            }
        } else if self.stats.retransmits == 0 {
            if let Some((_, t)) = self.rtt_probe.take() {
                self.rtt_sample(now - t);
            }
        }
        self.rtt_probe = None;
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_synchronized(
        &mut self,
        now: Instant,
        seg: &SegmentIn<'_>,
        rx: &mut dyn RxSink,
        syn: bool,
        ack: bool,
        rst: bool,
        fin: bool,
    ) {
        let rcv_wnd = rx
            .window()
            .max(self.rcv_adv_edge.wrapping_sub(self.rcv_nxt));
        let seg_len = seg.payload.len() as u32 + u32::from(syn) + u32::from(fin);
        // PAWS (RFC 7323 section 5)
        if self.ts_ok && !rst {
            if let Some((tsval, _)) = seg.options.timestamps {
                if seq_lt(tsval, self.ts_recent) && self.state != State::SynReceived {
                    self.ack_now = true;
                    return;
                }
            }
        }
        // acceptability (RFC 9293 3.10.7.4)
        let acceptable = match (seg_len, rcv_wnd) {
            (0, 0) => seg.seq == self.rcv_nxt,
            (0, w) => {
                seq_le(self.rcv_nxt, seg.seq) && seq_lt(seg.seq, self.rcv_nxt.wrapping_add(w))
            }
            (_, 0) => false,
            (l, w) => {
                let end = seg.seq.wrapping_add(l - 1);
                let win_end = self.rcv_nxt.wrapping_add(w);
                (seq_le(self.rcv_nxt, seg.seq) && seq_lt(seg.seq, win_end))
                    || (seq_le(self.rcv_nxt, end) && seq_lt(end, win_end))
            }
        };
        // a retransmitted SYN/ACK in ESTABLISHED (our ACK was lost) is answered with an ACK
        if !acceptable {
            if !rst {
                self.ack_now = true;
                if self.state == State::TimeWait && fin {
                    self.timewait_timer = Some(now + self.cfg.time_wait);
                }
            }
            return;
        }
        if rst {
            // RFC 5961: exact match resets, otherwise challenge ACK
            if seg.seq == self.rcv_nxt || self.state == State::SynReceived {
                self.enter_closed(CloseReason::Reset);
            } else {
                self.ack_now = true;
            }
            return;
        }
        if syn {
            if self.state == State::SynReceived && seg.seq == self.irs {
                self.need_syn = true; // retransmitted SYN: resend SYN/ACK
                return;
            }
            // RFC 5961: SYN in a synchronized state gets a challenge ACK
            self.ack_now = true;
            return;
        }
        if !ack {
            return;
        }
        // timestamps: remember the peer's value (RFC 7323 section 4.3)
        if let Some((tsval, _)) = seg.options.timestamps {
            if self.ts_ok && seq_le(seg.seq, self.last_ack_sent) {
                self.ts_recent = tsval;
            }
        }
        if self.state == State::SynReceived {
            if seq_gt(seg.ack, self.iss) && seq_le(seg.ack, self.iss.wrapping_add(1)) {
                self.syn_acked(now, seg);
                self.snd_wnd = u32::from(seg.window) << self.snd_wscale;
                self.snd_wl1 = seg.seq;
                self.snd_wl2 = seg.ack;
                if self.fin_queued {
                    self.state = State::FinWait1;
                } else {
                    self.state = State::Established;
                }
                self.event(Event::Established);
            } else {
                return;
            }
        } else {
            self.process_ack(now, seg);
            if self.state == State::Closed {
                return;
            }
        }
        // payload
        if !seg.payload.is_empty()
            && matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            )
        {
            self.receive_data(now, seg, rx, rcv_wnd);
        }
        if fin {
            let off = self.seq_to_rcv_off(seg.seq) + seg.payload.len() as u64;
            if self.peer_fin_off.is_none() && !self.peer_fin_done {
                self.peer_fin_off = Some(off);
            }
            self.ack_now = true;
        }
        self.check_peer_fin(now);
    }

    fn seq_to_rcv_off(&self, seq: u32) -> u64 {
        let d = seq.wrapping_sub(self.rcv_nxt) as i32;
        (self.rcv_nxt_off as i64 + i64::from(d)).max(0) as u64
    }

    fn receive_data(
        &mut self,
        now: Instant,
        seg: &SegmentIn<'_>,
        rx: &mut dyn RxSink,
        rcv_wnd: u32,
    ) {
        let off = self.seq_to_rcv_off(seg.seq);
        let data = seg.payload;
        // trim what is below rcv_nxt and beyond the window
        let skip = self.rcv_nxt_off.saturating_sub(off).min(data.len() as u64) as usize;
        let start_off = off + skip as u64;
        let limit = self.rcv_nxt_off + u64::from(rcv_wnd);
        let end_off = (off + data.len() as u64).min(limit);
        if end_off <= start_off {
            self.ack_now = true; // duplicate or beyond the window
            return;
        }
        let slice = &data[skip..skip + (end_off - start_off) as usize];
        let accepted = rx.deliver(start_off, slice).min(slice.len());
        self.stats.bytes_received += accepted as u64;
        if accepted == 0 {
            self.ack_now = true;
            return;
        }
        let got = start_off..start_off + accepted as u64;
        let was_in_order = start_off == self.rcv_nxt_off;
        let had_gap = !self.rcv_ranges.is_empty();
        let new_nxt = if was_in_order {
            // in-order data needs no range of its own (the set may be full of islands)
            self.rcv_ranges.contiguous_end(got.end)
        } else {
            if !self.rcv_ranges.insert(got.clone()) {
                self.ack_now = true;
                return;
            }
            self.rcv_ranges.contiguous_end(self.rcv_nxt_off)
        };
        if new_nxt > self.rcv_nxt_off {
            self.rcv_nxt = self
                .rcv_nxt
                .wrapping_add((new_nxt - self.rcv_nxt_off) as u32);
            self.rcv_nxt_off = new_nxt;
            self.rcv_ranges.remove_below(new_nxt);
        }
        if !was_in_order {
            self.last_ooo = Some((got.start, got.end));
            self.ack_now = true; // out of order: immediate duplicate ACK with SACK
        } else if had_gap {
            self.ack_now = true; // filled (part of) a gap
            self.last_ooo = None;
        } else {
            self.segs_unacked += 1;
            if self.segs_unacked >= 2 || seg.flags & flags::PSH != 0 && self.segs_unacked >= 2 {
                self.ack_now = true;
            } else if self.delack_timer.is_none() {
                self.delack_timer = Some(now + self.cfg.delayed_ack);
            }
        }
    }

    fn check_peer_fin(&mut self, now: Instant) {
        let Some(f) = self.peer_fin_off else { return };
        if self.peer_fin_done || self.rcv_nxt_off != f {
            return;
        }
        self.peer_fin_done = true;
        self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
        self.ack_now = true;
        self.event(Event::PeerFin);
        match self.state {
            State::Established => self.state = State::CloseWait,
            State::FinWait1 => {
                if self.fin_acked {
                    self.enter_time_wait(now);
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(now),
            _ => {}
        }
    }

    fn process_ack(&mut self, now: Instant, seg: &SegmentIn<'_>) {
        let snd_max_seq = self
            .off_to_seq(self.snd_max_off)
            .wrapping_add(u32::from(self.fin_sent));
        if seq_gt(seg.ack, snd_max_seq) {
            self.ack_now = true; // acks something not yet sent
            return;
        }
        // SACK blocks
        if self.sack_ok {
            for &(l, r) in seg.options.sack.as_slice() {
                let lo = self.seq_to_snd_off(l);
                let hi = self.seq_to_snd_off(r);
                if hi > lo && lo >= self.snd_una_off && hi <= self.snd_max_off {
                    self.sacked.insert(lo..hi);
                }
            }
        }
        let old_una = self.snd_una;
        if seq_gt(seg.ack, self.snd_una) {
            let mut acked_seq = seg.ack.wrapping_sub(self.snd_una);
            let fin_seq = self.off_to_seq(self.queue_end);
            let acks_fin = self.fin_sent && seg.ack == fin_seq.wrapping_add(1);
            if acks_fin {
                acked_seq -= 1;
                self.fin_acked = true;
            }
            let acked = u64::from(acked_seq);
            self.snd_una = seg.ack;
            let in_flight_before = self.in_flight();
            self.snd_una_off += acked;
            if self.snd_nxt_off < self.snd_una_off {
                self.snd_nxt_off = self.snd_una_off;
            }
            self.sacked.remove_below(self.snd_una_off);
            while self
                .boundaries
                .front()
                .is_some_and(|&b| b <= self.snd_una_off)
            {
                self.boundaries.pop_front();
            }
            self.stats.bytes_acked += acked;
            self.retries = 0;
            self.backoff = 0;
            self.dupacks = 0;
            // RTT
            let mut rtt = None;
            if let Some((_, ecr)) = seg.options.timestamps.filter(|_| self.ts_ok) {
                let r = self.ts_now(now).wrapping_sub(ecr);
                if r < 60_000 {
                    rtt = Some(Duration::from_millis(u64::from(r.max(1))));
                }
            } else if let Some((off, t)) = self.rtt_probe {
                if self.snd_una_off > off {
                    rtt = Some(now - t);
                    self.rtt_probe = None;
                }
            }
            if let Some(r) = rtt {
                self.rtt_sample(r);
            }
            let mss = self.snd_mss();
            let ctx = AckContext {
                in_flight: in_flight_before,
                mss,
                srtt: self.srtt,
                coupling: self.coupling.as_ref(),
            };
            if self.in_recovery {
                if self.snd_una_off >= self.recover_off {
                    self.in_recovery = false;
                    self.cc.on_recovery_end(now);
                } else if self.high_rxt < self.snd_una_off {
                    self.high_rxt = self.snd_una_off;
                }
            } else if acked > 0 {
                self.cc
                    .on_ack(now, acked.min(u64::from(u32::MAX)) as u32, rtt, &ctx);
            }
            self.unacked_since =
                if self.snd_una_off < self.snd_max_off || (self.fin_sent && !self.fin_acked) {
                    Some(now)
                } else {
                    None
                };
            if self.snd_una_off >= self.snd_max_off && (!self.fin_sent || self.fin_acked) {
                self.rtx_timer = None;
            } else {
                self.arm_rtx(now);
            }
            if self.fin_acked {
                match self.state {
                    State::FinWait1 => self.state = State::FinWait2,
                    State::Closing => self.enter_time_wait(now),
                    State::LastAck => {
                        self.enter_closed(CloseReason::Normal);
                        return;
                    }
                    _ => {}
                }
            }
        } else if seg.ack == old_una
            && seg.payload.is_empty()
            && seg.flags & flags::FIN == 0
            && self.snd_max_off > self.snd_una_off
            && u32::from(seg.window) << self.snd_wscale == self.snd_wnd
        {
            self.dupacks += 1;
            let sacked_segs = self.sacked.total() / u64::from(self.snd_mss());
            if !self.in_recovery && (self.dupacks >= 3 || (self.sack_ok && sacked_segs >= 3)) {
                self.enter_recovery(now);
            }
        }
        // window update (RFC 9293 3.10.7.4)
        if seq_lt(self.snd_wl1, seg.seq)
            || (self.snd_wl1 == seg.seq && seq_le(self.snd_wl2, seg.ack))
        {
            self.snd_wnd = u32::from(seg.window) << self.snd_wscale;
            self.snd_wl1 = seg.seq;
            self.snd_wl2 = seg.ack;
            if self.snd_wnd > 0 {
                self.persist_timer = None;
                self.persist_backoff = 0;
            }
        }
    }

    fn enter_recovery(&mut self, now: Instant) {
        self.in_recovery = true;
        self.recover_off = self.snd_max_off;
        self.high_rxt = self.snd_una_off;
        self.stats.fast_retransmits += 1;
        let mss = self.snd_mss();
        let ctx = AckContext {
            in_flight: self.in_flight(),
            mss,
            srtt: self.srtt,
            coupling: self.coupling.as_ref(),
        };
        self.cc.on_congestion_event(now, &ctx);
        self.arm_rtx(now);
    }

    fn off_to_seq(&self, off: u64) -> u32 {
        self.iss.wrapping_add(1).wrapping_add(off as u32)
    }

    fn seq_to_snd_off(&self, seq: u32) -> u64 {
        let d = seq.wrapping_sub(self.snd_una) as i32;
        (self.snd_una_off as i64 + i64::from(d)).max(0) as u64
    }

    // ----- timers ------------------------------------------------------------------------

    pub fn poll_timeout(&self) -> Option<Instant> {
        let ut = match (self.cfg.user_timeout, self.unacked_since) {
            (Some(d), Some(t)) if self.is_synchronized() => Some(t + d),
            _ => None,
        };
        [
            self.rtx_timer,
            self.delack_timer,
            self.persist_timer,
            self.timewait_timer,
            ut,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let (Some(d), Some(t)) = (self.cfg.user_timeout, self.unacked_since) {
            if self.is_synchronized() && now >= t + d {
                self.need_rst = true;
                self.enter_closed(CloseReason::Timeout);
                return;
            }
        }
        if self.timewait_timer.is_some_and(|t| t <= now) {
            self.timewait_timer = None;
            self.enter_closed(CloseReason::Normal);
            return;
        }
        if self.delack_timer.is_some_and(|t| t <= now) {
            self.delack_timer = None;
            if self.segs_unacked > 0 {
                self.ack_now = true;
            }
        }
        if self.persist_timer.is_some_and(|t| t <= now) {
            self.persist_timer = None;
            self.probe_now = true;
            self.persist_backoff = (self.persist_backoff + 1).min(10);
        }
        if self.rtx_timer.is_some_and(|t| t <= now) {
            self.rtx_timer = None;
            self.on_rto(now);
        }
    }

    fn on_rto(&mut self, now: Instant) {
        self.retries += 1;
        self.stats.rto_count += 1;
        self.backoff += 1;
        let limit = match self.state {
            State::SynSent | State::SynReceived => self.cfg.syn_retries,
            _ => self.cfg.max_retries,
        };
        if self.retries > limit {
            if self.state != State::SynSent {
                self.need_rst = true;
            }
            self.enter_closed(CloseReason::Timeout);
            return;
        }
        match self.state {
            State::SynSent | State::SynReceived => {
                self.need_syn = true;
            }
            _ => {
                let mss = self.snd_mss();
                let ctx = AckContext {
                    in_flight: self.in_flight(),
                    mss,
                    srtt: self.srtt,
                    coupling: self.coupling.as_ref(),
                };
                self.cc.on_rto(now, &ctx);
                self.in_recovery = false;
                self.dupacks = 0;
                // go back: resend from the first unacknowledged byte (SACKed ranges skipped)
                self.snd_nxt_off = self.snd_una_off;
                self.rtt_probe = None;
                if self.fin_sent && !self.fin_acked && self.snd_una_off >= self.queue_end {
                    self.fin_rtx = true;
                }
                // RFC 6675: SACK information may be stale after a timeout
                self.sacked.clear();
            }
        }
        self.arm_rtx(now);
    }

    // ----- output ------------------------------------------------------------------------

    fn base_options(&self, now: Instant, syn: bool) -> TcpOptions {
        let mut o = TcpOptions::default();
        if syn {
            o.mss = Some(self.cfg.mss);
            let we_scale = self.state == State::SynSent || self.snd_wscale_offered();
            if we_scale {
                o.window_scale = Some(self.cfg.window_scale.min(14));
            }
            if self.cfg.sack && (self.state == State::SynSent || self.sack_ok) {
                o.sack_permitted = true;
            }
            if self.cfg.timestamps && (self.state == State::SynSent || self.ts_ok) {
                o.timestamps = Some((
                    self.ts_now(now),
                    if self.state == State::SynSent {
                        0
                    } else {
                        self.ts_recent
                    },
                ));
            }
        } else if self.ts_ok {
            o.timestamps = Some((self.ts_now(now), self.ts_recent));
        }
        o
    }

    fn snd_wscale_offered(&self) -> bool {
        // in SYN-RECEIVED we answer with a scale only if the peer offered one
        self.rcv_wscale > 0 || self.cfg.window_scale == 0 && self.snd_wscale > 0
    }

    fn window_field(&mut self, space: u32) -> u16 {
        if !self.is_synchronized() && self.state != State::SynReceived {
            return space.min(65535) as u16;
        }
        // never shrink the right edge we advertised
        let edge_now = self.rcv_nxt.wrapping_add(space);
        let wnd = if seq_lt(edge_now, self.rcv_adv_edge) {
            self.rcv_adv_edge.wrapping_sub(self.rcv_nxt)
        } else {
            space
        };
        let scaled = (wnd >> self.rcv_wscale).min(65535);
        let adv = scaled << self.rcv_wscale;
        self.rcv_adv_edge = self.rcv_nxt.wrapping_add(adv);
        self.last_adv_wnd = adv;
        scaled as u16
    }

    fn sack_blocks(&self) -> SackBlocks {
        let mut b = SackBlocks::default();
        if !self.sack_ok || self.rcv_ranges.is_empty() {
            return b;
        }
        let to_seq = |off: u64| self.rcv_nxt.wrapping_add((off - self.rcv_nxt_off) as u32);
        if let Some((s, e)) = self.last_ooo {
            if let Some(r) = self.rcv_ranges.iter().find(|r| r.start <= s && r.end >= e) {
                b.push(to_seq(r.start), to_seq(r.end));
            }
        }
        for r in self.rcv_ranges.iter().rev() {
            if b.len >= 4 {
                break;
            }
            let blk = (to_seq(r.start), to_seq(r.end));
            if !b.as_slice().contains(&blk) {
                b.push(blk.0, blk.1);
            }
        }
        b
    }

    fn segment(
        &mut self,
        now: Instant,
        seq: u32,
        flags_: u8,
        syn: bool,
        rcv_space: u32,
    ) -> SegmentOut {
        let ack = if flags_ & flags::ACK != 0 {
            self.rcv_nxt
        } else {
            0
        };
        let window = self.window_field(rcv_space);
        let mut options = self.base_options(now, syn);
        if !syn && flags_ & flags::RST == 0 {
            options.sack = self.sack_blocks();
        }
        if flags_ & flags::ACK != 0 {
            self.last_ack_sent = self.rcv_nxt;
            self.ack_now = false;
            self.segs_unacked = 0;
            self.delack_timer = None;
        }
        self.stats.segs_out += 1;
        SegmentOut {
            seq,
            ack,
            flags: flags_,
            window,
            options,
            offset: 0,
            payload_len: 0,
            retransmission: false,
        }
    }

    /// Payload room per segment given the options that will ride along.
    fn payload_room(&self, extra: usize) -> u32 {
        let ts = if self.ts_ok { 12 } else { 0 };
        let opts = (ts + extra).min(MAX_OPT);
        let opts = (opts + 3) & !3;
        u32::from(self.snd_mss()).saturating_sub(opts as u32).max(1)
    }

    pub fn poll_transmit(&mut self, now: Instant, tx: &TxParams) -> Option<SegmentOut> {
        if let Some(r) = self.pending_rst.take() {
            self.stats.segs_out += 1;
            return Some(r);
        }
        if self.need_rst {
            self.need_rst = false;
            let seq = self
                .off_to_seq(self.snd_max_off)
                .wrapping_add(u32::from(self.fin_sent));
            let mut s = self.segment(now, seq, flags::RST | flags::ACK, false, 0);
            s.options.sack = SackBlocks::default();
            return Some(s);
        }
        match self.state {
            State::Closed | State::Listen => return None,
            State::SynSent => {
                if !self.need_syn {
                    return None;
                }
                self.need_syn = false;
                if self.retries == 0 {
                    self.rtt_probe = Some((0, now));
                } else {
                    self.stats.retransmits += 1;
                }
                self.arm_rtx(now);
                let s = self.segment(now, self.iss, flags::SYN, true, tx.rcv_space);
                return Some(s);
            }
            State::SynReceived => {
                if !self.need_syn {
                    return None;
                }
                self.need_syn = false;
                if self.retries > 0 {
                    self.stats.retransmits += 1;
                }
                self.arm_rtx(now);
                let s = self.segment(now, self.iss, flags::SYN | flags::ACK, true, tx.rcv_space);
                return Some(s);
            }
            _ => {}
        }
        if let Some(s) = self.poll_data(now, tx) {
            return Some(s);
        }
        if self.ack_now {
            let seq = self
                .off_to_seq(self.snd_max_off)
                .wrapping_add(u32::from(self.fin_sent));
            return Some(self.segment(now, seq, flags::ACK, false, tx.rcv_space));
        }
        None
    }

    fn poll_data(&mut self, now: Instant, tx: &TxParams) -> Option<SegmentOut> {
        if !matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::LastAck
                | State::Closing
        ) {
            return None;
        }
        let room = self.payload_room(tx.extra_option_len);
        let cwnd = self.cc.cwnd();
        // retransmit holes during SACK recovery
        if self.in_recovery {
            let pipe = self.in_flight();
            if pipe < cwnd {
                if let Some((off, len)) = self.next_hole(room) {
                    let len = (u64::from(len).min(self.to_boundary(off))) as u32;
                    self.high_rxt = off + u64::from(len);
                    return Some(self.data_segment(now, off, len, true, tx, false));
                }
            }
        }
        // (re)send from snd_nxt, skipping what the peer SACKed
        while let Some(r) = self
            .sacked
            .iter()
            .find(|r| r.start <= self.snd_nxt_off && r.end > self.snd_nxt_off)
        {
            self.snd_nxt_off = r.end;
        }
        let avail = self.queue_end.saturating_sub(self.snd_nxt_off);
        let is_rtx = self.snd_nxt_off < self.snd_max_off;
        let wnd_limit = cwnd.min(self.snd_wnd);
        let pipe = self.in_flight();
        let mut can = wnd_limit.saturating_sub(pipe);
        if self.probe_now && avail > 0 && can == 0 {
            can = 1; // zero-window probe
        }
        self.probe_now = false;
        if avail > 0 {
            let mut len = u64::from(room)
                .min(avail)
                .min(u64::from(can))
                .min(self.to_boundary(self.snd_nxt_off)) as u32;
            if is_rtx {
                // do not run into the next SACKed range
                if let Some(r) = self.sacked.iter().find(|r| r.start > self.snd_nxt_off) {
                    len = len.min((r.start - self.snd_nxt_off) as u32);
                }
                len = len
                    .min((self.snd_max_off - self.snd_nxt_off).min(u64::from(u32::MAX)) as u32)
                    .max(len.min(1));
            }
            if len > 0 {
                let full = u64::from(len)
                    == avail
                        .min(u64::from(room))
                        .min(self.to_boundary(self.snd_nxt_off));
                let nagle_ok = self.cfg.nodelay || full || len >= room || pipe == 0 || is_rtx;
                if nagle_ok {
                    let off = self.snd_nxt_off;
                    let with_fin =
                        self.fin_queued && off + u64::from(len) == self.queue_end && !self.fin_sent;
                    let s = self.data_segment(now, off, len, is_rtx, tx, with_fin);
                    self.snd_nxt_off = off + u64::from(len);
                    if self.snd_nxt_off > self.snd_max_off {
                        self.snd_max_off = self.snd_nxt_off;
                    }
                    return Some(s);
                }
            } else if self.snd_wnd == 0 && self.persist_timer.is_none() && pipe == 0 {
                let wait = self
                    .current_rto()
                    .saturating_mul(1 << self.persist_backoff.min(6))
                    .min(Duration::from_secs(60));
                self.persist_timer = Some(now + wait);
            }
        }
        // FIN alone (all data sent), or its retransmission
        if self.fin_queued && self.snd_nxt_off >= self.queue_end && (!self.fin_sent || self.fin_rtx)
        {
            let retrans = self.fin_sent;
            self.fin_sent = true;
            self.fin_rtx = false;
            if retrans {
                self.stats.retransmits += 1;
            }
            self.snd_max_off = self.snd_max_off.max(self.queue_end);
            let seq = self.off_to_seq(self.queue_end);
            if self.rtx_timer.is_none() {
                self.arm_rtx(now);
            }
            self.unacked_since.get_or_insert(now);
            return Some(self.segment(now, seq, flags::FIN | flags::ACK, false, tx.rcv_space));
        }
        None
    }

    /// First un-SACKed range at or above `high_rxt` below the highest SACKed byte.
    fn next_hole(&self, room: u32) -> Option<(u64, u32)> {
        let high_sack = self.sacked.last().map_or(self.snd_una_off, |r| r.end);
        let mut pos = self.high_rxt.max(self.snd_una_off);
        // when nothing is SACKed (NewReno), retransmit the first segment once
        let limit = if self.sacked.is_empty() {
            (self.snd_una_off + u64::from(room)).min(self.snd_max_off)
        } else {
            high_sack
        };
        while pos < limit {
            if let Some(r) = self.sacked.iter().find(|r| r.start <= pos && r.end > pos) {
                pos = r.end;
                continue;
            }
            let next_sacked = self
                .sacked
                .iter()
                .find(|r| r.start > pos)
                .map_or(limit, |r| r.start);
            let len = (next_sacked.min(limit) - pos).min(u64::from(room)) as u32;
            if len > 0 {
                return Some((pos, len));
            }
            break;
        }
        None
    }

    fn data_segment(
        &mut self,
        now: Instant,
        off: u64,
        len: u32,
        rtx: bool,
        tx: &TxParams,
        fin: bool,
    ) -> SegmentOut {
        let seq = self.off_to_seq(off);
        let mut f = flags::ACK;
        if fin {
            f |= flags::FIN;
            self.fin_sent = true;
        }
        if off + u64::from(len) >= self.queue_end {
            f |= flags::PSH;
        }
        let mut s = self.segment(now, seq, f, false, tx.rcv_space);
        s.offset = off;
        s.payload_len = len;
        s.retransmission = rtx;
        self.stats.bytes_sent += u64::from(len);
        if rtx {
            self.stats.retransmits += 1;
            if self.rtt_probe.is_some_and(|(o, _)| o >= off) {
                self.rtt_probe = None; // Karn
            }
        } else if self.rtt_probe.is_none() && !self.ts_ok {
            self.rtt_probe = Some((off, now));
        }
        if self.rtx_timer.is_none() {
            self.arm_rtx(now);
        }
        self.unacked_since.get_or_insert(now);
        s
    }
}

/// A RST answering a segment that matches no connection (RFC 9293 section 3.10.7.1).
pub fn reset_for(seg: &SegmentIn<'_>) -> Option<SegmentOut> {
    if seg.flags & flags::RST != 0 {
        return None;
    }
    let out = if seg.flags & flags::ACK != 0 {
        SegmentOut {
            seq: seg.ack,
            ack: 0,
            flags: flags::RST,
            window: 0,
            options: TcpOptions::default(),
            offset: 0,
            payload_len: 0,
            retransmission: false,
        }
    } else {
        let len = seg.payload.len() as u32
            + u32::from(seg.flags & flags::SYN != 0)
            + u32::from(seg.flags & flags::FIN != 0);
        SegmentOut {
            seq: 0,
            ack: seg.seq.wrapping_add(len),
            flags: flags::RST | flags::ACK,
            window: 0,
            options: TcpOptions::default(),
            offset: 0,
            payload_len: 0,
            retransmission: false,
        }
    };
    Some(out)
}
