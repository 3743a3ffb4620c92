//! A bounded, deterministic run of the fuzz harnesses (`mptun::fuzzing`) on every test run:
//! pseudo-random inputs from a fixed seed, plus every input kept in `fuzz/regressions/`
//! (crashes the fuzzer found, kept as regression tests). The coverage-guided runs with
//! libFuzzer are in `fuzz/` (docs/TESTING.md); this catches regressions without nightly.

use mptun::fuzzing;
use std::path::Path;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn regressions(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let data = std::fs::read(e.path()).expect("read regression input");
        f(&data);
        n += 1;
    }
    n
}

#[test]
fn options_harness() {
    regressions("options", fuzzing::options);
    let mut r = Rng(0x6f70_7473);
    for _ in 0..200_000 {
        let mut d = r.bytes(40);
        // half of them shaped like an MPTCP option, every subtype
        if d.len() >= 4 && r.next() & 1 == 0 {
            d[0] = 30;
            d[1] = d.len() as u8;
            d[2] = (d[2] & 0x0f) | (((r.next() % 9) as u8) << 4);
        }
        fuzzing::options(&d);
    }
}

#[test]
fn stack_harness() {
    regressions("stack", fuzzing::stack);
    let mut r = Rng(0x7374_6163);
    for _ in 0..20_000 {
        // IPv4/TCP-shaped records: a header skeleton with random fields and options
        let mut d = Vec::new();
        for _ in 0..(r.next() % 4 + 1) {
            let body = r.bytes(120);
            let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
            p.extend_from_slice(&[198, 18, 1, 1, 198, 18, 1, 2]);
            p.extend_from_slice(&body);
            let len = p.len();
            p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            if p.len() > 32 {
                p[32] = ((r.next() % 11 + 5) as u8) << 4;
            }
            d.extend_from_slice(&(len as u16).to_be_bytes());
            d.extend_from_slice(&p);
        }
        fuzzing::stack(&d);
    }
}

#[test]
fn established_harness() {
    let (subflows, readable) = fuzzing::established_start();
    assert!(
        subflows >= 2,
        "the harness starts from joined subflows: {subflows}"
    );
    assert_eq!(readable, 3000, "and data waiting at the server");
    let n = regressions("established", fuzzing::established);
    let mut r = Rng(0x6573_7461);
    for _ in 0..1_500 {
        let d = r.bytes(400);
        fuzzing::established(&d);
    }
    eprintln!("{n} regression inputs replayed");
}
