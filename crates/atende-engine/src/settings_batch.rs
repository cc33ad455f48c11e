//! Several settings changed at once (the settings page's Save, `PUT /api/v1/settings`).
//!
//! Every value is checked before any is written, alone and against the other new values (the
//! cadence pair must keep min ≤ max after the whole change, not after each half of it), so a
//! refused save changes nothing. Each accepted value is then stored and audited by the same
//! [`Engine::put_setting`] a single change goes through.

use crate::auth::{ClientInfo, Principal};
use crate::settings::SettingView;
use crate::{Engine, EngineError, EngineResult};
use atende_domain::settings::{
    self as registry, Locale, SettingError, SettingKind, SettingRefs, Settings,
};
use atende_domain::{FieldError, FlowId, TenantId, UserId, ValidationError};
use serde_json::Value;

/// Flow and admin ids of the tenant, loaded only when a change refers to one.
struct LoadedRefs {
    flows: Vec<FlowId>,
    admins: Vec<UserId>,
}

impl SettingRefs for LoadedRefs {
    fn flow_exists(&self, id: FlowId) -> bool {
        self.flows.contains(&id)
    }

    fn admin_user_exists(&self, id: UserId) -> bool {
        self.admins.contains(&id)
    }
}

impl Engine {
    /// Validates every `(key, value)` (all errors are reported together, in the given order),
    /// then stores them; answers the whole settings list as `GET /api/v1/settings` shows it.
    /// Admins only; an unknown key is `NotFound` and nothing is stored.
    pub async fn put_settings(
        &self,
        principal: &Principal,
        changes: &[(String, Value)],
        client: &ClientInfo,
        locale: Locale,
    ) -> EngineResult<Vec<SettingView>> {
        let tenant = principal.require_admin()?;
        let mut kinds = Vec::with_capacity(changes.len());
        for (key, _) in changes {
            kinds.push(registry::find(key).ok_or(EngineError::NotFound)?.kind);
        }
        let refs = self.refs_for_kinds(tenant, &kinds).await?;
        let current = self.settings(tenant).await?;

        let mut target = Settings::clone(&current);
        let mut errors = Vec::new();
        for (key, value) in changes {
            match registry::validate(key, value, &refs) {
                Ok(canonical) => {
                    target.apply_override(key, &canonical);
                }
                Err(error) => errors.push(field_error(error)),
            }
        }
        if errors.is_empty() {
            for (key, value) in changes {
                if let Err(error) = registry::validate_with(key, value, &target, &refs) {
                    errors.push(field_error(error));
                }
            }
        }
        if !errors.is_empty() {
            return Err(EngineError::Validation(ValidationError(errors)));
        }

        for (key, value) in write_order(changes, &current) {
            self.put_setting(principal, key, value, client, locale)
                .await?;
        }
        self.settings_view(tenant, locale).await
    }

    async fn refs_for_kinds(
        &self,
        tenant: TenantId,
        kinds: &[SettingKind],
    ) -> EngineResult<LoadedRefs> {
        let mut refs = LoadedRefs {
            flows: Vec::new(),
            admins: Vec::new(),
        };
        if kinds.contains(&SettingKind::FlowRef) {
            refs.flows = atende_db::flows::list(self.db(), tenant)
                .await?
                .into_iter()
                .map(|flow| flow.id)
                .collect();
        }
        if kinds.contains(&SettingKind::UserRef) {
            refs.admins = atende_db::users::list_admin_ids(self.db(), tenant).await?;
        }
        Ok(refs)
    }
}

fn field_error(error: SettingError) -> FieldError {
    match error {
        SettingError::UnknownKey(key) => FieldError::new(key, "unknown setting"),
        SettingError::Invalid { key, reason } => FieldError::new(key, reason),
    }
}

/// The order in which single writes accept the changes: each write is checked against the values
/// stored so far, so a minimum raised above the current maximum must wait for the new maximum.
fn write_order<'a>(changes: &'a [(String, Value)], current: &Settings) -> Vec<&'a (String, Value)> {
    let mut ordered: Vec<&(String, Value)> = changes.iter().collect();
    let min_passes_current_max = changes.iter().any(|(key, value)| {
        key == "send_delay_min_ms"
            && value
                .as_i64()
                .is_some_and(|min| min > current.send_delay_max_ms)
    });
    if min_passes_current_max {
        // Stable: only the maximum moves to the front.
        ordered.sort_by_key(|(key, _)| key != "send_delay_max_ms");
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(ordered: &[&(String, Value)]) -> Vec<String> {
        ordered.iter().map(|(key, _)| key.clone()).collect()
    }

    #[test]
    fn a_minimum_raised_above_the_current_maximum_is_written_after_the_new_maximum() {
        let current = Settings::default();
        let changes = vec![
            ("fast_send".to_owned(), json!(true)),
            (
                "send_delay_min_ms".to_owned(),
                json!(current.send_delay_max_ms + 1),
            ),
            (
                "send_delay_max_ms".to_owned(),
                json!(current.send_delay_max_ms + 2),
            ),
        ];
        assert_eq!(
            keys(&write_order(&changes, &current)),
            ["send_delay_max_ms", "fast_send", "send_delay_min_ms"]
        );
    }

    #[test]
    fn otherwise_changes_are_written_in_the_order_given() {
        let current = Settings::default();
        let changes = vec![
            ("send_delay_min_ms".to_owned(), json!(0)),
            ("send_delay_max_ms".to_owned(), json!(100)),
            ("tab_counters".to_owned(), json!(false)),
        ];
        assert_eq!(
            keys(&write_order(&changes, &current)),
            ["send_delay_min_ms", "send_delay_max_ms", "tab_counters"]
        );
    }
}
