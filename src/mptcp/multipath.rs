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
            tracing::warn!("{e}; using fullmesh");
            Box::new(pm::FullMesh::new())
        });
        let sched = sched::by_name(&cfg.scheduler).unwrap_or_else(|| {
            tracing::warn!(
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

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::*;
    use super::*;
    use core::net::Ipv6Addr;

    fn ip(a: [u8; 4]) -> IpAddr {
        IpAddr::V4(a.into())
    }

    /// The client's MP_JOIN SYN for a subflow from `local` to the server's first address.
    fn join_syn(p: &mut Pair, local: SocketAddr) -> (Packet, MpJoin) {
        let now = p.now;
        let a = p.s.pure_ack(now, 0);
        p.c.input(now, &a);
        p.c.conn
            .open_subflow(now, local, v4(SERVER, 80), false, 77, 0xabcd)
            .expect("open_subflow");
        let syn =
            p.c.drain(now)
                .into_iter()
                .find(|q| q.src == local)
                .expect("the SYN");
        let j = syn
            .options()
            .into_iter()
            .find_map(|o| match o {
                MptcpOption::MpJoin(j) => Some(j),
                _ => None,
            })
            .expect("MP_JOIN");
        (syn, j)
    }

    #[test]
    fn open_subflow_refuses_unless_the_connection_is_mptcp() {
        let now = Instant::from_millis(1);
        let mut c = Connection::connect(
            ConnConfig::default(),
            v4(CLIENT, 40000),
            v4(SERVER, 80),
            1,
            1,
            now,
        );
        let (l, r) = (v4(CLIENT2, 41000), v4(SERVER, 80));
        assert_eq!(
            c.open_subflow(now, l, r, false, 1, 2),
            Err(OpenError::NotMptcp),
            "still in the handshake"
        );
        let mut p = Pair::new(ConnConfig {
            mptcp: false,
            ..ConnConfig::default()
        });
        assert_eq!(
            p.c.conn.open_subflow(now, l, r, false, 1, 2),
            Err(OpenError::NotMptcp),
            "plain TCP"
        );
        assert_eq!(p.c.conn.subflows().len(), 1);
        assert_eq!(p.c.conn.poll_endpoint_event(), None);
    }

    #[test]
    fn open_subflow_refuses_duplicates_bad_addresses_and_past_the_limit() {
        let limits = pm::Limits {
            max_subflows: 1,
            ..pm::Limits::default()
        };
        let mut p = Pair::new(ConnConfig {
            limits,
            ..ConnConfig::default()
        });
        let now = p.now;
        let c = &mut p.c.conn;
        let s = v4(SERVER, 80);
        let l = v4(CLIENT2, 41000);
        assert_eq!(
            c.open_subflow(now, v4(CLIENT, 40000), s, false, 1, 2),
            Err(OpenError::Exists)
        );
        let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 80);
        assert_eq!(
            c.open_subflow(now, l, v6, false, 1, 2),
            Err(OpenError::BadAddress)
        );
        let no_port = SocketAddr::new(ip(SERVER), 0);
        assert_eq!(
            c.open_subflow(now, l, no_port, false, 1, 2),
            Err(OpenError::BadAddress)
        );
        let any = SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 80);
        assert_eq!(
            c.open_subflow(now, l, any, false, 1, 2),
            Err(OpenError::BadAddress)
        );
        assert_eq!(c.subflows().len(), 1, "nothing created");
        let i = c
            .open_subflow(now, l, s, true, 1, 2)
            .expect("within the limit");
        assert_eq!(i, 1);
        let sf = &c.subflows()[i];
        assert!(sf.backup);
        assert_eq!((sf.id, sf.remote_addr_id), (2, 0));
        assert_eq!(
            c.open_subflow(now, v4(CLIENT2, 41001), s, false, 1, 2),
            Err(OpenError::Limit)
        );
        c.abort();
        assert_eq!(
            c.open_subflow(now, l, s, false, 1, 2),
            Err(OpenError::Closed)
        );
    }

    #[test]
    fn open_subflow_honours_the_peers_c_flag() {
        let mut p = Pair::handshake(ConnConfig::default(), ConnConfig::default(), |cl, q| {
            if let Some(mut m) = q.mp_capable().filter(|_| !cl && q.has(tcp::flags::SYN)) {
                m.flags |= cap_flags::C;
                q.set_options(&[MptcpOption::MpCapable(m)]);
            }
            true
        });
        assert!(p.c.conn.is_established());
        assert!(p.c.conn.peer_deny_join_initial);
        let now = p.now;
        let l = v4(CLIENT2, 41000);
        assert_eq!(
            p.c.conn.open_subflow(now, l, v4(SERVER, 80), false, 1, 2),
            Err(OpenError::Denied)
        );
        assert!(p
            .c
            .conn
            .open_subflow(now, l, v4(SERVER2, 80), false, 1, 2)
            .is_ok());
    }

    #[test]
    fn a_join_is_held_until_the_server_has_our_key_then_completes() {
        let mut p = Pair::new(ConnConfig::default());
        let now = p.now;
        let l = v4(CLIENT2, 41000);
        let ci =
            p.c.conn
                .open_subflow(now, l, v4(SERVER, 80), false, 77, 0xabcd)
                .expect("open_subflow");
        let held = p.c.conn.subflows[ci].held.expect("held");
        assert!(held > now);
        assert!(p.c.drain(now).is_empty(), "the SYN waits");
        assert_eq!(p.c.conn.poll_timeout(), Some(held));
        // the server's first DSS shows it has our key: the SYN leaves
        let a = p.s.pure_ack(now, 0);
        p.c.input(now, &a);
        let out = p.c.drain(now);
        let syn = out.iter().find(|q| q.src == l).expect("the SYN");
        assert!(syn.has(tcp::flags::SYN) && !syn.has(tcp::flags::ACK));
        assert_eq!(
            syn.options(),
            vec![MptcpOption::MpJoin(MpJoin::Syn {
                backup: false,
                addr_id: 255,
                token: p.s.conn.local_token(),
                nonce: 0xabcd
            })]
        );
        p.c.events();
        p.s.events();
        for q in &out {
            assert!(p.s.deliver(now, q));
        }
        p.exchange();
        let si = p.s.conn.subflow_index(v4(SERVER, 80), l).expect("accepted");
        assert_eq!(p.c.conn.subflows[ci].join, JoinState::Joined);
        assert_eq!(p.s.conn.subflows[si].join, JoinState::Joined);
        assert_eq!((p.c.mib.MPJoinSynAckRx, p.s.mib.MPJoinAckRx), (1, 1));
        assert_eq!(
            p.c.mib.MPJoinSynAckHMacFailure + p.s.mib.MPJoinAckHMacFailure,
            0
        );
        let (cid, sid) = (p.c.conn.subflows[ci].id, p.s.conn.subflows[si].id);
        assert_eq!(
            p.c.events(),
            vec![ConnEvent::SubflowEstablished { id: cid }]
        );
        assert_eq!(
            p.s.events(),
            vec![ConnEvent::SubflowEstablished { id: sid }]
        );
        assert_eq!(p.c.conn.live_subflows(), 2);
    }

    #[test]
    fn accept_join_refuses_past_the_limit_and_other_forms() {
        let mut p = Pair::server_limits(pm::Limits {
            max_subflows: 0,
            ..pm::Limits::default()
        });
        let l = v4(CLIENT2, 41000);
        let (syn, j) = join_syn(&mut p, l);
        let now = p.now;
        let s = &mut p.s;
        let seg = syn.segment();
        assert_eq!(
            s.conn
                .accept_join(now, syn.dst, syn.src, &seg, &j, 1, 2, &mut s.mib),
            Err(rst_reason::LACK_OF_RESOURCES)
        );
        assert_eq!(s.mib.MPJoinRejected, 1);
        let ack = MpJoin::Ack { hmac: [0; 20] };
        assert_eq!(
            s.conn
                .accept_join(now, syn.dst, syn.src, &seg, &ack, 1, 2, &mut s.mib),
            Err(rst_reason::MPTCP_SPECIFIC)
        );
        assert_eq!(s.conn.subflows().len(), 1);
        // a higher limit lets it in, with the flags and id of the SYN
        s.conn.set_limits(
            now,
            pm::Limits {
                max_subflows: 1,
                ..pm::Limits::default()
            },
        );
        let i = s
            .conn
            .accept_join(now, syn.dst, syn.src, &seg, &j, 1, 2, &mut s.mib)
            .expect("accepted");
        let sf = &s.conn.subflows()[i];
        assert_eq!(
            (sf.local, sf.remote, sf.remote_addr_id),
            (syn.dst, syn.src, 255)
        );
        assert!(matches!(
            sf.join,
            JoinState::SynReceived {
                nonce: 2,
                peer_nonce: 0xabcd
            }
        ));
    }

    #[test]
    fn the_path_manager_asks_the_stack_for_a_subflow_to_an_announced_address() {
        let mut p = Pair::new(ConnConfig::default());
        assert_eq!(p.c.conn.poll_endpoint_event(), None);
        assert!(p.s.conn.announce(1, ip(SERVER2), None));
        p.exchange();
        let want = EndpointEvent::OpenSubflow {
            local: SocketAddr::new(ip(CLIENT), 0),
            remote: v4(SERVER2, 80),
            backup: false,
        };
        assert_eq!(p.c.conn.poll_endpoint_event(), Some(want));
        assert_eq!(p.c.conn.poll_endpoint_event(), None);
        assert_eq!(
            p.s.conn.poll_endpoint_event(),
            None,
            "the server opens nothing"
        );
        // the stack could not: the path manager tries again after a backoff
        let now = p.now;
        p.c.conn
            .open_failed(now, SocketAddr::new(ip(CLIENT), 40001), v4(SERVER2, 80));
        assert_eq!(p.c.conn.poll_endpoint_event(), None);
        p.advance(Duration::from_millis(1100));
        assert_eq!(p.c.conn.poll_endpoint_event(), Some(want));
    }
}
