//! Shared harness for the interop tests: the mptun binary, temporary files, running mptun
//! inside a namespace with a timeout, and counter checks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use mptun::testbed::{delta, deltas, NetNs};

/// Seconds after which mptun or a peer is killed: a hang fails the test instead of CI.
pub const TIMEOUT_SECS: u64 = 120;

/// The `mptun` binary cargo built for these tests.
pub fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mptun"))
}

/// The crate's root directory.
pub fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding `libmptun.so`: target/<profile>, the parent of this test's deps/.
/// `cargo test` builds only the rlib the tests link, so the cdylib is built here if it is
/// missing or older than this test (`cargo build --lib` with the same profile and target dir).
pub fn lib_dir() -> PathBuf {
    static BUILT: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(d) = built.as_ref() {
        return d.clone();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf();
    let lib = dir.join("libmptun.so");
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if mtime(&lib) < mtime(&exe) {
        let profile = dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug");
        let target = dir.parent().expect("target dir");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "--lib"])
            .current_dir(manifest())
            .env("CARGO_TARGET_DIR", target);
        if profile == "release" {
            cmd.arg("--release");
        }
        // the same features as this test run, or the rebuilt rlib (which shares the
        // target dir) would drop them for the targets built after this test
        if cfg!(feature = "tokio") {
            cmd.args(["--features", "tokio"]);
        }
        let st = cmd.status().expect("run cargo build --lib");
        assert!(st.success(), "cargo build --lib failed");
    }
    assert!(
        lib.exists(),
        "no libmptun.so in {} (Cargo.toml's [lib] crate-type must include cdylib)",
        dir.display()
    );
    *built = Some(dir.clone());
    dir
}

/// `cc` present? Under CI it must be.
pub fn have_cc(test: &str) -> bool {
    let ok = std::process::Command::new("cc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            !mptun::testbed::under_ci(),
            "{test}: CI=true but there is no C compiler (cc)"
        );
        eprintln!("SKIPPED {test}: no C compiler (cc)");
    }
    ok
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("mptun-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temporary directory");
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What an mptun run printed.
#[derive(Debug)]
pub struct MptunRun {
    pub success: bool,
    pub status: String,
    /// The last non-empty stdout line: the one-line summary.
    pub summary: String,
    pub stderr: String,
}

impl MptunRun {
    /// The value of `key=` in the summary line.
    pub fn field(&self, key: &str) -> Option<&str> {
        field(&self.summary, key)
    }
}

/// `key=value` lookup in a line of space-separated fields.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

/// Spawns `mptun ARGS` in `ns` under a timeout; returns the pid for [`wait_mptun`].
pub fn spawn_mptun(ns: &NetNs, args: &[String]) -> u32 {
    let mut cmd = ns.exec_with_timeout(TIMEOUT_SECS, &exe(), args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ns.spawn(&mut cmd).expect("spawn mptun")
}

/// Waits for an mptun started with [`spawn_mptun`].
pub fn wait_mptun(ns: &NetNs, pid: u32) -> MptunRun {
    let out = ns.wait_output(pid).expect("wait for mptun");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut status = out.status.to_string();
    if out.status.code() == Some(124) {
        status.push_str(" (timed out)");
    }
    MptunRun {
        success: out.status.success(),
        status,
        summary: mptun::testbed::last_line(&stdout),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts mptun succeeded, with its output in the message otherwise.
pub fn assert_ok(run: &MptunRun, what: &str) {
    assert!(
        run.success,
        "{what}: mptun exited with {}\nsummary: {}\nstderr (tail): {}",
        run.status,
        run.summary,
        tail(&run.stderr, 3000)
    );
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let mut i = start;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

/// Creates a namespace with tun0 198.18.1.1/24 and tun1 198.18.2.1/24 (mptun uses .2 on
/// each) and generous MPTCP limits.
pub fn two_tun_namespace(tag: &str) -> NetNs {
    let ns = NetNs::new(tag).expect("create namespace");
    ns.add_tun("tun0", "198.18.1.1/24").expect("tun0");
    ns.add_tun("tun1", "198.18.2.1/24").expect("tun1");
    ns.mptcp_limits(4, 4).expect("mptcp limits");
    ns
}

/// mptun's `--tun` arguments matching [`two_tun_namespace`].
pub fn tun_args() -> Vec<String> {
    ["--tun", "tun0=198.18.1.2", "--tun", "tun1=198.18.2.2"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Asserts each named counter rose / did not change, printing every change on failure.
pub fn assert_counters(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    rose: &[&str],
    unchanged: &[&str],
) {
    let changes = deltas(before, after)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("TcpExt."))
        .collect::<Vec<_>>();
    for name in rose {
        assert!(
            delta(before, after, name) > 0,
            "kernel counter {name} did not rise; MPTcpExt changes: {changes:?}"
        );
    }
    for name in unchanged {
        assert_eq!(
            delta(before, after, name),
            0,
            "kernel counter {name} changed; MPTcpExt changes: {changes:?}"
        );
    }
}

/// `path` as a String argument.
pub fn arg(path: &Path) -> String {
    path.display().to_string()
}

/// The MPTcpExt counters that changed between two snapshots, for failure messages.
pub fn counter_diff(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> Vec<(String, i64)> {
    deltas(before, after)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("TcpExt."))
        .map(|(k, v)| (k, v as i64))
        .collect()
}

/// Runs `f` on a thread that entered `ns` (setns): sockets and TUN devices it opens belong to the namespace; the caller's thread never
/// changes namespace.
pub fn in_ns<T: Send>(ns: &NetNs, f: impl FnOnce() -> T + Send) -> T {
    let path = ["/run/netns", "/var/run/netns"]
        .iter()
        .map(|d| std::path::Path::new(d).join(ns.name()))
        .find(|p| p.exists())
        .expect("the namespace's file in /run/netns");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = File::open(&path).expect("open the namespace file");
            // SAFETY: setns on a valid namespace fd changes only this thread's network
            // namespace; the thread ends when `f` returns.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// An mptun runtime (Rust API) over in-process `SeqPacketDevice` links, one port per
/// `(device, address)`: the peer of the C-ABI tests, no root needed.
pub fn seqpacket_runtime(
    devs: Vec<(mptun::io::driver::SeqPacketDevice, &str)>,
    seed: u64,
) -> mptun::io::driver::Runtime {
    use mptun::io::driver::{Port, Runtime};
    let ip = |a: &str| -> std::net::IpAddr { a.parse().expect("address") };
    let addrs = devs.iter().map(|(_, a)| ip(a)).collect();
    let ports = devs
        .into_iter()
        .map(|(d, a)| Port {
            device: Box::new(d),
            addrs: vec![ip(a)],
            egress: None,
            ingress: None,
        })
        .collect();
    let stack = mptun::stack::Stack::new(
        mptun::stack::StackConfig {
            addrs,
            ..mptun::stack::StackConfig::default()
        },
        mptun::crypto::KeyGen::from_entropy(),
    );
    Runtime::start(stack, ports, seed).expect("peer runtime")
}
