//! Quick replies typed after `/` in the chat box: global ones and private ones of a user.

use crate::queues::{USER_IN_TENANT, ensure_ref};
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{QuickReply, QuickReplyId, TenantId, Timestamp, UserId};

#[derive(Debug, Clone)]
pub struct NewQuickReply {
    /// Unique per tenant.
    pub shortcut: String,
    pub body: String,
    /// `None` = everyone; otherwise only this user sees it.
    pub user_id: Option<UserId>,
}

#[derive(Debug, Clone, Default)]
pub struct QuickReplyPatch {
    pub shortcut: Option<String>,
    pub body: Option<String>,
    pub user_id: Option<Option<UserId>>,
}

#[derive(sqlx::FromRow)]
struct QuickReplyRow {
    id: i64,
    tenant_id: i64,
    shortcut: String,
    body: String,
    user_id: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl QuickReplyRow {
    fn into_model(self) -> QuickReply {
        QuickReply {
            id: QuickReplyId(self.id),
            tenant_id: TenantId(self.tenant_id),
            shortcut: self.shortcut,
            body: self.body,
            user_id: self.user_id.map(UserId),
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        }
    }
}

const INSERT: &str =
    "INSERT INTO quick_replies (tenant_id, shortcut, body, user_id, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $5)
    RETURNING id, tenant_id, shortcut, body, user_id, created_at, updated_at";
const GET: &str = "SELECT id, tenant_id, shortcut, body, user_id, created_at, updated_at
    FROM quick_replies WHERE tenant_id = $1 AND id = $2";
const LIST_ALL: &str = "SELECT id, tenant_id, shortcut, body, user_id, created_at, updated_at
    FROM quick_replies WHERE tenant_id = $1 ORDER BY shortcut, id";
const LIST_VISIBLE: &str = "SELECT id, tenant_id, shortcut, body, user_id, created_at, updated_at
    FROM quick_replies WHERE tenant_id = $1 AND (user_id IS NULL OR user_id = $2)
    ORDER BY shortcut, id";
const UPDATE: &str =
    "UPDATE quick_replies SET shortcut = $3, body = $4, user_id = $5, updated_at = $6
    WHERE tenant_id = $1 AND id = $2
    RETURNING id, tenant_id, shortcut, body, user_id, created_at, updated_at";
const DELETE: &str = "DELETE FROM quick_replies WHERE tenant_id = $1 AND id = $2";

/// A shortcut already used in the tenant → `Conflict`; a user of another tenant →
/// `UnknownReference { field: "user_id" }`.
pub async fn create(db: &Db, tenant: TenantId, new: &NewQuickReply) -> DbResult<QuickReply> {
    let now = Timestamp::now();
    let row: QuickReplyRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        if let Some(user) = new.user_id {
            ensure_ref!(&mut *tx, USER_IN_TENANT, tenant, user.0, "user_id");
        }
        let row: QuickReplyRow = sqlx::query_as(INSERT)
            .bind(tenant.0)
            .bind(new.shortcut.as_str())
            .bind(new.body.as_str())
            .bind(new.user_id.map(|u| u.0))
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row
    });
    Ok(row.into_model())
}

pub async fn get(db: &Db, tenant: TenantId, id: QuickReplyId) -> DbResult<QuickReply> {
    let row: Option<QuickReplyRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.map(QuickReplyRow::into_model).ok_or(DbError::NotFound)
}

/// `visible_to: Some(user)` → the global replies plus that user's own; `None` → every reply of
/// the tenant (the management page). Ordered by shortcut.
pub async fn list(
    db: &Db,
    tenant: TenantId,
    visible_to: Option<UserId>,
) -> DbResult<Vec<QuickReply>> {
    let rows: Vec<QuickReplyRow> = read!(db, pool => {
        match visible_to {
            Some(user) => {
                sqlx::query_as(LIST_VISIBLE).bind(tenant.0).bind(user.0).fetch_all(pool).await?
            }
            None => sqlx::query_as(LIST_ALL).bind(tenant.0).fetch_all(pool).await?,
        }
    });
    Ok(rows.into_iter().map(QuickReplyRow::into_model).collect())
}

pub async fn update(
    db: &Db,
    tenant: TenantId,
    id: QuickReplyId,
    patch: &QuickReplyPatch,
) -> DbResult<QuickReply> {
    let now = Timestamp::now();
    let row: QuickReplyRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let current: Option<QuickReplyRow> =
            sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(&mut *tx).await?;
        let current = current.ok_or(DbError::NotFound)?;
        let user_id = match patch.user_id {
            Some(user) => user.map(|u| u.0),
            None => current.user_id,
        };
        if let Some(Some(user)) = patch.user_id {
            ensure_ref!(&mut *tx, USER_IN_TENANT, tenant, user.0, "user_id");
        }
        let row: QuickReplyRow = sqlx::query_as(UPDATE)
            .bind(tenant.0)
            .bind(id.0)
            .bind(patch.shortcut.as_deref().unwrap_or(&current.shortcut))
            .bind(patch.body.as_deref().unwrap_or(&current.body))
            .bind(user_id)
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row
    });
    Ok(row.into_model())
}

pub async fn delete(db: &Db, tenant: TenantId, id: QuickReplyId) -> DbResult<()> {
    let affected = write!(db, pool => {
        sqlx::query(DELETE).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected()
    });
    if affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}
