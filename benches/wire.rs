//! Micro-benchmarks of the option codecs on the per-packet path.
//!
//! `cargo bench --bench wire`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mptun::wire::mptcp::{cap_flags, DataAck, Dss, DssMapping, MpCapable, MptcpOption};
use mptun::wire::tcp_opt;

fn dss() -> MptcpOption<'static> {
    MptcpOption::Dss(Dss {
        data_ack: Some(DataAck {
            ack: 0x0102_0304_0506_0708,
            ack64: true,
        }),
        mapping: Some(DssMapping {
            dsn: 0x1112_1314_1516_1718,
            dsn64: true,
            ssn: 1_000_000,
            data_len: 1400,
            checksum: None,
        }),
        data_fin: false,
    })
}

fn capable() -> MptcpOption<'static> {
    MptcpOption::MpCapable(MpCapable {
        version: 1,
        flags: cap_flags::H,
        sender_key: Some(0x1122_3344_5566_7788),
        receiver_key: Some(0x99aa_bbcc_ddee_ff00),
        data_len: Some(1400),
        checksum: None,
    })
}

fn bench(c: &mut Criterion) {
    for (name, opt) in [("dss", dss()), ("mp_capable", capable())] {
        let mut raw = [0u8; 40];
        let n = opt.emit(&mut raw).expect("valid option");
        c.bench_function(&format!("mptcp_parse_{name}"), |b| {
            b.iter(|| MptcpOption::parse(black_box(&raw[..n])))
        });
        c.bench_function(&format!("mptcp_emit_{name}"), |b| {
            let mut out = [0u8; 40];
            b.iter(|| black_box(&opt).emit(black_box(&mut out)))
        });
    }

    // A data segment's option block as Linux sends it: NOP NOP TS, then a 64-bit DSS.
    let mut block = [0u8; 40];
    let ts = tcp_opt::TcpOption::Timestamps {
        tsval: 123_456,
        tsecr: 654_321,
    };
    block[0] = 1;
    block[1] = 1;
    let mut at = 2 + ts.emit(&mut block[2..]).expect("fits");
    at += dss().emit(&mut block[at..]).expect("fits");
    let at = tcp_opt::pad(&mut block, at);
    c.bench_function("parse_all_ts_dss", |b| {
        b.iter(|| {
            let p = tcp_opt::parse_all(black_box(&block[..at]));
            let mut dss = None;
            for o in p.mptcp_options() {
                dss = o.ok();
            }
            (p.tcp.timestamps, dss)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
