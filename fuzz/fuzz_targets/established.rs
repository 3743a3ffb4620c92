//! A live MPTCP connection (two stacks, a join, data both ways) under segments forged from
//! its real packets, application activity, time, loss and reordering. The harness is
//! `mptun::fuzzing::established`.
//!
//! Run: `cargo +nightly fuzz run established` (from the repository root; see docs/TESTING.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mptun::fuzzing::established(data));
