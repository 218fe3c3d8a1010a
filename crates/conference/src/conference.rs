//! The conference state machine: every live room, its callers, their call
//! flow (refusals, greeting, PIN, admission, waiting for a host), the key
//! menu, recording and the end-of-conference report.
//!
//! Meet first: [`Conference`] (all rooms; `handle_*` in, `poll_action` and
//! `poll_timeout` out), [`JoinRequest`] (a caller the PBX answered),
//! [`ConferenceAction`] (what the integrator executes: media commands,
//! hang-ups, events, recordings, reports) and [`SoundLoader`] (how prompt
//! files become PCM; [`palaver_media::source::PromptCache`] in production).
//!
//! Run loop (the integrator's): after every `handle_*`, drain
//! `poll_action` to `None`, and call `handle_timeout` at `poll_timeout()`.
//! Media commands go verbatim to the room's `MediaRoom`; the conference
//! adds nothing to and removes nothing from it but through them (it sends
//! `RemoveParticipant` itself when a caller leaves, after `HangUp` when the
//! conference ends the call).
//!
//! Decisions a telephony user would ask about (also in `KEYS.md`):
//! - Refusals come first, in this order: withheld number when the room
//!   refuses anonymous callers (C12), locked room (unless it has a host PIN:
//!   a host may still enter a locked room, as in ConfBridge), full room
//!   (C2). A caller holds a seat from arrival, so callers typing the PIN
//!   count and a full room never overflows; hosts are not exempt, the limit
//!   is also the capacity the admin sized.
//! - A room with only a host PIN still asks for "the PIN": the host types
//!   it, anyone else presses `#` (or waits for the timeout) and joins as a
//!   participant; a wrong non-empty entry is a wrong try. A room with no PIN
//!   at all asks nothing (C17: open to anyone with the number).
//! - A timeout ends the entry like `#` does, so it counts as a try unless
//!   what was typed is right. `*` clears the digits typed so far. Keys
//!   pressed during the greeting or a PIN prompt interrupt it.
//! - Mute on entry (C6) and "mute all" apply to non-hosts only, since the
//!   host is who must be heard in a training or webinar room; a muted
//!   participant may still unmute with `00`.
//! - `**` mutes and deafens; pressing it again restores hearing and the
//!   microphone state from before.
//! - Join/leave are announced with tones (C7): the rooms have no
//!   "record your name" setting.
//!
//! Nothing here reads a clock, opens a socket or spawns anything; the only
//! I/O is what the [`SoundLoader`] does when a prompt is first needed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use palaver_media::room::{ParticipantId, RoomCommand};
use palaver_media::source::{Playback, Prompt, PromptCache, Tone};
use palaver_prompts::{PromptFile, PromptId, SampleRate};
use palaver_store::{Room, RoomId, RoomSettings};

use crate::audio_upload;
use crate::clock::{WallClock, file_stamp};
use crate::events::{
    ControlCommand, ControlError, LeaveReason, Origin, ParticipantView, RoomEvent, RoomEventKind,
    RoomSnapshot,
};
use crate::keys::{KeyAction, KeyCollector, KeyOutcome};
use crate::report::{ConferenceReport, ParticipantRecord, ReportRecording};

/// Turns a sound file into PCM at a room's rate.
///
/// The conference asks for a file the first time it plays it to a room of
/// that rate; an implementation should cache (PromptCache does). An error
/// is logged and the sound skipped: the call flow goes on without it.
pub trait SoundLoader {
    /// The file at `path`, converted to mono PCM at `rate`.
    fn load(&mut self, path: &Path, rate: u32) -> Result<Prompt, palaver_media::Error>;
}

impl SoundLoader for PromptCache {
    fn load(&mut self, path: &Path, rate: u32) -> Result<Prompt, palaver_media::Error> {
        self.get(path, rate)
    }
}

/// Settings of the conference service (not of a room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceConfig {
    /// The installation's `prompts/` folder.
    pub prompts_dir: PathBuf,
    /// Converted uploads: `<uploads_dir>/<8000|16000>/<file name>` (see
    /// [`audio_upload::upload_path`]).
    pub uploads_dir: PathBuf,
    /// Recordings go to `<recordings_dir>/<room id>/<UTC stamp>.wav`.
    pub recordings_dir: PathBuf,
    /// PIN tries before goodbye (SPEC C3: 3).
    pub pin_attempts: u32,
    /// Time to type the first PIN digit after the prompt ends.
    pub pin_first_digit_timeout: Duration,
    /// Time between PIN digits.
    pub pin_inter_digit_timeout: Duration,
    /// Time between the two keys of an in-call sequence.
    pub key_timeout: Duration,
    /// Grace after a flow prompt's own length before the flow moves on
    /// without its "finished" event (a lost event must not strand a caller).
    pub prompt_grace: Duration,
}

impl ConferenceConfig {
    /// Defaults for an installation: prompts in `prompts_dir`, uploads in
    /// `<data_dir>/uploads`, recordings in `<data_dir>/recordings`; 3 PIN
    /// tries, 10 s for the first digit, 5 s between digits, 2 s between
    /// menu keys.
    pub fn new(prompts_dir: impl Into<PathBuf>, data_dir: &Path) -> Self {
        ConferenceConfig {
            prompts_dir: prompts_dir.into(),
            uploads_dir: data_dir.join("uploads"),
            recordings_dir: data_dir.join("recordings"),
            pin_attempts: 3,
            pin_first_digit_timeout: Duration::from_secs(10),
            pin_inter_digit_timeout: Duration::from_secs(5),
            key_timeout: Duration::from_secs(2),
            prompt_grace: Duration::from_secs(5),
        }
    }
}

/// A caller the PBX answered and added to the room's media (not mixed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Its id in the room's `MediaRoom`.
    pub participant: ParticipantId,
    /// Caller number (user part of the identity), if any.
    pub number: Option<String>,
    /// Caller display name, if any.
    pub name: Option<String>,
    /// Caller ID withheld (Privacy: id, anonymous From, no number).
    pub anonymous: bool,
    /// The integrator's reference to the call (SIP Call-ID), for logs.
    pub call_ref: String,
    /// The `MediaRoom`'s mixing rate (`MediaRoom::sample_rate()`).
    pub sample_rate: u32,
}

/// What the integrator must do.
#[derive(Debug, Clone)]
pub enum ConferenceAction {
    /// Apply to the room's `MediaRoom` with `handle_command` (an error there
    /// is logged, not fatal).
    Media {
        /// The room.
        room: RoomId,
        /// The command.
        command: RoomCommand,
    },
    /// End this participant's call (BYE). `Media RemoveParticipant` follows.
    HangUp {
        /// The room.
        room: RoomId,
        /// Whose call.
        participant: ParticipantId,
    },
    /// For the web layer (WebSocket, follow/control pages).
    Event(RoomEvent),
    /// Recording started: open the file for the media recorder's blocks of
    /// this id and create the store row.
    RecordingStarted {
        /// The room.
        room: RoomId,
        /// The room's name now (for the store row).
        room_name: String,
        /// Id, as in `RoomCommand::StartRecording` and the record blocks.
        recording: u64,
        /// The file to write.
        path: PathBuf,
        /// Unix ms.
        started_at: i64,
    },
    /// Recording stopped: finish the file and the store row.
    RecordingStopped {
        /// The room.
        room: RoomId,
        /// Id.
        recording: u64,
        /// The file.
        path: PathBuf,
        /// Unix ms.
        started_at: i64,
        /// Unix ms.
        ended_at: i64,
        /// Who was in the room during the recording.
        participants: Vec<ParticipantRecord>,
    },
    /// The conference ended: send the report if `to` is set.
    Report(ConferenceReport),
    /// Nobody is connected to the room any more: its `MediaRoom` may go.
    RoomClosed {
        /// The room.
        room: RoomId,
    },
}

/// A sound of the call flow.
#[derive(Debug, Clone)]
enum Sound {
    File(PromptFile),
    Upload(String),
}

impl From<PromptId> for Sound {
    fn from(id: PromptId) -> Self {
        Sound::File(id.into())
    }
}

/// A flow prompt in progress: the flow moves on when `last` ends.
#[derive(Debug, Clone, Copy)]
struct Cue {
    last: u64,
    watchdog: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Hearing the greeting.
    Greeting,
    /// Typing the PIN (a prompt may be playing).
    Pin { digits: String, wrong: u32 },
    /// Admitted, hearing the entry prompts.
    Entering,
    /// In the mix, or waiting for a host with music.
    InRoom,
    /// Hearing a refusal or goodbye; hung up when it ends.
    Leaving,
}

#[derive(Debug, Clone)]
struct Member {
    joined_at: i64,
    order: u64,
    muted: bool,
    deaf: bool,
    muted_before_deaf: bool,
    talking: bool,
    waiting: bool,
}

#[derive(Debug)]
struct Caller {
    id: ParticipantId,
    number: Option<String>,
    name: Option<String>,
    call_ref: String,
    host: bool,
    phase: Phase,
    cue: Option<Cue>,
    digit_deadline: Option<Instant>,
    keys: KeyCollector,
    member: Option<Member>,
}

#[derive(Debug)]
struct ActiveRecording {
    id: u64,
    path: PathBuf,
    started_at: i64,
}

/// One conference: from the first admission to the last departure.
#[derive(Debug)]
struct Session {
    started_at: i64,
    peak: u32,
    locked: bool,
    all_muted: bool,
    recording: Option<ActiveRecording>,
    records: Vec<ParticipantRecord>,
    recordings: Vec<ReportRecording>,
}

/// Everything outside the rooms that room logic needs: configuration,
/// clock anchor, sound loading, id counters and the action queue.
struct Io {
    config: ConferenceConfig,
    clock: WallClock,
    sounds: Box<dyn SoundLoader + Send>,
    actions: VecDeque<ConferenceAction>,
    next_playback: u64,
    next_recording: u64,
    next_order: u64,
}

impl Io {
    fn ms(&self, now: Instant) -> i64 {
        self.clock.unix_ms(now)
    }
}

struct LiveRoom {
    id: RoomId,
    settings: RoomSettings,
    rate: u32,
    seq: u64,
    callers: BTreeMap<ParticipantId, Caller>,
    session: Option<Session>,
}

/// Every live room and its callers. See the module docs.
pub struct Conference {
    io: Io,
    rooms: HashMap<RoomId, LiveRoom>,
}

impl std::fmt::Debug for Conference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conference")
            .field("rooms", &self.rooms.len())
            .field("pending_actions", &self.io.actions.len())
            .finish()
    }
}

fn pin(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty() && *p != "0")
}

impl Conference {
    /// A conference service with no rooms. `clock` anchors Unix times
    /// (`WallClock::system()` in production); `sounds` loads prompts
    /// (`Box::new(PromptCache::new())` in production).
    pub fn new(
        config: ConferenceConfig,
        clock: WallClock,
        sounds: Box<dyn SoundLoader + Send>,
    ) -> Self {
        Conference {
            io: Io {
                config,
                clock,
                sounds,
                actions: VecDeque::new(),
                next_playback: 1,
                next_recording: 1,
                next_order: 0,
            },
            rooms: HashMap::new(),
        }
    }

    /// A caller was answered and added to `room`'s media, not mixed. Its
    /// call flow starts now. `room` is the room as stored (fresh settings).
    pub fn handle_join(&mut self, now: Instant, room: &Room, join: JoinRequest) {
        let live = self.rooms.entry(room.id).or_insert_with(|| LiveRoom {
            id: room.id,
            settings: room.settings.clone(),
            rate: join.sample_rate,
            seq: 0,
            callers: BTreeMap::new(),
            session: None,
        });
        live.settings = room.settings.clone();
        live.rate = join.sample_rate;
        live.join(&mut self.io, now, join);
    }

    /// Something the room's `MediaRoom` reported.
    pub fn handle_media_event(
        &mut self,
        now: Instant,
        room: RoomId,
        event: palaver_media::room::MediaEvent,
    ) {
        use palaver_media::room::MediaEvent;
        let Some(live) = self.rooms.get_mut(&room) else {
            return;
        };
        let io = &mut self.io;
        match event {
            MediaEvent::Dtmf {
                participant, digit, ..
            } => live.digit(io, now, participant, digit),
            MediaEvent::Talking { participant } => live.talking(io, now, participant, true),
            MediaEvent::StoppedTalking { participant } => live.talking(io, now, participant, false),
            MediaEvent::PromptFinished {
                participant: Some(p),
                id,
                ..
            } => {
                let done = live
                    .callers
                    .get(&p)
                    .and_then(|c| c.cue)
                    .is_some_and(|c| c.last == id);
                if done {
                    if let Some(c) = live.callers.get_mut(&p) {
                        c.cue = None;
                    }
                    live.cue_done(io, now, p);
                }
            }
            MediaEvent::RtpTimeout { participant } => {
                if live.callers.contains_key(&participant) {
                    tracing::info!(room = %room, %participant, "no media from caller, hanging up");
                    live.depart(io, now, participant, LeaveReason::MediaTimeout);
                    live.push(io, ConferenceAction::HangUp { room, participant });
                    live.remove_caller(io, participant);
                }
            }
            MediaEvent::PromptFinished {
                participant: None, ..
            }
            | MediaEvent::SsrcChanged { .. }
            | MediaEvent::Stats { .. } => {}
        }
    }

    /// The caller hung up (BYE, CANCEL, transport failure).
    pub fn handle_hangup(&mut self, now: Instant, room: RoomId, participant: ParticipantId) {
        let Some(live) = self.rooms.get_mut(&room) else {
            return;
        };
        if !live.callers.contains_key(&participant) {
            return;
        }
        live.depart(&mut self.io, now, participant, LeaveReason::HungUp);
        live.remove_caller(&mut self.io, participant);
    }

    /// A command from the control page or the API (SPEC C16).
    pub fn handle_control(
        &mut self,
        now: Instant,
        room: RoomId,
        command: ControlCommand,
    ) -> Result<(), ControlError> {
        let live = self
            .rooms
            .get_mut(&room)
            .filter(|r| r.session.is_some())
            .ok_or(ControlError::NoConference(room))?;
        live.control(&mut self.io, now, command)
    }

    /// An admin changed the room's settings: prompts, limits and PINs apply
    /// to the next callers; disabling recording stops one in progress;
    /// turning wait-for-host off admits whoever waits. Turning it on does
    /// not take anyone out of a conference under way.
    pub fn handle_room_update(&mut self, now: Instant, room: &Room) {
        let Some(live) = self.rooms.get_mut(&room.id) else {
            return;
        };
        live.settings = room.settings.clone();
        let io = &mut self.io;
        if !live.settings.recording_enabled
            && live.session.as_ref().is_some_and(|s| s.recording.is_some())
        {
            live.stop_recording(io, now, Origin::Automatic, true);
        }
        if !live.settings.wait_for_host {
            live.release_waiting(io, now);
        }
    }

    /// Timers: PIN and key timeouts, lost prompt events.
    pub fn handle_timeout(&mut self, now: Instant) {
        let io = &mut self.io;
        for live in self.rooms.values_mut() {
            let due: Vec<ParticipantId> = live
                .callers
                .values()
                .filter(|c| caller_deadline(c).is_some_and(|d| d <= now))
                .map(|c| c.id)
                .collect();
            for p in due {
                live.timeout(io, now, p);
            }
        }
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<ConferenceAction> {
        self.io.actions.pop_front()
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.rooms
            .values()
            .flat_map(|r| r.callers.values())
            .filter_map(caller_deadline)
            .min()
    }

    /// The room's whole live state, consistent with its events up to the
    /// returned `seq`. A room nobody called yet is idle with `seq` 0.
    pub fn snapshot(&self, room: RoomId) -> RoomSnapshot {
        match self.rooms.get(&room) {
            Some(live) => live.snapshot(),
            None => RoomSnapshot::idle(room, 0),
        }
    }

    /// Rooms with at least one caller connected.
    pub fn live_rooms(&self) -> impl Iterator<Item = RoomId> + '_ {
        self.rooms
            .values()
            .filter(|r| !r.callers.is_empty())
            .map(|r| r.id)
    }
}

fn caller_deadline(c: &Caller) -> Option<Instant> {
    [
        c.cue.map(|q| q.watchdog),
        c.digit_deadline,
        c.keys.deadline(),
    ]
    .into_iter()
    .flatten()
    .min()
}

impl LiveRoom {
    fn language(&self) -> palaver_prompts::Language {
        self.settings
            .language
            .code()
            .parse()
            .unwrap_or(palaver_prompts::Language::En)
    }

    fn prompt_rate(&self) -> SampleRate {
        if self.rate <= 8000 {
            SampleRate::Hz8000
        } else {
            SampleRate::Hz16000
        }
    }

    fn push(&self, io: &mut Io, action: ConferenceAction) {
        io.actions.push_back(action);
    }

    fn media(&self, io: &mut Io, command: RoomCommand) {
        io.actions.push_back(ConferenceAction::Media {
            room: self.id,
            command,
        });
    }

    fn emit(&mut self, io: &mut Io, now: Instant, kind: RoomEventKind) {
        self.seq += 1;
        io.actions.push_back(ConferenceAction::Event(RoomEvent {
            room: self.id,
            seq: self.seq,
            at: io.ms(now),
            kind,
        }));
    }

    fn load(&self, io: &mut Io, sound: &Sound) -> Option<Prompt> {
        let rate = self.prompt_rate();
        let path = match sound {
            Sound::File(f) => f.path(&io.config.prompts_dir, self.language(), rate),
            Sound::Upload(name) => audio_upload::upload_path(&io.config.uploads_dir, name, rate),
        };
        match io.sounds.load(&path, self.rate) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(room = %self.id, path = %path.display(), error = %e, "sound not played");
                None
            }
        }
    }

    /// Queues `sounds` for one participant; the returned cue ends with the
    /// last one (None when nothing could be loaded).
    fn play(&self, io: &mut Io, now: Instant, who: ParticipantId, sounds: &[Sound]) -> Option<Cue> {
        let mut last = None;
        let mut samples = 0usize;
        for s in sounds {
            let Some(prompt) = self.load(io, s) else {
                continue;
            };
            samples += prompt.samples.len();
            let id = io.next_playback;
            io.next_playback += 1;
            self.media(
                io,
                RoomCommand::Play {
                    id: who,
                    playback: Playback::prompt(id, prompt),
                },
            );
            last = Some(id);
        }
        let length = Duration::from_millis((samples as u64 * 1000) / u64::from(self.rate.max(1)));
        last.map(|last| Cue {
            last,
            watchdog: now + length + io.config.prompt_grace,
        })
    }

    /// Plays a flow prompt; the flow goes on in `cue_done` when it ends (at
    /// once if nothing could be played).
    fn start_cue(&mut self, io: &mut Io, now: Instant, who: ParticipantId, sounds: &[Sound]) {
        let cue = self.play(io, now, who, sounds);
        let Some(c) = self.callers.get_mut(&who) else {
            return;
        };
        c.cue = cue;
        if cue.is_none() {
            self.cue_done(io, now, who);
        }
    }

    fn seats_taken(&self) -> usize {
        self.callers
            .values()
            .filter(|c| c.phase != Phase::Leaving)
            .count()
    }

    fn members(&self) -> impl Iterator<Item = &Caller> {
        self.callers
            .values()
            .filter(|c| c.member.is_some() && c.phase != Phase::Leaving)
    }

    fn member_count(&self) -> usize {
        self.members().count()
    }

    fn host_present(&self) -> bool {
        self.members().any(|c| c.host)
    }

    fn needs_pin(&self) -> bool {
        pin(&self.settings.access_pin).is_some() || pin(&self.settings.host_pin).is_some()
    }

    fn locked(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.locked)
    }

    fn view(&self, c: &Caller) -> Option<ParticipantView> {
        let m = c.member.as_ref()?;
        Some(ParticipantView {
            id: c.id,
            number: c.number.clone(),
            name: c.name.clone(),
            host: c.host,
            joined_at: m.joined_at,
            muted: m.muted,
            deaf: m.deaf,
            talking: m.talking,
            waiting: m.waiting,
        })
    }

    fn snapshot(&self) -> RoomSnapshot {
        let mut members: Vec<&Caller> = self.members().collect();
        members.sort_by_key(|c| c.member.as_ref().map(|m| m.order));
        let mut snap = RoomSnapshot::idle(self.id, self.seq);
        if let Some(s) = &self.session {
            snap.active = true;
            snap.started_at = Some(s.started_at);
            snap.locked = s.locked;
            snap.recording = s.recording.as_ref().map(|r| r.id);
            snap.peak_participants = s.peak;
        }
        snap.host_present = self.host_present();
        snap.participants = members.iter().filter_map(|c| self.view(c)).collect();
        snap
    }

    // ---- Arrival, greeting, PIN -------------------------------------------

    fn join(&mut self, io: &mut Io, now: Instant, join: JoinRequest) {
        let id = join.participant;
        if self.callers.contains_key(&id) {
            tracing::warn!(room = %self.id, participant = %id, "join for a participant already in the room; ignored");
            return;
        }
        let seats = self.seats_taken();
        self.callers.insert(
            id,
            Caller {
                id,
                number: if join.anonymous { None } else { join.number },
                name: join.name,
                call_ref: join.call_ref,
                host: false,
                phase: Phase::Greeting,
                cue: None,
                digit_deadline: None,
                keys: KeyCollector::new(),
                member: None,
            },
        );
        tracing::info!(room = %self.id, participant = %id, call = %self.callers[&id].call_ref, "caller arrived");
        let refusal = if join.anonymous && !self.settings.allow_anonymous {
            Some(PromptId::AnonymousRejected)
        } else if self.locked() && pin(&self.settings.host_pin).is_none() {
            Some(PromptId::ConferenceLocked)
        } else if seats >= self.settings.max_participants as usize {
            Some(PromptId::ConferenceFull)
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.refuse(io, now, id, reason);
            return;
        }
        let greeting = match &self.settings.announcement_upload {
            Some(name) if self.load(io, &Sound::Upload(name.clone())).is_some() => {
                Sound::Upload(name.clone())
            }
            _ => PromptId::Welcome.into(),
        };
        self.start_cue(io, now, id, &[greeting]);
    }

    fn refuse(&mut self, io: &mut Io, now: Instant, who: ParticipantId, reason: PromptId) {
        tracing::info!(room = %self.id, participant = %who, reason = %reason, "caller refused");
        if let Some(c) = self.callers.get_mut(&who) {
            c.phase = Phase::Leaving;
            c.digit_deadline = None;
        }
        self.start_cue(io, now, who, &[reason.into(), PromptId::Goodbye.into()]);
    }

    fn start_pin(&mut self, io: &mut Io, now: Instant, who: ParticipantId) {
        if let Some(c) = self.callers.get_mut(&who) {
            c.phase = Phase::Pin {
                digits: String::new(),
                wrong: 0,
            };
        }
        self.start_cue(io, now, who, &[PromptId::EnterPin.into()]);
    }

    fn cue_done(&mut self, io: &mut Io, now: Instant, who: ParticipantId) {
        let Some(c) = self.callers.get_mut(&who) else {
            return;
        };
        match c.phase {
            Phase::Greeting => {
                if self.needs_pin() {
                    self.start_pin(io, now, who);
                } else {
                    self.admit(io, now, who, false);
                }
            }
            Phase::Pin { ref digits, .. } => {
                let wait = if digits.is_empty() {
                    io.config.pin_first_digit_timeout
                } else {
                    io.config.pin_inter_digit_timeout
                };
                c.digit_deadline = Some(now + wait);
            }
            Phase::Entering => self.enter(io, who),
            Phase::InRoom => {}
            Phase::Leaving => {
                self.push(
                    io,
                    ConferenceAction::HangUp {
                        room: self.id,
                        participant: who,
                    },
                );
                self.remove_caller(io, who);
            }
        }
    }

    /// Interrupts a flow prompt (a key was pressed during it).
    fn barge_in(&mut self, io: &mut Io, who: ParticipantId) {
        let Some(c) = self.callers.get_mut(&who) else {
            return;
        };
        if c.cue.take().is_some() {
            self.media(io, RoomCommand::StopPlayback { id: Some(who) });
        }
    }

    fn digit(&mut self, io: &mut Io, now: Instant, who: ParticipantId, digit: char) {
        let Some(c) = self.callers.get(&who) else {
            return;
        };
        match c.phase {
            Phase::Greeting => {
                if self.needs_pin() && (digit.is_ascii_digit() || digit == '#') {
                    self.barge_in(io, who);
                    if let Some(c) = self.callers.get_mut(&who) {
                        c.phase = Phase::Pin {
                            digits: String::new(),
                            wrong: 0,
                        };
                    }
                    self.pin_digit(io, now, who, digit);
                }
            }
            Phase::Pin { .. } => {
                self.barge_in(io, who);
                self.pin_digit(io, now, who, digit);
            }
            Phase::Entering | Phase::Leaving => {}
            Phase::InRoom => {
                let timeout = io.config.key_timeout;
                let Some(c) = self.callers.get_mut(&who) else {
                    return;
                };
                match c.keys.press(now, digit, timeout) {
                    KeyOutcome::Pending | KeyOutcome::Ignored => {}
                    KeyOutcome::Invalid => {
                        self.play(io, now, who, &[PromptId::InvalidKey.into()]);
                    }
                    KeyOutcome::Action(a) => self.key_action(io, now, who, a),
                }
            }
        }
    }

    fn pin_digit(&mut self, io: &mut Io, now: Instant, who: ParticipantId, digit: char) {
        let inter = io.config.pin_inter_digit_timeout;
        let Some(c) = self.callers.get_mut(&who) else {
            return;
        };
        let Phase::Pin { digits, .. } = &mut c.phase else {
            return;
        };
        match digit {
            '0'..='9' => {
                digits.push(digit);
                if digits.len() > palaver_store::fields::MAX_PIN_DIGITS {
                    self.submit_pin(io, now, who);
                    return;
                }
                c.digit_deadline = Some(now + inter);
            }
            '#' => self.submit_pin(io, now, who),
            '*' => {
                digits.clear();
                c.digit_deadline = Some(now + inter);
            }
            _ => {}
        }
    }

    fn submit_pin(&mut self, io: &mut Io, now: Instant, who: ParticipantId) {
        let access = pin(&self.settings.access_pin).map(str::to_owned);
        let host = pin(&self.settings.host_pin).map(str::to_owned);
        let attempts = io.config.pin_attempts.max(1);
        let Some(c) = self.callers.get_mut(&who) else {
            return;
        };
        c.digit_deadline = None;
        let Phase::Pin { digits, wrong } = &mut c.phase else {
            return;
        };
        let entered = std::mem::take(digits);
        if host.as_deref() == Some(entered.as_str()) {
            self.admit(io, now, who, true);
        } else if access.as_deref() == Some(entered.as_str())
            || (access.is_none() && entered.is_empty())
        {
            self.admit(io, now, who, false);
        } else {
            *wrong += 1;
            tracing::info!(room = %self.id, participant = %who, tries = *wrong, "wrong PIN");
            if *wrong >= attempts {
                c.phase = Phase::Leaving;
                self.start_cue(io, now, who, &[PromptId::PinTooManyAttempts.into()]);
            } else {
                self.start_cue(io, now, who, &[PromptId::PinInvalid.into()]);
            }
        }
    }

    fn timeout(&mut self, io: &mut Io, now: Instant, who: ParticipantId) {
        let Some(c) = self.callers.get_mut(&who) else {
            return;
        };
        c.keys.expire(now);
        if c.cue.is_some_and(|q| q.watchdog <= now) {
            tracing::warn!(room = %self.id, participant = %who, "prompt end not reported; moving on");
            c.cue = None;
            self.cue_done(io, now, who);
            return;
        }
        if c.digit_deadline.is_some_and(|d| d <= now) {
            self.submit_pin(io, now, who);
        }
    }

    // ---- Admission and the room -------------------------------------------

    fn admit(&mut self, io: &mut Io, now: Instant, who: ParticipantId, host: bool) {
        if !host && self.locked() {
            self.refuse(io, now, who, PromptId::ConferenceLocked);
            return;
        }
        let at = io.ms(now);
        if self.session.is_none() {
            self.session = Some(Session {
                started_at: at,
                peak: 0,
                locked: false,
                all_muted: false,
                recording: None,
                records: Vec::new(),
                recordings: Vec::new(),
            });
            self.emit(io, now, RoomEventKind::RoomStarted);
        }
        let had_host = self.host_present();
        let others = self.member_count();
        let all_muted = self.session.as_ref().is_some_and(|s| s.all_muted);
        let muted = !host && (self.settings.mute_on_entry || all_muted);
        let order = io.next_order;
        io.next_order += 1;
        let wait_for_host = self.settings.wait_for_host;
        let Some(c) = self.callers.get_mut(&who) else {
            return;
        };
        c.host = host;
        c.phase = Phase::Entering;
        c.member = Some(Member {
            joined_at: at,
            order,
            muted,
            deaf: false,
            muted_before_deaf: false,
            talking: false,
            waiting: wait_for_host && !host && !had_host,
        });
        let record = ParticipantRecord {
            participant: who,
            number: c.number.clone(),
            name: c.name.clone(),
            host,
            joined_at: at,
            left_at: None,
        };
        tracing::info!(room = %self.id, participant = %who, host, "participant admitted");
        let members = others as u32 + 1;
        let first = self.session.as_ref().is_some_and(|s| s.records.is_empty());
        if let Some(s) = &mut self.session {
            s.records.push(record);
            s.peak = s.peak.max(members);
        }
        if let Some(view) = self.callers.get(&who).and_then(|c| self.view(c)) {
            self.emit(io, now, RoomEventKind::Joined { participant: view });
        }
        if muted {
            self.media(
                io,
                RoomCommand::SetMuted {
                    id: who,
                    muted: true,
                },
            );
        }
        if first
            && self.settings.recording_enabled
            && self.settings.recording_autostart
            && self.session.as_ref().is_some_and(|s| s.recording.is_none())
        {
            self.start_recording(io, now, Origin::Automatic, false);
        }
        if host && !had_host {
            self.release_waiting(io, now);
        }
        let mut cue: Vec<Sound> = Vec::new();
        if host {
            cue.push(PromptId::YouAreHost.into());
        }
        if self.session.as_ref().is_some_and(|s| s.recording.is_some()) {
            cue.push(PromptId::ConferenceRecorded.into());
        }
        if muted {
            cue.push(PromptId::Muted.into());
        }
        let waiting = self
            .callers
            .get(&who)
            .and_then(|c| c.member.as_ref())
            .is_some_and(|m| m.waiting);
        if waiting {
            cue.push(PromptId::WaitForHost.into());
        } else if others == 0 {
            cue.push(PromptId::FirstParticipant.into());
        }
        self.start_cue(io, now, who, &cue);
    }

    /// The entry prompts ended: into the mix, or music until a host comes.
    fn enter(&mut self, io: &mut Io, who: ParticipantId) {
        let Some(c) = self.callers.get_mut(&who) else {
            return;
        };
        c.phase = Phase::InRoom;
        let waiting = c.member.as_ref().is_some_and(|m| m.waiting);
        if waiting {
            let music = self.music(io);
            self.media(io, RoomCommand::MusicOnHold { id: who, music });
        } else {
            self.media(
                io,
                RoomCommand::SetInMix {
                    id: who,
                    in_mix: true,
                },
            );
            self.join_leave_tone(io, Tone::join_beep());
        }
    }

    fn music(&self, io: &mut Io) -> Option<Prompt> {
        if let Some(name) = &self.settings.moh_upload
            && let Some(p) = self.load(io, &Sound::Upload(name.clone()))
        {
            return Some(p);
        }
        let path = palaver_prompts::moh_path(&io.config.prompts_dir, self.prompt_rate());
        match io.sounds.load(&path, self.rate) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(room = %self.id, error = %e, "no music on hold; waiting in silence");
                None
            }
        }
    }

    fn join_leave_tone(&self, io: &mut Io, tone: Tone) {
        if self.settings.announce_join_leave {
            let id = io.next_playback;
            io.next_playback += 1;
            self.media(
                io,
                RoomCommand::PlayRoom {
                    playback: Playback::tone(id, tone),
                },
            );
        }
    }

    /// A host is here: whoever waits enters the mix (SPEC C5).
    fn release_waiting(&mut self, io: &mut Io, now: Instant) {
        let waiting: Vec<(ParticipantId, Phase)> = self
            .members()
            .filter(|c| c.member.as_ref().is_some_and(|m| m.waiting))
            .map(|c| (c.id, c.phase.clone()))
            .collect();
        for (who, phase) in waiting {
            if let Some(m) = self.callers.get_mut(&who).and_then(|c| c.member.as_mut()) {
                m.waiting = false;
            }
            self.emit(io, now, RoomEventKind::Admitted { participant: who });
            if phase == Phase::InRoom {
                self.media(
                    io,
                    RoomCommand::MusicOnHold {
                        id: who,
                        music: None,
                    },
                );
                self.media(
                    io,
                    RoomCommand::SetInMix {
                        id: who,
                        in_mix: true,
                    },
                );
                self.play(io, now, who, &[PromptId::HostJoined.into()]);
            }
        }
    }

    /// The last host left a wait-for-host room: the others go back to the
    /// music, and are told why.
    fn back_to_waiting(&mut self, io: &mut Io, now: Instant) {
        let back: Vec<(ParticipantId, Phase)> = self
            .members()
            .filter(|c| !c.host && c.member.as_ref().is_some_and(|m| !m.waiting))
            .map(|c| (c.id, c.phase.clone()))
            .collect();
        for (who, phase) in back {
            if let Some(m) = self.callers.get_mut(&who).and_then(|c| c.member.as_mut()) {
                m.waiting = true;
            }
            self.emit(io, now, RoomEventKind::Waiting { participant: who });
            if phase == Phase::InRoom {
                self.media(
                    io,
                    RoomCommand::SetInMix {
                        id: who,
                        in_mix: false,
                    },
                );
                // Prompts play before the music resumes.
                self.play(io, now, who, &[PromptId::HostLeft.into()]);
                let music = self.music(io);
                self.media(io, RoomCommand::MusicOnHold { id: who, music });
            }
        }
    }

    fn talking(&mut self, io: &mut Io, now: Instant, who: ParticipantId, talking: bool) {
        let Some(m) = self.callers.get_mut(&who).and_then(|c| c.member.as_mut()) else {
            return;
        };
        if m.talking == talking {
            return;
        }
        m.talking = talking;
        let kind = if talking {
            RoomEventKind::Talking { participant: who }
        } else {
            RoomEventKind::StoppedTalking { participant: who }
        };
        self.emit(io, now, kind);
    }

    fn set_muted(
        &mut self,
        io: &mut Io,
        now: Instant,
        who: ParticipantId,
        muted: bool,
        by: Origin,
    ) -> bool {
        let Some(m) = self.callers.get_mut(&who).and_then(|c| c.member.as_mut()) else {
            return false;
        };
        if m.muted == muted {
            return false;
        }
        m.muted = muted;
        if muted && m.talking {
            m.talking = false;
            self.emit(io, now, RoomEventKind::StoppedTalking { participant: who });
        }
        self.media(io, RoomCommand::SetMuted { id: who, muted });
        let kind = if muted {
            RoomEventKind::Muted {
                participant: who,
                by,
            }
        } else {
            RoomEventKind::Unmuted {
                participant: who,
                by,
            }
        };
        self.emit(io, now, kind);
        true
    }

    fn set_deaf(
        &mut self,
        io: &mut Io,
        now: Instant,
        who: ParticipantId,
        deaf: bool,
        by: Origin,
    ) -> bool {
        let Some(m) = self.callers.get_mut(&who).and_then(|c| c.member.as_mut()) else {
            return false;
        };
        if m.deaf == deaf {
            return false;
        }
        m.deaf = deaf;
        self.media(io, RoomCommand::SetDeaf { id: who, deaf });
        let kind = if deaf {
            RoomEventKind::Deaf {
                participant: who,
                by,
            }
        } else {
            RoomEventKind::Undeaf {
                participant: who,
                by,
            }
        };
        self.emit(io, now, kind);
        true
    }

    fn set_locked(&mut self, io: &mut Io, now: Instant, locked: bool, by: Origin) {
        let Some(s) = &mut self.session else {
            return;
        };
        if s.locked == locked {
            return;
        }
        s.locked = locked;
        let kind = if locked {
            RoomEventKind::Locked { by }
        } else {
            RoomEventKind::Unlocked { by }
        };
        self.emit(io, now, kind);
    }

    fn key_action(&mut self, io: &mut Io, now: Instant, who: ParticipantId, action: KeyAction) {
        let Some(c) = self.callers.get(&who) else {
            return;
        };
        let Some(m) = c.member.clone() else {
            return;
        };
        if action.host_only() && !c.host {
            self.play(io, now, who, &[PromptId::InvalidKey.into()]);
            return;
        }
        match action {
            KeyAction::Leave => {
                self.depart(io, now, who, LeaveReason::LeftByKey);
                self.say_goodbye(io, now, who);
            }
            KeyAction::ToggleMute => {
                let muted = !m.muted;
                self.set_muted(io, now, who, muted, Origin::Own);
                let confirm = if muted {
                    PromptId::Muted
                } else {
                    PromptId::Unmuted
                };
                self.play(io, now, who, &[confirm.into()]);
            }
            KeyAction::ToggleMuteDeaf => {
                if m.deaf {
                    self.set_deaf(io, now, who, false, Origin::Own);
                    self.set_muted(io, now, who, m.muted_before_deaf, Origin::Own);
                    self.play(io, now, who, &[PromptId::Undeaf.into()]);
                } else {
                    if let Some(m2) = self.callers.get_mut(&who).and_then(|c| c.member.as_mut()) {
                        m2.muted_before_deaf = m.muted;
                    }
                    self.set_muted(io, now, who, true, Origin::Own);
                    self.set_deaf(io, now, who, true, Origin::Own);
                    self.play(io, now, who, &[PromptId::MutedAndDeaf.into()]);
                }
            }
            KeyAction::ToggleRecording => {
                if !self.settings.recording_enabled {
                    self.play(io, now, who, &[PromptId::InvalidKey.into()]);
                } else if self.session.as_ref().is_some_and(|s| s.recording.is_some()) {
                    self.stop_recording(io, now, Origin::Host, true);
                } else {
                    self.start_recording(io, now, Origin::Host, true);
                }
            }
            KeyAction::ToggleLock => {
                let locked = !self.locked();
                self.set_locked(io, now, locked, Origin::Host);
                let confirm = if locked {
                    PromptId::RoomLocked
                } else {
                    PromptId::RoomUnlocked
                };
                self.play(io, now, who, &[confirm.into()]);
            }
            KeyAction::ParticipantCount => {
                let n = u32::try_from(self.member_count()).unwrap_or(u32::MAX);
                match palaver_prompts::participant_count(self.language(), n) {
                    Ok(files) => {
                        let sounds: Vec<Sound> = files.into_iter().map(Sound::File).collect();
                        self.play(io, now, who, &sounds);
                    }
                    Err(e) => tracing::warn!(room = %self.id, error = %e, "count not said"),
                }
            }
            KeyAction::ToggleMuteAll => {
                let mute = !self.session.as_ref().is_some_and(|s| s.all_muted);
                if let Some(s) = &mut self.session {
                    s.all_muted = mute;
                }
                let others: Vec<ParticipantId> =
                    self.members().filter(|c| !c.host).map(|c| c.id).collect();
                let told = if mute {
                    PromptId::Muted
                } else {
                    PromptId::Unmuted
                };
                for p in others {
                    if self.set_muted(io, now, p, mute, Origin::Host) {
                        self.play(io, now, p, &[told.into()]);
                    }
                }
                let confirm = if mute {
                    PromptId::AllMuted
                } else {
                    PromptId::AllUnmuted
                };
                self.play(io, now, who, &[confirm.into()]);
            }
        }
    }

    fn control(
        &mut self,
        io: &mut Io,
        now: Instant,
        command: ControlCommand,
    ) -> Result<(), ControlError> {
        let member = |r: &LiveRoom, p: ParticipantId| {
            if r.members().any(|c| c.id == p) {
                Ok(())
            } else {
                Err(ControlError::NoSuchParticipant(p))
            }
        };
        match command {
            ControlCommand::Mute { participant } | ControlCommand::Unmute { participant } => {
                member(self, participant)?;
                let mute = matches!(command, ControlCommand::Mute { .. });
                if self.set_muted(io, now, participant, mute, Origin::Control) {
                    let told = if mute {
                        PromptId::Muted
                    } else {
                        PromptId::Unmuted
                    };
                    self.play(io, now, participant, &[told.into()]);
                }
            }
            ControlCommand::Deaf { participant } => {
                member(self, participant)?;
                self.set_deaf(io, now, participant, true, Origin::Control);
            }
            ControlCommand::Undeaf { participant } => {
                member(self, participant)?;
                if self.set_deaf(io, now, participant, false, Origin::Control) {
                    self.play(io, now, participant, &[PromptId::Undeaf.into()]);
                }
            }
            ControlCommand::Kick { participant } => {
                member(self, participant)?;
                self.depart(io, now, participant, LeaveReason::Kicked);
                self.say_goodbye(io, now, participant);
            }
            ControlCommand::Lock => self.set_locked(io, now, true, Origin::Control),
            ControlCommand::Unlock => self.set_locked(io, now, false, Origin::Control),
            ControlCommand::StartRecording => {
                if !self.settings.recording_enabled {
                    return Err(ControlError::RecordingDisabled);
                }
                if self.session.as_ref().is_some_and(|s| s.recording.is_none()) {
                    self.start_recording(io, now, Origin::Control, true);
                }
            }
            ControlCommand::StopRecording => {
                if self.session.as_ref().is_some_and(|s| s.recording.is_some()) {
                    self.stop_recording(io, now, Origin::Control, true);
                }
            }
        }
        Ok(())
    }

    // ---- Recording -----------------------------------------------------------

    fn announce_to_members(&self, io: &mut Io, now: Instant, prompt: PromptId) {
        let ids: Vec<ParticipantId> = self.members().map(|c| c.id).collect();
        for p in ids {
            self.play(io, now, p, &[prompt.into()]);
        }
    }

    fn start_recording(&mut self, io: &mut Io, now: Instant, by: Origin, announce: bool) {
        if self.session.is_none() {
            return;
        }
        let id = io.next_recording;
        io.next_recording += 1;
        let started_at = io.ms(now);
        let path = io
            .config
            .recordings_dir
            .join(self.id.to_string())
            .join(format!("{}.wav", file_stamp(started_at)));
        if let Some(s) = &mut self.session {
            s.recording = Some(ActiveRecording {
                id,
                path: path.clone(),
                started_at,
            });
        }
        tracing::info!(room = %self.id, recording = id, path = %path.display(), "recording started");
        self.media(io, RoomCommand::StartRecording { recording: id });
        self.push(
            io,
            ConferenceAction::RecordingStarted {
                room: self.id,
                room_name: self.settings.name.clone(),
                recording: id,
                path,
                started_at,
            },
        );
        self.emit(
            io,
            now,
            RoomEventKind::RecordingStarted { recording: id, by },
        );
        if announce {
            self.announce_to_members(io, now, PromptId::RecordingStarted);
        }
    }

    fn stop_recording(&mut self, io: &mut Io, now: Instant, by: Origin, announce: bool) {
        let ended_at = io.ms(now);
        let Some(s) = &mut self.session else {
            return;
        };
        let Some(rec) = s.recording.take() else {
            return;
        };
        let participants: Vec<ParticipantRecord> = s
            .records
            .iter()
            .filter(|r| r.joined_at <= ended_at && r.left_at.is_none_or(|l| l >= rec.started_at))
            .cloned()
            .collect();
        s.recordings.push(ReportRecording {
            recording: rec.id,
            path: rec.path.clone(),
            started_at: rec.started_at,
            ended_at,
            link: None,
        });
        tracing::info!(room = %self.id, recording = rec.id, "recording stopped");
        self.media(io, RoomCommand::StopRecording);
        self.push(
            io,
            ConferenceAction::RecordingStopped {
                room: self.id,
                recording: rec.id,
                path: rec.path,
                started_at: rec.started_at,
                ended_at,
                participants,
            },
        );
        self.emit(
            io,
            now,
            RoomEventKind::RecordingStopped {
                recording: rec.id,
                by,
            },
        );
        if announce {
            self.announce_to_members(io, now, PromptId::RecordingStopped);
        }
    }

    // ---- Departure -------------------------------------------------------------

    /// A member leaves the room (the call may go on a moment for the
    /// goodbye). Ends the conference with the last member.
    fn depart(&mut self, io: &mut Io, now: Instant, who: ParticipantId, reason: LeaveReason) {
        let at = io.ms(now);
        let Some(c) = self.callers.get_mut(&who) else {
            return;
        };
        c.digit_deadline = None;
        c.keys.clear();
        let Some(m) = c.member.take() else {
            return;
        };
        let was_host = c.host;
        let was_mixed = c.phase == Phase::InRoom && !m.waiting;
        let was_waiting = c.phase == Phase::InRoom && m.waiting;
        if c.phase != Phase::Leaving {
            c.phase = Phase::Leaving;
        }
        if let Some(s) = &mut self.session
            && let Some(r) = s
                .records
                .iter_mut()
                .rev()
                .find(|r| r.participant == who && r.left_at.is_none())
        {
            r.left_at = Some(at);
        }
        tracing::info!(room = %self.id, participant = %who, ?reason, "participant left");
        self.emit(
            io,
            now,
            RoomEventKind::Left {
                participant: who,
                reason,
            },
        );
        if was_mixed {
            self.media(
                io,
                RoomCommand::SetInMix {
                    id: who,
                    in_mix: false,
                },
            );
            self.join_leave_tone(io, Tone::leave_beep());
        }
        if was_waiting {
            self.media(
                io,
                RoomCommand::MusicOnHold {
                    id: who,
                    music: None,
                },
            );
        }
        if was_host && self.settings.wait_for_host && !self.host_present() {
            self.back_to_waiting(io, now);
        }
        if self.member_count() == 0 {
            self.end_session(io, now);
        }
    }

    fn say_goodbye(&mut self, io: &mut Io, now: Instant, who: ParticipantId) {
        if let Some(c) = self.callers.get_mut(&who) {
            c.cue = None;
        }
        // Confirmations still queued would delay the goodbye.
        self.media(io, RoomCommand::StopPlayback { id: Some(who) });
        self.start_cue(io, now, who, &[PromptId::Goodbye.into()]);
    }

    fn end_session(&mut self, io: &mut Io, now: Instant) {
        if self.session.is_none() {
            return;
        }
        self.stop_recording(io, now, Origin::Automatic, false);
        let ended_at = io.ms(now);
        let Some(s) = self.session.take() else {
            return;
        };
        self.emit(
            io,
            now,
            RoomEventKind::RoomEnded {
                duration_ms: ended_at - s.started_at,
                peak_participants: s.peak,
            },
        );
        let report = ConferenceReport {
            room: self.id,
            room_name: self.settings.name.clone(),
            to: self.settings.report_email.clone(),
            started_at: s.started_at,
            ended_at,
            peak_participants: s.peak,
            participants: s.records,
            recordings: s.recordings,
        };
        self.push(io, ConferenceAction::Report(report));
    }

    fn remove_caller(&mut self, io: &mut Io, who: ParticipantId) {
        if self.callers.remove(&who).is_none() {
            return;
        }
        self.media(io, RoomCommand::RemoveParticipant { id: who });
        if self.callers.is_empty() {
            self.push(io, ConferenceAction::RoomClosed { room: self.id });
        }
    }
}

#[cfg(test)]
#[path = "conference_tests.rs"]
mod tests;
