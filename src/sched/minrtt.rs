//! Min-RTT scheduler (the default, as in Linux): new data goes to the subflow with the lowest
//! smoothed RTT that has room; backup subflows only when no regular subflow is usable.
//!
//! Opportunistic retransmission and penalisation (Raiciu et al., "How hard can it be?
//! Designing and implementing a deployable Multipath TCP", NSDI 2012, section 4.2): when the
//! connection-level receive window is full ([`SchedContext::blocked`] is set) because the
//! oldest unacknowledged data sits on a slow subflow, and a faster subflow has room, that
//! data is re-sent on the faster subflow ([`Decision::Reinject`]) and the slow subflow is
//! penalised (its cwnd is halved, `CongestionControl::on_penalty`: a subflow in slow start
//! stays in it), at most once per slow-subflow RTT. Each
//! blocking DSN is reinjected once.

use super::{lowest_rtt, min_len, Class, Decision, SchedContext, Scheduler, SubflowView};
use crate::time::{Duration, Instant};

/// Penalisations remembered (per subflow id) to rate-limit them to one per RTT.
const PENALTY_SLOTS: usize = 8;
/// RTT assumed for rate-limiting penalisation of a subflow without an RTT sample.
const DEFAULT_PENALTY_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, Default)]
pub struct MinRtt {
    /// (subflow id, time of last penalisation).
    penalised: [Option<(u32, Instant)>; PENALTY_SLOTS],
    /// DSN of the last blocking mapping reinjected.
    last_reinjected: Option<u64>,
    /// Number of reinjections decided (statistics).
    pub reinjections: u64,
    /// Number of penalisations decided (statistics).
    pub penalisations: u64,
}

impl MinRtt {
    pub fn new() -> Self {
        Self::default()
    }

    fn may_penalise(&self, v: &SubflowView, now: Instant) -> bool {
        let interval = v.srtt.unwrap_or(DEFAULT_PENALTY_INTERVAL);
        self.penalised
            .iter()
            .flatten()
            .find(|(id, _)| *id == v.id)
            .is_none_or(|(_, at)| now.saturating_duration_since(*at) >= interval)
    }

    fn record_penalty(&mut self, id: u32, now: Instant) {
        // Reuse this id's slot, else an empty one, else the oldest.
        let slot = self
            .penalised
            .iter()
            .position(|s| matches!(s, Some((i, _)) if *i == id))
            .or_else(|| self.penalised.iter().position(Option::is_none))
            .unwrap_or_else(|| {
                self.penalised
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.map(|(_, t)| t))
                    .map_or(0, |(i, _)| i)
            });
        // `slot` < PENALTY_SLOTS by construction (positions within the array).
        if let Some(s) = self.penalised.get_mut(slot) {
            *s = Some((id, now));
        }
    }

    fn opportunistic(
        &mut self,
        ctx: &SchedContext,
        subflows: &[SubflowView],
        class: Class,
    ) -> Option<Decision> {
        let b = ctx.blocked?;
        let blocker = subflows.get(b.subflow)?;
        if b.len == 0 || self.last_reinjected == Some(b.dsn) {
            return None;
        }
        let blocker_healthy = blocker.usable && !blocker.potentially_failed;
        // A dead or suspect blocker is slower than anything.
        let blocker_rtt = if blocker_healthy {
            blocker.srtt_key()
        } else {
            u64::MAX
        };
        let mut best: Option<(u64, usize)> = None;
        for (i, v) in subflows.iter().enumerate() {
            if i == b.subflow || !class.admits(v) || v.available() == 0 {
                continue;
            }
            let key = v.srtt_key();
            let faster = key < blocker_rtt || (!blocker_healthy && key == u64::MAX);
            if faster && best.is_none_or(|(k, _)| key < k) {
                best = Some((key, i));
            }
        }
        let (_, target) = best?;
        let room = subflows.get(target).map_or(0, SubflowView::available);
        let penalise = if blocker_healthy && self.may_penalise(blocker, ctx.now) {
            self.record_penalty(blocker.id, ctx.now);
            self.penalisations += 1;
            Some(b.subflow)
        } else {
            None
        };
        self.last_reinjected = Some(b.dsn);
        self.reinjections += 1;
        Some(Decision::Reinject {
            subflow: target,
            dsn: b.dsn,
            len: b.len.min(room),
            penalise,
        })
    }
}

impl Scheduler for MinRtt {
    fn name(&self) -> &'static str {
        "minrtt"
    }

    fn schedule(&mut self, ctx: &SchedContext, subflows: &[SubflowView]) -> Decision {
        let Some(class) = Class::select(subflows) else {
            return Decision::Wait;
        };
        let budget = ctx.send_budget();
        if budget > 0 {
            if let Some(i) = super::unmeasured_probe(subflows, class) {
                let room = subflows.get(i).map_or(0, SubflowView::available);
                let mss = subflows.get(i).map_or(1, SubflowView::mss_nonzero);
                return Decision::Send {
                    subflow: i,
                    max_len: min_len(budget, room.min(mss)),
                };
            }
            if let Some(i) = lowest_rtt(subflows, class, true) {
                let room = subflows.get(i).map_or(0, SubflowView::available);
                return Decision::Send {
                    subflow: i,
                    max_len: min_len(budget, room),
                };
            }
        }
        self.opportunistic(ctx, subflows, class)
            .unwrap_or(Decision::Wait)
    }
}
