//! The one counting global allocator of the allocation tests (`tcp_alloc`, `stack_alloc`,
//! `sched_alloc`, `io_sim_alloc`, `crypto_storage_noalloc`, `memory_idle`). A test binary
//! installs it with
//!
//! ```ignore
//! #[path = "common/alloc.rs"]
//! mod alloc;
//! #[global_allocator]
//! static GLOBAL: alloc::Counting = alloc::Counting;
//! ```
//!
//! It forwards everything to the system allocator and keeps two counts: allocation calls
//! (`alloc`, `alloc_zeroed`, `realloc`) made by a watched thread while [`COUNTING`] is set,
//! in [`ALLOCS`]; and the bytes live on all threads, in [`LIVE`]. Only the thread under test
//! is watched: the test harness's own threads may allocate at any time (seen once in five
//! runs: 4 allocations in a window where the data path made none).

#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};

/// The allocator.
pub struct Counting;
/// Count allocation calls of watched threads while set.
pub static COUNTING: AtomicBool = AtomicBool::new(false);
/// Allocation calls counted.
pub static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated and not yet freed, all threads.
pub static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static WATCHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Count this thread's allocations (while [`COUNTING`] is set).
pub fn watch_this_thread() {
    WATCHED.with(|m| m.set(true));
}

/// Allocation calls counted so far.
pub fn allocs() -> u64 {
    ALLOCS.load(Ordering::SeqCst)
}

/// Bytes live now.
pub fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn count() {
    if COUNTING.load(Ordering::Relaxed) && WATCHED.try_with(|m| m.get()).unwrap_or(false) {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are
// atomics and the thread-local is const-initialised (no allocation inside the allocator).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count();
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count();
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        count();
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(p, l, n) }
    }
}
