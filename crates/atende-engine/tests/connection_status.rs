//! A connection's status on every backend: a web chat starts connected and a provider channel
//! disconnected; a reported status is stored and announced to the whole tenant once per change.

mod support;

use atende_channels::ChannelError;
use atende_db::testing::TestDb;
use atende_domain::{ChannelKind, ConnectionStatus, MessageStatus};
use atende_engine::events::{Audience, EventKind};
use support::{fixture, quick};

#[tokio::test]
async fn a_status_is_stored_and_announced_once_per_change() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, quick()).await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        assert_eq!(site.status, ConnectionStatus::Connected, "{}", store.name);
        let cloud = f.connection(ChannelKind::WhatsappCloud, None).await;
        assert_eq!(cloud.status, ConnectionStatus::Disconnected);

        let mut events = f.engine.events().subscribe(f.tenant);
        for status in [
            ConnectionStatus::Connected,
            ConnectionStatus::Connected,
            ConnectionStatus::Error,
            ConnectionStatus::Error,
        ] {
            f.engine
                .report_connection_status(f.tenant, cloud.id, status)
                .await
                .expect("report");
        }
        let mut announced = Vec::new();
        while let Ok(event) = events.try_recv() {
            if event.kind == EventKind::ConnectionStatus {
                assert_eq!(
                    event.audience,
                    Audience::Tenant,
                    "every panel shows the chips"
                );
                assert_eq!(event.data["connection_id"], cloud.id.0);
                announced.push(event.data["status"].as_str().unwrap_or_default().to_owned());
            }
        }
        assert_eq!(
            announced,
            vec!["connected", "error"],
            "{}: only changes are announced",
            store.name
        );
        let stored = atende_db::connections::get(f.engine.db(), f.tenant, cloud.id)
            .await
            .expect("connection");
        assert_eq!(stored.status, ConnectionStatus::Error);
    }
}

#[tokio::test]
async fn the_sender_shows_what_the_provider_answered_about_the_connection() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, quick()).await;
        let zap = f.connection(ChannelKind::Evolution, Some((0, 0))).await;
        assert_eq!(zap.status, ConnectionStatus::Disconnected);
        let chat = f.ticket(&zap, "5511999990000").await;
        f.transport.plan(
            "recusada",
            vec![ChannelError::CredentialsRefused("token revoked".into())],
        );
        let refused = f.reply(&chat, "recusada").await;
        f.wait(refused, MessageStatus::Failed).await;
        let stored = atende_db::connections::get(f.engine.db(), f.tenant, zap.id)
            .await
            .expect("connection");
        assert_eq!(stored.status, ConnectionStatus::Error, "{}", store.name);
        let (_, reason) = f.status(refused).await;
        assert!(
            reason.is_some_and(|r| r.contains("credentials")),
            "{}: the agent reads why",
            store.name
        );

        let accepted = f.reply(&chat, "de novo").await;
        f.wait(accepted, MessageStatus::Sent).await;
        let stored = atende_db::connections::get(f.engine.db(), f.tenant, zap.id)
            .await
            .expect("connection");
        assert_eq!(stored.status, ConnectionStatus::Connected, "{}", store.name);
    }
}
