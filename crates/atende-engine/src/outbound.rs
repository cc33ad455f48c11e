//! The outbound sender (SPEC §7): agent replies are written `queued` in the same transaction as
//! the ticket bump and answered at once; a worker claims due messages, sends them through the
//! connection's adapter and records `sent` or `failed`.
//!
//! Order and pacing:
//! - strict order per chat (contact + connection): the store hands out only the first queued
//!   message of a chat, and never while an earlier one is `sending` (see `atende_db::outbox`);
//! - lanes: interactive (agent, bot), automatic (absence, auto-close…), bulk. A cadenced
//!   connection waits a random delay in [`send_delay_min_ms`, `send_delay_max_ms`] between sends;
//!   with `fast_send`, interactive and automatic messages skip it, bulk never does;
//! - a provider's rate-limit answer pauses that connection only, for the time it asked;
//! - temporary failures retry with exponential backoff and jitter up to a limit, then `failed`;
//! - a send whose outcome is unknown (timeout after the request went out) stays `sending`,
//!   flagged, and is never repeated blindly: the provider's status settles it, or it fails after
//!   [`SenderConfig::unknown_timeout_ms`].
//!
//! Pacing state (cadence gates, rate-limit pauses) lives in the worker's memory: one sender per
//! instance. Several instances sharing PostgreSQL keep per-chat order and never send a message
//! twice (the claim locks it), but each paces its own sends.

use crate::auth::Principal;
use crate::connection_status::status_after_call;
use crate::events::EventKind;
use crate::{Engine, EngineError, EngineResult};
use atende_channels::MediaSource;
use atende_channels::{Channel, ChannelError, OutboundMessage, SendReceipt};
use atende_db::ingest::{BatchDone, BatchWrite};
use atende_db::outbox::{self, Lane, NewReply, Outgoing, Queued, ReplyContext, ReplyMedia};
pub use atende_domain::delivery::{
    ACCEPT_FIRST, Cadence, TICKET_CLOSED, WINDOW_CLOSED, backoff_ms, reply_refusal,
};
use atende_domain::delivery::{WindowFacts, free_form_refusal, has_service_window};
use atende_domain::settings::Settings;
use atende_domain::template::{self, TemplateCall};
use atende_domain::{
    ChannelKind, Connection, ConnectionId, Message, MessageId, MessageKind, MessageStatus,
    TenantId, Ticket, TicketId, Timestamp, ValidationError,
};
use atende_domain::{signature, validation};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

/// Longest reply body, in characters.
pub const MAX_BODY_CHARS: usize = 4096;
/// Longest client idempotency key.
pub const MAX_KEY_CHARS: usize = 200;

/// The reason given when an agent switches the signature off while the tenant enforces it.
pub const SIGNATURE_ENFORCED: &str = "the signature is enforced (enforce_signature)";

/// The sender's wake-up bell and its sends in flight, kept on the engine.
#[derive(Debug, Default)]
pub struct OutboundState {
    wake: Notify,
    /// Claimed messages whose adapter call has not finished: the sender keeps their rows fresh,
    /// so a row left `sending` by a dead process is told apart quickly (see [`sweep`]).
    in_flight: std::sync::Mutex<std::collections::HashSet<MessageId>>,
}

impl OutboundState {
    /// Tells the sender a message was queued (it polls the next due time otherwise).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn woken(&self) {
        self.wake.notified().await;
    }

    fn in_flight(&self) -> Vec<MessageId> {
        self.in_flight
            .lock()
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Holds a message in [`OutboundState::in_flight`] while its send runs.
struct InFlight {
    engine: Engine,
    id: MessageId,
}

impl InFlight {
    fn new(engine: &Engine, id: MessageId) -> InFlight {
        if let Ok(mut ids) = engine.outbound().in_flight.lock() {
            ids.insert(id);
        }
        InFlight {
            engine: engine.clone(),
            id,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut ids) = self.engine.outbound().in_flight.lock() {
            ids.remove(&self.id);
        }
    }
}

/// A file an agent attaches to a reply.
#[derive(Debug, Clone, Default)]
pub struct ReplyFile {
    pub content: Vec<u8>,
    /// The declared type; checked against the content (`webchat::check_upload`).
    pub mime: String,
    pub file_name: Option<String>,
}

/// An agent's reply as the API received it.
#[derive(Debug, Clone, Default)]
pub struct ReplyInput {
    /// The text; with a file, its caption (may then be empty).
    pub body: String,
    pub idempotency_key: Option<String>,
    pub quoted_id: Option<MessageId>,
    pub file: Option<ReplyFile>,
}

/// A WhatsApp Business template to send in a ticket, as the API received it.
#[derive(Debug, Clone, Default)]
pub struct TemplateInput {
    /// Name and language of a template synced for the ticket's connection.
    pub name: String,
    pub language: String,
    /// The body's parameters, `{{1}}` first.
    pub params: Vec<String>,
    pub idempotency_key: Option<String>,
}

/// The stored reply; `created = false` when the idempotency key had been used already.
#[derive(Debug, Clone)]
pub struct ReplyOutcome {
    pub message: Message,
    pub created: bool,
}

fn check_body(body: &str, with_file: bool) -> EngineResult<()> {
    if body.trim().is_empty() && !with_file {
        return Err(ValidationError::field("body", "must not be empty").into());
    }
    if body.chars().count() > MAX_BODY_CHARS {
        return Err(ValidationError::field(
            "body",
            format!("must be at most {MAX_BODY_CHARS} characters"),
        )
        .into());
    }
    Ok(())
}

fn check_key(key: &str) -> EngineResult<()> {
    if key.trim().is_empty() || key.chars().count() > MAX_KEY_CHARS {
        return Err(ValidationError::field(
            "idempotency_key",
            format!("must be 1 to {MAX_KEY_CHARS} characters"),
        )
        .into());
    }
    Ok(())
}

/// A key for a reply whose client gave none.
fn generated_key() -> String {
    format!("reply:{}", hex::encode(rand::random::<[u8; 16]>()))
}

impl Engine {
    /// The sender's wake-up bell.
    pub fn outbound(&self) -> &OutboundState {
        &self.inner.outbound
    }

    /// `POST /api/v1/tickets/{id}/messages`: writes the agent's reply `queued` and bumps the
    /// ticket in one transaction, then answers at once; the sender delivers it. The same
    /// idempotency key again answers the message stored under it (on the same ticket; a key used
    /// on another ticket → 409).
    pub async fn reply(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
        input: ReplyInput,
    ) -> EngineResult<ReplyOutcome> {
        let tenant = principal.tenant()?;
        let profile = principal.profile()?;
        let chat = self.visible_reply_context(principal, ticket_id).await?;
        let key = input.idempotency_key.as_deref();
        if let Some(earlier) = self.stored_under_key(tenant, ticket_id, key).await? {
            return Ok(earlier);
        }
        check_body(&input.body, input.file.is_some())?;
        if let Some(reason) = reply_refusal(profile, chat.ticket.status) {
            return Err(EngineError::InvalidState(reason.to_owned()));
        }
        // Before the file is stored: a refused reply leaves nothing behind.
        self.check_window(tenant, &chat.ticket, chat.channel)
            .await?;
        let (kind, media) = match &input.file {
            Some(file) => {
                let connection =
                    atende_db::connections::get(self.db(), tenant, chat.ticket.connection_id)
                        .await?;
                self.store_reply_file(&connection, file).await?
            }
            None => (MessageKind::Text, None),
        };
        let signature = self
            .signature_for(tenant, principal, &chat, &input.body)
            .await?;
        let now = Timestamp::now();
        let reply = NewReply {
            ticket_id,
            author_user_id: principal.user.id,
            kind,
            media,
            signature,
            body: input.body,
            quoted_id: input.quoted_id,
            idempotency_key: input.idempotency_key.unwrap_or_else(generated_key),
            template_call: None,
            auto_resolve_due: Some(self.due_after_our_message(tenant, &chat, now).await?),
            now,
        };
        self.queue_agent_message(tenant, &reply, chat.wallet).await
    }

    /// `POST /api/v1/tickets/{id}/messages/template`: queues a template of the ticket's WhatsApp
    /// Cloud API connection (synced, approved) with its body parameters; the chat shows the
    /// filled-in text. A template is what may go out when the 24 h window is closed, so the window
    /// never refuses it, and the ticket records that its cycle sent one (which
    /// `waba_send_outside_window` asks for). Who may send when and the idempotency key work as for
    /// [`Engine::reply`]; no signature (the provider approved the text as it is).
    pub async fn send_template(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
        input: TemplateInput,
    ) -> EngineResult<ReplyOutcome> {
        let tenant = principal.tenant()?;
        let profile = principal.profile()?;
        let chat = self.visible_reply_context(principal, ticket_id).await?;
        let key = input.idempotency_key.as_deref();
        if let Some(earlier) = self.stored_under_key(tenant, ticket_id, key).await? {
            return Ok(earlier);
        }
        let name =
            validation::required_text("name", &input.name, 512).map_err(ValidationError::from)?;
        let language = validation::required_text("language", &input.language, 32)
            .map_err(ValidationError::from)?;
        if let Some(reason) = reply_refusal(profile, chat.ticket.status) {
            return Err(EngineError::InvalidState(reason.to_owned()));
        }
        if !has_service_window(chat.channel) {
            return Err(EngineError::InvalidState(format!(
                "templates are sent on WhatsApp Cloud API connections only (this ticket is on {})",
                chat.channel
            )));
        }
        let connection_id = chat.ticket.connection_id;
        let Some(found) =
            atende_db::templates::find(self.db(), tenant, connection_id, &name, &language).await?
        else {
            return Err(ValidationError::field(
                "name",
                format!("no template '{name}' in '{language}' on this connection"),
            )
            .into());
        };
        if !found.status.eq_ignore_ascii_case("approved") {
            return Err(ValidationError::field(
                "name",
                format!(
                    "the provider has not approved this template (status {})",
                    found.status
                ),
            )
            .into());
        }
        let text = template::body_text(&found.components).unwrap_or_default();
        template::check_params(text, &input.params).map_err(ValidationError::from)?;
        let rendered = template::render(text, &input.params);
        let body = if rendered.trim().is_empty() {
            format!("[template {name}]")
        } else {
            rendered
        };
        let call = TemplateCall {
            name: found.name,
            language: found.language,
            params: input.params,
        };
        let call = serde_json::to_string(&call)
            .map_err(|error| EngineError::InvalidState(format!("template call: {error}")))?;
        let now = Timestamp::now();
        let reply = NewReply {
            ticket_id,
            author_user_id: principal.user.id,
            kind: MessageKind::Template,
            media: None,
            signature: String::new(),
            body,
            quoted_id: None,
            idempotency_key: input.idempotency_key.unwrap_or_else(generated_key),
            template_call: Some(call),
            auto_resolve_due: Some(self.due_after_our_message(tenant, &chat, now).await?),
            now,
        };
        self.queue_agent_message(tenant, &reply, chat.wallet).await
    }

    /// The message a client's idempotency key was used for already, if any (on another ticket →
    /// 409).
    async fn stored_under_key(
        &self,
        tenant: TenantId,
        ticket_id: TicketId,
        key: Option<&str>,
    ) -> EngineResult<Option<ReplyOutcome>> {
        let Some(key) = key else {
            return Ok(None);
        };
        check_key(key)?;
        match atende_db::messages::find_by_idempotency_key(self.db(), tenant, key).await? {
            Some(existing) => existing_reply(existing, ticket_id).map(Some),
            None => Ok(None),
        }
    }

    /// Writes an agent's message `queued` with the ticket bump, announces it and rings the
    /// sender. `wallet`: the contact's wallet owners (the visibility facts of the events).
    async fn queue_agent_message(
        &self,
        tenant: TenantId,
        reply: &NewReply,
        wallet: Vec<atende_domain::UserId>,
    ) -> EngineResult<ReplyOutcome> {
        let ticket_id = reply.ticket_id;
        // Through the group commit on SQLite: replies arriving together share one transaction.
        let write = BatchWrite::Reply {
            tenant,
            reply: Box::new(reply.clone()),
        };
        let written = match self.store_write(write).await {
            Ok(BatchDone::Replied(written)) => Ok(written.map(|written| *written)),
            Ok(_) => {
                return Err(EngineError::Conflict(
                    "the writer answered another write".into(),
                ));
            }
            Err(error) => Err(error),
        };
        let written = match outbox::settle_reply(self.db(), tenant, reply, written).await {
            Ok(Queued::Created(written)) => *written,
            Ok(Queued::Existing(existing)) => return existing_reply(existing, ticket_id),
            // The ticket closed between the check and the write.
            Err(atende_db::DbError::NotFound) => {
                return Err(EngineError::InvalidState(TICKET_CLOSED.to_owned()));
            }
            Err(other) => return Err(other.into()),
        };
        if let Some(Some(due)) = reply.auto_resolve_due {
            self.automations().due_time_set(due);
        }
        // Announced before the sender is rung, so `message.created` comes before its updates
        // (a sender that finds it by polling in between may still overtake; statuses are
        // monotonic, so a client keeps the most advanced one). No read: the write answered the
        // ticket as it left it.
        let facts = crate::ticket_events::facts_of(&written.ticket, wallet);
        self.publish_message_with_facts(
            tenant,
            EventKind::MessageCreated,
            &written.ticket,
            &written.message,
            facts.clone(),
        );
        self.publish_ticket_with_facts(
            tenant,
            EventKind::TicketUpdated,
            &written.ticket,
            facts,
            None,
        );
        self.outbound().wake();
        Ok(ReplyOutcome {
            message: written.message,
            created: true,
        })
    }

    /// Refuses a free-form message on a chat whose WhatsApp Business window is closed (SPEC §7,
    /// 422 [`WINDOW_CLOSED`]). Channels without a window cost no read.
    async fn check_window(
        &self,
        tenant: TenantId,
        ticket: &Ticket,
        channel: ChannelKind,
    ) -> EngineResult<()> {
        if !has_service_window(channel) {
            return Ok(());
        }
        let facts = self.window_facts(tenant, ticket.id, channel).await?;
        match free_form_refusal(&facts, Timestamp::now()) {
            Some(reason) => Err(EngineError::WindowClosed(reason.to_owned())),
            None => Ok(()),
        }
    }

    /// What the window rule needs about a ticket's chat on a `channel` connection.
    async fn window_facts(
        &self,
        tenant: TenantId,
        ticket: TicketId,
        channel: ChannelKind,
    ) -> EngineResult<WindowFacts> {
        let chat = atende_db::templates::chat_window(self.db(), tenant, ticket).await?;
        let settings = self.settings(tenant).await?;
        Ok(WindowFacts {
            channel,
            last_inbound_at: chat.last_inbound_at,
            template_in_cycle: chat.template_in_cycle,
            send_outside_window: settings.waba_send_outside_window,
        })
    }

    /// The signature line for an agent's reply on `ticket` (SPEC §7): the agent's name in the
    /// format of the ticket's channel, unless the ticket has it switched off and the tenant does
    /// not enforce it. Empty when unsigned (also for a file without caption).
    async fn signature_for(
        &self,
        tenant: TenantId,
        principal: &Principal,
        chat: &ReplyContext,
        body: &str,
    ) -> EngineResult<String> {
        if body.trim().is_empty() {
            return Ok(String::new());
        }
        let enforced = self.settings(tenant).await?.enforce_signature;
        if !signature::applies(enforced, chat.signature_disabled) {
            return Ok(String::new());
        }
        Ok(signature::prefix(chat.channel, &principal.user.name))
    }

    /// `PATCH /api/v1/tickets/{id}/signature`: switches the agent signature on or off for the
    /// replies of a visible ticket. Switching it off while the tenant has `enforce_signature` →
    /// 409 [`SIGNATURE_ENFORCED`]; switching it on is always allowed.
    pub async fn set_signature(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
        enabled: bool,
    ) -> EngineResult<()> {
        let tenant = principal.tenant()?;
        self.visible_ticket(principal, ticket_id).await?;
        if !enabled && self.settings(tenant).await?.enforce_signature {
            return Err(EngineError::Conflict(SIGNATURE_ENFORCED.to_owned()));
        }
        outbox::set_signature_disabled(self.db(), tenant, ticket_id, !enabled).await?;
        Ok(())
    }

    /// Checks (type, content, size) and stores an attached file; answers the message kind.
    async fn store_reply_file(
        &self,
        connection: &Connection,
        file: &ReplyFile,
    ) -> EngineResult<(MessageKind, Option<ReplyMedia>)> {
        let mime =
            atende_channels::webchat::check_upload(&file.mime, &file.content).map_err(|error| {
                match error {
                    ChannelError::Invalid { field, message } => {
                        EngineError::Validation(ValidationError::field(field, message))
                    }
                    other => {
                        EngineError::Validation(ValidationError::field("file", other.to_string()))
                    }
                }
            })?;
        let stored = self
            .store_webchat_upload(connection, &file.content, &mime, file.file_name.as_deref())
            .await?;
        let MediaSource::Stored { path, sha256 } = stored.source else {
            return Err(EngineError::InvalidState("the file was not stored".into()));
        };
        let media = ReplyMedia {
            path,
            mime: mime.clone(),
            size: stored.size.unwrap_or_default(),
            sha256,
        };
        Ok((kind_of_mime(&mime), Some(media)))
    }

    /// `POST /api/v1/tickets/{id}/messages/{message_id}/resend`: puts a failed outbound message
    /// of a visible ticket back in the queue. A message that is not failed → 409.
    pub async fn resend(
        &self,
        principal: &Principal,
        ticket_id: TicketId,
        message_id: MessageId,
    ) -> EngineResult<Message> {
        let tenant = principal.tenant()?;
        let ticket = self.visible_ticket(principal, ticket_id).await?;
        let current = atende_db::messages::get(self.db(), tenant, message_id).await?;
        if current.ticket_id != ticket_id {
            return Err(EngineError::NotFound);
        }
        let Some(message) = outbox::resend(self.db(), tenant, message_id, Timestamp::now()).await?
        else {
            return Err(EngineError::InvalidState(format!(
                "only a failed outbound message can be resent (this one is {})",
                current.status
            )));
        };
        self.outbound().wake();
        if let Err(error) = self
            .publish_message(tenant, EventKind::MessageUpdated, &ticket, &message)
            .await
        {
            tracing::warn!(%error, message = %message_id, "resend queued; event failed");
        }
        Ok(message)
    }

    /// Announces a status change of a message the sender (or a maintenance action) moved.
    pub(crate) async fn publish_status(&self, message: &Message) {
        let result: EngineResult<()> = async {
            let ticket =
                atende_db::tickets::get(self.db(), message.tenant_id, message.ticket_id).await?;
            self.publish_message(
                message.tenant_id,
                EventKind::MessageUpdated,
                &ticket,
                message,
            )
            .await?;
            Ok(())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, message = %message.id, "cannot announce a message status");
        }
    }
}

/// The message kind of a file type.
fn kind_of_mime(mime: &str) -> MessageKind {
    match mime.split('/').next().unwrap_or_default() {
        "image" => MessageKind::Image,
        "audio" => MessageKind::Audio,
        "video" => MessageKind::Video,
        _ => MessageKind::Document,
    }
}

fn existing_reply(existing: Message, ticket_id: TicketId) -> EngineResult<ReplyOutcome> {
    if existing.ticket_id != ticket_id {
        return Err(EngineError::Conflict(
            "idempotency_key was already used for another message".into(),
        ));
    }
    Ok(ReplyOutcome {
        message: existing,
        created: false,
    })
}

// ---------------------------------------------------------------------------------------------
// The adapter seam and the worker
// ---------------------------------------------------------------------------------------------

/// A boxed send, so adapters with different types sit behind one object.
pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SendReceipt, ChannelError>> + Send + 'a>>;

/// What the sender calls to hand a message to a provider. [`ChannelTransport`] picks the
/// connection's adapter from `atende_channels`; tests pass recording or failing fakes.
pub trait Transport: Send + Sync + 'static {
    fn send<'a>(
        &'a self,
        connection: &'a Connection,
        message: &'a OutboundMessage,
    ) -> SendFuture<'a>;

    /// How long a send of `connection` whose outcome is unknown waits for the provider's status
    /// before the sender concludes the request never arrived and sends it again. `None` (the
    /// default): the channel reports nothing that could settle such a send, so it is never sent
    /// again by itself and fails after [`SenderConfig::unknown_timeout_ms`].
    fn status_wait<'a>(&'a self, connection: &'a Connection) -> WaitFuture<'a> {
        let _ = connection;
        Box::pin(std::future::ready(None))
    }
}

/// A boxed answer of [`Transport::status_wait`].
pub type WaitFuture<'a> = Pin<Box<dyn Future<Output = Option<Duration>> + Send + 'a>>;

/// The real transport: the `atende_channels` adapter of the connection's kind.
pub struct ChannelTransport {
    engine: Engine,
    cloud: crate::whatsapp_cloud::CloudSenders,
}

impl ChannelTransport {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            cloud: crate::whatsapp_cloud::CloudSenders::default(),
        }
    }
}

impl Transport for ChannelTransport {
    fn send<'a>(
        &'a self,
        connection: &'a Connection,
        message: &'a OutboundMessage,
    ) -> SendFuture<'a> {
        Box::pin(async move {
            match connection.kind {
                ChannelKind::Webchat => {
                    let key = connection.public_key.as_deref().unwrap_or_default();
                    match self.engine.webchat(key).await {
                        Ok(Some((_, adapter))) => adapter.send(message).await,
                        Ok(None) => Err(ChannelError::Permanent(
                            "the web-chat connection has no widget key".into(),
                        )),
                        Err(error) => Err(ChannelError::Temporary(error.to_string())),
                    }
                }
                ChannelKind::WhatsappCloud => {
                    let adapter = self.cloud.adapter(&self.engine, connection).await?;
                    adapter.send_message(message).await
                }
                other => Err(ChannelError::Permanent(format!(
                    "sending on {other} connections is not available yet"
                ))),
            }
        })
    }

    fn status_wait<'a>(&'a self, connection: &'a Connection) -> WaitFuture<'a> {
        Box::pin(async move {
            match connection.kind {
                // Meta reports every accepted message in a status webhook naming its recipient.
                ChannelKind::WhatsappCloud => self
                    .cloud
                    .adapter(&self.engine, connection)
                    .await
                    .ok()
                    .map(|adapter| adapter.config().status_wait()),
                _ => None,
            }
        })
    }
}

/// Tunables of the sender; the defaults are the product's.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Tries before a temporary failure becomes `failed`.
    pub max_attempts: i64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// Longest wait for one adapter call before its outcome counts as unknown.
    pub send_timeout: Duration,
    /// A flagged send with no news for this long fails (SPEC §2).
    pub unknown_timeout_ms: i64,
    /// A `sending` row untouched this long belonged to a sender that died: flagged unknown. A
    /// live sender touches its in-flight rows every [`HEARTBEAT_EVERY`], so a few of those.
    pub abandoned_after_ms: i64,
    /// Messages looked at per pass.
    pub batch: i64,
    /// Longest sleep without looking at the store (messages queued by other instances or by
    /// services that do not ring the bell).
    pub max_idle: Duration,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            backoff_base_ms: 2_000,
            backoff_max_ms: 300_000,
            send_timeout: Duration::from_secs(60),
            unknown_timeout_ms: 15 * 60_000,
            abandoned_after_ms: 5_000,
            batch: 256,
            max_idle: Duration::from_secs(1),
        }
    }
}

/// Per-connection pacing in the worker's memory.
#[derive(Debug, Default)]
struct Gate {
    /// Cadenced: no waiting send before this.
    next_free: Option<Instant>,
    /// Rate-limited by the provider until this.
    paused_until: Option<Instant>,
    in_flight: usize,
}

/// What a finished send tells the loop.
struct Done {
    connection: ConnectionId,
    pause_ms: Option<u64>,
    /// When the adapter was called, with the cadence gap to keep after it.
    cadence: Option<(Instant, u64)>,
    /// The provider accepted it: the loop records `sent` with the other successes of the moment
    /// in one statement (other outcomes are rare and recorded by the send itself).
    sent: Option<Sent>,
}

/// A send the provider accepted, waiting to be recorded.
struct Sent {
    tenant: TenantId,
    id: MessageId,
    provider_id: String,
}

/// Shortest time between two looks at the outbox (see the loop).
const MIN_PASS_GAP: Duration = Duration::from_millis(4);
/// How often the loop sweeps flagged and abandoned sends.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// How often the loop marks its in-flight sends as alive.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// Flagged sends looked at per sweep.
const UNCONFIRMED_BATCH: i64 = 500;
/// Pause after a failed look at the store.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(2);

/// Starts the sender with the real adapters and the product's tunables.
pub fn start_sender(engine: &Engine, shutdown: watch::Receiver<bool>) {
    let transport: Arc<dyn Transport> = Arc::new(ChannelTransport::new(engine.clone()));
    tokio::spawn(sender_worker(
        engine.clone(),
        shutdown,
        transport,
        SenderConfig::default(),
    ));
}

/// Sends queued messages until `shutdown` says stop. Started by `workers::start` with the real
/// transport; tests start it with their own.
pub async fn sender_worker(
    engine: Engine,
    mut shutdown: watch::Receiver<bool>,
    transport: Arc<dyn Transport>,
    config: SenderConfig,
) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut gates: HashMap<ConnectionId, Gate> = HashMap::new();
    let mut last_sweep: Option<Instant> = None;
    let mut last_heartbeat = Instant::now();
    let mut sent: Vec<Sent> = Vec::new();
    let mut routes = Routes::new();
    let mut last_pass: Instant;
    loop {
        if *shutdown.borrow() {
            break;
        }
        // Before the next look at the outbox: a chat's next message waits for this one's `sent`.
        record_sent(&engine, &mut sent).await;
        if last_heartbeat.elapsed() >= HEARTBEAT_EVERY {
            last_heartbeat = Instant::now();
            let ids = engine.outbound().in_flight();
            let touched = outbox::platform_touch_sending(engine.db(), &ids, Timestamp::now());
            if let Err(error) = touched.await {
                tracing::warn!(%error, "sender: cannot mark its sends alive");
            }
        }
        if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            last_sweep = Some(Instant::now());
            sweep(&engine, &transport, &config).await;
        }
        last_pass = Instant::now();
        let passed = pass(
            &engine,
            &transport,
            &config,
            &mut gates,
            &mut routes,
            &done_tx,
        );
        let sleep_until = match passed.await {
            Ok(until) => until,
            Err(error) => {
                tracing::warn!(%error, "sender: cannot read the outbox");
                Instant::now() + RETRY_AFTER_ERROR
            }
        };
        tokio::select! {
            _ = tokio::time::sleep_until(sleep_until) => {}
            _ = engine.outbound().woken() => {}
            done = done_rx.recv() => {
                if let Some(done) = done {
                    finish(&mut gates, &mut sent, done);
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
        while let Ok(done) = done_rx.try_recv() {
            finish(&mut gates, &mut sent, done);
        }
        // Under a stream of replies every one rings the bell and every finished send comes back
        // here: looking again at once would cost a write transaction per message. A short gap
        // lets them gather, so one claim and one `sent` record serve many.
        let since = last_pass.elapsed();
        if since < MIN_PASS_GAP {
            tokio::time::sleep(MIN_PASS_GAP - since).await;
            while let Ok(done) = done_rx.try_recv() {
                finish(&mut gates, &mut sent, done);
            }
        }
    }
    // Sends still running record their own success from now on (their message to the loop
    // bounces); the ones already told are recorded here.
    done_rx.close();
    while let Ok(done) = done_rx.try_recv() {
        finish(&mut gates, &mut sent, done);
    }
    record_sent(&engine, &mut sent).await;
    tracing::debug!("sender stopped");
}

/// Records the successes told to the loop, `sent` in one statement, and announces them.
async fn record_sent(engine: &Engine, sent: &mut Vec<Sent>) {
    if sent.is_empty() {
        return;
    }
    let batch: Vec<(TenantId, MessageId, &str)> = sent
        .iter()
        .map(|s| (s.tenant, s.id, s.provider_id.as_str()))
        .collect();
    match outbox::platform_mark_sent_many(engine.db(), &batch, Timestamp::now()).await {
        Ok(moved) => engine.publish_statuses(&moved).await,
        // The rows stay `sending`; the sweep flags them and the provider's status settles them.
        Err(error) => tracing::warn!(%error, "sender: cannot record sent messages"),
    }
    sent.clear();
}

fn finish(gates: &mut HashMap<ConnectionId, Gate>, sent: &mut Vec<Sent>, done: Done) {
    if let Some(one) = done.sent {
        sent.push(one);
    }
    let gate = gates.entry(done.connection).or_default();
    gate.in_flight = gate.in_flight.saturating_sub(1);
    if let Some((started, gap_ms)) = done.cadence {
        let free = started + Duration::from_millis(gap_ms);
        gate.next_free = Some(gate.next_free.map_or(free, |at| at.max(free)));
    }
    if let Some(ms) = done.pause_ms {
        let until = Instant::now() + Duration::from_millis(ms);
        gate.paused_until = Some(gate.paused_until.map_or(until, |p| p.max(until)));
    }
}

/// Recovery of sends whose outcome is unknown (SPEC §7: never lost, never duplicated).
///
/// A send is flagged outcome-unknown when its request may have reached the provider but no
/// answer was recorded: the adapter timed out after sending, or the process died between the
/// claim and the write of the outcome (a `sending` row whose sender stopped touching it, see
/// [`HEARTBEAT_EVERY`]). None of the providers takes an idempotency key, so such a send is never
/// repeated blindly. It is settled instead:
/// - by the provider: a status webhook that names a message id we never learnt settles the
///   chat's one unconfirmed send (strict order per chat: only one can be out without its id),
///   sent, delivered, read or failed as the provider says (`whatsapp_cloud`);
/// - by the provider's silence, on channels whose every accepted message is reported by a status
///   (the WhatsApp Cloud API): no status for [`Transport::status_wait`] after the flag means the
///   request never got there, so the message goes back to the queue, in its place in the chat;
/// - otherwise it fails after [`SenderConfig::unknown_timeout_ms`] with the reason, for the agent
///   to resend.
async fn sweep(engine: &Engine, transport: &Arc<dyn Transport>, config: &SenderConfig) {
    requeue_unconfirmed(engine, transport).await;
    let now = Timestamp::now();
    let expired = outbox::platform_expire_unknown(
        engine.db(),
        now.plus_millis(-config.unknown_timeout_ms),
        "no confirmation from the provider: the outcome of the send is unknown",
        now,
    )
    .await;
    let abandoned = outbox::platform_flag_abandoned(
        engine.db(),
        now.plus_millis(-config.abandoned_after_ms),
        "the send was interrupted: the provider may have received it",
        now,
    )
    .await;
    for moved in [expired, abandoned] {
        match moved {
            Ok(messages) => {
                for message in &messages {
                    engine.publish_status(message).await;
                }
            }
            Err(error) => tracing::warn!(%error, "sender: sweep failed"),
        }
    }
}

/// Puts back in the queue the flagged sends whose provider stayed silent for its status wait.
async fn requeue_unconfirmed(engine: &Engine, transport: &Arc<dyn Transport>) {
    let flagged = match outbox::platform_unconfirmed(engine.db(), UNCONFIRMED_BATCH).await {
        Ok(flagged) => flagged,
        Err(error) => {
            tracing::warn!(%error, "sender: cannot read unconfirmed sends");
            return;
        }
    };
    let mut waits: HashMap<ConnectionId, Option<Duration>> = HashMap::new();
    let mut requeued = false;
    for send in flagged {
        let wait = match waits.get(&send.connection_id) {
            Some(wait) => *wait,
            None => {
                let connection =
                    atende_db::connections::get(engine.db(), send.tenant_id, send.connection_id)
                        .await;
                let wait = match connection {
                    Ok(connection) => transport.status_wait(&connection).await,
                    Err(_) => None,
                };
                waits.insert(send.connection_id, wait);
                wait
            }
        };
        let Some(wait) = wait else {
            continue;
        };
        let now = Timestamp::now();
        let before = now.plus_millis(-i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
        if send.flagged_at > before {
            continue;
        }
        let reason = format!(
            "sent again: the provider reported nothing about the interrupted send in {} s",
            wait.as_secs()
        );
        match outbox::requeue_unconfirmed(
            engine.db(),
            send.tenant_id,
            send.id,
            before,
            &reason,
            now,
        )
        .await
        {
            Ok(Some(message)) => {
                tracing::info!(message = %message.id, "unconfirmed send queued again");
                engine.publish_status(&message).await;
                requeued = true;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "sender: cannot requeue an unconfirmed send"),
        }
    }
    if requeued {
        engine.outbound().wake();
    }
}

/// Connection and cadence of a message.
type Route = Option<(Connection, Cadence)>;

/// Routes the loop looked up lately, with the tenant settings they were built from: a change of
/// the settings (`fast_send`, delays) applies at once, a change of a connection within
/// [`ROUTE_TTL`], and a busy sender does not read the connection on every pass.
type Routes = HashMap<(TenantId, ConnectionId), (Instant, Arc<Settings>, Route)>;
const ROUTE_TTL: Duration = Duration::from_secs(1);

async fn route_of(
    engine: &Engine,
    settings: &Settings,
    tenant: TenantId,
    id: ConnectionId,
) -> EngineResult<Route> {
    let connection = match atende_db::connections::get(engine.db(), tenant, id).await {
        Ok(connection) => connection,
        Err(atende_db::DbError::NotFound) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let cadence = Cadence::of(
        &connection,
        settings.fast_send,
        settings.send_delay_min_ms,
        settings.send_delay_max_ms,
    );
    Ok(Some((connection, cadence)))
}

/// One look at the outbox: starts every send that may go now; answers when to look again.
async fn pass(
    engine: &Engine,
    transport: &Arc<dyn Transport>,
    config: &SenderConfig,
    gates: &mut HashMap<ConnectionId, Gate>,
    routes: &mut Routes,
    done_tx: &mpsc::UnboundedSender<Done>,
) -> EngineResult<Instant> {
    let started = Instant::now();
    let now = Timestamp::now();
    let mut wake_at = started + config.max_idle;
    let due = outbox::platform_due(engine.db(), now, config.batch).await?;
    let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= config.batch;
    // Messages that must wait for their connection, by tenant and the time they may go.
    let mut snoozes: HashMap<(TenantId, Timestamp), Vec<MessageId>> = HashMap::new();
    let mut snooze = |out: &Outgoing, until: Instant| {
        let millis = until.saturating_duration_since(started).as_millis();
        let at = now.plus_millis(i64::try_from(millis).unwrap_or(i64::MAX).saturating_add(1));
        snoozes.entry((out.tenant_id, at)).or_default().push(out.id);
    };
    // Messages that may go now, with their connection and the cadence gap to keep after them.
    let mut ready: Vec<(Outgoing, Connection, Option<u64>)> = Vec::new();
    for out in due {
        let key = (out.tenant_id, out.connection_id);
        // A cache hit: the settings service hands out the same Arc until a setting changes.
        let settings = engine.settings(out.tenant_id).await?;
        let route = match routes.get(&key) {
            Some((at, built_from, route))
                if at.elapsed() < ROUTE_TTL && Arc::ptr_eq(built_from, &settings) =>
            {
                route.clone()
            }
            _ => {
                let route = route_of(engine, &settings, out.tenant_id, out.connection_id).await?;
                routes.insert(key, (Instant::now(), settings, route.clone()));
                route
            }
        };
        let Some((connection, cadence)) = route else {
            // The connection is gone: nothing can send this message.
            if outbox::claim(engine.db(), out.tenant_id, out.id, now)
                .await?
                .is_some()
            {
                let reason = "the connection no longer exists";
                let moved = outbox::mark_failed(engine.db(), out.tenant_id, out.id, reason, now);
                if let Some(message) = moved.await? {
                    engine.publish_status(&message).await;
                }
            }
            continue;
        };
        let gate = gates.entry(out.connection_id).or_default();
        let instant = Instant::now();
        if let Some(paused) = gate.paused_until {
            if paused > instant {
                wake_at = wake_at.min(paused);
                snooze(&out, paused);
                continue;
            }
            gate.paused_until = None;
        }
        if cadence.waits(out.lane) {
            if gate.in_flight > 0 {
                // The gap starts when that send is done: at least the minimum from now.
                snooze(&out, instant + Duration::from_millis(cadence.min_ms));
                continue;
            }
            if let Some(free) = gate.next_free
                && free > instant
            {
                wake_at = wake_at.min(free);
                snooze(&out, free);
                continue;
            }
        }
        // The gap counts from the adapter call (reported when the send is done); while a waiting
        // send is in flight the connection takes no other waiting send.
        let gap_ms = cadence
            .enabled
            .then(|| cadence.gap_ms(rand::random::<f64>()));
        gate.in_flight += 1;
        ready.push((out, connection, gap_ms));
    }
    // One statement claims them all; one announcement round tells they are on their way.
    let ids: Vec<MessageId> = ready.iter().map(|(out, _, _)| out.id).collect();
    let claimed = outbox::platform_claim_many(engine.db(), &ids, now).await;
    let claimed = match claimed {
        Ok(claimed) => claimed,
        Err(error) => {
            for (out, _, _) in &ready {
                let gate = gates.entry(out.connection_id).or_default();
                gate.in_flight = gate.in_flight.saturating_sub(1);
            }
            return Err(error.into());
        }
    };
    let attempts: HashMap<MessageId, i64> =
        claimed.iter().map(|c| (c.message.id, c.attempts)).collect();
    let sending: Vec<Message> = claimed.into_iter().map(|c| c.message).collect();
    engine.publish_statuses(&sending).await;
    let mut started_any = false;
    for (out, connection, gap_ms) in ready {
        let Some(&attempts) = attempts.get(&out.id) else {
            // Another sender took it, or it moved meanwhile.
            let gate = gates.entry(out.connection_id).or_default();
            gate.in_flight = gate.in_flight.saturating_sub(1);
            continue;
        };
        started_any = true;
        let job = Job {
            engine: engine.clone(),
            transport: Arc::clone(transport),
            config: config.clone(),
            out: Outgoing { attempts, ..out },
            connection,
        };
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            let connection = job.connection.id;
            let (tenant, id) = (job.out.tenant_id, job.out.id);
            let engine = job.engine.clone();
            let (pause_ms, started, accepted) = job.run().await;
            let done = Done {
                connection,
                pause_ms,
                cadence: started.zip(gap_ms),
                sent: accepted.map(|receipt| Sent {
                    tenant,
                    id,
                    provider_id: receipt.provider_id,
                }),
            };
            // The loop has stopped (shutdown): record the success here.
            if let Err(bounced) = done_tx.send(done) {
                let mut sent: Vec<Sent> = bounced.0.sent.into_iter().collect();
                record_sent(&engine, &mut sent).await;
            }
        });
    }
    let progressed = started_any || !snoozes.is_empty();
    for ((tenant, until), ids) in snoozes {
        outbox::snooze(engine.db(), tenant, &ids, until).await?;
    }
    // A full batch that moved something: more may be due right now.
    if full && progressed {
        return Ok(Instant::now());
    }
    // Sends under way wake the loop when they finish; the next due time matters once idle.
    if started_any {
        return Ok(wake_at);
    }
    if let Some(next) = outbox::platform_next_due(engine.db()).await? {
        let millis = next.millis().saturating_sub(Timestamp::now().millis());
        if millis > 0 {
            let at = Instant::now() + Duration::from_millis(u64::try_from(millis).unwrap_or(0));
            wake_at = wake_at.min(at);
        }
    }
    Ok(wake_at)
}

/// One claimed message on its way to the provider.
struct Job {
    engine: Engine,
    transport: Arc<dyn Transport>,
    config: SenderConfig,
    out: Outgoing,
    connection: Connection,
}

impl Job {
    /// Automatic (and bulk) messages are nobody's answer to the contact: outside the WhatsApp
    /// Business window they fail with the reason instead of going out free-form (SPEC §7). Agent
    /// replies were judged when written; templates always go.
    async fn window_refusal(&self) -> EngineResult<Option<&'static str>> {
        let out = &self.out;
        let channel = self.connection.kind;
        if out.lane == Lane::Interactive
            || out.kind == MessageKind::Template
            || !has_service_window(channel)
        {
            return Ok(None);
        }
        let facts = self
            .engine
            .window_facts(out.tenant_id, out.ticket_id, channel)
            .await?;
        Ok(free_form_refusal(&facts, Timestamp::now()))
    }

    /// Sends; answers the pause the provider asked for, if any, when the adapter was called,
    /// and the provider's receipt when it accepted the message (the loop records it). Any other
    /// outcome is recorded and announced here.
    async fn run(self) -> (Option<u64>, Option<Instant>, Option<SendReceipt>) {
        let _alive = InFlight::new(&self.engine, self.out.id);
        let out = &self.out;
        let mut started = None;
        let (moved, pause) = match self.attempt(&mut started).await {
            Ok(Attempt::Accepted(receipt)) => return (None, started, Some(receipt)),
            Ok(Attempt::Recorded(moved, pause)) => (moved, pause),
            Err(error) => {
                // The store failed after the claim: the row stays `sending` and the sweep flags
                // it, so it is never sent twice.
                tracing::warn!(%error, message = %out.id, "sender: cannot record an outcome");
                return (None, started, None);
            }
        };
        if let Some(message) = moved {
            if message.status == MessageStatus::Queued {
                // A retry is due later: the worker's poll of the next due time finds it.
                self.engine.outbound().wake();
            }
            self.engine.publish_status(&message).await;
        }
        (pause, started, None)
    }

    async fn attempt(&self, started: &mut Option<Instant>) -> EngineResult<Attempt> {
        let db = self.engine.db();
        let out = &self.out;
        let tenant = out.tenant_id;
        let Some(chat_id) = out.chat_id.clone() else {
            let reason = "the contact has no identity on this channel";
            let moved = outbox::mark_failed(db, tenant, out.id, reason, Timestamp::now()).await?;
            return Ok(Attempt::Recorded(moved, None));
        };
        if let Some(reason) = self.window_refusal().await? {
            let moved = outbox::mark_failed(db, tenant, out.id, reason, Timestamp::now()).await?;
            return Ok(Attempt::Recorded(moved, None));
        }
        let body = if out.kind == MessageKind::Template {
            match atende_db::templates::call_of(db, tenant, out.id).await? {
                Some(call) => call,
                None => {
                    let reason = "the template message has no template to send";
                    let moved =
                        outbox::mark_failed(db, tenant, out.id, reason, Timestamp::now()).await?;
                    return Ok(Attempt::Recorded(moved, None));
                }
            }
        } else {
            out.body.clone()
        };
        let message = OutboundMessage {
            chat_id,
            kind: out.kind,
            body,
            media: out.media.clone(),
            quoted_provider_id: out.quoted_provider_id.clone(),
            idempotency_key: out.idempotency_key.clone(),
        };
        *started = Some(Instant::now());
        let sent = tokio::time::timeout(
            self.config.send_timeout,
            self.transport.send(&self.connection, &message),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ChannelError::OutcomeUnknown(
                "the provider did not answer in time".into(),
            ))
        });
        if let Some(status) = status_after_call(sent.as_ref().map(|_| ()))
            && status != self.connection.status
        {
            // The send's fate does not hang on this: a failed write is only logged.
            let reported = self
                .engine
                .report_connection_status(tenant, self.connection.id, status)
                .await;
            if let Err(error) = reported {
                tracing::warn!(%error, connection = %self.connection.id, "sender: cannot record the connection's status");
            }
        }
        let now = Timestamp::now();
        let (moved, pause) = match sent {
            Ok(receipt) => return Ok(Attempt::Accepted(receipt)),
            Err(ChannelError::RateLimited { retry_after_ms }) => {
                let at = now.plus_millis(i64::try_from(retry_after_ms).unwrap_or(i64::MAX));
                let reason = format!("rate limited by the provider for {retry_after_ms} ms");
                let moved = outbox::retry_later(db, tenant, out.id, &reason, at, true, now).await?;
                (moved, Some(retry_after_ms))
            }
            Err(ChannelError::Temporary(reason)) if out.attempts < self.config.max_attempts => {
                let delay = backoff_ms(
                    out.attempts,
                    self.config.backoff_base_ms,
                    self.config.backoff_max_ms,
                    rand::random::<f64>(),
                );
                let at = now.plus_millis(i64::try_from(delay).unwrap_or(i64::MAX));
                let moved =
                    outbox::retry_later(db, tenant, out.id, &reason, at, false, now).await?;
                (moved, None)
            }
            Err(ChannelError::OutcomeUnknown(reason)) => (
                outbox::mark_outcome_unknown(db, tenant, out.id, &reason, now).await?,
                None,
            ),
            Err(ChannelError::Temporary(reason)) => (
                outbox::mark_failed(db, tenant, out.id, &reason, now).await?,
                None,
            ),
            Err(other) => (
                outbox::mark_failed(db, tenant, out.id, &other.to_string(), now).await?,
                None,
            ),
        };
        Ok(Attempt::Recorded(moved, pause))
    }
}

/// How one send went.
enum Attempt {
    /// The provider took it: `sent` is recorded by the loop, in a batch.
    Accepted(SendReceipt),
    /// Anything else, already recorded: the message as it now is, and the pause the provider
    /// asked for.
    Recorded(Option<Message>, Option<u64>),
}

impl Engine {
    /// Announces the status changes of many messages, with their tickets' visibility facts read
    /// in one go per tenant (two reads, not two per message).
    async fn publish_statuses(&self, messages: &[Message]) {
        let mut by_tenant: HashMap<TenantId, Vec<&Message>> = HashMap::new();
        for message in messages {
            by_tenant
                .entry(message.tenant_id)
                .or_default()
                .push(message);
        }
        for (tenant, messages) in by_tenant {
            let result: EngineResult<()> = async {
                let ids: Vec<TicketId> = messages.iter().map(|m| m.ticket_id).collect();
                let tickets = atende_db::tickets::get_many(self.db(), tenant, &ids).await?;
                let contacts: Vec<_> = tickets.iter().map(|t| t.contact_id).collect();
                let wallets = atende_db::contacts::wallets_of(self.db(), tenant, &contacts).await?;
                let tickets: HashMap<TicketId, Ticket> =
                    tickets.into_iter().map(|t| (t.id, t)).collect();
                for message in messages {
                    let Some(ticket) = tickets.get(&message.ticket_id) else {
                        continue;
                    };
                    let wallet = wallets.get(&ticket.contact_id).cloned().unwrap_or_default();
                    let facts = crate::ticket_events::facts_of(ticket, wallet);
                    self.publish_message_with_facts(
                        tenant,
                        EventKind::MessageUpdated,
                        ticket,
                        message,
                        facts,
                    );
                }
                Ok(())
            }
            .await;
            if let Err(error) = result {
                tracing::warn!(%error, "cannot announce message statuses");
            }
        }
    }
}
