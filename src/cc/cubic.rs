//! CUBIC (RFC 9438).

use super::{AckContext, Classic, RenoCore, WindowIncrease};
use crate::time::{Duration, Instant};

const C: f64 = 0.4;
const BETA: f64 = 0.7;

/// CUBIC's state and window function; [`Cubic`] is the controller.
#[derive(Clone, Debug, Default)]
pub struct CubicIncrease {
    /// Window before the last reduction, in segments.
    w_max: f64,
    /// Start of the current congestion-avoidance epoch.
    epoch: Option<Instant>,
    k: f64,
    /// Reno-friendly estimate (RFC 9438 4.3), in segments.
    w_est: f64,
    /// Window when the epoch started, in segments.
    cwnd_epoch: f64,
}

/// CUBIC (RFC 9438): [`Classic`] with [`CubicIncrease`].
pub type Cubic = Classic<CubicIncrease>;

/// The window in segments.
fn segs(core: &RenoCore) -> f64 {
    f64::from(core.cwnd) / f64::from(core.mss)
}

impl CubicIncrease {
    fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }

    fn reduce(&mut self, core: &mut RenoCore, rto: bool, hold_ssthresh: bool) {
        self.epoch = None;
        if rto && hold_ssthresh {
            // the loss was already answered (RFC 5681 3.1): only the window collapses
            core.cwnd = core.mss;
            return;
        }
        let cwnd = segs(core);
        // fast convergence (RFC 9438 4.7)
        self.w_max = if cwnd < self.w_max {
            cwnd * (1.0 + BETA) / 2.0
        } else {
            cwnd
        };
        // RFC 9438 4.6: ssthresh = cwnd * beta_cubic
        let ss = (cwnd * BETA * f64::from(core.mss)) as u32;
        core.ssthresh = ss.max(2 * core.mss);
        if rto {
            core.cwnd = core.mss;
        } else {
            core.cwnd = core.ssthresh;
        }
        self.epoch = None;
    }
}

impl WindowIncrease for CubicIncrease {
    fn name(&self) -> &'static str {
        "cubic"
    }
    fn on_ca_ack(
        &mut self,
        core: &mut RenoCore,
        now: Instant,
        acked: u32,
        rtt: Option<Duration>,
        ctx: &AckContext,
    ) {
        let mss = f64::from(core.mss);
        let cwnd = segs(core);
        let epoch = match self.epoch {
            Some(e) => e,
            None => {
                self.epoch = Some(now);
                self.cwnd_epoch = cwnd;
                self.w_est = cwnd;
                if self.w_max <= cwnd {
                    self.w_max = cwnd;
                    self.k = 0.0;
                } else {
                    self.k = ((self.w_max - cwnd) / C).cbrt();
                }
                now
            }
        };
        let t = (now - epoch).as_secs_f64();
        let rtt = rtt.or(ctx.srtt).map_or(0.1, |d| d.as_secs_f64());
        let acked_segs = f64::from(acked) / mss;
        // Reno-friendly region
        let alpha = if self.w_est >= self.w_max {
            1.0
        } else {
            3.0 * (1.0 - BETA) / (1.0 + BETA)
        };
        self.w_est += alpha * acked_segs / cwnd.max(1.0);
        let target = self.w_cubic(t + rtt).clamp(cwnd, 1.5 * cwnd);
        if self.w_cubic(t) < self.w_est {
            let new = (self.w_est * mss) as u32;
            if new > core.cwnd {
                core.cwnd = new;
            }
        } else {
            let inc = (target - cwnd) / cwnd.max(1.0) * acked_segs;
            core.grow(inc * mss);
        }
    }
    fn on_congestion_event(&mut self, core: &mut RenoCore, _now: Instant, _ctx: &AckContext) {
        self.reduce(core, false, false);
    }
    fn on_rto(&mut self, core: &mut RenoCore, _now: Instant, ctx: &AckContext) {
        self.reduce(core, true, ctx.hold_ssthresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cc::test_util::ctx;
    use crate::cc::CongestionControl;

    #[test]
    fn slow_start_growth_and_beta_reduction() {
        let t = Instant::ZERO;
        let mut c = Cubic::new(1000);
        for _ in 0..30 {
            c.on_ack(t, 1000, None, &ctx(10_000, 1000));
        }
        assert_eq!(c.cwnd(), 40_000);
        c.on_congestion_event(t, &ctx(40_000, 1000));
        assert_eq!(c.cwnd(), 28_000, "multiplicative decrease by beta 0.7");
        assert_eq!(c.ssthresh(), 28_000);
    }

    #[test]
    fn cubic_growth_is_concave_then_convex_around_w_max() {
        let mut c = Cubic::new(1000);
        let mut now = Instant::ZERO;
        for _ in 0..90 {
            c.on_ack(now, 1000, None, &ctx(10_000, 1000));
        }
        assert_eq!(c.cwnd(), 100_000);
        c.on_congestion_event(now, &ctx(100_000, 1000));
        assert_eq!(c.cwnd(), 70_000);
        let rtt = Duration::from_millis(100);
        // K = cbrt(30 / 0.4) = 4.2 s. Feed one window of ACKs per RTT.
        let mut samples = Vec::new();
        for _ in 0..100 {
            let w = c.cwnd() / 1000;
            for _ in 0..w {
                c.on_ack(now, 1000, Some(rtt), &ctx(c.cwnd(), 1000));
            }
            now += rtt;
            samples.push(c.cwnd());
        }
        // grows, approaches w_max slowly near K (~4.2s), then grows beyond it
        assert!(samples[5] > 70_000);
        let near_k = samples[42];
        assert!((95_000..=102_000).contains(&near_k), "near K: {near_k}");
        let growth_early = samples[10] - samples[0];
        let growth_plateau = samples[45] - samples[38];
        assert!(
            growth_plateau < growth_early,
            "{growth_plateau} vs {growth_early}"
        );
        assert!(
            samples[99] > 110_000,
            "convex growth beyond w_max: {}",
            samples[99]
        );
    }

    #[test]
    fn rto_collapses_to_one_segment() {
        let mut c = Cubic::new(1000);
        c.on_rto(Instant::ZERO, &ctx(10_000, 1000));
        assert_eq!(c.cwnd(), 1000);
        assert_eq!(c.ssthresh(), 7000);
    }
}
