//! Open a second subflow on a chosen tuple (the draft's MPTCP_OPEN_SUB_TUPLE), optionally as
//! backup and with per-subflow options applied before its SYN, then transfer data.
//!
//! ```text
//! open_subflow --tun tun0=198.18.1.2 --tun tun1=198.18.2.2 198.18.1.1:5201 \
//!     [--join-remote 198.18.2.1:5201] [--backup] [--tos 0x28] [--maxseg 1000] \
//!     [--bytes N] [--pcap FILE]
//! ```
//! The new subflow goes from the second `--tun` address (the first if only one) to
//! `--join-remote` (default: the connection's remote). Prints `key=value` lines; exits
//! non-zero if the join fails or a read-back differs.

#[path = "support/mod.rs"]
mod support;

use mptun::api::{SubflowOpt, SubflowOptName};
use mptun::mptcp::SubflowOptions;
use std::net::SocketAddr;
use support::*;

fn main() {
    let args = parse_args(
        "open_subflow --tun NAME=ADDR... REMOTE_IP:PORT [--join-remote IP:PORT] [--backup] \
         [--tos N] [--maxseg N] [--bytes N] [--pcap FILE]",
        &["join-remote", "tos", "maxseg"],
    );
    let rt = start(&args);
    let s = connect(&rt, &args);
    let local_ip = args.tuns.get(1).unwrap_or(&args.tuns[0]).addr;
    let remote: SocketAddr = args.value("join-remote").unwrap_or(args.remote);
    let backup = args.has("backup");
    let tos: Option<u8> = args.value("tos");
    let mss: Option<u16> = args.value("maxseg");
    let opts = SubflowOptions {
        mss,
        tos,
        ..SubflowOptions::default()
    };
    // A peer may refuse a join (Linux does once its side is half-closed, MPJoinRejected):
    // try up to 3 times
    let mut attempt = 0;
    let id = loop {
        attempt += 1;
        let id = s
            .open_subflow_with(SocketAddr::new(local_ip, 0), remote, backup, opts)
            .unwrap_or_else(|e| fail(&format!("open_subflow: {e} (errno {})", e.errno())));
        match s.wait_subflow_established(id, TIMEOUT) {
            Ok(()) => break id,
            Err(e) if attempt >= 3 => fail(&format!("subflow {id} not established: {e}")),
            Err(e) => eprintln!("subflow {id} not established ({e}), retrying"),
        }
    };
    let (l, r) = s.subflow_tuple(id).unwrap_or_else(|e| fail(&e.to_string()));
    let st = s
        .subflows()
        .unwrap_or_default()
        .into_iter()
        .find(|f| f.id == id)
        .unwrap_or_else(|| fail("new subflow not listed"));
    check(st.established && !st.initial, "listed as established join");
    check(st.backup == backup, "backup flag reads back");
    if let Some(t) = tos {
        check(
            s.subflow_option(id, SubflowOptName::Tos) == Ok(SubflowOpt::Tos(t)),
            "TOS reads back",
        );
    }
    if let Some(m) = mss {
        match s.subflow_option(id, SubflowOptName::MaxSeg) {
            Ok(SubflowOpt::MaxSeg(got)) => check(got <= m, "MSS at most TCP_MAXSEG"),
            other => fail(&format!("MaxSeg read back {other:?}")),
        }
    }
    println!("subflow_id={id} local={l} remote={r} backup={backup}");
    let (sent, received) = transfer(&s, args.bytes, |_| {});
    print_subflows(&s);
    let init = s.subflows().unwrap_or_default();
    let total: u64 = init
        .iter()
        .map(|f| s.subflow_info(f.id).map(|i| i.data_sent).unwrap_or(0))
        .sum();
    check(
        total == sent,
        "per-subflow data_sent sums to the bytes written",
    );
    let joined = s.subflow_info(id).map(|i| i.data_sent).unwrap_or(0);
    println!("sent={sent} received={received} joined_data_sent={joined}");
    drop(s);
    let _ = rt.stop(); // flushes the pcap
}
