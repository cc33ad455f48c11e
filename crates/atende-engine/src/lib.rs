//! Application services of atende: authentication, settings, the commands agents and admins run,
//! and (as they land) the inbound pipeline, outbound worker and schedulers.
//!
//! It decides nothing itself: rules are asked of `atende-domain`, data goes through `atende-db`,
//! providers through `atende-channels`. It knows nothing of HTTP.

pub mod auth;
pub mod automations;
pub mod commands;
pub mod connection_status;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod inbound;
pub mod live_filter;
pub mod maintenance;
pub mod outbound;
pub mod people;
pub mod presence;
pub mod rate_limit;
pub mod secrets;
pub mod settings;
pub mod settings_batch;
pub mod templates;
pub mod ticket_events;
pub mod ticket_views;
pub mod whatsapp_cloud;
pub mod workers;

pub use atende_db as db;
pub use error::{EngineError, EngineResult};

use atende_db::Db;
use std::path::PathBuf;
use std::sync::Arc;

/// What the engine needs from the configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where key files and media live.
    pub data_dir: PathBuf,
    /// `ATENDE_SECRET_KEY`, when given (base64 or hex of 32 bytes).
    pub secret_key: Option<String>,
    /// Lifetime of a panel session without activity.
    pub session_ttl_ms: i64,
}

/// Shared application state: cheap to clone, one per process.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    secrets: secrets::SecretBox,
    settings: settings::SettingsService,
    login_limiter: rate_limit::LoginLimiter,
    events: events::EventBus,
    presence: presence::PresenceTracker,
    automations: automations::AutomationState,
    inbound: inbound::InboundState,
    outbound: outbound::OutboundState,
    maintenance: maintenance::MaintenanceState,
    config: EngineConfig,
}

impl Engine {
    /// Opens the engine over a migrated store: loads or creates the secret key and checks it
    /// against the value kept in the database (a wrong key refuses to start).
    pub async fn start(db: Db, config: EngineConfig) -> EngineResult<Engine> {
        let secrets = secrets::SecretBox::load(&config.data_dir, config.secret_key.as_deref())?;
        secrets.verify_against_store(&db).await?;
        Ok(Engine {
            inner: Arc::new(Inner {
                settings: settings::SettingsService::new(),
                login_limiter: rate_limit::LoginLimiter::default(),
                events: events::EventBus::new(),
                presence: presence::PresenceTracker::default(),
                automations: automations::AutomationState::default(),
                inbound: inbound::InboundState::default(),
                outbound: outbound::OutboundState::default(),
                maintenance: maintenance::MaintenanceState::default(),
                db,
                secrets,
                config,
            }),
        })
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn secrets(&self) -> &secrets::SecretBox {
        &self.inner.secrets
    }

    pub fn events(&self) -> &events::EventBus {
        &self.inner.events
    }

    pub fn presence(&self) -> &presence::PresenceTracker {
        &self.inner.presence
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    pub(crate) fn settings_service(&self) -> &settings::SettingsService {
        &self.inner.settings
    }

    pub(crate) fn login_limiter(&self) -> &rate_limit::LoginLimiter {
        &self.inner.login_limiter
    }
}
