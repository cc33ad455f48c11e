//! Ticket lifecycle commands over HTTP (SPEC §3, §13): each command's happy path and its refusals
//! (409 `invalid_state` with the reason), the settings that shape them (`keep_user_on_pending`,
//! `allow_pause`, `require_demand_on_close`, `force_close`), transfers, reopening, and the audit
//! entry and system note every transition writes. Tickets are created directly in the store.

use atende_db::Db;
use atende_db::contacts::NewContact;
use atende_db::tickets::NewTicket;
use atende_domain::{
    ChannelKind, ConnectionId, MessageAuthor, MessageKind, NameSource, QueueId, TenantId, TicketId,
    TicketStatus, UserId,
};
use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};

fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// One tenant with two queues, two agents (Ana in Suporte, Beto in Vendas), a demand and a
/// web-chat connection.
struct World<'a> {
    server: &'a TestServer,
    db: Db,
    tenant: TenantId,
    admin: String,
    ana: String,
    ana_id: i64,
    beto_id: i64,
    suporte: i64,
    vendas: i64,
    demand: i64,
    connection: ConnectionId,
    contacts: std::cell::Cell<u32>,
}

async fn world(server: &TestServer) -> anyhow::Result<World<'_>> {
    let admin = server.admin_token().await?;
    let me = expect_status!(server.get("/api/v1/auth/me", &admin).await?, 200);
    let tenant = TenantId(me["tenant_id"].as_i64().expect("the admin's tenant id"));
    let suporte = id(&expect_status!(
        server
            .post("/api/v1/queues", &admin, json!({"name": "Suporte"}))
            .await?,
        201
    ));
    let vendas = id(&expect_status!(
        server
            .post("/api/v1/queues", &admin, json!({"name": "Vendas"}))
            .await?,
        201
    ));
    let ana_id = id(&expect_status!(
        server
            .post(
                "/api/v1/users",
                &admin,
                json!({"email": "ana@default.test", "name": "Ana", "password": "agent-password-1", "profile": "user", "queue_ids": [suporte]})
            )
            .await?,
        201
    ));
    let beto_id = id(&expect_status!(
        server
            .post(
                "/api/v1/users",
                &admin,
                json!({"email": "beto@default.test", "name": "Beto", "password": "agent-password-1", "profile": "user", "queue_ids": [vendas]})
            )
            .await?,
        201
    ));
    let ana = server.login("ana@default.test", "agent-password-1").await?;
    let demand = id(&expect_status!(
        server
            .post("/api/v1/demands", &admin, json!({"name": "Dúvida"}))
            .await?,
        201
    ));
    let connection = id(&expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "webchat", "name": "Site", "default_queue_id": suporte})
            )
            .await?,
        201
    ));
    let db = Db::connect(&server.database_url).await?;
    Ok(World {
        server,
        db,
        tenant,
        admin,
        ana,
        ana_id,
        beto_id,
        suporte,
        vendas,
        demand,
        connection: ConnectionId(connection),
        contacts: std::cell::Cell::new(0),
    })
}

impl World<'_> {
    /// Closes the store connection so the server can be stopped.
    async fn done(self) {
        self.db.close().await;
    }

    /// A ticket of a new contact, straight in the store.
    async fn ticket(
        &self,
        status: TicketStatus,
        owner: Option<i64>,
        queue: i64,
    ) -> anyhow::Result<i64> {
        let n = self.contacts.get() + 1;
        self.contacts.set(n);
        let contact = atende_db::contacts::create(
            &self.db,
            self.tenant,
            &NewContact {
                name: format!("Cliente {n}"),
                name_source: NameSource::Manual,
                phone: None,
                email: None,
                avatar_url: None,
                blocked: false,
                is_group: false,
                custom_fields: json!({}),
                identities: vec![(ChannelKind::Webchat, format!("visitor-{n}"))],
                wallet_user_ids: vec![],
                tag_ids: vec![],
            },
        )
        .await?;
        let ticket = atende_db::tickets::create(
            &self.db,
            self.tenant,
            &NewTicket {
                contact_id: contact.id,
                connection_id: self.connection,
                status,
                owner_id: owner.map(UserId),
                queue_id: Some(QueueId(queue)),
                is_group: false,
            },
        )
        .await?;
        Ok(ticket.id.0)
    }

    async fn command(
        &self,
        token: &str,
        ticket: i64,
        command: &str,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        self.server
            .post(&format!("/api/v1/tickets/{ticket}/{command}"), token, body)
            .await
    }

    async fn set(&self, key: &str, value: Value) -> anyhow::Result<()> {
        expect_status!(
            self.server
                .put(
                    &format!("/api/v1/settings/{key}"),
                    &self.admin,
                    json!({"value": value})
                )
                .await?,
            200
        );
        Ok(())
    }

    /// The system notes of a ticket, oldest first.
    async fn notes(&self, ticket: i64) -> anyhow::Result<Vec<String>> {
        let mut messages = atende_db::messages::list_for_ticket(
            &self.db,
            self.tenant,
            TicketId(ticket),
            None,
            500,
        )
        .await?;
        messages.reverse();
        Ok(messages
            .into_iter()
            .filter(|m| m.kind == MessageKind::SystemNote && m.author == MessageAuthor::System)
            .map(|m| m.body)
            .collect())
    }

    /// The audit actions about a ticket, oldest first.
    async fn audit(&self, ticket: i64) -> anyhow::Result<Vec<String>> {
        let entries = expect_status!(
            self.server
                .get("/api/v1/audit?limit=200", &self.admin)
                .await?,
            200
        );
        let mut actions: Vec<String> = entries
            .as_array()
            .expect("a list")
            .iter()
            .filter(|e| {
                e["entity"] == "ticket"
                    && e["entity_id"].as_str() == Some(ticket.to_string().as_str())
            })
            .map(|e| e["action"].as_str().unwrap_or_default().to_owned())
            .collect();
        actions.reverse();
        Ok(actions)
    }
}

fn invalid_state(body: &Value) -> &str {
    assert_eq!(body["error"]["code"], "invalid_state", "{body}");
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn accept_opens_a_pending_ticket_for_the_agent_and_refuses_anything_else()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        let ticket = w.ticket(TicketStatus::Pending, None, w.suporte).await?;
        let body = expect_status!(w.command(&w.ana, ticket, "accept", json!({})).await?, 200);
        assert_eq!(
            (body["status"].as_str(), body["owner_id"].as_i64()),
            (Some("open"), Some(w.ana_id)),
            "{}",
            server.backend
        );
        assert_eq!(body["unread"], 0);
        let again = expect_status!(w.command(&w.ana, ticket, "accept", json!({})).await?, 409);
        assert_eq!(
            invalid_state(&again),
            "only a pending ticket can be accepted (this one is open)"
        );
        assert_eq!(w.notes(ticket).await?, vec!["Atendimento aceito por Ana."]);
        assert_eq!(w.audit(ticket).await?, vec!["ticket.accept"]);
        w.done().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_ticket_the_caller_cannot_see_is_404() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        // Ana is not in Vendas: the ticket is outside her queues.
        let hidden = w.ticket(TicketStatus::Pending, None, w.vendas).await?;
        expect_status!(w.command(&w.ana, hidden, "accept", json!({})).await?, 404);
        expect_status!(w.command(&w.ana, 999_999, "accept", json!({})).await?, 404);
        assert_eq!(
            w.audit(hidden).await?,
            Vec::<String>::new(),
            "{}: nothing changed",
            server.backend
        );
        w.done().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn return_clears_the_owner_unless_keep_user_on_pending() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        let ticket = w
            .ticket(TicketStatus::Open, Some(w.ana_id), w.suporte)
            .await?;
        let body = expect_status!(w.command(&w.ana, ticket, "return", json!({})).await?, 200);
        assert_eq!(
            (body["status"].as_str(), body["owner_id"].as_i64()),
            (Some("pending"), None),
            "{}",
            server.backend
        );
        let again = expect_status!(w.command(&w.ana, ticket, "return", json!({})).await?, 409);
        assert!(invalid_state(&again).starts_with("only an open ticket can be returned"));

        w.set("keep_user_on_pending", json!(true)).await?;
        let kept = w
            .ticket(TicketStatus::Open, Some(w.ana_id), w.suporte)
            .await?;
        let body = expect_status!(w.command(&w.ana, kept, "return", json!({})).await?, 200);
        assert_eq!(
            (body["status"].as_str(), body["owner_id"].as_i64()),
            (Some("pending"), Some(w.ana_id))
        );
        assert_eq!(
            w.notes(kept).await?,
            vec!["Ana devolveu o atendimento para a fila. Aguardando Ana."]
        );
        w.done().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn transfer_to_a_user_keeps_the_status_and_to_a_queue_makes_it_pending() -> anyhow::Result<()>
{
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        let ticket = w
            .ticket(TicketStatus::Open, Some(w.ana_id), w.suporte)
            .await?;
        let body = expect_status!(
            w.command(
                &w.ana,
                ticket,
                "transfer",
                json!({"user_id": w.beto_id, "note": "cliente VIP"})
            )
            .await?,
            200
        );
        assert_eq!(
            (body["status"].as_str(), body["owner_id"].as_i64()),
            (Some("open"), Some(w.beto_id)),
            "{}",
            server.backend
        );
        assert_eq!(body["queue_id"].as_i64(), Some(w.suporte));
        assert_eq!(
            w.notes(ticket).await?,
            vec!["Ana transferiu o atendimento para Beto. Observação: cliente VIP"]
        );

        let other = w
            .ticket(TicketStatus::Open, Some(w.ana_id), w.suporte)
            .await?;
        let body = expect_status!(
            w.command(&w.ana, other, "transfer", json!({"queue_id": w.vendas}))
                .await?,
            200
        );
        assert_eq!(
            (body["status"].as_str(), body["owner_id"].as_i64()),
            (Some("pending"), None)
        );
        assert_eq!(body["queue_id"].as_i64(), Some(w.vendas));
        assert_eq!(w.audit(other).await?, vec!["ticket.transfer"]);
        w.done().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn transfer_needs_a_target_in_the_tenant() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        let ticket = w
            .ticket(TicketStatus::Open, Some(w.ana_id), w.suporte)
            .await?;
        let body = expect_status!(
            w.command(&w.ana, ticket, "transfer", json!({"note": "?"}))
                .await?,
            422
        );
        assert_eq!(body["error"]["field"], "queue_id", "{}", server.backend);
        let body = expect_status!(
            w.command(&w.ana, ticket, "transfer", json!({"queue_id": 999_999}))
                .await?,
            404
        );
        assert_eq!(body["error"]["field"], "queue_id");
        let body = expect_status!(
            w.command(&w.ana, ticket, "transfer", json!({"user_id": 999_999}))
                .await?,
            404
        );
        assert_eq!(body["error"]["field"], "user_id");
        let body = expect_status!(
            w.command(&w.ana, ticket, "transfer", json!({"queue": 1}))
                .await?,
            422
        );
        assert_eq!(body["error"]["field"], "queue");
        let body = expect_status!(
            w.command(&w.ana, ticket, "transfer", json!({"queue_id": w.suporte}))
                .await?,
            200
        );
        assert_eq!(body["status"], "pending");
        let closed = w.ticket(TicketStatus::Closed, None, w.suporte).await?;
        let body = expect_status!(
            w.command(&w.admin, closed, "transfer", json!({"queue_id": w.vendas}))
                .await?,
            409
        );
        assert_eq!(
            invalid_state(&body),
            "a closed ticket cannot be transferred; reopen it first"
        );
        w.done().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn pause_needs_allow_pause_and_resume_reopens_the_work() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        let ticket = w
            .ticket(TicketStatus::Open, Some(w.ana_id), w.suporte)
            .await?;
        let body = expect_status!(
            w.command(&w.ana, ticket, "pause", json!({"reason": "almoço"}))
                .await?,
            409
        );
        assert_eq!(
            invalid_state(&body),
            "pausing is disabled (allow_pause)",
            "{}",
            server.backend
        );
        w.set("allow_pause", json!(true)).await?;
        let body = expect_status!(
            w.command(&w.ana, ticket, "pause", json!({"reason": "almoço"}))
                .await?,
            200
        );
        assert_eq!(
            (body["status"].as_str(), body["pause_reason"].as_str()),
            (Some("paused"), Some("almoço"))
        );
        let body = expect_status!(w.command(&w.ana, ticket, "pause", json!({})).await?, 409);
        assert!(invalid_state(&body).starts_with("only an open ticket can be paused"));
        let body = expect_status!(w.command(&w.ana, ticket, "resume", json!({})).await?, 200);
        assert_eq!(
            (body["status"].as_str(), body["pause_reason"].as_str()),
            (Some("open"), None)
        );
        let body = expect_status!(w.command(&w.ana, ticket, "resume", json!({})).await?, 409);
        assert!(invalid_state(&body).starts_with("only a paused ticket can be resumed"));
        assert_eq!(
            w.audit(ticket).await?,
            vec!["ticket.pause", "ticket.resume"]
        );
        w.done().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn close_requires_a_demand_with_require_demand_on_close() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        w.set("require_demand_on_close", json!(true)).await?;
        let ticket = w
            .ticket(TicketStatus::Open, Some(w.ana_id), w.suporte)
            .await?;
        let body = expect_status!(w.command(&w.ana, ticket, "close", json!({})).await?, 409);
        assert_eq!(
            invalid_state(&body),
            "a demand is required to close (require_demand_on_close)",
            "{}",
            server.backend
        );
        let body = expect_status!(
            w.command(&w.ana, ticket, "close", json!({"demand_id": 999_999}))
                .await?,
            404
        );
        assert_eq!(body["error"]["field"], "demand_id");
        let body = expect_status!(
            w.command(
                &w.ana,
                ticket,
                "close",
                json!({"demand_id": w.demand, "note": "resolvido"})
            )
            .await?,
            200
        );
        assert_eq!(body["status"], "closed");
        assert!(body["closed_at"].as_i64().is_some());
        let cycles = atende_db::tickets::cycles(&w.db, w.tenant, TicketId(ticket)).await?;
        let cycle = cycles.last().expect("a cycle");
        assert_eq!(cycle.demand_id.map(|d| d.0), Some(w.demand));
        assert_eq!(cycle.closing_note.as_deref(), Some("resolvido"));
        assert_eq!(cycle.closed_by.map(|u| u.0), Some(w.ana_id));
        assert_eq!(
            w.notes(ticket).await?,
            vec!["Ana encerrou o atendimento. Demanda: Dúvida. Observação: resolvido"]
        );
        let body = expect_status!(
            w.command(&w.ana, ticket, "close", json!({"demand_id": w.demand}))
                .await?,
            409
        );
        assert_eq!(invalid_state(&body), "the ticket is already closed");
        w.done().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_user_closes_a_pending_ticket_without_accepting_only_with_force_close()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        let ticket = w.ticket(TicketStatus::Pending, None, w.suporte).await?;
        let body = expect_status!(w.command(&w.ana, ticket, "close", json!({})).await?, 409);
        assert!(
            invalid_state(&body).contains("force_close"),
            "{}",
            server.backend
        );
        w.set("feature_controls", json!(["force_close"])).await?;
        let body = expect_status!(w.command(&w.ana, ticket, "close", json!({})).await?, 200);
        assert_eq!(body["status"], "closed");
        // Someone else's open ticket stays theirs to close.
        let beto = w
            .ticket(TicketStatus::Open, Some(w.beto_id), w.suporte)
            .await?;
        expect_status!(w.command(&w.ana, beto, "close", json!({})).await?, 403);
        expect_status!(w.command(&w.admin, beto, "close", json!({})).await?, 200);
        w.done().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn reopen_starts_a_new_cycle_unless_another_ticket_of_the_contact_is_open()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        let ticket = w
            .ticket(TicketStatus::Open, Some(w.ana_id), w.suporte)
            .await?;
        let body = expect_status!(w.command(&w.ana, ticket, "reopen", json!({})).await?, 409);
        assert!(
            invalid_state(&body).starts_with("only a closed ticket can be reopened"),
            "{}",
            server.backend
        );
        expect_status!(w.command(&w.ana, ticket, "close", json!({})).await?, 200);
        let body = expect_status!(w.command(&w.ana, ticket, "reopen", json!({})).await?, 200);
        assert_eq!(
            (body["status"].as_str(), body["owner_id"].as_i64()),
            (Some("open"), Some(w.ana_id))
        );
        assert!(body["closed_at"].is_null());
        let cycles = atende_db::tickets::cycles(&w.db, w.tenant, TicketId(ticket)).await?;
        assert_eq!(cycles.len(), 2, "a new cycle");
        assert!(
            cycles[0].closed_at.is_some()
                && cycles[1].closed_at.is_none()
                && cycles[1].accepted_at.is_some()
        );

        // Closed again, and a new ticket of the same contact and connection is open meanwhile.
        expect_status!(w.command(&w.ana, ticket, "close", json!({})).await?, 200);
        let stored = atende_db::tickets::get(&w.db, w.tenant, TicketId(ticket)).await?;
        let newer = atende_db::tickets::create(
            &w.db,
            w.tenant,
            &NewTicket {
                contact_id: stored.contact_id,
                connection_id: stored.connection_id,
                status: TicketStatus::Pending,
                owner_id: None,
                queue_id: Some(QueueId(w.suporte)),
                is_group: false,
            },
        )
        .await?;
        let body = expect_status!(w.command(&w.ana, ticket, "reopen", json!({})).await?, 409);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&newer.id.to_string()) && message.contains("already has"),
            "{body}"
        );
        assert_eq!(
            atende_db::tickets::get(&w.db, w.tenant, TicketId(ticket))
                .await?
                .status,
            TicketStatus::Closed
        );
        w.done().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn every_transition_writes_an_audit_entry_and_a_system_note() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        w.set("allow_pause", json!(true)).await?;
        let ticket = w.ticket(TicketStatus::Pending, None, w.suporte).await?;
        // After the transfer the ticket is in Vendas, outside Ana's queues: the admin goes on.
        let steps: [(&str, &str, Value); 8] = [
            ("ana", "accept", json!({})),
            ("ana", "pause", json!({"reason": "café"})),
            ("ana", "resume", json!({})),
            (
                "ana",
                "transfer",
                json!({"queue_id": w.vendas, "user_id": w.ana_id}),
            ),
            ("ana", "return", json!({})),
            ("admin", "accept", json!({})),
            ("admin", "close", json!({"demand_id": w.demand})),
            ("admin", "reopen", json!({})),
        ];
        for (who, command, body) in &steps {
            let token = if *who == "ana" { &w.ana } else { &w.admin };
            expect_status!(w.command(token, ticket, command, body.clone()).await?, 200);
        }
        let expected: Vec<String> = steps
            .iter()
            .map(|(_, c, _)| format!("ticket.{c}"))
            .collect();
        assert_eq!(w.audit(ticket).await?, expected, "{}", server.backend);
        let notes = w.notes(ticket).await?;
        assert_eq!(notes.len(), steps.len(), "{notes:?}");
        assert_eq!(notes[1], "Ana pausou o atendimento. Motivo: café");
        assert_eq!(
            notes[3],
            "Ana transferiu o atendimento para Ana na fila Vendas."
        );
        let entries = expect_status!(w.server.get("/api/v1/audit?limit=1", &w.admin).await?, 200);
        assert_eq!(
            entries[0]["ip"], "127.0.0.1",
            "the audit keeps where it came from"
        );
        assert_eq!(entries[0]["detail"]["to"]["status"], "open");
        w.done().await;
        server.stop().await?;
    }
    Ok(())
}
