//! Tenant settings: read through one typed accessor with the registry's defaults, cached per
//! tenant and invalidated on change; changes are validated by the registry and audited.

use crate::auth::{ClientInfo, Principal};
use crate::{Engine, EngineError, EngineResult};
use atende_db::audit::NewAudit;
use atende_domain::settings::{
    self as registry, Locale, SettingDef, SettingError, SettingRefs, Settings,
};
use atende_domain::{FlowId, Profile, TenantId, UserId, ValidationError};
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Default)]
pub struct SettingsService {
    cache: RwLock<HashMap<TenantId, Arc<Settings>>>,
}

impl SettingsService {
    pub fn new() -> Self {
        Self::default()
    }

    fn cached(&self, tenant: TenantId) -> Option<Arc<Settings>> {
        self.cache.read().ok()?.get(&tenant).cloned()
    }

    fn store(&self, tenant: TenantId, settings: Arc<Settings>) {
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(tenant, settings);
        }
    }

    pub fn invalidate(&self, tenant: TenantId) {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(&tenant);
        }
    }
}

/// One row of `GET /api/v1/settings` (SPEC §13).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SettingView {
    pub key: &'static str,
    /// The current value; `null` for secrets (see `is_set`).
    pub value: Value,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub default: Value,
    pub group: &'static str,
    pub group_label: &'static str,
    pub label: &'static str,
    pub help: &'static str,
    /// Allowed members of `enum` and `set` settings; integer bounds of `int` settings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Secrets only: whether a value is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_set: Option<bool>,
}

/// Flow and admin ids the tenant has, looked up before validating a reference setting.
struct TenantRefs {
    flows: Vec<FlowId>,
    admins: Vec<UserId>,
}

impl SettingRefs for TenantRefs {
    fn flow_exists(&self, id: FlowId) -> bool {
        self.flows.contains(&id)
    }

    fn admin_user_exists(&self, id: UserId) -> bool {
        self.admins.contains(&id)
    }
}

impl Engine {
    /// The tenant's settings, defaults filled in. Cheap after the first call.
    pub async fn settings(&self, tenant: TenantId) -> EngineResult<Arc<Settings>> {
        if let Some(settings) = self.settings_service().cached(tenant) {
            return Ok(settings);
        }
        let stored = atende_db::settings::list(self.db(), tenant).await?;
        let settings = Arc::new(Settings::from_overrides(&stored));
        self.settings_service().store(tenant, settings.clone());
        Ok(settings)
    }

    pub async fn settings_view(
        &self,
        tenant: TenantId,
        locale: Locale,
    ) -> EngineResult<Vec<SettingView>> {
        let stored: HashMap<String, Value> = atende_db::settings::list(self.db(), tenant)
            .await?
            .into_iter()
            .collect();
        Ok(registry::registry()
            .iter()
            .map(|def| view_of(def, stored.get(def.key), locale))
            .collect())
    }

    /// Validates and stores one setting (admins only), audits old → new, drops the cache.
    pub async fn put_setting(
        &self,
        principal: &Principal,
        key: &str,
        value: &Value,
        client: &ClientInfo,
        locale: Locale,
    ) -> EngineResult<SettingView> {
        let tenant = principal.require_admin()?;
        let def = registry::find(key).ok_or(EngineError::NotFound)?;
        let current = self.settings(tenant).await?;
        let refs = self.refs_for(tenant, def).await?;
        let canonical =
            registry::validate_with(key, value, &current, &refs).map_err(|error| match error {
                SettingError::UnknownKey(_) => EngineError::NotFound,
                SettingError::Invalid { key, reason } => {
                    EngineError::Validation(ValidationError::field(key, reason))
                }
            })?;
        let old = atende_db::settings::get(self.db(), tenant, key).await?;
        let (to_store, audit_old, audit_new) = if def.is_secret() {
            let text = canonical.as_str().unwrap_or_default();
            let stored = if text.is_empty() {
                None
            } else {
                Some(Value::String(self.secrets().encrypt_text(text)))
            };
            let was_set = old.is_some();
            (
                stored.clone(),
                Value::from(if was_set { "set" } else { "unset" }),
                Value::from(if stored.is_some() { "set" } else { "unset" }),
            )
        } else {
            let old_value = old.clone().unwrap_or_else(|| def.default_value());
            (Some(canonical.clone()), old_value, canonical.clone())
        };
        match &to_store {
            Some(value) => {
                atende_db::settings::put(self.db(), tenant, key, value, Some(principal.user_id()))
                    .await?;
            }
            None => {
                atende_db::settings::delete(self.db(), tenant, key).await?;
            }
        }
        self.settings_service().invalidate(tenant);
        atende_db::audit::record(
            self.db(),
            Some(tenant),
            &NewAudit {
                user_id: Some(principal.user_id()),
                action: "setting.update".into(),
                entity: "setting".into(),
                entity_id: Some(key.to_owned()),
                detail: serde_json::json!({ "old": audit_old, "new": audit_new }),
                ip: Some(client.ip.clone()),
            },
        )
        .await?;
        tracing::info!(tenant = %tenant, key, user = %principal.user_id(), "setting changed");
        Ok(view_of(def, to_store.as_ref(), locale))
    }

    /// The decrypted SMTP password, when one is stored.
    pub async fn smtp_password(&self, tenant: TenantId) -> EngineResult<Option<String>> {
        let Some(stored) = atende_db::settings::get(self.db(), tenant, "smtp_password").await?
        else {
            return Ok(None);
        };
        let text = stored
            .as_str()
            .ok_or_else(|| EngineError::Decrypt("smtp_password is not text".into()))?;
        self.secrets().decrypt_text(text).map(Some)
    }

    async fn refs_for(&self, tenant: TenantId, def: &SettingDef) -> EngineResult<TenantRefs> {
        use registry::SettingKind;
        let mut refs = TenantRefs {
            flows: Vec::new(),
            admins: Vec::new(),
        };
        match def.kind {
            SettingKind::FlowRef => {
                refs.flows = atende_db::flows::list(self.db(), tenant)
                    .await?
                    .into_iter()
                    .map(|f| f.id)
                    .collect();
            }
            SettingKind::UserRef => {
                refs.admins = atende_db::users::list(self.db(), tenant)
                    .await?
                    .into_iter()
                    .filter(|u| u.profile == Some(Profile::Admin))
                    .map(|u| u.id)
                    .collect();
            }
            _ => {}
        }
        Ok(refs)
    }
}

fn view_of(def: &'static SettingDef, stored: Option<&Value>, locale: Locale) -> SettingView {
    use registry::SettingKind;
    let (options, min, max) = match &def.kind {
        SettingKind::Enum(members) | SettingKind::Set(members) => {
            (Some(members.to_vec()), None, None)
        }
        SettingKind::Int { min, max } => (None, Some(*min), Some(*max)),
        _ => (None, None, None),
    };
    let (value, is_set) = if def.is_secret() {
        (Value::Null, Some(stored.is_some()))
    } else {
        (stored.cloned().unwrap_or_else(|| def.default_value()), None)
    };
    SettingView {
        key: def.key,
        value,
        kind: def.kind.type_name(),
        default: if def.is_secret() {
            Value::Null
        } else {
            def.default_value()
        },
        group: def.group.as_str(),
        group_label: def.group.title(locale),
        label: def.label(locale),
        help: def.help(locale),
        options,
        min,
        max,
        is_set,
    }
}
