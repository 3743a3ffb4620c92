//! Named anomaly and event counters, one per condition, in the style of Linux's MPTcpExt MIB.

macro_rules! mib {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// Counters of one stack (connections add into the stack's instance).
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        #[allow(non_snake_case)]
        pub struct Mib {
            $( $(#[$doc])* pub $name: u64, )*
        }

        impl Mib {
            /// Every counter as (name, value), in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$( (stringify!($name), self.$name), )*].into_iter()
            }

            /// The value of the counter called `name`.
            pub fn get(&self, name: &str) -> Option<u64> {
                self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
            }

            /// The non-zero counters as `Name=value`, space-separated (for logs and state
            /// dumps).
            pub fn nonzero_text(&self) -> String {
                let mut out = String::new();
                for (n, v) in self.iter().filter(|(_, v)| *v != 0) {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(n);
                    out.push('=');
                    out.push_str(&v.to_string());
                }
                out
            }
        }
    };
}

mib! {
    /// IP packets that did not parse (bad version, length, header checksum, fragments).
    InIpErrors,
    /// TCP segments with a bad length or data offset.
    InTcpErrors,
    /// TCP segments whose checksum did not verify.
    InCsumErrors,
    /// Packets for another protocol or an address not ours.
    InNotForUs,
    /// Segments matching no connection or listener (answered with RST unless RST).
    InNoSocket,
    /// RSTs sent in answer to segments matching nothing.
    OutRstNoSocket,
    /// SYNs refused because the accept backlog was full.
    ListenOverflows,
    /// MPTCP options that did not parse.
    MPTcpOptionErrors,
    /// MP_CAPABLE SYN received (passive).
    MPCapableSYNRX,
    /// MP_CAPABLE SYN sent (active).
    MPCapableSYNTX,
    /// MP_CAPABLE SYN/ACK received (active).
    MPCapableSYNACKRX,
    /// MP_CAPABLE third ACK received with both keys (passive).
    MPCapableACKRX,
    /// Passive side fell back: the first packet after the handshake had no MPTCP option.
    MPCapableFallbackACK,
    /// Active side fell back: the SYN/ACK carried no MP_CAPABLE.
    MPCapableFallbackSYNACK,
    /// Plain TCP SYN accepted by a listener (fallback from the start).
    PlainTcpSYNRX,
    /// MP_CAPABLE options ignored (as if absent: plain TCP) because the extensibility flag
    /// B was set or the HMAC-SHA256 flag H was not (RFC 8684 3.1).
    MPCapableIgnored,
    /// MP_CAPABLE with keys that do not match ours.
    MPCapableBadKey,
    /// MP_JOIN SYN received.
    MPJoinSynRx,
    /// MP_JOIN SYN/ACK received.
    MPJoinSynAckRx,
    /// MP_JOIN third ACK received and verified.
    MPJoinAckRx,
    /// MP_JOIN SYN with an unknown token.
    MPJoinNoTokenFound,
    /// MP_JOIN SYN/ACK whose HMAC did not verify.
    MPJoinSynAckHMacFailure,
    /// MP_JOIN third ACK whose HMAC did not verify.
    MPJoinAckHMacFailure,
    /// MP_JOIN refused because of limits or policy.
    MPJoinRejected,
    /// MP_JOIN third ACK retransmissions.
    MPJoinAckRetrans,
    /// DSS options received.
    DSSRx,
    /// Mappings that contradict an earlier mapping for the same subflow bytes.
    DSSNotMatching,
    /// Mappings with an impossible length or range.
    DSSInvalidMapping,
    /// Mappings with a DSS checksum although none was negotiated, or without one although
    /// it was (RFC 8684 3.3: the peer does not behave as agreed; the subflow is reset).
    DSSCsumMismatch,
    /// Outgoing segments whose payload a mapping did not fully cover (a bug if non-zero).
    DSSTxPartialMapping,
    /// Received mappings dropped because the subflow's mapping table was full.
    DSSMapTableFull,
    /// Subflow payload for which no mapping is known (not acknowledged, will be resent).
    DSSNoMapping,
    /// In-order data without any mapping on the only subflow (the peer fell back, or a
    /// middlebox stripped the options): fell back to TCP (RFC 8684 3.7; Linux's name).
    DssFallback,
    /// In-order data without any mapping where falling back is impossible (a join, or the
    /// streams no longer mapped 1:1): the subflow is reset (RFC 8684 3.7).
    DSSUnmappedReset,
    /// DSS checksum failures.
    DataCsumErr,
    /// DATA_FINs received.
    DataFinRx,
    /// Data-level bytes received twice (already delivered or buffered).
    DuplicateData,
    /// DATA_ACKs acknowledging data never sent.
    DataAckInvalid,
    /// Segments with MPTCP options that TCP did not accept (out of window, bad ACK, PAWS,
    /// RST or SYN off sequence): their options were ignored.
    OptsUnacceptable,
    /// DATA_FINs ignored: a position below data already received, beyond the receive
    /// window, after the stream already ended elsewhere, or with an overflowing mapping.
    DataFinInvalid,
    /// Data reinjected on another subflow after a subflow failed or stalled.
    Reinjections,
    /// Data-level retransmission timer expiries that sent data again (Linux's
    /// MPTcpExtRetransSegs-style): data acknowledged by a subflow but not at the data level.
    DataRetrans,
    /// Bytes queued again by the data-level retransmission timer.
    DataRetransBytes,
    /// Data-level zero-window probes (window probes sent while the peer's data-level
    /// window was closed and nothing was in flight).
    DataWindowProbes,
    /// ICMP "fragmentation needed" / ICMPv6 "packet too big" messages that lowered a
    /// subflow's segment size.
    PmtuUpdates,
    /// ICMP errors ignored: malformed, not quoting one of our segments in flight, or a
    /// bogus MTU.
    IcmpIgnored,
    /// ADD_ADDR received (with a valid HMAC).
    AddAddr,
    /// ADD_ADDR received but not used: `max_add_addr_accepted` reached (echoed anyway).
    AddAddrDrop,
    /// ADD_ADDR we did not send because `max_announced` addresses are announced.
    AddAddrTxDrop,
    /// ADD_ADDR echoes received.
    EchoAdd,
    /// ADD_ADDR whose HMAC did not verify.
    AddAddrHMacFailure,
    /// ADD_ADDR sent (first transmissions).
    AddAddrTx,
    /// ADD_ADDR retransmissions.
    AddAddrRetrans,
    /// REMOVE_ADDR received.
    RmAddr,
    /// Our subflows closed because their local endpoint was removed (Linux's meaning: counted
    /// where the endpoint is deleted; the receiver of the REMOVE_ADDR counts RmAddr only).
    RmSubflow,
    /// MP_PRIO received.
    MPPrioRx,
    /// MP_PRIO sent.
    MPPrioTx,
    /// MP_FAIL received.
    MPFailRx,
    /// MP_FAIL sent.
    MPFailTx,
    /// Infinite mappings received (the peer fell back to TCP after our MP_FAIL).
    InfiniteMapRx,
    /// Infinite mappings sent (we fell back to TCP after the peer's MP_FAIL).
    InfiniteMapTx,
    /// A checksum failure, MP_FAIL or infinite mapping where falling back to TCP was not
    /// possible (other subflows, or data not mapped 1:1): the subflow was reset instead.
    FallbackFailed,
    /// MP_FASTCLOSE received.
    MPFastcloseRx,
    /// MP_FASTCLOSE sent.
    MPFastcloseTx,
    /// MP_TCPRST received.
    MPRstRx,
    /// MP_TCPRST sent.
    MPRstTx,
    /// Connections that fell back to plain TCP after establishment.
    FallbackAfterEstablished,
    /// Packets dropped because no transmit buffer space was available.
    OutDrops,
    /// SYNs answered with a SYN cookie (the half-open table was full, or cookies always).
    SynCookiesSent,
    /// Third ACKs with a valid SYN cookie (a connection was created from them).
    SynCookiesRecv,
    /// ACKs checked as SYN cookies that failed (forged, stale, wrong MPTCP key): RST sent.
    SynCookiesFailed,
    /// Half-open requests evicted to make room for a new SYN.
    HalfOpenEvicted,
    /// Half-open requests forgotten after their last SYN/ACK retransmission went unanswered.
    HalfOpenTimedOut,
    /// Half-open requests ended by an in-window RST.
    HalfOpenReset,
    /// Segments for a half-open request with a wrong ACK number (RST sent), sequence
    /// number or flags (dropped).
    HalfOpenBadAck,
    /// SYN/ACK retransmissions of half-open requests.
    SynAckRetrans,
    /// MP_CAPABLE SYNs answered as plain TCP because the cookie's key had a token in use.
    TokenFallbackInit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        let mut m = Mib::default();
        m.DSSNotMatching += 3;
        assert_eq!(m.get("DSSNotMatching"), Some(3));
        assert_eq!(m.get("MPJoinAckRx"), Some(0));
        assert_eq!(m.get("NoSuchCounter"), None);
        assert!(m.iter().count() > 40);
    }
}
