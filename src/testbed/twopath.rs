//! One bidirectional two-path transfer between mptun and Linux MPTCP, in fresh namespaces,
//! with everything a test or the soak tool wants to know about it: digests both ways,
//! mptun's summary (per-subflow bytes), kernel counter deltas per namespace (`nstat` names),
//! `tx_dropped` per device, and optionally the largest packets mptun sent and received.
//!
//! Shared by `tests/interop_routed.rs` and `tools/soak.rs`; [`run`] is the entry point.
//!
//! - [`Role::MptunClient`]: Linux listens on `0.0.0.0:5201` (with `--hold`, so joins are
//!   accepted until the end); mptun connects and its full-mesh path manager joins from its
//!   second address. On the routed bed S also announces its second address (`signal`
//!   endpoint) unless [`RunSpec::linux_signal`] is off.
//! - [`Role::MptunServer`]: mptun listens with `--announce`; Linux connects to 198.18.1.2
//!   and joins 198.18.2.2 from the ADD_ADDR.
//!
//! mptun and the Linux peer both run under `timeout`: a hang ends with mptun's SIGTERM state
//! dump on its stderr ([`RunOutcome::failure_report`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::peer::{self, PeerArgs, PeerReport};
use super::routed::{self, RoutedConfig, RoutedTopology};
use super::NetNs;

const MPTUN_SEED: u64 = 0xA11CE;
const LINUX_SEED: u64 = 0xB0B;
const PORT: u16 = 5201;

/// Which side mptun plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `mptun connect` to a Linux MPTCP listener.
    MptunClient,
    /// `mptun listen --announce`, a Linux MPTCP client connects.
    MptunServer,
}

impl Role {
    /// Run `i` of an alternating series: client, server, client, ...
    pub fn alternating(i: usize) -> Role {
        if i % 2 == 0 {
            Role::MptunClient
        } else {
            Role::MptunServer
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::MptunClient => "mptun-client",
            Role::MptunServer => "mptun-server",
        }
    }
}

/// Where the transfer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// One namespace, tun0 198.18.1.1/24 and tun1 198.18.2.1/24 (mptun .2 on each); the
    /// Linux peer runs in the same namespace.
    Local,
    /// [`RoutedTopology`]: mptun's host, a router and the Linux host.
    Routed(RoutedConfig),
}

/// What to run.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The `mptun` binary.
    pub mptun_exe: PathBuf,
    pub role: Role,
    pub net: Net,
    /// Bytes each way.
    pub size: u64,
    /// mptun and the Linux peer are killed after this many seconds.
    pub timeout_secs: u64,
    /// Part of the namespace names.
    pub tag: String,
    /// More mptun options (after the subcommand's own).
    pub mptun_args: Vec<String>,
    /// Capture mptun's packets (`--pcap`) and report the largest ones.
    pub pcap: bool,
    /// Routed bed, mptun client: S announces [`routed::LINUX_B`] (a `signal` endpoint).
    pub linux_signal: bool,
}

impl RunSpec {
    pub fn new(mptun_exe: &Path, role: Role, net: Net, size: u64, tag: &str) -> RunSpec {
        RunSpec {
            mptun_exe: mptun_exe.to_path_buf(),
            role,
            net,
            size,
            timeout_secs: 120,
            tag: tag.to_string(),
            mptun_args: Vec::new(),
            pcap: false,
            linux_signal: true,
        }
    }
}

/// How mptun's process ended.
#[derive(Clone, Debug)]
pub struct MptunResult {
    pub success: bool,
    /// Exit status, with "(timed out)" for `timeout`'s 124.
    pub status: String,
    /// The last non-empty stdout line (the summary).
    pub summary: String,
    pub stderr: String,
}

/// One subflow of mptun's summary (`sfN=LOCAL->REMOTE,sent=..,received=..`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubflowBytes {
    pub local: String,
    pub remote: String,
    pub sent: u64,
    pub received: u64,
}

/// Counter changes in one namespace.
#[derive(Clone, Debug)]
pub struct NsDeltas {
    /// `H`, `R`, `S` (routed) or `ns` (local).
    pub label: &'static str,
    /// Every `nstat` counter that changed.
    pub counters: BTreeMap<String, u64>,
    /// `tx_dropped` increase per device (devices that dropped nothing are left out).
    pub tx_dropped: BTreeMap<String, u64>,
}

/// Everything about one run.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub role: Role,
    pub net: Net,
    pub size: u64,
    /// Wall-clock time of the transfer (mptun and the Linux peer), setup excluded.
    pub elapsed: Duration,
    pub mptun: MptunResult,
    pub linux: Result<PeerReport, String>,
    /// SHA-256 of what mptun sent.
    pub sent_digest: String,
    /// SHA-256 of what mptun wrote (None if its output file is missing).
    pub received_digest: Option<String>,
    /// Per namespace: mptun's host first, the Linux host last.
    pub namespaces: Vec<NsDeltas>,
    /// Largest IP packet mptun sent and received (`pcap` runs only).
    pub largest_packets: Option<(usize, usize)>,
}

/// Runs one transfer. `Err` only when the test bed could not be set up; a failed transfer
/// is an `Ok` outcome whose [`RunOutcome::check_intact`] says what went wrong.
pub fn run(spec: &RunSpec) -> Result<RunOutcome, String> {
    let bed = Bed::new(spec)?;
    let dir = WorkDir::new(&spec.tag)?;
    let input = dir.0.join("mptun-in.bin");
    let output = dir.0.join("mptun-out.bin");
    let pcap = dir.0.join("mptun.pcap");
    let sent_digest = peer::write_pattern_file(&input, MPTUN_SEED, spec.size)
        .map_err(|e| format!("write the input file: {e}"))?;

    let (mptun_ns, linux_ns) = (bed.mptun_ns(), bed.linux_ns());
    let mut args: Vec<String> = Vec::new();
    let linux = match spec.role {
        Role::MptunClient => {
            args.push("connect".into());
            args.extend(bed.tun_args());
            args.push(format!("{}:{PORT}", bed.linux_addr()));
            let mut p = PeerArgs::listen(
                format!("0.0.0.0:{PORT}").parse().expect("address"),
                spec.size,
                LINUX_SEED,
            );
            // Linux refuses MP_JOIN once it has half-closed the connection.
            p.hold = true;
            p.io_timeout = spec.timeout_secs;
            p
        }
        Role::MptunServer => {
            args.push("listen".into());
            args.extend(bed.tun_args());
            args.extend(["--port", "5201", "--once", "--announce"].map(String::from));
            let mut p = PeerArgs::connect(
                format!("{}:{PORT}", routed::MPTUN_A)
                    .parse()
                    .expect("address"),
                spec.size,
                LINUX_SEED,
            );
            p.connect_retries = 100;
            p.io_timeout = spec.timeout_secs;
            p
        }
    };
    args.extend(spec.mptun_args.iter().cloned());
    args.extend([
        "--input".to_string(),
        input.display().to_string(),
        "--output".to_string(),
        output.display().to_string(),
    ]);
    if spec.pcap {
        args.extend(["--pcap".to_string(), pcap.display().to_string()]);
    }

    // The Linux peer outlives mptun by 10 s: when both hang, mptun's own timeout fires first
    // and its SIGTERM state dump is not cut short by the SIGKILL `timeout` sends when a second
    // signal (ours, after the peer failed) arrives.
    let linux_timeout = spec.timeout_secs + 10;
    let before = bed.snapshot()?;
    let start = Instant::now();
    let server = if spec.role == Role::MptunClient {
        Some(
            linux_ns
                .start_peer(&spec.mptun_exe, &linux, linux_timeout)
                .map_err(|e| format!("start the Linux server: {e}"))?,
        )
    } else {
        None
    };
    let mut cmd = mptun_ns.exec_with_timeout(spec.timeout_secs, &spec.mptun_exe, &args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let pid = mptun_ns
        .spawn(&mut cmd)
        .map_err(|e| format!("start mptun: {e}"))?;

    let mptun_done = std::sync::atomic::AtomicBool::new(false);
    let (mptun, linux_report) = std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let r = wait_mptun(mptun_ns, pid);
            mptun_done.store(true, std::sync::atomic::Ordering::SeqCst);
            if !r.success {
                // do not let the Linux peer wait for its timeout
                linux_ns.kill_all();
            }
            r
        });
        let peer = match server {
            Some(p) => Ok(p),
            None => {
                // Linux connects once mptun holds its TUN devices (before, its SYNs would be
                // dropped and only retried after a second).
                wait_for_carrier(mptun_ns, &["tun0", "tun1"], Duration::from_secs(10));
                linux_ns.start_peer(&spec.mptun_exe, &linux, linux_timeout)
            }
        };
        let report = peer
            .and_then(|p| linux_ns.finish_peer(p))
            .map_err(|e| e.to_string());
        if report.is_err() && !mptun_done.load(std::sync::atomic::Ordering::SeqCst) {
            // mptun is probably stuck now: SIGTERM (through `timeout`, which passes it on)
            // makes it print its state dump and exit.
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
        (waiter.join().expect("mptun waiter thread"), report)
    });
    let elapsed = start.elapsed();
    let after = bed.snapshot()?;

    let received_digest = peer::sha256_file(&output).ok();
    let largest_packets = if spec.pcap {
        largest_packets(&pcap)
    } else {
        None
    };
    let namespaces = bed
        .labels()
        .into_iter()
        .zip(before.iter().zip(after.iter()))
        .map(|(label, (b, a))| NsDeltas {
            label,
            counters: super::deltas(&b.0, &a.0).into_iter().collect(),
            tx_dropped: super::deltas(&b.1, &a.1).into_iter().collect(),
        })
        .collect();
    Ok(RunOutcome {
        role: spec.role,
        net: spec.net,
        size: spec.size,
        elapsed,
        mptun,
        linux: linux_report,
        sent_digest,
        received_digest,
        namespaces,
        largest_packets,
    })
}

impl RunOutcome {
    /// `Ok` if mptun and Linux both finished and every byte arrived intact both ways.
    pub fn check_intact(&self) -> Result<(), String> {
        if !self.mptun.success {
            return Err(format!("mptun exited with {}", self.mptun.status));
        }
        let linux = self
            .linux
            .as_ref()
            .map_err(|e| format!("Linux peer: {e}"))?;
        let size = self.size;
        let mut errs = Vec::new();
        if linux.bytes_received != size {
            errs.push(format!(
                "Linux received {} of {size} bytes",
                linux.bytes_received
            ));
        }
        if linux.received_sha256 != self.sent_digest {
            errs.push("mptun -> Linux digest differs".to_string());
        }
        if linux.bytes_sent != size {
            errs.push(format!("Linux sent {} of {size} bytes", linux.bytes_sent));
        }
        if self.received_digest.as_deref() != Some(linux.sent_sha256.as_str()) {
            errs.push("Linux -> mptun digest differs".to_string());
        }
        let size_s = size.to_string();
        if self.summary_field("sent") != Some(size_s.as_str())
            || self.summary_field("received") != Some(size_s.as_str())
        {
            errs.push(format!(
                "mptun's summary does not show {size} bytes each way"
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }

    pub fn intact(&self) -> bool {
        self.check_intact().is_ok()
    }

    /// `key=` of mptun's summary line.
    pub fn summary_field(&self, key: &str) -> Option<&str> {
        summary_field(&self.mptun.summary, key)
    }

    /// The subflows of mptun's summary.
    pub fn subflows(&self) -> Vec<SubflowBytes> {
        subflows(&self.mptun.summary)
    }

    /// Bytes (sent + received) mptun moved over path A (local 198.18.1.2) and path B
    /// (198.18.2.2), from its summary.
    pub fn path_bytes(&self) -> (u64, u64) {
        let on = |addr: &str| {
            self.subflows()
                .iter()
                .filter(|s| s.local.rsplit_once(':').map(|(a, _)| a) == Some(addr))
                .map(|s| s.sent + s.received)
                .sum()
        };
        (on(routed::MPTUN_A), on(routed::MPTUN_B))
    }

    /// The counter deltas of the namespace labelled `label`.
    pub fn ns(&self, label: &str) -> Option<&NsDeltas> {
        self.namespaces.iter().find(|n| n.label == label)
    }

    /// Increase of `nstat` counter `name` in namespace `label` (0 if unknown).
    pub fn delta(&self, label: &str, name: &str) -> u64 {
        self.ns(label)
            .and_then(|n| n.counters.get(name))
            .copied()
            .unwrap_or(0)
    }

    /// The Linux host's counters (the last namespace).
    pub fn linux_ns(&self) -> &NsDeltas {
        self.namespaces.last().expect("at least one namespace")
    }

    /// Increase of `nstat` counter `name` where the Linux peer runs.
    pub fn linux_delta(&self, name: &str) -> u64 {
        self.linux_ns().counters.get(name).copied().unwrap_or(0)
    }

    /// `tx_dropped` increase summed over the devices of namespace `label`.
    pub fn tx_dropped(&self, label: &str) -> u64 {
        self.ns(label)
            .map(|n| n.tx_dropped.values().sum())
            .unwrap_or(0)
    }

    /// Sum over every namespace of counter `name`.
    pub fn delta_all(&self, name: &str) -> u64 {
        self.namespaces
            .iter()
            .filter_map(|n| n.counters.get(name))
            .sum()
    }

    /// One line for logs: role, intact, time, the counters that matter, drops, path bytes.
    pub fn line(&self) -> String {
        let mut s = format!(
            "role={} intact={} duration={:.2}s NoDSSInWindow={} DSSNotMatching={} TcpRetransSegs={}",
            self.role.name(),
            if self.intact() { "yes" } else { "no" },
            self.elapsed.as_secs_f64(),
            self.linux_delta("MPTcpExtNoDSSInWindow"),
            self.linux_delta("MPTcpExtDSSNotMatching"),
            self.linux_delta("TcpRetransSegs"),
        );
        let drops: Vec<String> = self
            .namespaces
            .iter()
            .flat_map(|n| {
                n.tx_dropped
                    .iter()
                    .map(move |(d, v)| format!("{}/{d}:{v}", n.label))
            })
            .collect();
        let _ = write!(
            s,
            " tx_dropped={}",
            if drops.is_empty() {
                "0".to_string()
            } else {
                drops.join(",")
            }
        );
        if matches!(self.net, Net::Routed(_)) {
            for label in ["H", "R"] {
                let _ = write!(
                    s,
                    " {label}.IpFragFails={} {label}.IcmpOutDestUnreachs={}",
                    self.delta(label, "IpFragFails"),
                    self.delta(label, "IcmpOutDestUnreachs")
                );
            }
        }
        let (a, b) = self.path_bytes();
        let _ = write!(
            s,
            " subflows={} pathA={a} pathB={b}",
            self.summary_field("subflows").unwrap_or("?")
        );
        if let Some((tx, rx)) = self.largest_packets {
            let _ = write!(s, " largest_sent={tx} largest_received={rx}");
        }
        s
    }

    /// For failure messages: what failed, mptun's summary, the tail of its stderr (with the
    /// SIGTERM state dump when it timed out), every counter that changed.
    pub fn failure_report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "{}", self.line());
        if let Err(e) = self.check_intact() {
            let _ = writeln!(s, "not intact: {e}");
        }
        let _ = writeln!(s, "mptun status: {}", self.mptun.status);
        let _ = writeln!(s, "mptun summary: {}", self.mptun.summary);
        match &self.linux {
            Ok(r) => {
                let _ = writeln!(s, "Linux: {r}");
            }
            Err(e) => {
                let _ = writeln!(s, "Linux: {e}");
            }
        }
        for n in &self.namespaces {
            let _ = writeln!(
                s,
                "{} counters changed: {:?}",
                n.label,
                n.counters
                    .iter()
                    .filter(|(k, _)| interesting(k))
                    .collect::<Vec<_>>()
            );
        }
        let _ = writeln!(
            s,
            "mptun stderr (tail):\n{}",
            tail(&self.mptun.stderr, 12000)
        );
        s
    }
}

/// Counters worth printing in a failure report (IP, ICMP, TCP retransmissions, MPTCP).
fn interesting(name: &str) -> bool {
    name.starts_with("MPTcpExt")
        || name.starts_with("IpFrag")
        || name.starts_with("Ip6Frag")
        || name.starts_with("IpOut")
        || name.starts_with("IpIn")
        || name.starts_with("Icmp")
        || name.starts_with("Tcp")
}

fn tail(s: &str, n: usize) -> &str {
    let mut i = s.len().saturating_sub(n);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// `key=value` in a line of space-separated fields.
pub fn summary_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// The `sfN=LOCAL->REMOTE,sent=..,received=..,...` fields of an mptun summary, in order.
pub fn subflows(summary: &str) -> Vec<SubflowBytes> {
    let mut v = Vec::new();
    for n in 0.. {
        let Some(sf) = summary_field(summary, &format!("sf{n}")) else {
            break;
        };
        let (local, remote) = sf
            .split(',')
            .next()
            .and_then(|t| t.split_once("->"))
            .unwrap_or(("", ""));
        let num = |key: &str| {
            sf.split(',')
                .find_map(|kv| kv.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        v.push(SubflowBytes {
            local: local.to_string(),
            remote: remote.to_string(),
            sent: num("sent="),
            received: num("received="),
        });
    }
    v
}

fn wait_mptun(ns: &NetNs, pid: u32) -> MptunResult {
    match ns.wait_output(pid) {
        Ok(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            let mut status = out.status.to_string();
            if out.status.code() == Some(124) {
                status.push_str(" (timed out or terminated: state dump on stderr)");
            }
            MptunResult {
                success: out.status.success(),
                status,
                summary: super::last_line(&stdout),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Err(e) => MptunResult {
            success: false,
            status: format!("cannot wait for mptun: {e}"),
            summary: String::new(),
            stderr: String::new(),
        },
    }
}

/// Polls until every device in `devs` has carrier (a process attached to the TUN device),
/// at most `limit`.
pub fn wait_for_carrier(ns: &NetNs, devs: &[&str], limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        let up = devs.iter().all(|d| {
            ns.run(["cat", &format!("/sys/class/net/{d}/carrier")])
                .map(|s| s.trim() == "1")
                .unwrap_or(false)
        });
        if up {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The largest IPv4/IPv6 packets in an mptun capture (LINKTYPE_RAW): (sent by mptun, i.e.
/// from 198.18.x.2, received). `None` if the file cannot be read.
pub fn largest_packets(path: &Path) -> Option<(usize, usize)> {
    let f = std::fs::File::open(path).ok()?;
    let mut r = pcap_file::pcap::PcapReader::new(std::io::BufReader::new(f)).ok()?;
    let (mut tx, mut rx) = (0usize, 0usize);
    while let Some(Ok(p)) = r.next_packet() {
        let d: &[u8] = &p.data;
        let len = p.orig_len as usize;
        let from_mptun = match d.first().map(|b| b >> 4) {
            Some(4) if d.len() >= 20 => {
                let src = [d[12], d[13], d[14], d[15]];
                src == [198, 18, 1, 2] || src == [198, 18, 2, 2]
            }
            _ => continue,
        };
        let m = if from_mptun { &mut tx } else { &mut rx };
        *m = (*m).max(len);
    }
    Some((tx, rx))
}

/// The namespaces of one run.
enum Bed {
    Local(NetNs),
    Routed(RoutedTopology),
}

/// `nstat` counters and `tx_dropped` per device of one namespace.
type Snapshot = (BTreeMap<String, u64>, BTreeMap<String, u64>);

impl Bed {
    fn new(spec: &RunSpec) -> Result<Bed, String> {
        let e = |what: &'static str| move |err: std::io::Error| format!("{what}: {err}");
        match spec.net {
            Net::Local => {
                let ns = NetNs::new(&spec.tag).map_err(e("create namespace"))?;
                ns.add_tun("tun0", "198.18.1.1/24").map_err(e("tun0"))?;
                ns.add_tun("tun1", "198.18.2.1/24").map_err(e("tun1"))?;
                ns.mptcp_limits(4, 4).map_err(e("mptcp limits"))?;
                Ok(Bed::Local(ns))
            }
            Net::Routed(cfg) => {
                let t = RoutedTopology::new(&spec.tag, cfg).map_err(e("routed topology"))?;
                if spec.role == Role::MptunClient && spec.linux_signal {
                    t.s.mptcp_endpoint(routed::LINUX_B, routed::LINUX_DEV_B, &["signal"])
                        .map_err(e("signal endpoint"))?;
                }
                Ok(Bed::Routed(t))
            }
        }
    }

    fn mptun_ns(&self) -> &NetNs {
        match self {
            Bed::Local(ns) => ns,
            Bed::Routed(t) => &t.h,
        }
    }

    fn linux_ns(&self) -> &NetNs {
        match self {
            Bed::Local(ns) => ns,
            Bed::Routed(t) => &t.s,
        }
    }

    /// Where mptun connects to.
    fn linux_addr(&self) -> &'static str {
        match self {
            Bed::Local(_) => "198.18.1.1",
            Bed::Routed(_) => routed::LINUX_A,
        }
    }

    fn tun_args(&self) -> Vec<String> {
        RoutedTopology::tun_args()
    }

    fn all(&self) -> Vec<&NetNs> {
        match self {
            Bed::Local(ns) => vec![ns],
            Bed::Routed(t) => vec![&t.h, &t.r, &t.s],
        }
    }

    fn labels(&self) -> Vec<&'static str> {
        match self {
            Bed::Local(_) => vec!["ns"],
            Bed::Routed(_) => vec!["H", "R", "S"],
        }
    }

    fn snapshot(&self) -> Result<Vec<Snapshot>, String> {
        self.all()
            .into_iter()
            .map(|ns| {
                let c = ns.nstat().map_err(|e| format!("nstat: {e}"))?;
                let d = ns
                    .dev_stats("tx_dropped")
                    .map_err(|e| format!("tx_dropped: {e}"))?;
                Ok((c, d))
            })
            .collect()
    }
}

/// A temporary directory removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(tag: &str) -> Result<WorkDir, String> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("mptun-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(WorkDir(p))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subflows_of_a_summary() {
        let s = "sent=5 received=6 duration=1.000s goodput=1.0Mbit/s mptcp=true subflows=2 \
                 sf0=198.18.1.2:40000->198.18.12.2:5201,sent=3,received=4,rtt=0.1ms,retrans=0 \
                 sf1=198.18.2.2:40001->198.18.12.2:5201,sent=2,received=2,rtt=0.1ms,retrans=1";
        let v = subflows(s);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].local, "198.18.1.2:40000");
        assert_eq!(v[1].remote, "198.18.12.2:5201");
        assert_eq!((v[1].sent, v[1].received), (2, 2));
        assert_eq!(summary_field(s, "subflows"), Some("2"));
        assert!(subflows("sent=1").is_empty());
    }

    #[test]
    fn roles_alternate() {
        assert_eq!(Role::alternating(0), Role::MptunClient);
        assert_eq!(Role::alternating(1), Role::MptunServer);
        assert_eq!(Role::alternating(2), Role::MptunClient);
    }
}
