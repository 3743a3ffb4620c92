//! Per-connection configuration ([`ConnConfig`]) and the MSS a subflow gets from its link MTU.

use super::*;

/// Per-connection configuration.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    /// Ask for MPTCP (false: plain TCP).
    pub mptcp: bool,
    /// Request DSS checksums (A flag).
    pub checksum: bool,
    /// Connection-level send buffer, bytes.
    pub send_buffer: usize,
    /// Connection-level receive buffer (and window), bytes.
    pub recv_buffer: usize,
    /// Subflow TCP configuration. `tcp.mss` caps the MSS; each subflow uses at most its link
    /// MTU minus headers (`link_mtus`), so the default `u16::MAX` means "from the MTU".
    pub tcp: tcp::Config,
    /// IP TOS of new subflows.
    pub tos: u8,
    /// IP TTL / hop limit.
    pub ttl: u8,
    /// Path manager spec (`fullmesh`, `ndiffports:N`, `manual`), see `crate::pm::by_name`.
    pub path_manager: String,
    /// Scheduler name, see `crate::sched::by_name`.
    pub scheduler: String,
    /// Subflow and address limits.
    pub limits: crate::pm::Limits,
    /// Local addresses the path manager may use (the stack fills this in).
    pub local_addrs: Vec<crate::pm::LocalAddr>,
    /// How long a joining subflow waits for the peer to acknowledge its third ACK.
    pub join_timeout: Duration,
    /// ADD_ADDR retransmission interval while no echo arrives (Linux's
    /// `net.mptcp.add_addr_timeout`, 120 s there; 2 s by default here).
    pub add_addr_timeout: Duration,
    /// ADD_ADDR retransmissions before giving up on an echo (Linux: 3).
    pub add_addr_retries: u8,
    /// MTU of the link each local address is on (the stack fills this in from
    /// `Stack::set_mtu`); a subflow's MSS is at most this MTU minus the IP and TCP headers.
    /// Addresses not listed use `DEFAULT_MTU`.
    pub link_mtus: Vec<(IpAddr, u16)>,
}

/// MTU assumed for a local address with no known link MTU.
pub const DEFAULT_MTU: u16 = 1500;

/// IPv4 and IPv6 minimum MTUs (RFC 791, RFC 8200).
pub const MIN_MTU_V4: u16 = 576;
pub const MIN_MTU_V6: u16 = 1280;

/// The MSS (payload without TCP options) an MTU allows for `local`'s IP version.
pub fn mss_for_mtu(local: IpAddr, mtu: u16) -> u16 {
    let (min, hdr) = if local.is_ipv4() {
        (MIN_MTU_V4, 20 + 20)
    } else {
        (MIN_MTU_V6, 40 + 20)
    };
    mtu.max(min) - hdr
}

/// The TCP configuration of a new subflow from `local`: the connection's, with the MSS
/// bounded by the link MTU.
pub fn subflow_tcp_config(cfg: &ConnConfig, local: IpAddr) -> tcp::Config {
    let mtu = cfg
        .link_mtus
        .iter()
        .find(|(a, _)| *a == local)
        .map_or(DEFAULT_MTU, |(_, m)| *m);
    let mut t = cfg.tcp.clone();
    t.mss = t.mss.min(mss_for_mtu(local, mtu));
    t
}

impl ConnConfig {
    /// Whether the path manager spec, the scheduler and the congestion controller name
    /// policies that exist (built in or registered); the message says which does not.
    /// `Stack::connect` and `Stack::listen_with` refuse a configuration that fails this.
    pub fn check_policies(&self) -> Result<(), String> {
        crate::pm::by_name(&self.path_manager)?;
        if crate::sched::by_name(&self.scheduler).is_none() {
            return Err(format!(
                "unknown scheduler {:?} (one of {})",
                self.scheduler,
                crate::sched::names().join(", ")
            ));
        }
        if crate::cc::canonical(self.tcp.congestion).is_none() {
            return Err(format!(
                "unknown congestion control {:?} (one of {})",
                self.tcp.congestion,
                crate::cc::names().join(", ")
            ));
        }
        Ok(())
    }
}

impl Default for ConnConfig {
    fn default() -> Self {
        ConnConfig {
            mptcp: true,
            checksum: false,
            send_buffer: 4 << 20,
            recv_buffer: 4 << 20,
            // no cap of our own: each subflow's MSS comes from its link MTU
            tcp: tcp::Config {
                mss: u16::MAX,
                ..tcp::Config::default()
            },
            tos: 0,
            ttl: 64,
            path_manager: "fullmesh".into(),
            scheduler: crate::sched::DEFAULT.into(),
            limits: crate::pm::Limits::default(),
            local_addrs: Vec::new(),
            join_timeout: Duration::from_secs(10),
            add_addr_timeout: Duration::from_secs(2),
            add_addr_retries: 6,
            link_mtus: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    const V4: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2));
    const V6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);

    #[test]
    fn mss_for_mtu_takes_off_the_headers_of_the_ip_version() {
        assert_eq!(mss_for_mtu(V4, 1500), 1460);
        assert_eq!(mss_for_mtu(V6, 1500), 1440);
        assert_eq!(mss_for_mtu(V4, 9000), 8960);
        // never below the version's minimum MTU
        assert_eq!(mss_for_mtu(V4, 100), MIN_MTU_V4 - 40);
        assert_eq!(mss_for_mtu(V6, 1000), MIN_MTU_V6 - 60);
        assert_eq!(mss_for_mtu(V6, 0), 1220);
    }

    #[test]
    fn a_subflow_mss_comes_from_its_link_mtu_and_the_configured_cap() {
        let other = IpAddr::V4(Ipv4Addr::new(198, 19, 1, 2));
        let mut cfg = ConnConfig {
            link_mtus: vec![(V4, 9000), (V6, 1280)],
            ..ConnConfig::default()
        };
        assert_eq!(subflow_tcp_config(&cfg, V4).mss, 8960);
        assert_eq!(subflow_tcp_config(&cfg, V6).mss, 1220);
        assert_eq!(subflow_tcp_config(&cfg, other).mss, 1460, "DEFAULT_MTU");
        cfg.tcp.mss = 1000;
        assert_eq!(subflow_tcp_config(&cfg, V4).mss, 1000);
        assert_eq!(subflow_tcp_config(&cfg, other).mss, 1000);
        // the rest of the TCP configuration is the connection's
        assert_eq!(subflow_tcp_config(&cfg, V4).congestion, cfg.tcp.congestion);
    }

    #[test]
    fn the_syn_announces_the_mss_of_its_link() {
        let cfg = ConnConfig {
            link_mtus: vec![(IpAddr::V4(CLIENT.into()), 1280)],
            ..ConnConfig::default()
        };
        let mut syn_mss = None;
        let p = Pair::handshake(cfg, ConnConfig::default(), |cl, q| {
            if cl && q.has(tcp::flags::SYN) {
                syn_mss = q.tcp.mss;
            }
            true
        });
        assert!(p.c.conn.is_established());
        assert_eq!(syn_mss, Some(1240));
        assert_eq!(p.s.conn.subflows()[0].tcb.peer_mss(), 1240);
    }

    #[test]
    fn check_policies_names_what_does_not_exist() {
        assert_eq!(ConnConfig::default().check_policies(), Ok(()));
        let bad_sched = ConnConfig {
            scheduler: "fastest".into(),
            ..ConnConfig::default()
        };
        let e = bad_sched.check_policies().unwrap_err();
        assert!(
            e.contains("unknown scheduler \"fastest\"") && e.contains("minrtt"),
            "{e}"
        );
        let mut bad_cc = ConnConfig::default();
        bad_cc.tcp.congestion = "warp";
        let e = bad_cc.check_policies().unwrap_err();
        assert!(
            e.contains("unknown congestion control \"warp\"") && e.contains("cubic"),
            "{e}"
        );
        let bad_pm = ConnConfig {
            path_manager: "ndiffports:0".into(),
            ..ConnConfig::default()
        };
        assert!(bad_pm.check_policies().is_err());
        let bad_pm = ConnConfig {
            path_manager: "nowhere".into(),
            ..ConnConfig::default()
        };
        assert!(bad_pm.check_policies().is_err());
        // every built-in scheduler passes
        for s in crate::sched::NAMES {
            let c = ConnConfig {
                scheduler: (*s).into(),
                ..ConnConfig::default()
            };
            assert_eq!(c.check_policies(), Ok(()), "{s}");
        }
    }
}
