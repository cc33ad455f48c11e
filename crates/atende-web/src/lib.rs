//! The HTTP edge of atende: the JSON API under `/api/v1`, health and metrics, and (as they land)
//! the panel, webhooks, the web-chat widget and the live WebSocket.
//!
//! Handlers parse and authorise, call `atende-engine`, and map the outcome through the one error
//! mapping in `error.rs`. No rule is decided here.

pub mod api;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod panel;
pub mod state;
pub mod webhooks;
pub mod widget;

pub use state::AppState;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;

/// Largest JSON body the API accepts (media uploads get their own, larger limit).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// The whole HTTP application.
pub fn router(engine: atende_engine::Engine) -> Router {
    let state = AppState {
        engine,
        metrics: Arc::new(metrics::Metrics::default()),
    };
    Router::new()
        .merge(api::routes())
        .merge(widget::routes())
        .merge(live::routes())
        .merge(webhooks::routes())
        .merge(panel::routes())
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Counts requests for `/metrics` and logs each one.
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.record(
        status,
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
    );
    tracing::debug!(%method, %path, status, micros = elapsed.as_micros() as u64, "request");
    response
}
