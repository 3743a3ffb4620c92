//! ECF: Earliest Completion First (Lim, Nahum, Towsley, Gibbens, "ECF: An MPTCP Path
//! Scheduler to Manage Heterogeneous Paths", CoNEXT 2017).
//!
//! When the fastest subflow `f` has no room and the best subflow with room is a slower `s`,
//! decide whether waiting for `f` finishes the `k` unsent bytes earlier than using `s`
//! (all in bytes; the paper counts packets, the ratios are the same):
//!
//! ```text
//! n     = 1 + k / cwnd_f
//! delta = max(rttvar_f, rttvar_s)
//! if n * rtt_f < (1 + waiting * beta) * (rtt_s + delta):
//!     if (k / cwnd_s) * rtt_s >= 2 * rtt_f + delta:  waiting = 1; wait for f
//!     else: send on s
//! else: waiting = 0; send on s
//! ```
//!
//! with `beta = 0.25` (hysteresis).

use super::{
    lowest_rtt, min_len, rtt_micros, Class, Decision, SchedContext, Scheduler, SubflowView,
};

#[derive(Clone, Debug, Default)]
pub struct Ecf {
    waiting: bool,
    /// Times the scheduler chose to wait for the fast subflow (statistics).
    pub waits: u64,
}

impl Ecf {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the hysteresis flag is set (the last slow-path decision was to wait).
    pub fn waiting(&self) -> bool {
        self.waiting
    }

    /// True: wait for `fast`. Updates the hysteresis flag.
    fn should_wait(&mut self, k: u64, fast: &SubflowView, slow: &SubflowView) -> bool {
        let (Some(rf), Some(rs)) = (fast.srtt, slow.srtt) else {
            return false;
        };
        let rf = rtt_micros(rf);
        let rs = rtt_micros(rs);
        let delta = fast
            .rttvar
            .unwrap_or_default()
            .max(slow.rttvar.unwrap_or_default());
        let delta = rtt_micros(delta);
        let k = u128::from(k);
        let cwnd_f = u128::from(fast.cwnd.max(fast.mss_nonzero()));
        let cwnd_s = u128::from(slow.cwnd.max(slow.mss_nonzero()));
        // n * rf < (1 + w/4)(rs + delta)
        //   <=>  4 rf (cwnd_f + k) < (4 + w)(rs + delta) cwnd_f
        let w = u128::from(self.waiting);
        let fast_finishes_first = 4 * rf * (cwnd_f + k) < (4 + w) * (rs + delta) * cwnd_f;
        if fast_finishes_first {
            // (k / cwnd_s) rs >= 2 rf + delta  <=>  k rs >= (2 rf + delta) cwnd_s
            if k * rs >= (2 * rf + delta) * cwnd_s {
                self.waiting = true;
                return true;
            }
            false
        } else {
            self.waiting = false;
            false
        }
    }
}

impl Scheduler for Ecf {
    fn name(&self) -> &'static str {
        "ecf"
    }

    fn schedule(&mut self, ctx: &SchedContext, subflows: &[SubflowView]) -> Decision {
        let budget = ctx.send_budget();
        let Some(class) = Class::select(subflows) else {
            return Decision::Wait;
        };
        if budget == 0 {
            return Decision::Wait;
        }
        if let Some(i) = super::unmeasured_probe(subflows, class) {
            let room = subflows.get(i).map_or(0, SubflowView::available);
            let mss = subflows.get(i).map_or(1, SubflowView::mss_nonzero);
            return Decision::Send {
                subflow: i,
                max_len: min_len(budget, room.min(mss)),
            };
        }
        let Some(fast) = lowest_rtt(subflows, class, false).and_then(|i| subflows.get(i)) else {
            return Decision::Wait;
        };
        let Some(best_i) = lowest_rtt(subflows, class, true) else {
            return Decision::Wait;
        };
        let Some(best) = subflows.get(best_i) else {
            return Decision::Wait;
        };
        if best.srtt_key() <= fast.srtt_key() {
            return Decision::Send {
                subflow: best_i,
                max_len: min_len(budget, best.available()),
            };
        }
        if self.should_wait(ctx.unsent, fast, best) {
            self.waits += 1;
            return Decision::Wait;
        }
        let room = best.available().min(best.mss_nonzero());
        Decision::Send {
            subflow: best_i,
            max_len: min_len(budget, room),
        }
    }
}
