//! [`RuntimeBuilder`]: a threaded [`Runtime`] in one expression: the devices with our
//! addresses on them, the path manager, scheduler and congestion control, the limits.
//!
//! ```no_run
//! use mptun::io::driver::Runtime;
//! use mptun::pm::Limits;
//!
//! # fn main() -> Result<(), mptun::io::BuildError> {
//! let rt = Runtime::builder()
//!     .tun("tun0", "198.18.1.2".parse().unwrap())
//!     .tun("tun1", "198.18.2.2".parse().unwrap())
//!     .backup("198.18.2.2".parse().unwrap()) // subflows from tun1's address are backups
//!     .path_manager("fullmesh")
//!     .scheduler("blest")
//!     .congestion("olia")
//!     .limits(Limits { max_subflows: 4, ..Limits::default() })
//!     .start()?;
//! // rt.handle() for MptcpStream::connect / MptcpListener::bind, as with Runtime::start
//! # Ok(()) }
//! ```
//!
//! It does what a program did by hand before (and still may): open the devices, make a
//! [`Stack`] with a [`StackConfig`] and a [`KeyGen`], and call [`Runtime::start_with`]. Policy
//! names are checked when [`RuntimeBuilder::start`] runs: an unknown one is a
//! [`BuildError`], never a silent default (the stack itself falls back to the defaults
//! with a warning when a [`ConnConfig`] given to `connect_with` names an unknown policy).

use super::driver::{PacketDevice, Port, Runtime, RuntimeOptions};
use super::impair::Impairment;
use super::tun::Tun;
use crate::crypto::KeyGen;
use crate::mptcp::ConnConfig;
use crate::pm::{Limits, LocalAddr};
use crate::stack::{Stack, StackConfig};
use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;

/// Why [`RuntimeBuilder::start`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildError {
    /// No device was given ([`RuntimeBuilder::tun`], [`RuntimeBuilder::device`] or
    /// [`RuntimeBuilder::port`]).
    NoDevices,
    /// A path manager spec `crate::pm::by_name` does not take (an unknown name, or
    /// `ndiffports:N` with N out of range), and why.
    UnknownPathManager { spec: String, reason: String },
    /// A scheduler name not in [`crate::sched::names`].
    UnknownScheduler(String),
    /// A congestion control name not in [`crate::cc::NAMES`].
    UnknownCongestion(String),
    /// [`RuntimeBuilder::backup`] named an address that is on none of the devices.
    NotOurAddress(IpAddr),
    /// The same address was given for two devices (or twice for one).
    DuplicateAddress(IpAddr),
    /// A TUN device could not be opened (missing, down, not a TUN device, busy, no
    /// permission: the message says which and what to do).
    Device { name: String, error: io::Error },
    /// The pcap file could not be created, or the driver thread could not start.
    Start(io::Error),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoDevices => f.write_str("no device: give at least one (tun, device)"),
            BuildError::UnknownPathManager { spec, reason } => {
                write!(f, "path manager {spec:?}: {reason}")
            }
            BuildError::UnknownScheduler(n) => write!(
                f,
                "unknown scheduler {n:?} (one of {})",
                crate::sched::names().join(", ")
            ),
            BuildError::UnknownCongestion(n) => write!(
                f,
                "unknown congestion control {n:?} (one of {})",
                crate::cc::names().join(", ")
            ),
            BuildError::NotOurAddress(a) => {
                write!(f, "backup address {a} is not on any of the devices")
            }
            BuildError::DuplicateAddress(a) => write!(f, "address {a} is given twice"),
            BuildError::Device { name, error } => write!(f, "device {name}: {error}"),
            BuildError::Start(e) => write!(f, "cannot start the runtime: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Device { error, .. } => Some(error),
            BuildError::Start(e) => Some(e),
            _ => None,
        }
    }
}

/// For `?` in functions returning `io::Result`: configuration mistakes are
/// `InvalidInput`; device and start failures keep the kind of the underlying error
/// (`NotFound`, `PermissionDenied`, ...). The `BuildError` stays reachable with
/// `io::Error::get_ref` / `into_inner` and `downcast`.
impl From<BuildError> for io::Error {
    fn from(e: BuildError) -> io::Error {
        let kind = match &e {
            BuildError::Device { error, .. } | BuildError::Start(error) => error.kind(),
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

enum Source {
    /// An existing TUN device, opened at `start`.
    Tun(String),
    Port(Port),
}

/// Builds a [`Runtime`]: see the [module documentation](self).
///
/// Every setter can be called in any order; the policies, limits and address flags given
/// to the builder override those of [`RuntimeBuilder::conn_config`].
pub struct RuntimeBuilder {
    devices: Vec<(Source, Vec<IpAddr>)>,
    conn: ConnConfig,
    path_manager: Option<String>,
    scheduler: Option<String>,
    congestion: Option<String>,
    limits: Option<Limits>,
    backup: Vec<IpAddr>,
    announce: bool,
    seed: Option<u64>,
    pcap: Option<PathBuf>,
    offload: bool,
}

impl fmt::Debug for RuntimeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let devices: Vec<String> = self
            .devices
            .iter()
            .map(|(s, a)| match s {
                Source::Tun(n) => format!("tun {n} {a:?}"),
                Source::Port(p) => format!("device {} {a:?}", p.device.name()),
            })
            .collect();
        f.debug_struct("RuntimeBuilder")
            .field("devices", &devices)
            .field("path_manager", &self.path_manager)
            .field("scheduler", &self.scheduler)
            .field("congestion", &self.congestion)
            .field("limits", &self.limits)
            .field("backup", &self.backup)
            .field("announce", &self.announce)
            .field("seed", &self.seed)
            .field("pcap", &self.pcap)
            .field("offload", &self.offload)
            .finish_non_exhaustive()
    }
}

impl Default for RuntimeBuilder {
    fn default() -> Self {
        RuntimeBuilder::new()
    }
}

impl Runtime {
    /// A [`RuntimeBuilder`]: devices, policies and limits, then [`RuntimeBuilder::start`].
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::new()
    }
}

impl RuntimeBuilder {
    /// No devices yet, [`ConnConfig::default`] (fullmesh, minrtt, LIA, limits of 8), keys
    /// from the OS's entropy, TUN offload on.
    pub fn new() -> Self {
        RuntimeBuilder {
            devices: Vec::new(),
            conn: ConnConfig::default(),
            path_manager: None,
            scheduler: None,
            congestion: None,
            limits: None,
            backup: Vec::new(),
            announce: false,
            seed: None,
            pcap: None,
            offload: true,
        }
    }

    /// Attach to the existing TUN device `name` (it must exist and be up: mptun never
    /// creates one) and use `addr` on it. Opened by [`RuntimeBuilder::start`].
    pub fn tun(mut self, name: impl Into<String>, addr: IpAddr) -> Self {
        self.devices.push((Source::Tun(name.into()), vec![addr]));
        self
    }

    /// Use any packet device (e.g. an in-process
    /// [`SeqPacketDevice`](super::driver::SeqPacketDevice)) with `addr` on it.
    pub fn device(self, device: impl PacketDevice + 'static, addr: IpAddr) -> Self {
        self.port(Port {
            device: Box::new(device),
            addrs: vec![addr],
            egress: None,
            ingress: None,
        })
    }

    /// A device with all its settings: several addresses, impairments.
    pub fn port(mut self, port: Port) -> Self {
        let addrs = port.addrs.clone();
        self.devices.push((Source::Port(port), addrs));
        self
    }

    /// The base settings of every connection (buffers, checksums, timeouts, ...): those
    /// of `connect` without a config and of `bind` without one. Policies, limits and
    /// address flags set on the builder replace theirs.
    pub fn conn_config(mut self, cfg: ConnConfig) -> Self {
        self.conn = cfg;
        self
    }

    /// The path manager: `fullmesh` (default), `ndiffports:N` (or `ndiffports`, N = 2) or
    /// `manual` (the application opens every subflow).
    pub fn path_manager(mut self, spec: impl Into<String>) -> Self {
        self.path_manager = Some(spec.into());
        self
    }

    /// The packet scheduler: one of [`crate::sched::NAMES`] (default `minrtt`).
    pub fn scheduler(mut self, name: impl Into<String>) -> Self {
        self.scheduler = Some(name.into());
        self
    }

    /// The congestion control: one of [`crate::cc::NAMES`] (default `lia`).
    pub fn congestion(mut self, name: impl Into<String>) -> Self {
        self.congestion = Some(name.into());
        self
    }

    /// Subflow and address limits of every connection (Linux's `ip mptcp limits`).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Subflows from `addr` (one of the devices' addresses) are backup subflows.
    pub fn backup(mut self, addr: IpAddr) -> Self {
        self.backup.push(addr);
        self
    }

    /// Announce our other addresses to peers (ADD_ADDR), as `mptun listen --announce`.
    pub fn announce(mut self, on: bool) -> Self {
        self.announce = on;
        self
    }

    /// Deterministic keys, nonces, ISNs and impairment randomness (tests); by default they
    /// come from the OS's entropy.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Write every packet received and sent to this pcap file (raw IP).
    pub fn pcap(mut self, path: impl Into<PathBuf>) -> Self {
        self.pcap = Some(path.into());
        self
    }

    /// Use the TUN devices' segmentation and checksum offload (default on; devices given
    /// with [`RuntimeBuilder::device`] or [`RuntimeBuilder::port`] decide for themselves).
    pub fn offload(mut self, on: bool) -> Self {
        self.offload = on;
        self
    }

    /// The connection settings the runtime's stack will use, checked: what
    /// [`RuntimeBuilder::start`] does before opening anything.
    pub fn resolved_conn_config(&self) -> Result<ConnConfig, BuildError> {
        let mut cfg = self.conn.clone();
        if let Some(pm) = &self.path_manager {
            cfg.path_manager = pm.clone();
        }
        if let Some(s) = &self.scheduler {
            cfg.scheduler = s.clone();
        }
        if let Some(c) = &self.congestion {
            cfg.tcp.congestion =
                crate::cc::canonical(c).ok_or_else(|| BuildError::UnknownCongestion(c.clone()))?;
        }
        if let Some(l) = self.limits {
            cfg.limits = l;
        }
        crate::pm::by_name(&cfg.path_manager).map_err(|reason| BuildError::UnknownPathManager {
            spec: cfg.path_manager.clone(),
            reason,
        })?;
        if crate::sched::by_name(&cfg.scheduler).is_none() {
            return Err(BuildError::UnknownScheduler(cfg.scheduler.clone()));
        }
        if crate::cc::canonical(cfg.tcp.congestion).is_none() {
            return Err(BuildError::UnknownCongestion(
                cfg.tcp.congestion.to_string(),
            ));
        }
        let addrs = self.addrs()?;
        if let Some(&a) = self.backup.iter().find(|a| !addrs.contains(a)) {
            return Err(BuildError::NotOurAddress(a));
        }
        if !self.backup.is_empty() || self.announce {
            let base = std::mem::take(&mut cfg.local_addrs);
            cfg.local_addrs = addrs
                .iter()
                .map(|&addr| {
                    let mut l = base
                        .iter()
                        .copied()
                        .find(|l| l.addr == addr)
                        .unwrap_or(LocalAddr::device(addr));
                    l.backup |= self.backup.contains(&addr);
                    l.announce |= self.announce;
                    l
                })
                .collect();
        }
        Ok(cfg)
    }

    /// Every device address, in order, checked for duplicates.
    fn addrs(&self) -> Result<Vec<IpAddr>, BuildError> {
        let mut all: Vec<IpAddr> = Vec::new();
        for &a in self.devices.iter().flat_map(|(_, a)| a) {
            if all.contains(&a) {
                return Err(BuildError::DuplicateAddress(a));
            }
            all.push(a);
        }
        Ok(all)
    }

    /// Check the settings, open the devices and start the driver thread: the same
    /// [`Runtime`] as [`Runtime::start_with`] gives.
    pub fn start(self) -> Result<Runtime, BuildError> {
        if self.devices.is_empty() {
            return Err(BuildError::NoDevices);
        }
        let conn = self.resolved_conn_config()?;
        let addrs = self.addrs()?;
        let mut ports = Vec::with_capacity(self.devices.len());
        for (source, addrs) in self.devices {
            ports.push(match source {
                Source::Tun(name) => {
                    let tun = Tun::open_existing_with(&name, self.offload)
                        .map_err(|error| BuildError::Device { name, error })?;
                    Port {
                        device: Box::new(tun),
                        addrs,
                        egress: None::<Impairment>,
                        ingress: None,
                    }
                }
                Source::Port(p) => p,
            });
        }
        let mut keys = match self.seed {
            Some(s) => KeyGen::from_seed(s),
            None => KeyGen::from_entropy(),
        };
        let impair_seed = keys.key();
        let stack = Stack::new(
            StackConfig {
                addrs,
                conn,
                ..StackConfig::default()
            },
            keys,
        );
        let opts = RuntimeOptions {
            seed: impair_seed,
            pcap: self.pcap,
        };
        Runtime::start_with(stack, ports, opts).map_err(BuildError::Start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::driver::SeqPacketDevice;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn policies_are_checked_by_name() {
        let b = || RuntimeBuilder::new().tun("tun0", ip("198.18.1.2"));
        let cfg = b()
            .path_manager("ndiffports:3")
            .scheduler("ecf")
            .congestion("balia")
            .limits(Limits {
                max_subflows: 2,
                ..Limits::default()
            })
            .resolved_conn_config()
            .unwrap();
        assert_eq!(cfg.path_manager, "ndiffports:3");
        assert_eq!(cfg.scheduler, "ecf");
        assert_eq!(cfg.tcp.congestion, "balia");
        assert_eq!(cfg.limits.max_subflows, 2);
        assert!(cfg.local_addrs.is_empty(), "the stack fills them in");
        assert!(matches!(
            b().scheduler("fastest").resolved_conn_config(),
            Err(BuildError::UnknownScheduler(n)) if n == "fastest"
        ));
        assert!(matches!(
            b().congestion("vegas").resolved_conn_config(),
            Err(BuildError::UnknownCongestion(n)) if n == "vegas"
        ));
        assert!(matches!(
            b().path_manager("mesh").resolved_conn_config(),
            Err(BuildError::UnknownPathManager { spec, .. }) if spec == "mesh"
        ));
        assert!(matches!(
            b().path_manager("ndiffports:0").resolved_conn_config(),
            Err(BuildError::UnknownPathManager { .. })
        ));
        // a base config naming an unknown policy is refused too
        let bad = ConnConfig {
            scheduler: "nope".into(),
            ..ConnConfig::default()
        };
        assert!(matches!(
            b().conn_config(bad.clone()).resolved_conn_config(),
            Err(BuildError::UnknownScheduler(_))
        ));
        // ... unless the builder's own choice replaces it, whatever the order
        assert!(b()
            .scheduler("redundant")
            .conn_config(bad)
            .resolved_conn_config()
            .is_ok());
    }

    #[test]
    fn backup_and_announce_flag_device_addresses() {
        let cfg = RuntimeBuilder::new()
            .tun("tun0", ip("198.18.1.2"))
            .tun("tun1", ip("198.18.2.2"))
            .backup(ip("198.18.2.2"))
            .announce(true)
            .resolved_conn_config()
            .unwrap();
        let flags: Vec<(IpAddr, bool, bool)> = cfg
            .local_addrs
            .iter()
            .map(|l| (l.addr, l.backup, l.announce))
            .collect();
        assert_eq!(
            flags,
            vec![
                (ip("198.18.1.2"), false, true),
                (ip("198.18.2.2"), true, true)
            ]
        );
        let e = RuntimeBuilder::new()
            .tun("tun0", ip("198.18.1.2"))
            .backup(ip("198.18.9.9"))
            .resolved_conn_config()
            .unwrap_err();
        assert!(matches!(e, BuildError::NotOurAddress(a) if a == ip("198.18.9.9")));
        let e = RuntimeBuilder::new()
            .tun("tun0", ip("198.18.1.2"))
            .tun("tun1", ip("198.18.1.2"))
            .resolved_conn_config()
            .unwrap_err();
        assert!(matches!(e, BuildError::DuplicateAddress(_)));
    }

    #[test]
    fn errors_convert_to_io_errors_with_their_kind() {
        let e: io::Error = BuildError::UnknownScheduler("x".into()).into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e
            .to_string()
            .contains("unknown scheduler \"x\" (one of minrtt"));
        let inner = e.into_inner().unwrap().downcast::<BuildError>().unwrap();
        assert!(matches!(*inner, BuildError::UnknownScheduler(_)));
        let e: io::Error = BuildError::Device {
            name: "tun9".into(),
            error: io::Error::new(io::ErrorKind::NotFound, "there is no network device tun9"),
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e
            .to_string()
            .starts_with("device tun9: there is no network device"));
    }

    #[test]
    fn start_checks_before_opening_anything() {
        assert!(matches!(
            RuntimeBuilder::new().start(),
            Err(BuildError::NoDevices)
        ));
        // the scheduler is refused before the (missing) TUN device is looked at
        assert!(matches!(
            RuntimeBuilder::new()
                .tun("mptun-no-such0", ip("198.18.1.2"))
                .scheduler("fastest")
                .start(),
            Err(BuildError::UnknownScheduler(_))
        ));
        // a device that does not exist
        match RuntimeBuilder::new()
            .tun("mptun-no-such0", ip("198.18.1.2"))
            .start()
        {
            Err(BuildError::Device { name, .. }) => assert_eq!(name, "mptun-no-such0"),
            other => panic!("expected a device error, got {other:?}"),
        }
    }

    #[test]
    fn starts_over_in_process_devices() {
        let (a, _b) = SeqPacketDevice::pair("a", "b").unwrap();
        let rt = RuntimeBuilder::new()
            .device(a, ip("198.18.1.2"))
            .path_manager("manual")
            .seed(7)
            .start()
            .unwrap();
        let (pm, addrs) = rt.handle().with_stack(|s| {
            (
                s.config().conn.path_manager.clone(),
                s.config().addrs.clone(),
            )
        });
        assert_eq!(pm, "manual");
        assert_eq!(addrs, vec![ip("198.18.1.2")]);
        rt.stop().unwrap();
    }
}
