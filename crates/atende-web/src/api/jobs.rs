//! Background jobs (maintenance actions) and their progress.

use crate::error::ApiResult;
use crate::extract::{Auth, Path};
use crate::state::AppState;
use atende_domain::{Job, JobId};
use axum::Router;
use axum::extract::State;
use axum::routing::get;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/jobs/{id}", get(show))
}

/// `{status, progress, total, result}` of a job of the caller's tenant.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(("id" = i64, Path)),
    responses((status = 200, body = Job), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Job>> {
    let tenant = principal.require_manager()?;
    Ok(axum::Json(
        atende_engine::db::jobs::get(state.engine.db(), tenant, JobId(id)).await?,
    ))
}
