//! Auth tokens: panel sessions and API tokens, stored as the hex SHA-256 of the opaque token.
//!
//! Lookups go by hash across tenants (the token names its user), hence the `platform_` names.

use crate::{Backend, Db, DbError, DbResult, read, write};
use atende_domain::{QueueId, SessionId, TenantId, Timestamp, TokenKind, User, UserId};

macro_rules! token_columns {
    () => {
        "id, token_hash, user_id, tenant_id, kind, name, ip, user_agent, created_at, last_used_at, \
         expires_at"
    };
}

#[derive(Debug, Clone)]
pub struct NewToken {
    /// Hex SHA-256 of the opaque token (the token itself is never stored).
    pub token_hash: String,
    pub user_id: UserId,
    /// The user's tenant; `None` for a superadmin. Must match the user's tenant.
    pub tenant_id: Option<TenantId>,
    pub kind: TokenKind,
    /// A label for API tokens.
    pub name: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// `None` = never expires.
    pub expires_at: Option<Timestamp>,
}

/// One stored token (every column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthToken {
    pub id: SessionId,
    pub token_hash: String,
    pub user_id: UserId,
    pub tenant_id: Option<TenantId>,
    pub kind: TokenKind,
    pub name: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: i64,
    token_hash: String,
    user_id: i64,
    tenant_id: Option<i64>,
    kind: String,
    name: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    created_at: i64,
    last_used_at: i64,
    expires_at: Option<i64>,
}

impl TryFrom<TokenRow> for AuthToken {
    type Error = DbError;

    fn try_from(row: TokenRow) -> DbResult<AuthToken> {
        let kind = TokenKind::parse(&row.kind).ok_or_else(|| {
            DbError::Corrupt(format!(
                "auth token {}: unknown kind '{}'",
                row.id, row.kind
            ))
        })?;
        Ok(AuthToken {
            id: SessionId(row.id),
            token_hash: row.token_hash,
            user_id: UserId(row.user_id),
            tenant_id: row.tenant_id.map(TenantId),
            kind,
            name: row.name,
            ip: row.ip,
            user_agent: row.user_agent,
            created_at: Timestamp(row.created_at),
            last_used_at: Timestamp(row.last_used_at),
            expires_at: row.expires_at.map(Timestamp),
        })
    }
}

/// Stores a token. A user that does not exist (or is not in `tenant_id`) →
/// `UnknownReference { field: "user_id" }`; a hash already stored → `Conflict`.
pub async fn platform_create(db: &Db, new: &NewToken) -> DbResult<AuthToken> {
    const SQL: &str = concat!(
        "INSERT INTO auth_tokens (token_hash, user_id, tenant_id, kind, name, ip, user_agent, \
         created_at, last_used_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) RETURNING ",
        token_columns!()
    );
    let now = Timestamp::now().millis();
    let row: TokenRow = write!(db, pool => {
        sqlx::query_as(SQL)
            .bind(&new.token_hash)
            .bind(new.user_id.0)
            .bind(new.tenant_id.map(|t| t.0))
            .bind(new.kind.as_str())
            .bind(&new.name)
            .bind(&new.ip)
            .bind(&new.user_agent)
            .bind(now)
            .bind(new.expires_at.map(Timestamp::millis))
            .fetch_one(pool)
            .await
            .map_err(|e| match DbError::from(e) {
                DbError::ForeignKey(_) => {
                    DbError::UnknownReference { field: "user_id", id: new.user_id.0 }
                }
                other => other,
            })?
    });
    row.try_into()
}

/// The token with this hash, unless it has expired at `now` (`expires_at <= now`).
pub async fn platform_find_by_hash(
    db: &Db,
    token_hash: &str,
    now: Timestamp,
) -> DbResult<Option<AuthToken>> {
    const SQL: &str = concat!(
        "SELECT ",
        token_columns!(),
        " FROM auth_tokens WHERE token_hash = $1 AND (expires_at IS NULL OR expires_at > $2)"
    );
    let row: Option<TokenRow> = read!(db, pool => {
        sqlx::query_as(SQL).bind(token_hash).bind(now.millis()).fetch_optional(pool).await?
    });
    row.map(AuthToken::try_from).transpose()
}

/// A live token with its user, as one authenticated request needs them.
#[derive(sqlx::FromRow)]
struct SessionRow {
    #[sqlx(flatten)]
    user: crate::users::UserRow,
    token_id: i64,
    token_tenant_id: Option<i64>,
    token_kind: String,
    token_name: Option<String>,
    token_ip: Option<String>,
    token_user_agent: Option<String>,
    token_created_at: i64,
    token_last_used_at: i64,
    token_expires_at: Option<i64>,
    /// The user's queue ids, comma-separated, ascending.
    queue_list: Option<String>,
}

macro_rules! session_sql {
    ($queue_list:expr) => {
        concat!(
            "SELECT u.id, u.tenant_id, u.email, u.name, u.profile, u.is_superadmin, \
             u.business_hours, u.timezone, u.locale, u.presence, u.pause_reason, u.created_at, \
             u.updated_at, t.id AS token_id, t.tenant_id AS token_tenant_id, t.kind AS token_kind, \
             t.name AS token_name, t.ip AS token_ip, t.user_agent AS token_user_agent, \
             t.created_at AS token_created_at, t.last_used_at AS token_last_used_at, \
             t.expires_at AS token_expires_at, ",
            $queue_list,
            " AS queue_list
            FROM auth_tokens t JOIN users u ON u.id = t.user_id
            LEFT JOIN tenants tn ON tn.id = u.tenant_id
            WHERE t.token_hash = $1 AND (t.expires_at IS NULL OR t.expires_at > $2)
              AND (u.tenant_id IS NULL OR NOT tn.suspended)"
        )
    };
}

/// The unexpired token with this hash and its user (with queues), in one round trip: what every
/// authenticated request needs. `None` when the token is unknown or expired, or the user's tenant
/// is suspended.
pub async fn platform_session(
    db: &Db,
    token_hash: &str,
    now: Timestamp,
) -> DbResult<Option<(AuthToken, User)>> {
    const SQLITE: &str = session_sql!(
        "(SELECT group_concat(queue_id, ',') FROM \
         (SELECT queue_id FROM user_queues WHERE user_id = u.id ORDER BY queue_id))"
    );
    const POSTGRES: &str = session_sql!(
        "(SELECT string_agg(queue_id::text, ',' ORDER BY queue_id) FROM user_queues \
         WHERE user_id = u.id)"
    );
    let sql = match db.backend() {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let row: Option<SessionRow> = read!(db, pool => {
        sqlx::query_as(sql).bind(token_hash).bind(now.millis()).fetch_optional(pool).await?
    });
    let Some(row) = row else {
        return Ok(None);
    };
    let queue_ids = crate::parse_id_list(row.queue_list.as_deref(), "user_queues.queue_id")?
        .into_iter()
        .map(QueueId)
        .collect();
    let token = AuthToken::try_from(TokenRow {
        id: row.token_id,
        token_hash: token_hash.to_owned(),
        user_id: row.user.id,
        tenant_id: row.token_tenant_id,
        kind: row.token_kind,
        name: row.token_name,
        ip: row.token_ip,
        user_agent: row.token_user_agent,
        created_at: row.token_created_at,
        last_used_at: row.token_last_used_at,
        expires_at: row.token_expires_at,
    })?;
    Ok(Some((token, row.user.into_user(queue_ids)?)))
}

/// Records a use of the token. A token deleted meanwhile → `NotFound`.
pub async fn platform_touch(db: &Db, id: SessionId, now: Timestamp) -> DbResult<()> {
    const SQL: &str = "UPDATE auth_tokens SET last_used_at = $2 WHERE id = $1";
    let done = write!(db, pool => {
        sqlx::query(SQL).bind(id.0).bind(now.millis()).execute(pool).await?.rows_affected()
    });
    if done == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Deletes the token with this hash (logout); returns whether one was deleted.
pub async fn platform_delete_by_hash(db: &Db, token_hash: &str) -> DbResult<bool> {
    const SQL: &str = "DELETE FROM auth_tokens WHERE token_hash = $1";
    let done = write!(db, pool => {
        sqlx::query(SQL).bind(token_hash).execute(pool).await?.rows_affected()
    });
    Ok(done > 0)
}

/// Deletes every token (sessions and API tokens) of a user except the one with `keep_hash`
/// (e.g. the session that changed the password); returns how many were deleted.
pub async fn platform_delete_for_user_except(
    db: &Db,
    user_id: UserId,
    keep_hash: Option<&str>,
) -> DbResult<u64> {
    const ALL: &str = "DELETE FROM auth_tokens WHERE user_id = $1";
    const EXCEPT: &str = "DELETE FROM auth_tokens WHERE user_id = $1 AND token_hash <> $2";
    let done = write!(db, pool => match keep_hash {
        Some(keep) => sqlx::query(EXCEPT).bind(user_id.0).bind(keep).execute(pool).await?,
        None => sqlx::query(ALL).bind(user_id.0).execute(pool).await?,
    }
    .rows_affected());
    Ok(done)
}

/// The tokens of one kind of a user (expired ones included), oldest first.
pub async fn list_for_user(db: &Db, user_id: UserId, kind: TokenKind) -> DbResult<Vec<AuthToken>> {
    const SQL: &str = concat!(
        "SELECT ",
        token_columns!(),
        " FROM auth_tokens WHERE user_id = $1 AND kind = $2 ORDER BY id"
    );
    let rows: Vec<TokenRow> = read!(db, pool => {
        sqlx::query_as(SQL).bind(user_id.0).bind(kind.as_str()).fetch_all(pool).await?
    });
    rows.into_iter().map(AuthToken::try_from).collect()
}

/// Deletes every token expired at `now`; returns how many.
pub async fn platform_delete_expired(db: &Db, now: Timestamp) -> DbResult<u64> {
    const SQL: &str = "DELETE FROM auth_tokens WHERE expires_at IS NOT NULL AND expires_at <= $1";
    let done = write!(db, pool => {
        sqlx::query(SQL).bind(now.millis()).execute(pool).await?.rows_affected()
    });
    Ok(done)
}
