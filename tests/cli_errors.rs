//! The command lines' error contract (issue 11), checked by running the built binaries:
//!
//! - every binary (`mptun` and each subcommand, `soak`, `simult-flows`, `idle-rss`,
//!   `tools/download_paths.sh`) answers `--help` at once with its usage, exit 0, and does
//!   nothing else (no benchmark, no namespace, no root check);
//! - bad arguments exit 2 with a message naming the option, never an internal Rust name;
//! - (root) a `--tun` device that does not exist, is down, is not a TUN device or is in use is
//!   an immediate error saying so, not a 30 s connect timeout; without CAP_NET_ADMIN the
//!   error says root / CAP_NET_ADMIN is needed, for the TUN device and for `mptun demo`'s
//!   namespaces.

mod common;

use common::exe;
use mptun::testbed::{require_privileges, NetNs};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Bound on how long an error or `--help` may take (the old behaviour was a 30 s timeout).
const PROMPT: Duration = Duration::from_secs(5);

fn run(cmd: &mut Command) -> (Output, Duration) {
    let t0 = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    (out, t0.elapsed())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Rust `Debug` output that must never reach a user: enum variant names of our error types,
/// `Some(..)`, `Os { code: .. }` and the like.
fn assert_no_internal_names(msg: &str) {
    for bad in [
        "Some(",
        "None",
        "Err(",
        "Ok(",
        "Os {",
        "kind:",
        "MissingEquals",
        "BadAddr",
        "NameTooLong",
        "Closed(",
        "Refused",
        "TimedOut",
        "InvalidInput",
        "NotFound",
        "PermissionDenied",
        "StackError",
        "ConnError",
        "\"ip\" \"",
    ] {
        assert!(
            !msg.contains(bad),
            "internal name {bad:?} in message:\n{msg}"
        );
    }
}

fn bin(name: &str) -> PathBuf {
    match name {
        "mptun" => exe(),
        "soak" => PathBuf::from(env!("CARGO_BIN_EXE_soak")),
        "simult-flows" => PathBuf::from(env!("CARGO_BIN_EXE_simult-flows")),
        "idle-rss" => PathBuf::from(env!("CARGO_BIN_EXE_idle-rss")),
        "tun-rate" => PathBuf::from(env!("CARGO_BIN_EXE_tun-rate")),
        _ => unreachable!(),
    }
}

#[test]
fn every_binary_answers_help_without_side_effects() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("mptun", &["--help"], "Usage: mptun"),
        ("mptun", &["connect", "--help"], "REMOTE_IP:PORT"),
        ("mptun", &["listen", "--help"], "--port"),
        ("mptun", &["proxy", "--help"], "--socks"),
        ("mptun", &["demo", "--help"], "--size"),
        ("mptun", &["linux-peer", "--help"], "Usage:"),
        ("soak", &["--help"], "--runs"),
        ("simult-flows", &["--help"], "--size-mib"),
        ("idle-rss", &["--help"], "[CONNECTIONS]"),
        ("idle-rss", &["-h"], "Usage: idle-rss"),
        ("tun-rate", &["--help"], "tun-rate --tun NAME"),
    ];
    for (name, args, want) in cases {
        let (out, took) = run(Command::new(bin(name)).args(*args));
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{name} {args:?}: {}\n{stdout}{}",
            out.status,
            text(&out.stderr)
        );
        assert!(
            stdout.contains(want),
            "{name} {args:?}: no {want:?} in\n{stdout}"
        );
        assert!(took < PROMPT, "{name} {args:?} took {took:?}");
        // nothing ran: no benchmark table, no measurement, no root check, no namespace
        for ran in ["| rates", "connections=", "cannot run", "namespace mpt-"] {
            assert!(
                !stdout.contains(ran) && !text(&out.stderr).contains(ran),
                "{name} {args:?} did more than print its help ({ran:?})"
            );
        }
    }
    // tun-rate without its arguments: usage, exit 2, nothing opened
    let (out, _) = run(&mut Command::new(bin("tun-rate")));
    assert_eq!(out.status.code(), Some(2), "tun-rate without arguments");
    assert!(text(&out.stderr).contains("usage: tun-rate"));
    // the shell tool: --help prints its usage and exits 0; wrong arguments exit 2 before
    // touching anything
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/download_paths.sh");
    let (out, _) = run(Command::new("bash").args([script, "--help"]));
    assert!(
        out.status.success(),
        "download_paths.sh --help: {}",
        out.status
    );
    assert!(text(&out.stdout).contains("usage: tools/download_paths.sh NPATHS MIB"));
    for bad in [&[][..], &["x", "1"], &["2"], &["2", "-1"]] {
        let (out, _) = run(Command::new("bash").arg(script).args(bad));
        assert_eq!(out.status.code(), Some(2), "download_paths.sh {bad:?}");
        assert!(
            text(&out.stderr).contains("usage:"),
            "download_paths.sh {bad:?}"
        );
    }
}

#[test]
fn bad_arguments_exit_2_naming_the_option() {
    let cases: &[(&[&str], &str)] = &[
        (&["connect", "198.18.1.1:1"], "--tun"),
        (
            &["connect", "--tun", "tun0", "198.18.1.1:1"],
            "expected NAME=ADDR",
        ),
        (
            &["connect", "--tun", "tun0=1.2.3", "198.18.1.1:1"],
            "is not an IP address",
        ),
        (
            &[
                "connect",
                "--tun",
                "abcdefghijklmnop=198.18.1.2",
                "198.18.1.1:1",
            ],
            "at most 15",
        ),
        (
            &[
                "connect",
                "--tun",
                "t=198.18.1.2",
                "198.18.1.1:1",
                "--scheduler",
                "x",
            ],
            "--scheduler",
        ),
        (
            &[
                "listen",
                "--tun",
                "t=198.18.1.2",
                "--port",
                "1",
                "--path-manager",
                "ndiffports:99",
            ],
            "ndiffports: N must be an integer in 1..=32",
        ),
        (
            &[
                "connect",
                "--tun",
                "t=198.18.1.2",
                "198.18.1.1:1",
                "--impair",
                "t:delay",
            ],
            "is not key=value",
        ),
        (&["proxy", "--tun", "t=198.18.1.2"], "--socks"),
        (
            &["proxy", "--tun", "t=198.18.1.2", "--forward", "7000=host"],
            "expected HOST:PORT",
        ),
        (
            &[
                "connect",
                "--tun",
                "t=198.18.1.2",
                "198.18.1.1:1",
                "--stats-interval",
                "5",
            ],
            "--stats-interval",
        ),
        (&["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, want) in cases {
        let (out, took) = run(Command::new(exe()).args(*args));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "mptun {args:?}: {stderr}");
        assert!(
            stderr.contains(want),
            "mptun {args:?}: no {want:?} in\n{stderr}"
        );
        assert_no_internal_names(&stderr);
        assert!(took < PROMPT, "mptun {args:?} took {took:?}");
    }
    // Errors found after parsing exit 1 with one `mptun: ...` line (no device is touched:
    // the options are checked before any TUN device is opened).
    let (out, _) = run(Command::new(exe()).args([
        "connect",
        "--tun",
        "t0=198.18.1.2",
        "198.18.1.1:1",
        "--backup",
        "t9",
    ]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("mptun: --backup t9: no --tun with that name"),
        "{stderr}"
    );
    assert_no_internal_names(&stderr);
}

/// Runs `mptun ARGS` in `ns`, as root with the capabilities in `drop` removed from the
/// bounding and inheritable sets (so the exec'd mptun has none of them).
fn mptun_in(ns: &NetNs, drop: &[&str], args: &[&str]) -> (Output, Duration) {
    let mut cmd = if drop.is_empty() {
        ns.exec(
            std::iter::once(exe().display().to_string()).chain(args.iter().map(|s| s.to_string())),
        )
    } else {
        let caps: Vec<String> = drop.iter().map(|c| format!("-{c}")).collect();
        let mut v = vec![
            "setpriv".to_string(),
            "--inh-caps=-all".into(),
            format!("--bounding-set={}", caps.join(",")),
            "--".into(),
            exe().display().to_string(),
        ];
        v.extend(args.iter().map(|s| s.to_string()));
        ns.exec(v)
    };
    cmd.env("RUST_LOG", "warn");
    run(&mut cmd)
}

fn assert_fails_fast(out: &Output, took: Duration, want: &[&str], what: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: {}\n{stderr}",
        out.status
    );
    assert!(
        took < PROMPT,
        "{what}: took {took:?} (a timeout, not a clear error)"
    );
    for w in want {
        assert!(stderr.contains(w), "{what}: no {w:?} in\n{stderr}");
    }
    assert_no_internal_names(&stderr);
}

#[test]
fn unusable_tun_devices_are_clear_errors_at_once() {
    if !require_privileges("unusable_tun_devices_are_clear_errors_at_once") {
        return;
    }
    let ns = NetNs::new("clierr").expect("namespace");
    ns.add_tun("tun0", "198.18.1.1/24").expect("tun0");
    ns.run(["ip", "tuntap", "add", "dev", "tundown", "mode", "tun"])
        .expect("tundown");
    ns.run(["ip", "link", "add", "dummy0", "type", "dummy"])
        .or_else(|_| ns.run(["ip", "link", "add", "dummy0", "type", "bridge"]))
        .expect("a non-TUN device");
    let connect = |tun: &str| -> Vec<String> {
        ["connect", "--tun", tun, "198.18.1.1:5201"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    // missing device: named, with the commands that create it; nothing is created
    let (out, took) = mptun_in(&ns, &[], &args(&connect("tun9=198.18.9.2")));
    assert_fails_fast(
        &out,
        took,
        &[
            "--tun tun9=198.18.9.2",
            "there is no network device tun9",
            "ip tuntap add dev tun9 mode tun",
        ],
        "missing device",
    );
    assert!(
        !ns.devices().expect("devices").iter().any(|d| d == "tun9"),
        "mptun created tun9"
    );
    // the same for listen and proxy
    let (out, took) = mptun_in(
        &ns,
        &[],
        &[
            "listen",
            "--tun",
            "tun9=198.18.9.2",
            "--port",
            "5201",
            "--once",
        ],
    );
    assert_fails_fast(
        &out,
        took,
        &["there is no network device tun9"],
        "listen, missing device",
    );
    let (out, took) = mptun_in(
        &ns,
        &[],
        &[
            "proxy",
            "--tun",
            "tun9=198.18.9.2",
            "--socks",
            "127.0.0.1:0",
        ],
    );
    assert_fails_fast(
        &out,
        took,
        &["there is no network device tun9"],
        "proxy, missing device",
    );

    // down, not a TUN device
    let (out, took) = mptun_in(&ns, &[], &args(&connect("tundown=198.18.8.2")));
    assert_fails_fast(
        &out,
        took,
        &["tundown is down", "ip link set tundown up"],
        "down device",
    );
    let (out, took) = mptun_in(&ns, &[], &args(&connect("dummy0=198.18.8.2")));
    assert_fails_fast(
        &out,
        took,
        &["dummy0 is not a TUN device"],
        "not a TUN device",
    );

    // Without CAP_NET_ADMIN, a device that belongs to another user cannot be attached to
    // (one without owner can: the kernel lets anyone attach to it): root / CAP_NET_ADMIN
    // and the per-user device are named.
    ns.run([
        "ip", "tuntap", "add", "dev", "tunown", "mode", "tun", "user", "4242",
    ])
    .expect("tunown");
    ns.run(["ip", "link", "set", "tunown", "up"])
        .expect("tunown up");
    let (out, took) = mptun_in(&ns, &["net_admin"], &args(&connect("tunown=198.18.7.2")));
    assert_fails_fast(
        &out,
        took,
        &[
            "not permitted to attach to TUN device tunown",
            "root",
            "CAP_NET_ADMIN",
            "user $USER",
        ],
        "no CAP_NET_ADMIN",
    );
    // Its owner, unprivileged, may attach to it if it may open /dev/net/tun (mode 0666 on
    // most systems); if not, the error names /dev/net/tun and root.
    let (out, took) = run(&mut ns.exec([
        "timeout".to_string(),
        "2".into(),
        "setpriv".into(),
        "--reuid=4242".into(),
        "--regid=4242".into(),
        "--clear-groups".into(),
        exe().display().to_string(),
        "connect".into(),
        "--tun".into(),
        "tunown=198.18.7.2".into(),
        "198.18.7.1:1".into(),
    ]));
    let open_to_all = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata("/dev/net/tun")
            .map(|m| m.permissions().mode() & 0o006 == 0o006)
            .unwrap_or(false)
    };
    if open_to_all {
        // attached, then waited for an answer until killed
        assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    } else {
        assert_fails_fast(
            &out,
            took,
            &["open /dev/net/tun", "run mptun as root"],
            "unprivileged owner, /dev/net/tun not accessible",
        );
    }
    // with CAP_NET_ADMIN the owner does not matter: it attaches and tries to connect (no
    // one answers on tunown; stopped after 2 s)
    let (out, _) = run(&mut ns.exec_with_timeout(
        2,
        &exe(),
        ["connect", "--tun", "tunown=198.18.7.2", "198.18.7.1:1"],
    ));
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    // the demo creates namespaces: it says what it needs before trying
    let (out, took) = mptun_in(&ns, &["net_admin", "sys_admin"], &["demo", "--size", "1"]);
    assert_fails_fast(
        &out,
        took,
        &["cannot run the demo", "CAP_NET_ADMIN", "root"],
        "demo",
    );

    // in use: a second mptun on the same device
    let mut first = ns.exec([
        exe().display().to_string(),
        "listen".into(),
        "--tun".into(),
        "tun0=198.18.1.2".into(),
        "--port".into(),
        "5201".into(),
    ]);
    first.stdout(Stdio::null()).stderr(Stdio::null());
    let pid = ns.spawn(&mut first).expect("first mptun");
    // attached once the device has a carrier
    let deadline = Instant::now() + Duration::from_secs(10);
    while ns
        .run(["cat", "/sys/class/net/tun0/carrier"])
        .map(|c| c.trim() != "1")
        .unwrap_or(true)
    {
        assert!(
            Instant::now() < deadline,
            "the first mptun never attached to tun0"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (out, took) = mptun_in(&ns, &[], &args(&connect("tun0=198.18.1.2")));
    let mut child = ns.take_child(pid).expect("first mptun child");
    let _ = child.kill();
    let _ = child.wait();
    assert_fails_fast(
        &out,
        took,
        &["TUN device tun0 is already in use by another process"],
        "device in use",
    );
}
