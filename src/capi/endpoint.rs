//! Endpoints (Linux's `ip mptcp endpoint`) at run time.

use super::*;

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

pub(super) unsafe fn c_addr(addr: *const c_char) -> Result<IpAddr, c_int> {
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

pub(super) fn endpoint_set(ctx: &Ctx, addr: IpAddr, flags: c_uint) -> Result<c_int, c_int> {
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

pub(super) fn endpoint_del(ctx: &Ctx, addr: IpAddr) -> Result<c_int, c_int> {
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
