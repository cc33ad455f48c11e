//! Contacts: search, edit, tags, wallet owners, block/unblock and merge of duplicates (SPEC §2,
//! §12). Every user may open it; the wallet, blocking and merging are offered to managers only
//! (the API refuses them to others anyway).

use super::{admin_page, is_manager};
use crate::panel::{Page, PanelError, Section, Viewer};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/contacts", get(show))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/contacts.html")]
pub struct ContactsPage {
    pub page: Page,
    pub manager: bool,
}

async fn show(viewer: Viewer) -> Result<ContactsPage, PanelError> {
    Ok(ContactsPage {
        manager: is_manager(&viewer),
        page: admin_page(&viewer, Section::Contacts, "admin-contacts.js")?,
    })
}
