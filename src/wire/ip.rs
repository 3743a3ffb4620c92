//! IPv4 (RFC 791) and IPv6 (RFC 8200) header parse and emit.
//!
//! No-panic contract: `parse` accepts any byte slice and returns a `WireError` for anything it
//! cannot handle; `emit` returns `BufferTooSmall`/`BadLength`/`Malformed` instead of panicking.
//!
//! Limits (documented choices): IPv4 fragments (MF set or offset != 0) are `Malformed` (the
//! stack does not reassemble); IPv6 extension headers (any next header that is an extension
//! header, including hop-by-hop jumbograms) are `Malformed`.

use super::{checksum, Result, WireError};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the stack needs from an IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpInfo {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Upper-layer protocol (IPv4 protocol / IPv6 next header).
    pub protocol: u8,
    /// Offset where the upper-layer packet starts.
    pub header_len: usize,
    /// Offset where the upper-layer packet ends (bytes beyond are link padding, ignored).
    pub total_len: usize,
    /// IPv4 TOS / IPv6 traffic class.
    pub tos: u8,
    /// IPv4 TTL / IPv6 hop limit.
    pub ttl: u8,
}

impl IpInfo {
    /// The upper-layer packet inside `buf` (the buffer that was parsed).
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.header_len..self.total_len).unwrap_or(&[])
    }
}

/// IPv4 header length without options.
pub const IPV4_HEADER_LEN: usize = 20;
/// IPv6 fixed header length.
pub const IPV6_HEADER_LEN: usize = 40;

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;

fn is_ipv6_extension(nh: u8) -> bool {
    // hop-by-hop, routing, fragment, ESP, AH, destination options, mobility, HIP, shim6,
    // experimental 253/254.
    matches!(nh, 0 | 43 | 44 | 50 | 51 | 60 | 135 | 139 | 140 | 253 | 254)
}

fn be16(buf: &[u8], at: usize) -> Result<u16> {
    match buf.get(at..at + 2) {
        Some(b) => Ok(u16::from_be_bytes([b[0], b[1]])),
        None => Err(WireError::Truncated),
    }
}

/// Parses an IPv4 or IPv6 header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<IpInfo> {
    let first = *buf.first().ok_or(WireError::Truncated)?;
    match first >> 4 {
        4 => parse_v4(buf),
        6 => parse_v6(buf),
        _ => Err(WireError::BadVersion),
    }
}

fn parse_v4(buf: &[u8]) -> Result<IpInfo> {
    let h = buf.get(..IPV4_HEADER_LEN).ok_or(WireError::Truncated)?;
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if ihl < IPV4_HEADER_LEN {
        return Err(WireError::Malformed);
    }
    let full = buf.get(..ihl).ok_or(WireError::Truncated)?;
    let total = usize::from(be16(h, 2)?);
    if total < ihl {
        return Err(WireError::BadLength);
    }
    if total > buf.len() {
        return Err(WireError::Truncated);
    }
    if checksum::fold(checksum::sum(full, 0)) != 0 {
        return Err(WireError::BadChecksum);
    }
    let frag = be16(h, 6)?;
    if frag & 0x2000 != 0 || frag & 0x1fff != 0 {
        return Err(WireError::Malformed);
    }
    Ok(IpInfo {
        src: IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15])),
        dst: IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19])),
        protocol: h[9],
        header_len: ihl,
        total_len: total,
        tos: h[1],
        ttl: h[8],
    })
}

fn parse_v6(buf: &[u8]) -> Result<IpInfo> {
    let h = buf.get(..IPV6_HEADER_LEN).ok_or(WireError::Truncated)?;
    let payload = usize::from(be16(h, 4)?);
    let total = IPV6_HEADER_LEN + payload;
    if total > buf.len() {
        return Err(WireError::Truncated);
    }
    let nh = h[6];
    if is_ipv6_extension(nh) {
        return Err(WireError::Malformed);
    }
    let mut s = [0u8; 16];
    let mut d = [0u8; 16];
    s.copy_from_slice(&h[8..24]);
    d.copy_from_slice(&h[24..40]);
    Ok(IpInfo {
        src: IpAddr::V6(Ipv6Addr::from(s)),
        dst: IpAddr::V6(Ipv6Addr::from(d)),
        protocol: nh,
        header_len: IPV6_HEADER_LEN,
        total_len: total,
        tos: ((h[0] & 0x0f) << 4) | (h[1] >> 4),
        ttl: h[7],
    })
}

/// Header length `emit` writes for this address family (20 or 40).
pub fn header_len(addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(_) => IPV4_HEADER_LEN,
        IpAddr::V6(_) => IPV6_HEADER_LEN,
    }
}

/// Writes an IPv4 header (no options, DF set, id 0, checksum filled) or an IPv6 header
/// (flow label 0) for `payload_len` bytes of upper-layer data; returns the header length.
/// Mixed address families are `Malformed`; a payload too long for the length field is
/// `BadLength`.
pub fn emit(
    buf: &mut [u8],
    src: IpAddr,
    dst: IpAddr,
    protocol: u8,
    payload_len: usize,
    tos: u8,
    ttl: u8,
) -> Result<usize> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = payload_len
                .checked_add(IPV4_HEADER_LEN)
                .and_then(|t| u16::try_from(t).ok())
                .ok_or(WireError::BadLength)?;
            let h = buf
                .get_mut(..IPV4_HEADER_LEN)
                .ok_or(WireError::BufferTooSmall)?;
            h[0] = 0x45;
            h[1] = tos;
            h[2..4].copy_from_slice(&total.to_be_bytes());
            h[4..6].copy_from_slice(&[0, 0]);
            h[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
            h[8] = ttl;
            h[9] = protocol;
            h[10..12].copy_from_slice(&[0, 0]);
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let c = checksum::fold(checksum::sum(h, 0));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            Ok(IPV4_HEADER_LEN)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let plen = u16::try_from(payload_len).map_err(|_| WireError::BadLength)?;
            let h = buf
                .get_mut(..IPV6_HEADER_LEN)
                .ok_or(WireError::BufferTooSmall)?;
            h[0] = 0x60 | (tos >> 4);
            h[1] = tos << 4;
            h[2] = 0;
            h[3] = 0;
            h[4..6].copy_from_slice(&plen.to_be_bytes());
            h[6] = protocol;
            h[7] = ttl;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            Ok(IPV6_HEADER_LEN)
        }
        _ => Err(WireError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_round_trip_and_trailing_bytes() {
        let mut buf = [0u8; 64];
        let n = emit(
            &mut buf,
            v4("198.19.0.1"),
            v4("198.19.0.2"),
            6,
            30,
            0x10,
            64,
        )
        .unwrap();
        assert_eq!(n, 20);
        // 50 bytes of datagram + 14 bytes of trailing padding in the buffer.
        let info = parse(&buf).unwrap();
        assert_eq!(info.src, v4("198.19.0.1"));
        assert_eq!(info.dst, v4("198.19.0.2"));
        assert_eq!(
            (info.protocol, info.header_len, info.total_len),
            (6, 20, 50)
        );
        assert_eq!((info.tos, info.ttl), (0x10, 64));
        assert_eq!(info.payload(&buf).len(), 30);
    }

    #[test]
    fn v4_errors() {
        let mut buf = [0u8; 40];
        emit(&mut buf, v4("1.2.3.4"), v4("5.6.7.8"), 6, 20, 0, 64).unwrap();
        assert_eq!(parse(&buf[..39]), Err(WireError::Truncated));
        assert_eq!(parse(&buf[..19]), Err(WireError::Truncated));
        let mut bad = buf;
        bad[8] ^= 1; // ttl changed, checksum stale
        assert_eq!(parse(&bad), Err(WireError::BadChecksum));
        let mut ihl = buf;
        ihl[0] = 0x44;
        assert_eq!(parse(&ihl), Err(WireError::Malformed));
        // Fragment: set MF and fix checksum.
        let mut frag = buf;
        frag[6] |= 0x20;
        frag[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::fold(checksum::sum(&frag[..20], 0));
        frag[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&frag), Err(WireError::Malformed));
        let mut ver = buf;
        ver[0] = 0x55;
        assert_eq!(parse(&ver), Err(WireError::BadVersion));
        assert_eq!(parse(&[]), Err(WireError::Truncated));
        assert_eq!(
            emit(&mut buf, v4("1.2.3.4"), v4("::1"), 6, 0, 0, 1),
            Err(WireError::Malformed)
        );
        assert_eq!(
            emit(&mut buf, v4("1.2.3.4"), v4("1.2.3.4"), 6, 65516, 0, 1),
            Err(WireError::BadLength)
        );
        assert_eq!(
            emit(&mut buf[..19], v4("1.2.3.4"), v4("1.2.3.4"), 6, 0, 0, 1),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn v6_round_trip_and_errors() {
        let mut buf = [0u8; 60];
        let n = emit(&mut buf, v4("fe80::1"), v4("2001:db8::2"), 6, 20, 0xab, 255).unwrap();
        assert_eq!(n, 40);
        let info = parse(&buf).unwrap();
        assert_eq!((info.src, info.dst), (v4("fe80::1"), v4("2001:db8::2")));
        assert_eq!(
            (info.protocol, info.header_len, info.total_len),
            (6, 40, 60)
        );
        assert_eq!((info.tos, info.ttl), (0xab, 255));
        assert_eq!(parse(&buf[..59]), Err(WireError::Truncated));
        let mut ext = buf;
        ext[6] = 0; // hop-by-hop
        assert_eq!(parse(&ext), Err(WireError::Malformed));
    }
}
