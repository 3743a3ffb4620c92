//! Path managers driven by a small fake connection that executes their commands.

use mptun::pm::{
    by_name, Backoff, CommandQueue, FullMesh, Limits, LocalAddr, NDiffPorts, PathManager,
    PmCommand, PmContext, PmEvent, PmSubflow, RemoteAddr,
};
use mptun::time::{Duration, Instant};
use std::net::{IpAddr, SocketAddr};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}
fn local(s: &str) -> LocalAddr {
    LocalAddr {
        addr: ip(s),
        backup: false,
        announce: false,
        port: 0,
        subflow: true,
        fullmesh: false,
    }
}

const C_INIT: &str = "198.19.1.2:40000";
const S_INIT: &str = "198.19.30.1:443";

struct Conn {
    pm: Box<dyn PathManager>,
    now: Instant,
    locals: Vec<LocalAddr>,
    subflows: Vec<PmSubflow>,
    remotes: Vec<RemoteAddr>,
    limits: Limits,
    next_id: u32,
    next_port: u16,
}

impl Conn {
    fn new(pm: Box<dyn PathManager>, locals: Vec<LocalAddr>) -> Self {
        Conn {
            pm,
            now: Instant::from_millis(1_000),
            locals,
            subflows: vec![PmSubflow {
                id: 0,
                local: sa(C_INIT),
                remote: sa(S_INIT),
                established: true,
            }],
            remotes: Vec::new(),
            limits: Limits::default(),
            next_id: 1,
            next_port: 50_000,
        }
    }

    fn execute(&mut self, q: &mut CommandQueue) -> Vec<PmCommand> {
        let mut cmds = Vec::new();
        while let Some(c) = q.pop() {
            match c {
                PmCommand::OpenSubflow {
                    local,
                    local_port,
                    remote,
                    ..
                } => {
                    assert_eq!(local_port, 0, "ephemeral port expected");
                    self.next_port += 1;
                    self.subflows.push(PmSubflow {
                        id: self.next_id,
                        local: SocketAddr::new(local, self.next_port),
                        remote,
                        established: false,
                    });
                    self.next_id += 1;
                }
                PmCommand::CloseSubflow { id } => self.subflows.retain(|s| s.id != id),
                _ => {}
            }
            cmds.push(c);
        }
        cmds
    }

    fn event(&mut self, ev: PmEvent) -> Vec<PmCommand> {
        let mut q = CommandQueue::new();
        let ctx = PmContext {
            now: self.now,
            local_addrs: &self.locals,
            subflows: &self.subflows,
            remote_addrs: &self.remotes,
            limits: self.limits,
        };
        self.pm.on_event(&ctx, &ev, &mut q);
        self.execute(&mut q)
    }

    fn timeout(&mut self) -> Vec<PmCommand> {
        let mut q = CommandQueue::new();
        let ctx = PmContext {
            now: self.now,
            local_addrs: &self.locals,
            subflows: &self.subflows,
            remote_addrs: &self.remotes,
            limits: self.limits,
        };
        self.pm.on_timeout(&ctx, &mut q);
        self.execute(&mut q)
    }

    fn establish(&mut self, server_side: bool, deny: bool) -> Vec<PmCommand> {
        self.event(PmEvent::ConnectionEstablished {
            local: sa(C_INIT),
            remote: sa(S_INIT),
            server_side,
            peer_deny_join_initial: deny,
        })
    }

    /// Close subflow `id` (removing it first, as a connection would).
    fn close(&mut self, id: u32, error: bool) -> Vec<PmCommand> {
        let s = *self.subflows.iter().find(|s| s.id == id).expect("subflow");
        self.subflows.retain(|x| x.id != id);
        self.event(PmEvent::SubflowClosed {
            id,
            local: s.local,
            remote: s.remote,
            error,
        })
    }

    fn pairs(&self) -> Vec<(IpAddr, SocketAddr)> {
        let mut v: Vec<_> = self
            .subflows
            .iter()
            .map(|s| (s.local.ip(), s.remote))
            .collect();
        v.sort();
        v
    }
}

fn opens(cmds: &[PmCommand]) -> Vec<(IpAddr, SocketAddr)> {
    let mut v: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c {
            PmCommand::OpenSubflow { local, remote, .. } => Some((*local, *remote)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn mesh_client() -> Conn {
    let mut c = Conn::new(
        Box::new(FullMesh::new()),
        vec![local("198.19.1.2"), local("198.19.2.2")],
    );
    c.remotes = vec![];
    c
}

#[test]
fn fullmesh_builds_full_mesh_with_announced_addresses() {
    let mut c = mesh_client();
    // Initial pair exists; second local address joins to the initial remote.
    let cmds = c.establish(false, false);
    assert_eq!(opens(&cmds), vec![(ip("198.19.2.2"), sa(S_INIT))]);
    // Announcement with port 0 = same port as the initial remote.
    let cmds = c.event(PmEvent::AddressAnnounced {
        addr_id: 1,
        addr: sa("198.19.31.1:0"),
    });
    assert_eq!(
        opens(&cmds),
        vec![
            (ip("198.19.1.2"), sa("198.19.31.1:443")),
            (ip("198.19.2.2"), sa("198.19.31.1:443"))
        ]
    );
    // An IPv6 announcement does not pair with IPv4 locals; a duplicate changes nothing.
    assert!(c
        .event(PmEvent::AddressAnnounced {
            addr_id: 2,
            addr: sa("[2001:db8::1]:443")
        })
        .is_empty());
    assert!(c
        .event(PmEvent::AddressAnnounced {
            addr_id: 1,
            addr: sa("198.19.31.1:0")
        })
        .is_empty());
    assert_eq!(c.subflows.len(), 4, "2 locals x 2 remotes");
    // A new local address joins everything known.
    c.locals.push(local("198.19.3.2"));
    let cmds = c.event(PmEvent::LocalAddressAdded {
        addr: ip("198.19.3.2"),
    });
    assert_eq!(
        opens(&cmds),
        vec![
            (ip("198.19.3.2"), sa("198.19.30.1:443")),
            (ip("198.19.3.2"), sa("198.19.31.1:443"))
        ]
    );
    assert_eq!(c.subflows.len(), 6);
    // Nothing more to do on unrelated events.
    assert!(c
        .event(PmEvent::SubflowEstablished {
            id: 1,
            local: c.subflows[1].local,
            remote: c.subflows[1].remote,
            backup: false
        })
        .is_empty());
}

#[test]
fn fullmesh_respects_limits() {
    let mut c = mesh_client();
    c.locals.push(local("198.19.3.2"));
    c.limits = Limits {
        max_subflows: 3,
        max_add_addr_accepted: 1,
        ..Limits::default()
    };
    c.remotes = vec![RemoteAddr {
        addr_id: 1,
        addr: sa("198.19.31.1:443"),
    }];
    c.establish(false, false);
    assert_eq!(c.subflows.len(), 4, "initial + 3 additional");
    // Second announcement exceeds max_add_addr_accepted: ignored even after a slot frees.
    assert!(c
        .event(PmEvent::AddressAnnounced {
            addr_id: 2,
            addr: sa("198.19.32.1:443")
        })
        .is_empty());
    let victim = c.subflows[3];
    let cmds = c.close(victim.id, false);
    // The freed slot goes to a mesh pair that did not fit before; the gracefully closed pair
    // is not re-created and the ignored announcement stays unused.
    assert_eq!(opens(&cmds).len(), 1);
    assert_ne!(opens(&cmds)[0], (victim.local.ip(), victim.remote));
    assert!(c
        .subflows
        .iter()
        .all(|s| s.remote.ip() != ip("198.19.32.1")));
    assert_eq!(c.subflows.len(), 4);
    // No additional subflow at all with max_subflows = 0.
    let mut c = mesh_client();
    c.limits.max_subflows = 0;
    assert!(c.establish(false, false).is_empty());
}

#[test]
fn fullmesh_honours_c_flag() {
    let mut c = mesh_client();
    let cmds = c.establish(false, true);
    assert!(
        cmds.is_empty(),
        "no join to the initial remote address: {cmds:?}"
    );
    let cmds = c.event(PmEvent::AddressAnnounced {
        addr_id: 3,
        addr: sa("198.19.31.1:8443"),
    });
    assert_eq!(
        opens(&cmds),
        vec![
            (ip("198.19.1.2"), sa("198.19.31.1:8443")),
            (ip("198.19.2.2"), sa("198.19.31.1:8443"))
        ]
    );
    // Even the initial subflow is not re-created towards the initial address.
    let cmds = c.close(0, true);
    assert!(opens(&cmds).is_empty());
    assert_eq!(c.pm.poll_timeout(), None);
}

#[test]
fn fullmesh_recreates_failed_subflow_with_backoff() {
    let mut c = mesh_client();
    c.establish(false, false);
    let id = c
        .subflows
        .iter()
        .find(|s| s.local.ip() == ip("198.19.2.2"))
        .unwrap()
        .id;
    let start = c.now;
    assert!(c.close(id, true).is_empty(), "no immediate re-creation");
    let mut expected = Vec::new();
    let mut observed = Vec::new();
    for round in 0..7u32 {
        let due = c.pm.poll_timeout().expect("retry scheduled");
        observed.push((due - c.now).as_secs());
        expected.push(
            Backoff::INITIAL
                .as_secs()
                .saturating_mul(1 << round)
                .min(30),
        );
        // Too early: nothing.
        c.now = due - Duration::from_millis(1);
        assert!(c.timeout().is_empty());
        c.now = due;
        let cmds = c.timeout();
        assert_eq!(
            opens(&cmds),
            vec![(ip("198.19.2.2"), sa(S_INIT))],
            "round {round}"
        );
        assert_eq!(c.pm.poll_timeout(), None);
        // The new join fails quickly again.
        c.now += Duration::from_millis(100);
        let id = c.subflows.last().unwrap().id;
        assert!(c.close(id, true).is_empty());
    }
    assert_eq!(observed, expected);
    assert_eq!(observed, vec![1, 2, 4, 8, 16, 30, 30]);
    assert!(c.now > start);
}

#[test]
fn fullmesh_no_recreation_when_invalid_or_graceful() {
    // Graceful close: not re-created, no timer.
    let mut c = mesh_client();
    c.establish(false, false);
    let id = c
        .subflows
        .iter()
        .find(|s| s.local.ip() == ip("198.19.2.2"))
        .unwrap()
        .id;
    assert!(c.close(id, false).is_empty());
    assert_eq!(c.pm.poll_timeout(), None);
    // Error close, then the local address disappears before the retry.
    let mut c = mesh_client();
    c.establish(false, false);
    let id = c
        .subflows
        .iter()
        .find(|s| s.local.ip() == ip("198.19.2.2"))
        .unwrap()
        .id;
    c.close(id, true);
    c.locals.retain(|l| l.addr != ip("198.19.2.2"));
    c.event(PmEvent::LocalAddressRemoved {
        addr: ip("198.19.2.2"),
    });
    c.now += Duration::from_secs(60);
    assert!(c.timeout().is_empty());
    // Error close, then the remote address is withdrawn.
    let mut c = mesh_client();
    c.establish(false, false);
    c.event(PmEvent::AddressAnnounced {
        addr_id: 1,
        addr: sa("198.19.31.1:443"),
    });
    let id = c
        .subflows
        .iter()
        .find(|s| s.remote == sa("198.19.31.1:443"))
        .unwrap()
        .id;
    c.close(id, true);
    let cmds = c.event(PmEvent::AddressRemoved { addr_id: 1 });
    // The other subflow to that address is closed.
    assert_eq!(cmds.len(), 1);
    assert!(matches!(cmds[0], PmCommand::CloseSubflow { .. }));
    assert!(c.subflows.iter().all(|s| s.remote != sa("198.19.31.1:443")));
    c.now += Duration::from_secs(60);
    assert!(c.timeout().is_empty());
}

#[test]
fn fullmesh_server_announces_and_withdraws() {
    let mut locals = vec![
        local("198.19.1.2"),
        local("198.19.2.2"),
        local("198.19.3.2"),
    ];
    for l in &mut locals {
        l.announce = l.addr != ip("198.19.3.2");
    }
    let mut c = Conn::new(Box::new(FullMesh::new()), locals);
    let cmds = c.establish(true, false);
    // Initial local address is not announced; 198.19.3.2 lacks the flag; server opens nothing.
    assert_eq!(
        cmds,
        vec![PmCommand::Announce {
            addr_id: 1,
            addr: ip("198.19.2.2"),
            port: None
        }]
    );
    assert!(c
        .event(PmEvent::AddressAnnounced {
            addr_id: 1,
            addr: sa("198.19.20.1:0")
        })
        .is_empty());
    // The peer joins to the announced address; then the host loses it.
    c.subflows.push(PmSubflow {
        id: 7,
        local: sa("198.19.2.2:443"),
        remote: sa("198.19.20.1:5555"),
        established: true,
    });
    c.locals.retain(|l| l.addr != ip("198.19.2.2"));
    let cmds = c.event(PmEvent::LocalAddressRemoved {
        addr: ip("198.19.2.2"),
    });
    assert_eq!(
        cmds,
        vec![
            PmCommand::CloseSubflow { id: 7 },
            PmCommand::RemoveAddress { addr_id: 1 }
        ]
    );
    // A new announced address gets a fresh id.
    c.locals.push(LocalAddr {
        addr: ip("198.19.4.2"),
        backup: false,
        announce: true,
        port: 0,
        subflow: true,
        fullmesh: false,
    });
    let cmds = c.event(PmEvent::LocalAddressAdded {
        addr: ip("198.19.4.2"),
    });
    assert_eq!(
        cmds,
        vec![PmCommand::Announce {
            addr_id: 2,
            addr: ip("198.19.4.2"),
            port: None
        }]
    );
    // Server never re-creates subflows.
    c.close(0, true);
    assert_eq!(c.pm.poll_timeout(), None);
}

#[test]
fn fullmesh_backup_addresses() {
    let mut c = Conn::new(
        Box::new(FullMesh::new()),
        vec![
            local("198.19.1.2"),
            LocalAddr {
                addr: ip("198.19.2.2"),
                backup: true,
                announce: false,
                port: 0,
                subflow: true,
                fullmesh: false,
            },
        ],
    );
    let cmds = c.establish(false, false);
    assert_eq!(
        cmds,
        vec![PmCommand::OpenSubflow {
            local: ip("198.19.2.2"),
            local_port: 0,
            remote: sa(S_INIT),
            backup: true
        }]
    );
    // A subflow on a backup address that came up without the flag gets MP_PRIO.
    let cmds = c.event(PmEvent::SubflowEstablished {
        id: 9,
        local: sa("198.19.2.2:1"),
        remote: sa(S_INIT),
        backup: false,
    });
    assert_eq!(
        cmds,
        vec![PmCommand::SetBackup {
            id: 9,
            backup: true
        }]
    );
}

#[test]
fn fullmesh_queue_overflow_is_resumed_by_timeout() {
    let locals: Vec<LocalAddr> = (1..=8).map(|i| local(&format!("198.19.{i}.2"))).collect();
    let mut c = Conn::new(Box::new(FullMesh::new()), locals);
    c.limits = Limits {
        max_subflows: 100,
        max_add_addr_accepted: 8,
        ..Limits::default()
    };
    c.remotes = (1..=7u8)
        .map(|i| RemoteAddr {
            addr_id: i,
            addr: sa(&format!("198.19.3{i}.1:443")),
        })
        .collect();
    let first = c.establish(false, false);
    assert_eq!(first.len(), CommandQueue::CAPACITY);
    assert_eq!(c.pm.poll_timeout(), Some(c.now), "resume immediately");
    let mut rounds = 0;
    while c.pm.poll_timeout().is_some() && rounds < 10 {
        c.timeout();
        rounds += 1;
    }
    assert_eq!(c.subflows.len(), 64, "8 locals x 8 remotes");
    let mut p = c.pairs();
    p.dedup();
    assert_eq!(p.len(), 64, "no duplicates");
}

#[test]
fn ndiffports_opens_n_on_same_pair_and_recreates() {
    let mut c = Conn::new(
        by_name("ndiffports:4").unwrap(),
        vec![local("198.19.1.2"), local("198.19.2.2")],
    );
    let cmds = c.establish(false, false);
    assert_eq!(opens(&cmds), vec![(ip("198.19.1.2"), sa(S_INIT)); 3]);
    assert_eq!(c.subflows.len(), 4);
    let mut ports: Vec<u16> = c.subflows.iter().map(|s| s.local.port()).collect();
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 4, "distinct source ports");
    // Announcements do not matter to ndiffports.
    assert!(c
        .event(PmEvent::AddressAnnounced {
            addr_id: 1,
            addr: sa("198.19.31.1:443")
        })
        .is_empty());
    // Failure: re-created after 1 s, then 2 s.
    assert!(c.close(2, true).is_empty());
    let due = c.pm.poll_timeout().unwrap();
    assert_eq!(due - c.now, Duration::from_secs(1));
    c.now = due;
    assert_eq!(opens(&c.timeout()), vec![(ip("198.19.1.2"), sa(S_INIT))]);
    assert_eq!(c.subflows.len(), 4);
    let id = c.subflows.last().unwrap().id;
    c.close(id, true);
    assert_eq!(c.pm.poll_timeout().unwrap() - c.now, Duration::from_secs(2));
    // Graceful close: nothing scheduled beyond what is pending.
    let mut c2 = Conn::new(Box::new(NDiffPorts::new(3)), vec![]);
    c2.establish(false, false);
    c2.close(1, false);
    assert_eq!(c2.pm.poll_timeout(), None);
}

#[test]
fn ndiffports_limits_c_flag_and_server() {
    let mut c = Conn::new(Box::new(NDiffPorts::new(8)), vec![]);
    c.limits.max_subflows = 2;
    assert_eq!(c.establish(false, false).len(), 2);
    let mut c = Conn::new(Box::new(NDiffPorts::new(8)), vec![]);
    assert!(c.establish(false, true).is_empty(), "C flag");
    let mut c = Conn::new(Box::new(NDiffPorts::new(8)), vec![]);
    assert!(c.establish(true, false).is_empty(), "server side");
    c.close(0, true);
    assert_eq!(c.pm.poll_timeout(), None);
}

#[test]
fn manual_does_nothing() {
    let mut c = Conn::new(
        by_name("manual").unwrap(),
        vec![local("198.19.1.2"), local("198.19.2.2")],
    );
    c.locals[1].announce = true;
    assert!(c.establish(false, false).is_empty());
    assert!(c
        .event(PmEvent::AddressAnnounced {
            addr_id: 1,
            addr: sa("198.19.31.1:443")
        })
        .is_empty());
    assert!(c.close(0, true).is_empty());
    assert!(c
        .event(PmEvent::LocalAddressAdded {
            addr: ip("198.19.3.2")
        })
        .is_empty());
    assert_eq!(c.pm.poll_timeout(), None);
    assert!(c.timeout().is_empty());
}
