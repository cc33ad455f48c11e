//! `/api/v1`: one module per resource, assembled here.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod connections;
pub mod contacts;
pub mod dashboard;
pub mod flows;
pub mod health;
pub mod jobs;
pub mod maintenance;
pub mod message_files;
pub mod platform;
pub mod queues;
pub mod settings;
pub mod settings_batch;
pub mod templates;
pub mod ticket_commands;
pub mod ticket_messages;
pub mod tickets;
pub mod users;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(health::routes())
        .merge(auth::routes())
        .merge(platform::routes())
        .merge(settings::routes())
        .merge(settings_batch::routes())
        .merge(users::routes())
        .merge(queues::routes())
        .merge(contacts::routes())
        .merge(connections::routes())
        .merge(templates::routes())
        .merge(catalog::routes())
        .merge(flows::routes())
        .merge(jobs::routes())
        .merge(maintenance::routes())
        .merge(audit::routes())
        .merge(tickets::routes())
        .merge(ticket_commands::routes())
        .merge(ticket_messages::routes())
        .merge(message_files::routes())
        .merge(dashboard::routes())
}

pub async fn not_found() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "not_found",
        "no such route",
    )
}

/// `204 No Content`.
pub type NoContent = axum::http::StatusCode;

/// Deserialises a field that may be absent, `null`, or a value, keeping the three apart
/// (`None` = leave as is, `Some(None)` = clear, `Some(Some(v))` = set).
pub fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}
