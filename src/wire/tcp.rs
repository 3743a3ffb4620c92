//! TCP header (RFC 9293 section 3.1): a zero-copy view and an emitter for the fixed header.
//!
//! No-panic contract: `TcpPacket::new_checked` accepts any buffer and fails with a typed error
//! unless `20 <= data offset * 4 <= buf.len()`; after that no getter or setter panics. Even
//! after a `set_header_len` that breaks that invariant, `options`/`payload` return empty
//! slices rather than panicking. The view's buffer is the whole TCP segment (header and
//! payload, nothing after it): the checksum covers all of it.

use super::{checksum, Result, WireError};
use core::net::IpAddr;

/// Length of the fixed TCP header.
pub const HEADER_LEN: usize = 20;
/// Most option bytes a TCP header can carry.
pub const MAX_OPTIONS_LEN: usize = 40;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ: Range<usize> = 4..8;
    pub const ACK: Range<usize> = 8..12;
    pub const OFFSET: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WINDOW: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

/// A view over a TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer after checking that the fixed header and the options fit.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hl = usize::from(b[field::OFFSET] >> 4) * 4;
        if hl < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if hl > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(TcpPacket { buffer })
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn u16_at(&self, r: core::ops::Range<usize>) -> u16 {
        match self.b().get(r) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => 0,
        }
    }

    fn u32_at(&self, r: core::ops::Range<usize>) -> u32 {
        match self.b().get(r) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => 0,
        }
    }

    pub fn src_port(&self) -> u16 {
        self.u16_at(field::SRC_PORT)
    }
    pub fn dst_port(&self) -> u16 {
        self.u16_at(field::DST_PORT)
    }
    pub fn seq_number(&self) -> u32 {
        self.u32_at(field::SEQ)
    }
    pub fn ack_number(&self) -> u32 {
        self.u32_at(field::ACK)
    }
    /// Data offset in bytes (20..=60).
    pub fn header_len(&self) -> usize {
        self.b()
            .get(field::OFFSET)
            .map_or(0, |o| usize::from(o >> 4) * 4)
    }
    /// The low 8 flag bits (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20, ECE 0x40, CWR 0x80).
    pub fn flags(&self) -> u8 {
        self.b().get(field::FLAGS).copied().unwrap_or(0)
    }
    pub fn window_len(&self) -> u16 {
        self.u16_at(field::WINDOW)
    }
    pub fn checksum(&self) -> u16 {
        self.u16_at(field::CHECKSUM)
    }
    pub fn urgent_at(&self) -> u16 {
        self.u16_at(field::URGENT)
    }
    /// The option bytes (between the fixed header and the data offset).
    pub fn options(&self) -> &[u8] {
        self.b().get(HEADER_LEN..self.header_len()).unwrap_or(&[])
    }
    /// The payload (after the data offset, to the end of the buffer).
    pub fn payload(&self) -> &[u8] {
        self.b().get(self.header_len()..).unwrap_or(&[])
    }
    /// The fixed-header fields as an owned value.
    pub fn header(&self) -> TcpHeader {
        TcpHeader {
            src_port: self.src_port(),
            dst_port: self.dst_port(),
            seq: self.seq_number(),
            ack: self.ack_number(),
            flags: self.flags(),
            window: self.window_len(),
            urgent: self.urgent_at(),
        }
    }
    /// Verifies the checksum over the pseudo-header and the whole buffer.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let b = self.b();
        let Ok(len) = u32::try_from(b.len()) else {
            return false;
        };
        let ph = checksum::pseudo_header(src, dst, super::ip::PROTO_TCP, len);
        ph != 0 && checksum::fold(checksum::sum(b, ph)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn bm(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
    fn set_u16(&mut self, r: core::ops::Range<usize>, v: u16) {
        if let Some(s) = self.bm().get_mut(r) {
            s.copy_from_slice(&v.to_be_bytes());
        }
    }
    fn set_u32(&mut self, r: core::ops::Range<usize>, v: u32) {
        if let Some(s) = self.bm().get_mut(r) {
            s.copy_from_slice(&v.to_be_bytes());
        }
    }
    pub fn set_src_port(&mut self, v: u16) {
        self.set_u16(field::SRC_PORT, v)
    }
    pub fn set_dst_port(&mut self, v: u16) {
        self.set_u16(field::DST_PORT, v)
    }
    pub fn set_seq_number(&mut self, v: u32) {
        self.set_u32(field::SEQ, v)
    }
    pub fn set_ack_number(&mut self, v: u32) {
        self.set_u32(field::ACK, v)
    }
    /// Sets the data offset; `len` is rounded down to a multiple of 4 and clamped to 20..=60.
    pub fn set_header_len(&mut self, len: usize) {
        let words = (len.clamp(HEADER_LEN, HEADER_LEN + MAX_OPTIONS_LEN) / 4) as u8;
        if let Some(o) = self.bm().get_mut(field::OFFSET) {
            *o = (words << 4) | (*o & 0x0f);
        }
    }
    pub fn set_flags(&mut self, v: u8) {
        if let Some(f) = self.bm().get_mut(field::FLAGS) {
            *f = v;
        }
    }
    pub fn set_window_len(&mut self, v: u16) {
        self.set_u16(field::WINDOW, v)
    }
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16(field::CHECKSUM, v)
    }
    pub fn set_urgent_at(&mut self, v: u16) {
        self.set_u16(field::URGENT, v)
    }
    /// Mutable option bytes.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.bm().get_mut(HEADER_LEN..hl).unwrap_or(&mut [])
    }
    /// Mutable payload bytes.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        self.bm().get_mut(hl..).unwrap_or(&mut [])
    }
    /// Computes and stores the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let b = self.b();
        let len = u32::try_from(b.len()).unwrap_or(u32::MAX);
        let ph = checksum::pseudo_header(src, dst, super::ip::PROTO_TCP, len);
        let c = checksum::fold(checksum::sum(b, ph));
        self.set_checksum(c);
    }

    /// Stores the partial checksum a checksum-offloading device completes (Linux's
    /// CHECKSUM_PARTIAL): the folded, uncomplemented pseudo-header sum for this length; the
    /// device adds the header and payload. Cheaper than [`Self::fill_checksum`] by a pass
    /// over the payload.
    pub fn fill_partial_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        let len = u32::try_from(self.b().len()).unwrap_or(u32::MAX);
        let ph = checksum::pseudo_header(src, dst, super::ip::PROTO_TCP, len);
        self.set_checksum(!checksum::fold(ph));
    }
}

/// The fixed TCP header fields.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub urgent: u16,
}

impl TcpHeader {
    /// Writes the 20-byte fixed header with a data offset covering `options_len` option bytes
    /// (a multiple of 4, at most 40, else `BadLength`); returns `20 + options_len`. The
    /// checksum is left 0: write options and payload in place, then `fill_checksum`.
    pub fn emit(&self, buf: &mut [u8], options_len: usize) -> Result<usize> {
        if options_len % 4 != 0 || options_len > MAX_OPTIONS_LEN {
            return Err(WireError::BadLength);
        }
        let total = HEADER_LEN + options_len;
        if buf.len() < total {
            return Err(WireError::BufferTooSmall);
        }
        let h = buf.get_mut(..HEADER_LEN).ok_or(WireError::BufferTooSmall)?;
        h[field::SRC_PORT].copy_from_slice(&self.src_port.to_be_bytes());
        h[field::DST_PORT].copy_from_slice(&self.dst_port.to_be_bytes());
        h[field::SEQ].copy_from_slice(&self.seq.to_be_bytes());
        h[field::ACK].copy_from_slice(&self.ack.to_be_bytes());
        h[field::OFFSET] = ((total / 4) as u8) << 4;
        h[field::FLAGS] = self.flags;
        h[field::WINDOW].copy_from_slice(&self.window.to_be_bytes());
        h[field::CHECKSUM].copy_from_slice(&[0, 0]);
        h[field::URGENT].copy_from_slice(&self.urgent.to_be_bytes());
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr() -> TcpHeader {
        TcpHeader {
            src_port: 40000,
            dst_port: 80,
            seq: 0xdead_beef,
            ack: 0x0102_0304,
            flags: 0x12,
            window: 65535,
            urgent: 7,
        }
    }

    #[test]
    fn emit_and_view() {
        let mut buf = [0u8; 20 + 8 + 5];
        assert_eq!(hdr().emit(&mut buf, 8), Ok(28));
        buf[20..28].copy_from_slice(&[1, 1, 1, 1, 1, 1, 1, 0]);
        buf[28..].copy_from_slice(b"hello");
        let mut p = TcpPacket::new_checked(&mut buf[..]).unwrap();
        assert_eq!(p.header(), hdr());
        assert_eq!(p.header_len(), 28);
        assert_eq!(p.options(), &[1, 1, 1, 1, 1, 1, 1, 0]);
        assert_eq!(p.payload(), b"hello");
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(!p.verify_checksum(a, b));
        p.fill_checksum(a, b);
        assert!(p.verify_checksum(a, b));
        assert!(!p.verify_checksum(b, b));
        p.payload_mut()[0] = b'j';
        assert!(!p.verify_checksum(a, b));
        p.set_seq_number(5);
        p.set_flags(0x10);
        p.set_window_len(9);
        assert_eq!((p.seq_number(), p.flags(), p.window_len()), (5, 0x10, 9));
        p.options_mut()[7] = 1;
        assert_eq!(p.options()[7], 1);
        // A header length beyond the buffer must not make accessors panic.
        p.set_header_len(60);
        assert_eq!(p.options(), &[] as &[u8]);
        assert_eq!(p.payload(), &[] as &[u8]);
    }

    #[test]
    fn checked_errors() {
        assert_eq!(
            TcpPacket::new_checked(&[0u8; 19][..]),
            Err(WireError::Truncated)
        );
        let mut b = [0u8; 24];
        b[12] = 0x40;
        assert_eq!(TcpPacket::new_checked(&b[..]), Err(WireError::BadLength));
        b[12] = 0x60;
        assert_eq!(
            TcpPacket::new_checked(&b[..]),
            Ok(TcpPacket { buffer: &b[..] })
        );
        b[12] = 0x70;
        assert_eq!(TcpPacket::new_checked(&b[..]), Err(WireError::Truncated));
        assert_eq!(hdr().emit(&mut [0u8; 60], 6), Err(WireError::BadLength));
        assert_eq!(hdr().emit(&mut [0u8; 64], 44), Err(WireError::BadLength));
        assert_eq!(
            hdr().emit(&mut [0u8; 23], 4),
            Err(WireError::BufferTooSmall)
        );
    }
}
