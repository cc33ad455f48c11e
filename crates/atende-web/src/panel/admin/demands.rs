//! Demands: the reasons a ticket is closed with (SPEC §3).

use super::admin_page;
use crate::panel::{Page, PanelError, Section, Viewer};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/demands", get(show))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/demands.html")]
pub struct DemandsPage {
    pub page: Page,
}

async fn show(viewer: Viewer) -> Result<DemandsPage, PanelError> {
    Ok(DemandsPage {
        page: admin_page(&viewer, Section::Demands, "admin-demands.js")?,
    })
}
