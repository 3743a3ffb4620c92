//! The Rust subflow API against the Linux kernel's MPTCP, in a namespace over two TUN devices.
//!
//! The API runs in the example programs (`examples/*.rs`), started with `ip netns exec`; the
//! kernel runs `mptun linux-peer` as the server on 0.0.0.0:5201. Oracles: the kernel's
//! `MPTcpExt` counters, the peer's digests, and a pcap written by the examples' runtime (the
//! MP_JOIN SYN's B bit and MSS option, the IP TOS of the subflow's packets).

mod common;

use common::*;
use mptun::testbed::peer::{self, PeerArgs};
use mptun::testbed::{delta, require_privileges, NetNs};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

const SIZE: u64 = 4 << 20;
/// The seed of the pattern the examples send (`support::transfer`).
const EXAMPLE_SEED: u64 = 0xE8A;
const PEER_SEED: u64 = 0xB0B;

/// The example binary cargo built next to this test (`target/<profile>/examples/NAME`),
/// (re)built with cargo first so that it is current.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let path = profile_dir.join("examples").join(name);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    // the same features as this test run: the library rebuilt for the example shares the
    // target dir with the targets (doctests) built after this test
    if cfg!(feature = "tokio") {
        cmd.args(["--features", "tokio"]);
    }
    if let Some(target) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    let st = cmd.status().expect("run cargo build --example");
    assert!(st.success(), "cargo build --example {name} failed");
    assert!(path.exists(), "{} missing after the build", path.display());
    path
}

struct Run {
    run: MptunRun,
    stdout: String,
}

/// Runs an example in the namespace against a fresh Linux MPTCP server; returns the
/// example's output and the server's report.
fn run_example(ns: &NetNs, name: &str, extra: &[String]) -> (Run, peer::PeerReport) {
    let exe = example(name);
    let mut listen = PeerArgs::listen("0.0.0.0:5201".parse().unwrap(), SIZE, PEER_SEED);
    // Linux refuses MP_JOIN once its side of the connection is half-closed (the msk is no
    // longer ESTABLISHED): keep sending open until the example has finished its own side.
    listen.hold = true;
    let server = ns
        .start_peer(&common::exe(), &listen, TIMEOUT_SECS)
        .expect("Linux server");
    let mut args = tun_args();
    args.push("198.18.1.1:5201".into());
    args.extend(["--bytes".into(), SIZE.to_string()]);
    args.extend(extra.iter().cloned());
    let mut cmd = ns.exec_with_timeout(TIMEOUT_SECS, &exe, &args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = std::time::Instant::now();
    let pid = ns.spawn(&mut cmd).expect("spawn example");
    let out = ns.wait_output(pid).expect("wait for the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "{name}: {:.2} s, exit {}\n{stdout}",
        started.elapsed().as_secs_f64(),
        out.status
    );
    let run = MptunRun {
        success: out.status.success(),
        status: out.status.to_string(),
        summary: mptun::testbed::last_line(&stdout),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    if !run.success {
        ns.kill_all();
    }
    assert_ok(&run, name);
    let report = ns.finish_peer(server).expect("Linux server report");
    (Run { run, stdout }, report)
}

/// Both directions complete and intact.
fn assert_intact(dir: &TempDir, r: &Run, report: &peer::PeerReport) {
    let sent = peer::write_pattern_file(&dir.path("sent.bin"), EXAMPLE_SEED, SIZE).unwrap();
    assert!(report.mptcp, "the server socket is MPTCP");
    assert_eq!(report.bytes_received, SIZE, "bytes the kernel received");
    assert_eq!(report.received_sha256, sent, "example -> kernel digest");
    assert_eq!(report.bytes_sent, SIZE);
    assert_eq!(r.run.field("received"), Some(SIZE.to_string().as_str()));
    assert_eq!(r.run.field("sent"), Some(SIZE.to_string().as_str()));
}

/// One TCP segment seen in the capture.
#[derive(Debug)]
struct Seg {
    src: Ipv4Addr,
    tos: u8,
    syn: bool,
    ack: bool,
    mss: Option<u16>,
    /// Flags nibble of an MP_JOIN option (B bit = 0x1).
    join_flags: Option<u8>,
}

/// Parses the IPv4/TCP packets of a LINKTYPE_RAW capture, skipping anything malformed.
fn read_pcap(path: &Path) -> Vec<Seg> {
    let f = std::fs::File::open(path).expect("pcap file");
    let mut r = pcap_file::pcap::PcapReader::new(f).expect("pcap header");
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let Ok(p) = p else { break };
        if let Some(s) = parse_seg(&p.data) {
            out.push(s);
        }
    }
    out
}

fn parse_seg(d: &[u8]) -> Option<Seg> {
    if d.first()? >> 4 != 4 || *d.get(9)? != 6 {
        return None;
    }
    let ihl = usize::from(d.first()? & 0xf) * 4;
    let src = Ipv4Addr::new(*d.get(12)?, *d.get(13)?, *d.get(14)?, *d.get(15)?);
    let tcp = d.get(ihl..)?;
    let doff = usize::from(tcp.get(12)? >> 4) * 4;
    let flags = *tcp.get(13)?;
    let mut opts = tcp.get(20..doff)?;
    let (mut mss, mut join_flags) = (None, None);
    while let Some(&kind) = opts.first() {
        match kind {
            0 => break,
            1 => opts = opts.get(1..)?,
            _ => {
                let len = usize::from(*opts.get(1)?);
                let body = opts.get(..len.max(2))?;
                if kind == 2 && len == 4 {
                    mss = Some(u16::from_be_bytes([body[2], body[3]]));
                }
                if kind == 30 && len >= 3 && body[2] >> 4 == 1 {
                    join_flags = Some(body[2] & 0xf);
                }
                opts = opts.get(len.max(2)..)?;
            }
        }
    }
    Some(Seg {
        src,
        tos: *d.get(1)?,
        syn: flags & 0x02 != 0,
        ack: flags & 0x10 != 0,
        mss,
        join_flags,
    })
}

const C1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
const C2: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);

fn open_on_second_tuple(backup: bool) {
    let tag = if backup { "api-bk" } else { "api-open" };
    if !require_privileges(tag) {
        return;
    }
    let ns = two_tun_namespace(tag);
    let dir = TempDir::new(tag);
    let pcap = dir.path("example.pcap");
    let before = ns.mptcp_counters().expect("counters");
    let mut extra: Vec<String> = [
        "--join-remote",
        "198.18.2.1:5201",
        "--tos",
        "0x28",
        "--maxseg",
        "1000",
        "--pcap",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    extra.push(arg(&pcap));
    if backup {
        extra.push("--backup".into());
    }
    let (r, report) = run_example(&ns, "open_subflow", &extra);
    let after = ns.mptcp_counters().expect("counters");
    assert_intact(&dir, &r, &report);
    assert_counters(
        &before,
        &after,
        &["MPJoinSynRx", "MPJoinAckRx", "MPCapableSYNRX"],
        &[
            "MPJoinAckHMacFailure",
            "DSSNotMatching",
            "MPCapableFallbackACK",
        ],
    );
    assert!(
        r.stdout.contains("remote=198.18.2.1:5201 backup="),
        "the new id was established on the second tuple: {}",
        r.stdout
    );
    // the capture: the MP_JOIN SYN carries our B bit and MSS; the subflow's packets our TOS
    let segs = read_pcap(&pcap);
    let join_syn: Vec<&Seg> = segs
        .iter()
        .filter(|s| s.src == C2 && s.syn && !s.ack && s.join_flags.is_some())
        .collect();
    // (the example retries a join Linux refused, so there may be more than one)
    assert!(!join_syn.is_empty(), "an MP_JOIN SYN from {C2}");
    let syn = join_syn[join_syn.len() - 1];
    assert_eq!(syn.join_flags.unwrap() & 1 == 1, backup, "B bit: {syn:?}");
    assert_eq!(syn.mss, Some(1000), "TCP_MAXSEG as the SYN's MSS option");
    let from_c2: Vec<&Seg> = segs.iter().filter(|s| s.src == C2).collect();
    // at least the SYN and the third ACK (an idle backup subflow sends little more)
    assert!(from_c2.len() >= 2, "packets from {C2}: {}", from_c2.len());
    assert!(
        from_c2.iter().all(|s| s.tos == 0x28),
        "every packet of the subflow has TOS 0x28"
    );
    let from_c1: Vec<&Seg> = segs.iter().filter(|s| s.src == C1).collect();
    assert!(
        from_c1.iter().all(|s| s.tos == 0),
        "the initial subflow keeps TOS 0"
    );
    let joined: u64 = r
        .stdout
        .lines()
        .find_map(|l| field(l, "joined_data_sent"))
        .and_then(|v| v.parse().ok())
        .expect("joined_data_sent");
    if backup {
        assert_eq!(
            joined, 0,
            "no data on the backup while the initial subflow works"
        );
    }
}

#[test]
fn api_open_subflow_with_options_linux_server() {
    open_on_second_tuple(false);
}

#[test]
fn api_open_backup_subflow_linux_server() {
    open_on_second_tuple(true);
}

/// Re-open a subflow on a new source port after closing the first one mid-transfer,
/// gracefully and abortively: the kernel accepts both joins, the ids and ports differ, the
/// data arrives intact.
#[test]
fn api_reopen_port_linux_server() {
    if !require_privileges("api-reopen") {
        return;
    }
    for abort in [false, true] {
        let ns = two_tun_namespace(if abort {
            "api-reopen-a"
        } else {
            "api-reopen-g"
        });
        let dir = TempDir::new("reopen_port");
        let before = ns.mptcp_counters().expect("counters");
        let mut extra = vec!["--remote2".to_string(), "198.18.2.1:5201".to_string()];
        if abort {
            extra.push("--abort".into());
        }
        let (r, report) = run_example(&ns, "reopen_port", &extra);
        let after = ns.mptcp_counters().expect("counters");
        assert_intact(&dir, &r, &report);
        assert!(
            delta(&before, &after, "MPJoinAckRx") >= 2,
            "both joins reach the kernel: {:?}",
            counter_diff(&before, &after)
        );
        let port = |prefix: &str| -> (u32, u16) {
            let l = r
                .stdout
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no `{prefix}` line: {}", r.stdout));
            let id = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("id="))
                .and_then(|v| v.parse().ok())
                .expect("id");
            let sa: std::net::SocketAddr = l
                .split_whitespace()
                .find_map(|w| w.strip_prefix("local="))
                .and_then(|v| v.parse().ok())
                .expect("local");
            (id, sa.port())
        };
        let (id1, p1) = port("opened ");
        let (id2, p2) = port("reopened ");
        assert_ne!(id1, id2, "ids are never reused");
        assert_ne!(p1, p2, "a new source port");
    }
}

/// The other examples against the kernel: each must succeed with the data intact.
#[test]
fn api_examples_linux_server() {
    if !require_privileges("api-examples") {
        return;
    }
    for (name, extra) in [
        ("subflow_options", vec!["--remote2", "198.18.2.1:5201"]),
        ("close_slow", vec!["--remote2", "198.18.2.1:5201"]),
        ("backup_promote", vec!["--remote2", "198.18.2.1:5201"]),
    ] {
        let ns = two_tun_namespace(&format!("api-{}", &name[..6]));
        let dir = TempDir::new(name);
        let before = ns.mptcp_counters().expect("counters");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (r, report) = run_example(&ns, name, &extra);
        let after = ns.mptcp_counters().expect("counters");
        assert_intact(&dir, &r, &report);
        assert_counters(&before, &after, &["MPJoinAckRx"], &["DSSNotMatching"]);
        if name == "subflow_options" {
            assert_counters(&before, &after, &["MPPrioRx"], &[]);
        }
    }
}

/// mptcp_join.sh "userspace pm add & remove address", with mptun as the side whose path
/// manager is the application (the `userspace_pm` example: `announce_address` and
/// `remove_address`, the userspace PM's ANNOUNCE and REMOVE) and a Linux MPTCP client with
/// the in-kernel path manager (`ip mptcp limits set subflows 1 add_addr_accepted 1`, as the
/// script sets on its client). The script's checks on Linux's side: chk_add_nr 1 (AddAddr),
/// chk_join_nr (Linux sends the join and receives the SYN/ACK: MPJoinSynAckRx), chk_rm_nr
/// (RmAddr on the side receiving the REMOVE_ADDR); the data arrives intact both ways.
#[test]
fn api_userspace_pm_add_and_remove_address_linux_client() {
    if !require_privileges("api-upm") {
        return;
    }
    let ns = two_tun_namespace("api-upm");
    ns.mptcp_limits(1, 1).expect("limits 1 1");
    // a few seconds of transfer, so the announcement and the removal happen while data flows
    ns.tbf("tun0", "20mbit").expect("tbf tun0");
    ns.tbf("tun1", "20mbit").expect("tbf tun1");
    let dir = TempDir::new("api-upm");
    let before = ns.mptcp_counters().expect("counters");
    let exe = example("userspace_pm");
    let mut args = tun_args();
    args.push("198.18.1.2:5201".into());
    args.extend(["--bytes".into(), SIZE.to_string()]);
    let mut cmd = ns.exec_with_timeout(TIMEOUT_SECS, &exe, &args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let pid = ns.spawn(&mut cmd).expect("spawn example");
    let mut client = PeerArgs::connect("198.18.1.2:5201".parse().unwrap(), SIZE, PEER_SEED);
    client.connect_retries = 100; // the example may still be opening its TUN devices
    client.hold = true; // Linux refuses joins once it has half-closed
    let linux = ns
        .start_peer(&common::exe(), &client, TIMEOUT_SECS)
        .expect("Linux client");
    let out = ns.wait_output(pid).expect("wait for the example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!("userspace_pm: exit {}\n{stdout}{stderr}", out.status);
    if !out.status.success() {
        ns.kill_all();
    }
    assert!(out.status.success(), "the example failed: {stderr}");
    let report = ns.finish_peer(linux).expect("Linux client report");
    let after = ns.mptcp_counters().expect("counters");
    for line in [
        "announced id=10 addr=198.18.2.2",
        "joined addr=198.18.2.2",
        "removed id=10",
    ] {
        assert!(stdout.contains(line), "no `{line}` in the example's output");
    }
    assert!(stdout.contains("subflow on 198.18.2.2 ended"));
    let sent = peer::write_pattern_file(&dir.path("sent.bin"), EXAMPLE_SEED, SIZE).unwrap();
    assert!(report.mptcp, "the client socket is MPTCP");
    assert_eq!(report.bytes_received, SIZE, "bytes the kernel received");
    assert_eq!(report.received_sha256, sent, "example -> kernel digest");
    assert_eq!(report.bytes_sent, SIZE);
    assert!(
        stdout.contains(&format!("sent={SIZE} received={SIZE}")),
        "the example's totals"
    );
    assert_counters(
        &before,
        &after,
        &["AddAddr", "MPJoinSynAckRx", "RmAddr"],
        &[
            "AddAddrDrop",
            "MPJoinSynAckHMacFailure",
            "DSSNotMatching",
            "NoDSSInWindow",
            "MPCapableFallbackACK",
        ],
    );
    let d = |n: &str| delta(&before, &after, n);
    assert_eq!(
        (d("AddAddr"), d("MPJoinSynAckRx"), d("RmAddr")),
        (1, 1, 1),
        "chk_add_nr 1, chk_join_nr 1, chk_rm_nr 1"
    );
}
