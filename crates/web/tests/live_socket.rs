//! The follow/control WebSocket (SPEC C16, W3) over a real loopback socket:
//! snapshot then sequenced events, resume after a reconnect, and revocation
//! closing sockets already open on an old URL.

mod common;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use palaver_web::{ParticipantId, ParticipantView, RoomEvent, SequencedEvent};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve(a: &common::App) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = a.router.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn next_json(ws: &mut Socket) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("socket open")
            .expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

fn alice() -> ParticipantView {
    ParticipantView {
        id: ParticipantId(1),
        number: Some("1001".into()),
        name: Some("Alice".into()),
        host: true,
        joined_at: 1_700_000_000_000,
        talking: false,
        muted: false,
        deaf: false,
        waiting: false,
    }
}

async fn room_with_urls(a: &common::App) -> (i64, String, String) {
    let id = a
        .post("/api/v1/rooms", json!({"name": "Live"}))
        .await
        .json()["id"]
        .as_i64()
        .unwrap();
    let urls = a
        .post(&format!("/api/v1/rooms/{id}/urls"), json!({}))
        .await
        .json();
    let token = |k: &str| {
        urls[k]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    (id, token("follow_url"), token("control_url"))
}

#[tokio::test]
async fn w3_snapshot_then_sequenced_events_and_resume() {
    let a = common::app().await;
    let (_, follow, _) = room_with_urls(&a).await;
    {
        let mut s = a.live.snapshot.lock().unwrap();
        s.seq = 0;
        s.active = true;
        s.participants = vec![alice()];
    }
    let addr = serve(&a).await;
    let url = format!("ws://{addr}/follow/{follow}/ws");
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let first = next_json(&mut ws).await;
    assert_eq!(first["type"], "snapshot");
    assert_eq!(first["snapshot"]["participants"][0]["name"], "Alice");

    a.live.push(SequencedEvent {
        seq: 1,
        event: RoomEvent::Talking {
            participant: ParticipantId(1),
        },
    });
    let e = next_json(&mut ws).await;
    assert_eq!(
        e,
        json!({"type": "event", "seq": 1, "event": {"type": "participant.talking", "participant": 1}})
    );
    ws.close(None).await.unwrap();

    // Missed while away: resuming after 1 replays 2 and 3, no snapshot.
    for (seq, event) in [
        (
            2,
            RoomEvent::Muted {
                participant: ParticipantId(1),
            },
        ),
        (3, RoomEvent::Locked),
    ] {
        a.live.push(SequencedEvent { seq, event });
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("{url}?after=1"))
        .await
        .unwrap();
    let e2 = next_json(&mut ws).await;
    assert_eq!(e2["seq"], 2);
    assert_eq!(e2["event"]["type"], "participant.muted");
    let e3 = next_json(&mut ws).await;
    assert_eq!(e3["seq"], 3);
    assert_eq!(e3["event"]["type"], "room.locked");
    // A gap in the live stream turns into a fresh snapshot, never a wrong view.
    a.live.snapshot.lock().unwrap().seq = 9;
    a.live.push(SequencedEvent {
        seq: 9,
        event: RoomEvent::Unlocked,
    });
    let s = next_json(&mut ws).await;
    assert_eq!(s["type"], "snapshot");
    assert_eq!(s["snapshot"]["seq"], 9);
}

#[tokio::test]
async fn c16_regenerating_closes_sockets_open_on_the_old_url() {
    let a = common::app().await;
    let (id, follow, control) = room_with_urls(&a).await;
    let addr = serve(&a).await;
    let (mut f, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/follow/{follow}/ws"))
        .await
        .unwrap();
    let (mut c, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/control/{control}/ws"))
        .await
        .unwrap();
    assert_eq!(next_json(&mut f).await["type"], "snapshot");
    assert_eq!(next_json(&mut c).await["type"], "snapshot");

    a.post(&format!("/api/v1/rooms/{id}/urls"), json!({})).await;
    for ws in [&mut f, &mut c] {
        assert_eq!(next_json(ws).await, json!({"type": "revoked"}));
        let close = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match close {
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), palaver_web::CLOSE_REVOKED)
            }
            other => panic!("expected close, got {other:?}"),
        }
    }
    // And the old URL no longer opens a socket.
    let refused = tokio_tungstenite::connect_async(format!("ws://{addr}/follow/{follow}/ws")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 404),
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test]
async fn c16_deleting_closes_sockets_too() {
    let a = common::app().await;
    let (id, follow, _) = room_with_urls(&a).await;
    let addr = serve(&a).await;
    let (mut f, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/follow/{follow}/ws"))
        .await
        .unwrap();
    assert_eq!(next_json(&mut f).await["type"], "snapshot");
    a.delete(&format!("/api/v1/rooms/{id}/urls")).await;
    assert_eq!(next_json(&mut f).await["type"], "revoked");
    let _ = f.send(Message::Close(None)).await;
}
