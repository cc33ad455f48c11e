//! Reading tickets (SPEC §13): the tab lists, the unread tab counters, one ticket, its chat
//! messages, and "mark read". Every route answers from the caller's visibility plan: a ticket the
//! caller may not see is 404, exactly like a ticket of another tenant. The commands that change a
//! ticket live in `ticket_commands.rs`.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Path, Query};
use crate::state::AppState;
use atende_domain::{QueueId, TagId, Ticket, TicketId, TicketStatus, UserId};
use atende_engine::EngineError;
use atende_engine::ticket_views::{
    MessagePage, SPY_DISABLED, Tab, TicketCounts, TicketDetail, TicketPage, TicketQuery,
};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use std::str::FromStr;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets", get(list))
        .route("/api/v1/tickets/counts", get(counts))
        .route("/api/v1/tickets/{id}", get(show))
        .route("/api/v1/tickets/{id}/messages", get(messages))
        .route("/api/v1/tickets/{id}/read", post(mark_read))
}

/// Query of `GET /api/v1/tickets`; empty values mean "not given".
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `open` (open and paused), `pending`, `closed`, `groups`, `chatbot` (with `chatbot_tab`);
    /// none = every ticket you may see.
    tab: Option<String>,
    /// A synonym of the status tabs (`open`, `pending`, `closed`; `paused` = the paused part of
    /// `open`), or a narrowing of `tab`.
    status: Option<String>,
    queue_id: Option<String>,
    owner_id: Option<String>,
    /// A tag of the ticket's contact.
    tag_id: Option<String>,
    /// `true`: only tickets with unread messages; `false`: only tickets without.
    unread: Option<String>,
    /// Contact name (any case, accents ignored), phone digits, or the exact protocol.
    search: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// `true`: the answer carries the tab counters too (`counts`, as `GET /api/v1/tickets/counts`
    /// answers them), read at the same time as the page.
    with_counts: Option<String>,
}

/// Query of `GET /api/v1/tickets/{id}/messages`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagesParams {
    /// The `next_cursor` of the previous (newer) page.
    before: Option<String>,
}

/// A query value that may be empty; a malformed one is a 400 naming the parameter.
fn param<T: FromStr>(name: &str, raw: Option<&str>, expected: &str) -> ApiResult<Option<T>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("{name}: '{text}' is not {expected}")).with_field(name)
        }),
    }
}

fn tab(raw: Option<&str>) -> ApiResult<Option<Tab>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => Tab::parse(text).map(Some).ok_or_else(|| {
            ApiError::bad_request(format!(
                "tab: '{text}' is not one of open, pending, closed, groups, chatbot"
            ))
            .with_field("tab")
        }),
    }
}

/// The chat of a pending ticket without the `spy` feature gets its own code, so the panel can say
/// "accept it first" instead of a generic refusal.
fn spy_aware(error: EngineError) -> ApiError {
    match error {
        EngineError::Forbidden(message) if message == SPY_DISABLED => {
            ApiError::new(StatusCode::FORBIDDEN, "spy_disabled", message)
        }
        other => other.into(),
    }
}

#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets", params(ListParams),
    responses((status = 200, body = TicketPage), (status = 400), (status = 401),
        (status = 404, description = "a queue, owner or tag of the filter does not exist"),
        (status = 422, description = "bad cursor, search too long, chatbot tab off")))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<ListParams>,
) -> ApiResult<axum::Json<TicketPage>> {
    let query = TicketQuery {
        tab: tab(params.tab.as_deref())?,
        status: param::<TicketStatus>(
            "status",
            params.status.as_deref(),
            "one of pending, open, paused, closed",
        )?,
        queue_id: param::<i64>("queue_id", params.queue_id.as_deref(), "a number")?.map(QueueId),
        owner_id: param::<i64>("owner_id", params.owner_id.as_deref(), "a number")?.map(UserId),
        tag_id: param::<i64>("tag_id", params.tag_id.as_deref(), "a number")?.map(TagId),
        unread: param::<bool>("unread", params.unread.as_deref(), "true or false")?,
        search: params.search,
        cursor: params.cursor,
    };
    let with_counts = param::<bool>(
        "with_counts",
        params.with_counts.as_deref(),
        "true or false",
    )?;
    let page = if with_counts == Some(true) {
        state
            .engine
            .list_tickets_with_counts(&principal, &query)
            .await?
    } else {
        state.engine.list_tickets(&principal, &query).await?
    };
    Ok(axum::Json(page))
}

#[utoipa::path(get, path = "/api/v1/tickets/counts", tag = "tickets",
    responses((status = 200, body = TicketCounts), (status = 401)))]
pub async fn counts(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<TicketCounts>> {
    Ok(axum::Json(state.engine.ticket_counts(&principal).await?))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets", params(("id" = i64, Path)),
    responses((status = 200, body = TicketDetail),
        (status = 404, description = "no such ticket, or not visible to you")))]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<TicketDetail>> {
    Ok(axum::Json(
        state.engine.ticket_detail(&principal, TicketId(id)).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}/messages", tag = "tickets",
    params(("id" = i64, Path), MessagesParams),
    responses((status = 200, body = MessagePage),
        (status = 403, description = "`spy_disabled`: a pending ticket's chat before accepting it"),
        (status = 404), (status = 422, description = "bad cursor")))]
pub async fn messages(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Query(params): Query<MessagesParams>,
) -> ApiResult<axum::Json<MessagePage>> {
    let page = state
        .engine
        .ticket_messages(&principal, TicketId(id), params.before.as_deref())
        .await
        .map_err(spy_aware)?;
    Ok(axum::Json(page))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/read", tag = "tickets", params(("id" = i64, Path)),
    responses((status = 200, body = Ticket, description = "unread is now 0"),
        (status = 403, description = "`spy_disabled`"), (status = 404)))]
pub async fn mark_read(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Ticket>> {
    let ticket = state
        .engine
        .mark_ticket_read(&principal, TicketId(id))
        .await
        .map_err(spy_aware)?;
    Ok(axum::Json(ticket))
}
