//! Data-path scenarios on the simulated network: each reproduces a failure seen against
//! Linux (issue "the data path never stalls, never overruns the peer's window, never sends
//! an oversized packet") and checks the recovery.

mod simutil;

use mptun::io::impair::Impairment;
use mptun::io::sim::Verdict;
use mptun::mptcp::ConnConfig;
use mptun::stack::StackError;
use mptun::time::{Duration, Instant};
use simutil::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

fn link(loss: f64) -> Impairment {
    Impairment {
        delay: Duration::from_millis(10),
        jitter: Duration::from_millis(1),
        loss,
        rate_bps: 100_000_000,
        queue_limit: 1 << 20,
        ..Impairment::default()
    }
}

/// Offset of the 64-bit DSN of the DSS mapping in an IPv4 TCP packet, if it has one.
fn dss_dsn_offset(pkt: &[u8]) -> Option<usize> {
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let doff = usize::from(pkt[ihl + 12] >> 4) * 4;
    let mut i = ihl + 20;
    while i + 1 < ihl + doff {
        match pkt[i] {
            0 => return None,
            1 => i += 1,
            k => {
                let l = usize::from(pkt[i + 1]);
                if l < 2 {
                    return None;
                }
                if k == 30 && l >= 4 && pkt[i + 2] >> 4 == 2 {
                    let flags = pkt[i + 3];
                    let has_map = flags & 0x04 != 0;
                    let dsn64 = flags & 0x08 != 0;
                    if !has_map || !dsn64 {
                        return None;
                    }
                    let ack_len = match (flags & 0x01 != 0, flags & 0x02 != 0) {
                        (false, _) => 0,
                        (true, false) => 4,
                        (true, true) => 8,
                    };
                    return Some(i + 4 + ack_len);
                }
                i += l;
            }
        }
    }
    None
}

/// Whether an IPv4 TCP packet carries a SACK option (kind 5).
fn has_sack(pkt: &[u8]) -> bool {
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let doff = usize::from(pkt[ihl + 12] >> 4) * 4;
    let mut i = ihl + 20;
    while i + 1 < ihl + doff {
        match pkt[i] {
            0 => return false,
            1 => i += 1,
            k => {
                if k == 5 {
                    return true;
                }
                let l = usize::from(pkt[i + 1]);
                if l < 2 {
                    return false;
                }
                i += l;
            }
        }
    }
    false
}

/// Linux drops data past the data-level window after its subflow acknowledged it. Here the
/// same happens to a few segments (their mapping is rewritten so that the receiver takes
/// them for old duplicates: the subflow acknowledges them, the data level never gets them).
/// Only a data-level retransmission can recover; without one the transfer hangs.
#[test]
fn data_lost_after_the_subflow_acked_it_is_retransmitted_at_the_data_level() {
    let mut p = Pair::new(11, link(0.0));
    let n = Rc::new(Cell::new(0u32));
    let hit = n.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        if info.from_host == 0 && tcp_payload_len(pkt) > 0 {
            hit.set(hit.get() + 1);
            if (300..=304).contains(&hit.get()) {
                if let Some(o) = dss_dsn_offset(pkt) {
                    let mut d = [0u8; 8];
                    d.copy_from_slice(&pkt[o..o + 8]);
                    let dsn = u64::from_be_bytes(d).wrapping_sub(1 << 40);
                    pkt[o..o + 8].copy_from_slice(&dsn.to_be_bytes());
                    fix_tcp_checksum(pkt);
                }
            }
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(2_000_000, 5), data(100_000, 6));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    assert!(n.get() > 304, "the hook never rewrote a segment");
    let mib = p.client.mib();
    assert!(
        mib.DataRetrans >= 1,
        "no data-level retransmission: {mib:?}"
    );
    assert!(p.client.info(c).unwrap().data_retransmits >= 1);
}

/// DATA_ACKs lost while the subflow ACKs arrive (a middlebox strips the MPTCP options from
/// the peer's ACKs for a while): every subflow has all its data acknowledged, nothing else
/// would ever make the peer send again; the data-level retransmission timer must.
#[test]
fn lost_data_acks_are_recovered_by_data_level_retransmission() {
    let mut p = Pair::new(12, link(0.0));
    let strip_from: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
    let s2 = strip_from.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        if info.from_host == 1 {
            if let Some(t) = s2.get() {
                if info.time >= t && info.time < t + Duration::from_secs(2) {
                    strip_mptcp(pkt);
                }
            }
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let payload = data(600_000, 7);
    let mut sent = 0;
    let mut got = Vec::new();
    let mut server = None;
    let mut buf = vec![0u8; 65536];
    let done = p.run_until(Duration::from_secs(60), |p| {
        if p.client.connection(c).is_some_and(|x| x.is_established()) {
            while sent < payload.len() {
                match p.client.send(c, &payload[sent..]) {
                    Ok(n) => sent += n,
                    Err(StackError::WouldBlock) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
        if server.is_none() {
            server = p.server.accept(PORT);
        }
        if let Some(s) = server {
            while let Ok(n) = p.server.recv(s, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        if strip_from.get().is_none() && got.len() > 100_000 {
            strip_from.set(Some(p.now()));
        }
        // the client does not close: only the data level can learn that all arrived
        p.client
            .info(c)
            .is_ok_and(|i| i.bytes_acked == payload.len() as u64)
    });
    assert!(strip_from.get().is_some(), "stripping never started");
    assert!(
        got == payload,
        "server got {} of {} bytes",
        got.len(),
        payload.len()
    );
    let mib = p.client.mib();
    assert!(
        done,
        "the client never learnt that its data arrived (DATA_ACK lost): {mib:?}"
    );
    assert!(
        mib.DataRetrans >= 1,
        "no data-level retransmission: {mib:?}"
    );
}

/// The peer's window closes (its application does not read); when it reads again, the
/// window update is lost. Nothing is in flight, so the sender must probe the data-level
/// window, with backoff, until it learns that it opened.
#[test]
fn a_lost_window_update_is_recovered_by_probing_the_closed_window() {
    let scfg = ConnConfig {
        recv_buffer: 64 * 1024,
        ..ConnConfig::default()
    };
    let mut p = Pair::with_configs(13, link(0.0), ConnConfig::default(), scfg);
    let reading_from: Rc<Cell<Option<Instant>>> = Rc::new(Cell::new(None));
    let r2 = reading_from.clone();
    p.net.set_hook(Box::new(move |info, _pkt| {
        // everything the server sends in the first 100 ms after it starts reading is lost
        let lost = info.from_host == 1
            && r2
                .get()
                .is_some_and(|t| info.time >= t && info.time < t + Duration::from_millis(100));
        verdict(lost)
    }));
    let c = p.connect();
    let payload = data(400_000, 8);
    let mut sent = 0;
    let mut got = Vec::new();
    let mut server = None;
    let mut buf = vec![0u8; 65536];
    let mut full_since: Option<Instant> = None;
    let done = p.run_until(Duration::from_secs(120), |p| {
        if p.client.connection(c).is_some_and(|x| x.is_established()) {
            while sent < payload.len() {
                match p.client.send(c, &payload[sent..]) {
                    Ok(n) => sent += n,
                    Err(StackError::WouldBlock) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
        if server.is_none() {
            server = p.server.accept(PORT);
        }
        let Some(s) = server else {
            return false;
        };
        let readable = p.server.connection(s).map_or(0, |x| x.readable());
        if reading_from.get().is_none() {
            // wait until the server's buffer is full and the client has stalled for 1 s
            if readable >= 60 * 1024 {
                let since = *full_since.get_or_insert(p.now());
                if p.now() >= since + Duration::from_secs(1) {
                    reading_from.set(Some(p.now()));
                }
            }
            return false;
        }
        while let Ok(n) = p.server.recv(s, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got.len() == payload.len()
    });
    assert!(reading_from.get().is_some(), "the window never closed");
    let mib = p.client.mib();
    assert!(
        done,
        "transfer stalled at {} of {} bytes: {mib:?}",
        got.len(),
        payload.len()
    );
    assert!(got == payload, "data corrupted");
    // the probe may come from the data level (DataWindowProbes) or from the subflow's own
    // persist timer when it still held data for the closed window; either way it must come
    eprintln!(
        "reading from {:?}, done at {:?}, data-level probes {}",
        reading_from.get(),
        p.now(),
        mib.DataWindowProbes
    );
}

/// Every packet fits the link MTU, whatever options it carries (timestamps, DSS with a
/// 64-bit DATA_ACK and mapping, checksums, SACK blocks under loss), at 1280, 1500 and 9000.
#[test]
fn no_packet_exceeds_the_link_mtu() {
    for (mtu, checksum) in [(1280u16, false), (1500, false), (1500, true), (9000, false)] {
        let cfg = ConnConfig {
            checksum,
            ..ConnConfig::default()
        };
        let mut p = Pair::with_configs(20 + u64::from(mtu), link(0.01), cfg.clone(), cfg);
        for a in [CLIENT1, CLIENT2] {
            p.client.set_mtu(a, mtu);
        }
        for a in [SERVER1, SERVER2] {
            p.server.set_mtu(a, mtu);
        }
        p.net.set_link_mtu(0, Some(usize::from(mtu)));
        let c = p.connect();
        let mut t = Transfer::new(c, data(1_500_000, 9), data(1_500_000, 10));
        assert!(
            t.run(&mut p, Duration::from_secs(120)),
            "mtu {mtu}: transfer did not finish"
        );
        t.assert_intact();
        let st = p.net.stats();
        assert_eq!(
            st.too_big, 0,
            "mtu {mtu} checksum {checksum}: oversized packets"
        );
        assert!(st.largest <= usize::from(mtu), "mtu {mtu}: {}", st.largest);
        // segments are full-sized: headers + options + payload reach the MTU
        assert!(
            st.largest + 8 >= usize::from(mtu),
            "mtu {mtu}: largest packet only {}",
            st.largest
        );
    }
}

/// A path narrower than the device (a 1280-byte link behind 1500-byte devices): the link
/// answers oversized packets with ICMP "fragmentation needed"; the stack lowers the
/// subflow's segment size (validated against the quoted segment) and the transfer completes.
#[test]
fn path_mtu_discovery_from_icmp_fragmentation_needed() {
    let mut p = Pair::new(31, link(0.0));
    p.net.set_link_mtu(0, Some(1280));
    let c = p.connect();
    let mut t = Transfer::new(c, data(1_000_000, 11), data(1_000_000, 12));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    let st = p.net.stats();
    assert!(st.too_big > 0, "the link never refused a packet");
    assert!(st.largest <= 1280);
    assert!(p.client.mib().PmtuUpdates >= 1, "{:?}", p.client.mib());
    assert!(p.server.mib().PmtuUpdates >= 1, "{:?}", p.server.mib());
    let sf = &p.client.connection(c).unwrap().subflows()[0];
    assert_eq!(sf.tcb.stats().snd_mss, 1280 - 40);
}

/// An ICMP error that does not quote a segment in flight (forged, or stale) changes nothing.
#[test]
fn forged_icmp_too_big_is_ignored() {
    let mut p = Pair::new(32, link(0.0));
    let c = p.connect();
    let mut t = Transfer::new(c, data(200_000, 13), Vec::new());
    p.run_until(Duration::from_secs(10), |p| {
        t.pump(p);
        p.client
            .connection(c)
            .is_some_and(|x| x.info().bytes_acked > 50_000)
    });
    let sf = &p.client.connection(c).unwrap().subflows()[0];
    let (local, remote) = (sf.local, sf.remote);
    // a segment we never sent (sequence number far from what is in flight)
    let mut fake = vec![0u8; 60];
    fake[0] = 0x45;
    fake[2..4].copy_from_slice(&60u16.to_be_bytes());
    fake[8] = 64;
    fake[9] = 6;
    if let (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) = (local.ip(), remote.ip()) {
        fake[12..16].copy_from_slice(&s.octets());
        fake[16..20].copy_from_slice(&d.octets());
    }
    let c16 = !ipv4_sum(&fake[..20]);
    fake[10..12].copy_from_slice(&c16.to_be_bytes());
    fake[20..22].copy_from_slice(&local.port().to_be_bytes());
    fake[22..24].copy_from_slice(&remote.port().to_be_bytes());
    fake[24..28].copy_from_slice(&0x1234_5678u32.to_be_bytes());
    fake[32] = 0x50;
    let mut icmp = vec![0u8; 1500];
    let n = mptun::wire::icmp::emit_too_big(&mut icmp, remote.ip(), &fake, 600).unwrap();
    let before = p.client.mib().IcmpIgnored;
    let now = p.now();
    p.client.handle_packet(now, &icmp[..n]);
    assert_eq!(p.client.mib().IcmpIgnored, before + 1);
    assert_eq!(p.client.mib().PmtuUpdates, 0);
    let sf = &p.client.connection(c).unwrap().subflows()[0];
    assert_eq!(sf.tcb.stats().snd_mss, 1460);
    // a corrupted ICMP message is ignored too
    icmp[25] ^= 0xff;
    p.client.handle_packet(now, &icmp[..n]);
    assert_eq!(p.client.mib().IcmpIgnored, before + 2);
}

fn ipv4_sum(h: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in h.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Receiver ACK policy: at least one ACK per two data segments (no stretch ACKs), and
/// under loss the pure ACKs carry SACK blocks beside the DSS option.
#[test]
fn receiver_acks_every_second_segment_and_sacks_beside_the_dss() {
    let mut p = Pair::new(41, link(0.02));
    let counts = Rc::new(Cell::new((0u64, 0u64, 0u64)));
    let c2 = counts.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        let (mut data_segs, mut acks, mut sacks) = c2.get();
        let len = tcp_payload_len(pkt);
        if info.from_host == 0 && len > 0 {
            data_segs += 1;
        } else if info.from_host == 1 && len == 0 {
            acks += 1;
            if has_sack(pkt) && !mptcp_options(pkt).is_empty() {
                sacks += 1;
            }
        }
        c2.set((data_segs, acks, sacks));
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(3_000_000, 14), Vec::new());
    assert!(
        t.run(&mut p, Duration::from_secs(120)),
        "transfer did not finish"
    );
    t.assert_intact();
    let (data_segs, acks, sacks) = counts.get();
    assert!(
        acks * 2 + 20 >= data_segs,
        "{acks} ACKs for {data_segs} data segments"
    );
    assert!(sacks > 0, "no ACK carried SACK blocks ({acks} ACKs)");
}

/// Linux does not count the windows of MP_CAPABLE segments without DATA_ACK (its listener's
/// SYN/ACK is sent before the connection-level socket exists; a client's third ACK is not
/// counted either) in the data-level window it enforces: it starts at the first DSN and
/// grows with DSS ACKs only, and out-of-order data beyond it is dropped (`NoDSSInWindow`).
/// Seen against Linux in both roles: the SYN/ACK or third ACK offered 62-63 KiB, the DSS
/// ACKs 56 KiB, and a joined subflow sent data between the two edges. Here the window of
/// that MP_CAPABLE segment is inflated on the wire; no data sent after the peer's first DSS
/// ACK may end beyond the largest DSS-announced edge.
fn mp_capable_window_is_provisional(inflate_server_syn_ack: bool) {
    let small = ConnConfig {
        recv_buffer: 24 * 1024,
        ..ConnConfig::default()
    };
    let (ccfg, scfg) = if inflate_server_syn_ack {
        (ConnConfig::default(), small)
    } else {
        (small, ConnConfig::default())
    };
    let mut p = Pair::two_paths(21, link(0.0), link(0.0), ccfg, scfg);
    // the host whose MP_CAPABLE window is inflated, and the one that sends data to it
    let (receiver, sender) = if inflate_server_syn_ack {
        (1, 0)
    } else {
        (0, 1)
    };
    // (receiver's window scale, DSS edges it announced with their send times, violations).
    // The sender knows an edge one link delay (10 ms +- 1 ms) after it was sent; data sent
    // before the first DSS surely arrived rides on the provisional window, in order.
    type Edges = Vec<(Instant, u64)>;
    let st = Rc::new(std::cell::RefCell::new((
        0u8,
        Edges::new(),
        Vec::<(u64, u64)>::new(),
    )));
    let s2 = st.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        let ihl = usize::from(pkt[0] & 0x0f) * 4;
        let flags = tcp_flags(pkt).unwrap_or(0);
        let is_mpc = mptcp_options(pkt)
            .iter()
            .any(|o| o.len() > 2 && o[2] >> 4 == 0);
        let mut st = s2.borrow_mut();
        if info.from_host == receiver {
            if flags & SYN != 0 {
                let doff = usize::from(pkt[ihl + 12] >> 4) * 4;
                let mut i = ihl + 20;
                while i + 2 < ihl + doff {
                    match pkt[i] {
                        0 => break,
                        1 => i += 1,
                        k => {
                            if k == 3 {
                                st.0 = pkt[i + 2];
                            }
                            i += usize::from(pkt[i + 1].max(2));
                        }
                    }
                }
            }
            let handshake = if inflate_server_syn_ack {
                flags & SYN != 0 && is_mpc
            } else {
                flags & SYN == 0 && is_mpc && st.1.is_empty()
            };
            if handshake {
                // an (unscaled) SYN/ACK window, or a scaled third-ACK window, well above
                // the receive buffer
                let w: u16 = if flags & SYN != 0 {
                    60_000
                } else {
                    60_000 >> st.0
                };
                pkt[ihl + 14..ihl + 16].copy_from_slice(&w.to_be_bytes());
                fix_tcp_checksum(pkt);
            } else if let Some((Some(ack), win, _, _)) = dss_fields(pkt) {
                let edge = ack + (u64::from(win) << st.0);
                st.1.push((info.time, edge));
            }
        } else if info.from_host == sender {
            let first = st.1.first().map(|e| e.0);
            let known =
                st.1.iter()
                    .filter(|(t, _)| *t + Duration::from_millis(9) <= info.time)
                    .map(|e| e.1)
                    .max();
            let surely_received = first.is_some_and(|t| t + Duration::from_millis(11) <= info.time);
            if let (true, Some(edge), Some((_, _, Some(dsn), len))) =
                (surely_received, known, dss_fields(pkt))
            {
                let end = dsn + u64::from(len);
                if len > 0 && end > edge {
                    st.2.push((end, edge));
                }
            }
        }
        Verdict::Pass
    }));
    let (c, _) = p.connect_and_join();
    let (up, down) = if inflate_server_syn_ack {
        (1_000_000, 10_000)
    } else {
        (10_000, 1_000_000)
    };
    let mut t = Transfer::new(c, data(up, 21), data(down, 22));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    let st = st.borrow();
    assert!(!st.1.is_empty(), "no DSS window seen");
    assert!(
        st.2.is_empty(),
        "data beyond the DSS-announced window: {:?}",
        &st.2[..st.2.len().min(5)]
    );
}

#[test]
fn the_syn_ack_window_is_replaced_by_the_first_dss_window() {
    mp_capable_window_is_provisional(true);
}

#[test]
fn the_third_ack_window_is_replaced_by_the_first_dss_window() {
    mp_capable_window_is_provisional(false);
}

/// Under a provisional window (the peer's MP_CAPABLE third ACK, no DATA_ACK yet) a join that
/// completes first gets no data: Linux enforces only the edges it announced in DSS options
/// and drops data past them that arrives out of order, as data on a second subflow does
/// (seen against Linux under CPU load: its DSS ACKs late, the join early). Here the
/// client's DSS-carrying packets are held back for 300 ms while it joins a second path and
/// the server starts sending: no server data may use the second path before the first DSS
/// gets through, and the transfer completes intact once it does.
#[test]
fn joins_carry_no_data_under_a_provisional_window() {
    let mut p = Pair::two_paths(
        31,
        link(0.0),
        link(0.0),
        ConnConfig::default(),
        ConnConfig::default(),
    );
    // (time the first client DSS passed, server data packets on path 2 before it)
    let st = Rc::new(Cell::new((None::<Instant>, 0u64, 0u64)));
    let s2 = st.clone();
    let start = p.now();
    p.net.set_hook(Box::new(move |info, pkt| {
        let (mut first_dss, mut early, mut on_path2) = s2.get();
        let mut verdict = Verdict::Pass;
        if info.from_host == 0 {
            if carries_data_ack(pkt) {
                if info.time < start + Duration::from_millis(300) {
                    verdict = Verdict::Drop;
                } else if first_dss.is_none() {
                    first_dss = Some(info.time);
                }
            }
        } else if info.link == 1 && tcp_payload_len(pkt) > 0 {
            on_path2 += 1;
            // a DSS the client sent reaches the server 10 ms later (+- 1 ms jitter)
            if first_dss.is_none_or(|t| info.time < t + Duration::from_millis(9)) {
                early += 1;
            }
        }
        s2.set((first_dss, early, on_path2));
        verdict
    }));
    let (c, _) = p.connect_and_join();
    let mut t = Transfer::new(c, Vec::new(), data(2_000_000, 31));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    let (first_dss, early, on_path2) = st.get();
    assert!(first_dss.is_some(), "no client DSS got through");
    assert!(
        on_path2 > 0,
        "the second path carried no server data at all"
    );
    assert_eq!(
        early, 0,
        "server data on the joined path before the client's first DSS"
    );
}

/// With two subflows carrying data, the sender uses at most half the peer's data-level
/// window beyond the DATA_ACK (`MULTIPATH_WINDOW_SHARE`): data overtaking a hole on the
/// slow path stays well inside the receiver's buffer. Against Linux, filling the whole
/// window with out-of-order data let its connection-level receive memory (charged at true
/// size) exceed its buffer, after which it moved nothing more from its subflows, not even
/// the bytes filling the hole: the connection stalled for good
/// (`interop_proxy::socks_concurrent_connections_both_ways`, 1 run in 10 under load).
/// Paths of 5 and 40 ms and a 64 KiB receive buffer make the window the limit here.
#[test]
fn two_subflows_use_half_the_data_level_window() {
    let small = ConnConfig {
        recv_buffer: 64 * 1024,
        ..ConnConfig::default()
    };
    let fast = Impairment {
        delay: Duration::from_millis(5),
        ..link(0.0)
    };
    let slow = Impairment {
        delay: Duration::from_millis(40),
        ..link(0.0)
    };
    let mut p = Pair::two_paths(41, fast, slow, ConnConfig::default(), small);
    // (receiver window scale, max DATA_ACK and max edge the receiver sent, data seen on
    // the second path, violations, largest span used)
    type St = (u8, u64, u64, bool, Vec<(u64, u64)>, u64);
    let st = Rc::new(std::cell::RefCell::new(
        (0u8, 0u64, 0u64, false, Vec::new(), 0u64) as St,
    ));
    let s2 = st.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        let ihl = usize::from(pkt[0] & 0x0f) * 4;
        let flags = tcp_flags(pkt).unwrap_or(0);
        let mut st = s2.borrow_mut();
        if info.from_host == 1 {
            if flags & SYN != 0 {
                let doff = usize::from(pkt[ihl + 12] >> 4) * 4;
                let mut i = ihl + 20;
                while i + 2 < ihl + doff {
                    match pkt[i] {
                        0 => break,
                        1 => i += 1,
                        k => {
                            if k == 3 {
                                st.0 = pkt[i + 2];
                            }
                            i += usize::from(pkt[i + 1].max(2));
                        }
                    }
                }
            } else if let Some((Some(ack), win, _, _)) = dss_fields(pkt) {
                st.1 = st.1.max(ack);
                st.2 = st.2.max(ack + (u64::from(win) << st.0));
            }
        } else if let Some((_, _, Some(dsn), len)) = dss_fields(pkt) {
            if len > 0 && st.1 > 0 {
                if info.link == 1 {
                    st.3 = true;
                }
                let end = dsn + u64::from(len);
                let bound = st.1 + (st.2 - st.1) / 2;
                st.5 = st.5.max(end.saturating_sub(st.1));
                if st.3 && end > bound {
                    let v = (end - st.1, st.2 - st.1);
                    st.4.push(v);
                }
            }
        }
        Verdict::Pass
    }));
    let (c, _) = p.connect_and_join();
    let mut t = Transfer::new(c, data(3_000_000, 41), Vec::new());
    assert!(
        t.run(&mut p, Duration::from_secs(120)),
        "transfer did not finish"
    );
    t.assert_intact();
    let st = st.borrow();
    assert!(st.3, "the second path carried no data");
    assert!(
        st.4.is_empty(),
        "{} data segments beyond half the window (span, window): {:?}",
        st.4.len(),
        &st.4[..st.4.len().min(5)]
    );
    // the share is used, not far less (the window is the limit on these paths)
    assert!(
        st.5 > 16 * 1024,
        "largest span beyond the DATA_ACK only {}",
        st.5
    );
}

/// A lone segment (the tail of a burst, or the last one before the sender moves to another
/// subflow) is acknowledged as soon as the application has read it, not after the 40 ms
/// delayed-ACK timer: Linux's rule. Against Linux over two paths, holding such ACKs made
/// the sender's tail-loss probes fire and the data level stall behind the quiet subflow
/// (two paths ran at 0.6 of one path; with the rule, 0.9-1.0).
#[test]
fn a_lone_segment_is_acked_once_the_application_has_read_it() {
    let quiet = Impairment {
        delay: Duration::from_millis(10),
        rate_bps: 100_000_000,
        queue_limit: 1 << 20,
        ..Impairment::default()
    };
    let mut p = Pair::new(43, quiet);
    let c = p.connect();
    let mut server = None;
    let mut got = Vec::new();
    // the application reads everything as soon as it arrives
    let mut read_all = |p: &mut Pair, got: &mut Vec<u8>| {
        if server.is_none() {
            server = p.server.accept(PORT);
        }
        let mut buf = [0u8; 16384];
        if let Some(s) = server {
            while let Ok(n) = p.server.recv(s, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
    };
    // past the quick-ACK start (16 segments) so that the delayed-ACK rule is in force
    let first = data(200_000, 15);
    let mut sent = 0;
    assert!(
        p.run_until(Duration::from_secs(10), |p| {
            if p.client.connection(c).is_some_and(|x| x.is_established()) {
                while sent < first.len() {
                    match p.client.send(c, &first[sent..]) {
                        Ok(n) => sent += n,
                        Err(_) => break,
                    }
                }
            }
            read_all(p, &mut got);
            got.len() == first.len() && p.client.connection(c).is_some_and(|x| x.all_acked())
        }),
        "the first 200 kB were not delivered and acknowledged"
    );
    assert_eq!(got, first);
    got.clear();
    // one small write: a single segment
    let start = p.now();
    let tail = data(500, 16);
    assert_eq!(p.client.send(c, &tail), Ok(500));
    let acked = p.run_until(Duration::from_secs(1), |p| {
        read_all(p, &mut got);
        p.client.connection(c).is_some_and(|x| x.all_acked())
    });
    assert!(acked, "the lone segment was never acknowledged");
    assert_eq!(got, tail);
    let took = p.now().saturating_duration_since(start);
    // one round trip is 20 ms; the delayed-ACK timer would add 40 ms
    assert!(
        took < Duration::from_millis(35),
        "the lone segment was acknowledged after {took:?} (delayed-ACK timer, not the read)"
    );
}

/// With two subflows each subflow sees only its own bytes, so after a partial read every
/// subflow can believe the peer still has room while the data-level window is shut. The
/// reopened window must be announced at once (at the data level), not left to the sender's
/// zero-window probe.
#[test]
fn a_partial_read_reopens_a_window_filled_over_two_subflows() {
    const BUF: usize = 64 * 1024;
    let small = ConnConfig {
        recv_buffer: BUF,
        ..ConnConfig::default()
    };
    let rr = ConnConfig {
        scheduler: "roundrobin".into(),
        ..ConnConfig::default()
    };
    let path = Impairment {
        delay: Duration::from_millis(10),
        ..link(0.0)
    };
    let mut p = Pair::two_paths(47, path.clone(), path, rr, small);
    let (c, _) = p.connect_and_join();
    // the client writes more than the window; the server application does not read
    let payload = data(1 << 20, 17);
    let mut sent = 0;
    let mut server = None;
    p.run_until(Duration::from_secs(3), |p| {
        while sent < payload.len() {
            match p.client.send(c, &payload[sent..]) {
                Ok(n) if n > 0 => sent += n,
                _ => break,
            }
        }
        if server.is_none() {
            server = p.server.accept(PORT);
        }
        false
    });
    let s = server.expect("accepted");
    let conn = p.server.connection(s).expect("server connection");
    // full to within the window scale's granularity
    let held = conn.readable();
    assert!(
        held > BUF - 2048,
        "the window did not fill ({held} bytes held)"
    );
    for sf in conn.subflows() {
        assert!(
            sf.tcb.rcv_nxt_offset() > 4096,
            "subflow {} carried too little for this test",
            sf.id
        );
    }
    // read an eighth of the buffer: the client must hear of it within a round trip
    let mut buf = vec![0u8; BUF / 8];
    let start = p.now();
    assert_eq!(p.server.recv(s, &mut buf), Ok(BUF / 8));
    assert_eq!(&buf[..], &payload[..BUF / 8]);
    let refilled = p.run_until(Duration::from_secs(2), |p| {
        p.server
            .connection(s)
            .is_some_and(|x| x.readable() > held - BUF / 8)
    });
    assert!(refilled, "no new data after the read");
    let took = p.now().saturating_duration_since(start);
    // one round trip is 20 ms (+ up to 1 ms jitter each way); without the data-level
    // update the first new data came 29 ms after the read in this scenario
    assert!(
        took < Duration::from_millis(25),
        "new data came {took:?} after the read (zero-window probe, not a window update)"
    );
}

/// Linux's DATA_ACK size rule: 4 bytes until the peer's latest mapping had a 64-bit DSN,
/// then 8 (a 4-byte DATA_ACK carries the low 32 bits, which the peer expands). mptun sends
/// 64-bit DSNs, so each side's DATA_ACKs are 4 bytes at first, then 8 for good. The transfer
/// is intact, so both sizes are read right.
#[test]
fn data_ack_is_four_bytes_until_a_64_bit_mapping_arrives() {
    let mut p = Pair::new(37, link(0.0));
    // per side: 4-byte DATA_ACKs, 8-byte ones, 4-byte ones after an 8-byte one
    let counts = Rc::new(RefCell::new([[0u64; 3]; 2]));
    let c2 = counts.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        let mut c = c2.borrow_mut();
        let k = &mut c[info.from_host];
        for o in mptcp_options(pkt) {
            if o.len() >= 4 && o[2] >> 4 == 2 && o[3] & 0x01 != 0 {
                if o[3] & 0x02 != 0 {
                    k[1] += 1;
                } else {
                    k[0] += 1;
                    if k[1] > 0 {
                        k[2] += 1;
                    }
                }
            }
        }
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(1_000_000, 37), data(300_000, 38));
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    let n = *counts.borrow();
    for (side, k) in ["client", "server"].iter().zip(n) {
        assert!(
            k[0] > 0,
            "{side}: no 4-byte DATA_ACK before a mapping arrived: {k:?}"
        );
        assert!(k[1] > 100, "{side}: too few 8-byte DATA_ACKs: {k:?}");
        assert_eq!(
            k[2], 0,
            "{side}: 4-byte DATA_ACKs after a 64-bit mapping: {k:?}"
        );
    }
}

/// Slow start behind a deep queue (5 Mbit/s, 25 ms each way, 200 kB drop-tail queue, the
/// narrow path of simult_flows' 15+5 cases): classic slow start doubles until the queue
/// overflows and loses about a queue's worth of segments at once (seen against Linux: a
/// 400 kB window, 300 retransmissions and a timeout on this path). HyStart++ (RFC 9406)
/// ends slow start when the RTT rises: the window stops near the path's capacity plus a
/// part of the queue, with few or no losses.
#[test]
fn slow_start_ends_before_a_deep_queue_overflows() {
    let imp = Impairment {
        delay: Duration::from_millis(25),
        rate_bps: 5_000_000,
        queue_limit: 200 * 1000,
        ..Impairment::default()
    };
    let mut p = Pair::new(31, imp);
    let c = p.connect();
    let mut t = Transfer::new(c, data(3 << 20, 7), Vec::new());
    let mut max_cwnd = 0u32;
    let mut ss_exit_cwnd = None;
    let done = p.run_until(Duration::from_secs(60), |p| {
        t.pump(p);
        if let Some(sf) = p.client.connection(c).and_then(|x| x.subflows().first()) {
            let st = sf.tcb.stats();
            max_cwnd = max_cwnd.max(st.cwnd);
            if ss_exit_cwnd.is_none() && st.ssthresh < u32::MAX {
                ss_exit_cwnd = Some((st.cwnd, st.retransmits));
            }
        }
        t.done(p)
    });
    assert!(done, "transfer did not finish");
    t.assert_intact();
    let st = p.client.connection(c).unwrap().subflows()[0].tcb.stats();
    let (exit_cwnd, exit_retrans) = ss_exit_cwnd.expect("slow start never ended");
    eprintln!(
        "slow start ended at cwnd {exit_cwnd} ({exit_retrans} retransmissions then); \
         max cwnd {max_cwnd}, retransmissions {}",
        st.retransmits
    );
    // bandwidth-delay product 31 kB, plus the 200 kB queue: an overflow needs > 231 kB
    assert_eq!(exit_retrans, 0, "slow start ended by a loss");
    assert!(
        exit_cwnd < 231_000,
        "slow start went on past path + queue: {exit_cwnd}"
    );
    assert!(
        st.retransmits < 10,
        "{} retransmissions over a path that needs none",
        st.retransmits
    );
}
