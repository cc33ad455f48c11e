use crate::{DbError, DbResult};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// SQLite keeps one connection for writes (the single writer: write contention waits in async
/// Rust instead of spinning on SQLITE_BUSY) and a pool of readers (WAL lets them run alongside).
#[derive(Debug)]
pub struct SqliteStore {
    pub read: SqlitePool,
    pub write: SqlitePool,
}

/// The store, chosen at start from `DATABASE_URL`.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(Arc<SqliteStore>),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to a pool that may read. The body is compiled once per backend.
#[macro_export]
macro_rules! read {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite(store) => {
                let $pool = &store.read;
                $body
            }
            $crate::Db::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    };
}

/// Runs `$body` with `$pool` bound to the pool that may write (SQLite: the single writer).
#[macro_export]
macro_rules! write {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite(store) => {
                let $pool = &store.write;
                $body
            }
            $crate::Db::Postgres(pg) => {
                let $pool = pg;
                $body
            }
        }
    };
}

impl Db {
    /// Opens the store named by `url`: `sqlite://…` / `sqlite:…` or `postgres://…` / `postgresql://…`.
    pub async fn connect(url: &str) -> DbResult<Db> {
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(32)
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(DbError::UnsupportedUrl(url.to_owned()))
        }
    }

    async fn connect_sqlite(url: &str) -> DbResult<Db> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            .pragma("cache_size", "-65536");
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                DbError::Corrupt(format!("cannot create directory {}: {e}", parent.display()))
            })?;
        }
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        Ok(Db::Sqlite(Arc::new(SqliteStore { read, write })))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every migration of this backend that is not applied yet, then the data repairs
    /// that need the domain's Rust code (SQL alone cannot fold text the way search does).
    pub async fn migrate(&self) -> DbResult<()> {
        crate::migrate::run(self).await?;
        let fixed = crate::contacts::platform_repair_search_text(self).await?;
        if fixed > 0 {
            tracing::info!(contacts = fixed, "filled the search text of contacts");
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(store) => {
                store.read.close().await;
                store.write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}
