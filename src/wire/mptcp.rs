//! MPTCP v1 (RFC 8684) TCP option, kind 30: every subtype, parse and emit.
//!
//! `MptcpOption::parse` takes the *whole* TCP option (kind byte, length byte, payload).
//! `MptcpOption::emit` writes the whole option (kind and length included) and returns its length.
//!
//! No-panic contract: `parse` accepts any slice and returns `BadLength` (kind is not 30, the
//! length byte is not the slice length, or the length does not match the subtype and flags),
//! `UnknownSubtype`, or an option; reserved bits are ignored. `emit` returns
//! `BufferTooSmall` when `buf` is shorter than `len()`, and `Malformed`/`BadLength` for a
//! representation that has no wire form (e.g. a 32-bit DSN above `u32::MAX`, an ADD_ADDR
//! whose `hmac` presence disagrees with `echo`); it never panics. For every option `parse`
//! returns, `emit` succeeds and parsing the result gives the same option back.

use super::{Result, WireError};
use core::net::IpAddr;

/// TCP option kind of MPTCP.
pub const KIND_MPTCP: u8 = 30;

/// MPTCP option subtypes (RFC 8684 section 7.2 / IANA).
pub mod subtype {
    pub const MP_CAPABLE: u8 = 0x0;
    pub const MP_JOIN: u8 = 0x1;
    pub const DSS: u8 = 0x2;
    pub const ADD_ADDR: u8 = 0x3;
    pub const REMOVE_ADDR: u8 = 0x4;
    pub const MP_PRIO: u8 = 0x5;
    pub const MP_FAIL: u8 = 0x6;
    pub const MP_FASTCLOSE: u8 = 0x7;
    pub const MP_TCPRST: u8 = 0x8;
}

/// MP_CAPABLE flag bits (the byte after subtype/version).
pub mod cap_flags {
    /// A: checksum required.
    pub const A: u8 = 0x80;
    /// B: extensibility (must be 0 in v1).
    pub const B: u8 = 0x40;
    /// C: do not attempt to establish new subflows to the source address of this SYN.
    pub const C: u8 = 0x20;
    /// H: HMAC-SHA256 (must be set in v1).
    pub const H: u8 = 0x01;
}

/// MP_CAPABLE in its four forms (RFC 8684 section 3.1):
/// SYN (len 4, no key), SYN/ACK (len 12, sender key), third ACK (len 20, both keys),
/// first data packet (len 22 or 24: both keys, data-level length, optional checksum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MpCapable {
    /// MPTCP version (1).
    pub version: u8,
    /// Flag byte A..H (see `cap_flags`).
    pub flags: u8,
    /// Option sender's key (SYN/ACK, ACK, data forms).
    pub sender_key: Option<u64>,
    /// Option receiver's key (ACK and data forms; requires `sender_key`).
    pub receiver_key: Option<u64>,
    /// Data-level length (data form only; requires both keys).
    pub data_len: Option<u16>,
    /// DSS checksum (data form with checksum only; requires `data_len`).
    pub checksum: Option<u16>,
}

/// MP_JOIN in its three forms (RFC 8684 section 3.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MpJoin {
    /// SYN, len 12.
    Syn {
        backup: bool,
        addr_id: u8,
        token: u32,
        nonce: u32,
    },
    /// SYN/ACK, len 16: truncated (leftmost 64 bits) HMAC.
    SynAck {
        backup: bool,
        addr_id: u8,
        hmac: u64,
        nonce: u32,
    },
    /// Third ACK, len 24: leftmost 160 bits of the HMAC.
    Ack { hmac: [u8; 20] },
}

/// DSS mapping (RFC 8684 section 3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DssMapping {
    /// Data sequence number (a 32-bit DSN on the wire is stored zero-extended).
    pub dsn: u64,
    /// Whether the DSN is 8 octets on the wire (flag `m`).
    pub dsn64: bool,
    /// Subflow sequence number, relative to the subflow's initial sequence number.
    pub ssn: u32,
    /// Data-level length.
    pub data_len: u16,
    /// DSS checksum, if checksums are in use on this connection.
    pub checksum: Option<u16>,
}

/// Data ACK of a DSS option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataAck {
    /// The acknowledged DSN (a 32-bit value on the wire is stored zero-extended).
    pub ack: u64,
    /// Whether it is 8 octets on the wire (flag `a`).
    pub ack64: bool,
}

/// DSS flag bits.
pub mod dss_flags {
    pub const DATA_ACK: u8 = 0x01; // A
    pub const DATA_ACK_64: u8 = 0x02; // a
    pub const MAPPING: u8 = 0x04; // M
    pub const DSN_64: u8 = 0x08; // m
    pub const DATA_FIN: u8 = 0x10; // F
}

/// Data Sequence Signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Dss {
    pub data_ack: Option<DataAck>,
    pub mapping: Option<DssMapping>,
    /// F flag: the mapping's last octet is the DATA_FIN.
    pub data_fin: bool,
}

/// ADD_ADDR (RFC 8684 section 3.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddAddr {
    /// E flag: this is an echo (carries no HMAC).
    pub echo: bool,
    pub addr_id: u8,
    pub addr: IpAddr,
    pub port: Option<u16>,
    /// Rightmost 64 bits of the HMAC; `None` exactly when `echo`.
    pub hmac: Option<u64>,
}

/// MP_TCPRST flag bits.
pub mod rst_flags {
    /// T: the error is transient.
    pub const T: u8 = 0x01;
}

/// MP_TCPRST reason codes (RFC 8684 section 3.6).
pub mod rst_reason {
    pub const UNSPECIFIED: u8 = 0x00;
    pub const MPTCP_SPECIFIC: u8 = 0x01;
    pub const LACK_OF_RESOURCES: u8 = 0x02;
    pub const ADMIN_PROHIBITED: u8 = 0x03;
    pub const TOO_MUCH_OUTSTANDING: u8 = 0x04;
    pub const UNACCEPTABLE_PERFORMANCE: u8 = 0x05;
    pub const MIDDLEBOX_INTERFERENCE: u8 = 0x06;
}

/// One MPTCP option. Borrowing only for REMOVE_ADDR's id list (zero-copy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MptcpOption<'a> {
    MpCapable(MpCapable),
    MpJoin(MpJoin),
    Dss(Dss),
    AddAddr(AddAddr),
    /// REMOVE_ADDR: the list of address ids (at least one).
    RemoveAddr {
        ids: &'a [u8],
    },
    /// MP_PRIO: B flag. RFC 8684 v1 has no address id (length 3); a length-4 option from
    /// RFC 6824 carries one, kept in `addr_id`.
    MpPrio {
        backup: bool,
        addr_id: Option<u8>,
    },
    MpFail {
        dsn: u64,
    },
    /// MP_FASTCLOSE: the option receiver's key.
    MpFastclose {
        key: u64,
    },
    MpTcpRst {
        flags: u8,
        reason: u8,
    },
}

fn be_u16(b: &[u8], at: usize) -> Result<u16> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Ok(u16::from_be_bytes([x, y])),
        _ => Err(WireError::Truncated),
    }
}

fn be_u32(b: &[u8], at: usize) -> Result<u32> {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => Ok(u32::from_be_bytes([a, c, d, e])),
        _ => Err(WireError::Truncated),
    }
}

fn be_u64(b: &[u8], at: usize) -> Result<u64> {
    let s = b.get(at..at + 8).ok_or(WireError::Truncated)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(u64::from_be_bytes(a))
}

/// Sequential writer over an output slice whose length was checked up front.
struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let end = self.at + bytes.len();
        self.buf
            .get_mut(self.at..end)
            .ok_or(WireError::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }
}

/// ADD_ADDR option length for (IPv6, port, HMAC).
fn add_addr_len(v6: bool, port: bool, hmac: bool) -> usize {
    4 + if v6 { 16 } else { 4 } + if port { 2 } else { 0 } + if hmac { 8 } else { 0 }
}

impl Dss {
    /// The DSS flag byte this representation puts on the wire.
    pub fn flags(&self) -> u8 {
        let mut f = 0;
        if let Some(a) = self.data_ack {
            f |= dss_flags::DATA_ACK;
            if a.ack64 {
                f |= dss_flags::DATA_ACK_64;
            }
        }
        if let Some(m) = self.mapping {
            f |= dss_flags::MAPPING;
            if m.dsn64 {
                f |= dss_flags::DSN_64;
            }
        }
        if self.data_fin {
            f |= dss_flags::DATA_FIN;
        }
        f
    }

    fn wire_len(&self) -> usize {
        let ack = match self.data_ack {
            Some(DataAck { ack64: true, .. }) => 8,
            Some(_) => 4,
            None => 0,
        };
        let map = match self.mapping {
            Some(m) => {
                (if m.dsn64 { 8 } else { 4 }) + 4 + 2 + if m.checksum.is_some() { 2 } else { 0 }
            }
            None => 0,
        };
        4 + ack + map
    }

    fn parse(opt: &[u8]) -> Result<Self> {
        let f = *opt.get(3).ok_or(WireError::BadLength)?;
        let mut at = 4;
        let data_ack = if f & dss_flags::DATA_ACK != 0 {
            let ack64 = f & dss_flags::DATA_ACK_64 != 0;
            let ack = if ack64 {
                be_u64(opt, at).map_err(|_| WireError::BadLength)?
            } else {
                u64::from(be_u32(opt, at).map_err(|_| WireError::BadLength)?)
            };
            at += if ack64 { 8 } else { 4 };
            Some(DataAck { ack, ack64 })
        } else {
            None
        };
        let mapping = if f & dss_flags::MAPPING != 0 {
            let dsn64 = f & dss_flags::DSN_64 != 0;
            let fixed = if dsn64 { 8 } else { 4 } + 6;
            let checksum_present = if opt.len() == at + fixed {
                false
            } else if opt.len() == at + fixed + 2 {
                true
            } else {
                return Err(WireError::BadLength);
            };
            let dsn = if dsn64 {
                be_u64(opt, at)?
            } else {
                u64::from(be_u32(opt, at)?)
            };
            at += if dsn64 { 8 } else { 4 };
            let ssn = be_u32(opt, at)?;
            let data_len = be_u16(opt, at + 4)?;
            let checksum = if checksum_present {
                Some(be_u16(opt, at + 6)?)
            } else {
                None
            };
            Some(DssMapping {
                dsn,
                dsn64,
                ssn,
                data_len,
                checksum,
            })
        } else {
            if opt.len() != at {
                return Err(WireError::BadLength);
            }
            None
        };
        Ok(Dss {
            data_ack,
            mapping,
            data_fin: f & dss_flags::DATA_FIN != 0,
        })
    }
}

impl<'a> MptcpOption<'a> {
    /// The subtype nibble of this option.
    pub fn subtype(&self) -> u8 {
        match self {
            MptcpOption::MpCapable(_) => subtype::MP_CAPABLE,
            MptcpOption::MpJoin(_) => subtype::MP_JOIN,
            MptcpOption::Dss(_) => subtype::DSS,
            MptcpOption::AddAddr(_) => subtype::ADD_ADDR,
            MptcpOption::RemoveAddr { .. } => subtype::REMOVE_ADDR,
            MptcpOption::MpPrio { .. } => subtype::MP_PRIO,
            MptcpOption::MpFail { .. } => subtype::MP_FAIL,
            MptcpOption::MpFastclose { .. } => subtype::MP_FASTCLOSE,
            MptcpOption::MpTcpRst { .. } => subtype::MP_TCPRST,
        }
    }

    /// Wire length of the option (kind and length bytes included).
    pub fn len(&self) -> usize {
        match self {
            MptcpOption::MpCapable(c) => {
                4 + if c.sender_key.is_some() { 8 } else { 0 }
                    + if c.receiver_key.is_some() { 8 } else { 0 }
                    + if c.data_len.is_some() { 2 } else { 0 }
                    + if c.checksum.is_some() { 2 } else { 0 }
            }
            MptcpOption::MpJoin(MpJoin::Syn { .. }) => 12,
            MptcpOption::MpJoin(MpJoin::SynAck { .. }) => 16,
            MptcpOption::MpJoin(MpJoin::Ack { .. }) => 24,
            MptcpOption::Dss(d) => d.wire_len(),
            MptcpOption::AddAddr(a) => {
                add_addr_len(a.addr.is_ipv6(), a.port.is_some(), a.hmac.is_some())
            }
            MptcpOption::RemoveAddr { ids } => 3 + ids.len(),
            MptcpOption::MpPrio { addr_id, .. } => 3 + usize::from(addr_id.is_some()),
            MptcpOption::MpFail { .. } | MptcpOption::MpFastclose { .. } => 12,
            MptcpOption::MpTcpRst { .. } => 4,
        }
    }

    /// Always false: an option has at least kind, length and subtype.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Parses one whole MPTCP option (kind 30, length byte equal to `opt.len()`).
    pub fn parse(opt: &'a [u8]) -> Result<Self> {
        let (&k, &len) = match opt {
            [k, l, ..] => (k, l),
            _ => return Err(WireError::Truncated),
        };
        if k != KIND_MPTCP || usize::from(len) != opt.len() {
            return Err(WireError::BadLength);
        }
        let b2 = *opt.get(2).ok_or(WireError::BadLength)?;
        let n = opt.len();
        match b2 >> 4 {
            subtype::MP_CAPABLE => {
                if !matches!(n, 4 | 12 | 20 | 22 | 24) {
                    return Err(WireError::BadLength);
                }
                let flags = *opt.get(3).ok_or(WireError::BadLength)?;
                let key = |at: usize| {
                    if n >= at + 8 {
                        be_u64(opt, at).ok()
                    } else {
                        None
                    }
                };
                Ok(MptcpOption::MpCapable(MpCapable {
                    version: b2 & 0x0f,
                    flags,
                    sender_key: key(4),
                    receiver_key: key(12),
                    data_len: if n >= 22 { be_u16(opt, 20).ok() } else { None },
                    checksum: if n == 24 { be_u16(opt, 22).ok() } else { None },
                }))
            }
            subtype::MP_JOIN => {
                let backup = b2 & 0x01 != 0;
                // Indexing below: `n` is 12, 16 or 24 in the arms that index.
                match n {
                    12 => Ok(MptcpOption::MpJoin(MpJoin::Syn {
                        backup,
                        addr_id: opt[3],
                        token: be_u32(opt, 4)?,
                        nonce: be_u32(opt, 8)?,
                    })),
                    16 => Ok(MptcpOption::MpJoin(MpJoin::SynAck {
                        backup,
                        addr_id: opt[3],
                        hmac: be_u64(opt, 4)?,
                        nonce: be_u32(opt, 12)?,
                    })),
                    24 => {
                        let mut hmac = [0u8; 20];
                        hmac.copy_from_slice(opt.get(4..24).ok_or(WireError::BadLength)?);
                        Ok(MptcpOption::MpJoin(MpJoin::Ack { hmac }))
                    }
                    _ => Err(WireError::BadLength),
                }
            }
            subtype::DSS => Dss::parse(opt).map(MptcpOption::Dss),
            subtype::ADD_ADDR => {
                let echo = b2 & 0x01 != 0;
                let (v6, port, hmac) = match n {
                    8 => (false, false, false),
                    10 => (false, true, false),
                    16 => (false, false, true),
                    18 => (false, true, true),
                    20 => (true, false, false),
                    22 => (true, true, false),
                    28 => (true, false, true),
                    30 => (true, true, true),
                    _ => return Err(WireError::BadLength),
                };
                // An echo carries no HMAC, a non-echo always does.
                if hmac == echo {
                    return Err(WireError::BadLength);
                }
                let addr_id = opt[3]; // n >= 8 (table above)
                let (addr, mut at) = if v6 {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(opt.get(4..20).ok_or(WireError::BadLength)?);
                    (IpAddr::V6(a.into()), 20)
                } else {
                    let ip = be_u32(opt, 4)?;
                    (IpAddr::V4(ip.into()), 8)
                };
                let port = if port {
                    at += 2;
                    Some(be_u16(opt, at - 2)?)
                } else {
                    None
                };
                let hmac = if hmac { Some(be_u64(opt, at)?) } else { None };
                Ok(MptcpOption::AddAddr(AddAddr {
                    echo,
                    addr_id,
                    addr,
                    port,
                    hmac,
                }))
            }
            subtype::REMOVE_ADDR => match opt.get(3..) {
                Some(ids) if !ids.is_empty() => Ok(MptcpOption::RemoveAddr { ids }),
                _ => Err(WireError::BadLength),
            },
            subtype::MP_PRIO => match n {
                3 | 4 => Ok(MptcpOption::MpPrio {
                    backup: b2 & 0x01 != 0,
                    addr_id: opt.get(3).copied(),
                }),
                _ => Err(WireError::BadLength),
            },
            subtype::MP_FAIL if n == 12 => Ok(MptcpOption::MpFail {
                dsn: be_u64(opt, 4)?,
            }),
            subtype::MP_FASTCLOSE if n == 12 => Ok(MptcpOption::MpFastclose {
                key: be_u64(opt, 4)?,
            }),
            subtype::MP_TCPRST if n == 4 => Ok(MptcpOption::MpTcpRst {
                flags: b2 & 0x0f,
                reason: opt[3], // n == 4
            }),
            subtype::MP_FAIL | subtype::MP_FASTCLOSE | subtype::MP_TCPRST => {
                Err(WireError::BadLength)
            }
            other => Err(WireError::UnknownSubtype(other)),
        }
    }

    /// Writes the whole option into `buf`; returns its length (`self.len()`).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.len();
        if n > 255 {
            return Err(WireError::BadLength);
        }
        if buf.len() < n {
            return Err(WireError::BufferTooSmall);
        }
        let mut w = Writer { buf, at: 0 };
        let st = self.subtype() << 4;
        w.put(&[KIND_MPTCP, n as u8])?;
        match *self {
            MptcpOption::MpCapable(c) => {
                let chain_ok = (c.receiver_key.is_none() || c.sender_key.is_some())
                    && (c.data_len.is_none() || c.receiver_key.is_some())
                    && (c.checksum.is_none() || c.data_len.is_some());
                if c.version > 0x0f || !chain_ok {
                    return Err(WireError::Malformed);
                }
                w.put(&[st | c.version, c.flags])?;
                for k in [c.sender_key, c.receiver_key].into_iter().flatten() {
                    w.put(&k.to_be_bytes())?;
                }
                for v in [c.data_len, c.checksum].into_iter().flatten() {
                    w.put(&v.to_be_bytes())?;
                }
            }
            MptcpOption::MpJoin(MpJoin::Syn {
                backup,
                addr_id,
                token,
                nonce,
            }) => {
                w.put(&[st | u8::from(backup), addr_id])?;
                w.put(&token.to_be_bytes())?;
                w.put(&nonce.to_be_bytes())?;
            }
            MptcpOption::MpJoin(MpJoin::SynAck {
                backup,
                addr_id,
                hmac,
                nonce,
            }) => {
                w.put(&[st | u8::from(backup), addr_id])?;
                w.put(&hmac.to_be_bytes())?;
                w.put(&nonce.to_be_bytes())?;
            }
            MptcpOption::MpJoin(MpJoin::Ack { hmac }) => {
                w.put(&[st, 0])?;
                w.put(&hmac)?;
            }
            MptcpOption::Dss(d) => {
                w.put(&[st, d.flags()])?;
                if let Some(a) = d.data_ack {
                    if a.ack64 {
                        w.put(&a.ack.to_be_bytes())?;
                    } else {
                        let v = u32::try_from(a.ack).map_err(|_| WireError::Malformed)?;
                        w.put(&v.to_be_bytes())?;
                    }
                }
                if let Some(m) = d.mapping {
                    if m.dsn64 {
                        w.put(&m.dsn.to_be_bytes())?;
                    } else {
                        let v = u32::try_from(m.dsn).map_err(|_| WireError::Malformed)?;
                        w.put(&v.to_be_bytes())?;
                    }
                    w.put(&m.ssn.to_be_bytes())?;
                    w.put(&m.data_len.to_be_bytes())?;
                    if let Some(c) = m.checksum {
                        w.put(&c.to_be_bytes())?;
                    }
                }
            }
            MptcpOption::AddAddr(a) => {
                if a.echo == a.hmac.is_some() {
                    return Err(WireError::Malformed);
                }
                w.put(&[st | u8::from(a.echo), a.addr_id])?;
                match a.addr {
                    IpAddr::V4(v4) => w.put(&v4.octets())?,
                    IpAddr::V6(v6) => w.put(&v6.octets())?,
                }
                if let Some(p) = a.port {
                    w.put(&p.to_be_bytes())?;
                }
                if let Some(h) = a.hmac {
                    w.put(&h.to_be_bytes())?;
                }
            }
            MptcpOption::RemoveAddr { ids } => {
                if ids.is_empty() {
                    return Err(WireError::Malformed);
                }
                w.put(&[st])?;
                w.put(ids)?;
            }
            MptcpOption::MpPrio { backup, addr_id } => {
                w.put(&[st | u8::from(backup)])?;
                if let Some(id) = addr_id {
                    w.put(&[id])?;
                }
            }
            MptcpOption::MpFail { dsn } => {
                w.put(&[st, 0])?;
                w.put(&dsn.to_be_bytes())?;
            }
            MptcpOption::MpFastclose { key } => {
                w.put(&[st, 0])?;
                w.put(&key.to_be_bytes())?;
            }
            MptcpOption::MpTcpRst { flags, reason } => {
                if flags > 0x0f {
                    return Err(WireError::Malformed);
                }
                w.put(&[st | flags, reason])?;
            }
        }
        debug_assert_eq!(w.at, n);
        Ok(n)
    }
}

fn dss_pseudo_sum(dsn: u64, ssn: u32, data_len: u16, checksum: u16) -> u32 {
    let mut h = [0u8; 16];
    h[..8].copy_from_slice(&dsn.to_be_bytes());
    h[8..12].copy_from_slice(&ssn.to_be_bytes());
    h[12..14].copy_from_slice(&data_len.to_be_bytes());
    h[14..].copy_from_slice(&checksum.to_be_bytes());
    super::checksum::sum(&h, 0)
}

/// DSS checksum (RFC 8684 section 3.3.1): the internet checksum over the pseudo-header
/// (64-bit DSN, 32-bit relative subflow sequence number, 16-bit data-level length, 16 zero
/// bits) followed by the mapped payload.
pub fn dss_checksum(dsn: u64, ssn: u32, data_len: u16, payload: &[u8]) -> u16 {
    let s = dss_pseudo_sum(dsn, ssn, data_len, 0);
    super::checksum::fold(super::checksum::sum(payload, s))
}

/// True if `checksum` (as received in a DSS or MP_CAPABLE option) is right for the payload:
/// the sum including the checksum field folds to zero.
pub fn dss_checksum_ok(dsn: u64, ssn: u32, data_len: u16, checksum: u16, payload: &[u8]) -> bool {
    let s = dss_pseudo_sum(dsn, ssn, data_len, checksum);
    super::checksum::fold(super::checksum::sum(payload, s)) == 0
}

/// As [`dss_checksum_ok`] for a payload stored as two pieces (`a` then `b`, e.g. the two
/// halves of a ring buffer); `a` may have an odd length.
pub fn dss_checksum_ok_split(
    dsn: u64,
    ssn: u32,
    data_len: u16,
    checksum: u16,
    a: &[u8],
    b: &[u8],
) -> bool {
    use super::checksum::{fold, sum};
    let s = sum(a, dss_pseudo_sum(dsn, ssn, data_len, checksum));
    let s = match (a.len() % 2, b.split_first()) {
        // `a` ended on the high byte of a 16-bit word: `b`'s first byte is its low byte
        (1, Some((first, rest))) => {
            let t = u64::from(s) + u64::from(*first);
            // end-around carry; cannot carry twice (the low part is then at most 254)
            sum(rest, ((t >> 32) + (t & 0xffff_ffff)) as u32)
        }
        _ => sum(b, s),
    };
    fold(s) == 0
}

#[cfg(test)]
mod tests;
