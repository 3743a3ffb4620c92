//! Full-mesh path manager.
//!
//! * Client side: one subflow per (local address, remote address) pair of the same family,
//!   local addresses being the initial one plus every configured [`super::LocalAddr`], remote
//!   addresses the initial one plus every accepted announcement (at most
//!   `max_add_addr_accepted`), within `max_subflows`. The peer's C flag removes the initial
//!   remote address from the mesh.
//! * Either side: configured local addresses with `announce` set (other than the initial
//!   local address) are announced with ADD_ADDR (ids from 1 upwards; at most
//!   `max_announced` at a time) and withdrawn with REMOVE_ADDR when the host loses them.
//! * Limits changed at run time ([`PmEvent::LimitsChanged`]): what did not fit is announced
//!   or joined now.
//! * A client subflow that closed with an error is re-created after a backoff (1 s doubling
//!   to 30 s, see [`Backoff`]) if its addresses are still valid; Linux's in-kernel manager
//!   does not do this. A subflow closed without error is not re-created (its pair is retired
//!   until the local address is added again).
//! * A removed remote address (REMOVE_ADDR) or local address closes the subflows using it.
//!
//! The `kernel` path manager ([`FullMesh::kernel`]) is the same machine with Linux's
//! in-kernel endpoint semantics (`ip mptcp endpoint ... subflow [fullmesh]`) instead of the
//! mesh: on the client, only local addresses flagged [`super::LocalAddr::subflow`] open
//! subflows, each to the peer's initial address, or, flagged
//! [`super::LocalAddr::fullmesh`] too, to every address the peer has (initial and
//! announced); an accepted announcement is joined from each fullmesh address, or, when
//! there is none, from the initial subflow's local address (Linux's
//! `fill_local_addresses_vec` / `fill_remote_addresses_vec`). Announcing, limits, removal
//! and re-creation are as above.

use super::{
    earliest, same_family, Backoff, CommandQueue, PathManager, PmCommand, PmContext, PmEvent,
    RemoteAddr,
};
use crate::time::Instant;
use std::net::{IpAddr, SocketAddr};

/// Announced remote addresses remembered.
const MAX_REMOTES: usize = 8;
/// Local addresses we announce at a time.
const MAX_ANNOUNCED: usize = 8;
/// Address pairs with retry / retired state.
const MAX_PAIRS: usize = 16;

#[derive(Clone, Copy, Debug)]
struct Initial {
    local: SocketAddr,
    remote: SocketAddr,
    server_side: bool,
    deny_join_initial: bool,
    local_gone: bool,
    remote_gone: bool,
}

#[derive(Clone, Copy, Debug)]
struct Pair {
    local: IpAddr,
    remote: SocketAddr,
    backoff: Backoff,
    /// Closed without error: not re-created by the mesh.
    retired: bool,
}

#[derive(Clone, Debug)]
pub struct FullMesh {
    initial: Option<Initial>,
    /// Accepted announcements, port 0 already resolved to the initial remote port.
    remotes: [Option<RemoteAddr>; MAX_REMOTES],
    announced: [Option<(IpAddr, u8)>; MAX_ANNOUNCED],
    /// Next ADD_ADDR id; 0 once ids 1..=255 are used up.
    next_addr_id: u8,
    pairs: [Option<Pair>; MAX_PAIRS],
    /// Commands were refused by a full queue: recompute at this instant.
    recheck: Option<Instant>,
    /// Announcements ignored because of `max_add_addr_accepted` (statistics).
    pub add_addr_ignored: u64,
    /// Linux's endpoint semantics instead of the mesh (the `kernel` path manager).
    kernel: bool,
}

impl Default for FullMesh {
    fn default() -> Self {
        FullMesh {
            initial: None,
            remotes: [None; MAX_REMOTES],
            announced: [None; MAX_ANNOUNCED],
            next_addr_id: 1,
            pairs: [None; MAX_PAIRS],
            recheck: None,
            add_addr_ignored: 0,
            kernel: false,
        }
    }
}

impl FullMesh {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `kernel` path manager: Linux's in-kernel endpoint semantics (module docs).
    pub fn kernel() -> Self {
        FullMesh {
            kernel: true,
            ..Self::default()
        }
    }

    /// With Linux's endpoint semantics: whether the client opens a subflow from local
    /// address `l` to remote `r` (the initial pair excluded by the caller).
    fn kernel_wants(&self, ctx: &PmContext, init: Initial, l: IpAddr, r: SocketAddr) -> bool {
        if l == init.local.ip() {
            // announcements are joined from the initial address unless fullmesh endpoints
            // take them
            let fullmesh_locals = ctx
                .local_addrs
                .iter()
                .any(|x| x.subflow && x.fullmesh && x.addr != l && self.local_valid(ctx, x.addr));
            return r != init.remote && !fullmesh_locals;
        }
        match ctx.local(l) {
            Some(ep) if ep.subflow => ep.fullmesh || r == init.remote,
            _ => false,
        }
    }

    fn client(&self) -> Option<Initial> {
        self.initial.filter(|i| !i.server_side)
    }

    fn resolve(&self, addr: SocketAddr) -> SocketAddr {
        match (addr.port(), self.initial) {
            (0, Some(i)) => SocketAddr::new(addr.ip(), i.remote.port()),
            _ => addr,
        }
    }

    /// Remember an announced address; false if refused by `max_add_addr_accepted` or the
    /// table size.
    fn accept_remote(&mut self, ctx: &PmContext, addr_id: u8, addr: SocketAddr) -> bool {
        let addr = self.resolve(addr);
        if self.initial.is_some_and(|i| i.remote == addr) {
            return true;
        }
        if let Some(slot) = self
            .remotes
            .iter_mut()
            .flatten()
            .find(|r| r.addr_id == addr_id)
        {
            slot.addr = addr; // id reused: the address changed
            return true;
        }
        if self.remotes.iter().flatten().any(|r| r.addr == addr) {
            return true;
        }
        let limit = usize::try_from(ctx.limits.max_add_addr_accepted).unwrap_or(usize::MAX);
        let count = self.remotes.iter().flatten().count();
        match self.remotes.iter_mut().find(|r| r.is_none()) {
            Some(free) if count < limit => {
                *free = Some(RemoteAddr { addr_id, addr });
                true
            }
            _ => false,
        }
    }

    fn local_valid(&self, ctx: &PmContext, l: IpAddr) -> bool {
        !l.is_unspecified()
            && (ctx.local(l).is_some()
                || self
                    .initial
                    .is_some_and(|i| i.local.ip() == l && !i.local_gone))
    }

    fn remote_valid(&self, r: SocketAddr) -> bool {
        let Some(i) = self.initial else { return false };
        if r == i.remote {
            return !i.deny_join_initial && !i.remote_gone;
        }
        self.remotes.iter().flatten().any(|x| x.addr == r)
    }

    fn pair(&self, l: IpAddr, r: SocketAddr) -> Option<&Pair> {
        self.pairs
            .iter()
            .flatten()
            .find(|p| p.local == l && p.remote == r)
    }

    fn pair_entry(&mut self, l: IpAddr, r: SocketAddr) -> Option<&mut Pair> {
        let idx = self
            .pairs
            .iter()
            .position(|p| p.is_some_and(|p| p.local == l && p.remote == r))
            .or_else(|| self.pairs.iter().position(Option::is_none))
            .or_else(|| {
                // Full: evict a pair without a pending retry.
                self.pairs
                    .iter()
                    .position(|p| p.is_some_and(|p| p.backoff.due().is_none()))
            })?;
        let slot = self.pairs.get_mut(idx)?;
        if !slot.is_some_and(|p| p.local == l && p.remote == r) {
            *slot = Some(Pair {
                local: l,
                remote: r,
                backoff: Backoff::new(),
                retired: false,
            });
        }
        slot.as_mut()
    }

    fn forget_pairs(&mut self, pred: impl Fn(&Pair) -> bool) {
        for slot in self.pairs.iter_mut() {
            if slot.as_ref().is_some_and(&pred) {
                *slot = None;
            }
        }
    }

    /// Open the missing subflows of the mesh (client side).
    fn mesh(
        &mut self,
        ctx: &PmContext,
        skip: Option<u32>,
        extra_local: Option<IpAddr>,
        out: &mut CommandQueue,
    ) {
        let Some(init) = self.client() else { return };
        for r in ctx.remote_addrs {
            let _ = self.accept_remote(ctx, r.addr_id, r.addr);
        }
        let remotes = self.remotes;
        let locals = || {
            core::iter::once(init.local.ip())
                .chain(ctx.local_addrs.iter().map(|l| l.addr))
                .chain(extra_local)
        };
        let mut total = ctx.live_subflows(skip).count();
        for (li, l) in locals().enumerate() {
            if locals().take(li).any(|x| x == l)
                || !(self.local_valid(ctx, l) || extra_local == Some(l))
            {
                continue;
            }
            let remote_list =
                core::iter::once(init.remote).chain(remotes.iter().flatten().map(|r| r.addr));
            for r in remote_list {
                if !same_family(l, r.ip()) || !self.remote_valid(r) {
                    continue;
                }
                if self.kernel && !self.kernel_wants(ctx, init, l, r) {
                    continue;
                }
                if ctx
                    .live_subflows(skip)
                    .any(|s| s.local.ip() == l && s.remote == r)
                {
                    continue;
                }
                if self
                    .pair(l, r)
                    .is_some_and(|p| p.retired || p.backoff.due().is_some())
                {
                    continue;
                }
                if total >= ctx.limits.max_total() {
                    return;
                }
                let backup = ctx.local(l).is_some_and(|x| x.backup);
                let cmd = PmCommand::OpenSubflow {
                    local: l,
                    local_port: 0,
                    remote: r,
                    backup,
                };
                if !out.push(cmd) {
                    self.recheck = Some(ctx.now);
                    return;
                }
                total += 1;
            }
        }
    }

    fn announce(&mut self, ctx: &PmContext, addr: IpAddr, out: &mut CommandQueue) {
        let port = ctx.local(addr).map_or(0, |l| l.port);
        if self.initial.is_some_and(|i| i.local.ip() == addr)
            || self.announced.iter().flatten().any(|(a, _)| *a == addr)
            || self.next_addr_id == 0
        {
            return;
        }
        let limit = usize::try_from(ctx.limits.max_announced).unwrap_or(usize::MAX);
        if self.announced.iter().flatten().count() >= limit {
            return;
        }
        let Some(free) = self.announced.iter().position(Option::is_none) else {
            return;
        };
        let addr_id = self.next_addr_id;
        if !out.push(PmCommand::Announce {
            addr_id,
            addr,
            port: (port != 0).then_some(port),
        }) {
            self.recheck = Some(ctx.now);
            return;
        }
        self.next_addr_id = self.next_addr_id.wrapping_add(1);
        if let Some(slot) = self.announced.get_mut(free) {
            *slot = Some((addr, addr_id));
        }
    }

    fn announce_all(&mut self, ctx: &PmContext, out: &mut CommandQueue) {
        for l in ctx.local_addrs {
            if l.announce {
                self.announce(ctx, l.addr, out);
            }
        }
    }

    fn close_where(
        ctx: &PmContext,
        out: &mut CommandQueue,
        pred: impl Fn(&super::PmSubflow) -> bool,
    ) {
        for s in ctx.subflows.iter().filter(|s| pred(s)) {
            out.push(PmCommand::CloseSubflow { id: s.id });
        }
    }
}

impl PathManager for FullMesh {
    fn name(&self) -> &'static str {
        if self.kernel {
            "kernel"
        } else {
            "fullmesh"
        }
    }

    fn on_event(&mut self, ctx: &PmContext, ev: &PmEvent, out: &mut CommandQueue) {
        match *ev {
            PmEvent::ConnectionEstablished {
                local,
                remote,
                server_side,
                peer_deny_join_initial,
            } => {
                *self = FullMesh {
                    initial: Some(Initial {
                        local,
                        remote,
                        server_side,
                        deny_join_initial: peer_deny_join_initial,
                        local_gone: false,
                        remote_gone: false,
                    }),
                    kernel: self.kernel,
                    ..FullMesh::default()
                };
                self.announce_all(ctx, out);
                self.mesh(ctx, None, None, out);
            }
            PmEvent::SubflowEstablished {
                id, local, backup, ..
            } => {
                if !backup && ctx.local(local.ip()).is_some_and(|l| l.backup) {
                    out.push(PmCommand::SetBackup { id, backup: true });
                }
            }
            PmEvent::SubflowClosed {
                id,
                local,
                remote,
                error,
            } => {
                if self.client().is_some()
                    && self.local_valid(ctx, local.ip())
                    && self.remote_valid(remote)
                {
                    let now = ctx.now;
                    if let Some(p) = self.pair_entry(local.ip(), remote) {
                        p.retired = !error;
                        if error {
                            p.backoff.on_failure(now);
                        } else {
                            p.backoff.cancel();
                        }
                    }
                }
                // A slot may have been freed for a pair that did not fit before.
                self.mesh(ctx, Some(id), None, out);
            }
            PmEvent::AddressAnnounced { addr_id, addr } => {
                if !self.accept_remote(ctx, addr_id, addr) {
                    self.add_addr_ignored += 1;
                }
                self.mesh(ctx, None, None, out);
            }
            PmEvent::AddressRemoved { addr_id } => {
                let Some(init) = self.initial.as_mut() else {
                    return;
                };
                let target = if addr_id == 0 {
                    init.remote_gone = true;
                    init.remote
                } else {
                    let Some(slot) = self
                        .remotes
                        .iter_mut()
                        .find(|r| r.is_some_and(|r| r.addr_id == addr_id))
                    else {
                        return;
                    };
                    let Some(r) = slot.take() else { return };
                    r.addr
                };
                Self::close_where(ctx, out, |s| s.remote == target);
                self.forget_pairs(|p| p.remote == target);
            }
            PmEvent::LocalAddressAdded { addr } => {
                self.forget_pairs(|p| p.local == addr);
                if let Some(i) = self.initial.as_mut() {
                    if i.local.ip() == addr {
                        i.local_gone = false;
                    }
                }
                if ctx.local(addr).is_some_and(|l| l.announce) {
                    self.announce(ctx, addr, out);
                }
                self.mesh(ctx, None, Some(addr), out);
            }
            PmEvent::LimitsChanged => {
                if self.initial.is_some() {
                    self.announce_all(ctx, out);
                    self.mesh(ctx, None, None, out);
                }
            }
            PmEvent::LocalAddressRemoved { addr } => {
                Self::close_where(ctx, out, |s| s.local.ip() == addr);
                if let Some(slot) = self
                    .announced
                    .iter_mut()
                    .find(|a| a.is_some_and(|(a, _)| a == addr))
                {
                    if let Some((_, addr_id)) = slot.take() {
                        out.push(PmCommand::RemoveAddress { addr_id });
                    }
                }
                self.forget_pairs(|p| p.local == addr);
                if let Some(i) = self.initial.as_mut() {
                    if i.local.ip() == addr {
                        i.local_gone = true;
                    }
                }
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.pairs
            .iter()
            .flatten()
            .filter_map(|p| p.backoff.due())
            .fold(self.recheck, |acc, d| earliest(acc, Some(d)))
    }

    fn on_timeout(&mut self, ctx: &PmContext, out: &mut CommandQueue) {
        let now = ctx.now;
        let mut total = ctx.subflows.len();
        for idx in 0..MAX_PAIRS {
            let Some(Some(mut p)) = self.pairs.get(idx).copied() else {
                continue;
            };
            if !p.backoff.take_due(now) {
                continue;
            }
            let covered = ctx
                .subflows
                .iter()
                .any(|s| s.local.ip() == p.local && s.remote == p.remote);
            if self.client().is_some()
                && self.local_valid(ctx, p.local)
                && self.remote_valid(p.remote)
                && !covered
                && total < ctx.limits.max_total()
            {
                let backup = ctx.local(p.local).is_some_and(|x| x.backup);
                let cmd = PmCommand::OpenSubflow {
                    local: p.local,
                    local_port: 0,
                    remote: p.remote,
                    backup,
                };
                if out.push(cmd) {
                    total += 1;
                } else {
                    self.recheck = Some(now);
                }
            }
            if let Some(slot) = self.pairs.get_mut(idx) {
                *slot = Some(p);
            }
        }
        if self.recheck.is_some_and(|t| t <= now) {
            self.recheck = None;
            self.announce_all(ctx, out);
            self.mesh(ctx, None, None, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pm::{Limits, LocalAddr};

    #[test]
    fn announcements_over_limit_are_counted_and_unused() {
        let locals = [LocalAddr::device("198.19.1.2".parse().unwrap())];
        let ctx = PmContext {
            now: Instant::ZERO,
            local_addrs: &locals,
            subflows: &[],
            remote_addrs: &[],
            limits: Limits {
                max_subflows: 8,
                max_add_addr_accepted: 1,
                ..Limits::default()
            },
        };
        let mut pm = FullMesh::new();
        let mut q = CommandQueue::new();
        pm.on_event(
            &ctx,
            &PmEvent::ConnectionEstablished {
                local: "198.19.1.2:1000".parse().unwrap(),
                remote: "198.19.30.1:80".parse().unwrap(),
                server_side: false,
                peer_deny_join_initial: true,
            },
            &mut q,
        );
        assert!(q.is_empty());
        for (id, a) in [
            (1, "198.19.31.1:0"),
            (2, "198.19.32.1:0"),
            (1, "198.19.33.1:81"),
        ] {
            pm.on_event(
                &ctx,
                &PmEvent::AddressAnnounced {
                    addr_id: id,
                    addr: a.parse().unwrap(),
                },
                &mut q,
            );
        }
        assert_eq!(pm.add_addr_ignored, 1);
        // Id 1 re-announced with a new address replaces the old one.
        assert_eq!(pm.remotes.iter().flatten().count(), 1);
        assert_eq!(
            pm.remotes[0].map(|r| r.addr),
            Some("198.19.33.1:81".parse().unwrap())
        );
        let first = q.pop();
        assert_eq!(
            first,
            Some(PmCommand::OpenSubflow {
                local: "198.19.1.2".parse().unwrap(),
                local_port: 0,
                remote: "198.19.31.1:80".parse().unwrap(),
                backup: false
            })
        );
    }
}
