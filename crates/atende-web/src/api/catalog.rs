//! The tenant's small catalogues: demands (closing reasons), tags and quick replies.
//!
//! Everyone reads demands and tags (agents pick them while attending); managers change them.
//! Quick replies are global (managers) or personal (any user, for themselves): a user sees the
//! global ones and their own, and another user's personal reply does not exist for them.

use crate::api::NoContent;
use crate::api::contacts::is_manager;
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;
use atende_domain::{
    Demand, DemandId, QuickReply, QuickReplyId, Tag, TagId, ValidationError, validation,
};
use atende_engine::EngineError;
use atende_engine::auth::Principal;
use atende_engine::db::demands::{self, DemandPatch, NewDemand};
use atende_engine::db::quick_replies::{self, NewQuickReply, QuickReplyPatch};
use atende_engine::db::tags::{self, NewTag, TagPatch};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/demands", get(list_demands).post(create_demand))
        .route(
            "/api/v1/demands/{id}",
            get(show_demand).patch(update_demand).delete(remove_demand),
        )
        .route("/api/v1/tags", get(list_tags).post(create_tag))
        .route(
            "/api/v1/tags/{id}",
            get(show_tag).patch(update_tag).delete(remove_tag),
        )
        .route(
            "/api/v1/quick-replies",
            get(list_quick_replies).post(create_quick_reply),
        )
        .route(
            "/api/v1/quick-replies/{id}",
            get(show_quick_reply)
                .patch(update_quick_reply)
                .delete(remove_quick_reply),
        )
}

const MAX_NAME: usize = 100;
const MAX_SHORTCUT: usize = 32;
const MAX_BODY: usize = 4096;

fn invalid(error: impl Into<ValidationError>) -> EngineError {
    EngineError::Validation(error.into())
}

// ---- demands ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemandInput {
    name: String,
    /// Inactive demands are kept for history but not offered when closing.
    #[serde(default = "yes")]
    active: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DemandUpdate {
    name: Option<String>,
    active: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/demands", tag = "demands",
    responses((status = 200, body = Vec<Demand>), (status = 401)))]
pub async fn list_demands(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<Vec<Demand>>> {
    let tenant = principal.tenant()?;
    Ok(axum::Json(demands::list(state.engine.db(), tenant).await?))
}

#[utoipa::path(get, path = "/api/v1/demands/{id}", tag = "demands", params(("id" = i64, Path)),
    responses((status = 200, body = Demand), (status = 404)))]
pub async fn show_demand(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Demand>> {
    let tenant = principal.tenant()?;
    Ok(axum::Json(
        demands::get(state.engine.db(), tenant, DemandId(id)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/demands", tag = "demands", request_body = DemandInput,
    responses((status = 201, body = Demand), (status = 403), (status = 409), (status = 422)))]
pub async fn create_demand(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(input): Json<DemandInput>,
) -> ApiResult<(StatusCode, axum::Json<Demand>)> {
    let tenant = principal.require_manager()?;
    let new = NewDemand {
        name: validation::required_text("name", &input.name, MAX_NAME).map_err(invalid)?,
        active: input.active,
    };
    let demand = demands::create(state.engine.db(), tenant, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(demand)))
}

#[utoipa::path(patch, path = "/api/v1/demands/{id}", tag = "demands", params(("id" = i64, Path)),
    request_body = DemandUpdate,
    responses((status = 200, body = Demand), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn update_demand(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<DemandUpdate>,
) -> ApiResult<axum::Json<Demand>> {
    let tenant = principal.require_manager()?;
    let patch = DemandPatch {
        name: input
            .name
            .map(|n| validation::required_text("name", &n, MAX_NAME))
            .transpose()
            .map_err(invalid)?,
        active: input.active,
    };
    Ok(axum::Json(
        demands::update(state.engine.db(), tenant, DemandId(id), &patch).await?,
    ))
}

/// Closed tickets that used the demand keep their history without it.
#[utoipa::path(delete, path = "/api/v1/demands/{id}", tag = "demands", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn remove_demand(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<NoContent> {
    let tenant = principal.require_manager()?;
    demands::delete(state.engine.db(), tenant, DemandId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- tags ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagInput {
    name: String,
    /// `#rgb` or `#rrggbb`.
    #[serde(default = "default_color")]
    color: String,
}

fn default_color() -> String {
    "#5b6cff".to_owned()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagUpdate {
    name: Option<String>,
    color: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/tags", tag = "tags",
    responses((status = 200, body = Vec<Tag>), (status = 401)))]
pub async fn list_tags(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<Vec<Tag>>> {
    let tenant = principal.tenant()?;
    Ok(axum::Json(tags::list(state.engine.db(), tenant).await?))
}

#[utoipa::path(get, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)),
    responses((status = 200, body = Tag), (status = 404)))]
pub async fn show_tag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Tag>> {
    let tenant = principal.tenant()?;
    Ok(axum::Json(
        tags::get(state.engine.db(), tenant, TagId(id)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tags", tag = "tags", request_body = TagInput,
    responses((status = 201, body = Tag), (status = 403), (status = 409), (status = 422)))]
pub async fn create_tag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(input): Json<TagInput>,
) -> ApiResult<(StatusCode, axum::Json<Tag>)> {
    let tenant = principal.require_manager()?;
    let new = NewTag {
        name: validation::required_text("name", &input.name, MAX_NAME).map_err(invalid)?,
        color: validation::color("color", &input.color).map_err(invalid)?,
    };
    let tag = tags::create(state.engine.db(), tenant, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(tag)))
}

#[utoipa::path(patch, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)),
    request_body = TagUpdate,
    responses((status = 200, body = Tag), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn update_tag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<TagUpdate>,
) -> ApiResult<axum::Json<Tag>> {
    let tenant = principal.require_manager()?;
    let patch = TagPatch {
        name: input
            .name
            .map(|n| validation::required_text("name", &n, MAX_NAME))
            .transpose()
            .map_err(invalid)?,
        color: input
            .color
            .map(|c| validation::color("color", &c))
            .transpose()
            .map_err(invalid)?,
    };
    Ok(axum::Json(
        tags::update(state.engine.db(), tenant, TagId(id), &patch).await?,
    ))
}

/// The tag leaves every contact and ticket that had it.
#[utoipa::path(delete, path = "/api/v1/tags/{id}", tag = "tags", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn remove_tag(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<NoContent> {
    let tenant = principal.require_manager()?;
    tags::delete(state.engine.db(), tenant, TagId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- quick replies ----

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickReplyInput {
    /// 1–32 letters, digits, `_` or `-`; a leading `/` is dropped.
    shortcut: String,
    body: String,
    /// `true` = for everyone (managers only); otherwise personal to the caller.
    #[serde(default)]
    global: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickReplyUpdate {
    shortcut: Option<String>,
    body: Option<String>,
    /// Managers only: `true` makes it global, `false` makes it personal to the caller.
    global: Option<bool>,
}

/// The word typed after `/` in the chat box: 1–32 letters, digits, `_` or `-`, stored without the
/// leading `/`.
pub fn shortcut(field: &str, raw: &str) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    let word = trimmed.strip_prefix('/').unwrap_or(trimmed);
    if word.is_empty() {
        return Err(ValidationError::field(field, "must not be empty"));
    }
    if word.chars().count() > MAX_SHORTCUT {
        return Err(ValidationError::field(
            field,
            format!("must be at most {MAX_SHORTCUT} characters"),
        ));
    }
    if !word
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ValidationError::field(
            field,
            "may contain only letters, digits, _ and - (no spaces)",
        ));
    }
    Ok(word.to_owned())
}

fn body(field: &str, raw: &str) -> Result<String, ValidationError> {
    Ok(validation::required_text(field, raw, MAX_BODY)?)
}

/// Loads a reply the caller may see: global, their own, or any for a manager. Another user's
/// personal reply is "not found" to a plain user, so its existence does not leak.
async fn visible_reply(
    state: &AppState,
    principal: &Principal,
    id: QuickReplyId,
) -> ApiResult<QuickReply> {
    let tenant = principal.tenant()?;
    let reply = quick_replies::get(state.engine.db(), tenant, id).await?;
    let visible = match reply.user_id {
        None => true,
        Some(owner) => owner == principal.user_id() || is_manager(principal)?,
    };
    if visible {
        Ok(reply)
    } else {
        Err(EngineError::NotFound.into())
    }
}

/// Owner or manager; a global reply is changed only by managers.
fn may_change(principal: &Principal, reply: &QuickReply) -> ApiResult<()> {
    if is_manager(principal)? || reply.user_id == Some(principal.user_id()) {
        Ok(())
    } else {
        Err(EngineError::Forbidden(
            "only administrators and supervisors may change global quick replies".into(),
        )
        .into())
    }
}

fn managers_only_global() -> EngineError {
    EngineError::Forbidden(
        "only administrators and supervisors may create global quick replies".into(),
    )
}

/// The global replies and the caller's own.
#[utoipa::path(get, path = "/api/v1/quick-replies", tag = "quick-replies",
    responses((status = 200, body = Vec<QuickReply>), (status = 401)))]
pub async fn list_quick_replies(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<Vec<QuickReply>>> {
    let tenant = principal.tenant()?;
    let replies = quick_replies::list(state.engine.db(), tenant, Some(principal.user_id())).await?;
    Ok(axum::Json(replies))
}

#[utoipa::path(get, path = "/api/v1/quick-replies/{id}", tag = "quick-replies", params(("id" = i64, Path)),
    responses((status = 200, body = QuickReply), (status = 404)))]
pub async fn show_quick_reply(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<QuickReply>> {
    Ok(axum::Json(
        visible_reply(&state, &principal, QuickReplyId(id)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/quick-replies", tag = "quick-replies", request_body = QuickReplyInput,
    responses((status = 201, body = QuickReply), (status = 403),
        (status = 409, description = "the shortcut is taken"), (status = 422)))]
pub async fn create_quick_reply(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(input): Json<QuickReplyInput>,
) -> ApiResult<(StatusCode, axum::Json<QuickReply>)> {
    let tenant = principal.tenant()?;
    let new = NewQuickReply {
        shortcut: shortcut("shortcut", &input.shortcut).map_err(invalid)?,
        body: body("body", &input.body).map_err(invalid)?,
        user_id: (!input.global).then(|| principal.user_id()),
    };
    if input.global && !is_manager(&principal)? {
        return Err(managers_only_global().into());
    }
    let reply = quick_replies::create(state.engine.db(), tenant, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(reply)))
}

#[utoipa::path(patch, path = "/api/v1/quick-replies/{id}", tag = "quick-replies", params(("id" = i64, Path)),
    request_body = QuickReplyUpdate,
    responses((status = 200, body = QuickReply), (status = 403), (status = 404), (status = 409), (status = 422)))]
pub async fn update_quick_reply(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<QuickReplyUpdate>,
) -> ApiResult<axum::Json<QuickReply>> {
    let tenant = principal.tenant()?;
    let patch = QuickReplyPatch {
        shortcut: input
            .shortcut
            .as_deref()
            .map(|s| shortcut("shortcut", s))
            .transpose()
            .map_err(invalid)?,
        body: input
            .body
            .as_deref()
            .map(|b| body("body", b))
            .transpose()
            .map_err(invalid)?,
        user_id: input
            .global
            .map(|global| (!global).then(|| principal.user_id())),
    };
    let reply = visible_reply(&state, &principal, QuickReplyId(id)).await?;
    may_change(&principal, &reply)?;
    let changes_scope = patch.user_id.is_some_and(|owner| owner != reply.user_id);
    if changes_scope && !is_manager(&principal)? {
        return Err(managers_only_global().into());
    }
    let updated = quick_replies::update(state.engine.db(), tenant, reply.id, &patch).await?;
    Ok(axum::Json(updated))
}

#[utoipa::path(delete, path = "/api/v1/quick-replies/{id}", tag = "quick-replies", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404)))]
pub async fn remove_quick_reply(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<NoContent> {
    let tenant = principal.tenant()?;
    let reply = visible_reply(&state, &principal, QuickReplyId(id)).await?;
    may_change(&principal, &reply)?;
    quick_replies::delete(state.engine.db(), tenant, reply.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts_drop_the_leading_slash() {
        assert_eq!(shortcut("shortcut", "/ola").ok().as_deref(), Some("ola"));
        assert_eq!(
            shortcut("shortcut", " bom-dia_2 ").ok().as_deref(),
            Some("bom-dia_2")
        );
        assert_eq!(
            shortcut("shortcut", "atenção").ok().as_deref(),
            Some("atenção")
        );
    }

    #[test]
    fn shortcuts_are_one_to_thirty_two_word_characters() {
        assert!(shortcut("shortcut", &"a".repeat(32)).is_ok());
        assert!(shortcut("shortcut", &"a".repeat(33)).is_err());
        assert!(shortcut("shortcut", "").is_err());
        assert!(shortcut("shortcut", "/").is_err());
        assert!(shortcut("shortcut", "bom dia").is_err());
        assert!(shortcut("shortcut", "oi!").is_err());
        assert!(shortcut("shortcut", "//oi").is_err());
    }

    #[test]
    fn shortcut_errors_name_the_field() {
        let error = shortcut("shortcut", "bom dia")
            .err()
            .unwrap_or_else(|| ValidationError(vec![]));
        assert_eq!(error.0.first().map(|f| f.field.as_str()), Some("shortcut"));
    }

    #[test]
    fn bodies_are_required() {
        assert!(body("body", "  ").is_err());
        assert_eq!(body("body", " Olá! ").ok().as_deref(), Some("Olá!"));
    }
}
