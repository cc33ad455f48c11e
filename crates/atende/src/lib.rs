//! The atende server as a library: configuration, wiring and `serve(config, listener, shutdown)`,
//! the seam through which the binary and the tests start the real server.

pub mod bench;
pub mod bench_ingest;
pub mod bench_list;
pub mod bench_live;
pub mod bench_outbound;
pub mod bench_page;
pub mod bootstrap;
pub mod cli;
pub mod config;

pub use config::Config;

use anyhow::Context;
use atende_db::Db;
use atende_engine::{Engine, EngineConfig};
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Opens the store named by the configuration and brings its schema up to date.
pub async fn open_store(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database_url).await.with_context(|| {
        format!(
            "cannot open the database ({})",
            redact(&config.database_url)
        )
    })?;
    db.migrate().await.context("cannot migrate the database")?;
    Ok(db)
}

/// Opens the engine over a migrated store (checks the secret key).
pub async fn open_engine(config: &Config, db: Db) -> anyhow::Result<Engine> {
    let engine = Engine::start(
        db,
        EngineConfig {
            data_dir: config.data_dir.clone(),
            secret_key: config.secret_key.clone(),
            session_ttl_ms: config.session_hours * 3_600_000,
        },
    )
    .await?;
    Ok(engine)
}

/// Runs the server on `listener` until `shutdown` completes. Migrates, checks the secret key and
/// creates the first tenant on an empty database before answering.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let db = open_store(&config).await?;
    let engine = open_engine(&config, db.clone()).await?;
    bootstrap::first_run(&engine, &config).await?;
    // Presence comes from live connections; a server that starts has none yet.
    engine.reset_presence().await?;
    let (stop_workers, workers_stopped) = tokio::sync::watch::channel(false);
    atende_engine::workers::start(&engine, workers_stopped);
    let app = atende_web::router(engine);
    let address = listener.local_addr().ok();
    tracing::info!(address = ?address, store = ?db.backend(), "atende is ready");
    // Live events are small WebSocket frames: each goes out at once instead of waiting for the
    // previous one's acknowledgement (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("the HTTP server stopped with an error")?;
    let _ = stop_workers.send(true);
    db.close().await;
    Ok(())
}

/// Hides the password of a database URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn database_passwords_are_hidden() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://data/atende.db"), "sqlite://data/atende.db");
    }
}
