//! Path managers: which subflows a connection opens, which addresses it announces.
//!
//! A path manager is a per-connection policy, "events in, commands out": the connection
//! reports [`PmEvent`]s with a [`PmContext`] snapshot, the path manager pushes [`PmCommand`]s
//! into a fixed-capacity [`CommandQueue`]. It never imports connection internals (the MPTCP
//! connection depends on this module, never the reverse) and never reads a clock: time comes
//! in `PmContext::now`, and [`PathManager::poll_timeout`] / [`PathManager::on_timeout`] drive
//! timers (retry backoff).
//!
//! # Contract with the connection
//! * After each `on_event`/`on_timeout` call the connection drains the queue and executes the
//!   commands before the next call.
//! * A subflow the connection opened (for any reason) is listed in [`PmContext::subflows`]
//!   (`established: false` while joining) until it closes; its end is reported with
//!   [`PmEvent::SubflowClosed`] (`error: true` for a reset, a timeout or a failed join). The
//!   path manager ignores the closed subflow's id while handling that event, whether or not
//!   it is still listed.
//! * A command that cannot be executed (no route, no port) is reported as a failed
//!   `SubflowClosed` or simply dropped; path managers never rely on commands succeeding.
//! * [`Limits::max_subflows`] counts subflows besides the initial one (Linux
//!   `ip mptcp limits set subflows N`): at most `max_subflows + 1` subflows exist at a time.
//!   [`Limits::max_add_addr_accepted`] bounds how many announced remote addresses are used:
//!   the connection itself drops announcements beyond it (echoed, counted `AddAddrDrop`, not
//!   reported to the path manager, not listed in [`PmContext::remote_addrs`]).
//!   [`Limits::max_announced`] bounds the distinct addresses announced; the connection
//!   refuses further `Announce` commands.
//! * Joins are legal for the whole life of the connection (until both DATA_FINs are
//!   through), also after our own send side is finished; every join is an independent
//!   subflow with its own SYN retransmission and give-up, so a join to an unreachable
//!   address never delays another.
//! * The peer's C flag (`peer_deny_join_initial`, RFC 8684 section 3.1) forbids joins to the
//!   initial remote address: no path manager here opens an extra subflow towards it.
//!
//! Adding a path manager: one file with a type implementing [`PathManager`], then a branch
//! in [`by_name`]. `on_event` must not allocate.

pub use crate::registry::RegisterError;
use crate::registry::Registry;
use crate::time::{Duration, Instant};
use std::net::{IpAddr, SocketAddr};

pub mod fullmesh;
pub mod manual;
pub mod ndiffports;

pub use fullmesh::FullMesh;
pub use manual::Manual;
pub use ndiffports::NDiffPorts;

/// Something that happened to the connection or the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmEvent {
    /// The initial subflow is established and MPTCP is in use.
    ConnectionEstablished {
        local: SocketAddr,
        remote: SocketAddr,
        server_side: bool,
        /// The peer's C flag: no MP_JOIN to the initial remote address.
        peer_deny_join_initial: bool,
    },
    SubflowEstablished {
        id: u32,
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
    },
    SubflowClosed {
        id: u32,
        local: SocketAddr,
        remote: SocketAddr,
        error: bool,
    },
    /// ADD_ADDR from the peer; port 0 means "same port as the initial subflow's remote".
    AddressAnnounced { addr_id: u8, addr: SocketAddr },
    /// REMOVE_ADDR from the peer (id 0 = the initial subflow's remote address).
    AddressRemoved { addr_id: u8 },
    /// The host gained an address.
    LocalAddressAdded { addr: IpAddr },
    /// The host lost an address.
    LocalAddressRemoved { addr: IpAddr },
    /// The connection's limits changed at run time (`PmContext::limits` has the new ones):
    /// subflows or announcements that did not fit may now.
    LimitsChanged,
}

/// Something the connection should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PmCommand {
    /// MP_JOIN a new subflow. `local_port` 0 = ephemeral.
    OpenSubflow {
        local: IpAddr,
        local_port: u16,
        remote: SocketAddr,
        backup: bool,
    },
    CloseSubflow {
        id: u32,
    },
    /// Send ADD_ADDR; `port: None` = same port as the initial subflow.
    Announce {
        addr_id: u8,
        addr: IpAddr,
        port: Option<u16>,
    },
    /// Send REMOVE_ADDR.
    RemoveAddress {
        addr_id: u8,
    },
    /// Send MP_PRIO on subflow `id`.
    SetBackup {
        id: u32,
        backup: bool,
    },
}

/// A configured local address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalAddr {
    pub addr: IpAddr,
    /// Subflows from this address are backup subflows.
    pub backup: bool,
    /// Announce this address to the peer (ADD_ADDR).
    pub announce: bool,
    /// Announce it with this port (Linux's `ip mptcp endpoint add ADDR port P signal`); 0 =
    /// no port in the ADD_ADDR, so the peer joins the initial subflow's port. mptun takes
    /// MP_JOIN SYNs on any port (by token), so no listener is needed for it.
    pub port: u16,
    /// Linux's `subflow` endpoint flag, used by the `kernel` path manager: the client opens
    /// a subflow from this address (to the peer's initial address; with `fullmesh`, to every
    /// address the peer has). The `fullmesh` path manager meshes every address and ignores
    /// it. Addresses given as devices (`--tun`, `mptun_init`) have it set.
    pub subflow: bool,
    /// Linux's `fullmesh` endpoint flag (`kernel` path manager): subflows from this address
    /// to every address of the peer, initial and announced; announcements are then joined
    /// from the fullmesh addresses rather than from the initial subflow's address.
    pub fullmesh: bool,
}

impl LocalAddr {
    /// An address given as a device (`--tun`, `mptun_init`, the runtime builder, the
    /// stack's own addresses): Linux's `subflow` flag set, nothing announced, no backup.
    pub fn device(addr: IpAddr) -> LocalAddr {
        LocalAddr {
            addr,
            backup: false,
            announce: false,
            port: 0,
            subflow: true,
            fullmesh: false,
        }
    }
}

/// A subflow of the connection, as the path manager sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmSubflow {
    pub id: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub established: bool,
}

/// An address the peer announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteAddr {
    pub addr_id: u8,
    /// Port 0 = same port as the initial subflow's remote.
    pub addr: SocketAddr,
}

/// Resource limits, with Linux's meaning (see the module documentation): per connection
/// (`ConnConfig::limits`, changeable at run time with `Stack::set_limits`), the stack's
/// `StackConfig::conn.limits` being the global default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Subflows besides the initial one, created or accepted (`ip mptcp limits set
    /// subflows N`). Joins still in their handshake count.
    pub max_subflows: u32,
    /// Announcements (ADD_ADDR) from the peer accepted for use (`add_addr_accepted M`).
    /// 0 = announcements are echoed and counted (`AddAddrDrop`) but ignored.
    pub max_add_addr_accepted: u32,
    /// Distinct addresses we announce (ADD_ADDR) at a time (Linux: the number of `signal`
    /// endpoints). 0 = announce nothing.
    pub max_announced: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_subflows: 8,
            max_add_addr_accepted: 8,
            max_announced: 8,
        }
    }
}

impl core::str::FromStr for Limits {
    type Err = String;

    /// `subflows=N,add_addr_accepted=M,announced=K` (any subset, in any order; what is not
    /// given keeps its default). `ip mptcp limits`'s spelling with spaces is accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut l = Limits::default();
        let words: Vec<&str> = s.split([',', ' ', '=']).filter(|w| !w.is_empty()).collect();
        if words.len() % 2 != 0 {
            return Err(format!("limits {s:?}: expected NAME=VALUE pairs"));
        }
        for kv in words.chunks(2) {
            let (k, v) = (kv[0], kv[1]);
            let n: u32 = v
                .parse()
                .map_err(|_| format!("limits: {k}: {v:?} is not a number"))?;
            match k {
                "subflows" | "max_subflows" => l.max_subflows = n,
                "add_addr_accepted" | "accepted" => l.max_add_addr_accepted = n,
                "announced" | "add_addr_signal" | "signal" => l.max_announced = n,
                _ => {
                    return Err(format!(
                        "limits: unknown {k:?} (expected subflows, add_addr_accepted, announced)"
                    ))
                }
            }
        }
        Ok(l)
    }
}

impl Limits {
    /// Total number of subflows allowed at a time (initial one included).
    pub fn max_total(&self) -> usize {
        usize::try_from(self.max_subflows)
            .unwrap_or(usize::MAX)
            .saturating_add(1)
    }
}

/// Snapshot of the connection passed with every call.
#[derive(Clone, Copy, Debug)]
pub struct PmContext<'a> {
    pub now: Instant,
    pub local_addrs: &'a [LocalAddr],
    pub subflows: &'a [PmSubflow],
    pub remote_addrs: &'a [RemoteAddr],
    pub limits: Limits,
}

impl PmContext<'_> {
    /// The configured entry for a local address.
    pub fn local(&self, addr: IpAddr) -> Option<&LocalAddr> {
        self.local_addrs.iter().find(|l| l.addr == addr)
    }

    /// Live subflows other than `skip` (the one being reported closed).
    pub fn live_subflows(&self, skip: Option<u32>) -> impl Iterator<Item = &PmSubflow> + '_ {
        self.subflows.iter().filter(move |s| Some(s.id) != skip)
    }
}

/// Fixed-capacity FIFO of commands; never allocates. A push into a full queue is refused and
/// counted ([`CommandQueue::dropped`]).
#[derive(Clone, Debug)]
pub struct CommandQueue {
    buf: [Option<PmCommand>; CommandQueue::CAPACITY],
    head: usize,
    len: usize,
    dropped: u64,
}

impl Default for CommandQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl CommandQueue {
    pub const CAPACITY: usize = 32;

    pub const fn new() -> Self {
        CommandQueue {
            buf: [None; Self::CAPACITY],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }

    /// Append; false (and counted as dropped) if the queue is full.
    pub fn push(&mut self, cmd: PmCommand) -> bool {
        if self.len >= Self::CAPACITY {
            self.dropped += 1;
            return false;
        }
        let idx = (self.head + self.len) % Self::CAPACITY;
        if let Some(slot) = self.buf.get_mut(idx) {
            *slot = Some(cmd);
        }
        self.len += 1;
        true
    }

    /// Remove the oldest command.
    pub fn pop(&mut self) -> Option<PmCommand> {
        if self.len == 0 {
            return None;
        }
        let cmd = self.buf.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1) % Self::CAPACITY;
        self.len -= 1;
        cmd
    }

    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn is_full(&self) -> bool {
        self.len >= Self::CAPACITY
    }
    /// Commands refused because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
    /// Queued commands, oldest first, without removing them.
    pub fn iter(&self) -> impl Iterator<Item = &PmCommand> + '_ {
        (0..self.len).filter_map(move |i| {
            self.buf
                .get((self.head + i) % Self::CAPACITY)
                .and_then(Option::as_ref)
        })
    }
}

/// A per-connection path-management policy.
pub trait PathManager: Send + core::fmt::Debug {
    /// Name (the spec accepted by [`by_name`], without parameters).
    fn name(&self) -> &'static str;
    /// React to an event; push commands into `out`.
    fn on_event(&mut self, ctx: &PmContext, ev: &PmEvent, out: &mut CommandQueue);
    /// When `on_timeout` should next be called, if ever.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Called at or after the instant from `poll_timeout`.
    fn on_timeout(&mut self, ctx: &PmContext, out: &mut CommandQueue);
}

/// The built-in path managers (specs: `fullmesh`, `kernel`, `ndiffports[:N]`, `manual`).
pub const NAMES: &[&str] = &["fullmesh", "kernel", "ndiffports", "manual"];

/// What [`register`] keeps: a function making a fresh path manager from the parameter after
/// the name in a spec (`"name:param"`; `None` without one), or refusing it.
pub type PathManagerFactory =
    dyn Fn(Option<&str>) -> Result<Box<dyn PathManager>, String> + Send + Sync;

static REGISTRY: Registry<PathManagerFactory> = Registry::new(NAMES);

/// Make a path manager of your own available under `name` (specs `name` and `name:param`
/// in the runtime builder, `ConnConfig::path_manager`, the C ABI's `pm=`). Fails if the
/// name is taken or malformed.
pub fn register(
    name: &str,
    factory: impl Fn(Option<&str>) -> Result<Box<dyn PathManager>, String> + Send + Sync + 'static,
) -> Result<(), RegisterError> {
    REGISTRY.register(name, std::sync::Arc::new(factory))
}

/// Every path manager name: the built-ins ([`NAMES`]), then the registered ones.
pub fn names() -> Vec<&'static str> {
    REGISTRY.names()
}

/// Largest N accepted by `ndiffports:N`.
pub const MAX_NDIFFPORTS: u32 = 32;

/// A path manager from a spec: `"fullmesh"`, `"kernel"` (Linux's in-kernel endpoint
/// semantics, see [`FullMesh::kernel`]), `"ndiffports:N"` (N in 1..=32; bare
/// `"ndiffports"` means 2) or `"manual"`.
pub fn by_name(spec: &str) -> Result<Box<dyn PathManager>, String> {
    let (name, arg) = match spec.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (spec, None),
    };
    match (name, arg) {
        ("fullmesh", None) => Ok(Box::new(FullMesh::new())),
        ("kernel", None) => Ok(Box::new(FullMesh::kernel())),
        ("manual", None) => Ok(Box::new(Manual::new())),
        ("ndiffports", None) => Ok(Box::new(NDiffPorts::new(2))),
        ("ndiffports", Some(n)) => match n.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_NDIFFPORTS).contains(&n) => Ok(Box::new(NDiffPorts::new(n))),
            _ => Err(format!(
                "ndiffports: N must be an integer in 1..={MAX_NDIFFPORTS}, got {n:?}"
            )),
        },
        ("fullmesh" | "kernel" | "manual", Some(_)) => {
            Err(format!("path manager {name:?} takes no parameter"))
        }
        _ => match REGISTRY.get(name) {
            Some(f) => f(arg),
            None => Err(format!(
                "unknown path manager {spec:?} (expected fullmesh, kernel, ndiffports:N, manual{})",
                names()
                    .iter()
                    .skip(NAMES.len())
                    .map(|n| format!(", {n}"))
                    .collect::<String>()
            )),
        },
    }
}

/// Exponential retry backoff: 1 s, doubling up to 30 s; back to 1 s after a quiet minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    delay: Duration,
    due: Option<Instant>,
    last_failure: Option<Instant>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    pub const INITIAL: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(30);
    /// A failure this long after the previous one starts again from `INITIAL`.
    pub const RESET_AFTER: Duration = Duration::from_secs(60);

    pub const fn new() -> Self {
        Backoff {
            delay: Self::INITIAL,
            due: None,
            last_failure: None,
        }
    }

    /// Record a failure at `now`; schedules a retry after the current delay (unless one is
    /// already scheduled) and doubles the delay. Returns the retry instant.
    pub fn on_failure(&mut self, now: Instant) -> Instant {
        if self
            .last_failure
            .is_some_and(|t| now.saturating_duration_since(t) >= Self::RESET_AFTER)
        {
            self.delay = Self::INITIAL;
        }
        self.last_failure = Some(now);
        if let Some(due) = self.due {
            return due;
        }
        let due = now + self.delay;
        self.due = Some(due);
        self.delay = (self.delay * 2).min(Self::MAX);
        due
    }

    /// The scheduled retry, if any.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// If the retry is due at `now`, clear it and return true.
    pub fn take_due(&mut self, now: Instant) -> bool {
        if self.due.is_some_and(|d| d <= now) {
            self.due = None;
            return true;
        }
        false
    }

    /// Forget any scheduled retry (delay history is kept).
    pub fn cancel(&mut self) {
        self.due = None;
    }
}

/// Same address family.
pub(crate) fn same_family(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4()
}

/// Earliest of two optional instants.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(id: u32) -> PmCommand {
        PmCommand::CloseSubflow { id }
    }

    #[test]
    fn queue_fifo_and_capacity() {
        let mut q = CommandQueue::new();
        for i in 0..CommandQueue::CAPACITY as u32 {
            assert!(q.push(close(i)));
        }
        assert!(q.is_full());
        assert!(!q.push(close(999)));
        assert_eq!(q.dropped(), 1);
        assert_eq!(q.pop(), Some(close(0)));
        assert!(q.push(close(100)));
        let ids: Vec<u32> = q
            .iter()
            .map(|c| match c {
                PmCommand::CloseSubflow { id } => *id,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(ids.first(), Some(&1));
        assert_eq!(ids.last(), Some(&100));
        assert_eq!(ids.len(), CommandQueue::CAPACITY);
        while q.pop().is_some() {}
        assert!(q.is_empty());
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::new();
        let mut t = Instant::from_millis(0);
        let mut delays = Vec::new();
        for _ in 0..7 {
            let due = b.on_failure(t);
            delays.push((due - t).as_secs());
            assert!(!b.take_due(due - Duration::from_millis(1)));
            assert!(b.take_due(due));
            t = due + Duration::from_millis(10);
        }
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30]);
        t += Backoff::RESET_AFTER;
        assert_eq!(b.on_failure(t) - t, Backoff::INITIAL);
    }

    #[test]
    fn by_name_parses_specs() {
        assert_eq!(by_name("fullmesh").unwrap().name(), "fullmesh");
        assert_eq!(by_name("kernel").unwrap().name(), "kernel");
        assert!(by_name("kernel:2").is_err());
        assert_eq!(by_name("manual").unwrap().name(), "manual");
        assert_eq!(by_name("ndiffports:4").unwrap().name(), "ndiffports");
        assert_eq!(by_name("ndiffports").unwrap().name(), "ndiffports");
        for bad in [
            "ndiffports:0",
            "ndiffports:x",
            "ndiffports:33",
            "mesh",
            "manual:2",
            "",
        ] {
            assert!(by_name(bad).is_err(), "{bad}");
        }
    }
}
