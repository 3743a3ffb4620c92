//! OLIA, Opportunistic Linked Increases (Khalili, Gast, Popovic, Le Boudec, 2013).
//!
//! Per ACK of one segment on path r (windows `w` in segments, `rtt` in seconds):
//! `w_r += (w_r / rtt_r^2) / (sum_p w_p / rtt_p)^2 + alpha_r / w_r`, and `w_r /= 2` on loss.
//! `l_p = max(bytes between the last two losses, bytes since the last loss)`; the best paths
//! B maximise `l_p / rtt_p^2` (an estimate of the TCP rate ordering), M are the paths with the
//! largest window. If B \ M is not empty, `alpha_r = 1 / (|P| * |B\M|)` for r in B \ M,
//! `alpha_r = -1 / (|P| * |M|)` for r in M, 0 otherwise; else alpha is 0 everywhere.

use super::{rtt_secs, AckContext, Classic, CouplingView, RenoCore, WindowIncrease, MAX_COUPLED};
use crate::time::{Duration, Instant};

/// Olia's congestion-avoidance increase; [`Olia`] is the controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct OliaIncrease;

/// Olia: [`Classic`] with [`OliaIncrease`].
pub type Olia = Classic<OliaIncrease>;

/// OLIA's alpha for path `view.me` (the view must have `me` in range).
pub(crate) fn olia_alpha(view: &CouplingView) -> f64 {
    let paths = view.paths();
    let mut best = 0.0f64;
    let mut maxw = 0u32;
    let mut usable = 0usize;
    for p in paths.iter().filter(|p| p.usable) {
        let l = p.bytes_since_loss.max(p.bytes_between_last_losses) as f64;
        let r = rtt_secs(p.srtt);
        best = best.max(l / (r * r));
        maxw = maxw.max(p.cwnd);
        usable += 1;
    }
    let mut in_b = [false; MAX_COUPLED];
    let mut in_m = [false; MAX_COUPLED];
    let (mut n_bm, mut n_m) = (0usize, 0usize);
    for (i, p) in paths.iter().enumerate() {
        if !p.usable {
            continue;
        }
        let l = p.bytes_since_loss.max(p.bytes_between_last_losses) as f64;
        let r = rtt_secs(p.srtt);
        in_b[i] = (l / (r * r)) >= best * (1.0 - 1e-12);
        in_m[i] = p.cwnd == maxw;
        if in_m[i] {
            n_m += 1;
        }
        if in_b[i] && !in_m[i] {
            n_bm += 1;
        }
    }
    if n_bm == 0 || usable == 0 {
        return 0.0;
    }
    let me = view.me;
    let n = usable as f64;
    if in_b[me] && !in_m[me] {
        1.0 / (n * n_bm as f64)
    } else if in_m[me] {
        -1.0 / (n * n_m as f64)
    } else {
        0.0
    }
}

impl WindowIncrease for OliaIncrease {
    fn name(&self) -> &'static str {
        "olia"
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
        let Some(view) = ctx.coupling.and_then(|v| v.with_me(core.cwnd)) else {
            core.reno_ca(acked);
            return;
        };
        let mss = f64::from(core.mss);
        let mut sum = 0.0;
        for p in view.paths().iter().filter(|p| p.usable) {
            let w = f64::from(p.cwnd) / f64::from(p.mss.max(1));
            sum += w / rtt_secs(p.srtt);
        }
        let me = &view.paths[view.me];
        let w = (f64::from(core.cwnd) / mss).max(1.0);
        let r = rtt_secs(me.srtt);
        if sum <= 0.0 {
            core.reno_ca(acked);
            return;
        }
        let per_seg = (w / (r * r)) / (sum * sum) + olia_alpha(&view) / w;
        let segs = f64::from(acked) / mss;
        let delta = per_seg * segs * mss;
        if delta >= 0.0 {
            core.grow(delta);
        } else {
            let dec = (-delta) as u32;
            core.cwnd = core.cwnd.saturating_sub(dec).max(core.mss);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cc::test_util::{ctx, view};
    use crate::cc::CongestionControl;

    #[test]
    fn alpha_moves_window_towards_best_path() {
        // path 0 has the biggest window but path 1 is "best" (long inter-loss distance)
        let mut v = view(&[(40_000, 100), (10_000, 100)], 0);
        v.paths[0].bytes_since_loss = 100_000;
        v.paths[1].bytes_since_loss = 1_000_000;
        assert!((olia_alpha(&v) + 0.5).abs() < 1e-9);
        v.me = 1;
        assert!((olia_alpha(&v) - 0.5).abs() < 1e-9);
        // best path also has the max window: alpha = 0
        v.paths[0].bytes_since_loss = 10_000_000;
        assert_eq!(olia_alpha(&v), 0.0);
    }

    #[test]
    fn avoidance_growth_is_coupled_and_loss_halves() {
        let t = Instant::ZERO;
        let mut o = Olia::new(1000);
        o.on_congestion_event(t, &ctx(40_000, 1000));
        assert_eq!(o.cwnd(), 20_000);
        // the other path has the largest window and is the best path: alpha = 0 and the
        // increase is (w/r^2)/(sum w/r)^2 = 2000 / 500^2 = 0.008 segment per ACK
        let mut v = view(&[(20_000, 100), (30_000, 100)], 0);
        v.paths[0].bytes_since_loss = 100_000;
        v.paths[1].bytes_since_loss = 1_000_000;
        let c = AckContext {
            coupling: Some(&v),
            ..ctx(20_000, 1000)
        };
        for _ in 0..20 {
            o.on_ack(t, 1000, None, &c);
        }
        let grown = o.cwnd() - 20_000;
        assert!((140..=180).contains(&grown), "grew {grown}");
    }
}
