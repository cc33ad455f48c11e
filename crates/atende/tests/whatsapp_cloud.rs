//! WhatsApp Cloud API connections against the fake provider (`reference/channels.md` §2), on
//! SQLite and, with `TEST_DATABASE_URL`, on PostgreSQL: a reply goes out in the documented shape
//! and ends `sent` with the provider's id; Meta's refusals become the reasons and pauses of SPEC §7;
//! the webhook answers the subscription handshake, refuses unsigned deliveries, and applies
//! statuses.

use atende_db::Db;
use atende_domain::{
    ConnectionId, ContactId, MessageAuthor, MessageDirection, MessageKind, MessageStatus, TenantId,
    TicketStatus, Timestamp,
};
use atende_testkit::fake_cloud::{APP_SECRET, FakeCloud, Fault, VERIFY_TOKEN, Webhook};
use atende_testkit::{TestServer, expect_status};
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
    let ticket = atende_db::tickets::create(
        &cloud.db,
        cloud.tenant,
        &atende_db::tickets::NewTicket {
            contact_id: ContactId(contact),
            connection_id: ConnectionId(cloud.connection),
            status: TicketStatus::Open,
            owner_id: None,
            queue_id: None,
            is_group: false,
        },
    )
    .await?;
    atende_db::messages::insert(
        &cloud.db,
        cloud.tenant,
        &atende_db::messages::NewMessage {
            ticket_id: ticket.id,
            connection_id: ConnectionId(cloud.connection),
            contact_id: ContactId(contact),
            direction: MessageDirection::In,
            author: MessageAuthor::Contact,
            author_user_id: None,
            kind: MessageKind::Text,
            body: "oi".into(),
            provider_id: Some(format!("wamid.IN{phone}")),
            quoted_id: None,
            status: MessageStatus::Delivered,
            failure_reason: None,
            idempotency_key: None,
            queue_stamp: None,
            imported: false,
            sent_at: Timestamp::now(),
        },
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
