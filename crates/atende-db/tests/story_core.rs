//! Story of the core repositories (tenants, users, tokens, meta, settings, audit, jobs), run on
//! SQLite and, when `TEST_DATABASE_URL` is set, on PostgreSQL.

use atende_db::audit::{self, NewAudit};
use atende_db::jobs::{self, NewJob};
use atende_db::tokens::{self, NewToken};
use atende_db::users::{self, NewUser, UserPatch};
use atende_db::{Db, DbError, meta, settings, tenants};
use atende_domain::{
    AuditId, JobId, JobStatus, Presence, Profile, QueueId, TenantId, Timestamp, TokenKind, UserId,
};
use serde_json::json;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::test]
async fn core_story() -> Result {
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

async fn story(db: &Db) -> Result {
    meta_story(db).await?;
    let (a, b) = tenant_story(db).await?;
    let people = user_story(db, a, b).await?;
    token_story(db, a, b, &people).await?;
    settings_story(db, a, b, &people).await?;
    audit_story(db, a, b, &people).await?;
    job_story(db, a, b).await?;
    Ok(())
}

fn is_not_found<T: std::fmt::Debug>(result: &std::result::Result<T, DbError>) -> bool {
    matches!(result, Err(DbError::NotFound))
}

async fn meta_story(db: &Db) -> Result {
    assert_eq!(meta::platform_get(db, "secret_key_check").await?, None);
    assert_eq!(
        meta::platform_insert_if_absent(db, "secret_key_check", "v1").await?,
        "v1"
    );
    assert_eq!(
        meta::platform_insert_if_absent(db, "secret_key_check", "v2").await?,
        "v1"
    );
    assert_eq!(
        meta::platform_get(db, "secret_key_check").await?.as_deref(),
        Some("v1")
    );
    Ok(())
}

async fn tenant_story(db: &Db) -> Result<(TenantId, TenantId)> {
    assert_eq!(tenants::platform_count(db).await?, 0);
    let acme = tenants::platform_create(db, "acme", "Acme Ltda").await?;
    assert_eq!(
        (acme.slug.as_str(), acme.name.as_str(), acme.suspended),
        ("acme", "Acme Ltda", false)
    );
    let beta = tenants::platform_create(db, "beta", "Beta SA").await?;
    match tenants::platform_create(db, "acme", "Other").await {
        Err(DbError::Conflict { constraint }) => {
            assert!(constraint.contains("slug"), "{constraint}")
        }
        other => panic!("duplicate slug: {other:?}"),
    }
    let listed = tenants::platform_list(db).await?;
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![acme.id, beta.id]
    );
    assert_eq!(tenants::platform_get(db, beta.id).await?, beta);
    assert!(is_not_found(
        &tenants::platform_get(db, TenantId(beta.id.0 + 100)).await
    ));
    assert_eq!(
        tenants::platform_find_by_slug(db, "beta").await?,
        Some(beta.clone())
    );
    assert_eq!(tenants::platform_find_by_slug(db, "nope").await?, None);
    let suspended = tenants::platform_set_suspended(db, beta.id, true).await?;
    assert!(suspended.suspended);
    assert!(tenants::platform_get(db, beta.id).await?.suspended);
    assert!(
        !tenants::platform_set_suspended(db, beta.id, false)
            .await?
            .suspended
    );
    assert!(is_not_found(
        &tenants::platform_set_suspended(db, TenantId(999_999), true).await
    ));
    assert_eq!(tenants::platform_count(db).await?, 2);
    Ok((acme.id, beta.id))
}

struct People {
    admin: UserId,
    agent: UserId,
    other: UserId,
    root: UserId,
}

async fn add_queue(db: &Db, tenant: TenantId, name: &str) -> Result<QueueId> {
    const SQL: &str = "INSERT INTO queues (tenant_id, name, color, created_at, updated_at) \
                       VALUES ($1, $2, '#336699', 0, 0) RETURNING id";
    let id: i64 = atende_db::write!(db, pool => {
        sqlx::query_scalar(SQL).bind(tenant.0).bind(name).fetch_one(pool).await?
    });
    Ok(QueueId(id))
}

async fn link_queue(db: &Db, tenant: TenantId, user: UserId, queue: QueueId) -> Result {
    const SQL: &str = "INSERT INTO user_queues (tenant_id, user_id, queue_id) VALUES ($1, $2, $3)";
    atende_db::write!(db, pool => {
        sqlx::query(SQL).bind(tenant.0).bind(user.0).bind(queue.0).execute(pool).await?;
    });
    Ok(())
}

async fn user_story(db: &Db, a: TenantId, b: TenantId) -> Result<People> {
    let hours = json!({"mon": [["08:00", "18:00"]]});
    let admin = users::create(
        db,
        a,
        &NewUser {
            email: "  Ana@Example.COM ".into(),
            name: "Ana".into(),
            password_hash: "hash-ana".into(),
            profile: Profile::Admin,
            business_hours: Some(hours.clone()),
            timezone: Some("America/Manaus".into()),
            locale: "pt-BR".into(),
        },
    )
    .await?;
    assert_eq!(admin.email, "ana@example.com");
    assert_eq!(admin.tenant_id, Some(a));
    assert_eq!(admin.profile, Some(Profile::Admin));
    assert!(!admin.is_superadmin);
    assert_eq!(admin.business_hours, Some(hours));
    assert_eq!(admin.presence, Presence::Offline);
    assert!(admin.queue_ids.is_empty());
    let agent = users::create(
        db,
        a,
        &NewUser {
            email: "bruno@example.com".into(),
            name: "Bruno".into(),
            ..NewUser::default()
        },
    )
    .await?;
    assert_eq!(
        (agent.profile, agent.locale.as_str(), agent.timezone.clone()),
        (Some(Profile::User), "pt-BR", None)
    );
    let other = users::create(
        db,
        b,
        &NewUser {
            email: "carla@beta.com".into(),
            name: "Carla".into(),
            profile: Profile::Supervisor,
            locale: "en".into(),
            ..NewUser::default()
        },
    )
    .await?;
    // Emails are unique across tenants, compared case-insensitively.
    match users::create(
        db,
        b,
        &NewUser {
            email: "ANA@example.com".into(),
            ..NewUser::default()
        },
    )
    .await
    {
        Err(DbError::Conflict { constraint }) => {
            assert!(constraint.contains("email"), "{constraint}")
        }
        other => panic!("duplicate email: {other:?}"),
    }
    assert!(matches!(
        users::create(
            db,
            TenantId(999_999),
            &NewUser {
                email: "x@y.z".into(),
                ..NewUser::default()
            }
        )
        .await,
        Err(DbError::UnknownReference {
            field: "tenant_id",
            ..
        })
    ));
    let root =
        users::platform_create_superadmin(db, "Root@Platform.io", "Root", "hash-root").await?;
    assert_eq!(
        (root.tenant_id, root.profile, root.is_superadmin),
        (None, None, true)
    );
    assert_eq!(root.email, "root@platform.io");
    assert!(matches!(
        users::platform_create_superadmin(db, "bruno@EXAMPLE.com", "Dup", "h").await,
        Err(DbError::Conflict { .. })
    ));

    // Reads are tenant-scoped: another tenant (or a superadmin) is NotFound.
    assert_eq!(users::get(db, a, admin.id).await?, admin);
    assert!(is_not_found(&users::get(db, b, admin.id).await));
    assert!(is_not_found(&users::get(db, a, root.id).await));
    assert_eq!(users::platform_get(db, root.id).await?, root);
    assert_eq!(users::platform_get(db, other.id).await?, other);
    assert!(is_not_found(
        &users::platform_get(db, UserId(999_999)).await
    ));

    // Queue membership (written by the queues module) comes back ordered by queue id.
    let q1 = add_queue(db, a, "Suporte").await?;
    let q2 = add_queue(db, a, "Vendas").await?;
    link_queue(db, a, agent.id, q2).await?;
    link_queue(db, a, agent.id, q1).await?;
    link_queue(db, a, admin.id, q2).await?;
    assert_eq!(users::get(db, a, agent.id).await?.queue_ids, vec![q1, q2]);
    let listed = users::list(db, a).await?;
    assert_eq!(
        listed.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        vec!["Ana", "Bruno"]
    );
    assert_eq!(listed[0].queue_ids, vec![q2]);
    assert_eq!(listed[1].queue_ids, vec![q1, q2]);
    assert_eq!(
        users::list(db, b)
            .await?
            .iter()
            .map(|u| u.id)
            .collect::<Vec<_>>(),
        vec![other.id]
    );

    // Update: partial, nullable fields cleared with Some(None), email lower-cased.
    let patched = users::update(
        db,
        a,
        admin.id,
        &UserPatch {
            name: Some("Ana Maria".into()),
            email: Some("ANA.MARIA@Example.com".into()),
            business_hours: Some(None),
            timezone: Some(Some("America/Sao_Paulo".into())),
            locale: Some("en".into()),
            ..UserPatch::default()
        },
    )
    .await?;
    assert_eq!(patched.name, "Ana Maria");
    assert_eq!(patched.email, "ana.maria@example.com");
    assert_eq!(patched.business_hours, None);
    assert_eq!(patched.timezone.as_deref(), Some("America/Sao_Paulo"));
    assert_eq!(patched.locale, "en");
    assert_eq!(patched.profile, Some(Profile::Admin));
    assert_eq!(patched.queue_ids, vec![q2]);
    assert!(patched.updated_at >= admin.updated_at);
    let unchanged = users::update(db, a, admin.id, &UserPatch::default()).await?;
    assert_eq!(unchanged.timezone, patched.timezone);
    let promoted = users::update(
        db,
        a,
        agent.id,
        &UserPatch {
            profile: Some(Profile::Supervisor),
            ..UserPatch::default()
        },
    )
    .await?;
    assert_eq!(promoted.profile, Some(Profile::Supervisor));
    assert!(is_not_found(
        &users::update(
            db,
            b,
            admin.id,
            &UserPatch {
                name: Some("x".into()),
                ..UserPatch::default()
            }
        )
        .await
    ));
    match users::update(
        db,
        a,
        agent.id,
        &UserPatch {
            email: Some("Carla@Beta.com".into()),
            ..UserPatch::default()
        },
    )
    .await
    {
        Err(DbError::Conflict { constraint }) => {
            assert!(constraint.contains("email"), "{constraint}")
        }
        other => panic!("email taken on update: {other:?}"),
    }

    // Passwords and login (tenant-less, case-insensitive).
    users::set_password(db, Some(a), admin.id, "hash-ana-2").await?;
    assert!(is_not_found(
        &users::set_password(db, Some(b), admin.id, "x").await
    ));
    assert!(is_not_found(
        &users::set_password(db, None, admin.id, "x").await
    ));
    users::set_password(db, None, root.id, "hash-root-2").await?;
    let (found, hash) = users::platform_find_for_login(db, " Ana.Maria@EXAMPLE.com")
        .await?
        .ok_or("login")?;
    assert_eq!((found.id, hash.as_str()), (admin.id, "hash-ana-2"));
    assert_eq!(found.queue_ids, vec![q2]);
    let (found, hash) = users::platform_find_for_login(db, "ROOT@platform.io")
        .await?
        .ok_or("root login")?;
    assert_eq!(
        (found.id, hash.as_str(), found.is_superadmin),
        (root.id, "hash-root-2", true)
    );
    assert!(
        users::platform_find_for_login(db, "ana@example.com")
            .await?
            .is_none()
    );

    // Presence: the pause reason is kept only while paused.
    users::set_presence(db, a, agent.id, Presence::Paused, Some("almoço")).await?;
    let paused = users::get(db, a, agent.id).await?;
    assert_eq!(
        (paused.presence, paused.pause_reason.as_deref()),
        (Presence::Paused, Some("almoço"))
    );
    users::set_presence(db, a, agent.id, Presence::Online, Some("ignored")).await?;
    let online = users::get(db, a, agent.id).await?;
    assert_eq!(
        (online.presence, online.pause_reason),
        (Presence::Online, None)
    );
    assert!(is_not_found(
        &users::set_presence(db, b, agent.id, Presence::Online, None).await
    ));

    assert_eq!(users::list_admin_ids(db, a).await?, vec![admin.id]);
    assert!(users::list_admin_ids(db, b).await?.is_empty());
    assert_eq!(users::platform_count(db).await?, 4);
    assert_eq!(users::count_in_tenant(db, a).await?, 2);
    assert_eq!(users::count_in_tenant(db, b).await?, 1);

    // Delete: only inside the user's tenant.
    let temp = users::create(
        db,
        a,
        &NewUser {
            email: "temp@example.com".into(),
            name: "Temp".into(),
            ..NewUser::default()
        },
    )
    .await?;
    assert!(is_not_found(&users::delete(db, b, temp.id).await));
    users::delete(db, a, temp.id).await?;
    assert!(is_not_found(&users::get(db, a, temp.id).await));
    assert!(is_not_found(&users::delete(db, a, temp.id).await));
    assert_eq!(users::count_in_tenant(db, a).await?, 2);

    Ok(People {
        admin: admin.id,
        agent: agent.id,
        other: other.id,
        root: root.id,
    })
}

fn new_token(hash: &str, user: UserId, tenant: Option<TenantId>, kind: TokenKind) -> NewToken {
    NewToken {
        token_hash: hash.into(),
        user_id: user,
        tenant_id: tenant,
        kind,
        name: None,
        ip: Some("203.0.113.7".into()),
        user_agent: Some("story".into()),
        expires_at: None,
    }
}

async fn token_story(db: &Db, a: TenantId, b: TenantId, people: &People) -> Result {
    let now = Timestamp::now();
    let session = tokens::platform_create(
        db,
        &NewToken {
            expires_at: Some(now.plus_millis(1_000)),
            ..new_token("h-session-1", people.admin, Some(a), TokenKind::Session)
        },
    )
    .await?;
    assert_eq!(
        (session.user_id, session.tenant_id, session.kind),
        (people.admin, Some(a), TokenKind::Session)
    );
    assert_eq!(session.expires_at, Some(now.plus_millis(1_000)));
    assert_eq!(session.ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(session.created_at, session.last_used_at);
    let session2 = tokens::platform_create(
        db,
        &new_token("h-session-2", people.admin, Some(a), TokenKind::Session),
    )
    .await?;
    let api = tokens::platform_create(
        db,
        &NewToken {
            name: Some("CI".into()),
            ..new_token("h-api-1", people.admin, Some(a), TokenKind::Api)
        },
    )
    .await?;
    assert_eq!(api.name.as_deref(), Some("CI"));
    let root = tokens::platform_create(
        db,
        &new_token("h-root", people.root, None, TokenKind::Session),
    )
    .await?;
    assert_eq!(root.tenant_id, None);

    // A token must name the user's own tenant; unknown users are refused; hashes are unique.
    assert!(matches!(
        tokens::platform_create(
            db,
            &new_token("h-x", people.admin, Some(b), TokenKind::Session)
        )
        .await,
        Err(DbError::UnknownReference {
            field: "user_id",
            ..
        })
    ));
    assert!(matches!(
        tokens::platform_create(
            db,
            &new_token("h-y", UserId(999_999), None, TokenKind::Session)
        )
        .await,
        Err(DbError::UnknownReference {
            field: "user_id",
            ..
        })
    ));
    assert!(matches!(
        tokens::platform_create(
            db,
            &new_token("h-session-1", people.agent, Some(a), TokenKind::Session)
        )
        .await,
        Err(DbError::Conflict { .. })
    ));

    // Expiry: valid strictly before expires_at.
    assert_eq!(
        tokens::platform_find_by_hash(db, "h-session-1", now).await?,
        Some(session.clone())
    );
    assert!(
        tokens::platform_find_by_hash(db, "h-session-1", now.plus_millis(999))
            .await?
            .is_some()
    );
    assert_eq!(
        tokens::platform_find_by_hash(db, "h-session-1", now.plus_millis(1_000)).await?,
        None
    );
    assert!(
        tokens::platform_find_by_hash(db, "h-api-1", now.plus_minutes(1_000_000))
            .await?
            .is_some()
    );
    assert_eq!(tokens::platform_find_by_hash(db, "nope", now).await?, None);

    // The lookup of every request: token and user (with queues) in one answer, same expiry.
    let (token, user) = tokens::platform_session(db, "h-session-1", now)
        .await?
        .ok_or("session 1")?;
    assert_eq!(token, session);
    assert_eq!(user, users::platform_get(db, token.user_id).await?);
    assert_eq!(
        tokens::platform_session(db, "h-session-1", now.plus_millis(1_000)).await?,
        None
    );
    assert_eq!(tokens::platform_session(db, "nope", now).await?, None);
    let (_, root_user) = tokens::platform_session(db, "h-root", now)
        .await?
        .ok_or("root session")?;
    assert!(
        root_user.is_superadmin,
        "a superadmin has no tenant to check"
    );
    tokens::platform_create(
        db,
        &new_token("h-agent", people.agent, Some(a), TokenKind::Session),
    )
    .await?;
    let (_, agent) = tokens::platform_session(db, "h-agent", now)
        .await?
        .ok_or("agent session")?;
    assert!(!agent.queue_ids.is_empty());
    assert_eq!(agent, users::platform_get(db, people.agent).await?);

    tokens::platform_touch(db, session2.id, now.plus_millis(5_000)).await?;
    let touched = tokens::platform_find_by_hash(db, "h-session-2", now)
        .await?
        .ok_or("session 2")?;
    assert_eq!(touched.last_used_at, now.plus_millis(5_000));

    let sessions = tokens::list_for_user(db, people.admin, TokenKind::Session).await?;
    assert_eq!(
        sessions.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![session.id, session2.id]
    );
    assert_eq!(
        tokens::list_for_user(db, people.admin, TokenKind::Api).await?,
        vec![api.clone()]
    );

    assert_eq!(
        tokens::platform_delete_expired(db, now.plus_millis(999)).await?,
        0
    );
    assert_eq!(
        tokens::platform_delete_expired(db, now.plus_millis(1_000)).await?,
        1
    );
    assert_eq!(
        tokens::list_for_user(db, people.admin, TokenKind::Session)
            .await?
            .len(),
        1
    );
    assert!(is_not_found(
        &tokens::platform_touch(db, session.id, now).await
    ));

    // Password change: every other token of the user goes, the current one stays.
    tokens::platform_create(
        db,
        &new_token("h-session-3", people.admin, Some(a), TokenKind::Session),
    )
    .await?;
    assert_eq!(
        tokens::platform_delete_for_user_except(db, people.admin, Some("h-session-3")).await?,
        2
    );
    assert!(
        tokens::platform_find_by_hash(db, "h-session-3", now)
            .await?
            .is_some()
    );
    assert!(
        tokens::platform_find_by_hash(db, "h-api-1", now)
            .await?
            .is_none()
    );
    assert!(
        tokens::platform_find_by_hash(db, "h-root", now)
            .await?
            .is_some()
    );
    assert_eq!(
        tokens::platform_delete_for_user_except(db, people.admin, None).await?,
        1
    );
    assert!(
        tokens::list_for_user(db, people.admin, TokenKind::Session)
            .await?
            .is_empty()
    );

    assert!(tokens::platform_delete_by_hash(db, "h-root").await?);
    assert!(!tokens::platform_delete_by_hash(db, "h-root").await?);

    // Tokens go with their user.
    let temp = users::create(
        db,
        b,
        &NewUser {
            email: "gone@beta.com".into(),
            name: "Gone".into(),
            ..NewUser::default()
        },
    )
    .await?;
    tokens::platform_create(
        db,
        &new_token("h-gone", temp.id, Some(b), TokenKind::Session),
    )
    .await?;
    users::delete(db, b, temp.id).await?;
    assert_eq!(
        tokens::platform_find_by_hash(db, "h-gone", now).await?,
        None
    );
    Ok(())
}

async fn settings_story(db: &Db, a: TenantId, b: TenantId, people: &People) -> Result {
    assert!(settings::list(db, a).await?.is_empty());
    assert_eq!(settings::get(db, a, "fast_send").await?, None);
    settings::put(db, a, "fast_send", &json!(true), Some(people.admin)).await?;
    settings::put(db, a, "fast_send", &json!(false), Some(people.agent)).await?;
    assert_eq!(settings::get(db, a, "fast_send").await?, Some(json!(false)));
    settings::put(db, a, "blocked_numbers", &json!(["+5511999990000"]), None).await?;
    assert_eq!(
        settings::list(db, a).await?,
        vec![
            ("blocked_numbers".to_owned(), json!(["+5511999990000"])),
            ("fast_send".to_owned(), json!(false))
        ]
    );
    assert!(matches!(
        settings::put(db, a, "fast_send", &json!(true), Some(people.other)).await,
        Err(DbError::UnknownReference {
            field: "updated_by",
            ..
        })
    ));
    assert!(matches!(
        settings::put(db, TenantId(999_999), "fast_send", &json!(true), None).await,
        Err(DbError::UnknownReference {
            field: "tenant_id",
            ..
        })
    ));
    assert_eq!(settings::get(db, b, "fast_send").await?, None);
    settings::put(db, b, "fast_send", &json!(true), Some(people.other)).await?;
    assert_eq!(settings::get(db, b, "fast_send").await?, Some(json!(true)));
    assert_eq!(settings::get(db, a, "fast_send").await?, Some(json!(false)));
    assert!(settings::delete(db, a, "fast_send").await?);
    assert!(!settings::delete(db, a, "fast_send").await?);
    assert_eq!(settings::get(db, a, "fast_send").await?, None);
    assert_eq!(settings::list(db, a).await?.len(), 1);
    assert_eq!(settings::list(db, b).await?.len(), 1);
    Ok(())
}

fn entry(user: UserId, action: &str, entity_id: &str) -> NewAudit {
    NewAudit {
        user_id: Some(user),
        action: action.into(),
        entity: "setting".into(),
        entity_id: Some(entity_id.into()),
        detail: json!({"from": false, "to": true}),
        ip: Some("198.51.100.1".into()),
    }
}

async fn audit_story(db: &Db, a: TenantId, b: TenantId, people: &People) -> Result {
    let first = audit::record(
        db,
        Some(a),
        &entry(people.admin, "settings.update", "fast_send"),
    )
    .await?;
    assert_eq!(first.tenant_id, Some(a));
    assert_eq!(first.detail, json!({"from": false, "to": true}));
    let second = audit::record(
        db,
        Some(a),
        &entry(people.admin, "settings.update", "allow_pause"),
    )
    .await?;
    let third = audit::record(db, Some(a), &entry(people.agent, "user.update", "2")).await?;
    let in_b = audit::record(
        db,
        Some(b),
        &entry(people.other, "settings.update", "fast_send"),
    )
    .await?;
    let platform = audit::record(
        db,
        None,
        &NewAudit {
            user_id: Some(people.root),
            action: "tenant.create".into(),
            entity: "tenant".into(),
            ..NewAudit::default()
        },
    )
    .await?;
    assert_eq!(
        (
            platform.tenant_id,
            platform.detail.clone(),
            platform.ip.clone()
        ),
        (None, json!(null), None)
    );
    assert!(matches!(
        audit::record(db, Some(TenantId(999_999)), &NewAudit::default()).await,
        Err(DbError::UnknownReference {
            field: "tenant_id",
            ..
        })
    ));

    // Inside another repository's transaction: rolled back with it, or committed with it.
    let kept = atende_db::write!(db, pool => {
        let mut tx = pool.begin().await?;
        audit::record_with(&mut *tx, Some(a), &entry(people.admin, "rolled.back", "x")).await?;
        tx.rollback().await?;
        let mut tx = pool.begin().await?;
        let kept = audit::record_with(&mut *tx, Some(a), &entry(people.admin, "committed", "y")).await?;
        tx.commit().await?;
        kept
    });

    let all = audit::list(db, a, 10, None).await?;
    let ids: Vec<AuditId> = all.iter().map(|e| e.id).collect();
    assert_eq!(ids, vec![kept.id, third.id, second.id, first.id]);
    assert_eq!(all[3], first);
    let page1 = audit::list(db, a, 2, None).await?;
    assert_eq!(
        page1.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![kept.id, third.id]
    );
    let page2 = audit::list(db, a, 2, Some(third.id)).await?;
    assert_eq!(
        page2.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![second.id, first.id]
    );
    assert!(audit::list(db, a, 2, Some(first.id)).await?.is_empty());
    // A cursor from another tenant leaks nothing.
    assert!(audit::list(db, a, 10, Some(in_b.id)).await?.is_empty());
    assert_eq!(audit::list(db, b, 10, None).await?, vec![in_b]);
    assert_eq!(
        audit::platform_list(db, 10, None).await?,
        vec![platform.clone()]
    );
    assert!(
        audit::platform_list(db, 10, Some(platform.id))
            .await?
            .is_empty()
    );
    Ok(())
}

fn new_job(kind: &str, due_at: Timestamp, dedupe_key: Option<&str>) -> NewJob {
    NewJob {
        kind: kind.into(),
        payload: json!({"kind": kind}),
        total: 0,
        due_at,
        dedupe_key: dedupe_key.map(str::to_owned),
    }
}

fn ids(jobs: &[atende_domain::Job]) -> Vec<JobId> {
    jobs.iter().map(|j| j.id).collect()
}

async fn job_story(db: &Db, a: TenantId, b: TenantId) -> Result {
    let now = Timestamp::now();
    let stuck = jobs::create(
        db,
        a,
        &new_job("send_stuck_messages", now.plus_millis(-10), Some("m:stuck")),
    )
    .await?;
    assert_eq!(
        (stuck.status, stuck.attempts, stuck.progress),
        (JobStatus::Queued, 0, 0)
    );
    assert_eq!(stuck.payload, json!({"kind": "send_stuck_messages"}));
    // Clicked twice: the live job comes back.
    let again = jobs::create(db, a, &new_job("send_stuck_messages", now, Some("m:stuck"))).await?;
    assert_eq!(again, stuck);
    // Same key in another tenant is another job.
    let in_b = jobs::create(
        db,
        b,
        &new_job("send_stuck_messages", now.plus_millis(-5), Some("m:stuck")),
    )
    .await?;
    assert_ne!(in_b.id, stuck.id);
    let later = jobs::create(
        db,
        a,
        &new_job("auto_resolve", now.plus_millis(60_000), None),
    )
    .await?;
    assert_eq!(jobs::get(db, a, stuck.id).await?, stuck);
    assert!(is_not_found(&jobs::get(db, b, stuck.id).await));
    assert!(matches!(
        jobs::create(db, TenantId(999_999), &new_job("x", now, None)).await,
        Err(DbError::UnknownReference {
            field: "tenant_id",
            ..
        })
    ));

    // Claim: due jobs of every tenant, by due time, leased.
    let claimed = jobs::platform_claim_due(db, now, "worker-1", 1_000, 10).await?;
    assert_eq!(ids(&claimed), vec![stuck.id, in_b.id]);
    for job in &claimed {
        assert_eq!(
            (job.status, job.attempts, job.lease_until),
            (JobStatus::Running, 1, Some(now.plus_millis(1_000)))
        );
    }
    // Running under a live lease, or not due yet: nothing to claim.
    assert!(
        jobs::platform_claim_due(db, now.plus_millis(999), "worker-2", 1_000, 10)
            .await?
            .is_empty()
    );
    // Still live while running: dedupe returns it.
    assert_eq!(
        jobs::create(db, a, &new_job("send_stuck_messages", now, Some("m:stuck")))
            .await?
            .id,
        stuck.id
    );
    // The lease expired (worker-1 died): claimed again.
    let reclaimed =
        jobs::platform_claim_due(db, now.plus_millis(1_000), "worker-2", 1_000, 1).await?;
    assert_eq!(ids(&reclaimed), vec![stuck.id]);
    assert_eq!(reclaimed[0].attempts, 2);
    assert_eq!(reclaimed[0].lease_until, Some(now.plus_millis(2_000)));

    jobs::set_progress(db, a, stuck.id, 5, 10).await?;
    let progressed = jobs::get(db, a, stuck.id).await?;
    assert_eq!((progressed.progress, progressed.total), (5, 10));
    assert!(is_not_found(
        &jobs::set_progress(db, b, stuck.id, 6, 10).await
    ));

    jobs::finish(db, a, stuck.id, &json!({"requeued": 3})).await?;
    let done = jobs::get(db, a, stuck.id).await?;
    assert_eq!(
        (done.status, done.result.clone(), done.lease_until),
        (JobStatus::Done, Some(json!({"requeued": 3})), None)
    );
    assert!(is_not_found(
        &jobs::finish(db, b, stuck.id, &json!({})).await
    ));
    // Finished: the same key starts a new job.
    let rerun = jobs::create(db, a, &new_job("send_stuck_messages", now, Some("m:stuck"))).await?;
    assert_ne!(rerun.id, stuck.id);

    jobs::fail(db, b, in_b.id, "boom").await?;
    let failed = jobs::get(db, b, in_b.id).await?;
    assert_eq!(
        (failed.status, failed.error.as_deref(), failed.lease_until),
        (JobStatus::Failed, Some("boom"), None)
    );
    assert!(is_not_found(&jobs::fail(db, a, in_b.id, "x").await));

    let claimed =
        jobs::platform_claim_due(db, now.plus_millis(1_500), "worker-3", 1_000, 10).await?;
    assert_eq!(ids(&claimed), vec![rerun.id]);
    jobs::retry_later(db, a, rerun.id, now.plus_millis(5_000), "provider down").await?;
    let retrying = jobs::get(db, a, rerun.id).await?;
    assert_eq!(
        (
            retrying.status,
            retrying.due_at,
            retrying.error.as_deref(),
            retrying.lease_until,
            retrying.attempts
        ),
        (
            JobStatus::Queued,
            now.plus_millis(5_000),
            Some("provider down"),
            None,
            1
        )
    );
    assert!(is_not_found(
        &jobs::retry_later(db, b, rerun.id, now, "x").await
    ));
    assert!(
        jobs::platform_claim_due(db, now.plus_millis(4_999), "worker-3", 1_000, 10)
            .await?
            .is_empty()
    );
    let claimed =
        jobs::platform_claim_due(db, now.plus_millis(5_000), "worker-3", 1_000, 10).await?;
    assert_eq!(ids(&claimed), vec![rerun.id]);
    assert_eq!(claimed[0].attempts, 2);
    jobs::finish(db, a, rerun.id, &json!({"requeued": 0})).await?;

    // The limit is honoured; the earliest due come first.
    let mut extra = Vec::new();
    for n in 0..3 {
        extra.push(
            jobs::create(
                db,
                b,
                &new_job("validate_contacts", now.plus_millis(10_000 + n), None),
            )
            .await?
            .id,
        );
    }
    let claimed =
        jobs::platform_claim_due(db, now.plus_millis(20_000), "worker-4", 1_000, 2).await?;
    assert_eq!(ids(&claimed), extra[..2].to_vec());
    let claimed =
        jobs::platform_claim_due(db, now.plus_millis(20_000), "worker-4", 1_000, 10).await?;
    assert_eq!(ids(&claimed), vec![extra[2]]);
    // `later` (due at +60 s) was never claimed.
    assert_eq!(jobs::get(db, a, later.id).await?.status, JobStatus::Queued);
    Ok(())
}
