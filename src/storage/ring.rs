//! Stream buffers addressed by absolute 64-bit offsets (data sequence numbers).
//!
//! Both allocate once, at construction, and never panic on any offset.

use super::RangeSet;

/// Most out-of-order ranges a receive buffer tracks.
pub const MAX_RANGES: usize = 64;

/// The bytes of an outgoing stream from `start()` (oldest byte not yet released) to `end()`.
#[derive(Clone, Debug)]
pub struct SendBuffer {
    buf: Vec<u8>,
    start: u64,
    len: usize,
}

impl SendBuffer {
    /// A buffer of `capacity` bytes whose first byte will have offset `start`.
    pub fn new(capacity: usize, start: u64) -> Self {
        SendBuffer { buf: vec![0; capacity.max(1)], start, len: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Offset of the oldest byte held.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Offset one past the newest byte.
    pub fn end(&self) -> u64 {
        self.start + self.len as u64
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room for more bytes.
    pub fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    fn pos(&self, offset: u64) -> usize {
        (offset % self.buf.len() as u64) as usize
    }

    /// Append as much of `data` as fits; returns how much.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        let mut done = 0;
        while done < n {
            let p = self.pos(self.end());
            let chunk = (n - done).min(self.buf.len() - p);
            self.buf[p..p + chunk].copy_from_slice(&data[done..done + chunk]);
            done += chunk;
            self.len += chunk;
        }
        n
    }

    /// Copy bytes from `offset` into `dst`; returns how many (0 if `offset` is not held).
    pub fn copy_out(&self, offset: u64, dst: &mut [u8]) -> usize {
        if offset < self.start || offset >= self.end() {
            return 0;
        }
        let n = dst.len().min((self.end() - offset) as usize);
        let mut done = 0;
        while done < n {
            let p = self.pos(offset + done as u64);
            let chunk = (n - done).min(self.buf.len() - p);
            dst[done..done + chunk].copy_from_slice(&self.buf[p..p + chunk]);
            done += chunk;
        }
        n
    }

    /// Drop every byte below `upto` (clamped to what is held).
    pub fn release(&mut self, upto: u64) {
        if upto <= self.start {
            return;
        }
        let n = (upto.min(self.end()) - self.start) as usize;
        self.start += n as u64;
        self.len -= n;
    }
}

/// Reassembly buffer of an incoming stream: bytes may arrive out of order at any offset
/// inside the window; the application reads them in order from `read_offset()`.
#[derive(Clone, Debug)]
pub struct RecvBuffer {
    buf: Vec<u8>,
    /// Offset of the next byte the application reads.
    read: u64,
    /// Ranges received at or above `read`.
    ranges: RangeSet,
}

impl RecvBuffer {
    /// A buffer of `capacity` bytes whose first expected byte has offset `start`.
    pub fn new(capacity: usize, start: u64) -> Self {
        RecvBuffer { buf: vec![0; capacity.max(1)], read: start, ranges: RangeSet::with_capacity(MAX_RANGES) }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    fn pos(&self, offset: u64) -> usize {
        (offset % self.buf.len() as u64) as usize
    }

    /// Offset of the next byte to read.
    pub fn read_offset(&self) -> u64 {
        self.read
    }

    /// One past the last byte received in order.
    pub fn contiguous_end(&self) -> u64 {
        self.ranges.contiguous_end(self.read)
    }

    /// Bytes readable now.
    pub fn readable(&self) -> usize {
        (self.contiguous_end() - self.read) as usize
    }

    /// Space to advertise: from the in-order end to the end of the buffer.
    pub fn window(&self) -> u32 {
        let limit = self.read + self.buf.len() as u64;
        (limit - self.contiguous_end()).min(u64::from(u32::MAX)) as u32
    }

    /// Store `data` received at `offset`. Returns how many leading bytes of `data` are
    /// accepted: bytes already read or held count as accepted; bytes beyond the buffer are
    /// cut. If the range set is full and the data would need a new range, nothing is taken.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> usize {
        let limit = self.read + self.buf.len() as u64;
        let end = offset.saturating_add(data.len() as u64).min(limit);
        if end <= self.read {
            return data.len(); // all old: duplicates
        }
        let start = offset.max(self.read);
        if start >= end {
            return 0; // entirely beyond the window
        }
        if !self.ranges.insert(start..end) {
            return 0;
        }
        let mut o = start;
        while o < end {
            let p = self.pos(o);
            let chunk = ((end - o) as usize).min(self.buf.len() - p);
            let src = (o - offset) as usize;
            self.buf[p..p + chunk].copy_from_slice(&data[src..src + chunk]);
            o += chunk as u64;
        }
        (end - offset) as usize
    }

    /// The readable bytes as up to two slices.
    pub fn peek(&self) -> (&[u8], &[u8]) {
        let n = self.readable();
        let p = self.pos(self.read);
        let first = n.min(self.buf.len() - p);
        (&self.buf[p..p + first], &self.buf[..n - first])
    }

    /// Mark `n` readable bytes as read.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.readable());
        self.read += n as u64;
        self.ranges.remove_below(self.read);
    }

    /// Read in-order bytes into `dst`.
    pub fn read(&mut self, dst: &mut [u8]) -> usize {
        let (a, b) = self.peek();
        let n1 = a.len().min(dst.len());
        dst[..n1].copy_from_slice(&a[..n1]);
        let n2 = b.len().min(dst.len() - n1);
        dst[n1..n1 + n2].copy_from_slice(&b[..n2]);
        self.consume(n1 + n2);
        n1 + n2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn send_buffer_wraps() {
        let mut b = SendBuffer::new(8, 100);
        assert_eq!(b.push(b"abcdef"), 6);
        b.release(104);
        assert_eq!(b.push(b"ghijkl"), 6);
        assert_eq!(b.push(b"x"), 0);
        let mut out = [0u8; 8];
        assert_eq!(b.copy_out(104, &mut out), 8);
        assert_eq!(&out, b"efghijkl");
        assert_eq!(b.copy_out(103, &mut out), 0);
        assert_eq!(b.copy_out(112, &mut out), 0);
        b.release(1000);
        assert_eq!(b.start(), 112);
        assert!(b.is_empty());
    }

    #[test]
    fn recv_buffer_reassembles_and_limits() {
        let mut r = RecvBuffer::new(10, 50);
        assert_eq!(r.write_at(55, b"fgh"), 3);
        assert_eq!(r.readable(), 0);
        assert_eq!(r.write_at(50, b"abcde"), 5);
        assert_eq!(r.readable(), 8);
        assert_eq!(r.write_at(58, b"ijklmn"), 2); // cut at the buffer end
        let mut out = [0u8; 4];
        assert_eq!(r.read(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(r.write_at(40, b"old"), 3); // duplicates count as accepted
        assert_eq!(r.window(), 4);
        assert_eq!(r.write_at(100, b"far"), 0);
    }

    proptest! {
        #[test]
        fn recv_buffer_delivers_the_stream(
            chunks in proptest::collection::vec((0usize..400, 1usize..60), 1..80),
            reads in proptest::collection::vec(1usize..50, 1..40),
        ) {
            let stream: Vec<u8> = (0..512u32).map(|i| (i * 7 + 3) as u8).collect();
            let mut r = RecvBuffer::new(128, 1000);
            let mut got = Vec::new();
            let mut ri = 0;
            for (off, len) in chunks {
                let end = (off + len).min(stream.len());
                let n = r.write_at(1000 + off as u64, &stream[off..end]);
                prop_assert!(n <= end - off);
                let mut buf = vec![0u8; reads[ri % reads.len()]];
                ri += 1;
                let k = r.read(&mut buf);
                got.extend_from_slice(&buf[..k]);
            }
            // fill everything in order afterwards
            loop {
                let at = r.contiguous_end() - 1000;
                if at as usize >= stream.len() { break; }
                let end = (at as usize + 64).min(stream.len());
                let n = r.write_at(1000 + at, &stream[at as usize..end]);
                let mut buf = vec![0u8; 200];
                let k = r.read(&mut buf);
                got.extend_from_slice(&buf[..k]);
                if n == 0 && k == 0 { break; }
            }
            prop_assert_eq!(&got[..], &stream[..got.len()]);
            prop_assert_eq!(got.len(), stream.len());
        }

        #[test]
        fn send_buffer_matches_a_model(ops in proptest::collection::vec((0u8..3, 0usize..40), 1..100)) {
            let mut b = SendBuffer::new(64, 0);
            let mut model: std::collections::VecDeque<u8> = Default::default();
            let mut start = 0u64;
            let mut next = 0u8;
            for (op, n) in ops {
                match op {
                    0 => {
                        let data: Vec<u8> = (0..n).map(|_| { next = next.wrapping_add(1); next }).collect();
                        let k = b.push(&data);
                        prop_assert_eq!(k, n.min(64 - model.len()));
                        if k < n { next = next.wrapping_sub((n - k) as u8); }
                        model.extend(&data[..k]);
                    }
                    1 => {
                        let upto = start + (n as u64).min(model.len() as u64);
                        b.release(upto);
                        for _ in start..upto { model.pop_front(); }
                        start = upto;
                    }
                    _ => {
                        let mut out = vec![0u8; n];
                        let k = b.copy_out(start, &mut out);
                        prop_assert_eq!(k, n.min(model.len()));
                        let want: Vec<u8> = model.iter().take(k).copied().collect();
                        prop_assert_eq!(&out[..k], &want[..]);
                    }
                }
                prop_assert_eq!(b.start(), start);
                prop_assert_eq!(b.len(), model.len());
            }
        }
    }
}
