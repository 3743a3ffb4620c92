//! The socket calls: socket, bind, listen, accept, connect, send, recv, shutdown, close,
//! fcntl, getsockname, getpeername.

use super::*;

// ----- sockets ----------------------------------------------------------------------------------

/// `int mptun_socket(int domain, int type, int protocol)`: `AF_INET`/`AF_INET6`,
/// `SOCK_STREAM` (optionally `| SOCK_NONBLOCK | SOCK_CLOEXEC`); protocol 0 or
/// `IPPROTO_MPTCP` for MPTCP, `IPPROTO_TCP` for plain TCP (no MP_CAPABLE).
#[no_mangle]
pub extern "C" fn mptun_socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    guard(-1, || new_socket(runtime()?, domain, ty, protocol))
}

pub(super) fn new_socket(
    ctx: Arc<Ctx>,
    domain: c_int,
    ty: c_int,
    protocol: c_int,
) -> Result<c_int, c_int> {
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

pub(super) fn family_of(domain: c_int) -> u16 {
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

pub(super) fn sockaddr_len(a: &SocketAddr) -> usize {
    if a.is_ipv4() {
        SOCKADDR_IN_LEN
    } else {
        SOCKADDR_IN6_LEN
    }
}

/// Reads a `(const struct sockaddr *, socklen_t)` argument of `sock`'s family.
pub(super) unsafe fn sockaddr_arg(
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

pub(super) fn sock_config(sock: &Sock, base: ConnConfig) -> ConnConfig {
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
pub(super) fn conn_tcp_opt(optname: c_int) -> Option<SubflowOptName> {
    match optname {
        libc::TCP_NODELAY => Some(SubflowOptName::NoDelay),
        libc::TCP_MAXSEG => Some(SubflowOptName::MaxSeg),
        libc::TCP_USER_TIMEOUT => Some(SubflowOptName::UserTimeout),
        _ => None,
    }
}

/// An option's value as the int the socket calls use.
pub(super) fn opt_int(v: SubflowOpt) -> c_int {
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
pub(super) fn opt_from_int(name: SubflowOptName, buf: &[u8]) -> Result<SubflowOpt, c_int> {
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
pub(super) fn limits_bytes(l: &crate::pm::Limits) -> [u8; MPTUN_LIMITS_LEN] {
    let mut b = [0u8; MPTUN_LIMITS_LEN];
    b[0..4].copy_from_slice(&l.max_subflows.to_ne_bytes());
    b[4..8].copy_from_slice(&l.max_add_addr_accepted.to_ne_bytes());
    b[8..12].copy_from_slice(&l.max_announced.to_ne_bytes());
    b
}

pub(super) fn limits_from(buf: &[u8]) -> Result<crate::pm::Limits, c_int> {
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
pub(super) fn sock_limits(sock: &Sock) -> Result<crate::pm::Limits, c_int> {
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
pub(super) unsafe fn store_sockaddr(
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
pub(super) unsafe fn store_name(
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

pub(super) fn unspecified(domain: c_int) -> SocketAddr {
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

pub(super) const SEND_FLAGS: c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
pub(super) const RECV_FLAGS: c_int = libc::MSG_DONTWAIT | libc::MSG_WAITALL | libc::MSG_PEEK;

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

pub(super) fn close_sock(sock: &Sock) {
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

pub(super) fn close_fd(fd: c_int) -> Result<c_int, c_int> {
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
