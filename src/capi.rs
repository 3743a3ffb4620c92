//! The C ABI of draft-hesmans-mptcp-socket over mptun (`include/mptun.h`, `docs/CAPI.md`).
//!
//! BSD-socket-like calls (`mptun_socket`, `mptun_connect`, `mptun_send`, ...) over mptun
//! descriptors (small integers of a process-wide table, unrelated to kernel descriptors),
//! plus the draft's subflow operations through `mptun_getsockopt` / `mptun_setsockopt` at
//! level `IPPROTO_TCP` with the draft's option numbers and struct layouts.
//!
//! Conventions: every entry point returns -1 (or NULL-equivalent) and sets `errno` on
//! failure, never panics across the boundary (each body runs under `catch_unwind`; a panic
//! becomes -1/EIO), validates lengths before touching a buffer, and zeroes every output
//! buffer before filling it. Pointer arguments must point to memory valid for the length
//! given (as with the real socket calls); NULL is reported as EFAULT.
//!
//! This is the only module of the library outside `src/io/` with `unsafe`: raw pointers from
//! C are turned into slices at the boundary, and all parsing happens on safe slices.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

use crate::api::{to_io, CloseHow, MptcpListener, MptcpStream, StackHandle, SubflowApiError};
use crate::api::{SubflowInfo, SubflowOpt, SubflowOptName};
use crate::crypto::KeyGen;
use crate::io::driver::{Port, Runtime, RuntimeOptions};
use crate::io::impair::Impairment;
use crate::mptcp::{ConnConfig, JoinState, Mode};
use crate::stack::{ConnId, Stack, StackConfig, StackError};
use crate::time::Instant;
use core::mem::{offset_of, size_of};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use libc::{c_char, c_int, c_uint, c_void, socklen_t, ssize_t};
use std::collections::VecDeque;
use std::ffi::CStr;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

// ----- the draft's constants ---------------------------------------------------------------

pub const IPPROTO_MPTCP: c_int = 262;
pub const SOL_MPTCP: c_int = 284;
pub const MPTCP_GET_SUB_IDS: c_int = 66;
pub const MPTCP_CLOSE_SUB_ID: c_int = 67;
pub const MPTCP_GET_SUB_TUPLE: c_int = 68;
pub const MPTCP_OPEN_SUB_TUPLE: c_int = 69;
pub const MPTCP_SUB_GETSOCKOPT: c_int = 71;
pub const MPTCP_SUB_SETSOCKOPT: c_int = 72;
/// mptun's per-subflow backup priority option (level `SOL_MPTCP`, an `int` 0/1), usable
/// through MPTCP_SUB_GETSOCKOPT / MPTCP_SUB_SETSOCKOPT. Setting it sends MP_PRIO.
pub const MPTUN_SUB_BACKUP: c_int = 100;

/// Linux's `MPTCP_INFO` (getsockopt level `SOL_MPTCP`): the connection's `struct
/// mptcp_info`, in Linux's layout (`MPTCP_INFO_LEN` bytes).
pub const MPTCP_INFO: c_int = 1;
/// `mptcpi_flags`: the connection fell back to TCP.
pub const MPTCP_INFO_FLAG_FALLBACK: u32 = 1;
/// `mptcpi_flags`: the peer's key is known.
pub const MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED: u32 = 2;
/// Size of Linux's `struct mptcp_info` (6.x uapi).
pub const MPTCP_INFO_LEN: usize = 96;

/// mptun's connection events (level `SOL_MPTCP`, getsockopt): drains queued events into an
/// array of `struct mptun_event`; `*optlen` becomes the bytes written (0: none queued).
pub const MPTUN_GET_EVENTS: c_int = 101;
/// mptun's per-connection limits (level `SOL_MPTCP`, get and set; `struct mptun_limits`:
/// `uint32_t subflows, add_addr_accepted, announced`, Linux's `ip mptcp limits` meaning).
/// Set before connect/listen it applies to the connection(s) made; set on a connected
/// socket it changes that connection's limits at once.
pub const MPTUN_LIMITS: c_int = 102;
/// Level SOL_MPTCP inside MPTCP_SUB_GETSOCKOPT: one subflow's statistics in mptun's own
/// layout (`struct mptun_tcp_info`); TCP_INFO gives Linux's `struct tcp_info`.
pub const MPTUN_TCP_INFO: c_int = 103;
/// Bytes of Linux's `struct tcp_info` mptun fills (up to `tcpi_rcv_wnd`, Linux 5.4+; a
/// shorter buffer gets the first bytes, as Linux copies `min(optlen, sizeof)`).
pub const LINUX_TCP_INFO_LEN: usize = 236;
/// Size of `struct mptun_limits`.
pub const MPTUN_LIMITS_LEN: usize = 12;
/// Size of `struct mptun_event`.
pub const MPTUN_EVENT_LEN: usize = 48;
pub const MPTUN_EVENT_ESTABLISHED: u16 = 1;
pub const MPTUN_EVENT_FALLBACK: u16 = 2;
pub const MPTUN_EVENT_SUB_ESTABLISHED: u16 = 3;
pub const MPTUN_EVENT_SUB_CLOSED: u16 = 4;
pub const MPTUN_EVENT_PEER_CLOSED: u16 = 5;
pub const MPTUN_EVENT_CLOSED: u16 = 6;
pub const MPTUN_EVENT_ADDR_ANNOUNCED: u16 = 7;
pub const MPTUN_EVENT_ADDR_REMOVED: u16 = 8;
pub const MPTUN_EVENT_SUB_PRIORITY: u16 = 9;

/// One event as the bytes of `struct mptun_event` (see `include/mptun.h`).
pub fn event_bytes(ev: &crate::mptcp::ConnEvent) -> [u8; MPTUN_EVENT_LEN] {
    use crate::mptcp::ConnEvent as E;
    use crate::tcp::CloseReason;
    let mut b = [0u8; MPTUN_EVENT_LEN];
    let (ty, id, reason, addr_id, backup, error, addr) = match *ev {
        E::Established => (MPTUN_EVENT_ESTABLISHED, 0, 0, 0, 0, 0, None),
        E::Fallback => (MPTUN_EVENT_FALLBACK, 0, 0, 0, 0, 0, None),
        E::SubflowEstablished { id } => (MPTUN_EVENT_SUB_ESTABLISHED, id, 0, 0, 0, 0, None),
        E::SubflowClosed { id, reason } => {
            let r = match reason {
                CloseReason::Normal => 0,
                CloseReason::Reset => 1,
                CloseReason::Timeout => 2,
                CloseReason::Aborted => 3,
            };
            (MPTUN_EVENT_SUB_CLOSED, id, r, 0, 0, 0, None)
        }
        E::PeerClosed => (MPTUN_EVENT_PEER_CLOSED, 0, 0, 0, 0, 0, None),
        E::Closed { error } => {
            let e = error.map_or(0, |e| io_errno(&to_io(StackError::Closed(Some(e)))));
            (
                MPTUN_EVENT_CLOSED,
                0,
                0,
                0,
                0,
                u16::try_from(e).unwrap_or(0),
                None,
            )
        }
        E::AddressAnnounced { addr_id, addr } => {
            (MPTUN_EVENT_ADDR_ANNOUNCED, 0, 0, addr_id, 0, 0, Some(addr))
        }
        E::AddressRemoved { addr_id } => (MPTUN_EVENT_ADDR_REMOVED, 0, 0, addr_id, 0, 0, None),
        E::SubflowPriority { id, backup } => (
            MPTUN_EVENT_SUB_PRIORITY,
            id,
            0,
            0,
            u8::from(backup),
            0,
            None,
        ),
    };
    b[0..2].copy_from_slice(&ty.to_ne_bytes());
    b[2..4].copy_from_slice(&(reason as u16).to_ne_bytes());
    b[4..8].copy_from_slice(&id.to_ne_bytes());
    b[8] = addr_id;
    b[9] = backup;
    b[10..12].copy_from_slice(&error.to_ne_bytes());
    if let Some(a) = addr {
        write_sockaddr(&a, &mut b[16..44]);
    }
    b
}

/// MPTUN_GET_EVENTS: as many queued events as fit in `buf` (whole events only).
fn get_events(s: &MptcpStream, buf: &mut [u8], out_len: &mut usize) -> Result<(), c_int> {
    buf.fill(0);
    if buf.len() < MPTUN_EVENT_LEN {
        *out_len = MPTUN_EVENT_LEN;
        return Err(libc::EINVAL);
    }
    let mut n = 0;
    for slot in buf.chunks_exact_mut(MPTUN_EVENT_LEN) {
        match s.poll_event() {
            Some(ev) => {
                slot.copy_from_slice(&event_bytes(&ev));
                n += 1;
            }
            None => break,
        }
    }
    *out_len = n * MPTUN_EVENT_LEN;
    Ok(())
}

/// Linux's `struct mptcp_info` bytes for `i`. Fields mptun does not track (ADD_ADDR
/// counts and limits, local address counts, the `last_*` times) are 0;
/// `mptcpi_retransmits` is the subflows' retransmitted segments summed (Linux counts
/// data-level retransmission timeouts), `mptcpi_bytes_retrans` the reinjected bytes.
pub fn mptcp_info_bytes(i: &crate::mptcp::ConnInfo) -> [u8; MPTCP_INFO_LEN] {
    let mut b = [0u8; MPTCP_INFO_LEN];
    let u8c = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
    // mptcpi_subflows counts the subflows besides the initial one, as Linux's does
    b[0] = u8c(i.subflows.saturating_sub(1));
    let mut flags = 0;
    if i.fallback {
        flags |= MPTCP_INFO_FLAG_FALLBACK;
    }
    if i.remote_token != 0 {
        flags |= MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED;
    }
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&i.local_token.to_ne_bytes());
    b[16..24].copy_from_slice(&i.write_seq.to_ne_bytes());
    b[24..32].copy_from_slice(&i.snd_una.to_ne_bytes());
    b[32..40].copy_from_slice(&i.rcv_nxt.to_ne_bytes());
    b[42] = u8::from(i.checksum);
    b[44..48].copy_from_slice(
        &u32::try_from(i.retransmits)
            .unwrap_or(u32::MAX)
            .to_ne_bytes(),
    );
    b[48..56].copy_from_slice(&i.reinjected.to_ne_bytes());
    b[56..64].copy_from_slice(&i.bytes_sent.to_ne_bytes());
    b[64..72].copy_from_slice(&i.bytes_received.to_ne_bytes());
    b[72..80].copy_from_slice(&i.bytes_acked.to_ne_bytes());
    b[80] = u8c(i.subflows);
    b
}
/// `how` of `mptcp_close_sub_id`: reset the subflow now (MP_TCPRST) instead of a FIN.
pub const MPTUN_SHUT_ABORT: c_int = 16;

/// Status flag bits of `mptcp_sub_status::flags`.
pub const MPTCP_SUB_SLAVE_SK: u16 = 1 << 0;
pub const MPTCP_SUB_FULLY_ESTABLISHED: u16 = 1 << 1;
pub const MPTCP_SUB_ATTACHED: u16 = 1 << 2;
pub const MPTCP_SUB_LOW_PRIO: u16 = 1 << 3;
pub const MPTCP_SUB_PRE_ESTABLISHED: u16 = 1 << 4;

/// How long a blocking `mptun_connect` waits for the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `mptun_fini` waits for closed connections to finish their closing handshake.
const LINGER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most descriptors open at once.
const MAX_FDS: usize = 1024;

// ----- the draft's structs (LP64), mirrored and checked ----------------------------------

/// One subflow in `mptcp_sub_ids`: the id, a pad byte, a flag word (`MPTCP_SUB_*` bits).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mptcp_sub_status {
    pub id: u8,
    pub pad: u8,
    pub flags: u16,
}

/// MPTCP_GET_SUB_IDS output: a count, a pad byte, then `sub_count` entries from offset 2.
#[repr(C)]
pub struct mptcp_sub_ids {
    pub sub_count: u8,
    pub pad: u8,
    pub sub_status: [mptcp_sub_status; 0],
}

/// MPTCP_GET_SUB_TUPLE / MPTCP_OPEN_SUB_TUPLE: id, prio (1 = backup), then the local and the
/// remote `sockaddr_in` (34 bytes in all) or `sockaddr_in6` (58 bytes) from offset 2.
#[repr(C)]
pub struct mptcp_sub_tuple {
    pub id: u8,
    pub prio: u8,
    pub addrs: [u8; 0],
}

/// MPTCP_CLOSE_SUB_ID input.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mptcp_close_sub_id {
    pub id: u8,
    pub how: c_int,
}

/// MPTCP_SUB_GETSOCKOPT argument.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mptcp_sub_getsockopt {
    pub id: u8,
    pub level: c_int,
    pub optname: c_int,
    pub optval: *mut c_char,
    pub optlen: *mut c_uint,
}

/// MPTCP_SUB_SETSOCKOPT argument.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mptcp_sub_setsockopt {
    pub id: u8,
    pub level: c_int,
    pub optname: c_int,
    pub optval: *mut c_char,
    pub optlen: c_uint,
}

/// Per-subflow statistics returned for TCP_INFO through MPTCP_SUB_GETSOCKOPT (mptun's own
/// layout, documented in `include/mptun.h`; times in microseconds, sizes in bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mptun_tcp_info {
    pub tcpi_state: u8,
    pub tcpi_backup: u8,
    pub tcpi_rtt_valid: u8,
    pub tcpi_pad: u8,
    pub tcpi_snd_mss: u32,
    pub tcpi_rcv_mss: u32,
    pub tcpi_rto: u32,
    pub tcpi_rtt: u32,
    pub tcpi_rttvar: u32,
    pub tcpi_snd_cwnd: u32,
    pub tcpi_snd_ssthresh: u32,
    pub tcpi_bytes_in_flight: u32,
    pub tcpi_pad2: u32,
    pub tcpi_bytes_sent: u64,
    pub tcpi_bytes_acked: u64,
    pub tcpi_bytes_received: u64,
    pub tcpi_data_sent: u64,
    pub tcpi_data_received: u64,
    pub tcpi_total_retrans: u64,
}

pub const SOCKADDR_IN_LEN: usize = 16;
pub const SOCKADDR_IN6_LEN: usize = 28;
/// `sizeof(struct mptcp_sub_tuple)` plus two `sockaddr_in`.
pub const SUB_TUPLE_LEN_IN: usize = 2 + 2 * SOCKADDR_IN_LEN;
/// `sizeof(struct mptcp_sub_tuple)` plus two `sockaddr_in6`.
pub const SUB_TUPLE_LEN_IN6: usize = 2 + 2 * SOCKADDR_IN6_LEN;

const _: () = {
    assert!(size_of::<mptcp_sub_status>() == 4);
    assert!(offset_of!(mptcp_sub_status, flags) == 2);
    assert!(size_of::<mptcp_sub_ids>() == 2);
    assert!(offset_of!(mptcp_sub_ids, sub_status) == 2);
    assert!(size_of::<mptcp_sub_tuple>() == 2);
    assert!(offset_of!(mptcp_sub_tuple, addrs) == 2);
    assert!(size_of::<mptcp_close_sub_id>() == 8);
    assert!(offset_of!(mptcp_close_sub_id, how) == 4);
    assert!(size_of::<mptcp_sub_getsockopt>() == 32);
    assert!(offset_of!(mptcp_sub_getsockopt, level) == 4);
    assert!(offset_of!(mptcp_sub_getsockopt, optname) == 8);
    assert!(offset_of!(mptcp_sub_getsockopt, optval) == 16);
    assert!(offset_of!(mptcp_sub_getsockopt, optlen) == 24);
    assert!(size_of::<mptcp_sub_setsockopt>() == 32);
    assert!(offset_of!(mptcp_sub_setsockopt, optval) == 16);
    assert!(offset_of!(mptcp_sub_setsockopt, optlen) == 24);
    assert!(size_of::<mptun_tcp_info>() == 88);
    assert!(offset_of!(mptun_tcp_info, tcpi_snd_mss) == 4);
    assert!(offset_of!(mptun_tcp_info, tcpi_bytes_sent) == 40);
    assert!(offset_of!(mptun_tcp_info, tcpi_total_retrans) == 80);
    assert!(size_of::<libc::sockaddr_in>() == SOCKADDR_IN_LEN);
    assert!(size_of::<libc::sockaddr_in6>() == SOCKADDR_IN6_LEN);
};

// ----- errno and the panic guard ------------------------------------------------------------

fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() = e }
}

/// Runs an entry point's body: `Err(errno)` and panics become `fail` with errno set.
fn guard<T: Copy>(fail: T, f: impl FnOnce() -> Result<T, c_int>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_errno(e);
            fail
        }
        Err(_) => {
            set_errno(libc::EIO);
            fail
        }
    }
}

/// The errno of an I/O error from the Rust API.
pub fn io_errno(e: &io::Error) -> c_int {
    if let Some(code) = e.raw_os_error() {
        return code;
    }
    match e.kind() {
        io::ErrorKind::NotConnected => libc::ENOTCONN,
        io::ErrorKind::AddrNotAvailable => libc::EADDRNOTAVAIL,
        io::ErrorKind::AddrInUse => libc::EADDRINUSE,
        io::ErrorKind::WouldBlock => libc::EAGAIN,
        io::ErrorKind::ConnectionRefused => libc::ECONNREFUSED,
        io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        io::ErrorKind::ConnectionReset => libc::ECONNRESET,
        io::ErrorKind::ConnectionAborted => libc::ECONNABORTED,
        io::ErrorKind::BrokenPipe => libc::EPIPE,
        io::ErrorKind::InvalidInput => libc::EINVAL,
        io::ErrorKind::Interrupted => libc::EINTR,
        io::ErrorKind::NotFound => libc::ENOENT,
        io::ErrorKind::PermissionDenied => libc::EPERM,
        _ => libc::EIO,
    }
}

fn sub_errno(e: SubflowApiError) -> c_int {
    e.errno()
}

// ----- global state -------------------------------------------------------------------------

/// A stack the socket calls run on: the threaded runtime of `mptun_init`, or a manually
/// driven instance (`mptun_instance_new`). Every descriptor belongs to one.
struct Ctx {
    handle: StackHandle,
    /// Defaults of the connections made (limits, path manager...).
    conn: ConnConfig,
    addrs: Vec<IpAddr>,
    /// Streams closed by the application that may still be finishing their closing
    /// handshake.
    linger: Mutex<Vec<MptcpStream>>,
}

impl Ctx {
    fn new(handle: StackHandle, conn: ConnConfig, addrs: Vec<IpAddr>) -> Arc<Ctx> {
        Arc::new(Ctx {
            handle,
            conn,
            addrs,
            linger: Mutex::new(Vec::new()),
        })
    }
}

struct Global {
    rt: Runtime,
    ctx: Arc<Ctx>,
}

static GLOBAL: Mutex<Option<Global>> = Mutex::new(None);
static FDS: Mutex<Vec<Option<Arc<Sock>>>> = Mutex::new(Vec::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic (caught at the boundary) while it was held; the
    // tables stay structurally valid.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The threaded runtime's context (ENETDOWN before `mptun_init` / after `mptun_fini`).
fn runtime() -> Result<Arc<Ctx>, c_int> {
    let g = lock(&GLOBAL);
    Ok(g.as_ref().ok_or(libc::ENETDOWN)?.ctx.clone())
}

struct Sock {
    /// The stack this descriptor lives on.
    ctx: Arc<Ctx>,
    domain: c_int,
    mptcp: bool,
    /// `SOCK_NONBLOCK` / `O_NONBLOCK` (`mptun_fcntl`).
    nonblocking: AtomicBool,
    /// SO_REUSEADDR as set (mptun's listen never conflicts with lingering connections, so
    /// it changes nothing; kept so that programs written for Linux run and read it back).
    reuseaddr: AtomicBool,
    /// The application shut the sending direction down (send fails with EPIPE).
    wr_shut: std::sync::atomic::AtomicBool,
    /// Limits set with MPTUN_LIMITS before connect/listen (then the runtime's default).
    limits: Mutex<Option<crate::pm::Limits>>,
    /// Connection-level TCP_NODELAY / TCP_USER_TIMEOUT set before connect/listen.
    tcp_opts: Mutex<TcpOpts>,
    state: Mutex<SockState>,
}

/// Connection-level TCP options set on a socket before it connects or listens.
#[derive(Clone, Copy, Debug, Default)]
struct TcpOpts {
    nodelay: Option<bool>,
    user_timeout: Option<Option<Duration>>,
    /// SO_SNDBUF / SO_RCVBUF set before connect or listen: the connection-level buffers.
    sndbuf: Option<usize>,
    rcvbuf: Option<usize>,
}

enum SockState {
    Fresh { bound: Option<SocketAddr> },
    Listening(Arc<Listen>),
    Connected(Arc<MptcpStream>),
}

struct Listen {
    listener: MptcpListener,
    /// The address bound before `listen` (getsockname).
    local: SocketAddr,
    /// Connections taken from the stack's queue by `mptun_poll` and not yet accepted.
    ready: Mutex<VecDeque<ConnId>>,
}

impl Drop for Listen {
    fn drop(&mut self) {
        let ids: Vec<ConnId> = lock(&self.ready).drain(..).collect();
        let h = self.listener.handle.clone();
        h.with_stack(|s| {
            for id in ids {
                let _ = s.abort(id);
                let _ = s.close(id);
            }
        });
        h.wake_driver();
    }
}

fn get_sock(fd: c_int) -> Result<Arc<Sock>, c_int> {
    let t = lock(&FDS);
    usize::try_from(fd)
        .ok()
        .and_then(|i| t.get(i))
        .and_then(|s| s.clone())
        .ok_or(libc::EBADF)
}

/// Removes every descriptor of `ctx` from the table and returns their sockets.
fn take_socks(ctx: &Arc<Ctx>) -> Vec<Arc<Sock>> {
    let mut t = lock(&FDS);
    let mut out = Vec::new();
    for e in t.iter_mut() {
        if e.as_ref().is_some_and(|s| Arc::ptr_eq(&s.ctx, ctx)) {
            out.extend(e.take());
        }
    }
    out
}

fn insert_sock(s: Sock) -> Result<c_int, c_int> {
    let mut t = lock(&FDS);
    let s = Some(Arc::new(s));
    if let Some(i) = t.iter().position(|e| e.is_none()) {
        t[i] = s;
        return Ok(i as c_int);
    }
    if t.len() >= MAX_FDS {
        return Err(libc::EMFILE);
    }
    t.push(s);
    Ok((t.len() - 1) as c_int)
}

fn stream_of(sock: &Sock) -> Result<Arc<MptcpStream>, c_int> {
    match &*lock(&sock.state) {
        SockState::Connected(s) => Ok(s.clone()),
        _ => Err(libc::ENOTCONN),
    }
}

// ----- configuration --------------------------------------------------------------------------

/// A parsed `mptun_init` configuration.
#[derive(Debug, Default)]
pub struct InitConfig {
    /// TUN device name, our address on it, impairment of packets sent out of it.
    pub tuns: Vec<(String, IpAddr, Option<Impairment>)>,
    pub path_manager: Option<String>,
    pub scheduler: Option<String>,
    pub congestion: Option<&'static str>,
    pub checksum: bool,
    /// Default limits of every connection (`subflows=`, `add_addr_accepted=`, `announced=`).
    pub limits: crate::pm::Limits,
    /// ADD_ADDR retransmission timeout (`add_addr_timeout=MS`).
    pub add_addr_timeout: Option<Duration>,
    /// Seed of the stack's keys, ISNs and ports (`seed=N`; default: from the OS's entropy).
    pub seed: Option<u64>,
    /// Link MTU of every address (`mtu=N`, 576..=65535; a manual instance only: the
    /// threaded runtime takes each device's MTU).
    pub mtu: Option<u16>,
    /// Our TCP window scale (`wscale=N`, 0..=14).
    pub wscale: Option<u8>,
    /// TCP timestamps (`timestamps=0|1`) and SACK (`sack=0|1`) offered.
    pub timestamps: Option<bool>,
    pub sack: Option<bool>,
    /// Addresses announced with ADD_ADDR from the start (`signal=ADDR`, repeatable; each
    /// must be one of the configured addresses): Linux's `ip mptcp endpoint add ADDR signal`.
    pub signal: Vec<IpAddr>,
}

/// Parses `"tun0=198.18.1.2,tun1=198.18.2.2,pm=manual,sched=minrtt,cc=cubic,checksum=1,
/// impair:tun1=delay=40ms+rate=10mbit,subflows=2,add_addr_accepted=0,announced=1,
/// add_addr_timeout=500"` (limits: every connection's default, Linux's meaning;
/// `add_addr_timeout` in milliseconds).
pub fn parse_config(s: &str) -> Result<InitConfig, String> {
    let mut c = InitConfig::default();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (k, v) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?}: expected KEY=VALUE"))?;
        let (k, v) = (k.trim(), v.trim());
        match k {
            "pm" => {
                crate::pm::by_name(v)?;
                c.path_manager = Some(v.to_string());
            }
            "sched" => {
                crate::sched::by_name(v).ok_or_else(|| format!("unknown scheduler {v:?}"))?;
                c.scheduler = Some(v.to_string());
            }
            "cc" => {
                c.congestion = Some(
                    crate::cc::canonical(v)
                        .ok_or_else(|| format!("unknown congestion control {v:?}"))?,
                )
            }
            "checksum" => c.checksum = v == "1" || v == "true",
            "subflows" | "add_addr_accepted" | "announced" => {
                let n: u32 = v.parse().map_err(|_| format!("{item}: not a number"))?;
                match k {
                    "subflows" => c.limits.max_subflows = n,
                    "add_addr_accepted" => c.limits.max_add_addr_accepted = n,
                    _ => c.limits.max_announced = n,
                }
            }
            "seed" => c.seed = Some(v.parse().map_err(|_| format!("{item}: not a number"))?),
            "wscale" => {
                c.wscale = Some(
                    v.parse()
                        .ok()
                        .filter(|w| *w <= 14)
                        .ok_or_else(|| format!("{item}: 0..=14 expected"))?,
                )
            }
            "timestamps" | "sack" => {
                let on = match v {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(format!("{item}: 0 or 1 expected")),
                };
                if k == "sack" {
                    c.sack = Some(on);
                } else {
                    c.timestamps = Some(on);
                }
            }
            "signal" => c
                .signal
                .push(v.parse().map_err(|_| format!("{item}: bad address"))?),
            "mtu" => {
                let m: u16 = v
                    .parse()
                    .ok()
                    .filter(|m| *m >= 576)
                    .ok_or_else(|| format!("{item}: an MTU of 576..=65535 expected"))?;
                c.mtu = Some(m);
            }
            "add_addr_timeout" => {
                let ms: u64 = v
                    .parse()
                    .map_err(|_| format!("{item}: milliseconds expected"))?;
                c.add_addr_timeout = Some(Duration::from_millis(ms.max(1)));
            }
            _ if k.starts_with("impair:") => {
                let dev = &k["impair:".len()..];
                let imp: Impairment = v
                    .replace('+', ",")
                    .parse()
                    .map_err(|e| format!("{item}: {e}"))?;
                let t = c
                    .tuns
                    .iter_mut()
                    .find(|t| t.0 == dev)
                    .ok_or_else(|| format!("{item}: no device {dev:?} before it"))?;
                t.2 = Some(imp);
            }
            _ => {
                if k.is_empty() || k.len() >= 16 || !k.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!("{k:?} is not a device name"));
                }
                let addr: IpAddr = v.parse().map_err(|_| format!("{item}: bad address"))?;
                if c.tuns.iter().any(|t| t.0 == k || t.1 == addr) {
                    return Err(format!("{item}: device or address given twice"));
                }
                c.tuns.push((k.to_string(), addr, None));
            }
        }
    }
    if c.tuns.is_empty() {
        return Err("no device given (e.g. tun0=198.18.1.2)".into());
    }
    if let Some(a) = c.signal.iter().find(|a| !c.tuns.iter().any(|t| t.1 == **a)) {
        return Err(format!("signal={a}: not one of the configured addresses"));
    }
    Ok(c)
}

fn conn_config(c: &InitConfig) -> ConnConfig {
    let mut cfg = ConnConfig {
        checksum: c.checksum,
        limits: c.limits,
        // the draft's model: the application decides which subflows exist
        path_manager: c.path_manager.clone().unwrap_or_else(|| "manual".into()),
        ..ConnConfig::default()
    };
    if let Some(s) = &c.scheduler {
        cfg.scheduler = s.clone();
    }
    if let Some(cc) = c.congestion {
        cfg.tcp.congestion = cc;
    }
    if let Some(t) = c.add_addr_timeout {
        cfg.add_addr_timeout = t;
    }
    if let Some(w) = c.wscale {
        cfg.tcp.window_scale = w;
    }
    if let Some(t) = c.timestamps {
        cfg.tcp.timestamps = t;
    }
    if let Some(sk) = c.sack {
        cfg.tcp.sack = sk;
    }
    cfg.local_addrs = c
        .tuns
        .iter()
        .map(|t| crate::pm::LocalAddr {
            addr: t.1,
            backup: false,
            announce: c.signal.contains(&t.1),
            port: 0,
            subflow: true,
            fullmesh: false,
        })
        .collect();
    cfg
}

/// Starts the global runtime over `ports` (Rust callers and tests: e.g. in-process
/// `SeqPacketDevice` links instead of TUN devices). `Err(EALREADY)` if one runs.
pub fn init_with_ports(ports: Vec<Port>, conn: ConnConfig) -> Result<(), c_int> {
    init_with_ports_seeded(ports, conn, None)
}

fn keygen(seed: Option<u64>) -> KeyGen {
    seed.map_or_else(KeyGen::from_entropy, KeyGen::from_seed)
}

fn init_with_ports_seeded(
    ports: Vec<Port>,
    conn: ConnConfig,
    seed: Option<u64>,
) -> Result<(), c_int> {
    let mut g = lock(&GLOBAL);
    if g.is_some() {
        return Err(libc::EALREADY);
    }
    let addrs: Vec<IpAddr> = ports.iter().flat_map(|p| p.addrs.clone()).collect();
    let stack = Stack::new(
        StackConfig {
            addrs: addrs.clone(),
            conn: conn.clone(),
            ..StackConfig::default()
        },
        keygen(seed),
    );
    let opts = RuntimeOptions {
        seed: keygen(seed.map(|s| s ^ 0x5eed)).key(),
        pcap: None,
    };
    let rt = Runtime::start_with(stack, ports, opts).map_err(|e| io_errno(&e))?;
    let ctx = Ctx::new(rt.handle().clone(), conn, addrs);
    *g = Some(Global { rt, ctx });
    Ok(())
}

/// Messages go to stderr when `RUST_LOG` asks for them: with the `env-logger` feature (on
/// by default) the C entry points install `env_logger`; without it the host program may
/// install any `log` logger itself.
fn init_logging() {
    #[cfg(feature = "env-logger")]
    let _ = env_logger::try_init();
}

fn init(config: &str) -> Result<(), c_int> {
    init_logging();
    let c = parse_config(config).map_err(|e| {
        log::warn!("mptun_init: {e}");
        libc::EINVAL
    })?;
    if c.mtu.is_some() {
        log::warn!("mptun_init: mtu= is for manual instances (the devices' MTUs are used)");
        return Err(libc::EINVAL);
    }
    if lock(&GLOBAL).is_some() {
        return Err(libc::EALREADY);
    }
    let mut ports = Vec::new();
    for (name, addr, imp) in &c.tuns {
        let tun = crate::io::tun::Tun::open(name).map_err(|e| {
            log::warn!("mptun_init: cannot open TUN device {name}: {e}");
            io_errno(&e)
        })?;
        ports.push(Port {
            device: Box::new(tun),
            addrs: vec![*addr],
            egress: imp.clone(),
            ingress: None,
        });
    }
    init_with_ports_seeded(ports, conn_config(&c), c.seed)
}

/// `int mptun_init(const char *config)`: opens the TUN devices and starts the runtime.
#[no_mangle]
pub unsafe extern "C" fn mptun_init(config: *const c_char) -> c_int {
    guard(-1, || {
        if config.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: the caller passes a NUL-terminated string (checked non-NULL above).
        let s = unsafe { CStr::from_ptr(config) };
        let s = s.to_str().map_err(|_| libc::EINVAL)?;
        init(s).map(|()| 0)
    })
}

/// `int mptun_fini(void)`: closes every descriptor, waits (at most 10 s) for closed
/// connections to finish their closing handshake, stops the runtime.
#[no_mangle]
pub extern "C" fn mptun_fini() -> c_int {
    guard(-1, || {
        let ctx = runtime()?;
        for s in take_socks(&ctx) {
            close_sock(&s);
        }
        let lingering: Vec<MptcpStream> = lock(&ctx.linger).drain(..).collect();
        {
            let h = &ctx.handle;
            let deadline = h.now() + LINGER_TIMEOUT;
            for s in &lingering {
                let left = deadline.saturating_duration_since(h.now());
                if left.is_zero() {
                    break;
                }
                let _ = s.wait_all_acked(Some(left));
                let left = deadline.saturating_duration_since(h.now());
                if !left.is_zero() {
                    let _ = s.wait_closed(Some(left));
                }
            }
        }
        drop(lingering);
        let g = lock(&GLOBAL).take();
        match g {
            Some(g) => g.rt.stop().map(|()| 0).map_err(|e| io_errno(&e)),
            None => Err(libc::ENETDOWN),
        }
    })
}

// ----- manually driven instances (sans-IO in C) ----------------------------------------------

/// A manually driven stack (`mptun_instance_new`): no thread, no device, no clock of its
/// own. Opaque to C.
pub struct mptun_instance {
    driver: crate::api::manual::ManualDriver,
    ctx: Arc<Ctx>,
}

/// The wake-up callback's C function and argument (the argument is the caller's to keep
/// valid; it is only passed back).
#[derive(Clone, Copy)]
struct CWakeup {
    f: unsafe extern "C" fn(*mut c_void),
    arg: usize,
}

/// Creates an instance from a configuration in `mptun_init`'s syntax, where each `NAME=ADDR`
/// only names one of its addresses (no device is opened), plus `seed=N` and `mtu=N`;
/// `impair:` items are refused (the embedder owns the links).
pub fn instance_new(config: &str) -> Result<Box<mptun_instance>, c_int> {
    let c = parse_config(config).map_err(|e| {
        log::warn!("mptun_instance_new: {e}");
        libc::EINVAL
    })?;
    if c.tuns.iter().any(|t| t.2.is_some()) {
        log::warn!("mptun_instance_new: impair: is for TUN devices; the embedder owns the links");
        return Err(libc::EINVAL);
    }
    let conn = conn_config(&c);
    let addrs: Vec<IpAddr> = c.tuns.iter().map(|t| t.1).collect();
    let mut stack = Stack::new(
        StackConfig {
            addrs: addrs.clone(),
            conn: conn.clone(),
            ..StackConfig::default()
        },
        keygen(c.seed),
    );
    if let Some(m) = c.mtu {
        for a in &addrs {
            stack.set_mtu(*a, m);
        }
    }
    let driver = crate::api::manual::ManualDriver::new(stack);
    let ctx = Ctx::new(driver.handle().clone(), conn, addrs);
    Ok(Box::new(mptun_instance { driver, ctx }))
}

unsafe fn instance_ref<'a>(inst: *const mptun_instance) -> Result<&'a mptun_instance, c_int> {
    // SAFETY: the caller passes NULL or a pointer from mptun_instance_new not yet freed.
    unsafe { inst.as_ref() }.ok_or(libc::EFAULT)
}

impl mptun_instance {
    /// The driver (for Rust callers: streams and listeners on `driver().handle()`).
    pub fn driver(&self) -> &crate::api::manual::ManualDriver {
        &self.driver
    }

    /// A socket on this instance (`mptun_instance_socket`).
    pub fn socket(&self, domain: c_int, ty: c_int, protocol: c_int) -> Result<c_int, c_int> {
        new_socket(self.ctx.clone(), domain, ty, protocol)
    }
}

impl Drop for mptun_instance {
    fn drop(&mut self) {
        for s in take_socks(&self.ctx) {
            close_sock(&s);
        }
        lock(&self.ctx.linger).clear();
        self.driver.set_wakeup(None);
        // threads still blocked on one of its descriptors fail instead of waiting for ever
        self.driver.stop("instance freed");
    }
}

/// `mptun_instance *mptun_instance_new(const char *config)`: NULL and errno (EINVAL,
/// EFAULT) on failure.
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_new(config: *const c_char) -> *mut mptun_instance {
    guard(core::ptr::null_mut(), || {
        init_logging();
        if config.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: the caller passes a NUL-terminated string (checked non-NULL above).
        let s = unsafe { CStr::from_ptr(config) };
        let s = s.to_str().map_err(|_| libc::EINVAL)?;
        instance_new(s).map(Box::into_raw)
    })
}

/// `int mptun_instance_free(mptun_instance *inst)`: closes its descriptors (connections
/// are aborted: nothing drives them any more), wakes blocked calls with an error (EPIPE),
/// frees it.
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_free(inst: *mut mptun_instance) -> c_int {
    guard(-1, || {
        if inst.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: a pointer from mptun_instance_new, freed once (caller contract).
        let b = unsafe { Box::from_raw(inst) };
        let h = b.ctx.handle.clone();
        drop(b);
        // abort what is left: nobody will drive its closing handshake
        h.with_stack(|s| {
            let ids: Vec<ConnId> = s.connections().collect();
            for id in ids {
                let _ = s.abort(id);
            }
        });
        Ok(0)
    })
}

/// `int mptun_instance_input(mptun_instance *, const void *packet, size_t len, uint64_t
/// now_us)`: one IP packet received at `now_us` (the instance's clock moves there first).
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_input(
    inst: *const mptun_instance,
    packet: *const c_void,
    len: usize,
    now_us: u64,
) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded caller contract.
        let i = unsafe { instance_ref(inst) }?;
        if packet.is_null() {
            return Err(libc::EFAULT);
        }
        if len == 0 || len > crate::api::manual::MAX_PACKET {
            return Err(libc::EINVAL);
        }
        // SAFETY: the caller passes `len` readable bytes at `packet` (non-NULL).
        let p = unsafe { core::slice::from_raw_parts(packet as *const u8, len) };
        i.driver.input(Instant::from_micros(now_us), p);
        Ok(0)
    })
}

/// `ssize_t mptun_instance_output(mptun_instance *, void *buf, size_t len)`: the next packet
/// the instance sends (its length), 0 when there is none; EMSGSIZE if `len` is too short
/// (the packet is kept for the next call).
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_output(
    inst: *const mptun_instance,
    buf: *mut c_void,
    len: usize,
) -> ssize_t {
    guard(-1, || {
        // SAFETY: forwarded caller contract.
        let i = unsafe { instance_ref(inst) }?;
        if buf.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: the caller passes `len` writable bytes at `buf` (non-NULL).
        let out = unsafe {
            core::slice::from_raw_parts_mut(buf as *mut u8, len.min(isize::MAX as usize))
        };
        match i.driver.output(out) {
            Ok(Some(n)) => Ok(n as ssize_t),
            Ok(None) => Ok(0),
            Err(_) => Err(libc::EMSGSIZE),
        }
    })
}

/// `int mptun_instance_timeout(mptun_instance *, uint64_t *deadline_us)`: 1 and the time
/// the next timer is due in `*deadline_us`, 0 if no timer is set.
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_timeout(
    inst: *const mptun_instance,
    deadline_us: *mut u64,
) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded caller contract.
        let i = unsafe { instance_ref(inst) }?;
        if deadline_us.is_null() {
            return Err(libc::EFAULT);
        }
        match i.driver.timeout() {
            Some(t) => {
                // SAFETY: non-NULL pointer to the caller's uint64_t.
                unsafe { *deadline_us = t.total_micros() };
                Ok(1)
            }
            None => Ok(0),
        }
    })
}

/// `int mptun_instance_advance(mptun_instance *, uint64_t now_us)`: moves the clock to
/// `now_us` (never backwards) and runs the timers due.
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_advance(inst: *const mptun_instance, now_us: u64) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded caller contract.
        let i = unsafe { instance_ref(inst) }?;
        i.driver.advance(Instant::from_micros(now_us));
        Ok(0)
    })
}

/// `uint64_t mptun_instance_now(const mptun_instance *)`: the instance's clock (0 for NULL).
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_now(inst: *const mptun_instance) -> u64 {
    // SAFETY: forwarded caller contract.
    guard(0, || {
        Ok(unsafe { instance_ref(inst) }?.driver.now().total_micros())
    })
}

/// `int mptun_instance_set_wakeup(mptun_instance *, void (*fn)(void *), void *arg)`:
/// `fn(arg)` is called (on the calling thread, no lock held) when a socket call queued
/// something for `mptun_instance_output`; NULL removes it. It must not call into mptun.
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_set_wakeup(
    inst: *const mptun_instance,
    f: Option<unsafe extern "C" fn(*mut c_void)>,
    arg: *mut c_void,
) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded caller contract.
        let i = unsafe { instance_ref(inst) }?;
        let w = f.map(|f| CWakeup {
            f,
            arg: arg as usize,
        });
        i.driver
            .set_wakeup(w.map(|w| -> crate::api::manual::WakeFn {
                Box::new(move || {
                    // SAFETY: the C caller registered `f` for `arg` and keeps both valid until
                    // it removes the callback or frees the instance.
                    unsafe { (w.f)(w.arg as *mut c_void) }
                })
            }));
        Ok(0)
    })
}

/// `int mptun_instance_socket(mptun_instance *, int domain, int type, int protocol)`: as
/// `mptun_socket`, on the instance. The other socket calls take the descriptor alone.
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_socket(
    inst: *const mptun_instance,
    domain: c_int,
    ty: c_int,
    protocol: c_int,
) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded caller contract.
        unsafe { instance_ref(inst) }?.socket(domain, ty, protocol)
    })
}

/// `int mptun_instance_endpoint_set(mptun_instance *, const char *addr, unsigned flags)`
/// and `mptun_instance_endpoint_del`: `mptun_endpoint_set` / `_del` on the instance.
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_endpoint_set(
    inst: *const mptun_instance,
    addr: *const c_char,
    flags: c_uint,
) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded caller contract.
        let i = unsafe { instance_ref(inst) }?;
        // SAFETY: forwarded caller contract.
        let addr = unsafe { c_addr(addr) }?;
        endpoint_set(&i.ctx, addr, flags)
    })
}

/// See [`mptun_instance_endpoint_set`].
#[no_mangle]
pub unsafe extern "C" fn mptun_instance_endpoint_del(
    inst: *const mptun_instance,
    addr: *const c_char,
) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded caller contract.
        let i = unsafe { instance_ref(inst) }?;
        // SAFETY: forwarded caller contract.
        let addr = unsafe { c_addr(addr) }?;
        endpoint_del(&i.ctx, addr)
    })
}

// ----- endpoints (Linux's `ip mptcp endpoint`) ----------------------------------------------------

/// `mptun_endpoint_set` flag: announce the address (ADD_ADDR), Linux's `signal`.
pub const MPTUN_ENDPOINT_SIGNAL: c_uint = 1;
/// `mptun_endpoint_set` flag: subflows from the address are backups (MP_PRIO), `backup`.
pub const MPTUN_ENDPOINT_BACKUP: c_uint = 2;
/// `mptun_endpoint_set` flag: the client opens a subflow from the address (Linux's
/// `subflow`; used by the `kernel` path manager, the `fullmesh` one meshes every address).
pub const MPTUN_ENDPOINT_SUBFLOW: c_uint = 4;
/// `mptun_endpoint_set` flag: with `subflow`, subflows to every address of the peer and
/// announcements joined from it (Linux's `fullmesh`; `kernel` path manager).
pub const MPTUN_ENDPOINT_FULLMESH: c_uint = 8;

unsafe fn c_addr(addr: *const c_char) -> Result<IpAddr, c_int> {
    if addr.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: the caller passes a NUL-terminated string (checked non-NULL above).
    let s = unsafe { CStr::from_ptr(addr) };
    s.to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(libc::EINVAL)
}

/// `int mptun_endpoint_set(const char *addr, unsigned flags)`: adds the endpoint `addr` (one
/// of `mptun_init`'s addresses, else EADDRNOTAVAIL) or changes its flags
/// (`MPTUN_ENDPOINT_SIGNAL | MPTUN_ENDPOINT_BACKUP | MPTUN_ENDPOINT_SUBFLOW |
/// MPTUN_ENDPOINT_FULLMESH`; other bits EINVAL), for every
/// connection and for later ones, as `ip mptcp endpoint add|change` does.
#[no_mangle]
pub unsafe extern "C" fn mptun_endpoint_set(addr: *const c_char, flags: c_uint) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded caller contract.
        let addr = unsafe { c_addr(addr) }?;
        endpoint_set(&*runtime()?, addr, flags)
    })
}

fn endpoint_set(ctx: &Ctx, addr: IpAddr, flags: c_uint) -> Result<c_int, c_int> {
    if flags
        & !(MPTUN_ENDPOINT_SIGNAL
            | MPTUN_ENDPOINT_BACKUP
            | MPTUN_ENDPOINT_SUBFLOW
            | MPTUN_ENDPOINT_FULLMESH)
        != 0
    {
        return Err(libc::EINVAL);
    }
    let h = &ctx.handle;
    let ep = crate::pm::LocalAddr {
        addr,
        backup: flags & MPTUN_ENDPOINT_BACKUP != 0,
        announce: flags & MPTUN_ENDPOINT_SIGNAL != 0,
        port: 0,
        subflow: flags & MPTUN_ENDPOINT_SUBFLOW != 0,
        fullmesh: flags & MPTUN_ENDPOINT_FULLMESH != 0,
    };
    let now = h.now();
    let r = h.with_stack(|s| s.set_endpoint(now, ep));
    h.wake_driver();
    r.map(|()| 0).map_err(|_| libc::EADDRNOTAVAIL)
}

fn endpoint_del(ctx: &Ctx, addr: IpAddr) -> Result<c_int, c_int> {
    let h = &ctx.handle;
    let now = h.now();
    let r = h.with_stack(|s| s.remove_endpoint(now, addr));
    h.wake_driver();
    r.map(|()| 0).map_err(|e| io_errno(&to_io(e)))
}

/// `int mptun_endpoint_del(const char *addr)`: removes the endpoint (REMOVE_ADDR where it
/// was announced, its subflows closed), as `ip mptcp endpoint delete` does.
#[no_mangle]
pub unsafe extern "C" fn mptun_endpoint_del(addr: *const c_char) -> c_int {
    guard(-1, || {
        // SAFETY: forwarded caller contract.
        let addr = unsafe { c_addr(addr) }?;
        endpoint_del(&*runtime()?, addr)
    })
}

// ----- sockets ----------------------------------------------------------------------------------

/// `int mptun_socket(int domain, int type, int protocol)`: `AF_INET`/`AF_INET6`,
/// `SOCK_STREAM` (optionally `| SOCK_NONBLOCK | SOCK_CLOEXEC`); protocol 0 or
/// `IPPROTO_MPTCP` for MPTCP, `IPPROTO_TCP` for plain TCP (no MP_CAPABLE).
#[no_mangle]
pub extern "C" fn mptun_socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    guard(-1, || new_socket(runtime()?, domain, ty, protocol))
}

fn new_socket(ctx: Arc<Ctx>, domain: c_int, ty: c_int, protocol: c_int) -> Result<c_int, c_int> {
    {
        if domain != libc::AF_INET && domain != libc::AF_INET6 {
            return Err(libc::EAFNOSUPPORT);
        }
        let base = ty & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC);
        if base != libc::SOCK_STREAM {
            return Err(libc::ESOCKTNOSUPPORT);
        }
        let mptcp = match protocol {
            0 | IPPROTO_MPTCP => true,
            libc::IPPROTO_TCP => false,
            _ => return Err(libc::EPROTONOSUPPORT),
        };
        insert_sock(Sock {
            ctx,
            domain,
            mptcp,
            nonblocking: (ty & libc::SOCK_NONBLOCK != 0).into(),
            reuseaddr: false.into(),
            wr_shut: false.into(),
            limits: Mutex::new(None),
            tcp_opts: Mutex::new(TcpOpts::default()),
            state: Mutex::new(SockState::Fresh { bound: None }),
        })
    }
}

fn family_of(domain: c_int) -> u16 {
    domain as u16
}

/// Parses a `sockaddr_in` / `sockaddr_in6` from its bytes.
pub fn read_sockaddr(b: &[u8]) -> Result<SocketAddr, c_int> {
    let fam = b
        .get(0..2)
        .map(|f| u16::from_ne_bytes([f[0], f[1]]))
        .ok_or(libc::EINVAL)?;
    let port = |b: &[u8]| u16::from_be_bytes([b[2], b[3]]);
    if fam == libc::AF_INET as u16 {
        let b = b.get(..SOCKADDR_IN_LEN).ok_or(libc::EINVAL)?;
        let ip = Ipv4Addr::new(b[4], b[5], b[6], b[7]);
        Ok(SocketAddr::V4(SocketAddrV4::new(ip, port(b))))
    } else if fam == libc::AF_INET6 as u16 {
        let b = b.get(..SOCKADDR_IN6_LEN).ok_or(libc::EINVAL)?;
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[8..24]);
        let flow = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let scope = u32::from_ne_bytes([b[24], b[25], b[26], b[27]]);
        Ok(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(o),
            port(b),
            flow,
            scope,
        )))
    } else {
        Err(libc::EAFNOSUPPORT)
    }
}

/// Writes `a` as a `sockaddr_in` / `sockaddr_in6` into `out` (which must be long enough;
/// zero it first). Returns the length written.
pub fn write_sockaddr(a: &SocketAddr, out: &mut [u8]) -> usize {
    match a {
        SocketAddr::V4(a) => {
            out[0..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            out[2..4].copy_from_slice(&a.port().to_be_bytes());
            out[4..8].copy_from_slice(&a.ip().octets());
            SOCKADDR_IN_LEN
        }
        SocketAddr::V6(a) => {
            out[0..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            out[2..4].copy_from_slice(&a.port().to_be_bytes());
            out[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
            out[8..24].copy_from_slice(&a.ip().octets());
            out[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            SOCKADDR_IN6_LEN
        }
    }
}

fn sockaddr_len(a: &SocketAddr) -> usize {
    if a.is_ipv4() {
        SOCKADDR_IN_LEN
    } else {
        SOCKADDR_IN6_LEN
    }
}

/// Reads a `(const struct sockaddr *, socklen_t)` argument of `sock`'s family.
unsafe fn sockaddr_arg(
    sock: &Sock,
    addr: *const libc::sockaddr,
    len: socklen_t,
) -> Result<SocketAddr, c_int> {
    if addr.is_null() {
        return Err(libc::EFAULT);
    }
    let want = if sock.domain == libc::AF_INET {
        SOCKADDR_IN_LEN
    } else {
        SOCKADDR_IN6_LEN
    };
    if (len as usize) < want {
        return Err(libc::EINVAL);
    }
    // SAFETY: the caller passes `len` readable bytes at `addr` (non-NULL); we read `want`
    // <= len of them.
    let b = unsafe { core::slice::from_raw_parts(addr as *const u8, want) };
    if u16::from_ne_bytes([b[0], b[1]]) != family_of(sock.domain) {
        return Err(libc::EAFNOSUPPORT);
    }
    read_sockaddr(b)
}

/// `int mptun_bind(int fd, const struct sockaddr *addr, socklen_t len)`: the address must
/// be unspecified or one of the runtime's; the port is used by `mptun_listen`.
#[no_mangle]
pub unsafe extern "C" fn mptun_bind(
    fd: c_int,
    addr: *const libc::sockaddr,
    len: socklen_t,
) -> c_int {
    guard(-1, || {
        let sock = get_sock(fd)?;
        // SAFETY: forwarded caller contract.
        let a = unsafe { sockaddr_arg(&sock, addr, len) }?;
        if !a.ip().is_unspecified() && !sock.ctx.addrs.contains(&a.ip()) {
            return Err(libc::EADDRNOTAVAIL);
        }
        let mut st = lock(&sock.state);
        let r = match &mut *st {
            SockState::Fresh { bound } if bound.is_none() => {
                *bound = Some(a);
                Ok(0)
            }
            _ => Err(libc::EINVAL),
        };
        drop(st);
        r
    })
}

fn sock_config(sock: &Sock, base: ConnConfig) -> ConnConfig {
    let limits = lock(&sock.limits).unwrap_or(base.limits);
    let o = *lock(&sock.tcp_opts);
    let mut cfg = ConnConfig {
        mptcp: sock.mptcp,
        limits,
        ..base
    };
    if let Some(v) = o.nodelay {
        cfg.tcp.nodelay = v;
    }
    if let Some(t) = o.user_timeout {
        cfg.tcp.user_timeout = t;
    }
    if let Some(b) = o.sndbuf {
        cfg.send_buffer = b;
    }
    if let Some(b) = o.rcvbuf {
        cfg.recv_buffer = b;
    }
    cfg
}

/// The connection-level TCP option names (level IPPROTO_TCP on the connection).
fn conn_tcp_opt(optname: c_int) -> Option<SubflowOptName> {
    match optname {
        libc::TCP_NODELAY => Some(SubflowOptName::NoDelay),
        libc::TCP_MAXSEG => Some(SubflowOptName::MaxSeg),
        libc::TCP_USER_TIMEOUT => Some(SubflowOptName::UserTimeout),
        _ => None,
    }
}

/// An option's value as the int the socket calls use.
fn opt_int(v: SubflowOpt) -> c_int {
    match v {
        SubflowOpt::NoDelay(b) | SubflowOpt::Backup(b) => c_int::from(b),
        SubflowOpt::MaxSeg(m) => c_int::from(m),
        SubflowOpt::Tos(t) => c_int::from(t),
        SubflowOpt::UserTimeout(t) => {
            t.map_or(0, |d| c_int::try_from(d.as_millis()).unwrap_or(c_int::MAX))
        }
    }
}

/// Parses an int option value for `name` (exactly 4 bytes).
fn opt_from_int(name: SubflowOptName, buf: &[u8]) -> Result<SubflowOpt, c_int> {
    let v: [u8; 4] = buf.try_into().map_err(|_| libc::EINVAL)?;
    let v = c_int::from_ne_bytes(v);
    Ok(match name {
        SubflowOptName::NoDelay => SubflowOpt::NoDelay(v != 0),
        SubflowOptName::MaxSeg => SubflowOpt::MaxSeg(u16::try_from(v).map_err(|_| libc::EINVAL)?),
        SubflowOptName::UserTimeout => match v {
            0 => SubflowOpt::UserTimeout(None),
            v if v > 0 => SubflowOpt::UserTimeout(Some(Duration::from_millis(v as u64))),
            _ => return Err(libc::EINVAL),
        },
        SubflowOptName::Tos => SubflowOpt::Tos(u8::try_from(v).map_err(|_| libc::EINVAL)?),
        SubflowOptName::Backup => SubflowOpt::Backup(match v {
            0 => false,
            1 => true,
            _ => return Err(libc::EINVAL),
        }),
    })
}

/// MPTUN_LIMITS bytes: three native-endian `uint32_t`s (subflows, add_addr_accepted,
/// announced), `struct mptun_limits`.
fn limits_bytes(l: &crate::pm::Limits) -> [u8; MPTUN_LIMITS_LEN] {
    let mut b = [0u8; MPTUN_LIMITS_LEN];
    b[0..4].copy_from_slice(&l.max_subflows.to_ne_bytes());
    b[4..8].copy_from_slice(&l.max_add_addr_accepted.to_ne_bytes());
    b[8..12].copy_from_slice(&l.max_announced.to_ne_bytes());
    b
}

fn limits_from(buf: &[u8]) -> Result<crate::pm::Limits, c_int> {
    let word = |i: usize| -> Result<u32, c_int> {
        buf.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            .ok_or(libc::EINVAL)
    };
    if buf.len() != MPTUN_LIMITS_LEN {
        return Err(libc::EINVAL);
    }
    Ok(crate::pm::Limits {
        max_subflows: word(0)?,
        max_add_addr_accepted: word(4)?,
        max_announced: word(8)?,
    })
}

/// The limits MPTUN_LIMITS reads: the connection's once connected, else what was set on the
/// socket, else the runtime's default.
fn sock_limits(sock: &Sock) -> Result<crate::pm::Limits, c_int> {
    if let SockState::Connected(s) = &*lock(&sock.state) {
        return s.limits().map_err(|e| e.errno());
    }
    if let Some(l) = *lock(&sock.limits) {
        return Ok(l);
    }
    Ok(sock.ctx.conn.limits)
}

/// `int mptun_listen(int fd, int backlog)`: listens on the bound port on all addresses.
#[no_mangle]
pub extern "C" fn mptun_listen(fd: c_int, _backlog: c_int) -> c_int {
    guard(-1, || {
        let sock = get_sock(fd)?;
        let (h, base) = (&sock.ctx.handle, sock.ctx.conn.clone());
        let mut st = lock(&sock.state);
        let local = match &*st {
            SockState::Fresh { bound: Some(a), .. } if a.port() != 0 => *a,
            SockState::Listening(_) => return Ok(0),
            SockState::Fresh { .. } => return Err(libc::EDESTADDRREQ),
            SockState::Connected(_) => return Err(libc::EISCONN),
        };
        let l = MptcpListener::bind_with(h, local.port(), Some(sock_config(&sock, base)))
            .map_err(|e| io_errno(&e))?;
        *st = SockState::Listening(Arc::new(Listen {
            listener: l,
            local,
            ready: Mutex::new(VecDeque::new()),
        }));
        Ok(0)
    })
}

/// Copies `a` to a `(struct sockaddr *, socklen_t *)` result pair (truncating, as accept(2)).
unsafe fn store_sockaddr(
    a: &SocketAddr,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> Result<(), c_int> {
    if addr.is_null() {
        return Ok(());
    }
    if len.is_null() {
        return Err(libc::EFAULT);
    }
    let mut b = [0u8; SOCKADDR_IN6_LEN];
    let n = write_sockaddr(a, &mut b);
    // SAFETY: `len` is non-NULL and points to a socklen_t (caller contract).
    let cap = unsafe { *len } as usize;
    let k = cap.min(n);
    // SAFETY: `addr` has room for `*len` bytes (caller contract); we write k <= *len.
    unsafe {
        core::ptr::copy_nonoverlapping(b.as_ptr(), addr as *mut u8, k);
        *len = n as socklen_t;
    }
    Ok(())
}

/// `int mptun_accept(int fd, struct sockaddr *addr, socklen_t *len)`: `mptun_accept4` with
/// no flags.
#[no_mangle]
pub unsafe extern "C" fn mptun_accept(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> c_int {
    // SAFETY: forwarded caller contract.
    unsafe { mptun_accept4(fd, addr, len, 0) }
}

/// `int mptun_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)`: flags
/// `SOCK_NONBLOCK` (the new socket is non-blocking) and `SOCK_CLOEXEC` (accepted; mptun's
/// descriptors are not kernel file descriptors); others EINVAL, as Linux.
#[no_mangle]
pub unsafe extern "C" fn mptun_accept4(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    guard(-1, || {
        if flags & !(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC) != 0 {
            return Err(libc::EINVAL);
        }
        let sock = get_sock(fd)?;
        let l = match &*lock(&sock.state) {
            SockState::Listening(l) => l.clone(),
            _ => return Err(libc::EINVAL),
        };
        let stashed = lock(&l.ready).pop_front();
        let stream = match stashed {
            Some(id) => MptcpStream::from_id(l.listener.handle.clone(), id),
            None => {
                l.listener
                    .set_nonblocking(sock.nonblocking.load(Ordering::Relaxed))
                    .map_err(|e| io_errno(&e))?;
                l.listener.accept().map_err(|e| io_errno(&e))?.0
            }
        };
        let peer = stream.peer_addr().map_err(|e| io_errno(&e))?;
        let nfd = insert_sock(Sock {
            ctx: sock.ctx.clone(),
            domain: sock.domain,
            mptcp: sock.mptcp,
            nonblocking: (flags & libc::SOCK_NONBLOCK != 0).into(),
            reuseaddr: false.into(),
            wr_shut: false.into(),
            limits: Mutex::new(None),
            tcp_opts: Mutex::new(TcpOpts::default()),
            state: Mutex::new(SockState::Connected(Arc::new(stream))),
        })?;
        // SAFETY: forwarded caller contract.
        if let Err(e) = unsafe { store_sockaddr(&peer, addr, len) } {
            let _ = close_fd(nfd);
            return Err(e);
        }
        Ok(nfd)
    })
}

/// `int mptun_getsockname(int fd, struct sockaddr *addr, socklen_t *len)`: the address a
/// fresh socket was bound to (the unspecified address and port 0 if none), a listener's
/// bound address, or a connection's local address (its initial subflow's). Truncates to
/// `*len` and sets `*len` to the full size, as Linux.
#[no_mangle]
pub unsafe extern "C" fn mptun_getsockname(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> c_int {
    guard(-1, || {
        let sock = get_sock(fd)?;
        let a = match &*lock(&sock.state) {
            SockState::Fresh { bound: Some(a) } => *a,
            SockState::Fresh { bound: None } => unspecified(sock.domain),
            SockState::Listening(l) => l.local,
            SockState::Connected(s) => s.local_addr().map_err(|e| io_errno(&e))?,
        };
        // SAFETY: forwarded caller contract.
        unsafe { store_name(&a, addr, len) }
    })
}

/// The result of getsockname / getpeername: EFAULT for a NULL address, else as accept.
unsafe fn store_name(
    a: &SocketAddr,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> Result<c_int, c_int> {
    if addr.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: forwarded caller contract.
    unsafe { store_sockaddr(a, addr, len) }?;
    Ok(0)
}

/// `int mptun_getpeername(int fd, struct sockaddr *addr, socklen_t *len)`: a connection's
/// remote address (its initial subflow's); ENOTCONN before connect or on a listener.
#[no_mangle]
pub unsafe extern "C" fn mptun_getpeername(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut socklen_t,
) -> c_int {
    guard(-1, || {
        let sock = get_sock(fd)?;
        let a = match &*lock(&sock.state) {
            SockState::Connected(s) => s.peer_addr().map_err(|e| io_errno(&e))?,
            _ => return Err(libc::ENOTCONN),
        };
        // SAFETY: forwarded caller contract.
        unsafe { store_name(&a, addr, len) }
    })
}

fn unspecified(domain: c_int) -> SocketAddr {
    if domain == libc::AF_INET6 {
        SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)
    } else {
        SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)
    }
}

/// `int mptun_connect(int fd, const struct sockaddr *addr, socklen_t len)`: on a blocking
/// socket, waits until the handshake completes (at most 30 s: ETIMEDOUT). On a
/// `SOCK_NONBLOCK` socket, starts it and fails with EINPROGRESS; `mptun_poll` reports
/// POLLOUT once connected (POLLERR if it failed), `SO_ERROR` gives the result, and connect
/// again fails with EALREADY while it runs, EISCONN once connected, or the failure.
#[no_mangle]
pub unsafe extern "C" fn mptun_connect(
    fd: c_int,
    addr: *const libc::sockaddr,
    len: socklen_t,
) -> c_int {
    guard(-1, || {
        let sock = get_sock(fd)?;
        // SAFETY: forwarded caller contract.
        let remote = unsafe { sockaddr_arg(&sock, addr, len) }?;
        let (h, base) = (&sock.ctx.handle, sock.ctx.conn.clone());
        let local = match &*lock(&sock.state) {
            SockState::Fresh { bound } => bound.map(|b| b.ip()).filter(|i| !i.is_unspecified()),
            SockState::Connected(s) => {
                return match s.connect_result() {
                    Ok(true) => Err(libc::EISCONN),
                    Ok(false) => Err(libc::EALREADY),
                    Err(e) => Err(io_errno(&e)),
                }
            }
            SockState::Listening(_) => return Err(libc::EINVAL),
        };
        if sock.nonblocking.load(Ordering::Relaxed) {
            let s = MptcpStream::connect_start(h, remote, local, Some(sock_config(&sock, base)))
                .map_err(|e| io_errno(&e))?;
            let mut st = lock(&sock.state);
            return match &*st {
                SockState::Fresh { .. } => {
                    *st = SockState::Connected(Arc::new(s));
                    Err(libc::EINPROGRESS)
                }
                _ => Err(libc::EALREADY), // another thread won the race; `s` is closed
            };
        }
        let s = MptcpStream::connect_with(
            h,
            remote,
            local,
            Some(sock_config(&sock, base)),
            Some(CONNECT_TIMEOUT),
        )
        .map_err(|e| io_errno(&e))?;
        let mut st = lock(&sock.state);
        match &*st {
            SockState::Fresh { .. } => {
                *st = SockState::Connected(Arc::new(s));
                Ok(0)
            }
            _ => Err(libc::EISCONN), // another thread won the race; `s` is dropped (closed)
        }
    })
}

const SEND_FLAGS: c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
const RECV_FLAGS: c_int = libc::MSG_DONTWAIT | libc::MSG_WAITALL | libc::MSG_PEEK;

/// `ssize_t mptun_send(int fd, const void *buf, size_t len, int flags)`: flags
/// `MSG_DONTWAIT`, `MSG_NOSIGNAL` (mptun never raises SIGPIPE); others EOPNOTSUPP.
#[no_mangle]
pub unsafe extern "C" fn mptun_send(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
) -> ssize_t {
    guard(-1, || {
        let sock = get_sock(fd)?;
        if flags & !SEND_FLAGS != 0 {
            return Err(libc::EOPNOTSUPP);
        }
        let s = stream_of(&sock)?;
        if sock.wr_shut.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(libc::EPIPE);
        }
        if len == 0 {
            return Ok(0);
        }
        if buf.is_null() || len > isize::MAX as usize {
            return Err(libc::EFAULT);
        }
        // SAFETY: the caller passes `len` readable bytes at `buf` (non-NULL).
        let data = unsafe { core::slice::from_raw_parts(buf as *const u8, len) };
        let nb = sock.nonblocking.load(Ordering::Relaxed) || flags & libc::MSG_DONTWAIT != 0;
        // as Linux: a non-blocking send while the handshake runs would block (EAGAIN); a
        // failed handshake reports its error
        if nb && !s.connect_result().map_err(|e| io_errno(&e))? {
            return Err(libc::EAGAIN);
        }
        s.set_nonblocking(nb).map_err(|e| io_errno(&e))?;
        (&*s)
            .write(data)
            .map(|n| n as ssize_t)
            .map_err(|e| io_errno(&e))
    })
}

/// `ssize_t mptun_recv(int fd, void *buf, size_t len, int flags)`: 0 at end of stream;
/// flags `MSG_DONTWAIT`, `MSG_WAITALL`, `MSG_PEEK` (the data stays readable; with
/// `MSG_WAITALL` it returns what one wait brought, not necessarily `len` bytes); others
/// EOPNOTSUPP.
#[no_mangle]
pub unsafe extern "C" fn mptun_recv(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
) -> ssize_t {
    guard(-1, || {
        let sock = get_sock(fd)?;
        if flags & !RECV_FLAGS != 0 {
            return Err(libc::EOPNOTSUPP);
        }
        let s = stream_of(&sock)?;
        if len == 0 {
            return Ok(0);
        }
        if buf.is_null() || len > isize::MAX as usize {
            return Err(libc::EFAULT);
        }
        // SAFETY: the caller passes `len` writable bytes at `buf` (non-NULL).
        let out = unsafe { core::slice::from_raw_parts_mut(buf as *mut u8, len) };
        let nb = sock.nonblocking.load(Ordering::Relaxed) || flags & libc::MSG_DONTWAIT != 0;
        s.set_nonblocking(nb).map_err(|e| io_errno(&e))?;
        if flags & libc::MSG_PEEK != 0 {
            return s.peek(out).map(|n| n as ssize_t).map_err(|e| io_errno(&e));
        }
        let mut got = 0usize;
        loop {
            match (&*s).read(&mut out[got..]) {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if got == out.len() || flags & libc::MSG_WAITALL == 0 || nb {
                        break;
                    }
                }
                Err(e) if got > 0 && e.kind() != io::ErrorKind::Interrupted => break,
                Err(e) => return Err(io_errno(&e)),
            }
        }
        Ok(got as ssize_t)
    })
}

/// `int mptun_shutdown(int fd, int how)`: SHUT_WR / SHUT_RDWR send the DATA_FIN; SHUT_RD
/// is accepted and does nothing.
#[no_mangle]
pub extern "C" fn mptun_shutdown(fd: c_int, how: c_int) -> c_int {
    guard(-1, || {
        let sock = get_sock(fd)?;
        let how = match how {
            libc::SHUT_RD => Shutdown::Read,
            libc::SHUT_WR => Shutdown::Write,
            libc::SHUT_RDWR => Shutdown::Both,
            _ => return Err(libc::EINVAL),
        };
        let s = stream_of(&sock)?;
        s.shutdown(how).map_err(|e| io_errno(&e))?;
        if how != Shutdown::Read {
            sock.wr_shut
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(0)
    })
}

fn close_sock(sock: &Sock) {
    let st = core::mem::replace(&mut *lock(&sock.state), SockState::Fresh { bound: None });
    if let SockState::Connected(s) = st {
        // As Linux's close(): a connection whose handshake still runs is dropped (a later
        // SYN/ACK gets a RST), and one with data the application never read is reset
        // rather than closed gracefully (RFC 2525 2.17), so the peer learns the data was
        // lost. Otherwise the stream finishes its closing handshake in the background;
        // `mptun_fini` waits for it. A clone still used by a thread blocked in this
        // descriptor keeps it open.
        let id = s.id();
        let abort = s.stack().with_stack(|st| {
            let doomed = st
                .connection(id)
                .is_some_and(|c| c.error().is_none() && (!c.is_established() || c.readable() > 0));
            if doomed {
                let _ = st.abort(id);
            }
            doomed
        });
        if abort {
            s.stack().wake_driver();
        } else {
            let _ = s.shutdown(Shutdown::Write);
        }
        if let Ok(s) = Arc::try_unwrap(s) {
            lock(&sock.ctx.linger).push(s);
        }
    }
}

fn close_fd(fd: c_int) -> Result<c_int, c_int> {
    let sock = {
        let mut t = lock(&FDS);
        usize::try_from(fd)
            .ok()
            .and_then(|i| t.get_mut(i))
            .and_then(|e| e.take())
            .ok_or(libc::EBADF)?
    };
    close_sock(&sock);
    Ok(0)
}

/// `int mptun_close(int fd)`: releases the descriptor; a connection sends its DATA_FIN and
/// closes in the background (call `mptun_fini` before exiting to let it finish).
#[no_mangle]
pub extern "C" fn mptun_close(fd: c_int) -> c_int {
    guard(-1, || close_fd(fd))
}

/// `int mptun_fcntl(int fd, int cmd, int arg)`: `F_GETFL` (`O_RDWR`, `| O_NONBLOCK` if
/// set) and `F_SETFL` (`O_NONBLOCK` on or off; the access mode and other status flags are
/// ignored, as Linux ignores them for sockets); other commands EINVAL.
#[no_mangle]
pub extern "C" fn mptun_fcntl(fd: c_int, cmd: c_int, arg: c_int) -> c_int {
    guard(-1, || {
        let sock = get_sock(fd)?;
        match cmd {
            libc::F_GETFL => Ok(libc::O_RDWR
                | if sock.nonblocking.load(Ordering::Relaxed) {
                    libc::O_NONBLOCK
                } else {
                    0
                }),
            libc::F_SETFL => {
                sock.nonblocking
                    .store(arg & libc::O_NONBLOCK != 0, Ordering::Relaxed);
                Ok(0)
            }
            _ => Err(libc::EINVAL),
        }
    })
}

// ----- poll -------------------------------------------------------------------------------

enum PollTarget {
    Ignore,
    Invalid,
    Fresh,
    Stream(ConnId),
    Listener(u16, Arc<Listen>),
}

/// What `fd` is for `mptun_poll`, and the stack it lives on.
fn poll_target(fd: c_int) -> (PollTarget, Option<Arc<Ctx>>) {
    if fd < 0 {
        return (PollTarget::Ignore, None);
    }
    let Ok(sock) = get_sock(fd) else {
        return (PollTarget::Invalid, None);
    };
    let st = lock(&sock.state);
    let t = match &*st {
        SockState::Fresh { .. } => PollTarget::Fresh,
        SockState::Connected(s) => PollTarget::Stream(s.id()),
        SockState::Listening(l) => PollTarget::Listener(l.listener.port(), l.clone()),
    };
    (t, Some(sock.ctx.clone()))
}

fn readiness(s: &mut Stack, t: &PollTarget) -> i16 {
    match t {
        PollTarget::Ignore => 0,
        PollTarget::Invalid => libc::POLLNVAL,
        PollTarget::Fresh => libc::POLLOUT | libc::POLLHUP,
        PollTarget::Stream(id) => match s.connection(*id) {
            None => libc::POLLHUP | libc::POLLERR,
            Some(c) => {
                let mut r = 0;
                if c.readable() > 0 || c.at_eof() || c.error().is_some() {
                    r |= libc::POLLIN;
                }
                // after a failure a write does not block (it fails at once): POLLOUT, as
                // Linux gives with POLLERR|POLLHUP
                if (c.is_established() && c.send_space() > 0) || c.error().is_some() {
                    r |= libc::POLLOUT;
                }
                if c.error().is_some() {
                    r |= libc::POLLERR | libc::POLLHUP;
                } else if c.at_eof() && c.send_space() == 0 && c.is_closed() {
                    r |= libc::POLLHUP;
                }
                r
            }
        },
        PollTarget::Listener(port, l) => {
            // lock order: the stack, then `ready` (accept never holds `ready` while locking
            // the stack)
            let mut q = lock(&l.ready);
            if q.is_empty() {
                if let Some(id) = s.accept(*port) {
                    q.push_back(id);
                }
            }
            if q.is_empty() {
                0
            } else {
                libc::POLLIN
            }
        }
    }
}

/// `int mptun_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms)`, over mptun
/// descriptors: POLLIN (data, end of stream, error, or a connection to accept), POLLOUT
/// (send buffer space), POLLERR/POLLHUP, POLLNVAL (not an mptun descriptor).
#[no_mangle]
pub unsafe extern "C" fn mptun_poll(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout_ms: c_int,
) -> c_int {
    guard(-1, || {
        let n = usize::try_from(nfds).map_err(|_| libc::EINVAL)?;
        if n > MAX_FDS {
            return Err(libc::EINVAL);
        }
        if n > 0 && fds.is_null() {
            return Err(libc::EFAULT);
        }
        let fds: &mut [libc::pollfd] = if n == 0 {
            &mut []
        } else {
            // SAFETY: the caller passes `nfds` pollfd structs at `fds` (non-NULL).
            unsafe { core::slice::from_raw_parts_mut(fds, n) }
        };
        let mut ctx: Option<Arc<Ctx>> = None;
        let mut targets = Vec::with_capacity(n);
        for p in fds.iter() {
            let (t, c) = poll_target(p.fd);
            if let Some(c) = c {
                match &ctx {
                    // one call waits on one stack's clock and wake-ups
                    Some(x) if !Arc::ptr_eq(x, &c) => return Err(libc::EINVAL),
                    _ => ctx = Some(c),
                }
            }
            targets.push(t);
        }
        let ctx = match ctx {
            Some(c) => c,
            None if targets.iter().any(|t| matches!(t, PollTarget::Invalid)) => {
                // only unknown descriptors: POLLNVAL at once, no stack needed
                let mut count = 0;
                for (p, t) in fds.iter_mut().zip(&targets) {
                    p.revents = if matches!(t, PollTarget::Invalid) {
                        count += 1;
                        libc::POLLNVAL
                    } else {
                        0
                    };
                }
                return Ok(count);
            }
            None => runtime()?,
        };
        let h = &ctx.handle;
        let deadline =
            (timeout_ms >= 0).then(|| h.now() + Duration::from_millis(timeout_ms as u64));
        let mut revents = vec![0i16; n];
        let r = h.wait_for(deadline, |s| {
            let mut count = 0;
            for ((p, t), r) in fds.iter().zip(&targets).zip(revents.iter_mut()) {
                let mask = p.events | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL;
                *r = readiness(s, t) & mask;
                if *r != 0 {
                    count += 1;
                }
            }
            (count > 0).then_some(Ok(count))
        });
        let count = match r {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::TimedOut => 0,
            Err(e) => return Err(io_errno(&e)),
        };
        for (p, r) in fds.iter_mut().zip(revents) {
            p.revents = r;
        }
        Ok(count)
    })
}

// ----- getsockopt / setsockopt ---------------------------------------------------------

/// `int mptun_getsockopt(int fd, int level, int optname, void *optval, socklen_t *optlen)`.
#[no_mangle]
pub unsafe extern "C" fn mptun_getsockopt(
    fd: c_int,
    level: c_int,
    optname: c_int,
    optval: *mut c_void,
    optlen: *mut socklen_t,
) -> c_int {
    guard(-1, || {
        let sock = get_sock(fd)?;
        if optlen.is_null() {
            return Err(libc::EFAULT);
        }
        // SAFETY: non-NULL, points to a socklen_t (caller contract).
        let len = unsafe { *optlen } as usize;
        if len > 0 && optval.is_null() {
            return Err(libc::EFAULT);
        }
        if len > isize::MAX as usize {
            return Err(libc::EINVAL);
        }
        let buf: &mut [u8] = if len == 0 {
            &mut []
        } else {
            // SAFETY: the caller passes `*optlen` writable bytes at `optval` (non-NULL).
            unsafe { core::slice::from_raw_parts_mut(optval as *mut u8, len) }
        };
        let mut out_len = len;
        let r = getsockopt_impl(&sock, level, optname, buf, &mut out_len);
        // Report the length written, or the length needed after EINVAL for a short buffer.
        // SAFETY: as above.
        unsafe { *optlen = out_len as socklen_t };
        r.map(|()| 0)
    })
}

/// `int mptun_setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen)`.
#[no_mangle]
pub unsafe extern "C" fn mptun_setsockopt(
    fd: c_int,
    level: c_int,
    optname: c_int,
    optval: *const c_void,
    optlen: socklen_t,
) -> c_int {
    guard(-1, || {
        let sock = get_sock(fd)?;
        let len = optlen as usize;
        if len > 0 && optval.is_null() {
            return Err(libc::EFAULT);
        }
        let buf: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: the caller passes `optlen` readable bytes at `optval` (non-NULL).
            unsafe { core::slice::from_raw_parts(optval as *const u8, len) }
        };
        setsockopt_impl(&sock, level, optname, buf).map(|()| 0)
    })
}

fn getsockopt_impl(
    sock: &Sock,
    level: c_int,
    optname: c_int,
    buf: &mut [u8],
    out_len: &mut usize,
) -> Result<(), c_int> {
    match (level, optname) {
        (libc::IPPROTO_TCP, MPTCP_GET_SUB_IDS) => get_sub_ids(&*stream_of(sock)?, buf, out_len),
        (libc::IPPROTO_TCP, MPTCP_GET_SUB_TUPLE) => get_sub_tuple(&*stream_of(sock)?, buf, out_len),
        (libc::IPPROTO_TCP, MPTCP_OPEN_SUB_TUPLE) => open_sub_tuple(&*stream_of(sock)?, buf),
        (libc::IPPROTO_TCP, MPTCP_CLOSE_SUB_ID) => close_sub_id(&*stream_of(sock)?, buf),
        (libc::IPPROTO_TCP, MPTCP_SUB_GETSOCKOPT) => sub_getsockopt(&*stream_of(sock)?, buf),
        // connection level: the first live subflow's, in Linux's layout (as Linux answers
        // TCP_INFO on an MPTCP socket)
        (libc::IPPROTO_TCP, libc::TCP_INFO) => {
            let info = stream_of(sock)?.first_subflow_info().map_err(sub_errno)?;
            put_prefix(buf, out_len, &linux_tcp_info_bytes(&info))
        }
        (libc::IPPROTO_TCP, o) if conn_tcp_opt(o).is_some() => {
            let name = conn_tcp_opt(o).ok_or(libc::ENOPROTOOPT)?;
            let connected = match &*lock(&sock.state) {
                SockState::Connected(s) => Some(s.clone()),
                _ => None,
            };
            let v = match connected {
                Some(s) => opt_int(s.connection_option(name).map_err(sub_errno)?),
                None => {
                    let t = *lock(&sock.tcp_opts);
                    let base = &sock.ctx.conn.tcp;
                    match name {
                        SubflowOptName::NoDelay => c_int::from(t.nodelay.unwrap_or(base.nodelay)),
                        SubflowOptName::UserTimeout => opt_int(SubflowOpt::UserTimeout(
                            t.user_timeout.unwrap_or(base.user_timeout),
                        )),
                        // the MSS is known once a subflow exists
                        _ => return Err(libc::ENOTCONN),
                    }
                }
            };
            put_int(buf, out_len, v)
        }
        (libc::SOL_SOCKET, libc::SO_TYPE) => put_int(buf, out_len, libc::SOCK_STREAM),
        (libc::SOL_SOCKET, o @ (libc::SO_SNDBUF | libc::SO_RCVBUF)) => {
            let connected = match &*lock(&sock.state) {
                SockState::Connected(s) => Some(s.clone()),
                _ => None,
            };
            let (snd, rcv) = match connected {
                Some(s) => s
                    .stack()
                    .with_stack(|st| {
                        st.connection(s.id()).map(|c| {
                            let (snd, _, rcv, _) = c.buffer_sizes();
                            (snd, rcv)
                        })
                    })
                    .ok_or(libc::ENOTCONN)?,
                None => {
                    let cfg = sock_config(sock, sock.ctx.conn.clone());
                    (cfg.send_buffer, cfg.recv_buffer)
                }
            };
            let v = if o == libc::SO_SNDBUF { snd } else { rcv };
            put_int(buf, out_len, c_int::try_from(v).unwrap_or(c_int::MAX))
        }
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => put_int(
            buf,
            out_len,
            c_int::from(sock.reuseaddr.load(Ordering::Relaxed)),
        ),
        (SOL_MPTCP, MPTUN_GET_EVENTS) => get_events(&*stream_of(sock)?, buf, out_len),
        (SOL_MPTCP, MPTUN_LIMITS) => put_bytes(buf, out_len, &limits_bytes(&sock_limits(sock)?)),
        (SOL_MPTCP, MPTCP_INFO) => {
            if !sock.mptcp {
                return Err(libc::EOPNOTSUPP);
            }
            let info = stream_of(sock)?.info().map_err(|e| io_errno(&e))?;
            put_bytes(buf, out_len, &mptcp_info_bytes(&info))
        }
        // the connection's failure (e.g. of a non-blocking connect), 0 if none
        (libc::SOL_SOCKET, libc::SO_ERROR) => {
            let connected = match &*lock(&sock.state) {
                SockState::Connected(s) => Some(s.clone()),
                _ => None,
            };
            // a failed handshake is the connection's error too
            let err = connected.map_or(0, |s| {
                s.stack().with_stack(|st| match st.connection(s.id()) {
                    None => io_errno(&to_io(StackError::InvalidHandle)),
                    Some(c) => c
                        .error()
                        .map_or(0, |e| io_errno(&to_io(StackError::Closed(Some(e))))),
                })
            });
            put_int(buf, out_len, err)
        }
        (libc::SOL_SOCKET, libc::SO_PROTOCOL) => put_int(
            buf,
            out_len,
            if sock.mptcp {
                IPPROTO_MPTCP
            } else {
                libc::IPPROTO_TCP
            },
        ),
        _ => Err(libc::ENOPROTOOPT),
    }
}

fn setsockopt_impl(sock: &Sock, level: c_int, optname: c_int, buf: &[u8]) -> Result<(), c_int> {
    match (level, optname) {
        (libc::IPPROTO_TCP, MPTCP_SUB_SETSOCKOPT) => sub_setsockopt(&*stream_of(sock)?, buf),
        (libc::IPPROTO_TCP, o) if conn_tcp_opt(o).is_some() => {
            let name = conn_tcp_opt(o).ok_or(libc::ENOPROTOOPT)?;
            let opt = opt_from_int(name, buf)?;
            let connected = match &*lock(&sock.state) {
                SockState::Connected(s) => Some(s.clone()),
                _ => None,
            };
            match (connected, opt) {
                (Some(s), opt) => s.set_connection_option(opt).map_err(sub_errno),
                (None, SubflowOpt::NoDelay(v)) => {
                    lock(&sock.tcp_opts).nodelay = Some(v);
                    Ok(())
                }
                (None, SubflowOpt::UserTimeout(t)) => {
                    lock(&sock.tcp_opts).user_timeout = Some(t);
                    Ok(())
                }
                // TCP_MAXSEG before connect: not supported (the link MTU decides)
                (None, _) => Err(libc::ENOTCONN),
            }
        }
        // the connection-level buffers, before connect or listen (a live connection's
        // buffers are not resized: EISCONN); clamped to [BUF_MIN, BUF_MAX], not doubled
        (libc::SOL_SOCKET, o @ (libc::SO_SNDBUF | libc::SO_RCVBUF)) => {
            let v: [u8; 4] = buf.try_into().map_err(|_| libc::EINVAL)?;
            let v = usize::try_from(c_int::from_ne_bytes(v))
                .unwrap_or(0)
                .clamp(BUF_MIN, BUF_MAX);
            match &*lock(&sock.state) {
                SockState::Connected(_) => return Err(libc::EISCONN),
                // the listener's configuration was fixed by listen
                SockState::Listening(_) => return Err(libc::EINVAL),
                SockState::Fresh { .. } => {}
            }
            let mut t = lock(&sock.tcp_opts);
            if o == libc::SO_SNDBUF {
                t.sndbuf = Some(v);
            } else {
                t.rcvbuf = Some(v);
            }
            Ok(())
        }
        (libc::SOL_SOCKET, libc::SO_REUSEADDR) => {
            let v: [u8; 4] = buf.try_into().map_err(|_| libc::EINVAL)?;
            sock.reuseaddr
                .store(c_int::from_ne_bytes(v) != 0, Ordering::Relaxed);
            Ok(())
        }
        (SOL_MPTCP, MPTUN_LIMITS) => {
            let l = limits_from(buf)?;
            let connected = match &*lock(&sock.state) {
                SockState::Connected(s) => Some(s.clone()),
                _ => None,
            };
            match connected {
                Some(s) => s.set_limits(l).map_err(|e| e.errno()),
                None => {
                    *lock(&sock.limits) = Some(l);
                    Ok(())
                }
            }
        }
        _ => Err(libc::ENOPROTOOPT),
    }
}

/// The smallest and largest SO_SNDBUF / SO_RCVBUF (bytes): a few segments, and the largest
/// window TCP window scaling can announce.
pub const BUF_MIN: usize = 4096;
pub const BUF_MAX: usize = 1 << 30;

/// Writes an `int` option value: EINVAL (and the size needed) if `buf` is shorter.
fn put_int(buf: &mut [u8], out_len: &mut usize, v: c_int) -> Result<(), c_int> {
    put_bytes(buf, out_len, &v.to_ne_bytes())
}

fn put_bytes(buf: &mut [u8], out_len: &mut usize, v: &[u8]) -> Result<(), c_int> {
    buf.fill(0);
    if buf.len() < v.len() {
        *out_len = v.len();
        return Err(libc::EINVAL);
    }
    buf[..v.len()].copy_from_slice(v);
    *out_len = v.len();
    Ok(())
}

fn id8(id: u32) -> Result<u8, c_int> {
    u8::try_from(id).map_err(|_| libc::EOVERFLOW)
}

fn get_sub_ids(s: &MptcpStream, buf: &mut [u8], out_len: &mut usize) -> Result<(), c_int> {
    let cid = s.id();
    // (id, flags) of the subflows attached to the connection: not closed, and not being
    // closed by the application (MPTCP_CLOSE_SUB_ID detaches at once, as in the draft)
    let subs: Vec<(u32, u16)> = s.stack().with_stack(|st| {
        let c = st.connection(cid).ok_or(libc::ENOTCONN)?;
        if c.mode() != Mode::Mptcp {
            return Err(libc::EOPNOTSUPP);
        }
        Ok(c.subflows()
            .iter()
            .filter(|f| f.closed.is_none() && !f.closing_by_app)
            .map(|f| {
                let pre = matches!(f.join, JoinState::AckPending { .. });
                let mut flags = MPTCP_SUB_ATTACHED;
                if f.join != JoinState::Initial {
                    flags |= MPTCP_SUB_SLAVE_SK;
                }
                if f.established && !pre {
                    flags |= MPTCP_SUB_FULLY_ESTABLISHED;
                }
                if f.backup || f.peer_backup {
                    flags |= MPTCP_SUB_LOW_PRIO;
                }
                if pre {
                    flags |= MPTCP_SUB_PRE_ESTABLISHED;
                }
                (f.id, flags)
            })
            .collect())
    })?;
    let need = size_of::<mptcp_sub_ids>() + subs.len() * size_of::<mptcp_sub_status>();
    buf.fill(0);
    if buf.len() < need {
        *out_len = need;
        return Err(libc::EINVAL);
    }
    buf[0] = u8::try_from(subs.len()).map_err(|_| libc::EOVERFLOW)?;
    for (i, (id, flags)) in subs.iter().enumerate() {
        let o = 2 + i * 4;
        buf[o] = id8(*id)?;
        buf[o + 2..o + 4].copy_from_slice(&flags.to_ne_bytes());
    }
    *out_len = need;
    Ok(())
}

fn get_sub_tuple(s: &MptcpStream, buf: &mut [u8], out_len: &mut usize) -> Result<(), c_int> {
    let Some(&id) = buf.first() else {
        *out_len = SUB_TUPLE_LEN_IN;
        return Err(libc::EINVAL);
    };
    let (local, remote) = s.subflow_tuple(u32::from(id)).map_err(sub_errno)?;
    let backup = s
        .subflow_option(u32::from(id), SubflowOptName::Backup)
        .map_err(sub_errno)?
        == SubflowOpt::Backup(true);
    let need = 2 + sockaddr_len(&local) + sockaddr_len(&remote);
    buf.fill(0);
    if buf.len() < need {
        *out_len = need;
        return Err(libc::EINVAL);
    }
    buf[0] = id;
    buf[1] = u8::from(backup);
    let n = write_sockaddr(&local, &mut buf[2..]);
    write_sockaddr(&remote, &mut buf[2 + n..]);
    *out_len = need;
    Ok(())
}

/// MPTCP_OPEN_SUB_TUPLE: the family comes from the local sockaddr (the remote one must have
/// the same); the buffer must hold both addresses and may be longer (the draft's manual
/// passes 100 bytes), the bytes after them being ignored.
fn open_sub_tuple(s: &MptcpStream, buf: &mut [u8]) -> Result<(), c_int> {
    let fam = buf
        .get(2..4)
        .map(|f| c_int::from(u16::from_ne_bytes([f[0], f[1]])))
        .ok_or(libc::EINVAL)?;
    let alen = match fam {
        libc::AF_INET => SOCKADDR_IN_LEN,
        libc::AF_INET6 => SOCKADDR_IN6_LEN,
        _ => return Err(libc::EINVAL),
    };
    if buf.len() < 2 + 2 * alen {
        return Err(libc::EINVAL);
    }
    let local = read_sockaddr(&buf[2..2 + alen]).map_err(|_| libc::EINVAL)?;
    let remote = read_sockaddr(&buf[2 + alen..2 + 2 * alen]).map_err(|_| libc::EINVAL)?;
    if local.is_ipv4() != remote.is_ipv4() {
        return Err(libc::EINVAL);
    }
    let backup = match buf[1] {
        0 => false,
        1 => true,
        _ => return Err(libc::EINVAL),
    };
    let id = s.open_subflow(local, remote, backup).map_err(sub_errno)?;
    match u8::try_from(id) {
        Ok(id8) => {
            buf[0] = id8;
            Ok(())
        }
        Err(_) => {
            // the draft's ids are 8 bits; mptun's never repeat, so after 255 opens a new
            // subflow cannot be named: undo it
            let _ = s.close_subflow(id, CloseHow::Abortive);
            Err(libc::EOVERFLOW)
        }
    }
}

fn close_sub_id(s: &MptcpStream, buf: &mut [u8]) -> Result<(), c_int> {
    if buf.len() != size_of::<mptcp_close_sub_id>() {
        return Err(libc::EINVAL);
    }
    let id = buf[0];
    let how = c_int::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    let how = match how {
        libc::SHUT_WR | libc::SHUT_RDWR => CloseHow::Graceful,
        // 0 (SHUT_RD): a zero-initialised struct with only `id` set, as programs written
        // for the draft's prototype pass it; the prototype ignored `how` and closed
        // abortively (reinjection, then RST)
        MPTUN_SHUT_ABORT | 0 => CloseHow::Abortive,
        _ => return Err(libc::EINVAL),
    };
    // a subflow already being closed is no longer attached: an unknown id, as in the draft
    let cid = s.id();
    let detached = s.stack().with_stack(|st| {
        st.connection(cid).map(|c| {
            c.subflow_by_id(u32::from(id))
                .and_then(|i| c.subflow(i))
                .is_some_and(|f| f.closed.is_some() || f.closing_by_app)
        })
    });
    if detached == Some(true) {
        return Err(libc::EINVAL);
    }
    s.close_subflow(u32::from(id), how).map_err(sub_errno)
}

fn read_struct<T: Copy>(buf: &[u8]) -> Result<T, c_int> {
    if buf.len() != size_of::<T>() {
        return Err(libc::EINVAL);
    }
    // SAFETY: `buf` holds exactly size_of::<T>() bytes; T is one of this module's
    // repr(C) structs of integers and raw pointers, for which any bit pattern is valid;
    // read_unaligned copes with the byte buffer's alignment.
    Ok(unsafe { core::ptr::read_unaligned(buf.as_ptr() as *const T) })
}

fn sub_getsockopt(s: &MptcpStream, buf: &mut [u8]) -> Result<(), c_int> {
    let a: mptcp_sub_getsockopt = read_struct(buf)?;
    if a.optlen.is_null() {
        return Err(libc::EFAULT);
    }
    // SAFETY: non-NULL pointer to the caller's unsigned int (caller contract).
    let len = unsafe { *a.optlen } as usize;
    if len > 0 && a.optval.is_null() {
        return Err(libc::EFAULT);
    }
    if len > isize::MAX as usize {
        return Err(libc::EINVAL);
    }
    let out: &mut [u8] = if len == 0 {
        &mut []
    } else {
        // SAFETY: the caller passes `*optlen` writable bytes at `optval` (non-NULL).
        unsafe { core::slice::from_raw_parts_mut(a.optval as *mut u8, len) }
    };
    let mut out_len = len;
    let r = sub_get(s, u32::from(a.id), a.level, a.optname, out, &mut out_len);
    // SAFETY: as above.
    unsafe { *a.optlen = out_len as c_uint };
    r
}

fn sub_get(
    s: &MptcpStream,
    id: u32,
    level: c_int,
    optname: c_int,
    out: &mut [u8],
    out_len: &mut usize,
) -> Result<(), c_int> {
    if (level, optname) == (SOL_MPTCP, MPTUN_TCP_INFO) {
        let info = s.subflow_info(id).map_err(sub_errno)?;
        let backup = s
            .subflow_option(id, SubflowOptName::Backup)
            .map_err(sub_errno)?
            == SubflowOpt::Backup(true);
        let ti = tcp_info(&info, backup);
        return put_bytes(out, out_len, tcp_info_bytes(&ti).as_slice());
    }
    if (level, optname) == (libc::IPPROTO_TCP, libc::TCP_INFO) {
        let info = s.subflow_info(id).map_err(sub_errno)?;
        return put_prefix(out, out_len, &linux_tcp_info_bytes(&info));
    }
    let Some(name) = sub_opt_name(level, optname) else {
        // an unknown option on an unknown id is still an unknown id
        s.subflow_tuple(id).map_err(sub_errno)?;
        return Err(libc::ENOPROTOOPT);
    };
    let v = opt_int(s.subflow_option(id, name).map_err(sub_errno)?);
    put_int(out, out_len, v)
}

/// Linux's `struct tcp_info` (uapi `linux/tcp.h`) for one subflow: the fields mptun tracks
/// at Linux's offsets, the rest 0. Times in microseconds; `tcpi_snd_cwnd` and
/// `tcpi_snd_ssthresh` in segments, as Linux.
pub fn linux_tcp_info_bytes(i: &SubflowInfo) -> [u8; LINUX_TCP_INFO_LEN] {
    let mut b = [0u8; LINUX_TCP_INFO_LEN];
    let mss = u32::from(i.snd_mss.max(1));
    let put32 =
        |b: &mut [u8], off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    let put64 =
        |b: &mut [u8], off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    b[0] = i.state; // tcpi_state (Linux's TCP_* numbers)
    put32(&mut b, 8, micros(i.rto)); // tcpi_rto
    put32(&mut b, 16, u32::from(i.snd_mss)); // tcpi_snd_mss
    put32(&mut b, 20, u32::from(i.rcv_mss)); // tcpi_rcv_mss
    put32(&mut b, 24, i.in_flight.div_ceil(mss)); // tcpi_unacked (segments)
    put32(&mut b, 60, u32::from(i.snd_mss) + 40); // tcpi_pmtu (IPv4, no options)
    put32(&mut b, 68, i.rtt.map_or(0, micros)); // tcpi_rtt
    put32(&mut b, 72, i.rttvar.map_or(0, micros)); // tcpi_rttvar
    put32(&mut b, 76, i.ssthresh / mss); // tcpi_snd_ssthresh (segments)
    put32(&mut b, 80, i.cwnd.div_ceil(mss)); // tcpi_snd_cwnd (segments)
    put32(&mut b, 84, u32::from(i.snd_mss)); // tcpi_advmss
    put32(
        &mut b,
        100,
        u32::try_from(i.retransmits).unwrap_or(u32::MAX),
    ); // tcpi_total_retrans
    put64(&mut b, 120, i.bytes_acked); // tcpi_bytes_acked
    put64(&mut b, 128, i.bytes_received); // tcpi_bytes_received
    put64(&mut b, 200, i.bytes_sent); // tcpi_bytes_sent
    b
}

/// Copies the first `min(buf.len(), v.len())` bytes of `v`, as Linux's TCP_INFO does for
/// a short buffer; `*out_len` gets what was written.
fn put_prefix(buf: &mut [u8], out_len: &mut usize, v: &[u8]) -> Result<(), c_int> {
    buf.fill(0);
    let n = buf.len().min(v.len());
    buf[..n].copy_from_slice(&v[..n]);
    *out_len = n;
    Ok(())
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn tcp_info(i: &SubflowInfo, backup: bool) -> mptun_tcp_info {
    mptun_tcp_info {
        tcpi_state: i.state,
        tcpi_backup: u8::from(backup),
        tcpi_rtt_valid: u8::from(i.rtt.is_some()),
        tcpi_snd_mss: u32::from(i.snd_mss),
        tcpi_rcv_mss: u32::from(i.rcv_mss),
        tcpi_rto: micros(i.rto),
        tcpi_rtt: i.rtt.map_or(0, micros),
        tcpi_rttvar: i.rttvar.map_or(0, micros),
        tcpi_snd_cwnd: i.cwnd,
        tcpi_snd_ssthresh: i.ssthresh,
        tcpi_bytes_in_flight: i.in_flight,
        tcpi_bytes_sent: i.bytes_sent,
        tcpi_bytes_acked: i.bytes_acked,
        tcpi_bytes_received: i.bytes_received,
        tcpi_data_sent: i.data_sent,
        tcpi_data_received: i.data_received,
        tcpi_total_retrans: i.retransmits,
        ..mptun_tcp_info::default()
    }
}

/// The struct's bytes, padding included as zeros (it has none besides the explicit pads).
fn tcp_info_bytes(t: &mptun_tcp_info) -> [u8; size_of::<mptun_tcp_info>()] {
    let mut b = [0u8; size_of::<mptun_tcp_info>()];
    b[0] = t.tcpi_state;
    b[1] = t.tcpi_backup;
    b[2] = t.tcpi_rtt_valid;
    let words = [
        t.tcpi_snd_mss,
        t.tcpi_rcv_mss,
        t.tcpi_rto,
        t.tcpi_rtt,
        t.tcpi_rttvar,
        t.tcpi_snd_cwnd,
        t.tcpi_snd_ssthresh,
        t.tcpi_bytes_in_flight,
        0,
    ];
    for (i, w) in words.iter().enumerate() {
        b[4 + 4 * i..8 + 4 * i].copy_from_slice(&w.to_ne_bytes());
    }
    let longs = [
        t.tcpi_bytes_sent,
        t.tcpi_bytes_acked,
        t.tcpi_bytes_received,
        t.tcpi_data_sent,
        t.tcpi_data_received,
        t.tcpi_total_retrans,
    ];
    for (i, w) in longs.iter().enumerate() {
        b[40 + 8 * i..48 + 8 * i].copy_from_slice(&w.to_ne_bytes());
    }
    b
}

fn sub_setsockopt(s: &MptcpStream, buf: &[u8]) -> Result<(), c_int> {
    let a: mptcp_sub_setsockopt = read_struct(buf)?;
    let len = a.optlen as usize;
    if len > 0 && a.optval.is_null() {
        return Err(libc::EFAULT);
    }
    let val: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: the caller passes `optlen` readable bytes at `optval` (non-NULL).
        unsafe { core::slice::from_raw_parts(a.optval as *const u8, len) }
    };
    let id = u32::from(a.id);
    let Some(name) = sub_opt_name(a.level, a.optname) else {
        // an unknown option on an unknown id is still an unknown id
        s.subflow_tuple(id).map_err(sub_errno)?;
        return Err(libc::ENOPROTOOPT);
    };
    s.set_subflow_option(id, opt_from_int(name, val)?)
        .map_err(sub_errno)
}

/// The per-subflow option a (level, optname) pair names (TCP_INFO aside: get only).
fn sub_opt_name(level: c_int, optname: c_int) -> Option<SubflowOptName> {
    match (level, optname) {
        (libc::IPPROTO_TCP, libc::TCP_NODELAY) => Some(SubflowOptName::NoDelay),
        (libc::IPPROTO_TCP, libc::TCP_MAXSEG) => Some(SubflowOptName::MaxSeg),
        (libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT) => Some(SubflowOptName::UserTimeout),
        (libc::IPPROTO_IP, libc::IP_TOS) => Some(SubflowOptName::Tos),
        (SOL_MPTCP, MPTUN_SUB_BACKUP) => Some(SubflowOptName::Backup),
        _ => None,
    }
}

/// Maps a stack error to errno (for Rust callers of this module's helpers).
pub fn stack_errno(e: StackError) -> c_int {
    io_errno(&to_io(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_round_trip_v4_v6() {
        for a in ["198.18.1.2:5201", "[2001:db8::1]:443"] {
            let a: SocketAddr = a.parse().unwrap();
            let mut b = [0u8; SOCKADDR_IN6_LEN];
            let n = write_sockaddr(&a, &mut b);
            assert_eq!(n, sockaddr_len(&a));
            assert_eq!(read_sockaddr(&b[..n]), Ok(a));
            assert_eq!(read_sockaddr(&b[..n - 1]), Err(libc::EINVAL));
        }
        assert_eq!(read_sockaddr(&[0u8; 16]), Err(libc::EAFNOSUPPORT));
        assert_eq!(read_sockaddr(&[2u8]), Err(libc::EINVAL));
    }

    #[test]
    fn sockaddr_matches_libc_layout() {
        let a: SocketAddr = "198.19.12.3:4660".parse().unwrap();
        let mut b = [0u8; SOCKADDR_IN_LEN];
        write_sockaddr(&a, &mut b);
        // SAFETY: 16 initialised bytes read as a plain-integer C struct.
        let s: libc::sockaddr_in = unsafe { core::ptr::read_unaligned(b.as_ptr() as *const _) };
        assert_eq!(s.sin_family as c_int, libc::AF_INET);
        assert_eq!(u16::from_be(s.sin_port), 4660);
        assert_eq!(u32::from_be(s.sin_addr.s_addr), 0xc6130c03);
    }

    #[test]
    fn config_parsing() {
        let c = parse_config(
            "tun0=198.18.1.2, tun1=198.18.2.2,pm=fullmesh,impair:tun1=delay=40ms+loss=1%",
        )
        .unwrap();
        assert_eq!(c.tuns.len(), 2);
        assert!(c.tuns[1].2.is_some() && c.tuns[0].2.is_none());
        assert_eq!(c.path_manager.as_deref(), Some("fullmesh"));
        assert_eq!(conn_config(&c).local_addrs.len(), 2);
        assert_eq!(
            conn_config(&parse_config("t=1.2.3.4").unwrap()).path_manager,
            "manual"
        );
        let c = parse_config("a=1.2.3.4,b=1.2.3.5,signal=1.2.3.5,wscale=8,timestamps=0,seed=7")
            .unwrap();
        let cc = conn_config(&c);
        assert_eq!(cc.tcp.window_scale, 8);
        assert!(!cc.tcp.timestamps);
        assert_eq!(c.seed, Some(7));
        assert_eq!(
            cc.local_addrs
                .iter()
                .map(|l| l.announce)
                .collect::<Vec<_>>(),
            [false, true]
        );
        for bad in [
            "",
            "tun0",
            "tun0=notanip",
            "tun0=1.2.3.4,tun0=1.2.3.5",
            "tun0=1.2.3.4,pm=bogus",
            "tun0=1.2.3.4,sched=bogus",
            "tun0=1.2.3.4,cc=bogus",
            "impair:tun9=delay=1ms,tun0=1.2.3.4",
            "tun0=1.2.3.4,impair:tun0=bogus=1",
            "tun0=1.2.3.4,wscale=15",
            "tun0=1.2.3.4,sack=2",
            "tun0=1.2.3.4,mtu=100",
            "tun0=1.2.3.4,signal=1.2.3.5",
            "tun0=1.2.3.4,seed=x",
            "averyveryverylongname=1.2.3.4",
        ] {
            assert!(parse_config(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn tcp_info_bytes_match_the_struct() {
        let t = mptun_tcp_info {
            tcpi_state: 1,
            tcpi_backup: 1,
            tcpi_rtt_valid: 1,
            tcpi_snd_mss: 1400,
            tcpi_rtt: 12345,
            tcpi_bytes_sent: 0x0102030405060708,
            tcpi_total_retrans: 9,
            ..Default::default()
        };
        let b = tcp_info_bytes(&t);
        // SAFETY: 88 initialised bytes read as the repr(C) struct of integers.
        let back: mptun_tcp_info = unsafe { core::ptr::read_unaligned(b.as_ptr() as *const _) };
        assert_eq!(back, t);
    }

    #[test]
    fn mptcp_info_bytes_layout() {
        let i = crate::mptcp::ConnInfo {
            fallback: true,
            checksum: true,
            local_token: 0x01020304,
            remote_token: 9,
            subflows: 3,
            bytes_acked: 77,
            retransmits: 7,
            reinjected: 5,
            ..Default::default()
        };
        let b = mptcp_info_bytes(&i);
        let u32at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().unwrap());
        let u64at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().unwrap());
        assert_eq!(b[0], 2, "subflows besides the initial one");
        assert_eq!(
            u32at(8),
            MPTCP_INFO_FLAG_FALLBACK | MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED
        );
        assert_eq!(u32at(12), 0x01020304);
        assert_eq!(b[42], 1);
        assert_eq!(u32at(44), 7);
        assert_eq!(u64at(48), 5);
        assert_eq!(u64at(72), 77);
        assert_eq!(b[80], 3);
    }

    #[test]
    fn event_bytes_layout() {
        use crate::mptcp::ConnEvent;
        let a: SocketAddr = "[2001:2::7]:8080".parse().unwrap();
        let b = event_bytes(&ConnEvent::AddressAnnounced {
            addr_id: 5,
            addr: a,
        });
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), MPTUN_EVENT_ADDR_ANNOUNCED);
        assert_eq!(b[8], 5);
        assert_eq!(read_sockaddr(&b[16..44]), Ok(a));
        let b = event_bytes(&ConnEvent::SubflowClosed {
            id: 300,
            reason: crate::tcp::CloseReason::Timeout,
        });
        assert_eq!(u16::from_ne_bytes([b[0], b[1]]), MPTUN_EVENT_SUB_CLOSED);
        assert_eq!(u16::from_ne_bytes([b[2], b[3]]), 2);
        assert_eq!(u32::from_ne_bytes([b[4], b[5], b[6], b[7]]), 300);
        assert!(b[16..].iter().all(|&x| x == 0), "no address: zeros");
        let b = event_bytes(&ConnEvent::Closed {
            error: Some(crate::mptcp::ConnError::Refused),
        });
        assert_eq!(
            u16::from_ne_bytes([b[10], b[11]]),
            libc::ECONNREFUSED as u16
        );
        let b = event_bytes(&ConnEvent::SubflowPriority {
            id: 2,
            backup: true,
        });
        assert_eq!(
            (b[9], u16::from_ne_bytes([b[0], b[1]])),
            (1, MPTUN_EVENT_SUB_PRIORITY)
        );
    }

    #[test]
    fn int_output_reports_needed_size() {
        let mut b = [0xffu8; 2];
        let mut n = 2;
        assert_eq!(put_int(&mut b, &mut n, 7), Err(libc::EINVAL));
        assert_eq!(n, 4);
        assert_eq!(b, [0, 0], "short buffer zeroed, not left with stale bytes");
        let mut b = [0xffu8; 8];
        let mut n = 8;
        assert_eq!(put_int(&mut b, &mut n, 7), Ok(()));
        assert_eq!(n, 4);
        assert_eq!(&b[..4], &7i32.to_ne_bytes());
        assert_eq!(&b[4..], &[0; 4]);
    }
}
