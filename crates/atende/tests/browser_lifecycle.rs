//! A ticket's lifecycle from the chat view, in a real browser (headless Chromium through
//! chromedriver): the agent pauses and resumes a ticket, returns it to the pending queue,
//! accepts and closes it and reopens it; and a reply the provider refused shows as failed with
//! its reason and goes out when the agent resends it. Each step is checked in the page and
//! against the API; screenshots go to `target/screenshots/`.

use anyhow::Context;
use atende_db::Db;
use atende_domain::{ConnectionId, ContactId, QueueId, UserId};
use atende_testkit::browser::{Browser, By, Key};
use atende_testkit::fake_cloud::{FakeCloud, Fault};
use atende_testkit::seed::{self, WrittenChat};
use atende_testkit::{TestServer, expect_status};
use serde_json::json;

const PASSWORD: &str = "agent-password-1";
const ANA: &str = "ana@default.test";

struct World {
    admin: String,
    ana: i64,
    queue: i64,
    key: String,
    cloud_connection: i64,
}

async fn world(server: &TestServer, fake: &FakeCloud) -> anyhow::Result<World> {
    let admin = server.admin_token().await?;
    for (key, value) in [("fast_send", json!(true)), ("allow_pause", json!(true))] {
        expect_status!(
            server
                .put(
                    &format!("/api/v1/settings/{key}"),
                    &admin,
                    json!({"value": value})
                )
                .await?,
            200
        );
    }
    let queue = expect_status!(
        server
            .post(
                "/api/v1/queues",
                &admin,
                json!({"name": "Vendas", "color": "#0b6e4f"})
            )
            .await?,
        201
    )["id"]
        .as_i64()
        .unwrap_or_default();
    let webchat = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "webchat", "name": "Site", "default_queue_id": queue})
            )
            .await?,
        201
    );
    let cloud = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "whatsapp_cloud", "name": "Oficial",
                       "credentials": fake.credentials(60_000)})
            )
            .await?,
        201
    );
    let ana = expect_status!(
        server
            .post(
                "/api/v1/users",
                &admin,
                json!({"email": ANA, "name": "Ana", "password": PASSWORD,
                       "profile": "user", "queue_ids": [queue]})
            )
            .await?,
        201
    )["id"]
        .as_i64()
        .unwrap_or_default();
    Ok(World {
        admin,
        ana,
        queue,
        key: webchat["key"].as_str().unwrap_or_default().to_owned(),
        cloud_connection: cloud["id"].as_i64().unwrap_or_default(),
    })
}

#[tokio::test]
async fn ticket_lifecycle_from_the_chat_view_in_a_real_browser() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let fake = FakeCloud::start().await?;
    let w = world(&server, &fake).await?;
    let browser = Browser::start(&server).await?;
    let outcome = scenarios(&server, &fake, &browser, &w).await;
    if outcome.is_err() {
        let _ = browser.screenshot("failure-browser_lifecycle").await;
    }
    browser.quit().await?;
    server.stop().await?;
    outcome
}

async fn scenarios(
    server: &TestServer,
    fake: &FakeCloud,
    browser: &Browser,
    w: &World,
) -> anyhow::Result<()> {
    browser.login(ANA, PASSWORD).await?;
    let ticket = accept_a_visitor(server, browser, w).await?;
    pause_and_resume(server, browser, w, ticket).await?;
    return_to_pending(server, browser, w, ticket).await?;
    reopen_a_closed_ticket(server, browser, w, ticket).await?;
    resend_a_failed_message(server, fake, browser, w).await?;
    Ok(())
}

/// A visitor writes; Ana opens the pending ticket and accepts it.
async fn accept_a_visitor(
    server: &TestServer,
    browser: &Browser,
    w: &World,
) -> anyhow::Result<i64> {
    let response = server
        .http
        .post(server.url(&format!("/api/widget/v1/{}/messages", w.key)))
        .json(
            &json!({"visitor_id": "visitante-carla", "name": "Carla Cliente",
                      "body": "Quero trocar o endereço de entrega"}),
        )
        .send()
        .await?;
    anyhow::ensure!(response.status().as_u16() == 201, "{}", response.status());
    browser.goto("/?tab=pending").await?;
    browser.wait_for("#attendance[data-ready='true']").await?;
    watch_csp(browser).await?;
    let row = browser
        .wait_for_text("#ticket-list li.ticket", "Carla Cliente")
        .await?;
    let ticket: i64 = row
        .attr("data-id")
        .await?
        .and_then(|id| id.parse().ok())
        .context("the row carries the ticket id")?;
    row.find(By::Css(".ticket-link")).await?.click().await?;
    click(browser, "accept").await?;
    browser.wait_for("#chat[data-status='open']").await?;
    browser
        .wait_for_text(".msg-in .msg-body", "endereço de entrega")
        .await
        .context("the history shows after accepting")?;
    assert_eq!(status_of(server, w, ticket).await?, "open");
    Ok(ticket)
}

/// Pause asks for a reason; the chat and the list show the ticket paused; resume opens it again.
async fn pause_and_resume(
    server: &TestServer,
    browser: &Browser,
    w: &World,
    ticket: i64,
) -> anyhow::Result<()> {
    click(browser, "pause").await?;
    browser.wait_for("#pause-dialog[open]").await?;
    browser
        .wait_for("#pause-reason")
        .await?
        .send_keys("Aguardando o cliente enviar o comprovante")
        .await?;
    browser.wait_for("#pause-submit").await?.click().await?;
    browser
        .wait_for("#chat[data-status='paused']")
        .await
        .context("the chat shows the ticket paused")?;
    browser
        .wait_for("#chat [data-action='resume']:not([hidden])")
        .await?;
    assert!(
        hidden(browser, "pause").await?,
        "a paused ticket offers resume, not pause"
    );
    browser
        .wait_for_text(
            &format!("#ticket-list li[data-id='{ticket}'] .status-tag"),
            "Pausado",
        )
        .await
        .context("the list marks the row paused")?;
    assert_eq!(status_of(server, w, ticket).await?, "paused");
    browser.screenshot("lifecycle-paused").await?;

    click(browser, "resume").await?;
    browser
        .wait_for("#chat[data-status='open']")
        .await
        .context("resume opens the ticket again")?;
    browser
        .wait_for("#chat [data-action='pause']:not([hidden])")
        .await?;
    assert_eq!(status_of(server, w, ticket).await?, "open");
    Ok(())
}

/// "Return to queue" gives the ticket back: pending, no owner, to be accepted again.
async fn return_to_pending(
    server: &TestServer,
    browser: &Browser,
    w: &World,
    ticket: i64,
) -> anyhow::Result<()> {
    click(browser, "return").await?;
    browser
        .wait_for("#chat[data-status='pending']")
        .await
        .context("the chat shows the ticket pending")?;
    browser
        .wait_for("#chat [data-action='accept']:not([hidden])")
        .await?;
    browser.wait_for_text(".toast", "devolvido à fila").await?;
    let detail = expect_status!(
        server
            .get(&format!("/api/v1/tickets/{ticket}"), &w.admin)
            .await?,
        200
    );
    assert_eq!(detail["status"], "pending", "{detail}");
    assert!(detail["owner_id"].is_null(), "no owner any more: {detail}");
    browser.screenshot("lifecycle-returned").await?;
    Ok(())
}

/// Accepted again and closed, the ticket offers "Reopen", which opens it for Ana.
async fn reopen_a_closed_ticket(
    server: &TestServer,
    browser: &Browser,
    w: &World,
    ticket: i64,
) -> anyhow::Result<()> {
    click(browser, "accept").await?;
    browser.wait_for("#chat[data-status='open']").await?;
    click(browser, "close").await?;
    browser.wait_for("#close-dialog[open]").await?;
    browser.wait_for("#close-submit").await?.click().await?;
    browser
        .wait_for("#chat[data-status='closed']")
        .await
        .context("the chat shows the ticket closed")?;
    browser
        .wait_for_text("#chat-notice", "Atendimento encerrado")
        .await?;
    assert_eq!(status_of(server, w, ticket).await?, "closed");

    click(browser, "reopen").await?;
    browser
        .wait_for("#chat[data-status='open']")
        .await
        .context("reopen opens the ticket")?;
    browser
        .wait_for("#composer:not([hidden])")
        .await
        .context("Ana can write again")?;
    let detail = expect_status!(
        server
            .get(&format!("/api/v1/tickets/{ticket}"), &w.admin)
            .await?,
        200
    );
    assert_eq!(detail["status"], "open", "{detail}");
    assert_eq!(detail["owner_id"], w.ana, "{detail}");
    browser.screenshot("lifecycle-reopened").await?;
    assert_no_csp_violations(browser).await
}

/// WhatsApp (official API) refuses the first reply: the bubble shows "failed" with the reason
/// and a resend button; resending sends it, and the same message moves on to sent.
async fn resend_a_failed_message(
    server: &TestServer,
    fake: &FakeCloud,
    browser: &Browser,
    w: &World,
) -> anyhow::Result<()> {
    let ticket = cloud_ticket(server, w, "+5511955554444").await?;
    fake.push_faults([Fault::Error {
        status: 400,
        code: 131026,
        retry_after_secs: None,
    }]);
    browser.goto(&format!("/?ticket={ticket}")).await?;
    browser.wait_for("#attendance[data-ready='true']").await?;
    watch_csp(browser).await?;
    browser.wait_for("#chat[data-status='open']").await?;
    browser
        .wait_for_text(".msg-in .msg-body", "Meu pedido não chegou")
        .await?;
    let input = browser.wait_for("#message-input").await?;
    input
        .send_keys("Vou verificar com a transportadora")
        .await?;
    input.send_keys(Key::Enter).await?;
    let failed = browser
        .wait_for(".msg-row[data-status='failed']")
        .await
        .context("the refused reply shows as failed")?;
    let id = failed.attr("data-id").await?.unwrap_or_default();
    browser
        .wait_for_text(".msg-row[data-status='failed'] .msg-failed", "131026")
        .await
        .context("with the provider's reason")?;
    assert_eq!(fake.send_count(), 0, "refused, so nothing went out");
    browser.screenshot("lifecycle-failed-message").await?;

    browser
        .wait_for(".msg-row[data-status='failed'] button.resend")
        .await?
        .click()
        .await?;
    let sent = format!(
        ".msg-row[data-id='{id}'][data-status='sent'], .msg-row[data-id='{id}'][data-status='delivered'], \
         .msg-row[data-id='{id}'][data-status='read']"
    );
    browser
        .wait_for(&sent)
        .await
        .context("the resent message moves on to sent")?;
    // The bubble was drawn again when it went back to the queue: no failure note any more.
    assert!(
        browser
            .driver
            .find_all(By::Css(".msg-failed"))
            .await?
            .is_empty(),
        "the failure note went away"
    );
    let sends = fake.sends();
    assert_eq!(sends.len(), 1, "sent once, on the resend");
    assert!(
        sends[0]
            .text
            .as_deref()
            .is_some_and(|t| t.contains("transportadora")),
        "{:?}",
        sends[0].text
    );
    browser.screenshot("lifecycle-resent").await?;
    assert_no_csp_violations(browser).await
}

// ---- helpers ----

/// Records the page's Content-Security-Policy violations from now on (rows and bubbles the
/// scripts build later must not need inline styles or scripts either).
async fn watch_csp(browser: &Browser) -> anyhow::Result<()> {
    browser
        .driver
        .execute(
            "window.cspViolations = []; \
             document.addEventListener('securitypolicyviolation', \
               (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));",
            Vec::new(),
        )
        .await?;
    Ok(())
}

async fn assert_no_csp_violations(browser: &Browser) -> anyhow::Result<()> {
    let seen = browser
        .driver
        .execute(
            "return window.cspViolations ?? ['not watched'];",
            Vec::new(),
        )
        .await?;
    // An error, not a panic: the browser still quits and the failure screenshot is taken.
    anyhow::ensure!(
        seen.json() == &json!([]),
        "CSP violations in the page: {}",
        seen.json()
    );
    Ok(())
}

/// Clicks the chat header's button for `action`, once it shows.
async fn click(browser: &Browser, action: &str) -> anyhow::Result<()> {
    browser
        .wait_for(&format!("#chat [data-action='{action}']:not([hidden])"))
        .await?
        .click()
        .await?;
    Ok(())
}

async fn hidden(browser: &Browser, action: &str) -> anyhow::Result<bool> {
    let button = browser
        .wait_for(&format!("#chat [data-action='{action}']"))
        .await?;
    Ok(button.attr("hidden").await?.is_some())
}

async fn status_of(server: &TestServer, w: &World, ticket: i64) -> anyhow::Result<String> {
    let detail = expect_status!(
        server
            .get(&format!("/api/v1/tickets/{ticket}"), &w.admin)
            .await?,
        200
    );
    Ok(detail["status"].as_str().unwrap_or_default().to_owned())
}

/// An open WhatsApp Cloud ticket of Ana's whose contact wrote a moment ago (the 24 h window of
/// the official API is open).
async fn cloud_ticket(server: &TestServer, w: &World, phone: &str) -> anyhow::Result<i64> {
    let contact = expect_status!(
        server
            .post(
                "/api/v1/contacts",
                &w.admin,
                json!({"name": "Bruna Oficial",
                       "identities": [{"channel": "whatsapp_cloud", "external_id": phone}]})
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
        .context("no default tenant")?;
    let chat = WrittenChat {
        owner: Some(UserId(w.ana)),
        queue: Some(QueueId(w.queue)),
        ..WrittenChat::open(ContactId(contact), ConnectionId(w.cloud_connection))
    };
    let ticket = seed::ticket_with_inbound(
        &db,
        tenant,
        &chat,
        &format!("wamid.IN{phone}"),
        "Meu pedido não chegou",
    )
    .await?;
    db.close().await;
    Ok(ticket.id.0)
}
