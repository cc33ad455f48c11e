//! Queues: name, colour, greeting, absence message and business hours (SPEC §2, §8, §12).

use super::admin_page;
use crate::panel::{Page, PanelError, Section, Viewer};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/queues", get(show))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/queues.html")]
pub struct QueuesPage {
    pub page: Page,
}

async fn show(viewer: Viewer) -> Result<QueuesPage, PanelError> {
    Ok(QueuesPage {
        page: admin_page(&viewer, Section::Queues, "admin-queues.js")?,
    })
}
