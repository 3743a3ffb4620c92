//! Buffers for the data path: range sets and send / receive rings.

pub mod pool;
pub mod rangeset;
pub mod ring;

pub use pool::{PacketBuf, PacketPool};
pub use rangeset::RangeSet;
pub use ring::{RecvBuffer, SendBuffer};
