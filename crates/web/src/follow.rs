//! The secret follow and control pages of a room (SPEC C16, W3) and their
//! WebSocket.
//!
//! `GET /follow/<token>` and `GET /control/<token>` serve a page whose plain
//! script (`assets/live.js`) opens `…/ws`. The socket speaks JSON text
//! messages, server to client only:
//!
//! - `{"type":"snapshot","snapshot":{seq, active, locked, recording, participants}}`
//! - `{"type":"event","seq":N,"event":{"type":"participant.talking","participant":3}}`
//! - `{"type":"revoked"}`, then close code 4001, when the URL is regenerated or
//!   deleted.
//!
//! A client that reconnects with `?after=<last seq>` gets the missed events
//! (or a fresh snapshot if they are gone) without reloading the page. The
//! control page sends commands as `POST /control/<token>/commands` with a
//! [`crate::live::ControlCommand`] body. A token that is not current answers
//! 404 everywhere.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use maud::{DOCTYPE, Markup, html};
use palaver_store::{RoomId, RoomToken};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};

use crate::api::ApiJson;
use crate::error::{Error, Result};
use crate::live::{ControlCommand, SharedLiveRooms, Subscription, SubscriptionStart};
use crate::rooms::room_for_token;
use crate::state::WebState;

/// Close code sent when the URL a socket was opened on stops being valid.
pub const CLOSE_REVOKED: u16 = 4001;

/// The follow/control routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/follow/{token}", get(follow_page))
        .route("/control/{token}", get(control_page))
        .route("/follow/{token}/ws", get(follow_socket))
        .route("/control/{token}/ws", get(control_socket))
        .route("/control/{token}/commands", post(command))
}

async fn follow_page(State(s): State<WebState>, Path(token): Path<String>) -> Result<Response> {
    page(&s, RoomToken::Follow, &token).await
}

async fn control_page(State(s): State<WebState>, Path(token): Path<String>) -> Result<Response> {
    page(&s, RoomToken::Control, &token).await
}

async fn page(s: &WebState, kind: RoomToken, token: &str) -> Result<Response> {
    let room = match room_for_token(s, kind, token).await {
        Ok(room) => room,
        Err(Error::NotFound { .. }) => return Ok(gone_page()),
        Err(e) => return Err(e),
    };
    let control = kind == RoomToken::Control;
    let base = if control { "control" } else { "follow" };
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (room.settings.name) " · live" }
                link rel="stylesheet" href="/assets/panel.css";
            }
            body.live {
                main #live data-ws=(format!("/{base}/{token}/ws"))
                    data-commands=(if control { format!("/control/{token}/commands") } else { String::new() })
                    data-control=(control) {
                    header.live-head {
                        div {
                            h1 { (room.settings.name) }
                            p.muted {
                                @if control { "Control page" } @else { "Follow page" }
                                @if let Some(ext) = &room.settings.extension { " · extension " (ext) }
                            }
                        }
                        div.badges {
                            span #conn .badge.off { "connecting…" }
                            span #state-active .badge.off { "idle" }
                            span #state-locked .badge.off { "unlocked" }
                            span #state-recording .badge.off { "not recording" }
                        }
                    }
                    @if control {
                        div.toolbar {
                            button #lock type="button" data-on="lock" data-off="unlock" { "Lock room" }
                            button #record type="button" data-on="start_recording" data-off="stop_recording"
                                disabled[!room.settings.recording_enabled]
                                title=(if room.settings.recording_enabled { "" } else { "Recording is not enabled for this room" }) {
                                "Start recording"
                            }
                            span #command-error .error role="alert" {}
                        }
                    }
                    table.participants {
                        thead {
                            tr {
                                th { "" } th { "Number" } th { "Name" } th { "Role" } th { "Joined" } th { "Audio" }
                                @if control { th { "Actions" } }
                            }
                        }
                        tbody #participants {}
                    }
                    p #empty .muted { "Nobody is in the room." }
                    p #revoked .banner.error hidden { "This link is no longer valid. Ask the room's administrator for the new one." }
                }
                script src="/assets/live.js" {}
            }
        }
    };
    Ok(private(body).into_response())
}

/// The token is the only secret: never leak it in a Referer, never cache.
fn private(markup: Markup) -> Response {
    let mut r = markup.into_response();
    let h = r.headers_mut();
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn gone_page() -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Link not valid" } link rel="stylesheet" href="/assets/panel.css"; }
            body.live { main { h1 { "This link is not valid" } p { "It may have been replaced or deleted. Ask the room's administrator for the current one." } } }
        }
    };
    let mut r = private(body);
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// `?after=<seq>` on reconnect.
#[derive(Debug, Deserialize)]
struct Resume {
    after: Option<u64>,
}

async fn follow_socket(
    State(s): State<WebState>,
    Path(token): Path<String>,
    Query(q): Query<Resume>,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    open_socket(s, RoomToken::Follow, token, q.after, ws).await
}

async fn control_socket(
    State(s): State<WebState>,
    Path(token): Path<String>,
    Query(q): Query<Resume>,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    open_socket(s, RoomToken::Control, token, q.after, ws).await
}

async fn open_socket(
    s: WebState,
    kind: RoomToken,
    token: String,
    after: Option<u64>,
    ws: WebSocketUpgrade,
) -> Result<Response> {
    let room = room_for_token(&s, kind, &token).await?;
    let revoked = s.revocations.watch(room.id, kind);
    // Check again now that we watch: a regeneration between the first lookup
    // and `watch` would otherwise go unnoticed by this socket.
    let again = room_for_token(&s, kind, &token).await?;
    if again.id != room.id {
        return Err(Error::NotFound { what: "page" });
    }
    let subscription = s.live.subscribe(room.id, after)?;
    let live = s.live.clone();
    Ok(
        ws.on_upgrade(move |socket| {
            run_socket(socket, live, room.id, subscription, revoked, after)
        }),
    )
}

async fn send_json(socket: &mut WebSocket, value: &serde_json::Value) -> Result<(), ()> {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .map_err(|_| ())
}

/// Sends how a subscription starts; returns the last sequence number sent.
async fn send_start(
    socket: &mut WebSocket,
    start: SubscriptionStart,
    last_seq: u64,
) -> Result<u64, ()> {
    match start {
        SubscriptionStart::Snapshot(snapshot) => {
            let seq = snapshot.seq;
            send_json(
                socket,
                &serde_json::json!({"type": "snapshot", "snapshot": snapshot}),
            )
            .await?;
            Ok(seq)
        }
        SubscriptionStart::Resume(events) => {
            let mut last = last_seq;
            for e in events.into_iter().filter(|e| e.seq > last_seq) {
                last = e.seq;
                send_json(
                    socket,
                    &serde_json::json!({"type": "event", "seq": e.seq, "event": e.event}),
                )
                .await?;
            }
            Ok(last)
        }
    }
}

async fn run_socket(
    mut socket: WebSocket,
    live: SharedLiveRooms,
    room: RoomId,
    subscription: Subscription,
    mut revoked: watch::Receiver<u64>,
    after: Option<u64>,
) {
    let Subscription { start, mut events } = subscription;
    let Ok(mut last_seq) = send_start(&mut socket, start, after.unwrap_or(0)).await else {
        return;
    };
    loop {
        tokio::select! {
            _ = revoked.changed() => {
                let _ = send_json(&mut socket, &serde_json::json!({"type": "revoked"})).await;
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: CLOSE_REVOKED,
                        reason: "this URL was revoked".into(),
                    })))
                    .await;
                return;
            }
            event = events.recv() => match event {
                Ok(e) if e.seq <= last_seq => {}
                Ok(e) if e.seq == last_seq + 1 => {
                    last_seq = e.seq;
                    let msg = serde_json::json!({"type": "event", "seq": e.seq, "event": e.event});
                    if send_json(&mut socket, &msg).await.is_err() {
                        return;
                    }
                }
                // A gap or a lag: we missed events, so start over from a
                // fresh snapshot rather than show a wrong room.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    match live.subscribe(room, None) {
                        Ok(sub) => {
                            events = sub.events;
                            match send_start(&mut socket, sub.start, last_seq).await {
                                Ok(seq) => last_seq = seq,
                                Err(()) => return,
                            }
                        }
                        Err(_) => return,
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Pings are answered by the protocol layer; the page sends
                // nothing else.
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn command(
    State(s): State<WebState>,
    Path(token): Path<String>,
    ApiJson(command): ApiJson<ControlCommand>,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let room = room_for_token(&s, RoomToken::Control, &token).await?;
    s.live.control(room.id, command)?;
    Ok((StatusCode::ACCEPTED, Json(serde_json::json!({"ok": true}))))
}
