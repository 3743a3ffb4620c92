//! Fuzz the TCP option walker, `parse_all` and `MptcpOption::parse`; whatever parses must
//! re-emit into a 40-byte buffer and re-parse to the same value.
//!
//! Run: `cargo fuzz run options` (from the repository root, needs cargo-fuzz + nightly).
//! Without cargo-fuzz: in `fuzz/`, `RUSTFLAGS="-Cpasses=sancov-module
//! -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
//! -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares
//! --cfg fuzzing -Cdebug-assertions -Coverflow-checks" cargo +nightly build --release --bin options
//! --target x86_64-unknown-linux-gnu`, then run the binary with a corpus directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mptun::wire::mptcp::{MptcpOption, KIND_MPTCP};
use mptun::wire::tcp_opt;

fn check_mptcp(raw: &[u8]) {
    if let Ok(opt) = MptcpOption::parse(raw) {
        let mut out = [0u8; 40];
        let n = opt.emit(&mut out).expect("a parsed MPTCP option re-emits");
        assert_eq!(n, raw.len());
        assert_eq!(MptcpOption::parse(&out[..n]), Ok(opt));
    }
}

fuzz_target!(|data: &[u8]| {
    // A TCP header carries at most 40 option bytes.
    let data = &data[..data.len().min(40)];

    // Walker: re-emit every option it yields (it stops after one error).
    let mut out = [0u8; 40];
    let mut at = 0;
    let mut first = Vec::new();
    for item in tcp_opt::iter(data) {
        match item {
            Ok(o) => {
                at += o.emit(&mut out[at..]).expect("a parsed TCP option re-emits");
                first.push(o);
            }
            Err(_) => break,
        }
    }
    let again: Vec<_> = tcp_opt::iter(&out[..at])
        .map(|r| r.expect("re-emitted options parse"))
        .collect();
    assert_eq!(first, again);

    let parsed = tcp_opt::parse_all(data);
    for raw in parsed.mptcp() {
        check_mptcp(raw);
    }

    // The input as one MPTCP option, raw and with kind/length fixed up to go deeper.
    check_mptcp(data);
    if data.len() >= 3 {
        let mut fixed = [0u8; 40];
        fixed[..data.len()].copy_from_slice(data);
        fixed[0] = KIND_MPTCP;
        fixed[1] = data.len() as u8;
        check_mptcp(&fixed[..data.len()]);
    }
});
