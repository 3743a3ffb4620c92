//! Linked Increases Algorithm (RFC 6356), the MPTCP coupled congestion control.

use super::{rtt_secs, AckContext, Classic, CouplingView, RenoCore, WindowIncrease};
use crate::time::{Duration, Instant};

/// RFC 6356 section 3:
/// `alpha = cwnd_total * max_i(cwnd_i / rtt_i^2) / (sum_i cwnd_i / rtt_i)^2`
/// over the usable paths; `None` when no path is usable.
pub fn lia_alpha(view: &CouplingView) -> Option<f64> {
    let mut total = 0.0;
    let mut best: f64 = 0.0;
    let mut sum = 0.0;
    let mut any = false;
    for p in view.paths().iter().filter(|p| p.usable) {
        let w = f64::from(p.cwnd);
        let r = rtt_secs(p.srtt);
        total += w;
        best = best.max(w / (r * r));
        sum += w / r;
        any = true;
    }
    if !any || sum <= 0.0 {
        return None;
    }
    Some(total * best / (sum * sum))
}

/// Lia's congestion-avoidance increase; [`Lia`] is the controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct LiaIncrease;

/// Lia: [`Classic`] with [`LiaIncrease`].
pub type Lia = Classic<LiaIncrease>;

impl WindowIncrease for LiaIncrease {
    fn name(&self) -> &'static str {
        "lia"
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
        let Some(view) = view else {
            core.reno_ca(acked);
            return;
        };
        let Some(alpha) = lia_alpha(&view) else {
            core.reno_ca(acked);
            return;
        };
        let total: f64 = view
            .paths()
            .iter()
            .filter(|p| p.usable)
            .map(|p| f64::from(p.cwnd))
            .sum();
        let a = f64::from(acked);
        let mss = f64::from(core.mss);
        // RFC 6356: min(alpha * bytes_acked * MSS_i / cwnd_total, bytes_acked * MSS_i / cwnd_i)
        let coupled = alpha * a * mss / total.max(1.0);
        let uncoupled = a * mss / f64::from(core.cwnd.max(1));
        core.grow(coupled.min(uncoupled));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cc::test_util::{ctx, view};
    use crate::cc::CongestionControl;
    use crate::cc::Reno;

    #[test]
    fn alpha_on_two_paths() {
        // path 0: 20 kB at 100 ms, path 1: 10 kB at 50 ms
        let v = view(&[(20_000, 100), (10_000, 50)], 0);
        let a = lia_alpha(&v).unwrap();
        // total 30000; max(20000/0.01, 10000/0.0025) = 4e6; sum = 200000 + 200000 = 4e5
        let expect = 30_000.0 * 4.0e6 / (4.0e5f64 * 4.0e5);
        assert!((a - expect).abs() < 1e-9, "{a} vs {expect}");
        assert!((a - 0.75).abs() < 1e-9);
        // equal paths: alpha = n * w * (w/r^2) / (n w / r)^2 = 1/n
        let v = view(&[(10_000, 100), (10_000, 100)], 1);
        assert!((lia_alpha(&v).unwrap() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn increase_never_exceeds_reno_on_same_path() {
        let t = Instant::ZERO;
        for paths in [
            [(20_000u32, 100u64), (10_000, 50)],
            [(10_000, 10), (50_000, 300)],
            [(5_000, 20), (5_000, 20)],
        ] {
            for me in 0..2 {
                let v = view(&paths, me);
                let mut lia = Lia::new(1000);
                let mut reno = Reno::new(1000);
                let c0 = ctx(100_000, 1000);
                // leave slow start at the same window
                lia.on_congestion_event(t, &c0);
                reno.on_congestion_event(t, &c0);
                let c = AckContext {
                    coupling: Some(&v),
                    ..ctx(50_000, 1000)
                };
                for _ in 0..500 {
                    let before = lia.cwnd();
                    lia.on_ack(t, 1000, None, &c);
                    reno.on_ack(t, 1000, None, &c);
                    // Reno's per-ACK increase is bytes_acked * MSS / cwnd
                    let reno_inc = (1000.0 * 1000.0 / f64::from(before)).ceil() as u32;
                    assert!(lia.cwnd() - before <= reno_inc);
                    assert!(lia.cwnd() <= reno.cwnd() + 1000);
                }
                assert!(lia.cwnd() > 50_000, "LIA still grows");
            }
        }
    }

    #[test]
    fn halves_on_loss() {
        let mut l = Lia::new(1000);
        l.on_congestion_event(Instant::ZERO, &ctx(30_000, 1000));
        assert_eq!(l.cwnd(), 15_000);
    }
}
