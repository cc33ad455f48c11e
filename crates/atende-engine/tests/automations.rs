//! Business-hours absence message, auto-resolve of idle tickets (SPEC §8) and the events and
//! overflow of lifecycle moves (SPEC §3, §6), against a real engine over every backend.

use atende_db::connections::NewConnection;
use atende_db::contacts::NewContact;
use atende_db::messages::NewMessage;
use atende_db::queues::NewQueue;
use atende_db::testing::TestDb;
use atende_db::tickets::NewTicket;
use atende_domain::settings::Locale;
use atende_domain::{
    ChannelKind, Message, MessageAuthor, MessageDirection, MessageKind, MessageStatus, NameSource,
    Profile, SessionId, TenantId, Ticket, TicketStatus, Timestamp, TokenKind, User,
};
use atende_engine::auth::{ClientInfo, Principal};
use atende_engine::events::{Event, EventKind};
use atende_engine::people::UserDraft;
use atende_engine::{Engine, EngineConfig};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    engine: Engine,
    tenant: TenantId,
    admin: Principal,
    agent: Principal,
    queue: atende_domain::Queue,
    connection: atende_domain::Connection,
    _dir: tempfile::TempDir,
}

fn principal(user: User) -> Principal {
    Principal {
        user,
        token_id: SessionId(0),
        token_hash: String::new(),
        kind: TokenKind::Api,
    }
}

fn client() -> ClientInfo {
    ClientInfo {
        ip: "127.0.0.1".into(),
        user_agent: None,
    }
}

async fn fixture(store: &TestDb) -> Fixture {
    let dir = tempfile::tempdir().expect("fixture");
    let config = EngineConfig {
        data_dir: dir.path().to_path_buf(),
        secret_key: None,
        session_ttl_ms: 3_600_000,
    };
    let engine = Engine::start(store.db.clone(), config)
        .await
        .expect("fixture");
    let (tenant, admin) = engine
        .create_tenant("acme", "Acme", "admin@acme.test", "admin-password-1", None)
        .await
        .expect("fixture");
    let db = engine.db();
    let queue = atende_db::queues::create(
        db,
        tenant.id,
        &NewQueue {
            name: "Suporte".into(),
            color: "#112233".into(),
            greeting: String::new(),
            absence_message: String::new(),
            business_hours: None,
        },
    )
    .await
    .expect("fixture");
    let agent = engine
        .create_user(
            tenant.id,
            UserDraft {
                email: "agent@acme.test".into(),
                name: "Ana".into(),
                password: "agent-password-1".into(),
                profile: Profile::User,
                queue_ids: vec![queue.id],
                business_hours: None,
                timezone: None,
                locale: None,
            },
        )
        .await
        .expect("fixture");
    let connection = atende_db::connections::create(
        db,
        tenant.id,
        &NewConnection {
            kind: ChannelKind::Webchat,
            name: "Site".into(),
            default_queue_id: Some(queue.id),
            default_flow_id: None,
            public_key: Some(format!("key-{}", store.name)),
            credentials: None,
            send_delay_min_ms: None,
            send_delay_max_ms: None,
            cadence_enabled: None,
        },
    )
    .await
    .expect("fixture");
    Fixture {
        engine,
        tenant: tenant.id,
        admin: principal(admin),
        agent: principal(agent),
        queue,
        connection,
        _dir: dir,
    }
}

impl Fixture {
    async fn set(&self, key: &str, value: Value) {
        self.engine
            .put_setting(&self.admin, key, &value, &client(), Locale::PtBr)
            .await
            .expect("fixture");
    }

    async fn ticket(
        &self,
        name: &str,
        status: TicketStatus,
        is_group: bool,
        wallet: Vec<atende_domain::UserId>,
    ) -> Ticket {
        let db = self.engine.db();
        let contact = atende_db::contacts::create(
            db,
            self.tenant,
            &NewContact {
                name: name.into(),
                name_source: NameSource::Manual,
                phone: None,
                email: None,
                avatar_url: None,
                blocked: false,
                is_group,
                custom_fields: json!({}),
                identities: vec![(ChannelKind::Webchat, format!("visitor-{name}"))],
                wallet_user_ids: wallet,
                tag_ids: vec![],
            },
        )
        .await
        .expect("fixture");
        let owner = matches!(status, TicketStatus::Open | TicketStatus::Paused)
            .then_some(self.agent.user_id());
        atende_db::tickets::create(
            db,
            self.tenant,
            &NewTicket {
                contact_id: contact.id,
                connection_id: self.connection.id,
                status,
                owner_id: owner,
                queue_id: Some(self.queue.id),
                is_group,
            },
        )
        .await
        .expect("fixture")
    }

    async fn message(
        &self,
        ticket: &Ticket,
        direction: MessageDirection,
        sent_at: Timestamp,
    ) -> Message {
        let (author, author_user_id, status) = match direction {
            MessageDirection::In => (MessageAuthor::Contact, None, MessageStatus::Delivered),
            MessageDirection::Out => (
                MessageAuthor::User,
                Some(self.agent.user_id()),
                MessageStatus::Sent,
            ),
        };
        atende_db::messages::insert(
            self.engine.db(),
            self.tenant,
            &NewMessage {
                ticket_id: ticket.id,
                connection_id: ticket.connection_id,
                contact_id: ticket.contact_id,
                direction,
                author,
                author_user_id,
                kind: MessageKind::Text,
                body: "olá".into(),
                provider_id: None,
                quoted_id: None,
                status,
                failure_reason: None,
                idempotency_key: None,
                queue_stamp: ticket.queue_id,
                imported: false,
                sent_at,
            },
        )
        .await
        .expect("fixture")
    }

    /// An inbound message through the automations, as the inbound pipeline runs them.
    async fn inbound(&self, ticket: &Ticket) {
        let message = self
            .message(ticket, MessageDirection::In, Timestamp::now())
            .await;
        self.engine
            .after_inbound(self.tenant, ticket, &message, false)
            .await
            .expect("fixture");
    }

    async fn messages(&self, ticket: &Ticket) -> Vec<Message> {
        let mut all = atende_db::messages::list_for_ticket(
            self.engine.db(),
            self.tenant,
            ticket.id,
            None,
            500,
        )
        .await
        .expect("fixture");
        all.reverse();
        all
    }

    async fn absence_messages(&self, ticket: &Ticket) -> Vec<Message> {
        self.messages(ticket)
            .await
            .into_iter()
            .filter(|m| m.author == MessageAuthor::System && m.kind == MessageKind::Text)
            .collect()
    }

    async fn reload(&self, ticket: &Ticket) -> Ticket {
        atende_db::tickets::get(self.engine.db(), self.tenant, ticket.id)
            .await
            .expect("fixture")
    }
}

fn drain(receiver: &mut tokio::sync::broadcast::Receiver<Arc<Event>>) -> Vec<Arc<Event>> {
    let mut events = Vec::new();
    while let Ok(event) = receiver.try_recv() {
        events.push(event);
    }
    events
}

/// Closed every day: any inbound message is out of hours.
fn never_open() -> Value {
    json!({"days": {}})
}

#[tokio::test]
async fn absence_message_is_queued_outside_hours_at_most_max_times_per_cycle() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        f.set("business_hours", never_open()).await;
        f.set("out_of_hours_message", json!("Estamos fora do horário."))
            .await;
        f.set("out_of_hours_message_max", json!(2)).await;
        let ticket = f.ticket("Bia", TicketStatus::Pending, false, vec![]).await;
        let mut events = f.engine.events().subscribe(f.tenant);
        for _ in 0..3 {
            f.inbound(&ticket).await;
        }
        let absence = f.absence_messages(&ticket).await;
        assert_eq!(
            absence.len(),
            2,
            "{}: at most out_of_hours_message_max per cycle",
            store.name
        );
        for message in &absence {
            assert_eq!(message.body, "Estamos fora do horário.");
            assert_eq!(
                (message.direction, message.status),
                (MessageDirection::Out, MessageStatus::Queued)
            );
        }
        let published = drain(&mut events);
        let created = published
            .iter()
            .filter(|e| e.kind == EventKind::MessageCreated)
            .count();
        assert_eq!(created, 2, "each absence message is announced");
        assert_eq!(f.reload(&ticket).await.out_of_hours_sent, 2);

        // A new cycle starts over.
        f.engine
            .close(&f.admin, ticket.id, None, None, &client())
            .await
            .unwrap();
        f.engine
            .reopen(&f.admin, ticket.id, &client())
            .await
            .unwrap();
        f.inbound(&f.reload(&ticket).await).await;
        assert_eq!(
            f.absence_messages(&ticket).await.len(),
            3,
            "{}: the counter is per cycle",
            store.name
        );
        store.cleanup().await;
    }
}

#[tokio::test]
async fn absence_message_is_never_sent_with_max_zero() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        f.set("business_hours", never_open()).await;
        f.set("out_of_hours_message_max", json!(0)).await;
        let ticket = f.ticket("Caio", TicketStatus::Pending, false, vec![]).await;
        f.inbound(&ticket).await;
        f.inbound(&ticket).await;
        assert!(
            f.absence_messages(&ticket).await.is_empty(),
            "{}",
            store.name
        );
        store.cleanup().await;
    }
}

#[tokio::test]
async fn absence_message_is_not_sent_within_hours_nor_to_groups() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        // The default schedule is always open.
        let ticket = f.ticket("Davi", TicketStatus::Pending, false, vec![]).await;
        f.inbound(&ticket).await;
        assert!(
            f.absence_messages(&ticket).await.is_empty(),
            "{}: within hours",
            store.name
        );

        f.set("business_hours", never_open()).await;
        let group = f.ticket("Grupo", TicketStatus::Pending, true, vec![]).await;
        f.inbound(&group).await;
        assert!(
            f.absence_messages(&group).await.is_empty(),
            "{}: groups",
            store.name
        );
        store.cleanup().await;
    }
}

#[tokio::test]
async fn queue_hours_and_absence_text_win_over_the_tenant() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        // The tenant is always open, but the ticket's queue never is.
        atende_db::queues::update(
            f.engine.db(),
            f.tenant,
            f.queue.id,
            &atende_db::queues::QueuePatch {
                absence_message: Some("A fila de suporte está fechada.".into()),
                business_hours: Some(Some(never_open())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let ticket = f.ticket("Eva", TicketStatus::Pending, false, vec![]).await;
        f.inbound(&ticket).await;
        let absence = f.absence_messages(&ticket).await;
        assert_eq!(absence.len(), 1, "{}", store.name);
        assert_eq!(absence[0].body, "A fila de suporte está fechada.");
        store.cleanup().await;
    }
}

/// Writes a due time whatever the rule says (as a stale value left behind would be).
async fn force_due(f: &Fixture, ticket: &Ticket, due: Timestamp) {
    let db = f.engine.db();
    let stored = atende_db::lifecycle::set_auto_resolve_due(db, f.tenant, ticket.id, Some(due))
        .await
        .expect("fixture");
    let status = f.reload(ticket).await.status;
    // The store refuses a due time on a paused ticket; that is a guard too.
    assert!(stored || status == TicketStatus::Paused);
}

async fn enable_auto_resolve(f: &Fixture) {
    f.set("auto_resolve_idle", json!(true)).await;
    f.set("auto_resolve_after_minutes", json!(5)).await;
    f.set(
        "auto_resolve_message",
        json!("Encerramos por falta de resposta."),
    )
    .await;
}

#[tokio::test]
async fn auto_resolve_closes_an_idle_ticket_at_its_due_time() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        enable_auto_resolve(&f).await;
        let ticket = f.ticket("Fabi", TicketStatus::Open, false, vec![]).await;
        f.inbound(&ticket).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let sent_at = Timestamp::now();
        f.message(&ticket, MessageDirection::Out, sent_at).await;
        let due = f
            .engine
            .refresh_auto_resolve(f.tenant, ticket.id)
            .await
            .unwrap();
        assert_eq!(
            due,
            Some(sent_at.plus_minutes(5)),
            "{}: our reply starts the silence",
            store.name
        );

        // The worker runs five minutes ahead of the wall clock, less 1.5 s: the ticket is due in
        // 1.5 s of its time. It must not close it before, and must close it then.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let clock = atende_engine::workers::Clock {
            ahead_ms: 5 * 60_000 - 1_500,
        };
        tokio::spawn(atende_engine::workers::auto_resolve_worker(
            f.engine.clone(),
            stopped,
            clock,
        ));
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            f.reload(&ticket).await.status,
            TicketStatus::Open,
            "{}: not before its time",
            store.name
        );
        let mut closed = false;
        for _ in 0..60 {
            if f.reload(&ticket).await.status == TicketStatus::Closed {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            closed,
            "{}: the worker did not close the idle ticket",
            store.name
        );
        let messages = f.messages(&ticket).await;
        let farewell = messages
            .iter()
            .find(|m| m.body == "Encerramos por falta de resposta.")
            .expect("the auto-resolve message");
        assert_eq!(
            (farewell.status, farewell.author),
            (MessageStatus::Queued, MessageAuthor::System)
        );
        let note = messages.last().unwrap();
        assert_eq!(
            note.kind,
            MessageKind::SystemNote,
            "the note comes after the farewell"
        );
        assert_eq!(
            note.body,
            "Atendimento encerrado automaticamente por inatividade do contato."
        );
        let cycles = atende_db::tickets::cycles(f.engine.db(), f.tenant, ticket.id)
            .await
            .unwrap();
        let cycle = cycles.last().unwrap();
        assert_eq!(cycle.close_reason.as_deref(), Some("inactivity"));
        assert_eq!(cycle.closed_by, None);
        let _ = stop.send(true);
        store.cleanup().await;
    }
}

#[tokio::test]
async fn auto_resolve_spares_a_ticket_whose_contact_wrote_after_our_message() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        enable_auto_resolve(&f).await;
        let ticket = f.ticket("Gil", TicketStatus::Open, false, vec![]).await;
        let now = Timestamp::now();
        f.message(&ticket, MessageDirection::Out, now).await;
        assert!(
            f.engine
                .refresh_auto_resolve(f.tenant, ticket.id)
                .await
                .unwrap()
                .is_some()
        );
        // The contact answers; the due time is still stored (the pass must re-check the rule).
        f.message(&ticket, MessageDirection::In, now.plus_millis(10))
            .await;
        let later = now.plus_minutes(10);
        assert_eq!(
            f.engine.auto_resolve_pass(later).await.unwrap(),
            1,
            "the stale due time is looked at"
        );
        assert_eq!(
            f.reload(&ticket).await.status,
            TicketStatus::Open,
            "{}",
            store.name
        );
        let facts = atende_db::lifecycle::automation_facts(f.engine.db(), f.tenant, ticket.id)
            .await
            .unwrap();
        assert_eq!(
            facts.auto_resolve_due_at, None,
            "the stale due time is cleared"
        );

        // And the inbound automations clear it as soon as the contact writes.
        let other = f.ticket("Hugo", TicketStatus::Open, false, vec![]).await;
        f.message(&other, MessageDirection::Out, now).await;
        assert!(
            f.engine
                .refresh_auto_resolve(f.tenant, other.id)
                .await
                .unwrap()
                .is_some()
        );
        f.inbound(&other).await;
        let facts = atende_db::lifecycle::automation_facts(f.engine.db(), f.tenant, other.id)
            .await
            .unwrap();
        assert_eq!(facts.auto_resolve_due_at, None, "{}", store.name);
        store.cleanup().await;
    }
}

#[tokio::test]
async fn a_reopened_ticket_is_not_idle_since_before_it_reopened() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        enable_auto_resolve(&f).await;
        let ticket = f.ticket("Olga", TicketStatus::Open, false, vec![]).await;
        f.message(&ticket, MessageDirection::Out, Timestamp::now())
            .await;
        f.engine
            .close(&f.agent, ticket.id, None, None, &client())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let reopened_at = Timestamp::now();
        f.engine
            .reopen(&f.agent, ticket.id, &client())
            .await
            .unwrap();
        let facts = atende_db::lifecycle::automation_facts(f.engine.db(), f.tenant, ticket.id)
            .await
            .unwrap();
        let due = facts
            .auto_resolve_due_at
            .expect("our message is still the last one");
        assert!(
            due >= reopened_at.plus_minutes(5),
            "{}: counted from the reopening",
            store.name
        );
        store.cleanup().await;
    }
}

#[tokio::test]
async fn auto_resolve_never_closes_groups_or_paused_tickets() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        enable_auto_resolve(&f).await;
        f.set("allow_pause", json!(true)).await;
        let now = Timestamp::now();
        let group = f.ticket("Time", TicketStatus::Open, true, vec![]).await;
        f.message(&group, MessageDirection::Out, now).await;
        assert_eq!(
            f.engine
                .refresh_auto_resolve(f.tenant, group.id)
                .await
                .unwrap(),
            None,
            "{}: groups",
            store.name
        );

        let paused = f.ticket("Iara", TicketStatus::Open, false, vec![]).await;
        f.message(&paused, MessageDirection::Out, now).await;
        assert!(
            f.engine
                .refresh_auto_resolve(f.tenant, paused.id)
                .await
                .unwrap()
                .is_some()
        );
        f.engine
            .pause(&f.agent, paused.id, Some("almoço".into()), &client())
            .await
            .unwrap();
        // A stale due time left behind must not close it either.
        for stale in [&group, &paused] {
            force_due(&f, stale, now).await;
        }
        f.engine
            .auto_resolve_pass(now.plus_minutes(60))
            .await
            .unwrap();
        assert_eq!(
            f.reload(&paused).await.status,
            TicketStatus::Paused,
            "{}: paused",
            store.name
        );
        assert_eq!(
            f.reload(&group).await.status,
            TicketStatus::Open,
            "{}: groups",
            store.name
        );
        let due = atende_db::lifecycle::platform_due_auto_resolve(
            f.engine.db(),
            now.plus_minutes(60),
            10,
        )
        .await
        .unwrap();
        assert!(due.is_empty(), "{}: no due time is left behind", store.name);
        store.cleanup().await;
    }
}

#[tokio::test]
async fn auto_resolve_is_off_unless_auto_resolve_idle() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        let ticket = f.ticket("Jo", TicketStatus::Open, false, vec![]).await;
        f.message(&ticket, MessageDirection::Out, Timestamp::now())
            .await;
        assert_eq!(
            f.engine
                .refresh_auto_resolve(f.tenant, ticket.id)
                .await
                .unwrap(),
            None,
            "{}",
            store.name
        );
        store.cleanup().await;
    }
}

#[tokio::test]
async fn every_command_publishes_the_ticket_change_and_its_system_note() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        let ticket = f.ticket("Lia", TicketStatus::Pending, false, vec![]).await;
        let mut events = f.engine.events().subscribe(f.tenant);
        let accepted = f
            .engine
            .accept(&f.agent, ticket.id, &client())
            .await
            .unwrap();
        assert_eq!(
            (accepted.status, accepted.owner_id),
            (TicketStatus::Open, Some(f.agent.user_id()))
        );
        let published = drain(&mut events);
        let kinds: Vec<EventKind> = published.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![EventKind::TicketStatusChanged, EventKind::MessageCreated],
            "{}",
            store.name
        );
        assert_eq!(published[1].data["kind"], "system_note");
        assert_eq!(published[1].data["body"], "Atendimento aceito por Ana.");

        let target = atende_db::users::list_admin_ids(f.engine.db(), f.tenant)
            .await
            .unwrap()[0];
        f.engine
            .transfer(
                &f.agent,
                ticket.id,
                atende_engine::commands::TransferTarget {
                    user_id: Some(target),
                    ..Default::default()
                },
                &client(),
            )
            .await
            .unwrap();
        let kinds: Vec<EventKind> = drain(&mut events).iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![EventKind::TicketUpdated, EventKind::MessageCreated],
            "same status: an update"
        );
        store.cleanup().await;
    }
}

#[tokio::test]
async fn pending_wallet_tickets_overflow_when_their_owner_becomes_unavailable() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        f.set("force_wallet_routing", json!(true)).await;
        let agent = f.agent.user_id();
        let ticket = f
            .ticket("Mia", TicketStatus::Pending, false, vec![agent])
            .await;
        let unrelated = f.ticket("Noa", TicketStatus::Pending, false, vec![]).await;
        assert_eq!(
            f.engine
                .on_owner_unavailable(f.tenant, agent)
                .await
                .unwrap(),
            0,
            "off without wallet_overflow"
        );
        f.set("wallet_overflow", json!(true)).await;
        let mut events = f.engine.events().subscribe(f.tenant);
        assert_eq!(
            f.engine
                .on_owner_unavailable(f.tenant, agent)
                .await
                .unwrap(),
            1,
            "{}",
            store.name
        );
        let after = f.reload(&ticket).await;
        assert!(after.wallet_overflowed);
        assert_eq!(
            (after.status, after.queue_id),
            (TicketStatus::Pending, Some(f.queue.id))
        );
        assert!(!f.reload(&unrelated).await.wallet_overflowed);
        assert_eq!(
            drain(&mut events).len(),
            2,
            "the ticket update and the note"
        );
        assert_eq!(
            f.engine
                .on_owner_unavailable(f.tenant, agent)
                .await
                .unwrap(),
            0,
            "once only"
        );
        store.cleanup().await;
    }
}

#[tokio::test]
async fn two_agents_accepting_at_once_get_one_ticket_and_one_refusal() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        for round in 0..5 {
            let ticket = f
                .ticket(
                    &format!("Pedro {round}"),
                    TicketStatus::Pending,
                    false,
                    vec![],
                )
                .await;
            let from = client();
            let (a, b) = tokio::join!(
                f.engine.accept(&f.agent, ticket.id, &from),
                f.engine.accept(&f.admin, ticket.id, &from),
            );
            let winners = [&a, &b].iter().filter(|r| r.is_ok()).count();
            assert_eq!(winners, 1, "{}: {a:?} / {b:?}", store.name);
            for result in [a, b] {
                if let Err(error) = result {
                    assert!(
                        matches!(
                            error,
                            atende_engine::EngineError::InvalidState(_)
                                | atende_engine::EngineError::Conflict(_)
                        ),
                        "{}: a 409, got {error:?}",
                        store.name
                    );
                }
            }
            let cycles = atende_db::tickets::cycles(f.engine.db(), f.tenant, ticket.id)
                .await
                .unwrap();
            assert_eq!(cycles.len(), 1);
            let notes = f
                .messages(&ticket)
                .await
                .into_iter()
                .filter(|m| m.kind == MessageKind::SystemNote)
                .count();
            assert_eq!(notes, 1, "one move, one note");
        }
        store.cleanup().await;
    }
}

#[tokio::test]
async fn an_agent_reply_stores_the_due_time_with_its_own_write() {
    for store in TestDb::all().await.unwrap() {
        let f = fixture(&store).await;
        enable_auto_resolve(&f).await;
        let ticket = f.ticket("Gil", TicketStatus::Open, false, vec![]).await;
        f.inbound(&ticket).await;
        let before = Timestamp::now();
        let reply = atende_engine::outbound::ReplyInput {
            body: "Posso ajudar em algo mais?".into(),
            ..Default::default()
        };
        let outcome = f.engine.reply(&f.admin, ticket.id, reply).await.unwrap();
        let facts = atende_db::lifecycle::automation_facts(f.engine.db(), f.tenant, ticket.id)
            .await
            .unwrap();
        let due = facts
            .auto_resolve_due_at
            .expect("a due time after our reply");
        assert!(
            due >= before.plus_minutes(5) && due <= outcome.message.created_at.plus_minutes(5),
            "{}: due five minutes after the reply",
            store.name
        );
        // The same as recomputing it from the stored messages.
        let recomputed = f
            .engine
            .refresh_auto_resolve(f.tenant, ticket.id)
            .await
            .unwrap();
        assert_eq!(recomputed, Some(due), "{}", store.name);

        // The contact answers: nothing is due; a group never gets one.
        f.inbound(&ticket).await;
        let facts = atende_db::lifecycle::automation_facts(f.engine.db(), f.tenant, ticket.id)
            .await
            .unwrap();
        assert_eq!(facts.auto_resolve_due_at, None, "{}", store.name);
        let group = f.ticket("Grupo", TicketStatus::Open, true, vec![]).await;
        let reply = atende_engine::outbound::ReplyInput {
            body: "Oi, grupo".into(),
            ..Default::default()
        };
        f.engine.reply(&f.admin, group.id, reply).await.unwrap();
        let facts = atende_db::lifecycle::automation_facts(f.engine.db(), f.tenant, group.id)
            .await
            .unwrap();
        assert_eq!(facts.auto_resolve_due_at, None, "{}", store.name);
        store.cleanup().await;
    }
}
