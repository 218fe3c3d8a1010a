//! After a phone sends an RFC 4733 key press the way baresip 1.0 does
//! (captured on the wire: audio keeps flowing and an event packet follows
//! each audio packet, both drawing from the same sequence numbers), its
//! audio must come out of the room as clean as before: the event packets'
//! sequence numbers are not lost audio.

mod common;

use std::time::Duration;

use common::*;
use palaver_media::codec::Codec;
use palaver_media::dtmf::TelephoneEvent;
use palaver_media::room::{ParticipantId, RoomConfig};
use palaver_media::rtp::{RtpHeader, write_rtp};

fn on_time(_: ParticipantId, _: usize) -> Option<Duration> {
    Some(Duration::from_millis(5))
}

/// Purity of `freq` in `pcm`: power at `freq` over total power (1.0 = a pure tone).
fn purity(pcm: &[i16], rate: u32, freq: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / f64::from(rate)).cos();
    let (mut s1, mut s2, mut total) = (0.0f64, 0.0f64, 0.0f64);
    for &x in pcm {
        let x = f64::from(x);
        total += x * x;
        let s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let p = s1 * s1 + s2 * s2 - k * s1 * s2;
    (2.0 * p / pcm.len() as f64) / total
}

#[test]
fn audio_after_a_key_press_is_as_clean_as_before() {
    let a = Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000));
    let b = Phone::new(2, Codec::Pcmu, silence());
    let mut sim = Sim::new(RoomConfig::default(), vec![a, b]);
    sim.run(150, on_time);
    let before = sim.phone(2).received.len();
    let clean = purity(&sim.phone(2).received[before - 4000..], 8000, 440.0);

    // A key press: for 5 frames, each audio packet is followed by an event
    // packet with the next sequence number.
    let from = sim.phone(1).addr;
    let start_ts = sim.phone(1).ts;
    for k in 0..5u16 {
        let audio = sim.phone(1).next_packet();
        sim.now += Duration::from_millis(20);
        sim.room.handle_rtp(sim.now, ParticipantId(1), &audio, from);
        let ph = sim.phone(1);
        let h = RtpHeader {
            payload_type: 101,
            sequence: ph.seq,
            timestamp: start_ts,
            ssrc: ph.ssrc,
            marker: k == 0,
            ..Default::default()
        };
        ph.seq = ph.seq.wrapping_add(1);
        let ev = TelephoneEvent {
            event: 5,
            end: k >= 2,
            volume: 10,
            duration: 160 * (k.min(2) + 1),
        }
        .to_bytes();
        let mut buf = vec![0u8; 64];
        let n = write_rtp(&mut buf, &h, None, &ev).unwrap();
        sim.room
            .handle_rtp(sim.now, ParticipantId(1), &buf[..n], from);
        sim.drain();
        sim.room.handle_tick(sim.now);
        sim.ticks += 1;
        sim.drain();
    }
    let mark = sim.phone(2).received.len();
    sim.run(200, on_time);
    let after_all = &sim.phone(2).received[mark..];
    // Every half second after the key press must be clean: a glitch that
    // only heals seconds later is the bug this test is about.
    for w in 0..7 {
        let win = &after_all[200 + w * 4000..200 + (w + 1) * 4000];
        let p = purity(win, 8000, 440.0);
        assert!(clean > 0.95, "clean before: {clean:.3}");
        assert!(
            p > 0.9,
            "{:.1} s after the key press the tone is only {p:.3} pure (before: {clean:.3})",
            w as f64 * 0.5
        );
    }
}

/// A participant muted for a while and unmuted must come back clean: the
/// jitter buffer keeps playing out (and discarding) while the audio is not
/// mixed, so nothing piles up to be dropped later.
#[test]
fn audio_after_unmute_is_as_clean_as_before() {
    use palaver_media::room::RoomCommand;
    let a = Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000));
    let b = Phone::new(2, Codec::Pcmu, silence());
    let mut sim = Sim::new(RoomConfig::default(), vec![a, b]);
    sim.run(150, on_time);
    let now = sim.now;
    sim.room
        .handle_command(
            now,
            RoomCommand::SetMuted {
                id: ParticipantId(1),
                muted: true,
            },
        )
        .unwrap();
    sim.run(200, on_time);
    let now = sim.now;
    sim.room
        .handle_command(
            now,
            RoomCommand::SetMuted {
                id: ParticipantId(1),
                muted: false,
            },
        )
        .unwrap();
    let mark = sim.phone(2).received.len();
    sim.run(200, on_time);
    let after_all = &sim.phone(2).received[mark..];
    for w in 0..7 {
        let win = &after_all[400 + w * 4000..400 + (w + 1) * 4000];
        let p = purity(win, 8000, 440.0);
        assert!(
            p > 0.9,
            "{:.1} s after unmute the tone is only {p:.3} pure",
            w as f64 * 0.5
        );
    }
}
