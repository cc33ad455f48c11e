//! Provider adapters behind one [`Channel`] trait: each adapter checks that a delivery is authentic,
//! turns it into normalised [`InboundEvent`]s, and sends outbound messages.
//!
//! Adapters speak their provider's wire format and nothing else: they decide no business rule
//! (filters, routing, tickets are the engine's) and touch no store. The first adapter is the
//! built-in web chat ([`webchat`]); WhatsApp Cloud API, Instagram, Telegram and the Evolution API
//! gateway come behind the same trait.

pub mod cloud_api;
pub mod signing;
pub mod webchat;

use atende_domain::{ChannelKind, MessageKind, MessageStatus, Timestamp};
use std::future::Future;
use thiserror::Error;

/// One HTTP delivery from a provider (or from the widget), as the web edge received it.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    /// Header names lower-case, values as sent.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    pub received_at: Timestamp,
}

impl Delivery<'_> {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The value of cookie `name` from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, value)| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }
}

/// Where the file of an inbound message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// At the provider (a media id or URL): the engine downloads and stores it (SPEC §7).
    Provider(String),
    /// Already stored by us (web-chat uploads), at this path, with this SHA-256 (hex).
    Stored { path: String, sha256: String },
}

/// A file that came with an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMedia {
    pub source: MediaSource,
    pub mime: Option<String>,
    pub size: Option<i64>,
    pub file_name: Option<String>,
}

/// A message from a chat, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// Unique per connection; a repeated delivery carries the same id.
    pub provider_id: String,
    /// External id of the chat: the contact's identity on this channel (phone, JID, IGSID,
    /// Telegram chat id, web-chat visitor id) or the group's id.
    pub chat_id: String,
    /// The name the sender gave themselves on the channel ("push name").
    pub sender_name: Option<String>,
    /// The chat's phone number in E.164 when the channel identifies people by phone (blocked
    /// numbers are matched on it).
    pub phone: Option<String>,
    pub is_group: bool,
    pub kind: MessageKind,
    pub body: String,
    pub media: Option<InboundMedia>,
    /// Provider id of the message this one replies to (a story, for a reply to a story).
    pub quoted_provider_id: Option<String>,
    /// When the provider says the message was sent.
    pub provider_timestamp: Timestamp,
    /// Sent by the connected account itself (e.g. from the phone), not by the contact.
    pub from_me: bool,
}

/// A voice or video call offered to the connected account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundCall {
    pub provider_id: String,
    pub chat_id: String,
    pub sender_name: Option<String>,
    pub phone: Option<String>,
    pub is_group: bool,
    pub video: bool,
    pub at: Timestamp,
}

/// The provider's news about a message we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusUpdate {
    /// Unique id of this status delivery (dedupe key in the inbound log).
    pub provider_id: String,
    /// Provider id of the message the status is about.
    pub message_provider_id: String,
    pub status: MessageStatus,
    /// The provider's reason when `status` is `failed`.
    pub reason: Option<String>,
    pub at: Timestamp,
}

/// Everything an adapter can report, normalised (SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundEvent {
    Message(InboundMessage),
    /// The contact mentioned the account in an Instagram story.
    StoryMention(InboundMessage),
    /// The contact reacted to one of the account's Instagram stories.
    StoryReaction(InboundMessage),
    Call(InboundCall),
    Status(StatusUpdate),
}

impl InboundEvent {
    /// The dedupe key of this event in the inbound log.
    pub fn provider_id(&self) -> &str {
        match self {
            InboundEvent::Message(m)
            | InboundEvent::StoryMention(m)
            | InboundEvent::StoryReaction(m) => &m.provider_id,
            InboundEvent::Call(call) => &call.provider_id,
            InboundEvent::Status(status) => &status.provider_id,
        }
    }
}

/// One event of a delivery with the raw text kept in the inbound log for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub event: InboundEvent,
    /// The provider's JSON for this event (what a later reprocessing would read).
    pub raw: String,
}

/// A message to hand to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    /// The contact's identity on this channel (see [`InboundMessage::chat_id`]).
    pub chat_id: String,
    pub kind: MessageKind,
    /// The text; for kind `template`, the `atende_domain::template::TemplateCall` in JSON.
    pub body: String,
    /// Path of the stored file to send, with its type.
    pub media: Option<(String, String)>,
    pub quoted_provider_id: Option<String>,
    /// Our own key for the message; providers that accept one deduplicate retries with it.
    pub idempotency_key: String,
}

/// The provider accepted the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    /// The provider's id of the sent message (status updates and echoes name it).
    pub provider_id: String,
    pub accepted_at: Timestamp,
}

/// Why a delivery was refused or a send failed. The web edge maps the parse errors to HTTP
/// statuses; the sender maps the send errors to retry decisions.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelError {
    /// The delivery is not authentic (bad signature, token or visitor cookie) → 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// Not parseable at all (not JSON, wrong shape) → 400.
    #[error("{0}")]
    Malformed(String),
    /// Parseable but a field is wrong → 422 naming the field.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Over a size limit → 413.
    #[error("{0}")]
    TooLarge(String),
    /// The provider asked us to slow down; pause this connection for the time given.
    #[error("rate limited by the provider; retry in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// Worth retrying (network error, 5xx).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Retrying will not help (rejected recipient, closed window…).
    #[error("{0}")]
    Permanent(String),
    /// The request may have reached the provider but no answer came (timeout after sending): the
    /// sender must not repeat it blindly; the provider's status or echo settles it.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The provider refused the connection's own credentials (an expired or revoked token):
    /// retrying will not help until an administrator fixes the connection, which shows `error`.
    #[error("the provider refused the connection's credentials: {0}")]
    CredentialsRefused(String),
    /// The channel cannot do this at all (e.g. look contacts up): callers skip it, nothing failed.
    #[error("not supported: {0}")]
    Unsupported(String),
}

impl ChannelError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ChannelError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// What a provider's directory says about one identity (the `validate_contacts` maintenance
/// action, SPEC §10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactLookup {
    /// An account exists, under this canonical id: it may differ from the id asked (WhatsApp
    /// answers the JID that fixes a Brazilian number's 9th digit).
    Found { canonical_id: String },
    /// No account on the channel has this id (e.g. a number not on WhatsApp).
    Missing,
}

/// A message template as the provider lists it (WhatsApp Business templates, SPEC §7).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderTemplate {
    pub name: String,
    /// The language code, e.g. `pt_BR`.
    pub language: String,
    /// The provider's review status, e.g. `APPROVED`, `PENDING`, `REJECTED`.
    pub status: String,
    /// e.g. `UTILITY`, `MARKETING`, `AUTHENTICATION`.
    pub category: String,
    /// The provider's components (header, body, footer, buttons) as it sent them.
    pub components: serde_json::Value,
}

/// The seam every provider adapter implements.
pub trait Channel: Send + Sync {
    fn kind(&self) -> ChannelKind;

    /// Checks authenticity and normalises one delivery into events (a provider may batch several
    /// in one delivery). Nothing is stored here.
    fn parse(&self, delivery: &Delivery<'_>) -> Result<Vec<Inbound>, ChannelError>;

    /// Hands one message to the provider.
    fn send(
        &self,
        message: &OutboundMessage,
    ) -> impl Future<Output = Result<SendReceipt, ChannelError>> + Send;

    /// Whether sending a message again under the same idempotency key can never reach the
    /// contact twice. None of the providers' APIs offer such a key (reference/channels.md §1), so
    /// by default a send whose outcome is unknown must not be repeated blindly.
    fn resend_is_idempotent(&self) -> bool {
        false
    }

    /// Asks the provider's directory about identities (phone numbers, JIDs…), one answer per id
    /// in the order given. Optional: a channel without a directory answers
    /// [`ChannelError::Unsupported`] and its contacts are reported as skipped.
    fn lookup_contacts(
        &self,
        external_ids: &[String],
    ) -> impl Future<Output = Result<Vec<ContactLookup>, ChannelError>> + Send {
        let _ = external_ids;
        std::future::ready(Err(ChannelError::Unsupported(format!(
            "{} connections cannot look contacts up",
            self.kind()
        ))))
    }

    /// Every message template the provider holds for this connection's account, all pages.
    /// Optional: only channels with provider-approved templates have them; the others answer
    /// [`ChannelError::Unsupported`].
    fn fetch_templates(
        &self,
    ) -> impl Future<Output = Result<Vec<ProviderTemplate>, ChannelError>> + Send {
        std::future::ready(Err(ChannelError::Unsupported(format!(
            "{} connections have no message templates",
            self.kind()
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_finds_headers_and_cookies_case_insensitively() {
        let delivery = Delivery {
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("cookie".into(), "a=1; atende_wv=tok.en; b=2".into()),
            ],
            body: b"{}",
            received_at: Timestamp(0),
        };
        assert_eq!(delivery.header("content-type"), Some("application/json"));
        assert_eq!(delivery.cookie("atende_wv"), Some("tok.en"));
        assert_eq!(delivery.cookie("missing"), None);
    }
}
