//! `atende bench live`: fan-out of live events to thousands of panel WebSockets (issue 3 goal:
//! 2,000 connected agents, p99 from "message stored" to "frame received" < 50 ms).
//!
//! Starts the real HTTP app in this process on a fresh SQLite store, connects `agents` WebSocket
//! clients (agents of one queue, so every message is visible to all of them), then stores
//! messages of an open ticket of that queue and announces them the way the pipeline does
//! (`messages::insert` + `Engine::publish_message`). Each client notes when the frame of each
//! message arrived; latency = arrival − the instant the insert returned. The load generator shares
//! the process and the cores with the server.
//!
//! Baseline in the same run: the same payload fanned out through a bare `tokio::sync::broadcast`
//! to as many in-process receiver tasks, at the same rate: the floor of the scheduling alone.
//!
//! Needs two file descriptors per agent (client and server end): run `ulimit -n 65536` first.

use crate::Config;
use anyhow::{Context, bail};
use atende_db::Db;
use atende_domain::{
    ChannelKind, MessageAuthor, MessageDirection, MessageKind, MessageStatus, NameSource, Profile,
    TenantId, TicketStatus, TokenKind,
};
use atende_engine::Engine;
use atende_engine::auth::ClientInfo;
use atende_engine::events::EventKind;
use futures::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};

/// Messages sent before measuring, so the connect-time presence storm has drained.
const WARM_UP: usize = 3;
/// Clients connecting at the same time.
const CONNECT_CONCURRENCY: usize = 64;
/// How long one client may take to open its socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the bench waits for every frame of one phase.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// What `atende bench live` was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct LiveBench {
    pub agents: usize,
    pub messages: usize,
    /// Messages per second.
    pub rate: u32,
}

/// When each message was stored, and how many clients have received it.
struct Ledger {
    stored: Vec<OnceLock<Instant>>,
    received: Vec<AtomicUsize>,
}

impl Ledger {
    fn new(count: usize) -> Self {
        Self {
            stored: (0..count).map(|_| OnceLock::new()).collect(),
            received: (0..count).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// Notes one arrival of message `seq`; answers its latency in microseconds.
    fn arrived(&self, seq: usize, at: Instant) -> Option<u64> {
        let stored = self.stored.get(seq)?.get()?;
        self.received.get(seq)?.fetch_add(1, Ordering::Relaxed);
        Some(u64::try_from(at.saturating_duration_since(*stored).as_micros()).unwrap_or(u64::MAX))
    }

    async fn wait_for(&self, seq: usize, clients: usize) -> anyhow::Result<()> {
        let started = Instant::now();
        while self.received[seq].load(Ordering::Relaxed) < clients {
            if started.elapsed() > PHASE_TIMEOUT {
                bail!(
                    "message {seq} reached {} of {clients} clients in {PHASE_TIMEOUT:?}",
                    self.received[seq].load(Ordering::Relaxed)
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }
}

pub async fn live(options: LiveBench) -> anyhow::Result<String> {
    let LiveBench {
        agents,
        messages,
        rate,
    } = options;
    if agents == 0 || messages == 0 || rate == 0 {
        bail!("--agents, --messages and --rate must be at least 1");
    }
    check_open_files(agents)?;
    let dir = scratch_dir()?;
    let outcome = run(agents, messages, rate, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn run(
    agents: usize,
    messages: usize,
    rate: u32,
    dir: &std::path::Path,
) -> anyhow::Result<String> {
    let config = Config {
        database_url: format!("sqlite://{}?mode=rwc", dir.join("atende.db").display()),
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        admin_email: None,
        admin_password: None,
        ..Config::default()
    };
    let db = crate::open_store(&config).await?;
    let engine = crate::open_engine(&config, db.clone()).await?;
    engine.reset_presence().await?;
    let setup = Instant::now();
    let world = World::create(&engine, &db, agents).await?;
    let setup_s = setup.elapsed().as_secs_f64();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = atende_web::router(engine.clone());
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stopped.await;
        })
        .await
    });

    let total = WARM_UP + messages;
    let ledger = Arc::new(Ledger::new(total));
    let connecting = Instant::now();
    let clients = connect_all(addr, &world.tokens, total, &ledger).await?;
    let connect_s = connecting.elapsed().as_secs_f64();
    tracing::info!(agents, connect_s, "bench live: every agent is connected");

    // Warm-up: once every client has the last warm-up message, the presence storm of the
    // connections is behind them (each socket delivers in order).
    let settling = Instant::now();
    for seq in 0..WARM_UP {
        world.store_and_publish(&engine, &db, &ledger, seq).await?;
    }
    ledger.wait_for(WARM_UP - 1, agents).await?;
    let settle_s = settling.elapsed().as_secs_f64();
    tracing::info!(settle_s, "bench live: presence settled; measuring");

    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut pace = tokio::time::interval(period);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let sending = Instant::now();
    for seq in WARM_UP..total {
        pace.tick().await;
        world.store_and_publish(&engine, &db, &ledger, seq).await?;
    }
    for seq in WARM_UP..total {
        ledger.wait_for(seq, agents).await?;
    }
    let send_s = sending.elapsed().as_secs_f64();
    tracing::info!(send_s, "bench live: every frame arrived; closing");

    let mut latencies = Vec::with_capacity(agents * messages);
    for client in clients {
        let done = tokio::time::timeout(PHASE_TIMEOUT, client)
            .await
            .context("a client did not finish")?;
        latencies.extend(done.context("a client task failed")??);
    }
    // Let the server see every socket go (and record everyone offline) before stopping it.
    let closing = Instant::now();
    while engine.presence().live_connections() > 0 && closing.elapsed() < PHASE_TIMEOUT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop_server.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    if tokio::time::timeout(Duration::from_secs(10), db.close())
        .await
        .is_err()
    {
        tracing::warn!("the store did not close within 10 s");
    }

    let baseline = raw_broadcast(agents, messages, rate).await?;
    let live = Percentiles::of(&mut latencies);
    let raw = Percentiles::of(&mut baseline.clone());
    Ok(format!(
        "live agents={agents} messages={messages} rate={rate}/s frames={} setup_s={setup_s:.1} connect_s={connect_s:.1} \
         presence_settle_s={settle_s:.1} send_s={send_s:.1} stored_to_frame_p50_ms={:.2} p99_ms={:.2} max_ms={:.2} (goal p99 < 50) \
         raw_broadcast_p50_ms={:.2} raw_broadcast_p99_ms={:.2} p99_ratio_to_raw={:.1}",
        live.count,
        live.p50_ms,
        live.p99_ms,
        live.max_ms,
        raw.p50_ms,
        raw.p99_ms,
        live.p99_ms / raw.p99_ms.max(0.001)
    ))
}

/// The tenant of the bench: one queue, its agents with API tokens, one open ticket in the queue.
struct World {
    tenant: TenantId,
    tokens: Vec<String>,
    ticket: atende_domain::Ticket,
}

impl World {
    async fn create(engine: &Engine, db: &Db, agents: usize) -> anyhow::Result<World> {
        use atende_db::{connections, contacts, queues, tenants, tickets, users};
        let suffix = std::process::id();
        let tenant = tenants::platform_create(db, &format!("bench-live-{suffix}"), "Bench live")
            .await?
            .id;
        let queue = queues::create(
            db,
            tenant,
            &queues::NewQueue {
                name: "Vendas".into(),
                color: "#336699".into(),
                greeting: String::new(),
                absence_message: String::new(),
                business_hours: None,
            },
        )
        .await?;
        let mut tokens = Vec::with_capacity(agents);
        let mut first_agent = None;
        for index in 0..agents {
            // No usable password: the bench never logs in, it issues tokens directly.
            let user = users::create(
                db,
                tenant,
                &users::NewUser {
                    email: format!("agent{index}@bench-{suffix}.test"),
                    name: format!("Agent {index}"),
                    password_hash: "-".into(),
                    profile: Profile::User,
                    ..users::NewUser::default()
                },
            )
            .await?;
            queues::set_user_queues(db, tenant, user.id, &[queue.id]).await?;
            let token = engine
                .issue_token(&user, TokenKind::Api, None, &ClientInfo::default())
                .await?;
            tokens.push(token);
            first_agent.get_or_insert(user.id);
        }
        let connection = connections::create(
            db,
            tenant,
            &connections::NewConnection {
                kind: ChannelKind::Webchat,
                name: "Site".into(),
                default_queue_id: Some(queue.id),
                default_flow_id: None,
                public_key: Some(format!("bench-live-{suffix}")),
                credentials: None,
                send_delay_min_ms: None,
                send_delay_max_ms: None,
                cadence_enabled: None,
            },
        )
        .await?;
        let contact = contacts::create(
            db,
            tenant,
            &contacts::NewContact {
                name: "Cliente".into(),
                name_source: NameSource::Manual,
                phone: None,
                email: None,
                avatar_url: None,
                blocked: false,
                is_group: false,
                custom_fields: serde_json::json!({}),
                identities: vec![(ChannelKind::Webchat, format!("visitor-{suffix}"))],
                wallet_user_ids: Vec::new(),
                tag_ids: Vec::new(),
            },
        )
        .await?;
        // Open and owned by the first agent: every agent of the queue sees it and may read it.
        let ticket = tickets::create(
            db,
            tenant,
            &tickets::NewTicket {
                contact_id: contact.id,
                connection_id: connection.id,
                status: TicketStatus::Open,
                owner_id: first_agent,
                queue_id: Some(queue.id),
                is_group: false,
            },
        )
        .await?;
        Ok(World {
            tenant,
            tokens,
            ticket,
        })
    }

    /// Stores message `seq` and announces it as the inbound pipeline does.
    async fn store_and_publish(
        &self,
        engine: &Engine,
        db: &Db,
        ledger: &Ledger,
        seq: usize,
    ) -> anyhow::Result<()> {
        let ticket = &self.ticket;
        let message = atende_db::messages::insert(
            db,
            self.tenant,
            &atende_db::messages::NewMessage {
                ticket_id: ticket.id,
                connection_id: ticket.connection_id,
                contact_id: ticket.contact_id,
                direction: MessageDirection::In,
                author: MessageAuthor::Contact,
                author_user_id: None,
                kind: MessageKind::Text,
                body: format!(
                    "bench-{seq} Olá, gostaria de saber o prazo de entrega do meu pedido."
                ),
                provider_id: Some(format!("bench-{seq}")),
                quoted_id: None,
                status: MessageStatus::Delivered,
                failure_reason: None,
                idempotency_key: None,
                queue_stamp: ticket.queue_id,
                imported: false,
                sent_at: atende_domain::Timestamp::now(),
            },
        )
        .await?;
        let _ = ledger.stored[seq].set(Instant::now());
        engine
            .publish_message(self.tenant, EventKind::MessageCreated, ticket, &message)
            .await?;
        Ok(())
    }
}

type ClientTask = tokio::task::JoinHandle<anyhow::Result<Vec<u64>>>;

/// Connects every agent (a bounded number at a time) and starts its reader as soon as its socket
/// is open, so no socket sits unread while the others connect.
async fn connect_all(
    addr: SocketAddr,
    tokens: &[String],
    total: usize,
    ledger: &Arc<Ledger>,
) -> anyhow::Result<Vec<ClientTask>> {
    let connections = futures::stream::iter(tokens.iter().cloned())
        .map(|token| async move {
            let mut request =
                format!("ws://{addr}/api/v1/events?heartbeat_ms=60000").into_client_request()?;
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
            // A small read buffer: tungstenite zero-fills the whole buffer (128 KiB by default)
            // on every read, which would make the clients, not the server, the bottleneck.
            let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
            let connect =
                tokio_tungstenite::connect_async_with_config(request, Some(config), false);
            let (socket, _) = tokio::time::timeout(CONNECT_TIMEOUT, connect)
                .await
                .context("a live socket did not open in time")?
                .context("cannot open a live socket")?;
            anyhow::Ok(tokio::spawn(read_frames(socket, total, ledger.clone())))
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    connections.into_iter().collect()
}

/// One agent's socket: notes each bench message as it arrives, pings, and leaves after the last.
async fn read_frames(
    mut socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    total: usize,
    ledger: Arc<Ledger>,
) -> anyhow::Result<Vec<u64>> {
    let mut latencies = Vec::with_capacity(total.saturating_sub(WARM_UP));
    let mut seen = 0;
    let mut ping = tokio::time::interval(Duration::from_secs(30));
    while seen < total {
        tokio::select! {
            frame = socket.next() => {
                let frame = match frame {
                    Some(frame) => frame?,
                    None => bail!("the server closed a live socket"),
                };
                let at = Instant::now();
                if let Message::Text(text) = frame
                    && let Some(seq) = bench_seq(text.as_str())
                    && let Some(micros) = ledger.arrived(seq, at)
                {
                    seen += 1;
                    if seq >= WARM_UP {
                        latencies.push(micros);
                    }
                }
            }
            _ = ping.tick() => socket.send(Message::text(r#"{"type":"ping"}"#)).await?,
        }
    }
    // A clean close (1000): the agent is offline at once, without the reconnect grace.
    let _ = socket
        .close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bench done".into(),
        }))
        .await;
    Ok(latencies)
}

/// The sequence number in a `message.created` frame of the bench (`"body":"bench-<n> …"`).
fn bench_seq(frame: &str) -> Option<usize> {
    if !frame.contains(r#""type":"message.created""#) {
        return None;
    }
    let start = frame.find(r#""body":"bench-"#)? + r#""body":"bench-"#.len();
    let digits: String = frame[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The same payload through a bare broadcast channel to `receivers` tasks, at the same rate.
async fn raw_broadcast(receivers: usize, messages: usize, rate: u32) -> anyhow::Result<Vec<u64>> {
    let (sender, _) = tokio::sync::broadcast::channel::<(Instant, Arc<str>)>(4096);
    let ready = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(receivers);
    for _ in 0..receivers {
        let mut receiver = sender.subscribe();
        let ready = ready.clone();
        tasks.push(tokio::spawn(async move {
            ready.fetch_add(1, Ordering::Relaxed);
            let mut latencies = Vec::with_capacity(messages);
            while latencies.len() < messages {
                match receiver.recv().await {
                    Ok((sent, payload)) => {
                        let at = Instant::now();
                        std::hint::black_box(payload.len());
                        latencies.push(
                            u64::try_from(at.saturating_duration_since(sent).as_micros())
                                .unwrap_or(u64::MAX),
                        );
                    }
                    Err(error) => return Err(anyhow::anyhow!("raw broadcast: {error}")),
                }
            }
            Ok(latencies)
        }));
    }
    while ready.load(Ordering::Relaxed) < receivers {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let payload: Arc<str> = Arc::from(
        r#"{"id":1,"type":"message.created","at":0,"data":{"body":"bench-0 Olá, gostaria de saber o prazo de entrega do meu pedido."}}"#,
    );
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    for _ in 0..messages {
        pace.tick().await;
        let _ = sender.send((Instant::now(), payload.clone()));
    }
    let mut latencies = Vec::with_capacity(receivers * messages);
    for task in tasks {
        let done = tokio::time::timeout(PHASE_TIMEOUT, task)
            .await
            .context("a raw receiver did not finish")?;
        latencies.extend(done??);
    }
    Ok(latencies)
}

struct Percentiles {
    count: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Percentiles {
    fn of(micros: &mut [u64]) -> Percentiles {
        micros.sort_unstable();
        let at = |q: f64| {
            if micros.is_empty() {
                return 0.0;
            }
            let index = ((micros.len() as f64 * q).ceil() as usize).clamp(1, micros.len()) - 1;
            micros[index] as f64 / 1000.0
        };
        Percentiles {
            count: micros.len(),
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// Fails early, with what to do, when the process may not open enough sockets.
fn check_open_files(agents: usize) -> anyhow::Result<()> {
    let needed = agents * 2 + 256;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|value| value.parse::<usize>().ok());
    match soft {
        Some(soft) if soft < needed => bail!(
            "{agents} agents need about {needed} open files (client and server end of each socket), \
             but this process may open {soft}: run `ulimit -n 65536` in this shell first"
        ),
        _ => Ok(()),
    }
}

fn scratch_dir() -> anyhow::Result<std::path::PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let dir =
        std::env::temp_dir().join(format!("atende-bench-live-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_frames_are_recognised() {
        let frame =
            r#"{"id":5,"type":"message.created","at":1,"data":{"body":"bench-12 Olá","id":3}}"#;
        assert_eq!(bench_seq(frame), Some(12));
        assert_eq!(bench_seq(r#"{"id":5,"type":"presence","data":{}}"#), None);
    }

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let mut values: Vec<u64> = (1..=100).map(|v| v * 1000).collect();
        let p = Percentiles::of(&mut values);
        assert_eq!((p.p50_ms, p.p99_ms, p.max_ms), (50.0, 99.0, 100.0));
    }
}
