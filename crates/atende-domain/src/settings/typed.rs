//! The resolved, typed settings of one tenant that the rules read: registry defaults plus the
//! tenant's stored overrides, so no caller handles raw JSON or repeats a default.

use chrono_tz::Tz;
use serde_json::Value;
use std::sync::OnceLock;

use super::{SettingRefs, find, registry};
use crate::hours::{DEFAULT_TIMEZONE, WeeklySchedule, parse_timezone};
use crate::ids::{FlowId, UserId};

crate::wire_enum!(
    /// How the SMTP connection is secured (`smtp_security`).
    SmtpSecurity { None = "none", StartTls = "starttls", Tls = "tls" }
);

/// The members of `feature_controls`: what plain users are additionally allowed to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeatureControls {
    /// Read a pending ticket's messages before accepting it (SPEC §5).
    pub spy: bool,
    /// Close a pending ticket without accepting it first.
    pub force_close: bool,
}

impl FeatureControls {
    /// Wire names, in the order the stored set keeps them.
    pub const NAMES: &'static [&'static str] = &["spy", "force_close"];
}

/// Conversion between a field of [`Settings`] and the canonical JSON of its setting. Only ever
/// given values that already passed validation, hence `Option` rather than an error.
trait SettingField: Sized {
    fn fallback() -> Self;
    fn from_canonical(value: &Value) -> Option<Self>;
    fn to_canonical(&self) -> Value;
}

/// Declares [`Settings`] with one field per setting; a field is named exactly like its key, which
/// is how `apply_override` and `value` find it.
macro_rules! typed_settings {
    (
        values { $($(#[$meta:meta])* $field:ident: $ty:ty,)* }
        secrets { $($(#[$secret_meta:meta])* $secret_field:ident = $secret_key:literal,)* }
    ) => {
        /// Every tenant setting, typed. `Default` is the registry's defaults.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Settings {
            $($(#[$meta])* pub $field: $ty,)*
            $($(#[$secret_meta])* pub $secret_field: bool,)*
        }

        impl Settings {
            fn fallback() -> Self {
                Self { $($field: SettingField::fallback(),)* $($secret_field: false,)* }
            }

            fn set_canonical(&mut self, key: &str, value: &Value) -> bool {
                match key {
                    $(stringify!($field) => match SettingField::from_canonical(value) {
                        Some(typed) => {
                            self.$field = typed;
                            true
                        }
                        None => false,
                    },)*
                    _ => false,
                }
            }

            fn set_secret(&mut self, key: &str, set: bool) -> bool {
                match key {
                    $($secret_key => {
                        self.$secret_field = set;
                        true
                    })*
                    _ => false,
                }
            }

            /// The current value of `key` as canonical JSON; for a secret, only whether it is set
            /// (`true`/`false`), never the secret. `None` for an unknown key.
            pub fn value(&self, key: &str) -> Option<Value> {
                match key {
                    $(stringify!($field) => Some(self.$field.to_canonical()),)*
                    $($secret_key => Some(Value::Bool(self.$secret_field)),)*
                    _ => None,
                }
            }
        }
    };
}

typed_settings! {
    values {
        hide_others_tickets: bool,
        hide_bot_tickets: bool,
        show_unassigned_to_all: bool,
        supervisor_sees_as_user: bool,
        show_groups_to_all: bool,
        show_closed_to_all: bool,
        show_message_history: bool,
        hide_old_tickets: bool,
        old_ticket_days: i64,
        force_wallet_routing: bool,
        wallet_overflow: bool,
        disable_integrations_in_wallet: bool,
        keep_user_on_pending: bool,
        force_admin_on_pending: bool,
        /// `None` = the first admin of the tenant.
        designated_admin: Option<UserId>,
        active_bot_flow: Option<FlowId>,
        chatbot_tab: bool,
        integration_wait_for_reply: bool,
        allow_pause: bool,
        require_demand_on_close: bool,
        /// Agents cannot switch the signature off (seed label: "Desabilitar controle de assinatura").
        enforce_signature: bool,
        feature_controls: FeatureControls,
        reopen_window_minutes: i64,
        fast_send: bool,
        send_delay_min_ms: i64,
        send_delay_max_ms: i64,
        waba_send_outside_window: bool,
        persist_media_download: bool,
        media_download_attempts: i64,
        ignore_group_messages: bool,
        ignore_instagram_stories: bool,
        reject_calls: bool,
        /// Empty = send nothing after rejecting.
        reject_call_message: String,
        keep_contact_name: bool,
        /// E.164, unique.
        blocked_numbers: Vec<String>,
        pin_connections_top: bool,
        /// `true`: lists sort by `last_inbound_at`; `false`: by `updated_at`.
        order_by_last_message: bool,
        tab_counters: bool,
        sound_notifications: bool,
        audio_recorder_plugin: bool,
        audio_waveform: bool,
        tickets_page_size: i64,
        chat_messages_page_size: i64,
        timezone: Tz,
        business_hours: WeeklySchedule,
        /// Empty = send nothing.
        out_of_hours_message: String,
        /// 0 = never.
        out_of_hours_message_max: i64,
        use_user_business_hours: bool,
        auto_resolve_idle: bool,
        auto_resolve_after_minutes: i64,
        /// Empty = close without a message.
        auto_resolve_message: String,
        smtp_enabled: bool,
        /// Empty = not configured.
        smtp_host: String,
        smtp_port: i64,
        smtp_username: String,
        smtp_security: SmtpSecurity,
        /// Empty = use `smtp_username` as the sender.
        smtp_from: String,
    }
    secrets {
        /// Whether an SMTP password is stored; the encrypted value is handled by the store.
        smtp_password_set = "smtp_password",
    }
}

impl Default for Settings {
    fn default() -> Self {
        static DEFAULTS: OnceLock<Settings> = OnceLock::new();
        DEFAULTS
            .get_or_init(|| {
                let mut settings = Settings::fallback();
                for def in registry() {
                    settings.apply_override(def.key, &def.default_value());
                }
                settings
            })
            .clone()
    }
}

/// Stored values were checked against the tenant's flows and users when they were written; a flow
/// deleted since is the store's business (its reference is cleared there), not a reason to refuse
/// to start.
struct RefsAlreadyChecked;

impl SettingRefs for RefsAlreadyChecked {
    fn flow_exists(&self, _id: FlowId) -> bool {
        true
    }

    fn admin_user_exists(&self, _id: UserId) -> bool {
        true
    }
}

impl Settings {
    /// The defaults with the tenant's stored overrides applied, in order (a repeated key: the last
    /// wins). Unknown keys and values that no longer validate are skipped, so an old database never
    /// breaks start-up.
    pub fn from_overrides(overrides: &[(String, Value)]) -> Settings {
        Self::from_overrides_reporting(overrides).0
    }

    /// [`Settings::from_overrides`], also returning the keys that were skipped (a pair of cadence
    /// delays with min above max is skipped as a pair, both back to their defaults).
    pub fn from_overrides_reporting(overrides: &[(String, Value)]) -> (Settings, Vec<String>) {
        let mut settings = Settings::default();
        let mut ignored = Vec::new();
        for (key, value) in overrides {
            if !settings.apply_override(key, value) {
                ignored.push(key.clone());
            }
        }
        if settings.send_delay_min_ms > settings.send_delay_max_ms {
            let defaults = Settings::default();
            settings.send_delay_min_ms = defaults.send_delay_min_ms;
            settings.send_delay_max_ms = defaults.send_delay_max_ms;
            for key in ["send_delay_min_ms", "send_delay_max_ms"] {
                if !ignored.iter().any(|ignored| ignored == key) {
                    ignored.push(key.to_owned());
                }
            }
        }
        (settings, ignored)
    }

    /// Applies one stored value; `false` (and no change) when the key is unknown or the value does
    /// not validate. Cross-setting rules are not checked here: writes go through
    /// [`super::validate_with`].
    ///
    /// For a secret, `stored` is whatever the store keeps for it: a non-empty string (the
    /// ciphertext) or `true` means "set", `null`, `""` or `false` means "not set".
    pub fn apply_override(&mut self, key: &str, stored: &Value) -> bool {
        let Some(def) = find(key) else {
            return false;
        };
        if def.is_secret() {
            let set = match stored {
                Value::Null => false,
                Value::Bool(set) => *set,
                Value::String(text) => !text.is_empty(),
                _ => return false,
            };
            return self.set_secret(def.key, set);
        }
        match def.canonical(stored, &RefsAlreadyChecked) {
            Ok(canonical) => self.set_canonical(def.key, &canonical),
            Err(_) => false,
        }
    }
}

impl SettingField for bool {
    fn fallback() -> Self {
        false
    }
    fn from_canonical(value: &Value) -> Option<Self> {
        value.as_bool()
    }
    fn to_canonical(&self) -> Value {
        Value::Bool(*self)
    }
}

impl SettingField for i64 {
    fn fallback() -> Self {
        0
    }
    fn from_canonical(value: &Value) -> Option<Self> {
        value.as_i64()
    }
    fn to_canonical(&self) -> Value {
        Value::from(*self)
    }
}

impl SettingField for String {
    fn fallback() -> Self {
        String::new()
    }
    fn from_canonical(value: &Value) -> Option<Self> {
        value.as_str().map(str::to_owned)
    }
    fn to_canonical(&self) -> Value {
        Value::String(self.clone())
    }
}

impl SettingField for Vec<String> {
    fn fallback() -> Self {
        Vec::new()
    }
    fn from_canonical(value: &Value) -> Option<Self> {
        value
            .as_array()?
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect()
    }
    fn to_canonical(&self) -> Value {
        Value::Array(self.iter().cloned().map(Value::String).collect())
    }
}

impl SettingField for Option<FlowId> {
    fn fallback() -> Self {
        None
    }
    fn from_canonical(value: &Value) -> Option<Self> {
        if value.is_null() {
            Some(None)
        } else {
            value.as_i64().map(|id| Some(FlowId(id)))
        }
    }
    fn to_canonical(&self) -> Value {
        self.map_or(Value::Null, |id| Value::from(id.0))
    }
}

impl SettingField for Option<UserId> {
    fn fallback() -> Self {
        None
    }
    fn from_canonical(value: &Value) -> Option<Self> {
        if value.is_null() {
            Some(None)
        } else {
            value.as_i64().map(|id| Some(UserId(id)))
        }
    }
    fn to_canonical(&self) -> Value {
        self.map_or(Value::Null, |id| Value::from(id.0))
    }
}

impl SettingField for FeatureControls {
    fn fallback() -> Self {
        Self::default()
    }
    fn from_canonical(value: &Value) -> Option<Self> {
        let mut controls = Self::default();
        for item in value.as_array()? {
            match item.as_str()? {
                "spy" => controls.spy = true,
                "force_close" => controls.force_close = true,
                _ => return None,
            }
        }
        Some(controls)
    }
    fn to_canonical(&self) -> Value {
        let chosen = [("spy", self.spy), ("force_close", self.force_close)];
        Value::Array(
            chosen
                .into_iter()
                .filter(|(_, on)| *on)
                .map(|(name, _)| Value::String(name.to_owned()))
                .collect(),
        )
    }
}

impl SettingField for Tz {
    fn fallback() -> Self {
        DEFAULT_TIMEZONE
    }
    fn from_canonical(value: &Value) -> Option<Self> {
        parse_timezone(value.as_str()?).ok()
    }
    fn to_canonical(&self) -> Value {
        Value::String(self.name().to_owned())
    }
}

impl SettingField for WeeklySchedule {
    fn fallback() -> Self {
        WeeklySchedule::always_open()
    }
    fn from_canonical(value: &Value) -> Option<Self> {
        WeeklySchedule::from_json(value, "business_hours").ok()
    }
    fn to_canonical(&self) -> Value {
        self.to_json()
    }
}

impl SettingField for SmtpSecurity {
    fn fallback() -> Self {
        SmtpSecurity::StartTls
    }
    fn from_canonical(value: &Value) -> Option<Self> {
        SmtpSecurity::parse(value.as_str()?)
    }
    fn to_canonical(&self) -> Value {
        Value::String(self.as_str().to_owned())
    }
}
