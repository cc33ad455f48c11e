//! Ticket lifecycle commands (SPEC §3, §13): `POST /api/v1/tickets/{id}/{accept|return|transfer|
//! pause|resume|close|reopen}`, each answering the updated ticket. A command that does not apply
//! to the ticket's status → 409 `invalid_state` with the reason; a ticket the caller cannot see →
//! 404; ids in the body outside the tenant → 404 naming the field.
//!
//! Bodies are optional where every field is (`pause`, `close`, and the body-less commands), so a
//! plain `POST` with no body works; when given, they are JSON with our usual 400/422 answers.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Client, Path};
use crate::state::AppState;
use atende_domain::{DemandId, QueueId, Ticket, TicketId, UserId};
use atende_engine::commands::TransferTarget;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets/{id}/accept", post(accept))
        .route("/api/v1/tickets/{id}/return", post(return_ticket))
        .route("/api/v1/tickets/{id}/transfer", post(transfer))
        .route("/api/v1/tickets/{id}/pause", post(pause))
        .route("/api/v1/tickets/{id}/resume", post(resume))
        .route("/api/v1/tickets/{id}/close", post(close))
        .route("/api/v1/tickets/{id}/reopen", post(reopen))
}

/// Transfer to a queue and/or a user (at least one). To a user: they own it, status unchanged
/// (a paused ticket opens for them). To a queue only: pending, no owner.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    pub queue_id: Option<i64>,
    pub user_id: Option<i64>,
    /// Shown in the chat's system note.
    pub note: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseInput {
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseInput {
    /// Required with `require_demand_on_close`.
    pub demand_id: Option<i64>,
    /// Closing note, kept on the ticket's cycle.
    pub note: Option<String>,
}

/// An optional JSON body: nothing (or only whitespace) → the defaults.
fn optional_body<T: DeserializeOwned + Default>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|error| {
        use serde_json::error::Category;
        match error.classify() {
            Category::Data => {
                let message = error.to_string();
                let field = message.split('`').nth(1).map(str::to_owned);
                let mut api = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    message,
                );
                api.field = field;
                api
            }
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request(format!("the body is not valid JSON: {error}"))
            }
        }
    })
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/accept", tag = "tickets",
    params(("id" = i64, Path)),
    responses((status = 200, body = Ticket), (status = 404), (status = 409, body = crate::error::ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(client): Client,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Ticket>> {
    Ok(axum::Json(
        state
            .engine
            .accept(&principal, TicketId(id), &client)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/return", tag = "tickets",
    params(("id" = i64, Path)),
    responses((status = 200, body = Ticket), (status = 403), (status = 404), (status = 409, body = crate::error::ErrorBody)))]
pub async fn return_ticket(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(client): Client,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Ticket>> {
    Ok(axum::Json(
        state
            .engine
            .return_ticket(&principal, TicketId(id), &client)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/transfer", tag = "tickets",
    params(("id" = i64, Path)), request_body = TransferInput,
    responses((status = 200, body = Ticket), (status = 403), (status = 404), (status = 409, body = crate::error::ErrorBody), (status = 422)))]
pub async fn transfer(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(client): Client,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<axum::Json<Ticket>> {
    let input: TransferInput = optional_body(&body)?;
    let target = TransferTarget {
        queue_id: input.queue_id.map(QueueId),
        user_id: input.user_id.map(UserId),
        note: input.note,
    };
    Ok(axum::Json(
        state
            .engine
            .transfer(&principal, TicketId(id), target, &client)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/pause", tag = "tickets",
    params(("id" = i64, Path)), request_body(content = PauseInput, description = "optional"),
    responses((status = 200, body = Ticket), (status = 403), (status = 404), (status = 409, body = crate::error::ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(client): Client,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<axum::Json<Ticket>> {
    let input: PauseInput = optional_body(&body)?;
    Ok(axum::Json(
        state
            .engine
            .pause(&principal, TicketId(id), input.reason, &client)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/resume", tag = "tickets",
    params(("id" = i64, Path)),
    responses((status = 200, body = Ticket), (status = 403), (status = 404), (status = 409, body = crate::error::ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(client): Client,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Ticket>> {
    Ok(axum::Json(
        state
            .engine
            .resume(&principal, TicketId(id), &client)
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/close", tag = "tickets",
    params(("id" = i64, Path)), request_body(content = CloseInput, description = "optional"),
    responses((status = 200, body = Ticket), (status = 403), (status = 404), (status = 409, body = crate::error::ErrorBody), (status = 422)))]
pub async fn close(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(client): Client,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<axum::Json<Ticket>> {
    let input: CloseInput = optional_body(&body)?;
    let ticket = state
        .engine
        .close(
            &principal,
            TicketId(id),
            input.demand_id.map(DemandId),
            input.note,
            &client,
        )
        .await?;
    Ok(axum::Json(ticket))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/reopen", tag = "tickets",
    params(("id" = i64, Path)),
    responses((status = 200, body = Ticket), (status = 404), (status = 409, body = crate::error::ErrorBody)))]
pub async fn reopen(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(client): Client,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Ticket>> {
    Ok(axum::Json(
        state
            .engine
            .reopen(&principal, TicketId(id), &client)
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_means_the_defaults_and_unknown_fields_name_themselves() {
        let empty: CloseInput = optional_body(&Bytes::from_static(b"  ")).unwrap();
        assert!(empty.demand_id.is_none() && empty.note.is_none());
        let error =
            optional_body::<CloseInput>(&Bytes::from_static(b"{\"demand\":1}")).unwrap_err();
        assert_eq!(
            (error.status, error.field.as_deref()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("demand"))
        );
        let error = optional_body::<CloseInput>(&Bytes::from_static(b"{")).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
    }
}
