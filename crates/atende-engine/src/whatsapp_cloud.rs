//! WhatsApp Cloud API connections in the engine: the adapter a connection's (encrypted) settings
//! describe, for the sender, and the status webhooks Meta sends about our messages.
//!
//! Statuses settle sends whose outcome is unknown. Meta takes no idempotency key and a send's
//! answer can be lost (a timeout, or a crash between the request and the write of its `wamid`),
//! so a status may name a message id we never learnt. Strict order per chat means at most one
//! message of a chat can be out without its id, so such a status settles that one message
//! (`atende_db::outbox::reconcile_unconfirmed`); see the sender's recovery in `outbound`.

use crate::inbound::Handled;
use crate::{Engine, EngineError, EngineResult};
use atende_channels::cloud_api::{CloudApi, CloudConfig};
use atende_channels::{ChannelError, Delivery, InboundEvent};
use atende_db::outbox::{self, ProviderStatus};
use atende_domain::{ChannelKind, Connection, ConnectionId, ConnectionStatus, Timestamp};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use thiserror::Error;

/// Why a webhook delivery was refused.
#[derive(Debug, Error)]
pub enum WebhookError {
    /// No connection of this kind has the id in the URL → 404.
    #[error("no WhatsApp Cloud API connection has this id")]
    UnknownConnection,
    /// Not authentic, or not readable → 401 / 400.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The settings of a Cloud API connection, decrypted from its credentials.
pub async fn config_of(engine: &Engine, connection: &Connection) -> EngineResult<CloudConfig> {
    let stored =
        atende_db::connections::credentials(engine.db(), connection.tenant_id, connection.id)
            .await?
            .ok_or_else(|| {
                EngineError::InvalidState(
                    "the WhatsApp Cloud API connection has no credentials".into(),
                )
            })?;
    let plain = engine.secrets().decrypt(&stored)?;
    CloudConfig::from_json(&plain).map_err(|error| EngineError::InvalidState(error.to_string()))
}

/// The senders' adapters, one per connection, rebuilt when the connection changes (its
/// `updated_at` moves with every edit of its credentials). Each holds an HTTP client, so its
/// connections to Meta are reused across sends.
#[derive(Default)]
pub struct CloudSenders {
    adapters: Mutex<HashMap<ConnectionId, (Timestamp, Arc<CloudApi>)>>,
}

impl CloudSenders {
    pub async fn adapter(
        &self,
        engine: &Engine,
        connection: &Connection,
    ) -> Result<Arc<CloudApi>, ChannelError> {
        if let Ok(adapters) = self.adapters.lock()
            && let Some((version, adapter)) = adapters.get(&connection.id)
            && *version == connection.updated_at
        {
            return Ok(Arc::clone(adapter));
        }
        let config = match config_of(engine, connection).await {
            Ok(config) => config,
            // A store hiccup may pass; wrong or missing settings will not.
            Err(EngineError::Db(error)) => return Err(ChannelError::Temporary(error.to_string())),
            Err(other) => return Err(ChannelError::Permanent(other.to_string())),
        };
        let adapter = Arc::new(CloudApi::new(config)?);
        if let Ok(mut adapters) = self.adapters.lock() {
            adapters.insert(connection.id, (connection.updated_at, Arc::clone(&adapter)));
        }
        Ok(adapter)
    }
}

impl Engine {
    /// The connection a webhook URL names, if it is a Cloud API one.
    async fn cloud_connection(&self, id: ConnectionId) -> Result<Connection, WebhookError> {
        match atende_db::connections::platform_get(self.db(), id).await {
            Ok(connection) if connection.kind == ChannelKind::WhatsappCloud => Ok(connection),
            Ok(_) | Err(atende_db::DbError::NotFound) => Err(WebhookError::UnknownConnection),
            Err(other) => Err(WebhookError::Engine(other.into())),
        }
    }

    /// `GET /webhooks/whatsapp-cloud/{id}`: Meta's subscription handshake. The challenge to echo,
    /// or `None` (→ 403) when the mode or token is not ours.
    pub async fn whatsapp_cloud_handshake(
        &self,
        id: ConnectionId,
        mode: &str,
        token: &str,
        challenge: &str,
    ) -> Result<Option<String>, WebhookError> {
        let connection = self.cloud_connection(id).await?;
        let config = config_of(self, &connection).await?;
        Ok(config.verify_subscription(mode, token, challenge))
    }

    /// `POST /webhooks/whatsapp-cloud/{id}`: verifies the signature, then runs each status
    /// through the inbound pipeline (logged and deduplicated, applied by message id) and settles
    /// an unconfirmed send with a status whose id we never learnt.
    pub async fn ingest_whatsapp_cloud(
        &self,
        id: ConnectionId,
        delivery: &Delivery<'_>,
    ) -> Result<Vec<Handled>, WebhookError> {
        let connection = self.cloud_connection(id).await?;
        let config = config_of(self, &connection).await?;
        let events = config.parse_delivery(delivery)?;
        // An authentic delivery from Meta: the connection is up.
        self.report_connection_status(
            connection.tenant_id,
            connection.id,
            ConnectionStatus::Connected,
        )
        .await?;
        let mut handled = Vec::with_capacity(events.len());
        for event in events {
            let status = match &event.inbound.event {
                InboundEvent::Status(status) => Some(status.clone()),
                _ => None,
            };
            let outcome = self.ingest_event(&connection, event.inbound).await?;
            if let (Handled::StatusApplied { message: None, .. }, Some(status), Some(recipient)) =
                (&outcome, status, event.recipient.as_deref())
            {
                let settled = outbox::reconcile_unconfirmed(
                    self.db(),
                    connection.tenant_id,
                    connection.id,
                    connection.kind,
                    recipient,
                    ProviderStatus {
                        provider_id: &status.message_provider_id,
                        status: status.status,
                        reason: status.reason.as_deref(),
                    },
                    Timestamp::now(),
                )
                .await
                .map_err(EngineError::from)?;
                if let Some(message) = settled {
                    tracing::info!(
                        message = %message.id,
                        provider_id = %status.message_provider_id,
                        "unconfirmed send settled by the provider's status"
                    );
                    self.publish_status(&message).await;
                    // Its chat's next message may go now.
                    self.outbound().wake();
                }
            }
            handled.push(outcome);
        }
        Ok(handled)
    }
}
