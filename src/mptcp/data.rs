//! The data level: DATA_ACK processing, the send window's right edge, the connection-level
//! retransmission timer, the peer's DATA_FIN, subflow and connection closing.

use super::*;

impl Connection {
    pub(super) fn handle_data_ack(
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
            self.timers.clear(Timer::DataRtx);
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
                    self.timers.clear(Timer::DataFin);
                }
            }
            self.fin_backoff = 0;
            if self.timers.is_armed(Timer::DataFin) {
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
    pub(super) fn update_window_edge(
        &mut self,
        ack: u64,
        idx: usize,
        seg: &SegmentIn<'_>,
        provisional: bool,
    ) {
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
    pub(super) fn data_idle(&self) -> bool {
        self.reinject.is_empty()
            && self.subflows.iter().all(|s| {
                s.closed.is_some() || !s.established || (s.tcb.in_flight() == 0 && s.unsent() == 0)
            })
    }

    /// The connection-level RTO: the largest RTO of the usable subflows (as Linux's MPTCP
    /// retransmit timer), 1 s before any is known.
    pub(super) fn conn_rto(&self) -> Duration {
        self.subflows
            .iter()
            .filter(|s| s.usable())
            .map(|s| s.tcb.stats().rto)
            .max()
            .unwrap_or(Duration::from_secs(1))
    }

    /// Arm the data-level retransmission timer if data is outstanding and it is not armed.
    pub(super) fn arm_rtx(&mut self, now: Instant) {
        if self.mode != Mode::Mptcp || self.snd_una >= self.snd_nxt {
            self.timers.clear(Timer::DataRtx);
            return;
        }
        if !self.timers.is_armed(Timer::DataRtx) {
            let t = self.conn_rto().saturating_mul(1 << self.rtx_backoff.min(6));
            self.timers
                .set(Timer::DataRtx, now + t.min(Duration::from_secs(60)));
        }
    }

    /// Queue the oldest data-level-unacknowledged chunk for sending again, on whichever
    /// subflow the reinjection path picks, whatever the subflows think they delivered.
    pub(super) fn queue_data_retransmit(&mut self, mib: &mut Mib) {
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
        tracing::debug!(
            conn = %format_args!("{:08x}", self.local_token),
            "data-level retransmission timeout: {len} bytes from DSN {from:#x} again"
        );
        mib.DataRetrans += 1;
        mib.DataRetransBytes += len;
        self.stats_data_retrans += 1;
    }

    /// Data-level timers: retransmission and zero-window probing.
    pub(super) fn data_timers(&mut self, now: Instant, mib: &mut Mib) {
        if self.mode != Mode::Mptcp || self.error.is_some() {
            self.timers.clear(Timer::DataRtx);
            self.timers.clear(Timer::ZeroWindowProbe);
            return;
        }
        if self.timers.take_due(Timer::DataRtx, now) {
            if self.snd_una < self.snd_nxt && self.subflows.iter().any(|s| s.usable()) {
                self.queue_data_retransmit(mib);
                self.rtx_backoff = self.rtx_backoff.saturating_add(1);
            }
            self.arm_rtx(now);
        }
        if self.timers.take_due(Timer::ZeroWindowProbe, now) {
            if let Some(i) = self.best_subflow() {
                self.subflows[i].tcb.probe_window();
                mib.DataWindowProbes += 1;
                self.zwp_backoff = self.zwp_backoff.saturating_add(1);
            }
        }
    }

    pub(super) fn check_peer_fin(&mut self) {
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
    pub(super) fn data_ack(&self) -> u64 {
        self.rbuf.contiguous_end() + u64::from(self.peer_closed && self.mode == Mode::Mptcp)
    }

    pub(super) fn maybe_close_subflows(&mut self) {
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

    pub(super) fn fastclosed(&mut self, _now: Instant) {
        for s in self.subflows.iter_mut() {
            if s.closed.is_none() {
                s.tcb.abort();
            }
        }
        self.error = Some(ConnError::Reset);
    }

    pub(super) fn process_tcb_events(&mut self, now: Instant, _mib: &mut Mib) {
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

    pub(super) fn on_subflow_closed(&mut self, _now: Instant, idx: usize, reason: CloseReason) {
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

    pub(super) fn check_closed(&mut self) {
        if self.closed_reported {
            return;
        }
        if self.error.is_some() || (self.is_closed() && self.peer_closed && self.all_acked()) {
            self.closed_reported = true;
            self.push_event(ConnEvent::Closed { error: self.error });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn dss_ack(ack: u64) -> MptcpOption<'static> {
        MptcpOption::Dss(Dss {
            data_ack: Some(DataAck { ack, ack64: true }),
            mapping: None,
            data_fin: false,
        })
    }

    fn pair_with_data(n: usize) -> Pair {
        let mut p = Pair::new(ConnConfig::default());
        let d = pattern(n);
        assert_eq!(p.client_to_server(&d), d);
        p
    }

    #[test]
    fn a_data_ack_beyond_what_was_sent_is_ignored() {
        let mut p = pair_with_data(3000);
        let now = p.now;
        let c = &p.c.conn;
        let (una, nxt, edge) = (c.snd_una, c.snd_nxt, c.snd_wnd_edge);
        assert_eq!(una, nxt, "everything acknowledged");
        let mut a = p.s.pure_ack(now, 0);
        a.window = u16::MAX;
        a.set_options(&[dss_ack(nxt + 10)]);
        p.c.input(now, &a);
        assert_eq!(p.c.mib.DataAckInvalid, 1);
        assert_eq!(
            (p.c.conn.snd_una, p.c.conn.snd_wnd_edge),
            (una, edge),
            "neither the DATA_ACK nor the window taken"
        );
        // one below what is acknowledged is old: ignored, not counted
        a.set_options(&[dss_ack(una - 1)]);
        p.c.input(now, &a);
        assert_eq!(p.c.mib.DataAckInvalid, 1);
        assert_eq!((p.c.conn.snd_una, p.c.conn.snd_wnd_edge), (una, edge));
    }

    #[test]
    fn a_32_bit_data_ack_is_expanded_and_releases_the_send_buffer() {
        let mut p = pair_with_data(10);
        let now = p.now;
        let una = p.c.conn.snd_una;
        assert_eq!(p.c.conn.send(&pattern(3000)), 3000);
        let out = p.c.drain(now);
        for q in &out {
            p.s.input(now, q);
        }
        let mut a = p.s.pure_ack(now, 0);
        a.set_options(&[MptcpOption::Dss(Dss {
            data_ack: Some(DataAck {
                ack: (una + 1000) & 0xffff_ffff,
                ack64: false,
            }),
            mapping: None,
            data_fin: false,
        })]);
        p.c.input(now, &a);
        assert_eq!(p.c.conn.snd_una, una + 1000);
        assert_eq!(
            p.c.conn.sbuf.start(),
            una + 1000,
            "acknowledged bytes released"
        );
        assert_eq!(p.c.conn.info().bytes_acked, 1010);
        assert!(
            p.c.conn.timers.is_armed(Timer::DataRtx),
            "2000 bytes still unacknowledged"
        );
    }

    #[test]
    fn the_send_window_edge_never_moves_left_after_the_first_dss() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        let una = p.c.conn.snd_una;
        assert!(
            p.c.conn.wnd_provisional,
            "the SYN/ACK's window, no DATA_ACK yet"
        );
        let shift = p.c.conn.subflows[0].tcb.snd_wscale();
        let base = p.s.pure_ack(now, 0);
        let ack = |w: u16| {
            let mut a = base.clone();
            a.window = w;
            a.set_options(&[dss_ack(una)]);
            a
        };
        // the first DSS-carried edge replaces the provisional one, even if smaller
        p.c.input(now, &ack(10));
        assert_eq!(p.c.conn.snd_wnd_edge, una + (10 << shift));
        assert!(!p.c.conn.wnd_provisional);
        // from then on a smaller window does not move it left
        p.c.input(now, &ack(5));
        assert_eq!(p.c.conn.snd_wnd_edge, una + (10 << shift));
        p.c.input(now, &ack(0));
        assert_eq!(p.c.conn.snd_wnd_edge, una + (10 << shift));
        // a larger one moves it right
        p.c.input(now, &ack(40));
        assert_eq!(p.c.conn.snd_wnd_edge, una + (40 << shift));
    }

    #[test]
    fn shutdown_sends_a_data_fin_the_peer_reports_as_peer_closed() {
        let mut p = pair_with_data(100);
        p.c.events();
        p.s.events();
        let now = p.now;
        p.c.conn.shutdown(now);
        let fin = p.c.conn.fin_dsn.expect("a DATA_FIN queued");
        assert_eq!(fin, p.c.conn.snd_nxt, "after everything written");
        assert_eq!(p.c.conn.send(b"more"), 0, "nothing after shutdown");
        let out = p.c.drain(now);
        let d = out
            .iter()
            .find_map(|q| q.dss().filter(|d| d.data_fin))
            .expect("a DSS with DATA_FIN");
        let m = d.mapping.expect("its mapping");
        assert_eq!((m.dsn, m.ssn, m.data_len), (fin, 0, 1));
        assert!(p.c.conn.timers.is_armed(Timer::DataFin));
        for q in &out {
            p.s.input(now, q);
        }
        assert_eq!(p.s.events(), vec![ConnEvent::PeerClosed]);
        assert!(p.s.conn.at_eof());
        assert_eq!(
            p.s.conn.data_ack(),
            fin + 1,
            "our DATA_ACK covers the DATA_FIN"
        );
        p.exchange();
        assert!(p.c.conn.fin_acked && p.c.conn.all_acked());
        assert!(!p.c.conn.timers.is_armed(Timer::DataFin));
        assert!(
            !p.c.conn.is_closed(),
            "the server's direction is still open"
        );
        // the server closes too: both DATA_FINs through, the connection is over
        p.s.conn.shutdown(p.now);
        p.exchange();
        let ev = p.c.events();
        assert!(ev.contains(&ConnEvent::PeerClosed));
        assert!(ev.contains(&ConnEvent::Closed { error: None }), "{ev:?}");
        assert!(p.s.events().contains(&ConnEvent::Closed { error: None }));
        assert!(p.c.conn.is_closed() && p.s.conn.is_closed());
        assert!(p.c.conn.subflows_closing && p.s.conn.subflows_closing);
    }

    #[test]
    fn a_data_level_retransmission_timeout_resends_unacknowledged_data() {
        let mut p = pair_with_data(10);
        let now = p.now;
        let data = pattern(4000);
        assert_eq!(p.c.conn.send(&data), 4000);
        let lost = p.c.drain(now);
        assert_eq!(lost.iter().map(|q| q.payload.len()).sum::<usize>(), 4000);
        let una = p.c.conn.snd_una;
        let at = p.c.conn.timers.get(Timer::DataRtx).expect("armed");
        assert!(at > now);
        // not before its time
        p.c.conn
            .handle_timeout(at - Duration::from_millis(1), &mut p.c.mib);
        assert_eq!(p.c.mib.DataRetrans, 0);
        p.now = at;
        p.c.conn.handle_timeout(at, &mut p.c.mib);
        assert_eq!((p.c.mib.DataRetrans, p.c.mib.DataRetransBytes), (1, 4000));
        assert_eq!(p.c.conn.info().data_retransmits, 1);
        assert_eq!(p.c.conn.reinject.front(), Some(&(una, 4000)));
        assert_eq!(p.c.conn.rtx_backoff, 1);
        let again = p.c.conn.timers.get(Timer::DataRtx).expect("armed again");
        assert!(again >= at + (at - now), "backed off");
        p.advance(Duration::from_secs(3));
        assert_eq!(read_all(&mut p.s), data);
        assert_eq!(p.c.conn.snd_una, p.c.conn.snd_nxt);
        assert!(!p.c.conn.timers.is_armed(Timer::DataRtx));
        assert_eq!(p.c.conn.rtx_backoff, 0);
    }
}
