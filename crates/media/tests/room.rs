//! Room behaviour end to end on synthetic time: phones encode real audio,
//! the room mixes, phones decode what they get, and the checks are made on
//! the received audio.

mod common;

use std::time::Duration;

use common::*;
use palaver_media::codec::Codec;
use palaver_media::dtmf::{DtmfSource, TelephoneEvent};
use palaver_media::room::{MediaEvent, PacketKind, ParticipantId, RoomCommand, RoomConfig};
use palaver_media::rtp::{RtpHeader, write_rtp};
use palaver_media::source::{Playback, Tone};

fn on_time(_: ParticipantId, _: usize) -> Option<Duration> {
    Some(3 * MS)
}

#[test]
fn tone_from_a_reaches_b_and_c_at_its_level_and_a_does_not_hear_itself() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, silence()),
        Phone::new(3, Codec::Pcma, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    sim.run(100, on_time);
    for id in [2, 3] {
        let p = sim.phone(id);
        let a = amplitude(last_secs(p, 1.0), 8000, 440.0);
        // Within 0.5 dB of what A sent (G.711 both ways).
        assert!(
            (a - 8000.0).abs() < 8000.0 * 0.06,
            "phone {id} hears 440 Hz at {a:.0}"
        );
    }
    let a = sim.phone(1);
    let own = amplitude(last_secs(a, 1.0), 8000, 440.0);
    assert!(own < 20.0, "A hears itself at {own:.0}");
    assert!(rms(last_secs(a, 1.0)) < 20.0);
}

#[test]
fn mixed_codecs_are_transcoded_in_a_wideband_room() {
    let phones = vec![
        Phone::new(1, Codec::G722, tone(1000.0, 6000.0, 16000)),
        Phone::new(2, Codec::Pcmu, silence()),
        Phone::new(3, Codec::Opus, tone(600.0, 6000.0, 48000)),
    ];
    let cfg = RoomConfig {
        sample_rate: 16000,
        ..Default::default()
    };
    let mut sim = Sim::new(cfg, phones);
    sim.run(150, on_time);
    let b = sim.phone(2);
    let (a1k, a600) = (
        amplitude(last_secs(b, 1.0), 8000, 1000.0),
        amplitude(last_secs(b, 1.0), 8000, 600.0),
    );
    assert!(
        (a1k - 6000.0).abs() < 900.0,
        "PCMU hears G.722 tone at {a1k:.0}"
    );
    assert!(
        (a600 - 6000.0).abs() < 900.0,
        "PCMU hears Opus tone at {a600:.0}"
    );
    let c = sim.phone(3);
    let a = amplitude(last_secs(c, 1.0), 48000, 1000.0);
    assert!(
        (a - 6000.0).abs() < 900.0,
        "Opus hears G.722 tone at {a:.0}"
    );
    assert!(
        amplitude(last_secs(c, 1.0), 48000, 600.0) < 200.0,
        "Opus phone hears itself"
    );
    let a = sim.phone(1);
    let g = amplitude(last_secs(a, 1.0), 16000, 600.0);
    assert!(
        (g - 6000.0).abs() < 900.0,
        "G.722 hears Opus tone at {g:.0}"
    );
    assert!(amplitude(last_secs(a, 1.0), 16000, 1000.0) < 200.0);
}

#[test]
fn two_party_call_mouth_to_ear_is_short() {
    // A sends silence then a sharp onset at frame 50; measure when B's
    // received stream shows it, against when A sent it.
    let onset = 50usize;
    let src: Source = Box::new(move |frame, out: &mut [i16]| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = if frame >= onset {
                (8000.0 * (i as f64 * 0.3).sin()) as i16
            } else {
                0
            };
        }
    });
    let phones = vec![
        Phone::new(1, Codec::Pcmu, src),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    // A's packets take 2 ms to reach the room.
    sim.run(100, |_, _| Some(2 * MS));
    let b = sim.phone(2);
    let first = b.received.iter().position(|s| s.abs() > 1000).unwrap();
    // Sample index in B's stream → time the packet was sent by the room.
    let pkt_index = first / 160;
    let received_at = b.rx_packets[pkt_index].0;
    // A finished capturing the onset frame at t0 + (onset + 1) * 20 ms and
    // sent it then (the simulator sends at frame start + transit).
    let sent_at = sim.t0 + 20 * MS * onset as u32 + 2 * MS;
    let delay = received_at - sent_at;
    assert!(delay <= 40 * MS, "bridge delay {delay:?}");
}

#[test]
fn loss_reorder_and_jitter_keep_the_tone_continuous() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(500.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    // A: 5% loss, every 7th packet 25 ms late (reordered past the next),
    // plus ±4 ms jitter. B: clean.
    sim.run(400, |id, f| {
        if id.0 != 1 {
            return Some(2 * MS);
        }
        if f % 20 == 13 {
            return None;
        }
        let jitter = (f * 7919 % 9) as u32 * MS;
        Some(if f % 7 == 3 { 25 * MS + jitter } else { jitter })
    });
    let b = sim.phone(2);
    let audio = last_secs(b, 5.0);
    // Every 20 ms window carries the tone: concealment filled the gaps and
    // nothing was dropped as late once the buffer adapted.
    let quiet_frames = audio
        .chunks(160)
        .filter(|f| amplitude(f, 8000, 500.0) < 3000.0)
        .count();
    assert!(quiet_frames <= 2, "{quiet_frames} frames without the tone");
    let st = sim.room.stats(ParticipantId(1)).unwrap();
    assert!(st.jitter_buffer.lost >= 15, "{:?}", st.jitter_buffer);
    assert!(st.jitter_target >= 25 * MS, "target {:?}", st.jitter_target);
    assert!(st.packets_lost >= 15);
    assert!(st.jitter_ms > 0.5);
}

fn event_packet(ph: &mut Phone, event: u8, end: bool, duration: u16, ts: u32) -> Vec<u8> {
    let h = RtpHeader {
        payload_type: 101,
        sequence: ph.seq,
        timestamp: ts,
        ssrc: ph.ssrc,
        ..Default::default()
    };
    ph.seq = ph.seq.wrapping_add(1);
    let mut buf = vec![0u8; 64];
    let p = TelephoneEvent {
        event,
        end,
        volume: 10,
        duration,
    }
    .to_bytes();
    let n = write_rtp(&mut buf, &h, None, &p).unwrap();
    buf.truncate(n);
    buf
}

fn digits(sim: &Sim) -> Vec<(u32, char, DtmfSource)> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf {
                participant,
                digit,
                source,
            } => Some((participant.0, *digit, *source)),
            _ => None,
        })
        .collect()
}

fn send_rfc4733(sim: &mut Sim, id: u32, event: u8) {
    let from = sim.phone(id).addr;
    let ts = sim.phone(id).ts;
    for (k, (end, d)) in [
        (false, 160u16),
        (false, 320),
        (false, 480),
        (true, 640),
        (true, 640),
        (true, 640),
    ]
    .into_iter()
    .enumerate()
    {
        let pkt = event_packet(sim.phone(id), event, end, d, ts);
        sim.now += if k < 4 { 20 * MS } else { MS };
        sim.room.handle_rtp(sim.now, ParticipantId(id), &pkt, from);
        sim.drain();
    }
}

#[test]
fn dtmf_in_each_form_and_two_forms_at_once() {
    let dtmf_src = |digit: char, from_frame: usize| -> Source {
        let mut pb = Playback::tone(0, Tone::dtmf(digit, 100).unwrap());
        Box::new(move |f, out: &mut [i16]| {
            out.fill(0);
            if f >= from_frame {
                pb.fill(8000, out);
            }
        })
    };
    let phones = vec![
        Phone::new(1, Codec::Pcmu, silence()),
        Phone::new(2, Codec::Pcmu, dtmf_src('7', 10)),
        Phone::new(3, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    sim.run(30, on_time);
    // RFC 4733 alone from phone 1.
    send_rfc4733(&mut sim, 1, 5);
    // SIP INFO alone from phone 3.
    let now = sim.now;
    sim.room
        .handle_dtmf_info(now, ParticipantId(3), '#', Duration::from_millis(100))
        .unwrap();
    sim.drain();
    assert_eq!(
        digits(&sim),
        vec![
            (2, '7', DtmfSource::InBand),
            (1, '5', DtmfSource::Rfc4733),
            (3, '#', DtmfSource::SipInfo)
        ]
    );

    // Phone 1 presses 9 and its gateway sends RFC 4733 and INFO: one digit.
    sim.events.clear();
    send_rfc4733(&mut sim, 1, 9);
    let now = sim.now + 50 * MS;
    sim.room
        .handle_dtmf_info(now, ParticipantId(1), '9', Duration::from_millis(100))
        .unwrap();
    sim.drain();
    assert_eq!(digits(&sim), vec![(1, '9', DtmfSource::Rfc4733)]);
    // The event packets took sequence numbers between audio packets: they
    // are not lost audio.
    sim.run(10, on_time);
    let st = sim.room.stats(ParticipantId(1)).unwrap();
    assert_eq!(st.packets_lost, 0);
    assert_eq!(st.jitter_buffer.lost, 0);
}

#[test]
fn rfc4733_and_inband_together_are_one_digit_and_repeats_count() {
    // Phone 1's gateway sends the key as in-band audio and as RFC 4733 at
    // the same time, twice ("00").
    let phones = vec![
        Phone::new(1, Codec::Pcmu, silence()),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    sim.run(10, on_time);
    for _ in 0..2 {
        let mut pb = Playback::tone(0, Tone::dtmf('0', 100).unwrap());
        sim.phone(1).source = Box::new(move |_, out: &mut [i16]| {
            out.fill(0);
            pb.fill(8000, out);
        });
        send_rfc4733(&mut sim, 1, 0);
        sim.run(15, on_time);
        sim.phone(1).source = silence();
        sim.run(10, on_time);
    }
    let d = digits(&sim);
    assert_eq!(d.len(), 2, "{d:?}");
    assert!(d.iter().all(|x| x.1 == '0'));
}

#[test]
fn fifty_loud_talkers_do_not_wrap_or_clip() {
    let mut phones: Vec<Phone> = (1..=50)
        .map(|i| {
            Phone::new(
                i,
                Codec::Pcmu,
                tone(200.0 + 37.0 * f64::from(i), 30000.0, 8000),
            )
        })
        .collect();
    phones.push(Phone::new(51, Codec::Pcmu, silence()));
    let cfg = RoomConfig {
        max_talkers: 50,
        ..Default::default()
    };
    let mut sim = Sim::new(cfg, phones);
    sim.run(50, on_time);
    for id in [1, 25, 51] {
        let p = sim.phone(id);
        let a = last_secs(p, 0.6);
        let peak = a.iter().map(|s| s.saturating_abs()).max().unwrap();
        // Limited below full scale: G.711's top code is 32124.
        assert!(peak < 30000, "phone {id} peak {peak}");
        assert!(rms(a) > 1500.0, "phone {id} hears the crowd: {}", rms(a));
        // No wrap-around: consecutive samples never jump across the range.
        let max_step = a
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        assert!(max_step < 40000, "phone {id} step {max_step}");
    }
}

#[test]
fn strangers_are_dropped_and_rtp_goes_where_the_peer_sends_from() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    // Phone 2 is behind NAT: SDP said 127.0.0.1:20004, it sends from :40000.
    let nat = addr(40000);
    sim.phone(2).addr = nat;
    sim.run(20, on_time);
    assert_eq!(sim.room.remote_rtp(ParticipantId(2)), Some(nat));
    assert!(
        sim.transmits
            .iter()
            .any(|t| t.participant == ParticipantId(2) && t.to == nat)
    );
    assert!(!sim.phone(2).received.is_empty());
    // A stranger injects audio into participant 1's port.
    let mut evil = Phone::new(9, Codec::Pcmu, tone(3000.0, 20000.0, 8000));
    evil.addr = addr(50000);
    for _ in 0..20 {
        let pkt = evil.next_packet();
        let now = sim.now;
        sim.room.handle_rtp(now, ParticipantId(1), &pkt, evil.addr);
    }
    // Garbage too.
    let now = sim.now;
    sim.room
        .handle_rtp(now, ParticipantId(1), &[0x80, 0, 1], addr(20002));
    sim.run(20, on_time);
    let st = sim.room.stats(ParticipantId(1)).unwrap();
    assert_eq!(st.strangers_dropped, 20);
    assert_eq!(st.malformed_dropped, 1);
    let b = sim.phone(2);
    assert!(amplitude(last_secs(b, 0.3), 8000, 3000.0) < 50.0);
    assert_eq!(sim.room.remote_rtp(ParticipantId(1)), Some(addr(20002)));
}

#[test]
fn talk_events_are_paired() {
    let src: Source = Box::new(|f, out: &mut [i16]| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = if (20..70).contains(&f) {
                (6000.0 * ((f * 160 + i) as f64 * 0.2).sin()) as i16
            } else {
                0
            };
        }
    });
    let phones = vec![
        Phone::new(1, Codec::Pcmu, src),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    sim.run(150, on_time);
    let talk: Vec<_> = sim
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                MediaEvent::Talking { .. } | MediaEvent::StoppedTalking { .. }
            )
        })
        .cloned()
        .collect();
    assert_eq!(
        talk,
        vec![
            MediaEvent::Talking {
                participant: ParticipantId(1)
            },
            MediaEvent::StoppedTalking {
                participant: ParticipantId(1)
            }
        ]
    );
}

#[test]
fn prompts_to_one_participant_chain_and_report() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, silence()),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    let now = sim.now;
    sim.room
        .handle_command(
            now,
            RoomCommand::Play {
                id: ParticipantId(2),
                playback: Playback::tone(7, Tone::join_beep()),
            },
        )
        .unwrap();
    sim.room
        .handle_command(
            now,
            RoomCommand::Play {
                id: ParticipantId(2),
                playback: Playback::tone(8, Tone::confirmation()),
            },
        )
        .unwrap();
    sim.run(50, on_time);
    let fin: Vec<_> = sim
        .events
        .iter()
        .filter(|e| matches!(e, MediaEvent::PromptFinished { .. }))
        .cloned()
        .collect();
    assert_eq!(
        fin,
        vec![
            MediaEvent::PromptFinished {
                participant: Some(ParticipantId(2)),
                id: 7,
                completed: true
            },
            MediaEvent::PromptFinished {
                participant: Some(ParticipantId(2)),
                id: 8,
                completed: true
            },
        ]
    );
    let b = sim.phone(2).received.clone();
    assert!(
        amplitude(&b[..1600], 8000, 600.0) > 1000.0,
        "B heard the beep"
    );
    assert!(rms(&sim.phone(1).received) < 20.0, "A heard nothing");
}

#[test]
fn mute_deaf_and_admission() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, tone(700.0, 8000.0, 8000)),
        Phone::new(3, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
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
    sim.room
        .handle_command(
            now,
            RoomCommand::SetDeaf {
                id: ParticipantId(3),
                deaf: true,
            },
        )
        .unwrap();
    sim.run(50, on_time);
    let b = sim.phone(2);
    assert!(
        amplitude(last_secs(b, 0.5), 8000, 440.0) < 30.0,
        "muted A is not heard"
    );
    let c = sim.phone(3);
    let r = rms(last_secs(c, 0.5));
    assert!(r > 1.0 && r < 30.0, "deaf C hears comfort noise, rms {r}");
    let a = sim.phone(1);
    assert!(
        amplitude(last_secs(a, 0.5), 8000, 700.0) > 7000.0,
        "muted A still hears B"
    );

    // A is taken out of the mix (waiting for the host): hears only music.
    let now = sim.now;
    let music = palaver_media::source::Prompt {
        samples: vec![3000i16; 8000].into(),
        rate: 8000,
    };
    sim.room
        .handle_command(
            now,
            RoomCommand::SetMuted {
                id: ParticipantId(1),
                muted: false,
            },
        )
        .unwrap();
    sim.room
        .handle_command(
            now,
            RoomCommand::SetInMix {
                id: ParticipantId(1),
                in_mix: false,
            },
        )
        .unwrap();
    sim.room
        .handle_command(
            now,
            RoomCommand::MusicOnHold {
                id: ParticipantId(1),
                music: Some(music),
            },
        )
        .unwrap();
    sim.run(50, on_time);
    let a = sim.phone(1);
    assert!(
        amplitude(last_secs(a, 0.5), 8000, 700.0) < 30.0,
        "waiting A does not hear the room"
    );
    assert!(
        last_secs(a, 0.5).iter().all(|&s| (s - 3000).abs() < 100),
        "A hears its music"
    );
    let b = sim.phone(2);
    assert!(
        amplitude(last_secs(b, 0.5), 8000, 440.0) < 30.0,
        "waiting A is not mixed"
    );
}

#[test]
fn shared_listeners_get_the_same_encoded_frame() {
    let phones = vec![
        Phone::new(1, Codec::G722, tone(440.0, 8000.0, 16000)),
        Phone::new(2, Codec::G722, silence()),
        Phone::new(3, Codec::G722, silence()),
        Phone::new(4, Codec::G722, silence()),
    ];
    let cfg = RoomConfig {
        sample_rate: 16000,
        max_talkers: 2,
        ..Default::default()
    };
    let mut sim = Sim::new(cfg, phones);
    sim.run(30, on_time);
    let payload = |p: &Phone, i: usize| p.rx_packets[p.rx_packets.len() - i].1[12..].to_vec();
    for i in 1..5 {
        assert_eq!(payload(sim.phone(3), i), payload(sim.phone(4), i));
    }
    // And the listeners do hear A cleanly (the shared G.722 stream is one
    // continuous encoder state).
    let a = amplitude(last_secs(sim.phone(4), 0.3), 16000, 440.0);
    assert!((a - 8000.0).abs() < 800.0, "{a}");
}

#[test]
fn recording_captures_the_room_mix() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let cfg = RoomConfig {
        record_block: Duration::from_millis(200),
        ..Default::default()
    };
    let mut sim = Sim::new(cfg, phones);
    let now = sim.now;
    sim.room
        .handle_command(now, RoomCommand::StartRecording { recording: 1 })
        .unwrap();
    sim.run(60, on_time);
    let now = sim.now;
    sim.room
        .handle_command(now, RoomCommand::StopRecording)
        .unwrap();
    sim.drain();
    assert_eq!(sim.recorded.len(), 60 * 160);
    let a = amplitude(&sim.recorded[4000..], 8000, 440.0);
    assert!((a - 8000.0).abs() < 500.0, "{a}");
}

#[test]
fn rtcp_reports_and_round_trip() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    sim.run(400, on_time);
    let reports: Vec<_> = sim.rtcp.iter().filter(|(p, _)| p.0 == 1).collect();
    assert!(!reports.is_empty());
    let (_, data) = reports.last().unwrap();
    let mut sr_ntp = None;
    for p in palaver_media::rtcp::parse_compound(data) {
        if let palaver_media::rtcp::RtcpPacket::SenderReport {
            info, mut reports, ..
        } = p.unwrap()
        {
            sr_ntp = Some(info.ntp);
            let b = reports.next().unwrap();
            assert_eq!(b.ssrc, 0x1001);
            assert_eq!(b.cumulative_lost, 0);
        }
    }
    // The phone answers with an RR echoing the SR 30 ms after it, held 10 ms.
    let ntp = sr_ntp.expect("room sent an SR");
    let ssrc = sim.room.local_ssrc(ParticipantId(1)).unwrap();
    let block = palaver_media::rtcp::ReportBlock {
        ssrc,
        last_sr: palaver_media::rtcp::ntp_mid32(ntp),
        delay_since_last_sr: palaver_media::rtcp::to_q16(10 * MS),
        ..Default::default()
    };
    assert!(
        sim.transmits
            .iter()
            .any(|t| t.kind == PacketKind::Rtcp && t.participant.0 == 1 && t.to == addr(20003))
    );
    let mut buf = [0u8; 100];
    let n = palaver_media::rtcp::write_report(&mut buf, 0x1001, None, &[block]).unwrap();
    // Find when that SR was sent: the room's clock maps now to NTP; send the
    // RR 30 ms of room time after the SR's NTP time.
    let sr_time = sim.t0 + Duration::from_nanos(((ntp as u128 * 1_000_000_000) >> 32) as u64);
    sim.room
        .handle_rtcp(sr_time + 30 * MS, ParticipantId(1), &buf[..n], addr(20003));
    let st = sim.room.stats(ParticipantId(1)).unwrap();
    let rtt = st.rtt.unwrap();
    assert!(rtt >= 19 * MS && rtt <= 21 * MS, "{rtt:?}");
}

#[test]
fn rtp_timeout_is_reported_once() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, silence()),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let cfg = RoomConfig {
        rtp_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let mut sim = Sim::new(cfg, phones);
    sim.phone(1).muted_tx = true;
    sim.run(400, on_time);
    let t: Vec<_> = sim
        .events
        .iter()
        .filter(|e| matches!(e, MediaEvent::RtpTimeout { .. }))
        .collect();
    assert_eq!(
        t,
        vec![&MediaEvent::RtpTimeout {
            participant: ParticipantId(1)
        }]
    );
}

#[test]
fn ptime_30_and_hold() {
    let mut a = Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000));
    let b = Phone::new(2, Codec::Pcmu, silence());
    let mut spec = a.spec();
    spec.ptime = 30;
    a.pt = 0;
    let mut sim = Sim::new(RoomConfig::default(), vec![b]);
    let now = sim.now;
    sim.room
        .handle_command(now, RoomCommand::AddParticipant { id: a.id, spec })
        .unwrap();
    sim.phones.push(a);
    sim.run(30, on_time);
    let sizes: Vec<usize> = sim
        .phone(1)
        .rx_packets
        .iter()
        .map(|(_, p)| p.len() - 12)
        .collect();
    assert!(sizes.iter().all(|&s| s == 240), "{sizes:?}");
    assert_eq!(sizes.len(), 30 * 20 / 30);
    // Hold: the room stops sending to phone 2.
    let n = sim.phone(2).rx_packets.len();
    let now = sim.now;
    sim.room
        .handle_command(
            now,
            RoomCommand::SetDirection {
                id: ParticipantId(2),
                direction: palaver_media::room::Direction::RecvOnly,
            },
        )
        .unwrap();
    sim.run(10, on_time);
    assert_eq!(sim.phone(2).rx_packets.len(), n);
}

#[test]
fn dtmf_relay_in_a_two_party_call() {
    let a = Phone::new(1, Codec::Pcmu, silence());
    let b = Phone::new(2, Codec::Pcmu, silence());
    let mut spec = a.spec();
    spec.relay_dtmf = true;
    let mut sim = Sim::new(RoomConfig::default(), vec![b]);
    let now = sim.now;
    sim.room
        .handle_command(now, RoomCommand::AddParticipant { id: a.id, spec })
        .unwrap();
    sim.phones.push(a);
    sim.run(5, on_time);
    send_rfc4733(&mut sim, 1, 3);
    sim.run(20, on_time);
    let events: Vec<TelephoneEvent> = sim
        .phone(2)
        .rx_packets
        .iter()
        .filter(|(_, p)| p[1] & 0x7F == 101)
        .map(|(_, p)| TelephoneEvent::parse(&p[12..]).unwrap())
        .collect();
    assert!(events.len() >= 4, "{events:?}");
    assert!(events.iter().all(|e| e.event == 3));
    assert_eq!(events.iter().filter(|e| e.end).count(), 3);
}

#[test]
fn ssrc_change_is_followed() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    sim.run(20, on_time);
    sim.phone(1).ssrc = 0xABCD;
    sim.phone(1).seq = 40000;
    sim.run(50, on_time);
    assert!(sim.events.contains(&MediaEvent::SsrcChanged {
        participant: ParticipantId(1),
        ssrc: 0xABCD
    }));
    let a = amplitude(last_secs(sim.phone(2), 0.5), 8000, 440.0);
    assert!((a - 8000.0).abs() < 500.0, "{a}");
}

/// A voiced, speech-like source (harmonics of 140 Hz with a syllabic
/// envelope): Opus's VAD treats it as speech, so the encoder adds in-band
/// FEC the room can use.
fn voiced(rate: u32) -> Source {
    let mut n = 0usize;
    Box::new(move |_, out: &mut [i16]| {
        for o in out.iter_mut() {
            let t = n as f64 / f64::from(rate);
            let env = 0.7 + 0.3 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
            let v: f64 = (1..20)
                .map(|h| {
                    (2.0 * std::f64::consts::PI * 140.0 * f64::from(h) * t + f64::from(h)).sin()
                        / f64::from(h)
                })
                .sum();
            *o = (3000.0 * env * v) as i16;
            n += 1;
        }
    })
}

#[test]
fn opus_loss_is_concealed() {
    let phones = vec![
        Phone::new(1, Codec::Opus, voiced(48000)),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let cfg = RoomConfig {
        sample_rate: 48000,
        ..Default::default()
    };
    let mut sim = Sim::new(cfg, phones);
    sim.run(300, |id, f| {
        if id.0 == 1 && f % 10 == 5 {
            None
        } else {
            Some(3 * MS)
        }
    });
    let b = sim.phone(2);
    let audio = last_secs(b, 4.0);
    // No frame drops to silence: concealment (FEC from the next packet
    // where the encoder put it, decoder PLC otherwise) carries every gap.
    // libopus itself dips for about one frame after a loss, hence 10 %.
    let levels: Vec<f64> = audio
        .chunks(160)
        .map(|f| amplitude(f, 8000, 140.0))
        .collect();
    let typical = levels.iter().sum::<f64>() / levels.len() as f64;
    let worst = levels.iter().cloned().fold(f64::MAX, f64::min);
    assert!(
        worst > typical * 0.1,
        "worst frame {worst:.0} vs typical {typical:.0}"
    );
    let st = sim.room.stats(ParticipantId(1)).unwrap();
    assert!(st.jitter_buffer.lost >= 25, "{:?}", st.jitter_buffer);
    assert_eq!(st.jitter_buffer.underruns, 0);
}

#[test]
fn reinvite_changes_codec_and_address() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let cfg = RoomConfig {
        sample_rate: 16000,
        ..Default::default()
    };
    let mut sim = Sim::new(cfg, phones);
    sim.run(30, on_time);
    // Phone 1 moves to G.722 on a new port.
    let new = Phone::new(1, Codec::G722, tone(700.0, 8000.0, 16000));
    let (codec, pt) = (new.codec, new.pt);
    let now = sim.now;
    sim.room
        .handle_command(
            now,
            RoomCommand::UpdateCodec {
                id: ParticipantId(1),
                codec,
                payload_type: pt,
                telephone_event_pt: Some(101),
                ptime: 20,
            },
        )
        .unwrap();
    sim.room
        .handle_command(
            now,
            RoomCommand::UpdateRemote {
                id: ParticipantId(1),
                remote_rtp: Some(addr(30000)),
                remote_rtcp: None,
                rtcp_mux: true,
            },
        )
        .unwrap();
    let mut new = new;
    new.addr = addr(30000);
    sim.phones[0] = new;
    sim.run(50, on_time);
    let b = sim.phone(2);
    assert!(amplitude(last_secs(b, 0.5), 8000, 700.0) > 6000.0);
    assert_eq!(sim.room.remote_rtp(ParticipantId(1)), Some(addr(30000)));
    let a = sim.phone(1);
    assert!(
        !a.received.is_empty(),
        "the room sends G.722 to the new address"
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn garbage_never_panics_the_room(pkts in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200), 1..50)) {
        let phones = vec![Phone::new(1, Codec::Pcmu, silence()), Phone::new(2, Codec::Opus, silence())];
        let mut sim = Sim::new(RoomConfig::default(), phones);
        for (i, p) in pkts.iter().enumerate() {
            let now = sim.now;
            let mut p = p.clone();
            if i % 2 == 0 && p.len() > 2 {
                // Make some of it look like RTP/RTCP version 2.
                p[0] = 0x80 | (p[0] & 0x3F);
            }
            sim.room.handle_rtp(now, ParticipantId(1 + (i % 2) as u32), &p, addr(20002));
            sim.room.handle_rtcp(now, ParticipantId(2), &p, addr(20005));
            if i % 5 == 0 {
                sim.run(1, on_time);
            }
            sim.drain();
        }
    }
}

#[test]
fn g722_with_audio_levels_is_always_decoded_so_onsets_are_clean() {
    // Phone 1 (G.722 with RFC 6464 levels) is silent for 1 s, then talks.
    // Skipping its silent frames would leave the ADPCM decoder out of step
    // with the phone's encoder (an audible overshoot at the onset).
    let src: Source = Box::new(|f, out: &mut [i16]| {
        for (i, o) in out.iter_mut().enumerate() {
            *o = if f >= 50 {
                (7000.0
                    * (2.0 * std::f64::consts::PI * 900.0 * (f * 320 + i) as f64 / 16000.0).sin())
                    as i16
            } else {
                0
            };
        }
    });
    let mut a = Phone::new(1, Codec::G722, src);
    a.level_ext = Some(1);
    let phones = vec![a, Phone::new(2, Codec::G722, silence())];
    let cfg = RoomConfig {
        sample_rate: 16000,
        ..Default::default()
    };
    let mut sim = Sim::new(cfg, phones);
    sim.run(100, on_time);
    let b = sim.phone(2);
    let n = b.received.len();
    // From the third frame of the talk spurt on, the tone is at full level.
    let spurt = &b.received[n - 48 * 320..];
    for (k, f) in spurt.chunks(320).enumerate().skip(2) {
        let a = amplitude(f, 16000, 900.0);
        assert!((a - 7000.0).abs() < 900.0, "frame {k}: {a:.0}");
    }
}

/// The worker is descheduled for 60–100 ms about every 0.7 s (a busy
/// 2-core machine): A's packets leave on time but reach `handle_rtp` in
/// bursts. Returns the room and what B heard, per 200 ms block, from the
/// second second on.
fn stalled_worker_run(kernel_stamps: bool) -> (Sim, Vec<f64>) {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, silence()),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    let stalls: Vec<Stall> = (1..30u32)
        .map(|j| Stall {
            start: 700 * MS * j + 7 * MS * (j % 3),
            length: (60 + 10 * (j % 5)) * MS,
        })
        .collect();
    sim.run_stalled(1000, |_, _| Some(2 * MS), &stalls, kernel_stamps);
    let heard = sim.phone(2).received[8000..].to_vec();
    let blocks = heard
        .chunks_exact(1600)
        .map(|b| purity(b, 8000, 440.0))
        .collect();
    (sim, blocks)
}

/// Issue 3/6: on a clean network the jitter buffer sits at its floor and,
/// once settled, never inserts or drops a frame — also when the worker is
/// late, because arrivals carry the kernel's receive time and missed ticks
/// run at their nominal times.
#[test]
fn a_descheduled_worker_with_kernel_stamps_keeps_the_tone_clean() {
    let (mut sim, blocks) = stalled_worker_run(true);
    let st = sim.room.stats(ParticipantId(1)).unwrap();
    let jb = st.jitter_buffer;
    assert_eq!(jb.stalls + jb.shrinks + jb.lost + jb.late, 0, "{jb:?}");
    assert!(st.jitter_target <= 22 * MS, "target {:?}", st.jitter_target);
    for (k, p) in blocks.iter().enumerate() {
        assert!(*p >= 0.98, "block {k}: purity {p:.3}");
    }
    let b = sim.phone(2);
    let a = amplitude(last_secs(b, 5.0), 8000, 440.0);
    assert!((a - 8000.0).abs() < 8000.0 * 0.06, "B hears A at {a:.0}");
    // The same schedule with read times as arrivals (no kernel stamps):
    // the buffer mistakes the worker's naps for network jitter.
    let (sim, blocks) = stalled_worker_run(false);
    let st = sim.room.stats(ParticipantId(1)).unwrap();
    let worst = blocks.iter().copied().fold(1.0, f64::min);
    assert!(
        st.jitter_target > 40 * MS || worst < 0.98,
        "{:?} {worst:.3}",
        st.jitter_target
    );
}

fn set_deaf(sim: &mut Sim, id: u32, deaf: bool) {
    let now = sim.now;
    sim.room
        .handle_command(
            now,
            RoomCommand::SetDeaf {
                id: ParticipantId(id),
                deaf,
            },
        )
        .unwrap();
}

/// N-1 across deaf: a talker deafened for 3 s and undeafened hears none
/// of its own tone from the first frame after, and the others at exactly
/// the level it heard them before.
#[test]
fn undeaf_talker_never_hears_itself_and_others_keep_their_level() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, tone(700.0, 8000.0, 8000)),
        Phone::new(3, Codec::Pcmu, tone(1100.0, 8000.0, 8000)),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    sim.run(100, on_time);
    let before = last_secs(sim.phone(1), 1.0).to_vec();
    let (b0, c0) = (
        amplitude(&before, 8000, 700.0),
        amplitude(&before, 8000, 1100.0),
    );
    set_deaf(&mut sim, 1, true);
    sim.run(150, on_time);
    assert!(
        rms(last_secs(sim.phone(1), 2.0)) < 30.0,
        "deaf A hears the room"
    );
    let from = sim.phone(1).received.len();
    set_deaf(&mut sim, 1, false);
    sim.run(100, on_time);
    let after = &sim.phone(1).received[from..];
    assert_eq!(after.len(), 16000);
    for (k, block) in after.chunks_exact(1600).enumerate() {
        let own = amplitude(block, 8000, 440.0);
        assert!(own < 20.0, "block {k}: A hears itself at {own:.0}");
        // The very first frame after undeaf is already the full mix.
        let (b, c) = (
            amplitude(block, 8000, 700.0),
            amplitude(block, 8000, 1100.0),
        );
        assert!(
            (b - b0).abs() < b0 * 0.01,
            "block {k}: B at {b:.0}, was {b0:.0}"
        );
        assert!(
            (c - c0).abs() < c0 * 0.01,
            "block {k}: C at {c:.0}, was {c0:.0}"
        );
    }
    // And everyone still hears A at its level throughout.
    let b = amplitude(last_secs(sim.phone(2), 2.0), 8000, 440.0);
    assert!((b - 8000.0).abs() < 8000.0 * 0.06, "B hears A at {b:.0}");
}

/// What the browser test measured after undeaf was the conference's
/// "undeaf" prompt, which plays over the mix (a spoken prompt has energy at
/// 440 and 700 Hz). Laid over a loud room it must still carry none of the
/// listener's own audio, and the sum is limited, never hard-clipped.
#[test]
fn prompt_over_a_loud_mix_has_no_own_audio_and_no_clipping() {
    let phones = vec![
        Phone::new(1, Codec::Pcmu, tone(440.0, 8000.0, 8000)),
        Phone::new(2, Codec::Pcmu, tone(700.0, 12000.0, 8000)),
        Phone::new(3, Codec::Pcmu, tone(1100.0, 12000.0, 8000)),
    ];
    let mut sim = Sim::new(RoomConfig::default(), phones);
    sim.run(50, on_time);
    // A loud two-tone "prompt", 1.5 s (peak 20000 over a mix peaking near
    // 23000: their sum is far past full scale).
    let samples: Vec<i16> = (0..12000)
        .map(|n| {
            let t = n as f64 / 8000.0;
            (10000.0 * (2.0 * std::f64::consts::PI * 300.0 * t).sin()
                + 10000.0 * (2.0 * std::f64::consts::PI * 1900.0 * t).sin()) as i16
        })
        .collect();
    let prompt = palaver_media::source::Prompt {
        samples: samples.into(),
        rate: 8000,
    };
    let from = sim.phone(1).received.len();
    let now = sim.now;
    sim.room
        .handle_command(
            now,
            RoomCommand::Play {
                id: ParticipantId(1),
                playback: Playback::prompt(9, prompt),
            },
        )
        .unwrap();
    sim.run(100, on_time);
    let heard = &sim.phone(1).received[from..];
    let during = &heard[800..11200];
    assert!(amplitude(during, 8000, 440.0) < 20.0, "A hears itself");
    assert!(
        amplitude(during, 8000, 300.0) > 5000.0,
        "A hears the prompt"
    );
    assert!(
        amplitude(during, 8000, 700.0) > 5000.0,
        "A hears B under it"
    );
    // G.711 tops out at 32124; a hard clip parks samples there.
    let pinned = during.iter().filter(|s| s.unsigned_abs() >= 32000).count();
    assert_eq!(pinned, 0, "{pinned} samples at full scale");
    // Clean: the 3rd harmonic of 300 Hz (a clipper's signature) is absent.
    let h3 = amplitude(during, 8000, 900.0);
    assert!(h3 < 150.0, "900 Hz at {h3:.0}");
    assert!(sim.events.iter().any(|e| matches!(
        e,
        MediaEvent::PromptFinished {
            id: 9,
            completed: true,
            ..
        }
    )));
    // After the prompt, the mix is back at its level.
    let tail = last_secs(sim.phone(1), 0.4);
    let b = amplitude(tail, 8000, 700.0);
    assert!((b - 12000.0).abs() < 12000.0 * 0.06, "B at {b:.0} after");
}
