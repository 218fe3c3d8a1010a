//! Receive-side accounting for one RTP stream, and the distributions that
//! the report prints.
//!
//! Meet first: [`StreamStats`] (packets, unique packets, loss from
//! extended sequence numbers, duplicates and reordering, RFC 3550 A.8
//! interarrival jitter, the longest silence between two packets) and its
//! [`Counters`] snapshot, which lets a run subtract the join phase and
//! measure only its steady window; [`Distribution`] (count, mean, p50, p90,
//! p99, max) built from raw samples.
//!
//! Unlike the server's `ReceiveStats`, a change of SSRC or a sequence jump
//! here starts a new *segment* and keeps the totals: a load generator must
//! not forget the packets it lost before the sender restarted its stream.
//! Arrival times are arguments ([`Nanos`]); nothing reads a clock.

use serde::Serialize;

use crate::marker::Nanos;

/// A sequence jump this large (either way) is a restarted stream.
const MAX_JUMP: i32 = 3_000;
/// Sequence numbers remembered for duplicate detection.
const WINDOW: u64 = 128;

/// Totals that can be subtracted from a later snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Packets the sequence numbers say were sent.
    pub expected: u64,
    /// Distinct packets received.
    pub received: u64,
    /// Copies of packets already received.
    pub duplicates: u64,
    /// Packets that arrived after a later one.
    pub reordered: u64,
}

impl Counters {
    /// `self − earlier`, field by field.
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            expected: self.expected.saturating_sub(earlier.expected),
            received: self.received.saturating_sub(earlier.received),
            duplicates: self.duplicates.saturating_sub(earlier.duplicates),
            reordered: self.reordered.saturating_sub(earlier.reordered),
        }
    }

    /// Packets never received.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    /// Lost / expected (0 when nothing was expected).
    pub fn loss_fraction(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            self.lost() as f64 / self.expected as f64
        }
    }

    pub fn add(&mut self, other: &Counters) {
        self.expected += other.expected;
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
    }
}

/// One RTP stream as received.
#[derive(Debug, Clone)]
pub struct StreamStats {
    clock_rate: f64,
    ssrc: Option<u32>,
    /// Extended sequence number of the segment's first and highest packet.
    base: u64,
    max: u64,
    /// Bit k set: packet `max − k` was received.
    seen: u128,
    /// Expected packets of closed segments.
    closed_expected: u64,
    counters: Counters,
    /// Unwrapped RTP timestamp of the last in-order packet.
    last_ts: u32,
    ts_ext: i64,
    transit: Option<f64>,
    jitter: f64,
    last_arrival: Option<Nanos>,
    max_gap: u64,
}

impl StreamStats {
    /// A stream whose RTP clock runs at `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate: f64::from(clock_rate),
            ssrc: None,
            base: 0,
            max: 0,
            seen: 0,
            closed_expected: 0,
            counters: Counters::default(),
            last_ts: 0,
            ts_ext: 0,
            transit: None,
            jitter: 0.0,
            last_arrival: None,
            max_gap: 0,
        }
    }

    fn start_segment(&mut self, ssrc: u32, seq: u16, ts: u32) {
        if self.ssrc.is_some() {
            self.closed_expected += self.max + 1 - self.base;
        }
        self.ssrc = Some(ssrc);
        // Offset so a packet reordered before the first one still has a
        // positive extended number.
        self.base = (1 << 16) + u64::from(seq);
        self.max = self.base;
        self.seen = 1;
        self.last_ts = ts;
        self.ts_ext = i64::from(ts);
        self.transit = None;
    }

    /// Accounts for one packet that arrived at `arrival`.
    pub fn handle(&mut self, arrival: Nanos, ssrc: u32, seq: u16, timestamp: u32) {
        if let Some(prev) = self.last_arrival {
            self.max_gap = self.max_gap.max(arrival.saturating_sub(prev));
        }
        self.last_arrival = Some(arrival);

        if self.ssrc != Some(ssrc) {
            self.start_segment(ssrc, seq, timestamp);
            self.counters.received += 1;
            self.update_jitter(arrival, timestamp);
            return;
        }
        let delta = i32::from(seq.wrapping_sub(self.max as u16) as i16);
        if !(-MAX_JUMP..=MAX_JUMP).contains(&delta) {
            self.start_segment(ssrc, seq, timestamp);
            self.counters.received += 1;
            self.update_jitter(arrival, timestamp);
            return;
        }
        if delta > 0 {
            let d = delta as u64;
            self.seen = if d >= WINDOW { 0 } else { self.seen << d };
            self.seen |= 1;
            self.max += d;
            self.counters.received += 1;
            self.update_jitter(arrival, timestamp);
        } else {
            // `max` starts 65,536 above the segment's first sequence
            // number and `back` is at most MAX_JUMP: no underflow.
            let back = (-delta) as u64;
            let bit = 1u128 << back.min(WINDOW - 1);
            if back >= WINDOW {
                // Too old to tell: count it as a duplicate, not a gain.
                self.counters.duplicates += 1;
            } else if self.seen & bit != 0 {
                self.counters.duplicates += 1;
            } else {
                if self.max - back < self.base {
                    // Sent before the first packet we saw: it moves the
                    // start of the segment back.
                    self.base = self.max - back;
                }
                self.seen |= bit;
                self.counters.received += 1;
                self.counters.reordered += 1;
            }
        }
    }

    fn update_jitter(&mut self, arrival: Nanos, timestamp: u32) {
        let step = i64::from(timestamp.wrapping_sub(self.last_ts) as i32);
        self.ts_ext += step;
        self.last_ts = timestamp;
        let arrival_units = arrival as f64 * self.clock_rate / 1e9;
        let transit = arrival_units - self.ts_ext as f64;
        if let Some(prev) = self.transit {
            let d = (transit - prev).abs();
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }

    /// The totals so far.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.expected = self.closed_expected
            + if self.ssrc.is_some() {
                self.max + 1 - self.base
            } else {
                0
            };
        c
    }

    /// RFC 3550 interarrival jitter, in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / self.clock_rate
    }

    /// Longest time between two arrivals, in nanoseconds.
    pub fn max_gap(&self) -> u64 {
        self.max_gap
    }

    /// Forgets the longest gap (call when the measured window starts).
    pub fn reset_max_gap(&mut self) {
        self.max_gap = 0;
    }

    /// The SSRC of the current segment.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }
}

/// Summary of a set of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Distribution {
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Distribution {
    /// Summarises `values` (sorted in place). Empty input gives zeros.
    pub fn of(values: &mut [f64]) -> Distribution {
        if values.is_empty() {
            return Distribution::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        // Nearest-rank percentile.
        let pct = |p: f64| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Distribution {
            count: n,
            mean: values.iter().sum::<f64>() / n as f64,
            min: values[0],
            p50: pct(0.50),
            p90: pct(0.90),
            p99: pct(0.99),
            max: values[n - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    /// A sender at 8 kHz, 20 ms packets.
    fn feed(s: &mut StreamStats, seqs: &[u16], ssrc: u32) {
        for &seq in seqs {
            let k = u64::from(seq.wrapping_sub(seqs[0]));
            s.handle(
                1_000 * MS + k * 20 * MS,
                ssrc,
                seq,
                (k as u32).wrapping_mul(160),
            );
        }
    }

    #[test]
    fn clean_stream_has_no_loss_and_no_jitter() {
        let mut s = StreamStats::new(8_000);
        let seqs: Vec<u16> = (0..500).collect();
        feed(&mut s, &seqs, 1);
        let c = s.counters();
        assert_eq!((c.expected, c.received, c.lost()), (500, 500, 0));
        assert!(s.jitter_ms() < 1e-9);
        assert_eq!(s.max_gap(), 20 * MS);
    }

    #[test]
    fn gaps_are_lost_and_wrap_is_seamless() {
        let mut s = StreamStats::new(8_000);
        let seqs: Vec<u16> = (65_500u16..=65_535)
            .chain(0..100)
            .filter(|q| q % 10 != 3)
            .collect();
        feed(&mut s, &seqs, 7);
        let c = s.counters();
        assert_eq!(c.expected, 136);
        assert_eq!(c.lost(), 136 - seqs.len() as u64);
        assert!((c.loss_fraction() - c.lost() as f64 / 136.0).abs() < 1e-12);
    }

    #[test]
    fn reordered_packets_are_not_lost_and_duplicates_do_not_hide_loss() {
        let mut s = StreamStats::new(8_000);
        for (i, seq) in [10u16, 12, 11, 13, 13, 15, 14, 14].iter().enumerate() {
            s.handle(i as u64 * 20 * MS, 3, *seq, u32::from(*seq) * 160);
        }
        let c = s.counters();
        assert_eq!(c.expected, 6);
        assert_eq!(c.received, 6);
        assert_eq!(c.duplicates, 2);
        assert_eq!(c.reordered, 2);
        // One lost (16 never comes but 17 does).
        s.handle(200 * MS, 3, 17, 17 * 160);
        assert_eq!(s.counters().lost(), 1);
    }

    #[test]
    fn a_packet_from_before_the_first_one_moves_the_base() {
        let mut s = StreamStats::new(8_000);
        s.handle(0, 1, 100, 0);
        s.handle(MS, 1, 99, 0);
        let c = s.counters();
        assert_eq!((c.expected, c.received, c.lost()), (2, 2, 0));
    }

    #[test]
    fn new_ssrc_keeps_earlier_totals() {
        let mut s = StreamStats::new(8_000);
        let a: Vec<u16> = (0..50).filter(|q| *q != 20).collect();
        feed(&mut s, &a, 1);
        let b: Vec<u16> = (9_000..9_030).collect();
        feed(&mut s, &b, 2);
        let c = s.counters();
        assert_eq!(c.expected, 50 + 30);
        assert_eq!(c.lost(), 1);
        // A wild jump on the same SSRC is a restart too.
        s.handle(10_000 * MS, 2, 40_000, 0);
        assert_eq!(s.counters().expected, 81);
    }

    #[test]
    fn jitter_follows_rfc3550_on_alternating_delays() {
        // Every other packet 4 ms late: |D| = 4 ms each time, so J
        // converges to 4 ms (32 timestamp units at 8 kHz).
        let mut s = StreamStats::new(8_000);
        for k in 0..2_000u64 {
            let late = if k % 2 == 1 { 4 * MS } else { 0 };
            s.handle(k * 20 * MS + late, 9, k as u16, (k as u32) * 160);
        }
        assert!((s.jitter_ms() - 4.0).abs() < 0.05, "{}", s.jitter_ms());
        // Opus clock: same answer in milliseconds.
        let mut o = StreamStats::new(48_000);
        for k in 0..2_000u64 {
            let late = if k % 2 == 1 { 4 * MS } else { 0 };
            o.handle(k * 20 * MS + late, 9, k as u16, (k as u32) * 960);
        }
        assert!((o.jitter_ms() - 4.0).abs() < 0.05, "{}", o.jitter_ms());
    }

    #[test]
    fn timestamp_wrap_does_not_spike_jitter() {
        let mut s = StreamStats::new(8_000);
        let start = u32::MAX - 800;
        for k in 0..100u64 {
            s.handle(k * 20 * MS, 1, k as u16, start.wrapping_add(k as u32 * 160));
        }
        assert!(s.jitter_ms() < 1e-6);
    }

    #[test]
    fn windows_subtract() {
        let mut s = StreamStats::new(8_000);
        feed(&mut s, &(0..100).filter(|q| *q != 5).collect::<Vec<_>>(), 1);
        let start = s.counters();
        s.handle(5_000 * MS, 1, 100, 16_000);
        s.handle(5_040 * MS, 1, 102, 16_320);
        let w = s.counters().since(&start);
        assert_eq!((w.expected, w.received, w.lost()), (3, 2, 1));
    }

    #[test]
    fn distribution_percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let d = Distribution::of(&mut v);
        assert_eq!(d.count, 100);
        assert_eq!(
            (d.min, d.p50, d.p90, d.p99, d.max),
            (1.0, 50.0, 90.0, 99.0, 100.0)
        );
        assert!((d.mean - 50.5).abs() < 1e-12);
        assert_eq!(Distribution::of(&mut []), Distribution::default());
        let one = Distribution::of(&mut [3.0]);
        assert_eq!((one.p50, one.p99), (3.0, 3.0));
    }
}
