//! Recovery of sends whose outcome is unknown (SPEC §7), on SQLite and, when `TEST_DATABASE_URL`
//! is set, on PostgreSQL: a live sender keeps its in-flight rows fresh, a dead one's rows get
//! flagged, a provider status naming an id we never learnt settles the chat's one unconfirmed
//! send, and a flagged send the provider stayed silent about goes back to the queue.

use atende_db::connections::{self, NewConnection};
use atende_db::outbox::{self, ProviderStatus};
use atende_db::users::{self, NewUser};
use atende_db::{Db, DbError, messages, tenants, testing};
use atende_domain::{
    ChannelKind, Connection, MessageId, MessageStatus, Profile, TenantId, TicketId, Timestamp,
    UserId,
};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::test]
async fn unconfirmed_sends_are_settled_by_the_provider_or_requeued_after_its_silence() -> Result {
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

struct Chat {
    tenant: TenantId,
    ticket: TicketId,
    author: UserId,
}

async fn chat(db: &Db, tenant: TenantId, connection: &Connection, phone: &str) -> Result<Chat> {
    let author = match users::create(
        db,
        tenant,
        &NewUser {
            email: format!("agent{phone}@acme.test"),
            name: "Ana".into(),
            password_hash: "x".into(),
            profile: Profile::Admin,
            ..NewUser::default()
        },
    )
    .await
    {
        Ok(user) => user.id,
        Err(error) => return Err(error.into()),
    };
    let contact = testing::phone_contact(db, tenant, phone, &[connection.kind]).await?;
    let ticket = testing::open_ticket(db, tenant, contact.id, connection.id).await?;
    Ok(Chat {
        tenant,
        ticket: ticket.id,
        author,
    })
}

async fn queue(db: &Db, chat: &Chat, body: &str) -> Result<MessageId> {
    let key = format!("key-{body}");
    testing::queue_text_reply(
        db,
        chat.tenant,
        chat.ticket,
        chat.author,
        body,
        &key,
        Timestamp::now(),
    )
    .await?
    .ok_or_else(|| "the key was used already".into())
}

fn sent<'a>(provider_id: &'a str) -> ProviderStatus<'a> {
    ProviderStatus {
        provider_id,
        status: MessageStatus::Sent,
        reason: None,
    }
}

async fn story(db: &Db) -> Result {
    let acme = tenants::platform_create(db, "acme", "Acme").await?.id;
    let beta = tenants::platform_create(db, "beta", "Beta").await?.id;
    let cloud = connections::create(
        db,
        acme,
        &NewConnection {
            kind: ChannelKind::WhatsappCloud,
            name: "Cloud".into(),
            default_queue_id: None,
            default_flow_id: None,
            public_key: None,
            credentials: Some(vec![1, 2, 3]),
            send_delay_min_ms: None,
            send_delay_max_ms: None,
            cadence_enabled: None,
        },
    )
    .await?;

    // A webhook URL names the connection only.
    let found = connections::platform_get(db, cloud.id).await?;
    assert_eq!(
        (found.tenant_id, found.kind),
        (acme, ChannelKind::WhatsappCloud)
    );
    assert!(matches!(
        connections::platform_get(db, atende_domain::ConnectionId(cloud.id.0 + 1000)).await,
        Err(DbError::NotFound)
    ));

    let ana = chat(db, acme, &cloud, "+5511900000001").await?;
    let bia = chat(db, acme, &cloud, "+5511900000002").await?;
    let first = queue(db, &ana, "a1").await?;
    let second = queue(db, &ana, "a2").await?;
    let other = queue(db, &bia, "b1").await?;

    // A live sender keeps its in-flight row fresh; a dead one's row is flagged.
    let t0 = Timestamp::now();
    assert_eq!(outbox::claim(db, acme, first, t0).await?, Some(1));
    assert_eq!(
        outbox::platform_touch_sending(db, &[first, other], t0.plus_millis(5_000)).await?,
        1,
        "only sending rows are touched"
    );
    let flagged = outbox::platform_flag_abandoned(
        db,
        t0.plus_millis(4_000),
        "interrupted",
        t0.plus_millis(6_000),
    )
    .await?;
    assert!(flagged.is_empty(), "a touched row is alive");
    let flagged = outbox::platform_flag_abandoned(
        db,
        t0.plus_millis(5_000),
        "interrupted",
        t0.plus_millis(6_000),
    )
    .await?;
    assert_eq!(
        flagged.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![first]
    );
    let unconfirmed = outbox::platform_unconfirmed(db, 10).await?;
    assert_eq!(unconfirmed.len(), 1);
    assert_eq!(unconfirmed[0].id, first);
    assert_eq!(unconfirmed[0].connection_id, cloud.id);
    assert_eq!(unconfirmed[0].flagged_at, t0.plus_millis(6_000));

    // A status naming an id we never learnt settles the chat's one unconfirmed send; the number
    // may come with or without its `+`.
    let now = t0.plus_millis(7_000);
    let kind = ChannelKind::WhatsappCloud;
    let settled = outbox::reconcile_unconfirmed(
        db,
        beta,
        cloud.id,
        kind,
        "5511900000001",
        sent("wamid.1"),
        now,
    )
    .await?;
    assert!(settled.is_none(), "another tenant settles nothing");
    let settled = outbox::reconcile_unconfirmed(
        db,
        acme,
        cloud.id,
        kind,
        "5511900000001",
        sent("wamid.1"),
        now,
    )
    .await?
    .ok_or("the unconfirmed send was not settled")?;
    assert_eq!(settled.id, first);
    assert_eq!(settled.status, MessageStatus::Sent);
    assert_eq!(settled.provider_id.as_deref(), Some("wamid.1"));
    assert!(outbox::platform_unconfirmed(db, 10).await?.is_empty());
    // A known id never lands on another message, and a chat with nothing tried settles nothing.
    assert!(
        outbox::reconcile_unconfirmed(
            db,
            acme,
            cloud.id,
            kind,
            "+5511900000001",
            sent("wamid.1"),
            now
        )
        .await?
        .is_none()
    );
    assert!(
        outbox::reconcile_unconfirmed(
            db,
            acme,
            cloud.id,
            kind,
            "5511900000002",
            sent("wamid.9"),
            now
        )
        .await?
        .is_none()
    );

    // The provider stayed silent about a flagged send: back to the queue, due now, once it has
    // waited long enough.
    assert_eq!(outbox::claim(db, acme, second, now).await?, Some(1));
    outbox::platform_flag_abandoned(db, now, "interrupted", now).await?;
    let early = outbox::requeue_unconfirmed(
        db,
        acme,
        second,
        now.plus_millis(-1),
        "silence",
        now.plus_millis(10),
    )
    .await?;
    assert!(early.is_none(), "not flagged long enough");
    let later = now.plus_millis(2_000);
    let requeued = outbox::requeue_unconfirmed(db, acme, second, now, "silence", later)
        .await?
        .ok_or("the silent send was not requeued")?;
    assert_eq!(requeued.status, MessageStatus::Queued);
    assert_eq!(requeued.failure_reason.as_deref(), Some("silence"));
    let due = outbox::platform_due(db, later, 10).await?;
    assert!(due.iter().any(|o| o.id == second && o.attempts == 1));
    // A late status for the earlier try still settles it while it waits in the queue.
    let settled = outbox::reconcile_unconfirmed(
        db,
        acme,
        cloud.id,
        kind,
        "5511900000001",
        ProviderStatus {
            provider_id: "wamid.2",
            status: MessageStatus::Failed,
            reason: Some("(131047) Re-engagement message"),
        },
        later,
    )
    .await?
    .ok_or("the tried send was not settled")?;
    assert_eq!(settled.id, second);
    assert_eq!(settled.status, MessageStatus::Failed);
    assert_eq!(
        settled.failure_reason.as_deref(),
        Some("(131047) Re-engagement message")
    );
    let stored = messages::get(db, acme, second).await?;
    assert_eq!(stored.provider_id.as_deref(), Some("wamid.2"));
    // The other chat's message was never tried: untouched.
    assert_eq!(
        messages::get(db, acme, other).await?.status,
        MessageStatus::Queued
    );
    Ok(())
}
