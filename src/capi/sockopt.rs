//! `mptun_getsockopt` / `mptun_setsockopt`: the draft's subflow operations and the
//! socket options.

use super::*;

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

pub(super) fn getsockopt_impl(
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

pub(super) fn setsockopt_impl(
    sock: &Sock,
    level: c_int,
    optname: c_int,
    buf: &[u8],
) -> Result<(), c_int> {
    match (level, optname) {
        (libc::IPPROTO_TCP, MPTCP_SUB_SETSOCKOPT) => sub_setsockopt(&*stream_of(sock)?, buf),
        (SOL_MPTCP, MPTUN_ANNOUNCE) => announce(&*stream_of(sock)?, buf),
        (SOL_MPTCP, MPTUN_REMOVE_ADDR) => {
            let v: [u8; 4] = buf.try_into().map_err(|_| libc::EINVAL)?;
            let id = u8::try_from(c_int::from_ne_bytes(v)).map_err(|_| libc::EINVAL)?;
            stream_of(sock)?.remove_address(id).map_err(sub_errno)
        }
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
pub(super) fn put_int(buf: &mut [u8], out_len: &mut usize, v: c_int) -> Result<(), c_int> {
    put_bytes(buf, out_len, &v.to_ne_bytes())
}

pub(super) fn put_bytes(buf: &mut [u8], out_len: &mut usize, v: &[u8]) -> Result<(), c_int> {
    buf.fill(0);
    if buf.len() < v.len() {
        *out_len = v.len();
        return Err(libc::EINVAL);
    }
    buf[..v.len()].copy_from_slice(v);
    *out_len = v.len();
    Ok(())
}

pub(super) fn id8(id: u32) -> Result<u8, c_int> {
    u8::try_from(id).map_err(|_| libc::EOVERFLOW)
}

pub(super) fn get_sub_ids(
    s: &MptcpStream,
    buf: &mut [u8],
    out_len: &mut usize,
) -> Result<(), c_int> {
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

pub(super) fn get_sub_tuple(
    s: &MptcpStream,
    buf: &mut [u8],
    out_len: &mut usize,
) -> Result<(), c_int> {
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
pub(super) fn open_sub_tuple(s: &MptcpStream, buf: &mut [u8]) -> Result<(), c_int> {
    let alen = sockaddr_len_at(buf, 2)?;
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

/// The length of the `sockaddr_in` / `sockaddr_in6` at `buf[off..]`, from its family.
fn sockaddr_len_at(buf: &[u8], off: usize) -> Result<usize, c_int> {
    let fam = buf
        .get(off..off + 2)
        .map(|f| c_int::from(u16::from_ne_bytes([f[0], f[1]])))
        .ok_or(libc::EINVAL)?;
    match fam {
        libc::AF_INET => Ok(SOCKADDR_IN_LEN),
        libc::AF_INET6 => Ok(SOCKADDR_IN6_LEN),
        _ => Err(libc::EINVAL),
    }
}

/// MPTUN_ANNOUNCE: id, pad, then one sockaddr (its family gives its length; the buffer may
/// be longer).
fn announce(s: &MptcpStream, buf: &[u8]) -> Result<(), c_int> {
    let alen = sockaddr_len_at(buf, 2)?;
    let sa = buf.get(2..2 + alen).ok_or(libc::EINVAL)?;
    let addr = read_sockaddr(sa).map_err(|_| libc::EINVAL)?;
    s.announce_address(buf[0], addr).map_err(sub_errno)
}

pub(super) fn close_sub_id(s: &MptcpStream, buf: &mut [u8]) -> Result<(), c_int> {
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

pub(super) fn read_struct<T: Copy>(buf: &[u8]) -> Result<T, c_int> {
    if buf.len() != size_of::<T>() {
        return Err(libc::EINVAL);
    }
    // SAFETY: `buf` holds exactly size_of::<T>() bytes; T is one of this module's
    // repr(C) structs of integers and raw pointers, for which any bit pattern is valid;
    // read_unaligned copes with the byte buffer's alignment.
    Ok(unsafe { core::ptr::read_unaligned(buf.as_ptr() as *const T) })
}

pub(super) fn sub_getsockopt(s: &MptcpStream, buf: &mut [u8]) -> Result<(), c_int> {
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

pub(super) fn sub_get(
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
pub(super) fn put_prefix(buf: &mut [u8], out_len: &mut usize, v: &[u8]) -> Result<(), c_int> {
    buf.fill(0);
    let n = buf.len().min(v.len());
    buf[..n].copy_from_slice(&v[..n]);
    *out_len = n;
    Ok(())
}

pub(super) fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

pub(super) fn tcp_info(i: &SubflowInfo, backup: bool) -> mptun_tcp_info {
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
pub(super) fn tcp_info_bytes(t: &mptun_tcp_info) -> [u8; size_of::<mptun_tcp_info>()] {
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

pub(super) fn sub_setsockopt(s: &MptcpStream, buf: &[u8]) -> Result<(), c_int> {
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
pub(super) fn sub_opt_name(level: c_int, optname: c_int) -> Option<SubflowOptName> {
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
