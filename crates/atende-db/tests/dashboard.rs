//! The dashboard figures (SPEC §12) on SQLite and, with `TEST_DATABASE_URL`, on PostgreSQL, over
//! attendances built through the real write paths (ingest, agent reply, status changes) at exact
//! instants, so every count, average, median and p90 has a known answer.

use atende_db::connections::{self, NewConnection};
use atende_db::dashboard::{self, DayCount, DurationSamples, Measure, Scope};
use atende_db::ingest::{self, ContactUpsert, IngestInput, IngestMessage, NewTicketRoute};
use atende_db::outbox::{self, NewReply};
use atende_db::queues::{self, NewQueue};
use atende_db::testing::TestDb;
use atende_db::users::{self, NewUser};
use atende_db::{Db, tenants, tickets};
use atende_domain::dashboard::{DurationSummary, Period, day_number};
use atende_domain::{
    ChannelKind, ConnectionId, MessageAuthor, MessageDirection, MessageKind, MessageStatus,
    Profile, QueueId, TenantId, TicketId, TicketStatus, Timestamp, UserId,
};
use std::future::Future;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn on_every_store<F, Fut>(name: &str, story: F) -> Result
where
    F: Fn(Db) -> Fut,
    Fut: Future<Output = Result>,
{
    TestDb::on_every_store(story)
        .await
        .map_err(|failures| format!("{name}: {failures}").into())
}

fn at(text: &str) -> Timestamp {
    Timestamp(
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .unwrap_or_else(|e| panic!("{text}: {e}")),
    )
}

fn period(from: &str, to: &str, tz: chrono_tz::Tz) -> Period {
    Period::parse(Some(from), Some(to), tz, Timestamp(0)).unwrap_or_else(|e| panic!("{e}"))
}

fn day(date: &str) -> i64 {
    day_number(
        chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
            .unwrap_or_else(|e| panic!("{date}: {e}")),
    )
}

struct World {
    tenant: TenantId,
    sales: QueueId,
    support: QueueId,
    ana: UserId,
    bruno: UserId,
    connection: ConnectionId,
}

async fn world(db: &Db, slug: &str) -> Result<World> {
    let tenant = tenants::platform_create(db, slug, slug).await?.id;
    let queue = |name: &str| NewQueue {
        name: name.into(),
        color: "#336699".into(),
        greeting: String::new(),
        absence_message: String::new(),
        business_hours: None,
    };
    let sales = queues::create(db, tenant, &queue("Vendas")).await?.id;
    let support = queues::create(db, tenant, &queue("Suporte")).await?.id;
    let user = |email: String, name: &str| NewUser {
        email,
        name: name.into(),
        password_hash: "x".into(),
        profile: Profile::User,
        ..NewUser::default()
    };
    let ana = users::create(db, tenant, &user(format!("ana@{slug}.test"), "Ana"))
        .await?
        .id;
    let bruno = users::create(db, tenant, &user(format!("bruno@{slug}.test"), "Bruno"))
        .await?
        .id;
    let connection = connections::create(
        db,
        tenant,
        &NewConnection {
            kind: ChannelKind::Webchat,
            name: "Site".into(),
            default_queue_id: Some(sales),
            default_flow_id: None,
            public_key: Some(format!("wc_{slug}")),
            credentials: None,
            send_delay_min_ms: None,
            send_delay_max_ms: None,
            cadence_enabled: None,
        },
    )
    .await?
    .id;
    Ok(World {
        tenant,
        sales,
        support,
        ana,
        bruno,
        connection,
    })
}

/// A contact writes at `opened` (a new ticket in `queue`, or a reopened one); returns the ticket.
async fn inbound(
    db: &Db,
    w: &World,
    visitor: &str,
    queue: QueueId,
    opened: &str,
) -> Result<TicketId> {
    let upsert = ContactUpsert {
        channel: ChannelKind::Webchat,
        external_id: visitor,
        push_name: Some(visitor),
        phone: None,
        is_group: false,
        push_name_renames: true,
    };
    let found = ingest::find_contact(db, w.tenant, ChannelKind::Webchat, visitor).await?;
    let contact = ingest::upsert_contact(db, w.tenant, &upsert, found)
        .await?
        .contact
        .id;
    let now = at(opened);
    let input = IngestInput {
        contact_id: contact,
        connection_id: w.connection,
        is_group: false,
        reopen_window_minutes: 120,
        route: Some(NewTicketRoute {
            status: TicketStatus::Pending,
            owner_id: None,
            queue_id: Some(queue),
            bot_flow: None,
            wallet_overflowed: false,
        }),
        message: IngestMessage {
            direction: MessageDirection::In,
            author: MessageAuthor::Contact,
            kind: MessageKind::Text,
            body: "oi".into(),
            media: None,
            provider_id: Some(format!("{visitor}-{}", now.0)),
            quoted_provider_id: None,
            status: MessageStatus::Delivered,
            sent_at: now,
        },
        inbound_event: None,
        now,
    };
    match ingest::ingest(db, w.tenant, &input).await? {
        ingest::IngestOutcome::Stored(stored) => Ok(stored.ticket.id),
        other => Err(format!("expected a stored message, got {other:?}").into()),
    }
}

async fn accept(
    db: &Db,
    w: &World,
    ticket: TicketId,
    agent: UserId,
    queue: QueueId,
    when: &str,
) -> Result {
    tickets::set_status(
        db,
        w.tenant,
        ticket,
        TicketStatus::Open,
        Some(agent),
        Some(queue),
        at(when),
    )
    .await?;
    Ok(())
}

async fn reply(db: &Db, w: &World, ticket: TicketId, agent: UserId, when: &str) -> Result {
    let now = at(when);
    outbox::queue_reply(
        db,
        w.tenant,
        &NewReply {
            ticket_id: ticket,
            author_user_id: agent,
            kind: MessageKind::Text,
            body: "olá".into(),
            signature: String::new(),
            media: None,
            quoted_id: None,
            idempotency_key: format!("reply-{}-{}", ticket.0, now.0),
            template_call: None,
            auto_resolve_due: None,
            now,
        },
    )
    .await?;
    Ok(())
}

async fn close(
    db: &Db,
    w: &World,
    ticket: TicketId,
    owner: Option<UserId>,
    queue: QueueId,
    when: &str,
) -> Result {
    tickets::set_status(
        db,
        w.tenant,
        ticket,
        TicketStatus::Closed,
        owner,
        Some(queue),
        at(when),
    )
    .await?;
    Ok(())
}

/// The attendances of tenant `acme` (São Paulo, UTC−3 all year), around 1–5 March 2025:
///
/// | # | queue, owner | opened (UTC) | local day | first reply | closed (UTC) | local day |
/// |---|---|---|---|---|---|---|
/// | 1 | Vendas, Ana | 03-01 12:00 | 1 | +60 s | 03-01 13:00 | 1 |
/// | 2 | Vendas, Ana | 03-02 02:30 | **1** | +120 s | 03-02 03:30 | 2 |
/// | 3 | Suporte, Bruno | 03-03 10:00 | 3 | +300 s | open | |
/// | 4 | Vendas, Bruno | 03-03 11:00 | 3 | +30 s | 03-04 11:00 | 4 |
/// | 5 | Suporte, nobody | 03-05 10:00 | 5 | none | 03-05 10:10 | 5 |
/// | 6 | Vendas, Ana | 02-28 12:00 | Feb 28 | +10 s | 03-01 02:59 | Feb 28 |
/// | 7 | Vendas, pending | 03-06 02:59:59 | 5 | none | open | |
/// | 8 | Vendas, pending | 03-06 03:00 | Mar 6 | none | open | |
async fn acme(db: &Db) -> Result<World> {
    let w = world(db, "acme").await?;
    let t1 = inbound(db, &w, "v1", w.sales, "2025-03-01T12:00:00Z").await?;
    accept(db, &w, t1, w.ana, w.sales, "2025-03-01T12:00:30Z").await?;
    reply(db, &w, t1, w.ana, "2025-03-01T12:01:00Z").await?;
    reply(db, &w, t1, w.ana, "2025-03-01T12:30:00Z").await?;
    close(db, &w, t1, Some(w.ana), w.sales, "2025-03-01T13:00:00Z").await?;

    let t2 = inbound(db, &w, "v2", w.sales, "2025-03-02T02:30:00Z").await?;
    accept(db, &w, t2, w.ana, w.sales, "2025-03-02T02:31:00Z").await?;
    reply(db, &w, t2, w.ana, "2025-03-02T02:32:00Z").await?;
    close(db, &w, t2, Some(w.ana), w.sales, "2025-03-02T03:30:00Z").await?;

    let t3 = inbound(db, &w, "v3", w.support, "2025-03-03T10:00:00Z").await?;
    accept(db, &w, t3, w.bruno, w.support, "2025-03-03T10:01:00Z").await?;
    reply(db, &w, t3, w.bruno, "2025-03-03T10:05:00Z").await?;

    // Answered from the queue by Ana, then taken over by Bruno: his attendance, Ana's reply time.
    let t4 = inbound(db, &w, "v4", w.sales, "2025-03-03T11:00:00Z").await?;
    reply(db, &w, t4, w.ana, "2025-03-03T11:00:30Z").await?;
    accept(db, &w, t4, w.bruno, w.sales, "2025-03-03T11:02:00Z").await?;
    close(db, &w, t4, Some(w.bruno), w.sales, "2025-03-04T11:00:00Z").await?;

    let t5 = inbound(db, &w, "v5", w.support, "2025-03-05T10:00:00Z").await?;
    close(db, &w, t5, None, w.support, "2025-03-05T10:10:00Z").await?;

    let t6 = inbound(db, &w, "v6", w.sales, "2025-02-28T12:00:00Z").await?;
    accept(db, &w, t6, w.ana, w.sales, "2025-02-28T12:00:05Z").await?;
    reply(db, &w, t6, w.ana, "2025-02-28T12:00:10Z").await?;
    close(db, &w, t6, Some(w.ana), w.sales, "2025-03-01T02:59:00Z").await?;

    inbound(db, &w, "v7", w.sales, "2025-03-06T02:59:59Z").await?;
    inbound(db, &w, "v8", w.sales, "2025-03-06T03:00:00Z").await?;
    Ok(w)
}

fn summary(samples: &[i64]) -> Option<(u64, f64, f64, f64)> {
    DurationSummary::of(samples.to_vec())
        .map(|s| (s.count, s.average_seconds, s.median_seconds, s.p90_seconds))
}

const SAO_PAULO: chrono_tz::Tz = chrono_tz::America::Sao_Paulo;

#[tokio::test]
async fn cycles_are_counted_on_the_local_day_of_the_tenant_zone() -> Result {
    on_every_store("per day", |db| async move {
        let w = acme(&db).await?;
        let p = period("2025-03-01", "2025-03-05", SAO_PAULO);
        let days = dashboard::cycles_per_day(&db, w.tenant, &p.spans(), &Scope::default()).await?;
        // Cycle 2 opened at 02:30 UTC on 2 March, still 1 March in São Paulo; cycle 7 at
        // 23:59:59 local on 5 March; days 2 (opened) and 3 (closed) are empty.
        let expected = vec![
            DayCount {
                day: day("2025-03-01"),
                opened: 2,
                closed: 1,
            },
            DayCount {
                day: day("2025-03-02"),
                opened: 0,
                closed: 1,
            },
            DayCount {
                day: day("2025-03-03"),
                opened: 2,
                closed: 0,
            },
            DayCount {
                day: day("2025-03-04"),
                opened: 0,
                closed: 1,
            },
            DayCount {
                day: day("2025-03-05"),
                opened: 2,
                closed: 1,
            },
        ];
        assert_eq!(days, expected);

        let ana = Scope {
            owner_id: Some(w.ana),
            ..Scope::default()
        };
        let days = dashboard::cycles_per_day(&db, w.tenant, &p.spans(), &ana).await?;
        assert_eq!(
            days,
            vec![
                DayCount {
                    day: day("2025-03-01"),
                    opened: 2,
                    closed: 1
                },
                DayCount {
                    day: day("2025-03-02"),
                    opened: 0,
                    closed: 1
                },
            ]
        );
        let support = Scope {
            queue_id: Some(w.support),
            ..Scope::default()
        };
        let days = dashboard::cycles_per_day(&db, w.tenant, &p.spans(), &support).await?;
        assert_eq!(
            days,
            vec![
                DayCount {
                    day: day("2025-03-03"),
                    opened: 1,
                    closed: 0
                },
                DayCount {
                    day: day("2025-03-05"),
                    opened: 1,
                    closed: 1
                },
            ]
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn first_response_is_opened_to_the_first_agent_reply_of_the_cycle() -> Result {
    on_every_store("first response", |db| async move {
        let w = acme(&db).await?;
        let p = period("2025-03-01", "2025-03-05", SAO_PAULO);
        let samples = dashboard::durations(
            &db,
            w.tenant,
            Measure::FirstResponse,
            p.start(),
            p.end(),
            &Scope::default(),
        )
        .await?;
        let DurationSamples {
            mut all,
            by_queue,
            by_owner,
        } = samples;
        all.sort_unstable();
        // Cycle 1's second reply does not count; cycle 6 answered before the period.
        assert_eq!(all, vec![30_000, 60_000, 120_000, 300_000]);
        // [30, 60, 120, 300] s: mean 127.5, median (60 + 120) / 2, p90 the 4th of 4.
        assert_eq!(summary(&all), Some((4, 127.5, 90.0, 300.0)));
        let sales = by_queue.get(&Some(w.sales)).cloned().unwrap_or_default();
        assert_eq!(summary(&sales), Some((3, 70.0, 60.0, 120.0)));
        let support = by_queue.get(&Some(w.support)).cloned().unwrap_or_default();
        assert_eq!(summary(&support), Some((1, 300.0, 300.0, 300.0)));
        assert_eq!(by_queue.len(), 2);
        let ana = by_owner.get(&Some(w.ana)).cloned().unwrap_or_default();
        assert_eq!(summary(&ana), Some((2, 90.0, 90.0, 120.0)));
        let bruno = by_owner.get(&Some(w.bruno)).cloned().unwrap_or_default();
        assert_eq!(summary(&bruno), Some((2, 165.0, 165.0, 300.0)));
        assert_eq!(by_owner.len(), 2);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn resolution_is_opened_to_closed_for_cycles_closed_in_the_period() -> Result {
    on_every_store("resolution", |db| async move {
        let w = acme(&db).await?;
        let p = period("2025-03-01", "2025-03-05", SAO_PAULO);
        let samples = dashboard::durations(
            &db,
            w.tenant,
            Measure::Resolution,
            p.start(),
            p.end(),
            &Scope::default(),
        )
        .await?;
        // [600, 3600, 3600, 86400] s; cycle 6 closed at 23:59 local on 28 February.
        assert_eq!(
            summary(&samples.all),
            Some((4, 23_550.0, 3_600.0, 86_400.0))
        );
        let sales = samples
            .by_queue
            .get(&Some(w.sales))
            .cloned()
            .unwrap_or_default();
        assert_eq!(summary(&sales), Some((3, 31_200.0, 3_600.0, 86_400.0)));
        let nobody = samples.by_owner.get(&None).cloned().unwrap_or_default();
        assert_eq!(summary(&nobody), Some((1, 600.0, 600.0, 600.0)));

        let bruno = Scope {
            owner_id: Some(w.bruno),
            ..Scope::default()
        };
        let samples = dashboard::durations(
            &db,
            w.tenant,
            Measure::Resolution,
            p.start(),
            p.end(),
            &bruno,
        )
        .await?;
        assert_eq!(samples.all, vec![86_400_000]);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn status_counts_are_the_tickets_now_within_the_scope() -> Result {
    on_every_store("status", |db| async move {
        let w = acme(&db).await?;
        let counts = |scope: Scope| {
            let db = db.clone();
            async move {
                let counts = dashboard::status_counts(&db, w.tenant, &scope).await?;
                Result::Ok(
                    counts
                        .into_iter()
                        .map(|(s, n)| (s.as_str(), n))
                        .collect::<Vec<_>>(),
                )
            }
        };
        assert_eq!(
            counts(Scope::default()).await?,
            vec![("pending", 2), ("open", 1), ("paused", 0), ("closed", 5)]
        );
        assert_eq!(
            counts(Scope {
                owner_id: Some(w.bruno),
                ..Scope::default()
            })
            .await?,
            vec![("pending", 0), ("open", 1), ("paused", 0), ("closed", 1)]
        );
        assert_eq!(
            counts(Scope {
                queue_id: Some(w.support),
                owner_id: None
            })
            .await?,
            vec![("pending", 0), ("open", 1), ("paused", 0), ("closed", 1)]
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_reopened_ticket_is_a_new_cycle_with_its_own_first_response() -> Result {
    on_every_store("reopen", |db| async move {
        let w = world(&db, "acme").await?;
        let ticket = inbound(&db, &w, "v1", w.sales, "2025-03-01T12:00:00Z").await?;
        reply(&db, &w, ticket, w.ana, "2025-03-01T12:00:20Z").await?;
        close(
            &db,
            &w,
            ticket,
            Some(w.ana),
            w.sales,
            "2025-03-01T12:10:00Z",
        )
        .await?;
        // Within the reopen window: same ticket, new cycle.
        let again = inbound(&db, &w, "v1", w.sales, "2025-03-01T12:30:00Z").await?;
        assert_eq!(again, ticket);
        reply(&db, &w, ticket, w.ana, "2025-03-01T12:30:45Z").await?;
        let p = period("2025-03-01", "2025-03-01", SAO_PAULO);
        let samples = dashboard::durations(
            &db,
            w.tenant,
            Measure::FirstResponse,
            p.start(),
            p.end(),
            &Scope::default(),
        )
        .await?;
        let mut all = samples.all;
        all.sort_unstable();
        assert_eq!(all, vec![20_000, 45_000]);
        let days = dashboard::cycles_per_day(&db, w.tenant, &p.spans(), &Scope::default()).await?;
        assert_eq!(
            days,
            vec![DayCount {
                day: day("2025-03-01"),
                opened: 2,
                closed: 1
            }]
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn days_follow_daylight_saving_changes_of_the_zone() -> Result {
    on_every_store("dst", |db| async move {
        let w = world(&db, "nyc").await?;
        // New York moved from EST (UTC−5) to EDT (UTC−4) at 07:00 UTC on 9 March 2025.
        // 04:30 UTC on 9 March: 23:30 EST on the 8th. 04:30 UTC on 10 March: 00:30 EDT on the
        // 10th (a fixed −5 would have put it on the 9th).
        inbound(&db, &w, "v1", w.sales, "2025-03-09T04:30:00Z").await?;
        inbound(&db, &w, "v2", w.sales, "2025-03-10T04:30:00Z").await?;
        let p = period("2025-03-08", "2025-03-10", chrono_tz::America::New_York);
        let days = dashboard::cycles_per_day(&db, w.tenant, &p.spans(), &Scope::default()).await?;
        assert_eq!(
            days,
            vec![
                DayCount {
                    day: day("2025-03-08"),
                    opened: 1,
                    closed: 0
                },
                DayCount {
                    day: day("2025-03-10"),
                    opened: 1,
                    closed: 0
                },
            ]
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn figures_never_cross_tenants() -> Result {
    on_every_store("tenants", |db| async move {
        let a = acme(&db).await?;
        let b = world(&db, "beta").await?;
        let p = period("2025-03-01", "2025-03-05", SAO_PAULO);
        let all = Scope::default();
        assert!(
            dashboard::cycles_per_day(&db, b.tenant, &p.spans(), &all)
                .await?
                .is_empty()
        );
        for measure in [Measure::FirstResponse, Measure::Resolution] {
            let samples =
                dashboard::durations(&db, b.tenant, measure, p.start(), p.end(), &all).await?;
            assert_eq!(samples, DurationSamples::default());
        }
        let counts = dashboard::status_counts(&db, b.tenant, &all).await?;
        assert!(counts.iter().all(|(_, n)| *n == 0), "{counts:?}");
        // A's own ids given in B's name find nothing either.
        let a_scope = Scope {
            queue_id: Some(a.sales),
            owner_id: Some(a.ana),
        };
        assert!(
            dashboard::cycles_per_day(&db, b.tenant, &p.spans(), &a_scope)
                .await?
                .is_empty()
        );
        let labels = dashboard::labels(&db, b.tenant).await?;
        assert!(!labels.queues.contains_key(&a.sales) && !labels.users.contains_key(&a.ana));
        assert_eq!(
            labels.queues.get(&b.support).map(String::as_str),
            Some("Suporte")
        );
        Ok(())
    })
    .await
}

/// The backfill of migration 0014, run again over a cycle whose stamp was cleared: it finds the
/// first agent reply sent inside the cycle (not a bot's, not one of an earlier cycle).
#[tokio::test]
async fn migration_backfills_first_response_from_the_first_agent_reply_of_the_cycle() -> Result {
    on_every_store("backfill", |db| async move {
        let w = world(&db, "acme").await?;
        let ticket = inbound(&db, &w, "v1", w.sales, "2025-03-01T12:00:00Z").await?;
        reply(&db, &w, ticket, w.ana, "2025-03-01T12:00:20Z").await?;
        close(
            &db,
            &w,
            ticket,
            Some(w.ana),
            w.sales,
            "2025-03-01T12:10:00Z",
        )
        .await?;
        inbound(&db, &w, "v1", w.sales, "2025-03-01T12:30:00Z").await?;
        reply(&db, &w, ticket, w.bruno, "2025-03-01T12:31:00Z").await?;
        reply(&db, &w, ticket, w.ana, "2025-03-01T12:32:00Z").await?;
        const CLEAR: &str = "UPDATE ticket_cycles SET first_response_at = NULL";
        const STAMPS: &str = "SELECT opened_at, first_response_at FROM ticket_cycles ORDER BY id";
        let (sqlite, postgres) = (
            include_str!("../migrations/sqlite/0014_dashboard.sql"),
            include_str!("../migrations/postgres/0014_dashboard.sql"),
        );
        let backfill = |text: &'static str| text.split("CREATE INDEX").next().unwrap_or_default();
        let stamps: Vec<(i64, Option<i64>)> = match &db {
            Db::Sqlite(store) => {
                sqlx::query(CLEAR).execute(&store.write).await?;
                sqlx::raw_sql(backfill(sqlite))
                    .execute(&store.write)
                    .await?;
                sqlx::query_as(STAMPS).fetch_all(&store.write).await?
            }
            Db::Postgres(pool) => {
                sqlx::query(CLEAR).execute(pool).await?;
                sqlx::raw_sql(backfill(postgres)).execute(pool).await?;
                sqlx::query_as(STAMPS).fetch_all(pool).await?
            }
        };
        assert_eq!(
            stamps,
            vec![
                (
                    at("2025-03-01T12:00:00Z").0,
                    Some(at("2025-03-01T12:00:20Z").0)
                ),
                (
                    at("2025-03-01T12:30:00Z").0,
                    Some(at("2025-03-01T12:31:00Z").0)
                ),
            ]
        );
        Ok(())
    })
    .await
}
