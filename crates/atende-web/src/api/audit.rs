//! The audit log of the tenant (who did what, when, from which IP), newest first; admins only.

use crate::error::ApiResult;
use crate::extract::{Auth, Query};
use crate::state::AppState;
use atende_domain::{AuditEntry, AuditId};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use utoipa::IntoParams;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/audit", get(list))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries older than this id (the last id of the previous page).
    before: Option<i64>,
    /// 1–200, default 50.
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Query(query): Query<AuditQuery>,
) -> ApiResult<axum::Json<Vec<AuditEntry>>> {
    let tenant = principal.require_admin()?;
    let limit = query.limit.unwrap_or(50).clamp(1, 200);
    let entries =
        atende_engine::db::audit::list(state.engine.db(), tenant, limit, query.before.map(AuditId))
            .await?;
    Ok(axum::Json(entries))
}
