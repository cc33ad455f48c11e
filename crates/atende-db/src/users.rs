//! Users: tenant people (admin, supervisor, agent) and platform superadmins, with their presence.

use crate::{Db, DbError, DbResult, read, write};
use atende_domain::{Presence, Profile, QueueId, TenantId, Timestamp, User, UserId};
use std::collections::HashMap;

/// The columns of `UserRow`, in one place (a macro so the SQL stays a `&'static str`).
macro_rules! user_columns {
    () => {
        "id, tenant_id, email, name, profile, is_superadmin, business_hours, timezone, locale, \
         presence, pause_reason, created_at, updated_at"
    };
}

/// The queues of one user, ordered by id (`user_queues` belongs to the business migration).
macro_rules! queue_ids_of {
    ($executor:expr, $user_id:expr) => {{
        const SQL: &str = "SELECT queue_id FROM user_queues WHERE user_id = $1 ORDER BY queue_id";
        let ids: Vec<i64> = sqlx::query_scalar(SQL)
            .bind($user_id)
            .fetch_all($executor)
            .await?;
        ids.into_iter().map(QueueId).collect::<Vec<_>>()
    }};
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub profile: Profile,
    pub business_hours: Option<serde_json::Value>,
    pub timezone: Option<String>,
    pub locale: String,
}

impl Default for NewUser {
    /// An agent (`user` profile) with locale pt-BR and no own hours or timezone.
    fn default() -> Self {
        NewUser {
            email: String::new(),
            name: String::new(),
            password_hash: String::new(),
            profile: Profile::User,
            business_hours: None,
            timezone: None,
            locale: "pt-BR".to_owned(),
        }
    }
}

/// Fields to change; `None` leaves a field as it is (`Some(None)` clears a nullable one).
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub email: Option<String>,
    pub profile: Option<Profile>,
    pub business_hours: Option<Option<serde_json::Value>>,
    pub timezone: Option<Option<String>>,
    pub locale: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    pub(crate) id: i64,
    tenant_id: Option<i64>,
    email: String,
    name: String,
    profile: Option<String>,
    is_superadmin: bool,
    business_hours: Option<String>,
    timezone: Option<String>,
    locale: String,
    presence: String,
    pause_reason: Option<String>,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct LoginRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

impl UserRow {
    pub(crate) fn into_user(self, queue_ids: Vec<QueueId>) -> DbResult<User> {
        let profile = match self.profile.as_deref() {
            None => None,
            Some(text) => Some(Profile::parse(text).ok_or_else(|| {
                DbError::Corrupt(format!("user {}: unknown profile '{text}'", self.id))
            })?),
        };
        let presence = Presence::parse(&self.presence).ok_or_else(|| {
            DbError::Corrupt(format!(
                "user {}: unknown presence '{}'",
                self.id, self.presence
            ))
        })?;
        let business_hours = match self.business_hours.as_deref() {
            None => None,
            Some(text) => Some(serde_json::from_str(text)?),
        };
        Ok(User {
            id: UserId(self.id),
            tenant_id: self.tenant_id.map(TenantId),
            email: self.email,
            name: self.name,
            profile,
            is_superadmin: self.is_superadmin,
            queue_ids,
            business_hours,
            timezone: self.timezone,
            presence,
            pause_reason: self.pause_reason,
            locale: self.locale,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

/// Emails are stored trimmed and lower-case, so the unique index compares them case-insensitively.
fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn json_text(value: Option<&serde_json::Value>) -> DbResult<Option<String>> {
    value
        .map(serde_json::to_string)
        .transpose()
        .map_err(DbError::from)
}

/// The tenant itself missing is the only foreign key a new user can break.
fn unknown_tenant(error: DbError, tenant: TenantId) -> DbError {
    match error {
        DbError::ForeignKey(_) => DbError::UnknownReference {
            field: "tenant_id",
            id: tenant.0,
        },
        other => other,
    }
}

/// Creates a user of `tenant`. An email already used anywhere on the platform (compared
/// case-insensitively) → `Conflict` whose constraint contains "email".
pub async fn create(db: &Db, tenant: TenantId, new: &NewUser) -> DbResult<User> {
    const SQL: &str = concat!(
        "INSERT INTO users (tenant_id, email, name, password_hash, profile, is_superadmin, \
         business_hours, timezone, locale, presence, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) RETURNING ",
        user_columns!()
    );
    let now = Timestamp::now().millis();
    let email = normalise_email(&new.email);
    let business_hours = json_text(new.business_hours.as_ref())?;
    let row: UserRow = write!(db, pool => {
        sqlx::query_as(SQL)
            .bind(tenant.0)
            .bind(&email)
            .bind(&new.name)
            .bind(&new.password_hash)
            .bind(new.profile.as_str())
            .bind(false)
            .bind(&business_hours)
            .bind(&new.timezone)
            .bind(&new.locale)
            .bind(Presence::Offline.as_str())
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(|e| unknown_tenant(e.into(), tenant))?
    });
    row.into_user(Vec::new())
}

/// Creates a platform superadmin: no tenant, no profile, locale pt-BR.
pub async fn platform_create_superadmin(
    db: &Db,
    email: &str,
    name: &str,
    password_hash: &str,
) -> DbResult<User> {
    const SQL: &str = concat!(
        "INSERT INTO users (tenant_id, email, name, password_hash, profile, is_superadmin, \
         locale, presence, created_at, updated_at) \
         VALUES (NULL, $1, $2, $3, NULL, $4, $5, $6, $7, $7) RETURNING ",
        user_columns!()
    );
    let now = Timestamp::now().millis();
    let email = normalise_email(email);
    let row: UserRow = write!(db, pool => {
        sqlx::query_as(SQL)
            .bind(&email)
            .bind(name)
            .bind(password_hash)
            .bind(true)
            .bind("pt-BR")
            .bind(Presence::Offline.as_str())
            .bind(now)
            .fetch_one(pool)
            .await?
    });
    row.into_user(Vec::new())
}

/// A user of `tenant` (a user of another tenant, or a superadmin → `NotFound`).
pub async fn get(db: &Db, tenant: TenantId, id: UserId) -> DbResult<User> {
    const SQL: &str = concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE tenant_id = $1 AND id = $2"
    );
    read!(db, pool => {
        let row: Option<UserRow> =
            sqlx::query_as(SQL).bind(tenant.0).bind(id.0).fetch_optional(pool).await?;
        let row = row.ok_or(DbError::NotFound)?;
        let queue_ids = queue_ids_of!(pool, row.id);
        row.into_user(queue_ids)
    })
}

/// Any user, tenant or superadmin (after a token lookup, which already names the user).
pub async fn platform_get(db: &Db, id: UserId) -> DbResult<User> {
    const SQL: &str = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
    read!(db, pool => {
        let row: Option<UserRow> = sqlx::query_as(SQL).bind(id.0).fetch_optional(pool).await?;
        let row = row.ok_or(DbError::NotFound)?;
        let queue_ids = queue_ids_of!(pool, row.id);
        row.into_user(queue_ids)
    })
}

/// The users of `tenant`, by name then id.
pub async fn list(db: &Db, tenant: TenantId) -> DbResult<Vec<User>> {
    const USERS: &str = concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE tenant_id = $1 ORDER BY name, id"
    );
    const QUEUES: &str =
        "SELECT user_id, queue_id FROM user_queues WHERE tenant_id = $1 ORDER BY user_id, queue_id";
    let (rows, links): (Vec<UserRow>, Vec<(i64, i64)>) = read!(db, pool => {
        let rows = sqlx::query_as(USERS).bind(tenant.0).fetch_all(pool).await?;
        let links = sqlx::query_as(QUEUES).bind(tenant.0).fetch_all(pool).await?;
        (rows, links)
    });
    let mut queues: HashMap<i64, Vec<QueueId>> = HashMap::new();
    for (user_id, queue_id) in links {
        queues.entry(user_id).or_default().push(QueueId(queue_id));
    }
    rows.into_iter()
        .map(|row| {
            let queue_ids = queues.remove(&row.id).unwrap_or_default();
            row.into_user(queue_ids)
        })
        .collect()
}

/// Applies `patch` to a user of `tenant`. A new email taken by anyone → `Conflict` ("email").
pub async fn update(db: &Db, tenant: TenantId, id: UserId, patch: &UserPatch) -> DbResult<User> {
    const CURRENT: &str = concat!(
        "SELECT ",
        user_columns!(),
        " FROM users WHERE tenant_id = $1 AND id = $2"
    );
    const SQL: &str = concat!(
        "UPDATE users SET name = $3, email = $4, profile = $5, business_hours = $6, timezone = $7, \
         locale = $8, updated_at = $9 WHERE tenant_id = $1 AND id = $2 RETURNING ",
        user_columns!()
    );
    let now = Timestamp::now().millis();
    let email = patch.email.as_deref().map(normalise_email);
    let new_hours = match &patch.business_hours {
        None => None,
        Some(hours) => Some(json_text(hours.as_ref())?),
    };
    write!(db, pool => {
        let mut tx = pool.begin().await?;
        let current: Option<UserRow> =
            sqlx::query_as(CURRENT).bind(tenant.0).bind(id.0).fetch_optional(&mut *tx).await?;
        let current = current.ok_or(DbError::NotFound)?;
        let profile = match patch.profile {
            Some(profile) => Some(profile.as_str().to_owned()),
            None => current.profile,
        };
        let row: UserRow = sqlx::query_as(SQL)
            .bind(tenant.0)
            .bind(id.0)
            .bind(patch.name.as_ref().unwrap_or(&current.name))
            .bind(email.as_ref().unwrap_or(&current.email))
            .bind(profile)
            .bind(new_hours.unwrap_or(current.business_hours))
            .bind(patch.timezone.clone().unwrap_or(current.timezone))
            .bind(patch.locale.as_ref().unwrap_or(&current.locale))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        let queue_ids = queue_ids_of!(&mut *tx, row.id);
        tx.commit().await?;
        row.into_user(queue_ids)
    })
}

/// Deletes a user of `tenant` (their tokens go with them).
pub async fn delete(db: &Db, tenant: TenantId, id: UserId) -> DbResult<()> {
    const SQL: &str = "DELETE FROM users WHERE tenant_id = $1 AND id = $2";
    let done = write!(db, pool => sqlx::query(SQL).bind(tenant.0).bind(id.0).execute(pool).await?.rows_affected());
    if done == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// Replaces the password hash. `tenant`: `Some` for a user of that tenant, `None` for a superadmin.
pub async fn set_password(
    db: &Db,
    tenant: Option<TenantId>,
    id: UserId,
    password_hash: &str,
) -> DbResult<()> {
    const IN_TENANT: &str = "UPDATE users SET password_hash = $3, updated_at = $4 \
                             WHERE tenant_id = $1 AND id = $2";
    const PLATFORM: &str = "UPDATE users SET password_hash = $2, updated_at = $3 \
                            WHERE tenant_id IS NULL AND id = $1";
    let now = Timestamp::now().millis();
    let done = write!(db, pool => match tenant {
        Some(tenant) => {
            sqlx::query(IN_TENANT).bind(tenant.0).bind(id.0).bind(password_hash).bind(now)
                .execute(pool).await?.rows_affected()
        }
        None => {
            sqlx::query(PLATFORM).bind(id.0).bind(password_hash).bind(now).execute(pool).await?
                .rows_affected()
        }
    });
    if done == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// The user with this email (any case) and their password hash, across the platform (SPEC §1:
/// login needs no tenant name).
pub async fn platform_find_for_login(db: &Db, email: &str) -> DbResult<Option<(User, String)>> {
    const SQL: &str = concat!(
        "SELECT ",
        user_columns!(),
        ", password_hash FROM users WHERE email = $1"
    );
    let email = normalise_email(email);
    read!(db, pool => {
        let row: Option<LoginRow> = sqlx::query_as(SQL).bind(&email).fetch_optional(pool).await?;
        match row {
            None => Ok(None),
            Some(LoginRow { user, password_hash }) => {
                let queue_ids = queue_ids_of!(pool, user.id);
                Ok(Some((user.into_user(queue_ids)?, password_hash)))
            }
        }
    })
}

/// Records live presence (derived from panel connections); `pause_reason` is kept only when paused.
/// Does not touch `updated_at`: presence is live state, not an edit of the user.
pub async fn set_presence(
    db: &Db,
    tenant: TenantId,
    id: UserId,
    presence: Presence,
    pause_reason: Option<&str>,
) -> DbResult<()> {
    const SQL: &str =
        "UPDATE users SET presence = $3, pause_reason = $4 WHERE tenant_id = $1 AND id = $2";
    let pause_reason = if presence == Presence::Paused {
        pause_reason
    } else {
        None
    };
    let done = write!(db, pool => {
        sqlx::query(SQL).bind(tenant.0).bind(id.0).bind(presence.as_str()).bind(pause_reason)
            .execute(pool).await?.rows_affected()
    });
    if done == 0 {
        return Err(DbError::NotFound);
    }
    Ok(())
}

/// The admins of `tenant`, by id.
pub async fn list_admin_ids(db: &Db, tenant: TenantId) -> DbResult<Vec<UserId>> {
    const SQL: &str = "SELECT id FROM users WHERE tenant_id = $1 AND profile = $2 ORDER BY id";
    let ids: Vec<i64> = read!(db, pool => {
        sqlx::query_scalar(SQL).bind(tenant.0).bind(Profile::Admin.as_str()).fetch_all(pool).await?
    });
    Ok(ids.into_iter().map(UserId).collect())
}

/// Every user of the platform, superadmins included.
pub async fn platform_count(db: &Db) -> DbResult<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM users";
    let count: i64 = read!(db, pool => sqlx::query_scalar(SQL).fetch_one(pool).await?);
    Ok(count)
}

pub async fn count_in_tenant(db: &Db, tenant: TenantId) -> DbResult<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM users WHERE tenant_id = $1";
    let count: i64 =
        read!(db, pool => sqlx::query_scalar(SQL).bind(tenant.0).fetch_one(pool).await?);
    Ok(count)
}
