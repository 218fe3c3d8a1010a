//! DTMF in its three forms and the rule that one key press is one digit.
//!
//! Meet first: [`Rfc4733Receiver`] (telephone-event packets → digits, with
//! end-packet de-duplication, retransmitted ends and long-press segments),
//! [`Rfc4733Sender`] (builds the packets of one key press, including the
//! three end retransmissions), [`ToneDetector`] (Goertzel detector for
//! in-band tones on decoded audio, with energy, twist, peak-purity and
//! duration checks) and [`DtmfCombiner`] (merges reports of the same press
//! arriving by RFC 4733, in-band and SIP INFO).
//!
//! Not here: parsing SIP INFO bodies (the SIP layer does; the room gets
//! `handle_dtmf_info`).

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Digit for an RFC 4733 event code (0–15).
pub fn event_to_digit(code: u8) -> Option<char> {
    match code {
        0..=9 => Some(char::from(b'0' + code)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + code - 12)),
        _ => None,
    }
}

/// RFC 4733 event code for a digit (`a`–`d` accepted).
pub fn digit_to_event(digit: char) -> Result<u8> {
    match digit {
        '0'..='9' => Ok(digit as u8 - b'0'),
        '*' => Ok(10),
        '#' => Ok(11),
        'A'..='D' => Ok(digit as u8 - b'A' + 12),
        'a'..='d' => Ok(digit as u8 - b'a' + 12),
        _ => Err(Error::InvalidDigit(digit)),
    }
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code.
    pub event: u8,
    /// E bit: last packet(s) of the event.
    pub end: bool,
    /// Volume in −dBm0 (0–63).
    pub volume: u8,
    /// Duration so far in RTP clock units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4 bytes of a payload.
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let b = payload.get(..4).ok_or(Error::Truncated)?;
        Ok(Self {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The 4-byte wire form.
    pub fn to_bytes(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

#[derive(Debug, Clone, Copy)]
struct Current {
    ts: u32,
    event: u8,
    ended: bool,
    duration: u16,
}

/// Turns received telephone-event packets into one digit per key press.
#[derive(Debug, Default)]
pub struct Rfc4733Receiver {
    current: Option<Current>,
}

impl Rfc4733Receiver {
    /// A receiver with no event in progress.
    pub fn new() -> Self {
        Self::default()
    }

    /// Handles one packet (RTP timestamp and payload). Returns the digit
    /// when this packet starts a new key press.
    pub fn handle(&mut self, ts: u32, payload: &[u8]) -> Result<Option<char>> {
        let ev = TelephoneEvent::parse(payload)?;
        let Some(digit) = event_to_digit(ev.event) else {
            return Ok(None);
        };
        if let Some(c) = &mut self.current {
            if c.ts == ts && c.event == ev.event {
                // Update, or one of the retransmitted end packets.
                c.ended |= ev.end;
                c.duration = c.duration.max(ev.duration);
                return Ok(None);
            }
            // A long press is sent as segments of at most 0xFFFF units, each
            // with a new timestamp (RFC 4733 §2.5.1.3); the previous segment
            // has no E bit.
            let continues = c.event == ev.event
                && !c.ended
                && ts.wrapping_sub(c.ts) <= u32::from(c.duration) + 1600
                && ts.wrapping_sub(c.ts) >= u32::from(c.duration).saturating_sub(1600);
            if continues {
                *c = Current {
                    ts,
                    event: ev.event,
                    ended: ev.end,
                    duration: ev.duration,
                };
                return Ok(None);
            }
            // An old event's straggler (timestamp behind the current one).
            if (ts.wrapping_sub(c.ts) as i32) < 0 {
                return Ok(None);
            }
        }
        self.current = Some(Current {
            ts,
            event: ev.event,
            ended: ev.end,
            duration: ev.duration,
        });
        Ok(Some(digit))
    }
}

/// One packet to send: payload, marker bit and RTP timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// RFC 4733 payload.
    pub payload: [u8; 4],
    /// Set on the first packet of an event.
    pub marker: bool,
    /// RTP timestamp (the event start; per segment for long presses).
    pub timestamp: u32,
}

/// Builds the packets of one key press, one call per packetisation
/// interval.
#[derive(Debug, Clone)]
pub struct Rfc4733Sender {
    event: u8,
    volume: u8,
    seg_start: u32,
    seg_elapsed: u32,
    remaining: u32,
    ends_left: u8,
    first: bool,
}

impl Rfc4733Sender {
    /// A press of `digit` lasting `duration` clock units, starting at RTP
    /// timestamp `start_ts`.
    pub fn new(digit: char, duration: u32, start_ts: u32) -> Result<Self> {
        Ok(Self {
            event: digit_to_event(digit)?,
            volume: 10,
            seg_start: start_ts,
            seg_elapsed: 0,
            remaining: duration.max(1),
            ends_left: 3,
            first: true,
        })
    }

    /// Whether every packet (including the three ends) has been produced.
    pub fn is_done(&self) -> bool {
        self.ends_left == 0
    }

    /// The next packet after `step` more clock units of the press.
    pub fn next_packet(&mut self, step: u32) -> Option<EventPacket> {
        if self.ends_left == 0 {
            return None;
        }
        let marker = std::mem::take(&mut self.first);
        if self.remaining > 0 {
            let adv = step.min(self.remaining);
            if self.seg_elapsed + adv > 0xFFFF {
                // Start a new segment for long presses.
                self.seg_start = self.seg_start.wrapping_add(self.seg_elapsed);
                self.seg_elapsed = 0;
            }
            self.seg_elapsed += adv;
            self.remaining -= adv;
        }
        let end = self.remaining == 0;
        if end {
            self.ends_left -= 1;
        }
        let ev = TelephoneEvent {
            event: self.event,
            end,
            volume: self.volume,
            duration: self.seg_elapsed as u16,
        };
        Some(EventPacket {
            payload: ev.to_bytes(),
            marker,
            timestamp: self.seg_start,
        })
    }
}

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];
/// Goertzel block at 8 kHz: 106 samples (13.25 ms, ~75 Hz resolution).
const BLOCK: usize = 106;

/// Goertzel in-band DTMF detector on decoded audio.
///
/// Audio at 16 or 48 kHz is averaged down to 8 kHz first (a crude low-pass
/// that is enough for tones below 1.7 kHz). A digit is reported after two
/// consecutive valid blocks (≥ 26.5 ms; every tone of ≥ 40 ms has two) and
/// re-armed after two blocks without it, so a 40 ms pause separates digits.
#[derive(Debug, Clone)]
pub struct ToneDetector {
    decim: usize,
    inv_decim: f32,
    coeffs: [f32; 8],
    s1: [f32; 8],
    s2: [f32; 8],
    energy: f32,
    n: usize,
    acc: i32,
    acc_n: usize,
    candidate: Option<char>,
    hits: u8,
    misses: u8,
    reported: Option<char>,
}

impl ToneDetector {
    /// Mean square (per sample) below which a frame cannot hold a valid
    /// tone pair (two tones of amplitude 500, the detection minimum, give
    /// 250 000; some margin for the decimation filter):
    /// [`Self::process_frame`] uses it as a gate.
    pub const GATE_MEAN_SQUARE: i64 = 150_000;

    /// A detector for audio at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        let mut coeffs = [0f32; 8];
        for (c, f) in coeffs.iter_mut().zip(ROWS.iter().chain(COLS.iter())) {
            *c = 2.0 * (2.0 * std::f32::consts::PI * f / 8000.0).cos();
        }
        Self {
            decim: (rate as usize / 8000).max(1),
            inv_decim: 1.0 / (rate as usize / 8000).max(1) as f32,
            coeffs,
            s1: [0.0; 8],
            s2: [0.0; 8],
            energy: 0.0,
            n: 0,
            acc: 0,
            acc_n: 0,
            candidate: None,
            hits: 0,
            misses: 0,
            reported: None,
        }
    }

    /// Feeds one frame whose mean square the caller already knows (the
    /// room computes it for talk detection). Quiet frames skip the filters
    /// entirely, which is what makes the detector affordable on every
    /// participant.
    pub fn process_frame(&mut self, pcm: &[i16], mean_square: i64) -> Option<char> {
        if mean_square < Self::GATE_MEAN_SQUARE {
            self.reset_block();
            self.block_result(None);
            return None;
        }
        self.process(pcm)
    }

    /// Feeds audio; returns a digit when one is confirmed.
    pub fn process(&mut self, pcm: &[i16]) -> Option<char> {
        let mut found = None;
        if self.decim == 1 {
            // 8 kHz: no decimation, convert block by block.
            let mut buf = [0f32; BLOCK];
            let mut rest = pcm;
            while !rest.is_empty() {
                let take = (BLOCK - self.n).min(rest.len());
                for (b, &s) in buf[..take].iter_mut().zip(&rest[..take]) {
                    *b = f32::from(s);
                }
                self.run(&buf[..take]);
                rest = &rest[take..];
                if self.n == BLOCK {
                    let d = self.evaluate();
                    self.reset_block();
                    if let Some(r) = self.block_result(d) {
                        found = Some(r);
                    }
                }
            }
            return found;
        }
        // Decimated samples are staged and run through the eight filters
        // in one pass (the lanes vectorise).
        let mut buf = [0f32; BLOCK];
        let mut m = 0;
        for &s in pcm {
            self.acc += i32::from(s);
            self.acc_n += 1;
            if self.acc_n < self.decim {
                continue;
            }
            buf[m] = self.acc as f32 * self.inv_decim;
            m += 1;
            self.acc = 0;
            self.acc_n = 0;
            if self.n + m == BLOCK {
                self.run(&buf[..m]);
                m = 0;
                let d = self.evaluate();
                self.reset_block();
                if let Some(r) = self.block_result(d) {
                    found = Some(r);
                }
            }
        }
        if m > 0 {
            self.run(&buf[..m]);
        }
        found
    }

    #[inline]
    // One index over three lane arrays is what lets this vectorise.
    #[allow(clippy::needless_range_loop)]
    fn run(&mut self, xs: &[f32]) {
        let c = self.coeffs;
        let mut s1 = self.s1;
        let mut s2 = self.s2;
        let mut e = self.energy;
        for &x in xs {
            e += x * x;
            for j in 0..8 {
                let s0 = x + c[j] * s1[j] - s2[j];
                s2[j] = s1[j];
                s1[j] = s0;
            }
        }
        self.s1 = s1;
        self.s2 = s2;
        self.energy = e;
        self.n += xs.len();
    }

    fn reset_block(&mut self) {
        self.s1 = [0.0; 8];
        self.s2 = [0.0; 8];
        self.energy = 0.0;
        self.n = 0;
    }

    fn evaluate(&self) -> Option<char> {
        let p: [f32; 8] = std::array::from_fn(|i| {
            self.s1[i] * self.s1[i] + self.s2[i] * self.s2[i]
                - self.coeffs[i] * self.s1[i] * self.s2[i]
        });
        let best = |r: &[f32]| {
            let (i, &v) = r.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1))?;
            Some((i, v))
        };
        let (ri, rp) = best(&p[..4])?;
        let (ci, cp) = best(&p[4..])?;
        let n = BLOCK as f32;
        // Minimum level: each tone around −36 dBov (amplitude ~500).
        let min_tone = (500.0 * n / 2.0) * (500.0 * n / 2.0);
        if rp < min_tone || cp < min_tone {
            return None;
        }
        // Twist: columns may be up to 8 dB weaker (normal) or 4 dB
        // stronger (reverse) than rows.
        if cp < rp * 0.158 || rp < cp * 0.398 {
            return None;
        }
        // Peak purity: no other row/column within 8 dB.
        for (i, &v) in p[..4].iter().enumerate() {
            if i != ri && v > rp * 0.158 {
                return None;
            }
        }
        for (i, &v) in p[4..].iter().enumerate() {
            if i != ci && v > cp * 0.158 {
                return None;
            }
        }
        // The two tones must carry most of the block's energy (speech and
        // music spread theirs): pure pair gives (rp+cp)/(n·E) ≈ 0.5.
        if (rp + cp) / (n * self.energy.max(1.0)) < 0.35 {
            return None;
        }
        Some(KEYS[ri][ci])
    }

    fn block_result(&mut self, d: Option<char>) -> Option<char> {
        if d.is_some() && d == self.candidate {
            self.hits = self.hits.saturating_add(1);
        } else {
            self.candidate = d;
            self.hits = u8::from(d.is_some());
        }
        if d.is_none() || d != self.reported {
            self.misses = self.misses.saturating_add(1);
            if self.misses >= 2 {
                self.reported = None;
            }
        } else {
            self.misses = 0;
        }
        if self.hits >= 2 && self.reported.is_none() {
            self.reported = d;
            self.misses = 0;
            return d;
        }
        None
    }
}

/// Where a digit report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// RFC 4733 telephone-event.
    Rfc4733,
    /// Goertzel detection on the decoded audio.
    InBand,
    /// SIP INFO (`application/dtmf-relay` or `application/dtmf`).
    SipInfo,
}

impl DtmfSource {
    fn bit(self) -> u8 {
        match self {
            DtmfSource::Rfc4733 => 1,
            DtmfSource::InBand => 2,
            DtmfSource::SipInfo => 4,
        }
    }
}

/// Merges digit reports so that one key press is one digit, whichever
/// forms arrive.
///
/// A report is a duplicate when the most recent press of the same digit,
/// less than `window` ago, was not yet reported by this source. So `00`
/// pressed twice quickly with both RFC 4733 and in-band tones gives two
/// digits (each source reports twice), while one press seen both ways
/// gives one.
#[derive(Debug, Clone)]
pub struct DtmfCombiner {
    window: Duration,
    last: Option<(Instant, char, u8)>,
}

impl Default for DtmfCombiner {
    fn default() -> Self {
        Self::new(Duration::from_millis(1000))
    }
}

impl DtmfCombiner {
    /// A combiner merging reports less than `window` apart.
    pub fn new(window: Duration) -> Self {
        Self { window, last: None }
    }

    /// Records a report; `true` when it is a new key press to act on.
    pub fn report(&mut self, now: Instant, digit: char, source: DtmfSource) -> bool {
        if let Some((t, d, mask)) = &mut self.last
            && *d == digit
            && now.saturating_duration_since(*t) < self.window
            && *mask & source.bit() == 0
        {
            *mask |= source.bit();
            return false;
        }
        self.last = Some((now, digit, source.bit()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pkt(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    #[test]
    fn one_press_one_digit_despite_updates_and_three_ends() {
        let mut r = Rfc4733Receiver::new();
        assert_eq!(r.handle(1000, &pkt(5, false, 160)).unwrap(), Some('5'));
        assert_eq!(r.handle(1000, &pkt(5, false, 320)).unwrap(), None);
        for _ in 0..3 {
            assert_eq!(r.handle(1000, &pkt(5, true, 800)).unwrap(), None);
        }
        // Same key again: a new timestamp.
        assert_eq!(r.handle(3000, &pkt(5, false, 160)).unwrap(), Some('5'));
    }

    #[test]
    fn lost_start_still_gives_the_digit_from_the_end() {
        let mut r = Rfc4733Receiver::new();
        assert_eq!(r.handle(500, &pkt(11, true, 800)).unwrap(), Some('#'));
        assert_eq!(r.handle(500, &pkt(11, true, 800)).unwrap(), None);
    }

    #[test]
    fn long_press_segments_are_one_digit() {
        let mut s = Rfc4733Sender::new('0', 200_000, 10).unwrap();
        let mut r = Rfc4733Receiver::new();
        let mut digits = 0;
        let mut markers = 0;
        let mut ends = 0;
        while let Some(p) = s.next_packet(160) {
            markers += usize::from(p.marker);
            ends += usize::from(TelephoneEvent::parse(&p.payload).unwrap().end);
            if r.handle(p.timestamp, &p.payload).unwrap().is_some() {
                digits += 1;
            }
        }
        assert_eq!((digits, markers, ends), (1, 1, 3));
        assert!(s.is_done());
    }

    #[test]
    fn sender_packets() {
        let mut s = Rfc4733Sender::new('#', 640, 7).unwrap();
        let p: Vec<_> = std::iter::from_fn(|| s.next_packet(160)).collect();
        assert_eq!(p.len(), 4 + 2);
        assert!(p[0].marker && !p[1].marker);
        let evs: Vec<_> = p
            .iter()
            .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
            .collect();
        assert_eq!(evs[0].duration, 160);
        assert!(evs[3].end && evs[4].end && evs[5].end && !evs[2].end);
        assert!(evs.iter().all(|e| e.event == 11));
        assert!(p.iter().all(|p| p.timestamp == 7));
        assert!(Rfc4733Sender::new('x', 1, 0).is_err());
    }

    fn dtmf_audio(rate: u32, digit: char, ms: usize, amp: f64) -> Vec<i16> {
        let (ri, ci) = (0..16)
            .map(|k| (k / 4, k % 4))
            .find(|&(r, c)| KEYS[r][c] == digit)
            .unwrap();
        let n = rate as usize * ms / 1000;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let v = amp
                    * ((2.0 * std::f64::consts::PI * f64::from(ROWS[ri]) * t).sin()
                        + (2.0 * std::f64::consts::PI * f64::from(COLS[ci]) * t).sin());
                v as i16
            })
            .collect()
    }

    fn detect_all(rate: u32, audio: &[i16]) -> String {
        let mut d = ToneDetector::new(rate);
        let frame = rate as usize / 50;
        let mut s = String::new();
        for f in audio.chunks(frame) {
            let ms = f.iter().map(|&x| i64::from(x) * i64::from(x)).sum::<i64>() / f.len() as i64;
            if let Some(c) = d.process_frame(f, ms) {
                s.push(c);
            }
        }
        s
    }

    #[test]
    fn detects_every_key_at_every_rate() {
        for rate in [8000, 16000, 48000] {
            for key in "0123456789*#ABCD".chars() {
                let mut a = vec![0i16; rate as usize / 10];
                a.extend(dtmf_audio(rate, key, 60, 5000.0));
                a.extend(vec![0i16; rate as usize / 10]);
                assert_eq!(detect_all(rate, &a), key.to_string(), "{key} at {rate}");
            }
        }
    }

    #[test]
    fn forty_ms_tones_with_forty_ms_pauses_are_separate() {
        let mut a = Vec::new();
        for key in "1122".chars() {
            a.extend(dtmf_audio(8000, key, 40, 4000.0));
            a.extend(vec![0i16; 320]);
        }
        assert_eq!(detect_all(8000, &a), "1122");
    }

    #[test]
    fn long_tone_is_one_digit() {
        let a = dtmf_audio(8000, '7', 2000, 4000.0);
        assert_eq!(detect_all(8000, &a), "7");
    }

    #[test]
    fn speech_like_and_single_tones_are_rejected() {
        // A single 697 Hz tone, a chord of 3 sines and noise.
        let single: Vec<i16> = (0..8000)
            .map(|i| {
                (6000.0 * (2.0 * std::f64::consts::PI * 697.0 * f64::from(i) / 8000.0).sin()) as i16
            })
            .collect();
        assert_eq!(detect_all(8000, &single), "");
        let chord: Vec<i16> = (0..8000)
            .map(|i| {
                let t = f64::from(i) / 8000.0;
                (3000.0
                    * ((2.0 * std::f64::consts::PI * 200.0 * t).sin()
                        + (2.0 * std::f64::consts::PI * 700.0 * t).sin()
                        + (2.0 * std::f64::consts::PI * 1210.0 * t).sin()
                        + (2.0 * std::f64::consts::PI * 2500.0 * t).sin())) as i16
            })
            .collect();
        assert_eq!(detect_all(8000, &chord), "");
        let mut x: u32 = 9;
        let noise: Vec<i16> = (0..8000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as i16) / 4
            })
            .collect();
        assert_eq!(detect_all(8000, &noise), "");
        // Too much twist: column 12 dB weaker than row.
        let twisted: Vec<i16> = (0..8000)
            .map(|i| {
                let t = f64::from(i) / 8000.0;
                (8000.0 * (2.0 * std::f64::consts::PI * 697.0 * t).sin()
                    + 2000.0 * (2.0 * std::f64::consts::PI * 1209.0 * t).sin())
                    as i16
            })
            .collect();
        assert_eq!(detect_all(8000, &twisted), "");
    }

    #[test]
    fn combiner_merges_forms_but_keeps_repeats() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = DtmfCombiner::default();
        // Press 1: RFC 4733, then in-band 40 ms later, then INFO.
        assert!(c.report(t0, '0', DtmfSource::Rfc4733));
        assert!(!c.report(t0 + ms(40), '0', DtmfSource::InBand));
        assert!(!c.report(t0 + ms(90), '0', DtmfSource::SipInfo));
        // Press 2 of the same key 250 ms later.
        assert!(c.report(t0 + ms(250), '0', DtmfSource::Rfc4733));
        assert!(!c.report(t0 + ms(290), '0', DtmfSource::InBand));
        // Only in-band for a different key.
        assert!(c.report(t0 + ms(600), '5', DtmfSource::InBand));
        // Same source twice is two presses.
        assert!(c.report(t0 + ms(700), '5', DtmfSource::InBand));
        // Another form far too late is a new press.
        assert!(c.report(t0 + ms(3000), '5', DtmfSource::SipInfo));
    }

    proptest! {
        #[test]
        fn event_parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..8), ts in any::<u32>()) {
            let mut r = Rfc4733Receiver::new();
            let _ = r.handle(ts, &data);
        }

        #[test]
        fn event_round_trip(event in any::<u8>(), end in any::<bool>(), volume in 0u8..64, duration in any::<u16>()) {
            let e = TelephoneEvent { event, end, volume, duration };
            prop_assert_eq!(TelephoneEvent::parse(&e.to_bytes()).unwrap(), e);
        }

        #[test]
        fn sender_receiver_one_digit(d in prop::sample::select("0123456789*#ABCD".chars().collect::<Vec<_>>()), dur in 1u32..300_000, step in 80u32..1000) {
            let mut s = Rfc4733Sender::new(d, dur, 1).unwrap();
            let mut r = Rfc4733Receiver::new();
            let mut got = Vec::new();
            while let Some(p) = s.next_packet(step) {
                if let Some(x) = r.handle(p.timestamp, &p.payload).unwrap() { got.push(x); }
            }
            prop_assert_eq!(got, vec![d]);
        }
    }
}
