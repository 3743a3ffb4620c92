//! The C ABI on manually driven instances, from Rust through the `extern "C"` functions:
//! two instances back to back on a fake clock moved by the test, single-threaded and
//! non-blocking. Checks the Linux-compatible parts of the socket surface that packetdrill's
//! scripts rely on: EAGAIN for a send during the handshake, `mptun_fcntl`, SO_REUSEADDR,
//! connection-level TCP_NODELAY / TCP_MAXSEG / TCP_USER_TIMEOUT, `mptun_poll` refusing
//! descriptors of two stacks, EMSGSIZE from `mptun_instance_output`, and close() with unread
//! data resetting the connection. No root, no device.

use libc::{c_int, c_void, socklen_t};
use mptun::capi::*;
use std::ffi::CString;
use std::net::SocketAddr;

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn sockaddr(a: &str) -> Vec<u8> {
    let a: SocketAddr = a.parse().unwrap();
    let mut b = vec![0u8; 28];
    let n = write_sockaddr(&a, &mut b);
    b.truncate(n);
    b
}

/// Two instances and the packets between them (delivered at once, 1 ms steps).
struct Pair {
    a: *mut mptun_instance,
    b: *mut mptun_instance,
    now: u64,
}

impl Pair {
    fn new() -> Pair {
        let ca = CString::new("c0=198.19.10.1,seed=11").unwrap();
        let cb = CString::new("s0=198.19.10.2,seed=12").unwrap();
        // SAFETY: NUL-terminated strings.
        let (a, b) = unsafe {
            (
                mptun_instance_new(ca.as_ptr()),
                mptun_instance_new(cb.as_ptr()),
            )
        };
        assert!(!a.is_null() && !b.is_null());
        Pair { a, b, now: 0 }
    }

    /// Moves every pending packet across, then the clock 1 ms on.
    fn step(&mut self) {
        let mut buf = vec![0u8; 2000];
        loop {
            let mut moved = false;
            for (from, to) in [(self.a, self.b), (self.b, self.a)] {
                loop {
                    // SAFETY: live instances, a buffer of buf.len() bytes.
                    let n = unsafe {
                        mptun_instance_output(from, buf.as_mut_ptr() as *mut c_void, buf.len())
                    };
                    assert!(n >= 0, "output errno {}", errno());
                    if n == 0 {
                        break;
                    }
                    moved = true;
                    // SAFETY: as above, n bytes written.
                    let r = unsafe {
                        mptun_instance_input(
                            to,
                            buf.as_ptr() as *const c_void,
                            n as usize,
                            self.now,
                        )
                    };
                    assert_eq!(r, 0);
                }
            }
            if !moved {
                break;
            }
        }
        self.now += 1000;
        // SAFETY: live instances.
        unsafe {
            mptun_instance_advance(self.a, self.now);
            mptun_instance_advance(self.b, self.now);
        }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        // SAFETY: pointers from mptun_instance_new, freed once.
        unsafe {
            assert_eq!(mptun_instance_free(self.a), 0);
            assert_eq!(mptun_instance_free(self.b), 0);
        }
    }
}

unsafe fn get_int(fd: c_int, level: c_int, name: c_int) -> Result<c_int, c_int> {
    let mut v: c_int = -1;
    let mut l = 4 as socklen_t;
    if mptun_getsockopt(fd, level, name, &mut v as *mut _ as *mut c_void, &mut l) != 0 {
        return Err(errno());
    }
    Ok(v)
}

unsafe fn set_int(fd: c_int, level: c_int, name: c_int, v: c_int) -> Result<(), c_int> {
    if mptun_setsockopt(fd, level, name, &v as *const _ as *const c_void, 4) != 0 {
        return Err(errno());
    }
    Ok(())
}

#[test]
fn linux_socket_surface_on_manual_instances() {
    let mut p = Pair::new();
    // SAFETY: every pointer below points to live local buffers of the lengths given.
    unsafe {
        let l = mptun_instance_socket(p.b, libc::AF_INET, libc::SOCK_STREAM, IPPROTO_MPTCP);
        assert!(l >= 0);
        assert_eq!(get_int(l, libc::SOL_SOCKET, libc::SO_REUSEADDR), Ok(0));
        assert_eq!(set_int(l, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1), Ok(()));
        assert_eq!(get_int(l, libc::SOL_SOCKET, libc::SO_REUSEADDR), Ok(1));
        let any = sockaddr("0.0.0.0:443");
        assert_eq!(mptun_bind(l, any.as_ptr() as *const _, any.len() as u32), 0);
        assert_eq!(mptun_listen(l, 4), 0);
        assert_eq!(
            mptun_fcntl(l, libc::F_SETFL, libc::O_RDWR | libc::O_NONBLOCK),
            0
        );

        let c = mptun_instance_socket(p.a, libc::AF_INET, libc::SOCK_STREAM, IPPROTO_MPTCP);
        assert_eq!(mptun_fcntl(c, libc::F_GETFL, 0), libc::O_RDWR);
        assert_eq!(
            mptun_fcntl(c, libc::F_SETFL, libc::O_RDWR | libc::O_NONBLOCK),
            0
        );
        assert_eq!(
            mptun_fcntl(c, libc::F_GETFL, 0),
            libc::O_RDWR | libc::O_NONBLOCK
        );
        assert_eq!(mptun_fcntl(c, libc::F_DUPFD, 0), -1);
        assert_eq!(errno(), libc::EINVAL);
        // before connect: TCP_NODELAY is kept for the connection, TCP_MAXSEG is not known
        assert_eq!(set_int(c, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1), Ok(()));
        assert_eq!(get_int(c, libc::IPPROTO_TCP, libc::TCP_NODELAY), Ok(1));
        assert_eq!(
            get_int(c, libc::IPPROTO_TCP, libc::TCP_MAXSEG),
            Err(libc::ENOTCONN)
        );

        let srv = sockaddr("198.19.10.2:443");
        assert_eq!(
            mptun_connect(c, srv.as_ptr() as *const _, srv.len() as u32),
            -1
        );
        assert_eq!(errno(), libc::EINPROGRESS);
        // as Linux: a non-blocking send while the handshake runs would block
        assert_eq!(mptun_send(c, b"x".as_ptr() as *const c_void, 1, 0), -1);
        assert_eq!(errno(), libc::EAGAIN);
        // one poll waits on one stack's clock: descriptors of two instances are refused
        let mut two = [
            libc::pollfd {
                fd: c,
                events: libc::POLLOUT,
                revents: 0,
            },
            libc::pollfd {
                fd: l,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        assert_eq!(mptun_poll(two.as_mut_ptr(), 2, 0), -1);
        assert_eq!(errno(), libc::EINVAL);
        // a buffer too short for the SYN: EMSGSIZE, and the SYN is still there afterwards
        let mut tiny = [0u8; 20];
        assert_eq!(
            mptun_instance_output(p.a, tiny.as_mut_ptr() as *mut c_void, tiny.len()),
            -1
        );
        assert_eq!(errno(), libc::EMSGSIZE);

        let mut s = -1;
        for _ in 0..200 {
            p.step();
            s = mptun_accept(l, std::ptr::null_mut(), std::ptr::null_mut());
            if s >= 0 {
                break;
            }
            assert_eq!(errno(), libc::EAGAIN);
        }
        assert!(s >= 0, "accepted");
        assert_eq!(
            get_int(c, libc::IPPROTO_TCP, libc::TCP_NODELAY),
            Ok(1),
            "set before connect"
        );
        let mss = get_int(c, libc::IPPROTO_TCP, libc::TCP_MAXSEG).unwrap();
        assert!((500..=1460).contains(&mss), "MSS {mss}");
        assert_eq!(
            set_int(c, libc::IPPROTO_TCP, libc::TCP_MAXSEG, 1000),
            Ok(())
        );
        let lowered = get_int(c, libc::IPPROTO_TCP, libc::TCP_MAXSEG).unwrap();
        assert!(lowered <= 1000, "MSS {lowered} after TCP_MAXSEG 1000");
        assert_eq!(
            set_int(s, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, 3000),
            Ok(())
        );
        assert_eq!(
            get_int(s, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
            Ok(3000)
        );
        assert_eq!(
            set_int(s, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, -1),
            Err(libc::EINVAL)
        );
        assert_eq!(set_int(s, libc::IPPROTO_TCP, libc::TCP_NODELAY, 0), Ok(()));
        assert_eq!(get_int(s, libc::IPPROTO_TCP, libc::TCP_NODELAY), Ok(0));

        // data the server never reads, then close(): the client sees a reset
        assert_eq!(mptun_send(c, b"unread".as_ptr() as *const c_void, 6, 0), 6);
        for _ in 0..50 {
            p.step();
        }
        assert_eq!(mptun_close(s), 0);
        let mut reset = false;
        for _ in 0..200 {
            p.step();
            let mut pf = [libc::pollfd {
                fd: c,
                events: libc::POLLIN,
                revents: 0,
            }];
            if mptun_poll(pf.as_mut_ptr(), 1, 0) == 1 && pf[0].revents & libc::POLLERR != 0 {
                reset = true;
                break;
            }
        }
        assert!(reset, "the client saw no reset");
        assert_eq!(
            get_int(c, libc::SOL_SOCKET, libc::SO_ERROR),
            Ok(libc::ECONNRESET)
        );
        assert_eq!(mptun_close(c), 0);
        assert_eq!(mptun_close(l), 0);
    }
}
