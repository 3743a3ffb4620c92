//! Link impairment: delay, jitter, loss, duplication, reordering, rate limit and a tail-drop
//! queue, applied to packets of any type `P` on a virtual or real clock.
//!
//! Deterministic for a given seed: randomness comes from our own SplitMix64 generator
//! ([`SplitMix64`]) so the sequence never changes with dependency versions.
//!
//! Order of decisions for each pushed packet (like netem + tbf):
//! 1. link down -> `down_drops`;
//! 2. random loss -> `lost`;
//! 3. serialization at `rate_bps` behind the packets already queued; if the backlog would
//!    exceed `queue_limit` bytes -> `queue_drops` (tail drop);
//! 4. propagation `delay` plus uniform jitter in `[-jitter, +jitter]`; without reordering the
//!    due times are clamped monotonic so jitter never reorders;
//! 5. with probability `reorder` the packet gets an extra random delay (`reordered`) so later
//!    packets overtake it;
//! 6. with probability `dup` a copy is queued too (`dup`).

use crate::time::{Duration, Instant};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;

/// Impairment of one link direction. `Default` is a perfect link.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairment {
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Uniform jitter added to the delay, in `[-jitter, +jitter]` (the result never goes
    /// below zero extra delay).
    pub jitter: Duration,
    /// Loss probability, 0..=1.
    pub loss: f64,
    /// Duplication probability, 0..=1.
    pub dup: f64,
    /// Probability that a packet is held back by an extra random delay, 0..=1.
    pub reorder: f64,
    /// Serialization rate in bit/s; 0 = unlimited.
    pub rate_bps: u64,
    /// Maximum backlog in bytes waiting for serialization (tail drop beyond it); 0 =
    /// unlimited. Only meaningful with a `rate_bps`.
    pub queue_limit: usize,
    /// Change one payload byte of the N-th TCP segment that carries new data (a
    /// retransmission, wholly below the highest sequence number seen on its 4-tuple, is
    /// not counted: its bytes may be taken already, and a changed copy of them would show
    /// nothing) and repair its TCP checksum, as a content-rewriting middlebox would (only
    /// MPTCP's DSS checksum can tell); 0 = never. Applied by the TUN driver to real packets
    /// (`corrupt=N`).
    pub corrupt_nth: u64,
}

/// Why an impairment specification did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImpairParseError {
    /// An item was not of the form `key=value`.
    MissingValue(String),
    /// The key is none of delay, jitter, loss, dup, reorder, rate, queue, corrupt.
    UnknownKey(String),
    /// The value has no number or an unknown unit for that key.
    BadValue {
        /// The key whose value failed.
        key: String,
        /// The value as written.
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A probability outside 0..=100 %.
    OutOfRange {
        /// The key whose value failed.
        key: String,
        /// The value as written.
        value: String,
    },
}

impl fmt::Display for ImpairParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImpairParseError::MissingValue(item) => {
                write!(f, "impairment item {item:?} is not of the form key=value")
            }
            ImpairParseError::UnknownKey(k) => write!(
                f,
                "unknown impairment key {k:?} (expected delay, jitter, loss, dup, reorder, rate, queue, corrupt)"
            ),
            ImpairParseError::BadValue {
                key,
                value,
                expected,
            } => write!(f, "bad value {value:?} for {key}: expected {expected}"),
            ImpairParseError::OutOfRange { key, value } => {
                write!(f, "value {value:?} for {key} is outside 0..100%")
            }
        }
    }
}

impl std::error::Error for ImpairParseError {}

/// Splits "25ms" into (25.0, "ms").
fn split_number(s: &str) -> Option<(f64, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some((v, unit.trim()))
}

fn parse_duration(key: &str, v: &str) -> Result<Duration, ImpairParseError> {
    let bad = || ImpairParseError::BadValue {
        key: key.to_string(),
        value: v.to_string(),
        expected: "a duration with unit us, ms or s (e.g. 25ms)",
    };
    let (n, unit) = split_number(v).ok_or_else(bad)?;
    let micros = match unit.to_ascii_lowercase().as_str() {
        "us" => n,
        "ms" => n * 1e3,
        "s" => n * 1e6,
        _ => return Err(bad()),
    };
    if micros > 1e15 {
        return Err(bad());
    }
    Ok(Duration::from_micros(micros.round() as u64))
}

fn parse_prob(key: &str, v: &str) -> Result<f64, ImpairParseError> {
    let bad = || ImpairParseError::BadValue {
        key: key.to_string(),
        value: v.to_string(),
        expected: "a percentage (e.g. 1%) or a fraction in 0..1",
    };
    let (n, unit) = split_number(v).ok_or_else(bad)?;
    let p = match unit {
        "%" => n / 100.0,
        "" => n,
        _ => return Err(bad()),
    };
    if !(0.0..=1.0).contains(&p) {
        return Err(ImpairParseError::OutOfRange {
            key: key.to_string(),
            value: v.to_string(),
        });
    }
    Ok(p)
}

fn parse_scaled(
    key: &str,
    v: &str,
    units: &[(&str, u64)],
    expected: &'static str,
) -> Result<u64, ImpairParseError> {
    let bad = || ImpairParseError::BadValue {
        key: key.to_string(),
        value: v.to_string(),
        expected,
    };
    let (n, unit) = split_number(v).ok_or_else(bad)?;
    let unit = unit.to_ascii_lowercase();
    let mult = units
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, m)| *m)
        .ok_or_else(bad)?;
    let x = n * mult as f64;
    if x > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok(x.round() as u64)
}

const RATE_UNITS: &[(&str, u64)] = &[
    ("bit", 1),
    ("kbit", 1_000),
    ("mbit", 1_000_000),
    ("gbit", 1_000_000_000),
];
const SIZE_UNITS: &[(&str, u64)] = &[("b", 1), ("kb", 1024), ("mb", 1024 * 1024)];

/// The backlog a parsed `rate=` gets when no `queue=` is given: 100 ms at the rate, at least
/// 64 KiB (a router's buffer; without a bound a rate-limited link queues whatever the
/// sender's window allows, seconds of delay for every packet behind it).
pub fn default_queue(rate_bps: u64) -> usize {
    let q = rate_bps / 8 / 10;
    usize::try_from(q).unwrap_or(usize::MAX).max(64 * 1024)
}

impl FromStr for Impairment {
    type Err = ImpairParseError;

    /// Parses `delay=25ms,jitter=5ms,loss=1%,dup=0.5%,reorder=2%,rate=10mbit,queue=100kb`
    /// (and `corrupt=N`: see [`Impairment::corrupt_nth`]). A `rate` without `queue` gets
    /// [`default_queue`] (100 ms at the rate, at least 64 KiB); `queue=0b` is unbounded.
    /// Any subset in any order; an empty string or `none` is a perfect link. Units:
    /// us/ms/s; `%` or a bare fraction; bit/kbit/mbit/gbit (powers of 1000);
    /// b/kb/mb (powers of 1024).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut imp = Impairment::default();
        let mut has_queue = false;
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("none") {
            return Ok(imp);
        }
        for item in s.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| ImpairParseError::MissingValue(item.to_string()))?;
            let key = key.trim();
            let value = value.trim();
            match key.to_ascii_lowercase().as_str() {
                "delay" => imp.delay = parse_duration(key, value)?,
                "jitter" => imp.jitter = parse_duration(key, value)?,
                "loss" => imp.loss = parse_prob(key, value)?,
                "dup" => imp.dup = parse_prob(key, value)?,
                "reorder" => imp.reorder = parse_prob(key, value)?,
                "rate" => {
                    imp.rate_bps = parse_scaled(
                        key,
                        value,
                        RATE_UNITS,
                        "a rate with unit bit, kbit, mbit or gbit (e.g. 10mbit)",
                    )?
                }
                "queue" => {
                    let q = parse_scaled(
                        key,
                        value,
                        SIZE_UNITS,
                        "a size with unit b, kb or mb (e.g. 100kb)",
                    )?;
                    imp.queue_limit = usize::try_from(q).unwrap_or(usize::MAX);
                    has_queue = true;
                }
                "corrupt" => {
                    imp.corrupt_nth = value.parse().map_err(|_| ImpairParseError::BadValue {
                        key: key.to_string(),
                        value: value.to_string(),
                        expected: "a segment count (e.g. 30: the 30th data segment)",
                    })?
                }
                _ => return Err(ImpairParseError::UnknownKey(key.to_string())),
            }
        }
        if imp.rate_bps > 0 && !has_queue {
            imp.queue_limit = default_queue(imp.rate_bps);
        }
        Ok(imp)
    }
}

fn fmt_duration(d: Duration) -> String {
    let us = d.as_micros();
    if us % 1_000_000 == 0 && us != 0 {
        format!("{}s", us / 1_000_000)
    } else if us % 1000 == 0 && us != 0 {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

fn fmt_scaled(v: u64, units: &[(&str, u64)]) -> String {
    let (name, mult) = units
        .iter()
        .rev()
        .find(|(_, m)| v % m == 0)
        .copied()
        .unwrap_or(units[0]);
    format!("{}{}", v / mult, name)
}

impl fmt::Display for Impairment {
    /// The same syntax `FromStr` accepts, listing only non-default fields (`none` for a
    /// perfect link).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if !self.delay.is_zero() {
            parts.push(format!("delay={}", fmt_duration(self.delay)));
        }
        if !self.jitter.is_zero() {
            parts.push(format!("jitter={}", fmt_duration(self.jitter)));
        }
        for (name, p) in [
            ("loss", self.loss),
            ("dup", self.dup),
            ("reorder", self.reorder),
        ] {
            if p > 0.0 {
                parts.push(format!("{name}={}%", p * 100.0));
            }
        }
        if self.rate_bps > 0 {
            parts.push(format!("rate={}", fmt_scaled(self.rate_bps, RATE_UNITS)));
        }
        if self.queue_limit > 0 || self.rate_bps > 0 {
            // with a rate, an unbounded queue must be said (`queue=0b`): parsing a rate alone
            // gives the default queue
            parts.push(format!(
                "queue={}",
                fmt_scaled(self.queue_limit as u64, SIZE_UNITS)
            ));
        }
        if self.corrupt_nth > 0 {
            parts.push(format!("corrupt={}", self.corrupt_nth));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fixed forever so simulations replay.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`; draws nothing when `p <= 0`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.next_f64() < p
    }

    /// Uniform in `[0, n]`.
    pub fn below_incl(&mut self, n: u64) -> u64 {
        if n == u64::MAX {
            return self.next_u64();
        }
        self.next_u64() % (n + 1)
    }
}

/// Counters of one impairment queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImpairStats {
    /// Packets handed out by `pop_due` (duplicates included).
    pub passed: u64,
    /// Packets dropped by random loss.
    pub lost: u64,
    /// Extra copies queued by duplication.
    pub dup: u64,
    /// Packets given an extra delay for reordering.
    pub reordered: u64,
    /// Packets tail-dropped because the backlog exceeded `queue_limit`.
    pub queue_drops: u64,
    /// Packets dropped because the link was down (queued ones included).
    pub down_drops: u64,
}

struct Entry<P> {
    due: Instant,
    seq: u64,
    pkt: P,
}

impl<P> PartialEq for Entry<P> {
    fn eq(&self, other: &Self) -> bool {
        self.due == other.due && self.seq == other.seq
    }
}
impl<P> Eq for Entry<P> {}
impl<P> PartialOrd for Entry<P> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<P> Ord for Entry<P> {
    // Reversed so that BinaryHeap (a max-heap) yields the earliest (due, seq) first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// Why `push` refused a packet (the packet is handed back so its buffer can be recycled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The link was down.
    Down,
    /// Random loss.
    Lost,
    /// Tail drop: the serialization backlog was full.
    QueueFull,
}

/// A queue applying an [`Impairment`] to packets of type `P`.
///
/// Packets come out of `pop_due` in order of due time, FIFO among equal due times. The heap
/// keeps its capacity, so steady-state use does not allocate (except to clone duplicates).
pub struct ImpairQueue<P> {
    cfg: Impairment,
    rng: SplitMix64,
    heap: BinaryHeap<Entry<P>>,
    seq: u64,
    up: bool,
    /// When the serializer finishes the last accepted packet.
    link_free_at: Instant,
    /// The latest due time given to a packet that was not reordered.
    last_due: Instant,
    stats: ImpairStats,
    /// TCP data segments seen, for `corrupt_nth`.
    data_segs: u64,
    /// The highest sequence number seen per 4-tuple, for `corrupt_nth` (at most 64 flows).
    corrupt_flows: Vec<(FlowKey, u32)>,
}

type FlowKey = (std::net::IpAddr, std::net::IpAddr, u16, u16);

impl ImpairQueue<Vec<u8>> {
    /// `corrupt_nth`: if `pkt` (an IPv4 or IPv6 packet) is the N-th TCP segment with data,
    /// change its last payload byte and repair the TCP checksum. Returns whether it did.
    pub fn maybe_corrupt(&mut self, pkt: &mut [u8]) -> bool {
        if self.cfg.corrupt_nth == 0 || self.data_segs >= self.cfg.corrupt_nth {
            return false;
        }
        let Ok(info) = crate::wire::ip::parse(pkt) else {
            return false;
        };
        if info.protocol != crate::wire::ip::PROTO_TCP {
            return false;
        }
        let end = info.total_len.min(pkt.len());
        let Some(seg) = pkt.get_mut(info.header_len..end) else {
            return false;
        };
        let Ok(mut tcp) = crate::wire::tcp::TcpPacket::new_checked(seg) else {
            return false;
        };
        let len = tcp.payload_mut().len();
        if len == 0 {
            return false;
        }
        let key = (info.src, info.dst, tcp.src_port(), tcp.dst_port());
        let end = tcp.seq_number().wrapping_add(len as u32);
        match self.corrupt_flows.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let hi = &mut self.corrupt_flows[i].1;
                if (end.wrapping_sub(*hi) as i32) <= 0 {
                    return false; // nothing beyond what this flow already sent
                }
                *hi = end;
            }
            None if self.corrupt_flows.len() < 64 => self.corrupt_flows.push((key, end)),
            None => {}
        }
        self.data_segs += 1;
        if self.data_segs != self.cfg.corrupt_nth {
            return false;
        }
        if let Some(last) = tcp.payload_mut().last_mut() {
            *last ^= 0x5a;
        }
        tcp.fill_checksum(info.src, info.dst);
        true
    }
}

impl<P: Clone> ImpairQueue<P> {
    /// A queue with configuration `cfg` and a PRNG seeded with `seed`.
    pub fn new(cfg: Impairment, seed: u64) -> Self {
        ImpairQueue {
            cfg,
            rng: SplitMix64::new(seed),
            heap: BinaryHeap::new(),
            seq: 0,
            up: true,
            link_free_at: Instant::ZERO,
            last_due: Instant::ZERO,
            stats: ImpairStats::default(),
            data_segs: 0,
            corrupt_flows: Vec::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Impairment {
        &self.cfg
    }

    /// Changes the impairment for packets pushed from now on (queued ones keep their times).
    pub fn set_config(&mut self, cfg: Impairment) {
        self.cfg = cfg;
    }

    /// Serialization time of `len` bytes at the configured rate.
    fn tx_time(&self, len: usize) -> Duration {
        if self.cfg.rate_bps == 0 {
            return Duration::ZERO;
        }
        let bits = (len as u128) * 8;
        let micros = bits * 1_000_000 / u128::from(self.cfg.rate_bps);
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }

    /// Bytes still waiting to be serialized at `now` (including the one on the wire).
    pub fn backlog_bytes(&self, now: Instant) -> usize {
        if self.cfg.rate_bps == 0 {
            return 0;
        }
        let us = u128::from(self.link_free_at.saturating_duration_since(now).as_micros() as u64);
        let bytes = us * u128::from(self.cfg.rate_bps) / 8 / 1_000_000;
        usize::try_from(bytes).unwrap_or(usize::MAX)
    }

    fn jittered(&mut self, base: Instant) -> Instant {
        let mut due = base + self.cfg.delay;
        let j = u64::try_from(self.cfg.jitter.as_micros()).unwrap_or(u64::MAX / 4);
        if j > 0 {
            let r = self.rng.below_incl(2 * j.min(u64::MAX / 4));
            // due + (r - j), never earlier than `base`.
            if r >= j {
                due += Duration::from_micros(r - j);
            } else {
                due = (due - Duration::from_micros(j - r)).max(base);
            }
        }
        due
    }

    fn enqueue(&mut self, due: Instant, pkt: P) {
        self.seq += 1;
        self.heap.push(Entry {
            due,
            seq: self.seq,
            pkt,
        });
    }

    /// Offers a packet of `len` bytes at `now`. Returns `None` when it was queued, or the
    /// packet back with the reason when it was dropped (so the caller can recycle its
    /// buffer; ignoring it is fine). Drops are counted in [`ImpairStats`].
    pub fn push(&mut self, now: Instant, len: usize, pkt: P) -> Option<(DropReason, P)> {
        if !self.up {
            self.stats.down_drops += 1;
            return Some((DropReason::Down, pkt));
        }
        if self.rng.chance(self.cfg.loss) {
            self.stats.lost += 1;
            return Some((DropReason::Lost, pkt));
        }
        if self.cfg.rate_bps > 0
            && self.cfg.queue_limit > 0
            && self.backlog_bytes(now).saturating_add(len) > self.cfg.queue_limit
        {
            self.stats.queue_drops += 1;
            return Some((DropReason::QueueFull, pkt));
        }
        let start = self.link_free_at.max(now);
        let sent = start + self.tx_time(len);
        self.link_free_at = sent;

        let copies = if self.rng.chance(self.cfg.dup) { 2 } else { 1 };
        let mut pkt = Some(pkt);
        for i in 0..copies {
            let mut due = self.jittered(sent);
            if self.rng.chance(self.cfg.reorder) {
                // Held back by up to 1.5x the path delay (at least 1 ms) so that packets
                // pushed after it overtake it.
                let base = (self.cfg.delay + self.cfg.jitter).max(Duration::from_millis(1));
                let base_us = u64::try_from(base.as_micros()).unwrap_or(u64::MAX / 4);
                let extra = base_us / 2 + self.rng.below_incl(base_us);
                due += Duration::from_micros(extra.max(1));
                self.stats.reordered += 1;
            } else {
                due = due.max(self.last_due);
                self.last_due = due;
            }
            let p = if i + 1 == copies {
                pkt.take()
            } else {
                self.stats.dup += 1;
                pkt.clone()
            };
            if let Some(p) = p {
                self.enqueue(due, p);
            }
        }
        None
    }

    /// The next packet whose due time is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<P> {
        if self.heap.peek()?.due > now {
            return None;
        }
        let e = self.heap.pop()?;
        self.stats.passed += 1;
        Some(e.pkt)
    }

    /// When the next packet becomes due.
    pub fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.due)
    }

    /// Number of packets queued.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True if nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Whether the link is up.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Brings the link up or down. Going down drops everything queued (counted in
    /// `down_drops`); while down every push is dropped.
    pub fn set_up(&mut self, up: bool) {
        self.set_up_with(up, drop);
    }

    /// Like [`set_up`](Self::set_up), handing each dropped packet to `recycle`.
    pub fn set_up_with(&mut self, up: bool, mut recycle: impl FnMut(P)) {
        self.up = up;
        if !up {
            self.stats.down_drops += self.heap.len() as u64;
            for e in self.heap.drain() {
                recycle(e.pkt);
            }
            self.link_free_at = Instant::ZERO;
            self.last_due = Instant::ZERO;
        }
    }

    /// The counters.
    pub fn stats(&self) -> ImpairStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn parse_full_syntax() {
        let i: Impairment =
            "delay=25ms,jitter=5ms,loss=1%,dup=0.5%,reorder=2%,rate=10mbit,queue=100kb"
                .parse()
                .unwrap();
        assert_eq!(i.delay, ms(25));
        assert_eq!(i.jitter, ms(5));
        assert!((i.loss - 0.01).abs() < 1e-12);
        assert!((i.dup - 0.005).abs() < 1e-12);
        assert!((i.reorder - 0.02).abs() < 1e-12);
        assert_eq!(i.rate_bps, 10_000_000);
        assert_eq!(i.queue_limit, 100 * 1024);
        let again: Impairment = i.to_string().parse().unwrap();
        assert_eq!(again, i);
    }

    #[test]
    fn parse_units_and_defaults() {
        assert_eq!("".parse::<Impairment>().unwrap(), Impairment::default());
        assert_eq!("none".parse::<Impairment>().unwrap(), Impairment::default());
        assert_eq!(Impairment::default().to_string(), "none");
        let i: Impairment = "delay=1.5s, jitter=250us,rate=1gbit,queue=2mb,loss=0.25"
            .parse()
            .unwrap();
        assert_eq!(i.delay, ms(1500));
        assert_eq!(i.jitter, Duration::from_micros(250));
        assert_eq!(i.rate_bps, 1_000_000_000);
        assert_eq!(i.queue_limit, 2 * 1024 * 1024);
        assert_eq!(i.loss, 0.25);
        assert_eq!(
            i.to_string(),
            "delay=1500ms,jitter=250us,loss=25%,rate=1gbit,queue=2mb"
        );
        let r: Impairment = "rate=64kbit,queue=1500b".parse().unwrap();
        assert_eq!((r.rate_bps, r.queue_limit), (64_000, 1500));
        // a rate alone gets a bounded queue: 100 ms at the rate, at least 64 KiB
        let r: Impairment = "rate=10mbit".parse().unwrap();
        assert_eq!(r.queue_limit, 125_000);
        assert_eq!(r.to_string().parse::<Impairment>().unwrap(), r);
        let r: Impairment = "rate=1mbit".parse().unwrap();
        assert_eq!(r.queue_limit, 64 * 1024);
        let r: Impairment = "rate=1mbit,queue=0b".parse().unwrap();
        assert_eq!(r.queue_limit, 0, "explicitly unbounded");
        assert_eq!(r.to_string().parse::<Impairment>().unwrap(), r);
    }

    #[test]
    fn corrupt_changes_the_nth_data_segment_and_repairs_its_checksum() {
        let cfg: Impairment = "corrupt=2".parse().unwrap();
        assert_eq!(cfg.corrupt_nth, 2);
        assert_eq!(cfg.to_string(), "corrupt=2");
        use crate::wire::tcp::TcpPacket;
        let (src, dst): (std::net::IpAddr, std::net::IpAddr) =
            ("198.18.1.2".parse().unwrap(), "198.18.1.1".parse().unwrap());
        // IPv4 + TCP (20-byte headers) + the payload, valid checksums
        let seg = |seq: u32, payload: &[u8]| {
            let total = 40 + payload.len();
            let mut p = vec![0u8; total];
            p[24..28].copy_from_slice(&seq.to_be_bytes());
            p[0] = 0x45;
            p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            p[8] = 64;
            p[9] = 6;
            p[12..16].copy_from_slice(&[198, 18, 1, 2]);
            p[16..20].copy_from_slice(&[198, 18, 1, 1]);
            let h = crate::wire::checksum::fold(crate::wire::checksum::sum(&p[..20], 0));
            p[10..12].copy_from_slice(&h.to_be_bytes());
            p[32] = 5 << 4;
            p[33] = 0x18;
            p[40..].copy_from_slice(payload);
            TcpPacket::new_checked(&mut p[20..])
                .unwrap()
                .fill_checksum(src, dst);
            p
        };
        let tcp_ok = |p: &[u8]| {
            TcpPacket::new_checked(&p[20..])
                .unwrap()
                .verify_checksum(src, dst)
        };
        let mut q: ImpairQueue<Vec<u8>> = ImpairQueue::new(cfg, 1);
        let mut ack = seg(1, &[]);
        assert!(!q.maybe_corrupt(&mut ack), "a pure ACK is not counted");
        let mut first = seg(1, b"abcdefgh");
        assert!(!q.maybe_corrupt(&mut first));
        assert_eq!(&first[40..], b"abcdefgh");
        let mut again = seg(1, b"abcdefgh");
        assert!(
            !q.maybe_corrupt(&mut again),
            "a retransmission is not counted"
        );
        assert_eq!(&again[40..], b"abcdefgh");
        let mut second = seg(9, b"abcdefgh");
        assert!(tcp_ok(&second));
        assert!(q.maybe_corrupt(&mut second), "the second data segment");
        assert_ne!(&second[40..], b"abcdefgh");
        assert_eq!(&second[40..47], b"abcdefg", "one byte changed");
        assert!(tcp_ok(&second), "TCP checksum repaired");
        let mut third = seg(17, b"abcdefgh");
        assert!(!q.maybe_corrupt(&mut third), "only once");
    }

    #[test]
    fn parse_errors_are_typed() {
        assert!(matches!(
            "delay=25".parse::<Impairment>(),
            Err(ImpairParseError::BadValue { .. })
        ));
        assert!(matches!(
            "delay".parse::<Impairment>(),
            Err(ImpairParseError::MissingValue(_))
        ));
        assert!(matches!(
            "bogus=1ms".parse::<Impairment>(),
            Err(ImpairParseError::UnknownKey(_))
        ));
        assert!(matches!(
            "loss=150%".parse::<Impairment>(),
            Err(ImpairParseError::OutOfRange { .. })
        ));
        assert!(matches!(
            "rate=10mbps".parse::<Impairment>(),
            Err(ImpairParseError::BadValue { .. })
        ));
        assert!("loss=-1%".parse::<Impairment>().is_err());
        assert!("delay=ms".parse::<Impairment>().is_err());
        assert!("delay=1e999s".parse::<Impairment>().is_err());
        let msg = "rate=fast".parse::<Impairment>().unwrap_err().to_string();
        assert!(msg.contains("rate") && msg.contains("mbit"), "{msg}");
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs of SplitMix64 seeded with 0 (reference implementation by Vigna).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut r = SplitMix64::new(7);
        for _ in 0..1000 {
            let f = r.next_f64();
            assert!((0.0..1.0).contains(&f));
        }
    }

    fn drain_all(q: &mut ImpairQueue<u32>) -> Vec<(Instant, u32)> {
        let mut out = Vec::new();
        while let Some(t) = q.next_due() {
            while let Some(p) = q.pop_due(t) {
                out.push((t, p));
            }
        }
        out
    }

    #[test]
    fn perfect_link_is_fifo_and_immediate() {
        let mut q = ImpairQueue::new(Impairment::default(), 1);
        for i in 0..10 {
            assert!(q.push(Instant::ZERO, 100, i).is_none());
        }
        let out = drain_all(&mut q);
        assert_eq!(
            out.iter().map(|x| x.1).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert!(out.iter().all(|x| x.0 == Instant::ZERO));
        assert_eq!(q.stats().passed, 10);
    }

    #[test]
    fn delay_and_jitter_never_reorder_without_reorder() {
        let cfg: Impairment = "delay=10ms,jitter=9ms".parse().unwrap();
        let mut q = ImpairQueue::new(cfg, 42);
        let mut t = Instant::ZERO;
        for i in 0..2000 {
            assert!(q.push(t, 100, i).is_none());
            t += Duration::from_micros(100);
        }
        let out = drain_all(&mut q);
        assert_eq!(out.len(), 2000);
        let order: Vec<u32> = out.iter().map(|x| x.1).collect();
        assert_eq!(order, (0..2000).collect::<Vec<_>>());
        // Jitter did spread the delays.
        let delays: Vec<u64> = out
            .iter()
            .map(|(due, i)| due.total_micros() - u64::from(*i) * 100)
            .collect();
        assert!(delays
            .iter()
            .all(|d| *d >= 1_000 && *d <= 19_000 + 100 * 2000));
        assert!(delays.iter().min() < delays.iter().max());
    }

    #[test]
    fn reorder_reorders_and_counts() {
        let cfg: Impairment = "delay=5ms,reorder=10%".parse().unwrap();
        let mut q = ImpairQueue::new(cfg, 3);
        let mut t = Instant::ZERO;
        for i in 0..1000 {
            assert!(q.push(t, 100, i).is_none());
            t += Duration::from_micros(500);
        }
        let out = drain_all(&mut q);
        assert_eq!(out.len(), 1000);
        let inversions = out.windows(2).filter(|w| w[0].1 > w[1].1).count();
        let r = q.stats().reordered;
        assert!((50..=150).contains(&r), "reordered {r}");
        assert!(inversions > 0);
    }

    #[test]
    fn loss_and_dup_rates() {
        let cfg: Impairment = "loss=10%,dup=5%".parse().unwrap();
        let mut q = ImpairQueue::new(cfg, 99);
        let mut dropped = 0;
        for i in 0..10_000 {
            if let Some((DropReason::Lost, p)) = q.push(Instant::ZERO, 100, i) {
                assert_eq!(p, i);
                dropped += 1;
            }
        }
        let s = q.stats();
        assert_eq!(s.lost, dropped);
        assert!((800..1200).contains(&s.lost), "{s:?}");
        assert!((350..650).contains(&s.dup), "{s:?}");
        assert_eq!(q.len() as u64, 10_000 - s.lost + s.dup);
    }

    #[test]
    fn rate_limit_serializes_and_tail_drops() {
        // 8 Mbit/s: 1000 bytes take 1 ms. Queue 5000 bytes.
        let cfg: Impairment = "rate=8mbit,queue=5000b".parse().unwrap();
        let mut q = ImpairQueue::new(cfg, 5);
        let mut ok = 0;
        for i in 0..20 {
            match q.push(Instant::ZERO, 1000, i) {
                None => ok += 1,
                Some((r, _)) => assert_eq!(r, DropReason::QueueFull),
            }
        }
        assert_eq!(ok, 5);
        assert_eq!(q.stats().queue_drops, 15);
        let out = drain_all(&mut q);
        let times: Vec<u64> = out.iter().map(|x| x.0.total_micros()).collect();
        assert_eq!(times, vec![1000, 2000, 3000, 4000, 5000]);
        // After 2.5 ms the backlog drained partly: room for 2 more packets.
        assert_eq!(q.backlog_bytes(Instant::from_micros(2500)), 2500);
    }

    #[test]
    fn down_drops_queued_and_new() {
        let cfg: Impairment = "delay=10ms".parse().unwrap();
        let mut q = ImpairQueue::new(cfg, 5);
        for i in 0..3 {
            assert!(q.push(Instant::ZERO, 10, i).is_none());
        }
        let mut recycled = Vec::new();
        q.set_up_with(false, |p| recycled.push(p));
        recycled.sort();
        assert_eq!(recycled, vec![0, 1, 2]);
        assert!(q.is_empty());
        assert!(matches!(
            q.push(Instant::ZERO, 10, 9),
            Some((DropReason::Down, 9))
        ));
        assert_eq!(q.stats().down_drops, 4);
        q.set_up(true);
        assert!(q.push(Instant::ZERO, 10, 7).is_none());
        assert_eq!(q.pop_due(Instant::from_millis(10)), Some(7));
    }

    #[test]
    fn deterministic_per_seed() {
        let cfg: Impairment = "delay=3ms,jitter=2ms,loss=5%,dup=2%,reorder=3%"
            .parse()
            .unwrap();
        let run = |seed| {
            let mut q = ImpairQueue::new(cfg.clone(), seed);
            for i in 0..500 {
                let _ = q.push(Instant::from_micros(u64::from(i) * 200), 100, i);
            }
            drain_all(&mut q)
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }
}
