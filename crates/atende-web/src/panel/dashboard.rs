//! The dashboard (SPEC §12), for administrators and supervisors: attendances per day, tickets by
//! status, first-response and resolution times per queue and per agent, drawn by our own SVG code
//! (`charts.js`), each chart with a data table beside it.
//!
//! The filters are a plain GET form (`/dashboard?from=&to=&queue_id=&user_id=`): the page asks
//! the engine for the figures (the same call as `GET /api/v1/dashboard`, so the same rules decide
//! who sees what) and hands them to `dashboard.js` inside the page; the script redraws from the
//! API when a filter changes, without a reload. A filter the engine refuses (a bad period, a
//! queue that does not exist) is said in a notice and the default figures are shown instead of an
//! error page.

use super::{Page, PanelError, Section, Viewer, i18n};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use atende_domain::settings::Locale;
use atende_domain::{QueueId, UserId, text};
use atende_engine::EngineError;
use atende_engine::dashboard::{Dashboard, DashboardQuery, DashboardScope};
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::routing::get;
use serde::Deserialize;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new().route("/dashboard", get(show))
}

/// The filter form's fields; anything unreadable counts as not given.
#[derive(Debug, Default, Deserialize)]
struct Filters {
    from: Option<String>,
    to: Option<String>,
    queue_id: Option<String>,
    user_id: Option<String>,
}

impl Filters {
    fn parse(raw: Option<&str>) -> Filters {
        raw.and_then(|query| serde_urlencoded::from_str(query).ok())
            .unwrap_or_default()
    }

    fn query(self) -> DashboardQuery {
        DashboardQuery {
            from: self.from,
            to: self.to,
            queue_id: id(self.queue_id.as_deref()).map(QueueId),
            user_id: id(self.user_id.as_deref()).map(UserId),
        }
    }
}

fn id(raw: Option<&str>) -> Option<i64> {
    raw.and_then(|text| text.trim().parse().ok())
}

/// An entry of the queue or agent filter.
pub struct Choice {
    pub id: i64,
    pub name: String,
    pub selected: bool,
}

/// Entries by name (accents and case ignored), the chosen one marked.
fn choices(names: HashMap<i64, String>, chosen: Option<i64>) -> Vec<Choice> {
    let mut list: Vec<Choice> = names
        .into_iter()
        .map(|(id, name)| Choice {
            id,
            selected: chosen == Some(id),
            name,
        })
        .collect();
    list.sort_by_cached_key(|choice| (text::fold(&choice.name), choice.id));
    list
}

/// A section of durations (first response, resolution): its id in the page and its words.
pub struct TimesSection {
    pub id: &'static str,
    pub title: &'static str,
    pub help: &'static str,
}

fn times_sections(locale: Locale) -> [TimesSection; 2] {
    [
        TimesSection {
            id: "first_response",
            title: i18n::t(locale, "dashboard.page.first_response"),
            help: i18n::t(locale, "dashboard.page.first_response_help"),
        },
        TimesSection {
            id: "resolution",
            title: i18n::t(locale, "dashboard.page.resolution"),
            help: i18n::t(locale, "dashboard.page.resolution_help"),
        },
    ]
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub struct DashboardPage {
    pub page: Page,
    pub from: String,
    pub to: String,
    pub queues: Vec<Choice>,
    /// Empty when the viewer sees only their own figures (the agent filter is then hidden).
    pub agents: Vec<Choice>,
    pub own_scope: bool,
    pub measures: [TimesSection; 2],
    /// The longest period the engine accepts, for the form's own check.
    pub max_days: u64,
    /// Why the figures shown are not the ones asked for.
    pub notice: Option<&'static str>,
    /// The figures as JSON, safe inside `<script>`.
    pub data: String,
}

async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<DashboardPage, PanelError> {
    let page = Page::for_section(&viewer, Section::Dashboard)?
        .module("dashboard.js")
        .strings(&["dashboard.js.", "dashboard.status."]);
    let locale = viewer.locale;
    let failed = |error| PanelError::from_engine(locale, error);
    let asked = Filters::parse(raw.as_deref()).query();
    let (figures, notice) = match state.engine.dashboard(&viewer.principal, &asked).await {
        Ok(figures) => (figures, None),
        Err(error) => {
            let notice = match error {
                EngineError::Validation(_) => "dashboard.error.period",
                EngineError::UnknownReference { .. } => "dashboard.error.filter",
                EngineError::Forbidden(_) => "dashboard.error.own_only",
                other => return Err(failed(other)),
            };
            let default = DashboardQuery::default();
            let figures = state
                .engine
                .dashboard(&viewer.principal, &default)
                .await
                .map_err(failed)?;
            (figures, Some(notice))
        }
    };
    let tenant = viewer.principal.tenant().map_err(failed)?;
    let labels = atende_engine::db::dashboard::labels(state.engine.db(), tenant)
        .await
        .map_err(|error| failed(error.into()))?;
    let own_scope = figures.scope == DashboardScope::Own;
    let queues = choices(
        labels.queues.into_iter().map(|(q, n)| (q.0, n)).collect(),
        figures.queue_id.map(|q| q.0),
    );
    let agents = if own_scope {
        Vec::new()
    } else {
        choices(
            labels.users.into_iter().map(|(u, n)| (u.0, n)).collect(),
            figures.user_id.map(|u| u.0),
        )
    };
    Ok(DashboardPage {
        page,
        from: figures.from.clone(),
        to: figures.to.clone(),
        queues,
        agents,
        own_scope,
        measures: times_sections(locale),
        max_days: atende_domain::dashboard::MAX_DAYS,
        notice,
        data: figures_json(&figures),
    })
}

fn figures_json(figures: &Dashboard) -> String {
    match serde_json::to_string(figures) {
        Ok(json) => i18n::script_safe_json(&json),
        Err(error) => {
            tracing::error!(%error, "dashboard figures cannot be written as JSON");
            "null".to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use atende_engine::dashboard::StatusFigures;

    #[test]
    fn unreadable_filters_count_as_not_given() {
        let query = Filters::parse(Some("from=2025-03-01&queue_id=abc&user_id=%207%20")).query();
        assert_eq!(query.from.as_deref(), Some("2025-03-01"));
        assert_eq!(query.to, None);
        assert_eq!(query.queue_id, None);
        assert_eq!(query.user_id, Some(UserId(7)));
    }

    /// dashboard.js builds these keys from the figures' field names and its duration units.
    #[test]
    fn every_key_the_dashboard_script_builds_exists() {
        let catalog = i18n::load().unwrap_or_else(|error| panic!("{error}"));
        let statuses = serde_json::to_value(StatusFigures {
            pending: 0,
            open: 0,
            paused: 0,
            closed: 0,
        })
        .unwrap_or_default();
        let statuses = statuses.as_object().cloned().unwrap_or_default();
        assert_eq!(statuses.len(), 4);
        let units = ["day", "hour", "minute", "second"];
        let keys = statuses
            .keys()
            .map(|status| format!("dashboard.status.{status}"))
            .chain(units.iter().map(|unit| format!("dashboard.js.{unit}")));
        for key in keys {
            assert!(catalog.contains_key(&key), "{key}");
        }
    }

    #[test]
    fn filter_choices_are_ordered_by_name_ignoring_accents_and_case() {
        let names = HashMap::from([
            (1, "suporte".to_owned()),
            (2, "Álvaro".to_owned()),
            (3, "Bruno".to_owned()),
        ]);
        let list = choices(names, Some(3));
        let order: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(order, ["Álvaro", "Bruno", "suporte"]);
        assert!(list.iter().all(|c| c.selected == (c.id == 3)));
    }
}
