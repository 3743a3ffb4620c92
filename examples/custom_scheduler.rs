//! A researcher's own scheduler, outside the crate: one type implementing
//! `mptun::sched::Scheduler` and one `register` line. The program then names it like a
//! built-in one (`Runtime::builder().scheduler("least-queued")`; equally
//! `ConnConfig::scheduler`, the C ABI's `sched=` and the command line of a program that
//! registers it before parsing). No root: two runtimes in this process joined by two
//! in-process links, 4 MiB sent over two subflows.
//!
//! ```text
//! cargo run --example custom_scheduler --no-default-features
//! ```

use mptun::api::{MptcpListener, MptcpStream};
use mptun::io::driver::{Runtime, SeqPacketDevice};
use mptun::sched::{self, Class, Decision, SchedContext, Scheduler, SubflowView};
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Decisions the scheduler made, to show it was the one deciding.
static DECISIONS: AtomicU64 = AtomicU64::new(0);

/// New data goes to the usable subflow with the fewest bytes in flight plus queued (ties:
/// lowest id), one MSS at a time; backups only when no regular subflow is usable.
#[derive(Debug, Default)]
struct LeastQueued;

impl Scheduler for LeastQueued {
    fn name(&self) -> &'static str {
        "least-queued"
    }

    fn schedule(&mut self, ctx: &SchedContext, subflows: &[SubflowView]) -> Decision {
        let budget = ctx.send_budget();
        let Some(class) = Class::select(subflows) else {
            return Decision::Wait;
        };
        let best = subflows
            .iter()
            .enumerate()
            .filter(|(_, v)| class.admits(v) && v.available() > 0)
            .min_by_key(|(_, v)| (u64::from(v.in_flight) + u64::from(v.queued), v.id));
        match best {
            Some((i, v)) if budget > 0 => {
                DECISIONS.fetch_add(1, Ordering::Relaxed);
                let room = v.available().min(v.mss_nonzero());
                Decision::Send {
                    subflow: i,
                    max_len: u32::try_from(budget).unwrap_or(u32::MAX).min(room),
                }
            }
            _ => Decision::Wait,
        }
    }
}

fn main() -> std::io::Result<()> {
    // the one line that makes it a scheduler like the others
    sched::register("least-queued", || Box::new(LeastQueued)).map_err(std::io::Error::other)?;
    println!("schedulers: {}", sched::names().join(", "));

    let ip = |s: &str| -> IpAddr { s.parse().expect("address") };
    let (c0, s0) = SeqPacketDevice::pair("c0", "s0")?;
    let (c1, s1) = SeqPacketDevice::pair("c1", "s1")?;
    let server = Runtime::builder()
        .device(s0, ip("198.18.1.1"))
        .device(s1, ip("198.18.2.1"))
        .start()?;
    let client = Runtime::builder()
        .device(c0, ip("198.18.1.2"))
        .device(c1, ip("198.18.2.2"))
        .path_manager("fullmesh")
        .scheduler("least-queued")
        .start()?;

    let listener = MptcpListener::bind(server.handle(), 5201)?;
    let sink = std::thread::spawn(move || -> std::io::Result<u64> {
        let mut s = listener.incoming().next().expect("never None")?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(n),
                k => n += k as u64,
            }
        }
    });

    let mut s = MptcpStream::connect(client.handle(), SocketAddr::new(ip("198.18.1.1"), 5201))?;
    let end = Instant::now() + Duration::from_secs(5);
    while s.subflows()?.iter().filter(|f| f.established).count() < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let data = vec![7u8; 4 << 20];
    s.write_all(&data)?;
    s.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    let received = sink.join().expect("sink thread")?;
    assert_eq!(received, data.len() as u64);
    println!(
        "sent {received} bytes over {} subflows; least-queued made {} decisions",
        s.subflows()?.len(),
        DECISIONS.load(Ordering::Relaxed)
    );
    Ok(())
}
