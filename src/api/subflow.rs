//! The draft's subflow operations (draft-hesmans-mptcp-socket) on an `MptcpStream`:
//! list subflows, read a subflow's tuple, open one on a chosen tuple, close one (gracefully
//! or abortively), get and set per-subflow options, per-subflow TCP_INFO-like statistics.

use super::MptcpStream;
use crate::mptcp::{Connection, JoinState, OpenError, Subflow, SubflowOptions};
use crate::stack::SubflowError;
use crate::tcp::{CloseReason, State};
use core::fmt;
use core::net::SocketAddr;
use std::time::Duration;

/// Errors of the subflow operations, mirroring the draft's errno values. Converts into
/// `std::io::Error` (see the `From` impl) for `?` in `io::Result` functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubflowApiError {
    /// The connection is not MPTCP (fallback, or not yet established): EOPNOTSUPP.
    NotMptcp,
    /// No subflow with that id (ids are never reused): EINVAL.
    UnknownId,
    /// The option is not supported at that level: ENOPROTOOPT.
    NotSupported,
    /// A bad argument (address family mismatch, value out of range): EINVAL.
    InvalidArgument,
    /// The connection is closed or the handle is stale: ENOTCONN.
    NotConnected,
    /// Limits reached or no port: EAGAIN / EADDRNOTAVAIL.
    Unavailable,
    /// The peer does not accept joins to that address (C flag): ECONNREFUSED.
    Refused,
}

impl SubflowApiError {
    /// The errno the C ABI reports.
    pub fn errno(self) -> i32 {
        match self {
            SubflowApiError::NotMptcp => libc_errno::EOPNOTSUPP,
            SubflowApiError::UnknownId | SubflowApiError::InvalidArgument => libc_errno::EINVAL,
            SubflowApiError::NotSupported => libc_errno::ENOPROTOOPT,
            SubflowApiError::NotConnected => libc_errno::ENOTCONN,
            SubflowApiError::Unavailable => libc_errno::EADDRNOTAVAIL,
            SubflowApiError::Refused => libc_errno::ECONNREFUSED,
        }
    }
}

/// Linux errno values (x86-64, aarch64, riscv: the generic table).
pub mod libc_errno {
    pub const EINVAL: i32 = 22;
    pub const EOPNOTSUPP: i32 = 95;
    pub const ENOPROTOOPT: i32 = 92;
    pub const ENOTCONN: i32 = 107;
    pub const EADDRNOTAVAIL: i32 = 99;
    pub const ECONNREFUSED: i32 = 111;
}

impl fmt::Display for SubflowApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SubflowApiError::NotMptcp => "connection is not using MPTCP",
            SubflowApiError::UnknownId => "unknown subflow id",
            SubflowApiError::NotSupported => "option not supported",
            SubflowApiError::InvalidArgument => "invalid argument",
            SubflowApiError::NotConnected => "not connected",
            SubflowApiError::Unavailable => "resources unavailable (limit or port)",
            SubflowApiError::Refused => {
                "the peer refused the subflow (C flag, or a reset during the join)"
            }
        };
        f.write_str(s)
    }
}

impl std::error::Error for SubflowApiError {}

/// For `?` in functions returning `io::Result`. The kinds: `NotMptcp` and `NotSupported`
/// are `Unsupported`, `UnknownId` is `NotFound`, `InvalidArgument` is `InvalidInput`,
/// `NotConnected` is `NotConnected`, `Unavailable` is `AddrNotAvailable`, `Refused` is
/// `ConnectionRefused`. The `SubflowApiError` itself (and so its [`errno`](SubflowApiError::errno))
/// stays reachable with `io::Error::get_ref` / `into_inner` and `downcast`.
impl From<SubflowApiError> for std::io::Error {
    fn from(e: SubflowApiError) -> std::io::Error {
        use std::io::ErrorKind;
        let kind = match e {
            SubflowApiError::NotMptcp | SubflowApiError::NotSupported => ErrorKind::Unsupported,
            SubflowApiError::UnknownId => ErrorKind::NotFound,
            SubflowApiError::InvalidArgument => ErrorKind::InvalidInput,
            SubflowApiError::NotConnected => ErrorKind::NotConnected,
            SubflowApiError::Unavailable => ErrorKind::AddrNotAvailable,
            SubflowApiError::Refused => ErrorKind::ConnectionRefused,
        };
        std::io::Error::new(kind, e)
    }
}

impl From<SubflowError> for SubflowApiError {
    fn from(e: SubflowError) -> Self {
        match e {
            SubflowError::InvalidHandle => SubflowApiError::NotConnected,
            SubflowError::UnknownId => SubflowApiError::UnknownId,
            SubflowError::NoPorts => SubflowApiError::Unavailable,
            SubflowError::Open(OpenError::NotMptcp) => SubflowApiError::NotMptcp,
            SubflowError::Open(OpenError::Limit) => SubflowApiError::Unavailable,
            SubflowError::Open(OpenError::Denied) => SubflowApiError::Refused,
            SubflowError::Open(OpenError::Closed) => SubflowApiError::NotConnected,
            SubflowError::Open(OpenError::Exists | OpenError::BadAddress) => {
                SubflowApiError::InvalidArgument
            }
        }
    }
}

/// One subflow as listed by `subflows()` (the draft's `mptcp_sub_status`, plus more).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubflowStatus {
    pub id: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// TCP handshake (and MP_JOIN) complete, and the subflow is not closing: it can carry
    /// data (ESTABLISHED or CLOSE-WAIT, not closed by the application).
    pub established: bool,
    /// MP_JOIN third ACK sent, not yet acknowledged (the draft's pre_established).
    pub pre_established: bool,
    /// Backup priority, ours or the peer's (the draft's low_prio).
    pub backup: bool,
    /// The initial subflow (the draft's "master").
    pub initial: bool,
    /// Closed, and why.
    pub closed: Option<CloseReason>,
}

/// Closing a subflow: the draft's `how`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseHow {
    /// FIN after its data is acknowledged; unacknowledged data is reinjected elsewhere.
    Graceful,
    /// RST now (with MP_TCPRST); unacknowledged data is reinjected elsewhere.
    Abortive,
}

/// Per-subflow statistics, like Linux's `struct tcp_info`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SubflowInfo {
    pub state: u8,
    pub rtt: Option<Duration>,
    pub rttvar: Option<Duration>,
    pub rto: Duration,
    pub cwnd: u32,
    pub ssthresh: u32,
    pub snd_mss: u16,
    pub rcv_mss: u16,
    pub bytes_sent: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub data_sent: u64,
    pub data_received: u64,
    pub retransmits: u64,
    pub in_flight: u32,
}

/// A per-subflow option value (the draft's MPTCP_SUB_GETSOCKOPT / SETSOCKOPT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubflowOpt {
    NoDelay(bool),
    MaxSeg(u16),
    Tos(u8),
    UserTimeout(Option<Duration>),
    Backup(bool),
}

/// Which option to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubflowOptName {
    NoDelay,
    MaxSeg,
    Tos,
    UserTimeout,
    Backup,
}

fn state_code(s: State) -> u8 {
    // Linux's TCP_* state numbers (include/net/tcp_states.h)
    match s {
        State::Established => 1,
        State::SynSent => 2,
        State::SynReceived => 3,
        State::FinWait1 => 4,
        State::FinWait2 => 5,
        State::TimeWait => 6,
        State::Closed => 7,
        State::CloseWait => 8,
        State::LastAck => 9,
        State::Listen => 10,
        State::Closing => 11,
    }
}

impl MptcpStream {
    fn with_conn<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, SubflowApiError>,
    ) -> Result<R, SubflowApiError> {
        let id = self.id();
        self.stack().with_stack(|s| match s.connection_mut(id) {
            Some(c) => f(c),
            None => Err(SubflowApiError::NotConnected),
        })
    }

    fn mptcp_conn<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, SubflowApiError>,
    ) -> Result<R, SubflowApiError> {
        self.with_conn(|c| {
            if c.mode() != crate::mptcp::Mode::Mptcp {
                return Err(SubflowApiError::NotMptcp);
            }
            f(c)
        })
    }

    /// Like `mptcp_conn`, for operations that change subflows: a finished connection keeps
    /// its record (readable: final statistics, like TCP_INFO on a closed socket) until the
    /// handle is dropped, but its subflows are no longer the application's to change.
    fn live_mptcp_conn<R>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, SubflowApiError>,
    ) -> Result<R, SubflowApiError> {
        self.mptcp_conn(|c| {
            if c.is_closed() {
                return Err(SubflowApiError::NotConnected);
            }
            f(c)
        })
    }

    /// List the subflows (the draft's MPTCP_GET_SUB_IDS), closed ones included until the
    /// connection forgets them.
    pub fn subflows(&self) -> Result<Vec<SubflowStatus>, SubflowApiError> {
        self.mptcp_conn(|c| Ok(c.subflows().iter().map(subflow_status).collect()))
    }

    /// Local and remote address of a subflow (MPTCP_GET_SUB_TUPLE).
    pub fn subflow_tuple(&self, id: u32) -> Result<(SocketAddr, SocketAddr), SubflowApiError> {
        self.mptcp_conn(|c| {
            let i = c.subflow_by_id(id).ok_or(SubflowApiError::UnknownId)?;
            let s = &c.subflows()[i];
            Ok((s.local, s.remote))
        })
    }

    /// Open a subflow from `local` (port 0: any) to `remote` (MPTCP_OPEN_SUB_TUPLE).
    /// Returns its id at once; use `wait_subflow_established` to wait for the join.
    pub fn open_subflow(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
    ) -> Result<u32, SubflowApiError> {
        self.open_subflow_with(local, remote, backup, SubflowOptions::default())
    }

    /// `open_subflow` with options applied before the SYN is sent (e.g. TCP_MAXSEG, IP_TOS).
    pub fn open_subflow_with(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
        opts: SubflowOptions,
    ) -> Result<u32, SubflowApiError> {
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(SubflowApiError::InvalidArgument);
        }
        let now = self.stack().now();
        let id = self.id();
        let r = self.stack().with_stack(|s| {
            match s.connection(id) {
                None => return Err(SubflowApiError::NotConnected),
                Some(c) if c.is_closed() => return Err(SubflowApiError::NotConnected),
                Some(c) if c.mode() != crate::mptcp::Mode::Mptcp => {
                    return Err(SubflowApiError::NotMptcp)
                }
                _ => {}
            }
            s.open_subflow_with(now, id, local, remote, backup, Some(opts))
                .map_err(SubflowApiError::from)
        });
        self.stack().wake_driver();
        r
    }

    /// Wait until subflow `id` is established; fails if it closes first.
    pub fn wait_subflow_established(
        &self,
        id: u32,
        timeout: Duration,
    ) -> Result<(), SubflowApiError> {
        let deadline = self.stack().now() + timeout;
        let conn = self.id();
        // blocks on the stack's condition variable, woken after every driver round
        let r = self.stack().wait_for(Some(deadline), |stack| {
            let c = match stack.connection_mut(conn) {
                None => return Some(Ok(Err(SubflowApiError::NotConnected))),
                Some(c) => c,
            };
            if c.mode() != crate::mptcp::Mode::Mptcp {
                return Some(Ok(Err(SubflowApiError::NotMptcp)));
            }
            if c.is_closed() {
                return Some(Ok(Err(SubflowApiError::NotConnected)));
            }
            let Some(st) = c.subflows().iter().find(|s| s.id == id).map(subflow_status) else {
                return Some(Ok(Err(SubflowApiError::UnknownId)));
            };
            if st.established {
                Some(Ok(Ok(())))
            } else if st.closed.is_some() {
                Some(Ok(Err(SubflowApiError::Refused)))
            } else {
                None
            }
        });
        match r {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(SubflowApiError::Unavailable),
            // the driver stopped
            Err(_) => Err(SubflowApiError::NotConnected),
        }
    }

    /// The connection's limits (Linux's `ip mptcp limits`: additional subflows, accepted
    /// announcements, addresses announced).
    pub fn limits(&self) -> Result<crate::pm::Limits, SubflowApiError> {
        self.with_conn(|c| Ok(c.limits()))
    }

    /// Change the connection's limits while it runs (lowering closes nothing; raising lets
    /// the path manager join or announce what did not fit). Connections made with
    /// `connect_with`/`bind_with` take their initial limits from `ConnConfig::limits`,
    /// others from the stack's default.
    pub fn set_limits(&self, limits: crate::pm::Limits) -> Result<(), SubflowApiError> {
        let now = self.stack().now();
        let id = self.id();
        let r = self.stack().with_stack(|s| {
            s.set_limits(now, id, limits)
                .map_err(|_| SubflowApiError::NotConnected)
        });
        self.stack().wake_driver();
        r
    }

    /// Announce one of the stack's addresses to the peer under `addr_id` (1..=255), as
    /// Linux's userspace path manager does (`ANNOUNCE`): ADD_ADDR, retransmitted until the
    /// peer echoes it; `addr.port()` other than 0 goes in the ADD_ADDR (joins to that port).
    /// From then on `addr_id` is this connection's id for the address. Errors:
    /// `InvalidArgument` for id 0, an address that is not the stack's or is the initial
    /// subflow's, or an id in use for another address; `Unavailable` when the connection's
    /// `announced` limit is reached. With the `manual` path manager the application alone
    /// decides what is announced.
    pub fn announce_address(&self, addr_id: u8, addr: SocketAddr) -> Result<(), SubflowApiError> {
        let id = self.id();
        let r = self.stack().with_stack(|s| {
            if !s.config().addrs.contains(&addr.ip()) {
                return Err(SubflowApiError::InvalidArgument);
            }
            let c = s.connection_mut(id).ok_or(SubflowApiError::NotConnected)?;
            if c.is_closed() {
                return Err(SubflowApiError::NotConnected);
            }
            if c.mode() != crate::mptcp::Mode::Mptcp {
                return Err(SubflowApiError::NotMptcp);
            }
            let port = (addr.port() != 0).then_some(addr.port());
            c.announce_address(addr_id, addr.ip(), port)
                .map_err(address_error)
        });
        self.stack().wake_driver();
        r
    }

    /// Withdraw an address announced with [`Self::announce_address`] (Linux's userspace
    /// path manager: `REMOVE`): REMOVE_ADDR to the peer, and the subflows from the address
    /// close. `UnknownId` if no address with that id is announced.
    pub fn remove_address(&self, addr_id: u8) -> Result<(), SubflowApiError> {
        let r = self.live_mptcp_conn(|c| c.withdraw_address(addr_id).map_err(address_error));
        self.stack().wake_driver();
        r
    }

    /// Close a subflow (MPTCP_CLOSE_SUB_ID). Data it carried that the peer did not
    /// acknowledge is sent again on the other subflows: nothing is lost.
    pub fn close_subflow(&self, id: u32, how: CloseHow) -> Result<(), SubflowApiError> {
        let r = self.live_mptcp_conn(|c| {
            let i = c.subflow_by_id(id).ok_or(SubflowApiError::UnknownId)?;
            if c.close_subflow(i, how == CloseHow::Abortive) {
                Ok(())
            } else {
                Err(SubflowApiError::UnknownId) // already closed
            }
        });
        self.stack().wake_driver();
        r
    }

    /// Per-subflow statistics (TCP_INFO through MPTCP_SUB_GETSOCKOPT).
    pub fn subflow_info(&self, id: u32) -> Result<SubflowInfo, SubflowApiError> {
        self.mptcp_conn(|c| {
            let i = c.subflow_by_id(id).ok_or(SubflowApiError::UnknownId)?;
            Ok(info_of(&c.subflows()[i]))
        })
    }

    /// The statistics of the first subflow not closed (of the first one if all are), in
    /// any mode, plain TCP and fallback included: what TCP_INFO on the connection gives.
    pub fn first_subflow_info(&self) -> Result<SubflowInfo, SubflowApiError> {
        self.with_conn(|c| {
            let subflows = c.subflows();
            subflows
                .iter()
                .find(|s| s.closed.is_none())
                .or(subflows.first())
                .map(info_of)
                .ok_or(SubflowApiError::NotConnected)
        })
    }

    /// Read a per-subflow option (MPTCP_SUB_GETSOCKOPT).
    pub fn subflow_option(
        &self,
        id: u32,
        name: SubflowOptName,
    ) -> Result<SubflowOpt, SubflowApiError> {
        self.mptcp_conn(|c| {
            let i = c.subflow_by_id(id).ok_or(SubflowApiError::UnknownId)?;
            Ok(option_of(&c.subflows()[i], name))
        })
    }

    /// Set a per-subflow option (MPTCP_SUB_SETSOCKOPT). TCP_MAXSEG on an established
    /// subflow only lowers the MSS it sends with.
    pub fn set_subflow_option(&self, id: u32, opt: SubflowOpt) -> Result<(), SubflowApiError> {
        let r = self.live_mptcp_conn(|c| {
            let i = c.subflow_by_id(id).ok_or(SubflowApiError::UnknownId)?;
            if c.subflows()[i].closed.is_some() {
                return Err(SubflowApiError::UnknownId);
            }
            if let SubflowOpt::Backup(b) = opt {
                c.set_subflow_backup(i, b);
                return Ok(());
            }
            c.apply_subflow_options(i, engine_options(opt)?);
            Ok(())
        });
        self.stack().wake_driver();
        r
    }
}

impl MptcpStream {
    /// A connection-level TCP option (setsockopt at level IPPROTO_TCP on the connection, as
    /// on a Linux socket): applied to every subflow not closed, in every mode (MPTCP, plain
    /// TCP, after fallback). Subflows opened later start from the connection's
    /// configuration. `Backup` is refused (it is per subflow).
    pub fn set_connection_option(&self, opt: SubflowOpt) -> Result<(), SubflowApiError> {
        let o = engine_options(opt)?;
        let r = self.with_conn(|c| {
            for i in 0..c.subflows().len() {
                if c.subflows()[i].closed.is_none() {
                    c.apply_subflow_options(i, o);
                }
            }
            Ok(())
        });
        self.stack().wake_driver();
        r
    }

    /// A connection-level TCP option, read from the first subflow not closed (the initial
    /// one while it lives), in every mode. TCP_MAXSEG is the MSS it sends with.
    pub fn connection_option(&self, name: SubflowOptName) -> Result<SubflowOpt, SubflowApiError> {
        self.with_conn(|c| {
            let s = c
                .subflows()
                .iter()
                .find(|s| s.closed.is_none())
                .or_else(|| c.subflows().first())
                .ok_or(SubflowApiError::NotConnected)?;
            Ok(option_of(s, name))
        })
    }
}

/// An option's current value on one subflow.
fn option_of(s: &Subflow, name: SubflowOptName) -> SubflowOpt {
    match name {
        SubflowOptName::NoDelay => SubflowOpt::NoDelay(s.tcb.nodelay()),
        SubflowOptName::MaxSeg => SubflowOpt::MaxSeg(s.tcb.stats().snd_mss),
        SubflowOptName::Tos => SubflowOpt::Tos(s.tos),
        SubflowOptName::UserTimeout => SubflowOpt::UserTimeout(s.tcb.user_timeout()),
        SubflowOptName::Backup => SubflowOpt::Backup(s.backup),
    }
}

/// The engine settings an option sets (all but `Backup`, which is a path-manager matter:
/// `InvalidArgument`, as for an MSS outside 88..=65495).
fn engine_options(opt: SubflowOpt) -> Result<SubflowOptions, SubflowApiError> {
    let mut o = SubflowOptions::default();
    match opt {
        SubflowOpt::NoDelay(v) => o.nodelay = Some(v),
        SubflowOpt::MaxSeg(m) if (88..=65495).contains(&m) => o.mss = Some(m),
        SubflowOpt::Tos(t) => o.tos = Some(t),
        SubflowOpt::UserTimeout(t) => o.user_timeout = Some(t),
        SubflowOpt::MaxSeg(_) | SubflowOpt::Backup(_) => {
            return Err(SubflowApiError::InvalidArgument)
        }
    }
    Ok(o)
}

fn info_of(s: &crate::mptcp::Subflow) -> SubflowInfo {
    let st = s.tcb.stats();
    SubflowInfo {
        state: state_code(s.tcb.state()),
        rtt: st.srtt,
        rttvar: st.rttvar,
        rto: st.rto,
        cwnd: st.cwnd,
        ssthresh: st.ssthresh,
        snd_mss: st.snd_mss,
        rcv_mss: st.rcv_mss,
        bytes_sent: st.bytes_sent,
        bytes_acked: st.bytes_acked,
        bytes_received: st.bytes_received,
        data_sent: s.data_sent,
        data_received: s.data_received,
        retransmits: st.retransmits,
        in_flight: st.bytes_in_flight,
    }
}

/// What the API shows of a subflow.
fn subflow_status(s: &Subflow) -> SubflowStatus {
    SubflowStatus {
        id: s.id,
        local: s.local,
        remote: s.remote,
        // usable for data: not closing (by us) nor in a closing state
        established: s.established
            && s.closed.is_none()
            && !s.closing_by_app
            && matches!(s.tcb.state(), State::Established | State::CloseWait),
        pre_established: matches!(s.join, JoinState::AckPending { .. }),
        backup: s.backup || s.peer_backup,
        initial: s.join == JoinState::Initial,
        closed: s.closed,
    }
}

fn address_error(e: crate::mptcp::AddressError) -> SubflowApiError {
    use crate::mptcp::AddressError as E;
    match e {
        E::ReservedId | E::BadAddress | E::IdInUse => SubflowApiError::InvalidArgument,
        E::Limit => SubflowApiError::Unavailable,
        E::NotAnnounced => SubflowApiError::UnknownId,
    }
}

#[cfg(test)]
mod tests {
    use super::SubflowApiError as E;
    use std::io::{self, ErrorKind};

    #[test]
    fn converts_into_io_errors_with_a_kind_per_variant() {
        for (e, kind) in [
            (E::NotMptcp, ErrorKind::Unsupported),
            (E::UnknownId, ErrorKind::NotFound),
            (E::NotSupported, ErrorKind::Unsupported),
            (E::InvalidArgument, ErrorKind::InvalidInput),
            (E::NotConnected, ErrorKind::NotConnected),
            (E::Unavailable, ErrorKind::AddrNotAvailable),
            (E::Refused, ErrorKind::ConnectionRefused),
        ] {
            let io_err = io::Error::from(e);
            assert_eq!(io_err.kind(), kind, "{e:?}");
            assert_eq!(io_err.to_string(), e.to_string());
            // the typed error (and its errno) is still there
            let back = io_err.into_inner().unwrap().downcast::<E>().unwrap();
            assert_eq!(*back, e);
            assert_eq!(back.errno(), e.errno());
        }
    }
}
