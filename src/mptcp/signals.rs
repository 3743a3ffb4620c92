//! Multipath signals: ADD_ADDR, REMOVE_ADDR, MP_PRIO, MP_FASTCLOSE, MP_TCPRST and MP_FAIL as
//! received (`handle_mp_options` and friends) and as written on outgoing segments.

use super::multipath::*;
use super::{ConnEvent, Connection, JoinState, Mib};
use crate::crypto;
use crate::pm::{PmEvent, RemoteAddr};
use crate::tcp::{self, SegmentIn};
use crate::time::{Duration, Instant};
use crate::wire::mptcp::{rst_reason, AddAddr, MpJoin, MptcpOption};
use core::net::SocketAddr;

impl Connection {
    // ----- receive-side processing of multipath options -------------------------------

    /// MP_JOIN handshake steps for subflow `idx`. Returns false if the segment must not be
    /// given to the TCP engine (the subflow was reset).
    pub(super) fn join_input(
        &mut self,
        now: Instant,
        idx: usize,
        seg: &SegmentIn<'_>,
        join: Option<&MpJoin>,
        mib: &mut Mib,
    ) -> bool {
        let syn = seg.flags & tcp::flags::SYN != 0;
        let ack = seg.flags & tcp::flags::ACK != 0;
        if seg.flags & tcp::flags::RST != 0 {
            return true;
        }
        let (local_key, remote_key) = (self.local_key, self.remote_key);
        let sf = &mut self.subflows[idx];
        match sf.join {
            JoinState::SynSent { nonce } if syn && ack => match join {
                Some(MpJoin::SynAck {
                    backup,
                    addr_id,
                    hmac,
                    nonce: peer_nonce,
                }) => {
                    mib.MPJoinSynAckRx += 1;
                    let want = crypto::truncate64(&crypto::join_hmac(
                        remote_key,
                        local_key,
                        *peer_nonce,
                        nonce,
                    ));
                    if !crypto::ct_eq(&want.to_be_bytes(), &hmac.to_be_bytes()) {
                        mib.MPJoinSynAckHMacFailure += 1;
                        sf.rst_reason = Some(rst_reason::MPTCP_SPECIFIC);
                        sf.tcb.reject(seg);
                        return false;
                    }
                    sf.join = JoinState::AckPending {
                        nonce,
                        peer_nonce: *peer_nonce,
                    };
                    sf.peer_backup = *backup;
                    sf.remote_addr_id = *addr_id;
                    let rto = sf.tcb.stats().rto.max(Duration::from_millis(200));
                    sf.join_timer = Some(now + rto);
                    sf.join_retries = 0;
                    // the server's HMAC covers our key: it has it, as a DSS would show (a
                    // join can complete before the initial subflow receives any DSS, e.g.
                    // when a held join's timer expired); from now on the initial subflow
                    // uses DSS mappings, not the MP_CAPABLE-with-data form
                    self.fully_established = true;
                    true
                }
                _ => {
                    // the peer answered without MP_JOIN: it does not take this subflow
                    mib.MPJoinSynAckHMacFailure += 1;
                    sf.rst_reason = Some(rst_reason::MPTCP_SPECIFIC);
                    sf.tcb.reject(seg);
                    false
                }
            },
            JoinState::AckPending { .. } if !syn && ack => {
                // the peer acknowledged our third ACK: the join is complete
                sf.join = JoinState::Joined;
                sf.join_timer = None;
                self.join_complete(now, idx);
                true
            }
            JoinState::SynReceived { nonce, peer_nonce } if !syn && ack => match join {
                Some(MpJoin::Ack { hmac }) => {
                    let want = crypto::truncate160(&crypto::join_hmac(
                        remote_key, local_key, peer_nonce, nonce,
                    ));
                    if !crypto::ct_eq(&want, hmac) {
                        mib.MPJoinAckHMacFailure += 1;
                        sf.rst_reason = Some(rst_reason::MPTCP_SPECIFIC);
                        sf.tcb.abort();
                        return false;
                    }
                    mib.MPJoinAckRx += 1;
                    sf.join = JoinState::Joined;
                    sf.tcb.request_ack(); // the "fourth ACK"
                    true
                }
                _ => {
                    // the third ACK must carry MP_JOIN; without it, wait for a retransmission
                    mib.MPJoinAckHMacFailure += 1;
                    false
                }
            },
            _ => true,
        }
    }

    /// A join finished on subflow `idx` (either role).
    pub(super) fn join_complete(&mut self, now: Instant, idx: usize) {
        let sf = &mut self.subflows[idx];
        if sf.established {
            return;
        }
        sf.established = true;
        let (id, local, remote, backup) = (sf.id, sf.local, sf.remote, sf.backup || sf.peer_backup);
        self.push_event(ConnEvent::SubflowEstablished { id });
        self.pm_event(
            now,
            &PmEvent::SubflowEstablished {
                id,
                local,
                remote,
                backup,
            },
        );
    }

    /// ADD_ADDR, REMOVE_ADDR received on any subflow.
    pub(super) fn addr_input(&mut self, now: Instant, opts: &[MptcpOption<'_>], mib: &mut Mib) {
        for o in opts {
            match o {
                MptcpOption::AddAddr(a) if a.echo => {
                    mib.EchoAdd += 1;
                    self.mp
                        .add_addr
                        .retain(|t| t.echo || t.addr_id != a.addr_id);
                }
                MptcpOption::AddAddr(a) => {
                    let want = crypto::add_addr_hmac(
                        self.remote_key,
                        self.local_key,
                        a.addr_id,
                        a.addr,
                        a.port,
                    );
                    if a.hmac
                        .is_none_or(|h| !crypto::ct_eq(&h.to_be_bytes(), &want.to_be_bytes()))
                    {
                        mib.AddAddrHMacFailure += 1;
                        continue;
                    }
                    mib.AddAddr += 1;
                    // the HMAC covers our key: the peer has it, as a DSS would show. Without
                    // this a client that has received no DSS yet (no data from the server)
                    // would keep sending MP_CAPABLE on its ACKs and never echo.
                    self.fully_established = true;
                    let addr = SocketAddr::new(a.addr, a.port.unwrap_or(0));
                    let known = self.mp.remote_addrs.iter().any(|r| r.addr_id == a.addr_id);
                    let accepted = self.mp.remote_addrs.len();
                    let limit = usize::try_from(self.cfg.limits.max_add_addr_accepted)
                        .unwrap_or(usize::MAX);
                    if !known && accepted >= limit {
                        // Linux: echoed, counted, not used (add_addr_accepted reached; 0 =
                        // announcements ignored)
                        mib.AddAddrDrop += 1;
                        self.push_event(ConnEvent::AddressAnnounced {
                            addr_id: a.addr_id,
                            addr,
                        });
                    } else if !self
                        .mp
                        .remote_addrs
                        .iter()
                        .any(|r| r.addr_id == a.addr_id && r.addr == addr)
                    {
                        self.mp.remote_addrs.retain(|r| r.addr_id != a.addr_id);
                        if self.mp.remote_addrs.len() < 64 {
                            self.mp.remote_addrs.push(RemoteAddr {
                                addr_id: a.addr_id,
                                addr,
                            });
                        }
                        self.push_event(ConnEvent::AddressAnnounced {
                            addr_id: a.addr_id,
                            addr,
                        });
                        self.pm_event(
                            now,
                            &PmEvent::AddressAnnounced {
                                addr_id: a.addr_id,
                                addr,
                            },
                        );
                    }
                    self.queue_add_addr(AddAddrTx {
                        addr_id: a.addr_id,
                        addr: a.addr,
                        port: a.port,
                        echo: true,
                        timer: None,
                        retries: 0,
                        sent: false,
                    });
                }
                MptcpOption::RemoveAddr { ids } => {
                    for &id in ids.iter() {
                        mib.RmAddr += 1;
                        self.mp.remote_addrs.retain(|r| r.addr_id != id);
                        for s in self.subflows.iter_mut() {
                            if s.remote_addr_id == id
                                && s.closed.is_none()
                                && s.join != JoinState::Initial
                            {
                                // (Linux counts RmAddr here, RmSubflow only where an
                                // endpoint was deleted)
                                s.rst_reason = Some(rst_reason::ADMIN_PROHIBITED);
                                s.tcb.abort();
                            }
                        }
                        self.push_event(ConnEvent::AddressRemoved { addr_id: id });
                        self.pm_event(now, &PmEvent::AddressRemoved { addr_id: id });
                    }
                }
                _ => {}
            }
        }
    }

    pub(super) fn queue_add_addr(&mut self, t: AddAddrTx) {
        if self.mp.add_addr.len() >= 32 {
            return;
        }
        self.mp.add_addr.push_back(t);
        if let Some(i) = self.best_subflow() {
            self.subflows[i].tcb.request_ack();
        }
    }

    // ----- transmit-side multipath options ---------------------------------------------

    /// Options for a segment of a joining subflow (SYN, SYN/ACK, third ACK), if any.
    pub(super) fn join_option(
        &self,
        i: usize,
        syn: bool,
        ack: bool,
    ) -> Option<MptcpOption<'static>> {
        let sf = &self.subflows[i];
        match sf.join {
            JoinState::SynSent { nonce } if syn && !ack => Some(MptcpOption::MpJoin(MpJoin::Syn {
                backup: sf.backup,
                addr_id: sf.local_addr_id,
                token: self.remote_token,
                nonce,
            })),
            JoinState::SynReceived { nonce, peer_nonce } if syn && ack => {
                let mac = crypto::join_hmac(self.local_key, self.remote_key, nonce, peer_nonce);
                Some(MptcpOption::MpJoin(MpJoin::SynAck {
                    backup: sf.backup,
                    addr_id: sf.local_addr_id,
                    hmac: crypto::truncate64(&mac),
                    nonce,
                }))
            }
            JoinState::AckPending { nonce, peer_nonce } if !syn => {
                let mac = crypto::join_hmac(self.local_key, self.remote_key, nonce, peer_nonce);
                Some(MptcpOption::MpJoin(MpJoin::Ack {
                    hmac: crypto::truncate160(&mac),
                }))
            }
            _ => None,
        }
    }

    /// A signal never sent yet is queued.
    pub(super) fn signal_pending(&self) -> bool {
        !self.mp.rm_addr.is_empty() || self.mp.add_addr.iter().any(|t| !t.sent)
    }

    /// A signal (ADD_ADDR, REMOVE_ADDR) to put on a pure ACK, if one is due.
    pub(super) fn take_signal(
        &mut self,
        now: Instant,
        mib: &mut Mib,
    ) -> Option<MptcpOption<'static>> {
        mib.AddAddrTxDrop += core::mem::take(&mut self.mp.announce_refused);
        mib.RmSubflow += core::mem::take(&mut self.mp.rm_subflow);
        if let Some(id) = self.mp.rm_addr.pop_front() {
            let srtt = self
                .best_subflow()
                .and_then(|i| self.subflows[i].tcb.srtt())
                .unwrap_or(Duration::from_millis(100));
            let grace = (srtt * 2).clamp(Duration::from_millis(100), Duration::from_secs(1));
            if self.mp.rm_close.len() < 32 {
                self.mp.rm_close.push((id, now + grace));
            } else {
                self.close_removed(id);
            }
            self.mp.signal_sent = true;
            return Some(MptcpOption::RemoveAddr {
                ids: &IDS[usize::from(id)..usize::from(id) + 1],
            });
        }
        let pos = self
            .mp
            .add_addr
            .iter()
            .position(|t| !t.sent || t.timer.is_some_and(|d| d <= now))?;
        let t = self.mp.add_addr.get_mut(pos)?;
        self.mp.signal_sent = true;
        let hmac = (!t.echo).then(|| {
            crypto::add_addr_hmac(self.local_key, self.remote_key, t.addr_id, t.addr, t.port)
        });
        let opt = MptcpOption::AddAddr(AddAddr {
            echo: t.echo,
            addr_id: t.addr_id,
            addr: t.addr,
            port: t.port,
            hmac,
        });
        if t.echo {
            self.mp.add_addr.remove(pos);
        } else {
            if t.sent {
                mib.AddAddrRetrans += 1;
                t.retries += 1;
            } else {
                mib.AddAddrTx += 1;
            }
            t.sent = true;
            t.timer = Some(now + self.cfg.add_addr_timeout);
            if t.retries >= self.cfg.add_addr_retries {
                self.mp.add_addr.remove(pos);
            }
        }
        Some(opt)
    }

    /// Earliest multipath timer: join third-ACK retransmission, ADD_ADDR retransmission.
    pub(super) fn mp_poll_timeout(&self) -> Option<Instant> {
        let joins = self.subflows.iter().filter_map(|s| s.join_timer).min();
        let adds = self.mp.add_addr.iter().filter_map(|t| t.timer).min();
        let rms = self.mp.rm_close.iter().map(|r| r.1).min();
        [joins, adds, rms, self.pm_poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    pub(super) fn mp_handle_timeout(&mut self, now: Instant, mib: &mut Mib) {
        while let Some(k) = self.mp.rm_close.iter().position(|r| r.1 <= now) {
            let (id, _) = self.mp.rm_close.swap_remove(k);
            self.close_removed(id);
        }
        mib.RmSubflow += core::mem::take(&mut self.mp.rm_subflow);
        let join_timeout = self.cfg.join_timeout;
        for s in self.subflows.iter_mut() {
            if s.join_timer.is_some_and(|t| t <= now) {
                if let JoinState::AckPending { .. } = s.join {
                    s.join_retries += 1;
                    if s.join_retries > JOIN_ACK_RETRIES {
                        s.join_timer = None;
                        s.rst_reason = Some(rst_reason::MPTCP_SPECIFIC);
                        s.tcb.abort();
                    } else {
                        mib.MPJoinAckRetrans += 1;
                        s.tcb.request_ack();
                        let base = s.tcb.stats().rto.max(Duration::from_millis(200));
                        let wait = base
                            .saturating_mul(1 << s.join_retries.min(5))
                            .min(join_timeout);
                        s.join_timer = Some(now + wait);
                    }
                } else {
                    s.join_timer = None;
                }
            }
        }
        if self
            .mp
            .add_addr
            .iter()
            .any(|t| t.timer.is_some_and(|d| d <= now))
        {
            if let Some(i) = self.best_subflow() {
                self.subflows[i].tcb.request_ack();
            }
        }
        self.pm_timeout(now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;
    use super::*;

    fn ip(a: [u8; 4]) -> core::net::IpAddr {
        core::net::IpAddr::V4(a.into())
    }

    fn add_addrs(out: &[Packet]) -> Vec<AddAddr> {
        out.iter()
            .flat_map(|q| q.options())
            .filter_map(|o| match o {
                MptcpOption::AddAddr(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_add_addr_from_the_peer_is_announced_and_echoed() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        assert!(p.s.conn.announce(1, ip(SERVER2), None));
        let out = p.s.drain(now);
        assert_eq!(add_addrs(&out).len(), 1);
        p.c.events();
        for q in &out {
            p.c.input(now, q);
        }
        assert_eq!((p.c.mib.AddAddr, p.c.mib.AddAddrHMacFailure), (1, 0));
        assert_eq!(
            p.c.events(),
            vec![ConnEvent::AddressAnnounced {
                addr_id: 1,
                addr: SocketAddr::new(ip(SERVER2), 0)
            }]
        );
        assert!(p.c.conn.fully_established, "the HMAC covers our key");
        assert_eq!(p.c.conn.mp.remote_addrs.len(), 1);
        let echo = p.c.drain(now);
        let e = add_addrs(&echo);
        assert_eq!(e.len(), 1);
        assert!(e[0].echo && e[0].hmac.is_none());
        assert_eq!((e[0].addr_id, e[0].addr, e[0].port), (1, ip(SERVER2), None));
        for q in &echo {
            p.s.input(now, q);
        }
        assert_eq!(p.s.mib.EchoAdd, 1);
        assert!(
            p.s.conn.mp.add_addr.is_empty(),
            "no retransmission once echoed"
        );
        assert_eq!(p.s.conn.mp_poll_timeout(), None);
    }

    #[test]
    fn an_add_addr_with_a_bad_hmac_is_dropped_unechoed() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        assert!(p.s.conn.announce(1, ip(SERVER2), None));
        let mut out = p.s.drain(now);
        for q in out.iter_mut() {
            let opts: Vec<MptcpOption<'static>> = q
                .options()
                .into_iter()
                .map(|o| match o {
                    MptcpOption::AddAddr(mut a) => {
                        a.hmac = a.hmac.map(|h| h ^ 1);
                        MptcpOption::AddAddr(a)
                    }
                    MptcpOption::Dss(d) => MptcpOption::Dss(d),
                    other => panic!("{other:?}"),
                })
                .collect();
            q.set_options(&opts);
        }
        p.c.events();
        for q in &out {
            p.c.input(now, q);
        }
        assert_eq!((p.c.mib.AddAddr, p.c.mib.AddAddrHMacFailure), (0, 1));
        assert!(p.c.events().is_empty());
        assert!(p.c.conn.mp.remote_addrs.is_empty());
        assert!(add_addrs(&p.c.drain(now)).is_empty(), "no echo");
    }

    #[test]
    fn an_unechoed_add_addr_is_sent_again_then_given_up() {
        let cfg = ConnConfig {
            add_addr_timeout: Duration::from_millis(100),
            add_addr_retries: 2,
            ..ConnConfig::default()
        };
        let mut p = Pair::new(cfg);
        assert!(p.s.conn.announce(1, ip(SERVER2), None));
        let mut sent = 0;
        // every ADD_ADDR is lost
        p.advance_with(Duration::from_secs(1), |from_client, q| {
            let add = q
                .options()
                .iter()
                .any(|o| matches!(o, MptcpOption::AddAddr(_)));
            sent += usize::from(!from_client && add);
            from_client || !add
        });
        assert_eq!(sent, 3);
        assert_eq!((p.s.mib.AddAddrTx, p.s.mib.AddAddrRetrans), (1, 2));
        assert!(p.s.conn.mp.add_addr.is_empty(), "given up");
        assert_eq!(p.c.mib.AddAddr, 0);
    }

    #[test]
    fn mp_prio_from_the_peer_changes_the_subflows_peer_backup() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        let base = p.s.pure_ack(now, 0);
        let prio = |backup| {
            let mut a = base.clone();
            a.set_options(&[MptcpOption::MpPrio {
                backup,
                addr_id: None,
            }]);
            a
        };
        p.c.events();
        p.c.input(now, &prio(true));
        assert_eq!(p.c.mib.MPPrioRx, 1);
        assert!(p.c.conn.subflows[0].peer_backup);
        assert!(!p.c.conn.subflows[0].backup, "our own priority is ours");
        let id = p.c.conn.subflows[0].id;
        assert_eq!(
            p.c.events(),
            vec![ConnEvent::SubflowPriority { id, backup: true }]
        );
        // the same again changes nothing
        p.c.input(now, &prio(true));
        assert_eq!(p.c.mib.MPPrioRx, 2);
        assert!(p.c.events().is_empty());
        p.c.input(now, &prio(false));
        assert!(!p.c.conn.subflows[0].peer_backup);
        assert_eq!(
            p.c.events(),
            vec![ConnEvent::SubflowPriority { id, backup: false }]
        );
    }

    #[test]
    fn an_rst_with_mp_fastclose_ends_the_peer_and_a_wrong_key_does_not() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        let mut a = p.s.pure_ack(now, 0);
        a.set_options(&[MptcpOption::MpFastclose {
            key: p.c.conn.local_key() ^ 1,
        }]);
        p.c.input(now, &a);
        assert_eq!(p.c.mib.MPFastcloseRx, 1);
        assert!(p.c.conn.is_established() && p.c.conn.error().is_none());
        // our abort: RST + MP_TCPRST + MP_FASTCLOSE with the peer's key
        p.c.conn.abort();
        let out = p.c.drain(now);
        p.s.events();
        for q in &out {
            p.s.input(now, q);
        }
        assert_eq!((p.s.mib.MPFastcloseRx, p.s.mib.MPRstRx), (1, 1));
        assert_eq!(p.s.conn.error(), Some(ConnError::Reset));
        assert!(p.s.conn.is_closed());
        assert!(p.s.drain(now).iter().all(|q| q.payload.is_empty()));
        assert!(p.s.events().contains(&ConnEvent::Closed {
            error: Some(ConnError::Reset)
        }));
    }

    #[test]
    fn mp_fail_on_the_only_subflow_is_answered_with_an_infinite_mapping() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        let a = p.s.pure_ack(now, 0);
        p.c.input(now, &a);
        let mut fail = p.s.pure_ack(now, 0);
        fail.set_options(&[MptcpOption::MpFail {
            dsn: p.c.conn.snd_una,
        }]);
        p.c.input(now, &fail);
        assert_eq!(p.c.mib.MPFailRx, 1);
        assert!(p.c.conn.infinite_map_pending);
        assert_eq!(
            p.c.conn.mode(),
            Mode::Mptcp,
            "until the infinite mapping is out"
        );
        p.c.events();
        assert_eq!(p.c.conn.send(b"after the failure"), 17);
        let out = p.c.drain(now);
        let q = out.iter().find(|q| !q.payload.is_empty()).expect("data");
        let m = q.dss().and_then(|d| d.mapping).expect("a mapping");
        assert_eq!((m.dsn, m.ssn, m.data_len), (p.c.conn.local_idsn + 1, 1, 0));
        assert_eq!(p.c.mib.InfiniteMapTx, 1);
        assert_eq!(p.c.conn.mode(), Mode::Fallback);
        assert_eq!(p.c.events(), vec![ConnEvent::Fallback]);
        // the server follows the infinite mapping into plain TCP and gets the data
        for q in &out {
            p.s.input(now, q);
        }
        assert_eq!(p.s.mib.InfiniteMapRx, 1);
        assert_eq!(p.s.conn.mode(), Mode::Fallback);
        assert_eq!(read_all(&mut p.s), b"after the failure");
    }

    #[test]
    fn remove_addr_from_the_peer_resets_the_subflows_to_that_address() {
        let cfg = ConnConfig {
            local_addrs: vec![crate::pm::LocalAddr::device(ip(CLIENT2))],
            ..ConnConfig::default()
        };
        let mut p = Pair::with(cfg, ConnConfig::default());
        let d = pattern(10);
        assert_eq!(p.client_to_server(&d), d);
        let join = v4(CLIENT2, 41000);
        let (ci, si) = p.join(join, v4(SERVER, 80), false);
        assert_eq!(p.c.conn.subflows[ci].local_addr_id, 1);
        assert_eq!(p.s.conn.subflows[si].remote_addr_id, 1);
        let now = p.now;
        p.c.conn.remove_address(1);
        let out = p.c.drain(now);
        let rm = out
            .iter()
            .find(|q| q.options().contains(&MptcpOption::RemoveAddr { ids: &[1] }))
            .expect("a REMOVE_ADDR");
        assert_eq!(rm.src, v4(CLIENT, 40000), "not on the address removed");
        p.s.events();
        for q in &out {
            p.s.input(now, q);
        }
        assert_eq!(p.s.mib.RmAddr, 1);
        assert_eq!(
            p.s.conn.subflows[si].rst_reason,
            Some(rst_reason::ADMIN_PROHIBITED)
        );
        let out = p.s.drain(now);
        let rst = out
            .iter()
            .find(|q| q.dst == join && q.has(tcp::flags::RST))
            .expect("the subflow reset");
        assert!(rst.options().contains(&MptcpOption::MpTcpRst {
            flags: 0,
            reason: rst_reason::ADMIN_PROHIBITED
        }));
        let ev = p.s.events();
        assert!(ev.contains(&ConnEvent::AddressRemoved { addr_id: 1 }));
        let sid = p.s.conn.subflows[si].id;
        assert!(ev.contains(&ConnEvent::SubflowClosed {
            id: sid,
            reason: CloseReason::Aborted
        }));
        assert!(
            p.s.conn.subflows[0].closed.is_none(),
            "the initial subflow stays"
        );
        assert_eq!(p.client_to_server(b"still here"), b"still here");
    }
}
