//! HyStart++ (RFC 9406): leave the initial slow start when the RTT starts to rise, before
//! the queue at the bottleneck overflows.
//!
//! Classic slow start doubles the window every round until a packet is lost; behind a deep
//! queue it overshoots by up to the queue's size, and the loss that ends it is a burst
//! (on a 5 Mbit/s path with a 200 kB queue the window reached 400 kB and the subflow took
//! hundreds of retransmissions and a timeout, docs/PERFORMANCE.md "Aggregation"). HyStart++
//! watches the minimum RTT of each round: when a round's minimum exceeds the previous
//! round's by `clamp(last / 8, 4 ms, 16 ms)`, slow start becomes *conservative slow start*
//! (a quarter of the growth) for [`CSS_ROUNDS`] rounds, then congestion avoidance begins at
//! the window reached (ssthresh = cwnd). If the RTT falls back below the baseline during
//! conservative slow start, the rise was a false alarm and slow start resumes.
//!
//! Beside the delay rule, Linux's ACK-train rule (its HyStart's first detector, see
//! [`HyStart::on_ack`]): ACKs arriving back to back for longer than half the lowest RTT end
//! slow start at once. It catches what the delay rule cannot see: a sender that goes out in
//! bursts (an MPTCP subflow held back by the data-level window) finds the queue empty at the
//! start of every round, so the round minimum never rises in time.
//!
//! One addition to RFC 9406: if during conservative slow start a round's minimum RTT rises
//! again by the threshold above the baseline that began it, the queue is confirmed and
//! congestion avoidance begins at once. Conservative slow start still grows the window by
//! up to 1.25^5 ≈ 3x over its five rounds; behind a deep queue that began to fill before
//! the first rise was seen (a 5 Mbit/s path with a 200 kB queue), that alone overflowed
//! it (`tests/sim_datapath.rs`, `slow_start_ends_before_a_deep_queue_overflows`).
//!
//! Rounds are counted in bytes: a round ends once the bytes in flight when it began
//! (RFC 9406's `windowEnd = SND.NXT`) are acknowledged. It applies to the initial slow
//! start only (while ssthresh is unset); after a loss, ssthresh bounds slow start anyway.
//! The cap `L` on the increase per ACK that RFC 9406 recommends for unpaced senders is not
//! applied, for the reason [`super::RenoCore::slow_start`] gives.

use crate::time::{Duration, Instant};

/// Lower bound of the RTT rise that ends slow start (RFC 9406 `MIN_RTT_THRESH`).
pub const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
/// Upper bound of the RTT rise that ends slow start (RFC 9406 `MAX_RTT_THRESH`).
pub const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
/// The rise threshold is the last round's minimum RTT divided by this (`MIN_RTT_DIVISOR`).
pub const MIN_RTT_DIVISOR: u32 = 8;
/// RTT samples a round needs before its minimum is compared (`N_RTT_SAMPLE`).
pub const N_RTT_SAMPLE: u32 = 8;
/// Growth divisor during conservative slow start (`CSS_GROWTH_DIVISOR`).
pub const CSS_GROWTH_DIVISOR: u32 = 4;
/// Rounds of conservative slow start before congestion avoidance (`CSS_ROUNDS`).
pub const CSS_ROUNDS: u32 = 5;
/// ACKs at most this far apart form a train (Linux's `hystart_ack_delta_us`).
pub const ACK_TRAIN_DELTA: Duration = Duration::from_millis(2);
/// No ACK-train exit below this many segments of window (Linux's `hystart_low_window`).
pub const ACK_TRAIN_LOW_WINDOW: u32 = 16;

/// What slow start should do with the bytes an ACK acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Grow by every acknowledged byte.
    SlowStart,
    /// Grow by a [`CSS_GROWTH_DIVISOR`]th of them.
    Conservative,
    /// Conservative slow start is over: set ssthresh to cwnd, congestion avoidance from now.
    Exit,
}

/// HyStart++ state of one subflow.
#[derive(Clone, Debug, Default)]
pub struct HyStart {
    /// Bytes still to be acknowledged before the current round ends; `None` before the
    /// first ACK.
    round_left: Option<u64>,
    last_round_min: Option<Duration>,
    current_round_min: Option<Duration>,
    samples: u32,
    /// In conservative slow start.
    css: Option<Css>,
    /// When the current round began, and the last ACK of its unbroken ACK train (`None`
    /// once the train broke).
    round_start: Option<Instant>,
    train_last: Option<Instant>,
    /// Lowest RTT sample seen.
    min_rtt: Option<Duration>,
    /// Times HyStart++ ended slow start (statistics).
    pub exits: u32,
}

#[derive(Clone, Copy, Debug)]
struct Css {
    /// The round minimum RTT that began it (`cssBaselineMinRtt`).
    baseline: Duration,
    /// Complete rounds spent in it.
    rounds: u32,
    /// It began during the current round (which is then not counted as one of its rounds).
    fresh: bool,
}

/// The RTT rise over `base` that counts (RFC 9406 `RttThresh`).
fn rise_threshold(base: Duration) -> Duration {
    (base / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH)
}

impl HyStart {
    /// Whether conservative slow start is on.
    pub fn in_css(&self) -> bool {
        self.css.is_some()
    }

    /// An ACK in the initial slow start: `acked` new bytes, `rtt` its sample (if any),
    /// `in_flight` the bytes outstanding before it, `mss` the segment size.
    ///
    /// A sample counts once per segment the ACK acknowledges, not once per ACK: a receiver
    /// that gets TSO super-segments (mptun over TUN with offload) or coalesces (GRO) sends
    /// one ACK per 64 KB, so a round of a 200 kB window had 3 ACKs, never the
    /// [`N_RTT_SAMPLE`] an RTT rise needs, and slow start overshot into a deep queue as if
    /// HyStart++ were off.
    ///
    /// Besides RFC 9406's delay rule, Linux's ACK-train rule: within a round, ACKs that
    /// keep arriving at most [`ACK_TRAIN_DELTA`] apart for longer than half the lowest RTT
    /// mean the round's data took that long to drain through the bottleneck, so the window
    /// (`cwnd`, at least [`ACK_TRAIN_LOW_WINDOW`] segments) has reached about half the
    /// path's bandwidth-delay product and the next doubling fills it: congestion avoidance
    /// begins at once (why this rule: the module documentation). Only on paths whose lowest
    /// RTT is at least [`MIN_RTT_THRESH`] (4 ms): below that the hosts' scheduling and
    /// batching (TSO, GRO, a driver's wakeups) space the ACKs more than the path does, and
    /// an early exit leaves a Reno-style increase of one segment per RTT to fill a
    /// multi-gigabit path.
    pub fn on_ack(
        &mut self,
        now: Instant,
        acked: u32,
        rtt: Option<Duration>,
        in_flight: u32,
        mss: u32,
        cwnd: u32,
    ) -> Phase {
        let acked64 = u64::from(acked);
        if let Some(r) = rtt {
            self.min_rtt = Some(self.min_rtt.map_or(r, |m| m.min(r)));
        }
        // ACK train of the current round
        if let (Some(start), Some(last), Some(min)) =
            (self.round_start, self.train_last, self.min_rtt)
        {
            if now.saturating_duration_since(last) <= ACK_TRAIN_DELTA {
                self.train_last = Some(now);
                if min >= MIN_RTT_THRESH
                    && now.saturating_duration_since(start) > min / 2
                    && cwnd >= ACK_TRAIN_LOW_WINDOW.saturating_mul(mss.max(1))
                {
                    return self.exit();
                }
            } else {
                self.train_last = None;
            }
        }
        if let Some(r) = rtt {
            self.current_round_min = Some(self.current_round_min.map_or(r, |m| m.min(r)));
            let segments = (acked / mss.max(1)).max(1);
            self.samples = self.samples.saturating_add(segments);
        }
        if self.samples >= N_RTT_SAMPLE {
            if let Some(current) = self.current_round_min {
                match self.css {
                    None => {
                        if let Some(last) = self.last_round_min {
                            if current >= last + rise_threshold(last) {
                                self.css = Some(Css {
                                    baseline: current,
                                    rounds: 0,
                                    fresh: true,
                                });
                            }
                        }
                    }
                    // the RTT came back down: the rise was spurious, resume slow start
                    Some(css) if current < css.baseline => self.css = None,
                    // it rose again by as much: the queue is real, stop growing fast now
                    // (an addition to RFC 9406, see the module documentation)
                    Some(css) if current >= css.baseline + rise_threshold(css.baseline) => {
                        return self.exit();
                    }
                    Some(_) => {}
                }
            }
        }
        let round_over = match self.round_left {
            None => true,
            Some(left) if left <= acked64 => true,
            Some(left) => {
                self.round_left = Some(left - acked64);
                false
            }
        };
        if round_over {
            let first = self.round_left.is_none();
            self.round_start = Some(now);
            self.train_last = Some(now);
            // the next round ends once what is outstanding now has been acknowledged
            self.round_left = Some(u64::from(in_flight).saturating_sub(acked64).max(1));
            self.start_round();
            if let Some(css) = self.css.as_mut() {
                if css.fresh {
                    css.fresh = false;
                } else if !first {
                    css.rounds += 1;
                    if css.rounds >= CSS_ROUNDS {
                        return self.exit();
                    }
                }
            }
        }
        if self.css.is_some() {
            Phase::Conservative
        } else {
            Phase::SlowStart
        }
    }

    fn start_round(&mut self) {
        if self.current_round_min.is_some() {
            self.last_round_min = self.current_round_min;
        }
        self.current_round_min = None;
        self.samples = 0;
    }

    /// Slow start is over: count it and forget the round state (the caller sets ssthresh,
    /// after which it never asks again).
    fn exit(&mut self) -> Phase {
        let exits = self.exits.saturating_add(1);
        *self = HyStart {
            exits,
            ..HyStart::default()
        };
        Phase::Exit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;
    /// Every ACK of these tests at the same instant: no ACK train grows (see the ACK-train
    /// tests for those).
    const T0: Instant = Instant::from_millis(1000);
    const CWND: u32 = 100 * MSS;

    /// A first ACK (no RTT sample) that starts the first round of `n` ACKs.
    fn prime(n: u32) -> HyStart {
        let mut h = HyStart::default();
        assert_eq!(
            h.on_ack(T0, MSS, None, (n + 1) * MSS, MSS, CWND),
            Phase::SlowStart
        );
        h
    }

    /// One round: `n` ACKs of one MSS each with RTT `rtt_ms`; the last one ends the round
    /// with `n + 1` MSS outstanding, so the next round is `n` ACKs again.
    fn round(h: &mut HyStart, n: u32, rtt_ms: u64) -> Vec<Phase> {
        (0..n)
            .map(|_| {
                h.on_ack(
                    T0,
                    MSS,
                    Some(Duration::from_millis(rtt_ms)),
                    (n + 1) * MSS,
                    MSS,
                    CWND,
                )
            })
            .collect()
    }

    #[test]
    fn a_flat_rtt_stays_in_slow_start() {
        let mut h = prime(16);
        for _ in 0..10 {
            assert!(round(&mut h, 16, 50).iter().all(|p| *p == Phase::SlowStart));
        }
        assert_eq!(h.exits, 0);
    }

    #[test]
    fn a_rising_rtt_enters_css_then_exits_after_css_rounds() {
        let mut h = prime(16);
        round(&mut h, 16, 50);
        round(&mut h, 16, 50);
        // 50 ms / 8 = 6.25 ms threshold: 57 ms is a rise
        let phases = round(&mut h, 16, 57);
        // the eighth sample of the round shows the rise
        assert_eq!(phases[..7], [Phase::SlowStart; 7]);
        assert!(phases[7..].iter().all(|p| *p == Phase::Conservative));
        let mut exit_after = None;
        for r in 0..CSS_ROUNDS + 1 {
            let p = round(&mut h, 16, 57);
            if p.contains(&Phase::Exit) {
                exit_after = Some(r);
                break;
            }
        }
        assert_eq!(exit_after, Some(CSS_ROUNDS - 1));
        assert_eq!(h.exits, 1);
        assert!(!h.in_css());
    }

    /// A second rise by the threshold above the baseline during CSS ends it at once.
    #[test]
    fn a_further_rise_during_css_enters_congestion_avoidance_at_once() {
        let mut h = prime(16);
        round(&mut h, 16, 50);
        assert!(round(&mut h, 16, 60).contains(&Phase::Conservative));
        // baseline 60 ms, threshold 7.5 ms: 66 ms stays in CSS, 68 ms ends it
        assert!(round(&mut h, 16, 66)
            .iter()
            .all(|p| *p == Phase::Conservative));
        let phases = round(&mut h, 16, 68);
        assert_eq!(phases[..7], [Phase::Conservative; 7]);
        assert_eq!(phases[7], Phase::Exit);
        assert_eq!(h.exits, 1);
        assert!(!h.in_css());
    }

    /// Stretch ACKs (one per 16 segments here): each sample counts for the segments it
    /// acknowledges, so a rise is seen within one round of two ACKs.
    #[test]
    fn stretch_acks_count_a_sample_per_segment() {
        let mut h = HyStart::default();
        let big = 16 * MSS;
        let ms = |v| Some(Duration::from_millis(v));
        h.on_ack(T0, big, None, 3 * big, MSS, CWND);
        // a round of two stretch ACKs at 50 ms, then one at 60 ms: the rise counts
        assert_eq!(
            h.on_ack(T0, big, ms(50), 3 * big, MSS, CWND),
            Phase::SlowStart
        );
        assert_eq!(
            h.on_ack(T0, big, ms(50), 3 * big, MSS, CWND),
            Phase::SlowStart
        );
        assert_eq!(
            h.on_ack(T0, big, ms(60), 3 * big, MSS, CWND),
            Phase::Conservative
        );
    }

    /// ACKs 1 ms apart for longer than half the lowest RTT (50 ms): the train ends slow
    /// start at once, whatever the RTT does.
    #[test]
    fn an_ack_train_longer_than_half_the_rtt_ends_slow_start() {
        let mut h = HyStart::default();
        let rtt = Some(Duration::from_millis(50));
        // the first ACK begins round 1, with 100 segments outstanding
        assert_eq!(
            h.on_ack(T0, MSS, rtt, 101 * MSS, MSS, CWND),
            Phase::SlowStart
        );
        let mut exit_at = None;
        for i in 1..100u64 {
            let now = T0 + Duration::from_millis(i);
            if h.on_ack(now, MSS, rtt, 100 * MSS, MSS, CWND) == Phase::Exit {
                exit_at = Some(i);
                break;
            }
        }
        // more than 25 ms after the round began
        assert_eq!(exit_at, Some(26));
        assert_eq!(h.exits, 1);
    }

    /// A gap longer than ACK_TRAIN_DELTA breaks the train (bursts with idle time between
    /// them, or a sender held back); a small window, or a path under 4 ms, never exits by
    /// the train.
    #[test]
    fn a_broken_train_or_a_small_window_does_not_exit() {
        let rtt = Some(Duration::from_millis(50));
        let mut h = HyStart::default();
        h.on_ack(T0, MSS, rtt, 101 * MSS, MSS, CWND);
        for i in 1..60u64 {
            // 3 ms apart
            let now = T0 + Duration::from_millis(3 * i);
            assert_ne!(h.on_ack(now, MSS, rtt, 100 * MSS, MSS, CWND), Phase::Exit);
        }
        let mut h = HyStart::default();
        h.on_ack(T0, MSS, rtt, 101 * MSS, MSS, 15 * MSS);
        for i in 1..60u64 {
            let now = T0 + Duration::from_millis(i);
            assert_ne!(
                h.on_ack(now, MSS, rtt, 100 * MSS, MSS, 15 * MSS),
                Phase::Exit
            );
        }
        // 3 ms RTT, ACKs 0.1 ms apart for 5 ms (past half the RTT): no exit
        let rtt = Some(Duration::from_millis(3));
        let mut h = HyStart::default();
        h.on_ack(T0, MSS, rtt, 101 * MSS, MSS, CWND);
        for i in 1..50u64 {
            let now = T0 + Duration::from_micros(100 * i);
            assert_ne!(h.on_ack(now, MSS, rtt, 100 * MSS, MSS, CWND), Phase::Exit);
        }
    }

    #[test]
    fn a_rise_below_the_threshold_is_ignored() {
        let mut h = prime(16);
        round(&mut h, 16, 50);
        // 6 ms < 6.25 ms
        assert!(round(&mut h, 16, 56).iter().all(|p| *p == Phase::SlowStart));
    }

    #[test]
    fn the_threshold_is_clamped_between_4_and_16_ms() {
        // 2 ms RTT: threshold 4 ms, so 5 ms is no rise, 6 ms is
        let mut h = prime(16);
        round(&mut h, 16, 2);
        assert!(round(&mut h, 16, 5).iter().all(|p| *p == Phase::SlowStart));
        let mut h = prime(16);
        round(&mut h, 16, 2);
        assert!(round(&mut h, 16, 6).contains(&Phase::Conservative));
        // 400 ms RTT: threshold 16 ms, not 50 ms
        let mut h = prime(16);
        round(&mut h, 16, 400);
        assert!(round(&mut h, 16, 417).contains(&Phase::Conservative));
    }

    #[test]
    fn fewer_than_n_rtt_sample_samples_never_trigger() {
        let mut h = prime(7);
        round(&mut h, 7, 50);
        assert!(round(&mut h, 7, 200).iter().all(|p| *p == Phase::SlowStart));
    }

    #[test]
    fn an_rtt_back_below_the_baseline_resumes_slow_start() {
        let mut h = prime(16);
        round(&mut h, 16, 50);
        assert!(round(&mut h, 16, 60).contains(&Phase::Conservative));
        // a whole round below the 60 ms baseline
        round(&mut h, 16, 51);
        assert!(!h.in_css());
        let p = h.on_ack(
            T0,
            MSS,
            Some(Duration::from_millis(51)),
            16 * MSS,
            MSS,
            CWND,
        );
        assert_eq!(p, Phase::SlowStart);
        assert_eq!(h.exits, 0);
    }
}
