//! The web layer's [`palaver_web::LiveRooms`] on top of the running PBX:
//! subscriptions come from the PBX's live hub, control commands go to the
//! conference logic in the PBX's task.
//!
//! The web crate keeps its own copy of the event, snapshot and command
//! shapes (so its pages and WebSocket protocol are tested without a media
//! engine). They are translated here field by field rather than through
//! JSON: the wire names differ in places (`deafen` on the page, `deaf` in the
//! conference layer; `recording` is a flag on the web side), and an
//! exhaustive `match` makes a new variant on either side a compile error
//! instead of an event silently dropped (which the pages see as a gap).

use palaver_conference::{
    ControlCommand, ControlError, ParticipantView, RoomEvent, RoomEventKind, RoomSnapshot,
};
use palaver_media::room::ParticipantId;
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

fn web_id(p: ParticipantId) -> palaver_web::ParticipantId {
    palaver_web::ParticipantId(u64::from(p.0))
}

fn web_participant(p: &ParticipantView) -> palaver_web::ParticipantView {
    palaver_web::ParticipantView {
        id: web_id(p.id),
        number: p.number.clone(),
        name: p.name.clone(),
        host: p.host,
        joined_at: p.joined_at,
        talking: p.talking,
        muted: p.muted,
        deaf: p.deaf,
        waiting: p.waiting,
    }
}

fn web_event(e: &RoomEvent) -> palaver_web::SequencedEvent {
    use palaver_web::RoomEvent as W;
    let event = match &e.kind {
        RoomEventKind::RoomStarted => W::Started,
        RoomEventKind::RoomEnded { .. } => W::Ended,
        RoomEventKind::Locked { .. } => W::Locked,
        RoomEventKind::Unlocked { .. } => W::Unlocked,
        RoomEventKind::RecordingStarted { .. } => W::RecordingStarted,
        RoomEventKind::RecordingStopped { .. } => W::RecordingStopped,
        RoomEventKind::Joined { participant } => W::Joined {
            participant: web_participant(participant),
        },
        RoomEventKind::Left { participant, .. } => W::Left {
            participant: web_id(*participant),
        },
        RoomEventKind::Talking { participant } => W::Talking {
            participant: web_id(*participant),
        },
        RoomEventKind::StoppedTalking { participant } => W::StoppedTalking {
            participant: web_id(*participant),
        },
        RoomEventKind::Muted { participant, .. } => W::Muted {
            participant: web_id(*participant),
        },
        RoomEventKind::Unmuted { participant, .. } => W::Unmuted {
            participant: web_id(*participant),
        },
        RoomEventKind::Deaf { participant, .. } => W::Deaf {
            participant: web_id(*participant),
        },
        RoomEventKind::Undeaf { participant, .. } => W::Undeaf {
            participant: web_id(*participant),
        },
        RoomEventKind::Waiting { participant } => W::Waiting {
            participant: web_id(*participant),
        },
        RoomEventKind::Admitted { participant } => W::Admitted {
            participant: web_id(*participant),
        },
    };
    palaver_web::SequencedEvent { seq: e.seq, event }
}

fn web_snapshot(s: &RoomSnapshot) -> palaver_web::RoomSnapshot {
    palaver_web::RoomSnapshot {
        seq: s.seq,
        active: s.active,
        locked: s.locked,
        recording: s.recording.is_some(),
        participants: s.participants.iter().map(web_participant).collect(),
    }
}

/// The conference layer's command for the page's. Web ids are wider than
/// the media layer's; one that does not fit names nobody in the room.
fn conference_command(c: palaver_web::ControlCommand) -> Result<ControlCommand, LiveError> {
    use palaver_web::ControlCommand as W;
    let who = |p: palaver_web::ParticipantId| {
        u32::try_from(p.0)
            .map(ParticipantId)
            .map_err(|_| LiveError::NoSuchParticipant(p))
    };
    Ok(match c {
        W::Mute { participant } => ControlCommand::Mute {
            participant: who(participant)?,
        },
        W::Unmute { participant } => ControlCommand::Unmute {
            participant: who(participant)?,
        },
        W::Deafen { participant } => ControlCommand::Deaf {
            participant: who(participant)?,
        },
        W::Undeafen { participant } => ControlCommand::Undeaf {
            participant: who(participant)?,
        },
        W::Kick { participant } => ControlCommand::Kick {
            participant: who(participant)?,
        },
        W::Lock => ControlCommand::Lock,
        W::Unlock => ControlCommand::Unlock,
        W::StartRecording => ControlCommand::StartRecording,
        W::StopRecording => ControlCommand::StopRecording,
    })
}

impl LiveRooms for PbxLiveRooms {
    fn subscribe(&self, room: RoomId, after: Option<u64>) -> Result<Subscription, LiveError> {
        let (start, mut rx) = self.pbx.live().subscribe(room, after);
        let start = match start {
            LiveStart::Snapshot(s) => SubscriptionStart::Snapshot(web_snapshot(&s)),
            LiveStart::Resume(events) => {
                SubscriptionStart::Resume(events.iter().map(web_event).collect())
            }
        };
        // Translate this subscriber's stream; the task ends when the page
        // goes away (send fails) or the room's channel closes.
        let (tx, events) = broadcast::channel(1024);
        self.runtime.spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if tx.send(web_event(&e)).is_err() {
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
        let command = conference_command(command)?;
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
                ControlError::NoSuchParticipant(p) => LiveError::NoSuchParticipant(web_id(p)),
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

#[cfg(test)]
mod tests {
    use super::*;
    use palaver_conference::{LeaveReason, Origin};

    fn alice() -> ParticipantView {
        ParticipantView {
            id: ParticipantId(7),
            number: Some("2001".into()),
            name: Some("Alice".into()),
            host: true,
            joined_at: 1_700_000_000_000,
            muted: false,
            deaf: true,
            talking: true,
            waiting: true,
        }
    }

    /// Every conference event reaches the pages with its number and the
    /// web layer's wire name (the same `type` as the conference layer's).
    #[test]
    fn every_event_kind_translates_with_its_wire_name() {
        let p = ParticipantId(7);
        let by = Origin::Control;
        let kinds = [
            RoomEventKind::RoomStarted,
            RoomEventKind::RoomEnded {
                duration_ms: 5,
                peak_participants: 2,
            },
            RoomEventKind::Locked { by },
            RoomEventKind::Unlocked { by },
            RoomEventKind::RecordingStarted { recording: 1, by },
            RoomEventKind::RecordingStopped { recording: 1, by },
            RoomEventKind::Joined {
                participant: alice(),
            },
            RoomEventKind::Left {
                participant: p,
                reason: LeaveReason::Kicked,
            },
            RoomEventKind::Talking { participant: p },
            RoomEventKind::StoppedTalking { participant: p },
            RoomEventKind::Muted { participant: p, by },
            RoomEventKind::Unmuted { participant: p, by },
            RoomEventKind::Deaf { participant: p, by },
            RoomEventKind::Undeaf { participant: p, by },
            RoomEventKind::Waiting { participant: p },
            RoomEventKind::Admitted { participant: p },
        ];
        for (seq, kind) in (1..).zip(kinds) {
            let e = RoomEvent {
                room: RoomId(3),
                seq,
                at: 0,
                kind,
            };
            let w = web_event(&e);
            assert_eq!(w.seq, seq);
            let ours = serde_json::to_value(&e).unwrap();
            let theirs = serde_json::to_value(&w.event).unwrap();
            assert_eq!(theirs["type"], ours["type"], "{e:?}");
            if let Some(who) = ours.get("participant") {
                let id = who.get("id").unwrap_or(who);
                let web = &theirs["participant"];
                assert_eq!(web.get("id").unwrap_or(web), id, "{e:?}");
            }
        }
    }

    #[test]
    fn snapshots_keep_every_participant_flag() {
        let mut s = RoomSnapshot::idle(RoomId(3), 41);
        s.active = true;
        s.locked = true;
        s.recording = Some(9);
        s.participants.push(alice());
        let w = web_snapshot(&s);
        assert_eq!(
            (w.seq, w.active, w.locked, w.recording),
            (41, true, true, true)
        );
        let a = &w.participants[0];
        assert_eq!(a.id, palaver_web::ParticipantId(7));
        assert_eq!(a.number.as_deref(), Some("2001"));
        assert!(a.host && a.deaf && a.talking && a.waiting && !a.muted);
        s.recording = None;
        assert!(!web_snapshot(&s).recording);
    }

    /// The control page's `deafen`/`undeafen` are the conference layer's
    /// `deaf`/`undeaf`; an id too wide for the media layer is nobody.
    #[test]
    fn page_commands_map_to_conference_commands() {
        use palaver_web::ControlCommand as W;
        let w = palaver_web::ParticipantId(5);
        let p = ParticipantId(5);
        let cases = [
            (
                W::Mute { participant: w },
                ControlCommand::Mute { participant: p },
            ),
            (
                W::Unmute { participant: w },
                ControlCommand::Unmute { participant: p },
            ),
            (
                W::Deafen { participant: w },
                ControlCommand::Deaf { participant: p },
            ),
            (
                W::Undeafen { participant: w },
                ControlCommand::Undeaf { participant: p },
            ),
            (
                W::Kick { participant: w },
                ControlCommand::Kick { participant: p },
            ),
            (W::Lock, ControlCommand::Lock),
            (W::Unlock, ControlCommand::Unlock),
            (W::StartRecording, ControlCommand::StartRecording),
            (W::StopRecording, ControlCommand::StopRecording),
        ];
        for (page, conference) in cases {
            assert_eq!(conference_command(page), Ok(conference));
        }
        let wide = palaver_web::ParticipantId(u64::from(u32::MAX) + 1);
        assert_eq!(
            conference_command(W::Deafen { participant: wide }),
            Err(LiveError::NoSuchParticipant(wide))
        );
    }
}
