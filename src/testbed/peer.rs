//! The Linux peer: a small bulk-transfer program that uses the kernel's MPTCP (or plain TCP).
//!
//! It is run inside a test namespace as `mptun linux-peer ...`. It opens one socket with
//! protocol 262 (`IPPROTO_MPTCP`), or a plain TCP socket with `--tcp`, either listens and
//! accepts once or connects, then sends its payload while reading everything until EOF, and
//! shuts down its write side after the last byte. It prints one `key=value` line
//! ([`PeerReport`]) with the byte counts and the SHA-256 of each direction, so that a test
//! can compare digests with the files the other side (mptun) read and wrote.
//!
//! A listening peer prints `ready listen=ADDR` on stdout before it accepts, so a harness can
//! wait for it instead of sleeping.

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use socket2::{Domain, Protocol, Socket, Type};

/// `IPPROTO_MPTCP` on Linux.
pub const IPPROTO_MPTCP: i32 = 262;

/// Arguments of `mptun linux-peer`.
#[derive(Clone, Debug, clap::Args)]
pub struct PeerArgs {
    /// Use plain TCP instead of MPTCP (for fallback tests).
    #[arg(long)]
    pub tcp: bool,
    /// Listen on ADDR:PORT and accept one connection.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "connect")]
    pub listen: Option<SocketAddr>,
    /// Connect to ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT", required_unless_present = "listen")]
    pub connect: Option<SocketAddr>,
    /// Bind the connecting socket to this local address first.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::IpAddr>,
    /// Send this many bytes of the deterministic pattern (see `pattern`).
    #[arg(long, default_value_t = 0)]
    pub bytes: u64,
    /// Seed of the pattern.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Send the contents of this file instead of the pattern.
    #[arg(long, value_name = "FILE", conflicts_with = "bytes")]
    pub input: Option<PathBuf>,
    /// Write what was received to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Give up when a read or write stalls this many seconds (0 = never).
    #[arg(long, default_value_t = 120)]
    pub io_timeout: u64,
    /// How many times to retry a refused connect, 100 ms apart.
    #[arg(long, default_value_t = 50)]
    pub connect_retries: u32,
    /// Close the sending direction only after the peer closed its own (Linux refuses new
    /// MPTCP subflows once the connection is half-closed).
    #[arg(long)]
    pub hold: bool,
    /// Send this many pattern bytes, then abort the connection without reading (SO_LINGER
    /// 0 and close: Linux sends MP_FASTCLOSE, mptcp_join.sh's fastclose group).
    #[arg(long, value_name = "BYTES", conflicts_with_all = ["input", "hold"])]
    pub abort_after: Option<u64>,
}

impl PeerArgs {
    /// Arguments for a listening peer sending `bytes` pattern bytes.
    pub fn listen(addr: SocketAddr, bytes: u64, seed: u64) -> PeerArgs {
        PeerArgs {
            tcp: false,
            listen: Some(addr),
            connect: None,
            bind: None,
            bytes,
            seed,
            input: None,
            output: None,
            io_timeout: 120,
            connect_retries: 50,
            hold: false,
            abort_after: None,
        }
    }

    /// Arguments for a connecting peer sending `bytes` pattern bytes.
    pub fn connect(addr: SocketAddr, bytes: u64, seed: u64) -> PeerArgs {
        PeerArgs {
            listen: None,
            connect: Some(addr),
            ..PeerArgs::listen(addr, bytes, seed)
        }
    }

    /// The command-line form, to pass after `mptun linux-peer`.
    pub fn to_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.tcp {
            v.push("--tcp".to_string());
        }
        if let Some(a) = self.listen {
            v.extend(["--listen".to_string(), a.to_string()]);
        }
        if let Some(a) = self.connect {
            v.extend(["--connect".to_string(), a.to_string()]);
        }
        if let Some(b) = self.bind {
            v.extend(["--bind".to_string(), b.to_string()]);
        }
        if let Some(p) = &self.input {
            v.extend(["--input".to_string(), p.display().to_string()]);
        } else {
            v.extend(["--bytes".to_string(), self.bytes.to_string()]);
        }
        v.extend(["--seed".to_string(), self.seed.to_string()]);
        if let Some(p) = &self.output {
            v.extend(["--output".to_string(), p.display().to_string()]);
        }
        v.extend(["--io-timeout".to_string(), self.io_timeout.to_string()]);
        v.extend([
            "--connect-retries".to_string(),
            self.connect_retries.to_string(),
        ]);
        if self.hold {
            v.push("--hold".to_string());
        }
        if let Some(n) = self.abort_after {
            v.extend(["--abort-after".to_string(), n.to_string()]);
        }
        v
    }
}

/// What the peer did, printed as one `key=value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerReport {
    /// `server` or `client`.
    pub role: String,
    /// Whether the socket was opened with `IPPROTO_MPTCP` (the kernel may still fall back).
    pub mptcp: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Lower-case hex SHA-256 of everything sent.
    pub sent_sha256: String,
    /// Lower-case hex SHA-256 of everything received.
    pub received_sha256: String,
}

impl fmt::Display for PeerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "role={} proto={} local={} remote={} sent={} received={} sent_sha256={} received_sha256={}",
            self.role,
            if self.mptcp { "mptcp" } else { "tcp" },
            self.local,
            self.remote,
            self.bytes_sent,
            self.bytes_received,
            self.sent_sha256,
            self.received_sha256
        )
    }
}

impl FromStr for PeerReport {
    type Err = String;

    /// Parses the line printed by `Display` (extra keys are ignored).
    fn from_str(line: &str) -> Result<Self, String> {
        let get = |key: &str| -> Result<&str, String> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
                .ok_or_else(|| format!("peer report lacks `{key}`: {line:?}"))
        };
        let num = |key: &str| -> Result<u64, String> {
            get(key)?
                .parse()
                .map_err(|e| format!("peer report `{key}`: {e}"))
        };
        let addr = |key: &str| -> Result<SocketAddr, String> {
            get(key)?
                .parse()
                .map_err(|e| format!("peer report `{key}`: {e}"))
        };
        Ok(PeerReport {
            role: get("role")?.to_string(),
            mptcp: match get("proto")? {
                "mptcp" => true,
                "tcp" => false,
                other => return Err(format!("peer report: unknown proto {other:?}")),
            },
            local: addr("local")?,
            remote: addr("remote")?,
            bytes_sent: num("sent")?,
            bytes_received: num("received")?,
            sent_sha256: get("sent_sha256")?.to_string(),
            received_sha256: get("received_sha256")?.to_string(),
        })
    }
}

/// A deterministic pseudo-random byte stream (SplitMix64), shared by the peer and tests.
#[derive(Clone, Debug)]
pub struct Pattern {
    state: u64,
    buf: [u8; 8],
    used: usize,
}

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        Pattern {
            state: seed,
            buf: [0; 8],
            used: 8,
        }
    }

    fn next_word(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `out` with the next bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        // the rest of the current word, then whole words, then the start of the next one
        let head = (8 - self.used).min(out.len());
        out[..head].copy_from_slice(&self.buf[self.used..self.used + head]);
        self.used += head;
        let mut words = out[head..].chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.next_word().to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            self.buf = self.next_word().to_le_bytes();
            tail.copy_from_slice(&self.buf[..tail.len()]);
            self.used = tail.len();
        }
    }
}

/// Writes `len` bytes of the pattern with `seed` to `path`; returns their SHA-256 (hex).
pub fn write_pattern_file(path: &std::path::Path, seed: u64, len: u64) -> io::Result<String> {
    let mut w = BufWriter::new(File::create(path)?);
    let mut pat = Pattern::new(seed);
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        pat.fill(&mut chunk[..n]);
        hasher.update(&chunk[..n]);
        w.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    w.flush()?;
    Ok(hex(&hasher.finalize()))
}

/// SHA-256 (hex) of a file's contents.
pub fn sha256_file(path: &std::path::Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn new_socket(addr: &SocketAddr, tcp: bool) -> io::Result<Socket> {
    let proto = if tcp {
        Protocol::TCP
    } else {
        Protocol::from(IPPROTO_MPTCP)
    };
    Socket::new(Domain::for_address(*addr), Type::STREAM, Some(proto)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("socket(protocol {}): {e} (is net.mptcp.enabled=1?)", {
                if tcp {
                    6
                } else {
                    IPPROTO_MPTCP
                }
            }),
        )
    })
}

/// The connection, and for a server the listener, which must stay open for the whole
/// transfer: Linux looks up a listener for every MP_JOIN SYN, so closing it after `accept`
/// would refuse additional subflows.
fn open_stream(args: &PeerArgs) -> io::Result<(String, TcpStream, Option<TcpListener>)> {
    if let Some(addr) = args.listen {
        let sock = new_socket(&addr, args.tcp)?;
        sock.set_reuse_address(true)?;
        sock.bind(&addr.into())?;
        // a backlog for the joins that arrive together with (or right after) the first
        // subflow: with 1, Linux answers some of them with SYN cookies
        sock.listen(16)?;
        let listener = TcpListener::from(sock);
        println!("ready listen={}", listener.local_addr()?);
        io::stdout().flush()?;
        let (stream, _) = listener.accept()?;
        return Ok(("server".to_string(), stream, Some(listener)));
    }
    let Some(addr) = args.connect else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "linux-peer needs --listen or --connect",
        ));
    };
    let mut attempt = 0;
    loop {
        let sock = new_socket(&addr, args.tcp)?;
        if let Some(ip) = args.bind {
            sock.bind(&SocketAddr::new(ip, 0).into())?;
        }
        match sock.connect(&addr.into()) {
            Ok(()) => return Ok(("client".to_string(), TcpStream::from(sock), None)),
            Err(e)
                if e.kind() == io::ErrorKind::ConnectionRefused
                    && attempt < args.connect_retries =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("connect {addr}: {e}"))),
        }
    }
}

/// Runs the peer: one connection, both directions at once. Returns the report (the binary
/// prints it).
/// Write `bytes` bytes of the pattern with `seed` to `w`, hashing them into `hasher`.
fn send_pattern(w: &mut impl Write, seed: u64, bytes: u64, hasher: &mut Sha256) -> io::Result<u64> {
    let mut pat = Pattern::new(seed);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(chunk.len() as u64) as usize;
        pat.fill(&mut chunk[..n]);
        w.write_all(&chunk[..n])?;
        hasher.update(&chunk[..n]);
        sent += n as u64;
    }
    Ok(sent)
}

pub fn run_peer(args: &PeerArgs) -> io::Result<PeerReport> {
    let mut input = match &args.input {
        Some(p) => Some(
            File::open(p)
                .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let mut output = match &args.output {
        Some(p) => Some(BufWriter::new(File::create(p)?)),
        None => None,
    };
    let (role, mut stream, listener) = open_stream(args)?;
    if args.io_timeout > 0 {
        let t = Some(Duration::from_secs(args.io_timeout));
        stream.set_read_timeout(t)?;
        stream.set_write_timeout(t)?;
    }
    let local = stream.local_addr()?;
    let remote = stream.peer_addr()?;
    if let Some(n) = args.abort_after {
        // send, then abort: SO_LINGER 0 makes close() reset the connection (MP_FASTCLOSE)
        let mut hasher = Sha256::new();
        let sent = send_pattern(&mut stream, args.seed, n, &mut hasher)?;
        socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
        drop(stream);
        drop(listener);
        return Ok(PeerReport {
            role,
            mptcp: !args.tcp,
            local,
            remote,
            bytes_sent: sent,
            bytes_received: 0,
            sent_sha256: hex(&hasher.finalize()),
            received_sha256: hex(&Sha256::new().finalize()),
        });
    }

    let mut writer = stream.try_clone()?;
    let (bytes, seed) = (args.bytes, args.seed);
    let (eof_tx, eof_rx) = std::sync::mpsc::channel::<()>();
    let hold = args.hold;
    let sender = std::thread::spawn(move || -> io::Result<(u64, String)> {
        let mut hasher = Sha256::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut sent = 0u64;
        if let Some(f) = input.as_mut() {
            loop {
                let n = f.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                writer.write_all(&chunk[..n])?;
                hasher.update(&chunk[..n]);
                sent += n as u64;
            }
        } else {
            sent = send_pattern(&mut writer, seed, bytes, &mut hasher)?;
        }
        if hold {
            let _ = eof_rx.recv(); // the reader saw EOF (or failed)
        }
        writer.shutdown(Shutdown::Write)?;
        Ok((sent, hex(&hasher.finalize())))
    });

    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut chunk = vec![0u8; 64 * 1024];
    let read_result: io::Result<()> = loop {
        match stream.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                hasher.update(&chunk[..n]);
                received += n as u64;
                if let Some(o) = output.as_mut() {
                    if let Err(e) = o.write_all(&chunk[..n]) {
                        break Err(e);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let _ = eof_tx.send(());
    if read_result.is_err() {
        // Unblock the sender so the thread can be joined.
        let _ = stream.shutdown(Shutdown::Both);
    }
    let send_result = sender
        .join()
        .map_err(|_| io::Error::other("linux-peer sender thread panicked"))?;
    read_result.map_err(|e| io::Error::new(e.kind(), format!("receive: {e}")))?;
    let (sent, sent_sha256) =
        send_result.map_err(|e| io::Error::new(e.kind(), format!("send: {e}")))?;
    if let Some(mut o) = output {
        o.flush()?;
    }
    drop(listener);
    Ok(PeerReport {
        role,
        mptcp: !args.tcp,
        local,
        remote,
        bytes_sent: sent,
        bytes_received: received,
        sent_sha256,
        received_sha256: hex(&hasher.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_deterministic_and_chunking_independent() {
        let mut a = Pattern::new(7);
        let mut whole = [0u8; 100];
        a.fill(&mut whole);
        let mut b = Pattern::new(7);
        let mut parts = [0u8; 100];
        let (x, y) = parts.split_at_mut(13);
        b.fill(x);
        b.fill(y);
        assert_eq!(whole, parts);
        let mut c = Pattern::new(8);
        let mut other = [0u8; 100];
        c.fill(&mut other);
        assert_ne!(whole, other);
        // the stream is the little-endian bytes of successive SplitMix64 words, whatever
        // the chunk sizes (every size from 1 to 17 in turn)
        let mut r = Pattern::new(7);
        let reference: Vec<u8> = (0..40).flat_map(|_| r.next_word().to_le_bytes()).collect();
        let mut p = Pattern::new(7);
        let mut got = Vec::new();
        let mut k = 1;
        while got.len() < 300 {
            let mut c = vec![0u8; k];
            p.fill(&mut c);
            got.extend_from_slice(&c);
            k = k % 17 + 1;
        }
        assert_eq!(&got[..300], &reference[..300]);
    }

    #[test]
    fn report_round_trips() {
        let r = PeerReport {
            role: "server".into(),
            mptcp: true,
            local: "198.18.1.1:5201".parse().unwrap(),
            remote: "198.18.1.2:40000".parse().unwrap(),
            bytes_sent: 5,
            bytes_received: 9,
            sent_sha256: "ab".into(),
            received_sha256: "cd".into(),
        };
        let line = r.to_string();
        assert!(!line.contains('\n'));
        assert_eq!(line.parse::<PeerReport>().unwrap(), r);
        assert!("role=x".parse::<PeerReport>().is_err());
    }

    #[test]
    fn hex_and_file_digest_agree() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
        let dir = std::env::temp_dir().join(format!("mptun-peer-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("pat");
        let d = write_pattern_file(&p, 3, 200_000).unwrap();
        assert_eq!(sha256_file(&p).unwrap(), d);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 200_000);
        // SHA-256 of the empty input.
        let e = dir.join("empty");
        write_pattern_file(&e, 3, 0).unwrap();
        assert_eq!(
            sha256_file(&e).unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn args_round_trip_through_clap() {
        use clap::Parser;
        #[derive(Parser)]
        struct W {
            #[command(flatten)]
            a: PeerArgs,
        }
        let a = PeerArgs::connect("198.19.0.1:80".parse().unwrap(), 1234, 9);
        let mut argv = vec!["x".to_string()];
        argv.extend(a.to_args());
        let w = W::try_parse_from(argv).unwrap();
        assert_eq!(w.a.connect, a.connect);
        assert_eq!(w.a.bytes, 1234);
        assert_eq!(w.a.seed, 9);
        assert!(W::try_parse_from(["x", "--bytes", "3"]).is_err());
    }
}
