//! Settings: per-tenant overrides of the settings registry (SPEC §10), one JSON value per key.
//!
//! Keys and values are validated by the registry in atende-domain; this module stores what it
//! accepted. A key without a row means "the registry default".

use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{TenantId, Timestamp, UserId};

fn parse(key: &str, text: &str) -> DbResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| DbError::Corrupt(format!("setting '{key}': {e}")))
}

/// Every override of `tenant`, by key.
pub async fn list(db: &Db, tenant: TenantId) -> DbResult<Vec<(String, serde_json::Value)>> {
    const SQL: &str = "SELECT key, value FROM settings WHERE tenant_id = $1 ORDER BY key";
    let rows: Vec<(String, String)> =
        read!(db, pool => sqlx::query_as(SQL).bind(tenant.0).fetch_all(pool).await?);
    rows.into_iter()
        .map(|(key, text)| {
            let value = parse(&key, &text)?;
            Ok((key, value))
        })
        .collect()
}

/// The override of `key`, or `None` when the tenant keeps the default.
pub async fn get(db: &Db, tenant: TenantId, key: &str) -> DbResult<Option<serde_json::Value>> {
    const SQL: &str = "SELECT value FROM settings WHERE tenant_id = $1 AND key = $2";
    let text: Option<String> = read!(db, pool => {
        sqlx::query_scalar(SQL).bind(tenant.0).bind(key).fetch_optional(pool).await?
    });
    text.map(|text| parse(key, &text)).transpose()
}

/// Stores (or replaces) the override of `key`. `updated_by` must be a user of `tenant`
/// (otherwise `UnknownReference { field: "updated_by" }`).
pub async fn put(
    db: &Db,
    tenant: TenantId,
    key: &str,
    value: &serde_json::Value,
    updated_by: Option<UserId>,
) -> DbResult<()> {
    const USER: &str = "SELECT id FROM users WHERE tenant_id = $1 AND id = $2";
    const SQL: &str = "INSERT INTO settings (tenant_id, key, value, updated_at, updated_by) \
                       VALUES ($1, $2, $3, $4, $5) \
                       ON CONFLICT (tenant_id, key) DO UPDATE \
                       SET value = excluded.value, updated_at = excluded.updated_at, \
                           updated_by = excluded.updated_by";
    let text = serde_json::to_string(value)?;
    let now = Timestamp::now().millis();
    write!(db, pool => {
        let mut tx = pool.begin().await?;
        if let Some(user) = updated_by {
            let found: Option<i64> =
                sqlx::query_scalar(USER).bind(tenant.0).bind(user.0).fetch_optional(&mut *tx).await?;
            if found.is_none() {
                return Err(DbError::UnknownReference { field: "updated_by", id: user.0 });
            }
        }
        sqlx::query(SQL)
            .bind(tenant.0)
            .bind(key)
            .bind(&text)
            .bind(now)
            .bind(updated_by.map(|u| u.0))
            .execute(&mut *tx)
            .await
            .map_err(|e| match DbError::from(e) {
                DbError::ForeignKey(_) => DbError::UnknownReference { field: "tenant_id", id: tenant.0 },
                other => other,
            })?;
        tx.commit().await?;
    });
    Ok(())
}

/// Removes the override of `key` (back to the default); returns whether there was one.
pub async fn delete(db: &Db, tenant: TenantId, key: &str) -> DbResult<bool> {
    const SQL: &str = "DELETE FROM settings WHERE tenant_id = $1 AND key = $2";
    let done = write!(db, pool => {
        sqlx::query(SQL).bind(tenant.0).bind(key).execute(pool).await?.rows_affected()
    });
    Ok(done > 0)
}
