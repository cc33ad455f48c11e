//! Users of the tenant: profile, queues, business hours; presence is read-only (it comes from
//! live connections, SPEC §1).

use crate::api::{NoContent, double_option};
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;
use atende_domain::{Profile, QueueId, User, UserId, ValidationError, validation};
use atende_engine::EngineError;
use atende_engine::db::users::{self, UserPatch};
use atende_engine::people::{self, UserDraft};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route("/api/v1/users/{id}", get(show).patch(update).delete(remove))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    email: String,
    name: String,
    password: String,
    profile: Profile,
    #[serde(default)]
    #[schema(value_type = Vec<i64>)]
    queue_ids: Vec<QueueId>,
    #[serde(default)]
    business_hours: Option<serde_json::Value>,
    #[serde(default)]
    timezone: Option<String>,
    #[serde(default)]
    locale: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    email: Option<String>,
    name: Option<String>,
    /// Admins only.
    profile: Option<Profile>,
    /// Admins only.
    #[schema(value_type = Option<Vec<i64>>)]
    queue_ids: Option<Vec<QueueId>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    business_hours: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    timezone: Option<Option<String>>,
    locale: Option<String>,
    /// Admins only (a user changes their own with `PUT /api/v1/auth/password`).
    password: Option<String>,
}

/// Admins and supervisors see everyone; a user sees the list too (to transfer tickets) but only
/// names, profiles and queues matter to them.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = Vec<User>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<Vec<User>>> {
    let tenant = principal.tenant()?;
    Ok(axum::Json(users::list(state.engine.db(), tenant).await?))
}

#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 200, body = User), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<User>> {
    let tenant = principal.tenant()?;
    Ok(axum::Json(
        users::get(state.engine.db(), tenant, UserId(id)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = UserInput,
    responses((status = 201, body = User), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(input): Json<UserInput>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    let tenant = principal.require_admin()?;
    let user = state
        .engine
        .create_user(
            tenant,
            UserDraft {
                email: input.email,
                name: input.name,
                password: input.password,
                profile: input.profile,
                queue_ids: input.queue_ids,
                business_hours: input.business_hours,
                timezone: input.timezone,
                locale: input.locale,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// Admins edit anyone; others edit only their own name, e-mail, hours, timezone and language.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserUpdate,
    responses((status = 200, body = User), (status = 403), (status = 404), (status = 422)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<UserUpdate>,
) -> ApiResult<axum::Json<User>> {
    let tenant = principal.tenant()?;
    let id = UserId(id);
    let is_admin = principal.profile()? == Profile::Admin;
    if !is_admin {
        if id != principal.user_id() {
            return Err(
                EngineError::Forbidden("only administrators may edit other users".into()).into(),
            );
        }
        if input.profile.is_some() || input.queue_ids.is_some() || input.password.is_some() {
            return Err(EngineError::Forbidden(
                "only administrators may change profiles, queues or passwords of users".into(),
            )
            .into());
        }
    }
    if is_admin && id == principal.user_id() && input.profile.is_some_and(|p| p != Profile::Admin) {
        let admins = users::list_admin_ids(state.engine.db(), tenant).await?;
        if admins.len() <= 1 {
            return Err(EngineError::InvalidState(
                "the last administrator cannot give up the admin profile".into(),
            )
            .into());
        }
    }
    // Checked before anything is written, so a refused request changes nothing.
    if let Some(password) = &input.password {
        validation::password("password", password).map_err(ValidationError::from)?;
    }
    let patch = UserPatch {
        name: input
            .name
            .map(|n| validation::required_text("name", &n, 120))
            .transpose()
            .map_err(ValidationError::from)?,
        email: input
            .email
            .map(|e| validation::email("email", &e))
            .transpose()
            .map_err(ValidationError::from)?,
        profile: input.profile,
        business_hours: match input.business_hours {
            None => None,
            Some(None) => Some(None),
            Some(Some(v)) if v.is_null() => Some(None),
            Some(Some(v)) => Some(Some(people::schedule("business_hours", &v)?)),
        },
        timezone: match input.timezone {
            None => None,
            Some(None) => Some(None),
            Some(Some(tz)) => Some(Some(people::timezone("timezone", &tz)?)),
        },
        locale: input
            .locale
            .map(|l| people::locale("locale", &l))
            .transpose()?,
    };
    let user = state
        .engine
        .update_user(tenant, id, patch, input.queue_ids)
        .await?;
    if let Some(password) = input.password {
        state.engine.reset_password(tenant, id, &password).await?;
    }
    Ok(axum::Json(user))
}

#[utoipa::path(delete, path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<NoContent> {
    let tenant = principal.require_admin()?;
    if UserId(id) == principal.user_id() {
        return Err(EngineError::InvalidState("you cannot delete yourself".into()).into());
    }
    users::delete(state.engine.db(), tenant, UserId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
