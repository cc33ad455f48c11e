//! `atende bench outbound`: the sending side (SPEC §7) on SQLite.
//!
//! 1. Throughput: `--messages` agent replies queued on `--chats` web-chat tickets (the outbox full),
//!    then the sender started with `fast_send` and a zero-latency channel: messages per second
//!    from the first claim to the last `sent`. Baseline in the same run: the same reads and
//!    writes with plain sqlx on one connection (due rows read in batches, each claimed to
//!    `sending` and then marked `sent`, committed per batch as the sender does).
//! 2. API latency: `--requests` replies over HTTP to the running server at `--rate` per second
//!    (open loop), request to the `queued` answer, p50 and p99, while its sender delivers them.

use crate::Config;
use crate::bench::LocalServer;
use anyhow::{Context, bail};
use atende_db::Db;
use atende_domain::{Connection, TicketId, Timestamp};
use atende_engine::Engine;
use atende_engine::auth::{ClientInfo, Principal};
use atende_engine::inbound::channels::{ChannelError, Delivery, OutboundMessage, SendReceipt};
use atende_engine::outbound::{ReplyInput, SendFuture, SenderConfig, Transport, sender_worker};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct OutboundBench {
    pub messages: usize,
    pub chats: usize,
    pub requests: usize,
    pub rate: u32,
}

const ADMIN_EMAIL: &str = "admin@bench.test";
const ADMIN_PASSWORD: &str = "bench-password-1";

pub async fn run(options: OutboundBench) -> anyhow::Result<String> {
    if options.messages == 0 || options.chats == 0 || options.requests == 0 || options.rate == 0 {
        bail!("--messages, --chats, --requests and --rate must be positive");
    }
    let sender = sender_throughput(&options).await?;
    let raw = raw_store(&options).await?;
    let latency = api_latency(&options).await?;
    Ok(format!(
        "outbound messages={} chats={} sender_msgs_per_s={sender:.0} (goal >= 5000) \
         raw_store_msgs_per_s={raw:.0} ratio_to_raw_store={:.2} \
         api_send_p99_ms={:.2} (goal < 10, at {}/s over {} requests, p50 {:.2}, max {:.2})",
        options.messages,
        options.chats,
        sender / raw.max(1.0),
        latency.p99_ms,
        options.rate,
        options.requests,
        latency.p50_ms,
        latency.max_ms,
    ))
}

fn temp_dir(label: &str) -> anyhow::Result<std::path::PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "atende-bench-{label}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn config_in(dir: &std::path::Path) -> Config {
    Config {
        database_url: format!("sqlite://{}?mode=rwc", dir.join("atende.db").display()),
        data_dir: dir.to_path_buf(),
        admin_email: Some(ADMIN_EMAIL.into()),
        admin_password: Some(ADMIN_PASSWORD.into()),
        log: "warn".into(),
        ..Config::default()
    }
}

/// Answers at once, counting the calls.
#[derive(Default)]
struct Instant0 {
    calls: AtomicUsize,
}

impl Transport for Instant0 {
    fn send<'a>(
        &'a self,
        _connection: &'a Connection,
        message: &'a OutboundMessage,
    ) -> SendFuture<'a> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let receipt: Result<SendReceipt, ChannelError> = Ok(SendReceipt {
            provider_id: format!("bench/{}", message.idempotency_key),
            accepted_at: Timestamp::now(),
        });
        Box::pin(std::future::ready(receipt))
    }
}

/// An engine over a fresh SQLite store with the default tenant, its admin signed in,
/// `fast_send` on, and one web-chat ticket per chat (opened by a visitor's message).
struct Shop {
    engine: Engine,
    admin: Principal,
    tickets: Vec<TicketId>,
    dir: std::path::PathBuf,
}

async fn shop(label: &str, chats: usize) -> anyhow::Result<Shop> {
    let dir = temp_dir(label)?;
    let config = config_in(&dir);
    let db = crate::open_store(&config).await?;
    let engine = crate::open_engine(&config, db).await?;
    crate::bootstrap::first_run(&engine, &config).await?;
    let client = ClientInfo {
        ip: "127.0.0.1".into(),
        user_agent: None,
    };
    let grant = engine
        .login(
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            atende_domain::TokenKind::Api,
            &client,
        )
        .await?;
    let admin = engine.authenticate(&grant.token).await?;
    engine
        .put_setting(
            &admin,
            "fast_send",
            &json!(true),
            &client,
            atende_domain::settings::Locale::default(),
        )
        .await?;
    let tenant = admin.tenant()?;
    let key = format!("wc_bench_{}", Timestamp::now().millis());
    atende_db::connections::create(
        engine.db(),
        tenant,
        &atende_db::connections::NewConnection {
            kind: atende_domain::ChannelKind::Webchat,
            name: "Bench".into(),
            default_queue_id: None,
            default_flow_id: None,
            public_key: Some(key.clone()),
            credentials: None,
            send_delay_min_ms: None,
            send_delay_max_ms: None,
            cadence_enabled: None,
        },
    )
    .await?;
    let mut tickets = Vec::with_capacity(chats);
    for chat in 0..chats {
        let body = json!({"visitor_id": format!("visitor-{chat}"), "body": "oi"}).to_string();
        let delivery = Delivery {
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes(),
            received_at: Timestamp::now(),
        };
        let receipt = engine
            .ingest_webchat(&key, &delivery)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let message = receipt
            .message
            .context("the visitor's message was not stored")?;
        tickets.push(message.ticket_id);
    }
    Ok(Shop {
        engine,
        admin,
        tickets,
        dir,
    })
}

async fn sent_count(db: &Db) -> anyhow::Result<i64> {
    let Db::Sqlite(store) = db else {
        bail!("the outbound bench runs on SQLite")
    };
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND status = 'sent'",
    )
    .fetch_one(&store.read)
    .await?)
}

/// The sender draining a full outbox.
async fn sender_throughput(options: &OutboundBench) -> anyhow::Result<f64> {
    let shop = shop("outbound-sender", options.chats).await?;
    for n in 0..options.messages {
        let ticket = shop.tickets[n % shop.tickets.len()];
        let input = ReplyInput {
            body: format!("Resposta {n}"),
            ..ReplyInput::default()
        };
        shop.engine.reply(&shop.admin, ticket, input).await?;
    }
    let transport = Arc::new(Instant0::default());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let dynamic: Arc<dyn Transport> = transport.clone();
    tokio::spawn(sender_worker(
        shop.engine.clone(),
        stopped,
        dynamic,
        SenderConfig::default(),
    ));
    let target = i64::try_from(options.messages)?;
    loop {
        if transport.calls.load(Ordering::Relaxed) >= options.messages
            && sent_count(shop.engine.db()).await? >= target
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the sender did not finish in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let rate = options.messages as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(true);
    shop.engine.db().close().await;
    let _ = std::fs::remove_dir_all(&shop.dir);
    Ok(rate)
}

/// The same state changes with plain sqlx: due rows read a batch at a time, claimed to `sending`
/// and marked `sent` one by one, each batch in one transaction.
async fn raw_store(options: &OutboundBench) -> anyhow::Result<f64> {
    let shop = shop("outbound-raw", options.chats).await?;
    for n in 0..options.messages {
        let ticket = shop.tickets[n % shop.tickets.len()];
        let input = ReplyInput {
            body: format!("Resposta {n}"),
            ..ReplyInput::default()
        };
        shop.engine.reply(&shop.admin, ticket, input).await?;
    }
    let Db::Sqlite(store) = shop.engine.db() else {
        bail!("the outbound bench runs on SQLite")
    };
    let pool = store.write.clone();
    let started = Instant::now();
    let mut done = 0usize;
    while done < options.messages {
        let now = Timestamp::now().millis();
        let due: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT id, tenant_id FROM messages
             WHERE status = 'queued' AND direction = 'out' AND next_attempt_at <= $1
             ORDER BY next_attempt_at, id LIMIT 256",
        )
        .bind(now)
        .fetch_all(&pool)
        .await?;
        if due.is_empty() {
            bail!("the raw baseline ran out of due messages at {done}");
        }
        let mut tx = pool.begin().await?;
        for (id, tenant) in &due {
            sqlx::query(
                "UPDATE messages SET status = 'sending', attempts = attempts + 1, updated_at = $3
                 WHERE tenant_id = $1 AND id = $2 AND status = 'queued'",
            )
            .bind(tenant)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let mut tx = pool.begin().await?;
        for (id, tenant) in &due {
            sqlx::query(
                "UPDATE messages SET status = 'sent', provider_id = $3, next_attempt_at = NULL,
                     updated_at = $4
                 WHERE tenant_id = $1 AND id = $2 AND status = 'sending'",
            )
            .bind(tenant)
            .bind(id)
            .bind(format!("raw/{id}"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        done += due.len();
    }
    let rate = options.messages as f64 / started.elapsed().as_secs_f64();
    shop.engine.db().close().await;
    let _ = std::fs::remove_dir_all(&shop.dir);
    Ok(rate)
}

struct Latency {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

/// Replies over HTTP at a fixed rate to a running server (its sender delivering them meanwhile).
async fn api_latency(options: &OutboundBench) -> anyhow::Result<Latency> {
    let shop = shop("outbound-api", options.chats).await?;
    let tickets = shop.tickets.clone();
    // The server opens the same store; the setup engine steps aside.
    shop.engine.db().close().await;
    let server = LocalServer::start(config_in(&shop.dir)).await?;
    let token = server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    let (http, base) = (server.http.clone(), server.base.clone());
    let interval = Duration::from_secs_f64(1.0 / f64::from(options.rate));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(options.requests);
    for n in 0..options.requests {
        tokio::time::sleep_until((started + interval.mul_f64(n as f64)).into()).await;
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        let ticket = tickets[n % tickets.len()];
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answer = http
                .post(format!("{base}/api/v1/tickets/{}/messages", ticket.0))
                .bearer_auth(&token)
                .json(&json!({"body": format!("Resposta {n}")}))
                .send()
                .await?;
            let status = answer.status();
            let body: serde_json::Value = answer.json().await?;
            if !status.is_success() || body["status"] != "queued" {
                bail!("reply {n}: {status} {body}");
            }
            Ok::<f64, anyhow::Error>(sent.elapsed().as_secs_f64() * 1e3)
        }));
    }
    let mut latencies = Vec::with_capacity(options.requests);
    for task in tasks {
        latencies.push(task.await??);
    }
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&shop.dir);
    latencies.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Ok(Latency {
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}
