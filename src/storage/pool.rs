//! A pool of fixed-size packet buffers, reused so that the data path does not allocate per
//! packet once warmed up.

use core::ops::{Deref, DerefMut};

/// A packet buffer of fixed capacity with a current length. Derefs to the first `len()`
/// bytes; [`full_mut`](Self::full_mut) gives the whole buffer (e.g. to receive into it
/// before [`set_len`](Self::set_len)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketBuf {
    data: Box<[u8]>,
    len: usize,
}

impl PacketBuf {
    /// A new zeroed buffer of `capacity` bytes and length 0 (allocates).
    pub fn new(capacity: usize) -> Self {
        PacketBuf {
            data: vec![0u8; capacity].into_boxed_slice(),
            len: 0,
        }
    }

    /// The fixed capacity.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// Set the length, clamped to the capacity. Bytes keep their previous contents.
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.data.len());
    }

    /// The whole buffer regardless of the current length.
    pub fn full_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Set the length to 0.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Append as much of `src` as fits; returns how many bytes.
    pub fn extend_from_slice(&mut self, src: &[u8]) -> usize {
        let n = src.len().min(self.data.len() - self.len);
        self.data[self.len..self.len + n].copy_from_slice(&src[..n]);
        self.len += n;
        n
    }
}

impl Deref for PacketBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl DerefMut for PacketBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.data[..self.len]
    }
}

impl AsRef<[u8]> for PacketBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for PacketBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

/// Free list of [`PacketBuf`]s of one size.
#[derive(Debug)]
pub struct PacketPool {
    free: Vec<PacketBuf>,
    buf_size: usize,
    max_free: usize,
    allocations: u64,
}

impl PacketPool {
    /// A pool of `buf_size`-byte buffers with `prealloc` allocated up front. At most
    /// `max(prealloc, 64)` returned buffers are kept; more are dropped.
    pub fn new(buf_size: usize, prealloc: usize) -> Self {
        let max_free = prealloc.max(64);
        let mut free = Vec::with_capacity(max_free);
        for _ in 0..prealloc {
            free.push(PacketBuf::new(buf_size));
        }
        PacketPool {
            free,
            buf_size,
            max_free,
            allocations: prealloc as u64,
        }
    }

    /// Size of each buffer.
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// A buffer of length 0, reused if one is free, freshly allocated (and counted)
    /// otherwise.
    pub fn get(&mut self) -> PacketBuf {
        match self.free.pop() {
            Some(mut b) => {
                b.clear();
                b
            }
            None => {
                self.allocations += 1;
                PacketBuf::new(self.buf_size)
            }
        }
    }

    /// Return a buffer for reuse. Buffers of another size, or beyond the retention limit,
    /// are dropped.
    pub fn put(&mut self, buf: PacketBuf) {
        if buf.capacity() == self.buf_size && self.free.len() < self.max_free {
            self.free.push(buf);
        }
    }

    /// Number of buffers allocated so far (including the preallocated ones).
    pub fn allocations(&self) -> u64 {
        self.allocations
    }

    /// Number of free buffers held.
    pub fn available(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_returned_buffers() {
        let mut p = PacketPool::new(2048, 1);
        assert_eq!(p.allocations(), 1);
        let mut a = p.get();
        assert_eq!(a.len(), 0);
        assert_eq!(a.capacity(), 2048);
        assert_eq!(a.extend_from_slice(b"hello"), 5);
        assert_eq!(&a[..], b"hello");
        a.set_len(10_000);
        assert_eq!(a.len(), 2048);
        a.full_mut()[0] = b'J';
        a.set_len(5);
        assert_eq!(&a[..], b"Jello");
        let b = p.get();
        assert_eq!(p.allocations(), 2);
        p.put(a);
        p.put(b);
        for _ in 0..100 {
            let x = p.get();
            let y = p.get();
            assert!(x.is_empty());
            p.put(x);
            p.put(y);
        }
        assert_eq!(p.allocations(), 2);
        p.put(PacketBuf::new(10)); // foreign size: dropped
        assert_eq!(p.available(), 2);
    }

    #[test]
    fn retention_is_bounded() {
        let mut p = PacketPool::new(16, 0);
        let bufs: Vec<_> = (0..100).map(|_| p.get()).collect();
        assert_eq!(p.allocations(), 100);
        for b in bufs {
            p.put(b);
        }
        assert_eq!(p.available(), 64);
    }
}
