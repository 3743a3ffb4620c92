//! The engine allocates nothing per segment in steady state: two `Tcb`s exchange a stream
//! (with periodic loss, so recovery, SACK and reassembly run too) through preallocated
//! buffers while a counting global allocator watches.

use mptun::tcp::{Config, RxSink, SegmentIn, SegmentOut, Tcb, TxParams};
use mptun::time::{Duration, Instant};
use std::sync::atomic::Ordering;

#[path = "common/alloc.rs"]
mod alloc;
use alloc::{ALLOCS, COUNTING};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

const STREAM: usize = 4 << 20;

struct Sink {
    buf: Vec<u8>,
}

impl RxSink for Sink {
    fn deliver(&mut self, offset: u64, data: &[u8]) -> usize {
        let start = offset as usize;
        let n = data.len().min(self.buf.len().saturating_sub(start));
        self.buf[start..start + n].copy_from_slice(&data[..n]);
        n
    }
    fn window(&self) -> u32 {
        1 << 20
    }
}

/// A fixed ring of in-flight packets with inline payload storage.
struct Wire {
    segs: Vec<(SegmentOut, [u8; 1500], usize)>,
    len: usize,
}

impl Wire {
    fn new() -> Wire {
        Wire {
            segs: vec![(SegmentOut::default_like(), [0u8; 1500], 0); 256],
            len: 0,
        }
    }
}

trait DefaultLike {
    fn default_like() -> Self;
}

impl DefaultLike for SegmentOut {
    fn default_like() -> Self {
        SegmentOut {
            seq: 0,
            ack: 0,
            flags: 0,
            window: 0,
            options: Default::default(),
            offset: 0,
            payload_len: 0,
            retransmission: false,
            gso_size: 0,
        }
    }
}

fn flush(t: &mut Tcb, now: Instant, data: &[u8], wire: &mut Wire, n_sent: &mut u64) {
    let tx = TxParams {
        extra_option_len: 0,
        extra_option_len_ack: 0,
        data_level_window: false,
        rcv_space: 1 << 20,
        tso_bytes: 0,
    };
    while let Some(s) = t.poll_transmit(now, &tx) {
        *n_sent += 1;
        // drop one data segment in 97
        if s.payload_len > 0 && *n_sent % 97 == 0 {
            continue;
        }
        if wire.len == wire.segs.len() {
            continue; // tail drop
        }
        let slot = &mut wire.segs[wire.len];
        let len = s.payload_len as usize;
        let off = s.offset as usize;
        slot.0 = s;
        slot.1[..len].copy_from_slice(&data[off..off + len]);
        slot.2 = len;
        wire.len += 1;
    }
}

fn deliver(t: &mut Tcb, now: Instant, wire: &mut Wire, sink: &mut Sink) {
    for k in 0..wire.len {
        let (s, buf, len) = &wire.segs[k];
        let seg = SegmentIn {
            seq: s.seq,
            ack: s.ack,
            flags: s.flags,
            window: s.window,
            options: s.options,
            payload: &buf[..*len],
        };
        t.handle_segment(now, &seg, sink);
    }
    wire.len = 0;
    while t.poll_event().is_some() {}
}

#[test]
fn no_allocation_per_segment_in_steady_state() {
    alloc::watch_this_thread();
    let data: Vec<u8> = (0..STREAM).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut sink = Sink {
        buf: vec![0; STREAM],
    };
    let mut dummy = Sink { buf: vec![0; 16] };
    let mut now = Instant::from_millis(1);
    let cfg = Config {
        congestion: "cubic",
        ..Config::default()
    };
    let mut a = Tcb::connect(cfg.clone(), 1, now);
    let mut w_ab = Wire::new();
    let mut w_ba = Wire::new();
    let mut n = 0u64;
    let mut m = 0u64;
    flush(&mut a, now, &data, &mut w_ab, &mut n);
    let (syn, _, _) = w_ab.segs[0];
    let syn_in = SegmentIn {
        seq: syn.seq,
        ack: syn.ack,
        flags: syn.flags,
        window: syn.window,
        options: syn.options,
        payload: &[],
    };
    let mut b = Tcb::accept(cfg, &syn_in, 99, now);
    w_ab.len = 0;
    a.enqueue(STREAM as u32);
    let step = Duration::from_millis(5);
    let mut rounds = 0;
    while b.rcv_nxt_offset() < STREAM as u64 {
        rounds += 1;
        assert!(rounds < 100_000, "stalled at {}", b.rcv_nxt_offset());
        if rounds == 50 {
            // the connection is warmed up: from now on nothing may allocate
            COUNTING.store(true, Ordering::SeqCst);
        }
        flush(&mut a, now, &data, &mut w_ab, &mut n);
        deliver(&mut b, now, &mut w_ab, &mut sink);
        flush(&mut b, now, &[], &mut w_ba, &mut m);
        deliver(&mut a, now, &mut w_ba, &mut dummy);
        now += step;
        for t in [&mut a, &mut b] {
            if t.poll_timeout().is_some_and(|x| x <= now) {
                t.handle_timeout(now);
            }
        }
    }
    COUNTING.store(false, Ordering::SeqCst);
    assert!(sink.buf == data);
    let st = a.stats();
    assert!(st.retransmits > 10, "loss recovery ran: {st:?}");
    assert_eq!(
        ALLOCS.load(Ordering::SeqCst),
        0,
        "allocations in steady state"
    );
}
