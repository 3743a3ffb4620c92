//! mptun as a library, without root or TUN devices: two runtimes in one process, joined by
//! two in-process links (`SeqPacketDevice`, an `AF_UNIX` socket pair each), set up with
//! `Runtime::builder()`. The client's path manager opens a second subflow over the second
//! link; the server echoes one connection taken from `listener.incoming()`.
//!
//! ```text
//! cargo run --example in_process --no-default-features
//! ```

use mptun::api::{MptcpListener, MptcpStream};
use mptun::io::driver::{Runtime, SeqPacketDevice};
use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::{Duration, Instant};

/// `io::Result`: the builder's `BuildError` and the subflow calls' `SubflowApiError` convert
/// into `io::Error` with `?`.
fn main() -> std::io::Result<()> {
    let ip = |s: &str| -> IpAddr { s.parse().expect("address") };
    let (c0, s0) = SeqPacketDevice::pair("c0", "s0")?;
    let (c1, s1) = SeqPacketDevice::pair("c1", "s1")?;
    let server = Runtime::builder()
        .device(s0, ip("198.18.1.1"))
        .device(s1, ip("198.18.2.1"))
        .start()?;
    let client = Runtime::builder()
        .device(c0, ip("198.18.1.2"))
        .device(c1, ip("198.18.2.2"))
        .path_manager("fullmesh")
        .scheduler("roundrobin")
        .congestion("olia")
        .start()?;

    let listener = MptcpListener::bind(server.handle(), 5201)?;
    println!("server listening on {}", listener.local_addr()?);
    let echo = std::thread::spawn(move || -> std::io::Result<u64> {
        let s = listener.incoming().next().expect("never None")?;
        let (mut from, mut to) = (&s, &s);
        let n = std::io::copy(&mut from, &mut to)?; // echo until the client's DATA_FIN
        s.shutdown(Shutdown::Write)?;
        Ok(n)
    });

    let remote = SocketAddr::new(ip("198.18.1.1"), 5201);
    let mut s = MptcpStream::connect(client.handle(), remote)?;
    // give the path manager a moment to join over the second link
    let end = Instant::now() + Duration::from_secs(5);
    while s.subflows()?.iter().filter(|f| f.established).count() < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let data = vec![42u8; 1 << 20];
    s.write_all(&data)?;
    s.shutdown(Shutdown::Write)?;
    let mut back = Vec::new();
    s.read_to_end(&mut back)?;
    let echoed = echo.join().expect("echo thread")?;
    assert_eq!(back, data);
    println!(
        "echoed {echoed} bytes over {} subflows:",
        s.subflows()?.len()
    );
    for f in s.subflows()? {
        let info = s.subflow_info(f.id)?;
        println!(
            "  {} -> {}: {} bytes of data",
            f.local, f.remote, info.data_sent
        );
    }
    Ok(())
}
