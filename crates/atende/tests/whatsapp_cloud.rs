//! WhatsApp Cloud API connections against the fake provider (`reference/channels.md` §2), on
//! SQLite and, with `TEST_DATABASE_URL`, on PostgreSQL: a reply goes out in the documented shape
//! and ends `sent` with the provider's id; Meta's refusals become the reasons and pauses of SPEC §7;
//! the webhook answers the subscription handshake, refuses unsigned deliveries, and applies
//! statuses.
//!
//! Templates (SPEC §7, reference §2.9): an admin syncs a connection's templates (the provider lists
//! them over two pages), agents list them, an approved one sent to a ticket reaches the provider
//! as a template request and ends `sent`, a repeated sync changes nothing, and templates the
//! provider dropped are deleted; other tenants see 404, other channel kinds 422. In the panel, the
//! chat of a WhatsApp Cloud API ticket offers the approved templates and sends one.

use atende_db::Db;
use atende_domain::{ConnectionId, ContactId, TenantId};
use atende_testkit::browser::{Browser, By};
use atende_testkit::fake_cloud::{self, APP_SECRET, FakeCloud, Fault, VERIFY_TOKEN, Webhook};
use atende_testkit::seed::{self, WrittenChat};
use atende_testkit::{ADMIN_PASSWORD, TestServer, expect_status};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Cloud {
    admin: String,
    connection: i64,
    db: Db,
    tenant: TenantId,
}

async fn cloud(server: &TestServer, fake: &FakeCloud) -> anyhow::Result<Cloud> {
    let admin = server.admin_token().await?;
    let connection = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "whatsapp_cloud", "name": "Oficial",
                    "credentials": fake.credentials(60_000)})
            )
            .await?,
        201
    )["id"]
        .as_i64()
        .unwrap_or_default();
    let db = Db::connect(&server.database_url).await?;
    let tenant = atende_db::tenants::platform_find_by_slug(&db, "default")
        .await?
        .map(|t| t.id)
        .ok_or_else(|| anyhow::anyhow!("no default tenant"))?;
    Ok(Cloud {
        admin,
        connection,
        db,
        tenant,
    })
}

/// An open ticket of a contact who wrote a moment ago (the 24 h window is open).
async fn ticket(server: &TestServer, cloud: &Cloud, phone: &str) -> anyhow::Result<i64> {
    let contact = expect_status!(
        server
            .post(
                "/api/v1/contacts",
                &cloud.admin,
                json!({"name": "Ana", "identities": [{"channel": "whatsapp_cloud", "external_id": phone}]})
            )
            .await?,
        201
    )["id"]
        .as_i64()
        .unwrap_or_default();
    let chat = WrittenChat::open(ContactId(contact), ConnectionId(cloud.connection));
    let ticket = seed::ticket_with_inbound(
        &cloud.db,
        cloud.tenant,
        &chat,
        &format!("wamid.IN{phone}"),
        "oi",
    )
    .await?;
    Ok(ticket.id.0)
}

async fn reply(server: &TestServer, cloud: &Cloud, ticket: i64, body: &str) -> anyhow::Result<i64> {
    let message = expect_status!(
        server
            .post(
                &format!("/api/v1/tickets/{ticket}/messages"),
                &cloud.admin,
                json!({ "body": body })
            )
            .await?,
        201
    );
    Ok(message["id"].as_i64().unwrap_or_default())
}

/// The message as the ticket's message list shows it, once `done` says so (or after 10 s).
async fn settled(
    server: &TestServer,
    cloud: &Cloud,
    ticket: i64,
    id: i64,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let (_, page) = server
            .get(&format!("/api/v1/tickets/{ticket}/messages"), &cloud.admin)
            .await?;
        let found = page["messages"]
            .as_array()
            .and_then(|list| list.iter().find(|m| m["id"].as_i64() == Some(id)))
            .cloned()
            .unwrap_or(Value::Null);
        if done(&found) || started.elapsed() > Duration::from_secs(10) {
            return Ok(found);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_reply_goes_out_in_the_documented_shape_and_keeps_the_wamid() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let fake = FakeCloud::start().await?;
        let cloud = cloud(&server, &fake).await?;
        let ticket = ticket(&server, &cloud, "+5511988887777").await?;
        let id = reply(&server, &cloud, ticket, "Olá, tudo bem?").await?;
        let message = settled(&server, &cloud, ticket, id, |m| m["status"] == "sent").await?;
        assert_eq!(message["status"], "sent", "{}: {message}", server.backend);
        let sends = fake.sends();
        assert_eq!(sends.len(), 1, "{}", server.backend);
        let sent = &sends[0];
        assert_eq!(sent.to, "5511988887777");
        assert_eq!(sent.body["messaging_product"], "whatsapp");
        assert_eq!(sent.body["type"], "text");
        assert!(
            sent.text
                .as_deref()
                .is_some_and(|t| t.ends_with("Olá, tudo bem?")),
            "{:?}",
            sent.text
        );
        let stored =
            atende_db::messages::get(&cloud.db, cloud.tenant, atende_domain::MessageId(id)).await?;
        assert_eq!(stored.provider_id.as_deref(), Some(sent.wamid.as_str()));
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_closed_window_answer_fails_the_message_with_the_window_reason() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let fake = FakeCloud::start().await?;
        let cloud = cloud(&server, &fake).await?;
        let ticket = ticket(&server, &cloud, "+5511977776666").await?;
        fake.push_faults([Fault::Error {
            status: 400,
            code: 131047,
            retry_after_secs: None,
        }]);
        let id = reply(&server, &cloud, ticket, "Ainda está aí?").await?;
        let message = settled(&server, &cloud, ticket, id, |m| m["status"] == "failed").await?;
        assert_eq!(message["status"], "failed", "{}: {message}", server.backend);
        let reason = message["failure_reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("the window is closed") && reason.contains("131047"),
            "{}: {reason}",
            server.backend
        );
        assert_eq!(fake.send_count(), 0, "refused, so nothing went out");
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_throughput_limit_pauses_the_connection_then_the_message_goes() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let fake = FakeCloud::start().await?;
        let cloud = cloud(&server, &fake).await?;
        let ticket = ticket(&server, &cloud, "+5511966665555").await?;
        fake.push_faults([Fault::Error {
            status: 400,
            code: 130429,
            retry_after_secs: Some(1),
        }]);
        let asked = Instant::now();
        let id = reply(&server, &cloud, ticket, "Um momento").await?;
        let message = settled(&server, &cloud, ticket, id, |m| m["status"] == "sent").await?;
        assert_eq!(message["status"], "sent", "{}: {message}", server.backend);
        assert!(
            asked.elapsed() >= Duration::from_millis(900),
            "the connection waited the second Meta asked for"
        );
        assert_eq!((fake.refused(), fake.send_count()), (1, 1));
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_webhook_answers_the_handshake_refuses_forgeries_and_applies_statuses()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let fake = FakeCloud::start().await?;
        let cloud = cloud(&server, &fake).await?;
        let path = format!("/webhooks/whatsapp-cloud/{}", cloud.connection);
        let created = expect_status!(
            server
                .get(
                    &format!("/api/v1/connections/{}", cloud.connection),
                    &cloud.admin
                )
                .await?,
            200
        );
        assert_eq!(
            created["status"], "disconnected",
            "nothing heard from Meta yet"
        );
        let handshake = server
            .http
            .get(server.url(&format!(
                "{path}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=8675309"
            )))
            .send()
            .await?;
        assert_eq!(handshake.status().as_u16(), 200);
        assert_eq!(handshake.text().await?, "8675309");
        let wrong = server
            .http
            .get(server.url(&format!(
                "{path}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"
            )))
            .send()
            .await?;
        assert_eq!(wrong.status().as_u16(), 403);
        let unknown = server
            .http
            .get(server.url(&format!(
                "/webhooks/whatsapp-cloud/{}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1",
                cloud.connection + 1000
            )))
            .send()
            .await?;
        assert_eq!(unknown.status().as_u16(), 404);
        let forged = server
            .http
            .post(server.url(&path))
            .header("x-hub-signature-256", "sha256=00")
            .body(r#"{"object":"whatsapp_business_account","entry":[]}"#)
            .send()
            .await?;
        assert_eq!(forged.status().as_u16(), 401);

        // The fake reports `sent`; a `read` for the same message moves it on.
        fake.set_webhook(Some(Webhook {
            url: server.url(&path),
            app_secret: APP_SECRET.to_owned(),
        }));
        let ticket = ticket(&server, &cloud, "+5511955554444").await?;
        let id = reply(&server, &cloud, ticket, "Pronto!").await?;
        settled(&server, &cloud, ticket, id, |m| m["status"] == "sent").await?;
        let started = Instant::now();
        while fake.statuses().0 == 0 && started.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            fake.statuses(),
            (1, 0),
            "{}: the webhook took the status",
            server.backend
        );
        let shown = expect_status!(
            server
                .get(
                    &format!("/api/v1/connections/{}", cloud.connection),
                    &cloud.admin
                )
                .await?,
            200
        );
        assert_eq!(
            shown["status"], "connected",
            "{}: an authentic delivery from Meta shows the connection is up",
            server.backend
        );
        let wamid = fake.sends()[0].wamid.clone();
        let read = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA",
            "changes": [{"field": "messages", "value": {"messaging_product": "whatsapp",
                "metadata": {"phone_number_id": atende_testkit::fake_cloud::PHONE_NUMBER_ID},
                "statuses": [{"id": wamid, "status": "read", "timestamp": "1750000000",
                    "recipient_id": "5511955554444"}]}}]}]})
        .to_string();
        let signature = format!(
            "sha256={}",
            atende_engine::inbound::channels::signing::hmac_sha256(
                APP_SECRET.as_bytes(),
                read.as_bytes()
            )
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
        );
        let answer = server
            .http
            .post(server.url(&path))
            .header("x-hub-signature-256", signature)
            .body(read)
            .send()
            .await?;
        assert_eq!(answer.status().as_u16(), 200);
        let message = settled(&server, &cloud, ticket, id, |m| m["status"] == "read").await?;
        assert_eq!(message["status"], "read", "{}: {message}", server.backend);
        server.stop().await?;
    }
    Ok(())
}

// ---- templates ----

/// Three templates: two pages of the fake's list (two a page).
fn provider_templates() -> Vec<Value> {
    vec![
        fake_cloud::template(
            "pedido_enviado",
            "pt_BR",
            "APPROVED",
            "UTILITY",
            "Olá {{1}}, seu pedido {{2}} saiu para entrega.",
        ),
        fake_cloud::template(
            "welcome",
            "en_US",
            "APPROVED",
            "MARKETING",
            "Welcome to our store!",
        ),
        fake_cloud::template(
            "promocao",
            "pt_BR",
            "PENDING",
            "MARKETING",
            "{{1}}, temos uma oferta para você.",
        ),
    ]
}

fn sync_path(connection: i64) -> String {
    format!("/api/v1/connections/{connection}/templates/sync")
}

fn list_path(connection: i64) -> String {
    format!("/api/v1/connections/{connection}/templates")
}

/// Syncs as the admin; the report.
async fn sync(server: &TestServer, cloud: &Cloud) -> anyhow::Result<Value> {
    Ok(expect_status!(
        server
            .post(&sync_path(cloud.connection), &cloud.admin, json!({}))
            .await?,
        200
    ))
}

fn report(inserted: usize, updated: usize, unchanged: usize, removed: usize) -> Value {
    json!({"listed": inserted + updated + unchanged, "inserted": inserted, "updated": updated,
        "unchanged": unchanged, "removed": removed})
}

/// `name/language` of each listed template, in the list's order.
fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|all| {
            all.iter()
                .map(|t| {
                    format!(
                        "{}/{}",
                        t["name"].as_str().unwrap_or_default(),
                        t["language"].as_str().unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn template_sync_follows_every_page_and_agents_list_what_it_stored() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let backend = server.backend;
        let fake = FakeCloud::start().await?;
        fake.set_templates(provider_templates());
        let cloud = cloud(&server, &fake).await?;

        assert_eq!(
            sync(&server, &cloud).await?,
            report(3, 0, 0, 0),
            "{backend}"
        );
        assert_eq!(fake.template_pages_served(), 2, "{backend}: both pages");

        // An agent (not an admin) lists them; they may not sync.
        expect_status!(
            server
                .post(
                    "/api/v1/users",
                    &cloud.admin,
                    json!({"email": "agente@t.test", "name": "Agente", "password": "agent-password-1",
                        "profile": "user"})
                )
                .await?,
            201
        );
        let agent = server.login("agente@t.test", "agent-password-1").await?;
        let list = expect_status!(server.get(&list_path(cloud.connection), &agent).await?, 200);
        assert_eq!(
            names(&list),
            ["pedido_enviado/pt_BR", "promocao/pt_BR", "welcome/en_US"],
            "{backend}"
        );
        let pedido = &list[0];
        assert_eq!(pedido["status"], "APPROVED", "{backend}");
        assert_eq!(pedido["category"], "UTILITY", "{backend}");
        assert_eq!(
            pedido["body"], "Olá {{1}}, seu pedido {{2}} saiu para entrega.",
            "{backend}"
        );
        assert_eq!(pedido["param_count"], 2, "{backend}");
        assert_eq!(pedido["approved"], true, "{backend}");
        assert_eq!(list[1]["approved"], false, "{backend}");
        assert_eq!(list[2]["param_count"], 0, "{backend}");
        let (status, refused) = server
            .post(&sync_path(cloud.connection), &agent, json!({}))
            .await?;
        assert_eq!(status, 403, "{backend}: {refused}");

        // The same answer again changes nothing: same rows, same ids, same times.
        assert_eq!(
            sync(&server, &cloud).await?,
            report(0, 0, 3, 0),
            "{backend}"
        );
        let relisted = expect_status!(
            server
                .get(&list_path(cloud.connection), &cloud.admin)
                .await?,
            200
        );
        assert_eq!(relisted, list, "{backend}");

        // The provider approves one and drops another: updated in place, and deleted here.
        let mut changed = provider_templates();
        changed[2]["status"] = json!("APPROVED");
        changed.remove(1);
        fake.set_templates(changed);
        assert_eq!(
            sync(&server, &cloud).await?,
            report(0, 1, 1, 1),
            "{backend}"
        );
        let last = expect_status!(
            server
                .get(&list_path(cloud.connection), &cloud.admin)
                .await?,
            200
        );
        assert_eq!(
            names(&last),
            ["pedido_enviado/pt_BR", "promocao/pt_BR"],
            "{backend}"
        );
        assert_eq!(last[1]["approved"], true, "{backend}");
        assert_eq!(last[1]["id"], list[1]["id"], "{backend}: updated in place");
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_synced_approved_template_reaches_the_provider_and_a_pending_one_is_refused()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let backend = server.backend;
        let fake = FakeCloud::start().await?;
        fake.set_templates(provider_templates());
        let cloud = cloud(&server, &fake).await?;
        sync(&server, &cloud).await?;
        let ticket = ticket(&server, &cloud, "+5511944443333").await?;
        let path = format!("/api/v1/tickets/{ticket}/messages/template");

        let queued = expect_status!(
            server
                .post(
                    &path,
                    &cloud.admin,
                    json!({"name": "pedido_enviado", "language": "pt_BR", "params": ["Ana", "#4521"]})
                )
                .await?,
            201
        );
        assert_eq!(queued["kind"], "template", "{backend}");
        assert_eq!(
            queued["body"], "Olá Ana, seu pedido #4521 saiu para entrega.",
            "{backend}"
        );
        let id = queued["id"].as_i64().unwrap_or_default();
        let message = settled(&server, &cloud, ticket, id, |m| m["status"] == "sent").await?;
        assert_eq!(message["status"], "sent", "{backend}: {message}");
        let sends = fake.sends();
        assert_eq!(sends.len(), 1, "{backend}");
        assert_eq!(sends[0].kind, "template", "{backend}");
        assert_eq!(
            sends[0].body["template"],
            json!({"name": "pedido_enviado", "language": {"code": "pt_BR"},
                "components": [{"type": "body", "parameters": [
                    {"type": "text", "text": "Ana"}, {"type": "text", "text": "#4521"}]}]}),
            "{backend}"
        );

        let (status, refused) = server
            .post(
                &path,
                &cloud.admin,
                json!({"name": "promocao", "language": "pt_BR", "params": ["Ana"]}),
            )
            .await?;
        assert_eq!(status, 422, "{backend}: {refused}");
        let words = refused["error"]["message"].as_str().unwrap_or_default();
        assert!(
            words.contains("not approved") && words.contains("PENDING"),
            "{backend}: {words}"
        );
        assert_eq!(fake.send_count(), 1, "{backend}: nothing more went out");
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn templates_of_other_tenants_are_404_and_of_other_channels_or_missing_settings_422()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let backend = server.backend;
        let fake = FakeCloud::start().await?;
        fake.set_templates(provider_templates());
        let cloud = cloud(&server, &fake).await?;
        let admin = &cloud.admin;

        let webchat = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    admin,
                    json!({"kind": "webchat", "name": "Site"})
                )
                .await?,
            201
        )["id"]
            .as_i64()
            .unwrap_or_default();
        for (status, body) in [
            server.post(&sync_path(webchat), admin, json!({})).await?,
            server.get(&list_path(webchat), admin).await?,
        ] {
            assert_eq!(status, 422, "{backend}: {body}");
            let words = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                words.contains("WhatsApp Cloud API connections only") && words.contains("webchat"),
                "{backend}: {words}"
            );
        }

        // Settings without the WABA id: the sync says what is missing.
        let mut credentials = fake.credentials(60_000);
        if let Some(object) = credentials.as_object_mut() {
            object.remove("waba_id");
        }
        let bare = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    admin,
                    json!({"kind": "whatsapp_cloud", "name": "Sem WABA", "credentials": credentials})
                )
                .await?,
            201
        )["id"]
            .as_i64()
            .unwrap_or_default();
        let (status, body) = server.post(&sync_path(bare), admin, json!({})).await?;
        assert_eq!(status, 422, "{backend}: {body}");
        assert_eq!(body["error"]["field"], "credentials.waba_id", "{backend}");

        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_atende"))
            .args([
                "tenant",
                "create",
                "--slug",
                "bravo",
                "--name",
                "Bravo",
                "--admin-email",
                "admin@b.test",
                "--admin-password",
                ADMIN_PASSWORD,
            ])
            .env("DATABASE_URL", &server.database_url)
            .env("ATENDE_DATA_DIR", &server.data_dir)
            .output()
            .await?;
        anyhow::ensure!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let other = server.login("admin@b.test", ADMIN_PASSWORD).await?;
        for (status, body) in [
            server
                .post(&sync_path(cloud.connection), &other, json!({}))
                .await?,
            server.get(&list_path(cloud.connection), &other).await?,
        ] {
            assert_eq!(status, 404, "{backend}: {body}");
        }
        assert_eq!(
            fake.template_pages_served(),
            0,
            "{backend}: nothing asked of the provider"
        );

        let document = expect_status!(server.get("/api/v1/openapi.json", admin).await?, 200);
        let paths = &document["paths"];
        assert!(
            paths["/api/v1/connections/{id}/templates/sync"]["post"].is_object()
                && paths["/api/v1/connections/{id}/templates"]["get"].is_object(),
            "{backend}: both template routes are documented"
        );
        server.stop().await?;
    }
    Ok(())
}

/// The chat's "Template" button in a real browser (SQLite only: the panel does not depend on
/// the store).
#[tokio::test]
async fn the_chat_of_a_cloud_ticket_sends_an_approved_template_with_its_parameters()
-> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let fake = FakeCloud::start().await?;
    fake.set_templates(provider_templates());
    let cloud = cloud(&server, &fake).await?;
    sync(&server, &cloud).await?;
    let ticket = ticket(&server, &cloud, "+5511933332222").await?;

    let browser = Browser::start(&server).await?;
    let outcome = async {
        browser.login_as_admin().await?;
        browser.goto(&format!("/?ticket={ticket}")).await?;
        browser
            .wait_for("#template-button:not([hidden])")
            .await?
            .click()
            .await?;
        // Only the approved templates are offered, the first one chosen.
        browser
            .wait_for_text("#template-select option", "pedido_enviado (pt_BR)")
            .await?;
        let offered = browser.texts("#template-select option").await?;
        assert_eq!(offered, ["pedido_enviado (pt_BR)", "welcome (en_US)"]);
        browser
            .wait_for_text("#template-preview", "Olá {{1}}, seu pedido {{2}}")
            .await?;
        browser.screenshot("attendance-template-dialog").await?;
        browser
            .wait_for("#template-params input[data-param='1']")
            .await?
            .send_keys("Ana")
            .await?;
        browser
            .driver
            .find(By::Css("#template-params input[data-param='2']"))
            .await?
            .send_keys("#4521")
            .await?;
        browser
            .driver
            .find(By::Id("template-submit"))
            .await?
            .click()
            .await?;
        browser
            .wait_for_text(
                ".msg-out .msg-body",
                "Olá Ana, seu pedido #4521 saiu para entrega.",
            )
            .await?;
        let started = Instant::now();
        while fake.send_count() == 0 && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let sends = fake.sends();
        assert_eq!(sends.len(), 1);
        assert_eq!(sends[0].body["template"]["name"], "pedido_enviado");
        anyhow::Ok(())
    }
    .await;
    browser.quit().await?;
    server.stop().await?;
    outcome
}

#[tokio::test]
async fn a_refused_token_fails_the_sync_clearly_and_shows_the_connection_in_error()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let backend = server.backend;
        let fake = FakeCloud::start().await?;
        fake.set_templates(provider_templates());
        let cloud = cloud(&server, &fake).await?;
        let mut revoked = fake.credentials(60_000);
        revoked["access_token"] = json!("revoked-token");
        let path = format!("/api/v1/connections/{}", cloud.connection);
        expect_status!(
            server
                .patch(&path, &cloud.admin, json!({"credentials": revoked}))
                .await?,
            200
        );
        let (status, body) = server
            .post(&sync_path(cloud.connection), &cloud.admin, json!({}))
            .await?;
        assert_eq!(status, 502, "{backend}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("refused the connection's credentials"),
            "{backend}: {message}"
        );
        assert_eq!(
            connection_status(&server, &cloud).await?,
            "error",
            "{backend}"
        );

        // The administrator puts a valid token back: the next call shows it works.
        expect_status!(
            server
                .patch(
                    &path,
                    &cloud.admin,
                    json!({"credentials": fake.credentials(60_000)})
                )
                .await?,
            200
        );
        expect_status!(
            server
                .post(&sync_path(cloud.connection), &cloud.admin, json!({}))
                .await?,
            200
        );
        assert_eq!(
            connection_status(&server, &cloud).await?,
            "connected",
            "{backend}"
        );
        server.stop().await?;
    }
    Ok(())
}

async fn connection_status(server: &TestServer, cloud: &Cloud) -> anyhow::Result<String> {
    let path = format!("/api/v1/connections/{}", cloud.connection);
    let shown = expect_status!(server.get(&path, &cloud.admin).await?, 200);
    Ok(shown["status"].as_str().unwrap_or_default().to_owned())
}
