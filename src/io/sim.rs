//! A deterministic simulated network on a virtual clock that drives sans-IO [`Endpoint`]s.
//!
//! Hosts own IP addresses; links join two addresses and carry one [`ImpairQueue`] per
//! direction. A packet a host transmits is routed by its (src, dst) IP addresses to the first
//! link joining those two addresses (either orientation), passes the optional scripted hook,
//! then that direction's impairment, and is delivered to the host owning dst.
//!
//! Everything random comes from the seed given to [`SimNet::new`] (logged at `info` level),
//! so a failing run can be replayed exactly.
//!
//! One [`SimNet::step`]:
//! 1. drain each host's `poll_transmit` at the current time (what the applications did
//!    since the last step: writes, reads that reopen a window or release a held ACK);
//! 2. advance the clock to the earliest pending event (a packet due or a host timeout; the
//!    current time if a host has more to send); if nothing at all is pending, return `false`;
//! 3. deliver every packet due at the new time (links in index order, FIFO per queue);
//! 4. drain each host's `poll_transmit` (at most [`MAX_TX_PER_STEP`] packets per host);
//! 5. fire `handle_timeout` on each host whose `poll_timeout` has passed, then drain again.
//!
//! So a caller that acts between steps acts at the time of the events just processed, as
//! an application woken by them would.
//!
//! Packet buffers are recycled through a free list, so steady-state stepping does not
//! allocate per packet (duplication by an impairment clones, which does allocate).

use super::impair::{ImpairQueue, ImpairStats, Impairment, SplitMix64};
use super::pcap::PcapWriter;
use crate::time::Instant;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// A sans-IO protocol endpoint the simulator drives (quinn-proto style).
pub trait Endpoint {
    /// A packet (a whole IP datagram) arrived at `now`.
    fn handle_packet(&mut self, now: Instant, packet: &[u8]);
    /// Writes the next packet to send into `buf` and returns its length, or `None`.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize>;
    /// When `handle_timeout` should next be called.
    fn poll_timeout(&mut self) -> Option<Instant>;
    /// The time returned by `poll_timeout` has come.
    fn handle_timeout(&mut self, now: Instant);
}

/// What the simulator knows about a packet in transit, shown to the hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketInfo {
    /// Index of the sending host.
    pub from_host: usize,
    /// Index of the host owning `dst`.
    pub to_host: usize,
    /// Index of the link carrying it.
    pub link: usize,
    /// Source address read from the IP header.
    pub src: IpAddr,
    /// Destination address read from the IP header.
    pub dst: IpAddr,
    /// Global transmit counter (0 for the first routed packet).
    pub seq_no: u64,
    /// When it was transmitted.
    pub time: Instant,
}

/// The hook's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Forward the packet (possibly rewritten in place by the hook).
    Pass,
    /// Drop it (counted in [`SimStats::hook_drops`]).
    Drop,
}

/// A scripted fault hook: sees every routed packet before impairment and may rewrite or drop it.
pub type Hook = Box<dyn FnMut(&PacketInfo, &mut Vec<u8>) -> Verdict>;

/// Counters of one link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkStats {
    /// First endpoint address.
    pub a: IpAddr,
    /// Second endpoint address.
    pub b: IpAddr,
    /// Whether the link is up.
    pub up: bool,
    /// Direction a -> b.
    pub a_to_b: ImpairStats,
    /// Direction b -> a.
    pub b_to_a: ImpairStats,
}

/// Counters of the whole network.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Per link, in link index order.
    pub links: Vec<LinkStats>,
    /// Packets hosts handed to `poll_transmit`'s caller.
    pub transmitted: u64,
    /// Packets handed to a link (after the hook).
    pub routed: u64,
    /// Packets handed to `handle_packet`.
    pub delivered: u64,
    /// Packets whose IP header could not be read.
    pub malformed: u64,
    /// Packets whose destination no host owns.
    pub unroutable: u64,
    /// Packets with no link joining source and destination.
    pub no_link: u64,
    /// Packets dropped by the hook.
    pub hook_drops: u64,
    /// Packets for a host index missing from the slice given to `step`.
    pub undeliverable: u64,
    /// Packets larger than their link's MTU: dropped, each answered with an ICMP "packet
    /// too big" to the sender (see [`SimNet::set_link_mtu`]).
    pub too_big: u64,
    /// The largest packet routed onto a link (after the hook).
    pub largest: usize,
}

/// Packets drained from one host per step at most (avoids livelock on a chatty endpoint).
pub const MAX_TX_PER_STEP: usize = 64;
/// Largest packet a host may transmit.
pub const MAX_PACKET: usize = 65_536;
/// Steps in a row without the clock advancing after which `step` reports a livelock.
const STALL_LIMIT: u32 = 1_000_000;

#[derive(Clone)]
struct SimPacket {
    data: Vec<u8>,
    to_host: usize,
}

struct Link {
    a: IpAddr,
    b: IpAddr,
    /// `[a -> b, b -> a]`.
    dirs: [ImpairQueue<SimPacket>; 2],
    /// Largest IP packet the link carries (None: any).
    mtu: Option<usize>,
}

/// The simulated network. See the module documentation.
pub struct SimNet {
    now: Instant,
    seed: u64,
    seeder: SplitMix64,
    hosts: Vec<Vec<IpAddr>>,
    links: Vec<Link>,
    hook: Option<Hook>,
    next_seq: u64,
    pool: Vec<Vec<u8>>,
    scratch: Vec<u8>,
    pcap: Option<PcapWriter>,
    stats: SimStats,
    stall: u32,
}

/// Reads (src, dst) from an IPv4 or IPv6 header at fixed offsets.
fn peek_addrs(p: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match p.first()? >> 4 {
        4 => {
            let src: [u8; 4] = p.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            Some((Ipv4Addr::from(src).into(), Ipv4Addr::from(dst).into()))
        }
        6 => {
            let src: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            Some((Ipv6Addr::from(src).into(), Ipv6Addr::from(dst).into()))
        }
        _ => None,
    }
}

impl SimNet {
    /// An empty network at time zero. The seed is logged so failures can be replayed.
    pub fn new(seed: u64) -> Self {
        tracing::info!("SimNet seed {seed} (replay with SimNet::new({seed}))");
        SimNet {
            now: Instant::ZERO,
            seed,
            seeder: SplitMix64::new(seed ^ 0x6D70_7475_6E2D_7369),
            hosts: Vec::new(),
            links: Vec::new(),
            hook: None,
            next_seq: 0,
            pool: Vec::new(),
            scratch: vec![0; MAX_PACKET],
            pcap: None,
            stats: SimStats::default(),
            stall: 0,
        }
    }

    /// The seed this network was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Adds a host owning `addrs`; returns its index, which is its position in the endpoint
    /// slice given to [`step`](Self::step) / [`run_until`](Self::run_until).
    pub fn add_host(&mut self, addrs: &[IpAddr]) -> usize {
        self.hosts.push(addrs.to_vec());
        self.hosts.len() - 1
    }

    /// Adds an address to an existing host (e.g. a new interface appearing); false if no
    /// such host.
    pub fn add_host_addr(&mut self, host: usize, addr: IpAddr) -> bool {
        match self.hosts.get_mut(host) {
            Some(h) => {
                h.push(addr);
                true
            }
            None => false,
        }
    }

    /// Joins addresses `a` and `b` with a link; returns its index.
    pub fn add_link(
        &mut self,
        a: IpAddr,
        b: IpAddr,
        a_to_b: Impairment,
        b_to_a: Impairment,
    ) -> usize {
        let s1 = self.seeder.next_u64();
        let s2 = self.seeder.next_u64();
        self.links.push(Link {
            a,
            b,
            dirs: [ImpairQueue::new(a_to_b, s1), ImpairQueue::new(b_to_a, s2)],
            mtu: None,
        });
        self.links.len() - 1
    }

    /// Brings a link up or down. Going down drops (and counts) everything in flight on it.
    /// Unknown link indices are ignored.
    pub fn set_link_up(&mut self, link: usize, up: bool) {
        let Some(l) = self.links.get_mut(link) else {
            tracing::warn!("set_link_up: no link {link}");
            return;
        };
        let pool = &mut self.pool;
        for q in &mut l.dirs {
            q.set_up_with(up, |p| pool.push(p.data));
        }
    }

    /// Changes a link's impairment (direction a -> b when `a_to_b`) for packets sent from
    /// now on. Unknown link indices are ignored.
    pub fn set_link_impairment(&mut self, link: usize, a_to_b: bool, cfg: Impairment) {
        if let Some(l) = self.links.get_mut(link) {
            l.dirs[usize::from(!a_to_b)].set_config(cfg);
        }
    }

    /// Gives a link an MTU: a larger packet is dropped like a router with DF set would, and
    /// an ICMP "fragmentation needed" (IPv4) / ICMPv6 "packet too big" from the far end's
    /// address goes back to the sender over the same link, so path-MTU discovery can be
    /// tested. `None` removes the limit. Unknown link indices are ignored.
    pub fn set_link_mtu(&mut self, link: usize, mtu: Option<usize>) {
        if let Some(l) = self.links.get_mut(link) {
            l.mtu = mtu;
        }
    }

    /// Installs the scripted fault hook (replacing any previous one).
    pub fn set_hook(&mut self, hook: Hook) {
        self.hook = Some(hook);
    }

    /// Removes the hook.
    pub fn clear_hook(&mut self) {
        self.hook = None;
    }

    /// Records every routed packet (after the hook, before impairment, so lost packets
    /// appear too) to a pcap file at `path`.
    pub fn enable_pcap(&mut self, path: impl AsRef<Path>) -> io::Result<()> {
        self.pcap = Some(PcapWriter::create(path)?);
        Ok(())
    }

    /// Flushes the pcap file, if any.
    pub fn flush_pcap(&mut self) -> io::Result<()> {
        match &mut self.pcap {
            Some(p) => p.flush(),
            None => Ok(()),
        }
    }

    /// The counters.
    pub fn stats(&self) -> SimStats {
        let mut s = self.stats.clone();
        s.links = self
            .links
            .iter()
            .map(|l| LinkStats {
                a: l.a,
                b: l.b,
                up: l.dirs[0].is_up(),
                a_to_b: l.dirs[0].stats(),
                b_to_a: l.dirs[1].stats(),
            })
            .collect();
        s
    }

    /// Processes one event time (see the module docs). Returns false when nothing at all is
    /// pending (no packet in flight, no host timeout, no host with more to send).
    pub fn step(&mut self, hosts: &mut [&mut dyn Endpoint]) -> bool {
        self.step_inner(hosts, None)
    }

    /// Steps until `done` returns true (then returns true), or the clock would pass
    /// `deadline` or nothing is pending (then returns `done`'s final answer). Events due
    /// exactly at `deadline` are processed; the clock ends at most at `deadline`.
    pub fn run_until(
        &mut self,
        hosts: &mut [&mut dyn Endpoint],
        deadline: Instant,
        mut done: impl FnMut(&mut [&mut dyn Endpoint]) -> bool,
    ) -> bool {
        loop {
            if done(hosts) {
                return true;
            }
            if !self.step_inner(hosts, Some(deadline)) {
                return done(hosts);
            }
        }
    }

    fn step_inner(&mut self, hosts: &mut [&mut dyn Endpoint], limit: Option<Instant>) -> bool {
        // what the applications did since the last step (writes, reads that reopen a
        // window or release a held ACK) leaves at the time of that step's events, not at
        // the next event's time
        let busy = self.drain_transmit(hosts);
        let now = self.now;
        let next = if busy {
            Some(now)
        } else {
            self.next_event(hosts)
        };
        let Some(next) = next else {
            return false;
        };
        let next = next.max(now);
        if let Some(limit) = limit {
            if next > limit {
                self.now = limit.max(now);
                return false;
            }
        }
        if next == now {
            self.stall += 1;
            if self.stall >= STALL_LIMIT {
                tracing::error!(
                    "SimNet (seed {}): clock stuck at {:?} for {STALL_LIMIT} steps (livelock?)",
                    self.seed,
                    now
                );
                self.stall = 0;
                return false;
            }
        } else {
            self.stall = 0;
        }
        self.now = next;
        // the events due now: packets, then what they trigger, then timers
        self.deliver_due(hosts);
        self.drain_transmit(hosts);
        let mut fired = false;
        for h in hosts.iter_mut() {
            if h.poll_timeout().is_some_and(|t| t <= next) {
                h.handle_timeout(next);
                fired = true;
            }
        }
        if fired {
            self.drain_transmit(hosts);
        }
        true
    }

    fn next_event(&mut self, hosts: &mut [&mut dyn Endpoint]) -> Option<Instant> {
        let links = self
            .links
            .iter()
            .flat_map(|l| l.dirs.iter())
            .filter_map(|q| q.next_due());
        let timers = hosts.iter_mut().filter_map(|h| h.poll_timeout());
        links.chain(timers).min()
    }

    fn deliver_due(&mut self, hosts: &mut [&mut dyn Endpoint]) {
        let now = self.now;
        for li in 0..self.links.len() {
            for d in 0..2 {
                while let Some(pkt) = self.links.get_mut(li).and_then(|l| l.dirs[d].pop_due(now)) {
                    match hosts.get_mut(pkt.to_host) {
                        Some(h) => {
                            self.stats.delivered += 1;
                            h.handle_packet(now, &pkt.data);
                        }
                        None => self.stats.undeliverable += 1,
                    }
                    self.pool.push(pkt.data);
                }
            }
        }
    }

    /// Drains every host's transmissions; true if some host hit the per-step bound.
    fn drain_transmit(&mut self, hosts: &mut [&mut dyn Endpoint]) -> bool {
        let now = self.now;
        let mut busy = false;
        for (from, h) in hosts.iter_mut().enumerate() {
            let mut n = 0;
            while n < MAX_TX_PER_STEP {
                let Some(len) = h.poll_transmit(now, &mut self.scratch) else {
                    break;
                };
                n += 1;
                self.stats.transmitted += 1;
                self.route(from, len.min(MAX_PACKET));
            }
            busy |= n == MAX_TX_PER_STEP;
        }
        busy
    }

    fn route(&mut self, from_host: usize, len: usize) {
        let now = self.now;
        let pkt = self.scratch.get(..len).unwrap_or(&[]);
        let Some((src, dst)) = peek_addrs(pkt) else {
            self.stats.malformed += 1;
            return;
        };
        let Some(to_host) = self.hosts.iter().position(|h| h.contains(&dst)) else {
            self.stats.unroutable += 1;
            return;
        };
        let found = self.links.iter().enumerate().find_map(|(i, l)| {
            if l.a == src && l.b == dst {
                Some((i, 0))
            } else if l.b == src && l.a == dst {
                Some((i, 1))
            } else {
                None
            }
        });
        let Some((link, dir)) = found else {
            self.stats.no_link += 1;
            return;
        };
        let mut buf = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(2048));
        buf.clear();
        buf.extend_from_slice(pkt);
        let info = PacketInfo {
            from_host,
            to_host,
            link,
            src,
            dst,
            seq_no: self.next_seq,
            time: now,
        };
        self.next_seq += 1;
        if let Some(hook) = &mut self.hook {
            if hook(&info, &mut buf) == Verdict::Drop {
                self.stats.hook_drops += 1;
                self.pool.push(buf);
                return;
            }
        }
        if let Some(p) = &mut self.pcap {
            if let Err(e) = p.write(now, &buf) {
                tracing::warn!("SimNet: pcap write failed, capture stopped: {e}");
                self.pcap = None;
            }
        }
        let len = buf.len();
        if let Some(mtu) = self.links[link].mtu.filter(|&m| len > m) {
            self.stats.too_big += 1;
            let mut icmp = vec![0u8; 1400];
            if let Ok(n) = crate::wire::icmp::emit_too_big(&mut icmp, dst, &buf, mtu as u32) {
                icmp.truncate(n);
                let q = &mut self.links[link].dirs[dir ^ 1];
                let back = SimPacket {
                    data: icmp,
                    to_host: from_host,
                };
                if let Some((_, p)) = q.push(now, n, back) {
                    self.pool.push(p.data);
                }
            }
            self.pool.push(buf);
            return;
        }
        self.stats.routed += 1;
        self.stats.largest = self.stats.largest.max(len);
        let q = &mut self.links[link].dirs[dir]; // index from `find_map` over self.links
        if let Some((_, p)) = q.push(now, len, SimPacket { data: buf, to_host }) {
            self.pool.push(p.data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_addrs_v4_v6_and_garbage() {
        let mut v4 = [0u8; 20];
        v4[0] = 0x45;
        v4[12..16].copy_from_slice(&[198, 19, 0, 1]);
        v4[16..20].copy_from_slice(&[198, 19, 0, 2]);
        assert_eq!(
            peek_addrs(&v4),
            Some(("198.19.0.1".parse().unwrap(), "198.19.0.2".parse().unwrap()))
        );
        let mut v6 = [0u8; 40];
        v6[0] = 0x60;
        v6[23] = 1;
        v6[39] = 2;
        assert_eq!(
            peek_addrs(&v6),
            Some(("::1".parse().unwrap(), "::2".parse().unwrap()))
        );
        assert_eq!(peek_addrs(&[]), None);
        assert_eq!(peek_addrs(&v4[..19]), None);
        assert_eq!(peek_addrs(&v6[..39]), None);
        assert_eq!(peek_addrs(&[0x55; 64]), None);
    }
}

/// What a host's "device" does with the super-segments its stack emits when the stack is
/// driven through [`OffloadEndpoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffloadMode {
    /// Split each super-segment into MSS-sized segments before the link (a TUN device
    /// with TSO, or the kernel's GSO on the way out): the peer sees ordinary segments.
    Split,
    /// Hand each super-segment to the link whole, checksum completed: the peer receives
    /// coalesced segments, as the kernel's GRO (or a local TSO sender) delivers them.
    Whole,
}

/// State kept across steps for an [`OffloadEndpoint`]: finished packets waiting to go out,
/// and counters.
#[derive(Debug)]
pub struct OffloadState {
    pub mode: OffloadMode,
    pub offload: crate::stack::TxOffload,
    pending: std::collections::VecDeque<Vec<u8>>,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    /// Super-segments the stack emitted.
    pub super_segments: u64,
    /// Packets the split produced from them.
    pub split_segments: u64,
    /// Packets `offload::finish` rejected (never expected).
    pub errors: u64,
}

impl OffloadState {
    /// TSO up to `tso_bytes` with partial checksums, finished as `mode` says.
    pub fn new(mode: OffloadMode, tso_bytes: u32) -> OffloadState {
        OffloadState {
            mode,
            offload: crate::stack::TxOffload {
                tso_bytes,
                csum_partial: true,
            },
            pending: std::collections::VecDeque::new(),
            buf: vec![0; MAX_PACKET],
            scratch: vec![0; MAX_PACKET],
            super_segments: 0,
            split_segments: 0,
            errors: 0,
        }
    }
}

/// A [`crate::stack::Stack`] seen through a device with segmentation and checksum offload:
/// the stack emits super-segments with partial checksums (`poll_transmit_offload`), this
/// endpoint finishes them in software ([`super::offload::finish`]) the way the device
/// would. Tests use it to check TSO without a kernel. (Allocates per super-segment; a test
/// tool, not a fast path.)
pub struct OffloadEndpoint<'a> {
    pub stack: &'a mut crate::stack::Stack,
    pub state: &'a mut OffloadState,
}

impl Endpoint for OffloadEndpoint<'_> {
    fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        self.stack.handle_packet(now, packet)
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        loop {
            if let Some(p) = self.state.pending.pop_front() {
                let n = p.len().min(buf.len());
                buf[..n].copy_from_slice(&p[..n]);
                return Some(n);
            }
            let st = &mut *self.state;
            let p = self
                .stack
                .poll_transmit_offload(now, &mut st.buf, &st.offload)?;
            if p.gso_size > 0 {
                st.super_segments += 1;
            }
            let pkt = st.buf.get(..p.len).unwrap_or(&[]);
            let meta = match st.mode {
                // whole: only the checksum is completed
                OffloadMode::Whole => crate::stack::TxPacket { gso_size: 0, ..p },
                OffloadMode::Split => p,
            };
            let (pending, scratch) = (&mut st.pending, &mut st.scratch);
            let mut produced = 0u64;
            let r = super::offload::finish(pkt, &meta, scratch, |seg| {
                pending.push_back(seg.to_vec());
                produced += 1;
            });
            if p.gso_size > 0 && st.mode == OffloadMode::Split {
                st.split_segments += produced;
            }
            if r.is_err() {
                st.errors += 1;
            }
        }
    }
    fn poll_timeout(&mut self) -> Option<Instant> {
        self.stack.poll_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.stack.handle_timeout(now)
    }
}
