//! Tickets and their attendance cycles (the storage half; the ticket engine decides the moves).

use crate::connections::CONNECTION_IN_TENANT;
use crate::contacts::CONTACT_IN_TENANT;
use crate::queues::{QUEUE_IN_TENANT, USER_IN_TENANT, ensure_ref, parse_enum};
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{
    ConnectionId, ContactId, DemandId, FlowId, QueueId, TenantId, Ticket, TicketCycleId, TicketId,
    TicketStatus, Timestamp, UserId,
};

#[derive(Debug, Clone)]
pub struct NewTicket {
    pub contact_id: ContactId,
    pub connection_id: ConnectionId,
    pub status: TicketStatus,
    pub owner_id: Option<UserId>,
    pub queue_id: Option<QueueId>,
    pub is_group: bool,
}

/// One attendance episode of a ticket (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketCycle {
    pub id: TicketCycleId,
    pub ticket_id: TicketId,
    pub opened_at: Timestamp,
    pub accepted_at: Option<Timestamp>,
    pub first_response_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub owner_id: Option<UserId>,
    pub queue_id: Option<QueueId>,
    pub demand_id: Option<DemandId>,
    pub closing_note: Option<String>,
    pub closed_by: Option<UserId>,
    pub close_reason: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct TicketRow {
    id: i64,
    tenant_id: i64,
    contact_id: i64,
    connection_id: i64,
    status: String,
    owner_id: Option<i64>,
    queue_id: Option<i64>,
    is_group: bool,
    protocol: Option<String>,
    bot_flow_id: Option<i64>,
    integration_active: bool,
    wallet_overflowed: bool,
    unread: i64,
    last_message: String,
    last_message_at: Option<i64>,
    last_inbound_at: Option<i64>,
    out_of_hours_sent: i64,
    pause_reason: Option<String>,
    current_cycle_id: Option<i64>,
    closed_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TicketRow {
    pub(crate) fn into_model(self) -> DbResult<Ticket> {
        Ok(Ticket {
            id: TicketId(self.id),
            tenant_id: TenantId(self.tenant_id),
            contact_id: ContactId(self.contact_id),
            connection_id: ConnectionId(self.connection_id),
            status: parse_enum(&self.status, TicketStatus::parse, "tickets.status")?,
            owner_id: self.owner_id.map(UserId),
            queue_id: self.queue_id.map(QueueId),
            is_group: self.is_group,
            protocol: self.protocol.unwrap_or_default(),
            bot_flow_id: self.bot_flow_id.map(FlowId),
            integration_active: self.integration_active,
            wallet_overflowed: self.wallet_overflowed,
            unread: self.unread,
            last_message: self.last_message,
            last_message_at: self.last_message_at.map(Timestamp),
            last_inbound_at: self.last_inbound_at.map(Timestamp),
            out_of_hours_sent: self.out_of_hours_sent,
            pause_reason: self.pause_reason,
            closed_at: self.closed_at.map(Timestamp),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct CycleRow {
    id: i64,
    ticket_id: i64,
    opened_at: i64,
    accepted_at: Option<i64>,
    first_response_at: Option<i64>,
    closed_at: Option<i64>,
    owner_id: Option<i64>,
    queue_id: Option<i64>,
    demand_id: Option<i64>,
    closing_note: Option<String>,
    closed_by: Option<i64>,
    close_reason: Option<String>,
}

impl CycleRow {
    fn into_model(self) -> TicketCycle {
        TicketCycle {
            id: TicketCycleId(self.id),
            ticket_id: TicketId(self.ticket_id),
            opened_at: Timestamp(self.opened_at),
            accepted_at: self.accepted_at.map(Timestamp),
            first_response_at: self.first_response_at.map(Timestamp),
            closed_at: self.closed_at.map(Timestamp),
            owner_id: self.owner_id.map(UserId),
            queue_id: self.queue_id.map(QueueId),
            demand_id: self.demand_id.map(DemandId),
            closing_note: self.closing_note,
            closed_by: self.closed_by.map(UserId),
            close_reason: self.close_reason,
        }
    }
}

/// The columns a [`TicketRow`] reads, unqualified: every statement that answers tickets of the
/// `tickets` table (SELECT or RETURNING) lists them through this one macro.
macro_rules! ticket_columns {
    () => {
        "id, tenant_id, contact_id, connection_id, status, owner_id, queue_id,
        is_group, protocol, bot_flow_id, integration_session IS NOT NULL AS integration_active,
        wallet_overflowed, unread, last_message, last_message_at, last_inbound_at,
        out_of_hours_sent, pause_reason, current_cycle_id, closed_at, created_at, updated_at"
    };
}
pub(crate) use ticket_columns;

pub(crate) const GET: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE tenant_id = $1 AND id = $2"
);
pub(crate) const FIND_OPEN: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets
    WHERE tenant_id = $1 AND contact_id = $2 AND connection_id = $3 AND status <> 'closed'"
);
const INSERT: &str = "INSERT INTO tickets (tenant_id, contact_id, connection_id, status, owner_id,
        queue_id, is_group, closed_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id";
pub(crate) const INSERT_CYCLE: &str =
    "INSERT INTO ticket_cycles (tenant_id, ticket_id, opened_at, accepted_at,
        closed_at, owner_id, queue_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
const SET_PROTOCOL: &str =
    "UPDATE tickets SET protocol = $3, current_cycle_id = $4 WHERE tenant_id = $1 AND id = $2";
const UPDATE_STATUS: &str = "UPDATE tickets SET status = $3, owner_id = $4, queue_id = $5,
        closed_at = $6, current_cycle_id = $7, updated_at = $8
    WHERE tenant_id = $1 AND id = $2";
const UPDATE_CYCLE: &str = "UPDATE ticket_cycles SET owner_id = $3, queue_id = $4,
        accepted_at = COALESCE(accepted_at, $5), closed_at = COALESCE(closed_at, $6)
    WHERE tenant_id = $1 AND id = $2";
const CYCLES: &str = "SELECT id, ticket_id, opened_at, accepted_at, first_response_at, closed_at,
        owner_id, queue_id, demand_id, closing_note, closed_by, close_reason
    FROM ticket_cycles WHERE tenant_id = $1 AND ticket_id = $2 ORDER BY id";

/// `yyyymmdd` (UTC) of `at` followed by the ticket id: unique, readable, sortable.
pub(crate) fn protocol(at: Timestamp, id: i64) -> String {
    format!("{}{id}", at.to_utc().format("%Y%m%d"))
}

/// When the cycle counts as accepted: an agent owns an open ticket.
pub(crate) fn accepted_at(
    status: TicketStatus,
    owner: Option<UserId>,
    now: Timestamp,
) -> Option<i64> {
    (status == TicketStatus::Open && owner.is_some()).then_some(now.0)
}

/// Creates the ticket with its first cycle and protocol in one transaction. A second non-closed
/// ticket for the same contact and connection → `Conflict`; a contact, connection, owner or queue
/// of another tenant → `UnknownReference` naming the field.
pub async fn create(db: &Db, tenant: TenantId, new: &NewTicket) -> DbResult<Ticket> {
    let now = Timestamp::now();
    let closed_at = (new.status == TicketStatus::Closed).then_some(now.0);
    let row: TicketRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        ensure_ref!(&mut *tx, CONTACT_IN_TENANT, tenant, new.contact_id.0, "contact_id");
        ensure_ref!(&mut *tx, CONNECTION_IN_TENANT, tenant, new.connection_id.0, "connection_id");
        if let Some(owner) = new.owner_id {
            ensure_ref!(&mut *tx, USER_IN_TENANT, tenant, owner.0, "owner_id");
        }
        if let Some(queue) = new.queue_id {
            ensure_ref!(&mut *tx, QUEUE_IN_TENANT, tenant, queue.0, "queue_id");
        }
        let id: i64 = sqlx::query_scalar(INSERT)
            .bind(tenant.0)
            .bind(new.contact_id.0)
            .bind(new.connection_id.0)
            .bind(new.status.as_str())
            .bind(new.owner_id.map(|u| u.0))
            .bind(new.queue_id.map(|q| q.0))
            .bind(new.is_group)
            .bind(closed_at)
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        let cycle: i64 = sqlx::query_scalar(INSERT_CYCLE)
            .bind(tenant.0)
            .bind(id)
            .bind(now.0)
            .bind(accepted_at(new.status, new.owner_id, now))
            .bind(closed_at)
            .bind(new.owner_id.map(|u| u.0))
            .bind(new.queue_id.map(|q| q.0))
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(SET_PROTOCOL)
            .bind(tenant.0)
            .bind(id)
            .bind(protocol(now, id))
            .bind(cycle)
            .execute(&mut *tx)
            .await?;
        let row: TicketRow = sqlx::query_as(GET).bind(tenant.0).bind(id).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        row
    });
    row.into_model()
}

pub async fn get(db: &Db, tenant: TenantId, id: TicketId) -> DbResult<Ticket> {
    let row: Option<TicketRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.ok_or(DbError::NotFound)?.into_model()
}

const GET_MANY: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM tickets WHERE tenant_id = "
);

/// The tickets of the tenant with these ids, in no particular order (unknown ids are left out):
/// one read for a batch instead of one per ticket.
pub async fn get_many(db: &Db, tenant: TenantId, ids: &[TicketId]) -> DbResult<Vec<Ticket>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<TicketRow> = read!(db, pool => {
        let mut query = sqlx::QueryBuilder::new(GET_MANY);
        query.push_bind(tenant.0).push(" AND id IN (");
        let mut list = query.separated(", ");
        for id in ids {
            list.push_bind(id.0);
        }
        list.push_unseparated(")");
        query.build_query_as().fetch_all(pool).await?
    });
    rows.into_iter().map(TicketRow::into_model).collect()
}

/// The non-closed ticket of this contact on this connection, if any (there is at most one).
pub async fn find_open_for_contact(
    db: &Db,
    tenant: TenantId,
    contact_id: ContactId,
    connection_id: ConnectionId,
) -> DbResult<Option<Ticket>> {
    let row: Option<TicketRow> = read!(db, pool => {
        sqlx::query_as(FIND_OPEN)
            .bind(tenant.0)
            .bind(contact_id.0)
            .bind(connection_id.0)
            .fetch_optional(pool)
            .await?
    });
    row.map(TicketRow::into_model).transpose()
}

/// Moves the ticket to `status` with this owner and queue (both replaced, `None` clears them).
/// Closing stamps `closed_at` on the ticket and its cycle; leaving `closed` starts a new cycle
/// (and fails with `Conflict` if the contact already has another open ticket on the connection);
/// the cycle is marked accepted the first time it is open with an owner. The caller (the ticket
/// engine) decides whether the move is allowed. Owner or queue of another tenant →
/// `UnknownReference { field: "owner_id" | "queue_id" }`.
pub async fn set_status(
    db: &Db,
    tenant: TenantId,
    id: TicketId,
    status: TicketStatus,
    owner_id: Option<UserId>,
    queue_id: Option<QueueId>,
    now: Timestamp,
) -> DbResult<Ticket> {
    let closing = status == TicketStatus::Closed;
    let accepted = accepted_at(status, owner_id, now);
    let row: TicketRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let current: Option<TicketRow> =
            sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(&mut *tx).await?;
        let current = current.ok_or(DbError::NotFound)?;
        if let Some(owner) = owner_id {
            ensure_ref!(&mut *tx, USER_IN_TENANT, tenant, owner.0, "owner_id");
        }
        if let Some(queue) = queue_id {
            ensure_ref!(&mut *tx, QUEUE_IN_TENANT, tenant, queue.0, "queue_id");
        }
        let was_closed = current.status == TicketStatus::Closed.as_str();
        let cycle = match current.current_cycle_id {
            Some(cycle) if !was_closed => {
                sqlx::query(UPDATE_CYCLE)
                    .bind(tenant.0)
                    .bind(cycle)
                    .bind(owner_id.map(|u| u.0))
                    .bind(queue_id.map(|q| q.0))
                    .bind(accepted)
                    .bind(closing.then_some(now.0))
                    .execute(&mut *tx)
                    .await?;
                cycle
            }
            Some(cycle) if closing => cycle,
            _ => {
                // Reopened (or a ticket without a cycle): a new attendance episode starts.
                sqlx::query_scalar(INSERT_CYCLE)
                    .bind(tenant.0)
                    .bind(id.0)
                    .bind(now.0)
                    .bind(accepted)
                    .bind(closing.then_some(now.0))
                    .bind(owner_id.map(|u| u.0))
                    .bind(queue_id.map(|q| q.0))
                    .fetch_one(&mut *tx)
                    .await?
            }
        };
        let closed_at = if closing {
            if was_closed { current.closed_at.or(Some(now.0)) } else { Some(now.0) }
        } else {
            None
        };
        sqlx::query(UPDATE_STATUS)
            .bind(tenant.0)
            .bind(id.0)
            .bind(status.as_str())
            .bind(owner_id.map(|u| u.0))
            .bind(queue_id.map(|q| q.0))
            .bind(closed_at)
            .bind(cycle)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        let row: TicketRow =
            sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        row
    });
    row.into_model()
}

/// The cycles of a ticket, oldest first (empty for a ticket of another tenant).
pub async fn cycles(db: &Db, tenant: TenantId, id: TicketId) -> DbResult<Vec<TicketCycle>> {
    let rows: Vec<CycleRow> = read!(db, pool => {
        sqlx::query_as(CYCLES).bind(tenant.0).bind(id.0).fetch_all(pool).await?
    });
    Ok(rows.into_iter().map(CycleRow::into_model).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_is_utc_date_then_id() {
        // 2025-11-24T15:33:20Z
        assert_eq!(protocol(Timestamp(1_764_000_000_000), 42), "2025112442");
    }
}
