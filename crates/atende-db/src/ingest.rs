//! The write half of the inbound pipeline (SPEC §4 steps 4–6): the contact upsert by identity, and
//! the one transaction that finds or creates the ticket of a contact on a connection, stores the
//! message and bumps the ticket.
//!
//! Per-contact serialisation: on PostgreSQL a transaction-scoped advisory lock keyed by (tenant,
//! contact), so any number of instances agree (ARCHITECTURE "Traps": not an in-process mutex); on
//! SQLite the single writer connection already runs one transaction at a time, and
//! [`ingest_batch`] lets it commit many messages per transaction (group commit). The unique
//! partial index `tickets_one_open` is the backstop either way.
//!
//! Decisions come from the caller: the routing of a new ticket, the reopen window, whether a push
//! name may rename the contact. This module only carries them out atomically.

use crate::inbound_events::{self, RecordOutcome};
use crate::messages::MessageRow;
use crate::queues::parse_enum;
use crate::tickets::{
    FIND_OPEN, GET as GET_TICKET, INSERT_CYCLE, TicketRow, accepted_at, protocol,
};
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{
    ChannelKind, ConnectionId, ContactId, FlowId, InboundEventId, Message, MessageAuthor,
    MessageDirection, MessageId, MessageKind, MessageStatus, NameSource, QueueId, TenantId, Ticket,
    TicketStatus, Timestamp, UserId,
};
use sqlx::{PgConnection, SqliteConnection};

/// Longest `last_message` preview kept on the ticket.
pub const PREVIEW_CHARS: usize = 200;

// ---------------------------------------------------------------------------------------------
// Contacts
// ---------------------------------------------------------------------------------------------

/// What the pipeline needs to know about a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFacts {
    pub id: ContactId,
    pub name: String,
    pub name_source: NameSource,
    pub blocked: bool,
    pub is_group: bool,
}

/// A sender as a channel identifies them.
#[derive(Debug, Clone, Copy)]
pub struct ContactUpsert<'a> {
    pub channel: ChannelKind,
    pub external_id: &'a str,
    /// The name the sender gave themselves on the channel.
    pub push_name: Option<&'a str>,
    /// E.164, stored on a new contact.
    pub phone: Option<&'a str>,
    pub is_group: bool,
    /// Whether the push name may replace the stored name (the caller applies
    /// `keep_contact_name`); a name set by hand (`name_source = manual`) is never replaced.
    pub push_name_renames: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpsertedContact {
    pub contact: ContactFacts,
    pub created: bool,
    /// The push name replaced the stored name.
    pub renamed: bool,
}

#[derive(sqlx::FromRow)]
struct ContactFactsRow {
    id: i64,
    name: String,
    name_source: String,
    blocked: bool,
    is_group: bool,
}

impl ContactFactsRow {
    fn into_facts(self) -> DbResult<ContactFacts> {
        Ok(ContactFacts {
            id: ContactId(self.id),
            name_source: parse_enum(&self.name_source, NameSource::parse, "contacts.name_source")?,
            name: self.name,
            blocked: self.blocked,
            is_group: self.is_group,
        })
    }
}

const FIND_BY_IDENTITY: &str = "SELECT c.id, c.name, c.name_source, c.blocked, c.is_group
    FROM contact_identities i JOIN contacts c ON c.tenant_id = i.tenant_id AND c.id = i.contact_id
    WHERE i.tenant_id = $1 AND i.channel = $2 AND i.external_id = $3";
const INSERT_CONTACT: &str = "INSERT INTO contacts (tenant_id, name, name_source, phone, is_group,
        custom_fields, created_at, updated_at)
    VALUES ($1, $2, 'push', $3, $4, '{}', $5, $5) RETURNING id";
const INSERT_IDENTITY_IF_ABSENT: &str = "INSERT INTO contact_identities (tenant_id, contact_id,
        channel, external_id, created_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (tenant_id, channel, external_id) DO NOTHING RETURNING id";
// The guard repeats the caller's check so a name set by hand in the meantime still wins.
const RENAME_FROM_PUSH: &str =
    "UPDATE contacts SET name = $3, name_source = 'push', updated_at = $4
    WHERE tenant_id = $1 AND id = $2 AND name_source <> 'manual' AND name <> $3";

/// The contact that owns this identity, if any.
pub async fn find_contact(
    db: &Db,
    tenant: TenantId,
    channel: ChannelKind,
    external_id: &str,
) -> DbResult<Option<ContactFacts>> {
    let row: Option<ContactFactsRow> = read!(db, pool => {
        sqlx::query_as(FIND_BY_IDENTITY)
            .bind(tenant.0)
            .bind(channel.as_str())
            .bind(external_id)
            .fetch_optional(pool)
            .await?
    });
    row.map(ContactFactsRow::into_facts).transpose()
}

/// Finds the contact of the identity or creates it (with the identity), race-safe: when two
/// deliveries create the same new contact at once, the unique identity index lets one win and the
/// other adopts its contact. `found` is what the caller already looked up with [`find_contact`]
/// (so the filters and the upsert share one read). The push name renames an existing contact when
/// `push_name_renames` and its name was not set by hand.
pub async fn upsert_contact(
    db: &Db,
    tenant: TenantId,
    upsert: &ContactUpsert<'_>,
    found: Option<ContactFacts>,
) -> DbResult<UpsertedContact> {
    if let Some(contact) = found {
        return rename_from_push(db, tenant, contact, upsert).await;
    }
    let now = Timestamp::now();
    let push_name = upsert.push_name.map(str::trim).filter(|n| !n.is_empty());
    let name = push_name
        .or(upsert.phone)
        .unwrap_or(upsert.external_id)
        .to_owned();
    let created: Option<i64> = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let id: i64 = sqlx::query_scalar(INSERT_CONTACT)
            .bind(tenant.0)
            .bind(name.as_str())
            .bind(upsert.phone)
            .bind(upsert.is_group)
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| match DbError::from(e) {
                DbError::ForeignKey(_) => DbError::UnknownReference { field: "tenant_id", id: tenant.0 },
                other => other,
            })?;
        let identity: Option<i64> = sqlx::query_scalar(INSERT_IDENTITY_IF_ABSENT)
            .bind(tenant.0)
            .bind(id)
            .bind(upsert.channel.as_str())
            .bind(upsert.external_id)
            .bind(now.0)
            .fetch_optional(&mut *tx)
            .await?;
        match identity {
            Some(_) => {
                tx.commit().await?;
                Some(id)
            }
            // Dropping the transaction rolls the contact back.
            None => None,
        }
    });
    if let Some(id) = created {
        return Ok(UpsertedContact {
            contact: ContactFacts {
                id: ContactId(id),
                name,
                name_source: NameSource::Push,
                blocked: false,
                is_group: upsert.is_group,
            },
            created: true,
            renamed: false,
        });
    }
    // Another delivery created it first; read through the writer, which has seen its commit.
    let row: Option<ContactFactsRow> = write!(db, pool => {
        sqlx::query_as(FIND_BY_IDENTITY)
            .bind(tenant.0)
            .bind(upsert.channel.as_str())
            .bind(upsert.external_id)
            .fetch_optional(pool)
            .await?
    });
    let contact = row
        .ok_or_else(|| DbError::Conflict {
            constraint: "contact_identities: identity vanished while it was being created".into(),
        })?
        .into_facts()?;
    rename_from_push(db, tenant, contact, upsert).await
}

async fn rename_from_push(
    db: &Db,
    tenant: TenantId,
    mut contact: ContactFacts,
    upsert: &ContactUpsert<'_>,
) -> DbResult<UpsertedContact> {
    let push_name = upsert.push_name.map(str::trim).filter(|n| !n.is_empty());
    let wanted = match push_name {
        Some(name)
            if upsert.push_name_renames
                && contact.name_source != NameSource::Manual
                && contact.name != name =>
        {
            name
        }
        _ => {
            return Ok(UpsertedContact {
                contact,
                created: false,
                renamed: false,
            });
        }
    };
    let now = Timestamp::now();
    let changed = write!(db, pool => {
        sqlx::query(RENAME_FROM_PUSH)
            .bind(tenant.0)
            .bind(contact.id.0)
            .bind(wanted)
            .bind(now.0)
            .execute(pool)
            .await?
            .rows_affected()
    });
    if changed > 0 {
        contact.name = wanted.to_owned();
        contact.name_source = NameSource::Push;
    }
    Ok(UpsertedContact {
        contact,
        created: false,
        renamed: changed > 0,
    })
}

// ---------------------------------------------------------------------------------------------
// Ticket find-or-create + message
// ---------------------------------------------------------------------------------------------

/// How a new ticket starts (the routing decision of SPEC §6, made by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewTicketRoute {
    pub status: TicketStatus,
    pub owner_id: Option<UserId>,
    pub queue_id: Option<QueueId>,
    /// Start a chatbot session with this flow at this version.
    pub bot_flow: Option<(FlowId, i64)>,
    pub wallet_overflowed: bool,
}

/// A stored file of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMedia {
    /// Where the file is (or will be) stored; `None` until downloaded.
    pub path: Option<String>,
    pub mime: Option<String>,
    pub size: Option<i64>,
    pub sha256: Option<String>,
    /// `pending` (to download), `stored`, `failed`.
    pub state: String,
}

/// The message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestMessage {
    pub direction: MessageDirection,
    pub author: MessageAuthor,
    pub kind: MessageKind,
    pub body: String,
    pub media: Option<MessageMedia>,
    /// Unique per connection: a second message with it is a duplicate.
    pub provider_id: Option<String>,
    /// Resolved to the stored message with this provider id on the same connection, if any.
    pub quoted_provider_id: Option<String>,
    pub status: MessageStatus,
    /// The provider's timestamp.
    pub sent_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestInput {
    pub contact_id: ContactId,
    pub connection_id: ConnectionId,
    pub is_group: bool,
    /// A closed ticket is reopened (same ticket, new cycle) when it closed less than this long ago.
    pub reopen_window_minutes: i64,
    /// How a new ticket starts; `None` = the caller has not routed yet (see
    /// [`IngestOutcome::NeedsRouting`]).
    pub route: Option<NewTicketRoute>,
    pub message: IngestMessage,
    /// The inbound-log row of this delivery, marked `processed` in the same transaction.
    pub inbound_event: Option<InboundEventId>,
    pub now: Timestamp,
}

/// What one ingest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingested {
    /// The ticket after the message.
    pub ticket: Ticket,
    pub message: Message,
    /// A new ticket started with this message.
    pub created: bool,
    /// A closed ticket was reopened (new cycle) with this message.
    pub reopened: bool,
    /// The ticket as it was before (`None` when created), for the events' before-facts.
    pub before: Option<Ticket>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    Stored(Box<Ingested>),
    /// A message with this provider id is already stored on the connection; nothing changed.
    Duplicate(MessageId),
    /// A new ticket must start and `route` was `None`; nothing changed. Route and call again.
    NeedsRouting,
}

/// A connection inside a transaction, on either backend: the statements below are written once
/// and compiled for both (like the `read!`/`write!` macros do for pools).
enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

macro_rules! on {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            Conn::Sqlite($c) => $body,
            Conn::Postgres($c) => $body,
        }
    };
}

const PG_CONTACT_LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
const MESSAGE_BY_PROVIDER: &str = "SELECT id FROM messages
    WHERE tenant_id = $1 AND connection_id = $2 AND provider_id = $3";
const LAST_CLOSED: &str = "SELECT id, closed_at FROM tickets
    WHERE tenant_id = $1 AND contact_id = $2 AND connection_id = $3 AND status = 'closed'
    ORDER BY closed_at DESC, id DESC LIMIT 1";
const REOPEN: &str = "UPDATE tickets SET status = 'pending', closed_at = NULL, pause_reason = NULL,
        out_of_hours_sent = 0, current_cycle_id = $3, updated_at = $4
    WHERE tenant_id = $1 AND id = $2 AND status = 'closed'";
const INSERT_TICKET: &str = "INSERT INTO tickets (tenant_id, contact_id, connection_id, status,
        owner_id, queue_id, is_group, bot_flow_id, bot_flow_version, bot_last_at,
        wallet_overflowed, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING id";
const SET_PROTOCOL_AND_CYCLE: &str =
    "UPDATE tickets SET protocol = $3, current_cycle_id = $4 WHERE tenant_id = $1 AND id = $2";
const INSERT_MESSAGE: &str =
    "INSERT INTO messages (tenant_id, ticket_id, connection_id, contact_id,
        direction, author, kind, body, media_path, media_mime, media_size, media_sha256,
        media_state, provider_id, quoted_id, status, queue_stamp, imported, provider_timestamp,
        sent_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
        $19, $20, $20)
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
// Never moves last_message_at / last_inbound_at backwards: a late delivery of an older message
// does not become the preview.
const BUMP_TICKET: &str = "UPDATE tickets SET
        unread = unread + $3,
        last_message = CASE WHEN last_message_at IS NULL OR last_message_at <= $4
            THEN $5 ELSE last_message END,
        last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at < $4
            THEN $4 ELSE last_message_at END,
        last_inbound_at = CASE WHEN $6 AND (last_inbound_at IS NULL OR last_inbound_at < $4)
            THEN $4 ELSE last_inbound_at END,
        updated_at = $7
    WHERE tenant_id = $1 AND id = $2";
const MARK_PROCESSED: &str = "UPDATE inbound_events SET outcome = 'processed', reason = NULL,
        processed_at = $3
    WHERE tenant_id = $1 AND id = $2";

/// Key of the per-contact advisory lock: a mix of a namespace, the tenant and the contact, so it
/// never meets the migration lock or another kind of lock.
fn contact_lock_key(tenant: TenantId, contact: ContactId) -> i64 {
    fn mix(mut z: u64) -> u64 {
        // splitmix64 finaliser
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    const NAMESPACE: u64 = 0x6174_656e_6465_0002; // "atende" + 2: per-contact ingest
    let key = mix(NAMESPACE ^ mix(tenant.0 as u64) ^ mix(contact.0 as u64).rotate_left(17));
    key as i64
}

/// The `last_message` preview of a message.
fn preview(kind: MessageKind, body: &str) -> String {
    let text: String = body.trim().chars().take(PREVIEW_CHARS).collect();
    if text.is_empty() && kind != MessageKind::Text {
        format!("[{}]", kind.as_str())
    } else {
        text
    }
}

async fn get_ticket(conn: &mut Conn<'_>, tenant: TenantId, id: i64) -> DbResult<Ticket> {
    let row: TicketRow = on!(conn, c => {
        sqlx::query_as(GET_TICKET).bind(tenant.0).bind(id).fetch_one(&mut **c).await?
    });
    row.into_model()
}

/// Finds the ticket this message belongs to, reopening or creating it as the input says.
/// `None` = a new ticket is needed and no route was given.
async fn find_or_create_ticket(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    input: &IngestInput,
) -> DbResult<Option<(Ticket, Option<Ticket>, bool, bool)>> {
    let open: Option<TicketRow> = on!(conn, c => {
        sqlx::query_as(FIND_OPEN)
            .bind(tenant.0)
            .bind(input.contact_id.0)
            .bind(input.connection_id.0)
            .fetch_optional(&mut **c)
            .await?
    });
    if let Some(open) = open {
        let ticket = open.into_model()?;
        return Ok(Some((ticket.clone(), Some(ticket), false, false)));
    }
    let now = input.now;
    let last_closed: Option<(i64, Option<i64>)> = on!(conn, c => {
        sqlx::query_as(LAST_CLOSED)
            .bind(tenant.0)
            .bind(input.contact_id.0)
            .bind(input.connection_id.0)
            .fetch_optional(&mut **c)
            .await?
    });
    let window_start = now.plus_minutes(-input.reopen_window_minutes.max(0));
    if let Some((id, Some(closed_at))) = last_closed
        && input.reopen_window_minutes > 0
        && closed_at > window_start.0
    {
        let before = get_ticket(conn, tenant, id).await?;
        let cycle: i64 = on!(conn, c => {
            sqlx::query_scalar(INSERT_CYCLE)
                .bind(tenant.0)
                .bind(id)
                .bind(now.0)
                .bind(None::<i64>)
                .bind(None::<i64>)
                .bind(before.owner_id.map(|u| u.0))
                .bind(before.queue_id.map(|q| q.0))
                .fetch_one(&mut **c)
                .await?
        });
        on!(conn, c => {
            sqlx::query(REOPEN).bind(tenant.0).bind(id).bind(cycle).bind(now.0)
                .execute(&mut **c).await?.rows_affected()
        });
        let ticket = get_ticket(conn, tenant, id).await?;
        return Ok(Some((ticket, Some(before), false, true)));
    }
    let Some(route) = input.route else {
        return Ok(None);
    };
    let id: i64 = on!(conn, c => {
        sqlx::query_scalar(INSERT_TICKET)
            .bind(tenant.0)
            .bind(input.contact_id.0)
            .bind(input.connection_id.0)
            .bind(route.status.as_str())
            .bind(route.owner_id.map(|u| u.0))
            .bind(route.queue_id.map(|q| q.0))
            .bind(input.is_group)
            .bind(route.bot_flow.map(|(flow, _)| flow.0))
            .bind(route.bot_flow.map(|(_, version)| version))
            .bind(route.bot_flow.map(|_| now.0))
            .bind(route.wallet_overflowed)
            .bind(now.0)
            .fetch_one(&mut **c)
            .await?
    });
    let cycle: i64 = on!(conn, c => {
        sqlx::query_scalar(INSERT_CYCLE)
            .bind(tenant.0)
            .bind(id)
            .bind(now.0)
            .bind(accepted_at(route.status, route.owner_id, now))
            .bind(None::<i64>)
            .bind(route.owner_id.map(|u| u.0))
            .bind(route.queue_id.map(|q| q.0))
            .fetch_one(&mut **c)
            .await?
    });
    on!(conn, c => {
        sqlx::query(SET_PROTOCOL_AND_CYCLE)
            .bind(tenant.0)
            .bind(id)
            .bind(protocol(now, id))
            .bind(cycle)
            .execute(&mut **c)
            .await?
            .rows_affected()
    });
    let ticket = get_ticket(conn, tenant, id).await?;
    Ok(Some((ticket, None, true, false)))
}

async fn ingest_in(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    input: &IngestInput,
) -> DbResult<IngestOutcome> {
    let message = &input.message;
    if let Some(provider_id) = &message.provider_id {
        let existing: Option<i64> = on!(conn, c => {
            sqlx::query_scalar(MESSAGE_BY_PROVIDER)
                .bind(tenant.0)
                .bind(input.connection_id.0)
                .bind(provider_id.as_str())
                .fetch_optional(&mut **c)
                .await?
        });
        if let Some(id) = existing {
            return Ok(IngestOutcome::Duplicate(MessageId(id)));
        }
    }
    let Some((ticket, before, created, reopened)) =
        find_or_create_ticket(conn, tenant, input).await?
    else {
        return Ok(IngestOutcome::NeedsRouting);
    };
    let quoted_id: Option<i64> = match &message.quoted_provider_id {
        Some(quoted) => on!(conn, c => {
            sqlx::query_scalar(MESSAGE_BY_PROVIDER)
                .bind(tenant.0)
                .bind(input.connection_id.0)
                .bind(quoted.as_str())
                .fetch_optional(&mut **c)
                .await?
        }),
        None => None,
    };
    let media = message.media.as_ref();
    let row: MessageRow = on!(conn, c => {
        sqlx::query_as(INSERT_MESSAGE)
            .bind(tenant.0)
            .bind(ticket.id.0)
            .bind(input.connection_id.0)
            .bind(input.contact_id.0)
            .bind(message.direction.as_str())
            .bind(message.author.as_str())
            .bind(message.kind.as_str())
            .bind(message.body.as_str())
            .bind(media.and_then(|m| m.path.as_deref()))
            .bind(media.and_then(|m| m.mime.as_deref()))
            .bind(media.and_then(|m| m.size))
            .bind(media.and_then(|m| m.sha256.as_deref()))
            .bind(media.map(|m| m.state.as_str()))
            .bind(message.provider_id.as_deref())
            .bind(quoted_id)
            .bind(message.status.as_str())
            .bind(ticket.queue_id.map(|q| q.0))
            .bind(false)
            .bind(message.sent_at.0)
            .bind(input.now.0)
            .fetch_one(&mut **c)
            .await?
    });
    let inbound = message.direction == MessageDirection::In;
    on!(conn, c => {
        sqlx::query(BUMP_TICKET)
            .bind(tenant.0)
            .bind(ticket.id.0)
            .bind(i64::from(inbound))
            .bind(message.sent_at.0)
            .bind(preview(message.kind, &message.body))
            .bind(inbound)
            .bind(input.now.0)
            .execute(&mut **c)
            .await?
            .rows_affected()
    });
    if let Some(event) = input.inbound_event {
        on!(conn, c => {
            sqlx::query(MARK_PROCESSED)
                .bind(tenant.0)
                .bind(event.0)
                .bind(input.now.0)
                .execute(&mut **c)
                .await?
                .rows_affected()
        });
    }
    let ticket = get_ticket(conn, tenant, ticket.id.0).await?;
    Ok(IngestOutcome::Stored(Box::new(Ingested {
        ticket,
        message: row.into_model()?,
        created,
        reopened,
        before,
    })))
}

/// Stores one message in one transaction: finds the contact's non-closed ticket on the
/// connection, or reopens the last closed one within the reopen window (same ticket, new cycle,
/// back to `pending` with its owner and queue), or creates a new ticket as `route` says; inserts
/// the message stamped with the ticket's queue (the quoted provider id resolved on the same
/// connection); bumps the ticket (unread +1 for inbound, preview, `last_message_at`,
/// `last_inbound_at`, `updated_at`); marks the inbound event processed. A provider id already
/// stored → `Duplicate`, nothing changed.
pub async fn ingest(db: &Db, tenant: TenantId, input: &IngestInput) -> DbResult<IngestOutcome> {
    match db {
        Db::Sqlite(store) => {
            let mut tx = store.write.begin().await?;
            let outcome = ingest_in(&mut Conn::Sqlite(&mut tx), tenant, input).await?;
            if matches!(outcome, IngestOutcome::Stored(_)) {
                tx.commit().await?;
            }
            Ok(outcome)
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query(PG_CONTACT_LOCK)
                .bind(contact_lock_key(tenant, input.contact_id))
                .execute(&mut *tx)
                .await?;
            let outcome = ingest_in(&mut Conn::Postgres(&mut tx), tenant, input).await?;
            if matches!(outcome, IngestOutcome::Stored(_)) {
                tx.commit().await?;
            }
            Ok(outcome)
        }
    }
}

/// One write of the group-commit writer (SQLite's single writer batching concurrent deliveries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchWrite {
    /// What [`inbound_events::record`] does: log one delivery, deduplicated on its provider id.
    Record {
        tenant: TenantId,
        connection_id: ConnectionId,
        provider_id: String,
        received_at: Timestamp,
        raw_body: String,
    },
    /// What [`ingest`] does.
    Ingest {
        tenant: TenantId,
        input: Box<IngestInput>,
    },
}

/// The result of one [`BatchWrite`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchDone {
    Recorded(RecordOutcome),
    Ingested(IngestOutcome),
}

async fn record_in(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    connection_id: ConnectionId,
    provider_id: &str,
    received_at: Timestamp,
    raw_body: &str,
) -> DbResult<RecordOutcome> {
    let inserted: Result<Option<i64>, DbError> = on!(conn, c => {
        sqlx::query_scalar(inbound_events::INSERT)
            .bind(tenant.0)
            .bind(connection_id.0)
            .bind(provider_id)
            .bind(received_at.0)
            .bind(raw_body)
            .fetch_optional(&mut **c)
            .await
            .map_err(DbError::from)
    });
    let inserted = inserted.map_err(|error| match error {
        DbError::ForeignKey(_) => DbError::UnknownReference {
            field: "connection_id",
            id: connection_id.0,
        },
        other => other,
    })?;
    if let Some(id) = inserted {
        return Ok(RecordOutcome::New(InboundEventId(id)));
    }
    let existing: Option<i64> = on!(conn, c => {
        sqlx::query_scalar(inbound_events::FIND)
            .bind(tenant.0)
            .bind(connection_id.0)
            .bind(provider_id)
            .fetch_optional(&mut **c)
            .await?
    });
    Ok(RecordOutcome::Duplicate(InboundEventId(
        existing.ok_or(DbError::NotFound)?,
    )))
}

async fn write_one(conn: &mut Conn<'_>, write: &BatchWrite) -> DbResult<BatchDone> {
    match write {
        BatchWrite::Record {
            tenant,
            connection_id,
            provider_id,
            received_at,
            raw_body,
        } => record_in(
            conn,
            *tenant,
            *connection_id,
            provider_id,
            *received_at,
            raw_body,
        )
        .await
        .map(BatchDone::Recorded),
        BatchWrite::Ingest { tenant, input } => ingest_in(conn, *tenant, input)
            .await
            .map(BatchDone::Ingested),
    }
}

/// Group commit: applies many writes (of any tenants) with one commit on SQLite; one failing write
/// leaves the others intact (the batch is then redone one transaction per write). Answers one
/// result per write, in order; `Err` for the whole call only when a transaction itself failed. On PostgreSQL each write gets its own transaction (holding several contact locks in one
/// transaction could deadlock with another instance); concurrency there comes from the pool.
pub async fn write_batch(db: &Db, writes: &[BatchWrite]) -> DbResult<Vec<DbResult<BatchDone>>> {
    let store = match db {
        Db::Sqlite(store) => store,
        Db::Postgres(_) => {
            let mut results = Vec::with_capacity(writes.len());
            for write in writes {
                results.push(match write {
                    BatchWrite::Record {
                        tenant,
                        connection_id,
                        provider_id,
                        received_at,
                        raw_body,
                    } => inbound_events::record(
                        db,
                        *tenant,
                        *connection_id,
                        provider_id,
                        *received_at,
                        raw_body,
                    )
                    .await
                    .map(BatchDone::Recorded),
                    BatchWrite::Ingest { tenant, input } => {
                        ingest(db, *tenant, input).await.map(BatchDone::Ingested)
                    }
                });
            }
            return Ok(results);
        }
    };
    // Optimistic: one transaction for all. A write that is not applied (a duplicate, a ticket
    // that needs routing) has written nothing, so only an error spoils the batch; then the
    // batch is rolled back and every write runs in its own transaction. Savepoints would cost
    // two more statements per write on the hot path for a case that almost never happens.
    let mut tx = store.write.begin().await?;
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        match write_one(&mut Conn::Sqlite(&mut tx), write).await {
            Ok(done) => results.push(Ok(done)),
            Err(error) => {
                tracing::debug!(%error, "a write failed inside a batch; applying the batch one by one");
                drop(tx);
                return one_by_one(store, writes).await;
            }
        }
    }
    tx.commit().await?;
    Ok(results)
}

async fn one_by_one(
    store: &crate::pool::SqliteStore,
    writes: &[BatchWrite],
) -> DbResult<Vec<DbResult<BatchDone>>> {
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        let mut tx = store.write.begin().await?;
        let result = write_one(&mut Conn::Sqlite(&mut tx), write).await;
        if result.is_ok() {
            tx.commit().await?;
        }
        results.push(result);
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// Provider news about sent messages, and the web-chat visitor's view
// ---------------------------------------------------------------------------------------------

const MESSAGE_COLUMNS_BY_PROVIDER: &str = "SELECT id, tenant_id, ticket_id, connection_id,
        contact_id, direction, author, author_user_id, kind, body, provider_id, quoted_id, status,
        failure_reason, idempotency_key, queue_stamp, imported, sent_at, created_at
    FROM messages WHERE tenant_id = $1 AND connection_id = $2 AND provider_id = $3";
const SET_MESSAGE_STATUS: &str = "UPDATE messages SET status = $3, failure_reason = $4,
        outcome_unknown = $6, updated_at = $5
    WHERE tenant_id = $1 AND id = $2
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
const CONVERSATION_AFTER: &str = "SELECT id, tenant_id, ticket_id, connection_id, contact_id,
        direction, author, author_user_id, kind, body, provider_id, quoted_id, status,
        failure_reason, idempotency_key, queue_stamp, imported, sent_at, created_at
    FROM messages
    WHERE tenant_id = $1 AND contact_id = $2 AND connection_id = $3 AND id > $4
        AND kind <> 'system_note'
    ORDER BY id LIMIT $5";
const CONVERSATION_LATEST: &str = "SELECT id, tenant_id, ticket_id, connection_id, contact_id,
        direction, author, author_user_id, kind, body, provider_id, quoted_id, status,
        failure_reason, idempotency_key, queue_stamp, imported, sent_at, created_at
    FROM messages
    WHERE tenant_id = $1 AND contact_id = $2 AND connection_id = $3 AND kind <> 'system_note'
    ORDER BY id DESC LIMIT $4";

/// Where the file of a message is, with whom the message is, for serving it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLocation {
    pub contact_id: ContactId,
    pub connection_id: ConnectionId,
    pub path: String,
    pub mime: Option<String>,
}

const MEDIA_OF: &str = "SELECT contact_id, connection_id, media_path, media_mime FROM messages
    WHERE tenant_id = $1 AND id = $2 AND media_path IS NOT NULL";

/// The stored file of a message; `None` when it has none (yet) or the message is not in the
/// tenant.
pub async fn media_of(
    db: &Db,
    tenant: TenantId,
    message: MessageId,
) -> DbResult<Option<MediaLocation>> {
    let row: Option<(i64, i64, String, Option<String>)> = read!(db, pool => {
        sqlx::query_as(MEDIA_OF).bind(tenant.0).bind(message.0).fetch_optional(pool).await?
    });
    Ok(row.map(|(contact, connection, path, mime)| MediaLocation {
        contact_id: ContactId(contact),
        connection_id: ConnectionId(connection),
        path,
        mime,
    }))
}

/// The message stored under this provider id on the connection, if any.
pub async fn message_by_provider_id(
    db: &Db,
    tenant: TenantId,
    connection_id: ConnectionId,
    provider_id: &str,
) -> DbResult<Option<Message>> {
    let row: Option<MessageRow> = read!(db, pool => {
        sqlx::query_as(MESSAGE_COLUMNS_BY_PROVIDER)
            .bind(tenant.0)
            .bind(connection_id.0)
            .bind(provider_id)
            .fetch_optional(pool)
            .await?
    });
    row.map(MessageRow::into_model).transpose()
}

/// Applies the provider's status of a message we sent. Moves forward only (`read` after
/// `delivered`, never back); `failed` applies only before the message was delivered. `Ok(None)`
/// when no message has that provider id or nothing changed.
pub async fn apply_status(
    db: &Db,
    tenant: TenantId,
    connection_id: ConnectionId,
    message_provider_id: &str,
    status: MessageStatus,
    reason: Option<&str>,
) -> DbResult<Option<Message>> {
    let now = Timestamp::now();
    let row: Option<MessageRow> = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let current: Option<MessageRow> = sqlx::query_as(MESSAGE_COLUMNS_BY_PROVIDER)
            .bind(tenant.0)
            .bind(connection_id.0)
            .bind(message_provider_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(current) = current else {
            return Ok(None);
        };
        let current = current.into_model()?;
        if !current.status.can_advance_to(status) {
            return Ok(None);
        }
        let reason = (status == MessageStatus::Failed).then_some(reason).flatten();
        let row: MessageRow = sqlx::query_as(SET_MESSAGE_STATUS)
            .bind(tenant.0)
            .bind(current.id.0)
            .bind(status.as_str())
            .bind(reason)
            .bind(now.0)
            .bind(false)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Some(row)
    });
    row.map(MessageRow::into_model).transpose()
}

/// The conversation of a contact on one connection as the contact sees it (both directions, no
/// internal system notes), ascending by id: the messages after `after`, or the latest `limit`.
pub async fn conversation(
    db: &Db,
    tenant: TenantId,
    contact: ContactId,
    connection_id: ConnectionId,
    after: Option<MessageId>,
    limit: i64,
) -> DbResult<Vec<Message>> {
    let limit = limit.max(0);
    let rows: Vec<MessageRow> = read!(db, pool => {
        match after {
            Some(after) => {
                sqlx::query_as(CONVERSATION_AFTER)
                    .bind(tenant.0)
                    .bind(contact.0)
                    .bind(connection_id.0)
                    .bind(after.0)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            None => {
                let mut rows: Vec<MessageRow> = sqlx::query_as(CONVERSATION_LATEST)
                    .bind(tenant.0)
                    .bind(contact.0)
                    .bind(connection_id.0)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.reverse();
                rows
            }
        }
    });
    rows.into_iter().map(MessageRow::into_model).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_is_trimmed_cut_and_names_bare_media() {
        assert_eq!(preview(MessageKind::Text, "  oi  "), "oi");
        assert_eq!(preview(MessageKind::Image, ""), "[image]");
        assert_eq!(preview(MessageKind::Image, "legenda"), "legenda");
        assert_eq!(
            preview(MessageKind::Text, &"é".repeat(500)).chars().count(),
            PREVIEW_CHARS
        );
    }

    #[test]
    fn contact_lock_keys_differ_per_tenant_and_contact() {
        let a = contact_lock_key(TenantId(1), ContactId(2));
        assert_ne!(a, contact_lock_key(TenantId(2), ContactId(1)));
        assert_ne!(a, contact_lock_key(TenantId(1), ContactId(3)));
        assert_eq!(a, contact_lock_key(TenantId(1), ContactId(2)));
    }

    #[test]
    fn provider_statuses_follow_the_domain_order() {
        use MessageStatus::*;
        assert!(Sent.can_advance_to(Delivered));
        assert!(Delivered.can_advance_to(Read));
        assert!(
            !Read.can_advance_to(Delivered),
            "a late 'delivered' does not undo 'read'"
        );
        assert!(Sending.can_advance_to(Failed));
        assert!(
            !Delivered.can_advance_to(Failed),
            "a delivered message did not fail"
        );
        assert!(Failed.can_advance_to(Read));
        assert!(!Failed.can_advance_to(Sent));
        assert!(!Failed.can_advance_to(Failed));
    }
}
