//! Redundant scheduler: every segment goes on every usable subflow that has room (lowest
//! latency at the price of capacity). Backup subflows are used only when no regular subflow
//! is usable (the backup flag asks not to carry data on that path while others work).
//!
//! A subflow without room but with data in flight makes the others wait (its ACKs give it
//! room within a round trip; if they never come, its RTO moves it to the potentially-failed
//! class and the others go on without it), so every byte goes on every healthy subflow, as
//! Linux's redundant scheduler does, at the pace of the slowest of them. Sending only on
//! the subflows that happened to have room at that instant duplicated about a quarter of the
//! bytes between two equal paths. `max_len` is bounded by the smallest room in the set so
//! no member is over-assigned.

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
            if !class.admits(v) {
                continue;
            }
            if v.available() == 0 {
                if v.in_flight > 0 {
                    // its ACKs (or its RTO, which moves it to the potentially-failed
                    // class) give it room soon: wait, so that every byte goes on every
                    // subflow rather than on whichever had room at that instant
                    return Decision::Wait;
                }
                continue;
            }
            if set.insert(i) {
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
