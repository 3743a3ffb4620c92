//! The crypto API used the way the MPTCP layer will: both ends of an MP_CAPABLE + MP_JOIN
//! exchange and an ADD_ADDR, each side computing with its own local/remote view.

use core::net::{IpAddr, Ipv4Addr};
use mptun::crypto::{
    add_addr_hmac, ct_eq, join_hmac, token_and_idsn, truncate160, truncate64, KeyGen,
};

struct Host {
    local_key: u64,
    remote_key: u64,
    local_nonce: u32,
    remote_nonce: u32,
}

#[test]
fn join_and_add_addr_verify_across_both_ends() {
    let mut ga = KeyGen::from_seed(1);
    let mut gb = KeyGen::from_seed(2);
    let (ka, kb) = (ga.key(), gb.key());
    let (ra, rb) = (ga.nonce(), gb.nonce());
    let a = Host {
        local_key: ka,
        remote_key: kb,
        local_nonce: ra,
        remote_nonce: rb,
    };
    let b = Host {
        local_key: kb,
        remote_key: ka,
        local_nonce: rb,
        remote_nonce: ra,
    };

    // MP_JOIN SYN from A carries B's token (derived from Key-B).
    let (token_b, _) = token_and_idsn(b.local_key);
    assert_eq!(token_and_idsn(a.remote_key).0, token_b);

    // SYN/ACK: B sends truncated HMAC-B; A verifies.
    let sent = truncate64(&join_hmac(
        b.local_key,
        b.remote_key,
        b.local_nonce,
        b.remote_nonce,
    ));
    let expect = truncate64(&join_hmac(
        a.remote_key,
        a.local_key,
        a.remote_nonce,
        a.local_nonce,
    ));
    assert!(ct_eq(&sent.to_be_bytes(), &expect.to_be_bytes()));

    // Third ACK: A sends 160-bit HMAC-A; B verifies.
    let sent = truncate160(&join_hmac(
        a.local_key,
        a.remote_key,
        a.local_nonce,
        a.remote_nonce,
    ));
    let expect = truncate160(&join_hmac(
        b.remote_key,
        b.local_key,
        b.remote_nonce,
        b.local_nonce,
    ));
    assert!(ct_eq(&sent, &expect));
    // A reflected MAC (B's own direction) must not verify.
    let reflected = truncate160(&join_hmac(
        b.local_key,
        b.remote_key,
        b.local_nonce,
        b.remote_nonce,
    ));
    assert!(!ct_eq(&reflected, &expect));

    // ADD_ADDR from A, checked by B; a changed port or id fails.
    let addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    let mac = add_addr_hmac(a.local_key, a.remote_key, 5, addr, Some(8443));
    assert_eq!(
        mac,
        add_addr_hmac(b.remote_key, b.local_key, 5, addr, Some(8443))
    );
    assert_ne!(
        mac,
        add_addr_hmac(b.remote_key, b.local_key, 5, addr, Some(8444))
    );
    assert_ne!(
        mac,
        add_addr_hmac(b.remote_key, b.local_key, 6, addr, Some(8443))
    );
    assert_ne!(mac, add_addr_hmac(b.remote_key, b.local_key, 5, addr, None));
}

#[test]
fn keygen_streams_differ_per_seed_and_cover_bits() {
    let mut g = KeyGen::from_seed(7);
    let mut or = 0u64;
    let mut and = u64::MAX;
    for _ in 0..64 {
        let k = g.key();
        assert_ne!(k, 0);
        or |= k;
        and &= k;
    }
    assert_eq!(or, u64::MAX);
    assert_eq!(and, 0);
}
