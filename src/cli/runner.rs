//! What `mptun connect` and `mptun listen` do: open the TUN devices, start the runtime, run
//! one transfer (send `--input`, write what arrives to `--output`), report a summary.

use crate::api::{MptcpListener, MptcpStream, StackHandle};
use crate::cli::{is_stdio, RunOptions, SubflowSummary, Summary};
use crate::crypto::KeyGen;
use crate::io::driver::{Port, Runtime};
use crate::io::impair::Impairment;
use crate::mptcp::ConnConfig;
use crate::stack::{Stack, StackConfig};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

/// How long a handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the closing handshake may take once both sides finished sending.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) fn conn_config(opts: &RunOptions) -> Result<ConnConfig, String> {
    let mut cfg = ConnConfig {
        mptcp: opts.mptcp,
        checksum: opts.checksum,
        ..ConnConfig::default()
    };
    cfg.tcp.congestion = crate::cc::canonical(&opts.congestion).ok_or_else(|| {
        format!(
            "unknown congestion control {:?} (one of {})",
            opts.congestion,
            crate::cc::names().join(", ")
        )
    })?;
    cfg.tcp.user_timeout = opts.user_timeout;
    cfg.limits = opts.limits;
    if let Some(t) = opts.add_addr_timeout {
        cfg.add_addr_timeout = t;
    }
    cfg.path_manager = opts.path_manager.clone();
    cfg.scheduler = opts.scheduler.clone();
    cfg.check_policies()?;
    for b in &opts.backup {
        if !opts.tuns.iter().any(|t| &t.name == b) {
            return Err(format!("--backup {b}: no --tun with that name"));
        }
    }
    cfg.local_addrs = opts
        .tuns
        .iter()
        .map(|t| crate::pm::LocalAddr {
            backup: opts.backup.contains(&t.name),
            announce: opts.announce,
            ..crate::pm::LocalAddr::device(t.addr)
        })
        .collect();
    // `--endpoint 0:...` is configuration: it holds before the first connection
    for &(at, action) in &opts.endpoints {
        if !at.is_zero() {
            continue;
        }
        match action {
            crate::cli::EndpointAction::Set(ep) => {
                match cfg.local_addrs.iter_mut().find(|l| l.addr == ep.addr) {
                    Some(l) => *l = ep,
                    None => {
                        return Err(format!(
                            "--endpoint {}: no --tun with that address",
                            ep.addr
                        ))
                    }
                }
            }
            crate::cli::EndpointAction::Remove(a) => cfg.local_addrs.retain(|l| l.addr != a),
        }
    }
    Ok(cfg)
}

pub(crate) fn start_runtime(opts: &RunOptions) -> Result<Runtime, String> {
    if opts.tuns.is_empty() {
        return Err("at least one --tun NAME=ADDR is needed".into());
    }
    let cfg = conn_config(opts)?;
    for (dev, _) in &opts.impair {
        let (name, _) = impair_direction(dev)?;
        if !opts.tuns.iter().any(|t| t.name == name) {
            return Err(format!("--impair {dev}: no --tun with that name"));
        }
    }
    let mut ports = Vec::new();
    for t in &opts.tuns {
        // offload unless disabled or the device is impaired (impairment works on segments)
        let impaired = opts
            .impair
            .iter()
            .any(|(dev, _)| impair_direction(dev).is_ok_and(|(n, _)| n == t.name));
        let tun = crate::io::tun::Tun::open_existing_with(&t.name, opts.offload && !impaired)
            .map_err(|e| format!("--tun {}: {e}", t))?;
        let (mut egress, mut ingress) = (None, None);
        for (dev, spec) in &opts.impair {
            let (name, dir) = impair_direction(dev)?;
            if name == t.name {
                let imp: Impairment = spec
                    .parse()
                    .map_err(|e| format!("--impair {dev}:{spec}: {e}"))?;
                match dir {
                    Dir::Out => egress = Some(imp),
                    Dir::In => ingress = Some(imp),
                    Dir::Both => {
                        egress = Some(imp.clone());
                        ingress = Some(imp);
                    }
                }
            }
        }
        if let Ok(mtu) = tun.mtu() {
            if mtu < 1280 {
                return Err(format!("{}: MTU {mtu} is too small", t.name));
            }
        }
        ports.push(Port {
            device: Box::new(tun),
            addrs: vec![t.addr],
            egress,
            ingress,
        });
    }
    let stack_cfg = StackConfig {
        addrs: opts.tuns.iter().map(|t| t.addr).collect(),
        conn: cfg,
        ..StackConfig::default()
    };
    let stack = Stack::new(stack_cfg, KeyGen::from_entropy());
    let seed = KeyGen::from_entropy().key();
    let ropts = crate::io::driver::RuntimeOptions {
        seed,
        pcap: opts.pcap.clone(),
    };
    let rt = Runtime::start_with(stack, ports, ropts)
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    for (dev, up, at) in &opts.links {
        let port = opts
            .tuns
            .iter()
            .position(|t| &t.name == dev)
            .ok_or_else(|| format!("--link {dev}: no --tun with that name"))?;
        let control = rt.link_control();
        let (up, at) = (*up, *at);
        std::thread::spawn(move || {
            std::thread::sleep(at);
            control.set_link_up(port, up);
        });
    }
    for &(at, action) in opts.endpoints.iter().filter(|(at, _)| !at.is_zero()) {
        let addr = match action {
            crate::cli::EndpointAction::Set(ep) => ep.addr,
            crate::cli::EndpointAction::Remove(a) => a,
        };
        if !opts.tuns.iter().any(|t| t.addr == addr) {
            return Err(format!("--endpoint {addr}: no --tun with that address"));
        }
        let handle = rt.handle().clone();
        std::thread::spawn(move || {
            std::thread::sleep(at);
            let now = handle.now();
            let r = handle.with_stack(|s| match action {
                crate::cli::EndpointAction::Set(ep) => s.set_endpoint(now, ep),
                crate::cli::EndpointAction::Remove(a) => s.remove_endpoint(now, a),
            });
            if let Err(e) = r {
                tracing::warn!("--endpoint {addr}: {e}");
            }
            handle.wake_driver();
        });
    }
    Ok(rt)
}

enum Dir {
    Out,
    In,
    Both,
}

/// `tun1` (packets mptun sends), `tun1/in` (packets it receives), `tun1/both`.
fn impair_direction(dev: &str) -> Result<(&str, Dir), String> {
    match dev.split_once('/') {
        None => Ok((dev, Dir::Out)),
        Some((d, "out")) => Ok((d, Dir::Out)),
        Some((d, "in")) => Ok((d, Dir::In)),
        Some((d, "both")) => Ok((d, Dir::Both)),
        Some((_, other)) => Err(format!(
            "--impair {dev}: direction must be in, out or both, not {other:?}"
        )),
    }
}

/// `mptun connect`.
pub fn run_connect(opts: &RunOptions) -> Result<Summary, String> {
    let remote = opts.remote.ok_or("connect needs REMOTE_IP:PORT")?;
    let rt = start_runtime(opts)?;
    install_state_dump(rt.handle().clone());
    let _stats = crate::cli::stats::StatsReporter::start(rt.handle(), opts);
    let local = opts
        .tuns
        .iter()
        .map(|t| t.addr)
        .find(|a| a.is_ipv4() == remote.is_ipv4());
    let start = Instant::now();
    let stream = MptcpStream::connect_with(
        rt.handle(),
        remote,
        local,
        Some(conn_config(opts)?),
        Some(CONNECT_TIMEOUT),
    )
    .map_err(|e| format!("connect to {remote}: {e}"))?;
    let r = transfer(&stream, opts, start);
    finish(rt, stream, r)
}

/// Set by SIGTERM/SIGINT (e.g. from `timeout`): the watchdog then prints every
/// connection's state to stderr before exiting, so that a hung transfer can be diagnosed.
static TERMINATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Set by SIGUSR1: the watchdog prints the same state and mptun goes on (`kill -USR1 PID`
/// inspects a running instance, like `ss -M` and `nstat` for the kernel's MPTCP).
static DUMP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn on_terminate(_sig: libc::c_int) {
    TERMINATE.store(true, std::sync::atomic::Ordering::Relaxed);
}

extern "C" fn on_dump(_sig: libc::c_int) {
    DUMP.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Every connection's state (sequence numbers, every subflow's TCP state and counters) and
/// the stack's non-zero MIB counters, one line each, after `header`.
pub(crate) fn state_text(s: &crate::stack::Stack, header: &str) -> String {
    let mut out = format!("{header}\n");
    for id in s.connections() {
        let Some(c) = s.connection(id) else { continue };
        out.push_str(&format!(
            "  conn {id}: established={} closed={} error={:?} fallback={} {:?} readable={} send_space={}\n",
            c.is_established(),
            c.is_closed(),
            c.error(),
            c.is_fallback(),
            c.info(),
            c.readable(),
            c.send_space(),
        ));
        for f in c.subflows() {
            let st = f.tcb.stats();
            out.push_str(&format!(
                "    subflow {} {} -> {} state={} join={:?} closed={:?} backup={} data_sent={} data_received={} cwnd={} ssthresh={} in_flight={} peer_window={} srtt={:?} rto={:?} retransmits={} rto_count={} segs_out={} segs_in={}\n",
                f.id, f.local, f.remote, f.tcb.state().name(), f.join, f.closed, f.backup,
                f.data_sent, f.data_received, st.cwnd, st.ssthresh, st.bytes_in_flight,
                st.peer_window, st.srtt, st.rto, st.retransmits, st.rto_count,
                st.segs_out, st.segs_in,
            ));
        }
    }
    out.push_str(&format!("  counters: {}\n", s.mib().nonzero_text()));
    out
}

/// Installs the SIGTERM/SIGINT handler and a thread that, once it fired, dumps the stack's
/// connections (state, sequence numbers, every subflow's TCP state and counters) to stderr
/// and exits with status 124 (what `timeout` reports). SIGUSR1 prints the same and goes on.
pub(crate) fn install_state_dump(handle: StackHandle) {
    // SAFETY: the handlers only store to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_terminate as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            on_terminate as *const () as libc::sighandler_t,
        );
        libc::signal(libc::SIGUSR1, on_dump as *const () as libc::sighandler_t);
    }
    std::thread::spawn(move || loop {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if DUMP.swap(false, std::sync::atomic::Ordering::Relaxed) {
            let text = handle.with_stack(|s| state_text(s, "mptun: state (SIGUSR1):"));
            eprint!("{text}");
        }
        if !TERMINATE.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        let text = handle.with_stack(|s| state_text(s, "mptun: terminated; connection state:"));
        eprint!("{text}");
        std::process::exit(124);
    });
}

/// `mptun listen`.
pub fn run_listen(opts: &RunOptions) -> Result<Summary, String> {
    if let Some(target) = &opts.forward {
        return crate::cli::proxy::run_listen_forward(opts, target);
    }
    let port = opts.port.ok_or("listen needs --port")?;
    if !opts.once && opts.input.as_deref().is_some_and(is_stdio) {
        return Err("--input - (stdin) can be sent once only: add --once".into());
    }
    let rt = start_runtime(opts)?;
    install_state_dump(rt.handle().clone());
    let _stats = crate::cli::stats::StatsReporter::start(rt.handle(), opts);
    let listener = MptcpListener::bind_with(rt.handle(), port, Some(conn_config(opts)?))
        .map_err(|e| format!("listen on port {port}: {e}"))?;
    loop {
        let (stream, peer) = listener.accept().map_err(|e| format!("accept: {e}"))?;
        tracing::info!("accepted a connection from {peer}");
        let start = Instant::now();
        let r = transfer(&stream, opts, start);
        if opts.once {
            drop(listener);
            return finish(rt, stream, r);
        }
        match r {
            Ok(s) => println!(
                "{}",
                summary_line(opts, &summarize(rt.handle(), &stream, s))
            ),
            Err(e) => eprintln!("mptun: connection from {peer}: {e}"),
        }
    }
}

/// What one connection moved, for its [`Summary`].
pub(crate) struct Transfer {
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) start: Instant,
    /// Ended by `--abort-after` (reset, MP_FASTCLOSE): nothing to wait for at close.
    pub(crate) aborted: bool,
}

fn transfer(stream: &MptcpStream, opts: &RunOptions, start: Instant) -> Result<Transfer, String> {
    let input: Option<Box<dyn Read + Send>> = match &opts.input {
        Some(p) if is_stdio(p) => Some(Box::new(io::stdin())),
        Some(p) => {
            Some(Box::new(File::open(p).map_err(|e| {
                format!("cannot open --input {}: {e}", p.display())
            })?))
        }
        None => None,
    };
    let mut output = match &opts.output {
        Some(p) if is_stdio(p) => Some(Output::Pipe(take_stdout()?)),
        Some(p) => Some(Output::File(BufWriter::new(
            File::create(p).map_err(|e| format!("cannot create --output {}: {e}", p.display()))?,
        ))),
        None => None,
    };
    let has_input = input.is_some();
    let writer_stream = stream.try_clone().map_err(|e| e.to_string())?;
    let abort_after = opts.abort_after;
    let aborted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let aborted_w = aborted.clone();
    let writer = std::thread::spawn(move || -> Result<u64, String> {
        let mut sent = 0u64;
        if let Some(mut f) = input {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                if let Some(limit) = abort_after.filter(|&l| sent >= l) {
                    // --abort-after: reset the connection with MP_FASTCLOSE
                    aborted_w.store(true, std::sync::atomic::Ordering::SeqCst);
                    writer_stream
                        .abort()
                        .map_err(|e| format!("abort after {limit} bytes: {e}"))?;
                    return Ok(sent);
                }
                let room = abort_after.map_or(buf.len(), |l| {
                    usize::try_from(l - sent)
                        .unwrap_or(usize::MAX)
                        .min(buf.len())
                });
                // stdin: whatever is there is sent at once (interactive use)
                let n = match f.read(&mut buf[..room]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(format!("reading --input: {e}")),
                };
                if n == 0 {
                    if abort_after.is_some() {
                        // the input ended first: abort now
                        aborted_w.store(true, std::sync::atomic::Ordering::SeqCst);
                        writer_stream
                            .abort()
                            .map_err(|e| format!("abort after {sent} bytes: {e}"))?;
                        return Ok(sent);
                    }
                    break;
                }
                (&writer_stream)
                    .write_all(&buf[..n])
                    .map_err(|e| format!("sending: {e}"))?;
                sent += n as u64;
            }
            writer_stream
                .shutdown(Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
        }
        Ok(sent)
    });
    let mut received = 0u64;
    let mut buf = vec![0u8; 256 * 1024];
    let read_result = loop {
        match (&*stream).read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                received += n as u64;
                if let Some(o) = output.as_mut() {
                    if let Err(e) = o.write_chunk(&buf[..n]) {
                        break Err(format!("writing --output: {e}"));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(format!("receiving: {e}")),
        }
    };
    // End of the received stream: close the output now (a pipe reader sees EOF while our
    // sending direction may go on).
    if let Some(o) = output.take() {
        o.close().map_err(|e| format!("writing --output: {e}"))?;
    }
    let read_result = match read_result {
        // the receive side ends with the reset we asked for
        Err(_) if aborted.load(std::sync::atomic::Ordering::SeqCst) => Ok(()),
        r => r,
    };
    if let Err(e) = read_result {
        let _ = stream.shutdown(Shutdown::Both);
        // the sender may be blocked reading stdin: it is not waited for
        return Err(e);
    }
    let sent = writer
        .join()
        .map_err(|_| "sender thread panicked".to_string())??;
    if !has_input {
        // we send nothing and close our direction once the peer closed its own
        stream
            .shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))?;
    }
    Ok(Transfer {
        sent,
        received,
        start,
        aborted: aborted.load(std::sync::atomic::Ordering::SeqCst),
    })
}

/// Where received data goes.
enum Output {
    File(BufWriter<File>),
    /// stdout (`--output -`): written and flushed chunk by chunk.
    Pipe(File),
}

impl Output {
    fn write_chunk(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Output::File(f) => f.write_all(data),
            Output::Pipe(f) => {
                f.write_all(data)?;
                f.flush()
            }
        }
    }

    fn close(self) -> io::Result<()> {
        match self {
            Output::File(mut f) => f.flush(),
            Output::Pipe(f) => {
                drop(f);
                Ok(())
            }
        }
    }
}

/// Takes file descriptor 1 for the data of `--output -` and points fd 1 at /dev/null, so
/// that closing the returned file closes the pipe (the reader sees end of stream before
/// mptun exits) and nothing else printed on stdout can mix into the data. The summary goes
/// to stderr in this mode (see `src/bin/mptun.rs`).
fn take_stdout() -> Result<File, String> {
    use std::os::fd::FromRawFd;
    let _ = io::stdout().lock().flush();
    // SAFETY: dup(1) returns a new descriptor we own (checked for -1 below).
    let fd = unsafe { libc::dup(1) };
    if fd < 0 {
        return Err(format!(
            "--output -: dup(1): {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` is a valid descriptor owned by nobody else.
    let out = unsafe { File::from_raw_fd(fd) };
    let null = File::options()
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("--output -: /dev/null: {e}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are valid; dup2 atomically replaces fd 1.
    if unsafe { libc::dup2(null.as_raw_fd(), 1) } < 0 {
        return Err(format!("--output -: dup2: {}", io::Error::last_os_error()));
    }
    Ok(out)
}

/// Every subflow of `c` (closed ones included) as the summaries and statistics show it.
pub(crate) fn subflow_summaries(c: &crate::mptcp::Connection) -> Vec<SubflowSummary> {
    c.subflows()
        .iter()
        .map(|f| {
            let st = f.tcb.stats();
            SubflowSummary {
                local: f.local,
                remote: f.remote,
                bytes_sent: f.data_sent,
                bytes_received: f.data_received,
                rtt: st.srtt.unwrap_or_default(),
                cwnd: st.cwnd,
                retransmits: st.retransmits,
                state: f.tcb.state().name(),
            }
        })
        .collect()
}

pub(crate) fn summarize(handle: &StackHandle, stream: &MptcpStream, t: Transfer) -> Summary {
    let id = stream.id();
    let (mptcp, subflows) = handle.with_stack(|s| match s.connection(id) {
        Some(c) => (!c.is_fallback(), subflow_summaries(c)),
        None => (false, Vec::new()),
    });
    Summary {
        bytes_sent: t.sent,
        bytes_received: t.received,
        duration: t.start.elapsed(),
        mptcp,
        subflows,
    }
}

/// A summary line as `--json` or not wants it.
pub(crate) fn summary_line(opts: &RunOptions, s: &Summary) -> String {
    if opts.json {
        s.to_json()
    } else {
        s.to_string()
    }
}

pub(crate) fn finish(
    rt: Runtime,
    stream: MptcpStream,
    r: Result<Transfer, String>,
) -> Result<Summary, String> {
    let t = r?;
    if t.aborted {
        // the RSTs (with MP_FASTCLOSE) leave with the driver's last transmit when it stops
        let summary = summarize(rt.handle(), &stream, t);
        drop(stream);
        let _ = rt.stop();
        return Ok(summary);
    }
    // a close that stalls prints the state dump (what SIGTERM prints) before the error
    let stalled = |what: &str, e: std::io::Error| {
        let head = format!("mptun: {what} failed ({e}); connection state:");
        eprint!("{}", rt.handle().with_stack(|s| state_text(s, &head)));
        format!("{what}: {e}")
    };
    stream
        .wait_all_acked(Some(CLOSE_TIMEOUT))
        .map_err(|e| stalled("waiting for the peer to acknowledge", e))?;
    stream
        .wait_closed(Some(CLOSE_TIMEOUT))
        .map_err(|e| stalled("closing", e))?;
    let summary = summarize(rt.handle(), &stream, t);
    drop(stream);
    let _ = rt.stop();
    Ok(summary)
}
