//! Queues (filas), which users belong to them, and small helpers shared by the business modules.

use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{Queue, QueueId, TenantId, Timestamp, UserId};

/// Returns `DbError::UnknownReference { field, id }` from the enclosing function unless `$sql`
/// (`SELECT id FROM x WHERE tenant_id = $1 AND id = $2`) finds the row. A macro, not a function,
/// so the same text compiles against both backends' connections without trait bounds.
macro_rules! ensure_ref {
    ($conn:expr, $sql:expr, $tenant:expr, $id:expr, $field:expr) => {{
        let id: i64 = $id;
        let found: Option<i64> = sqlx::query_scalar($sql)
            .bind($tenant.0)
            .bind(id)
            .fetch_optional($conn)
            .await?;
        if found.is_none() {
            return Err($crate::DbError::UnknownReference { field: $field, id });
        }
    }};
}
pub(crate) use ensure_ref;

pub(crate) const USER_IN_TENANT: &str = "SELECT id FROM users WHERE tenant_id = $1 AND id = $2";
pub(crate) const QUEUE_IN_TENANT: &str = "SELECT id FROM queues WHERE tenant_id = $1 AND id = $2";

/// Parses a stored enum wire name; an unknown one means the data is corrupt.
pub(crate) fn parse_enum<T>(text: &str, parse: fn(&str) -> Option<T>, column: &str) -> DbResult<T> {
    parse(text).ok_or_else(|| DbError::Corrupt(format!("{column}: unknown value '{text}'")))
}

pub(crate) fn parse_json(text: &str) -> DbResult<serde_json::Value> {
    Ok(serde_json::from_str(text)?)
}

pub(crate) fn parse_json_opt(text: Option<String>) -> DbResult<Option<serde_json::Value>> {
    text.as_deref().map(parse_json).transpose()
}

/// Keeps the first occurrence of each id, in order.
pub(crate) fn dedup<T: PartialEq + Copy>(ids: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(id) {
            out.push(*id);
        }
    }
    out
}

#[derive(Debug, Clone)]
pub struct NewQueue {
    pub name: String,
    pub color: String,
    pub greeting: String,
    pub absence_message: String,
    pub business_hours: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Default)]
pub struct QueuePatch {
    pub name: Option<String>,
    pub color: Option<String>,
    pub greeting: Option<String>,
    pub absence_message: Option<String>,
    pub business_hours: Option<Option<serde_json::Value>>,
}

#[derive(sqlx::FromRow)]
struct QueueRow {
    id: i64,
    tenant_id: i64,
    name: String,
    color: String,
    greeting: String,
    absence_message: String,
    business_hours: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl QueueRow {
    fn into_model(self) -> DbResult<Queue> {
        Ok(Queue {
            id: QueueId(self.id),
            tenant_id: TenantId(self.tenant_id),
            name: self.name,
            color: self.color,
            greeting: self.greeting,
            absence_message: self.absence_message,
            business_hours: parse_json_opt(self.business_hours)?,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

const INSERT: &str = "INSERT INTO queues (tenant_id, name, color, greeting, absence_message,
        business_hours, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
    RETURNING id, tenant_id, name, color, greeting, absence_message, business_hours, created_at,
        updated_at";
const GET: &str = "SELECT id, tenant_id, name, color, greeting, absence_message, business_hours,
        created_at, updated_at
    FROM queues WHERE tenant_id = $1 AND id = $2";
const LIST: &str = "SELECT id, tenant_id, name, color, greeting, absence_message, business_hours,
        created_at, updated_at
    FROM queues WHERE tenant_id = $1 ORDER BY name, id";
const FIND_BY_NAME: &str =
    "SELECT id, tenant_id, name, color, greeting, absence_message, business_hours,
        created_at, updated_at
    FROM queues WHERE tenant_id = $1 AND name = $2";
const UPDATE: &str = "UPDATE queues SET name = $3, color = $4, greeting = $5, absence_message = $6,
    business_hours = $7, updated_at = $8 WHERE tenant_id = $1 AND id = $2
    RETURNING id, tenant_id, name, color, greeting, absence_message, business_hours, created_at,
        updated_at";
const DELETE: &str = "DELETE FROM queues WHERE tenant_id = $1 AND id = $2";
const INSERT_USER_QUEUE: &str =
    "INSERT INTO user_queues (tenant_id, user_id, queue_id) VALUES ($1, $2, $3)";
const COUNT: &str = "SELECT COUNT(*) FROM queues WHERE tenant_id = $1";

pub async fn create(db: &Db, tenant: TenantId, new: &NewQueue) -> DbResult<Queue> {
    let now = Timestamp::now();
    let hours = new.business_hours.as_ref().map(|v| v.to_string());
    let row: QueueRow = write!(db, pool => {
        sqlx::query_as(INSERT)
            .bind(tenant.0)
            .bind(new.name.as_str())
            .bind(new.color.as_str())
            .bind(new.greeting.as_str())
            .bind(new.absence_message.as_str())
            .bind(hours.as_deref())
            .bind(now.0)
            .fetch_one(pool)
            .await?
    });
    row.into_model()
}

pub async fn get(db: &Db, tenant: TenantId, id: QueueId) -> DbResult<Queue> {
    let row: Option<QueueRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.ok_or(DbError::NotFound)?.into_model()
}

/// All queues of the tenant, by name.
pub async fn list(db: &Db, tenant: TenantId) -> DbResult<Vec<Queue>> {
    let rows: Vec<QueueRow> = read!(db, pool => {
        sqlx::query_as(LIST).bind(tenant.0).fetch_all(pool).await?
    });
    rows.into_iter().map(QueueRow::into_model).collect()
}

pub async fn find_by_name(db: &Db, tenant: TenantId, name: &str) -> DbResult<Option<Queue>> {
    let row: Option<QueueRow> = read!(db, pool => {
        sqlx::query_as(FIND_BY_NAME).bind(tenant.0).bind(name).fetch_optional(pool).await?
    });
    row.map(QueueRow::into_model).transpose()
}

/// How many queues the tenant has (SPEC §5.7: a tenant without queues skips the queue gate).
pub async fn count(db: &Db, tenant: TenantId) -> DbResult<i64> {
    let count: i64 = read!(db, pool => {
        sqlx::query_scalar(COUNT).bind(tenant.0).fetch_one(pool).await?
    });
    Ok(count)
}

/// Applies the fields that are `Some`. A name already used in the tenant → `Conflict`.
pub async fn update(db: &Db, tenant: TenantId, id: QueueId, patch: &QueuePatch) -> DbResult<Queue> {
    let now = Timestamp::now();
    let row: QueueRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let current: Option<QueueRow> =
            sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(&mut *tx).await?;
        let current = current.ok_or(DbError::NotFound)?;
        let hours = match &patch.business_hours {
            Some(value) => value.as_ref().map(|v| v.to_string()),
            None => current.business_hours,
        };
        let row: QueueRow = sqlx::query_as(UPDATE)
            .bind(tenant.0)
            .bind(id.0)
            .bind(patch.name.as_deref().unwrap_or(&current.name))
            .bind(patch.color.as_deref().unwrap_or(&current.color))
            .bind(patch.greeting.as_deref().unwrap_or(&current.greeting))
            .bind(patch.absence_message.as_deref().unwrap_or(&current.absence_message))
            .bind(hours.as_deref())
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row
    });
    row.into_model()
}

/// Deletes the queue. Its members leave it; tickets, connections and messages that pointed at it
/// keep no queue (the database clears those references).
pub async fn delete(db: &Db, tenant: TenantId, id: QueueId) -> DbResult<()> {
    let affected = write!(db, pool => {
        sqlx::query(DELETE).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected()
    });
    if affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}

/// Replaces the queues of a user. Unknown user → `NotFound`; a queue of another tenant →
/// `UnknownReference { field: "queue_ids" }`. Duplicates in `queue_ids` are ignored.
pub async fn set_user_queues(
    db: &Db,
    tenant: TenantId,
    user_id: UserId,
    queue_ids: &[QueueId],
) -> DbResult<()> {
    let queue_ids = dedup(queue_ids);
    write!(db, pool => {
        let mut tx = pool.begin().await?;
        let user: Option<i64> = sqlx::query_scalar(USER_IN_TENANT)
            .bind(tenant.0)
            .bind(user_id.0)
            .fetch_optional(&mut *tx)
            .await?;
        if user.is_none() {
            return Err(DbError::NotFound);
        }
        for queue in &queue_ids {
            ensure_ref!(&mut *tx, QUEUE_IN_TENANT, tenant, queue.0, "queue_ids");
        }
        sqlx::query("DELETE FROM user_queues WHERE tenant_id = $1 AND user_id = $2")
            .bind(tenant.0)
            .bind(user_id.0)
            .execute(&mut *tx)
            .await?;
        for queue in &queue_ids {
            sqlx::query(INSERT_USER_QUEUE)
                .bind(tenant.0)
                .bind(user_id.0)
                .bind(queue.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

/// The queues a user belongs to, by id.
pub async fn queue_ids_of_user(
    db: &Db,
    tenant: TenantId,
    user_id: UserId,
) -> DbResult<Vec<QueueId>> {
    let ids: Vec<i64> = read!(db, pool => {
        sqlx::query_scalar(
            "SELECT queue_id FROM user_queues WHERE tenant_id = $1 AND user_id = $2 \
             ORDER BY queue_id",
        )
        .bind(tenant.0)
        .bind(user_id.0)
        .fetch_all(pool)
        .await?
    });
    Ok(ids.into_iter().map(QueueId).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_first_occurrence_in_order() {
        assert_eq!(dedup(&[3, 1, 3, 2, 1]), vec![3, 1, 2]);
    }
}
