//! `atende bench ticket-list`: the agent's ticket list at scale (issue 3, "Numbers"). Builds the
//! data shape of ARCHITECTURE "Benchmarks" (1M tickets: 5 % open, 5 % pending, 90 % closed; 100k
//! contacts; 300k messages; 5 queues; 20 agents in 1–2 queues) with bulk inserts into a fresh
//! store, starts the real server in this process, and times over HTTP a `user` agent's page of the
//! open tab, the tab counters, a chat page and an admin's all-status page; next to them, the same
//! page and counters asked of the store directly (the raw-store baseline) and the ratio.

use crate::Config;
use anyhow::{Context, bail};
use atende_db::Db;
use atende_db::queues::NewQueue;
use atende_db::ticket_list::bench_data::{self, BulkContact, BulkMessage, BulkTicket};
use atende_db::ticket_list::{self, Filter, PageRequest, Scope, SortKey, Visibility};
use atende_db::users::NewUser;
use atende_domain::visibility::{Plan, Viewer, VisibilitySettings};
use atende_domain::{
    ChannelKind, ConnectionId, ContactId, MessageAuthor, MessageDirection, Profile, QueueId,
    TenantId, TicketId, TicketStatus, Timestamp, UserId,
};
use std::fmt::Write as _;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const QUEUES: usize = 5;
const AGENTS: usize = 20;
pub(crate) const PASSWORD: &str = "bench-password-1";
const ADMIN_EMAIL: &str = "admin@bench.test";
/// Rows generated and inserted per transaction.
const CHUNK: usize = 20_000;
const DAY: i64 = 86_400_000;

/// What to build and how long to measure.
#[derive(Debug, Clone)]
pub struct Options {
    pub tickets: usize,
    /// Default: a tenth of the tickets (at least the open and pending ones' worth).
    pub contacts: Option<usize>,
    /// Default: three tenths of the tickets.
    pub messages: Option<usize>,
    /// Timed requests per figure.
    pub requests: usize,
    /// Default: a SQLite file in a temporary directory. A PostgreSQL database must be empty.
    pub database_url: Option<String>,
}

/// xorshift64*: reproducible data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap_or(0)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Latencies of one figure.
pub(crate) struct Sample(pub(crate) Vec<Duration>);

impl Sample {
    pub(crate) fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
    }

    pub(crate) fn line(&self, name: &str) -> String {
        format!(
            "{name}: p50={:.3} ms p99={:.3} ms",
            self.percentile(50.0),
            self.percentile(99.0)
        )
    }
}

pub async fn run(options: Options) -> anyhow::Result<String> {
    with_server("ticket-list", &options, async |db, shape, addr, report| {
        measure(db, shape, &options, addr, report).await
    })
    .await
}

/// The built data set and who to measure as.
pub(crate) struct Shape {
    pub(crate) tenant: TenantId,
    pub(crate) agent: UserId,
    pub(crate) agent_email: String,
    pub(crate) agent_queues: Vec<QueueId>,
    /// An open ticket of the measured agent (for the chat page).
    agent_ticket: Option<TicketId>,
    build: Duration,
}

/// Builds the data set in a fresh store (a temporary SQLite file unless `database_url` is
/// given), starts the real server on a loopback port and runs `measure` against it; the answer
/// is a header line (`scenario`, store, sizes, build time) and what `measure` wrote.
pub(crate) async fn with_server(
    scenario: &str,
    options: &Options,
    measure: impl AsyncFnOnce(&Db, &Shape, std::net::SocketAddr, &mut String) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let dir = std::env::temp_dir().join(format!(
        "atende-bench-list-{}-{}",
        std::process::id(),
        Timestamp::now().0
    ));
    std::fs::create_dir_all(&dir)?;
    let outcome = run_in(scenario, options, &dir, measure).await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn run_in(
    scenario: &str,
    options: &Options,
    dir: &std::path::Path,
    measure: impl AsyncFnOnce(&Db, &Shape, std::net::SocketAddr, &mut String) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let database_url = options
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("atende.db").display()));
    let config = Config {
        database_url: database_url.clone(),
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        secret_key: None,
        admin_email: Some(ADMIN_EMAIL.into()),
        admin_password: Some(PASSWORD.into()),
        session_hours: 24,
        log: "warn".into(),
    };
    let db = crate::open_store(&config).await?;
    if atende_db::tenants::platform_count(&db).await? > 0 {
        bail!(
            "the benchmark needs an empty database: {} already has tenants",
            crate::redact(&database_url)
        );
    }
    let engine = crate::open_engine(&config, db.clone()).await?;
    crate::bootstrap::first_run(&engine, &config).await?;
    let shape = build(&db, options).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::serve(config, listener, async move {
        let _ = stopped.await;
    }));
    let mut report = String::new();
    let measured = measure(&db, &shape, addr, &mut report).await;
    let _ = stop.send(());
    if let Ok(Err(error)) = server.await {
        tracing::warn!(%error, "the benchmark server stopped with an error");
    }
    db.close().await;
    measured?;
    let backend = match db.backend() {
        atende_db::Backend::Sqlite => "sqlite",
        atende_db::Backend::Postgres => "postgres",
    };
    Ok(format!(
        "{scenario} store={backend} tickets={} contacts={} messages={} build_s={:.1}\n{report}",
        options.tickets,
        contacts_of(options),
        messages_of(options),
        shape.build.as_secs_f64()
    ))
}

fn contacts_of(options: &Options) -> usize {
    options.contacts.unwrap_or(options.tickets / 10).max(1)
}

fn messages_of(options: &Options) -> usize {
    options.messages.unwrap_or(options.tickets * 3 / 10)
}

/// The data set, inserted in chunks (one transaction each).
async fn build(db: &Db, options: &Options) -> anyhow::Result<Shape> {
    let started = Instant::now();
    let tenant =
        atende_db::tenants::platform_find_by_slug(db, crate::bootstrap::DEFAULT_TENANT_SLUG)
            .await?
            .context("the default tenant is missing")?
            .id;
    let mut queues = Vec::new();
    for n in 0..QUEUES {
        let queue = atende_db::queues::create(
            db,
            tenant,
            &NewQueue {
                name: format!("Fila {}", n + 1),
                color: "#5b6cff".into(),
                greeting: String::new(),
                absence_message: String::new(),
                business_hours: None,
            },
        )
        .await?;
        queues.push(queue.id);
    }
    let hash = atende_engine::auth::hash_password(PASSWORD)?;
    let mut agents = Vec::new();
    let mut members: Vec<Vec<UserId>> = vec![Vec::new(); QUEUES];
    let mut agent_queues = Vec::new();
    for n in 0..AGENTS {
        let user = atende_db::users::create(
            db,
            tenant,
            &NewUser {
                email: format!("agent{n}@bench.test"),
                name: format!("Agente {n}"),
                password_hash: hash.clone(),
                profile: Profile::User,
                ..NewUser::default()
            },
        )
        .await?;
        // Every other agent works two queues.
        let mut mine = vec![n % QUEUES];
        if n % 2 == 0 {
            mine.push((n + 1) % QUEUES);
        }
        let ids: Vec<QueueId> = mine.iter().map(|q| queues[*q]).collect();
        atende_db::queues::set_user_queues(db, tenant, user.id, &ids).await?;
        for q in &mine {
            members[*q].push(user.id);
        }
        if n == 0 {
            agent_queues = ids;
        }
        agents.push(user.id);
    }

    let contacts = contacts_of(options);
    let now = Timestamp::now().0;
    let mut contact_ids = Vec::with_capacity(contacts);
    for start in (0..contacts).step_by(CHUNK) {
        let rows: Vec<BulkContact> = (start..(start + CHUNK).min(contacts))
            .map(|n| BulkContact {
                name: format!("Cliente {n}"),
                phone: Some(format!("+5511{:09}", 900_000_000 + n)),
                created_at: Timestamp(now - 400 * DAY),
            })
            .collect();
        contact_ids.extend(bench_data::insert_contacts(db, tenant, &rows).await?);
    }
    // Each contact has at most one ticket that is not closed per connection.
    let non_closed = options.tickets.div_ceil(10);
    let mut connections = Vec::new();
    for n in 0..non_closed.div_ceil(contacts).max(1) {
        let connection = atende_db::connections::create(
            db,
            tenant,
            &atende_db::connections::NewConnection {
                kind: ChannelKind::Webchat,
                name: format!("Site {n}"),
                default_queue_id: None,
                default_flow_id: None,
                public_key: None,
                credentials: None,
                send_delay_min_ms: None,
                send_delay_max_ms: None,
                cadence_enabled: None,
            },
        )
        .await?;
        connections.push(connection.id);
    }

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let span = 365 * DAY;
    let step = (span / options.tickets.max(1) as i64).max(1);
    let mut next_open = 0_usize;
    // (ticket, contact, connection) of the tickets that get messages first.
    let mut talking: Vec<(TicketId, ContactId, ConnectionId)> = Vec::new();
    let mut agent_ticket = None;
    for start in (0..options.tickets).step_by(CHUNK) {
        let mut rows = Vec::new();
        for i in start..(start + CHUNK).min(options.tickets) {
            let status = match i % 20 {
                0 => TicketStatus::Open,
                1 => TicketStatus::Pending,
                _ => TicketStatus::Closed,
            };
            let queue = rng.below(QUEUES);
            let owner = match status {
                TicketStatus::Pending => None,
                _ => Some(members[queue][rng.below(members[queue].len())]),
            };
            let (contact, connection) = if status == TicketStatus::Closed {
                (contact_ids[rng.below(contacts)], connections[0])
            } else {
                let slot = next_open;
                next_open += 1;
                (contact_ids[slot % contacts], connections[slot / contacts])
            };
            let created = now - span + i as i64 * step;
            let inbound = created + i64::try_from(rng.below(3_600_000)).unwrap_or(0);
            let updated = inbound + i64::try_from(rng.below(600_000)).unwrap_or(0);
            let unread = match status {
                TicketStatus::Pending => 1 + rng.below(4) as i64,
                TicketStatus::Open if rng.chance(30) => 1 + rng.below(3) as i64,
                _ => 0,
            };
            rows.push(BulkTicket {
                contact_id: contact,
                connection_id: connection,
                status,
                owner_id: owner,
                queue_id: Some(queues[queue]),
                is_group: status != TicketStatus::Closed && rng.chance(1),
                protocol: format!("B{i:08}"),
                bot_flow_id: None,
                integration_session: None,
                wallet_overflowed: false,
                unread,
                last_message: "Olá, gostaria de saber o status do meu pedido".into(),
                last_message_at: Some(Timestamp(updated)),
                last_inbound_at: Some(Timestamp(inbound)),
                closed_at: (status == TicketStatus::Closed).then_some(Timestamp(updated)),
                created_at: Timestamp(created),
                updated_at: Timestamp(updated),
            });
        }
        let ids = bench_data::insert_tickets(db, tenant, &rows).await?;
        for (row, id) in rows.iter().zip(&ids) {
            if row.status != TicketStatus::Closed {
                talking.push((*id, row.contact_id, row.connection_id));
                if row.owner_id == Some(agents[0]) && row.status == TicketStatus::Open {
                    agent_ticket = Some(*id);
                }
            }
        }
    }

    let messages = messages_of(options);
    if !talking.is_empty() {
        let mut batch = Vec::with_capacity(CHUNK);
        for n in 0..messages {
            let (ticket, contact, connection) = talking[n % talking.len()];
            let round = (n / talking.len()) as i64;
            let inbound = n % 3 != 1;
            batch.push(BulkMessage {
                ticket_id: ticket,
                connection_id: connection,
                contact_id: contact,
                direction: if inbound {
                    MessageDirection::In
                } else {
                    MessageDirection::Out
                },
                author: if inbound {
                    MessageAuthor::Contact
                } else {
                    MessageAuthor::User
                },
                author_user_id: None,
                body: format!("mensagem {n}"),
                queue_stamp: None,
                sent_at: Timestamp(now - DAY + round * 60_000 + (n % 1000) as i64),
            });
            if batch.len() == CHUNK {
                bench_data::insert_messages(db, tenant, &batch).await?;
                batch.clear();
            }
        }
        bench_data::insert_messages(db, tenant, &batch).await?;
    }
    // PostgreSQL's autovacuum would get there on its own; the product never runs ANALYZE on
    // SQLite, so the SQLite figures are measured without planner statistics.
    bench_data::refresh_statistics(db, false).await?;
    Ok(Shape {
        tenant,
        agent: agents[0],
        agent_email: "agent0@bench.test".into(),
        agent_queues,
        agent_ticket,
        build: started.elapsed(),
    })
}

/// An HTTP answer; header names in lower case.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// A minimal keep-alive HTTP/1.1 client, so the measuring side stays light (the ingest benchmark
/// uses it too).
pub(crate) struct Http {
    stream: BufReader<TcpStream>,
    host: String,
}

impl Http {
    pub(crate) async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Http> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Http {
            stream: BufReader::new(stream),
            host: addr.to_string(),
        })
    }

    pub(crate) async fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        let bearer = token.map(|token| format!("Bearer {token}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|value| ("Authorization", value))
            .into_iter()
            .collect();
        let body = body.map(|body| ("application/json", body.as_bytes()));
        let answer = self.send(method, path, &headers, body).await?;
        Ok((answer.status, answer.body))
    }

    /// One request with these extra headers and an optional `(content type, body)`.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> anyhow::Result<Answer> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for (name, value) in headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if let Some((content_type, body)) = body {
            let _ = write!(
                head,
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                body.len()
            );
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.map(|(_, body)| body).unwrap_or_default());
        self.stream.get_mut().write_all(&bytes).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .context("bad status line")?;
        let mut length = None;
        let mut chunked = false;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
                headers.push((name.to_ascii_lowercase(), value.to_owned()));
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line).await?;
                let size = usize::from_str_radix(line.trim(), 16).context("bad chunk size")?;
                let mut chunk = vec![0; size + 2];
                self.stream.read_exact(&mut chunk).await?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            let mut buffer = vec![0; length.unwrap_or(0)];
            self.stream.read_exact(&mut buffer).await?;
            body = buffer;
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    async fn get_ok(&mut self, path: &str, token: &str) -> anyhow::Result<Vec<u8>> {
        let (status, body) = self.request("GET", path, Some(token), None).await?;
        if status != 200 {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        Ok(body)
    }
}

async fn login(http: &mut Http, email: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "email": email, "password": PASSWORD }).to_string();
    let (status, answer) = http
        .request("POST", "/api/v1/auth/login", None, Some(&body))
        .await?;
    if status != 200 {
        bail!(
            "login of {email} answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    let value: serde_json::Value = serde_json::from_slice(&answer)?;
    value["token"]
        .as_str()
        .map(str::to_owned)
        .context("no token in the login answer")
}

async fn time_http(
    http: &mut Http,
    path: &str,
    token: &str,
    requests: usize,
) -> anyhow::Result<Sample> {
    for _ in 0..(requests / 10).max(20) {
        http.get_ok(path, token).await?;
    }
    let mut sample = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        http.get_ok(path, token).await?;
        sample.push(started.elapsed());
    }
    Ok(Sample(sample))
}

/// What the measured agent's open tab asks of the store: default settings, the agent's
/// visibility plan and the open tab's scope.
fn agent_open_tab(shape: &Shape) -> (atende_domain::settings::Settings, Plan, Scope) {
    let viewer = Viewer {
        user_id: shape.agent,
        profile: Profile::User,
        queue_ids: shape.agent_queues.clone(),
    };
    let settings = atende_domain::settings::Settings::default();
    let plan = Plan::for_viewer(&viewer, &VisibilitySettings::from(&settings), true);
    let open = Scope {
        statuses: vec![TicketStatus::Open, TicketStatus::Paused],
        group: Some(false),
        bot: None,
    };
    (settings, plan, open)
}

/// The first page of `scope` as the list asks for it (one more row than shown, to know if
/// there is a next page).
fn first_page<'a>(
    settings: &atende_domain::settings::Settings,
    scope: &'a Scope,
    filter: &'a Filter,
) -> PageRequest<'a> {
    PageRequest {
        scope,
        filter,
        sort: SortKey::LastInbound,
        after: None,
        limit: settings.tickets_page_size + 1,
    }
}

/// The raw-store baseline of the agent's first open page (what the attendance page lists).
pub(crate) async fn time_store_open_page(
    db: &Db,
    shape: &Shape,
    requests: usize,
) -> anyhow::Result<Sample> {
    let (settings, plan, open) = agent_open_tab(shape);
    let filter = Filter::default();
    let request = first_page(&settings, &open, &filter);
    let vis = Visibility {
        plan: &plan,
        tenant_queue_ids: &[],
    };
    for _ in 0..(requests / 10).max(20) {
        ticket_list::page(db, shape.tenant, vis, &request).await?;
    }
    let mut sample = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        ticket_list::page(db, shape.tenant, vis, &request).await?;
        sample.push(started.elapsed());
    }
    Ok(Sample(sample))
}

async fn measure(
    db: &Db,
    shape: &Shape,
    options: &Options,
    addr: std::net::SocketAddr,
    report: &mut String,
) -> anyhow::Result<()> {
    let mut http = Http::connect(addr).await?;
    let agent = login(&mut http, &shape.agent_email).await?;
    let admin = login(&mut http, ADMIN_EMAIL).await?;
    let requests = options.requests.max(10);

    let first: serde_json::Value =
        serde_json::from_slice(&http.get_ok("/api/v1/tickets?tab=open", &agent).await?)?;
    let rows = first["tickets"].as_array().map(Vec::len).unwrap_or(0);
    let counters: serde_json::Value =
        serde_json::from_slice(&http.get_ok("/api/v1/tickets/counts", &agent).await?)?;
    let _ = writeln!(
        report,
        "agent in {} queues: open page has {rows} tickets; counters {counters}",
        shape.agent_queues.len()
    );

    let list = time_http(&mut http, "/api/v1/tickets?tab=open", &agent, requests).await?;
    let counts = time_http(&mut http, "/api/v1/tickets/counts", &agent, requests).await?;
    let mut both = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        http.get_ok("/api/v1/tickets?tab=open", &agent).await?;
        http.get_ok("/api/v1/tickets/counts", &agent).await?;
        both.push(started.elapsed());
    }
    let both = Sample(both);
    // What the panel asks when a tab opens: the page with its counters in one request.
    let together = time_http(
        &mut http,
        "/api/v1/tickets?tab=open&with_counts=true",
        &agent,
        requests,
    )
    .await?;
    let pending = time_http(&mut http, "/api/v1/tickets?tab=pending", &agent, requests).await?;
    let next_page = match first["next_cursor"].as_str() {
        Some(cursor) => Some(
            time_http(
                &mut http,
                &format!("/api/v1/tickets?tab=open&cursor={cursor}"),
                &agent,
                requests,
            )
            .await?,
        ),
        None => None,
    };
    let chat = match shape.agent_ticket {
        Some(ticket) => Some(
            time_http(
                &mut http,
                &format!("/api/v1/tickets/{}/messages", ticket.0),
                &agent,
                requests,
            )
            .await?,
        ),
        None => None,
    };
    let admin_all = time_http(&mut http, "/api/v1/tickets", &admin, requests).await?;

    // The raw-store baseline: the same page and counters asked of the store, no HTTP, no auth.
    let (settings, plan, open) = agent_open_tab(shape);
    let filter = Filter::default();
    let request = first_page(&settings, &open, &filter);
    let vis = Visibility {
        plan: &plan,
        tenant_queue_ids: &[],
    };
    let count_scopes = [
        open.clone(),
        Scope {
            statuses: vec![TicketStatus::Pending],
            group: Some(false),
            bot: None,
        },
        Scope {
            statuses: vec![
                TicketStatus::Open,
                TicketStatus::Pending,
                TicketStatus::Paused,
            ],
            group: Some(true),
            bot: None,
        },
    ];
    let cap = atende_engine::ticket_views::COUNTER_CAP;
    let mut store_page = Vec::with_capacity(requests);
    let mut store_counts = Vec::with_capacity(requests);
    for _ in 0..(requests / 10).max(20) {
        ticket_list::page(db, shape.tenant, vis, &request).await?;
    }
    for _ in 0..requests {
        let started = Instant::now();
        ticket_list::page(db, shape.tenant, vis, &request).await?;
        store_page.push(started.elapsed());
        let started = Instant::now();
        ticket_list::unread_counts(db, shape.tenant, &plan, &count_scopes, cap).await?;
        store_counts.push(started.elapsed());
    }
    let store_page = Sample(store_page);
    let store_counts = Sample(store_counts);

    let _ = writeln!(
        report,
        "{} (goal: page + counters p99 < 5 ms)",
        together.line("http agent open page (40) with counters, one request")
    );
    let _ = writeln!(
        report,
        "{}",
        both.line("http agent open page (40), then counters (two requests)")
    );
    let _ = writeln!(report, "{}", list.line("http agent open page (40)"));
    let _ = writeln!(report, "{}", counts.line("http agent tab counters"));
    let _ = writeln!(report, "{}", pending.line("http agent pending page (40)"));
    if let Some(next) = next_page {
        let _ = writeln!(report, "{}", next.line("http agent open page 2 (cursor)"));
    }
    if let Some(chat) = chat {
        let _ = writeln!(report, "{}", chat.line("http agent chat page (50)"));
    }
    let _ = writeln!(
        report,
        "{}",
        admin_all.line("http admin all-status page (40)")
    );
    let _ = writeln!(
        report,
        "{}",
        store_page.line("store agent open page (raw-store baseline)")
    );
    let _ = writeln!(
        report,
        "{}",
        store_counts.line("store agent counters (raw-store baseline)")
    );
    let _ = writeln!(
        report,
        "ratio http/store p50: page {:.1}x, counters {:.1}x",
        list.percentile(50.0) / store_page.percentile(50.0).max(0.000_1),
        counts.percentile(50.0) / store_counts.percentile(50.0).max(0.000_1)
    );
    let plan_lines = ticket_list::explain_page(db, shape.tenant, vis, &request).await?;
    let _ = writeln!(
        report,
        "query plan of the agent's open page:\n  {}",
        plan_lines.join("\n  ")
    );

    // The admin's all-status page from the store, and its plan.
    let admin_user = atende_db::users::platform_find_for_login(db, ADMIN_EMAIL)
        .await?
        .context("no admin")?
        .0;
    let admin_viewer = Viewer {
        user_id: admin_user.id,
        profile: Profile::Admin,
        queue_ids: Vec::new(),
    };
    let admin_plan = Plan::for_viewer(&admin_viewer, &VisibilitySettings::from(&settings), true);
    let tenant_queues = ticket_list::tenant_queue_ids(db, shape.tenant).await?;
    let everything = Scope {
        statuses: TicketStatus::ALL.to_vec(),
        group: None,
        bot: None,
    };
    let admin_request = first_page(&settings, &everything, &filter);
    let admin_vis = Visibility {
        plan: &admin_plan,
        tenant_queue_ids: &tenant_queues,
    };
    let mut store_admin = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        ticket_list::page(db, shape.tenant, admin_vis, &admin_request).await?;
        store_admin.push(started.elapsed());
    }
    let _ = writeln!(
        report,
        "{}",
        Sample(store_admin).line("store admin all-status page (raw-store baseline)")
    );
    let plan_lines = ticket_list::explain_page(db, shape.tenant, admin_vis, &admin_request).await?;
    let _ = writeln!(
        report,
        "query plan of the admin's all-status page:\n  {}",
        plan_lines.join("\n  ")
    );
    Ok(())
}
