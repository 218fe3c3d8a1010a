//! The runtime on real loopback sockets: two UDP sockets act as phones and
//! send G.711 tones through a room; each must receive the other's tone
//! (checked by Goertzel on the decoded audio) and not its own.
//!
//! No sleeps: each phone sends its next packet when it receives one from
//! the engine, so the engine's 20 ms tick clocks the whole exchange.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use palaver_media::codec::{AudioDecoder, AudioEncoder, Codec};
use palaver_media::room::{MediaEvent, ParticipantSpec};
use palaver_media::rtp::{RtpHeader, RtpPacket, write_rtp};
use palaver_media_rt::{EngineConfig, MediaEngine, RoomEvent, RoomSettings};

fn amplitude(pcm: &[i16], freq: f64) -> f64 {
    let c = 2.0 * (2.0 * std::f64::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in pcm {
        let s0 = f64::from(x) + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2).max(0.0).sqrt() * 2.0 / pcm.len().max(1) as f64
}

fn free_range() -> (u16, u16) {
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    let p = probe.local_addr().unwrap().port().clamp(20000, 60000);
    (p, p + 40)
}

/// Sends `packets` packets of a tone, each after receiving one from the
/// engine; returns the decoded audio it received.
fn phone(sock: UdpSocket, to: SocketAddr, freq: f64, packets: usize, ssrc: u32) -> Vec<i16> {
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut enc = AudioEncoder::new(Codec::Pcmu, 8000).unwrap();
    let mut dec = AudioDecoder::new(Codec::Pcmu, 8000).unwrap();
    let mut heard = Vec::new();
    let mut buf = [0u8; 1500];
    let mut pkt = [0u8; 1500];
    let mut n = 0usize;
    for k in 0..packets {
        let pcm: Vec<i16> = (0..160)
            .map(|_| {
                n += 1;
                (8000.0 * (2.0 * std::f64::consts::PI * freq * n as f64 / 8000.0).sin()) as i16
            })
            .collect();
        let mut payload = [0u8; 160];
        enc.encode(&pcm, &mut payload).unwrap();
        let h = RtpHeader {
            payload_type: 0,
            sequence: k as u16,
            timestamp: (k * 160) as u32,
            ssrc,
            ..Default::default()
        };
        let len = write_rtp(&mut pkt, &h, None, &payload).unwrap();
        sock.send_to(&pkt[..len], to).unwrap();
        // Wait for the engine's next RTP packet (skip RTCP).
        loop {
            let (m, _) = sock.recv_from(&mut buf).expect("engine sends within 5 s");
            if let Ok(p) = RtpPacket::parse(&buf[..m])
                && p.header.payload_type == 0
            {
                let mut out = [0i16; 160];
                let got = dec.decode(p.payload, &mut out).unwrap();
                heard.extend_from_slice(&out[..got]);
                break;
            }
        }
    }
    heard
}

#[test]
fn two_phones_hear_each_other_through_the_engine() {
    let (low, high) = free_range();
    let mut cfg = EngineConfig::new([127, 0, 0, 1].into(), low, high);
    cfg.workers = 2;
    let engine = MediaEngine::start(cfg).unwrap();
    let handle = engine.handle();
    let (room, mut events) = handle.create_room(RoomSettings::default()).unwrap();

    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ia = room
        .add_participant(ParticipantSpec::new(
            Codec::Pcmu,
            Some(a.local_addr().unwrap()),
        ))
        .unwrap();
    let ib = room
        .add_participant(ParticipantSpec::new(
            Codec::Pcmu,
            Some(b.local_addr().unwrap()),
        ))
        .unwrap();
    assert_eq!(ia.local_rtp.port() % 2, 0);
    assert_eq!(ia.local_rtcp.unwrap().port(), ia.local_rtp.port() + 1);
    assert!((low..=high).contains(&ib.local_rtp.port()));
    assert_eq!(handle.ports_in_use(), 2);

    let ta = std::thread::spawn(move || phone(a, ia.local_rtp, 440.0, 150, 0xA));
    let tb = std::thread::spawn(move || phone(b, ib.local_rtp, 1000.0, 150, 0xB));
    let heard_a = ta.join().unwrap();
    let heard_b = tb.join().unwrap();

    let tail = |v: &[i16]| v[v.len() - 8000..].to_vec();
    let (a_hears_b, a_hears_a) = (
        amplitude(&tail(&heard_a), 1000.0),
        amplitude(&tail(&heard_a), 440.0),
    );
    let (b_hears_a, b_hears_b) = (
        amplitude(&tail(&heard_b), 440.0),
        amplitude(&tail(&heard_b), 1000.0),
    );
    assert!(a_hears_b > 6000.0, "A hears B at {a_hears_b:.0}");
    assert!(b_hears_a > 6000.0, "B hears A at {b_hears_a:.0}");
    assert!(a_hears_a < 100.0, "A hears itself at {a_hears_a:.0}");
    assert!(b_hears_b < 100.0, "B hears itself at {b_hears_b:.0}");
    // Every packet the workers read carried the kernel's receive stamp
    // (what the stamp is worth is checked in the crate's `arrival` tests).
    assert_eq!(handle.unstamped_packets(), 0);

    // Closing frees the ports and ends the event stream.
    room.close().unwrap();
    let mut closed = false;
    while let Some(ev) = events.blocking_recv() {
        if let RoomEvent::Media(MediaEvent::Stats { .. })
        | RoomEvent::Media(MediaEvent::Talking { .. }) = ev
        {
            continue;
        }
        if ev == RoomEvent::Closed {
            closed = true;
            break;
        }
    }
    assert!(closed);
    assert_eq!(handle.ports_in_use(), 0);
    engine.shutdown();
}

#[test]
fn recording_through_the_engine_produces_a_wav() {
    let (low, high) = free_range();
    let mut cfg = EngineConfig::new([127, 0, 0, 1].into(), low, high);
    cfg.workers = 1;
    let engine = MediaEngine::start(cfg).unwrap();
    let (room, mut events) = engine
        .handle()
        .create_room(RoomSettings::default())
        .unwrap();
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    let ia = room
        .add_participant(ParticipantSpec::new(
            Codec::Pcmu,
            Some(a.local_addr().unwrap()),
        ))
        .unwrap();
    room.add_participant(ParticipantSpec::new(
        Codec::Pcmu,
        Some(b.local_addr().unwrap()),
    ))
    .unwrap();
    let dir = std::env::temp_dir().join(format!("palaver-rt-rec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("room.wav");
    let rec = room.start_recording(path.clone()).unwrap();
    let heard = phone(a, ia.local_rtp, 440.0, 100, 0xA);
    assert_eq!(heard.len(), 100 * 160);
    room.stop_recording().unwrap();
    let mut finished = None;
    while let Some(ev) = events.blocking_recv() {
        if let RoomEvent::RecordingFinished {
            recording,
            path: p,
            samples,
        } = ev
        {
            assert_eq!(recording, rec);
            assert_eq!(p, path);
            finished = Some(samples);
            break;
        }
    }
    let samples = finished.unwrap();
    assert!(samples > 8000, "{samples}");
    let r = palaver_media::recorder::repair(&path).unwrap();
    assert_eq!(r, palaver_media::recorder::Repair::Intact);
    let data = std::fs::read(&path).unwrap();
    let pcm: Vec<i16> = data[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert_eq!(pcm.len() as u64, samples);
    let tail = &pcm[pcm.len() - 4000..];
    assert!(amplitude(tail, 440.0) > 6000.0);
    std::fs::remove_dir_all(&dir).unwrap();
    room.close().unwrap();
}
