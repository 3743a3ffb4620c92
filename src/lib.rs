//! mptun: a userspace Multipath TCP (RFC 8684, MPTCP v1) stack over Linux TUN devices.
//!
//! Layering (dependencies point downwards only):
//!
//! ```text
//! api  ->  stack  ->  mptcp  ->  tcp, cc, sched, pm  ->  wire, storage, crypto, time
//! io (TUN driver, simulated network) drives the sans-IO stack from outside.
//! ```
//!
//! See `docs/ARCHITECTURE.md` for the module map and the path of a packet.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api;
pub mod cc;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
pub mod crypto;
pub mod fuzzing;
pub mod io;
pub mod listen;
pub mod mptcp;
pub mod pm;
pub mod sched;
pub mod stack;
pub mod storage;
pub mod tcp;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod testbed;
pub mod time;
pub mod wire;
