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
use crate::events::EventKind;
use crate::{Engine, EngineError, EngineResult};
use atende_channels::MediaSource;
use atende_channels::{Channel, ChannelError, OutboundMessage, SendReceipt};
use atende_db::outbox::{self, NewReply, Outgoing, Queued, ReplyMedia};
pub use atende_domain::delivery::{
    ACCEPT_FIRST, Cadence, TICKET_CLOSED, backoff_ms, reply_refusal,
};
use atende_domain::signature;
use atende_domain::{
    ChannelKind, Connection, ConnectionId, Message, MessageId, MessageKind, MessageStatus,
    TenantId, TicketId, Timestamp, ValidationError,
};
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

/// The sender's wake-up bell, kept on the engine.
#[derive(Debug, Default)]
pub struct OutboundState {
    wake: Notify,
}

impl OutboundState {
    /// Tells the sender a message was queued (it polls the next due time otherwise).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    async fn woken(&self) {
        self.wake.notified().await;
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
        let ticket = self.visible_ticket(principal, ticket_id).await?;
        if let Some(key) = &input.idempotency_key {
            check_key(key)?;
            if let Some(existing) =
                atende_db::messages::find_by_idempotency_key(self.db(), tenant, key).await?
            {
                return existing_reply(existing, ticket_id);
            }
        }
        check_body(&input.body, input.file.is_some())?;
        if let Some(reason) = reply_refusal(profile, ticket.status) {
            return Err(EngineError::InvalidState(reason.to_owned()));
        }
        let (kind, media) = match &input.file {
            Some(file) => self.store_reply_file(tenant, &ticket, file).await?,
            None => (MessageKind::Text, None),
        };
        let signature = self.signature_for(principal, &ticket, &input.body).await?;
        let reply = NewReply {
            ticket_id,
            author_user_id: principal.user.id,
            kind,
            media,
            signature,
            body: input.body,
            quoted_id: input.quoted_id,
            idempotency_key: input.idempotency_key.unwrap_or_else(generated_key),
            now: Timestamp::now(),
        };
        let message = match outbox::queue_reply(self.db(), tenant, &reply).await {
            Ok(Queued::Created(message)) => message,
            Ok(Queued::Existing(existing)) => return existing_reply(existing, ticket_id),
            // The ticket closed between the check and the write.
            Err(atende_db::DbError::NotFound) => {
                return Err(EngineError::InvalidState(TICKET_CLOSED.to_owned()));
            }
            Err(other) => return Err(other.into()),
        };
        // Announced before the sender is rung, so `message.created` comes before its updates
        // (a sender that finds it by polling in between may still overtake; statuses are
        // monotonic, so a client keeps the most advanced one).
        self.after_reply(tenant, ticket_id, &message).await;
        self.outbound().wake();
        Ok(ReplyOutcome {
            message,
            created: true,
        })
    }

    /// The signature line for an agent's reply on `ticket` (SPEC §7): the agent's name in the
    /// format of the ticket's channel, unless the ticket has it switched off and the tenant does
    /// not enforce it. Empty when unsigned (also for a file without caption).
    async fn signature_for(
        &self,
        principal: &Principal,
        ticket: &atende_domain::Ticket,
        body: &str,
    ) -> EngineResult<String> {
        if body.trim().is_empty() {
            return Ok(String::new());
        }
        let tenant = principal.tenant()?;
        let enforced = self.settings(tenant).await?.enforce_signature;
        let disabled = outbox::signature_disabled(self.db(), tenant, ticket.id).await?;
        if !signature::applies(enforced, disabled) {
            return Ok(String::new());
        }
        let connection =
            atende_db::connections::get(self.db(), tenant, ticket.connection_id).await?;
        Ok(signature::prefix(connection.kind, &principal.user.name))
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
        tenant: TenantId,
        ticket: &atende_domain::Ticket,
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
        let connection =
            atende_db::connections::get(self.db(), tenant, ticket.connection_id).await?;
        let stored = self
            .store_webchat_upload(&connection, &file.content, &mime, file.file_name.as_deref())
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

    /// Announces the reply and the bumped ticket and recomputes the auto-resolve due time. The
    /// reply is stored already: a failure here is logged, not returned.
    async fn after_reply(&self, tenant: TenantId, ticket_id: TicketId, message: &Message) {
        let result: EngineResult<()> = async {
            let ticket = atende_db::tickets::get(self.db(), tenant, ticket_id).await?;
            self.publish_message(tenant, EventKind::MessageCreated, &ticket, message)
                .await?;
            self.publish_ticket(tenant, EventKind::TicketUpdated, &ticket, None)
                .await?;
            self.refresh_auto_resolve(tenant, ticket_id).await?;
            Ok(())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(%error, ticket = %ticket_id, "reply stored; follow-up failed");
        }
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

    /// Announces a status change of a message the sender moved.
    async fn publish_status(&self, message: &Message) {
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
}

/// The real transport: the `atende_channels` adapter of the connection's kind.
pub struct ChannelTransport {
    engine: Engine,
}

impl ChannelTransport {
    pub fn new(engine: Engine) -> Self {
        Self { engine }
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
                other => Err(ChannelError::Permanent(format!(
                    "sending on {other} connections is not available yet"
                ))),
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
    /// A `sending` row untouched this long belonged to a sender that died: flagged unknown.
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
            abandoned_after_ms: 5 * 60_000,
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
}

/// How often the loop sweeps flagged and abandoned sends.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
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
    loop {
        if *shutdown.borrow() {
            break;
        }
        if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            last_sweep = Some(Instant::now());
            sweep(&engine, &config).await;
        }
        let sleep_until = match pass(&engine, &transport, &config, &mut gates, &done_tx).await {
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
                    finish(&mut gates, done);
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
        while let Ok(done) = done_rx.try_recv() {
            finish(&mut gates, done);
        }
    }
    tracing::debug!("sender stopped");
}

fn finish(gates: &mut HashMap<ConnectionId, Gate>, done: Done) {
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

/// Fails flagged sends past their deadline and flags abandoned ones.
async fn sweep(engine: &Engine, config: &SenderConfig) {
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

/// Connection and cadence of a message, looked up once per pass.
type Route = Option<(Connection, Cadence)>;

async fn route_of(engine: &Engine, tenant: TenantId, id: ConnectionId) -> EngineResult<Route> {
    let connection = match atende_db::connections::get(engine.db(), tenant, id).await {
        Ok(connection) => connection,
        Err(atende_db::DbError::NotFound) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    let settings = engine.settings(tenant).await?;
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
    done_tx: &mpsc::UnboundedSender<Done>,
) -> EngineResult<Instant> {
    let started = Instant::now();
    let now = Timestamp::now();
    let mut wake_at = started + config.max_idle;
    let due = outbox::platform_due(engine.db(), now, config.batch).await?;
    let full = i64::try_from(due.len()).unwrap_or(i64::MAX) >= config.batch;
    let mut routes: HashMap<(TenantId, ConnectionId), Route> = HashMap::new();
    // Messages that must wait for their connection, by tenant and the time they may go.
    let mut snoozes: HashMap<(TenantId, Timestamp), Vec<MessageId>> = HashMap::new();
    let mut snooze = |out: &Outgoing, until: Instant| {
        let millis = until.saturating_duration_since(started).as_millis();
        let at = now.plus_millis(i64::try_from(millis).unwrap_or(i64::MAX).saturating_add(1));
        snoozes.entry((out.tenant_id, at)).or_default().push(out.id);
    };
    let mut claimed = 0usize;
    for out in due {
        let key = (out.tenant_id, out.connection_id);
        let route = match routes.get(&key) {
            Some(route) => route.clone(),
            None => {
                let route = route_of(engine, out.tenant_id, out.connection_id).await?;
                routes.insert(key, route.clone());
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
        let Some(attempts) = outbox::claim(engine.db(), out.tenant_id, out.id, now).await? else {
            continue;
        };
        // The gap counts from the adapter call (reported when the send is done); while a waiting
        // send is in flight the connection takes no other waiting send.
        let gap_ms = cadence
            .enabled
            .then(|| cadence.gap_ms(rand::random::<f64>()));
        gate.in_flight += 1;
        claimed += 1;
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
            let (pause_ms, started) = job.run().await;
            // The loop may have stopped (shutdown): nothing to tell then.
            let _ = done_tx.send(Done {
                connection,
                pause_ms,
                cadence: started.zip(gap_ms),
            });
        });
    }
    let progressed = claimed > 0 || !snoozes.is_empty();
    for ((tenant, until), ids) in snoozes {
        outbox::snooze(engine.db(), tenant, &ids, until).await?;
    }
    // A full batch that moved something: more may be due right now.
    if full && progressed {
        return Ok(Instant::now());
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
    /// Sends and records the outcome; answers the pause the provider asked for, if any, and
    /// when the adapter was called.
    async fn run(self) -> (Option<u64>, Option<Instant>) {
        let db = self.engine.db();
        let out = &self.out;
        if let Ok(message) = atende_db::messages::get(db, out.tenant_id, out.id).await {
            self.engine.publish_status(&message).await;
        }
        let mut started = None;
        let (moved, pause) = match self.attempt(&mut started).await {
            Ok(moved) => moved,
            Err(error) => {
                // The store failed after the claim: the row stays `sending` and the sweep flags
                // it, so it is never sent twice.
                tracing::warn!(%error, message = %out.id, "sender: cannot record an outcome");
                return (None, started);
            }
        };
        if let Some(message) = moved {
            if message.status == MessageStatus::Queued {
                // A retry is due later: the worker's poll of the next due time finds it.
                self.engine.outbound().wake();
            }
            self.engine.publish_status(&message).await;
        }
        (pause, started)
    }

    async fn attempt(
        &self,
        started: &mut Option<Instant>,
    ) -> EngineResult<(Option<Message>, Option<u64>)> {
        let db = self.engine.db();
        let out = &self.out;
        let tenant = out.tenant_id;
        let chat_id =
            outbox::chat_id(db, tenant, out.contact_id, self.connection.kind.as_str()).await?;
        let Some(chat_id) = chat_id else {
            let reason = "the contact has no identity on this channel";
            let moved = outbox::mark_failed(db, tenant, out.id, reason, Timestamp::now()).await?;
            return Ok((moved, None));
        };
        let message = OutboundMessage {
            chat_id,
            kind: out.kind,
            body: out.body.clone(),
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
        let now = Timestamp::now();
        Ok(match sent {
            Ok(receipt) => (
                outbox::mark_sent(db, tenant, out.id, &receipt.provider_id, now).await?,
                None,
            ),
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
        })
    }
}
