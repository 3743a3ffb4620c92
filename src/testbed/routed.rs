//! A routed two-path topology: mptun's host, a router, and a Linux MPTCP host in three
//! namespaces, so that mptun's packets are *forwarded* over links with a real MTU.
//!
//! ```text
//!   H (mptun's host, ip_forward=1)          R (router, ip_forward=1)        S (Linux MPTCP)
//!   mptun 198.18.1.2 <-> tun0 198.18.1.1
//!                        hA 198.18.11.1 <==> rA 198.18.11.2
//!                                            rsA 198.18.12.1 <==> sA 198.18.12.2
//!   mptun 198.18.2.2 <-> tun1 198.18.2.1
//!                        hB 198.18.21.1 <==> rB 198.18.21.2
//!                                            rsB 198.18.22.1 <==> sB 198.18.22.2
//! ```
//!
//! Path A carries everything mptun sends from 198.18.1.2, path B everything from
//! 198.18.2.2, whatever S address it goes to: H and R route by source (`ip rule from
//! 198.18.1.0/24` / `198.18.2.0/24`, tables 101 and 102), S routes back by destination. A
//! TUN device accepts packets larger than its MTU, so a single namespace never notices an
//! oversized packet; here H must forward it over a veth and counts `IpFragFails` (and sends
//! ICMP fragmentation-needed back to mptun) when it does not fit.
//!
//! The MTU of the H-R links, of the R-S links and of the TUN devices are set separately
//! ([`RoutedConfig`]): a smaller H-R MTU is a bottleneck neither end is attached to, so both
//! mptun (ICMP from H) and Linux (ICMP from R) must do path MTU discovery.

use std::io;
use std::path::Path;

use super::peer::PeerArgs;
use super::NetNs;

/// mptun's address on tun0 (path A).
pub const MPTUN_A: &str = "198.18.1.2";
/// mptun's address on tun1 (path B).
pub const MPTUN_B: &str = "198.18.2.2";
/// S's address on path A (the one mptun connects to / Linux connects from).
pub const LINUX_A: &str = "198.18.12.2";
/// S's address on path B.
pub const LINUX_B: &str = "198.18.22.2";
/// S's device on path B (for `ip mptcp endpoint ... dev`).
pub const LINUX_DEV_B: &str = "sB";

/// MTUs of the routed topology.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutedConfig {
    /// MTU of both H-R veth pairs.
    pub h_r_mtu: u32,
    /// MTU of both R-S veth pairs (S's own interfaces: Linux's advertised MSS follows it).
    pub r_s_mtu: u32,
    /// MTU of tun0 and tun1 in H.
    pub tun_mtu: u32,
}

impl RoutedConfig {
    /// Every link (and the TUN devices) at `mtu`.
    pub fn uniform(mtu: u32) -> RoutedConfig {
        RoutedConfig {
            h_r_mtu: mtu,
            r_s_mtu: mtu,
            tun_mtu: mtu,
        }
    }

    /// The H-R links at `mtu`, everything else at 1500: neither mptun nor Linux can learn
    /// the path MTU from their own interfaces or the peer's MSS, only from ICMP
    /// fragmentation-needed (path MTU discovery).
    pub fn bottleneck(mtu: u32) -> RoutedConfig {
        RoutedConfig {
            h_r_mtu: mtu,
            r_s_mtu: 1500,
            tun_mtu: 1500,
        }
    }

    /// The smallest MTU on the path.
    pub fn path_mtu(&self) -> u32 {
        self.h_r_mtu.min(self.r_s_mtu).min(self.tun_mtu)
    }
}

impl Default for RoutedConfig {
    fn default() -> Self {
        RoutedConfig::uniform(1500)
    }
}

/// The three namespaces; dropping it removes them (and everything in them).
#[derive(Debug)]
pub struct RoutedTopology {
    /// mptun's host: tun0, tun1 (kernel side .1, mptun .2), forwarding to R.
    pub h: NetNs,
    /// The router.
    pub r: NetNs,
    /// The Linux MPTCP host, with [`LINUX_A`] and [`LINUX_B`].
    pub s: NetNs,
    pub config: RoutedConfig,
}

impl RoutedTopology {
    /// Builds the topology in three new namespaces named after `tag`. S gets MPTCP limits of
    /// 4 subflows and 4 accepted ADD_ADDRs; no endpoints (add them with
    /// [`NetNs::mptcp_endpoint`] on `s`).
    pub fn new(tag: &str, config: RoutedConfig) -> io::Result<RoutedTopology> {
        let h = NetNs::new(&format!("{tag}-h"))?;
        let r = NetNs::new(&format!("{tag}-r"))?;
        let s = NetNs::new(&format!("{tag}-s"))?;
        let t = RoutedTopology { h, r, s, config };
        t.setup()?;
        Ok(t)
    }

    fn setup(&self) -> io::Result<()> {
        let (h, r, s) = (&self.h, &self.r, &self.s);
        let c = self.config;
        for ns in [h, r] {
            ns.sysctl("net.ipv4.ip_forward", "1")?;
        }
        // IPv4 only: no router solicitations or MLD reports queued to the TUN devices
        // (dropped, and counted in tx_dropped, while mptun is not attached yet).
        for ns in [h, r, s] {
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        }
        h.add_tun("tun0", "198.18.1.1/24")?;
        h.add_tun("tun1", "198.18.2.1/24")?;
        h.set_mtu("tun0", c.tun_mtu)?;
        h.set_mtu("tun1", c.tun_mtu)?;

        h.add_veth_pair("hA", "198.18.11.1/24", r, "rA", "198.18.11.2/24")?;
        h.add_veth_pair("hB", "198.18.21.1/24", r, "rB", "198.18.21.2/24")?;
        r.add_veth_pair("rsA", "198.18.12.1/24", s, "sA", "198.18.12.2/24")?;
        r.add_veth_pair("rsB", "198.18.22.1/24", s, "sB", "198.18.22.2/24")?;
        for (ns, dev, mtu) in [
            (h, "hA", c.h_r_mtu),
            (h, "hB", c.h_r_mtu),
            (r, "rA", c.h_r_mtu),
            (r, "rB", c.h_r_mtu),
            (r, "rsA", c.r_s_mtu),
            (r, "rsB", c.r_s_mtu),
            (s, "sA", c.r_s_mtu),
            (s, "sB", c.r_s_mtu),
        ] {
            ns.set_mtu(dev, mtu)?;
            ns.sysctl(&format!("net.ipv4.conf.{dev}.rp_filter"), "0")?;
        }

        // H: what mptun sends from 198.18.1.0/24 leaves over path A, from 198.18.2.0/24
        // over path B; R keeps each on its path. The tables hold only S's subnets, so
        // anything else (ICMP errors H sends to mptun, the connected TUN subnets) falls
        // through to the main table.
        for (ns, table, from, gw, dev) in [
            (h, 101, "198.18.1.0/24", "198.18.11.2", "hA"),
            (h, 102, "198.18.2.0/24", "198.18.21.2", "hB"),
            (r, 101, "198.18.1.0/24", "198.18.12.2", "rsA"),
            (r, 102, "198.18.2.0/24", "198.18.22.2", "rsB"),
        ] {
            for dst in ["198.18.12.0/24", "198.18.22.0/24"] {
                ip(
                    ns,
                    &format!("route add {dst} via {gw} dev {dev} table {table}"),
                )?;
            }
            ip(
                ns,
                &format!("rule add from {from} lookup {table} pref {table}"),
            )?;
        }
        // H's own traffic to S: path A. R and S route back to mptun's subnets (and S to
        // H's router addresses, for ICMP from H) by destination.
        ip(h, "route add 198.18.12.0/24 via 198.18.11.2 dev hA")?;
        ip(h, "route add 198.18.22.0/24 via 198.18.11.2 dev hA")?;
        ip(r, "route add 198.18.1.0/24 via 198.18.11.1 dev rA")?;
        ip(r, "route add 198.18.2.0/24 via 198.18.21.1 dev rB")?;
        ip(s, "route add 198.18.1.0/24 via 198.18.12.1 dev sA")?;
        ip(s, "route add 198.18.2.0/24 via 198.18.22.1 dev sB")?;
        ip(s, "route add 198.18.11.0/24 via 198.18.12.1 dev sA")?;
        ip(s, "route add 198.18.21.0/24 via 198.18.22.1 dev sB")?;
        s.mptcp_limits(4, 4)?;
        Ok(())
    }

    /// mptun's `--tun` arguments for H.
    pub fn tun_args() -> Vec<String> {
        [
            "--tun".to_string(),
            format!("tun0={MPTUN_A}"),
            "--tun".to_string(),
            format!("tun1={MPTUN_B}"),
        ]
        .to_vec()
    }

    /// Checks the routing without mptun: plain TCP (`exe linux-peer --tcp`, `exe` being
    /// the mptun binary) from H's TUN-side addresses (which the source rules treat like
    /// mptun's) to both S addresses, 256 KiB each way in full-sized segments, and verifies
    /// that each went over its own path both ways (R's per-device byte counters). Returns
    /// what failed.
    pub fn verify_paths(&self, exe: &Path) -> Result<(), String> {
        const BYTES: u64 = 256 * 1024;
        let mut port = 6000;
        for (src, to_s, to_h) in [("198.18.1.1", "rsA", "rA"), ("198.18.2.1", "rsB", "rB")] {
            for dst in [LINUX_A, LINUX_B] {
                port += 1;
                let what = format!("TCP {src} -> {dst}:{port}");
                let e = |err: io::Error| format!("{what}: {err}");
                let stat = |dev: &str| self.r.dev_stat(dev, "tx_bytes").map_err(e);
                let before = (stat(to_s)?, stat(to_h)?);
                let mut listen = PeerArgs::listen(
                    format!("0.0.0.0:{port}").parse().expect("address"),
                    BYTES,
                    1,
                );
                listen.tcp = true;
                listen.io_timeout = 10;
                let mut connect =
                    PeerArgs::connect(format!("{dst}:{port}").parse().expect("address"), BYTES, 2);
                connect.tcp = true;
                connect.io_timeout = 10;
                connect.bind = Some(src.parse().expect("address"));
                let server = self.s.start_peer(exe, &listen, 20).map_err(e)?;
                let client = self.h.start_peer(exe, &connect, 20).map_err(e)?;
                let c = self.h.finish_peer(client).map_err(e)?;
                let srv = self.s.finish_peer(server).map_err(e)?;
                if c.sent_sha256 != srv.received_sha256
                    || srv.sent_sha256 != c.received_sha256
                    || c.bytes_received != BYTES
                    || srv.bytes_received != BYTES
                {
                    return Err(format!("{what}: data differs: {c} / {srv}"));
                }
                let after = (stat(to_s)?, stat(to_h)?);
                if after.0 < before.0 + BYTES || after.1 < before.1 + BYTES {
                    return Err(format!(
                        "{what}: did not go over R's {to_s} and {to_h} \
                         (tx_bytes {before:?} -> {after:?})"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `ip ARGS` in `ns`, the arguments split at whitespace.
fn ip(ns: &NetNs, args: &str) -> io::Result<String> {
    ns.run(std::iter::once("ip").chain(args.split_whitespace()))
}
