//! `Scheduler::schedule` and `PathManager::on_event` must not allocate (checked with a
//! counting global allocator; this test binary holds only this test so nothing runs beside it).

use mptun::pm::{CommandQueue, Limits, LocalAddr, PmContext, PmEvent, PmSubflow, RemoteAddr};
use mptun::sched::{self, Blocked, SchedContext, SubflowView};
use mptun::time::{Duration, Instant};
use std::sync::atomic::Ordering;

#[path = "common/alloc.rs"]
mod alloc;
use alloc::{ALLOCS, COUNTING};

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

#[test]
fn policies_do_not_allocate() {
    alloc::watch_this_thread();
    COUNTING.store(true, Ordering::SeqCst);
    let views: Vec<SubflowView> = (0..4u32)
        .map(|i| SubflowView {
            id: i,
            srtt: Some(Duration::from_millis(10 + 40 * u64::from(i))),
            rttvar: Some(Duration::from_millis(2)),
            cwnd: 14_000,
            in_flight: if i == 0 { 14_000 } else { 0 },
            send_capacity: if i == 0 { 0 } else { 10_000 },
            queued: 0,
            mss: 1400,
            backup: i == 3,
            usable: true,
            potentially_failed: false,
        })
        .collect();
    let mut scheds: Vec<_> = sched::NAMES
        .iter()
        .map(|n| sched::by_name(n).unwrap())
        .collect();
    let mut ctx = SchedContext {
        now: Instant::from_millis(5),
        unsent: 1 << 20,
        conn_window: 30_000,
        send_buffer_free: 0,
        blocked: Some(Blocked {
            subflow: 2,
            dsn: 9,
            len: 1400,
        }),
    };
    let locals = [
        LocalAddr {
            addr: "198.19.1.2".parse().unwrap(),
            backup: false,
            announce: true,
            port: 0,
            subflow: true,
            fullmesh: false,
        },
        LocalAddr {
            addr: "198.19.2.2".parse().unwrap(),
            backup: true,
            announce: true,
            port: 0,
            subflow: true,
            fullmesh: false,
        },
    ];
    let subflows = [PmSubflow {
        id: 0,
        local: "198.19.1.2:1".parse().unwrap(),
        remote: "198.19.30.1:443".parse().unwrap(),
        established: true,
    }];
    let remotes = [RemoteAddr {
        addr_id: 1,
        addr: "198.19.31.1:0".parse().unwrap(),
    }];
    let mut pms: Vec<_> = ["fullmesh", "ndiffports:4", "manual"]
        .iter()
        .map(|n| mptun::pm::by_name(n).unwrap())
        .collect();
    let mut q = CommandQueue::new();
    let events = [
        PmEvent::ConnectionEstablished {
            local: subflows[0].local,
            remote: subflows[0].remote,
            server_side: false,
            peer_deny_join_initial: false,
        },
        PmEvent::AddressAnnounced {
            addr_id: 2,
            addr: "198.19.32.1:443".parse().unwrap(),
        },
        PmEvent::SubflowClosed {
            id: 0,
            local: subflows[0].local,
            remote: subflows[0].remote,
            error: true,
        },
        PmEvent::LocalAddressRemoved {
            addr: "198.19.2.2".parse().unwrap(),
        },
    ];

    let before = ALLOCS.load(Ordering::SeqCst);
    for round in 0..100u64 {
        ctx.now += Duration::from_millis(3);
        ctx.blocked = Some(Blocked {
            subflow: 2,
            dsn: round,
            len: 1400,
        });
        for s in scheds.iter_mut() {
            let _ = s.schedule(&ctx, &views);
        }
        let pctx = PmContext {
            now: ctx.now,
            local_addrs: &locals,
            subflows: &subflows,
            remote_addrs: &remotes,
            limits: Limits::default(),
        };
        for pm in pms.iter_mut() {
            for ev in &events {
                pm.on_event(&pctx, ev, &mut q);
                while q.pop().is_some() {}
            }
            pm.on_timeout(&pctx, &mut q);
            while q.pop().is_some() {}
        }
    }
    let after = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(
        after - before,
        0,
        "allocations in schedule/on_event/on_timeout"
    );
}
