//! Fixed-capacity byte rings for a stream: [`SendBuffer`] (bytes written by the application,
//! kept until acknowledged) and [`RecvBuffer`] (out-of-order reassembly up to the application).
//!
//! Both allocate exactly once, in `new`, and never panic on any offset or length.
//!
//! Offsets are `u64` stream positions (a relative stream offset or an absolute 64-bit data
//! sequence number, the caller chooses). They are compared with serial-number (wrapping)
//! arithmetic relative to the buffer's own start, so a stream may cross 2^64; a buffer holds
//! far fewer than 2^63 bytes so the comparison is unambiguous.

use core::ops::Range;

use super::RangeSet;

/// Default bound on the number of disjoint out-of-order ranges a [`RecvBuffer`] tracks.
pub const DEFAULT_MAX_RANGES: usize = 64;

/// `x` reduced into `0..cap`, given `x < 2 * cap` (or `cap == 0`, `x == 0`).
#[inline]
fn wrap(x: usize, cap: usize) -> usize {
    if x >= cap {
        x - cap
    } else {
        x
    }
}

/// Signed distance from `from` to `to` in serial-number arithmetic.
#[inline]
fn serial_diff(to: u64, from: u64) -> i64 {
    to.wrapping_sub(from) as i64
}

/// Copy `src` into the ring `buf` starting at index `pos` (< buf.len()), wrapping at the end.
/// `src.len()` must be at most `buf.len()`; extra bytes are ignored.
fn ring_write(buf: &mut [u8], pos: usize, src: &[u8]) {
    let cap = buf.len();
    if cap == 0 || src.is_empty() {
        return;
    }
    let src = &src[..src.len().min(cap)];
    let pos = pos % cap;
    let first = src.len().min(cap - pos);
    let (a, b) = src.split_at(first);
    buf[pos..pos + first].copy_from_slice(a);
    buf[..b.len()].copy_from_slice(b);
}

/// The (up to) two slices of `len` bytes of ring `buf` starting at index `pos`.
fn ring_slices(buf: &[u8], pos: usize, len: usize) -> (&[u8], &[u8]) {
    let cap = buf.len();
    if cap == 0 || len == 0 {
        return (&[], &[]);
    }
    let len = len.min(cap);
    let pos = pos % cap;
    let first = len.min(cap - pos);
    (&buf[pos..pos + first], &buf[..len - first])
}

/// Copy two slices into `dst`, returning the number of bytes copied.
fn copy_pair(dst: &mut [u8], (a, b): (&[u8], &[u8])) -> usize {
    let n1 = a.len().min(dst.len());
    dst[..n1].copy_from_slice(&a[..n1]);
    let n2 = b.len().min(dst.len() - n1);
    dst[n1..n1 + n2].copy_from_slice(&b[..n2]);
    n1 + n2
}

/// Bytes of an outgoing stream from [`start`](Self::start) (oldest unacknowledged) to
/// [`end`](Self::end) (next byte to be written), in a ring of fixed capacity.
#[derive(Clone)]
pub struct SendBuffer {
    buf: Box<[u8]>,
    /// Ring index of `start`.
    head: usize,
    len: usize,
    start: u64,
}

impl SendBuffer {
    /// An empty buffer of `capacity` bytes whose first byte will have offset `start`.
    pub fn new(capacity: usize, start: u64) -> Self {
        SendBuffer {
            buf: vec![0u8; capacity].into_boxed_slice(),
            head: 0,
            len: 0,
            start,
        }
    }

    /// Fixed capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Offset of the first retained byte.
    pub fn start(&self) -> u64 {
        self.start
    }

    /// Offset one past the last byte written.
    pub fn end(&self) -> u64 {
        self.start.wrapping_add(self.len as u64)
    }

    /// Number of bytes held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no byte is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free space in bytes.
    pub fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Append as much of `data` as fits; returns the number of bytes taken.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        let pos = wrap(self.head + self.len, self.buf.len());
        ring_write(&mut self.buf, pos, &data[..n]);
        self.len += n;
        n
    }

    /// The bytes from `offset` on, at most `max` of them, as up to two slices (zero-copy
    /// access for building segments). Empty if `offset` is outside `[start, end)`.
    pub fn slices_at(&self, offset: u64, max: usize) -> (&[u8], &[u8]) {
        let d = offset.wrapping_sub(self.start);
        if d >= self.len as u64 {
            return (&[], &[]);
        }
        // d < len <= usize::MAX
        let d = d as usize;
        let n = max.min(self.len - d);
        ring_slices(&self.buf, wrap(self.head + d, self.buf.len()), n)
    }

    /// Copy bytes from `offset` into `dst`; returns how many (0 if `offset` is outside
    /// `[start, end)`).
    pub fn copy_out(&self, offset: u64, dst: &mut [u8]) -> usize {
        copy_pair(dst, self.slices_at(offset, dst.len()))
    }

    /// Drop the bytes below `upto` (acknowledged). Idempotent; an `upto` beyond `end` is
    /// clamped to `end`, one at or below `start` does nothing.
    pub fn release(&mut self, upto: u64) {
        let d = serial_diff(upto, self.start);
        if d <= 0 {
            return;
        }
        let n = (d as u64).min(self.len as u64) as usize;
        self.head = wrap(self.head + n, self.buf.len());
        self.len -= n;
        self.start = self.start.wrapping_add(n as u64);
        if self.len == 0 {
            self.head = 0;
        }
    }
}

/// Reassembly buffer for an incoming stream: data may arrive out of order at any offset
/// within `[read_offset, read_offset + capacity)`; the application reads the contiguous
/// prefix.
#[derive(Clone)]
pub struct RecvBuffer {
    buf: Box<[u8]>,
    /// Ring index of the read point.
    head: usize,
    /// Offset of the stream byte at relative position 0.
    base: u64,
    /// Read point, relative to `base`.
    read_rel: u64,
    /// Arrived ranges at or above `read_rel`, relative to `base`. Its internal capacity is
    /// `max_ranges + 1` so that in-order data is always accepted.
    ranges: RangeSet,
    max_ranges: usize,
}

impl RecvBuffer {
    /// An empty buffer of `capacity` bytes whose read point is `start`, tracking at most
    /// [`DEFAULT_MAX_RANGES`] out-of-order ranges.
    pub fn new(capacity: usize, start: u64) -> Self {
        Self::with_max_ranges(capacity, start, DEFAULT_MAX_RANGES)
    }

    /// As [`new`](Self::new) with an explicit bound on out-of-order ranges (>= 1).
    pub fn with_max_ranges(capacity: usize, start: u64, max_ranges: usize) -> Self {
        let max_ranges = max_ranges.max(1);
        RecvBuffer {
            buf: vec![0u8; capacity].into_boxed_slice(),
            head: 0,
            base: start,
            read_rel: 0,
            ranges: RangeSet::with_capacity(max_ranges + 1),
            max_ranges,
        }
    }

    /// Fixed capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Offset of the next byte the application will read.
    pub fn read_offset(&self) -> u64 {
        self.base.wrapping_add(self.read_rel)
    }

    /// Number of contiguous bytes readable from the read point.
    pub fn readable(&self) -> usize {
        // ranges never extend beyond read_rel + capacity, so this fits in usize
        (self.ranges.contiguous_end(self.read_rel) - self.read_rel) as usize
    }

    /// `read_offset() + readable()`: the cumulative acknowledgement point.
    pub fn contiguous_end(&self) -> u64 {
        self.read_offset().wrapping_add(self.readable() as u64)
    }

    /// Receive window: free space from `contiguous_end()` to `read_offset() + capacity`,
    /// saturated to `u32::MAX`.
    pub fn window(&self) -> u32 {
        let w = self.buf.len() - self.readable();
        u32::try_from(w).unwrap_or(u32::MAX)
    }

    /// Bytes held beyond the contiguous prefix (out of order).
    pub fn out_of_order_bytes(&self) -> u64 {
        self.ranges.total() - self.readable() as u64
    }

    /// Number of disjoint out-of-order ranges held (not counting the contiguous prefix).
    pub fn out_of_order_ranges(&self) -> usize {
        let n = self.ranges.len();
        match self.ranges.first() {
            Some(r) if r.start <= self.read_rel => n - 1,
            _ => n,
        }
    }

    /// Arrived ranges above `contiguous_end()`, ascending, as absolute offsets (for SACK
    /// blocks). A range crossing 2^64 has `end < start` numerically.
    pub fn out_of_order_iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        let read_rel = self.read_rel;
        let base = self.base;
        self.ranges
            .iter()
            .filter(move |r| r.start > read_rel)
            .map(move |r| base.wrapping_add(r.start)..base.wrapping_add(r.end))
    }

    /// Store `data` that starts at stream `offset`. Returns how many leading bytes of `data`
    /// are accepted: bytes below the read point or already held count as accepted; bytes
    /// beyond `read_offset() + capacity` are cut. If the data would open a new out-of-order
    /// range while `max_ranges` are already held, nothing is accepted (0), so the peer
    /// retransmits later; data that extends the contiguous prefix is always accepted.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> usize {
        let d = serial_diff(offset, self.read_offset());
        let (skip, rel_start) = if d < 0 {
            let below = d.unsigned_abs();
            if below >= data.len() as u64 {
                return data.len();
            }
            (below as usize, self.read_rel)
        } else {
            (0, self.read_rel + d as u64)
        };
        let data = &data[skip..];
        let limit = self.read_rel + self.buf.len() as u64;
        if rel_start >= limit || data.is_empty() {
            return skip;
        }
        let n = (data.len() as u64).min(limit - rel_start) as usize;
        let r = rel_start..rel_start + n as u64;

        if !self.ranges.contains_range(r.clone()) {
            let in_order = rel_start <= self.ranges.contiguous_end(self.read_rel);
            if !in_order
                && !self.ranges.touches(r.clone())
                && self.out_of_order_ranges() >= self.max_ranges
            {
                return 0;
            }
            if !self.ranges.insert(r.clone()) {
                // cannot happen: internal capacity is max_ranges + 1 and the checks above
                // leave room for in-order data; refuse rather than corrupt state
                return 0;
            }
            // rel_start - read_rel < capacity, so this fits in usize
            let pos = wrap(
                self.head + (rel_start - self.read_rel) as usize,
                self.buf.len(),
            );
            ring_write(&mut self.buf, pos, &data[..n]);
        }
        skip + n
    }

    /// The readable bytes as up to two slices (the ring may wrap).
    pub fn peek(&self) -> (&[u8], &[u8]) {
        ring_slices(&self.buf, self.head, self.readable())
    }

    /// Mark `n` readable bytes as read (clamped to `readable()`).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.readable());
        if n == 0 {
            return;
        }
        self.head = wrap(self.head + n, self.buf.len());
        self.read_rel += n as u64;
        self.ranges.remove_below(self.read_rel);
    }

    /// Copy readable bytes into `dst` and consume them; returns how many.
    pub fn read(&mut self, dst: &mut [u8]) -> usize {
        let n = copy_pair(dst, self.peek());
        self.consume(n);
        n
    }
}

impl core::fmt::Debug for SendBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SendBuffer")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

impl core::fmt::Debug for RecvBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecvBuffer")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn send_push_copy_release_wraps() {
        let mut s = SendBuffer::new(8, 100);
        assert_eq!(s.push(b"abcdef"), 6);
        assert_eq!(s.push(b"ghijk"), 2);
        assert_eq!(s.free(), 0);
        assert_eq!((s.start(), s.end()), (100, 108));
        let mut out = [0u8; 16];
        assert_eq!(s.copy_out(102, &mut out), 6);
        assert_eq!(&out[..6], b"cdefgh");
        assert_eq!(s.copy_out(108, &mut out), 0);
        assert_eq!(s.copy_out(99, &mut out), 0);
        s.release(105);
        s.release(103); // idempotent / stale
        assert_eq!(s.start(), 105);
        assert_eq!(s.push(b"ijklmnop"), 5);
        assert_eq!(s.copy_out(105, &mut out), 8);
        assert_eq!(&out[..8], b"fghijklm");
        let (a, b) = s.slices_at(106, 100);
        assert!(!b.is_empty());
        assert_eq!([a, b].concat(), b"ghijklm");
        s.release(1_000);
        assert_eq!((s.start(), s.len()), (113, 0));
    }

    #[test]
    fn send_across_u64_wrap() {
        let mut s = SendBuffer::new(16, u64::MAX - 3);
        assert_eq!(s.push(b"0123456789"), 10);
        assert_eq!(s.end(), 6);
        let mut out = [0u8; 4];
        assert_eq!(s.copy_out(1, &mut out), 4);
        assert_eq!(&out, b"5678");
        s.release(2);
        assert_eq!(s.start(), 2);
        assert_eq!(s.len(), 4);
    }

    #[test]
    fn zero_capacity_is_harmless() {
        let mut s = SendBuffer::new(0, 5);
        assert_eq!(s.push(b"abc"), 0);
        s.release(10);
        assert_eq!(s.copy_out(5, &mut [0u8; 3]), 0);
        let mut r = RecvBuffer::new(0, 5);
        assert_eq!(r.write_at(5, b"abc"), 0);
        assert_eq!(r.write_at(2, b"abc"), 3);
        assert_eq!(r.read(&mut [0u8; 3]), 0);
        assert_eq!(r.window(), 0);
    }

    #[test]
    fn recv_out_of_order_then_fill() {
        let mut r = RecvBuffer::new(16, 1000);
        assert_eq!(r.window(), 16);
        assert_eq!(r.write_at(1004, b"efgh"), 4);
        assert_eq!(r.readable(), 0);
        assert_eq!(r.out_of_order_iter().collect::<Vec<_>>(), vec![1004..1008]);
        assert_eq!(r.write_at(1000, b"abcd"), 4);
        assert_eq!(r.readable(), 8);
        assert_eq!(r.contiguous_end(), 1008);
        assert_eq!(r.window(), 8);
        // beyond the window is cut
        assert_eq!(r.write_at(1012, b"mnopqrst"), 4);
        // duplicate below the read point counts as accepted
        let mut out = [0u8; 3];
        assert_eq!(r.read(&mut out), 3);
        assert_eq!(&out, b"abc");
        assert_eq!(r.write_at(998, b"xxabcdefgh"), 10);
        assert_eq!(r.write_at(990, b"xx"), 2);
        assert_eq!(r.read_offset(), 1003);
        assert_eq!(r.write_at(1008, b"ijkl"), 4);
        let (a, b) = r.peek();
        assert_eq!([a, b].concat(), b"defghijklmnop");
        r.consume(100);
        assert_eq!(r.read_offset(), 1016);
        assert_eq!(r.window(), 16);
        assert_eq!(r.write_at(1016, &[7u8; 40]), 16);
        assert_eq!(r.window(), 0);
    }

    #[test]
    fn recv_range_limit_refuses_new_ranges_but_not_in_order_data() {
        let mut r = RecvBuffer::with_max_ranges(100, 0, 2);
        assert_eq!(r.write_at(10, b"a"), 1);
        assert_eq!(r.write_at(20, b"b"), 1);
        assert_eq!(r.write_at(30, b"c"), 0); // would be a third range
        assert_eq!(r.write_at(11, b"a"), 1); // merges
        assert_eq!(r.write_at(19, b"b"), 1); // merges
        assert_eq!(r.write_at(10, b"aa"), 2); // already held
        assert_eq!(r.out_of_order_ranges(), 2);
        assert_eq!(r.write_at(0, b"0123"), 4); // in order: always accepted
        assert_eq!(r.readable(), 4);
        assert_eq!(r.write_at(4, b"456789"), 6);
        assert_eq!(r.readable(), 12);
        assert_eq!(r.out_of_order_ranges(), 1);
        assert_eq!(r.write_at(30, b"c"), 1);
    }

    #[test]
    fn recv_across_u64_wrap() {
        let mut r = RecvBuffer::new(32, u64::MAX - 1);
        assert_eq!(r.write_at(2, b"cd"), 2);
        assert_eq!(r.write_at(u64::MAX - 1, b"xyab"), 4);
        let mut out = [0u8; 8];
        assert_eq!(r.read(&mut out), 6);
        assert_eq!(&out[..6], b"xyabcd");
        assert_eq!(r.read_offset(), 4);
    }

    #[derive(Debug, Clone)]
    enum SendOp {
        Push(Vec<u8>),
        Release(u64),
        Copy(u64, usize),
    }

    fn send_op() -> impl Strategy<Value = SendOp> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(SendOp::Push),
            (0u64..400).prop_map(SendOp::Release),
            (0u64..400, 0usize..50).prop_map(|(o, n)| SendOp::Copy(o, n)),
        ]
    }

    proptest! {
        #[test]
        fn send_buffer_matches_model(cap in 0usize..64, start in any::<u64>(), ops in proptest::collection::vec(send_op(), 0..80)) {
            let mut s = SendBuffer::new(cap, start);
            // model: stream bytes keyed by relative offset, plus retained window
            let mut stream: Vec<u8> = Vec::new();
            let mut lo = 0usize; // relative start
            for op in ops {
                match op {
                    SendOp::Push(d) => {
                        let held = stream.len() - lo;
                        let n = d.len().min(cap - held);
                        prop_assert_eq!(s.push(&d), n);
                        stream.extend_from_slice(&d[..n]);
                    }
                    SendOp::Release(rel) => {
                        s.release(start.wrapping_add(rel));
                        lo = lo.max((rel as usize).min(stream.len()));
                    }
                    SendOp::Copy(rel, n) => {
                        let mut dst = vec![0u8; n];
                        let got = s.copy_out(start.wrapping_add(rel), &mut dst);
                        let rel = rel as usize;
                        let want: &[u8] = if rel >= lo && rel < stream.len() {
                            &stream[rel..stream.len().min(rel + n)]
                        } else {
                            &[]
                        };
                        prop_assert_eq!(&dst[..got], want);
                    }
                }
                prop_assert_eq!(s.start(), start.wrapping_add(lo as u64));
                prop_assert_eq!(s.end(), start.wrapping_add(stream.len() as u64));
                prop_assert_eq!(s.len() + s.free(), cap);
            }
        }

        #[test]
        fn never_panics_on_any_offsets(
            cap in 0usize..40,
            start in any::<u64>(),
            ops in proptest::collection::vec((any::<u64>(), 0usize..60, any::<bool>()), 0..60),
        ) {
            let mut s = SendBuffer::new(cap, start);
            let mut r = RecvBuffer::with_max_ranges(cap, start, 2);
            let data = [1u8; 60];
            let mut dst = [0u8; 60];
            for (off, len, near) in ops {
                // half the offsets near the buffers, half anywhere in u64
                let off = if near { start.wrapping_add(off % 128).wrapping_sub(32) } else { off };
                let _ = s.push(&data[..len]);
                let _ = s.copy_out(off, &mut dst[..len]);
                let (a, b) = s.slices_at(off, len);
                prop_assert!(a.len() + b.len() <= len);
                s.release(off);
                prop_assert!(s.len() <= cap);
                let acc = r.write_at(off, &data[..len]);
                prop_assert!(acc <= len);
                prop_assert!(r.readable() <= cap);
                prop_assert!(r.out_of_order_ranges() <= 2);
                let _ = r.out_of_order_iter().count();
                let _ = r.read(&mut dst[..len / 2]);
                r.consume(len / 3);
                prop_assert_eq!(r.window() as usize, cap - r.readable());
            }
        }

        #[test]
        fn recv_buffer_delivers_the_stream(
            cap in 1usize..96,
            start in any::<u64>(),
            stream in proptest::collection::vec(any::<u8>(), 0..300),
            writes in proptest::collection::vec((0usize..320, 0usize..40, 0u8..4), 1..200),
        ) {
            let mut r = RecvBuffer::with_max_ranges(cap, start, 4);
            let mut got: Vec<u8> = Vec::new();
            let mut next = 0usize; // model: bytes read so far
            let deliver = |r: &mut RecvBuffer, got: &mut Vec<u8>, max: usize| {
                let mut dst = vec![0u8; max];
                let n = r.read(&mut dst);
                got.extend_from_slice(&dst[..n]);
            };
            for (off, len, readn) in writes {
                let off = off.min(stream.len());
                let end = (off + len).min(stream.len());
                let acc = r.write_at(start.wrapping_add(off as u64), &stream[off..end]);
                prop_assert!(acc <= end - off);
                // never accepts beyond the window
                prop_assert!(acc == 0 || off + acc <= next + cap);
                // data at or below the read point that fits is always accepted
                if off <= next {
                    prop_assert_eq!(acc, (end - off).min(next + cap - off));
                }
                prop_assert!(r.readable() + r.window() as usize == cap);
                prop_assert!(r.out_of_order_ranges() <= 4);
                if readn > 0 {
                    deliver(&mut r, &mut got, readn as usize * 7);
                    next = got.len();
                }
                prop_assert_eq!(r.read_offset(), start.wrapping_add(next as u64));
                prop_assert_eq!(&got[..], &stream[..next]);
            }
            // then deliver the rest in order, as retransmissions would
            while next < stream.len() {
                let acc = r.write_at(start.wrapping_add(next as u64), &stream[next..]);
                prop_assert!(acc > 0);
                deliver(&mut r, &mut got, 4096);
                prop_assert!(got.len() > next);
                next = got.len();
            }
            prop_assert_eq!(got, stream);
        }
    }
}
