//! The storage half of the maintenance actions (SPEC §10) on SQLite and, with
//! `TEST_DATABASE_URL`, on PostgreSQL: what each action finds, that every fix is guarded (applied
//! only while the row is still as it was read) and a fixed point (a second pass finds nothing),
//! that nothing crosses tenants, and the job calls the maintenance worker relies on.

use atende_db::connections::{self, NewConnection};
use atende_db::contacts::{self, NewContact};
use atende_db::jobs::{self, Created, NewJob};
use atende_db::maintenance::{self as store, StuckMessage};
use atende_db::messages::{self, NewMessage};
use atende_db::tickets::{self, NewTicket};
use atende_db::{Db, DbError, tenants, write};
use atende_domain::maintenance::{MessageDates, StuckFix, TicketDates};
use atende_domain::{
    ChannelKind, ConnectionId, ContactId, JobStatus, MessageAuthor, MessageDirection, MessageId,
    MessageKind, MessageStatus, NameSource, TenantId, TicketId, TicketStatus, Timestamp,
};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;
type Story = for<'a> fn(&'a Db) -> Pin<Box<dyn Future<Output = Result> + 'a>>;

/// Runs `story` on every store this run can reach and reports each store's failure.
async fn on_every_store(story: Story) -> Result {
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

/// A tenant with a connection, a contact and an open ticket.
struct Chat {
    tenant: TenantId,
    connection: ConnectionId,
    contact: ContactId,
    ticket: TicketId,
}

async fn chat(db: &Db, slug: &str) -> Result<Chat> {
    let tenant = tenants::platform_create(db, slug, slug).await?.id;
    let connection = connections::create(
        db,
        tenant,
        &NewConnection {
            kind: ChannelKind::WhatsappCloud,
            name: "WhatsApp".into(),
            default_queue_id: None,
            default_flow_id: None,
            public_key: None,
            credentials: None,
            send_delay_min_ms: None,
            send_delay_max_ms: None,
            cadence_enabled: None,
        },
    )
    .await?
    .id;
    let contact = contacts::create(db, tenant, &contact("José", None, vec![]))
        .await?
        .id;
    let ticket = tickets::create(
        db,
        tenant,
        &NewTicket {
            contact_id: contact,
            connection_id: connection,
            status: TicketStatus::Pending,
            owner_id: None,
            queue_id: None,
            is_group: false,
        },
    )
    .await?
    .id;
    Ok(Chat {
        tenant,
        connection,
        contact,
        ticket,
    })
}

fn contact(name: &str, phone: Option<&str>, identities: Vec<(ChannelKind, String)>) -> NewContact {
    NewContact {
        name: name.into(),
        name_source: NameSource::Manual,
        phone: phone.map(str::to_owned),
        email: None,
        avatar_url: None,
        blocked: false,
        is_group: false,
        custom_fields: json!({}),
        identities,
        wallet_user_ids: vec![],
        tag_ids: vec![],
    }
}

async fn message(
    db: &Db,
    chat: &Chat,
    direction: MessageDirection,
    body: &str,
    sent_at: Timestamp,
) -> Result<MessageId> {
    let author = match direction {
        MessageDirection::In => MessageAuthor::Contact,
        MessageDirection::Out => MessageAuthor::Bot,
    };
    let stored = messages::insert(
        db,
        chat.tenant,
        &NewMessage {
            ticket_id: chat.ticket,
            connection_id: chat.connection,
            contact_id: chat.contact,
            direction,
            author,
            author_user_id: None,
            kind: MessageKind::Text,
            body: body.into(),
            provider_id: None,
            quoted_id: None,
            status: MessageStatus::Sent,
            failure_reason: None,
            idempotency_key: None,
            queue_stamp: None,
            imported: false,
            sent_at,
        },
    )
    .await?;
    Ok(stored.id)
}

/// The outbox state of a message, as the sender and the sweeps leave it.
struct Outbox<'a> {
    status: &'a str,
    provider_id: Option<&'a str>,
    outcome_unknown: bool,
    next_attempt_at: Option<Timestamp>,
    updated_at: Timestamp,
    failure_reason: Option<&'a str>,
}

async fn set_outbox(db: &Db, id: MessageId, state: Outbox<'_>) -> Result {
    const SQL: &str = "UPDATE messages SET status = $2, provider_id = $3, outcome_unknown = $4,
        next_attempt_at = $5, updated_at = $6, failure_reason = $7 WHERE id = $1";
    write!(db, pool => {
        sqlx::query(SQL)
            .bind(id.0)
            .bind(state.status)
            .bind(state.provider_id)
            .bind(state.outcome_unknown)
            .bind(state.next_attempt_at.map(|t| t.0))
            .bind(state.updated_at.0)
            .bind(state.failure_reason)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// (status, provider id, outcome unknown, next attempt, failure reason) of a message.
type OutboxRow = (String, Option<String>, bool, Option<i64>, Option<String>);

async fn outbox_of(db: &Db, id: MessageId) -> Result<OutboxRow> {
    const SQL: &str = "SELECT status, provider_id, outcome_unknown, next_attempt_at,
        failure_reason FROM messages WHERE id = $1";
    let row: OutboxRow = write!(db, pool => sqlx::query_as(SQL).bind(id.0).fetch_one(pool).await?);
    Ok(row)
}

async fn count_messages(db: &Db) -> Result<i64> {
    let count: i64 = write!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM messages").fetch_one(pool).await?
    });
    Ok(count)
}

#[tokio::test]
async fn stuck_messages_are_found_per_tenant_and_fixed_only_while_still_stuck() -> Result {
    on_every_store(|db| Box::pin(stuck_story(db))).await
}

async fn stuck_story(db: &Db) -> Result {
    let a = chat(db, "acme").await?;
    let b = chat(db, "beta").await?;
    let now = Timestamp::now();
    let old = now.plus_minutes(-10);
    let before = now.plus_minutes(-5);
    let out = |body| message(db, &a, MessageDirection::Out, body, old);
    let overdue = out("queued, never picked up").await?;
    let retrying = out("queued, retry later").await?;
    let unconfirmed = out("sending, no answer").await?;
    let accepted = out("sending, provider id").await?;
    let in_flight = out("sending right now").await?;
    let delivered = out("sent").await?;
    let inbound = message(db, &a, MessageDirection::In, "oi", old).await?;
    let elsewhere = message(db, &b, MessageDirection::Out, "other tenant", old).await?;
    let state = |status, provider_id, next: Option<Timestamp>, updated_at| Outbox {
        status,
        provider_id,
        outcome_unknown: status == "sending",
        next_attempt_at: next,
        updated_at,
        failure_reason: None,
    };
    set_outbox(db, overdue, state("queued", None, Some(old), old)).await?;
    let later = Some(now.plus_minutes(60));
    set_outbox(db, retrying, state("queued", None, later, old)).await?;
    set_outbox(db, unconfirmed, state("sending", None, None, old)).await?;
    set_outbox(db, accepted, state("sending", Some("wamid.1"), None, old)).await?;
    set_outbox(db, in_flight, state("sending", None, None, now)).await?;
    set_outbox(db, elsewhere, state("sending", None, None, old)).await?;
    let _ = (delivered, inbound);

    assert_eq!(store::count_stuck(db, a.tenant, before).await?, 3);
    let found = store::stuck_messages(db, a.tenant, before, None, 10).await?;
    let summary: Vec<(MessageId, MessageStatus, bool)> = found
        .iter()
        .map(|m| (m.id, m.status, m.has_provider_id))
        .collect();
    assert_eq!(
        summary,
        vec![
            (overdue, MessageStatus::Queued, false),
            (unconfirmed, MessageStatus::Sending, false),
            (accepted, MessageStatus::Sending, true),
        ]
    );
    let paged = store::stuck_messages(db, a.tenant, before, Some(overdue), 1).await?;
    assert_eq!(
        paged.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec![unconfirmed]
    );
    let find = |id| found.iter().find(|m| m.id == id).cloned();
    let (Some(overdue_m), Some(unconfirmed_m), Some(accepted_m)) =
        (find(overdue), find(unconfirmed), find(accepted))
    else {
        return Err("a stuck message was not found".into());
    };

    // The other tenant's stuck message is neither found nor fixable from here.
    assert_eq!(store::count_stuck(db, b.tenant, before).await?, 1);
    let foreign = StuckMessage {
        id: elsewhere,
        ..unconfirmed_m.clone()
    };
    let fix = store::apply_stuck_fix(db, a.tenant, &foreign, StuckFix::Requeue, before, now);
    assert!(fix.await?.is_none());

    let left = store::apply_stuck_fix(db, a.tenant, &unconfirmed_m, StuckFix::Leave, before, now);
    assert!(left.await?.is_none(), "leaving writes nothing");
    assert_eq!(outbox_of(db, unconfirmed).await?.0, "sending");

    let sent = store::apply_stuck_fix(db, a.tenant, &accepted_m, StuckFix::MarkSent, before, now)
        .await?
        .ok_or("the accepted message was not marked sent")?;
    assert_eq!(
        (sent.status, sent.provider_id.as_deref()),
        (MessageStatus::Sent, Some("wamid.1"))
    );
    let requeued =
        store::apply_stuck_fix(db, a.tenant, &unconfirmed_m, StuckFix::Requeue, before, now)
            .await?
            .ok_or("the unconfirmed message was not requeued")?;
    assert_eq!(requeued.status, MessageStatus::Queued);
    assert_eq!(
        outbox_of(db, unconfirmed).await?,
        ("queued".into(), None, false, Some(now.0), None)
    );
    let due = store::apply_stuck_fix(db, a.tenant, &overdue_m, StuckFix::Requeue, before, now)
        .await?
        .ok_or("the overdue message was not made due")?;
    assert_eq!(due.status, MessageStatus::Queued);
    assert_eq!(outbox_of(db, overdue).await?.3, Some(now.0));

    // Fixed points: nothing is stuck any more, and the same fixes again change nothing.
    assert_eq!(store::count_stuck(db, a.tenant, before).await?, 0);
    for (stuck, fix) in [
        (&accepted_m, StuckFix::MarkSent),
        (&unconfirmed_m, StuckFix::Requeue),
        (&overdue_m, StuckFix::Requeue),
    ] {
        assert!(
            store::apply_stuck_fix(db, a.tenant, stuck, fix, before, now)
                .await?
                .is_none()
        );
    }
    assert_eq!(outbox_of(db, retrying).await?.3, later.map(|t| t.0));
    assert_eq!(outbox_of(db, in_flight).await?.0, "sending");
    Ok(())
}

#[tokio::test]
async fn errored_messages_are_failed_with_their_reason_and_nothing_is_deleted() -> Result {
    on_every_store(|db| Box::pin(errored_story(db))).await
}

async fn errored_story(db: &Db) -> Result {
    let a = chat(db, "acme").await?;
    let b = chat(db, "beta").await?;
    let now = Timestamp::now();
    let old = now.plus_minutes(-10);
    let before = now.plus_minutes(-5);
    let out = |chat, body| message(db, chat, MessageDirection::Out, body, old);
    let retrying = out(&a, "retry after a 503").await?;
    let flagged = out(&a, "timed out").await?;
    let abandoned = out(&a, "sender died").await?;
    let accepted = out(&a, "provider has it").await?;
    let in_flight = out(&a, "being sent").await?;
    let waiting = out(&a, "queued, no error").await?;
    let elsewhere = out(&b, "other tenant").await?;
    let state = |status, provider_id, unknown, updated_at, reason| Outbox {
        status,
        provider_id,
        outcome_unknown: unknown,
        next_attempt_at: Some(now.plus_minutes(30)),
        updated_at,
        failure_reason: reason,
    };
    let reason = Some("temporary failure: 503");
    set_outbox(db, retrying, state("queued", None, false, now, reason)).await?;
    let timeout = Some("the provider did not answer in time");
    set_outbox(db, flagged, state("sending", None, true, now, timeout)).await?;
    set_outbox(db, abandoned, state("sending", None, false, old, None)).await?;
    set_outbox(
        db,
        accepted,
        state("sending", Some("wamid.2"), true, old, None),
    )
    .await?;
    // Claimed again after an earlier error: the reason is the last try's, the send is live.
    set_outbox(db, in_flight, state("sending", None, false, now, reason)).await?;
    set_outbox(db, waiting, state("queued", None, false, now, None)).await?;
    set_outbox(db, elsewhere, state("sending", None, true, old, timeout)).await?;
    let stored = count_messages(db).await?;

    assert_eq!(store::count_errored(db, a.tenant, before).await?, 3);
    let first = store::fail_errored(db, a.tenant, before, "never confirmed", now, 2).await?;
    let rest = store::fail_errored(db, a.tenant, before, "never confirmed", now, 2).await?;
    assert_eq!((first.len(), rest.len()), (2, 1), "batched by the limit");
    let failed: Vec<(MessageId, MessageStatus, Option<String>)> = first
        .iter()
        .chain(&rest)
        .map(|m| (m.id, m.status, m.failure_reason.clone()))
        .collect();
    assert_eq!(
        failed,
        vec![
            (retrying, MessageStatus::Failed, reason.map(str::to_owned)),
            (flagged, MessageStatus::Failed, timeout.map(str::to_owned)),
            (
                abandoned,
                MessageStatus::Failed,
                Some("never confirmed".into())
            ),
        ]
    );
    assert!(!outbox_of(db, flagged).await?.2, "no longer flagged");
    assert_eq!(outbox_of(db, accepted).await?.0, "sending");
    assert_eq!(outbox_of(db, in_flight).await?.0, "sending");
    assert_eq!(outbox_of(db, waiting).await?.0, "queued");
    assert_eq!(outbox_of(db, elsewhere).await?.0, "sending");
    assert_eq!(count_messages(db).await?, stored, "nothing deleted");

    assert_eq!(store::count_errored(db, a.tenant, before).await?, 0);
    let again = store::fail_errored(db, a.tenant, before, "never confirmed", now, 2).await?;
    assert!(again.is_empty(), "a second pass changes nothing");
    assert_eq!(store::count_errored(db, b.tenant, before).await?, 1);
    Ok(())
}

#[tokio::test]
async fn phones_and_identities_change_only_while_still_as_read() -> Result {
    on_every_store(|db| Box::pin(contact_story(db))).await
}

async fn contact_story(db: &Db) -> Result {
    let a = chat(db, "acme").await?;
    let b = chat(db, "beta").await?;
    let now = Timestamp::now();
    let whatsapp = |id: &str| vec![(ChannelKind::WhatsappCloud, id.to_owned())];
    let maria = contacts::create(
        db,
        a.tenant,
        &contact("Maria", Some("(11) 98765-4321"), whatsapp("551187654321")),
    )
    .await?;
    let joana = contacts::create(
        db,
        a.tenant,
        &contact("Joana", None, whatsapp("5511912345678")),
    )
    .await?;
    assert_eq!(store::count_contacts(db, a.tenant).await?, 3);

    let fixed = store::set_phone(
        db,
        a.tenant,
        maria.id,
        "(11) 98765-4321",
        "+5511987654321",
        now,
    );
    assert!(fixed.await?);
    let stale = store::set_phone(
        db,
        a.tenant,
        maria.id,
        "(11) 98765-4321",
        "+5511000000000",
        now,
    );
    assert!(!stale.await?, "the phone changed since it was read");
    assert_eq!(
        contacts::get(db, a.tenant, maria.id)
            .await?
            .phone
            .as_deref(),
        Some("+5511987654321")
    );
    let foreign = store::set_phone(db, b.tenant, maria.id, "+5511987654321", "+1", now);
    assert!(!foreign.await?, "another tenant's contact is out of reach");

    let identity = maria.identities.first().ok_or("no identity")?;
    let renamed =
        store::rename_identity(db, a.tenant, identity.id, "551187654321", "5511987654321");
    assert!(renamed.await?);
    let found =
        contacts::find_by_identity(db, a.tenant, ChannelKind::WhatsappCloud, "5511987654321")
            .await?;
    assert_eq!(found.map(|c| c.id), Some(maria.id));
    let again = store::rename_identity(db, a.tenant, identity.id, "551187654321", "5511987654321");
    assert!(!again.await?, "already renamed");
    let taken =
        store::rename_identity(db, a.tenant, identity.id, "5511987654321", "5511912345678").await;
    assert!(
        matches!(taken, Err(DbError::Conflict { .. })),
        "another contact has that id: {taken:?}"
    );
    let _ = joana;
    Ok(())
}

#[tokio::test]
async fn misdated_imports_take_the_provider_timestamp_once() -> Result {
    on_every_store(|db| Box::pin(imported_story(db))).await
}

async fn imported_story(db: &Db) -> Result {
    let a = chat(db, "acme").await?;
    let b = chat(db, "beta").await?;
    let import_time = Timestamp::now();
    let provider_time = import_time.plus_minutes(-600);
    const IMPORT: &str =
        "UPDATE messages SET imported = TRUE, provider_timestamp = $2 WHERE id = $1";
    let mut imported = Vec::new();
    for (chat, body, kept) in [
        (&a, "one", Some(provider_time)),
        (&a, "two", Some(provider_time.plus_millis(1_000))),
        (&a, "no provider time", None),
        (&b, "other tenant", Some(provider_time)),
    ] {
        let id = message(db, chat, MessageDirection::In, body, import_time).await?;
        write!(db, pool => {
            sqlx::query(IMPORT).bind(id.0).bind(kept.map(|t| t.0)).execute(pool).await?;
        });
        imported.push(id);
    }
    let live = message(db, &a, MessageDirection::In, "live", import_time).await?;
    write!(db, pool => {
        sqlx::query("UPDATE messages SET provider_timestamp = $2 WHERE id = $1")
            .bind(live.0)
            .bind(provider_time.0)
            .execute(pool)
            .await?;
    });

    assert_eq!(store::count_misdated_imports(db, a.tenant).await?, 2);
    assert_eq!(store::count_undated_imports(db, a.tenant).await?, 1);
    let first = store::fix_misdated_imports(db, a.tenant, import_time, 1).await?;
    let rest = store::fix_misdated_imports(db, a.tenant, import_time, 10).await?;
    assert_eq!(first, vec![(imported[0], a.ticket)]);
    assert_eq!(rest, vec![(imported[1], a.ticket)]);
    assert_eq!(
        messages::get(db, a.tenant, imported[1]).await?.sent_at,
        provider_time.plus_millis(1_000)
    );
    assert_eq!(
        messages::get(db, a.tenant, live).await?.sent_at,
        import_time,
        "live messages are not imported ones"
    );
    assert!(
        store::fix_misdated_imports(db, a.tenant, import_time, 10)
            .await?
            .is_empty(),
        "a second pass changes nothing"
    );
    assert_eq!(store::count_misdated_imports(db, b.tenant).await?, 1);
    Ok(())
}

#[tokio::test]
async fn ticket_dates_are_read_with_their_messages_and_written_only_if_unchanged() -> Result {
    on_every_store(|db| Box::pin(ticket_dates_story(db))).await
}

async fn ticket_dates_story(db: &Db) -> Result {
    let a = chat(db, "acme").await?;
    let b = chat(db, "beta").await?;
    let t0 = Timestamp::now().plus_minutes(-60);
    message(db, &a, MessageDirection::In, "  oi, tudo bem?  ", t0).await?;
    message(db, &a, MessageDirection::Out, "Olá!", t0.plus_millis(5_000)).await?;
    // A transition's system note is not the ticket's last message (the live paths do not bump
    // the ticket for it), so the fix must not count it either.
    messages::insert(
        db,
        a.tenant,
        &NewMessage {
            ticket_id: a.ticket,
            connection_id: a.connection,
            contact_id: a.contact,
            direction: MessageDirection::Out,
            author: MessageAuthor::System,
            author_user_id: None,
            kind: MessageKind::SystemNote,
            body: "Atendimento encerrado".into(),
            provider_id: None,
            quoted_id: None,
            status: MessageStatus::Sent,
            failure_reason: None,
            idempotency_key: None,
            queue_stamp: None,
            imported: false,
            sent_at: t0.plus_millis(9_000),
        },
    )
    .await?;
    const BREAK: &str = "UPDATE tickets SET last_message = 'stale', last_message_at = $2,
        last_inbound_at = NULL, updated_at = $2 WHERE id = $1";
    let stale = Timestamp::now();
    write!(db, pool => {
        sqlx::query(BREAK).bind(a.ticket.0).bind(stale.0).execute(pool).await?;
    });

    assert_eq!(store::count_tickets(db, a.tenant).await?, 1);
    let page = store::ticket_dates(db, a.tenant, None, 10).await?;
    let found = *page.first().ok_or("no ticket")?;
    assert_eq!(page.len(), 1, "only the tenant's tickets");
    assert_eq!(
        found.current,
        TicketDates {
            last_message_at: Some(stale),
            last_inbound_at: None,
            updated_at: stale,
        }
    );
    assert_eq!(
        found.messages,
        MessageDates {
            latest: Some(t0.plus_millis(5_000)),
            latest_inbound: Some(t0),
        }
    );
    assert_eq!(
        store::ticket_dates_of(db, a.tenant, a.ticket).await?,
        Some(found)
    );
    assert_eq!(store::ticket_dates_of(db, a.tenant, b.ticket).await?, None);
    assert!(
        store::ticket_dates(db, a.tenant, Some(a.ticket), 10)
            .await?
            .is_empty()
    );

    let wanted = TicketDates {
        last_message_at: Some(t0.plus_millis(5_000)),
        last_inbound_at: Some(t0),
        updated_at: t0.plus_millis(5_000),
    };
    // A message stored meanwhile moved the ticket: the fix read stale dates and is refused.
    let moved = store::TicketDatesRow {
        current: TicketDates {
            updated_at: stale.plus_millis(-1),
            ..found.current
        },
        ..found
    };
    assert!(!store::set_ticket_dates(db, a.tenant, &moved, wanted).await?);
    assert!(store::set_ticket_dates(db, a.tenant, &found, wanted).await?);
    let ticket = tickets::get(db, a.tenant, a.ticket).await?;
    assert_eq!(ticket.last_message, "Olá!");
    let after = store::ticket_dates_of(db, a.tenant, a.ticket)
        .await?
        .ok_or("ticket")?;
    assert_eq!(after.current, wanted);
    assert!(
        !store::set_ticket_dates(db, a.tenant, &found, wanted).await?,
        "written once"
    );
    Ok(())
}

#[tokio::test]
async fn maintenance_jobs_are_claimed_by_kind_joined_while_live_and_leases_are_told() -> Result {
    on_every_store(|db| Box::pin(jobs_story(db))).await
}

async fn jobs_story(db: &Db) -> Result {
    let a = tenants::platform_create(db, "acme", "Acme").await?.id;
    let now = Timestamp::now();
    let new = |kind: &str, dedupe: Option<&str>| NewJob {
        kind: kind.into(),
        payload: json!({}),
        total: 0,
        due_at: now,
        dedupe_key: dedupe.map(str::to_owned),
    };
    let key = Some("maintenance.fix_ticket_dates");
    let Created::New(job) =
        jobs::create_or_join(db, a, &new("maintenance.fix_ticket_dates", key)).await?
    else {
        return Err("the first start is a new job".into());
    };
    let joined = jobs::create_or_join(db, a, &new("maintenance.fix_ticket_dates", key)).await?;
    assert_eq!(joined, Created::Live(job.clone()));
    let other = jobs::create(db, a, &new("media.download", None)).await?;

    let claimed =
        jobs::platform_claim_due_of_kind(db, "maintenance.", now, "w1", 60_000, 10).await?;
    assert_eq!(
        claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![job.id]
    );
    assert_eq!(jobs::get(db, a, other.id).await?.status, JobStatus::Queued);
    assert!(
        jobs::platform_claim_due_of_kind(db, "maintenance.", now, "w2", 60_000, 10)
            .await?
            .is_empty(),
        "a leased job is not claimed twice"
    );

    let until = now.plus_millis(120_000);
    assert!(jobs::heartbeat(db, a, job.id, "w1", 3, 10, until).await?);
    let running = jobs::get(db, a, job.id).await?;
    assert_eq!(
        (running.progress, running.total, running.lease_until),
        (3, 10, Some(until))
    );
    assert!(
        !jobs::heartbeat(db, a, job.id, "w2", 4, 10, until).await?,
        "only the lease owner reports"
    );
    // The lease expires: another worker takes the job over, and the first learns it lost it.
    let taken = jobs::platform_claim_due_of_kind(
        db,
        "maintenance.",
        until.plus_millis(1),
        "w2",
        60_000,
        10,
    )
    .await?;
    assert_eq!(
        taken.iter().map(|j| j.attempts).collect::<Vec<_>>(),
        vec![2]
    );
    assert!(!jobs::heartbeat(db, a, job.id, "w1", 5, 10, until).await?);
    jobs::finish(db, a, job.id, &json!({"fixed": 0})).await?;
    let rerun = jobs::create_or_join(db, a, &new("maintenance.fix_ticket_dates", key)).await?;
    assert!(
        matches!(rerun, Created::New(ref again) if again.id != job.id),
        "a finished job does not block a new run"
    );
    Ok(())
}
