//! WhatsApp Business message templates of a connection (SPEC §7: "Templates are synced from the
//! provider and sent with their parameters"): an admin syncs them from the provider, and anyone
//! who attends the tenant's tickets lists them to pick one for a ticket. Sending one is
//! `Engine::send_template` (outbound), which reads what the sync stored.
//!
//! A sync makes the stored templates exactly what the provider lists: templates it no longer
//! lists are deleted, not kept with a made-up status. A message already sent keeps its own call
//! and text, nothing else refers to a template row, and a template the provider deleted can no
//! longer be sent, so keeping it would only offer agents something that fails.

use crate::auth::Principal;
use crate::connection_status::status_after_call;
use crate::whatsapp_cloud::config_of;
use crate::{Engine, EngineError, EngineResult};
use atende_channels::cloud_api::CloudApi;
use atende_channels::{Channel, ChannelError, ProviderTemplate};
use atende_db::templates::{self, NewTemplate, SyncCounts};
use atende_domain::{ChannelKind, Connection, ConnectionId, Template, ValidationError, template};
use serde::Serialize;
use thiserror::Error;
use utoipa::ToSchema;

/// The status the provider gives a template it lets us send.
pub const APPROVED: &str = "APPROVED";

/// Why a sync did not happen.
#[derive(Debug, Error)]
pub enum SyncError {
    /// The provider refused or could not be reached (→ 502, or 503 with `Retry-After` when it
    /// asked us to slow down).
    #[error("the provider did not list the templates: {0}")]
    Provider(ChannelError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// What a sync did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct SyncReport {
    /// Templates the provider listed.
    pub listed: usize,
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Stored templates the provider no longer lists, deleted.
    pub removed: usize,
}

/// A template as an agent picks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TemplateSummary {
    pub id: i64,
    pub name: String,
    /// e.g. `pt_BR`; sent with the name.
    pub language: String,
    /// The provider's status; only `APPROVED` templates can be sent.
    pub status: String,
    pub category: String,
    /// The body text with its `{{n}}` placeholders ("" when the template has no body).
    pub body: String,
    /// Parameters a send must give: the body's highest placeholder number.
    pub param_count: usize,
    /// `status` is `APPROVED`.
    pub approved: bool,
}

impl From<Template> for TemplateSummary {
    fn from(found: Template) -> Self {
        let body = template::body_text(&found.components)
            .unwrap_or_default()
            .to_owned();
        TemplateSummary {
            id: found.id.0,
            param_count: template::param_count(&body),
            approved: found.status.eq_ignore_ascii_case(APPROVED),
            name: found.name,
            language: found.language,
            status: found.status,
            category: found.category,
            body,
        }
    }
}

/// Templates exist on WhatsApp Cloud API connections only; any other kind is a wrong request.
fn require_cloud(connection: &Connection) -> EngineResult<()> {
    if connection.kind == ChannelKind::WhatsappCloud {
        Ok(())
    } else {
        Err(ValidationError::field(
            "connection_id",
            format!(
                "message templates exist on WhatsApp Cloud API connections only; this \
                 connection is {}",
                connection.kind
            ),
        )
        .into())
    }
}

/// The provider's wrong-settings answers are the caller's to fix (422 naming the field); the rest
/// are the provider's.
fn provider_error(error: ChannelError) -> SyncError {
    match error {
        ChannelError::Invalid { field, message } => {
            SyncError::Engine(ValidationError::field(field, message).into())
        }
        other => SyncError::Provider(other),
    }
}

impl Engine {
    /// Admins: fetches the connection's templates from the provider and stores them (module
    /// docs). Another tenant's connection → `NotFound`; a connection that is not WhatsApp Cloud
    /// API, or whose settings lack the WABA id → validation error.
    pub async fn sync_templates(
        &self,
        principal: &Principal,
        connection_id: ConnectionId,
    ) -> Result<SyncReport, SyncError> {
        let tenant = principal.require_admin()?;
        let connection = atende_db::connections::get(self.db(), tenant, connection_id)
            .await
            .map_err(EngineError::from)?;
        require_cloud(&connection)?;
        let config = config_of(self, &connection).await?;
        // A sync is rare: a client of its own, not the senders' cached one.
        let adapter = CloudApi::new(config).map_err(provider_error)?;
        let fetched = adapter.fetch_templates().await;
        if let Some(status) = status_after_call(fetched.as_ref().map(|_| ())) {
            self.report_connection_status(tenant, connection.id, status)
                .await?;
        }
        let listed = fetched.map_err(provider_error)?;
        let report = self.store_templates(&connection, &listed).await?;
        tracing::info!(
            connection = %connection.id,
            listed = report.listed,
            inserted = report.inserted,
            updated = report.updated,
            removed = report.removed,
            "templates synced"
        );
        Ok(report)
    }

    async fn store_templates(
        &self,
        connection: &Connection,
        listed: &[ProviderTemplate],
    ) -> EngineResult<SyncReport> {
        let new: Vec<NewTemplate> = listed
            .iter()
            .map(|t| NewTemplate {
                connection_id: connection.id,
                name: t.name.clone(),
                language: t.language.clone(),
                category: t.category.clone(),
                status: t.status.clone(),
                components: t.components.clone(),
            })
            .collect();
        let SyncCounts {
            inserted,
            updated,
            unchanged,
            removed,
        } = templates::sync_connection(self.db(), connection.tenant_id, connection.id, &new)
            .await?;
        Ok(SyncReport {
            listed: listed.len(),
            inserted,
            updated,
            unchanged,
            removed,
        })
    }

    /// Any user of the tenant (everyone who attends may send on any of its connections): the
    /// connection's synced templates, by name and language.
    pub async fn list_templates(
        &self,
        principal: &Principal,
        connection_id: ConnectionId,
    ) -> EngineResult<Vec<TemplateSummary>> {
        let tenant = principal.tenant()?;
        principal.profile()?;
        let connection = atende_db::connections::get(self.db(), tenant, connection_id).await?;
        require_cloud(&connection)?;
        let stored = templates::list(self.db(), tenant, connection.id).await?;
        Ok(stored.into_iter().map(TemplateSummary::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atende_domain::{TemplateId, TenantId, Timestamp};
    use serde_json::json;

    #[test]
    fn a_summary_shows_the_body_and_how_many_parameters_it_takes() {
        let summary = TemplateSummary::from(Template {
            id: TemplateId(3),
            tenant_id: TenantId(1),
            connection_id: ConnectionId(2),
            name: "pedido".into(),
            language: "pt_BR".into(),
            category: "UTILITY".into(),
            status: "approved".into(),
            components: json!([{"type": "HEADER", "text": "{{1}}"},
                {"type": "BODY", "text": "Olá {{1}}, pedido {{2}}"}]),
            updated_at: Timestamp(0),
        });
        assert_eq!(summary.body, "Olá {{1}}, pedido {{2}}");
        assert_eq!(summary.param_count, 2);
        assert!(summary.approved);
    }

    #[test]
    fn wrong_settings_are_the_callers_and_outages_the_providers() {
        assert!(matches!(
            provider_error(ChannelError::invalid("credentials.waba_id", "required")),
            SyncError::Engine(EngineError::Validation(_))
        ));
        assert!(matches!(
            provider_error(ChannelError::Temporary("down".into())),
            SyncError::Provider(_)
        ));
    }
}
