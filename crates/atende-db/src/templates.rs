//! WhatsApp Business message templates, synced from the provider per connection.

use crate::connections::CONNECTION_IN_TENANT;
use crate::queues::{ensure_ref, parse_json};
use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{ConnectionId, Template, TemplateId, TenantId, Timestamp};

/// One template as the provider reports it; (connection, name, language) identifies it.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub connection_id: ConnectionId,
    pub name: String,
    pub language: String,
    pub category: String,
    pub status: String,
    pub components: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct TemplateRow {
    id: i64,
    tenant_id: i64,
    connection_id: i64,
    name: String,
    language: String,
    category: String,
    status: String,
    components: String,
    updated_at: i64,
}

impl TemplateRow {
    fn into_model(self) -> DbResult<Template> {
        Ok(Template {
            id: TemplateId(self.id),
            tenant_id: TenantId(self.tenant_id),
            connection_id: ConnectionId(self.connection_id),
            name: self.name,
            language: self.language,
            category: self.category,
            status: self.status,
            components: parse_json(&self.components)?,
            updated_at: Timestamp(self.updated_at),
        })
    }
}

const UPSERT: &str = "INSERT INTO templates (tenant_id, connection_id, name, language, category,
        status, components, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
    ON CONFLICT (tenant_id, connection_id, name, language) DO UPDATE SET
        category = excluded.category, status = excluded.status,
        components = excluded.components, updated_at = excluded.updated_at
    RETURNING id, tenant_id, connection_id, name, language, category, status, components,
        updated_at";
const GET: &str =
    "SELECT id, tenant_id, connection_id, name, language, category, status, components,
        updated_at
    FROM templates WHERE tenant_id = $1 AND id = $2";
const LIST: &str =
    "SELECT id, tenant_id, connection_id, name, language, category, status, components,
        updated_at
    FROM templates WHERE tenant_id = $1 AND connection_id = $2 ORDER BY name, language, id";
const DELETE: &str = "DELETE FROM templates WHERE tenant_id = $1 AND id = $2";

/// Inserts the template or updates the one with the same (connection, name, language).
/// A connection of another tenant → `UnknownReference { field: "connection_id" }`.
pub async fn upsert(db: &Db, tenant: TenantId, new: &NewTemplate) -> DbResult<Template> {
    let now = Timestamp::now();
    let components = new.components.to_string();
    let row: TemplateRow = write!(db, pool => {
        let mut tx = pool.begin().await?;
        ensure_ref!(&mut *tx, CONNECTION_IN_TENANT, tenant, new.connection_id.0, "connection_id");
        let row: TemplateRow = sqlx::query_as(UPSERT)
            .bind(tenant.0)
            .bind(new.connection_id.0)
            .bind(new.name.as_str())
            .bind(new.language.as_str())
            .bind(new.category.as_str())
            .bind(new.status.as_str())
            .bind(components.as_str())
            .bind(now.0)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row
    });
    row.into_model()
}

pub async fn get(db: &Db, tenant: TenantId, id: TemplateId) -> DbResult<Template> {
    let row: Option<TemplateRow> = read!(db, pool => {
        sqlx::query_as(GET).bind(tenant.0).bind(id.0).fetch_optional(pool).await?
    });
    row.ok_or(DbError::NotFound)?.into_model()
}

/// The templates of one connection, by name and language (none for another tenant's connection).
pub async fn list(
    db: &Db,
    tenant: TenantId,
    connection_id: ConnectionId,
) -> DbResult<Vec<Template>> {
    let rows: Vec<TemplateRow> = read!(db, pool => {
        sqlx::query_as(LIST).bind(tenant.0).bind(connection_id.0).fetch_all(pool).await?
    });
    rows.into_iter().map(TemplateRow::into_model).collect()
}

/// Removes a template the provider no longer has.
pub async fn delete(db: &Db, tenant: TenantId, id: TemplateId) -> DbResult<()> {
    let affected = write!(db, pool => {
        sqlx::query(DELETE).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected()
    });
    if affected == 0 {
        Err(DbError::NotFound)
    } else {
        Ok(())
    }
}
