//! ICMP "fragmentation needed" (RFC 792, RFC 1191) and ICMPv6 "packet too big" (RFC 4443,
//! RFC 8201): the messages path-MTU discovery reacts to. Zero-copy: the quoted header is read
//! in place. Never panics; other ICMP messages parse to `Ok(None)`.

use super::ip::IpInfo;
use super::{checksum, Result, WireError};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol number of ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IPv6 next-header value of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;
const IPPROTO_TCP: u8 = 6;

/// A "packet too big" report about one of our TCP segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooBig {
    /// The next-hop MTU the router reported (0 from pre-RFC 1191 IPv4 routers).
    pub mtu: u32,
    /// Source of the quoted packet (one of our addresses).
    pub src: IpAddr,
    /// Destination of the quoted packet (the peer).
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Sequence number of the quoted segment.
    pub seq: u32,
}

fn be16(b: &[u8], at: usize) -> Result<u16> {
    b.get(at..at + 2)
        .map(|x| u16::from_be_bytes([x[0], x[1]]))
        .ok_or(WireError::Truncated)
}

fn be32(b: &[u8], at: usize) -> Result<u32> {
    b.get(at..at + 4)
        .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
        .ok_or(WireError::Truncated)
}

/// Parse the ICMP / ICMPv6 message carried by `packet` (whose IP header is `info`).
/// `Ok(Some(..))` for a valid "packet too big" quoting a TCP segment, `Ok(None)` for any
/// other ICMP message, `Err` for a malformed one (bad checksum, truncated quote, a quote
/// that is not TCP of the same IP version).
pub fn parse_too_big(info: &IpInfo, packet: &[u8]) -> Result<Option<TooBig>> {
    let msg = packet
        .get(info.header_len..info.total_len)
        .ok_or(WireError::Truncated)?;
    if msg.len() < 8 {
        return Err(WireError::Truncated);
    }
    let v4 = info.src.is_ipv4();
    let (ty, code) = (msg[0], msg[1]);
    let mtu = if v4 {
        if info.protocol != IPPROTO_ICMP {
            return Ok(None);
        }
        if checksum::fold(checksum::sum(msg, 0)) != 0 {
            return Err(WireError::BadChecksum);
        }
        if ty != 3 || code != 4 {
            return Ok(None);
        }
        u32::from(be16(msg, 6)?)
    } else {
        if info.protocol != IPPROTO_ICMPV6 {
            return Ok(None);
        }
        let ph = checksum::pseudo_header(info.src, info.dst, IPPROTO_ICMPV6, msg.len() as u32);
        if checksum::fold(checksum::sum(msg, ph)) != 0 {
            return Err(WireError::BadChecksum);
        }
        if ty != 2 || code != 0 {
            return Ok(None);
        }
        be32(msg, 4)?
    };
    let q = &msg[8..];
    let (src, dst, tcp) = if v4 {
        let first = *q.first().ok_or(WireError::Truncated)?;
        if first >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < 20 || q.len() < ihl {
            return Err(WireError::Truncated);
        }
        if q[9] != IPPROTO_TCP {
            return Err(WireError::Malformed);
        }
        let src = Ipv4Addr::new(q[12], q[13], q[14], q[15]);
        let dst = Ipv4Addr::new(q[16], q[17], q[18], q[19]);
        (IpAddr::V4(src), IpAddr::V4(dst), &q[ihl..])
    } else {
        if q.len() < 40 {
            return Err(WireError::Truncated);
        }
        if q[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        if q[6] != IPPROTO_TCP {
            return Err(WireError::Malformed);
        }
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s.copy_from_slice(&q[8..24]);
        d.copy_from_slice(&q[24..40]);
        (
            IpAddr::V6(Ipv6Addr::from(s)),
            IpAddr::V6(Ipv6Addr::from(d)),
            &q[40..],
        )
    };
    // RFC 792: the quote holds at least the first 8 bytes of the TCP header
    Ok(Some(TooBig {
        mtu,
        src,
        dst,
        src_port: be16(tcp, 0)?,
        dst_port: be16(tcp, 2)?,
        seq: be32(tcp, 4)?,
    }))
}

/// Write an ICMP "fragmentation needed" (IPv4) or ICMPv6 "packet too big" from `router`
/// about `quoted` (an IP packet we could not forward) into `buf`; returns its length. For
/// simulators and tests (a router on a simulated path).
pub fn emit_too_big(buf: &mut [u8], router: IpAddr, quoted: &[u8], mtu: u32) -> Result<usize> {
    let orig = super::ip::parse(quoted)?;
    let v4 = orig.src.is_ipv4();
    if router.is_ipv4() != v4 {
        return Err(WireError::Malformed);
    }
    let ip_len = super::ip::header_len(router);
    // IPv4: header + 8 bytes is the minimum; quote the IP and TCP headers (up to 60 bytes
    // of TCP). IPv6: as much as fits in 1280 bytes.
    let quote_len = if v4 {
        quoted.len().min(orig.header_len + 60)
    } else {
        quoted.len().min(1280 - 40 - 8)
    };
    let msg_len = 8 + quote_len;
    let total = ip_len + msg_len;
    if buf.len() < total {
        return Err(WireError::BufferTooSmall);
    }
    let proto = if v4 { IPPROTO_ICMP } else { IPPROTO_ICMPV6 };
    super::ip::emit(buf, router, orig.src, proto, msg_len, 0, 64)?;
    let m = &mut buf[ip_len..total];
    m[..8].fill(0);
    if v4 {
        m[0] = 3;
        m[1] = 4;
        m[6..8].copy_from_slice(&(mtu.min(65535) as u16).to_be_bytes());
    } else {
        m[0] = 2;
        m[1] = 0;
        m[4..8].copy_from_slice(&mtu.to_be_bytes());
    }
    m[8..].copy_from_slice(&quoted[..quote_len]);
    let init = if v4 {
        0
    } else {
        checksum::pseudo_header(router, orig.src, proto, msg_len as u32)
    };
    let c = checksum::fold(checksum::sum(m, init));
    m[2..4].copy_from_slice(&c.to_be_bytes());
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ip;

    fn tcp_packet(src: IpAddr, dst: IpAddr, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; ip::header_len(src) + len];
        let h = ip::emit(&mut b, src, dst, IPPROTO_TCP, len, 0, 64).unwrap();
        b[h..h + 2].copy_from_slice(&40000u16.to_be_bytes());
        b[h + 2..h + 4].copy_from_slice(&5201u16.to_be_bytes());
        b[h + 4..h + 8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        b
    }

    #[test]
    fn too_big_round_trips_v4_and_v6() {
        for (us, peer, router) in [
            ("198.18.1.2", "198.18.2.1", "198.18.9.1"),
            ("2001:2::2", "2001:2:0:1::1", "2001:2:0:9::1"),
        ] {
            let (us, peer, router): (IpAddr, IpAddr, IpAddr) = (
                us.parse().unwrap(),
                peer.parse().unwrap(),
                router.parse().unwrap(),
            );
            let pkt = tcp_packet(us, peer, 1480);
            let mut out = vec![0u8; 1500];
            let n = emit_too_big(&mut out, router, &pkt, 1280).unwrap();
            let info = ip::parse(&out[..n]).unwrap();
            assert_eq!(info.dst, us);
            let tb = parse_too_big(&info, &out[..n]).unwrap().unwrap();
            assert_eq!(
                tb,
                TooBig {
                    mtu: 1280,
                    src: us,
                    dst: peer,
                    src_port: 40000,
                    dst_port: 5201,
                    seq: 0xdead_beef
                }
            );
            // a flipped bit anywhere in the message fails the checksum
            let mut bad = out[..n].to_vec();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            let info = ip::parse(&bad).unwrap();
            assert_eq!(parse_too_big(&info, &bad), Err(WireError::BadChecksum));
        }
    }

    #[test]
    fn other_icmp_and_truncated_quotes() {
        let us: IpAddr = "198.18.1.2".parse().unwrap();
        let peer: IpAddr = "198.18.2.1".parse().unwrap();
        let pkt = tcp_packet(us, peer, 100);
        let mut out = vec![0u8; 1500];
        let n = emit_too_big(&mut out, peer, &pkt, 1000).unwrap();
        // echo request (type 8): not a too-big
        let mut echo = out[..n].to_vec();
        echo[20] = 8;
        echo[21] = 0;
        echo[22..24].fill(0);
        let c = checksum::fold(checksum::sum(&echo[20..], 0));
        echo[22..24].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse_too_big(&ip::parse(&echo).unwrap(), &echo), Ok(None));
        // every truncation of the quote is an error or a valid parse, never a panic
        for cut in 20..n {
            let mut t = out[..cut].to_vec();
            let total = cut as u16;
            t[2..4].copy_from_slice(&total.to_be_bytes());
            t[10..12].fill(0);
            let c = checksum::fold(checksum::sum(&t[..20], 0));
            t[10..12].copy_from_slice(&c.to_be_bytes());
            if let Ok(info) = ip::parse(&t) {
                let _ = parse_too_big(&info, &t);
            }
        }
    }
}
