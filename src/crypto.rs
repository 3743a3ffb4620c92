//! MPTCP v1 cryptography (RFC 8684): key -> token/IDSN, the HMACs of MP_JOIN and ADD_ADDR,
//! constant-time comparison and the key/nonce generator.
//!
//! MPTCP v1 uses SHA-256 for everything (RFC 8684 section 3.1, "the algorithm ... HMAC-SHA256").
//! All integers enter the hash in network byte order (big-endian).
//!
//! The sans-IO core never reads entropy on its own: the stack owns a [`KeyGen`] handed to it at
//! creation (from OS entropy in the real driver, from a seed in the simulator).

use core::net::IpAddr;

use hmac::{Hmac, KeyInit, Mac};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = Sha256::digest(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&d);
    out
}

/// Token and initial data sequence number derived from a 64-bit MPTCP key.
///
/// RFC 8684 section 3.1/3.2: the hash is SHA-256 over the key (8 bytes, network order); the
/// token is the most significant 32 bits of the digest, the IDSN the least significant 64 bits.
///
/// ```
/// let (token, idsn) = mptun::crypto::token_and_idsn(0x0102_0304_0506_0708);
/// let d = mptun::crypto::sha256(&0x0102_0304_0506_0708u64.to_be_bytes());
/// assert_eq!(token.to_be_bytes(), d[..4]);
/// assert_eq!(idsn.to_be_bytes(), d[24..]);
/// ```
pub fn token_and_idsn(key: u64) -> (u32, u64) {
    let d = sha256(&key.to_be_bytes());
    let token = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let idsn = u64::from_be_bytes([d[24], d[25], d[26], d[27], d[28], d[29], d[30], d[31]]);
    (token, idsn)
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key` (any key length).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length (long keys are hashed), so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC-SHA256 accepts keys of any length"),
    };
    mac.update(msg);
    let out = mac.finalize().into_bytes();
    let mut r = [0u8; 32];
    r.copy_from_slice(&out);
    r
}

/// HMAC keyed with the two 64-bit MPTCP keys, `key1 || key2` (16 bytes, network order).
fn hmac_keys(key1: u64, key2: u64, msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&key1.to_be_bytes());
    k[8..].copy_from_slice(&key2.to_be_bytes());
    hmac_sha256(&k, msg)
}

/// The MP_JOIN HMAC sent by one side of a subflow handshake.
///
/// RFC 8684 section 3.2, with A the host that initiates the subflow (sends the SYN) and B
/// the host that answers:
///
/// - HMAC-A = HMAC(Key=(Key-A || Key-B), Msg=(R-A || R-B)), sent by A in the third ACK,
///   full 160 leftmost bits ([`truncate160`]);
/// - HMAC-B = HMAC(Key=(Key-B || Key-A), Msg=(R-B || R-A)), sent by B in the SYN/ACK,
///   truncated to the leftmost 64 bits ([`truncate64`]).
///
/// So the arguments are always "the sender of this option first":
///
/// ```
/// use mptun::crypto::{join_hmac, truncate160, truncate64};
/// let (key_a, key_b, r_a, r_b) = (1u64, 2u64, 3u32, 4u32);
/// // SYN/ACK, built by B (B's local key = Key-B, its remote key = Key-A) and checked by A:
/// let syn_ack_mac = truncate64(&join_hmac(key_b, key_a, r_b, r_a));
/// // Third ACK, built by A and checked by B:
/// let ack_mac = truncate160(&join_hmac(key_a, key_b, r_a, r_b));
/// # let _ = (syn_ack_mac, ack_mac);
/// ```
///
/// From the point of view of a host, *sending* uses `join_hmac(local_key, remote_key,
/// local_nonce, remote_nonce)` and *checking* a received MAC uses `join_hmac(remote_key,
/// local_key, remote_nonce, local_nonce)`.
pub fn join_hmac(
    key_sender: u64,
    key_receiver: u64,
    nonce_sender: u32,
    nonce_receiver: u32,
) -> [u8; 32] {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&nonce_sender.to_be_bytes());
    msg[4..].copy_from_slice(&nonce_receiver.to_be_bytes());
    hmac_keys(key_sender, key_receiver, &msg)
}

/// The leftmost 64 bits of a MAC, as a big-endian integer (MP_JOIN SYN/ACK truncated HMAC).
pub fn truncate64(mac: &[u8; 32]) -> u64 {
    u64::from_be_bytes([
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5], mac[6], mac[7],
    ])
}

/// The leftmost 160 bits of a MAC (MP_JOIN third-ACK HMAC).
pub fn truncate160(mac: &[u8; 32]) -> [u8; 20] {
    let mut out = [0u8; 20];
    out.copy_from_slice(&mac[..20]);
    out
}

/// The truncated HMAC carried by an ADD_ADDR option (not the echo).
///
/// RFC 8684 section 3.4.1: "the HMAC ... is calculated ... using the key of the sender
/// followed by the key of the receiver", i.e. Key=(Key-A || Key-B) when A announces,
/// Msg=(Address ID || IP Address || Port); if no port is carried, "2 octets of value zero"
/// are used in its place. The option carries "the rightmost 64 bits" of the HMAC. The
/// address is 4 bytes (IPv4) or 16 bytes (IPv6), network order. Linux
/// (`add_addr_generate_hmac` in net/mptcp/options.c) computes the same.
///
/// Sending: `add_addr_hmac(local_key, remote_key, ..)`; checking a received ADD_ADDR:
/// `add_addr_hmac(remote_key, local_key, ..)`.
pub fn add_addr_hmac(
    key_sender: u64,
    key_receiver: u64,
    addr_id: u8,
    addr: IpAddr,
    port: Option<u16>,
) -> u64 {
    let mut msg = [0u8; 1 + 16 + 2];
    msg[0] = addr_id;
    let n = match addr {
        IpAddr::V4(a) => {
            msg[1..5].copy_from_slice(&a.octets());
            5
        }
        IpAddr::V6(a) => {
            msg[1..17].copy_from_slice(&a.octets());
            17
        }
    };
    msg[n..n + 2].copy_from_slice(&port.unwrap_or(0).to_be_bytes());
    let mac = hmac_keys(key_sender, key_receiver, &msg[..n + 2]);
    u64::from_be_bytes([
        mac[24], mac[25], mac[26], mac[27], mac[28], mac[29], mac[30], mac[31],
    ])
}

/// Constant-time equality of two byte strings (the length itself is not secret: different
/// lengths compare unequal immediately).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// Generator of MPTCP keys, MP_JOIN nonces and other unpredictable numbers (ISNs, ports).
///
/// A CSPRNG (`StdRng`, ChaCha12). `from_entropy` is for real use; `from_seed` gives a
/// reproducible stream for the simulator and tests.
#[derive(Clone, Debug)]
pub struct KeyGen {
    rng: StdRng,
}

impl KeyGen {
    /// Seeded from the operating system's entropy source. Call from the I/O layer or `main`,
    /// never from the sans-IO core.
    pub fn from_entropy() -> Self {
        KeyGen {
            rng: StdRng::from_os_rng(),
        }
    }

    /// Deterministic generator: the same seed gives the same sequence.
    pub fn from_seed(seed: u64) -> Self {
        KeyGen {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// A non-zero 64-bit key.
    pub fn key(&mut self) -> u64 {
        loop {
            let k = self.rng.next_u64();
            if k != 0 {
                return k;
            }
        }
    }

    /// A 32-bit MP_JOIN nonce.
    pub fn nonce(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// A random 32-bit value (initial sequence numbers, ephemeral ports).
    pub fn u32(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// A random 64-bit value.
    pub fn u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};

    fn hex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
        s.chunks(2)
            .map(|c| u8::from_str_radix(core::str::from_utf8(c).unwrap(), 16).unwrap())
            .collect()
    }

    #[test]
    fn hmac_rfc4231() {
        // RFC 4231 test cases 1, 2, 3, 4, 6 (HMAC-SHA-256 column).
        let cases: [(Vec<u8>, Vec<u8>, &str); 5] = [
            (
                vec![0x0b; 20],
                b"Hi There".to_vec(),
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?".to_vec(),
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 20],
                vec![0xdd; 50],
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
            ),
            (
                hex("0102030405060708090a0b0c0d0e0f10111213141516171819"),
                vec![0xcd; 50],
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, msg, want) in cases {
            assert_eq!(hmac_sha256(&key, &msg).to_vec(), hex(want));
        }
    }

    #[test]
    fn join_hmac_linux_kunit_vectors() {
        // net/mptcp/crypto_test.c: the ASCII strings are used as raw bytes; the 16-byte key
        // string is key1 || key2, the 8-byte message string is nonce1 || nonce2.
        let cases = [
            (
                b"0b0b0b0b0b0b0b0b",
                b"48692054",
                "8385e24fb4235ac37556b6b886db106284a1da671699f46db1f235ec622dcafa",
            ),
            (
                b"aaaaaaaaaaaaaaaa",
                b"dddddddd",
                "2c5e219164ff1dca1c4a92318d847bb6b9d44492984e1eb71aff9022f71046e9",
            ),
            (
                b"0102030405060708",
                b"cdcdcdcd",
                "e73b9ba9969969cefb04aa0d6df18ec2fcc075b6f23b4d8c4da736a5dbbc6e7d",
            ),
        ];
        for (key, msg, want) in cases {
            let k1 = u64::from_be_bytes(key[..8].try_into().unwrap());
            let k2 = u64::from_be_bytes(key[8..].try_into().unwrap());
            let n1 = u32::from_be_bytes(msg[..4].try_into().unwrap());
            let n2 = u32::from_be_bytes(msg[4..].try_into().unwrap());
            let mac = join_hmac(k1, k2, n1, n2);
            let want = hex(want);
            assert_eq!(mac.to_vec(), want);
            assert_eq!(truncate64(&mac).to_be_bytes().to_vec(), want[..8]);
            assert_eq!(truncate160(&mac).to_vec(), want[..20]);
        }
    }

    #[test]
    fn join_hmac_direction_matters() {
        let (ka, kb, ra, rb) = (
            0x1111_2222_3333_4444,
            0x5555_6666_7777_8888,
            0xdead_beef,
            0x0bad_f00d,
        );
        let a = join_hmac(ka, kb, ra, rb);
        let b = join_hmac(kb, ka, rb, ra);
        assert_ne!(a, b);
        // The receiver of HMAC-B recomputes it with the roles swapped from its own view.
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&kb.to_be_bytes());
        key[8..].copy_from_slice(&ka.to_be_bytes());
        let mut msg = [0u8; 8];
        msg[..4].copy_from_slice(&rb.to_be_bytes());
        msg[4..].copy_from_slice(&ra.to_be_bytes());
        assert_eq!(b, hmac_sha256(&key, &msg));
    }

    #[test]
    fn token_idsn_from_independent_sha256() {
        for key in [1u64, 0x0123_4567_89ab_cdef, u64::MAX] {
            let d = Sha256::digest(key.to_be_bytes());
            let (t, i) = token_and_idsn(key);
            assert_eq!(t.to_be_bytes()[..], d[..4]);
            assert_eq!(i.to_be_bytes()[..], d[24..32]);
        }
        // SHA-256 of 8 zero bytes is af5570f5a1810b7a f78caf4bc70a660f 0df51e42baf91d4d e5b2328de0e83dfc
        let (t, i) = token_and_idsn(0);
        assert_eq!(t, 0xaf5570f5);
        assert_eq!(i, 0xe5b2328de0e83dfc);
    }

    #[test]
    fn add_addr_hmac_layout() {
        let (ks, kr) = (0x0102_0304_0506_0708, 0x1112_1314_1516_1718);
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        key[8..].copy_from_slice(&0x1112_1314_1516_1718u64.to_be_bytes());

        let v4 = Ipv4Addr::new(198, 19, 2, 1);
        let m = hmac_sha256(&key, &[7, 198, 19, 2, 1, 0, 0]);
        let want = u64::from_be_bytes(m[24..].try_into().unwrap());
        assert_eq!(add_addr_hmac(ks, kr, 7, v4.into(), None), want);
        // Port 0 and "no port" are the same message.
        assert_eq!(add_addr_hmac(ks, kr, 7, v4.into(), Some(0)), want);
        let m = hmac_sha256(&key, &[7, 198, 19, 2, 1, 0x1f, 0x90]);
        assert_eq!(
            add_addr_hmac(ks, kr, 7, v4.into(), Some(8080)),
            u64::from_be_bytes(m[24..].try_into().unwrap())
        );

        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut msg = vec![3];
        msg.extend_from_slice(&v6.octets());
        msg.extend_from_slice(&443u16.to_be_bytes());
        let m = hmac_sha256(&key, &msg);
        assert_eq!(
            add_addr_hmac(ks, kr, 3, v6.into(), Some(443)),
            u64::from_be_bytes(m[24..].try_into().unwrap())
        );
        // Direction matters.
        assert_ne!(
            add_addr_hmac(ks, kr, 3, v6.into(), Some(443)),
            add_addr_hmac(kr, ks, 3, v6.into(), Some(443))
        );
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn keygen_seeded_is_reproducible_and_keys_nonzero() {
        let mut a = KeyGen::from_seed(42);
        let mut b = KeyGen::from_seed(42);
        let mut c = KeyGen::from_seed(43);
        let va: Vec<u64> = (0..16).map(|_| a.key()).collect();
        let vb: Vec<u64> = (0..16).map(|_| b.key()).collect();
        let vc: Vec<u64> = (0..16).map(|_| c.key()).collect();
        assert_eq!(va, vb);
        assert_ne!(va, vc);
        assert!(va.iter().all(|k| *k != 0));
        assert_eq!(a.nonce(), b.nonce());
        assert_eq!(a.u32(), b.u32());
        let mut e1 = KeyGen::from_entropy();
        let mut e2 = KeyGen::from_entropy();
        assert_ne!((e1.key(), e1.key()), (e2.key(), e2.key()));
    }
}
