//! The settings page (SPEC §10, §12): one control per registry entry, in the registry's groups and
//! order (which follow the seed page), labels and help from the registry itself. The page's script
//! (`settings.js`) sends what changed in one `PUT /api/v1/settings` and shows refusals next to
//! their field; secrets are never sent to the page, only whether one is stored.

use super::{Page, PanelError, Section, Viewer};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use atende_domain::settings::{Locale, SettingGroup, SettingKind, registry};
use atende_domain::{Flow, Profile, User};
use atende_engine::settings::SettingView;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::Value;

pub fn routes() -> Router<AppState> {
    Router::new().route("/settings", get(show))
}

#[derive(Template, WebTemplate)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub page: Page,
    pub groups: Vec<GroupView>,
}

/// One section of the page.
pub struct GroupView {
    pub id: &'static str,
    pub title: &'static str,
    pub fields: Vec<FieldView>,
}

/// One setting as the page shows it.
pub struct FieldView {
    pub key: &'static str,
    /// `type` of the API (`bool`, `int`, `schedule`…): tells the script how to read the control.
    pub kind: &'static str,
    pub label: &'static str,
    pub help: String,
    pub control: Control,
}

impl FieldView {
    /// Several inputs (a set, the hours editor): named by a group, not by one `<label for>`.
    pub fn is_group(&self) -> bool {
        matches!(
            self.control,
            Control::Several { .. } | Control::Schedule { .. }
        )
    }
}

/// The control a setting is edited with.
pub enum Control {
    Toggle {
        on: bool,
    },
    Number {
        value: i64,
        min: i64,
        max: i64,
    },
    /// A one-line input (`input_type` is `text` or `email`).
    Line {
        value: String,
        max_len: usize,
        input_type: &'static str,
    },
    /// A message or other long text.
    Paragraph {
        value: String,
        max_len: usize,
    },
    /// A time zone, typed with suggestions.
    Zone {
        value: String,
    },
    /// One of several (enums, the bot flow, the designated admin).
    Choice {
        options: Vec<Choice>,
    },
    /// Any of several.
    Several {
        options: Vec<Choice>,
    },
    /// One phone number per line.
    Phones {
        text: String,
    },
    /// The business-hours editor, started from this JSON.
    Schedule {
        json: String,
    },
    /// Only whether a value is stored; an empty field keeps it.
    Secret {
        is_set: bool,
    },
}

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Time zones offered as suggestions (any IANA name is accepted).
const ZONES: &[&str] = &[
    "America/Sao_Paulo",
    "America/Manaus",
    "America/Cuiaba",
    "America/Porto_Velho",
    "America/Boa_Vista",
    "America/Rio_Branco",
    "America/Belem",
    "America/Fortaleza",
    "America/Recife",
    "America/Bahia",
    "America/Maceio",
    "America/Araguaina",
    "America/Noronha",
    "America/Campo_Grande",
    "America/Santarem",
    "UTC",
];

impl SettingsPage {
    pub fn zones(&self) -> &'static [&'static str] {
        ZONES
    }
}

async fn show(State(state): State<AppState>, viewer: Viewer) -> Result<SettingsPage, PanelError> {
    let page = Page::for_section(&viewer, Section::Settings)?
        .module("settings.js")
        .strings(&["settings.", "admin.hours.", "admin.common."]);
    let locale = viewer.locale;
    let fail = |error| PanelError::from_engine(locale, error);
    let tenant = viewer.principal.tenant().map_err(fail)?;
    let views = state
        .engine
        .settings_view(tenant, locale)
        .await
        .map_err(fail)?;
    let db = state.engine.db();
    let flows = atende_engine::db::flows::list(db, tenant)
        .await
        .map_err(|e| fail(e.into()))?;
    let admins: Vec<User> = atende_engine::db::users::list(db, tenant)
        .await
        .map_err(|e| fail(e.into()))?
        .into_iter()
        .filter(|user| user.profile == Some(Profile::Admin))
        .collect();
    Ok(SettingsPage {
        page,
        groups: groups(&views, &flows, &admins, locale),
    })
}

/// The registry's groups in display order, each with its settings in registry order.
pub fn groups(
    views: &[SettingView],
    flows: &[Flow],
    admins: &[User],
    locale: Locale,
) -> Vec<GroupView> {
    SettingGroup::ALL
        .iter()
        .map(|group| GroupView {
            id: group.as_str(),
            title: group.title(locale),
            fields: registry()
                .iter()
                .filter(|def| def.group == *group)
                .filter_map(|def| {
                    let view = views.iter().find(|view| view.key == def.key)?;
                    let control = control(def.key, def.kind, view, flows, admins, locale);
                    Some(FieldView {
                        key: def.key,
                        kind: def.kind.type_name(),
                        label: def.label(locale),
                        help: help(def.help(locale), &control, locale),
                        control,
                    })
                })
                .collect(),
        })
        .filter(|group| !group.fields.is_empty())
        .collect()
}

/// The registry's help, with what this page adds about its own control.
fn help(registry_help: &str, control: &Control, locale: Locale) -> String {
    let t = |key| super::i18n::t(locale, key);
    match control {
        Control::Phones { .. } => format!("{registry_help} {}", t("settings.phones.help")),
        // The registry's help speaks of the API, where "" removes the secret; on this page an
        // empty field keeps it and removing is a box of its own.
        Control::Secret { .. } => t("settings.secret.keep_hint").to_owned(),
        _ => registry_help.to_owned(),
    }
}

/// A longer limit than this gets a multi-line box.
const ONE_LINE_MAX: usize = 300;

fn control(
    key: &str,
    kind: SettingKind,
    view: &SettingView,
    flows: &[Flow],
    admins: &[User],
    locale: Locale,
) -> Control {
    let value = &view.value;
    let text = || value.as_str().unwrap_or_default().to_owned();
    match kind {
        SettingKind::Bool => Control::Toggle {
            on: value.as_bool().unwrap_or(false),
        },
        SettingKind::Int { min, max } => Control::Number {
            value: value.as_i64().unwrap_or(min),
            min,
            max,
        },
        SettingKind::Text { max_len } if max_len > ONE_LINE_MAX => Control::Paragraph {
            value: text(),
            max_len,
        },
        SettingKind::Text { max_len } => Control::Line {
            value: text(),
            max_len,
            input_type: "text",
        },
        SettingKind::Email => Control::Line {
            value: text(),
            max_len: 254,
            input_type: "email",
        },
        SettingKind::Timezone => Control::Zone { value: text() },
        SettingKind::Enum(members) => Control::Choice {
            options: members
                .iter()
                .map(|member| Choice {
                    value: (*member).to_owned(),
                    label: option_label(locale, key, member),
                    selected: value.as_str() == Some(member),
                })
                .collect(),
        },
        SettingKind::Set(members) => {
            let chosen: Vec<&str> = value
                .as_array()
                .map(|items| items.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            Control::Several {
                options: members
                    .iter()
                    .map(|member| Choice {
                        value: (*member).to_owned(),
                        label: option_label(locale, key, member),
                        selected: chosen.contains(member),
                    })
                    .collect(),
            }
        }
        SettingKind::PhoneList => Control::Phones {
            text: value
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default(),
        },
        SettingKind::FlowRef => {
            let current = value.as_i64();
            let none = Choice {
                value: String::new(),
                label: super::i18n::t(locale, "settings.choice.no_flow").to_owned(),
                selected: current.is_none(),
            };
            let mut options = vec![none];
            options.extend(flows.iter().map(|flow| Choice {
                value: flow.id.0.to_string(),
                label: flow.name.clone(),
                selected: current == Some(flow.id.0),
            }));
            Control::Choice { options }
        }
        SettingKind::UserRef => {
            let current = value.as_i64();
            let first = Choice {
                value: String::new(),
                label: super::i18n::t(locale, "settings.choice.first_admin").to_owned(),
                selected: current.is_none(),
            };
            let mut options = vec![first];
            options.extend(admins.iter().map(|admin| Choice {
                value: admin.id.0.to_string(),
                label: format!("{} <{}>", admin.name, admin.email),
                selected: current == Some(admin.id.0),
            }));
            Control::Choice { options }
        }
        SettingKind::Schedule => Control::Schedule {
            json: value.to_string(),
        },
        SettingKind::Secret => Control::Secret {
            is_set: view.is_set.unwrap_or(false),
        },
    }
}

/// The words for a member of an enum or set setting (`settings.option.<key>.<member>`); the wire
/// value itself when no translation exists.
fn option_label(locale: Locale, key: &str, member: &str) -> String {
    super::i18n::lookup(locale, &format!("settings.option.{key}.{member}"))
        .unwrap_or(member)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use atende_domain::settings::Settings;

    fn views() -> Vec<SettingView> {
        let settings = Settings::default();
        registry()
            .iter()
            .map(|def| SettingView {
                key: def.key,
                value: if def.is_secret() {
                    Value::Null
                } else {
                    settings.value(def.key).unwrap_or(Value::Null)
                },
                kind: def.kind.type_name(),
                default: Value::Null,
                group: def.group.as_str(),
                group_label: def.group.title(Locale::PtBr),
                label: def.label(Locale::PtBr),
                help: def.help(Locale::PtBr),
                options: None,
                min: None,
                max: None,
                is_set: def.is_secret().then_some(true),
            })
            .collect()
    }

    #[test]
    fn every_registry_setting_is_on_the_page_once_in_its_group() {
        let groups = groups(&views(), &[], &[], Locale::PtBr);
        let shown: Vec<&str> = groups
            .iter()
            .flat_map(|g| g.fields.iter().map(|f| f.key))
            .collect();
        let all: Vec<&str> = registry().iter().map(|def| def.key).collect();
        assert_eq!(shown, all, "registry order, nothing missing or repeated");
        let smtp = groups.last().map(|g| g.id);
        assert_eq!(smtp, Some("smtp"), "the SMTP block closes the page");
    }

    #[test]
    fn the_smtp_password_is_shown_only_as_set_or_not_set() {
        let groups = groups(&views(), &[], &[], Locale::PtBr);
        let password = groups
            .iter()
            .flat_map(|g| g.fields.iter())
            .find(|f| f.key == "smtp_password");
        assert!(matches!(
            password.map(|f| &f.control),
            Some(Control::Secret { is_set: true })
        ));
        // Here an empty field keeps the password (the API's "" would remove it).
        assert_eq!(
            password.map(|f| f.help.as_str()),
            Some(super::super::i18n::t(
                Locale::PtBr,
                "settings.secret.keep_hint"
            ))
        );
    }

    #[test]
    fn enum_and_set_members_have_words_in_both_languages() {
        for def in registry() {
            let members = match def.kind {
                SettingKind::Enum(members) | SettingKind::Set(members) => members,
                _ => continue,
            };
            for member in members {
                let key = format!("settings.option.{}.{member}", def.key);
                for locale in Locale::ALL {
                    assert!(super::super::i18n::lookup(*locale, &key).is_some(), "{key}");
                }
            }
        }
    }
}
