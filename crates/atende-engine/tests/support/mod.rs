//! The sender with a recording adapter, for the sender's test files: an engine on a throwaway
//! store, one tenant, and a [`Recorder`] in place of the providers that keeps every call with its
//! instant and fails the calls a test plans.

// Each test file uses its own part of the fixture.
#![allow(dead_code)]

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
pub struct Call {
    pub connection: ConnectionId,
    pub chat: String,
    pub body: String,
    pub at: Instant,
    pub ok: bool,
}

/// Records every send; answers the errors planned for a body, in turn, then success.
#[derive(Default)]
pub struct Recorder {
    calls: Mutex<Vec<Call>>,
    plans: Mutex<HashMap<String, VecDeque<ChannelError>>>,
}

impl Recorder {
    pub fn plan(&self, body: &str, errors: Vec<ChannelError>) {
        self.plans
            .lock()
            .expect("lock")
            .insert(body.to_owned(), errors.into());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }

    /// The calls to one connection that succeeded, in the order they came.
    pub fn successes(&self, connection: ConnectionId) -> Vec<Call> {
        self.calls_to(connection)
            .into_iter()
            .filter(|c| c.ok)
            .collect()
    }

    /// Every call to one connection, failed ones included, in the order they came.
    pub fn calls_to(&self, connection: ConnectionId) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.connection == connection)
            .collect()
    }
}

impl Transport for Recorder {
    fn send<'a>(
        &'a self,
        connection: &'a Connection,
        message: &'a OutboundMessage,
    ) -> SendFuture<'a> {
        Box::pin(async move {
            let error = self
                .plans
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

pub struct Fixture {
    pub engine: Engine,
    pub tenant: TenantId,
    pub admin: Principal,
    pub transport: Arc<Recorder>,
    /// The sender's tunables until [`Fixture::release`] starts it.
    held: Option<SenderConfig>,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

/// Quick retries and a short idle poll, so a test takes tens of milliseconds.
pub fn quick() -> SenderConfig {
    SenderConfig {
        max_attempts: 4,
        backoff_base_ms: 20,
        backoff_max_ms: 40,
        max_idle: Duration::from_millis(50),
        ..SenderConfig::default()
    }
}

/// An engine with its sender running.
pub async fn fixture(store: &TestDb, sender: SenderConfig) -> Fixture {
    let mut fixture = held(store, sender).await;
    fixture.release();
    fixture
}

/// An engine whose sender starts only at [`Fixture::release`]: a test queues its whole load
/// first, so the pace it measures is the sender's, not the pace of its own writes.
pub async fn held(store: &TestDb, sender: SenderConfig) -> Fixture {
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
    let (stop, _) = watch::channel(false);
    Fixture {
        engine,
        tenant: tenant.id,
        admin: Principal {
            user: admin,
            token_id: SessionId(0),
            token_hash: String::new(),
            kind: TokenKind::Api,
        },
        transport: Arc::new(Recorder::default()),
        held: Some(sender),
        stop,
        _dir: dir,
    }
}

impl Fixture {
    /// Starts the sender (once).
    pub fn release(&mut self) {
        if let Some(config) = self.held.take() {
            let transport: Arc<dyn Transport> = self.transport.clone();
            let shutdown = self.stop.subscribe();
            tokio::spawn(sender_worker(
                self.engine.clone(),
                shutdown,
                transport,
                config,
            ));
        }
    }

    /// A connection; `delays` = its own cadence range (min, max) in ms.
    pub async fn connection(&self, kind: ChannelKind, delays: Option<(i64, i64)>) -> Connection {
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

    /// A contact known on the connection's channel as `chat`, with a pending ticket there whose
    /// replies go unsigned (the tests follow bodies through the sender).
    pub async fn ticket(&self, connection: &Connection, chat: &str) -> Ticket {
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
        atende_db::outbox::set_signature_disabled(db, self.tenant, ticket.id, true)
            .await
            .expect("fixture");
        ticket
    }

    /// An agent reply, queued.
    pub async fn reply(&self, ticket: &Ticket, body: &str) -> MessageId {
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

    pub async fn set(&self, key: &str, value: Value) {
        let client = ClientInfo {
            ip: "127.0.0.1".into(),
            user_agent: None,
        };
        self.engine
            .put_setting(&self.admin, key, &value, &client, Locale::PtBr)
            .await
            .expect("fixture");
    }

    pub async fn status(&self, id: MessageId) -> (MessageStatus, Option<String>) {
        let message = atende_db::messages::get(self.engine.db(), self.tenant, id)
            .await
            .expect("message");
        (message.status, message.failure_reason)
    }

    /// Waits (up to 5 s) until message `id` has `status`.
    pub async fn wait(&self, id: MessageId, status: MessageStatus) {
        for _ in 0..500 {
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
