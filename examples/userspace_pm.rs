//! A server whose path manager is the application, as with Linux's userspace path manager
//! (mptcp_join.sh "userspace pm add & remove address"): it accepts one connection, announces
//! its second address under an id of its choosing (`MptcpStream::announce_address`, the
//! userspace PM's ANNOUNCE), waits for the client's join to it, later withdraws it
//! (`remove_address`, REMOVE) and waits for that subflow to end, all while data flows both
//! ways.
//!
//! ```text
//! userspace_pm --tun tun0=198.18.1.2 --tun tun1=198.18.2.2 198.18.1.2:5201 [--bytes N]
//!     [--id 10]
//! ```
//! The positional address is where to listen (its port). Prints `announced`, `joined`,
//! `removed` lines, the subflows, then `sent=N received=M`.

#[path = "support/mod.rs"]
mod support;

use mptun::api::MptcpListener;
use std::net::SocketAddr;
use std::time::Instant;
use support::*;

fn main() {
    let args = parse_args(
        "userspace_pm --tun NAME=ADDR --tun NAME=ADDR LISTEN_IP:PORT [--id N] [--bytes N]",
        &["id"],
    );
    check(args.tuns.len() >= 2, "needs two --tun devices");
    let id: u8 = args.value("id").unwrap_or(10);
    let second = args.tuns[1].addr;
    let rt = start(&args);
    let l = MptcpListener::bind_with(rt.handle(), args.remote.port(), Some(config()))
        .unwrap_or_else(|e| fail(&format!("listen: {e}")));
    let (s, peer) = l
        .accept_timeout(Some(TIMEOUT))
        .unwrap_or_else(|e| fail(&format!("accept: {e}")));
    println!("accepted from {peer}");
    let on_second = |s: &mptun::api::MptcpStream, established: bool| {
        s.subflows().unwrap_or_default().iter().any(|f| {
            f.local.ip() == second && f.closed.is_none() && (f.established || !established)
        })
    };
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let t = Instant::now();
        while !cond() {
            if t.elapsed() > TIMEOUT {
                print_subflows(&s);
                fail(&format!("timed out waiting for {what}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    };
    let (mut announced, mut removed) = (false, false);
    let (sent, received) = transfer(&s, args.bytes, |sent| {
        if !announced && sent >= args.bytes / 8 {
            s.announce_address(id, SocketAddr::new(second, 0))
                .unwrap_or_else(|e| fail(&format!("announce {second} as id {id}: {e}")));
            announced = true;
            println!("announced id={id} addr={second}");
            wait("the join to the announced address", &|| on_second(&s, true));
            println!("joined addr={second}");
        } else if announced && !removed && sent >= args.bytes / 2 {
            s.remove_address(id)
                .unwrap_or_else(|e| fail(&format!("remove id {id}: {e}")));
            removed = true;
            println!("removed id={id}");
            wait("the subflow on the withdrawn address to end", &|| {
                !on_second(&s, false)
            });
            println!("subflow on {second} ended");
        }
    });
    check(
        announced && removed,
        "the transfer ended before the address was withdrawn",
    );
    print_subflows(&s);
    println!("sent={sent} received={received}");
}
