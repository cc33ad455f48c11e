//! The admin pages and the settings page in a real browser (headless Chromium through
//! chromedriver), one scenario after another in a single browser: switching
//! `hide_others_tickets` on the settings page changes what a second agent sees; a refused value
//! shows next to its field; the SMTP password is only ever "set" or "not set"; a queue (with its
//! hours) and a user (with a queue, then a password reset) are created through the pages; a
//! duplicate contact is merged; dialogs close with Escape; the pages fit a phone. Screenshots of
//! every admin page go to `target/screenshots/`.

use anyhow::bail;
use atende_testkit::browser::{Browser, By, Key, WebElement};
use atende_testkit::fake_cloud::{self, FakeCloud};
use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PASSWORD: &str = "agent-password-1";

struct World {
    admin: String,
    ana: String,
    beto: String,
    ticket: i64,
}

fn id(value: &Value) -> i64 {
    value["id"].as_i64().unwrap_or_default()
}

/// A queue with a web-chat connection, two agents in it, a tag and a duplicated contact; a
/// visitor's ticket that Ana accepted.
async fn world(server: &TestServer) -> anyhow::Result<World> {
    let admin = server.admin_token().await?;
    expect_status!(
        server
            .put("/api/v1/settings/fast_send", &admin, json!({"value": true}))
            .await?,
        200
    );
    let support = id(&expect_status!(
        server
            .post(
                "/api/v1/queues",
                &admin,
                json!({"name": "Suporte", "color": "#8e44ad", "greeting": "Olá! Em que podemos ajudar?"})
            )
            .await?,
        201
    ));
    let connection = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "webchat", "name": "Site", "default_queue_id": support})
            )
            .await?,
        201
    );
    let key = connection["key"].as_str().unwrap_or_default().to_owned();
    for (email, name) in [("ana@default.test", "Ana"), ("beto@default.test", "Beto")] {
        expect_status!(
            server
                .post(
                    "/api/v1/users",
                    &admin,
                    json!({"email": email, "name": name, "password": PASSWORD,
                           "profile": "user", "queue_ids": [support]})
                )
                .await?,
            201
        );
    }
    let tag = id(&expect_status!(
        server
            .post(
                "/api/v1/tags",
                &admin,
                json!({"name": "VIP", "color": "#d4a017"})
            )
            .await?,
        201
    ));
    expect_status!(
        server
            .post("/api/v1/demands", &admin, json!({"name": "Dúvida"}))
            .await?,
        201
    );
    expect_status!(
        server
            .post(
                "/api/v1/quick-replies",
                &admin,
                json!({"shortcut": "ola", "body": "Olá! Como posso ajudar?", "global": true})
            )
            .await?,
        201
    );
    for (name, phone) in [
        ("Maria Silva", "+5511912345678"),
        ("Maria S.", "+5511987654321"),
    ] {
        expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": name, "phone": phone, "tag_ids": [tag]})
                )
                .await?,
            201
        );
    }

    let posted = server
        .http
        .post(server.url(&format!("/api/widget/v1/{key}/messages")))
        .json(&json!({"visitor_id": "visitante-1", "name": "Visitante", "body": "Olá, preciso de ajuda"}))
        .send()
        .await?;
    assert_eq!(posted.status().as_u16(), 201, "{}", posted.text().await?);
    let ana = server.login("ana@default.test", PASSWORD).await?;
    let beto = server.login("beto@default.test", PASSWORD).await?;
    let pending = expect_status!(server.get("/api/v1/tickets?tab=pending", &ana).await?, 200);
    let ticket = pending["tickets"][0]["id"].as_i64().unwrap_or_default();
    expect_status!(
        server
            .post(&format!("/api/v1/tickets/{ticket}/accept"), &ana, json!({}))
            .await?,
        200
    );
    Ok(World {
        admin,
        ana,
        beto,
        ticket,
    })
}

#[tokio::test]
async fn admin_pages_in_a_real_browser() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let w = world(&server).await?;
    let browser = Browser::start(&server).await?;
    let outcome = scenarios(&server, &w, &browser).await;
    if outcome.is_err() {
        let _ = browser.screenshot("failure-browser_admin").await;
    }
    browser.quit().await?;
    server.stop().await?;
    outcome
}

async fn scenarios(server: &TestServer, w: &World, browser: &Browser) -> anyhow::Result<()> {
    browser.login_as_admin().await?;
    hiding_others_tickets_on_the_settings_page_hides_them_from_another_agent(server, w, browser)
        .await?;
    a_refused_setting_shows_next_to_its_field(server, w, browser).await?;
    the_smtp_password_is_only_set_or_not_set(server, w, browser).await?;
    a_queue_with_business_hours_is_created_on_its_page(server, w, browser).await?;
    a_user_is_created_on_its_page_and_their_password_reset(server, w, browser).await?;
    a_duplicate_contact_is_merged_on_the_contacts_page(server, w, browser).await?;
    the_other_admin_pages_show_their_items(browser).await?;
    templates_of_a_cloud_connection_sync_from_its_row(server, w, browser).await?;
    dialogs_close_with_escape_and_give_focus_back(browser).await?;
    the_pages_fit_a_phone(browser).await?;
    Ok(())
}

async fn hiding_others_tickets_on_the_settings_page_hides_them_from_another_agent(
    server: &TestServer,
    w: &World,
    browser: &Browser,
) -> anyhow::Result<()> {
    assert!(
        open_ticket_ids(server, &w.beto).await?.contains(&w.ticket),
        "before: Beto sees Ana's ticket of his queue"
    );
    open_settings(browser).await?;
    browser
        .wait_for_text(
            "label[for='s-hide_others_tickets']",
            "Não visualizar Tickets",
        )
        .await?;
    browser.screenshot("settings").await?;
    let hours = browser.wait_for("#s-business_hours").await?;
    scroll_to(browser, &hours).await?;
    browser.screenshot("settings-hours").await?;

    click(browser, "#s-hide_others_tickets").await?;
    browser
        .wait_for_text("#settings-status", "Há alterações não salvas.")
        .await?;
    save_settings(browser).await?;

    assert_eq!(
        setting(server, &w.admin, "hide_others_tickets").await?,
        json!(true)
    );
    assert!(
        !open_ticket_ids(server, &w.beto).await?.contains(&w.ticket),
        "after: Beto no longer sees Ana's ticket"
    );
    assert!(
        open_ticket_ids(server, &w.ana).await?.contains(&w.ticket),
        "Ana still sees her own"
    );
    let (status, _) = server
        .get(&format!("/api/v1/tickets/{}", w.ticket), &w.beto)
        .await?;
    assert_eq!(status, 404, "nor can Beto open it");

    // And back: switched off, Beto sees it again.
    click(browser, "#s-hide_others_tickets").await?;
    save_settings(browser).await?;
    wait_until("Beto sees the ticket again", || async {
        Ok(open_ticket_ids(server, &w.beto).await?.contains(&w.ticket))
    })
    .await
}

async fn a_refused_setting_shows_next_to_its_field(
    server: &TestServer,
    w: &World,
    browser: &Browser,
) -> anyhow::Result<()> {
    open_settings(browser).await?;
    let phones = type_into(browser, "#s-blocked_numbers", "12ab").await?;
    click(browser, "#s-tab_counters").await?;
    click(browser, "#settings-save").await?;
    let error = browser
        .wait_for_text("#err-blocked_numbers", "blocked_numbers")
        .await?;
    assert!(error.is_displayed().await?);
    assert_eq!(
        phones.attr("aria-invalid").await?.as_deref(),
        Some("true"),
        "the field is marked"
    );
    browser
        .wait_for_text("#settings-status", "Nada foi salvo")
        .await?;
    browser.screenshot("settings-field-error").await?;
    assert_eq!(
        setting(server, &w.admin, "tab_counters").await?,
        json!(true),
        "nothing of a refused save is stored"
    );

    phones.clear().await?;
    phones.send_keys("(11) 91234-5678").await?;
    save_settings(browser).await?;
    assert!(!error.is_displayed().await?, "the error is gone");
    assert_eq!(
        phones.prop("value").await?.as_deref(),
        Some("+5511912345678"),
        "the stored, normalised number is shown back"
    );
    // Leave the counters as they were for the other scenarios.
    click(browser, "#s-tab_counters").await?;
    save_settings(browser).await?;
    Ok(())
}

async fn the_smtp_password_is_only_set_or_not_set(
    server: &TestServer,
    w: &World,
    browser: &Browser,
) -> anyhow::Result<()> {
    browser
        .wait_for_text("#state-smtp_password", "Senha não definida")
        .await?;
    let field = type_into(browser, "#s-smtp_password", "smtp-secret-1").await?;
    save_settings(browser).await?;
    browser
        .wait_for_text("#state-smtp_password", "Senha definida")
        .await?;
    assert_eq!(field.prop("value").await?.as_deref(), Some(""));
    browser.screenshot("settings-smtp").await?;
    let source = browser.driver.source().await?;
    assert!(!source.contains("smtp-secret-1"));
    let list = expect_status!(server.get("/api/v1/settings", &w.admin).await?, 200);
    assert!(!list.to_string().contains("smtp-secret-1"));

    // An empty field keeps it: saving something else leaves it set.
    open_settings(browser).await?;
    browser
        .wait_for_text("#state-smtp_password", "Senha definida")
        .await?;
    type_into(browser, "#s-smtp_host", "smtp.example.com").await?;
    save_settings(browser).await?;
    browser
        .wait_for_text("#state-smtp_password", "Senha definida")
        .await?;
    Ok(())
}

async fn a_queue_with_business_hours_is_created_on_its_page(
    server: &TestServer,
    w: &World,
    browser: &Browser,
) -> anyhow::Result<()> {
    browser.goto("/queues").await?;
    browser
        .wait_for_text("#queue-table tbody", "Suporte")
        .await?;
    browser.screenshot("queues").await?;
    click(browser, "#queue-new").await?;
    browser
        .wait_for_text("#queue-dialog-title", "Nova fila")
        .await?;
    type_into(browser, "#queue-name", "Financeiro").await?;
    type_into(browser, "#queue-greeting", "Bem-vindo ao financeiro.").await?;
    click(browser, "#queue-hours input[type='radio'][value='custom']").await?;
    let monday = browser
        .driver
        .find_all(By::Css("#queue-hours input[data-day='mon']"))
        .await?;
    assert_eq!(monday.len(), 4, "two windows of start and end");
    for (input, time) in monday.iter().zip(["08:00", "12:00", "13:00", "18:00"]) {
        input.send_keys(time).await?;
    }
    click_text(browser, "#queue-hours button", "Copiar segunda").await?;
    browser.screenshot("queues-dialog").await?;
    click(browser, "#queue-form button[type='submit']").await?;
    browser
        .wait_for_text("#queue-table tbody", "Financeiro")
        .await?;

    let queues = expect_status!(server.get("/api/v1/queues", &w.admin).await?, 200);
    let created = queues
        .as_array()
        .and_then(|all| all.iter().find(|q| q["name"] == "Financeiro"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(created["greeting"], "Bem-vindo ao financeiro.");
    let hours = &created["business_hours"]["days"];
    assert_eq!(
        hours["mon"],
        json!([{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}])
    );
    assert_eq!(hours["fri"], hours["mon"], "copied to the weekdays");
    assert!(hours.get("sat").is_none(), "weekend closed");
    Ok(())
}

async fn a_user_is_created_on_its_page_and_their_password_reset(
    server: &TestServer,
    w: &World,
    browser: &Browser,
) -> anyhow::Result<()> {
    browser.goto("/users").await?;
    browser.wait_for_text("#user-table tbody", "Beto").await?;
    click(browser, "#user-new").await?;
    type_into(browser, "#user-name", "Carla").await?;
    type_into(browser, "#user-email", "carla@default.test").await?;
    type_into(browser, "#user-password", "carla-password-1").await?;
    browser
        .driver
        .execute(
            "document.getElementById('user-profile').value = 'supervisor';",
            Vec::new(),
        )
        .await?;
    tick(browser, "#user-queues label", "Financeiro").await?;
    browser.screenshot("users-dialog").await?;
    click(browser, "#user-form button[type='submit']").await?;
    browser.wait_for_text("#user-table tbody", "Carla").await?;
    browser.screenshot("users").await?;

    let users = expect_status!(server.get("/api/v1/users", &w.admin).await?, 200);
    let carla = users
        .as_array()
        .and_then(|all| all.iter().find(|u| u["email"] == "carla@default.test"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(carla["profile"], "supervisor");
    let queues = expect_status!(server.get("/api/v1/queues", &w.admin).await?, 200);
    let finance = queues
        .as_array()
        .and_then(|all| all.iter().find(|q| q["name"] == "Financeiro"))
        .map(id)
        .unwrap_or_default();
    assert_eq!(carla["queue_ids"], json!([finance]));
    server
        .login("carla@default.test", "carla-password-1")
        .await?;

    click(browser, "button[aria-label='Redefinir senha: Carla']").await?;
    type_into(browser, "#reset-password", "carla-password-2").await?;
    click(browser, "#password-form button[type='submit']").await?;
    browser
        .wait_for_text(".toast", "Senha de Carla redefinida.")
        .await?;
    server
        .login("carla@default.test", "carla-password-2")
        .await?;
    let (status, _) = server
        .call(
            reqwest::Method::POST,
            "/api/v1/auth/login",
            None,
            Some(&json!({"email": "carla@default.test", "password": "carla-password-1"})),
        )
        .await?;
    assert_eq!(status, 401, "the old password no longer works");
    Ok(())
}

async fn a_duplicate_contact_is_merged_on_the_contacts_page(
    server: &TestServer,
    w: &World,
    browser: &Browser,
) -> anyhow::Result<()> {
    browser.goto("/contacts").await?;
    browser
        .wait_for("#contacts-page[data-ready='true']")
        .await?;
    browser
        .wait_for_text("#contact-table tbody", "Maria Silva")
        .await?;
    browser.screenshot("contacts").await?;
    click(browser, "button[aria-label='Mesclar: Maria Silva']").await?;
    tick(browser, "#merge-results label", "Maria S.").await?;
    browser.screenshot("contacts-merge").await?;
    click(browser, "#merge-confirm").await?;
    browser
        .wait_for_text(".toast", "Contatos mesclados em Maria Silva.")
        .await?;
    let found = expect_status!(
        server
            .get("/api/v1/contacts?search=Maria", &w.admin)
            .await?,
        200
    );
    let names: Vec<&str> = found["contacts"]
        .as_array()
        .map(|all| all.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["Maria Silva"], "the duplicate is gone");

    // Block from the list: the badge turns and the API agrees.
    click(browser, "button[aria-label='Bloquear: Maria Silva']").await?;
    browser
        .wait_for_text("#contact-table tbody", "Bloqueado")
        .await?;
    let found = expect_status!(
        server
            .get("/api/v1/contacts?search=Maria&blocked=true", &w.ana)
            .await?,
        200
    );
    assert_eq!(found["contacts"].as_array().map(Vec::len), Some(1));
    Ok(())
}

async fn the_other_admin_pages_show_their_items(browser: &Browser) -> anyhow::Result<()> {
    browser.goto("/connections").await?;
    browser
        .wait_for_text("#connection-table tbody", "Site")
        .await?;
    browser
        .wait_for_text("#connection-table tbody", "Chat do site")
        .await?;
    browser.screenshot("connections").await?;
    click(browser, "#connection-new").await?;
    browser
        .driver
        .execute(
            "const kind = document.getElementById('connection-kind'); kind.value = 'evolution'; \
             kind.dispatchEvent(new Event('change'));",
            Vec::new(),
        )
        .await?;
    let pairing = browser.wait_for("#connection-pairing").await?;
    assert!(pairing.is_displayed().await?, "the pairing area is shown");
    browser
        .wait_for_text("#connection-pairing-title", "QR code")
        .await?;
    browser.screenshot("connections-pairing").await?;
    browser
        .wait_for("#connection-name")
        .await?
        .send_keys(Key::Escape)
        .await?;

    for (path, table, item, shot) in [
        ("/demands", "#demand-table tbody", "Dúvida", "demands"),
        ("/tags", "#tag-table tbody", "VIP", "tags"),
        (
            "/quick-replies",
            "#reply-table tbody",
            "/ola",
            "quick-replies",
        ),
    ] {
        browser.goto(path).await?;
        browser.wait_for_text(table, item).await?;
        browser.screenshot(shot).await?;
    }
    Ok(())
}

/// A WhatsApp Cloud API connection's row offers the template sync; clicking it fetches the
/// templates from the (fake) provider and tells what changed.
async fn templates_of_a_cloud_connection_sync_from_its_row(
    server: &TestServer,
    w: &World,
    browser: &Browser,
) -> anyhow::Result<()> {
    let fake = FakeCloud::start().await?;
    fake.set_templates(vec![
        fake_cloud::template("boas_vindas", "pt_BR", "APPROVED", "UTILITY", "Olá {{1}}!"),
        fake_cloud::template(
            "pedido_enviado",
            "pt_BR",
            "APPROVED",
            "UTILITY",
            "Seu pedido {{1}} saiu.",
        ),
    ]);
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
    );
    browser.goto("/connections").await?;
    click(
        browser,
        "button[aria-label='Sincronizar os modelos de mensagem de Oficial']",
    )
    .await?;
    browser
        .wait_for_text(".templates-sync-result", "2 modelos na Meta: 2 novos")
        .await?;
    browser.screenshot("connections-templates").await?;
    let listed = expect_status!(
        server
            .get(
                &format!("/api/v1/connections/{}/templates", id(&cloud)),
                &w.admin
            )
            .await?,
        200
    );
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    Ok(())
}

async fn dialogs_close_with_escape_and_give_focus_back(browser: &Browser) -> anyhow::Result<()> {
    browser.goto("/tags").await?;
    browser.wait_for_text("#tag-table tbody", "VIP").await?;
    click(browser, "#tag-new").await?;
    let name = browser.wait_for("#tag-name").await?;
    wait_until("the name field has the focus", || async {
        Ok(browser
            .driver
            .active_element()
            .await?
            .id()
            .await?
            .as_deref()
            == Some("tag-name"))
    })
    .await?;
    name.send_keys(Key::Escape).await?;
    wait_until("the dialog closed and the focus is back", || async {
        let open = browser
            .driver
            .execute(
                "return document.getElementById('tag-dialog').open;",
                Vec::new(),
            )
            .await?;
        Ok(open.json() == &json!(false)
            && browser
                .driver
                .active_element()
                .await?
                .id()
                .await?
                .as_deref()
                == Some("tag-new"))
    })
    .await
}

async fn the_pages_fit_a_phone(browser: &Browser) -> anyhow::Result<()> {
    browser.driver.set_window_rect(0, 0, 390, 844).await?;
    for (path, ready, shot) in [
        ("/users", "#user-table tbody tr", "users-phone"),
        (
            "/contacts",
            "#contacts-page[data-ready='true']",
            "contacts-phone",
        ),
        (
            "/settings",
            "#settings-form[data-ready='true']",
            "settings-phone",
        ),
    ] {
        browser.goto(path).await?;
        browser.wait_for(ready).await?;
        let fits = browser
            .driver
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                Vec::new(),
            )
            .await?;
        assert_eq!(
            fits.json(),
            &json!(true),
            "{path} scrolls sideways on a phone"
        );
        browser.screenshot(shot).await?;
    }
    browser.driver.set_window_rect(0, 0, 1366, 768).await?;
    Ok(())
}

// ---- helpers ----

async fn open_ticket_ids(server: &TestServer, token: &str) -> anyhow::Result<Vec<i64>> {
    let list = expect_status!(server.get("/api/v1/tickets?tab=open", token).await?, 200);
    Ok(list["tickets"]
        .as_array()
        .map(|all| all.iter().filter_map(|t| t["id"].as_i64()).collect())
        .unwrap_or_default())
}

/// Brings an element to the middle of the window (the sticky header and save bar cover the
/// edges), so a click lands on it.
async fn scroll_to(browser: &Browser, element: &WebElement) -> anyhow::Result<()> {
    browser
        .driver
        .execute(
            "arguments[0].scrollIntoView({block: 'center'});",
            vec![element.to_json()?],
        )
        .await?;
    Ok(())
}

/// Types into the field `css` (brought into view first); answers the field.
async fn type_into(browser: &Browser, css: &str, text: &str) -> anyhow::Result<WebElement> {
    let field = browser.wait_for(css).await?;
    scroll_to(browser, &field).await?;
    field.send_keys(text).await?;
    Ok(field)
}

async fn open_settings(browser: &Browser) -> anyhow::Result<()> {
    browser.goto("/settings").await?;
    browser
        .wait_for("#settings-form[data-ready='true']")
        .await?;
    Ok(())
}

/// Saves the settings page and waits for the save bar to say so.
async fn save_settings(browser: &Browser) -> anyhow::Result<()> {
    click(browser, "#settings-save").await?;
    browser
        .wait_for_text("#settings-status", "Configurações salvas.")
        .await?;
    Ok(())
}

async fn setting(server: &TestServer, token: &str, key: &str) -> anyhow::Result<Value> {
    let list = expect_status!(server.get("/api/v1/settings", token).await?, 200);
    Ok(list
        .as_array()
        .and_then(|items| items.iter().find(|s| s["key"] == key))
        .map(|s| s["value"].clone())
        .unwrap_or(Value::Null))
}

async fn click(browser: &Browser, css: &str) -> anyhow::Result<()> {
    let element = browser.wait_for(css).await?;
    scroll_to(browser, &element).await?;
    element.click().await?;
    Ok(())
}

/// Ticks the checkbox or radio of the label matching `css` that reads `text`.
async fn tick(browser: &Browser, css: &str, text: &str) -> anyhow::Result<()> {
    let label = browser.wait_for_text(css, text).await?;
    label.find(By::Css("input")).await?.click().await?;
    Ok(())
}

async fn click_text(browser: &Browser, css: &str, text: &str) -> anyhow::Result<()> {
    let element = browser.wait_for_text(css, text).await?;
    scroll_to(browser, &element).await?;
    element.click().await?;
    Ok(())
}

async fn wait_until<F, Fut>(what: &str, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(10) {
            bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
