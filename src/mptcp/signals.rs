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
