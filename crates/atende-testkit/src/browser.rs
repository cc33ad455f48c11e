//! Browser tests: Debian's `chromium` driven through its `chromedriver` (thirtyfour), headless,
//! at 1366×768, against a [`TestServer`]. One browser at a time in a test process: [`Browser`]
//! holds a global turn until it quits, so tests that start one simply queue.
//!
//! ```text
//! let server = TestServer::sqlite().await?;
//! let browser = Browser::start(&server).await?;
//! browser.login_as_admin().await?;
//! browser.wait_for_text("h1", "Atendimento").await?;
//! browser.screenshot("attendance").await?;
//! browser.quit().await?;
//! ```

use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, MutexGuard};

pub use thirtyfour::{By, Key, WebDriver, WebElement};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the `wait_*` helpers wait by default.
pub const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(50);

fn turn() -> &'static Mutex<()> {
    static TURN: OnceLock<Mutex<()>> = OnceLock::new();
    TURN.get_or_init(|| Mutex::new(()))
}

/// A headless Chromium pointed at one test server.
pub struct Browser {
    pub driver: WebDriver,
    base: String,
    chromedriver: Child,
    _turn: MutexGuard<'static, ()>,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium (pt-BR, 1366×768).
    pub async fn start(server: &TestServer) -> anyhow::Result<Browser> {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(binary).exists() {
                bail!(
                    "{binary} is missing: browser tests need Debian's chromium and chromedriver \
                     (`apt-get install -y chromium chromium-driver`; .ci/run does it)"
                );
            }
        }
        let turn = turn().lock().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let chromedriver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver")?;
        let driver_url = format!("http://127.0.0.1:{port}");
        wait_until_up(&format!("{driver_url}/status")).await?;

        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM)?;
        for arg in [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--window-size=1366,768",
            "--lang=pt-BR",
        ] {
            caps.add_arg(arg)?;
        }
        // The panel's default language comes from Accept-Language: make it the product's.
        caps.add_experimental_option(
            "prefs",
            serde_json::json!({ "intl": { "accept_languages": "pt-BR,pt" } }),
        )?;
        let driver = WebDriver::new(&driver_url, caps)
            .await
            .context("starting chromium through chromedriver")?;
        Ok(Browser {
            driver,
            base: format!("http://{}", server.addr),
            chromedriver,
            _turn: turn,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Opens a path of the test server.
    pub async fn goto(&self, path: &str) -> anyhow::Result<()> {
        self.driver.goto(self.url(path)).await?;
        Ok(())
    }

    /// The path (and query) the browser is on.
    pub async fn path(&self) -> anyhow::Result<String> {
        let url = self.driver.current_url().await?;
        Ok(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// Fills the login form and waits for the panel's header.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<()> {
        self.submit_login(email, password).await?;
        self.wait_for(".topbar")
            .await
            .with_context(|| format!("logging in as {email}"))?;
        Ok(())
    }

    pub async fn login_as_admin(&self) -> anyhow::Result<()> {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Fills and submits the login form without waiting for the outcome.
    pub async fn submit_login(&self, email: &str, password: &str) -> anyhow::Result<()> {
        self.goto("/login").await?;
        let field = self.wait_for("#email").await?;
        field.clear().await?;
        field.send_keys(email).await?;
        self.wait_for("#password")
            .await?
            .send_keys(password)
            .await?;
        self.wait_for("#login-submit").await?.click().await?;
        Ok(())
    }

    /// The first element matching `css`, waiting up to [`WAIT`] for it.
    pub async fn wait_for(&self, css: &str) -> anyhow::Result<WebElement> {
        self.wait_for_within(css, WAIT).await
    }

    pub async fn wait_for_within(
        &self,
        css: &str,
        timeout: Duration,
    ) -> anyhow::Result<WebElement> {
        let started = Instant::now();
        loop {
            if let Ok(element) = self.driver.find(By::Css(css)).await {
                return Ok(element);
            }
            if started.elapsed() > timeout {
                bail!(
                    "no element `{css}` after {timeout:?} on {}",
                    self.path().await?
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The first element matching `css` whose text contains `text`, waiting up to [`WAIT`].
    pub async fn wait_for_text(&self, css: &str, text: &str) -> anyhow::Result<WebElement> {
        self.wait_for_text_within(css, text, WAIT).await
    }

    pub async fn wait_for_text_within(
        &self,
        css: &str,
        text: &str,
        timeout: Duration,
    ) -> anyhow::Result<WebElement> {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            seen.clear();
            for element in self.driver.find_all(By::Css(css)).await.unwrap_or_default() {
                let shown = element.text().await.unwrap_or_default();
                if shown.contains(text) {
                    return Ok(element);
                }
                seen.push(shown);
            }
            if started.elapsed() > timeout {
                bail!(
                    "no `{css}` with text {text:?} after {timeout:?} on {}; saw {seen:?}",
                    self.path().await?
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the browser is on `path` (path and query).
    pub async fn wait_for_path(&self, path: &str) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let now = self.path().await?;
            if now == path {
                return Ok(());
            }
            if started.elapsed() > WAIT {
                bail!("expected to be on {path}, still on {now}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Texts of every element matching `css`, now.
    pub async fn texts(&self, css: &str) -> anyhow::Result<Vec<String>> {
        let mut texts = Vec::new();
        for element in self.driver.find_all(By::Css(css)).await? {
            texts.push(element.text().await?);
        }
        Ok(texts)
    }

    /// Saves a PNG of the window as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> anyhow::Result<PathBuf> {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.png"));
        self.driver.screenshot(&path).await?;
        Ok(path)
    }

    /// Ends the browser session and chromedriver.
    pub async fn quit(self) -> anyhow::Result<()> {
        let Browser {
            driver,
            mut chromedriver,
            ..
        } = self;
        let ended = driver.quit().await;
        let _ = chromedriver.kill().await;
        ended?;
        Ok(())
    }
}

/// `target/screenshots` of the workspace (or of `CARGO_TARGET_DIR`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

async fn wait_until_up(status_url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < WAIT {
        if let Ok(response) = client.get(status_url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    bail!("chromedriver did not answer on {status_url}")
}
