//! Buffers for the data path: range sets, send and receive rings, a packet buffer pool.

pub mod pool;
pub mod rangeset;
pub mod ring;

pub use pool::{PacketBuf, PacketPool};
pub use rangeset::RangeSet;
pub use ring::{RecvBuffer, SendBuffer};
