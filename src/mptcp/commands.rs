//! What the application and the path manager ask of a connection: open, close and
//! re-flag subflows, announce and remove addresses, limits; the path manager plumbing.

use super::multipath::*;
use super::{Connection, JoinState, Mode, Role};
use crate::pm::{self, CommandQueue, PathManager, PmCommand, PmContext, PmEvent, PmSubflow};
use crate::time::{Duration, Instant};
use crate::wire::mptcp::rst_reason;
use core::net::IpAddr;

impl Connection {
    // ----- application / path-manager commands -----------------------------------------

    /// Announce a local address to the peer (ADD_ADDR, retransmitted until echoed). False
    /// (and counted `AddAddrTxDrop`) if `max_announced` other ids are announced already.
    pub fn announce(&mut self, addr_id: u8, addr: IpAddr, port: Option<u16>) -> bool {
        let bit = 1u64 << (addr_id % 64);
        let word = usize::from(addr_id / 64);
        let count: u32 = self.mp.announced.iter().map(|w| w.count_ones()).sum();
        if self.mp.announced[word] & bit == 0 {
            if count >= self.cfg.limits.max_announced {
                self.mp.announce_refused += 1;
                return false;
            }
            self.mp.announced[word] |= bit;
        }
        self.mp.add_addr.retain(|t| t.echo || t.addr_id != addr_id);
        self.queue_add_addr(AddAddrTx {
            addr_id,
            addr,
            port,
            echo: false,
            timer: None,
            retries: 0,
            sent: false,
        });
        true
    }

    /// Withdraw an announced address (REMOVE_ADDR) and close our subflows using it.
    pub fn remove_address(&mut self, addr_id: u8) {
        self.mp.announced[usize::from(addr_id / 64)] &= !(1u64 << (addr_id % 64));
        self.mp.add_addr.retain(|t| t.echo || t.addr_id != addr_id);
        if self.mp.rm_addr.len() < 32 {
            self.mp.rm_addr.push_back(addr_id);
        }
        // The REMOVE_ADDR goes first (on another subflow when there is one); the subflows
        // on the address are closed (gracefully) a grace period after it left
        // (`rm_close`), so the peer normally removes them itself on the signal (Linux then
        // counts RmSubflow) instead of seeing our FIN race it.
        if let Some(i) = self.best_subflow_except(addr_id) {
            self.subflows[i].tcb.request_ack();
        }
        // they are removed now, whoever closes them first (Linux's RmSubflow)
        self.mp.rm_subflow += self
            .subflows
            .iter()
            .filter(|s| {
                s.local_addr_id == addr_id && s.closed.is_none() && s.join != JoinState::Initial
            })
            .count() as u64;
    }

    /// The application announces `addr` under an id of its choosing (Linux's userspace path
    /// manager: `ANNOUNCE` with `id`): ADD_ADDR, retransmitted until echoed, and `addr_id` is
    /// our id for `addr` from now on (joins to and from it carry it). Announcing the same
    /// address and id again sends the ADD_ADDR again (e.g. with another port).
    pub fn announce_address(
        &mut self,
        addr_id: u8,
        addr: IpAddr,
        port: Option<u16>,
    ) -> Result<(), AddressError> {
        if addr_id == 0 {
            return Err(AddressError::ReservedId);
        }
        if addr.is_unspecified() || self.subflows.first().is_some_and(|s| s.local.ip() == addr) {
            return Err(AddressError::BadAddress);
        }
        let taken_by_other = self
            .mp
            .app_ids
            .iter()
            .any(|&(a, id)| (id == addr_id) != (a == addr))
            || self
                .cfg
                .local_addrs
                .iter()
                .any(|l| l.addr != addr && self.local_addr_id(l.addr) == addr_id);
        if taken_by_other {
            return Err(AddressError::IdInUse);
        }
        let known = self.mp.app_ids.iter().any(|&(a, _)| a == addr);
        if !self.announce(addr_id, addr, port) {
            return Err(AddressError::Limit);
        }
        if !known {
            self.mp.app_ids.push((addr, addr_id));
        }
        Ok(())
    }

    /// Withdraw an address the application announced (Linux's userspace path manager:
    /// `REMOVE`): REMOVE_ADDR, and our subflows from it close.
    pub fn withdraw_address(&mut self, addr_id: u8) -> Result<(), AddressError> {
        if !self.is_announced(addr_id) {
            return Err(AddressError::NotAnnounced);
        }
        self.remove_address(addr_id);
        self.mp.app_ids.retain(|&(_, id)| id != addr_id);
        Ok(())
    }

    /// Close our subflows on address `addr_id` (after a REMOVE_ADDR's grace period).
    pub(super) fn close_removed(&mut self, addr_id: u8) {
        for i in 0..self.subflows.len() {
            let s = &self.subflows[i];
            if s.local_addr_id == addr_id && s.closed.is_none() && s.join != JoinState::Initial {
                self.close_subflow(i, false);
            }
        }
    }

    /// The best subflow not on our address `addr_id` (any if all are).
    pub(super) fn best_subflow_except(&self, addr_id: u8) -> Option<usize> {
        self.subflows
            .iter()
            .enumerate()
            .filter(|(_, s)| s.usable() && s.local_addr_id != addr_id)
            .min_by_key(|(_, s)| {
                (
                    s.backup || s.peer_backup,
                    s.tcb.stats().srtt.unwrap_or(Duration::from_secs(1)),
                )
            })
            .map(|(i, _)| i)
            .or_else(|| self.best_subflow())
    }

    pub(super) fn is_announced(&self, id: u8) -> bool {
        self.mp.announced[usize::from(id / 64)] & (1u64 << (id % 64)) != 0
    }

    /// Add a local endpoint, or change the flags of one (Linux's `ip mptcp endpoint add` /
    /// `change`), while the connection runs. A new address goes to the path manager
    /// (`LocalAddressAdded`: fullmesh announces it if `announce`, and a client joins from
    /// it); `backup` changed sends MP_PRIO on every subflow from the address; `announce` set
    /// announces it, cleared withdraws it (REMOVE_ADDR). The stack must own the address.
    pub fn set_endpoint(&mut self, now: Instant, ep: pm::LocalAddr) {
        let Some(pos) = self.cfg.local_addrs.iter().position(|l| l.addr == ep.addr) else {
            self.cfg.local_addrs.push(ep);
            self.pm_event(now, &PmEvent::LocalAddressAdded { addr: ep.addr });
            return;
        };
        let old = self.cfg.local_addrs[pos];
        self.cfg.local_addrs[pos] = ep;
        if old.backup != ep.backup {
            for i in 0..self.subflows.len() {
                if self.subflows[i].local.ip() == ep.addr
                    && self.subflows[i].closed.is_none()
                    && self.subflows[i].backup != ep.backup
                {
                    self.set_subflow_backup(i, ep.backup);
                }
            }
        }
        // newly announced, or Linux's `subflow` / `fullmesh` flags changed (the `kernel`
        // path manager then opens the pairs the new flags want; subflows the old flags
        // wanted stay until closed)
        if (ep.announce && !old.announce)
            || (ep.subflow, ep.fullmesh) != (old.subflow, old.fullmesh)
        {
            self.pm_event(now, &PmEvent::LocalAddressAdded { addr: ep.addr });
        }
        if !ep.announce && old.announce {
            let id = self.local_addr_id(ep.addr);
            if self.is_announced(id) {
                // withdrawn as `remove_address` does it: REMOVE_ADDR on the next ACK (not
                // with whatever segment comes next), our subflows there closed after it
                self.remove_address(id);
            }
        }
    }

    /// Remove a local endpoint (Linux's `ip mptcp endpoint delete`) while the connection
    /// runs: REMOVE_ADDR if it was announced (our subflows there close a grace period of two
    /// RTTs later, unless the peer closed them first), its subflows closed (not the initial one: the
    /// connection would end), the path manager told (`LocalAddressRemoved`). Its address id
    /// is not reused.
    pub fn remove_endpoint(&mut self, now: Instant, addr: IpAddr) {
        let id = self.local_addr_id(addr);
        if id != 0 && self.is_announced(id) {
            // REMOVE_ADDR now, our subflows there closed after its grace period
            self.remove_address(id);
        } else {
            for i in 0..self.subflows.len() {
                let s = &self.subflows[i];
                if s.local.ip() == addr
                    && s.closed.is_none()
                    && s.join != JoinState::Initial
                    && self.close_subflow(i, false)
                {
                    self.mp.rm_subflow += 1;
                }
            }
        }
        self.pm_event(now, &PmEvent::LocalAddressRemoved { addr });
        // a tombstone keeps the other entries' positions, hence their address ids
        if let Some(l) = self.cfg.local_addrs.iter_mut().find(|l| l.addr == addr) {
            l.addr = if addr.is_ipv4() {
                IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED)
            } else {
                IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED)
            };
            l.announce = false;
        }
    }

    /// The connection's limits.
    pub fn limits(&self) -> pm::Limits {
        self.cfg.limits
    }

    /// Change the connection's limits at run time. Lowering them closes nothing (as in
    /// Linux): existing subflows and accepted addresses stay, new ones are refused; raising
    /// them lets the path manager open or announce what did not fit before.
    pub fn set_limits(&mut self, now: Instant, limits: pm::Limits) {
        self.cfg.limits = limits;
        if self.mp.pm_started {
            self.pm_event(now, &PmEvent::LimitsChanged);
        }
    }

    /// Change our priority of a subflow (MP_PRIO).
    pub fn set_subflow_backup(&mut self, idx: usize, backup: bool) -> bool {
        let Some(sf) = self.subflows.get_mut(idx) else {
            return false;
        };
        if sf.closed.is_some() {
            return false;
        }
        sf.backup = backup;
        if self.mode == Mode::Mptcp {
            sf.prio_pending = true;
            sf.tcb.request_ack();
        }
        true
    }

    /// Close one subflow: gracefully (FIN once its data is acknowledged; unacknowledged
    /// data is reinjected elsewhere) or abortively (RST now, data reinjected).
    pub fn close_subflow(&mut self, idx: usize, abortive: bool) -> bool {
        let Some(sf) = self.subflows.get_mut(idx) else {
            return false;
        };
        if sf.closed.is_some() {
            return false;
        }
        if abortive {
            sf.rst_reason = Some(rst_reason::ADMIN_PROHIBITED);
            sf.tcb.abort();
        } else {
            sf.tcb.close();
        }
        sf.closing_by_app = true;
        self.reinject_outstanding(idx);
        true
    }

    /// Put the data-level-unacknowledged ranges that subflow `idx` carries on the
    /// reinjection queue (they will also complete on `idx` if it recovers; the receiver
    /// discards duplicates).
    pub(super) fn reinject_outstanding(&mut self, idx: usize) {
        let reinjected_before = self.stats_reinjected;
        let una = self.snd_una;
        let sf = &mut self.subflows[idx];
        let from = sf.reinjected_upto.max(sf.tcb.snd_una_offset());
        let mut last = from;
        for m in sf.tx_maps.iter() {
            if m.end() <= from {
                continue;
            }
            let start_off = m.off.max(from);
            let dsn = m.dsn + (start_off - m.off);
            let end_dsn = m.dsn + u64::from(m.len);
            last = last.max(m.end());
            if end_dsn > una {
                let s = dsn.max(una);
                if self.reinject.len() < 256 {
                    self.reinject.push_back((s, (end_dsn - s) as u32));
                    self.stats_reinjected += end_dsn - s;
                }
            }
        }
        sf.reinjected_upto = last;
        let queued = self.stats_reinjected - reinjected_before;
        if queued > 0 {
            tracing::info!(
                conn = %format_args!("{:08x}", self.local_token),
                "subflow {}: {queued} bytes not acknowledged at the data level queued for reinjection",
                self.subflows[idx].id
            );
        }
    }

    // ----- path manager plumbing -------------------------------------------------------

    pub(super) fn pm_event(&mut self, now: Instant, ev: &PmEvent) {
        if self.mode == Mode::Mptcp {
            self.call_pm(now, |pm, ctx, cmds| pm.on_event(ctx, ev, cmds));
        }
    }

    pub(super) fn pm_timeout(&mut self, now: Instant) {
        if self.mode == Mode::Mptcp && self.mp.pm.poll_timeout().is_some_and(|t| t <= now) {
            self.call_pm(now, |pm, ctx, cmds| pm.on_timeout(ctx, cmds));
        }
    }

    /// Give the path manager a snapshot of the connection, then run what it asked for.
    pub(super) fn call_pm(
        &mut self,
        now: Instant,
        f: impl FnOnce(&mut dyn PathManager, &PmContext, &mut CommandQueue),
    ) {
        let Connection {
            mp, subflows, cfg, ..
        } = self;
        mp.scratch.clear();
        for s in subflows.iter().filter(|s| s.closed.is_none()) {
            mp.scratch.push(PmSubflow {
                id: s.id,
                local: s.local,
                remote: s.remote,
                established: s.established,
            });
        }
        let ctx = PmContext {
            now,
            local_addrs: &cfg.local_addrs,
            subflows: &mp.scratch,
            remote_addrs: &mp.remote_addrs,
            limits: cfg.limits,
        };
        f(mp.pm.as_mut(), &ctx, &mut mp.cmds);
        self.run_pm_commands();
    }

    pub(super) fn run_pm_commands(&mut self) {
        while let Some(cmd) = self.mp.cmds.pop() {
            match cmd {
                PmCommand::OpenSubflow { .. } => {
                    if self.mp.opens.len() < 64 {
                        self.mp.opens.push_back(cmd);
                    }
                }
                PmCommand::CloseSubflow { id } => {
                    if let Some(i) = self.subflows.iter().position(|s| s.id == id) {
                        self.close_subflow(i, false);
                    }
                }
                PmCommand::Announce {
                    addr_id: pm_id,
                    addr,
                    port,
                } => {
                    // one id space for ADD_ADDR, REMOVE_ADDR and MP_JOIN: ours
                    let id = self.local_addr_id(addr);
                    if self.announce(id, addr, port) {
                        self.mp.pm_ids.retain(|&(p, _)| p != pm_id);
                        if self.mp.pm_ids.len() < 256 {
                            self.mp.pm_ids.push((pm_id, id));
                        }
                    }
                }
                PmCommand::RemoveAddress { addr_id: pm_id } => {
                    let id = self
                        .mp
                        .pm_ids
                        .iter()
                        .find(|&&(p, _)| p == pm_id)
                        .map_or(pm_id, |&(_, o)| o);
                    self.mp.pm_ids.retain(|&(p, _)| p != pm_id);
                    // (already withdrawn, e.g. by `remove_endpoint`: nothing to send)
                    if self.is_announced(id) {
                        self.remove_address(id);
                    }
                }
                PmCommand::SetBackup { id, backup } => {
                    if let Some(i) = self.subflows.iter().position(|s| s.id == id) {
                        self.set_subflow_backup(i, backup);
                    }
                }
            }
        }
    }

    /// Start the path manager once MPTCP is fully established.
    pub(super) fn maybe_start_pm(&mut self, now: Instant) {
        if self.mp.pm_started || self.mode != Mode::Mptcp {
            return;
        }
        let Some(sf) = self.subflows.first() else {
            return;
        };
        if !sf.established {
            return;
        }
        self.mp.pm_started = true;
        let ev = PmEvent::ConnectionEstablished {
            local: sf.local,
            remote: sf.remote,
            server_side: self.role == Role::Server,
            peer_deny_join_initial: self.peer_deny_join_initial,
        };
        self.pm_event(now, &ev);
    }

    pub(super) fn pm_poll_timeout(&self) -> Option<Instant> {
        if self.mode == Mode::Mptcp {
            self.mp.pm.poll_timeout()
        } else {
            None
        }
    }
}

/// Why [`Connection::announce_address`] or [`Connection::withdraw_address`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressError {
    /// Id 0 is the initial subflow's address (RFC 8684 3.4.1).
    ReservedId,
    /// The unspecified address, or the initial subflow's (announced implicitly).
    BadAddress,
    /// Another address has that id, or that address another id.
    IdInUse,
    /// `max_announced` addresses are announced already.
    Limit,
    /// No address with that id is announced.
    NotAnnounced,
}

impl core::fmt::Display for AddressError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            AddressError::ReservedId => "address id 0 is the initial subflow's",
            AddressError::BadAddress => "not an address that can be announced",
            AddressError::IdInUse => "the address id is in use for another address",
            AddressError::Limit => "the limit of announced addresses is reached",
            AddressError::NotAnnounced => "no address with that id is announced",
        })
    }
}

impl std::error::Error for AddressError {}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;
    use super::*;
    use crate::crypto;
    use crate::wire::mptcp::{AddAddr, MptcpOption};

    fn ip(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(a.into())
    }

    /// (the options of each packet carrying an ADD_ADDR, that ADD_ADDR)
    fn add_addrs(out: &[Packet]) -> Vec<(usize, AddAddr)> {
        out.iter()
            .filter_map(|q| {
                let o = q.options();
                o.iter().find_map(|o| match o {
                    MptcpOption::AddAddr(a) => Some((q.mptcp.len(), *a)),
                    _ => None,
                })
            })
            .collect()
    }

    #[test]
    fn announce_puts_an_add_addr_with_a_valid_hmac_on_the_wire() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        let (sk, ck) = (p.s.conn.local_key(), p.c.conn.local_key());
        assert!(p.s.conn.announce(4, ip(SERVER2), Some(8080)));
        assert!(p.s.conn.is_announced(4));
        let got = add_addrs(&p.s.drain(now));
        assert_eq!(got.len(), 1);
        let (n, a) = got[0];
        assert_eq!(n, 1, "an ADD_ADDR with a port goes alone");
        assert!(!a.echo);
        assert_eq!((a.addr_id, a.addr, a.port), (4, ip(SERVER2), Some(8080)));
        assert_eq!(
            a.hmac,
            Some(crypto::add_addr_hmac(sk, ck, 4, ip(SERVER2), Some(8080)))
        );
        assert_eq!(p.s.mib.AddAddrTx, 1);
        // without a port it rides beside the DSS
        assert!(p.s.conn.announce(5, ip(SERVER2), None));
        let got = add_addrs(&p.s.drain(now));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1.addr_id), (2, 5));
        assert_eq!(p.s.mib.AddAddrTx, 2);
    }

    #[test]
    fn announce_refuses_ids_past_max_announced() {
        let mut p = Pair::server_limits(pm::Limits {
            max_announced: 1,
            ..pm::Limits::default()
        });
        let now = p.now;
        let other = ip([198, 19, 2, 1]);
        assert!(p.s.conn.announce(1, ip(SERVER2), None));
        assert!(!p.s.conn.announce(2, other, None), "a second id");
        assert!(!p.s.conn.is_announced(2));
        // the same id again replaces the queued announcement
        assert!(p.s.conn.announce(1, other, None));
        let got = add_addrs(&p.s.drain(now));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].1.addr_id, got[0].1.addr), (1, other));
        assert_eq!((p.s.mib.AddAddrTx, p.s.mib.AddAddrTxDrop), (1, 1));
    }

    #[test]
    fn remove_address_withdraws_an_announcement() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        assert!(p.s.conn.announce(1, ip(SERVER2), None));
        assert_eq!(add_addrs(&p.s.drain(now)).len(), 1, "sent, its echo lost");
        p.s.conn.remove_address(1);
        assert!(!p.s.conn.is_announced(1));
        assert!(p.s.conn.mp.add_addr.is_empty());
        let out = p.s.drain(now);
        assert!(out
            .iter()
            .any(|q| q.options().contains(&MptcpOption::RemoveAddr { ids: &[1] })));
        assert!(add_addrs(&out).is_empty());
        // the peer learns of it; the ADD_ADDR is not sent again
        p.c.events();
        for q in &out {
            p.c.input(now, q);
        }
        assert_eq!(p.c.mib.RmAddr, 1);
        assert_eq!(p.c.events(), vec![ConnEvent::AddressRemoved { addr_id: 1 }]);
        p.advance(Duration::from_secs(5));
        assert_eq!(p.s.mib.AddAddrRetrans, 0);
        assert_eq!(p.c.mib.AddAddr, 0);
    }

    #[test]
    fn set_subflow_backup_sends_mp_prio_once() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        assert!(!p.s.conn.set_subflow_backup(5, true), "no such subflow");
        assert!(p.s.conn.set_subflow_backup(0, true));
        assert!(p.s.conn.subflows[0].backup);
        let out = p.s.drain(now);
        let prio = MptcpOption::MpPrio {
            backup: true,
            addr_id: None,
        };
        let n = out.iter().filter(|q| q.options().contains(&prio)).count();
        assert_eq!((n, p.s.mib.MPPrioTx), (1, 1));
        assert!(!p.s.conn.subflows[0].prio_pending);
        for q in &out {
            p.c.input(now, q);
        }
        assert!(p.c.conn.subflows[0].peer_backup);
        let a = p.s.pure_ack(now, 0);
        assert!(!a.options().contains(&prio), "only once");
        // a closed subflow cannot change
        p.s.conn.close_subflow(0, true);
        p.s.drain(now);
        assert!(!p.s.conn.set_subflow_backup(0, false));
    }

    #[test]
    fn close_subflow_abortively_resets_it_and_the_connection_goes_on() {
        let mut p = Pair::new(ConnConfig::default());
        let d = pattern(10);
        assert_eq!(p.client_to_server(&d), d);
        let join = v4(CLIENT2, 41000);
        let (ci, si) = p.join(join, v4(SERVER, 80), false);
        let now = p.now;
        p.c.events();
        assert!(p.c.conn.close_subflow(ci, true));
        let out = p.c.drain(now);
        let rst = out
            .iter()
            .find(|q| q.src == join && q.has(tcp::flags::RST))
            .expect("a RST");
        assert!(rst.options().contains(&MptcpOption::MpTcpRst {
            flags: 0,
            reason: rst_reason::ADMIN_PROHIBITED
        }));
        let id = p.c.conn.subflows[ci].id;
        assert_eq!(
            p.c.events(),
            vec![ConnEvent::SubflowClosed {
                id,
                reason: CloseReason::Aborted
            }]
        );
        assert!(!p.c.conn.close_subflow(ci, true), "closed already");
        assert!(!p.c.conn.close_subflow(9, false), "no such subflow");
        for q in &out {
            p.s.input(now, q);
        }
        assert_eq!(p.s.mib.MPRstRx, 1);
        assert_eq!(p.s.conn.subflows[si].closed, Some(CloseReason::Reset));
        assert_eq!(p.s.conn.live_subflows(), 1);
        assert_eq!(p.client_to_server(b"on"), b"on");
        assert!(p.c.conn.error().is_none() && p.s.conn.error().is_none());
    }

    #[test]
    fn set_limits_lets_the_path_manager_open_what_did_not_fit() {
        let cfg = ConnConfig {
            local_addrs: vec![pm::LocalAddr::device(ip(CLIENT2))],
            limits: pm::Limits {
                max_subflows: 0,
                ..pm::Limits::default()
            },
            ..ConnConfig::default()
        };
        let mut p = Pair::with(cfg, ConnConfig::default());
        let now = p.now;
        assert_eq!(p.c.conn.poll_endpoint_event(), None);
        let more = pm::Limits {
            max_subflows: 1,
            ..pm::Limits::default()
        };
        p.c.conn.set_limits(now, more);
        assert_eq!(p.c.conn.limits(), more);
        assert_eq!(
            p.c.conn.poll_endpoint_event(),
            Some(EndpointEvent::OpenSubflow {
                local: SocketAddr::new(ip(CLIENT2), 0),
                remote: v4(SERVER, 80),
                backup: false
            })
        );
        assert_eq!(p.c.conn.poll_endpoint_event(), None);
    }

    #[test]
    fn set_endpoint_announces_a_new_address_and_withdraws_it() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        let ep = pm::LocalAddr {
            announce: true,
            subflow: false,
            ..pm::LocalAddr::device(ip(SERVER2))
        };
        p.s.conn.set_endpoint(now, ep);
        assert_eq!(p.s.conn.local_addr_id(ip(SERVER2)), 1);
        let got = add_addrs(&p.s.drain(now));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].1.addr_id, got[0].1.addr), (1, ip(SERVER2)));
        assert!(p.s.conn.is_announced(1));
        p.s.conn.set_endpoint(
            now,
            pm::LocalAddr {
                announce: false,
                ..ep
            },
        );
        assert!(!p.s.conn.is_announced(1));
        assert!(p.s.conn.mp.add_addr.is_empty(), "no more ADD_ADDR");
        assert_eq!(p.s.conn.mp.rm_addr, [1]);
        // the REMOVE_ADDR leaves at once on a pure ACK, not with some later segment
        let out = p.s.drain(now);
        let removes = out
            .iter()
            .filter(|q| {
                q.options()
                    .iter()
                    .any(|o| matches!(o, MptcpOption::RemoveAddr { .. }))
            })
            .count();
        assert_eq!(removes, 1, "{out:?}");
        assert!(p.s.conn.mp.rm_addr.is_empty());
    }

    /// An MP_PRIO asked for while the client must still put MP_CAPABLE on its ACKs (no DSS
    /// from the server yet) has no room there; it leaves on the first ACK once the server's
    /// DSS arrives.
    #[test]
    fn an_mp_prio_held_behind_mp_capable_leaves_once_fully_established() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        assert!(!p.c.conn.fully_established, "no DSS from the server yet");
        assert!(p.c.conn.set_subflow_backup(0, true));
        for q in p.c.drain(now) {
            p.s.input(now, &q);
        }
        assert!(
            p.c.conn.subflows[0].prio_pending,
            "no room beside MP_CAPABLE"
        );
        // the client's data (MP_CAPABLE with data, no room either) is acknowledged by the
        // server with a DSS on a pure ACK, which the client does not answer: nothing but
        // the held MP_PRIO asks for the client's next ACK
        assert_eq!(p.c.conn.send(b"x"), 1);
        for q in p.c.drain(now) {
            p.s.input(now, &q);
        }
        let acks = p.s.drain(now);
        assert!(acks.iter().all(|q| q.payload.is_empty()));
        for q in acks {
            p.c.input(now, &q);
        }
        assert!(p.c.conn.fully_established);
        let prio = MptcpOption::MpPrio {
            backup: true,
            addr_id: None,
        };
        let out = p.c.drain(now);
        assert!(
            out.iter().any(|q| q.options().contains(&prio)),
            "the MP_PRIO left: {out:?}"
        );
        assert!(!p.c.conn.subflows[0].prio_pending);
    }
}
