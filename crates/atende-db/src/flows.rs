//! Chatbot flows: a versioned graph; every version is kept so a running session keeps its own.

use crate::queues::parse_json;
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{Flow, FlowId, TenantId, Timestamp};

#[derive(Debug, Clone)]
pub struct NewFlow {
    pub name: String,
    pub active: bool,
    pub graph: serde_json::Value,
}

/// `graph: Some(_)` stores a new version (even when equal to the current graph).
#[derive(Debug, Clone, Default)]
pub struct FlowPatch {
    pub name: Option<String>,
    pub active: Option<bool>,
    pub graph: Option<serde_json::Value>,
}

pub(crate) const FLOW_IN_TENANT: &str = "SELECT id FROM flows WHERE tenant_id = $1 AND id = $2";

#[derive(sqlx::FromRow)]
struct FlowRow {
    id: i64,
    tenant_id: i64,
    name: String,
    version: i64,
    active: bool,
    graph: String,
    created_at: i64,
    updated_at: i64,
}

impl FlowRow {
    fn into_model(self) -> DbResult<Flow> {
        Ok(Flow {
            id: FlowId(self.id),
            tenant_id: TenantId(self.tenant_id),
            name: self.name,
            version: self.version,
            active: self.active,
            graph: parse_json(&self.graph)?,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

const INSERT: &str =
    "INSERT INTO flows (tenant_id, name, version, active, graph, created_at, updated_at)
    VALUES ($1, $2, 1, $3, $4, $5, $5)
    RETURNING id, tenant_id, name, version, active, graph, created_at, updated_at";
const INSERT_VERSION: &str =
    "INSERT INTO flow_versions (tenant_id, flow_id, version, graph, created_at)
    VALUES ($1, $2, $3, $4, $5)";
const GET: &str = "SELECT id, tenant_id, name, version, active, graph, created_at, updated_at
    FROM flows WHERE tenant_id = $1 AND id = $2";
const LIST: &str = "SELECT id, tenant_id, name, version, active, graph, created_at, updated_at
    FROM flows WHERE tenant_id = $1 ORDER BY name, id";
const UPDATE: &str =
    "UPDATE flows SET name = $3, version = $4, active = $5, graph = $6, updated_at = $7
    WHERE tenant_id = $1 AND id = $2
    RETURNING id, tenant_id, name, version, active, graph, created_at, updated_at";
const DELETE: &str = "DELETE FROM flows WHERE tenant_id = $1 AND id = $2";
const GET_VERSION: &str =
    "SELECT graph FROM flow_versions WHERE tenant_id = $1 AND flow_id = $2 AND version = $3";

/// Creates the flow at version 1 (and records that version).
pub async fn create(db: &Db, tenant: TenantId, new: &NewFlow) -> DbResult<Flow> {
    let now = Timestamp::now();
    let graph = new.graph.to_string();
    let row: FlowRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let row: FlowRow = sqlx::query_as(INSERT)
            .bind(tenant.0)
            .bind(new.name.as_str())
            .bind(new.active)
            .bind(graph.as_str())
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(INSERT_VERSION)
            .bind(tenant.0)
            .bind(row.id)
            .bind(row.version)
            .bind(graph.as_str())
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        row
    });
    row.into_model()
}

pub async fn get(db: &Db, tenant: TenantId, id: FlowId) -> DbResult<Flow> {
    let row: Option<FlowRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.ok_or(DbError::NotFound)?.into_model()
}

/// Whether the flow exists in this tenant (e.g. to validate `active_bot_flow`).
pub async fn exists(db: &Db, tenant: TenantId, id: FlowId) -> DbResult<bool> {
    let found: Option<i64> = read!(db, pool => {
        sqlx::query_scalar(FLOW_IN_TENANT).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    Ok(found.is_some())
}

/// All flows of the tenant, by name.
pub async fn list(db: &Db, tenant: TenantId) -> DbResult<Vec<Flow>> {
    let rows: Vec<FlowRow> = read!(db, pool => {
        sqlx::query_as(LIST).bind(tenant.0).fetch_all(pool).await?
    });
    rows.into_iter().map(FlowRow::into_model).collect()
}

/// Applies the patch; a new graph bumps `version` and is kept in the version history.
pub async fn update(db: &Db, tenant: TenantId, id: FlowId, patch: &FlowPatch) -> DbResult<Flow> {
    let now = Timestamp::now();
    let new_graph = patch.graph.as_ref().map(|g| g.to_string());
    let row: FlowRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let current: Option<FlowRow> =
            sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(&mut *tx).await?;
        let current = current.ok_or(DbError::NotFound)?;
        let version = if new_graph.is_some() { current.version + 1 } else { current.version };
        let graph = new_graph.as_deref().unwrap_or(&current.graph);
        let row: FlowRow = sqlx::query_as(UPDATE)
            .bind(tenant.0)
            .bind(id.0)
            .bind(patch.name.as_deref().unwrap_or(&current.name))
            .bind(version)
            .bind(patch.active.unwrap_or(current.active))
            .bind(graph)
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        if new_graph.is_some() {
            sqlx::query(INSERT_VERSION)
                .bind(tenant.0)
                .bind(id.0)
                .bind(version)
                .bind(graph)
                .bind(now.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        row
    });
    row.into_model()
}

/// The graph of one version of the flow (`NotFound` if the flow or that version does not exist).
pub async fn get_version(
    db: &Db,
    tenant: TenantId,
    id: FlowId,
    version: i64,
) -> DbResult<serde_json::Value> {
    let graph: Option<String> = read!(db, pool => {
        sqlx::query_scalar(GET_VERSION)
            .bind(tenant.0)
            .bind(id.0)
            .bind(version)
            .fetch_optional(pool)
            .await?
    });
    parse_json(&graph.ok_or(DbError::NotFound)?)
}

/// Deletes the flow and its versions; connections and tickets that used it keep no flow.
pub async fn delete(db: &Db, tenant: TenantId, id: FlowId) -> DbResult<()> {
    let affected = write!(db, pool => {
        sqlx::query(DELETE).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected()
    });
    if affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}
