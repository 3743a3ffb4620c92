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

mod abi;
mod config;
mod endpoint;
mod manual;
mod poll;
mod socket;
mod sockopt;

pub use abi::*;
pub use config::*;
pub use endpoint::*;
pub use manual::*;
pub use poll::*;
pub use socket::*;
pub use sockopt::*;

// ----- errno and the panic guard ------------------------------------------------------------

pub(super) fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() = e }
}

/// Runs an entry point's body: `Err(errno)` and panics become `fail` with errno set.
pub(super) fn guard<T: Copy>(fail: T, f: impl FnOnce() -> Result<T, c_int>) -> T {
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

pub(super) fn sub_errno(e: SubflowApiError) -> c_int {
    e.errno()
}

// ----- global state -------------------------------------------------------------------------

/// A stack the socket calls run on: the threaded runtime of `mptun_init`, or a manually
/// driven instance (`mptun_instance_new`). Every descriptor belongs to one.
pub(super) struct Ctx {
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

pub(super) struct Global {
    rt: Runtime,
    ctx: Arc<Ctx>,
}

pub(super) static GLOBAL: Mutex<Option<Global>> = Mutex::new(None);
pub(super) static FDS: Mutex<Vec<Option<Arc<Sock>>>> = Mutex::new(Vec::new());

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means a panic (caught at the boundary) while it was held; the
    // tables stay structurally valid.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The threaded runtime's context (ENETDOWN before `mptun_init` / after `mptun_fini`).
pub(super) fn runtime() -> Result<Arc<Ctx>, c_int> {
    let g = lock(&GLOBAL);
    Ok(g.as_ref().ok_or(libc::ENETDOWN)?.ctx.clone())
}

pub(super) struct Sock {
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
pub(super) struct TcpOpts {
    nodelay: Option<bool>,
    user_timeout: Option<Option<Duration>>,
    /// SO_SNDBUF / SO_RCVBUF set before connect or listen: the connection-level buffers.
    sndbuf: Option<usize>,
    rcvbuf: Option<usize>,
}

pub(super) enum SockState {
    Fresh { bound: Option<SocketAddr> },
    Listening(Arc<Listen>),
    Connected(Arc<MptcpStream>),
}

pub(super) struct Listen {
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

pub(super) fn get_sock(fd: c_int) -> Result<Arc<Sock>, c_int> {
    let t = lock(&FDS);
    usize::try_from(fd)
        .ok()
        .and_then(|i| t.get(i))
        .and_then(|s| s.clone())
        .ok_or(libc::EBADF)
}

/// Removes every descriptor of `ctx` from the table and returns their sockets.
pub(super) fn take_socks(ctx: &Arc<Ctx>) -> Vec<Arc<Sock>> {
    let mut t = lock(&FDS);
    let mut out = Vec::new();
    for e in t.iter_mut() {
        if e.as_ref().is_some_and(|s| Arc::ptr_eq(&s.ctx, ctx)) {
            out.extend(e.take());
        }
    }
    out
}

pub(super) fn insert_sock(s: Sock) -> Result<c_int, c_int> {
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

pub(super) fn stream_of(sock: &Sock) -> Result<Arc<MptcpStream>, c_int> {
    match &*lock(&sock.state) {
        SockState::Connected(s) => Ok(s.clone()),
        _ => Err(libc::ENOTCONN),
    }
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
