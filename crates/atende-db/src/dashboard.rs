//! The figures of the dashboard (SPEC §12), read from the ticket cycles (one per attendance
//! episode: opened → first agent reply → closed, with the queue and owner it ended with) and from
//! the tickets' current statuses.
//!
//! Every figure is a range over one of the cycle's times on an index that carries all it reads
//! (migration 0014), counted or streamed without touching the table; the caller bounds the range
//! (at most 366 days). Days are counted in the database per [`OffsetSpan`] (a run of one UTC
//! offset, see `atende_domain::dashboard`); durations come back as samples for the domain to
//! summarise, since SQLite has no percentile function and one text serves both stores.

use crate::{Db, DbResult, read};
use atende_domain::dashboard::{DAY_MS, OffsetSpan};
use atende_domain::{QueueId, TenantId, TicketStatus, Timestamp, UserId};
use futures::TryStreamExt;
use std::collections::{BTreeMap, HashMap};

/// Whose figures: every queue and owner when both are `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope {
    pub queue_id: Option<QueueId>,
    /// The cycle's owner (the agent who had it), or the ticket's owner for status counts.
    pub owner_id: Option<UserId>,
}

/// Cycles opened and closed on one local day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCount {
    /// Days since 1970-01-01 of the local calendar (`atende_domain::dashboard::day_number`).
    pub day: i64,
    pub opened: i64,
    pub closed: i64,
}

/// Which duration of a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// Opened → the first agent reply; sampled by when that reply came.
    FirstResponse,
    /// Opened → closed; sampled by when it closed.
    Resolution,
}

/// Durations in milliseconds, all of them and grouped by queue and by owner (`None` = no queue /
/// no owner).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DurationSamples {
    pub all: Vec<i64>,
    pub by_queue: BTreeMap<Option<QueueId>, Vec<i64>>,
    pub by_owner: BTreeMap<Option<UserId>, Vec<i64>>,
}

/// `(day number, count)` rows.
type DayRows = Vec<(i64, i64)>;
/// `(id, name)` rows.
type NameRows = Vec<(i64, String)>;

// `$4` is the span's offset; the day number is the store's `(t + offset) / DAY_MS`
// (`atende_domain::dashboard::local_day_number`: times are after the epoch, so truncation is the
// floor). The filters are residual: the range on the leading time column drives the index.
const OPENED_PER_DAY: &str = "SELECT (opened_at + $4) / $7 AS day, COUNT(*)
    FROM ticket_cycles
    WHERE tenant_id = $1 AND opened_at >= $2 AND opened_at < $3
        AND ($5 IS NULL OR queue_id = $5) AND ($6 IS NULL OR owner_id = $6)
    GROUP BY 1";
const CLOSED_PER_DAY: &str = "SELECT (closed_at + $4) / $7 AS day, COUNT(*)
    FROM ticket_cycles
    WHERE tenant_id = $1 AND closed_at >= $2 AND closed_at < $3
        AND ($5 IS NULL OR queue_id = $5) AND ($6 IS NULL OR owner_id = $6)
    GROUP BY 1";
const FIRST_RESPONSES: &str = "SELECT queue_id, owner_id, first_response_at - opened_at
    FROM ticket_cycles
    WHERE tenant_id = $1 AND first_response_at >= $2 AND first_response_at < $3
        AND ($4 IS NULL OR queue_id = $4) AND ($5 IS NULL OR owner_id = $5)";
const RESOLUTIONS: &str = "SELECT queue_id, owner_id, closed_at - opened_at
    FROM ticket_cycles
    WHERE tenant_id = $1 AND closed_at >= $2 AND closed_at < $3
        AND ($4 IS NULL OR queue_id = $4) AND ($5 IS NULL OR owner_id = $5)";
// One count per status, so each is a range on the (tenant, status, queue | owner, …) list
// indexes; the filters stay residual here too (a status's tickets of one queue or owner).
const STATUS_COUNT: &str = "SELECT COUNT(*) FROM tickets
    WHERE tenant_id = $1 AND status = $2
        AND ($3 IS NULL OR queue_id = $3) AND ($4 IS NULL OR owner_id = $4)";
const QUEUE_NAMES: &str = "SELECT id, name FROM queues WHERE tenant_id = $1";
const USER_NAMES: &str = "SELECT id, name FROM users WHERE tenant_id = $1";

/// Cycles opened and closed per local day over `spans` (in order, not overlapping), days without
/// any left out, in day order.
pub async fn cycles_per_day(
    db: &Db,
    tenant: TenantId,
    spans: &[OffsetSpan],
    scope: &Scope,
) -> DbResult<Vec<DayCount>> {
    let mut days: BTreeMap<i64, DayCount> = BTreeMap::new();
    let queue = scope.queue_id.map(|q| q.0);
    let owner = scope.owner_id.map(|u| u.0);
    for span in spans {
        let (opened, closed): (DayRows, DayRows) = read!(db, pool => {
            let opened = sqlx::query_as(OPENED_PER_DAY)
                .bind(tenant.0)
                .bind(span.start.0)
                .bind(span.end.0)
                .bind(span.offset_ms)
                .bind(queue)
                .bind(owner)
                .bind(DAY_MS)
                .fetch_all(pool)
                .await?;
            let closed = sqlx::query_as(CLOSED_PER_DAY)
                .bind(tenant.0)
                .bind(span.start.0)
                .bind(span.end.0)
                .bind(span.offset_ms)
                .bind(queue)
                .bind(owner)
                .bind(DAY_MS)
                .fetch_all(pool)
                .await?;
            (opened, closed)
        });
        // A day cut by an offset change appears in two spans: its counts add up.
        for (day, count) in opened {
            let entry = days.entry(day).or_insert(DayCount {
                day,
                ..DayCount::default()
            });
            entry.opened += count;
        }
        for (day, count) in closed {
            let entry = days.entry(day).or_insert(DayCount {
                day,
                ..DayCount::default()
            });
            entry.closed += count;
        }
    }
    Ok(days.into_values().collect())
}

/// The durations of `measure` whose sampling time (first reply, or close) is in `[start, end)`.
pub async fn durations(
    db: &Db,
    tenant: TenantId,
    measure: Measure,
    start: Timestamp,
    end: Timestamp,
    scope: &Scope,
) -> DbResult<DurationSamples> {
    let sql = match measure {
        Measure::FirstResponse => FIRST_RESPONSES,
        Measure::Resolution => RESOLUTIONS,
    };
    let mut samples = DurationSamples::default();
    read!(db, pool => {
        // Streamed into the groups: a long period of a large tenant never sits in memory twice.
        let mut rows = sqlx::query_as::<_, (Option<i64>, Option<i64>, i64)>(sql)
            .bind(tenant.0)
            .bind(start.0)
            .bind(end.0)
            .bind(scope.queue_id.map(|q| q.0))
            .bind(scope.owner_id.map(|u| u.0))
            .fetch(pool);
        while let Some((queue, owner, millis)) = rows.try_next().await? {
            samples.all.push(millis);
            samples.by_queue.entry(queue.map(QueueId)).or_default().push(millis);
            samples.by_owner.entry(owner.map(UserId)).or_default().push(millis);
        }
    });
    Ok(samples)
}

/// How many of the tenant's tickets are in each status now (every status present, zeros
/// included), within `scope` (the ticket's current queue and owner).
pub async fn status_counts(
    db: &Db,
    tenant: TenantId,
    scope: &Scope,
) -> DbResult<Vec<(TicketStatus, i64)>> {
    const STATUSES: [TicketStatus; 4] = [
        TicketStatus::Pending,
        TicketStatus::Open,
        TicketStatus::Paused,
        TicketStatus::Closed,
    ];
    let mut counts = Vec::with_capacity(STATUSES.len());
    for status in STATUSES {
        let count: i64 = read!(db, pool => {
            sqlx::query_scalar(STATUS_COUNT)
                .bind(tenant.0)
                .bind(status.as_str())
                .bind(scope.queue_id.map(|q| q.0))
                .bind(scope.owner_id.map(|u| u.0))
                .fetch_one(pool)
                .await?
        });
        counts.push((status, count));
    }
    Ok(counts)
}

/// The names of the tenant's queues and users, to label the figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    pub queues: HashMap<QueueId, String>,
    pub users: HashMap<UserId, String>,
}

pub async fn labels(db: &Db, tenant: TenantId) -> DbResult<Labels> {
    let (queues, users): (NameRows, NameRows) = read!(db, pool => {
        let queues = sqlx::query_as(QUEUE_NAMES).bind(tenant.0).fetch_all(pool).await?;
        let users = sqlx::query_as(USER_NAMES).bind(tenant.0).fetch_all(pool).await?;
        (queues, users)
    });
    Ok(Labels {
        queues: queues
            .into_iter()
            .map(|(id, name)| (QueueId(id), name))
            .collect(),
        users: users
            .into_iter()
            .map(|(id, name)| (UserId(id), name))
            .collect(),
    })
}
