//! `PUT /api/v1/settings`: several settings in one request (the settings page's Save). Either
//! every value is accepted and stored, or none is.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Client, Json, Lang};
use crate::state::AppState;
use atende_domain::settings;
use atende_engine::settings::SettingView;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use serde::Deserialize;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/settings", put(update_many))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    /// New values by key, each of its setting's type (as `PUT /api/v1/settings/{key}` takes it).
    #[schema(value_type = Object)]
    values: serde_json::Map<String, serde_json::Value>,
}

/// Admins only. Unknown key → 404 naming it; any invalid value → 422 naming the first field at
/// fault, and nothing is stored. Answers the whole list, as `GET /api/v1/settings`.
#[utoipa::path(put, path = "/api/v1/settings", tag = "settings", request_body = SettingsInput,
    responses((status = 200, body = Vec<SettingView>), (status = 403), (status = 404), (status = 422)))]
pub async fn update_many(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(client): Client,
    Lang(locale): Lang,
    Json(input): Json<SettingsInput>,
) -> ApiResult<axum::Json<Vec<SettingView>>> {
    principal.require_admin()?;
    if let Some(unknown) = input
        .values
        .keys()
        .find(|key| settings::find(key).is_none())
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("unknown setting '{unknown}'"),
        )
        .with_field(unknown.clone()));
    }
    // In page order, so the error reported first is the one highest on the page.
    let mut changes: Vec<(String, serde_json::Value)> = input.values.into_iter().collect();
    changes.sort_by_key(|(key, _)| settings::registry().iter().position(|def| def.key == key));
    Ok(axum::Json(
        state
            .engine
            .put_settings(&principal, &changes, &client, locale)
            .await?,
    ))
}
