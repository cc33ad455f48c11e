//! The tenant's settings (SPEC §10): every registry key with value, default, type, group, label.

use crate::error::ApiResult;
use crate::extract::{Auth, Client, Json, Lang, Path};
use crate::state::AppState;
use atende_engine::EngineError;
use atende_engine::settings::SettingView;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/settings", get(list))
        .route("/api/v1/settings/{key}", get(show).put(update))
}

#[utoipa::path(get, path = "/api/v1/settings", tag = "settings",
    responses((status = 200, body = Vec<SettingView>), (status = 401)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Lang(locale): Lang,
) -> ApiResult<axum::Json<Vec<SettingView>>> {
    let tenant = principal.tenant()?;
    Ok(axum::Json(
        state.engine.settings_view(tenant, locale).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/settings/{key}", tag = "settings", params(("key" = String, Path)),
    responses((status = 200, body = SettingView), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Lang(locale): Lang,
    Path(key): Path<String>,
) -> ApiResult<axum::Json<SettingView>> {
    let tenant = principal.tenant()?;
    let view = state.engine.settings_view(tenant, locale).await?;
    let found = view
        .into_iter()
        .find(|s| s.key == key)
        .ok_or(EngineError::NotFound)?;
    Ok(axum::Json(found))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingInput {
    /// The new value, of the setting's type.
    value: serde_json::Value,
}

/// Admins only. Unknown key → 404; wrong type or range → 422 with the reason.
#[utoipa::path(put, path = "/api/v1/settings/{key}", tag = "settings", params(("key" = String, Path)),
    request_body = SettingInput,
    responses((status = 200, body = SettingView), (status = 403), (status = 404), (status = 422)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(client): Client,
    Lang(locale): Lang,
    Path(key): Path<String>,
    Json(input): Json<SettingInput>,
) -> ApiResult<axum::Json<SettingView>> {
    Ok(axum::Json(
        state
            .engine
            .put_setting(&principal, &key, &input.value, &client, locale)
            .await?,
    ))
}
