//! RTP packets (RFC 3550) and the receive-side bookkeeping that goes with
//! them.
//!
//! Meet first: [`RtpPacket`] (a borrowed, zero-copy view of one datagram,
//! with CSRCs and the RFC 8285 header extension, including the RFC 6464
//! client-to-mixer audio level), [`RtpHeader`] plus [`write_rtp`] to build
//! one, and [`ReceiveStats`] (extended sequence numbers per RFC 3550 A.1,
//! interarrival jitter per A.8, loss counters and SSRC changes).
//!
//! Not here: which packets are accepted from which address (that is the
//! room's latching policy) and RTCP (see [`crate::rtcp`]).

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Size of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;

/// One-byte header-extension profile (RFC 8285 §4.2).
const EXT_ONE_BYTE: u16 = 0xBEDE;

/// A parsed RTP packet borrowing the datagram it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The fixed header and CSRC list.
    pub header: RtpHeader,
    /// Header extension: profile word and data (without the 4-byte preamble).
    pub extension: Option<(u16, &'a [u8])>,
    /// Payload with padding removed.
    pub payload: &'a [u8],
}

/// Fixed RTP header fields plus the CSRC list, stored inline so parsing
/// never allocates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtpHeader {
    /// M bit.
    pub marker: bool,
    /// 7-bit payload type.
    pub payload_type: u8,
    /// 16-bit sequence number.
    pub sequence: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Number of valid entries in `csrcs`.
    pub csrc_count: u8,
    /// Contributing sources; only the first `csrc_count` are meaningful.
    pub csrcs: [u32; 15],
}

impl RtpHeader {
    /// The contributing sources actually present.
    pub fn csrcs(&self) -> &[u32] {
        &self.csrcs[..usize::from(self.csrc_count)]
    }
}

/// Quick test used by rtcp-mux demultiplexing (RFC 5761 §4): payload types
/// 64–95 in the second byte are RTCP.
pub fn looks_like_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && (192..=223).contains(&datagram[1])
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram. Never panics; every inconsistency is an error.
    #[inline]
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        if buf.len() < RTP_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(Error::BadVersion(version));
        }
        let padding = buf[0] & 0x20 != 0;
        let has_ext = buf[0] & 0x10 != 0;
        let csrc_count = buf[0] & 0x0F;
        let mut header = RtpHeader {
            marker: buf[1] & 0x80 != 0,
            payload_type: buf[1] & 0x7F,
            sequence: u16::from_be_bytes([buf[2], buf[3]]),
            timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
            ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
            csrc_count,
            csrcs: [0; 15],
        };
        let mut pos = RTP_HEADER_LEN;
        for slot in header.csrcs.iter_mut().take(usize::from(csrc_count)) {
            let b = buf.get(pos..pos + 4).ok_or(Error::Truncated)?;
            *slot = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            pos += 4;
        }
        let mut extension = None;
        if has_ext {
            let b = buf.get(pos..pos + 4).ok_or(Error::Truncated)?;
            let profile = u16::from_be_bytes([b[0], b[1]]);
            let words = usize::from(u16::from_be_bytes([b[2], b[3]]));
            pos += 4;
            let data = buf.get(pos..pos + words * 4).ok_or(Error::Truncated)?;
            extension = Some((profile, data));
            pos += words * 4;
        }
        let mut end = buf.len();
        if padding {
            let pad = usize::from(buf[end - 1]);
            if pad == 0 || pos + pad > end {
                return Err(Error::Malformed("bad RTP padding"));
            }
            end -= pad;
        }
        Ok(RtpPacket {
            header,
            extension,
            payload: &buf[pos..end],
        })
    }

    /// Finds header-extension element `id` (RFC 8285, one- or two-byte form).
    pub fn extension_element(&self, id: u8) -> Option<&'a [u8]> {
        let (profile, data) = self.extension?;
        find_extension(profile, data, id)
    }

    /// The RFC 6464 client-to-mixer audio level carried in extension `id`:
    /// `(voice_activity, level)` where level is −dBov, 0 (loud) to 127
    /// (silence).
    pub fn audio_level(&self, id: u8) -> Option<(bool, u8)> {
        let el = self.extension_element(id)?;
        let b = *el.first()?;
        Some((b & 0x80 != 0, b & 0x7F))
    }
}

fn find_extension(profile: u16, data: &[u8], want: u8) -> Option<&[u8]> {
    let two_byte = profile & 0xFFF0 == 0x1000;
    if profile != EXT_ONE_BYTE && !two_byte {
        return None;
    }
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b == 0 {
            // Padding between elements.
            i += 1;
            continue;
        }
        let (id, len, hdr) = if two_byte {
            (b, usize::from(*data.get(i + 1)?), 2)
        } else {
            let id = b >> 4;
            if id == 15 {
                // Reserved id: stop processing (RFC 8285 §4.2).
                return None;
            }
            (id, usize::from(b & 0x0F) + 1, 1)
        };
        let start = i + hdr;
        let el = data.get(start..start + len)?;
        if id == want {
            return Some(el);
        }
        i = start + len;
    }
    None
}

/// Writes an RTP packet into `buf` and returns its length. `extension` is
/// `(profile, data)`; data must be a multiple of 4 bytes.
#[inline]
pub fn write_rtp(
    buf: &mut [u8],
    header: &RtpHeader,
    extension: Option<(u16, &[u8])>,
    payload: &[u8],
) -> Result<usize> {
    let csrcs = header.csrcs();
    let ext_len = extension.map_or(0, |(_, d)| 4 + d.len());
    let need = RTP_HEADER_LEN + csrcs.len() * 4 + ext_len + payload.len();
    if buf.len() < need {
        return Err(Error::BufferTooSmall { need });
    }
    if let Some((_, d)) = extension
        && (d.len() % 4 != 0 || d.len() / 4 > usize::from(u16::MAX))
    {
        return Err(Error::Malformed("extension length not a multiple of 4"));
    }
    buf[0] = 0x80 | if extension.is_some() { 0x10 } else { 0 } | (header.csrc_count & 0x0F);
    buf[1] = (u8::from(header.marker) << 7) | (header.payload_type & 0x7F);
    buf[2..4].copy_from_slice(&header.sequence.to_be_bytes());
    buf[4..8].copy_from_slice(&header.timestamp.to_be_bytes());
    buf[8..12].copy_from_slice(&header.ssrc.to_be_bytes());
    let mut pos = RTP_HEADER_LEN;
    for c in csrcs {
        buf[pos..pos + 4].copy_from_slice(&c.to_be_bytes());
        pos += 4;
    }
    if let Some((profile, d)) = extension {
        buf[pos..pos + 2].copy_from_slice(&profile.to_be_bytes());
        // Checked above: fits in u16.
        buf[pos + 2..pos + 4].copy_from_slice(&((d.len() / 4) as u16).to_be_bytes());
        pos += 4;
        buf[pos..pos + d.len()].copy_from_slice(d);
        pos += d.len();
    }
    buf[pos..pos + payload.len()].copy_from_slice(payload);
    Ok(pos + payload.len())
}

/// Builds the 4-byte one-byte-header extension block carrying an RFC 6464
/// audio level, for [`write_rtp`].
pub fn audio_level_extension(id: u8, voice: bool, level: u8) -> (u16, [u8; 4]) {
    (
        EXT_ONE_BYTE,
        [
            (id & 0x0F) << 4,
            (u8::from(voice) << 7) | (level & 0x7F),
            0,
            0,
        ],
    )
}

const MAX_DROPOUT: u32 = 3000;
const MAX_MISORDER: u32 = 100;
const MIN_SEQUENTIAL: u32 = 2;
const SEQ_MOD: u32 = 1 << 16;

/// What [`ReceiveStats::update`] concluded about one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqVerdict {
    /// In sequence (or a tolerable reorder); carries the extended sequence
    /// number.
    Accept(u64),
    /// First packet of a new SSRC: state was reset; extended sequence.
    NewSource(u64),
    /// A large jump that is being probed; the packet should be dropped
    /// unless the next one confirms it.
    Probation,
}

/// Per-source receive state: RFC 3550 A.1 sequence validation, A.8 jitter,
/// loss counts and the interval bookkeeping needed for RTCP report blocks.
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    clock_rate: u32,
    ssrc: Option<u32>,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    transit: Option<i64>,
    jitter_q4: u64,
    epoch: Option<Instant>,
    /// Times the SSRC changed.
    pub ssrc_changes: u64,
    /// Packets at or behind the highest sequence seen (reordered or
    /// duplicated); the jitter buffer tells which.
    pub behind_max: u64,
}

impl ReceiveStats {
    /// A tracker for a stream whose RTP clock runs at `clock_rate` Hz.
    pub fn new(clock_rate: u32) -> Self {
        Self {
            clock_rate,
            ssrc: None,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: SEQ_MOD + 1,
            probation: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            epoch: None,
            ssrc_changes: 0,
            behind_max: 0,
        }
    }

    /// The SSRC being tracked, once a packet was seen.
    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    fn ext(&self, seq: u16) -> u64 {
        // A packet slightly behind max_seq right after a wrap belongs to the
        // previous cycle.
        let cycles = u64::from(self.cycles);
        if seq > self.max_seq && seq - self.max_seq > 0x8000 && cycles > 0 {
            cycles - u64::from(SEQ_MOD) + u64::from(seq)
        } else {
            cycles + u64::from(seq)
        }
    }

    /// Accounts for one packet arriving at `now`.
    pub fn update(&mut self, now: Instant, ssrc: u32, seq: u16, timestamp: u32) -> SeqVerdict {
        let verdict = self.track(ssrc, seq);
        if verdict != SeqVerdict::Probation {
            self.update_jitter(now, timestamp);
        }
        verdict
    }

    /// Accounts for a packet that shares the stream's sequence numbers but
    /// not its media timing (RFC 4733 events interleaved with audio), so
    /// loss counts stay right without disturbing the jitter estimate.
    pub fn update_sequence_only(&mut self, ssrc: u32, seq: u16) -> SeqVerdict {
        self.track(ssrc, seq)
    }

    fn track(&mut self, ssrc: u32, seq: u16) -> SeqVerdict {
        let mut new_source = false;
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                self.ssrc_changes += 1;
            }
            self.ssrc = Some(ssrc);
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
            self.transit = None;
            self.jitter_q4 = 0;
            new_source = true;
        }
        let udelta = u32::from(seq.wrapping_sub(self.max_seq));
        let verdict;
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.base_seq = u32::from(seq).wrapping_sub(MIN_SEQUENTIAL - 1) & 0xFFFF;
                    self.received = u64::from(MIN_SEQUENTIAL - 1);
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            // During probation we still play the audio: a new phone's first
            // packet should not be thrown away.
            verdict = if new_source {
                SeqVerdict::NewSource(self.ext(seq))
            } else {
                SeqVerdict::Accept(self.ext(seq))
            };
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = seq;
            verdict = SeqVerdict::Accept(self.ext(seq));
        } else if udelta <= SEQ_MOD - MAX_MISORDER {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets after a jump: the source restarted.
                self.init_seq(seq);
                verdict = SeqVerdict::NewSource(self.ext(seq));
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (SEQ_MOD - 1);
                return SeqVerdict::Probation;
            }
        } else {
            // Duplicate or reordered.
            self.behind_max += 1;
            verdict = SeqVerdict::Accept(self.ext(seq));
        }
        self.received += 1;
        verdict
    }

    fn update_jitter(&mut self, now: Instant, timestamp: u32) {
        let epoch = *self.epoch.get_or_insert(now);
        // Signed: arrival stamps from the kernel may be a little older than
        // the first one this stream saw.
        let rate = u64::from(self.clock_rate);
        // u64 arithmetic (whole seconds and fraction apart): every packet.
        let units = |d: Duration| {
            (d.as_secs().saturating_mul(rate) + u64::from(d.subsec_nanos()) * rate / 1_000_000_000)
                .min(i64::MAX as u64) as i64
        };
        let arrival = match now.checked_duration_since(epoch) {
            Some(d) => units(d),
            None => -units(epoch.saturating_duration_since(now)),
        };
        let transit = arrival - i64::from(timestamp);
        if let Some(prev) = self.transit {
            // Timestamps wrap at 2^32: fold the difference back.
            let d = i64::from((transit - prev) as i32).unsigned_abs();
            // J += (|D| - J) / 16, kept in Q4 as in RFC 3550 A.8.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        (self.jitter_q4 >> 4) as u32
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        f64::from(self.jitter()) * 1000.0 / f64::from(self.clock_rate)
    }

    /// Highest extended sequence number seen.
    pub fn extended_max(&self) -> u64 {
        u64::from(self.cycles) + u64::from(self.max_seq)
    }

    /// Packets expected since the first one.
    pub fn expected(&self) -> u64 {
        if self.ssrc.is_none() {
            return 0;
        }
        (self.extended_max() + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// Packets received (duplicates included, as RFC 3550 counts them).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Cumulative packets lost (may be negative with duplicates; clamped as
    /// RFC 3550 does to 24 signed bits when reported).
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Loss fraction since the last call, in 1/256 (the RTCP field), and
    /// starts the next interval.
    pub fn take_fraction_lost(&mut self) -> u8 {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.received_prior = self.received;
        let lost = expected_interval as i64 - received_interval as i64;
        if expected_interval == 0 || lost <= 0 {
            0
        } else {
            ((lost << 8) / expected_interval as i64).min(255) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn header(seq: u16) -> RtpHeader {
        RtpHeader {
            marker: true,
            payload_type: 0,
            sequence: seq,
            timestamp: 1234,
            ssrc: 0xDEAD_BEEF,
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_with_audio_level() {
        let (profile, ext) = audio_level_extension(3, true, 42);
        let mut buf = [0u8; 200];
        let n = write_rtp(&mut buf, &header(7), Some((profile, &ext)), &[1, 2, 3]).unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.header, header(7));
        assert_eq!(p.payload, &[1, 2, 3]);
        assert_eq!(p.audio_level(3), Some((true, 42)));
        assert_eq!(p.audio_level(4), None);
    }

    #[test]
    fn padding_is_removed_and_checked() {
        let mut buf = [0u8; 20];
        let n = write_rtp(&mut buf, &header(1), None, &[9, 9, 0, 0, 4]).unwrap();
        buf[0] |= 0x20;
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.payload, &[9]);
        buf[n - 1] = 50;
        assert!(RtpPacket::parse(&buf[..n]).is_err());
    }

    #[test]
    fn two_byte_extension() {
        let data = [5u8, 1, 0x85, 0];
        let mut buf = [0u8; 64];
        let n = write_rtp(&mut buf, &header(1), Some((0x1000, &data)), &[]).unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.audio_level(5), Some((true, 5)));
    }

    #[test]
    fn rtcp_demux() {
        assert!(looks_like_rtcp(&[0x80, 200]));
        assert!(!looks_like_rtcp(&[0x80, 0]));
    }

    #[test]
    fn sequence_wrap_extends() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        let mut last = 0;
        for i in 0..100u32 {
            let seq = (65500u32 + i) as u16;
            match s.update(
                t0 + Duration::from_millis(20 * u64::from(i)),
                1,
                seq,
                i * 160,
            ) {
                SeqVerdict::Accept(e) | SeqVerdict::NewSource(e) => {
                    if i > 0 {
                        assert_eq!(e, last + 1);
                    }
                    last = e;
                }
                SeqVerdict::Probation => panic!("unexpected probation"),
            }
        }
        assert_eq!(s.expected(), 100);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn loss_and_jitter_counted() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        for i in 0..200u32 {
            if i % 10 == 3 {
                continue;
            }
            let wobble = if i % 2 == 0 { 0 } else { 5 };
            s.update(
                t0 + Duration::from_millis(u64::from(20 * i + wobble)),
                9,
                i as u16,
                i * 160,
            );
        }
        assert_eq!(s.cumulative_lost(), 20);
        let f = s.take_fraction_lost();
        assert!((24..=27).contains(&f), "fraction {f}");
        // Alternating 5 ms wobble converges to about 5 ms = 40 units.
        assert!((30..=45).contains(&s.jitter()), "jitter {}", s.jitter());
    }

    #[test]
    fn ssrc_change_resets() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        s.update(t0, 1, 100, 0);
        s.update(t0, 1, 101, 160);
        assert!(matches!(s.update(t0, 2, 5000, 0), SeqVerdict::NewSource(_)));
        assert_eq!(s.ssrc_changes, 1);
        assert_eq!(s.expected(), 1);
    }

    #[test]
    fn interleaved_events_are_not_loss() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        let mut seq = 0u16;
        for i in 0..100u32 {
            s.update(
                t0 + Duration::from_millis(u64::from(20 * i)),
                1,
                seq,
                i * 160,
            );
            seq += 1;
            if (40..45).contains(&i) {
                // An event packet follows each audio packet during a key press.
                s.update_sequence_only(1, seq);
                seq += 1;
            }
        }
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.jitter(), 0);
    }

    #[test]
    fn big_jump_needs_confirmation() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(8000);
        for i in 0..10 {
            s.update(t0, 1, i, 0);
        }
        assert_eq!(s.update(t0, 1, 30000, 0), SeqVerdict::Probation);
        assert!(matches!(
            s.update(t0, 1, 30001, 0),
            SeqVerdict::NewSource(_)
        ));
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(p) = RtpPacket::parse(&data) {
                let _ = p.audio_level(1);
                let _ = p.extension_element(14);
            }
        }

        #[test]
        fn build_parse_round_trip(
            marker in any::<bool>(), pt in 0u8..128, seq in any::<u16>(), ts in any::<u32>(),
            ssrc in any::<u32>(), csrcs in proptest::collection::vec(any::<u32>(), 0..16),
            ext in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..5)),
            payload in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut h = RtpHeader { marker, payload_type: pt, sequence: seq, timestamp: ts, ssrc, csrc_count: csrcs.len() as u8, csrcs: [0; 15] };
            h.csrcs[..csrcs.len()].copy_from_slice(&csrcs);
            let ext_data: Option<Vec<u8>> = ext.map(|w| { let mut v = w; v.resize(v.len().div_ceil(4) * 4, 0); v });
            let mut buf = vec![0u8; 1500];
            let n = write_rtp(&mut buf, &h, ext_data.as_deref().map(|d| (0xBEDE, d)), &payload).unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            prop_assert_eq!(p.header, h);
            prop_assert_eq!(p.payload, &payload[..]);
            prop_assert_eq!(p.extension.map(|(_, d)| d.to_vec()), ext_data);
        }

        #[test]
        fn stats_never_panic(pkts in proptest::collection::vec((any::<u32>(), any::<u16>(), any::<u32>(), 0u64..100_000), 0..200)) {
            let t0 = Instant::now();
            let mut s = ReceiveStats::new(8000);
            for (ssrc, seq, ts, at) in pkts {
                s.update(t0 + Duration::from_millis(at), ssrc % 3, seq, ts);
                let _ = s.take_fraction_lost();
                let _ = s.cumulative_lost();
            }
        }
    }
}
