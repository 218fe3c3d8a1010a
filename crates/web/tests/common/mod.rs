//! Shared set-up for the web tests: a fresh SQLite store in a temp dir, an
//! API token, a fake `LiveRooms`, and helpers to call the router with
//! `tower::ServiceExt::oneshot` (no port).

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use palaver_store::{RoomId, Store};
use palaver_web::{
    ControlCommand, LiveError, LiveRooms, RoomSnapshot, SequencedEvent, Subscription,
    SubscriptionStart, WebConfig, WebState, router, sha256_hex,
};
use serde_json::Value;
use tokio::sync::broadcast;
use tower::ServiceExt;

/// A scripted live room layer: a fixed snapshot, events pushed by the test,
/// commands recorded.
pub struct FakeRooms {
    pub snapshot: Mutex<RoomSnapshot>,
    pub events: broadcast::Sender<SequencedEvent>,
    pub history: Mutex<Vec<SequencedEvent>>,
    pub commands: Mutex<Vec<(RoomId, ControlCommand)>>,
}

impl Default for FakeRooms {
    fn default() -> Self {
        FakeRooms {
            snapshot: Mutex::new(RoomSnapshot::default()),
            events: broadcast::channel(64).0,
            history: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
        }
    }
}

impl FakeRooms {
    pub fn push(&self, event: SequencedEvent) {
        self.history.lock().unwrap().push(event.clone());
        let _ = self.events.send(event);
    }
}

impl LiveRooms for FakeRooms {
    fn subscribe(&self, _room: RoomId, after: Option<u64>) -> Result<Subscription, LiveError> {
        let events = self.events.subscribe();
        let start = match after {
            Some(n) => SubscriptionStart::Resume(
                self.history
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|e| e.seq > n)
                    .cloned()
                    .collect(),
            ),
            None => SubscriptionStart::Snapshot(self.snapshot.lock().unwrap().clone()),
        };
        Ok(Subscription { start, events })
    }

    fn control(&self, room: RoomId, command: ControlCommand) -> Result<(), LiveError> {
        if let ControlCommand::Kick { participant } = command
            && participant.0 == 404
        {
            return Err(LiveError::NoSuchParticipant(participant));
        }
        self.commands.lock().unwrap().push((room, command));
        Ok(())
    }
}

pub struct App {
    pub router: Router,
    pub state: WebState,
    pub store: Store,
    pub token: String,
    pub dir: tempfile::TempDir,
    pub live: Arc<FakeRooms>,
    pub directory_changes: Arc<AtomicUsize>,
}

pub async fn app() -> App {
    app_with(|_| {}).await
}

pub async fn app_with(configure: impl FnOnce(&mut WebConfig)) -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("palaver.db"))
        .await
        .unwrap();
    let token = "test-token-0123456789abcdef".to_owned();
    store
        .create_api_token("tests", &sha256_hex(&token))
        .await
        .unwrap();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .build_recorder()
        .handle();
    let mut config = WebConfig::new(dir.path());
    configure(&mut config);
    let live = Arc::new(FakeRooms::default());
    let changes = Arc::new(AtomicUsize::new(0));
    let counter = changes.clone();
    let state = WebState::new(store.clone(), metrics, config)
        .with_live_rooms(live.clone())
        .with_directory_hook(Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }));
    App {
        router: router(state.clone()),
        state,
        store,
        token,
        dir,
        live,
        directory_changes: changes,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

impl App {
    pub fn changes(&self) -> usize {
        self.directory_changes.load(Ordering::SeqCst)
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// An authenticated API call with an optional JSON body.
    pub async fn api(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut r = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        let body = match body {
            Some(v) => {
                r = r.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(r.body(body).unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.api(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.api(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.api(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.api(Method::DELETE, path, None).await
    }

    /// A raw-body API call (uploads).
    pub async fn put_bytes(&self, path: &str, bytes: Vec<u8>) -> Reply {
        self.send(
            Request::builder()
                .method(Method::PUT)
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(Body::from(bytes))
                .unwrap(),
        )
        .await
    }
}

/// A 440 Hz tone as an 8 kHz mono PCM WAV, `samples` samples long: what an
/// upload must be to pass the converter (silence is refused).
pub fn tone(samples: usize) -> Vec<u8> {
    let mut v = wav(samples);
    let data = v.len() - samples * 2;
    for i in 0..samples {
        let x = (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).sin();
        let s = (x * 8000.0) as i16;
        v[data + 2 * i..data + 2 * i + 2].copy_from_slice(&s.to_le_bytes());
    }
    v
}

/// A minimal valid PCM WAV file (8 kHz mono, `samples` samples of silence).
pub fn wav(samples: usize) -> Vec<u8> {
    let data = samples * 2;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&u32::try_from(36 + data).unwrap().to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&u32::try_from(data).unwrap().to_le_bytes());
    v.resize(v.len() + data, 0);
    v
}
