//! Receive path of a connection: a segment in (`handle_segment`), the subflow TCP input,
//! MP_CAPABLE keys, fallback to TCP, subflow resets.

use super::*;

impl Connection {
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
        let was_fully_established = self.fully_established;
        self.segment_in(now, idx, seg, opts, mib);
        if !was_fully_established && self.fully_established {
            self.signals_unblocked();
        }
    }

    /// The client learnt that the server has its key: its ACKs stop carrying MP_CAPABLE,
    /// so signals and MP_PRIOs that waited behind it (an ACK with MP_CAPABLE has no room
    /// for them) leave now rather than with unrelated traffic.
    fn signals_unblocked(&mut self) {
        if self.signal_pending() {
            if let Some(b) = self.best_subflow() {
                self.subflows[b].tcb.request_ack();
            }
        }
        for sf in self.subflows.iter_mut() {
            if sf.prio_pending && sf.usable() {
                sf.tcb.request_ack();
            }
        }
    }

    fn segment_in(
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
                // MP_CAPABLE with data (RFC 8684 3.1): an implicit mapping of the first data
                // bytes, checked as any other; a 64-bit one (Linux then answers with a
                // 64-bit DATA_ACK)
                let implicit = DssMapping {
                    dsn: self.remote_idsn.wrapping_add(1),
                    dsn64: true,
                    ssn: 1,
                    data_len: m.data_len.unwrap_or(0),
                    checksum: m.checksum,
                };
                if idx == 0 && implicit.data_len > 0 {
                    self.handle_rx_mapping(now, idx, &implicit, false, seg.payload, mib);
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
    pub(super) fn tcp_input(
        &mut self,
        now: Instant,
        idx: usize,
        seg: &SegmentIn<'_>,
        mib: &mut Mib,
    ) {
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

    pub(super) fn rbuf_stream_base(&self) -> u64 {
        // In fallback, subflow offset 0 is the receive buffer's initial offset.
        self.remote_idsn.wrapping_add(1)
    }

    pub(super) fn set_remote_key(&mut self, key: u64) {
        self.remote_key = key;
        let (token, idsn) = crypto::token_and_idsn(key);
        self.remote_token = token;
        self.remote_idsn = idsn;
        self.rbuf =
            RecvBuffer::with_max_ranges(self.cfg.recv_buffer, idsn.wrapping_add(1), RECV_RANGES);
        self.rcv_adv_edge = 0;
    }

    pub(super) fn enter_fallback(&mut self, idx: usize) {
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
    pub(super) fn push_fallback(&mut self) {
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
    pub(super) fn can_fall_back(&self, idx: usize) -> bool {
        idx == 0
            && self.subflows[0].join == JoinState::Initial
            && self.subflows.len() == 1
            && self.tx_linear
            && self.rx_linear
            && self.reinject.is_empty()
    }

    /// Whether a subflow other than `idx` can carry data.
    pub(super) fn other_usable(&self, idx: usize) -> bool {
        self.subflows
            .iter()
            .enumerate()
            .any(|(i, s)| i != idx && s.usable())
    }

    /// Close subflow `idx` with RST + MP_TCPRST (middlebox interference) + MP_FAIL when one
    /// is pending; its data goes on over the other subflows, if any.
    pub(super) fn reset_subflow(&mut self, idx: usize) {
        self.reset_subflow_with(idx, rst_reason::MIDDLEBOX_INTERFERENCE);
    }

    /// Close subflow `idx` with RST + MP_TCPRST `reason`; its data goes on over the other
    /// subflows, if any.
    pub(super) fn reset_subflow_with(&mut self, idx: usize, reason: u8) {
        let sf = &mut self.subflows[idx];
        sf.rst_reason = Some(reason);
        sf.tcb.abort();
        self.reinject_outstanding(idx);
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

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn no_options(p: &mut Packet) {
        p.set_options(&[]);
    }

    #[test]
    fn options_on_a_segment_tcp_refuses_are_dropped_unseen() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        let mut a = p.s.pure_ack(now, 0);
        a.set_options(&[
            MptcpOption::MpPrio {
                backup: true,
                addr_id: None,
            },
            MptcpOption::MpFastclose {
                key: p.c.conn.local_key(),
            },
        ]);
        let mut blind = a.clone();
        blind.seq = blind.seq.wrapping_add(1 << 30); // far outside the receive window
        p.c.input(now, &blind);
        assert_eq!(p.c.mib.OptsUnacceptable, 1);
        assert_eq!((p.c.mib.MPPrioRx, p.c.mib.MPFastcloseRx), (0, 0));
        assert!(!p.c.conn.subflows[0].peer_backup);
        assert!(p.c.conn.is_established() && p.c.conn.error().is_none());
        // the same options on an acceptable segment are seen
        p.c.input(now, &a);
        assert_eq!(p.c.mib.OptsUnacceptable, 1);
        assert_eq!((p.c.mib.MPPrioRx, p.c.mib.MPFastcloseRx), (1, 1));
        assert_eq!(p.c.conn.error(), Some(ConnError::Reset));
    }

    #[test]
    fn a_syn_ack_without_mp_capable_makes_both_ends_plain_tcp() {
        let mut p = Pair::handshake(ConnConfig::default(), ConnConfig::default(), |cl, q| {
            if !cl && q.has(tcp::flags::SYN) {
                no_options(q);
            }
            true
        });
        assert!(p.c.conn.is_established() && p.s.conn.is_established());
        assert_eq!(p.c.mib.MPCapableFallbackSYNACK, 1);
        assert_eq!(
            p.s.mib.MPCapableFallbackACK, 1,
            "no MP_CAPABLE on the third ACK"
        );
        assert_eq!(
            (p.c.conn.mode(), p.s.conn.mode()),
            (Mode::Fallback, Mode::Fallback)
        );
        assert!(p.c.events().contains(&ConnEvent::Fallback));
        assert!(p.s.events().contains(&ConnEvent::Fallback));
        assert!(!p.c.conn.checksum_enabled());
        // data goes as plain TCP, without any MPTCP option
        let now = p.now;
        assert_eq!(p.c.conn.send(b"plain tcp"), 9);
        let out = p.c.drain(now);
        assert!(!out.is_empty() && out.iter().all(|q| q.mptcp.is_empty()));
        for q in &out {
            p.s.input(now, q);
        }
        assert_eq!(read_all(&mut p.s), b"plain tcp");
        p.exchange();
        assert_eq!(
            p.c.conn.info().bytes_acked,
            9,
            "the subflow's ACK is the data ACK"
        );
    }

    #[test]
    fn a_third_ack_echoing_another_key_makes_the_server_fall_back() {
        let mut p = Pair::handshake(ConnConfig::default(), ConnConfig::default(), |cl, q| {
            if let Some(mut m) = q.mp_capable().filter(|m| cl && m.receiver_key.is_some()) {
                m.receiver_key = m.receiver_key.map(|k| k ^ 1);
                q.set_options(&[MptcpOption::MpCapable(m)]);
            }
            true
        });
        assert_eq!(p.s.mib.MPCapableBadKey, 1);
        assert_eq!(p.s.mib.MPCapableACKRX, 0);
        assert_eq!(p.s.conn.mode(), Mode::Fallback);
        assert_eq!(p.s.conn.remote_key(), 0, "the key is not taken");
        // the client believes in MPTCP until the server's data comes without a DSS: a
        // middlebox, so it falls back too, and the data is delivered as plain TCP
        assert_eq!(p.c.conn.mode(), Mode::Mptcp);
        p.c.events();
        assert_eq!(p.s.conn.send(b"hello"), 5);
        p.exchange();
        assert_eq!(p.c.mib.MPCapableFallbackACK, 1);
        assert_eq!(p.c.conn.mode(), Mode::Fallback);
        assert!(p.c.events().contains(&ConnEvent::Fallback));
        assert_eq!(read_all(&mut p.c), b"hello");
        assert_eq!(p.client_to_server(b"and back"), b"and back");
    }

    #[test]
    fn resetting_a_subflow_sends_mp_tcprst_and_its_data_goes_on_elsewhere() {
        let mut p = Pair::new(ConnConfig::default());
        assert_eq!(p.client_to_server(b"x"), b"x");
        let join = v4(CLIENT2, 41000);
        let (ci, _) = p.join(join, v4(SERVER, 80), false);
        p.c.conn.subflows[0].backup = true; // new data goes on the join
        let now = p.now;
        let data = pattern(3000);
        assert_eq!(p.c.conn.send(&data), 3000);
        let lost = p.c.drain(now);
        assert!(lost
            .iter()
            .filter(|q| !q.payload.is_empty())
            .all(|q| q.src == join));
        p.c.events();
        p.c.conn
            .reset_subflow_with(ci, rst_reason::TOO_MUCH_OUTSTANDING);
        assert_eq!(p.c.conn.reinject.iter().map(|r| r.1).sum::<u32>(), 3000);
        let out = p.c.drain(now);
        let rst = out
            .iter()
            .find(|q| q.src == join && q.has(tcp::flags::RST))
            .expect("a RST on the subflow");
        assert!(rst.options().contains(&MptcpOption::MpTcpRst {
            flags: 0,
            reason: rst_reason::TOO_MUCH_OUTSTANDING
        }));
        assert_eq!(p.c.mib.MPRstTx, 1);
        let id = p.c.conn.subflows[ci].id;
        assert!(p.c.events().contains(&ConnEvent::SubflowClosed {
            id,
            reason: CloseReason::Aborted
        }));
        // the data left again on the initial subflow
        let again: usize = out
            .iter()
            .filter(|q| q.src == v4(CLIENT, 40000))
            .map(|q| q.payload.len())
            .sum();
        assert_eq!(again, 3000);
        for q in &out {
            p.s.deliver(now, q);
        }
        p.advance(Duration::from_millis(500));
        assert_eq!(read_all(&mut p.s), data);
        assert!(p.c.conn.is_established());
    }
}
