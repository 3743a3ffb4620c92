//! BLEST: blocking estimation scheduler (Ferlin, Alay, Mehani, Boreli, "BLEST: Blocking
//! Estimation-based MPTCP Scheduler for Heterogeneous Networks", IFIP Networking 2016).
//!
//! Min-RTT first; but when the fastest subflow `f` has no room and the candidate is a slower
//! subflow `s`, estimate how many bytes `f` could send during one RTT of `s`:
//!
//! ```text
//! ratio = rtt_s / rtt_f
//! X     = MSS_f * (CWND_f/MSS_f + (ratio - 1) / 2) * ratio      (cwnd grows 1 MSS per rtt_f)
//! ```
//!
//! and skip `s` (wait for `f`) if `X * lambda` exceeds the connection window that would remain
//! once `s` holds its in-flight data plus one more segment:
//! `|M| - (inflight_s + queued_s + MSS_s)`, where `|M|` is the connection-level send window,
//! estimated as `conn_window + sum(in_flight + queued)` over usable subflows.
//!
//! Lambda adaptation (simple form of the paper's): once per `rtt_f`, lambda grows by 0.04 if
//! the connection window was seen full (`ctx.blocked`) during the last period, else shrinks by
//! 0.01, within [0.7, 1.3]; it starts at 1.0.

use super::{
    lowest_rtt, min_len, rtt_micros, Class, Decision, SchedContext, Scheduler, SubflowView,
};
use crate::time::Instant;

const LAMBDA_INIT: u32 = 1000;
const LAMBDA_MIN: u32 = 700;
const LAMBDA_MAX: u32 = 1300;
const LAMBDA_BAD: u32 = 40;
const LAMBDA_GOOD: u32 = 10;

#[derive(Clone, Debug)]
pub struct Blest {
    /// Lambda in thousandths.
    lambda_milli: u32,
    last_update: Option<Instant>,
    saw_block: bool,
    /// Times a slow subflow was skipped (statistics).
    pub skipped: u64,
}

impl Default for Blest {
    fn default() -> Self {
        Blest {
            lambda_milli: LAMBDA_INIT,
            last_update: None,
            saw_block: false,
            skipped: 0,
        }
    }
}

impl Blest {
    pub fn new() -> Self {
        Self::default()
    }

    /// Current lambda in thousandths (1000 = 1.0).
    pub fn lambda_milli(&self) -> u32 {
        self.lambda_milli
    }

    fn adapt(&mut self, ctx: &SchedContext, fast: &SubflowView) {
        self.saw_block |= ctx.blocked.is_some();
        let Some(last) = self.last_update else {
            self.last_update = Some(ctx.now);
            return;
        };
        let Some(period) = fast.srtt else { return };
        if ctx.now.saturating_duration_since(last) < period {
            return;
        }
        self.lambda_milli = if self.saw_block {
            (self.lambda_milli + LAMBDA_BAD).min(LAMBDA_MAX)
        } else {
            self.lambda_milli
                .saturating_sub(LAMBDA_GOOD)
                .max(LAMBDA_MIN)
        };
        self.saw_block = false;
        self.last_update = Some(ctx.now);
    }

    /// Would sending one more segment on `slow` block `fast` at connection level?
    fn would_block(
        &self,
        ctx: &SchedContext,
        subflows: &[SubflowView],
        fast: &SubflowView,
        slow: &SubflowView,
    ) -> bool {
        let (Some(rf), Some(rs)) = (fast.srtt, slow.srtt) else {
            return false; // no estimate possible: behave like min-RTT
        };
        let rf = rtt_micros(rf).max(1);
        let rs = rtt_micros(rs);
        let mss_f = u128::from(fast.mss_nonzero());
        let cwnd_f = u128::from(fast.cwnd);
        // X = (cwnd_f + mss_f * (rs - rf) / (2 rf)) * rs / rf
        //   = (2 rf cwnd_f + mss_f (rs - rf)) * rs / (2 rf^2)
        let x = (2 * rf * cwnd_f + mss_f * rs.saturating_sub(rf)) * rs / (2 * rf * rf);
        let x_lambda = x * u128::from(self.lambda_milli) / 1000;
        let window: u128 = u128::from(ctx.conn_window)
            + subflows
                .iter()
                .filter(|v| v.usable)
                .map(|v| u128::from(v.in_flight) + u128::from(v.queued))
                .sum::<u128>();
        let slow_hold =
            u128::from(slow.in_flight) + u128::from(slow.queued) + u128::from(slow.mss_nonzero());
        x_lambda > window.saturating_sub(slow_hold)
    }
}

impl Scheduler for Blest {
    fn name(&self) -> &'static str {
        "blest"
    }

    fn schedule(&mut self, ctx: &SchedContext, subflows: &[SubflowView]) -> Decision {
        let Some(class) = Class::select(subflows) else {
            return Decision::Wait;
        };
        let Some(fast) = lowest_rtt(subflows, class, false).and_then(|i| subflows.get(i)) else {
            return Decision::Wait;
        };
        self.adapt(ctx, fast);
        let budget = ctx.send_budget();
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
        if self.would_block(ctx, subflows, fast, best) {
            self.skipped += 1;
            return Decision::Wait;
        }
        // One segment at a time on the slow path, so the estimate is redone for each.
        let room = best.available().min(best.mss_nonzero());
        Decision::Send {
            subflow: best_i,
            max_len: min_len(budget, room),
        }
    }
}
