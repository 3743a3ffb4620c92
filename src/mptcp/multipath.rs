//! The multipath half of a connection: MP_JOIN (both roles), ADD_ADDR / REMOVE_ADDR,
//! MP_PRIO, MP_FASTCLOSE, and the glue to the path manager and the scheduler.

use super::{ConnConfig, Connection, JoinState, Mib, Mode, Role, Subflow};
use crate::pm::{self, CommandQueue, PathManager, PmCommand, PmEvent, PmSubflow, RemoteAddr};
use crate::sched::{self, Scheduler, SubflowView};
use crate::tcp::{self, SegmentIn};
use crate::time::{Duration, Instant};
use crate::wire::mptcp::{rst_reason, MpJoin};
use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::collections::VecDeque;

/// Why a subflow could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The connection is not (or no longer) MPTCP: fallback, or still handshaking.
    NotMptcp,
    /// The subflow limit is reached.
    Limit,
    /// The peer forbade joins to this address (C flag).
    Denied,
    /// A subflow with this 4-tuple exists.
    Exists,
    /// The connection is closing or closed.
    Closed,
    /// Local and remote families differ, or an address is unusable.
    BadAddress,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            OpenError::NotMptcp => "the connection is not using MPTCP",
            OpenError::Limit => "subflow limit reached",
            OpenError::Denied => "the peer does not accept joins to that address",
            OpenError::Exists => "a subflow with that tuple exists",
            OpenError::Closed => "the connection is closing",
            OpenError::BadAddress => "bad address",
        };
        f.write_str(s)
    }
}

impl std::error::Error for OpenError {}

/// Most MP_JOIN third-ACK retransmissions before the subflow is reset.
pub(super) const JOIN_ACK_RETRIES: u8 = 6;

/// An address to signal.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AddAddrTx {
    pub(super) addr_id: u8,
    pub(super) addr: IpAddr,
    pub(super) port: Option<u16>,
    pub(super) echo: bool,
    /// Waiting for an echo (after the first transmission) until this instant.
    pub(super) timer: Option<Instant>,
    pub(super) retries: u8,
    /// Sent at least once and waiting to be sent again at `timer`.
    pub(super) sent: bool,
}

/// Identity map used to borrow one-address REMOVE_ADDR id lists without allocation.
pub(super) static IDS: [u8; 256] = {
    let mut a = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        a[i] = i as u8;
        i += 1;
    }
    a
};

/// Multipath state of a connection.
pub(crate) struct MpState {
    pub(super) pm: Box<dyn PathManager>,
    pub(super) sched: Box<dyn Scheduler>,
    pub(super) cmds: CommandQueue,
    /// Subflows the path manager asked for; the stack opens them (it owns ports and ISNs).
    pub(crate) opens: VecDeque<PmCommand>,
    pub(crate) remote_addrs: Vec<RemoteAddr>,
    pub(super) add_addr: VecDeque<AddAddrTx>,
    pub(super) rm_addr: VecDeque<u8>,
    /// We aborted: RSTs carry MP_FASTCLOSE.
    pub(crate) fastclose: bool,
    pub(super) pm_started: bool,
    /// Our address ids announced (ADD_ADDR) and not withdrawn, as a bitmap.
    pub(super) announced: [u64; 4],
    /// Ids the application gave addresses itself (`Connection::announce_address`, Linux's
    /// userspace path manager): they take precedence over the configured numbering.
    pub(super) app_ids: Vec<(IpAddr, u8)>,
    /// Announcements refused by `max_announced` since the last look (into the MIB).
    pub(super) announce_refused: u64,
    /// The path manager's ADD_ADDR ids and ours, for its REMOVE_ADDR commands.
    pub(super) pm_ids: Vec<(u8, u8)>,
    /// REMOVE_ADDR sent: close our subflows on that address at this instant.
    pub(super) rm_close: Vec<(u8, Instant)>,
    /// Subflows closed because a local endpoint went away, not yet in the MIB (RmSubflow).
    pub(super) rm_subflow: u64,
    /// The segment being emitted carries a signal (see `take_signal_sent`).
    pub(super) signal_sent: bool,
    pub(crate) views: Vec<SubflowView>,
    pub(super) scratch: Vec<PmSubflow>,
}

impl fmt::Debug for MpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpState")
            .field("pm", &self.pm.name())
            .field("sched", &self.sched.name())
            .field("remote_addrs", &self.remote_addrs)
            .finish_non_exhaustive()
    }
}

impl MpState {
    pub(crate) fn new(cfg: &ConnConfig) -> Self {
        let pm = pm::by_name(&cfg.path_manager).unwrap_or_else(|e| {
            log::warn!("{e}; using fullmesh");
            Box::new(pm::FullMesh::new())
        });
        let sched = sched::by_name(&cfg.scheduler).unwrap_or_else(|| {
            log::warn!(
                "unknown scheduler {:?}; using {}",
                cfg.scheduler,
                sched::DEFAULT
            );
            Box::new(sched::MinRtt::new())
        });
        MpState {
            pm,
            sched,
            cmds: CommandQueue::new(),
            opens: VecDeque::new(),
            remote_addrs: Vec::new(),
            add_addr: VecDeque::new(),
            rm_addr: VecDeque::new(),
            fastclose: false,
            pm_started: false,
            announced: [0; 4],
            app_ids: Vec::new(),
            announce_refused: 0,
            pm_ids: Vec::new(),
            rm_close: Vec::new(),
            rm_subflow: 0,
            signal_sent: false,
            views: Vec::with_capacity(8),
            scratch: Vec::with_capacity(8),
        }
    }

    /// Heap bytes of the multipath state's own tables (path manager and scheduler objects
    /// included at their size; their internal tables are small and bounded).
    pub(crate) fn heap_bytes(&self) -> usize {
        use core::mem::size_of;
        core::mem::size_of_val(&*self.pm)
            + core::mem::size_of_val(&*self.sched)
            + self.opens.capacity() * size_of::<PmCommand>()
            + self.remote_addrs.capacity() * size_of::<RemoteAddr>()
            + self.add_addr.capacity() * size_of::<AddAddrTx>()
            + self.rm_addr.capacity()
            + self.pm_ids.capacity() * size_of::<(u8, u8)>()
            + self.rm_close.capacity() * size_of::<(u8, Instant)>()
            + self.views.capacity() * size_of::<SubflowView>()
            + self.scratch.capacity() * size_of::<PmSubflow>()
    }

    /// Whether a signal went out since the last call (and clear it).
    pub(crate) fn take_signal_sent(&mut self) -> bool {
        core::mem::take(&mut self.signal_sent)
    }

    pub(crate) fn scheduler(&mut self) -> &mut dyn Scheduler {
        self.sched.as_mut()
    }

    pub(crate) fn pm_name(&self) -> &'static str {
        self.pm.name()
    }

    pub(crate) fn sched_name(&self) -> &'static str {
        self.sched.name()
    }
}

impl Connection {
    // ----- address ids -----------------------------------------------------------------

    /// Our address id for a local address: 0 for the initial subflow's, else its position
    /// among the other configured addresses plus one (Linux numbers its endpoints from 1 in
    /// the order added, and the initial subflow's address keeps 0: with addresses A, B and a
    /// connection from A, B gets 1 as it would in Linux).
    pub fn local_addr_id(&self, addr: IpAddr) -> u8 {
        let initial = self.subflows.first().map(|s| s.local.ip());
        if initial == Some(addr) {
            return 0;
        }
        if addr.is_unspecified() {
            return 255;
        }
        if let Some(&(_, id)) = self.mp.app_ids.iter().find(|(a, _)| *a == addr) {
            return id;
        }
        self.cfg
            .local_addrs
            .iter()
            .filter(|l| Some(l.addr) != initial)
            .position(|l| l.addr == addr)
            .map_or(255, |i| (i + 1).min(254) as u8)
    }

    pub(super) fn is_backup_addr(&self, addr: IpAddr) -> bool {
        self.cfg
            .local_addrs
            .iter()
            .any(|l| l.addr == addr && l.backup)
    }

    /// Subflows not closed.
    pub fn live_subflows(&self) -> usize {
        self.subflows.iter().filter(|s| s.closed.is_none()).count()
    }

    // ----- opening subflows ------------------------------------------------------------

    /// Open a subflow with MP_JOIN from `local` to `remote` (the stack chose the port, the
    /// ISN and the nonce). Returns the new subflow's index; its id is `subflows()[i].id`.
    #[allow(clippy::too_many_arguments)]
    pub fn open_subflow(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
        iss: u32,
        nonce: u32,
    ) -> Result<usize, OpenError> {
        // RFC 8684 3.2: joins need the keys exchanged; the initiator has them once its
        // third ACK went out, the listener once it received it.
        if self.mode != Mode::Mptcp || !self.subflows.first().is_some_and(|s| s.established) {
            return Err(OpenError::NotMptcp);
        }
        // Joins are legal for the whole life of the connection: also after our own send
        // side is finished (DATA_FIN acknowledged), e.g. for an ADD_ADDR that arrives late;
        // only once both DATA_FINs are through do the subflows close.
        if self.error.is_some() || self.subflows_closing {
            return Err(OpenError::Closed);
        }
        if local.is_ipv4() != remote.is_ipv4() || remote.port() == 0 || remote.ip().is_unspecified()
        {
            return Err(OpenError::BadAddress);
        }
        if self.live_subflows() >= self.cfg.limits.max_total() {
            return Err(OpenError::Limit);
        }
        let initial_remote = self.subflows.first().map(|s| s.remote);
        if self.peer_deny_join_initial && Some(remote) == initial_remote {
            return Err(OpenError::Denied);
        }
        if self
            .subflow_index(local, remote)
            .is_some_and(|i| self.subflows[i].closed.is_none())
        {
            return Err(OpenError::Exists);
        }
        let mut tcfg = super::subflow_tcp_config(&self.cfg, local.ip());
        // the join's SYN may be lost like any SYN (seen: under load, one in the whole test
        // suite); RFC 6298's 1 s initial RTO then outlasts a whole fast transfer. The
        // initial subflow's RTT is a hint for the new path's: retry after 3 of them, at
        // least 200 ms (a spurious SYN retransmission costs one packet)
        if let Some(srtt) = self.subflows.first().and_then(|s| s.tcb.srtt()) {
            tcfg.rto_initial = (srtt * 3).clamp(Duration::from_millis(200), tcfg.rto_initial);
        }
        let tcb = tcp::Tcb::connect(tcfg, iss, now);
        let id = self.alloc_subflow_id();
        let mut sf = Subflow::new(id, tcb, local, remote, JoinState::SynSent { nonce });
        sf.backup = backup || self.is_backup_addr(local.ip());
        sf.local_addr_id = self.local_addr_id(local.ip());
        sf.remote_addr_id = self.remote_addr_id(remote);
        sf.tos = self.cfg.tos;
        // RFC 8684 3.1: until the server sent a DSS, it may not have our key (the third ACK
        // may be lost) and so cannot know the token; Linux also refuses joins before it
        // considers the connection fully established. Hold the SYN until then.
        if self.role == Role::Client && !self.fully_established {
            let srtt = self.subflows[0]
                .tcb
                .srtt()
                .unwrap_or(Duration::from_millis(100));
            let wait = (srtt * 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
            sf.held = Some(now + wait);
        }
        self.subflows.push(sf);
        Ok(self.subflows.len() - 1)
    }

    pub(super) fn remote_addr_id(&self, remote: SocketAddr) -> u8 {
        if self
            .subflows
            .first()
            .is_some_and(|s| s.remote.ip() == remote.ip())
        {
            return 0;
        }
        self.mp
            .remote_addrs
            .iter()
            .find(|r| r.addr.ip() == remote.ip())
            .map_or(0, |r| r.addr_id)
    }

    /// Passive side of MP_JOIN: a SYN carrying MP_JOIN for this connection's token.
    #[allow(clippy::too_many_arguments)]
    pub fn accept_join(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        syn: &SegmentIn<'_>,
        join: &MpJoin,
        iss: u32,
        nonce: u32,
        mib: &mut Mib,
    ) -> Result<usize, u8> {
        let MpJoin::Syn {
            backup,
            addr_id,
            nonce: peer_nonce,
            ..
        } = *join
        else {
            return Err(rst_reason::MPTCP_SPECIFIC);
        };
        if self.mode != Mode::Mptcp
            || !self.fully_established
            || self.error.is_some()
            || self.subflows_closing
        {
            mib.MPJoinRejected += 1;
            return Err(rst_reason::MPTCP_SPECIFIC);
        }
        if self.live_subflows() >= self.cfg.limits.max_total() {
            mib.MPJoinRejected += 1;
            return Err(rst_reason::LACK_OF_RESOURCES);
        }
        let tcb = tcp::Tcb::accept(
            super::subflow_tcp_config(&self.cfg, local.ip()),
            syn,
            iss,
            now,
        );
        let id = self.alloc_subflow_id();
        let mut sf = Subflow::new(
            id,
            tcb,
            local,
            remote,
            JoinState::SynReceived { nonce, peer_nonce },
        );
        sf.peer_backup = backup;
        sf.backup = self.is_backup_addr(local.ip());
        sf.remote_addr_id = addr_id;
        sf.local_addr_id = self.local_addr_id(local.ip());
        sf.tos = self.cfg.tos;
        self.subflows.push(sf);
        Ok(self.subflows.len() - 1)
    }

    /// The next request for the stack that owns this connection (quinn-proto's endpoint
    /// events). The stack polls after every call into the connection and answers each.
    pub fn poll_endpoint_event(&mut self) -> Option<EndpointEvent> {
        match self.mp.opens.pop_front()? {
            PmCommand::OpenSubflow {
                local,
                local_port,
                remote,
                backup,
            } => Some(EndpointEvent::OpenSubflow {
                local: SocketAddr::new(local, local_port),
                remote,
                backup,
            }),
            _ => None,
        }
    }

    /// The stack's answer to an [`EndpointEvent::OpenSubflow`] it could not carry out (no
    /// port, address not the stack's, refused by [`Self::open_subflow`]): the path manager
    /// hears of it as a subflow that closed with an error.
    pub fn open_failed(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        let ev = PmEvent::SubflowClosed {
            id: 0,
            local,
            remote,
            error: true,
        };
        self.pm_event(now, &ev);
    }
}

/// What a connection asks of the stack that owns it, from
/// [`Connection::poll_endpoint_event`]. The connection is sans-IO and owns no resource
/// shared between connections; what needs one (a port, an ISN, a nonce, the 4-tuple table)
/// goes through here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointEvent {
    /// The path manager wants a subflow from `local` (port 0: any free one) to `remote`.
    /// The stack answers with [`Connection::open_subflow`] (after choosing the port, the
    /// ISN and the nonce, and recording the 4-tuple), or with [`Connection::open_failed`].
    OpenSubflow {
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
    },
}

/// Per-subflow socket options (the draft's MPTCP_SUB_SETSOCKOPT targets).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubflowOptions {
    /// TCP_MAXSEG: the MSS we advertise and use (only before the SYN is sent).
    pub mss: Option<u16>,
    /// IP_TOS of the subflow's packets.
    pub tos: Option<u8>,
    /// TCP_NODELAY.
    pub nodelay: Option<bool>,
    /// TCP_USER_TIMEOUT (`Some(None)` clears it).
    pub user_timeout: Option<Option<Duration>>,
}

impl Connection {
    /// Apply per-subflow options to subflow `idx`; false if it does not exist.
    pub fn apply_subflow_options(&mut self, idx: usize, o: SubflowOptions) -> bool {
        let Some(sf) = self.subflows.get_mut(idx) else {
            return false;
        };
        if let Some(mss) = o.mss {
            // never above what the link MTU allows
            let local = sf.local.ip();
            let link = super::subflow_tcp_config(&self.cfg, local).mss;
            let sf = &mut self.subflows[idx];
            sf.tcb.set_mss(mss.min(link));
        }
        let sf = &mut self.subflows[idx];
        if let Some(tos) = o.tos {
            sf.tos = tos;
        }
        if let Some(n) = o.nodelay {
            sf.tcb.set_nodelay(n);
        }
        if let Some(t) = o.user_timeout {
            sf.tcb.set_user_timeout(t);
        }
        true
    }

    /// Index of the subflow with this id.
    pub fn subflow_by_id(&self, id: u32) -> Option<usize> {
        self.subflows.iter().position(|s| s.id == id)
    }

    /// Scheduler and path manager in use.
    pub fn policy_names(&self) -> (&'static str, &'static str) {
        (self.mp.sched_name(), self.mp.pm_name())
    }
}
