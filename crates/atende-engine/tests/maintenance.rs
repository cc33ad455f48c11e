//! `validate_contacts` against a scripted directory (SPEC §10), on every backend: identities the
//! provider knows under another id are fixed, or merged when that id is another contact's;
//! unknown accounts and malformed phones are reported; channels without a directory are
//! skipped; lookups keep the connection's cadence; and a second run changes nothing.
//! `send_stuck_messages` asks the channel whether a repeat is harmless before re-queuing an
//! unconfirmed send.

use atende_channels::{ChannelError, ContactLookup};
use atende_db::connections::NewConnection;
use atende_db::contacts::NewContact;
use atende_db::messages::NewMessage;
use atende_db::testing::TestDb;
use atende_db::tickets::NewTicket;
use atende_domain::maintenance::MaintenanceAction;
use atende_domain::{
    ChannelKind, Connection, ConnectionId, ContactId, Job, JobStatus, MessageAuthor,
    MessageDirection, MessageKind, MessageStatus, NameSource, SessionId, TenantId, TicketStatus,
    Timestamp, TokenKind,
};
use atende_engine::auth::{ClientInfo, Principal};
use atende_engine::maintenance::{
    ChannelFuture, MaintenanceChannels, MaintenanceConfig, maintenance_worker,
};
use atende_engine::{Engine, EngineConfig};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// One directory call.
#[derive(Debug, Clone)]
struct Lookup {
    connection: ConnectionId,
    ids: Vec<String>,
    at: Instant,
}

/// A provider directory seeded with canonical ids; Telegram has none.
#[derive(Default)]
struct Directory {
    canonical: HashMap<String, String>,
    idempotent: HashSet<ChannelKind>,
    calls: Mutex<Vec<Lookup>>,
}

impl Directory {
    fn calls(&self) -> Vec<Lookup> {
        self.calls.lock().expect("lock").clone()
    }
}

impl MaintenanceChannels for Directory {
    fn resend_is_idempotent<'a>(&'a self, connection: &'a Connection) -> ChannelFuture<'a, bool> {
        let answer = self.idempotent.contains(&connection.kind);
        Box::pin(async move { answer })
    }

    fn lookup_contacts<'a>(
        &'a self,
        connection: &'a Connection,
        external_ids: &'a [String],
    ) -> ChannelFuture<'a, Result<Vec<ContactLookup>, ChannelError>> {
        Box::pin(async move {
            if connection.kind == ChannelKind::Telegram {
                return Err(ChannelError::Unsupported("no directory".into()));
            }
            self.calls.lock().expect("lock").push(Lookup {
                connection: connection.id,
                ids: external_ids.to_vec(),
                at: Instant::now(),
            });
            Ok(external_ids
                .iter()
                .map(|id| {
                    // A canonical id is known under itself too.
                    let known = self
                        .canonical
                        .get(id)
                        .or_else(|| self.canonical.values().find(|c| *c == id));
                    match known {
                        Some(canonical) => ContactLookup::Found {
                            canonical_id: canonical.clone(),
                        },
                        None => ContactLookup::Missing,
                    }
                })
                .collect())
        })
    }
}

struct Fixture {
    engine: Engine,
    tenant: TenantId,
    admin: Principal,
    directory: Arc<Directory>,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

async fn fixture(store: &TestDb, directory: Directory) -> Fixture {
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
    let directory = Arc::new(directory);
    let (stop, shutdown) = watch::channel(false);
    let channels: Arc<dyn MaintenanceChannels> = directory.clone();
    let config = MaintenanceConfig {
        poll: Duration::from_millis(50),
        lookup_batch: 2,
        ..MaintenanceConfig::default()
    };
    tokio::spawn(maintenance_worker(
        engine.clone(),
        shutdown,
        channels,
        config,
    ));
    Fixture {
        engine,
        tenant: tenant.id,
        admin: Principal {
            user: admin,
            token_id: SessionId(0),
            token_hash: String::new(),
            kind: TokenKind::Api,
        },
        directory,
        _stop: stop,
        _dir: dir,
    }
}

impl Fixture {
    async fn connection(&self, kind: ChannelKind, cadence_ms: Option<i64>) -> Connection {
        atende_db::connections::create(
            self.engine.db(),
            self.tenant,
            &NewConnection {
                kind,
                name: kind.as_str().into(),
                default_queue_id: None,
                default_flow_id: None,
                public_key: None,
                credentials: None,
                send_delay_min_ms: cadence_ms,
                send_delay_max_ms: cadence_ms,
                cadence_enabled: Some(cadence_ms.is_some()),
            },
        )
        .await
        .expect("fixture")
    }

    async fn contact(
        &self,
        name: &str,
        phone: Option<&str>,
        identity: (ChannelKind, &str),
    ) -> ContactId {
        atende_db::contacts::create(
            self.engine.db(),
            self.tenant,
            &NewContact {
                name: name.into(),
                name_source: NameSource::Manual,
                phone: phone.map(str::to_owned),
                email: None,
                avatar_url: None,
                blocked: false,
                is_group: false,
                custom_fields: json!({}),
                identities: vec![(identity.0, identity.1.to_owned())],
                wallet_user_ids: vec![],
                tag_ids: vec![],
            },
        )
        .await
        .expect("fixture")
        .id
    }

    /// Starts the action and waits for its job to end.
    async fn run(&self, action: MaintenanceAction) -> Job {
        let client = ClientInfo {
            ip: "127.0.0.1".into(),
            user_agent: None,
        };
        let started = self
            .engine
            .start_maintenance(&self.admin, action, &client)
            .await
            .expect("start");
        assert!(!started.already_running);
        for _ in 0..400 {
            let job = atende_db::jobs::get(self.engine.db(), self.tenant, started.job.id)
                .await
                .expect("job");
            if matches!(job.status, JobStatus::Done | JobStatus::Failed) {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the {action} job never ended");
    }

    async fn identities(&self, contact: ContactId) -> Vec<String> {
        atende_db::contacts::get(self.engine.db(), self.tenant, contact)
            .await
            .expect("contact")
            .identities
            .into_iter()
            .map(|i| i.external_id)
            .collect()
    }
}

fn result(job: &Job) -> Value {
    assert_eq!(job.status, JobStatus::Done, "job failed: {:?}", job.error);
    job.result.clone().unwrap_or_default()
}

#[tokio::test]
async fn validate_contacts_fixes_merges_and_reports_identities_at_the_connections_cadence() {
    for store in TestDb::all().await.expect("stores") {
        let canonical = [
            ("5511988887777", "5511988887777"),
            ("551188886666", "5511988886666"),
            ("5511977775555", "5511977775555"),
            ("551177775555", "5511977775555"),
        ];
        let f = fixture(
            &store,
            Directory {
                canonical: canonical
                    .iter()
                    .map(|(asked, answer)| ((*asked).to_owned(), (*answer).to_owned()))
                    .collect(),
                ..Directory::default()
            },
        )
        .await;
        let whatsapp = f.connection(ChannelKind::Evolution, Some(150)).await;
        f.connection(ChannelKind::Telegram, None).await;
        let evolution = ChannelKind::Evolution;
        let ana = f
            .contact("Ana", Some("(11) 98888-7777"), (evolution, "5511988887777"))
            .await;
        let bia = f.contact("Bia", None, (evolution, "551188886666")).await;
        let caio = f.contact("Caio", None, (evolution, "5511977775555")).await;
        let caio_again = f.contact("Caio 2", None, (evolution, "551177775555")).await;
        let gone = f
            .contact(
                "Sem WhatsApp",
                Some("ligar depois"),
                (evolution, "5511900000000"),
            )
            .await;
        let bot_user = f.contact("Tg", None, (ChannelKind::Telegram, "42")).await;
        let web = f
            .contact("Visitante", None, (ChannelKind::Webchat, "v-1"))
            .await;

        let first = result(&f.run(MaintenanceAction::ValidateContacts).await);
        assert_eq!(first["contacts"], 7, "{first}");
        assert_eq!(first["phones_fixed"], 1, "{first}");
        assert_eq!(first["invalid_phones"], 1, "{first}");
        assert_eq!(first["invalid_phone_samples"][0]["contact_id"], gone.0);
        assert_eq!(first["identities_fixed"], 1, "{first}");
        assert_eq!(first["contacts_merged"], 1, "{first}");
        assert_eq!(first["not_on_channel"], 1, "{first}");
        assert_eq!(
            first["not_on_channel_samples"][0]["external_id"],
            "5511900000000"
        );
        assert_eq!(first["skipped_unsupported"], 1, "{first}");
        assert_eq!(first["skipped_no_connection"], 1, "{first}");

        let db = f.engine.db();
        let phone = atende_db::contacts::get(db, f.tenant, ana)
            .await
            .expect("ana")
            .phone;
        assert_eq!(phone.as_deref(), Some("+5511988887777"));
        assert_eq!(f.identities(bia).await, vec!["5511988886666"]);
        let mut merged = f.identities(caio).await;
        merged.sort();
        assert_eq!(merged, vec!["551177775555", "5511977775555"]);
        assert!(
            atende_db::contacts::get(db, f.tenant, caio_again)
                .await
                .is_err(),
            "the newer duplicate was merged into the older contact"
        );
        assert_eq!(
            f.identities(gone).await,
            vec!["5511900000000"],
            "reported, kept"
        );
        assert_eq!(f.identities(bot_user).await, vec!["42"]);
        assert_eq!(f.identities(web).await, vec!["v-1"]);

        // Five WhatsApp identities in lookups of two: three calls, each the cadence apart.
        let calls = f.directory.calls();
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert!(calls.iter().all(|c| c.connection == whatsapp.id));
        assert_eq!(calls.iter().map(|c| c.ids.len()).sum::<usize>(), 5);
        for pair in calls.windows(2) {
            let gap = pair[1].at.duration_since(pair[0].at);
            assert!(gap >= Duration::from_millis(150), "lookups {gap:?} apart");
        }

        let again = result(&f.run(MaintenanceAction::ValidateContacts).await);
        assert_eq!(again["contacts"], 6, "{again}");
        for key in ["phones_fixed", "identities_fixed", "contacts_merged"] {
            assert_eq!(again[key], 0, "a second run changes nothing: {again}");
        }
        assert_eq!(again["invalid_phones"], 1, "still reported: {again}");
        assert_eq!(again["not_on_channel"], 1, "still reported: {again}");
        store.cleanup().await;
    }
}

#[tokio::test]
async fn an_unconfirmed_send_is_requeued_only_on_a_channel_where_a_repeat_is_harmless() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(
            &store,
            Directory {
                idempotent: HashSet::from([ChannelKind::Telegram]),
                ..Directory::default()
            },
        )
        .await;
        let db = f.engine.db();
        let old = Timestamp::now().plus_minutes(-10);
        let mut stuck = Vec::new();
        for (kind, chat) in [
            (ChannelKind::Telegram, "1"),
            (ChannelKind::Evolution, "5511"),
        ] {
            let connection = f.connection(kind, None).await;
            let contact = f.contact(chat, None, (kind, chat)).await;
            let ticket = atende_db::tickets::create(
                db,
                f.tenant,
                &NewTicket {
                    contact_id: contact,
                    connection_id: connection.id,
                    status: TicketStatus::Pending,
                    owner_id: None,
                    queue_id: None,
                    is_group: false,
                },
            )
            .await
            .expect("ticket");
            let message = atende_db::messages::insert(
                db,
                f.tenant,
                &NewMessage {
                    ticket_id: ticket.id,
                    connection_id: connection.id,
                    contact_id: contact,
                    direction: MessageDirection::Out,
                    author: MessageAuthor::Bot,
                    author_user_id: None,
                    kind: MessageKind::Text,
                    body: "olá".into(),
                    provider_id: None,
                    quoted_id: None,
                    status: MessageStatus::Queued,
                    failure_reason: None,
                    idempotency_key: None,
                    queue_stamp: None,
                    imported: false,
                    sent_at: old,
                },
            )
            .await
            .expect("message");
            // Claimed ten minutes ago by a sender that never came back.
            let claimed = atende_db::outbox::claim(db, f.tenant, message.id, old).await;
            assert_eq!(claimed.expect("claim"), Some(1));
            stuck.push(message.id);
        }
        let first = result(&f.run(MaintenanceAction::SendStuckMessages).await);
        assert_eq!(first["requeued"], 1, "{first}");
        assert_eq!(first["left_unconfirmed"], 1, "{first}");
        let status = |id| async move {
            atende_db::messages::get(db, f.tenant, id)
                .await
                .expect("message")
                .status
        };
        assert_eq!(status(stuck[0]).await, MessageStatus::Queued);
        assert_eq!(status(stuck[1]).await, MessageStatus::Sending);
        store.cleanup().await;
    }
}

/// A maintenance job claimed by a worker that is gone: running, its lease ending in `ms`.
async fn abandoned_job(f: &Fixture, action: MaintenanceAction, claims: usize, ms: i64) -> Job {
    let db = f.engine.db();
    let not_yet = Timestamp::now().plus_minutes(10);
    let job = atende_db::jobs::create(
        db,
        f.tenant,
        &atende_db::jobs::NewJob {
            kind: action.job_kind(),
            payload: json!({}),
            total: 0,
            due_at: not_yet,
            dedupe_key: Some(action.job_kind()),
        },
    )
    .await
    .expect("job");
    // Claimed "ten minutes from now" with a lease that ends `ms` from the real now, so the live
    // worker cannot take it before.
    for round in 0..claims {
        let at = not_yet.plus_millis(i64::try_from(round).unwrap_or(0) * 1_000);
        let lease = Timestamp::now().plus_millis(ms).millis() - at.millis();
        let claimed =
            atende_db::jobs::platform_claim_due_of_kind(db, "maintenance.", at, "gone", lease, 1)
                .await
                .expect("claim");
        assert_eq!(claimed.len(), 1);
    }
    job
}

async fn wait_end(f: &Fixture, job: &Job) -> Job {
    for _ in 0..400 {
        let now = atende_db::jobs::get(f.engine.db(), f.tenant, job.id)
            .await
            .expect("job");
        if matches!(now.status, JobStatus::Done | JobStatus::Failed) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {} never ended", job.id);
}

#[tokio::test]
async fn a_job_whose_worker_died_runs_again_and_a_crash_loop_gives_up() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, Directory::default()).await;
        let rerun = abandoned_job(&f, MaintenanceAction::FixTicketDates, 1, 300).await;
        let done = wait_end(&f, &rerun).await;
        assert_eq!(done.status, JobStatus::Done, "{:?}", done.error);
        assert_eq!(done.attempts, 2, "claimed again after the lease expired");
        assert_eq!(
            done.result,
            Some(json!({"tickets": 0, "fixed": 0, "changed_meanwhile": 0}))
        );

        let looping = abandoned_job(&f, MaintenanceAction::SendStuckMessages, 3, 300).await;
        let given_up = wait_end(&f, &looping).await;
        assert_eq!(given_up.status, JobStatus::Failed);
        assert!(
            given_up
                .error
                .as_deref()
                .is_some_and(|e| e.contains("did not finish")),
            "{:?}",
            given_up.error
        );
        store.cleanup().await;
    }
}
