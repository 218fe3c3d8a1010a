//! Zero heap allocations per tick in steady state, checked with a counting
//! global allocator: a G.711 room of 40 (8 talking, K = 4, one on music on
//! hold, recording on) runs 1000 ticks with RTP arriving, every transmit
//! and event drained and record blocks recycled, and the allocation count
//! must not move. A second room does the same with G.722 and Opus legs in a
//! 16 kHz room (resamplers on both sides).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palaver_media::codec::{AudioEncoder, Codec};
use palaver_media::room::{MediaRoom, ParticipantId, ParticipantSpec, RoomCommand, RoomConfig};
use palaver_media::rtp::{RtpHeader, write_rtp};
use palaver_media::source::Prompt;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarding the caller's contract to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

struct Leg {
    id: ParticipantId,
    from: std::net::SocketAddr,
    codec: Codec,
    payload: Vec<u8>,
    seq: u16,
    ts: u32,
}

fn legs(codecs: &[Codec], talkers: usize) -> Vec<Leg> {
    codecs
        .iter()
        .enumerate()
        .map(|(i, &codec)| {
            let rate = codec.sample_rate();
            let n = rate as usize / 50;
            let amp = if i < talkers { 6000.0 } else { 0.0 };
            let pcm: Vec<i16> = (0..n)
                .map(|k| {
                    (amp * (2.0 * std::f64::consts::PI * (300.0 + 50.0 * i as f64) * k as f64
                        / f64::from(rate))
                    .sin()) as i16
                })
                .collect();
            let mut enc = AudioEncoder::new(codec, rate).unwrap();
            let mut payload = vec![0u8; 1500];
            let len = enc.encode(&pcm, &mut payload).unwrap();
            payload.truncate(len);
            Leg {
                id: ParticipantId(i as u32 + 1),
                from: ([127, 0, 0, 1], 30000 + 2 * i as u16).into(),
                codec,
                payload,
                seq: 1,
                ts: 0,
            }
        })
        .collect()
}

fn run_room(cfg: RoomConfig, mut legs: Vec<Leg>) -> (u64, u64) {
    let t0 = Instant::now();
    let at_start = ALLOCS.load(Ordering::Relaxed);
    let mut room = MediaRoom::new(t0, cfg).unwrap();
    // The counter sees this crate's allocations (guards against a test
    // that cannot fail).
    assert!(ALLOCS.load(Ordering::Relaxed) > at_start);
    for l in &legs {
        let mut spec = ParticipantSpec::new(l.codec, Some(l.from));
        spec.payload_type = l.codec.default_payload_type().unwrap_or(111);
        room.handle_command(t0, RoomCommand::AddParticipant { id: l.id, spec })
            .unwrap();
    }
    let music = Prompt {
        samples: vec![100i16; room.sample_rate() as usize].into(),
        rate: room.sample_rate(),
    };
    room.handle_command(
        t0,
        RoomCommand::MusicOnHold {
            id: legs[legs.len() - 1].id,
            music: Some(music),
        },
    )
    .unwrap();
    room.handle_command(t0, RoomCommand::StartRecording { recording: 1 })
        .unwrap();

    let mut pkt = [0u8; 1500];
    let mut out = [0u8; 1500];
    let mut sent = 0u64;
    let mut tick = |room: &mut MediaRoom, legs: &mut [Leg], k: u32, sent: &mut u64| {
        let now = t0 + Duration::from_millis(20 * u64::from(k));
        for l in legs.iter_mut() {
            let h = RtpHeader {
                payload_type: l.codec.default_payload_type().unwrap_or(111),
                sequence: l.seq,
                timestamp: l.ts,
                ssrc: l.id.0,
                ..Default::default()
            };
            l.seq = l.seq.wrapping_add(1);
            l.ts = l.ts.wrapping_add(l.codec.rtp_clock_rate() / 50);
            let n = write_rtp(&mut pkt, &h, None, &l.payload).unwrap();
            room.handle_rtp(now + Duration::from_millis(3), l.id, &pkt[..n], l.from);
        }
        room.handle_tick(now + Duration::from_millis(20));
        while room.poll_transmit(&mut out).is_some() {
            *sent += 1;
        }
        while room.poll_event().is_some() {}
        while let Some(b) = room.poll_record_block() {
            room.recycle_record_block(b.samples);
        }
    };
    // Warm-up: buffers reach their steady sizes, RTCP fires once, the
    // talk detectors settle.
    for k in 0..400 {
        tick(&mut room, &mut legs, k, &mut sent);
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    let sent_before = sent;
    for k in 400..1400 {
        tick(&mut room, &mut legs, k, &mut sent);
    }
    (ALLOCS.load(Ordering::Relaxed) - before, sent - sent_before)
}

#[test]
fn steady_rooms_allocate_nothing_per_tick() {
    let cfg = RoomConfig {
        rtcp_interval: Duration::from_secs(2),
        ..Default::default()
    };
    let (allocs, sent) = run_room(cfg, legs(&[Codec::Pcmu; 40], 8));
    assert!(sent >= 40 * 1000, "the room was sending ({sent} packets)");
    assert_eq!(
        allocs, 0,
        "G.711 room allocated {allocs} times in 1000 ticks"
    );

    let mut codecs = vec![Codec::G722; 6];
    codecs.extend([Codec::Pcmu, Codec::Pcma, Codec::Opus, Codec::Opus]);
    let cfg = RoomConfig {
        sample_rate: 16000,
        rtcp_interval: Duration::from_secs(2),
        ..Default::default()
    };
    let (allocs, sent) = run_room(cfg, legs(&codecs, 3));
    assert!(sent >= 10 * 1000);
    assert_eq!(
        allocs, 0,
        "mixed-codec room allocated {allocs} times in 1000 ticks"
    );
}
