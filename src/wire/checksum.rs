//! RFC 1071 internet checksum helpers.
//!
//! `sum` accumulates a ones-complement sum (it may be chained: pass the result of one call as
//! `initial` to the next, as long as every chunk but the last has an even length); `fold`
//! turns a partial sum into the final, complemented 16-bit checksum. A buffer that contains
//! a correct checksum folds to zero. No function here can panic.

use core::net::IpAddr;

/// Ones-complement sum of `data` taken as big-endian 16-bit words (an odd trailing byte is
/// padded with a zero low byte), added to `initial`. Processes 8 bytes at a time.
pub fn sum(data: &[u8], initial: u32) -> u32 {
    let mut acc: u64 = u64::from(initial);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        // Ones-complement addition of 64-bit words (end-around carry) is equivalent to the
        // 16-bit sum after folding (RFC 1071 section 2(B)).
        let (s, carry) = acc.overflowing_add(u64::from_be_bytes(w));
        acc = s + u64::from(carry);
    }
    let rest = chunks.remainder();
    let mut tail: u64 = 0;
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        // chunks_exact(2): p has exactly two bytes.
        tail += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        tail += u64::from(*last) << 8;
    }
    let (s, carry) = acc.overflowing_add(tail);
    acc = s + u64::from(carry);
    // Fold 64 -> 32 bits with end-around carry.
    let mut folded = (acc >> 32) + (acc & 0xffff_ffff);
    folded = (folded >> 32) + (folded & 0xffff_ffff);
    folded as u32
}

/// Folds a partial sum to 16 bits and complements it: the value to put in a checksum field.
/// Over data that includes a correct checksum field the result is 0.
pub fn fold(sum: u32) -> u16 {
    let mut s = (sum >> 16) + (sum & 0xffff);
    s = (s >> 16) + (s & 0xffff);
    !(s as u16)
}

/// Partial sum of the TCP/UDP pseudo-header (RFC 9293 section 3.1, RFC 8200 section 8.1).
///
/// Both addresses must be of the same family; for mixed families this returns 0 (a sum that
/// will not verify against any real packet), never panics. `len` is the upper-layer length.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, len: u32) -> u32 {
    let s = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let a = sum(&s.octets(), 0);
            sum(&d.octets(), a)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let a = sum(&s.octets(), 0);
            sum(&d.octets(), a)
        }
        _ => return 0,
    };
    // protocol and length as 16-bit words; 32-bit length split in two words.
    let extra = u64::from(protocol) + u64::from(len >> 16) + u64::from(len & 0xffff);
    let t = u64::from(s) + extra;
    ((t >> 32) + (t & 0xffff_ffff)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward 16-bit reference implementation.
    fn reference(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            s += u32::from(u16::from_be_bytes([data[i], data[i + 1]]));
            s = (s & 0xffff) + (s >> 16);
            i += 2;
        }
        if data.len() % 2 == 1 {
            s += u32::from(data[data.len() - 1]) << 8;
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: words 0001 f203 f4f5 f6f7 sum to ddf2 (before complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data, 0)), !0xddf2);
    }

    #[test]
    fn odd_lengths_and_chaining() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1001).collect();
        for n in 0..data.len() {
            assert_eq!(fold(sum(&data[..n], 0)), reference(&data[..n]), "len {n}");
        }
        // chaining at an even split point
        let a = sum(&data[..500], 0);
        assert_eq!(fold(sum(&data[500..], a)), reference(&data));
    }

    #[test]
    fn all_ones_does_not_overflow() {
        let data = vec![0xffu8; 70_001];
        assert_eq!(fold(sum(&data, 0xffff_ffff)), reference(&data));
    }

    #[test]
    fn verifies_to_zero() {
        let mut data = vec![0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11];
        data.extend_from_slice(&[0, 0, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7]);
        let c = fold(sum(&data, 0));
        assert_eq!(c, 0xb861); // well-known example IPv4 header
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(fold(sum(&data, 0)), 0);
    }

    #[test]
    fn pseudo_header_mixed_is_zero() {
        let a: IpAddr = "198.19.0.1".parse().unwrap();
        let b: IpAddr = "::1".parse().unwrap();
        assert_eq!(pseudo_header(a, b, 6, 20), 0);
        let c: IpAddr = "198.19.0.2".parse().unwrap();
        // c613 + 0001 + c613 + 0002 + 0006 + 0014 = 1_8c43, folded 8c44
        assert_eq!(fold(pseudo_header(a, c, 6, 20)), !0x8c44);
    }
}
