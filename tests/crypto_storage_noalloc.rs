//! Proves that the data-path buffers stop allocating once they reach steady state: a counting
//! global allocator (this test binary only) checks SendBuffer push/copy_out/release,
//! RecvBuffer write_at/read/peek/consume. The rings are allocated
//! lazily and grow by doubling, so the first rounds allocate a few times (bounded) and then
//! never again.

use std::sync::atomic::Ordering;

use mptun::storage::{RecvBuffer, SendBuffer};

#[path = "common/alloc.rs"]
mod alloc;
use alloc::{ALLOCS, COUNTING};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

fn allocs() -> u64 {
    ALLOCS.load(Ordering::SeqCst)
}

// One test function only: the counter is global and the harness runs tests in parallel.
#[test]
fn data_path_does_not_allocate_in_steady_state() {
    alloc::watch_this_thread();
    COUNTING.store(true, Ordering::SeqCst);
    // Sanity: the counter does see allocations.
    let before = allocs();
    let v = std::hint::black_box(vec![1u8; 100]);
    assert!(allocs() > before);
    drop(v);

    let chunk = [0x5au8; 1400];
    let mut tx_seg = [0u8; 1400];
    let mut app = [0u8; 4096];

    let mut snd = SendBuffer::new(64 * 1024, 1 << 40);
    let mut rcv = RecvBuffer::new(64 * 1024, 7);

    let mut before = allocs();
    let mut tx_next = snd.start();
    let mut rx_off = 7u64;
    for round in 0..2_200u64 {
        if round == 200 {
            // warmed up: the rings grew to what this traffic needs, by doubling from 4 KiB
            // to at most 64 KiB (5 steps each), plus the range table's few doublings
            let warmup = allocs() - before;
            assert!(warmup > 0, "the rings are allocated lazily");
            assert!(warmup <= 16, "growth is amortised: {warmup} allocations");
            before = allocs();
        }
        // sender: fill, transmit segments, release acknowledged data
        while snd.push(&chunk) > 0 {}
        let n = snd.copy_out(tx_next, &mut tx_seg);
        let (a, b) = snd.slices_at(tx_next, 1400);
        assert_eq!(a.len() + b.len(), n);
        tx_next += n as u64;
        snd.release(tx_next - (round % 3) * 100);

        // receiver: one segment out of order, then the hole, then read
        let pkt = &tx_seg[..n];
        let half = n / 2;
        assert_eq!(rcv.write_at(rx_off + half as u64, &pkt[half..]), n - half);
        assert!(rcv.out_of_order_iter().count() <= 1);
        assert_eq!(rcv.write_at(rx_off, &pkt[..half]), half);
        assert_eq!(rcv.write_at(rx_off, pkt), n); // duplicate
        rx_off += n as u64;
        if round % 2 == 0 {
            let (a, _b) = rcv.peek();
            let k = a.len().min(10);
            rcv.consume(k);
        }
        while rcv.read(&mut app) > 0 {}
        assert!(rcv.window() > 0);
    }
    let after = allocs();
    assert_eq!(
        after - before,
        0,
        "data path allocated {} times",
        after - before
    );
    assert_eq!(rcv.read_offset(), rx_off);
}
