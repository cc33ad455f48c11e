//! The chat heads table the sender reads (`outbox_chats`, migration 0016), on SQLite and, when
//! `TEST_DATABASE_URL` is set, on PostgreSQL: after every kind of change to the outgoing messages
//! (replies, claims, outcomes, retries, snoozes, resends, contact merges, deletes) its rows equal
//! what a grouping over `messages` says, and the sender's due query answers the heads from it.

use atende_db::connections::{self, NewConnection};
use atende_db::outbox;
use atende_db::testing::{self, TestDb};
use atende_db::users::{self, NewUser};
use atende_db::{Db, tenants, write};
use atende_domain::{
    ChannelKind, ContactId, MessageId, Profile, TenantId, TicketId, Timestamp, UserId,
};
use proptest::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// One row of the table: tenant, contact, connection, head id, due time.
type HeadRow = (i64, i64, i64, i64, Option<i64>);

/// What the table must hold, computed from the messages alone: for every chat with an outgoing
/// message queued or sending, its smallest such id, due at that message's `next_attempt_at` when
/// it is queued and not due (NULL) while it is being sent.
const REFERENCE: &str = "SELECT m.tenant_id, m.contact_id, m.connection_id, m.id,
        CASE WHEN m.status = 'queued' THEN m.next_attempt_at END
    FROM messages m
    WHERE m.id IN (SELECT MIN(p.id) FROM messages p
        WHERE p.direction = 'out' AND p.status IN ('queued', 'sending')
        GROUP BY p.tenant_id, p.contact_id, p.connection_id)
    ORDER BY m.tenant_id, m.contact_id, m.connection_id";
const TABLE: &str = "SELECT tenant_id, contact_id, connection_id, head_id, due_at
    FROM outbox_chats ORDER BY tenant_id, contact_id, connection_id";

async fn rows(db: &Db, sql: &'static str) -> Result<Vec<HeadRow>> {
    let rows: Vec<HeadRow> = write!(db, pool => sqlx::query_as(sql).fetch_all(pool).await?);
    Ok(rows)
}

/// Fails with both listings when the table and the reference differ.
async fn check(db: &Db, step: &str) -> Result {
    let expected = rows(db, REFERENCE).await?;
    let table = rows(db, TABLE).await?;
    if expected != table {
        return Err(format!(
            "after {step}: outbox_chats {table:?}, but the messages say {expected:?}"
        )
        .into());
    }
    Ok(())
}

async fn exec(db: &Db, sql: &'static str, a: i64, b: i64) -> Result<u64> {
    let done = write!(db, pool => {
        sqlx::query(sql).bind(a).bind(b).execute(pool).await?.rows_affected()
    });
    Ok(done)
}

/// A tenant with two connections, two contacts (with identities on both) and an open ticket for
/// every contact + connection: four chats.
struct World {
    tenant: TenantId,
    author: UserId,
    contacts: Vec<ContactId>,
    /// The chats' tickets, contact-major.
    tickets: Vec<TicketId>,
}

static WORLDS: AtomicU64 = AtomicU64::new(0);

async fn world(db: &Db) -> Result<World> {
    let n = WORLDS.fetch_add(1, Ordering::Relaxed);
    let tenant = tenants::platform_create(db, &format!("t{n}"), "T")
        .await?
        .id;
    let author = users::create(
        db,
        tenant,
        &NewUser {
            email: format!("agent{n}@acme.test"),
            name: "Ana".into(),
            password_hash: "x".into(),
            profile: Profile::Admin,
            ..NewUser::default()
        },
    )
    .await?
    .id;
    let mut connections_made = Vec::new();
    for (kind, name) in [
        (ChannelKind::WhatsappCloud, "Cloud"),
        (ChannelKind::Telegram, "Telegram"),
    ] {
        let connection = connections::create(
            db,
            tenant,
            &NewConnection {
                kind,
                name: name.into(),
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
        connections_made.push(connection);
    }
    let mut contacts_made = Vec::new();
    let mut tickets_made = Vec::new();
    for person in 0..2 {
        let phone = format!("+55119{n:04}{person:04}");
        let kinds: Vec<ChannelKind> = connections_made.iter().map(|c| c.kind).collect();
        let contact = testing::phone_contact(db, tenant, &phone, &kinds).await?;
        for connection in &connections_made {
            let ticket = testing::open_ticket(db, tenant, contact.id, connection.id).await?;
            tickets_made.push(ticket.id);
        }
        contacts_made.push(contact.id);
    }
    Ok(World {
        tenant,
        author,
        contacts: contacts_made,
        tickets: tickets_made,
    })
}

static KEYS: AtomicU64 = AtomicU64::new(0);

async fn reply(db: &Db, world: &World, ticket: TicketId, now: Timestamp) -> Result<MessageId> {
    let key = KEYS.fetch_add(1, Ordering::Relaxed);
    let body = format!("message {key}");
    let idempotency_key = format!("chats-{key}");
    testing::queue_text_reply(
        db,
        world.tenant,
        ticket,
        world.author,
        &body,
        &idempotency_key,
        now,
    )
    .await?
    .ok_or_else(|| "the key was used already".into())
}

const DELETE_MESSAGE: &str = "DELETE FROM messages WHERE tenant_id = $1 AND id = $2";
const DELETE_TICKET_MESSAGES: &str = "DELETE FROM messages WHERE tenant_id = $1 AND ticket_id = $2";
// What a contact merge does to the messages: they move to the other contact's chats.
const MOVE_CONTACT: &str = "UPDATE messages SET contact_id = $2 WHERE contact_id = $1";
// A bulk status change over many chats in one statement (like the maintenance actions).
const FAIL_QUEUED: &str = "UPDATE messages SET status = 'failed', next_attempt_at = NULL
    WHERE tenant_id = $1 AND status = 'queued' AND id >= $2";
const DELETE_TENANT: &str = "DELETE FROM tenants WHERE id = $1";
// A change that is no status or due time: nothing to do for the table.
const TOUCH: &str = "UPDATE messages SET updated_at = $2 WHERE tenant_id = $1";

#[tokio::test]
async fn the_chat_heads_follow_every_change_of_the_outgoing_messages() {
    TestDb::on_every_store(|db| async move { story(&db).await })
        .await
        .unwrap();
}

async fn story(db: &Db) -> Result {
    let w = world(db).await?;
    let t0 = Timestamp::now();
    check(db, "an empty outbox").await?;

    // Two chats with a backlog, a third with one message.
    let a1 = reply(db, &w, w.tickets[0], t0).await?;
    check(db, "the first reply").await?;
    let a2 = reply(db, &w, w.tickets[0], t0).await?;
    let a3 = reply(db, &w, w.tickets[0], t0).await?;
    check(db, "replies behind the head").await?;
    let b1 = reply(db, &w, w.tickets[1], t0.plus_millis(10)).await?;
    let b2 = reply(db, &w, w.tickets[1], t0).await?;
    let c1 = reply(db, &w, w.tickets[2], t0).await?;
    check(db, "three chats").await?;

    // The due query answers the heads only, oldest due first.
    let due = outbox::platform_due(db, t0.plus_millis(100), 10).await?;
    let mine: Vec<MessageId> = due
        .iter()
        .filter(|o| o.tenant_id == w.tenant)
        .map(|o| o.id)
        .collect();
    assert_eq!(mine, vec![a1, c1, b1]);
    // Not due yet: b1 is due at t0 + 10.
    let due = outbox::platform_due(db, t0, 10).await?;
    assert!(due.iter().all(|o| o.id != b1 && o.id != b2));

    // Claim: the chat waits (no due time) while its head is sending.
    assert_eq!(outbox::claim(db, w.tenant, a1, t0).await?, Some(1));
    check(db, "a claim").await?;
    let due = outbox::platform_due(db, t0.plus_millis(100), 10).await?;
    assert!(due.iter().all(|o| o.id != a1 && o.id != a2));
    assert_eq!(
        outbox::platform_next_due(db).await?,
        Some(t0),
        "the earliest due head"
    );

    // Sent: the next message leads.
    assert!(
        outbox::mark_sent(db, w.tenant, a1, "p-a1", t0)
            .await?
            .is_some()
    );
    check(db, "a send").await?;
    let due = outbox::platform_due(db, t0.plus_millis(100), 10).await?;
    assert!(due.iter().any(|o| o.id == a2));

    // Many claims and sends in one statement each, over several chats.
    let claimed = outbox::platform_claim_many(db, &[a2, b1, c1], t0).await?;
    assert_eq!(claimed.len(), 3);
    check(db, "a batch of claims").await?;
    let sent =
        outbox::platform_mark_sent_many(db, &[(w.tenant, a2, "p-a2"), (w.tenant, c1, "p-c1")], t0)
            .await?;
    assert_eq!(sent.len(), 2);
    check(db, "a batch of sends").await?;

    // A retry later, a failure, a resend.
    let later = t0.plus_millis(60_000);
    assert!(
        outbox::retry_later(db, w.tenant, b1, "busy", later, true, t0)
            .await?
            .is_some()
    );
    check(db, "a retry later").await?;
    let heads = rows(db, TABLE).await?;
    assert!(
        heads.iter().any(|h| h.3 == b1.0 && h.4 == Some(later.0)),
        "{heads:?}"
    );
    assert_eq!(outbox::claim(db, w.tenant, a3, t0).await?, Some(1));
    assert!(
        outbox::mark_failed(db, w.tenant, a3, "refused", t0)
            .await?
            .is_some()
    );
    check(db, "a failure").await?;
    assert!(
        outbox::resend(db, w.tenant, a3, t0.plus_millis(1))
            .await?
            .is_some()
    );
    check(db, "a resend").await?;

    // Snooze of a head moves its chat's due time.
    let until = t0.plus_millis(5_000);
    assert_eq!(outbox::snooze(db, w.tenant, &[a3], until).await?, 1);
    check(db, "a snooze").await?;

    // A new reply in a chat whose head is later than it: impossible through the API (ids grow),
    // but a resend of an earlier failed message is: it becomes the head again.
    let d1 = reply(db, &w, w.tickets[3], t0).await?;
    let d2 = reply(db, &w, w.tickets[3], t0).await?;
    assert_eq!(outbox::claim(db, w.tenant, d1, t0).await?, Some(1));
    assert!(
        outbox::mark_failed(db, w.tenant, d1, "refused", t0)
            .await?
            .is_some()
    );
    check(db, "the head failed").await?;
    assert!(outbox::resend(db, w.tenant, d1, t0).await?.is_some());
    check(db, "an earlier message resent").await?;
    let heads = rows(db, TABLE).await?;
    assert!(heads.iter().any(|h| h.3 == d1.0), "{heads:?}");
    assert!(heads.iter().all(|h| h.3 != d2.0), "{heads:?}");

    // Unrelated changes leave it alone; a contact merge moves the chats.
    exec(db, TOUCH, w.tenant.0, t0.plus_millis(7).0).await?;
    check(db, "a touch").await?;
    exec(db, MOVE_CONTACT, w.contacts[1].0, w.contacts[0].0).await?;
    check(db, "a contact merge").await?;

    // Deletes: one message, a ticket's messages, a bulk status change.
    exec(db, DELETE_MESSAGE, w.tenant.0, a3.0).await?;
    check(db, "a delete").await?;
    exec(db, DELETE_TICKET_MESSAGES, w.tenant.0, w.tickets[1].0).await?;
    check(db, "a ticket's messages deleted").await?;
    let e1 = reply(db, &w, w.tickets[0], t0).await?;
    reply(db, &w, w.tickets[2], t0).await?;
    check(db, "more replies").await?;
    exec(db, FAIL_QUEUED, w.tenant.0, e1.0).await?;
    check(db, "a bulk failure").await?;

    // The tenant's removal takes its chats along.
    let deleted = write!(db, pool => {
        sqlx::query(DELETE_TENANT).bind(w.tenant.0).execute(pool).await?.rows_affected()
    });
    assert_eq!(deleted, 1);
    check(db, "the tenant deleted").await?;
    let left = rows(db, TABLE).await?;
    assert!(left.iter().all(|h| h.0 != w.tenant.0), "{left:?}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Random sequences
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// A reply in chat `n % 4`, due `delay` ms after the start.
    Reply(usize, i64),
    /// The next operations name messages by `n % messages so far`.
    Claim(usize),
    ClaimMany(Vec<usize>),
    Sent(usize),
    SentMany(Vec<usize>),
    Failed(usize),
    Retry(usize, i64),
    Snooze(usize, i64),
    Resend(usize),
    Delete(usize),
    DeleteTicket(usize),
    MergeContacts,
    FailQueued(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0usize..4, 0i64..100).prop_map(|(n, d)| Op::Reply(n, d)),
        3 => any::<usize>().prop_map(Op::Claim),
        2 => prop::collection::vec(any::<usize>(), 1..5).prop_map(Op::ClaimMany),
        3 => any::<usize>().prop_map(Op::Sent),
        2 => prop::collection::vec(any::<usize>(), 1..5).prop_map(Op::SentMany),
        2 => any::<usize>().prop_map(Op::Failed),
        2 => (any::<usize>(), 0i64..100).prop_map(|(n, d)| Op::Retry(n, d)),
        2 => (any::<usize>(), 0i64..100).prop_map(|(n, d)| Op::Snooze(n, d)),
        2 => any::<usize>().prop_map(Op::Resend),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => (0usize..4).prop_map(Op::DeleteTicket),
        1 => Just(Op::MergeContacts),
        1 => any::<usize>().prop_map(Op::FailQueued),
    ]
}

async fn run(db: &Db, ops: &[Op]) -> Result {
    let w = world(db).await?;
    let t0 = Timestamp::now();
    let at = |d: i64| t0.plus_millis(d);
    let mut ids: Vec<MessageId> = Vec::new();
    let pick = |ids: &[MessageId], n: usize| ids.get(n % ids.len().max(1)).copied();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Reply(chat, delay) => ids.push(reply(db, &w, w.tickets[*chat], at(*delay)).await?),
            Op::Claim(n) => {
                if let Some(id) = pick(&ids, *n) {
                    outbox::claim(db, w.tenant, id, t0).await?;
                }
            }
            Op::ClaimMany(ns) => {
                let chosen: Vec<MessageId> = ns.iter().filter_map(|n| pick(&ids, *n)).collect();
                let mut unique = chosen.clone();
                unique.sort_by_key(|m| m.0);
                unique.dedup();
                outbox::platform_claim_many(db, &unique, t0).await?;
            }
            Op::Sent(n) => {
                if let Some(id) = pick(&ids, *n) {
                    outbox::mark_sent(db, w.tenant, id, &format!("p{}", id.0), t0).await?;
                }
            }
            Op::SentMany(ns) => {
                let mut chosen: Vec<MessageId> = ns.iter().filter_map(|n| pick(&ids, *n)).collect();
                chosen.sort_by_key(|m| m.0);
                chosen.dedup();
                let names: Vec<String> = chosen.iter().map(|id| format!("p{}", id.0)).collect();
                let sent: Vec<(TenantId, MessageId, &str)> = chosen
                    .iter()
                    .zip(&names)
                    .map(|(id, name)| (w.tenant, *id, name.as_str()))
                    .collect();
                outbox::platform_mark_sent_many(db, &sent, t0).await?;
            }
            Op::Failed(n) => {
                if let Some(id) = pick(&ids, *n) {
                    outbox::mark_failed(db, w.tenant, id, "refused", t0).await?;
                }
            }
            Op::Retry(n, delay) => {
                if let Some(id) = pick(&ids, *n) {
                    outbox::retry_later(db, w.tenant, id, "busy", at(*delay), false, t0).await?;
                }
            }
            Op::Snooze(n, delay) => {
                if let Some(id) = pick(&ids, *n) {
                    outbox::snooze(db, w.tenant, &[id], at(*delay)).await?;
                }
            }
            Op::Resend(n) => {
                if let Some(id) = pick(&ids, *n) {
                    outbox::resend(db, w.tenant, id, at(1)).await?;
                }
            }
            Op::Delete(n) => {
                if let Some(id) = pick(&ids, *n) {
                    exec(db, DELETE_MESSAGE, w.tenant.0, id.0).await?;
                }
            }
            Op::DeleteTicket(chat) => {
                exec(db, DELETE_TICKET_MESSAGES, w.tenant.0, w.tickets[*chat].0).await?;
            }
            Op::MergeContacts => {
                exec(db, MOVE_CONTACT, w.contacts[1].0, w.contacts[0].0).await?;
            }
            Op::FailQueued(n) => {
                let from = pick(&ids, *n).map_or(0, |id| id.0);
                exec(db, FAIL_QUEUED, w.tenant.0, from).await?;
            }
        }
        check(db, &format!("step {step} ({op:?})")).await?;
    }
    Ok(())
}

#[test]
fn random_sequences_keep_the_chat_heads_right() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stores = runtime.block_on(TestDb::all()).unwrap();
    for store in &stores {
        let config = ProptestConfig {
            cases: if store.name == "sqlite" { 48 } else { 24 },
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        proptest!(config, |(ops in prop::collection::vec(op(), 1..40))| {
            let outcome = runtime.block_on(run(&store.db, &ops));
            prop_assert!(outcome.is_ok(), "{}: {}", store.name, outcome.err().map(|e| e.to_string()).unwrap_or_default());
        });
    }
    for store in stores {
        runtime.block_on(store.cleanup());
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrent writers
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_replies_and_senders_leave_the_chat_heads_right() {
    TestDb::on_every_store(|db| async move { concurrent(&db).await })
        .await
        .unwrap();
}

/// Sends what is due like a sender would: claims the heads in one statement, then sends most,
/// puts some back for later and fails a few. Answers how many it moved.
async fn send_round(db: &Db, round: u64) -> Result<usize> {
    let now = Timestamp::now();
    let due = outbox::platform_due(db, now, 16).await?;
    let ids: Vec<MessageId> = due.iter().map(|o| o.id).collect();
    let claimed = outbox::platform_claim_many(db, &ids, now).await?;
    let mut names = Vec::new();
    for (n, c) in claimed.iter().enumerate() {
        let m = &c.message;
        match (round + n as u64) % 7 {
            0 => {
                outbox::retry_later(db, m.tenant_id, m.id, "busy", now, true, now).await?;
            }
            1 => {
                outbox::mark_failed(db, m.tenant_id, m.id, "refused", now).await?;
            }
            _ => names.push((m.tenant_id, m.id, format!("p{}", m.id.0))),
        }
    }
    let sent: Vec<(TenantId, MessageId, &str)> = names
        .iter()
        .map(|(t, id, name)| (*t, *id, name.as_str()))
        .collect();
    outbox::platform_mark_sent_many(db, &sent, now).await?;
    Ok(claimed.len())
}

async fn concurrent(db: &Db) -> Result {
    let w = std::sync::Arc::new(world(db).await?);
    let writers_done = std::sync::Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for writer in 0..4usize {
        let (db, w, done) = (db.clone(), w.clone(), writers_done.clone());
        tasks.push(tokio::spawn(async move {
            let outcome: Result = async {
                for n in 0..25usize {
                    // Two writers per chat for the first two chats; all four now and then.
                    let chat = if n % 5 == 0 { n % 4 } else { writer % 2 };
                    reply(&db, &w, w.tickets[chat], Timestamp::now()).await?;
                }
                Ok(())
            }
            .await;
            done.fetch_add(1, Ordering::SeqCst);
            outcome.map_err(|e| e.to_string())
        }));
    }
    for sender in 0..3u64 {
        let (db, done) = (db.clone(), writers_done.clone());
        tasks.push(tokio::spawn(async move {
            let outcome: Result = async {
                let mut round = sender;
                // Until the writers are done and a round finds nothing (bounded, not timed).
                for _ in 0..100_000 {
                    let writers_finished = done.load(Ordering::SeqCst) == 4;
                    let moved = send_round(&db, round).await?;
                    round += 3;
                    if writers_finished && moved == 0 {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                Ok(())
            }
            .await;
            outcome.map_err(|e| e.to_string())
        }));
    }
    for task in tasks {
        task.await?
            .map_err(|e| format!("a concurrent writer failed: {e}"))?;
    }
    check(db, "concurrent replies and sends").await?;
    // Whatever is left is pending and the table says how: drain it to the end.
    for round in 0..10_000u64 {
        if send_round(db, round).await? == 0 {
            break;
        }
    }
    check(db, "draining").await?;
    let left = rows(db, TABLE).await?;
    assert!(left.is_empty(), "every message went or failed: {left:?}");
    Ok(())
}
