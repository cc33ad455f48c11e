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
use crate::lifecycle::InboundFacts;
use crate::messages::MessageRow;
use crate::outbox::{self, NewReply, QueuedReply};
use crate::queues::parse_enum;
use crate::tickets::{
    FIND_OPEN, GET as GET_TICKET, INSERT_CYCLE, TicketRow, accepted_at, protocol,
};
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::text::contact_search_text;
use atende_domain::{
    ChannelKind, ConnectionId, ContactId, FlowId, InboundEventId, Message, MessageAuthor,
    MessageDirection, MessageId, MessageKind, MessageStatus, NameSource, QueueId, TenantId, Ticket,
    TicketId, TicketStatus, Timestamp, UserId,
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
        custom_fields, created_at, updated_at, search_text)
    VALUES ($1, $2, 'push', $3, $4, '{}', $5, $5, $6) RETURNING id";
const INSERT_IDENTITY_IF_ABSENT: &str = "INSERT INTO contact_identities (tenant_id, contact_id,
        channel, external_id, created_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (tenant_id, channel, external_id) DO NOTHING RETURNING id";
const EMAIL_OF: &str = "SELECT email FROM contacts WHERE tenant_id = $1 AND id = $2";
// The guard repeats the caller's check so a name set by hand in the meantime still wins.
const RENAME_FROM_PUSH: &str =
    "UPDATE contacts SET name = $3, name_source = 'push', updated_at = $4, search_text = $5
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
    let name = new_contact_name(upsert.push_name, upsert.phone, upsert.external_id);
    let created: Option<i64> = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let id: i64 = sqlx::query_scalar(INSERT_CONTACT)
            .bind(tenant.0)
            .bind(name.as_str())
            .bind(upsert.phone)
            .bind(upsert.is_group)
            .bind(now.0)
            .bind(contact_search_text(&name, None))
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

/// The name of a contact made by a message: the push name, else the phone, else the identity.
fn new_contact_name(push_name: Option<&str>, phone: Option<&str>, external_id: &str) -> String {
    push_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .or(phone)
        .unwrap_or(external_id)
        .to_owned()
}

/// The push name that replaces the contact's name: only when the caller allows it and the name
/// was not set by hand.
fn rename_wanted<'a>(
    contact: &ContactFacts,
    push_name: Option<&'a str>,
    renames: bool,
) -> Option<&'a str> {
    let name = push_name.map(str::trim).filter(|n| !n.is_empty())?;
    (renames && contact.name_source != NameSource::Manual && contact.name != name).then_some(name)
}

async fn rename_from_push(
    db: &Db,
    tenant: TenantId,
    mut contact: ContactFacts,
    upsert: &ContactUpsert<'_>,
) -> DbResult<UpsertedContact> {
    let Some(wanted) = rename_wanted(&contact, upsert.push_name, upsert.push_name_renames) else {
        return Ok(UpsertedContact {
            contact,
            created: false,
            renamed: false,
        });
    };
    let now = Timestamp::now();
    let changed = write!(db, pool => {
        // The search text holds the e-mail too; read it in the same transaction as the rename.
        let mut tx = pool.begin().await?;
        let email: Option<Option<String>> = sqlx::query_scalar(EMAIL_OF)
            .bind(tenant.0)
            .bind(contact.id.0)
            .fetch_optional(&mut *tx)
            .await?;
        let changed = sqlx::query(RENAME_FROM_PUSH)
            .bind(tenant.0)
            .bind(contact.id.0)
            .bind(wanted)
            .bind(now.0)
            .bind(contact_search_text(wanted, email.flatten().as_deref()))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        changed
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
pub(crate) enum Conn<'c> {
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
pub(crate) use on;

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
pub(crate) fn preview(kind: MessageKind, body: &str) -> String {
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
    let ticket = create_ticket(
        conn,
        tenant,
        input.contact_id,
        input.connection_id,
        input.is_group,
        &route,
        now,
    )
    .await?;
    Ok(Some((ticket, None, true, false)))
}

/// A new ticket (with its first cycle and protocol) as `route` says.
async fn create_ticket(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    contact: ContactId,
    connection: ConnectionId,
    is_group: bool,
    route: &NewTicketRoute,
    now: Timestamp,
) -> DbResult<Ticket> {
    let id: i64 = on!(conn, c => {
        sqlx::query_scalar(INSERT_TICKET)
            .bind(tenant.0)
            .bind(contact.0)
            .bind(connection.0)
            .bind(route.status.as_str())
            .bind(route.owner_id.map(|u| u.0))
            .bind(route.queue_id.map(|q| q.0))
            .bind(is_group)
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
    get_ticket(conn, tenant, id).await
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
    /// A whole delivery in one write (see [`Arrival`]).
    Arrive(Box<Arrival>),
    /// An agent's reply (see [`outbox::queue_reply`]; its caller settles the answer with
    /// [`outbox::settle_reply`]).
    Reply {
        tenant: TenantId,
        reply: Box<NewReply>,
    },
}

/// The result of one [`BatchWrite`].
#[derive(Debug, Clone, PartialEq)]
pub enum BatchDone {
    Recorded(RecordOutcome),
    Ingested(IngestOutcome),
    Arrived(Arrived),
    /// The reply's rows; `None` when nothing was written.
    Replied(Option<Box<QueuedReply>>),
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
        // Alone, an arrival is only logged; batches apply arrivals with `arrive_together`.
        BatchWrite::Arrive(arrival) => record_arrival(conn, arrival).await,
        BatchWrite::Reply { tenant, reply } => outbox::reply_in(conn, *tenant, reply)
            .await
            .map(|written| BatchDone::Replied(written.map(Box::new))),
    }
}

async fn record_arrival(conn: &mut Conn<'_>, arrival: &Arrival) -> DbResult<BatchDone> {
    let outcome = record_in(
        conn,
        arrival.tenant,
        arrival.connection_id,
        &arrival.provider_id,
        arrival.received_at,
        &arrival.raw_body,
    )
    .await?;
    Ok(BatchDone::Arrived(Arrived::only_recorded(outcome)))
}

/// Group commit: applies many writes (of any tenants) with one commit on SQLite; one failing write
/// leaves the others intact (the batch is then redone one transaction per write). Answers one
/// result per write, in order; `Err` for the whole call only when a transaction itself failed.
/// The [`BatchWrite::Arrive`] writes of a batch are applied together, with a few statements for
/// all of them (see [`Arrival`]). On PostgreSQL each write gets its own transaction (holding
/// several contact locks in one transaction could deadlock with another instance); concurrency
/// there comes from the pool, and an arrival is only logged (the caller runs the full pipeline).
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
                    BatchWrite::Arrive(arrival) => inbound_events::record(
                        db,
                        arrival.tenant,
                        arrival.connection_id,
                        &arrival.provider_id,
                        arrival.received_at,
                        &arrival.raw_body,
                    )
                    .await
                    .map(|outcome| BatchDone::Arrived(Arrived::only_recorded(outcome))),
                    BatchWrite::Reply { tenant, reply } => outbox::write_reply(db, *tenant, reply)
                        .await
                        .map(|written| BatchDone::Replied(written.map(Box::new))),
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
    let mut done: Vec<Option<BatchDone>> = vec![None; writes.len()];
    let mut arrivals = Vec::new();
    for (n, write) in writes.iter().enumerate() {
        if let BatchWrite::Arrive(arrival) = write {
            arrivals.push((n, &**arrival));
            continue;
        }
        match write_one(&mut Conn::Sqlite(&mut tx), write).await {
            Ok(result) => done[n] = Some(result),
            Err(error) => {
                tracing::debug!(%error, "a write failed inside a batch; applying the batch one by one");
                drop(tx);
                return one_by_one(store, writes).await;
            }
        }
    }
    if !arrivals.is_empty() {
        let together: Vec<&Arrival> = arrivals.iter().map(|(_, arrival)| *arrival).collect();
        match arrive_together(&mut tx, &together).await {
            Ok(outcomes) => {
                for ((n, _), outcome) in arrivals.iter().zip(outcomes) {
                    done[*n] = Some(BatchDone::Arrived(outcome));
                }
            }
            Err(error) => {
                tracing::debug!(%error, "arrivals failed inside a batch; applying the batch one by one");
                drop(tx);
                return one_by_one(store, writes).await;
            }
        }
    }
    tx.commit().await?;
    Ok(done
        .into_iter()
        .map(|result| result.ok_or(DbError::NotFound))
        .collect())
}

async fn one_by_one(
    store: &crate::pool::SqliteStore,
    writes: &[BatchWrite],
) -> DbResult<Vec<DbResult<BatchDone>>> {
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        if let BatchWrite::Arrive(arrival) = write {
            results.push(arrive_alone(store, arrival).await);
            continue;
        }
        let mut tx = store.write.begin().await?;
        let result = write_one(&mut Conn::Sqlite(&mut tx), write).await;
        if result.is_ok() {
            tx.commit().await?;
        }
        results.push(result);
    }
    Ok(results)
}

/// One arrival in its own transaction; when even that fails, the delivery is only logged, so the
/// full pipeline records what went wrong on the event.
async fn arrive_alone(store: &crate::pool::SqliteStore, arrival: &Arrival) -> DbResult<BatchDone> {
    let mut tx = store.write.begin().await?;
    match arrive_together(&mut tx, &[arrival]).await {
        Ok(mut outcomes) => {
            tx.commit().await?;
            outcomes
                .pop()
                .map(BatchDone::Arrived)
                .ok_or(DbError::NotFound)
        }
        Err(error) => {
            drop(tx);
            tracing::debug!(%error, "a delivery failed on the batch path; logging it for the full pipeline");
            let mut tx = store.write.begin().await?;
            let done = record_arrival(&mut Conn::Sqlite(&mut tx), arrival).await?;
            tx.commit().await?;
            Ok(done)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Whole deliveries in one batch (SQLite's group commit)
// ---------------------------------------------------------------------------------------------

/// One inbound message handed whole to the group-commit writer: its inbound-log row and, in the
/// common case — a known contact, not blocked, whose name the push name does not change, with a
/// ticket open on the connection, and a message id not stored before — the message and the ticket
/// bump, in the batch's transaction. The arrivals of a batch share a handful of statements (one
/// read, one insert per table, one ticket update) instead of a round trip to the writer thread
/// per statement per message, which is where the time of a single-message transaction goes.
/// A sender with no contact yet gets the contact, its identity and first ticket in the same
/// transaction when the caller routed that ticket already (`new_contact_route`). Anything else (a
/// known contact without an open ticket, a rename, a quote …) is only logged, and the caller runs
/// the full pipeline with the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub tenant: TenantId,
    pub connection_id: ConnectionId,
    pub channel: ChannelKind,
    /// The delivery's id in the inbound log (unique per connection).
    pub provider_id: String,
    pub received_at: Timestamp,
    pub raw_body: String,
    /// The sender's identity on the channel.
    pub external_id: String,
    /// For a contact made by this message.
    pub phone: Option<String>,
    pub is_group: bool,
    /// How the first ticket of a contact made by this message starts, when the caller could route
    /// it without the store (a new contact has no wallet). `None`: a message from an unknown
    /// sender is only logged and the full pipeline creates the contact.
    pub new_contact_route: Option<NewTicketRoute>,
    /// The name the sender gave themselves (`None` when it is not theirs to give, e.g. in a group).
    pub push_name: Option<String>,
    /// Whether the push name may replace the stored name (the caller applies `keep_contact_name`).
    pub push_name_renames: bool,
    /// Needs a provider id: it is how the stored row is matched to its arrival.
    pub message: IngestMessage,
    pub now: Timestamp,
}

/// What became of an [`Arrival`].
#[derive(Debug, Clone, PartialEq)]
pub enum Arrived {
    /// The provider delivered this id before; nothing was stored.
    Duplicate(InboundEventId),
    /// Logged and stored; the event is marked `processed`.
    Stored {
        event: InboundEventId,
        stored: Box<Ingested>,
        /// The contact's wallet owners, read in the same transaction (for the live push).
        wallet: Vec<UserId>,
        /// The ticket's facts for the inbound automations, read in the same transaction.
        facts: Option<InboundFacts>,
    },
    /// Logged with outcome `received` and nothing else: the full pipeline takes it from here.
    Recorded(InboundEventId),
}

impl Arrived {
    fn only_recorded(outcome: RecordOutcome) -> Arrived {
        match outcome {
            RecordOutcome::New(event) => Arrived::Recorded(event),
            RecordOutcome::Duplicate(event) => Arrived::Duplicate(event),
        }
    }
}

// The arrival path runs only on SQLite (the group commit is SQLite's), so its statements may use
// SQLite's `json_each`: a batch travels as one JSON array per statement, and the text stays the
// same whatever the batch size, so each statement is prepared once and cached (a multi-row
// `VALUES` would be parsed again for every batch size, and that parse costs more than the rows).

// Arrivals are the outer loop (LEFT JOINs keep their order on SQLite), each join a seek: the
// log's and the messages' unique keys, the identity key, the one-open-ticket index, the wallet
// index of migration 12.
const READ: &str = "WITH v(n, tenant_id, connection_id, event_id, channel, external_id,
        provider_id) AS (
        SELECT key, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5
        FROM json_each($1))
    SELECT v.n, e.id AS logged_event, c.id AS contact_id, c.name,
        c.name_source, c.blocked, c.is_group, m.id AS stored_message, w.user_id AS wallet_user,
        t.id AS t_id, t.status AS t_status, t.owner_id AS t_owner_id, t.queue_id AS t_queue_id,
        t.is_group AS t_is_group, t.protocol AS t_protocol, t.bot_flow_id AS t_bot_flow_id,
        t.integration_session IS NOT NULL AS t_integration_active,
        t.wallet_overflowed AS t_wallet_overflowed, t.unread AS t_unread,
        t.last_message AS t_last_message, t.last_message_at AS t_last_message_at,
        t.last_inbound_at AS t_last_inbound_at, t.out_of_hours_sent AS t_out_of_hours_sent,
        t.pause_reason AS t_pause_reason, t.closed_at AS t_closed_at,
        t.created_at AS t_created_at, t.updated_at AS t_updated_at,
        t.auto_resolve_due_at AS t_auto_resolve_due_at,
        CASE WHEN t.out_of_hours_cycle_id IS NOT DISTINCT FROM t.current_cycle_id
            THEN t.out_of_hours_sent ELSE 0 END AS t_absence_sent,
        q.business_hours AS q_business_hours, q.absence_message AS q_absence_message
    FROM v
    LEFT JOIN inbound_events e ON e.tenant_id = v.tenant_id
        AND e.connection_id = v.connection_id AND e.provider_id = v.event_id
    LEFT JOIN contact_identities i ON i.tenant_id = v.tenant_id AND i.channel = v.channel
        AND i.external_id = v.external_id
    LEFT JOIN contacts c ON c.tenant_id = i.tenant_id AND c.id = i.contact_id
    LEFT JOIN tickets t ON t.tenant_id = c.tenant_id AND t.contact_id = c.id
        AND t.connection_id = v.connection_id AND t.status <> 'closed'
    LEFT JOIN queues q ON q.tenant_id = t.tenant_id AND q.id = t.queue_id
    LEFT JOIN messages m ON m.tenant_id = v.tenant_id AND m.connection_id = v.connection_id
        AND m.provider_id = v.provider_id
    LEFT JOIN wallets w ON w.tenant_id = c.tenant_id AND w.contact_id = c.id
    ORDER BY v.n, w.position";
// Every write of a batch in one command (one round trip): the log rows, the messages, and each
// bumped ticket once, with the values `bump` computed from the rows read in this transaction of
// the only writer.
const WRITE: &str = "INSERT INTO inbound_events (tenant_id, connection_id, provider_id,
        received_at, raw_body, outcome, processed_at)
    SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
        value ->> 6
    FROM json_each($1)
    RETURNING 'event' AS written, id, tenant_id, connection_id, provider_id;
INSERT INTO messages (tenant_id, ticket_id, connection_id, contact_id, direction, author, kind,
        body, media_path, media_mime, media_size, media_sha256, media_state, provider_id, status,
        queue_stamp, provider_timestamp, sent_at, created_at, updated_at)
    SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
        value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11,
        value ->> 12, value ->> 13, value ->> 14, value ->> 15, value ->> 16, value ->> 16,
        value ->> 17, value ->> 17
    FROM json_each($2)
    RETURNING 'message' AS written, id, tenant_id, connection_id, provider_id;
UPDATE tickets SET unread = v.value ->> 2, last_message = v.value ->> 3,
        last_message_at = v.value ->> 4, last_inbound_at = v.value ->> 5,
        updated_at = v.value ->> 6
    FROM json_each($3) v
    WHERE tickets.tenant_id = v.value ->> 0 AND tickets.id = v.value ->> 1";

/// One row of the batch read: an arrival, or one of its wallet owners.
#[derive(sqlx::FromRow)]
struct ReadRow {
    n: i64,
    logged_event: Option<i64>,
    contact_id: Option<i64>,
    name: Option<String>,
    name_source: Option<String>,
    blocked: Option<bool>,
    is_group: Option<bool>,
    stored_message: Option<i64>,
    wallet_user: Option<i64>,
    t_id: Option<i64>,
    t_status: Option<String>,
    t_owner_id: Option<i64>,
    t_queue_id: Option<i64>,
    t_is_group: Option<bool>,
    t_protocol: Option<String>,
    t_bot_flow_id: Option<i64>,
    t_integration_active: Option<bool>,
    t_wallet_overflowed: Option<bool>,
    t_unread: Option<i64>,
    t_last_message: Option<String>,
    t_last_message_at: Option<i64>,
    t_last_inbound_at: Option<i64>,
    t_out_of_hours_sent: Option<i64>,
    t_pause_reason: Option<String>,
    t_closed_at: Option<i64>,
    t_created_at: Option<i64>,
    t_updated_at: Option<i64>,
    t_auto_resolve_due_at: Option<i64>,
    t_absence_sent: Option<i64>,
    q_business_hours: Option<String>,
    q_absence_message: Option<String>,
}

impl ReadRow {
    fn contact(&self) -> DbResult<Option<ContactFacts>> {
        let (Some(id), Some(name), Some(name_source)) =
            (self.contact_id, &self.name, &self.name_source)
        else {
            return Ok(None);
        };
        Ok(Some(ContactFacts {
            id: ContactId(id),
            name: name.clone(),
            name_source: parse_enum(name_source, NameSource::parse, "contacts.name_source")?,
            blocked: self.blocked.unwrap_or(false),
            is_group: self.is_group.unwrap_or(false),
        }))
    }

    /// The open ticket, when there is one.
    fn ticket(
        &self,
        tenant: TenantId,
        contact: ContactId,
        connection: ConnectionId,
    ) -> DbResult<Option<Ticket>> {
        let (Some(id), Some(status), Some(created_at), Some(updated_at)) = (
            self.t_id,
            &self.t_status,
            self.t_created_at,
            self.t_updated_at,
        ) else {
            return Ok(None);
        };
        Ok(Some(Ticket {
            id: TicketId(id),
            tenant_id: tenant,
            contact_id: contact,
            connection_id: connection,
            status: parse_enum(status, TicketStatus::parse, "tickets.status")?,
            owner_id: self.t_owner_id.map(UserId),
            queue_id: self.t_queue_id.map(QueueId),
            is_group: self.t_is_group.unwrap_or(false),
            protocol: self.t_protocol.clone().unwrap_or_default(),
            bot_flow_id: self.t_bot_flow_id.map(FlowId),
            integration_active: self.t_integration_active.unwrap_or(false),
            wallet_overflowed: self.t_wallet_overflowed.unwrap_or(false),
            unread: self.t_unread.unwrap_or(0),
            last_message: self.t_last_message.clone().unwrap_or_default(),
            last_message_at: self.t_last_message_at.map(Timestamp),
            last_inbound_at: self.t_last_inbound_at.map(Timestamp),
            out_of_hours_sent: self.t_out_of_hours_sent.unwrap_or(0),
            pause_reason: self.t_pause_reason.clone(),
            closed_at: self.t_closed_at.map(Timestamp),
            created_at: Timestamp(created_at),
            updated_at: Timestamp(updated_at),
        }))
    }

    /// What the inbound automations read of the open ticket (as [`inbound_facts`] reads it), so
    /// they need no read of their own per message. A message bump changes none of these.
    ///
    /// [`inbound_facts`]: crate::lifecycle::inbound_facts
    fn automation_facts(&self, ticket: &Ticket) -> DbResult<InboundFacts> {
        Ok(InboundFacts {
            status: ticket.status,
            is_group: ticket.is_group,
            auto_resolve_due_at: self.t_auto_resolve_due_at.map(Timestamp),
            out_of_hours_sent: self.t_absence_sent.unwrap_or(0),
            queue_business_hours: crate::queues::parse_json_opt(self.q_business_hours.clone())?,
            queue_absence_message: self.q_absence_message.clone().unwrap_or_default(),
        })
    }
}

/// What the batch read knows of one arrival.
#[derive(Default)]
struct Seen {
    /// The inbound-log row of an earlier delivery of the same id.
    logged_event: Option<InboundEventId>,
    contact: Option<ContactFacts>,
    ticket: Option<Ticket>,
    /// The automations' facts of `ticket`.
    facts: Option<InboundFacts>,
    message_stored: bool,
    wallet: Vec<UserId>,
}

/// What the batch does with one arrival.
enum Plan {
    /// Delivered before (in the store or earlier in this batch): nothing is written.
    Duplicate(InboundEventId),
    /// Logged as `received`; the full pipeline does the rest.
    LogOnly,
    /// Logged as `processed`, stored, its ticket bumped: the ticket before (`None`: created by
    /// this batch for this message) and after.
    Store(Box<(Option<Ticket>, Ticket)>),
}

/// What [`BUMP_TICKET`] does to a ticket, for the arrivals (which write each ticket once, as its
/// last arrival left it): unread +1 for inbound, the preview and `last_message_at` never moved
/// backwards by a late message, `last_inbound_at` likewise, `updated_at` now.
fn bump(ticket: &mut Ticket, message: &IngestMessage, now: Timestamp) {
    let inbound = message.direction == MessageDirection::In;
    let sent_at = message.sent_at;
    ticket.unread += i64::from(inbound);
    if ticket.last_message_at.is_none_or(|at| at <= sent_at) {
        ticket.last_message = preview(message.kind, &message.body);
    }
    if ticket.last_message_at.is_none_or(|at| at < sent_at) {
        ticket.last_message_at = Some(sent_at);
    }
    if inbound && ticket.last_inbound_at.is_none_or(|at| at < sent_at) {
        ticket.last_inbound_at = Some(sent_at);
    }
    ticket.updated_at = now;
}

/// The message row the batch wrote for an arrival (as `MessageRow::into_model` would read it).
fn stored_message(id: MessageId, arrival: &Arrival, ticket: &Ticket) -> Message {
    let message = &arrival.message;
    Message {
        id,
        tenant_id: arrival.tenant,
        ticket_id: ticket.id,
        connection_id: arrival.connection_id,
        contact_id: ticket.contact_id,
        direction: message.direction,
        author: message.author,
        author_user_id: None,
        kind: message.kind,
        body: message.body.clone(),
        provider_id: message.provider_id.clone(),
        quoted_id: None,
        status: message.status,
        failure_reason: None,
        idempotency_key: None,
        queue_stamp: ticket.queue_id,
        imported: false,
        sent_at: message.sent_at,
        created_at: arrival.now,
    }
}

/// The automation facts of a ticket this batch created, when they need no read: nothing is due
/// and no absence message was sent on a new ticket; only its queue's hours would need one.
fn born_facts(born: &std::collections::HashSet<i64>, ticket: &Ticket) -> Option<InboundFacts> {
    (born.contains(&ticket.id.0) && ticket.queue_id.is_none()).then(|| InboundFacts {
        status: ticket.status,
        is_group: ticket.is_group,
        auto_resolve_due_at: None,
        out_of_hours_sent: 0,
        queue_business_hours: None,
        queue_absence_message: String::new(),
    })
}

/// A contact for an arrival from an unknown sender, with its identity and first ticket, inside
/// the batch's transaction (the read of the batch saw no such identity, and this connection is
/// the only writer).
async fn create_contact_with_ticket(
    conn: &mut SqliteConnection,
    arrival: &Arrival,
    route: &NewTicketRoute,
) -> DbResult<Ticket> {
    let tenant = arrival.tenant;
    let now = arrival.now;
    let name = new_contact_name(
        arrival.push_name.as_deref(),
        arrival.phone.as_deref(),
        &arrival.external_id,
    );
    let contact: i64 = sqlx::query_scalar(INSERT_CONTACT)
        .bind(tenant.0)
        .bind(name.as_str())
        .bind(arrival.phone.as_deref())
        .bind(arrival.is_group)
        .bind(now.0)
        .bind(contact_search_text(&name, None))
        .fetch_one(&mut *conn)
        .await?;
    let identity: Option<i64> = sqlx::query_scalar(INSERT_IDENTITY_IF_ABSENT)
        .bind(tenant.0)
        .bind(contact)
        .bind(arrival.channel.as_str())
        .bind(arrival.external_id.as_str())
        .bind(now.0)
        .fetch_optional(&mut *conn)
        .await?;
    if identity.is_none() {
        // Cannot happen under the single writer; the batch is then redone one by one.
        return Err(DbError::Conflict {
            constraint: "contact_identities: identity appeared inside the batch".into(),
        });
    }
    create_ticket(
        &mut Conn::Sqlite(conn),
        tenant,
        ContactId(contact),
        arrival.connection_id,
        arrival.is_group,
        route,
        now,
    )
    .await
}

/// Tenant, connection, provider id, channel, external id and phone of one arrival.
type ArrivalKey<'a> = (i64, i64, &'a str, &'a str, &'a str, Option<&'a str>);

/// Step 1 of [`arrive_together`]: what the store knows of each arrival.
async fn read_arrivals(conn: &mut SqliteConnection, arrivals: &[&Arrival]) -> DbResult<Vec<Seen>> {
    let rows: Vec<ArrivalKey<'_>> = arrivals
        .iter()
        .map(|arrival| {
            (
                arrival.tenant.0,
                arrival.connection_id.0,
                arrival.provider_id.as_str(),
                arrival.channel.as_str(),
                arrival.external_id.as_str(),
                arrival.message.provider_id.as_deref(),
            )
        })
        .collect();
    let rows: Vec<ReadRow> = sqlx::query_as(READ)
        .bind(serde_json::to_string(&rows)?)
        .fetch_all(&mut *conn)
        .await?;
    let mut seen: Vec<Option<Seen>> = Vec::new();
    seen.resize_with(arrivals.len(), || None);
    for row in rows {
        let Some(n) = usize::try_from(row.n).ok().filter(|n| *n < arrivals.len()) else {
            continue;
        };
        let arrival = arrivals[n];
        let slot = &mut seen[n];
        if slot.is_none() {
            let contact = row.contact()?;
            let ticket = match &contact {
                Some(contact) => row.ticket(arrival.tenant, contact.id, arrival.connection_id)?,
                None => None,
            };
            let facts = match &ticket {
                Some(ticket) => Some(row.automation_facts(ticket)?),
                None => None,
            };
            *slot = Some(Seen {
                logged_event: row.logged_event.map(InboundEventId),
                contact,
                ticket,
                facts,
                message_stored: row.stored_message.is_some(),
                wallet: Vec::new(),
            });
        }
        if let (Some(seen), Some(user)) = (slot.as_mut(), row.wallet_user) {
            seen.wallet.push(UserId(user));
        }
    }
    Ok(seen.into_iter().map(Option::unwrap_or_default).collect())
}

/// Applies arrivals together inside the caller's transaction (see [`Arrival`]): one outcome per
/// arrival, in order, as if each had been applied alone in that order. Two round trips to the
/// writer thread for the whole batch: one read, then one command with every write.
async fn arrive_together(
    conn: &mut SqliteConnection,
    arrivals: &[&Arrival],
) -> DbResult<Vec<Arrived>> {
    use std::collections::HashMap;
    use std::collections::hash_map::Entry;

    let mut seen = read_arrivals(conn, arrivals).await?;

    // 2. What to do with each, bumping the tickets in arrival order. `first` finds a repeated
    //    delivery id within the batch (its first arrival is the one logged).
    let mut first: HashMap<(i64, i64, &str), usize> = HashMap::new();
    let mut tickets: HashMap<i64, Ticket> = HashMap::new();
    // Contacts (with their first ticket) created by this batch, by identity; `fresh`: tickets
    // created here that no message has bumped yet.
    let mut created: HashMap<(i64, &str, &str), Ticket> = HashMap::new();
    let mut fresh = std::collections::HashSet::new();
    let mut born = std::collections::HashSet::new();
    let mut plans = Vec::with_capacity(arrivals.len());
    for (n, arrival) in arrivals.iter().enumerate() {
        let key = (
            arrival.tenant.0,
            arrival.connection_id.0,
            arrival.provider_id.as_str(),
        );
        if let Some(event) = seen[n].logged_event {
            plans.push(Plan::Duplicate(event));
            continue;
        }
        match first.entry(key) {
            Entry::Occupied(_) => {
                // The event id is known once the first one is logged (below).
                plans.push(Plan::LogOnly);
                continue;
            }
            Entry::Vacant(slot) => {
                slot.insert(n);
            }
        }
        let seen = &seen[n];
        let plain = !seen.message_stored
            && arrival.message.provider_id.is_some()
            && arrival.message.quoted_provider_id.is_none();
        let storable = match (&seen.contact, &seen.ticket, &arrival.new_contact_route) {
            (Some(contact), Some(ticket), _) => (plain
                && !contact.blocked
                && rename_wanted(
                    contact,
                    arrival.push_name.as_deref(),
                    arrival.push_name_renames,
                )
                .is_none())
            .then(|| ticket.clone()),
            // A first message: the contact and its ticket start here, once per identity even
            // when several first messages share the batch.
            (None, _, Some(route)) if plain => {
                let identity = (
                    arrival.tenant.0,
                    arrival.channel.as_str(),
                    arrival.external_id.as_str(),
                );
                match created.get(&identity) {
                    Some(ticket) => Some(ticket.clone()),
                    None => {
                        let ticket = create_contact_with_ticket(conn, arrival, route).await?;
                        fresh.insert(ticket.id.0);
                        born.insert(ticket.id.0);
                        created.insert(identity, ticket.clone());
                        Some(ticket)
                    }
                }
            }
            _ => None,
        };
        plans.push(match storable {
            Some(read) => {
                let ticket = tickets.entry(read.id.0).or_insert(read);
                let before = (!fresh.remove(&ticket.id.0)).then(|| ticket.clone());
                bump(ticket, &arrival.message, arrival.now);
                Plan::Store(Box::new((before, ticket.clone())))
            }
            None => Plan::LogOnly,
        });
    }
    let firsts: std::collections::HashSet<usize> = first.values().copied().collect();
    let logged: Vec<usize> = (0..arrivals.len()).filter(|n| firsts.contains(n)).collect();

    // 3. Every write in one command: the log, the messages, the tickets.
    let log: Vec<_> = logged
        .iter()
        .map(|&n| {
            let arrival = arrivals[n];
            let processed = matches!(plans[n], Plan::Store(_));
            (
                arrival.tenant.0,
                arrival.connection_id.0,
                arrival.provider_id.as_str(),
                arrival.received_at.0,
                arrival.raw_body.as_str(),
                if processed { "processed" } else { "received" },
                processed.then_some(arrival.now.0),
            )
        })
        .collect();
    let stored: Vec<(usize, &Ticket)> = plans
        .iter()
        .enumerate()
        .filter_map(|(n, plan)| match plan {
            Plan::Store(step) => Some((n, &step.1)),
            _ => None,
        })
        .collect();
    let store: Vec<serde_json::Value> = stored
        .iter()
        .map(|&(n, ticket)| {
            let arrival = arrivals[n];
            let message = &arrival.message;
            let media = message.media.as_ref();
            serde_json::json!([
                arrival.tenant.0,
                ticket.id.0,
                arrival.connection_id.0,
                ticket.contact_id.0,
                message.direction.as_str(),
                message.author.as_str(),
                message.kind.as_str(),
                message.body,
                media.and_then(|m| m.path.as_deref()),
                media.and_then(|m| m.mime.as_deref()),
                media.and_then(|m| m.size),
                media.and_then(|m| m.sha256.as_deref()),
                media.map(|m| m.state.as_str()),
                message.provider_id,
                message.status.as_str(),
                ticket.queue_id.map(|q| q.0),
                message.sent_at.0,
                arrival.now.0,
            ])
        })
        .collect();
    let bumps: Vec<_> = tickets
        .values()
        .map(|ticket| {
            (
                ticket.tenant_id.0,
                ticket.id.0,
                ticket.unread,
                ticket.last_message.as_str(),
                ticket.last_message_at.map(|at| at.0),
                ticket.last_inbound_at.map(|at| at.0),
                ticket.updated_at.0,
            )
        })
        .collect();
    let mut events: HashMap<(i64, i64, String), InboundEventId> = HashMap::new();
    let mut message_ids: HashMap<(i64, i64, String), MessageId> = HashMap::new();
    if !log.is_empty() {
        let rows: Vec<(String, i64, i64, i64, String)> = sqlx::query_as(WRITE)
            .bind(serde_json::to_string(&log)?)
            .bind(serde_json::to_string(&store)?)
            .bind(serde_json::to_string(&bumps)?)
            .fetch_all(&mut *conn)
            .await?;
        for (written, id, tenant, connection, provider_id) in rows {
            let key = (tenant, connection, provider_id);
            if written == "event" {
                events.insert(key, InboundEventId(id));
            } else {
                message_ids.insert(key, MessageId(id));
            }
        }
    }

    // 4. One outcome per arrival.
    let mut outcomes = Vec::with_capacity(arrivals.len());
    for (n, (arrival, plan)) in arrivals.iter().zip(plans).enumerate() {
        let event_key = (
            arrival.tenant.0,
            arrival.connection_id.0,
            arrival.provider_id.clone(),
        );
        let event = match plan {
            Plan::Duplicate(event) => {
                outcomes.push(Arrived::Duplicate(event));
                continue;
            }
            _ => *events.get(&event_key).ok_or(DbError::NotFound)?,
        };
        if !firsts.contains(&n) {
            outcomes.push(Arrived::Duplicate(event));
            continue;
        }
        outcomes.push(match plan {
            Plan::Store(step) => {
                let (before, ticket) = *step;
                let created = before.is_none();
                let message_key = (
                    arrival.tenant.0,
                    arrival.connection_id.0,
                    arrival.message.provider_id.clone().unwrap_or_default(),
                );
                let id = message_ids.remove(&message_key).ok_or(DbError::NotFound)?;
                let message = stored_message(id, arrival, &ticket);
                Arrived::Stored {
                    event,
                    wallet: std::mem::take(&mut seen[n].wallet),
                    facts: seen[n].facts.take().or_else(|| born_facts(&born, &ticket)),
                    stored: Box::new(Ingested {
                        ticket,
                        message,
                        created,
                        reopened: false,
                        before,
                    }),
                }
            }
            _ => Arrived::Recorded(event),
        });
    }
    Ok(outcomes)
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
