//! MPTCP v1 (RFC 8684) TCP option, kind 30: every subtype, parse and emit.
//!
//! `MptcpOption::parse` takes the *whole* TCP option (kind byte, length byte, payload).
//! `MptcpOption::emit` writes the whole option (kind and length included) and returns its length.

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
