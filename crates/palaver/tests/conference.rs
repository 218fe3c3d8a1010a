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
    // The media counters are per worker and count every packet the three
    // phones sent (≈ 8–10 s each at 50/s); no series per participant
    // (they would pile up with every call ever made).
    let received = server
        .metric_sum("palaver_rtp_received_packets_total")
        .unwrap_or(0.0);
    assert!(received > 3.0 * 7.0 * 50.0, "received {received}");
    let lost = server
        .metric_sum("palaver_rtp_lost_packets_total")
        .unwrap_or(-1.0);
    assert_eq!(lost, 0.0, "lost on loopback");
    let text = server.metrics_text().unwrap_or_default();
    assert!(!text.contains("participant=\""), "per-participant series");
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

fn send_keys(p: &mut Baresip, keys: &str) {
    for k in keys.chars() {
        p.command("sndcode", &k.to_string());
        std::thread::sleep(Duration::from_millis(450));
    }
}

fn dial(p: &mut Baresip, server: &Server, number: &str) {
    p.command("dial", &format!("sip:{number}@{}", server.sip));
    assert!(
        p.wait_event("CALL_ESTABLISHED", Duration::from_secs(10))
            .is_some(),
        "{:?}\n{}",
        p.event_types(),
        server.log_text()
    );
}

/// The server hung up on this phone within `timeout`.
fn hung_up(p: &mut Baresip, timeout: Duration) -> bool {
    p.wait_event("CALL_CLOSED", timeout).is_some()
}

/// Stops the server, lets `f` change the store, starts it again.
fn with_store(
    server: &mut Server,
    dir: &Path,
    extra: &[&str],
    f: impl FnOnce(
        &palaver_store::Store,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>,
) {
    assert_eq!(server.stop(), 0);
    let data = server.data.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = palaver_store::Store::open(None, &data).await.unwrap();
        f(&store).await;
        store.close().await;
    });
    *server = Server::start_on(dir, data, extra);
}

/// A room 802 reachable through the `local` trunk, with the given settings.
fn add_room(
    server: &mut Server,
    dir: &Path,
    extra: &[&str],
    settings: palaver_store::RoomSettings,
) {
    with_store(server, dir, extra, move |store| {
        Box::pin(async move {
            let room = store.create_room(&settings).await.unwrap();
            let trunk = store.trunk_by_name("local").await.unwrap().unwrap();
            store
                .create_number(&palaver_store::NumberFields {
                    number: "802".into(),
                    destination: palaver_store::Destination::Room(room.id),
                    trunk_id: Some(trunk.id),
                    description: String::new(),
                })
                .await
                .unwrap();
        })
    });
}

/// C3: three wrong PINs → goodbye and the server hangs up; the right PIN
/// gets in.
#[test]
fn c3_three_wrong_pins_hang_up_and_the_right_one_gets_in() {
    if !have("baresip") {
        return;
    }
    let dir = TempDir::new("pin");
    let server = Server::start(dir.path(), &[]);
    let mut p = phone(dir.path(), &server, "2101", 440.0);
    dial(&mut p, &server, "801");
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..3 {
        send_keys(&mut p, "999#");
        std::thread::sleep(Duration::from_secs(3));
    }
    assert!(
        hung_up(&mut p, Duration::from_secs(15)),
        "still connected after three wrong PINs\n{}",
        server.log_text()
    );

    // The right PIN gets a caller into the room (it then waits for the host).
    let mut q = phone(dir.path(), &server, "2102", 440.0);
    dial(&mut q, &server, "801");
    std::thread::sleep(Duration::from_secs(2));
    send_keys(&mut q, "1234#");
    assert!(
        !hung_up(&mut q, Duration::from_secs(6)),
        "hung up after the right PIN"
    );
    q.command("hangup", "");
}

/// C4, C5, C11: in room 801 (wait for host) a participant hears music until
/// the host (PIN 4321) joins, then hears the host.
#[test]
fn c4_c5_wait_for_host_plays_music_until_the_host_joins() {
    if !have("baresip") {
        return;
    }
    let dir = TempDir::new("host");
    let server = Server::start(dir.path(), &[]);
    let mut guest = phone(dir.path(), &server, "2201", 440.0);
    dial(&mut guest, &server, "801");
    std::thread::sleep(Duration::from_secs(2));
    send_keys(&mut guest, "1234#");
    // Waiting: music, no host yet.
    std::thread::sleep(Duration::from_secs(6));
    let mut host = phone(dir.path(), &server, "2202", 1100.0);
    dial(&mut host, &server, "801");
    std::thread::sleep(Duration::from_secs(2));
    send_keys(&mut host, "4321#");
    std::thread::sleep(Duration::from_secs(7));
    guest.command("hangup", "");
    host.command("hangup", "");
    assert!(hung_up(&mut guest, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(300));
    let (all, rate) = heard(&guest, 0.0);
    let r = rate as usize;
    assert!(
        all.len() > 14 * r,
        "guest recorded only {} s",
        all.len() / r
    );
    // While waiting (seconds 5–8 of the call): music is playing, the host's
    // tone is absent.
    let waiting = &all[5 * r..8 * r];
    assert!(
        rms(waiting) > 200.0,
        "no music while waiting (rms {:.0})",
        rms(waiting)
    );
    assert!(
        tone_ratio(waiting, rate, 1100.0) < 0.05,
        "host tone before the host joined"
    );
    // At the end: the host is heard.
    let end = &all[all.len() - 3 * r..];
    assert!(
        tone_ratio(end, rate, 1100.0) > 0.3,
        "guest does not hear the host: {:.3}",
        tone_ratio(end, rate, 1100.0)
    );
}

/// C14: `00` toggles mute (the others stop hearing the participant), `**`
/// mute+deaf (it also stops hearing the others), `##` leaves.
#[test]
fn c14_keys_mute_deaf_and_leave() {
    if !have("baresip") {
        return;
    }
    let dir = TempDir::new("keys");
    let server = Server::start(dir.path(), &[]);
    let mut a = phone(dir.path(), &server, "2301", 440.0);
    let mut b = phone(dir.path(), &server, "2302", 1100.0);
    dial(&mut a, &server, "800");
    dial(&mut b, &server, "800");
    // Greetings and join beeps take the first ~4 s.
    std::thread::sleep(Duration::from_secs(8));
    // A mutes: B stops hearing 440 Hz.
    send_keys(&mut a, "00");
    std::thread::sleep(Duration::from_secs(4));
    // A unmutes, then goes mute+deaf.
    send_keys(&mut a, "00");
    std::thread::sleep(Duration::from_secs(3));
    send_keys(&mut a, "**");
    std::thread::sleep(Duration::from_secs(4));
    // A leaves with ##: the server hangs up.
    send_keys(&mut a, "##");
    assert!(
        hung_up(&mut a, Duration::from_secs(10)),
        "## did not end the call"
    );
    b.command("hangup", "");
    assert!(hung_up(&mut b, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(300));

    let (ha, rate) = heard(&a, 0.0);
    let (hb, _) = heard(&b, 0.0);
    let r = rate as f64;
    // Timeline (s): 0 both dial … 8 `00` … ~13 `00` … ~17 `**` … ~22 `##`.
    let win = |s: &[i16], from: f64, to: f64| {
        s[((from * r) as usize).min(s.len())..((to * r) as usize).min(s.len())].to_vec()
    };
    let check = |what: &str, s: Vec<i16>, f: f64, heard: bool| {
        let v = tone_ratio(&s, rate, f);
        if heard {
            assert!(v > 0.3, "{what}: {v:.3}");
        } else {
            assert!(v < 0.05, "{what}: {v:.3}");
        }
    };
    check("B hears A before the mute", win(&hb, 5.5, 7.5), 440.0, true);
    check(
        "B does not hear A while muted",
        win(&hb, 10.0, 12.5),
        440.0,
        false,
    );
    check("B hears A after unmute", win(&hb, 15.0, 16.5), 440.0, true);
    check("A hears B before **", win(&ha, 15.0, 16.5), 1100.0, true);
    check(
        "A does not hear B while deaf",
        win(&ha, 19.5, 21.5),
        1100.0,
        false,
    );
    check(
        "B does not hear A while mute+deaf",
        win(&hb, 19.5, 21.5),
        440.0,
        false,
    );
}

/// C12: a room that refuses anonymous callers says so and hangs up.
#[test]
fn c12_anonymous_callers_are_refused_when_the_room_says_so() {
    if !have("baresip") {
        return;
    }
    let dir = TempDir::new("anon");
    let mut server = Server::start(dir.path(), &[]);
    let mut s = palaver_store::RoomSettings::new("Private");
    s.allow_anonymous = false;
    add_room(&mut server, dir.path(), &[], s);
    let mut anon = phone(dir.path(), &server, "anonymous", 440.0);
    dial(&mut anon, &server, "802");
    assert!(
        hung_up(&mut anon, Duration::from_secs(15)),
        "anonymous caller was not refused\n{}",
        server.log_text()
    );
    // The refusal was spoken: the caller heard audio before the hang-up.
    std::thread::sleep(Duration::from_millis(300));
    let (h, _) = heard(&anon, 0.0);
    assert!(rms(&h) > 200.0, "no spoken reason (rms {:.0})", rms(&h));
    // A caller with a number gets in.
    let mut named = phone(dir.path(), &server, "2401", 440.0);
    dial(&mut named, &server, "802");
    assert!(
        !hung_up(&mut named, Duration::from_secs(5)),
        "a caller with a number was refused"
    );
}

/// C2: a full room tells the next caller and hangs up.
#[test]
fn c2_full_room_refuses_the_next_caller() {
    if !have("baresip") {
        return;
    }
    let dir = TempDir::new("full");
    let mut server = Server::start(dir.path(), &[]);
    let mut s = palaver_store::RoomSettings::new("Small");
    s.max_participants = 2;
    add_room(&mut server, dir.path(), &[], s);
    let mut a = phone(dir.path(), &server, "2501", 440.0);
    let mut b = phone(dir.path(), &server, "2502", 700.0);
    let mut c = phone(dir.path(), &server, "2503", 1100.0);
    dial(&mut a, &server, "802");
    dial(&mut b, &server, "802");
    std::thread::sleep(Duration::from_secs(1));
    dial(&mut c, &server, "802");
    assert!(
        hung_up(&mut c, Duration::from_secs(15)),
        "third caller admitted to a room of 2"
    );
    assert!(!hung_up(&mut a, Duration::from_secs(1)));
    assert!(!hung_up(&mut b, Duration::from_secs(1)));
}

/// C9, C10, C15: auto-started recording of the right length, and the
/// end-of-conference report delivered to a real SMTP server, listing every
/// participant.
#[test]
fn c9_c15_recording_and_the_email_report() {
    if !have("baresip") || !std::path::Path::new("/usr/bin/python3").exists() {
        return;
    }
    let dir = TempDir::new("report");
    // A real SMTP server (aiosmtpd) on a free loopback port.
    let smtp_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let smtp_log = dir.path().join("smtp.log");
    let mut smtp = std::process::Command::new("/usr/bin/python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{smtp_port}"),
        ])
        .stdout(std::fs::File::create(&smtp_log).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("aiosmtpd (Debian python3-aiosmtpd)");
    let port = smtp_port.to_string();
    let extra = [
        "--smtp-host",
        "127.0.0.1",
        "--smtp-port",
        &port,
        "--smtp-tls",
        "none",
    ];
    let mut server = Server::start(dir.path(), &extra);
    let mut s = palaver_store::RoomSettings::new("Board meeting");
    s.recording_enabled = true;
    s.recording_autostart = true;
    s.report_email = Some("boss@example.org".into());
    add_room(&mut server, dir.path(), &extra, s);

    let mut a = phone(dir.path(), &server, "2601", 440.0);
    let mut b = phone(dir.path(), &server, "2602", 1100.0);
    dial(&mut a, &server, "802");
    dial(&mut b, &server, "802");
    std::thread::sleep(Duration::from_secs(8));
    b.command("hangup", "");
    assert!(hung_up(&mut b, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_secs(1));
    a.command("hangup", "");
    assert!(hung_up(&mut a, Duration::from_secs(10)));

    // The report arrives (the mailer polls every 2 s).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mail = loop {
        let text = std::fs::read_to_string(&smtp_log).unwrap_or_default();
        if text.contains("boss@example.org") && text.contains("2602") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report e-mail arrived:\n{text}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = smtp.kill();
    let _ = smtp.wait();
    assert!(mail.contains("Board meeting"), "{mail}");
    assert!(
        mail.contains("2601") && mail.contains("2602"),
        "a participant is missing:\n{mail}"
    );
    assert!(mail.contains("/recordings/"), "no recording link:\n{mail}");

    // The recording: a WAV in the data dir whose length matches the time
    // two people were in the room (≈ 9 s), and a finished store row.
    assert_eq!(server.stop(), 0);
    let data = server.data.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let recs = rt.block_on(async {
        let store = palaver_store::Store::open(None, &data).await.unwrap();
        let r = store.recordings(None).await.unwrap();
        store.close().await;
        r
    });
    assert_eq!(recs.len(), 1, "{recs:?}");
    let rec = &recs[0];
    assert!(rec.ended_at.is_some(), "recording not finished: {rec:?}");
    assert!(
        (6_000..=14_000).contains(&rec.duration_ms),
        "recording lasts {} ms",
        rec.duration_ms
    );
    let (samples, rate) = read_wav(std::path::Path::new(&rec.path));
    let secs = samples.len() as f64 / rate as f64;
    assert!(
        (secs * 1000.0 - rec.duration_ms as f64).abs() < 500.0,
        "file {secs:.1} s vs row {} ms",
        rec.duration_ms
    );
    assert!(rec.size_bytes > 0);
    assert!(rec.participants.contains("2601"), "{}", rec.participants);
}

/// C9 (crash safety): the server is killed (SIGKILL) while recording; at the
/// next start the WAV is repaired with nothing written lost, and the
/// recording's row is finished from the file.
#[test]
fn c9_recording_survives_a_crash() {
    if !have("baresip") {
        return;
    }
    let dir = TempDir::new("crash");
    let mut server = Server::start(dir.path(), &[]);
    let mut s = palaver_store::RoomSettings::new("Recorded");
    s.recording_enabled = true;
    s.recording_autostart = true;
    add_room(&mut server, dir.path(), &[], s);
    let mut a = phone(dir.path(), &server, "2701", 440.0);
    dial(&mut a, &server, "802");
    std::thread::sleep(Duration::from_secs(6));
    // Crash: no chance to finish anything.
    let mut child = server.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let data = server.data.clone();
    let on_disk = {
        let dir = data.join("recordings");
        let room_dir = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let f = std::fs::read_dir(&room_dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        std::fs::metadata(&f).unwrap().len()
    };
    assert!(
        on_disk > 8000,
        "almost nothing was written before the crash: {on_disk} bytes"
    );
    let mut server = Server::start_on(dir.path(), data.clone(), &[]);
    assert_eq!(server.stop(), 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let recs = rt.block_on(async {
        let store = palaver_store::Store::open(None, &data).await.unwrap();
        let r = store.recordings(None).await.unwrap();
        store.close().await;
        r
    });
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    assert!(
        rec.ended_at.is_some(),
        "not finished after restart: {rec:?}"
    );
    assert!(
        rec.duration_ms >= 2000,
        "recovered only {} ms",
        rec.duration_ms
    );
    let (samples, rate) = read_wav(Path::new(&rec.path));
    assert!(
        samples.len() as u64 * 2 + 44 >= on_disk - 2,
        "audio lost in the repair"
    );
    assert!((samples.len() as i64 * 1000 / i64::from(rate) - rec.duration_ms).abs() < 50);
}

/// Best normalised cross-correlation of `chunk` anywhere in `signal`.
fn best_match(signal: &[i16], chunk: &[i16]) -> f64 {
    let c: Vec<f64> = chunk.iter().map(|&x| f64::from(x)).collect();
    let cn = c.iter().map(|x| x * x).sum::<f64>().sqrt();
    let s: Vec<f64> = signal.iter().map(|&x| f64::from(x)).collect();
    let mut best = 0.0f64;
    // Windowed energy kept up to date as the window slides.
    let mut energy: f64 = s.iter().take(c.len()).map(|x| x * x).sum();
    for lag in 0..s.len().saturating_sub(c.len()) {
        if lag > 0 {
            energy += s[lag + c.len() - 1].powi(2) - s[lag - 1].powi(2);
        }
        if energy > 1.0 {
            let dot: f64 = c.iter().zip(&s[lag..]).map(|(a, b)| a * b).sum();
            best = best.max(dot / (cn * energy.max(0.0).sqrt()));
        }
    }
    best
}

/// The loudest `freq` share over any 0.2 s window of `samples`.
fn tone_peak(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let w = rate as usize / 5;
    (0..samples.len().saturating_sub(w))
        .step_by(w / 8)
        .map(|i| tone_ratio(&samples[i..i + w], rate, freq))
        .fold(0.0, f64::max)
}

/// C6, C7, C13: in a French room with mute on entry and join/leave
/// announcements, the first caller is greeted in French (not English), hears
/// a join beep when the second arrives, does not hear the muted newcomer
/// until it unmutes itself with `00`, and hears a beep when it leaves.
#[test]
fn c6_c7_c13_muted_entry_join_beeps_and_the_room_language() {
    if !have("baresip") {
        return;
    }
    let dir = TempDir::new("entry");
    let mut server = Server::start(dir.path(), &[]);
    let mut s = palaver_store::RoomSettings::new("Entrée");
    s.language = palaver_store::Language::Fr;
    s.mute_on_entry = true;
    s.announce_join_leave = true;
    add_room(&mut server, dir.path(), &[], s);

    let mut a = phone(dir.path(), &server, "2601", 440.0);
    let mut b = phone(dir.path(), &server, "2602", 1100.0);
    dial(&mut a, &server, "802");
    let t0 = std::time::Instant::now();
    std::thread::sleep(Duration::from_secs(8));
    dial(&mut b, &server, "802");
    // B's own greeting, then it enters the room muted.
    std::thread::sleep(Duration::from_secs(9));
    let unmute_at = t0.elapsed().as_secs_f64();
    send_keys(&mut b, "00");
    std::thread::sleep(Duration::from_secs(5));
    b.command("hangup", "");
    assert!(hung_up(&mut b, Duration::from_secs(10)));
    let left_at = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    a.command("hangup", "");
    assert!(hung_up(&mut a, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(300));

    let (all, rate) = heard(&a, 0.0);
    let r = rate as usize;
    let at = |secs: f64| ((secs * rate as f64) as usize).min(all.len());
    assert!(
        all.len() > at(left_at + 1.0),
        "A recorded only {} s",
        all.len() / r
    );

    // C13: the greeting is the French prompt, not the English one.
    let prompt = |lang: &str| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../../prompts/{lang}/{rate}/welcome.wav"));
        let (s, _) = read_wav(&p);
        let mid = s.len() / 2;
        s[mid - r / 6..mid + r / 6].to_vec()
    };
    let opening = &all[..at(4.0)];
    let (fr, en) = (
        best_match(opening, &prompt("fr")),
        best_match(opening, &prompt("en")),
    );
    assert!(
        fr > 0.8 && en < 0.5,
        "greeting matches fr {fr:.2}, en {en:.2}"
    );

    // C7: a join beep (600 then 900 Hz) after B dialled; C6: B's tone is
    // not heard while it is muted on entry.
    let muted = &all[at(8.0)..at(unmute_at)];
    let (b600, b900) = (tone_peak(muted, rate, 600.0), tone_peak(muted, rate, 900.0));
    assert!(
        b600 > 0.3 && b900 > 0.3,
        "no join beep: 600 Hz {b600:.2}, 900 Hz {b900:.2}"
    );
    let leaked = tone_ratio(muted, rate, 1100.0);
    assert!(leaked < 0.05, "muted newcomer heard: {leaked:.3}");
    // Unmuted by its own `00`: now it is heard.
    let open = &all[at(unmute_at + 2.0)..at(left_at - 0.5)];
    let heard_b = tone_ratio(open, rate, 1100.0);
    assert!(heard_b > 0.3, "unmuted newcomer not heard: {heard_b:.3}");
    eprintln!(
        "greeting fr {fr:.2} en {en:.2}; join beep {b600:.2}/{b900:.2}; muted leak {leaked:.3}; unmuted {heard_b:.3}"
    );
    // C7: the leave beep (900 Hz for 90 ms, then 600 Hz for 120 ms; the
    // longer second half stands out in a 0.2 s window).
    let after = &all[at(left_at - 0.5)..];
    let (l900, l600) = (tone_peak(after, rate, 900.0), tone_peak(after, rate, 600.0));
    assert!(
        l600 > 0.3 && l900 > 0.1,
        "no leave beep: 900 Hz {l900:.2}, 600 Hz {l600:.2}"
    );
}
