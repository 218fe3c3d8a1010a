//! End-to-end conference tests (issue 4): real phones (baresip, SIPp) call
//! rooms on the real server; what they hear is checked on the audio they
//! recorded. Each test names the SPEC IDs it proves.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

fn phone(dir: &Path, server: &Server, user: &str, tone: f64) -> Baresip {
    let wav = dir.join(format!("tone-{user}.wav"));
    write_tone_wav(&wav, tone, 60.0, 8000);
    Baresip::start(
        dir,
        &BaresipConfig {
            user,
            password: None,
            server: server.sip,
            audio: &wav,
            register: false,
            auto_answer: false,
        },
    )
}

/// The received audio of a phone's last call, from `skip` seconds in.
fn heard(phone: &Baresip, skip: f64) -> (Vec<i16>, u32) {
    let wavs = phone.received_wavs();
    let wav = wavs
        .last()
        .unwrap_or_else(|| panic!("no received audio in {}", phone.dir.display()));
    let (s, rate) = read_wav(wav);
    let from = ((skip * rate as f64) as usize).min(s.len());
    (s[from..].to_vec(), rate)
}

/// C1, C7: three callers dial room 800 (its public number, through the
/// trunk) each sending its own tone; each hears the other two and never
/// itself.
#[test]
fn c1_three_participants_hear_each_other_and_not_themselves() {
    if !have("baresip") {
        return;
    }
    let dir = TempDir::new("room3");
    let server = Server::start(dir.path(), &[]);
    let tones = [("2001", 440.0), ("2002", 700.0), ("2003", 1100.0)];
    let mut phones: Vec<Baresip> = tones
        .iter()
        .map(|(u, f)| phone(dir.path(), &server, u, *f))
        .collect();
    for p in phones.iter_mut() {
        p.command("dial", &format!("sip:800@{}", server.sip));
        assert!(
            p.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
                .is_some(),
            "{:?}\n{}",
            p.event_types(),
            server.log_text()
        );
    }
    // Greeting and join beeps are over after a few seconds; then talk.
    std::thread::sleep(Duration::from_secs(8));
    for p in phones.iter_mut() {
        p.command("hangup", "");
    }
    for p in phones.iter_mut() {
        assert!(
            p.wait_event("CALL_CLOSED", Duration::from_secs(10))
                .is_some()
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    for (i, p) in phones.iter().enumerate() {
        // The last phone joined ~2 s after the first: look at the last 3 s.
        let (all, rate) = heard(p, 0.0);
        let tail = &all[all.len().saturating_sub(3 * rate as usize)..];
        let own = tone_ratio(tail, rate, tones[i].1);
        assert!(own < 0.05, "{} hears itself: {own:.3}", tones[i].0);
        for (j, (user, f)) in tones.iter().enumerate() {
            if i != j {
                let r = tone_ratio(tail, rate, *f);
                assert!(
                    r > 0.15,
                    "{} does not hear {user} ({f} Hz): {r:.3} (rms {:.0})",
                    tones[i].0,
                    rms(tail)
                );
            }
        }
    }
}
