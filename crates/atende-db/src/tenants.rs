//! Tenants: the companies that use this instance (SPEC §1). Every function here crosses tenants.

use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{Tenant, TenantId, Timestamp};

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: i64,
    slug: String,
    name: String,
    suspended: bool,
    created_at: i64,
}

impl From<TenantRow> for Tenant {
    fn from(row: TenantRow) -> Self {
        Tenant {
            id: TenantId(row.id),
            slug: row.slug,
            name: row.name,
            suspended: row.suspended,
            created_at: Timestamp(row.created_at),
        }
    }
}

/// Creates a tenant. A slug already in use → `Conflict` (constraint `tenants_slug_key`).
pub async fn platform_create(db: &Db, slug: &str, name: &str) -> DbResult<Tenant> {
    const SQL: &str = "INSERT INTO tenants (slug, name, suspended, created_at, updated_at) \
                       VALUES ($1, $2, $3, $4, $4) \
                       RETURNING id, slug, name, suspended, created_at";
    let now = Timestamp::now().millis();
    let row: TenantRow = write!(db, pool => {
        sqlx::query_as(SQL).bind(slug).bind(name).bind(false).bind(now).fetch_one(pool).await?
    });
    Ok(row.into())
}

/// Every tenant, oldest first.
pub async fn platform_list(db: &Db) -> DbResult<Vec<Tenant>> {
    const SQL: &str = "SELECT id, slug, name, suspended, created_at FROM tenants ORDER BY id";
    let rows: Vec<TenantRow> = read!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await?);
    Ok(rows.into_iter().map(Tenant::from).collect())
}

pub async fn platform_get(db: &Db, id: TenantId) -> DbResult<Tenant> {
    const SQL: &str = "SELECT id, slug, name, suspended, created_at FROM tenants WHERE id = $1";
    let row: Option<TenantRow> =
        read!(db, pool => sqlx::query_as(SQL).bind(id.0).fetch_optional(pool).await?);
    row.map(Tenant::from).ok_or(DbError::NotFound)
}

pub async fn platform_find_by_slug(db: &Db, slug: &str) -> DbResult<Option<Tenant>> {
    const SQL: &str = "SELECT id, slug, name, suspended, created_at FROM tenants WHERE slug = $1";
    let row: Option<TenantRow> =
        read!(db, pool => sqlx::query_as(SQL).bind(slug).fetch_optional(pool).await?);
    Ok(row.map(Tenant::from))
}

pub async fn platform_set_suspended(db: &Db, id: TenantId, suspended: bool) -> DbResult<Tenant> {
    const SQL: &str = "UPDATE tenants SET suspended = $2, updated_at = $3 WHERE id = $1 \
                       RETURNING id, slug, name, suspended, created_at";
    let now = Timestamp::now().millis();
    let row: Option<TenantRow> = write!(db, pool => {
        sqlx::query_as(SQL).bind(id.0).bind(suspended).bind(now).fetch_optional(pool).await?
    });
    row.map(Tenant::from).ok_or(DbError::NotFound)
}

pub async fn platform_count(db: &Db) -> DbResult<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM tenants";
    let count: i64 = read!(db, pool => sqlx::query_scalar(SQL).fetch_one(pool).await?);
    Ok(count)
}
