//! Presence as stored in `users`: a copy of live state (SPEC §1: derived from live panel
//! connections) that routing reads. A server that starts has no connection yet, so it clears what
//! an earlier run left behind; changes are written in batches, because a reconnect storm (every
//! panel of a company reconnecting after a restart) changes thousands of users at once and the
//! SQLite writer must not take them one by one.

use crate::{Db, DbResult, write};
use atende_domain::{Presence, TenantId, UserId};

/// One user's new presence; `pause_reason` is kept only when paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    pub tenant: TenantId,
    pub user: UserId,
    pub presence: Presence,
    pub pause_reason: Option<String>,
}

/// Marks every user of the platform offline (and clears pause reasons). Run once at start, before
/// the server accepts connections. Answers how many users were not offline.
///
/// With several instances on one PostgreSQL this also clears users connected to the others; live
/// presence is per node until the event bus spans nodes.
pub async fn platform_reset_all(db: &Db) -> DbResult<u64> {
    const SQL: &str = "UPDATE users SET presence = $1, pause_reason = NULL \
                       WHERE presence <> $1 OR pause_reason IS NOT NULL";
    let done = write!(db, pool => {
        sqlx::query(SQL).bind(Presence::Offline.as_str()).execute(pool).await?.rows_affected()
    });
    Ok(done)
}

/// Writes several users' presence (of any tenants: each row names its own) in one transaction,
/// like `users::set_presence` each. Answers, per change, whether the user still exists.
pub async fn platform_set_many(db: &Db, changes: &[PresenceChange]) -> DbResult<Vec<bool>> {
    const SQL: &str =
        "UPDATE users SET presence = $3, pause_reason = $4 WHERE tenant_id = $1 AND id = $2";
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let found = write!(db, pool => {
        let mut tx = pool.begin().await?;
        let mut found = Vec::with_capacity(changes.len());
        for change in changes {
            let pause_reason = match change.presence {
                Presence::Paused => change.pause_reason.as_deref(),
                Presence::Online | Presence::Offline => None,
            };
            let done = sqlx::query(SQL)
                .bind(change.tenant.0)
                .bind(change.user.0)
                .bind(change.presence.as_str())
                .bind(pause_reason)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            found.push(done > 0);
        }
        tx.commit().await?;
        found
    });
    Ok(found)
}
