//! The draft's constants and C structs (LP64, layouts checked at compile time), and the
//! byte layouts of mptun's own options (events, MPTCP_INFO, limits).

use super::*;

// ----- the draft's constants ---------------------------------------------------------------

pub const IPPROTO_MPTCP: c_int = 262;
pub const SOL_MPTCP: c_int = 284;
pub const MPTCP_GET_SUB_IDS: c_int = 66;
pub const MPTCP_CLOSE_SUB_ID: c_int = 67;
pub const MPTCP_GET_SUB_TUPLE: c_int = 68;
pub const MPTCP_OPEN_SUB_TUPLE: c_int = 69;
pub const MPTCP_SUB_GETSOCKOPT: c_int = 71;
pub const MPTCP_SUB_SETSOCKOPT: c_int = 72;
/// mptun's per-subflow backup priority option (level `SOL_MPTCP`, an `int` 0/1), usable
/// through MPTCP_SUB_GETSOCKOPT / MPTCP_SUB_SETSOCKOPT. Setting it sends MP_PRIO.
pub const MPTUN_SUB_BACKUP: c_int = 100;

/// Linux's `MPTCP_INFO` (getsockopt level `SOL_MPTCP`): the connection's `struct
/// mptcp_info`, in Linux's layout (`MPTCP_INFO_LEN` bytes).
pub const MPTCP_INFO: c_int = 1;
/// `mptcpi_flags`: the connection fell back to TCP.
pub const MPTCP_INFO_FLAG_FALLBACK: u32 = 1;
/// `mptcpi_flags`: the peer's key is known.
pub const MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED: u32 = 2;
/// Size of Linux's `struct mptcp_info` (6.x uapi).
pub const MPTCP_INFO_LEN: usize = 96;

/// mptun's connection events (level `SOL_MPTCP`, getsockopt): drains queued events into an
/// array of `struct mptun_event`; `*optlen` becomes the bytes written (0: none queued).
pub const MPTUN_GET_EVENTS: c_int = 101;
/// mptun's per-connection limits (level `SOL_MPTCP`, get and set; `struct mptun_limits`:
/// `uint32_t subflows, add_addr_accepted, announced`, Linux's `ip mptcp limits` meaning).
/// Set before connect/listen it applies to the connection(s) made; set on a connected
/// socket it changes that connection's limits at once.
pub const MPTUN_LIMITS: c_int = 102;
/// Level SOL_MPTCP inside MPTCP_SUB_GETSOCKOPT: one subflow's statistics in mptun's own
/// layout (`struct mptun_tcp_info`); TCP_INFO gives Linux's `struct tcp_info`.
pub const MPTUN_TCP_INFO: c_int = 103;
/// Bytes of Linux's `struct tcp_info` mptun fills (up to `tcpi_rcv_wnd`, Linux 5.4+; a
/// shorter buffer gets the first bytes, as Linux copies `min(optlen, sizeof)`).
pub const LINUX_TCP_INFO_LEN: usize = 236;
/// mptun's userspace-path-manager announcement (level `SOL_MPTCP`, setsockopt on a
/// connected socket; Linux's userspace PM `ANNOUNCE`): `uint8_t id` (1..=255), a pad byte,
/// then a `sockaddr_in` or `sockaddr_in6` from offset 2 (port 0: none in the ADD_ADDR).
pub const MPTUN_ANNOUNCE: c_int = 104;
/// Withdraw an address announced with MPTUN_ANNOUNCE (level `SOL_MPTCP`, setsockopt, an
/// `int` id; Linux's userspace PM `REMOVE`): REMOVE_ADDR, the subflows from it close.
pub const MPTUN_REMOVE_ADDR: c_int = 105;
/// Size of `struct mptun_limits`.
pub const MPTUN_LIMITS_LEN: usize = 12;
/// Size of `struct mptun_event`.
pub const MPTUN_EVENT_LEN: usize = 48;
pub const MPTUN_EVENT_ESTABLISHED: u16 = 1;
pub const MPTUN_EVENT_FALLBACK: u16 = 2;
pub const MPTUN_EVENT_SUB_ESTABLISHED: u16 = 3;
pub const MPTUN_EVENT_SUB_CLOSED: u16 = 4;
pub const MPTUN_EVENT_PEER_CLOSED: u16 = 5;
pub const MPTUN_EVENT_CLOSED: u16 = 6;
pub const MPTUN_EVENT_ADDR_ANNOUNCED: u16 = 7;
pub const MPTUN_EVENT_ADDR_REMOVED: u16 = 8;
pub const MPTUN_EVENT_SUB_PRIORITY: u16 = 9;

/// One event as the bytes of `struct mptun_event` (see `include/mptun.h`).
pub fn event_bytes(ev: &crate::mptcp::ConnEvent) -> [u8; MPTUN_EVENT_LEN] {
    use crate::mptcp::ConnEvent as E;
    use crate::tcp::CloseReason;
    let mut b = [0u8; MPTUN_EVENT_LEN];
    let (ty, id, reason, addr_id, backup, error, addr) = match *ev {
        E::Established => (MPTUN_EVENT_ESTABLISHED, 0, 0, 0, 0, 0, None),
        E::Fallback => (MPTUN_EVENT_FALLBACK, 0, 0, 0, 0, 0, None),
        E::SubflowEstablished { id } => (MPTUN_EVENT_SUB_ESTABLISHED, id, 0, 0, 0, 0, None),
        E::SubflowClosed { id, reason } => {
            let r = match reason {
                CloseReason::Normal => 0,
                CloseReason::Reset => 1,
                CloseReason::Timeout => 2,
                CloseReason::Aborted => 3,
            };
            (MPTUN_EVENT_SUB_CLOSED, id, r, 0, 0, 0, None)
        }
        E::PeerClosed => (MPTUN_EVENT_PEER_CLOSED, 0, 0, 0, 0, 0, None),
        E::Closed { error } => {
            let e = error.map_or(0, |e| io_errno(&to_io(StackError::Closed(Some(e)))));
            (
                MPTUN_EVENT_CLOSED,
                0,
                0,
                0,
                0,
                u16::try_from(e).unwrap_or(0),
                None,
            )
        }
        E::AddressAnnounced { addr_id, addr } => {
            (MPTUN_EVENT_ADDR_ANNOUNCED, 0, 0, addr_id, 0, 0, Some(addr))
        }
        E::AddressRemoved { addr_id } => (MPTUN_EVENT_ADDR_REMOVED, 0, 0, addr_id, 0, 0, None),
        E::SubflowPriority { id, backup } => (
            MPTUN_EVENT_SUB_PRIORITY,
            id,
            0,
            0,
            u8::from(backup),
            0,
            None,
        ),
    };
    b[0..2].copy_from_slice(&ty.to_ne_bytes());
    b[2..4].copy_from_slice(&(reason as u16).to_ne_bytes());
    b[4..8].copy_from_slice(&id.to_ne_bytes());
    b[8] = addr_id;
    b[9] = backup;
    b[10..12].copy_from_slice(&error.to_ne_bytes());
    if let Some(a) = addr {
        write_sockaddr(&a, &mut b[16..44]);
    }
    b
}

/// MPTUN_GET_EVENTS: as many queued events as fit in `buf` (whole events only).
pub(super) fn get_events(
    s: &MptcpStream,
    buf: &mut [u8],
    out_len: &mut usize,
) -> Result<(), c_int> {
    buf.fill(0);
    if buf.len() < MPTUN_EVENT_LEN {
        *out_len = MPTUN_EVENT_LEN;
        return Err(libc::EINVAL);
    }
    let mut n = 0;
    for slot in buf.chunks_exact_mut(MPTUN_EVENT_LEN) {
        match s.poll_event() {
            Some(ev) => {
                slot.copy_from_slice(&event_bytes(&ev));
                n += 1;
            }
            None => break,
        }
    }
    *out_len = n * MPTUN_EVENT_LEN;
    Ok(())
}

/// Linux's `struct mptcp_info` bytes for `i`. Fields mptun does not track (ADD_ADDR
/// counts and limits, local address counts, the `last_*` times) are 0;
/// `mptcpi_retransmits` is the subflows' retransmitted segments summed (Linux counts
/// data-level retransmission timeouts), `mptcpi_bytes_retrans` the reinjected bytes.
pub fn mptcp_info_bytes(i: &crate::mptcp::ConnInfo) -> [u8; MPTCP_INFO_LEN] {
    let mut b = [0u8; MPTCP_INFO_LEN];
    let u8c = |v: u32| u8::try_from(v).unwrap_or(u8::MAX);
    // mptcpi_subflows counts the subflows besides the initial one, as Linux's does
    b[0] = u8c(i.subflows.saturating_sub(1));
    let mut flags = 0;
    if i.fallback {
        flags |= MPTCP_INFO_FLAG_FALLBACK;
    }
    if i.remote_token != 0 {
        flags |= MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED;
    }
    b[8..12].copy_from_slice(&flags.to_ne_bytes());
    b[12..16].copy_from_slice(&i.local_token.to_ne_bytes());
    b[16..24].copy_from_slice(&i.write_seq.to_ne_bytes());
    b[24..32].copy_from_slice(&i.snd_una.to_ne_bytes());
    b[32..40].copy_from_slice(&i.rcv_nxt.to_ne_bytes());
    b[42] = u8::from(i.checksum);
    b[44..48].copy_from_slice(
        &u32::try_from(i.retransmits)
            .unwrap_or(u32::MAX)
            .to_ne_bytes(),
    );
    b[48..56].copy_from_slice(&i.reinjected.to_ne_bytes());
    b[56..64].copy_from_slice(&i.bytes_sent.to_ne_bytes());
    b[64..72].copy_from_slice(&i.bytes_received.to_ne_bytes());
    b[72..80].copy_from_slice(&i.bytes_acked.to_ne_bytes());
    b[80] = u8c(i.subflows);
    b
}
/// `how` of `mptcp_close_sub_id`: reset the subflow now (MP_TCPRST) instead of a FIN.
pub const MPTUN_SHUT_ABORT: c_int = 16;

/// Status flag bits of `mptcp_sub_status::flags`.
pub const MPTCP_SUB_SLAVE_SK: u16 = 1 << 0;
pub const MPTCP_SUB_FULLY_ESTABLISHED: u16 = 1 << 1;
pub const MPTCP_SUB_ATTACHED: u16 = 1 << 2;
pub const MPTCP_SUB_LOW_PRIO: u16 = 1 << 3;
pub const MPTCP_SUB_PRE_ESTABLISHED: u16 = 1 << 4;

/// How long a blocking `mptun_connect` waits for the handshake.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `mptun_fini` waits for closed connections to finish their closing handshake.
pub(super) const LINGER_TIMEOUT: Duration = Duration::from_secs(10);
/// Most descriptors open at once.
pub(super) const MAX_FDS: usize = 1024;

// ----- the draft's structs (LP64), mirrored and checked ----------------------------------

/// One subflow in `mptcp_sub_ids`: the id, a pad byte, a flag word (`MPTCP_SUB_*` bits).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct mptcp_sub_status {
    pub id: u8,
    pub pad: u8,
    pub flags: u16,
}

/// MPTCP_GET_SUB_IDS output: a count, a pad byte, then `sub_count` entries from offset 2.
#[repr(C)]
pub struct mptcp_sub_ids {
    pub sub_count: u8,
    pub pad: u8,
    pub sub_status: [mptcp_sub_status; 0],
}

/// MPTCP_GET_SUB_TUPLE / MPTCP_OPEN_SUB_TUPLE: id, prio (1 = backup), then the local and the
/// remote `sockaddr_in` (34 bytes in all) or `sockaddr_in6` (58 bytes) from offset 2.
#[repr(C)]
pub struct mptcp_sub_tuple {
    pub id: u8,
    pub prio: u8,
    pub addrs: [u8; 0],
}

/// MPTCP_CLOSE_SUB_ID input.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mptcp_close_sub_id {
    pub id: u8,
    pub how: c_int,
}

/// MPTCP_SUB_GETSOCKOPT argument.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mptcp_sub_getsockopt {
    pub id: u8,
    pub level: c_int,
    pub optname: c_int,
    pub optval: *mut c_char,
    pub optlen: *mut c_uint,
}

/// MPTCP_SUB_SETSOCKOPT argument.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct mptcp_sub_setsockopt {
    pub id: u8,
    pub level: c_int,
    pub optname: c_int,
    pub optval: *mut c_char,
    pub optlen: c_uint,
}

/// Per-subflow statistics returned for TCP_INFO through MPTCP_SUB_GETSOCKOPT (mptun's own
/// layout, documented in `include/mptun.h`; times in microseconds, sizes in bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct mptun_tcp_info {
    pub tcpi_state: u8,
    pub tcpi_backup: u8,
    pub tcpi_rtt_valid: u8,
    pub tcpi_pad: u8,
    pub tcpi_snd_mss: u32,
    pub tcpi_rcv_mss: u32,
    pub tcpi_rto: u32,
    pub tcpi_rtt: u32,
    pub tcpi_rttvar: u32,
    pub tcpi_snd_cwnd: u32,
    pub tcpi_snd_ssthresh: u32,
    pub tcpi_bytes_in_flight: u32,
    pub tcpi_pad2: u32,
    pub tcpi_bytes_sent: u64,
    pub tcpi_bytes_acked: u64,
    pub tcpi_bytes_received: u64,
    pub tcpi_data_sent: u64,
    pub tcpi_data_received: u64,
    pub tcpi_total_retrans: u64,
}

pub const SOCKADDR_IN_LEN: usize = 16;
pub const SOCKADDR_IN6_LEN: usize = 28;
/// `sizeof(struct mptcp_sub_tuple)` plus two `sockaddr_in`.
pub const SUB_TUPLE_LEN_IN: usize = 2 + 2 * SOCKADDR_IN_LEN;
/// `sizeof(struct mptcp_sub_tuple)` plus two `sockaddr_in6`.
pub const SUB_TUPLE_LEN_IN6: usize = 2 + 2 * SOCKADDR_IN6_LEN;

const _: () = {
    assert!(size_of::<mptcp_sub_status>() == 4);
    assert!(offset_of!(mptcp_sub_status, flags) == 2);
    assert!(size_of::<mptcp_sub_ids>() == 2);
    assert!(offset_of!(mptcp_sub_ids, sub_status) == 2);
    assert!(size_of::<mptcp_sub_tuple>() == 2);
    assert!(offset_of!(mptcp_sub_tuple, addrs) == 2);
    assert!(size_of::<mptcp_close_sub_id>() == 8);
    assert!(offset_of!(mptcp_close_sub_id, how) == 4);
    assert!(size_of::<mptcp_sub_getsockopt>() == 32);
    assert!(offset_of!(mptcp_sub_getsockopt, level) == 4);
    assert!(offset_of!(mptcp_sub_getsockopt, optname) == 8);
    assert!(offset_of!(mptcp_sub_getsockopt, optval) == 16);
    assert!(offset_of!(mptcp_sub_getsockopt, optlen) == 24);
    assert!(size_of::<mptcp_sub_setsockopt>() == 32);
    assert!(offset_of!(mptcp_sub_setsockopt, optval) == 16);
    assert!(offset_of!(mptcp_sub_setsockopt, optlen) == 24);
    assert!(size_of::<mptun_tcp_info>() == 88);
    assert!(offset_of!(mptun_tcp_info, tcpi_snd_mss) == 4);
    assert!(offset_of!(mptun_tcp_info, tcpi_bytes_sent) == 40);
    assert!(offset_of!(mptun_tcp_info, tcpi_total_retrans) == 80);
    assert!(size_of::<libc::sockaddr_in>() == SOCKADDR_IN_LEN);
    assert!(size_of::<libc::sockaddr_in6>() == SOCKADDR_IN6_LEN);
};
