//! Crash safety of the sender (SPEC §7; issue 4, item 7), with the real binary: 1,000 messages
//! queued over the API to a fake WhatsApp Cloud API, the process killed with SIGKILL while it
//! sends, restarted on the same store. Every message must reach the fake exactly once, end
//! `sent` with the id the fake gave it, and keep its order within its chat. The fake reports
//! each accepted message in a status webhook (as Meta does), which is how the restarted server
//! settles the sends whose answer the kill swallowed; the sends the kill stopped before they left
//! are queued again once the fake has stayed silent about them (see the sender's recovery in
//! `atende_engine::outbound`).
//!
//! Runs on SQLite, and on PostgreSQL when `TEST_DATABASE_URL` is set.

use anyhow::{Context, bail};
use atende_db::Db;
use atende_domain::{
    ConnectionId, MessageAuthor, MessageDirection, MessageKind, MessageStatus, TenantId,
    TicketStatus, Timestamp,
};
use atende_testkit::fake_cloud::{APP_SECRET, FakeCloud, Webhook};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const CHATS: usize = 10;
const PER_CHAT: usize = 100;
const TOTAL: usize = CHATS * PER_CHAT;
const ADMIN_EMAIL: &str = "admin@crash.test";
const ADMIN_PASSWORD: &str = "crash-password-1";
/// Fake answer time: slow enough that the kill lands while messages are still going out.
const LATENCY: Duration = Duration::from_millis(15);
/// How long the restarted server waits for a status before it sends an interrupted message again.
const STATUS_WAIT_MS: u64 = 3_000;

#[tokio::test]
async fn a_killed_sender_delivers_every_message_exactly_once_after_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sqlite = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("atende.db").display()
    );
    run("sqlite", &sqlite, dir.path()).await?;
    match atende_db::testing::create_postgres_schema().await? {
        Some((url, schema)) => {
            let pg_dir = tempfile::tempdir()?;
            let outcome = run("postgres", &url, pg_dir.path()).await;
            atende_db::testing::drop_postgres_schema(&schema).await;
            outcome?;
        }
        None => atende_db::testing::note_postgres_skipped(),
    }
    Ok(())
}

/// The server binary on `port`, its log in the data directory.
struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(probe.local_addr()?.port())
}

async fn start(database_url: &str, data: &Path, run: usize) -> anyhow::Result<Server> {
    let port = free_port()?;
    let log = data.join(format!("server-{run}.log"));
    let file = std::fs::File::create(&log)?;
    let child = Command::new(env!("CARGO_BIN_EXE_atende"))
        .arg("serve")
        .env_remove("ATENDE_SECRET_KEY")
        .env_remove("ATENDE_CONFIG")
        .env("DATABASE_URL", database_url)
        .env("ATENDE_DATA_DIR", data)
        .env("ATENDE_LISTEN", format!("127.0.0.1:{port}"))
        .env("ATENDE_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ATENDE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env(
            "ATENDE_LOG",
            "warn,atende_engine::outbound=info,atende_engine::whatsapp_cloud=info",
        )
        .stdout(Stdio::null())
        .stderr(file)
        .kill_on_drop(true)
        .spawn()?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    };
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(answer) = http.get(format!("{}/readyz", server.base)).send().await
            && answer.status().is_success()
        {
            return Ok(server);
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the server did not become ready:\n{}", server.tail());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Server {
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        // Settlements repeat by the hundred; the lines worth reading are the others.
        let (settled, others): (Vec<&str>, Vec<&str>) = text
            .lines()
            .partition(|line| line.contains("settled by the provider"));
        format!(
            "{} sends settled by the provider's status; other lines (last 60):\n{}",
            settled.len(),
            others[others.len().saturating_sub(60)..].join("\n")
        )
    }

    fn webhook(&self, connection: i64) -> Webhook {
        Webhook {
            url: format!("{}/webhooks/whatsapp-cloud/{connection}", self.base),
            app_secret: APP_SECRET.to_owned(),
        }
    }
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn login(base: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await?
            .json()
            .await?;
        let token = answer["token"].as_str().context("no token")?.to_owned();
        Ok(Api {
            http,
            base: base.to_owned(),
            token,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let answer = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = answer.status();
        let value: Value = answer.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {value}");
        }
        Ok(value)
    }
}

fn text_of(chat: usize, n: usize) -> String {
    format!("chat-{chat:02} message-{n:03}")
}

/// `(chat, n)` of a text the test queued (the signature may come before it).
fn parse_text(text: &str) -> Option<(usize, usize)> {
    let at = text.find("chat-")?;
    let rest = &text[at + 5..];
    let chat = rest.get(..2)?.parse().ok()?;
    let n = rest.get(11..14)?.parse().ok()?;
    Some((chat, n))
}

/// One open ticket per chat, each with an inbound message so the WhatsApp window is open.
async fn tickets(
    db: &Db,
    tenant: TenantId,
    connection: ConnectionId,
    api: &Api,
) -> anyhow::Result<Vec<(i64, String)>> {
    let mut out = Vec::new();
    for chat in 0..CHATS {
        let phone = format!("+55119{:08}", 70_000_000 + chat);
        let contact = api
            .call(
                reqwest::Method::POST,
                "/api/v1/contacts",
                json!({"name": format!("Cliente {chat}"),
                    "identities": [{"channel": "whatsapp_cloud", "external_id": phone}]}),
            )
            .await?;
        let contact_id = contact["id"].as_i64().context("no contact id")?;
        let ticket = atende_db::tickets::create(
            db,
            tenant,
            &atende_db::tickets::NewTicket {
                contact_id: atende_domain::ContactId(contact_id),
                connection_id: connection,
                status: TicketStatus::Open,
                owner_id: None,
                queue_id: None,
                is_group: false,
            },
        )
        .await?;
        atende_db::messages::insert(
            db,
            tenant,
            &atende_db::messages::NewMessage {
                ticket_id: ticket.id,
                connection_id: connection,
                contact_id: atende_domain::ContactId(contact_id),
                direction: MessageDirection::In,
                author: MessageAuthor::Contact,
                author_user_id: None,
                kind: MessageKind::Text,
                body: "oi".into(),
                provider_id: Some(format!("wamid.IN{chat}")),
                quoted_id: None,
                status: MessageStatus::Delivered,
                failure_reason: None,
                idempotency_key: None,
                queue_stamp: None,
                imported: false,
                sent_at: Timestamp::now(),
            },
        )
        .await?;
        out.push((ticket.id.0, phone.trim_start_matches('+').to_owned()));
    }
    Ok(out)
}

/// Outbound messages of the connection by status.
async fn statuses(
    db: &Db,
    tenant: TenantId,
    tickets: &[(i64, String)],
) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    for (ticket, _) in tickets {
        let messages = atende_db::messages::list_for_ticket(
            db,
            tenant,
            atende_domain::TicketId(*ticket),
            None,
            1_000,
        )
        .await?;
        for message in messages
            .iter()
            .filter(|m| m.direction == MessageDirection::Out)
        {
            *counts
                .entry(message.status.as_str().to_owned())
                .or_default() += 1;
        }
    }
    Ok(counts)
}

async fn run(backend: &str, database_url: &str, data: &Path) -> anyhow::Result<()> {
    let began = Instant::now();
    let fake = FakeCloud::start().await?;
    fake.set_latency(LATENCY);
    let mut server = start(database_url, data, 1).await?;
    let api = Api::login(&server.base).await?;
    for key in ["send_delay_min_ms", "send_delay_max_ms"] {
        api.call(
            reqwest::Method::PUT,
            &format!("/api/v1/settings/{key}"),
            json!({"value": 0}),
        )
        .await?;
    }
    let mut credentials = fake.credentials(STATUS_WAIT_MS);
    // Sends wait at the fake while the test queues (below).
    credentials["request_timeout_ms"] = json!(120_000);
    let connection = api
        .call(
            reqwest::Method::POST,
            "/api/v1/connections",
            json!({"kind": "whatsapp_cloud", "name": "Cloud", "credentials": credentials}),
        )
        .await?;
    let connection_id = connection["id"].as_i64().context("no connection id")?;
    fake.set_webhook(Some(server.webhook(connection_id)));
    let db = Db::connect(database_url).await?;
    let tenant = atende_db::tenants::platform_find_by_slug(&db, "default")
        .await?
        .context("no default tenant")?
        .id;
    let chats = tickets(&db, tenant, ConnectionId(connection_id), &api).await?;
    let setup_in = began.elapsed();

    // Each chat's messages in order, the chats side by side; the fake takes nothing until all are
    // queued, so the kill always lands in the middle of the sending.
    fake.hold(true);
    let mut queueing = Vec::new();
    for (chat, (ticket, _)) in chats.iter().enumerate() {
        let api = Api {
            http: api.http.clone(),
            base: api.base.clone(),
            token: api.token.clone(),
        };
        let ticket = *ticket;
        queueing.push(tokio::spawn(async move {
            for n in 0..PER_CHAT {
                let queued = api
                    .call(
                        reqwest::Method::POST,
                        &format!("/api/v1/tickets/{ticket}/messages"),
                        json!({"body": text_of(chat, n), "idempotency_key": format!("crash-{chat}-{n}")}),
                    )
                    .await?;
                if queued["status"] != "queued" && queued["status"] != "sending" && queued["status"] != "sent" {
                    bail!("unexpected answer {queued}");
                }
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for task in queueing {
        task.await??;
    }
    let queued_at = fake.send_count();
    let queued_in = began.elapsed();
    fake.hold(false);

    // Kill it while it sends.
    let wait_from = Instant::now();
    while fake.send_count() < TOTAL * 3 / 10 {
        if wait_from.elapsed() > Duration::from_secs(20) {
            bail!("{backend}: sending does not progress:\n{}", server.tail());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    server.child.start_kill()?;
    server.child.wait().await?;
    let at_kill = fake.send_count();
    let after_kill = statuses(&db, tenant, &chats).await?;
    assert!(
        at_kill > 0 && at_kill < TOTAL,
        "{backend}: the kill must land while sending (fake had {at_kill} of {TOTAL})"
    );

    // Restart on the same store; the fake's statuses go to the new address.
    let killed_in = began.elapsed();
    let server = start(database_url, data, 2).await?;
    fake.set_webhook(Some(server.webhook(connection_id)));
    let wait_from = Instant::now();
    loop {
        let counts = statuses(&db, tenant, &chats).await?;
        if counts.get("sent") == Some(&TOTAL) && fake.send_count() >= TOTAL {
            break;
        }
        if wait_from.elapsed() > Duration::from_secs(45) {
            bail!(
                "{backend}: not all sent after the restart: store {counts:?}, fake {} (at kill: \
                 fake {at_kill}, store {after_kill:?})\n--- first run ---\n{}\n--- second run ---\n{}",
                fake.send_count(),
                std::fs::read_to_string(data.join("server-1.log")).unwrap_or_default(),
                server.tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything sent twice would arrive a little later: give it the time to show.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sends = fake.sends();
    let mut seen: HashMap<(usize, usize), usize> = HashMap::new();
    let mut order: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
    let mut wamid_of: HashMap<(usize, usize), String> = HashMap::new();
    for send in &sends {
        let key = send
            .text
            .as_deref()
            .and_then(parse_text)
            .with_context(|| format!("unexpected text {:?}", send.text))?;
        *seen.entry(key).or_default() += 1;
        order.entry(send.to.clone()).or_default().push(key);
        wamid_of.insert(key, send.wamid.clone());
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{backend}: sent more than once: {twice:?}"
    );
    assert_eq!(
        seen.len(),
        TOTAL,
        "{backend}: every message reached the fake"
    );
    assert_eq!(sends.len(), TOTAL, "{backend}: exactly once each");
    for (chat, (ticket, phone)) in chats.iter().enumerate() {
        let received = order.get(phone).cloned().unwrap_or_default();
        let expected: Vec<(usize, usize)> = (0..PER_CHAT).map(|n| (chat, n)).collect();
        assert_eq!(received, expected, "{backend}: chat {chat} out of order");
        let stored = atende_db::messages::list_for_ticket(
            &db,
            tenant,
            atende_domain::TicketId(*ticket),
            None,
            1_000,
        )
        .await?;
        for message in stored
            .iter()
            .filter(|m| m.direction == MessageDirection::Out)
        {
            let key = parse_text(&message.body).context("unexpected stored text")?;
            assert_eq!(message.status, MessageStatus::Sent, "{backend}: {key:?}");
            assert_eq!(
                message.provider_id.as_deref(),
                wamid_of.get(&key).map(String::as_str),
                "{backend}: {key:?} keeps the id the provider gave it"
            );
        }
    }
    let log = std::fs::read_to_string(&server.log).unwrap_or_default();
    eprintln!(
        "{backend}: queued with {queued_at} already sent; killed with {at_kill}/{TOTAL} at the \
         fake and {after_kill:?} in the store; after restart {} settled by status, {} sent again; \
         set up at {:.1} s, queued at {:.1} s, killed at {:.1} s, all sent after {:.1} s",
        log.matches("settled by the provider's status").count(),
        log.matches("unconfirmed send queued again").count(),
        setup_in.as_secs_f64(),
        queued_in.as_secs_f64(),
        killed_in.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
    drop(server);
    db.close().await;
    Ok(())
}

#[test]
fn texts_parse_back_with_or_without_a_signature() {
    assert_eq!(parse_text(&text_of(3, 42)), Some((3, 42)));
    assert_eq!(parse_text("*Admin*:\nchat-07 message-099"), Some((7, 99)));
    assert_eq!(parse_text("hello"), None);
}
