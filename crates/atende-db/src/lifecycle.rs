//! The storage half of the ticket lifecycle and its automations: applying a transition decided by
//! `atende_domain::lifecycle` in one transaction (ticket, cycle, system note, optional automatic
//! message, audit entry), the absence-message outbox write with its per-cycle counter, and the
//! auto-resolve due times the worker sleeps on.
//!
//! Messages written here:
//! - **System notes**: `kind = system_note`, `author = system`, `direction = out`, `status = sent`
//!   (they never go to the provider: they are chat history for agents), no lane, stamped with the
//!   ticket's queue after the move.
//! - **Automatic messages** (absence, auto-resolve): `kind = text`, `author = system`,
//!   `direction = out`, `status = queued`, `lane = automatic`, `next_attempt_at = sent_at`, with an
//!   idempotency key naming the ticket and cycle, so the outbound sender (a later issue) picks them
//!   up from the outbox and a retried automation can never write one twice.

use crate::audit::NewAudit;
use crate::queues::{QUEUE_IN_TENANT, USER_IN_TENANT, ensure_ref};
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::lifecycle::{CycleEffect, Transition};
use atende_domain::schedule::LastMessage;
use atende_domain::{
    MessageId, QueueId, TenantId, TicketCycleId, TicketId, TicketStatus, Timestamp, UserId,
};

/// The constraint name of [`DbError::Conflict`] when the ticket no longer is in the state the
/// decision was made on.
pub const STALE_TICKET: &str = "ticket_changed_meanwhile";

/// The ticket as the decision saw it: the move applies only if these still hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub status: TicketStatus,
    pub owner_id: Option<UserId>,
    pub queue_id: Option<QueueId>,
}

/// An automatic outbound message to queue in the same transaction as the move.
#[derive(Debug, Clone)]
pub struct AutomaticMessage {
    pub body: String,
    /// Unique per tenant, e.g. `auto_resolve:<ticket>:<cycle>`.
    pub idempotency_key: String,
}

/// One transition to apply.
#[derive(Debug, Clone)]
pub struct Apply<'a> {
    pub ticket_id: TicketId,
    pub expected: Expected,
    pub transition: &'a Transition,
    /// The rendered system note.
    pub note: String,
    /// Queued before the note (e.g. the auto-resolve message, sent before the ticket closes).
    pub automatic: Option<AutomaticMessage>,
    /// Who did it, from where; `action` and `entity` are filled in here.
    pub audit: NewAudit,
    pub now: Timestamp,
}

/// What [`apply`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub note_id: MessageId,
    pub automatic_id: Option<MessageId>,
    pub cycle_id: TicketCycleId,
}

// The guard makes the move apply only to the ticket as the decision saw it (status, owner,
// queue). `updated_at` is deliberately not part of it: every inbound message bumps it, and an
// agent accepting a chatty ticket must not get a spurious conflict.
const UPDATE_TICKET: &str = "UPDATE tickets SET status = $6, owner_id = $7, queue_id = $8,
        pause_reason = $9,
        closed_at = CASE $10 WHEN 1 THEN $14 WHEN 2 THEN NULL ELSE closed_at END,
        unread = CASE WHEN $11 THEN 0 ELSE unread END,
        bot_flow_id = CASE WHEN $12 THEN NULL ELSE bot_flow_id END,
        bot_flow_version = CASE WHEN $12 THEN NULL ELSE bot_flow_version END,
        bot_node = CASE WHEN $12 THEN NULL ELSE bot_node END,
        bot_retries = CASE WHEN $12 THEN 0 ELSE bot_retries END,
        bot_last_at = CASE WHEN $12 THEN NULL ELSE bot_last_at END,
        integration_session = CASE WHEN $12 THEN NULL ELSE integration_session END,
        wallet_overflowed = COALESCE($13, wallet_overflowed),
        auto_resolve_due_at = CASE WHEN $15 THEN NULL ELSE auto_resolve_due_at END,
        updated_at = $14
    WHERE tenant_id = $1 AND id = $2 AND status = $3
        AND owner_id IS NOT DISTINCT FROM $4 AND queue_id IS NOT DISTINCT FROM $5
    RETURNING current_cycle_id";
const TICKET_EXISTS: &str = "SELECT id FROM tickets WHERE tenant_id = $1 AND id = $2";
const CYCLE_CONTINUE: &str =
    "UPDATE ticket_cycles SET owner_id = $3, queue_id = $4 WHERE tenant_id = $1 AND id = $2";
const CYCLE_ACCEPT: &str = "UPDATE ticket_cycles SET owner_id = $3, queue_id = $4,
        accepted_at = COALESCE(accepted_at, $5)
    WHERE tenant_id = $1 AND id = $2";
const CYCLE_CLOSE: &str = "UPDATE ticket_cycles SET owner_id = $3, queue_id = $4,
        closed_at = $5, demand_id = $6, closing_note = $7, closed_by = $8, close_reason = $9
    WHERE tenant_id = $1 AND id = $2";
const CYCLE_START: &str = "INSERT INTO ticket_cycles (tenant_id, ticket_id, opened_at, accepted_at,
        owner_id, queue_id)
    VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
// A new cycle: the absence counter starts over.
const SET_CYCLE: &str = "UPDATE tickets SET current_cycle_id = $3, out_of_hours_sent = 0,
        out_of_hours_cycle_id = $3
    WHERE tenant_id = $1 AND id = $2";
const INSERT_NOTE: &str = "INSERT INTO messages (tenant_id, ticket_id, connection_id, contact_id,
        direction, author, kind, body, status, queue_stamp, sent_at, created_at, updated_at)
    SELECT t.tenant_id, t.id, t.connection_id, t.contact_id, 'out', 'system', 'system_note', $3,
        'sent', t.queue_id, $4, $4, $4
    FROM tickets t WHERE t.tenant_id = $1 AND t.id = $2
    RETURNING id";
const INSERT_AUTOMATIC: &str = "INSERT INTO messages (tenant_id, ticket_id, connection_id,
        contact_id, direction, author, kind, body, status, idempotency_key, lane, next_attempt_at,
        queue_stamp, sent_at, created_at, updated_at)
    SELECT t.tenant_id, t.id, t.connection_id, t.contact_id, 'out', 'system', 'text', $3,
        'queued', $4, 'automatic', $5, t.queue_id, $5, $5, $5
    FROM tickets t WHERE t.tenant_id = $1 AND t.id = $2
    RETURNING id";
const BUMP_LAST_MESSAGE: &str =
    "UPDATE tickets SET last_message = $3, last_message_at = $4 WHERE tenant_id = $1 AND id = $2";

/// Longest preview kept in `tickets.last_message`.
const PREVIEW_CHARS: usize = 200;

fn preview(body: &str) -> String {
    body.chars().take(PREVIEW_CHARS).collect()
}

/// How `closed_at` changes: 0 keep, 1 set to now, 2 clear.
fn closed_at_mode(transition: &Transition) -> i64 {
    match transition.cycle {
        CycleEffect::Close { .. } => 1,
        CycleEffect::Start { .. } => 2,
        CycleEffect::Continue | CycleEffect::Accept => 0,
    }
}

/// Applies `apply.transition` in one transaction: the ticket (guarded by `apply.expected`), its
/// cycle, the optional automatic message, the system note and the audit entry.
///
/// Errors: `NotFound` (no such ticket in the tenant); `Conflict { constraint: STALE_TICKET }` (the
/// ticket changed since the decision); `Conflict` on the one-open-ticket index when a reopen
/// meets another non-closed ticket of the same contact and connection; `UnknownReference` for an
/// owner or queue outside the tenant.
pub async fn apply(db: &Db, tenant: TenantId, apply: &Apply<'_>) -> DbResult<Applied> {
    let t = apply.transition;
    let now = apply.now;
    // Closed and paused tickets are never due for auto-resolve; other moves keep the due time
    // (the engine refreshes it after the move).
    let clear_due = matches!(t.status, TicketStatus::Closed | TicketStatus::Paused);
    let mut audit = apply.audit.clone();
    audit.action = t.audit_action.to_owned();
    audit.entity = "ticket".to_owned();
    audit.entity_id = Some(apply.ticket_id.to_string());
    write!(db, pool => {
        let mut tx = pool.begin().await?;
        if let Some(owner) = t.owner_id {
            ensure_ref!(&mut *tx, USER_IN_TENANT, tenant, owner.0, "user_id");
        }
        if let Some(queue) = t.queue_id {
            ensure_ref!(&mut *tx, QUEUE_IN_TENANT, tenant, queue.0, "queue_id");
        }
        let updated: Option<Option<i64>> = sqlx::query_scalar(UPDATE_TICKET)
            .bind(tenant.0)
            .bind(apply.ticket_id.0)
            .bind(apply.expected.status.as_str())
            .bind(apply.expected.owner_id.map(|u| u.0))
            .bind(apply.expected.queue_id.map(|q| q.0))
            .bind(t.status.as_str())
            .bind(t.owner_id.map(|u| u.0))
            .bind(t.queue_id.map(|q| q.0))
            .bind(t.pause_reason.as_deref())
            .bind(closed_at_mode(t))
            .bind(t.clear_unread)
            .bind(t.end_bot)
            .bind(t.wallet_overflowed)
            .bind(now.0)
            .bind(clear_due)
            .fetch_optional(&mut *tx)
            .await?;
        let current_cycle = match updated {
            Some(cycle) => cycle,
            None => {
                let exists: Option<i64> = sqlx::query_scalar(TICKET_EXISTS)
                    .bind(tenant.0)
                    .bind(apply.ticket_id.0)
                    .fetch_optional(&mut *tx)
                    .await?;
                return Err(match exists {
                    Some(_) => DbError::Conflict { constraint: STALE_TICKET.to_owned() },
                    None => DbError::NotFound,
                });
            }
        };
        let owner = t.owner_id.map(|u| u.0);
        let queue = t.queue_id.map(|q| q.0);
        let cycle_id = match (&t.cycle, current_cycle) {
            (CycleEffect::Close { demand_id, note, closed_by, reason }, Some(cycle)) => {
                sqlx::query(CYCLE_CLOSE)
                    .bind(tenant.0)
                    .bind(cycle)
                    .bind(owner)
                    .bind(queue)
                    .bind(now.0)
                    .bind(demand_id.map(|d| d.0))
                    .bind(note.as_deref())
                    .bind(closed_by.map(|u| u.0))
                    .bind(reason.map(|r| r.as_str()))
                    .execute(&mut *tx)
                    .await?;
                cycle
            }
            (CycleEffect::Close { .. }, None) => {
                return Err(DbError::Corrupt(format!(
                    "ticket {} has no cycle to close",
                    apply.ticket_id
                )));
            }
            // A new episode (or a ticket that somehow had no cycle).
            (CycleEffect::Start { .. }, _) | (_, None) => {
                let id: i64 = sqlx::query_scalar(CYCLE_START)
                    .bind(tenant.0)
                    .bind(apply.ticket_id.0)
                    .bind(now.0)
                    .bind(start_accepted(t).then_some(now.0))
                    .bind(owner)
                    .bind(queue)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(SET_CYCLE)
                    .bind(tenant.0)
                    .bind(apply.ticket_id.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
            (CycleEffect::Accept, Some(cycle)) => {
                sqlx::query(CYCLE_ACCEPT)
                    .bind(tenant.0)
                    .bind(cycle)
                    .bind(owner)
                    .bind(queue)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                cycle
            }
            (CycleEffect::Continue, Some(cycle)) => {
                sqlx::query(CYCLE_CONTINUE)
                    .bind(tenant.0)
                    .bind(cycle)
                    .bind(owner)
                    .bind(queue)
                    .execute(&mut *tx)
                    .await?;
                cycle
            }
        };
        let automatic_id = match &apply.automatic {
            Some(message) => {
                let id: i64 = sqlx::query_scalar(INSERT_AUTOMATIC)
                    .bind(tenant.0)
                    .bind(apply.ticket_id.0)
                    .bind(message.body.as_str())
                    .bind(message.idempotency_key.as_str())
                    .bind(now.0)
                    .fetch_one(&mut *tx)
                    .await?;
                sqlx::query(BUMP_LAST_MESSAGE)
                    .bind(tenant.0)
                    .bind(apply.ticket_id.0)
                    .bind(preview(&message.body))
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await?;
                Some(MessageId(id))
            }
            None => None,
        };
        let note_id: i64 = sqlx::query_scalar(INSERT_NOTE)
            .bind(tenant.0)
            .bind(apply.ticket_id.0)
            .bind(apply.note.as_str())
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        crate::audit::record_with(&mut *tx, Some(tenant), &audit).await?;
        tx.commit().await?;
        Ok(Applied { note_id: MessageId(note_id), automatic_id, cycle_id: TicketCycleId(cycle_id) })
    })
}

fn start_accepted(t: &Transition) -> bool {
    match t.cycle {
        CycleEffect::Start { accepted } => accepted,
        _ => t.status == TicketStatus::Open && t.owner_id.is_some(),
    }
}

/// What the automations read about a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutomationFacts {
    pub status: TicketStatus,
    pub is_group: bool,
    pub auto_resolve_due_at: Option<Timestamp>,
    /// Absence messages sent in the current cycle.
    pub out_of_hours_sent: i64,
    pub cycle_id: Option<TicketCycleId>,
    pub cycle_opened_at: Timestamp,
    /// The last message that counts for auto-resolve (see `atende_domain::schedule`).
    pub last_message: Option<LastMessage>,
}

const FACTS: &str = "SELECT t.status, t.is_group, t.auto_resolve_due_at,
        CASE WHEN t.out_of_hours_cycle_id IS NOT DISTINCT FROM t.current_cycle_id
            THEN t.out_of_hours_sent ELSE 0 END AS sent,
        t.current_cycle_id,
        COALESCE(c.opened_at, t.created_at) AS opened_at
    FROM tickets t
    LEFT JOIN ticket_cycles c ON c.tenant_id = t.tenant_id AND c.id = t.current_cycle_id
    WHERE t.tenant_id = $1 AND t.id = $2";
// Walks the ticket's messages newest first on messages_ticket and stops at the first that counts.
const LAST_COUNTED: &str = "SELECT direction, sent_at FROM messages
    WHERE tenant_id = $1 AND ticket_id = $2 AND author <> 'system' AND kind <> 'system_note'
        AND status <> 'failed'
    ORDER BY sent_at DESC, id DESC LIMIT 1";

#[derive(sqlx::FromRow)]
struct FactsRow {
    status: String,
    is_group: bool,
    auto_resolve_due_at: Option<i64>,
    sent: i64,
    current_cycle_id: Option<i64>,
    opened_at: i64,
}

/// The automation facts of a ticket; `NotFound` outside the tenant.
pub async fn automation_facts(
    db: &Db,
    tenant: TenantId,
    ticket: TicketId,
) -> DbResult<AutomationFacts> {
    let (row, last): (Option<FactsRow>, Option<(String, i64)>) = read!(db, pool => {
        let row: Option<FactsRow> =
            sqlx::query_as(FACTS).bind(tenant.0).bind(ticket.0).fetch_optional(pool).await?;
        let last: Option<(String, i64)> = match row {
            Some(_) => {
                sqlx::query_as(LAST_COUNTED).bind(tenant.0).bind(ticket.0).fetch_optional(pool).await?
            }
            None => None,
        };
        (row, last)
    });
    let row = row.ok_or(DbError::NotFound)?;
    Ok(AutomationFacts {
        status: crate::queues::parse_enum(&row.status, TicketStatus::parse, "tickets.status")?,
        is_group: row.is_group,
        auto_resolve_due_at: row.auto_resolve_due_at.map(Timestamp),
        out_of_hours_sent: row.sent,
        cycle_id: row.current_cycle_id.map(TicketCycleId),
        cycle_opened_at: Timestamp(row.opened_at),
        last_message: last.map(|(direction, sent_at)| LastMessage {
            ours: direction == "out",
            sent_at: Timestamp(sent_at),
        }),
    })
}

/// What the inbound automations read about a ticket in one query: the due time to clear, the
/// absence counter of the current cycle and the hours and absence text of the ticket's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundFacts {
    pub status: TicketStatus,
    pub is_group: bool,
    pub auto_resolve_due_at: Option<Timestamp>,
    /// Absence messages sent in the current cycle.
    pub out_of_hours_sent: i64,
    /// The queue's own weekly schedule; `None` = none (or no queue).
    pub queue_business_hours: Option<serde_json::Value>,
    /// The queue's absence text; empty = none (or no queue).
    pub queue_absence_message: String,
}

const INBOUND_FACTS: &str = "SELECT t.status, t.is_group, t.auto_resolve_due_at,
        CASE WHEN t.out_of_hours_cycle_id IS NOT DISTINCT FROM t.current_cycle_id
            THEN t.out_of_hours_sent ELSE 0 END AS sent,
        q.business_hours AS queue_hours, COALESCE(q.absence_message, '') AS queue_absence
    FROM tickets t
    LEFT JOIN queues q ON q.tenant_id = t.tenant_id AND q.id = t.queue_id
    WHERE t.tenant_id = $1 AND t.id = $2";

#[derive(sqlx::FromRow)]
struct InboundRow {
    status: String,
    is_group: bool,
    auto_resolve_due_at: Option<i64>,
    sent: i64,
    queue_hours: Option<String>,
    queue_absence: String,
}

/// The inbound automation facts of a ticket; `NotFound` outside the tenant.
pub async fn inbound_facts(db: &Db, tenant: TenantId, ticket: TicketId) -> DbResult<InboundFacts> {
    let row: Option<InboundRow> = read!(db, pool => {
        sqlx::query_as(INBOUND_FACTS).bind(tenant.0).bind(ticket.0).fetch_optional(pool).await?
    });
    let row = row.ok_or(DbError::NotFound)?;
    Ok(InboundFacts {
        status: crate::queues::parse_enum(&row.status, TicketStatus::parse, "tickets.status")?,
        is_group: row.is_group,
        auto_resolve_due_at: row.auto_resolve_due_at.map(Timestamp),
        out_of_hours_sent: row.sent,
        queue_business_hours: crate::queues::parse_json_opt(row.queue_hours)?,
        queue_absence_message: row.queue_absence,
    })
}

const SET_DUE: &str = "UPDATE tickets SET auto_resolve_due_at = $3
    WHERE tenant_id = $1 AND id = $2 AND status IN ('open', 'pending')
        AND auto_resolve_due_at IS DISTINCT FROM $3";
const CLEAR_DUE: &str = "UPDATE tickets SET auto_resolve_due_at = NULL
    WHERE tenant_id = $1 AND id = $2 AND auto_resolve_due_at IS NOT NULL";

/// Stores the ticket's auto-resolve due time (`None` clears it). A due time is only stored on an
/// open or pending ticket. Answers whether anything changed.
pub async fn set_auto_resolve_due(
    db: &Db,
    tenant: TenantId,
    ticket: TicketId,
    due: Option<Timestamp>,
) -> DbResult<bool> {
    let changed = write!(db, pool => {
        match due {
            Some(due) => sqlx::query(SET_DUE).bind(tenant.0).bind(ticket.0).bind(due.0).execute(pool).await?,
            None => sqlx::query(CLEAR_DUE).bind(tenant.0).bind(ticket.0).execute(pool).await?,
        }
        .rows_affected()
    });
    Ok(changed > 0)
}

/// A ticket whose auto-resolve time has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueTicket {
    pub tenant_id: TenantId,
    pub ticket_id: TicketId,
    pub due_at: Timestamp,
}

/// Due tickets of every tenant (the worker serves them all), earliest first, at most `limit`.
pub async fn platform_due_auto_resolve(
    db: &Db,
    now: Timestamp,
    limit: i64,
) -> DbResult<Vec<DueTicket>> {
    const SQL: &str = "SELECT tenant_id, id, auto_resolve_due_at FROM tickets
        WHERE auto_resolve_due_at IS NOT NULL AND auto_resolve_due_at <= $1
        ORDER BY auto_resolve_due_at, tenant_id, id LIMIT $2";
    let rows: Vec<(i64, i64, i64)> = read!(db, pool => {
        sqlx::query_as(SQL).bind(now.0).bind(limit.max(0)).fetch_all(pool).await?
    });
    Ok(rows
        .into_iter()
        .map(|(tenant, id, due)| DueTicket {
            tenant_id: TenantId(tenant),
            ticket_id: TicketId(id),
            due_at: Timestamp(due),
        })
        .collect())
}

/// The earliest due time of every tenant (an index lookup), so the worker sleeps until then.
pub async fn platform_next_auto_resolve_due(db: &Db) -> DbResult<Option<Timestamp>> {
    const SQL: &str =
        "SELECT MIN(auto_resolve_due_at) FROM tickets WHERE auto_resolve_due_at IS NOT NULL";
    let next: Option<i64> = read!(db, pool => sqlx::query_scalar(SQL).fetch_one(pool).await?);
    Ok(next.map(Timestamp))
}

// Counts per cycle: a counter that belongs to an earlier cycle starts over at 1. The guard keeps
// two concurrent deliveries from both sending the last allowed message.
const COUNT_ABSENCE: &str = "UPDATE tickets SET
        out_of_hours_sent = CASE WHEN out_of_hours_cycle_id IS NOT DISTINCT FROM current_cycle_id
            THEN out_of_hours_sent + 1 ELSE 1 END,
        out_of_hours_cycle_id = current_cycle_id,
        last_message = $4, last_message_at = $5
    WHERE tenant_id = $1 AND id = $2 AND status <> 'closed'
        AND (out_of_hours_cycle_id IS DISTINCT FROM current_cycle_id OR out_of_hours_sent < $3)
    RETURNING out_of_hours_sent, current_cycle_id";

/// Queues the absence message on the ticket's outbox and counts it for the current cycle, unless
/// `max` were already sent in this cycle (then `None`: nothing written).
pub async fn queue_absence_message(
    db: &Db,
    tenant: TenantId,
    ticket: TicketId,
    body: &str,
    max: i64,
    now: Timestamp,
) -> DbResult<Option<MessageId>> {
    write!(db, pool => {
        let mut tx = pool.begin().await?;
        let counted: Option<(i64, Option<i64>)> = sqlx::query_as(COUNT_ABSENCE)
            .bind(tenant.0)
            .bind(ticket.0)
            .bind(max)
            .bind(preview(body))
            .bind(now.0)
            .fetch_optional(&mut *tx)
            .await?;
        let Some((sent, cycle)) = counted else {
            return Ok(None);
        };
        let key = format!("absence:{}:{}:{sent}", ticket.0, cycle.unwrap_or_default());
        let id: i64 = sqlx::query_scalar(INSERT_AUTOMATIC)
            .bind(tenant.0)
            .bind(ticket.0)
            .bind(body)
            .bind(key)
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(MessageId(id)))
    })
}

/// Pending, not yet overflowed tickets of contacts that have `user` in their wallet, owned by
/// that user or by nobody: the ones that overflow when the user goes offline or pauses (SPEC §6).
pub async fn pending_wallet_tickets_of(
    db: &Db,
    tenant: TenantId,
    user: UserId,
) -> DbResult<Vec<TicketId>> {
    const SQL: &str = "SELECT t.id FROM wallets w
        JOIN tickets t ON t.tenant_id = w.tenant_id AND t.contact_id = w.contact_id
        WHERE w.tenant_id = $1 AND w.user_id = $2 AND t.status = 'pending'
            AND NOT t.wallet_overflowed AND (t.owner_id IS NULL OR t.owner_id = $2)
        ORDER BY t.id";
    let ids: Vec<i64> = read!(db, pool => {
        sqlx::query_scalar(SQL).bind(tenant.0).bind(user.0).fetch_all(pool).await?
    });
    Ok(ids.into_iter().map(TicketId).collect())
}
