//! Demands: the closing reasons chosen when a ticket is closed; the name is unique per tenant.

use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{Demand, DemandId, TenantId, Timestamp};

#[derive(Debug, Clone)]
pub struct NewDemand {
    pub name: String,
    pub active: bool,
}

#[derive(Debug, Clone, Default)]
pub struct DemandPatch {
    pub name: Option<String>,
    pub active: Option<bool>,
}

#[derive(sqlx::FromRow)]
struct DemandRow {
    id: i64,
    tenant_id: i64,
    name: String,
    active: bool,
    created_at: i64,
}

impl DemandRow {
    fn into_model(self) -> Demand {
        Demand {
            id: DemandId(self.id),
            tenant_id: TenantId(self.tenant_id),
            name: self.name,
            active: self.active,
            created_at: Timestamp(self.created_at),
        }
    }
}

const INSERT: &str = "INSERT INTO demands (tenant_id, name, active, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $4) RETURNING id, tenant_id, name, active, created_at";
const GET: &str =
    "SELECT id, tenant_id, name, active, created_at FROM demands WHERE tenant_id = $1 AND id = $2";
const LIST: &str = "SELECT id, tenant_id, name, active, created_at FROM demands
    WHERE tenant_id = $1 ORDER BY name, id";
const UPDATE: &str =
    "UPDATE demands SET name = COALESCE($3, name), active = COALESCE($4, active), updated_at = $5
    WHERE tenant_id = $1 AND id = $2 RETURNING id, tenant_id, name, active, created_at";
const DELETE: &str = "DELETE FROM demands WHERE tenant_id = $1 AND id = $2";

/// A name already used in the tenant → `Conflict`.
pub async fn create(db: &Db, tenant: TenantId, new: &NewDemand) -> DbResult<Demand> {
    let now = Timestamp::now();
    let row: DemandRow = write!(db, pool => {
        sqlx::query_as(INSERT)
            .bind(tenant.0)
            .bind(new.name.as_str())
            .bind(new.active)
            .bind(now.0)
            .fetch_one(pool)
            .await?
    });
    Ok(row.into_model())
}

pub async fn get(db: &Db, tenant: TenantId, id: DemandId) -> DbResult<Demand> {
    let row: Option<DemandRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.map(DemandRow::into_model).ok_or(DbError::NotFound)
}

/// All demands of the tenant (active and inactive), by name.
pub async fn list(db: &Db, tenant: TenantId) -> DbResult<Vec<Demand>> {
    let rows: Vec<DemandRow> = read!(db, pool => {
        sqlx::query_as(LIST).bind(tenant.0).fetch_all(pool).await?
    });
    Ok(rows.into_iter().map(DemandRow::into_model).collect())
}

pub async fn update(
    db: &Db,
    tenant: TenantId,
    id: DemandId,
    patch: &DemandPatch,
) -> DbResult<Demand> {
    let now = Timestamp::now();
    let row: Option<DemandRow> = write!(db, pool => {
        sqlx::query_as(UPDATE)
            .bind(tenant.0)
            .bind(id.0)
            .bind(patch.name.as_deref())
            .bind(patch.active)
            .bind(now.0)
            .fetch_optional(pool)
            .await?
    });
    row.map(DemandRow::into_model).ok_or(DbError::NotFound)
}

/// Deletes the demand; ticket cycles closed with it keep no demand. Prefer deactivating it.
pub async fn delete(db: &Db, tenant: TenantId, id: DemandId) -> DbResult<()> {
    let affected = write!(db, pool => {
        sqlx::query(DELETE).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected()
    });
    if affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}
