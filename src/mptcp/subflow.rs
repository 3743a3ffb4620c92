//! One MPTCP subflow: a TCP engine plus the data-sequence mappings of its byte stream.

use crate::tcp::{CloseReason, Tcb};
use crate::time::Instant;
use core::net::SocketAddr;
use std::collections::VecDeque;

/// Most mappings remembered per direction per subflow; more are refused (the data they cover
/// is then not acknowledged and the peer sends it again).
pub const MAX_MAPS: usize = 128;

/// Where a run of subflow stream bytes sits in the data sequence space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Map {
    /// Subflow stream offset of the first byte.
    pub off: u64,
    /// Data sequence number of the first byte.
    pub dsn: u64,
    /// Number of subflow bytes.
    pub len: u32,
}

impl Map {
    /// One past the last subflow offset covered.
    pub fn end(&self) -> u64 {
        self.off.saturating_add(u64::from(self.len))
    }

    /// For a subflow offset inside this map: its DSN and how many mapped bytes follow it.
    pub fn lookup(&self, off: u64) -> Option<(u64, u64)> {
        if off >= self.off && off < self.end() {
            Some((self.dsn.wrapping_add(off - self.off), self.end() - off))
        } else {
            None
        }
    }
}

/// A received mapping whose DSS checksum could not be verified on arrival because its data
/// spans several segments (a TSO sender): verified once all of its bytes are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PendingCsum {
    /// The mapping's subflow bytes (DATA_FIN excluded).
    pub map: Map,
    /// The option's fields the checksum covers, as received.
    pub ssn: u32,
    pub data_len: u16,
    pub checksum: u16,
}

/// Outcome of recording a received mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapInsert {
    /// New (or identical to a known one).
    Ok,
    /// Contradicts a mapping already known for the same subflow bytes.
    Conflict,
    /// No room left.
    Full,
}

/// An ordered, bounded list of mappings.
#[derive(Clone, Debug)]
pub struct MapList {
    maps: VecDeque<Map>,
}

impl Default for MapList {
    /// An empty list; the table is allocated when the first map arrives and grows by
    /// doubling (at most [`MAX_MAPS`] entries).
    fn default() -> Self {
        MapList {
            maps: VecDeque::new(),
        }
    }
}

impl MapList {
    /// The map containing subflow offset `off`: (dsn, mapped bytes from `off`).
    pub fn lookup(&self, off: u64) -> Option<(u64, u64)> {
        // few entries, newest most likely: search from the back
        self.maps.iter().rev().find_map(|m| m.lookup(off))
    }

    /// Record a received mapping, checking it against overlapping known ones.
    pub fn insert_rx(&mut self, m: Map) -> MapInsert {
        if m.len == 0 {
            return MapInsert::Ok;
        }
        for k in self.maps.iter() {
            let lo = k.off.max(m.off);
            let hi = k.end().min(m.end());
            if lo < hi {
                // overlapping bytes must map to the same DSNs
                if k.dsn.wrapping_add(lo - k.off) != m.dsn.wrapping_add(lo - m.off) {
                    return MapInsert::Conflict;
                }
                if m.off >= k.off && m.end() <= k.end() {
                    return MapInsert::Ok; // nothing new
                }
            }
        }
        let pos = self.maps.partition_point(|k| k.off <= m.off);
        // merge with a neighbour when both the subflow bytes and the DSNs continue
        if pos > 0 {
            let prev = &mut self.maps[pos - 1];
            if prev.end() == m.off
                && prev.dsn.wrapping_add(u64::from(prev.len)) == m.dsn
                && prev.len.checked_add(m.len).is_some()
            {
                prev.len += m.len;
                self.merge_next(pos - 1);
                return MapInsert::Ok;
            }
        }
        if let Some(next) = self.maps.get_mut(pos) {
            if m.end() == next.off
                && m.dsn.wrapping_add(u64::from(m.len)) == next.dsn
                && next.len.checked_add(m.len).is_some()
            {
                next.off = m.off;
                next.dsn = m.dsn;
                next.len += m.len;
                return MapInsert::Ok;
            }
        }
        if self.maps.len() >= MAX_MAPS {
            // The payload a mapping covers is delivered with it, so a mapping is only
            // needed until its data arrived: make room by dropping the furthest one.
            match self.maps.back() {
                Some(last) if last.off > m.off => {
                    self.maps.pop_back();
                }
                _ => return MapInsert::Full,
            }
        }
        let pos = self.maps.partition_point(|k| k.off <= m.off);
        self.maps.insert(pos, m);
        MapInsert::Ok
    }

    fn merge_next(&mut self, i: usize) {
        if i + 1 < self.maps.len() {
            let (a, b) = (self.maps[i], self.maps[i + 1]);
            if a.end() == b.off
                && a.dsn.wrapping_add(u64::from(a.len)) == b.dsn
                && a.len.checked_add(b.len).is_some()
            {
                self.maps[i].len += b.len;
                self.maps.remove(i + 1);
            }
        }
    }

    /// Append a transmit mapping at the end of the stream, merging with the last one when
    /// both the subflow bytes and the DSNs are contiguous. Returns false when full.
    pub fn push_tx(&mut self, m: Map) -> bool {
        if let Some(last) = self.maps.back_mut() {
            if last.end() == m.off
                && last.dsn.wrapping_add(u64::from(last.len)) == m.dsn
                && u64::from(last.len) + u64::from(m.len) <= u64::from(u32::MAX)
            {
                last.len += m.len;
                return true;
            }
        }
        if self.maps.len() >= MAX_MAPS {
            return false;
        }
        self.maps.push_back(m);
        true
    }

    /// The newest map.
    pub fn last(&self) -> Option<&Map> {
        self.maps.back()
    }

    /// Forget maps wholly below subflow offset `off`.
    pub fn forget_below(&mut self, off: u64) {
        while self.maps.front().is_some_and(|m| m.end() <= off) {
            self.maps.pop_front();
        }
    }

    /// True if there is room for another non-merged map.
    pub fn has_room(&self) -> bool {
        self.maps.len() < MAX_MAPS
    }

    /// Iterate the maps in stream order.
    pub fn iter(&self) -> impl Iterator<Item = &Map> {
        self.maps.iter()
    }

    /// Remove all maps.
    pub fn clear(&mut self) {
        self.maps.clear();
    }

    /// Heap bytes of the table now.
    pub fn heap_bytes(&self) -> usize {
        self.maps.capacity() * core::mem::size_of::<Map>()
    }

    /// Give back table room: down to a quarter of the table when at most that is used.
    pub fn shrink(&mut self) {
        let keep = self.maps.len().next_power_of_two();
        if self.maps.len() <= self.maps.capacity() / 4 {
            self.maps
                .shrink_to(if self.maps.is_empty() { 0 } else { keep });
        }
    }
}

/// MP_JOIN progress of a subflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinState {
    /// The initial subflow (MP_CAPABLE), no join.
    Initial,
    /// We sent MP_JOIN SYN with this nonce; waiting for the SYN/ACK.
    SynSent { nonce: u32 },
    /// We verified the SYN/ACK and send the third ACK until the peer acknowledges it.
    AckPending { nonce: u32, peer_nonce: u32 },
    /// We received MP_JOIN SYN and answered; waiting for the third ACK.
    SynReceived { nonce: u32, peer_nonce: u32 },
    /// Join complete.
    Joined,
}

/// One subflow of a connection.
#[derive(Debug)]
pub struct Subflow {
    /// Connection-local id; never reused within a connection.
    pub id: u32,
    pub tcb: Tcb,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub tx_maps: MapList,
    pub rx_maps: MapList,
    /// Received mappings awaiting DSS checksum verification, in stream order (at most
    /// [`MAX_MAPS`]); the connection holds the data they cover back until verified.
    pub csum_pending: VecDeque<PendingCsum>,
    /// With DSS checksums: (first subflow offset, checksum) of each data segment sent for
    /// the first time and not yet acknowledged, so that a retransmission of part of it
    /// carries the same mapping with the same checksum (its first bytes may have left the
    /// send buffer since).
    pub sent_csums: VecDeque<(u64, u16)>,
    pub join: JoinState,
    /// Our priority for this subflow (we send MP_PRIO / the B bit).
    pub backup: bool,
    /// The peer asked us to treat this subflow as backup.
    pub peer_backup: bool,
    pub local_addr_id: u8,
    pub remote_addr_id: u8,
    /// Handshake (and join verification) complete.
    pub established: bool,
    /// Set when the TCP engine reported the subflow closed.
    pub closed: Option<CloseReason>,
    /// The peer's FIN arrived on this subflow.
    pub peer_fin: bool,
    /// MP_TCPRST reason to put on our RST, if we abort it.
    pub rst_reason: Option<u8>,
    /// MP_FAIL to put on our RST: the DSN of a mapping that failed its checksum.
    pub mp_fail: Option<u64>,
    /// Data-level bytes sent / received on this subflow (first transmissions).
    pub data_sent: u64,
    pub data_received: u64,
    /// IP TOS for packets of this subflow.
    pub tos: u8,
    /// An MP_PRIO to send.
    pub prio_pending: bool,
    /// Timer for third-ACK retransmission of a join.
    pub join_timer: Option<crate::time::Instant>,
    /// Retransmissions of the MP_JOIN third ACK so far.
    pub join_retries: u8,
    /// The application or path manager asked to close this subflow.
    pub closing_by_app: bool,
    /// A join opened before the peer confirmed our key: its SYN waits until the connection
    /// is fully established (the peer may not know the token yet, or refuses joins before)
    /// or until this deadline, so that an idle connection still gets its subflow.
    pub held: Option<Instant>,
    /// Subflow offset up to which outstanding data was already put up for reinjection.
    pub reinjected_upto: u64,
    /// RTO count and snd_una when the subflow was last seen making progress.
    pub stall_mark: (u64, u64),
    /// Marked potentially failed (repeated RTOs without progress).
    pub potentially_failed: bool,
}

impl Subflow {
    /// A subflow around an engine.
    pub fn new(
        id: u32,
        mut tcb: Tcb,
        local: SocketAddr,
        remote: SocketAddr,
        join: JoinState,
    ) -> Self {
        // a byte is sent again only under the mapping it first went with (RFC 8684 3.3.1)
        tcb.keep_segment_marks();
        Subflow {
            id,
            tcb,
            local,
            remote,
            tx_maps: MapList::default(),
            rx_maps: MapList::default(),
            csum_pending: VecDeque::new(),
            sent_csums: VecDeque::new(),
            join,
            backup: false,
            peer_backup: false,
            local_addr_id: 0,
            remote_addr_id: 0,
            established: false,
            closed: None,
            peer_fin: false,
            rst_reason: None,
            mp_fail: None,
            data_sent: 0,
            data_received: 0,
            tos: 0,
            prio_pending: false,
            join_timer: None,
            join_retries: 0,
            closing_by_app: false,
            held: None,
            reinjected_upto: 0,
            stall_mark: (0, 0),
            potentially_failed: false,
        }
    }

    /// Usable for sending data: established, joined, not closing, not closed.
    pub fn usable(&self) -> bool {
        self.established
            && self.closed.is_none()
            && matches!(self.join, JoinState::Initial | JoinState::Joined)
            && matches!(
                self.tcb.state(),
                crate::tcp::State::Established | crate::tcp::State::CloseWait
            )
    }

    /// Bytes enqueued on the engine but not yet sent once.
    pub fn unsent(&self) -> u64 {
        self.tcb
            .send_queue_end()
            .saturating_sub(self.tcb.snd_max_offset())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_maps_merge_when_contiguous() {
        let mut l = MapList::default();
        assert!(l.push_tx(Map {
            off: 0,
            dsn: 100,
            len: 10
        }));
        assert!(l.push_tx(Map {
            off: 10,
            dsn: 110,
            len: 5
        }));
        assert_eq!(l.iter().count(), 1);
        assert!(l.push_tx(Map {
            off: 15,
            dsn: 500,
            len: 5
        }));
        assert_eq!(l.iter().count(), 2);
        assert_eq!(l.lookup(12), Some((112, 3)));
        assert_eq!(l.lookup(16), Some((501, 4)));
        assert_eq!(l.lookup(20), None);
        l.forget_below(15);
        assert_eq!(l.iter().count(), 1);
    }

    #[test]
    fn rx_maps_detect_conflicts() {
        let mut l = MapList::default();
        assert_eq!(
            l.insert_rx(Map {
                off: 0,
                dsn: 1000,
                len: 100
            }),
            MapInsert::Ok
        );
        assert_eq!(
            l.insert_rx(Map {
                off: 50,
                dsn: 1050,
                len: 10
            }),
            MapInsert::Ok
        );
        assert_eq!(
            l.insert_rx(Map {
                off: 50,
                dsn: 1051,
                len: 10
            }),
            MapInsert::Conflict
        );
        assert_eq!(
            l.insert_rx(Map {
                off: 100,
                dsn: 5000,
                len: 10
            }),
            MapInsert::Ok
        );
        assert_eq!(l.lookup(105), Some((5005, 5)));
        assert_eq!(l.iter().count(), 2);
    }

    #[test]
    fn rx_maps_merge_and_make_room() {
        let mut l = MapList::default();
        // per-segment mappings of one contiguous run collapse into one
        for i in 0..200u64 {
            assert_eq!(
                l.insert_rx(Map {
                    off: 1000 + i * 10,
                    dsn: 5000 + i * 10,
                    len: 10
                }),
                MapInsert::Ok
            );
        }
        assert_eq!(l.iter().count(), 1);
        // disjoint out-of-order mappings beyond the limit: the lowest new one still fits
        let mut l = MapList::default();
        for i in 0..MAX_MAPS as u64 {
            assert_eq!(
                l.insert_rx(Map {
                    off: 100 + i * 20,
                    dsn: 90_000 + i * 50,
                    len: 10
                }),
                MapInsert::Ok
            );
        }
        assert_eq!(
            l.insert_rx(Map {
                off: 0,
                dsn: 1,
                len: 10
            }),
            MapInsert::Ok
        );
        assert_eq!(l.lookup(5), Some((6, 5)));
        assert_eq!(
            l.insert_rx(Map {
                off: 1_000_000,
                dsn: 7,
                len: 10
            }),
            MapInsert::Full
        );
    }
}
