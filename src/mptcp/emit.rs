//! Serialising one outgoing segment in place: IP header, TCP header, TCP and MPTCP options,
//! payload (copied once, straight from the send buffer), DSS and TCP checksums.

use super::OptBuf;
use crate::tcp::{SegmentOut, TcpOptions};
use crate::wire::mptcp::{dss_checksum, MptcpOption};
use crate::wire::tcp::{TcpHeader, TcpPacket};
use crate::wire::{ip, tcp_opt, Result, WireError};
use core::net::{IpAddr, SocketAddr};

/// What the device under the caller can do for outgoing packets (see
/// [`Stack::poll_transmit_offload`](crate::stack::Stack::poll_transmit_offload)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxOffload {
    /// Largest TCP payload of one super-segment the device splits (TSO); 0: none.
    pub tso_bytes: u32,
    /// The device completes TCP checksums: packets carry only the pseudo-header sum.
    pub csum_partial: bool,
}

/// A packet written by `poll_transmit_offload` and what the device must do with it, with
/// its addresses, so a driver picks the device without parsing the header again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxPacket {
    /// Source and destination IP addresses of the packet (unspecified: not given, parse
    /// the header).
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Length of the IP packet.
    pub len: usize,
    /// Non-zero: a super-segment to split into segments of this many payload bytes.
    pub gso_size: u16,
    /// The TCP checksum is partial: the device completes it.
    pub csum_partial: bool,
    /// Offset of the TCP header (where checksumming starts); the checksum sits 16 bytes in.
    pub l4_offset: u16,
    /// Length of IP + TCP headers with options.
    pub hdr_len: u16,
    pub ipv6: bool,
}

impl Default for TxPacket {
    fn default() -> Self {
        TxPacket {
            src: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            len: 0,
            gso_size: 0,
            csum_partial: false,
            l4_offset: 0,
            hdr_len: 0,
            ipv6: false,
        }
    }
}

impl TxPacket {
    /// A complete packet that needs nothing from the device.
    pub fn plain(len: usize) -> TxPacket {
        TxPacket {
            len,
            ..TxPacket::default()
        }
    }
    /// The same packet, from `src` to `dst`.
    pub fn from_to(self, src: IpAddr, dst: IpAddr) -> TxPacket {
        TxPacket { src, dst, ..self }
    }
    /// The addresses, if given.
    pub fn addrs(&self) -> Option<(IpAddr, IpAddr)> {
        (!self.src.is_unspecified() && !self.dst.is_unspecified()).then_some((self.src, self.dst))
    }
}

/// Largest TCP option area.
pub const MAX_OPTIONS: usize = 40;

/// TCP protocol number.
pub const IPPROTO_TCP: u8 = 6;

/// Write `seg` from `src` to `dst` into `buf`. `fill` writes the payload bytes into the slice
/// it is given (exactly `seg.payload_len` long). DSS checksums in `opts` are computed here.
/// SACK blocks are dropped, newest kept, when the options would not fit in 40 bytes.
#[allow(clippy::too_many_arguments)]
pub fn emit_segment<F: FnOnce(&mut [u8])>(
    buf: &mut [u8],
    src: SocketAddr,
    dst: SocketAddr,
    seg: &SegmentOut,
    opts: &mut OptBuf<'_>,
    tos: u8,
    ttl: u8,
    fill: F,
) -> Result<usize> {
    emit_segment_csum(buf, src, dst, seg, opts, tos, ttl, false, fill)
}

/// [`emit_segment`], with only the pseudo-header sum in the TCP checksum field when
/// `partial` (a checksum-offloading device completes it: the TCP header starts at
/// `ip::header_len(src.ip())`, the checksum sits 16 bytes into it).
#[allow(clippy::too_many_arguments)]
pub fn emit_segment_csum<F: FnOnce(&mut [u8])>(
    buf: &mut [u8],
    src: SocketAddr,
    dst: SocketAddr,
    seg: &SegmentOut,
    opts: &mut OptBuf<'_>,
    tos: u8,
    ttl: u8,
    partial: bool,
    fill: F,
) -> Result<usize> {
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(WireError::Malformed);
    }
    let ip_len = ip::header_len(src.ip());
    let mptcp_len: usize = opts.iter().map(|o| o.len()).sum();
    let mut tcp_opts: TcpOptions = seg.options;
    while tcp_opt::tcp_options_len(&tcp_opts) + mptcp_len > MAX_OPTIONS && tcp_opts.sack.len > 0 {
        tcp_opts.sack.len -= 1;
    }
    let raw_opt_len = tcp_opt::tcp_options_len(&tcp_opts) + mptcp_len;
    if raw_opt_len > MAX_OPTIONS {
        return Err(WireError::BadLength);
    }
    let opt_len = (raw_opt_len + 3) & !3;
    let payload_len = seg.payload_len as usize;
    let payload_start = ip_len + 20 + opt_len;
    let total = payload_start + payload_len;
    if buf.len() < total {
        return Err(WireError::BufferTooSmall);
    }
    fill(&mut buf[payload_start..total]);

    // DSS checksums (RFC 8684 section 3.3.1) over the mapping, which is this payload.
    let mpc_dsn = opts.mpc_dsn;
    let csum_given = opts.csum_given;
    for o in opts.iter_mut().filter(|_| !csum_given) {
        match o {
            MptcpOption::Dss(d) => {
                if let Some(m) = d.mapping.as_mut() {
                    if m.checksum.is_some() && m.data_len == 0 {
                        // an infinite mapping covers no bytes: its checksum is not checked
                        m.checksum = Some(0);
                    } else if m.checksum.is_some() {
                        let data = if m.ssn == 0 {
                            &[][..]
                        } else {
                            &buf[payload_start..total]
                        };
                        m.checksum = Some(dss_checksum(m.dsn, m.ssn, m.data_len, data));
                    }
                }
            }
            MptcpOption::MpCapable(c) => {
                if let (Some(l), Some(_)) = (c.data_len, c.checksum) {
                    c.checksum = Some(dss_checksum(mpc_dsn, 1, l, &buf[payload_start..total]));
                }
            }
            _ => {}
        }
    }

    let mut o = ip_len + 20;
    o += tcp_opt::emit_tcp_options(&tcp_opts, &mut buf[o..payload_start])?;
    for opt in opts.iter() {
        o += opt.emit(&mut buf[o..payload_start])?;
    }
    for b in &mut buf[o..payload_start] {
        *b = 1; // NOP padding
    }
    let hdr = TcpHeader {
        src_port: src.port(),
        dst_port: dst.port(),
        seq: seg.seq,
        ack: seg.ack,
        flags: seg.flags,
        window: seg.window,
        urgent: 0,
    };
    hdr.emit(&mut buf[ip_len..payload_start], opt_len)?;
    ip::emit(
        buf,
        src.ip(),
        dst.ip(),
        IPPROTO_TCP,
        20 + opt_len + payload_len,
        tos,
        ttl,
    )?;
    let mut pkt = TcpPacket::new_checked(&mut buf[ip_len..total])?;
    if partial {
        pkt.fill_partial_checksum(src.ip(), dst.ip());
    } else {
        pkt.fill_checksum(src.ip(), dst.ip());
    }
    Ok(total)
}
