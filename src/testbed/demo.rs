//! `mptun demo`: mptun talks MPTCP to the Linux kernel over two TUN devices.
//!
//! ```text
//!   namespace mpt-PID-N-demo
//!   Linux MPTCP server 198.18.1.1:5201 (mptun linux-peer)
//!       tun0 198.18.1.1/24  <==>  mptun 198.18.1.2
//!       tun1 198.18.2.1/24  <==>  mptun 198.18.2.2
//! ```
//!
//! Both sides send `size` MiB at once; the digests of each direction must match. Root is
//! needed because the demo creates a network namespace and TUN devices in it.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::peer::{self, PeerArgs};
use super::{deltas, NetNs};

/// Seconds after which the demo's processes are killed.
const TIMEOUT_SECS: u64 = 300;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo with `mptun_exe` (this very binary) and `size_mib` MiB each way.
pub fn run_demo(mptun_exe: &Path, size_mib: u64) -> Result<(), String> {
    println!("mptun demo: userspace MPTCP (mptun) <-> Linux kernel MPTCP over two TUN devices");
    if let Some(reason) = super::skip_reason() {
        return Err(format!(
            "cannot run the demo: {reason}.\n\
             The demo needs root because it creates a network namespace (ip netns) and two \
             TUN devices inside it; all its traffic stays inside that namespace. \
             Try: sudo {} demo",
            mptun_exe.display()
        ));
    }
    let bytes = size_mib
        .checked_mul(1024 * 1024)
        .ok_or("--size is too large")?;
    let e = |what: &str| {
        let what = what.to_string();
        move |err: std::io::Error| format!("{what}: {err}")
    };

    let dir = TempDir(std::env::temp_dir().join(format!("mptun-demo-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).map_err(e("temporary directory"))?;
    let input = dir.0.join("to-linux.bin");
    let output = dir.0.join("from-linux.bin");

    let ns = NetNs::new("demo").map_err(e("create namespace"))?;
    ns.add_tun("tun0", "198.18.1.1/24").map_err(e("tun0"))?;
    ns.add_tun("tun1", "198.18.2.1/24").map_err(e("tun1"))?;
    ns.mptcp_limits(4, 4).map_err(e("ip mptcp limits"))?;
    println!(
        "namespace {}: tun0 198.18.1.1/24 (mptun 198.18.1.2), tun1 198.18.2.1/24 (mptun 198.18.2.2)",
        ns.name()
    );

    let sent_digest =
        peer::write_pattern_file(&input, 0x5eed_0001, bytes).map_err(e("write input file"))?;
    let before = ns.mptcp_counters().map_err(e("read counters"))?;

    // The server listens on every address of the namespace (only tun0, tun1 and lo), so
    // that subflows to 198.18.2.1 find a listener as well.
    let server_addr = "198.18.1.1:5201";
    let listen_addr = "0.0.0.0:5201".parse().map_err(|_| "bad address")?;
    let server = ns
        .start_peer(
            mptun_exe,
            &PeerArgs::listen(listen_addr, bytes, 0x5eed_0002),
            TIMEOUT_SECS,
        )
        .map_err(e("start the Linux MPTCP server"))?;
    println!("Linux MPTCP server listening on {server_addr}; {size_mib} MiB each way");

    let mut client = ns.exec_with_timeout(
        TIMEOUT_SECS,
        mptun_exe,
        [
            "connect",
            "--tun",
            "tun0=198.18.1.2",
            "--tun",
            "tun1=198.18.2.2",
            "198.18.1.1:5201",
            "--input",
        ],
    );
    client
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let pid = ns.spawn(&mut client).map_err(e("start mptun"))?;
    let out = ns.wait_output(pid).map_err(e("wait for mptun"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.lines().rev().find(|l| !l.trim().is_empty());
    if !out.status.success() {
        return Err(format!(
            "mptun connect failed ({}{}): {}",
            out.status,
            if out.status.code() == Some(124) {
                ", timed out"
            } else {
                ""
            },
            summary.unwrap_or("(no output)")
        ));
    }
    println!("mptun:      {}", summary.unwrap_or("(no summary)"));

    let report = ns.finish_peer(server).map_err(e("Linux server"))?;
    println!("Linux peer: {report}");

    let after = ns.mptcp_counters().map_err(e("read counters"))?;
    let changed: Vec<String> = deltas(&before, &after)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("TcpExt."))
        .map(|(k, d)| format!("{k}+{d}"))
        .collect();
    println!("kernel MPTcpExt deltas: {}", changed.join(" "));

    let received_digest = peer::sha256_file(&output).map_err(e("read output file"))?;
    let mut ok = true;
    if report.received_sha256 == sent_digest && report.bytes_received == bytes {
        println!("mptun -> Linux: {bytes} bytes, SHA-256 {sent_digest} matches");
    } else {
        ok = false;
        println!(
            "mptun -> Linux: MISMATCH: sent {bytes} bytes {sent_digest}, Linux got {} bytes {}",
            report.bytes_received, report.received_sha256
        );
    }
    if report.sent_sha256 == received_digest {
        println!("Linux -> mptun: {bytes} bytes, SHA-256 {received_digest} matches");
    } else {
        ok = false;
        println!(
            "Linux -> mptun: MISMATCH: Linux sent {}, mptun wrote {received_digest}",
            report.sent_sha256
        );
    }
    drop(ns);
    println!("namespace and TUN devices removed");
    if ok {
        Ok(())
    } else {
        Err("digests differ".into())
    }
}
