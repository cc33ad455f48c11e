//! Tags of contacts and tickets.

use super::admin_page;
use crate::panel::{Page, PanelError, Section, Viewer};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/tags", get(show))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/tags.html")]
pub struct TagsPage {
    pub page: Page,
}

async fn show(viewer: Viewer) -> Result<TagsPage, PanelError> {
    Ok(TagsPage {
        page: admin_page(&viewer, Section::Tags, "admin-tags.js")?,
    })
}
