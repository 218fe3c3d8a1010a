//! What the web layer needs from running conferences (SPEC C16, W3): the
//! [`LiveRooms`] trait, which the binary implements on top of the conference
//! layer, and the JSON-shaped types that cross it: [`RoomSnapshot`],
//! [`SequencedEvent`] (a [`RoomEvent`] with its sequence number) and
//! [`ControlCommand`].
//!
//! The types mirror the conference layer's (`RoomEvent`, `RoomSnapshot`,
//! `ControlCommand`); they are our own so that the web pages and their
//! WebSocket protocol are fixed here and tested without a media engine. The
//! wire names follow DESIGN.md: `participant.joined`, `room.locked`, …
//!
//! Also here: [`NoLiveRooms`], the stand-in used until a real implementation
//! is wired (every room looks idle, commands are refused), and
//! `Revocations`, which closes WebSockets opened on a follow or control URL
//! as soon as that URL is regenerated or deleted.
//!
//! Not here: the pages and the socket loop (`crate::follow`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use palaver_store::{RoomId, RoomToken};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

/// A participant of a live room, as the conference layer numbers them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct ParticipantId(pub u64);

impl std::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One participant as the follow page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ParticipantView {
    /// Stable for the participant's stay in the room.
    pub id: ParticipantId,
    /// Caller number, `None` when withheld.
    pub number: Option<String>,
    /// Caller display name, if the phone sent one.
    pub name: Option<String>,
    /// Joined with the host PIN.
    pub host: bool,
    /// When they joined, Unix ms.
    pub joined_at: i64,
    /// Talking right now.
    pub talking: bool,
    /// Their microphone is off (`CAN_SPEAK` cleared).
    pub muted: bool,
    /// They hear nothing (`CAN_HEAR` cleared).
    pub deaf: bool,
    /// In the room but waiting for a host, hearing music (SPEC C5): not
    /// mixed yet.
    #[serde(default)]
    pub waiting: bool,
}

/// The whole state of a live room at one point of its event sequence.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoomSnapshot {
    /// Sequence number of the last event this snapshot includes; the next
    /// event to apply on top of it is `seq + 1`.
    pub seq: u64,
    /// Whether a conference is running (someone is in the room).
    pub active: bool,
    /// New callers are refused.
    pub locked: bool,
    /// The room is being recorded.
    pub recording: bool,
    /// Who is in, in join order.
    pub participants: Vec<ParticipantView>,
}

/// Something that happened in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type")]
pub enum RoomEvent {
    /// The first participant arrived.
    #[serde(rename = "room.started")]
    Started,
    /// The last participant left.
    #[serde(rename = "room.ended")]
    Ended,
    /// Someone joined.
    #[serde(rename = "participant.joined")]
    Joined {
        /// Who, as they will appear.
        participant: ParticipantView,
    },
    /// Someone left (hung up, `##`, or kicked).
    #[serde(rename = "participant.left")]
    Left {
        /// Who.
        participant: ParticipantId,
    },
    /// Someone started talking.
    #[serde(rename = "participant.talking")]
    Talking {
        /// Who.
        participant: ParticipantId,
    },
    /// Someone stopped talking.
    #[serde(rename = "participant.stopped_talking")]
    StoppedTalking {
        /// Who.
        participant: ParticipantId,
    },
    /// Someone's microphone was turned off.
    #[serde(rename = "participant.muted")]
    Muted {
        /// Who.
        participant: ParticipantId,
    },
    /// Someone's microphone was turned back on.
    #[serde(rename = "participant.unmuted")]
    Unmuted {
        /// Who.
        participant: ParticipantId,
    },
    /// Someone stopped hearing the room.
    #[serde(rename = "participant.deaf")]
    Deaf {
        /// Who.
        participant: ParticipantId,
    },
    /// Someone hears the room again.
    #[serde(rename = "participant.undeaf")]
    Undeaf {
        /// Who.
        participant: ParticipantId,
    },
    /// Someone was taken out of the mix to wait for a host (SPEC C5).
    #[serde(rename = "participant.waiting")]
    Waiting {
        /// Who.
        participant: ParticipantId,
    },
    /// Someone stopped waiting and entered the mix.
    #[serde(rename = "participant.admitted")]
    Admitted {
        /// Who.
        participant: ParticipantId,
    },
    /// The room refuses new callers.
    #[serde(rename = "room.locked")]
    Locked,
    /// The room accepts callers again.
    #[serde(rename = "room.unlocked")]
    Unlocked,
    /// Recording started.
    #[serde(rename = "room.recording_started")]
    RecordingStarted,
    /// Recording stopped.
    #[serde(rename = "room.recording_stopped")]
    RecordingStopped,
}

/// A room event with its place in the room's sequence (1, 2, 3…, no gaps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SequencedEvent {
    /// Position in the room's event sequence.
    pub seq: u64,
    /// What happened.
    pub event: RoomEvent,
}

/// What the control page (or the API) asks a live room to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ControlCommand {
    /// Turn a participant's microphone off.
    Mute {
        /// Who.
        participant: ParticipantId,
    },
    /// Turn it back on.
    Unmute {
        /// Who.
        participant: ParticipantId,
    },
    /// Stop a participant hearing the room (and mute them).
    Deafen {
        /// Who.
        participant: ParticipantId,
    },
    /// Let them hear again.
    Undeafen {
        /// Who.
        participant: ParticipantId,
    },
    /// Hang up on a participant.
    Kick {
        /// Who.
        participant: ParticipantId,
    },
    /// Refuse new callers.
    Lock,
    /// Accept callers again.
    Unlock,
    /// Start recording (the room must allow recording).
    StartRecording,
    /// Stop recording.
    StopRecording,
}

/// How a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionStart {
    /// The full state; apply events with `seq` above `snapshot.seq`.
    Snapshot(RoomSnapshot),
    /// The events after the `after` the caller asked for, in order; the
    /// caller's own state plus these is current.
    Resume(Vec<SequencedEvent>),
}

/// A live view of one room: where to start, then every later event.
#[derive(Debug)]
pub struct Subscription {
    /// A snapshot, or the events missed since the caller's last one.
    pub start: SubscriptionStart,
    /// Events after the start, in sequence order. A `Lagged` error means the
    /// reader fell behind: subscribe again for a fresh snapshot.
    pub events: broadcast::Receiver<SequencedEvent>,
}

/// Why a live-room request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveError {
    /// No such participant in that room (left already, or never there).
    #[error("participant {0} is not in the room")]
    NoSuchParticipant(ParticipantId),
    /// The room refused, e.g. "recording is not enabled in this room".
    #[error("{0}")]
    Refused(String),
    /// The room's command queue is full; try again.
    #[error("the room is busy; try again")]
    Busy,
    /// Live rooms are not available in this server.
    #[error("live rooms are not available")]
    Unavailable,
}

/// The conference layer as the web layer sees it. Implemented by the binary;
/// both calls are quick and non-blocking (a room lives on a media worker and
/// is reached over a bounded channel).
pub trait LiveRooms: Send + Sync + 'static {
    /// Starts watching `room`. With `after = Some(n)` the implementation may
    /// answer [`SubscriptionStart::Resume`] with the events after `n` if it
    /// still has them, else a snapshot. A room nobody is in gives an inactive,
    /// empty snapshot; its events arrive once someone joins.
    fn subscribe(&self, room: RoomId, after: Option<u64>) -> Result<Subscription, LiveError>;

    /// Asks `room` to carry out `command`.
    fn control(&self, room: RoomId, command: ControlCommand) -> Result<(), LiveError>;
}

/// The stand-in until the conference layer is wired: every room is idle and
/// commands are refused with [`LiveError::Unavailable`].
#[derive(Debug)]
pub struct NoLiveRooms {
    // Kept so subscribers' receivers stay open (and simply never yield).
    idle: broadcast::Sender<SequencedEvent>,
}

impl Default for NoLiveRooms {
    fn default() -> Self {
        NoLiveRooms {
            idle: broadcast::channel(1).0,
        }
    }
}

impl LiveRooms for NoLiveRooms {
    fn subscribe(&self, _room: RoomId, _after: Option<u64>) -> Result<Subscription, LiveError> {
        Ok(Subscription {
            start: SubscriptionStart::Snapshot(RoomSnapshot::default()),
            events: self.idle.subscribe(),
        })
    }

    fn control(&self, _room: RoomId, _command: ControlCommand) -> Result<(), LiveError> {
        Err(LiveError::Unavailable)
    }
}

/// Closes sockets opened on a follow/control URL when it is regenerated or
/// deleted. Each (room, kind) has a generation counter; a socket takes a
/// receiver *before* it checks its token in the store, so a change that lands
/// after the check always bumps a counter the socket is already watching.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    counters: Mutex<HashMap<(RoomId, u8), watch::Sender<u64>>>,
}

impl Revocations {
    /// A receiver that changes when the URL of `kind` for `room` changes.
    pub(crate) fn watch(&self, room: RoomId, kind: RoomToken) -> watch::Receiver<u64> {
        let mut counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counters
            .entry((room, kind_key(kind)))
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Ends every socket watching `room`'s URL of `kind`.
    pub(crate) fn revoke(&self, room: RoomId, kind: RoomToken) {
        let counters = self
            .counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = counters.get(&(room, kind_key(kind))) {
            sender.send_modify(|generation| *generation += 1);
        }
    }
}

/// `RoomToken` is not `Hash`; this is its map key.
fn kind_key(kind: RoomToken) -> u8 {
    match kind {
        RoomToken::Follow => 0,
        RoomToken::Control => 1,
    }
}

/// A shared handle to a [`LiveRooms`] implementation.
pub type SharedLiveRooms = Arc<dyn LiveRooms>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_use_the_wire_names() {
        let e = SequencedEvent {
            seq: 7,
            event: RoomEvent::Talking {
                participant: ParticipantId(3),
            },
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"seq":7,"event":{"type":"participant.talking","participant":3}}"#
        );
        let c: ControlCommand =
            serde_json::from_str(r#"{"action":"mute","participant":4}"#).unwrap();
        assert_eq!(
            c,
            ControlCommand::Mute {
                participant: ParticipantId(4)
            }
        );
        let c: ControlCommand = serde_json::from_str(r#"{"action":"start_recording"}"#).unwrap();
        assert_eq!(c, ControlCommand::StartRecording);
    }

    /// Waiting for a host (SPEC C5) has its own events, and a participant
    /// from a sender that does not know the flag is not waiting.
    #[test]
    fn waiting_for_a_host_is_shown() {
        let e: RoomEvent =
            serde_json::from_str(r#"{"type":"participant.waiting","participant":2}"#).unwrap();
        assert_eq!(
            e,
            RoomEvent::Waiting {
                participant: ParticipantId(2)
            }
        );
        let e: RoomEvent =
            serde_json::from_str(r#"{"type":"participant.admitted","participant":2}"#).unwrap();
        assert_eq!(
            e,
            RoomEvent::Admitted {
                participant: ParticipantId(2)
            }
        );
        let p: ParticipantView = serde_json::from_str(
            r#"{"id":2,"number":null,"name":null,"host":false,"joined_at":0,
                "talking":false,"muted":false,"deaf":false}"#,
        )
        .unwrap();
        assert!(!p.waiting);
    }

    #[test]
    fn revoking_wakes_watchers_of_that_url_only() {
        let r = Revocations::default();
        let mut follow = r.watch(RoomId(1), RoomToken::Follow);
        let mut control = r.watch(RoomId(1), RoomToken::Control);
        let mut other = r.watch(RoomId(2), RoomToken::Follow);
        r.revoke(RoomId(1), RoomToken::Follow);
        assert!(follow.has_changed().unwrap());
        assert!(!control.has_changed().unwrap());
        assert!(!other.has_changed().unwrap());
        follow.mark_unchanged();
        control.mark_unchanged();
        other.mark_unchanged();
    }
}
