//! Property tests: parse -> emit -> parse round trips over every MPTCP option form and over
//! TCP options, and "random bytes never make a parser panic" for every parser.

use core::net::IpAddr;
use mptun::tcp::TcpOptions;
use mptun::wire::mptcp::*;
use mptun::wire::tcp::{TcpHeader, TcpPacket};
use mptun::wire::{ip, tcp_opt, WireError};
use proptest::prelude::*;

fn arb_capable() -> impl Strategy<Value = MpCapable> {
    (
        0u8..16,
        any::<u8>(),
        0usize..5,
        any::<(u64, u64, u16, u16)>(),
    )
        .prop_map(|(version, flags, form, (k1, k2, dl, cs))| MpCapable {
            version,
            flags,
            sender_key: (form >= 1).then_some(k1),
            receiver_key: (form >= 2).then_some(k2),
            data_len: (form >= 3).then_some(dl),
            checksum: (form >= 4).then_some(cs),
        })
}

fn arb_join() -> impl Strategy<Value = MpJoin> {
    prop_oneof![
        any::<(bool, u8, u32, u32)>().prop_map(|(backup, addr_id, token, nonce)| MpJoin::Syn {
            backup,
            addr_id,
            token,
            nonce
        }),
        any::<(bool, u8, u64, u32)>().prop_map(|(backup, addr_id, hmac, nonce)| {
            MpJoin::SynAck {
                backup,
                addr_id,
                hmac,
                nonce,
            }
        }),
        any::<[u8; 20]>().prop_map(|hmac| MpJoin::Ack { hmac }),
    ]
}

fn arb_dss() -> impl Strategy<Value = Dss> {
    let ack = proptest::option::of(
        (any::<bool>(), any::<u64>()).prop_map(|(ack64, v)| DataAck {
            ack: if ack64 { v } else { v & 0xffff_ffff },
            ack64,
        }),
    );
    let map = proptest::option::of(
        (
            any::<bool>(),
            any::<u64>(),
            any::<u32>(),
            any::<u16>(),
            any::<Option<u16>>(),
        )
            .prop_map(|(dsn64, v, ssn, data_len, checksum)| DssMapping {
                dsn: if dsn64 { v } else { v & 0xffff_ffff },
                dsn64,
                ssn,
                data_len,
                checksum,
            }),
    );
    (ack, map, any::<bool>()).prop_map(|(data_ack, mapping, data_fin)| Dss {
        data_ack,
        mapping,
        data_fin,
    })
}

fn arb_addr() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u8; 16]>().prop_map(IpAddr::from)
    ]
}

fn arb_add_addr() -> impl Strategy<Value = AddAddr> {
    (
        any::<bool>(),
        any::<u8>(),
        arb_addr(),
        any::<Option<u16>>(),
        any::<u64>(),
    )
        .prop_map(|(echo, addr_id, addr, port, h)| AddAddr {
            echo,
            addr_id,
            addr,
            port,
            hmac: (!echo).then_some(h),
        })
}

/// Every variant; REMOVE_ADDR borrows from a `Vec` the strategy owns, so the option is built
/// from (tag, ids) in the test body.
#[derive(Clone, Debug)]
enum Gen {
    Opt(MptcpOption<'static>),
    Remove(Vec<u8>),
}

fn arb_option() -> impl Strategy<Value = Gen> {
    prop_oneof![
        arb_capable().prop_map(|c| Gen::Opt(MptcpOption::MpCapable(c))),
        arb_join().prop_map(|j| Gen::Opt(MptcpOption::MpJoin(j))),
        arb_dss().prop_map(|d| Gen::Opt(MptcpOption::Dss(d))),
        arb_add_addr().prop_map(|a| Gen::Opt(MptcpOption::AddAddr(a))),
        proptest::collection::vec(any::<u8>(), 1..=37).prop_map(Gen::Remove),
        (any::<bool>(), any::<Option<u8>>())
            .prop_map(|(backup, addr_id)| Gen::Opt(MptcpOption::MpPrio { backup, addr_id })),
        any::<u64>().prop_map(|dsn| Gen::Opt(MptcpOption::MpFail { dsn })),
        any::<u64>().prop_map(|key| Gen::Opt(MptcpOption::MpFastclose { key })),
        (0u8..16, any::<u8>())
            .prop_map(|(flags, reason)| Gen::Opt(MptcpOption::MpTcpRst { flags, reason })),
    ]
}

fn check_round_trip(opt: MptcpOption<'_>) {
    let mut buf = [0u8; 64];
    let n = opt.emit(&mut buf).expect("valid repr emits");
    assert_eq!(n, opt.len());
    assert_eq!(usize::from(buf[1]), n);
    assert!(n <= 40, "every MPTCP option fits in the TCP option space");
    assert_eq!(MptcpOption::parse(&buf[..n]), Ok(opt));
    assert_eq!(opt.emit(&mut buf[..n - 1]), Err(WireError::BufferTooSmall));
    // Embedded in an option block behind a NOP, the TCP option walker finds it whole.
    let mut block = [0u8; 41];
    block[0] = 1;
    block[1..=n].copy_from_slice(&buf[..n]);
    let p = tcp_opt::parse_all(&block[..=n]);
    assert_eq!((p.errors, p.mptcp_len), (0, 1));
    assert_eq!(MptcpOption::parse(p.mptcp()[0]), Ok(opt));
}

fn arb_tcp_options() -> impl Strategy<Value = TcpOptions> {
    (
        any::<Option<u16>>(),
        any::<Option<u8>>(),
        any::<bool>(),
        any::<Option<(u32, u32)>>(),
        proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
    )
        .prop_map(|(mss, window_scale, sack_permitted, timestamps, blocks)| {
            let mut o = TcpOptions {
                mss,
                window_scale,
                sack_permitted,
                timestamps,
                ..Default::default()
            };
            for (l, r) in blocks {
                o.sack.push(l, r);
            }
            o
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mptcp_round_trip(g in arb_option()) {
        match g {
            Gen::Opt(o) => check_round_trip(o),
            Gen::Remove(ids) => check_round_trip(MptcpOption::RemoveAddr { ids: &ids }),
        }
    }

    /// Whatever parses re-emits to the same bytes modulo reserved bits, and re-parses equal.
    #[test]
    fn mptcp_random_bytes(mut bytes in proptest::collection::vec(any::<u8>(), 0..40), fix in any::<bool>()) {
        if fix && bytes.len() >= 2 {
            bytes[0] = KIND_MPTCP;
            bytes[1] = bytes.len() as u8;
        }
        if let Ok(opt) = MptcpOption::parse(&bytes) {
            prop_assert_eq!(opt.len(), bytes.len());
            let mut out = [0u8; 40];
            let n = opt.emit(&mut out).expect("parsed option re-emits");
            prop_assert_eq!(n, bytes.len());
            prop_assert_eq!(MptcpOption::parse(&out[..n]), Ok(opt));
        }
    }

    /// TCP options: emit -> parse gives the options back (SACK blocks trimmed to 40 bytes).
    #[test]
    fn tcp_options_round_trip(o in arb_tcp_options()) {
        let mut buf = [0u8; 40];
        let n = tcp_opt::emit_tcp_options(&o, &mut buf).expect("fits: base options <= 24 bytes");
        prop_assert_eq!(n % 4, 0);
        let full = tcp_opt::tcp_options_len(&o);
        prop_assert!(n <= full);
        let p = tcp_opt::parse_all(&buf[..n]);
        prop_assert_eq!(p.errors, 0);
        prop_assert_eq!(p.tcp.mss, o.mss);
        prop_assert_eq!(p.tcp.window_scale, o.window_scale);
        prop_assert_eq!(p.tcp.sack_permitted, o.sack_permitted);
        prop_assert_eq!(p.tcp.timestamps, o.timestamps);
        let kept = p.tcp.sack.as_slice().len();
        prop_assert_eq!(p.tcp.sack.as_slice(), &o.sack.as_slice()[..kept]);
        if n == full {
            prop_assert_eq!(kept, o.sack.as_slice().len());
        } else {
            // trimmed only because another block would not fit
            prop_assert!(n + 8 > 40);
        }
    }

    /// The option walker, parse_all, and re-emission of whatever the walker yields.
    #[test]
    fn tcp_option_walk_random(bytes in proptest::collection::vec(any::<u8>(), 0..=40)) {
        let mut out = [0u8; 40];
        let mut at = 0;
        let mut saw_err = false;
        for item in tcp_opt::iter(&bytes) {
            prop_assert!(!saw_err, "nothing after an error");
            match item {
                Ok(o) => {
                    at += o.emit(&mut out[at..]).expect("re-emit fits in 40 bytes");
                }
                Err(_) => saw_err = true,
            }
        }
        // Re-emitted options walk to the same sequence.
        let a: Vec<_> = tcp_opt::iter(&bytes).filter_map(|r| r.ok()).collect();
        let b: Vec<_> = tcp_opt::iter(&out[..at]).collect::<Result<_, _>>().expect("clean");
        prop_assert_eq!(a, b);
        let p = tcp_opt::parse_all(&bytes);
        prop_assert!(p.mptcp_len <= tcp_opt::MAX_MPTCP_OPTIONS);
        for r in p.mptcp_options() {
            let _ = r;
        }
        let _ = tcp_opt::pad(&mut out, at);
    }

    #[test]
    fn ip_and_tcp_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        if let Ok(info) = ip::parse(&bytes) {
            prop_assert!(info.header_len <= info.total_len && info.total_len <= bytes.len());
            let _ = info.payload(&bytes);
        }
        if let Ok(mut p) = TcpPacket::new_checked(bytes.clone()) {
            prop_assert!(p.header_len() >= 20 && p.header_len() <= bytes.len());
            prop_assert_eq!(p.options().len() + p.payload().len() + 20, bytes.len());
            let _ = p.header();
            let a: IpAddr = "198.19.0.1".parse().unwrap();
            p.fill_checksum(a, a);
            prop_assert!(p.verify_checksum(a, a));
            p.set_header_len(usize::MAX);
            prop_assert_eq!(p.header_len(), 60);
            let shown = p.options().len() + p.payload().len();
            prop_assert_eq!(shown, p.options_mut().len() + p.payload_mut().len());
        }
    }

    #[test]
    fn ip_emit_then_parse(src in arb_addr(), dst in arb_addr(), proto: u8, len in 0usize..2000, tos: u8, ttl: u8) {
        let mut buf = vec![0u8; 40 + len];
        match ip::emit(&mut buf, src, dst, proto, len, tos, ttl) {
            Ok(h) => {
                prop_assert_eq!(src.is_ipv4(), dst.is_ipv4());
                prop_assert_eq!(h, ip::header_len(src));
                buf.truncate(h + len);
                let info = ip::parse(&buf);
                // IPv6 extension-header protocol numbers are refused by design.
                if src.is_ipv6() && matches!(proto, 0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254) {
                    prop_assert_eq!(info, Err(WireError::Malformed));
                } else {
                    let info = info.expect("own header parses");
                    prop_assert_eq!((info.src, info.dst, info.protocol), (src, dst, proto));
                    prop_assert_eq!((info.tos, info.ttl, info.header_len, info.total_len), (tos, ttl, h, h + len));
                }
            }
            Err(e) => {
                prop_assert_eq!(e, WireError::Malformed);
                prop_assert_ne!(src.is_ipv4(), dst.is_ipv4());
            }
        }
    }

    #[test]
    fn tcp_header_round_trip(h in any::<(u16, u16, u32, u32, u8, u16, u16)>(), words in 0usize..=10) {
        let h = TcpHeader { src_port: h.0, dst_port: h.1, seq: h.2, ack: h.3, flags: h.4, window: h.5, urgent: h.6 };
        let mut buf = [0u8; 64];
        let n = h.emit(&mut buf, words * 4).unwrap();
        prop_assert_eq!(n, 20 + words * 4);
        let p = TcpPacket::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!(p.header(), h);
        prop_assert_eq!(p.header_len(), n);
    }

    #[test]
    fn dss_checksum_detects_single_bit_flips(payload in proptest::collection::vec(any::<u8>(), 1..200), dsn: u64, ssn: u32, bit in 0usize..1600) {
        let len = payload.len() as u16;
        let c = dss_checksum(dsn, ssn, len, &payload);
        prop_assert!(dss_checksum_ok(dsn, ssn, len, c, &payload));
        let mut bad = payload.clone();
        let bit = bit % (bad.len() * 8);
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(!dss_checksum_ok(dsn, ssn, len, c, &bad));
    }
}
