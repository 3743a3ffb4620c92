//! Our IP/TCP emitters checked against etherparse as an independent oracle, both ways.

use core::net::IpAddr;
use etherparse::{NetHeaders, PacketBuilder, PacketHeaders, TcpOptionElement, TransportHeader};
use mptun::tcp::{flags, TcpOptions};
use mptun::wire::mptcp::{DataAck, Dss, DssMapping, MptcpOption};
use mptun::wire::tcp::{TcpHeader, TcpPacket};
use mptun::wire::{ip, tcp_opt};
use proptest::prelude::*;

struct Built {
    buf: Vec<u8>,
    ip_len: usize,
    tcp_hdr_len: usize,
}

#[allow(clippy::too_many_arguments)]
/// Builds IP + TCP (+ our TCP options and a DSS option) + payload with our code only.
fn build(
    src: IpAddr,
    dst: IpAddr,
    h: &TcpHeader,
    opts: &TcpOptions,
    dss: Option<MptcpOption<'_>>,
    payload: &[u8],
    tos: u8,
    ttl: u8,
) -> Built {
    let mut opt_buf = [0u8; 40];
    let mut n = tcp_opt::emit_tcp_options(opts, &mut opt_buf).unwrap();
    if let Some(d) = dss {
        n += d.emit(&mut opt_buf[n..]).unwrap();
    }
    let n = tcp_opt::pad(&mut opt_buf, n);
    assert_eq!(n % 4, 0);
    let tcp_len = 20 + n + payload.len();
    let mut buf = vec![0u8; 60 + tcp_len];
    let ip_len = ip::emit(&mut buf, src, dst, ip::PROTO_TCP, tcp_len, tos, ttl).unwrap();
    assert_eq!(ip_len, ip::header_len(src));
    buf.truncate(ip_len + tcp_len);
    let seg = &mut buf[ip_len..];
    let hl = h.emit(seg, n).unwrap();
    seg[20..hl].copy_from_slice(&opt_buf[..n]);
    seg[hl..].copy_from_slice(payload);
    let mut p = TcpPacket::new_checked(seg).unwrap();
    p.fill_checksum(src, dst);
    Built {
        buf,
        ip_len,
        tcp_hdr_len: hl,
    }
}

#[allow(clippy::too_many_arguments)]
fn check_against_etherparse(
    src: IpAddr,
    dst: IpAddr,
    h: TcpHeader,
    opts: TcpOptions,
    with_dss: bool,
    payload: &[u8],
    tos: u8,
    ttl: u8,
) {
    let dss = MptcpOption::Dss(Dss {
        data_ack: Some(DataAck {
            ack: 77,
            ack64: true,
        }),
        mapping: Some(DssMapping {
            dsn: 1 << 40,
            dsn64: true,
            ssn: 1,
            data_len: payload.len() as u16,
            checksum: None,
        }),
        data_fin: false,
    });
    let b = build(
        src,
        dst,
        &h,
        &opts,
        with_dss.then_some(dss),
        payload,
        tos,
        ttl,
    );
    let ph = PacketHeaders::from_ip_slice(&b.buf).expect("etherparse parses our packet");
    let tcp_bytes = &b.buf[b.ip_len..];
    match ph.net.expect("net header") {
        NetHeaders::Ipv4(v4, _) => {
            assert_eq!(IpAddr::from(v4.source), src);
            assert_eq!(IpAddr::from(v4.destination), dst);
            assert_eq!(v4.time_to_live, ttl);
            assert_eq!((v4.dscp.value() << 2) | v4.ecn.value(), tos);
            assert!(v4.dont_fragment && !v4.more_fragments);
            assert_eq!(v4.identification, 0);
            assert_eq!(usize::from(v4.total_len), b.buf.len());
            assert_eq!(v4.header_checksum, v4.calc_header_checksum());
            let t = match ph.transport.expect("tcp") {
                TransportHeader::Tcp(t) => t,
                other => panic!("{other:?}"),
            };
            assert_eq!(
                t.checksum,
                t.calc_checksum_ipv4(&v4, payload).unwrap(),
                "tcp checksum"
            );
            check_tcp(&t, &h, b.tcp_hdr_len);
        }
        NetHeaders::Ipv6(v6, _) => {
            assert_eq!(IpAddr::from(v6.source), src);
            assert_eq!(IpAddr::from(v6.destination), dst);
            assert_eq!(v6.hop_limit, ttl);
            assert_eq!(v6.traffic_class, tos);
            assert_eq!(v6.flow_label.value(), 0);
            assert_eq!(usize::from(v6.payload_length), tcp_bytes.len());
            let t = match ph.transport.expect("tcp") {
                TransportHeader::Tcp(t) => t,
                other => panic!("{other:?}"),
            };
            assert_eq!(t.checksum, t.calc_checksum_ipv6(&v6, payload).unwrap());
            check_tcp(&t, &h, b.tcp_hdr_len);
        }
    }
    assert_eq!(ph.payload.slice(), payload);
    // Our own parsers agree too.
    let info = ip::parse(&b.buf).unwrap();
    let p = TcpPacket::new_checked(info.payload(&b.buf)).unwrap();
    assert!(p.verify_checksum(info.src, info.dst));
    assert_eq!(p.header(), h);
    let parsed = tcp_opt::parse_all(p.options());
    assert_eq!(parsed.errors, 0);
    assert_eq!(parsed.tcp, opts);
    assert_eq!(parsed.mptcp_len, usize::from(with_dss));
    // Without MPTCP options, etherparse decodes our option layout to the same values.
    if !with_dss {
        let t = etherparse::TcpHeader::from_slice(tcp_bytes).unwrap().0;
        let mut seen = TcpOptions::default();
        for e in t.options_iterator() {
            match e.expect("etherparse option") {
                TcpOptionElement::Noop => {}
                TcpOptionElement::MaximumSegmentSize(m) => seen.mss = Some(m),
                TcpOptionElement::WindowScale(s) => seen.window_scale = Some(s),
                TcpOptionElement::SelectiveAcknowledgementPermitted => seen.sack_permitted = true,
                TcpOptionElement::Timestamp(a, b) => seen.timestamps = Some((a, b)),
                TcpOptionElement::SelectiveAcknowledgement(first, rest) => {
                    seen.sack.push(first.0, first.1);
                    for (l, r) in rest.into_iter().flatten() {
                        seen.sack.push(l, r);
                    }
                }
            }
        }
        assert_eq!(seen, opts);
    }
}

fn check_tcp(t: &etherparse::TcpHeader, h: &TcpHeader, hl: usize) {
    assert_eq!(t.source_port, h.src_port);
    assert_eq!(t.destination_port, h.dst_port);
    assert_eq!(t.sequence_number, h.seq);
    assert_eq!(t.acknowledgment_number, h.ack);
    assert_eq!(t.window_size, h.window);
    assert_eq!(t.urgent_pointer, h.urgent);
    assert_eq!(t.header_len(), hl);
    let f = h.flags;
    assert_eq!(t.fin, f & flags::FIN != 0);
    assert_eq!(t.syn, f & flags::SYN != 0);
    assert_eq!(t.rst, f & flags::RST != 0);
    assert_eq!(t.psh, f & flags::PSH != 0);
    assert_eq!(t.ack, f & flags::ACK != 0);
    assert_eq!(t.urg, f & flags::URG != 0);
    assert_eq!(t.ece, f & flags::ECE != 0);
    assert_eq!(t.cwr, f & flags::CWR != 0);
}

fn arb_addrs() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<[u8; 4]>()).prop_map(|(a, b)| (a.into(), b.into())),
        (any::<[u8; 16]>(), any::<[u8; 16]>()).prop_map(|(a, b)| (a.into(), b.into())),
    ]
}

fn arb_header() -> impl Strategy<Value = TcpHeader> {
    (
        any::<u16>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
    )
        .prop_map(|(s, d, seq, ack, flags, window, urgent)| TcpHeader {
            src_port: s,
            dst_port: d,
            seq,
            ack,
            flags,
            window,
            urgent,
        })
}

/// TCP options that fit in `room` bytes (40, or 14 next to a 26-byte DSS).
fn arb_options(room: usize) -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        proptest::option::of(any::<(u32, u32)>()),
        proptest::collection::vec(any::<(u32, u32)>(), 0..=4),
    )
        .prop_map(move |(mss, ws, sp, ts, blocks)| {
            let mut o = TcpOptions {
                mss,
                window_scale: ws,
                sack_permitted: sp,
                timestamps: ts,
                ..Default::default()
            };
            // Keep only the blocks that fit (unused slots stay zero, as a parse leaves them).
            let base = tcp_opt::tcp_options_len(&o);
            let fit = if room >= base + 12 {
                (room - base - 4) / 8
            } else {
                0
            };
            for &(l, r) in blocks.iter().take(fit) {
                o.sack.push(l, r);
            }
            o
        })
        .prop_filter("fits", move |o| tcp_opt::tcp_options_len(o) <= room)
}

#[test]
fn fixed_ipv4_syn() {
    let opts = TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((100, 0)),
        ..Default::default()
    };
    let h = TcpHeader {
        src_port: 43210,
        dst_port: 5201,
        seq: 1,
        ack: 0,
        flags: flags::SYN,
        window: 64240,
        urgent: 0,
    };
    check_against_etherparse(
        "198.19.0.1".parse().unwrap(),
        "198.19.0.2".parse().unwrap(),
        h,
        opts,
        false,
        b"",
        0,
        64,
    );
}

/// The reverse direction: etherparse builds, our parsers read.
#[test]
fn etherparse_built_packet_parses() {
    let payload = b"0123456789abcdef!";
    let builder = PacketBuilder::ipv4([192, 0, 2, 1], [198, 51, 100, 7], 33)
        .tcp(1000, 2000, 0xfeed_f00d, 512)
        .ack(0x1234_5678)
        .psh()
        .options(&[
            TcpOptionElement::Noop,
            TcpOptionElement::Noop,
            TcpOptionElement::Timestamp(5, 6),
        ])
        .unwrap();
    let mut buf = Vec::new();
    builder.write(&mut buf, payload).unwrap();
    let info = ip::parse(&buf).unwrap();
    assert_eq!(info.ttl, 33);
    assert_eq!(info.protocol, ip::PROTO_TCP);
    let p = TcpPacket::new_checked(info.payload(&buf)).unwrap();
    assert!(p.verify_checksum(info.src, info.dst));
    assert_eq!(
        (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number()),
        (1000, 2000, 0xfeed_f00d, 0x1234_5678)
    );
    assert_eq!(p.flags(), flags::ACK | flags::PSH);
    assert_eq!(p.payload(), payload);
    assert_eq!(tcp_opt::parse_all(p.options()).tcp.timestamps, Some((5, 6)));

    let builder = PacketBuilder::ipv6([1; 16], [2; 16], 9)
        .tcp(1, 2, 3, 4)
        .syn();
    let mut buf = Vec::new();
    builder.write(&mut buf, &[]).unwrap();
    let info = ip::parse(&buf).unwrap();
    let p = TcpPacket::new_checked(info.payload(&buf)).unwrap();
    assert!(p.verify_checksum(info.src, info.dst));
    assert_eq!(p.flags(), flags::SYN);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_packets_match_etherparse(
        (src, dst) in arb_addrs(),
        h in arb_header(),
        (with_dss, opts) in any::<bool>()
            .prop_flat_map(|d| (Just(d), arb_options(if d { 40 - 26 } else { 40 }))),
        payload in proptest::collection::vec(any::<u8>(), 0..300),
        tos in any::<u8>(),
        ttl in any::<u8>(),
    ) {
        check_against_etherparse(src, dst, h, opts, with_dss, &payload, tos, ttl);
    }
}
