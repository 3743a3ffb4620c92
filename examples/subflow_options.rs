//! Set every per-subflow option (MPTCP_SUB_SETSOCKOPT) on every subflow and read it back
//! (MPTCP_SUB_GETSOCKOPT): TCP_NODELAY, TCP_MAXSEG, IP_TOS, TCP_USER_TIMEOUT and the backup
//! priority (sent to the peer as MP_PRIO). Exits non-zero on any mismatch.
//!
//! ```text
//! subflow_options --tun tun0=198.18.1.2 --tun tun1=198.18.2.2 198.18.1.1:5201
//!     [--remote2 IP:PORT] [--bytes N]
//! ```

#[path = "support/mod.rs"]
mod support;

use mptun::api::{SubflowOpt, SubflowOptName};
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

fn main() {
    let args = parse_args(
        "subflow_options --tun NAME=ADDR... REMOTE_IP:PORT [--remote2 IP:PORT] [--bytes N]",
        &["remote2"],
    );
    let rt = start(&args);
    let s = connect(&rt, &args);
    let remote2: SocketAddr = args.value("remote2").unwrap_or(args.remote);
    for t in &args.tuns[1..] {
        let id = s
            .open_subflow(SocketAddr::new(t.addr, 0), remote2, false)
            .unwrap_or_else(|e| fail(&format!("open: {e}")));
        if let Err(e) = s.wait_subflow_established(id, TIMEOUT) {
            fail(&format!("subflow {id}: {e}"));
        }
    }
    let ids: Vec<u32> = s
        .subflows()
        .unwrap_or_default()
        .iter()
        .map(|f| f.id)
        .collect();
    for (k, id) in ids.iter().enumerate() {
        let tos = 0x20 + 8 * k as u8;
        let settings = [
            (SubflowOpt::NoDelay(true), SubflowOptName::NoDelay),
            (SubflowOpt::MaxSeg(1200), SubflowOptName::MaxSeg),
            (SubflowOpt::Tos(tos), SubflowOptName::Tos),
            (
                SubflowOpt::UserTimeout(Some(Duration::from_secs(20))),
                SubflowOptName::UserTimeout,
            ),
            (SubflowOpt::Backup(k > 0), SubflowOptName::Backup),
        ];
        for (opt, name) in settings {
            if let Err(e) = s.set_subflow_option(*id, opt) {
                fail(&format!(
                    "subflow {id}: set {opt:?}: {e} (errno {})",
                    e.errno()
                ));
            }
            let got = s
                .subflow_option(*id, name)
                .unwrap_or_else(|e| fail(&format!("subflow {id}: get {name:?}: {e}")));
            check(
                got == opt,
                &format!("subflow {id}: set {opt:?}, read {got:?}"),
            );
            println!("subflow={id} {name:?}={got:?}");
        }
    }
    let (sent, received) = transfer(&s, args.bytes, |_| {});
    print_subflows(&s);
    println!("sent={sent} received={received}");
}
