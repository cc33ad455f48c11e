//! Chatbot flows (SPEC §9): a named, versioned graph of nodes and edges. Only its storage and
//! shape are checked here; the flow engine interprets it.
//!
//! Managers read flows (to pick one for a queue or connection); admins change them. Changing the
//! graph bumps the version, so running bot sessions keep stepping through the version they began.

use crate::api::NoContent;
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;
use atende_domain::{Flow, FlowId, ValidationError, validation};
use atende_engine::EngineError;
use atende_engine::db::flows::{self, FlowPatch, NewFlow};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/flows", get(list).post(create))
        .route("/api/v1/flows/{id}", get(show).patch(update).delete(remove))
}

const MAX_NAME: usize = 100;
/// The setting that names the tenant's bot flow (SPEC §10).
const ACTIVE_BOT_FLOW: &str = "active_bot_flow";

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowInput {
    name: String,
    #[serde(default)]
    active: bool,
    /// `{"nodes": [...], "edges": [...]}`; empty when absent.
    #[serde(default = "empty_graph")]
    #[schema(value_type = Object)]
    graph: Value,
}

fn empty_graph() -> Value {
    json!({"nodes": [], "edges": []})
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlowUpdate {
    name: Option<String>,
    active: Option<bool>,
    /// A new graph makes a new version.
    #[schema(value_type = Option<Object>)]
    graph: Option<Value>,
}

/// A flow graph is a JSON object with a `nodes` array and an `edges` array.
pub fn graph(value: &Value) -> Result<Value, ValidationError> {
    let Some(object) = value.as_object() else {
        return Err(ValidationError::field(
            "graph",
            "must be a JSON object with \"nodes\" and \"edges\" arrays",
        ));
    };
    for key in ["nodes", "edges"] {
        if !object.get(key).is_some_and(Value::is_array) {
            return Err(ValidationError::field(
                format!("graph.{key}"),
                "must be an array",
            ));
        }
    }
    Ok(value.clone())
}

fn new_flow(input: &FlowInput) -> Result<NewFlow, ValidationError> {
    Ok(NewFlow {
        name: validation::required_text("name", &input.name, MAX_NAME)?,
        active: input.active,
        graph: graph(&input.graph)?,
    })
}

fn flow_patch(input: &FlowUpdate) -> Result<FlowPatch, ValidationError> {
    Ok(FlowPatch {
        name: input
            .name
            .as_deref()
            .map(|n| validation::required_text("name", n, MAX_NAME))
            .transpose()?,
        active: input.active,
        graph: input.graph.as_ref().map(graph).transpose()?,
    })
}

/// Whether the tenant's `active_bot_flow` setting names this flow (one indexed read).
fn names_flow(setting: Option<&Value>, id: FlowId) -> bool {
    setting.and_then(Value::as_i64) == Some(id.0)
}

#[utoipa::path(get, path = "/api/v1/flows", tag = "flows",
    responses((status = 200, body = Vec<Flow>), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<Vec<Flow>>> {
    let tenant = principal.require_manager()?;
    Ok(axum::Json(flows::list(state.engine.db(), tenant).await?))
}

#[utoipa::path(get, path = "/api/v1/flows/{id}", tag = "flows", params(("id" = i64, Path)),
    responses((status = 200, body = Flow), (status = 403), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<Flow>> {
    let tenant = principal.require_manager()?;
    Ok(axum::Json(
        flows::get(state.engine.db(), tenant, FlowId(id)).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/flows", tag = "flows", request_body = FlowInput,
    responses((status = 201, body = Flow), (status = 403), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(input): Json<FlowInput>,
) -> ApiResult<(StatusCode, axum::Json<Flow>)> {
    let tenant = principal.require_admin()?;
    let new = new_flow(&input).map_err(EngineError::from)?;
    let flow = flows::create(state.engine.db(), tenant, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(flow)))
}

#[utoipa::path(patch, path = "/api/v1/flows/{id}", tag = "flows", params(("id" = i64, Path)),
    request_body = FlowUpdate,
    responses((status = 200, body = Flow), (status = 403), (status = 404), (status = 422)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<FlowUpdate>,
) -> ApiResult<axum::Json<Flow>> {
    let tenant = principal.require_admin()?;
    let patch = flow_patch(&input).map_err(EngineError::from)?;
    Ok(axum::Json(
        flows::update(state.engine.db(), tenant, FlowId(id), &patch).await?,
    ))
}

/// Admins only. The flow named by the `active_bot_flow` setting cannot be deleted (409: choose
/// another flow or clear the setting first) — that check is one read of the setting's row.
/// Connections that use the flow as their default lose it (the store clears the reference), and
/// tickets in a bot session of this flow leave the bot.
#[utoipa::path(delete, path = "/api/v1/flows/{id}", tag = "flows", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<NoContent> {
    let tenant = principal.require_admin()?;
    let id = FlowId(id);
    let db = state.engine.db();
    // Reading the stored override directly (not the engine's cache) sees the latest value.
    let setting = atende_engine::db::settings::get(db, tenant, ACTIVE_BOT_FLOW).await?;
    if names_flow(setting.as_ref(), id) {
        // Check that the flow is this tenant's first, so the answer does not reveal anything.
        flows::get(db, tenant, id).await?;
        return Err(EngineError::Conflict(format!(
            "this flow is the active bot flow (setting {ACTIVE_BOT_FLOW}); choose another flow or \
             clear the setting first"
        ))
        .into());
    }
    flows::delete(db, tenant, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<Value, ValidationError>) -> String {
        match result {
            Ok(value) => panic!("expected a validation error, got {value}"),
            Err(error) => error.0.first().map(|f| f.field.clone()).unwrap_or_default(),
        }
    }

    #[test]
    fn graphs_need_node_and_edge_arrays() {
        assert!(graph(&empty_graph()).is_ok());
        assert!(graph(&json!({"nodes": [{"id": "start"}], "edges": [], "meta": 1})).is_ok());
        assert_eq!(field_of(graph(&json!([]))), "graph");
        assert_eq!(field_of(graph(&Value::Null)), "graph");
        assert_eq!(field_of(graph(&json!({"edges": []}))), "graph.nodes");
        assert_eq!(
            field_of(graph(&json!({"nodes": [], "edges": {}}))),
            "graph.edges"
        );
    }

    #[test]
    fn active_bot_flow_setting_is_matched_by_id() {
        assert!(names_flow(Some(&json!(7)), FlowId(7)));
        assert!(!names_flow(Some(&json!(8)), FlowId(7)));
        assert!(!names_flow(Some(&Value::Null), FlowId(7)));
        assert!(!names_flow(None, FlowId(7)));
    }
}
