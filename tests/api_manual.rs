//! The manually driven stack (`mptun::api::manual::ManualDriver`, the Rust side of the C
//! ABI's `mptun_instance_*`): two instances back to back on a fake clock moved by a pump
//! thread, application calls blocking on other threads. Checks that blocked calls are woken
//! by packets injected from another thread and that their timeouts run on the instance's
//! clock, not the wall clock. No root, no device.

use mptun::api::manual::{ManualDriver, MAX_PACKET};
use mptun::api::{MptcpListener, MptcpStream};
use mptun::crypto::KeyGen;
use mptun::mptcp::ConnConfig;
use mptun::stack::{Stack, StackConfig};
use mptun::time::Instant;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn driver(addrs: &[&str], seed: u64) -> Arc<ManualDriver> {
    let cfg = StackConfig {
        addrs: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        conn: ConnConfig {
            path_manager: "manual".into(),
            ..ConnConfig::default()
        },
        ..StackConfig::default()
    };
    Arc::new(ManualDriver::new(Stack::new(cfg, KeyGen::from_seed(seed))))
}

/// Moves packets between `a` and `b` (2 ms one way) and the fake clock forward by 1 ms per
/// round until `stop`; returns the number of packets moved.
fn pump(a: Arc<ManualDriver>, b: Arc<ManualDriver>, stop: Arc<AtomicBool>) -> usize {
    let mut now = Instant::ZERO;
    let mut in_flight: Vec<(Instant, bool, Vec<u8>)> = Vec::new();
    let mut moved = 0;
    let mut buf = vec![0u8; MAX_PACKET];
    while !stop.load(Ordering::Relaxed) {
        for (to_b, d) in [(true, &a), (false, &b)] {
            while let Ok(Some(n)) = d.output(&mut buf) {
                in_flight.push((now + Duration::from_millis(2), to_b, buf[..n].to_vec()));
            }
        }
        let (due, later): (Vec<_>, Vec<_>) = in_flight.drain(..).partition(|p| p.0 <= now);
        in_flight = later;
        for (_, to_b, p) in due {
            if to_b { &b } else { &a }.input(now, &p);
            moved += 1;
        }
        now += Duration::from_millis(1);
        a.advance(now);
        b.advance(now);
        // let the application threads run between rounds
        std::thread::sleep(Duration::from_micros(200));
    }
    moved
}

#[test]
fn blocking_calls_on_manual_instances_are_woken_by_input_and_timed_on_their_clock() {
    let client = driver(&["198.19.0.1", "198.19.1.1"], 1);
    let server = driver(&["198.19.0.2", "198.19.1.2"], 2);
    let listener = MptcpListener::bind(server.handle(), 7000).unwrap();

    // a blocking accept before any packet exists: woken by the pump's input
    let acceptor = std::thread::spawn(move || {
        let (s, peer) = listener.accept().unwrap();
        (s, peer)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let pumper = {
        let (a, b, s) = (client.clone(), server.clone(), stop.clone());
        std::thread::spawn(move || pump(a, b, s))
    };

    let c = MptcpStream::connect_with(
        client.handle(),
        "198.19.0.2:7000".parse().unwrap(),
        None,
        None,
        Some(Duration::from_secs(10)),
    )
    .unwrap();
    let (s, peer) = acceptor.join().unwrap();
    assert_eq!(peer.ip().to_string(), "198.19.0.1");

    // a join, then data both ways with blocking reads on their own threads
    let id = c
        .open_subflow(
            "198.19.1.1:0".parse().unwrap(),
            "198.19.1.2:7000".parse().unwrap(),
            false,
        )
        .unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let reader = {
        let s = s.try_clone().unwrap();
        let want = data.len();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            while got.len() < want {
                let n = (&s).read(&mut buf).unwrap();
                assert!(n > 0, "early end of stream");
                got.extend_from_slice(&buf[..n]);
            }
            got
        })
    };
    (&c).write_all(&data).unwrap();
    let got = reader.join().unwrap();
    assert!(got == data, "data changed on the way");
    let mut joined = false;
    for _ in 0..500 {
        joined = c
            .subflows()
            .unwrap()
            .iter()
            .any(|f| f.id == id && f.established);
        if joined {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(joined, "join not established: {:?}", c.subflows());

    // a read timeout of 3 s runs on the fake clock (1 ms per pump round of ~0.2 ms real):
    // it fires in well under the 3 s of wall clock
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let t0 = client.now();
    let wall = std::time::Instant::now();
    let mut b = [0u8; 16];
    let e = (&c).read(&mut b).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    let virt = client.now() - t0;
    assert!(
        virt >= Duration::from_secs(3),
        "timed out after {virt:?} of fake time"
    );
    assert!(
        wall.elapsed() < Duration::from_secs(3) || virt > Duration::from_secs(6),
        "the timeout followed the wall clock: {:?} real, {virt:?} fake",
        wall.elapsed()
    );

    drop(c);
    drop(s);
    stop.store(true, Ordering::Relaxed);
    let moved = pumper.join().unwrap();
    assert!(moved > 200, "{moved} packets");

    // stopping an instance fails a call blocked on it instead of leaving it hanging
    let lone = driver(&["198.19.9.1"], 3);
    let l = MptcpListener::bind(lone.handle(), 1).unwrap();
    let t = std::thread::spawn(move || l.accept().map(|_| ()));
    std::thread::sleep(Duration::from_millis(50));
    lone.stop("test over");
    assert!(t.join().unwrap().is_err());
}
