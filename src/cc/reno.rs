//! NewReno congestion avoidance (RFC 5681).

use super::{AckContext, CongestionControl, Window};
use crate::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Reno {
    w: Window,
}

impl Reno {
    pub fn new(mss: u16) -> Self {
        Reno {
            w: Window::new(mss),
        }
    }
}

impl CongestionControl for Reno {
    fn name(&self) -> &'static str {
        "reno"
    }
    fn cwnd(&self) -> u32 {
        self.w.cwnd
    }
    fn ssthresh(&self) -> u32 {
        self.w.ssthresh
    }
    fn on_ack(&mut self, _now: Instant, acked: u32, _rtt: Option<Duration>, ctx: &AckContext<'_>) {
        let rest = if self.w.in_slow_start() {
            self.w.slow_start(acked, ctx.mss)
        } else {
            acked
        };
        if rest > 0 {
            // one MSS per cwnd of acknowledged bytes
            let cwnd = u64::from(self.w.cwnd.max(1));
            self.w.grow(rest, u64::from(ctx.mss), cwnd);
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

    fn ctx(mss: u16) -> AckContext<'static> {
        AckContext {
            in_flight: 0,
            mss,
            srtt: None,
            coupling: None,
        }
    }

    #[test]
    fn slow_start_then_linear() {
        let mut r = Reno::new(1000);
        let t = Instant::ZERO;
        r.on_ack(t, 1000, None, &ctx(1000));
        assert_eq!(r.cwnd(), 11_000);
        r.on_congestion_event(
            t,
            &AckContext {
                in_flight: 11_000,
                ..ctx(1000)
            },
        );
        assert_eq!(r.cwnd(), 5_500);
        assert_eq!(r.ssthresh(), 5_500);
        // one cwnd of acks grows the window by one MSS
        for _ in 0..55 {
            r.on_ack(t, 100, None, &ctx(1000));
        }
        // (a little under one MSS: each increment uses the window as it grows)
        assert!((6_400..=6_500).contains(&r.cwnd()), "cwnd {}", r.cwnd());
        let w = r.cwnd();
        r.on_rto(t, &ctx(1000));
        assert_eq!(r.cwnd(), 1000);
        assert_eq!(r.ssthresh(), w / 2);
    }
}
