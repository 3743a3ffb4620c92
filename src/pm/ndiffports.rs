//! ndiffports: N subflows on the initial address pair, each from a different (ephemeral)
//! source port, so that ECMP/load balancers hash them onto different paths. Client side only.
//! Subflows lost with an error are re-created after a backoff (1 s doubling to 30 s).
//!
//! The peer's C flag forbids joins to the initial remote address, which is the only address
//! this manager uses: with it set, nothing is created.

use super::{Backoff, CommandQueue, PathManager, PmCommand, PmContext, PmEvent};
use crate::time::Instant;
use std::net::SocketAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Initial {
    local: SocketAddr,
    remote: SocketAddr,
    active: bool,
}

#[derive(Clone, Debug)]
pub struct NDiffPorts {
    n: u32,
    initial: Option<Initial>,
    backoff: Backoff,
    /// Set when commands were refused by a full queue: refill at this instant.
    recheck: Option<Instant>,
}

impl NDiffPorts {
    /// `n` subflows in total, the initial one included (at least 1).
    pub fn new(n: u32) -> Self {
        NDiffPorts {
            n: n.max(1),
            initial: None,
            backoff: Backoff::new(),
            recheck: None,
        }
    }

    /// Configured number of subflows.
    pub fn n(&self) -> u32 {
        self.n
    }

    fn on_pair(init: &Initial, local: SocketAddr, remote: SocketAddr) -> bool {
        local.ip() == init.local.ip() && remote == init.remote
    }

    /// Open subflows until `n` (bounded by the limits) exist on the initial pair.
    fn fill(&mut self, ctx: &PmContext, skip: Option<u32>, out: &mut CommandQueue) {
        let Some(init) = self.initial.filter(|i| i.active) else {
            return;
        };
        let mut total = ctx.live_subflows(skip).count();
        let mut on_pair = ctx
            .live_subflows(skip)
            .filter(|s| Self::on_pair(&init, s.local, s.remote))
            .count();
        let want = usize::try_from(self.n).unwrap_or(usize::MAX);
        while on_pair < want && total < ctx.limits.max_total() {
            let cmd = PmCommand::OpenSubflow {
                local: init.local.ip(),
                local_port: 0,
                remote: init.remote,
                backup: ctx.local(init.local.ip()).is_some_and(|l| l.backup),
            };
            if !out.push(cmd) {
                self.recheck = Some(ctx.now);
                return;
            }
            on_pair += 1;
            total += 1;
        }
    }
}

impl PathManager for NDiffPorts {
    fn name(&self) -> &'static str {
        "ndiffports"
    }

    fn on_event(&mut self, ctx: &PmContext, ev: &PmEvent, out: &mut CommandQueue) {
        match *ev {
            PmEvent::ConnectionEstablished {
                local,
                remote,
                server_side,
                peer_deny_join_initial,
            } => {
                self.initial = Some(Initial {
                    local,
                    remote,
                    active: !server_side && !peer_deny_join_initial,
                });
                self.backoff = Backoff::new();
                self.recheck = None;
                self.fill(ctx, None, out);
            }
            PmEvent::SubflowClosed {
                local,
                remote,
                error,
                ..
            } => {
                let Some(init) = self.initial.filter(|i| i.active) else {
                    return;
                };
                if error && Self::on_pair(&init, local, remote) {
                    self.backoff.on_failure(ctx.now);
                }
            }
            PmEvent::LimitsChanged => self.fill(ctx, None, out),
            PmEvent::AddressRemoved { addr_id: 0 } => self.stop(),
            PmEvent::LocalAddressRemoved { addr }
                if self.initial.is_some_and(|i| i.local.ip() == addr) =>
            {
                self.stop()
            }
            _ => {}
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        super::earliest(self.backoff.due(), self.recheck)
    }

    fn on_timeout(&mut self, ctx: &PmContext, out: &mut CommandQueue) {
        let retry = self.backoff.take_due(ctx.now);
        let recheck = self.recheck.is_some_and(|t| t <= ctx.now);
        if recheck {
            self.recheck = None;
        }
        if retry || recheck {
            self.fill(ctx, None, out);
        }
    }
}

impl NDiffPorts {
    /// The initial pair is gone: create nothing more.
    fn stop(&mut self) {
        if let Some(i) = self.initial.as_mut() {
            i.active = false;
        }
        self.backoff.cancel();
        self.recheck = None;
    }
}
