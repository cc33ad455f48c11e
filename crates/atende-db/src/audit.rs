//! Audit log: who did what, when and from which IP (tenant actions, and platform actions with no
//! tenant). Append-only.

use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{AuditEntry, AuditId, TenantId, Timestamp, UserId};

macro_rules! audit_columns {
    () => {
        "id, tenant_id, user_id, action, entity, entity_id, detail, ip, created_at"
    };
}

/// One entry to record. `user_id` is kept as given (no foreign key: the log outlives users, and a
/// superadmin may act on a tenant).
#[derive(Debug, Clone, Default)]
pub struct NewAudit {
    pub user_id: Option<UserId>,
    /// What was done, e.g. `settings.update`.
    pub action: String,
    /// The kind of thing it was done to, e.g. `setting`.
    pub entity: String,
    pub entity_id: Option<String>,
    pub detail: serde_json::Value,
    pub ip: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    tenant_id: Option<i64>,
    user_id: Option<i64>,
    action: String,
    entity: String,
    entity_id: Option<String>,
    detail: String,
    ip: Option<String>,
    created_at: i64,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = DbError;

    fn try_from(row: AuditRow) -> DbResult<AuditEntry> {
        let detail = serde_json::from_str(&row.detail)
            .map_err(|e| DbError::Corrupt(format!("audit entry {}: {e}", row.id)))?;
        Ok(AuditEntry {
            id: AuditId(row.id),
            tenant_id: row.tenant_id.map(TenantId),
            user_id: row.user_id.map(UserId),
            action: row.action,
            entity: row.entity,
            entity_id: row.entity_id,
            detail,
            ip: row.ip,
            created_at: Timestamp(row.created_at),
        })
    }
}

/// Records an entry (`tenant` `None` = a platform action).
pub async fn record(db: &Db, tenant: Option<TenantId>, new: &NewAudit) -> DbResult<AuditEntry> {
    write!(db, pool => record_with(pool, tenant, new).await)
}

/// Records an entry through any executor of either backend, e.g. `&mut *tx` inside another
/// repository's transaction, so the change and its audit entry commit together.
pub async fn record_with<'e, E, DB>(
    executor: E,
    tenant: Option<TenantId>,
    new: &NewAudit,
) -> DbResult<AuditEntry>
where
    E: sqlx::Executor<'e, Database = DB>,
    DB: sqlx::Database,
    DB::Arguments: sqlx::IntoArguments<DB>,
    i64: sqlx::Type<DB> + for<'a> sqlx::Encode<'a, DB>,
    Option<i64>: sqlx::Type<DB> + for<'a> sqlx::Encode<'a, DB>,
    for<'a> &'a str: sqlx::Type<DB> + sqlx::Encode<'a, DB>,
    for<'a> Option<&'a str>: sqlx::Type<DB> + sqlx::Encode<'a, DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    const SQL: &str = "INSERT INTO audit_log (tenant_id, user_id, action, entity, entity_id, \
                       detail, ip, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id";
    let detail = serde_json::to_string(&new.detail)?;
    let now = Timestamp::now();
    let id: i64 = sqlx::query_scalar(SQL)
        .bind(tenant.map(|t| t.0))
        .bind(new.user_id.map(|u| u.0))
        .bind(new.action.as_str())
        .bind(new.entity.as_str())
        .bind(new.entity_id.as_deref())
        .bind(detail.as_str())
        .bind(new.ip.as_deref())
        .bind(now.millis())
        .fetch_one(executor)
        .await
        .map_err(|e| match DbError::from(e) {
            DbError::ForeignKey(_) => DbError::UnknownReference {
                field: "tenant_id",
                id: tenant.map_or(0, |t| t.0),
            },
            other => other,
        })?;
    Ok(AuditEntry {
        id: AuditId(id),
        tenant_id: tenant,
        user_id: new.user_id,
        action: new.action.clone(),
        entity: new.entity.clone(),
        entity_id: new.entity_id.clone(),
        detail: new.detail.clone(),
        ip: new.ip.clone(),
        created_at: now,
    })
}

/// The entries of `tenant`, newest first, at most `limit`; `before` continues after that entry.
pub async fn list(
    db: &Db,
    tenant: TenantId,
    limit: i64,
    before: Option<AuditId>,
) -> DbResult<Vec<AuditEntry>> {
    const FIRST: &str = concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_log WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    const AFTER: &str = concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_log WHERE tenant_id = $1 AND (created_at, id) < \
         (SELECT created_at, id FROM audit_log WHERE tenant_id = $1 AND id = $3) \
         ORDER BY created_at DESC, id DESC LIMIT $2"
    );
    let rows: Vec<AuditRow> = read!(db, pool => match before {
        None => sqlx::query_as(FIRST).bind(tenant.0).bind(limit).fetch_all(pool).await?,
        Some(before) => {
            sqlx::query_as(AFTER).bind(tenant.0).bind(limit).bind(before.0).fetch_all(pool).await?
        }
    });
    rows.into_iter().map(AuditEntry::try_from).collect()
}

/// The platform entries (no tenant), newest first, at most `limit`; `before` continues after it.
pub async fn platform_list(
    db: &Db,
    limit: i64,
    before: Option<AuditId>,
) -> DbResult<Vec<AuditEntry>> {
    const FIRST: &str = concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_log WHERE tenant_id IS NULL ORDER BY created_at DESC, id DESC LIMIT $1"
    );
    const AFTER: &str = concat!(
        "SELECT ",
        audit_columns!(),
        " FROM audit_log WHERE tenant_id IS NULL AND (created_at, id) < \
         (SELECT created_at, id FROM audit_log WHERE tenant_id IS NULL AND id = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $1"
    );
    let rows: Vec<AuditRow> = read!(db, pool => match before {
        None => sqlx::query_as(FIRST).bind(limit).fetch_all(pool).await?,
        Some(before) => sqlx::query_as(AFTER).bind(limit).bind(before.0).fetch_all(pool).await?,
    });
    rows.into_iter().map(AuditEntry::try_from).collect()
}
