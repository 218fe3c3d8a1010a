//! What the web layer sees of a room and what it may ask of it: the
//! sequence-numbered [`RoomEvent`]s, the [`RoomSnapshot`] that a page loads
//! first, and the [`ControlCommand`]s of the control page (SPEC C16) with
//! their [`ControlError`]s.
//!
//! Contract for a live page: load `Conference::snapshot(room)`, remember its
//! `seq`, then apply every event of that room whose `seq` is greater. Per
//! room, `seq` grows by exactly one per event for the life of the process
//! (it does not restart when a conference ends), so a gap means a missed
//! event and the page should reload the snapshot.
//!
//! JSON shape (stable; STYLE §6 names): an event is
//! `{"room":3,"seq":17,"at":1700000000000,"type":"participant.muted","participant":5,"by":"own"}`;
//! times are Unix milliseconds, participant ids are numbers. Nothing here
//! holds state or does I/O.

use serde::{Deserialize, Serialize};

use palaver_media::room::ParticipantId;
use palaver_store::RoomId;

/// Serde for [`ParticipantId`], which the media crate keeps free of serde:
/// a participant is its number in JSON.
pub(crate) mod participant_id {
    use palaver_media::room::ParticipantId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(id: &ParticipantId, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(id.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ParticipantId, D::Error> {
        u32::deserialize(d).map(ParticipantId)
    }
}

/// Who caused a change, so a page can say "muted by the host".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The participant's own keys (`00`, `**`, `##`) or hang-up.
    Own,
    /// A host's in-call keys.
    Host,
    /// The web control page or the API.
    Control,
    /// The room itself: a setting (mute on entry, auto-start, wait for
    /// host), the last participant leaving, a media timeout.
    Automatic,
}

/// Why a participant left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// Hung up.
    HungUp,
    /// Pressed `##`.
    LeftByKey,
    /// Kicked from the control page.
    Kicked,
    /// No media from the caller for too long.
    MediaTimeout,
}

/// One participant as a page shows it (SPEC C16: who is in, talking,
/// muted/deaf, since when).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantView {
    /// Id within the room (the media participant id).
    #[serde(with = "participant_id")]
    pub id: ParticipantId,
    /// Caller number; `None` when withheld.
    pub number: Option<String>,
    /// Caller display name, when the call had one.
    pub name: Option<String>,
    /// Joined with the host PIN (SPEC C4).
    pub host: bool,
    /// Admitted at, Unix ms.
    pub joined_at: i64,
    /// Microphone off (not mixed).
    pub muted: bool,
    /// Hears nothing of the room.
    pub deaf: bool,
    /// Talking now.
    pub talking: bool,
    /// Waiting for a host, hearing music (SPEC C5): admitted but not mixed.
    pub waiting: bool,
}

/// What happened. Serialised flat into [`RoomEvent`] with a `type` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RoomEventKind {
    /// The first participant was admitted: a conference began.
    #[serde(rename = "room.started")]
    RoomStarted,
    /// The last participant left: the conference is over.
    #[serde(rename = "room.ended")]
    RoomEnded {
        /// Length of the conference.
        duration_ms: i64,
        /// Most participants present at once.
        peak_participants: u32,
    },
    /// New callers are refused.
    #[serde(rename = "room.locked")]
    Locked {
        /// Who locked it.
        by: Origin,
    },
    /// New callers are admitted again.
    #[serde(rename = "room.unlocked")]
    Unlocked {
        /// Who unlocked it.
        by: Origin,
    },
    /// The room mix is being recorded.
    #[serde(rename = "room.recording_started")]
    RecordingStarted {
        /// Recording id (as in `ConferenceAction::RecordingStarted`).
        recording: u64,
        /// Who started it.
        by: Origin,
    },
    /// Recording stopped.
    #[serde(rename = "room.recording_stopped")]
    RecordingStopped {
        /// Recording id.
        recording: u64,
        /// Who stopped it.
        by: Origin,
    },
    /// A caller passed the PIN and is now in the room (mixed, or waiting
    /// for a host).
    #[serde(rename = "participant.joined")]
    Joined {
        /// The participant as it is now.
        participant: ParticipantView,
    },
    /// A participant left the room.
    #[serde(rename = "participant.left")]
    Left {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
        /// Why.
        reason: LeaveReason,
    },
    /// Started talking.
    #[serde(rename = "participant.talking")]
    Talking {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
    },
    /// Stopped talking.
    #[serde(rename = "participant.stopped_talking")]
    StoppedTalking {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
    },
    /// Microphone turned off.
    #[serde(rename = "participant.muted")]
    Muted {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
        /// By whom.
        by: Origin,
    },
    /// Microphone turned on.
    #[serde(rename = "participant.unmuted")]
    Unmuted {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
        /// By whom.
        by: Origin,
    },
    /// No longer hears the room.
    #[serde(rename = "participant.deaf")]
    Deaf {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
        /// By whom.
        by: Origin,
    },
    /// Hears the room again.
    #[serde(rename = "participant.undeaf")]
    Undeaf {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
        /// By whom.
        by: Origin,
    },
    /// Taken out of the mix to wait for a host, with music (SPEC C5).
    #[serde(rename = "participant.waiting")]
    Waiting {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
    },
    /// Left the waiting music and entered the mix.
    #[serde(rename = "participant.admitted")]
    Admitted {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
    },
}

/// One event of one room, numbered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEvent {
    /// The room.
    pub room: RoomId,
    /// 1, 2, 3… per room, never repeated or reused within a process.
    pub seq: u64,
    /// When, Unix ms.
    pub at: i64,
    /// What.
    #[serde(flatten)]
    pub kind: RoomEventKind,
}

/// The whole live state of a room, consistent with every event up to `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    /// The room.
    pub room: RoomId,
    /// The `seq` of the last event this snapshot includes (0: none yet).
    pub seq: u64,
    /// A conference is in progress (someone is admitted).
    pub active: bool,
    /// When it began, Unix ms.
    pub started_at: Option<i64>,
    /// New callers are refused.
    pub locked: bool,
    /// The recording in progress, if any.
    pub recording: Option<u64>,
    /// A host is in the room.
    pub host_present: bool,
    /// Most participants present at once in this conference.
    pub peak_participants: u32,
    /// Admitted participants, in order of arrival. Callers still hearing
    /// the greeting or typing the PIN are not listed.
    pub participants: Vec<ParticipantView>,
}

impl RoomSnapshot {
    /// A room with nobody in it.
    pub fn idle(room: RoomId, seq: u64) -> Self {
        RoomSnapshot {
            room,
            seq,
            active: false,
            started_at: None,
            locked: false,
            recording: None,
            host_present: false,
            peak_participants: 0,
            participants: Vec::new(),
        }
    }
}

/// What the control page (SPEC C16) or the API asks of a live room.
///
/// JSON: `{"action":"mute","participant":5}`, `{"action":"lock"}`.
/// Setting a state that already holds (muting a muted participant, locking
/// a locked room) succeeds and changes nothing, so two pages racing each
/// other get no spurious errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ControlCommand {
    /// Turn a participant's microphone off.
    Mute {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
    },
    /// Turn it on again.
    Unmute {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
    },
    /// Stop a participant hearing the room.
    Deaf {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
    },
    /// Let it hear the room again.
    Undeaf {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
    },
    /// Say goodbye to a participant and hang up.
    Kick {
        /// Who.
        #[serde(with = "participant_id")]
        participant: ParticipantId,
    },
    /// Refuse new callers.
    Lock,
    /// Admit new callers again.
    Unlock,
    /// Start recording the room.
    StartRecording,
    /// Stop recording.
    StopRecording,
}

/// Why a [`ControlCommand`] was refused. The web layer maps
/// `NoConference`/`NoSuchParticipant` to 404 and `RecordingDisabled` to 409.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// Nobody is in the room, so there is nothing to control.
    #[error("room {0} has no conference in progress")]
    NoConference(RoomId),
    /// No admitted participant has this id (it left, or is still typing
    /// the PIN).
    #[error("no participant {0} in this room")]
    NoSuchParticipant(ParticipantId),
    /// The room's settings do not allow recording (SPEC C9).
    #[error("recording is disabled in this room")]
    RecordingDisabled,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_dotted_type_and_flat_fields() {
        let e = RoomEvent {
            room: RoomId(3),
            seq: 17,
            at: 1_700_000_000_000,
            kind: RoomEventKind::Muted {
                participant: ParticipantId(5),
                by: Origin::Own,
            },
        };
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"room":3,"seq":17,"at":1_700_000_000_000i64,
                "type":"participant.muted","participant":5,"by":"own"})
        );
        let back: RoomEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);
        let started = serde_json::to_value(RoomEventKind::RecordingStarted {
            recording: 2,
            by: Origin::Control,
        })
        .unwrap();
        assert_eq!(started["type"], "room.recording_started");
    }

    #[test]
    fn control_commands_parse_from_json() {
        let c: ControlCommand =
            serde_json::from_str(r#"{"action":"kick","participant":9}"#).unwrap();
        assert_eq!(
            c,
            ControlCommand::Kick {
                participant: ParticipantId(9)
            }
        );
        let c: ControlCommand = serde_json::from_str(r#"{"action":"start_recording"}"#).unwrap();
        assert_eq!(c, ControlCommand::StartRecording);
        assert!(serde_json::from_str::<ControlCommand>(r#"{"action":"explode"}"#).is_err());
        assert!(
            serde_json::from_str::<ControlCommand>(r#"{"action":"mute","participant":-1}"#)
                .is_err()
        );
    }
}
