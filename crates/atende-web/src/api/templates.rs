//! WhatsApp Business message templates of a connection (SPEC §7): `POST
//! /api/v1/connections/{id}/templates/sync` (admins) fetches them from the provider and stores
//! them, and `GET /api/v1/connections/{id}/templates` lists them for the agents who send them
//! (`POST /api/v1/tickets/{id}/messages/template`, in `ticket_messages.rs`).

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Path};
use crate::state::AppState;
use atende_domain::ConnectionId;
use atende_engine::inbound::channels::ChannelError;
use atende_engine::templates::{SyncError, SyncReport, TemplateSummary};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/connections/{id}/templates", get(list))
        .route("/api/v1/connections/{id}/templates/sync", post(sync))
}

impl From<SyncError> for ApiError {
    fn from(error: SyncError) -> Self {
        match error {
            SyncError::Engine(engine) => engine.into(),
            SyncError::Provider(ChannelError::RateLimited { retry_after_ms }) => ApiError {
                retry_after_secs: Some(retry_after_ms.div_ceil(1000).max(1)),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "provider_busy",
                    "the provider asked us to slow down; try the sync again later",
                )
            },
            SyncError::Provider(other) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "provider_error",
                format!("the provider did not list the templates: {other}"),
            ),
        }
    }
}

/// Admins only. Makes the connection's stored templates what the provider lists now: new ones
/// are added, changed ones updated, and the ones the provider no longer lists are deleted (a
/// message already sent keeps its text). Repeating it changes nothing when the provider did not.
#[utoipa::path(post, path = "/api/v1/connections/{id}/templates/sync", tag = "connections",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "what the sync did", body = SyncReport),
        (status = 403), (status = 404),
        (status = 422, description = "not a WhatsApp Cloud API connection, or its credentials \
            lack `waba_id`", body = crate::error::ErrorBody),
        (status = 502, description = "the provider refused or could not be reached (`provider_error`)",
            body = crate::error::ErrorBody),
        (status = 503, description = "the provider asked us to slow down (`provider_busy`, with \
            `Retry-After`)", body = crate::error::ErrorBody)))]
pub async fn sync(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<SyncReport>> {
    let report = state
        .engine
        .sync_templates(&principal, ConnectionId(id))
        .await?;
    Ok(axum::Json(report))
}

/// Any user of the tenant. The synced templates, by name and language, with the body text and
/// the number of parameters a send must give; only `approved` ones can be sent.
#[utoipa::path(get, path = "/api/v1/connections/{id}/templates", tag = "connections",
    params(("id" = i64, Path)),
    responses(
        (status = 200, body = Vec<TemplateSummary>),
        (status = 404),
        (status = 422, description = "not a WhatsApp Cloud API connection",
            body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Vec<TemplateSummary>>> {
    let templates = state
        .engine
        .list_templates(&principal, ConnectionId(id))
        .await?;
    Ok(axum::Json(templates))
}
