//! The web chat over real HTTP (SPEC §13, §4), on SQLite and, with `TEST_DATABASE_URL`, on
//! PostgreSQL: racing first messages of a new visitor make exactly one ticket, a repeated
//! `client_message_id` changes nothing, the widget page's signed visitor, the conversation both
//! ways, the reopen window, and clear errors.

use atende_db::Db;
use atende_db::messages::{self, NewMessage};
use atende_db::{inbound_events, ingest, tickets};
use atende_domain::{
    ChannelKind, ConnectionId, MessageAuthor, MessageDirection, MessageKind, MessageStatus,
    TenantId, TicketStatus, Timestamp,
};
use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};

const VISITOR_HEADER: &str = "x-atende-visitor";

struct Widget {
    token: String,
    key: String,
    queue: i64,
    connection: ConnectionId,
    tenant: TenantId,
    db: Db,
}

impl Widget {
    fn messages_path(&self) -> String {
        format!("/api/widget/v1/{}/messages", self.key)
    }
}

async fn widget(server: &TestServer) -> anyhow::Result<Widget> {
    let token = server.admin_token().await?;
    let queue = expect_status!(
        server
            .post(
                "/api/v1/queues",
                &token,
                json!({"name": "Site", "color": "#123456"})
            )
            .await?,
        201
    )["id"]
        .as_i64()
        .unwrap_or_default();
    let connection = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &token,
                json!({"kind": "webchat", "name": "Loja <Online>", "default_queue_id": queue})
            )
            .await?,
        201
    );
    let key = connection["key"].as_str().unwrap_or_default().to_owned();
    assert!(
        key.starts_with("wc_"),
        "a web-chat connection has a key: {connection}"
    );
    let db = Db::connect(&server.database_url).await?;
    let tenant = atende_db::tenants::platform_find_by_slug(&db, "default")
        .await?
        .map(|t| t.id)
        .ok_or_else(|| anyhow::anyhow!("no default tenant"))?;
    Ok(Widget {
        token,
        key,
        queue,
        connection: ConnectionId(connection["id"].as_i64().unwrap_or_default()),
        tenant,
        db,
    })
}

/// POSTs a visitor message as a site's backend would (no visitor token).
async fn post(server: &TestServer, w: &Widget, body: Value) -> anyhow::Result<(u16, Value)> {
    let response = server
        .http
        .post(server.url(&w.messages_path()))
        .json(&body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

async fn get_with(
    server: &TestServer,
    path: &str,
    visitor_token: Option<&str>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = server.http.get(server.url(path));
    if let Some(token) = visitor_token {
        request = request.header(VISITOR_HEADER, token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// The visitor token the widget page hands out (from its `Set-Cookie` and from the page).
async fn open_page(server: &TestServer, w: &Widget) -> anyhow::Result<(String, String)> {
    let response = server
        .http
        .get(server.url(&format!("/widget/{}", w.key)))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()?
            .starts_with("text/html"),
        "the widget page is HTML"
    );
    let cookie = response.headers()["set-cookie"].to_str()?.to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let html = response.text().await?;
    let token = html
        .split("data-visitor=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .ok_or_else(|| anyhow::anyhow!("no visitor token in the page"))?
        .to_owned();
    assert!(cookie.contains(&token), "the cookie carries the same token");
    assert!(
        html.contains("Loja &lt;Online&gt;"),
        "the connection name is escaped in the page"
    );
    assert!(html.contains("/widget-assets/widget.js"));
    Ok((token, cookie))
}

#[tokio::test]
async fn two_hundred_racing_first_messages_of_a_new_visitor_make_one_ticket_and_two_hundred_messages()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = widget(&server).await?;
        let mut tasks = Vec::new();
        for n in 0..200 {
            let url = server.url(&w.messages_path());
            let http = server.http.clone();
            tasks.push(tokio::spawn(async move {
                let response = http
                    .post(url)
                    .json(&json!({"visitor_id": "racer-1", "name": "Ana", "body": format!("mensagem {n}"), "client_message_id": format!("m-{n}")}))
                    .send()
                    .await?;
                anyhow::Ok(response.status().as_u16())
            }));
        }
        for task in tasks {
            assert_eq!(
                task.await??,
                201,
                "{}: every first message is stored",
                server.backend
            );
        }
        let contact = ingest::find_contact(&w.db, w.tenant, ChannelKind::Webchat, "racer-1")
            .await?
            .ok_or_else(|| anyhow::anyhow!("no contact"))?;
        let stored =
            ingest::conversation(&w.db, w.tenant, contact.id, w.connection, None, 500).await?;
        assert_eq!(stored.len(), 200, "{}: 200 messages", server.backend);
        let ticket = tickets::find_open_for_contact(&w.db, w.tenant, contact.id, w.connection)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no open ticket"))?;
        assert!(
            stored.iter().all(|m| m.ticket_id == ticket.id),
            "{}: exactly one ticket holds them all",
            server.backend
        );
        assert_eq!(ticket.unread, 200);
        assert_eq!(
            (ticket.status, ticket.queue_id.map(|q| q.0)),
            (TicketStatus::Pending, Some(w.queue)),
            "routed to the default queue"
        );
        assert_eq!(
            inbound_events::list(&w.db, w.tenant, None, 1000)
                .await?
                .len(),
            200
        );
        w.db.close().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn repeated_client_message_id_is_a_duplicate_and_changes_nothing() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = widget(&server).await?;
        let message = json!({"visitor_id": "site-user-7", "name": "Bia", "body": "oi", "client_message_id": "abc-1"});
        let first = expect_status!(post(&server, &w, message.clone()).await?, 201);
        assert_eq!(first["status"], "stored");
        assert_eq!(first["visitor_id"], "site-user-7");
        assert_eq!(first["message"]["from"], "visitor");
        let again = expect_status!(post(&server, &w, message).await?, 200);
        assert_eq!(again["status"], "duplicate");
        assert_eq!(
            again["message"]["id"], first["message"]["id"],
            "the repeat answers the stored message"
        );

        let contact = ingest::find_contact(&w.db, w.tenant, ChannelKind::Webchat, "site-user-7")
            .await?
            .ok_or_else(|| anyhow::anyhow!("contact"))?;
        assert_eq!(
            ingest::conversation(&w.db, w.tenant, contact.id, w.connection, None, 50)
                .await?
                .len(),
            1
        );
        let ticket = tickets::find_open_for_contact(&w.db, w.tenant, contact.id, w.connection)
            .await?
            .ok_or_else(|| anyhow::anyhow!("ticket"))?;
        assert_eq!(ticket.unread, 1);
        assert_eq!(
            inbound_events::list(&w.db, w.tenant, None, 10).await?.len(),
            1,
            "one delivery in the log"
        );
        w.db.close().await;
        server.stop().await?;
    }
    Ok(())
}

/// Ticket ids the admin finds in the pending tab by `search`.
async fn search_pending(server: &TestServer, w: &Widget, search: &str) -> anyhow::Result<Vec<i64>> {
    let body = expect_status!(
        server
            .get(
                &format!("/api/v1/tickets?tab=pending&search={search}"),
                &w.token
            )
            .await?,
        200
    );
    Ok(body["tickets"]
        .as_array()
        .map(|tickets| tickets.iter().filter_map(|t| t["id"].as_i64()).collect())
        .unwrap_or_default())
}

#[tokio::test]
async fn a_visitor_is_found_by_the_name_they_gave_and_by_a_new_one() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = widget(&server).await?;
        let first = json!({"visitor_id": "v-search", "name": "Márcia Souza", "body": "oi"});
        expect_status!(post(&server, &w, first).await?, 201);
        let contact = ingest::find_contact(&w.db, w.tenant, ChannelKind::Webchat, "v-search")
            .await?
            .ok_or_else(|| anyhow::anyhow!("contact"))?;
        let ticket = tickets::find_open_for_contact(&w.db, w.tenant, contact.id, w.connection)
            .await?
            .ok_or_else(|| anyhow::anyhow!("ticket"))?
            .id
            .0;
        assert_eq!(
            search_pending(&server, &w, "marcia").await?,
            vec![ticket],
            "{}: found without accent or case",
            server.backend
        );
        // A new name from the visitor renames the contact (no manual name, keep_contact_name off).
        let second = json!({"visitor_id": "v-search", "name": "Márcia Lima", "body": "sou eu"});
        expect_status!(post(&server, &w, second).await?, 201);
        assert_eq!(search_pending(&server, &w, "lima").await?, vec![ticket]);
        assert_eq!(
            search_pending(&server, &w, "souza").await?,
            Vec::<i64>::new(),
            "{}: the old name no longer matches",
            server.backend
        );
        w.db.close().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn widget_page_mints_a_signed_visitor_who_chats_and_sees_agent_replies() -> anyhow::Result<()>
{
    for server in TestServer::all().await? {
        let w = widget(&server).await?;
        let (token, cookie) = open_page(&server, &w).await?;

        // Nobody may read a conversation without the token, nor with a forged one.
        expect_status!(get_with(&server, &w.messages_path(), None).await?, 401);
        let forged = format!(
            "{}x",
            token.trim_end_matches(|c: char| c.is_ascii_hexdigit())
        );
        expect_status!(
            get_with(&server, &w.messages_path(), Some(&forged)).await?,
            401
        );

        // The token names the visitor; a visitor_id in the body cannot override it.
        let response = server
            .http
            .post(server.url(&w.messages_path()))
            .header(VISITOR_HEADER, &token)
            .json(&json!({"visitor_id": "someone-else", "body": "Olá, preciso de ajuda", "client_message_id": "c1"}))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 201);
        let posted: Value = response.json().await?;
        let visitor = posted["visitor_id"].as_str().unwrap_or_default().to_owned();
        assert!(
            visitor.starts_with("v_"),
            "a server-minted visitor: {posted}"
        );
        assert!(
            ingest::find_contact(&w.db, w.tenant, ChannelKind::Webchat, "someone-else")
                .await?
                .is_none()
        );

        // The cookie alone works too (same-site use of the page).
        let cookie_pair = cookie.split(';').next().unwrap_or_default().to_owned();
        let by_cookie = server
            .http
            .post(server.url(&w.messages_path()))
            .header("cookie", &cookie_pair)
            .json(&json!({"body": "Alguém aí?"}))
            .send()
            .await?;
        assert_eq!(by_cookie.status().as_u16(), 201);
        let by_cookie: Value = by_cookie.json().await?;
        assert_eq!(by_cookie["visitor_id"], visitor.as_str());

        // An agent answers (stored as an outbound message of the ticket).
        let contact = ingest::find_contact(&w.db, w.tenant, ChannelKind::Webchat, &visitor)
            .await?
            .ok_or_else(|| anyhow::anyhow!("contact"))?;
        let ticket = tickets::find_open_for_contact(&w.db, w.tenant, contact.id, w.connection)
            .await?
            .ok_or_else(|| anyhow::anyhow!("ticket"))?;
        messages::insert(
            &w.db,
            w.tenant,
            &NewMessage {
                ticket_id: ticket.id,
                connection_id: w.connection,
                contact_id: contact.id,
                direction: MessageDirection::Out,
                author: MessageAuthor::User,
                author_user_id: None,
                kind: MessageKind::Text,
                body: "*Admin*: Claro! Como posso ajudar?".into(),
                provider_id: None,
                quoted_id: None,
                status: MessageStatus::Sent,
                failure_reason: None,
                idempotency_key: Some("reply-1".into()),
                queue_stamp: ticket.queue_id,
                imported: false,
                sent_at: Timestamp::now(),
            },
        )
        .await?;

        let all = expect_status!(
            get_with(&server, &w.messages_path(), Some(&token)).await?,
            200
        );
        assert_eq!(all["visitor_id"], visitor.as_str());
        let froms: Vec<&str> = all["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["from"].as_str())
            .collect();
        assert_eq!(
            froms,
            vec!["visitor", "visitor", "agent"],
            "both directions, ascending: {all}"
        );
        let first_id = all["messages"][0]["id"].as_i64().unwrap_or_default();
        let after = expect_status!(
            get_with(
                &server,
                &format!("{}?after={first_id}", w.messages_path()),
                Some(&token)
            )
            .await?,
            200
        );
        let bodies: Vec<&str> = after["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["body"].as_str())
            .collect();
        assert_eq!(
            bodies,
            vec!["Alguém aí?", "*Admin*: Claro! Como posso ajudar?"]
        );

        // Opening the page again with the cookie keeps the same visitor.
        let again = server
            .http
            .get(server.url(&format!("/widget/{}", w.key)))
            .header("cookie", &cookie_pair)
            .send()
            .await?
            .text()
            .await?;
        assert!(
            again.contains(&format!("data-visitor=\"{visitor}.")),
            "the returning visitor keeps their id"
        );

        // The script and the style are served from the binary.
        let script = server
            .http
            .get(server.url("/widget-assets/widget.js"))
            .send()
            .await?;
        assert_eq!(script.status().as_u16(), 200);
        assert!(
            script.headers()["content-type"]
                .to_str()?
                .starts_with("text/javascript")
        );
        assert!(script.text().await?.contains("x-atende-visitor"));
        w.db.close().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn closed_ticket_reopens_within_the_window_and_a_new_one_starts_with_a_zero_window()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = widget(&server).await?;
        let first = expect_status!(
            post(&server, &w, json!({"visitor_id": "loyal", "body": "oi"})).await?,
            201
        );
        let contact = ingest::find_contact(&w.db, w.tenant, ChannelKind::Webchat, "loyal")
            .await?
            .ok_or_else(|| anyhow::anyhow!("contact"))?;
        let ticket = tickets::find_open_for_contact(&w.db, w.tenant, contact.id, w.connection)
            .await?
            .ok_or_else(|| anyhow::anyhow!("ticket"))?;
        assert!(first["message"]["id"].is_i64());

        tickets::set_status(
            &w.db,
            w.tenant,
            ticket.id,
            TicketStatus::Closed,
            None,
            ticket.queue_id,
            Timestamp::now().plus_minutes(-5),
        )
        .await?;
        expect_status!(
            post(
                &server,
                &w,
                json!({"visitor_id": "loyal", "body": "voltei"})
            )
            .await?,
            201
        );
        let reopened = tickets::find_open_for_contact(&w.db, w.tenant, contact.id, w.connection)
            .await?
            .ok_or_else(|| anyhow::anyhow!("ticket"))?;
        assert_eq!(
            reopened.id, ticket.id,
            "closed 5 minutes ago: the same ticket"
        );
        assert_eq!(
            tickets::cycles(&w.db, w.tenant, ticket.id).await?.len(),
            2,
            "in a new cycle"
        );

        expect_status!(
            server
                .put(
                    "/api/v1/settings/reopen_window_minutes",
                    &w.token,
                    json!({"value": 0})
                )
                .await?,
            200
        );
        tickets::set_status(
            &w.db,
            w.tenant,
            ticket.id,
            TicketStatus::Closed,
            None,
            ticket.queue_id,
            Timestamp::now(),
        )
        .await?;
        expect_status!(
            post(
                &server,
                &w,
                json!({"visitor_id": "loyal", "body": "de novo"})
            )
            .await?,
            201
        );
        let fresh = tickets::find_open_for_contact(&w.db, w.tenant, contact.id, w.connection)
            .await?
            .ok_or_else(|| anyhow::anyhow!("ticket"))?;
        assert_ne!(fresh.id, ticket.id, "window 0: a new ticket starts");
        w.db.close().await;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn bad_widget_requests_get_clear_errors() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let w = widget(&server).await?;
    for path in ["/api/widget/v1/wc_nope/messages", "/widget/wc_nope"] {
        let body = expect_status!(get_with(&server, path, None).await?, 404);
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }
    let unknown = server
        .http
        .post(server.url("/api/widget/v1/wc_nope/messages"))
        .json(&json!({"visitor_id": "v", "body": "oi"}))
        .send()
        .await?;
    assert_eq!(unknown.status().as_u16(), 404);

    let missing_visitor = expect_status!(post(&server, &w, json!({"body": "oi"})).await?, 422);
    assert_eq!(missing_visitor["error"]["field"], "visitor_id");
    let empty = expect_status!(
        post(&server, &w, json!({"visitor_id": "v", "body": "  "})).await?,
        422
    );
    assert_eq!(empty["error"]["field"], "body");
    let unknown_field = expect_status!(
        post(
            &server,
            &w,
            json!({"visitor_id": "v", "body": "oi", "colour": 1})
        )
        .await?,
        422
    );
    assert_eq!(unknown_field["error"]["field"], "colour");
    let long = expect_status!(
        post(
            &server,
            &w,
            json!({"visitor_id": "v", "body": "a".repeat(5000)})
        )
        .await?,
        422
    );
    assert_eq!(long["error"]["field"], "body");

    let not_json = server
        .http
        .post(server.url(&w.messages_path()))
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await?;
    assert_eq!(not_json.status().as_u16(), 400);
    let wrong_type = server
        .http
        .post(server.url(&w.messages_path()))
        .body("hello")
        .send()
        .await?;
    assert_eq!(wrong_type.status().as_u16(), 415);
    let huge = server
        .http
        .post(server.url(&w.messages_path()))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"visitor_id":"v","body":"{}"}}"#,
            "a".repeat(100_000)
        ))
        .send()
        .await?;
    assert_eq!(huge.status().as_u16(), 413);
    let huge: Value = huge.json().await?;
    assert_eq!(huge["error"]["code"], "payload_too_large");
    let tampered = server
        .http
        .post(server.url(&w.messages_path()))
        .header(VISITOR_HEADER, "v_abc.1.deadbeef")
        .json(&json!({"visitor_id": "v", "body": "oi"}))
        .send()
        .await?;
    assert_eq!(
        tampered.status().as_u16(),
        401,
        "a bad token is refused, not ignored"
    );
    let bad_limit = expect_status!(
        get_with(
            &server,
            &format!("{}?limit=0", w.messages_path()),
            Some(&open_page(&server, &w).await?.0)
        )
        .await?,
        422
    );
    assert_eq!(bad_limit["error"]["field"], "limit");
    assert!(
        inbound_events::list(&w.db, w.tenant, None, 10)
            .await?
            .is_empty(),
        "refused posts are not logged"
    );
    w.db.close().await;
    server.stop().await?;
    Ok(())
}

/// A multipart/form-data body by hand (the test client has no multipart feature).
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "atende-test-boundary-7c1f";
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

/// An uploaded file: name, declared type, content.
type File<'a> = (&'a str, &'a str, &'a [u8]);
/// The text fields of a form.
type Fields<'a> = &'a [(&'a str, &'a str)];

async fn upload(
    server: &TestServer,
    w: &Widget,
    fields: &[(&str, &str)],
    file: Option<File<'_>>,
    token: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let (content_type, body) = multipart(fields, file);
    let mut request = server
        .http
        .post(server.url(&w.messages_path()))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.header(VISITOR_HEADER, token);
    }
    request.send().await
}

#[tokio::test]
async fn visitor_uploads_a_file_within_the_type_and_size_limits_and_only_they_can_fetch_it()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = widget(&server).await?;
        let (token, _) = open_page(&server, &w).await?;
        let png: &[u8] = b"\x89PNG\r\n\x1A\n-not-really-an-image-but-the-signature-is-right";
        let response = upload(
            &server,
            &w,
            &[("body", "segue a foto"), ("client_message_id", "up-1")],
            Some(("foto.png", "image/png", png)),
            Some(&token),
        )
        .await?;
        assert_eq!(response.status().as_u16(), 201, "{}", server.backend);
        let posted: Value = response.json().await?;
        assert_eq!(posted["message"]["kind"], "image");
        assert_eq!(posted["message"]["body"], "segue a foto");
        let media_url = posted["message"]["media_url"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            media_url.starts_with(&format!("/api/widget/v1/{}/media/", w.key)),
            "{posted}"
        );

        let fetched = server
            .http
            .get(server.url(&format!("{media_url}?v={token}")))
            .send()
            .await?;
        assert_eq!(fetched.status().as_u16(), 200);
        assert_eq!(fetched.headers()["content-type"].to_str()?, "image/png");
        assert_eq!(
            fetched.headers()["x-content-type-options"].to_str()?,
            "nosniff"
        );
        assert_eq!(fetched.bytes().await?.as_ref(), png);

        // Another visitor, or nobody, cannot fetch it.
        let (stranger, _) = open_page(&server, &w).await?;
        expect_status!(get_with(&server, &media_url, Some(&stranger)).await?, 404);
        expect_status!(get_with(&server, &media_url, None).await?, 401);

        // A file alone (no text) is a message too.
        let alone = upload(
            &server,
            &w,
            &[],
            Some(("nota.txt", "text/plain", b"lista de compras")),
            Some(&token),
        )
        .await?;
        assert_eq!(alone.status().as_u16(), 201);
        let alone: Value = alone.json().await?;
        assert_eq!(alone["message"]["kind"], "document");

        // Types outside the list, content that is not what it claims, and a bad field are refused.
        let refused: [(Fields, Option<File>, &str); 3] = [
            (
                &[("body", "x")],
                Some(("a.exe", "application/x-msdownload", b"MZ\x90\x00")),
                "file",
            ),
            (
                &[("body", "x")],
                Some(("a.png", "image/png", b"<svg onload=alert(1)>")),
                "file",
            ),
            (&[("colour", "x"), ("body", "x")], None, "colour"),
        ];
        for (fields, file, field) in refused {
            let response = upload(&server, &w, fields, file, Some(&token)).await?;
            assert_eq!(response.status().as_u16(), 422, "{field}");
            let body: Value = response.json().await?;
            assert_eq!(body["error"]["field"], field);
        }

        // Over the size limit: 413.
        let big = vec![b'a'; 11 * 1024 * 1024];
        let too_big = upload(
            &server,
            &w,
            &[("body", "x")],
            Some(("big.txt", "text/plain", &big)),
            Some(&token),
        )
        .await?;
        assert_eq!(too_big.status().as_u16(), 413);

        let conversation = expect_status!(
            get_with(&server, &w.messages_path(), Some(&token)).await?,
            200
        );
        assert_eq!(
            conversation["messages"].as_array().map(Vec::len),
            Some(2),
            "only the accepted uploads are messages"
        );
        w.db.close().await;
        server.stop().await?;
    }
    Ok(())
}
