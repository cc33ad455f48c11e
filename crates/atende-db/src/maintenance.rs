//! The storage half of the maintenance actions (SPEC §10): finds the rows each action looks at,
//! in keyset-paged batches, and applies the fixes `atende_domain::maintenance` decided.
//!
//! Every fix is a guarded update: it applies only while the row is still as the decision saw it
//! (still `sending` and untouched, still the same phone, the ticket's dates unchanged…), so a
//! sender, an inbound message or an agent that moved the row meanwhile wins and the fix is
//! skipped. That, with fixes that are fixed points, is what makes an action safe to run twice or
//! alongside live traffic.

use crate::messages::MessageRow;
use crate::{Db, DbResult, read, write};
use atende_domain::maintenance::{MessageDates, StuckFix, TicketDates};
use atende_domain::{
    ConnectionId, ContactId, ContactIdentityId, Message, MessageId, MessageKind, MessageStatus,
    TenantId, TicketId, Timestamp,
};

macro_rules! message_columns {
    () => {
        "id, tenant_id, ticket_id, connection_id, contact_id, direction, author, author_user_id, \
         kind, body, provider_id, quoted_id, status, failure_reason, idempotency_key, queue_stamp, \
         imported, sent_at, created_at"
    };
}

// ---------------------------------------------------------------------------------------------
// send_stuck_messages
// ---------------------------------------------------------------------------------------------

// Outbound and overdue in `queued` (never picked up, or waiting behind a chat that does not
// move), or untouched in `sending`, since `$2`. The explicit `status IN (…)` term lets both
// stores use the partial outbox indexes.
macro_rules! stuck_predicate {
    () => {
        "m.tenant_id = $1 AND m.direction = 'out' AND m.status IN ('queued', 'sending') \
         AND ((m.status = 'queued' AND (m.next_attempt_at IS NULL OR m.next_attempt_at <= $2)) \
             OR (m.status = 'sending' AND m.updated_at <= $2))"
    };
}

const COUNT_STUCK: &str = concat!("SELECT COUNT(*) FROM messages m WHERE ", stuck_predicate!());
const STUCK: &str = concat!(
    "SELECT m.id, m.ticket_id, m.connection_id, m.status, m.provider_id IS NOT NULL \
     FROM messages m WHERE ",
    stuck_predicate!(),
    " AND m.id > $3 ORDER BY m.id LIMIT $4"
);
const REQUEUE_OVERDUE: &str = concat!(
    "UPDATE messages SET next_attempt_at = $4, updated_at = $4 \
     WHERE tenant_id = $1 AND id = $2 AND direction = 'out' AND status = 'queued' \
         AND (next_attempt_at IS NULL OR next_attempt_at <= $3) \
     RETURNING ",
    message_columns!()
);
const REQUEUE_UNCONFIRMED: &str = concat!(
    "UPDATE messages SET status = 'queued', outcome_unknown = FALSE, failure_reason = NULL, \
         next_attempt_at = $4, updated_at = $4 \
     WHERE tenant_id = $1 AND id = $2 AND direction = 'out' AND status = 'sending' \
         AND provider_id IS NULL AND updated_at <= $3 \
     RETURNING ",
    message_columns!()
);
const MARK_ACCEPTED_SENT: &str = concat!(
    "UPDATE messages SET status = 'sent', outcome_unknown = FALSE, failure_reason = NULL, \
         next_attempt_at = NULL, updated_at = $4 \
     WHERE tenant_id = $1 AND id = $2 AND direction = 'out' AND status = 'sending' \
         AND provider_id IS NOT NULL AND updated_at <= $3 \
     RETURNING ",
    message_columns!()
);

/// An outbound message stuck in `queued` or `sending`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StuckMessage {
    pub id: MessageId,
    pub ticket_id: TicketId,
    pub connection_id: ConnectionId,
    pub status: MessageStatus,
    /// The provider gave its id: it accepted the message.
    pub has_provider_id: bool,
}

/// How many outbound messages of the tenant are stuck since `before`.
pub async fn count_stuck(db: &Db, tenant: TenantId, before: Timestamp) -> DbResult<i64> {
    let count: i64 = read!(db, pool => {
        sqlx::query_scalar(COUNT_STUCK).bind(tenant.0).bind(before.0).fetch_one(pool).await?
    });
    Ok(count)
}

/// A page of the messages stuck since `before`, by id after `after`.
pub async fn stuck_messages(
    db: &Db,
    tenant: TenantId,
    before: Timestamp,
    after: Option<MessageId>,
    limit: i64,
) -> DbResult<Vec<StuckMessage>> {
    let rows: Vec<(i64, i64, i64, String, bool)> = read!(db, pool => {
        sqlx::query_as(STUCK)
            .bind(tenant.0)
            .bind(before.0)
            .bind(after.map_or(0, |m| m.0))
            .bind(limit.max(1))
            .fetch_all(pool)
            .await?
    });
    rows.into_iter()
        .map(|(id, ticket, connection, status, accepted)| {
            Ok(StuckMessage {
                id: MessageId(id),
                ticket_id: TicketId(ticket),
                connection_id: ConnectionId(connection),
                status: crate::queues::parse_enum(
                    &status,
                    MessageStatus::parse,
                    "messages.status",
                )?,
                has_provider_id: accepted,
            })
        })
        .collect()
}

/// Applies a `send_stuck_messages` fix to one message, if it is still stuck since `before` as
/// it was found: `Requeue` makes a queued message due at `now`, or puts an unconfirmed `sending`
/// one back in the queue; `MarkSent` records an accepted one `sent`. `None`: nothing changed
/// (`Leave`, or the message moved meanwhile).
pub async fn apply_stuck_fix(
    db: &Db,
    tenant: TenantId,
    message: &StuckMessage,
    fix: StuckFix,
    before: Timestamp,
    now: Timestamp,
) -> DbResult<Option<Message>> {
    let sql = match (fix, message.status) {
        (StuckFix::Leave, _) => return Ok(None),
        (StuckFix::Requeue, MessageStatus::Queued) => REQUEUE_OVERDUE,
        (StuckFix::Requeue, _) => REQUEUE_UNCONFIRMED,
        (StuckFix::MarkSent, _) => MARK_ACCEPTED_SENT,
    };
    let row: Option<MessageRow> = write!(db, pool => {
        sqlx::query_as(sql)
            .bind(tenant.0)
            .bind(message.id.0)
            .bind(before.0)
            .bind(now.0)
            .fetch_optional(pool)
            .await?
    });
    row.map(MessageRow::into_model).transpose()
}

// ---------------------------------------------------------------------------------------------
// resolve_failed_messages
// ---------------------------------------------------------------------------------------------

// Outbound messages that errored and still hold their chat: queued for a retry after an error,
// or `sending` with an unknown outcome (flagged, or untouched since `$2`: its sender died). A
// message being sent right now is `sending`, unflagged and fresh, so it is never taken; one the
// provider accepted (it has an id) is `send_stuck_messages`' to settle as sent.
macro_rules! errored_predicate {
    () => {
        "tenant_id = $1 AND direction = 'out' AND status IN ('queued', 'sending') \
         AND provider_id IS NULL \
         AND ((status = 'queued' AND failure_reason IS NOT NULL) \
             OR (status = 'sending' AND (outcome_unknown = TRUE OR updated_at <= $2)))"
    };
}

const COUNT_ERRORED: &str = concat!("SELECT COUNT(*) FROM messages WHERE ", errored_predicate!());
const FAIL_ERRORED: &str = concat!(
    "UPDATE messages SET status = 'failed', failure_reason = COALESCE(failure_reason, $3), \
         outcome_unknown = FALSE, next_attempt_at = NULL, updated_at = $4 \
     WHERE ",
    errored_predicate!(),
    " AND id IN (SELECT id FROM messages WHERE ",
    errored_predicate!(),
    " ORDER BY id LIMIT $5) RETURNING ",
    message_columns!()
);

/// How many outbound messages of the tenant errored without being settled (see `fail_errored`).
pub async fn count_errored(db: &Db, tenant: TenantId, before: Timestamp) -> DbResult<i64> {
    let count: i64 = read!(db, pool => {
        sqlx::query_scalar(COUNT_ERRORED).bind(tenant.0).bind(before.0).fetch_one(pool).await?
    });
    Ok(count)
}

/// Marks up to `limit` errored outbound messages `failed`, keeping the reason they have
/// (`reason_if_none` for those without one), so their chats stop waiting. Nothing is deleted.
/// Answers the messages moved; fewer than `limit` means none are left.
pub async fn fail_errored(
    db: &Db,
    tenant: TenantId,
    before: Timestamp,
    reason_if_none: &str,
    now: Timestamp,
    limit: i64,
) -> DbResult<Vec<Message>> {
    let rows: Vec<MessageRow> = write!(db, pool => {
        sqlx::query_as(FAIL_ERRORED)
            .bind(tenant.0)
            .bind(before.0)
            .bind(reason_if_none)
            .bind(now.0)
            .bind(limit.max(1))
            .fetch_all(pool)
            .await?
    });
    let mut messages = rows
        .into_iter()
        .map(MessageRow::into_model)
        .collect::<DbResult<Vec<Message>>>()?;
    messages.sort_by_key(|m| m.id);
    Ok(messages)
}

// ---------------------------------------------------------------------------------------------
// validate_contacts
// ---------------------------------------------------------------------------------------------

const COUNT_CONTACTS: &str = "SELECT COUNT(*) FROM contacts WHERE tenant_id = $1";
const SET_PHONE: &str = "UPDATE contacts SET phone = $4, updated_at = $5
    WHERE tenant_id = $1 AND id = $2 AND phone = $3";
const RENAME_IDENTITY: &str = "UPDATE contact_identities SET external_id = $4
    WHERE tenant_id = $1 AND id = $2 AND external_id = $3";

/// How many contacts the tenant has (the total of `validate_contacts`).
pub async fn count_contacts(db: &Db, tenant: TenantId) -> DbResult<i64> {
    let count: i64 = read!(db, pool => {
        sqlx::query_scalar(COUNT_CONTACTS).bind(tenant.0).fetch_one(pool).await?
    });
    Ok(count)
}

/// Replaces the contact's phone with its E.164 form, only while it is still `expected`.
pub async fn set_phone(
    db: &Db,
    tenant: TenantId,
    contact: ContactId,
    expected: &str,
    phone: &str,
    now: Timestamp,
) -> DbResult<bool> {
    let changed = write!(db, pool => {
        sqlx::query(SET_PHONE)
            .bind(tenant.0)
            .bind(contact.0)
            .bind(expected)
            .bind(phone)
            .bind(now.0)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed > 0)
}

/// Replaces an identity's external id with the provider's canonical one, only while it is still
/// `expected`. The canonical id already used in the tenant → `Conflict` (a merge case).
pub async fn rename_identity(
    db: &Db,
    tenant: TenantId,
    identity: ContactIdentityId,
    expected: &str,
    canonical: &str,
) -> DbResult<bool> {
    let changed = write!(db, pool => {
        sqlx::query(RENAME_IDENTITY)
            .bind(tenant.0)
            .bind(identity.0)
            .bind(expected)
            .bind(canonical)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed > 0)
}

// ---------------------------------------------------------------------------------------------
// fix_imported_message_dates
// ---------------------------------------------------------------------------------------------

// Imported messages whose `sent_at` is not the provider's timestamp kept from the raw delivery
// (`provider_timestamp`, what the adapter read from the raw body). `imported = TRUE` matches the
// partial index of migration 0009.
macro_rules! misdated_predicate {
    () => {
        "tenant_id = $1 AND imported = TRUE AND provider_timestamp IS NOT NULL \
         AND sent_at <> provider_timestamp"
    };
}

const COUNT_MISDATED: &str = concat!(
    "SELECT COUNT(*) FROM messages WHERE ",
    misdated_predicate!()
);
const COUNT_UNDATED: &str = "SELECT COUNT(*) FROM messages
    WHERE tenant_id = $1 AND imported = TRUE AND provider_timestamp IS NULL";
const FIX_MISDATED: &str = concat!(
    "UPDATE messages SET sent_at = provider_timestamp, updated_at = $2 WHERE ",
    misdated_predicate!(),
    " AND id IN (SELECT id FROM messages WHERE ",
    misdated_predicate!(),
    " ORDER BY id LIMIT $3) RETURNING id, ticket_id"
);

/// Imported messages whose `sent_at` differs from the provider's timestamp.
pub async fn count_misdated_imports(db: &Db, tenant: TenantId) -> DbResult<i64> {
    let count: i64 = read!(db, pool => {
        sqlx::query_scalar(COUNT_MISDATED).bind(tenant.0).fetch_one(pool).await?
    });
    Ok(count)
}

/// Imported messages that kept no provider timestamp: nothing to set their date from.
pub async fn count_undated_imports(db: &Db, tenant: TenantId) -> DbResult<i64> {
    let count: i64 = read!(db, pool => {
        sqlx::query_scalar(COUNT_UNDATED).bind(tenant.0).fetch_one(pool).await?
    });
    Ok(count)
}

/// Sets `sent_at` to the provider's timestamp on up to `limit` misdated imported messages;
/// answers (message, ticket) of each. Fewer than `limit` means none are left.
pub async fn fix_misdated_imports(
    db: &Db,
    tenant: TenantId,
    now: Timestamp,
    limit: i64,
) -> DbResult<Vec<(MessageId, TicketId)>> {
    let rows: Vec<(i64, i64)> = write!(db, pool => {
        sqlx::query_as(FIX_MISDATED)
            .bind(tenant.0)
            .bind(now.0)
            .bind(limit.max(1))
            .fetch_all(pool)
            .await?
    });
    let mut fixed: Vec<(MessageId, TicketId)> = rows
        .into_iter()
        .map(|(message, ticket)| (MessageId(message), TicketId(ticket)))
        .collect();
    fixed.sort();
    Ok(fixed)
}

// ---------------------------------------------------------------------------------------------
// fix_ticket_dates
// ---------------------------------------------------------------------------------------------

macro_rules! ticket_dates_select {
    () => {
        "SELECT t.id, t.last_message_at, t.last_inbound_at, t.updated_at,
            (SELECT MAX(m.sent_at) FROM messages m
                WHERE m.tenant_id = t.tenant_id AND m.ticket_id = t.id
                    AND m.kind <> 'system_note'),
            (SELECT MAX(m.sent_at) FROM messages m
                WHERE m.tenant_id = t.tenant_id AND m.ticket_id = t.id AND m.direction = 'in')
        FROM tickets t WHERE t.tenant_id = $1"
    };
}

const COUNT_TICKETS: &str = "SELECT COUNT(*) FROM tickets WHERE tenant_id = $1";
const TICKET_DATES_PAGE: &str = concat!(
    ticket_dates_select!(),
    " AND t.id > $2 ORDER BY t.id LIMIT $3"
);
const TICKET_DATES_ONE: &str = concat!(ticket_dates_select!(), " AND t.id = $2");
// System notes (transitions) are not what the ticket shows as its last message: the live
// paths bump the ticket for conversation messages only.
const LATEST_MESSAGE: &str = "SELECT kind, body FROM messages
    WHERE tenant_id = $1 AND ticket_id = $2 AND kind <> 'system_note'
    ORDER BY sent_at DESC, id DESC LIMIT 1";
// Guarded by the dates read: a message stored meanwhile bumps `updated_at`, and its own bump
// is then the truth.
const SET_TICKET_DATES: &str = "UPDATE tickets SET last_message = $6, last_message_at = $7,
        last_inbound_at = $8, updated_at = $9
    WHERE tenant_id = $1 AND id = $2 AND last_message_at IS NOT DISTINCT FROM $3
        AND last_inbound_at IS NOT DISTINCT FROM $4 AND updated_at = $5";

/// A ticket's dates as stored, and what its messages say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketDatesRow {
    pub ticket_id: TicketId,
    pub current: TicketDates,
    pub messages: MessageDates,
}

type DatesRow = (i64, Option<i64>, Option<i64>, i64, Option<i64>, Option<i64>);

fn dates_row((id, last, inbound, updated, latest, latest_in): DatesRow) -> TicketDatesRow {
    TicketDatesRow {
        ticket_id: TicketId(id),
        current: TicketDates {
            last_message_at: last.map(Timestamp),
            last_inbound_at: inbound.map(Timestamp),
            updated_at: Timestamp(updated),
        },
        messages: MessageDates {
            latest: latest.map(Timestamp),
            latest_inbound: latest_in.map(Timestamp),
        },
    }
}

/// How many tickets the tenant has (the total of `fix_ticket_dates`).
pub async fn count_tickets(db: &Db, tenant: TenantId) -> DbResult<i64> {
    let count: i64 = read!(db, pool => {
        sqlx::query_scalar(COUNT_TICKETS).bind(tenant.0).fetch_one(pool).await?
    });
    Ok(count)
}

/// A page of tickets (by id after `after`) with their dates and their messages' dates.
pub async fn ticket_dates(
    db: &Db,
    tenant: TenantId,
    after: Option<TicketId>,
    limit: i64,
) -> DbResult<Vec<TicketDatesRow>> {
    let rows: Vec<DatesRow> = read!(db, pool => {
        sqlx::query_as(TICKET_DATES_PAGE)
            .bind(tenant.0)
            .bind(after.map_or(0, |t| t.0))
            .bind(limit.max(1))
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(dates_row).collect())
}

/// One ticket's dates and its messages' dates; `None` for a ticket not in the tenant.
pub async fn ticket_dates_of(
    db: &Db,
    tenant: TenantId,
    ticket: TicketId,
) -> DbResult<Option<TicketDatesRow>> {
    let row: Option<DatesRow> = read!(db, pool => {
        sqlx::query_as(TICKET_DATES_ONE)
            .bind(tenant.0)
            .bind(ticket.0)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(dates_row))
}

/// Writes the recomputed dates, with the preview of the ticket's latest message, only while the
/// ticket still has the dates `found` read. `false`: it changed meanwhile (left as it is).
pub async fn set_ticket_dates(
    db: &Db,
    tenant: TenantId,
    found: &TicketDatesRow,
    wanted: TicketDates,
) -> DbResult<bool> {
    let ticket = found.ticket_id;
    let current = found.current;
    let changed = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let latest: Option<(String, String)> = sqlx::query_as(LATEST_MESSAGE)
            .bind(tenant.0)
            .bind(ticket.0)
            .fetch_optional(&mut *tx)
            .await?;
        let preview = match latest {
            Some((kind, body)) => {
                let kind = crate::queues::parse_enum(&kind, MessageKind::parse, "messages.kind")?;
                crate::ingest::preview(kind, &body)
            }
            None => String::new(),
        };
        let changed = sqlx::query(SET_TICKET_DATES)
            .bind(tenant.0)
            .bind(ticket.0)
            .bind(current.last_message_at.map(|t| t.0))
            .bind(current.last_inbound_at.map(|t| t.0))
            .bind(current.updated_at.0)
            .bind(preview.as_str())
            .bind(wanted.last_message_at.map(|t| t.0))
            .bind(wanted.last_inbound_at.map(|t| t.0))
            .bind(wanted.updated_at.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        changed
    });
    Ok(changed > 0)
}
