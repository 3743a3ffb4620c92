//! Scenario tests of one MPTCP connection on the deterministic simulated network.

mod simutil;

use mptun::io::impair::Impairment;
use mptun::io::sim::Verdict;
use mptun::mptcp::{ConnConfig, Mode};
use mptun::time::Duration;
use sha2::{Digest, Sha256};
use simutil::*;
use std::cell::Cell;
use std::rc::Rc;

fn lossy(loss: f64, reorder: f64) -> Impairment {
    Impairment {
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(2),
        loss,
        reorder,
        rate_bps: 200_000_000,
        queue_limit: 4 << 20,
        ..Impairment::default()
    }
}

fn clean() -> Impairment {
    lossy(0.0, 0.0)
}

#[test]
fn small_transfer_both_ways_is_mptcp() {
    let mut p = Pair::new(1, clean());
    let c = p.connect();
    let mut t = Transfer::new(c, data(100_000, 1), data(70_000, 2));
    assert!(
        t.run(&mut p, Duration::from_secs(30)),
        "transfer did not finish"
    );
    t.assert_intact();
    let cc = p.client.connection(c).unwrap();
    let sc = p.server.connection(t.server.unwrap()).unwrap();
    assert_eq!(cc.mode(), Mode::Mptcp);
    assert_eq!(sc.mode(), Mode::Mptcp);
    assert_eq!(p.client.mib().MPCapableSYNACKRX, 1);
    assert_eq!(p.server.mib().MPCapableSYNRX, 1);
    assert_eq!(p.server.mib().MPCapableACKRX, 1);
    assert_eq!(p.server.mib().MPCapableFallbackACK, 0);
    assert_eq!(
        p.client.mib().DSSNotMatching + p.server.mib().DSSNotMatching,
        0
    );
    // tokens derive from the keys each side learned
    assert_eq!(cc.info().remote_token, sc.info().local_token);
    assert_eq!(sc.info().remote_token, cc.info().local_token);
}

/// Drop the n-th packet of the handshake (0: SYN, 1: SYN/ACK, 2: third ACK) once.
fn handshake_loss(n: usize) {
    let mut p = Pair::new(10 + n as u64, clean());
    let seen = Rc::new(Cell::new(0usize));
    let dropped = Rc::new(Cell::new(false));
    let (s2, d2) = (seen.clone(), dropped.clone());
    p.net.set_hook(Box::new(move |_info, pkt| {
        let Some(flags) = tcp_flags(pkt) else {
            return Verdict::Pass;
        };
        let is_hs = match n {
            0 => flags & SYN != 0 && flags & ACK == 0,
            1 => flags & SYN != 0 && flags & ACK != 0,
            _ => {
                flags == ACK
                    && tcp_payload_len(pkt) == 0
                    && mptcp_options(pkt).iter().any(|o| o.len() == 20)
            }
        };
        if is_hs && !d2.get() {
            d2.set(true);
            s2.set(s2.get() + 1);
            return Verdict::Drop;
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(50_000, 3), data(20_000, 4));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish after losing handshake packet {n}"
    );
    assert!(dropped.get(), "the hook never saw handshake packet {n}");
    t.assert_intact();
    assert_eq!(
        p.client.connection(c).unwrap().mode(),
        Mode::Mptcp,
        "fell back after losing packet {n}"
    );
    assert_eq!(
        p.server.connection(t.server.unwrap()).unwrap().mode(),
        Mode::Mptcp
    );
}

#[test]
fn handshake_survives_lost_syn() {
    handshake_loss(0);
}

#[test]
fn handshake_survives_lost_synack() {
    handshake_loss(1);
}

#[test]
fn handshake_survives_lost_third_ack() {
    handshake_loss(2);
}

#[test]
fn ten_megabytes_each_way_with_loss_and_reordering() {
    let mut p = Pair::new(42, lossy(0.02, 0.02));
    let c = p.connect();
    let a = data(10 << 20, 5);
    let b = data(10 << 20, 6);
    let mut t = Transfer::new(c, a.clone(), b.clone());
    assert!(
        t.run(&mut p, Duration::from_secs(600)),
        "transfer did not finish"
    );
    assert_eq!(Sha256::digest(&t.s_recv), Sha256::digest(&a));
    assert_eq!(Sha256::digest(&t.c_recv), Sha256::digest(&b));
    let st = p.client.connection(c).unwrap().subflows()[0].tcb.stats();
    assert!(
        st.retransmits > 0,
        "2% loss must have caused retransmissions"
    );
    assert_eq!(p.client.connection(c).unwrap().mode(), Mode::Mptcp);
}

#[test]
fn lost_data_fin_is_retransmitted() {
    let mut p = Pair::new(7, clean());
    let dropped = Rc::new(Cell::new(0u32));
    let d2 = dropped.clone();
    p.net.set_hook(Box::new(move |_info, pkt| {
        // DSS with the F flag (0x10 in the flags byte, offset 3 of the option)
        let fin = mptcp_options(pkt)
            .iter()
            .any(|o| o.len() >= 4 && o[2] >> 4 == 2 && o[3] & 0x10 != 0);
        if fin && d2.get() < 2 {
            d2.set(d2.get() + 1);
            return Verdict::Drop;
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(30_000, 8), data(30_000, 9));
    assert!(
        t.run(&mut p, Duration::from_secs(120)),
        "connection did not close after DATA_FIN loss"
    );
    assert!(dropped.get() >= 1, "no DATA_FIN was seen");
    t.assert_intact();
    assert!(p.server.mib().DataFinRx + p.client.mib().DataFinRx >= 2);
}

#[test]
fn fallback_when_synack_options_are_stripped() {
    let mut p = Pair::new(9, clean());
    p.net.set_hook(Box::new(|_info, pkt| {
        if tcp_flags(pkt).is_some_and(|f| f & SYN != 0 && f & ACK != 0) {
            strip_mptcp(pkt);
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(200_000, 10), data(100_000, 11));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "fallback transfer did not finish"
    );
    t.assert_intact();
    assert_eq!(p.client.connection(c).unwrap().mode(), Mode::Fallback);
    assert_eq!(
        p.server.connection(t.server.unwrap()).unwrap().mode(),
        Mode::Fallback
    );
    assert_eq!(p.client.mib().MPCapableFallbackSYNACK, 1);
    assert_eq!(p.server.mib().MPCapableFallbackACK, 1);
}

#[test]
fn plain_tcp_client_gets_fallback() {
    let plain = ConnConfig {
        mptcp: false,
        ..ConnConfig::default()
    };
    let mut p = Pair::with_configs(11, clean(), plain, ConnConfig::default());
    let c = p.connect();
    let mut t = Transfer::new(c, data(150_000, 12), data(150_000, 13));
    assert!(t.run(&mut p, Duration::from_secs(60)));
    t.assert_intact();
    assert_eq!(
        p.server.connection(t.server.unwrap()).unwrap().mode(),
        Mode::Fallback
    );
    assert_eq!(p.server.mib().PlainTcpSYNRX, 1);
    assert_eq!(p.server.mib().MPCapableSYNRX, 0);
}

/// RFC 8684 3.1: an MP_CAPABLE SYN with the extensibility flag B set (not understood), or
/// without the HMAC-SHA256 flag H, MUST be ignored: the connection is plain TCP, never an
/// MPTCP SYN/ACK. Here the client's SYN is rewritten on the wire.
fn mp_capable_flags_force_plain_tcp(set: u8, clear: u8) {
    let mut p = Pair::new(31, clean());
    p.net.set_hook(Box::new(move |_info, pkt| {
        if tcp_flags(pkt) == Some(SYN) {
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let doff = usize::from(pkt[ihl + 12] >> 4) * 4;
            let mut i = ihl + 20;
            while i + 3 < ihl + doff {
                match pkt[i] {
                    0 => break,
                    1 => i += 1,
                    k => {
                        if k == 30 && pkt[i + 2] >> 4 == 0 {
                            pkt[i + 3] = (pkt[i + 3] | set) & !clear;
                        }
                        i += usize::from(pkt[i + 1].max(2));
                    }
                }
            }
            fix_tcp_checksum(pkt);
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(100_000, 31), data(50_000, 32));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    let s = t.server.unwrap();
    assert_eq!(p.server.connection(s).unwrap().mode(), Mode::Fallback);
    assert_eq!(p.client.connection(c).unwrap().mode(), Mode::Fallback);
    assert_eq!(p.server.mib().MPCapableIgnored, 1);
    assert_eq!(p.server.mib().MPCapableSYNRX, 0);
    assert_eq!(p.server.mib().PlainTcpSYNRX, 1);
    assert_eq!(p.client.mib().MPCapableFallbackSYNACK, 1);
}

#[test]
fn mp_capable_syn_with_b_flag_is_plain_tcp() {
    mp_capable_flags_force_plain_tcp(0x40, 0);
}

#[test]
fn mp_capable_syn_without_h_flag_is_plain_tcp() {
    mp_capable_flags_force_plain_tcp(0, 0x01);
}

#[test]
fn connection_to_closed_port_is_refused() {
    let mut p = Pair::new(12, clean());
    let now = p.now();
    let c = p
        .client
        .connect(
            now,
            std::net::SocketAddr::new(SERVER1, 9),
            Some(CLIENT1),
            None,
        )
        .unwrap();
    assert!(p.run_until(Duration::from_secs(10), |p| p
        .client
        .connection(c)
        .unwrap()
        .error()
        .is_some()));
    assert_eq!(
        p.client.connection(c).unwrap().error(),
        Some(mptun::mptcp::ConnError::Refused)
    );
    assert_eq!(p.server.mib().InNoSocket, 1);
}

#[test]
fn checksums_negotiated_and_verified_path() {
    let csum = ConnConfig {
        checksum: true,
        ..ConnConfig::default()
    };
    let mut p = Pair::with_configs(13, clean(), csum, ConnConfig::default());
    let c = p.connect();
    let mut t = Transfer::new(c, data(80_000, 14), data(80_000, 15));
    assert!(t.run(&mut p, Duration::from_secs(60)));
    t.assert_intact();
    assert!(p.client.connection(c).unwrap().checksum_enabled());
    assert!(p
        .server
        .connection(t.server.unwrap())
        .unwrap()
        .checksum_enabled());
    assert_eq!(p.client.mib().DataCsumErr + p.server.mib().DataCsumErr, 0);
}

/// Rewrite the DSS mapping of an IPv4 TCP packet from an 8-byte to a 4-byte DSN (the low
/// 32 bits), keeping the header length with NOPs; the DSS checksum is left as the sender
/// computed it. Returns whether it rewrote one.
fn shorten_dsn(pkt: &mut [u8]) -> bool {
    for (i, l) in mptcp_option_spans(pkt) {
        let f = pkt[i + 3];
        if l >= 4 && pkt[i + 2] >> 4 == 2 && f & 0x0c == 0x0c {
            // kind, len, subtype, flags, [ack 4 or 8], dsn 8, ...
            let ack = match f & 0x03 {
                0x03 => 8,
                0x01 => 4,
                _ => 0,
            };
            let d = i + 4 + ack;
            // drop the DSN's high 4 bytes: move the rest of the option left by 4
            pkt.copy_within(d + 4..i + l, d);
            pkt[i + l - 4..i + l].fill(1); // NOPs
            pkt[i + 1] = (l - 4) as u8;
            pkt[i + 3] = f & !0x08;
            fix_tcp_checksum(pkt);
            return true;
        }
    }
    false
}

/// A peer that sends 4-byte DSNs with DSS checksums on: the checksum covers the full 64-bit
/// DSN (RFC 8684 3.3.1), which the receiver expands from the 32 bits before verifying. Every
/// mapping verifies and the data arrives intact.
#[test]
fn checksums_verify_over_the_expanded_dsn_of_a_32_bit_mapping() {
    let csum = ConnConfig {
        checksum: true,
        ..ConnConfig::default()
    };
    let mut p = Pair::with_configs(16, clean(), csum.clone(), csum);
    let short = Rc::new(Cell::new(0u32));
    let s2 = short.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        if info.from_host == 0 && tcp_payload_len(pkt) > 0 && shorten_dsn(pkt) {
            s2.set(s2.get() + 1);
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(300_000, 16), data(1000, 17));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    assert!(short.get() > 100, "only {} mappings rewritten", short.get());
    assert_eq!(p.server.mib().DataCsumErr, 0, "{:?}", p.server.mib());
}

/// RFC 8684 3.3: DSS checksums present although not negotiated (or absent although they
/// were) mean the peer does not behave as agreed: the subflow is reset, its data is not
/// taken. Here the client's A flag is cleared from its MP_CAPABLE options on the way (SYN and
/// third ACK), so the server agrees
/// to no checksums while the client, configured to require them, sends them: the server
/// resets on the client's first mapping and never delivers its data; both applications get
/// an error.
#[test]
fn a_checksum_presence_different_from_the_negotiated_one_resets_the_subflow() {
    let csum = ConnConfig {
        checksum: true,
        ..ConnConfig::default()
    };
    let mut p = Pair::with_configs(18, clean(), csum, ConnConfig::default());
    p.net.set_hook(Box::new(move |info, pkt| {
        if info.from_host == 0 {
            for (i, l) in mptcp_option_spans(pkt) {
                if l >= 4 && pkt[i + 2] >> 4 == 0 {
                    pkt[i + 3] &= !0x80; // MP_CAPABLE flags: clear A
                }
            }
            fix_tcp_checksum(pkt);
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let sent = data(50_000, 18);
    let mut off = 0;
    let (mut server, mut got) = (None, Vec::new());
    let mut buf = vec![0u8; 65536];
    p.run_until(Duration::from_secs(60), |p| {
        if server.is_none() {
            server = p.server.accept(PORT);
        }
        if p.client.connection(c).is_some_and(|x| x.is_established()) && off < sent.len() {
            if let Ok(n) = p.client.send(c, &sent[off..]) {
                off += n;
            }
        }
        if let Some(s) = server {
            while let Ok(n) = p.server.recv(s, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        p.client.connection(c).is_none_or(|x| x.error().is_some())
    });
    // (the server resets on the client's first data, possibly before its application
    // accepted the connection)
    if let Some(s) = server.and_then(|s| p.server.connection(s)) {
        assert!(!s.checksum_enabled());
    }
    assert!(p.server.mib().DSSCsumMismatch >= 1, "{:?}", p.server.mib());
    assert!(
        got.is_empty(),
        "the server delivered {} bytes of mappings it should not take",
        got.len()
    );
    assert!(
        p.client.connection(c).is_none_or(|x| x.error().is_some()),
        "the client was not told"
    );
}

#[test]
fn corrupted_payload_is_caught_by_the_dss_checksum() {
    let csum = ConnConfig {
        checksum: true,
        ..ConnConfig::default()
    };
    let mut p = Pair::with_configs(14, clean(), csum.clone(), csum);
    // flip payload bytes of a few data packets and repair the TCP checksum, as a middlebox
    // rewriting content would: only the DSS checksum can tell
    let hits = Rc::new(Cell::new(0u32));
    let h = hits.clone();
    p.net.set_hook(Box::new(move |_info, pkt| {
        if tcp_payload_len(pkt) > 100 && h.get() < 3 {
            h.set(h.get() + 1);
            let n = pkt.len();
            pkt[n - 10] ^= 0x55;
            fix_tcp_checksum(pkt);
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(200_000, 21), data(200_000, 22));
    assert!(t.run(&mut p, Duration::from_secs(120)));
    assert_eq!(hits.get(), 3);
    t.assert_intact();
    let errs = p.client.mib().DataCsumErr + p.server.mib().DataCsumErr;
    assert_eq!(
        errs, 3,
        "every corrupted segment is caught and its data taken again"
    );
}

/// A sub-millisecond path: the smoothed RTT comes from timed segments at the clock's
/// resolution, not from 1 ms timestamp ticks (which would read 0 or 1 ms).
#[test]
fn sub_millisecond_rtt_is_measured_in_microseconds() {
    let path = Impairment {
        delay: Duration::from_micros(200),
        rate_bps: 1_000_000_000,
        queue_limit: 4 << 20,
        ..Impairment::default()
    };
    let mut p = Pair::new(71, path);
    let c = p.connect();
    // little data: no queue builds up, so the RTT stays the path's
    let mut t = Transfer::new(c, data(30_000, 1), data(30_000, 2));
    assert!(t.run(&mut p, Duration::from_secs(30)));
    t.assert_intact();
    let srtt = p.client.connection(c).unwrap().subflows()[0]
        .tcb
        .srtt()
        .expect("an RTT sample");
    assert!(
        srtt >= Duration::from_micros(350) && srtt <= Duration::from_micros(1500),
        "srtt {srtt:?} for a 400 us round trip"
    );
}

/// MPTCP_INFO-like counters: retransmissions summed over the subflows, on a lossy path.
#[test]
fn connection_info_counts_retransmissions() {
    let mut p = Pair::new(72, lossy(0.02, 0.0));
    let c = p.connect();
    let mut t = Transfer::new(c, data(1_000_000, 3), data(10_000, 4));
    assert!(t.run(&mut p, Duration::from_secs(120)));
    t.assert_intact();
    let conn = p.client.connection(c).unwrap();
    let info = conn.info();
    let summed: u64 = conn
        .subflows()
        .iter()
        .map(|s| s.tcb.stats().retransmits)
        .sum();
    assert!(info.retransmits > 0, "2% loss must cause retransmissions");
    assert_eq!(info.retransmits, summed);
    assert_eq!(
        info.bytes_acked,
        1_000_000 + 1,
        "all data and the DATA_FIN acknowledged"
    );
}

/// The peer closes the sending side of our only subflow (a subflow FIN, here its
/// application's graceful `close_subflow`) while we still have data to send: as in Linux,
/// the subflow stays half-open (CLOSE-WAIT) and our data and DATA_FIN still leave on it.
/// Closing it at once (mptun before) left 2 MB with no subflow to go on, and the transfer
/// hung. (packetdrill's dss_fin_server.pkt checks the same on the wire.)
#[test]
fn a_subflow_fin_on_the_only_subflow_leaves_our_sending_side_open() {
    let mut p = Pair::new(71, clean());
    let conn = p.connect();
    let mut t = Transfer::new(conn, data(50_000, 71), data(2_000_000, 72));
    let mut closed = false;
    let ok = p.run_until(Duration::from_secs(60), |p| {
        t.pump(p);
        // once the client's data is all acknowledged, its application closes the subflow
        if !closed
            && t.c_sent == t.c_data.len()
            && p.client.connection(conn).is_some_and(|c| c.all_acked())
        {
            let c = p.client.connection_mut(conn).expect("client connection");
            assert!(
                c.close_subflow(0, false),
                "graceful close of the only subflow"
            );
            closed = true;
        }
        t.c_recv.len() == t.s_data.len() && t.c_eof
    });
    assert!(closed, "the client never closed its subflow");
    assert!(
        ok,
        "the server's data stopped after the subflow FIN: client got {} of {} bytes",
        t.c_recv.len(),
        t.s_data.len()
    );
    assert_eq!(t.c_recv, t.s_data, "server -> client intact");
}
