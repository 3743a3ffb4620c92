//! The TCP option walker and the MPTCP option parsers: whatever parses must re-emit and
//! re-parse to the same value. The harness is `mptun::fuzzing::options`.
//!
//! Run: `cargo +nightly fuzz run options` (from the repository root; see docs/TESTING.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mptun::fuzzing::options(data));
