//! Live events over the WebSocket `/api/v1/events` (SPEC §13) and presence from live connections
//! (SPEC §1), against the real server with a real WebSocket client: who may connect, what each
//! user receives, replay with `since`, `resync`, and online / paused / offline.

use anyhow::{Context, bail};
use atende_testkit::{TestServer, expect_status};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame it expects.
const WAIT: Duration = Duration::from_secs(5);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a test client proves who it is.
enum Credential<'a> {
    Ticket(&'a str),
    Cookie {
        session: &'a str,
        origin: Option<&'a str>,
    },
    None,
}

/// One live connection of a test.
struct Live {
    socket: Socket,
    /// Every event frame received so far, in order (control frames excluded).
    seen: Vec<Value>,
}

impl Live {
    /// Opens a socket with a fresh ws-ticket of `token`.
    async fn open(server: &TestServer, token: &str, query: &str) -> anyhow::Result<Live> {
        let ticket = ws_ticket(server, token).await?;
        Live::open_with(server, Credential::Ticket(&ticket), query).await
    }

    async fn open_with(
        server: &TestServer,
        credential: Credential<'_>,
        query: &str,
    ) -> anyhow::Result<Live> {
        let mut url = format!("ws://{}/api/v1/events?{query}", server.addr);
        let mut request = match &credential {
            Credential::Ticket(ticket) => {
                url.push_str(&format!("&ticket={ticket}"));
                url.as_str().into_client_request()?
            }
            _ => url.as_str().into_client_request()?,
        };
        if let Credential::Cookie { session, origin } = credential {
            request
                .headers_mut()
                .insert("cookie", format!("atende_session={session}").parse()?);
            if let Some(origin) = origin {
                request.headers_mut().insert("origin", origin.parse()?);
            }
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await?;
        Ok(Live {
            socket,
            seen: Vec::new(),
        })
    }

    /// The next text frame, as JSON.
    async fn next(&mut self) -> anyhow::Result<Value> {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .context("no frame within the wait")?
                .context("the socket ended")??;
            match frame {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(text.as_str())?;
                    if value.get("id").is_some() {
                        self.seen.push(value.clone());
                    }
                    return Ok(value);
                }
                Message::Close(frame) => bail!("the server closed the socket: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// Skips frames until one matches; fails after the wait.
    async fn until(
        &mut self,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if tokio::time::Instant::now() > deadline {
                bail!("no {what} within the wait; saw {:?}", self.seen);
            }
            let frame = self
                .next()
                .await
                .with_context(|| format!("waiting for {what}"))?;
            if matches(&frame) {
                return Ok(frame);
            }
        }
    }

    /// The presence event of `user` saying `presence`.
    async fn presence(&mut self, user: i64, presence: &str) -> anyhow::Result<Value> {
        self.until(&format!("presence {presence} of user {user}"), |f| {
            f["type"] == "presence"
                && f["data"]["user_id"] == user
                && f["data"]["presence"] == presence
        })
        .await
    }

    /// Asserts that nothing matching arrives within `quiet`.
    async fn nothing(
        &mut self,
        quiet: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => return Ok(()),
                Ok(None) => bail!("the socket ended"),
                Ok(Some(frame)) => {
                    if let Message::Text(text) = frame? {
                        let value: Value = serde_json::from_str(text.as_str())?;
                        if matches(&value) {
                            bail!("unexpected frame {value}");
                        }
                    }
                }
            }
        }
    }

    async fn send(&mut self, frame: Value) -> anyhow::Result<()> {
        self.socket.send(Message::text(frame.to_string())).await?;
        Ok(())
    }

    /// Closes cleanly (code 1000): the user goes offline at once if it was their last socket.
    async fn close(mut self) -> anyhow::Result<()> {
        self.socket
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await?;
        // Drain until the server's close answer.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(WAIT, self.socket.next()).await {}
        Ok(())
    }
}

async fn ws_ticket(server: &TestServer, token: &str) -> anyhow::Result<String> {
    let body = expect_status!(
        server
            .post("/api/v1/auth/ws-ticket", token, json!({}))
            .await?,
        200
    );
    assert_eq!(body["expires_in"], 30);
    body["ticket"]
        .as_str()
        .map(str::to_owned)
        .context("no ticket in the answer")
}

/// The HTTP status with which a handshake was refused.
async fn refused(
    server: &TestServer,
    credential: Credential<'_>,
    query: &str,
) -> anyhow::Result<u16> {
    match Live::open_with(server, credential, query).await {
        Ok(_) => bail!("the handshake was accepted"),
        Err(error) => match error.downcast::<tungstenite::Error>() {
            Ok(tungstenite::Error::Http(response)) => Ok(response.status().as_u16()),
            Ok(other) => bail!("refused without an HTTP answer: {other}"),
            Err(other) => Err(other),
        },
    }
}

/// Logs in and returns the panel's session cookie value.
async fn session_cookie(
    server: &TestServer,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let response = server
        .http
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().is_success(),
        "login failed: {}",
        response.status()
    );
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("atende_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
        .context("no session cookie")
}

/// The admin and an agent of queue "Vendas", with their API tokens.
struct People {
    admin: String,
    agent: String,
    agent_id: i64,
    /// The agent's queue, "Vendas".
    sales: i64,
}

async fn people(server: &TestServer) -> anyhow::Result<People> {
    let admin = server.admin_token().await?;
    let queue = expect_status!(
        server
            .post(
                "/api/v1/queues",
                &admin,
                json!({"name": "Vendas", "color": "#112233"})
            )
            .await?,
        201
    )["id"]
        .as_i64()
        .context("queue id")?;
    let agent_id = expect_status!(
        server
            .post(
                "/api/v1/users",
                &admin,
                json!({"email": "agente@default.test", "name": "Agente", "password": "agent-password-1",
                       "profile": "user", "queue_ids": [queue]})
            )
            .await?,
        201
    )["id"]
        .as_i64()
        .context("agent id")?;
    let agent = server
        .login("agente@default.test", "agent-password-1")
        .await?;
    Ok(People {
        admin,
        agent,
        agent_id,
        sales: queue,
    })
}

async fn stored_presence(server: &TestServer, admin: &str, user: i64) -> anyhow::Result<Value> {
    let body = expect_status!(
        server.get(&format!("/api/v1/users/{user}"), admin).await?,
        200
    );
    Ok(json!({ "presence": body["presence"], "pause_reason": body["pause_reason"] }))
}

#[tokio::test]
async fn live_socket_refuses_missing_or_foreign_credentials_before_the_upgrade()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let who = server.backend;
        assert_eq!(
            refused(&server, Credential::None, "").await?,
            401,
            "{who}: no credentials"
        );
        assert_eq!(
            refused(&server, Credential::Ticket("wst_made_up"), "").await?,
            401,
            "{who}: unknown ticket"
        );
        let session = session_cookie(
            &server,
            atende_testkit::ADMIN_EMAIL,
            atende_testkit::ADMIN_PASSWORD,
        )
        .await?;
        let cross_site = Credential::Cookie {
            session: &session,
            origin: Some("https://evil.example"),
        };
        assert_eq!(
            refused(&server, cross_site, "").await?,
            403,
            "{who}: cross-site origin"
        );
        assert_eq!(
            refused(
                &server,
                Credential::Cookie {
                    session: "atd_not_a_session",
                    origin: None
                },
                ""
            )
            .await?,
            401,
            "{who}: unknown session"
        );

        // A plain GET (no upgrade) with valid credentials is told to upgrade.
        let token = server.admin_token().await?;
        let (status, body) = server.get("/api/v1/events", &token).await?;
        assert_eq!(status, 426, "{who}: {body}");

        let own_origin = format!("http://{}", server.addr);
        let cookie = Credential::Cookie {
            session: &session,
            origin: Some(&own_origin),
        };
        let mut live = Live::open_with(&server, cookie, "").await?;
        let hello = live.next().await?;
        assert_eq!(hello["type"], "hello", "{who}: {hello}");
        assert!(hello["last_id"].is_i64());
        live.close().await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn ws_ticket_opens_one_socket_for_its_user_only() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let who = server.backend;
        let token = server.admin_token().await?;
        let (status, _) = server
            .call(
                reqwest::Method::POST,
                "/api/v1/auth/ws-ticket",
                None,
                Some(&json!({})),
            )
            .await?;
        assert_eq!(status, 401, "{who}: a ticket needs a token");
        let ticket = ws_ticket(&server, &token).await?;
        let mut live = Live::open_with(&server, Credential::Ticket(&ticket), "").await?;
        assert_eq!(live.next().await?["type"], "hello");
        assert_eq!(
            refused(&server, Credential::Ticket(&ticket), "").await?,
            401,
            "{who}: a ticket works once"
        );
        live.close().await?;

        // A ticket dies with the token it came from.
        let ticket = ws_ticket(&server, &token).await?;
        expect_status!(
            server
                .post("/api/v1/auth/logout", &token, json!({}))
                .await?,
            204
        );
        assert_eq!(
            refused(&server, Credential::Ticket(&ticket), "").await?,
            401,
            "{who}: ticket of a logged-out token"
        );
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn presence_is_online_while_connected_and_offline_after_the_last_socket_closes()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let who = server.backend;
        let p = people(&server).await?;
        assert_eq!(
            stored_presence(&server, &p.admin, p.agent_id).await?["presence"],
            "offline"
        );
        let mut admin = Live::open(&server, &p.admin, "").await?;
        admin.until("hello", |f| f["type"] == "hello").await?;

        let mut first = Live::open(&server, &p.agent, "").await?;
        admin.presence(p.agent_id, "online").await?;
        first
            .presence(p.agent_id, "online")
            .await
            .context("the agent hears their own change")?;
        assert_eq!(
            stored_presence(&server, &p.admin, p.agent_id).await?["presence"],
            "online",
            "{who}"
        );

        // A second tab changes nothing; closing one of two keeps the agent online.
        let second = Live::open(&server, &p.agent, "").await?;
        first.close().await?;
        admin
            .nothing(Duration::from_millis(300), |f| {
                f["type"] == "presence" && f["data"]["user_id"] == p.agent_id
            })
            .await?;
        assert_eq!(
            stored_presence(&server, &p.admin, p.agent_id).await?["presence"],
            "online",
            "{who}"
        );

        second.close().await?;
        admin.presence(p.agent_id, "offline").await?;
        assert_eq!(
            stored_presence(&server, &p.admin, p.agent_id).await?["presence"],
            "offline",
            "{who}"
        );
        // Login alone never makes anyone online.
        server
            .login("agente@default.test", "agent-password-1")
            .await?;
        assert_eq!(
            stored_presence(&server, &p.admin, p.agent_id).await?["presence"],
            "offline",
            "{who}"
        );
        admin.close().await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn pause_is_refused_without_allow_pause_and_announced_with_its_reason() -> anyhow::Result<()>
{
    for server in TestServer::all().await? {
        let who = server.backend;
        let p = people(&server).await?;
        let mut admin = Live::open(&server, &p.admin, "").await?;
        let mut agent = Live::open(&server, &p.agent, "").await?;
        admin.presence(p.agent_id, "online").await?;

        agent
            .send(json!({"type": "pause", "reason": "almoço"}))
            .await?;
        let error = agent
            .until("an error frame", |f| f["type"] == "error")
            .await?;
        assert_eq!(error["code"], "forbidden", "{who}: {error}");
        assert!(
            error["message"]
                .as_str()
                .unwrap_or_default()
                .contains("allow_pause")
        );

        expect_status!(
            server
                .put(
                    "/api/v1/settings/allow_pause",
                    &p.admin,
                    json!({"value": true})
                )
                .await?,
            200
        );
        agent
            .send(json!({"type": "pause", "reason": "almoço"}))
            .await?;
        let paused = admin.presence(p.agent_id, "paused").await?;
        assert_eq!(paused["data"]["pause_reason"], "almoço", "{who}");
        assert_eq!(
            stored_presence(&server, &p.admin, p.agent_id).await?,
            json!({"presence": "paused", "pause_reason": "almoço"}),
            "{who}"
        );

        agent.send(json!({"type": "resume"})).await?;
        let online = admin.presence(p.agent_id, "online").await?;
        assert_eq!(online["data"]["pause_reason"], Value::Null);

        // Unknown frames are answered, not fatal.
        agent.send(json!({"type": "dance"})).await?;
        let error = agent
            .until("an error frame", |f| f["type"] == "error")
            .await?;
        assert_eq!(error["code"], "bad_frame");
        agent.send(json!({"type": "ping"})).await?;
        agent.until("pong", |f| f["type"] == "pong").await?;

        // A pause ends with the last connection: the next one is online.
        agent.send(json!({"type": "pause"})).await?;
        admin.presence(p.agent_id, "paused").await?;
        agent.close().await?;
        admin.presence(p.agent_id, "offline").await?;
        let again = Live::open(&server, &p.agent, "").await?;
        admin.presence(p.agent_id, "online").await?;
        again.close().await?;
        admin.close().await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_silent_socket_is_closed_and_its_user_offline_after_three_missed_heartbeats()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let who = server.backend;
        let p = people(&server).await?;
        let mut admin = Live::open(&server, &p.admin, "").await?;
        admin.until("hello", |f| f["type"] == "hello").await?;

        // Declares a 300 ms heartbeat (dead after 900 ms of silence), then never pings.
        let mut silent = Live::open(&server, &p.agent, "heartbeat_ms=300").await?;
        admin.presence(p.agent_id, "online").await?;
        let started = std::time::Instant::now();
        admin.presence(p.agent_id, "offline").await?;
        assert!(
            started.elapsed() >= Duration::from_millis(800),
            "{who}: too early"
        );
        let closed = loop {
            match tokio::time::timeout(WAIT, silent.socket.next()).await? {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => bail!("{who}: expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(closed.map(|f| u16::from(f.code)), Some(4008), "{who}");

        // One that pings stays online.
        let mut beating = Live::open(&server, &p.agent, "heartbeat_ms=300").await?;
        admin.presence(p.agent_id, "online").await?;
        for _ in 0..15 {
            beating.send(json!({"type": "ping"})).await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        admin
            .nothing(Duration::from_millis(10), |f| {
                f["type"] == "presence" && f["data"]["presence"] == "offline"
            })
            .await?;
        assert_eq!(
            stored_presence(&server, &p.admin, p.agent_id).await?["presence"],
            "online",
            "{who}"
        );
        beating.close().await?;
        admin.close().await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_dropped_socket_keeps_presence_for_a_short_grace_so_page_changes_do_not_flap()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let p = people(&server).await?;
        let mut admin = Live::open(&server, &p.admin, "").await?;
        // A 1 s heartbeat: the grace is one period.
        let page = Live::open(&server, &p.agent, "heartbeat_ms=1000").await?;
        admin.presence(p.agent_id, "online").await?;
        // Navigating to another page: the socket drops without a close frame, a new one opens.
        let ticket = ws_ticket(&server, &p.agent).await?;
        drop(page);
        let next_page =
            Live::open_with(&server, Credential::Ticket(&ticket), "heartbeat_ms=1000").await?;
        admin
            .nothing(Duration::from_millis(1500), |f| {
                f["type"] == "presence" && f["data"]["user_id"] == p.agent_id
            })
            .await?;
        // Leaving for good: offline once the grace is over.
        let started = std::time::Instant::now();
        drop(next_page);
        admin.presence(p.agent_id, "offline").await?;
        assert!(
            started.elapsed() >= Duration::from_millis(900),
            "offline before the grace ran out"
        );
        admin.close().await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn reconnecting_with_since_replays_every_missed_event_in_order() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let who = server.backend;
        let p = people(&server).await?;
        expect_status!(
            server
                .put(
                    "/api/v1/settings/allow_pause",
                    &p.admin,
                    json!({"value": true})
                )
                .await?,
            200
        );
        let mut admin = Live::open(&server, &p.admin, "").await?;
        admin.until("hello", |f| f["type"] == "hello").await?;
        let first = Live::open(&server, &p.agent, "").await?;
        let last = admin.presence(p.agent_id, "online").await?["id"]
            .as_i64()
            .context("id")?;
        // The admin's network blips: meanwhile the agent pauses and leaves.
        drop(admin);
        let mut agent = first;
        agent
            .send(json!({"type": "pause", "reason": "café"}))
            .await?;
        agent.presence(p.agent_id, "paused").await?;
        agent.close().await?;
        tokio::time::sleep(Duration::from_millis(200)).await;

        let mut admin = Live::open(&server, &p.admin, &format!("since={last}")).await?;
        let hello = admin.next().await?;
        assert_eq!(hello["type"], "hello", "{who}: {hello}");
        admin.presence(p.agent_id, "paused").await?;
        admin.presence(p.agent_id, "offline").await?;
        let ids: Vec<i64> = admin.seen.iter().filter_map(|f| f["id"].as_i64()).collect();
        assert!(
            ids.first().is_some_and(|first| *first == last + 1),
            "{who}: nothing missed after {last}: {ids:?}"
        );
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "{who}: ids increase one by one: {ids:?}"
        );
        admin.close().await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_too_old_or_future_since_asks_for_resync() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let who = server.backend;
        let token = server.admin_token().await?;
        let mut live = Live::open(&server, &token, "").await?;
        let last = live.next().await?["last_id"].as_i64().context("last_id")?;
        live.close().await?;
        for since in [0, last + 1_000_000] {
            let mut live = Live::open(&server, &token, &format!("since={since}")).await?;
            let first = live.next().await?;
            assert_eq!(first["type"], "resync", "{who}: since={since}: {first}");
            assert!(first["last_id"].as_i64().is_some_and(|id| id >= last));
            live.close().await?;
        }
        let (status, _) = server.get("/api/v1/events?since=yesterday", &token).await?;
        assert_eq!(status, 400, "{who}: a malformed since");
        server.stop().await?;
    }
    Ok(())
}

/// A web-chat connection whose new tickets land in `queue`; answers its public key.
async fn widget(
    server: &TestServer,
    admin: &str,
    name: &str,
    queue: i64,
) -> anyhow::Result<String> {
    let body = expect_status!(
        server
            .post(
                "/api/v1/connections",
                admin,
                json!({"kind": "webchat", "name": name, "default_queue_id": queue})
            )
            .await?,
        201
    );
    body["key"].as_str().map(str::to_owned).context("no key")
}

async fn visitor_says(
    server: &TestServer,
    key: &str,
    visitor: &str,
    body: &str,
) -> anyhow::Result<()> {
    let response = server
        .http
        .post(server.url(&format!("/api/widget/v1/{key}/messages")))
        .json(&json!({"visitor_id": visitor, "name": visitor, "body": body}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().as_u16() == 201,
        "widget post: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(())
}

async fn queue(server: &TestServer, admin: &str, name: &str) -> anyhow::Result<i64> {
    expect_status!(
        server
            .post(
                "/api/v1/queues",
                admin,
                json!({"name": name, "color": "#445566"})
            )
            .await?,
        201
    )["id"]
        .as_i64()
        .context("queue id")
}

/// The `message.created` frame of the message whose body (as the admin sees it) is `body`.
async fn message_frame(live: &mut Live, body: &str) -> anyhow::Result<Value> {
    live.until(&format!("message '{body}'"), |f| {
        f["type"] == "message.created" && f["data"]["body"] == body
    })
    .await
}

fn about_ticket(frame: &Value, ticket: i64) -> bool {
    frame["data"]["ticket_id"] == ticket
        || (frame["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("ticket."))
            && frame["data"]["id"] == ticket)
}

#[tokio::test]
async fn ticket_events_reach_exactly_the_users_allowed_to_see_the_ticket() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let who = server.backend;
        let p = people(&server).await?;
        let sales = p.sales;
        let support = queue(&server, &p.admin, "Suporte").await?;
        let sales_site = widget(&server, &p.admin, "Site Vendas", sales).await?;
        let support_site = widget(&server, &p.admin, "Site Suporte", support).await?;
        let mut admin = Live::open(&server, &p.admin, "").await?;
        let mut agent = Live::open(&server, &p.agent, "").await?;
        admin.presence(p.agent_id, "online").await?;
        agent.presence(p.agent_id, "online").await?;

        // A new ticket in the agent's queue: both hear of it; the agent, without `spy`, gets the
        // pending ticket's message without its body.
        visitor_says(&server, &sales_site, "ana", "quero comprar").await?;
        let ticket_a = message_frame(&mut admin, "quero comprar").await?["data"]["ticket_id"]
            .as_i64()
            .context("ticket")?;
        assert!(
            admin
                .seen
                .iter()
                .any(|f| f["type"] == "ticket.created" && f["data"]["id"] == ticket_a),
            "{who}"
        );
        agent
            .until("ticket.created", |f| {
                f["type"] == "ticket.created" && f["data"]["id"] == ticket_a
            })
            .await?;
        let redacted = agent
            .until("the message", |f| {
                f["type"] == "message.created" && f["data"]["ticket_id"] == ticket_a
            })
            .await?;
        assert_eq!(redacted["data"]["redacted"], true, "{who}: {redacted}");
        assert!(redacted["data"].get("body").is_none(), "{who}: {redacted}");

        // A ticket of another queue: only the admin.
        visitor_says(&server, &support_site, "bia", "meu pedido quebrou").await?;
        let ticket_b = message_frame(&mut admin, "meu pedido quebrou").await?["data"]["ticket_id"]
            .as_i64()
            .context("ticket")?;
        // A later event the agent does see marks the point by which B would have arrived.
        visitor_says(&server, &sales_site, "ana", "é urgente").await?;
        message_frame(&mut admin, "é urgente").await?;
        agent
            .until("the second message of A", |f| {
                f["type"] == "message.created"
                    && f["data"]["ticket_id"] == ticket_a
                    && f["id"].as_i64() > redacted["id"].as_i64()
            })
            .await?;
        assert!(
            !agent.seen.iter().any(|f| about_ticket(f, ticket_b)),
            "{who}: the agent heard of ticket B: {:?}",
            agent.seen
        );

        // With `spy`, the agent reads pending messages live (the settings change applies at once).
        expect_status!(
            server
                .put(
                    "/api/v1/settings/feature_controls",
                    &p.admin,
                    json!({"value": ["spy"]})
                )
                .await?,
            200
        );
        visitor_says(&server, &sales_site, "ana", "alguém aí?").await?;
        message_frame(&mut agent, "alguém aí?").await?;

        // Transferred to a queue the agent is not in: the agent is told to drop it, live.
        expect_status!(
            server
                .post(
                    &format!("/api/v1/tickets/{ticket_a}/transfer"),
                    &p.admin,
                    json!({"queue_id": support})
                )
                .await?,
            200
        );
        let hidden = agent
            .until("ticket.hidden", |f| f["type"] == "ticket.hidden")
            .await?;
        assert_eq!(hidden["data"], json!({"ticket_id": ticket_a}), "{who}");
        assert!(hidden["id"].is_i64());
        admin
            .until("the transfer", |f| {
                f["type"].as_str().is_some_and(|t| t.starts_with("ticket."))
                    && f["data"]["id"] == ticket_a
                    && f["data"]["queue_id"] == support
            })
            .await?;
        // And hears nothing more of it.
        visitor_says(&server, &sales_site, "ana", "oi?").await?;
        message_frame(&mut admin, "oi?").await?;
        agent
            .nothing(Duration::from_millis(300), |f| about_ticket(f, ticket_a))
            .await?;

        agent.close().await?;
        admin.close().await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_wallet_owner_who_pauses_overflows_their_pending_wallet_tickets() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let who = server.backend;
        let p = people(&server).await?;
        for (key, value) in [
            ("force_wallet_routing", true),
            ("wallet_overflow", true),
            ("allow_pause", true),
        ] {
            expect_status!(
                server
                    .put(
                        &format!("/api/v1/settings/{key}"),
                        &p.admin,
                        json!({"value": value})
                    )
                    .await?,
                200
            );
        }
        let sales = p.sales;
        let site = widget(&server, &p.admin, "Site", sales).await?;
        expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &p.admin,
                    json!({"name": "Carla", "identities": [{"channel": "webchat", "external_id": "carla"}], "wallet_user_ids": [p.agent_id]})
                )
                .await?,
            201
        );
        let mut admin = Live::open(&server, &p.admin, "").await?;
        let mut agent = Live::open(&server, &p.agent, "").await?;
        admin.presence(p.agent_id, "online").await?;

        // Routed to the online wallet owner; the owner hands it back to the queue.
        visitor_says(&server, &site, "carla", "oi, sou a Carla").await?;
        let ticket = message_frame(&mut admin, "oi, sou a Carla").await?["data"]["ticket_id"]
            .as_i64()
            .context("ticket")?;
        let detail = expect_status!(
            server
                .get(&format!("/api/v1/tickets/{ticket}"), &p.admin)
                .await?,
            200
        );
        assert_eq!(
            detail["owner_id"], p.agent_id,
            "{who}: routed to the wallet owner: {detail}"
        );
        expect_status!(
            server
                .post(
                    &format!("/api/v1/tickets/{ticket}/return"),
                    &p.agent,
                    json!({})
                )
                .await?,
            200
        );
        let pending = expect_status!(
            server
                .get(&format!("/api/v1/tickets/{ticket}"), &p.admin)
                .await?,
            200
        );
        assert_eq!(pending["status"], "pending", "{who}: {pending}");
        assert_eq!(pending["wallet_overflowed"], false, "{who}");

        // Pausing makes the owner unavailable: the ticket overflows to the queue, live.
        agent
            .send(json!({"type": "pause", "reason": "reunião"}))
            .await?;
        admin.presence(p.agent_id, "paused").await?;
        admin
            .until("the overflow", |f| {
                f["type"].as_str().is_some_and(|t| t.starts_with("ticket."))
                    && f["data"]["id"] == ticket
                    && f["data"]["wallet_overflowed"] == true
            })
            .await?;
        let overflowed = expect_status!(
            server
                .get(&format!("/api/v1/tickets/{ticket}"), &p.admin)
                .await?,
            200
        );
        assert_eq!(overflowed["wallet_overflowed"], true, "{who}: {overflowed}");
        agent.close().await?;
        admin.close().await?;
        server.stop().await?;
    }
    Ok(())
}
