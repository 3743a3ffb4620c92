//! Segmentation offload (TSO out, coalesced segments in) on the simulated network: the
//! stack emits super-segments whose one DSS mapping covers the whole payload; the "device"
//! (`OffloadEndpoint`) splits them as the kernel's GSO does, or hands them on whole as the
//! kernel's GRO delivers coalesced segments. Data must arrive intact both ways, under loss,
//! over two paths, and no split segment may exceed the link MTU.

mod simutil;

use mptun::io::impair::Impairment;
use mptun::io::sim::{OffloadMode, OffloadState, Verdict};
use mptun::mptcp::ConnConfig;
use mptun::stack::StackError;
use mptun::time::Duration;
use simutil::*;
use std::cell::Cell;
use std::rc::Rc;

const TSO: u32 = 65_000;

fn link(loss: f64) -> Impairment {
    Impairment {
        delay: Duration::from_millis(5),
        jitter: Duration::from_micros(200),
        loss,
        rate_bps: 200_000_000,
        queue_limit: 2 << 20,
        ..Impairment::default()
    }
}

/// Both sides send super-segments, split by the device: the wire carries only segments that
/// fit the 1500-byte links, and the data arrives intact over two lossy paths.
#[test]
fn split_super_segments_fit_the_mtu_and_deliver_intact() {
    for (seed, loss) in [(71u64, 0.0), (72, 0.01)] {
        let mut p = Pair::two_paths(
            seed,
            link(loss),
            link(loss),
            ConnConfig::default(),
            ConnConfig::default(),
        );
        for a in [CLIENT1, CLIENT2] {
            p.client.set_mtu(a, 1500);
        }
        for a in [SERVER1, SERVER2] {
            p.server.set_mtu(a, 1500);
        }
        p.net.set_link_mtu(0, Some(1500));
        p.net.set_link_mtu(1, Some(1500));
        p.client_offload = Some(OffloadState::new(OffloadMode::Split, TSO));
        p.server_offload = Some(OffloadState::new(OffloadMode::Split, TSO));
        let (c, _) = p.connect_and_join();
        let mut t = Transfer::new(c, data(6_000_000, seed), data(6_000_000, seed + 1));
        assert!(
            t.run(&mut p, Duration::from_secs(120)),
            "loss {loss}: transfer did not finish"
        );
        t.assert_intact();
        let st = p.net.stats();
        assert_eq!(st.too_big, 0, "loss {loss}: oversized packets on the wire");
        // full-sized segments: the split keeps whole segments
        assert!(st.largest + 8 >= 1500, "largest packet only {}", st.largest);
        for (who, o) in [("client", &p.client_offload), ("server", &p.server_offload)] {
            let o = o.as_ref().unwrap();
            assert_eq!(o.errors, 0, "{who}: unfinishable packets");
            assert!(
                o.super_segments > 10,
                "{who}: {} super-segments",
                o.super_segments
            );
            assert!(
                o.split_segments >= 2 * o.super_segments,
                "{who}: {} super-segments gave {} segments",
                o.super_segments,
                o.split_segments
            );
        }
    }
}

/// Super-segments delivered whole (as GRO coalesces segments): the receiver takes one
/// packet carrying many segments' payload behind one DSS, acknowledges it at once, and the
/// data arrives intact, under loss too.
#[test]
fn coalesced_segments_are_received_whole() {
    for (seed, loss) in [(81u64, 0.0), (82, 0.02)] {
        let mut p = Pair::new(seed, link(loss));
        p.client_offload = Some(OffloadState::new(OffloadMode::Whole, TSO));
        let big = Rc::new(Cell::new((0u64, 0u64)));
        let b2 = big.clone();
        p.net.set_hook(Box::new(move |info, pkt| {
            let (mut supers, mut acks) = b2.get();
            if info.from_host == 0 && tcp_payload_len(pkt) > 1500 {
                supers += 1;
            } else if info.from_host == 1 && tcp_payload_len(pkt) == 0 {
                acks += 1;
            }
            b2.set((supers, acks));
            Verdict::Pass
        }));
        let c = p.connect();
        let mut t = Transfer::new(c, data(4_000_000, seed), data(500_000, seed + 1));
        assert!(
            t.run(&mut p, Duration::from_secs(120)),
            "loss {loss}: transfer did not finish"
        );
        t.assert_intact();
        let (supers, acks) = big.get();
        assert!(supers > 10, "only {supers} coalesced packets on the wire");
        // every coalesced packet carries at least two full segments: each is acknowledged
        assert!(acks >= supers, "{acks} ACKs for {supers} coalesced packets");
        assert_eq!(p.client_offload.as_ref().unwrap().errors, 0);
    }
}

/// A super-segment is never bigger than the congestion window admits: during slow start
/// from the initial window of 10 segments, the first flight carries at most 10 segments'
/// payload whatever the TSO budget.
#[test]
fn super_segments_respect_the_congestion_window() {
    let mut p = Pair::new(91, link(0.0));
    p.client_offload = Some(OffloadState::new(OffloadMode::Whole, TSO));
    let first_flight = Rc::new(Cell::new((0usize, false)));
    let f2 = first_flight.clone();
    p.net.set_hook(Box::new(move |info, pkt| {
        let (mut bytes, mut acked) = f2.get();
        let len = tcp_payload_len(pkt);
        if info.from_host == 1 && len == 0 && bytes > 0 {
            acked = true; // the server answered data: the first flight is over
        }
        if info.from_host == 0 && len > 0 && !acked {
            bytes += len;
        }
        f2.set((bytes, acked));
        Verdict::Pass
    }));
    let c = p.connect();
    let mut t = Transfer::new(c, data(2_000_000, 5), Vec::new());
    assert!(
        t.run(&mut p, Duration::from_secs(60)),
        "transfer did not finish"
    );
    t.assert_intact();
    let (bytes, _) = first_flight.get();
    assert!(bytes > 0, "no data seen");
    assert!(
        bytes <= 10 * 1460,
        "first flight carried {bytes} bytes, more than the initial window"
    );
}

/// A pair with DSS checksums on both sides, whose client sends TSO super-segments that the
/// device splits: each 1500-byte segment on the wire carries a copy of one DSS mapping that
/// spans many segments, as Linux sends with TSO.
fn checksummed_split_pair(seed: u64, two_paths: bool, loss: f64) -> Pair {
    let cfg = ConnConfig {
        checksum: true,
        ..ConnConfig::default()
    };
    let mut p = if two_paths {
        Pair::two_paths(seed, link(loss), link(loss), cfg.clone(), cfg)
    } else {
        Pair::with_configs(seed, link(loss), cfg.clone(), cfg)
    };
    for a in [CLIENT1, CLIENT2] {
        p.client.set_mtu(a, 1500);
    }
    for a in [SERVER1, SERVER2] {
        p.server.set_mtu(a, 1500);
    }
    p.client_offload = Some(OffloadState::new(OffloadMode::Split, TSO));
    p
}

/// (data-level length, TCP payload length) of a packet whose DSS carries a mapping.
fn mapping_len(pkt: &[u8]) -> Option<(usize, usize)> {
    let (_, _, dsn, len) = dss_fields(pkt)?;
    dsn.map(|_| (usize::from(len), tcp_payload_len(pkt)))
}

/// With checksums on, mappings that span many segments are verified once complete and
/// their data delivered: nothing is wrongly refused, under loss and reordering over two
/// paths, and the wire did carry such mappings.
#[test]
fn checksummed_mappings_spanning_segments_deliver_intact() {
    for (seed, loss) in [(101u64, 0.0), (102, 0.01)] {
        let mut p = checksummed_split_pair(seed, true, loss);
        let spanning = Rc::new(Cell::new(0u64));
        let s2 = spanning.clone();
        p.net.set_hook(Box::new(move |info, pkt| {
            if info.from_host == 0 {
                if let Some((map, payload)) = mapping_len(pkt) {
                    if payload > 0 && map > payload {
                        s2.set(s2.get() + 1);
                    }
                }
            }
            Verdict::Pass
        }));
        let (c, _) = p.connect_and_join();
        let mut t = Transfer::new(c, data(4_000_000, seed), data(1_000_000, seed + 1));
        assert!(
            t.run(&mut p, Duration::from_secs(120)),
            "loss {loss}: transfer did not finish"
        );
        t.assert_intact();
        assert!(
            spanning.get() > 100,
            "loss {loss}: only {} segments carried a mapping longer than themselves",
            spanning.get()
        );
        let (cm, sm) = (p.client.mib(), p.server.mib());
        assert_eq!(cm.DataCsumErr + sm.DataCsumErr, 0, "loss {loss}");
        assert_eq!(sm.MPFailTx + cm.MPFailTx, 0, "loss {loss}");
    }
}

/// Change one byte in the middle of a mapping that spans segments (TCP checksum repaired, as
/// a rewriting middlebox would). The segment is acknowledged at the TCP level; the DSS
/// checksum over the whole mapping fails once it is complete.
fn corrupt_one_spanning_segment(p: &mut Pair) -> Rc<Cell<bool>> {
    let done = Rc::new(Cell::new(false));
    let (d, n) = (done.clone(), Rc::new(Cell::new(0u32)));
    p.net.set_hook(Box::new(move |info, pkt| {
        if d.get() || info.from_host != 0 || info.link != 0 {
            return Verdict::Pass;
        }
        let Some((map, payload)) = mapping_len(pkt) else {
            return Verdict::Pass;
        };
        if payload < 1000 || map <= payload {
            return Verdict::Pass;
        }
        n.set(n.get() + 1);
        if n.get() == 40 {
            let len = pkt.len();
            pkt[len - 100] ^= 0x5a;
            fix_tcp_checksum(pkt);
            d.set(true);
        }
        Verdict::Pass
    }));
    done
}

/// Two subflows: the subflow that carried the changed byte is reset with MP_FAIL, the
/// changed bytes are never delivered (they were held back from the application and the
/// DATA_ACK), and the sender re-sends them over the other subflow: the stream is intact.
#[test]
fn a_changed_byte_in_a_spanning_mapping_resets_that_subflow_and_the_data_comes_again() {
    let mut p = checksummed_split_pair(103, true, 0.0);
    let (c, _) = p.connect_and_join();
    let done = corrupt_one_spanning_segment(&mut p);
    let mut t = Transfer::new(c, data(6_000_000, 103), data(100_000, 104));
    let ok = t.run(&mut p, Duration::from_secs(120));
    assert!(done.get(), "the hook never changed a segment");
    assert!(ok, "transfer did not finish");
    t.assert_intact();
    let sm = p.server.mib();
    assert_eq!(sm.DataCsumErr, 1, "the receiver caught the change");
    assert_eq!(sm.MPFailTx, 1);
    assert_eq!(sm.FallbackFailed, 0);
    assert!(p.client.mib().MPFailRx >= 1, "the sender got MP_FAIL");
    let s = p.server.connection(t.server.expect("accepted")).unwrap();
    assert!(s.error().is_none(), "{:?}", s.error());
    assert!(!s.is_fallback(), "still MPTCP");
}

/// The only subflow: the changed bytes were acknowledged at the TCP level, so they cannot
/// come again as plain TCP; the connection ends with an error rather than deliver them, and
/// every byte the application did receive is the sender's.
#[test]
fn a_changed_byte_in_a_spanning_mapping_on_the_only_subflow_is_never_delivered() {
    let mut p = checksummed_split_pair(105, false, 0.0);
    let c = p.connect();
    let done = corrupt_one_spanning_segment(&mut p);
    let sent = data(6_000_000, 105);
    let (mut off, mut got, mut server) = (0usize, Vec::new(), None);
    let (mut c_err, mut s_err) = (None, None);
    let mut buf = vec![0u8; 65536];
    p.run_until(Duration::from_secs(30), |p| {
        if server.is_none() {
            server = p.server.accept(PORT);
        }
        if p.client.connection(c).is_some_and(|x| x.is_established()) && off < sent.len() {
            match p.client.send(c, &sent[off..]) {
                Ok(n) => off += n,
                Err(StackError::WouldBlock) => {}
                Err(e) => c_err = Some(e),
            }
        }
        if let Some(s) = server {
            loop {
                match p.server.recv(s, &mut buf) {
                    Ok(0) | Err(StackError::WouldBlock) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => {
                        s_err = Some(e);
                        break;
                    }
                }
            }
        }
        s_err.is_some()
    });
    assert!(done.get(), "the hook never changed a segment");
    assert!(
        s_err.is_some(),
        "the server's application is told (got {} bytes)",
        got.len()
    );
    assert!(got.len() < sent.len(), "the server received everything");
    assert!(
        got[..] == sent[..got.len()],
        "the server delivered bytes the client did not send"
    );
    let sm = p.server.mib();
    assert_eq!(sm.DataCsumErr, 1);
    assert_eq!(sm.FallbackFailed, 1);
    // the client's path manager retries its joins first (the server refuses them: it has
    // no connection for them any more)
    p.run_until(Duration::from_secs(60), |p| {
        p.client.connection(c).is_none_or(|x| x.error().is_some())
    });
    assert!(
        p.client.mib().MPFailRx >= 1,
        "the client got MP_FAIL on the RST"
    );
    let cl = p.client.connection(c).map(|x| x.error());
    assert!(
        c_err.is_some() || matches!(cl, Some(Some(_)) | None),
        "the client's application is told: {c_err:?} {cl:?}"
    );
}

/// (relative TCP sequence number source, (DSN, subflow sequence number, data-level length)) of
/// the DSS mapping of an IPv4 TCP packet.
fn dss_mapping(pkt: &[u8]) -> Option<(u64, u32, u16)> {
    for o in mptcp_options(pkt) {
        if o.len() < 4 || o[2] >> 4 != 2 || o[3] & 0x04 == 0 {
            continue;
        }
        let f = o[3];
        let mut i = 4 + match f & 0x03 {
            0x03 => 8,
            0x01 => 4,
            _ => 0,
        };
        let dlen = if f & 0x08 != 0 { 8 } else { 4 };
        let be = |b: &[u8]| b.iter().fold(0u64, |a, x| (a << 8) | u64::from(*x));
        let dsn = be(o.get(i..i + dlen)?);
        i += dlen;
        let ssn = be(o.get(i..i + 4)?) as u32;
        let len = be(o.get(i + 4..i + 6)?) as u16;
        return Some((dsn, ssn, len));
    }
    None
}

/// Segments of a TSO super-segment lost on the wire are sent again under the super-segment's
/// mapping (the one first declared for those bytes), never under a new mapping of their own:
/// Linux's receiver, in the middle of consuming a mapping, refuses a different one for bytes
/// it covers (`DSSNotMatching`) and falls back to TCP, and with DSS checksums the new mapping
/// would need a checksum over bytes that may have left the send buffer. Found against Linux
/// behind a rate limit that tail-dropped mptun's segments (`pm_mptun_signal_address_with_
/// port_is_joined_by_linux`): Linux fell back, and the stream it delivered was truncated.
#[test]
fn lost_segments_of_a_super_segment_go_again_under_its_mapping() {
    use std::collections::HashMap;
    type Flow = ([u8; 4], u16, [u8; 4], u16);
    /// per subflow: its ISN and every mapping declared on it (ssn, len, dsn)
    type Declared = HashMap<Flow, (u32, Vec<(u32, u16, u64)>)>;
    for (seed, checksum, two_paths) in [
        (131u64, false, false),
        (132, true, false),
        (133, false, true),
    ] {
        let cfg = ConnConfig {
            checksum,
            ..ConnConfig::default()
        };
        let mut p = if two_paths {
            Pair::two_paths(seed, link(0.02), link(0.02), cfg.clone(), cfg)
        } else {
            Pair::with_configs(seed, link(0.02), cfg.clone(), cfg)
        };
        for a in [CLIENT1, CLIENT2] {
            p.client.set_mtu(a, 1500);
        }
        for a in [SERVER1, SERVER2] {
            p.server.set_mtu(a, 1500);
        }
        p.client_offload = Some(OffloadState::new(OffloadMode::Split, TSO));
        let declared: Rc<std::cell::RefCell<Declared>> = Rc::default();
        let (changed, spanning_resent) = (Rc::new(Cell::new(0u32)), Rc::new(Cell::new(0u32)));
        let (d, ch, sr) = (declared.clone(), changed.clone(), spanning_resent.clone());
        p.net.set_hook(Box::new(move |info, pkt| {
            if info.from_host != 0 || pkt.len() < 40 || pkt[9] != 6 {
                return Verdict::Pass;
            }
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let b4 = |i: usize| [pkt[i], pkt[i + 1], pkt[i + 2], pkt[i + 3]];
            let port = |i: usize| u16::from_be_bytes([pkt[i], pkt[i + 1]]);
            let flow = (b4(12), port(ihl), b4(16), port(ihl + 2));
            let seq = u32::from_be_bytes(b4(ihl + 4));
            let mut d = d.borrow_mut();
            if tcp_flags(pkt).is_some_and(|f| f & 0x02 != 0) {
                d.insert(flow, (seq, Vec::new()));
                return Verdict::Pass;
            }
            let plen = tcp_payload_len(pkt) as u32;
            let (Some(m), Some((isn, maps))) = (dss_mapping(pkt), d.get_mut(&flow)) else {
                return Verdict::Pass;
            };
            if plen == 0 || m.2 == 0 {
                return Verdict::Pass;
            }
            let rel = seq.wrapping_sub(*isn);
            let covering = maps.iter().find(|&&(s, l, _)| {
                s <= rel && u64::from(rel) + u64::from(plen) <= u64::from(s) + u64::from(l)
            });
            match covering {
                Some(&(s, l, dsn)) if (s, l, dsn) != (m.1, m.2, m.0) => ch.set(ch.get() + 1),
                Some(&(s, l, _)) if u32::from(l) > plen && rel != s => sr.set(sr.get() + 1),
                Some(_) => {}
                None => maps.push((m.1, m.2, m.0)),
            }
            Verdict::Pass
        }));
        let c = if two_paths {
            p.connect_and_join().0
        } else {
            p.connect()
        };
        let mut t = Transfer::new(c, data(3_000_000, seed), data(200_000, seed + 1));
        assert!(
            t.run(&mut p, Duration::from_secs(120)),
            "seed {seed}: transfer did not finish"
        );
        t.assert_intact();
        assert_eq!(
            changed.get(),
            0,
            "seed {seed} (checksum {checksum}): bytes sent again under a mapping other than the one first declared for them"
        );
        // the case was exercised: lost segments from inside super-segments went again
        assert!(
            spanning_resent.get() > 5,
            "seed {seed}: only {} retransmissions from inside a super-segment",
            spanning_resent.get()
        );
        let (cm, sm) = (p.client.mib(), p.server.mib());
        assert_eq!(cm.DataCsumErr + sm.DataCsumErr, 0, "seed {seed}");
        assert!(
            !p.client.connection(c).is_some_and(|k| k.is_fallback()),
            "seed {seed}: fell back to TCP"
        );
    }
}
