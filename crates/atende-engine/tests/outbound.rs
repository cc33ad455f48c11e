//! The sender against a scripted adapter (SPEC §7), on every backend: strict order per chat under
//! retries, the retry limit and resend, unknown outcomes never repeated, the cadence gap of one
//! connection without slowing another, `fast_send`, and a rate limit that pauses one connection.

use atende_channels::{ChannelError, OutboundMessage, SendReceipt};
use atende_db::connections::NewConnection;
use atende_db::contacts::NewContact;
use atende_db::testing::TestDb;
use atende_db::tickets::NewTicket;
use atende_domain::settings::Locale;
use atende_domain::{
    ChannelKind, Connection, ConnectionId, MessageId, MessageStatus, NameSource, SessionId,
    TenantId, Ticket, TicketStatus, TokenKind,
};
use atende_engine::auth::{ClientInfo, Principal};
use atende_engine::outbound::{ReplyInput, SendFuture, SenderConfig, Transport, sender_worker};
use atende_engine::{Engine, EngineConfig};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// One call the adapter saw.
#[derive(Debug, Clone)]
struct Call {
    connection: ConnectionId,
    chat: String,
    body: String,
    at: Instant,
    ok: bool,
}

/// Records every send; answers per body from a script (then success).
#[derive(Default)]
struct Scripted {
    calls: Mutex<Vec<Call>>,
    script: Mutex<HashMap<String, VecDeque<ChannelError>>>,
}

impl Scripted {
    fn plan(&self, body: &str, errors: Vec<ChannelError>) {
        self.script
            .lock()
            .expect("lock")
            .insert(body.to_owned(), errors.into());
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }

    fn successes(&self, connection: ConnectionId) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.ok && c.connection == connection)
            .collect()
    }
}

impl Transport for Scripted {
    fn send<'a>(
        &'a self,
        connection: &'a Connection,
        message: &'a OutboundMessage,
    ) -> SendFuture<'a> {
        Box::pin(async move {
            let error = self
                .script
                .lock()
                .expect("lock")
                .get_mut(&message.body)
                .and_then(VecDeque::pop_front);
            self.calls.lock().expect("lock").push(Call {
                connection: connection.id,
                chat: message.chat_id.clone(),
                body: message.body.clone(),
                at: Instant::now(),
                ok: error.is_none(),
            });
            match error {
                Some(error) => Err(error),
                None => Ok(SendReceipt {
                    provider_id: format!("p/{}", message.idempotency_key),
                    accepted_at: atende_domain::Timestamp::now(),
                }),
            }
        })
    }
}

struct Fixture {
    engine: Engine,
    tenant: TenantId,
    admin: Principal,
    transport: Arc<Scripted>,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

fn config() -> SenderConfig {
    SenderConfig {
        max_attempts: 3,
        backoff_base_ms: 200,
        backoff_max_ms: 400,
        max_idle: Duration::from_millis(50),
        ..SenderConfig::default()
    }
}

async fn fixture(store: &TestDb, sender: SenderConfig) -> Fixture {
    let dir = tempfile::tempdir().expect("fixture");
    let engine = Engine::start(
        store.db.clone(),
        EngineConfig {
            data_dir: dir.path().to_path_buf(),
            secret_key: None,
            session_ttl_ms: 3_600_000,
        },
    )
    .await
    .expect("fixture");
    let (tenant, admin) = engine
        .create_tenant("acme", "Acme", "admin@acme.test", "admin-password-1", None)
        .await
        .expect("fixture");
    let transport = Arc::new(Scripted::default());
    let (stop, shutdown) = watch::channel(false);
    let dynamic: Arc<dyn Transport> = transport.clone();
    tokio::spawn(sender_worker(engine.clone(), shutdown, dynamic, sender));
    Fixture {
        engine,
        tenant: tenant.id,
        admin: Principal {
            user: admin,
            token_id: SessionId(0),
            token_hash: String::new(),
            kind: TokenKind::Api,
        },
        transport,
        _stop: stop,
        _dir: dir,
    }
}

impl Fixture {
    async fn connection(&self, kind: ChannelKind, delays: Option<(i64, i64)>) -> Connection {
        atende_db::connections::create(
            self.engine.db(),
            self.tenant,
            &NewConnection {
                kind,
                name: "c".into(),
                default_queue_id: None,
                default_flow_id: None,
                public_key: None,
                credentials: None,
                send_delay_min_ms: delays.map(|d| d.0),
                send_delay_max_ms: delays.map(|d| d.1),
                cadence_enabled: None,
            },
        )
        .await
        .expect("fixture")
    }

    async fn ticket(&self, connection: &Connection, chat: &str) -> Ticket {
        let db = self.engine.db();
        let contact = atende_db::contacts::create(
            db,
            self.tenant,
            &NewContact {
                name: chat.into(),
                name_source: NameSource::Manual,
                phone: None,
                email: None,
                avatar_url: None,
                blocked: false,
                is_group: false,
                custom_fields: json!({}),
                identities: vec![(connection.kind, chat.to_owned())],
                wallet_user_ids: vec![],
                tag_ids: vec![],
            },
        )
        .await
        .expect("fixture");
        let ticket = atende_db::tickets::create(
            db,
            self.tenant,
            &NewTicket {
                contact_id: contact.id,
                connection_id: connection.id,
                status: TicketStatus::Pending,
                owner_id: None,
                queue_id: None,
                is_group: false,
            },
        )
        .await
        .expect("fixture");
        // These tests follow bodies through the sender: no agent signature in front of them.
        atende_db::outbox::set_signature_disabled(db, self.tenant, ticket.id, true)
            .await
            .expect("fixture");
        ticket
    }

    async fn reply(&self, ticket: &Ticket, body: &str) -> MessageId {
        let outcome = self
            .engine
            .reply(
                &self.admin,
                ticket.id,
                ReplyInput {
                    body: body.into(),
                    ..ReplyInput::default()
                },
            )
            .await
            .expect("reply");
        assert_eq!(outcome.message.status, MessageStatus::Queued);
        outcome.message.id
    }

    async fn set(&self, key: &str, value: Value) {
        let client = ClientInfo {
            ip: "127.0.0.1".into(),
            user_agent: None,
        };
        self.engine
            .put_setting(&self.admin, key, &value, &client, Locale::PtBr)
            .await
            .expect("fixture");
    }

    async fn status(&self, id: MessageId) -> (MessageStatus, Option<String>) {
        let message = atende_db::messages::get(self.engine.db(), self.tenant, id)
            .await
            .expect("message");
        (message.status, message.failure_reason)
    }

    async fn wait(&self, id: MessageId, status: MessageStatus) {
        for _ in 0..300 {
            if self.status(id).await.0 == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "message {id} never became {status}: {:?}",
            self.status(id).await
        );
    }
}

fn bodies(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.body.as_str()).collect()
}

#[tokio::test]
async fn a_chat_keeps_its_order_under_retries_and_other_chats_go_on() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        let chat = f.ticket(&site, "visitor-1").await;
        let other = f.ticket(&site, "visitor-2").await;
        let temporary = || ChannelError::Temporary("503 from the provider".into());
        f.transport.plan("m1", vec![temporary(), temporary()]);
        let m1 = f.reply(&chat, "m1").await;
        let m2 = f.reply(&chat, "m2").await;
        let m3 = f.reply(&chat, "m3").await;
        let elsewhere = f.reply(&other, "elsewhere").await;
        for id in [m1, m2, m3, elsewhere] {
            f.wait(id, MessageStatus::Sent).await;
        }
        let calls = f.transport.calls();
        let in_chat: Vec<&Call> = calls.iter().filter(|c| c.chat == "visitor-1").collect();
        assert_eq!(
            in_chat
                .iter()
                .map(|c| (c.body.as_str(), c.ok))
                .collect::<Vec<_>>(),
            vec![
                ("m1", false),
                ("m1", false),
                ("m1", true),
                ("m2", true),
                ("m3", true)
            ],
            "{}: nothing of the chat goes while m1 is retried",
            store.name
        );
        let done = |body: &str| calls.iter().find(|c| c.ok && c.body == body).map(|c| c.at);
        assert!(
            done("elsewhere") < done("m1"),
            "{}: another chat is not held up by m1's retries",
            store.name
        );
    }
}

#[tokio::test]
async fn a_temporary_failure_past_the_limit_fails_with_the_reason_and_can_be_resent() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(
            &store,
            SenderConfig {
                max_attempts: 2,
                backoff_base_ms: 20,
                backoff_max_ms: 40,
                ..config()
            },
        )
        .await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        let chat = f.ticket(&site, "visitor-1").await;
        let temporary = || ChannelError::Temporary("503 from the provider".into());
        f.transport.plan("oi", vec![temporary(), temporary()]);
        let id = f.reply(&chat, "oi").await;
        f.wait(id, MessageStatus::Failed).await;
        let (_, reason) = f.status(id).await;
        assert!(
            reason.as_deref().is_some_and(|r| r.contains("503")),
            "{}: the provider's reason is kept: {reason:?}",
            store.name
        );
        assert_eq!(
            f.transport.calls().len(),
            2,
            "{}: two tries, then failed",
            store.name
        );

        let again = f
            .engine
            .resend(&f.admin, chat.id, id)
            .await
            .expect("resend");
        assert_eq!(again.status, MessageStatus::Queued);
        f.wait(id, MessageStatus::Sent).await;
        assert_eq!(
            f.status(id).await.1,
            None,
            "{}: the reason is cleared",
            store.name
        );
        assert!(
            f.engine.resend(&f.admin, chat.id, id).await.is_err(),
            "{}: a sent message is not resent",
            store.name
        );
    }
}

#[tokio::test]
async fn a_send_with_an_unknown_outcome_stays_sending_and_is_not_repeated() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        let chat = f.ticket(&site, "visitor-1").await;
        f.transport.plan(
            "talvez",
            vec![ChannelError::OutcomeUnknown(
                "timeout after the request went out".into(),
            )],
        );
        let maybe = f.reply(&chat, "talvez").await;
        let next = f.reply(&chat, "depois").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, reason) = f.status(maybe).await;
        assert_eq!(
            status,
            MessageStatus::Sending,
            "{}: flagged, still sending",
            store.name
        );
        assert!(reason.is_some_and(|r| r.contains("timeout")));
        assert_eq!(
            bodies(&f.transport.calls()),
            vec!["talvez"],
            "{}: tried once; the next message of the chat waits",
            store.name
        );
        assert_eq!(f.status(next).await.0, MessageStatus::Queued);
    }
}

#[tokio::test]
async fn cadence_keeps_the_minimum_gap_per_connection_without_slowing_another() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        // Unofficial WhatsApp is cadenced by default.
        let a = f.connection(ChannelKind::Evolution, Some((80, 100))).await;
        let b = f.connection(ChannelKind::Evolution, Some((80, 100))).await;
        let mut tickets = Vec::new();
        for n in 0..3 {
            for connection in [&a, &b] {
                let chat = format!("chat-{}-{n}", connection.id);
                tickets.push(f.ticket(connection, &chat).await);
            }
        }
        let mut ids = Vec::new();
        for (n, ticket) in tickets.iter().enumerate() {
            ids.push(f.reply(ticket, &format!("msg {n}")).await);
        }
        for id in ids {
            f.wait(id, MessageStatus::Sent).await;
        }
        let sent_a = f.transport.successes(a.id);
        let sent_b = f.transport.successes(b.id);
        assert_eq!((sent_a.len(), sent_b.len()), (3, 3));
        for sends in [&sent_a, &sent_b] {
            for pair in sends.windows(2) {
                let gap = pair[1].at.duration_since(pair[0].at);
                assert!(
                    gap >= Duration::from_millis(78),
                    "{}: sends of one connection keep the gap: {gap:?}",
                    store.name
                );
            }
        }
        let start_gap = if sent_b[0].at > sent_a[0].at {
            sent_b[0].at.duration_since(sent_a[0].at)
        } else {
            sent_a[0].at.duration_since(sent_b[0].at)
        };
        // Held behind a, b's first send would come at least a's minimum gap (80 ms) later.
        assert!(
            start_gap < Duration::from_millis(80),
            "{}: connection b does not wait for a: {start_gap:?}",
            store.name
        );
    }
}

#[tokio::test]
async fn fast_send_lets_interactive_replies_skip_the_cadence() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        f.set("fast_send", json!(true)).await;
        let a = f.connection(ChannelKind::Evolution, Some((300, 400))).await;
        let mut ids = Vec::new();
        for n in 0..3 {
            let ticket = f.ticket(&a, &format!("chat-{n}")).await;
            ids.push(f.reply(&ticket, &format!("msg {n}")).await);
        }
        for id in ids {
            f.wait(id, MessageStatus::Sent).await;
        }
        let sent = f.transport.successes(a.id);
        let span = sent[2].at.duration_since(sent[0].at);
        assert!(
            span < Duration::from_millis(300),
            "{}: agent replies are not held by the cadence: {span:?}",
            store.name
        );
    }
}

#[tokio::test]
async fn a_rate_limit_pauses_only_that_connection() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        let a = f.connection(ChannelKind::Webchat, None).await;
        let b = f.connection(ChannelKind::Webchat, None).await;
        let a1 = f.ticket(&a, "a-1").await;
        let a2 = f.ticket(&a, "a-2").await;
        let b1 = f.ticket(&b, "b-1").await;
        f.transport.plan(
            "limited",
            vec![ChannelError::RateLimited {
                retry_after_ms: 300,
            }],
        );
        let limited = f.reply(&a1, "limited").await;
        for _ in 0..200 {
            if !f.transport.calls().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused_at = f.transport.calls()[0].at;
        // Let the worker take in the answer before more work arrives.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let same_connection = f.reply(&a2, "same connection").await;
        let other_connection = f.reply(&b1, "other connection").await;
        for id in [limited, same_connection, other_connection] {
            f.wait(id, MessageStatus::Sent).await;
        }
        let calls = f.transport.calls();
        let at = |body: &str| {
            calls
                .iter()
                .find(|c| c.ok && c.body == body)
                .map(|c| c.at.duration_since(refused_at))
                .expect("sent")
        };
        assert!(
            at("other connection") < Duration::from_millis(200),
            "{}: another connection is not paused: {:?}",
            store.name,
            at("other connection")
        );
        assert!(
            at("same connection") >= Duration::from_millis(290),
            "{}: the connection waits the time asked: {:?}",
            store.name,
            at("same connection")
        );
        assert!(at("limited") >= Duration::from_millis(290));
    }
}

#[tokio::test]
async fn every_status_change_is_announced_in_order() {
    for store in TestDb::all().await.expect("stores") {
        // Only the bell wakes the sender here (no poll between the write and its announcement).
        let quiet = SenderConfig {
            max_idle: Duration::from_secs(10),
            ..config()
        };
        let f = fixture(&store, quiet).await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        let chat = f.ticket(&site, "visitor-1").await;
        let mut events = f.engine.events().subscribe(f.tenant);
        let id = f.reply(&chat, "olá").await;
        f.wait(id, MessageStatus::Sent).await;
        let mut seen = Vec::new();
        while let Ok(Ok(event)) =
            tokio::time::timeout(Duration::from_millis(200), events.recv()).await
        {
            let kind = serde_json::to_value(event.kind).expect("kind");
            let about_message = kind.as_str().is_some_and(|k| k.starts_with("message."));
            if about_message && event.data["id"].as_i64() == Some(id.0) {
                seen.push((kind, event.data["status"].clone()));
            }
            if seen.len() == 3 {
                break;
            }
        }
        assert_eq!(
            seen,
            vec![
                (json!("message.created"), json!("queued")),
                (json!("message.updated"), json!("sending")),
                (json!("message.updated"), json!("sent")),
            ],
            "{}",
            store.name
        );
    }
}

#[tokio::test]
async fn automatic_messages_queued_by_the_lifecycle_are_sent_too() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        let chat = f.ticket(&site, "visitor-1").await;
        let id = atende_db::lifecycle::queue_absence_message(
            f.engine.db(),
            f.tenant,
            chat.id,
            "Estamos fora do horário",
            1,
            atende_domain::Timestamp::now(),
        )
        .await
        .expect("absence")
        .expect("queued");
        // Nobody rang the bell: the sender's poll finds it.
        f.wait(id, MessageStatus::Sent).await;
        let calls = f.transport.calls();
        assert_eq!(
            bodies(&calls),
            vec!["Estamos fora do horário"],
            "{}",
            store.name
        );
        assert_eq!(calls[0].chat, "visitor-1");
    }
}
