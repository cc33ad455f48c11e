//! What integration tests need: the real server started on 127.0.0.1:0 over a throwaway store
//! (SQLite always, PostgreSQL when `TEST_DATABASE_URL` is set), an HTTP client, fixtures.
//! A dev-dependency only: nothing here ships in the binary.

pub mod browser;
pub mod fake_cloud;
pub mod seed;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_EMAIL: &str = "admin@default.test";
pub const ADMIN_PASSWORD: &str = "admin-password-1";

/// A running server; stopped (and its store removed) on `stop` or drop.
pub struct TestServer {
    pub backend: &'static str,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub data_dir: PathBuf,
    /// The store's URL, for running the CLI against the same database.
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    pg_schema: Option<String>,
}

impl TestServer {
    /// Every backend this run can reach: SQLite always, PostgreSQL with `TEST_DATABASE_URL`.
    pub async fn all() -> anyhow::Result<Vec<TestServer>> {
        let mut servers = vec![TestServer::start(Backend::Sqlite).await?];
        match TestServer::start(Backend::Postgres).await {
            Ok(server) => servers.push(server),
            Err(error) if error.to_string().contains("TEST_DATABASE_URL") => {
                eprintln!(
                    "note: TEST_DATABASE_URL is not set; skipping the PostgreSQL run of this test"
                );
            }
            Err(error) => return Err(error),
        }
        Ok(servers)
    }

    pub async fn sqlite() -> anyhow::Result<TestServer> {
        TestServer::start(Backend::Sqlite).await
    }

    pub async fn start(backend: Backend) -> anyhow::Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let (database_url, pg_schema, name) = match backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("atende.db").display()
                ),
                None,
                "sqlite",
            ),
            Backend::Postgres => {
                let Some((url, schema)) = atende_db::testing::create_postgres_schema().await?
                else {
                    bail!("TEST_DATABASE_URL is not set");
                };
                (url, Some(schema), "postgres")
            }
        };
        let config = atende::Config {
            database_url: database_url.clone(),
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            secret_key: None,
            admin_email: Some(ADMIN_EMAIL.into()),
            admin_password: Some(ADMIN_PASSWORD.into()),
            session_hours: 24,
            log: "warn".into(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(atende::serve(config, listener, async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder().build()?;
        let server = TestServer {
            backend: name,
            addr,
            http,
            data_dir: dir.path().to_path_buf(),
            database_url,
            shutdown: Some(tx),
            task: Some(task),
            _dir: dir,
            pg_schema,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        for _ in 0..300 {
            if let Ok(response) = self.http.get(self.url("/readyz")).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        bail!("server on {} did not become ready", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Logs in and returns the API token.
    pub async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            bail!("login of {email} failed: {status} {body}");
        }
        body["token"]
            .as_str()
            .map(str::to_owned)
            .context("login answer has no token")
    }

    pub async fn admin_token(&self) -> anyhow::Result<String> {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// A request with a Bearer token, answering `(status, json body or null)`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::POST, path, Some(token), Some(&body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::PUT, path, Some(token), Some(&body))
            .await
    }

    pub async fn patch(
        &self,
        path: &str,
        token: &str,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::PATCH, path, Some(token), Some(&body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> anyhow::Result<(u16, Value)> {
        self.call(reqwest::Method::DELETE, path, Some(token), None)
            .await
    }

    /// Stops the server and removes its store.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        if let Some(schema) = self.pg_schema.take() {
            atende_db::testing::drop_postgres_schema(&schema).await;
        }
        Ok(())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Asserts a status and returns the body, with the body in the failure message.
#[macro_export]
macro_rules! expect_status {
    ($call:expr, $status:expr) => {{
        let (status, body) = $call;
        assert_eq!(status, $status, "unexpected status; body: {body}");
        body
    }};
}
