//! Timers (`poll_timeout`, `handle_timeout`), the coupling view for coupled congestion
//! control, and memory accounting (`trim_memory`, `memory_footprint`).

use super::*;

impl Connection {
    // ----- timers ----------------------------------------------------------------------

    /// Once everything before the DATA_FIN is scheduled, send it (on a pure ACK) and arm
    /// its retransmission timer; the timer re-sends it until it is acknowledged.
    pub(super) fn maybe_arm_fin(&mut self, now: Instant) {
        if let Some(f) = self.fin_dsn {
            if self.snd_nxt >= f
                && !self.fin_acked
                && self.mode == Mode::Mptcp
                && !self.timers.is_armed(Timer::DataFin)
            {
                if let Some(s) = self.best_subflow() {
                    self.subflows[s].tcb.request_ack();
                }
                self.arm_fin_timer(now);
            }
        }
    }

    pub(super) fn arm_fin_timer(&mut self, now: Instant) {
        let rto = self
            .subflows
            .iter()
            .filter(|s| s.closed.is_none())
            .map(|s| s.tcb.stats().rto)
            .max()
            .unwrap_or(Duration::from_secs(1));
        let backoff = rto.saturating_mul(1 << self.fin_backoff.min(6));
        self.timers
            .set(Timer::DataFin, now + backoff.min(Duration::from_secs(60)));
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let sub = self
            .subflows
            .iter()
            .filter_map(|s| s.tcb.poll_timeout())
            .min();
        let held = self.subflows.iter().filter_map(|s| s.held).min();
        [sub, self.timers.next(), self.mp_poll_timeout(), held]
            .into_iter()
            .flatten()
            .min()
    }

    /// Coupled congestion control (RFC 6356 LIA, OLIA, BALIA): before subflow `idx`
    /// processes an ACK or a timeout, give it the current window, RTT and loss history of
    /// every subflow of the connection. Backup subflows are not counted while a regular
    /// one is usable; closed ones are left out. No allocation (a fixed-size array).
    pub(super) fn feed_coupling(&mut self, idx: usize) {
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
        // (take_due disarms the timer whether or not the DATA_FIN was acknowledged since)
        if self.timers.take_due(Timer::DataFin, now) && !self.fin_acked {
            // the subflow that carried it may be dead: retransmit on every usable one
            self.fin_backoff += 1;
            for s in self.subflows.iter_mut().filter(|s| s.usable()) {
                s.tcb.request_ack();
            }
            self.arm_fin_timer(now);
        }
        self.data_timers(now, mib);
        if let Some(dsn) = self
            .mp_fail_dsn
            .filter(|_| self.timers.is_due(Timer::MpFail, now))
        {
            self.mp_fail_dsn = None;
            self.timers.clear(Timer::MpFail);
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
        if self.timers.take_due(Timer::MemTrim, now) {
            self.trim_memory();
        }
    }

    // ----- memory ----------------------------------------------------------------------

    /// Something happened (a segment arrived, the application wrote or read): give buffer
    /// memory back only after `MEM_IDLE_TRIM` without activity. Nothing is armed while the
    /// data-level buffers own no memory (an idle connection that never moved data).
    pub(super) fn note_activity(&mut self, now: Instant) {
        if self.sbuf.allocated() > 0 || self.rbuf.allocated() > 0 {
            self.timers.set(Timer::MemTrim, now + MEM_IDLE_TRIM);
        } else {
            self.timers.clear(Timer::MemTrim);
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
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn an_idle_connection_has_no_timer_and_a_timeout_does_nothing() {
        let mut p = Pair::new(ConnConfig::default());
        assert_eq!(
            (p.c.conn.poll_timeout(), p.s.conn.poll_timeout()),
            (None, None)
        );
        assert_eq!(p.c.conn.timers, TimerTable::default());
        let later = p.now + Duration::from_secs(3600);
        let before = p.c.mib.clone();
        p.c.conn.handle_timeout(later, &mut p.c.mib);
        assert_eq!(p.c.mib, before);
        assert!(p.c.drain(later).is_empty());
        assert!(p.c.conn.is_established());
    }

    #[test]
    fn buffer_memory_is_given_back_after_a_second_idle() {
        let mut p = Pair::new(ConnConfig::default());
        assert_eq!(
            p.c.conn.buffer_sizes().1,
            0,
            "nothing allocated before data"
        );
        let d = pattern(100_000);
        assert_eq!(p.client_to_server(&d), d);
        let (_, c_send, _, _) = p.c.conn.buffer_sizes();
        let (_, _, _, s_recv) = p.s.conn.buffer_sizes();
        assert!(c_send > 0 && s_recv > 0);
        let footprint = p.c.conn.memory_footprint();
        let at = p.c.conn.timers.get(Timer::MemTrim).expect("trim armed");
        assert!(at <= p.now + MEM_IDLE_TRIM);
        // not before its time
        p.c.conn
            .handle_timeout(at - Duration::from_millis(1), &mut p.c.mib);
        assert_eq!(p.c.conn.buffer_sizes().1, c_send);
        p.advance(MEM_IDLE_TRIM + Duration::from_millis(100));
        assert_eq!(p.c.conn.buffer_sizes().1, 0);
        assert_eq!(p.s.conn.buffer_sizes().3, 0);
        assert!(p.c.conn.memory_footprint() < footprint);
        assert_eq!(p.c.conn.poll_timeout(), None, "nothing left to do");
        // the buffers grow again with new data
        let d = pattern(5000);
        assert_eq!(p.client_to_server(&d), d);
    }

    #[test]
    fn an_unacknowledged_data_fin_is_sent_again_with_backoff() {
        let mut p = Pair::new(ConnConfig::default());
        let t0 = p.now;
        p.c.conn.shutdown(t0);
        let has_fin = |out: &[Packet]| out.iter().any(|q| q.dss().is_some_and(|d| d.data_fin));
        assert!(has_fin(&p.c.drain(t0)), "sent, and lost");
        let t1 = p.c.conn.timers.get(Timer::DataFin).expect("armed");
        p.c.conn.handle_timeout(t1, &mut p.c.mib);
        assert_eq!(p.c.conn.fin_backoff, 1);
        let out = p.c.drain(t1);
        assert!(has_fin(&out), "sent again");
        let t2 = p.c.conn.timers.get(Timer::DataFin).expect("armed again");
        assert_eq!(t2 - t1, (t1 - t0) * 2, "backed off");
        p.now = t1;
        for q in &out {
            p.s.input(t1, q);
        }
        assert!(p.s.conn.at_eof());
        p.exchange();
        assert!(p.c.conn.fin_acked);
        assert!(!p.c.conn.timers.is_armed(Timer::DataFin));
        assert_eq!(p.c.conn.fin_backoff, 0);
    }

    #[test]
    fn an_unanswered_mp_fail_resets_the_only_subflow() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        // (MP_FAIL rides beside a DSS, once the client no longer repeats MP_CAPABLE)
        let a = p.s.pure_ack(now, 0);
        p.c.input(now, &a);
        let dsn = p.c.conn.rbuf.contiguous_end();
        p.c.conn.mp_fail_dsn = Some(dsn);
        let at = now + Duration::from_millis(100);
        p.c.conn.timers.set(Timer::MpFail, at);
        assert_eq!(p.c.conn.poll_timeout(), Some(at));
        // meanwhile MP_FAIL rides on pure ACKs
        let a = p.c.pure_ack(now, 0);
        assert!(a.options().contains(&MptcpOption::MpFail { dsn }));
        p.c.conn.handle_timeout(at, &mut p.c.mib);
        assert_eq!(p.c.mib.FallbackFailed, 1);
        assert_eq!(p.c.conn.mp_fail_dsn, None);
        let out = p.c.drain(at);
        let rst = out
            .iter()
            .find(|q| q.has(tcp::flags::RST))
            .expect("the subflow reset");
        let o = rst.options();
        assert!(o.contains(&MptcpOption::MpTcpRst {
            flags: 0,
            reason: rst_reason::MIDDLEBOX_INTERFERENCE
        }));
        assert!(o.contains(&MptcpOption::MpFail { dsn }));
        assert!(p.c.conn.error().is_some());
    }
}
