//! Agent replies (SPEC §7, §13): `POST /api/v1/tickets/{id}/messages` writes the reply `queued`
//! and answers at once (201; 200 with the same message when the idempotency key was used
//! before), and `POST /api/v1/tickets/{id}/messages/{message_id}/resend` puts a failed message back
//! in the queue. The sender delivers them; their status changes arrive as `message.updated`
//! events. `PATCH /api/v1/tickets/{id}/signature` switches the agent signature of the ticket's
//! replies (SPEC §7). On WhatsApp Cloud API connections free-form replies go out only inside the
//! 24 h window (else 422 `window_closed`); `POST /api/v1/tickets/{id}/messages/template` sends a
//! template, which the window never refuses. (`GET` on the same path, the chat page, lives in `tickets.rs`: axum merges the two.)

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;
use atende_domain::{Message, MessageId, TicketId};
use atende_engine::inbound::channels::webchat::MAX_UPLOAD_BYTES;
use atende_engine::outbound::{ReplyFile, ReplyInput, TemplateInput};
use axum::Router;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::routing::{patch, post};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/tickets/{id}/messages",
            post(create).layer(DefaultBodyLimit::max(MAX_FORM_BYTES)),
        )
        .route(
            "/api/v1/tickets/{id}/messages/{message_id}/resend",
            post(resend),
        )
        .route(
            "/api/v1/tickets/{id}/messages/template",
            post(create_template),
        )
        .route("/api/v1/tickets/{id}/signature", patch(signature))
}

/// Largest reply body: one file of `webchat::MAX_UPLOAD_BYTES` and the text fields.
const MAX_FORM_BYTES: usize = MAX_UPLOAD_BYTES + 64 * 1024;
/// Longest text field of the form, in bytes (4096 characters of up to 4 bytes).
const MAX_FIELD_BYTES: usize = 4 * 4096;

/// A text reply. `body`: 1 to 4096 characters.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    pub body: String,
    /// Repeating a request with the same key answers the same message instead of a second one;
    /// generated when absent.
    pub idempotency_key: Option<String>,
    /// The message this one replies to.
    pub quoted_id: Option<i64>,
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages", tag = "tickets",
    params(("id" = i64, Path)),
    request_body = ReplyBody,
    responses(
        (status = 201, description = "queued", body = Message),
        (status = 200, description = "the message already stored under this idempotency key", body = Message),
        (status = 404), (status = 409, body = crate::error::ErrorBody),
        (status = 422, description = "invalid input (`validation_failed`), or a WhatsApp Cloud API \
            chat whose 24 h window is closed (`window_closed`: send a template)",
            body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    request: Request,
) -> ApiResult<(StatusCode, axum::Json<Message>)> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let input = if content_type.starts_with("multipart/form-data") {
        form(&state, request).await?
    } else {
        let Json(input) = Json::<ReplyBody>::from_request(request, &state).await?;
        ReplyInput {
            body: input.body,
            idempotency_key: input.idempotency_key,
            quoted_id: input.quoted_id.map(MessageId),
            file: None,
        }
    };
    let outcome = state.engine.reply(&principal, TicketId(id), input).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(outcome.message)))
}

/// A WhatsApp Business template to send: a template synced for the ticket's WhatsApp Cloud API
/// connection, approved by the provider, with one parameter per numbered placeholder of its body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    pub name: String,
    /// The template's language code, e.g. `pt_BR`.
    pub language: String,
    /// The body's parameters, `{{1}}` first.
    #[serde(default)]
    pub params: Vec<String>,
    /// As for a reply: the same key again answers the same message.
    pub idempotency_key: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages/template", tag = "tickets",
    params(("id" = i64, Path)),
    request_body = TemplateBody,
    responses(
        (status = 201, description = "queued; `kind` is `template` and `body` the filled-in text \
            (allowed whether the 24 h window is open or not)", body = Message),
        (status = 200, description = "the message already stored under this idempotency key", body = Message),
        (status = 404),
        (status = 409, description = "the ticket cannot take a message now, or its connection is \
            not WhatsApp Cloud API", body = crate::error::ErrorBody),
        (status = 422, description = "unknown or unapproved template, wrong parameters",
            body = crate::error::ErrorBody)))]
pub async fn create_template(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<TemplateBody>,
) -> ApiResult<(StatusCode, axum::Json<Message>)> {
    let input = TemplateInput {
        name: input.name,
        language: input.language,
        params: input.params,
        idempotency_key: input.idempotency_key,
    };
    let outcome = state
        .engine
        .send_template(&principal, TicketId(id), input)
        .await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(outcome.message)))
}

#[utoipa::path(post, path = "/api/v1/tickets/{id}/messages/{message_id}/resend", tag = "tickets",
    params(("id" = i64, Path), ("message_id" = i64, Path)),
    responses((status = 200, description = "queued again", body = Message), (status = 404),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn resend(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path((id, message_id)): Path<(i64, i64)>,
) -> ApiResult<axum::Json<Message>> {
    Ok(axum::Json(
        state
            .engine
            .resend(&principal, TicketId(id), MessageId(message_id))
            .await?,
    ))
}

/// The agent signature of a ticket's replies: `false` switches it off (refused while the tenant
/// has `enforce_signature`), `true` back on.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignatureSwitch {
    pub enabled: bool,
}

#[utoipa::path(patch, path = "/api/v1/tickets/{id}/signature", tag = "tickets",
    params(("id" = i64, Path)),
    request_body = SignatureSwitch,
    responses(
        (status = 200, description = "the signature is now as asked", body = SignatureSwitch),
        (status = 404),
        (status = 409, description = "the signature is enforced (enforce_signature)",
            body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
pub async fn signature(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<SignatureSwitch>,
) -> ApiResult<axum::Json<SignatureSwitch>> {
    state
        .engine
        .set_signature(&principal, TicketId(id), input.enabled)
        .await?;
    Ok(axum::Json(input))
}

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the upload is too large (a file of at most {} MiB)",
                MAX_UPLOAD_BYTES / (1024 * 1024)
            ),
        )
    } else {
        ApiError::bad_request(format!("cannot read the form: {}", error.body_text()))
    }
}

/// A reply with a file: multipart fields `body` (the caption, optional), `idempotency_key`,
/// `quoted_id` and one `file`.
async fn form(state: &AppState, request: Request) -> ApiResult<ReplyInput> {
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| {
            ApiError::bad_request(format!("cannot read the form: {}", rejection.body_text()))
        })?;
    let mut input = ReplyInput::default();
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if input.file.is_some() {
                return Err(ApiError::unprocessable(
                    "file",
                    "file: send one file per message",
                ));
            }
            let mime = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let content = field.bytes().await.map_err(multipart_error)?;
            input.file = Some(ReplyFile {
                content: content.to_vec(),
                mime,
                file_name,
            });
            continue;
        }
        if !matches!(name.as_str(), "body" | "idempotency_key" | "quoted_id") {
            return Err(ApiError::unprocessable(
                name.clone(),
                format!("{name}: unknown field; send body, idempotency_key, quoted_id and file"),
            ));
        }
        let text = field.text().await.map_err(multipart_error)?;
        if text.len() > MAX_FIELD_BYTES {
            return Err(ApiError::unprocessable(
                name.clone(),
                format!("{name}: too long"),
            ));
        }
        match name.as_str() {
            "body" => input.body = text,
            "idempotency_key" => input.idempotency_key = Some(text),
            _ => {
                let id = text.trim().parse::<i64>().map_err(|_| {
                    ApiError::unprocessable("quoted_id", "quoted_id: must be a message id")
                })?;
                input.quoted_id = Some(MessageId(id));
            }
        }
    }
    if input.file.is_none() {
        return Err(ApiError::unprocessable(
            "file",
            "file: a multipart reply carries one file (send text as JSON)",
        ));
    }
    Ok(input)
}
