//! Carrying unmodified applications: `mptun proxy` (SOCKS5 and port forwards: kernel TCP in,
//! MPTCP out) and `mptun listen --forward` (MPTCP in, kernel TCP out), both built on one
//! relay ([`relay`]).
//!
//! Every relayed connection has two threads, one per direction, each with one fixed buffer
//! ([`RELAY_BUF`]): a direction reads only when its last chunk was written, so a slow
//! receiver stops the sender through the MPTCP and TCP windows (backpressure) and memory
//! per connection is bounded (two buffers, the stack's connection buffers and the kernel
//! socket buffers). The directions are independent: end of stream on one side becomes
//! `shutdown(Write)` on the other (TCP FIN, MPTCP DATA_FIN) while the other direction goes
//! on. An error on either side (a reset, a failed write) aborts both: the MPTCP connection
//! with a reset (MP_FASTCLOSE/RST) and the TCP connection with a RST (SO_LINGER 0), so a
//! truncated stream is never passed on as a clean end of stream. Errors stay with their
//! connection; the proxy goes on.

use crate::api::MptcpStream;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Bytes each direction of a relayed connection holds at most in userspace.
pub const RELAY_BUF: usize = 64 * 1024;
/// A write to a TCP socket wakes up this often to see if the other direction failed.
const TCP_WRITE_POLL: Duration = Duration::from_millis(250);

/// What a relay moved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relayed {
    /// TCP -> MPTCP.
    pub to_mptcp: u64,
    /// MPTCP -> TCP.
    pub from_mptcp: u64,
}

/// The first failure of either direction.
struct FailState {
    failed: AtomicBool,
    why: Mutex<Option<String>>,
}

impl FailState {
    fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Records `why` (if first) and aborts both connections, which wakes the other
    /// direction wherever it blocks: MPTCP reads and writes fail, a TCP read returns 0
    /// (shutdown(Read)), a TCP write notices within [`TCP_WRITE_POLL`].
    fn fail(&self, conn: &MptcpStream, tcp: &TcpStream, why: String) {
        if self.failed.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.why.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        abort(conn);
        let _ = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO));
        let _ = tcp.shutdown(Shutdown::Read);
    }
}

/// Resets an MPTCP connection.
pub(crate) fn abort(conn: &MptcpStream) {
    let id = conn.id();
    conn.stack().with_stack(|s| {
        let _ = s.abort(id);
    });
    conn.stack().wake_driver();
}

/// Relays between `conn` and `tcp` until both directions reached end of stream (`Ok`) or
/// either side failed (`Err`, both connections reset); with the bytes moved either way.
/// `conn` stays open for the caller (statistics, then drop).
pub fn relay(conn: &MptcpStream, tcp: TcpStream) -> (Relayed, Result<(), String>) {
    let _ = tcp.set_nodelay(true);
    if let Err(e) = tcp.set_write_timeout(Some(TCP_WRITE_POLL)) {
        abort(conn);
        return (
            Relayed::default(),
            Err(format!("setting a write timeout: {e}")),
        );
    }
    let state = FailState {
        failed: AtomicBool::new(false),
        why: Mutex::new(None),
    };
    let (to_mptcp, from_mptcp) = std::thread::scope(|s| {
        let up = std::thread::Builder::new()
            .name("mptun-relay".into())
            .spawn_scoped(s, || tcp_to_mptcp(conn, &tcp, &state));
        let up = match up {
            Ok(h) => h,
            Err(e) => {
                state.fail(conn, &tcp, format!("cannot start a relay thread: {e}"));
                return (0, 0);
            }
        };
        let down = mptcp_to_tcp(conn, &tcp, &state);
        let up = up.join().unwrap_or_else(|_| {
            state.fail(conn, &tcp, "relay thread panicked".into());
            0
        });
        (up, down)
    });
    let why = state.why.lock().unwrap_or_else(|p| p.into_inner()).take();
    let relayed = Relayed {
        to_mptcp,
        from_mptcp,
    };
    (relayed, why.map_or(Ok(()), Err))
}

fn tcp_to_mptcp(conn: &MptcpStream, tcp: &TcpStream, st: &FailState) -> u64 {
    let mut buf = vec![0u8; RELAY_BUF];
    let mut total = 0u64;
    loop {
        match (&*tcp).read(&mut buf) {
            Ok(0) => {
                if !st.failed() {
                    if let Err(e) = conn.shutdown(Shutdown::Write) {
                        st.fail(conn, tcp, format!("closing the MPTCP side: {e}"));
                    }
                }
                return total;
            }
            Ok(n) => {
                if let Err(e) = (&*conn).write_all(&buf[..n]) {
                    st.fail(conn, tcp, format!("sending over MPTCP: {e}"));
                    return total;
                }
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                st.fail(conn, tcp, format!("reading from the TCP side: {e}"));
                return total;
            }
        }
    }
}

fn mptcp_to_tcp(conn: &MptcpStream, tcp: &TcpStream, st: &FailState) -> u64 {
    let mut buf = vec![0u8; RELAY_BUF];
    let mut total = 0u64;
    loop {
        match (&*conn).read(&mut buf) {
            Ok(0) => {
                if !st.failed() {
                    if let Err(e) = tcp.shutdown(Shutdown::Write) {
                        st.fail(conn, tcp, format!("closing the TCP side: {e}"));
                    }
                }
                return total;
            }
            Ok(n) => {
                if let Err(e) = write_tcp(tcp, &buf[..n], st) {
                    st.fail(conn, tcp, format!("writing to the TCP side: {e}"));
                    return total;
                }
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                st.fail(conn, tcp, format!("receiving over MPTCP: {e}"));
                return total;
            }
        }
    }
}

/// `write_all` on a socket with a send timeout, giving up when the relay failed.
fn write_tcp(tcp: &TcpStream, mut data: &[u8], st: &FailState) -> io::Result<()> {
    while !data.is_empty() {
        if st.failed() {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "relay aborted"));
        }
        match (&*tcp).write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// The relay itself is tested end to end against Linux in tests/interop_proxy.rs.
    #[test]
    fn write_tcp_gives_up_when_failed() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_s, _) = l.accept().unwrap();
        let st = FailState {
            failed: AtomicBool::new(true),
            why: Mutex::new(None),
        };
        assert_eq!(
            write_tcp(&c, b"x", &st).unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        st.failed.store(false, Ordering::Release);
        write_tcp(&c, b"x", &st).unwrap();
    }
}
