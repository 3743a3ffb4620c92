//! Re-open a subflow on a new source port: open one from the second address, close it
//! (gracefully, or with `--abort`: e.g. a NAT lost its mapping) and
//! open a replacement from the same address with a different port, mid-transfer.
//!
//! ```text
//! reopen_port --tun tun0=198.18.1.2 --tun tun1=198.18.2.2 198.18.1.1:5201 [--remote2 IP:PORT]
//!     [--bytes N] [--abort]
//! ```

#[path = "support/mod.rs"]
mod support;

use mptun::api::CloseHow;
use std::net::SocketAddr;
use std::time::Duration;
use support::*;

fn main() {
    let args = parse_args(
        "reopen_port --tun NAME=ADDR... REMOTE_IP:PORT [--remote2 IP:PORT] [--bytes N]",
        &["remote2"],
    );
    let rt = start(&args);
    let s = connect(&rt, &args);
    let ip = args.tuns.get(1).unwrap_or(&args.tuns[0]).addr;
    let remote2: SocketAddr = args.value("remote2").unwrap_or(args.remote);
    // A peer may refuse a join (Linux refuses every join once its side of the connection is
    // half-closed; its subflow limit may still count the one just closed): retry a few
    // times, each on a fresh port.
    let open = |port: u16| {
        for attempt in 0..4u16 {
            let port = if port == 0 {
                0
            } else {
                port.wrapping_add(attempt).max(1024)
            };
            let id = s
                .open_subflow(SocketAddr::new(ip, port), remote2, false)
                .unwrap_or_else(|e| fail(&format!("open {ip}:{port}: {e}")));
            match s.wait_subflow_established(id, TIMEOUT) {
                Ok(()) => {
                    let (l, _) = s.subflow_tuple(id).unwrap_or_else(|e| fail(&e.to_string()));
                    return (id, l);
                }
                Err(e) => {
                    eprintln!("subflow {id} from port {port}: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(200 << attempt));
                }
            }
        }
        fail("could not open the subflow")
    };
    // `--abort`: close with RST (MP_TCPRST) instead of FIN
    let how = if args.has("abort") {
        CloseHow::Abortive
    } else {
        CloseHow::Graceful
    };
    let (first, first_local) = open(0);
    println!("opened id={first} local={first_local}");
    let mut second = None;
    let half = args.bytes / 2;
    let (sent, received) = transfer(&s, args.bytes, |sent| {
        if second.is_some() || sent < half {
            return;
        }
        if let Err(e) = s.close_subflow(first, how) {
            fail(&format!("close {first}: {e}"));
        }
        let new_port = first_local.port().wrapping_add(1).max(1024);
        let (id, l) = open(new_port);
        check(id != first, "a new id");
        check(l.port() != first_local.port(), "a new source port");
        println!("reopened id={id} local={l}");
        second = Some(id);
    });
    check(second.is_some(), "the subflow was re-opened");
    print_subflows(&s);
    println!("sent={sent} received={received}");
}
