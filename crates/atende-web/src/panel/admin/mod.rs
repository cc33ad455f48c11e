//! The administration pages; one module (and one template under `templates/admin/`) per page.
//!
//! Each page is a skeleton (headings, labelled forms in `<dialog>`s, empty tables) rendered here;
//! its script (`admin-<page>.js`, helpers in `admin.js`) fills the tables from the JSON API and
//! saves through it, so the page obeys exactly the API's rules and refusals.

pub mod connections;
pub mod contacts;
pub mod demands;
pub mod queues;
pub mod quick_replies;
pub mod tags;
pub mod users;

use crate::panel::{Page, PanelError, Section, Viewer};
use crate::state::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(contacts::routes())
        .merge(queues::routes())
        .merge(users::routes())
        .merge(connections::routes())
        .merge(demands::routes())
        .merge(tags::routes())
        .merge(quick_replies::routes())
}

/// The page of `section` with its script and the admin pages' words.
pub fn admin_page(
    viewer: &Viewer,
    section: Section,
    module: &'static str,
) -> Result<Page, PanelError> {
    Ok(Page::for_section(viewer, section)?
        .module(module)
        .strings(&["admin."]))
}

/// Admins and supervisors: they may block contacts, set wallets, merge, and share quick replies.
pub fn is_manager(viewer: &Viewer) -> bool {
    viewer
        .principal
        .user
        .profile
        .is_some_and(|profile| profile.can_manage_tenant_data())
}

#[cfg(test)]
mod tests {
    use crate::panel::i18n;
    use atende_domain::settings::Locale;
    use atende_domain::{ChannelKind, ConnectionStatus, Presence, Profile};

    /// The scripts build these keys from API values (`admin.kind.${kind}`…), which the key
    /// scanner cannot see: every value the API can answer has its words.
    #[test]
    fn every_key_the_admin_scripts_build_from_api_values_exists() {
        let mut keys: Vec<String> = Vec::new();
        keys.extend(Profile::ALL.iter().map(|p| format!("admin.profile.{p}")));
        keys.extend(Presence::ALL.iter().map(|p| format!("admin.presence.{p}")));
        keys.extend(ChannelKind::ALL.iter().map(|k| format!("admin.kind.{k}")));
        keys.extend(
            ConnectionStatus::ALL
                .iter()
                .map(|s| format!("admin.status.{s}")),
        );
        for part in [
            "mon",
            "tue",
            "wed",
            "thu",
            "fri",
            "sat",
            "sun",
            "start",
            "end",
            "mode_inherit",
            "mode_always",
            "mode_custom",
        ] {
            keys.push(format!("admin.hours.{part}"));
        }
        for key in keys {
            for locale in Locale::ALL {
                assert!(i18n::lookup(*locale, &key).is_some(), "{key} in {locale}");
            }
        }
    }
}
