//! Jobs: background work with due time, lease, attempts and progress (sends, timers, maintenance).
//!
//! Life of a job: `queued` → (claimed by a worker, with a lease) `running` → `done` | `failed`, or
//! back to `queued` with a later due time (`retry_later`). A `running` job whose lease expired is
//! claimed again, so a crashed worker's job is not lost.

use crate::{Backend, Db, DbError, DbResult, read, write};
use atende_domain::{Job, JobId, JobStatus, TenantId, Timestamp};

macro_rules! job_columns {
    () => {
        "id, tenant_id, kind, status, payload, progress, total, result, error, attempts, due_at, \
         lease_until, created_at, updated_at"
    };
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    pub payload: serde_json::Value,
    /// Expected amount of work, for progress (0 when unknown).
    pub total: i64,
    pub due_at: Timestamp,
    /// While a job with this key is queued or running in the tenant, `create` returns it instead
    /// of adding another (e.g. a maintenance action clicked twice).
    pub dedupe_key: Option<String>,
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: i64,
    tenant_id: i64,
    kind: String,
    status: String,
    payload: String,
    progress: i64,
    total: i64,
    result: Option<String>,
    error: Option<String>,
    attempts: i64,
    due_at: i64,
    lease_until: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<JobRow> for Job {
    type Error = DbError;

    fn try_from(row: JobRow) -> DbResult<Job> {
        let corrupt = |what: String| DbError::Corrupt(format!("job {}: {what}", row.id));
        let status = JobStatus::parse(&row.status)
            .ok_or_else(|| corrupt(format!("unknown status '{}'", row.status)))?;
        let payload = serde_json::from_str(&row.payload).map_err(|e| corrupt(e.to_string()))?;
        let result = match row.result.as_deref() {
            None => None,
            Some(text) => Some(serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?),
        };
        Ok(Job {
            id: JobId(row.id),
            tenant_id: TenantId(row.tenant_id),
            kind: row.kind,
            status,
            payload,
            progress: row.progress,
            total: row.total,
            result,
            error: row.error,
            attempts: row.attempts,
            due_at: Timestamp(row.due_at),
            lease_until: row.lease_until.map(Timestamp),
            created_at: Timestamp(row.created_at),
            updated_at: Timestamp(row.updated_at),
        })
    }
}

/// What `create_or_join` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    /// A new job, queued.
    New(Job),
    /// A job with the same `dedupe_key` was still queued or running: that one.
    Live(Job),
}

/// Queues a job, or returns the live job (queued or running) that has the same `dedupe_key`.
pub async fn create(db: &Db, tenant: TenantId, new: &NewJob) -> DbResult<Job> {
    Ok(match create_or_join(db, tenant, new).await? {
        Created::New(job) | Created::Live(job) => job,
    })
}

/// `create`, telling a new job from the live one it joined (e.g. to audit only a real start).
pub async fn create_or_join(db: &Db, tenant: TenantId, new: &NewJob) -> DbResult<Created> {
    // The conflict target names the partial unique index `jobs_dedupe_key` (same predicate).
    const INSERT: &str = concat!(
        "INSERT INTO jobs (tenant_id, kind, status, payload, progress, total, attempts, due_at, \
         dedupe_key, created_at, updated_at) \
         VALUES ($1, $2, 'queued', $3, 0, $4, 0, $5, $6, $7, $7) \
         ON CONFLICT (tenant_id, dedupe_key) \
         WHERE dedupe_key IS NOT NULL AND status IN ('queued', 'running') DO NOTHING \
         RETURNING ",
        job_columns!()
    );
    const LIVE: &str = concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE tenant_id = $1 AND dedupe_key = $2 AND status IN ('queued', 'running')"
    );
    let payload = serde_json::to_string(&new.payload)?;
    let now = Timestamp::now().millis();
    let (row, created): (JobRow, bool) = write!(db, pool => {
        let mut found = None;
        // The live job may finish between the refused insert and the select: then insert again.
        for _ in 0..3 {
            let inserted: Option<JobRow> = sqlx::query_as(INSERT)
                .bind(tenant.0)
                .bind(&new.kind)
                .bind(&payload)
                .bind(new.total)
                .bind(new.due_at.millis())
                .bind(&new.dedupe_key)
                .bind(now)
                .fetch_optional(pool)
                .await
                .map_err(|e| match DbError::from(e) {
                    DbError::ForeignKey(_) => {
                        DbError::UnknownReference { field: "tenant_id", id: tenant.0 }
                    }
                    other => other,
                })?;
            if let Some(row) = inserted {
                found = Some((row, true));
                break;
            }
            let live: Option<JobRow> = sqlx::query_as(LIVE)
                .bind(tenant.0)
                .bind(&new.dedupe_key)
                .fetch_optional(pool)
                .await?;
            if let Some(row) = live {
                found = Some((row, false));
                break;
            }
        }
        found.ok_or_else(|| DbError::Conflict { constraint: "jobs_dedupe_key".to_owned() })?
    });
    let job = Job::try_from(row)?;
    Ok(if created {
        Created::New(job)
    } else {
        Created::Live(job)
    })
}

pub async fn get(db: &Db, tenant: TenantId, id: JobId) -> DbResult<Job> {
    const SQL: &str = concat!(
        "SELECT ",
        job_columns!(),
        " FROM jobs WHERE tenant_id = $1 AND id = $2"
    );
    let row: Option<JobRow> = read!(db, pool => sqlx::query_as(SQL).bind(tenant.0).bind(id.0).fetch_optional(pool).await?);
    row.ok_or(DbError::NotFound)?.try_into()
}

/// Claims up to `limit` jobs of any tenant that are due at `now` (queued with `due_at <= now`, or
/// running with an expired lease): each becomes `running`, leased to `lease_owner` until
/// `now + lease_ms`, with one more attempt. Ordered by due time. Safe with several workers: on
/// PostgreSQL rows locked by another claimer are skipped; SQLite has a single writer.
pub async fn platform_claim_due(
    db: &Db,
    now: Timestamp,
    lease_owner: &str,
    lease_ms: i64,
    limit: i64,
) -> DbResult<Vec<Job>> {
    // Every kind starts with the empty prefix.
    platform_claim_due_of_kind(db, "", now, lease_owner, lease_ms, limit).await
}

/// `platform_claim_due` for the jobs whose kind starts with `kind_prefix` only, so a worker
/// takes only the work it knows (e.g. `maintenance.`).
pub async fn platform_claim_due_of_kind(
    db: &Db,
    kind_prefix: &str,
    now: Timestamp,
    lease_owner: &str,
    lease_ms: i64,
    limit: i64,
) -> DbResult<Vec<Job>> {
    const POSTGRES: &str = concat!(
        "UPDATE jobs SET status = 'running', lease_until = $2, lease_owner = $3, \
         attempts = attempts + 1, updated_at = $1 \
         WHERE id IN (SELECT id FROM jobs \
             WHERE ((status = 'queued' AND due_at <= $1) \
                 OR (status = 'running' AND lease_until <= $1)) \
                 AND substr(kind, 1, length($5)) = $5 \
             ORDER BY due_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
         RETURNING ",
        job_columns!()
    );
    const SQLITE: &str = concat!(
        "UPDATE jobs SET status = 'running', lease_until = $2, lease_owner = $3, \
         attempts = attempts + 1, updated_at = $1 \
         WHERE id IN (SELECT id FROM jobs \
             WHERE ((status = 'queued' AND due_at <= $1) \
                 OR (status = 'running' AND lease_until <= $1)) \
                 AND substr(kind, 1, length($5)) = $5 \
             ORDER BY due_at, id LIMIT $4) \
         RETURNING ",
        job_columns!()
    );
    let sql = match db.backend() {
        Backend::Postgres => POSTGRES,
        Backend::Sqlite => SQLITE,
    };
    let lease_until = now.plus_millis(lease_ms).millis();
    let rows: Vec<JobRow> = write!(db, pool => {
        sqlx::query_as(sql)
            .bind(now.millis())
            .bind(lease_until)
            .bind(lease_owner)
            .bind(limit)
            .bind(kind_prefix)
            .fetch_all(pool)
            .await?
    });
    let mut jobs = rows
        .into_iter()
        .map(Job::try_from)
        .collect::<DbResult<Vec<Job>>>()?;
    jobs.sort_by_key(|job| (job.due_at, job.id));
    Ok(jobs)
}

/// Records progress and extends the lease to `lease_until`, only while `lease_owner` still
/// holds the running job. `false`: the lease was lost (it expired and another worker claimed the
/// job, or the job ended), so the caller must stop working on it.
pub async fn heartbeat(
    db: &Db,
    tenant: TenantId,
    id: JobId,
    lease_owner: &str,
    progress: i64,
    total: i64,
    lease_until: Timestamp,
) -> DbResult<bool> {
    const SQL: &str = "UPDATE jobs SET progress = $4, total = $5, lease_until = $6, updated_at = $7 \
                       WHERE tenant_id = $1 AND id = $2 AND status = 'running' AND lease_owner = $3";
    let now = Timestamp::now().millis();
    let held = write!(db, pool => {
        sqlx::query(SQL)
            .bind(tenant.0)
            .bind(id.0)
            .bind(lease_owner)
            .bind(progress)
            .bind(total)
            .bind(lease_until.millis())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(held > 0)
}

/// Records how far a job got (`progress` of `total`).
pub async fn set_progress(
    db: &Db,
    tenant: TenantId,
    id: JobId,
    progress: i64,
    total: i64,
) -> DbResult<()> {
    const SQL: &str = "UPDATE jobs SET progress = $3, total = $4, updated_at = $5 \
                       WHERE tenant_id = $1 AND id = $2";
    let now = Timestamp::now().millis();
    let done = write!(db, pool => {
        sqlx::query(SQL).bind(tenant.0).bind(id.0).bind(progress).bind(total).bind(now)
            .execute(pool).await?.rows_affected()
    });
    found(done)
}

/// Marks a job `done` with its result summary and releases its lease.
pub async fn finish(
    db: &Db,
    tenant: TenantId,
    id: JobId,
    result: &serde_json::Value,
) -> DbResult<()> {
    const SQL: &str = "UPDATE jobs SET status = 'done', result = $3, error = NULL, \
                       lease_until = NULL, lease_owner = NULL, updated_at = $4 \
                       WHERE tenant_id = $1 AND id = $2";
    let result = serde_json::to_string(result)?;
    let now = Timestamp::now().millis();
    let done = write!(db, pool => {
        sqlx::query(SQL).bind(tenant.0).bind(id.0).bind(&result).bind(now)
            .execute(pool).await?.rows_affected()
    });
    found(done)
}

/// Marks a job `failed` for good with the reason and releases its lease.
pub async fn fail(db: &Db, tenant: TenantId, id: JobId, error: &str) -> DbResult<()> {
    const SQL: &str = "UPDATE jobs SET status = 'failed', error = $3, \
                       lease_until = NULL, lease_owner = NULL, updated_at = $4 \
                       WHERE tenant_id = $1 AND id = $2";
    let now = Timestamp::now().millis();
    let done = write!(db, pool => {
        sqlx::query(SQL).bind(tenant.0).bind(id.0).bind(error).bind(now)
            .execute(pool).await?.rows_affected()
    });
    found(done)
}

/// Puts a job back in the queue until `due_at`, keeping the reason of this failed attempt.
pub async fn retry_later(
    db: &Db,
    tenant: TenantId,
    id: JobId,
    due_at: Timestamp,
    error: &str,
) -> DbResult<()> {
    const SQL: &str = "UPDATE jobs SET status = 'queued', due_at = $3, error = $4, \
                       lease_until = NULL, lease_owner = NULL, updated_at = $5 \
                       WHERE tenant_id = $1 AND id = $2";
    let now = Timestamp::now().millis();
    let done = write!(db, pool => {
        sqlx::query(SQL).bind(tenant.0).bind(id.0).bind(due_at.millis()).bind(error).bind(now)
            .execute(pool).await?.rows_affected()
    });
    found(done)
}

fn found(rows_affected: u64) -> DbResult<()> {
    if rows_affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}
