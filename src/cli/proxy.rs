//! `mptun proxy` (SOCKS5 and port forwards: kernel TCP in, MPTCP out) and `mptun listen
//! --forward` (MPTCP in, kernel TCP out): the command-line side of carrying unmodified
//! applications. Both relay with [`crate::io::proxy::relay`].

use crate::api::MptcpStream;
use crate::io::proxy::{abort, relay, Relayed};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;
use {
    crate::api::{MptcpListener, StackHandle},
    crate::cli::runner::{self, Transfer},
    crate::cli::{json_str, ProxyOptions, RunOptions, Summary, Target},
    crate::io::socks5::{self, Reply},
    crate::mptcp::ConnConfig,
    std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs},
    std::sync::atomic::AtomicU64,
    std::sync::{Arc, Condvar},
    std::time::Instant,
};

/// How long a SOCKS client may take to send its greeting and request.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `listen --forward` waits for the TCP service to accept.
const SERVICE_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bounds the connections relayed at once.
struct Limiter {
    count: Mutex<usize>,
    cond: Condvar,
    max: usize,
}

/// One relayed connection's place; released on drop.
struct Slot(Arc<Limiter>);

impl Limiter {
    fn new(max: usize) -> Arc<Limiter> {
        Arc::new(Limiter {
            count: Mutex::new(0),
            cond: Condvar::new(),
            max: max.max(1),
        })
    }

    /// Waits for a free place.
    fn acquire(self: &Arc<Self>) -> Slot {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        while *n >= self.max {
            n = self.cond.wait(n).unwrap_or_else(|p| p.into_inner());
        }
        *n += 1;
        Slot(self.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.0.cond.notify_one();
    }
}

/// One line on stdout (errors writing it are ignored: a closed stdout must not stop us).
fn report(line: std::fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// One line on stderr.
fn report_err(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "mptun: {line}");
}

/// What the proxy's connections share.
struct Ctx {
    handle: StackHandle,
    cfg: ConnConfig,
    /// mptun's TUN addresses, in `--tun` order.
    locals: Vec<IpAddr>,
    connect_timeout: Duration,
    next_id: AtomicU64,
    /// `--json`: summary lines as JSON objects.
    json: bool,
}

/// Why a destination cannot be tried, with the SOCKS reply that says so.
type Unreachable = (Reply, String);

/// The destination's addresses mptun can reach: those of a family one of its TUN addresses
/// has. A name that does not resolve is host-unreachable; one that resolves to other
/// families only, or an address of such a family, is network-unreachable.
fn resolve(dest: &Target, locals: &[IpAddr]) -> Result<Vec<SocketAddr>, Unreachable> {
    let all: Vec<SocketAddr> = match dest {
        Target::Addr(a) => vec![*a],
        Target::Name(h, p) => match (h.as_str(), *p).to_socket_addrs() {
            Ok(it) => it.collect(),
            Err(e) => {
                return Err((Reply::HostUnreachable, format!("cannot resolve {h}: {e}")));
            }
        },
    };
    if all.is_empty() {
        return Err((Reply::HostUnreachable, format!("{dest} has no address")));
    }
    let usable: Vec<SocketAddr> = all
        .iter()
        .copied()
        .filter(|a| locals.iter().any(|l| l.is_ipv4() == a.is_ipv4()))
        .collect();
    if usable.is_empty() {
        return Err((
            Reply::NetworkUnreachable,
            format!(
                "{dest} ({}) is not of a family any --tun address has",
                all[0].ip()
            ),
        ));
    }
    Ok(usable)
}

/// Opens an MPTCP connection to the first of `addrs` that answers.
fn connect(ctx: &Ctx, addrs: &[SocketAddr]) -> io::Result<MptcpStream> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
    for &a in addrs {
        let local = ctx
            .locals
            .iter()
            .copied()
            .find(|l| l.is_ipv4() == a.is_ipv4());
        match MptcpStream::connect_with(
            &ctx.handle,
            a,
            local,
            Some(ctx.cfg.clone()),
            Some(ctx.connect_timeout),
        ) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

#[derive(Clone)]
enum Entry {
    Socks,
    Forward(Target),
}

/// `mptun proxy`: binds the SOCKS and forward listeners, starts the runtime, and serves
/// until the process is terminated.
pub fn run_proxy(opts: &ProxyOptions) -> Result<(), String> {
    if opts.socks.is_none() && opts.forwards.is_empty() {
        return Err(
            "proxy needs --socks ADDR:PORT or at least one --forward LPORT=HOST:PORT".into(),
        );
    }
    if opts.max_connections == 0 {
        return Err("--max-connections must be at least 1".into());
    }
    if opts.connect_timeout.is_zero() {
        return Err("--connect-timeout must be more than 0".into());
    }
    let cfg = runner::conn_config(&opts.run)?;
    let mut listeners = Vec::new();
    if let Some(a) = opts.socks {
        let l = TcpListener::bind(a).map_err(|e| format!("--socks {a}: cannot listen: {e}"))?;
        listeners.push((l, Entry::Socks));
    }
    for f in &opts.forwards {
        let l = TcpListener::bind(f.listen)
            .map_err(|e| format!("--forward {}: cannot listen: {e}", f.listen))?;
        listeners.push((l, Entry::Forward(f.target.clone())));
    }
    let rt = runner::start_runtime(&opts.run)?;
    runner::install_state_dump(rt.handle().clone());
    let ctx = Arc::new(Ctx {
        handle: rt.handle().clone(),
        cfg,
        locals: opts.run.tuns.iter().map(|t| t.addr).collect(),
        connect_timeout: opts.connect_timeout,
        next_id: AtomicU64::new(0),
        json: opts.run.json,
    });
    let _stats = crate::cli::stats::StatsReporter::start(rt.handle(), &opts.run);
    let limiter = Limiter::new(opts.max_connections);
    for (l, entry) in &listeners {
        let at = l
            .local_addr()
            .map_or_else(|_| "?".into(), |a| a.to_string());
        match (entry, ctx.json) {
            (Entry::Socks, false) => report(format_args!("proxy socks={at}")),
            (Entry::Forward(t), false) => report(format_args!("proxy forward={at}->{t}")),
            (Entry::Socks, true) => report(format_args!(
                "{{\"proxy\":\"socks\",\"listen\":{}}}",
                json_str(&at)
            )),
            (Entry::Forward(t), true) => report(format_args!(
                "{{\"proxy\":\"forward\",\"listen\":{},\"target\":{}}}",
                json_str(&at),
                json_str(&t.to_string())
            )),
        }
    }
    std::thread::scope(|s| {
        for (l, entry) in &listeners {
            let (ctx, limiter) = (&ctx, &limiter);
            std::thread::Builder::new()
                .name("mptun-accept".into())
                .spawn_scoped(s, move || accept_loop(l, entry, ctx, limiter))
                .map_err(|e| format!("cannot start an accept thread: {e}"))?;
        }
        Ok::<(), String>(())
    })?;
    drop(rt);
    Ok(())
}

fn accept_loop(l: &TcpListener, entry: &Entry, ctx: &Arc<Ctx>, limiter: &Arc<Limiter>) {
    loop {
        let slot = limiter.acquire();
        let (tcp, client) = match l.accept() {
            Ok(x) => x,
            Err(e) => {
                // e.g. EMFILE: keep serving the connections we have and try again
                report_err(format_args!("proxy: accept: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let ctx = ctx.clone();
        let entry = entry.clone();
        let spawned = std::thread::Builder::new()
            .name("mptun-conn".into())
            .spawn(move || {
                let _slot = slot;
                serve_client(&ctx, &entry, tcp, client);
            });
        if let Err(e) = spawned {
            report_err(format_args!(
                "proxy: client {client}: cannot start a thread: {e}"
            ));
        }
    }
}

/// One proxied client: SOCKS handshake (or the forward's target), MPTCP connect, relay,
/// then one line on stdout (success) or stderr (failure).
fn serve_client(ctx: &Ctx, entry: &Entry, tcp: TcpStream, client: SocketAddr) {
    let id = ctx.next_id.fetch_add(1, Ordering::Relaxed);
    tracing::info!("proxy: conn={id} client={client} accepted");
    let socks = matches!(entry, Entry::Socks);
    let dest = match entry {
        Entry::Forward(t) => t.clone(),
        Entry::Socks => {
            let _ = tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
            let _ = tcp.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
            match socks5::handshake(&mut &tcp) {
                Ok(d) => d,
                Err(e) => {
                    report_err(format_args!("conn={id} client={client}: {e}"));
                    if !matches!(e, socks5::SocksError::Io(_)) {
                        close_after_reply(&tcp);
                    }
                    return;
                }
            }
        }
    };
    let _ = tcp.set_read_timeout(None);
    let fail = |reply: Reply, why: String| {
        if socks {
            let _ = socks5::write_reply(&mut &tcp, reply, None);
            close_after_reply(&tcp);
        }
        report_err(format_args!(
            "conn={id} client={client} target={dest}: {why}"
        ));
    };
    let addrs = match resolve(&dest, &ctx.locals) {
        Ok(a) => a,
        Err((reply, why)) => return fail(reply, why),
    };
    let start = Instant::now();
    let conn = match connect(ctx, &addrs) {
        Ok(c) => c,
        Err(e) => return fail(Reply::for_connect_error(&e), format!("connect: {e}")),
    };
    if socks {
        if let Err(e) = socks5::write_reply(&mut &tcp, Reply::Succeeded, conn.local_addr().ok()) {
            abort(&conn);
            report_err(format_args!(
                "conn={id} client={client} target={dest}: SOCKS reply: {e}"
            ));
            return;
        }
    }
    tracing::info!("proxy: conn={id} client={client} target={dest} connected");
    let (moved, r) = relay(&conn, tcp);
    let summary = summary(&conn, moved, start);
    match r {
        Ok(_) if ctx.json => report(format_args!(
            "{}",
            summary.to_json_with(&[
                ("conn", id.to_string()),
                ("client", json_str(&client.to_string())),
                ("target", json_str(&dest.to_string())),
            ])
        )),
        Ok(_) => report(format_args!(
            "conn={id} client={client} target={dest} {summary}"
        )),
        Err(e) => report_err(format_args!(
            "conn={id} client={client} target={dest}: {e} ({summary})"
        )),
    }
}

/// After a refusal: FIN, then whatever the client still sends (the rest of a request we
/// could not parse) is read and dropped for up to a second, so that closing does not turn
/// into a RST that could destroy the reply before the client read it.
fn close_after_reply(tcp: &TcpStream) {
    let _ = tcp.shutdown(Shutdown::Write);
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut b = [0u8; 4096];
    while Instant::now() < deadline {
        match (&*tcp).read(&mut b) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}

fn summary(conn: &MptcpStream, r: Relayed, start: Instant) -> Summary {
    runner::summarize(
        conn.stack(),
        conn,
        Transfer {
            sent: r.to_mptcp,
            received: r.from_mptcp,
            start,
            aborted: false,
        },
    )
}

/// Connects to the TCP service behind `listen --forward` (kernel TCP, any family).
fn connect_service(target: &Target) -> io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = match target {
        Target::Addr(a) => vec![*a],
        Target::Name(h, p) => (h.as_str(), *p).to_socket_addrs()?.collect(),
    };
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{target} has no address"));
    for a in addrs {
        match TcpStream::connect_timeout(&a, SERVICE_CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Relays one accepted MPTCP connection to the service; the connection is reset if the
/// service cannot be reached.
fn forward_one(conn: &MptcpStream, target: &Target) -> Result<Transfer, String> {
    let start = Instant::now();
    let tcp = match connect_service(target) {
        Ok(t) => t,
        Err(e) => {
            abort(conn);
            return Err(format!("connecting to {target}: {e}"));
        }
    };
    let (r, res) = relay(conn, tcp);
    res?;
    Ok(Transfer {
        sent: r.from_mptcp,
        received: r.to_mptcp,
        start,
        aborted: false,
    })
}

/// `mptun listen --forward HOST:PORT`: every accepted MPTCP connection is relayed to the
/// TCP service (`--once`: one, then exit with its summary).
pub fn run_listen_forward(opts: &RunOptions, target: &Target) -> Result<Summary, String> {
    let port = opts.port.ok_or("listen needs --port")?;
    if opts.input.is_some() || opts.output.is_some() {
        return Err("--forward relays the connection: no --input/--output with it".into());
    }
    let rt = runner::start_runtime(opts)?;
    runner::install_state_dump(rt.handle().clone());
    let _stats = crate::cli::stats::StatsReporter::start(rt.handle(), opts);
    let listener = MptcpListener::bind_with(rt.handle(), port, Some(runner::conn_config(opts)?))
        .map_err(|e| format!("listen on port {port}: {e}"))?;
    let limiter = Limiter::new(ProxyOptions::default().max_connections);
    loop {
        let slot = limiter.acquire();
        let (stream, peer) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        tracing::info!("accepted a connection from {peer}, relaying to {target}");
        if opts.once {
            drop(listener);
            let r = forward_one(&stream, target);
            return runner::finish(rt, stream, r);
        }
        let target = target.clone();
        let handle = rt.handle().clone();
        let json = opts.json;
        let spawned = std::thread::Builder::new()
            .name("mptun-conn".into())
            .spawn(move || {
                let _slot = slot;
                match forward_one(&stream, &target) {
                    Ok(t) => {
                        let s = runner::summarize(&handle, &stream, t);
                        if json {
                            report(format_args!(
                                "{}",
                                s.to_json_with(&[
                                    ("peer", json_str(&peer.to_string())),
                                    ("target", json_str(&target.to_string())),
                                ])
                            ));
                        } else {
                            report(format_args!("peer={peer} target={target} {s}"));
                        }
                    }
                    Err(e) => report_err(format_args!("peer={peer} target={target}: {e}")),
                }
            });
        if let Err(e) = spawned {
            report_err(format_args!(
                "connection from {peer}: cannot start a thread: {e}"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_filters_families_and_maps_failures() {
        let v4: Vec<IpAddr> = vec!["198.18.1.2".parse().unwrap()];
        let v6: Vec<IpAddr> = vec!["2001:2::2".parse().unwrap()];
        let a4 = Target::Addr("198.18.1.1:80".parse().unwrap());
        let a6 = Target::Addr("[2001:2::1]:80".parse().unwrap());
        assert_eq!(resolve(&a4, &v4).unwrap().len(), 1);
        assert_eq!(resolve(&a6, &v4).unwrap_err().0, Reply::NetworkUnreachable);
        assert_eq!(resolve(&a4, &v6).unwrap_err().0, Reply::NetworkUnreachable);
        assert_eq!(resolve(&a6, &v6).unwrap().len(), 1);
        // "localhost" resolves without DNS (127.0.0.1 / ::1)
        let lh = Target::Name("localhost".into(), 80);
        let mut both = v4.clone();
        both.extend(&v6);
        assert!(!resolve(&lh, &both).unwrap().is_empty());
        // the .invalid TLD never resolves (RFC 6761)
        let bad = Target::Name("no-such-host.invalid".into(), 80);
        assert_eq!(resolve(&bad, &v4).unwrap_err().0, Reply::HostUnreachable);
    }

    #[test]
    fn limiter_bounds_and_releases() {
        let l = Limiter::new(2);
        let a = l.acquire();
        let _b = l.acquire();
        let l2 = l.clone();
        let waiter = std::thread::spawn(move || {
            let _c = l2.acquire();
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished());
        drop(a);
        waiter.join().unwrap();
    }
}
