//! Data sequence number arithmetic: expanding 32-bit wire values to 64 bits.

/// Expand the 32-bit value `low` to the 64-bit value with those low bits that is closest to
/// `reference` (RFC 8684 section 3.3: implementations infer the upper 32 bits).
pub fn expand32(low: u32, reference: u64) -> u64 {
    let base = reference & !0xffff_ffffu64;
    let cand = base | u64::from(low);
    let below = cand.checked_sub(1 << 32);
    let above = cand.checked_add(1 << 32);
    let dist = |v: u64| v.abs_diff(reference);
    let mut best = cand;
    for v in [below, above].into_iter().flatten() {
        if dist(v) < dist(best) {
            best = v;
        }
    }
    best
}

/// `a - b` in the circular 64-bit data sequence space: positive when `a` is after `b`.
pub fn diff(a: u64, b: u64) -> i64 {
    a.wrapping_sub(b) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wraps_both_ways() {
        assert_eq!(expand32(5, 0x1_0000_0000), 0x1_0000_0005);
        assert_eq!(expand32(0xffff_fff0, 0x1_0000_0005), 0xffff_fff0);
        assert_eq!(expand32(3, 0x1_ffff_fff0), 0x2_0000_0003);
        assert_eq!(expand32(7, 0), 7);
        assert_eq!(expand32(0xffff_ffff, 0), 0xffff_ffff);
    }

    #[test]
    fn diff_is_circular() {
        assert_eq!(diff(5, 3), 2);
        assert_eq!(diff(3, 5), -2);
        assert_eq!(diff(2, u64::MAX - 1), 4);
        assert_eq!(diff(u64::MAX, 1), -2);
    }

    proptest! {
        #[test]
        fn recovers_values_near_reference(reference in 0u64..u64::MAX / 2, delta in -(1i64 << 30)..(1i64 << 30)) {
            let v = (reference as i64 + delta).max(0) as u64;
            prop_assert_eq!(expand32(v as u32, reference), v);
        }
    }
}
