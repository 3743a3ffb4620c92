//! Aggregation benchmark in the style of Linux's selftest `simult_flows.sh`: 16 MiB over two
//! shaped paths must finish within `size*8*10/((r1+r2)*9)` ms + 450 ms.
//!
//! For each case it runs mptun (two TUN devices in a fresh namespace, the kernel -> mptun
//! direction shaped with `tbf`, the mptun -> kernel direction with mptun's own impairment,
//! delay added by mptun's impairment layer) against a Linux MPTCP peer, in both directions,
//! and Linux kernel MPTCP to kernel MPTCP over two veth pairs with the same tbf shaping (the
//! kernel has no netem here, so the kernel baseline has no added delay). Prints a Markdown table.
//!
//! Needs root. `cargo run --release --bin simult-flows [-- --size-mib 16] [--case 15+5:25/1]
//! [--direction up] [--runs 3]`.

use mptun::testbed::peer::{self, PeerArgs};
use mptun::testbed::NetNs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn mptun_exe() -> PathBuf {
    let me = std::env::current_exe().expect("current exe");
    me.with_file_name("mptun")
}

struct Case {
    r1: u32,
    r2: u32,
    d1: u32,
    d2: u32,
}

impl Case {
    /// As the table writes it: `15+5:25/1`.
    fn label(&self) -> String {
        format!("{}+{}:{}/{}", self.r1, self.r2, self.d1, self.d2)
    }
}

fn bound_ms(size: u64, c: &Case) -> f64 {
    (size * 8 * 10) as f64 / (f64::from(c.r1 + c.r2) * 1e6 * 9.0) * 1000.0 + 450.0
}

/// mptun sends (`upload`) or receives `size` bytes; returns the transfer time in ms.
fn run_mptun(c: &Case, size: u64, upload: bool, extra: &[String]) -> Result<(f64, String), String> {
    let ns = NetNs::new("simult").map_err(|e| e.to_string())?;
    ns.add_tun("tun0", "198.18.1.1/24")
        .map_err(|e| e.to_string())?;
    ns.add_tun("tun1", "198.18.2.1/24")
        .map_err(|e| e.to_string())?;
    ns.mptcp_limits(4, 4).map_err(|e| e.to_string())?;
    ns.tbf("tun0", &format!("{}mbit", c.r1))
        .map_err(|e| e.to_string())?;
    ns.tbf("tun1", &format!("{}mbit", c.r2))
        .map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("simult-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let input = dir.join("in.bin");
    peer::write_pattern_file(&input, 7, if upload { size } else { 0 })
        .map_err(|e| e.to_string())?;
    let mut linux = PeerArgs::listen(
        "0.0.0.0:5201".parse().unwrap(),
        if upload { 0 } else { size },
        9,
    );
    // a receiver that half-closes at once makes Linux refuse further subflows
    linux.hold = upload;
    let srv = ns
        .start_peer(&mptun_exe(), &linux, 300)
        .map_err(|e| e.to_string())?;
    let mut args: Vec<String> = vec![
        "connect".into(),
        "--tun".into(),
        "tun0=198.18.1.2".into(),
        "--tun".into(),
        "tun1=198.18.2.2".into(),
        "198.18.1.1:5201".into(),
        "--impair".into(),
        format!("tun0:rate={}mbit,delay={}ms,queue=200kb", c.r1, c.d1),
        "--impair".into(),
        format!("tun1:rate={}mbit,delay={}ms,queue=200kb", c.r2, c.d2),
    ];
    if c.d1 > 0 || c.d2 > 0 {
        args.push("--impair".into());
        args.push(format!("tun0/in:delay={}ms", c.d1));
        args.push("--impair".into());
        args.push(format!("tun1/in:delay={}ms", c.d2));
    }
    if upload {
        args.push("--input".into());
        args.push(input.display().to_string());
    }
    args.extend(extra.iter().cloned());
    let out = ns
        .exec_with_timeout(300, &mptun_exe(), &args)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "mptun failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let out = String::from_utf8_lossy(&out.stdout).to_string();
    let _ = ns.finish_peer(srv);
    let _ = std::fs::remove_dir_all(&dir);
    let line = out
        .lines()
        .find(|l| l.contains("duration="))
        .ok_or(format!("no summary in {out:?}"))?
        .to_string();
    let secs: f64 = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("duration="))
        .and_then(|v| v.trim_end_matches('s').parse().ok())
        .ok_or("no duration")?;
    let subflows = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("subflows="))
        .unwrap_or("?")
        .to_string();
    Ok((secs * 1000.0, subflows))
}

/// Kernel MPTCP client sends `size` bytes to a kernel MPTCP server over two veth paths.
fn run_kernel(c: &Case, size: u64) -> Result<f64, String> {
    let a = NetNs::new("sf-kc").map_err(|e| e.to_string())?;
    let b = NetNs::new("sf-ks").map_err(|e| e.to_string())?;
    a.add_veth_pair("va1", "198.19.51.1/24", &b, "vb1", "198.19.51.2/24")
        .map_err(|e| e.to_string())?;
    a.add_veth_pair("va2", "198.19.52.1/24", &b, "vb2", "198.19.52.2/24")
        .map_err(|e| e.to_string())?;
    for (ns, dev, r) in [
        (&a, "va1", c.r1),
        (&a, "va2", c.r2),
        (&b, "vb1", c.r1),
        (&b, "vb2", c.r2),
    ] {
        ns.tbf(dev, &format!("{r}mbit"))
            .map_err(|e| e.to_string())?;
    }
    for ns in [&a, &b] {
        ns.mptcp_limits(4, 4).map_err(|e| e.to_string())?;
    }
    b.mptcp_endpoint("198.19.52.2", "vb2", &["signal"])
        .map_err(|e| e.to_string())?;
    let srv = b
        .start_peer(
            &mptun_exe(),
            &PeerArgs::listen("0.0.0.0:5201".parse().unwrap(), 0, 2),
            300,
        )
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let cli = a
        .start_peer(
            &mptun_exe(),
            &PeerArgs::connect("198.19.51.2:5201".parse().unwrap(), size, 1),
            300,
        )
        .map_err(|e| e.to_string())?;
    a.finish_peer(cli).map_err(|e| e.to_string())?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    b.finish_peer(srv).map_err(|e| e.to_string())?;
    Ok(ms)
}

#[derive(clap::Parser, Debug)]
#[command(
    name = "simult-flows",
    about = "Aggregation benchmark over two shaped paths, mptun against Linux MPTCP and kernel \
             against kernel (needs root; creates and removes network namespaces)"
)]
struct Args {
    /// MiB per transfer.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    size_mib: u64,
    /// Extra arguments for mptun (repeatable), e.g. `--mptun-arg=--scheduler --mptun-arg=ecf`.
    #[arg(long = "mptun-arg", value_name = "ARG", allow_hyphen_values = true)]
    mptun_args: Vec<String>,
    /// Run only these cases (repeatable), written as in the table: `15+5:25/1`.
    #[arg(long = "case", value_name = "R1+R2:D1/D2")]
    cases: Vec<String>,
    /// Run only the upload (`up`, mptun -> Linux) or the download (`down`); both by default.
    #[arg(long, value_parser = ["up", "down"])]
    direction: Option<String>,
    /// Repeat each selected case this many times (one table row per run).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    runs: u32,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let size_mib = args.size_mib;
    if Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout != b"0\n")
        .unwrap_or(true)
    {
        eprintln!("simult-flows needs root (network namespaces, TUN devices, tc)");
        std::process::exit(2);
    }
    let size = size_mib << 20;
    let cases = [
        Case {
            r1: 10,
            r2: 10,
            d1: 0,
            d2: 0,
        },
        Case {
            r1: 15,
            r2: 5,
            d1: 0,
            d2: 0,
        },
        Case {
            r1: 10,
            r2: 10,
            d1: 1,
            d2: 25,
        },
        Case {
            r1: 15,
            r2: 5,
            d1: 1,
            d2: 25,
        },
        Case {
            r1: 15,
            r2: 5,
            d1: 25,
            d2: 1,
        },
    ];
    println!("| rates (Mbit/s) | delays (ms) | bound (ms) | mptun -> Linux (ms) | Linux -> mptun (ms) | kernel -> kernel, no delay (ms) |");
    println!("|---|---|---|---|---|---|");
    for case in &args.cases {
        if !cases.iter().any(|c| c.label() == *case) {
            eprintln!(
                "unknown case {case}; known: {}",
                cases.iter().map(Case::label).collect::<Vec<_>>().join(", ")
            );
            std::process::exit(2);
        }
    }
    let selected = cases
        .iter()
        .filter(|c| args.cases.is_empty() || args.cases.contains(&c.label()));
    let want = |d: &str| args.direction.as_deref().is_none_or(|w| w == d);
    for c in selected.flat_map(|c| std::iter::repeat_n(c, args.runs as usize)) {
        let bound = bound_ms(size, c);
        let up = want("up").then(|| run_mptun(c, size, true, &args.mptun_args));
        let down = want("down").then(|| run_mptun(c, size, false, &args.mptun_args));
        let kernel = if c.d1 == 0 && c.d2 == 0 && args.direction.is_none() {
            run_kernel(c, size).map(|v| format!("{v:.0}"))
        } else {
            Ok("-".into())
        };
        let show = |r: &Option<Result<(f64, String), String>>| match r {
            Some(Ok((ms, sf))) => format!(
                "{ms:.0}{} ({sf} subflows)",
                if *ms <= bound { "" } else { " over" }
            ),
            Some(Err(e)) => format!("failed: {e}"),
            None => "-".into(),
        };
        println!(
            "| {}+{} | {}/{} | {bound:.0} | {} | {} | {} |",
            c.r1,
            c.r2,
            c.d1,
            c.d2,
            show(&up),
            show(&down),
            kernel.unwrap_or_else(|e| format!("failed: {e}"))
        );
    }
}
