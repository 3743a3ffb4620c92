//! Misuse of the C ABI, from Rust calling the `extern "C"` functions directly: bad
//! descriptors, unknown subflow ids, wrong lengths, short buffers (which report the size
//! needed), operations on listeners and closed descriptors, a plain TCP connection
//! (EOPNOTSUPP). Every call must fail with the documented errno and never crash.
//!
//! No root needed: the global runtime runs over in-process `SeqPacketDevice` links to a
//! second mptun runtime acting as the server.

mod common;

use libc::{c_int, c_void, socklen_t};
use mptun::api::MptcpListener;
use mptun::capi::*;
use mptun::io::driver::{Port, Runtime, SeqPacketDevice};
use mptun::mptcp::ConnConfig;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::ptr;

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Asserts `rc` is -1 with errno `want`.
#[track_caller]
fn fails(rc: isize, want: c_int, what: &str) {
    let e = errno();
    assert_eq!(rc, -1, "{what}: expected failure, got {rc}");
    assert_eq!(e, want, "{what}: errno {e}, expected {want}");
}

fn sockaddr(a: &str) -> Vec<u8> {
    let a: SocketAddr = a.parse().unwrap();
    let mut b = vec![0u8; 28];
    let n = write_sockaddr(&a, &mut b);
    b.truncate(n);
    b
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

unsafe fn getopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    buf: &mut [u8],
    len: &mut socklen_t,
) -> isize {
    mptun_getsockopt(fd, level, name, buf.as_mut_ptr() as *mut c_void, len) as isize
}

fn sub_get(
    id: u8,
    level: c_int,
    name: c_int,
    val: &mut [u8],
    len: &mut u32,
) -> mptcp_sub_getsockopt {
    mptcp_sub_getsockopt {
        id,
        level,
        optname: name,
        optval: val.as_mut_ptr() as *mut libc::c_char,
        optlen: len,
    }
}

unsafe fn run_sub_get(fd: c_int, g: &mut mptcp_sub_getsockopt) -> isize {
    let mut l = std::mem::size_of::<mptcp_sub_getsockopt>() as socklen_t;
    mptun_getsockopt(
        fd,
        libc::IPPROTO_TCP,
        MPTCP_SUB_GETSOCKOPT,
        g as *mut _ as *mut c_void,
        &mut l,
    ) as isize
}

unsafe fn run_sub_set(fd: c_int, id: u8, level: c_int, name: c_int, val: &[u8]) -> isize {
    let s = mptcp_sub_setsockopt {
        id,
        level,
        optname: name,
        optval: val.as_ptr() as *mut libc::c_char,
        optlen: val.len() as u32,
    };
    mptun_setsockopt(
        fd,
        libc::IPPROTO_TCP,
        MPTCP_SUB_SETSOCKOPT,
        &s as *const _ as *const c_void,
        std::mem::size_of::<mptcp_sub_setsockopt>() as socklen_t,
    ) as isize
}

unsafe fn sub_int(fd: c_int, id: u8, level: c_int, name: c_int) -> c_int {
    let mut v = [0u8; 4];
    let mut len = 4u32;
    let mut g = sub_get(id, level, name, &mut v, &mut len);
    assert_eq!(
        run_sub_get(fd, &mut g),
        0,
        "get option {level}/{name}: errno {}",
        errno()
    );
    assert_eq!(len, 4);
    c_int::from_ne_bytes(v)
}

unsafe fn sub_ids(fd: c_int) -> Vec<(u8, u16)> {
    let mut buf = [0u8; 256];
    let mut len = buf.len() as socklen_t;
    assert_eq!(
        getopt(fd, libc::IPPROTO_TCP, MPTCP_GET_SUB_IDS, &mut buf, &mut len),
        0
    );
    let n = buf[0] as usize;
    assert_eq!(len as usize, 2 + 4 * n);
    (0..n)
        .map(|i| {
            (
                buf[2 + 4 * i],
                u16::from_ne_bytes([buf[4 + 4 * i], buf[5 + 4 * i]]),
            )
        })
        .collect()
}

/// The server: an mptun runtime on 198.18.1.1 / 198.18.2.1 that accepts connections on port
/// 5201 and reads each to its end.
fn start_server(devs: Vec<(SeqPacketDevice, &str)>) -> Runtime {
    let rt = common::seqpacket_runtime(devs, 7);
    let l = MptcpListener::bind(rt.handle(), 5201).expect("listen");
    std::thread::spawn(move || {
        while let Ok((s, _)) = l.accept() {
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while matches!((&s).read(&mut buf), Ok(n) if n > 0) {}
                let _ = s.shutdown(std::net::Shutdown::Write);
                std::thread::sleep(std::time::Duration::from_secs(30));
            });
        }
    });
    rt
}

#[test]
fn c_abi_misuse_reports_the_documented_errno() {
    unsafe {
        // ----- before mptun_init
        fails(
            mptun_socket(libc::AF_INET, libc::SOCK_STREAM, 0) as isize,
            libc::ENETDOWN,
            "socket before init",
        );
        fails(mptun_fini() as isize, libc::ENETDOWN, "fini before init");
        fails(mptun_init(ptr::null()) as isize, libc::EFAULT, "init(NULL)");
        fails(
            mptun_init(c"nonsense".as_ptr()) as isize,
            libc::EINVAL,
            "init(bad config)",
        );
        fails(
            mptun_init(c"tun0=1.2.3.4,pm=bogus".as_ptr()) as isize,
            libc::EINVAL,
            "init(bad pm)",
        );
        fails(
            mptun_init(c"tun0=1.2.3.4,subflows=x".as_ptr()) as isize,
            libc::EINVAL,
            "init(bad limit)",
        );
        fails(
            mptun_endpoint_set(c"198.18.1.2".as_ptr(), 0) as isize,
            libc::ENETDOWN,
            "endpoint before init",
        );

        let (c0, s0) = SeqPacketDevice::pair("c0", "s0").unwrap();
        let (c1, s1) = SeqPacketDevice::pair("c1", "s1").unwrap();
        let _server = start_server(vec![(s0, "198.18.1.1"), (s1, "198.18.2.1")]);
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
        let cfg = ConnConfig {
            path_manager: "manual".into(),
            ..ConnConfig::default()
        };
        init_with_ports(ports, cfg).expect("init");
        fails(
            mptun_init(c"tun0=1.2.3.4".as_ptr()) as isize,
            libc::EALREADY,
            "second init",
        );

        // ----- limits (MPTUN_LIMITS) and endpoints
        {
            let fd = mptun_socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            let mut b = [0u8; MPTUN_LIMITS_LEN];
            let mut len = b.len() as socklen_t;
            assert_eq!(getopt(fd, SOL_MPTCP, MPTUN_LIMITS, &mut b, &mut len), 0);
            let words = |b: &[u8]| -> Vec<u32> {
                b.chunks(4)
                    .map(|c| u32::from_ne_bytes(c.try_into().unwrap()))
                    .collect()
            };
            assert_eq!(words(&b), vec![8, 8, 8], "defaults");
            let mut set = Vec::new();
            for w in [2u32, 0, 1] {
                set.extend_from_slice(&w.to_ne_bytes());
            }
            fails(
                mptun_setsockopt(
                    fd,
                    SOL_MPTCP,
                    MPTUN_LIMITS,
                    set.as_ptr() as *const c_void,
                    8,
                ) as isize,
                libc::EINVAL,
                "MPTUN_LIMITS short",
            );
            assert_eq!(
                mptun_setsockopt(
                    fd,
                    SOL_MPTCP,
                    MPTUN_LIMITS,
                    set.as_ptr() as *const c_void,
                    12
                ),
                0
            );
            let mut len = b.len() as socklen_t;
            assert_eq!(getopt(fd, SOL_MPTCP, MPTUN_LIMITS, &mut b, &mut len), 0);
            assert_eq!(words(&b), vec![2, 0, 1], "read back");
            assert_eq!(mptun_close(fd), 0);

            fails(
                mptun_endpoint_set(c"198.19.39.9".as_ptr(), 0) as isize,
                libc::EADDRNOTAVAIL,
                "endpoint not ours",
            );
            fails(
                mptun_endpoint_set(c"not an address".as_ptr(), 0) as isize,
                libc::EINVAL,
                "endpoint bad string",
            );
            fails(
                mptun_endpoint_set(c"198.18.2.2".as_ptr(), 64) as isize,
                libc::EINVAL,
                "endpoint bad flags",
            );
            fails(
                mptun_endpoint_set(c"198.18.2.2".as_ptr(), 16) as isize,
                libc::EINVAL,
                "endpoint flag above FULLMESH",
            );
            let linux = MPTUN_ENDPOINT_SUBFLOW | MPTUN_ENDPOINT_FULLMESH;
            assert_eq!(mptun_endpoint_set(c"198.18.2.2".as_ptr(), linux), 0);
            fails(
                mptun_endpoint_set(ptr::null(), 0) as isize,
                libc::EFAULT,
                "endpoint NULL",
            );
            let both = MPTUN_ENDPOINT_SIGNAL | MPTUN_ENDPOINT_BACKUP;
            assert_eq!(mptun_endpoint_set(c"198.18.2.2".as_ptr(), both), 0);
            assert_eq!(mptun_endpoint_del(c"198.18.2.2".as_ptr()), 0);
            // back to a plain endpoint for the rest of the test
            assert_eq!(mptun_endpoint_set(c"198.18.2.2".as_ptr(), 0), 0);
        }

        // ----- socket()
        fails(
            mptun_socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) as isize,
            libc::EAFNOSUPPORT,
            "AF_UNIX",
        );
        fails(
            mptun_socket(libc::AF_INET, libc::SOCK_DGRAM, 0) as isize,
            libc::ESOCKTNOSUPPORT,
            "DGRAM",
        );
        fails(
            mptun_socket(libc::AF_INET, libc::SOCK_STREAM, 17) as isize,
            libc::EPROTONOSUPPORT,
            "UDP proto",
        );

        // ----- bad descriptors
        for fd in [-1, 999, c_int::MAX] {
            fails(mptun_close(fd) as isize, libc::EBADF, "close(bad)");
            fails(
                mptun_send(fd, b"x".as_ptr() as *const c_void, 1, 0),
                libc::EBADF,
                "send(bad)",
            );
            fails(mptun_listen(fd, 1) as isize, libc::EBADF, "listen(bad)");
            let mut b = [0u8; 8];
            let mut l = 8;
            fails(
                getopt(fd, libc::IPPROTO_TCP, MPTCP_GET_SUB_IDS, &mut b, &mut l),
                libc::EBADF,
                "getsockopt(bad)",
            );
        }

        // ----- an unconnected socket
        let fresh = mptun_socket(libc::AF_INET, libc::SOCK_STREAM, IPPROTO_MPTCP);
        assert!(fresh >= 0);
        let mut b = [0u8; 64];
        let mut l = 64;
        fails(
            getopt(fresh, libc::IPPROTO_TCP, MPTCP_GET_SUB_IDS, &mut b, &mut l),
            libc::ENOTCONN,
            "sub ids, unconnected",
        );
        fails(
            mptun_send(fresh, b"x".as_ptr() as *const c_void, 1, 0),
            libc::ENOTCONN,
            "send, unconnected",
        );
        fails(
            mptun_accept(fresh, ptr::null_mut(), ptr::null_mut()) as isize,
            libc::EINVAL,
            "accept, not listening",
        );
        let far = sockaddr("198.19.39.9:1");
        fails(
            mptun_bind(fresh, far.as_ptr() as *const _, far.len() as u32) as isize,
            libc::EADDRNOTAVAIL,
            "bind foreign",
        );
        let any = sockaddr("0.0.0.0:6000");
        fails(
            mptun_bind(fresh, any.as_ptr() as *const _, 15) as isize,
            libc::EINVAL,
            "bind short len",
        );
        fails(
            mptun_bind(fresh, ptr::null(), 16) as isize,
            libc::EFAULT,
            "bind NULL",
        );
        let v6 = sockaddr("[::1]:6000");
        fails(
            mptun_bind(fresh, v6.as_ptr() as *const _, v6.len() as u32) as isize,
            libc::EAFNOSUPPORT,
            "bind v6 on v4",
        );
        fails(
            mptun_listen(fresh, 1) as isize,
            libc::EDESTADDRREQ,
            "listen unbound",
        );

        // ----- a listener
        assert_eq!(
            mptun_bind(fresh, any.as_ptr() as *const _, any.len() as u32),
            0
        );
        fails(
            mptun_bind(fresh, any.as_ptr() as *const _, any.len() as u32) as isize,
            libc::EINVAL,
            "bind twice",
        );
        assert_eq!(mptun_listen(fresh, 8), 0);
        let mut l = 64;
        fails(
            getopt(fresh, libc::IPPROTO_TCP, MPTCP_GET_SUB_IDS, &mut b, &mut l),
            libc::ENOTCONN,
            "sub ids on a listener",
        );
        let srv = sockaddr("198.18.1.1:5201");
        fails(
            mptun_connect(fresh, srv.as_ptr() as *const _, srv.len() as u32) as isize,
            libc::EINVAL,
            "connect a listener",
        );
        fails(
            mptun_recv(fresh, b.as_mut_ptr() as *mut c_void, 8, 0),
            libc::ENOTCONN,
            "recv on a listener",
        );
        let mut p = [libc::pollfd {
            fd: fresh,
            events: libc::POLLIN,
            revents: 0,
        }];
        assert_eq!(mptun_poll(p.as_mut_ptr(), 1, 0), 0, "nothing to accept");
        assert_eq!(mptun_close(fresh), 0);

        // ----- a connected MPTCP socket
        let fd = mptun_socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert_eq!(
            mptun_connect(fd, srv.as_ptr() as *const _, srv.len() as u32),
            0,
            "connect: errno {}",
            errno()
        );
        fails(
            mptun_connect(fd, srv.as_ptr() as *const _, srv.len() as u32) as isize,
            libc::EISCONN,
            "connect twice",
        );

        // MPTCP_INFO (Linux's struct mptcp_info): strict length, then the values
        let mut mi = [0xffu8; MPTCP_INFO_LEN];
        let mut l = 40;
        fails(
            getopt(fd, SOL_MPTCP, MPTCP_INFO, &mut mi[..40], &mut l),
            libc::EINVAL,
            "MPTCP_INFO, short buffer",
        );
        assert_eq!(l as usize, MPTCP_INFO_LEN, "size needed");
        assert!(mi[..40].iter().all(|&b| b == 0), "short buffer zeroed");
        let mut l = MPTCP_INFO_LEN as socklen_t;
        assert_eq!(getopt(fd, SOL_MPTCP, MPTCP_INFO, &mut mi, &mut l), 0);
        assert_eq!(l as usize, MPTCP_INFO_LEN);
        let u32at = |o: usize| u32::from_ne_bytes(mi[o..o + 4].try_into().unwrap());
        let flags = u32at(8);
        assert_eq!(flags & MPTCP_INFO_FLAG_FALLBACK, 0, "not fallen back");
        assert_ne!(
            flags & MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED,
            0,
            "remote key known"
        );
        assert_ne!(u32at(12), 0, "token");
        assert_eq!(mi[80], 1, "one live subflow (the initial one)");
        assert_eq!(mi[0], 0, "no additional subflow yet");

        // MPTUN_GET_EVENTS: whole events only; drained once read
        let mut ev = [0xffu8; 4 * MPTUN_EVENT_LEN];
        let mut l = 10;
        fails(
            getopt(fd, SOL_MPTCP, MPTUN_GET_EVENTS, &mut ev[..10], &mut l),
            libc::EINVAL,
            "events, buffer shorter than one",
        );
        assert_eq!(l as usize, MPTUN_EVENT_LEN);
        let mut l = ev.len() as socklen_t;
        assert_eq!(getopt(fd, SOL_MPTCP, MPTUN_GET_EVENTS, &mut ev, &mut l), 0);
        assert_eq!(l as usize % MPTUN_EVENT_LEN, 0);
        let evs: Vec<(u16, u32)> = ev[..l as usize]
            .chunks_exact(MPTUN_EVENT_LEN)
            .map(|e| {
                (
                    u16::from_ne_bytes([e[0], e[1]]),
                    u32::from_ne_bytes(e[4..8].try_into().unwrap()),
                )
            })
            .collect();
        assert_eq!(
            evs,
            vec![
                (MPTUN_EVENT_ESTABLISHED, 0),
                (MPTUN_EVENT_SUB_ESTABLISHED, 1)
            ],
            "events after connect"
        );
        assert!(ev[l as usize..].iter().all(|&b| b == 0), "rest zeroed");
        let mut l = ev.len() as socklen_t;
        assert_eq!(getopt(fd, SOL_MPTCP, MPTUN_GET_EVENTS, &mut ev, &mut l), 0);
        assert_eq!(l, 0, "drained");

        // GET_SUB_IDS: no buffer / short buffer report the size needed; the output is zeroed
        let mut l: socklen_t = 0;
        fails(
            mptun_getsockopt(
                fd,
                libc::IPPROTO_TCP,
                MPTCP_GET_SUB_IDS,
                ptr::null_mut(),
                &mut l,
            ) as isize,
            libc::EINVAL,
            "sub ids, no buffer",
        );
        assert_eq!(l, 6, "size needed for one subflow");
        let mut short = [0xAAu8; 5];
        let mut l = 5;
        fails(
            getopt(fd, libc::IPPROTO_TCP, MPTCP_GET_SUB_IDS, &mut short, &mut l),
            libc::EINVAL,
            "sub ids, short",
        );
        assert_eq!(l, 6);
        let mut big = [0xAAu8; 64];
        let mut l = 64;
        assert_eq!(
            getopt(fd, libc::IPPROTO_TCP, MPTCP_GET_SUB_IDS, &mut big, &mut l),
            0
        );
        assert_eq!(l, 6);
        assert_eq!(big[0], 1);
        assert!(
            big[6..].iter().all(|&x| x == 0),
            "bytes past the result are zeroed"
        );
        fails(
            mptun_getsockopt(
                fd,
                libc::IPPROTO_TCP,
                MPTCP_GET_SUB_IDS,
                big.as_mut_ptr() as *mut c_void,
                ptr::null_mut(),
            ) as isize,
            libc::EFAULT,
            "optlen NULL",
        );
        fails(
            mptun_getsockopt(fd, 9999, 1, big.as_mut_ptr() as *mut c_void, &mut l) as isize,
            libc::ENOPROTOOPT,
            "unknown level",
        );
        fails(
            mptun_setsockopt(
                fd,
                libc::IPPROTO_TCP,
                MPTCP_GET_SUB_IDS,
                big.as_ptr() as *const c_void,
                8,
            ) as isize,
            libc::ENOPROTOOPT,
            "set of a get-only option",
        );
        let first = sub_ids(fd)[0];
        assert_eq!(first.1 & MPTCP_SUB_SLAVE_SK, 0, "initial subflow");
        assert_ne!(first.1 & MPTCP_SUB_FULLY_ESTABLISHED, 0);

        // GET_SUB_TUPLE
        let mut t = [0u8; SUB_TUPLE_LEN_IN6];
        t[0] = 99;
        let mut l = t.len() as socklen_t;
        fails(
            getopt(fd, libc::IPPROTO_TCP, MPTCP_GET_SUB_TUPLE, &mut t, &mut l),
            libc::EINVAL,
            "tuple of unknown id",
        );
        let mut l = 0;
        fails(
            mptun_getsockopt(
                fd,
                libc::IPPROTO_TCP,
                MPTCP_GET_SUB_TUPLE,
                ptr::null_mut(),
                &mut l,
            ) as isize,
            libc::EINVAL,
            "tuple, no buffer",
        );
        assert_eq!(l as usize, SUB_TUPLE_LEN_IN);
        let mut t = [0xAAu8; 20];
        t[0] = first.0;
        let mut l = 20;
        fails(
            getopt(fd, libc::IPPROTO_TCP, MPTCP_GET_SUB_TUPLE, &mut t, &mut l),
            libc::EINVAL,
            "tuple, short",
        );
        assert_eq!(l as usize, SUB_TUPLE_LEN_IN);
        let mut t = [0xAAu8; SUB_TUPLE_LEN_IN6];
        t[0] = first.0;
        let mut l = t.len() as socklen_t;
        assert_eq!(
            getopt(fd, libc::IPPROTO_TCP, MPTCP_GET_SUB_TUPLE, &mut t, &mut l),
            0
        );
        assert_eq!(l as usize, SUB_TUPLE_LEN_IN);
        assert_eq!(
            read_sockaddr(&t[18..34]).unwrap(),
            "198.18.1.1:5201".parse().unwrap()
        );
        assert_eq!(read_sockaddr(&t[2..18]).unwrap().ip(), ip("198.18.1.2"));
        assert!(t[34..].iter().all(|&x| x == 0));

        // MPTUN_ANNOUNCE / MPTUN_REMOVE_ADDR (userspace path management)
        let announce = |id: u8, a: &str, len: Option<usize>| -> isize {
            let mut b = vec![id, 0u8];
            b.extend(sockaddr(a));
            let n = len.unwrap_or(b.len());
            mptun_setsockopt(
                fd,
                SOL_MPTCP,
                MPTUN_ANNOUNCE,
                b.as_ptr() as *const c_void,
                n as u32,
            ) as isize
        };
        let remove = |id: c_int| -> isize {
            let v = id.to_ne_bytes();
            mptun_setsockopt(
                fd,
                SOL_MPTCP,
                MPTUN_REMOVE_ADDR,
                v.as_ptr() as *const c_void,
                4,
            ) as isize
        };
        fails(
            announce(0, "198.18.2.2:0", None),
            libc::EINVAL,
            "announce id 0",
        );
        fails(
            announce(10, "198.19.39.9:0", None),
            libc::EINVAL,
            "announce, not ours",
        );
        fails(
            announce(10, "198.18.1.2:0", None),
            libc::EINVAL,
            "announce the initial address",
        );
        fails(
            announce(10, "198.18.2.2:0", Some(10)),
            libc::EINVAL,
            "announce, short",
        );
        fails(remove(10), libc::EINVAL, "remove, nothing announced");
        fails(remove(300), libc::EINVAL, "remove, id beyond 255");
        assert_eq!(
            announce(10, "198.18.2.2:0", None),
            0,
            "announce: errno {}",
            errno()
        );
        assert_eq!(
            announce(10, "198.18.2.2:8080", None),
            0,
            "again, with a port"
        );
        fails(
            announce(11, "198.18.2.2:0", None),
            libc::EINVAL,
            "the address has id 10",
        );
        fails(remove(11), libc::EINVAL, "remove an id not announced");
        assert_eq!(remove(10), 0, "remove: errno {}", errno());
        fails(remove(10), libc::EINVAL, "remove twice");

        // OPEN_SUB_TUPLE
        let mut o = vec![0u8, 0u8];
        o.extend(sockaddr("198.18.2.2:0"));
        o.extend(sockaddr("198.18.2.1:5201"));
        let mut l = (o.len() - 1) as socklen_t;
        fails(
            getopt(fd, libc::IPPROTO_TCP, MPTCP_OPEN_SUB_TUPLE, &mut o, &mut l),
            libc::EINVAL,
            "open, odd length",
        );
        let mut bad = o.clone();
        bad[1] = 7;
        let mut l = bad.len() as socklen_t;
        fails(
            getopt(
                fd,
                libc::IPPROTO_TCP,
                MPTCP_OPEN_SUB_TUPLE,
                &mut bad,
                &mut l,
            ),
            libc::EINVAL,
            "open, prio 7",
        );
        let mut bad = o.clone();
        bad[18] = 10; // remote family AF_INET6 in a v4-sized tuple
        let mut l = bad.len() as socklen_t;
        fails(
            getopt(
                fd,
                libc::IPPROTO_TCP,
                MPTCP_OPEN_SUB_TUPLE,
                &mut bad,
                &mut l,
            ),
            libc::EINVAL,
            "open, family mismatch",
        );
        let mut l = o.len() as socklen_t;
        assert_eq!(
            getopt(fd, libc::IPPROTO_TCP, MPTCP_OPEN_SUB_TUPLE, &mut o, &mut l),
            0,
            "open: errno {}",
            errno()
        );
        let id = o[0];
        assert_ne!(id, first.0, "a new id");
        let mut ok = false;
        for _ in 0..500 {
            if sub_ids(fd)
                .iter()
                .any(|&(i, f)| i == id && f & MPTCP_SUB_FULLY_ESTABLISHED != 0)
            {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(ok, "the new subflow became established: {:?}", sub_ids(fd));

        // SUB_GETSOCKOPT: mptun's own layout (MPTUN_TCP_INFO) refuses a short buffer
        let mut info = [0xAAu8; 100];
        let mut ilen = 10u32;
        let mut g = sub_get(id, SOL_MPTCP, MPTUN_TCP_INFO, &mut info, &mut ilen);
        fails(
            run_sub_get(fd, &mut g),
            libc::EINVAL,
            "MPTUN_TCP_INFO short",
        );
        assert_eq!(ilen as usize, std::mem::size_of::<mptun_tcp_info>());
        ilen = 100;
        let mut g = sub_get(id, SOL_MPTCP, MPTUN_TCP_INFO, &mut info, &mut ilen);
        assert_eq!(run_sub_get(fd, &mut g), 0);
        assert_eq!(ilen, 88);
        assert_eq!(info[0], 1, "TCP_ESTABLISHED");
        assert!(info[88..].iter().all(|&x| x == 0), "zeroed past the struct");
        // TCP_INFO is Linux's struct tcp_info: a short buffer gets its first bytes, as Linux
        ilen = 10;
        let mut g = sub_get(id, libc::IPPROTO_TCP, libc::TCP_INFO, &mut info, &mut ilen);
        assert_eq!(run_sub_get(fd, &mut g), 0, "TCP_INFO short");
        assert_eq!(ilen, 10);
        assert_eq!(info[0], 1, "tcpi_state TCP_ESTABLISHED");
        let mut linux = [0u8; LINUX_TCP_INFO_LEN];
        ilen = linux.len() as u32;
        let mut g = sub_get(id, libc::IPPROTO_TCP, libc::TCP_INFO, &mut linux, &mut ilen);
        assert_eq!(run_sub_get(fd, &mut g), 0);
        assert_eq!(ilen as usize, LINUX_TCP_INFO_LEN);
        let snd_mss = u32::from_ne_bytes(linux[16..20].try_into().unwrap());
        assert!(
            (536..=1460).contains(&snd_mss),
            "tcpi_snd_mss at Linux's offset: {snd_mss}"
        );
        let mut g = sub_get(99, libc::IPPROTO_TCP, libc::TCP_INFO, &mut info, &mut ilen);
        fails(run_sub_get(fd, &mut g), libc::EINVAL, "TCP_INFO unknown id");
        let mut g = sub_get(id, libc::IPPROTO_TCP, 9999, &mut info, &mut ilen);
        fails(
            run_sub_get(fd, &mut g),
            libc::ENOPROTOOPT,
            "unknown sub option",
        );
        let mut g = sub_get(99, libc::IPPROTO_TCP, 9999, &mut info, &mut ilen);
        fails(
            run_sub_get(fd, &mut g),
            libc::EINVAL,
            "unknown option on unknown id",
        );
        let mut g = sub_get(id, libc::IPPROTO_TCP, libc::TCP_INFO, &mut info, &mut ilen);
        g.optlen = ptr::null_mut();
        fails(run_sub_get(fd, &mut g), libc::EFAULT, "inner optlen NULL");
        let mut g = sub_get(id, libc::IPPROTO_TCP, libc::TCP_INFO, &mut info, &mut ilen);
        let mut l = 31;
        fails(
            mptun_getsockopt(
                fd,
                libc::IPPROTO_TCP,
                MPTCP_SUB_GETSOCKOPT,
                &mut g as *mut _ as *mut c_void,
                &mut l,
            ) as isize,
            libc::EINVAL,
            "outer length 31",
        );
        assert!(sub_int(fd, id, libc::IPPROTO_TCP, libc::TCP_MAXSEG) > 0);
        assert_eq!(sub_int(fd, id, SOL_MPTCP, MPTUN_SUB_BACKUP), 0);

        // SUB_SETSOCKOPT
        let one = 1i32.to_ne_bytes();
        fails(
            run_sub_set(fd, id, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one[..2]),
            libc::EINVAL,
            "int of 2 bytes",
        );
        fails(
            run_sub_set(fd, 99, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one),
            libc::EINVAL,
            "set on unknown id",
        );
        fails(
            run_sub_set(fd, id, libc::IPPROTO_TCP, libc::TCP_INFO, &one),
            libc::ENOPROTOOPT,
            "set TCP_INFO",
        );
        fails(
            run_sub_set(
                fd,
                id,
                libc::IPPROTO_TCP,
                libc::TCP_MAXSEG,
                &10i32.to_ne_bytes(),
            ),
            libc::EINVAL,
            "MSS 10",
        );
        fails(
            run_sub_set(
                fd,
                id,
                libc::IPPROTO_IP,
                libc::IP_TOS,
                &300i32.to_ne_bytes(),
            ),
            libc::EINVAL,
            "TOS 300",
        );
        fails(
            run_sub_set(
                fd,
                id,
                libc::IPPROTO_TCP,
                libc::TCP_USER_TIMEOUT,
                &(-1i32).to_ne_bytes(),
            ),
            libc::EINVAL,
            "timeout -1",
        );
        fails(
            run_sub_set(fd, id, SOL_MPTCP, MPTUN_SUB_BACKUP, &2i32.to_ne_bytes()),
            libc::EINVAL,
            "backup 2",
        );
        fails(
            mptun_setsockopt(
                fd,
                libc::IPPROTO_TCP,
                MPTCP_SUB_SETSOCKOPT,
                one.as_ptr() as *const c_void,
                4,
            ) as isize,
            libc::EINVAL,
            "outer length 4",
        );
        assert_eq!(
            run_sub_set(
                fd,
                id,
                libc::IPPROTO_IP,
                libc::IP_TOS,
                &0x10i32.to_ne_bytes()
            ),
            0
        );
        assert_eq!(sub_int(fd, id, libc::IPPROTO_IP, libc::IP_TOS), 0x10);
        assert_eq!(
            run_sub_set(
                fd,
                id,
                libc::IPPROTO_TCP,
                libc::TCP_USER_TIMEOUT,
                &5000i32.to_ne_bytes()
            ),
            0
        );
        assert_eq!(
            sub_int(fd, id, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT),
            5000
        );
        assert_eq!(
            run_sub_set(fd, id, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one),
            0
        );
        assert_eq!(sub_int(fd, id, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
        assert_eq!(run_sub_set(fd, id, SOL_MPTCP, MPTUN_SUB_BACKUP, &one), 0);
        assert_eq!(sub_int(fd, id, SOL_MPTCP, MPTUN_SUB_BACKUP), 1);
        assert!(sub_ids(fd)
            .iter()
            .any(|&(i, f)| i == id && f & MPTCP_SUB_LOW_PRIO != 0));

        // data calls
        fails(
            mptun_send(fd, b"x".as_ptr() as *const c_void, 1, libc::MSG_OOB),
            libc::EOPNOTSUPP,
            "MSG_OOB",
        );
        fails(
            mptun_recv(fd, big.as_mut_ptr() as *mut c_void, 8, libc::MSG_OOB),
            libc::EOPNOTSUPP,
            "recv MSG_OOB",
        );
        fails(
            mptun_recv(
                fd,
                big.as_mut_ptr() as *mut c_void,
                8,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            ),
            libc::EAGAIN,
            "MSG_PEEK with nothing to read, non-blocking",
        );
        fails(mptun_send(fd, ptr::null(), 5, 0), libc::EFAULT, "send NULL");
        fails(mptun_shutdown(fd, 7) as isize, libc::EINVAL, "shutdown(7)");
        fails(
            mptun_recv(fd, big.as_mut_ptr() as *mut c_void, 8, libc::MSG_DONTWAIT),
            libc::EAGAIN,
            "nothing to read",
        );
        assert_eq!(mptun_send(fd, big.as_ptr() as *const c_void, 64, 0), 64);

        // poll: the connection is writable, 999 is not a descriptor, -1 is ignored
        let mut p = [
            libc::pollfd {
                fd,
                events: libc::POLLOUT | libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: 999,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: -1,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        assert_eq!(mptun_poll(p.as_mut_ptr(), 3, 1000), 2);
        assert_eq!(p[0].revents, libc::POLLOUT);
        assert_eq!(p[1].revents, libc::POLLNVAL);
        assert_eq!(p[2].revents, 0);
        fails(
            mptun_poll(ptr::null_mut(), 1, 0) as isize,
            libc::EFAULT,
            "poll NULL",
        );

        // CLOSE_SUB_ID
        let close = |id: u8, how: c_int, len: socklen_t| -> isize {
            let c = mptcp_close_sub_id { id, how };
            let mut l = len;
            mptun_getsockopt(
                fd,
                libc::IPPROTO_TCP,
                MPTCP_CLOSE_SUB_ID,
                &c as *const _ as *mut c_void,
                &mut l,
            ) as isize
        };
        fails(
            close(id, libc::SHUT_RDWR, 4),
            libc::EINVAL,
            "close, length 4",
        );
        fails(
            close(99, libc::SHUT_RDWR, 8),
            libc::EINVAL,
            "close unknown id",
        );
        fails(close(id, 7, 8), libc::EINVAL, "close, how 7");
        assert_eq!(
            close(id, MPTUN_SHUT_ABORT, 8),
            0,
            "abortive close: errno {}",
            errno()
        );
        fails(close(id, libc::SHUT_RDWR, 8), libc::EINVAL, "close twice");
        assert!(
            sub_ids(fd).iter().all(|&(i, _)| i != id),
            "closed subflow not listed"
        );

        // after close
        assert_eq!(mptun_close(fd), 0);
        fails(mptun_close(fd) as isize, libc::EBADF, "close twice");
        let mut l = 64;
        fails(
            getopt(fd, libc::IPPROTO_TCP, MPTCP_GET_SUB_IDS, &mut big, &mut l),
            libc::EBADF,
            "getsockopt after close",
        );

        // ----- plain TCP (no MP_CAPABLE): the draft's operations are not supported
        let tcp = mptun_socket(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_TCP);
        assert_eq!(
            mptun_connect(tcp, srv.as_ptr() as *const _, srv.len() as u32),
            0,
            "tcp connect: errno {}",
            errno()
        );
        let mut l = 64;
        fails(
            getopt(tcp, libc::IPPROTO_TCP, MPTCP_GET_SUB_IDS, &mut big, &mut l),
            libc::EOPNOTSUPP,
            "sub ids, plain TCP",
        );
        let mut o2 = o.clone();
        let mut l = o2.len() as socklen_t;
        fails(
            getopt(
                tcp,
                libc::IPPROTO_TCP,
                MPTCP_OPEN_SUB_TUPLE,
                &mut o2,
                &mut l,
            ),
            libc::EOPNOTSUPP,
            "open, plain TCP",
        );
        let mut g = sub_get(1, libc::IPPROTO_TCP, libc::TCP_INFO, &mut info, &mut ilen);
        fails(
            run_sub_get(tcp, &mut g),
            libc::EOPNOTSUPP,
            "TCP_INFO, plain TCP",
        );
        let mut mi = [0u8; MPTCP_INFO_LEN];
        let mut l = MPTCP_INFO_LEN as socklen_t;
        fails(
            getopt(tcp, SOL_MPTCP, MPTCP_INFO, &mut mi, &mut l),
            libc::EOPNOTSUPP,
            "MPTCP_INFO, plain TCP",
        );
        let mut v = [0u8; 4];
        let mut l = 4;
        assert_eq!(
            getopt(tcp, libc::SOL_SOCKET, libc::SO_PROTOCOL, &mut v, &mut l),
            0
        );
        assert_eq!(c_int::from_ne_bytes(v), libc::IPPROTO_TCP);
        assert_eq!(mptun_send(tcp, b"hello".as_ptr() as *const c_void, 5, 0), 5);
        assert_eq!(mptun_shutdown(tcp, libc::SHUT_WR), 0);
        fails(
            mptun_send(tcp, b"x".as_ptr() as *const c_void, 1, 0),
            libc::EPIPE,
            "send after shutdown",
        );

        // ----- non-blocking connect: EINPROGRESS, then POLLOUT and SO_ERROR 0; a refused
        // one: POLLERR, SO_ERROR ECONNREFUSED, and connect again reports it
        let so_error = |fd: c_int| -> c_int {
            let mut v = [0xffu8; 4];
            let mut l = 4;
            assert_eq!(
                getopt(fd, libc::SOL_SOCKET, libc::SO_ERROR, &mut v, &mut l),
                0
            );
            assert_eq!(l, 4);
            c_int::from_ne_bytes(v)
        };
        let nb = mptun_socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
        assert!(nb >= 0);
        fails(
            mptun_connect(nb, srv.as_ptr() as *const _, srv.len() as u32) as isize,
            libc::EINPROGRESS,
            "non-blocking connect",
        );
        let again = mptun_connect(nb, srv.as_ptr() as *const _, srv.len() as u32);
        let e = errno();
        assert!(
            again == -1 && (e == libc::EALREADY || e == libc::EISCONN),
            "connect while connecting: {again}, errno {e}"
        );
        let mut p = [libc::pollfd {
            fd: nb,
            events: libc::POLLOUT,
            revents: 0,
        }];
        assert_eq!(
            mptun_poll(p.as_mut_ptr(), 1, 10_000),
            1,
            "connected in time"
        );
        assert_eq!(p[0].revents, libc::POLLOUT);
        assert_eq!(so_error(nb), 0);
        fails(
            mptun_connect(nb, srv.as_ptr() as *const _, srv.len() as u32) as isize,
            libc::EISCONN,
            "connect after completion",
        );
        assert_eq!(mptun_send(nb, b"hello".as_ptr() as *const c_void, 5, 0), 5);
        assert_eq!(mptun_close(nb), 0);

        let closed_port = sockaddr("198.18.1.1:5999");
        let nb = mptun_socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
        fails(
            mptun_connect(
                nb,
                closed_port.as_ptr() as *const _,
                closed_port.len() as u32,
            ) as isize,
            libc::EINPROGRESS,
            "non-blocking connect, nobody listening",
        );
        let mut p = [libc::pollfd {
            fd: nb,
            events: libc::POLLOUT,
            revents: 0,
        }];
        assert_eq!(
            mptun_poll(p.as_mut_ptr(), 1, 10_000),
            1,
            "failure reported in time"
        );
        assert_ne!(
            p[0].revents & libc::POLLERR,
            0,
            "revents {:#x}",
            p[0].revents
        );
        // as Linux: a failed connection is writable (a write fails at once), POLLOUT with
        // POLLERR|POLLHUP (packetdrill's connect_reset_poll expects exactly that)
        assert_eq!(
            p[0].revents & (libc::POLLOUT | libc::POLLHUP),
            libc::POLLOUT | libc::POLLHUP
        );
        assert_eq!(so_error(nb), libc::ECONNREFUSED);
        fails(
            mptun_connect(
                nb,
                closed_port.as_ptr() as *const _,
                closed_port.len() as u32,
            ) as isize,
            libc::ECONNREFUSED,
            "connect again after the refusal",
        );
        assert_eq!(mptun_close(nb), 0);

        // ----- fini
        assert_eq!(mptun_fini(), 0);
        fails(mptun_fini() as isize, libc::ENETDOWN, "fini twice");
        fails(
            mptun_socket(libc::AF_INET, libc::SOCK_STREAM, 0) as isize,
            libc::ENETDOWN,
            "socket after fini",
        );
    }
}
