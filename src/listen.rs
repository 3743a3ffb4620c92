//! What a listener keeps before a connection exists: the half-open (SYN-RECEIVED) table and
//! SYN cookies (RFC 4987 section 3.6; RFC 8684 section 3.1 lets an MPTCP v1 server stay
//! stateless because the client repeats both keys in the third ACK).
//!
//! A SYN to a listener creates no `Connection`. It gets a small [`HalfOpen`] entry in the
//! stack-wide [`HalfOpenTable`] (bounded by `StackConfig::max_half_open`), whose SYN/ACK
//! the stack sends and retransmits on its own timers and which it forgets when the
//! retransmissions are exhausted; or, when the table is full, a SYN cookie: the SYN/ACK's
//! sequence number encodes the client's MSS (from a table), window scale and SACK
//! permission, with a keyed MAC over the 4-tuple, the client's ISN and a time counter, and
//! the MPTCP key in it is derived from the same secret. The connection is created only when
//! a third ACK matches an entry or carries a valid cookie (and, for MPTCP, echoes the key),
//! and only then does it enter the listener's accept queue.

use crate::crypto::{self, KeyGen};
use crate::tcp::TcpOptions;
use crate::time::{Duration, Instant};
use core::net::{IpAddr, SocketAddr};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// (local, remote) of a subflow.
pub type Tuple = (SocketAddr, SocketAddr);

/// When SYNs are answered with SYN cookies (like Linux's `net.ipv4.tcp_syncookies` 0/1/2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SynCookies {
    /// Never: when the half-open table is full, the oldest entry is evicted instead.
    Never,
    /// When the half-open table is full and its oldest entry is still young (its first
    /// SYN/ACK not yet timed out); an older one is evicted for the new SYN instead.
    WhenFull,
    /// For every SYN (no half-open state at all).
    Always,
}

/// Everything needed to (re)build one SYN/ACK (`crate::tcp::syn_ack_for` plus MP_CAPABLE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynAck {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The client's ISN.
    pub irs: u32,
    /// Our ISN (a cookie, or random for a table entry).
    pub iss: u32,
    /// The client's SYN options (as a cookie encodes them, for a cookie).
    pub syn_opts: TcpOptions,
    /// MP_CAPABLE in the SYN/ACK: our key and the flags.
    pub mpc: Option<(u64, u8)>,
    pub retransmission: bool,
}

/// One half-open (SYN-RECEIVED) connection request.
#[derive(Clone, Debug)]
pub struct HalfOpen {
    pub synack: SynAck,
    /// The SYN's window field.
    pub syn_window: u16,
    /// When the first SYN/ACK was queued; `None` once it was retransmitted (Karn).
    pub sent_at: Option<Instant>,
    /// SYN/ACK retransmissions so far.
    pub retries: u8,
    /// Next SYN/ACK retransmission, or expiry once `retries` reached the limit.
    pub deadline: Instant,
    age: u64,
}

impl HalfOpen {
    /// A new entry whose first SYN/ACK leaves now and is retransmitted at `deadline`.
    pub fn new(synack: SynAck, syn_window: u16, now: Instant, deadline: Instant) -> Self {
        HalfOpen {
            synack,
            syn_window,
            sent_at: Some(now),
            retries: 0,
            deadline,
            age: 0,
        }
    }
}

/// The stack's half-open entries, with their age order (eviction), their timers and the
/// MPTCP tokens of their keys (kept unique against connections).
#[derive(Debug, Default)]
pub struct HalfOpenTable {
    entries: HashMap<Tuple, HalfOpen>,
    by_age: BTreeMap<u64, Tuple>,
    timers: BTreeSet<(Instant, u64)>,
    tokens: HashSet<u32>,
    next_age: u64,
}

impl HalfOpenTable {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, t: &Tuple) -> Option<&HalfOpen> {
        self.entries.get(t)
    }

    /// Whether an entry's MPTCP key has this token.
    pub fn has_token(&self, token: u32) -> bool {
        self.tokens.contains(&token)
    }

    /// Add an entry (replacing any for the same tuple).
    pub fn insert(&mut self, t: Tuple, mut e: HalfOpen) {
        self.remove(&t);
        e.age = self.next_age;
        self.next_age += 1;
        self.by_age.insert(e.age, t);
        self.timers.insert((e.deadline, e.age));
        if let Some((key, _)) = e.synack.mpc {
            self.tokens.insert(crypto::token_and_idsn(key).0);
        }
        self.entries.insert(t, e);
    }

    pub fn remove(&mut self, t: &Tuple) -> Option<HalfOpen> {
        let e = self.entries.remove(t)?;
        self.by_age.remove(&e.age);
        self.timers.remove(&(e.deadline, e.age));
        if let Some((key, _)) = e.synack.mpc {
            self.tokens.remove(&crypto::token_and_idsn(key).0);
        }
        Some(e)
    }

    /// The oldest entry.
    pub fn oldest(&self) -> Option<(Tuple, &HalfOpen)> {
        let (_, t) = self.by_age.iter().next()?;
        self.entries.get(t).map(|e| (*t, e))
    }

    /// When the next entry's timer fires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.iter().next().map(|&(d, _)| d)
    }

    /// An entry whose timer is due at `now`, with the timer disarmed (re-arm it with
    /// `rearm`, or remove the entry).
    pub fn pop_due(&mut self, now: Instant) -> Option<Tuple> {
        let &(d, age) = self.timers.iter().next()?;
        if d > now {
            return None;
        }
        self.timers.remove(&(d, age));
        self.by_age.get(&age).copied()
    }

    /// Count one more SYN/ACK retransmission of `t`, due again at `deadline`; returns the
    /// SYN/ACK to send.
    pub fn rearm(&mut self, t: &Tuple, deadline: Instant) -> Option<SynAck> {
        let e = self.entries.get_mut(t)?;
        self.timers.remove(&(e.deadline, e.age));
        e.deadline = deadline;
        e.retries = e.retries.saturating_add(1);
        e.sent_at = None;
        self.timers.insert((deadline, e.age));
        Some(SynAck {
            retransmission: true,
            ..e.synack
        })
    }

    /// Tuples of every entry on local port `port`.
    pub fn on_port(&self, port: u16) -> Vec<Tuple> {
        self.entries
            .keys()
            .filter(|(l, _)| l.port() == port)
            .copied()
            .collect()
    }
}

/// How long one value of the cookie time counter lasts.
pub const COOKIE_PERIOD: Duration = Duration::from_secs(PERIOD_US / 1_000_000);
const PERIOD_US: u64 = 64_000_000;
/// A cookie is accepted during the period it was made in and the next one (64 to 128 s).
const COOKIE_MAX_AGE: u64 = 1;
const MAC_BITS: u32 = 23;
const MAC_MASK: u32 = (1 << MAC_BITS) - 1;
const WS_NONE: u32 = 15;

/// MSS values a cookie can encode (the largest not above the client's is used), as Linux.
const MSS_V4: [u16; 4] = [536, 1300, 1440, 1460];
const MSS_V6: [u16; 4] = [1220, 1420, 1440, 8940];

fn mss_table(ip: IpAddr) -> &'static [u16; 4] {
    if ip.is_ipv4() {
        &MSS_V4
    } else {
        &MSS_V6
    }
}

/// SYN cookies: the secret (drawn from the stack's key generator the first time a cookie is
/// needed) and when one was last sent (ACKs are checked as cookies only while one may be
/// outstanding, as Linux does).
#[derive(Debug, Default)]
pub struct CookieJar {
    secret: Option<[u8; 32]>,
    last_sent: Option<Instant>,
}

/// 4-tuple and the client's ISN as MAC input.
fn flow_bytes(local: SocketAddr, remote: SocketAddr, irs: u32) -> [u8; 40] {
    let mut b = [0u8; 40];
    let v6 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    };
    b[0..16].copy_from_slice(&v6(local.ip()));
    b[16..18].copy_from_slice(&local.port().to_be_bytes());
    b[18..34].copy_from_slice(&v6(remote.ip()));
    b[34..36].copy_from_slice(&remote.port().to_be_bytes());
    b[36..40].copy_from_slice(&irs.to_be_bytes());
    b
}

fn counter(now: Instant) -> u64 {
    now.total_micros() / PERIOD_US
}

impl CookieJar {
    fn secret(&mut self, keygen: &mut KeyGen) -> [u8; 32] {
        *self.secret.get_or_insert_with(|| {
            let mut s = [0u8; 32];
            for c in s.chunks_mut(8) {
                c.copy_from_slice(&keygen.u64().to_le_bytes());
            }
            s
        })
    }

    /// Whether an ACK matching nothing should be checked as a cookie.
    pub fn recently_sent(&self, now: Instant) -> bool {
        self.last_sent.is_some_and(|t| {
            now.saturating_duration_since(t) < COOKIE_PERIOD * (COOKIE_MAX_AGE as u32 + 1)
        })
    }

    fn pad(secret: &[u8; 32], flow: &[u8; 40]) -> u32 {
        let mut m = [0u8; 41];
        m[0] = b'P';
        m[1..].copy_from_slice(flow);
        let h = crypto::hmac_sha256(secret, &m);
        u32::from_be_bytes([h[0], h[1], h[2], h[3]])
    }

    fn mac(secret: &[u8; 32], flow: &[u8; 40], t: u64, data: u32) -> u32 {
        let mut m = [0u8; 50];
        m[0] = b'M';
        m[1..9].copy_from_slice(&t.to_be_bytes());
        m[9] = data as u8;
        m[10..].copy_from_slice(flow);
        let h = crypto::hmac_sha256(secret, &m);
        u32::from_be_bytes([h[0], h[1], h[2], h[3]]) & MAC_MASK
    }

    /// The cookie (our ISN) for a SYN, and the SYN options as the cookie records them (the
    /// SYN/ACK must negotiate exactly these): MSS rounded down to the table, window scale,
    /// SACK permission; timestamps are kept as the SYN sent them (the third ACK carries
    /// them again if they were negotiated).
    pub fn make(
        &mut self,
        keygen: &mut KeyGen,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        irs: u32,
        syn: &TcpOptions,
    ) -> (u32, TcpOptions) {
        let secret = self.secret(keygen);
        self.last_sent = Some(now);
        let table = mss_table(local.ip());
        let client_mss = syn.mss.unwrap_or(536);
        let idx = table.iter().rposition(|&m| m <= client_mss).unwrap_or(0);
        let ws = syn.window_scale.map_or(WS_NONE, |w| u32::from(w.min(14)));
        let data = (idx as u32) << 5 | ws << 1 | u32::from(syn.sack_permitted);
        let flow = flow_bytes(local, remote, irs);
        let t = counter(now);
        let v = ((t & 3) as u32) << 30 | data << MAC_BITS | Self::mac(&secret, &flow, t, data);
        let cookie = v.wrapping_add(Self::pad(&secret, &flow));
        let opts = TcpOptions {
            mss: Some(table[idx]),
            window_scale: syn.window_scale.map(|w| w.min(14)),
            sack_permitted: syn.sack_permitted,
            timestamps: syn.timestamps,
            ..TcpOptions::default()
        };
        (cookie, opts)
    }

    /// Checks a cookie returned in a third ACK (`cookie` = ACK number - 1, `irs` = sequence
    /// number - 1). Returns the SYN options it records (no timestamps), or `None` if it was
    /// not made by us for this flow, is older than two periods, or no cookie was ever made.
    pub fn check(
        &self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        irs: u32,
        cookie: u32,
    ) -> Option<TcpOptions> {
        let secret = self.secret.as_ref()?;
        let flow = flow_bytes(local, remote, irs);
        let v = cookie.wrapping_sub(Self::pad(secret, &flow));
        let t_low = u64::from(v >> 30);
        let data = (v >> MAC_BITS) & 0x7f;
        let now_t = counter(now);
        let fresh = (0..=COOKIE_MAX_AGE)
            .filter_map(|age| now_t.checked_sub(age))
            .filter(|t| t & 3 == t_low)
            .any(|t| {
                crypto::ct_eq(
                    &Self::mac(secret, &flow, t, data).to_be_bytes(),
                    &(v & MAC_MASK).to_be_bytes(),
                )
            });
        if !fresh {
            return None;
        }
        let ws = (data >> 1) & 0xf;
        if ws != WS_NONE && ws > 14 {
            return None;
        }
        Some(TcpOptions {
            mss: Some(mss_table(local.ip())[(data >> 5) as usize & 3]),
            window_scale: (ws != WS_NONE).then_some(ws as u8),
            sack_permitted: data & 1 != 0,
            ..TcpOptions::default()
        })
    }

    /// The MPTCP key of the SYN/ACK answering with `cookie`: derived from the secret, the
    /// flow and the cookie, so the third ACK's echo of it can be checked without state.
    /// `None` before any cookie was made.
    pub fn key(&self, local: SocketAddr, remote: SocketAddr, irs: u32, cookie: u32) -> Option<u64> {
        let secret = self.secret.as_ref()?;
        let mut m = [0u8; 45];
        m[0] = b'K';
        m[1..41].copy_from_slice(&flow_bytes(local, remote, irs));
        m[41..].copy_from_slice(&cookie.to_be_bytes());
        let k = crypto::truncate64(&crypto::hmac_sha256(secret, &m));
        Some(k.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn opts(mss: u16, ws: Option<u8>, sack: bool) -> TcpOptions {
        TcpOptions {
            mss: Some(mss),
            window_scale: ws,
            sack_permitted: sack,
            ..TcpOptions::default()
        }
    }

    #[test]
    fn cookie_round_trip_encodes_mss_wscale_sack() {
        let mut kg = KeyGen::from_seed(7);
        let mut jar = CookieJar::default();
        let (l, r) = (sa("198.18.1.1:80"), sa("198.18.9.9:4000"));
        let now = Instant::from_millis(5_000);
        assert!(jar.check(now, l, r, 1, 2).is_none(), "no secret yet");
        for (mss, ws, sack, want_mss) in [
            (1460, Some(7), true, 1460),
            (1400, None, false, 1300),
            (100, Some(14), true, 536),
            (9000, Some(0), false, 1460),
        ] {
            let (c, enc) = jar.make(&mut kg, now, l, r, 12345, &opts(mss, ws, sack));
            assert_eq!(enc.mss, Some(want_mss));
            let dec = jar.check(now, l, r, 12345, c).expect("valid");
            assert_eq!(dec.mss, Some(want_mss));
            assert_eq!(dec.window_scale, ws);
            assert_eq!(dec.sack_permitted, sack);
            // any other flow, ISN, cookie value rejects
            assert!(jar.check(now, l, sa("198.18.9.9:4001"), 12345, c).is_none());
            assert!(jar.check(now, l, r, 12346, c).is_none());
            assert!(jar.check(now, l, r, 12345, c ^ 1).is_none());
            assert!(jar.check(now, l, r, 12345, c ^ 0x8000_0000).is_none());
        }
        let v6l = sa("[2001:2::1]:80");
        let v6r = sa("[2001:2::2]:999");
        let (c, enc) = jar.make(&mut kg, now, v6l, v6r, 9, &opts(1440, Some(7), true));
        assert_eq!(enc.mss, Some(1440));
        assert_eq!(jar.check(now, v6l, v6r, 9, c).unwrap().mss, Some(1440));
    }

    #[test]
    fn cookie_expires_after_two_periods_and_keys_differ_per_flow() {
        let mut kg = KeyGen::from_seed(8);
        let mut jar = CookieJar::default();
        let (l, r) = (sa("198.18.1.1:80"), sa("198.18.9.9:4000"));
        let t0 = Instant::from_millis(1_000_000);
        let (c, _) = jar.make(&mut kg, t0, l, r, 77, &opts(1460, Some(7), true));
        assert!(jar
            .check(t0 + Duration::from_secs(60), l, r, 77, c)
            .is_some());
        let end_of_next = Instant::from_micros((counter(t0) + 2) * PERIOD_US - 1);
        assert!(jar.check(end_of_next, l, r, 77, c).is_some());
        assert!(jar
            .check(end_of_next + Duration::from_micros(1), l, r, 77, c)
            .is_none());
        // four periods later the 2-bit counter wraps: still refused
        assert!(jar.check(t0 + COOKIE_PERIOD * 4, l, r, 77, c).is_none());
        assert!(jar.recently_sent(t0 + Duration::from_secs(100)));
        assert!(!jar.recently_sent(t0 + Duration::from_secs(200)));
        let k1 = jar.key(l, r, 77, c).unwrap();
        assert_eq!(jar.key(l, r, 77, c), Some(k1));
        assert_ne!(jar.key(l, r, 78, c), Some(k1));
        assert_ne!(jar.key(l, r, 77, c.wrapping_add(1)), Some(k1));
        // another stack's secret gives other keys and rejects our cookies
        let mut other = CookieJar::default();
        let _ = other.make(
            &mut KeyGen::from_seed(9),
            t0,
            l,
            r,
            1,
            &opts(1460, None, false),
        );
        assert!(other.check(t0, l, r, 77, c).is_none());
        assert_ne!(other.key(l, r, 77, c), Some(k1));
    }

    #[test]
    fn forged_cookies_are_rejected() {
        let mut kg = KeyGen::from_seed(10);
        let mut jar = CookieJar::default();
        let (l, r) = (sa("198.18.1.1:80"), sa("198.18.9.9:4000"));
        let now = Instant::from_millis(1);
        let _ = jar.make(&mut kg, now, l, r, 5, &opts(1460, None, false));
        let mut x = 0x1234_5678u32;
        let mut accepted = 0;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if jar.check(now, l, r, 5, x).is_some() {
                accepted += 1;
            }
        }
        // 2 of 4 counter values, 2^-23 per MAC: expect ~0.01 of 200k guesses
        assert!(accepted <= 2, "{accepted} forged cookies accepted");
    }

    #[test]
    fn table_orders_by_age_and_fires_timers() {
        let mut t = HalfOpenTable::default();
        let mk = |port: u16, key: Option<u64>| SynAck {
            local: sa("198.18.1.1:80"),
            remote: SocketAddr::new("198.18.9.9".parse().unwrap(), port),
            irs: 1,
            iss: 2,
            syn_opts: TcpOptions::default(),
            mpc: key.map(|k| (k, 1)),
            retransmission: false,
        };
        let now = Instant::from_millis(0);
        for (i, p) in [10u16, 11, 12].iter().enumerate() {
            let s = mk(*p, Some(100 + i as u64));
            let d = now + Duration::from_millis(1000 - 100 * i as u64);
            t.insert((s.local, s.remote), HalfOpen::new(s, 100, now, d));
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.oldest().unwrap().0 .1.port(), 10);
        assert!(t.has_token(crypto::token_and_idsn(101).0));
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(800)));
        assert_eq!(t.pop_due(now + Duration::from_millis(799)), None);
        let due = t.pop_due(now + Duration::from_millis(850)).unwrap();
        assert_eq!(due.1.port(), 12);
        let again = t.rearm(&due, now + Duration::from_secs(3)).unwrap();
        assert!(again.retransmission);
        assert_eq!(t.get(&due).unwrap().retries, 1);
        assert_eq!(t.get(&due).unwrap().sent_at, None);
        let first = t.oldest().unwrap().0;
        t.remove(&first);
        assert!(!t.has_token(crypto::token_and_idsn(100).0));
        assert_eq!(t.oldest().unwrap().0 .1.port(), 11);
        assert_eq!(t.next_deadline(), Some(now + Duration::from_millis(900)));
        assert_eq!(t.on_port(80).len(), 2);
        assert!(t.on_port(81).is_empty());
    }
}
