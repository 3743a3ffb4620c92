//! Real TUN device tests inside a private network namespace.
//!
//! Each test runs in its own thread that calls `unshare(CLONE_NEWNET)`: only that thread (and
//! the `ip` commands it spawns) enters the new namespace, the host is never touched. Needs
//! root (CAP_NET_ADMIN + CAP_SYS_ADMIN); without it the tests print why they skip, unless
//! `CI=true` where they must run.

use mptun::io::tun::{poll_fds, Tun, Waker, VNET_HDR_LEN};
use std::io;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Runs `f` in a thread inside a fresh network namespace; returns false if skipped.
fn in_netns(test: &str, f: impl FnOnce() + Send + 'static) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && !in_ci() {
        eprintln!("skipping {test}: needs root for a network namespace and a TUN device (set CI=true to force)");
        return false;
    }
    let h = std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_NEWNET) only changes this thread's network namespace.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if in_ci() {
                panic!("unshare(CLONE_NEWNET) failed under CI: {e}");
            }
            eprintln!("skipping: unshare(CLONE_NEWNET) failed: {e}");
            return false;
        }
        f();
        true
    });
    match h.join() {
        Ok(ran) => ran,
        Err(p) => std::panic::resume_unwind(p),
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn icmp_echo_request(src: Ipv4Addr, dst: Ipv4Addr, id: u16, seq: u16) -> Vec<u8> {
    let payload = b"mptun-tun-test";
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 1; // ICMP
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = csum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p[20] = 8; // echo request
    p[24..26].copy_from_slice(&id.to_be_bytes());
    p[26..28].copy_from_slice(&seq.to_be_bytes());
    p[28..].copy_from_slice(payload);
    let c = csum(&p[20..]);
    p[22..24].copy_from_slice(&c.to_be_bytes());
    p
}

/// Reads packets until `want` accepts one (returns it) or 3 s pass.
fn read_until(tun: &Tun, skip: usize, mut want: impl FnMut(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = vec![0u8; mptun::io::tun::MAX_PACKET];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out waiting for a packet on {}",
            tun.name()
        );
        let mask = poll_fds(&[tun.as_raw_fd()], Some(left)).unwrap();
        if mask == 0 {
            continue;
        }
        match tun.recv(&mut buf) {
            Ok(n) => {
                let pkt = &buf[skip.min(n)..n];
                if want(pkt) {
                    return pkt.to_vec();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("recv: {e}"),
        }
    }
}

use std::os::fd::AsRawFd;

fn is_udp_to(p: &[u8], port: u16, payload: &[u8]) -> bool {
    p.len() >= 28
        && p[0] >> 4 == 4
        && p[9] == 17
        && u16::from_be_bytes([p[22], p[23]]) == port
        && &p[28..] == payload
}

#[test]
fn tun_kernel_round_trips() {
    in_netns("tun_kernel_round_trips", || {
        let tun = Tun::open("mpt0").expect("open TUN");
        assert_eq!(tun.name(), "mpt0");
        assert!(!tun.has_vnet_hdr());
        // Nothing queued yet: nonblocking read.
        let mut b = [0u8; 2048];
        assert_eq!(
            tun.recv(&mut b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        ip(&["link", "set", "lo", "up"]);
        ip(&["addr", "add", "198.19.60.1/24", "dev", "mpt0"]);
        ip(&["link", "set", "mpt0", "mtu", "1400", "up"]);
        assert_eq!(tun.mtu().unwrap(), 1400);

        // Kernel -> TUN: a UDP datagram routed out of mpt0.
        let sock = UdpSocket::bind("198.19.60.1:0").unwrap();
        sock.send_to(b"hello-mptun", "198.19.60.2:9999").unwrap();
        let p = read_until(&tun, 0, |p| is_udp_to(p, 9999, b"hello-mptun"));
        assert_eq!(&p[12..16], &[198, 19, 60, 1]);
        assert_eq!(&p[16..20], &[198, 19, 60, 2]);

        // TUN -> kernel -> TUN: ICMP echo request answered by the kernel.
        let req = icmp_echo_request(
            Ipv4Addr::new(198, 19, 60, 2),
            Ipv4Addr::new(198, 19, 60, 1),
            0x4d50,
            7,
        );
        assert_eq!(tun.send(&req).unwrap(), req.len());
        let rep = read_until(&tun, 0, |p| {
            p.len() >= 28 && p[9] == 1 && p[20] == 0 && p[24..26] == [0x4d, 0x50]
        });
        assert_eq!(&rep[12..16], &[198, 19, 60, 1]);
        assert_eq!(&rep[16..20], &[198, 19, 60, 2]);
        assert_eq!(u16::from_be_bytes([rep[26], rep[27]]), 7);
        assert_eq!(&rep[28..], b"mptun-tun-test");
        assert_eq!(
            csum(&rep[20..]),
            0,
            "kernel reply has a valid ICMP checksum"
        );

        // A garbage write is an error or silently dropped by the kernel, never a panic.
        let _ = tun.send(&[0xff; 3]);

        // A waker and the TUN fd in one poll: the waker bit alone is set.
        let w = Waker::new().unwrap();
        w.wake().unwrap();
        let mask = poll_fds(&[tun.as_raw_fd(), w.fd()], Some(Duration::from_secs(1))).unwrap();
        assert_eq!(mask & 0b10, 0b10);
    });
}

#[test]
fn tun_attach_persistent_and_offload() {
    in_netns("tun_attach_persistent_and_offload", || {
        // Attach to a device made by `ip tuntap add`.
        ip(&["tuntap", "add", "dev", "mpt1", "mode", "tun"]);
        let tun = Tun::open("mpt1").expect("attach to existing TUN");
        assert_eq!(tun.name(), "mpt1");
        drop(tun);
        // Still there after close (persistent), and re-attachable.
        ip(&["link", "show", "mpt1"]);
        let _again = Tun::open("mpt1").expect("re-attach");

        // Offload: every packet starts with a virtio_net_hdr.
        let tun = Tun::open_with_offload("mpt2").expect("open with offload");
        assert!(tun.has_vnet_hdr());
        ip(&["addr", "add", "198.19.70.1/24", "dev", "mpt2"]);
        ip(&["link", "set", "mpt2", "up"]);
        let sock = UdpSocket::bind("198.19.70.1:0").unwrap();
        sock.send_to(b"offload", "198.19.70.2:7777").unwrap();
        let p = read_until(&tun, VNET_HDR_LEN, |p| is_udp_to(p, 7777, b"offload"));
        assert_eq!(&p[16..20], &[198, 19, 70, 2]);
    });
}
