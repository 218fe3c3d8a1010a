//! The web layer's [`palaver_web::LiveRooms`] on top of the running PBX:
//! subscriptions come from the PBX's live hub, control commands go to the
//! conference logic in the PBX's task.
//!
//! The web crate keeps its own copy of the event, snapshot and command
//! shapes (so its pages and WebSocket protocol are tested without a media
//! engine); both sides use the same JSON, so this adapter translates through
//! `serde_json` values and adds only what differs (the snapshot's
//! `recording` is a flag on the web side).

use palaver_conference::{ControlCommand, ControlError, RoomEvent, RoomSnapshot};
use palaver_pbx::LiveStart;
use palaver_pbx::runtime::{ControlFailure, PbxHandle};
use palaver_store::RoomId;
use palaver_web::{LiveError, LiveRooms, Subscription, SubscriptionStart};
use tokio::sync::broadcast;

/// Live rooms served by the PBX.
pub struct PbxLiveRooms {
    pub pbx: PbxHandle,
    pub runtime: tokio::runtime::Handle,
}

fn web_event(e: &RoomEvent) -> Option<palaver_web::SequencedEvent> {
    let value = serde_json::to_value(e).ok()?;
    let event: palaver_web::RoomEvent = serde_json::from_value(value).ok()?;
    Some(palaver_web::SequencedEvent { seq: e.seq, event })
}

fn web_snapshot(s: &RoomSnapshot) -> palaver_web::RoomSnapshot {
    let mut value = serde_json::to_value(s).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        let recording = obj.get("recording").is_some_and(|r| !r.is_null());
        obj.insert("recording".into(), serde_json::Value::Bool(recording));
    }
    serde_json::from_value(value).unwrap_or_default()
}

impl LiveRooms for PbxLiveRooms {
    fn subscribe(&self, room: RoomId, after: Option<u64>) -> Result<Subscription, LiveError> {
        let (start, mut rx) = self.pbx.live().subscribe(room, after);
        let start = match start {
            LiveStart::Snapshot(s) => SubscriptionStart::Snapshot(web_snapshot(&s)),
            LiveStart::Resume(events) => {
                SubscriptionStart::Resume(events.iter().filter_map(web_event).collect())
            }
        };
        // Translate this subscriber's stream; the task ends when the page
        // goes away (send fails) or the room's channel closes.
        let (tx, events) = broadcast::channel(1024);
        self.runtime.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if let Some(w) = web_event(&e)
                            && tx.send(w).is_err()
                        {
                            break;
                        }
                    }
                    // A lagging reader resubscribes on the web side when its
                    // own receiver lags; dropping ours makes that happen.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Ok(Subscription { start, events })
    }

    fn control(&self, room: RoomId, command: palaver_web::ControlCommand) -> Result<(), LiveError> {
        let value = serde_json::to_value(command).map_err(|_| LiveError::Unavailable)?;
        let command: ControlCommand =
            serde_json::from_value(value).map_err(|_| LiveError::Unavailable)?;
        let pbx = self.pbx.clone();
        // The trait is synchronous; the answer comes from the PBX task in
        // well under a millisecond, so wait for it on this worker thread.
        let outcome =
            tokio::task::block_in_place(|| self.runtime.block_on(pbx.control(room, command)));
        match outcome {
            Ok(()) => Ok(()),
            Err(ControlFailure::Busy) => Err(LiveError::Busy),
            Err(ControlFailure::Stopped) => Err(LiveError::Unavailable),
            Err(ControlFailure::Refused(e)) => Err(match e {
                ControlError::NoSuchParticipant(p) => {
                    LiveError::NoSuchParticipant(palaver_web::ParticipantId(u64::from(p.0)))
                }
                ControlError::NoConference(_) => {
                    LiveError::Refused("nobody is in this room".into())
                }
                ControlError::RecordingDisabled => {
                    LiveError::Refused("recording is not enabled in this room".into())
                }
            }),
        }
    }
}
