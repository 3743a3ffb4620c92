//! Observability of `mptun connect` against Linux MPTCP (issue 11), two paths shaped by
//! mptun's impairment so the transfer lasts about a second:
//!
//! - `--json`: the summary is one JSON object whose totals and per-subflow fields (local,
//!   remote, sent, received, rtt, cwnd, retrans, state) agree with the transfer;
//! - `--stats-interval`: progress lines on stderr while the transfer runs (JSON lines with
//!   `--json`), with rising counters bounded by the transfer size, both subflows, rtt, cwnd
//!   and state; the text form has the same fields.

mod common;

use common::*;
use mptun::testbed::peer::{self, PeerArgs};
use mptun::testbed::require_privileges;
use serde_json::Value;
use std::net::SocketAddr;

const SIZE: u64 = 4 << 20;
const STATES: &[&str] = &[
    "closed",
    "syn-sent",
    "syn-received",
    "established",
    "fin-wait-1",
    "fin-wait-2",
    "close-wait",
    "closing",
    "last-ack",
    "time-wait",
];

/// Runs `mptun connect` with `extra` options, sending and receiving SIZE bytes to and from
/// a Linux MPTCP server over both paths; checks the data arrived intact both ways.
fn transfer(tag: &str, extra: &[&str]) -> MptunRun {
    transfer_with(tag, extra, |_| {})
}

/// [`transfer`], calling `during` with mptun's pid (the process itself, not its `timeout`
/// wrapper) while it runs.
fn transfer_with(tag: &str, extra: &[&str], during: impl FnOnce(u32)) -> MptunRun {
    let ns = two_tun_namespace(tag);
    let dir = TempDir::new(tag);
    let input = dir.path("in.bin");
    let output = dir.path("out.bin");
    let sent_digest = peer::write_pattern_file(&input, 0x5747, SIZE).expect("input file");
    let mut linux = PeerArgs::listen("0.0.0.0:5201".parse().unwrap(), SIZE, 0xB0B);
    linux.hold = true;
    let server = ns
        .start_peer(&exe(), &linux, TIMEOUT_SECS)
        .expect("Linux server");
    let mut args = vec!["connect".to_string()];
    args.extend(tun_args());
    args.push("198.18.1.1:5201".into());
    args.extend(
        [
            "--input",
            &arg(&input),
            "--output",
            &arg(&output),
            // ~20 Mbit/s per path each way: the transfer takes about a second
            "--impair",
            "tun0/both:rate=20mbit",
            "--impair",
            "tun1/both:rate=20mbit",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    let pid = spawn_mptun(&ns, &args);
    during(mptun_child(pid));
    let run = wait_mptun(&ns, pid);
    if !run.success {
        ns.kill_all();
    }
    assert_ok(&run, tag);
    let report = ns.finish_peer(server).expect("Linux report");
    assert_eq!(report.bytes_received, SIZE, "bytes Linux received");
    assert_eq!(report.received_sha256, sent_digest, "mptun -> Linux digest");
    assert_eq!(
        peer::sha256_file(&output).expect("output"),
        report.sent_sha256,
        "Linux -> mptun digest"
    );
    run
}

/// The pid of mptun under the `timeout` wrapper `pid` (waits up to 5 s for it to start).
fn mptun_child(pid: u32) -> u32 {
    for _ in 0..500 {
        let path = format!("/proc/{pid}/task/{pid}/children");
        if let Some(c) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.split_whitespace().next().and_then(|c| c.parse().ok()))
        {
            return c;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("mptun did not start under the timeout wrapper {pid}");
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// The fields every subflow object has, with plausible values.
fn check_subflow(sf: &Value) {
    let local: SocketAddr = sf["local"].as_str().expect("local").parse().expect("local");
    let remote: SocketAddr = sf["remote"]
        .as_str()
        .expect("remote")
        .parse()
        .expect("remote");
    assert!(
        ["198.18.1.2", "198.18.2.2"].contains(&local.ip().to_string().as_str()),
        "local {local}"
    );
    assert!(
        ["198.18.1.1", "198.18.2.1"].contains(&remote.ip().to_string().as_str()),
        "remote {remote}"
    );
    for k in ["sent", "received", "cwnd", "retrans"] {
        assert!(sf[k].is_u64(), "{k} is not an unsigned integer in {sf}");
    }
    assert!(num(sf, "rtt") >= 0.0, "{sf}");
    let state = sf["state"].as_str().expect("state");
    assert!(STATES.contains(&state), "state {state:?}");
}

#[test]
fn json_summary_and_stats_lines_match_the_transfer() {
    if !require_privileges("json_summary_and_stats_lines_match_the_transfer") {
        return;
    }
    let run = transfer("stats-json", &["--json", "--stats-interval", "100"]);

    // the summary: one JSON object, the last line of stdout
    let s: Value = serde_json::from_str(&run.summary)
        .unwrap_or_else(|e| panic!("summary is not JSON ({e}): {}", run.summary));
    assert_eq!(s["sent"].as_u64(), Some(SIZE), "{s}");
    assert_eq!(s["received"].as_u64(), Some(SIZE), "{s}");
    assert_eq!(s["mptcp"].as_bool(), Some(true), "{s}");
    assert!(
        num(&s, "duration") > 0.0 && num(&s, "goodput_mbps") > 0.0,
        "{s}"
    );
    let sfs = s["subflows"].as_array().expect("subflows");
    assert!(sfs.len() >= 2, "two paths, two subflows at least: {s}");
    for sf in sfs {
        check_subflow(sf);
    }
    // data-level bytes per subflow add up to at least the transfer (re-sent data counts
    // again), both paths carried data, and whatever carried data measured an RTT and has a
    // congestion window
    let total = |k: &str| sfs.iter().map(|sf| sf[k].as_u64().unwrap()).sum::<u64>();
    assert!(total("sent") >= SIZE && total("sent") < SIZE * 2, "{s}");
    assert!(
        total("received") >= SIZE && total("received") < SIZE * 2,
        "{s}"
    );
    for sf in sfs.iter().filter(|sf| sf["sent"].as_u64() > Some(0)) {
        assert!(num(sf, "rtt") > 0.0 && num(sf, "cwnd") > 0.0, "{sf}");
    }
    let locals: std::collections::BTreeSet<&str> = sfs
        .iter()
        .filter(|sf| sf["sent"].as_u64() > Some(0))
        .map(|sf| sf["local"].as_str().unwrap().split(':').next().unwrap())
        .collect();
    assert_eq!(locals.len(), 2, "both paths carried data: {s}");

    // progress on stderr: JSON lines of type "stats" while the transfer ran
    let stats: Vec<Value> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line ({e}): {l}")))
        .collect();
    assert!(
        stats.len() >= 3,
        "{} stats lines in a ~1 s transfer with --stats-interval 100:\n{}",
        stats.len(),
        run.stderr
    );
    let mut last = (0.0, 0, 0);
    for st in &stats {
        assert_eq!(st["type"].as_str(), Some("stats"), "{st}");
        assert_eq!(st["mptcp"].as_bool(), Some(true), "{st}");
        let (t, acked, received) = (
            num(st, "t"),
            st["acked"].as_u64().expect("acked"),
            st["received"].as_u64().expect("received"),
        );
        assert!(t > last.0, "time goes forward: {st}");
        assert!(
            acked >= last.1 && received >= last.2,
            "counters never fall: {st}"
        );
        // (+1: the DATA_FIN takes a data sequence number)
        assert!(
            acked <= SIZE + 1 && received <= SIZE + 1,
            "beyond the transfer: {st}"
        );
        assert!(
            num(st, "tx_mbps") >= 0.0 && num(st, "rx_mbps") >= 0.0,
            "{st}"
        );
        for sf in st["subflows"].as_array().expect("subflows") {
            check_subflow(sf);
        }
        last = (t, acked, received);
    }
    // the transfer was seen under way: a line with data moving on two established subflows
    assert!(
        stats.iter().any(|st| {
            num(st, "tx_mbps") > 0.0
                && num(st, "rx_mbps") > 0.0
                && st["subflows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|sf| sf["state"] == "established")
                    .count()
                    >= 2
        }),
        "no line with data moving on two established subflows:\n{}",
        run.stderr
    );
    let intervals: Vec<f64> = stats
        .windows(2)
        .map(|w| num(&w[1], "t") - num(&w[0], "t"))
        .collect();
    assert!(
        intervals.iter().all(|d| (0.05..0.5).contains(d)),
        "lines about every 100 ms: {intervals:?}"
    );
}

#[test]
fn text_summary_and_stats_lines_have_the_same_fields() {
    if !require_privileges("text_summary_and_stats_lines_have_the_same_fields") {
        return;
    }
    let run = transfer("stats-text", &["--stats-interval", "200"]);
    assert_eq!(run.field("sent"), Some(SIZE.to_string().as_str()));
    let sf0 = run.field("sf0").expect("sf0");
    for k in ["sent=", "received=", "rtt=", "cwnd=", "retrans=", "state="] {
        assert!(sf0.contains(k), "no {k} in sf0={sf0}");
    }
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("stats t="))
        .collect();
    assert!(!lines.is_empty(), "no stats lines:\n{}", run.stderr);
    for l in &lines {
        for k in [
            "conn=",
            "acked=",
            "received=",
            "tx=",
            "rx=",
            "subflows=",
            "sf0=",
        ] {
            assert!(field(l, k.trim_end_matches('=')).is_some(), "no {k} in {l}");
        }
        assert!(
            l.contains("cwnd=") && l.contains("state=") && l.contains("rtt="),
            "{l}"
        );
    }
    assert!(
        !run.stderr.contains('{'),
        "no JSON without --json:\n{}",
        run.stderr
    );
}

/// `kill -USR1` inspects a running instance: mptun prints every connection and subflow and
/// its non-zero counters on stderr, and the transfer goes on to complete intact.
#[test]
fn sigusr1_prints_the_state_of_a_running_instance() {
    if !require_privileges("sigusr1_prints_the_state_of_a_running_instance") {
        return;
    }
    let run = transfer_with("stats-usr1", &[], |pid| {
        // about half-way through the ~1 s transfer
        std::thread::sleep(std::time::Duration::from_millis(500));
        // SAFETY: a plain kill(2) on a pid we started
        let r = unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) };
        assert_eq!(r, 0, "kill -USR1 {pid}");
    });
    let at = run
        .stderr
        .find("mptun: state (SIGUSR1):")
        .unwrap_or_else(|| panic!("no state dump on stderr:\n{}", run.stderr));
    let dump: Vec<&str> = run.stderr[at..]
        .lines()
        .take_while(|l| !l.is_empty())
        .collect();
    let text = dump.join("\n");
    assert!(
        dump.iter()
            .any(|l| l.starts_with("  conn ") && l.contains("established=true")),
        "no established connection in the dump:\n{text}"
    );
    let subflows = dump
        .iter()
        .filter(|l| l.starts_with("    subflow ") && l.contains("state=established"))
        .count();
    assert_eq!(subflows, 2, "both subflows in the dump:\n{text}");
    let counters = dump
        .iter()
        .find_map(|l| l.strip_prefix("  counters: "))
        .unwrap_or_else(|| panic!("no counters line:\n{text}"));
    // mptun is the client: its MP_CAPABLE SYN was answered, and DSS options came in
    assert!(
        counters
            .split_whitespace()
            .any(|kv| kv == "MPCapableSYNACKRX=1"),
        "{counters}"
    );
    assert!(
        counters.split_whitespace().any(|kv| kv
            .strip_prefix("DSSRx=")
            .is_some_and(|v| v.parse::<u64>().unwrap_or(0) > 0)),
        "{counters}"
    );
    // still running after the dump: the summary came at the end, with the whole transfer
    assert_eq!(
        run.field("sent"),
        Some(SIZE.to_string().as_str()),
        "{}",
        run.summary
    );
}
