//! mptun: a userspace Multipath TCP (RFC 8684, MPTCP v1) stack over Linux TUN devices.
//!
//! Layering (dependencies point downwards only; `tests/layering.rs` enforces it):
//!
//! ```text
//! cli, testbed, capi           command line, Linux test bed, C ABI
//!   -> io                      TUN driver, simulated network, relay (drives the stack)
//!   -> api                     MptcpStream / MptcpListener over a shared StackHandle
//!   -> stack, listen, fuzzing  demultiplexing, SYN cookies, fuzz entry points
//!   -> mptcp                   the connection (data level, subflows, options)
//!   -> tcp, cc, sched, pm      subflow engine and the pluggable policies
//!   -> wire, storage, crypto, time
//! ```
//!
//! Only `io`, `capi` and `cli` may use `unsafe` (`#![deny(unsafe_code)]` elsewhere) and
//! `libc`; nothing below `api` reads a clock, sleeps or touches a file descriptor (sans-IO).
//!
//! See `docs/ARCHITECTURE.md` for the module map and the path of a packet.
//!
//! # Using mptun as a library
//!
//! ```toml
//! [dependencies]
//! mptun = { version = "0.1", default-features = false }            # std API only
//! # mptun = { version = "0.1", default-features = false, features = ["tokio"] }
//! ```
//!
//! The default feature `cli` builds the `mptun` binary, the tools, the command-line types
//! and runners (`mptun::cli`: `cli::runner`, `cli::stats`, `cli::proxy`) and the Linux
//! test bed (`mptun::testbed`), and pulls in `clap` and `tracing-subscriber`: a library turns it off. The
//! library itself needs only the stack, [`api`] and [`io`]:
//!
//! ```no_run
//! use mptun::api::MptcpStream;
//! use mptun::io::driver::Runtime;
//! use std::io::Write;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // two existing TUN devices, one address of ours on each (README: "Setting up the TUN devices")
//! let rt = Runtime::builder()
//!     .tun("tun0", "198.18.1.2".parse()?)
//!     .tun("tun1", "198.18.2.2".parse()?)
//!     .scheduler("minrtt")
//!     .congestion("olia")
//!     .start()?; // an unknown policy name is an error, never a silent default
//! let mut s = MptcpStream::connect(rt.handle(), "198.18.1.1:5201".parse()?)?;
//! s.write_all(b"hello")?;
//! s.shutdown(std::net::Shutdown::Write)?;
//! # Ok(()) }
//! ```
//!
//! Features: `cli` (default, above), `env-logger` (part of `cli`: the C ABI's entry points
//! install `env_logger`, which shows the stack's `tracing` events through the `log` crate),
//! `tokio` (`AsyncRead`/`AsyncWrite` for
//! [`MptcpStream`](api::MptcpStream), async connect and accept: `api::tokio`).

#![warn(rustdoc::broken_intra_doc_links, rustdoc::private_intra_doc_links)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api;
#[allow(unsafe_code)] // the C ABI: raw pointers from C callers
pub mod capi;
pub mod cc;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
#[allow(unsafe_code)] // dup(2)/dup2(2) of stdout, SIGTERM handler
pub mod cli;
pub mod crypto;
pub mod fuzzing;
#[allow(unsafe_code)] // TUN ioctls, poll(2), eventfd
pub mod io;
pub mod listen;
pub mod mptcp;
pub mod pm;
pub mod registry;
pub mod sched;
pub mod stack;
pub mod storage;
pub mod tcp;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod testbed;
pub mod time;
pub mod wire;
