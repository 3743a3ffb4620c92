//! The threaded runtime: runs a `Stack` on its own thread over packet devices (TUN devices,
//! or in-process socket pairs), with optional per-device, per-direction impairment.
//!
//! Loop: sleep in `poll(2)` on every device and a waker until a packet arrives, the stack's
//! next timer, or the next impaired packet is due; then, under the stack lock, read every
//! device until it is empty (bounded), feed the packets, run timers, and drain
//! `poll_transmit` into the device that owns each packet's source address.
//! Steady state allocates nothing: one receive and one transmit buffer are reused, and
//! impaired packets travel in recycled buffers.

use super::clock::Clock;
use super::impair::{ImpairQueue, Impairment};
use super::tun::{poll_fds, Waker};
use crate::api::{ClockSource, DriverWaker, StackHandle};
use crate::stack::{Stack, TxOffload, TxPacket};
use crate::time::Instant;
use crate::wire::ip;
use core::net::IpAddr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Largest packet handled (TUN super-segments up to 64 KiB).
pub const MAX_PACKET: usize = 65536;
/// Packets read per wakeup (all devices together) before timers run and the loop polls
/// again; devices are read one packet each in turn.
const RX_BUDGET: usize = 1024;
/// Bytes read per wakeup (all devices together) before the stack lock is released and the
/// application woken: with coalesced 64 KiB packets the packet budget alone would let one
/// wakeup fill a whole receive buffer while the reader waits for the lock.
const RX_BYTES_BUDGET: usize = 128 * 1024;
/// Address pairs whose device is remembered.
const MAX_ROUTES: usize = 256;
/// Packets transmitted per round before devices are read again.
const TX_BATCH: usize = 512;

/// A device that carries whole IP packets.
pub trait PacketDevice: Send {
    /// Read one packet; `WouldBlock` when none is waiting.
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Write one packet.
    fn send(&mut self, pkt: &[u8]) -> io::Result<usize>;
    /// File descriptor to poll for readability.
    fn raw_fd(&self) -> RawFd;
    /// Name for messages.
    fn name(&self) -> &str;
    /// The device MTU, if it has one: the stack sizes segments of the addresses on this
    /// device to fit (TUN devices accept larger packets, but the path behind them may not).
    fn mtu(&self) -> Option<u32> {
        None
    }
    /// What the device does for outgoing packets given to [`Self::send_meta`]: split
    /// super-segments (TSO), complete partial checksums. Default: nothing.
    fn offload(&self) -> TxOffload {
        TxOffload::default()
    }
    /// Read one packet with its offload metadata. Default: [`Self::recv`], nothing to say.
    fn recv_meta(&mut self, buf: &mut [u8]) -> io::Result<RxMeta> {
        let n = self.recv(buf)?;
        Ok(RxMeta {
            start: 0,
            len: n,
            ..RxMeta::default()
        })
    }
    /// Write one packet from `poll_transmit_offload`; `meta` asks only for what
    /// [`Self::offload`] offers. Default: [`Self::send`] (the driver finishes packets in
    /// software for devices without offload).
    fn send_meta(&mut self, pkt: &[u8], meta: &TxPacket) -> io::Result<usize> {
        let _ = meta;
        self.send(pkt)
    }
}

/// A received packet's place in the buffer and what the device said about it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// The IP packet is `buf[start..start + len]`.
    pub start: usize,
    pub len: usize,
    /// The TCP checksum need not be verified (checked by the kernel, or partial).
    pub csum_trusted: bool,
    /// Partial checksum: (checksum start, offset of the field from it), relative to `start`.
    pub csum_partial: Option<(u16, u16)>,
    /// A coalesced super-segment (several segments' payload behind one header).
    pub coalesced: bool,
}

/// Largest super-segment payload asked of a device with TSO: an IPv6 or IPv4 packet of
/// headers, 40 option bytes and this payload stays below 64 KiB.
pub const TSO_BYTES: u32 = 65_535 - 40 - 60 - 35;

/// One end of an in-process packet link: an `AF_UNIX` `SOCK_SEQPACKET` socket pair, so two
/// runtimes in one process can talk without root or TUN devices.
#[derive(Debug)]
pub struct SeqPacketDevice {
    fd: OwnedFd,
    name: String,
}

impl SeqPacketDevice {
    /// A connected pair of devices.
    pub fn pair(name_a: &str, name_b: &str) -> io::Result<(SeqPacketDevice, SeqPacketDevice)> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: fds points to two c_ints, as socketpair requires.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        use std::os::fd::FromRawFd;
        // SAFETY: socketpair succeeded, so both descriptors are open and owned by nobody else.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&a, &b] {
            let size: libc::c_int = 4 << 20;
            // SAFETY: valid fd and a pointer to a c_int of the given length.
            unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_SNDBUF,
                    &size as *const _ as *const libc::c_void,
                    core::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok((
            SeqPacketDevice {
                fd: a,
                name: name_a.into(),
            },
            SeqPacketDevice {
                fd: b,
                name: name_b.into(),
            },
        ))
    }
}

impl PacketDevice for SeqPacketDevice {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let n = unsafe {
            libc::recv(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn send(&mut self, pkt: &[u8]) -> io::Result<usize> {
        // SAFETY: pkt is valid for reads of pkt.len() bytes.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                pkt.as_ptr() as *const libc::c_void,
                pkt.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn name(&self) -> &str {
        &self.name
    }
}

impl PacketDevice for super::tun::Tun {
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        super::tun::Tun::recv(self, buf)
    }
    fn send(&mut self, pkt: &[u8]) -> io::Result<usize> {
        super::tun::Tun::send(self, pkt)
    }
    fn raw_fd(&self) -> RawFd {
        self.as_raw_fd()
    }
    fn name(&self) -> &str {
        super::tun::Tun::name(self)
    }
    fn mtu(&self) -> Option<u32> {
        super::tun::Tun::mtu(self).ok()
    }
    fn offload(&self) -> TxOffload {
        if self.has_vnet_hdr() {
            TxOffload {
                tso_bytes: TSO_BYTES,
                csum_partial: true,
            }
        } else {
            TxOffload::default()
        }
    }
    fn recv_meta(&mut self, buf: &mut [u8]) -> io::Result<RxMeta> {
        let (start, len, h) = self.recv_offload(buf)?;
        Ok(RxMeta {
            start,
            len,
            csum_trusted: h.csum_trusted(),
            csum_partial: (h.flags & super::tun::VNET_F_NEEDS_CSUM != 0)
                .then_some((h.csum_start, h.csum_offset)),
            coalesced: h.is_gso(),
        })
    }
    fn send_meta(&mut self, pkt: &[u8], meta: &TxPacket) -> io::Result<usize> {
        use super::tun::{VnetHdr, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_GSO_TCPV6};
        let mut h = VnetHdr::default();
        if meta.gso_size > 0 {
            h.gso_type = if meta.ipv6 {
                VNET_GSO_TCPV6
            } else {
                VNET_GSO_TCPV4
            };
            h.gso_size = meta.gso_size;
            h.hdr_len = meta.hdr_len;
        }
        if meta.csum_partial {
            h.flags = VNET_F_NEEDS_CSUM;
            h.csum_start = meta.l4_offset;
            h.csum_offset = 16;
        }
        self.send_offload(pkt, &h)
    }
}

/// A device plus the stack addresses that live on it and its impairments.
pub struct Port {
    pub device: Box<dyn PacketDevice>,
    pub addrs: Vec<IpAddr>,
    /// Impairment of packets the stack sends out of this device.
    pub egress: Option<Impairment>,
    /// Impairment of packets arriving on this device.
    pub ingress: Option<Impairment>,
}

/// Counters of the driver.
#[derive(Clone, Copy, Debug, Default)]
pub struct DriverStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub impaired_drops: u64,
    /// Received packets that were coalesced super-segments (GRO / a local TSO sender).
    pub rx_coalesced: u64,
    /// Super-segments handed to a device to split (TSO).
    pub tx_super: u64,
    /// Packets finished in software (split or checksummed) because their device or its
    /// impairment queue takes only plain packets.
    pub tx_soft_finished: u64,
}

/// Runtime control shared with the driver thread.
struct Control {
    stop: AtomicBool,
    link_up: Vec<AtomicBool>,
    link_changed: AtomicBool,
    stats: std::sync::Mutex<DriverStats>,
}

impl DriverWaker for Arc<Waker> {
    fn wake(&self) {
        if let Err(e) = Waker::wake(self) {
            tracing::warn!("cannot wake the driver: {e}");
        }
    }
}

struct ClockRef(Arc<Clock>);

impl ClockSource for ClockRef {
    fn now(&self) -> Instant {
        self.0.now()
    }
}

/// Takes a runtime's devices down and up (see [`Runtime::set_link_up`]).
#[derive(Clone)]
pub struct LinkControl {
    control: Arc<Control>,
    waker: Arc<Waker>,
}

impl LinkControl {
    /// Take device `port` down or up.
    pub fn set_link_up(&self, port: usize, up: bool) {
        if let Some(l) = self.control.link_up.get(port) {
            l.store(up, Ordering::Relaxed);
            self.control.link_changed.store(true, Ordering::Relaxed);
            if let Err(e) = Waker::wake(&self.waker) {
                tracing::warn!("cannot wake the driver: {e}");
            }
        }
    }
}

/// A stack running on its own thread.
pub struct Runtime {
    handle: StackHandle,
    control: Arc<Control>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime")
    }
}

/// Options of a runtime.
#[derive(Clone, Debug, Default)]
pub struct RuntimeOptions {
    /// Seeds the impairment layers.
    pub seed: u64,
    /// Write every packet received and sent to this pcap file (raw IP).
    pub pcap: Option<std::path::PathBuf>,
}

impl Runtime {
    /// Start the driver thread. `seed` seeds the impairment layers.
    pub fn start(stack: Stack, ports: Vec<Port>, seed: u64) -> io::Result<Runtime> {
        Self::start_with(stack, ports, RuntimeOptions { seed, pcap: None })
    }

    /// Start the driver thread with options.
    pub fn start_with(
        mut stack: Stack,
        ports: Vec<Port>,
        opts: RuntimeOptions,
    ) -> io::Result<Runtime> {
        for p in &ports {
            if let Some(mtu) = p.device.mtu() {
                let mtu = mtu.min(u32::from(u16::MAX)) as u16;
                for &a in &p.addrs {
                    stack.set_mtu(a, mtu);
                }
            }
        }
        let seed = opts.seed;
        let mut pcap = match &opts.pcap {
            Some(p) => Some(super::pcap::PcapWriter::create(p)?),
            None => None,
        };
        let clock = Arc::new(Clock::new());
        let waker = Arc::new(Waker::new()?);
        let handle = StackHandle::new(
            stack,
            Box::new(waker.clone()),
            Box::new(ClockRef(clock.clone())),
        );
        let control = Arc::new(Control {
            stop: AtomicBool::new(false),
            link_up: ports.iter().map(|_| AtomicBool::new(true)).collect(),
            link_changed: AtomicBool::new(false),
            stats: std::sync::Mutex::new(DriverStats::default()),
        });
        let (h, c, w) = (handle.clone(), control.clone(), waker.clone());
        let thread = std::thread::Builder::new()
            .name("mptun-driver".into())
            .spawn(move || {
                let r = drive(&h, &c, &w, &clock, ports, seed, pcap.as_mut());
                if let Some(p) = pcap.as_mut() {
                    let _ = p.flush();
                }
                h.set_stopped(match &r {
                    Ok(()) => "runtime stopped".into(),
                    Err(e) => format!("driver failed: {e}"),
                });
                r
            })?;
        Ok(Runtime {
            handle,
            control,
            waker,
            thread: Some(thread),
        })
    }

    /// The stack handle for the API (`MptcpStream::connect(rt.handle(), ...)`).
    pub fn handle(&self) -> &StackHandle {
        &self.handle
    }

    /// Take device `port` (index in the list given to `start`) down or up: while down,
    /// every packet in either direction is dropped.
    pub fn set_link_up(&self, port: usize, up: bool) {
        if let Some(l) = self.control.link_up.get(port) {
            l.store(up, Ordering::Relaxed);
            self.control.link_changed.store(true, Ordering::Relaxed);
            self.waker.wake();
        }
    }

    /// A handle that can take devices down and up from another thread.
    pub fn link_control(&self) -> LinkControl {
        LinkControl {
            control: self.control.clone(),
            waker: self.waker.clone(),
        }
    }

    /// Driver counters.
    pub fn stats(&self) -> DriverStats {
        *self.control.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stop the driver thread and return its result.
    pub fn stop(mut self) -> io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> io::Result<()> {
        self.control.stop.store(true, Ordering::Relaxed);
        self.waker.wake();
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("driver thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

struct PortState {
    port: Port,
    egress: Option<ImpairQueue<Vec<u8>>>,
    ingress: Option<ImpairQueue<Vec<u8>>>,
    up: bool,
}

fn drive(
    handle: &StackHandle,
    control: &Control,
    waker: &Waker,
    clock: &Clock,
    ports: Vec<Port>,
    seed: u64,
    mut pcap: Option<&mut super::pcap::PcapWriter>,
) -> io::Result<()> {
    let mut states: Vec<PortState> = ports
        .into_iter()
        .enumerate()
        .map(|(i, p)| PortState {
            egress: p
                .egress
                .clone()
                .map(|c| ImpairQueue::new(c, seed ^ (2 * i as u64 + 1))),
            ingress: p
                .ingress
                .clone()
                .map(|c| ImpairQueue::new(c, seed ^ (2 * i as u64 + 2))),
            port: p,
            up: true,
        })
        .collect();
    let mut rx = vec![0u8; MAX_PACKET + super::tun::VNET_HDR_LEN];
    let mut tx = vec![0u8; MAX_PACKET];
    let mut scratch = vec![0u8; MAX_PACKET];
    // what every device can do for outgoing packets (a packet may leave by any of them);
    // a device whose packets are impaired gets plain packets (finished in software), so
    // it does not count
    let offload = {
        let mut o: Option<TxOffload> = None;
        for st in states.iter().filter(|st| st.egress.is_none()) {
            let d = st.port.device.offload();
            o = Some(match o {
                None => d,
                Some(p) => TxOffload {
                    tso_bytes: p.tso_bytes.min(d.tso_bytes),
                    csum_partial: p.csum_partial && d.csum_partial,
                },
            });
        }
        let o = o.unwrap_or_default();
        // TSO packets carry partial checksums (virtio requires it)
        if o.csum_partial {
            o
        } else {
            TxOffload::default()
        }
    };
    tracing::debug!("driver offload: {offload:?}");
    let mut spare: Vec<Vec<u8>> = Vec::new();
    let mut pollfds: Vec<RawFd> = Vec::with_capacity(states.len() + 1);
    let mut stats = DriverStats::default();
    let mut routes: std::collections::HashMap<(IpAddr, IpAddr), usize> =
        std::collections::HashMap::with_capacity(MAX_ROUTES);
    loop {
        if control.stop.load(Ordering::Relaxed) {
            // what the stack still has to say leaves before the driver does: e.g. the RSTs
            // (with MP_FASTCLOSE) of a connection aborted just before the stop
            {
                let mut core = handle.lock();
                let now = clock.now();
                transmit(
                    &mut core.stack,
                    now,
                    &offload,
                    &mut tx,
                    &mut scratch,
                    &mut states,
                    &routes,
                    &mut pcap,
                    &mut stats,
                    &mut spare,
                );
            }
            tracing::info!("driver: {stats:?} (offload {offload:?})");
            if tracing::enabled!(tracing::Level::INFO) {
                tracing::info!("counters: {}", handle.lock().stack.mib().nonzero_text());
            }
            return Ok(());
        }
        if control.link_changed.swap(false, Ordering::Relaxed) {
            for (i, st) in states.iter_mut().enumerate() {
                let up = control
                    .link_up
                    .get(i)
                    .is_none_or(|l| l.load(Ordering::Relaxed));
                st.up = up;
                for q in [st.egress.as_mut(), st.ingress.as_mut()]
                    .into_iter()
                    .flatten()
                {
                    q.set_up_with(up, |b| spare.push(b));
                }
            }
        }
        // how long to sleep
        let now = clock.now();
        let mut next = handle.lock().stack.poll_timeout();
        for st in &states {
            for q in [st.egress.as_ref(), st.ingress.as_ref()]
                .into_iter()
                .flatten()
            {
                if let Some(t) = q.next_due() {
                    next = Some(next.map_or(t, |n| n.min(t)));
                }
            }
        }
        let timeout = next
            .map(|t| t.saturating_duration_since(now))
            .map(|d| d.min(Duration::from_millis(250)));
        let timeout = Some(timeout.unwrap_or(Duration::from_millis(250)));
        pollfds.clear();
        pollfds.push(waker.fd());
        for st in &states {
            pollfds.push(st.port.device.raw_fd());
        }
        let ready = poll_fds(&pollfds, timeout)?;
        if ready & 1 != 0 {
            waker.drain()?;
        }

        let mut core = handle.lock();
        let now = clock.now();
        let stack: &mut Stack = &mut core.stack;
        // receive: one packet from each readable device in turn, so that no device starves
        // another, until every device is drained (or the round budget is spent); after each
        // turn, send what the packets triggered (ACKs every second segment, ack-clocked
        // data), so that a burst of input does not collapse into one stretch ACK
        let mut readable: u64 = 0;
        for (i, st) in states.iter().enumerate().take(63) {
            if ready & (1 << (i + 1)) != 0 || st.ingress.as_ref().is_some_and(|q| !q.is_empty()) {
                readable |= 1 << i;
            }
        }
        let mut budget = RX_BUDGET;
        let mut bytes_budget = RX_BYTES_BUDGET;
        while readable != 0 && budget > 0 && bytes_budget > 0 {
            for (i, st) in states.iter_mut().enumerate().take(63) {
                if readable & (1 << i) == 0 {
                    continue;
                }
                match st.port.device.recv_meta(&mut rx) {
                    Ok(m) if m.len == 0 => readable &= !(1 << i),
                    Ok(m) => {
                        budget = budget.saturating_sub(1);
                        bytes_budget = bytes_budget.saturating_sub(m.len);
                        stats.rx_packets += 1;
                        stats.rx_coalesced += u64::from(m.coalesced);
                        let Some(pkt) = rx.get_mut(m.start..m.start + m.len) else {
                            stats.rx_errors += 1;
                            continue;
                        };
                        if let Some((start, off)) = m.csum_partial {
                            if pcap.is_some() || st.ingress.is_some() {
                                // captures and impairment queues hold complete packets
                                super::offload::complete_rx_checksum(
                                    pkt,
                                    usize::from(start),
                                    usize::from(off),
                                );
                            }
                        }
                        if let Some(p) = pcap.as_mut() {
                            let _ = p.write(now, pkt);
                        }
                        if !st.up {
                            stats.impaired_drops += 1;
                            continue;
                        }
                        // the packet's addresses: from the stack, which parses the header
                        // anyway; an impaired packet reaches it later, so it is parsed here
                        let addrs = match st.ingress.as_mut() {
                            Some(q) => {
                                let a = ip::parse(pkt).ok().map(|i| (i.src, i.dst));
                                impair(q, now, pkt, &mut spare, &mut stats);
                                a
                            }
                            None => stack.handle_packet_offload(now, pkt, m.csum_trusted),
                        };
                        // remember which device this (local, remote) pair talks through, so
                        // answers leave by the same one (the peer may have bound its end to it)
                        if let Some((src, dst)) = addrs {
                            if routes.len() < MAX_ROUTES || routes.contains_key(&(dst, src)) {
                                routes.insert((dst, src), i);
                            }
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => readable &= !(1 << i),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        stats.rx_errors += 1;
                        tracing::warn!("{}: read failed: {e}", st.port.device.name());
                        readable &= !(1 << i);
                    }
                }
            }
            transmit(
                stack,
                now,
                &offload,
                &mut tx,
                &mut scratch,
                &mut states,
                &routes,
                &mut pcap,
                &mut stats,
                &mut spare,
            );
        }
        for st in states.iter_mut() {
            if let Some(q) = st.ingress.as_mut() {
                while let Some(b) = q.pop_due(now) {
                    stack.handle_packet(now, &b);
                    spare.push(b);
                }
            }
        }
        // timers
        if stack.poll_timeout().is_some_and(|t| t <= now) {
            stack.handle_timeout(now);
        }
        transmit(
            stack,
            now,
            &offload,
            &mut tx,
            &mut scratch,
            &mut states,
            &routes,
            &mut pcap,
            &mut stats,
            &mut spare,
        );
        for st in states.iter_mut() {
            if let Some(q) = st.egress.as_mut() {
                while let Some(b) = q.pop_due(now) {
                    send_one(st.port.device.as_mut(), &b, &mut stats);
                    spare.push(b);
                }
            }
        }
        drop(core);
        *control.stats.lock().unwrap_or_else(|p| p.into_inner()) = stats;
        handle.notify();
    }
}

/// Drain the stack's output (bounded) into the device that owns each packet.
#[allow(clippy::too_many_arguments)]
fn transmit(
    stack: &mut Stack,
    now: Instant,
    offload: &TxOffload,
    tx: &mut [u8],
    scratch: &mut [u8],
    states: &mut [PortState],
    routes: &std::collections::HashMap<(IpAddr, IpAddr), usize>,
    pcap: &mut Option<&mut super::pcap::PcapWriter>,
    stats: &mut DriverStats,
    spare: &mut Vec<Vec<u8>>,
) {
    for _ in 0..TX_BATCH {
        let Some(p) = stack.poll_transmit_offload(now, tx, offload) else {
            break;
        };
        let Some(pkt) = tx.get(..p.len) else {
            stats.tx_errors += 1;
            continue;
        };
        let unfinished = p.gso_size > 0 || p.csum_partial;
        if let Some(w) = pcap.as_mut() {
            // capture what the wire carries: the segments, with their checksums
            let r = super::offload::finish(pkt, &p, scratch, |seg| {
                let _ = w.write(now, seg);
            });
            if r.is_err() {
                stats.tx_errors += 1;
            }
        }
        // the stack says where the packet goes; parse the header only for a packet that
        // does not say
        let Some((src, dst)) = p
            .addrs()
            .or_else(|| ip::parse(pkt).ok().map(|i| (i.src, i.dst)))
        else {
            stats.tx_errors += 1;
            continue;
        };
        // the device the peer used for this address pair, else the one owning the source
        let learned = routes
            .get(&(src, dst))
            .copied()
            .filter(|&i| i < states.len());
        let port = learned.or_else(|| states.iter().position(|s| s.port.addrs.contains(&src)));
        let Some(st) = port.and_then(|i| states.get_mut(i)) else {
            stats.tx_errors += 1;
            continue;
        };
        if !st.up {
            stats.impaired_drops += 1;
            continue;
        }
        let dev_offload = st.port.device.offload();
        let device_does_it = (p.gso_size == 0 || u32::from(p.gso_size) <= dev_offload.tso_bytes)
            && (!p.csum_partial || dev_offload.csum_partial);
        if unfinished && (st.egress.is_some() || !device_does_it) {
            // impairment queues and devices without offload take finished packets
            stats.tx_soft_finished += 1;
            let PortState { port, egress, .. } = st;
            let r = super::offload::finish(pkt, &p, scratch, |seg| match egress.as_mut() {
                Some(q) => impair(q, now, seg, spare, stats),
                None => send_one(port.device.as_mut(), seg, stats),
            });
            if r.is_err() {
                stats.tx_errors += 1;
            }
            continue;
        }
        match st.egress.as_mut() {
            Some(q) => impair(q, now, pkt, spare, stats),
            None if unfinished => {
                if p.gso_size > 0 {
                    stats.tx_super += 1;
                }
                match st.port.device.send_meta(pkt, &p) {
                    Ok(_) => stats.tx_packets += 1,
                    Err(e) => {
                        stats.tx_errors += 1;
                        tracing::debug!("{}: write failed: {e}", st.port.device.name());
                    }
                }
            }
            None => send_one(st.port.device.as_mut(), pkt, stats),
        }
    }
}

/// Queue a copy of `pkt` (in a recycled buffer) on an impairment queue; a drop is counted.
fn impair(
    q: &mut ImpairQueue<Vec<u8>>,
    now: Instant,
    pkt: &[u8],
    spare: &mut Vec<Vec<u8>>,
    stats: &mut DriverStats,
) {
    let mut b = spare.pop().unwrap_or_default();
    b.clear();
    b.extend_from_slice(pkt);
    if q.maybe_corrupt(&mut b) {
        tracing::info!("impairment: changed a payload byte of a TCP segment (corrupt=N)");
    }
    if let Some((_, b)) = q.push(now, pkt.len(), b) {
        stats.impaired_drops += 1;
        spare.push(b);
    }
}

fn send_one(dev: &mut dyn PacketDevice, pkt: &[u8], stats: &mut DriverStats) {
    match dev.send(pkt) {
        Ok(_) => stats.tx_packets += 1,
        Err(e) => {
            // a full device queue drops the packet like a congested link; TCP recovers
            stats.tx_errors += 1;
            tracing::debug!("{}: write failed: {e}", dev.name());
        }
    }
}
