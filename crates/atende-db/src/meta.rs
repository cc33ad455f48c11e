//! Instance metadata: platform-wide key/value pairs (e.g. the secret-key check value).

use crate::{Db, DbResult, read, write};

pub async fn platform_get(db: &Db, key: &str) -> DbResult<Option<String>> {
    const SQL: &str = "SELECT value FROM instance_meta WHERE key = $1";
    let value: Option<String> =
        read!(db, pool => sqlx::query_scalar(SQL).bind(key).fetch_optional(pool).await?);
    Ok(value)
}

/// Stores `value` under `key` unless the key already has one; returns the value stored after
/// the call (the given one, or the one another instance stored first).
pub async fn platform_insert_if_absent(db: &Db, key: &str, value: &str) -> DbResult<String> {
    const INSERT: &str =
        "INSERT INTO instance_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
    const SELECT: &str = "SELECT value FROM instance_meta WHERE key = $1";
    let stored: String = write!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(INSERT).bind(key).bind(value).execute(&mut *tx).await?;
        let stored = sqlx::query_scalar(SELECT).bind(key).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        stored
    });
    Ok(stored)
}
