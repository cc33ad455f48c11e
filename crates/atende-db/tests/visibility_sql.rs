//! The SQL rendering of the visibility rule agrees with the rule (SPEC §5): on random tenants
//! (users with profiles and queues, contacts with wallets, tickets of every status, owner, queue,
//! group, bot and overflow combination, random settings) every user's list pages, tab by tab and
//! with filters, hold exactly the tickets `Plan::admits` and `visibility::can_see` admit, in
//! list order without gaps or repeats, and the unread counters count the same tickets. Runs on
//! SQLite and, with `TEST_DATABASE_URL`, on PostgreSQL.

use atende_db::connections::{self, NewConnection};
use atende_db::contacts::{self, NewContact};
use atende_db::flows::{self, NewFlow};
use atende_db::queues::{self, NewQueue};
use atende_db::testing::TestDb;
use atende_db::ticket_list::{self, Filter, PageRequest, Scope, SortKey, Visibility};
use atende_db::users::{self, NewUser};
use atende_db::{Db, tenants};
use atende_domain::visibility::{Plan, TicketFacts, Viewer, VisibilitySettings, can_see};
use atende_domain::{
    ChannelKind, ContactId, FlowId, NameSource, Profile, QueueId, TenantId, TicketId, TicketStatus,
    UserId,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::sync::atomic::{AtomicU64, Ordering};

const BASE_TIME: i64 = 1_760_000_000_000;

#[derive(Debug, Clone)]
struct UserSpec {
    profile: Profile,
    /// Bit i: member of queue i.
    queues: u8,
}

#[derive(Debug, Clone)]
struct TicketSpec {
    contact: usize,
    status: TicketStatus,
    owner: Option<usize>,
    queue: Option<usize>,
    is_group: bool,
    /// 0: none, 1: a bot flow, 2: an integration session.
    bot: u8,
    overflowed: bool,
    unread: i64,
    /// Few distinct values, so sort keys tie and the id decides.
    last_inbound: Option<i64>,
    created: i64,
    updated: i64,
}

#[derive(Debug, Clone)]
struct FilterSpec {
    queue: Option<usize>,
    owner: Option<usize>,
    unread: Option<bool>,
    closed_since: Option<i64>,
}

#[derive(Debug, Clone)]
struct World {
    queues: usize,
    users: Vec<UserSpec>,
    /// Per contact, bit i: user i is a wallet owner.
    wallets: Vec<u8>,
    tickets: Vec<TicketSpec>,
    settings: VisibilitySettings,
    chatbot_tab: bool,
    filter: FilterSpec,
    page_size: i64,
}

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![
        1 => Just(Profile::Admin),
        1 => Just(Profile::Supervisor),
        4 => Just(Profile::User),
    ]
}

fn status() -> impl Strategy<Value = TicketStatus> {
    prop_oneof![
        Just(TicketStatus::Pending),
        Just(TicketStatus::Open),
        Just(TicketStatus::Paused),
        Just(TicketStatus::Closed),
    ]
}

fn settings() -> impl Strategy<Value = VisibilitySettings> {
    any::<[bool; 7]>().prop_map(|b| VisibilitySettings {
        supervisor_sees_as_user: b[0],
        show_groups_to_all: b[1],
        show_closed_to_all: b[2],
        show_unassigned_to_all: b[3],
        hide_bot_tickets: b[4],
        force_wallet_routing: b[5],
        hide_others_tickets: b[6],
    })
}

fn world() -> impl Strategy<Value = World> {
    (0_usize..=3, 1_usize..=4, 1_usize..=4).prop_flat_map(|(queues, users, contacts)| {
        let user =
            (profile(), any::<u8>()).prop_map(|(profile, queues)| UserSpec { profile, queues });
        let ticket = (
            0..contacts,
            status(),
            proptest::option::weighted(0.6, 0..users),
            proptest::option::weighted(0.7, 0..queues.max(1)),
            prop::bool::weighted(0.2),
            0_u8..3,
            any::<bool>(),
            prop_oneof![2 => Just(0_i64), 1 => 1_i64..3],
            proptest::option::weighted(0.8, 0_i64..4),
            0_i64..4,
            0_i64..4,
        )
            .prop_map(
                move |(
                    contact,
                    status,
                    owner,
                    queue,
                    is_group,
                    bot,
                    overflowed,
                    unread,
                    last,
                    created,
                    updated,
                )| {
                    TicketSpec {
                        contact,
                        status,
                        owner,
                        queue: if queues == 0 { None } else { queue },
                        is_group,
                        bot,
                        overflowed,
                        unread,
                        last_inbound: last,
                        created,
                        updated,
                    }
                },
            );
        let filter = (
            proptest::option::weighted(0.25, 0..queues.max(1)),
            proptest::option::weighted(0.25, 0..users),
            proptest::option::weighted(0.3, any::<bool>()),
            proptest::option::weighted(0.3, 0_i64..4),
        )
            .prop_map(move |(queue, owner, unread, closed_since)| FilterSpec {
                queue: if queues == 0 { None } else { queue },
                owner,
                unread,
                closed_since,
            });
        (
            prop::collection::vec(user, users),
            prop::collection::vec(any::<u8>(), contacts),
            prop::collection::vec(ticket, 0..14),
            settings(),
            any::<bool>(),
            filter,
            1_i64..4,
        )
            .prop_map(
                move |(users, wallets, tickets, settings, chatbot_tab, filter, page_size)| World {
                    queues,
                    users,
                    wallets,
                    tickets,
                    settings,
                    chatbot_tab,
                    filter,
                    page_size,
                },
            )
    })
}

/// What the test stored, with the ids the store gave.
struct Stored {
    tenant: TenantId,
    queue_ids: Vec<QueueId>,
    users: Vec<(UserId, Profile, Vec<QueueId>)>,
    tickets: Vec<Stored1>,
}

struct Stored1 {
    id: TicketId,
    facts: TicketFacts,
    unread: i64,
    last_inbound_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

static CASE: AtomicU64 = AtomicU64::new(0);

fn at(step: i64) -> i64 {
    BASE_TIME + step * 60_000
}

async fn seed(db: &Db, world: &World) -> Result<Stored, String> {
    let case = CASE.fetch_add(1, Ordering::Relaxed);
    let fail = |what: &str, e: atende_db::DbError| format!("{what}: {e}");
    let tenant = tenants::platform_create(db, &format!("vis-{case}-{}", std::process::id()), "Vis")
        .await
        .map_err(|e| fail("tenant", e))?
        .id;
    let mut queue_ids = Vec::new();
    for n in 0..world.queues {
        let queue = queues::create(
            db,
            tenant,
            &NewQueue {
                name: format!("Q{n}"),
                color: "#123456".into(),
                greeting: String::new(),
                absence_message: String::new(),
                business_hours: None,
            },
        )
        .await
        .map_err(|e| fail("queue", e))?;
        queue_ids.push(queue.id);
    }
    let mut users_out = Vec::new();
    for (n, spec) in world.users.iter().enumerate() {
        let user = users::create(
            db,
            tenant,
            &NewUser {
                email: format!("u{n}-{case}-{}@vis.test", std::process::id()),
                name: format!("User {n}"),
                password_hash: "x".into(),
                profile: spec.profile,
                ..NewUser::default()
            },
        )
        .await
        .map_err(|e| fail("user", e))?;
        let mine: Vec<QueueId> = queue_ids
            .iter()
            .enumerate()
            .filter(|(i, _)| spec.queues & (1 << i) != 0)
            .map(|(_, q)| *q)
            .collect();
        queues::set_user_queues(db, tenant, user.id, &mine)
            .await
            .map_err(|e| fail("user queues", e))?;
        users_out.push((user.id, spec.profile, mine));
    }
    let mut contact_ids = Vec::new();
    let mut wallet_owners: Vec<Vec<UserId>> = Vec::new();
    for (n, bits) in world.wallets.iter().enumerate() {
        let owners: Vec<UserId> = users_out
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, (id, _, _))| *id)
            .collect();
        let contact = contacts::create(
            db,
            tenant,
            &NewContact {
                name: format!("Contact {n}"),
                name_source: NameSource::Manual,
                phone: None,
                email: None,
                avatar_url: None,
                blocked: false,
                is_group: false,
                custom_fields: serde_json::json!({}),
                identities: Vec::new(),
                wallet_user_ids: owners.clone(),
                tag_ids: Vec::new(),
            },
        )
        .await
        .map_err(|e| fail("contact", e))?;
        contact_ids.push(contact.id);
        wallet_owners.push(owners);
    }
    let flow = flows::create(
        db,
        tenant,
        &NewFlow {
            name: "bot".into(),
            active: true,
            graph: serde_json::json!({}),
        },
    )
    .await
    .map_err(|e| fail("flow", e))?;
    let mut tickets = Vec::new();
    for (n, spec) in world.tickets.iter().enumerate() {
        // One connection per ticket: any mix of statuses respects "one open ticket per contact
        // and connection".
        let connection = connections::create(
            db,
            tenant,
            &NewConnection {
                kind: ChannelKind::Webchat,
                name: format!("C{n}"),
                default_queue_id: None,
                default_flow_id: None,
                public_key: None,
                credentials: None,
                send_delay_min_ms: None,
                send_delay_max_ms: None,
                cadence_enabled: None,
            },
        )
        .await
        .map_err(|e| fail("connection", e))?;
        let owner = spec.owner.map(|i| users_out[i].0);
        let queue = spec.queue.and_then(|i| queue_ids.get(i).copied());
        let contact: ContactId = contact_ids[spec.contact];
        let bot_flow: Option<FlowId> = (spec.bot == 1).then_some(flow.id);
        let session: Option<&str> = (spec.bot == 2).then_some("{\"kind\":\"typebot\"}");
        let last_inbound = spec.last_inbound.map(at);
        let closed_at = (spec.status == TicketStatus::Closed).then_some(at(spec.updated));
        let protocol = format!("p{case}-{n}");
        let id = insert_ticket(
            db,
            &[tenant.0, contact.0, connection.id.0],
            spec.status.as_str(),
            owner.map(|u| u.0),
            queue.map(|q| q.0),
            spec.is_group,
            &protocol,
            bot_flow.map(|f| f.0),
            session,
            spec.overflowed,
            spec.unread,
            last_inbound,
            closed_at,
            at(spec.created),
            at(spec.updated),
        )
        .await?;
        tickets.push(Stored1 {
            id: TicketId(id),
            facts: TicketFacts {
                status: spec.status,
                owner_id: owner,
                queue_id: queue,
                is_group: spec.is_group,
                bot_active: spec.bot != 0,
                wallet_overflowed: spec.overflowed,
                wallet_owner_ids: wallet_owners[spec.contact].clone(),
            },
            unread: spec.unread,
            last_inbound_at: last_inbound,
            created_at: at(spec.created),
            updated_at: at(spec.updated),
        });
    }
    Ok(Stored {
        tenant,
        queue_ids,
        users: users_out,
        tickets,
    })
}

#[allow(clippy::too_many_arguments)]
async fn insert_ticket(
    db: &Db,
    refs: &[i64; 3],
    status: &str,
    owner: Option<i64>,
    queue: Option<i64>,
    is_group: bool,
    protocol: &str,
    bot_flow: Option<i64>,
    session: Option<&str>,
    overflowed: bool,
    unread: i64,
    last_inbound: Option<i64>,
    closed_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
) -> Result<i64, String> {
    const SQL: &str = "INSERT INTO tickets (tenant_id, contact_id, connection_id, status, owner_id,
            queue_id, is_group, protocol, bot_flow_id, integration_session, wallet_overflowed,
            unread, last_message, last_message_at, last_inbound_at, closed_at, created_at,
            updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'hi', $13, $13, $14, $15, $16)
        RETURNING id";
    let result: Result<i64, sqlx::Error> = atende_db::write!(db, pool => {
        sqlx::query_scalar(SQL)
            .bind(refs[0])
            .bind(refs[1])
            .bind(refs[2])
            .bind(status)
            .bind(owner)
            .bind(queue)
            .bind(is_group)
            .bind(protocol)
            .bind(bot_flow)
            .bind(session)
            .bind(overflowed)
            .bind(unread)
            .bind(last_inbound)
            .bind(closed_at)
            .bind(created_at)
            .bind(updated_at)
            .fetch_one(pool)
            .await
    });
    result.map_err(|e| format!("ticket insert: {e}"))
}

/// The tabs of SPEC §12 as scopes, plus "everything".
fn scopes(chatbot_tab: bool) -> Vec<(&'static str, Scope)> {
    use TicketStatus::*;
    let mut out = vec![
        (
            "open",
            Scope {
                statuses: vec![Open, Paused],
                group: Some(false),
                bot: None,
            },
        ),
        (
            "pending",
            Scope {
                statuses: vec![Pending],
                group: Some(false),
                bot: chatbot_tab.then_some(false),
            },
        ),
        (
            "closed",
            Scope {
                statuses: vec![Closed],
                group: Some(false),
                bot: None,
            },
        ),
        (
            "groups",
            Scope {
                statuses: vec![Open, Pending, Paused],
                group: Some(true),
                bot: None,
            },
        ),
        (
            "all",
            Scope {
                statuses: vec![Pending, Open, Paused, Closed],
                group: None,
                bot: None,
            },
        ),
    ];
    if chatbot_tab {
        out.push((
            "chatbot",
            Scope {
                statuses: vec![Pending],
                group: Some(false),
                bot: Some(true),
            },
        ));
    }
    out
}

fn in_scope(scope: &Scope, facts: &TicketFacts) -> bool {
    scope.statuses.contains(&facts.status)
        && scope.group.is_none_or(|g| g == facts.is_group)
        && scope.bot.is_none_or(|b| b == facts.bot_active)
}

fn passes(filter: &Filter, ticket: &Stored1, sort: SortKey) -> bool {
    filter
        .queue_id
        .is_none_or(|q| ticket.facts.queue_id == Some(q))
        && filter
            .owner_id
            .is_none_or(|o| ticket.facts.owner_id == Some(o))
        && filter.unread.is_none_or(|u| u == (ticket.unread > 0))
        && match (filter.closed_since, ticket.facts.status) {
            (Some(since), TicketStatus::Closed) => key(ticket, sort) >= since,
            _ => true,
        }
}

fn key(ticket: &Stored1, sort: SortKey) -> i64 {
    match sort {
        SortKey::LastInbound => ticket.last_inbound_at.unwrap_or(ticket.created_at),
        SortKey::UpdatedAt => ticket.updated_at,
    }
}

async fn check(db: &Db, world: &World) -> Result<(), String> {
    let stored = seed(db, world).await?;
    let tenant_has_queues = !stored.queue_ids.is_empty();
    let filters = [
        Filter::default(),
        Filter {
            queue_id: world
                .filter
                .queue
                .and_then(|i| stored.queue_ids.get(i).copied()),
            owner_id: world.filter.owner.map(|i| stored.users[i].0),
            unread: world.filter.unread,
            closed_since: world.filter.closed_since.map(at),
            ..Filter::default()
        },
    ];
    for (user_id, profile, queue_ids) in &stored.users {
        let viewer = Viewer {
            user_id: *user_id,
            profile: *profile,
            queue_ids: queue_ids.clone(),
        };
        let plan = Plan::for_viewer(&viewer, &world.settings, tenant_has_queues);
        for ticket in &stored.tickets {
            let reference = can_see(&viewer, &ticket.facts, &world.settings, tenant_has_queues);
            if plan.admits(&ticket.facts) != reference {
                return Err(format!(
                    "plan and rule disagree for {viewer:?} on {:?}",
                    ticket.facts
                ));
            }
        }
        let vis = Visibility {
            plan: &plan,
            tenant_queue_ids: &stored.queue_ids,
        };
        let tabs = scopes(world.chatbot_tab);
        for (tab, scope) in &tabs {
            for sort in [SortKey::LastInbound, SortKey::UpdatedAt] {
                for filter in &filters {
                    let mut expected: Vec<&Stored1> = stored
                        .tickets
                        .iter()
                        .filter(|t| in_scope(scope, &t.facts) && passes(filter, t, sort))
                        .filter(|t| can_see(&viewer, &t.facts, &world.settings, tenant_has_queues))
                        .collect();
                    expected.sort_by_key(|t| std::cmp::Reverse((key(t, sort), t.id)));
                    let expected: Vec<TicketId> = expected.iter().map(|t| t.id).collect();
                    let mut got = Vec::new();
                    let mut after = None;
                    for _ in 0..100 {
                        let request = PageRequest {
                            scope,
                            filter,
                            sort,
                            after,
                            limit: world.page_size,
                        };
                        let page = ticket_list::page(db, stored.tenant, vis, &request)
                            .await
                            .map_err(|e| {
                                format!(
                                    "page failed: {e}\n{}",
                                    ticket_list::page_sql_text(stored.tenant, vis, &request)
                                )
                            })?;
                        let full = page.len() as i64 == world.page_size;
                        after = page.last().map(|t| (t.sort_key, t.ticket.id));
                        for listed in &page {
                            if listed.sort_key != sort.of(&listed.ticket) {
                                return Err(format!("sort key of {} is wrong", listed.ticket.id));
                            }
                        }
                        got.extend(page.into_iter().map(|t| t.ticket.id));
                        if !full {
                            break;
                        }
                    }
                    if got != expected {
                        let request = PageRequest {
                            scope,
                            filter,
                            sort,
                            after: None,
                            limit: 100,
                        };
                        return Err(format!(
                            "tab {tab} sort {sort:?} filter {filter:?} viewer {viewer:?}: \
                             store listed {got:?}, the rule admits {expected:?}\nplan {:?}\nsql {}",
                            plan.branches,
                            ticket_list::page_sql_text(stored.tenant, vis, &request)
                        ));
                    }
                }
            }
        }
        let just_scopes: Vec<Scope> = tabs.iter().map(|(_, s)| s.clone()).collect();
        let counts = ticket_list::unread_counts(db, stored.tenant, &plan, &just_scopes, 1000)
            .await
            .map_err(|e| format!("counts failed: {e}"))?;
        for ((tab, scope), count) in tabs.iter().zip(&counts) {
            let expected = stored
                .tickets
                .iter()
                .filter(|t| in_scope(scope, &t.facts) && t.unread > 0)
                .filter(|t| plan.admits(&t.facts))
                .count() as i64;
            if *count != expected {
                return Err(format!(
                    "unread counter of {tab} for {viewer:?}: store {count}, rule {expected}"
                ));
            }
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
        .clamp(1, 32)
}

#[test]
fn sql_visibility_equals_the_rule_on_random_tenants() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let stores = runtime.block_on(TestDb::all()).expect("test stores");
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        ..Config::default()
    });
    let outcome = runner.run(&world(), |world| {
        for store in &stores {
            runtime
                .block_on(check(&store.db, &world))
                .map_err(|e| TestCaseError::fail(format!("{}: {e}", store.name)))?;
        }
        Ok(())
    });
    for store in stores {
        runtime.block_on(store.cleanup());
    }
    if let Err(error) = outcome {
        panic!("{error}");
    }
}

#[test]
fn unread_counters_stop_at_the_cap() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        for store in TestDb::all().await.expect("stores") {
            let world = World {
                queues: 1,
                users: vec![UserSpec {
                    profile: Profile::Admin,
                    queues: 1,
                }],
                wallets: vec![0],
                tickets: (0..5)
                    .map(|n| TicketSpec {
                        contact: 0,
                        status: TicketStatus::Closed,
                        owner: None,
                        queue: Some(0),
                        is_group: false,
                        bot: 0,
                        overflowed: false,
                        unread: 1,
                        last_inbound: Some(n),
                        created: 0,
                        updated: n,
                    })
                    .collect(),
                settings: VisibilitySettings::default(),
                chatbot_tab: false,
                filter: FilterSpec {
                    queue: None,
                    owner: None,
                    unread: None,
                    closed_since: None,
                },
                page_size: 10,
            };
            let stored = seed(&store.db, &world).await.expect("stored");
            let (user_id, profile, queue_ids) = stored.users[0].clone();
            let plan = Plan::for_viewer(
                &Viewer {
                    user_id,
                    profile,
                    queue_ids,
                },
                &VisibilitySettings::default(),
                true,
            );
            let closed = Scope {
                statuses: vec![TicketStatus::Closed],
                group: Some(false),
                bot: None,
            };
            let counts = ticket_list::unread_counts(
                &store.db,
                stored.tenant,
                &plan,
                std::slice::from_ref(&closed),
                3,
            )
            .await
            .expect("counts");
            assert_eq!(counts, vec![3], "{}", store.name);
            let counts =
                ticket_list::unread_counts(&store.db, stored.tenant, &plan, &[closed], 1000)
                    .await
                    .expect("counts");
            assert_eq!(counts, vec![5], "{}", store.name);
            store.cleanup().await;
        }
    });
}

/// ARCHITECTURE "Traps": every arm of a page seeks an index and reads at most a page of it; no
/// arm scans the tickets table. SQLite's planner needs no statistics for this, so a small store
/// shows the plan a large one gets. (PostgreSQL chooses by statistics: see the list benchmark.)
#[test]
fn every_arm_of_a_page_and_of_the_counters_seeks_an_index_on_sqlite() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = TestDb::sqlite().await.expect("sqlite");
        let world = World {
            queues: 3,
            users: vec![
                UserSpec { profile: Profile::User, queues: 0b011 },
                UserSpec { profile: Profile::Admin, queues: 0 },
            ],
            wallets: vec![0b01],
            tickets: Vec::new(),
            settings: VisibilitySettings { show_groups_to_all: true, ..VisibilitySettings::default() },
            chatbot_tab: true,
            filter: FilterSpec { queue: None, owner: None, unread: None, closed_since: None },
            page_size: 40,
        };
        let stored = seed(&store.db, &world).await.expect("stored");
        for wallet_routing in [false, true] {
            let settings = VisibilitySettings { force_wallet_routing: wallet_routing, ..world.settings };
            for (user_id, profile, queue_ids) in &stored.users {
                let viewer = Viewer { user_id: *user_id, profile: *profile, queue_ids: queue_ids.clone() };
                let plan = Plan::for_viewer(&viewer, &settings, true);
                let vis = Visibility { plan: &plan, tenant_queue_ids: &stored.queue_ids };
                let tabs = scopes(true);
                for (tab, scope) in &tabs {
                    for sort in [SortKey::LastInbound, SortKey::UpdatedAt] {
                        let filter = Filter::default();
                        let request = PageRequest { scope, filter: &filter, sort, after: Some((BASE_TIME, TicketId(10))), limit: 41 };
                        let lines = ticket_list::explain_page(&store.db, stored.tenant, vis, &request)
                            .await
                            .expect("explain");
                        if std::env::var("SHOW_PLANS").is_ok() { eprintln!("== {tab} {sort:?} {profile:?} wallet {wallet_routing}\n{}", lines.join("\n")); }
                        let ticket_reads: Vec<&String> =
                            lines.iter().filter(|l| l.contains(" t ") || l.ends_with(" t")).collect();
                        assert!(!ticket_reads.is_empty(), "{tab}: {lines:#?}");
                        // The page drives the join: a ticket is fetched by its id.
                        assert!(
                            lines.iter().any(|l| l == "SCAN p"),
                            "{tab} {sort:?} {profile:?}: the page is not the outer loop\n{lines:#?}"
                        );
                        for line in ticket_reads {
                            assert!(
                                line.starts_with("SEARCH t USING"),
                                "{tab} {sort:?} {profile:?} wallet {wallet_routing}: an arm scans: {line}\n{lines:#?}"
                            );
                            // A later page starts at the cursor inside the index, not at its top.
                            let list_index = ["_recent ", "_updated "].iter().any(|i| line.contains(i));
                            assert!(
                                !list_index || line.contains("<?"),
                                "{tab} {sort:?} {profile:?}: the cursor is not an index range: {line}"
                            );
                        }
                    }
                }
                let just: Vec<Scope> = tabs.iter().map(|(_, s)| s.clone()).collect();
                let lines = ticket_list::explain_counts(&store.db, stored.tenant, &plan, &just, 1000)
                    .await
                    .expect("explain");
                for line in lines.iter().filter(|l| l.contains(" t ") || l.ends_with(" t")) {
                    assert!(
                        line.starts_with("SEARCH t USING") && line.contains("tickets_unread_"),
                        "{profile:?} wallet {wallet_routing}: a counter arm does not seek the unread indexes: {line}\n{lines:#?}"
                    );
                }
            }
        }
        store.cleanup().await;
    });
}
