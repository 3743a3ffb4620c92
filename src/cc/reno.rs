//! TCP Reno / NewReno window adjustment (RFC 5681).

use super::{AckContext, CongestionControl, RenoCore};
use crate::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct Reno {
    core: RenoCore,
}

impl Reno {
    pub fn new(mss: u16) -> Self {
        Reno {
            core: RenoCore::new(mss),
        }
    }
}

impl CongestionControl for Reno {
    fn name(&self) -> &'static str {
        "reno"
    }
    fn cwnd(&self) -> u32 {
        self.core.cwnd
    }
    fn ssthresh(&self) -> u32 {
        self.core.ssthresh
    }
    fn on_ack(&mut self, _now: Instant, acked: u32, _rtt: Option<Duration>, ctx: &AckContext) {
        self.core.set_mss(ctx.mss);
        let mut acked = acked;
        if self.core.in_slow_start() {
            acked = self.core.slow_start(acked);
        }
        if acked > 0 {
            self.core.reno_ca(acked);
        }
    }
    fn on_congestion_event(&mut self, _now: Instant, ctx: &AckContext) {
        self.core.set_mss(ctx.mss);
        self.core.halve(ctx.in_flight);
    }
    fn on_rto(&mut self, _now: Instant, ctx: &AckContext) {
        self.core.set_mss(ctx.mss);
        self.core.rto(ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cc::test_util::ctx;

    #[test]
    fn slow_start_then_avoidance_then_loss() {
        let t = Instant::ZERO;
        let mut r = Reno::new(1000);
        let c = ctx(10_000, 1000);
        // slow start: one MSS per ACK of a full segment
        for _ in 0..10 {
            r.on_ack(t, 1000, None, &c);
        }
        assert_eq!(r.cwnd(), 20_000);
        // loss: half the flight
        r.on_congestion_event(t, &ctx(20_000, 1000));
        assert_eq!(r.ssthresh(), 10_000);
        assert_eq!(r.cwnd(), 10_000);
        // avoidance: one MSS per window of acked bytes
        for _ in 0..10 {
            r.on_ack(t, 1000, None, &c);
        }
        assert_eq!(r.cwnd(), 11_000);
        for _ in 0..10 {
            r.on_ack(t, 1000, None, &c);
        }
        assert_eq!(r.cwnd(), 11_000, "needs 11 segments now");
        r.on_ack(t, 1000, None, &c);
        assert_eq!(r.cwnd(), 12_000);
        // RTO: one segment, ssthresh at least 2 MSS
        r.on_rto(t, &ctx(1000, 1000));
        assert_eq!(r.cwnd(), 1000);
        assert_eq!(r.ssthresh(), 2000);
    }
}
