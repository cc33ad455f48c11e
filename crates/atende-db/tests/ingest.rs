//! The ingest transaction (SPEC §3, §4 steps 4–6) on SQLite and, with `TEST_DATABASE_URL`, on
//! PostgreSQL: ticket find-or-create with the reopen window, one message per provider id, racing
//! first messages of a new contact making exactly one ticket, the push-name rule, group commit.

use atende_db::connections::{self, NewConnection};
use atende_db::inbound_events::{self, RecordOutcome};
use atende_db::ingest::{
    self, BatchDone, BatchWrite, ContactUpsert, IngestInput, IngestMessage, IngestOutcome,
    Ingested, NewTicketRoute,
};
use atende_db::queues::{self, NewQueue};
use atende_db::testing::TestDb;
use atende_db::{Db, contacts, tenants, tickets};
use atende_domain::{
    ChannelKind, ConnectionId, ContactId, InboundOutcome, MessageAuthor, MessageDirection,
    MessageKind, MessageStatus, NameSource, QueueId, TenantId, TicketStatus, Timestamp,
};
use std::future::Future;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Runs `story` on every backend, collecting failures so one backend's failure does not hide
/// the other's.
async fn on_every_store<F, Fut>(name: &str, story: F) -> Result
where
    F: Fn(Db) -> Fut,
    Fut: Future<Output = Result>,
{
    TestDb::on_every_store(story)
        .await
        .map_err(|failures| format!("{name}: {failures}").into())
}

struct World {
    tenant: TenantId,
    queue: QueueId,
    connection: ConnectionId,
}

async fn world(db: &Db) -> Result<World> {
    let tenant = tenants::platform_create(db, "acme", "Acme").await?.id;
    let queue = queues::create(
        db,
        tenant,
        &NewQueue {
            name: "Suporte".into(),
            color: "#336699".into(),
            greeting: String::new(),
            absence_message: String::new(),
            business_hours: None,
        },
    )
    .await?
    .id;
    let connection = connections::create(
        db,
        tenant,
        &NewConnection {
            kind: ChannelKind::Webchat,
            name: "Site".into(),
            default_queue_id: Some(queue),
            default_flow_id: None,
            public_key: Some(format!("wc_{}", tenant.0)),
            credentials: None,
            send_delay_min_ms: None,
            send_delay_max_ms: None,
            cadence_enabled: None,
        },
    )
    .await?
    .id;
    Ok(World {
        tenant,
        queue,
        connection,
    })
}

async fn contact(db: &Db, w: &World, visitor: &str, push_name: Option<&str>) -> Result<ContactId> {
    let upsert = ContactUpsert {
        channel: ChannelKind::Webchat,
        external_id: visitor,
        push_name,
        phone: None,
        is_group: false,
        push_name_renames: true,
    };
    let found = ingest::find_contact(db, w.tenant, ChannelKind::Webchat, visitor).await?;
    Ok(ingest::upsert_contact(db, w.tenant, &upsert, found)
        .await?
        .contact
        .id)
}

fn text(provider_id: &str, body: &str, sent_at: Timestamp) -> IngestMessage {
    IngestMessage {
        direction: MessageDirection::In,
        author: MessageAuthor::Contact,
        kind: MessageKind::Text,
        body: body.into(),
        media: None,
        provider_id: Some(provider_id.into()),
        quoted_provider_id: None,
        status: MessageStatus::Delivered,
        sent_at,
    }
}

fn input(w: &World, contact: ContactId, message: IngestMessage, route: bool) -> IngestInput {
    IngestInput {
        contact_id: contact,
        connection_id: w.connection,
        is_group: false,
        reopen_window_minutes: 120,
        route: route.then_some(NewTicketRoute {
            status: TicketStatus::Pending,
            owner_id: None,
            queue_id: Some(w.queue),
            bot_flow: None,
            wallet_overflowed: false,
        }),
        message,
        inbound_event: None,
        now: Timestamp::now(),
    }
}

fn stored(outcome: IngestOutcome) -> Box<Ingested> {
    match outcome {
        IngestOutcome::Stored(stored) => stored,
        other => panic!("expected the message to be stored, got {other:?}"),
    }
}

/// Stores a text message from `contact` now, with the default route.
async fn send(
    db: &Db,
    w: &World,
    contact: ContactId,
    provider_id: &str,
    body: &str,
) -> Result<Box<Ingested>> {
    let message = text(provider_id, body, Timestamp::now());
    Ok(stored(
        ingest::ingest(db, w.tenant, &input(w, contact, message, true)).await?,
    ))
}

/// Closes the ticket as if it had closed `minutes_ago`.
async fn close(db: &Db, w: &World, ticket: atende_domain::TicketId, minutes_ago: i64) -> Result {
    let at = Timestamp::now().plus_minutes(-minutes_ago);
    tickets::set_status(
        db,
        w.tenant,
        ticket,
        TicketStatus::Closed,
        None,
        Some(w.queue),
        at,
    )
    .await?;
    Ok(())
}

async fn count(db: &Db, sql: &'static str, tenant: TenantId) -> Result<i64> {
    Ok(match db {
        Db::Sqlite(store) => {
            sqlx::query_scalar(sql)
                .bind(tenant.0)
                .fetch_one(&store.read)
                .await?
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar(sql)
                .bind(tenant.0)
                .fetch_one(pool)
                .await?
        }
    })
}

#[tokio::test]
async fn first_message_creates_the_routed_ticket_and_later_ones_append_to_it() -> Result {
    on_every_store("append", |db| async move {
        let w = world(&db).await?;
        let ana = contact(&db, &w, "v_ana", Some("Ana")).await?;
        let at = Timestamp::now();

        let unrouted =
            ingest::ingest(&db, w.tenant, &input(&w, ana, text("p1", "oi", at), false)).await?;
        assert_eq!(
            unrouted,
            IngestOutcome::NeedsRouting,
            "a new ticket waits for routing"
        );

        let first = stored(
            ingest::ingest(&db, w.tenant, &input(&w, ana, text("p1", "oi", at), true)).await?,
        );
        assert!(first.created && !first.reopened && first.before.is_none());
        assert_eq!(first.ticket.status, TicketStatus::Pending);
        assert_eq!(first.ticket.queue_id, Some(w.queue));
        assert_eq!(first.ticket.unread, 1);
        assert_eq!(first.ticket.last_message, "oi");
        assert_eq!(first.ticket.last_message_at, Some(at));
        assert_eq!(first.ticket.last_inbound_at, Some(at));
        assert!(
            !first.ticket.protocol.is_empty(),
            "a new ticket gets its protocol"
        );
        assert_eq!(
            first.message.queue_stamp,
            Some(w.queue),
            "stamped with the ticket's queue"
        );
        assert_eq!(
            first.message.sent_at, at,
            "sent_at is the provider's timestamp"
        );
        assert_eq!(
            tickets::cycles(&db, w.tenant, first.ticket.id).await?.len(),
            1
        );

        let later = at.plus_millis(1_000);
        let second = stored(
            ingest::ingest(
                &db,
                w.tenant,
                &input(&w, ana, text("p2", "tudo bem?", later), false),
            )
            .await?,
        );
        assert_eq!(
            second.ticket.id, first.ticket.id,
            "appended to the open ticket"
        );
        assert!(!second.created && !second.reopened);
        assert_eq!(
            second.before.as_ref().map(|t| t.unread),
            Some(1),
            "before-facts are the old ticket"
        );
        assert_eq!(second.ticket.unread, 2);
        assert_eq!(second.ticket.last_message, "tudo bem?");

        // A late delivery of an older message does not become the preview.
        let older = stored(
            ingest::ingest(
                &db,
                w.tenant,
                &input(&w, ana, text("p0", "antiga", at.plus_millis(-5_000)), false),
            )
            .await?,
        );
        assert_eq!(older.ticket.last_message, "tudo bem?");
        assert_eq!(older.ticket.last_message_at, Some(later));
        assert_eq!(older.ticket.unread, 3);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn repeated_provider_id_is_a_duplicate_and_changes_nothing() -> Result {
    on_every_store("duplicate", |db| async move {
        let w = world(&db).await?;
        let ana = contact(&db, &w, "v_ana", None).await?;
        let at = Timestamp::now();
        let first = stored(
            ingest::ingest(&db, w.tenant, &input(&w, ana, text("same", "oi", at), true)).await?,
        );
        let again = ingest::ingest(
            &db,
            w.tenant,
            &input(&w, ana, text("same", "oi de novo", at), true),
        )
        .await?;
        assert_eq!(again, IngestOutcome::Duplicate(first.message.id));
        let ticket = tickets::get(&db, w.tenant, first.ticket.id).await?;
        assert_eq!((ticket.unread, ticket.last_message.as_str()), (1, "oi"));
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM messages WHERE tenant_id = $1",
                w.tenant
            )
            .await?,
            1
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn closed_ticket_reopens_within_the_window_and_a_new_ticket_starts_after_it() -> Result {
    on_every_store("reopen", |db| async move {
        let w = world(&db).await?;
        let ana = contact(&db, &w, "v_ana", None).await?;
        let first = send(&db, &w, ana, "a", "oi").await?;
        let ticket = first.ticket.id;

        // Closed 10 minutes ago, window 120 minutes: the same ticket comes back in a new cycle.
        close(&db, &w, ticket, 10).await?;
        let reopened = send(&db, &w, ana, "b", "voltei").await?;
        assert_eq!(reopened.ticket.id, ticket);
        assert!(reopened.reopened && !reopened.created);
        assert_eq!(
            reopened.before.as_ref().map(|t| t.status),
            Some(TicketStatus::Closed)
        );
        assert_eq!(reopened.ticket.status, TicketStatus::Pending);
        assert_eq!(reopened.ticket.closed_at, None);
        let cycles = tickets::cycles(&db, w.tenant, ticket).await?;
        assert_eq!(cycles.len(), 2, "a new cycle");
        assert!(cycles[0].closed_at.is_some() && cycles[1].closed_at.is_none());

        // Closed 3 hours ago: outside the window, a new ticket starts.
        close(&db, &w, ticket, 180).await?;
        let fresh = send(&db, &w, ana, "c", "de novo").await?;
        assert_ne!(fresh.ticket.id, ticket);
        assert!(fresh.created);

        // Window 0: never reopens, even a ticket closed a second ago.
        close(&db, &w, fresh.ticket.id, 0).await?;
        let mut zero = input(&w, ana, text("d", "oi", Timestamp::now()), true);
        zero.reopen_window_minutes = 0;
        let third = stored(ingest::ingest(&db, w.tenant, &zero).await?);
        assert!(third.created);
        assert_ne!(third.ticket.id, fresh.ticket.id);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn racing_first_messages_of_a_new_contact_make_one_contact_one_ticket_and_every_message()
-> Result {
    on_every_store("race", |db| async move {
        let w = std::sync::Arc::new(world(&db).await?);
        let mut tasks = Vec::new();
        for n in 0..200 {
            let (db, w) = (db.clone(), w.clone());
            tasks.push(tokio::spawn(async move {
                let ana = contact(&db, &w, "v_racer", Some("Ana")).await?;
                let mut attempt = input(
                    &w,
                    ana,
                    text(&format!("m{n}"), "oi", Timestamp::now()),
                    false,
                );
                if ingest::ingest(&db, w.tenant, &attempt).await? == IngestOutcome::NeedsRouting {
                    attempt.route = input(&w, ana, text("x", "x", Timestamp::now()), true).route;
                    stored(ingest::ingest(&db, w.tenant, &attempt).await?);
                }
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM contacts WHERE tenant_id = $1",
                w.tenant
            )
            .await?,
            1
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM tickets WHERE tenant_id = $1",
                w.tenant
            )
            .await?,
            1
        );
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) FROM messages WHERE tenant_id = $1",
                w.tenant
            )
            .await?,
            200
        );
        assert_eq!(
            count(
                &db,
                "SELECT MAX(unread) FROM tickets WHERE tenant_id = $1",
                w.tenant
            )
            .await?,
            200
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn push_name_renames_the_contact_unless_not_allowed_or_named_by_hand() -> Result {
    on_every_store("push name", |db| async move {
        let w = world(&db).await?;
        let upsert = |name: &'static str, renames: bool| ContactUpsert {
            channel: ChannelKind::Webchat,
            external_id: "v_ana",
            push_name: Some(name),
            phone: None,
            is_group: false,
            push_name_renames: renames,
        };
        let created = ingest::upsert_contact(&db, w.tenant, &upsert("Ana", true), None).await?;
        assert!(created.created);
        assert_eq!(
            (created.contact.name.as_str(), created.contact.name_source),
            ("Ana", NameSource::Push)
        );
        let id = created.contact.id;

        let find = || ingest::find_contact(&db, w.tenant, ChannelKind::Webchat, "v_ana");
        let renamed =
            ingest::upsert_contact(&db, w.tenant, &upsert("Ana Paula", true), find().await?)
                .await?;
        assert!(renamed.renamed && !renamed.created);
        assert_eq!(renamed.contact.id, id);
        assert_eq!(contacts::get(&db, w.tenant, id).await?.name, "Ana Paula");

        let kept =
            ingest::upsert_contact(&db, w.tenant, &upsert("Aninha", false), find().await?).await?;
        assert!(!kept.renamed, "keep_contact_name: the push name is ignored");
        assert_eq!(contacts::get(&db, w.tenant, id).await?.name, "Ana Paula");

        contacts::update(
            &db,
            w.tenant,
            id,
            &contacts::ContactPatch {
                name: Some("Dona Ana".into()),
                name_source: Some(NameSource::Manual),
                ..Default::default()
            },
        )
        .await?;
        let manual =
            ingest::upsert_contact(&db, w.tenant, &upsert("Aninha", true), find().await?).await?;
        assert!(
            !manual.renamed,
            "a name set by hand wins over the push name"
        );
        assert_eq!(contacts::get(&db, w.tenant, id).await?.name, "Dona Ana");

        // A stale lookup (made before the manual rename) cannot overwrite it either.
        let stale = ingest::ContactFacts {
            name_source: NameSource::Push,
            ..find().await?.ok_or("contact")?
        };
        assert!(
            !ingest::upsert_contact(&db, w.tenant, &upsert("Aninha", true), Some(stale))
                .await?
                .renamed
        );
        assert_eq!(contacts::get(&db, w.tenant, id).await?.name, "Dona Ana");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn inbound_event_is_marked_processed_with_the_message() -> Result {
    on_every_store("processed", |db| async move {
        let w = world(&db).await?;
        let ana = contact(&db, &w, "v_ana", None).await?;
        let RecordOutcome::New(event) = inbound_events::record(
            &db,
            w.tenant,
            w.connection,
            "v_ana/1",
            Timestamp::now(),
            "{}",
        )
        .await?
        else {
            panic!("new delivery");
        };
        let mut with_event = input(&w, ana, text("v_ana/1", "oi", Timestamp::now()), true);
        with_event.inbound_event = Some(event);
        stored(ingest::ingest(&db, w.tenant, &with_event).await?);
        let logged = inbound_events::get(&db, w.tenant, event).await?;
        assert_eq!(logged.outcome, InboundOutcome::Processed);
        assert!(logged.processed_at.is_some());
        Ok(())
    })
    .await
}

#[tokio::test]
async fn group_commit_applies_a_batch_and_isolates_a_failing_write() -> Result {
    on_every_store("batch", |db| async move {
        let w = world(&db).await?;
        let ana = contact(&db, &w, "v_ana", None).await?;
        let bia = contact(&db, &w, "v_bia", None).await?;
        let mut broken = input(&w, bia, text("b1", "oi", Timestamp::now()), true);
        broken.connection_id = ConnectionId(999_999); // no such connection: this one fails
        let ingest = |input| BatchWrite::Ingest { tenant: w.tenant, input: Box::new(input) };
        let record = |provider_id: &str| BatchWrite::Record {
            tenant: w.tenant,
            connection_id: w.connection,
            provider_id: provider_id.into(),
            received_at: Timestamp::now(),
            raw_body: "{}".into(),
        };
        let batch = vec![
            record("a1"),
            ingest(input(&w, ana, text("a1", "um", Timestamp::now()), true)),
            ingest(broken),
            ingest(input(&w, ana, text("a2", "dois", Timestamp::now()), true)),
            ingest(input(&w, ana, text("a1", "um de novo", Timestamp::now()), true)),
            record("a1"),
        ];
        let results = ingest::write_batch(&db, &batch).await?;
        assert_eq!(results.len(), 6);
        let event = match &results[0] {
            Ok(BatchDone::Recorded(RecordOutcome::New(event))) => *event,
            other => panic!("record: {other:?}"),
        };
        let first = match &results[1] {
            Ok(BatchDone::Ingested(IngestOutcome::Stored(stored))) => stored.clone(),
            other => panic!("first: {other:?}"),
        };
        assert!(results[2].is_err(), "the broken message fails alone");
        match &results[3] {
            Ok(BatchDone::Ingested(IngestOutcome::Stored(second))) => {
                assert_eq!(second.ticket.id, first.ticket.id);
                assert_eq!(second.ticket.unread, 2);
            }
            other => panic!("third: {other:?}"),
        }
        assert!(
            matches!(&results[4], Ok(BatchDone::Ingested(IngestOutcome::Duplicate(id))) if *id == first.message.id)
        );
        assert_eq!(
            results[5].as_ref().ok(),
            Some(&BatchDone::Recorded(RecordOutcome::Duplicate(event))),
            "the same delivery twice in one batch is a duplicate"
        );
        assert_eq!(count(&db, "SELECT COUNT(*) FROM messages WHERE tenant_id = $1", w.tenant).await?, 2);
        assert_eq!(count(&db, "SELECT COUNT(*) FROM inbound_events WHERE tenant_id = $1", w.tenant).await?, 1);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn conversation_shows_both_directions_ascending_and_status_moves_forward_only() -> Result {
    on_every_store("conversation", |db| async move {
        let w = world(&db).await?;
        let ana = contact(&db, &w, "v_ana", None).await?;
        let at = Timestamp::now();
        let first = stored(
            ingest::ingest(&db, w.tenant, &input(&w, ana, text("in1", "oi", at), true)).await?,
        );
        let reply = IngestMessage {
            direction: MessageDirection::Out,
            author: MessageAuthor::User,
            status: MessageStatus::Sent,
            ..text("out1", "olá, em que posso ajudar?", at.plus_millis(10))
        };
        let answered = stored(ingest::ingest(&db, w.tenant, &input(&w, ana, reply, false)).await?);
        assert_eq!(answered.ticket.unread, 1, "our own messages are not unread");
        assert_eq!(answered.ticket.last_inbound_at, Some(at));
        let third = stored(
            ingest::ingest(
                &db,
                w.tenant,
                &input(&w, ana, text("in2", "obrigada", at.plus_millis(20)), false),
            )
            .await?,
        );

        let all = ingest::conversation(&db, w.tenant, ana, w.connection, None, 50).await?;
        let bodies: Vec<&str> = all.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, vec!["oi", "olá, em que posso ajudar?", "obrigada"]);
        let after =
            ingest::conversation(&db, w.tenant, ana, w.connection, Some(first.message.id), 50)
                .await?;
        assert_eq!(
            after.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![answered.message.id, third.message.id]
        );
        let latest = ingest::conversation(&db, w.tenant, ana, w.connection, None, 1).await?;
        assert_eq!(
            latest.iter().map(|m| m.id).collect::<Vec<_>>(),
            vec![third.message.id]
        );

        let read = ingest::apply_status(
            &db,
            w.tenant,
            w.connection,
            "out1",
            MessageStatus::Read,
            None,
        )
        .await?;
        assert_eq!(read.map(|m| m.status), Some(MessageStatus::Read));
        let late = ingest::apply_status(
            &db,
            w.tenant,
            w.connection,
            "out1",
            MessageStatus::Delivered,
            None,
        )
        .await?;
        assert_eq!(late, None, "a late 'delivered' does not undo 'read'");
        assert_eq!(
            ingest::apply_status(
                &db,
                w.tenant,
                w.connection,
                "nope",
                MessageStatus::Read,
                None
            )
            .await?,
            None
        );
        let found = ingest::message_by_provider_id(&db, w.tenant, w.connection, "out1").await?;
        assert_eq!(found.map(|m| m.status), Some(MessageStatus::Read));
        Ok(())
    })
    .await
}
