//! Command-line option types shared by the binary and the runner.

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// `--tun NAME=ADDR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunSpec {
    pub name: String,
    pub addr: IpAddr,
}

impl FromStr for TunSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, addr) = s.split_once('=').ok_or_else(|| format!("expected NAME=ADDR, got {s:?}"))?;
        if name.is_empty() || name.len() > 15 {
            return Err(format!("bad device name {name:?} (1 to 15 characters)"));
        }
        let addr = addr.parse().map_err(|e| format!("bad address {addr:?}: {e}"))?;
        Ok(TunSpec { name: name.to_string(), addr })
    }
}

/// Everything `connect` and `listen` take.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    pub tuns: Vec<TunSpec>,
    pub remote: Option<SocketAddr>,
    pub port: Option<u16>,
    pub input: Option<PathBuf>,
    pub output: Option<PathBuf>,
    pub once: bool,
    pub path_manager: String,
    pub scheduler: String,
    pub congestion: String,
    pub backup: Vec<String>,
    pub announce: bool,
    pub impair: Vec<(String, String)>,
    pub pcap: Option<PathBuf>,
    pub mptcp: bool,
    pub checksum: bool,
}

/// Per-subflow part of the summary.
#[derive(Clone, Debug)]
pub struct SubflowSummary {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub rtt: Option<Duration>,
    pub retransmits: u64,
}

/// The one-line summary printed at the end.
#[derive(Clone, Debug)]
pub struct Summary {
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub duration: Duration,
    pub mptcp: bool,
    pub subflows: Vec<SubflowSummary>,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "summary: sent={} received={} duration={:.3}s mode={} subflows={}",
            self.bytes_sent,
            self.bytes_received,
            self.duration.as_secs_f64(),
            if self.mptcp { "mptcp" } else { "fallback" },
            self.subflows.len()
        )?;
        for s in &self.subflows {
            write!(
                f,
                " [{}->{} sent={} recv={} rtt={} retrans={}]",
                s.local,
                s.remote,
                s.bytes_sent,
                s.bytes_received,
                s.rtt.map_or_else(|| "-".to_string(), |r| format!("{:.1}ms", r.as_secs_f64() * 1000.0)),
                s.retransmits
            )?;
        }
        Ok(())
    }
}
