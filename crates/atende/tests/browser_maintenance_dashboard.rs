//! The maintenance page and the dashboard (SPEC §10, §12), on SQLite and, with
//! `TEST_DATABASE_URL`, on PostgreSQL: over plain HTTP (who may open them, what the page carries)
//! and in a real browser (headless Chromium): a maintenance button shows the job's progress and
//! its result, and the dashboard draws its charts and tables from attendances made through the
//! web-chat widget and the API. Screenshots go to `target/screenshots/`.

use atende_db::{Db, write};
use atende_testkit::browser::Browser;
use atende_testkit::{TestServer, expect_status};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

const ACTIONS: [&str; 5] = [
    "send_stuck_messages",
    "resolve_failed_messages",
    "validate_contacts",
    "fix_imported_message_dates",
    "fix_ticket_dates",
];

fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// Attendances of the default tenant, made as visitors and agents make them: three web-chat
/// visitors write (three pending tickets in "Vendas"); the admin answers the first and closes
/// it, and answers the second. Then the third ticket's dates are broken in the store, the way an
/// import or a lost update leaves them, for `fix_ticket_dates` to repair.
struct World {
    admin: String,
    vendas: i64,
    suporte: i64,
}

async fn world(server: &TestServer) -> anyhow::Result<World> {
    let admin = server.admin_token().await?;
    let queue = |name: &str| json!({"name": name, "color": "#336699"});
    let vendas = id(&expect_status!(
        server
            .post("/api/v1/queues", &admin, queue("Vendas"))
            .await?,
        201
    ));
    let suporte = id(&expect_status!(
        server
            .post("/api/v1/queues", &admin, queue("Suporte"))
            .await?,
        201
    ));
    let connection = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "webchat", "name": "Site", "default_queue_id": vendas})
            )
            .await?,
        201
    );
    let key = connection["key"].as_str().unwrap_or_default().to_owned();
    for (visitor, name) in [("v-ana", "Ana"), ("v-bia", "Bia"), ("v-caio", "Caio")] {
        let response = server
            .http
            .post(server.url(&format!("/api/widget/v1/{key}/messages")))
            .json(&json!({"visitor_id": visitor, "name": name, "body": "Olá, preciso de ajuda"}))
            .send()
            .await?;
        assert!(
            response.status().is_success(),
            "widget message: {}",
            response.status()
        );
    }
    let pending = expect_status!(
        server.get("/api/v1/tickets?tab=pending", &admin).await?,
        200
    );
    let mut tickets: Vec<i64> = pending["tickets"]
        .as_array()
        .map(|list| list.iter().map(id).collect())
        .unwrap_or_default();
    tickets.sort_unstable();
    assert_eq!(tickets.len(), 3, "{pending}");
    for (n, ticket) in tickets.iter().take(2).enumerate() {
        let path = |what: &str| format!("/api/v1/tickets/{ticket}/{what}");
        expect_status!(server.post(&path("accept"), &admin, json!({})).await?, 200);
        let reply = json!({"body": "Bom dia! Como posso ajudar?"});
        let (status, body) = server.post(&path("messages"), &admin, reply).await?;
        assert!((200..300).contains(&status), "{status}: {body}");
        if n == 0 {
            expect_status!(server.post(&path("close"), &admin, json!({})).await?, 200);
        }
    }
    let db = Db::connect(&server.database_url).await?;
    const BREAK: &str = "UPDATE tickets SET last_message_at = NULL, last_inbound_at = NULL, \
                         updated_at = 1 WHERE id = $1";
    write!(&db, pool => {
        sqlx::query(BREAK).bind(tickets[2]).execute(pool).await?;
    });
    db.close().await;
    Ok(World {
        admin,
        vendas,
        suporte,
    })
}

/// Logs in through the panel's form; answers the session cookie pair for later requests.
async fn panel_session(
    server: &TestServer,
    email: &str,
    password: &str,
) -> anyhow::Result<(reqwest::Client, String)> {
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()?;
    let response = http
        .post(server.url("/login"))
        .header("origin", format!("http://{}", server.addr))
        .form(&[("email", email), ("password", password), ("next", "/")])
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 303, "login of {email}");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("atende_session="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned();
    Ok((http, cookie))
}

async fn page(
    session: &(reqwest::Client, String),
    server: &TestServer,
    path: &str,
) -> anyhow::Result<(u16, String)> {
    let (http, cookie) = session;
    let response = http
        .get(server.url(path))
        .header("cookie", cookie)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// The figures a dashboard page hands to its script.
fn figures(html: &str) -> Value {
    html.split("<script type=\"application/json\" id=\"dashboard-data\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn maintenance_page_is_for_admins_and_has_a_card_per_action() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        for (email, profile) in [
            ("agente@default.test", "user"),
            ("super@default.test", "supervisor"),
        ] {
            expect_status!(
                server
                    .post(
                        "/api/v1/users",
                        &admin,
                        json!({"email": email, "name": profile, "password": "agent-password-1",
                            "profile": profile})
                    )
                    .await?,
                201
            );
        }
        let admin_session = panel_session(
            &server,
            atende_testkit::ADMIN_EMAIL,
            atende_testkit::ADMIN_PASSWORD,
        )
        .await?;
        let (status, html) = page(&admin_session, &server, "/maintenance").await?;
        assert_eq!(status, 200);
        for action in ACTIONS {
            assert!(
                html.contains(&format!("data-action=\"{action}\"")),
                "a card for {action}"
            );
        }
        assert!(html.contains("Corrigir datas dos tickets"), "pt-BR words");
        for email in ["agente@default.test", "super@default.test"] {
            let session = panel_session(&server, email, "agent-password-1").await?;
            let (status, html) = page(&session, &server, "/maintenance").await?;
            assert_eq!(status, 403, "{email}");
            assert!(!html.contains("data-action="), "{email}");
        }
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn dashboard_page_carries_the_figures_and_shows_a_refused_filter_as_a_notice()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        let admin = panel_session(
            &server,
            atende_testkit::ADMIN_EMAIL,
            atende_testkit::ADMIN_PASSWORD,
        )
        .await?;
        let (status, html) = page(&admin, &server, "/dashboard").await?;
        assert_eq!(status, 200);
        let data = figures(&html);
        let opened: i64 = data["per_day"]
            .as_array()
            .map(|days| days.iter().filter_map(|d| d["opened"].as_i64()).sum())
            .unwrap_or_default();
        assert_eq!(opened, 3, "{data}");
        assert_eq!(data["by_status"]["closed"], 1, "{data}");
        assert_eq!(data["scope"], "tenant");
        assert!(html.contains("id=\"dash-agent\""), "admins filter by agent");
        assert!(html.contains(">Vendas</option>") && html.contains(">Suporte</option>"));
        assert!(!html.contains("dash-notice"));

        let path = format!("/dashboard?queue_id={}", w.suporte);
        let (_, html) = page(&admin, &server, &path).await?;
        assert_eq!(figures(&html)["queue_id"], w.suporte);
        assert!(html.contains(&format!("<option value=\"{}\" selected>", w.suporte)));

        let (status, html) =
            page(&admin, &server, "/dashboard?from=2025-03-10&to=2025-03-01").await?;
        assert_eq!(status, 200, "a bad period is a notice, not an error page");
        assert!(html.contains("dash-notice") && html.contains("Período inválido"));
        assert_eq!(figures(&html)["per_day"].as_array().map(Vec::len), Some(30));
        let (_, html) = page(&admin, &server, "/dashboard?queue_id=999999").await?;
        assert!(html.contains("não existe"), "unknown queue: a notice");

        // A supervisor who sees as a user gets only their own figures and no agent filter.
        expect_status!(
            server
                .put(
                    "/api/v1/settings/supervisor_sees_as_user",
                    &w.admin,
                    json!({"value": true})
                )
                .await?,
            200
        );
        expect_status!(
            server
                .post(
                    "/api/v1/users",
                    &w.admin,
                    json!({"email": "super@default.test", "name": "Sara", "password": "agent-password-1",
                        "profile": "supervisor", "queue_ids": [w.vendas]})
                )
                .await?,
            201
        );
        let supervisor = panel_session(&server, "super@default.test", "agent-password-1").await?;
        let (status, html) = page(&supervisor, &server, "/dashboard").await?;
        assert_eq!(status, 200);
        assert_eq!(figures(&html)["scope"], "own");
        assert!(!html.contains("id=\"dash-agent\""));
        assert!(html.contains("Você vê apenas os seus próprios atendimentos."));
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn maintenance_and_dashboard_in_a_real_browser() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let w = world(&server).await?;
        let browser = Browser::start(&server).await?;
        let outcome = async {
            browser.login_as_admin().await?;
            maintenance_button_shows_progress_and_the_result(&browser).await?;
            dashboard_draws_charts_and_tables(&browser, &w).await?;
            both_pages_fit_a_phone(&browser).await
        }
        .await;
        if outcome.is_err() {
            let _ = browser
                .screenshot("failure-browser_maintenance_dashboard")
                .await;
        }
        browser.quit().await?;
        server.stop().await?;
        outcome?;
    }
    Ok(())
}

/// `fix_ticket_dates` from its button: the card goes through the job's states with its progress
/// bar to a full bar and the result (three tickets examined, the broken one among the fixed); a second run
/// fixes nothing; the page shows the last run again after a reload.
async fn maintenance_button_shows_progress_and_the_result(browser: &Browser) -> anyhow::Result<()> {
    browser.goto("/maintenance").await?;
    browser
        .wait_for("html[data-maintenance-ready='true']")
        .await?;
    browser.wait_for_text("h1", "Manutenção").await?;
    let titles = browser.texts(".maint-card h2").await?;
    assert_eq!(titles.len(), ACTIONS.len(), "{titles:?}");
    assert!(titles.iter().any(|t| t == "Reenviar mensagens presas"));

    // Every state the card shows, in order.
    browser
        .driver
        .execute(
            "window.cardStates = []; const card = document.getElementById('action-fix_ticket_dates'); \
             new MutationObserver(() => window.cardStates.push(card.dataset.state)) \
             .observe(card, {attributes: true, attributeFilter: ['data-state']});",
            Vec::new(),
        )
        .await?;
    let card = "#action-fix_ticket_dates";
    browser
        .wait_for(&format!("{card} .maint-run"))
        .await?
        .click()
        .await?;
    browser
        .wait_for(&format!("{card}[data-state='done']"))
        .await?;
    let states = browser
        .driver
        .execute("return window.cardStates;", Vec::new())
        .await?;
    let states: Vec<String> = serde_json::from_value(states.json().clone())?;
    assert!(
        matches!(
            states.first().map(String::as_str),
            Some("queued" | "running")
        ),
        "the card showed the job under way first: {states:?}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("done"),
        "{states:?}"
    );
    let bar = browser.wait_for(&format!("{card} .maint-bar")).await?;
    assert_eq!(bar.attr("aria-valuenow").await?.as_deref(), Some("100"));
    assert!(bar.is_displayed().await?, "the progress bar is shown");
    browser
        .wait_for_text(&format!("{card} .maint-state"), "Concluído")
        .await?;
    browser
        .wait_for_text(
            &format!("{card} [data-field='tickets']"),
            "Tickets examinados",
        )
        .await?;
    let dd = |field: &str| format!("{card} [data-field='{field}'] dd");
    assert_eq!(browser.wait_for(&dd("tickets")).await?.text().await?, "3");
    let fixed: u32 = browser
        .wait_for(&dd("fixed"))
        .await?
        .text()
        .await?
        .parse()?;
    assert!(fixed >= 1, "the broken ticket is among the fixed ({fixed})");
    browser
        .driver
        .execute(
            "document.getElementById('action-fix_ticket_dates').scrollIntoView({block: 'center'});",
            Vec::new(),
        )
        .await?;
    browser.screenshot("maintenance").await?;

    let first_job = browser
        .wait_for(card)
        .await?
        .attr("data-job-id")
        .await?
        .unwrap_or_default();
    browser
        .wait_for(&format!("{card} .maint-run"))
        .await?
        .click()
        .await?;
    let started = std::time::Instant::now();
    loop {
        let element = browser.wait_for(card).await?;
        let job = element.attr("data-job-id").await?.unwrap_or_default();
        let state = element.attr("data-state").await?.unwrap_or_default();
        if job != first_job && state == "done" {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < atende_testkit::browser::WAIT,
            "the second run never finished (job {job}, {state})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        browser.wait_for(&dd("fixed")).await?.text().await?,
        "0",
        "a second run changes nothing"
    );

    browser.goto("/maintenance").await?;
    browser
        .wait_for(&format!("{card}[data-state='done']"))
        .await?;
    assert_eq!(browser.wait_for(&dd("tickets")).await?.text().await?, "3");

    // A job that fails is shown with its reason. The store cannot be made to fail on demand, so
    // the page's fetch answers for the server here.
    browser
        .driver
        .execute(
            "const real = window.fetch; window.fetch = (url, init) => { \
               const job = {id: 77, job_id: 77, kind: 'maintenance.validate_contacts', \
                 progress: 0, total: 0, attempts: 3, created_at: 0, updated_at: 0}; \
               const answer = (status, body) => Promise.resolve(new Response(JSON.stringify(body), \
                 {status, headers: {'content-type': 'application/json'}})); \
               if (String(url).endsWith('/maintenance/validate_contacts')) \
                 return answer(202, {...job, status: 'queued', already_running: false}); \
               if (String(url).endsWith('/jobs/77')) \
                 return answer(200, {...job, status: 'failed', error: 'provedor fora do ar'}); \
               return real(url, init); };",
            Vec::new(),
        )
        .await?;
    let failing = "#action-validate_contacts";
    browser
        .wait_for(&format!("{failing} .maint-run"))
        .await?
        .click()
        .await?;
    browser
        .wait_for_text(
            &format!("{failing} .maint-error"),
            "A ação falhou: provedor fora do ar",
        )
        .await?;
    browser
        .wait_for(&format!("{failing}[data-state='failed']"))
        .await?;
    let progress = browser
        .wait_for(&format!("{failing} .maint-progress"))
        .await?;
    assert!(
        !progress.is_displayed().await?,
        "no progress bar for a failed job"
    );
    Ok(())
}

/// Tiles, the per-day columns, the status donut, and the tables of times per queue and agent;
/// then a queue filter redraws without a reload and the address follows it.
async fn dashboard_draws_charts_and_tables(browser: &Browser, w: &World) -> anyhow::Result<()> {
    browser.goto("/dashboard").await?;
    browser
        .wait_for("html[data-dashboard-ready='true']")
        .await?;
    browser.wait_for_text("h1", "Painel").await?;
    browser
        .wait_for_text("#tile-opened .tile-value", "3")
        .await?;
    browser
        .wait_for_text("#tile-closed .tile-value", "1")
        .await?;

    let label = chart_label(browser, "#chart-per-day").await?;
    assert!(
        label.contains("3 abertos") && label.contains("1 fechados"),
        "{label}"
    );
    let columns = count(browser, "#chart-per-day .marks rect").await?;
    assert_eq!(columns, 2, "one column opened, one closed, today");
    let tooltips = browser
        .driver
        .execute(
            "return [...document.querySelectorAll('#chart-per-day .hits title')].map(t => t.textContent);",
            Vec::new(),
        )
        .await?;
    let tooltips: Vec<String> = serde_json::from_value(tooltips.json().clone())?;
    assert_eq!(
        tooltips.len(),
        30,
        "a tooltip per day of the default period"
    );
    assert!(
        tooltips.iter().any(|t| t.contains("Abertos 3")),
        "{tooltips:?}"
    );

    let label = chart_label(browser, "#chart-status").await?;
    assert!(
        label.contains("Pendentes 1")
            && label.contains("Abertos 1")
            && label.contains("Fechados 1"),
        "{label}"
    );
    assert_eq!(count(browser, "#chart-status path").await?, 3);

    browser
        .wait_for_text("#table-first_response-queue tbody th", "Vendas")
        .await?;
    let row = browser
        .texts("#table-first_response-queue tbody td")
        .await?;
    assert_eq!(row.first().map(String::as_str), Some("2"), "{row:?}");
    assert!(
        row.iter()
            .skip(1)
            .all(|cell| cell.ends_with(" s") || cell.contains("min")),
        "human durations: {row:?}"
    );
    browser
        .wait_for("#chart-first_response-agent svg[role='img']")
        .await?;
    browser
        .wait_for_text("#table-resolution-queue tbody th", "Vendas")
        .await?;
    browser
        .wait_for("#chart-resolution-queue svg[role='img']")
        .await?;
    browser.screenshot("dashboard").await?;
    browser
        .driver
        .execute(
            "document.querySelector('.dash-times').scrollIntoView({block: 'start'});",
            Vec::new(),
        )
        .await?;
    browser.screenshot("dashboard-times").await?;

    browser
        .wait_for(&format!("#dash-queue option[value='{}']", w.suporte))
        .await?
        .click()
        .await?;
    browser
        .wait_for_text("#tile-opened .tile-value", "0")
        .await?;
    let path = browser.path().await?;
    assert!(path.contains(&format!("queue_id={}", w.suporte)), "{path}");
    let label = chart_label(browser, "#chart-per-day").await?;
    assert!(label.starts_with("Nenhum atendimento"), "{label}");
    browser
        .wait_for_text("#chart-first_response-queue .chart-empty", "Sem dados")
        .await?;

    browser
        .wait_for(&format!("#dash-queue option[value='{}']", w.vendas))
        .await?
        .click()
        .await?;
    browser
        .wait_for_text("#tile-opened .tile-value", "3")
        .await?;

    // A period the server would refuse is said by the form, in the page's language.
    browser
        .driver
        .execute(
            "const form = document.getElementById('dash-filters'); \
             form.elements.from.value = '2025-03-10'; form.elements.to.value = '2025-03-01';",
            Vec::new(),
        )
        .await?;
    browser.wait_for("#dash-apply").await?.click().await?;
    let message = browser
        .driver
        .execute(
            "return document.getElementById('dash-from').validationMessage;",
            Vec::new(),
        )
        .await?;
    assert_eq!(
        message.json(),
        &json!("A data inicial não pode ser depois da final.")
    );
    browser
        .wait_for("#dash-filters [data-days='7']")
        .await?
        .click()
        .await?;
    wait_for_count(browser, "#chart-per-day .hits title", 7).await?;
    browser
        .wait_for_text("#tile-opened .tile-value", "3")
        .await?;
    Ok(())
}

/// At a phone's width nothing overflows sideways.
async fn both_pages_fit_a_phone(browser: &Browser) -> anyhow::Result<()> {
    browser.driver.set_window_rect(0, 0, 390, 844).await?;
    for (path, ready, shot) in [
        ("/dashboard", "dashboard", "dashboard-phone"),
        ("/maintenance", "maintenance", "maintenance-phone"),
    ] {
        browser.goto(path).await?;
        browser
            .wait_for(&format!("html[data-{ready}-ready='true']"))
            .await?;
        let overflow = browser
            .driver
            .execute(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
                Vec::new(),
            )
            .await?;
        assert_eq!(
            overflow.json().as_i64(),
            Some(0),
            "{path} fits a phone's width"
        );
        browser.screenshot(shot).await?;
    }
    browser.driver.set_window_rect(0, 0, 1366, 768).await?;
    Ok(())
}

/// How many elements match `css` now (counted in the page: charts redraw their marks).
async fn count(browser: &Browser, css: &str) -> anyhow::Result<usize> {
    let found = browser
        .driver
        .execute(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(css)],
        )
        .await?;
    Ok(usize::try_from(found.json().as_u64().unwrap_or_default())?)
}

/// Waits until exactly `expected` elements match `css`.
async fn wait_for_count(browser: &Browser, css: &str, expected: usize) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        let found = count(browser, css).await?;
        if found == expected {
            return Ok(());
        }
        anyhow::ensure!(
            started.elapsed() < atende_testkit::browser::WAIT,
            "{found} `{css}`, expected {expected}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The aria-label of the chart drawn in `container`, once there is one (read in the page: a
/// chart is redrawn whenever its width changes).
async fn chart_label(browser: &Browser, container: &str) -> anyhow::Result<String> {
    browser
        .wait_for(&format!("{container} svg[role='img']"))
        .await?;
    let label = browser
        .driver
        .execute(
            "return document.querySelector(arguments[0] + ' svg[role=img]').getAttribute('aria-label');",
            vec![json!(container)],
        )
        .await?;
    Ok(label.json().as_str().unwrap_or_default().to_owned())
}
