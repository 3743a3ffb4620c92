//! The Linux-compatible socket surface of the C ABI (issue 10, item 4), called from Rust:
//! `mptun_getsockname` / `mptun_getpeername` (with Linux's truncation rule), `mptun_accept4`
//! flags, `MSG_PEEK`, `SO_SNDBUF` / `SO_RCVBUF` (set before connect, in force after it,
//! refused on a live connection or a listener), and TCP_INFO on the connection in Linux's
//! `struct tcp_info` layout.
//!
//! No root needed: the C runtime runs over in-process `SeqPacketDevice` links to a second
//! mptun runtime (Rust API) acting as the peer.

mod common;

use libc::{c_int, c_void, socklen_t};
use mptun::api::{MptcpListener, MptcpStream};
use mptun::capi::*;
use mptun::io::driver::{Port, Runtime, SeqPacketDevice};
use mptun::mptcp::ConnConfig;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::ptr;

const GREETING: usize = 5000;

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[track_caller]
fn fails(rc: isize, want: c_int, what: &str) {
    let e = errno();
    assert_eq!(rc, -1, "{what}: expected failure, got {rc}");
    assert_eq!(e, want, "{what}: errno {e}, expected {want}");
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn sockaddr(a: &str) -> Vec<u8> {
    let a: SocketAddr = a.parse().unwrap();
    let mut b = vec![0u8; 28];
    let n = write_sockaddr(&a, &mut b);
    b.truncate(n);
    b
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

/// `getsockname` / `getpeername` into a full-sized buffer: the address.
unsafe fn name_of(
    f: unsafe extern "C" fn(c_int, *mut libc::sockaddr, *mut socklen_t) -> c_int,
    fd: c_int,
) -> Result<SocketAddr, c_int> {
    let mut b = [0u8; 28];
    let mut len = b.len() as socklen_t;
    if f(fd, b.as_mut_ptr() as *mut libc::sockaddr, &mut len) != 0 {
        return Err(errno());
    }
    assert_eq!(len as usize, 16, "an IPv4 address is 16 bytes");
    Ok(read_sockaddr(&b[..len as usize]).expect("a sockaddr"))
}

unsafe fn get_int(fd: c_int, level: c_int, name: c_int) -> c_int {
    let mut v = [0u8; 4];
    let mut len = 4 as socklen_t;
    let rc = mptun_getsockopt(fd, level, name, v.as_mut_ptr() as *mut c_void, &mut len);
    assert_eq!(rc, 0, "getsockopt {level}/{name}: errno {}", errno());
    c_int::from_ne_bytes(v)
}

unsafe fn set_int(fd: c_int, level: c_int, name: c_int, v: c_int) -> isize {
    let b = v.to_ne_bytes();
    mptun_setsockopt(fd, level, name, b.as_ptr() as *const c_void, 4) as isize
}

/// The peer: an mptun runtime on 198.18.1.1 / 198.18.2.1 whose listener on 5201 sends
/// [`GREETING`] bytes of [`pattern`], closes its sending side and reads to the end.
fn start_peer(devs: Vec<(SeqPacketDevice, &str)>) -> Runtime {
    let rt = common::seqpacket_runtime(devs, 9);
    let l = MptcpListener::bind(rt.handle(), 5201).expect("listen");
    std::thread::spawn(move || {
        while let Ok((s, _)) = l.accept() {
            std::thread::spawn(move || {
                let _ = (&s).write_all(&pattern(GREETING));
                let _ = s.shutdown(std::net::Shutdown::Write);
                let mut buf = [0u8; 65536];
                while matches!((&s).read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    rt
}

#[test]
fn names_peek_accept4_and_buffer_sizes_behave_as_linux() {
    unsafe {
        let (c0, s0) = SeqPacketDevice::pair("c0", "s0").unwrap();
        let (c1, s1) = SeqPacketDevice::pair("c1", "s1").unwrap();
        let peer = start_peer(vec![(s0, "198.18.1.1"), (s1, "198.18.2.1")]);
        let ports = vec![
            Port {
                device: Box::new(c0),
                addrs: vec![ip("198.18.1.2")],
                egress: None,
                ingress: None,
            },
            Port {
                device: Box::new(c1),
                addrs: vec![ip("198.18.2.2")],
                egress: None,
                ingress: None,
            },
        ];
        init_with_ports(ports, ConnConfig::default()).expect("init");

        // ----- a fresh socket: unbound name, no peer, buffer sizes before connect
        let fd = mptun_socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        assert_eq!(
            name_of(mptun_getsockname, fd),
            Ok("0.0.0.0:0".parse().unwrap())
        );
        assert_eq!(name_of(mptun_getpeername, fd), Err(libc::ENOTCONN));
        fails(
            mptun_getsockname(fd, ptr::null_mut(), ptr::null_mut()) as isize,
            libc::EFAULT,
            "getsockname(NULL)",
        );
        let default_rcv = get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF);
        assert_eq!(default_rcv as usize, ConnConfig::default().recv_buffer);
        assert_eq!(set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 65536), 0);
        assert_eq!(set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 100), 0);
        assert_eq!(get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF), 65536);
        assert_eq!(
            get_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF) as usize,
            BUF_MIN,
            "clamped up to the minimum"
        );
        assert_eq!(set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, 1 << 20), 0);

        // ----- connected: both names, the buffers in force, no resizing
        let a = sockaddr("198.18.1.1:5201");
        assert_eq!(
            mptun_connect(
                fd,
                a.as_ptr() as *const libc::sockaddr,
                a.len() as socklen_t
            ),
            0,
            "connect: errno {}",
            errno()
        );
        let local = name_of(mptun_getsockname, fd).expect("local name");
        assert_eq!(local.ip(), ip("198.18.1.2"));
        assert_ne!(local.port(), 0);
        assert_eq!(
            name_of(mptun_getpeername, fd),
            Ok("198.18.1.1:5201".parse().unwrap())
        );
        // a short buffer gets the first bytes and the full length, as Linux
        let mut short = [0xffu8; 4];
        let mut len = 4 as socklen_t;
        assert_eq!(
            mptun_getpeername(fd, short.as_mut_ptr() as *mut libc::sockaddr, &mut len),
            0
        );
        assert_eq!(len, 16);
        assert_eq!(&short[..2], &(libc::AF_INET as u16).to_ne_bytes());
        assert_eq!(&short[2..4], &5201u16.to_be_bytes());
        assert_eq!(get_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF), 65536);
        assert_eq!(get_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF), 1 << 20);
        fails(
            set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 1 << 20),
            libc::EISCONN,
            "SO_RCVBUF on a live connection",
        );

        // ----- MSG_PEEK leaves the data readable
        let mut peeked = vec![0u8; 100];
        let n = mptun_recv(
            fd,
            peeked.as_mut_ptr() as *mut c_void,
            peeked.len(),
            libc::MSG_PEEK,
        );
        assert!(n > 0, "peek: {n}, errno {}", errno());
        let n = n as usize;
        let mut got = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            let k = mptun_recv(fd, buf.as_mut_ptr() as *mut c_void, buf.len(), 0);
            assert!(k >= 0, "recv: errno {}", errno());
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k as usize]);
        }
        assert_eq!(&got[..n], &peeked[..n], "read gives what peek showed");
        assert_eq!(got, pattern(GREETING), "the whole stream, once");
        // TCP_INFO on the connection: Linux's struct tcp_info of the first subflow
        let mut ti = [0xffu8; LINUX_TCP_INFO_LEN + 8];
        let mut tlen = ti.len() as socklen_t;
        assert_eq!(
            mptun_getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                ti.as_mut_ptr() as *mut c_void,
                &mut tlen
            ),
            0
        );
        assert_eq!(tlen as usize, LINUX_TCP_INFO_LEN);
        let u32_at = |o: usize| u32::from_ne_bytes(ti[o..o + 4].try_into().unwrap());
        let u64_at = |o: usize| u64::from_ne_bytes(ti[o..o + 8].try_into().unwrap());
        assert_eq!(ti[0], 1, "tcpi_state: TCP_ESTABLISHED");
        assert!(
            (536..=1460).contains(&u32_at(16)),
            "tcpi_snd_mss {}",
            u32_at(16)
        );
        assert!(u32_at(68) > 0, "tcpi_rtt");
        assert!(u32_at(80) >= 1, "tcpi_snd_cwnd in segments");
        let rcvd = u64_at(128);
        assert!(
            rcvd > 0 && rcvd <= GREETING as u64,
            "tcpi_bytes_received {rcvd}"
        );
        // a short buffer gets the first bytes, as from Linux
        let mut short = [0u8; 8];
        let mut slen = short.len() as socklen_t;
        assert_eq!(
            mptun_getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                short.as_mut_ptr() as *mut c_void,
                &mut slen
            ),
            0
        );
        assert_eq!((slen, short[0]), (8, 1));

        // at the end of the stream peek gives 0, as recv does
        assert_eq!(
            mptun_recv(fd, buf.as_mut_ptr() as *mut c_void, 10, libc::MSG_PEEK),
            0
        );
        assert_eq!(mptun_close(fd), 0);

        // ----- accept4: flags, and a listener's name
        let lfd = mptun_socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let b = sockaddr("0.0.0.0:6000");
        assert_eq!(
            mptun_bind(
                lfd,
                b.as_ptr() as *const libc::sockaddr,
                b.len() as socklen_t
            ),
            0
        );
        assert_eq!(mptun_listen(lfd, 8), 0);
        assert_eq!(
            name_of(mptun_getsockname, lfd),
            Ok("0.0.0.0:6000".parse().unwrap())
        );
        assert_eq!(name_of(mptun_getpeername, lfd), Err(libc::ENOTCONN));
        fails(
            set_int(lfd, libc::SOL_SOCKET, libc::SO_RCVBUF, 65536),
            libc::EINVAL,
            "SO_RCVBUF on a listener",
        );
        fails(
            mptun_accept4(lfd, ptr::null_mut(), ptr::null_mut(), 0x1) as isize,
            libc::EINVAL,
            "accept4 with an unknown flag",
        );
        let client = MptcpStream::connect(peer.handle(), "198.18.1.2:6000".parse().unwrap())
            .expect("the peer connects to the C listener");
        let mut from = [0u8; 28];
        let mut flen = from.len() as socklen_t;
        let nfd = mptun_accept4(
            lfd,
            from.as_mut_ptr() as *mut libc::sockaddr,
            &mut flen,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        );
        assert!(nfd >= 0, "accept4: errno {}", errno());
        let from = read_sockaddr(&from[..flen as usize]).unwrap();
        assert_eq!(Ok(from), name_of(mptun_getpeername, nfd));
        assert_eq!(from, client.local_addr().unwrap());
        assert_eq!(
            name_of(mptun_getsockname, nfd),
            Ok("198.18.1.2:6000".parse().unwrap())
        );
        assert_ne!(
            mptun_fcntl(nfd, libc::F_GETFL, 0) & libc::O_NONBLOCK,
            0,
            "SOCK_NONBLOCK made the accepted socket non-blocking"
        );
        fails(
            mptun_recv(nfd, buf.as_mut_ptr() as *mut c_void, 10, 0),
            libc::EAGAIN,
            "non-blocking recv with nothing to read",
        );
        fails(
            mptun_recv(nfd, buf.as_mut_ptr() as *mut c_void, 10, libc::MSG_PEEK),
            libc::EAGAIN,
            "non-blocking peek with nothing to read",
        );
        (&client).write_all(b"ping").unwrap();
        let mut pfd = libc::pollfd {
            fd: nfd,
            events: libc::POLLIN,
            revents: 0,
        };
        assert_eq!(mptun_poll(&mut pfd, 1, 5000), 1);
        let k = mptun_recv(nfd, buf.as_mut_ptr() as *mut c_void, 10, libc::MSG_PEEK);
        assert_eq!(k, 4);
        let k = mptun_recv(nfd, buf.as_mut_ptr() as *mut c_void, 10, 0);
        assert_eq!(&buf[..k as usize], b"ping");
        assert_eq!(mptun_close(nfd), 0);
        assert_eq!(mptun_close(lfd), 0);
        drop(client);
        assert_eq!(mptun_fini(), 0);
    }
}
