//! Congestion control: one controller per subflow behind a trait, one algorithm per file.
//!
//! `reno` (RFC 5681) and `cubic` (RFC 9438) are uncoupled; `lia` (RFC 6356), `olia`
//! (Khalili et al., 2013) and `balia` (Peng et al., 2016) couple the subflows of an MPTCP
//! connection through a [`CouplingView`] the connection refreshes. Without a view the
//! coupled algorithms behave like Reno.
//!
//! Adding an algorithm: one file with a type implementing [`CongestionControl`] and a branch
//! in [`by_name`].

use crate::time::{Duration, Instant};

pub mod balia;
pub mod cubic;
pub mod lia;
pub mod olia;
pub mod reno;

/// Most subflows a coupling view describes.
pub const MAX_COUPLED: usize = 8;

/// What a coupled controller knows about one path.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PathCc {
    pub cwnd: u32,
    pub srtt: Duration,
    pub mss: u16,
    /// Bytes acknowledged since the last loss on this path (OLIA's l1).
    pub bytes_since_loss: u64,
    /// Bytes acknowledged between the last two losses (OLIA's l2).
    pub bytes_between_last_losses: u64,
    /// Established and sending.
    pub usable: bool,
}

/// The connection's paths as seen by subflow `me`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CouplingView {
    pub me: usize,
    pub len: usize,
    pub paths: [PathCc; MAX_COUPLED],
}

impl CouplingView {
    /// The usable paths.
    pub fn usable(&self) -> impl Iterator<Item = &PathCc> {
        self.paths[..self.len.min(MAX_COUPLED)]
            .iter()
            .filter(|p| p.usable && p.srtt > Duration::ZERO)
    }
}

/// What the engine tells a controller with each event.
#[derive(Clone, Copy, Debug)]
pub struct AckContext<'a> {
    /// Bytes in flight before this event.
    pub in_flight: u32,
    pub mss: u16,
    pub srtt: Option<Duration>,
    pub coupling: Option<&'a CouplingView>,
}

/// A per-subflow congestion controller. Windows are in bytes.
pub trait CongestionControl: Send + core::fmt::Debug {
    fn name(&self) -> &'static str;
    fn cwnd(&self) -> u32;
    fn ssthresh(&self) -> u32;
    /// New data acknowledged (not during fast recovery).
    fn on_ack(&mut self, now: Instant, acked: u32, rtt: Option<Duration>, ctx: &AckContext<'_>);
    /// Loss detected by duplicate ACKs / SACK: enter fast recovery.
    fn on_congestion_event(&mut self, now: Instant, ctx: &AckContext<'_>);
    /// Retransmission timeout.
    fn on_rto(&mut self, now: Instant, ctx: &AckContext<'_>);
    /// Fast recovery ended.
    fn on_recovery_end(&mut self, _now: Instant) {}
    /// Halve the window (MPTCP penalisation of a subflow that blocks the receive window).
    fn penalise(&mut self, mss: u16);
}

/// Initial window (RFC 6928): 10 segments.
pub fn initial_window(mss: u16) -> u32 {
    10 * u32::from(mss.max(1))
}

/// Names accepted by [`by_name`].
pub const NAMES: &[&str] = &["reno", "cubic", "lia", "olia", "balia"];

/// A controller by name.
pub fn by_name(name: &str, mss: u16) -> Option<Box<dyn CongestionControl>> {
    Some(match name {
        "reno" => Box::new(reno::Reno::new(mss)),
        "cubic" => Box::new(cubic::Cubic::new(mss)),
        "lia" => Box::new(lia::Lia::new(mss)),
        "olia" => Box::new(olia::Olia::new(mss)),
        "balia" => Box::new(balia::Balia::new(mss)),
        _ => return None,
    })
}

/// Reno-style window state shared by the loss-based algorithms here.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub cwnd: u32,
    pub ssthresh: u32,
    /// Bytes acknowledged towards the next congestion-avoidance increase.
    pub acc: u64,
}

impl Window {
    pub fn new(mss: u16) -> Self {
        Window {
            cwnd: initial_window(mss),
            ssthresh: u32::MAX,
            acc: 0,
        }
    }

    pub fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    /// Slow start (RFC 5681 with appropriate byte counting, L = 2 MSS); returns bytes left
    /// for congestion avoidance.
    pub fn slow_start(&mut self, acked: u32, mss: u16) -> u32 {
        let inc = acked.min(2 * u32::from(mss));
        let room = self.ssthresh.saturating_sub(self.cwnd);
        let grow = inc.min(room);
        self.cwnd = self.cwnd.saturating_add(grow);
        acked - grow.min(acked)
    }

    /// Grow by `num/den` bytes per acknowledged byte (accumulated so no growth is lost).
    pub fn grow(&mut self, acked: u32, per_byte_num: u64, per_byte_den: u64) {
        if per_byte_den == 0 {
            return;
        }
        self.acc += u64::from(acked) * per_byte_num;
        let inc = self.acc / per_byte_den;
        self.acc %= per_byte_den;
        self.cwnd = self
            .cwnd
            .saturating_add(inc.min(u64::from(u32::MAX)) as u32);
    }

    /// Multiplicative decrease to `factor` (numerator over 1000), at least 2 MSS.
    pub fn decrease(&mut self, in_flight: u32, mss: u16, factor_milli: u32) {
        let base = self.cwnd.max(in_flight.min(self.cwnd));
        let w = (u64::from(base) * u64::from(factor_milli) / 1000) as u32;
        self.ssthresh = w.max(2 * u32::from(mss));
        self.cwnd = self.ssthresh;
        self.acc = 0;
    }

    /// After an RTO: one segment, ssthresh halved.
    pub fn timeout(&mut self, in_flight: u32, mss: u16) {
        self.ssthresh = (in_flight.max(self.cwnd) / 2).max(2 * u32::from(mss));
        self.cwnd = u32::from(mss);
        self.acc = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds() {
        for n in NAMES {
            let cc = by_name(n, 1000).expect(n);
            assert_eq!(cc.name(), *n);
            assert_eq!(cc.cwnd(), 10_000);
        }
        assert!(by_name("vegas", 1000).is_none());
    }
}
