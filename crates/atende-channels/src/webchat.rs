//! The built-in web chat (SPEC §13): a widget page a company embeds on its site, plus a small JSON
//! API a site's backend may call.
//!
//! Authenticity: the widget page gets a server-minted visitor id signed with HMAC-SHA256 (in a
//! cookie and in the page, sent back in the `x-atende-visitor` header, since third-party iframes
//! often lose cookies). A request that carries such a token speaks for that visitor only; a token
//! that does not verify is refused. A request without one must name its visitor (`visitor_id`):
//! that is the site's backend naming its own user. Reading a conversation always needs a token.
//!
//! Provider ids: `<visitor>/<client_message_id>` when the client gives one (a retried POST then
//! dedupes), otherwise `<visitor>/srv-<random>`. Client message ids cannot contain `/`, so two
//! visitors' ids never collide.

use crate::signing::{constant_time_eq, hmac_sha256};
use crate::{
    Channel, ChannelError, Delivery, Inbound, InboundEvent, InboundMedia, InboundMessage,
    MediaSource, OutboundMessage, SendReceipt,
};
use atende_domain::{ChannelKind, MessageKind, Timestamp};
use serde::{Deserialize, Serialize};

/// Header the widget page sends its signed visitor token in.
pub const VISITOR_HEADER: &str = "x-atende-visitor";
/// Longest message text a visitor may send.
pub const MAX_BODY_CHARS: usize = 4096;
pub const MAX_NAME_CHARS: usize = 120;
pub const MAX_VISITOR_ID_CHARS: usize = 128;
pub const MAX_CLIENT_MESSAGE_ID_CHARS: usize = 100;
/// Domain separation: a token of this kind can never be mistaken for another signed value.
const TOKEN_CONTEXT: &str = "atende-webchat-visitor-v1";

/// Name of the visitor cookie of one widget, so one browser can talk to several sites' widgets.
pub fn visitor_cookie_name(connection_key: &str) -> String {
    let safe: String = connection_key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    format!("atende_wv_{safe}")
}

/// A fresh visitor id: `v_` and 32 random hex characters.
pub fn new_visitor_id() -> String {
    format!("v_{}", hex::encode(rand::random::<[u8; 16]>()))
}

/// Signs and verifies visitor tokens: `<visitor id>.<issued ms>.<hex HMAC>`, bound to one widget.
#[derive(Clone)]
pub struct VisitorSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for VisitorSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VisitorSigner(..)")
    }
}

impl VisitorSigner {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, connection_key: &str, visitor_id: &str, issued_at: i64) -> [u8; 32] {
        let message = format!("{TOKEN_CONTEXT}\n{connection_key}\n{visitor_id}\n{issued_at}");
        hmac_sha256(&self.key, message.as_bytes())
    }

    pub fn token(&self, connection_key: &str, visitor_id: &str, issued_at: Timestamp) -> String {
        let mac = self.mac(connection_key, visitor_id, issued_at.millis());
        format!("{visitor_id}.{}.{}", issued_at.millis(), hex::encode(mac))
    }

    /// The visitor id the token was minted for, if it is genuine and for this widget.
    pub fn verify(&self, connection_key: &str, token: &str) -> Option<String> {
        let mut parts = token.trim().rsplitn(3, '.');
        let mac = hex::decode(parts.next()?).ok()?;
        let issued_at: i64 = parts.next()?.parse().ok()?;
        let visitor_id = parts.next()?;
        if visitor_id.is_empty() {
            return None;
        }
        constant_time_eq(&self.mac(connection_key, visitor_id, issued_at), &mac)
            .then(|| visitor_id.to_owned())
    }
}

/// The body of `POST /api/widget/v1/{key}/messages`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebchatPost {
    /// Required unless the request carries a visitor token (which then wins).
    #[serde(default)]
    pub visitor_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub body: String,
    /// Makes a retried POST a duplicate instead of a second message.
    #[serde(default)]
    pub client_message_id: Option<String>,
}

/// The web-chat adapter of one web-chat connection.
#[derive(Debug, Clone)]
pub struct Webchat {
    connection_key: String,
    signer: VisitorSigner,
}

impl Webchat {
    pub fn new(connection_key: impl Into<String>, signer: VisitorSigner) -> Self {
        Self {
            connection_key: connection_key.into(),
            signer,
        }
    }

    pub fn connection_key(&self) -> &str {
        &self.connection_key
    }

    /// A token for `visitor_id` on this widget, issued now.
    pub fn token_for(&self, visitor_id: &str, now: Timestamp) -> String {
        self.signer.token(&self.connection_key, visitor_id, now)
    }

    /// The visitor proven by the request's token (header first, then cookie). `Ok(None)` when it
    /// carries none; a token that does not verify is refused rather than ignored, so a tampered
    /// page cannot fall back to naming someone else.
    pub fn verified_visitor(
        &self,
        delivery: &Delivery<'_>,
    ) -> Result<Option<String>, ChannelError> {
        let cookie_name = visitor_cookie_name(&self.connection_key);
        let token = delivery
            .header(VISITOR_HEADER)
            .filter(|t| !t.trim().is_empty())
            .or_else(|| delivery.cookie(&cookie_name));
        match token {
            None => Ok(None),
            Some(token) => self
                .signer
                .verify(&self.connection_key, token)
                .map(Some)
                .ok_or_else(|| {
                    ChannelError::Unauthenticated(
                        "the visitor token is not valid for this widget; reload the chat page"
                            .into(),
                    )
                }),
        }
    }

    /// Turns a checked visitor and their post into the normalised event. `verified_visitor` wins
    /// over `post.visitor_id`.
    pub fn inbound(
        &self,
        post: WebchatPost,
        verified_visitor: Option<String>,
        media: Option<InboundMedia>,
        received_at: Timestamp,
    ) -> Result<Inbound, ChannelError> {
        let visitor_id = match verified_visitor {
            Some(visitor) => visitor,
            None => visitor_id(post.visitor_id.as_deref())?,
        };
        let body = post.body.trim().to_owned();
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(ChannelError::invalid(
                "body",
                format!("at most {MAX_BODY_CHARS} characters"),
            ));
        }
        if body.is_empty() && media.is_none() {
            return Err(ChannelError::invalid("body", "must not be empty"));
        }
        let name = match post.name.as_deref().map(str::trim) {
            Some(name) if name.chars().count() > MAX_NAME_CHARS => {
                return Err(ChannelError::invalid(
                    "name",
                    format!("at most {MAX_NAME_CHARS} characters"),
                ));
            }
            Some(name) if name.chars().any(char::is_control) => {
                return Err(ChannelError::invalid(
                    "name",
                    "must not contain control characters",
                ));
            }
            Some("") | None => None,
            Some(name) => Some(name.to_owned()),
        };
        let client_message_id = client_message_id(post.client_message_id.as_deref())?;
        let provider_id = match &client_message_id {
            Some(id) => format!("{visitor_id}/{id}"),
            None => format!(
                "{visitor_id}/srv-{}",
                hex::encode(rand::random::<[u8; 12]>())
            ),
        };
        let kind = match media.as_ref().and_then(|m| m.mime.as_deref()) {
            None => MessageKind::Text,
            Some(mime) => media_kind(mime),
        };
        let raw = serde_json::json!({
            "visitor_id": visitor_id,
            "name": name,
            "body": body,
            "client_message_id": client_message_id,
            "media": media.as_ref().map(|m| serde_json::json!({
                "sha256": match &m.source {
                    MediaSource::Stored { sha256, .. } => Some(sha256.as_str()),
                    MediaSource::Provider(_) => None,
                },
                "mime": m.mime, "size": m.size, "file_name": m.file_name,
            })),
        })
        .to_string();
        Ok(Inbound {
            event: InboundEvent::Message(InboundMessage {
                provider_id,
                chat_id: visitor_id,
                sender_name: name,
                phone: None,
                is_group: false,
                kind,
                body,
                media,
                quoted_provider_id: None,
                provider_timestamp: received_at,
                from_me: false,
            }),
            raw,
        })
    }
}

fn visitor_id(given: Option<&str>) -> Result<String, ChannelError> {
    let Some(visitor) = given.map(str::trim).filter(|v| !v.is_empty()) else {
        return Err(ChannelError::invalid(
            "visitor_id",
            "required (or open the chat through the widget page, which identifies the visitor)",
        ));
    };
    if visitor.chars().count() > MAX_VISITOR_ID_CHARS {
        return Err(ChannelError::invalid(
            "visitor_id",
            format!("at most {MAX_VISITOR_ID_CHARS} characters"),
        ));
    }
    if visitor.chars().any(char::is_control) {
        return Err(ChannelError::invalid(
            "visitor_id",
            "must not contain control characters",
        ));
    }
    Ok(visitor.to_owned())
}

fn client_message_id(given: Option<&str>) -> Result<Option<String>, ChannelError> {
    let Some(id) = given.map(str::trim) else {
        return Ok(None);
    };
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':');
    if id.is_empty() || id.len() > MAX_CLIENT_MESSAGE_ID_CHARS || !id.chars().all(allowed) {
        return Err(ChannelError::invalid(
            "client_message_id",
            format!(
                "1 to {MAX_CLIENT_MESSAGE_ID_CHARS} letters, digits, '-', '_', '.' or ':' (a UUID fits)"
            ),
        ));
    }
    Ok(Some(id.to_owned()))
}

/// Largest file a visitor may upload.
pub const MAX_UPLOAD_BYTES: usize = 10 * 1024 * 1024;

/// File types a visitor may upload, each with the first bytes its content must start with (a
/// declared type is not trusted: a script renamed `.png` is refused). `None` = no fixed signature.
const UPLOAD_TYPES: &[(&str, Option<&[u8]>)] = &[
    ("image/jpeg", Some(b"\xFF\xD8\xFF")),
    ("image/png", Some(b"\x89PNG\r\n\x1A\n")),
    ("image/gif", Some(b"GIF8")),
    ("image/webp", Some(b"RIFF")),
    ("application/pdf", Some(b"%PDF-")),
    ("audio/mpeg", None),
    ("audio/ogg", Some(b"OggS")),
    ("audio/webm", Some(b"\x1A\x45\xDF\xA3")),
    ("video/mp4", None),
    ("video/webm", Some(b"\x1A\x45\xDF\xA3")),
    ("text/plain", None),
];

/// Checks an upload against the size and type limits; answers its normalised type.
pub fn check_upload(declared_mime: &str, content: &[u8]) -> Result<String, ChannelError> {
    if content.is_empty() {
        return Err(ChannelError::invalid("file", "is empty"));
    }
    if content.len() > MAX_UPLOAD_BYTES {
        return Err(ChannelError::TooLarge(format!(
            "the file is too large (at most {} MiB)",
            MAX_UPLOAD_BYTES / (1024 * 1024)
        )));
    }
    let mime = declared_mime
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((_, signature)) = UPLOAD_TYPES.iter().find(|(allowed, _)| *allowed == mime) else {
        let allowed: Vec<&str> = UPLOAD_TYPES.iter().map(|(mime, _)| *mime).collect();
        return Err(ChannelError::invalid(
            "file",
            format!(
                "type '{mime}' is not accepted; send one of: {}",
                allowed.join(", ")
            ),
        ));
    };
    if let Some(signature) = signature
        && !content.starts_with(signature)
    {
        return Err(ChannelError::invalid(
            "file",
            format!("the content is not a {mime} file"),
        ));
    }
    if mime == "text/plain" && std::str::from_utf8(content).is_err() {
        return Err(ChannelError::invalid(
            "file",
            "a text/plain file must be UTF-8",
        ));
    }
    Ok(mime)
}

/// The message kind of an uploaded file.
pub fn media_kind(mime: &str) -> MessageKind {
    match mime.split('/').next().unwrap_or_default() {
        "image" => MessageKind::Image,
        "audio" => MessageKind::Audio,
        "video" => MessageKind::Video,
        _ => MessageKind::Document,
    }
}

impl Channel for Webchat {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webchat
    }

    fn parse(&self, delivery: &Delivery<'_>) -> Result<Vec<Inbound>, ChannelError> {
        let visitor = self.verified_visitor(delivery)?;
        let post: WebchatPost = serde_json::from_slice(delivery.body).map_err(|error| {
            if error.is_data() {
                ChannelError::invalid(field_of_serde(&error.to_string()), error.to_string())
            } else {
                ChannelError::Malformed(format!("the body is not valid JSON: {error}"))
            }
        })?;
        Ok(vec![self.inbound(
            post,
            visitor,
            None,
            delivery.received_at,
        )?])
    }

    /// The widget fetches replies from our store, so "sending" is storing: it succeeds at once,
    /// under our own id.
    async fn send(&self, message: &OutboundMessage) -> Result<SendReceipt, ChannelError> {
        Ok(SendReceipt {
            provider_id: format!("out/{}", message.idempotency_key),
            accepted_at: Timestamp::now(),
        })
    }

    /// Sending is storing under our own key: a repeat is the same message.
    fn resend_is_idempotent(&self) -> bool {
        true
    }
}

/// The field serde complains about ("unknown field `x`", "missing field `y`"), else `body`.
fn field_of_serde(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|field| !field.contains(' '))
        .unwrap_or("body")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> Webchat {
        Webchat::new("wc_test", VisitorSigner::new([7; 32]))
    }

    fn delivery<'a>(body: &'a [u8], headers: Vec<(String, String)>) -> Delivery<'a> {
        Delivery {
            headers,
            body,
            received_at: Timestamp(1_000),
        }
    }

    fn message(inbound: &Inbound) -> &InboundMessage {
        match &inbound.event {
            InboundEvent::Message(message) => message,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    #[test]
    fn token_verifies_only_for_its_widget_and_unchanged() {
        let signer = VisitorSigner::new([1; 32]);
        let token = signer.token("wc_a", "v_abc", Timestamp(5));
        assert_eq!(signer.verify("wc_a", &token).as_deref(), Some("v_abc"));
        assert_eq!(signer.verify("wc_b", &token), None, "bound to one widget");
        let forged = token.replacen("v_abc", "v_abd", 1);
        assert_eq!(signer.verify("wc_a", &forged), None);
        assert_eq!(VisitorSigner::new([2; 32]).verify("wc_a", &token), None);
        assert_eq!(signer.verify("wc_a", "garbage"), None);
    }

    #[test]
    fn site_backend_names_its_visitor_and_client_id_makes_the_provider_id() {
        let body = br#"{"visitor_id":"customer-42","name":" Ana ","body":" oi ","client_message_id":"m-1"}"#;
        let events = channel().parse(&delivery(body, vec![])).unwrap();
        let message = message(&events[0]);
        assert_eq!(message.chat_id, "customer-42");
        assert_eq!(message.provider_id, "customer-42/m-1");
        assert_eq!(message.sender_name.as_deref(), Some("Ana"));
        assert_eq!(message.body, "oi");
        assert_eq!(message.provider_timestamp, Timestamp(1_000));
        assert!(events[0].raw.contains("customer-42"));
    }

    #[test]
    fn without_client_id_each_post_gets_a_new_provider_id() {
        let body = br#"{"visitor_id":"v","body":"oi"}"#;
        let a = channel().parse(&delivery(body, vec![])).unwrap();
        let b = channel().parse(&delivery(body, vec![])).unwrap();
        assert_ne!(message(&a[0]).provider_id, message(&b[0]).provider_id);
    }

    #[test]
    fn signed_visitor_wins_over_the_named_one() {
        let channel = channel();
        let token = channel.token_for("v_real", Timestamp(1));
        let body = br#"{"visitor_id":"someone-else","body":"oi"}"#;
        let header = vec![(VISITOR_HEADER.to_owned(), token.clone())];
        assert_eq!(
            message(&channel.parse(&delivery(body, header)).unwrap()[0]).chat_id,
            "v_real"
        );
        let cookie = vec![(
            "cookie".to_owned(),
            format!("{}={token}", visitor_cookie_name("wc_test")),
        )];
        assert_eq!(
            message(&channel.parse(&delivery(body, cookie)).unwrap()[0]).chat_id,
            "v_real"
        );
    }

    #[test]
    fn tampered_token_is_refused() {
        let header = vec![(VISITOR_HEADER.to_owned(), "v_x.1.00ff".to_owned())];
        let error = channel()
            .parse(&delivery(br#"{"body":"oi"}"#, header))
            .unwrap_err();
        assert!(matches!(error, ChannelError::Unauthenticated(_)));
    }

    #[test]
    fn bad_input_names_the_field() {
        let cases: [(&[u8], &str); 5] = [
            (br#"{"body":"oi"}"#, "visitor_id"),
            (br#"{"visitor_id":"v","body":"   "}"#, "body"),
            (
                br#"{"visitor_id":"v","body":"oi","client_message_id":"a/b"}"#,
                "client_message_id",
            ),
            (br#"{"visitor_id":"v","body":"oi","colour":1}"#, "colour"),
            (
                br#"{"visitor_id":"v","body":"oi","name":"a\u0007"}"#,
                "name",
            ),
        ];
        for (body, field) in cases {
            match channel().parse(&delivery(body, vec![])) {
                Err(ChannelError::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!(
                    "{}: expected invalid {field}, got {other:?}",
                    String::from_utf8_lossy(body)
                ),
            }
        }
        let long = format!(
            r#"{{"visitor_id":"v","body":"{}"}}"#,
            "a".repeat(MAX_BODY_CHARS + 1)
        );
        assert!(matches!(
            channel().parse(&delivery(long.as_bytes(), vec![])),
            Err(ChannelError::Invalid { ref field, .. }) if field == "body"
        ));
        assert!(matches!(
            channel().parse(&delivery(b"not json", vec![])),
            Err(ChannelError::Malformed(_))
        ));
    }

    #[test]
    fn uploads_are_checked_for_type_content_and_size() {
        assert_eq!(
            check_upload("image/PNG; x=1", b"\x89PNG\r\n\x1A\nrest").as_deref(),
            Ok("image/png")
        );
        assert!(matches!(
            check_upload("image/png", b"<script>"),
            Err(ChannelError::Invalid { .. })
        ));
        assert!(matches!(
            check_upload("application/x-msdownload", b"MZ"),
            Err(ChannelError::Invalid { .. })
        ));
        assert!(matches!(
            check_upload("text/plain", b""),
            Err(ChannelError::Invalid { .. })
        ));
        assert!(matches!(
            check_upload("text/plain", &[0xff, 0xfe]),
            Err(ChannelError::Invalid { .. })
        ));
        let big = vec![b'a'; MAX_UPLOAD_BYTES + 1];
        assert!(matches!(
            check_upload("text/plain", &big),
            Err(ChannelError::TooLarge(_))
        ));
        assert_eq!(media_kind("image/png"), MessageKind::Image);
        assert_eq!(media_kind("application/pdf"), MessageKind::Document);
    }

    #[tokio::test]
    async fn sending_succeeds_at_once_under_our_own_id() {
        let receipt = channel()
            .send(&OutboundMessage {
                chat_id: "v".into(),
                kind: MessageKind::Text,
                body: "olá".into(),
                media: None,
                quoted_provider_id: None,
                idempotency_key: "k1".into(),
            })
            .await
            .unwrap();
        assert_eq!(receipt.provider_id, "out/k1");
    }

    #[tokio::test]
    async fn a_repeated_send_is_the_same_message_so_it_may_be_requeued() {
        let web = channel();
        let message = OutboundMessage {
            chat_id: "v".into(),
            kind: MessageKind::Text,
            body: "olá".into(),
            media: None,
            quoted_provider_id: None,
            idempotency_key: "k2".into(),
        };
        assert!(web.resend_is_idempotent());
        let first = web.send(&message).await.unwrap();
        let again = web.send(&message).await.unwrap();
        assert_eq!(first.provider_id, again.provider_id);
    }

    #[tokio::test]
    async fn web_chat_has_no_directory_to_look_contacts_up() {
        let answer = channel().lookup_contacts(&["visitor-1".to_owned()]).await;
        assert!(
            matches!(answer, Err(ChannelError::Unsupported(_))),
            "{answer:?}"
        );
    }
}
