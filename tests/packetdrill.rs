//! Linux's packetdrill scripts against mptun (docs/CONFORMANCE.md, issue 10).
//!
//! packetdrill (the multipath-tcp fork, ../shared/packetdrill) is built from its tarball into
//! `<target>/packetdrill` by `tools/packetdrill/build.sh`, and runs each script in its
//! shared-object mode over `tools/packetdrill/mptun_shim.c`: a manually driven mptun instance
//! (`mptun_instance_*`) on a virtual clock, so no TUN device, no root and no traffic outside
//! the process. Each script's shell lines (backticks: `sysctl`, `ip mptcp endpoint`,
//! `../common/server.sh`) are never run: [`translate`] turns the ones it knows into the
//! instance's configuration and blanks them (line numbers stay the same).
//!
//! All 41 MPTCP scripts and a sample of the TCP scripts run; the test prints a table (also
//! written to `<target>/packetdrill/results.md`) and fails if a script of [`EXPECTED_PASS`]
//! fails. A script passing that is not in the list is reported, to be added.
//! Needs cc, make, bison, flex and OpenSSL's headers; without them it is skipped with the
//! reason, except under CI=true where it fails.

mod common;

use common::*;
use mptun::testbed::under_ci;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Our address in every script (packetdrill's --local_ip); server.sh's second address is
/// the next one.
const LOCAL_IP: &str = "192.168.0.1";
/// A script still running after this long (real time) has hung: it is killed and fails.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// The TCP scripts run (paths under gtests/net/tcp): plain TCP behaviour of the subflow
/// engine through the same C ABI.
const TCP_SAMPLE: &[&str] = &[
    "blocking/blocking-accept.pkt",
    "blocking/blocking-connect.pkt",
    "blocking/blocking-read.pkt",
    "blocking/blocking-write.pkt",
    "close/close-local-close-then-remote-fin.pkt",
    "close/close-on-syn-sent.pkt",
    "close/close-remote-fin-then-close.pkt",
    "shutdown/shutdown-rd-close.pkt",
    "shutdown/shutdown-rd-wr-close.pkt",
    "shutdown/shutdown-rdwr-close.pkt",
    "shutdown/shutdown-wr-close.pkt",
    "ts_recent/fin_tsval.pkt",
    "ts_recent/invalid_ack.pkt",
    "ts_recent/reset_tsval.pkt",
    "validate/validate-established-no-flags.pkt",
    "mss/mss-getsockopt-tcp_maxseg-server.pkt",
    "nagle/https_client.pkt",
    "limited_transmit/limited-transmit-sack.pkt",
    "sack/sack-shift-sacked-2-6-8-3-9-nofack.pkt",
    "user_timeout/user_timeout.pkt",
];

/// Scripts whose result depends on thread interleaving (docs/CONFORMANCE.md): neither
/// required nor reported as newly passing.
const UNSTABLE: &[&str] = &["tcp/blocking/blocking-read.pkt"];

/// Scripts that pass today and must keep passing (`mptcp/...` or `tcp/...`); the others and
/// why they fail: docs/CONFORMANCE.md.
const EXPECTED_PASS: &[&str] = &[
    "mptcp/mp_reset/mp_reset_multi_v4.pkt",
    "mptcp/fastclose/receive_fastclose_with_rst_multi_v4.pkt",
    "mptcp/fastclose/receive_fastclose_with_ack_multi_v4.pkt",
    "mptcp/add_addr/add_addr_server.pkt",
    "mptcp/add_addr/add_addr_client.pkt",
    "mptcp/dss/dss_fin_server.pkt",
    "mptcp/syscalls/connect_close_ack_ooo.pkt",
    "mptcp/syscalls/connect_close.pkt",
    "mptcp/mp_capable/v1_bind_tcpfallback_wrongver_3rd_ack.pkt",
    "mptcp/mp_reset/mp_reset_single.pkt",
    "mptcp/fastclose/receive_fastclose_with_ack.pkt",
    "mptcp/dss/mpc_with_data_server.pkt",
    "mptcp/dss/dss_ssn_specified_server.pkt",
    "mptcp/dss/dss_ssn_specified_client.pkt",
    "mptcp/dss/mpc_with_data_client.pkt",
    "mptcp/mp_capable/v1_bind_tcpfallback_flagB.pkt",
    "mptcp/mp_capable/v1_bind_tcpfallback_flagB_3rd_ack.pkt",
    "mptcp/mp_capable/v1_bind_tcpfallback_flagH.pkt",
    "mptcp/mp_capable/v1_bind_tcpfallback_flagH_3rd_ack.pkt",
    "mptcp/mp_capable/v1_bind_tcpfallback_wrongver.pkt",
    "mptcp/mp_capable/v1_connect_tcpfallback_flagB.pkt",
    "mptcp/mp_capable/v1_connect_tcpfallback_flagH.pkt",
    "mptcp/mp_capable/v1_connect_tcpfallback_wrongver.pkt",
    "mptcp/mp_capable/v1_mp_capable_bind_no_cs.pkt",
    "mptcp/mp_capable/v1_mp_capable_connect_no_cs.pkt",
    "mptcp/mp_join/mp_join_server_bad_token.pkt",
    "mptcp/mp_reset/mp_reset_single_tcp.pkt",
    "mptcp/regressions/unconnected_read.pkt",
    "mptcp/regressions/unconnected_shutdown.pkt",
    "mptcp/regressions/zero_len_recvmsg.pkt",
    "mptcp/syscalls/connect_poll.pkt",
    "mptcp/syscalls/connect_reset_poll.pkt",
    "mptcp/syscalls/connect_reset_send.pkt",
    "mptcp/syscalls/connect_send.pkt",
    "tcp/blocking/blocking-accept.pkt",
    "tcp/blocking/blocking-connect.pkt",
    "tcp/close/close-local-close-then-remote-fin.pkt",
    "tcp/close/close-on-syn-sent.pkt",
    "tcp/close/close-remote-fin-then-close.pkt",
    "tcp/mss/mss-getsockopt-tcp_maxseg-server.pkt",
    "tcp/shutdown/shutdown-rd-close.pkt",
    "tcp/shutdown/shutdown-rdwr-close.pkt",
    "tcp/shutdown/shutdown-wr-close.pkt",
    "tcp/ts_recent/fin_tsval.pkt",
];

/// The instance configuration and notes a script's shell lines translate to.
#[derive(Debug, Default)]
struct Translation {
    /// `mptun_instance_new` items besides our address.
    items: Vec<String>,
    /// Shell commands with no stack equivalent (reported, not run).
    untranslated: Vec<String>,
}

impl Translation {
    fn push(&mut self, item: String) {
        if !self.items.contains(&item) {
            self.items.push(item);
        }
    }

    fn config(&self) -> String {
        let mut c = vec![
            format!("if0={LOCAL_IP}"),
            "pm=fullmesh".into(),
            "seed=1".into(),
        ];
        c.extend(self.items.iter().cloned());
        c.join(",")
    }
}

/// The address after `ip` (server.sh's "next" host).
fn next_ip(ip: &str) -> String {
    let a: std::net::Ipv4Addr = ip.parse().expect("IPv4 local address");
    std::net::Ipv4Addr::from(u32::from(a) + 1).to_string()
}

/// Linux's window scale for a receive buffer maximum (tcp_select_initial_window).
fn linux_wscale(rmem_max: u64) -> u8 {
    let (mut space, mut ws) = (rmem_max, 0u8);
    while space > 65535 && ws < 14 {
        space >>= 1;
        ws += 1;
    }
    ws
}

/// One shell command of a script, as stack configuration.
fn translate_command(cmd: &str, t: &mut Translation) {
    let cmd = cmd.trim();
    let words: Vec<&str> = cmd.split_whitespace().collect();
    match words.as_slice() {
        [] => {}
        // gtests/net/{mptcp,}/common/defaults.sh: tcp_rmem max 15 MiB (window scale 8 as
        // Linux computes it), timestamps and SACK on; the rest (syncookies, congestion
        // control name, ECN off, ...) are mptun's defaults or have no effect on these scripts
        ["../common/defaults.sh"] | ["../../common/defaults.sh"] => {
            t.push(format!("wscale={}", linux_wscale(15 * 1024 * 1024)));
            t.push("timestamps=1".into());
            t.push("sack=1".into());
        }
        // mptcp/common/server.sh: a second local address announced (signal endpoint),
        // limits add_addr_accepted 8 subflows 8
        ["../common/server.sh"] => {
            let host = next_ip(LOCAL_IP);
            t.push(format!("if1={host}"));
            t.push(format!("signal={host}"));
            t.push("subflows=8".into());
            t.push("add_addr_accepted=8".into());
        }
        // mptcp/common/client.sh: no endpoint, limits 8 8
        ["../common/client.sh"] => {
            t.push("subflows=8".into());
            t.push("add_addr_accepted=8".into());
        }
        ["ip", "mptcp", "endpoint", "flush"] => {}
        ["ip", "mptcp", "endpoint", "add", addr, "signal"] => {
            let n = t.items.len();
            t.push(format!("ep{n}={addr}"));
            t.push(format!("signal={addr}"));
        }
        ["sysctl", "-q", kv] | ["sysctl", kv] => match kv.split_once('=') {
            Some(("net.ipv4.tcp_timestamps", v)) => t.push(format!("timestamps={v}")),
            Some(("net.ipv4.tcp_sack", v)) => t.push(format!("sack={v}")),
            _ => t.untranslated.push(cmd.to_string()),
        },
        // set_sysctls.py saves the old values and writes /proc/sys files; the restore script
        // it writes puts them back: with nothing written there is nothing to restore
        ["../common/set_sysctls.py", settings @ ..] => {
            for kv in settings {
                match kv.split_once('=') {
                    Some(("/proc/sys/net/ipv4/tcp_timestamps", v)) => {
                        t.push(format!("timestamps={v}"))
                    }
                    Some(("/proc/sys/net/ipv4/tcp_sack", v)) => t.push(format!("sack={v}")),
                    _ => t.untranslated.push(format!("set_sysctls.py {kv}")),
                }
            }
        }
        [restore] if restore.starts_with("/tmp/sysctl_restore_") => {}
        // a manual instance has no segmentation offload to turn off
        ["ethtool", "-K", _, rest @ ..]
            if rest
                .iter()
                .all(|w| ["tso", "gso", "gro", "off"].contains(w)) => {}
        _ => t.untranslated.push(cmd.to_string()),
    }
}

/// The script with every backtick shell command blanked (whole lines, so that a timed
/// `+0 \`cmd\`` line leaves no dangling time), and their translation.
fn translate(script: &str) -> (String, Translation) {
    let mut t = Translation::default();
    let mut out = String::with_capacity(script.len());
    let mut in_cmd: Option<String> = None;
    for line in script.split_inclusive('\n') {
        let nl = if line.ends_with('\n') { "\n" } else { "" };
        let body = line.trim_end_matches('\n');
        match in_cmd.take() {
            Some(mut cmd) => {
                // continuation of a multi-line command
                match body.split_once('`') {
                    Some((rest, _)) => {
                        cmd.push('\n');
                        cmd.push_str(rest);
                        for c in cmd.split(['\n', ';']) {
                            translate_command(c, &mut t);
                        }
                    }
                    None => {
                        cmd.push('\n');
                        cmd.push_str(body);
                        in_cmd = Some(cmd);
                    }
                }
                out.push_str(nl);
            }
            None => {
                let comment = body.trim_start().starts_with("//");
                match body.split_once('`').filter(|_| !comment) {
                    None => out.push_str(line),
                    Some((_, rest)) => {
                        match rest.split_once('`') {
                            Some((cmd, _)) => {
                                for c in cmd.split(['\n', ';']) {
                                    translate_command(c, &mut t);
                                }
                            }
                            None => in_cmd = Some(rest.to_string()),
                        }
                        out.push_str(nl);
                    }
                }
            }
        }
    }
    (out, t)
}

struct Outcome {
    name: String,
    pass: bool,
    detail: String,
    config: String,
    untranslated: Vec<String>,
}

/// Builds packetdrill (cached) into `<target>/packetdrill`; `None` (skip) if the tools are
/// missing outside CI.
fn packetdrill_dir() -> Option<PathBuf> {
    let target = lib_dir()
        .parent()
        .expect("target dir above the profile dir")
        .to_path_buf();
    let out = target.join("packetdrill");
    let o = Command::new(manifest().join("tools/packetdrill/build.sh"))
        .arg(&out)
        .output()
        .expect("run tools/packetdrill/build.sh");
    if !o.status.success() {
        let why = String::from_utf8_lossy(&o.stderr).trim().to_string();
        assert!(!under_ci(), "CI=true but packetdrill did not build: {why}");
        eprintln!("SKIPPED packetdrill: it did not build: {why}");
        return None;
    }
    Some(out)
}

/// Compiles the shim against the header and libmptun.
fn build_shim(pd: &Path) -> PathBuf {
    let lib = lib_dir();
    let so = pd.join("mptun_shim.so");
    let o = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(manifest().join("include"))
        .arg(manifest().join("tools/packetdrill/mptun_shim.c"))
        .arg(format!("-L{}", lib.display()))
        .arg("-lmptun")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lpthread")
        .arg("-o")
        .arg(&so)
        .output()
        .expect("run cc");
    assert!(
        o.status.success(),
        "cc mptun_shim.c failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    so
}

/// The first line of packetdrill's output that says why the script failed.
fn failure_detail(stderr: &str, stdout: &str) -> String {
    let all: Vec<&str> = stderr.lines().chain(stdout.lines()).collect();
    let first = all
        .iter()
        .position(|l| l.contains("error") || l.contains("assert") || l.contains("Timeout"))
        .unwrap_or(0);
    all.iter()
        .skip(first)
        .take(3)
        .map(|l| l.trim())
        .collect::<Vec<_>>()
        .join(" / ")
}

fn run_script(pd: &Path, shim: &Path, dir: &TempDir, rel: &str) -> Outcome {
    let src = pd.join("gtests/net").join(rel);
    let text = std::fs::read_to_string(&src).expect("read script");
    let (script, t) = translate(&text);
    let file = dir.path(&rel.replace('/', "_"));
    std::fs::write(&file, script).expect("write script");
    let config = t.config();
    let mut child = Command::new(pd.join("packetdrill"))
        .arg(format!("--so_filename={}", shim.display()))
        .arg(format!("--so_flags={config}"))
        .arg(format!("--local_ip={LOCAL_IP}"))
        .arg(&file)
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run packetdrill");
    let start = Instant::now();
    let mut timed_out = false;
    loop {
        if child.try_wait().expect("wait packetdrill").is_some() {
            break;
        }
        if start.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill(); // our own child, by its pid
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().expect("packetdrill output");
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let pass = o.status.success() && !timed_out;
    let detail = if timed_out {
        format!("hung: killed after {} s", SCRIPT_TIMEOUT.as_secs())
    } else if pass {
        String::new()
    } else {
        failure_detail(&stderr, &stdout)
    };
    Outcome {
        name: rel.to_string(),
        pass,
        detail,
        config,
        untranslated: t.untranslated,
    }
}

fn mptcp_scripts(pd: &Path) -> Vec<String> {
    let root = pd.join("gtests/net/mptcp");
    let mut v = Vec::new();
    for d in std::fs::read_dir(&root).expect("mptcp scripts") {
        let d = d.unwrap().path();
        if !d.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&d).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "pkt") {
                let rel = f.strip_prefix(pd.join("gtests/net")).unwrap();
                v.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    v.sort();
    v
}

#[test]
fn shell_lines_become_configuration_and_are_blanked() {
    let s = "--tolerance_usecs=100000\n`../common/defaults.sh`\n+0    `../common/server.sh`\n\
             // `not a command`\n+0 socket(..., SOCK_STREAM, IPPROTO_MPTCP) = 3\n\
             `sysctl -q net.ipv4.tcp_timestamps=0\nip route show`\n+0 close(3) = 0\n";
    let (out, t) = translate(s);
    assert_eq!(out.lines().count(), s.lines().count(), "line numbers kept");
    assert!(!out.contains('`') || out.contains("// `not a command`"));
    assert!(out.contains("+0 socket(") && out.contains("+0 close(3)"));
    assert!(!out.contains("server.sh") && !out.contains("sysctl"));
    let c = t.config();
    for item in [
        "wscale=8",
        "if1=192.168.0.2",
        "signal=192.168.0.2",
        "subflows=8",
        "timestamps=0",
    ] {
        assert!(c.contains(item), "{item} missing in {c}");
    }
    assert_eq!(t.untranslated, ["ip route show"]);
    assert_eq!(linux_wscale(6 * 1024 * 1024), 7);
}

#[test]
fn packetdrill_scripts() {
    if !have_cc("packetdrill") {
        return;
    }
    let Some(pd) = packetdrill_dir() else {
        return;
    };
    let shim = build_shim(&pd);
    let dir = TempDir::new("packetdrill");
    let mptcp = mptcp_scripts(&pd);
    assert_eq!(mptcp.len(), 41, "the fork's 41 MPTCP scripts: {mptcp:?}");
    let mut all: Vec<String> = mptcp;
    all.extend(TCP_SAMPLE.iter().map(|s| format!("tcp/{s}")));
    let outcomes: Vec<Outcome> = all
        .iter()
        .map(|s| run_script(&pd, &shim, &dir, s))
        .collect();

    let mut table = String::from("| script | result | why it failed |\n|---|---|---|\n");
    for o in &outcomes {
        let mut why = o.detail.replace('|', "\\|");
        if !o.untranslated.is_empty() {
            why.push_str(&format!(
                " (shell lines not translated: {:?})",
                o.untranslated
            ));
        }
        table.push_str(&format!(
            "| {} | {} | {} |\n",
            o.name,
            if o.pass { "pass" } else { "FAIL" },
            why
        ));
    }
    let passed = |p: &str| {
        outcomes
            .iter()
            .filter(|o| o.pass && o.name.starts_with(p))
            .count()
    };
    let total = |p: &str| outcomes.iter().filter(|o| o.name.starts_with(p)).count();
    let summary = format!(
        "packetdrill: mptcp {}/{} pass, tcp {}/{} pass",
        passed("mptcp/"),
        total("mptcp/"),
        passed("tcp/"),
        total("tcp/")
    );
    println!("{table}\n{summary}");
    let _ = std::fs::write(pd.join("results.md"), format!("{table}\n{summary}\n"));
    for o in &outcomes {
        if o.pass {
            continue;
        }
        println!("--- {}: config {}", o.name, o.config);
    }
    let newly: Vec<&str> = outcomes
        .iter()
        .filter(|o| {
            o.pass
                && !EXPECTED_PASS.contains(&o.name.as_str())
                && !UNSTABLE.contains(&o.name.as_str())
        })
        .map(|o| o.name.as_str())
        .collect();
    if !newly.is_empty() {
        println!("passing now, not yet in EXPECTED_PASS: {newly:?}");
    }
    let regressed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.pass && EXPECTED_PASS.contains(&o.name.as_str()))
        .map(|o| format!("{}: {}", o.name, o.detail))
        .collect();
    for e in EXPECTED_PASS {
        assert!(
            outcomes.iter().any(|o| o.name == *e),
            "{e} in EXPECTED_PASS but not run"
        );
    }
    assert!(
        regressed.is_empty(),
        "scripts that passed before fail now:\n{}",
        regressed.join("\n")
    );
}
