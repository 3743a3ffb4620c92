//! Segmentation and checksum offload, done in software: what a TUN device with
//! `IFF_VNET_HDR` does to the super-segments and partial checksums the stack hands it
//! ([`TxPacket`]). The driver uses it to write what the wire will carry into pcap captures,
//! to send on devices without offload, and the simulated network uses it so tests exercise
//! TSO without a kernel.
//!
//! Semantics follow Linux's `tcp_gso_segment`: every segment gets the super-segment's IP and
//! TCP headers and options; sequence numbers advance by the payload before it; FIN and PSH
//! stay on the last segment only, CWR on the first only; IPv4 identifiers increment per
//! segment; lengths and checksums are recomputed.
//!
//! Nothing here panics on any input; a packet it cannot make sense of is passed on as it is
//! (`Err(Malformed)` is returned so the caller can count it).

use crate::stack::TxPacket;
use crate::wire::{checksum, ip, WireError};

const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Finish `pkt` (the first `meta.len` bytes of a packet from `poll_transmit_offload`) as a
/// device would: split a super-segment into `meta.gso_size`-byte segments and complete
/// partial checksums. `out` gets each finished packet in turn (built in `scratch`, which
/// must hold the headers plus one segment; 65536 bytes always do). A packet that needs
/// nothing goes to `out` as it is. Returns the number of packets given to `out`.
pub fn finish(
    pkt: &[u8],
    meta: &TxPacket,
    scratch: &mut [u8],
    mut out: impl FnMut(&[u8]),
) -> Result<usize, WireError> {
    let pkt = pkt.get(..meta.len).ok_or(WireError::Truncated)?;
    if meta.gso_size == 0 && !meta.csum_partial {
        out(pkt);
        return Ok(1);
    }
    let info = ip::parse(pkt)?;
    if info.protocol != ip::PROTO_TCP || info.total_len != pkt.len() {
        return Err(WireError::Malformed);
    }
    let l4 = info.header_len;
    let thl = usize::from(pkt.get(l4 + 12).ok_or(WireError::Truncated)? >> 4) * 4;
    let hdr = l4 + thl;
    if thl < 20 || hdr > pkt.len() {
        return Err(WireError::Malformed);
    }
    let payload = &pkt[hdr..];
    let seg = if meta.gso_size == 0 {
        payload.len().max(1)
    } else {
        usize::from(meta.gso_size)
    };
    let n = payload.len().div_ceil(seg).max(1);
    if scratch.len() < hdr + seg.min(payload.len()) {
        return Err(WireError::BufferTooSmall);
    }
    let seq0 = u32::from_be_bytes([pkt[l4 + 4], pkt[l4 + 5], pkt[l4 + 6], pkt[l4 + 7]]);
    let flags0 = pkt[l4 + 13];
    let id0 = u16::from_be_bytes([pkt[4], pkt[5]]);
    for k in 0..n {
        let start = k * seg;
        let chunk = payload
            .get(start..(start + seg).min(payload.len()))
            .unwrap_or(&[]);
        let total = hdr + chunk.len();
        let b = &mut scratch[..total];
        b[..hdr].copy_from_slice(&pkt[..hdr]);
        b[hdr..].copy_from_slice(chunk);
        // TCP: sequence number, flags, checksum
        let seq = seq0.wrapping_add(start as u32);
        b[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
        let mut fl = flags0;
        if k + 1 < n {
            fl &= !(TCP_FIN | TCP_PSH);
        }
        if k > 0 {
            fl &= !TCP_CWR;
        }
        b[l4 + 13] = fl;
        // IP: length (and identifier and header checksum for IPv4)
        if info.src.is_ipv4() {
            b[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            b[4..6].copy_from_slice(&id0.wrapping_add(k as u16).to_be_bytes());
            b[10..12].copy_from_slice(&[0, 0]);
            let c = checksum::fold(checksum::sum(&b[..l4], 0));
            b[10..12].copy_from_slice(&c.to_be_bytes());
        } else {
            b[4..6].copy_from_slice(&((total - l4) as u16).to_be_bytes());
        }
        b[l4 + 16..l4 + 18].copy_from_slice(&[0, 0]);
        let tcp_len = (total - l4) as u32;
        let ph = checksum::pseudo_header(info.src, info.dst, ip::PROTO_TCP, tcp_len);
        let c = checksum::fold(checksum::sum(&b[l4..], ph));
        b[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        out(b);
    }
    Ok(n)
}

/// Complete a TCP checksum left partial (`csum_start` = the TCP header, the field holds the
/// pseudo-header sum), in place, as a receiving device would; for pcap captures of packets
/// a local sender handed over with `VIRTIO_NET_HDR_F_NEEDS_CSUM`. Anything that is not a
/// TCP packet with that layout is left alone.
pub fn complete_rx_checksum(pkt: &mut [u8], csum_start: usize, csum_offset: usize) {
    let at = csum_start + csum_offset;
    if at + 2 > pkt.len() || csum_start > pkt.len() {
        return;
    }
    // the field holds the pseudo-header sum: summing everything from csum_start with it
    // in place yields the full sum, whose complement is the checksum
    let c = checksum::fold(checksum::sum(&pkt[csum_start..], 0));
    pkt[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::TcpPacket;
    use core::net::IpAddr;

    /// A TCP packet with `payload` built by the wire layer, checksum partial or full.
    fn packet(src: &str, dst: &str, payload: &[u8], flags: u8, partial: bool) -> Vec<u8> {
        let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let l4 = ip::header_len(s);
        let opts = [1u8, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]; // NOP NOP TS
        let tcp_len = 20 + opts.len() + payload.len();
        let mut b = vec![0u8; l4 + tcp_len];
        ip::emit(&mut b, s, d, ip::PROTO_TCP, tcp_len, 0, 64).unwrap();
        let h = crate::wire::tcp::TcpHeader {
            src_port: 1000,
            dst_port: 2000,
            seq: 0xffff_ff00,
            ack: 7,
            flags,
            window: 100,
            urgent: 0,
        };
        h.emit(&mut b[l4..], opts.len()).unwrap();
        b[l4 + 20..l4 + 32].copy_from_slice(&opts);
        b[l4 + 32..].copy_from_slice(payload);
        let mut t = TcpPacket::new_checked(&mut b[l4..]).unwrap();
        if partial {
            t.fill_partial_checksum(s, d);
        } else {
            t.fill_checksum(s, d);
        }
        b
    }

    fn meta(b: &[u8], gso: u16, partial: bool, v6: bool) -> TxPacket {
        let l4 = if v6 { 40 } else { 20 };
        TxPacket {
            len: b.len(),
            gso_size: gso,
            csum_partial: partial,
            l4_offset: l4,
            hdr_len: l4 + 32,
            ipv6: v6,
            ..TxPacket::default()
        }
    }

    fn check_split(src: &str, dst: &str) {
        let payload: Vec<u8> = (0..3500u32).map(|i| (i * 7) as u8).collect();
        let v6 = src.contains(':');
        let b = packet(src, dst, &payload, 0x18 | TCP_FIN | TCP_CWR, true);
        let m = meta(&b, 1000, true, v6);
        let mut scratch = vec![0u8; 65536];
        let mut segs: Vec<Vec<u8>> = Vec::new();
        let n = finish(&b, &m, &mut scratch, |p| segs.push(p.to_vec())).unwrap();
        assert_eq!(n, 4);
        let (s, d): (IpAddr, IpAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let mut joined = Vec::new();
        for (k, p) in segs.iter().enumerate() {
            let info = ip::parse(p).unwrap();
            assert_eq!(info.total_len, p.len());
            if !v6 {
                assert_eq!(
                    checksum::fold(checksum::sum(&p[..20], 0)),
                    0,
                    "IPv4 header sum"
                );
                assert_eq!(u16::from_be_bytes([p[4], p[5]]), k as u16);
            }
            let t = TcpPacket::new_checked(&p[info.header_len..]).unwrap();
            assert!(t.verify_checksum(s, d), "segment {k} checksum");
            assert_eq!(t.seq_number(), 0xffff_ff00u32.wrapping_add(1000 * k as u32));
            assert_eq!(t.options().len(), 12, "options copied");
            let last = k == 3;
            assert_eq!(t.flags() & TCP_FIN != 0, last);
            assert_eq!(t.flags() & TCP_PSH != 0, last);
            assert_eq!(t.flags() & TCP_CWR != 0, k == 0);
            assert_eq!(t.payload().len(), if last { 500 } else { 1000 });
            joined.extend_from_slice(t.payload());
        }
        assert_eq!(joined, payload);
    }

    #[test]
    fn splits_v4_super_segment_like_the_kernel() {
        check_split("198.18.1.2", "198.18.1.1");
    }

    #[test]
    fn splits_v6_super_segment_like_the_kernel() {
        check_split("2001:2::2", "2001:2::1");
    }

    #[test]
    fn completes_partial_checksum_of_a_single_segment() {
        let full = packet("198.18.1.2", "198.18.1.1", b"hello world", 0x18, false);
        let part = packet("198.18.1.2", "198.18.1.1", b"hello world", 0x18, true);
        assert_ne!(full, part);
        let mut scratch = vec![0u8; 2048];
        let mut got = Vec::new();
        finish(&part, &meta(&part, 0, true, false), &mut scratch, |p| {
            got = p.to_vec()
        })
        .unwrap();
        assert_eq!(got, full);
        // receive side: completing in place gives the same bytes
        let mut rx = part.clone();
        complete_rx_checksum(&mut rx, 20, 16);
        assert_eq!(rx, full);
    }

    #[test]
    fn plain_packets_pass_and_garbage_is_an_error() {
        let full = packet("198.18.1.2", "198.18.1.1", b"x", 0x10, false);
        let mut scratch = vec![0u8; 2048];
        let mut seen = 0;
        finish(&full, &TxPacket::plain(full.len()), &mut scratch, |p| {
            assert_eq!(p, &full[..]);
            seen += 1
        })
        .unwrap();
        assert_eq!(seen, 1);
        let junk = [0x45u8; 30];
        let m = TxPacket {
            len: 30,
            gso_size: 10,
            csum_partial: true,
            ..TxPacket::default()
        };
        assert!(finish(&junk, &m, &mut scratch, |_| panic!("no output")).is_err());
        let m = TxPacket { len: 300, ..m };
        assert!(finish(&junk, &m, &mut scratch, |_| panic!("no output")).is_err());
        // a scratch buffer too small for one segment is an error, never a panic
        let b = packet("198.18.1.2", "198.18.1.1", &[0u8; 3000], 0x10, true);
        let m = meta(&b, 1000, true, false);
        assert!(finish(&b, &m, &mut [0u8; 100], |_| panic!("no output")).is_err());
        let mut short = b.clone();
        complete_rx_checksum(&mut short[..30], 20, 16);
    }
}
