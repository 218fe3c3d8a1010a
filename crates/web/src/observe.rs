//! Request observability (SPEC W4): one middleware, [`observe`], counts every
//! request (`http_requests_total{method,route,status}`), times it
//! (`http_request_duration_seconds{method,route}`) and writes one structured
//! `tracing` line per request. The route label is the matched route pattern
//! (`/api/v1/rooms/{id}`), never the raw path, so secrets in follow/control
//! URLs stay out of metrics and logs and label cardinality stays bounded.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::InternalDetail;

/// Counts, times and logs one request.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status();
    metrics::counter!(
        "http_requests_total",
        "method" => method.to_string(),
        "route" => route.clone(),
        "status" => status.as_u16().to_string()
    )
    .increment(1);
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method.to_string(),
        "route" => route.clone()
    )
    .record(elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if let Some(InternalDetail(detail)) = response.extensions().get::<InternalDetail>() {
        tracing::error!(%method, %route, status = status.as_u16(), latency_ms, error = %detail, "request failed");
    } else {
        tracing::info!(%method, %route, status = status.as_u16(), latency_ms, "request");
    }
    response
}
