//! The harness itself: Linux MPTCP <-> Linux MPTCP across two namespaces joined by two veth
//! pairs, with `mptun linux-peer` at both ends. If this fails, interop failures mean nothing.

mod common;

use common::{assert_counters, exe, TIMEOUT_SECS};
use mptun::testbed::peer::PeerArgs;
use mptun::testbed::{require_privileges, NetNs};

const SIZE: u64 = 8 * 1024 * 1024;

#[test]
fn kernel_mptcp_to_kernel_mptcp_over_two_paths() {
    if !require_privileges("kernel_mptcp_to_kernel_mptcp_over_two_paths") {
        return;
    }
    let client = NetNs::new("kk-client").expect("client namespace");
    let server = NetNs::new("kk-server").expect("server namespace");
    client
        .add_veth_pair("va1", "198.19.41.1/24", &server, "vb1", "198.19.41.2/24")
        .expect("veth path 1");
    client
        .add_veth_pair("va2", "198.19.42.1/24", &server, "vb2", "198.19.42.2/24")
        .expect("veth path 2");
    // Shape both paths both ways so the transfer lasts long enough (about a second) for the
    // join to happen and carry data (and so tbf is exercised).
    for (ns, dev) in [
        (&client, "va1"),
        (&client, "va2"),
        (&server, "vb1"),
        (&server, "vb2"),
    ] {
        ns.tbf(dev, "50mbit").expect("tbf");
    }
    for ns in [&client, &server] {
        ns.mptcp_limits(4, 4).expect("limits");
    }
    // The server announces its address on path 2 (ADD_ADDR); the client joins it.
    server
        .mptcp_endpoint("198.19.42.2", "vb2", &["signal"])
        .expect("endpoint");

    let (c0, s0) = (
        client.mptcp_counters().expect("counters"),
        server.mptcp_counters().expect("counters"),
    );
    // Listen on the wildcard address: the join arrives at 198.19.42.2, and Linux needs a
    // listener matching each address a subflow is opened to.
    let addr = "198.19.41.2:5201".parse().unwrap();
    let any = "0.0.0.0:5201".parse().unwrap();
    let srv = server
        .start_peer(&exe(), &PeerArgs::listen(any, SIZE, 2), TIMEOUT_SECS)
        .expect("start server");
    let cli = client
        .start_peer(&exe(), &PeerArgs::connect(addr, SIZE, 1), TIMEOUT_SECS)
        .expect("start client");
    let cr = client.finish_peer(cli).expect("client peer");
    let sr = server.finish_peer(srv).expect("server peer");

    assert!(cr.mptcp && sr.mptcp);
    assert_eq!((cr.bytes_sent, cr.bytes_received), (SIZE, SIZE));
    assert_eq!((sr.bytes_sent, sr.bytes_received), (SIZE, SIZE));
    assert_eq!(
        cr.sent_sha256, sr.received_sha256,
        "client -> server digest"
    );
    assert_eq!(
        sr.sent_sha256, cr.received_sha256,
        "server -> client digest"
    );
    assert_ne!(
        cr.sent_sha256, sr.sent_sha256,
        "the two directions use different seeds"
    );

    let (c1, s1) = (
        client.mptcp_counters().expect("counters"),
        server.mptcp_counters().expect("counters"),
    );
    let fallback = [
        "MPCapableFallbackACK",
        "MPCapableFallbackSYNACK",
        "DSSNotMatching",
    ];
    assert_counters(
        &s0,
        &s1,
        &["MPCapableSYNRX", "MPCapableACKRX", "MPJoinSynRx"],
        &fallback,
    );
    assert_counters(
        &c0,
        &c1,
        &["MPCapableSYNACKRX", "AddAddr", "MPJoinSynAckRx"],
        &fallback,
    );
}

#[test]
fn namespace_is_removed_on_drop_even_after_panic() {
    if !require_privileges("namespace_is_removed_on_drop_even_after_panic") {
        return;
    }
    let name = std::sync::Mutex::new(String::new());
    let r = std::panic::catch_unwind(|| {
        let ns = NetNs::new("drop-check").expect("namespace");
        ns.add_tun("tun0", "198.18.9.1/24").expect("tun");
        let mut sleeper = ns.exec(["sleep", "600"]);
        ns.spawn(&mut sleeper).expect("spawn");
        *name.lock().unwrap() = ns.name().to_string();
        panic!("simulated test failure");
    });
    assert!(r.is_err());
    let name = name.into_inner().unwrap();
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name.as_str())),
        "{name} still exists: {list}"
    );
}

#[test]
fn plain_tcp_peer_does_not_count_as_mptcp() {
    if !require_privileges("plain_tcp_peer_does_not_count_as_mptcp") {
        return;
    }
    let ns = NetNs::new("kk-tcp").expect("namespace");
    let before = ns.mptcp_counters().expect("counters");
    let addr = "127.0.0.1:5202".parse().unwrap();
    let mut l = PeerArgs::listen(addr, 100_000, 3);
    l.tcp = true;
    let srv = ns.start_peer(&exe(), &l, TIMEOUT_SECS).expect("server");
    // An MPTCP client against a plain TCP server falls back.
    let cli = ns
        .start_peer(&exe(), &PeerArgs::connect(addr, 100_000, 4), TIMEOUT_SECS)
        .expect("client");
    let cr = ns.finish_peer(cli).expect("client");
    let sr = ns.finish_peer(srv).expect("server");
    assert_eq!(cr.sent_sha256, sr.received_sha256);
    assert_eq!(sr.sent_sha256, cr.received_sha256);
    let after = ns.mptcp_counters().expect("counters");
    assert_counters(&before, &after, &[], &["MPCapableSYNRX"]);
    // The kernel saw an MP_CAPABLE SYN go out and no MP_CAPABLE SYN/ACK come back.
    assert_counters(&before, &after, &["MPCapableSYNTX"], &["MPCapableSYNACKRX"]);
}
