//! One message of a ticket's chat and its stored file (SPEC §13), under the same rule as the chat
//! page (`Engine::chat_message`): a message the caller would not see in that chat is 404.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Path};
use crate::state::AppState;
use atende_domain::{Message, MessageId, TicketId};
use atende_engine::EngineError;
use atende_engine::ticket_views::SPY_DISABLED;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/tickets/{id}/messages/{message_id}", get(show))
        .route("/api/v1/tickets/{id}/messages/{message_id}/file", get(file))
}

/// Types a browser may show in the page (everything else is downloaded, never rendered: a
/// contact's file must not run as part of our site).
fn shown_inline(mime: &str) -> bool {
    matches!(
        mime,
        "image/jpeg" | "image/png" | "image/gif" | "image/webp"
    ) || mime.starts_with("audio/")
        || mime.starts_with("video/")
}

/// A pending ticket's chat without the `spy` feature has its own code (the panel says "accept it
/// first").
fn spy_aware(error: EngineError) -> ApiError {
    match error {
        EngineError::Forbidden(message) if message == SPY_DISABLED => {
            ApiError::new(StatusCode::FORBIDDEN, "spy_disabled", message)
        }
        other => other.into(),
    }
}

#[utoipa::path(get, path = "/api/v1/tickets/{id}/messages/{message_id}", tag = "tickets",
    params(("id" = i64, Path), ("message_id" = i64, Path)),
    responses((status = 200, body = Message),
        (status = 403, description = "a pending ticket's chat without the spy feature"),
        (status = 404, description = "no such ticket or message in the chat you may read")))]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((ticket_id, message_id)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<Message>> {
    let message = state
        .engine
        .chat_message(&principal, TicketId(ticket_id), MessageId(message_id))
        .await
        .map_err(spy_aware)?;
    Ok(axum::Json(message))
}

/// The stored file of a message (images, audio and video shown inline, anything else downloaded).
#[utoipa::path(get, path = "/api/v1/tickets/{id}/messages/{message_id}/file", tag = "tickets",
    params(("id" = i64, Path), ("message_id" = i64, Path)),
    responses((status = 200, description = "the file"),
        (status = 403, description = "a pending ticket's chat without the spy feature"),
        (status = 404, description = "no such message in the chat you may read, or no file")))]
pub async fn file(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((ticket_id, message_id)): Path<(i64, i64)>,
) -> ApiResult<Response> {
    let engine = &state.engine;
    let tenant = principal.tenant()?;
    let message = engine
        .chat_message(&principal, TicketId(ticket_id), MessageId(message_id))
        .await
        .map_err(spy_aware)?;
    let db = engine.db();
    let Some(media) = atende_engine::db::ingest::media_of(db, tenant, message.id)
        .await
        .map_err(EngineError::from)?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this message has no stored file (yet)",
        ));
    };
    let content = match tokio::fs::read(&media.path).await {
        Ok(content) => content,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "the file of this message is missing",
            ));
        }
        Err(error) => {
            tracing::error!(%error, path = %media.path, "cannot read a message file");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; see the server log",
            ));
        }
    };
    let declared = media.mime.unwrap_or_default();
    let base = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let inline = shown_inline(&base);
    let content_type = if inline {
        HeaderValue::from_str(&base)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
    } else {
        HeaderValue::from_static("application/octet-stream")
    };
    let disposition = if inline {
        "inline".to_owned()
    } else {
        format!("attachment; filename=\"file-{}\"", message.id.0)
    };
    let mut response = content.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    for (name, value) in [
        (header::CACHE_CONTROL, "private, max-age=86400"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_files_render_inline_only_when_they_are_media() {
        assert!(shown_inline("image/png"));
        assert!(shown_inline("audio/ogg"));
        assert!(!shown_inline("image/svg+xml"));
        assert!(!shown_inline("text/html"));
        assert!(!shown_inline("application/pdf"));
    }
}
