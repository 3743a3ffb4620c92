//! `mptun_poll` over mptun descriptors.

use super::*;

// ----- poll -------------------------------------------------------------------------------

pub(super) enum PollTarget {
    Ignore,
    Invalid,
    Fresh,
    Stream(ConnId),
    Listener(u16, Arc<Listen>),
}

/// What `fd` is for `mptun_poll`, and the stack it lives on.
pub(super) fn poll_target(fd: c_int) -> (PollTarget, Option<Arc<Ctx>>) {
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

pub(super) fn readiness(s: &mut Stack, t: &PollTarget) -> i16 {
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
