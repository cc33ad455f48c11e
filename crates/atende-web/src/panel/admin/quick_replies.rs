//! Quick replies (typed as `/shortcut` in the chat): everyone keeps personal ones; managers also
//! share global ones.

use super::{admin_page, is_manager};
use crate::panel::{Page, PanelError, Section, Viewer};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/quick-replies", get(show))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/quick_replies.html")]
pub struct QuickRepliesPage {
    pub page: Page,
    pub manager: bool,
    /// Whose personal replies the viewer may change.
    pub user_id: i64,
}

async fn show(viewer: Viewer) -> Result<QuickRepliesPage, PanelError> {
    Ok(QuickRepliesPage {
        manager: is_manager(&viewer),
        user_id: viewer.principal.user_id().0,
        page: admin_page(&viewer, Section::QuickReplies, "admin-quick-replies.js")?,
    })
}
