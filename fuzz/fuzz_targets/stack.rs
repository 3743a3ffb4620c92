//! Whole packets (checksums fixed up unless the record says raw) into a listening stack and
//! a connecting one. The harness is `mptun::fuzzing::stack`.
//!
//! Run: `cargo +nightly fuzz run stack` (from the repository root; see docs/TESTING.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mptun::fuzzing::stack(data));
