//! A backup subflow promoted when the primary fails: open the second path as backup, send
//! data (it stays on the primary), take the primary's device down mid-transfer, detect the
//! stall from the primary's statistics, close it and clear the backup flag (MP_PRIO) so the
//! former backup carries the rest. The primary fails once it has had the first third
//! acknowledged (the send buffer takes the whole transfer at once, so the amount written says
//! nothing about what was sent). Exits non-zero if the data does not complete, the backup
//! carried data while the primary worked, or it was never promoted or carried nothing.
//!
//! ```text
//! backup_promote --tun tun0=198.18.1.2 --tun tun1=198.18.2.2 198.18.1.1:5201
//!     [--remote2 IP:PORT] [--bytes N] [--no-fail]
//! ```

#[path = "support/mod.rs"]
mod support;

use mptun::api::{CloseHow, SubflowOpt};
use std::net::{Shutdown, SocketAddr};
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
    let reader = s
        .try_clone()
        .unwrap_or_else(|e| fail(&format!("clone: {e}")));
    let written = std::sync::atomic::AtomicBool::new(false);
    let (sent, received, before_fail, promoted) = std::thread::scope(|sc| {
        let rx = sc.spawn(move || read_to_end(&reader));
        let mut pattern = mptun::testbed::peer::Pattern::new(PATTERN_SEED);
        // 1. The first third, over the primary while it works: wait until the primary has
        //    had it acknowledged (the send buffer takes the whole transfer at once, so
        //    counting written bytes would fail the primary after everything was sent).
        write_pattern(&s, &mut pattern, third);
        let deadline = Instant::now() + TIMEOUT;
        while s.subflow_info(primary).map(|i| i.bytes_acked).unwrap_or(0) < third {
            if Instant::now() > deadline {
                fail("the primary did not carry the first third");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let before_fail = s.subflow_info(backup).map(|i| i.data_sent).unwrap_or(0);
        if fail_primary {
            rt.set_link_up(0, false); // the primary path dies
        }
        // 2. The rest, written while the application watches the primary.
        let rest = args.bytes - third;
        let stream = &s;
        let written_flag = &written;
        let writer = sc.spawn(move || {
            write_pattern(stream, &mut pattern, rest);
            stream
                .shutdown(Shutdown::Write)
                .unwrap_or_else(|e| fail(&format!("shutdown: {e}")));
            written_flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        // 3. The application's failure detector: no acknowledgement progress on the primary
        //    for 500 ms while data is outstanding.
        let mut promoted = false;
        let mut last = (u64::MAX, Instant::now());
        let done = || written.load(std::sync::atomic::Ordering::SeqCst) && all_acked(&s);
        while fail_primary && !promoted && !done() {
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
            std::thread::sleep(Duration::from_millis(10));
        }
        writer
            .join()
            .unwrap_or_else(|_| fail("writer thread panicked"));
        let got = rx.join().unwrap_or_else(|_| fail("reader thread panicked"));
        if let Err(e) = s.wait_all_acked(Some(TIMEOUT)) {
            fail(&format!("data not acknowledged: {e}"));
        }
        (args.bytes, got, before_fail, promoted)
    });
    print_subflows(&s);
    let carried = s.subflow_info(backup).map(|i| i.data_sent).unwrap_or(0);
    println!("sent={sent} received={received} backup_data_before_fail={before_fail} backup_data_sent={carried} promoted={promoted}");
    check(
        before_fail == 0,
        "the backup stayed idle while the primary worked",
    );
    if fail_primary {
        check(
            promoted,
            "the backup was promoted after the primary stalled",
        );
        check(carried > 0, "the promoted backup carried data");
    }
}
