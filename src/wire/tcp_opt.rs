//! TCP options (RFC 9293 section 3.2, RFC 7323, RFC 2018, RFC 8684 kind 30).
//!
//! No-panic contract: `iter` walks any byte slice; a bad length yields exactly one `Err` and
//! ends the walk; unknown kinds are skipped by their length byte; the walk ends after
//! End-of-List. `parse_all` never fails: it returns what it understood plus an error count.
//! Every `emit` returns `BufferTooSmall`/`BadLength` instead of panicking.

use super::mptcp::MptcpOption;
use super::{Result, WireError};

/// TCP option kinds.
pub mod kind {
    pub const END_OF_LIST: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WINDOW_SCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
    pub const MPTCP: u8 = 30;
}

/// Most MPTCP options `parse_all` keeps from one segment.
pub const MAX_MPTCP_OPTIONS: usize = 4;

/// Up to four SACK blocks, as (left edge, right edge) sequence numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SackBlocks {
    pub blocks: [(u32, u32); 4],
    pub len: u8,
}

impl SackBlocks {
    /// The blocks in use.
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..usize::from(self.len.min(4))]
    }
    /// Append a block; returns false (and drops it) if four are already held.
    pub fn push(&mut self, left: u32, right: u32) -> bool {
        if self.len >= 4 {
            return false;
        }
        self.blocks[usize::from(self.len)] = (left, right);
        self.len += 1;
        true
    }
}

/// The plain-TCP options the engine reads and writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// (TSval, TSecr)
    pub timestamps: Option<(u32, u32)>,
    pub sack: SackBlocks,
}

/// A view over the 1..=4 blocks of a SACK option (its bytes after kind and length).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SackView<'a> {
    data: &'a [u8],
}

impl<'a> SackView<'a> {
    /// Wraps block bytes; their length must be 8, 16, 24 or 32.
    pub fn new(data: &'a [u8]) -> Result<Self> {
        if data.is_empty() || data.len() > 32 || data.len() % 8 != 0 {
            return Err(WireError::BadLength);
        }
        Ok(SackView { data })
    }
    /// Number of blocks (1..=4).
    pub fn len(&self) -> usize {
        self.data.len() / 8
    }
    /// Always false (a SACK option holds at least one block).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// The raw block bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }
    /// (left edge, right edge) of each block.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + 'a {
        // chunks_exact(8): each chunk has exactly 8 bytes.
        self.data.chunks_exact(8).map(|c| {
            let l = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
            let r = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
            (l, r)
        })
    }
}

/// One TCP option, borrowed from the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpOption<'a> {
    EndOfList,
    NoOperation,
    Mss(u16),
    /// The raw shift count (values above 14 are the receiver's problem, RFC 7323 2.3).
    WindowScale(u8),
    SackPermitted,
    Sack(SackView<'a>),
    Timestamps {
        tsval: u32,
        tsecr: u32,
    },
    /// The whole MPTCP option, kind and length bytes included.
    Mptcp(&'a [u8]),
    /// Any other kind; `data` excludes kind and length.
    Unknown {
        kind: u8,
        data: &'a [u8],
    },
}

impl<'a> TcpOption<'a> {
    /// Wire length of this option.
    pub fn len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOperation => 1,
            TcpOption::Mss(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(v) => 2 + v.as_bytes().len(),
            TcpOption::Timestamps { .. } => 10,
            TcpOption::Mptcp(b) => b.len(),
            TcpOption::Unknown { data, .. } => 2 + data.len(),
        }
    }

    /// Always false; an option has at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes the option at the start of `buf`; returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.len();
        if n > 255 {
            return Err(WireError::BadLength);
        }
        let out = buf.get_mut(..n).ok_or(WireError::BufferTooSmall)?;
        match *self {
            TcpOption::EndOfList => out[0] = kind::END_OF_LIST,
            TcpOption::NoOperation => out[0] = kind::NOP,
            TcpOption::Mss(m) => {
                out[..2].copy_from_slice(&[kind::MSS, 4]);
                out[2..].copy_from_slice(&m.to_be_bytes());
            }
            TcpOption::WindowScale(s) => out.copy_from_slice(&[kind::WINDOW_SCALE, 3, s]),
            TcpOption::SackPermitted => out.copy_from_slice(&[kind::SACK_PERMITTED, 2]),
            TcpOption::Sack(v) => {
                out[..2].copy_from_slice(&[kind::SACK, n as u8]);
                out[2..].copy_from_slice(v.as_bytes());
            }
            TcpOption::Timestamps { tsval, tsecr } => {
                out[..2].copy_from_slice(&[kind::TIMESTAMPS, 10]);
                out[2..6].copy_from_slice(&tsval.to_be_bytes());
                out[6..].copy_from_slice(&tsecr.to_be_bytes());
            }
            TcpOption::Mptcp(b) => {
                // Must be a well-formed option of kind 30 whose length byte is its length.
                if b.len() < 2 || b[0] != kind::MPTCP || usize::from(b[1]) != b.len() {
                    return Err(WireError::BadLength);
                }
                out.copy_from_slice(b);
            }
            TcpOption::Unknown { kind: k, data } => {
                if k == kind::END_OF_LIST || k == kind::NOP {
                    return Err(WireError::Malformed);
                }
                out[..2].copy_from_slice(&[k, n as u8]);
                out[2..].copy_from_slice(data);
            }
        }
        Ok(n)
    }
}

/// Iterator over the options of a TCP header, see [`iter`].
#[derive(Clone, Debug)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

/// Walks the options in `options` (the bytes between the fixed TCP header and the data).
pub fn iter(options: &[u8]) -> OptionIter<'_> {
    OptionIter { rest: options }
}

impl<'a> OptionIter<'a> {
    fn fail(&mut self, e: WireError) -> Option<Result<TcpOption<'a>>> {
        self.rest = &[];
        Some(Err(e))
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<TcpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest;
        let k = *rest.first()?;
        match k {
            kind::END_OF_LIST => {
                self.rest = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            kind::NOP => {
                self.rest = rest.get(1..).unwrap_or(&[]);
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        let Some(&len) = rest.get(1) else {
            return self.fail(WireError::Truncated);
        };
        let len = usize::from(len);
        if len < 2 {
            return self.fail(WireError::BadLength);
        }
        let (Some(whole), Some(after)) = (rest.get(..len), rest.get(len..)) else {
            return self.fail(WireError::Truncated);
        };
        let body = whole.get(2..).unwrap_or(&[]);
        // Indexing `body` below only happens in arms whose guard fixed the length
        // (`body.len() == len - 2`).
        let fixed = |want: usize| len == want;
        let opt = match k {
            kind::MSS if fixed(4) => TcpOption::Mss(u16::from_be_bytes([body[0], body[1]])),
            kind::WINDOW_SCALE if fixed(3) => TcpOption::WindowScale(body[0]),
            kind::SACK_PERMITTED if fixed(2) => TcpOption::SackPermitted,
            kind::SACK => match SackView::new(body) {
                Ok(v) => TcpOption::Sack(v),
                Err(e) => return self.fail(e),
            },
            kind::TIMESTAMPS if fixed(10) => TcpOption::Timestamps {
                tsval: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                tsecr: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
            },
            kind::MSS | kind::WINDOW_SCALE | kind::SACK_PERMITTED | kind::TIMESTAMPS => {
                return self.fail(WireError::BadLength)
            }
            kind::MPTCP => TcpOption::Mptcp(whole),
            _ => TcpOption::Unknown {
                kind: k,
                data: body,
            },
        };
        self.rest = after;
        Some(Ok(opt))
    }
}

/// Everything `parse_all` found in an option block, without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedOptions<'a> {
    /// Plain TCP options (a repeated option: the last one wins).
    pub tcp: TcpOptions,
    /// Whole MPTCP options (kind and length included); the first `mptcp_len` are valid.
    pub mptcp: [&'a [u8]; MAX_MPTCP_OPTIONS],
    pub mptcp_len: usize,
    /// Malformed options (the walk stopped at the first) plus MPTCP options beyond
    /// `MAX_MPTCP_OPTIONS` that were dropped.
    pub errors: u32,
}

impl<'a> ParsedOptions<'a> {
    /// The MPTCP option slices found.
    pub fn mptcp(&self) -> &[&'a [u8]] {
        self.mptcp.get(..self.mptcp_len).unwrap_or(&[])
    }
    /// The MPTCP options found, parsed.
    pub fn mptcp_options(&self) -> impl Iterator<Item = Result<MptcpOption<'a>>> + '_ {
        self.mptcp().iter().map(|b| MptcpOption::parse(b))
    }
}

/// Parses a whole option block into plain TCP options and MPTCP option slices.
pub fn parse_all(options: &[u8]) -> ParsedOptions<'_> {
    let mut out = ParsedOptions {
        tcp: TcpOptions::default(),
        mptcp: [&[]; MAX_MPTCP_OPTIONS],
        mptcp_len: 0,
        errors: 0,
    };
    for opt in iter(options) {
        match opt {
            Ok(TcpOption::Mss(m)) => out.tcp.mss = Some(m),
            Ok(TcpOption::WindowScale(s)) => out.tcp.window_scale = Some(s),
            Ok(TcpOption::SackPermitted) => out.tcp.sack_permitted = true,
            Ok(TcpOption::Timestamps { tsval, tsecr }) => out.tcp.timestamps = Some((tsval, tsecr)),
            Ok(TcpOption::Sack(v)) => {
                let mut s = SackBlocks::default();
                for (l, r) in v.iter() {
                    s.push(l, r);
                }
                out.tcp.sack = s;
            }
            Ok(TcpOption::Mptcp(b)) => {
                if let Some(slot) = out.mptcp.get_mut(out.mptcp_len) {
                    *slot = b;
                    out.mptcp_len += 1;
                } else {
                    out.errors += 1;
                }
            }
            Ok(_) => {}
            Err(_) => out.errors += 1,
        }
    }
    out
}

fn base_len(opts: &TcpOptions) -> usize {
    let mut n = 0;
    if opts.mss.is_some() {
        n += 4;
    }
    if opts.timestamps.is_some() || opts.sack_permitted {
        n += if opts.timestamps.is_some() { 12 } else { 4 };
    }
    if opts.window_scale.is_some() {
        n += 4;
    }
    n
}

fn sack_len(blocks: usize) -> usize {
    if blocks == 0 {
        0
    } else {
        4 + 8 * blocks
    }
}

/// Length `emit_tcp_options` writes when `buf` is large enough (a multiple of 4).
pub fn tcp_options_len(opts: &TcpOptions) -> usize {
    base_len(opts) + sack_len(opts.sack.as_slice().len())
}

/// Writes `opts` in Linux's 4-aligned layout: `MSS`, then `SACKPERM TS` / `NOP NOP TS` /
/// `NOP NOP SACKPERM`, then `NOP WS`, then `NOP NOP SACK`. No trailing padding (every piece
/// is already 4-aligned), so MPTCP options can follow. SACK blocks that do not fit in `buf`
/// are left out (the first ones, most recent by RFC 2018, are kept); if the other options do
/// not fit, `BufferTooSmall`. Returns the number of bytes written.
pub fn emit_tcp_options(opts: &TcpOptions, buf: &mut [u8]) -> Result<usize> {
    let base = base_len(opts);
    if buf.len() < base {
        return Err(WireError::BufferTooSmall);
    }
    let mut at = 0;
    let mut put = |opt: TcpOption<'_>, buf: &mut [u8]| -> Result<()> {
        let n = opt.emit(buf.get_mut(at..).ok_or(WireError::BufferTooSmall)?)?;
        at += n;
        Ok(())
    };
    if let Some(m) = opts.mss {
        put(TcpOption::Mss(m), buf)?;
    }
    match (opts.timestamps, opts.sack_permitted) {
        (Some((tsval, tsecr)), sp) => {
            if sp {
                put(TcpOption::SackPermitted, buf)?;
            } else {
                put(TcpOption::NoOperation, buf)?;
                put(TcpOption::NoOperation, buf)?;
            }
            put(TcpOption::Timestamps { tsval, tsecr }, buf)?;
        }
        (None, true) => {
            put(TcpOption::NoOperation, buf)?;
            put(TcpOption::NoOperation, buf)?;
            put(TcpOption::SackPermitted, buf)?;
        }
        (None, false) => {}
    }
    if let Some(s) = opts.window_scale {
        put(TcpOption::NoOperation, buf)?;
        put(TcpOption::WindowScale(s), buf)?;
    }
    let blocks = opts.sack.as_slice();
    let room = buf.len().saturating_sub(base);
    let fit = blocks.len().min(room.saturating_sub(4) / 8);
    if fit > 0 {
        let mut raw = [0u8; 32];
        for (chunk, (l, r)) in raw.chunks_exact_mut(8).zip(blocks.iter().take(fit)) {
            chunk[..4].copy_from_slice(&l.to_be_bytes());
            chunk[4..].copy_from_slice(&r.to_be_bytes());
        }
        let view = SackView::new(raw.get(..fit * 8).unwrap_or(&[]))?;
        put(TcpOption::NoOperation, buf)?;
        put(TcpOption::NoOperation, buf)?;
        put(TcpOption::Sack(view), buf)?;
    }
    Ok(at)
}

/// Pads `buf[..len]` with NOPs up to the next multiple of 4 and returns the new length
/// (clamped to `buf.len()` if the buffer ends first).
pub fn pad(buf: &mut [u8], len: usize) -> usize {
    let target = len.div_ceil(4).saturating_mul(4).min(buf.len());
    if let Some(p) = buf.get_mut(len..target) {
        p.fill(kind::NOP);
    }
    target.max(len.min(buf.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SYN option block as Linux sends it: MSS 1460, SACKPERM TS, NOP WS 7, then a 4-byte
    /// MP_CAPABLE (kind 30, len 4, version 1, flags A|H).
    const LINUX_SYN: [u8; 24] = [
        2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7, 30, 4, 0x01, 0x81,
    ];

    #[test]
    fn linux_syn_block() {
        let p = parse_all(&LINUX_SYN);
        assert_eq!(p.errors, 0);
        assert_eq!(p.tcp.mss, Some(1460));
        assert!(p.tcp.sack_permitted);
        assert_eq!(p.tcp.timestamps, Some((1, 0)));
        assert_eq!(p.tcp.window_scale, Some(7));
        assert_eq!(p.mptcp(), &[&LINUX_SYN[20..]]);
        let mut buf = [0u8; 40];
        let n = emit_tcp_options(&p.tcp, &mut buf).unwrap();
        assert_eq!(n, tcp_options_len(&p.tcp));
        assert_eq!(&buf[..n], &LINUX_SYN[..20]);
    }

    #[test]
    fn iter_kinds_and_errors() {
        // unknown kind 254 (len 4) skipped, then SACK with 2 blocks, then EOL, then garbage.
        let b = [
            254, 4, 0xaa, 0xbb, 5, 18, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0xff,
        ];
        let v: Vec<_> = iter(&b).collect();
        assert_eq!(v.len(), 3);
        assert_eq!(
            v[0],
            Ok(TcpOption::Unknown {
                kind: 254,
                data: &[0xaa, 0xbb]
            })
        );
        let Ok(TcpOption::Sack(s)) = v[1] else {
            panic!("{:?}", v[1])
        };
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![(1, 2), (3, 4)]);
        assert_eq!(v[2], Ok(TcpOption::EndOfList));

        let bad: &[&[u8]] = &[
            &[2, 4, 1],                          // beyond buffer
            &[2, 3, 1],                          // MSS wrong size
            &[8, 8, 0, 0, 0, 0, 0, 0],           // TS wrong size
            &[5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0], // SACK not 8n
            &[5, 2],                             // SACK without blocks
            &[77, 1, 0],                         // len < 2
            &[77],                               // no length byte
            &[3, 4, 1, 1],                       // WS wrong size
        ];
        for b in bad {
            let v: Vec<_> = iter(b).collect();
            assert_eq!(v.len(), 1, "{b:?}");
            assert!(v[0].is_err(), "{b:?}");
        }
        // NOPs before a bad option: yielded, then one error, then the end.
        let v: Vec<_> = iter(&[1, 1, 2, 9, 0]).collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2], Err(WireError::Truncated));
        assert_eq!(parse_all(&[1, 1, 2, 9, 0]).errors, 1);
    }

    #[test]
    fn too_many_mptcp_options_counted() {
        let mut b = Vec::new();
        for _ in 0..5 {
            b.extend_from_slice(&[30, 3, 0x50]);
        }
        let p = parse_all(&b);
        assert_eq!((p.mptcp_len, p.errors), (4, 1));
    }

    #[test]
    fn sack_trimmed_to_space() {
        let mut o = TcpOptions {
            timestamps: Some((5, 6)),
            ..Default::default()
        };
        for i in 0..4 {
            o.sack.push(i * 10, i * 10 + 5);
        }
        assert_eq!(tcp_options_len(&o), 12 + 36);
        let mut buf = [0u8; 40];
        let n = emit_tcp_options(&o, &mut buf).unwrap();
        assert_eq!(n, 40); // 12 + 4 + 3 * 8
        let p = parse_all(&buf[..n]);
        assert_eq!(p.tcp.sack.as_slice(), &o.sack.as_slice()[..3]);
        assert_eq!(
            emit_tcp_options(&o, &mut buf[..11]),
            Err(WireError::BufferTooSmall)
        );
        // Only 12 bytes: timestamps fit, no SACK.
        assert_eq!(emit_tcp_options(&o, &mut buf[..19]), Ok(12));
    }

    #[test]
    fn pad_to_four() {
        let mut b = [0xeeu8; 10];
        assert_eq!(pad(&mut b, 5), 8);
        assert_eq!(&b[5..8], &[1, 1, 1]);
        assert_eq!(b[8], 0xee);
        assert_eq!(pad(&mut b, 8), 8);
        assert_eq!(pad(&mut b, 9), 10);
        assert_eq!(pad(&mut b, 20), 10);
    }

    #[test]
    fn emit_single_options() {
        let mut b = [0u8; 12];
        assert_eq!(TcpOption::Mss(536).emit(&mut b), Ok(4));
        assert_eq!(&b[..4], &[2, 4, 2, 24]);
        assert_eq!(
            TcpOption::Timestamps { tsval: 1, tsecr: 2 }.emit(&mut b[..9]),
            Err(WireError::BufferTooSmall)
        );
        assert_eq!(
            TcpOption::Mptcp(&[30, 5, 0]).emit(&mut b),
            Err(WireError::BadLength)
        );
        assert_eq!(
            TcpOption::Unknown {
                kind: 99,
                data: &[7]
            }
            .emit(&mut b),
            Ok(3)
        );
        assert_eq!(&b[..3], &[99, 3, 7]);
    }
}
