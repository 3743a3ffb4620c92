//! A Linux test bed: network namespaces, TUN and veth devices, the kernel's MPTCP counters,
//! and a Linux MPTCP peer program ([`peer`]). Used by the interop tests and `mptun demo`.
//!
//! Everything happens inside namespaces that this module creates: no traffic ever leaves
//! them. A [`NetNs`] removes its namespace (and kills every process left in it) when it is
//! dropped, also when a test panics. Creating namespaces and TUN devices needs root
//! (`CAP_NET_ADMIN` and `CAP_SYS_ADMIN`); [`skip_reason`] tells a test whether it can run.
//!
//! This is harness code: it shells out to `ip`, `tc`, `nstat` and `cat` through
//! `std::process::Command` and has no `unsafe`. Only [`twopath`] reads a clock (to report
//! how long a run took).

pub mod demo;
pub mod peer;
pub mod routed;
pub mod twopath;

use std::collections::BTreeMap;
use std::io;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Why privileged tests cannot run here, or `None` if they can (root, `ip`, `/dev/net/tun`,
/// kernel MPTCP enabled).
pub fn skip_reason() -> Option<String> {
    match effective_uid() {
        Some(0) => {}
        Some(uid) => {
            return Some(format!(
                "needs root (running as uid {uid}): the test creates network namespaces and TUN devices"
            ))
        }
        None => return Some("cannot read the effective uid from /proc/self/status".into()),
    }
    let missing: Vec<&str> = [
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
    ]
    .iter()
    .filter(|(bit, _)| has_capability(*bit) == Some(false))
    .map(|(_, name)| *name)
    .collect();
    if !missing.is_empty() {
        return Some(format!(
            "runs as root but without {} (a restricted container?): network namespaces and \
             TUN devices need CAP_NET_ADMIN and CAP_SYS_ADMIN",
            missing.join(" and ")
        ));
    }
    if Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| !s.success())
        .unwrap_or(true)
    {
        return Some("`ip` (iproute2) is not installed".into());
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("/dev/net/tun does not exist".into());
    }
    match std::fs::read_to_string("/proc/sys/net/mptcp/enabled") {
        Ok(s) if s.trim() == "1" => None,
        Ok(s) => Some(format!(
            "kernel MPTCP is disabled (net.mptcp.enabled={})",
            s.trim()
        )),
        Err(_) => Some("the kernel has no MPTCP (/proc/sys/net/mptcp/enabled missing)".into()),
    }
}

/// True when the environment says we run under CI (`CI=true`): privileged tests must run.
pub fn under_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// For tests: returns `true` if the test can run. If it cannot, under CI it panics with the
/// reason (CI must run these tests); otherwise it prints why it skips and returns `false`.
pub fn require_privileges(test: &str) -> bool {
    match skip_reason() {
        None => true,
        Some(reason) if under_ci() => {
            panic!("{test}: CI=true but the test bed cannot run: {reason}")
        }
        Some(reason) => {
            eprintln!("SKIPPED {test}: {reason} (set up as root with kernel MPTCP to run it)");
            false
        }
    }
}

/// Capability numbers (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// Whether capability `bit` is in this process's effective set (`CapEff` in
/// /proc/self/status); `None` if that cannot be read.
pub fn has_capability(bit: u32) -> Option<bool> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))?
        .trim();
    let caps = u64::from_str_radix(hex, 16).ok()?;
    Some(caps >> bit & 1 == 1)
}

/// What to tell someone whose command failed with "Operation not permitted".
const NEEDS_ROOT: &str =
    "this needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN: it creates network namespaces and TUN devices)";

/// A command as a shell would show it: `ip netns add NAME`.
fn cmd_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    // Uid: real effective saved fs
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Runs a command, returning stdout, or an error carrying the command line and stderr.
pub fn run_cmd(cmd: &mut Command) -> io::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", cmd_line(cmd))))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint =
            if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
                format!(" ({NEEDS_ROOT})")
            } else {
                String::new()
            };
        return Err(io::Error::other(format!(
            "`{}` failed ({}): {}{hint}",
            cmd_line(cmd),
            out.status,
            stderr.trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace owned by this guard; dropping it kills the processes in it and
/// deletes it.
#[derive(Debug)]
pub struct NetNs {
    name: String,
    children: Mutex<Vec<Child>>,
    tuns: Mutex<Vec<String>>,
}

impl NetNs {
    /// Creates a namespace named `mpt-PID-N-TAG` (unique per process and call), brings `lo`
    /// up and turns reverse-path filtering off.
    pub fn new(tag: &str) -> io::Result<NetNs> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let clean: String = tag
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        let name = format!("mpt-{}-{}-{}", std::process::id(), n, clean);
        run_cmd(Command::new("ip").args(["netns", "add", &name]))?;
        // From here on, Drop cleans up.
        let ns = NetNs {
            name,
            children: Mutex::new(Vec::new()),
            tuns: Mutex::new(Vec::new()),
        };
        ns.run(["ip", "link", "set", "lo", "up"])?;
        ns.sysctl("net.ipv4.conf.all.rp_filter", "0")?;
        ns.sysctl("net.ipv4.conf.default.rp_filter", "0")?;
        Ok(ns)
    }

    /// The namespace's name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command running `args` inside the namespace (`ip netns exec NAME args...`).
    pub fn exec<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]);
        c.args(args);
        c
    }

    /// Runs `args` inside the namespace to completion; stdout, or an error with stderr.
    pub fn run<I, S>(&self, args: I) -> io::Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run_cmd(&mut self.exec(args))
    }

    /// Spawns `cmd` (normally from [`NetNs::exec`]) and remembers it so that Drop kills it if
    /// it still runs. Returns its pid; use [`NetNs::wait_output`] to collect its output.
    pub fn spawn(&self, cmd: &mut Command) -> io::Result<u32> {
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("spawn {cmd:?}: {e}")))?;
        let pid = child.id();
        self.lock_children().push(child);
        Ok(pid)
    }

    /// Takes a spawned child back (to read its pipes or wait for it). `None` if `pid` was not
    /// spawned by this namespace or was already taken.
    pub fn take_child(&self, pid: u32) -> Option<Child> {
        let mut children = self.lock_children();
        let i = children.iter().position(|c| c.id() == pid)?;
        Some(children.swap_remove(i))
    }

    /// Takes the piped stdout of a spawned child (spawned with `Stdio::piped()`).
    pub fn take_stdout(&self, pid: u32) -> Option<std::process::ChildStdout> {
        self.lock_children()
            .iter_mut()
            .find(|c| c.id() == pid)
            .and_then(|c| c.stdout.take())
    }

    /// Waits for a spawned child and collects what is left of its piped output.
    pub fn wait_output(&self, pid: u32) -> io::Result<std::process::Output> {
        let child = self.take_child(pid).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no child {pid} in {}", self.name),
            )
        })?;
        child.wait_with_output()
    }

    /// A command running `exe args...` inside the namespace under `timeout`, which sends
    /// SIGTERM after `secs` seconds and SIGKILL 5 s later (exit status 124 or 137): a hang
    /// becomes a failure instead of blocking a test run.
    pub fn exec_with_timeout<I, S>(&self, secs: u64, exe: &std::path::Path, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = self.exec(["timeout", "-k", "5", &secs.to_string()]);
        c.arg(exe);
        c.args(args);
        c
    }

    fn lock_children(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        // A poisoned lock only means a panic elsewhere; the list itself is still valid.
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets a sysctl inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) -> io::Result<()> {
        self.run(["sysctl", "-q", "-w", &format!("{key}={value}")])
            .map(|_| ())
    }

    /// Creates a persistent TUN device `dev` inside the namespace (so mptun can attach to it
    /// later), gives the kernel side `kernel_addr_cidr` (e.g. `198.18.1.1/24`) and brings it
    /// up. Reverse-path filtering is turned off on it.
    pub fn add_tun(&self, dev: &str, kernel_addr_cidr: &str) -> io::Result<()> {
        self.run(["ip", "tuntap", "add", "dev", dev, "mode", "tun"])?;
        self.tuns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(dev.to_string());
        self.run(["ip", "addr", "add", kernel_addr_cidr, "dev", dev])?;
        self.run(["ip", "link", "set", dev, "up"])?;
        self.sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "0")?;
        Ok(())
    }

    /// Creates a veth pair: `dev` here with `cidr`, `peer_dev` in `peer_ns` (which may be this
    /// namespace) with `peer_cidr`, both up.
    pub fn add_veth_pair(
        &self,
        dev: &str,
        cidr: &str,
        peer_ns: &NetNs,
        peer_dev: &str,
        peer_cidr: &str,
    ) -> io::Result<()> {
        let mut args = vec![
            "ip", "link", "add", "dev", dev, "type", "veth", "peer", "name", peer_dev,
        ];
        if peer_ns.name != self.name {
            args.extend(["netns", peer_ns.name()]);
        }
        self.run(&args)?;
        self.run(["ip", "addr", "add", cidr, "dev", dev])?;
        self.run(["ip", "link", "set", dev, "up"])?;
        peer_ns.run(["ip", "addr", "add", peer_cidr, "dev", peer_dev])?;
        peer_ns.run(["ip", "link", "set", peer_dev, "up"])?;
        Ok(())
    }

    /// Shapes egress of `dev` with a token bucket: `rate` as tc writes it (`10mbit`).
    pub fn tbf(&self, dev: &str, rate: &str) -> io::Result<()> {
        self.run([
            "tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate", rate, "burst", "64kb",
            "latency", "200ms",
        ])
        .map(|_| ())
    }

    /// `ip mptcp limits set subflows N add_addr_accepted M` inside the namespace.
    pub fn mptcp_limits(&self, subflows: u32, add_addr_accepted: u32) -> io::Result<()> {
        self.run([
            "ip",
            "mptcp",
            "limits",
            "set",
            "subflows",
            &subflows.to_string(),
            "add_addr_accepted",
            &add_addr_accepted.to_string(),
        ])
        .map(|_| ())
    }

    /// `ip mptcp endpoint add ADDR dev DEV FLAGS...` (flags: `subflow`, `signal`, `backup`).
    pub fn mptcp_endpoint(&self, addr: &str, dev: &str, flags: &[&str]) -> io::Result<()> {
        let mut args = vec!["ip", "mptcp", "endpoint", "add", addr, "dev", dev];
        args.extend_from_slice(flags);
        self.run(&args).map(|_| ())
    }

    /// Sets the MTU of `dev`.
    pub fn set_mtu(&self, dev: &str, mtu: u32) -> io::Result<()> {
        self.run(["ip", "link", "set", "dev", dev, "mtu", &mtu.to_string()])
            .map(|_| ())
    }

    /// The network devices of the namespace (from `/sys/class/net`), `lo` excluded.
    pub fn devices(&self) -> io::Result<Vec<String>> {
        let out = self.run(["ls", "/sys/class/net"])?;
        Ok(out
            .split_whitespace()
            .filter(|d| *d != "lo")
            .map(str::to_string)
            .collect())
    }

    /// One of `dev`'s statistics (`/sys/class/net/DEV/statistics/NAME`, e.g. `tx_dropped`).
    pub fn dev_stat(&self, dev: &str, name: &str) -> io::Result<u64> {
        let path = format!("/sys/class/net/{dev}/statistics/{name}");
        let text = self.run(["cat", &path])?;
        text.trim()
            .parse()
            .map_err(|e| io::Error::other(format!("{path}: {e}: {text:?}")))
    }

    /// `(device, value)` of the statistic `name` for every device but `lo`.
    pub fn dev_stats(&self, name: &str) -> io::Result<BTreeMap<String, u64>> {
        let mut m = BTreeMap::new();
        for dev in self.devices()? {
            m.insert(dev.clone(), self.dev_stat(&dev, name)?);
        }
        Ok(m)
    }

    /// Every kernel counter of the namespace under `nstat`'s names (`IpFragFails`,
    /// `IcmpOutDestUnreachs`, `TcpRetransSegs`, `MPTcpExtNoDSSInWindow`, `Ip6FragFails`...),
    /// absolute values, from `nstat -asz` (which leaves nstat's history file alone).
    pub fn nstat(&self) -> io::Result<BTreeMap<String, u64>> {
        let text = self.run(["nstat", "-asz"])?;
        Ok(parse_nstat(&text))
    }

    /// The kernel's counters in this namespace, from `/proc/net/netstat`: every `MPTcpExt`
    /// counter under its own name (`MPCapableSYNRX`) and every `TcpExt` counter prefixed
    /// (`TcpExt.TCPLostRetransmit`).
    pub fn mptcp_counters(&self) -> io::Result<BTreeMap<String, u64>> {
        let text = self.run(["cat", "/proc/net/netstat"])?;
        Ok(parse_netstat(&text))
    }

    /// Kills (SIGKILL) every process running inside the namespace, e.g. to unblock a peer
    /// whose counterpart failed. Only processes in this namespace, which this guard made,
    /// are touched.
    pub fn kill_all(&self) {
        if let Ok(pids) = run_cmd(Command::new("ip").args(["netns", "pids", &self.name])) {
            for pid in pids.split_whitespace().filter(|p| p.parse::<u32>().is_ok()) {
                let _ = Command::new("kill")
                    .args(["-KILL", pid])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }

    fn cleanup(&mut self) {
        for mut c in self.lock_children().drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Anything else still running in the namespace was started by us through it.
        self.kill_all();
        let tuns: Vec<String> = self
            .tuns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for dev in tuns {
            let _ = run_cmd(&mut self.exec(["ip", "tuntap", "del", "dev", &dev, "mode", "tun"]));
        }
        if let Err(e) = run_cmd(Command::new("ip").args(["netns", "del", &self.name])) {
            eprintln!("testbed: could not delete namespace {}: {e}", self.name);
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A `mptun linux-peer` process started by [`NetNs::start_peer`].
#[derive(Debug)]
pub struct RunningPeer {
    pid: u32,
    stdout: Option<io::BufReader<std::process::ChildStdout>>,
}

impl RunningPeer {
    /// The pid of the process (the `timeout` wrapper around the peer).
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl NetNs {
    /// Starts `exe linux-peer ARGS` in the namespace, killed after `timeout_secs`. A
    /// listening peer is waited for until it has printed its `ready` line, so a client can
    /// connect right away.
    pub fn start_peer(
        &self,
        exe: &std::path::Path,
        args: &peer::PeerArgs,
        timeout_secs: u64,
    ) -> io::Result<RunningPeer> {
        use io::BufRead;
        let mut argv = vec!["linux-peer".to_string()];
        argv.extend(args.to_args());
        let mut cmd = self.exec_with_timeout(timeout_secs, exe, argv);
        // stderr is piped too (only error lines: small), for `finish_peer`'s error message
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let pid = self.spawn(&mut cmd)?;
        let out = self
            .take_stdout(pid)
            .ok_or_else(|| io::Error::other("linux-peer stdout was not piped"))?;
        let mut reader = io::BufReader::new(out);
        if args.listen.is_some() {
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    let status = self.wait_output(pid).map(|o| o.status.to_string());
                    return Err(io::Error::other(format!(
                        "linux-peer exited before listening ({status:?})"
                    )));
                }
                if line.starts_with("ready") {
                    break;
                }
            }
        }
        Ok(RunningPeer {
            pid,
            stdout: Some(reader),
        })
    }

    /// Waits for a peer to finish and parses its report. Fails if it exited non-zero (its
    /// stderr went to ours) or printed no report.
    pub fn finish_peer(&self, mut p: RunningPeer) -> io::Result<peer::PeerReport> {
        use io::Read;
        let mut text = String::new();
        if let Some(mut r) = p.stdout.take() {
            r.read_to_string(&mut text)?;
        }
        let out = self.wait_output(p.pid)?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "linux-peer failed ({}){}; stdout: {}; stderr: {}",
                out.status,
                if out.status.code() == Some(124) {
                    " (timed out)"
                } else {
                    ""
                },
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with("role="))
            .ok_or_else(|| io::Error::other(format!("linux-peer printed no report: {text:?}")))?;
        line.parse().map_err(io::Error::other)
    }
}

/// Parses `/proc/net/netstat` (pairs of `Section: names...` / `Section: values...` lines).
/// `MPTcpExt` counters keep their names, `TcpExt` ones get a `TcpExt.` prefix, other
/// sections are ignored. Malformed lines are skipped.
pub fn parse_netstat(text: &str) -> BTreeMap<String, u64> {
    let mut map = BTreeMap::new();
    let mut lines = text.lines();
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let (Some((sec_a, names)), Some((sec_b, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        if sec_a != sec_b {
            continue;
        }
        let prefix = match sec_a {
            "MPTcpExt" => "",
            "TcpExt" => "TcpExt.",
            _ => continue,
        };
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse::<u64>() {
                map.insert(format!("{prefix}{n}"), v);
            }
        }
    }
    map
}

/// The last non-empty line of a program's output (mptun prints its one-line summary last).
pub fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

/// Parses `nstat` output (`NAME VALUE RATE` lines; `#` lines and malformed lines skipped).
pub fn parse_nstat(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((name.to_string(), v))
        })
        .collect()
}

/// `after[name] - before[name]` (a missing counter counts as 0; never negative).
pub fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, name: &str) -> u64 {
    let a = after.get(name).copied().unwrap_or(0);
    let b = before.get(name).copied().unwrap_or(0);
    a.saturating_sub(b)
}

/// All counters that changed between two snapshots, as `(name, delta)`.
pub fn deltas(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    after
        .keys()
        .map(|k| (k.clone(), delta(before, after, k)))
        .filter(|(_, d)| *d != 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "TcpExt: SyncookiesSent DelayedACKs\n\
TcpExt: 3 17\n\
IpExt: InNoRoutes\n\
IpExt: 5\n\
MPTcpExt: MPCapableSYNRX MPCapableACKRX DSSNotMatching\n\
MPTcpExt: 2 1 0\n";

    #[test]
    fn parses_mptcp_and_tcp_sections() {
        let m = parse_netstat(SAMPLE);
        assert_eq!(m.get("MPCapableSYNRX"), Some(&2));
        assert_eq!(m.get("MPCapableACKRX"), Some(&1));
        assert_eq!(m.get("DSSNotMatching"), Some(&0));
        assert_eq!(m.get("TcpExt.DelayedACKs"), Some(&17));
        assert!(!m.contains_key("InNoRoutes"));
        assert!(!m.contains_key("IpExt.InNoRoutes"));
    }

    #[test]
    fn malformed_input_is_skipped() {
        assert!(parse_netstat("garbage\nMPTcpExt: x\n").is_empty());
        let m = parse_netstat("MPTcpExt: A B\nMPTcpExt: 1 notanumber\n");
        assert_eq!(m.get("A"), Some(&1));
        assert!(!m.contains_key("B"));
    }

    #[test]
    fn delta_saturates_and_lists_changes() {
        let before = parse_netstat("MPTcpExt: A B C\nMPTcpExt: 1 5 7\n");
        let after = parse_netstat("MPTcpExt: A B C D\nMPTcpExt: 4 3 7 2\n");
        assert_eq!(delta(&before, &after, "A"), 3);
        assert_eq!(delta(&before, &after, "B"), 0);
        assert_eq!(delta(&before, &after, "D"), 2);
        assert_eq!(delta(&before, &after, "Missing"), 0);
        assert_eq!(
            deltas(&before, &after),
            vec![("A".to_string(), 3), ("D".to_string(), 2)]
        );
    }

    #[test]
    fn parses_nstat_output() {
        let m = parse_nstat(
            "#kernel\nIpFragFails                     3                  0.0\n\
             MPTcpExtNoDSSInWindow           0                  0.0\ngarbage\nX y\n",
        );
        assert_eq!(m.get("IpFragFails"), Some(&3));
        assert_eq!(m.get("MPTcpExtNoDSSInWindow"), Some(&0));
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn skip_reason_is_consistent_with_uid() {
        // Whatever the machine, the answer must mention root when we are not root.
        if effective_uid() != Some(0) {
            assert!(skip_reason().unwrap().contains("root"));
        }
    }
}
