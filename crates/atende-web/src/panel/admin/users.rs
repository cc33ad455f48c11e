//! Users: profile, queues, language, time zone, business hours, password reset (SPEC §1, §12).

use super::admin_page;
use crate::panel::{Page, PanelError, Section, Viewer};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/users", get(show))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    pub page: Page,
}

async fn show(viewer: Viewer) -> Result<UsersPage, PanelError> {
    Ok(UsersPage {
        page: admin_page(&viewer, Section::Users, "admin-users.js")?,
    })
}
