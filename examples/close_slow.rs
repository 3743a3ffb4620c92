//! Measure per-subflow statistics during a transfer and close the slowest subflow
//! (the largest smoothed RTT) with MPTCP_CLOSE_SUB_ID; its unacknowledged data is
//! reinjected on the others, so the transfer completes intact.
//!
//! ```text
//! close_slow --tun tun0=198.18.1.2 --tun tun1=198.18.2.2 198.18.1.1:5201 [--bytes N]
//!     [--abort] [--remote2 IP:PORT]
//! ```
//! One subflow is opened from every `--tun` address after the first (to `--remote2`, default
//! the connection's remote). After a quarter of the data the slowest is closed.

#[path = "support/mod.rs"]
mod support;

use mptun::api::CloseHow;
use std::net::SocketAddr;
use support::*;

fn main() {
    let args = parse_args(
        "close_slow --tun NAME=ADDR... REMOTE_IP:PORT [--remote2 IP:PORT] [--abort] [--bytes N]",
        &["remote2"],
    );
    check(args.tuns.len() >= 2, "needs two --tun devices");
    let rt = start(&args);
    let s = connect(&rt, &args);
    let remote2: SocketAddr = args.value("remote2").unwrap_or(args.remote);
    for t in &args.tuns[1..] {
        let id = s
            .open_subflow(SocketAddr::new(t.addr, 0), remote2, false)
            .unwrap_or_else(|e| fail(&format!("open from {}: {e}", t.addr)));
        if let Err(e) = s.wait_subflow_established(id, TIMEOUT) {
            fail(&format!("subflow {id} from {}: {e}", t.addr));
        }
    }
    let how = if args.has("abort") {
        CloseHow::Abortive
    } else {
        CloseHow::Graceful
    };
    let mut closed = None;
    let quarter = args.bytes / 4;
    let (sent, received) = transfer(&s, args.bytes, |sent| {
        if closed.is_some() || sent < quarter {
            return;
        }
        let subs = s.subflows().unwrap_or_default();
        let live: Vec<_> = subs.iter().filter(|f| f.established).collect();
        if live.len() < 2 {
            return;
        }
        let slowest = live
            .iter()
            .filter_map(|f| s.subflow_info(f.id).ok().map(|i| (f.id, i)))
            .max_by_key(|(_, i)| i.rtt.unwrap_or_default());
        if let Some((id, info)) = slowest {
            println!(
                "closing slowest subflow id={id} rtt_us={} data_sent={}",
                info.rtt.map_or(0, |r| r.as_micros()),
                info.data_sent
            );
            if let Err(e) = s.close_subflow(id, how) {
                fail(&format!("close_subflow({id}): {e}"));
            }
            closed = Some(id);
        }
    });
    let id = closed.unwrap_or_else(|| fail("no subflow was closed"));
    print_subflows(&s);
    check(
        s.subflows()
            .unwrap_or_default()
            .iter()
            .all(|f| f.id != id || !f.established),
        "the closed subflow is no longer established",
    );
    println!("closed_id={id} sent={sent} received={received}");
}
