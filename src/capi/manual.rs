//! Manually driven instances (`mptun_instance_*`): the stack sans-IO behind the C ABI, for
//! simulators and packetdrill.

use super::*;

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
pub(super) struct CWakeup {
    f: unsafe extern "C" fn(*mut c_void),
    arg: usize,
}

/// Creates an instance from a configuration in `mptun_init`'s syntax, where each `NAME=ADDR`
/// only names one of its addresses (no device is opened), plus `seed=N` and `mtu=N`;
/// `impair:` items are refused (the embedder owns the links).
pub fn instance_new(config: &str) -> Result<Box<mptun_instance>, c_int> {
    let c = parse_config(config).map_err(|e| {
        tracing::warn!("mptun_instance_new: {e}");
        libc::EINVAL
    })?;
    if c.tuns.iter().any(|t| t.2.is_some()) {
        tracing::warn!(
            "mptun_instance_new: impair: is for TUN devices; the embedder owns the links"
        );
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

pub(super) unsafe fn instance_ref<'a>(
    inst: *const mptun_instance,
) -> Result<&'a mptun_instance, c_int> {
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
