//! A web server with a scripted conference, for the browser tests and
//! screenshots of the follow/control pages before the conference layer is
//! wired into the binary. Not a fake in the product: it lives here, as an
//! example, and only drives the `LiveRooms` trait.
//!
//! `cargo run -p palaver-web --example live_demo -- DATA_DIR READY_FILE`
//! serves on 127.0.0.1 (port chosen by the OS) and writes
//! `{"http": addr, "follow_url": …, "control_url": …, "token": api token}`
//! to READY_FILE. Three callers are in room "Weekly sync"; one of them talks
//! in turn every 700 ms; control commands change the scripted state and come
//! back as events, as the real room would send them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use palaver_store::{RoomId, RoomSettings, Store};
use palaver_web::{
    ControlCommand, LiveError, LiveRooms, ParticipantId, ParticipantView, RoomEvent, RoomSnapshot,
    SequencedEvent, Subscription, SubscriptionStart, WebConfig, WebState,
};
use tokio::sync::broadcast;

struct Scripted {
    state: Mutex<(RoomSnapshot, Vec<SequencedEvent>)>,
    events: broadcast::Sender<SequencedEvent>,
}

impl Scripted {
    fn emit(&self, event: RoomEvent) {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (snapshot, history) = &mut *guard;
        match &event {
            RoomEvent::Joined { participant } => snapshot.participants.push(participant.clone()),
            RoomEvent::Left { participant } => {
                snapshot.participants.retain(|p| p.id != *participant)
            }
            RoomEvent::Talking { participant } => {
                with(snapshot, *participant, |p| p.talking = true)
            }
            RoomEvent::StoppedTalking { participant } => {
                with(snapshot, *participant, |p| p.talking = false)
            }
            RoomEvent::Muted { participant } => with(snapshot, *participant, |p| p.muted = true),
            RoomEvent::Unmuted { participant } => with(snapshot, *participant, |p| p.muted = false),
            RoomEvent::Deaf { participant } => with(snapshot, *participant, |p| p.deaf = true),
            RoomEvent::Undeaf { participant } => with(snapshot, *participant, |p| p.deaf = false),
            RoomEvent::Waiting { participant } => {
                with(snapshot, *participant, |p| p.waiting = true)
            }
            RoomEvent::Admitted { participant } => {
                with(snapshot, *participant, |p| p.waiting = false)
            }
            RoomEvent::Locked => snapshot.locked = true,
            RoomEvent::Unlocked => snapshot.locked = false,
            RoomEvent::RecordingStarted => snapshot.recording = true,
            RoomEvent::RecordingStopped => snapshot.recording = false,
            RoomEvent::Started => snapshot.active = true,
            RoomEvent::Ended => snapshot.active = false,
        }
        snapshot.seq += 1;
        let e = SequencedEvent {
            seq: snapshot.seq,
            event,
        };
        history.push(e.clone());
        let _ = self.events.send(e);
    }
}

/// Applies `f` to participant `id`, if present.
fn with(s: &mut RoomSnapshot, id: ParticipantId, f: impl FnOnce(&mut ParticipantView)) {
    if let Some(p) = s.participants.iter_mut().find(|p| p.id == id) {
        f(p);
    }
}

impl LiveRooms for Scripted {
    fn subscribe(&self, _room: RoomId, after: Option<u64>) -> Result<Subscription, LiveError> {
        let guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let events = self.events.subscribe();
        let start = match after {
            Some(n) if n <= guard.0.seq => {
                SubscriptionStart::Resume(guard.1.iter().filter(|e| e.seq > n).cloned().collect())
            }
            _ => SubscriptionStart::Snapshot(guard.0.clone()),
        };
        Ok(Subscription { start, events })
    }

    fn control(&self, _room: RoomId, command: ControlCommand) -> Result<(), LiveError> {
        let event = match command {
            ControlCommand::Mute { participant } => RoomEvent::Muted { participant },
            ControlCommand::Unmute { participant } => RoomEvent::Unmuted { participant },
            ControlCommand::Deafen { participant } => RoomEvent::Deaf { participant },
            ControlCommand::Undeafen { participant } => RoomEvent::Undeaf { participant },
            ControlCommand::Kick { participant } => RoomEvent::Left { participant },
            ControlCommand::Lock => RoomEvent::Locked,
            ControlCommand::Unlock => RoomEvent::Unlocked,
            ControlCommand::StartRecording => RoomEvent::RecordingStarted,
            ControlCommand::StopRecording => RoomEvent::RecordingStopped,
        };
        self.emit(event);
        Ok(())
    }
}

fn caller(id: u64, number: &str, name: &str, host: bool, joined_at: i64) -> ParticipantView {
    ParticipantView {
        id: ParticipantId(id),
        number: Some(number.into()),
        name: Some(name.into()),
        host,
        joined_at,
        talking: false,
        muted: false,
        deaf: false,
        waiting: false,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(data_dir), Some(ready)) = (args.next(), args.next()) else {
        return Err("usage: live_demo DATA_DIR READY_FILE".into());
    };
    let data_dir = std::path::PathBuf::from(data_dir);
    let store = Store::open(None, &data_dir).await?;
    let mut settings = RoomSettings::new("Weekly sync");
    settings.extension = Some("800".into());
    settings.host_pin = Some("4321".into());
    settings.recording_enabled = true;
    let room = store.create_room(&settings).await?;
    let token = "demo-api-token-for-browser-tests";
    store
        .create_api_token("demo", &palaver_web::sha256_hex(token))
        .await?;

    let now = palaver_store::now_ms();
    let scripted = Arc::new(Scripted {
        state: Mutex::new((RoomSnapshot::default(), Vec::new())),
        events: broadcast::channel(256).0,
    });
    scripted.emit(RoomEvent::Started);
    for p in [
        caller(1, "1001", "Alice Martin", true, now - 14 * 60_000),
        caller(2, "+33612345678", "Bruno Keller", false, now - 9 * 60_000),
        caller(3, "1003", "Chiara Rossi", false, now - 2 * 60_000),
    ] {
        scripted.emit(RoomEvent::Joined { participant: p });
    }
    scripted.emit(RoomEvent::Muted {
        participant: ParticipantId(3),
    });

    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let state = WebState::new(store.clone(), metrics, WebConfig::new(&data_dir))
        .with_live_rooms(scripted.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;

    // URLs through the API, as a script would.
    let app = palaver_web::router(state);
    let urls = {
        use tower::ServiceExt;
        let response = app
            .clone()
            .oneshot(
                axum::http::Request::post(format!("/api/v1/rooms/{}/urls", room.id))
                    .header("authorization", format!("Bearer {token}"))
                    .header("host", addr.to_string())
                    .body(axum::body::Body::empty())?,
            )
            .await?;
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await?
            .to_bytes();
        serde_json::from_slice::<serde_json::Value>(&bytes)?
    };

    let talker = scripted.clone();
    tokio::spawn(async move {
        let mut turn = 0u64;
        loop {
            tokio::time::sleep(Duration::from_millis(700)).await;
            let who = ParticipantId(turn % 2 + 1);
            talker.emit(RoomEvent::Talking { participant: who });
            tokio::time::sleep(Duration::from_millis(700)).await;
            talker.emit(RoomEvent::StoppedTalking { participant: who });
            turn += 1;
        }
    });

    let info = serde_json::json!({
        "http": addr, "follow_url": urls["follow_url"], "control_url": urls["control_url"],
        "token": token, "room_id": room.id,
    });
    let tmp = format!("{ready}.tmp");
    std::fs::write(&tmp, info.to_string())?;
    std::fs::rename(&tmp, &ready)?;
    axum::serve(listener, app).await?;
    Ok(())
}
