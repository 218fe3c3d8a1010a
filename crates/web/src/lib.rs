//! HTTP for Palaver: `/metrics` (Prometheus) and `/healthz` today; the REST
//! API, control panel and live follow/control pages are built on this router.
//!
//! [`router`] builds the axum app from a [`WebState`]; the binary serves it.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

/// What the handlers share.
#[derive(Clone)]
pub struct WebState {
    /// Renders the process's metrics.
    pub metrics: PrometheusHandle,
}

/// The HTTP application.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn index() -> Html<&'static str> {
    Html(concat!(
        "<!doctype html><title>Palaver</title><h1>Palaver</h1>",
        "<p>The PBX is running. Metrics: <a href=\"/metrics\">/metrics</a>.</p>"
    ))
}

async fn metrics(State(s): State<WebState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}
