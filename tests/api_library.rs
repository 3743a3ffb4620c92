//! The library surface a program depending on mptun (`default-features = false`) uses:
//! `Runtime::builder()`, `MptcpListener::local_addr` / `incoming`, and errors that convert
//! into `std::io::Error`. Two runtimes in one process joined by two `SeqPacketDevice` pairs
//! (no root, no TUN device). Uses nothing of the `cli` feature.

use mptun::api::{MptcpListener, MptcpStream, SubflowApiError, SubflowStatus};
use mptun::io::driver::{Runtime, SeqPacketDevice};
use mptun::io::BuildError;
use mptun::pm::Limits;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr};
use std::time::{Duration, Instant};

const C1: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const C2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 2));
const S1: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1));
const S2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 2, 1));
const PORT: u16 = 5201;
const T: Duration = Duration::from_secs(10);

/// Client and server runtimes built with the builder; the client's second address is a
/// backup path and its path manager opens subflows over both devices.
fn pair(seed: u64) -> (Runtime, Runtime) {
    let (c0, s0) = SeqPacketDevice::pair("c0", "s0").expect("pair 0");
    let (c1, s1) = SeqPacketDevice::pair("c1", "s1").expect("pair 1");
    let server = Runtime::builder()
        .device(s0, S1)
        .device(s1, S2)
        .path_manager("manual")
        .seed(seed * 2 + 1)
        .start()
        .expect("server runtime");
    let client = Runtime::builder()
        .device(c0, C1)
        .device(c1, C2)
        .path_manager("fullmesh")
        .scheduler("roundrobin")
        .congestion("olia")
        .limits(Limits {
            max_subflows: 2,
            ..Limits::default()
        })
        .backup(C2)
        .seed(seed * 2 + 2)
        .start()
        .expect("client runtime");
    (client, server)
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + T;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn builder_runtimes_carry_a_connection_from_incoming() {
    let (client_rt, server_rt) = pair(1);
    // the builder's choices are the stack's connection defaults
    let (sched, cc, limits) = client_rt.handle().with_stack(|s| {
        let c = &s.config().conn;
        (c.scheduler.clone(), c.tcp.congestion, c.limits)
    });
    assert_eq!((sched.as_str(), cc), ("roundrobin", "olia"));
    assert_eq!(limits.max_subflows, 2);

    let listener = MptcpListener::bind(server_rt.handle(), PORT).expect("bind");
    assert_eq!(
        listener.local_addr().expect("local_addr"),
        SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), PORT)
    );
    assert_eq!(listener.local_addr().unwrap().port(), listener.port());

    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let client = {
        let handle = client_rt.handle().clone();
        let payload = payload.clone();
        std::thread::spawn(move || -> io::Result<(Vec<u8>, Vec<SubflowStatus>)> {
            let mut s = MptcpStream::connect_with(
                &handle,
                SocketAddr::new(S1, PORT),
                Some(C1),
                None,
                Some(T),
            )?;
            // fullmesh opens the second subflow over the second device (before the data:
            // joins stop once the connection is closing)
            wait_until("a subflow from the second address", || {
                s.subflows()
                    .unwrap_or_default()
                    .iter()
                    .any(|f| f.local.ip() == C2 && f.established)
            });
            let subflows = s.subflows()?;
            s.write_all(&payload)?;
            s.shutdown(Shutdown::Write)?;
            let mut echoed = Vec::new();
            s.read_to_end(&mut echoed)?;
            Ok((echoed, subflows))
        })
    };

    // the server echoes what arrives on the first stream `incoming` yields
    for stream in listener.incoming().take(1) {
        let mut s = stream.expect("incoming stream");
        assert_eq!(s.peer_addr().unwrap().ip(), C1);
        let mut got = Vec::new();
        s.read_to_end(&mut got).expect("read");
        assert_eq!(got, payload, "the server received the client's bytes");
        s.write_all(&got).expect("echo");
        s.shutdown(Shutdown::Write).expect("shutdown");
    }
    let (echoed, subflows) = client.join().unwrap().expect("client");
    assert_eq!(echoed, payload, "the echo came back whole");
    // the join from the second address is a backup subflow (builder.backup)
    let first = subflows
        .iter()
        .find(|f| f.local.ip() == C1)
        .expect("initial");
    let second = subflows.iter().find(|f| f.local.ip() == C2).expect("join");
    assert!(first.initial && !first.backup, "{first:?}");
    assert!(!second.initial && second.backup, "{second:?}");
}

#[test]
fn incoming_in_nonblocking_mode_yields_would_block() {
    let (_client_rt, server_rt) = pair(2);
    let listener = MptcpListener::bind(server_rt.handle(), PORT).expect("bind");
    listener.set_nonblocking(true).unwrap();
    match listener.incoming().next() {
        Some(Err(e)) => assert_eq!(e.kind(), ErrorKind::WouldBlock),
        other => panic!("expected WouldBlock, got {other:?}"),
    }
}

#[test]
fn listener_local_addr_is_v6_unspecified_on_a_v6_only_stack() {
    let (a, _b) = SeqPacketDevice::pair("a", "b").unwrap();
    let rt = Runtime::builder()
        .device(a, IpAddr::V6("2001:db8::2".parse().unwrap()))
        .start()
        .expect("runtime");
    let l = MptcpListener::bind(rt.handle(), 8080).expect("bind");
    assert_eq!(
        l.local_addr().unwrap(),
        SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 8080)
    );
}

#[test]
fn unknown_policy_names_are_typed_errors() {
    let dev = || SeqPacketDevice::pair("x", "y").unwrap().0;
    let e = Runtime::builder()
        .device(dev(), C1)
        .scheduler("fastest-first")
        .start()
        .unwrap_err();
    assert!(
        matches!(&e, BuildError::UnknownScheduler(n) if n == "fastest-first"),
        "{e:?}"
    );
    assert!(e.to_string().contains("one of minrtt, roundrobin"), "{e}");
    let e = Runtime::builder()
        .device(dev(), C1)
        .congestion("bbr")
        .start()
        .unwrap_err();
    assert!(
        matches!(&e, BuildError::UnknownCongestion(n) if n == "bbr"),
        "{e:?}"
    );
    let e = Runtime::builder()
        .device(dev(), C1)
        .path_manager("ndiffports:100000")
        .start()
        .unwrap_err();
    assert!(matches!(&e, BuildError::UnknownPathManager { .. }), "{e:?}");
    assert!(matches!(
        Runtime::builder().start().unwrap_err(),
        BuildError::NoDevices
    ));
    // `?` in an io::Result function: InvalidInput, the typed error inside
    fn start_io() -> io::Result<Runtime> {
        let (d, _) = SeqPacketDevice::pair("x", "y")?;
        Ok(Runtime::builder().device(d, C1).scheduler("nope").start()?)
    }
    let e = start_io().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e
        .get_ref()
        .and_then(|i| i.downcast_ref::<BuildError>())
        .is_some());
}

#[test]
fn subflow_errors_convert_into_io_errors() {
    let (client_rt, server_rt) = pair(3);
    let listener = MptcpListener::bind(server_rt.handle(), PORT).expect("bind");
    let s = MptcpStream::connect_with(
        client_rt.handle(),
        SocketAddr::new(S1, PORT),
        Some(C1),
        None,
        Some(T),
    )
    .expect("connect");
    let _server_side = listener.accept_timeout(Some(T)).expect("accept");
    // the operations' errors go through `?` in io::Result code with a fitting kind
    fn tuple(s: &MptcpStream, id: u32) -> io::Result<(SocketAddr, SocketAddr)> {
        Ok(s.subflow_tuple(id)?)
    }
    let e = tuple(&s, 9999).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.get_ref()
            .and_then(|i| i.downcast_ref::<SubflowApiError>()),
        Some(&SubflowApiError::UnknownId)
    );
    // local and remote of different families: InvalidArgument (EINVAL), InvalidInput
    let v6_remote = SocketAddr::new("2001:db8::1".parse().unwrap(), PORT);
    let e = s
        .open_subflow(SocketAddr::new(C2, 0), v6_remote, false)
        .unwrap_err();
    assert_eq!(e, SubflowApiError::InvalidArgument);
    let e = io::Error::from(e);
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}
