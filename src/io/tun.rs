//! Linux TUN device (raw libc), an eventfd [`Waker`] and a `poll(2)` helper.
//!
//! Why raw libc and not `tun-rs` / `tun-tap`: see `docs/IO.md`. In short: the whole driver is
//! one `open` plus two `ioctl`s, we need control over the fd (nonblocking, our own poll loop,
//! vnet-header offload later) and no extra dependency tree; `tun-tap` has no offload and
//! `tun-rs` brings async runtimes and its own GSO code that we would wrap anyway.
//!
//! Every packet read or written is a raw IP datagram (IFF_TUN | IFF_NO_PI). With
//! [`Tun::open_with_offload`] every packet is preceded by a 10-byte `virtio_net_hdr` and may
//! be up to 64 KiB: buffers should be [`MAX_PACKET`] bytes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

/// Largest packet (plus virtio header) a read can return: size receive buffers like this.
pub const MAX_PACKET: usize = 65_536 + VNET_HDR_LEN;
/// Size of `struct virtio_net_hdr` prepended to packets with offload.
pub const VNET_HDR_LEN: usize = 10;

const IFNAMSIZ: usize = 16;
// _IOW('T', 202, int), _IOW('T', 208, unsigned int), _IOW('T', 216, int) on the generic
// ioctl encoding (x86, arm, riscv...).
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const SIOCGIFMTU: libc::c_ulong = 0x8921;
const SIOCGIFFLAGS: libc::c_ulong = 0x8913;
const IFF_UP: libc::c_short = 0x0001;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUN_F_CSUM: libc::c_uint = 0x01;
const TUN_F_TSO4: libc::c_uint = 0x02;
const TUN_F_TSO6: libc::c_uint = 0x04;

/// `virtio_net_hdr` flag: the checksum at `csum_start + csum_offset` is partial (the
/// pseudo-header sum); the payload was not summed (the sender trusts the receiver).
pub const VNET_F_NEEDS_CSUM: u8 = 1;
/// `virtio_net_hdr` flag: the checksum was verified.
pub const VNET_F_DATA_VALID: u8 = 2;
/// `gso_type`: not a super-segment.
pub const VNET_GSO_NONE: u8 = 0;
/// `gso_type`: TCP over IPv4 super-segment.
pub const VNET_GSO_TCPV4: u8 = 1;
/// `gso_type`: TCP over IPv6 super-segment.
pub const VNET_GSO_TCPV6: u8 = 4;
/// `gso_type` bit: the segments carry ECN CWR handling.
pub const VNET_GSO_ECN: u8 = 0x80;

/// `struct virtio_net_hdr` (the legacy 10-byte form TUN uses, little-endian on the
/// little-endian hosts Linux TUN supports here): offload metadata of one packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Length of the headers (IP + TCP with options).
    pub hdr_len: u16,
    /// Payload bytes per segment of a super-segment.
    pub gso_size: u16,
    /// Where checksumming starts (the TCP header) and where in it the checksum sits.
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Parse the header at the start of `buf`; `None` if `buf` is shorter.
    pub fn parse(buf: &[u8]) -> Option<VnetHdr> {
        let b = buf.get(..VNET_HDR_LEN)?;
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }

    /// The 10 bytes on the wire.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// The packet's checksum need not (and, when partial, cannot) be verified.
    pub fn csum_trusted(&self) -> bool {
        self.flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID) != 0
    }

    /// A super-segment of TCP segments with `gso_size` payload bytes each.
    pub fn is_gso(&self) -> bool {
        self.gso_type & !VNET_GSO_ECN != VNET_GSO_NONE
    }
}

/// `struct ifreq` with the union viewed as raw bytes (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfReq {
    name: [libc::c_char; IFNAMSIZ],
    data: [u8; 24],
}

impl IfReq {
    fn new(name: &str) -> io::Result<IfReq> {
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= IFNAMSIZ || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid interface name {name:?} (1..15 bytes, no NUL)"),
            ));
        }
        let mut req = IfReq {
            name: [0; IFNAMSIZ],
            data: [0; 24],
        };
        for (d, s) in req.name.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        Ok(req)
    }

    fn name(&self) -> String {
        let bytes: Vec<u8> = self
            .name
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn set_short(&mut self, v: libc::c_short) {
        self.data[..2].copy_from_slice(&v.to_ne_bytes());
    }

    fn short(&self) -> libc::c_short {
        libc::c_short::from_ne_bytes([self.data[0], self.data[1]])
    }

    fn int(&self) -> libc::c_int {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.data[..4]);
        libc::c_int::from_ne_bytes(b)
    }
}

fn ctx(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// What a permission error on a TUN device or namespace needs.
pub(crate) const NEEDS_ADMIN: &str =
    "run mptun as root, or give it CAP_NET_ADMIN (sudo setcap cap_net_admin+ep PATH_TO_MPTUN), \
     or create the device for your user (ip tuntap add dev NAME mode tun user $USER)";

/// TUNSETIFF's errno as a sentence.
fn tunsetiff_error(e: io::Error, name: &str) -> io::Error {
    let msg = match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => {
            format!("not permitted to attach to TUN device {name} ({e}): {NEEDS_ADMIN}")
        }
        Some(libc::EBUSY) => format!(
            "TUN device {name} is already in use by another process (one process per device)"
        ),
        Some(libc::EINVAL) => format!(
            "{name} is not a TUN device, or one created with other flags (mptun needs a \
             device made with `ip tuntap add dev NAME mode tun`, not mode tap, not \
             multi_queue) ({e})"
        ),
        _ => format!("TUNSETIFF {name}: {e}"),
    };
    io::Error::new(e.kind(), msg)
}

/// One TUN device mptun attaches to and the address mptun uses on it: `tun0=198.18.1.2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunSpec {
    pub name: String,
    pub addr: std::net::IpAddr,
}

/// Why a `--tun` argument was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TunSpecError {
    /// No `=` between the device name and the address.
    MissingEquals,
    /// The device name is empty.
    EmptyName,
    /// Linux interface names are at most 15 bytes.
    NameTooLong(usize),
    /// The name contains `/`, whitespace or a control character.
    BadName,
    /// The address does not parse as IPv4 or IPv6.
    BadAddr(String),
}

impl std::fmt::Display for TunSpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TunSpecError::MissingEquals => write!(f, "expected NAME=ADDR, e.g. tun0=198.18.1.2"),
            TunSpecError::EmptyName => write!(f, "empty device name in NAME=ADDR"),
            TunSpecError::NameTooLong(n) => {
                write!(f, "device name is {n} bytes, Linux allows at most 15")
            }
            TunSpecError::BadName => write!(f, "device name contains '/', space or control"),
            TunSpecError::BadAddr(a) => write!(f, "{a:?} is not an IP address"),
        }
    }
}

impl std::error::Error for TunSpecError {}

impl std::str::FromStr for TunSpec {
    type Err = TunSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, addr) = s.split_once('=').ok_or(TunSpecError::MissingEquals)?;
        if name.is_empty() {
            return Err(TunSpecError::EmptyName);
        }
        if name.len() > 15 {
            return Err(TunSpecError::NameTooLong(name.len()));
        }
        if name
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control())
        {
            return Err(TunSpecError::BadName);
        }
        let addr = addr
            .parse()
            .map_err(|_| TunSpecError::BadAddr(addr.to_string()))?;
        Ok(TunSpec {
            name: name.to_string(),
            addr,
        })
    }
}

impl std::fmt::Display for TunSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.addr)
    }
}

/// A TUN device handle (nonblocking). Closing the last handle of a non-persistent device
/// deletes the device.
#[derive(Debug)]
pub struct Tun {
    file: File,
    /// AF_INET datagram socket for interface ioctls (kept so `mtu()` works from any thread,
    /// even one in another network namespace).
    ctl: OwnedFd,
    name: String,
    vnet_hdr: bool,
}

impl Tun {
    /// Attaches to the TUN device `name` (created with `ip tuntap add dev NAME mode tun`) or
    /// creates it. Packets are raw IP datagrams without any header.
    pub fn open(name: &str) -> io::Result<Tun> {
        Self::open_flags(name, false)
    }

    /// Like [`open`](Self::open) with IFF_VNET_HDR and checksum/TSO offload (TUNSETOFFLOAD
    /// CSUM|TSO4|TSO6): every packet read or written starts with a 10-byte
    /// `virtio_net_hdr`, reads can return coalesced segments up to 64 KiB, and writes may be
    /// 64 KiB segments the kernel splits.
    pub fn open_with_offload(name: &str) -> io::Result<Tun> {
        Self::open_flags(name, true)
    }

    fn open_flags(name: &str, offload: bool) -> io::Result<Tun> {
        let mut req = IfReq::new(name)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|e| match e.kind() {
                io::ErrorKind::PermissionDenied => io::Error::new(
                    e.kind(),
                    format!(
                        "open /dev/net/tun: {e}: run mptun as root (/dev/net/tun is usually \
                         mode 0666, so that anyone can attach to a device created for them; \
                         here this user may not open it)"
                    ),
                ),
                io::ErrorKind::NotFound => io::Error::new(
                    e.kind(),
                    "/dev/net/tun does not exist (load the tun module: modprobe tun)",
                ),
                _ => ctx(e, "open /dev/net/tun"),
            })?;
        let mut flags = IFF_TUN | IFF_NO_PI;
        if offload {
            flags |= IFF_VNET_HDR;
        }
        req.set_short(flags);
        // SAFETY: `file` is an open fd; TUNSETIFF reads and writes a `struct ifreq`, and
        // `req` is a properly sized, initialized `repr(C)` ifreq that outlives the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
        if rc < 0 {
            return Err(tunsetiff_error(io::Error::last_os_error(), name));
        }
        if offload {
            let hdr: libc::c_int = VNET_HDR_LEN as libc::c_int;
            // SAFETY: TUNSETVNETHDRSZ reads one int through the pointer, valid for the call.
            let rc = unsafe {
                libc::ioctl(
                    file.as_raw_fd(),
                    TUNSETVNETHDRSZ as _,
                    &hdr as *const libc::c_int,
                )
            };
            if rc < 0 {
                return Err(ctx(io::Error::last_os_error(), "TUNSETVNETHDRSZ"));
            }
            let feats: libc::c_uint = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
            // SAFETY: TUNSETOFFLOAD takes the feature bits as the integer argument.
            let rc = unsafe {
                libc::ioctl(file.as_raw_fd(), TUNSETOFFLOAD as _, feats as libc::c_ulong)
            };
            if rc < 0 {
                return Err(ctx(io::Error::last_os_error(), "TUNSETOFFLOAD"));
            }
        }
        // SAFETY: plain socket(2) call; the result is checked before use.
        let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if s < 0 {
            return Err(ctx(io::Error::last_os_error(), "control socket"));
        }
        // SAFETY: `s` is a freshly created fd that nothing else owns.
        let ctl = unsafe { OwnedFd::from_raw_fd(s) };
        let name = req.name();
        tracing::debug!("opened TUN {name} (offload {offload})");
        Ok(Tun {
            file,
            ctl,
            name,
            vnet_hdr: offload,
        })
    }

    /// Attaches to the TUN device `name`, which must exist and be up; unlike
    /// [`open`](Self::open) it never creates one (a device created here would have no
    /// address and no route, and traffic would silently go nowhere). What `mptun --tun`
    /// uses. The errors say what is wrong and how to fix it: no such device, not a TUN
    /// device, in use, down, or not permitted (root / CAP_NET_ADMIN).
    pub fn open_existing(name: &str) -> io::Result<Tun> {
        Self::open_existing_with(name, false)
    }

    /// [`open_existing`](Self::open_existing), with offload (see
    /// [`open_with_offload`](Self::open_with_offload)) when `offload` is true and the
    /// kernel accepts it; without it otherwise ([`Tun::has_vnet_hdr`] tells).
    pub fn open_existing_with(name: &str, offload: bool) -> io::Result<Tun> {
        IfReq::new(name)?;
        let cname = std::ffi::CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
        // SAFETY: `cname` is a valid NUL-terminated string for the duration of the call.
        if unsafe { libc::if_nametoindex(cname.as_ptr()) } == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "there is no network device {name} (create it first, as root: \
                     ip tuntap add dev {name} mode tun && ip addr add KERNEL_ADDR/24 dev {name} \
                     && ip link set {name} up; see README \"Setting up the TUN devices\")"
                ),
            ));
        }
        let tun = if offload {
            match Self::open_flags(name, true) {
                Ok(t) => t,
                Err(e) => {
                    tracing::info!("{name}: no offload ({e}), plain packets");
                    Self::open_flags(name, false)?
                }
            }
        } else {
            Self::open_flags(name, false)?
        };
        if !tun.is_up()? {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                format!("TUN device {name} is down (ip link set {name} up)"),
            ));
        }
        Ok(tun)
    }

    /// Whether the interface is administratively up (IFF_UP, SIOCGIFFLAGS).
    pub fn is_up(&self) -> io::Result<bool> {
        let mut req = IfReq::new(&self.name)?;
        // SAFETY: SIOCGIFFLAGS writes a short into the ifreq union; `req` is a valid ifreq.
        let rc = unsafe {
            libc::ioctl(
                self.ctl.as_raw_fd(),
                SIOCGIFFLAGS as _,
                &mut req as *mut IfReq,
            )
        };
        if rc < 0 {
            return Err(ctx(
                io::Error::last_os_error(),
                &format!("SIOCGIFFLAGS {}", self.name),
            ));
        }
        Ok(req.short() & IFF_UP != 0)
    }

    /// The interface name the kernel assigned (equal to the requested one).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True if packets carry a `virtio_net_hdr` (opened with offload).
    pub fn has_vnet_hdr(&self) -> bool {
        self.vnet_hdr
    }

    /// Reads one packet into `buf`. `WouldBlock` when none is queued. A `buf` shorter than
    /// the packet truncates it (use [`MAX_PACKET`]). On a device opened with offload the
    /// packet starts with its `virtio_net_hdr` (see [`Tun::recv_offload`]).
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call's duration.
        let n = unsafe {
            libc::read(
                self.file.as_raw_fd(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Reads one packet and its offload metadata: the IP packet is `buf[start..start + len]`.
    /// Without offload this is [`Tun::recv`] with a default header.
    pub fn recv_offload(&self, buf: &mut [u8]) -> io::Result<(usize, usize, VnetHdr)> {
        let n = self.recv(buf)?;
        if !self.vnet_hdr {
            return Ok((0, n, VnetHdr::default()));
        }
        match buf.get(..n).and_then(VnetHdr::parse) {
            Some(h) => Ok((VNET_HDR_LEN, n - VNET_HDR_LEN, h)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "packet shorter than its virtio_net_hdr",
            )),
        }
    }

    /// Writes one packet. `WouldBlock` if the device queue is full. On a device opened with
    /// offload a header saying "nothing to do" goes first (see [`Tun::send_offload`]).
    pub fn send(&self, pkt: &[u8]) -> io::Result<usize> {
        if self.vnet_hdr {
            return self.send_offload(pkt, &VnetHdr::default());
        }
        // SAFETY: `pkt` is valid for reads of `pkt.len()` bytes for the call's duration.
        let n = unsafe {
            libc::write(
                self.file.as_raw_fd(),
                pkt.as_ptr().cast::<libc::c_void>(),
                pkt.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Writes one packet preceded by `hdr` (one `writev`, no copy): a TSO super-segment the
    /// kernel splits into `gso_size` segments, and/or a partial checksum it completes.
    /// Returns the IP packet bytes written. On a device without offload `hdr` must be the
    /// default (nothing to do), else `InvalidInput`.
    pub fn send_offload(&self, pkt: &[u8], hdr: &VnetHdr) -> io::Result<usize> {
        if !self.vnet_hdr {
            if *hdr != VnetHdr::default() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "offload metadata on a device opened without offload",
                ));
            }
            return self.send(pkt);
        }
        let h = hdr.to_bytes();
        let iov = [
            libc::iovec {
                iov_base: h.as_ptr() as *mut libc::c_void,
                iov_len: h.len(),
            },
            libc::iovec {
                iov_base: pkt.as_ptr() as *mut libc::c_void,
                iov_len: pkt.len(),
            },
        ];
        // SAFETY: both iovecs point to buffers valid for reads of their lengths for the
        // call's duration; writev does not write through them.
        let n = unsafe { libc::writev(self.file.as_raw_fd(), iov.as_ptr(), 2) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((n as usize).saturating_sub(VNET_HDR_LEN))
    }

    /// The interface MTU (SIOCGIFMTU).
    pub fn mtu(&self) -> io::Result<u32> {
        let mut req = IfReq::new(&self.name)?;
        // SAFETY: SIOCGIFMTU writes an int into the ifreq union; `req` is a valid ifreq.
        let rc = unsafe {
            libc::ioctl(
                self.ctl.as_raw_fd(),
                SIOCGIFMTU as _,
                &mut req as *mut IfReq,
            )
        };
        if rc < 0 {
            return Err(ctx(
                io::Error::last_os_error(),
                &format!("SIOCGIFMTU {}", self.name),
            ));
        }
        u32::try_from(req.int())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative MTU"))
    }
}

impl AsRawFd for Tun {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// An eventfd another thread can use to wake a driver sleeping in [`poll_fds`].
#[derive(Debug)]
pub struct Waker {
    fd: OwnedFd,
}

impl Waker {
    /// A new nonblocking eventfd.
    pub fn new() -> io::Result<Waker> {
        // SAFETY: plain eventfd(2) call; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(ctx(io::Error::last_os_error(), "eventfd"));
        }
        // SAFETY: `fd` is a freshly created fd that nothing else owns.
        Ok(Waker {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Makes the fd readable (wakes a poller). Never blocks.
    pub fn wake(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64.
        let n = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&one as *const u64).cast::<libc::c_void>(),
                8,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            // Counter saturated: already readable, the wake-up is pending anyway.
            if e.kind() != io::ErrorKind::WouldBlock {
                return Err(ctx(e, "eventfd write"));
            }
        }
        Ok(())
    }

    /// Clears pending wake-ups; returns how many were pending (0 if none).
    pub fn drain(&self) -> io::Result<u64> {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                (&mut v as *mut u64).cast::<libc::c_void>(),
                8,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(ctx(e, "eventfd read"));
        }
        Ok(v)
    }

    /// The fd to include in [`poll_fds`].
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Waits until at least one of `fds` is readable, or `timeout` passes (`None` = forever).
/// Returns a bit mask of the readable (or errored/hung-up) fds: bit `i` for `fds[i]`, for
/// up to `usize::BITS` fds (0 on timeout). EINTR is retried with the remaining time.
pub fn poll_fds(fds: &[RawFd], timeout: Option<Duration>) -> io::Result<usize> {
    const MAX: usize = usize::BITS as usize;
    if fds.len() > MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("poll_fds: at most {MAX} fds"),
        ));
    }
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; MAX];
    for (p, fd) in pfds.iter_mut().zip(fds) {
        p.fd = *fd;
        p.events = libc::POLLIN;
    }
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        let ms: libc::c_int = match deadline {
            None => -1,
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                // Round up so we never spin with a 0 ms timeout before the deadline.
                let ms = left.as_micros().div_ceil(1000);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        // SAFETY: `pfds` is a live array of at least `fds.len()` pollfd structs.
        let rc = unsafe { libc::poll(pfds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(ctx(e, "poll"));
        }
        let mut mask = 0usize;
        for (i, p) in pfds.iter().take(fds.len()).enumerate() {
            if p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                mask |= 1 << i;
            }
        }
        return Ok(mask);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waker_wakes_poll() {
        let w = Waker::new().unwrap();
        assert_eq!(poll_fds(&[w.fd()], Some(Duration::ZERO)).unwrap(), 0);
        w.wake().unwrap();
        w.wake().unwrap();
        assert_eq!(
            poll_fds(&[w.fd()], Some(Duration::from_secs(1))).unwrap(),
            1
        );
        assert_eq!(w.drain().unwrap(), 2);
        assert_eq!(w.drain().unwrap(), 0);
        let t0 = std::time::Instant::now();
        assert_eq!(
            poll_fds(&[w.fd()], Some(Duration::from_millis(20))).unwrap(),
            0
        );
        assert!(t0.elapsed() >= Duration::from_millis(20));
    }

    #[test]
    fn waker_from_another_thread_and_mask_bits() {
        let a = Waker::new().unwrap();
        let b = std::sync::Arc::new(Waker::new().unwrap());
        let b2 = b.clone();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            b2.wake().unwrap();
        });
        let mask = poll_fds(&[a.fd(), b.fd()], None).unwrap();
        assert_eq!(mask, 0b10);
        h.join().unwrap();
    }

    #[test]
    fn bad_names_rejected() {
        assert!(Tun::open("").is_err());
        assert!(Tun::open("a-name-much-too-long").is_err());
        assert!(Tun::open("nul\0x").is_err());
        assert!(poll_fds(&[0; usize::BITS as usize + 1], Some(Duration::ZERO)).is_err());
    }
}
