//! Byte vectors written by hand from the figures of RFC 8684 section 3.

use super::*;
use core::net::{Ipv4Addr, Ipv6Addr};

fn round_trip(bytes: &[u8], want: MptcpOption<'_>) {
    assert_eq!(MptcpOption::parse(bytes), Ok(want), "parse {bytes:02x?}");
    assert_eq!(want.len(), bytes.len());
    let mut out = [0u8; 40];
    assert_eq!(want.emit(&mut out), Ok(bytes.len()));
    assert_eq!(&out[..bytes.len()], bytes);
    // every shorter output buffer is refused
    for short in 0..bytes.len() {
        assert_eq!(want.emit(&mut out[..short]), Err(WireError::BufferTooSmall));
    }
    // truncating the option (with a length byte fixed up or not) never parses as it
    for cut in 0..bytes.len() {
        assert_ne!(MptcpOption::parse(&bytes[..cut]), Ok(want));
    }
}

const K1: [u8; 8] = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
const K2: [u8; 8] = [0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00];

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

#[test]
fn mp_capable_all_forms() {
    let base = MpCapable {
        version: 1,
        flags: cap_flags::A | cap_flags::H,
        sender_key: None,
        receiver_key: None,
        data_len: None,
        checksum: None,
    };
    // Figure 4: Kind, Length, Subtype|Version, A B C D E F G H.
    round_trip(&[30, 4, 0x01, 0x81], MptcpOption::MpCapable(base));
    let syn_ack = MpCapable {
        sender_key: Some(0x1122_3344_5566_7788),
        ..base
    };
    round_trip(
        &cat(&[&[30, 12, 0x01, 0x81], &K1]),
        MptcpOption::MpCapable(syn_ack),
    );
    let ack = MpCapable {
        receiver_key: Some(0x99aa_bbcc_ddee_ff00),
        ..syn_ack
    };
    round_trip(
        &cat(&[&[30, 20, 0x01, 0x81], &K1, &K2]),
        MptcpOption::MpCapable(ack),
    );
    let data = MpCapable {
        data_len: Some(0x0102),
        ..ack
    };
    round_trip(
        &cat(&[&[30, 22, 0x01, 0x81], &K1, &K2, &[1, 2]]),
        MptcpOption::MpCapable(data),
    );
    let data_cs = MpCapable {
        checksum: Some(0xbeef),
        ..data
    };
    round_trip(
        &cat(&[&[30, 24, 0x01, 0x81], &K1, &K2, &[1, 2, 0xbe, 0xef]]),
        MptcpOption::MpCapable(data_cs),
    );
    // version 0 parses (the caller decides)
    let MptcpOption::MpCapable(v0) = MptcpOption::parse(&[30, 4, 0x00, 0x01]).unwrap() else {
        panic!()
    };
    assert_eq!(v0.version, 0);
    // impossible lengths
    for n in [3usize, 5, 8, 13, 21, 23, 25] {
        let mut b = vec![0u8; n];
        b[0] = 30;
        b[1] = n as u8;
        assert_eq!(MptcpOption::parse(&b), Err(WireError::BadLength), "len {n}");
    }
    // inconsistent reprs are refused on emit
    let bad = MpCapable {
        receiver_key: Some(1),
        ..base
    };
    assert_eq!(
        MptcpOption::MpCapable(bad).emit(&mut [0u8; 40]),
        Err(WireError::Malformed)
    );
    let bad = MpCapable {
        version: 16,
        ..base
    };
    assert_eq!(
        MptcpOption::MpCapable(bad).emit(&mut [0u8; 40]),
        Err(WireError::Malformed)
    );
}

#[test]
fn mp_join_forms() {
    // Figure 5: SYN, B bit set, address id 7, token, nonce.
    round_trip(
        &[30, 12, 0x11, 7, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 42],
        MptcpOption::MpJoin(MpJoin::Syn {
            backup: true,
            addr_id: 7,
            token: 0xdead_beef,
            nonce: 42,
        }),
    );
    // Figure 6: SYN/ACK, 64-bit truncated HMAC and nonce.
    round_trip(
        &cat(&[&[30, 16, 0x10, 3], &K1, &[1, 2, 3, 4]]),
        MptcpOption::MpJoin(MpJoin::SynAck {
            backup: false,
            addr_id: 3,
            hmac: 0x1122_3344_5566_7788,
            nonce: 0x0102_0304,
        }),
    );
    // Figure 7: third ACK, 160-bit HMAC.
    let hmac: [u8; 20] = core::array::from_fn(|i| i as u8 + 1);
    round_trip(
        &cat(&[&[30, 24, 0x10, 0], &hmac]),
        MptcpOption::MpJoin(MpJoin::Ack { hmac }),
    );
    let mut b = [0u8; 20];
    b[..3].copy_from_slice(&[30, 20, 0x10]);
    assert_eq!(MptcpOption::parse(&b), Err(WireError::BadLength));
}

#[test]
fn dss_flag_combinations() {
    // Figure 9: A and a: 8-octet data ACK only.
    round_trip(
        &cat(&[&[30, 12, 0x20, 0x03], &K1]),
        MptcpOption::Dss(Dss {
            data_ack: Some(DataAck {
                ack: 0x1122_3344_5566_7788,
                ack64: true,
            }),
            mapping: None,
            data_fin: false,
        }),
    );
    // A only: 4-octet data ACK.
    round_trip(
        &[30, 8, 0x20, 0x01, 0, 0, 1, 0],
        MptcpOption::Dss(Dss {
            data_ack: Some(DataAck {
                ack: 256,
                ack64: false,
            }),
            mapping: None,
            data_fin: false,
        }),
    );
    // M, m, no checksum: 8-octet DSN + SSN + length (Linux's usual form), A too.
    let map64 = DssMapping {
        dsn: 0x99aa_bbcc_ddee_ff00,
        dsn64: true,
        ssn: 1,
        data_len: 1400,
        checksum: None,
    };
    round_trip(
        &cat(&[
            &[30, 22, 0x20, 0x0d, 0, 0, 0, 9],
            &K2,
            &[0, 0, 0, 1, 0x05, 0x78],
        ]),
        MptcpOption::Dss(Dss {
            data_ack: Some(DataAck {
                ack: 9,
                ack64: false,
            }),
            mapping: Some(map64),
            data_fin: false,
        }),
    );
    // M with a checksum, 4-octet DSN, F set.
    round_trip(
        &[30, 16, 0x20, 0x14, 0, 0, 0, 5, 0, 0, 0, 0, 0, 1, 0xab, 0xcd],
        MptcpOption::Dss(Dss {
            data_ack: None,
            mapping: Some(DssMapping {
                dsn: 5,
                dsn64: false,
                ssn: 0,
                data_len: 1,
                checksum: Some(0xabcd),
            }),
            data_fin: true,
        }),
    );
    // Everything: A a M m F + checksum = 4 + 8 + 8 + 4 + 2 + 2 = 28.
    let all = cat(&[
        &[30, 28, 0x20, 0x1f],
        &K1,
        &K2,
        &[0, 0, 0, 7, 0, 2, 0x12, 0x34],
    ]);
    let MptcpOption::Dss(d) = MptcpOption::parse(&all).unwrap() else {
        panic!()
    };
    assert_eq!(d.flags(), 0x1f);
    assert_eq!(d.mapping.unwrap().checksum, Some(0x1234));
    round_trip(&all, MptcpOption::Dss(d));
    // Bare DSS (no flags) is 4 bytes.
    round_trip(&[30, 4, 0x20, 0], MptcpOption::Dss(Dss::default()));
    // Lengths inconsistent with flags.
    assert_eq!(
        MptcpOption::parse(&[30, 8, 0x20, 0x00, 0, 0, 0, 0]),
        Err(WireError::BadLength)
    );
    assert_eq!(
        MptcpOption::parse(&[30, 6, 0x20, 0x01, 0, 0]),
        Err(WireError::BadLength)
    );
    let mut b = all.clone();
    b.push(0);
    b[1] = 29;
    assert_eq!(MptcpOption::parse(&b), Err(WireError::BadLength));
    assert_eq!(
        MptcpOption::parse(&[30, 3, 0x20]),
        Err(WireError::BadLength)
    );
    // A 32-bit form cannot carry a value above u32::MAX.
    let big = MptcpOption::Dss(Dss {
        data_ack: Some(DataAck {
            ack: 1 << 32,
            ack64: false,
        }),
        mapping: None,
        data_fin: false,
    });
    assert_eq!(big.emit(&mut [0u8; 40]), Err(WireError::Malformed));
}

#[test]
fn add_addr_forms() {
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
    let v6b = v6.to_string().parse::<Ipv6Addr>().unwrap().octets();
    let mk = |echo, addr, port, hmac| {
        MptcpOption::AddAddr(AddAddr {
            echo,
            addr_id: 4,
            addr,
            port,
            hmac,
        })
    };
    // Figure 12: subtype 3, E bit lowest, address id, address, [port], [HMAC].
    round_trip(&[30, 8, 0x31, 4, 192, 0, 2, 1], mk(true, v4, None, None));
    round_trip(
        &[30, 10, 0x31, 4, 192, 0, 2, 1, 0x1f, 0x90],
        mk(true, v4, Some(8080), None),
    );
    round_trip(
        &cat(&[&[30, 16, 0x30, 4, 192, 0, 2, 1], &K1]),
        mk(false, v4, None, Some(0x1122_3344_5566_7788)),
    );
    round_trip(
        &cat(&[&[30, 18, 0x30, 4, 192, 0, 2, 1, 0, 80], &K1]),
        mk(false, v4, Some(80), Some(0x1122_3344_5566_7788)),
    );
    round_trip(&cat(&[&[30, 20, 0x31, 4], &v6b]), mk(true, v6, None, None));
    round_trip(
        &cat(&[&[30, 22, 0x31, 4], &v6b, &[0, 1]]),
        mk(true, v6, Some(1), None),
    );
    round_trip(
        &cat(&[&[30, 28, 0x30, 4], &v6b, &K2]),
        mk(false, v6, None, Some(0x99aa_bbcc_ddee_ff00)),
    );
    round_trip(
        &cat(&[&[30, 30, 0x30, 4], &v6b, &[0, 2], &K2]),
        mk(false, v6, Some(2), Some(0x99aa_bbcc_ddee_ff00)),
    );
    // E flag disagreeing with the length: echo with HMAC length, non-echo without.
    assert_eq!(
        MptcpOption::parse(&[30, 8, 0x30, 4, 192, 0, 2, 1]),
        Err(WireError::BadLength)
    );
    assert_eq!(
        MptcpOption::parse(&cat(&[&[30, 16, 0x31, 4, 192, 0, 2, 1], &K1])),
        Err(WireError::BadLength)
    );
    assert_eq!(
        MptcpOption::parse(&[30, 9, 0x31, 4, 192, 0, 2, 1, 0]),
        Err(WireError::BadLength)
    );
    assert_eq!(
        mk(true, v4, None, Some(1)).emit(&mut [0u8; 40]),
        Err(WireError::Malformed)
    );
}

#[test]
fn small_options() {
    // REMOVE_ADDR, figure 13.
    round_trip(
        &[30, 6, 0x40, 1, 2, 3],
        MptcpOption::RemoveAddr { ids: &[1, 2, 3] },
    );
    round_trip(&[30, 4, 0x40, 9], MptcpOption::RemoveAddr { ids: &[9] });
    assert_eq!(
        MptcpOption::parse(&[30, 3, 0x40]),
        Err(WireError::BadLength)
    );
    assert_eq!(
        MptcpOption::RemoveAddr { ids: &[] }.emit(&mut [0u8; 8]),
        Err(WireError::Malformed)
    );
    // MP_PRIO, figure 14 (v1: length 3), and the RFC 6824 length-4 form.
    round_trip(
        &[30, 3, 0x51],
        MptcpOption::MpPrio {
            backup: true,
            addr_id: None,
        },
    );
    round_trip(
        &[30, 4, 0x50, 6],
        MptcpOption::MpPrio {
            backup: false,
            addr_id: Some(6),
        },
    );
    assert_eq!(
        MptcpOption::parse(&[30, 5, 0x50, 6, 0]),
        Err(WireError::BadLength)
    );
    // MP_FAIL, figure 16.
    round_trip(
        &cat(&[&[30, 12, 0x60, 0], &K1]),
        MptcpOption::MpFail {
            dsn: 0x1122_3344_5566_7788,
        },
    );
    // MP_FASTCLOSE, figure 15.
    round_trip(
        &cat(&[&[30, 12, 0x70, 0], &K2]),
        MptcpOption::MpFastclose {
            key: 0x99aa_bbcc_ddee_ff00,
        },
    );
    // MP_TCPRST, figure 17: T flag, reason "middlebox interference".
    round_trip(
        &[30, 4, 0x81, 6],
        MptcpOption::MpTcpRst {
            flags: rst_flags::T,
            reason: rst_reason::MIDDLEBOX_INTERFERENCE,
        },
    );
    for st in [0x60u8, 0x70, 0x80] {
        assert_eq!(
            MptcpOption::parse(&[30, 5, st, 0, 0]),
            Err(WireError::BadLength)
        );
    }
    assert_eq!(
        MptcpOption::MpTcpRst {
            flags: 0x10,
            reason: 0
        }
        .emit(&mut [0u8; 4]),
        Err(WireError::Malformed)
    );
}

#[test]
fn framing_errors() {
    assert_eq!(MptcpOption::parse(&[]), Err(WireError::Truncated));
    assert_eq!(MptcpOption::parse(&[30]), Err(WireError::Truncated));
    assert_eq!(MptcpOption::parse(&[30, 2]), Err(WireError::BadLength));
    assert_eq!(
        MptcpOption::parse(&[29, 4, 0x01, 0x81]),
        Err(WireError::BadLength)
    );
    assert_eq!(
        MptcpOption::parse(&[30, 5, 0x01, 0x81]),
        Err(WireError::BadLength)
    );
    assert_eq!(
        MptcpOption::parse(&[30, 4, 0x91, 0]),
        Err(WireError::UnknownSubtype(9))
    );
    assert_eq!(
        MptcpOption::parse(&[30, 3, 0xf0]),
        Err(WireError::UnknownSubtype(0xf))
    );
}

#[test]
fn dss_checksum_verifies() {
    let payload = b"hello, multipath world!"; // odd length
    let c = dss_checksum(0x0102_0304_0506_0708, 1000, payload.len() as u16, payload);
    assert!(dss_checksum_ok(0x0102_0304_0506_0708, 1000, 23, c, payload));
    assert!(!dss_checksum_ok(
        0x0102_0304_0506_0709,
        1000,
        23,
        c,
        payload
    ));
    assert!(!dss_checksum_ok(
        0x0102_0304_0506_0708,
        1001,
        23,
        c,
        payload
    ));
    assert!(!dss_checksum_ok(
        0x0102_0304_0506_0708,
        1000,
        22,
        c,
        payload
    ));
    assert!(!dss_checksum_ok(
        0x0102_0304_0506_0708,
        1000,
        23,
        c,
        b"hello, multipath world?"
    ));
    // Independent computation: 16-bit words of the pseudo-header and payload.
    let mut all = Vec::new();
    all.extend_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
    all.extend_from_slice(&1000u32.to_be_bytes());
    all.extend_from_slice(&23u16.to_be_bytes());
    all.extend_from_slice(&[0, 0]);
    all.extend_from_slice(payload);
    all.push(0);
    let mut s: u32 = 0;
    for w in all.chunks(2) {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    assert_eq!(c, !(s as u16));
}

#[test]
fn dss_checksum_over_two_pieces_matches_one_piece_at_every_split() {
    let payload: Vec<u8> = (0..=255u8).cycle().skip(7).take(301).collect();
    let c = dss_checksum(0xfedc_ba98_7654_3210, 77, payload.len() as u16, &payload);
    for cut in 0..=payload.len() {
        let (a, b) = payload.split_at(cut);
        assert!(
            dss_checksum_ok_split(0xfedc_ba98_7654_3210, 77, 301, c, a, b),
            "cut {cut}"
        );
        let mut bad = payload.clone();
        bad[cut.min(300)] ^= 0x10;
        let (a, b) = bad.split_at(cut);
        assert!(
            !dss_checksum_ok_split(0xfedc_ba98_7654_3210, 77, 301, c, a, b),
            "cut {cut}"
        );
    }
    // all-ones words exercise the end-around carry
    let ones = [0xffu8; 9];
    let c = dss_checksum(u64::MAX, u32::MAX, 9, &ones);
    for cut in 0..=9 {
        let (a, b) = ones.split_at(cut);
        assert!(
            dss_checksum_ok_split(u64::MAX, u32::MAX, 9, c, a, b),
            "cut {cut}"
        );
    }
}
