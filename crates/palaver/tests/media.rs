//! End-to-end media (issue 3): real phones (baresip) in a call through the
//! server hear each other — checked on the audio they recorded, not on
//! packet counts. Media is anchored on the server for every call.

mod common;

use std::time::Duration;

use common::*;

/// Two baresip phones each play their own tone; each must hear the other's
/// tone and not its own.
#[test]
fn line_to_line_call_carries_audio_both_ways() {
    if !have("baresip") {
        return;
    }
    let dir = TempDir::new("audio");
    let server = Server::start(dir.path(), &[]);
    let tone_a = dir.path().join("a.wav");
    let tone_b = dir.path().join("b.wav");
    write_tone_wav(&tone_a, 440.0, 30.0, 8000);
    write_tone_wav(&tone_b, 1000.0, 30.0, 8000);
    let mut b = Baresip::start(
        dir.path(),
        &BaresipConfig {
            user: "1002",
            password: Some(PASSWORD),
            server: server.sip,
            audio: &tone_b,
            register: true,
            auto_answer: true,
        },
    );
    assert!(
        b.wait_registered(Duration::from_secs(10)),
        "B did not register"
    );
    let mut a = Baresip::start(
        dir.path(),
        &BaresipConfig {
            user: "1001",
            password: Some(PASSWORD),
            server: server.sip,
            audio: &tone_a,
            register: true,
            auto_answer: false,
        },
    );
    assert!(
        a.wait_registered(Duration::from_secs(10)),
        "A did not register"
    );
    a.command("dial", &format!("sip:1002@{}", server.sip));
    assert!(
        a.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
            .is_some(),
        "{:?}\n{}",
        a.event_types(),
        server.log_text()
    );
    std::thread::sleep(Duration::from_secs(4));
    a.command("hangup", "");
    assert!(
        a.wait_event("CALL_CLOSED", Duration::from_secs(10))
            .is_some()
    );
    assert!(
        b.wait_event("CALL_CLOSED", Duration::from_secs(10))
            .is_some()
    );
    std::thread::sleep(Duration::from_millis(300));

    for (phone, hears, own) in [(&a, 1000.0, 440.0), (&b, 440.0, 1000.0)] {
        let wavs = phone.received_wavs();
        let wav = wavs
            .last()
            .unwrap_or_else(|| panic!("no received-audio dump in {}", phone.dir.display()));
        let (samples, rate) = read_wav(wav);
        // Skip the first second (call setup, jitter buffers filling).
        let tail = &samples[(rate as usize).min(samples.len())..];
        assert!(
            tail.len() > rate as usize,
            "too little audio received: {} samples",
            samples.len()
        );
        let other = tone_ratio(tail, rate, hears);
        let self_ = tone_ratio(tail, rate, own);
        assert!(
            rms(tail) > 500.0,
            "received audio too quiet: rms {}",
            rms(tail)
        );
        assert!(
            other > 0.5,
            "{}: the other side's {hears} Hz tone is only {other:.3} of the power",
            phone.dir.display()
        );
        assert!(
            self_ < 0.05,
            "{}: hears its own {own} Hz tone ({self_:.3})",
            phone.dir.display()
        );
    }
}
