//! Application API: `MptcpStream` / `MptcpListener`, shaped like `std::net::TcpStream` /
//! `TcpListener`, over a running stack.
//!
//! Threading: the stack lives behind a mutex in a [`StackHandle`]. An I/O driver (the TUN
//! runtime in `crate::io::driver`, or any other) owns the packet devices, runs the stack's
//! sans-IO loop on its own thread and calls [`StackHandle::notify`] after each round;
//! application threads call into the stack under the lock and block on a condition variable.
//! Writes and closes nudge the driver through a [`DriverWaker`] so it transmits at once.

pub mod manual;
pub mod subflow;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;

pub use subflow::{
    CloseHow, SubflowApiError, SubflowInfo, SubflowOpt, SubflowOptName, SubflowStatus,
};

use crate::mptcp::{ConnConfig, ConnEvent, ConnInfo};
use crate::stack::{ConnId, Stack, StackError};
use crate::time::Instant;
use core::net::{IpAddr, SocketAddr};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Wakes the I/O driver (e.g. an eventfd it polls).
pub trait DriverWaker: Send + Sync {
    fn wake(&self);
}

/// Reads the driver's clock.
pub trait ClockSource: Send + Sync {
    fn now(&self) -> Instant;
}

/// What application threads and the driver share.
pub struct Core {
    pub stack: Stack,
    /// The driver stopped (with an error message if it failed).
    pub stopped: Option<String>,
}

struct Shared {
    core: Mutex<Core>,
    cond: Condvar,
    /// Async tasks waiting for the stack to change (woken with the blocked threads).
    wakers: Mutex<Vec<std::task::Waker>>,
    waker: Box<dyn DriverWaker>,
    clock: Box<dyn ClockSource>,
}

/// A cloneable handle on a running stack.
#[derive(Clone)]
pub struct StackHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StackHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StackHandle")
    }
}

pub(crate) fn to_io(e: StackError) -> io::Error {
    let kind = match e {
        StackError::InvalidHandle => io::ErrorKind::NotConnected,
        StackError::NoAddress => io::ErrorKind::AddrNotAvailable,
        StackError::AddrInUse => io::ErrorKind::AddrInUse,
        StackError::NoPorts => io::ErrorKind::AddrNotAvailable,
        StackError::WouldBlock => io::ErrorKind::WouldBlock,
        StackError::NotConnected => io::ErrorKind::NotConnected,
        StackError::Closed(Some(crate::mptcp::ConnError::Refused)) => {
            io::ErrorKind::ConnectionRefused
        }
        StackError::Closed(Some(crate::mptcp::ConnError::TimedOut)) => io::ErrorKind::TimedOut,
        StackError::Closed(Some(_)) => io::ErrorKind::ConnectionReset,
        StackError::Closed(None) => io::ErrorKind::BrokenPipe,
        StackError::Shutdown => io::ErrorKind::BrokenPipe,
        StackError::InvalidInput => io::ErrorKind::InvalidInput,
    };
    io::Error::new(kind, e)
}

impl StackHandle {
    /// Wrap a stack for sharing with a driver.
    pub fn new(stack: Stack, waker: Box<dyn DriverWaker>, clock: Box<dyn ClockSource>) -> Self {
        StackHandle {
            shared: Arc::new(Shared {
                core: Mutex::new(Core {
                    stack,
                    stopped: None,
                }),
                cond: Condvar::new(),
                wakers: Mutex::new(Vec::new()),
                waker,
                clock,
            }),
        }
    }

    /// Lock the stack. Poisoning (a panic elsewhere while locked) is surfaced as the guard
    /// anyway: the stack's state stays consistent between calls.
    pub fn lock(&self) -> MutexGuard<'_, Core> {
        self.shared.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The driver's current time.
    pub fn now(&self) -> Instant {
        self.shared.clock.now()
    }

    /// Wake threads blocked in the API (the driver calls this after each round).
    pub fn notify(&self) {
        self.shared.cond.notify_all();
        let woken = {
            let mut w = self.shared.wakers.lock().unwrap_or_else(|p| p.into_inner());
            if w.is_empty() {
                return;
            }
            std::mem::take(&mut *w)
        };
        for w in woken {
            w.wake();
        }
    }

    /// The async counterpart of `wait_for`: `Ready` with `ready`'s answer, or with an error
    /// if the driver stopped; otherwise `Pending`, and the task is woken after the driver's
    /// next round. The waker is registered before `ready` runs, so no round is missed.
    pub fn poll_stack<R>(
        &self,
        cx: &mut std::task::Context<'_>,
        ready: impl FnOnce(&mut Stack) -> Option<io::Result<R>>,
    ) -> std::task::Poll<io::Result<R>> {
        {
            let mut w = self.shared.wakers.lock().unwrap_or_else(|p| p.into_inner());
            if !w.iter().any(|x| x.will_wake(cx.waker())) {
                w.push(cx.waker().clone());
            }
        }
        let mut g = self.lock();
        if let Some(r) = ready(&mut g.stack) {
            return std::task::Poll::Ready(r);
        }
        if let Some(why) = &g.stopped {
            return std::task::Poll::Ready(Err(stopped_error(why)));
        }
        std::task::Poll::Pending
    }

    /// Nudge the driver to run the stack now.
    pub fn wake_driver(&self) {
        self.shared.waker.wake();
    }

    /// Mark the driver stopped; blocked calls fail with this message.
    pub fn set_stopped(&self, why: String) {
        self.lock().stopped = Some(why);
        self.notify();
    }

    /// Run `f` with the stack locked.
    pub fn with_stack<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        f(&mut self.lock().stack)
    }

    /// Block until `ready` returns `Some`, the deadline passes (`TimedOut`) or the driver stops.
    pub(crate) fn wait_for<R>(
        &self,
        deadline: Option<Instant>,
        mut ready: impl FnMut(&mut Stack) -> Option<io::Result<R>>,
    ) -> io::Result<R> {
        let mut g = self.lock();
        loop {
            if let Some(r) = ready(&mut g.stack) {
                return r;
            }
            if let Some(why) = &g.stopped {
                return Err(stopped_error(why));
            }
            g = match deadline {
                None => {
                    self.shared
                        .cond
                        .wait_timeout(g, Duration::from_millis(200))
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                Some(d) => {
                    let left = d.saturating_duration_since(self.now());
                    if left.is_zero() {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "operation timed out",
                        ));
                    }
                    self.shared
                        .cond
                        .wait_timeout(g, left.min(Duration::from_millis(200)))
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }
}

/// An MPTCP connection, used like `std::net::TcpStream`.
#[derive(Debug)]
pub struct MptcpStream {
    handle: StackHandle,
    id: ConnId,
    inner: Arc<StreamState>,
}

#[derive(Debug)]
struct StreamState {
    opts: Mutex<StreamOpts>,
}

#[derive(Debug, Default, Clone, Copy)]
struct StreamOpts {
    nonblocking: bool,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// `shutdown(Write)` was called: writes fail with `BrokenPipe` instead of waiting for
    /// send-buffer room that never comes.
    write_shut: bool,
    /// `shutdown(Read)` was called: reads return end of stream.
    read_shut: bool,
}

impl MptcpStream {
    /// Connect to `remote` with the stack's default settings.
    pub fn connect(handle: &StackHandle, remote: SocketAddr) -> io::Result<MptcpStream> {
        Self::connect_with(handle, remote, None, None, None)
    }

    /// Connect from `local` (or any address) with `cfg` (or the defaults), waiting at most
    /// `timeout` for the handshake.
    pub fn connect_with(
        handle: &StackHandle,
        remote: SocketAddr,
        local: Option<IpAddr>,
        cfg: Option<ConnConfig>,
        timeout: Option<Duration>,
    ) -> io::Result<MptcpStream> {
        let stream = Self::connect_start(handle, remote, local, cfg)?;
        let id = stream.id;
        let deadline = timeout.map(|t| handle.now() + t);
        let res = handle.wait_for(deadline, |s| handshake_state(s, id).transpose());
        if let Err(e) = res {
            handle.with_stack(|s| {
                let _ = s.abort(id);
            });
            return Err(e); // dropping `stream` closes the connection
        }
        Ok(stream)
    }

    /// Start connecting and return at once (a non-blocking connect): the stream exists
    /// while the handshake runs; [`MptcpStream::connect_result`] tells when it completed or
    /// failed. Writes made before that are queued and sent once established.
    pub fn connect_start(
        handle: &StackHandle,
        remote: SocketAddr,
        local: Option<IpAddr>,
        cfg: Option<ConnConfig>,
    ) -> io::Result<MptcpStream> {
        let now = handle.now();
        let id = handle
            .with_stack(|s| s.connect(now, remote, local, cfg))
            .map_err(to_io)?;
        handle.wake_driver();
        Ok(MptcpStream::from_id(handle.clone(), id))
    }

    /// `Ok(true)` once the handshake completed, `Ok(false)` while it runs, the error
    /// (refused, timed out, reset) if it failed.
    pub fn connect_result(&self) -> io::Result<bool> {
        self.handle
            .with_stack(|s| handshake_state(s, self.id))
            .map(|r| r.is_some())
    }

    pub(crate) fn from_id(handle: StackHandle, id: ConnId) -> Self {
        MptcpStream {
            handle,
            id,
            inner: Arc::new(StreamState {
                opts: Mutex::new(StreamOpts::default()),
            }),
        }
    }

    fn opts(&self) -> StreamOpts {
        *self.inner.opts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The stack's handle of this connection.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The stack this stream lives in.
    pub fn stack(&self) -> &StackHandle {
        &self.handle
    }

    /// Remote address of the initial subflow.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.handle.with_stack(|s| {
            s.connection(self.id)
                .and_then(|c| c.subflows().first().map(|f| f.remote))
                .ok_or_else(|| to_io(StackError::InvalidHandle))
        })
    }

    /// Local address of the initial subflow.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.handle.with_stack(|s| {
            s.connection(self.id)
                .and_then(|c| c.subflows().first().map(|f| f.local))
                .ok_or_else(|| to_io(StackError::InvalidHandle))
        })
    }

    /// Connection-level statistics (like Linux's MPTCP_INFO).
    pub fn info(&self) -> io::Result<ConnInfo> {
        self.handle.with_stack(|s| s.info(self.id)).map_err(to_io)
    }

    /// Abort the connection: every subflow is reset, with MP_FASTCLOSE when MPTCP (RFC 8684
    /// 3.5); data not yet acknowledged is lost, and reads and writes fail from now on.
    pub fn abort(&self) -> io::Result<()> {
        self.handle
            .with_stack(|s| s.abort(self.id))
            .map_err(to_io)?;
        self.handle.wake_driver();
        Ok(())
    }

    /// Shut down the write half (DATA_FIN), the read half (further data is discarded), or both.
    ///
    /// With the `tokio` feature this inherent method, like `std::net::TcpStream::shutdown`,
    /// shadows `tokio::io::AsyncWriteExt::shutdown` in method-call syntax: `s.shutdown()`
    /// (no argument) does not compile. Call the async one as
    /// `AsyncWriteExt::shutdown(&mut s).await` (it is `shutdown(Shutdown::Write)`, which
    /// never waits), or call this one from async code as it is.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let now = self.handle.now();
            self.handle
                .with_stack(|s| s.shutdown(now, self.id))
                .map_err(to_io)?;
            self.set_opt(|o| o.write_shut = true);
            self.handle.wake_driver();
        }
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.set_opt(|o| o.read_shut = true);
        }
        Ok(())
    }

    fn set_opt(&self, f: impl FnOnce(&mut StreamOpts)) {
        f(&mut self.inner.opts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Non-blocking mode: reads and writes return `WouldBlock` instead of waiting.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.set_opt(|o| o.nonblocking = on);
        Ok(())
    }

    /// Read timeout (`None`: wait forever). A zero duration is an error, as for TcpStream.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "zero timeout"));
        }
        self.set_opt(|o| o.read_timeout = t);
        Ok(())
    }

    /// Write timeout (`None`: wait forever).
    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        if t == Some(Duration::ZERO) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "zero timeout"));
        }
        self.set_opt(|o| o.write_timeout = t);
        Ok(())
    }

    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts().read_timeout)
    }

    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.opts().write_timeout)
    }

    /// Another handle on the same connection (shares options, like `TcpStream::try_clone`).
    pub fn try_clone(&self) -> io::Result<MptcpStream> {
        Ok(MptcpStream {
            handle: self.handle.clone(),
            id: self.id,
            inner: self.inner.clone(),
        })
    }

    /// Next event of this connection (subflow established/closed, fallback, peer closed...).
    pub fn poll_event(&self) -> Option<ConnEvent> {
        self.handle.with_stack(|s| s.poll_conn_event(self.id))
    }

    /// Wait until all written data and the DATA_FIN are acknowledged, or the timeout passes.
    pub fn wait_all_acked(&self, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.map(|t| self.handle.now() + t);
        self.handle
            .wait_for(deadline, |s| match s.connection(self.id) {
                None => Some(Err(to_io(StackError::InvalidHandle))),
                Some(c) if c.all_acked() => Some(Ok(())),
                Some(c) => c.error().map(|e| Err(to_io(StackError::Closed(Some(e))))),
            })
    }

    /// Wait until the connection is fully closed (both directions, subflows closed).
    pub fn wait_closed(&self, timeout: Option<Duration>) -> io::Result<()> {
        let deadline = timeout.map(|t| self.handle.now() + t);
        self.handle
            .wait_for(deadline, |s| match s.connection(self.id) {
                None => Some(Ok(())),
                Some(c) if c.is_closed() => Some(
                    c.error()
                        .map_or(Ok(()), |e| Err(to_io(StackError::Closed(Some(e))))),
                ),
                Some(_) => None,
            })
    }
}

/// What calls waiting on a stopped driver fail with.
fn stopped_error(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, format!("stack stopped: {why}"))
}

/// The handshake of `id`: `Ok(Some(()))` established (or was: later errors are for reads
/// and writes to report), `Ok(None)` still running, `Err` failed.
fn handshake_state(s: &mut Stack, id: ConnId) -> io::Result<Option<()>> {
    match s.connection(id) {
        None => Err(to_io(StackError::InvalidHandle)),
        Some(c) if c.is_established() => Ok(Some(())),
        Some(c) => match c.error() {
            Some(e) => Err(to_io(StackError::Closed(Some(e)))),
            None => Ok(None),
        },
    }
}

/// One receive attempt: `None` if nothing is there yet.
fn try_recv(s: &mut Stack, id: ConnId, buf: &mut [u8]) -> Option<io::Result<usize>> {
    recv_result(s.recv(id, buf))
}

/// One peek attempt: `None` if nothing is readable yet.
fn try_peek(s: &mut Stack, id: ConnId, buf: &mut [u8]) -> Option<io::Result<usize>> {
    recv_result(s.peek(id, buf))
}

fn recv_result(r: Result<usize, StackError>) -> Option<io::Result<usize>> {
    match r {
        Ok(n) => Some(Ok(n)),
        Err(StackError::WouldBlock) => None,
        Err(e) => Some(Err(to_io(e))),
    }
}

/// One send attempt: `None` if the send buffer is full.
fn try_send(s: &mut Stack, id: ConnId, buf: &[u8]) -> Option<io::Result<usize>> {
    match s.send(id, buf) {
        Ok(n) => Some(Ok(n)),
        Err(StackError::WouldBlock) => None,
        Err(e) => Some(Err(to_io(e))),
    }
}

impl MptcpStream {
    /// Reads without removing the data from the receive buffer (like `TcpStream::peek`,
    /// MSG_PEEK): waits as `read` does (blocking, non-blocking, read timeout), returns 0 at
    /// the end of the stream.
    pub fn peek(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(buf, try_peek)
    }

    fn read_with(
        &self,
        buf: &mut [u8],
        op: fn(&mut Stack, ConnId, &mut [u8]) -> Option<io::Result<usize>>,
    ) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let o = self.opts();
        if o.read_shut {
            return Ok(0);
        }
        let id = self.id;
        let attempt = |s: &mut Stack| op(s, id, buf);
        let r = if o.nonblocking {
            self.handle
                .with_stack(attempt)
                .unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into()))
        } else {
            let deadline = o.read_timeout.map(|t| self.handle.now() + t);
            self.handle.wait_for(deadline, attempt).map_err(|e| {
                if e.kind() == io::ErrorKind::TimedOut {
                    io::Error::new(io::ErrorKind::WouldBlock, "read timed out")
                } else {
                    e
                }
            })
        };
        if matches!(r, Ok(n) if n > 0) {
            self.handle.wake_driver(); // window update
        }
        r
    }
}

impl Read for &MptcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_with(buf, try_recv)
    }
}

impl Write for &MptcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let o = self.opts();
        if o.write_shut {
            return Err(to_io(StackError::Shutdown));
        }
        let id = self.id;
        let attempt = |s: &mut Stack| try_send(s, id, buf);
        let r = if o.nonblocking {
            self.handle
                .with_stack(attempt)
                .unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into()))
        } else {
            let deadline = o.write_timeout.map(|t| self.handle.now() + t);
            self.handle.wait_for(deadline, attempt)
        };
        if r.is_ok() {
            self.handle.wake_driver();
        }
        r
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for MptcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for MptcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for MptcpStream {
    fn drop(&mut self) {
        if Arc::strong_count(&self.inner) > 1 {
            return; // another clone keeps the connection
        }
        let now = self.handle.now();
        let id = self.id;
        self.handle.with_stack(|s| {
            let _ = s.shutdown(now, id);
            let _ = s.close(id);
        });
        self.handle.wake_driver();
    }
}

/// Accepts MPTCP (and plain TCP) connections on a port, like `std::net::TcpListener`.
#[derive(Debug)]
pub struct MptcpListener {
    pub(crate) handle: StackHandle,
    port: u16,
    nonblocking: std::sync::atomic::AtomicBool,
}

impl MptcpListener {
    /// Listen on `port` on all of the stack's addresses.
    pub fn bind(handle: &StackHandle, port: u16) -> io::Result<MptcpListener> {
        Self::bind_with(handle, port, None)
    }

    /// Listen with these connection settings for accepted connections.
    pub fn bind_with(
        handle: &StackHandle,
        port: u16,
        cfg: Option<ConnConfig>,
    ) -> io::Result<MptcpListener> {
        handle
            .with_stack(|s| match cfg {
                Some(c) => s.listen_with(port, c),
                None => s.listen(port),
            })
            .map_err(to_io)?;
        Ok(MptcpListener {
            handle: handle.clone(),
            port,
            nonblocking: false.into(),
        })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address listened on, like `TcpListener::local_addr`: the port on every address
    /// of the stack, so the unspecified address (`0.0.0.0:PORT`, or `[::]:PORT` when the
    /// stack has IPv6 addresses only). `io::Result` as in std; it does not fail today.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        let v6_only = self.handle.with_stack(|s| {
            let addrs = &s.config().addrs;
            !addrs.is_empty() && addrs.iter().all(|a| a.is_ipv6())
        });
        let ip: IpAddr = if v6_only {
            core::net::Ipv6Addr::UNSPECIFIED.into()
        } else {
            core::net::Ipv4Addr::UNSPECIFIED.into()
        };
        Ok(SocketAddr::new(ip, self.port))
    }

    /// An iterator over the connections as they are accepted, like
    /// `TcpListener::incoming`: each item is [`MptcpListener::accept`]'s stream (the peer's
    /// address is [`MptcpStream::peer_addr`]). It never returns `None`; in non-blocking
    /// mode an item may be a `WouldBlock` error.
    ///
    /// ```no_run
    /// # fn serve(listener: mptun::api::MptcpListener) -> std::io::Result<()> {
    /// use std::io::Write;
    /// for stream in listener.incoming() {
    ///     let mut stream = stream?;
    ///     stream.write_all(b"hello")?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn incoming(&self) -> Incoming<'_> {
        Incoming { listener: self }
    }

    /// Non-blocking accept.
    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.nonblocking
            .store(on, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Wait for the next established connection.
    pub fn accept(&self) -> io::Result<(MptcpStream, SocketAddr)> {
        self.accept_timeout(None)
    }

    /// Wait at most `timeout` for the next established connection.
    pub fn accept_timeout(
        &self,
        timeout: Option<Duration>,
    ) -> io::Result<(MptcpStream, SocketAddr)> {
        let port = self.port;
        let attempt = |s: &mut Stack| {
            s.accept(port).map(|id| {
                let peer = s
                    .connection(id)
                    .and_then(|c| c.subflows().first().map(|f| f.remote));
                Ok((id, peer))
            })
        };
        let (id, peer) = if self.nonblocking.load(std::sync::atomic::Ordering::Relaxed) {
            self.handle
                .with_stack(attempt)
                .unwrap_or_else(|| Err(io::ErrorKind::WouldBlock.into()))?
        } else {
            let deadline = timeout.map(|t| self.handle.now() + t);
            self.handle.wait_for(deadline, attempt)?
        };
        let peer = peer.ok_or_else(|| to_io(StackError::InvalidHandle))?;
        Ok((MptcpStream::from_id(self.handle.clone(), id), peer))
    }
}

/// The iterator of [`MptcpListener::incoming`].
#[derive(Debug)]
pub struct Incoming<'a> {
    listener: &'a MptcpListener,
}

impl Iterator for Incoming<'_> {
    type Item = io::Result<MptcpStream>;

    fn next(&mut self) -> Option<io::Result<MptcpStream>> {
        Some(self.listener.accept().map(|(s, _)| s))
    }
}

impl std::iter::FusedIterator for Incoming<'_> {}

impl Drop for MptcpListener {
    fn drop(&mut self) {
        let port = self.port;
        self.handle.with_stack(|s| s.unlisten(port));
    }
}
