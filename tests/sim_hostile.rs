//! Forged and hostile input against a live transfer on the simulated network (issue
//! "hardening against forged and hostile input"). Each test injects crafted segments next to
//! a real bidirectional transfer; the oracle is always the same: the legitimate transfer
//! completes intact (no truncation, no corruption, no hang) and the forgery is counted.
//!
//! The forged segments carry the connection's real 4-tuple and a plausible ACK, copied from
//! a packet the peer really sent, so only the checks under test stand between them and the
//! stream.

mod simutil;

use mptun::io::impair::Impairment;
use mptun::io::sim::Verdict;
use mptun::stack::ConnId;
use mptun::time::Duration;
use simutil::*;
use std::cell::RefCell;
use std::rc::Rc;

fn lossy() -> Impairment {
    Impairment {
        delay: Duration::from_millis(5),
        loss: 0.01,
        rate_bps: 200_000_000,
        queue_limit: 1 << 20,
        ..Impairment::default()
    }
}

/// A real packet's TCP fields, to forge from.
#[derive(Clone, Copy, Debug)]
struct Seen {
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    payload: u32,
    /// DSN of the DSS mapping, if the packet carried one.
    dsn: Option<u64>,
}

fn seen(pkt: &[u8]) -> Option<Seen> {
    if pkt.first()? >> 4 != 4 || *pkt.get(9)? != 6 {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let t = pkt.get(ihl..)?;
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some(Seen {
        src: pkt[12..16].try_into().ok()?,
        dst: pkt[16..20].try_into().ok()?,
        sport: u16::from_be_bytes([t[0], t[1]]),
        dport: u16::from_be_bytes([t[2], t[3]]),
        seq: be32(&t[4..8]),
        ack: be32(&t[8..12]),
        payload: tcp_payload_len(pkt) as u32,
        dsn: dss_dsn(pkt),
    })
}

/// The 64-bit DSN of the DSS mapping of an IPv4 TCP packet.
fn dss_dsn(pkt: &[u8]) -> Option<u64> {
    for o in mptcp_options(pkt) {
        if o.len() >= 4 && o[2] >> 4 == 2 {
            let flags = o[3];
            if flags & 0x04 == 0 || flags & 0x08 == 0 {
                return None;
            }
            let at = 4 + match (flags & 0x01 != 0, flags & 0x02 != 0) {
                (false, _) => 0,
                (true, false) => 4,
                (true, true) => 8,
            };
            let b: [u8; 8] = o.get(at..at + 8)?.try_into().ok()?;
            return Some(u64::from_be_bytes(b));
        }
    }
    None
}

/// A DSS option: optional 64-bit DATA_ACK, optional 64-bit mapping (dsn, ssn, len), F flag.
fn dss(data_ack: Option<u64>, map: Option<(u64, u32, u16)>, fin: bool) -> Vec<u8> {
    let mut o = vec![30, 0, 0x20, 0];
    if let Some(a) = data_ack {
        o[3] |= 0x01 | 0x02;
        o.extend_from_slice(&a.to_be_bytes());
    }
    if let Some((dsn, ssn, len)) = map {
        o[3] |= 0x04 | 0x08;
        o.extend_from_slice(&dsn.to_be_bytes());
        o.extend_from_slice(&ssn.to_be_bytes());
        o.extend_from_slice(&len.to_be_bytes());
    }
    if fin {
        o[3] |= 0x10;
    }
    o[1] = o.len() as u8;
    o
}

/// An IPv4 TCP segment from `s.src:s.sport` to `s.dst:s.dport` with the given sequence
/// numbers, ACK flag, one MPTCP option and payload; checksums correct.
fn forge(s: &Seen, seq: u32, ack: u32, opt: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut opts = opt.to_vec();
    while opts.len() % 4 != 0 {
        opts.push(1);
    }
    let tcp_len = 20 + opts.len() + payload.len();
    let total = 20 + tcp_len;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&s.src);
    p[16..20].copy_from_slice(&s.dst);
    let mut sum: u32 = 0;
    for c in p[..20].chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&s.sport.to_be_bytes());
    t[2..4].copy_from_slice(&s.dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = (((20 + opts.len()) / 4) as u8) << 4;
    t[13] = ACK;
    t[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    t[20..20 + opts.len()].copy_from_slice(&opts);
    t[20 + opts.len()..].copy_from_slice(payload);
    fix_tcp_checksum(&mut p);
    p
}

/// Watch a transfer, remembering the newest data packet each way.
struct Watch {
    up: Rc<RefCell<Option<Seen>>>,
    down: Rc<RefCell<Option<Seen>>>,
}

fn watch(p: &mut Pair) -> Watch {
    let up = Rc::new(RefCell::new(None));
    let down = Rc::new(RefCell::new(None));
    let (u, d) = (up.clone(), down.clone());
    p.net.set_hook(Box::new(move |info, pkt| {
        if let Some(s) = seen(pkt) {
            if s.payload > 0 && s.dsn.is_some() {
                let slot = if info.from_host == 0 { &u } else { &d };
                *slot.borrow_mut() = Some(s);
            }
        }
        Verdict::Pass
    }));
    Watch { up, down }
}

/// Run a transfer of `up`/`down` bytes, calling `attack` every 20 simulator events once
/// data flows both ways; returns the transfer (asserted complete) and the number of attacks.
fn under_attack(
    seed: u64,
    up: usize,
    down: usize,
    mut attack: impl FnMut(&mut Pair, &Watch, ConnId) -> bool,
) -> (Pair, Transfer, u32) {
    let mut p = Pair::new(seed, lossy());
    let w = watch(&mut p);
    let c = p.connect();
    let mut t = Transfer::new(c, data(up, seed), data(down, seed + 1));
    let mut steps = 0u64;
    let mut attacks = 0u32;
    let ok = p.run_until(Duration::from_secs(120), |p| {
        t.pump(p);
        steps += 1;
        if steps % 20 == 0
            && w.up.borrow().is_some()
            && w.down.borrow().is_some()
            && !(t.s_eof && t.c_eof)
            && attack(p, &w, c)
        {
            attacks += 1;
        }
        t.done(p)
    });
    assert!(
        ok,
        "transfer did not finish: server got {} of {}, client got {} of {}",
        t.s_recv.len(),
        up,
        t.c_recv.len(),
        down
    );
    t.assert_intact();
    assert!(
        attacks >= 10,
        "only {attacks} forged segments were injected"
    );
    (p, t, attacks)
}

/// A blind attacker's DATA_FIN (out-of-window sequence number) at the next DSN would end the
/// stream early; at a random DSN it would be remembered as the end and the real DATA_FIN
/// discarded. Both must be ignored and counted.
#[test]
fn out_of_window_data_fin_neither_truncates_nor_hangs() {
    let mut n = 0u64;
    let (p, _, attacks) = under_attack(101, 3_000_000, 500_000, |p, w, _| {
        let s = w.up.borrow().unwrap();
        n += 1;
        let dsn = if n % 2 == 0 {
            s.dsn.unwrap() + u64::from(s.payload) // where the stream could end next
        } else {
            s.dsn
                .unwrap()
                .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20)
        };
        let seq = s.seq.wrapping_add(0x4000_0000); // far outside any window
        let pkt = forge(&s, seq, s.ack, &dss(None, Some((dsn, 0, 1)), true), &[]);
        let now = p.now();
        p.server.handle_packet(now, &pkt);
        true
    });
    let mib = p.server.mib();
    assert!(
        mib.OptsUnacceptable >= u64::from(attacks),
        "forgeries not counted: {} of {attacks}",
        mib.OptsUnacceptable
    );
}

/// A blind attacker's DATA_ACK would free data the peer never received; lost segments would
/// then be sent again from released buffer space (corruption). Out-of-window: ignored.
#[test]
fn out_of_window_data_ack_frees_nothing() {
    let (p, _, attacks) = under_attack(102, 3_000_000, 500_000, |p, w, c| {
        let s = w.down.borrow().unwrap();
        let info = p.client.connection(c).unwrap().info();
        // acknowledge everything sent so far (snd_nxt): a valid-looking DATA_ACK
        let ack = info.snd_una + info.bytes_sent.saturating_sub(info.bytes_acked);
        let seq = s.seq.wrapping_add(0x4000_0000);
        let pkt = forge(&s, seq, s.ack, &dss(Some(ack), None, false), &[]);
        let now = p.now();
        p.client.handle_packet(now, &pkt);
        true
    });
    let mib = p.client.mib();
    assert!(
        mib.OptsUnacceptable >= u64::from(attacks),
        "forgeries not counted: {} of {attacks}",
        mib.OptsUnacceptable
    );
}

/// An in-window segment (an on-path attacker, or a confused peer) with a DATA_FIN placed
/// before data already received, or far beyond the receive window, must not end the stream:
/// the position is implausible, the DATA_FIN is ignored and counted.
#[test]
fn in_window_data_fin_at_an_implausible_position_is_ignored() {
    let mut n = 0u64;
    let (p, _, attacks) = under_attack(103, 3_000_000, 500_000, |p, w, _| {
        let s = w.up.borrow().unwrap();
        n += 1;
        let dsn = s.dsn.unwrap();
        let fin_at = if n % 2 == 0 {
            dsn.wrapping_sub(1) // inside data already sent, hence received or mapped
        } else {
            dsn.wrapping_add(1 << 40) // beyond any window
        };
        // a pure ACK just past the newest segment: inside the receive window
        let seq = s.seq.wrapping_add(s.payload).wrapping_add(1000);
        let pkt = forge(&s, seq, s.ack, &dss(None, Some((fin_at, 0, 1)), true), &[]);
        let now = p.now();
        p.server.handle_packet(now, &pkt);
        true
    });
    // Every DATA_FIN beyond the window is refused. One just behind the newest segment is
    // refused when the receiver already holds data past it; while a loss leaves it ahead of
    // everything received it looks plausible and is remembered, until data mapped past it
    // shows it was wrong (DSSNotMatching) and it is forgotten: the transfer above completed
    // intact either way.
    let mib = p.server.mib();
    assert!(
        mib.DataFinInvalid >= u64::from(attacks / 2),
        "out-of-window DATA_FINs accepted: {} refused of {attacks}",
        mib.DataFinInvalid
    );
}

/// A mapping whose DSN and length reach past 2^64 and a DATA_ACK near 2^64 (arithmetic
/// overflow probes) on an in-window segment: no panic, the transfer unharmed. The mapping
/// covers subflow bytes long received (ssn 1), as a stale duplicate would.
#[test]
fn mapping_at_the_top_of_the_dsn_space_is_harmless() {
    let mut n = 0u64;
    let (p, _, _) = under_attack(104, 1_000_000, 200_000, |p, w, c| {
        if p.client.connection(c).unwrap().info().bytes_acked < 300_000 {
            return false; // the stale range must be behind the receiver
        }
        let s = w.up.borrow().unwrap();
        n += 1;
        let seq = s.seq.wrapping_add(s.payload);
        let opt = dss(
            Some(u64::MAX - n),
            Some((u64::MAX - 10, 1, u16::MAX)),
            n % 2 == 0,
        );
        let pkt = forge(&s, seq, s.ack, &opt, &[]);
        let now = p.now();
        p.server.handle_packet(now, &pkt);
        true
    });
    let mib = p.server.mib();
    assert!(
        mib.DataAckInvalid + mib.DSSNotMatching + mib.DataFinInvalid + mib.OptsUnacceptable > 0,
        "nothing counted: {mib:?}"
    );
}
