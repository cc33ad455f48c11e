//! The panel in a real browser (headless Chromium through chromedriver). One test function runs
//! the scenarios in order, so a single browser serves them all; screenshots of the main pages go
//! to `target/screenshots/`.

use atende_testkit::browser::Browser;
use atende_testkit::{ADMIN_EMAIL, TestServer};

#[tokio::test]
async fn panel_in_a_real_browser() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let browser = Browser::start(&server).await?;
    let outcome = login_language_and_logout(&browser).await;
    if outcome.is_err() {
        let _ = browser.screenshot("failure-browser_panel").await;
    }
    browser.quit().await?;
    server.stop().await?;
    outcome
}

/// Wrong password shows the error; the right one opens the attendance page with the menu;
/// the language switch turns the texts to English; logout goes back to the login.
async fn login_language_and_logout(browser: &Browser) -> anyhow::Result<()> {
    browser.goto("/").await?;
    browser.wait_for_path("/login").await?;
    browser.wait_for_text("#login-submit", "Entrar").await?;
    browser.screenshot("login").await?;

    browser
        .submit_login(ADMIN_EMAIL, "not-the-password")
        .await?;
    browser
        .wait_for_text("#login-error", "E-mail ou senha incorretos.")
        .await?;

    browser.login_as_admin().await?;
    browser.wait_for_path("/").await?;
    browser.wait_for_text("h1", "Atendimento").await?;
    let menu = browser.texts(".mainnav a").await?;
    for item in [
        "Atendimento",
        "Contatos",
        "Configurações",
        "Manutenção",
        "Painel",
    ] {
        assert!(menu.iter().any(|m| m == item), "{item} in {menu:?}");
    }
    browser.screenshot("attendance").await?;
    browser.wait_for("html[data-common-ready='true']").await?;

    // common.js from the page: a state-changing API call carries the CSRF token, and the live
    // socket opens with the session cookie.
    let created = browser
        .driver
        .execute(
            "return import('/assets/common.js').then(m => m.post('/api/v1/queues', \
             {name: 'Vendas', color: '#00aa00'})).then(q => q.name, e => 'failed: ' + e.message)",
            Vec::new(),
        )
        .await?;
    assert_eq!(created.json(), &serde_json::json!("Vendas"));
    let live = browser
        .driver
        .execute(
            "return import('/assets/common.js').then(m => new Promise(done => { \
             const live = m.connectLive({onHello: (hello, first) => { live.close(); \
             done(first && typeof hello.last_id === 'number'); }}); }))",
            Vec::new(),
        )
        .await?;
    assert_eq!(live.json(), &serde_json::json!(true), "live hello");

    browser.wait_for(".usermenu summary").await?.click().await?;
    browser.wait_for("a[data-lang='en']").await?.click().await?;
    browser.wait_for_text("h1", "Attendance").await?;
    browser.wait_for_text(".mainnav a", "Settings").await?;
    assert_eq!(
        browser.path().await?,
        "/",
        "the switch comes back to the page"
    );

    browser.wait_for(".usermenu summary").await?.click().await?;
    browser.wait_for("#logout").await?.click().await?;
    browser.wait_for_text("#login-submit", "Sign in").await?;
    browser.goto("/settings").await?;
    browser.wait_for("#login-submit").await?;
    let back_to = browser.path().await?;
    assert!(back_to.starts_with("/login?next="), "{back_to}");
    Ok(())
}
