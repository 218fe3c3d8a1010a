//! Call-flow tests with synthetic time. The harness plays the media
//! engine's part: it records the commands the conference sends, tells which
//! sound each `Play` carries (the fake loader gives every file a unique
//! sample value), and reports prompts as finished when a test says so.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palaver_media::room::{MediaEvent, ParticipantId, RoomCommand};
use palaver_media::source::{Playback, Prompt};
use palaver_store::{Language, Room, RoomId, RoomSettings};

use super::*;
use crate::events::{ControlCommand, ControlError, LeaveReason, RoomEvent, RoomEventKind};

const RATE: u32 = 8000;
const T0_MS: i64 = 1_700_000_000_000;

#[derive(Default)]
struct SoundTable {
    by_value: HashMap<i16, String>,
    by_path: HashMap<PathBuf, i16>,
    missing: Vec<String>,
}

/// Every file becomes half a second of one unique value; its name is the
/// path relative to the prompts or uploads dir.
struct FakeSounds(Arc<Mutex<SoundTable>>);

impl SoundLoader for FakeSounds {
    fn load(&mut self, path: &Path, rate: u32) -> Result<Prompt, palaver_media::Error> {
        let mut t = self.0.lock().unwrap();
        let name = path
            .strip_prefix("/p")
            .or_else(|_| path.strip_prefix("/d"))
            .unwrap_or(path)
            .display()
            .to_string();
        if t.missing.iter().any(|m| name.contains(m.as_str())) {
            return Err(palaver_media::Error::Wav {
                path: path.to_path_buf(),
                reason: "missing".into(),
            });
        }
        let next = t.by_path.len() as i16 + 1;
        let v = *t.by_path.entry(path.to_path_buf()).or_insert(next);
        t.by_value.insert(v, name);
        Ok(Prompt {
            samples: vec![v; rate as usize / 2].into(),
            rate,
        })
    }
}

struct Harness {
    conf: Conference,
    t: Instant,
    sounds: Arc<Mutex<SoundTable>>,
    /// Every action so far.
    log: Vec<ConferenceAction>,
    /// Playback ids queued per participant, not yet finished.
    queued: BTreeMap<u32, Vec<u64>>,
}

fn room(id: i64, edit: impl FnOnce(&mut RoomSettings)) -> Room {
    let mut s = RoomSettings::new("Weekly");
    s.extension = Some("800".into());
    edit(&mut s);
    Room {
        id: RoomId(id),
        settings: s,
        follow_token_hash: None,
        control_token_hash: None,
        created_at: 0,
    }
}

fn p(n: u32) -> ParticipantId {
    ParticipantId(n)
}

impl Harness {
    fn new() -> Self {
        let sounds = Arc::new(Mutex::new(SoundTable::default()));
        let t = Instant::now();
        let mut config = ConferenceConfig::new("/p", Path::new("/d"));
        config.uploads_dir = PathBuf::from("/d/uploads");
        let conf = Conference::new(
            config,
            WallClock::new(t, T0_MS),
            Box::new(FakeSounds(sounds.clone())),
        );
        Harness {
            conf,
            t,
            sounds,
            log: Vec::new(),
            queued: BTreeMap::new(),
        }
    }

    fn ms(&self) -> i64 {
        T0_MS + (self.t - self.conf.io.clock.at).as_millis() as i64
    }

    fn missing(&self, what: &str) {
        self.sounds.lock().unwrap().missing.push(what.into());
    }

    /// Drains the actions into the log, returning the new ones.
    fn drain(&mut self) -> Vec<ConferenceAction> {
        let mut new = Vec::new();
        while let Some(a) = self.conf.poll_action() {
            match &a {
                ConferenceAction::Media {
                    command: RoomCommand::Play { id, playback },
                    ..
                } => self.queued.entry(id.0).or_default().push(playback.id),
                ConferenceAction::Media {
                    command: RoomCommand::StopPlayback { id: Some(id) },
                    ..
                } => {
                    // The engine reports each dropped playback as not completed.
                    let ids = self.queued.remove(&id.0).unwrap_or_default();
                    for pb in ids {
                        self.conf.handle_media_event(
                            self.t,
                            RoomId(1),
                            MediaEvent::PromptFinished {
                                participant: Some(*id),
                                id: pb,
                                completed: false,
                            },
                        );
                    }
                }
                ConferenceAction::Media {
                    command: RoomCommand::RemoveParticipant { id },
                    ..
                } => {
                    self.queued.remove(&id.0);
                }
                _ => {}
            }
            new.push(a.clone());
            self.log.push(a);
        }
        new
    }

    fn sound_of(&self, pb: &Playback) -> String {
        let mut probe = [0i16; 1];
        pb.clone().fill(RATE, &mut probe);
        self.sounds
            .lock()
            .unwrap()
            .by_value
            .get(&probe[0])
            .cloned()
            .unwrap_or_else(|| format!("tone:{}", probe[0]))
    }

    /// Names of the sounds queued for `who` in `actions` (file stems).
    fn played(&self, actions: &[ConferenceAction], who: u32) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                ConferenceAction::Media {
                    command: RoomCommand::Play { id, playback },
                    ..
                } if id.0 == who => Some(self.sound_of(playback)),
                _ => None,
            })
            .map(|full| stem(&full))
            .collect()
    }

    fn played_paths(&self, actions: &[ConferenceAction], who: u32) -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                ConferenceAction::Media {
                    command: RoomCommand::Play { id, playback },
                    ..
                } if id.0 == who => Some(self.sound_of(playback)),
                _ => None,
            })
            .collect()
    }

    /// Steps synthetic time to each deadline until `d` has passed.
    fn run_for(&mut self, d: Duration) -> Vec<ConferenceAction> {
        let end = self.t + d;
        let mut all = Vec::new();
        while let Some(next) = self.conf.poll_timeout().filter(|&n| n <= end) {
            self.t = next.max(self.t);
            self.conf.handle_timeout(self.t);
            all.extend(self.drain());
        }
        self.t = end;
        all
    }

    fn join(&mut self, room: &Room, who: u32) -> Vec<ConferenceAction> {
        self.join_as(room, who, Some(format!("+3312345{who:04}")), false)
    }

    fn join_as(
        &mut self,
        room: &Room,
        who: u32,
        number: Option<String>,
        anonymous: bool,
    ) -> Vec<ConferenceAction> {
        self.conf.handle_join(
            self.t,
            room,
            JoinRequest {
                participant: p(who),
                number,
                name: Some(format!("Caller {who}")),
                anonymous,
                call_ref: format!("call-{who}"),
                sample_rate: RATE,
            },
        );
        self.drain()
    }

    /// The media engine finished what is queued for `who` now, in order
    /// (prompts queued as a consequence stay queued).
    fn finish(&mut self, who: u32) -> Vec<ConferenceAction> {
        let mut all = Vec::new();
        for id in self.queued.remove(&who).unwrap_or_default() {
            self.t += Duration::from_millis(500);
            self.conf.handle_media_event(
                self.t,
                RoomId(1),
                MediaEvent::PromptFinished {
                    participant: Some(p(who)),
                    id,
                    completed: true,
                },
            );
            all.extend(self.drain());
        }
        all
    }

    fn keys(&mut self, who: u32, keys: &str) -> Vec<ConferenceAction> {
        let mut all = Vec::new();
        for k in keys.chars() {
            self.t += Duration::from_millis(200);
            self.conf.handle_media_event(
                self.t,
                RoomId(1),
                MediaEvent::Dtmf {
                    participant: p(who),
                    digit: k,
                    source: palaver_media::dtmf::DtmfSource::Rfc4733,
                },
            );
            all.extend(self.drain());
        }
        all
    }

    /// What `who` hears after pressing `keys`.
    fn keys_heard(&mut self, who: u32, keys: &str) -> Vec<String> {
        let a = self.keys(who, keys);
        self.played(&a, who)
    }

    /// What `who` hears next once its queued prompts finish.
    fn finish_heard(&mut self, who: u32) -> Vec<String> {
        let a = self.finish(who);
        self.played(&a, who)
    }

    fn hangup(&mut self, who: u32) -> Vec<ConferenceAction> {
        self.t += Duration::from_millis(10);
        self.conf.handle_hangup(self.t, RoomId(1), p(who));
        self.drain()
    }

    /// Joins and walks through greeting, PIN (if any) and entry prompts.
    fn admit(&mut self, room: &Room, who: u32, pin: Option<&str>) -> Vec<ConferenceAction> {
        let mut all = self.join(room, who);
        all.extend(self.finish(who));
        if let Some(pin) = pin {
            all.extend(self.keys(who, &format!("{pin}#")));
        }
        all.extend(self.finish(who));
        all
    }

    fn events(&self) -> Vec<RoomEvent> {
        self.log
            .iter()
            .filter_map(|a| match a {
                ConferenceAction::Event(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }
}

fn stem(full: &str) -> String {
    Path::new(full)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| full.to_owned())
}

fn hung_up(actions: &[ConferenceAction]) -> Vec<u32> {
    actions
        .iter()
        .filter_map(|a| match a {
            ConferenceAction::HangUp { participant, .. } => Some(participant.0),
            _ => None,
        })
        .collect()
}

fn media(actions: &[ConferenceAction]) -> impl Iterator<Item = &RoomCommand> {
    actions.iter().filter_map(|a| match a {
        ConferenceAction::Media { command, .. } => Some(command),
        _ => None,
    })
}

fn in_mix(actions: &[ConferenceAction], who: u32) -> Option<bool> {
    media(actions)
        .filter_map(|c| match c {
            RoomCommand::SetInMix { id, in_mix } if id.0 == who => Some(*in_mix),
            _ => None,
        })
        .last()
}

fn moh(actions: &[ConferenceAction], who: u32) -> Option<bool> {
    media(actions)
        .filter_map(|c| match c {
            RoomCommand::MusicOnHold { id, music } if id.0 == who => Some(music.is_some()),
            _ => None,
        })
        .last()
}

fn kinds(actions: &[ConferenceAction]) -> Vec<RoomEventKind> {
    actions
        .iter()
        .filter_map(|a| match a {
            ConferenceAction::Event(e) => Some(e.kind.clone()),
            _ => None,
        })
        .collect()
}

fn with_pin(s: &mut RoomSettings) {
    s.access_pin = Some("1234".into());
    s.host_pin = Some("9999".into());
}

// ---- Call flow -------------------------------------------------------------

/// C3: three wrong PINs → "maximum attempts… goodbye" then hang-up.
#[test]
fn c3_three_wrong_pins_say_goodbye_then_hang_up() {
    let mut h = Harness::new();
    let r = room(1, with_pin);
    let a = h.join(&r, 1);
    assert_eq!(h.played(&a, 1), ["welcome"]);
    let a = h.finish(1);
    assert_eq!(h.played(&a, 1), ["enter_pin"]);
    h.finish(1);
    for _ in 0..2 {
        let a = h.keys(1, "1111#");
        assert_eq!(h.played(&a, 1), ["pin_invalid"]);
        assert!(hung_up(&a).is_empty());
        h.finish(1);
    }
    let a = h.keys(1, "2222#");
    assert_eq!(h.played(&a, 1), ["pin_too_many_attempts"]);
    assert!(hung_up(&a).is_empty(), "hang-up waits for the goodbye");
    let a = h.finish(1);
    assert_eq!(hung_up(&a), [1]);
    assert!(media(&a).any(|c| matches!(c, RoomCommand::RemoveParticipant { id } if id.0 == 1)));
    assert!(matches!(
        a.last(),
        Some(ConferenceAction::RoomClosed { .. })
    ));
    // Nobody was admitted: no conference, no events.
    assert!(h.events().is_empty());
}

/// C3: the inter-digit timeout ends the entry and counts as a try; so does
/// silence after the prompt.
#[test]
fn c3_inter_digit_timeout_counts_as_a_try() {
    let mut h = Harness::new();
    let r = room(1, with_pin);
    h.join(&r, 1);
    h.finish(1);
    h.finish(1); // enter_pin done: first-digit timer runs
    // Nothing typed for 10 s: try 1.
    let a = h.run_for(Duration::from_secs(10));
    assert_eq!(h.played(&a, 1), ["pin_invalid"]);
    h.finish(1);
    // Two digits then 5 s of nothing: try 2.
    h.keys(1, "12");
    let a = h.run_for(Duration::from_millis(4900));
    assert!(h.played(&a, 1).is_empty());
    let a = h.run_for(Duration::from_millis(200));
    assert_eq!(h.played(&a, 1), ["pin_invalid"]);
    h.finish(1);
    // The right PIN without `#`: the timeout submits it and it is accepted.
    h.keys(1, "1234");
    let a = h.run_for(Duration::from_secs(6));
    assert!(
        kinds(&a)
            .iter()
            .any(|k| matches!(k, RoomEventKind::Joined { .. }))
    );
}

/// C3: a wrong PIN then the right one admits; `*` clears a typo; keys
/// pressed during the prompt interrupt it.
#[test]
fn c3_right_pin_after_a_wrong_one_and_barge_in() {
    let mut h = Harness::new();
    let r = room(1, with_pin);
    h.join(&r, 1);
    h.finish(1);
    // enter_pin is playing: the first key stops it.
    let a = h.keys(1, "5");
    assert!(media(&a).any(|c| matches!(c, RoomCommand::StopPlayback { id: Some(x) } if x.0 == 1)));
    let a = h.keys(1, "#");
    assert_eq!(h.played(&a, 1), ["pin_invalid"]);
    h.finish(1);
    let a = h.keys(1, "99*1234#");
    assert_eq!(h.played(&a, 1), ["first_participant"]);
    let ev = kinds(&a);
    assert!(matches!(ev[0], RoomEventKind::RoomStarted));
    assert!(matches!(&ev[1], RoomEventKind::Joined { participant } if !participant.host));
    let a = h.finish(1);
    assert_eq!(in_mix(&a, 1), Some(true));
}

/// C4: the host PIN makes a host, who hears so.
#[test]
fn c4_host_pin_makes_a_host() {
    let mut h = Harness::new();
    let r = room(1, with_pin);
    h.join(&r, 1);
    h.finish(1);
    h.finish(1);
    let a = h.keys(1, "9999#");
    assert_eq!(h.played(&a, 1), ["you_are_host", "first_participant"]);
    assert!(
        kinds(&a)
            .iter()
            .any(|k| matches!(k, RoomEventKind::Joined { participant } if participant.host))
    );
    h.finish(1);
    let snap = h.conf.snapshot(RoomId(1));
    assert!(snap.host_present && snap.participants[0].host);
}

/// C17: a room without any PIN admits after the greeting, asking nothing.
#[test]
fn c17_room_without_pin_is_open() {
    let mut h = Harness::new();
    let r = room(1, |_| {});
    h.join(&r, 1);
    let a = h.finish(1);
    assert!(!h.played(&a, 1).contains(&"enter_pin".to_owned()));
    assert!(
        kinds(&a)
            .iter()
            .any(|k| matches!(k, RoomEventKind::Joined { .. }))
    );
}

/// C4: a room with only a host PIN asks for it; `#` alone joins as a
/// participant, the host PIN as host.
#[test]
fn c4_host_pin_only_room() {
    let mut h = Harness::new();
    let r = room(1, |s| s.host_pin = Some("4321".into()));
    h.join(&r, 1);
    assert_eq!(h.finish_heard(1), ["enter_pin"]);
    h.finish(1);
    let a = h.keys(1, "#");
    assert!(
        kinds(&a)
            .iter()
            .any(|k| matches!(k, RoomEventKind::Joined { participant } if !participant.host))
    );
    h.finish(1);
    h.join(&r, 2);
    h.finish(2);
    h.finish(2);
    let a = h.keys(2, "4321#");
    assert_eq!(h.played(&a, 2), ["you_are_host"]);
}

/// C2: callers in the PIN menu hold a seat; one more caller hears "full",
/// goodbye, and is hung up; the seat frees when someone leaves.
#[test]
fn c2_full_room_refuses_and_never_overflows() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        with_pin(s);
        s.max_participants = 2;
    });
    h.admit(&r, 1, Some("1234"));
    h.join(&r, 2); // still hearing the greeting
    let a = h.join(&r, 3);
    assert_eq!(h.played(&a, 3), ["conference_full", "goodbye"]);
    let a = h.finish(3);
    assert_eq!(hung_up(&a), [3]);
    // Caller 2 gives up; now 4 fits.
    h.hangup(2);
    let a = h.join(&r, 4);
    assert_eq!(h.played(&a, 4), ["welcome"]);
}

/// C12: withheld caller ID is refused with the reason when the room says
/// so; allowed otherwise, shown without a number.
#[test]
fn c12_anonymous_callers() {
    let mut h = Harness::new();
    let r = room(1, |s| s.allow_anonymous = false);
    let a = h.join_as(&r, 1, None, true);
    assert_eq!(h.played(&a, 1), ["anonymous_rejected", "goodbye"]);
    assert_eq!(hung_up(&h.finish(1)), [1]);

    let r = room(1, |s| s.allow_anonymous = true);
    h.join_as(&r, 2, Some("+33999".into()), true);
    h.finish(2);
    let snap = h.conf.snapshot(RoomId(1));
    assert_eq!(snap.participants[0].number, None);
}

/// Locked room (C14 host key `*2`): new callers hear "locked", goodbye;
/// a host can still enter with the host PIN; unlocking admits again.
#[test]
fn c14_lock_key_refuses_new_callers_but_not_hosts() {
    let mut h = Harness::new();
    let r = room(1, with_pin);
    h.admit(&r, 1, Some("9999"));
    let a = h.keys(1, "*2");
    assert_eq!(h.played(&a, 1), ["room_locked"]);
    assert!(matches!(
        kinds(&a)[..],
        [RoomEventKind::Locked { by: Origin::Host }]
    ));
    // A participant types the right access PIN but the room is locked.
    h.join(&r, 2);
    h.finish(2);
    h.finish(2);
    let a = h.keys(2, "1234#");
    assert_eq!(h.played(&a, 2), ["conference_locked", "goodbye"]);
    assert_eq!(hung_up(&h.finish(2)), [2]);
    // A second host gets in.
    h.join(&r, 3);
    h.finish(3);
    h.finish(3);
    let a = h.keys(3, "9999#");
    assert_eq!(h.played(&a, 3), ["you_are_host"]);
    h.finish(3);
    let a = h.keys(1, "*2");
    assert_eq!(h.played(&a, 1), ["room_unlocked"]);
    h.admit(&r, 4, Some("1234"));
    assert_eq!(h.conf.snapshot(RoomId(1)).participants.len(), 3);
}

/// A locked room without a host PIN refuses at once.
#[test]
fn locked_room_without_host_pin_refuses_at_arrival() {
    let mut h = Harness::new();
    let r = room(1, |_| {});
    h.admit(&r, 1, None);
    h.conf
        .handle_control(h.t, RoomId(1), ControlCommand::Lock)
        .unwrap();
    h.drain();
    let a = h.join(&r, 2);
    assert_eq!(h.played(&a, 2), ["conference_locked", "goodbye"]);
}

/// C5, C11: wait for host — music until a host joins, then mixed with
/// "the host has joined"; back to music (told why) when the host leaves.
#[test]
fn c5_wait_for_host_music_then_mix_then_music_again() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        with_pin(s);
        s.wait_for_host = true;
    });
    let a = h.admit(&r, 1, Some("1234"));
    assert!(h.played(&a, 1).contains(&"wait_for_host".to_owned()));
    assert_eq!(moh(&a, 1), Some(true));
    assert_eq!(in_mix(&a, 1), None);
    let moh_sound = a
        .iter()
        .find_map(|x| match x {
            ConferenceAction::Media {
                command: RoomCommand::MusicOnHold { music: Some(m), .. },
                ..
            } => Some(h.sound_of(&Playback::prompt(0, m.clone()))),
            _ => None,
        })
        .unwrap();
    assert_eq!(moh_sound, "moh/8000/default.wav");
    assert!(h.conf.snapshot(RoomId(1)).participants[0].waiting);

    let a = h.admit(&r, 2, Some("9999"));
    assert_eq!(moh(&a, 1), Some(false));
    assert_eq!(in_mix(&a, 1), Some(true));
    assert!(h.played(&a, 1).contains(&"host_joined".to_owned()));
    assert!(kinds(&a).contains(&RoomEventKind::Admitted { participant: p(1) }));
    assert_eq!(in_mix(&a, 2), Some(true));

    let a = h.hangup(2);
    assert_eq!(in_mix(&a, 1), Some(false));
    assert_eq!(moh(&a, 1), Some(true));
    assert_eq!(h.played(&a, 1), ["host_left"]);
    assert!(kinds(&a).contains(&RoomEventKind::Waiting { participant: p(1) }));
    assert!(h.conf.snapshot(RoomId(1)).participants[0].waiting);
}

/// C11: a room's own music replaces the default; a missing upload falls
/// back to the default.
#[test]
fn c11_custom_music_on_hold() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        with_pin(s);
        s.wait_for_host = true;
        s.moh_upload = Some("jazz.wav".into());
    });
    let a = h.admit(&r, 1, Some("1234"));
    let music: Vec<String> = a
        .iter()
        .filter_map(|x| match x {
            ConferenceAction::Media {
                command: RoomCommand::MusicOnHold { music: Some(m), .. },
                ..
            } => Some(h.sound_of(&Playback::prompt(0, m.clone()))),
            _ => None,
        })
        .collect();
    assert_eq!(music, ["uploads/8000/jazz.wav"]);
    h.missing("jazz");
    let a = h.admit(&r, 2, Some("1234"));
    assert_eq!(moh(&a, 2), Some(true));
}

/// C8: a custom greeting replaces `welcome`; if its file is gone, the
/// default plays.
#[test]
fn c8_custom_greeting_with_fallback() {
    let mut h = Harness::new();
    let r = room(1, |s| s.announcement_upload = Some("hello.wav".into()));
    let a = h.join(&r, 1);
    assert_eq!(h.played_paths(&a, 1), ["uploads/8000/hello.wav"]);
    h.missing("hello");
    let a = h.join(&r, 2);
    assert_eq!(h.played(&a, 2), ["welcome"]);
}

/// C13: every prompt in the room's language.
#[test]
fn c13_prompts_in_the_room_language() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        with_pin(s);
        s.language = Language::Fr;
    });
    let mut all = h.admit(&r, 1, Some("0000"));
    all.extend(h.keys(1, "1234#"));
    let paths = h.played_paths(&all, 1);
    assert!(paths.len() >= 3);
    for path in paths {
        assert!(path.starts_with("fr/8000/"), "{path}");
    }
}

/// C6: mute on entry applies to participants (told "you are muted"), not
/// to hosts.
#[test]
fn c6_mute_on_entry() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        with_pin(s);
        s.mute_on_entry = true;
    });
    let a = h.admit(&r, 1, Some("1234"));
    assert!(media(&a).any(|c| matches!(c, RoomCommand::SetMuted { id, muted: true } if id.0 == 1)));
    assert!(h.played(&a, 1).contains(&"muted".to_owned()));
    let a = h.admit(&r, 2, Some("9999"));
    assert!(!media(&a).any(|c| matches!(c, RoomCommand::SetMuted { id, .. } if id.0 == 2)));
    let snap = h.conf.snapshot(RoomId(1));
    assert!(snap.participants[0].muted && !snap.participants[1].muted);
}

/// C7: join and leave tones for the whole room when announce is set.
#[test]
fn c7_join_and_leave_tones() {
    let tones = |a: &[ConferenceAction]| {
        media(a)
            .filter(|c| matches!(c, RoomCommand::PlayRoom { .. }))
            .count()
    };
    let mut h = Harness::new();
    let r = room(1, |s| s.announce_join_leave = true);
    assert_eq!(tones(&h.admit(&r, 1, None)), 1);
    assert_eq!(tones(&h.admit(&r, 2, None)), 1);
    assert_eq!(tones(&h.hangup(2)), 1);
    let mut h = Harness::new();
    let r = room(1, |_| {});
    assert_eq!(tones(&h.admit(&r, 1, None)), 0);
}

// ---- In-call keys ----------------------------------------------------------

/// C14: `##` leaves: goodbye, then hang-up; the room ends with its last
/// participant.
#[test]
fn c14_hash_hash_leaves() {
    let mut h = Harness::new();
    let r = room(1, |_| {});
    h.admit(&r, 1, None);
    h.admit(&r, 2, None);
    let a = h.keys(1, "##");
    assert_eq!(h.played(&a, 1), ["goodbye"]);
    assert_eq!(in_mix(&a, 1), Some(false));
    assert!(kinds(&a).contains(&RoomEventKind::Left {
        participant: p(1),
        reason: LeaveReason::LeftByKey
    }));
    assert_eq!(hung_up(&h.finish(1)), [1]);
    assert_eq!(h.conf.snapshot(RoomId(1)).participants.len(), 1);
}

/// C14: `00` toggles mute, confirmed each time.
#[test]
fn c14_zero_zero_toggles_mute() {
    let mut h = Harness::new();
    let r = room(1, |_| {});
    h.admit(&r, 1, None);
    let a = h.keys(1, "00");
    assert_eq!(h.played(&a, 1), ["muted"]);
    assert!(media(&a).any(|c| matches!(c, RoomCommand::SetMuted { muted: true, .. })));
    assert!(kinds(&a).contains(&RoomEventKind::Muted {
        participant: p(1),
        by: Origin::Own
    }));
    let a = h.keys(1, "00");
    assert_eq!(h.played(&a, 1), ["unmuted"]);
    assert!(media(&a).any(|c| matches!(c, RoomCommand::SetMuted { muted: false, .. })));
}

/// C14: `**` mutes and deafens; again restores hearing and the earlier
/// microphone state.
#[test]
fn c14_star_star_toggles_mute_and_deaf() {
    let mut h = Harness::new();
    let r = room(1, |_| {});
    h.admit(&r, 1, None);
    let a = h.keys(1, "**");
    assert_eq!(h.played(&a, 1), ["muted_and_deaf"]);
    assert!(media(&a).any(|c| matches!(c, RoomCommand::SetDeaf { deaf: true, .. })));
    assert!(media(&a).any(|c| matches!(c, RoomCommand::SetMuted { muted: true, .. })));
    let snap = h.conf.snapshot(RoomId(1));
    assert!(snap.participants[0].muted && snap.participants[0].deaf);
    let a = h.keys(1, "**");
    assert_eq!(h.played(&a, 1), ["undeaf"]);
    let snap = h.conf.snapshot(RoomId(1));
    assert!(!snap.participants[0].muted && !snap.participants[0].deaf);
    // Muted before `**`: still muted after the second `**`.
    h.keys(1, "00");
    h.keys(1, "**");
    h.keys(1, "**");
    assert!(h.conf.snapshot(RoomId(1)).participants[0].muted);
}

/// C14: an incomplete sequence times out; unknown pairs and host keys
/// from non-hosts say "invalid key"; stray digits do nothing.
#[test]
fn c14_timeouts_invalid_and_host_keys_from_participants() {
    let mut h = Harness::new();
    let r = room(1, with_pin);
    h.admit(&r, 1, Some("1234"));
    h.keys(1, "0");
    h.run_for(Duration::from_secs(3));
    let a = h.keys(1, "0");
    assert!(h.played(&a, 1).is_empty(), "a lone 0 after the timeout");
    h.run_for(Duration::from_secs(3));
    assert_eq!(h.keys_heard(1, "#5"), ["invalid_key"]);
    assert!(h.keys_heard(1, "7").is_empty());
    for k in ["*1", "*2", "*3", "*4"] {
        let a = h.keys(1, k);
        assert_eq!(h.played(&a, 1), ["invalid_key"], "{k}");
        assert!(kinds(&a).is_empty(), "{k}");
    }
}

/// C14: the host's count key says the number of participants with the
/// language's number words.
#[test]
fn c14_host_hears_the_participant_count() {
    let mut h = Harness::new();
    let r = room(1, with_pin);
    h.admit(&r, 1, Some("9999"));
    assert_eq!(h.keys_heard(1, "*3"), ["participants_one"]);
    h.admit(&r, 2, Some("1234"));
    h.admit(&r, 3, Some("1234"));
    assert_eq!(
        h.keys_heard(1, "*3"),
        ["participants_before", "num_3", "participants_after"]
    );
}

/// C14: the host's mute-all key mutes every non-host (each is told), and
/// again unmutes them; later non-hosts join muted while it holds.
#[test]
fn c14_host_mutes_all_non_hosts() {
    let mut h = Harness::new();
    let r = room(1, with_pin);
    h.admit(&r, 1, Some("9999"));
    h.admit(&r, 2, Some("1234"));
    h.admit(&r, 3, Some("1234"));
    let a = h.keys(1, "*4");
    assert_eq!(h.played(&a, 1), ["all_muted"]);
    assert_eq!(h.played(&a, 2), ["muted"]);
    assert_eq!(h.played(&a, 3), ["muted"]);
    let snap = h.conf.snapshot(RoomId(1));
    assert_eq!(
        snap.participants
            .iter()
            .map(|x| x.muted)
            .collect::<Vec<_>>(),
        [false, true, true]
    );
    let a = h.admit(&r, 4, Some("1234"));
    assert!(media(&a).any(|c| matches!(c, RoomCommand::SetMuted { id, muted: true } if id.0 == 4)));
    let a = h.keys(1, "*4");
    assert_eq!(h.played(&a, 1), ["all_unmuted"]);
    assert!(
        h.conf
            .snapshot(RoomId(1))
            .participants
            .iter()
            .all(|x| !x.muted)
    );
}

// ---- Recording -------------------------------------------------------------

/// C9: auto-start with the first admitted participant (who hears it is
/// recorded), stop with the last; ids and paths are the conference's.
#[test]
fn c9_recording_auto_starts_and_stops_with_the_conference() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        s.recording_enabled = true;
        s.recording_autostart = true;
    });
    let a = h.admit(&r, 1, None);
    let started: Vec<_> = a
        .iter()
        .filter_map(|x| match x {
            ConferenceAction::RecordingStarted {
                recording, path, ..
            } => Some((*recording, path.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 1);
    let (id, path) = started[0].clone();
    assert_eq!(id, 1);
    assert_eq!(path, Path::new("/d/recordings/1/20231114T221320.500Z.wav"));
    assert!(media(&a).any(|c| matches!(c, RoomCommand::StartRecording { recording: 1 })));
    assert!(h.played(&a, 1).contains(&"conference_recorded".to_owned()));
    assert_eq!(h.conf.snapshot(RoomId(1)).recording, Some(1));

    let a = h.admit(&r, 2, None);
    assert!(h.played(&a, 2).contains(&"conference_recorded".to_owned()));
    h.run_for(Duration::from_secs(60));
    h.hangup(1);
    let a = h.hangup(2);
    let stopped = a
        .iter()
        .find_map(|x| match x {
            ConferenceAction::RecordingStopped {
                recording,
                participants,
                started_at,
                ended_at,
                ..
            } => Some((*recording, participants.len(), ended_at - started_at)),
            _ => None,
        })
        .unwrap();
    assert_eq!(stopped.0, 1);
    assert_eq!(stopped.1, 2);
    assert!(stopped.2 >= 60_000);
    assert!(media(&a).any(|c| matches!(c, RoomCommand::StopRecording)));
    // A new conference in the same room gets a new recording id.
    let a = h.admit(&r, 3, None);
    assert!(
        a.iter()
            .any(|x| matches!(x, ConferenceAction::RecordingStarted { recording: 2, .. }))
    );
}

/// C9, C14: the host starts and stops recording by key; everyone hears it.
/// In a room without recording the key is invalid.
#[test]
fn c9_host_key_starts_and_stops_recording() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        with_pin(s);
        s.recording_enabled = true;
    });
    h.admit(&r, 1, Some("9999"));
    h.admit(&r, 2, Some("1234"));
    let a = h.keys(1, "*1");
    assert_eq!(h.played(&a, 1), ["recording_started"]);
    assert_eq!(h.played(&a, 2), ["recording_started"]);
    assert!(kinds(&a).contains(&RoomEventKind::RecordingStarted {
        recording: 1,
        by: Origin::Host
    }));
    let a = h.keys(1, "*1");
    assert_eq!(h.played(&a, 2), ["recording_stopped"]);
    assert!(
        a.iter()
            .any(|x| matches!(x, ConferenceAction::RecordingStopped { recording: 1, .. }))
    );

    let mut h = Harness::new();
    let r = room(1, with_pin);
    h.admit(&r, 1, Some("9999"));
    assert_eq!(h.keys_heard(1, "*1"), ["invalid_key"]);
}

// ---- Control page ----------------------------------------------------------

/// C16 control: typed errors; mute, deaf, kick, lock and recording.
#[test]
fn control_commands_and_their_errors() {
    let mut h = Harness::new();
    let r = room(1, |_| {});
    assert_eq!(
        h.conf.handle_control(h.t, RoomId(1), ControlCommand::Lock),
        Err(ControlError::NoConference(RoomId(1)))
    );
    h.admit(&r, 1, None);
    h.admit(&r, 2, None);
    h.join(&r, 3); // still in the greeting: not a participant yet
    let c = |h: &mut Harness, cmd| h.conf.handle_control(h.t, RoomId(1), cmd);
    assert_eq!(
        c(&mut h, ControlCommand::Mute { participant: p(3) }),
        Err(ControlError::NoSuchParticipant(p(3)))
    );
    assert_eq!(
        c(&mut h, ControlCommand::StartRecording),
        Err(ControlError::RecordingDisabled)
    );
    c(&mut h, ControlCommand::Mute { participant: p(2) }).unwrap();
    c(&mut h, ControlCommand::Mute { participant: p(2) }).unwrap();
    c(&mut h, ControlCommand::Deaf { participant: p(2) }).unwrap();
    let a = h.drain();
    assert_eq!(
        kinds(&a),
        [
            RoomEventKind::Muted {
                participant: p(2),
                by: Origin::Control
            },
            RoomEventKind::Deaf {
                participant: p(2),
                by: Origin::Control
            }
        ]
    );
    assert_eq!(h.played(&a, 2), ["muted"]);
    c(&mut h, ControlCommand::Kick { participant: p(2) }).unwrap();
    let a = h.drain();
    assert_eq!(h.played(&a, 2), ["goodbye"]);
    assert!(kinds(&a).contains(&RoomEventKind::Left {
        participant: p(2),
        reason: LeaveReason::Kicked
    }));
    assert_eq!(hung_up(&h.finish(2)), [2]);

    let mut h = Harness::new();
    let r = room(1, |s| s.recording_enabled = true);
    h.admit(&r, 1, None);
    let c = |h: &mut Harness, cmd| h.conf.handle_control(h.t, RoomId(1), cmd);
    c(&mut h, ControlCommand::StartRecording).unwrap();
    c(&mut h, ControlCommand::StartRecording).unwrap();
    c(&mut h, ControlCommand::StopRecording).unwrap();
    let a = h.drain();
    let started = a
        .iter()
        .filter(|x| matches!(x, ConferenceAction::RecordingStarted { .. }))
        .count();
    assert_eq!(started, 1);
    assert!(kinds(&a).contains(&RoomEventKind::RecordingStopped {
        recording: 1,
        by: Origin::Control
    }));
}

// ---- Report, events, robustness --------------------------------------------

/// C15: the report has every participant with join/leave times and
/// durations, the peak count, the total duration and the recording.
#[test]
fn c15_report_contents() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        with_pin(s);
        s.recording_enabled = true;
        s.recording_autostart = true;
        s.report_email = Some("boss@example.org".into());
    });
    let start = h.ms();
    h.join(&r, 1);
    h.finish(1);
    h.finish(1);
    h.keys(1, "9999#");
    let joined1 = h.ms();
    h.finish(1);
    h.run_for(Duration::from_secs(30));
    h.admit(&r, 2, Some("1234"));
    h.admit(&r, 3, Some("1234"));
    h.run_for(Duration::from_secs(60));
    h.hangup(3); // peak was 3
    h.admit(&r, 4, Some("1234"));
    h.run_for(Duration::from_secs(60));
    h.hangup(2);
    h.hangup(4);
    h.run_for(Duration::from_secs(5));
    let end = h.ms() + 10;
    let a = h.hangup(1);
    let report = a
        .iter()
        .find_map(|x| match x {
            ConferenceAction::Report(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a report when the last participant leaves");
    assert!(start < report.started_at && report.started_at <= joined1);
    assert_eq!(report.started_at, joined1);
    assert_eq!(report.ended_at, end);
    assert_eq!(report.peak_participants, 3);
    assert_eq!(report.to.as_deref(), Some("boss@example.org"));
    let who: Vec<(u32, bool)> = report
        .participants
        .iter()
        .map(|x| (x.participant.0, x.host))
        .collect();
    assert_eq!(who, [(1, true), (2, false), (3, false), (4, false)]);
    for x in &report.participants {
        let left = x.left_at.expect("everyone left");
        assert!(left >= x.joined_at);
    }
    let host = &report.participants[0];
    assert_eq!(host.duration_ms(end), end - joined1);
    assert_eq!(report.duration_ms(), end - joined1);
    assert_eq!(report.recordings.len(), 1);
    assert_eq!(report.recordings[0].ended_at, end);
    let mail = report.render_email();
    assert!(mail.body.contains("Peak at once:  3"));
    // Room ended is the last event, and the room closes once the host's
    // call is gone.
    assert!(matches!(
        h.events().last().map(|e| &e.kind),
        Some(RoomEventKind::RoomEnded {
            peak_participants: 3,
            ..
        })
    ));
    assert!(matches!(
        a.last(),
        Some(ConferenceAction::RoomClosed { .. })
    ));
}

/// The model a web page keeps: a snapshot, then events applied in order.
fn apply(model: &mut BTreeMap<u32, crate::events::ParticipantView>, e: &RoomEvent) {
    match &e.kind {
        RoomEventKind::Joined { participant } => {
            model.insert(participant.id.0, participant.clone());
        }
        RoomEventKind::Left { participant, .. } => {
            model.remove(&participant.0);
        }
        RoomEventKind::Muted { participant, .. } => {
            model.get_mut(&participant.0).unwrap().muted = true
        }
        RoomEventKind::Unmuted { participant, .. } => {
            model.get_mut(&participant.0).unwrap().muted = false
        }
        RoomEventKind::Deaf { participant, .. } => {
            model.get_mut(&participant.0).unwrap().deaf = true
        }
        RoomEventKind::Undeaf { participant, .. } => {
            model.get_mut(&participant.0).unwrap().deaf = false
        }
        RoomEventKind::Talking { participant } => {
            model.get_mut(&participant.0).unwrap().talking = true
        }
        RoomEventKind::StoppedTalking { participant } => {
            model.get_mut(&participant.0).unwrap().talking = false
        }
        RoomEventKind::Waiting { participant } => {
            model.get_mut(&participant.0).unwrap().waiting = true
        }
        RoomEventKind::Admitted { participant } => {
            model.get_mut(&participant.0).unwrap().waiting = false
        }
        _ => {}
    }
}

/// Events are numbered 1, 2, 3… per room, and a snapshot plus the events
/// after its `seq` always equals the live state.
#[test]
fn event_sequence_numbers_and_snapshot_agree() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        with_pin(s);
        s.wait_for_host = true;
        s.mute_on_entry = true;
        s.recording_enabled = true;
    });
    let mut checkpoints = vec![h.conf.snapshot(RoomId(1))];
    let mut step = |h: &mut Harness, f: &dyn Fn(&mut Harness)| {
        f(h);
        checkpoints.push(h.conf.snapshot(RoomId(1)));
    };
    step(&mut h, &|h| {
        h.admit(&r, 1, Some("1234"));
    });
    step(&mut h, &|h| {
        h.admit(&r, 2, Some("9999"));
    });
    step(&mut h, &|h| {
        h.keys(1, "00");
    });
    step(&mut h, &|h| {
        h.conf
            .handle_media_event(h.t, RoomId(1), MediaEvent::Talking { participant: p(2) });
        h.drain();
    });
    step(&mut h, &|h| {
        h.keys(1, "**");
        h.keys(2, "*1");
    });
    step(&mut h, &|h| {
        h.hangup(2);
    });
    step(&mut h, &|h| {
        h.admit(&r, 3, Some("9999"));
        h.conf.handle_media_event(
            h.t,
            RoomId(1),
            MediaEvent::StoppedTalking { participant: p(3) },
        );
        h.drain();
    });
    step(&mut h, &|h| {
        h.keys(1, "##");
        h.finish(1);
    });
    let events = h.events();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "{e:?}");
        assert_eq!(e.room, RoomId(1));
    }
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
    for snap in &checkpoints {
        let mut model: BTreeMap<u32, _> = snap
            .participants
            .iter()
            .map(|x| (x.id.0, x.clone()))
            .collect();
        for e in events.iter().filter(|e| e.seq > snap.seq) {
            apply(&mut model, e);
        }
        let live: BTreeMap<u32, _> = h
            .conf
            .snapshot(RoomId(1))
            .participants
            .into_iter()
            .map(|x| (x.id.0, x))
            .collect();
        assert_eq!(model, live, "from seq {}", snap.seq);
    }
    let last = h.conf.snapshot(RoomId(1));
    assert_eq!(last.seq, events.len() as u64);
    assert_eq!(last.participants.len(), 1);
    assert_eq!(last.recording, Some(1));
}

/// A lost "prompt finished" does not strand a caller: the flow moves on
/// after the prompt's length plus the grace.
#[test]
fn lost_prompt_end_does_not_strand_the_caller() {
    let mut h = Harness::new();
    let r = room(1, with_pin);
    h.join(&r, 1);
    // welcome is 0.5 s; nothing is reported.
    let a = h.run_for(Duration::from_millis(5400));
    assert!(h.played(&a, 1).is_empty());
    let a = h.run_for(Duration::from_millis(200));
    assert_eq!(h.played(&a, 1), ["enter_pin"]);
}

/// Missing prompt files are skipped: a refused caller is still hung up.
#[test]
fn missing_prompts_do_not_block_the_flow() {
    let mut h = Harness::new();
    h.missing("anonymous_rejected");
    h.missing("goodbye");
    let r = room(1, |s| s.allow_anonymous = false);
    let a = h.join_as(&r, 1, None, true);
    assert_eq!(hung_up(&a), [1]);
}

/// No media for too long: the caller is hung up and leaves the room.
#[test]
fn rtp_timeout_hangs_up() {
    let mut h = Harness::new();
    let r = room(1, |_| {});
    h.admit(&r, 1, None);
    h.conf
        .handle_media_event(h.t, RoomId(1), MediaEvent::RtpTimeout { participant: p(1) });
    let a = h.drain();
    assert_eq!(hung_up(&a), [1]);
    assert!(kinds(&a).contains(&RoomEventKind::Left {
        participant: p(1),
        reason: LeaveReason::MediaTimeout
    }));
    assert!(a.iter().any(|x| matches!(x, ConferenceAction::Report(_))));
}

/// Turning recording off in the settings stops a recording under way;
/// turning wait-for-host off admits whoever waits.
#[test]
fn settings_changes_apply_to_the_live_room() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        with_pin(s);
        s.wait_for_host = true;
        s.recording_enabled = true;
        s.recording_autostart = true;
    });
    h.admit(&r, 1, Some("1234"));
    let r2 = room(1, with_pin);
    h.conf.handle_room_update(h.t, &r2);
    let a = h.drain();
    assert!(
        a.iter()
            .any(|x| matches!(x, ConferenceAction::RecordingStopped { .. }))
    );
    assert_eq!(in_mix(&a, 1), Some(true));
    assert_eq!(moh(&a, 1), Some(false));
}

/// Shrunk from the storm test: a recording stopped from the control page
/// leaves the conference running, without a recording.
#[test]
fn c9_control_stop_keeps_the_conference_running() {
    let mut h = Harness::new();
    let r = room(1, |s| {
        with_pin(s);
        s.recording_enabled = true;
        s.recording_autostart = true;
    });
    h.join(&r, 5);
    h.keys(5, "1234#");
    h.conf
        .handle_control(h.t, RoomId(1), ControlCommand::StopRecording)
        .unwrap();
    h.drain();
    let snap = h.conf.snapshot(RoomId(1));
    assert!(snap.active);
    assert_eq!(snap.recording, None);
}

/// Shrunk from the storm test: input for a room nobody called is ignored.
#[test]
fn events_for_unknown_rooms_and_callers_are_ignored() {
    let mut h = Harness::new();
    h.keys(1, "0");
    h.hangup(1);
    h.conf.handle_room_update(h.t, &room(1, |_| {}));
    assert!(h.drain().is_empty());
    assert_eq!(h.conf.snapshot(RoomId(1)), RoomSnapshot::idle(RoomId(1), 0));
    h.admit(&room(1, |_| {}), 1, None);
    h.keys(9, "##");
    h.hangup(9);
    assert_eq!(h.conf.snapshot(RoomId(1)).participants.len(), 1);
}

mod storm {
    //! Any order of caller keys, hang-ups, prompt ends, media events,
    //! control commands and time never panics, never overflows the room,
    //! numbers events without gaps, and ends with a closed room.

    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Join(u32, bool),
        Key(u32, char),
        Pin(u32, bool),
        Finish(u32),
        Hangup(u32),
        Wait(u64),
        Talk(u32, bool),
        Timeout(u32),
        Control(u8, u32),
        Update(bool),
    }

    fn step() -> impl Strategy<Value = Step> {
        let who = 1u32..7;
        prop_oneof![
            2 => (who.clone(), proptest::bool::weighted(0.2)).prop_map(|(w, a)| Step::Join(w, a)),
            4 => (who.clone(), proptest::sample::select("0123456789*#149".chars().collect::<Vec<_>>()))
                .prop_map(|(w, k)| Step::Key(w, k)),
            2 => (who.clone(), any::<bool>()).prop_map(|(w, host)| Step::Pin(w, host)),
            3 => who.clone().prop_map(Step::Finish),
            1 => who.clone().prop_map(Step::Hangup),
            1 => (0u64..12_000).prop_map(Step::Wait),
            1 => (who.clone(), any::<bool>()).prop_map(|(w, t)| Step::Talk(w, t)),
            1 => who.clone().prop_map(Step::Timeout),
            1 => (0u8..9, who).prop_map(|(c, w)| Step::Control(c, w)),
            1 => any::<bool>().prop_map(Step::Update),
        ]
    }

    fn settings(wait: bool) -> impl FnOnce(&mut RoomSettings) {
        move |s: &mut RoomSettings| {
            s.access_pin = Some("14".into());
            s.host_pin = Some("41".into());
            s.max_participants = 3;
            s.wait_for_host = wait;
            s.allow_anonymous = false;
            s.recording_enabled = true;
            s.recording_autostart = true;
            s.announce_join_leave = true;
        }
    }

    /// Conferences started over all cases: the storm must reach the room,
    /// not only the PIN menu.
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    #[test]
    fn storm_reaches_the_room() {
        any_event_order_keeps_the_room_consistent();
        let n = STARTED.load(std::sync::atomic::Ordering::Relaxed);
        assert!(n > 60, "{n} conferences in 200 cases");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn any_event_order_keeps_the_room_consistent(steps in proptest::collection::vec(step(), 1..80)) {
            let mut h = Harness::new();
            let mut r = room(1, settings(true));
            for s in steps {
                match s {
                    Step::Join(w, anonymous) => {
                        h.join_as(&r, w, Some(format!("{w}")), anonymous);
                    }
                    Step::Key(w, k) => {
                        h.keys(w, &k.to_string());
                    }
                    Step::Pin(w, host) => {
                        h.keys(w, if host { "41#" } else { "14#" });
                    }
                    Step::Finish(w) => {
                        h.finish(w);
                    }
                    Step::Hangup(w) => {
                        h.hangup(w);
                    }
                    Step::Wait(ms) => {
                        h.run_for(Duration::from_millis(ms));
                    }
                    Step::Talk(w, on) => {
                        let ev = if on {
                            MediaEvent::Talking { participant: p(w) }
                        } else {
                            MediaEvent::StoppedTalking { participant: p(w) }
                        };
                        h.conf.handle_media_event(h.t, RoomId(1), ev);
                        h.drain();
                    }
                    Step::Timeout(w) => {
                        h.conf.handle_media_event(h.t, RoomId(1), MediaEvent::RtpTimeout { participant: p(w) });
                        h.drain();
                    }
                    Step::Control(c, w) => {
                        let participant = p(w);
                        let cmd = match c {
                            0 => ControlCommand::Mute { participant },
                            1 => ControlCommand::Unmute { participant },
                            2 => ControlCommand::Deaf { participant },
                            3 => ControlCommand::Undeaf { participant },
                            4 => ControlCommand::Kick { participant },
                            5 => ControlCommand::Lock,
                            6 => ControlCommand::Unlock,
                            7 => ControlCommand::StartRecording,
                            _ => ControlCommand::StopRecording,
                        };
                        let _ = h.conf.handle_control(h.t, RoomId(1), cmd);
                        h.drain();
                    }
                    Step::Update(wait) => {
                        r = room(1, settings(wait));
                        h.conf.handle_room_update(h.t, &r);
                        h.drain();
                    }
                }
                if let Some(live) = h.conf.rooms.get(&RoomId(1)) {
                    prop_assert!(live.seats_taken() <= 3, "seats {}", live.seats_taken());
                }
                let snap = h.conf.snapshot(RoomId(1));
                prop_assert!(snap.participants.len() <= 3);
                prop_assert_eq!(snap.active, !snap.participants.is_empty());
                prop_assert!(snap.recording.is_none() || snap.active);
                prop_assert!(snap.participants.iter().all(|x| x.number.is_some()));
            }
            for w in 1..7 {
                h.hangup(w);
            }
            let events = h.events();
            for (i, e) in events.iter().enumerate() {
                prop_assert_eq!(e.seq, i as u64 + 1);
            }
            let snap = h.conf.snapshot(RoomId(1));
            prop_assert!(!snap.active && snap.participants.is_empty());
            prop_assert_eq!(h.conf.poll_timeout(), None);
            prop_assert_eq!(h.conf.live_rooms().count(), 0);
            let started = events.iter().filter(|e| matches!(e.kind, RoomEventKind::RoomStarted)).count();
            let ended = events.iter().filter(|e| matches!(e.kind, RoomEventKind::RoomEnded { .. })).count();
            prop_assert_eq!(started, ended);
            let reports = h.log.iter().filter(|a| matches!(a, ConferenceAction::Report(_))).count();
            prop_assert_eq!(reports, ended);
            let rec_started = h.log.iter().filter(|a| matches!(a, ConferenceAction::RecordingStarted { .. })).count();
            let rec_stopped = h.log.iter().filter(|a| matches!(a, ConferenceAction::RecordingStopped { .. })).count();
            prop_assert_eq!(rec_started, rec_stopped);
            STARTED.fetch_add(started, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
