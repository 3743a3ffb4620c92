//! BALIA, Balanced Linked Adaptation (Peng, Walid, Hwang, Low, 2016).
//!
//! Per ACK of one segment on path r (`x_k = w_k / rtt_k`, `alpha_r = max_k x_k / x_r`):
//! `w_r += x_r / (rtt_r * (sum_k x_k)^2) * (1 + alpha_r) / 2 * (4 + alpha_r) / 5`;
//! on loss `w_r -= w_r / 2 * min(alpha_r, 1.5)`.

use super::{rtt_secs, AckContext, Classic, CouplingView, RenoCore, WindowIncrease};
use crate::time::{Duration, Instant};

/// Balia's congestion-avoidance increase; [`Balia`] is the controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct BaliaIncrease;

/// Balia: [`Classic`] with [`BaliaIncrease`].
pub type Balia = Classic<BaliaIncrease>;

/// (x_me, sum x, alpha_me) in segments per second.
fn rates(view: &CouplingView) -> Option<(f64, f64, f64)> {
    let mut sum = 0.0;
    let mut max: f64 = 0.0;
    for p in view.paths().iter().filter(|p| p.usable) {
        let x = f64::from(p.cwnd) / f64::from(p.mss.max(1)) / rtt_secs(p.srtt);
        sum += x;
        max = max.max(x);
    }
    let me = view.paths.get(view.me)?;
    let x = f64::from(me.cwnd) / f64::from(me.mss.max(1)) / rtt_secs(me.srtt);
    if x <= 0.0 || sum <= 0.0 {
        return None;
    }
    Some((x, sum, max / x))
}

impl WindowIncrease for BaliaIncrease {
    fn name(&self) -> &'static str {
        "balia"
    }
    fn coupled(&self) -> bool {
        true
    }
    fn on_ca_ack(
        &mut self,
        core: &mut RenoCore,
        _now: Instant,
        acked: u32,
        _rtt: Option<Duration>,
        ctx: &AckContext,
    ) {
        let view = ctx.coupling.and_then(|v| v.with_me(core.cwnd));
        let rs = view
            .as_ref()
            .and_then(|v| rates(v).map(|r| (r, rtt_secs(v.paths[v.me].srtt))));
        let Some(((x, sum, alpha), rtt)) = rs else {
            core.reno_ca(acked);
            return;
        };
        let per_seg = x / (rtt * sum * sum) * (1.0 + alpha) / 2.0 * (4.0 + alpha) / 5.0;
        let mss = f64::from(core.mss);
        core.grow(per_seg * f64::from(acked) / mss * mss);
    }
    fn on_congestion_event(&mut self, core: &mut RenoCore, _now: Instant, ctx: &AckContext) {
        let alpha = ctx
            .coupling
            .and_then(|v| v.with_me(core.cwnd))
            .and_then(|v| rates(&v))
            .map(|r| r.2);
        match alpha {
            None => core.halve(ctx.in_flight),
            Some(a) => {
                let w = f64::from(core.cwnd);
                let new = (w - w / 2.0 * a.min(1.5)).max(f64::from(2 * core.mss));
                core.halve(ctx.in_flight);
                core.cwnd = new as u32;
                core.ssthresh = core.cwnd;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cc::test_util::{ctx, view};
    use crate::cc::CongestionControl;

    #[test]
    fn equal_paths_growth_and_loss() {
        let t = Instant::ZERO;
        let mut b = Balia::new(1000);
        b.on_congestion_event(t, &ctx(40_000, 1000));
        assert_eq!(b.cwnd(), 20_000);
        let v = view(&[(20_000, 100), (20_000, 100)], 0);
        let c = AckContext {
            coupling: Some(&v),
            ..ctx(20_000, 1000)
        };
        // alpha = 1: per segment 1/(w * 4) -> 20 acks of 1 segment at w=20 grow ~0.25 segment
        for _ in 0..20 {
            b.on_ack(t, 1000, None, &c);
        }
        let grown = b.cwnd() - 20_000;
        assert!((200..=300).contains(&grown), "grew {grown}");
        // loss with alpha = 1: w -= w/2
        let before = b.cwnd();
        b.on_congestion_event(t, &c);
        assert!((i64::from(b.cwnd()) - i64::from(before / 2)).abs() <= 1);
    }

    #[test]
    fn slow_path_backs_off_less_than_half_is_capped() {
        let t = Instant::ZERO;
        let mut b = Balia::new(1000);
        b.on_congestion_event(t, &ctx(40_000, 1000)); // cwnd 20 kB
                                                      // the other path is 4x faster: alpha_me = 4 -> min(4, 1.5) = 1.5 -> w * 0.25
        let v = view(&[(20_000, 100), (20_000, 25)], 0);
        let c = AckContext {
            coupling: Some(&v),
            ..ctx(20_000, 1000)
        };
        b.on_congestion_event(t, &c);
        assert_eq!(b.cwnd(), 5_000);
    }
}
