//! The C ABI from C: the examples in `examples/c/` compiled with `cc` against
//! `include/mptun.h` and the cdylib cargo built, a C program checking the header's layouts
//! against the Rust mirrors, and each example run in a namespace against a Linux MPTCP
//! server (`mptun linux-peer`), checked by exit code, the peer's report and the kernel's
//! MPTcpExt counters.

mod common;

use common::*;
use mptun::capi;
use mptun::testbed::peer::PeerArgs;
use mptun::testbed::{delta, require_privileges, NetNs};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Bytes each side sends in the example runs.
const BYTES: u64 = 2 * 1024 * 1024;

/// Compiles `src` (strict C99) against the header and the library into `out`.
fn compile(src: &Path, out: &Path) {
    compile_with(src, out, &[]);
}

/// [`compile`] with more include directories.
fn compile_with(src: &Path, out: &Path, includes: &[PathBuf]) {
    let lib = lib_dir();
    let o = Command::new("cc")
        .args([
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O1",
        ])
        .arg("-I")
        .arg(manifest().join("include"))
        .args(
            includes
                .iter()
                .flat_map(|i| [std::ffi::OsStr::new("-I"), i.as_os_str()]),
        )
        .arg(src)
        .arg("-o")
        .arg(out)
        .arg(format!("-L{}", lib.display()))
        .arg("-lmptun")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .output()
        .expect("run cc");
    assert!(
        o.status.success(),
        "cc {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

const EXAMPLES: &[&str] = &[
    "open_subflow",
    "close_slow",
    "backup",
    "reopen",
    "manual_pair",
];

fn build_example(dir: &TempDir, name: &str) -> PathBuf {
    let out = dir.path(name);
    compile(
        &manifest().join("examples/c").join(format!("{name}.c")),
        &out,
    );
    out
}

/// `examples/c/manual_pair.c`: two manually driven instances back to back on a fake clock
/// (connect, a join with OPEN_SUB_TUPLE, 1 MiB and 256 KiB both ways, every byte checked).
/// No root, no device, no thread.
#[test]
fn c_manual_pair_runs_two_instances_back_to_back() {
    if !have_cc("c_manual_pair") {
        return;
    }
    let dir = TempDir::new("capi-manual");
    let exe = build_example(&dir, "manual_pair");
    let out = Command::new(&exe).output().expect("run manual_pair");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "manual_pair failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("ok c2s=1048576 s2c=262144 join_id="),
        "{stdout}"
    );
    // the fake clock: the transfer took simulated time, not the wall clock's
    let ms: u64 = stdout
        .trim()
        .rsplit("virtual_ms=")
        .next()
        .and_then(|v| v.parse().ok())
        .expect("virtual_ms");
    assert!((2000..60_000).contains(&ms), "virtual time {ms} ms");
}

/// `tests/c/draft_compat.c`: a program written against the draft prototype's names
/// (bitfield members of `struct mptcp_sub_status`, OPEN_SUB_TUPLE with optlen 100, a
/// zero-initialised CLOSE_SUB_ID) compiles with `-std=c99 -pedantic -Werror` and runs.
#[test]
fn c_draft_program_compiles_and_runs() {
    if !have_cc("c_draft_program") {
        return;
    }
    let dir = TempDir::new("capi-draft");
    let exe = dir.path("draft_compat");
    compile_with(
        &manifest().join("tests/c/draft_compat.c"),
        &exe,
        &[manifest().join("examples/c")],
    );
    let out = Command::new(&exe).output().expect("run draft_compat");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "draft_compat failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok draft program"), "{stdout}");
}

#[test]
fn c_examples_compile_against_the_header() {
    if !have_cc("c_examples_compile_against_the_header") {
        return;
    }
    let dir = TempDir::new("capi-cc");
    for name in EXAMPLES {
        let exe = build_example(&dir, name);
        assert!(exe.exists(), "{name} was not built");
    }
}

/// A C program prints the header's sizes and offsets and the flag-bit layout; they must
/// equal the Rust mirrors' (which `capi.rs` asserts at compile time).
#[test]
fn header_layouts_match_the_rust_mirrors() {
    if !have_cc("header_layouts_match_the_rust_mirrors") {
        return;
    }
    let dir = TempDir::new("capi-layout");
    let src = dir.path("layout.c");
    std::fs::write(
        &src,
        r#"
#include <stdio.h>
#include "mptun.h"
#define P(x) printf(#x "=%lu\n", (unsigned long)(x))
int main(void) {
    P(sizeof(struct mptcp_sub_status));
    P(offsetof(struct mptcp_sub_status, flags));
    P(sizeof(struct mptcp_sub_ids));
    P(offsetof(struct mptcp_sub_tuple, addrs));
    P(sizeof(struct mptcp_close_sub_id));
    P(offsetof(struct mptcp_close_sub_id, how));
    P(sizeof(struct mptcp_sub_getsockopt));
    P(offsetof(struct mptcp_sub_getsockopt, level));
    P(offsetof(struct mptcp_sub_getsockopt, optname));
    P(offsetof(struct mptcp_sub_getsockopt, optval));
    P(offsetof(struct mptcp_sub_getsockopt, optlen));
    P(sizeof(struct mptcp_sub_setsockopt));
    P(offsetof(struct mptcp_sub_setsockopt, optlen));
    P(sizeof(struct mptun_tcp_info));
    P(offsetof(struct mptun_tcp_info, tcpi_rtt));
    P(offsetof(struct mptun_tcp_info, tcpi_snd_cwnd));
    P(offsetof(struct mptun_tcp_info, tcpi_bytes_sent));
    P(offsetof(struct mptun_tcp_info, tcpi_data_sent));
    P(offsetof(struct mptun_tcp_info, tcpi_total_retrans));
    P(sizeof(struct mptcp_info));
    P(offsetof(struct mptcp_info, mptcpi_token));
    P(offsetof(struct mptcp_info, mptcpi_csum_enabled));
    P(offsetof(struct mptcp_info, mptcpi_bytes_retrans));
    P(offsetof(struct mptcp_info, mptcpi_bytes_acked));
    P(offsetof(struct mptcp_info, mptcpi_subflows_total));
    P(MPTCP_INFO);
    P(sizeof(struct mptun_event));
    P(offsetof(struct mptun_event, error));
    P(offsetof(struct mptun_event, addr));
    P(MPTUN_GET_EVENTS); P(MPTUN_EVENT_SUB_CLOSED); P(MPTUN_EVENT_SUB_PRIORITY);
    P(MPTCP_SUB_TUPLE_LEN_IN);
    P(MPTCP_SUB_TUPLE_LEN_IN6);
    P(MPTCP_GET_SUB_IDS); P(MPTCP_CLOSE_SUB_ID); P(MPTCP_GET_SUB_TUPLE);
    P(MPTCP_OPEN_SUB_TUPLE); P(MPTCP_SUB_GETSOCKOPT); P(MPTCP_SUB_SETSOCKOPT);
    P(IPPROTO_MPTCP); P(SOL_MPTCP); P(MPTUN_SUB_BACKUP); P(MPTUN_SHUT_ABORT);
    P(MPTCP_SUB_SLAVE_SK); P(MPTCP_SUB_FULLY_ESTABLISHED); P(MPTCP_SUB_ATTACHED);
    P(MPTCP_SUB_LOW_PRIO); P(MPTCP_SUB_PRE_ESTABLISHED);
    return 0;
}
"#,
    )
    .unwrap();
    let exe = dir.path("layout");
    compile(&src, &exe);
    let out = Command::new(&exe).output().expect("run layout");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |k: &str| -> usize {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{k} missing in {text}"))
            .parse()
            .unwrap()
    };
    use capi::*;
    use core::mem::{offset_of, size_of};
    let expect: &[(&str, usize)] = &[
        (
            "sizeof(struct mptcp_sub_status)",
            size_of::<mptcp_sub_status>(),
        ),
        (
            "offsetof(struct mptcp_sub_status, flags)",
            offset_of!(mptcp_sub_status, flags),
        ),
        ("sizeof(struct mptcp_sub_ids)", size_of::<mptcp_sub_ids>()),
        (
            "offsetof(struct mptcp_sub_tuple, addrs)",
            offset_of!(mptcp_sub_tuple, addrs),
        ),
        (
            "sizeof(struct mptcp_close_sub_id)",
            size_of::<mptcp_close_sub_id>(),
        ),
        (
            "offsetof(struct mptcp_close_sub_id, how)",
            offset_of!(mptcp_close_sub_id, how),
        ),
        (
            "sizeof(struct mptcp_sub_getsockopt)",
            size_of::<mptcp_sub_getsockopt>(),
        ),
        (
            "offsetof(struct mptcp_sub_getsockopt, level)",
            offset_of!(mptcp_sub_getsockopt, level),
        ),
        (
            "offsetof(struct mptcp_sub_getsockopt, optname)",
            offset_of!(mptcp_sub_getsockopt, optname),
        ),
        (
            "offsetof(struct mptcp_sub_getsockopt, optval)",
            offset_of!(mptcp_sub_getsockopt, optval),
        ),
        (
            "offsetof(struct mptcp_sub_getsockopt, optlen)",
            offset_of!(mptcp_sub_getsockopt, optlen),
        ),
        (
            "sizeof(struct mptcp_sub_setsockopt)",
            size_of::<mptcp_sub_setsockopt>(),
        ),
        (
            "offsetof(struct mptcp_sub_setsockopt, optlen)",
            offset_of!(mptcp_sub_setsockopt, optlen),
        ),
        ("sizeof(struct mptun_tcp_info)", size_of::<mptun_tcp_info>()),
        (
            "offsetof(struct mptun_tcp_info, tcpi_rtt)",
            offset_of!(mptun_tcp_info, tcpi_rtt),
        ),
        (
            "offsetof(struct mptun_tcp_info, tcpi_snd_cwnd)",
            offset_of!(mptun_tcp_info, tcpi_snd_cwnd),
        ),
        (
            "offsetof(struct mptun_tcp_info, tcpi_bytes_sent)",
            offset_of!(mptun_tcp_info, tcpi_bytes_sent),
        ),
        (
            "offsetof(struct mptun_tcp_info, tcpi_data_sent)",
            offset_of!(mptun_tcp_info, tcpi_data_sent),
        ),
        (
            "offsetof(struct mptun_tcp_info, tcpi_total_retrans)",
            offset_of!(mptun_tcp_info, tcpi_total_retrans),
        ),
        // the byte offsets mptcp_info_bytes writes
        ("sizeof(struct mptcp_info)", MPTCP_INFO_LEN),
        ("offsetof(struct mptcp_info, mptcpi_token)", 12),
        ("offsetof(struct mptcp_info, mptcpi_csum_enabled)", 42),
        ("offsetof(struct mptcp_info, mptcpi_bytes_retrans)", 48),
        ("offsetof(struct mptcp_info, mptcpi_bytes_acked)", 72),
        ("offsetof(struct mptcp_info, mptcpi_subflows_total)", 80),
        ("MPTCP_INFO", MPTCP_INFO as usize),
        // the byte offsets event_bytes writes
        ("sizeof(struct mptun_event)", MPTUN_EVENT_LEN),
        ("offsetof(struct mptun_event, error)", 10),
        ("offsetof(struct mptun_event, addr)", 16),
        ("MPTUN_GET_EVENTS", MPTUN_GET_EVENTS as usize),
        ("MPTUN_EVENT_SUB_CLOSED", MPTUN_EVENT_SUB_CLOSED as usize),
        (
            "MPTUN_EVENT_SUB_PRIORITY",
            MPTUN_EVENT_SUB_PRIORITY as usize,
        ),
        ("MPTCP_SUB_TUPLE_LEN_IN", SUB_TUPLE_LEN_IN),
        ("MPTCP_SUB_TUPLE_LEN_IN6", SUB_TUPLE_LEN_IN6),
        ("MPTCP_GET_SUB_IDS", MPTCP_GET_SUB_IDS as usize),
        ("MPTCP_CLOSE_SUB_ID", MPTCP_CLOSE_SUB_ID as usize),
        ("MPTCP_GET_SUB_TUPLE", MPTCP_GET_SUB_TUPLE as usize),
        ("MPTCP_OPEN_SUB_TUPLE", MPTCP_OPEN_SUB_TUPLE as usize),
        ("MPTCP_SUB_GETSOCKOPT", MPTCP_SUB_GETSOCKOPT as usize),
        ("MPTCP_SUB_SETSOCKOPT", MPTCP_SUB_SETSOCKOPT as usize),
        ("IPPROTO_MPTCP", IPPROTO_MPTCP as usize),
        ("SOL_MPTCP", SOL_MPTCP as usize),
        ("MPTUN_SUB_BACKUP", MPTUN_SUB_BACKUP as usize),
        ("MPTUN_SHUT_ABORT", MPTUN_SHUT_ABORT as usize),
        ("MPTCP_SUB_SLAVE_SK", MPTCP_SUB_SLAVE_SK as usize),
        (
            "MPTCP_SUB_FULLY_ESTABLISHED",
            MPTCP_SUB_FULLY_ESTABLISHED as usize,
        ),
        ("MPTCP_SUB_ATTACHED", MPTCP_SUB_ATTACHED as usize),
        ("MPTCP_SUB_LOW_PRIO", MPTCP_SUB_LOW_PRIO as usize),
        (
            "MPTCP_SUB_PRE_ESTABLISHED",
            MPTCP_SUB_PRE_ESTABLISHED as usize,
        ),
    ];
    for (k, v) in expect {
        assert_eq!(get(k), *v, "{k}: C and Rust disagree");
    }
}

/// SHA-256 of what the examples send: byte i is i % 251.
fn example_pattern_sha256(len: u64) -> String {
    let mut h = Sha256::new();
    let mut chunk = Vec::with_capacity(251 * 256);
    for i in 0..251 * 256u64 {
        chunk.push((i % 251) as u8);
    }
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        h.update(&chunk[..n]);
        left -= n as u64;
    }
    mptun::testbed::peer::hex(&h.finalize())
}

struct ExampleRun {
    stdout: String,
    report: mptun::testbed::peer::PeerReport,
    before: std::collections::BTreeMap<String, u64>,
    after: std::collections::BTreeMap<String, u64>,
}

/// Runs example `name` in a fresh two-TUN namespace against a Linux MPTCP server.
fn run_example(name: &str, setup: impl FnOnce(&NetNs)) -> ExampleRun {
    run_example_env(name, setup, &[])
}

/// [`run_example`] with extra environment variables for the example.
fn run_example_env(name: &str, setup: impl FnOnce(&NetNs), env: &[(&str, &str)]) -> ExampleRun {
    // one at a time: on a loaded 2-core machine a late MP_JOIN may be refused by the kernel
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = TempDir::new(&format!("capi-{name}"));
    let exe = build_example(&dir, name);
    let ns = two_tun_namespace(&format!("capi-{name}"));
    setup(&ns);
    let before = ns.mptcp_counters().expect("counters");
    let mut server = PeerArgs::listen("0.0.0.0:5201".parse().unwrap(), BYTES, 0xC0DE);
    // Linux refuses MP_JOIN once its side of the connection is half-closed (msk no longer
    // ESTABLISHED), which a fast transfer reaches before a late join: close it last.
    server.hold = true;
    let peer = ns
        .start_peer(&exe_path(), &server, TIMEOUT_SECS)
        .expect("Linux server");
    // the example's default arguments match two_tun_namespace; BYTES is the 6th argument
    let args: Vec<String> = vec![
        default_config(name).into(),
        "198.18.1.1".into(),
        "198.18.2.2".into(),
        "198.18.2.1".into(),
        "5201".into(),
        BYTES.to_string(),
    ];
    let mut cmd = ns.exec_with_timeout(TIMEOUT_SECS, &exe, &args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied());
    let pid = ns.spawn(&mut cmd).expect("spawn example");
    let out = ns.wait_output(pid).expect("wait for the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        ns.kill_all();
    }
    assert!(
        out.status.success(),
        "{name} exited with {}\nstdout:\n{stdout}\nstderr:\n{}\nkernel MPTCP counters that changed: {:?}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        counter_diff(&before, &ns.mptcp_counters().unwrap_or_default())
    );
    let report = ns.finish_peer(peer).expect("Linux peer report");
    let after = ns.mptcp_counters().expect("counters");
    ExampleRun {
        stdout,
        report,
        before,
        after,
    }
}

fn exe_path() -> PathBuf {
    exe()
}

fn default_config(name: &str) -> &'static str {
    match name {
        "close_slow" => "tun0=198.18.1.2,tun1=198.18.2.2,impair:tun1=rate=10mbit",
        _ => "tun0=198.18.1.2,tun1=198.18.2.2",
    }
}

/// Data intact both ways, MPTCP, and a join the kernel acknowledged (MPJoinAckRx).
fn assert_common(name: &str, r: &ExampleRun) {
    assert!(r.stdout.lines().any(|l| l == "ok"), "{name}: {}", r.stdout);
    assert!(r.report.mptcp, "{name}: Linux peer was not MPTCP");
    assert_eq!(
        r.report.bytes_received, BYTES,
        "{name}: bytes Linux received"
    );
    assert_eq!(
        r.report.received_sha256,
        example_pattern_sha256(BYTES),
        "{name}: digest of what Linux received"
    );
    assert_eq!(r.report.bytes_sent, BYTES);
    assert!(
        r.stdout.contains(&format!("sent={BYTES} received={BYTES}")),
        "{name}: {}",
        r.stdout
    );
    assert_counters(
        &r.before,
        &r.after,
        &["MPCapableSYNRX", "MPJoinSynRx", "MPJoinAckRx"],
        &[
            "MPCapableFallbackACK",
            "DSSNotMatching",
            "MPJoinAckHMacFailure",
        ],
    );
}

#[test]
fn c_open_subflow_against_linux() {
    if !require_privileges("c_open_subflow_against_linux") || !have_cc("c_open_subflow") {
        return;
    }
    let r = run_example("open_subflow", |_| {});
    assert_common("open_subflow", &r);
    // the example checked MPTCP_INFO's byte counts against the transfer; the token is ours
    let mi = r
        .stdout
        .lines()
        .find(|l| l.starts_with("mptcp_info "))
        .unwrap_or_else(|| panic!("no mptcp_info line: {}", r.stdout));
    assert!(!mi.contains("token=00000000"), "{mi}");
    assert!(
        r.stdout.contains("local=198.18.2.2:") && r.stdout.contains("remote=198.18.2.1:5201"),
        "{}",
        r.stdout
    );
}

/// Re-open a subflow on a new source port after closing the first, gracefully and
/// abortively: both joins reach the kernel (MPJoinAckRx rises by 2), new id, new port.
#[test]
fn c_reopen_against_linux() {
    if !require_privileges("c_reopen_against_linux") || !have_cc("c_reopen") {
        return;
    }
    for abort in ["0", "1"] {
        let r = run_example_env("reopen", |_| {}, &[("REOPEN_ABORT", abort)]);
        assert_common("reopen", &r);
        assert!(
            delta(&r.before, &r.after, "MPJoinAckRx") >= 2,
            "abort={abort}: {:?}",
            counter_diff(&r.before, &r.after)
        );
        let how = if abort == "1" {
            "how=abort"
        } else {
            "how=graceful"
        };
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with("reopened ") && l.contains(how)),
            "{}",
            r.stdout
        );
    }
}

#[test]
fn c_close_slow_against_linux() {
    if !require_privileges("c_close_slow_against_linux") || !have_cc("c_close_slow") {
        return;
    }
    let r = run_example("close_slow", |_| {});
    assert_common("close_slow", &r);
    // the example closes the subflow with the longest RTT of those it listed
    let closed = r
        .stdout
        .lines()
        .find(|l| l.starts_with("closed "))
        .unwrap_or_else(|| panic!("no `closed` line: {}", r.stdout));
    let us = |l: &str| -> u64 {
        field(l, "rtt")
            .and_then(|v| v.strip_suffix("us"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no rtt in {l:?}"))
    };
    let max = r
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("id=") && l.contains("rtt="))
        .map(us)
        .max()
        .expect("TCP_INFO lines");
    assert_eq!(us(closed), max, "{}", r.stdout);
    assert!(
        ["198.18.1.2", "198.18.2.2"].contains(&field(closed, "local").unwrap_or("")),
        "{}",
        r.stdout
    );
}

#[test]
fn c_backup_against_linux() {
    if !require_privileges("c_backup_against_linux") || !have_cc("c_backup") {
        return;
    }
    let r = run_example("backup", |_| {});
    assert_common("backup", &r);
    assert!(
        mptun::testbed::delta(&r.before, &r.after, "MPJoinSynBackupRx") > 0,
        "the join did not carry the backup flag"
    );
    assert!(r.stdout.contains("closed primary id="), "{}", r.stdout);
}
