//! Manual path manager: creates and announces nothing; the application decides (through the
//! socket API's subflow operations, which the connection executes itself).

use super::{CommandQueue, PathManager, PmContext, PmEvent};
use crate::time::Instant;

#[derive(Clone, Debug, Default)]
pub struct Manual;

impl Manual {
    pub fn new() -> Self {
        Manual
    }
}

impl PathManager for Manual {
    fn name(&self) -> &'static str {
        "manual"
    }
    fn on_event(&mut self, _ctx: &PmContext, _ev: &PmEvent, _out: &mut CommandQueue) {}
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
    fn on_timeout(&mut self, _ctx: &PmContext, _out: &mut CommandQueue) {}
}
