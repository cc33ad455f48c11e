//! `atende bench <scenario>`: measurements written to BENCHMARKS.md. Each scenario prints its
//! figures next to a raw-store baseline measured in the same run.

use anyhow::{Context, bail};
use std::path::Path;
use std::time::{Duration, Instant};

/// Start-up: time from spawning `atende serve` on an empty SQLite database to `/readyz` answering,
/// and the resident memory once idle. Baseline: opening a raw SQLite store and migrating it.
pub async fn startup(runs: usize) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("cannot find the atende binary")?;
    let mut ready_ms = Vec::new();
    let mut rss_kib = Vec::new();
    let mut baseline_ms = Vec::new();
    for _ in 0..runs.max(1) {
        let dir = tempfile_dir()?;
        let (ready, rss) = measure_serve(&exe, &dir).await?;
        ready_ms.push(ready.as_secs_f64() * 1e3);
        rss_kib.push(rss);
        let _ = std::fs::remove_dir_all(&dir);

        let dir = tempfile_dir()?;
        let started = Instant::now();
        let url = format!("sqlite://{}?mode=rwc", dir.join("atende.db").display());
        let db = atende_db::Db::connect(&url).await?;
        db.migrate().await?;
        baseline_ms.push(started.elapsed().as_secs_f64() * 1e3);
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(|a, b| a.total_cmp(b));
        values[values.len() / 2]
    };
    let ready = median(&mut ready_ms);
    let baseline = median(&mut baseline_ms);
    rss_kib.sort_unstable();
    let rss = rss_kib[rss_kib.len() / 2];
    Ok(format!(
        "startup runs={} cold_start_to_ready_ms={ready:.1} (goal < 1000) idle_rss_mib={:.1} (goal < 40) \
         raw_store_open_and_migrate_ms={baseline:.1} ratio_to_raw_store={:.2}",
        runs.max(1),
        rss as f64 / 1024.0,
        ready / baseline.max(0.001)
    ))
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("atende-bench-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn measure_serve(exe: &Path, dir: &Path) -> anyhow::Result<(Duration, u64)> {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let listen = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut child = tokio::process::Command::new(exe)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("ATENDE_DATA_DIR", dir)
        .env("ATENDE_LISTEN", &listen)
        .env("ATENDE_ADMIN_EMAIL", "admin@bench.test")
        .env("ATENDE_ADMIN_PASSWORD", "bench-password-1")
        .env("ATENDE_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let ready = loop {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the server did not become ready in 30 s");
        }
        if let Ok(Ok(answer)) =
            tokio::time::timeout(Duration::from_millis(200), readyz(&listen)).await
            && answer
        {
            break started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid = child.id().context("the server exited")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    child.kill().await?;
    Ok((ready, rss))
}

/// A minimal HTTP/1.1 GET of `/readyz`, to keep the measuring side light.
async fn readyz(listen: &str) -> anyhow::Result<bool> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(listen).await?;
    stream
        .write_all(
            format!("GET /readyz HTTP/1.1\r\nHost: {listen}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut buffer = Vec::new();
    stream.read_to_end(&mut buffer).await?;
    Ok(buffer.starts_with(b"HTTP/1.1 200"))
}

/// The real server in this process on a loopback port, for the scenarios measured over HTTP.
pub(crate) struct LocalServer {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl LocalServer {
    /// Serves `config` and waits for `/readyz`.
    pub(crate) async fn start(config: crate::config::Config) -> anyhow::Result<LocalServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}");
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(crate::serve(config, listener, async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()?;
        for _ in 0..500 {
            let ready = http
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(LocalServer {
                    addr,
                    base,
                    http,
                    shutdown,
                    task,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = shutdown.send(());
        bail!("the server did not become ready");
    }

    /// A Bearer token of `email`.
    pub(crate) async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let login: serde_json::Value = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await?
            .json()
            .await?;
        Ok(login["token"].as_str().context("no token")?.to_owned())
    }

    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await?
    }
}
