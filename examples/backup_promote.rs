//! A backup subflow promoted when the primary fails: open the second path as backup, send
//! data (it stays on the primary), take the primary's device down mid-transfer, detect the
//! stall from the primary's statistics, close it and clear the backup flag (MP_PRIO) so the
//! former backup carries the rest. Exits non-zero if the data does not complete.
//!
//! ```text
//! backup_promote --tun tun0=198.18.1.2 --tun tun1=198.18.2.2 198.18.1.1:5201
//!     [--remote2 IP:PORT] [--bytes N] [--no-fail]
//! ```

#[path = "support/mod.rs"]
mod support;

use mptun::api::{CloseHow, SubflowOpt};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::*;

fn main() {
    let args = parse_args(
        "backup_promote --tun NAME=ADDR... REMOTE_IP:PORT [--remote2 IP:PORT] [--bytes N] \
         [--no-fail]",
        &["remote2"],
    );
    check(args.tuns.len() >= 2, "needs two --tun devices");
    let rt = start(&args);
    let s = connect(&rt, &args);
    let primary = s.subflows().unwrap_or_default()[0].id;
    let remote2: SocketAddr = args.value("remote2").unwrap_or(args.remote);
    let backup = s
        .open_subflow(SocketAddr::new(args.tuns[1].addr, 0), remote2, true)
        .unwrap_or_else(|e| fail(&format!("open backup: {e}")));
    if let Err(e) = s.wait_subflow_established(backup, TIMEOUT) {
        fail(&format!("backup subflow: {e}"));
    }
    let fail_primary = !args.has("no-fail");
    let third = args.bytes / 3;
    let mut failed_at = None;
    let mut promoted = false;
    let mut before_fail = 0;
    let mut last = (0u64, Instant::now());
    let (sent, received) = transfer(&s, args.bytes, |sent| {
        if fail_primary && failed_at.is_none() && sent >= third {
            before_fail = s.subflow_info(backup).map(|i| i.data_sent).unwrap_or(0);
            rt.set_link_up(0, false); // the primary path dies
            failed_at = Some(Instant::now());
        }
        if promoted || failed_at.is_none() {
            return;
        }
        // the application's failure detector: no acknowledgement progress for 500 ms
        let acked = s.subflow_info(primary).map(|i| i.bytes_acked).unwrap_or(0);
        if acked != last.0 {
            last = (acked, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(500) {
            println!("primary stalled at bytes_acked={acked}: promoting subflow {backup}");
            let _ = s.close_subflow(primary, CloseHow::Abortive);
            if let Err(e) = s.set_subflow_option(backup, SubflowOpt::Backup(false)) {
                fail(&format!("promote: {e}"));
            }
            promoted = true;
        }
    });
    print_subflows(&s);
    let carried = s.subflow_info(backup).map(|i| i.data_sent).unwrap_or(0);
    println!("sent={sent} received={received} backup_data_before_fail={before_fail} backup_data_sent={carried} promoted={promoted}");
    if fail_primary {
        check(
            before_fail == 0,
            "the backup stayed idle while the primary worked",
        );
        check(carried > 0, "the promoted backup carried data");
    }
}
