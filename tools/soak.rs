//! Soak test against Linux MPTCP: `N` bidirectional two-path transfers alternating roles
//! (mptun client with a full-mesh join; mptun server with `--announce`, Linux joining through
//! the ADD_ADDR), each in fresh namespaces and under a timeout. Prints one line per run and
//! `N/N completed intact` at the end; exits 1 if any run failed.
//!
//! Needs root. `cargo run --release --bin soak -- --runs 20 --size 32 [--routed --mtu 1500]`.
//! The transfer logic is `mptun::testbed::twopath`, shared with `tests/interop_stress.rs`
//! and `tests/interop_routed.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mptun::testbed::routed::RoutedConfig;
use mptun::testbed::twopath::{self, Net, Role, RunSpec};

#[derive(Parser, Debug)]
#[command(
    name = "soak",
    about = "Repeated bidirectional two-path transfers between mptun and Linux MPTCP"
)]
struct Args {
    /// Number of transfers (roles alternate: mptun client first).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// MiB each way per transfer.
    #[arg(long, default_value_t = 32)]
    size: u64,
    /// Run through a router (three namespaces, veth links) instead of one namespace.
    #[arg(long)]
    routed: bool,
    /// With --routed: MTU of the links. 1500 and larger set every link and the TUN devices;
    /// smaller values set only the H-R links (the TUN devices and S stay at 1500, so both
    /// sides need path MTU discovery).
    #[arg(long, default_value_t = 1500, requires = "routed")]
    mtu: u32,
    /// The mptun binary (default: `mptun` next to this program).
    #[arg(long, value_name = "PATH")]
    mptun: Option<PathBuf>,
    /// Seconds before a run is killed (mptun prints its state dump on SIGTERM).
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Only mptun client runs, or only mptun server runs.
    #[arg(long, value_parser = ["client", "server"])]
    role: Option<String>,
    /// Stop at the first failed run.
    #[arg(long)]
    stop_on_failure: bool,
    /// Print the full failure report (mptun's stderr and state dump, every counter) of
    /// failed runs.
    #[arg(long, short)]
    verbose: bool,
    /// More mptun options, e.g. `--mptun-arg=--scheduler --mptun-arg=roundrobin`.
    #[arg(long = "mptun-arg", value_name = "ARG", allow_hyphen_values = true)]
    mptun_args: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(reason) = mptun::testbed::skip_reason() {
        eprintln!("soak: cannot run: {reason}");
        return ExitCode::from(2);
    }
    let exe = args.mptun.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("current exe")
            .with_file_name("mptun")
    });
    if !exe.exists() {
        eprintln!(
            "soak: {} not found (build it: cargo build --release, or pass --mptun PATH)",
            exe.display()
        );
        return ExitCode::from(2);
    }
    let net = if args.routed {
        Net::Routed(if args.mtu >= 1500 {
            RoutedConfig::uniform(args.mtu)
        } else {
            RoutedConfig::bottleneck(args.mtu)
        })
    } else {
        Net::Local
    };
    println!(
        "soak: {} runs, {} MiB each way, {:?}, timeout {} s, mptun {}",
        args.runs,
        args.size,
        net,
        args.timeout,
        exe.display()
    );
    let (mut intact, mut dss_trouble) = (0, 0);
    for i in 0..args.runs {
        let role = match args.role.as_deref() {
            Some("client") => Role::MptunClient,
            Some("server") => Role::MptunServer,
            _ => Role::alternating(i),
        };
        let mut spec = RunSpec::new(&exe, role, net, args.size * 1024 * 1024, "soak");
        spec.timeout_secs = args.timeout;
        spec.mptun_args = args.mptun_args.clone();
        let failed = match twopath::run(&spec) {
            Ok(o) => {
                println!("run {}/{}: {}", i + 1, args.runs, o.line());
                let dss = o.linux_delta("MPTcpExtNoDSSInWindow") != 0
                    || o.linux_delta("MPTcpExtDSSNotMatching") != 0;
                let ok = o.intact();
                intact += usize::from(ok);
                dss_trouble += usize::from(dss);
                if !ok || dss {
                    if args.verbose {
                        println!("{}", o.failure_report());
                    } else if let Err(e) = o.check_intact() {
                        println!("    not intact: {e}");
                    }
                }
                !ok || dss
            }
            Err(e) => {
                println!(
                    "run {}/{}: role={} test bed failed: {e}",
                    i + 1,
                    args.runs,
                    role.name()
                );
                true
            }
        };
        if failed && args.stop_on_failure {
            println!(
                "{intact}/{} completed intact (stopped at the first failure)",
                i + 1
            );
            return ExitCode::FAILURE;
        }
    }
    println!("{intact}/{} completed intact", args.runs);
    if dss_trouble > 0 {
        println!("{dss_trouble} run(s) with Linux NoDSSInWindow or DSSNotMatching > 0");
    }
    if intact == args.runs && dss_trouble == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
