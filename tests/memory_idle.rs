//! Memory per connection: buffers are allocated lazily, grow with the data and are given
//! back when drained and idle (issue 8, item 5). Two measures:
//! - `Connection::memory_footprint` (the structural account of what a connection owns);
//! - the live heap bytes seen by a counting global allocator (everything, whatever owns it).
//!
//! The tests share the global counter, so they take a lock.

mod simutil;

use mptun::io::impair::Impairment;
use mptun::mptcp::{ConnConfig, MEM_IDLE_TRIM};
use mptun::stack::{ConnId, Stack, StackError};
use mptun::time::Duration;
use simutil::*;
use std::net::SocketAddr;
use std::sync::Mutex;

static SERIAL: Mutex<()> = Mutex::new(());

#[path = "common/alloc.rs"]
mod alloc;
use alloc::live;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// The budget per idle established connection (issue 8): 256 kB.
const BUDGET: usize = 256 * 1024;

/// Open `n` connections and step until each is established on both ends and accepted.
fn open(p: &mut Pair, n: usize, accepted: &mut Vec<ConnId>) -> Vec<ConnId> {
    let ids: Vec<ConnId> = (0..n)
        .map(|_| {
            let now = p.now();
            p.client
                .connect(now, SocketAddr::new(SERVER1, PORT), Some(CLIENT1), None)
                .expect("connect")
        })
        .collect();
    let want = accepted.len() + n;
    let ok = p.run_until(Duration::from_secs(10), |p| {
        while let Some(s) = p.server.accept(PORT) {
            accepted.push(s);
        }
        accepted.len() == want
            && ids
                .iter()
                .all(|&c| p.client.connection(c).is_some_and(|x| x.is_established()))
    });
    assert!(ok, "connections established");
    ids
}

/// Step with nothing to do for `d` of virtual time (timers run).
fn idle(p: &mut Pair, d: Duration) {
    let until = p.now() + d;
    p.run_until(d + Duration::from_secs(1), |p| p.now() >= until);
}

#[test]
fn idle_established_connections_cost_at_most_256_kb() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = Pair::new(11, Impairment::default());
    let mut accepted = Vec::new();
    // warm up the stacks' own tables (hash maps) with one connection
    let first = open(&mut p, 1, &mut accepted);
    idle(&mut p, Duration::from_secs(3));

    let n = 32;
    let before = live();
    let ids = open(&mut p, n, &mut accepted);
    idle(&mut p, Duration::from_secs(3));
    let after = live();
    let per_pair = ((after - before).max(0) as usize) / n;
    println!("live heap per connection, both ends together: {per_pair} bytes");
    assert!(
        per_pair <= BUDGET,
        "an idle established connection (both ends) holds {per_pair} bytes of heap"
    );

    let cfg = ConnConfig::default();
    for (&c, &s) in ids.iter().zip(&accepted[first.len()..]) {
        for (stack, id) in [(&p.client, c), (&p.server, s)] {
            let conn = stack.connection(id).expect("connection");
            assert!(conn.is_established());
            let fp = conn.memory_footprint();
            assert!(fp <= BUDGET, "footprint {fp}");
            assert!(fp >= core::mem::size_of::<mptun::mptcp::Connection>());
            // nothing allocated for data yet, and the window still promises the whole buffer
            assert_eq!(
                conn.buffer_sizes(),
                (cfg.send_buffer, 0, cfg.recv_buffer, 0)
            );
            assert_eq!(conn.recv_window() as usize, cfg.recv_buffer);
        }
    }
}

/// Moves data without closing: the client writes `c_data`, the server `s_data`; each side
/// reads what arrives when `read` allows.
struct Flow {
    c: ConnId,
    s: ConnId,
    c_sent: usize,
    s_sent: usize,
    c_recv: Vec<u8>,
    s_recv: Vec<u8>,
}

impl Flow {
    fn pump(&mut self, p: &mut Pair, c_data: &[u8], s_data: &[u8], read: bool) {
        let mut buf = [0u8; 16384];
        for (stack, id, data, sent) in [
            (&mut p.client, self.c, c_data, &mut self.c_sent),
            (&mut p.server, self.s, s_data, &mut self.s_sent),
        ] {
            while *sent < data.len() {
                match stack.send(id, &data[*sent..]) {
                    Ok(n) => *sent += n,
                    Err(StackError::WouldBlock) => break,
                    Err(e) => panic!("send: {e}"),
                }
            }
        }
        if !read {
            return;
        }
        for (stack, id, got) in [
            (&mut p.client, self.c, &mut self.c_recv),
            (&mut p.server, self.s, &mut self.s_recv),
        ] {
            loop {
                match stack.recv(id, &mut buf) {
                    Ok(0) | Err(StackError::WouldBlock) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => panic!("recv: {e}"),
                }
            }
        }
    }
}

fn allocated(st: &Stack, id: ConnId) -> (usize, usize) {
    let (_, s, _, r) = st.connection(id).expect("connection").buffer_sizes();
    (s, r)
}

#[test]
fn buffers_grow_with_data_and_are_released_when_drained_and_idle() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = Pair::new(12, Impairment::default());
    let mut accepted = Vec::new();
    let c = open(&mut p, 1, &mut accepted)[0];
    let s = accepted[0];
    let cfg = ConnConfig::default();
    let c_data = data(6 << 20, 1);
    let s_data = data(5 << 20, 2);
    let mut f = Flow {
        c,
        s,
        c_sent: 0,
        s_sent: 0,
        c_recv: Vec::new(),
        s_recv: Vec::new(),
    };

    // Phase 1: nobody reads. The writers fill their send buffers to the configured
    // maximum and the receivers' buffers grow until the window (the whole configured
    // buffer, promised from the start) is used up.
    let ok = p.run_until(Duration::from_secs(60), |p| {
        f.pump(p, &c_data, &s_data, false);
        let sc = p.server.connection(s).expect("server");
        let cc = p.client.connection(c).expect("client");
        // the last sliver of the window (below one segment / the window scale) may stay open
        sc.readable() + 65536 > cfg.recv_buffer && cc.readable() + 65536 > cfg.recv_buffer
    });
    let held = |st: &Stack, id| st.connection(id).map(|x| x.readable());
    assert!(
        ok,
        "the receive buffers fill up to their capacity: {:?} {:?}",
        held(&p.client, c),
        held(&p.server, s)
    );
    for (st, id) in [(&p.client, c), (&p.server, s)] {
        let conn = st.connection(id).unwrap();
        let (sc, sa, rc, ra) = conn.buffer_sizes();
        assert_eq!((sc, rc), (cfg.send_buffer, cfg.recv_buffer));
        // the ring (plus the small reassembly range table)
        assert!(
            ra >= rc && ra < rc + 65536,
            "receive ring grew to the configured maximum: {ra}"
        );
        assert_eq!(sa, sc, "send ring grew to the configured maximum");
        assert!(conn.recv_window() < 65536);
        assert!(conn.memory_footprint() > 2 * cfg.recv_buffer);
    }
    // idle while full: nothing can be given back (the data is held), nothing is lost
    idle(&mut p, MEM_IDLE_TRIM * 3);
    assert!(allocated(&p.server, s).1 >= cfg.recv_buffer);

    // Phase 2: read everything; the rest flows.
    let ok = p.run_until(Duration::from_secs(60), |p| {
        f.pump(p, &c_data, &s_data, true);
        f.s_recv.len() == c_data.len() && f.c_recv.len() == s_data.len()
    });
    assert!(ok, "transfer completes");
    assert!(f.s_recv == c_data, "client -> server intact");
    assert!(f.c_recv == s_data, "server -> client intact");
    p.run_until(Duration::from_secs(10), |p| {
        p.client.connection(c).unwrap().all_acked() && p.server.connection(s).unwrap().all_acked()
    });

    // Phase 3: drained; after MEM_IDLE_TRIM without activity the memory is given back.
    idle(&mut p, MEM_IDLE_TRIM * 2);
    for (st, id) in [(&p.client, c), (&p.server, s)] {
        let conn = st.connection(id).unwrap();
        assert!(conn.is_established(), "still open");
        assert_eq!(allocated(st, id), (0, 0), "drained buffers released");
        let fp = conn.memory_footprint();
        println!("footprint after a drained transfer: {fp} bytes");
        assert!(fp <= BUDGET, "footprint after a drained transfer: {fp}");
        assert_eq!(conn.recv_window() as usize, cfg.recv_buffer);
    }

    // Phase 4: the connection still works after the release (the rings grow again).
    let c2 = data(300_000, 3);
    let s2 = data(200_000, 4);
    let (c_base, s_base) = (f.c_recv.len(), f.s_recv.len());
    f.c_sent = 0;
    f.s_sent = 0;
    let ok = p.run_until(Duration::from_secs(30), |p| {
        f.pump(p, &c2, &s2, true);
        f.s_recv.len() == s_base + c2.len() && f.c_recv.len() == c_base + s2.len()
    });
    assert!(ok, "second transfer completes");
    assert!(f.s_recv[s_base..] == c2[..]);
    assert!(f.c_recv[c_base..] == s2[..]);
}
