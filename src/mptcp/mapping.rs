//! DSS mappings on receive: recording, checking and applying a mapping (`handle_rx_mapping`),
//! data outside any mapping, DSS checksums (held until verified, MP_FAIL on mismatch), and
//! whether a DATA_FIN is plausible.

use super::*;

impl Connection {
    /// Record a received mapping for delivery; false if it was refused (counted).
    pub(super) fn record_rx_map(&mut self, idx: usize, map: Map, mib: &mut Mib) -> bool {
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

    pub(super) fn handle_rx_mapping(
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
        if data_len == 0 && payload.is_empty() && self.mp_fail_dsn.is_none() {
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
                self.mp_fail_dsn = None;
                self.timers.clear(Timer::MpFail);
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
    pub(super) fn unmapped_data(&mut self, idx: usize, seg: &SegmentIn<'_>, mib: &mut Mib) {
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
    pub(super) fn checksum_presence_mismatch(&mut self, idx: usize, mib: &mut Mib) {
        mib.DSSCsumMismatch += 1;
        self.reset_subflow_with(idx, rst_reason::MPTCP_SPECIFIC);
    }

    /// A DSS checksum failed for the mapping at `dsn` on subflow `idx` (RFC 8684 3.7).
    /// `refetchable`: none of its bytes were taken at the subflow level, so the peer's TCP
    /// sends them again.
    pub(super) fn checksum_failed(
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
            if self.mp_fail_dsn.is_none() {
                let rto = self.subflows[idx].tcb.stats().rto;
                let wait = (rto * 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
                self.mp_fail_dsn = Some(dsn);
                self.timers.set(Timer::MpFail, now + wait);
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
    pub(super) fn verify_pending_checksums(&mut self, now: Instant, idx: usize, mib: &mut Mib) {
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
    pub(super) fn drop_pending_checksums(&mut self, idx: usize) {
        while let Some(p) = self.subflows[idx].csum_pending.pop_front() {
            self.rbuf.discard(p.map.dsn, u64::from(p.map.len));
        }
        self.update_csum_hold();
    }

    /// Hold the reassembly buffer at the first DSN of an unverified mapping (none: no hold).
    pub(super) fn update_csum_hold(&mut self) {
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
    pub(super) fn data_fin_plausible(&self, fin: u64) -> bool {
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
}
