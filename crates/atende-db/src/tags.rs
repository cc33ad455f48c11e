//! Tags put on contacts; the name is unique per tenant.

use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{Tag, TagId, TenantId, Timestamp};

#[derive(Debug, Clone)]
pub struct NewTag {
    pub name: String,
    pub color: String,
}

#[derive(Debug, Clone, Default)]
pub struct TagPatch {
    pub name: Option<String>,
    pub color: Option<String>,
}

pub(crate) const TAG_IN_TENANT: &str = "SELECT id FROM tags WHERE tenant_id = $1 AND id = $2";

#[derive(sqlx::FromRow)]
struct TagRow {
    id: i64,
    tenant_id: i64,
    name: String,
    color: String,
    created_at: i64,
}

impl TagRow {
    fn into_model(self) -> Tag {
        Tag {
            id: TagId(self.id),
            tenant_id: TenantId(self.tenant_id),
            name: self.name,
            color: self.color,
            created_at: Timestamp(self.created_at),
        }
    }
}

const INSERT: &str = "INSERT INTO tags (tenant_id, name, color, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $4) RETURNING id, tenant_id, name, color, created_at";
const GET: &str =
    "SELECT id, tenant_id, name, color, created_at FROM tags WHERE tenant_id = $1 AND id = $2";
const LIST: &str = "SELECT id, tenant_id, name, color, created_at FROM tags
    WHERE tenant_id = $1 ORDER BY name, id";
const UPDATE: &str =
    "UPDATE tags SET name = COALESCE($3, name), color = COALESCE($4, color), updated_at = $5
    WHERE tenant_id = $1 AND id = $2 RETURNING id, tenant_id, name, color, created_at";
const DELETE: &str = "DELETE FROM tags WHERE tenant_id = $1 AND id = $2";

/// A name already used in the tenant → `Conflict`.
pub async fn create(db: &Db, tenant: TenantId, new: &NewTag) -> DbResult<Tag> {
    let now = Timestamp::now();
    let row: TagRow = write!(db, pool => {
        sqlx::query_as(INSERT)
            .bind(tenant.0)
            .bind(new.name.as_str())
            .bind(new.color.as_str())
            .bind(now.0)
            .fetch_one(pool)
            .await?
    });
    Ok(row.into_model())
}

pub async fn get(db: &Db, tenant: TenantId, id: TagId) -> DbResult<Tag> {
    let row: Option<TagRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.map(TagRow::into_model).ok_or(DbError::NotFound)
}

/// All tags of the tenant, by name.
pub async fn list(db: &Db, tenant: TenantId) -> DbResult<Vec<Tag>> {
    let rows: Vec<TagRow> = read!(db, pool => {
        sqlx::query_as(LIST).bind(tenant.0).fetch_all(pool).await?
    });
    Ok(rows.into_iter().map(TagRow::into_model).collect())
}

pub async fn update(db: &Db, tenant: TenantId, id: TagId, patch: &TagPatch) -> DbResult<Tag> {
    let now = Timestamp::now();
    let row: Option<TagRow> = write!(db, pool => {
        sqlx::query_as(UPDATE)
            .bind(tenant.0)
            .bind(id.0)
            .bind(patch.name.as_deref())
            .bind(patch.color.as_deref())
            .bind(now.0)
            .fetch_optional(pool)
            .await?
    });
    row.map(TagRow::into_model).ok_or(DbError::NotFound)
}

/// Deletes the tag and takes it off every contact.
pub async fn delete(db: &Db, tenant: TenantId, id: TagId) -> DbResult<()> {
    let affected = write!(db, pool => {
        sqlx::query(DELETE).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected()
    });
    if affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}
