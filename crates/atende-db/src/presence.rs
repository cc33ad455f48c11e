//! Presence as stored in `users`: a copy of live state (SPEC §1: derived from live panel
//! connections) that routing reads. A server that starts has no connection yet, so it clears what
//! an earlier run left behind; the per-user writes are `users::set_presence`.

use crate::{Db, DbResult, write};
use atende_domain::Presence;

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
