//! The inbound pipeline (SPEC §4), in its order:
//!
//! 1. authenticity is the adapter's job (`atende_channels`), before anything reaches here;
//! 2. the raw delivery is committed to the inbound log, deduplicated on its provider id (a repeat
//!    is answered as a duplicate and changes nothing);
//! 3. filters (calls, groups, Instagram stories, blocked numbers and contacts) keep the event in
//!    the log with its drop reason and make no contact, ticket or message;
//! 4. contact upsert by identity, with the push-name rule;
//! 5. ticket find-or-create under the per-contact lock, routing a new ticket with
//!    `atende_domain::routing`;
//! 6. message + ticket bump in one transaction (`atende_db::ingest`), which also marks the event
//!    processed;
//! 7. events for the live push;
//! 8. automations (`Engine::after_inbound`).
//!
//! A stored delivery that cannot be processed is marked `failed` with the error and reported as
//! handled: the web edge still answers 2xx, since a non-2xx only makes the provider retry it.
//!
//! On SQLite the writes of concurrent deliveries are committed in small batches by one writer
//! task (group commit, see [`InboundState`]); on PostgreSQL each delivery has its own transaction.

/// The adapters' types, for the web edge (which depends on the engine only).
pub use atende_channels as channels;

use crate::events::EventKind;
use crate::ticket_events::facts_of;
use crate::{Engine, EngineError, EngineResult};
use atende_channels::webchat::{VisitorSigner, Webchat};
use atende_channels::{
    Channel, ChannelError, Delivery, Inbound, InboundEvent, InboundMedia, InboundMessage,
    MediaSource,
};
use atende_db::inbound_events::{self, RecordOutcome};
use atende_db::ingest::{
    self, Arrival, Arrived, BatchDone, BatchWrite, ContactFacts, ContactUpsert, IngestInput,
    IngestMessage, IngestOutcome, Ingested, MessageMedia, NewTicketRoute,
};
use atende_db::lifecycle::InboundFacts;
use atende_db::{Db, DbError, DbResult};
use atende_domain::hours::{WeeklySchedule, parse_timezone};
use atende_domain::routing::{RoutingInput, WalletCandidate, route_new_ticket};
use atende_domain::settings::Settings;
use atende_domain::{
    ChannelKind, Connection, InboundEventId, InboundOutcome, Message, MessageAuthor,
    MessageDirection, MessageStatus, TenantId, Ticket, Timestamp, User, UserId,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, mpsc, oneshot};

/// Why an event was dropped by the filters (kept as the reason in the inbound log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Calls make no ticket; with `reject_calls` the automations reject them.
    Call,
    GroupMessage,
    InstagramStory,
    BlockedNumber,
    BlockedContact,
}

impl DropReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Call => "call",
            DropReason::GroupMessage => "group message (ignore_group_messages)",
            DropReason::InstagramStory => "instagram story (ignore_instagram_stories)",
            DropReason::BlockedNumber => "blocked number (blocked_numbers)",
            DropReason::BlockedContact => "blocked contact",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the pipeline did with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// The message is stored on `ticket`.
    Stored {
        event: InboundEventId,
        ticket: Box<Ticket>,
        message: Box<Message>,
        /// A new ticket started with this message.
        created: bool,
        /// A closed ticket was reopened (new cycle) with this message.
        reopened: bool,
    },
    /// A provider status was applied to the message we sent (`None`: nothing to change).
    StatusApplied {
        event: InboundEventId,
        message: Option<Box<Message>>,
    },
    /// The provider delivered this event before (or the message is already stored): nothing
    /// changed.
    Duplicate { event: InboundEventId },
    /// Kept in the log with the reason; nothing else was made.
    Dropped {
        event: InboundEventId,
        reason: DropReason,
    },
    /// Stored in the log but could not be processed; the log has the error.
    Failed {
        event: InboundEventId,
        error: String,
    },
}

impl Handled {
    pub fn event_id(&self) -> InboundEventId {
        match self {
            Handled::Stored { event, .. }
            | Handled::StatusApplied { event, .. }
            | Handled::Duplicate { event }
            | Handled::Dropped { event, .. }
            | Handled::Failed { event, .. } => *event,
        }
    }
}

/// The filters of SPEC §4 step 3 for an event, given the stored contact's blocked flag (if the
/// contact exists). `None` = the event goes on.
pub fn drop_reason(
    settings: &Settings,
    event: &InboundEvent,
    contact_blocked: bool,
) -> Option<DropReason> {
    let message = match event {
        InboundEvent::Call(_) => return Some(DropReason::Call),
        InboundEvent::Status(_) => return None,
        InboundEvent::StoryMention(_) | InboundEvent::StoryReaction(_)
            if settings.ignore_instagram_stories =>
        {
            return Some(DropReason::InstagramStory);
        }
        InboundEvent::Message(message)
        | InboundEvent::StoryMention(message)
        | InboundEvent::StoryReaction(message) => message,
    };
    if message.is_group && settings.ignore_group_messages {
        return Some(DropReason::GroupMessage);
    }
    if let Some(phone) = &message.phone
        && settings
            .blocked_numbers
            .iter()
            .any(|blocked| blocked == phone)
    {
        return Some(DropReason::BlockedNumber);
    }
    if contact_blocked {
        return Some(DropReason::BlockedContact);
    }
    None
}

/// Whether `user` is within their own business hours at `now` (SPEC §6 with
/// `use_user_business_hours`): their schedule in their timezone, else the tenant's timezone;
/// a user without hours follows the tenant's hours.
fn user_within_hours(user: &User, settings: &Settings, now: Timestamp) -> bool {
    let timezone = user
        .timezone
        .as_deref()
        .and_then(|name| parse_timezone(name).ok())
        .unwrap_or(settings.timezone);
    let own = user
        .business_hours
        .as_ref()
        .and_then(|json| WeeklySchedule::from_json(json, "business_hours").ok());
    match own {
        Some(schedule) => schedule.is_open_at(now.to_utc(), timezone),
        None => settings
            .business_hours
            .is_open_at(now.to_utc(), settings.timezone),
    }
}

// ---------------------------------------------------------------------------------------------
// Group commit
// ---------------------------------------------------------------------------------------------

/// Most writes committed in one SQLite transaction.
const MAX_BATCH: usize = 256;
/// Pending writes the queue holds before senders wait (back-pressure, not a drop).
const QUEUE_DEPTH: usize = 8192;
/// How long a widget key → connection lookup is reused: the widget API is the hot path, and a
/// connection edit may take this long to reach it.
const CONNECTION_CACHE_TTL: Duration = Duration::from_secs(2);
/// Keys cached at most (a bound against floods of made-up keys).
const CONNECTION_CACHE_MAX: usize = 10_000;

struct WriteJob {
    write: BatchWrite,
    reply: oneshot::Sender<DbResult<BatchDone>>,
}

/// Per-engine state of the pipeline: the web-chat signing key, a short cache of widget keys and,
/// on SQLite, the group-commit writer (started on first use).
#[derive(Default)]
pub struct InboundState {
    visitor_signer: OnceCell<VisitorSigner>,
    writer: OnceCell<mpsc::Sender<WriteJob>>,
    widgets: Mutex<HashMap<String, (Instant, Option<Connection>)>>,
}

/// Drains the queue: takes what is waiting (up to `MAX_BATCH`), applies it with one commit,
/// answers each waiter. While one batch commits the next one fills up, so the batch size follows
/// the load by itself: one write alone when idle, hundreds under a burst.
async fn run_writer(db: Db, mut queue: mpsc::Receiver<WriteJob>) {
    let mut jobs: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (writes, replies): (Vec<BatchWrite>, Vec<_>) =
            jobs.drain(..).map(|job| (job.write, job.reply)).unzip();
        match ingest::write_batch(&db, &writes).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                // The transaction itself failed: nothing of the batch is stored. Each write is
                // tried again alone so one bad batch cannot fail its neighbours.
                tracing::warn!(%error, size = writes.len(), "group commit failed; retrying one by one");
                for (write, reply) in writes.iter().zip(replies) {
                    let result = ingest::write_batch(&db, std::slice::from_ref(write))
                        .await
                        .and_then(|mut results| results.pop().unwrap_or(Err(DbError::NotFound)));
                    let _ = reply.send(result);
                }
            }
        }
    }
}

impl Engine {
    fn inbound_state(&self) -> &InboundState {
        &self.inner.inbound
    }

    /// Applies one write through the group-commit writer on SQLite, or directly on PostgreSQL.
    async fn inbound_write(&self, write: BatchWrite) -> EngineResult<BatchDone> {
        Ok(self.store_write(write).await?)
    }

    /// [`Engine::inbound_write`] with the store's own answer, for callers that interpret its
    /// errors (an agent's reply: `outbox::settle_reply`).
    pub(crate) async fn store_write(&self, write: BatchWrite) -> DbResult<BatchDone> {
        if !matches!(self.db(), Db::Sqlite(_)) {
            let mut results = ingest::write_batch(self.db(), std::slice::from_ref(&write)).await?;
            return results.pop().unwrap_or(Err(DbError::NotFound));
        }
        let sender = self
            .inbound_state()
            .writer
            .get_or_init(|| async {
                let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
                tokio::spawn(run_writer(self.db().clone(), receiver));
                sender
            })
            .await;
        let (reply, answer) = oneshot::channel();
        if let Err(mpsc::error::SendError(job)) = sender.send(WriteJob { write, reply }).await {
            // The writer is gone (the runtime is shutting down): write directly.
            let mut results =
                ingest::write_batch(self.db(), std::slice::from_ref(&job.write)).await?;
            return results.pop().unwrap_or(Err(DbError::NotFound));
        }
        // The writer stopped before answering: the write's fate is unknown to this caller.
        answer
            .await
            .unwrap_or_else(|_| Err(DbError::writer_stopped()))
    }

    /// Step 2: commits the raw delivery to the inbound log.
    async fn inbound_record(
        &self,
        connection: &Connection,
        provider_id: &str,
        raw: &str,
    ) -> EngineResult<RecordOutcome> {
        let write = BatchWrite::Record {
            tenant: connection.tenant_id,
            connection_id: connection.id,
            provider_id: provider_id.to_owned(),
            received_at: Timestamp::now(),
            raw_body: raw.to_owned(),
        };
        match self.inbound_write(write).await? {
            BatchDone::Recorded(outcome) => Ok(outcome),
            _ => Err(EngineError::Conflict(
                "the writer answered another write".into(),
            )),
        }
    }

    /// Steps 5–6: stores one message.
    async fn inbound_store(
        &self,
        tenant: TenantId,
        input: IngestInput,
    ) -> EngineResult<IngestOutcome> {
        match self
            .inbound_write(BatchWrite::Ingest {
                tenant,
                input: Box::new(input),
            })
            .await?
        {
            BatchDone::Ingested(outcome) => Ok(outcome),
            _ => Err(EngineError::Conflict(
                "the writer answered another write".into(),
            )),
        }
    }

    /// Steps 2–6 in one write of the group commit, for the common message (SQLite only): see
    /// [`ingest::Arrival`]. `None` when the event needs the full pipeline from the start: not a
    /// plain message, a quote, or dropped by a settings filter (which the pipeline records).
    async fn inbound_arrival(
        &self,
        connection: &Connection,
        inbound: &Inbound,
    ) -> EngineResult<Option<Arrival>> {
        let InboundEvent::Message(message) = &inbound.event else {
            return Ok(None);
        };
        if !matches!(self.db(), Db::Sqlite(_)) || message.quoted_provider_id.is_some() {
            return Ok(None);
        }
        let settings = self.settings(connection.tenant_id).await?;
        if drop_reason(&settings, &inbound.event, false).is_some() {
            return Ok(None);
        }
        Ok(Some(Arrival {
            tenant: connection.tenant_id,
            connection_id: connection.id,
            channel: connection.kind,
            provider_id: message.provider_id.clone(),
            received_at: Timestamp::now(),
            raw_body: inbound.raw.clone(),
            external_id: message.chat_id.clone(),
            phone: message.phone.clone(),
            is_group: message.is_group,
            new_contact_route: new_contact_route(&settings, connection, message.is_group),
            push_name: push_name(message).map(str::to_owned),
            push_name_renames: !settings.keep_contact_name,
            message: ingest_message(message),
            now: Timestamp::now(),
        }))
    }

    async fn inbound_arrive(&self, arrival: Arrival) -> EngineResult<Arrived> {
        match self
            .inbound_write(BatchWrite::Arrive(Box::new(arrival)))
            .await?
        {
            BatchDone::Arrived(arrived) => Ok(arrived),
            _ => Err(EngineError::Conflict(
                "the writer answered another write".into(),
            )),
        }
    }

    // -----------------------------------------------------------------------------------------
    // The pipeline
    // -----------------------------------------------------------------------------------------

    /// Runs steps 2–8 for one event of `connection` that its adapter already checked and
    /// normalised. Errors only when the delivery could not even be logged (then the provider
    /// should retry); anything after that is reported in [`Handled`].
    pub async fn ingest_event(
        &self,
        connection: &Connection,
        inbound: Inbound,
    ) -> EngineResult<Handled> {
        let tenant = connection.tenant_id;
        let recorded = match self.inbound_arrival(connection, &inbound).await? {
            Some(arrival) => match self.inbound_arrive(arrival).await? {
                Arrived::Stored {
                    event,
                    stored,
                    wallet,
                    facts,
                } => {
                    return Ok(self
                        .inbound_stored(tenant, event, stored, Some(wallet), facts)
                        .await);
                }
                Arrived::Duplicate(event) => RecordOutcome::Duplicate(event),
                Arrived::Recorded(event) => RecordOutcome::New(event),
            },
            None => {
                self.inbound_record(connection, inbound.event.provider_id(), &inbound.raw)
                    .await?
            }
        };
        let event = match recorded {
            RecordOutcome::New(event) => event,
            RecordOutcome::Duplicate(event) => {
                let first = inbound_events::get(self.db(), tenant, event).await?;
                if first.outcome != InboundOutcome::Received {
                    tracing::debug!(connection = %connection.id, provider_id = inbound.event.provider_id(), "duplicate delivery");
                    return Ok(Handled::Duplicate { event });
                }
                // Logged by a delivery whose processing never finished (the process died between
                // the log and the work, so the provider got no 2xx and delivers again): this
                // delivery does the work. It is idempotent if the first one is still running: a
                // stored message is found by its provider id, statuses only move forward.
                tracing::info!(connection = %connection.id, %event, provider_id = inbound.event.provider_id(), "finishing an interrupted delivery");
                event
            }
        };
        match self.inbound_process(connection, event, inbound.event).await {
            Ok(handled) => Ok(handled),
            Err(error) => {
                let text = error.to_string();
                tracing::warn!(connection = %connection.id, event = %event, error = %text, "inbound event failed");
                if let Err(logging) = inbound_events::set_outcome(
                    self.db(),
                    tenant,
                    event,
                    InboundOutcome::Failed,
                    Some(&text),
                    Timestamp::now(),
                )
                .await
                {
                    tracing::error!(event = %event, error = %logging, "cannot mark the inbound event failed");
                }
                Ok(Handled::Failed { event, error: text })
            }
        }
    }

    async fn inbound_mark(
        &self,
        tenant: TenantId,
        event: InboundEventId,
        outcome: InboundOutcome,
        reason: Option<&str>,
    ) -> EngineResult<()> {
        inbound_events::set_outcome(self.db(), tenant, event, outcome, reason, Timestamp::now())
            .await?;
        Ok(())
    }

    async fn inbound_drop(
        &self,
        tenant: TenantId,
        event: InboundEventId,
        reason: DropReason,
    ) -> EngineResult<Handled> {
        self.inbound_mark(
            tenant,
            event,
            InboundOutcome::Dropped,
            Some(reason.as_str()),
        )
        .await?;
        Ok(Handled::Dropped { event, reason })
    }

    async fn inbound_process(
        &self,
        connection: &Connection,
        event: InboundEventId,
        inbound: InboundEvent,
    ) -> EngineResult<Handled> {
        let tenant = connection.tenant_id;
        let settings = self.settings(tenant).await?;
        if let Some(reason) = drop_reason(&settings, &inbound, false) {
            return self.inbound_drop(tenant, event, reason).await;
        }
        let message = match inbound {
            InboundEvent::Status(update) => {
                let changed = ingest::apply_status(
                    self.db(),
                    tenant,
                    connection.id,
                    &update.message_provider_id,
                    update.status,
                    update.reason.as_deref(),
                )
                .await?;
                if let Some(message) = &changed {
                    let ticket =
                        atende_db::tickets::get(self.db(), tenant, message.ticket_id).await?;
                    self.publish_message(tenant, EventKind::MessageUpdated, &ticket, message)
                        .await?;
                }
                self.inbound_mark(tenant, event, InboundOutcome::Processed, None)
                    .await?;
                return Ok(Handled::StatusApplied {
                    event,
                    message: changed.map(Box::new),
                });
            }
            // Filtered above.
            InboundEvent::Call(_) => {
                return self.inbound_drop(tenant, event, DropReason::Call).await;
            }
            InboundEvent::Message(message)
            | InboundEvent::StoryMention(message)
            | InboundEvent::StoryReaction(message) => message,
        };
        self.inbound_message(connection, event, message, &settings)
            .await
    }

    async fn inbound_message(
        &self,
        connection: &Connection,
        event: InboundEventId,
        inbound: InboundMessage,
        settings: &Settings,
    ) -> EngineResult<Handled> {
        let tenant = connection.tenant_id;
        let channel = connection.kind;
        // Step 3, the contact's own blocked flag (the other filters ran already).
        let found = ingest::find_contact(self.db(), tenant, channel, &inbound.chat_id).await?;
        if found.as_ref().is_some_and(|contact| contact.blocked) {
            return self
                .inbound_drop(tenant, event, DropReason::BlockedContact)
                .await;
        }
        // Step 4.
        let upsert = ContactUpsert {
            channel,
            external_id: &inbound.chat_id,
            push_name: push_name(&inbound),
            phone: inbound.phone.as_deref(),
            is_group: inbound.is_group,
            push_name_renames: !settings.keep_contact_name,
        };
        let is_new_contact = found.is_none();
        let contact = ingest::upsert_contact(self.db(), tenant, &upsert, found)
            .await?
            .contact;

        // Steps 5–6. A new contact certainly needs a new ticket: route before the first try.
        let now = Timestamp::now();
        let mut input = IngestInput {
            contact_id: contact.id,
            connection_id: connection.id,
            is_group: inbound.is_group,
            reopen_window_minutes: settings.reopen_window_minutes,
            route: None,
            message: ingest_message(&inbound),
            inbound_event: Some(event),
            now,
        };
        let mut needs_route = is_new_contact;
        let mut attempts = 0;
        let stored = loop {
            attempts += 1;
            if needs_route && input.route.is_none() {
                let route = self
                    .inbound_route(
                        tenant,
                        settings,
                        connection,
                        &contact,
                        inbound.is_group,
                        now,
                    )
                    .await?;
                input.route = Some(route);
            }
            let outcome = self.inbound_store(tenant, input.clone()).await;
            match outcome {
                Ok(IngestOutcome::Stored(stored)) => break stored,
                Ok(IngestOutcome::NeedsRouting) if input.route.is_none() => needs_route = true,
                Ok(IngestOutcome::NeedsRouting) => {
                    return Err(EngineError::Conflict(
                        "the ticket could not be routed".into(),
                    ));
                }
                Ok(IngestOutcome::Duplicate(_)) => {
                    self.inbound_mark(
                        tenant,
                        event,
                        InboundOutcome::Duplicate,
                        Some("message already stored"),
                    )
                    .await?;
                    return Ok(Handled::Duplicate { event });
                }
                // An agent command reopened a ticket of this contact at the same moment (the
                // one-open-ticket index refused ours): look again.
                Err(EngineError::Conflict(_)) if attempts < 3 => {}
                Err(error) => return Err(error),
            }
        };
        Ok(self.inbound_stored(tenant, event, stored, None, None).await)
    }

    /// Steps 7–8 for a stored message. The message is stored and its event marked processed: a
    /// failure from here on is logged, never turned into a failed delivery. `facts`: the ticket's
    /// automation facts when the group commit read them with the ticket.
    async fn inbound_stored(
        &self,
        tenant: TenantId,
        event: InboundEventId,
        stored: Box<Ingested>,
        wallet: Option<Vec<UserId>>,
        facts: Option<InboundFacts>,
    ) -> Handled {
        if let Err(error) = self.inbound_announce(tenant, &stored, wallet).await {
            tracing::warn!(ticket = %stored.ticket.id, %error, "cannot announce an inbound message");
        }
        let Ingested {
            ticket,
            message,
            created,
            reopened,
            ..
        } = *stored;
        if let Err(error) = self
            .after_inbound_with_facts(tenant, &ticket, &message, created || reopened, facts)
            .await
        {
            tracing::warn!(ticket = %ticket.id, message = %message.id, %error, "automations after an inbound message failed");
        }
        Handled::Stored {
            event,
            ticket: Box::new(ticket),
            message: Box::new(message),
            created,
            reopened,
        }
    }

    /// Step 7: the ticket event (created, reopened or updated, with the before-facts when the
    /// visibility of the ticket may have changed) and the message event. `wallet`: the contact's
    /// wallet owners when the caller read them already.
    async fn inbound_announce(
        &self,
        tenant: TenantId,
        stored: &Ingested,
        wallet: Option<Vec<UserId>>,
    ) -> EngineResult<()> {
        let ticket = &stored.ticket;
        // One read of the wallet serves both events (the facts are what `publish_ticket` and
        // `publish_message` compute; the hot path saves their two contact reads).
        let wallet = match wallet {
            Some(wallet) => wallet,
            None => atende_db::contacts::wallet_of(self.db(), tenant, ticket.contact_id).await?,
        };
        let facts = facts_of(ticket, wallet.clone());
        let (kind, before) = if stored.created {
            (EventKind::TicketCreated, None)
        } else {
            let kind = if stored.reopened {
                EventKind::TicketStatusChanged
            } else {
                EventKind::TicketUpdated
            };
            let before = stored
                .before
                .as_ref()
                .filter(|old| visibility_changed(old, ticket))
                .map(|old| facts_of(old, wallet));
            (kind, before)
        };
        self.publish_ticket_with_facts(tenant, kind, ticket, facts.clone(), before);
        self.publish_message_with_facts(
            tenant,
            EventKind::MessageCreated,
            ticket,
            &stored.message,
            facts,
        );
        Ok(())
    }

    /// The routing decision for a new ticket of `contact` (SPEC §6), ready to be stored.
    async fn inbound_route(
        &self,
        tenant: TenantId,
        settings: &Settings,
        connection: &Connection,
        contact: &ContactFacts,
        is_group: bool,
        now: Timestamp,
    ) -> EngineResult<NewTicketRoute> {
        let mut wallet = Vec::new();
        if settings.force_wallet_routing {
            for user_id in atende_db::contacts::wallet_of(self.db(), tenant, contact.id).await? {
                match atende_db::users::get(self.db(), tenant, user_id).await {
                    Ok(user) => wallet.push(WalletCandidate {
                        user_id,
                        presence: user.presence,
                        within_hours: user_within_hours(&user, settings, now),
                    }),
                    Err(DbError::NotFound) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        let designated_admin = if settings.force_admin_on_pending {
            match settings.designated_admin {
                Some(admin) => Some(admin),
                None => atende_db::users::list_admin_ids(self.db(), tenant)
                    .await?
                    .first()
                    .copied(),
            }
        } else {
            None
        };
        let mut routing = RoutingInput {
            force_wallet_routing: settings.force_wallet_routing,
            wallet_overflow: settings.wallet_overflow,
            use_user_business_hours: settings.use_user_business_hours,
            force_admin_on_pending: settings.force_admin_on_pending,
            is_group,
            wallet,
            default_queue: connection.default_queue_id,
            flow: connection.default_flow_id.or(settings.active_bot_flow),
            designated_admin,
        };
        loop {
            let decision = route_new_ticket(&routing);
            let bot_flow = match decision.bot_flow {
                None => None,
                Some(flow) => match atende_db::flows::get(self.db(), tenant, flow).await {
                    Ok(found) => Some((flow, found.version)),
                    // Deleted since it was configured: route as if there were no flow.
                    Err(DbError::NotFound) if routing.flow.is_some() => {
                        routing.flow = None;
                        continue;
                    }
                    Err(error) => return Err(error.into()),
                },
            };
            return Ok(NewTicketRoute {
                status: decision.status,
                owner_id: decision.owner_id,
                queue_id: decision.queue_id,
                bot_flow,
                wallet_overflowed: decision.wallet_overflowed,
            });
        }
    }

    // -----------------------------------------------------------------------------------------
    // Web chat
    // -----------------------------------------------------------------------------------------

    /// The key that signs web-chat visitor tokens: random, made once per installation and kept
    /// encrypted with the secret box in the store, so every instance signs alike.
    async fn inbound_visitor_signer(&self) -> EngineResult<&VisitorSigner> {
        self.inbound_state()
            .visitor_signer
            .get_or_try_init(|| async {
                const META_KEY: &str = "webchat_visitor_key";
                let fresh = self.secrets().encrypt(&rand::random::<[u8; 32]>());
                let stored = atende_db::meta::platform_insert_if_absent(
                    self.db(),
                    META_KEY,
                    &hex::encode(fresh),
                )
                .await?;
                let sealed = hex::decode(stored.trim())
                    .map_err(|e| EngineError::Decrypt(format!("{META_KEY}: {e}")))?;
                let key: [u8; 32] = self
                    .secrets()
                    .decrypt(&sealed)?
                    .try_into()
                    .map_err(|_| EngineError::Decrypt(format!("{META_KEY}: wrong length")))?;
                Ok::<_, EngineError>(VisitorSigner::new(key))
            })
            .await
    }

    /// The web-chat connection whose widget key this is, with its adapter. `None` for an unknown
    /// key or a connection of another kind.
    pub async fn webchat(&self, public_key: &str) -> EngineResult<Option<(Connection, Webchat)>> {
        let Some(connection) = self.inbound_widget_connection(public_key).await? else {
            return Ok(None);
        };
        if connection.kind != ChannelKind::Webchat {
            return Ok(None);
        }
        let adapter = Webchat::new(public_key, self.inbound_visitor_signer().await?.clone());
        Ok(Some((connection, adapter)))
    }

    /// The connection of a widget key, reused for `CONNECTION_CACHE_TTL` (unknown keys too).
    async fn inbound_widget_connection(
        &self,
        public_key: &str,
    ) -> EngineResult<Option<Connection>> {
        let cache = &self.inbound_state().widgets;
        let now = Instant::now();
        if let Ok(cached) = cache.lock()
            && let Some((at, connection)) = cached.get(public_key)
            && now.duration_since(*at) < CONNECTION_CACHE_TTL
        {
            return Ok(connection.clone());
        }
        let connection =
            atende_db::connections::platform_find_by_public_key(self.db(), public_key).await?;
        if let Ok(mut cached) = cache.lock() {
            if cached.len() >= CONNECTION_CACHE_MAX {
                cached.retain(|_, (at, _)| now.duration_since(*at) < CONNECTION_CACHE_TTL);
                if cached.len() >= CONNECTION_CACHE_MAX {
                    cached.clear();
                }
            }
            cached.insert(public_key.to_owned(), (now, connection.clone()));
        }
        Ok(connection)
    }

    /// `POST /api/widget/v1/{key}/messages`: checks and normalises the post with the web-chat
    /// adapter, then runs the pipeline. Answers the visitor and what happened (with the stored
    /// message, also for a repeated post).
    pub async fn ingest_webchat(
        &self,
        public_key: &str,
        delivery: &Delivery<'_>,
    ) -> Result<WebchatReceipt, WebchatError> {
        let (connection, adapter) = self
            .webchat(public_key)
            .await?
            .ok_or(WebchatError::UnknownWidget)?;
        let mut events = adapter.parse(delivery)?;
        let inbound = events
            .pop()
            .ok_or_else(|| ChannelError::Malformed("empty delivery".into()))?;
        self.ingest_webchat_inbound(&connection, inbound)
            .await
            .map_err(WebchatError::from)
    }

    /// The pipeline for an already normalised web-chat event (the multipart upload path builds it
    /// itself).
    pub async fn ingest_webchat_inbound(
        &self,
        connection: &Connection,
        inbound: Inbound,
    ) -> EngineResult<WebchatReceipt> {
        let (visitor_id, provider_id) = match &inbound.event {
            InboundEvent::Message(message) => {
                (message.chat_id.clone(), message.provider_id.clone())
            }
            _ => {
                return Err(EngineError::Conflict(
                    "the web chat only sends messages".into(),
                ));
            }
        };
        let handled = self.ingest_event(connection, inbound).await?;
        let message = match &handled {
            Handled::Stored { message, .. } => Some((**message).clone()),
            Handled::Duplicate { .. } => {
                ingest::message_by_provider_id(
                    self.db(),
                    connection.tenant_id,
                    connection.id,
                    &provider_id,
                )
                .await?
            }
            _ => None,
        };
        Ok(WebchatReceipt {
            visitor_id,
            handled,
            message,
        })
    }

    /// Stores a file a visitor uploaded (already checked by `webchat::check_upload`) under the
    /// data directory, named by its SHA-256 so a retried upload keeps one copy.
    pub async fn store_webchat_upload(
        &self,
        connection: &Connection,
        content: &[u8],
        mime: &str,
        file_name: Option<&str>,
    ) -> EngineResult<InboundMedia> {
        let sha256 = hex::encode(Sha256::digest(content));
        let directory = self
            .config()
            .data_dir
            .join("media")
            .join(connection.tenant_id.to_string())
            .join(&sha256[..2]);
        let path = directory.join(&sha256);
        let io = |error: std::io::Error| {
            EngineError::Db(DbError::Corrupt(format!(
                "cannot store an uploaded file in {}: {error}",
                directory.display()
            )))
        };
        tokio::fs::create_dir_all(&directory).await.map_err(io)?;
        if tokio::fs::metadata(&path).await.is_err() {
            // Written aside and renamed, so a reader never sees half a file.
            let partial = directory.join(format!(
                "{sha256}.part-{}",
                hex::encode(rand::random::<[u8; 6]>())
            ));
            tokio::fs::write(&partial, content).await.map_err(io)?;
            tokio::fs::rename(&partial, &path).await.map_err(io)?;
        }
        let file_name = file_name
            .map(|name| {
                name.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|name| !name.trim().is_empty());
        Ok(InboundMedia {
            source: MediaSource::Stored {
                path: path.to_string_lossy().into_owned(),
                sha256,
            },
            mime: Some(mime.to_owned()),
            size: i64::try_from(content.len()).ok(),
            file_name,
        })
    }

    /// The file of a message of the visitor's conversation (`None` when the message has no file
    /// or is not this visitor's on this connection).
    pub async fn webchat_media(
        &self,
        connection: &Connection,
        visitor_id: &str,
        message: atende_domain::MessageId,
    ) -> EngineResult<Option<(Vec<u8>, Option<String>)>> {
        let tenant = connection.tenant_id;
        let Some(contact) =
            ingest::find_contact(self.db(), tenant, ChannelKind::Webchat, visitor_id).await?
        else {
            return Ok(None);
        };
        let Some(media) = ingest::media_of(self.db(), tenant, message).await? else {
            return Ok(None);
        };
        if media.contact_id != contact.id || media.connection_id != connection.id {
            return Ok(None);
        }
        match tokio::fs::read(&media.path).await {
            Ok(content) => Ok(Some((content, media.mime))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(EngineError::Db(DbError::Corrupt(format!(
                "cannot read {}: {error}",
                media.path
            )))),
        }
    }

    /// The visitor's conversation on a web-chat connection (both directions, ascending): after
    /// `after`, or the latest `limit` messages. Empty for a visitor who never wrote.
    pub async fn webchat_conversation(
        &self,
        connection: &Connection,
        visitor_id: &str,
        after: Option<atende_domain::MessageId>,
        limit: i64,
    ) -> EngineResult<Vec<Message>> {
        let tenant = connection.tenant_id;
        let Some(contact) =
            ingest::find_contact(self.db(), tenant, ChannelKind::Webchat, visitor_id).await?
        else {
            return Ok(Vec::new());
        };
        Ok(
            ingest::conversation(self.db(), tenant, contact.id, connection.id, after, limit)
                .await?,
        )
    }
}

/// The name the sender gave themselves, if it may name the chat's contact: a message we sent
/// from the phone carries our own name, and one in a group its participant's.
fn push_name(inbound: &InboundMessage) -> Option<&str> {
    if inbound.from_me || inbound.is_group {
        None
    } else {
        inbound.sender_name.as_deref()
    }
}

/// The route of a new contact's first ticket when it needs nothing from the store: a new contact
/// has no wallet, so only a bot flow (its version) or an admin to look up sends the message the
/// long way (`None`), where [`Engine::inbound_route`] decides with the same rule.
fn new_contact_route(
    settings: &Settings,
    connection: &Connection,
    is_group: bool,
) -> Option<NewTicketRoute> {
    let flow = connection.default_flow_id.or(settings.active_bot_flow);
    if flow.is_some() || (settings.force_admin_on_pending && settings.designated_admin.is_none()) {
        return None;
    }
    let decision = route_new_ticket(&RoutingInput {
        force_wallet_routing: settings.force_wallet_routing,
        wallet_overflow: settings.wallet_overflow,
        use_user_business_hours: settings.use_user_business_hours,
        force_admin_on_pending: settings.force_admin_on_pending,
        is_group,
        wallet: Vec::new(),
        default_queue: connection.default_queue_id,
        flow: None,
        designated_admin: settings
            .force_admin_on_pending
            .then_some(settings.designated_admin)
            .flatten(),
    });
    if decision.bot_flow.is_some() {
        return None;
    }
    Some(NewTicketRoute {
        status: decision.status,
        owner_id: decision.owner_id,
        queue_id: decision.queue_id,
        bot_flow: None,
        wallet_overflowed: decision.wallet_overflowed,
    })
}

/// Whether a ticket change can change who sees it (the live push then needs the before-facts).
fn visibility_changed(before: &Ticket, after: &Ticket) -> bool {
    before.status != after.status
        || before.owner_id != after.owner_id
        || before.queue_id != after.queue_id
        || before.is_group != after.is_group
        || before.bot_flow_id != after.bot_flow_id
        || before.integration_active != after.integration_active
        || before.wallet_overflowed != after.wallet_overflowed
}

/// The message row for a normalised inbound message.
fn ingest_message(inbound: &InboundMessage) -> IngestMessage {
    let (direction, author, status) = if inbound.from_me {
        (
            MessageDirection::Out,
            MessageAuthor::User,
            MessageStatus::Sent,
        )
    } else {
        (
            MessageDirection::In,
            MessageAuthor::Contact,
            MessageStatus::Delivered,
        )
    };
    IngestMessage {
        direction,
        author,
        kind: inbound.kind,
        body: inbound.body.clone(),
        media: inbound.media.as_ref().map(|media| {
            let (path, sha256, state) = match &media.source {
                MediaSource::Stored { path, sha256 } => {
                    (Some(path.clone()), Some(sha256.clone()), "stored")
                }
                // Fetched by the media download automation.
                MediaSource::Provider(_) => (None, None, "pending"),
            };
            MessageMedia {
                path,
                mime: media.mime.clone(),
                size: media.size,
                sha256,
                state: state.into(),
            }
        }),
        provider_id: Some(inbound.provider_id.clone()),
        quoted_provider_id: inbound.quoted_provider_id.clone(),
        status,
        sent_at: inbound.provider_timestamp,
    }
}

/// What a web-chat post produced.
#[derive(Debug, Clone)]
pub struct WebchatReceipt {
    pub visitor_id: String,
    pub handled: Handled,
    /// The stored message (also for a repeated post); `None` when dropped or failed.
    pub message: Option<Message>,
}

/// Why a web-chat post was refused before it reached the inbound log.
#[derive(Debug, thiserror::Error)]
pub enum WebchatError {
    #[error("no web chat has this key")]
    UnknownWidget,
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}
