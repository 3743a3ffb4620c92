//! Shared by the subflow examples: `--tun NAME=ADDR` arguments like the `mptun` CLI, a
//! runtime over those TUN devices with the `manual` path manager (the example alone opens
//! subflows), and a transfer helper that talks to `mptun linux-peer` (or any server that
//! sends some bytes and reads until end of stream).
#![allow(dead_code)]

use mptun::api::{MptcpStream, SubflowInfo};
use mptun::io::driver::Runtime;
use mptun::io::tun::TunSpec;
use mptun::mptcp::ConnConfig;
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Parsed command line: `--tun NAME=ADDR`... `REMOTE_IP:PORT` plus example flags.
pub struct Args {
    pub tuns: Vec<TunSpec>,
    pub remote: SocketAddr,
    pub pcap: Option<PathBuf>,
    /// Bytes to send (default 4 MiB).
    pub bytes: u64,
    /// Other `--flag [value]` pairs, in order.
    pub flags: Vec<(String, Option<String>)>,
}

impl Args {
    /// The value of `--name VALUE`, parsed.
    pub fn value<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .map(|v| {
                parse_num_or(v)
                    .unwrap_or_else(|| fail(&format!("--{name} {v}: cannot parse the value")))
            })
    }

    /// Whether `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(k, _)| k == name)
    }

    /// Addresses of the TUN devices, in order.
    pub fn addrs(&self) -> Vec<IpAddr> {
        self.tuns.iter().map(|t| t.addr).collect()
    }
}

/// Parses numbers in hex (`0x28`) too.
fn parse_num_or<T: std::str::FromStr>(v: &str) -> Option<T> {
    if let Some(h) = v.strip_prefix("0x") {
        if let Ok(n) = u64::from_str_radix(h, 16) {
            return n.to_string().parse().ok();
        }
    }
    v.parse().ok()
}

/// Prints the error and exits with status 1.
pub fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}

/// `check(cond, msg)`: exits non-zero with `msg` when `cond` is false.
pub fn check(cond: bool, msg: &str) {
    if !cond {
        fail(msg)
    }
}

/// Parses `std::env::args()`. `valued` lists the example's flags that take a value; any other
/// `--flag` is a switch.
pub fn parse_args(usage: &str, valued: &[&str]) -> Args {
    let mut tuns = Vec::new();
    let mut remote = None;
    let mut pcap = None;
    let mut bytes = 4 << 20;
    let mut flags = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut need = |name: &str| {
            it.next()
                .unwrap_or_else(|| fail(&format!("{name} needs a value\nusage: {usage}")))
        };
        match a.as_str() {
            "-h" | "--help" => {
                println!("usage: {usage}");
                std::process::exit(0)
            }
            "--tun" => tuns.push(
                need("--tun")
                    .parse::<TunSpec>()
                    .unwrap_or_else(|e| fail(&format!("--tun: {e}"))),
            ),
            "--pcap" => pcap = Some(PathBuf::from(need("--pcap"))),
            "--bytes" => {
                bytes = need("--bytes")
                    .parse()
                    .unwrap_or_else(|_| fail("--bytes: not a number"))
            }
            f if f.starts_with("--") => {
                let name = f.trim_start_matches("--").to_string();
                let v = valued.contains(&name.as_str()).then(|| need(f));
                flags.push((name, v));
            }
            r => {
                remote = Some(
                    r.parse()
                        .unwrap_or_else(|_| fail(&format!("{r:?} is not IP:PORT\nusage: {usage}"))),
                )
            }
        }
    }
    if tuns.is_empty() {
        fail(&format!("at least one --tun NAME=ADDR\nusage: {usage}"));
    }
    let remote = remote.unwrap_or_else(|| fail(&format!("no REMOTE_IP:PORT\nusage: {usage}")));
    Args {
        tuns,
        remote,
        pcap,
        bytes,
        flags,
    }
}

/// The connection settings of the examples: the application decides every subflow.
pub fn config() -> ConnConfig {
    ConnConfig {
        path_manager: "manual".into(),
        ..ConnConfig::default()
    }
}

/// Opens the TUN devices and starts the stack's thread, with the runtime builder.
pub fn start(args: &Args) -> Runtime {
    let mut b = Runtime::builder()
        .conn_config(config())
        // plain packets, no segmentation offload: the pcap the interop test reads holds
        // the segments as they went on the wire
        .offload(false);
    for t in &args.tuns {
        b = b.tun(&t.name, t.addr);
    }
    if let Some(p) = &args.pcap {
        b = b.pcap(p);
    }
    b.start().unwrap_or_else(|e| fail(&format!("runtime: {e}")))
}

/// Connects from the first TUN address, retrying while the server is not listening yet.
pub fn connect(rt: &Runtime, args: &Args) -> MptcpStream {
    let mut last = None;
    for _ in 0..50 {
        match MptcpStream::connect_with(
            rt.handle(),
            args.remote,
            Some(args.tuns[0].addr),
            Some(config()),
            Some(TIMEOUT),
        ) {
            Ok(s) => {
                if s.info().map(|i| i.fallback).unwrap_or(true) {
                    fail("the connection fell back to plain TCP");
                }
                return s;
            }
            Err(e) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    fail(&format!("connect to {}: {:?}", args.remote, last))
}

/// Sends `bytes` pattern bytes while reading everything the peer sends; `during(sent)` is
/// called between chunks (after each 64 KiB) so the example can act mid-transfer.
/// Returns (sent, received).
pub fn transfer(s: &MptcpStream, bytes: u64, mut during: impl FnMut(u64)) -> (u64, u64) {
    let reader = s
        .try_clone()
        .unwrap_or_else(|e| fail(&format!("clone: {e}")));
    std::thread::scope(|sc| {
        let rx = sc.spawn(move || read_to_end(&reader));
        let mut p = mptun::testbed::peer::Pattern::new(PATTERN_SEED);
        let mut sent = 0u64;
        while sent < bytes {
            let n = (bytes - sent).min(64 << 10);
            write_pattern(s, &mut p, n);
            sent += n;
            during(sent);
        }
        s.shutdown(Shutdown::Write)
            .unwrap_or_else(|e| fail(&format!("shutdown: {e}")));
        let got = rx.join().unwrap_or_else(|_| fail("reader thread panicked"));
        if let Err(e) = s.wait_all_acked(Some(TIMEOUT)) {
            fail(&format!("data not acknowledged: {e}"));
        }
        (sent, got)
    })
}

/// The seed of the byte pattern the examples send (the interop tests check its digest).
pub const PATTERN_SEED: u64 = 0xE8A;

/// Writes the next `n` bytes of `p` (blocking until the stack has taken them all).
pub fn write_pattern(s: &MptcpStream, p: &mut mptun::testbed::peer::Pattern, n: u64) {
    let mut buf = vec![0u8; 64 << 10];
    let mut left = n;
    while left > 0 {
        let k = left.min(buf.len() as u64) as usize;
        p.fill(&mut buf[..k]);
        (&*s)
            .write_all(&buf[..k])
            .unwrap_or_else(|e| fail(&format!("write: {e}")));
        left -= k as u64;
    }
}

/// Reads until the peer's DATA_FIN; returns the byte count.
pub fn read_to_end(s: &MptcpStream) -> u64 {
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0u64;
    loop {
        match (&*s).read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got += n as u64,
            Err(e) => fail(&format!("read after {got} bytes: {e}")),
        }
    }
}

/// Whether everything written (and the DATA_FIN, once shut down) is acknowledged now.
pub fn all_acked(s: &MptcpStream) -> bool {
    s.wait_all_acked(Some(Duration::from_millis(1))).is_ok()
}

/// One line per subflow: id, tuple, flags and the main statistics.
pub fn print_subflows(s: &MptcpStream) {
    for st in s.subflows().unwrap_or_default() {
        let i: SubflowInfo = s.subflow_info(st.id).unwrap_or_default();
        println!(
            "subflow id={} local={} remote={} established={} backup={} initial={} closed={:?} \
             rtt_us={} data_sent={} bytes_acked={} retransmits={}",
            st.id,
            st.local,
            st.remote,
            st.established,
            st.backup,
            st.initial,
            st.closed,
            i.rtt.map_or(0, |r| r.as_micros()),
            i.data_sent,
            i.bytes_acked,
            i.retransmits
        );
    }
}
