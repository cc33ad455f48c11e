//! The attendance screen in a real browser (headless Chromium through chromedriver), one
//! scenario after another in a single browser: a visitor writes on the web-chat widget and the
//! ticket appears live in the agent's pending tab with the counter going up; the agent accepts,
//! answers with a quick reply, and the widget shows the answer; closing needs the demand; a
//! transfer to another queue takes the ticket away live from the agents of the old queue;
//! refusals read in the agent's language; the list pages as it scrolls; and the screen works at
//! phone width. Screenshots go to `target/screenshots/`.

use anyhow::{Context, bail};
use atende_testkit::browser::{Browser, By, Key};
use atende_testkit::fake_cloud::{APP_SECRET, FakeCloud};
use atende_testkit::{TestServer, expect_status};
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "agent-password-1";

struct World {
    admin: String,
    bruno: String,
    support: i64,
    key: String,
}

async fn world(server: &TestServer) -> anyhow::Result<World> {
    let admin = server.admin_token().await?;
    for (key, value) in [
        ("fast_send", json!(true)),
        ("require_demand_on_close", json!(true)),
        ("audio_waveform", json!(true)),
    ] {
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
    let mut queues = Vec::new();
    for (name, color) in [("Vendas", "#0b6e4f"), ("Suporte", "#8e44ad")] {
        let queue = expect_status!(
            server
                .post(
                    "/api/v1/queues",
                    &admin,
                    json!({"name": name, "color": color})
                )
                .await?,
            201
        );
        queues.push(queue["id"].as_i64().unwrap_or_default());
    }
    let connection = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "webchat", "name": "Site", "default_queue_id": queues[0]})
            )
            .await?,
        201
    );
    for (email, name) in [("ana@default.test", "Ana"), ("bruno@default.test", "Bruno")] {
        expect_status!(
            server
                .post(
                    "/api/v1/users",
                    &admin,
                    json!({"email": email, "name": name, "password": PASSWORD,
                           "profile": "user", "queue_ids": [queues[0]]})
                )
                .await?,
            201
        );
    }
    expect_status!(
        server
            .post(
                "/api/v1/demands",
                &admin,
                json!({"name": "Dúvida sobre pedido"})
            )
            .await?,
        201
    );
    expect_status!(
        server
            .post(
                "/api/v1/quick-replies",
                &admin,
                json!({"shortcut": "bomdia", "body": "Bom dia! Como posso ajudar?", "global": true})
            )
            .await?,
        201
    );
    Ok(World {
        bruno: server.login("bruno@default.test", PASSWORD).await?,
        admin,
        support: queues[1],
        key: connection["key"].as_str().unwrap_or_default().to_owned(),
    })
}

#[tokio::test]
async fn attendance_screen_in_a_real_browser() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let w = world(&server).await?;
    let browser = Browser::start(&server).await?;
    let outcome = scenarios(&server, &browser, &w).await;
    if outcome.is_err() {
        let _ = browser.screenshot("failure-browser_attendance").await;
    }
    browser.quit().await?;
    server.stop().await?;
    outcome
}

async fn scenarios(server: &TestServer, browser: &Browser, w: &World) -> anyhow::Result<()> {
    browser.login("ana@default.test", PASSWORD).await?;
    let ticket = visitor_reaches_the_pending_tab_live(server, browser, w).await?;
    accept_answer_with_a_quick_reply_and_the_widget_shows_it(browser).await?;
    refusals_read_in_the_agents_language(browser, ticket).await?;
    closing_needs_the_demand(server, browser, w, ticket).await?;
    transfer_takes_the_ticket_away_from_the_old_queue_live(server, browser, w).await?;
    the_list_pages_as_it_scrolls(server, browser, w).await?;
    a_voice_note_with_an_emoji_shows_its_waveform(browser).await?;
    spy_previews_a_pending_ticket(server, browser, w).await?;
    older_pages_and_earlier_tickets_load_scrolling_up(server, browser, w).await?;
    a_connection_chip_follows_its_status_live(server, browser, w).await?;
    phone_width_shows_list_or_chat(browser).await?;
    Ok(())
}

/// Visitor → pending tab without reload, counter up, the sound rung.
async fn visitor_reaches_the_pending_tab_live(
    server: &TestServer,
    browser: &Browser,
    w: &World,
) -> anyhow::Result<i64> {
    browser.goto("/?tab=pending").await?;
    browser.wait_for("#attendance[data-ready='true']").await?;
    browser
        .wait_for("#live-status[data-state='online']")
        .await?;
    browser
        .wait_for_text("#list-empty", "Nenhum atendimento")
        .await?;
    assert_eq!(badge(browser, "pending").await?, "", "no unread yet");

    // The visitor, in another tab of the same browser, writes on the widget.
    let agent = browser.driver.window().await?;
    let visitor = browser.driver.new_tab().await?;
    browser.driver.switch_to_window(visitor).await?;
    browser.goto(&format!("/widget/{}", w.key)).await?;
    browser
        .wait_for("#name")
        .await?
        .send_keys("Maria Visitante")
        .await?;
    browser
        .wait_for("#body")
        .await?
        .send_keys("Olá, preciso de ajuda com meu pedido")
        .await?;
    browser.wait_for("#send").await?.click().await?;
    browser
        .wait_for_text("#messages", "preciso de ajuda")
        .await?;
    browser.driver.switch_to_window(agent).await?;

    browser
        .wait_for_text("#ticket-list .ticket-name", "Maria Visitante")
        .await
        .context("the new ticket appears in the pending tab without a reload")?;
    wait_until("the pending counter goes up", || async {
        Ok(badge(browser, "pending").await? == "1" && badge(browser, "private").await? == "1")
    })
    .await?;
    let sounds = browser
        .wait_for("body[data-sounds]")
        .await?
        .attr("data-sounds")
        .await?;
    assert!(
        sounds.is_some_and(|n| n.parse::<u32>().unwrap_or(0) >= 1),
        "the sound played"
    );
    let ticket = ticket_id(server, &w.admin, "Maria Visitante").await?;
    browser.screenshot("attendance-pending").await?;
    Ok(ticket)
}

/// Accepting opens the chat; a `/shortcut` fills a quick reply; Enter sends; the widget shows it.
async fn accept_answer_with_a_quick_reply_and_the_widget_shows_it(
    browser: &Browser,
) -> anyhow::Result<()> {
    let agent = browser.driver.window().await?;
    browser
        .wait_for_text("#ticket-list .ticket-name", "Maria Visitante")
        .await?
        .click()
        .await?;
    // An agent without `spy` cannot read a pending ticket before accepting it.
    browser
        .wait_for_text("#chat-notice", "aceite-o para ler")
        .await?;
    browser
        .wait_for("#chat [data-action='accept']:not([hidden])")
        .await?
        .click()
        .await?;
    browser
        .wait_for_text(".msg-in .msg-body", "preciso de ajuda")
        .await
        .context("the history shows after accepting")?;
    browser
        .wait_for_text(".status-tabs a[aria-current='page']", "Abertos")
        .await?;
    browser.wait_for_text(".sep-day span", "Hoje").await?;

    let input = browser.wait_for("#message-input").await?;
    input.send_keys("/bom").await?;
    browser
        .wait_for_text("#quick-replies [role='option']", "/bomdia")
        .await?;
    input.send_keys(Key::Enter).await?;
    let typed = input.prop("value").await?.unwrap_or_default();
    assert_eq!(
        typed, "Bom dia! Como posso ajudar?",
        "the quick reply filled in"
    );
    input.send_keys(Key::Enter).await?;
    browser
        .wait_for_text(".msg-out .msg-body", "Como posso ajudar?")
        .await?;
    browser
        .wait_for(".msg-row[data-status='sent'] .msg-status, .msg-row[data-status='delivered'] .msg-status, .msg-row[data-status='read'] .msg-status")
        .await
        .context("the status of the reply moves on to sent")?;
    assert_eq!(input.prop("value").await?.unwrap_or_default(), "");
    browser.screenshot("attendance-chat").await?;

    // The visitor's widget shows the answer.
    let handles = browser.driver.windows().await?;
    let visitor = handles
        .into_iter()
        .find(|h| *h != agent)
        .context("the widget tab")?;
    browser.driver.switch_to_window(visitor).await?;
    browser
        .wait_for_text("#messages", "Como posso ajudar?")
        .await
        .context("the widget shows the agent's answer")?;
    browser.screenshot("widget-with-answer").await?;
    browser.driver.close_window().await?;
    browser.driver.switch_to_window(agent).await?;
    Ok(())
}

/// A 409 from the server reads in Portuguese.
async fn refusals_read_in_the_agents_language(
    browser: &Browser,
    ticket: i64,
) -> anyhow::Result<()> {
    let said = browser
        .driver
        .execute(
            &format!(
                "return Promise.all([import('/assets/common.js'), import('/assets/attendance-util.js')])\
                 .then(([c, u]) => c.post('/api/v1/tickets/{ticket}/accept').then(() => 'accepted?', e => u.explain(e)))"
            ),
            Vec::new(),
        )
        .await?;
    assert_eq!(
        said.json(),
        &json!("Só um atendimento pendente pode ser aceito."),
        "a 409 in the user's language"
    );
    Ok(())
}

/// Closing asks for the demand when `require_demand_on_close`; Esc closes the dialog.
async fn closing_needs_the_demand(
    server: &TestServer,
    browser: &Browser,
    w: &World,
    ticket: i64,
) -> anyhow::Result<()> {
    let close = browser
        .wait_for("#chat [data-action='close']:not([hidden])")
        .await?;
    close.click().await?;
    browser.wait_for("#close-dialog[open]").await?;
    browser
        .wait_for("#close-note")
        .await?
        .send_keys(Key::Escape)
        .await?;
    wait_until("Esc closes the dialog", || async {
        Ok(browser
            .driver
            .find_all(By::Css("#close-dialog[open]"))
            .await?
            .is_empty())
    })
    .await?;

    close.click().await?;
    browser.wait_for("#close-dialog[open]").await?;
    browser.wait_for("#close-submit").await?.click().await?;
    browser
        .wait_for_text("#close-error", "Escolha a demanda")
        .await?;
    browser.screenshot("attendance-close-dialog").await?;
    let demand = browser
        .wait_for_text("#close-demand option", "Dúvida sobre pedido")
        .await?;
    demand.click().await?;
    browser.wait_for("#close-submit").await?.click().await?;
    wait_until("the dialog closes", || async {
        Ok(browser
            .driver
            .find_all(By::Css("#close-dialog[open]"))
            .await?
            .is_empty())
    })
    .await?;
    browser
        .wait_for("#chat [data-action='reopen']:not([hidden])")
        .await?;
    browser
        .wait_for_text("#chat-notice", "Atendimento encerrado")
        .await?;
    let detail = expect_status!(
        server
            .get(&format!("/api/v1/tickets/{ticket}"), &w.admin)
            .await?,
        200
    );
    assert_eq!(detail["status"], "closed");
    wait_until("the closed ticket leaves the open tab", || async {
        Ok(browser
            .driver
            .find_all(By::Css(format!("#ticket-list li[data-id='{ticket}']")))
            .await?
            .is_empty())
    })
    .await?;
    Ok(())
}

/// A second visitor; Ana accepts and transfers to Suporte: Bruno (same old queue, watching live)
/// is told it left his view, and Ana's list and chat drop it.
async fn transfer_takes_the_ticket_away_from_the_old_queue_live(
    server: &TestServer,
    browser: &Browser,
    w: &World,
) -> anyhow::Result<()> {
    let mut bruno = open_live(server, &w.bruno).await?;
    visitor_post(server, &w.key, "v-joao", "João Transferido").await?;
    let ticket = ticket_id(server, &w.admin, "João Transferido").await?;
    expect_status!(
        server
            .post(
                &format!("/api/v1/tickets/{ticket}/accept"),
                &server.login("ana@default.test", PASSWORD).await?,
                json!({})
            )
            .await?,
        200
    );
    // Ana is on the open tab: the accepted ticket appears there live.
    browser
        .wait_for_text("#ticket-list .ticket-name", "João Transferido")
        .await?
        .click()
        .await?;
    browser
        .wait_for_text(".msg-in .msg-body", "João Transferido")
        .await?;
    browser
        .wait_for("#chat [data-action='transfer']:not([hidden])")
        .await?
        .click()
        .await?;
    browser.wait_for("#transfer-dialog[open]").await?;
    browser
        .wait_for(&format!("#transfer-queue option[value='{}']", w.support))
        .await?
        .click()
        .await?;
    browser
        .wait_for("#transfer-note")
        .await?
        .send_keys("Cliente pediu o suporte técnico")
        .await?;
    browser.screenshot("attendance-transfer-dialog").await?;
    browser.wait_for("#transfer-submit").await?.click().await?;

    let hidden = bruno
        .until(|frame| {
            frame["type"] == "ticket.hidden" && frame["data"]["ticket_id"] == json!(ticket)
        })
        .await
        .context("Bruno's live socket is told the ticket left his view")?;
    assert_eq!(hidden["data"]["ticket_id"], json!(ticket));
    expect_status!(
        server
            .get(&format!("/api/v1/tickets/{ticket}"), &w.bruno)
            .await?,
        404
    );
    wait_until("Ana's list drops the ticket", || async {
        Ok(browser
            .driver
            .find_all(By::Css(format!("#ticket-list li[data-id='{ticket}']")))
            .await?
            .is_empty())
    })
    .await?;
    browser.wait_for("#chat[hidden]").await?;
    let moved = expect_status!(
        server
            .get(&format!("/api/v1/tickets/{ticket}"), &w.admin)
            .await?,
        200
    );
    assert_eq!(
        (moved["queue_id"].as_i64(), moved["status"].as_str()),
        (Some(w.support), Some("pending"))
    );
    Ok(())
}

/// With `tickets_page_size` 10, twelve pending tickets come as 10, then 2 more on scrolling.
async fn the_list_pages_as_it_scrolls(
    server: &TestServer,
    browser: &Browser,
    w: &World,
) -> anyhow::Result<()> {
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
        visitor_post(
            server,
            &w.key,
            &format!("v-page-{n}"),
            &format!("Cliente {n:02}"),
        )
        .await?;
    }
    browser.goto("/?tab=pending").await?;
    browser.wait_for("#attendance[data-ready='true']").await?;
    let first = browser
        .driver
        .find_all(By::Css("#ticket-list li"))
        .await?
        .len();
    assert!(
        first >= 10,
        "the first page is rendered by the server ({first})"
    );
    browser.screenshot("attendance-list").await?;
    browser
        .driver
        .execute(
            "const s = document.getElementById('list-scroll'); s.scrollTop = s.scrollHeight;",
            Vec::new(),
        )
        .await?;
    wait_until("the next page arrives on scrolling", || async {
        Ok(browser
            .driver
            .find_all(By::Css("#ticket-list li"))
            .await?
            .len()
            == 12)
    })
    .await?;
    Ok(())
}

/// Records a short tone in the page (Web Audio into MediaRecorder, as the recorder plugin does
/// with the microphone), attaches it with an emoji caption and sends it: the chat draws the
/// waveform from the stored file (`audio_waveform`).
async fn a_voice_note_with_an_emoji_shows_its_waveform(browser: &Browser) -> anyhow::Result<()> {
    browser
        .wait_for("#ticket-list .ticket-link")
        .await?
        .click()
        .await?;
    browser
        .wait_for("#chat [data-action='accept']:not([hidden])")
        .await?
        .click()
        .await?;
    browser.wait_for("#composer:not([hidden])").await?;
    browser.wait_for("#emoji-button").await?.click().await?;
    browser
        .wait_for("#emoji-picker:not([hidden]) .emoji")
        .await?
        .click()
        .await?;
    let caption = browser
        .wait_for("#message-input")
        .await?
        .prop("value")
        .await?
        .unwrap_or_default();
    assert_eq!(caption, "😀", "the emoji went into the message");
    browser
        .wait_for("#emoji-picker:not([hidden]) .emoji")
        .await?
        .send_keys(Key::Escape)
        .await?;
    browser.wait_for("#emoji-picker[hidden]").await?;

    let size = browser
        .driver
        .execute(
            "return (async () => {\
               const ctx = new AudioContext(); await ctx.resume();\
               const tone = ctx.createOscillator(); tone.frequency.value = 440;\
               const out = ctx.createMediaStreamDestination(); tone.connect(out); tone.start();\
               const rec = new MediaRecorder(out.stream, {mimeType: 'audio/webm;codecs=opus'});\
               const chunks = []; rec.ondataavailable = (e) => chunks.push(e.data);\
               const stopped = new Promise((done) => (rec.onstop = done));\
               rec.start(); await new Promise((done) => setTimeout(done, 900)); rec.stop();\
               await stopped; tone.stop();\
               const file = new File(chunks, 'nota.webm', {type: 'audio/webm'});\
               const list = new DataTransfer(); list.items.add(file);\
               const input = document.getElementById('file-input'); input.files = list.files;\
               input.dispatchEvent(new Event('change')); return file.size; })()",
            Vec::new(),
        )
        .await?;
    assert!(
        size.json().as_u64().unwrap_or(0) > 100,
        "a recording: {:?}",
        size.json()
    );
    browser.wait_for("#attachment:not([hidden]) audio").await?;
    browser.wait_for("#send-button").await?.click().await?;
    browser
        .wait_for_within(
            ".msg-out canvas.waveform[data-drawn='true']",
            Duration::from_secs(15),
        )
        .await
        .context("the voice note shows its waveform")?;
    browser.wait_for_text(".msg-out .msg-body", "😀").await?;
    browser.wait_for(".msg-out .audio-play").await?;
    browser.screenshot("attendance-voice-note").await?;
    Ok(())
}

/// With `spy` in `feature_controls` an agent reads a pending ticket before accepting it, without
/// a composer.
async fn spy_previews_a_pending_ticket(
    server: &TestServer,
    browser: &Browser,
    w: &World,
) -> anyhow::Result<()> {
    expect_status!(
        server
            .put(
                "/api/v1/settings/feature_controls",
                &w.admin,
                json!({"value": ["spy"]})
            )
            .await?,
        200
    );
    browser.goto("/?tab=pending").await?;
    browser.wait_for("#attendance[data-ready='true']").await?;
    browser
        .wait_for("#ticket-list .ticket-link")
        .await?
        .click()
        .await?;
    browser
        .wait_for_text(".msg-in .msg-body", "Mensagem de Cliente")
        .await?;
    browser
        .wait_for_text("#chat-notice", "Pré-visualização")
        .await?;
    browser.wait_for("#composer[hidden]").await?;
    browser
        .wait_for("#chat [data-action='accept']:not([hidden])")
        .await?;
    browser.screenshot("attendance-spy-preview").await?;
    Ok(())
}

/// `chat_messages_page_size` 10 and `show_message_history`: a contact's second ticket opens on
/// its newest page; scrolling up brings the older pages, down to the first ticket's messages
/// under an "earlier ticket" separator.
async fn older_pages_and_earlier_tickets_load_scrolling_up(
    server: &TestServer,
    browser: &Browser,
    w: &World,
) -> anyhow::Result<()> {
    for (key, value) in [
        ("chat_messages_page_size", json!(10)),
        ("reopen_window_minutes", json!(0)),
    ] {
        expect_status!(
            server
                .put(
                    &format!("/api/v1/settings/{key}"),
                    &w.admin,
                    json!({"value": value})
                )
                .await?,
            200
        );
    }
    visitor_post(server, &w.key, "v-history", "Helena Histórico").await?;
    let first = ticket_id(server, &w.admin, "Helena Histórico").await?;
    expect_status!(
        server
            .post(
                &format!("/api/v1/tickets/{first}/accept"),
                &w.admin,
                json!({})
            )
            .await?,
        200
    );
    for n in 1..=12 {
        expect_status!(
            server
                .post(
                    &format!("/api/v1/tickets/{first}/messages"),
                    &w.admin,
                    json!({"body": format!("Resposta número {n}")})
                )
                .await?,
            201
        );
    }
    let demands = expect_status!(server.get("/api/v1/demands", &w.admin).await?, 200);
    expect_status!(
        server
            .post(
                &format!("/api/v1/tickets/{first}/close"),
                &w.admin,
                json!({"demand_id": demands[0]["id"]})
            )
            .await?,
        200
    );
    visitor_post(server, &w.key, "v-history", "Helena Histórico").await?;
    let second = expect_status!(
        server.get("/api/v1/tickets?tab=pending", &w.admin).await?,
        200
    )["tickets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["contact"]["name"] == "Helena Histórico")
        .and_then(|t| t["id"].as_i64())
        .context("the contact's new ticket")?;
    assert_ne!(second, first, "a new ticket after the reopen window");

    browser
        .goto(&format!("/?tab=pending&ticket={second}"))
        .await?;
    browser.wait_for("#chat[data-loaded='true']").await?;
    browser
        .wait_for_text(".msg-out .msg-body", "Resposta número 12")
        .await?;
    let label = format!("Atendimento anterior #{first}");
    wait_until(
        "scrolling up reaches the first ticket's first message",
        || async {
            browser
                .driver
                .execute(
                    "document.getElementById('messages').scrollTop = 0;",
                    Vec::new(),
                )
                .await?;
            let texts = browser.texts(".msg-in .msg-body").await?;
            Ok(texts.len() >= 2 && !browser.texts(".sep-ticket span").await?.is_empty())
        },
    )
    .await?;
    let separators = browser.texts(".sep-ticket span").await?;
    assert!(
        separators.iter().any(|s| s == &label)
            && separators.iter().any(|s| s == "Atendimento atual"),
        "{separators:?}"
    );
    let replies = browser.texts(".msg-out .msg-body").await?;
    assert!(
        replies
            .iter()
            .any(|r| r.contains("Resposta número 1\n") || r.ends_with("Resposta número 1")),
        "{replies:?}"
    );
    browser.screenshot("attendance-history").await?;
    Ok(())
}

/// At phone width the list and the chat take turns; the back button returns to the list.
async fn phone_width_shows_list_or_chat(browser: &Browser) -> anyhow::Result<()> {
    browser.driver.set_window_rect(0, 0, 390, 844).await?;
    browser.goto("/?tab=pending").await?;
    browser.wait_for("#attendance[data-ready='true']").await?;
    assert!(
        browser
            .wait_for("#ticket-list")
            .await?
            .is_displayed()
            .await?
    );
    assert!(!browser.wait_for("#chat-pane").await?.is_displayed().await?);
    browser.screenshot("attendance-phone-list").await?;
    browser
        .wait_for("#ticket-list .ticket-link")
        .await?
        .click()
        .await?;
    browser.wait_for("#chat:not([hidden])").await?;
    wait_until("the chat takes the screen", || async {
        Ok(!browser
            .wait_for("#ticket-list")
            .await?
            .is_displayed()
            .await?
            && browser.wait_for("#chat-back").await?.is_displayed().await?)
    })
    .await?;
    browser.screenshot("attendance-phone-chat").await?;
    browser.wait_for("#chat-back").await?.click().await?;
    wait_until("back to the list", || async {
        Ok(browser
            .wait_for("#ticket-list")
            .await?
            .is_displayed()
            .await?)
    })
    .await?;
    browser.driver.set_window_rect(0, 0, 1366, 768).await?;
    Ok(())
}

// ---- helpers ----

/// The text of a tab's counter badge ("" when hidden).
/// A WhatsApp Cloud connection shows disconnected until Meta is heard from; the first authentic
/// webhook delivery turns its chip connected without a reload.
async fn a_connection_chip_follows_its_status_live(
    server: &TestServer,
    browser: &Browser,
    w: &World,
) -> anyhow::Result<()> {
    let fake = FakeCloud::start().await?;
    let cloud = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &w.admin,
                json!({"kind": "whatsapp_cloud", "name": "Oficial",
                    "credentials": fake.credentials(60_000)})
            )
            .await?,
        201
    )["id"]
        .as_i64()
        .unwrap_or_default();
    browser.goto("/").await?;
    let chip = format!(".chip[data-connection='{cloud}']");
    browser
        .wait_for(&format!("{chip}.chip-disconnected"))
        .await?;
    // A signed delivery with nothing in it still proves the connection works.
    let body = json!({"object": "whatsapp_business_account", "entry": []}).to_string();
    let signature = atende_engine::inbound::channels::signing::hmac_sha256(
        APP_SECRET.as_bytes(),
        body.as_bytes(),
    )
    .iter()
    .map(|b| format!("{b:02x}"))
    .collect::<String>();
    let delivered = server
        .http
        .post(server.url(&format!("/webhooks/whatsapp-cloud/{cloud}")))
        .header("x-hub-signature-256", format!("sha256={signature}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    assert_eq!(delivered.status().as_u16(), 200);
    browser.wait_for(&format!("{chip}.chip-connected")).await?;
    browser.screenshot("attendance-connection-chips").await?;
    Ok(())
}

async fn badge(browser: &Browser, name: &str) -> anyhow::Result<String> {
    let found = browser
        .driver
        .find_all(By::Css(format!("[data-count='{name}']:not([hidden])")))
        .await?;
    match found.first() {
        Some(element) => Ok(element.text().await?),
        None => Ok(String::new()),
    }
}

async fn wait_until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = Instant::now();
    loop {
        if check().await.unwrap_or(false) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("timed out: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn visitor_post(
    server: &TestServer,
    key: &str,
    visitor: &str,
    name: &str,
) -> anyhow::Result<()> {
    let response = server
        .http
        .post(server.url(&format!("/api/widget/v1/{key}/messages")))
        .json(&json!({"visitor_id": visitor, "name": name, "body": format!("Mensagem de {name}")}))
        .send()
        .await?;
    anyhow::ensure!(
        response.status().as_u16() == 201,
        "{name}: {}",
        response.status()
    );
    Ok(())
}

async fn ticket_id(server: &TestServer, admin: &str, name: &str) -> anyhow::Result<i64> {
    let page = expect_status!(server.get("/api/v1/tickets", admin).await?, 200);
    page["tickets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["contact"]["name"] == name)
        .and_then(|t| t["id"].as_i64())
        .ok_or_else(|| anyhow::anyhow!("no ticket of {name}: {page}"))
}

/// An agent's live socket, opened with a ws-ticket of their API token.
struct Live {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

async fn open_live(server: &TestServer, token: &str) -> anyhow::Result<Live> {
    let ticket = expect_status!(
        server
            .post("/api/v1/auth/ws-ticket", token, json!({}))
            .await?,
        200
    );
    let url = format!(
        "ws://{}/api/v1/events?ticket={}",
        server.addr,
        ticket["ticket"].as_str().unwrap_or_default()
    );
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let mut live = Live { socket };
    live.until(|frame| frame["type"] == "hello").await?;
    Ok(live)
}

impl Live {
    /// The first frame matching `wanted`, waiting up to ten seconds.
    async fn until(&mut self, wanted: impl Fn(&Value) -> bool) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = tokio::time::timeout(left, self.socket.next())
                .await
                .context("no such frame in time")?
                .context("the socket ended")??;
            if let Message::Text(text) = frame {
                let value: Value = serde_json::from_str(text.as_str())?;
                if wanted(&value) {
                    return Ok(value);
                }
            }
        }
    }
}
