//! MPTCP v1 cryptography (RFC 8684 sections 3.1, 3.2, 3.4.1): key -> token and IDSN with
//! SHA-256, HMAC-SHA256 for MP_JOIN and ADD_ADDR, constant-time comparison, and the key,
//! nonce and ISN generator the stack owns (the sans-IO core never reads entropy itself).

use hmac::{Hmac, KeyInit, Mac};
use rand::{rngs::StdRng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Token (most significant 32 bits of SHA-256(key)) and IDSN (least significant 64 bits),
/// the key taken as 8 bytes in network order (RFC 8684 section 3.1).
pub fn token_and_idsn(key: u64) -> (u32, u64) {
    let d = Sha256::digest(key.to_be_bytes());
    let token = u32::from_be_bytes([d[0], d[1], d[2], d[3]]);
    let mut idsn = [0u8; 8];
    idsn.copy_from_slice(&d[24..32]);
    (token, u64::from_be_bytes(idsn))
}

/// HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(msg);
    let out = mac.finalize().into_bytes();
    let mut r = [0u8; 32];
    r.copy_from_slice(&out);
    r
}

/// The MP_JOIN HMAC of the option's sender (RFC 8684 section 3.2): key = sender's key ||
/// receiver's key, message = sender's nonce || receiver's nonce.
///
/// The listener B computes HMAC-B for its SYN/ACK as `join_hmac(key_b, key_a, r_b, r_a)`;
/// the initiator A computes HMAC-A for its third ACK as `join_hmac(key_a, key_b, r_a, r_b)`.
pub fn join_hmac(key_sender: u64, key_receiver: u64, nonce_sender: u32, nonce_receiver: u32) -> [u8; 32] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&key_sender.to_be_bytes());
    key[8..].copy_from_slice(&key_receiver.to_be_bytes());
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&nonce_sender.to_be_bytes());
    msg[4..].copy_from_slice(&nonce_receiver.to_be_bytes());
    hmac_sha256(&key, &msg)
}

/// The leftmost 64 bits of an HMAC (MP_JOIN SYN/ACK).
pub fn truncate64(mac: &[u8; 32]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&mac[..8]);
    u64::from_be_bytes(b)
}

/// The leftmost 160 bits of an HMAC (MP_JOIN third ACK).
pub fn truncate160(mac: &[u8; 32]) -> [u8; 20] {
    let mut b = [0u8; 20];
    b.copy_from_slice(&mac[..20]);
    b
}

/// The ADD_ADDR HMAC (RFC 8684 section 3.4.1): key = sender's key || receiver's key,
/// message = address id || address || port (two zero bytes when no port is carried);
/// the option carries the rightmost 64 bits.
pub fn add_addr_hmac(
    key_sender: u64,
    key_receiver: u64,
    addr_id: u8,
    addr: core::net::IpAddr,
    port: Option<u16>,
) -> u64 {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&key_sender.to_be_bytes());
    key[8..].copy_from_slice(&key_receiver.to_be_bytes());
    let mut msg = [0u8; 1 + 16 + 2];
    msg[0] = addr_id;
    let n = match addr {
        core::net::IpAddr::V4(a) => {
            msg[1..5].copy_from_slice(&a.octets());
            5
        }
        core::net::IpAddr::V6(a) => {
            msg[1..17].copy_from_slice(&a.octets());
            17
        }
    };
    msg[n..n + 2].copy_from_slice(&port.unwrap_or(0).to_be_bytes());
    let mac = hmac_sha256(&key, &msg[..n + 2]);
    let mut b = [0u8; 8];
    b.copy_from_slice(&mac[24..32]);
    u64::from_be_bytes(b)
}

/// Constant-time equality of two byte strings (false if the lengths differ).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Keys, nonces and initial sequence numbers from a CSPRNG.
pub struct KeyGen {
    rng: StdRng,
}

impl core::fmt::Debug for KeyGen {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KeyGen")
    }
}

impl KeyGen {
    /// Seeded from the operating system's entropy.
    pub fn from_entropy() -> Self {
        KeyGen { rng: StdRng::from_os_rng() }
    }

    /// Deterministic, for the simulator and tests only.
    pub fn from_seed(seed: u64) -> Self {
        KeyGen { rng: StdRng::seed_from_u64(seed) }
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

    /// A 32-bit nonce.
    pub fn nonce(&mut self) -> u32 {
        self.rng.next_u32()
    }

    /// A random 32-bit value (ISNs, ports).
    pub fn u32(&mut self) -> u32 {
        self.rng.next_u32()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn hmac_rfc4231_case_1_and_2() {
        let mac = hmac_sha256(&[0x0b; 20], b"Hi There");
        assert_eq!(mac.to_vec(), hex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"));
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(mac.to_vec(), hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    }

    #[test]
    fn token_and_idsn_split_the_digest() {
        let key = 0x0102_0304_0506_0708u64;
        let d = Sha256::digest(key.to_be_bytes());
        let (token, idsn) = token_and_idsn(key);
        assert_eq!(token.to_be_bytes(), d[..4]);
        assert_eq!(idsn.to_be_bytes(), d[24..]);
    }

    #[test]
    fn join_hmac_orders_keys_and_nonces_by_sender() {
        let (ka, kb, ra, rb) = (0x1111_2222_3333_4444u64, 0x5555_6666_7777_8888u64, 0xaaaa_bbbbu32, 0xcccc_ddddu32);
        let a = join_hmac(ka, kb, ra, rb);
        let mut key = Vec::new();
        key.extend_from_slice(&ka.to_be_bytes());
        key.extend_from_slice(&kb.to_be_bytes());
        let mut msg = Vec::new();
        msg.extend_from_slice(&ra.to_be_bytes());
        msg.extend_from_slice(&rb.to_be_bytes());
        assert_eq!(a, hmac_sha256(&key, &msg));
        assert_ne!(a, join_hmac(kb, ka, rb, ra));
        assert_eq!(truncate64(&a).to_be_bytes(), a[..8]);
        assert_eq!(truncate160(&a), a[..20]);
    }

    #[test]
    fn add_addr_hmac_takes_rightmost_bits_and_zero_port() {
        let addr: core::net::IpAddr = "198.18.2.1".parse().unwrap();
        let h = add_addr_hmac(1, 2, 3, addr, None);
        let mut key = Vec::new();
        key.extend_from_slice(&1u64.to_be_bytes());
        key.extend_from_slice(&2u64.to_be_bytes());
        let full = hmac_sha256(&key, &[3, 198, 18, 2, 1, 0, 0]);
        assert_eq!(h.to_be_bytes(), full[24..]);
        assert_ne!(h, add_addr_hmac(1, 2, 3, addr, Some(80)));
        let v6: core::net::IpAddr = "2001:db8::1".parse().unwrap();
        assert_ne!(add_addr_hmac(1, 2, 3, v6, None), h);
    }

    #[test]
    fn ct_eq_compares_lengths_and_bytes() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }

    #[test]
    fn keygen_is_deterministic_when_seeded() {
        let mut a = KeyGen::from_seed(7);
        let mut b = KeyGen::from_seed(7);
        assert_eq!(a.key(), b.key());
        assert_eq!(a.nonce(), b.nonce());
        assert_ne!(KeyGen::from_entropy().key(), 0);
    }
}
