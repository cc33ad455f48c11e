//! The ticket list, counters, detail and chat over HTTP (SPEC §5, §12, §13), on SQLite and, with
//! `TEST_DATABASE_URL`, on PostgreSQL: tabs (paused under open, groups only in their tab, bot
//! tickets in the Chatbot tab when it is on), filters, search, keyset pages without gaps or
//! repeats, the ordering switch, `hide_old_tickets`, unread counters, 404 for tickets out of sight,
//! message history with queue stamps, and `spy`.
//!
//! Tickets and messages are written straight into the server's store (the inbound pipeline is
//! not what this file tests).

use atende_db::Db;
use atende_db::messages::{self, NewMessage};
use atende_db::ticket_list::bench_data::{self, BulkTicket};
use atende_domain::{
    ConnectionId, ContactId, FlowId, MessageAuthor, MessageDirection, MessageKind, MessageStatus,
    QueueId, TenantId, TicketId, TicketStatus, Timestamp, UserId,
};
use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};
use std::collections::HashMap;

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// Everything the scenario refers to by name.
struct World {
    db: Db,
    tenant: TenantId,
    admin: String,
    ana: String,
    bruno: String,
    ana_id: i64,
    bruno_id: i64,
    q1: i64,
    q2: i64,
    vip: i64,
    connection: ConnectionId,
    flow: FlowId,
    joao: ContactId,
    /// Ticket ids by name.
    t: HashMap<&'static str, i64>,
    /// A moment a few days ago; the base tickets sit minutes after it.
    base: i64,
    next_protocol: u32,
}

impl World {
    fn at(&self, minutes: i64) -> Timestamp {
        Timestamp(self.base + minutes * MINUTE)
    }

    fn ticket(&self, name: &str) -> i64 {
        *self
            .t
            .get(name)
            .unwrap_or_else(|| panic!("no ticket {name}"))
    }

    /// A ticket as the spec describes one; the caller adjusts the fields that matter.
    fn draft(&mut self, contact: ContactId, status: TicketStatus, minutes: i64) -> BulkTicket {
        self.next_protocol += 1;
        let at = self.at(minutes);
        BulkTicket {
            contact_id: contact,
            connection_id: self.connection,
            status,
            owner_id: None,
            queue_id: None,
            is_group: false,
            protocol: format!("2025{:06}", self.next_protocol),
            bot_flow_id: None,
            integration_session: None,
            wallet_overflowed: false,
            unread: 0,
            last_message: format!("mensagem {}", self.next_protocol),
            last_message_at: Some(at),
            last_inbound_at: Some(at),
            closed_at: (status == TicketStatus::Closed).then_some(at),
            created_at: Timestamp(at.0 - 10 * MINUTE),
            updated_at: at,
        }
    }

    async fn contacts(&self, count: usize) -> anyhow::Result<Vec<ContactId>> {
        let rows: Vec<bench_data::BulkContact> = (0..count)
            .map(|n| bench_data::BulkContact {
                name: format!("Cliente {n}"),
                phone: None,
                created_at: Timestamp(self.base),
            })
            .collect();
        Ok(bench_data::insert_contacts(&self.db, self.tenant, &rows).await?)
    }

    async fn insert(&mut self, named: Vec<(&'static str, BulkTicket)>) -> anyhow::Result<Vec<i64>> {
        let rows: Vec<BulkTicket> = named.iter().map(|(_, row)| row.clone()).collect();
        let ids = bench_data::insert_tickets(&self.db, self.tenant, &rows).await?;
        for ((name, _), id) in named.iter().zip(&ids) {
            if !name.is_empty() {
                self.t.insert(name, id.0);
            }
        }
        Ok(ids.into_iter().map(|id| id.0).collect())
    }
}

async fn setting(server: &TestServer, w: &World, key: &str, value: Value) -> anyhow::Result<()> {
    expect_status!(
        server
            .put(
                &format!("/api/v1/settings/{key}"),
                &w.admin,
                json!({ "value": value })
            )
            .await?,
        200
    );
    Ok(())
}

/// The ticket ids of a list page, in order, and its cursor.
async fn page(
    server: &TestServer,
    token: &str,
    query: &str,
) -> anyhow::Result<(Vec<i64>, Option<String>)> {
    let body = expect_status!(
        server
            .get(&format!("/api/v1/tickets?{query}"), token)
            .await?,
        200
    );
    let ids = body["tickets"]
        .as_array()
        .unwrap_or_else(|| panic!("no tickets in {body}"))
        .iter()
        .map(id)
        .collect();
    Ok((ids, body["next_cursor"].as_str().map(str::to_owned)))
}

async fn ids(server: &TestServer, token: &str, query: &str) -> anyhow::Result<Vec<i64>> {
    let (ids, cursor) = page(server, token, query).await?;
    assert_eq!(cursor, None, "{query}: expected a single page");
    Ok(ids)
}

/// Every page of a list, following the cursors.
async fn all_pages(
    server: &TestServer,
    token: &str,
    query: &str,
) -> anyhow::Result<(Vec<i64>, usize)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&cursor={c}"),
            None => query.to_owned(),
        };
        let (ids, next) = page(server, token, &q).await?;
        pages += 1;
        out.extend(ids);
        match next {
            Some(next) => cursor = Some(next),
            None => return Ok((out, pages)),
        }
        assert!(pages < 50, "runaway paging");
    }
}

/// The counters, checked against the ones a list page carries when asked `with_counts` (every
/// tab's page answers the same counters).
async fn counts(server: &TestServer, token: &str) -> anyhow::Result<Value> {
    let counts = expect_status!(server.get("/api/v1/tickets/counts", token).await?, 200);
    for tab in ["open", "pending"] {
        let page = expect_status!(
            server
                .get(
                    &format!("/api/v1/tickets?tab={tab}&with_counts=true"),
                    token
                )
                .await?,
            200
        );
        assert_eq!(page["counts"], counts, "the {tab} page's counters");
    }
    let plain = expect_status!(server.get("/api/v1/tickets?tab=open", token).await?, 200);
    assert!(
        plain.get("counts").is_none(),
        "counters only when asked: {plain}"
    );
    Ok(counts)
}

async fn setup(server: &TestServer) -> anyhow::Result<World> {
    let admin = server.admin_token().await?;
    let me = expect_status!(server.get("/api/v1/auth/me", &admin).await?, 200);
    let tenant = TenantId(
        me["tenant_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no tenant in {me}")),
    );
    let q1 = id(&expect_status!(
        server
            .post("/api/v1/queues", &admin, json!({"name": "Vendas"}))
            .await?,
        201
    ));
    let q2 = id(&expect_status!(
        server
            .post("/api/v1/queues", &admin, json!({"name": "Suporte"}))
            .await?,
        201
    ));
    let user = |email: &'static str, queue: i64| json!({"email": email, "name": email.split('@').next(), "password": "agent-password-1", "profile": "user", "queue_ids": [queue]});
    let ana_id = id(&expect_status!(
        server
            .post("/api/v1/users", &admin, user("ana@default.test", q1))
            .await?,
        201
    ));
    let bruno_id = id(&expect_status!(
        server
            .post("/api/v1/users", &admin, user("bruno@default.test", q2))
            .await?,
        201
    ));
    let ana = server.login("ana@default.test", "agent-password-1").await?;
    let bruno = server
        .login("bruno@default.test", "agent-password-1")
        .await?;
    let vip = id(&expect_status!(
        server
            .post(
                "/api/v1/tags",
                &admin,
                json!({"name": "VIP", "color": "#ff0000"})
            )
            .await?,
        201
    ));
    let joao = id(&expect_status!(
        server
            .post(
                "/api/v1/contacts",
                &admin,
                json!({"name": "João Ávila", "phone": "+55 11 98765-4321", "tag_ids": [vip]})
            )
            .await?,
        201
    ));
    let connection = id(&expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "webchat", "name": "Site"})
            )
            .await?,
        201
    ));
    let flow = id(&expect_status!(
        server
            .post(
                "/api/v1/flows",
                &admin,
                json!({"name": "Menu", "active": true})
            )
            .await?,
        201
    ));
    let db = Db::connect(&server.database_url).await?;
    let mut w = World {
        db,
        tenant,
        admin,
        ana,
        bruno,
        ana_id,
        bruno_id,
        q1,
        q2,
        vip,
        connection: ConnectionId(connection),
        flow: FlowId(flow),
        joao: ContactId(joao),
        t: HashMap::new(),
        base: Timestamp::now().0 - 5 * DAY,
        next_protocol: 0,
    };
    let c = w.contacts(12).await?;
    let (ana_u, bruno_u) = (Some(UserId(ana_id)), Some(UserId(bruno_id)));
    let (q1_, q2_) = (Some(QueueId(q1)), Some(QueueId(q2)));
    let mut rows = Vec::new();
    let mut add = |w: &mut World,
                   name: &'static str,
                   contact: ContactId,
                   status: TicketStatus,
                   minutes: i64,
                   edit: &dyn Fn(&mut BulkTicket)| {
        let mut row = w.draft(contact, status, minutes);
        edit(&mut row);
        rows.push((name, row));
    };
    use TicketStatus::*;
    let joao_c = w.joao;
    add(&mut w, "a_open", joao_c, Open, 10, &|r| {
        r.owner_id = ana_u;
        r.queue_id = q1_;
        r.unread = 2;
        r.updated_at = Timestamp(r.updated_at.0 - 9 * MINUTE);
    });
    add(&mut w, "a_paused", c[0], Paused, 9, &|r| {
        r.owner_id = ana_u;
        r.queue_id = q1_;
        r.updated_at = Timestamp(r.updated_at.0 - 7 * MINUTE);
    });
    add(&mut w, "b_open_q1", c[1], Open, 8, &|r| {
        r.owner_id = bruno_u;
        r.queue_id = q1_;
        r.updated_at = Timestamp(r.updated_at.0 - 5 * MINUTE);
    });
    add(&mut w, "b_open_q2", c[2], Open, 7, &|r| {
        r.owner_id = bruno_u;
        r.queue_id = q2_;
        r.unread = 1;
    });
    add(&mut w, "p_q1", c[3], Pending, 6, &|r| {
        r.queue_id = q1_;
        r.unread = 3;
    });
    add(&mut w, "p_q2", c[4], Pending, 5, &|r| {
        r.queue_id = q2_;
        r.unread = 1;
    });
    let flow = w.flow;
    add(&mut w, "p_bot_q1", c[5], Pending, 4, &|r| {
        r.queue_id = q1_;
        r.unread = 1;
        r.bot_flow_id = Some(flow);
    });
    add(&mut w, "g_q1", c[6], Pending, 3, &|r| {
        r.queue_id = q1_;
        r.unread = 1;
        r.is_group = true;
    });
    add(&mut w, "c_q1", c[7], Closed, 2, &|r| {
        r.owner_id = bruno_u;
        r.queue_id = q1_;
    });
    add(&mut w, "c_old_q1", c[8], Closed, -40 * 24 * 60, &|r| {
        r.queue_id = q1_;
    });
    add(&mut w, "unassigned", c[9], Pending, 1, &|r| {
        r.unread = 1;
    });
    // No inbound message yet: sorts by its creation time (minute 2), not by its last message.
    let created = w.at(2);
    add(&mut w, "p_no_inbound", c[10], Pending, 11, &|r| {
        r.queue_id = q1_;
        r.last_inbound_at = None;
        r.created_at = created;
    });
    w.insert(rows).await?;
    Ok(w)
}

#[tokio::test]
async fn tabs_filters_search_order_and_counters_follow_visibility() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let mut w = setup(&server).await?;
        let s = &server;
        let t = |name: &str| w.ticket(name);

        // Open shows paused too; Bruno's Vendas ticket is visible to Ana (her queue), his Suporte one is not.
        assert_eq!(
            ids(s, &w.ana, "tab=open").await?,
            vec![t("a_open"), t("a_paused"), t("b_open_q1")],
            "{}",
            server.backend
        );
        // `status=` is a synonym of the status tabs and narrows a tab.
        assert_eq!(
            ids(s, &w.ana, "status=open").await?,
            ids(s, &w.ana, "tab=open").await?
        );
        assert_eq!(
            ids(s, &w.ana, "tab=open&status=paused").await?,
            vec![t("a_paused")]
        );
        // Pending: groups only in their tab; no queue → hidden from agents; bot tickets stay while the chatbot tab is off.
        assert_eq!(
            ids(s, &w.ana, "tab=pending").await?,
            vec![t("p_q1"), t("p_bot_q1"), t("p_no_inbound")]
        );
        assert_eq!(ids(s, &w.ana, "tab=groups").await?, vec![t("g_q1")]);
        assert_eq!(
            ids(s, &w.ana, "tab=closed").await?,
            vec![t("c_q1"), t("c_old_q1")]
        );
        assert_eq!(
            ids(s, &w.bruno, "tab=open").await?,
            vec![t("b_open_q1"), t("b_open_q2")]
        );
        // An admin sees every queue and the ticket without one; a ticket without inbound messages
        // sorts by its creation time.
        assert_eq!(
            ids(s, &w.admin, "tab=pending").await?,
            vec![
                t("p_q1"),
                t("p_q2"),
                t("p_bot_q1"),
                t("p_no_inbound"),
                t("unassigned")
            ],
            "{}",
            server.backend
        );
        let (everything, _) = all_pages(s, &w.admin, "").await?;
        assert_eq!(everything.len(), w.t.len(), "no tab = every ticket");

        // The list row carries what the panel shows.
        let body = expect_status!(s.get("/api/v1/tickets?tab=open", &w.ana).await?, 200);
        let row = &body["tickets"][0];
        assert_eq!(row["contact"]["name"], "João Ávila");
        assert_eq!(row["contact"]["phone"], "+5511987654321");
        assert_eq!(row["tag_ids"], json!([w.vip]));
        assert_eq!(row["unread"], 2);
        assert_eq!(row["queue_id"], w.q1);
        assert_eq!(row["owner_id"], w.ana_id);
        assert_eq!(row["status"], "open");
        assert_eq!(row["bot_active"], false);
        assert!(row["protocol"].as_str().is_some_and(|p| !p.is_empty()));
        assert!(
            row["last_message"]
                .as_str()
                .is_some_and(|m| m.starts_with("mensagem"))
        );

        // Filters.
        assert_eq!(
            ids(s, &w.ana, &format!("tab=open&owner_id={}", w.ana_id)).await?,
            vec![t("a_open"), t("a_paused")]
        );
        assert_eq!(
            ids(s, &w.admin, &format!("tab=open&queue_id={}", w.q2)).await?,
            vec![t("b_open_q2")]
        );
        assert_eq!(
            ids(s, &w.ana, &format!("tab=open&queue_id={}", w.q2)).await?,
            Vec::<i64>::new()
        );
        assert_eq!(
            ids(s, &w.ana, &format!("tab=open&tag_id={}", w.vip)).await?,
            vec![t("a_open")]
        );
        assert_eq!(
            ids(s, &w.ana, "tab=open&unread=true").await?,
            vec![t("a_open")]
        );
        assert_eq!(
            ids(s, &w.ana, "tab=open&unread=false").await?,
            vec![t("a_paused"), t("b_open_q1")]
        );
        assert_eq!(
            ids(s, &w.ana, "tab=open&queue_id=&owner_id=").await?.len(),
            3,
            "empty values mean not given"
        );
        // Search: name without accents or case, phone digits, exact protocol.
        assert_eq!(
            ids(s, &w.ana, "tab=open&search=JOAO%20avila").await?,
            vec![t("a_open")]
        );
        assert_eq!(
            ids(s, &w.ana, "tab=open&search=98765-4321").await?,
            vec![t("a_open")]
        );
        let protocol = expect_status!(
            s.get(&format!("/api/v1/tickets/{}", t("p_q1")), &w.ana)
                .await?,
            200
        )["protocol"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(
            ids(s, &w.ana, &format!("tab=pending&search={protocol}")).await?,
            vec![t("p_q1")]
        );
        assert_eq!(
            ids(s, &w.ana, "tab=open&search=ninguem").await?,
            Vec::<i64>::new()
        );
        // Bad input.
        expect_status!(s.get("/api/v1/tickets?queue_id=999999", &w.ana).await?, 404);
        expect_status!(s.get("/api/v1/tickets?queue_id=abc", &w.ana).await?, 400);
        expect_status!(s.get("/api/v1/tickets?tab=everything", &w.ana).await?, 400);
        let bad = expect_status!(s.get("/api/v1/tickets?with_counts=yes", &w.ana).await?, 400);
        assert!(
            bad.to_string().contains("with_counts"),
            "the error names the parameter: {bad}"
        );
        expect_status!(
            s.get("/api/v1/tickets?tab=open&status=closed", &w.ana)
                .await?,
            422
        );
        expect_status!(s.get("/api/v1/tickets?tab=chatbot", &w.ana).await?, 422);
        expect_status!(s.get("/api/v1/tickets?cursor=bm9wZQ", &w.ana).await?, 422);
        expect_status!(s.get("/api/v1/tickets", "atd_not-a-token").await?, 401);

        // Counters: visible tickets with unread messages, per tab.
        let c = counts(s, &w.ana).await?;
        assert_eq!(
            (
                c["enabled"].clone(),
                c["open"].clone(),
                c["pending"].clone(),
                c["groups"].clone()
            ),
            (json!(true), json!(1), json!(2), json!(1)),
            "{c}"
        );
        assert_eq!(c["private"], 3);
        assert_eq!(c["chatbot"], Value::Null);
        let c = counts(s, &w.bruno).await?;
        assert_eq!(
            (c["open"].clone(), c["pending"].clone(), c["groups"].clone()),
            (json!(1), json!(1), json!(1)),
            "{c}"
        );
        let c = counts(s, &w.admin).await?;
        assert_eq!(
            (c["open"].clone(), c["pending"].clone()),
            (json!(2), json!(4)),
            "{c}"
        );

        // Chatbot tab on: bot-held tickets leave pending.
        setting(s, &w, "chatbot_tab", json!(true)).await?;
        assert_eq!(
            ids(s, &w.ana, "tab=pending").await?,
            vec![t("p_q1"), t("p_no_inbound")]
        );
        assert_eq!(ids(s, &w.ana, "tab=chatbot").await?, vec![t("p_bot_q1")]);
        let c = counts(s, &w.ana).await?;
        assert_eq!(
            (
                c["pending"].clone(),
                c["chatbot"].clone(),
                c["private"].clone()
            ),
            (json!(1), json!(1), json!(3)),
            "{c}"
        );
        let body = expect_status!(s.get("/api/v1/tickets?tab=chatbot", &w.ana).await?, 200);
        assert_eq!(body["tickets"][0]["bot_active"], true);
        setting(s, &w, "chatbot_tab", json!(false)).await?;

        // Agents see the ticket with no queue and no owner only with show_unassigned_to_all.
        setting(s, &w, "show_unassigned_to_all", json!(true)).await?;
        assert!(
            ids(s, &w.ana, "tab=pending")
                .await?
                .contains(&t("unassigned"))
        );
        setting(s, &w, "show_unassigned_to_all", json!(false)).await?;
        // hide_others_tickets: Bruno's ticket leaves Ana's open tab.
        setting(s, &w, "hide_others_tickets", json!(true)).await?;
        assert_eq!(
            ids(s, &w.ana, "tab=open").await?,
            vec![t("a_open"), t("a_paused")]
        );
        setting(s, &w, "hide_others_tickets", json!(false)).await?;

        // Counters off: nothing is counted.
        setting(s, &w, "tab_counters", json!(false)).await?;
        let c = counts(s, &w.ana).await?;
        assert_eq!(
            (c["enabled"].clone(), c["open"].clone()),
            (json!(false), Value::Null)
        );
        setting(s, &w, "tab_counters", json!(true)).await?;

        // hide_old_tickets: closed tickets older than old_ticket_days leave the closed tab.
        setting(s, &w, "hide_old_tickets", json!(true)).await?;
        assert_eq!(ids(s, &w.ana, "tab=closed").await?, vec![t("c_q1")]);
        setting(s, &w, "hide_old_tickets", json!(false)).await?;

        // Ordering by updated_at (order_by_last_message off) reverses the three open tickets.
        let (_, cursor) = {
            setting(s, &w, "tickets_page_size", json!(10)).await?;
            page(s, &w.admin, "").await?
        };
        setting(s, &w, "order_by_last_message", json!(false)).await?;
        assert_eq!(
            ids(s, &w.ana, "tab=open").await?,
            vec![t("b_open_q1"), t("a_paused"), t("a_open")]
        );
        // A cursor of the other order is refused, not misread.
        let cursor = cursor.unwrap_or_else(|| panic!("the admin's list has more than 10 tickets"));
        expect_status!(
            s.get(&format!("/api/v1/tickets?cursor={cursor}"), &w.admin)
                .await?,
            422
        );
        setting(s, &w, "order_by_last_message", json!(true)).await?;

        // Pagination: 23 more closed tickets in Vendas, with ties on the sort key.
        let (c_q1, c_old_q1) = (t("c_q1"), t("c_old_q1"));
        let extra_contacts = w.contacts(23).await?;
        let mut extra = Vec::new();
        for (n, contact) in extra_contacts.iter().enumerate() {
            let mut row = w.draft(*contact, TicketStatus::Closed, 100 + (n as i64 / 2));
            row.queue_id = Some(QueueId(w.q1));
            extra.push(("", row));
        }
        let extra_ids = w.insert(extra).await?;
        let (listed, pages) = all_pages(s, &w.ana, "tab=closed").await?;
        assert_eq!(pages, 3, "25 tickets in pages of 10");
        let mut expected: Vec<(i64, i64)> = extra_ids
            .iter()
            .enumerate()
            .map(|(n, id)| (100 + n as i64 / 2, *id))
            .collect();
        expected.push((2, c_q1));
        expected.push((-40 * 24 * 60, c_old_q1));
        expected.sort_by_key(|(minutes, id)| std::cmp::Reverse((*minutes, *id)));
        assert_eq!(
            listed,
            expected.iter().map(|(_, id)| *id).collect::<Vec<_>>(),
            "no gaps, no repeats, newest first, ties by id"
        );
        // The same with updated_at.
        setting(s, &w, "order_by_last_message", json!(false)).await?;
        let (listed_by_update, _) = all_pages(s, &w.ana, "tab=closed").await?;
        assert_eq!(listed_by_update.len(), 25);
        let mut unique = listed_by_update.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 25);
        setting(s, &w, "order_by_last_message", json!(true)).await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn detail_is_404_out_of_sight_and_read_clears_unread() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = setup(&server).await?;
        let s = &server;
        let t = |name: &str| w.ticket(name);
        let detail = expect_status!(
            s.get(&format!("/api/v1/tickets/{}", t("a_open")), &w.ana)
                .await?,
            200
        );
        assert_eq!(detail["contact"]["name"], "João Ávila");
        assert_eq!(detail["message_access"], "own_queues");
        let admin_view = expect_status!(
            s.get(&format!("/api/v1/tickets/{}", t("a_open")), &w.admin)
                .await?,
            200
        );
        assert_eq!(admin_view["message_access"], "all");
        let pending = expect_status!(
            s.get(&format!("/api/v1/tickets/{}", t("p_q1")), &w.ana)
                .await?,
            200
        );
        assert_eq!(pending["message_access"], "none");
        // Out of sight reads exactly like a ticket that does not exist.
        let hidden = expect_status!(
            s.get(&format!("/api/v1/tickets/{}", t("b_open_q2")), &w.ana)
                .await?,
            404
        );
        let missing = expect_status!(s.get("/api/v1/tickets/999999999", &w.ana).await?, 404);
        assert_eq!(hidden, missing);
        expect_status!(
            s.get(
                &format!("/api/v1/tickets/{}/messages", t("b_open_q2")),
                &w.ana
            )
            .await?,
            404
        );
        expect_status!(
            s.post(
                &format!("/api/v1/tickets/{}/read", t("b_open_q2")),
                &w.ana,
                json!({})
            )
            .await?,
            404
        );
        expect_status!(s.get("/api/v1/tickets/abc", &w.ana).await?, 400);

        // The routes are in the OpenAPI document.
        let doc: Value = s
            .http
            .get(s.url("/api/v1/openapi.json"))
            .send()
            .await?
            .json()
            .await?;
        for path in [
            "/api/v1/tickets",
            "/api/v1/tickets/counts",
            "/api/v1/tickets/{id}",
            "/api/v1/tickets/{id}/messages",
            "/api/v1/tickets/{id}/read",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is not documented");
        }

        // Reading clears the unread count and the counter.
        assert_eq!(counts(s, &w.ana).await?["open"], 1);
        let read = expect_status!(
            s.post(
                &format!("/api/v1/tickets/{}/read", t("a_open")),
                &w.ana,
                json!({})
            )
            .await?,
            200
        );
        assert_eq!(read["unread"], 0);
        assert_eq!(counts(s, &w.ana).await?["open"], 0);
        // Twice is fine.
        expect_status!(
            s.post(
                &format!("/api/v1/tickets/{}/read", t("a_open")),
                &w.ana,
                json!({})
            )
            .await?,
            200
        );
        // A pending ticket's messages are not the agent's to mark read without spy.
        let refused = expect_status!(
            s.post(
                &format!("/api/v1/tickets/{}/read", t("p_q1")),
                &w.ana,
                json!({})
            )
            .await?,
            403
        );
        assert_eq!(refused["error"]["code"], "spy_disabled");
        server.stop().await?;
    }
    Ok(())
}

fn message(
    w: &World,
    ticket: i64,
    contact: ContactId,
    stamp: Option<i64>,
    minutes: i64,
    body: &str,
) -> NewMessage {
    NewMessage {
        ticket_id: TicketId(ticket),
        connection_id: w.connection,
        contact_id: contact,
        direction: MessageDirection::In,
        author: MessageAuthor::Contact,
        author_user_id: None,
        kind: MessageKind::Text,
        body: body.to_owned(),
        provider_id: None,
        quoted_id: None,
        status: MessageStatus::Delivered,
        failure_reason: None,
        idempotency_key: None,
        queue_stamp: stamp.map(QueueId),
        imported: false,
        sent_at: w.at(minutes),
    }
}

async fn chat(
    server: &TestServer,
    token: &str,
    ticket: i64,
) -> anyhow::Result<(Vec<String>, usize)> {
    let mut bodies = Vec::new();
    let mut before: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &before {
            Some(b) => format!("/api/v1/tickets/{ticket}/messages?before={b}"),
            None => format!("/api/v1/tickets/{ticket}/messages"),
        };
        let body = expect_status!(server.get(&path, token).await?, 200);
        pages += 1;
        for m in body["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
        {
            bodies.push(m["body"].as_str().unwrap_or_default().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => return Ok((bodies, pages)),
        }
        assert!(pages < 20);
    }
}

#[tokio::test]
async fn chat_pages_newest_first_with_history_stamps_and_spy() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let mut w = setup(&server).await?;
        let s = &server;
        let a_open = w.ticket("a_open");
        // João's earlier, closed ticket on the same connection: one message per queue stamp.
        let old = w.draft(w.joao, TicketStatus::Closed, -60);
        let old_id = w.insert(vec![("joao_old", old)]).await?[0];
        let joao = w.joao;
        // Every message of João's chats, for the single-message route below.
        let mut written = Vec::new();
        for (stamp, minutes, body) in [
            (Some(w.q2), -59, "old suporte"),
            (Some(w.q1), -58, "old vendas"),
            (None, -57, "old sem fila"),
        ] {
            let stored = messages::insert(
                &w.db,
                w.tenant,
                &message(&w, old_id, joao, stamp, minutes, body),
            )
            .await?;
            written.push((stored.id.0, body.to_owned()));
        }
        // The open ticket: 12 messages; one was written while it sat in Suporte (its own: shown).
        for n in 0..12 {
            let stamp = if n == 0 { Some(w.q2) } else { Some(w.q1) };
            let stored = messages::insert(
                &w.db,
                w.tenant,
                &message(&w, a_open, joao, stamp, n, &format!("m{n:02}")),
            )
            .await?;
            written.push((stored.id.0, format!("m{n:02}")));
        }
        // Equal sent_at: the id breaks the tie.
        messages::insert(
            &w.db,
            w.tenant,
            &message(&w, a_open, joao, Some(w.q1), 11, "m11b"),
        )
        .await?;
        setting(s, &w, "chat_messages_page_size", json!(10)).await?;

        let (bodies, pages) = chat(s, &w.ana, a_open).await?;
        let mut expected: Vec<String> = vec!["m11b".into(), "m11".into()];
        expected.extend((0..11).rev().map(|n| format!("m{n:02}")));
        expected.extend(["old sem fila".to_owned(), "old vendas".to_owned()]);
        assert_eq!(
            bodies, expected,
            "{}: newest first; history stamped with Suporte hidden from Ana",
            server.backend
        );
        assert_eq!(pages, 2);
        // One message at a time answers by the same rule as the page.
        for (id, body) in &written {
            let (status, _) = s
                .get(&format!("/api/v1/tickets/{a_open}/messages/{id}"), &w.ana)
                .await?;
            let on_page = bodies.contains(body);
            assert_eq!(
                status,
                if on_page { 200 } else { 404 },
                "{}: message {body}",
                server.backend
            );
        }
        let first = expect_status!(
            s.get(&format!("/api/v1/tickets/{a_open}/messages"), &w.ana)
                .await?,
            200
        );
        assert_eq!(first["history"], true);
        assert_eq!(first["messages"].as_array().map(Vec::len), Some(10));

        let (admin_bodies, _) = chat(s, &w.admin, a_open).await?;
        assert_eq!(admin_bodies.len(), 16, "admins see every stamp");
        assert!(admin_bodies.contains(&"old suporte".to_owned()));

        setting(s, &w, "show_message_history", json!(false)).await?;
        let (own, _) = chat(s, &w.ana, a_open).await?;
        assert_eq!(
            own.len(),
            13,
            "without history only the ticket's own messages"
        );
        setting(s, &w, "show_message_history", json!(true)).await?;

        // A pending ticket: agents read it only with spy; admins always.
        let p_q1 = w.ticket("p_q1");
        let contact = expect_status!(
            s.get(&format!("/api/v1/tickets/{p_q1}"), &w.admin).await?,
            200
        )["contact_id"]
            .as_i64()
            .unwrap_or_default();
        messages::insert(
            &w.db,
            w.tenant,
            &message(&w, p_q1, ContactId(contact), Some(w.q1), 6, "oi?"),
        )
        .await?;
        let refused = expect_status!(
            s.get(&format!("/api/v1/tickets/{p_q1}/messages"), &w.ana)
                .await?,
            403
        );
        assert_eq!(refused["error"]["code"], "spy_disabled");
        assert_eq!(chat(s, &w.admin, p_q1).await?.0, vec!["oi?".to_owned()]);
        setting(s, &w, "feature_controls", json!(["spy"])).await?;
        assert_eq!(chat(s, &w.ana, p_q1).await?.0, vec!["oi?".to_owned()]);
        // Reading does not clear unread; only POST …/read does.
        let listed = expect_status!(
            s.get(&format!("/api/v1/tickets/{p_q1}"), &w.ana).await?,
            200
        );
        assert_eq!(listed["unread"], 3);
        expect_status!(
            s.get(
                &format!("/api/v1/tickets/{a_open}/messages?before=bad"),
                &w.ana
            )
            .await?,
            422
        );
        let _ = (w.bruno_id, w.q2, &w.bruno);
        server.stop().await?;
    }
    Ok(())
}
