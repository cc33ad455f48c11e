//! Queues (filas): name, colour, greeting, absence message and business hours.

use crate::api::{NoContent, double_option};
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;
use atende_domain::{Profile, Queue, QueueId, ValidationError, validation};
use atende_engine::EngineError;
use atende_engine::db::queues::{self, NewQueue, QueuePatch};
use atende_engine::people::schedule;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/queues", get(list).post(create))
        .route(
            "/api/v1/queues/{id}",
            get(show).patch(update).delete(remove),
        )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueInput {
    name: String,
    #[serde(default = "default_color")]
    color: String,
    #[serde(default)]
    greeting: String,
    #[serde(default)]
    absence_message: String,
    /// Weekly windows (see `business_hours` in the settings); `null` = the tenant's hours.
    #[serde(default)]
    business_hours: Option<serde_json::Value>,
}

fn default_color() -> String {
    "#5b6cff".to_owned()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueUpdate {
    name: Option<String>,
    color: Option<String>,
    greeting: Option<String>,
    absence_message: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    business_hours: Option<Option<serde_json::Value>>,
}

const MAX_TEXT: usize = 4096;

fn long_text(field: &str, value: &str) -> Result<String, ValidationError> {
    if value.chars().count() > MAX_TEXT {
        return Err(ValidationError::field(
            field,
            format!("must be at most {MAX_TEXT} characters"),
        ));
    }
    Ok(value.trim().to_owned())
}

#[utoipa::path(get, path = "/api/v1/queues", tag = "queues", responses((status = 200, body = Vec<Queue>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<Vec<Queue>>> {
    let tenant = principal.tenant()?;
    Ok(axum::Json(queues::list(state.engine.db(), tenant).await?))
}

#[utoipa::path(get, path = "/api/v1/queues/{id}", tag = "queues", params(("id" = i64, Path)), responses((status = 200, body = Queue), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Queue>> {
    let tenant = principal.tenant()?;
    Ok(axum::Json(
        queues::get(state.engine.db(), tenant, QueueId(id)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/queues", tag = "queues", request_body = QueueInput, responses((status = 201, body = Queue), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(input): Json<QueueInput>,
) -> ApiResult<(StatusCode, axum::Json<Queue>)> {
    let tenant = principal.require_admin()?;
    let new = NewQueue {
        name: validation::required_text("name", &input.name, 100).map_err(ValidationError::from)?,
        color: validation::color("color", &input.color).map_err(ValidationError::from)?,
        greeting: long_text("greeting", &input.greeting)?,
        absence_message: long_text("absence_message", &input.absence_message)?,
        business_hours: input
            .business_hours
            .as_ref()
            .filter(|v| !v.is_null())
            .map(|v| schedule("business_hours", v))
            .transpose()?,
    };
    let queue = queues::create(state.engine.db(), tenant, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(queue)))
}

#[utoipa::path(patch, path = "/api/v1/queues/{id}", tag = "queues", params(("id" = i64, Path)), request_body = QueueUpdate, responses((status = 200, body = Queue), (status = 403), (status = 404), (status = 422)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<QueueUpdate>,
) -> ApiResult<axum::Json<Queue>> {
    let tenant = principal.require_manager()?;
    let id = QueueId(id);
    let db = state.engine.db();
    // Supervisors manage only the queues they belong to (SPEC §1).
    let existing = queues::get(db, tenant, id).await?;
    if principal.profile()? == Profile::Supervisor
        && !principal.user.queue_ids.contains(&existing.id)
    {
        return Err(
            EngineError::Forbidden("supervisors may edit only their own queues".into()).into(),
        );
    }
    let patch = QueuePatch {
        name: input
            .name
            .map(|n| validation::required_text("name", &n, 100))
            .transpose()
            .map_err(ValidationError::from)?,
        color: input
            .color
            .map(|c| validation::color("color", &c))
            .transpose()
            .map_err(ValidationError::from)?,
        greeting: input
            .greeting
            .map(|g| long_text("greeting", &g))
            .transpose()?,
        absence_message: input
            .absence_message
            .map(|a| long_text("absence_message", &a))
            .transpose()?,
        business_hours: match input.business_hours {
            None => None,
            Some(None) => Some(None),
            Some(Some(value)) if value.is_null() => Some(None),
            Some(Some(value)) => Some(Some(schedule("business_hours", &value)?)),
        },
    };
    Ok(axum::Json(queues::update(db, tenant, id, &patch).await?))
}

#[utoipa::path(delete, path = "/api/v1/queues/{id}", tag = "queues", params(("id" = i64, Path)), responses((status = 204), (status = 404)))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<NoContent> {
    let tenant = principal.require_admin()?;
    queues::delete(state.engine.db(), tenant, QueueId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
