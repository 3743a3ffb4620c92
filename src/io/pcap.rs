//! Packet capture of raw IP packets (LINKTYPE_RAW = 101), readable by Wireshark/tcpdump.
//!
//! Timestamps are [`crate::time::Instant`]s (microseconds since the driver's epoch) plus an
//! optional base, so simulated captures start at 1970-01-01 and real ones can be shifted to
//! wall-clock time with [`PcapWriter::set_time_base`].

use crate::time::Instant;
use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

/// Largest packet stored whole (tcpdump's default); longer ones are truncated (their
/// original length is kept). Covers 64 KiB GSO/GRO super-packets.
pub const SNAPLEN: u32 = 262_144;

fn to_io(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, format!("pcap: {other}")),
    }
}

/// Writes raw IP packets to a pcap stream.
///
/// The file header is produced by `pcap-file`; the 16-byte record headers are written here
/// directly (native byte order, as the header declares) because `pcap-file`'s writer gives
/// no access to the inner writer for flushing.
pub struct PcapWriter<W: Write = BufWriter<File>> {
    inner: W,
    base: Duration,
    written: u64,
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (truncates) the file at `path` and writes the pcap header.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let f = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("pcap {}: {e}", path.display())))?;
        Self::new(BufWriter::new(f))
    }
}

impl<W: Write> PcapWriter<W> {
    /// Writes the pcap header (LINKTYPE_RAW, microsecond timestamps) to `w`.
    pub fn new(mut w: W) -> io::Result<Self> {
        let header = PcapHeader {
            datalink: DataLink::RAW,
            snaplen: SNAPLEN,
            ts_resolution: TsResolution::MicroSecond,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        header.write_to(&mut w).map_err(to_io)?;
        Ok(PcapWriter {
            inner: w,
            base: Duration::ZERO,
            written: 0,
        })
    }

    /// Adds `base` to every timestamp (e.g. the wall-clock time of the driver's epoch).
    pub fn set_time_base(&mut self, base: Duration) {
        self.base = base;
    }

    /// Records one IP packet seen at `time`.
    pub fn write(&mut self, time: Instant, packet: &[u8]) -> io::Result<()> {
        let orig_len = u32::try_from(packet.len()).unwrap_or(u32::MAX);
        let incl = packet.len().min(SNAPLEN as usize);
        let data = packet.get(..incl).unwrap_or(packet);
        let ts = self.base + Duration::from_micros(time.total_micros());
        let secs = u32::try_from(ts.as_secs()).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "pcap: timestamp beyond 2106")
        })?;
        let mut rec = [0u8; 16];
        let fields = [secs, ts.subsec_micros(), incl as u32, orig_len];
        for (chunk, v) in rec.chunks_exact_mut(4).zip(fields) {
            chunk.copy_from_slice(&v.to_ne_bytes());
        }
        self.inner.write_all(&rec)?;
        self.inner.write_all(data)?;
        self.written += 1;
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.written
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }

    /// The underlying writer (flush it if buffered).
    pub fn into_inner(self) -> W {
        self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;

    #[test]
    fn write_and_read_back() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let p1: Vec<u8> = (0..60u8).collect();
        let p2 = vec![0x45u8; 70_000];
        w.write(Instant::from_micros(1_500_001), &p1).unwrap();
        w.write(Instant::from_millis(2), &p2).unwrap();
        assert_eq!(w.packets(), 2);
        let bytes = w.into_inner();
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(r.header().datalink, DataLink::RAW);
        let a = r.next_packet().unwrap().unwrap();
        assert_eq!(a.timestamp, Duration::from_micros(1_500_001));
        assert_eq!(&a.data[..], &p1[..]);
        assert_eq!(a.orig_len, 60);
        let b = r.next_packet().unwrap().unwrap();
        assert_eq!(b.timestamp, Duration::from_millis(2));
        assert_eq!(&b.data[..], &p2[..]);
        assert_eq!(b.orig_len, 70_000);
        assert!(r.next_packet().is_none());
    }

    #[test]
    fn file_round_trip() {
        let path = std::env::temp_dir().join(format!("mptun-pcap-{}.pcap", std::process::id()));
        {
            let mut w = PcapWriter::create(&path).unwrap();
            w.set_time_base(Duration::from_secs(10));
            w.write(Instant::from_millis(5), &[0x45, 0, 0, 20]).unwrap();
            w.flush().unwrap();
        }
        let f = File::open(&path).unwrap();
        let mut r = PcapReader::new(f).unwrap();
        let a = r.next_packet().unwrap().unwrap();
        assert_eq!(a.timestamp, Duration::from_millis(10_005));
        assert_eq!(&a.data[..], &[0x45, 0, 0, 20]);
        let _ = std::fs::remove_file(&path);
    }
}
