//! I/O layer: everything that touches the outside world. This is the only module allowed
//! `unsafe`, `libc` and clock reads.
//!
//! - [`impair`]: deterministic link impairment (delay, jitter, loss, dup, reorder, rate, queue);
//! - [`sim`]: a deterministic simulated network on a virtual clock driving sans-IO endpoints;
//! - [`tun`]: Linux TUN device, eventfd waker and `poll(2)` helper;
//! - [`driver`]: the threaded runtime ([`driver::Runtime`]) over packet devices, set up with
//!   a [`RuntimeBuilder`] (module [`builder`]);
//! - [`clock`]: OS clock <-> [`crate::time::Instant`];
//! - [`pcap`]: capture writer (LINKTYPE_RAW);
//! - [`proxy`]: the relay between kernel TCP and MPTCP ([`proxy::relay`]; `mptun proxy` and
//!   `listen --forward` are in `crate::cli::proxy`); [`socks5`]: RFC 1928.
//!
//! See `docs/IO.md`.

pub mod clock;
pub mod impair;

pub use clock::Clock;
pub use impair::{DropReason, ImpairParseError, ImpairQueue, ImpairStats, Impairment, SplitMix64};
pub mod pcap;
pub use pcap::PcapWriter;
pub mod sim;
pub use sim::{Endpoint, LinkStats, PacketInfo, SimNet, SimStats, Verdict};
pub mod tun;
pub use tun::{poll_fds, Tun, Waker};
pub mod builder;
pub use builder::{BuildError, RuntimeBuilder};
pub mod driver;
pub mod offload;
pub mod proxy;
pub mod socks5;

impl sim::Endpoint for crate::stack::Stack {
    fn handle_packet(&mut self, now: crate::time::Instant, packet: &[u8]) {
        crate::stack::Stack::handle_packet(self, now, packet)
    }
    fn poll_transmit(&mut self, now: crate::time::Instant, buf: &mut [u8]) -> Option<usize> {
        crate::stack::Stack::poll_transmit(self, now, buf)
    }
    fn poll_timeout(&mut self) -> Option<crate::time::Instant> {
        crate::stack::Stack::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: crate::time::Instant) {
        crate::stack::Stack::handle_timeout(self, now)
    }
}
