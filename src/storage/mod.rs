//! Buffers for the data path: range sets and send / receive rings.

pub mod rangeset;
pub mod ring;

pub use rangeset::RangeSet;
pub use ring::{RecvBuffer, SendBuffer};
