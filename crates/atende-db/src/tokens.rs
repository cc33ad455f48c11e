//! Auth tokens: panel sessions and API tokens, stored as the hex SHA-256 of the opaque token.
//!
//! Lookups go by hash across tenants (the token names its user), hence the `platform_` names.

use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{SessionId, TenantId, Timestamp, TokenKind, UserId};

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
