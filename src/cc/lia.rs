//! LIA, the Linked Increases Algorithm (RFC 6356).
//!
//! In congestion avoidance each acknowledged byte on path i grows cwnd_i by
//! `min(alpha * mss_i / cwnd_total, mss_i / cwnd_i)` bytes, where
//! `alpha = cwnd_total * max_i(cwnd_i / rtt_i^2) / (sum_i cwnd_i / rtt_i)^2`.
//! The `min` keeps each path at most as aggressive as Reno on it (RFC 6356 goal 2).

use super::{AckContext, CongestionControl, CouplingView, Window};
use crate::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Lia {
    w: Window,
}

impl Lia {
    pub fn new(mss: u16) -> Self {
        Lia {
            w: Window::new(mss),
        }
    }
}

/// RFC 6356 alpha and the total window, from a coupling view.
pub fn alpha(view: &CouplingView) -> Option<(f64, f64)> {
    let mut total = 0.0;
    let mut best = 0.0f64;
    let mut sum = 0.0;
    for p in view.usable() {
        let w = f64::from(p.cwnd);
        let r = p.srtt.as_secs_f64();
        total += w;
        best = best.max(w / (r * r));
        sum += w / r;
    }
    if sum <= 0.0 || total <= 0.0 {
        return None;
    }
    Some((total * best / (sum * sum), total))
}

impl CongestionControl for Lia {
    fn name(&self) -> &'static str {
        "lia"
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
        let own = f64::from(mss) / f64::from(self.w.cwnd.max(1));
        let per_byte = match ctx.coupling.and_then(alpha) {
            Some((a, total)) => (a * f64::from(mss) / total).min(own),
            None => own,
        };
        // accumulate in millionths of a byte
        let scaled = (per_byte * 1e6) as u64;
        self.w.grow(rest, scaled, 1_000_000);
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

    fn view(paths: &[(u32, u64)]) -> CouplingView {
        let mut v = CouplingView {
            me: 0,
            len: paths.len(),
            paths: [PathCc::default(); MAX_COUPLED],
        };
        for (i, (w, rtt)) in paths.iter().enumerate() {
            v.paths[i] = PathCc {
                cwnd: *w,
                srtt: Duration::from_millis(*rtt),
                mss: 1000,
                usable: true,
                ..PathCc::default()
            };
        }
        v
    }

    #[test]
    fn alpha_matches_rfc_formula_for_two_paths() {
        // equal windows and RTTs: alpha = 2w * (w/r^2) / (2w/r)^2 = 1/2
        let (a, total) = alpha(&view(&[(10_000, 100), (10_000, 100)])).unwrap();
        assert!((a - 0.5).abs() < 1e-9);
        assert_eq!(total, 20_000.0);
        // one path: alpha = 1 (Reno)
        let (a, _) = alpha(&view(&[(10_000, 100)])).unwrap();
        assert!((a - 1.0).abs() < 1e-9);
    }

    #[test]
    fn never_more_aggressive_than_reno_on_the_path() {
        let v = view(&[(20_000, 10), (20_000, 200)]);
        let mut lia = Lia::new(1000);
        let mut reno = crate::cc::reno::Reno::new(1000);
        let t = Instant::ZERO;
        let c = AckContext {
            in_flight: 20_000,
            mss: 1000,
            srtt: None,
            coupling: Some(&v),
        };
        lia.on_congestion_event(t, &c);
        reno.on_congestion_event(t, &c);
        for _ in 0..1000 {
            lia.on_ack(t, 1000, None, &c);
            reno.on_ack(
                t,
                1000,
                None,
                &AckContext {
                    coupling: None,
                    ..c
                },
            );
            assert!(lia.cwnd() <= reno.cwnd());
        }
        assert!(lia.cwnd() > 10_000, "LIA must still grow");
    }
}
