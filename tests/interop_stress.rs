//! A CI-sized stress run against Linux MPTCP: repeated bidirectional two-path transfers,
//! alternating roles (mptun client with a full-mesh join; mptun server with `--announce`,
//! Linux joining through the ADD_ADDR), each in a fresh namespace with two TUN paths and a
//! timeout. A hang fails with mptun's SIGTERM state dump in the message. `tools/soak.rs`
//! (`soak`) runs the same thing longer.

use std::path::PathBuf;

use mptun::testbed::require_privileges;
use mptun::testbed::twopath::{self, Net, Role, RunSpec};

const MIB: u64 = 1024 * 1024;
const ITERATIONS: usize = 8;
const SIZE: u64 = 8 * MIB;
/// Per run; a healthy run takes a few seconds.
const TIMEOUT_SECS: u64 = 30;

#[test]
fn stress_alternating_roles_two_paths() {
    if !require_privileges("stress_alternating_roles_two_paths") {
        return;
    }
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_mptun"));
    let mut failures = Vec::new();
    for i in 0..ITERATIONS {
        let role = Role::alternating(i);
        let tag = format!("stress{i}-{}", role.name());
        let mut spec = RunSpec::new(&exe, role, Net::Local, SIZE, &tag);
        spec.timeout_secs = TIMEOUT_SECS;
        let o = twopath::run(&spec).unwrap_or_else(|e| panic!("{tag}: test bed: {e}"));
        eprintln!("run {}/{ITERATIONS}: {}", i + 1, o.line());
        let mut problems = Vec::new();
        if let Err(e) = o.check_intact() {
            problems.push(e);
        }
        for name in ["MPTcpExtNoDSSInWindow", "MPTcpExtDSSNotMatching"] {
            let d = o.linux_delta(name);
            if d != 0 {
                problems.push(format!("Linux's {name} rose by {d}"));
            }
        }
        if o.intact() {
            let (a, b) = o.path_bytes();
            if a == 0 || b == 0 {
                problems.push(format!("a path carried nothing (A {a}, B {b} bytes)"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "run {} ({}): {}\n{}",
                i + 1,
                role.name(),
                problems.join("; "),
                o.failure_report()
            ));
            // a hang costs a whole timeout; one detailed failure is enough
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
