//! A connection's status as the channel shows it: what a provider's answer says about the
//! connection, stored only when it changes and pushed live to every panel of the tenant (the
//! attendance screen's connection chips).

use crate::events::{Audience, EventKind};
use crate::{Engine, EngineResult};
use atende_channels::ChannelError;
use atende_domain::{ConnectionId, ConnectionStatus, TenantId};

/// What the outcome of a call to the provider says about the connection: an accepted call proves
/// it works; a refused credential (expired or revoked token) means an administrator must act.
/// Anything else (a rejected recipient, a rate limit, a network blip) says nothing about it.
pub fn status_after_call(outcome: Result<(), &ChannelError>) -> Option<ConnectionStatus> {
    match outcome {
        Ok(()) => Some(ConnectionStatus::Connected),
        Err(ChannelError::CredentialsRefused(_)) => Some(ConnectionStatus::Error),
        Err(_) => None,
    }
}

impl Engine {
    /// Records the connection's new status and tells the tenant's panels; nothing happens when
    /// it already had that status, so a busy connection does not write on every send.
    pub async fn report_connection_status(
        &self,
        tenant: TenantId,
        id: ConnectionId,
        status: ConnectionStatus,
    ) -> EngineResult<()> {
        let Some(connection) =
            atende_db::connections::change_status(self.db(), tenant, id, status).await?
        else {
            return Ok(());
        };
        tracing::info!(%tenant, connection = %id, %status, "connection status changed");
        self.events().publish(
            tenant,
            EventKind::ConnectionStatus,
            serde_json::json!({
                "connection_id": connection.id,
                "kind": connection.kind,
                "name": connection.name,
                "status": connection.status,
            }),
            Audience::Tenant,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_about_the_connection_itself_change_its_status() {
        assert_eq!(status_after_call(Ok(())), Some(ConnectionStatus::Connected));
        let refused = ChannelError::CredentialsRefused("token expired".into());
        assert_eq!(
            status_after_call(Err(&refused)),
            Some(ConnectionStatus::Error)
        );
        for other in [
            ChannelError::Permanent("recipient not on WhatsApp".into()),
            ChannelError::Temporary("connection reset".into()),
            ChannelError::RateLimited {
                retry_after_ms: 1_000,
            },
            ChannelError::OutcomeUnknown("timeout".into()),
        ] {
            assert_eq!(status_after_call(Err(&other)), None, "{other}");
        }
    }
}
