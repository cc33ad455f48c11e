//! The maintenance page (SPEC §10, §12), admins only: one card per maintenance action with what
//! it does, a button, a live progress bar and the result summary.
//!
//! The page only describes the actions; `maintenance.js` starts one with
//! `POST /api/v1/maintenance/{action}` (which answers the running job when it is already going,
//! so a second click is harmless) and follows its job with `GET /api/v1/jobs/{id}`.

use super::{Page, PanelError, Section, Viewer, i18n};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use atende_domain::maintenance::MaintenanceAction;
use atende_domain::settings::Locale;
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/maintenance", get(show))
}

/// One action's card.
pub struct ActionCard {
    /// The action's wire name (`fix_ticket_dates`): the card's `data-action` and the API path.
    pub id: &'static str,
    pub title: &'static str,
    pub help: &'static str,
}

impl ActionCard {
    fn of(locale: Locale, action: MaintenanceAction) -> ActionCard {
        let id = action.as_str();
        // `maintenance_page_names_every_action` keeps both keys of every action present.
        let text = |part: &str| i18n::lookup(locale, &format!("maintenance.action.{id}.{part}"));
        ActionCard {
            id,
            title: text("title").unwrap_or(id),
            help: text("help").unwrap_or_default(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "maintenance.html")]
pub struct MaintenancePage {
    pub page: Page,
    pub actions: Vec<ActionCard>,
}

async fn show(viewer: Viewer) -> Result<MaintenancePage, PanelError> {
    let page = Page::for_section(&viewer, Section::Maintenance)?
        .module("maintenance.js")
        .strings(&["maintenance.js.", "maintenance.result."]);
    let actions = MaintenanceAction::ALL
        .iter()
        .map(|action| ActionCard::of(viewer.locale, *action))
        .collect();
    Ok(MaintenancePage { page, actions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_page_names_every_action() {
        let catalog = i18n::load().unwrap_or_else(|error| panic!("{error}"));
        for action in MaintenanceAction::ALL {
            for part in ["title", "help"] {
                let key = format!("maintenance.action.{}.{part}", action.as_str());
                assert!(catalog.contains_key(&key), "{key}");
            }
            let results = format!("maintenance.result.{}.", action.as_str());
            assert!(
                catalog.keys().any(|key| key.starts_with(&results)),
                "the result summary of {} has labels",
                action.as_str()
            );
        }
        let card = ActionCard::of(Locale::En, MaintenanceAction::FixTicketDates);
        assert_eq!(card.id, "fix_ticket_dates");
        assert_eq!(card.title, "Fix ticket dates");
        assert!(card.help.contains("from its messages"), "{}", card.help);
    }
}
