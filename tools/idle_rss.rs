//! Memory per idle established connection, measured as RSS.
//!
//! `cargo run --release --bin idle-rss -- [CONNECTIONS] [TRANSFER_KIB]`
//!
//! Two stacks (client and server, default configuration: 4 MiB send and receive buffers)
//! in this process, joined by the in-process simulated network (`io::sim`, one link, no
//! impairment). Opens CONNECTIONS (default 1000) MPTCP connections, steps until every one
//! is established and accepted, optionally moves TRANSFER_KIB KiB each way on each (read
//! completely, connections left open), idles 3 s of virtual time, then reads RSS from
//! `/proc/self/statm` and prints it per connection (both ends together). The RSS before the
//! connections is subtracted. "after malloc_trim" is the same after glibc has returned its
//! free pages to the kernel (what the process would keep under memory pressure).

use mptun::crypto::KeyGen;
use mptun::io::impair::Impairment;
use mptun::io::sim::SimNet;
use mptun::stack::{ConnId, Stack, StackConfig, StackError};
use mptun::time::Duration;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

const C: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
const S: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1));
const PORT: u16 = 5201;

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = s
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).unwrap_or(4096)
}

fn malloc_trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[derive(clap::Parser, Debug)]
#[command(
    name = "idle-rss",
    about = "Memory (RSS) per idle established MPTCP connection, two in-process stacks on the \
             simulated network (no root, no devices)"
)]
struct Args {
    /// Connections to open.
    #[arg(default_value_t = 1000)]
    connections: usize,
    /// KiB to move each way on every connection before idling.
    #[arg(default_value_t = 0)]
    transfer_kib: usize,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    let (n, kib) = (args.connections.max(1), args.transfer_kib);

    let mut net = SimNet::new(1);
    net.add_host(&[C]);
    net.add_host(&[S]);
    net.add_link(C, S, Impairment::default(), Impairment::default());
    let mut client = Stack::new(
        StackConfig {
            addrs: vec![C],
            ..StackConfig::default()
        },
        KeyGen::from_seed(1),
    );
    let mut server = Stack::new(
        StackConfig {
            addrs: vec![S],
            backlog: n + 1,
            ..StackConfig::default()
        },
        KeyGen::from_seed(2),
    );
    server.listen(PORT).expect("listen");
    let cfg = client.config().conn.clone();
    malloc_trim();
    let rss0 = rss_bytes();

    let mut ids = Vec::with_capacity(n);
    let mut accepted: Vec<ConnId> = Vec::with_capacity(n);
    // open in batches of 100 so the SYNs do not all queue at once
    while ids.len() < n {
        for _ in 0..(n - ids.len()).min(100) {
            let now = net.now();
            ids.push(
                client
                    .connect(now, SocketAddr::new(S, PORT), Some(C), None)
                    .expect("connect"),
            );
        }
        let deadline = net.now() + Duration::from_secs(30);
        loop {
            while let Some(s) = server.accept(PORT) {
                accepted.push(s);
            }
            let est = ids
                .iter()
                .all(|&c| client.connection(c).is_some_and(|x| x.is_established()));
            if (est && accepted.len() == ids.len()) || net.now() > deadline {
                break;
            }
            if !net.step(&mut [&mut client, &mut server]) {
                break;
            }
        }
    }
    let established = ids
        .iter()
        .filter(|&&c| client.connection(c).is_some_and(|x| x.is_established()))
        .count();

    if kib > 0 {
        let payload = vec![0x5au8; kib * 1024];
        let mut sent = vec![[0usize; 2]; n];
        let mut got = vec![[0usize; 2]; n];
        let mut buf = vec![0u8; 65536];
        let deadline = net.now() + Duration::from_secs(600);
        loop {
            let mut done = true;
            for (k, (&c, &s)) in ids.iter().zip(&accepted).enumerate() {
                let [sent_c, sent_s] = &mut sent[k];
                let [got_c, got_s] = &mut got[k];
                for (st, id, sent, got) in [
                    (&mut client, c, sent_c, got_c),
                    (&mut server, s, sent_s, got_s),
                ] {
                    while *sent < payload.len() {
                        match st.send(id, &payload[*sent..]) {
                            Ok(x) => *sent += x,
                            Err(StackError::WouldBlock) => break,
                            Err(e) => panic!("send: {e}"),
                        }
                    }
                    while let Ok(x) = st.recv(id, &mut buf) {
                        if x == 0 {
                            break;
                        }
                        *got += x;
                    }
                    done &= *got == payload.len();
                }
            }
            if done || net.now() > deadline || !net.step(&mut [&mut client, &mut server]) {
                break;
            }
        }
        let moved: usize = got.iter().map(|g| g[0] + g[1]).sum();
        assert_eq!(moved, 2 * n * payload.len(), "every transfer completed");
    }

    let until = net.now() + Duration::from_secs(3);
    net.run_until(&mut [&mut client, &mut server], until, |_| false);
    let rss1 = rss_bytes();
    malloc_trim();
    let rss2 = rss_bytes();
    let accounted = client.connections_memory() + server.connections_memory();
    let per = |x: usize| x.saturating_sub(rss0) / n.max(1);
    println!(
        "connections={n} established={established} accepted={} transfer={kib}KiB each way \
         send_buffer={} recv_buffer={}",
        accepted.len(),
        cfg.send_buffer,
        cfg.recv_buffer
    );
    println!(
        "rss_before={} kB rss_after={} kB per_connection={} kB (both ends) \
         after_malloc_trim={} kB per_connection={} kB accounted_per_connection={} kB",
        rss0 / 1024,
        rss1 / 1024,
        per(rss1) / 1024,
        rss2 / 1024,
        per(rss2) / 1024,
        accounted / n.max(1) / 1024
    );
}
