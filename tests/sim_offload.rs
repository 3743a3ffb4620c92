//! Segmentation offload (TSO out, coalesced segments in) on the simulated network: the
//! stack emits super-segments whose one DSS mapping covers the whole payload; the "device"
//! (`OffloadEndpoint`) splits them as the kernel's GSO does, or hands them on whole as the
//! kernel's GRO delivers coalesced segments. Data must arrive intact both ways, under loss,
//! over two paths, and no split segment may exceed the link MTU.

mod simutil;

use mptun::io::impair::Impairment;
use mptun::io::sim::{OffloadMode, OffloadState, Verdict};
use mptun::mptcp::ConnConfig;
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
