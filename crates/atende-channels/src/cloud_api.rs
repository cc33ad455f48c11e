//! The WhatsApp Business Cloud API (Meta Graph API), as `reference/channels.md` §2 describes it.
//!
//! Sending: `POST {graph_base}/{version}/{phone_number_id}/messages` with the connection's
//! Bearer token; the answer's `messages[0].id` (a `wamid.…`) is the provider id that later status
//! webhooks name. Errors are classified by the Graph `error.code` first and the HTTP status
//! second (§2.7, §2.12): rate limits pause the connection, transient failures retry, everything
//! else is permanent with the provider's words as the reason.
//!
//! The API takes no idempotency key (§1.4), so a request that may have reached Meta is never
//! answered with an error that invites a retry: a timeout or a broken connection after the
//! request went out, or a 200 without a message id, is [`ChannelError::OutcomeUnknown`]. Such a
//! send is settled by the status webhook (see [`CloudApi::parse_delivery`]: each status names its
//! recipient, which is how the engine matches it to a send whose id it never learnt).
//!
//! Webhooks: the `GET` subscription handshake and signed `POST`s (`X-Hub-Signature-256`, HMAC
//! over the raw body with the app secret). Only `statuses` are read so far; inbound `messages`
//! are skipped (logged) until the inbound side of this channel lands.
//!
//! Templates: `GET {graph_base}/{version}/{waba_id}/message_templates`, page by page along
//! `paging.cursors.after` ([`CloudApi::list_templates`]), so the engine can sync them.
//!
//! The connection's credentials (encrypted at rest) hold a JSON object, [`CloudConfig`]. The
//! Graph base URL is part of it so tests point the adapter at a local fake.

use crate::signing::{constant_time_eq, hmac_sha256};
use crate::{
    Channel, ChannelError, Delivery, Inbound, InboundEvent, OutboundMessage, ProviderTemplate,
    SendReceipt, StatusUpdate,
};
use atende_domain::delivery::WINDOW_CLOSED;
use atende_domain::template::TemplateCall;
use atende_domain::{ChannelKind, MessageKind, MessageStatus, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

pub const DEFAULT_GRAPH_BASE: &str = "https://graph.facebook.com";
pub const DEFAULT_API_VERSION: &str = "v23.0";
/// Longest wait for one Graph call.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// How long a send whose outcome is unknown waits for its status webhook before the sender
/// concludes the request never reached Meta and sends it again (see the sender's recovery).
pub const DEFAULT_STATUS_WAIT_MS: u64 = 5 * 60_000;
/// Header of the webhook signature.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// Pause when Meta asks us to slow down without saying for how long: the throughput cap
/// (130429) clears within a second or so; the app and account call limits (4, 80007) take
/// minutes; a number upgrade (131057) about a minute.
const THROUGHPUT_PAUSE_MS: u64 = 1_000;
const CALL_LIMIT_PAUSE_MS: u64 = 60_000;
const UPGRADE_PAUSE_MS: u64 = 60_000;
/// Longest text body Meta accepts.
pub const MAX_TEXT_CHARS: usize = 4096;

/// A Cloud API connection's settings, stored as its (encrypted) credentials.
#[derive(Clone, Deserialize)]
pub struct CloudConfig {
    /// System-user token with `whatsapp_business_messaging`.
    pub access_token: String,
    /// The sending number's id (the path of sends; `metadata.phone_number_id` of webhooks).
    pub phone_number_id: String,
    /// The WhatsApp Business Account id: where the message templates are (`GET
    /// /{version}/{waba_id}/message_templates`). Only template sync needs it.
    #[serde(default, alias = "business_account_id")]
    pub waba_id: Option<String>,
    /// Signs the webhooks Meta sends us; without it webhooks are refused.
    #[serde(default)]
    pub app_secret: Option<String>,
    /// Our answer to Meta's subscription handshake.
    #[serde(default)]
    pub verify_token: Option<String>,
    #[serde(default = "default_graph_base")]
    pub graph_base: String,
    #[serde(default = "default_api_version")]
    pub api_version: String,
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    #[serde(default)]
    pub status_wait_ms: Option<u64>,
}

fn default_graph_base() -> String {
    DEFAULT_GRAPH_BASE.to_owned()
}

fn default_api_version() -> String {
    DEFAULT_API_VERSION.to_owned()
}

impl std::fmt::Debug for CloudConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudConfig")
            .field("phone_number_id", &self.phone_number_id)
            .field("graph_base", &self.graph_base)
            .field("api_version", &self.api_version)
            .finish_non_exhaustive()
    }
}

impl CloudConfig {
    /// Reads and checks the connection's credentials JSON.
    pub fn from_json(bytes: &[u8]) -> Result<CloudConfig, ChannelError> {
        let mut config: CloudConfig = serde_json::from_slice(bytes).map_err(|error| {
            ChannelError::invalid(
                "credentials",
                format!("not a WhatsApp Cloud API configuration: {error}"),
            )
        })?;
        config.graph_base = config.graph_base.trim().trim_end_matches('/').to_owned();
        config.waba_id = config
            .waba_id
            .take()
            .map(|id| id.trim().to_owned())
            .filter(|id| !id.is_empty());
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ChannelError> {
        if self.access_token.trim().is_empty() {
            return Err(ChannelError::invalid(
                "credentials.access_token",
                "required",
            ));
        }
        // It becomes a path segment: digits only, as Meta's ids are.
        if self.phone_number_id.is_empty()
            || !self.phone_number_id.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(ChannelError::invalid(
                "credentials.phone_number_id",
                "must be the digits of the phone number id",
            ));
        }
        // A path segment too.
        if self
            .waba_id
            .as_deref()
            .is_some_and(|id| !id.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(ChannelError::invalid(
                "credentials.waba_id",
                "must be the digits of the WhatsApp Business Account id",
            ));
        }
        let base_ok = (self.graph_base.starts_with("https://")
            || self.graph_base.starts_with("http://"))
            && !self
                .graph_base
                .contains(|c: char| c.is_whitespace() || c == '?' || c == '#');
        if !base_ok {
            return Err(ChannelError::invalid(
                "credentials.graph_base",
                "must be an http(s) URL without query",
            ));
        }
        if !valid_version(&self.api_version) {
            return Err(ChannelError::invalid(
                "credentials.api_version",
                "must look like v23.0",
            ));
        }
        Ok(())
    }

    /// `POST` target of sends.
    pub fn messages_url(&self) -> String {
        format!(
            "{}/{}/{}/messages",
            self.graph_base, self.api_version, self.phone_number_id
        )
    }

    /// `GET` target of the template list (§2.9); without a WABA id there is none.
    pub fn templates_url(&self) -> Result<String, ChannelError> {
        let waba = self.waba_id.as_deref().ok_or_else(|| {
            ChannelError::invalid(
                "credentials.waba_id",
                "the connection needs its WhatsApp Business Account id (waba_id) to sync templates",
            )
        })?;
        Ok(format!(
            "{}/{}/{}/message_templates",
            self.graph_base, self.api_version, waba
        ))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(
            self.request_timeout_ms
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS)
                .clamp(100, 300_000),
        )
    }

    /// See [`DEFAULT_STATUS_WAIT_MS`].
    pub fn status_wait(&self) -> Duration {
        Duration::from_millis(self.status_wait_ms.unwrap_or(DEFAULT_STATUS_WAIT_MS))
    }

    /// Meta's subscription handshake (§2.2): the challenge to echo when `mode` is `subscribe`
    /// and the token is ours; `None` → 403.
    pub fn verify_subscription(&self, mode: &str, token: &str, challenge: &str) -> Option<String> {
        let ours = self.verify_token.as_deref().filter(|t| !t.is_empty())?;
        (mode == "subscribe" && constant_time_eq(ours.as_bytes(), token.as_bytes()))
            .then(|| challenge.to_owned())
    }

    /// Checks `X-Hub-Signature-256` over the raw body (§2.3).
    pub fn verify_signature(&self, delivery: &Delivery<'_>) -> Result<(), ChannelError> {
        let secret = self
            .app_secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ChannelError::Unauthenticated(
                    "the connection has no app_secret, so its webhooks cannot be verified".into(),
                )
            })?;
        let given = delivery
            .header(SIGNATURE_HEADER)
            .and_then(|value| value.trim().strip_prefix("sha256="))
            .and_then(|hex_text| hex::decode(hex_text).ok())
            .ok_or_else(|| ChannelError::Unauthenticated("missing webhook signature".into()))?;
        let expected = hmac_sha256(secret.as_bytes(), delivery.body);
        if constant_time_eq(&expected, &given) {
            Ok(())
        } else {
            Err(ChannelError::Unauthenticated(
                "the webhook signature does not match".into(),
            ))
        }
    }

    /// Verifies and reads a webhook `POST`: one event per status, each with the recipient it
    /// names. Values for another phone number id are skipped (they belong to another
    /// connection), and so are inbound messages for now.
    pub fn parse_delivery(&self, delivery: &Delivery<'_>) -> Result<Vec<CloudEvent>, ChannelError> {
        self.verify_signature(delivery)?;
        let envelope: Value = serde_json::from_slice(delivery.body)
            .map_err(|error| ChannelError::Malformed(format!("not JSON: {error}")))?;
        if envelope.get("object").and_then(Value::as_str) != Some("whatsapp_business_account") {
            return Err(ChannelError::Malformed(
                "object must be whatsapp_business_account".into(),
            ));
        }
        let mut events = Vec::new();
        let values = array(&envelope, "entry")
            .iter()
            .flat_map(|entry| array(entry, "changes"))
            .filter(|change| change.get("field").and_then(Value::as_str) == Some("messages"))
            .filter_map(|change| change.get("value"));
        for value in values {
            let number = value
                .pointer("/metadata/phone_number_id")
                .and_then(Value::as_str);
            if number.is_some_and(|n| n != self.phone_number_id) {
                tracing::warn!(
                    phone_number_id = number,
                    "webhook value for another phone number id skipped"
                );
                continue;
            }
            let skipped = array(value, "messages").len();
            if skipped > 0 {
                tracing::warn!(
                    skipped,
                    "inbound Cloud API messages are not handled yet; skipped"
                );
            }
            for status in array(value, "statuses") {
                if let Some(event) = status_event(status, delivery.received_at) {
                    events.push(event);
                }
            }
        }
        Ok(events)
    }
}

fn valid_version(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else {
        return false;
    };
    let mut parts = rest.split('.');
    let digits = |part: Option<&str>| {
        part.is_some_and(|p| !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A status webhook, with what it says about the recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudEvent {
    pub inbound: Inbound,
    /// `recipient_id` of a status: the `wa_id` the message went to.
    pub recipient: Option<String>,
}

fn status_event(status: &Value, received_at: Timestamp) -> Option<CloudEvent> {
    let wamid = status.get("id").and_then(Value::as_str)?;
    let word = status.get("status").and_then(Value::as_str)?;
    let parsed = match word {
        "sent" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "read" => MessageStatus::Read,
        "failed" => MessageStatus::Failed,
        // Other words (e.g. "deleted") say nothing about delivery.
        _ => return None,
    };
    let reason = (parsed == MessageStatus::Failed).then(|| {
        array(status, "errors")
            .first()
            .map_or_else(|| "failed (no reason given)".to_owned(), error_text)
    });
    let at = status
        .get("timestamp")
        .and_then(|t| {
            t.as_str()
                .and_then(|s| s.parse::<i64>().ok())
                .or_else(|| t.as_i64())
        })
        .map_or(received_at, |secs| Timestamp(secs.saturating_mul(1000)));
    Some(CloudEvent {
        inbound: Inbound {
            event: InboundEvent::Status(StatusUpdate {
                // Meta's dedupe key of a status delivery (§1.2).
                provider_id: format!("{wamid}:{word}"),
                message_provider_id: wamid.to_owned(),
                status: parsed,
                reason,
                at,
            }),
            raw: status.to_string(),
        },
        recipient: status
            .get("recipient_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// `(code) title: details`, from a Graph error object of a response or a status.
fn error_text(error: &Value) -> String {
    let code = error.get("code").and_then(Value::as_i64);
    let title = error
        .get("title")
        .or_else(|| error.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("error");
    let details = error
        .pointer("/error_data/details")
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty() && *d != title);
    let mut text = match code {
        Some(code) => format!("({code}) {title}"),
        None => title.to_owned(),
    };
    if let Some(details) = details {
        text.push_str(": ");
        text.push_str(details);
    }
    text.chars().take(500).collect()
}

/// The JSON of a send (§2.8, §2.9): text, or a template whose call (name, language, body
/// parameters) comes as the message body in JSON. Files are refused (permanent) for now, so they
/// show as failed with the reason rather than vanish.
pub fn request_body(message: &OutboundMessage) -> Result<Value, ChannelError> {
    let to = message.chat_id.trim().trim_start_matches('+');
    if to.is_empty() {
        return Err(ChannelError::Permanent(
            "the chat has no WhatsApp id".into(),
        ));
    }
    let mut body = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
    });
    match message.kind {
        MessageKind::Text => {
            if message.body.trim().is_empty() {
                return Err(ChannelError::Permanent("the message has no text".into()));
            }
            if message.body.chars().count() > MAX_TEXT_CHARS {
                return Err(ChannelError::Permanent(format!(
                    "WhatsApp accepts at most {MAX_TEXT_CHARS} characters of text"
                )));
            }
            body["type"] = json!("text");
            body["text"] = json!({ "body": message.body, "preview_url": false });
        }
        MessageKind::Template => {
            let call: TemplateCall = serde_json::from_str(&message.body).map_err(|error| {
                ChannelError::Permanent(format!("the template call is not valid: {error}"))
            })?;
            let mut template = json!({ "name": call.name, "language": { "code": call.language } });
            if !call.params.is_empty() {
                let parameters: Vec<Value> = call
                    .params
                    .iter()
                    .map(|text| json!({ "type": "text", "text": text }))
                    .collect();
                template["components"] = json!([{ "type": "body", "parameters": parameters }]);
            }
            body["type"] = json!("template");
            body["template"] = template;
        }
        other => {
            return Err(ChannelError::Permanent(format!(
                "sending {other} messages on WhatsApp Cloud API connections is not available yet"
            )));
        }
    }
    if let Some(quoted) = &message.quoted_provider_id {
        body["context"] = json!({ "message_id": quoted });
    }
    Ok(body)
}

/// Reads Meta's answer to a send: the receipt, or the error the sender acts on.
pub fn classify_response(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<SendReceipt, ChannelError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) {
        let id = parsed
            .as_ref()
            .and_then(|v| v.pointer("/messages/0/id"))
            .and_then(Value::as_str)
            .filter(|id| !id.trim().is_empty());
        return match id {
            Some(id) => Ok(SendReceipt {
                provider_id: id.to_owned(),
                accepted_at: now,
            }),
            // Accepted or not, we cannot tell: never send it again blindly.
            None => Err(ChannelError::OutcomeUnknown(format!(
                "the provider answered {status} without a message id"
            ))),
        };
    }
    Err(graph_failure(status, retry_after, parsed.as_ref()))
}

/// The error of a Graph answer that is not a success: by `error.code` first, HTTP status second.
fn graph_failure(status: u16, retry_after: Option<&str>, parsed: Option<&Value>) -> ChannelError {
    let error = parsed.and_then(|v| v.get("error"));
    let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
    let text = error.map_or_else(|| format!("HTTP {status}"), error_text);
    let asked_ms = retry_after
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| secs.saturating_mul(1000));
    let paused = |default_ms: u64| ChannelError::RateLimited {
        retry_after_ms: asked_ms.unwrap_or(default_ms),
    };
    match code {
        Some(130429) => paused(THROUGHPUT_PAUSE_MS),
        Some(4 | 80007) => paused(CALL_LIMIT_PAUSE_MS),
        Some(131057) => paused(UPGRADE_PAUSE_MS),
        Some(131047) => ChannelError::Permanent(format!("{WINDOW_CLOSED} — {text}")),
        // Pair rate limit: only this recipient must wait, which a retry with backoff does
        // (later messages of the chat wait behind it anyway).
        Some(131056) => ChannelError::Temporary(text),
        Some(1 | 2 | 131000) => ChannelError::Temporary(text),
        Some(0 | 190) => ChannelError::CredentialsRefused(format!(
            "the access token is invalid or expired — {text}"
        )),
        Some(_) if status == 429 => paused(CALL_LIMIT_PAUSE_MS),
        Some(_) if status >= 500 => ChannelError::Temporary(text),
        Some(_) => ChannelError::Permanent(text),
        None if status == 429 => paused(CALL_LIMIT_PAUSE_MS),
        None if status >= 500 || status == 408 => ChannelError::Temporary(text),
        None => ChannelError::Permanent(text),
    }
}

/// A transport failure of `reqwest`: before the request left (nothing to fear from a retry) or
/// after (Meta may have it).
fn classify_transport(error: &reqwest::Error) -> ChannelError {
    if error.is_connect() || error.is_builder() {
        ChannelError::Temporary(format!("cannot reach the provider: {error}"))
    } else if error.is_timeout() {
        ChannelError::OutcomeUnknown(format!("the provider did not answer in time: {error}"))
    } else {
        ChannelError::OutcomeUnknown(format!("the connection broke during the send: {error}"))
    }
}

/// The fields asked of each template (§2.9): what sending and showing one needs.
pub const TEMPLATE_FIELDS: &str = "name,language,status,category,components";
/// Templates asked per page; Meta caps the page size itself, and follows with a cursor.
const TEMPLATE_PAGE_SIZE: u32 = 100;
/// A bound on the pages of one sync, so a provider that keeps answering a next page cannot keep
/// us in the loop (a WhatsApp Business Account holds at most a few thousand templates).
const MAX_TEMPLATE_PAGES: usize = 200;

/// One page of `GET /{waba_id}/message_templates`: its templates and the cursor of the next page.
/// Meta leaves `paging.next` out on the last page (its `cursors` are there on every page), so the
/// `after` cursor is followed only while `next` is present. Entries without a name or language
/// cannot be sent and are skipped.
pub fn templates_page(
    body: &Value,
) -> Result<(Vec<ProviderTemplate>, Option<String>), ChannelError> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| ChannelError::Malformed("the template list has no data array".into()))?;
    let text = |entry: &Value, key: &str| {
        entry
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let mut templates = Vec::with_capacity(data.len());
    for entry in data {
        let (Some(name), Some(language)) = (text(entry, "name"), text(entry, "language")) else {
            tracing::warn!(entry = %entry, "template without name or language skipped");
            continue;
        };
        templates.push(ProviderTemplate {
            name,
            language,
            status: text(entry, "status").unwrap_or_else(|| "UNKNOWN".to_owned()),
            category: text(entry, "category").unwrap_or_default(),
            components: entry
                .get("components")
                .filter(|c| c.is_array())
                .cloned()
                .unwrap_or_else(|| json!([])),
        });
    }
    let next = body
        .pointer("/paging/next")
        .and_then(Value::as_str)
        .filter(|next| !next.is_empty())
        .and_then(|_| body.pointer("/paging/cursors/after"))
        .and_then(Value::as_str)
        .filter(|after| !after.is_empty())
        .map(str::to_owned);
    Ok((templates, next))
}

/// A transport failure of a read: nothing changes at the provider, so it is worth trying again.
fn read_transport(error: &reqwest::Error) -> ChannelError {
    if error.is_timeout() {
        ChannelError::Temporary(format!("the provider did not answer in time: {error}"))
    } else {
        ChannelError::Temporary(format!("cannot reach the provider: {error}"))
    }
}

/// What Graph answered to one call.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    bytes: Vec<u8>,
}

/// Makes one Graph call and reads the whole answer; `transport` words a failure on the way
/// (whether it may be retried depends on the call).
async fn call(
    request: reqwest::RequestBuilder,
    transport: fn(&reqwest::Error) -> ChannelError,
) -> Result<Answer, ChannelError> {
    let response = request.send().await.map_err(|error| transport(&error))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.bytes().await.map_err(|error| transport(&error))?;
    Ok(Answer {
        status,
        retry_after,
        bytes: bytes.to_vec(),
    })
}

/// The sending side of one Cloud API connection: its settings and an HTTP client.
#[derive(Debug, Clone)]
pub struct CloudApi {
    config: CloudConfig,
    http: reqwest::Client,
    url: String,
}

impl CloudApi {
    pub fn new(config: CloudConfig) -> Result<CloudApi, ChannelError> {
        let timeout = config.request_timeout();
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .build()
            .map_err(|error| {
                ChannelError::Permanent(format!("cannot set up the HTTP client: {error}"))
            })?;
        let url = config.messages_url();
        Ok(CloudApi { config, http, url })
    }

    pub fn config(&self) -> &CloudConfig {
        &self.config
    }

    pub async fn send_message(
        &self,
        message: &OutboundMessage,
    ) -> Result<SendReceipt, ChannelError> {
        let body = request_body(message)?;
        let request = self
            .http
            .post(&self.url)
            .bearer_auth(&self.config.access_token)
            .json(&body);
        let answer = call(request, classify_transport).await?;
        classify_response(
            answer.status,
            answer.retry_after.as_deref(),
            &answer.bytes,
            Timestamp::now(),
        )
    }
}

impl CloudApi {
    /// Every template of the connection's WhatsApp Business Account, following the `after`
    /// cursor page by page. The request's own URL is rebuilt for each page rather than taken
    /// from `paging.next`, so the token only ever goes to the configured Graph base.
    pub async fn list_templates(&self) -> Result<Vec<ProviderTemplate>, ChannelError> {
        let base = self.config.templates_url()?;
        let mut templates = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_TEMPLATE_PAGES {
            let mut url = reqwest::Url::parse(&base).map_err(|error| {
                ChannelError::invalid("credentials.graph_base", error.to_string())
            })?;
            {
                let mut query = url.query_pairs_mut();
                query.append_pair("fields", TEMPLATE_FIELDS);
                query.append_pair("limit", &TEMPLATE_PAGE_SIZE.to_string());
                if let Some(cursor) = &after {
                    query.append_pair("after", cursor);
                }
            }
            let request = self.http.get(url).bearer_auth(&self.config.access_token);
            let Answer {
                status,
                retry_after,
                bytes,
            } = call(request, read_transport).await?;
            let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
            if !(200..300).contains(&status) {
                return Err(graph_failure(
                    status,
                    retry_after.as_deref(),
                    parsed.as_ref(),
                ));
            }
            let body = parsed.ok_or_else(|| {
                ChannelError::Malformed(format!(
                    "the provider answered {status} with something other than JSON"
                ))
            })?;
            let (page, next) = templates_page(&body)?;
            templates.extend(page);
            match next {
                // A cursor that does not move would fetch the same page forever.
                Some(cursor) if after.as_deref() != Some(cursor.as_str()) => after = Some(cursor),
                _ => return Ok(templates),
            }
        }
        Err(ChannelError::Permanent(format!(
            "the provider kept answering more pages of templates (over {MAX_TEMPLATE_PAGES}); \
             stopped"
        )))
    }
}

impl Channel for CloudApi {
    fn kind(&self) -> ChannelKind {
        ChannelKind::WhatsappCloud
    }

    fn parse(&self, delivery: &Delivery<'_>) -> Result<Vec<Inbound>, ChannelError> {
        Ok(self
            .config
            .parse_delivery(delivery)?
            .into_iter()
            .map(|event| event.inbound)
            .collect())
    }

    fn send(
        &self,
        message: &OutboundMessage,
    ) -> impl std::future::Future<Output = Result<SendReceipt, ChannelError>> + Send {
        self.send_message(message)
    }

    fn fetch_templates(
        &self,
    ) -> impl std::future::Future<Output = Result<Vec<ProviderTemplate>, ChannelError>> + Send {
        self.list_templates()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn config(base: &str) -> CloudConfig {
        CloudConfig::from_json(
            json!({
                "access_token": "tok-123",
                "phone_number_id": "1062",
                "app_secret": "shh",
                "verify_token": "verify-me",
                "graph_base": base,
                "request_timeout_ms": 300,
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn text(body: &str) -> OutboundMessage {
        OutboundMessage {
            chat_id: "+5511988887777".into(),
            kind: MessageKind::Text,
            body: body.into(),
            media: None,
            quoted_provider_id: None,
            idempotency_key: "k1".into(),
        }
    }

    fn error_body(code: i64) -> Vec<u8> {
        json!({"error": {"message": "m", "type": "OAuthException", "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": "d"}, "fbtrace_id": "x"}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn config_defaults_to_meta_and_refuses_unsafe_values() {
        let plain = CloudConfig::from_json(br#"{"access_token":"t","phone_number_id":"42"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            plain.messages_url(),
            "https://graph.facebook.com/v23.0/42/messages"
        );
        assert_eq!(
            plain.status_wait(),
            Duration::from_millis(DEFAULT_STATUS_WAIT_MS)
        );
        let field = |json: &str| match CloudConfig::from_json(json.as_bytes()) {
            Err(ChannelError::Invalid { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        };
        assert_eq!(
            field(r#"{"access_token":"t","phone_number_id":"42/../x"}"#),
            "credentials.phone_number_id"
        );
        assert_eq!(
            field(r#"{"access_token":" ","phone_number_id":"42"}"#),
            "credentials.access_token"
        );
        assert_eq!(
            field(r#"{"access_token":"t","phone_number_id":"42","graph_base":"ftp://x"}"#),
            "credentials.graph_base"
        );
        assert_eq!(
            field(r#"{"access_token":"t","phone_number_id":"42","api_version":"23"}"#),
            "credentials.api_version"
        );
        assert_eq!(field(r#"["t"]"#), "credentials");
    }

    #[test]
    fn waba_id_is_optional_digits_and_names_the_template_list() {
        let plain = CloudConfig::from_json(br#"{"access_token":"t","phone_number_id":"42"}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            plain.templates_url(),
            Err(ChannelError::Invalid { field, .. }) if field == "credentials.waba_id"
        ));
        let with = CloudConfig::from_json(
            br#"{"access_token":"t","phone_number_id":"42","waba_id":" 777 "}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            with.templates_url().ok().as_deref(),
            Some("https://graph.facebook.com/v23.0/777/message_templates")
        );
        assert!(matches!(
            CloudConfig::from_json(
                br#"{"access_token":"t","phone_number_id":"42","waba_id":"7/../x"}"#
            ),
            Err(ChannelError::Invalid { field, .. }) if field == "credentials.waba_id"
        ));
    }

    #[test]
    fn a_template_page_gives_its_templates_and_the_next_cursor_only_while_next_is_there() {
        let page = json!({"data": [
            {"name": "pedido", "language": "pt_BR", "status": "APPROVED", "category": "UTILITY",
             "components": [{"type": "BODY", "text": "Olá {{1}}"}], "id": "1"},
            {"name": "", "language": "pt_BR"},
            {"name": "sem_status", "language": "en_US"}
        ], "paging": {"cursors": {"before": "B", "after": "A1"}, "next": "https://x/next"}});
        let (templates, next) = templates_page(&page).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next.as_deref(), Some("A1"));
        assert_eq!(templates.len(), 2);
        assert_eq!(templates[0].status, "APPROVED");
        assert_eq!(templates[0].components[0]["text"], "Olá {{1}}");
        assert_eq!(templates[1].status, "UNKNOWN");
        assert_eq!(templates[1].components, json!([]));
        let last = json!({"data": [], "paging": {"cursors": {"before": "B", "after": "A2"}}});
        assert_eq!(templates_page(&last).ok().map(|(_, next)| next), Some(None));
        assert!(matches!(
            templates_page(&json!({"error": "x"})),
            Err(ChannelError::Malformed(_))
        ));
    }

    #[tokio::test]
    async fn template_list_asks_the_waba_with_the_token_and_the_fields() {
        let (base, seen) = one_shot(Some(
            r#"{"data":[{"name":"pedido","language":"pt_BR","status":"APPROVED","category":"UTILITY","components":[]}],"paging":{"cursors":{"after":"X"}}}"#,
        ))
        .await;
        let mut config = config(&base);
        config.waba_id = Some("555".into());
        let api = CloudApi::new(config).unwrap_or_else(|e| panic!("{e}"));
        let templates = api.list_templates().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(templates.len(), 1);
        assert_eq!(templates[0].name, "pedido");
        let request = seen.await.unwrap_or_default();
        assert!(
            request.starts_with("GET /v23.0/555/message_templates?fields=name%2Clanguage%2Cstatus%2Ccategory%2Ccomponents&limit=100 HTTP/1.1"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("authorization: bearer tok-123"),
            "{request}"
        );
    }

    #[test]
    fn text_send_has_the_documented_shape() {
        let mut message = text("Olá, Ana!");
        message.quoted_provider_id = Some("wamid.IN1".into());
        let body = request_body(&message).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "5511988887777",
                "type": "text",
                "text": {"body": "Olá, Ana!", "preview_url": false},
                "context": {"message_id": "wamid.IN1"},
            })
        );
    }

    #[test]
    fn template_send_carries_name_language_and_body_parameters() {
        let mut message = text(r#"{"name":"retomada","language":"pt_BR","params":["Ana"]}"#);
        message.kind = MessageKind::Template;
        let body = request_body(&message).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body["type"], "template");
        assert_eq!(
            body["template"],
            json!({"name": "retomada", "language": {"code": "pt_BR"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]})
        );
        message.body = "not json".into();
        assert!(matches!(
            request_body(&message),
            Err(ChannelError::Permanent(_))
        ));
    }

    #[test]
    fn files_and_empty_texts_are_refused_permanently() {
        let mut file = text("legenda");
        file.kind = MessageKind::Image;
        assert!(matches!(
            request_body(&file),
            Err(ChannelError::Permanent(_))
        ));
        assert!(matches!(
            request_body(&text("  ")),
            Err(ChannelError::Permanent(_))
        ));
    }

    #[test]
    fn success_answers_the_wamid() {
        let body =
            br#"{"messaging_product":"whatsapp","contacts":[{"input":"5511","wa_id":"5511"}],
            "messages":[{"id":"wamid.OUT1"}]}"#;
        let receipt = classify_response(200, None, body, Timestamp(5));
        assert_eq!(
            receipt.map(|r| r.provider_id).ok().as_deref(),
            Some("wamid.OUT1")
        );
    }

    #[test]
    fn a_200_without_message_id_is_an_unknown_outcome_not_a_retry() {
        for body in [&b"{}"[..], b"", b"{\"messages\":[]}", b"<html>"] {
            assert!(matches!(
                classify_response(200, None, body, Timestamp(0)),
                Err(ChannelError::OutcomeUnknown(_))
            ));
        }
    }

    #[test]
    fn throughput_limit_pauses_for_the_time_asked() {
        let limited = classify_response(400, Some("7"), &error_body(130429), Timestamp(0));
        assert_eq!(
            limited.err(),
            Some(ChannelError::RateLimited {
                retry_after_ms: 7_000
            })
        );
        let unsaid = classify_response(400, None, &error_body(130429), Timestamp(0));
        assert_eq!(
            unsaid.err(),
            Some(ChannelError::RateLimited {
                retry_after_ms: THROUGHPUT_PAUSE_MS
            })
        );
        let plain_429 = classify_response(429, Some("3"), b"", Timestamp(0));
        assert_eq!(
            plain_429.err(),
            Some(ChannelError::RateLimited {
                retry_after_ms: 3_000
            })
        );
    }

    #[test]
    fn closed_window_is_permanent_with_the_window_reason() {
        match classify_response(400, None, &error_body(131047), Timestamp(0)) {
            Err(ChannelError::Permanent(reason)) => {
                assert!(reason.starts_with(WINDOW_CLOSED), "{reason}");
                assert!(reason.contains("131047"), "{reason}");
            }
            other => panic!("expected permanent, got {other:?}"),
        }
    }

    #[test]
    fn server_errors_are_temporary_and_client_errors_permanent() {
        assert!(matches!(
            classify_response(503, None, b"oops", Timestamp(0)),
            Err(ChannelError::Temporary(_))
        ));
        assert!(matches!(
            classify_response(500, None, &error_body(1), Timestamp(0)),
            Err(ChannelError::Temporary(_))
        ));
        assert!(matches!(
            classify_response(400, None, &error_body(131056), Timestamp(0)),
            Err(ChannelError::Temporary(_))
        ));
        assert!(matches!(
            classify_response(401, None, &error_body(190), Timestamp(0)),
            Err(ChannelError::CredentialsRefused(_))
        ));
        assert!(matches!(
            classify_response(400, None, &error_body(131026), Timestamp(0)),
            Err(ChannelError::Permanent(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_answers_never_panic(
            status in 100u16..600,
            retry_after in proptest::option::of(".{0,12}"),
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let _ = classify_response(status, retry_after.as_deref(), &body, Timestamp(0));
        }

        #[test]
        fn arbitrary_json_answers_never_panic(
            status in prop_oneof![Just(200u16), Just(400u16), Just(429u16), Just(500u16)],
            code in any::<i64>(),
            id in proptest::option::of(".{0,20}"),
            details in ".{0,40}",
        ) {
            let body = json!({"messages": [{"id": id}], "error": {"code": code,
                "error_data": {"details": details}}}).to_string();
            let _ = classify_response(status, None, body.as_bytes(), Timestamp(0));
        }

        #[test]
        fn arbitrary_webhooks_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let config = config("http://127.0.0.1:9");
            let signature = format!("sha256={}", hex::encode(hmac_sha256(b"shh", &body)));
            let delivery = Delivery {
                headers: vec![(SIGNATURE_HEADER.into(), signature)],
                body: &body,
                received_at: Timestamp(0),
            };
            let _ = config.parse_delivery(&delivery);
        }
    }

    fn signed<'a>(body: &'a [u8], secret: &[u8]) -> Delivery<'a> {
        let signature = format!("sha256={}", hex::encode(hmac_sha256(secret, body)));
        Delivery {
            headers: vec![("X-Hub-Signature-256".into(), signature)],
            body,
            received_at: Timestamp(9_000),
        }
    }

    #[test]
    fn status_webhooks_name_message_status_and_recipient() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA",
        "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "5511", "phone_number_id": "1062"},
            "statuses": [
                {"id": "wamid.A", "status": "sent", "timestamp": "1750000000",
                 "recipient_id": "5511988887777", "unknown_field": 1},
                {"id": "wamid.B", "status": "failed", "timestamp": "1750000100",
                 "recipient_id": "5511988887777",
                 "errors": [{"code": 131047, "title": "Re-engagement message",
                    "error_data": {"details": "More than 24 hours"}}]},
                {"id": "wamid.C", "status": "deleted"}
            ]}}]}]})
        .to_string();
        let events = config("http://x")
            .parse_delivery(&signed(body.as_bytes(), b"shh"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].recipient.as_deref(), Some("5511988887777"));
        let InboundEvent::Status(sent) = &events[0].inbound.event else {
            panic!("not a status");
        };
        assert_eq!(sent.provider_id, "wamid.A:sent");
        assert_eq!(sent.message_provider_id, "wamid.A");
        assert_eq!(sent.status, MessageStatus::Sent);
        assert_eq!(sent.at, Timestamp(1_750_000_000_000));
        let InboundEvent::Status(failed) = &events[1].inbound.event else {
            panic!("not a status");
        };
        assert_eq!(failed.status, MessageStatus::Failed);
        assert_eq!(
            failed.reason.as_deref(),
            Some("(131047) Re-engagement message: More than 24 hours")
        );
    }

    #[test]
    fn webhooks_with_a_wrong_or_missing_signature_are_refused() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let config = config("http://x");
        assert!(config.parse_delivery(&signed(body, b"shh")).is_ok());
        assert!(matches!(
            config.parse_delivery(&signed(body, b"other")),
            Err(ChannelError::Unauthenticated(_))
        ));
        let unsigned = Delivery {
            headers: vec![],
            body,
            received_at: Timestamp(0),
        };
        assert!(matches!(
            config.parse_delivery(&unsigned),
            Err(ChannelError::Unauthenticated(_))
        ));
    }

    #[test]
    fn values_of_another_number_are_skipped() {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"changes": [
            {"field": "messages", "value": {"metadata": {"phone_number_id": "999"},
                "statuses": [{"id": "wamid.X", "status": "sent", "recipient_id": "1"}]}}]}]})
        .to_string();
        let events = config("http://x").parse_delivery(&signed(body.as_bytes(), b"shh"));
        assert_eq!(events.map(|e| e.len()).ok(), Some(0));
    }

    #[test]
    fn subscription_handshake_echoes_the_challenge_only_for_our_token() {
        let config = config("http://x");
        assert_eq!(
            config.verify_subscription("subscribe", "verify-me", "1158201444"),
            Some("1158201444".to_owned())
        );
        assert_eq!(config.verify_subscription("subscribe", "nope", "1"), None);
        assert_eq!(
            config.verify_subscription("unsubscribe", "verify-me", "1"),
            None
        );
    }

    /// A one-shot HTTP server: answers 200 with `json` to the first request (or never answers,
    /// when `None`) and hands back what came.
    async fn one_shot(json: Option<&'static str>) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let base = format!(
            "http://{}",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        let task = tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else {
                return String::new();
            };
            let mut seen = Vec::new();
            let mut buffer = [0u8; 4096];
            // Read until the body announced by Content-Length is in.
            while let Ok(n) = socket.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buffer[..n]);
                let text = String::from_utf8_lossy(&seen).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
            }
            if let Some(json) = json {
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                    json.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            } else {
                // Never answer: the client's timeout fires after the request went out.
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            String::from_utf8_lossy(&seen).to_string()
        });
        (base, task)
    }

    #[tokio::test]
    async fn send_posts_to_the_number_with_the_bearer_token() {
        let (base, seen) = one_shot(Some(r#"{"messages":[{"id":"wamid.HBgM123"}]}"#)).await;
        let api = CloudApi::new(config(&base)).unwrap_or_else(|e| panic!("{e}"));
        let receipt = api.send_message(&text("oi")).await;
        assert_eq!(
            receipt.map(|r| r.provider_id).ok().as_deref(),
            Some("wamid.HBgM123")
        );
        let request = seen.await.unwrap_or_default();
        assert!(
            request.starts_with("POST /v23.0/1062/messages HTTP/1.1"),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("authorization: bearer tok-123"),
            "{request}"
        );
        assert!(
            request.contains(r#""messaging_product":"whatsapp""#),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_timeout_after_the_request_went_out_is_an_unknown_outcome() {
        let (base, _seen) = one_shot(None).await;
        let api = CloudApi::new(config(&base)).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            api.send_message(&text("oi")).await,
            Err(ChannelError::OutcomeUnknown(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_provider_is_temporary() {
        // Bind and drop, so the port is (almost certainly) closed.
        let port = {
            let probe =
                std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
            probe.local_addr().unwrap_or_else(|e| panic!("{e}")).port()
        };
        let api = CloudApi::new(config(&format!("http://127.0.0.1:{port}")))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            api.send_message(&text("oi")).await,
            Err(ChannelError::Temporary(_))
        ));
    }
}
