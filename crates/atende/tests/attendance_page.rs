//! The attendance page over HTTP (SPEC §12), on SQLite and, with `TEST_DATABASE_URL`, on
//! PostgreSQL: the first page and the counters arrive rendered with the same visibility rule as
//! the API, the page stays small, and the chat view's own routes (message files, the signature
//! state, the notification sound) answer only what the caller may read.

use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};

const PASSWORD: &str = "agent-password-1";

/// Two queues, an agent in each, and a web-chat connection routing to each queue.
struct World {
    admin: String,
    ana: String,
    bruno: String,
    sales: i64,
    sales_key: String,
    support_key: String,
}

async fn world(server: &TestServer) -> anyhow::Result<World> {
    let admin = server.admin_token().await?;
    let mut queues = Vec::new();
    for name in ["Vendas", "Suporte"] {
        let queue = expect_status!(
            server
                .post(
                    "/api/v1/queues",
                    &admin,
                    json!({"name": name, "color": "#0b6e4f"})
                )
                .await?,
            201
        );
        queues.push(queue["id"].as_i64().unwrap_or_default());
    }
    let mut keys = Vec::new();
    for (name, queue) in [("Site", queues[0]), ("Ajuda", queues[1])] {
        let connection = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &admin,
                    json!({"kind": "webchat", "name": name, "default_queue_id": queue})
                )
                .await?,
            201
        );
        keys.push(connection["key"].as_str().unwrap_or_default().to_owned());
    }
    let mut tokens = Vec::new();
    for (email, name, queue) in [
        ("ana@default.test", "Ana", queues[0]),
        ("bruno@default.test", "Bruno", queues[1]),
    ] {
        expect_status!(
            server
                .post(
                    "/api/v1/users",
                    &admin,
                    json!({"email": email, "name": name, "password": PASSWORD,
                           "profile": "user", "queue_ids": [queue]})
                )
                .await?,
            201
        );
        tokens.push(server.login(email, PASSWORD).await?);
    }
    Ok(World {
        admin,
        ana: tokens[0].clone(),
        bruno: tokens[1].clone(),
        sales: queues[0],
        sales_key: keys[0].clone(),
        support_key: keys[1].clone(),
    })
}

/// A visitor's message through the widget API (as a site's backend posts it).
async fn visitor_writes(
    server: &TestServer,
    key: &str,
    visitor: &str,
    name: &str,
) -> anyhow::Result<()> {
    let response = server
        .http
        .post(server.url(&format!("/api/widget/v1/{key}/messages")))
        .json(&json!({"visitor_id": visitor, "name": name, "body": format!("Oi, aqui é {name}")}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().as_u16() == 201,
        "visitor {name}: {}",
        response.status()
    );
    Ok(())
}

/// The ticket of the contact named `name`, as the admin finds it.
async fn ticket_of(server: &TestServer, admin: &str, name: &str) -> anyhow::Result<Value> {
    let page = expect_status!(server.get("/api/v1/tickets", admin).await?, 200);
    page["tickets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["contact"]["name"] == name)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no ticket of {name}: {page}"))
}

async fn ticket_id(server: &TestServer, admin: &str, name: &str) -> anyhow::Result<i64> {
    Ok(ticket_of(server, admin, name).await?["id"]
        .as_i64()
        .unwrap_or_default())
}

/// A page of the panel as the holder of `token` sees it (the API token is also a session).
async fn page(server: &TestServer, token: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let response = server
        .http
        .get(server.url(path))
        .header("cookie", format!("atende_session={token}"))
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}

fn config_of(html: &str) -> Value {
    html.split("<script type=\"application/json\" id=\"attendance-config\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or(Value::Null)
}

/// The `data-count` badge of a tab as rendered.
fn counter(html: &str, name: &str) -> String {
    html.split(&format!("data-count=\"{name}\""))
        .nth(1)
        .and_then(|rest| rest.split('>').nth(1))
        .and_then(|text| text.split('<').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn the_first_page_and_counters_arrive_rendered_with_the_visibility_rule() -> anyhow::Result<()>
{
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        visitor_writes(&server, &w.sales_key, "v-maria", "Maria Vendas").await?;
        visitor_writes(&server, &w.support_key, "v-joao", "João Suporte").await?;

        let (status, html) = page(&server, &w.ana, "/?tab=pending").await?;
        assert_eq!(status, 200, "{}", server.backend);
        assert!(
            html.contains("Maria Vendas"),
            "{}: her queue's ticket",
            server.backend
        );
        assert!(
            !html.contains("João Suporte"),
            "{}: another queue's ticket",
            server.backend
        );
        assert_eq!(counter(&html, "pending"), "1", "{}", server.backend);
        assert_eq!(counter(&html, "private"), "1", "{}", server.backend);
        assert!(
            html.contains("class=\"ticket has-unread\""),
            "{}",
            server.backend
        );
        let config = config_of(&html);
        assert_eq!(config["tab"], "pending", "{}", server.backend);
        assert_eq!(config["settings"]["tickets_page_size"], 40);
        assert_eq!(config["settings"]["sound_notifications"], true);
        assert_eq!(config["me"]["profile"], "user");
        assert!(config["next_cursor"].is_null());

        // Bruno sees the other one; the open tab is empty for both.
        let (_, html) = page(&server, &w.bruno, "/?tab=pending").await?;
        assert!(html.contains("João Suporte") && !html.contains("Maria Vendas"));
        let (_, html) = page(&server, &w.ana, "/").await?;
        assert!(
            !html.contains("Maria Vendas"),
            "pending tickets are not in the open tab"
        );
        assert_eq!(config_of(&html)["tab"], "open");

        // The queue filter and the search come from the address.
        let (_, html) = page(
            &server,
            &w.admin,
            &format!("/?tab=pending&queue_id={}", w.sales),
        )
        .await?;
        assert!(html.contains("Maria Vendas") && !html.contains("João Suporte"));
        let protocol = ticket_of(&server, &w.admin, "João Suporte").await?["protocol"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let (_, html) = page(
            &server,
            &w.admin,
            &format!("/?tab=pending&search={protocol}"),
        )
        .await?;
        assert!(html.contains("João Suporte") && !html.contains("Maria Vendas"));
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_first_page_is_tickets_page_size_long_and_hands_over_the_cursor() -> anyhow::Result<()>
{
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        expect_status!(
            server
                .put(
                    "/api/v1/settings/tickets_page_size",
                    &w.admin,
                    json!({"value": 10})
                )
                .await?,
            200
        );
        for n in 0..12 {
            visitor_writes(
                &server,
                &w.sales_key,
                &format!("v-{n}"),
                &format!("Cliente {n:02}"),
            )
            .await?;
        }
        let (_, html) = page(&server, &w.ana, "/?tab=pending").await?;
        assert_eq!(
            html.matches("<li class=\"ticket").count(),
            10,
            "{}",
            server.backend
        );
        let config = config_of(&html);
        let cursor = config["next_cursor"].as_str().unwrap_or_default();
        assert!(!cursor.is_empty(), "{}: {config}", server.backend);
        // The script goes on from the cursor with the API: the other two, no repeats.
        let rest = expect_status!(
            server
                .get(
                    &format!("/api/v1/tickets?tab=pending&cursor={cursor}"),
                    &w.ana
                )
                .await?,
            200
        );
        assert_eq!(rest["tickets"].as_array().map(Vec::len), Some(2));
        assert!(rest["next_cursor"].is_null());
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_chatbot_tab_and_its_counter_show_only_with_chatbot_tab() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let w = world(&server).await?;
    let (_, html) = page(&server, &w.ana, "/?tab=chatbot").await?;
    assert!(!html.contains("data-view=\"chatbot\""));
    assert_eq!(config_of(&html)["tab"], "open", "falls back to open");
    expect_status!(
        server
            .put(
                "/api/v1/settings/chatbot_tab",
                &w.admin,
                json!({"value": true})
            )
            .await?,
        200
    );
    let (_, html) = page(&server, &w.ana, "/?tab=chatbot").await?;
    assert!(html.contains("data-view=\"chatbot\" aria-current=\"page\""));
    assert!(html.contains("data-count=\"chatbot\""));
    server.stop().await
}

#[tokio::test]
async fn connection_chips_follow_pin_connections_top() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let w = world(&server).await?;
    let (_, html) = page(&server, &w.ana, "/").await?;
    let chips = html.find("id=\"connection-chips\"").unwrap_or(0);
    let list = html.find("id=\"ticket-list\"").unwrap_or(0);
    assert!(chips > list, "under the list by default");
    assert!(html.contains(">Site<span class=\"sr-only\">"));
    expect_status!(
        server
            .put(
                "/api/v1/settings/pin_connections_top",
                &w.admin,
                json!({"value": true})
            )
            .await?,
        200
    );
    let (_, html) = page(&server, &w.ana, "/").await?;
    let chips = html.find("id=\"connection-chips\"").unwrap_or(usize::MAX);
    let list = html.find("id=\"ticket-list\"").unwrap_or(0);
    assert!(chips < list, "pinned above the tabs");
    server.stop().await
}

#[tokio::test]
async fn the_page_with_its_scripts_and_styles_stays_under_150_kb() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let w = world(&server).await?;
    for n in 0..40 {
        visitor_writes(
            &server,
            &w.sales_key,
            &format!("w-{n}"),
            &format!("Pessoa {n}"),
        )
        .await?;
    }
    let (_, html) = page(&server, &w.admin, "/?tab=pending").await?;
    assert_eq!(html.matches("<li class=\"ticket").count(), 40);
    let mut total = html.len();
    // The import map names every page's modules; what this page loads is outside it.
    let (head, rest) = html
        .split_once("<script type=\"importmap\">")
        .unwrap_or_default();
    let (map, tail) = rest.split_once("</script>").unwrap_or_default();
    let mut assets = Vec::new();
    for piece in format!("{head}{tail}").split("\"/assets/").skip(1) {
        let name = piece.split('"').next().unwrap_or_default().to_owned();
        if !assets.contains(&name) {
            assets.push(name);
        }
    }
    // Modules import each other: every attendance script is part of the page.
    let map: Value = serde_json::from_str(map)?;
    for (plain, hashed) in map["imports"].as_object().into_iter().flatten() {
        let hashed = hashed
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("/assets/");
        if (plain.contains("attendance") || plain.contains("common"))
            && !assets.iter().any(|a| a == hashed)
        {
            assets.push(hashed.to_owned());
        }
    }
    assert!(assets.len() >= 7, "{assets:?}");
    for asset in &assets {
        let response = server
            .http
            .get(server.url(&format!("/assets/{asset}")))
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200, "{asset}");
        total += response.bytes().await?.len();
    }
    assert!(
        total < 150 * 1024,
        "page + assets = {total} bytes ({assets:?})"
    );
    server.stop().await
}

/// A multipart body with one file (the test client has no multipart feature).
fn file_form(name: &str, mime: &str, content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "attendance-file-7f3a";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: {mime}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn file_status(
    server: &TestServer,
    token: Option<&str>,
    path: &str,
) -> anyhow::Result<(u16, Option<String>)> {
    let mut request = server.http.get(server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let csp = response
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((response.status().as_u16(), csp))
}

#[tokio::test]
async fn message_files_are_served_only_inside_a_chat_the_caller_may_read() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        visitor_writes(&server, &w.sales_key, "v-file", "Carla Arquivo").await?;
        let ticket = ticket_id(&server, &w.admin, "Carla Arquivo").await?;
        // The admin answers the pending ticket with an image.
        let png = b"\x89PNG\r\n\x1A\n-not-really-an-image";
        let (content_type, body) = file_form("foto.png", "image/png", png);
        let response = server
            .http
            .post(server.url(&format!("/api/v1/tickets/{ticket}/messages")))
            .bearer_auth(&w.admin)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 201, "{}", server.backend);
        let message: Value = response.json().await?;
        let id = message["id"].as_i64().unwrap_or_default();
        let path = format!("/api/v1/tickets/{ticket}/messages/{id}/file");

        let response = server
            .http
            .get(server.url(&path))
            .bearer_auth(&w.admin)
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200, "{}", server.backend);
        assert_eq!(response.headers()["content-type"], "image/png");
        assert!(
            response.headers()["content-security-policy"]
                .to_str()?
                .contains("sandbox")
        );
        assert_eq!(response.bytes().await?.as_ref(), png);

        // Ana (queue of the ticket, no `spy`) may not read it while it waits in the queue.
        assert_eq!(file_status(&server, Some(&w.ana), &path).await?.0, 403);
        // Bruno (another queue) does not see the ticket at all; nobody logged out does either.
        assert_eq!(file_status(&server, Some(&w.bruno), &path).await?.0, 404);
        assert_eq!(file_status(&server, None, &path).await?.0, 401);
        expect_status!(
            server
                .post(
                    &format!("/api/v1/tickets/{ticket}/accept"),
                    &w.ana,
                    json!({})
                )
                .await?,
            200
        );
        assert_eq!(file_status(&server, Some(&w.ana), &path).await?.0, 200);

        // The message through another ticket's chat is not part of it.
        visitor_writes(&server, &w.sales_key, "v-other", "Davi Outro").await?;
        let other = ticket_id(&server, &w.admin, "Davi Outro").await?;
        let elsewhere = format!("/api/v1/tickets/{other}/messages/{id}/file");
        assert_eq!(
            file_status(&server, Some(&w.admin), &elsewhere).await?.0,
            404
        );
        // A text message has no file.
        let text = expect_status!(
            server
                .post(
                    &format!("/api/v1/tickets/{ticket}/messages"),
                    &w.ana,
                    json!({"body": "segue"})
                )
                .await?,
            201
        );
        let text_path = format!(
            "/api/v1/tickets/{ticket}/messages/{}/file",
            text["id"].as_i64().unwrap_or_default()
        );
        assert_eq!(file_status(&server, Some(&w.ana), &text_path).await?.0, 404);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_signature_state_follows_the_switch_and_enforce_signature() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        visitor_writes(&server, &w.sales_key, "v-sig", "Elisa").await?;
        let ticket = ticket_id(&server, &w.admin, "Elisa").await?;
        let path = format!("/attendance/tickets/{ticket}/signature");
        let state = expect_status!(server.get(&path, &w.ana).await?, 200);
        assert_eq!(state, json!({"enabled": true, "enforced": false}));
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/tickets/{ticket}/signature"),
                    &w.admin,
                    json!({"enabled": false})
                )
                .await?,
            200
        );
        let state = expect_status!(server.get(&path, &w.ana).await?, 200);
        assert_eq!(state, json!({"enabled": false, "enforced": false}));
        expect_status!(
            server
                .put(
                    "/api/v1/settings/enforce_signature",
                    &w.admin,
                    json!({"value": true})
                )
                .await?,
            200
        );
        let state = expect_status!(server.get(&path, &w.ana).await?, 200);
        assert_eq!(state, json!({"enabled": true, "enforced": true}));
        let (_, html) = page(&server, &w.ana, "/").await?;
        assert!(
            !html.contains("id=\"signature-toggle\""),
            "no switch when enforced"
        );
        expect_status!(server.get(&path, &w.bruno).await?, 404);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_notification_sound_is_a_wav_we_synthesise() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let w = world(&server).await?;
    let (_, html) = page(&server, &w.ana, "/").await?;
    let url = config_of(&html)["sound_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let response = server.http.get(server.url(&url)).send().await?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let bytes = response.bytes().await?;
    assert!(bytes.starts_with(b"RIFF") && bytes.len() > 1000 && bytes.len() < 16 * 1024);
    server.stop().await
}
