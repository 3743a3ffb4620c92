//! Send path: the scheduler's decisions turned into data assigned to subflows,
//! reinjection, stall detection.

use super::*;

impl Connection {
    // ----- send path -------------------------------------------------------------------

    /// The subflow for a signal on a pure ACK (DATA_FIN, window update, ADD_ADDR...): the
    /// scheduler's `signal_subflow`, checked to be a usable subflow.
    pub(super) fn best_subflow(&self) -> Option<usize> {
        let provisional = self.wnd_provisional;
        let mut views = self.subflows.iter().map(|s| view_of(s, provisional));
        let i = self.mp.sched.signal_subflow(&mut views)?;
        self.subflows.get(i).filter(|s| s.usable()).map(|_| i)
    }

    /// Assign unsent (and reinjected) data to subflows, as the scheduler decides.
    pub(super) fn schedule(&mut self, now: Instant) {
        if self.mode != Mode::Mptcp {
            return;
        }
        for _ in 0..64 {
            // reinjections first, on the best other subflow with room
            if let Some(&(dsn, len)) = self.reinject.front() {
                match self.pick_for_reinjection(now, u64::from(len)) {
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
                if !self.timers.is_armed(Timer::ZeroWindowProbe) && self.data_idle() {
                    let t = self.conn_rto().saturating_mul(1 << self.zwp_backoff.min(6));
                    self.timers
                        .set(Timer::ZeroWindowProbe, now + t.min(Duration::from_secs(60)));
                }
            } else {
                self.timers.clear(Timer::ZeroWindowProbe);
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
                        let _ = p.tcb.penalise(now);
                    }
                }
            }
        }
        self.maybe_arm_fin(now);
        self.arm_rtx(now);
    }

    /// Subflows that carry data side by side now: usable, not backups, not held back by a
    /// provisional window.
    pub(super) fn data_subflows(&self) -> usize {
        self.subflows
            .iter()
            .filter(|s| {
                s.usable()
                    && !(s.backup || s.peer_backup)
                    && !(self.wnd_provisional && s.join != JoinState::Initial)
            })
            .count()
    }

    pub(super) fn account_new(&mut self, i: usize, len: u32) {
        self.snd_nxt += u64::from(len);
        self.subflows[i].data_sent += u64::from(len);
        self.stats_bytes_sent += u64::from(len);
    }

    /// Record that subflow `i` carries `len` bytes from `dsn` and tell its engine.
    pub(super) fn assign(&mut self, i: usize, dsn: u64, len: u32) -> bool {
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
    pub(super) fn subflow_room(&self, i: usize) -> u64 {
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

    /// Where to send again `len` bytes already sent on another subflow: the scheduler's
    /// `retransmit_subflow` (Linux's `get_retrans`), checked: an index that exists and has
    /// room; with that room in bytes.
    pub(super) fn pick_for_reinjection(&mut self, now: Instant, len: u64) -> Option<(usize, u64)> {
        self.fill_views();
        let ctx = crate::sched::SchedContext {
            now,
            unsent: len,
            // reinjected bytes lie below snd_nxt: inside the window they were first sent in
            conn_window: len,
            send_buffer_free: self.sbuf.free() as u64,
            blocked: None,
        };
        let i = {
            let Connection { mp, .. } = self;
            let views = std::mem::take(&mut mp.views);
            let i = mp.scheduler().retransmit_subflow(&ctx, &views);
            mp.views = views;
            i
        }?;
        let room = self.subflow_room(i);
        (room > 0 && !self.subflows[i].potentially_failed).then_some((i, room))
    }

    pub(super) fn fill_views(&mut self) {
        let provisional = self.wnd_provisional;
        let Connection { mp, subflows, .. } = self;
        mp.views.clear();
        mp.views
            .extend(subflows.iter().map(|s| view_of(s, provisional)));
    }

    /// When the connection window is exhausted: the subflow holding the oldest
    /// data-level-unacknowledged byte (for opportunistic retransmission).
    pub(super) fn blocked_info(&self, wnd: u64) -> Option<crate::sched::Blocked> {
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
    pub(super) fn detect_stalls(&mut self) {
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
    pub(super) fn release_held(&mut self, now: Instant, i: usize, mib: &mut Mib) -> bool {
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
}

/// What the scheduler sees of subflow `s`.
fn view_of(s: &Subflow, provisional: bool) -> crate::sched::SubflowView {
    let st = s.tcb.stats();
    // under a provisional window only the initial subflow may carry data (in order:
    // Linux drops data past its real window only when it arrives out of order)
    let provisional_hold = provisional && s.join != JoinState::Initial;
    crate::sched::SubflowView {
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
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn pair_with_data(n: usize) -> Pair {
        let mut p = Pair::new(ConnConfig::default());
        let d = pattern(n);
        assert_eq!(p.client_to_server(&d), d);
        p
    }

    fn payload_bytes(out: &[Packet]) -> usize {
        out.iter().map(|q| q.payload.len()).sum()
    }

    #[test]
    fn no_data_is_scheduled_past_the_peers_window_edge() {
        let mut p = pair_with_data(100);
        let now = p.now;
        let start = p.c.conn.snd_nxt;
        p.c.conn.snd_wnd_edge = start + 1000;
        assert_eq!(p.c.conn.send(&pattern(5000)), 5000);
        let out = p.c.drain(now);
        assert_eq!(payload_bytes(&out), 1000);
        assert_eq!(p.c.conn.snd_nxt, start + 1000);
        assert!(
            !p.c.conn.timers.is_armed(Timer::ZeroWindowProbe),
            "data in flight"
        );
        // the peer's DATA_ACK and window let the rest go
        for q in &out {
            p.s.input(now, q);
        }
        p.advance(Duration::from_millis(500));
        assert_eq!(read_all(&mut p.s), pattern(5000));
    }

    #[test]
    fn a_closed_window_is_probed_when_nothing_is_in_flight() {
        let mut p = pair_with_data(100);
        let now = p.now;
        let nxt = p.c.conn.snd_nxt;
        p.c.conn.snd_wnd_edge = nxt;
        assert_eq!(p.c.conn.send(&pattern(500)), 500);
        let out = p.c.drain(now);
        assert_eq!(payload_bytes(&out), 0);
        assert_eq!(p.c.conn.snd_nxt, nxt);
        let at =
            p.c.conn
                .timers
                .get(Timer::ZeroWindowProbe)
                .expect("a window probe armed");
        p.now = at;
        p.c.conn.handle_timeout(at, &mut p.c.mib);
        assert_eq!(p.c.mib.DataWindowProbes, 1);
        assert_eq!(p.c.conn.zwp_backoff, 1);
        // the probe's answer carries the real window: the data goes, the probing stops
        p.advance(Duration::from_millis(500));
        assert_eq!(read_all(&mut p.s), pattern(500));
        assert!(!p.c.conn.timers.is_armed(Timer::ZeroWindowProbe));
        assert_eq!(p.c.conn.zwp_backoff, 0);
    }

    #[test]
    fn two_data_subflows_use_at_most_half_the_window_beyond_the_data_ack() {
        let mut p = pair_with_data(100);
        p.join(v4(CLIENT2, 41000), v4(SERVER, 80), false);
        let now = p.now;
        let c = &mut p.c.conn;
        assert_eq!(c.data_subflows(), 2);
        assert_eq!(c.snd_una, c.snd_nxt);
        c.snd_wnd_edge = c.snd_una + 20_000;
        assert_eq!(c.send(&pattern(50_000)), 50_000);
        let out = p.c.drain(now);
        assert_eq!(payload_bytes(&out), 10_000);
        assert_eq!(p.c.conn.snd_nxt - p.c.conn.snd_una, 10_000);
        // one subflow delivers in order and uses more of the same window
        let mut p = pair_with_data(100);
        let now = p.now;
        let c = &mut p.c.conn;
        assert_eq!(c.data_subflows(), 1);
        c.snd_wnd_edge = c.snd_una + 20_000;
        assert_eq!(c.send(&pattern(50_000)), 50_000);
        assert!(payload_bytes(&p.c.drain(now)) > 10_000);
    }

    #[test]
    fn a_closed_subflows_data_is_reinjected_on_another_under_the_same_dsns() {
        let mut p = pair_with_data(100);
        let join = v4(CLIENT2, 41000);
        let (ci, _) = p.join(join, v4(SERVER, 80), false);
        p.c.conn.subflows[0].backup = true; // the scheduler prefers the join
        let now = p.now;
        let data = pattern(3000);
        assert_eq!(p.c.conn.send(&data), 3000);
        let lost = p.c.drain(now);
        let dsns = |out: &[Packet], src| {
            let mut v: Vec<(u64, u16)> = out
                .iter()
                .filter(|q| q.src == src && !q.payload.is_empty())
                .map(|q| {
                    let m = q.dss().and_then(|d| d.mapping).expect("a mapping");
                    assert_eq!(usize::from(m.data_len), q.payload.len());
                    (m.dsn, m.data_len)
                })
                .collect();
            v.sort();
            v
        };
        let first = dsns(&lost, join);
        assert_eq!(first.iter().map(|m| usize::from(m.1)).sum::<usize>(), 3000);
        // the join goes away with its data in flight
        assert!(p.c.conn.close_subflow(ci, true));
        let out = p.c.drain(now);
        let second = dsns(&out, v4(CLIENT, 40000));
        assert_eq!(second.first().map(|m| m.0), first.first().map(|m| m.0));
        assert_eq!(second.iter().map(|m| usize::from(m.1)).sum::<usize>(), 3000);
        assert!(p.c.mib.Reinjections >= 1);
        assert_eq!(p.c.conn.info().reinjected, 3000);
        assert_eq!(p.c.conn.snd_nxt - p.c.conn.snd_una, 3000, "no new DSNs");
        for q in &out {
            p.s.deliver(now, q);
        }
        p.advance(Duration::from_millis(500));
        assert_eq!(read_all(&mut p.s), data);
    }
}
