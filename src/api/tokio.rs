//! `tokio` integration (cargo feature `tokio`): [`MptcpStream`] implements
//! [`tokio::io::AsyncRead`] and [`tokio::io::AsyncWrite`], and connections can be opened and
//! accepted without blocking a runtime thread.
//!
//! The stack still runs on its own driver thread ([`crate::io::driver::Runtime`]); tasks
//! waiting for data, send-buffer room, a handshake or a new connection are woken after the
//! driver's next round that could have changed what they wait for. The stream's blocking
//! settings (`set_nonblocking`, timeouts) do not apply here: wrap calls in
//! `tokio::time::timeout` instead.
//!
//! ```no_run
//! # async fn demo(handle: mptun::api::StackHandle) -> std::io::Result<()> {
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! let mut s = mptun::api::MptcpStream::connect_async(&handle, "198.18.1.1:5201".parse().unwrap(), None, None).await?;
//! s.write_all(b"hello").await?;
//! // the inherent `MptcpStream::shutdown(how)` shadows the extension method
//! AsyncWriteExt::shutdown(&mut s).await?;
//! let mut reply = Vec::new();
//! s.read_to_end(&mut reply).await?;
//! # Ok(()) }
//! ```

use super::{handshake_state, to_io, try_recv, try_send, MptcpListener, MptcpStream, StackHandle};
use crate::mptcp::ConnConfig;
use crate::stack::StackError;
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

impl MptcpStream {
    /// Connect to `remote` (from `local`, with `cfg`, or the defaults) and wait for the
    /// handshake without blocking the async runtime. Dropping the future before it
    /// completes closes the attempt, as dropping a stream does.
    pub async fn connect_async(
        handle: &StackHandle,
        remote: SocketAddr,
        local: Option<IpAddr>,
        cfg: Option<ConnConfig>,
    ) -> io::Result<MptcpStream> {
        // owns the connection until it is established: dropped (future cancelled, or
        // failure), it closes the connection like any dropped stream
        let stream = MptcpStream::connect_start(handle, remote, local, cfg)?;
        let id = stream.id;
        poll_fn(|cx| handle.poll_stack(cx, |s| handshake_state(s, id).transpose())).await?;
        Ok(stream)
    }
}

impl MptcpListener {
    /// Wait for the next established connection without blocking the async runtime.
    pub async fn accept_async(&self) -> io::Result<(MptcpStream, SocketAddr)> {
        let port = self.port;
        let (id, peer) = poll_fn(|cx| {
            self.handle.poll_stack(cx, |s| {
                s.accept(port).map(|id| {
                    let peer = s
                        .connection(id)
                        .and_then(|c| c.subflows().first().map(|f| f.remote));
                    Ok((id, peer))
                })
            })
        })
        .await?;
        let stream = MptcpStream::from_id(self.handle.clone(), id);
        let peer = peer.ok_or_else(|| to_io(StackError::InvalidHandle))?;
        Ok((stream, peer))
    }
}

impl AsyncRead for MptcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 || this.opts().read_shut {
            return Poll::Ready(Ok(()));
        }
        let id = this.id;
        let dst = buf.initialize_unfilled();
        match this.handle.poll_stack(cx, |s| try_recv(s, id, dst)) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                if n > 0 {
                    this.handle.wake_driver(); // window update
                }
                Poll::Ready(Ok(()))
            }
            other => other.map_ok(|_| ()),
        }
    }
}

impl AsyncWrite for MptcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.opts().write_shut {
            return Poll::Ready(Err(to_io(StackError::Shutdown)));
        }
        let id = this.id;
        let r = this.handle.poll_stack(cx, |s| try_send(s, id, buf));
        if matches!(r, Poll::Ready(Ok(_))) {
            this.handle.wake_driver();
        }
        r
    }

    /// Data accepted by `poll_write` is in the stack's send buffer and will be sent (or the
    /// connection reports an error): there is nothing more to flush.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Sends DATA_FIN after the buffered data (`shutdown(Shutdown::Write)`).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.opts().write_shut {
            return Poll::Ready(Ok(()));
        }
        Poll::Ready(this.shutdown(Shutdown::Write))
    }
}
