//! DSS mappings on receive: recording, checking and applying a mapping (`handle_rx_mapping`),
//! data outside any mapping, DSS checksums (held until verified, MP_FAIL on mismatch), and
//! whether a DATA_FIN is plausible.

use super::*;

/// What the data receiver makes of one received mapping (like Linux's
/// `get_mapping_status`), from [`Connection::mapping_status`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MappingStatus {
    /// A good mapping: record `map`, update the peer's DATA_FIN by `fin`. `hold`: its
    /// checksum covers bytes still to come, so its data is held from the application and
    /// the DATA_ACK until they are all stored and verified.
    Ok {
        map: Map,
        fin: FinUpdate,
        hold: Option<u16>,
    },
    /// A DATA_FIN alone (data-level length 1, no subflow bytes).
    DataFin { fin: FinUpdate },
    /// Data-level length 0 on a segment without data while no MP_FAIL of ours waits for an
    /// answer: an ACK, not an infinite mapping. Nothing to do.
    Empty,
    /// An infinite mapping (RFC 8684 3.7): the peer fell back to TCP. `linear`: it puts the
    /// subflow's bytes at the DSNs they would have had, so the stream goes on as plain TCP.
    Infinite { linear: bool },
    /// A checksum although none was negotiated, or none although one was (RFC 8684 3.3):
    /// the subflow is reset.
    ChecksumPresence,
    /// A DATA_FIN in a mapping of data-level length 0.
    Invalid,
    /// A DATA_FIN that does not fit what is known of the stream (below data received,
    /// outside the window, or a second end): the whole mapping is ignored.
    DataFinImplausible,
    /// Data past the end of a stream the peer has finished: ignored.
    BeyondEnd,
    /// The checksum does not match the data (all in this segment): MP_FAIL.
    BadChecksum { dsn: u64 },
    /// The mapping's checksum must be held, but the subflow holds as many as it can.
    HoldFull,
    /// Its bytes are mapped to other DSNs by a mapping already recorded (from recording).
    Conflict,
    /// The subflow's table of mappings is full (from recording).
    TableFull,
}

impl MappingStatus {
    /// Whether the mapping maps data, so it sets the size of our DATA_ACK.
    fn sizes_data_ack(&self) -> bool {
        !matches!(
            self,
            MappingStatus::ChecksumPresence
                | MappingStatus::Invalid
                | MappingStatus::DataFinImplausible
                | MappingStatus::DataFin { .. }
                | MappingStatus::Empty
        )
    }
}

/// What a mapping does to the DSN of the peer's DATA_FIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FinUpdate {
    /// Nothing (no DATA_FIN, or the one recorded again).
    Keep,
    /// The peer's DATA_FIN is at this DSN (the first one seen).
    Set(u64),
    /// The peer moved its DATA_FIN (counted as DSSNotMatching; the latest wins).
    Replace(u64),
    /// The stream goes on past a DATA_FIN not reached yet: that one was wrong, forget it.
    Forget,
}

impl Connection {
    /// Record a received mapping for delivery; `Conflict` and `Full` refuse it (counted).
    pub(super) fn record_rx_map(&mut self, idx: usize, map: Map, mib: &mut Mib) -> MapInsert {
        if idx != 0 || map.dsn != self.remote_idsn.wrapping_add(1).wrapping_add(map.off) {
            self.rx_linear = false;
        }
        let r = self.subflows[idx].rx_maps.insert_rx(map);
        match r {
            MapInsert::Ok => {}
            MapInsert::Conflict => mib.DSSNotMatching += 1,
            MapInsert::Full => mib.DSSMapTableFull += 1,
        }
        r
    }

    /// Check a received mapping and act on the answer: [`Self::mapping_status`] decides,
    /// this applies (records the mapping, the peer's DATA_FIN, falls back, resets, counts).
    /// Returns the status, after recording: a mapping the table refused is `Conflict` or
    /// `TableFull`.
    pub(super) fn handle_rx_mapping(
        &mut self,
        now: Instant,
        idx: usize,
        m: &DssMapping,
        fin: bool,
        payload: &[u8],
        mib: &mut Mib,
    ) -> MappingStatus {
        let status = self.mapping_status(idx, m, fin, payload);
        if fin && status != MappingStatus::ChecksumPresence {
            mib.DataFinRx += 1;
        }
        if status.sizes_data_ack() {
            // our DATA_ACK takes the size of the peer's latest mapping with data (Linux's
            // rule: 4 bytes until a 64-bit mapping arrives, which also leaves option room
            // for SACK blocks; a bare DATA_FIN does not change it)
            self.ack64 = m.dsn64;
        }
        match status {
            MappingStatus::ChecksumPresence => self.checksum_presence_mismatch(idx, mib),
            MappingStatus::Invalid => mib.DSSInvalidMapping += 1,
            MappingStatus::DataFinImplausible => mib.DataFinInvalid += 1,
            MappingStatus::Empty => {}
            MappingStatus::DataFin { fin } => self.apply_fin(fin, mib),
            MappingStatus::Infinite { linear } => {
                mib.InfiniteMapRx += 1;
                if linear && self.can_fall_back(idx) {
                    self.mp_fail_dsn = None;
                    self.timers.clear(Timer::MpFail);
                    self.enter_fallback(idx);
                } else {
                    mib.FallbackFailed += 1;
                    self.reset_subflow(idx);
                }
            }
            MappingStatus::BeyondEnd => mib.DSSNotMatching += 1,
            MappingStatus::BadChecksum { dsn } => self.checksum_failed(now, idx, dsn, true, mib),
            MappingStatus::HoldFull => mib.DSSMapTableFull += 1,
            MappingStatus::Ok { map, fin, hold } => {
                self.apply_fin(fin, mib);
                match self.record_rx_map(idx, map, mib) {
                    MapInsert::Ok => {}
                    MapInsert::Conflict => return MappingStatus::Conflict,
                    MapInsert::Full => return MappingStatus::TableFull,
                }
                if let Some(checksum) = hold {
                    let pending = &mut self.subflows[idx].csum_pending;
                    let pos = pending.partition_point(|p| p.map.off < map.off);
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
                }
            }
            MappingStatus::Conflict | MappingStatus::TableFull => {}
        }
        status
    }

    fn apply_fin(&mut self, fin: FinUpdate, mib: &mut Mib) {
        match fin {
            FinUpdate::Keep => {}
            FinUpdate::Set(f) => self.peer_fin_dsn = Some(f),
            FinUpdate::Replace(f) => {
                mib.DSSNotMatching += 1;
                self.peer_fin_dsn = Some(f);
            }
            FinUpdate::Forget => {
                mib.DSSNotMatching += 1;
                self.peer_fin_dsn = None;
            }
        }
    }

    /// What a mapping received on subflow `idx` is (Linux's `get_mapping_status`), decided
    /// in one place and without changing anything. `m` is the DSS mapping (or MP_CAPABLE's
    /// implicit one), `fin` its DATA_FIN flag, `payload` the segment's data.
    pub(super) fn mapping_status(
        &self,
        idx: usize,
        m: &DssMapping,
        fin: bool,
        payload: &[u8],
    ) -> MappingStatus {
        if m.checksum.is_some() != self.checksum && self.mode == Mode::Mptcp {
            return MappingStatus::ChecksumPresence;
        }
        let dsn = if m.dsn64 {
            m.dsn
        } else {
            dsn::expand32(m.dsn as u32, self.rbuf.contiguous_end())
        };
        let mut data_len = u64::from(m.data_len);
        let mut fin_update = FinUpdate::Keep;
        if fin {
            if data_len == 0 {
                return MappingStatus::Invalid;
            }
            // the DATA_FIN occupies the last DSN of the mapping
            let fin_dsn = dsn.wrapping_add(data_len - 1);
            // a repeat of the recorded one (a peer repeats it on every ACK until acknowledged)
            // stays plausible: only data mapped past it undoes it, and that forgets it
            if self.peer_fin_dsn != Some(fin_dsn) && !self.data_fin_plausible(fin_dsn) {
                // the whole mapping is ignored: a genuine peer sends it again
                return MappingStatus::DataFinImplausible;
            }
            fin_update = match self.peer_fin_dsn {
                Some(f) if f == fin_dsn => FinUpdate::Keep,
                // as Linux: the peer contradicts itself; the most recent position wins
                // (the earlier one was not reached, or plausibility would fail)
                Some(_) => FinUpdate::Replace(fin_dsn),
                None => FinUpdate::Set(fin_dsn),
            };
            data_len -= 1;
            if data_len == 0 {
                // a bare DATA_FIN carries no subflow bytes (ssn 0)
                return MappingStatus::DataFin { fin: fin_update };
            }
        }
        if data_len == 0 && payload.is_empty() && self.mp_fail_dsn.is_none() {
            // as Linux, which looks at a mapping only with the data it maps: a data-level
            // length of 0 on a segment without data, when we sent no MP_FAIL, is no
            // infinite mapping (packetdrill's scripts acknowledge with `dll=0` mappings)
            return MappingStatus::Empty;
        }
        let sf = &self.subflows[idx];
        let off = dsn::expand32(m.ssn.wrapping_sub(1), sf.tcb.rcv_nxt_offset());
        if data_len == 0 {
            // infinite mapping (data_len 0, RFC 8684 3.7): the peer fell back to TCP after
            // our MP_FAIL; from here the subflow's bytes are the data stream, 1:1
            let linear = dsn == self.remote_idsn.wrapping_add(1).wrapping_add(off);
            return MappingStatus::Infinite { linear };
        }
        if let Some(f) = self.peer_fin_dsn {
            if dsn::diff(dsn.wrapping_add(data_len), f) > 0 {
                if self.peer_closed {
                    return MappingStatus::BeyondEnd; // nothing exists past a finished stream
                }
                // the stream goes on past a DATA_FIN not reached yet: that DATA_FIN was
                // wrong (forged, or the peer contradicts itself); forget it, or the data
                // beyond it would be refused until a window deadlock
                fin_update = FinUpdate::Forget;
            }
        }
        let len = data_len.min(u64::from(u32::MAX)) as u32;
        let map = Map { off, dsn, len };
        // DSS checksum (RFC 8684 3.3.1): a mapping whose data is all in this segment is
        // verified now; one spanning several segments (a TSO sender) once all of its bytes
        // are stored, and its data is held back from the application and the DATA_ACK until
        // then (`verify_pending_checksums`).
        let mut hold = None;
        if self.checksum {
            if data_len as usize == payload.len() {
                let ok = m.checksum.is_some_and(|c| {
                    crate::wire::mptcp::dss_checksum_ok(dsn, m.ssn, m.data_len, c, payload)
                });
                if !ok {
                    // a corrupted mapping is not recorded: its data is not acknowledged, so
                    // the peer sends it again
                    return MappingStatus::BadChecksum { dsn };
                }
            } else {
                let known = sf.csum_pending.iter().any(|p| p.map.off == off);
                if !known && map.end() > sf.tcb.rcv_nxt_offset() {
                    if sf.csum_pending.len() >= subflow::MAX_MAPS {
                        // not recorded: its data is not taken, so the peer sends it again
                        return MappingStatus::HoldFull;
                    }
                    // present: a mapping without one is `ChecksumPresence` above
                    hold = m.checksum;
                }
            }
        }
        MappingStatus::Ok {
            map,
            fin: fin_update,
            hold,
        }
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

#[cfg(test)]
mod tests {
    use super::super::testkit::{mapping, Pair};
    use super::*;

    fn pair(checksum: bool) -> (Pair, u64) {
        let p = Pair::new(ConnConfig {
            checksum,
            ..ConnConfig::default()
        });
        // the first DSN of the client's stream, as the server knows it
        let first = p.s.conn.remote_idsn.wrapping_add(1);
        assert_eq!(p.s.conn.rbuf.contiguous_end(), first);
        (p, first)
    }

    #[test]
    fn a_mapping_of_the_data_in_its_segment_is_ok_and_recorded() {
        let (mut p, first) = pair(false);
        let m = mapping(first, 1, 100);
        let want = MappingStatus::Ok {
            map: Map {
                off: 0,
                dsn: first,
                len: 100,
            },
            fin: FinUpdate::Keep,
            hold: None,
        };
        assert_eq!(p.s.conn.mapping_status(0, &m, false, &[7; 100]), want);
        let now = p.now;
        let s = &mut p.s;
        assert_eq!(
            s.conn
                .handle_rx_mapping(now, 0, &m, false, &[7; 100], &mut s.mib),
            want
        );
        assert_eq!(s.conn.subflows[0].rx_maps.lookup(0), Some((first, 100)));
        assert!(s.conn.ack64, "a 64-bit mapping makes our DATA_ACK 64-bit");
    }

    #[test]
    fn a_32_bit_dsn_is_expanded_around_the_receive_point() {
        let (p, first) = pair(false);
        let mut m = mapping(u64::from(first.wrapping_add(5) as u32), 6, 10);
        m.dsn64 = false;
        match p.s.conn.mapping_status(0, &m, false, &[0; 10]) {
            MappingStatus::Ok { map, .. } => {
                assert_eq!(map.dsn, first + 5);
                assert_eq!(map.off, 5);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_checksum_not_negotiated_resets_the_subflow() {
        let (mut p, first) = pair(false);
        let mut m = mapping(first, 1, 4);
        m.checksum = Some(0x1234);
        let now = p.now;
        let s = &mut p.s;
        assert_eq!(
            s.conn
                .handle_rx_mapping(now, 0, &m, true, b"abcd", &mut s.mib),
            MappingStatus::ChecksumPresence
        );
        assert_eq!(s.mib.DSSCsumMismatch, 1);
        assert_eq!(
            s.mib.DataFinRx, 0,
            "nothing else of the mapping is looked at"
        );
        assert!(s.conn.subflows[0].rx_maps.lookup(0).is_none());
    }

    #[test]
    fn data_fin_checks() {
        let (mut p, first) = pair(false);
        let now = p.now;
        let window = u64::from(p.s.conn.rbuf.window());
        let s = &mut p.s;
        // a DATA_FIN needs a data-level length
        let st = s
            .conn
            .handle_rx_mapping(now, 0, &mapping(first, 0, 0), true, &[], &mut s.mib);
        assert_eq!(st, MappingStatus::Invalid);
        assert_eq!(s.mib.DSSInvalidMapping, 1);
        // past the window: implausible, nothing recorded
        let far = mapping(first + window + 10, 0, 1);
        let st = s
            .conn
            .handle_rx_mapping(now, 0, &far, true, &[], &mut s.mib);
        assert_eq!(st, MappingStatus::DataFinImplausible);
        assert_eq!((s.mib.DataFinInvalid, s.conn.peer_fin_dsn), (1, None));
        // a bare DATA_FIN 50 bytes ahead: recorded
        let fin = mapping(first + 50, 0, 1);
        let st = s
            .conn
            .handle_rx_mapping(now, 0, &fin, true, &[], &mut s.mib);
        assert_eq!(
            st,
            MappingStatus::DataFin {
                fin: FinUpdate::Set(first + 50)
            }
        );
        assert_eq!(s.conn.peer_fin_dsn, Some(first + 50));
        // repeated: kept as it is
        assert_eq!(
            s.conn.mapping_status(0, &fin, true, &[]),
            MappingStatus::DataFin {
                fin: FinUpdate::Keep
            }
        );
        // moved: replaced, counted
        let moved = mapping(first + 40, 0, 1);
        let st = s
            .conn
            .handle_rx_mapping(now, 0, &moved, true, &[], &mut s.mib);
        assert_eq!(
            st,
            MappingStatus::DataFin {
                fin: FinUpdate::Replace(first + 40)
            }
        );
        assert_eq!(
            (s.mib.DSSNotMatching, s.conn.peer_fin_dsn),
            (1, Some(first + 40))
        );
        // data mapped past a DATA_FIN not reached yet: that DATA_FIN was wrong
        let data = mapping(first, 1, 100);
        let st = s
            .conn
            .handle_rx_mapping(now, 0, &data, false, &[1; 100], &mut s.mib);
        assert!(
            matches!(
                st,
                MappingStatus::Ok {
                    fin: FinUpdate::Forget,
                    ..
                }
            ),
            "{st:?}"
        );
        assert_eq!((s.mib.DSSNotMatching, s.conn.peer_fin_dsn), (2, None));
        // a DATA_FIN inside data already mapped is implausible
        let inside = mapping(first + 10, 0, 1);
        assert_eq!(
            s.conn.mapping_status(0, &inside, true, &[]),
            MappingStatus::DataFinImplausible
        );
    }

    #[test]
    fn data_fin_below_received_data_is_implausible_and_data_past_a_finished_stream_is_refused() {
        let (mut p, first) = pair(false);
        let got = p.client_to_server(&[9; 1000]);
        assert_eq!(got, vec![9; 1000]);
        assert_eq!(
            p.s.conn
                .mapping_status(0, &mapping(first + 10, 0, 1), true, &[]),
            MappingStatus::DataFinImplausible
        );
        p.c.conn.shutdown(p.now);
        p.exchange();
        assert!(p.s.conn.peer_closed);
        assert_eq!(p.s.conn.peer_fin_dsn, Some(first + 1000));
        let more = mapping(first + 1000, 1001, 10);
        let now = p.now;
        let s = &mut p.s;
        let before = s.mib.DSSNotMatching;
        let st = s
            .conn
            .handle_rx_mapping(now, 0, &more, false, &[0; 10], &mut s.mib);
        assert_eq!(st, MappingStatus::BeyondEnd);
        assert_eq!(s.mib.DSSNotMatching, before + 1);
        // the DATA_FIN we have, sent again, is still fine
        let again = mapping(first + 1000, 0, 1);
        assert_eq!(
            s.conn.mapping_status(0, &again, true, &[]),
            MappingStatus::DataFin {
                fin: FinUpdate::Keep
            }
        );
    }

    #[test]
    fn a_zero_length_mapping_is_an_ack_without_data_and_an_infinite_mapping_with_data() {
        let (p, first) = pair(false);
        let m = mapping(first, 1, 0);
        assert_eq!(
            p.s.conn.mapping_status(0, &m, false, &[]),
            MappingStatus::Empty
        );
        assert_eq!(
            p.s.conn.mapping_status(0, &m, false, &[1; 10]),
            MappingStatus::Infinite { linear: true }
        );
        // not where the subflow's bytes would be in the stream: no fallback possible
        let off = mapping(first + 3, 1, 0);
        assert_eq!(
            p.s.conn.mapping_status(0, &off, false, &[1; 10]),
            MappingStatus::Infinite { linear: false }
        );
    }

    #[test]
    fn mappings_that_contradict_a_recorded_one_are_refused() {
        let (mut p, first) = pair(false);
        let now = p.now;
        let s = &mut p.s;
        let a = mapping(first, 1, 100);
        assert!(matches!(
            s.conn
                .handle_rx_mapping(now, 0, &a, false, &[0; 100], &mut s.mib),
            MappingStatus::Ok { .. }
        ));
        // the same subflow bytes at other DSNs
        let b = mapping(first + 7, 1, 100);
        let st = s
            .conn
            .handle_rx_mapping(now, 0, &b, false, &[0; 100], &mut s.mib);
        assert_eq!(st, MappingStatus::Conflict);
        assert_eq!(s.mib.DSSNotMatching, 1);
        assert_eq!(s.conn.subflows[0].rx_maps.lookup(0), Some((first, 100)));
    }

    #[test]
    fn checksums_are_verified_now_or_held_until_the_mapping_is_complete() {
        let (mut p, first) = pair(true);
        assert!(p.s.conn.checksum);
        let data = [5u8; 100];
        let c = crate::wire::mptcp::dss_checksum(first, 1, 100, &data);
        // no checksum although negotiated
        assert_eq!(
            p.s.conn
                .mapping_status(0, &mapping(first, 1, 100), false, &data),
            MappingStatus::ChecksumPresence
        );
        let mut good = mapping(first, 1, 100);
        good.checksum = Some(c);
        assert!(matches!(
            p.s.conn.mapping_status(0, &good, false, &data),
            MappingStatus::Ok { hold: None, .. }
        ));
        let mut bad = good;
        bad.checksum = Some(c ^ 1);
        assert_eq!(
            p.s.conn.mapping_status(0, &bad, false, &data),
            MappingStatus::BadChecksum { dsn: first }
        );
        // a mapping whose bytes are not all in this segment: held with its checksum
        let now = p.now;
        let s = &mut p.s;
        let st = s
            .conn
            .handle_rx_mapping(now, 0, &good, false, &data[..60], &mut s.mib);
        assert!(
            matches!(st, MappingStatus::Ok { hold: Some(x), .. } if x == c),
            "{st:?}"
        );
        assert_eq!(s.conn.subflows[0].csum_pending.len(), 1);
        // the same mapping again on the segment with the rest: known, not held twice
        let st = s
            .conn
            .handle_rx_mapping(now, 0, &good, false, &data[60..], &mut s.mib);
        assert!(matches!(st, MappingStatus::Ok { hold: None, .. }), "{st:?}");
        assert_eq!(s.conn.subflows[0].csum_pending.len(), 1);
    }

    #[test]
    fn a_bad_checksum_on_the_only_subflow_asks_for_fallback_with_mp_fail() {
        let (mut p, first) = pair(true);
        let data = [5u8; 100];
        let mut bad = mapping(first, 1, 100);
        bad.checksum = Some(crate::wire::mptcp::dss_checksum(first, 1, 100, &data) ^ 0xff);
        let now = p.now;
        let s = &mut p.s;
        let st = s
            .conn
            .handle_rx_mapping(now, 0, &bad, false, &data, &mut s.mib);
        assert_eq!(st, MappingStatus::BadChecksum { dsn: first });
        assert_eq!((s.mib.DataCsumErr, s.mib.MPFailTx), (1, 1));
        assert_eq!(
            s.conn.mp_fail_dsn,
            Some(first),
            "MP_FAIL rides on the next ACKs"
        );
        assert!(s.conn.timers.get(Timer::MpFail).is_some());
        assert!(
            s.conn.subflows[0].rx_maps.lookup(0).is_none(),
            "not recorded"
        );
    }

    #[test]
    fn the_implicit_mapping_of_mp_capable_with_data_delivers_the_first_bytes() {
        let (mut p, first) = pair(true);
        assert_eq!(p.c.conn.send(b"hello, multipath"), 16);
        let sent = p.c.drain(p.now);
        let data = sent
            .iter()
            .find(|x| !x.payload.is_empty())
            .expect("a data segment");
        let implicit = data.options().iter().any(|o| {
            matches!(o, MptcpOption::MpCapable(m) if m.data_len == Some(16) && m.checksum.is_some())
        });
        assert!(implicit, "the first data goes with MP_CAPABLE: {data:?}");
        for x in &sent {
            p.s.input(p.now, x);
        }
        let got = p.client_to_server(b"");
        assert_eq!(got, b"hello, multipath");
        assert_eq!(p.s.conn.rbuf.read_offset(), first + 16);
        assert_eq!(p.s.mib.DataCsumErr, 0);
        assert!(p.s.conn.ack64, "the implicit mapping is a 64-bit one");
    }
}
