//! CUBIC (RFC 9438), in bytes, with the Reno-friendly region.

use super::{AckContext, CongestionControl, Window};
use crate::time::{Duration, Instant};

const C: f64 = 0.4;
const BETA: f64 = 0.7;

#[derive(Clone, Debug)]
pub struct Cubic {
    w: Window,
    /// Window before the last reduction, in segments.
    w_max: f64,
    /// Start of the current congestion-avoidance epoch.
    epoch: Option<Instant>,
    k: f64,
    /// Reno-friendly estimate, in segments.
    w_est: f64,
}

impl Cubic {
    pub fn new(mss: u16) -> Self {
        Cubic {
            w: Window::new(mss),
            w_max: 0.0,
            epoch: None,
            k: 0.0,
            w_est: 0.0,
        }
    }

    fn reduce(&mut self, in_flight: u32, mss: u16) {
        let seg = f64::from(mss.max(1));
        let cur = f64::from(self.w.cwnd) / seg;
        // fast convergence
        self.w_max = if cur < self.w_max {
            cur * (1.0 + BETA) / 2.0
        } else {
            cur
        };
        self.w.decrease(in_flight, mss, (BETA * 1000.0) as u32);
        self.epoch = None;
    }
}

impl CongestionControl for Cubic {
    fn name(&self) -> &'static str {
        "cubic"
    }
    fn cwnd(&self) -> u32 {
        self.w.cwnd
    }
    fn ssthresh(&self) -> u32 {
        self.w.ssthresh
    }
    fn on_ack(&mut self, now: Instant, acked: u32, rtt: Option<Duration>, ctx: &AckContext<'_>) {
        let mss = ctx.mss.max(1);
        let rest = if self.w.in_slow_start() {
            self.w.slow_start(acked, mss)
        } else {
            acked
        };
        if rest == 0 {
            return;
        }
        let seg = f64::from(mss);
        let cwnd_seg = f64::from(self.w.cwnd) / seg;
        let epoch = *self.epoch.get_or_insert_with(|| {
            self.k = if self.w_max > cwnd_seg {
                ((self.w_max - cwnd_seg) / C).cbrt()
            } else {
                0.0
            };
            self.w_est = cwnd_seg;
            now
        });
        let rtt = rtt
            .or(ctx.srtt)
            .unwrap_or(Duration::from_millis(100))
            .as_secs_f64();
        let t = (now - epoch).as_secs_f64() + rtt;
        let target =
            (C * (t - self.k).powi(3) + self.w_max.max(cwnd_seg.min(self.w_max))).max(cwnd_seg);
        // Reno-friendly estimate: alpha = 3(1-beta)/(1+beta) segments per RTT
        let alpha = 3.0 * (1.0 - BETA) / (1.0 + BETA);
        self.w_est += alpha * f64::from(rest) / f64::from(self.w.cwnd.max(1));
        let goal = target.max(self.w_est);
        if goal > cwnd_seg {
            // increase by (goal - cwnd)/cwnd segments per acknowledged segment
            let per_byte = ((goal - cwnd_seg) / cwnd_seg).min(0.5);
            let inc = (per_byte * f64::from(rest)) as u64;
            let inc = inc.max(u64::from(self.w.cwnd < (goal * seg) as u32));
            self.w.grow(inc.min(u64::from(u32::MAX)) as u32, 1, 1);
        }
    }
    fn on_congestion_event(&mut self, _now: Instant, ctx: &AckContext<'_>) {
        self.reduce(ctx.in_flight, ctx.mss);
    }
    fn on_rto(&mut self, _now: Instant, ctx: &AckContext<'_>) {
        self.reduce(ctx.in_flight, ctx.mss);
        self.w.timeout(ctx.in_flight, ctx.mss);
    }
    fn penalise(&mut self, mss: u16) {
        self.w.decrease(0, mss, 500);
        self.epoch = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_to_beta_and_regrows_towards_wmax() {
        let mss = 1000;
        let ctx = AckContext {
            in_flight: 0,
            mss,
            srtt: Some(Duration::from_millis(50)),
            coupling: None,
        };
        let mut c = Cubic::new(mss);
        let mut now = Instant::ZERO;
        for _ in 0..90 {
            c.on_ack(now, 1000, None, &ctx);
        }
        assert_eq!(c.cwnd(), 100_000);
        c.on_congestion_event(
            now,
            &AckContext {
                in_flight: 100_000,
                ..ctx
            },
        );
        assert_eq!(c.cwnd(), 70_000);
        // a few seconds of acks bring it back near w_max (K = cbrt(30/0.4) ~ 4.2 s)
        for _ in 0..200 {
            now += Duration::from_millis(50);
            for _ in 0..70 {
                c.on_ack(now, 1000, Some(Duration::from_millis(50)), &ctx);
            }
        }
        assert!(c.cwnd() > 95_000, "cwnd {}", c.cwnd());
    }
}
