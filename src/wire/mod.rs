//! Wire formats: zero-copy views over byte buffers plus small owned representations.
//!
//! Contract: every parser takes `&[u8]` of any length and content and returns a typed
//! `WireError` instead of panicking; every `emit` writes into a caller-provided buffer and
//! returns `WireError::BufferTooSmall` rather than panicking when it does not fit.

pub mod checksum;
pub mod icmp;
pub mod ip;
pub mod mptcp;
pub mod tcp;
pub mod tcp_opt;

use core::fmt;

/// Why a buffer could not be parsed or emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// The buffer ends before the header or option does.
    Truncated,
    /// A length field is impossible (shorter than the fixed part, longer than the buffer,
    /// or not one of the lengths the format allows).
    BadLength,
    /// The IP version nibble is not 4 or 6, or an MPTCP version we do not speak.
    BadVersion,
    /// An MPTCP option subtype we do not know.
    UnknownSubtype(u8),
    /// A header checksum does not verify.
    BadChecksum,
    /// A field holds a value the format forbids (e.g. an IPv4 IHL below 5).
    Malformed,
    /// The output buffer is too small for what is being emitted.
    BufferTooSmall,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated => write!(f, "truncated"),
            WireError::BadLength => write!(f, "impossible length"),
            WireError::BadVersion => write!(f, "unsupported version"),
            WireError::UnknownSubtype(s) => write!(f, "unknown MPTCP subtype {s}"),
            WireError::BadChecksum => write!(f, "bad checksum"),
            WireError::Malformed => write!(f, "malformed field"),
            WireError::BufferTooSmall => write!(f, "output buffer too small"),
        }
    }
}

impl std::error::Error for WireError {}

/// Result alias for the wire layer.
pub type Result<T> = core::result::Result<T, WireError>;
