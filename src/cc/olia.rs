//! OLIA, the Opportunistic Linked-Increases Algorithm (Khalili, Gast, Popovic, Le Boudec,
//! IEEE/ACM ToN 2013).
//!
//! Per acknowledged segment on path r (windows in segments):
//! `dw_r = (w_r / rtt_r^2) / (sum_p w_p / rtt_p)^2 + alpha_r / w_r`, where alpha moves
//! window from the paths with the largest windows towards the "best" paths (largest
//! `l_r^2 / rtt_r`, l_r the bytes between losses) that do not have the largest window.

use super::{AckContext, CongestionControl, CouplingView, Window};
use crate::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Olia {
    w: Window,
}

impl Olia {
    pub fn new(mss: u16) -> Self {
        Olia {
            w: Window::new(mss),
        }
    }
}

/// OLIA's per-segment increase for path `view.me`, in segments; None without usable paths.
pub fn increase(view: &CouplingView) -> Option<f64> {
    let n = view.len.min(super::MAX_COUPLED);
    let paths = &view.paths[..n];
    let me = paths.get(view.me)?;
    if !me.usable || me.srtt.is_zero() {
        return None;
    }
    let seg = |p: &super::PathCc| f64::from(p.cwnd) / f64::from(p.mss.max(1));
    let usable: Vec<usize> = (0..n)
        .filter(|&i| paths[i].usable && !paths[i].srtt.is_zero())
        .collect();
    if usable.is_empty() {
        return None;
    }
    let sum: f64 = usable
        .iter()
        .map(|&i| seg(&paths[i]) / paths[i].srtt.as_secs_f64())
        .sum();
    let r = me.srtt.as_secs_f64();
    let w = seg(me).max(1.0);
    let first = (w / (r * r)) / (sum * sum);
    // alpha
    let max_w = usable.iter().map(|&i| seg(&paths[i])).fold(0.0, f64::max);
    let quality = |i: usize| {
        let l = paths[i]
            .bytes_since_loss
            .max(paths[i].bytes_between_last_losses) as f64;
        l * l / paths[i].srtt.as_secs_f64()
    };
    let best_q = usable.iter().map(|&i| quality(i)).fold(0.0, f64::max);
    let in_max = |i: usize| (seg(&paths[i]) - max_w).abs() < 1e-9;
    let collected: Vec<usize> = usable
        .iter()
        .copied()
        .filter(|&i| (quality(i) - best_q).abs() < 1e-9 && !in_max(i))
        .collect();
    let maxes = usable.iter().filter(|&&i| in_max(i)).count() as f64;
    let np = usable.len() as f64;
    let alpha = if collected.is_empty() {
        0.0
    } else if collected.contains(&view.me) {
        1.0 / (np * collected.len() as f64)
    } else if in_max(view.me) {
        -1.0 / (np * maxes)
    } else {
        0.0
    };
    Some(first + alpha / w)
}

impl CongestionControl for Olia {
    fn name(&self) -> &'static str {
        "olia"
    }
    fn cwnd(&self) -> u32 {
        self.w.cwnd
    }
    fn ssthresh(&self) -> u32 {
        self.w.ssthresh
    }
    fn on_ack(&mut self, _now: Instant, acked: u32, _rtt: Option<Duration>, ctx: &AckContext<'_>) {
        let mss = ctx.mss.max(1);
        let rest = if self.w.in_slow_start() {
            self.w.slow_start(acked, mss)
        } else {
            acked
        };
        if rest == 0 {
            return;
        }
        let per_seg = match ctx.coupling.and_then(increase) {
            Some(x) => x,
            None => f64::from(mss) / f64::from(self.w.cwnd.max(1)),
        };
        // per acknowledged byte: per_seg segments per segment = per_seg bytes per byte
        if per_seg >= 0.0 {
            self.w.grow(rest, (per_seg * 1e6) as u64, 1_000_000);
        } else {
            let dec = (-per_seg * f64::from(rest)) as u32;
            self.w.cwnd = self.w.cwnd.saturating_sub(dec).max(2 * u32::from(mss));
        }
    }
    fn on_congestion_event(&mut self, _now: Instant, ctx: &AckContext<'_>) {
        self.w.decrease(ctx.in_flight, ctx.mss, 500);
    }
    fn on_rto(&mut self, _now: Instant, ctx: &AckContext<'_>) {
        self.w.timeout(ctx.in_flight, ctx.mss);
    }
    fn penalise(&mut self, mss: u16) {
        self.w.decrease(0, mss, 500);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cc::{PathCc, MAX_COUPLED};

    #[test]
    fn single_path_is_reno_like() {
        let mut v = CouplingView {
            me: 0,
            len: 1,
            paths: [PathCc::default(); MAX_COUPLED],
        };
        v.paths[0] = PathCc {
            cwnd: 10_000,
            srtt: Duration::from_millis(100),
            mss: 1000,
            usable: true,
            ..PathCc::default()
        };
        // w/r^2 / (w/r)^2 = 1/w segments per segment, alpha 0
        let inc = increase(&v).unwrap();
        assert!((inc - 0.1).abs() < 1e-9, "{inc}");
    }

    #[test]
    fn better_small_path_gets_positive_alpha() {
        let mut v = CouplingView {
            me: 1,
            len: 2,
            paths: [PathCc::default(); MAX_COUPLED],
        };
        v.paths[0] = PathCc {
            cwnd: 40_000,
            srtt: Duration::from_millis(100),
            mss: 1000,
            usable: true,
            bytes_since_loss: 1000,
            ..PathCc::default()
        };
        v.paths[1] = PathCc {
            cwnd: 10_000,
            srtt: Duration::from_millis(100),
            mss: 1000,
            usable: true,
            bytes_since_loss: 100_000,
            ..PathCc::default()
        };
        let small = increase(&v).unwrap();
        v.me = 0;
        let big = increase(&v).unwrap();
        assert!(small > 0.0);
        assert!(big < small);
    }
}
