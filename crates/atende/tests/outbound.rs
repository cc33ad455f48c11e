//! Agent replies over real HTTP (SPEC §7, §13), on SQLite and, with `TEST_DATABASE_URL`, on
//! PostgreSQL: a reply is `queued` at once and the sender makes it `sent`; the same idempotency
//! key answers the same message; the web-chat visitor sees the reply; who may reply when; bad
//! bodies are 422; a failed message can be resent; agent replies carry the agent's signature,
//! which the agent may switch off per ticket unless `enforce_signature`.

use atende_db::Db;
use atende_db::{ingest, tickets};
use atende_domain::{ChannelKind, ConnectionId, TenantId, Ticket};
use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};
use std::time::Duration;

const VISITOR_HEADER: &str = "x-atende-visitor";

struct Chat {
    admin: String,
    agent: String,
    key: String,
    visitor_token: String,
    ticket: Ticket,
    db: Db,
    tenant: TenantId,
}

impl Chat {
    fn widget_path(&self) -> String {
        format!("/api/widget/v1/{}/messages", self.key)
    }

    fn reply_path(&self) -> String {
        format!("/api/v1/tickets/{}/messages", self.ticket.id.0)
    }
}

/// A web-chat connection, an agent in its queue, and a visitor who wrote once (a pending ticket).
async fn chat(server: &TestServer) -> anyhow::Result<Chat> {
    let admin = server.admin_token().await?;
    let queue = expect_status!(
        server
            .post(
                "/api/v1/queues",
                &admin,
                json!({"name": "Site", "color": "#123456"})
            )
            .await?,
        201
    )["id"]
        .as_i64()
        .unwrap_or_default();
    expect_status!(
        server
            .post(
                "/api/v1/users",
                &admin,
                json!({"email": "ana@default.test", "name": "Ana", "password": "agent-password-1", "profile": "user", "queue_ids": [queue]})
            )
            .await?,
        201
    );
    let agent = server.login("ana@default.test", "agent-password-1").await?;
    let connection = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "webchat", "name": "Loja", "default_queue_id": queue})
            )
            .await?,
        201
    );
    let key = connection["key"].as_str().unwrap_or_default().to_owned();
    let connection_id = ConnectionId(connection["id"].as_i64().unwrap_or_default());
    let page = server
        .http
        .get(server.url(&format!("/widget/{key}")))
        .send()
        .await?
        .text()
        .await?;
    let visitor_token = page
        .split("data-visitor=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| anyhow::anyhow!("no visitor token in the page"))?
        .to_owned();
    let response = server
        .http
        .post(server.url(&format!("/api/widget/v1/{key}/messages")))
        .header(VISITOR_HEADER, &visitor_token)
        .json(&json!({"body": "Olá, preciso de ajuda"}))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 201);
    let posted: Value = response.json().await?;
    let visitor = posted["visitor_id"].as_str().unwrap_or_default().to_owned();
    let db = Db::connect(&server.database_url).await?;
    let tenant = atende_db::tenants::platform_find_by_slug(&db, "default")
        .await?
        .map(|t| t.id)
        .ok_or_else(|| anyhow::anyhow!("no default tenant"))?;
    let contact = ingest::find_contact(&db, tenant, ChannelKind::Webchat, &visitor)
        .await?
        .ok_or_else(|| anyhow::anyhow!("contact"))?;
    let ticket = tickets::find_open_for_contact(&db, tenant, contact.id, connection_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("ticket"))?;
    Ok(Chat {
        admin,
        agent,
        key,
        visitor_token,
        ticket,
        db,
        tenant,
    })
}

/// Polls the ticket's chat until message `id` has `status` (or gives up after 5 s).
async fn wait_status(
    server: &TestServer,
    chat: &Chat,
    id: i64,
    status: &str,
) -> anyhow::Result<Value> {
    for _ in 0..250 {
        let page = expect_status!(server.get(&chat.reply_path(), &chat.admin).await?, 200);
        if let Some(message) = page["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["id"].as_i64() == Some(id))
            && message["status"] == status
        {
            return Ok(message.clone());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("message {id} never became {status}")
}

#[tokio::test]
async fn an_agent_reply_is_queued_at_once_then_sent_and_reaches_the_visitor() -> anyhow::Result<()>
{
    for server in TestServer::all().await? {
        let chat = chat(&server).await?;
        let first = expect_status!(
            server
                .post(
                    &chat.reply_path(),
                    &chat.admin,
                    json!({"body": "Claro! Como posso ajudar?", "idempotency_key": "k-1"})
                )
                .await?,
            201
        );
        assert_eq!(
            first["status"], "queued",
            "answered before sending: {first}"
        );
        assert_eq!(first["direction"], "out");
        assert_eq!(first["author"], "user");
        assert_eq!(first["idempotency_key"], "k-1");
        let id = first["id"].as_i64().unwrap_or_default();

        let again = expect_status!(
            server
                .post(
                    &chat.reply_path(),
                    &chat.admin,
                    json!({"body": "Claro! Como posso ajudar?", "idempotency_key": "k-1"})
                )
                .await?,
            200
        );
        assert_eq!(
            again["id"].as_i64(),
            Some(id),
            "the same key is the same message"
        );

        let sent = wait_status(&server, &chat, id, "sent").await?;
        assert!(
            sent["provider_id"].as_str().is_some_and(|p| !p.is_empty()),
            "sent under the provider's id: {sent}"
        );
        let page = expect_status!(server.get(&chat.reply_path(), &chat.admin).await?, 200);
        let replies = page["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| {
                m["body"]
                    .as_str()
                    .is_some_and(|b| b.ends_with(":\nClaro! Como posso ajudar?"))
            })
            .count();
        assert_eq!(replies, 1, "one message for two requests with one key");

        let ticket = tickets::get(&chat.db, chat.tenant, chat.ticket.id).await?;
        assert_eq!(
            ticket.last_message, "Claro! Como posso ajudar?",
            "the preview is what was said, without the signature"
        );
        assert_eq!(ticket.unread, 0, "the agent has seen the chat");

        let response = server
            .http
            .get(server.url(&format!("{}?after=0", chat.widget_path())))
            .header(VISITOR_HEADER, &chat.visitor_token)
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200);
        let conversation: Value = response.json().await?;
        let bodies: Vec<&str> = conversation["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["body"].as_str())
            .collect();
        assert!(
            bodies
                .iter()
                .any(|b| b.contains("Claro! Como posso ajudar?")),
            "the visitor sees the reply: {conversation}"
        );
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn who_may_reply_and_what_a_reply_may_hold() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let chat = chat(&server).await?;
        let (status, body) = server
            .post(&chat.reply_path(), &chat.agent, json!({"body": "oi"}))
            .await?;
        assert_eq!(status, 409, "a user accepts a pending ticket first: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("accept")
        );

        expect_status!(
            server
                .post(
                    &format!("/api/v1/tickets/{}/accept", chat.ticket.id.0),
                    &chat.agent,
                    json!({})
                )
                .await?,
            200
        );
        expect_status!(
            server
                .post(
                    &chat.reply_path(),
                    &chat.agent,
                    json!({"body": "oi, sou a Ana"})
                )
                .await?,
            201
        );
        let (status, body) = server
            .post(&chat.reply_path(), &chat.agent, json!({"body": "   "}))
            .await?;
        assert_eq!(status, 422, "an empty body: {body}");
        assert_eq!(body["error"]["field"], "body");
        let (status, _) = server
            .post(
                &chat.reply_path(),
                &chat.agent,
                json!({"body": "a".repeat(4097)}),
            )
            .await?;
        assert_eq!(status, 422, "a body over 4096 characters");
        expect_status!(
            server
                .post(
                    &chat.reply_path(),
                    &chat.agent,
                    json!({"body": "é".repeat(4096)})
                )
                .await?,
            201
        );

        expect_status!(
            server
                .post(
                    &format!("/api/v1/tickets/{}/close", chat.ticket.id.0),
                    &chat.admin,
                    json!({})
                )
                .await?,
            200
        );
        let (status, body) = server
            .post(
                &chat.reply_path(),
                &chat.admin,
                json!({"body": "ainda aí?"}),
            )
            .await?;
        assert_eq!(status, 409, "a closed ticket takes no reply: {body}");

        let (status, _) = server
            .post(
                "/api/v1/tickets/999999/messages",
                &chat.admin,
                json!({"body": "x"}),
            )
            .await?;
        assert_eq!(status, 404);

        let document = expect_status!(server.get("/api/v1/openapi.json", &chat.admin).await?, 200);
        let path = &document["paths"]["/api/v1/tickets/{id}/messages"];
        assert!(
            path["get"].is_object() && path["post"].is_object(),
            "the chat page and the reply share one documented path: {path}"
        );
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn only_a_failed_message_can_be_resent() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let chat = chat(&server).await?;
        let reply = expect_status!(
            server
                .post(&chat.reply_path(), &chat.admin, json!({"body": "primeira"}))
                .await?,
            201
        );
        let id = reply["id"].as_i64().unwrap_or_default();
        wait_status(&server, &chat, id, "sent").await?;
        let resend = format!("{}/{id}/resend", chat.reply_path());
        let (status, body) = server.post(&resend, &chat.admin, json!({})).await?;
        assert_eq!(status, 409, "a sent message is not resent: {body}");
        let (status, _) = server
            .post(
                &format!("{}/999999/resend", chat.reply_path()),
                &chat.admin,
                json!({}),
            )
            .await?;
        assert_eq!(status, 404);
        server.stop().await?;
    }
    Ok(())
}

/// A multipart/form-data body by hand (the test client has no multipart feature).
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "atende-outbound-boundary-51d2";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    if let Some((file_name, mime, content)) = file {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {mime}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(
    server: &TestServer,
    chat: &Chat,
    fields: &[(&str, &str)],
    file: Option<(&str, &str, &[u8])>,
) -> anyhow::Result<(u16, Value)> {
    let (content_type, body) = multipart(fields, file);
    let response = server
        .http
        .post(server.url(&chat.reply_path()))
        .bearer_auth(&chat.admin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::test]
async fn an_agent_sends_a_file_the_visitor_can_fetch() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let chat = chat(&server).await?;
        let png: &[u8] = b"\x89PNG\r\n\x1A\n-not-really-an-image-but-the-signature-is-right";
        let (status, sent) = upload(
            &server,
            &chat,
            &[("body", "segue o print"), ("idempotency_key", "file-1")],
            Some(("print.png", "image/png", png)),
        )
        .await?;
        assert_eq!(status, 201, "{sent}");
        assert_eq!(sent["kind"], "image");
        let caption = sent["body"].as_str().unwrap_or_default().to_owned();
        assert!(
            caption.ends_with(":\nsegue o print"),
            "signed caption: {sent}"
        );
        let id = sent["id"].as_i64().unwrap_or_default();
        wait_status(&server, &chat, id, "sent").await?;

        let response = server
            .http
            .get(server.url(&chat.widget_path()))
            .header(VISITOR_HEADER, &chat.visitor_token)
            .send()
            .await?;
        let conversation: Value = response.json().await?;
        let media_url = conversation["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["body"] == caption.as_str())
            .and_then(|m| m["media_url"].as_str())
            .unwrap_or_default()
            .to_owned();
        assert!(
            !media_url.is_empty(),
            "the visitor gets a link: {conversation}"
        );
        let fetched = server
            .http
            .get(server.url(&media_url))
            .header(VISITOR_HEADER, &chat.visitor_token)
            .send()
            .await?;
        assert_eq!(fetched.status().as_u16(), 200);
        assert_eq!(fetched.bytes().await?.as_ref(), png);

        let (status, body) = upload(
            &server,
            &chat,
            &[],
            Some(("a.png", "image/png", b"<svg onload=alert(1)>")),
        )
        .await?;
        assert_eq!(status, 422, "content that is not the declared type: {body}");
        assert_eq!(body["error"]["field"], "file");
        let (status, _) = upload(&server, &chat, &[("body", "sem arquivo")], None).await?;
        assert_eq!(status, 422, "a form without a file");
        server.stop().await?;
    }
    Ok(())
}

/// Replies as Ana on the chat's (accepted) ticket and answers the stored body.
async fn ana_replies(server: &TestServer, chat: &Chat, body: &str) -> anyhow::Result<String> {
    let message = expect_status!(
        server
            .post(&chat.reply_path(), &chat.agent, json!({ "body": body }))
            .await?,
        201
    );
    Ok(message["body"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn agent_replies_are_signed_unless_switched_off_and_not_enforced() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let chat = chat(&server).await?;
        let signature_path = format!("/api/v1/tickets/{}/signature", chat.ticket.id.0);
        expect_status!(
            server
                .post(
                    &format!("/api/v1/tickets/{}/accept", chat.ticket.id.0),
                    &chat.agent,
                    json!({})
                )
                .await?,
            200
        );

        // Signed by default, in the web chat's format (plain text), for everyone to see.
        let signed = ana_replies(&server, &chat, "Bom dia!").await?;
        assert_eq!(signed, "Ana:\nBom dia!");
        let page = expect_status!(server.get(&chat.reply_path(), &chat.agent).await?, 200);
        assert!(
            page["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["body"] == "Ana:\nBom dia!"),
            "the agent's chat shows the signed text: {page}"
        );
        let response = server
            .http
            .get(server.url(&format!("{}?after=0", chat.widget_path())))
            .header(VISITOR_HEADER, &chat.visitor_token)
            .send()
            .await?;
        let conversation: Value = response.json().await?;
        assert!(
            conversation["messages"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| m["body"] == "Ana:\nBom dia!"),
            "the visitor sees the same text: {conversation}"
        );

        // Switched off on this ticket: the next reply goes as typed.
        let switched = expect_status!(
            server
                .patch(&signature_path, &chat.agent, json!({"enabled": false}))
                .await?,
            200
        );
        assert_eq!(switched["enabled"], false);
        assert_eq!(
            ana_replies(&server, &chat, "Tudo certo?").await?,
            "Tudo certo?"
        );
        // And back on.
        expect_status!(
            server
                .patch(&signature_path, &chat.agent, json!({"enabled": true}))
                .await?,
            200
        );
        assert_eq!(
            ana_replies(&server, &chat, "Até logo").await?,
            "Ana:\nAté logo"
        );

        // Bad bodies and tickets nobody may see.
        expect_status!(
            server
                .patch(&signature_path, &chat.agent, json!({"enabled": "no"}))
                .await?,
            422
        );
        expect_status!(
            server
                .patch(
                    "/api/v1/tickets/999999999/signature",
                    &chat.agent,
                    json!({"enabled": false})
                )
                .await?,
            404
        );

        // With enforce_signature, switching it off is refused and replies stay signed, even on a
        // ticket that had it off before.
        expect_status!(
            server
                .patch(&signature_path, &chat.agent, json!({"enabled": false}))
                .await?,
            200
        );
        expect_status!(
            server
                .put(
                    "/api/v1/settings/enforce_signature",
                    &chat.admin,
                    json!({"value": true})
                )
                .await?,
            200
        );
        let (status, body) = server
            .patch(&signature_path, &chat.agent, json!({"enabled": false}))
            .await?;
        assert_eq!(status, 409, "{body}");
        assert_eq!(
            body["error"]["message"],
            "the signature is enforced (enforce_signature)"
        );
        assert_eq!(
            ana_replies(&server, &chat, "Obrigada").await?,
            "Ana:\nObrigada"
        );
        expect_status!(
            server
                .patch(&signature_path, &chat.agent, json!({"enabled": true}))
                .await?,
            200
        );

        let doc: Value = server
            .http
            .get(server.url("/api/v1/openapi.json"))
            .send()
            .await?
            .json()
            .await?;
        assert!(
            doc["paths"]["/api/v1/tickets/{id}/signature"]["patch"].is_object(),
            "the route is documented"
        );
        server.stop().await?;
    }
    Ok(())
}
