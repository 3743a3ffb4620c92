//! TCP Reno / NewReno window adjustment (RFC 5681).

use super::{AckContext, Classic, RenoCore, WindowIncrease};
use crate::time::{Duration, Instant};

/// Reno's congestion-avoidance increase; [`Reno`] is the controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenoIncrease;

/// Reno: [`Classic`] with [`RenoIncrease`].
pub type Reno = Classic<RenoIncrease>;

impl WindowIncrease for RenoIncrease {
    fn name(&self) -> &'static str {
        "reno"
    }
    fn on_ca_ack(
        &mut self,
        core: &mut RenoCore,
        _now: Instant,
        acked: u32,
        _rtt: Option<Duration>,
        _ctx: &AckContext,
    ) {
        core.reno_ca(acked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cc::test_util::ctx;
    use crate::cc::CongestionControl;

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
