//! BALIA, the Balanced Linked Adaptation algorithm (Peng, Walid, Hwang, Low, IEEE/ACM ToN 2016).
//!
//! With `x_r = w_r / rtt_r` and `alpha_r = max_k x_k / x_r`, each acknowledged segment on
//! path r grows w_r by `(x_r / rtt_r) / (sum_k x_k)^2 * (1 + alpha_r)/2 * (4 + alpha_r)/5`
//! segments; a loss shrinks it by `w_r / 2 * min(alpha_r, 1.5)`.

use super::{AckContext, CongestionControl, CouplingView, Window};
use crate::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Balia {
    w: Window,
}

impl Balia {
    pub fn new(mss: u16) -> Self {
        Balia {
            w: Window::new(mss),
        }
    }
}

fn alpha_and_increase(view: &CouplingView) -> Option<(f64, f64)> {
    let n = view.len.min(super::MAX_COUPLED);
    let me = view
        .paths
        .get(view.me)
        .filter(|p| p.usable && !p.srtt.is_zero())?;
    let x = |p: &super::PathCc| f64::from(p.cwnd) / f64::from(p.mss.max(1)) / p.srtt.as_secs_f64();
    let mut sum = 0.0;
    let mut max = 0.0f64;
    for p in view.paths[..n]
        .iter()
        .filter(|p| p.usable && !p.srtt.is_zero())
    {
        sum += x(p);
        max = max.max(x(p));
    }
    let xr = x(me);
    if xr <= 0.0 || sum <= 0.0 {
        return None;
    }
    let a = max / xr;
    let inc = (xr / me.srtt.as_secs_f64()) / (sum * sum) * (1.0 + a) / 2.0 * (4.0 + a) / 5.0;
    Some((a, inc))
}

impl CongestionControl for Balia {
    fn name(&self) -> &'static str {
        "balia"
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
        let per_seg = match ctx.coupling.and_then(alpha_and_increase) {
            Some((_, inc)) => inc.min(f64::from(mss) / f64::from(self.w.cwnd.max(1))),
            None => f64::from(mss) / f64::from(self.w.cwnd.max(1)),
        };
        self.w.grow(rest, (per_seg * 1e6) as u64, 1_000_000);
    }
    fn on_congestion_event(&mut self, _now: Instant, ctx: &AckContext<'_>) {
        let factor = match ctx.coupling.and_then(alpha_and_increase) {
            Some((a, _)) => 1.0 - 0.5 * a.min(1.5),
            None => 0.5,
        };
        self.w
            .decrease(ctx.in_flight, ctx.mss, (factor * 1000.0) as u32);
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
    fn slower_path_backs_off_more() {
        let mut v = CouplingView {
            me: 0,
            len: 2,
            paths: [PathCc::default(); MAX_COUPLED],
        };
        v.paths[0] = PathCc {
            cwnd: 20_000,
            srtt: Duration::from_millis(10),
            mss: 1000,
            usable: true,
            ..PathCc::default()
        };
        v.paths[1] = PathCc {
            cwnd: 20_000,
            srtt: Duration::from_millis(100),
            mss: 1000,
            usable: true,
            ..PathCc::default()
        };
        let (a_fast, _) = alpha_and_increase(&v).unwrap();
        v.me = 1;
        let (a_slow, _) = alpha_and_increase(&v).unwrap();
        assert!((a_fast - 1.0).abs() < 1e-9);
        assert!(a_slow > 1.0);
        let mut b = Balia::new(1000);
        let ctx = AckContext {
            in_flight: 10_000,
            mss: 1000,
            srtt: None,
            coupling: Some(&v),
        };
        b.on_congestion_event(Instant::ZERO, &ctx);
        assert_eq!(b.cwnd(), 2_500); // 10000 * (1 - 0.5 * 1.5), floored at 2 MSS
    }
}
