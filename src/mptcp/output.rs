//! Segment output: `poll_transmit`, the MPTCP options of each segment (`options_for`),
//! mapping spans and checksums of what is sent, and emission.

use super::*;

impl Connection {
    /// Write the next packet to send into `buf`; returns its length.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8], mib: &mut Mib) -> Option<usize> {
        self.poll_transmit_offload(now, buf, &TxOffload::default(), mib)
            .map(|p| p.len)
    }

    /// [`Self::poll_transmit`] for a device that splits super-segments and/or completes
    /// checksums (`off`); the result says what the device must do with the packet.
    pub fn poll_transmit_offload(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        off: &TxOffload,
        mib: &mut Mib,
    ) -> Option<TxPacket> {
        if self.mem_dirty {
            self.mem_dirty = false;
            self.note_activity(now);
        }
        self.schedule(now);
        mib.Reinjections += core::mem::take(&mut self.mib_reinjections);
        let n = self.subflows.len();
        for k in 0..n {
            let i = (self.tx_cursor + k) % n;
            if self.subflows[i].held.is_some() && !self.release_held(now, i, mib) {
                continue;
            }
            let (extra, extra_ack) = self.option_budget(i);
            let tx = TxParams {
                extra_option_len: extra,
                extra_option_len_ack: extra_ack,
                rcv_space: self.rbuf.window(),
                // the receive buffer's right edge (read point + capacity) never moves left
                data_level_window: self.mode == Mode::Mptcp,
                // a super-segment's DSS mapping covers its whole payload: at most 64 KiB
                tso_bytes: off.tso_bytes.min(u32::from(u16::MAX)),
            };
            let Some(seg) = self.subflows[i].tcb.poll_transmit(now, &tx) else {
                continue;
            };
            self.tx_cursor = (i + 1) % n;
            match self.emit(now, i, &seg, buf, off.csum_partial, mib) {
                Ok(p) => {
                    if core::mem::take(&mut self.infinite_map_sent) {
                        self.enter_fallback(i);
                    }
                    // one signal per pure ACK: if this one carried a signal and more wait
                    // (several ADD_ADDRs queued at once), ask for the next ACK now rather
                    // than with unrelated traffic (only then: an ACK that cannot carry a
                    // signal, e.g. MP_CAPABLE's, must not ask for another)
                    if self.mp.take_signal_sent() && self.signal_pending() {
                        if let Some(b) = self.best_subflow() {
                            self.subflows[b].tcb.request_ack();
                        }
                    }
                    self.process_tcb_events(now, mib);
                    return Some(p);
                }
                Err(e) => {
                    tracing::warn!("could not emit a segment: {e}");
                    mib.OutDrops += 1;
                }
            }
        }
        self.process_tcb_events(now, mib);
        None
    }

    /// The mapping a data segment of subflow `i` declares: (first subflow offset, length,
    /// checksum). A first transmission maps its own payload (the checksum is computed when
    /// the payload is written: `None`). A retransmission maps the whole segment its bytes
    /// first went in (the engine never lets it span two), with the checksum first sent;
    /// without that checksum on record it maps its own payload instead (counted).
    pub(super) fn tx_mapping_span(&self, i: usize, seg: &SegmentOut) -> (u64, u64, Option<u16>) {
        let own = (seg.offset, u64::from(seg.payload_len), None);
        let sf = &self.subflows[i];
        let Some((s, e)) = sf.tcb.sent_span(seg.offset) else {
            return own;
        };
        if s > seg.offset
            || e < seg.offset + u64::from(seg.payload_len)
            || (s, e) == (seg.offset, seg.offset + u64::from(seg.payload_len))
            || e - s > u64::from(u16::MAX)
        {
            return own;
        }
        if !self.checksum {
            return (s, e - s, None);
        }
        match sf.sent_csums.iter().rev().find(|c| c.0 == s) {
            Some(&(_, c)) => (s, e - s, Some(c)),
            None => own,
        }
    }

    /// With DSS checksums: remember the checksum of a data segment sent for the first time
    /// (its mapping is its payload), and forget those of acknowledged segments.
    pub(super) fn record_sent_csum(&mut self, i: usize, seg: &SegmentOut, opts: &OptBuf<'_>) {
        let sf = &mut self.subflows[i];
        let first = sf.tcb.sent_span(seg.offset)
            == Some((seg.offset, seg.offset + u64::from(seg.payload_len)));
        if first {
            let c = opts.iter().find_map(|o| match o {
                MptcpOption::Dss(d) => d.mapping.and_then(|m| m.checksum),
                MptcpOption::MpCapable(c) => c.checksum,
                _ => None,
            });
            if let Some(c) = c {
                if sf.sent_csums.back().is_none_or(|b| b.0 < seg.offset) {
                    sf.sent_csums.push_back((seg.offset, c));
                }
            }
        }
        let una = sf.tcb.snd_una_offset();
        let keep_from = sf.tcb.sent_span(una).map_or(una, |(s, _)| s);
        while sf.sent_csums.front().is_some_and(|f| f.0 < keep_from) {
            sf.sent_csums.pop_front();
        }
    }

    /// The DSN of our DATA_FIN when a segment should carry it now: queued, every byte before
    /// it sent, not yet acknowledged.
    pub(super) fn due_data_fin(&self) -> Option<u64> {
        self.fin_dsn
            .filter(|&f| !self.fin_acked && self.snd_nxt >= f)
    }

    /// Bytes of MPTCP options we may add to the next segment of subflow `i`: (with data,
    /// without data). Segment sizes are computed from these, so the data budget must cover
    /// the largest option a data segment can get; a pure ACK that gets more than its budget
    /// (a signal, a DATA_FIN) loses SACK blocks in `emit_segment` instead.
    pub(super) fn option_budget(&self, i: usize) -> (usize, usize) {
        match self.mode {
            Mode::Fallback => (0, 0),
            Mode::Handshake => (24, 24),
            Mode::Mptcp => {
                let sf = &self.subflows[i];
                let csum = if self.checksum { 2 } else { 0 };
                // data: DSS with 64-bit DATA_ACK and a 64-bit mapping (+ checksum), or the
                // client's first data packet with MP_CAPABLE (22/24)
                let data = (4 + 8 + 14 + csum).max(24);
                if (self.role == Role::Client && i == 0 && !self.fully_established)
                    || matches!(sf.join, JoinState::AckPending { .. })
                {
                    // MP_CAPABLE third ACK (20), MP_JOIN third ACK (24)
                    (data, 24)
                } else {
                    // pure ACK: DSS with the DATA_ACK alone
                    (data, 4 + 8)
                }
            }
        }
    }

    /// The MPTCP options for an outgoing segment of subflow `i`.
    pub(super) fn options_for(
        &mut self,
        now: Instant,
        i: usize,
        seg: &SegmentOut,
        out: &mut OptBuf,
        mib: &mut Mib,
    ) {
        let syn = seg.flags & tcp::flags::SYN != 0;
        let ack = seg.flags & tcp::flags::ACK != 0;
        let rst = seg.flags & tcp::flags::RST != 0;
        let cflags = cap_flags::H
            | if self.checksum || self.cfg.checksum {
                cap_flags::A
            } else {
                0
            };
        if rst {
            if self.mode == Mode::Mptcp || self.subflows[i].join != JoinState::Initial {
                let reason = self.subflows[i]
                    .rst_reason
                    .unwrap_or(rst_reason::UNSPECIFIED);
                out.push(MptcpOption::MpTcpRst { flags: 0, reason });
                if let Some(dsn) = self.subflows[i].mp_fail {
                    out.push(MptcpOption::MpFail { dsn });
                }
                if self.mp.fastclose && self.mode == Mode::Mptcp {
                    out.push(MptcpOption::MpFastclose {
                        key: self.remote_key,
                    });
                    mib.MPFastcloseTx += 1;
                }
            }
            return;
        }
        if self.mode == Mode::Fallback {
            return;
        }
        if self.subflows[i].join != JoinState::Initial {
            if let Some(j) = self.join_option(i, syn, ack) {
                out.push(j);
                return;
            }
            if syn {
                return;
            }
        } else {
            let sf = &self.subflows[i];
            if syn && !ack {
                out.push(MptcpOption::MpCapable(MpCapable {
                    version: VERSION,
                    flags: cflags,
                    sender_key: None,
                    receiver_key: None,
                    data_len: None,
                    checksum: None,
                }));
                return;
            }
            if syn && ack {
                out.push(MptcpOption::MpCapable(MpCapable {
                    version: VERSION,
                    flags: cflags,
                    sender_key: Some(self.local_key),
                    receiver_key: None,
                    data_len: None,
                    checksum: None,
                }));
                return;
            }
            if self.mode != Mode::Mptcp {
                return;
            }
            // client: MP_CAPABLE on the third ACK and on the first data packet (RFC 8684 3.1).
            // Its mapping is implicit: the payload is the data stream's first bytes. Data
            // that starts elsewhere (the first DSNs went to another subflow) needs a DSS.
            let idsn1 = self.local_idsn.wrapping_add(1);
            // a bare DATA_FIN due (the application closed before the server's first DSS)
            // leaves in a DSS, as Linux sends it, not in another MP_CAPABLE
            let data_fin_due = seg.payload_len == 0 && self.due_data_fin().is_some();
            if self.role == Role::Client
                && !self.fully_established
                && !data_fin_due
                && seg.seq == sf.tcb.iss().wrapping_add(1)
                && (seg.payload_len == 0
                    || sf
                        .tx_maps
                        .lookup(seg.offset)
                        .is_some_and(|(d, _)| d == idsn1))
            {
                // a retransmission declares the mapping of the segment first sent
                let (_, span_len, given) = self.tx_mapping_span(i, seg);
                let data_len =
                    (seg.payload_len > 0).then_some(span_len.min(u64::from(u16::MAX)) as u16);
                // the checksum value is computed by emit_segment once the payload is written
                // (or is the one first sent, `given`)
                let checksum = data_len
                    .filter(|_| self.checksum)
                    .map(|_| given.unwrap_or(0));
                out.csum_given = given.is_some();
                out.push(MptcpOption::MpCapable(MpCapable {
                    version: VERSION,
                    flags: cflags,
                    sender_key: Some(self.local_key),
                    receiver_key: Some(self.remote_key),
                    data_len,
                    checksum,
                }));
                out.mpc_dsn = idsn1;
                return;
            }
        }
        if self.mode != Mode::Mptcp {
            return;
        }
        // Signals ride on pure ACKs, with a DSS carrying the DATA_ACK beside them when both
        // fit (as Linux sends them; its peer also learns from that DSS that we have its key).
        // An ADD_ADDR with a port or an IPv6 address goes alone, as Linux's does, and so does
        // any signal when a DATA_FIN is due (they would not fit together).
        if seg.payload_len == 0 {
            if let Some(sig) = self.take_signal(now, mib) {
                let small = match &sig {
                    MptcpOption::AddAddr(a) => a.addr.is_ipv4() && a.port.is_none(),
                    MptcpOption::RemoveAddr { .. } | MptcpOption::MpPrio { .. } => true,
                    _ => false,
                };
                out.push(sig);
                if !small || self.due_data_fin().is_some() {
                    return;
                }
            }
        }
        // DSS: DATA_ACK always, a mapping when carrying data, DATA_FIN when due.
        let sf = &self.subflows[i];
        let mut dss = Dss {
            data_ack: Some(DataAck {
                // a 4-byte DATA_ACK carries the low 32 bits (RFC 8684 3.3.1)
                ack: if self.ack64 {
                    self.data_ack()
                } else {
                    self.data_ack() & 0xffff_ffff
                },
                ack64: self.ack64,
            }),
            mapping: None,
            data_fin: false,
        };
        if seg.payload_len > 0 && self.infinite_map_pending {
            // RFC 8684 3.7: the infinite mapping, on the first data segment after the
            // peer's MP_FAIL; the connection is plain TCP once it is out
            dss.mapping = Some(DssMapping {
                dsn: self.local_idsn.wrapping_add(1).wrapping_add(seg.offset),
                dsn64: true,
                ssn: (seg.offset as u32).wrapping_add(1),
                data_len: 0,
                checksum: self.checksum.then_some(0),
            });
            self.infinite_map_pending = false;
            self.infinite_map_sent = true;
            mib.InfiniteMapTx += 1;
        } else if seg.payload_len > 0 {
            // a retransmission declares the mapping its bytes first went with: Linux refuses
            // a different one for bytes inside the mapping it is consuming (DSSNotMatching)
            // and falls back to TCP
            let (m_off, m_len, given) = self.tx_mapping_span(i, seg);
            let sf = &self.subflows[i];
            if let Some((dsn, avail)) = sf.tx_maps.lookup(m_off) {
                // the engine never lets a segment cross a mapping boundary
                let len = m_len.min(avail).min(u64::from(u16::MAX)) as u16;
                dss.mapping = Some(DssMapping {
                    dsn,
                    dsn64: true,
                    ssn: (m_off as u32).wrapping_add(1),
                    data_len: len,
                    checksum: self.checksum.then_some(given.unwrap_or(0)),
                });
                out.csum_given = given.is_some();
                if m_off + u64::from(len) < seg.offset + u64::from(seg.payload_len) {
                    mib.DSSTxPartialMapping += 1;
                }
            } else {
                mib.DSSTxPartialMapping += 1;
            }
        } else if let Some(f) = self.due_data_fin() {
            dss.data_fin = true;
            dss.mapping = Some(DssMapping {
                dsn: f,
                dsn64: true,
                ssn: 0,
                data_len: 1,
                checksum: self.checksum.then_some(0),
            });
        }
        if let Some(a) = dss.data_ack {
            let edge = a
                .ack
                .saturating_add(u64::from(seg.window) << sf.tcb.rcv_wscale());
            self.rcv_adv_edge = self.rcv_adv_edge.max(edge);
        }
        out.push(MptcpOption::Dss(dss));
        let bare = seg.payload_len == 0 && dss.mapping.is_none();
        // beside timestamps (12 bytes) at most 28 bytes of MPTCP options fit
        let room = |out: &OptBuf, extra: usize| out.wire_len() + extra <= 28;
        if let Some(dsn) = self.mp_fail_dsn.filter(|_| bare && room(out, 12)) {
            // on pure ACKs, where it fits beside the DSS (as Linux sends it)
            out.push(MptcpOption::MpFail { dsn });
        }
        let sf = &self.subflows[i];
        if sf.prio_pending && seg.payload_len == 0 {
            if room(out, 4) {
                let backup = sf.backup;
                out.push(MptcpOption::MpPrio {
                    backup,
                    addr_id: None,
                });
                self.subflows[i].prio_pending = false;
                mib.MPPrioTx += 1;
            } else {
                // a signal took the room: on the next ACK
                self.subflows[i].tcb.request_ack();
            }
        }
    }

    pub(super) fn emit(
        &mut self,
        now: Instant,
        i: usize,
        seg: &SegmentOut,
        buf: &mut [u8],
        csum_partial: bool,
        mib: &mut Mib,
    ) -> Result<TxPacket, crate::wire::WireError> {
        let mut opts = OptBuf::default();
        self.options_for(now, i, seg, &mut opts, mib);
        if seg.flags & tcp::flags::RST != 0 && !opts.is_empty() {
            mib.MPRstTx += 1;
        }
        if seg.flags & tcp::flags::SYN != 0 && seg.flags & tcp::flags::ACK == 0 && !opts.is_empty()
        {
            mib.MPCapableSYNTX += 1;
        }
        let sf = &self.subflows[i];
        let sbuf = &self.sbuf;
        let maps = &sf.tx_maps;
        let fallback = self.mode == Mode::Fallback;
        let base = self.local_idsn.wrapping_add(1);
        let fill = |dst: &mut [u8]| {
            let mut off = seg.offset;
            let mut done = 0;
            while done < dst.len() {
                let (dsn, avail) = if fallback {
                    (base + off, u64::MAX)
                } else {
                    maps.lookup(off).unwrap_or((u64::MAX, u64::MAX))
                };
                let n = ((dst.len() - done) as u64).min(avail) as usize;
                let piece = &mut dst[done..done + n];
                copy_from_sbuf(sbuf, dsn, piece);
                done += n;
                off += n as u64;
            }
        };
        let ttl = self.cfg.ttl;
        let len = emit::emit_segment_csum(
            buf,
            sf.local,
            sf.remote,
            seg,
            &mut opts,
            sf.tos,
            ttl,
            csum_partial,
            fill,
        )?;
        if self.checksum && seg.payload_len > 0 {
            self.record_sent_csum(i, seg, &opts);
        }
        let sf = &self.subflows[i];
        let l4 = crate::wire::ip::header_len(sf.local.ip());
        Ok(TxPacket {
            src: sf.local.ip(),
            dst: sf.remote.ip(),
            len,
            gso_size: seg.gso_size,
            csum_partial,
            l4_offset: l4 as u16,
            hdr_len: (len - seg.payload_len as usize) as u16,
            ipv6: sf.local.is_ipv6(),
        })
    }
}

/// Copy `dst.len()` bytes of the data stream at `dsn` from the send buffer. Bytes already
/// released (acknowledged at the data level through another subflow) are written as zeros:
/// the receiver has them already and discards the copy.
fn copy_from_sbuf(sbuf: &SendBuffer, dsn: u64, dst: &mut [u8]) {
    let start = sbuf.start();
    let mut done = 0;
    if dsn < start {
        let z = ((start - dsn) as usize).min(dst.len());
        dst[..z].fill(0);
        done = z;
    }
    if done < dst.len() {
        let got = sbuf.copy_out(dsn + done as u64, &mut dst[done..]);
        dst[done + got..].fill(0);
    }
}

/// Up to four MPTCP options for one segment, without allocation.
#[derive(Default)]
pub struct OptBuf<'a> {
    opts: [Option<MptcpOption<'a>>; 4],
    len: usize,
    /// DSN of the first byte of an MP_CAPABLE-with-data packet (for its checksum).
    pub mpc_dsn: u64,
    /// The DSS / MP_CAPABLE checksum is already set (a retransmission under the mapping
    /// first sent, which covers more than this segment): `emit_segment` keeps it.
    pub csum_given: bool,
}

impl<'a> OptBuf<'a> {
    pub fn push(&mut self, o: MptcpOption<'a>) {
        if self.len < 4 {
            self.opts[self.len] = Some(o);
            self.len += 1;
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes the options take on the wire (each padded to 4 bytes, as `emit_segment` lays
    /// them out at worst).
    pub fn wire_len(&self) -> usize {
        self.iter().map(|o| o.len().div_ceil(4) * 4).sum()
    }
    pub fn iter(&self) -> impl Iterator<Item = &MptcpOption<'a>> + Clone {
        self.opts[..self.len].iter().flatten()
    }
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut MptcpOption<'a>> {
        self.opts[..self.len].iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::wire::mptcp::dss_checksum_ok;

    /// The client learns the server has its key from the server's first DSS.
    fn confirmed(cfg: ConnConfig) -> Pair {
        let mut p = Pair::new(cfg);
        let now = p.now;
        assert!(!p.c.conn.fully_established);
        let a = p.s.pure_ack(now, 0);
        p.c.input(now, &a);
        assert!(p.c.conn.fully_established);
        p
    }

    fn data_packets(out: &[Packet]) -> Vec<&Packet> {
        out.iter().filter(|q| !q.payload.is_empty()).collect()
    }

    #[test]
    fn our_data_ack_is_4_bytes_until_the_peer_sends_a_64_bit_mapping() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        let a = p.s.pure_ack(now, 0);
        let da = a.dss().and_then(|d| d.data_ack).expect("a DATA_ACK");
        assert!(!da.ack64);
        assert_eq!(da.ack, p.s.conn.data_ack() & 0xffff_ffff);
        assert_eq!(a.mptcp[0].len(), 8, "DSS with a 4-byte DATA_ACK");
        let d = pattern(100);
        assert_eq!(p.client_to_server(&d), d);
        let now = p.now;
        let a = p.s.pure_ack(now, 0);
        let da = a.dss().and_then(|d| d.data_ack).expect("a DATA_ACK");
        assert!(da.ack64);
        assert_eq!(da.ack, p.s.conn.data_ack());
        assert_eq!(a.mptcp[0].len(), 12, "DSS with an 8-byte DATA_ACK");
        // the client received no mapping: its DATA_ACK stays 4 bytes
        let a = p.c.pure_ack(now, 0);
        assert!(!a.dss().and_then(|d| d.data_ack).expect("a DATA_ACK").ack64);
    }

    #[test]
    fn the_client_sends_mp_capable_on_its_data_until_the_server_sends_a_dss() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        let (ck, sk) = (p.c.conn.local_key(), p.s.conn.local_key());
        assert_eq!(p.c.conn.send(&pattern(100)), 100);
        let out = p.c.drain(now);
        let q = data_packets(&out)[0];
        let m = q.mp_capable().expect("MP_CAPABLE on the first data");
        assert_eq!(
            (m.sender_key, m.receiver_key, m.data_len),
            (Some(ck), Some(sk), Some(100))
        );
        assert!(q.dss().is_none());
        for q in &out {
            p.s.input(now, q);
        }
        assert_eq!(read_all(&mut p.s), pattern(100));
        let a = p.s.pure_ack(now, 0);
        p.c.input(now, &a);
        // now a DSS maps the data, continuing the stream
        assert_eq!(p.c.conn.send(&pattern(50)), 50);
        let out = p.c.drain(now);
        let q = data_packets(&out)[0];
        assert!(q.mp_capable().is_none());
        let m = q.dss().and_then(|d| d.mapping).expect("a DSS mapping");
        let idsn1 = p.c.conn.local_idsn.wrapping_add(1);
        assert_eq!(
            (m.dsn, m.dsn64, m.ssn, m.data_len),
            (idsn1 + 100, true, 101, 50)
        );
        assert_eq!(p.c.mib.DSSTxPartialMapping, 0);
    }

    #[test]
    fn each_data_segment_maps_its_payload_with_a_valid_checksum() {
        let mut p = confirmed(ConnConfig {
            checksum: true,
            ..ConnConfig::default()
        });
        assert!(p.c.conn.checksum_enabled() && p.s.conn.checksum_enabled());
        let now = p.now;
        let data = pattern(3000);
        assert_eq!(p.c.conn.send(&data), 3000);
        let out = p.c.drain(now);
        let (mut dsn, mut ssn) = (p.c.conn.local_idsn.wrapping_add(1), 1u32);
        let segs = data_packets(&out);
        assert!(segs.len() > 1);
        for q in segs {
            let m = q.dss().and_then(|d| d.mapping).expect("a mapping");
            assert_eq!(
                (m.dsn, m.ssn, usize::from(m.data_len)),
                (dsn, ssn, q.payload.len())
            );
            let sum = m.checksum.expect("a checksum");
            assert!(dss_checksum_ok(m.dsn, m.ssn, m.data_len, sum, &q.payload));
            dsn += u64::from(m.data_len);
            ssn += u32::from(m.data_len);
        }
        assert_eq!(ssn, 3001);
        for q in &out {
            p.s.input(now, q);
        }
        assert_eq!(read_all(&mut p.s), data);
        assert_eq!(p.s.mib.DataCsumErr, 0);
    }

    #[test]
    fn a_smaller_retransmission_declares_the_mapping_first_sent() {
        let mut p = confirmed(ConnConfig {
            checksum: true,
            ..ConnConfig::default()
        });
        let now = p.now;
        let data = pattern(3000);
        assert_eq!(p.c.conn.send(&data), 3000);
        let lost = p.c.drain(now);
        let first = data_packets(&lost);
        assert!(first[0].payload.len() > 1000);
        // the path's MTU shrinks: what was in flight leaves again in smaller segments
        p.c.conn.path_too_big(0, first[0].seq, 1000, &mut p.c.mib);
        assert_eq!(p.c.mib.PmtuUpdates, 1);
        let out = p.c.drain(now);
        let again = data_packets(&out);
        assert!(again.len() > first.len());
        for q in &again {
            assert!(q.payload.len() < first[0].payload.len());
            let orig = first
                .iter()
                .find(|o| q.seq.wrapping_sub(o.seq) < o.payload.len() as u32)
                .expect("bytes sent before");
            assert_eq!(
                q.dss().and_then(|d| d.mapping),
                orig.dss().and_then(|d| d.mapping),
                "the mapping (and checksum) first sent"
            );
        }
        assert_eq!(p.c.mib.DSSTxPartialMapping, 0);
        // the receiver holds each mapping's checksum until all of its bytes are in
        for q in &out {
            p.s.input(now, q);
        }
        p.advance(Duration::from_millis(200));
        assert_eq!(read_all(&mut p.s), data);
        assert_eq!(p.s.mib.DataCsumErr, 0);
    }

    #[test]
    fn abort_sends_a_rst_with_mp_tcprst_and_mp_fastclose() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        p.c.conn.abort();
        assert_eq!(p.c.conn.error(), Some(ConnError::Aborted));
        let out = p.c.drain(now);
        assert_eq!(out.len(), 1);
        assert!(out[0].has(tcp::flags::RST));
        assert_eq!(
            out[0].options(),
            vec![
                MptcpOption::MpTcpRst {
                    flags: 0,
                    reason: rst_reason::UNSPECIFIED
                },
                MptcpOption::MpFastclose {
                    key: p.s.conn.local_key()
                }
            ]
        );
        assert_eq!((p.c.mib.MPRstTx, p.c.mib.MPFastcloseTx), (1, 1));
    }

    #[test]
    fn a_fallback_connection_sends_no_mptcp_option() {
        let mut p = Pair::new(ConnConfig {
            mptcp: false,
            ..ConnConfig::default()
        });
        assert!(p.c.conn.is_fallback() && p.s.conn.is_fallback());
        assert_eq!(p.c.conn.option_budget(0), (0, 0));
        let now = p.now;
        p.c.conn.send(b"abc");
        p.c.conn.abort();
        let out = p.c.drain(now);
        assert!(!out.is_empty() && out.iter().all(|q| q.mptcp.is_empty()));
        assert!(out.iter().any(|q| q.has(tcp::flags::RST)));
        assert_eq!(p.c.mib.MPRstTx, 0);
    }
}
