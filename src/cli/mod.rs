//! Option types and entry points of the `mptun` command line (`src/bin/mptun.rs` parses the
//! arguments with clap and calls [`run_connect`] / [`run_listen`]).
//!
//! The stable contract:
//!
//! ```text
//! mptun connect --tun NAME=ADDR [--tun NAME=ADDR ...] REMOTE_IP:PORT [--input FILE] [--output FILE]
//! mptun listen  --tun NAME=ADDR [--tun ...] --port PORT [--input FILE] [--output FILE] [--once]
//! mptun listen  --tun NAME=ADDR [--tun ...] --port PORT --forward HOST:PORT [--once]
//! mptun proxy   --tun NAME=ADDR [--tun ...] [--socks ADDR:PORT] [--forward [ADDR:]LPORT=HOST:PORT ...]
//! ```
//!
//! plus the multipath options carried in [`RunOptions`]. On success the binary prints the
//! one-line [`Summary`] on stdout and exits 0 (on stderr when `--output -` uses stdout).

pub mod proxy;
pub mod runner;
pub mod stats;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

pub use crate::io::tun::{TunSpec, TunSpecError};

/// Parses `--link DEV:down@MS` or `--link DEV:up@MS` (milliseconds after the start).
pub fn parse_link(s: &str) -> Result<(String, bool, Duration), String> {
    let (dev, rest) = s
        .split_once(':')
        .ok_or_else(|| format!("expected DEV:down@MS or DEV:up@MS, got {s:?}"))?;
    let (what, ms) = rest
        .split_once('@')
        .ok_or_else(|| format!("expected DEV:down@MS or DEV:up@MS, got {s:?}"))?;
    let up = match what {
        "down" => false,
        "up" => true,
        _ => return Err(format!("link state must be down or up, got {what:?}")),
    };
    if dev.is_empty() {
        return Err("empty device in --link".into());
    }
    let ms: u64 = ms
        .parse()
        .map_err(|_| format!("bad milliseconds {ms:?} in --link"))?;
    Ok((dev.to_string(), up, Duration::from_millis(ms)))
}

/// An endpoint change at run time, like `ip mptcp endpoint add|change|delete`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointAction {
    /// Add the endpoint or change its flags (`signal` = announce, `backup`).
    Set(crate::pm::LocalAddr),
    /// Delete the endpoint: REMOVE_ADDR if announced, its subflows closed.
    Remove(IpAddr),
}

/// Parses `--endpoint MS:add:ADDR[:signal][:subflow][:fullmesh][:backup][:port=N]`,
/// `MS:change:ADDR[:FLAGS]`
/// (the same: flags not given are cleared) or `MS:del:ADDR` (IPv6 addresses in brackets:
/// `MS:add:[2001:2::2]:signal`). `port=N` announces the address with that port.
pub fn parse_endpoint(s: &str) -> Result<(Duration, EndpointAction), String> {
    let bad = || {
        format!(
            "expected MS:add|change|del:ADDR[:signal][:subflow][:fullmesh][:backup][:port=N], got {s:?}"
        )
    };
    let (ms, rest) = s.split_once(':').ok_or_else(bad)?;
    let (verb, rest) = rest.split_once(':').ok_or_else(bad)?;
    let ms: u64 = ms
        .parse()
        .map_err(|_| format!("bad milliseconds {ms:?} in --endpoint"))?;
    let (addr, flags) = match rest.strip_prefix('[') {
        Some(r) => {
            let (a, f) = r.split_once(']').ok_or_else(bad)?;
            (a, f.strip_prefix(':').unwrap_or(f))
        }
        None => rest.split_once(':').unwrap_or((rest, "")),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("--endpoint: {addr:?} is not an IP address"))?;
    let mut ep = crate::pm::LocalAddr {
        addr,
        backup: false,
        announce: false,
        port: 0,
        subflow: false,
        fullmesh: false,
    };
    for f in flags.split(':').filter(|f| !f.is_empty()) {
        match f {
            "signal" => ep.announce = true,
            "backup" => ep.backup = true,
            "subflow" => ep.subflow = true,
            "fullmesh" => ep.fullmesh = true,
            _ => match f.strip_prefix("port=").map(str::parse::<u16>) {
                Some(Ok(p)) if p != 0 => ep.port = p,
                Some(_) => return Err(format!("--endpoint: bad port in {f:?} (1-65535)")),
                None => {
                    return Err(format!(
                        "--endpoint: unknown flag {f:?} (signal, subflow, fullmesh, backup, port=N)"
                    ))
                }
            },
        }
    }
    let action = match verb {
        "add" | "change" => EndpointAction::Set(ep),
        "del" | "delete" if flags.is_empty() => EndpointAction::Remove(addr),
        "del" | "delete" => return Err("--endpoint MS:del:ADDR takes no flags".into()),
        _ => return Err(bad()),
    };
    Ok((Duration::from_millis(ms), action))
}

/// Parses `--limits subflows=N,add_addr_accepted=M,announced=K` (any subset).
pub fn parse_limits(s: &str) -> Result<crate::pm::Limits, String> {
    s.parse()
}

/// Parses `--impair DEV:SPEC` into `(DEV, SPEC)`; SPEC (`delay=25ms,loss=1%`) is checked
/// for `key=value` syntax only, its meaning belongs to the impairment layer.
pub fn parse_impair(s: &str) -> Result<(String, String), String> {
    let (dev, spec) = s
        .split_once(':')
        .ok_or_else(|| format!("expected DEV:SPEC (e.g. tun0:delay=25ms,loss=1%), got {s:?}"))?;
    if dev.is_empty() {
        return Err("empty device in --impair DEV:SPEC".into());
    }
    if spec.is_empty() {
        return Err("empty SPEC in --impair DEV:SPEC".into());
    }
    for item in spec.split(',') {
        match item.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {}
            _ => return Err(format!("impairment {item:?} is not key=value")),
        }
    }
    Ok((dev.to_string(), spec.to_string()))
}

/// Validates `--path-manager` with the path manager registry ([`crate::pm::by_name`]):
/// `fullmesh`, `kernel`, `ndiffports[:N]` (1 <= N <= 32), `manual` or a registered name.
pub fn parse_path_manager(s: &str) -> Result<String, String> {
    crate::pm::by_name(s).map(|_| s.to_string())
}

/// Validates `--scheduler` with the scheduler registry ([`crate::sched::names`]).
pub fn parse_scheduler(s: &str) -> Result<String, String> {
    match crate::sched::by_name(s) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!(
            "unknown scheduler {s:?} (one of {})",
            crate::sched::names().join(", ")
        )),
    }
}

/// Validates `--congestion` with the congestion control registry ([`crate::cc::names`]).
pub fn parse_congestion(s: &str) -> Result<String, String> {
    match crate::cc::canonical(s) {
        Some(_) => Ok(s.to_string()),
        None => Err(format!(
            "unknown congestion control {s:?} (one of {})",
            crate::cc::names().join(", ")
        )),
    }
}

/// A TCP destination given on the command line (`HOST:PORT`, `[V6ADDR]:PORT`): the SOCKS
/// module's [`Destination`](crate::io::socks5::Destination).
pub use crate::io::socks5::Destination as Target;

/// `--forward [ADDR:]LPORT=HOST:PORT` of `mptun proxy`: accept kernel TCP connections on
/// ADDR:LPORT (127.0.0.1 if ADDR is left out) and carry each to HOST:PORT over MPTCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardSpec {
    pub listen: SocketAddr,
    pub target: Target,
}

impl FromStr for ForwardSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (l, t) = s
            .split_once('=')
            .ok_or_else(|| format!("expected [ADDR:]LPORT=HOST:PORT, got {s:?}"))?;
        let listen = match l.parse::<u16>() {
            Ok(0) => return Err(format!("listening port 0 in {s:?}")),
            Ok(p) => SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), p),
            Err(_) => l
                .parse::<SocketAddr>()
                .map_err(|_| format!("bad listening address {l:?} (LPORT or ADDR:LPORT)"))?,
        };
        Ok(ForwardSpec {
            listen,
            target: t.parse()?,
        })
    }
}

/// Everything `mptun proxy` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyOptions {
    /// TUN devices and multipath options (input/output/port/remote unused).
    pub run: RunOptions,
    /// SOCKS5 listening address.
    pub socks: Option<SocketAddr>,
    /// Port forwards.
    pub forwards: Vec<ForwardSpec>,
    /// Most connections relayed at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// How long an MPTCP handshake to a destination may take.
    pub connect_timeout: Duration,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            run: RunOptions::default(),
            socks: None,
            forwards: Vec::new(),
            max_connections: 256,
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// Whether a `--input`/`--output` path means stdin/stdout.
pub fn is_stdio(p: &std::path::Path) -> bool {
    p.as_os_str() == "-"
}

/// Everything `connect` and `listen` need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    pub tuns: Vec<TunSpec>,
    /// `connect`: the server.
    pub remote: Option<SocketAddr>,
    /// `listen`: the port.
    pub port: Option<u16>,
    /// Data to send (nothing if `None`; `-` is stdin, relayed as it arrives).
    pub input: Option<PathBuf>,
    /// Where to write the received data (discarded if `None`; `-` is stdout, flushed after
    /// every read).
    pub output: Option<PathBuf>,
    /// Send at most this many bytes of `input`, then abort the connection (RST with
    /// MP_FASTCLOSE) instead of closing it (`--abort-after`).
    pub abort_after: Option<u64>,
    /// `listen`: relay every accepted connection to this TCP service instead of
    /// `input`/`output`.
    pub forward: Option<Target>,
    /// `listen`: serve one connection, then exit.
    pub once: bool,
    pub path_manager: String,
    pub scheduler: String,
    pub congestion: String,
    /// Devices whose subflows are backups (MP_PRIO / MP_JOIN B bit).
    pub backup: Vec<String>,
    /// `listen`: announce the other addresses (ADD_ADDR).
    pub announce: bool,
    /// `(device, spec)` impairments applied by mptun's own impairment layer.
    pub impair: Vec<(String, String)>,
    pub pcap: Option<PathBuf>,
    /// Scheduled link changes: take device `.0` down (`.1 == false`) or up after `.2`.
    pub links: Vec<(String, bool, Duration)>,
    /// TCP_USER_TIMEOUT of every subflow: abort one whose data stays unacknowledged this long.
    pub user_timeout: Option<Duration>,
    /// Every connection's limits (`--limits`, Linux's `ip mptcp limits` meaning).
    pub limits: crate::pm::Limits,
    /// ADD_ADDR retransmission timeout (`--add-addr-timeout MS`).
    pub add_addr_timeout: Option<Duration>,
    /// Scheduled endpoint changes (`--endpoint MS:add|change|del:ADDR[:signal][:backup]`).
    pub endpoints: Vec<(Duration, EndpointAction)>,
    /// `false` with `--no-mptcp`: plain TCP.
    pub mptcp: bool,
    /// Request DSS checksums.
    pub checksum: bool,
    /// Use the TUN devices' offload (TSO super-segments out, coalesced segments in,
    /// checksums completed by the kernel) unless a device is impaired; `--no-offload`.
    pub offload: bool,
    /// Summaries (and `stats_interval` lines) as JSON objects, one per line.
    pub json: bool,
    /// Print each connection's progress on stderr this often.
    pub stats_interval: Option<Duration>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            tuns: Vec::new(),
            remote: None,
            port: None,
            input: None,
            output: None,
            abort_after: None,
            forward: None,
            once: false,
            path_manager: "fullmesh".into(),
            scheduler: "minrtt".into(),
            congestion: "lia".into(),
            backup: Vec::new(),
            announce: false,
            impair: Vec::new(),
            pcap: None,
            links: Vec::new(),
            offload: true,
            user_timeout: None,
            limits: crate::pm::Limits::default(),
            add_addr_timeout: None,
            endpoints: Vec::new(),
            mptcp: true,
            checksum: false,
            json: false,
            stats_interval: None,
        }
    }
}

/// Per-subflow part of a [`Summary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubflowSummary {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Smoothed RTT at the end.
    pub rtt: Duration,
    /// Congestion window in bytes.
    pub cwnd: u32,
    pub retransmits: u64,
    /// TCP state ([`crate::tcp::State::name`]: `established`, `time-wait`, ...).
    pub state: &'static str,
}

/// `LOCAL->REMOTE,sent=..,received=..,rtt=..ms,cwnd=..,retrans=..,state=..`
impl fmt::Display for SubflowSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}->{},sent={},received={},rtt={:.1}ms,cwnd={},retrans={},state={}",
            self.local,
            self.remote,
            self.bytes_sent,
            self.bytes_received,
            self.rtt.as_secs_f64() * 1e3,
            self.cwnd,
            self.retransmits,
            self.state
        )
    }
}

impl SubflowSummary {
    /// `{"local":..,"remote":..,"sent":..,"received":..,"rtt":MS,"cwnd":..,"retrans":..,"state":..}`
    pub fn to_json(&self) -> String {
        format!(
            "{{\"local\":{},\"remote\":{},\"sent\":{},\"received\":{},\"rtt\":{},\"cwnd\":{},\"retrans\":{},\"state\":{}}}",
            json_str(&self.local.to_string()),
            json_str(&self.remote.to_string()),
            self.bytes_sent,
            self.bytes_received,
            json_f64(self.rtt.as_secs_f64() * 1e3, 3),
            self.cwnd,
            self.retransmits,
            json_str(self.state)
        )
    }
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number with `decimals` digits after the point (0 for NaN or infinity, which JSON
/// cannot carry).
pub fn json_f64(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "0".into()
    }
}

/// What one connection did. `Display` is one line of `key=value` fields, e.g.
///
/// `sent=1048576 received=1048576 duration=1.234s mptcp=true subflows=2 sf0=198.18.1.2:40000->198.18.1.1:5201,sent=..,received=..,rtt=1.2ms,cwnd=..,retrans=0,state=time-wait sf1=...`
///
/// `mptcp=false` means the connection fell back to (or was opened as) plain TCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub duration: Duration,
    pub mptcp: bool,
    pub subflows: Vec<SubflowSummary>,
}

impl Summary {
    /// Both directions together, in Mbit/s.
    pub fn goodput_mbps(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 {
            (self.bytes_sent + self.bytes_received) as f64 * 8.0 / secs / 1e6
        } else {
            0.0
        }
    }

    /// The summary as one JSON object (`--json`):
    ///
    /// `{"sent":N,"received":N,"duration":SECONDS,"goodput_mbps":X,"mptcp":BOOL,"subflows":[{"local":"IP:PORT","remote":"IP:PORT","sent":N,"received":N,"rtt":MS,"cwnd":BYTES,"retrans":N,"state":"time-wait"}, ...]}`
    pub fn to_json(&self) -> String {
        self.to_json_with(&[])
    }

    /// [`to_json`](Self::to_json) with more leading members; each value must already be
    /// JSON (e.g. from [`json_str`]).
    pub fn to_json_with(&self, extra: &[(&str, String)]) -> String {
        let mut out = String::from("{");
        for (k, v) in extra {
            out.push_str(&format!("{}:{v},", json_str(k)));
        }
        out.push_str(&format!(
            "\"sent\":{},\"received\":{},\"duration\":{},\"goodput_mbps\":{},\"mptcp\":{},\"subflows\":[",
            self.bytes_sent,
            self.bytes_received,
            json_f64(self.duration.as_secs_f64(), 6),
            json_f64(self.goodput_mbps(), 3),
            self.mptcp
        ));
        for (i, sf) in self.subflows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&sf.to_json());
        }
        out.push_str("]}");
        out
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.duration.as_secs_f64();
        let mbps = self.goodput_mbps();
        write!(
            f,
            "sent={} received={} duration={:.3}s goodput={:.1}Mbit/s mptcp={} subflows={}",
            self.bytes_sent,
            self.bytes_received,
            secs,
            mbps,
            self.mptcp,
            self.subflows.len()
        )?;
        for (i, s) in self.subflows.iter().enumerate() {
            write!(f, " sf{i}={s}")?;
        }
        Ok(())
    }
}

/// Connects to `opts.remote` over the TUN devices, sends `opts.input`, writes what arrives
/// to `opts.output`.
// TODO(lead): temporary body until the stack is wired to the TUN driver.
pub fn run_connect(opts: &RunOptions) -> Result<Summary, String> {
    crate::cli::runner::run_connect(opts)
}

/// Listens on `opts.port` on every TUN address; serves one connection with `--once`.
// TODO(lead): temporary body until the stack is wired to the TUN driver.
pub fn run_listen(opts: &RunOptions) -> Result<Summary, String> {
    crate::cli::runner::run_listen(opts)
}

/// Runs the SOCKS5 proxy and port forwards until the process is terminated; returns only
/// on a set-up error.
pub fn run_proxy(opts: &ProxyOptions) -> Result<(), String> {
    crate::cli::proxy::run_proxy(opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tun_spec_parses_and_rejects() {
        let t: TunSpec = "tun0=198.18.1.2".parse().unwrap();
        assert_eq!(t.name, "tun0");
        assert_eq!(t.addr, "198.18.1.2".parse::<IpAddr>().unwrap());
        assert_eq!(t.to_string(), "tun0=198.18.1.2");
        let v6: TunSpec = "t=2001:2::2".parse().unwrap();
        assert!(v6.addr.is_ipv6());
        assert_eq!("tun0".parse::<TunSpec>(), Err(TunSpecError::MissingEquals));
        assert_eq!("=1.2.3.4".parse::<TunSpec>(), Err(TunSpecError::EmptyName));
        assert_eq!(
            "abcdefghijklmnop=1.2.3.4".parse::<TunSpec>(),
            Err(TunSpecError::NameTooLong(16))
        );
        assert_eq!("a/b=1.2.3.4".parse::<TunSpec>(), Err(TunSpecError::BadName));
        assert_eq!(
            "tun0=1.2.3".parse::<TunSpec>(),
            Err(TunSpecError::BadAddr("1.2.3".into()))
        );
    }

    #[test]
    fn impair_and_path_manager_validation() {
        assert_eq!(
            parse_impair("tun1:delay=25ms,loss=1%").unwrap(),
            ("tun1".to_string(), "delay=25ms,loss=1%".to_string())
        );
        assert!(parse_impair("tun1").is_err());
        assert!(parse_impair(":delay=1ms").is_err());
        assert!(parse_impair("tun1:delay").is_err());
        assert!(parse_impair("tun1:delay=1ms,").is_err());
        assert_eq!(parse_path_manager("fullmesh").unwrap(), "fullmesh");
        assert_eq!(parse_path_manager("kernel").unwrap(), "kernel");
        assert_eq!(parse_path_manager("ndiffports:4").unwrap(), "ndiffports:4");
        assert!(parse_path_manager("ndiffports:0").is_err());
        assert!(parse_path_manager("ndiffports:x").is_err());
        assert!(parse_path_manager("mesh").is_err());
        // one source of truth with the library: the bare name and N up to 32
        assert_eq!(parse_path_manager("ndiffports").unwrap(), "ndiffports");
        assert_eq!(
            parse_path_manager("ndiffports:32").unwrap(),
            "ndiffports:32"
        );
        assert!(parse_path_manager("ndiffports:33").is_err());
        assert_eq!(parse_scheduler("blest").unwrap(), "blest");
        assert!(parse_scheduler("fastest").unwrap_err().contains("minrtt"));
        assert_eq!(parse_congestion("olia").unwrap(), "olia");
        assert!(parse_congestion("vegas").unwrap_err().contains("balia"));
        let l = parse_limits("subflows=2,add_addr_accepted=0").unwrap();
        assert_eq!(
            (l.max_subflows, l.max_add_addr_accepted, l.max_announced),
            (2, 0, 8)
        );
        let l = parse_limits("subflows 1 add_addr_accepted 3 announced 1").unwrap();
        assert_eq!(
            (l.max_subflows, l.max_add_addr_accepted, l.max_announced),
            (1, 3, 1)
        );
        for bad in ["subflows", "subflows=x", "paths=2", "subflows=-1"] {
            assert!(parse_limits(bad).is_err(), "{bad}");
        }
        let (t, a) = parse_endpoint("1500:add:198.18.2.2:signal:backup").unwrap();
        assert_eq!(t, Duration::from_millis(1500));
        assert_eq!(
            a,
            EndpointAction::Set(crate::pm::LocalAddr {
                addr: "198.18.2.2".parse().unwrap(),
                backup: true,
                announce: true,
                port: 0,
                subflow: false,
                fullmesh: false,
            })
        );
        let (_, a) = parse_endpoint("0:change:198.18.3.2:subflow:fullmesh").unwrap();
        assert_eq!(
            a,
            EndpointAction::Set(crate::pm::LocalAddr {
                addr: "198.18.3.2".parse().unwrap(),
                backup: false,
                announce: false,
                port: 0,
                subflow: true,
                fullmesh: true,
            })
        );
        let (_, a) = parse_endpoint("0:add:[2001:2::2]:signal:port=10100").unwrap();
        assert_eq!(
            a,
            EndpointAction::Set(crate::pm::LocalAddr {
                addr: "2001:2::2".parse().unwrap(),
                backup: false,
                announce: true,
                port: 10100,
                subflow: false,
                fullmesh: false,
            })
        );
        let (_, a) = parse_endpoint("0:del:[2001:2::2]").unwrap();
        assert_eq!(a, EndpointAction::Remove("2001:2::2".parse().unwrap()));
        for bad in [
            "5:add:1.2.3.4:port=0",
            "5:add:1.2.3.4:port=65536",
            "5:add:1.2.3.4:port=",
            "add:1.2.3.4",
            "x:add:1.2.3.4",
            "5:move:1.2.3.4",
            "5:add:host",
            "5:add:1.2.3.4:fast",
            "5:del:1.2.3.4:signal",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn summary_is_one_line_with_fallback_flag() {
        let s = Summary {
            bytes_sent: 10,
            bytes_received: 20,
            duration: Duration::from_millis(1500),
            mptcp: false,
            subflows: vec![SubflowSummary {
                local: "198.18.1.2:40000".parse().unwrap(),
                remote: "198.18.1.1:5201".parse().unwrap(),
                bytes_sent: 10,
                bytes_received: 20,
                rtt: Duration::from_micros(1500),
                cwnd: 14600,
                retransmits: 3,
                state: "time-wait",
            }],
        };
        let line = s.to_string();
        assert!(!line.contains('\n'));
        assert!(line.starts_with("sent=10 received=20 duration=1.500s"));
        assert!(line.contains(" mptcp=false "));
        assert!(line.contains(
            "sf0=198.18.1.2:40000->198.18.1.1:5201,sent=10,received=20,rtt=1.5ms,cwnd=14600,\
             retrans=3,state=time-wait"
        ));
        assert_eq!(
            s.to_json_with(&[("conn", "7".into()), ("target", json_str("h\"x:1"))]),
            "{\"conn\":7,\"target\":\"h\\\"x:1\",\"sent\":10,\"received\":20,\"duration\":1.500000,\
             \"goodput_mbps\":0.000,\"mptcp\":false,\"subflows\":[{\"local\":\"198.18.1.2:40000\",\
             \"remote\":\"198.18.1.1:5201\",\"sent\":10,\"received\":20,\"rtt\":1.500,\
             \"cwnd\":14600,\"retrans\":3,\"state\":\"time-wait\"}]}"
        );
        assert_eq!(json_str("a\u{1}\n\\"), "\"a\\u0001\\n\\\\\"");
        assert_eq!(json_f64(f64::NAN, 2), "0");
    }

    #[test]
    fn targets_and_forwards_parse_and_reject() {
        assert_eq!(
            "198.18.1.1:80".parse::<Target>().unwrap(),
            Target::Addr("198.18.1.1:80".parse().unwrap())
        );
        assert_eq!(
            "[2001:2::1]:443".parse::<Target>().unwrap(),
            Target::Addr("[2001:2::1]:443".parse().unwrap())
        );
        assert_eq!(
            "example.com:22".parse::<Target>().unwrap(),
            Target::Name("example.com".into(), 22)
        );
        assert_eq!(
            "example.com:22".parse::<Target>().unwrap().to_string(),
            "example.com:22"
        );
        for bad in [
            "example.com",
            "example.com:",
            ":80",
            "example.com:0",
            "example.com:65536",
            "2001:2::1:80",
            "a b:80",
        ] {
            assert!(bad.parse::<Target>().is_err(), "{bad}");
        }
        let f: ForwardSpec = "7000=198.18.1.1:7".parse().unwrap();
        assert_eq!(f.listen, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(f.target, Target::Addr("198.18.1.1:7".parse().unwrap()));
        let f: ForwardSpec = "0.0.0.0:2222=host.test:22".parse().unwrap();
        assert_eq!(f.listen, "0.0.0.0:2222".parse().unwrap());
        assert_eq!(f.target, Target::Name("host.test".into(), 22));
        let f: ForwardSpec = "[::1]:2222=[2001:2::1]:22".parse().unwrap();
        assert_eq!(f.listen, "[::1]:2222".parse().unwrap());
        for bad in ["7000", "0=h:1", "x=h:1", "7000=h", "7000=h:0", "99999=h:1"] {
            assert!(bad.parse::<ForwardSpec>().is_err(), "{bad}");
        }
        assert!(is_stdio(std::path::Path::new("-")));
        assert!(!is_stdio(std::path::Path::new("./-x")));
    }

    #[test]
    fn running_without_tuns_or_peer_is_an_error() {
        // No TUN device, no remote, no port: neither side can run.
        let o = RunOptions::default();
        assert!(run_connect(&o).is_err());
        assert!(run_listen(&o).is_err());
    }
}
