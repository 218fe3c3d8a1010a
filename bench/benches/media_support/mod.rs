//! A room full of synthetic phones for the media benchmarks: every
//! participant sends one RTP packet per tick (5 % talk, the rest send
//! silence), and one measured step is "all packets in, one tick, every
//! packet out" — decode of all inputs and every encode included.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use palaver_media::codec::{AudioEncoder, Codec};
use palaver_media::room::{MediaRoom, ParticipantId, ParticipantSpec, RoomCommand, RoomConfig};
use palaver_media::rtp::{RtpHeader, audio_level_extension, write_rtp};

/// RFC 6464 extension id the synthetic phones use.
pub const LEVEL_EXT: u8 = 1;

struct Leg {
    id: ParticipantId,
    from: SocketAddr,
    pt: u8,
    clock_step: u32,
    /// Pre-encoded payloads cycled through (talkers speak a changing tone).
    frames: Vec<Vec<u8>>,
    level: u8,
    seq: u16,
    ts: u32,
}

pub struct BenchRoom {
    pub room: MediaRoom,
    legs: Vec<Leg>,
    t0: Instant,
    k: u64,
    pkt: Vec<u8>,
    out: Vec<u8>,
    pub sent: u64,
}

fn frames_for(codec: Codec, talker: bool, seed: usize) -> Vec<Vec<u8>> {
    let rate = codec.sample_rate();
    let n = rate as usize / 50;
    let mut enc = AudioEncoder::new(codec, rate).expect("encoder");
    let count = if talker { 50 } else { 1 };
    let freq = 200.0 + 23.0 * (seed % 40) as f64;
    (0..count)
        .map(|f| {
            let pcm: Vec<i16> = (0..n)
                .map(|i| {
                    if !talker {
                        return 0;
                    }
                    let t = (f * n + i) as f64 / f64::from(rate);
                    // A voiced-ish signal: tone with slow amplitude wobble.
                    (7000.0
                        * (1.0 + 0.3 * (6.0 * t).sin())
                        * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
                })
                .collect();
            let mut buf = vec![0u8; 1500];
            let len = enc.encode(&pcm, &mut buf).expect("encode");
            buf.truncate(len);
            buf
        })
        .collect()
}

impl BenchRoom {
    /// `n` participants on `codec`, 5 % of them (at least one) talking, in
    /// a room at the codec's natural rate.
    pub fn new(codec: Codec, n: usize) -> Self {
        let rate = match codec {
            Codec::Opus => 48000,
            Codec::G722 => 16000,
            _ => 8000,
        };
        Self::with_rate(codec, n, rate)
    }

    /// Same, mixing at `rate`.
    pub fn with_rate(codec: Codec, n: usize, rate: u32) -> Self {
        let t0 = Instant::now();
        let cfg = RoomConfig {
            sample_rate: rate,
            max_talkers: 4,
            ..Default::default()
        };
        let mut room = MediaRoom::new(t0, cfg).expect("room");
        let talkers = (n / 20).max(1);
        let silent_frames = frames_for(codec, false, 0);
        let mut legs = Vec::with_capacity(n);
        for i in 0..n {
            let talker = i < talkers;
            let from: SocketAddr = ([127, 0, 0, 1], 10000 + (i % 50000) as u16).into();
            let id = ParticipantId(i as u32 + 1);
            let mut spec = ParticipantSpec::new(codec, Some(from));
            spec.audio_level_ext_id = Some(LEVEL_EXT);
            let pt = spec.payload_type;
            room.handle_command(t0, RoomCommand::AddParticipant { id, spec })
                .expect("add");
            legs.push(Leg {
                id,
                from,
                pt,
                clock_step: codec.rtp_clock_rate() / 50,
                frames: if talker {
                    frames_for(codec, true, i)
                } else {
                    silent_frames.clone()
                },
                level: if talker { 20 } else { 127 },
                seq: i as u16,
                ts: (i as u32).wrapping_mul(7919),
            });
        }
        let mut b = Self {
            room,
            legs,
            t0,
            k: 0,
            pkt: vec![0; 1500],
            out: vec![0; 1500],
            sent: 0,
        };
        // Fill the jitter buffers and settle talk detection.
        for _ in 0..100 {
            b.step();
        }
        b
    }

    /// Participants.
    pub fn len(&self) -> usize {
        self.legs.len()
    }

    /// One packet from everyone, one tick, all datagrams drained.
    #[inline(never)]
    pub fn step(&mut self) {
        let now = self.t0 + Duration::from_millis(20 * self.k);
        let frame = self.k as usize;
        self.k += 1;
        for l in &mut self.legs {
            let h = RtpHeader {
                payload_type: l.pt,
                sequence: l.seq,
                timestamp: l.ts,
                ssrc: l.id.0,
                ..Default::default()
            };
            l.seq = l.seq.wrapping_add(1);
            l.ts = l.ts.wrapping_add(l.clock_step);
            let (profile, ext) = audio_level_extension(LEVEL_EXT, l.level < 127, l.level);
            let payload = &l.frames[frame % l.frames.len()];
            let n = write_rtp(&mut self.pkt, &h, Some((profile, &ext)), payload).expect("rtp");
            self.room
                .handle_rtp(now + Duration::from_millis(2), l.id, &self.pkt[..n], l.from);
        }
        self.room.handle_tick(now + Duration::from_millis(20));
        while self.room.poll_transmit(&mut self.out).is_some() {
            self.sent += 1;
        }
        while self.room.poll_event().is_some() {}
    }
}
