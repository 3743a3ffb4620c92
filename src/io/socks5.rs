//! The server side of SOCKS5 (RFC 1928) as `mptun proxy --socks` speaks it: the "no
//! authentication" method only, the CONNECT command only, IPv4, IPv6 and domain-name
//! destinations (names are resolved by the proxy's host).
//!
//! The functions work on any `Read`/`Write` and read exactly the bytes of the handshake
//! (no read-ahead), so data a client sends right behind its request is left in the socket
//! for the relay. Malformed input never panics: it ends in an [`SocksError`] and, where the
//! protocol has one, the matching reply has already been written.
//!
//! Reply codes (RFC 1928 section 6) and when mptun sends them:
//!
//! | code | meaning | sent when |
//! |---|---|---|
//! | 0x00 | succeeded | the MPTCP connection to the destination is established |
//! | 0x01 | general SOCKS server failure | request with a version other than 5, an empty or malformed domain name, port 0, any other connect error |
//! | 0x03 | network unreachable | no TUN address of the destination's family (e.g. IPv6 destination, IPv4 paths only) |
//! | 0x04 | host unreachable | the name does not resolve |
//! | 0x05 | connection refused | the destination answered the SYN with a RST |
//! | 0x06 | TTL expired | the handshake timed out (no answer) |
//! | 0x07 | command not supported | BIND, UDP ASSOCIATE or an unknown command |
//! | 0x08 | address type not supported | ATYP other than 1, 3, 4 |
//!
//! A greeting offering no acceptable method (no 0x00) gets `05 FF` (RFC 1928 section 3); a
//! SOCKS4 greeting gets the SOCKS4 "request rejected" reply (`00 5B`), anything else is
//! closed without a reply.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// SOCKS protocol version.
pub const VERSION: u8 = 5;
/// The "no authentication required" method.
pub const METHOD_NO_AUTH: u8 = 0x00;
/// "No acceptable methods".
pub const METHOD_NONE_ACCEPTABLE: u8 = 0xFF;
/// The CONNECT command.
pub const CMD_CONNECT: u8 = 0x01;
pub const ATYP_IPV4: u8 = 0x01;
pub const ATYP_DOMAIN: u8 = 0x03;
pub const ATYP_IPV6: u8 = 0x04;

/// A reply code (the REP field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Reply {
    Succeeded = 0x00,
    GeneralFailure = 0x01,
    NotAllowed = 0x02,
    NetworkUnreachable = 0x03,
    HostUnreachable = 0x04,
    ConnectionRefused = 0x05,
    TtlExpired = 0x06,
    CommandNotSupported = 0x07,
    AddressTypeNotSupported = 0x08,
}

impl Reply {
    /// The byte on the wire.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reply matching a failed MPTCP connect: refused -> 0x05, timed out -> 0x06,
    /// anything else -> 0x01. (Unresolvable names (0x04) and destinations of a family no
    /// TUN address has (0x03) are decided before connecting.)
    pub fn for_connect_error(e: &io::Error) -> Reply {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Reply::ConnectionRefused,
            io::ErrorKind::TimedOut => Reply::TtlExpired,
            _ => Reply::GeneralFailure,
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Reply::Succeeded => "succeeded",
            Reply::GeneralFailure => "general failure",
            Reply::NotAllowed => "not allowed",
            Reply::NetworkUnreachable => "network unreachable",
            Reply::HostUnreachable => "host unreachable",
            Reply::ConnectionRefused => "connection refused",
            Reply::TtlExpired => "TTL expired",
            Reply::CommandNotSupported => "command not supported",
            Reply::AddressTypeNotSupported => "address type not supported",
        };
        f.write_str(s)
    }
}

/// Where a client wants to go: an address, or a domain name (checked by [`read_request`]:
/// 1-255 bytes of printable ASCII without spaces) and a port. It is also the TCP
/// destination of the command line (`mptun::cli::Target`): `HOST:PORT`, `[V6ADDR]:PORT`,
/// parsed with `FromStr`; a name is resolved when a connection needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    Addr(SocketAddr),
    Name(String, u16),
}

impl std::str::FromStr for Destination {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(Destination::Addr(a));
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("expected HOST:PORT, got {s:?}"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("bad port {port:?} in {s:?}"))?;
        if port == 0 {
            return Err(format!("port 0 in {s:?}"));
        }
        if host.is_empty() || host.contains(':') || host.contains('[') {
            return Err(format!(
                "bad host {host:?} in {s:?} (IPv6 addresses go in brackets: [2001:2::1]:80)"
            ));
        }
        if !host.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!("bad host name {host:?}"));
        }
        Ok(Destination::Name(host.to_string(), port))
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Addr(a) => write!(f, "{a}"),
            Destination::Name(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// Why a handshake ended without a destination.
#[derive(Debug)]
pub enum SocksError {
    /// Reading or writing failed, or the client closed mid-handshake (no reply possible).
    Io(io::Error),
    /// The greeting's version was not 5 (`4`: a SOCKS4 rejection was sent).
    BadVersion(u8),
    /// The client offered no method we accept; `05 FF` was sent.
    NoAcceptableMethod,
    /// The request was refused with this reply (already sent).
    Refused(Reply, &'static str),
}

impl fmt::Display for SocksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocksError::Io(e) => write!(f, "SOCKS handshake: {e}"),
            SocksError::BadVersion(v) => write!(f, "not a SOCKS5 client (version byte {v})"),
            SocksError::NoAcceptableMethod => {
                write!(
                    f,
                    "client offered no acceptable method (only no-auth is supported)"
                )
            }
            SocksError::Refused(r, why) => write!(f, "SOCKS request refused ({r}): {why}"),
        }
    }
}

impl std::error::Error for SocksError {}

impl From<io::Error> for SocksError {
    fn from(e: io::Error) -> Self {
        SocksError::Io(e)
    }
}

fn read_u8(r: &mut impl Read) -> io::Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

/// Method negotiation (RFC 1928 section 3): reads the greeting and answers `05 00` if the
/// client offers "no authentication", `05 FF` otherwise.
pub fn negotiate<S: Read + Write>(s: &mut S) -> Result<(), SocksError> {
    let ver = read_u8(s)?;
    if ver != VERSION {
        if ver == 4 {
            // SOCKS4 reply: VN=0, CD=91 (request rejected or failed), port, address.
            let _ = s.write_all(&[0x00, 0x5B, 0, 0, 0, 0, 0, 0]);
        }
        return Err(SocksError::BadVersion(ver));
    }
    let n = read_u8(s)?;
    let mut methods = [0u8; 255];
    let methods = &mut methods[..usize::from(n)];
    s.read_exact(methods)?;
    if !methods.contains(&METHOD_NO_AUTH) {
        s.write_all(&[VERSION, METHOD_NONE_ACCEPTABLE])?;
        return Err(SocksError::NoAcceptableMethod);
    }
    s.write_all(&[VERSION, METHOD_NO_AUTH])?;
    Ok(())
}

/// Whether `name` may be handed to the resolver: printable ASCII, no spaces, not empty.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|b| b.is_ascii_graphic())
}

/// Reads the request (RFC 1928 section 4). Requests mptun cannot serve are answered with the
/// matching reply and returned as [`SocksError::Refused`].
pub fn read_request<S: Read + Write>(s: &mut S) -> Result<Destination, SocksError> {
    let mut head = [0u8; 4];
    s.read_exact(&mut head)?;
    let [ver, cmd, _rsv, atyp] = head; // RSV is ignored (robustness)
    let refuse = |s: &mut S, r: Reply, why: &'static str| -> SocksError {
        match write_reply(s, r, None) {
            Ok(()) => SocksError::Refused(r, why),
            Err(e) => SocksError::Io(e),
        }
    };
    if ver != VERSION {
        return Err(refuse(s, Reply::GeneralFailure, "request version is not 5"));
    }
    if cmd != CMD_CONNECT {
        return Err(refuse(
            s,
            Reply::CommandNotSupported,
            "only CONNECT is supported",
        ));
    }
    let dest = match atyp {
        ATYP_IPV4 => {
            let mut b = [0u8; 6];
            s.read_exact(&mut b)?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Destination::Addr(SocketAddr::new(ip.into(), u16::from_be_bytes([b[4], b[5]])))
        }
        ATYP_IPV6 => {
            let mut b = [0u8; 18];
            s.read_exact(&mut b)?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[..16]);
            let port = u16::from_be_bytes([b[16], b[17]]);
            Destination::Addr(SocketAddr::new(Ipv6Addr::from(ip).into(), port))
        }
        ATYP_DOMAIN => {
            let len = usize::from(read_u8(s)?);
            let mut b = [0u8; 255 + 2];
            s.read_exact(&mut b[..len + 2])?;
            let port = u16::from_be_bytes([b[len], b[len + 1]]);
            let name = &b[..len];
            if !valid_name(name) {
                return Err(refuse(s, Reply::GeneralFailure, "malformed domain name"));
            }
            // valid_name checked ASCII
            let name = String::from_utf8_lossy(name).into_owned();
            // A literal address sent as a name is used as the address.
            match name.parse::<IpAddr>() {
                Ok(ip) => Destination::Addr(SocketAddr::new(ip, port)),
                Err(_) => Destination::Name(name, port),
            }
        }
        _ => {
            return Err(refuse(
                s,
                Reply::AddressTypeNotSupported,
                "unknown address type",
            ))
        }
    };
    let port = match &dest {
        Destination::Addr(a) => a.port(),
        Destination::Name(_, p) => *p,
    };
    if port == 0 {
        return Err(refuse(s, Reply::GeneralFailure, "destination port 0"));
    }
    Ok(dest)
}

/// The whole server handshake: negotiation, then the request.
pub fn handshake<S: Read + Write>(s: &mut S) -> Result<Destination, SocksError> {
    negotiate(s)?;
    read_request(s)
}

/// Writes a reply with `bound` as BND.ADDR/BND.PORT (`0.0.0.0:0` if `None`).
pub fn write_reply<W: Write>(w: &mut W, reply: Reply, bound: Option<SocketAddr>) -> io::Result<()> {
    let bound = bound.unwrap_or_else(|| SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0));
    let mut out = [0u8; 22];
    out[..3].copy_from_slice(&[VERSION, reply.code(), 0]);
    let n = match bound.ip() {
        IpAddr::V4(ip) => {
            out[3] = ATYP_IPV4;
            out[4..8].copy_from_slice(&ip.octets());
            8
        }
        IpAddr::V6(ip) => {
            out[3] = ATYP_IPV6;
            out[4..20].copy_from_slice(&ip.octets());
            20
        }
    };
    out[n..n + 2].copy_from_slice(&bound.port().to_be_bytes());
    w.write_all(&out[..n + 2])?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client's bytes in, the server's bytes out.
    struct Duplex {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Duplex {
        fn new(input: &[u8]) -> Duplex {
            Duplex {
                input: io::Cursor::new(input.to_vec()),
                output: Vec::new(),
            }
        }
        fn left(&self) -> usize {
            self.input.get_ref().len() - self.input.position() as usize
        }
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const GREETING: &[u8] = &[5, 1, 0];

    fn run(bytes: &[u8]) -> (Result<Destination, SocksError>, Vec<u8>, usize) {
        let mut d = Duplex::new(bytes);
        let r = handshake(&mut d);
        let left = d.left();
        (r, d.output, left)
    }

    fn with_greeting(req: &[u8]) -> Vec<u8> {
        let mut v = GREETING.to_vec();
        v.extend_from_slice(req);
        v
    }

    fn refused_with(bytes: &[u8], code: u8) {
        let (r, out, _) = run(bytes);
        match r {
            Err(SocksError::Refused(rep, _)) => assert_eq!(rep.code(), code),
            other => panic!("expected refusal {code:#x}, got {other:?}"),
        }
        // 05 00 for the method, then 05 REP 00 01 0.0.0.0:0
        assert_eq!(out, vec![5, 0, 5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn connect_ipv4_ipv6_and_name() {
        let (r, out, left) = run(&with_greeting(&[5, 1, 0, 1, 198, 18, 1, 1, 0x1f, 0x90]));
        assert_eq!(
            r.unwrap(),
            Destination::Addr("198.18.1.1:8080".parse().unwrap())
        );
        assert_eq!(out, vec![5, 0]);
        assert_eq!(left, 0);

        let mut req = vec![5, 1, 0, 4];
        req.extend_from_slice(&"2001:2::1".parse::<Ipv6Addr>().unwrap().octets());
        req.extend_from_slice(&443u16.to_be_bytes());
        let (r, _, _) = run(&with_greeting(&req));
        assert_eq!(
            r.unwrap(),
            Destination::Addr("[2001:2::1]:443".parse().unwrap())
        );

        let mut req = vec![5, 1, 0, 3, 11];
        req.extend_from_slice(b"example.com");
        req.extend_from_slice(&80u16.to_be_bytes());
        // data pipelined behind the request stays unread
        req.extend_from_slice(b"GET /");
        let (r, _, left) = run(&with_greeting(&req));
        assert_eq!(r.unwrap(), Destination::Name("example.com".into(), 80));
        assert_eq!(left, 5);

        // a literal address sent as a name is an address
        let mut req = vec![5, 1, 0, 3, 10];
        req.extend_from_slice(b"198.18.1.1");
        req.extend_from_slice(&80u16.to_be_bytes());
        let (r, _, _) = run(&with_greeting(&req));
        assert_eq!(
            r.unwrap(),
            Destination::Addr("198.18.1.1:80".parse().unwrap())
        );
    }

    #[test]
    fn method_selection() {
        // no-auth among others is chosen
        let mut d = Duplex::new(&[5, 3, 2, 1, 0]);
        negotiate(&mut d).unwrap();
        assert_eq!(d.output, vec![5, 0]);
        // only username/password and GSSAPI: 05 FF
        let mut d = Duplex::new(&[5, 2, 2, 1]);
        assert!(matches!(
            negotiate(&mut d),
            Err(SocksError::NoAcceptableMethod)
        ));
        assert_eq!(d.output, vec![5, 0xFF]);
        // zero methods: 05 FF
        let mut d = Duplex::new(&[5, 0]);
        assert!(matches!(
            negotiate(&mut d),
            Err(SocksError::NoAcceptableMethod)
        ));
        assert_eq!(d.output, vec![5, 0xFF]);
    }

    #[test]
    fn wrong_versions() {
        // SOCKS4 gets a SOCKS4 rejection
        let mut d = Duplex::new(&[4, 1, 0, 80, 198, 18, 1, 1, 0]);
        assert!(matches!(negotiate(&mut d), Err(SocksError::BadVersion(4))));
        assert_eq!(d.output, vec![0, 0x5B, 0, 0, 0, 0, 0, 0]);
        // HTTP or garbage: closed without a reply
        let mut d = Duplex::new(b"GET / HTTP/1.1\r\n");
        assert!(matches!(
            negotiate(&mut d),
            Err(SocksError::BadVersion(b'G'))
        ));
        assert!(d.output.is_empty());
        // a request with version 4 after a v5 greeting: general failure
        refused_with(&with_greeting(&[4, 1, 0, 1, 1, 2, 3, 4, 0, 80]), 0x01);
    }

    #[test]
    fn unsupported_commands_and_address_types() {
        refused_with(&with_greeting(&[5, 2, 0, 1, 1, 2, 3, 4, 0, 80]), 0x07); // BIND
        refused_with(&with_greeting(&[5, 3, 0, 1, 1, 2, 3, 4, 0, 80]), 0x07); // UDP ASSOCIATE
        refused_with(&with_greeting(&[5, 9, 0, 1, 1, 2, 3, 4, 0, 80]), 0x07);
        refused_with(&with_greeting(&[5, 1, 0, 2, 1, 2, 3, 4, 0, 80]), 0x08);
        refused_with(&with_greeting(&[5, 1, 0, 0xFF]), 0x08);
    }

    #[test]
    fn malformed_names_and_port_zero() {
        refused_with(&with_greeting(&[5, 1, 0, 3, 0, 0, 80]), 0x01); // empty name
        let mut req = vec![5, 1, 0, 3, 5];
        req.extend_from_slice(b"a b.c");
        req.extend_from_slice(&[0, 80]);
        refused_with(&with_greeting(&req), 0x01); // space
        let mut req = vec![5, 1, 0, 3, 3];
        req.extend_from_slice(&[0xC3, 0xA9, 0]);
        req.extend_from_slice(&[0, 80]);
        refused_with(&with_greeting(&req), 0x01); // non-ASCII and NUL
        refused_with(&with_greeting(&[5, 1, 0, 1, 1, 2, 3, 4, 0, 0]), 0x01); // port 0
        let mut req = vec![5, 1, 0, 3, 3];
        req.extend_from_slice(b"a.b");
        req.extend_from_slice(&[0, 0]);
        refused_with(&with_greeting(&req), 0x01); // name with port 0
    }

    #[test]
    fn truncated_input_is_an_io_error_without_reply() {
        let full = with_greeting(&[5, 1, 0, 3, 11]);
        let mut full = full;
        full.extend_from_slice(b"example.com");
        full.extend_from_slice(&[0, 80]);
        // every strict prefix: an I/O error (unexpected EOF), never a panic, and no reply
        // beyond the method selection once the greeting is complete
        for cut in 0..full.len() {
            let (r, out, _) = run(&full[..cut]);
            assert!(matches!(r, Err(SocksError::Io(_))), "cut {cut}: {r:?}");
            if cut < GREETING.len() {
                assert!(out.is_empty());
            } else {
                assert_eq!(out, vec![5, 0]);
            }
        }
        // truncated IPv4 and IPv6 requests
        for req in [&[5u8, 1, 0, 1, 1, 2][..], &[5, 1, 0, 4, 0, 0, 0, 0, 0]] {
            let (r, _, _) = run(&with_greeting(req));
            assert!(matches!(r, Err(SocksError::Io(_))));
        }
        // a greeting announcing more methods than sent
        let (r, out, _) = run(&[5, 3, 0]);
        assert!(matches!(r, Err(SocksError::Io(_))));
        assert!(out.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = crate::io::SplitMix64::new(11);
        for _ in 0..20_000 {
            let len = (rng.next_u64() % 40) as usize;
            let mut v: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            // bias towards getting past the greeting
            if rng.next_u64() % 2 == 0 {
                v.splice(0..0, [5, 1, 0, 5].iter().copied());
            }
            let _ = run(&v);
        }
    }

    #[test]
    fn replies_encode_bound_address() {
        let mut v = Vec::new();
        write_reply(
            &mut v,
            Reply::Succeeded,
            Some("198.18.1.2:40000".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(v, vec![5, 0, 0, 1, 198, 18, 1, 2, 0x9c, 0x40]);
        let mut v = Vec::new();
        write_reply(
            &mut v,
            Reply::ConnectionRefused,
            Some("[2001:2::2]:1".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(v.len(), 22);
        assert_eq!(&v[..4], &[5, 5, 0, 4]);
        assert_eq!(&v[20..], &[0, 1]);
    }

    #[test]
    fn connect_errors_map_to_replies() {
        use io::ErrorKind as K;
        for (kind, code) in [
            (K::ConnectionRefused, 0x05),
            (K::TimedOut, 0x06),
            (K::ConnectionReset, 0x01),
            (K::AddrNotAvailable, 0x01),
            (K::Other, 0x01),
        ] {
            assert_eq!(
                Reply::for_connect_error(&io::Error::from(kind)).code(),
                code,
                "{kind:?}"
            );
        }
    }
}
