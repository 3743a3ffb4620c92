//! Byte rings for a stream: [`SendBuffer`] (bytes written by the application, kept until
//! acknowledged) and [`RecvBuffer`] (out-of-order reassembly up to the application).
//!
//! Both have a fixed *capacity* (the configured maximum: what the application may queue, what
//! the receive window promises) but allocate lazily: a new buffer owns no memory, the ring
//! grows by doubling (at least [`MIN_ALLOC`] bytes, at most the capacity) when data needs the
//! room, and [`trim`](SendBuffer::trim) gives memory back once the data is gone. Growth within
//! the capacity always succeeds (an allocation failure aborts the process, as for any Rust
//! allocation), so a window computed from the capacity is a promise the buffer keeps. Once a
//! transfer has grown the ring to the size it needs, nothing more is allocated. Neither
//! buffer panics on any offset or length.
//!
//! Offsets are `u64` stream positions (a relative stream offset or an absolute 64-bit data
//! sequence number, the caller chooses). They are compared with serial-number (wrapping)
//! arithmetic relative to the buffer's own start, so a stream may cross 2^64; a buffer holds
//! far fewer than 2^63 bytes so the comparison is unambiguous.

use core::ops::Range;

use super::RangeSet;

/// Default bound on the number of disjoint out-of-order ranges a [`RecvBuffer`] tracks.
pub const DEFAULT_MAX_RANGES: usize = 64;

/// Smallest ring a buffer allocates when it first needs room.
pub const MIN_ALLOC: usize = 4096;

/// The ring size to grow to for `need` bytes: a power of two, at least double `cur`
/// (amortised growth), at least [`MIN_ALLOC`], at most `max` (`need <= max`).
fn grown_size(cur: usize, need: usize, max: usize) -> usize {
    need.checked_next_power_of_two()
        .unwrap_or(usize::MAX)
        .max(cur.saturating_mul(2))
        .max(MIN_ALLOC)
        .min(max)
}

/// The smallest ring size that holds `span` bytes: 0 for nothing, else a power of two of at
/// least [`MIN_ALLOC`], at most `max`.
fn trimmed_size(span: usize, max: usize) -> usize {
    if span == 0 {
        0
    } else {
        span.checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .max(MIN_ALLOC)
            .min(max)
    }
}

/// A new zeroed ring of `size` bytes holding the `size.min(old.len())` bytes of `old` from
/// ring index `head` on, linearised at index 0.
fn relocate(old: &[u8], head: usize, keep: usize, size: usize) -> Box<[u8]> {
    let mut nb = vec![0u8; size].into_boxed_slice();
    copy_pair(&mut nb, ring_slices(old, head, keep.min(size)));
    nb
}

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
/// [`end`](Self::end) (next byte to be written), in a ring that grows up to a fixed capacity.
#[derive(Clone)]
pub struct SendBuffer {
    /// The ring: `buf.len()` bytes allocated, `<= max`.
    buf: Box<[u8]>,
    /// Capacity: most bytes held.
    max: usize,
    /// Ring index of `start`.
    head: usize,
    len: usize,
    start: u64,
}

impl SendBuffer {
    /// An empty buffer holding at most `capacity` bytes, whose first byte will have offset
    /// `start`. Allocates nothing until data is pushed.
    pub fn new(capacity: usize, start: u64) -> Self {
        SendBuffer {
            buf: Box::default(),
            max: capacity,
            head: 0,
            len: 0,
            start,
        }
    }

    /// Fixed capacity in bytes (the most it holds; not what is allocated now).
    pub fn capacity(&self) -> usize {
        self.max
    }

    /// Bytes of ring memory allocated now (`len() <= allocated() <= capacity()`).
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Give memory back: the ring shrinks to the smallest size holding what is buffered
    /// (nothing at all when empty) if that at least halves it. Returns the bytes freed.
    /// Costs one copy of the buffered bytes; meant for idle moments.
    pub fn trim(&mut self) -> usize {
        let size = trimmed_size(self.len, self.max);
        let old = self.buf.len();
        if size > old / 2 {
            return 0;
        }
        self.buf = if size == 0 {
            Box::default()
        } else {
            relocate(&self.buf, self.head, self.len, size)
        };
        self.head = 0;
        old - size
    }

    /// Make room for `need` bytes in the ring (`need <= max`).
    fn grow(&mut self, need: usize) {
        if need <= self.buf.len() {
            return;
        }
        let size = grown_size(self.buf.len(), need, self.max);
        self.buf = relocate(&self.buf, self.head, self.len, size);
        self.head = 0;
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

    /// Free space in bytes (up to the capacity, whether allocated yet or not).
    pub fn free(&self) -> usize {
        self.max - self.len
    }

    /// Append as much of `data` as fits; returns the number of bytes taken.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n == 0 {
            return 0;
        }
        self.grow(self.len + n);
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
    /// The ring: `buf.len()` bytes allocated, `<= max`; ring index `head + p` holds the
    /// byte `p` past the read point.
    buf: Box<[u8]>,
    /// Capacity: how far past the read point data is accepted (the window).
    max: usize,
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
    /// While set (relative to `base`): nothing at or past it is readable, whatever has
    /// arrived (data held back until verified, e.g. by a DSS checksum).
    hold_rel: Option<u64>,
}

impl RecvBuffer {
    /// An empty buffer accepting up to `capacity` bytes past its read point `start`,
    /// tracking at most [`DEFAULT_MAX_RANGES`] out-of-order ranges. Allocates nothing until
    /// data arrives.
    pub fn new(capacity: usize, start: u64) -> Self {
        Self::with_max_ranges(capacity, start, DEFAULT_MAX_RANGES)
    }

    /// As [`new`](Self::new) with an explicit bound on out-of-order ranges (>= 1).
    pub fn with_max_ranges(capacity: usize, start: u64, max_ranges: usize) -> Self {
        let max_ranges = max_ranges.max(1);
        RecvBuffer {
            buf: Box::default(),
            max: capacity,
            head: 0,
            base: start,
            read_rel: 0,
            ranges: RangeSet::with_capacity(max_ranges + 1),
            max_ranges,
            hold_rel: None,
        }
    }

    /// Fixed capacity in bytes (how far past the read point data is accepted; not what is
    /// allocated now).
    pub fn capacity(&self) -> usize {
        self.max
    }

    /// Heap bytes owned now: the ring plus the out-of-order range table.
    pub fn allocated(&self) -> usize {
        self.buf.len() + self.ranges.heap_bytes()
    }

    /// Bytes from the read point to the end of the highest range held (what the ring must
    /// cover).
    fn span(&self) -> usize {
        // ranges never extend beyond read_rel + capacity, so this fits in usize
        self.ranges
            .last()
            .map_or(0, |r| r.end.saturating_sub(self.read_rel) as usize)
    }

    /// Give memory back: the ring shrinks to the smallest size covering what is held (nothing
    /// at all when everything was read) if that at least halves it, and the range table to
    /// what it holds. Returns the bytes freed. Costs one copy of the held bytes; meant for
    /// idle moments. The window is unchanged (it is computed from the capacity).
    pub fn trim(&mut self) -> usize {
        let before = self.allocated();
        let span = self.span();
        let size = trimmed_size(span, self.max);
        if size <= self.buf.len() / 2 {
            self.buf = if size == 0 {
                Box::default()
            } else {
                relocate(&self.buf, self.head, span, size)
            };
            self.head = 0;
        }
        self.ranges.shrink();
        before.saturating_sub(self.allocated())
    }

    /// Make the ring cover `need` bytes past the read point (`need <= max`).
    fn grow(&mut self, need: usize) {
        if need <= self.buf.len() {
            return;
        }
        let size = grown_size(self.buf.len(), need, self.max);
        let span = self.span();
        self.buf = relocate(&self.buf, self.head, span, size);
        self.head = 0;
    }

    /// Offset of the next byte the application will read.
    pub fn read_offset(&self) -> u64 {
        self.base.wrapping_add(self.read_rel)
    }

    /// Number of contiguous bytes readable from the read point (never past the hold point).
    pub fn readable(&self) -> usize {
        let mut end = self.ranges.contiguous_end(self.read_rel);
        if let Some(h) = self.hold_rel {
            end = end.min(h.max(self.read_rel));
        }
        // ranges never extend beyond read_rel + capacity, so this fits in usize
        (end - self.read_rel) as usize
    }

    /// Hold back everything at or past stream offset `at` (`None`: nothing held): it stays
    /// stored but is neither readable nor counted in [`contiguous_end`](Self::contiguous_end)
    /// (so not acknowledged) until the hold moves past it. An offset below the read point
    /// holds everything not yet read.
    pub fn set_hold(&mut self, at: Option<u64>) {
        self.hold_rel = at.map(|a| {
            let d = serial_diff(a, self.read_offset());
            self.read_rel + d.max(0) as u64
        });
    }

    /// The stored bytes `offset..offset + len` as up to two slices, if every one of them has
    /// arrived and none has been read yet (held or readable); `None` otherwise.
    pub fn stored(&self, offset: u64, len: usize) -> Option<(&[u8], &[u8])> {
        let d = serial_diff(offset, self.read_offset());
        if d < 0 {
            return None;
        }
        let rel = self.read_rel + d as u64;
        let end = rel.checked_add(len as u64)?;
        if len == 0 || !self.ranges.contains_range(rel..end) {
            return None;
        }
        // a held range lies within read_rel + capacity, which the ring covers
        let pos = wrap(self.head + d as usize, self.buf.len());
        Some(ring_slices(&self.buf, pos, len))
    }

    /// Forget stored, unread bytes `offset..offset + len` (data found bad after it arrived):
    /// they count as not received, so a later copy is stored in their place. Bytes already
    /// read are not touched. If the range table is full, more than asked may be forgotten
    /// (up to the end of the range that would be split), never less.
    pub fn discard(&mut self, offset: u64, len: u64) {
        let d = serial_diff(offset, self.read_offset());
        let (start, len) = if d < 0 {
            let below = d.unsigned_abs();
            (self.read_rel, len.saturating_sub(below))
        } else {
            (self.read_rel + d as u64, len)
        };
        self.ranges.remove(start..start.saturating_add(len));
    }

    /// `read_offset() + readable()`: the cumulative acknowledgement point.
    pub fn contiguous_end(&self) -> u64 {
        self.read_offset().wrapping_add(self.readable() as u64)
    }

    /// Receive window: free space from `contiguous_end()` to `read_offset() + capacity`,
    /// saturated to `u32::MAX`.
    pub fn window(&self) -> u32 {
        let w = self.max - self.readable();
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
        let limit = self.read_rel + self.max as u64;
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
            // rel_start - read_rel < capacity, so this fits in usize; r.end <= limit
            self.grow((r.end - self.read_rel) as usize);
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

    /// Copy readable bytes into `dst` without consuming them; returns how many.
    pub fn copy_out(&self, dst: &mut [u8]) -> usize {
        copy_pair(dst, self.peek())
    }

    /// Copy readable bytes into `dst` and consume them; returns how many.
    pub fn read(&mut self, dst: &mut [u8]) -> usize {
        let n = self.copy_out(dst);
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
    fn held_data_is_stored_but_neither_readable_nor_acknowledged() {
        let mut r = RecvBuffer::new(16, 1000);
        r.set_hold(Some(1004));
        assert_eq!(r.write_at(1000, b"abcdefgh"), 8);
        assert_eq!((r.readable(), r.contiguous_end()), (4, 1004));
        assert_eq!(r.window(), 12);
        let (a, b) = r.stored(1002, 6).unwrap();
        assert_eq!([a, b].concat(), b"cdefgh");
        assert!(r.stored(1004, 5).is_none(), "a byte past what arrived");
        let mut out = [0u8; 16];
        assert_eq!(r.read(&mut out), 4);
        assert!(r.stored(1002, 4).is_none(), "already read");
        // found bad: forgotten, and a later copy takes its place
        r.discard(1004, 4);
        r.set_hold(None);
        assert_eq!(r.contiguous_end(), 1004);
        assert_eq!(r.write_at(1004, b"EFGH"), 4);
        assert_eq!(r.read(&mut out), 4);
        assert_eq!(&out[..4], b"EFGH");
        // a hold below the read point holds everything unread
        r.set_hold(Some(10));
        assert_eq!(r.write_at(1008, b"ij"), 2);
        assert_eq!(r.readable(), 0);
        r.set_hold(None);
        assert_eq!(r.readable(), 2);
    }

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

    #[test]
    fn buffers_allocate_lazily_grow_by_doubling_and_trim() {
        let mut s = SendBuffer::new(1 << 20, 0);
        assert_eq!((s.allocated(), s.free()), (0, 1 << 20));
        assert_eq!(s.push(&[1u8; 100]), 100);
        assert_eq!(s.allocated(), MIN_ALLOC);
        assert_eq!(s.push(&[2u8; MIN_ALLOC]), MIN_ALLOC);
        assert_eq!(s.allocated(), 2 * MIN_ALLOC);
        s.release(50);
        assert_eq!(s.trim(), 0, "still more than half used");
        s.release(4000);
        // 196 bytes held: the ring shrinks to MIN_ALLOC, contents kept
        assert_eq!(s.trim(), MIN_ALLOC);
        let mut out = [0u8; 200];
        assert_eq!(s.copy_out(4000, &mut out), 196);
        assert!(out[..96].iter().all(|&b| b == 2));
        s.release(s.end());
        assert_eq!(s.trim(), MIN_ALLOC);
        assert_eq!(s.allocated(), 0);
        // capacity below MIN_ALLOC: never more than the capacity
        let mut small = SendBuffer::new(100, 0);
        assert_eq!(small.push(&[0u8; 300]), 100);
        assert_eq!(small.allocated(), 100);

        let mut r = RecvBuffer::new(1 << 20, 0);
        assert_eq!((r.allocated(), r.window()), (0, 1 << 20));
        // out of order far ahead: the ring grows to cover it, the window is unchanged
        assert_eq!(r.write_at(100_000, b"xyz"), 3);
        assert_eq!(r.buf.len(), 131_072);
        assert_eq!(r.window(), 1 << 20);
        assert_eq!(r.write_at(0, &[7u8; 100_000]), 100_000);
        assert_eq!(r.readable(), 100_003);
        let mut dst = vec![0u8; 100_000];
        assert_eq!(r.read(&mut dst), 100_000);
        // three bytes left: trimming keeps them
        assert!(r.trim() > 0);
        assert_eq!(r.buf.len(), MIN_ALLOC);
        let (a, b) = r.peek();
        assert_eq!([a, b].concat(), b"xyz");
        r.consume(3);
        r.trim();
        assert_eq!(r.allocated(), 0);
        assert_eq!(r.window(), 1 << 20);
        assert_eq!(r.write_at(100_003, b"abc"), 3);
        assert_eq!(r.read(&mut dst), 3);
        assert_eq!(&dst[..3], b"abc");
    }

    #[derive(Debug, Clone)]
    enum SendOp {
        Push(Vec<u8>),
        Release(u64),
        Copy(u64, usize),
        Trim,
    }

    fn send_op() -> impl Strategy<Value = SendOp> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(SendOp::Push),
            (0u64..400).prop_map(SendOp::Release),
            (0u64..400, 0usize..50).prop_map(|(o, n)| SendOp::Copy(o, n)),
            Just(SendOp::Trim),
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
                    SendOp::Trim => {
                        s.trim();
                    }
                }
                prop_assert!(s.len() <= s.allocated() && s.allocated() <= cap);
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

        /// Capacities above MIN_ALLOC, so the rings really grow (by doubling) and shrink
        /// between operations; the model is the stream itself.
        #[test]
        fn growing_buffers_keep_the_stream(
            cap in 1usize..40_000,
            start in any::<u64>(),
            writes in proptest::collection::vec((0usize..60_000, 0usize..6_000, 0u8..5), 1..60),
        ) {
            let stream: Vec<u8> = (0..70_000u32).map(|i| (i * 31 + i / 97) as u8).collect();
            let mut r = RecvBuffer::with_max_ranges(cap, start, 8);
            let mut s = SendBuffer::new(cap, start);
            let mut pushed = 0usize;
            let mut got: Vec<u8> = Vec::new();
            let mut dst = vec![0u8; 9_000];
            for (off, len, op) in writes {
                // receive side
                let off = off.min(stream.len());
                let end = (off + len).min(stream.len());
                let acc = r.write_at(start.wrapping_add(off as u64), &stream[off..end]);
                prop_assert!(acc <= end - off);
                prop_assert_eq!(r.readable() + r.window() as usize, cap);
                prop_assert!(r.buf.len() <= cap);
                match op {
                    0 => { r.trim(); }
                    1 | 2 => {
                        let n = r.read(&mut dst[..len.min(9_000)]);
                        got.extend_from_slice(&dst[..n]);
                    }
                    _ => {}
                }
                prop_assert_eq!(&got[..], &stream[..got.len()]);
                // send side: push, release some, trim sometimes, check contents
                let n = s.push(&stream[pushed..(pushed + len).min(stream.len())]);
                pushed += n;
                prop_assert!(s.allocated() <= cap && s.len() <= s.allocated());
                let una = s.start().wrapping_sub(start) as usize;
                s.release(start.wrapping_add((una + off % 7_000).min(pushed) as u64));
                if op == 0 {
                    s.trim();
                }
                let una = s.start().wrapping_sub(start) as usize;
                let k = s.copy_out(s.start(), &mut dst);
                prop_assert_eq!(k, (pushed - una).min(9_000));
                prop_assert_eq!(&dst[..k], &stream[una..una + k]);
            }
            // the rest of the stream in order, as retransmissions would bring it
            let mut next = got.len();
            while next < stream.len() {
                let acc = r.write_at(start.wrapping_add(next as u64), &stream[next..]);
                prop_assert!(acc > 0);
                let n = r.read(&mut dst);
                got.extend_from_slice(&dst[..n]);
                next = got.len();
                r.trim();
            }
            prop_assert!(got == stream);
            prop_assert_eq!(r.buf.len(), 0);
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
                if readn == 3 {
                    r.trim();
                }
                prop_assert!(r.buf.len() <= cap);
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
