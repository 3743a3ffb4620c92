//! The multipath half of a connection: MP_JOIN (both roles), ADD_ADDR / REMOVE_ADDR,
//! MP_PRIO, MP_FASTCLOSE, and the glue to the path manager and the scheduler.

use super::{ConnConfig, ConnEvent, Connection, JoinState, Mib, Mode, Role, Subflow};
use crate::crypto;
use crate::pm::{
    self, CommandQueue, PathManager, PmCommand, PmContext, PmEvent, PmSubflow, RemoteAddr,
};
use crate::sched::{self, Scheduler, SubflowView};
use crate::tcp::{self, SegmentIn};
use crate::time::{Duration, Instant};
use crate::wire::mptcp::{rst_reason, AddAddr, MpJoin, MptcpOption};
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
const JOIN_ACK_RETRIES: u8 = 6;

/// An address to signal.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AddAddrTx {
    addr_id: u8,
    addr: IpAddr,
    port: Option<u16>,
    echo: bool,
    /// Waiting for an echo (after the first transmission) until this instant.
    timer: Option<Instant>,
    retries: u8,
    /// Sent at least once and waiting to be sent again at `timer`.
    sent: bool,
}

/// Identity map used to borrow one-address REMOVE_ADDR id lists without allocation.
static IDS: [u8; 256] = {
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
    pm: Box<dyn PathManager>,
    sched: Box<dyn Scheduler>,
    cmds: CommandQueue,
    /// Subflows the path manager asked for; the stack opens them (it owns ports and ISNs).
    pub(crate) opens: VecDeque<PmCommand>,
    pub(crate) remote_addrs: Vec<RemoteAddr>,
    add_addr: VecDeque<AddAddrTx>,
    rm_addr: VecDeque<u8>,
    /// We aborted: RSTs carry MP_FASTCLOSE.
    pub(crate) fastclose: bool,
    pm_started: bool,
    /// Our address ids announced (ADD_ADDR) and not withdrawn, as a bitmap.
    announced: [u64; 4],
    /// Announcements refused by `max_announced` since the last look (into the MIB).
    announce_refused: u64,
    /// The path manager's ADD_ADDR ids and ours, for its REMOVE_ADDR commands.
    pm_ids: Vec<(u8, u8)>,
    /// REMOVE_ADDR sent: close our subflows on that address at this instant.
    rm_close: Vec<(u8, Instant)>,
    /// Subflows closed because a local endpoint went away, not yet in the MIB (RmSubflow).
    rm_subflow: u64,
    /// The segment being emitted carries a signal (see `take_signal_sent`).
    signal_sent: bool,
    pub(crate) views: Vec<SubflowView>,
    scratch: Vec<PmSubflow>,
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
        self.cfg
            .local_addrs
            .iter()
            .filter(|l| Some(l.addr) != initial)
            .position(|l| l.addr == addr)
            .map_or(255, |i| (i + 1).min(254) as u8)
    }

    fn is_backup_addr(&self, addr: IpAddr) -> bool {
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

    fn remote_addr_id(&self, remote: SocketAddr) -> u8 {
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

    /// The stack takes the path manager's requests to open subflows.
    pub fn take_open_request(&mut self) -> Option<(IpAddr, u16, SocketAddr, bool)> {
        match self.mp.opens.pop_front()? {
            PmCommand::OpenSubflow {
                local,
                local_port,
                remote,
                backup,
            } => Some((local, local_port, remote, backup)),
            _ => None,
        }
    }

    /// A subflow the stack could not open (no port, bad address): tell the path manager.
    pub fn open_failed(&mut self, now: Instant, local: SocketAddr, remote: SocketAddr) {
        let ev = PmEvent::SubflowClosed {
            id: 0,
            local,
            remote,
            error: true,
        };
        self.pm_event(now, &ev);
    }

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

    fn queue_add_addr(&mut self, t: AddAddrTx) {
        if self.mp.add_addr.len() >= 32 {
            return;
        }
        self.mp.add_addr.push_back(t);
        if let Some(i) = self.best_subflow() {
            self.subflows[i].tcb.request_ack();
        }
    }

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

    /// Close our subflows on address `addr_id` (after a REMOVE_ADDR's grace period).
    fn close_removed(&mut self, addr_id: u8) {
        for i in 0..self.subflows.len() {
            let s = &self.subflows[i];
            if s.local_addr_id == addr_id && s.closed.is_none() && s.join != JoinState::Initial {
                self.close_subflow(i, false);
            }
        }
    }

    /// The best subflow not on our address `addr_id` (any if all are).
    fn best_subflow_except(&self, addr_id: u8) -> Option<usize> {
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

    fn is_announced(&self, id: u8) -> bool {
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
                self.mp.rm_addr.push_back(id);
                self.mp.announced[usize::from(id / 64)] &= !(1u64 << (id % 64));
                self.mp.add_addr.retain(|t| t.echo || t.addr_id != id);
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
    fn call_pm(
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

    fn run_pm_commands(&mut self) {
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
