//! Channel connections: kind, status, defaults, cadence override and encrypted credentials.

use crate::flows::FLOW_IN_TENANT;
use crate::queues::{QUEUE_IN_TENANT, ensure_ref, parse_enum};
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{
    ChannelKind, Connection, ConnectionId, ConnectionStatus, FlowId, QueueId, TenantId, Timestamp,
};

#[derive(Debug, Clone)]
pub struct NewConnection {
    pub kind: ChannelKind,
    pub name: String,
    pub default_queue_id: Option<QueueId>,
    pub default_flow_id: Option<FlowId>,
    /// Public key of a web-chat connection; unique across the platform.
    pub public_key: Option<String>,
    /// Already encrypted by the caller.
    pub credentials: Option<Vec<u8>>,
    pub send_delay_min_ms: Option<i64>,
    pub send_delay_max_ms: Option<i64>,
    pub cadence_enabled: Option<bool>,
}

/// `Some(None)` clears a nullable field; `credentials: Some(None)` removes the credentials.
#[derive(Debug, Clone, Default)]
pub struct ConnectionPatch {
    pub name: Option<String>,
    pub default_queue_id: Option<Option<QueueId>>,
    pub default_flow_id: Option<Option<FlowId>>,
    pub public_key: Option<Option<String>>,
    pub credentials: Option<Option<Vec<u8>>>,
    pub send_delay_min_ms: Option<Option<i64>>,
    pub send_delay_max_ms: Option<Option<i64>>,
    pub cadence_enabled: Option<Option<bool>>,
}

pub(crate) const CONNECTION_IN_TENANT: &str =
    "SELECT id FROM connections WHERE tenant_id = $1 AND id = $2";

#[derive(sqlx::FromRow)]
struct ConnectionRow {
    id: i64,
    tenant_id: i64,
    kind: String,
    name: String,
    status: String,
    default_queue_id: Option<i64>,
    default_flow_id: Option<i64>,
    public_key: Option<String>,
    has_credentials: bool,
    send_delay_min_ms: Option<i64>,
    send_delay_max_ms: Option<i64>,
    cadence_enabled: Option<bool>,
    created_at: i64,
    updated_at: i64,
}

impl ConnectionRow {
    fn into_model(self) -> DbResult<Connection> {
        Ok(Connection {
            id: ConnectionId(self.id),
            tenant_id: TenantId(self.tenant_id),
            kind: parse_enum(&self.kind, ChannelKind::parse, "connections.kind")?,
            name: self.name,
            status: parse_enum(&self.status, ConnectionStatus::parse, "connections.status")?,
            default_queue_id: self.default_queue_id.map(QueueId),
            default_flow_id: self.default_flow_id.map(FlowId),
            public_key: self.public_key,
            has_credentials: self.has_credentials,
            send_delay_min_ms: self.send_delay_min_ms,
            send_delay_max_ms: self.send_delay_max_ms,
            cadence_enabled: self.cadence_enabled,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

const INSERT: &str = "INSERT INTO connections (tenant_id, kind, name, status, default_queue_id,
        default_flow_id, public_key, credentials, send_delay_min_ms, send_delay_max_ms,
        cadence_enabled, created_at, updated_at)
    VALUES ($1, $2, $3, $12, $4, $5, $6, $7, $8, $9, $10, $11, $11)
    RETURNING id, tenant_id, kind, name, status, default_queue_id, default_flow_id, public_key,
        credentials IS NOT NULL AS has_credentials, send_delay_min_ms, send_delay_max_ms,
        cadence_enabled, created_at, updated_at";
const GET: &str = "SELECT id, tenant_id, kind, name, status, default_queue_id, default_flow_id,
        public_key, credentials IS NOT NULL AS has_credentials, send_delay_min_ms,
        send_delay_max_ms, cadence_enabled, created_at, updated_at
    FROM connections WHERE tenant_id = $1 AND id = $2";
const LIST: &str = "SELECT id, tenant_id, kind, name, status, default_queue_id, default_flow_id,
        public_key, credentials IS NOT NULL AS has_credentials, send_delay_min_ms,
        send_delay_max_ms, cadence_enabled, created_at, updated_at
    FROM connections WHERE tenant_id = $1 ORDER BY name, id";
const FIND_BY_PUBLIC_KEY: &str = "SELECT id, tenant_id, kind, name, status, default_queue_id,
        default_flow_id, public_key, credentials IS NOT NULL AS has_credentials, send_delay_min_ms,
        send_delay_max_ms, cadence_enabled, created_at, updated_at
    FROM connections WHERE public_key = $1";
// $9 says whether the credentials change ($10 is then the new value, possibly NULL).
const UPDATE: &str =
    "UPDATE connections SET name = $3, default_queue_id = $4, default_flow_id = $5,
        public_key = $6, send_delay_min_ms = $7, send_delay_max_ms = $8,
        credentials = CASE WHEN $9 THEN $10 ELSE credentials END,
        cadence_enabled = $11, updated_at = $12
    WHERE tenant_id = $1 AND id = $2
    RETURNING id, tenant_id, kind, name, status, default_queue_id, default_flow_id, public_key,
        credentials IS NOT NULL AS has_credentials, send_delay_min_ms, send_delay_max_ms,
        cadence_enabled, created_at, updated_at";
const SET_STATUS: &str = "UPDATE connections SET status = $3, updated_at = $4
    WHERE tenant_id = $1 AND id = $2
    RETURNING id, tenant_id, kind, name, status, default_queue_id, default_flow_id, public_key,
        credentials IS NOT NULL AS has_credentials, send_delay_min_ms, send_delay_max_ms,
        cadence_enabled, created_at, updated_at";
const CHANGE_STATUS: &str = "UPDATE connections SET status = $3, updated_at = $4
    WHERE tenant_id = $1 AND id = $2 AND status <> $3
    RETURNING id, tenant_id, kind, name, status, default_queue_id, default_flow_id, public_key,
        credentials IS NOT NULL AS has_credentials, send_delay_min_ms, send_delay_max_ms,
        cadence_enabled, created_at, updated_at";
const CREDENTIALS: &str = "SELECT credentials FROM connections WHERE tenant_id = $1 AND id = $2";
const HAS_TICKETS: &str =
    "SELECT id FROM tickets WHERE tenant_id = $1 AND connection_id = $2 LIMIT 1";
const DELETE: &str = "DELETE FROM connections WHERE tenant_id = $1 AND id = $2";

/// Creates a connection (status [`ConnectionStatus::initial`] of its kind). A queue or flow of another tenant →
/// `UnknownReference { field: "default_queue_id" | "default_flow_id" }`; a public key already
/// used → `Conflict`.
pub async fn create(db: &Db, tenant: TenantId, new: &NewConnection) -> DbResult<Connection> {
    let now = Timestamp::now();
    let row: ConnectionRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        if let Some(queue) = new.default_queue_id {
            ensure_ref!(&mut *tx, QUEUE_IN_TENANT, tenant, queue.0, "default_queue_id");
        }
        if let Some(flow) = new.default_flow_id {
            ensure_ref!(&mut *tx, FLOW_IN_TENANT, tenant, flow.0, "default_flow_id");
        }
        let row: ConnectionRow = sqlx::query_as(INSERT)
            .bind(tenant.0)
            .bind(new.kind.as_str())
            .bind(new.name.as_str())
            .bind(new.default_queue_id.map(|q| q.0))
            .bind(new.default_flow_id.map(|f| f.0))
            .bind(new.public_key.as_deref())
            .bind(new.credentials.as_deref())
            .bind(new.send_delay_min_ms)
            .bind(new.send_delay_max_ms)
            .bind(new.cadence_enabled)
            .bind(now.0)
            .bind(ConnectionStatus::initial(new.kind).as_str())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row
    });
    row.into_model()
}

pub async fn get(db: &Db, tenant: TenantId, id: ConnectionId) -> DbResult<Connection> {
    let row: Option<ConnectionRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.ok_or(DbError::NotFound)?.into_model()
}

const PLATFORM_GET: &str = "SELECT id, tenant_id, kind, name, status, default_queue_id,
        default_flow_id, public_key, credentials IS NOT NULL AS has_credentials, send_delay_min_ms,
        send_delay_max_ms, cadence_enabled, created_at, updated_at
    FROM connections WHERE id = $1";

/// The connection with this id in any tenant: a provider's webhook URL names the connection only.
pub async fn platform_get(db: &Db, id: ConnectionId) -> DbResult<Connection> {
    let row: Option<ConnectionRow> = read!(db, pool => {
        sqlx::query_as(PLATFORM_GET).bind(id.0).fetch_optional(pool).await?
    });
    row.ok_or(DbError::NotFound)?.into_model()
}

/// All connections of the tenant, by name.
pub async fn list(db: &Db, tenant: TenantId) -> DbResult<Vec<Connection>> {
    let rows: Vec<ConnectionRow> = read!(db, pool => {
        sqlx::query_as(LIST).bind(tenant.0).fetch_all(pool).await?
    });
    rows.into_iter().map(ConnectionRow::into_model).collect()
}

/// The connection whose public (widget) key this is, in any tenant: the widget URL names no tenant.
pub async fn platform_find_by_public_key(
    db: &Db,
    public_key: &str,
) -> DbResult<Option<Connection>> {
    let row: Option<ConnectionRow> = read!(db, pool => {
        sqlx::query_as(FIND_BY_PUBLIC_KEY).bind(public_key).fetch_optional(pool).await?
    });
    row.map(ConnectionRow::into_model).transpose()
}

/// The stored (encrypted) credentials, `None` when there are none.
pub async fn credentials(db: &Db, tenant: TenantId, id: ConnectionId) -> DbResult<Option<Vec<u8>>> {
    let row: Option<(Option<Vec<u8>>,)> = read!(db, pool => {
        sqlx::query_as(CREDENTIALS).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.map(|(credentials,)| credentials)
        .ok_or(DbError::NotFound)
}

pub async fn update(
    db: &Db,
    tenant: TenantId,
    id: ConnectionId,
    patch: &ConnectionPatch,
) -> DbResult<Connection> {
    let now = Timestamp::now();
    let row: ConnectionRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let current: Option<ConnectionRow> =
            sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(&mut *tx).await?;
        let current = current.ok_or(DbError::NotFound)?;
        if let Some(Some(queue)) = patch.default_queue_id {
            ensure_ref!(&mut *tx, QUEUE_IN_TENANT, tenant, queue.0, "default_queue_id");
        }
        if let Some(Some(flow)) = patch.default_flow_id {
            ensure_ref!(&mut *tx, FLOW_IN_TENANT, tenant, flow.0, "default_flow_id");
        }
        let default_queue_id = match patch.default_queue_id {
            Some(queue) => queue.map(|q| q.0),
            None => current.default_queue_id,
        };
        let default_flow_id = match patch.default_flow_id {
            Some(flow) => flow.map(|f| f.0),
            None => current.default_flow_id,
        };
        let public_key = match &patch.public_key {
            Some(key) => key.as_deref(),
            None => current.public_key.as_deref(),
        };
        let credentials: Option<&[u8]> = patch.credentials.as_ref().and_then(|c| c.as_deref());
        let row: ConnectionRow = sqlx::query_as(UPDATE)
            .bind(tenant.0)
            .bind(id.0)
            .bind(patch.name.as_deref().unwrap_or(&current.name))
            .bind(default_queue_id)
            .bind(default_flow_id)
            .bind(public_key)
            .bind(patch.send_delay_min_ms.unwrap_or(current.send_delay_min_ms))
            .bind(patch.send_delay_max_ms.unwrap_or(current.send_delay_max_ms))
            .bind(patch.credentials.is_some())
            .bind(credentials)
            .bind(patch.cadence_enabled.unwrap_or(current.cadence_enabled))
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row
    });
    row.into_model()
}

pub async fn set_status(
    db: &Db,
    tenant: TenantId,
    id: ConnectionId,
    status: ConnectionStatus,
) -> DbResult<Connection> {
    let now = Timestamp::now();
    let row: Option<ConnectionRow> = write!(db, pool => {
        sqlx::query_as(SET_STATUS)
            .bind(tenant.0)
            .bind(id.0)
            .bind(status.as_str())
            .bind(now.0)
            .fetch_optional(pool)
            .await?
    });
    row.ok_or(DbError::NotFound)?.into_model()
}

/// Moves the connection to `status` if it is not there already: `Some` with the changed
/// connection, `None` when nothing changed (or the connection is gone), so callers announce only
/// real changes.
pub async fn change_status(
    db: &Db,
    tenant: TenantId,
    id: ConnectionId,
    status: ConnectionStatus,
) -> DbResult<Option<Connection>> {
    let now = Timestamp::now();
    let row: Option<ConnectionRow> = write!(db, pool => {
        sqlx::query_as(CHANGE_STATUS)
            .bind(tenant.0)
            .bind(id.0)
            .bind(status.as_str())
            .bind(now.0)
            .fetch_optional(pool)
            .await?
    });
    row.map(ConnectionRow::into_model).transpose()
}

/// Deletes the connection with its templates and inbound log. A connection that has tickets is
/// kept (its conversations would go with it): `Conflict { constraint: "tickets_connection_id" }`.
pub async fn delete(db: &Db, tenant: TenantId, id: ConnectionId) -> DbResult<()> {
    write!(db, pool => {
        let mut tx = pool.begin().await?;
        let found: Option<i64> = sqlx::query_scalar(CONNECTION_IN_TENANT)
            .bind(tenant.0)
            .bind(id.0)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(DbError::NotFound);
        }
        let ticket: Option<i64> =
            sqlx::query_scalar(HAS_TICKETS)
                .bind(tenant.0)
                .bind(id.0)
                .fetch_optional(&mut *tx)
                .await?;
        if ticket.is_some() {
            return Err(DbError::Conflict { constraint: "tickets_connection_id".to_owned() });
        }
        sqlx::query(DELETE).bind(tenant.0).bind(id.0).execute(&mut *tx).await?;
        tx.commit().await?;
    });
    Ok(())
}
