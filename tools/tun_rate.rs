//! The raw per-packet write rate of a TUN device: how fast this host's kernel takes packets
//! written one `write()` each (no offload, no batching) into a TUN device. It is the bound
//! issue 9 compares mptun's no-offload throughput with (`tools/throughput.sh` runs it in
//! the same namespace set-up and prints the ratio).
//!
//! `tun-rate --tun NAME --src ADDR --dst ADDR [--size BYTES] [--seconds S]`, inside a network
//! namespace that has the TUN device NAME up with address DST (root, or CAP_NET_ADMIN):
//! writes IPv4/UDP packets of BYTES bytes (default 1500) from SRC to DST port 9 for S
//! seconds (default 3), a UDP socket bound to DST:9 taking them (it is never read: the
//! kernel's full receive path runs, then the socket's buffer drops them), and prints
//! `packets=N seconds=S pps=P mbit=M` (M counts whole IP packets). With `--drain` a second
//! thread reads the socket, so every packet is delivered to an application (the socket
//! queue, the wakeup and the copy out count too), and `delivered=D` says how many were.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn usage() -> ! {
    eprintln!(
        "usage: tun-rate --tun NAME --src ADDR --dst ADDR [--size BYTES] [--seconds S] [--drain]\n\
         (inside a namespace where NAME is up and owns DST; see tools/throughput.sh)"
    );
    std::process::exit(2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut tun, mut src, mut dst, mut size, mut secs) = (None, None, None, 1500usize, 3u64);
    let mut drain = false;
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--tun" => tun = Some(val()),
            "--src" => src = val().parse::<IpAddr>().ok(),
            "--dst" => dst = val().parse::<IpAddr>().ok(),
            "--size" => size = val().parse().unwrap_or_else(|_| usage()),
            "--seconds" => secs = val().parse().unwrap_or_else(|_| usage()),
            "--drain" => drain = true,
            "-h" | "--help" => {
                println!(
                    "tun-rate --tun NAME --src ADDR --dst ADDR [--size BYTES] [--seconds S] [--drain]"
                );
                println!(
                    "Writes IPv4/UDP packets one write() each into TUN device NAME for S seconds"
                );
                println!("and prints the rate (run inside the namespace that owns NAME; as root).");
                return;
            }
            _ => usage(),
        }
    }
    let (Some(tun), Some(IpAddr::V4(src)), Some(IpAddr::V4(dst))) = (tun, src, dst) else {
        usage()
    };
    if !(28..=65535).contains(&size) {
        eprintln!("tun-rate: --size must be 28..=65535");
        std::process::exit(2);
    }
    let dev = match mptun::io::tun::Tun::open_existing_with(&tun, false) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tun-rate: open {tun}: {e}");
            std::process::exit(1);
        }
    };
    let sink = match UdpSocket::bind(SocketAddr::new(IpAddr::V4(dst), 9)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tun-rate: bind {dst}:9: {e}");
            std::process::exit(1);
        }
    };
    let delivered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    if drain {
        let d = delivered.clone();
        if let Err(e) = sink.set_read_timeout(Some(Duration::from_millis(100))) {
            eprintln!("tun-rate: {e}");
            std::process::exit(1);
        }
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            loop {
                if sink.recv(&mut buf).is_ok() {
                    d.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    } else {
        // kept open (never read) until the end
        std::mem::forget(sink);
    }
    // one IPv4/UDP packet, written once: IP header with its checksum, UDP without (0)
    let mut pkt = vec![0u8; size];
    if let Err(e) = mptun::wire::ip::emit(&mut pkt, src.into(), dst.into(), 17, size - 20, 0, 64) {
        eprintln!("tun-rate: building the packet: {e:?}");
        std::process::exit(1);
    }
    let udp_len = (size - 20) as u16;
    pkt[20..22].copy_from_slice(&1000u16.to_be_bytes());
    pkt[22..24].copy_from_slice(&9u16.to_be_bytes());
    pkt[24..26].copy_from_slice(&udp_len.to_be_bytes());
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let mut packets = 0u64;
    let mut errors = 0u64;
    while Instant::now() < end {
        for _ in 0..64 {
            match dev.send(&pkt) {
                Ok(_) => packets += 1,
                Err(_) => errors += 1,
            }
        }
    }
    let s = start.elapsed().as_secs_f64();
    let delivered = delivered.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "packets={packets} errors={errors} seconds={s:.2} pps={:.0} mbit={:.0}{}",
        packets as f64 / s,
        packets as f64 * size as f64 * 8.0 / s / 1e6,
        if drain {
            format!(" delivered={delivered}")
        } else {
            String::new()
        }
    );
}
