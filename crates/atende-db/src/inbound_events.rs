//! The raw log of every authentic provider delivery, deduplicated on (connection, provider id).

use crate::queues::parse_enum;
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{ConnectionId, InboundEventId, InboundOutcome, TenantId, Timestamp};

/// What `record` did with a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// First delivery: stored with outcome `received`.
    New(InboundEventId),
    /// The provider delivered this id before; nothing was stored. Carries the first event's id.
    Duplicate(InboundEventId),
}

/// One row of the inbound log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEvent {
    pub id: InboundEventId,
    pub tenant_id: TenantId,
    pub connection_id: ConnectionId,
    pub provider_id: String,
    pub received_at: Timestamp,
    pub raw_body: String,
    pub outcome: InboundOutcome,
    /// Drop reason or processing error.
    pub reason: Option<String>,
    pub processed_at: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct InboundEventRow {
    id: i64,
    tenant_id: i64,
    connection_id: i64,
    provider_id: String,
    received_at: i64,
    raw_body: String,
    outcome: String,
    reason: Option<String>,
    processed_at: Option<i64>,
}

impl InboundEventRow {
    fn into_model(self) -> DbResult<InboundEvent> {
        Ok(InboundEvent {
            id: InboundEventId(self.id),
            tenant_id: TenantId(self.tenant_id),
            connection_id: ConnectionId(self.connection_id),
            provider_id: self.provider_id,
            received_at: Timestamp(self.received_at),
            raw_body: self.raw_body,
            outcome: parse_enum(
                &self.outcome,
                InboundOutcome::parse,
                "inbound_events.outcome",
            )?,
            reason: self.reason,
            processed_at: self.processed_at.map(Timestamp),
        })
    }
}

pub(crate) const INSERT: &str =
    "INSERT INTO inbound_events (tenant_id, connection_id, provider_id, received_at,
        raw_body, outcome)
    VALUES ($1, $2, $3, $4, $5, 'received')
    ON CONFLICT (tenant_id, connection_id, provider_id) DO NOTHING
    RETURNING id";
pub(crate) const FIND: &str = "SELECT id FROM inbound_events
    WHERE tenant_id = $1 AND connection_id = $2 AND provider_id = $3";
const SET_OUTCOME: &str = "UPDATE inbound_events SET outcome = $3, reason = $4, processed_at = $5
    WHERE tenant_id = $1 AND id = $2";
const GET: &str =
    "SELECT id, tenant_id, connection_id, provider_id, received_at, raw_body, outcome,
        reason, processed_at
    FROM inbound_events WHERE tenant_id = $1 AND id = $2";
const LIST: &str =
    "SELECT id, tenant_id, connection_id, provider_id, received_at, raw_body, outcome,
        reason, processed_at
    FROM inbound_events WHERE tenant_id = $1
    ORDER BY received_at DESC, id DESC LIMIT $2";
const LIST_BY_OUTCOME: &str =
    "SELECT id, tenant_id, connection_id, provider_id, received_at, raw_body,
        outcome, reason, processed_at
    FROM inbound_events WHERE tenant_id = $1 AND outcome = $2
    ORDER BY received_at DESC, id DESC LIMIT $3";

/// Commits a delivery before anything else looks at it (SPEC §4.2). A repeat of the same
/// (connection, provider id) stores nothing and returns `Duplicate` with the first event's id.
/// A connection of another tenant → `UnknownReference { field: "connection_id" }`.
pub async fn record(
    db: &Db,
    tenant: TenantId,
    connection_id: ConnectionId,
    provider_id: &str,
    received_at: Timestamp,
    raw_body: &str,
) -> DbResult<RecordOutcome> {
    let outcome = write!(db, pool => {
        let inserted: Option<i64> = sqlx::query_scalar(INSERT)
            .bind(tenant.0)
            .bind(connection_id.0)
            .bind(provider_id)
            .bind(received_at.0)
            .bind(raw_body)
            .fetch_optional(pool)
            .await
            .map_err(|e| match DbError::from(e) {
                DbError::ForeignKey(_) => {
                    DbError::UnknownReference { field: "connection_id", id: connection_id.0 }
                }
                other => other,
            })?;
        match inserted {
            Some(id) => RecordOutcome::New(InboundEventId(id)),
            None => {
                let existing: Option<i64> = sqlx::query_scalar(FIND)
                    .bind(tenant.0)
                    .bind(connection_id.0)
                    .bind(provider_id)
                    .fetch_optional(pool)
                    .await?;
                RecordOutcome::Duplicate(InboundEventId(existing.ok_or(DbError::NotFound)?))
            }
        }
    });
    Ok(outcome)
}

/// Records what the pipeline did with the event: processed, dropped (with the reason) or failed
/// (with the error).
pub async fn set_outcome(
    db: &Db,
    tenant: TenantId,
    id: InboundEventId,
    outcome: InboundOutcome,
    reason: Option<&str>,
    now: Timestamp,
) -> DbResult<()> {
    let affected = write!(db, pool => {
        sqlx::query(SET_OUTCOME)
            .bind(tenant.0)
            .bind(id.0)
            .bind(outcome.as_str())
            .bind(reason)
            .bind(now.0)
            .execute(pool)
            .await?
            .rows_affected()
    });
    if affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

pub async fn get(db: &Db, tenant: TenantId, id: InboundEventId) -> DbResult<InboundEvent> {
    let row: Option<InboundEventRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.ok_or(DbError::NotFound)?.into_model()
}

/// The newest events first, optionally only those with one outcome (e.g. `failed` for admins).
pub async fn list(
    db: &Db,
    tenant: TenantId,
    outcome: Option<InboundOutcome>,
    limit: i64,
) -> DbResult<Vec<InboundEvent>> {
    let rows: Vec<InboundEventRow> = read!(db, pool => {
        match outcome {
            Some(outcome) => {
                sqlx::query_as(LIST_BY_OUTCOME)
                    .bind(tenant.0)
                    .bind(outcome.as_str())
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            None => sqlx::query_as(LIST).bind(tenant.0).bind(limit).fetch_all(pool).await?,
        }
    });
    rows.into_iter().map(InboundEventRow::into_model).collect()
}
