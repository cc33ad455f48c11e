//! Outbox claiming and delivery statuses (SPEC §7): agent replies are written `queued` in the same
//! transaction as the ticket bump; the sender claims due messages, moves them through `sending`
//! to `sent` or `failed`, and puts retries back in the queue.
//!
//! Every status move here is guarded by the status it expects (`WHERE status = 'sending'`), so two
//! senders, or a sender and a provider status arriving at the same moment, never both apply one.
//! Claiming: PostgreSQL locks the row with `FOR UPDATE SKIP LOCKED` (several instances share the
//! outbox); SQLite has one writer connection, so a guarded update is a safe claim on its own.

use crate::ingest::{Conn, on};
use crate::messages::MessageRow;
use crate::tickets::{TicketRow, ticket_columns};
use crate::{Backend, Db, DbError, DbResult, read, write};
use atende_domain::{
    ChannelKind, ConnectionId, ContactId, Message, MessageId, MessageKind, MessageStatus, QueueId,
    TenantId, Ticket, TicketId, Timestamp, UserId,
};

/// Longest preview kept in `tickets.last_message`.
const PREVIEW_CHARS: usize = 200;

pub use atende_domain::delivery::Lane;

/// A file already stored by the engine, attached to a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyMedia {
    pub path: String,
    pub mime: String,
    pub size: i64,
    pub sha256: String,
}

/// An agent's reply to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReply {
    pub ticket_id: TicketId,
    pub author_user_id: UserId,
    /// `text`, or the kind of the attached file.
    pub kind: MessageKind,
    /// The text, or the file's caption (may be empty with a file).
    pub body: String,
    /// The agent's signature line (`atende_domain::signature`), stored before `body`; empty when
    /// unsigned. Kept out of the ticket's preview, which shows what was said.
    pub signature: String,
    pub media: Option<ReplyMedia>,
    pub quoted_id: Option<MessageId>,
    pub idempotency_key: String,
    /// For a message of kind `template`: the call for the provider (`TemplateCall` in JSON). The
    /// ticket then records that its current cycle sent a template (SPEC §7 window).
    pub template_call: Option<String>,
    /// The ticket's auto-resolve due time after this reply, as the engine's rule computed it
    /// (`None`: leave the stored one as it is).
    pub auto_resolve_due: Option<Option<Timestamp>>,
    pub now: Timestamp,
}

// Writes nothing for a ticket of another tenant or a closed one (the engine checked; this guards
// against a close that landed in between).
const INSERT_REPLY: &str = "INSERT INTO messages (tenant_id, ticket_id, connection_id, contact_id,
        direction, author, author_user_id, kind, body, quoted_id, status, idempotency_key, lane,
        attempts, next_attempt_at, queue_stamp, sent_at, created_at, updated_at, media_path,
        media_mime, media_size, media_sha256, media_state, template_call)
    SELECT t.tenant_id, t.id, t.connection_id, t.contact_id, 'out', 'user', $3, $8, $4, $5,
        'queued', $6, 'interactive', 0, $7, t.queue_id, $7, $7, $7, $9, $10, $11, $12, $13, $14
    FROM tickets t WHERE t.tenant_id = $1 AND t.id = $2 AND t.status <> 'closed'
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
// An agent reply: the agent has seen the chat (unread 0) and the bot session ends (SPEC §9).
const BUMP_FOR_REPLY: &str = concat!(
    "UPDATE tickets SET last_message = $3,
        last_message_at = CASE WHEN last_message_at IS NULL OR last_message_at <= $4
            THEN $4 ELSE last_message_at END,
        updated_at = $4, unread = 0,
        template_cycle_id = CASE WHEN $5 THEN current_cycle_id ELSE template_cycle_id END,
        bot_flow_id = NULL, bot_flow_version = NULL, bot_node = NULL, bot_retries = 0,
        bot_last_at = NULL,
        auto_resolve_due_at = CASE WHEN $6 THEN $7 ELSE auto_resolve_due_at END
    WHERE tenant_id = $1 AND id = $2
    RETURNING ",
    ticket_columns!()
);
// The first agent reply of the attendance episode stamps its first response (the dashboard).
const MARK_FIRST_RESPONSE: &str = "UPDATE ticket_cycles SET first_response_at = $3
    WHERE tenant_id = $1 AND first_response_at IS NULL
        AND id = (SELECT current_cycle_id FROM tickets WHERE tenant_id = $1 AND id = $2)";
const BY_KEY: &str = "SELECT id, tenant_id, ticket_id, connection_id, contact_id, direction,
        author, author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at
    FROM messages WHERE tenant_id = $1 AND idempotency_key = $2";

/// What `queue_reply` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// A new message, queued, with its ticket as the same transaction left it.
    Created(Box<QueuedReply>),
    /// The idempotency key was used before: the message written then.
    Existing(Message),
}

/// A reply just written and the ticket it bumped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedReply {
    pub message: Message,
    pub ticket: Ticket,
}

/// Writes an agent reply `queued` (lane interactive, due now) and bumps the ticket, in one
/// transaction. A key already used in the tenant answers the message stored under it. A ticket of
/// another tenant, or closed → `NotFound`; a quoted message of another tenant →
/// `UnknownReference`.
pub async fn queue_reply(db: &Db, tenant: TenantId, reply: &NewReply) -> DbResult<Queued> {
    let written = write_reply(db, tenant, reply).await;
    settle_reply(db, tenant, reply, written).await
}

/// The reply's rows in a transaction of their own; `None` when nothing was written.
pub(crate) async fn write_reply(
    db: &Db,
    tenant: TenantId,
    reply: &NewReply,
) -> DbResult<Option<QueuedReply>> {
    match db {
        Db::Sqlite(store) => {
            let mut tx = store.write.begin().await?;
            let written = reply_in(&mut Conn::Sqlite(&mut tx), tenant, reply).await?;
            tx.commit().await?;
            Ok(written)
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let written = reply_in(&mut Conn::Postgres(&mut tx), tenant, reply).await?;
            tx.commit().await?;
            Ok(written)
        }
    }
}

/// Writes a reply's rows in the caller's transaction (its own, or a group commit's): the message,
/// the ticket bump and the cycle's first response. `None` when nothing was written: the ticket is
/// closed or not the tenant's.
pub(crate) async fn reply_in(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    reply: &NewReply,
) -> DbResult<Option<QueuedReply>> {
    // No look-up of the key first: the unique index answers a used key (the `Conflict` arm of
    // `settle_reply`), and the writer is the bottleneck of a busy SQLite store.
    let text = reply.body.trim();
    let preview: String = if text.is_empty() {
        format!("[{}]", reply.kind.as_str())
    } else {
        text.chars().take(PREVIEW_CHARS).collect()
    };
    let media = reply.media.as_ref();
    let body = format!("{}{}", reply.signature, reply.body);
    let (set_due, due) = match reply.auto_resolve_due {
        Some(due) => (true, due.map(|at| at.0)),
        None => (false, None),
    };
    let row: Option<MessageRow> = on!(conn, c => {
        sqlx::query_as(INSERT_REPLY)
            .bind(tenant.0)
            .bind(reply.ticket_id.0)
            .bind(reply.author_user_id.0)
            .bind(body.as_str())
            .bind(reply.quoted_id.map(|m| m.0))
            .bind(reply.idempotency_key.as_str())
            .bind(reply.now.0)
            .bind(reply.kind.as_str())
            .bind(media.map(|m| m.path.as_str()))
            .bind(media.map(|m| m.mime.as_str()))
            .bind(media.map(|m| m.size))
            .bind(media.map(|m| m.sha256.as_str()))
            .bind(media.map(|_| "stored"))
            .bind(reply.template_call.as_deref())
            .fetch_optional(&mut **c)
            .await?
    });
    let Some(row) = row else {
        return Ok(None);
    };
    let ticket: TicketRow = on!(conn, c => {
        sqlx::query_as(BUMP_FOR_REPLY)
            .bind(tenant.0)
            .bind(reply.ticket_id.0)
            .bind(preview.as_str())
            .bind(reply.now.0)
            .bind(reply.template_call.is_some())
            .bind(set_due)
            .bind(due)
            .fetch_one(&mut **c)
            .await?
    });
    on!(conn, c => {
        sqlx::query(MARK_FIRST_RESPONSE)
            .bind(tenant.0)
            .bind(reply.ticket_id.0)
            .bind(reply.now.0)
            .execute(&mut **c)
            .await
            .map(|_| ())?
    });
    Ok(Some(QueuedReply {
        message: row.into_model()?,
        ticket: ticket.into_model()?,
    }))
}

/// What a reply's write means for its caller: the rows written, or the message a used key
/// already stands for; nothing written and no such key → `NotFound` (closed ticket, other tenant);
/// a quoted message that is not the tenant's → `UnknownReference`.
pub async fn settle_reply(
    db: &Db,
    tenant: TenantId,
    reply: &NewReply,
    written: DbResult<Option<QueuedReply>>,
) -> DbResult<Queued> {
    match written {
        Ok(Some(written)) => Ok(Queued::Created(Box::new(written))),
        // No row written: the ticket is closed or not the tenant's, unless the key was used.
        Ok(None) => match find_by_key(db, tenant, &reply.idempotency_key).await? {
            Some(existing) => Ok(Queued::Existing(existing)),
            None => Err(DbError::NotFound),
        },
        // Two requests with the same key raced: the other one's message is the answer.
        Err(DbError::Conflict { constraint }) => {
            match find_by_key(db, tenant, &reply.idempotency_key).await? {
                Some(existing) => Ok(Queued::Existing(existing)),
                None => Err(DbError::Conflict { constraint }),
            }
        }
        Err(DbError::ForeignKey(_)) => Err(DbError::UnknownReference {
            field: "quoted_id",
            id: reply.quoted_id.map_or(0, |m| m.0),
        }),
        Err(other) => Err(other),
    }
}

const SIGNATURE_DISABLED: &str =
    "SELECT signature_disabled FROM tickets WHERE tenant_id = $1 AND id = $2";
const SET_SIGNATURE_DISABLED: &str =
    "UPDATE tickets SET signature_disabled = $3 WHERE tenant_id = $1 AND id = $2";

/// Whether the agent switched the signature off on this ticket (SPEC §7). Unknown ticket →
/// `NotFound`.
pub async fn signature_disabled(db: &Db, tenant: TenantId, ticket: TicketId) -> DbResult<bool> {
    let disabled: Option<bool> = read!(db, pool => {
        sqlx::query_scalar(SIGNATURE_DISABLED)
            .bind(tenant.0)
            .bind(ticket.0)
            .fetch_optional(pool)
            .await?
    });
    disabled.ok_or(DbError::NotFound)
}

/// Switches the signature off (`true`) or back on for a ticket's agent replies. Unknown ticket →
/// `NotFound`. A preference, not activity: `updated_at` is left alone (it orders the lists).
pub async fn set_signature_disabled(
    db: &Db,
    tenant: TenantId,
    ticket: TicketId,
    disabled: bool,
) -> DbResult<()> {
    let changed: u64 = write!(db, pool => {
        sqlx::query(SET_SIGNATURE_DISABLED)
            .bind(tenant.0)
            .bind(ticket.0)
            .bind(disabled)
            .execute(pool)
            .await?
            .rows_affected()
    });
    if changed == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// What an agent's reply needs to know about its ticket, read in one round trip: the ticket, its
/// signature switch, its channel, its contact's wallet owners (the visibility facts) and its
/// attendance cycle's opening (the auto-resolve rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyContext {
    pub ticket: Ticket,
    pub signature_disabled: bool,
    pub channel: ChannelKind,
    /// The contact's wallet owners, in order.
    pub wallet: Vec<UserId>,
    /// When the current cycle opened (the ticket's creation when it has none).
    pub cycle_opened_at: Timestamp,
}

macro_rules! reply_context_sql {
    ($wallet_list:expr) => {
        concat!(
            "SELECT t.id AS id, t.tenant_id AS tenant_id, t.contact_id AS contact_id,
                t.connection_id AS connection_id, t.status AS status, t.owner_id AS owner_id,
                t.queue_id AS queue_id, t.is_group AS is_group, t.protocol AS protocol,
                t.bot_flow_id AS bot_flow_id,
                t.integration_session IS NOT NULL AS integration_active,
                t.wallet_overflowed AS wallet_overflowed, t.unread AS unread,
                t.last_message AS last_message, t.last_message_at AS last_message_at,
                t.last_inbound_at AS last_inbound_at, t.out_of_hours_sent AS out_of_hours_sent,
                t.pause_reason AS pause_reason, t.current_cycle_id AS current_cycle_id,
                t.closed_at AS closed_at, t.created_at AS created_at, t.updated_at AS updated_at,
                t.signature_disabled AS signature_disabled, c.kind AS channel,
                COALESCE(y.opened_at, t.created_at) AS cycle_opened_at, ",
            $wallet_list,
            " AS wallet_list
            FROM tickets t
            JOIN connections c ON c.tenant_id = t.tenant_id AND c.id = t.connection_id
            LEFT JOIN ticket_cycles y ON y.tenant_id = t.tenant_id AND y.id = t.current_cycle_id
            WHERE t.tenant_id = $1 AND t.id = $2"
        )
    };
}

#[derive(sqlx::FromRow)]
struct ReplyContextRow {
    #[sqlx(flatten)]
    ticket: TicketRow,
    signature_disabled: bool,
    channel: String,
    cycle_opened_at: i64,
    wallet_list: Option<String>,
}

/// The [`ReplyContext`] of a ticket of the tenant; `NotFound` otherwise.
pub async fn reply_context(db: &Db, tenant: TenantId, ticket: TicketId) -> DbResult<ReplyContext> {
    const SQLITE: &str = reply_context_sql!(
        "(SELECT group_concat(user_id, ',') FROM (SELECT user_id FROM wallets w
            WHERE w.tenant_id = t.tenant_id AND w.contact_id = t.contact_id ORDER BY position))"
    );
    const POSTGRES: &str = reply_context_sql!(
        "(SELECT string_agg(user_id::text, ',' ORDER BY position) FROM wallets w
            WHERE w.tenant_id = t.tenant_id AND w.contact_id = t.contact_id)"
    );
    let sql = match db.backend() {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let row: Option<ReplyContextRow> = read!(db, pool => {
        sqlx::query_as(sql).bind(tenant.0).bind(ticket.0).fetch_optional(pool).await?
    });
    let row = row.ok_or(DbError::NotFound)?;
    let wallet = crate::parse_id_list(row.wallet_list.as_deref(), "wallets.user_id")?;
    Ok(ReplyContext {
        signature_disabled: row.signature_disabled,
        channel: crate::queues::parse_enum(&row.channel, ChannelKind::parse, "connections.kind")?,
        cycle_opened_at: Timestamp(row.cycle_opened_at),
        wallet: wallet.into_iter().map(UserId).collect(),
        ticket: row.ticket.into_model()?,
    })
}

async fn find_by_key(db: &Db, tenant: TenantId, key: &str) -> DbResult<Option<Message>> {
    // Read through the writer on SQLite: a key just committed must be seen at once.
    let row: Option<MessageRow> = write!(db, pool => {
        sqlx::query_as(BY_KEY).bind(tenant.0).bind(key).fetch_optional(pool).await?
    });
    row.map(MessageRow::into_model).transpose()
}

// ---------------------------------------------------------------------------------------------
// The sender's side
// ---------------------------------------------------------------------------------------------

/// A queued message as the sender needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub ticket_id: TicketId,
    pub connection_id: ConnectionId,
    pub contact_id: ContactId,
    pub lane: Lane,
    pub kind: MessageKind,
    pub body: String,
    pub quoted_provider_id: Option<String>,
    /// Path and type of the stored file to send.
    pub media: Option<(String, String)>,
    pub idempotency_key: String,
    /// Tries so far, this one included once claimed.
    pub attempts: i64,
    pub author_user_id: Option<UserId>,
    pub queue_stamp: Option<QueueId>,
    /// The contact's identity on the connection's channel: where the adapter sends it (`None`:
    /// the contact has none there).
    pub chat_id: Option<String>,
}

type OutgoingRow = (
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn outgoing(row: OutgoingRow) -> DbResult<Outgoing> {
    let (
        id,
        tenant,
        ticket,
        connection,
        contact,
        lane,
        kind,
        body,
        quoted,
        key,
        attempts,
        author,
        stamp,
        media_path,
        media_mime,
        chat_id,
    ) = row;
    Ok(Outgoing {
        id: MessageId(id),
        tenant_id: TenantId(tenant),
        ticket_id: TicketId(ticket),
        connection_id: ConnectionId(connection),
        contact_id: ContactId(contact),
        lane: Lane::parse(lane.as_deref()),
        kind: MessageKind::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("messages.kind: {kind}")))?,
        body,
        quoted_provider_id: quoted,
        media: media_path.map(|path| {
            let mime = media_mime.unwrap_or_else(|| "application/octet-stream".to_owned());
            (path, mime)
        }),
        // Messages written before keys existed get one derived from their id.
        idempotency_key: key.unwrap_or_else(|| format!("msg:{id}")),
        attempts,
        author_user_id: author.map(UserId),
        queue_stamp: stamp.map(QueueId),
        chat_id,
    })
}

// The first queued message of each chat that is due, oldest due first. A message waits while an
// earlier message of its chat (contact + connection) is queued or sending: strict order per chat,
// across retries and across instances. Not led by tenant_id: the sender serves every tenant.
// The heads come from `outbox_chats` (migration 0016), which triggers on `messages` keep equal to
// the first pending message of every chat, with the head's due time (NULL while it is being
// sent): the query reads that table's due index in order and stops at the limit, however long the
// backlog behind the heads. `m.status = 'queued'` guards against a head that moved in between.
// The chat id comes along (the contact's first identity on the connection's channel), so a send
// costs no lookup of its own.
const DUE: &str = "SELECT m.id, m.tenant_id, m.ticket_id, m.connection_id, m.contact_id, m.lane,
        m.kind, m.body, q.provider_id, m.idempotency_key, m.attempts, m.author_user_id,
        m.queue_stamp, m.media_path, m.media_mime,
        (SELECT i.external_id FROM contact_identities i
            WHERE i.tenant_id = m.tenant_id AND i.contact_id = m.contact_id
                AND i.channel = c.kind
            ORDER BY i.id LIMIT 1)
    FROM outbox_chats h
    JOIN messages m ON m.id = h.head_id
    JOIN connections c ON c.tenant_id = m.tenant_id AND c.id = m.connection_id
    LEFT JOIN messages q ON q.tenant_id = m.tenant_id AND q.id = m.quoted_id
    WHERE h.due_at <= $1 AND m.status = 'queued'
    ORDER BY h.due_at, h.head_id
    LIMIT $2";
// The earliest due time of a chat's head. A queued message behind its head cannot go before the
// head is done, and the end of a send (or a new message, a retry, a resend) wakes the loop, so
// the heads are all the sleeping loop must watch.
const NEXT_DUE: &str = "SELECT MIN(due_at) FROM outbox_chats";

/// Due messages that may go now (the first of their chat), at most `limit`, across tenants.
pub async fn platform_due(db: &Db, now: Timestamp, limit: i64) -> DbResult<Vec<Outgoing>> {
    // SQLite readers see every committed claim and outcome (WAL), so the writer stays free.
    let rows: Vec<OutgoingRow> = read!(db, pool => {
        sqlx::query_as(DUE).bind(now.0).bind(limit.max(1)).fetch_all(pool).await?
    });
    rows.into_iter().map(outgoing).collect()
}

/// The earliest `next_attempt_at` of a queued message that is the first pending one of its chat.
pub async fn platform_next_due(db: &Db) -> DbResult<Option<Timestamp>> {
    let next: Option<i64> = read!(db, pool => {
        sqlx::query_scalar(NEXT_DUE).fetch_one(pool).await?
    });
    Ok(next.map(Timestamp))
}

const LOCK_QUEUED: &str =
    "SELECT id FROM messages WHERE tenant_id = $1 AND id = $2 AND status = 'queued'
    FOR UPDATE SKIP LOCKED";
const CLAIM: &str = "UPDATE messages SET status = 'sending', attempts = attempts + 1,
        outcome_unknown = FALSE, updated_at = $3
    WHERE tenant_id = $1 AND id = $2 AND status = 'queued'
    RETURNING attempts";

/// Moves a queued message to `sending` (attempts + 1) before the adapter is called. `None` when
/// another sender took it first (or it is no longer queued). Answers the attempts so far.
pub async fn claim(
    db: &Db,
    tenant: TenantId,
    id: MessageId,
    now: Timestamp,
) -> DbResult<Option<i64>> {
    match db {
        Db::Sqlite(store) => {
            let attempts: Option<i64> = sqlx::query_scalar(CLAIM)
                .bind(tenant.0)
                .bind(id.0)
                .bind(now.0)
                .fetch_optional(&store.write)
                .await?;
            Ok(attempts)
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            let locked: Option<i64> = sqlx::query_scalar(LOCK_QUEUED)
                .bind(tenant.0)
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
            if locked.is_none() {
                return Ok(None);
            }
            let attempts: Option<i64> = sqlx::query_scalar(CLAIM)
                .bind(tenant.0)
                .bind(id.0)
                .bind(now.0)
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(attempts)
        }
    }
}

const MARK_SENT: &str = "UPDATE messages SET status = 'sent', provider_id = $3,
        failure_reason = NULL, outcome_unknown = FALSE, next_attempt_at = NULL, updated_at = $4
    WHERE tenant_id = $1 AND id = $2 AND status = 'sending'
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
const MARK_FAILED: &str = "UPDATE messages SET status = 'failed', failure_reason = $3,
        outcome_unknown = FALSE, next_attempt_at = NULL, updated_at = $4
    WHERE tenant_id = $1 AND id = $2 AND status = 'sending'
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
// `refund` = 1 gives the attempt back (a rate-limit answer is not the message's fault).
const RETRY_LATER: &str = "UPDATE messages SET status = 'queued', failure_reason = $3,
        next_attempt_at = $4, attempts = attempts - $5, updated_at = $6
    WHERE tenant_id = $1 AND id = $2 AND status = 'sending'
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
const MARK_UNKNOWN: &str = "UPDATE messages SET outcome_unknown = TRUE, failure_reason = $3,
        updated_at = $4
    WHERE tenant_id = $1 AND id = $2 AND status = 'sending'
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
const RESEND: &str = "UPDATE messages SET status = 'queued', failure_reason = NULL,
        outcome_unknown = FALSE, attempts = 0, next_attempt_at = $3, updated_at = $3,
        lane = COALESCE(lane, 'interactive')
    WHERE tenant_id = $1 AND id = $2 AND status = 'failed' AND direction = 'out'
        AND kind <> 'system_note'
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
// Sends whose outcome stayed unknown past the deadline: failed with the reason, so the chat's
// later messages stop waiting (the provider's status can still prove delivery afterwards).
const EXPIRE_UNKNOWN: &str = "UPDATE messages SET status = 'failed', outcome_unknown = FALSE,
        failure_reason = $2, updated_at = $3
    WHERE status = 'sending' AND outcome_unknown = TRUE AND updated_at <= $1
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
// A `sending` row nobody finished for a long time: its sender died mid-send, so whether the
// provider got it is unknown. Flagged, never re-sent blindly.
const FLAG_ABANDONED: &str = "UPDATE messages SET outcome_unknown = TRUE,
        failure_reason = $2, updated_at = $3
    WHERE status = 'sending' AND outcome_unknown = FALSE AND updated_at <= $1
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";

async fn guarded(
    db: &Db,
    sql: &'static str,
    tenant: TenantId,
    id: MessageId,
    text: Option<&str>,
    extra: &[i64],
) -> DbResult<Option<Message>> {
    let row: Option<MessageRow> = write!(db, pool => {
        let mut query = sqlx::query_as(sql).bind(tenant.0).bind(id.0).bind(text);
        for value in extra {
            query = query.bind(*value);
        }
        query.fetch_optional(pool).await?
    });
    row.map(MessageRow::into_model).transpose()
}

/// `sending → sent` with the provider's id. `None` if the message was no longer `sending`.
pub async fn mark_sent(
    db: &Db,
    tenant: TenantId,
    id: MessageId,
    provider_id: &str,
    now: Timestamp,
) -> DbResult<Option<Message>> {
    guarded(db, MARK_SENT, tenant, id, Some(provider_id), &[now.0]).await
}

/// `sending → failed` with the provider's reason.
pub async fn mark_failed(
    db: &Db,
    tenant: TenantId,
    id: MessageId,
    reason: &str,
    now: Timestamp,
) -> DbResult<Option<Message>> {
    guarded(db, MARK_FAILED, tenant, id, Some(reason), &[now.0]).await
}

/// `sending → queued` for another try at `at`; `refund` gives the attempt back.
pub async fn retry_later(
    db: &Db,
    tenant: TenantId,
    id: MessageId,
    reason: &str,
    at: Timestamp,
    refund: bool,
    now: Timestamp,
) -> DbResult<Option<Message>> {
    let extra = [at.0, i64::from(refund), now.0];
    guarded(db, RETRY_LATER, tenant, id, Some(reason), &extra).await
}

/// Keeps the message `sending`, flagged: the provider may have it (SPEC §7).
pub async fn mark_outcome_unknown(
    db: &Db,
    tenant: TenantId,
    id: MessageId,
    reason: &str,
    now: Timestamp,
) -> DbResult<Option<Message>> {
    guarded(db, MARK_UNKNOWN, tenant, id, Some(reason), &[now.0]).await
}

/// `failed → queued` (the resend command), due now. `None` when the message is not a failed
/// outbound message of the tenant.
pub async fn resend(
    db: &Db,
    tenant: TenantId,
    id: MessageId,
    now: Timestamp,
) -> DbResult<Option<Message>> {
    let row: Option<MessageRow> = write!(db, pool => {
        sqlx::query_as(RESEND).bind(tenant.0).bind(id.0).bind(now.0).fetch_optional(pool).await?
    });
    row.map(MessageRow::into_model).transpose()
}

async fn sweep(
    db: &Db,
    sql: &'static str,
    before: Timestamp,
    reason: &str,
    now: Timestamp,
) -> DbResult<Vec<Message>> {
    let rows: Vec<MessageRow> = write!(db, pool => {
        sqlx::query_as(sql).bind(before.0).bind(reason).bind(now.0).fetch_all(pool).await?
    });
    rows.into_iter().map(MessageRow::into_model).collect()
}

/// Fails flagged sends last touched at or before `before`, across tenants.
pub async fn platform_expire_unknown(
    db: &Db,
    before: Timestamp,
    reason: &str,
    now: Timestamp,
) -> DbResult<Vec<Message>> {
    sweep(db, EXPIRE_UNKNOWN, before, reason, now).await
}

/// Flags as outcome-unknown the sends left `sending` at or before `before` (a sender that died).
pub async fn platform_flag_abandoned(
    db: &Db,
    before: Timestamp,
    reason: &str,
    now: Timestamp,
) -> DbResult<Vec<Message>> {
    sweep(db, FLAG_ABANDONED, before, reason, now).await
}

const CHAT_ID: &str = "SELECT external_id FROM contact_identities
    WHERE tenant_id = $1 AND contact_id = $2 AND channel = $3
    ORDER BY id LIMIT 1";

/// The contact's identity on a channel kind: the chat id an adapter sends to.
pub async fn chat_id(
    db: &Db,
    tenant: TenantId,
    contact: ContactId,
    channel: &str,
) -> DbResult<Option<String>> {
    let id: Option<String> = read!(db, pool => {
        sqlx::query_scalar(CHAT_ID)
            .bind(tenant.0)
            .bind(contact.0)
            .bind(channel)
            .fetch_optional(pool)
            .await?
    });
    Ok(id)
}

/// Puts queued messages that cannot go yet (their connection is paced or paused) out of the due
/// set until `until`, so they do not fill every look at the outbox while other connections wait.
/// Order inside a chat is by id, so it is unaffected.
pub async fn snooze(
    db: &Db,
    tenant: TenantId,
    ids: &[MessageId],
    until: Timestamp,
) -> DbResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = write!(db, pool => {
        let mut query = sqlx::QueryBuilder::new("UPDATE messages SET next_attempt_at = ");
        query
            .push_bind(until.0)
            .push(" WHERE tenant_id = ")
            .push_bind(tenant.0)
            .push(" AND status = 'queued' AND next_attempt_at < ")
            .push_bind(until.0)
            .push(" AND id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.0);
        }
        list.push_unseparated(")");
        query.build().execute(pool).await?.rows_affected()
    });
    Ok(done)
}

// ---------------------------------------------------------------------------------------------
// Recovery of sends whose outcome is unknown
// ---------------------------------------------------------------------------------------------

/// A send flagged outcome-unknown, as the sender's sweep needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unconfirmed {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    /// When it was flagged (or last touched since).
    pub flagged_at: Timestamp,
}

const UNCONFIRMED: &str = "SELECT id, tenant_id, connection_id, updated_at FROM messages
    WHERE status = 'sending' AND outcome_unknown = TRUE
    ORDER BY updated_at, id LIMIT $1";
// Only a flagged send the provider never confirmed, flagged at or before $4.
const REQUEUE_UNCONFIRMED: &str = "UPDATE messages SET status = 'queued', outcome_unknown = FALSE,
        failure_reason = $3, next_attempt_at = $5, updated_at = $5
    WHERE tenant_id = $1 AND id = $2 AND status = 'sending' AND outcome_unknown = TRUE
        AND provider_id IS NULL AND updated_at <= $4
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
// The provider reports a message id we never learnt, sent to chat $4/$5 of connection $2. Strict
// order per chat means at most one message of the chat can be out without its id: the first one
// not yet confirmed that was tried (`sending`, or queued again after a try). The id must be new
// to the connection, so a late status of a known message never lands on another one.
const RECONCILE: &str = "UPDATE messages SET status = $7, provider_id = $6, failure_reason = $8,
        outcome_unknown = FALSE, next_attempt_at = NULL, updated_at = $9
    WHERE tenant_id = $1 AND provider_id IS NULL
        AND (status = 'sending' OR (status = 'queued' AND attempts > 0))
        AND id = (SELECT m.id FROM messages m
            JOIN contact_identities i ON i.tenant_id = m.tenant_id AND i.contact_id = m.contact_id
            WHERE m.tenant_id = $1 AND m.connection_id = $2 AND i.channel = $3
                AND i.external_id IN ($4, $5) AND m.direction = 'out' AND m.provider_id IS NULL
                AND (m.status = 'sending' OR (m.status = 'queued' AND m.attempts > 0))
            ORDER BY m.id LIMIT 1)
        AND NOT EXISTS (SELECT 1 FROM messages k
            WHERE k.tenant_id = $1 AND k.connection_id = $2 AND k.provider_id = $6)
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";

/// Marks the sends this sender still has in flight as alive: their `updated_at` moves to `now`,
/// so a `sending` row nobody touched for a while belongs to a sender that died (see
/// [`platform_flag_abandoned`]). Across tenants: message ids are unique in the store.
pub async fn platform_touch_sending(db: &Db, ids: &[MessageId], now: Timestamp) -> DbResult<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let done = write!(db, pool => {
        let mut query = sqlx::QueryBuilder::new("UPDATE messages SET updated_at = ");
        query
            .push_bind(now.0)
            .push(" WHERE status = 'sending' AND outcome_unknown = FALSE AND id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.0);
        }
        list.push_unseparated(")");
        query.build().execute(pool).await?.rows_affected()
    });
    Ok(done)
}

/// Sends flagged outcome-unknown, longest flagged first, across tenants.
pub async fn platform_unconfirmed(db: &Db, limit: i64) -> DbResult<Vec<Unconfirmed>> {
    let rows: Vec<(i64, i64, i64, i64)> = read!(db, pool => {
        sqlx::query_as(UNCONFIRMED).bind(limit.max(1)).fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .map(|(id, tenant, connection, flagged_at)| Unconfirmed {
            id: MessageId(id),
            tenant_id: TenantId(tenant),
            connection_id: ConnectionId(connection),
            flagged_at: Timestamp(flagged_at),
        })
        .collect())
}

/// Puts a flagged send back in the queue (due `now`) when it was flagged at or before `before`
/// and the provider never confirmed it: the provider's silence says the request never reached
/// it. `None` when it moved meanwhile (confirmed, failed, or not flagged long enough).
pub async fn requeue_unconfirmed(
    db: &Db,
    tenant: TenantId,
    id: MessageId,
    before: Timestamp,
    reason: &str,
    now: Timestamp,
) -> DbResult<Option<Message>> {
    let extra = [before.0, now.0];
    guarded(db, REQUEUE_UNCONFIRMED, tenant, id, Some(reason), &extra).await
}

/// What a provider said about a message whose id it named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderStatus<'a> {
    /// The provider's id of the message.
    pub provider_id: &'a str,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: MessageStatus,
    /// The provider's reason, kept when `status` is `failed`.
    pub reason: Option<&'a str>,
}

/// Settles the one unconfirmed send of a chat with a provider status whose message id we never
/// learnt (the send's answer was lost to a crash or a timeout): the chat is the contact whose
/// identity on `channel` is `recipient` (with or without a leading `+`). Answers the settled
/// message; `None` when no send of that chat is waiting for its id, or the id is known already.
#[allow(clippy::too_many_arguments)]
pub async fn reconcile_unconfirmed(
    db: &Db,
    tenant: TenantId,
    connection: ConnectionId,
    channel: ChannelKind,
    recipient: &str,
    status: ProviderStatus<'_>,
    now: Timestamp,
) -> DbResult<Option<Message>> {
    let bare = recipient.trim().trim_start_matches('+');
    let plus = format!("+{bare}");
    let reason = (status.status == MessageStatus::Failed)
        .then_some(status.reason)
        .flatten();
    let row: DbResult<Option<MessageRow>> = write!(db, pool => {
        async {
            let row: Option<MessageRow> = sqlx::query_as(RECONCILE)
                .bind(tenant.0)
                .bind(connection.0)
                .bind(channel.as_str())
                .bind(bare)
                .bind(plus.as_str())
                .bind(status.provider_id)
                .bind(status.status.as_str())
                .bind(reason)
                .bind(now.0)
                .fetch_optional(pool)
                .await?;
            Ok::<_, DbError>(row)
        }
        .await
    });
    match row {
        Ok(row) => row.map(MessageRow::into_model).transpose(),
        // The same id landed on a message meanwhile (a concurrent answer): nothing to settle.
        Err(DbError::Conflict { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

// ---------------------------------------------------------------------------------------------
// Batches of the sender's hot path
// ---------------------------------------------------------------------------------------------

/// Columns of a message row, for the statements built with `QueryBuilder`.
const MESSAGE_COLUMNS: &str = "id, tenant_id, ticket_id, connection_id, contact_id, direction,
    author, author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
    idempotency_key, queue_stamp, imported, sent_at, created_at";

const CLAIM_MANY: &str = "UPDATE messages SET status = 'sending', attempts = attempts + 1,
    outcome_unknown = FALSE, updated_at = ";

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    message: MessageRow,
    attempts: i64,
}

/// A message the sender took: its row (now `sending`) and its tries so far, this one included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub message: Message,
    pub attempts: i64,
}

/// `claim` for many messages in one statement (ids are unique across tenants). Answers those
/// still queued, now `sending`; the others were taken by another sender or moved meanwhile.
/// PostgreSQL skips rows another instance holds (`FOR UPDATE SKIP LOCKED`).
pub async fn platform_claim_many(
    db: &Db,
    ids: &[MessageId],
    now: Timestamp,
) -> DbResult<Vec<Claimed>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ClaimedRow> = match db {
        Db::Sqlite(store) => {
            let mut query = sqlx::QueryBuilder::new(CLAIM_MANY);
            query
                .push_bind(now.0)
                .push(" WHERE status = 'queued' AND id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id.0);
            }
            query
                .push(") RETURNING ")
                .push(MESSAGE_COLUMNS)
                .push(", attempts");
            query.build_query_as().fetch_all(&store.write).await?
        }
        Db::Postgres(pool) => {
            let mut query = sqlx::QueryBuilder::new(CLAIM_MANY);
            query
                .push_bind(now.0)
                .push(" WHERE status = 'queued' AND id IN (")
                .push("SELECT id FROM messages WHERE status = 'queued' AND id IN (");
            let mut list = query.separated(", ");
            for id in ids {
                list.push_bind(id.0);
            }
            query
                .push(") FOR UPDATE SKIP LOCKED) RETURNING ")
                .push(MESSAGE_COLUMNS)
                .push(", attempts");
            query.build_query_as().fetch_all(pool).await?
        }
    };
    rows.into_iter()
        .map(|row| {
            Ok(Claimed {
                message: row.message.into_model()?,
                attempts: row.attempts,
            })
        })
        .collect()
}

/// `mark_sent` for many messages in one statement: `sending → sent` with each one's provider
/// id. Answers the messages moved (one no longer `sending` is left alone).
pub async fn platform_mark_sent_many(
    db: &Db,
    sent: &[(TenantId, MessageId, &str)],
    now: Timestamp,
) -> DbResult<Vec<Message>> {
    if sent.is_empty() {
        return Ok(Vec::new());
    }
    let rows: DbResult<Vec<MessageRow>> = write!(db, pool => {
        async {
            let mut query = sqlx::QueryBuilder::new("WITH v (id, provider_id) AS (VALUES ");
            let mut list = query.separated(", ");
            for (_, id, provider_id) in sent {
                list.push("(CAST(")
                    .push_bind_unseparated(id.0)
                    .push_unseparated(" AS BIGINT), CAST(")
                    .push_bind_unseparated(*provider_id)
                    .push_unseparated(" AS TEXT))");
            }
            query
                .push(") UPDATE messages SET status = 'sent', ")
                .push("provider_id = (SELECT v.provider_id FROM v WHERE v.id = messages.id), ")
                .push("failure_reason = NULL, outcome_unknown = FALSE, next_attempt_at = NULL, ")
                .push("updated_at = ")
                .push_bind(now.0)
                .push(" WHERE status = 'sending' AND id IN (SELECT id FROM v) RETURNING ")
                .push(MESSAGE_COLUMNS);
            let rows: Vec<MessageRow> = query.build_query_as().fetch_all(pool).await?;
            Ok::<_, DbError>(rows)
        }
        .await
    });
    match rows {
        Ok(rows) => rows.into_iter().map(MessageRow::into_model).collect(),
        // A provider id already taken fails the whole statement: one by one, so only the
        // message at fault stays `sending` (the sweep flags it).
        Err(DbError::Conflict { .. }) => {
            let mut moved = Vec::with_capacity(sent.len());
            for (tenant, id, provider_id) in sent {
                match mark_sent(db, *tenant, *id, provider_id, now).await {
                    Ok(Some(message)) => moved.push(message),
                    Ok(None) | Err(DbError::Conflict { .. }) => {}
                    Err(other) => return Err(other),
                }
            }
            Ok(moved)
        }
        Err(other) => Err(other),
    }
}
