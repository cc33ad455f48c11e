//! The dashboard over HTTP (SPEC §12), on SQLite and, with `TEST_DATABASE_URL`, on PostgreSQL:
//! days in the tenant's `timezone` with every day present, tickets by status, first-response and
//! resolution times per queue and agent; who sees what (admins the tenant, agents their own
//! figures, supervisors like admins unless `supervisor_sees_as_user`); tenant walls; the period
//! rules (422 naming the field); an agent's reply over HTTP stamping the first response; the
//! route in the OpenAPI document.
//!
//! Past attendances are written through the store's own write paths at exact instants, so the
//! times have known answers.

use atende_db::Db;
use atende_db::ingest::{self, ContactUpsert, IngestInput, IngestMessage, NewTicketRoute};
use atende_db::outbox::{self, NewReply};
use atende_db::tickets;
use atende_domain::{
    ChannelKind, ConnectionId, MessageAuthor, MessageDirection, MessageKind, MessageStatus,
    QueueId, TenantId, TicketId, TicketStatus, Timestamp, UserId,
};
use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};

const PERIOD: &str = "from=2025-03-01&to=2025-03-04";
/// 2025-03-02T02:30:00Z: 23:30 on 1 March in São Paulo, 11:30 on 2 March in Tokyo.
const E1_OPENED: i64 = 1_740_882_600_000;
/// 2025-03-03T10:00:00Z.
const E2_OPENED: i64 = 1_740_996_000_000;
/// 2025-03-04T12:00:00Z.
const E3_OPENED: i64 = 1_741_089_600_000;
const SECOND: i64 = 1000;

fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {value}"))
}

struct World {
    db: Db,
    tenant: TenantId,
    connection: ConnectionId,
    admin: String,
    ana: String,
    supervisor: String,
    ana_id: i64,
    bruno_id: i64,
    supervisor_id: i64,
    vendas: i64,
    suporte: i64,
}

async fn setup(server: &TestServer) -> anyhow::Result<World> {
    let admin = server.admin_token().await?;
    let me = expect_status!(server.get("/api/v1/auth/me", &admin).await?, 200);
    let tenant = TenantId(me["tenant_id"].as_i64().unwrap_or_default());
    let queue = |name: &str| json!({"name": name, "color": "#336699"});
    let vendas = id(&expect_status!(
        server
            .post("/api/v1/queues", &admin, queue("Vendas"))
            .await?,
        201
    ));
    let suporte = id(&expect_status!(
        server
            .post("/api/v1/queues", &admin, queue("Suporte"))
            .await?,
        201
    ));
    let user = |email: &str, name: &str, profile: &str, queue: i64| {
        json!({"email": email, "name": name, "password": "agent-password-1",
            "profile": profile, "queue_ids": [queue]})
    };
    let ana_id = id(&expect_status!(
        server
            .post(
                "/api/v1/users",
                &admin,
                user("ana@default.test", "Ana", "user", vendas)
            )
            .await?,
        201
    ));
    let bruno_id = id(&expect_status!(
        server
            .post(
                "/api/v1/users",
                &admin,
                user("bruno@default.test", "Bruno", "user", suporte)
            )
            .await?,
        201
    ));
    let supervisor_id = id(&expect_status!(
        server
            .post(
                "/api/v1/users",
                &admin,
                user("carla@default.test", "Carla", "supervisor", vendas)
            )
            .await?,
        201
    ));
    let connection = id(&expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "webchat", "name": "Site", "default_queue_id": vendas})
            )
            .await?,
        201
    ));
    Ok(World {
        db: Db::connect(&server.database_url).await?,
        tenant,
        connection: ConnectionId(connection),
        ana: server.login("ana@default.test", "agent-password-1").await?,
        supervisor: server
            .login("carla@default.test", "agent-password-1")
            .await?,
        admin,
        ana_id,
        bruno_id,
        supervisor_id,
        vendas,
        suporte,
    })
}

/// A visitor writes at `opened` (a new pending ticket in `queue`); `owner` accepts a second
/// later.
async fn opened(
    w: &World,
    visitor: &str,
    queue: i64,
    owner: i64,
    opened: Timestamp,
) -> anyhow::Result<TicketId> {
    let upsert = ContactUpsert {
        channel: ChannelKind::Webchat,
        external_id: visitor,
        push_name: Some(visitor),
        phone: None,
        is_group: false,
        push_name_renames: true,
    };
    let contact = ingest::upsert_contact(&w.db, w.tenant, &upsert, None)
        .await?
        .contact
        .id;
    let input = IngestInput {
        contact_id: contact,
        connection_id: w.connection,
        is_group: false,
        reopen_window_minutes: 0,
        route: Some(NewTicketRoute {
            status: TicketStatus::Pending,
            owner_id: None,
            queue_id: Some(QueueId(queue)),
            bot_flow: None,
            wallet_overflowed: false,
        }),
        message: IngestMessage {
            direction: MessageDirection::In,
            author: MessageAuthor::Contact,
            kind: MessageKind::Text,
            body: "oi".into(),
            media: None,
            provider_id: Some(format!("{visitor}-1")),
            quoted_provider_id: None,
            status: MessageStatus::Delivered,
            sent_at: opened,
        },
        inbound_event: None,
        now: opened,
    };
    let ticket = match ingest::ingest(&w.db, w.tenant, &input).await? {
        ingest::IngestOutcome::Stored(stored) => stored.ticket.id,
        other => anyhow::bail!("expected a stored message, got {other:?}"),
    };
    tickets::set_status(
        &w.db,
        w.tenant,
        ticket,
        TicketStatus::Open,
        Some(UserId(owner)),
        Some(QueueId(queue)),
        Timestamp(opened.0 + SECOND),
    )
    .await?;
    Ok(ticket)
}

/// An attendance of the past: opened, answered `reply_after` ms later by its owner, and closed
/// `closed_after` ms after opening (or left open).
async fn episode(
    w: &World,
    visitor: &str,
    queue: i64,
    owner: i64,
    opened_at: i64,
    reply_after: i64,
    closed_after: Option<i64>,
) -> anyhow::Result<()> {
    let ticket = opened(w, visitor, queue, owner, Timestamp(opened_at)).await?;
    let now = Timestamp(opened_at + reply_after);
    let reply = NewReply {
        ticket_id: ticket,
        author_user_id: UserId(owner),
        kind: MessageKind::Text,
        body: "olá".into(),
        signature: String::new(),
        media: None,
        quoted_id: None,
        idempotency_key: format!("{visitor}-reply"),
        template_call: None,
        auto_resolve_due: None,
        now,
    };
    outbox::queue_reply(&w.db, w.tenant, &reply).await?;
    if let Some(after) = closed_after {
        tickets::set_status(
            &w.db,
            w.tenant,
            ticket,
            TicketStatus::Closed,
            Some(UserId(owner)),
            Some(QueueId(queue)),
            Timestamp(opened_at + after),
        )
        .await?;
    }
    Ok(())
}

async fn dashboard(server: &TestServer, token: &str, query: &str) -> anyhow::Result<Value> {
    Ok(expect_status!(
        server
            .get(&format!("/api/v1/dashboard?{query}"), token)
            .await?,
        200
    ))
}

/// `[(date, opened, closed)]` of a dashboard.
fn days(body: &Value) -> Vec<(String, i64, i64)> {
    body["per_day"]
        .as_array()
        .unwrap_or_else(|| panic!("no per_day in {body}"))
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap_or_default().to_owned(),
                d["opened"].as_i64().unwrap_or(-1),
                d["closed"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn day(date: &str, opened: i64, closed: i64) -> (String, i64, i64) {
    (date.to_owned(), opened, closed)
}

/// `(count, average, median, p90)` of a time figure.
fn stats(value: &Value) -> (i64, Option<f64>, Option<f64>, Option<f64>) {
    (
        value["count"].as_i64().unwrap_or(-1),
        value["average_seconds"].as_f64(),
        value["median_seconds"].as_f64(),
        value["p90_seconds"].as_f64(),
    )
}

/// `[(name, count, median)]` of a group list (`by_queue` / `by_agent`).
fn groups(value: &Value) -> Vec<(String, i64, Option<f64>)> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {value}"))
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or("-").to_owned(),
                g["count"].as_i64().unwrap_or(-1),
                g["median_seconds"].as_f64(),
            )
        })
        .collect()
}

fn named(name: &str, count: i64, median: f64) -> (String, i64, Option<f64>) {
    (name.to_owned(), count, Some(median))
}

async fn refused(
    server: &TestServer,
    token: &str,
    query: &str,
    status: u16,
    field: Option<&str>,
) -> anyhow::Result<()> {
    let body = expect_status!(
        server
            .get(&format!("/api/v1/dashboard?{query}"), token)
            .await?,
        status
    );
    assert_eq!(body["error"]["field"].as_str(), field, "{query}: {body}");
    Ok(())
}

async fn cli(server: &TestServer, args: &[&str]) -> anyhow::Result<()> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_atende"))
        .args(args)
        .env("DATABASE_URL", &server.database_url)
        .env("ATENDE_DATA_DIR", &server.data_dir)
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn dashboard_counts_local_days_and_times_per_queue_and_agent_within_role_and_tenant_walls()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = setup(&server).await?;
        // E1: Vendas, Ana, answered in 60 s, closed after an hour (00:30 on 2 March, local).
        episode(
            &w,
            "v1",
            w.vendas,
            w.ana_id,
            E1_OPENED,
            60 * SECOND,
            Some(3600 * SECOND),
        )
        .await?;
        // E2: Suporte, Bruno, answered in 120 s, closed after two hours.
        let bruno = w.bruno_id;
        episode(
            &w,
            "v2",
            w.suporte,
            bruno,
            E2_OPENED,
            120 * SECOND,
            Some(7200 * SECOND),
        )
        .await?;
        // E3: Vendas, Bruno, answered in 30 s, still open.
        episode(&w, "v3", w.vendas, bruno, E3_OPENED, 30 * SECOND, None).await?;

        // The administrator: the whole tenant, every day of the period, zeros included.
        let body = dashboard(&server, &w.admin, PERIOD).await?;
        assert_eq!(body["scope"], "tenant", "{body}");
        assert_eq!(body["timezone"], "America/Sao_Paulo");
        assert_eq!(
            (body["from"].as_str(), body["to"].as_str()),
            (Some("2025-03-01"), Some("2025-03-04"))
        );
        assert_eq!(
            days(&body),
            vec![
                day("2025-03-01", 1, 0),
                day("2025-03-02", 0, 1),
                day("2025-03-03", 1, 1),
                day("2025-03-04", 1, 0),
            ]
        );
        assert_eq!(
            body["by_status"],
            json!({"pending": 0, "open": 1, "paused": 0, "closed": 2})
        );
        // First responses [30, 60, 120] s; resolutions [3600, 7200] s.
        let first = &body["first_response"];
        assert_eq!(
            stats(&first["overall"]),
            (3, Some(70.0), Some(60.0), Some(120.0))
        );
        assert_eq!(
            groups(&first["by_queue"]),
            vec![named("Suporte", 1, 120.0), named("Vendas", 2, 45.0)]
        );
        assert_eq!(
            groups(&first["by_agent"]),
            vec![named("Ana", 1, 60.0), named("Bruno", 2, 75.0)]
        );
        assert_eq!(first["by_agent"][1]["user_id"], bruno);
        assert_eq!(first["by_agent"][1]["p90_seconds"], 120.0);
        let resolution = &body["resolution"];
        assert_eq!(
            stats(&resolution["overall"]),
            (2, Some(5400.0), Some(5400.0), Some(7200.0))
        );
        assert_eq!(
            groups(&resolution["by_agent"]),
            vec![named("Ana", 1, 3600.0), named("Bruno", 1, 7200.0)]
        );

        // Filters: one agent, one queue.
        let body = dashboard(&server, &w.admin, &format!("{PERIOD}&user_id={bruno}")).await?;
        assert_eq!(
            days(&body),
            vec![
                day("2025-03-01", 0, 0),
                day("2025-03-02", 0, 0),
                day("2025-03-03", 1, 1),
                day("2025-03-04", 1, 0),
            ]
        );
        assert_eq!(body["by_status"]["open"], 1);
        assert_eq!(body["by_status"]["closed"], 1);
        let body = dashboard(
            &server,
            &w.admin,
            &format!("{PERIOD}&queue_id={}", w.suporte),
        )
        .await?;
        assert_eq!(stats(&body["first_response"]["overall"]).0, 1);
        assert_eq!(body["queue_id"], w.suporte);

        // An agent sees only their own figures, whatever they ask for.
        let body = dashboard(&server, &w.ana, PERIOD).await?;
        assert_eq!(body["scope"], "own", "{body}");
        assert_eq!(body["user_id"], w.ana_id);
        assert_eq!(
            days(&body),
            vec![
                day("2025-03-01", 1, 0),
                day("2025-03-02", 0, 1),
                day("2025-03-03", 0, 0),
                day("2025-03-04", 0, 0),
            ]
        );
        assert_eq!(
            body["by_status"],
            json!({"pending": 0, "open": 0, "paused": 0, "closed": 1})
        );
        assert_eq!(
            groups(&body["first_response"]["by_agent"]),
            vec![named("Ana", 1, 60.0)]
        );
        let own = format!("{PERIOD}&user_id={}", w.ana_id);
        assert_eq!(dashboard(&server, &w.ana, &own).await?["scope"], "own");
        refused(
            &server,
            &w.ana,
            &format!("{PERIOD}&user_id={bruno}"),
            403,
            None,
        )
        .await?;

        // A supervisor sees like an administrator, unless supervisor_sees_as_user.
        let body = dashboard(&server, &w.supervisor, PERIOD).await?;
        assert_eq!(body["scope"], "tenant");
        assert_eq!(stats(&body["first_response"]["overall"]).0, 3);
        expect_status!(
            server
                .put(
                    "/api/v1/settings/supervisor_sees_as_user",
                    &w.admin,
                    json!({"value": true})
                )
                .await?,
            200
        );
        let body = dashboard(&server, &w.supervisor, PERIOD).await?;
        assert_eq!(body["scope"], "own");
        assert_eq!(body["user_id"], w.supervisor_id);
        assert_eq!(
            stats(&body["first_response"]["overall"]),
            (0, None, None, None)
        );

        // The period: default the last 30 days up to today; bad ones refused naming the field.
        let body = dashboard(&server, &w.admin, "").await?;
        let all_days = days(&body);
        assert_eq!(all_days.len(), 30);
        assert_eq!(
            all_days.first().map(|d| d.0.as_str()),
            body["from"].as_str()
        );
        assert_eq!(all_days.last().map(|d| d.0.as_str()), body["to"].as_str());
        let admin = &w.admin;
        refused(
            &server,
            admin,
            "from=2025-03-05&to=2025-03-01",
            422,
            Some("from"),
        )
        .await?;
        refused(
            &server,
            admin,
            "from=2024-01-01&to=2025-01-01",
            422,
            Some("to"),
        )
        .await?;
        refused(&server, admin, "from=2025-02-30", 422, Some("from")).await?;
        refused(&server, admin, "to=yesterday", 422, Some("to")).await?;
        refused(&server, admin, "queue_id=abc", 400, Some("queue_id")).await?;
        refused(&server, admin, "queue_id=999999", 404, Some("queue_id")).await?;
        let anonymous = server
            .http
            .get(server.url("/api/v1/dashboard"))
            .send()
            .await?;
        assert_eq!(anonymous.status().as_u16(), 401);

        // Tenant B sees nothing of A, and A's ids are unknown to it.
        cli(
            &server,
            &[
                "tenant",
                "create",
                "--slug",
                "beta",
                "--name",
                "Beta",
                "--admin-email",
                "admin@beta.test",
                "--admin-password",
                "beta-password-1",
            ],
        )
        .await?;
        let beta = server.login("admin@beta.test", "beta-password-1").await?;
        let body = dashboard(&server, &beta, PERIOD).await?;
        assert!(
            days(&body).iter().all(|(_, o, c)| *o == 0 && *c == 0),
            "{body}"
        );
        assert_eq!(
            body["by_status"],
            json!({"pending": 0, "open": 0, "paused": 0, "closed": 0})
        );
        assert_eq!(stats(&body["resolution"]["overall"]).0, 0);
        assert_eq!(body["first_response"]["by_queue"], json!([]));
        refused(
            &server,
            &beta,
            &format!("queue_id={}", w.vendas),
            404,
            Some("queue_id"),
        )
        .await?;
        refused(
            &server,
            &beta,
            &format!("user_id={}", w.ana_id),
            404,
            Some("user_id"),
        )
        .await?;

        // Days follow the tenant's zone: in Tokyo E1 opens and closes on 2 March.
        expect_status!(
            server
                .put(
                    "/api/v1/settings/timezone",
                    &w.admin,
                    json!({"value": "Asia/Tokyo"})
                )
                .await?,
            200
        );
        let body = dashboard(&server, &w.admin, PERIOD).await?;
        assert_eq!(body["timezone"], "Asia/Tokyo");
        assert_eq!(
            days(&body),
            vec![
                day("2025-03-01", 0, 0),
                day("2025-03-02", 1, 1),
                day("2025-03-03", 1, 1),
                day("2025-03-04", 1, 0),
            ]
        );
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_agent_reply_over_http_is_the_first_response_of_the_attendance() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = setup(&server).await?;
        let ticket = opened(&w, "v1", w.vendas, w.ana_id, Timestamp::now()).await?;
        let path = format!("/api/v1/tickets/{}/messages", ticket.0);
        for text in ["Olá!", "Já verifico."] {
            expect_status!(
                server.post(&path, &w.ana, json!({"body": text})).await?,
                201
            );
        }
        let body = dashboard(&server, &w.ana, "").await?;
        let first = &body["first_response"];
        assert_eq!(stats(&first["overall"]).0, 1, "{body}");
        assert_eq!(first["by_agent"][0]["user_id"], w.ana_id);
        assert_eq!(first["by_queue"][0]["queue_id"], w.vendas);
        let today = days(&body).pop().unwrap_or_default();
        assert_eq!((today.1, today.2), (1, 0));
        assert_eq!(body["by_status"]["open"], 1);

        let doc: Value = server
            .http
            .get(server.url("/api/v1/openapi.json"))
            .send()
            .await?
            .json()
            .await?;
        assert!(doc["paths"]["/api/v1/dashboard"]["get"].is_object());
        let schemas = &doc["components"]["schemas"];
        assert!(
            schemas["Dashboard"]["properties"]["per_day"].is_object(),
            "{schemas}"
        );
        server.stop().await?;
    }
    Ok(())
}
