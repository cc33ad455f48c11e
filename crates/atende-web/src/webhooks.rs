//! Provider webhooks (SPEC §13): `/webhooks/{provider}/{connection_id}`.
//!
//! WhatsApp Cloud API (`reference/channels.md` §2.2–2.4): `GET` is Meta's subscription handshake
//! (the raw `hub.challenge` as text/plain, or 403); `POST` carries signed events. A delivery whose
//! signature fails is refused (401) and dropped; a verified one is logged and processed before the
//! answer (statuses are small and quick), and answered 200 even when processing one of its events
//! failed (the inbound log keeps the error): a non-2xx only makes Meta deliver it again.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::state::AppState;
use atende_domain::{ConnectionId, Timestamp};
use atende_engine::inbound::channels::{ChannelError, Delivery};
use atende_engine::whatsapp_cloud::WebhookError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/webhooks/whatsapp-cloud/{connection_id}",
        get(cloud_handshake).post(cloud_events),
    )
}

#[derive(Debug, Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode", default)]
    mode: String,
    #[serde(rename = "hub.verify_token", default)]
    verify_token: String,
    #[serde(rename = "hub.challenge", default)]
    challenge: String,
}

fn webhook_error(error: WebhookError) -> ApiError {
    match error {
        WebhookError::UnknownConnection => ApiError::not_found(),
        WebhookError::Channel(ChannelError::Unauthenticated(message)) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
        }
        WebhookError::Channel(other) => ApiError::bad_request(other.to_string()),
        WebhookError::Engine(error) => error.into(),
    }
}

async fn cloud_handshake(
    State(state): State<AppState>,
    Path(connection_id): Path<i64>,
    Query(query): Query<Handshake>,
) -> ApiResult<Response> {
    let answer = state
        .engine
        .whatsapp_cloud_handshake(
            ConnectionId(connection_id),
            &query.mode,
            &query.verify_token,
            &query.challenge,
        )
        .await
        .map_err(webhook_error)?;
    match answer {
        Some(challenge) => Ok(([(header::CONTENT_TYPE, "text/plain")], challenge).into_response()),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the verify token does not match this connection",
        )),
    }
}

async fn cloud_events(
    State(state): State<AppState>,
    Path(connection_id): Path<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let delivery = Delivery {
        headers: headers
            .iter()
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
        body: &body,
        received_at: Timestamp::now(),
    };
    let handled = state
        .engine
        .ingest_whatsapp_cloud(ConnectionId(connection_id), &delivery)
        .await
        .map_err(webhook_error)?;
    Ok(axum::Json(serde_json::json!({ "status": "ok", "events": handled.len() })).into_response())
}
