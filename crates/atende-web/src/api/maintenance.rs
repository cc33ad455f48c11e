//! Maintenance actions (SPEC §10, §13): `POST /api/v1/maintenance/{action}` starts an admin's
//! repair job and answers it at once (202); `GET /api/v1/jobs/{id}` (`jobs.rs`) shows its
//! progress and, when done, its result summary.

use crate::error::{ApiError, ApiResult};
use crate::extract::{Auth, Client, Path};
use crate::state::AppState;
use atende_domain::maintenance::MaintenanceAction;
use atende_domain::{Job, JobId};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use serde::Serialize;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/maintenance/{action}", post(start))
}

/// The job running the action.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceStarted {
    pub job_id: JobId,
    /// The same action was already queued or running: this is that job, no second one started.
    pub already_running: bool,
    #[serde(flatten)]
    pub job: Job,
}

/// Admins only. Starts `send_stuck_messages`, `resolve_failed_messages`, `validate_contacts`,
/// `fix_imported_message_dates` or `fix_ticket_dates` as a background job; while the same action
/// is running in the tenant, answers that job.
#[utoipa::path(post, path = "/api/v1/maintenance/{action}", tag = "maintenance",
    params(("action" = MaintenanceAction, Path)),
    responses(
        (status = 202, description = "the job running the action", body = MaintenanceStarted),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, description = "no such action", body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Client(client): Client,
    Path(action): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<MaintenanceStarted>)> {
    // Roles first: who may not run actions learns nothing about which exist.
    principal.require_admin()?;
    let action = MaintenanceAction::parse(&action).ok_or_else(|| unknown_action(&action))?;
    let started = state
        .engine
        .start_maintenance(&principal, action, &client)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(MaintenanceStarted {
            job_id: started.job.id,
            already_running: started.already_running,
            job: started.job,
        }),
    ))
}

fn unknown_action(action: &str) -> ApiError {
    let known: Vec<&str> = MaintenanceAction::ALL.iter().map(|a| a.as_str()).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no maintenance action '{action}'; expected one of: {}",
            known.join(", ")
        ),
    )
    .with_field("action")
}
