//! The WhatsApp Business 24 h window over real HTTP (SPEC §7), on SQLite and, with
//! `TEST_DATABASE_URL`, on PostgreSQL. A `whatsapp_cloud` connection is made through the API; the
//! contact's messages are written through the store's ingest with chosen provider times (no
//! Cloud API webhook is involved), and templates are stored as the provider sync would.
//!
//! Inside the window free-form replies are queued; outside it they are refused with 422
//! `window_closed`, unless `waba_send_outside_window` is on and a template went out in this cycle.
//! A template is always accepted. Automatic messages outside the window fail with the reason.

use atende_db::Db;
use atende_db::ingest::{
    self, ContactUpsert, IngestInput, IngestMessage, IngestOutcome, NewTicketRoute,
};
use atende_db::templates::{self, NewTemplate};
use atende_domain::delivery::WINDOW_CLOSED;
use atende_domain::{
    ChannelKind, ConnectionId, MessageAuthor, MessageDirection, MessageKind, MessageStatus,
    TenantId, Ticket, TicketStatus, Timestamp,
};
use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};
use std::time::Duration;

const HOUR_MS: i64 = 60 * 60 * 1000;

struct Waba {
    admin: String,
    db: Db,
    tenant: TenantId,
    connection: ConnectionId,
}

/// A WhatsApp Cloud API connection made through the API, with the approved template `pedido`
/// (`Olá {{1}}, seu pedido {{2}} saiu.`) synced for it.
async fn waba(server: &TestServer) -> anyhow::Result<Waba> {
    let admin = server.admin_token().await?;
    let connection = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "whatsapp_cloud", "name": "WABA"})
            )
            .await?,
        201
    );
    let connection = ConnectionId(connection["id"].as_i64().unwrap_or_default());
    let db = Db::connect(&server.database_url).await?;
    let tenant = atende_db::tenants::platform_find_by_slug(&db, "default")
        .await?
        .map(|t| t.id)
        .ok_or_else(|| anyhow::anyhow!("no default tenant"))?;
    for (name, status) in [("pedido", "APPROVED"), ("rascunho", "PENDING")] {
        templates::upsert(
            &db,
            tenant,
            &NewTemplate {
                connection_id: connection,
                name: name.into(),
                language: "pt_BR".into(),
                category: "UTILITY".into(),
                status: status.into(),
                components: json!([
                    {"type": "HEADER", "format": "TEXT", "text": "Loja"},
                    {"type": "BODY", "text": "Olá {{1}}, seu pedido {{2}} saiu."}
                ]),
            },
        )
        .await?;
    }
    Ok(Waba {
        admin,
        db,
        tenant,
        connection,
    })
}

impl Waba {
    /// A message of the contact `phone` that the provider stamped `hours_ago` hours ago: it
    /// opens (or starts) the contact's ticket on the connection.
    async fn inbound(&self, phone: &str, hours_ago: i64) -> anyhow::Result<Ticket> {
        let upsert = ContactUpsert {
            channel: ChannelKind::WhatsappCloud,
            external_id: phone,
            push_name: Some("Cliente"),
            phone: None,
            is_group: false,
            push_name_renames: true,
        };
        let found =
            ingest::find_contact(&self.db, self.tenant, ChannelKind::WhatsappCloud, phone).await?;
        let contact = ingest::upsert_contact(&self.db, self.tenant, &upsert, found)
            .await?
            .contact;
        let now = Timestamp::now();
        let input = IngestInput {
            contact_id: contact.id,
            connection_id: self.connection,
            is_group: false,
            reopen_window_minutes: 0,
            route: Some(NewTicketRoute {
                status: TicketStatus::Pending,
                owner_id: None,
                queue_id: None,
                bot_flow: None,
                wallet_overflowed: false,
            }),
            message: IngestMessage {
                direction: MessageDirection::In,
                author: MessageAuthor::Contact,
                kind: MessageKind::Text,
                body: "Oi, tudo bem?".into(),
                media: None,
                provider_id: Some(format!("wamid.{phone}.{}", now.0)),
                quoted_provider_id: None,
                status: MessageStatus::Delivered,
                sent_at: now.plus_millis(-hours_ago * HOUR_MS),
            },
            inbound_event: None,
            now,
        };
        // This test writes through its own store handle while the server writes through its
        // own: on SQLite a deferred transaction of the second writer can meet a newer snapshot
        // (SQLITE_BUSY_SNAPSHOT, "database is locked"), which waiting does not cure; the whole
        // write is tried again, as any second client of the file would.
        let mut tries = 0;
        let outcome = loop {
            match ingest::ingest(&self.db, self.tenant, &input).await {
                Err(error) if tries < 20 && error.to_string().contains("database is locked") => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                other => break other?,
            }
        };
        match outcome {
            IngestOutcome::Stored(stored) => Ok(stored.ticket),
            other => anyhow::bail!("the inbound message was not stored: {other:?}"),
        }
    }

    async fn reply(
        &self,
        server: &TestServer,
        ticket: &Ticket,
        body: &str,
    ) -> anyhow::Result<(u16, Value)> {
        server
            .post(
                &format!("/api/v1/tickets/{}/messages", ticket.id.0),
                &self.admin,
                json!({ "body": body }),
            )
            .await
    }

    async fn template(
        &self,
        server: &TestServer,
        ticket: &Ticket,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        server
            .post(
                &format!("/api/v1/tickets/{}/messages/template", ticket.id.0),
                &self.admin,
                body,
            )
            .await
    }

    async fn send_outside_window(&self, server: &TestServer, on: bool) -> anyhow::Result<()> {
        expect_status!(
            server
                .put(
                    "/api/v1/settings/waba_send_outside_window",
                    &self.admin,
                    json!({ "value": on })
                )
                .await?,
            200
        );
        Ok(())
    }

    async fn messages(&self, server: &TestServer, ticket: &Ticket) -> anyhow::Result<Vec<Value>> {
        let path = format!("/api/v1/tickets/{}/messages", ticket.id.0);
        let page = expect_status!(server.get(&path, &self.admin).await?, 200);
        Ok(page["messages"].as_array().cloned().unwrap_or_default())
    }
}

fn pedido() -> Value {
    json!({"name": "pedido", "language": "pt_BR", "params": ["Ana", "#42"]})
}

fn assert_window_closed(answer: &(u16, Value), backend: &str) {
    assert_eq!(answer.0, 422, "{backend}: {}", answer.1);
    assert_eq!(answer.1["error"]["code"], "window_closed", "{backend}");
    assert_eq!(answer.1["error"]["message"], WINDOW_CLOSED, "{backend}");
}

#[tokio::test]
async fn free_form_replies_are_queued_inside_the_window_and_refused_outside_it()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = waba(&server).await?;
        let recent = w.inbound("5511900000001", 1).await?;
        let queued = expect_status!(w.reply(&server, &recent, "Claro, já vejo").await?, 201);
        assert_eq!(queued["status"], "queued", "{}", server.backend);

        let old = w.inbound("5511900000002", 25).await?;
        let before = w.messages(&server, &old).await?.len();
        let refused = w.reply(&server, &old, "Ainda precisa de ajuda?").await?;
        assert_window_closed(&refused, server.backend);
        assert_eq!(
            w.messages(&server, &old).await?.len(),
            before,
            "{}: a refused reply is not stored",
            server.backend
        );

        // The contact writes again: the window is open again.
        w.inbound("5511900000002", 0).await?;
        expect_status!(w.reply(&server, &old, "Agora sim").await?, 201);
    }
    Ok(())
}

#[tokio::test]
async fn a_template_is_always_accepted_and_shows_its_filled_in_text() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = waba(&server).await?;
        let old = w.inbound("5511900000003", 30).await?;
        let mut body = pedido();
        body["idempotency_key"] = json!("tpl-1");
        let sent = expect_status!(w.template(&server, &old, body.clone()).await?, 201);
        assert_eq!(sent["kind"], "template", "{}", server.backend);
        assert_eq!(sent["status"], "queued");
        assert_eq!(sent["body"], "Olá Ana, seu pedido #42 saiu.");
        let again = expect_status!(w.template(&server, &old, body).await?, 200);
        assert_eq!(
            again["id"], sent["id"],
            "{}: same key, same message",
            server.backend
        );

        // The setting is off: the template alone does not let free-form through.
        assert_window_closed(&w.reply(&server, &old, "Oi").await?, server.backend);

        let document = expect_status!(server.get("/api/v1/openapi.json", &w.admin).await?, 200);
        assert!(
            document["paths"]["/api/v1/tickets/{id}/messages/template"]["post"].is_object(),
            "the template endpoint is documented"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_template_must_be_synced_approved_and_given_its_parameters() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = waba(&server).await?;
        let ticket = w.inbound("5511900000004", 1).await?;
        // (request, the field named in the 422)
        let refused = [
            (json!({"name": "nenhum", "language": "pt_BR"}), "name"),
            (
                json!({"name": "pedido", "language": "en_US", "params": ["Ana", "#42"]}),
                "name",
            ),
            (
                json!({"name": "rascunho", "language": "pt_BR", "params": ["Ana", "#42"]}),
                "name",
            ),
            (
                json!({"name": "pedido", "language": "pt_BR", "params": ["Ana"]}),
                "params",
            ),
            (
                json!({"name": "pedido", "language": "pt_BR", "params": ["Ana", "  "]}),
                "params",
            ),
        ];
        for (body, field) in refused {
            let (status, answer) = w.template(&server, &ticket, body.clone()).await?;
            assert_eq!(status, 422, "{}: {body} → {answer}", server.backend);
            assert_eq!(
                answer["error"]["field"], field,
                "{}: {body}",
                server.backend
            );
        }
    }
    Ok(())
}

#[tokio::test]
async fn templates_go_only_on_whatsapp_cloud_connections() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = waba(&server).await?;
        let site = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &w.admin,
                    json!({"kind": "webchat", "name": "Site"})
                )
                .await?,
            201
        );
        let site = ConnectionId(site["id"].as_i64().unwrap_or_default());
        let visitor = Waba {
            admin: w.admin.clone(),
            db: w.db.clone(),
            tenant: w.tenant,
            connection: site,
        };
        // No window on other channels: a free-form reply goes however old the chat is.
        let ticket = visitor.inbound("visitor-1", 48).await?;
        expect_status!(visitor.reply(&server, &ticket, "Olá!").await?, 201);
        let answer = visitor.template(&server, &ticket, pedido()).await?;
        assert_eq!(answer.0, 409, "{}: {}", server.backend, answer.1);
    }
    Ok(())
}

#[tokio::test]
async fn outside_the_window_the_setting_lets_free_form_through_only_after_a_template_in_this_cycle()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = waba(&server).await?;
        w.send_outside_window(&server, true).await?;
        let old = w.inbound("5511900000005", 26).await?;
        assert_window_closed(
            &w.reply(&server, &old, "Sem template ainda").await?,
            server.backend,
        );

        expect_status!(w.template(&server, &old, pedido()).await?, 201);
        let queued = expect_status!(w.reply(&server, &old, "Depois do template").await?, 201);
        assert_eq!(
            queued["status"], "queued",
            "{}: attempted; the provider's refusal would come back as failed",
            server.backend
        );

        // The setting off again: the window rule is back in force.
        w.send_outside_window(&server, false).await?;
        assert_window_closed(&w.reply(&server, &old, "Fora").await?, server.backend);
    }
    Ok(())
}

#[tokio::test]
async fn a_new_cycle_needs_a_new_template() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = waba(&server).await?;
        w.send_outside_window(&server, true).await?;
        let old = w.inbound("5511900000006", 26).await?;
        expect_status!(w.template(&server, &old, pedido()).await?, 201);
        expect_status!(w.reply(&server, &old, "Neste ciclo").await?, 201);

        let id = old.id.0;
        expect_status!(
            server
                .post(&format!("/api/v1/tickets/{id}/close"), &w.admin, json!({}))
                .await?,
            200
        );
        expect_status!(
            server
                .post(&format!("/api/v1/tickets/{id}/reopen"), &w.admin, json!({}))
                .await?,
            200
        );
        assert_window_closed(&w.reply(&server, &old, "Novo ciclo").await?, server.backend);
        expect_status!(w.template(&server, &old, pedido()).await?, 201);
        expect_status!(w.reply(&server, &old, "Com novo template").await?, 201);
    }
    Ok(())
}

#[tokio::test]
async fn an_automatic_message_outside_the_window_fails_with_the_reason() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = waba(&server).await?;
        let old = w.inbound("5511900000007", 25).await?;
        let id = atende_db::lifecycle::queue_absence_message(
            &w.db,
            w.tenant,
            old.id,
            "Estamos fora do horário",
            1,
            Timestamp::now(),
        )
        .await?
        .ok_or_else(|| anyhow::anyhow!("the absence message was not queued"))?;
        let mut last = Value::Null;
        for _ in 0..250 {
            last = w
                .messages(&server, &old)
                .await?
                .into_iter()
                .find(|m| m["id"].as_i64() == Some(id.0))
                .unwrap_or(Value::Null);
            if last["status"] == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(last["status"], "failed", "{}: {last}", server.backend);
        assert_eq!(last["failure_reason"], WINDOW_CLOSED, "{}", server.backend);
    }
    Ok(())
}
