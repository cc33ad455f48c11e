//! The web chat (SPEC §13): the widget page a company embeds on its site and its small API.
//!
//! - `GET /widget/{key}`: the page. It mints a visitor id (or keeps the one of a valid cookie),
//!   signs it, and hands the token over twice: in an HttpOnly cookie and inside the page, which
//!   sends it back in `x-atende-visitor` (embedded in a third-party iframe, browsers often drop
//!   the cookie).
//! - `POST /api/widget/v1/{key}/messages` `{visitor_id?, name?, body, client_message_id?}`: a
//!   visitor's message. With a visitor token the token names the visitor; without one the body
//!   must (a site's backend naming its own user). Goes through the web-chat adapter and the
//!   inbound pipeline like every channel: 201 stored, 200 for a repeat of the same
//!   `client_message_id`, 202 when accepted but not shown (dropped or failed: the inbound log
//!   says why).
//! - `GET /api/widget/v1/{key}/messages?after=<message id>`: the visitor's conversation, both
//!   directions, ascending. Needs the visitor token.
//!
//! Unknown widget keys answer 404 in the API's JSON error shape.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Lang, Path, Query};
use crate::state::AppState;
use atende_domain::settings::Locale;
use atende_domain::{Message, MessageAuthor, MessageDirection, MessageId, MessageKind, Timestamp};
use atende_engine::EngineError;
use atende_engine::inbound::channels::webchat::{self, Webchat};
use atende_engine::inbound::channels::{ChannelError, Delivery};
use atende_engine::inbound::{Handled, WebchatError, WebchatReceipt};
use axum::Router;
use axum::body::Bytes;
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest POST body: a message of `webchat::MAX_BODY_CHARS` characters fits many times over.
pub const MAX_POST_BYTES: usize = 64 * 1024;
/// Largest multipart body: one file of `webchat::MAX_UPLOAD_BYTES` and the text fields.
const MAX_UPLOAD_BODY_BYTES: usize = webchat::MAX_UPLOAD_BYTES + 64 * 1024;
/// Messages a conversation page returns at most.
const MAX_PAGE: i64 = 200;
const DEFAULT_PAGE: i64 = 50;
/// The visitor cookie lives a year; the token itself carries its issue time for future rotation.
const COOKIE_MAX_AGE_SECS: u64 = 365 * 24 * 3600;

const PAGE_HTML: &str = include_str!("widget/page.html");
const SCRIPT: &str = include_str!("widget/widget.js");
const STYLE: &str = include_str!("widget/widget.css");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/widget/v1/{key}/messages",
            get(conversation)
                .post(post_message)
                .layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY_BYTES)),
        )
        .route("/api/widget/v1/{key}/media/{id}", get(media))
        .route("/widget/{key}", get(page))
        .route("/widget-assets/widget.js", get(script))
        .route("/widget-assets/widget.css", get(style))
}

/// A message as the visitor sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitorMessage {
    pub id: MessageId,
    /// `visitor` (sent by the visitor), `agent`, `bot` or `system`.
    pub from: &'static str,
    pub kind: MessageKind,
    pub body: String,
    /// The file of an image, audio, video or document message; needs the visitor token (header,
    /// cookie or `?v=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
    pub sent_at: Timestamp,
}

impl VisitorMessage {
    fn of(message: &Message, key: &str) -> Self {
        let from = match (message.direction, message.author) {
            (MessageDirection::In, _) => "visitor",
            (_, MessageAuthor::Bot) => "bot",
            (_, MessageAuthor::System) => "system",
            _ => "agent",
        };
        let has_file = matches!(
            message.kind,
            MessageKind::Image
                | MessageKind::Audio
                | MessageKind::Video
                | MessageKind::Document
                | MessageKind::Sticker
        );
        Self {
            id: message.id,
            from,
            kind: message.kind,
            body: message.body.clone(),
            media_url: has_file.then(|| format!("/api/widget/v1/{key}/media/{}", message.id)),
            sent_at: message.sent_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostAnswer {
    /// `stored`, `duplicate` (a repeat of the same `client_message_id`) or `accepted`.
    pub status: &'static str,
    pub visitor_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<VisitorMessage>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationAnswer {
    pub visitor_id: String,
    /// Ascending by id; pass the last id as `after` to get what came since.
    pub messages: Vec<VisitorMessage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

/// The headers an adapter may look at (the visitor token travels in them).
fn delivery_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| {
            *name == header::COOKIE || name.as_str().eq_ignore_ascii_case(webchat::VISITOR_HEADER)
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect()
}

fn unknown_widget() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no web chat has this key",
    )
}

fn channel_error(error: ChannelError) -> ApiError {
    match error {
        ChannelError::Unauthenticated(message) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
        }
        ChannelError::Malformed(message) => ApiError::bad_request(message),
        ChannelError::Invalid { field, message } => {
            ApiError::unprocessable(field.clone(), format!("{field}: {message}"))
        }
        ChannelError::TooLarge(message) => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
        }
        other => ApiError::new(StatusCode::BAD_GATEWAY, "channel_error", other.to_string()),
    }
}

async fn post_message(
    State(state): State<AppState>,
    Path(key): Path<String>,
    request: Request,
) -> ApiResult<Response> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start()
        .to_ascii_lowercase();
    let receipt = if content_type.starts_with("application/json") {
        let headers = delivery_headers(request.headers());
        let body = axum::body::to_bytes(request.into_body(), MAX_POST_BYTES)
            .await
            .map_err(|error| body_error(&error))?;
        let delivery = Delivery {
            headers,
            body: &body,
            received_at: Timestamp::now(),
        };
        match state.engine.ingest_webchat(&key, &delivery).await {
            Ok(receipt) => receipt,
            Err(WebchatError::UnknownWidget) => return Err(unknown_widget()),
            Err(WebchatError::Channel(error)) => return Err(channel_error(error)),
            Err(WebchatError::Engine(error)) => return Err(error.into()),
        }
    } else if content_type.starts_with("multipart/form-data") {
        upload(&state, &key, request).await?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON (Content-Type: application/json) or, with a file, as multipart/form-data",
        ));
    };
    let (status, label) = match receipt.handled {
        Handled::Stored { .. } => (StatusCode::CREATED, "stored"),
        Handled::Duplicate { .. } => (StatusCode::OK, "duplicate"),
        _ => (StatusCode::ACCEPTED, "accepted"),
    };
    let answer = PostAnswer {
        status: label,
        visitor_id: receipt.visitor_id,
        message: receipt
            .message
            .as_ref()
            .map(|message| VisitorMessage::of(message, &key)),
    };
    Ok((status, axum::Json(answer)).into_response())
}

fn body_error(error: &axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is too large (at most {MAX_POST_BYTES} bytes)"),
            );
        }
        source = current.source();
    }
    ApiError::bad_request(format!("cannot read the body: {error}"))
}

fn multipart_error(error: MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the upload is too large (a file of at most {} MiB)",
                webchat::MAX_UPLOAD_BYTES / (1024 * 1024)
            ),
        )
    } else {
        ApiError::bad_request(format!("cannot read the form: {}", error.body_text()))
    }
}

/// A message with a file: multipart fields `visitor_id`, `name`, `body`, `client_message_id` and
/// one `file`. The file is checked (type, content, size) before it is stored.
async fn upload(state: &AppState, key: &str, request: Request) -> ApiResult<WebchatReceipt> {
    let (connection, adapter) = widget(state, key).await?;
    let delivery = Delivery {
        headers: delivery_headers(request.headers()),
        body: &[],
        received_at: Timestamp::now(),
    };
    let visitor = adapter.verified_visitor(&delivery).map_err(channel_error)?;
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(|rejection| {
            ApiError::bad_request(format!("cannot read the form: {}", rejection.body_text()))
        })?;
    let mut post = webchat::WebchatPost::default();
    let mut file: Option<(String, Option<String>, Bytes)> = None;
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if file.is_some() {
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
                file = Some((mime, file_name, content));
            }
            "visitor_id" | "name" | "body" | "client_message_id" => {
                let text = field.text().await.map_err(multipart_error)?;
                if text.len() > MAX_POST_BYTES {
                    return Err(ApiError::unprocessable(
                        name.clone(),
                        format!("{name}: too long"),
                    ));
                }
                match name.as_str() {
                    "visitor_id" => post.visitor_id = Some(text),
                    "name" => post.name = Some(text),
                    "body" => post.body = text,
                    _ => post.client_message_id = Some(text),
                }
            }
            other => {
                return Err(ApiError::unprocessable(
                    other.to_owned(),
                    format!(
                        "unknown field `{other}`, expected visitor_id, name, body, client_message_id or file"
                    ),
                ));
            }
        }
    }
    let media = match file {
        Some((mime, file_name, content)) => {
            let mime = webchat::check_upload(&mime, &content).map_err(channel_error)?;
            Some(
                state
                    .engine
                    .store_webchat_upload(&connection, &content, &mime, file_name.as_deref())
                    .await?,
            )
        }
        None => None,
    };
    let inbound = adapter
        .inbound(post, visitor, media, Timestamp::now())
        .map_err(channel_error)?;
    Ok(state
        .engine
        .ingest_webchat_inbound(&connection, inbound)
        .await?)
}

/// The widget's connection and adapter, or 404.
async fn widget(state: &AppState, key: &str) -> ApiResult<(atende_domain::Connection, Webchat)> {
    state.engine.webchat(key).await?.ok_or_else(unknown_widget)
}

async fn conversation(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<ConversationQuery>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<ConversationAnswer>> {
    let (connection, adapter) = widget(&state, &key).await?;
    let visitor_id = visitor_of(&adapter, &headers, None)?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::unprocessable(
            "limit",
            format!("limit: from 1 to {MAX_PAGE}"),
        ));
    }
    let messages = state
        .engine
        .webchat_conversation(&connection, &visitor_id, query.after.map(MessageId), limit)
        .await
        .map_err(|error: EngineError| ApiError::from(error))?;
    Ok(axum::Json(ConversationAnswer {
        visitor_id,
        messages: messages
            .iter()
            .map(|message| VisitorMessage::of(message, &key))
            .collect(),
    }))
}

/// The visitor proven by the token in the header, the cookie or (for `<img src>`, which sends no
/// header) the `v` query parameter.
fn visitor_of(
    adapter: &Webchat,
    headers: &HeaderMap,
    query_token: Option<&str>,
) -> ApiResult<String> {
    let mut pairs = delivery_headers(headers);
    if let Some(token) = query_token {
        pairs.push((webchat::VISITOR_HEADER.to_owned(), token.to_owned()));
        pairs.retain(|(name, _)| name != header::COOKIE.as_str());
        pairs.sort_by_key(|(name, _)| name != webchat::VISITOR_HEADER);
    }
    let delivery = Delivery {
        headers: pairs,
        body: &[],
        received_at: Timestamp::now(),
    };
    adapter
        .verified_visitor(&delivery)
        .map_err(channel_error)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                format!(
                    "send the visitor token of the widget page in the {} header",
                    webchat::VISITOR_HEADER
                ),
            )
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaQuery {
    /// The visitor token, for clients that cannot send a header.
    v: Option<String>,
}

async fn media(
    State(state): State<AppState>,
    Path((key, id)): Path<(String, i64)>,
    Query(query): Query<MediaQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (connection, adapter) = widget(&state, &key).await?;
    let visitor_id = visitor_of(&adapter, &headers, query.v.as_deref())?;
    let (content, mime) = state
        .engine
        .webchat_media(&connection, &visitor_id, MessageId(id))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut response = (StatusCode::OK, content).into_response();
    let response_headers = response.headers_mut();
    let mime = mime.unwrap_or_else(|| "application/octet-stream".to_owned());
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&mime)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    // Uploaded content is served as data, never as a page of ours.
    response_headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response_headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    Ok(response)
}

/// Escapes text for HTML content and attribute values.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The page's words in the visitor's language.
fn texts(locale: Locale) -> [(&'static str, &'static str); 9] {
    match locale {
        Locale::En => [
            ("{{LANG}}", "en"),
            (
                "{{GREETING}}",
                "Hello! Send us a message and we will answer here.",
            ),
            ("{{NAME_LABEL}}", "Your name (optional)"),
            ("{{MESSAGE_LABEL}}", "Message"),
            ("{{PLACEHOLDER}}", "Type your message…"),
            ("{{SEND}}", "Send"),
            ("{{ATTACH}}", "Attach a file"),
            ("{{SEND_FAILED}}", "Not sent. Trying again…"),
            ("{{OFFLINE}}", "Connection lost. Reconnecting…"),
        ],
        _ => [
            ("{{LANG}}", "pt-BR"),
            (
                "{{GREETING}}",
                "Olá! Envie sua mensagem e responderemos por aqui.",
            ),
            ("{{NAME_LABEL}}", "Seu nome (opcional)"),
            ("{{MESSAGE_LABEL}}", "Mensagem"),
            ("{{PLACEHOLDER}}", "Digite sua mensagem…"),
            ("{{SEND}}", "Enviar"),
            ("{{ATTACH}}", "Anexar arquivo"),
            ("{{SEND_FAILED}}", "Não enviada. Tentando de novo…"),
            ("{{OFFLINE}}", "Conexão perdida. Reconectando…"),
        ],
    }
}

async fn page(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Lang(locale): Lang,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (connection, adapter) = widget(&state, &key).await?;
    let cookie_headers = delivery_headers(&headers)
        .into_iter()
        .filter(|(name, _)| name == header::COOKIE.as_str())
        .collect();
    let delivery = Delivery {
        headers: cookie_headers,
        body: &[],
        received_at: Timestamp::now(),
    };
    // A stale or foreign cookie simply gets a new visitor.
    let visitor_id = adapter
        .verified_visitor(&delivery)
        .ok()
        .flatten()
        .unwrap_or_else(webchat::new_visitor_id);
    let token = adapter.token_for(&visitor_id, Timestamp::now());
    let mut html = PAGE_HTML
        .replace("{{TITLE}}", &escape_html(&connection.name))
        .replace("{{KEY}}", &escape_html(&key))
        .replace("{{TOKEN}}", &escape_html(&token));
    for (placeholder, text) in texts(locale) {
        html = html.replace(placeholder, &escape_html(text));
    }
    let cookie = visitor_cookie(&webchat::visitor_cookie_name(&key), &token, &headers);
    let mut response = (StatusCode::OK, html).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response_headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Embeddable anywhere (that is the point of a widget), but nothing loads from elsewhere.
    response_headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'",
        ),
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response_headers.insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The visitor cookie. Over HTTPS (behind a TLS proxy) the widget usually sits in a company's
/// page on another site, where only a `SameSite=None; Secure` cookie reaches us, partitioned per
/// embedding site; over plain HTTP (development, same-site use) browsers refuse those, so it is
/// `SameSite=Lax`. Either way the page also carries the token for the `X-Atende-Visitor` header.
fn visitor_cookie(name: &str, token: &str, headers: &HeaderMap) -> String {
    let site = if crate::panel::auth::came_over_https(headers) {
        "Secure; SameSite=None; Partitioned"
    } else {
        "SameSite=Lax"
    };
    format!("{name}={token}; Path=/; Max-Age={COOKIE_MAX_AGE_SECS}; HttpOnly; {site}")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Small and embedded in the binary: revalidate rather than pin a stale copy after an upgrade.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_visitor_cookie_can_cross_sites_only_over_https() {
        let mut headers = HeaderMap::new();
        let plain = super::visitor_cookie("v", "t", &headers);
        assert!(plain.ends_with("HttpOnly; SameSite=Lax"), "{plain}");
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let secure = super::visitor_cookie("v", "t", &headers);
        assert!(
            secure.contains("HttpOnly; Secure; SameSite=None; Partitioned"),
            "{secure}"
        );
    }

    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn every_placeholder_of_the_page_is_filled() {
        let mut html = PAGE_HTML
            .replace("{{TITLE}}", "t")
            .replace("{{KEY}}", "k")
            .replace("{{TOKEN}}", "v");
        for (placeholder, text) in texts(Locale::PtBr) {
            html = html.replace(placeholder, text);
        }
        assert!(!html.contains("{{"), "unfilled placeholder in {html}");
    }
}
