//! Throwaway stores for tests: a fresh SQLite file always, and a fresh PostgreSQL schema when
//! `TEST_DATABASE_URL` is set (CI sets it), so every store test covers both backends in one run.
//!
//! Lives in this crate (not in atende-testkit) so the repository tests can use it without a
//! dependency cycle; it costs nothing at run time.

use crate::{Db, DbResult};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

/// A migrated store that is removed when dropped (the SQLite directory) or left in its own
/// PostgreSQL schema (dropped by `cleanup`, or with the throwaway database CI drops).
pub struct TestDb {
    pub name: &'static str,
    pub db: Db,
    _dir: Option<TempDir>,
    pg_schema: Option<(String, String)>,
}

/// A directory removed on drop, without pulling a tempfile dependency into the library.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestDb {
    /// A fresh, migrated SQLite database in its own temporary directory.
    pub async fn sqlite() -> DbResult<TestDb> {
        let dir = std::env::temp_dir().join(format!("atende-test-{}", unique_suffix()));
        std::fs::create_dir_all(&dir).map_err(|e| {
            crate::DbError::Corrupt(format!("cannot create {}: {e}", dir.display()))
        })?;
        let url = format!("sqlite://{}?mode=rwc", dir.join("atende.db").display());
        let db = Db::connect(&url).await?;
        db.migrate().await?;
        Ok(TestDb {
            name: "sqlite",
            db,
            _dir: Some(TempDir(dir)),
            pg_schema: None,
        })
    }

    /// A fresh, migrated PostgreSQL schema, or `None` when `TEST_DATABASE_URL` is not set.
    pub async fn postgres() -> DbResult<Option<TestDb>> {
        let Some(url) = postgres_url() else {
            return Ok(None);
        };
        let schema = format!("t_{}", unique_suffix());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await?;
        // The name is made of digits and underscores only, so it is safe to splice.
        let create = format!("CREATE SCHEMA {schema}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(create))
            .execute(&admin)
            .await?;
        admin.close().await;
        let options = PgConnectOptions::from_str(&url)?.options([("search_path", schema.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .connect_with(options)
            .await?;
        let db = Db::Postgres(pool);
        db.migrate().await?;
        Ok(Some(TestDb {
            name: "postgres",
            db,
            _dir: None,
            pg_schema: Some((url, schema)),
        }))
    }

    /// SQLite always, PostgreSQL when configured. Prints a line when PostgreSQL is skipped.
    pub async fn all() -> DbResult<Vec<TestDb>> {
        let mut stores = vec![TestDb::sqlite().await?];
        match TestDb::postgres().await? {
            Some(pg) => stores.push(pg),
            None => eprintln!(
                "note: TEST_DATABASE_URL is not set; skipping the PostgreSQL run of this test"
            ),
        }
        Ok(stores)
    }

    /// Runs `story` on every store of [`TestDb::all`], each cleaned up after, and answers every
    /// store's failure (named by its store), so one store failing does not hide the other.
    pub async fn on_every_store<Story, Run, Error>(story: Story) -> Result<(), String>
    where
        Story: Fn(Db) -> Run,
        Run: std::future::Future<Output = Result<(), Error>>,
        Error: std::fmt::Display,
    {
        let stores = TestDb::all().await.map_err(|error| error.to_string())?;
        let mut failures = Vec::new();
        for store in stores {
            if let Err(error) = story(store.db.clone()).await {
                failures.push(format!("{}: {error}", store.name));
            }
            store.cleanup().await;
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    /// Drops the PostgreSQL schema (SQLite files go with the value).
    pub async fn cleanup(self) {
        self.db.close().await;
        if let Some((url, schema)) = self.pg_schema
            && let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(&url).await
        {
            let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}

/// `TEST_DATABASE_URL`, when set and not empty.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// A fresh PostgreSQL schema for a whole server under test: the URL selects it through
/// `search_path`. `None` when `TEST_DATABASE_URL` is not set. Drop it with `drop_postgres_schema`.
pub async fn create_postgres_schema() -> DbResult<Option<(String, String)>> {
    let Some(url) = postgres_url() else {
        return Ok(None);
    };
    let schema = format!("t_{}", unique_suffix());
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let create = format!("CREATE SCHEMA {schema}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&admin)
        .await?;
    admin.close().await;
    let separator = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    Ok(Some((scoped, schema)))
}

pub async fn drop_postgres_schema(schema: &str) {
    let Some(url) = postgres_url() else { return };
    if !schema
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return;
    }
    if let Ok(admin) = PgPoolOptions::new().max_connections(1).connect(&url).await {
        let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
            .execute(&admin)
            .await;
        admin.close().await;
    }
}

/// Records that the calling test ran without its PostgreSQL half, so the test command can list
/// the skipped runs at the end (test output itself is captured). The file is named by
/// `ATENDE_SKIPPED_LOG` (set by `scripts/test`); the line is the test's name.
pub fn note_postgres_skipped() {
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    eprintln!("note: TEST_DATABASE_URL is not set; skipping the PostgreSQL run of {test}");
    if let Ok(path) = std::env::var("ATENDE_SKIPPED_LOG") {
        use std::io::Write;
        if let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(file, "{test}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures of the outbox tests
// ---------------------------------------------------------------------------------------------

/// A contact named by its phone, with that phone as its identity on each of `channels`.
pub async fn phone_contact(
    db: &Db,
    tenant: atende_domain::TenantId,
    phone: &str,
    channels: &[atende_domain::ChannelKind],
) -> DbResult<atende_domain::Contact> {
    let contact = crate::contacts::NewContact {
        name: phone.into(),
        name_source: atende_domain::NameSource::Manual,
        phone: Some(phone.into()),
        email: None,
        avatar_url: None,
        blocked: false,
        is_group: false,
        custom_fields: serde_json::json!({}),
        identities: channels
            .iter()
            .map(|kind| (*kind, phone.to_owned()))
            .collect(),
        wallet_user_ids: vec![],
        tag_ids: vec![],
    };
    crate::contacts::create(db, tenant, &contact).await
}

/// An open private ticket of `contact` on `connection`, in no queue and with no owner.
pub async fn open_ticket(
    db: &Db,
    tenant: atende_domain::TenantId,
    contact: atende_domain::ContactId,
    connection: atende_domain::ConnectionId,
) -> DbResult<atende_domain::Ticket> {
    let ticket = crate::tickets::NewTicket {
        contact_id: contact,
        connection_id: connection,
        status: atende_domain::TicketStatus::Open,
        owner_id: None,
        queue_id: None,
        is_group: false,
    };
    crate::tickets::create(db, tenant, &ticket).await
}

/// Queues an agent's text reply (no signature, media or quote); `None` when `idempotency_key`
/// was used already.
pub async fn queue_text_reply(
    db: &Db,
    tenant: atende_domain::TenantId,
    ticket: atende_domain::TicketId,
    author: atende_domain::UserId,
    body: &str,
    idempotency_key: &str,
    now: atende_domain::Timestamp,
) -> DbResult<Option<atende_domain::MessageId>> {
    let reply = crate::outbox::NewReply {
        ticket_id: ticket,
        author_user_id: author,
        kind: atende_domain::MessageKind::Text,
        body: body.into(),
        signature: String::new(),
        media: None,
        quoted_id: None,
        idempotency_key: idempotency_key.into(),
        template_call: None,
        auto_resolve_due: None,
        now,
    };
    Ok(
        match crate::outbox::queue_reply(db, tenant, &reply).await? {
            crate::outbox::Queued::Created(queued) => Some(queued.message.id),
            crate::outbox::Queued::Existing(_) => None,
        },
    )
}
