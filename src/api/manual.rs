//! A manually driven stack: no thread, no device, no clock of its own.
//!
//! [`ManualDriver`] puts a [`Stack`] behind a [`StackHandle`] whose clock is a counter the
//! caller sets: the caller feeds packets in with a timestamp ([`ManualDriver::input`]),
//! takes the stack's packets out ([`ManualDriver::output`]), asks when the next timer is due
//! ([`ManualDriver::timeout`]) and moves time on ([`ManualDriver::advance`]). This is how a
//! simulator (ns-3, OMNeT++), an event loop of one's own or a test tool (packetdrill) embeds
//! mptun. [`MptcpStream`](super::MptcpStream) / [`MptcpListener`](super::MptcpListener) and
//! the C ABI's socket calls work on [`ManualDriver::handle`] as on the threaded runtime:
//! their timeouts are measured on this clock, and a call blocked on one thread is woken when
//! another thread's `input` or `advance` changes the stack.
//!
//! Time never goes backwards: a timestamp earlier than the clock counts as the clock.

use super::{ClockSource, DriverWaker, StackHandle};
use crate::stack::Stack;
use crate::time::Instant;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Largest packet [`ManualDriver::output`] can produce (an IPv4/IPv6 datagram).
pub const MAX_PACKET: usize = 65535;

/// The counter the caller moves forward.
#[derive(Debug, Default)]
struct ManualClock(AtomicU64);

impl ManualClock {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.load(Ordering::Acquire))
    }

    /// Moves the clock to `t` unless it is already later; returns the clock.
    fn set(&self, t: Instant) -> Instant {
        let prev = self.0.fetch_max(t.total_micros(), Ordering::AcqRel);
        Instant::from_micros(prev.max(t.total_micros()))
    }
}

struct ClockRef(Arc<ManualClock>);

impl ClockSource for ClockRef {
    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// Called when application calls queued something to send (the embedder then drains
/// [`ManualDriver::output`]).
pub type WakeFn = Box<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct Wakeup(Mutex<Option<Arc<dyn Fn() + Send + Sync>>>);

struct WakeRef(Arc<Wakeup>);

impl DriverWaker for WakeRef {
    fn wake(&self) {
        // clone out of the lock: the callback may take a while or set another callback
        let f = self.0 .0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(f) = f {
            f();
        }
    }
}

/// A stack driven by its caller (see the module documentation).
pub struct ManualDriver {
    handle: StackHandle,
    clock: Arc<ManualClock>,
    wakeup: Arc<Wakeup>,
    /// A packet `output` could not hand over (the caller's buffer was too short).
    pending: Mutex<Option<Vec<u8>>>,
}

impl std::fmt::Debug for ManualDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManualDriver")
            .field("now", &self.clock.now())
            .finish()
    }
}

impl ManualDriver {
    /// Wraps `stack`; the clock starts at `Instant::ZERO`.
    pub fn new(stack: Stack) -> Self {
        let clock = Arc::new(ManualClock::default());
        let wakeup = Arc::new(Wakeup::default());
        let handle = StackHandle::new(
            stack,
            Box::new(WakeRef(wakeup.clone())),
            Box::new(ClockRef(clock.clone())),
        );
        ManualDriver {
            handle,
            clock,
            wakeup,
            pending: Mutex::new(None),
        }
    }

    /// The handle to open streams and listeners on.
    pub fn handle(&self) -> &StackHandle {
        &self.handle
    }

    /// The clock.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Sets (or with `None` removes) the function called when application calls queued
    /// output. It may run on any thread calling into the stack, with no lock of the stack
    /// held; it must not block (set a flag, write an eventfd, schedule an event).
    pub fn set_wakeup(&self, f: Option<WakeFn>) {
        *self.wakeup.0.lock().unwrap_or_else(|p| p.into_inner()) = f.map(Arc::from);
    }

    /// One received IP packet at time `now` (the clock moves to `now` first). Malformed
    /// packets are counted and dropped by the stack.
    pub fn input(&self, now: Instant, packet: &[u8]) {
        let now = self.clock.set(now);
        self.handle.lock().stack.handle_packet(now, packet);
        self.handle.notify();
    }

    /// Moves the clock to `now` and runs the timers that are due.
    pub fn advance(&self, now: Instant) {
        let now = self.clock.set(now);
        {
            let mut g = self.handle.lock();
            if g.stack.poll_timeout().is_some_and(|t| t <= now) {
                g.stack.handle_timeout(now);
            }
        }
        self.handle.notify();
    }

    /// When the next timer is due (`None`: no timer); call [`Self::advance`] then.
    pub fn timeout(&self) -> Option<Instant> {
        self.handle.lock().stack.poll_timeout()
    }

    /// The next packet the stack sends, written to `buf`: `Ok(Some(len))`, `Ok(None)` when
    /// there is nothing to send, `Err(len)` if `buf` is shorter than the packet (`len`
    /// bytes; the packet is kept for the next call). Packets are at most the configured
    /// link MTU (1500 by default), never more than [`MAX_PACKET`].
    pub fn output(&self, buf: &mut [u8]) -> Result<Option<usize>, usize> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_none() {
            let now = self.clock.now();
            let mut tmp = vec![0u8; MAX_PACKET];
            let n = self.handle.lock().stack.poll_transmit(now, &mut tmp);
            match n {
                None => return Ok(None),
                Some(n) => {
                    tmp.truncate(n);
                    *pending = Some(tmp);
                }
            }
        }
        let p = pending.as_ref().map_or(0, Vec::len);
        if buf.len() < p {
            return Err(p);
        }
        if let Some(pkt) = pending.take() {
            buf[..p].copy_from_slice(&pkt);
        }
        drop(pending);
        // a transmission may complete what a blocked call waits for (e.g. a reaped listener
        // queue, a close); cheap when nobody waits
        self.handle.notify();
        Ok(Some(p))
    }

    /// Marks the stack stopped: calls blocked on it (and later ones that would block) fail.
    pub fn stop(&self, why: &str) {
        self.handle.set_stopped(why.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyGen;
    use crate::stack::StackConfig;

    #[test]
    fn clock_never_goes_back_and_output_keeps_a_packet_that_does_not_fit() {
        let cfg = StackConfig {
            addrs: vec!["198.19.0.1".parse().unwrap()],
            ..StackConfig::default()
        };
        let d = ManualDriver::new(Stack::new(cfg, KeyGen::from_seed(1)));
        d.advance(Instant::from_millis(50));
        d.advance(Instant::from_millis(10));
        assert_eq!(d.now(), Instant::from_millis(50));
        assert_eq!(d.output(&mut [0u8; 2000]), Ok(None));
        let now = d.now();
        d.handle()
            .with_stack(|s| s.connect(now, "198.19.0.2:80".parse().unwrap(), None, None))
            .unwrap();
        let mut small = [0u8; 20];
        let len = d.output(&mut small).unwrap_err();
        assert!(len > 40, "a SYN with options: {len}");
        let mut big = [0u8; 1500];
        assert_eq!(d.output(&mut big), Ok(Some(len)));
        assert_eq!(big[0] >> 4, 4, "IPv4");
        assert!(d.timeout().is_some(), "SYN retransmission timer");
    }
}
