//! Presence in the store (SPEC §1): batched writes keep each tenant's rows apart and report
//! deleted users; the reset at start makes everybody offline. SQLite and, with
//! `TEST_DATABASE_URL`, PostgreSQL.

use atende_db::presence::{self, PresenceChange};
use atende_db::users::{self, NewUser};
use atende_db::{Db, tenants};
use atende_domain::{Presence, TenantId, UserId};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

async fn user(db: &Db, tenant: TenantId, email: &str) -> Result<UserId> {
    let new = NewUser {
        email: email.into(),
        name: email.into(),
        password_hash: "-".into(),
        ..NewUser::default()
    };
    Ok(users::create(db, tenant, &new).await?.id)
}

async fn stored(db: &Db, tenant: TenantId, id: UserId) -> Result<(Presence, Option<String>)> {
    let user = users::get(db, tenant, id).await?;
    Ok((user.presence, user.pause_reason))
}

fn change(
    tenant: TenantId,
    user: UserId,
    presence: Presence,
    reason: Option<&str>,
) -> PresenceChange {
    PresenceChange {
        tenant,
        user,
        presence,
        pause_reason: reason.map(str::to_owned),
    }
}

async fn story(db: &Db) -> Result {
    let a = tenants::platform_create(db, "presence-a", "A").await?.id;
    let b = tenants::platform_create(db, "presence-b", "B").await?.id;
    let ana = user(db, a, "ana@presence.test").await?;
    let bia = user(db, a, "bia@presence.test").await?;
    let caio = user(db, b, "caio@presence.test").await?;

    let found = presence::platform_set_many(
        db,
        &[
            change(a, ana, Presence::Online, Some("ignored unless paused")),
            change(a, bia, Presence::Paused, Some("almoço")),
            change(b, caio, Presence::Online, None),
            // Caio is not a user of tenant A: nothing changes, and the answer says so.
            change(a, caio, Presence::Paused, Some("x")),
        ],
    )
    .await?;
    assert_eq!(found, vec![true, true, true, false]);
    assert_eq!(stored(db, a, ana).await?, (Presence::Online, None));
    assert_eq!(
        stored(db, a, bia).await?,
        (Presence::Paused, Some("almoço".into()))
    );
    assert_eq!(stored(db, b, caio).await?, (Presence::Online, None));
    assert!(presence::platform_set_many(db, &[]).await?.is_empty());

    assert_eq!(presence::platform_reset_all(db).await?, 3);
    for (tenant, id) in [(a, ana), (a, bia), (b, caio)] {
        assert_eq!(stored(db, tenant, id).await?, (Presence::Offline, None));
    }
    assert_eq!(
        presence::platform_reset_all(db).await?,
        0,
        "nothing left to reset"
    );
    Ok(())
}

#[tokio::test]
async fn presence_writes_are_batched_per_user_and_reset_at_start() -> Result {
    let mut failures = Vec::new();
    for store in atende_db::testing::TestDb::all().await? {
        if let Err(error) = story(&store.db).await {
            failures.push(format!("{}: {error}", store.name));
        }
        store.cleanup().await;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}
