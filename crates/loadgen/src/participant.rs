//! One simulated participant's media, sans-IO: what it sends every 20 ms
//! and what it makes of what it receives.
//!
//! Meet first: [`ParticipantMedia`] (a packet out of
//! [`ParticipantMedia::next_packet`] per 20 ms, every received datagram
//! into [`ParticipantMedia::handle_packet`], a [`ParticipantReport`] at the
//! end), [`MediaSpec`] (what SDP agreed: codec, payload types, where to
//! send) and [`MarkerBoard`] (per room, when the current marker burst was
//! sent; the only state participants share, written by the talker and read
//! by listeners on other threads through two atomics).
//!
//! The marker schedule: room `r` has a marker every `interval`, the
//! `k`-th sent by member `k mod members` (markers of different rooms are
//! staggered). Listeners arm their [`MarkerDetector`] shortly before each
//! marker time and disarm after [`LISTEN_WINDOW`]; a marker that was sent
//! but not heard in that window is counted as missed. Delay and loss count
//! only inside the measured window (`start_window`/`end_window`), so the
//! joining phase does not blur the figures.
//!
//! Not here: sockets, timers and threads ([`crate::run`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use palaver_media::codec::{AudioDecoder, AudioEncoder, Codec, g711};
use palaver_media::dtmf::Rfc4733Sender;
use palaver_media::rtp::{RtpHeader, RtpPacket, looks_like_rtcp, write_rtp};
use serde::Serialize;

use crate::marker::{MarkerDetector, Nanos};
use crate::signal::{FRAME, MARKER_FRAMES, Marker, SpeechLike, TalkPattern, Tone};
use crate::stats::{Counters, StreamStats};

const MS: Nanos = 1_000_000;
/// How long before a scheduled marker a listener starts looking.
const ARM_EARLY: Nanos = 20 * MS;
/// How long after a scheduled marker a listener keeps looking.
pub const LISTEN_WINDOW: Nanos = 700 * MS;
/// Frames of audio between two DTMF digits (60 ms).
const DTMF_GAP_FRAMES: u32 = 3;
/// Length of one DTMF key press (100 ms).
const DTMF_PRESS_MS: u32 = 100;

/// What SDP negotiation gave one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSpec {
    pub codec: Codec,
    /// Payload type we send.
    pub payload_type: u8,
    /// Payload type the server sends.
    pub receive_payload_type: u8,
    /// RFC 4733 payload type we send, if agreed.
    pub telephone_event: Option<u8>,
    /// Where RTP goes.
    pub remote: SocketAddr,
}

impl MediaSpec {
    /// RTP clock units per 20 ms frame.
    pub fn ts_step(&self) -> u32 {
        self.codec.rtp_clock_rate() / 50
    }
}

/// The last marker each room sent. Written by one talker thread, read by
/// listeners on any thread.
#[derive(Debug)]
pub struct MarkerBoard {
    rooms: Vec<RoomMarker>,
    /// Start of the schedule (0: no markers yet).
    origin: AtomicU64,
    interval: Nanos,
}

#[derive(Debug, Default)]
struct RoomMarker {
    /// Index + 1 of the last marker sent (0: none).
    sent: AtomicU64,
    /// When its first packet was handed to the kernel.
    sent_at: AtomicU64,
}

impl MarkerBoard {
    /// A board for `rooms` rooms with a marker every `interval` per room
    /// (0: no markers).
    pub fn new(rooms: usize, interval: Nanos) -> Self {
        Self {
            rooms: (0..rooms).map(|_| RoomMarker::default()).collect(),
            origin: AtomicU64::new(0),
            interval,
        }
    }

    /// Starts the schedule at `origin`.
    pub fn start(&self, origin: Nanos) {
        self.origin.store(origin, Ordering::Release);
    }

    fn origin(&self) -> Option<Nanos> {
        match self.origin.load(Ordering::Acquire) {
            0 => None,
            o if self.interval > 0 => Some(o),
            _ => None,
        }
    }

    /// Time of marker `k` in `room`: rooms are staggered by 97 ms steps so
    /// the server does not see every room's marker in the same tick.
    fn time_of(&self, origin: Nanos, room: usize, k: u64) -> Nanos {
        origin + (room as u64 * 97 * MS) % self.interval + k * self.interval
    }

    /// Index of the marker whose listening window holds `t`, if any.
    fn window_at(&self, origin: Nanos, room: usize, t: Nanos) -> Option<u64> {
        let first = self.time_of(origin, room, 0);
        if t + ARM_EARLY < first {
            return None;
        }
        let k = (t + ARM_EARLY - first) / self.interval;
        let at = self.time_of(origin, room, k);
        (t + ARM_EARLY >= at && t < at + LISTEN_WINDOW).then_some(k)
    }

    fn record_sent(&self, room: usize, k: u64, at: Nanos) {
        if let Some(r) = self.rooms.get(room) {
            r.sent_at.store(at, Ordering::Relaxed);
            r.sent.store(k + 1, Ordering::Release);
        }
    }

    /// (index, time) of the last marker `room` sent.
    fn last_sent(&self, room: usize) -> Option<(u64, Nanos)> {
        let r = self.rooms.get(room)?;
        let sent = r.sent.load(Ordering::Acquire);
        (sent > 0).then(|| (sent - 1, r.sent_at.load(Ordering::Relaxed)))
    }
}

/// Where a participant sits in the marker schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seat {
    pub room: usize,
    pub member: usize,
    pub members: usize,
    /// Listens for its own markers (against a reflector, which sends each
    /// participant its own packets back).
    pub hears_self: bool,
}

/// What a participant says when it talks.
#[derive(Debug, Clone)]
pub enum Voice {
    Speech(SpeechLike),
    Tone(Tone),
}

/// A recorded speech sample played once, `delay` after the measured
/// window starts (quality runs).
#[derive(Debug, Clone)]
pub struct Script {
    pub pcm: Arc<Vec<i16>>,
    pub delay: Nanos,
}

/// Where received audio is written, placed by RTP timestamp (so the
/// recording shows the server's timeline, gaps included, whatever the
/// network did to arrival times). Packets arriving in the first `length`
/// of the measured window are recorded.
#[derive(Debug, Clone)]
pub struct Recording {
    pub length: Nanos,
    pub samples: Vec<i16>,
    first_ts: Option<u32>,
}

impl Recording {
    /// Records up to `max_samples` from the first `length` of the window.
    pub fn new(length: Nanos, max_samples: usize) -> Self {
        Self {
            length,
            samples: vec![0; max_samples],
            first_ts: None,
        }
    }
}

/// How the participant is set up.
#[derive(Debug, Clone)]
pub struct ParticipantConfig {
    pub id: usize,
    pub seat: Seat,
    pub voice: Voice,
    pub talk: TalkPattern,
    /// Keys sent with RFC 4733 after joining (a PIN and `#`).
    pub dtmf: Option<String>,
    /// Frames to wait after the first packet before the keys.
    pub dtmf_delay_frames: u32,
    pub script: Option<Script>,
    pub recording: Option<Recording>,
    /// SSRC, first sequence number and timestamp.
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
}

/// Everything one participant measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParticipantReport {
    pub id: usize,
    pub room: usize,
    /// Receive counters inside the measured window.
    pub window: Counters,
    /// Receive counters over the whole call.
    pub total: Counters,
    /// 20 ms frames the window lasted for this participant: what a bridge
    /// that never skips a tick sends it. Sequence numbers cannot show
    /// skipped ticks; this can.
    pub frames_due: u64,
    pub jitter_ms: f64,
    /// Longest silence between two packets inside the window.
    pub max_gap_ms: f64,
    pub packets_sent: u64,
    pub send_errors: u64,
    /// Packets that were not RTP or had an unexpected payload type.
    pub odd_packets: u64,
    pub markers_sent: u64,
    pub markers_heard: u64,
    pub markers_missed: u64,
    /// Marker-like tones heard when no marker was due.
    pub false_markers: u64,
    /// Mouth-to-ear delays through the bridge, in ms.
    pub delays_ms: Vec<f64>,
    /// Schedule indices of the markers heard (same order as the delays)
    /// and missed.
    pub heard_markers: Vec<u64>,
    pub missed_markers: Vec<u64>,
    pub dtmf_digits_sent: u32,
    #[serde(skip)]
    pub recording: Option<Vec<i16>>,
}

enum Keys {
    Waiting(u32),
    Pressing(Rfc4733Sender),
    Gap(u32),
    Done,
}

/// One participant's media state. See the module documentation.
pub struct ParticipantMedia {
    cfg: ParticipantConfig,
    spec: MediaSpec,
    header: RtpHeader,
    ts_step: u32,
    encoder: Option<AudioEncoder>,
    decoder: Option<AudioDecoder>,
    silence: Arc<[u8]>,
    pcm: [i16; FRAME],
    decoded: [i16; 4 * FRAME],
    payload: [u8; 1_500],
    talking: bool,
    marker_frame: Option<u32>,
    next_marker: Option<u64>,
    script_pos: usize,
    script_start: Option<Nanos>,
    recording_range: Option<(Nanos, Nanos)>,
    keys: Keys,
    digits: Vec<char>,
    stats: StreamStats,
    window_start: Option<Counters>,
    window_end: Option<Counters>,
    window_times: (Option<Nanos>, Option<Nanos>),
    measuring: bool,
    detector: MarkerDetector,
    armed: Option<(u64, bool)>,
    last_decoded_seq: Option<u16>,
    report: ParticipantReport,
}

impl std::fmt::Debug for ParticipantMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ParticipantMedia({})", self.cfg.id)
    }
}

/// The payload a silent participant sends: G.711 zero, or one Opus frame
/// of silence (a valid packet every decoder accepts again and again).
pub fn silence_payload(codec: Codec) -> crate::Result<Arc<[u8]>> {
    Ok(match codec {
        Codec::Pcmu => vec![g711::ulaw_encode(0); FRAME].into(),
        Codec::Pcma => vec![g711::alaw_encode(0); FRAME].into(),
        Codec::G722 | Codec::Opus => {
            let mut enc = AudioEncoder::new(codec, 8_000)?;
            let zero = [0i16; FRAME];
            let mut out = [0u8; 1_500];
            let mut n = 0;
            // A few frames so the encoder settles into its silence mode.
            for _ in 0..5 {
                n = enc.encode(&zero, &mut out)?;
            }
            out[..n].to_vec().into()
        }
    })
}

impl ParticipantMedia {
    /// `silence` from [`silence_payload`] for `spec.codec`.
    pub fn new(cfg: ParticipantConfig, spec: MediaSpec, silence: Arc<[u8]>) -> Self {
        let header = RtpHeader {
            marker: true,
            payload_type: spec.payload_type,
            sequence: cfg.seq,
            timestamp: cfg.ts,
            ssrc: cfg.ssrc,
            ..RtpHeader::default()
        };
        let digits: Vec<char> = cfg.dtmf.as_deref().unwrap_or("").chars().rev().collect();
        let keys = if digits.is_empty() || spec.telephone_event.is_none() {
            Keys::Done
        } else {
            Keys::Waiting(cfg.dtmf_delay_frames)
        };
        let report = ParticipantReport {
            id: cfg.id,
            room: cfg.seat.room,
            ..ParticipantReport::default()
        };
        Self {
            ts_step: spec.ts_step(),
            stats: StreamStats::new(spec.codec.rtp_clock_rate()),
            spec,
            header,
            encoder: None,
            decoder: None,
            silence,
            pcm: [0; FRAME],
            decoded: [0; 4 * FRAME],
            payload: [0; 1_500],
            talking: false,
            marker_frame: None,
            next_marker: None,
            script_pos: 0,
            script_start: None,
            recording_range: None,
            keys,
            digits,
            window_start: None,
            window_end: None,
            window_times: (None, None),
            measuring: false,
            detector: MarkerDetector::default(),
            armed: None,
            last_decoded_seq: None,
            report,
            cfg,
        }
    }

    pub fn id(&self) -> usize {
        self.cfg.id
    }

    pub fn remote(&self) -> SocketAddr {
        self.spec.remote
    }

    /// Starts the measured window at `now`.
    pub fn start_window(&mut self, now: Nanos) {
        self.script_start = self.cfg.script.as_ref().map(|s| now + s.delay);
        self.recording_range = self.cfg.recording.as_ref().map(|r| (now, now + r.length));
        self.window_start = Some(self.stats.counters());
        self.window_times = (Some(now), None);
        self.stats.reset_max_gap();
        self.measuring = true;
    }

    /// Ends the measured window at `now`.
    pub fn end_window(&mut self, now: Nanos) {
        if self.measuring {
            self.window_end = Some(self.stats.counters());
            self.window_times.1 = Some(now);
            self.report.max_gap_ms = self.stats.max_gap() as f64 / 1e6;
            self.measuring = false;
        }
    }

    /// Counts a send the kernel refused.
    pub fn send_failed(&mut self) {
        self.report.send_errors += 1;
    }

    /// Builds the packet for the 20 ms frame starting at `now` into `out`;
    /// returns its length.
    pub fn next_packet(&mut self, now: Nanos, board: &MarkerBoard, out: &mut [u8]) -> usize {
        let n = match self.next_keys() {
            Some(ev) => {
                let h = RtpHeader {
                    marker: ev.marker,
                    // Checked in `next_keys`: only with a telephone-event type.
                    payload_type: self.spec.telephone_event.unwrap_or(101),
                    timestamp: ev.timestamp,
                    ..self.header
                };
                write_rtp(out, &h, None, &ev.payload).unwrap_or(0)
            }
            None => {
                let len = self.audio_frame(now, board);
                let h = self.header;
                write_rtp(out, &h, None, &self.payload[..len]).unwrap_or(0)
            }
        };
        self.header.marker = false;
        self.header.sequence = self.header.sequence.wrapping_add(1);
        self.header.timestamp = self.header.timestamp.wrapping_add(self.ts_step);
        if n > 0 {
            self.report.packets_sent += 1;
        }
        n
    }

    fn next_keys(&mut self) -> Option<palaver_media::dtmf::EventPacket> {
        loop {
            match &mut self.keys {
                Keys::Done => return None,
                Keys::Waiting(n) | Keys::Gap(n) if *n > 0 => {
                    *n -= 1;
                    return None;
                }
                Keys::Waiting(_) | Keys::Gap(_) => {
                    let Some(d) = self.digits.pop() else {
                        self.keys = Keys::Done;
                        return None;
                    };
                    let duration = self.spec.codec.rtp_clock_rate() * DTMF_PRESS_MS / 1000;
                    match Rfc4733Sender::new(d, duration, self.header.timestamp) {
                        Ok(s) => {
                            self.report.dtmf_digits_sent += 1;
                            self.keys = Keys::Pressing(s);
                        }
                        Err(_) => continue,
                    }
                }
                Keys::Pressing(s) => match s.next_packet(self.ts_step) {
                    Some(p) => return Some(p),
                    None => self.keys = Keys::Gap(DTMF_GAP_FRAMES),
                },
            }
        }
    }

    /// Fills `self.payload` with this frame's audio; returns its length.
    fn audio_frame(&mut self, now: Nanos, board: &MarkerBoard) -> usize {
        self.talking = self.cfg.talk.next_frame();
        self.maybe_start_marker(now, board);
        let mut has_audio = true;
        if let Some(k) = self.marker_frame {
            let mut f = [0i16; FRAME];
            Marker::frame(k, &mut f);
            self.pcm = f;
            self.marker_frame = (k + 1 < MARKER_FRAMES).then_some(k + 1);
        } else if let Some(script) = &self.cfg.script {
            if self.script_start.is_some_and(|s| now >= s) && self.script_pos < script.pcm.len() {
                let end = (self.script_pos + FRAME).min(script.pcm.len());
                let chunk = &script.pcm[self.script_pos..end];
                self.pcm[..chunk.len()].copy_from_slice(chunk);
                self.pcm[chunk.len()..].fill(0);
                self.script_pos = end;
            } else {
                has_audio = false;
            }
        } else if self.talking {
            match &mut self.cfg.voice {
                Voice::Speech(s) => s.fill(&mut self.pcm),
                Voice::Tone(t) => t.fill(&mut self.pcm),
            }
        } else {
            has_audio = false;
        }
        if !has_audio {
            let n = self.silence.len();
            self.payload[..n].copy_from_slice(&self.silence);
            return n;
        }
        self.encode()
    }

    fn encode(&mut self) -> usize {
        match self.spec.codec {
            Codec::Pcmu | Codec::Pcma => {
                g711::encode(
                    self.spec.codec == Codec::Pcma,
                    &self.pcm,
                    &mut self.payload[..FRAME],
                );
                FRAME
            }
            codec => {
                if self.encoder.is_none() {
                    self.encoder = AudioEncoder::new(codec, 8_000).ok();
                }
                let Some(enc) = self.encoder.as_mut() else {
                    let n = self.silence.len();
                    self.payload[..n].copy_from_slice(&self.silence);
                    return n;
                };
                match enc.encode(&self.pcm, &mut self.payload) {
                    Ok(n) => n,
                    Err(_) => {
                        let n = self.silence.len();
                        self.payload[..n].copy_from_slice(&self.silence);
                        n
                    }
                }
            }
        }
    }

    fn maybe_start_marker(&mut self, now: Nanos, board: &MarkerBoard) {
        let Some(origin) = board.origin() else {
            return;
        };
        let seat = self.cfg.seat;
        let members = seat.members.max(1) as u64;
        let next = *self.next_marker.get_or_insert_with(|| {
            // Our first marker at or after now.
            let first = board.time_of(origin, seat.room, 0);
            let k0 = if now > first {
                (now - first).div_ceil(board.interval)
            } else {
                0
            };
            let m = seat.member as u64 % members;
            k0 + (m + members - k0 % members) % members
        });
        let at = board.time_of(origin, seat.room, next);
        if now < at {
            return;
        }
        self.next_marker = Some(next + members);
        // A marker sent more than 100 ms late would be compared with
        // listeners' windows that already moved on.
        if now - at <= 100 * MS && self.marker_frame.is_none() {
            self.marker_frame = Some(0);
            board.record_sent(seat.room, next, now);
            self.report.markers_sent += 1;
        }
    }

    /// One datagram that arrived at `arrival` on this participant's socket.
    pub fn handle_packet(&mut self, arrival: Nanos, data: &[u8], board: &MarkerBoard) {
        if looks_like_rtcp(data) {
            return;
        }
        let Ok(p) = RtpPacket::parse(data) else {
            self.report.odd_packets += 1;
            return;
        };
        self.stats.handle(
            arrival,
            p.header.ssrc,
            p.header.sequence,
            p.header.timestamp,
        );
        if Some(p.header.payload_type) != Some(self.spec.receive_payload_type) {
            self.report.odd_packets += 1;
            return;
        }
        let listening = self.update_window(arrival, board);
        let recording = self
            .recording_range
            .is_some_and(|(from, until)| arrival >= from && arrival < until);
        if !listening && !recording {
            return;
        }
        let Some(n) = self.decode(p.payload) else {
            return;
        };
        if recording {
            self.record(p.header.timestamp, n);
        }
        if listening {
            let contiguous = self
                .last_decoded_seq
                .is_some_and(|s| s.wrapping_add(1) == p.header.sequence);
            if !contiguous {
                self.detector.reset();
            }
            self.last_decoded_seq = Some(p.header.sequence);
            let mut found = None;
            for chunk in self.decoded[..n].chunks(FRAME) {
                if let Some(d) = self.detector.push(arrival, chunk) {
                    found = Some(d);
                }
            }
            if let Some(d) = found {
                self.heard(d.heard_at, board);
            }
        }
    }

    fn decode(&mut self, payload: &[u8]) -> Option<usize> {
        match self.spec.codec {
            Codec::Pcmu | Codec::Pcma => {
                let n = payload.len().min(self.decoded.len());
                g711::decode(
                    self.spec.codec == Codec::Pcma,
                    &payload[..n],
                    &mut self.decoded[..n],
                );
                Some(n)
            }
            codec => {
                if self.decoder.is_none() {
                    self.decoder = AudioDecoder::new(codec, 8_000).ok();
                }
                self.decoder
                    .as_mut()?
                    .decode(payload, &mut self.decoded)
                    .ok()
            }
        }
    }

    fn record(&mut self, ts: u32, n: usize) {
        let per_sample = self.spec.codec.rtp_clock_rate() / 8_000;
        let Some(rec) = self.cfg.recording.as_mut() else {
            return;
        };
        let first = *rec.first_ts.get_or_insert(ts);
        let offset = (ts.wrapping_sub(first) / per_sample.max(1)) as usize;
        // A timestamp from before the first packet wraps to a huge offset
        // and is dropped here, like anything past the end.
        if let Some(dst) = rec.samples.get_mut(offset..offset + n) {
            dst.copy_from_slice(&self.decoded[..n]);
        }
    }

    /// Arms or disarms the detector for the marker window at `t`; returns
    /// whether audio at `t` should be analysed.
    fn update_window(&mut self, t: Nanos, board: &MarkerBoard) -> bool {
        if !self.measuring {
            return false;
        }
        let Some(origin) = board.origin() else {
            return false;
        };
        let seat = self.cfg.seat;
        let current = board.window_at(origin, seat.room, t);
        if let Some((k, detected)) = self.armed
            && current != Some(k)
        {
            if !detected && board.last_sent(seat.room).is_some_and(|(s, _)| s >= k) {
                self.report.markers_missed += 1;
                self.report.missed_markers.push(k);
            }
            self.armed = None;
        }
        let Some(k) = current else {
            return false;
        };
        let members = seat.members.max(1) as u64;
        let sender_is_me = k % members == seat.member as u64 % members;
        if sender_is_me && !seat.hears_self {
            return false;
        }
        if self.armed.is_none() {
            self.detector.reset();
            self.last_decoded_seq = None;
            self.armed = Some((k, false));
        }
        true
    }

    fn heard(&mut self, heard_at: Nanos, board: &MarkerBoard) {
        let Some((k, detected)) = self.armed else {
            return;
        };
        if detected {
            return;
        }
        match board.last_sent(self.cfg.seat.room) {
            Some((s, sent_at)) if s == k && heard_at >= sent_at => {
                self.report
                    .delays_ms
                    .push((heard_at - sent_at) as f64 / 1e6);
                self.report.markers_heard += 1;
                self.report.heard_markers.push(k);
                self.armed = Some((k, true));
            }
            _ => self.report.false_markers += 1,
        }
    }

    /// The participant's figures (call after `end_window`).
    pub fn report(&mut self) -> ParticipantReport {
        let mut r = self.report.clone();
        let total = self.stats.counters();
        r.total = total;
        let start = self.window_start.unwrap_or_default();
        let end = self.window_end.unwrap_or(total);
        r.window = if self.window_start.is_some() {
            end.since(&start)
        } else {
            Counters::default()
        };
        r.jitter_ms = self.stats.jitter_ms();
        if let (Some(a), Some(b)) = self.window_times {
            r.frames_due = b.saturating_sub(a) / (20 * MS);
        }
        r.recording = self.cfg.recording.take().map(|rec| rec.samples);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(codec: Codec) -> MediaSpec {
        MediaSpec {
            codec,
            payload_type: codec.default_payload_type().unwrap_or(111),
            receive_payload_type: codec.default_payload_type().unwrap_or(111),
            telephone_event: Some(101),
            remote: "127.0.0.1:4000".parse().expect("addr"),
        }
    }

    fn config(id: usize, seat: Seat, fraction: f64) -> ParticipantConfig {
        ParticipantConfig {
            id,
            seat,
            voice: Voice::Speech(SpeechLike::new(id as u64)),
            talk: TalkPattern::new(id as u64, fraction),
            dtmf: None,
            dtmf_delay_frames: 0,
            script: None,
            recording: None,
            ssrc: 1000 + id as u32,
            seq: 100,
            ts: 5000,
        }
    }

    fn seat(member: usize, members: usize) -> Seat {
        Seat {
            room: 0,
            member,
            members,
            hears_self: false,
        }
    }

    #[test]
    fn packets_are_well_formed_and_numbered() {
        let board = MarkerBoard::new(1, 0);
        let codec = Codec::Pcmu;
        let mut p = ParticipantMedia::new(
            config(1, seat(0, 1), 1.0),
            spec(codec),
            silence_payload(codec).expect("silence"),
        );
        let mut buf = [0u8; 1_500];
        for k in 0..5u16 {
            let n = p.next_packet(u64::from(k) * 20 * MS, &board, &mut buf);
            let r = RtpPacket::parse(&buf[..n]).expect("valid RTP");
            assert_eq!(r.header.sequence, 100 + k);
            assert_eq!(r.header.timestamp, 5000 + u32::from(k) * 160);
            assert_eq!(r.header.marker, k == 0);
            assert_eq!(r.payload.len(), 160);
        }
        assert_eq!(p.report().packets_sent, 5);
    }

    #[test]
    fn pin_digits_go_out_as_rfc4733_then_audio_resumes() {
        let board = MarkerBoard::new(1, 0);
        let mut cfg = config(1, seat(0, 1), 0.0);
        cfg.dtmf = Some("12#".into());
        cfg.dtmf_delay_frames = 2;
        let mut p = ParticipantMedia::new(
            cfg,
            spec(Codec::Pcma),
            silence_payload(Codec::Pcma).expect("silence"),
        );
        let mut buf = [0u8; 1_500];
        let mut rx = palaver_media::dtmf::Rfc4733Receiver::new();
        let mut digits = String::new();
        let mut last_ts = None;
        for k in 0..60u64 {
            let n = p.next_packet(k * 20 * MS, &board, &mut buf);
            let r = RtpPacket::parse(&buf[..n]).expect("valid RTP");
            if r.header.payload_type == 101 {
                if let Ok(Some(d)) = rx.handle(r.header.timestamp, r.payload) {
                    digits.push(d);
                }
            } else {
                assert_eq!(r.header.payload_type, 8);
                // Audio timestamps keep advancing through the key presses.
                if let Some(prev) = last_ts {
                    assert_eq!((r.header.timestamp - prev) % 160, 0);
                }
                last_ts = Some(r.header.timestamp);
            }
        }
        assert_eq!(digits, "12#");
        assert_eq!(p.report().dtmf_digits_sent, 3);
    }

    /// A fake bridge: the talker's packets reach the listener `delay`
    /// later, re-sequenced as a mixer output stream would be.
    #[test]
    fn marker_through_a_delayed_path_gives_the_delay() {
        let board = MarkerBoard::new(1, 1_000 * MS);
        let codec = Codec::Pcmu;
        let silence = silence_payload(codec).expect("silence");
        let mut talker =
            ParticipantMedia::new(config(0, seat(0, 2), 0.0), spec(codec), silence.clone());
        let mut listener = ParticipantMedia::new(config(1, seat(1, 2), 0.0), spec(codec), silence);
        let t0 = 1_000_000 * MS;
        listener.start_window(t0);
        talker.start_window(t0);
        board.start(t0 + 100 * MS);
        let delay = 37 * MS;
        let mut buf = [0u8; 1_500];
        let mut out = [0u8; 1_500];
        // Four seconds: markers at 0.1 s (talker, member 0), 1.1 s
        // (listener's own: not heard), 2.1 s, 3.1 s.
        for k in 0..200u64 {
            let now = t0 + k * 20 * MS;
            let n = talker.next_packet(now, &board, &mut buf);
            let r = RtpPacket::parse(&buf[..n]).expect("rtp");
            // Re-packetise as the bridge's own stream.
            let h = RtpHeader {
                ssrc: 77,
                sequence: k as u16,
                timestamp: k as u32 * 160,
                payload_type: 0,
                ..RtpHeader::default()
            };
            let m = write_rtp(&mut out, &h, None, r.payload).expect("fits");
            listener.handle_packet(now + delay, &out[..m], &board);
            // The listener talks too (silence), so its own markers go out.
            listener.next_packet(now, &board, &mut buf);
        }
        listener.end_window(t0 + 4_000 * MS);
        let rep = listener.report();
        assert_eq!(rep.markers_heard, 2, "{rep:?}");
        assert_eq!(rep.markers_missed, 0);
        assert_eq!(rep.false_markers, 0);
        for d in &rep.delays_ms {
            assert!((d - 37.0).abs() < 0.3, "{d}");
        }
        assert_eq!(rep.window.lost(), 0);
        assert_eq!(talker.report().markers_sent, 2);
    }

    #[test]
    fn a_marker_lost_on_the_way_counts_as_missed() {
        let board = MarkerBoard::new(1, 1_000 * MS);
        let codec = Codec::Pcmu;
        let silence = silence_payload(codec).expect("silence");
        let mut talker =
            ParticipantMedia::new(config(0, seat(0, 2), 0.0), spec(codec), silence.clone());
        let mut listener = ParticipantMedia::new(config(1, seat(1, 2), 0.0), spec(codec), silence);
        let t0 = 2_000_000 * MS;
        listener.start_window(t0);
        board.start(t0 + 100 * MS);
        let mut buf = [0u8; 1_500];
        let mut out = [0u8; 1_500];
        for k in 0..90u64 {
            let now = t0 + k * 20 * MS;
            let n = talker.next_packet(now, &board, &mut buf);
            let r = RtpPacket::parse(&buf[..n]).expect("rtp");
            // The bridge swallows the marker (frames 5–7).
            let payload: Vec<u8> = if (5..8).contains(&k) {
                vec![0xFF; 160]
            } else {
                r.payload.to_vec()
            };
            let h = RtpHeader {
                ssrc: 9,
                sequence: k as u16,
                timestamp: k as u32 * 160,
                payload_type: 0,
                ..RtpHeader::default()
            };
            let m = write_rtp(&mut out, &h, None, &payload).expect("fits");
            listener.handle_packet(now + 30 * MS, &out[..m], &board);
        }
        listener.end_window(t0 + 4_000 * MS);
        let rep = listener.report();
        assert_eq!((rep.markers_heard, rep.markers_missed), (0, 1));
    }

    #[test]
    fn recording_places_audio_by_timestamp() {
        let board = MarkerBoard::new(1, 0);
        let codec = Codec::Pcmu;
        let mut cfg = config(1, seat(0, 1), 0.0);
        cfg.recording = Some(Recording::new(u64::MAX / 2, 8_000));
        let mut p = ParticipantMedia::new(cfg, spec(codec), silence_payload(codec).expect("s"));
        p.start_window(0);
        let mut out = [0u8; 1_500];
        for (k, seq) in [(0u32, 0u16), (2, 2), (1, 1)] {
            let h = RtpHeader {
                ssrc: 5,
                sequence: seq,
                timestamp: 1_000 + k * 160,
                payload_type: 0,
                ..RtpHeader::default()
            };
            let payload = [g711::ulaw_encode(1_000 * (k as i16 + 1)); 160];
            let m = write_rtp(&mut out, &h, None, &payload).expect("fits");
            p.handle_packet(u64::from(k) * 20 * MS, &out[..m], &board);
        }
        let rec = p.report().recording.expect("recording");
        for k in 0..3 {
            let s = rec[k * 160 + 10];
            assert!(
                (i32::from(s) - 1_000 * (k as i32 + 1)).abs() < 64,
                "{k}: {s}"
            );
        }
        assert_eq!(rec[3 * 160 + 1], 0);
    }

    #[test]
    fn opus_talker_and_listener() {
        let codec = Codec::Opus;
        let board = MarkerBoard::new(1, 0);
        let silence = silence_payload(codec).expect("opus silence");
        assert!(!silence.is_empty() && silence.len() < 200);
        let mut p = ParticipantMedia::new(config(3, seat(0, 1), 1.0), spec(codec), silence);
        let mut buf = [0u8; 1_500];
        let n = p.next_packet(0, &board, &mut buf);
        let r = RtpPacket::parse(&buf[..n]).expect("rtp").header;
        assert_eq!(r.payload_type, 111);
        let n2 = p.next_packet(20 * MS, &board, &mut buf);
        let r2 = RtpPacket::parse(&buf[..n2]).expect("rtp");
        assert_eq!(r2.header.timestamp.wrapping_sub(r.timestamp), 960);
    }

    #[test]
    fn garbage_never_panics() {
        let board = MarkerBoard::new(1, 1_000 * MS);
        board.start(1);
        let mut p = ParticipantMedia::new(
            config(1, seat(1, 2), 0.0),
            spec(Codec::Opus),
            silence_payload(Codec::Opus).expect("s"),
        );
        p.start_window(0);
        let mut rng = crate::signal::Rng64::new(5);
        for k in 0..2_000u64 {
            let len = (rng.next_u64() % 300) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if d.len() > 2 && k % 2 == 0 {
                d[0] = 0x80;
                d[1] = 111;
            }
            p.handle_packet(k * 5 * MS, &d, &board);
        }
        p.end_window(10_000 * MS);
        let _ = p.report();
    }
}
