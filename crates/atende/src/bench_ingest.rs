//! `atende bench ingest`: inbound messages through the web-chat endpoint over HTTP (sustained
//! throughput, then latency at half that rate), through the pipeline alone (no HTTP), and the
//! raw-store baseline: the same inserts and updates with plain sqlx, measured in the same run.

use crate::Config;
use crate::bench::LocalServer;
use crate::bench_list::Http;
use anyhow::{Context, bail};
use atende_db::Db;
use atende_domain::Timestamp;
use atende_engine::inbound::channels::Delivery;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct IngestBench {
    pub messages: usize,
    pub contacts: usize,
    pub concurrency: usize,
}

pub async fn run(options: IngestBench) -> anyhow::Result<String> {
    if options.messages == 0 || options.contacts == 0 || options.concurrency == 0 {
        bail!("--messages, --contacts and --concurrency must be positive");
    }
    let mut report = Vec::new();

    // 1. Over HTTP: sustained rate with `concurrency` clients, then p50/p99 at half that rate.
    let site = Site::start().await?;
    let sustained = site.closed_loop(&options, 0).await?;
    let half_rate = (sustained.rate / 2.0).max(1.0);
    let paced = site
        .open_loop(&options, options.messages, half_rate)
        .await?;
    site.stop().await?;
    report.push(format!(
        "http_sustained_msgs_per_s={:.0} (goal >= 10000) http_p99_ms_at_half_rate={:.2} (goal < 20, at {:.0}/s, p50 {:.2})",
        sustained.rate, paced.p99_ms, half_rate, paced.p50_ms
    ));

    // 2. The pipeline alone, in process.
    let pipeline = pipeline_alone(&options).await?;
    // 3. The raw store: the same rows with plain sqlx and the same batching.
    let raw = raw_store(&options).await?;
    report.push(format!(
        "pipeline_msgs_per_s={pipeline:.0} raw_store_msgs_per_s={raw:.0} ratio_to_raw_store={:.2} (goal >= 0.5)",
        pipeline / raw.max(1.0)
    ));
    Ok(format!(
        "ingest messages={} contacts={} concurrency={} {}",
        options.messages,
        options.contacts,
        options.concurrency,
        report.join(" ")
    ))
}

struct Throughput {
    rate: f64,
}

struct Latency {
    p50_ms: f64,
    p99_ms: f64,
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

fn body(n: usize, contacts: usize) -> String {
    json!({
        "visitor_id": format!("visitor-{}", n % contacts),
        "name": format!("Visitante {}", n % contacts),
        "body": format!("Olá, preciso de ajuda com o pedido {n}"),
        "client_message_id": format!("m-{n}"),
    })
    .to_string()
}

/// A server with one web-chat connection, in this process.
struct Site {
    dir: std::path::PathBuf,
    addr: std::net::SocketAddr,
    key: String,
    server: LocalServer,
}

impl Site {
    async fn start() -> anyhow::Result<Site> {
        let dir = temp_dir("ingest-http")?;
        let config = Config {
            database_url: format!("sqlite://{}?mode=rwc", dir.join("atende.db").display()),
            data_dir: dir.clone(),
            admin_email: Some("admin@bench.test".into()),
            admin_password: Some("bench-password-1".into()),
            log: "warn".into(),
            ..Config::default()
        };
        let server = LocalServer::start(config).await?;
        let token = server.login("admin@bench.test", "bench-password-1").await?;
        let (http, base) = (&server.http, &server.base);
        let connection: serde_json::Value = http
            .post(format!("{base}/api/v1/connections"))
            .bearer_auth(&token)
            .json(&json!({"kind": "webchat", "name": "Bench"}))
            .send()
            .await?
            .json()
            .await?;
        let key = connection["public_key"]
            .as_str()
            .context("no web-chat key")?
            .to_owned();
        Ok(Site {
            dir,
            addr: server.addr,
            key,
            server,
        })
    }

    fn path(&self) -> String {
        format!("/api/widget/v1/{}/messages", self.key)
    }

    /// `concurrency` clients post as fast as answers come back.
    async fn closed_loop(
        &self,
        options: &IngestBench,
        offset: usize,
    ) -> anyhow::Result<Throughput> {
        let next = Arc::new(AtomicUsize::new(0));
        let mut clients = Vec::with_capacity(options.concurrency);
        for _ in 0..options.concurrency {
            clients.push(Http::connect(self.addr).await?);
        }
        let started = Instant::now();
        let mut workers = Vec::new();
        for mut http in clients {
            let next = next.clone();
            let path = self.path();
            let (total, contacts) = (options.messages, options.contacts);
            workers.push(tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        return Ok::<(), anyhow::Error>(());
                    }
                    post(&mut http, &path, offset + n, contacts).await?;
                }
            }));
        }
        for worker in workers {
            worker.await??;
        }
        Ok(Throughput {
            rate: options.messages as f64 / started.elapsed().as_secs_f64(),
        })
    }

    /// Posts at a fixed rate regardless of answers (open loop), recording each latency.
    async fn open_loop(
        &self,
        options: &IngestBench,
        count: usize,
        rate: f64,
    ) -> anyhow::Result<Latency> {
        let interval = Duration::from_secs_f64(1.0 / rate);
        // Idle keep-alive connections; a request finding none opens one (as a browser would).
        let idle: Arc<std::sync::Mutex<Vec<Http>>> = Arc::new(std::sync::Mutex::new(Vec::new()));
        for _ in 0..options.concurrency {
            let http = Http::connect(self.addr).await?;
            if let Ok(mut idle) = idle.lock() {
                idle.push(http);
            }
        }
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(count);
        for i in 0..count {
            let due = started + interval.mul_f64(i as f64);
            tokio::time::sleep_until(due.into()).await;
            let (idle, addr, path) = (idle.clone(), self.addr, self.path());
            let (n, contacts) = (options.messages + i, options.contacts);
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let taken = idle.lock().ok().and_then(|mut idle| idle.pop());
                let mut http = match taken {
                    Some(http) => http,
                    None => Http::connect(addr).await?,
                };
                post(&mut http, &path, n, contacts).await?;
                let elapsed = sent.elapsed().as_secs_f64() * 1e3;
                if let Ok(mut idle) = idle.lock() {
                    idle.push(http);
                }
                Ok::<f64, anyhow::Error>(elapsed)
            }));
        }
        let mut latencies = Vec::with_capacity(count);
        for task in tasks {
            latencies.push(task.await??);
        }
        latencies.sort_by(|a, b| a.total_cmp(b));
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        Ok(Latency {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.server.stop().await?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// One visitor message over the keep-alive connection.
async fn post(http: &mut Http, path: &str, n: usize, contacts: usize) -> anyhow::Result<()> {
    let (status, answer) = http
        .request("POST", path, None, Some(&body(n, contacts)))
        .await?;
    if !(200..300).contains(&status) {
        bail!("post {n}: {status} {}", String::from_utf8_lossy(&answer));
    }
    Ok(())
}

/// A fresh engine over SQLite with one tenant and one web-chat connection.
async fn engine_with_webchat(
    label: &str,
) -> anyhow::Result<(atende_engine::Engine, String, std::path::PathBuf)> {
    let dir = temp_dir(label)?;
    let config = Config {
        database_url: format!("sqlite://{}?mode=rwc", dir.join("atende.db").display()),
        data_dir: dir.clone(),
        admin_email: Some("admin@bench.test".into()),
        admin_password: Some("bench-password-1".into()),
        ..Config::default()
    };
    let db = crate::open_store(&config).await?;
    let engine = crate::open_engine(&config, db).await?;
    crate::bootstrap::first_run(&engine, &config).await?;
    let tenant = atende_engine::db::tenants::platform_find_by_slug(
        engine.db(),
        crate::bootstrap::DEFAULT_TENANT_SLUG,
    )
    .await?
    .context("no default tenant")?;
    let key = format!("wc_bench_{}", Timestamp::now().millis());
    atende_engine::db::connections::create(
        engine.db(),
        tenant.id,
        &atende_engine::db::connections::NewConnection {
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
    Ok((engine, key, dir))
}

async fn pipeline_alone(options: &IngestBench) -> anyhow::Result<f64> {
    let (engine, key, dir) = engine_with_webchat("ingest-pipeline").await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..options.concurrency {
        let (engine, key, next) = (engine.clone(), key.clone(), next.clone());
        let (total, contacts) = (options.messages, options.contacts);
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                let text = body(n, contacts);
                let delivery = Delivery {
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: text.as_bytes(),
                    received_at: Timestamp::now(),
                };
                engine
                    .ingest_webchat(&key, &delivery)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let rate = options.messages as f64 / started.elapsed().as_secs_f64();
    engine.db().close().await;
    let _ = std::fs::remove_dir_all(dir);
    Ok(rate)
}

/// The same rows the pipeline writes per message (inbound event, contact lookup, ticket
/// find-or-create, message, ticket bump), with plain sqlx on one connection, committed in batches
/// of 256 like the pipeline's group commit.
async fn raw_store(options: &IngestBench) -> anyhow::Result<f64> {
    let (engine, key, dir) = engine_with_webchat("ingest-raw").await?;
    let connection = atende_engine::db::connections::platform_find_by_public_key(engine.db(), &key)
        .await?
        .context("no connection")?;
    let tenant = connection.tenant_id.0;
    let Db::Sqlite(store) = engine.db() else {
        bail!("the raw baseline runs on SQLite")
    };
    let pool = store.write.clone();
    // Contacts exist up front (the pipeline creates them on first contact: a small advantage here).
    let mut contact_ids = Vec::with_capacity(options.contacts);
    {
        let mut tx = pool.begin().await?;
        for c in 0..options.contacts {
            let now = Timestamp::now().millis();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO contacts (tenant_id, name, name_source, custom_fields, created_at, updated_at, search_text)
                 VALUES ($1, $2, 'push', '{}', $3, $3, $2) RETURNING id",
            )
            .bind(tenant)
            .bind(format!("visitante {c}"))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            contact_ids.push(id);
        }
        tx.commit().await?;
    }
    let started = Instant::now();
    let mut n = 0;
    while n < options.messages {
        let mut tx = pool.begin().await?;
        for _ in 0..256.min(options.messages - n) {
            let now = Timestamp::now().millis();
            let contact = contact_ids[n % options.contacts];
            let raw = body(n, options.contacts);
            sqlx::query(
                "INSERT INTO inbound_events (tenant_id, connection_id, provider_id, received_at, raw_body, outcome)
                 VALUES ($1, $2, $3, $4, $5, 'processed')",
            )
            .bind(tenant)
            .bind(connection.id.0)
            .bind(format!("m-{n}"))
            .bind(now)
            .bind(raw.as_str())
            .execute(&mut *tx)
            .await?;
            let ticket: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM tickets WHERE tenant_id = $1 AND contact_id = $2 AND connection_id = $3 AND status <> 'closed'",
            )
            .bind(tenant)
            .bind(contact)
            .bind(connection.id.0)
            .fetch_optional(&mut *tx)
            .await?;
            let ticket = match ticket {
                Some(id) => id,
                None => {
                    sqlx::query_scalar(
                        "INSERT INTO tickets (tenant_id, contact_id, connection_id, status, protocol, created_at, updated_at)
                         VALUES ($1, $2, $3, 'pending', $4, $5, $5) RETURNING id",
                    )
                    .bind(tenant)
                    .bind(contact)
                    .bind(connection.id.0)
                    .bind(format!("raw-{n}"))
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?
                }
            };
            sqlx::query(
                "INSERT INTO messages (tenant_id, ticket_id, connection_id, contact_id, direction, author, kind, body,
                     provider_id, status, sent_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'in', 'contact', 'text', $5, $6, 'delivered', $7, $7, $7)",
            )
            .bind(tenant)
            .bind(ticket)
            .bind(connection.id.0)
            .bind(contact)
            .bind(format!("Olá, preciso de ajuda com o pedido {n}"))
            .bind(format!("m-{n}"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE tickets SET unread = unread + 1, last_message = $3, last_message_at = $4,
                     last_inbound_at = $4, updated_at = $4 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(ticket)
            .bind(format!("Olá, preciso de ajuda com o pedido {n}"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            n += 1;
        }
        tx.commit().await?;
    }
    let rate = options.messages as f64 / started.elapsed().as_secs_f64();
    engine.db().close().await;
    let _ = std::fs::remove_dir_all(dir);
    Ok(rate)
}
