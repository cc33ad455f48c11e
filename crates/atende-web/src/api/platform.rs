//! Platform operators (superadmins) manage tenants; they see no tenant's conversations.

use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;
use atende_domain::{Tenant, TenantId, User};
use atende_engine::db::tenants;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/platform/tenants", get(list).post(create))
        .route("/api/v1/platform/tenants/{id}", patch(update))
}

#[utoipa::path(get, path = "/api/v1/platform/tenants", tag = "platform",
    responses((status = 200, body = Vec<Tenant>), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<Vec<Tenant>>> {
    principal.require_superadmin()?;
    Ok(axum::Json(tenants::platform_list(state.engine.db()).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantInput {
    slug: String,
    name: String,
    admin_email: String,
    admin_password: String,
    #[serde(default)]
    admin_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TenantCreated {
    tenant: Tenant,
    admin: User,
}

#[utoipa::path(post, path = "/api/v1/platform/tenants", tag = "platform", request_body = TenantInput,
    responses((status = 201, body = TenantCreated), (status = 403), (status = 409), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(input): Json<TenantInput>,
) -> ApiResult<(StatusCode, axum::Json<TenantCreated>)> {
    principal.require_superadmin()?;
    let (tenant, admin) = state
        .engine
        .create_tenant(
            &input.slug,
            &input.name,
            &input.admin_email,
            &input.admin_password,
            input.admin_name.as_deref(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TenantCreated { tenant, admin }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    /// A suspended tenant's users cannot log in and their tokens stop working.
    suspended: bool,
}

#[utoipa::path(patch, path = "/api/v1/platform/tenants/{id}", tag = "platform", params(("id" = i64, Path)),
    request_body = TenantUpdate, responses((status = 200, body = Tenant), (status = 403), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<TenantUpdate>,
) -> ApiResult<axum::Json<Tenant>> {
    principal.require_superadmin()?;
    Ok(axum::Json(
        tenants::platform_set_suspended(state.engine.db(), TenantId(id), input.suspended).await?,
    ))
}
