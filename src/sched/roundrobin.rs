//! Round-robin scheduler: each decision hands at most one MSS to the next usable subflow with
//! room, in increasing id order, wrapping around. Backup subflows take part only when no
//! regular subflow is usable.

use super::{min_len, Class, Decision, SchedContext, Scheduler, SubflowView};

#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    /// Id of the subflow served last.
    last_id: Option<u32>,
}

impl RoundRobin {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Scheduler for RoundRobin {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn schedule(&mut self, ctx: &SchedContext, subflows: &[SubflowView]) -> Decision {
        let budget = ctx.send_budget();
        let Some(class) = Class::select(subflows) else {
            return Decision::Wait;
        };
        if budget == 0 {
            return Decision::Wait;
        }
        // Smallest id greater than the last one served; failing that, the smallest id.
        let mut next: Option<(u32, usize)> = None;
        let mut first: Option<(u32, usize)> = None;
        for (i, v) in subflows.iter().enumerate() {
            if !class.admits(v) || v.available() == 0 {
                continue;
            }
            if first.is_none_or(|(id, _)| v.id < id) {
                first = Some((v.id, i));
            }
            let after_last = self.last_id.is_none_or(|last| v.id > last);
            if after_last && next.is_none_or(|(id, _)| v.id < id) {
                next = Some((v.id, i));
            }
        }
        let Some((id, i)) = next.or(first) else {
            return Decision::Wait;
        };
        self.last_id = Some(id);
        let v = subflows.get(i).copied().unwrap_or_default();
        let room = v.available().min(v.mss_nonzero());
        Decision::Send {
            subflow: i,
            max_len: min_len(budget, room),
        }
    }
}
