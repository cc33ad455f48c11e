//! Append-only migrations, one folder per dialect, embedded in the binary.
//!
//! Never edit a migration once it has landed: add a new one. Each migration runs in its own
//! transaction together with its bookkeeping row, so a failed migration leaves nothing half-done.

use crate::{Db, DbError, DbResult};
use atende_domain::Timestamp;

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tenants, people, auth, settings, audit, jobs",
        sqlite: include_str!("../migrations/sqlite/0001_core.sql"),
        postgres: include_str!("../migrations/postgres/0001_core.sql"),
    },
    Migration {
        version: 2,
        name: "queues, contacts, connections, tickets, messages and the catalogues",
        sqlite: include_str!("../migrations/sqlite/0002_business.sql"),
        postgres: include_str!("../migrations/postgres/0002_business.sql"),
    },
    Migration {
        version: 4,
        name: "ticket list and tab counter indexes",
        sqlite: include_str!("../migrations/sqlite/0004_ticket_lists.sql"),
        postgres: include_str!("../migrations/postgres/0004_ticket_lists.sql"),
    },
    Migration {
        version: 5,
        name: "ticket lifecycle: auto-resolve due index, out-of-hours counter cycle",
        sqlite: include_str!("../migrations/sqlite/0005_lifecycle.sql"),
        postgres: include_str!("../migrations/postgres/0005_lifecycle.sql"),
    },
    Migration {
        version: 7,
        name: "folded contact search text",
        sqlite: include_str!("../migrations/sqlite/0007_contact_search.sql"),
        postgres: include_str!("../migrations/postgres/0007_contact_search.sql"),
    },
    Migration {
        version: 8,
        name: "outbound delivery: per-chat outbox index",
        sqlite: include_str!("../migrations/sqlite/0008_outbound.sql"),
        postgres: include_str!("../migrations/postgres/0008_outbound.sql"),
    },
    Migration {
        version: 9,
        name: "maintenance actions: imported messages index",
        sqlite: include_str!("../migrations/sqlite/0009_maintenance.sql"),
        postgres: include_str!("../migrations/postgres/0009_maintenance.sql"),
    },
    Migration {
        version: 10,
        name: "WhatsApp Business window: template cycle, template calls",
        sqlite: include_str!("../migrations/sqlite/0010_waba_window.sql"),
        postgres: include_str!("../migrations/postgres/0010_waba_window.sql"),
    },
    Migration {
        version: 12,
        name: "outbound: index of the first pending message of each chat",
        sqlite: include_str!("../migrations/sqlite/0012_outbox_heads.sql"),
        postgres: include_str!("../migrations/postgres/0012_outbox_heads.sql"),
    },
    Migration {
        version: 14,
        name: "dashboard: cycle time indexes, first response backfill",
        sqlite: include_str!("../migrations/sqlite/0014_dashboard.sql"),
        postgres: include_str!("../migrations/postgres/0014_dashboard.sql"),
    },
    Migration {
        version: 15,
        name: "connection status: web chat connections are connected",
        sqlite: include_str!("../migrations/sqlite/0015_webchat_connected.sql"),
        postgres: include_str!("../migrations/postgres/0015_webchat_connected.sql"),
    },
    Migration {
        version: 16,
        name: "outbound: table of the first pending message of each chat, kept by triggers",
        sqlite: include_str!("../migrations/sqlite/0016_outbox_chats.sql"),
        postgres: include_str!("../migrations/postgres/0016_outbox_chats.sql"),
    },
];

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// Arbitrary constant shared by every instance so only one migrates at a time on PostgreSQL.
const PG_MIGRATION_LOCK: i64 = 0x0061_7465_6e64_6501;

/// Applies every listed migration not yet recorded, each in its own transaction with its
/// bookkeeping row. A macro rather than a generic function: the body is the same for both drivers,
/// only the connection type and the migration text differ.
macro_rules! apply_pending {
    ($conn:expr, $dialect:ident) => {{
        sqlx::raw_sql(BOOKKEEPING).execute(&mut *$conn).await?;
        for migration in MIGRATIONS {
            let applied: Option<i64> =
                sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                    .bind(migration.version)
                    .fetch_optional(&mut *$conn)
                    .await?;
            if applied.is_some() {
                continue;
            }
            let fail = |source| DbError::Migration {
                version: migration.version,
                name: migration.name,
                source,
            };
            let mut tx = sqlx::Connection::begin(&mut *$conn).await?;
            sqlx::raw_sql(migration.$dialect)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            sqlx::query(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(Timestamp::now().millis())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "applied migration"
            );
        }
        DbResult::Ok(())
    }};
}

pub(crate) async fn run(db: &Db) -> DbResult<()> {
    match db {
        Db::Sqlite(store) => {
            // The single writer connection: nothing else writes while we migrate.
            let mut conn = store.write.acquire().await?;
            apply_pending!(conn, sqlite)
        }
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(PG_MIGRATION_LOCK)
                .execute(&mut *conn)
                .await?;
            let outcome: DbResult<()> = async { apply_pending!(conn, postgres) }.await;
            let unlock = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PG_MIGRATION_LOCK)
                .execute(&mut *conn)
                .await;
            outcome?;
            unlock?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn migrations_are_listed_in_increasing_version_order() {
        for pair in MIGRATIONS.windows(2) {
            assert!(
                pair[0].version < pair[1].version,
                "migration {} is listed before {}",
                pair[0].version,
                pair[1].version
            );
        }
    }
}
