//! HTTP for Palaver: the REST API (`/api/v1`, with its OpenAPI document), the
//! control panel, the secret live follow/control pages with their WebSocket,
//! `/metrics` (Prometheus) and `/healthz`.
//!
//! Meet [`WebState`] first: what the handlers share (the [`palaver_store::Store`],
//! the metrics handle, a [`LiveRooms`] implementation and a hook called after
//! directory changes), built with [`WebState::new`] from a [`WebConfig`].
//! [`router`] turns it into the axum app the binary serves;
//! [`ensure_admin`] creates the first administrator at start. Every failure
//! is one [`Error`], mapped to HTTP in one place.
//!
//! Live rooms come through the [`LiveRooms`] trait so that this crate does
//! not depend on the conference layer: the binary implements it; until then
//! [`NoLiveRooms`] shows every room as idle.
//!
//! Not here: SIP, media, the database schema (see `palaver-store`).
//!
//! ```no_run
//! # async fn demo(store: palaver_store::Store, metrics: metrics_exporter_prometheus::PrometheusHandle)
//! # -> Result<(), palaver_web::Error> {
//! if let Some(password) = palaver_web::ensure_admin(&store, None).await? {
//!     println!("admin password: {password}");
//! }
//! let state = palaver_web::WebState::new(store, metrics, palaver_web::WebConfig::new("/var/lib/palaver"));
//! let app = palaver_web::router(state);
//! # let _ = app; Ok(()) }
//! ```

mod api;
mod auth;
mod error;
mod follow;
mod live;
mod observe;
mod panel;
mod recordings;
mod rooms;
mod state;
mod uploads;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

pub use api::{ApiDoc, ApiJson};
pub use auth::{
    ApiCaller, DEFAULT_ADMIN, LoginLimiter, PanelSession, SESSION_COOKIE, ensure_admin,
    hash_password, sha256_hex, verify_password,
};
pub use error::{Error, ErrorBody, FieldErrors, Result};
pub use follow::CLOSE_REVOKED;
pub use live::{
    ControlCommand, LiveError, LiveRooms, NoLiveRooms, ParticipantId, ParticipantView, RoomEvent,
    RoomSnapshot, SequencedEvent, SharedLiveRooms, Subscription, SubscriptionStart,
};
pub use rooms::NO_PIN_WARNING;
pub use state::{DirectoryHook, WebConfig, WebState};
pub use uploads::UploadKind;

/// The HTTP application: panel, API, live pages, `/metrics`, `/healthz`,
/// with request metrics and logs around all of them.
pub fn router(state: WebState) -> Router {
    let max_upload = state.config.max_upload_bytes;
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .merge(api::routes(max_upload))
        .merge(follow::routes())
        .merge(panel::routes(max_upload))
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
}

async fn metrics(State(s): State<WebState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}
