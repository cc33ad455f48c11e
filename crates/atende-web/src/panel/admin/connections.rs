//! Connections: live status, web-chat widget snippet, and the QR code / pairing area the WhatsApp channel will fill (SPEC §12).

use super::admin_page;
use crate::panel::{Page, PanelError, Section, Viewer};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/connections", get(show))
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/connections.html")]
pub struct ConnectionsPage {
    pub page: Page,
}

async fn show(viewer: Viewer) -> Result<ConnectionsPage, PanelError> {
    Ok(ConnectionsPage {
        page: admin_page(&viewer, Section::Connections, "admin-connections.js")?,
    })
}
