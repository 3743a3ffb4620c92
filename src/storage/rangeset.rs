//! A bounded set of disjoint, non-adjacent half-open `u64` ranges.
//!
//! Used for out-of-order reassembly (which stream ranges arrived), SACK generation and the
//! SACK scoreboard. The number of ranges is bounded so that a peer cannot grow it without
//! limit: an insert that would need more ranges than the capacity is refused. The table is
//! allocated lazily and grows by doubling up to the capacity; [`RangeSet::shrink`] gives
//! unused room back.

use core::ops::Range;

/// Disjoint, sorted, non-adjacent ranges, at most `capacity` of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeSet {
    ranges: Vec<Range<u64>>,
    capacity: usize,
}

impl RangeSet {
    /// An empty set holding at most `capacity` (>= 1) ranges. Allocates nothing until a
    /// range is inserted; the table then grows by doubling, never beyond `capacity`.
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RangeSet {
            ranges: Vec::new(),
            capacity,
        }
    }

    /// Most ranges held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Heap bytes of the range table now.
    pub fn heap_bytes(&self) -> usize {
        self.ranges.capacity() * core::mem::size_of::<Range<u64>>()
    }

    /// Give back table room beyond what is held (all of it when empty).
    pub fn shrink(&mut self) {
        if self.ranges.capacity() > self.ranges.len() {
            self.ranges.shrink_to_fit();
        }
    }

    /// Number of disjoint ranges held.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True if no range is held.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, sorted ascending.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Range<u64>> + ExactSizeIterator {
        self.ranges.iter()
    }

    /// The lowest range.
    pub fn first(&self) -> Option<Range<u64>> {
        self.ranges.first().cloned()
    }

    /// The highest range.
    pub fn last(&self) -> Option<Range<u64>> {
        self.ranges.last().cloned()
    }

    /// Remove everything.
    pub fn clear(&mut self) {
        self.ranges.clear();
    }

    /// True if every value of `r` is in the set (an empty range is always contained).
    pub fn contains_range(&self, r: Range<u64>) -> bool {
        if r.start >= r.end {
            return true;
        }
        let i = self.ranges.partition_point(|x| x.end < r.end);
        self.ranges
            .get(i)
            .is_some_and(|x| x.start <= r.start && x.end >= r.end)
    }

    /// True if `v` is in the set.
    pub fn contains(&self, v: u64) -> bool {
        v < u64::MAX && self.contains_range(v..v + 1)
    }

    /// Add `r`, merging with overlapping or adjacent ranges. Returns false, leaving the set
    /// unchanged, if the result would hold more than `capacity` ranges.
    pub fn insert(&mut self, r: Range<u64>) -> bool {
        if r.start >= r.end {
            return true;
        }
        // first range whose end >= r.start (may merge), last range whose start <= r.end
        let lo = self.ranges.partition_point(|x| x.end < r.start);
        let hi = self.ranges.partition_point(|x| x.start <= r.end);
        if lo == hi {
            if self.ranges.len() >= self.capacity {
                return false;
            }
            if self.ranges.len() == self.ranges.capacity() {
                // double, but never past the bound
                let want = (self.ranges.len() * 2).max(4).min(self.capacity) - self.ranges.len();
                self.ranges.reserve_exact(want.max(1));
            }
            self.ranges.insert(lo, r);
            return true;
        }
        let start = r.start.min(self.ranges[lo].start);
        let end = r.end.max(self.ranges[hi - 1].end);
        self.ranges[lo] = start..end;
        self.ranges.drain(lo + 1..hi);
        true
    }

    /// True if `r` overlaps or is adjacent to a held range, i.e. inserting it would not
    /// add a new disjoint range.
    pub fn touches(&self, r: Range<u64>) -> bool {
        let lo = self.ranges.partition_point(|x| x.end < r.start);
        let hi = self.ranges.partition_point(|x| x.start <= r.end);
        lo < hi
    }

    /// Remove the values of `r`. A range that `r` cuts in two needs one more entry; when the
    /// set is full that cannot be had, and everything from `r.start` to the end of that range
    /// is removed instead (more than asked, never less). Returns false in that case.
    pub fn remove(&mut self, r: Range<u64>) -> bool {
        if r.start >= r.end {
            return true;
        }
        // ranges overlapping r: from the first whose end > r.start to the last whose start < r.end
        let lo = self.ranges.partition_point(|x| x.end <= r.start);
        let hi = self.ranges.partition_point(|x| x.start < r.end);
        if lo >= hi {
            return true;
        }
        if hi - lo == 1 && self.ranges[lo].start < r.start && self.ranges[lo].end > r.end {
            // r lies strictly inside one range: split it
            if self.ranges.len() >= self.capacity {
                self.ranges[lo].end = r.start;
                return false;
            }
            let tail = r.end..self.ranges[lo].end;
            self.ranges[lo].end = r.start;
            self.ranges.insert(lo + 1, tail);
            return true;
        }
        let first = self.ranges[lo].clone();
        let last = self.ranges[hi - 1].clone();
        let mut keep: [Option<Range<u64>>; 2] = [None, None];
        if first.start < r.start {
            keep[0] = Some(first.start..r.start);
        }
        if last.end > r.end {
            keep[1] = Some(r.end..last.end);
        }
        self.ranges.drain(lo..hi);
        for k in keep.into_iter().flatten().rev() {
            self.ranges.insert(lo, k);
        }
        true
    }

    /// Remove every value below `v` (ranges are cut at `v`).
    pub fn remove_below(&mut self, v: u64) {
        let n = self.ranges.partition_point(|x| x.end <= v);
        self.ranges.drain(..n);
        if let Some(first) = self.ranges.first_mut() {
            if first.start < v {
                first.start = v;
            }
        }
    }

    /// If a range starts at or below `v` and ends above it, the end of that range
    /// (how far data is contiguous from `v`); otherwise `v`.
    pub fn contiguous_end(&self, v: u64) -> u64 {
        let i = self.ranges.partition_point(|x| x.end <= v);
        match self.ranges.get(i) {
            Some(x) if x.start <= v => x.end,
            _ => v,
        }
    }

    /// Total number of values held.
    pub fn total(&self) -> u64 {
        self.ranges.iter().map(|r| r.end - r.start).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merges_overlapping_and_adjacent() {
        let mut s = RangeSet::with_capacity(8);
        assert!(s.insert(10..20));
        assert!(s.insert(30..40));
        assert!(s.insert(20..30));
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![10..40]);
        assert!(s.insert(5..12));
        assert!(s.insert(50..60));
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![5..40, 50..60]);
        assert_eq!(s.contiguous_end(5), 40);
        assert_eq!(s.contiguous_end(40), 40);
        assert_eq!(s.contiguous_end(45), 45);
        assert!(s.contains_range(6..39));
        assert!(!s.contains_range(39..41));
        s.remove_below(52);
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![52..60]);
    }

    #[test]
    fn capacity_refuses_new_ranges_but_allows_merges() {
        let mut s = RangeSet::with_capacity(2);
        assert!(s.insert(0..1));
        assert!(s.insert(10..11));
        assert!(!s.insert(20..21));
        assert_eq!(s.len(), 2);
        assert!(s.touches(11..15));
        assert!(s.touches(5..10));
        assert!(!s.touches(12..15));
        assert!(s.insert(1..10));
        assert_eq!(s.len(), 1);
    }

    proptest! {
        #[test]
        fn matches_a_bitmap(ops in proptest::collection::vec((0u64..200, 0u64..30), 0..60)) {
            let mut s = RangeSet::with_capacity(1000);
            let mut bits = [false; 256];
            for (start, len) in ops {
                prop_assert!(s.insert(start..start + len));
                for b in &mut bits[start as usize..(start + len) as usize] { *b = true; }
            }
            for (i, b) in bits.iter().enumerate() {
                prop_assert_eq!(s.contains(i as u64), *b);
            }
            prop_assert_eq!(s.total(), bits.iter().filter(|b| **b).count() as u64);
            let v: Vec<_> = s.iter().cloned().collect();
            for w in v.windows(2) { prop_assert!(w[0].end < w[1].start); }
        }

        #[test]
        fn insert_and_remove_match_a_bitmap(
            ops in proptest::collection::vec((any::<bool>(), 0u64..200, 0u64..30), 0..80),
        ) {
            let mut s = RangeSet::with_capacity(1000);
            let mut bits = [false; 256];
            for (add, start, len) in ops {
                if add {
                    prop_assert!(s.insert(start..start + len));
                } else {
                    prop_assert!(s.remove(start..start + len));
                }
                for b in &mut bits[start as usize..(start + len) as usize] { *b = add; }
            }
            for (i, b) in bits.iter().enumerate() {
                prop_assert_eq!(s.contains(i as u64), *b);
            }
            let v: Vec<_> = s.iter().cloned().collect();
            for w in v.windows(2) { prop_assert!(w[0].end < w[1].start); }
            for r in &v { prop_assert!(r.start < r.end); }
        }
    }

    #[test]
    fn remove_from_a_full_set_removes_more_never_less() {
        let mut s = RangeSet::with_capacity(2);
        assert!(s.insert(0..100));
        assert!(s.insert(200..300));
        // a split would need a third range: the tail of the cut range goes too
        assert!(!s.remove(40..60));
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![0..40, 200..300]);
        // spanning two ranges needs no new entry
        assert!(s.remove(20..250));
        assert_eq!(s.iter().cloned().collect::<Vec<_>>(), vec![0..20, 250..300]);
    }
}
