//! Redundant scheduler: every segment goes on every usable subflow that has room (lowest
//! latency at the price of capacity). Backup subflows are used only when no regular subflow
//! is usable (the backup flag asks not to carry data on that path while others work).
//!
//! A subflow without room misses the segment instead of stalling the others; `max_len` is
//! bounded by the smallest room in the set so no member is over-assigned.

use super::{min_len, Class, Decision, SchedContext, Scheduler, SubflowSet};

#[derive(Clone, Debug, Default)]
pub struct Redundant;

impl Redundant {
    pub fn new() -> Self {
        Redundant
    }
}

impl Scheduler for Redundant {
    fn name(&self) -> &'static str {
        "redundant"
    }

    fn schedule(&mut self, ctx: &SchedContext, subflows: &[super::SubflowView]) -> Decision {
        let budget = ctx.send_budget();
        let Some(class) = Class::select(subflows) else {
            return Decision::Wait;
        };
        if budget == 0 {
            return Decision::Wait;
        }
        let mut set = SubflowSet::new();
        let mut room = u32::MAX;
        for (i, v) in subflows.iter().enumerate() {
            if class.admits(v) && v.available() > 0 && set.insert(i) {
                room = room.min(v.available());
            }
        }
        if set.is_empty() {
            return Decision::Wait;
        }
        Decision::Redundant {
            subflows: set,
            max_len: min_len(budget, room),
        }
    }
}
