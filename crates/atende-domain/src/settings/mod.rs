//! The tenant settings registry (SPEC §10): the one place that knows every setting's key, type,
//! default, group, labels, help and validation, so the API, the settings page, storage and the
//! rules cannot disagree about them.
//!
//! Storage keeps only a tenant's overrides as canonical JSON (what [`validate`] returns); the rest of
//! the code reads the typed [`Settings`] built from them.

mod registry;
mod typed;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use utoipa::ToSchema;

use crate::hours::{WeeklySchedule, parse_timezone};
use crate::ids::{FlowId, UserId};
use crate::phone::normalize_e164;
use crate::validation::{self, FieldError};

pub use registry::registry;
pub use typed::{FeatureControls, Settings, SmtpSecurity};

/// The languages of the panel; pt-BR is the product's first language (SPEC §12).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Locale {
    #[default]
    #[serde(rename = "pt-BR")]
    PtBr,
    #[serde(rename = "en")]
    En,
}

impl Locale {
    pub const ALL: &'static [Locale] = &[Locale::PtBr, Locale::En];

    /// Reads a language tag (`pt-BR`, `pt`, `en`, `en-US`, `en_GB`) or an `Accept-Language` header
    /// (its first entry wins). Anything unrecognised is pt-BR, the product's default.
    pub fn parse(tag: &str) -> Locale {
        let first = tag.split(',').next().unwrap_or("");
        let language = first.split(';').next().unwrap_or("").trim();
        let primary = language.split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("en") {
            Locale::En
        } else {
            Locale::PtBr
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::PtBr => "pt-BR",
            Locale::En => "en",
        }
    }

    fn pick(self, pt: &'static str, en: &'static str) -> &'static str {
        match self {
            Locale::PtBr => pt,
            Locale::En => en,
        }
    }
}

impl std::fmt::Display for Locale {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The type of a setting, with the bounds its validation enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    /// Trimmed; counted in characters.
    Text {
        max_len: usize,
    },
    /// One of the listed wire values.
    Enum(&'static [&'static str]),
    /// Any subset of the listed values, stored in the listed order.
    Set(&'static [&'static str]),
    /// Phone numbers stored in E.164, without duplicates.
    PhoneList,
    /// A flow of the tenant, or `null`.
    FlowRef,
    /// An admin of the tenant, or `null`.
    UserRef,
    /// An IANA time zone name.
    Timezone,
    /// A [`WeeklySchedule`] in its JSON shape.
    Schedule,
    /// An e-mail address, or `""` for unset.
    Email,
    /// Encrypted at rest by the caller and never returned; only "is it set" is visible.
    Secret,
}

impl SettingKind {
    /// The `type` field of `GET /api/v1/settings`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SettingKind::Bool => "bool",
            SettingKind::Int { .. } => "int",
            SettingKind::Text { .. } => "text",
            SettingKind::Enum(_) => "enum",
            SettingKind::Set(_) => "set",
            SettingKind::PhoneList => "phone_list",
            SettingKind::FlowRef => "flow_id",
            SettingKind::UserRef => "user_id",
            SettingKind::Timezone => "timezone",
            SettingKind::Schedule => "schedule",
            SettingKind::Email => "email",
            SettingKind::Secret => "secret",
        }
    }
}

crate::wire_enum!(
    /// Sections of the settings page, in display order (`SettingGroup::ALL`).
    SettingGroup {
        Visibility = "visibility",
        Routing = "routing",
        Chatbot = "chatbot",
        Tickets = "tickets",
        Sending = "sending",
        Channels = "channels",
        Interface = "interface",
        Hours = "hours",
        Smtp = "smtp",
    }
);

impl SettingGroup {
    pub fn title(self, locale: Locale) -> &'static str {
        match self {
            SettingGroup::Visibility => {
                locale.pick("Visualização de atendimentos", "Ticket visibility")
            }
            SettingGroup::Routing => locale.pick("Distribuição e carteira", "Routing and wallet"),
            SettingGroup::Chatbot => {
                locale.pick("Chatbot e integrações", "Chatbot and integrations")
            }
            SettingGroup::Tickets => locale.pick("Atendimento", "Ticket handling"),
            SettingGroup::Sending => locale.pick("Envio de mensagens", "Message sending"),
            SettingGroup::Channels => {
                locale.pick("Canais, grupos e chamadas", "Channels, groups and calls")
            }
            SettingGroup::Interface => locale.pick("Interface", "Interface"),
            SettingGroup::Hours => locale.pick(
                "Horário de atendimento e automações",
                "Business hours and automations",
            ),
            SettingGroup::Smtp => locale.pick("E-mail (SMTP)", "E-mail (SMTP)"),
        }
    }
}

/// A default that can live in a `static` (a `serde_json::Value` cannot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingDefault {
    Bool(bool),
    Int(i64),
    /// Also the default of enum, timezone and e-mail settings.
    Text(&'static str),
    Null,
    EmptyList,
    /// `{"always_open":true}`: never out of hours.
    AlwaysOpen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingDef {
    pub key: &'static str,
    pub kind: SettingKind,
    pub group: SettingGroup,
    pub label_pt: &'static str,
    pub label_en: &'static str,
    pub help_pt: &'static str,
    pub help_en: &'static str,
    pub default: SettingDefault,
}

impl SettingDef {
    /// The default in the same canonical JSON that [`validate`] returns.
    pub fn default_value(&self) -> Value {
        match self.default {
            SettingDefault::Bool(value) => Value::Bool(value),
            SettingDefault::Int(value) => Value::from(value),
            SettingDefault::Text(value) => Value::String(value.to_owned()),
            SettingDefault::Null => Value::Null,
            SettingDefault::EmptyList => Value::Array(Vec::new()),
            SettingDefault::AlwaysOpen => WeeklySchedule::always_open().to_json(),
        }
    }

    pub fn label(&self, locale: Locale) -> &'static str {
        locale.pick(self.label_pt, self.label_en)
    }

    pub fn help(&self, locale: Locale) -> &'static str {
        locale.pick(self.help_pt, self.help_en)
    }

    pub fn is_secret(&self) -> bool {
        self.kind == SettingKind::Secret
    }

    /// Checks `value` against the kind and returns the canonical form; the error is the reason.
    fn canonical(&self, value: &Value, refs: &dyn SettingRefs) -> Result<Value, String> {
        let canonical = match self.kind {
            SettingKind::Bool => value
                .as_bool()
                .map(Value::Bool)
                .ok_or("must be true or false")?,
            SettingKind::Int { min, max } => Value::from(check_int(value, min, max)?),
            SettingKind::Text { max_len } => Value::String(check_text(value, max_len)?),
            SettingKind::Enum(allowed) => Value::String(check_enum(value, allowed)?),
            SettingKind::Set(allowed) => check_set(value, allowed)?,
            SettingKind::PhoneList => check_phone_list(value)?,
            SettingKind::FlowRef => match check_id(value, "a flow id")? {
                None => Value::Null,
                Some(id) if refs.flow_exists(FlowId(id)) => Value::from(id),
                Some(id) => return Err(format!("flow {id} does not exist in this tenant")),
            },
            SettingKind::UserRef => match check_id(value, "a user id")? {
                None => Value::Null,
                Some(id) if refs.admin_user_exists(UserId(id)) => Value::from(id),
                Some(id) => return Err(format!("user {id} is not an admin of this tenant")),
            },
            SettingKind::Timezone => {
                let name = value
                    .as_str()
                    .ok_or("must be an IANA time zone name like America/Sao_Paulo")?;
                let tz = parse_timezone(name).map_err(|error| error.message)?;
                Value::String(tz.name().to_owned())
            }
            SettingKind::Schedule => WeeklySchedule::from_json(value, self.key)
                .map(|schedule| schedule.to_json())
                .map_err(|error| reason_under(self.key, error))?,
            SettingKind::Email => match value.as_str().map(str::trim) {
                Some("") => Value::String(String::new()),
                Some(text) => {
                    Value::String(validation::email(self.key, text).map_err(|error| error.message)?)
                }
                None => return Err("must be an e-mail address, or \"\" for none".to_owned()),
            },
            SettingKind::Secret => match value {
                Value::Null => Value::Null,
                Value::String(text) if text.is_empty() => Value::Null,
                Value::String(text) if text.chars().count() > SECRET_MAX_CHARS => {
                    return Err(format!("must be at most {SECRET_MAX_CHARS} characters"));
                }
                Value::String(text) => Value::String(text.clone()),
                _ => return Err("must be a string, or null to remove it".to_owned()),
            },
        };
        if self.key == "smtp_host"
            && canonical
                .as_str()
                .is_some_and(|host| host.contains(char::is_whitespace))
        {
            return Err("must be a host name like smtp.example.com, without spaces".to_owned());
        }
        Ok(canonical)
    }
}

/// Longer than any real SMTP password; the cap only protects the settings row.
const SECRET_MAX_CHARS: usize = 1024;

/// A tenant-wide list this long is almost certainly a mistaken paste.
pub const MAX_BLOCKED_NUMBERS: usize = 10_000;

/// Upper bound of the cadence delays (SPEC §7), shared with per-connection overrides.
pub const SEND_DELAY_LIMIT_MS: i64 = 60_000;

pub fn find(key: &str) -> Option<&'static SettingDef> {
    registry().iter().find(|def| def.key == key)
}

/// What the application must check against its data when validating (flow ids and user ids
/// exist in the tenant). Implemented by the caller; keep validation itself pure.
pub trait SettingRefs {
    fn flow_exists(&self, id: FlowId) -> bool;
    fn admin_user_exists(&self, id: UserId) -> bool;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// Maps to 404.
    #[error("unknown setting '{0}'")]
    UnknownKey(String),
    /// Maps to 422; `reason` is written for the person who typed the value.
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// Validates and normalises a new value for `key`: returns the canonical JSON to store.
///
/// Phone lists come back in E.164 without duplicates or blank entries; sets in registry order;
/// time zones in their IANA spelling; schedules sorted; e-mails lower-cased; texts trimmed. Flow and
/// admin refs accept `null`. A secret comes back as the plain string for the caller to encrypt, or
/// `null` (from `null` or `""`) meaning "remove it".
pub fn validate(key: &str, value: &Value, refs: &dyn SettingRefs) -> Result<Value, SettingError> {
    let def = find(key).ok_or_else(|| SettingError::UnknownKey(key.to_owned()))?;
    def.canonical(value, refs)
        .map_err(|reason| SettingError::Invalid {
            key: def.key.to_owned(),
            reason,
        })
}

/// [`validate`] plus the rules that relate a setting to the tenant's other current values: the one
/// the API must call.
pub fn validate_with(
    key: &str,
    value: &Value,
    current: &Settings,
    refs: &dyn SettingRefs,
) -> Result<Value, SettingError> {
    let canonical = validate(key, value, refs)?;
    let invalid = |reason: String| SettingError::Invalid {
        key: key.to_owned(),
        reason,
    };
    match (key, canonical.as_i64()) {
        ("send_delay_min_ms", Some(min)) if min > current.send_delay_max_ms => {
            Err(invalid(format!(
                "{min} is above send_delay_max_ms ({}); send_delay_min_ms must not exceed send_delay_max_ms",
                current.send_delay_max_ms
            )))
        }
        ("send_delay_max_ms", Some(max)) if max < current.send_delay_min_ms => {
            Err(invalid(format!(
                "{max} is below send_delay_min_ms ({}); send_delay_min_ms must not exceed send_delay_max_ms",
                current.send_delay_min_ms
            )))
        }
        _ => Ok(canonical),
    }
}

/// The cadence rule of SPEC §7 (each delay in 0..=60000 ms, min ≤ max), for per-connection
/// overrides, which are not settings but obey the same rule.
pub fn check_send_delays(min_ms: i64, max_ms: i64) -> Result<(), FieldError> {
    for (field, value) in [("send_delay_min_ms", min_ms), ("send_delay_max_ms", max_ms)] {
        if !(0..=SEND_DELAY_LIMIT_MS).contains(&value) {
            return Err(FieldError::new(
                field,
                format!("must be between 0 and {SEND_DELAY_LIMIT_MS}, got {value}"),
            ));
        }
    }
    if min_ms > max_ms {
        return Err(FieldError::new(
            "send_delay_min_ms",
            format!(
                "{min_ms} is above send_delay_max_ms ({max_ms}); the minimum must not exceed the maximum"
            ),
        ));
    }
    Ok(())
}

/// Turns `business_hours.days.mon[1].end: …` into `days.mon[1].end: …`, since the error already
/// names the setting.
fn reason_under(key: &str, error: FieldError) -> String {
    match error
        .field
        .strip_prefix(key)
        .and_then(|rest| rest.strip_prefix('.'))
    {
        Some(path) => format!("{path}: {}", error.message),
        None => error.message,
    }
}

fn check_int(value: &Value, min: i64, max: i64) -> Result<i64, String> {
    let number = value
        .as_i64()
        .ok_or_else(|| format!("must be a whole number between {min} and {max}"))?;
    if (min..=max).contains(&number) {
        Ok(number)
    } else {
        Err(format!("must be between {min} and {max}, got {number}"))
    }
}

fn check_text(value: &Value, max_len: usize) -> Result<String, String> {
    let text = value.as_str().ok_or("must be a text")?.trim();
    let chars = text.chars().count();
    if chars > max_len {
        return Err(format!("must be at most {max_len} characters, got {chars}"));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err("must not contain control characters".to_owned());
    }
    Ok(text.to_owned())
}

fn check_enum(value: &Value, allowed: &[&str]) -> Result<String, String> {
    match value.as_str() {
        Some(text) if allowed.contains(&text) => Ok(text.to_owned()),
        Some(text) => Err(format!("'{text}' is not one of: {}", allowed.join(", "))),
        None => Err(format!("must be one of: {}", allowed.join(", "))),
    }
}

fn check_set(value: &Value, allowed: &[&str]) -> Result<Value, String> {
    let items = value
        .as_array()
        .ok_or_else(|| format!("must be a list of: {}", allowed.join(", ")))?;
    let mut chosen = HashSet::new();
    for item in items {
        chosen.insert(check_enum(item, allowed)?);
    }
    Ok(Value::Array(
        allowed
            .iter()
            .filter(|member| chosen.contains(**member))
            .map(|member| Value::String((*member).to_owned()))
            .collect(),
    ))
}

fn check_phone_list(value: &Value) -> Result<Value, String> {
    let items = value.as_array().ok_or("must be a list of phone numbers")?;
    if items.len() > MAX_BLOCKED_NUMBERS {
        return Err(format!(
            "at most {MAX_BLOCKED_NUMBERS} numbers, got {}",
            items.len()
        ));
    }
    let mut numbers = Vec::new();
    let mut seen = HashSet::new();
    let mut invalid = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let Some(raw) = item.as_str() else {
            invalid.push(format!("entry {index} is not a text"));
            continue;
        };
        if raw.trim().is_empty() {
            continue;
        }
        match normalize_e164(raw) {
            Ok(number) => {
                if seen.insert(number.clone()) {
                    numbers.push(number);
                }
            }
            Err(error) => invalid.push(error.to_string()),
        }
    }
    if !invalid.is_empty() {
        return Err(format!("invalid phone numbers: {}", invalid.join("; ")));
    }
    Ok(Value::Array(
        numbers.into_iter().map(Value::String).collect(),
    ))
}

/// `null` or a positive integer id.
fn check_id(value: &Value, what: &str) -> Result<Option<i64>, String> {
    match value {
        Value::Null => Ok(None),
        _ => match value.as_i64() {
            Some(id) if id > 0 => Ok(Some(id)),
            _ => Err(format!("must be {what} or null")),
        },
    }
}

#[cfg(test)]
mod tests;
