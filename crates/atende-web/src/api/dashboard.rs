//! The dashboard's figures (SPEC §12): attendances per day, tickets by status, first-response and
//! resolution times per queue and agent. Who sees what is the engine's
//! (`atende_engine::dashboard`): admins the whole tenant, agents their own figures.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Query};
use crate::state::AppState;
use atende_domain::{QueueId, UserId};
use atende_engine::dashboard::{Dashboard, DashboardQuery};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/dashboard", get(show))
}

/// Query of `GET /api/v1/dashboard`; empty values mean "not given".
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DashboardParams {
    /// First day, `YYYY-MM-DD` in the tenant's zone; default 29 days before `to`.
    from: Option<String>,
    /// Last day (included), `YYYY-MM-DD`; default today. At most 366 days after `from`.
    to: Option<String>,
    /// Only attendances of this queue (status counts: tickets now in it).
    queue_id: Option<String>,
    /// Only attendances owned by this agent. Agents may give only their own id.
    user_id: Option<String>,
}

/// An id in the query; a malformed one is a 400 naming the parameter.
fn id(name: &'static str, raw: Option<&str>) -> ApiResult<Option<i64>> {
    match raw.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("{name}: '{text}' is not a number")).with_field(name)
        }),
    }
}

#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard", params(DashboardParams),
    responses((status = 200, body = Dashboard),
        (status = 400, description = "a malformed queue_id or user_id"),
        (status = 401),
        (status = 403, description = "an agent asking for another agent's figures"),
        (status = 404, description = "the queue or user of the filter does not exist"),
        (status = 422, description = "a malformed date, from after to, or more than 366 days")))]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(params): Query<DashboardParams>,
) -> ApiResult<axum::Json<Dashboard>> {
    let query = DashboardQuery {
        from: params.from,
        to: params.to,
        queue_id: id("queue_id", params.queue_id.as_deref())?.map(QueueId),
        user_id: id("user_id", params.user_id.as_deref())?.map(UserId),
    };
    Ok(axum::Json(
        state.engine.dashboard(&principal, &query).await?,
    ))
}
