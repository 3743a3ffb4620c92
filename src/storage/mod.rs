//! Buffers for the data path: range sets, send and receive rings, a packet buffer pool.

pub mod rangeset;

pub use rangeset::RangeSet;
