//! Messages of tickets (the storage half; the pipeline and the sender decide what is written).

use crate::queues::{QUEUE_IN_TENANT, USER_IN_TENANT, parse_enum};
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{
    ConnectionId, ContactId, Message, MessageAuthor, MessageDirection, MessageId, MessageKind,
    MessageStatus, QueueId, TenantId, TicketId, Timestamp, UserId,
};

/// A message to store. `connection_id` and `contact_id` must be the ticket's.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub ticket_id: TicketId,
    pub connection_id: ConnectionId,
    pub contact_id: ContactId,
    pub direction: MessageDirection,
    pub author: MessageAuthor,
    pub author_user_id: Option<UserId>,
    pub kind: MessageKind,
    pub body: String,
    /// Unique per connection.
    pub provider_id: Option<String>,
    pub quoted_id: Option<MessageId>,
    pub status: MessageStatus,
    pub failure_reason: Option<String>,
    /// Unique per tenant.
    pub idempotency_key: Option<String>,
    /// The ticket's queue when the message was written.
    pub queue_stamp: Option<QueueId>,
    pub imported: bool,
    /// Inbound: the provider's timestamp; outbound: when it was queued.
    pub sent_at: Timestamp,
}

#[derive(sqlx::FromRow)]
pub(crate) struct MessageRow {
    id: i64,
    tenant_id: i64,
    ticket_id: i64,
    connection_id: i64,
    contact_id: i64,
    direction: String,
    author: String,
    author_user_id: Option<i64>,
    kind: String,
    body: String,
    provider_id: Option<String>,
    quoted_id: Option<i64>,
    status: String,
    failure_reason: Option<String>,
    idempotency_key: Option<String>,
    queue_stamp: Option<i64>,
    imported: bool,
    sent_at: i64,
    created_at: i64,
}

impl MessageRow {
    pub(crate) fn into_model(self) -> DbResult<Message> {
        Ok(Message {
            id: MessageId(self.id),
            tenant_id: TenantId(self.tenant_id),
            ticket_id: TicketId(self.ticket_id),
            connection_id: ConnectionId(self.connection_id),
            contact_id: ContactId(self.contact_id),
            direction: parse_enum(
                &self.direction,
                MessageDirection::parse,
                "messages.direction",
            )?,
            author: parse_enum(&self.author, MessageAuthor::parse, "messages.author")?,
            author_user_id: self.author_user_id.map(UserId),
            kind: parse_enum(&self.kind, MessageKind::parse, "messages.kind")?,
            body: self.body,
            provider_id: self.provider_id,
            quoted_id: self.quoted_id.map(MessageId),
            status: parse_enum(&self.status, MessageStatus::parse, "messages.status")?,
            failure_reason: self.failure_reason,
            idempotency_key: self.idempotency_key,
            queue_stamp: self.queue_stamp.map(QueueId),
            imported: self.imported,
            sent_at: Timestamp(self.sent_at),
            created_at: Timestamp(self.created_at),
        })
    }
}

// The SELECT from tickets makes the insert write nothing unless the ticket is in this tenant and
// has this connection and contact.
const INSERT: &str = "INSERT INTO messages (tenant_id, ticket_id, connection_id, contact_id,
        direction, author, author_user_id, kind, body, provider_id, quoted_id, status,
        failure_reason, idempotency_key, queue_stamp, imported, sent_at, created_at, updated_at)
    SELECT t.tenant_id, t.id, t.connection_id, t.contact_id, $5, $6, $7, $8, $9, $10, $11, $12,
        $13, $14, $15, $16, $17, $18, $18
    FROM tickets t
    WHERE t.tenant_id = $1 AND t.id = $2 AND t.connection_id = $3 AND t.contact_id = $4
    RETURNING id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at";
const GET: &str = "SELECT id, tenant_id, ticket_id, connection_id, contact_id, direction, author,
        author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at
    FROM messages WHERE tenant_id = $1 AND id = $2";
const BY_IDEMPOTENCY_KEY: &str = "SELECT id, tenant_id, ticket_id, connection_id, contact_id,
        direction, author, author_user_id, kind, body, provider_id, quoted_id, status,
        failure_reason, idempotency_key, queue_stamp, imported, sent_at, created_at
    FROM messages WHERE tenant_id = $1 AND idempotency_key = $2";
const LIST_FOR_TICKET: &str =
    "SELECT id, tenant_id, ticket_id, connection_id, contact_id, direction,
        author, author_user_id, kind, body, provider_id, quoted_id, status, failure_reason,
        idempotency_key, queue_stamp, imported, sent_at, created_at
    FROM messages WHERE tenant_id = $1 AND ticket_id = $2
    ORDER BY sent_at DESC, id DESC LIMIT $3";
const LIST_FOR_TICKET_BEFORE: &str = "SELECT id, tenant_id, ticket_id, connection_id, contact_id,
        direction, author, author_user_id, kind, body, provider_id, quoted_id, status,
        failure_reason, idempotency_key, queue_stamp, imported, sent_at, created_at
    FROM messages WHERE tenant_id = $1 AND ticket_id = $2 AND (sent_at, id) < ($3, $4)
    ORDER BY sent_at DESC, id DESC LIMIT $5";
const TICKET_PARTIES: &str =
    "SELECT connection_id, contact_id FROM tickets WHERE tenant_id = $1 AND id = $2";
const MESSAGE_IN_TENANT: &str = "SELECT id FROM messages WHERE tenant_id = $1 AND id = $2";

/// Stores a message. A provider id already stored on the connection, or an idempotency key
/// already used in the tenant → `Conflict`. A ticket of another tenant, or a connection or contact
/// that is not the ticket's, or an author, quoted message or queue stamp of another tenant →
/// `UnknownReference` naming the field.
pub async fn insert(db: &Db, tenant: TenantId, new: &NewMessage) -> DbResult<Message> {
    let now = Timestamp::now();
    let inserted: Result<Option<MessageRow>, DbError> = write!(db, pool => {
        sqlx::query_as(INSERT)
            .bind(tenant.0)
            .bind(new.ticket_id.0)
            .bind(new.connection_id.0)
            .bind(new.contact_id.0)
            .bind(new.direction.as_str())
            .bind(new.author.as_str())
            .bind(new.author_user_id.map(|u| u.0))
            .bind(new.kind.as_str())
            .bind(new.body.as_str())
            .bind(new.provider_id.as_deref())
            .bind(new.quoted_id.map(|m| m.0))
            .bind(new.status.as_str())
            .bind(new.failure_reason.as_deref())
            .bind(new.idempotency_key.as_deref())
            .bind(new.queue_stamp.map(|q| q.0))
            .bind(new.imported)
            .bind(new.sent_at.0)
            .bind(now.0)
            .fetch_optional(pool)
            .await
            .map_err(DbError::from)
    });
    let error = match inserted {
        Ok(Some(row)) => return row.into_model(),
        Ok(None) => None,
        Err(error @ DbError::ForeignKey(_)) => Some(error),
        Err(other) => return Err(other),
    };
    Err(explain_refusal(db, tenant, new, error).await?)
}

/// Names the reference that made `insert` write nothing (or fail a foreign key).
async fn explain_refusal(
    db: &Db,
    tenant: TenantId,
    new: &NewMessage,
    error: Option<DbError>,
) -> DbResult<DbError> {
    let checks = read!(db, pool => {
        let parties: Option<(i64, i64)> = sqlx::query_as(TICKET_PARTIES)
            .bind(tenant.0)
            .bind(new.ticket_id.0)
            .fetch_optional(pool)
            .await?;
        let author = match new.author_user_id {
            Some(user) => {
                let found: Option<i64> =
                    sqlx::query_scalar(USER_IN_TENANT)
                        .bind(tenant.0)
                        .bind(user.0)
                        .fetch_optional(pool)
                        .await?;
                found.is_some()
            }
            None => true,
        };
        let quoted = match new.quoted_id {
            Some(message) => {
                let found: Option<i64> = sqlx::query_scalar(MESSAGE_IN_TENANT)
                    .bind(tenant.0)
                    .bind(message.0)
                    .fetch_optional(pool)
                    .await?;
                found.is_some()
            }
            None => true,
        };
        let stamp = match new.queue_stamp {
            Some(queue) => {
                let found: Option<i64> =
                    sqlx::query_scalar(QUEUE_IN_TENANT)
                        .bind(tenant.0)
                        .bind(queue.0)
                        .fetch_optional(pool)
                        .await?;
                found.is_some()
            }
            None => true,
        };
        (parties, author, quoted, stamp)
    });
    let unknown = |field: &'static str, id: i64| DbError::UnknownReference { field, id };
    Ok(match checks {
        (None, ..) => unknown("ticket_id", new.ticket_id.0),
        (Some((connection, _)), ..) if connection != new.connection_id.0 => {
            unknown("connection_id", new.connection_id.0)
        }
        (Some((_, contact)), ..) if contact != new.contact_id.0 => {
            unknown("contact_id", new.contact_id.0)
        }
        (_, false, _, _) => unknown("author_user_id", new.author_user_id.map_or(0, |u| u.0)),
        (_, _, false, _) => unknown("quoted_id", new.quoted_id.map_or(0, |m| m.0)),
        (_, _, _, false) => unknown("queue_stamp", new.queue_stamp.map_or(0, |q| q.0)),
        _ => error.unwrap_or(DbError::NotFound),
    })
}

pub async fn get(db: &Db, tenant: TenantId, id: MessageId) -> DbResult<Message> {
    let row: Option<MessageRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.ok_or(DbError::NotFound)?.into_model()
}

/// The message written with this idempotency key, if any (a retried POST returns it again).
pub async fn find_by_idempotency_key(
    db: &Db,
    tenant: TenantId,
    key: &str,
) -> DbResult<Option<Message>> {
    let row: Option<MessageRow> = read!(db, pool => {
        sqlx::query_as(BY_IDEMPOTENCY_KEY).bind(tenant.0).bind(key).fetch_optional(pool).await?
    });
    row.map(MessageRow::into_model).transpose()
}

/// A page of the ticket's messages, newest first (by `sent_at`, then id). `before` is the
/// (`sent_at`, id) of the oldest message of the previous page. A ticket of another tenant has no
/// messages here: check the ticket first when the difference matters.
pub async fn list_for_ticket(
    db: &Db,
    tenant: TenantId,
    ticket_id: TicketId,
    before: Option<(Timestamp, MessageId)>,
    limit: i64,
) -> DbResult<Vec<Message>> {
    let limit = limit.max(0);
    let rows: Vec<MessageRow> = read!(db, pool => {
        match before {
            Some((sent_at, id)) => {
                sqlx::query_as(LIST_FOR_TICKET_BEFORE)
                    .bind(tenant.0)
                    .bind(ticket_id.0)
                    .bind(sent_at.0)
                    .bind(id.0)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            None => {
                sqlx::query_as(LIST_FOR_TICKET)
                    .bind(tenant.0)
                    .bind(ticket_id.0)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        }
    });
    rows.into_iter().map(MessageRow::into_model).collect()
}
