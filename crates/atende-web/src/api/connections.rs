//! Connections: one per channel account (WhatsApp, Instagram, Telegram, web chat) with its default
//! queue and flow, encrypted credentials and an optional cadence override (SPEC §2, §7).
//!
//! Any tenant user may read them (the attendance screen shows their status); only admins change
//! them. Credentials are encrypted before they reach the store and are never returned.

use crate::api::{NoContent, double_option};
use crate::error::ApiResult;
use crate::extract::{Auth, Json, Path};
use crate::state::AppState;
use atende_domain::{
    ChannelKind, Connection, ConnectionId, FlowId, QueueId, ValidationError, validation,
};
use atende_engine::EngineError;
use atende_engine::db::DbError;
use atende_engine::db::connections::{self, ConnectionPatch, NewConnection};
use atende_engine::secrets::SecretBox;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/connections", get(list).post(create))
        .route(
            "/api/v1/connections/{id}",
            get(show).patch(update).delete(remove),
        )
}

const MAX_NAME: usize = 100;
/// The cadence bound of SPEC §7, from the settings registry (one number for tenant and connection).
const MAX_DELAY_MS: i64 = atende_domain::settings::SEND_DELAY_LIMIT_MS;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInput {
    kind: ChannelKind,
    name: String,
    default_queue_id: Option<QueueId>,
    default_flow_id: Option<FlowId>,
    /// Provider secrets (tokens, app secret…) as a JSON object; stored encrypted, never returned.
    #[schema(value_type = Option<Object>)]
    credentials: Option<Value>,
    /// 0..=60000; `null` = the tenant's default.
    send_delay_min_ms: Option<i64>,
    /// 0..=60000 and at least `send_delay_min_ms`; `null` = the tenant's default.
    send_delay_max_ms: Option<i64>,
    /// `null` = the channel kind's default (on for unofficial WhatsApp).
    cadence_enabled: Option<bool>,
}

/// Absent fields stay as they are; `null` clears a nullable one (`"credentials": null` removes
/// the stored credentials). The kind of a connection cannot change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionUpdate {
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    default_queue_id: Option<Option<QueueId>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    default_flow_id: Option<Option<FlowId>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Object>)]
    credentials: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    send_delay_min_ms: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    send_delay_max_ms: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<bool>)]
    cadence_enabled: Option<Option<bool>>,
}

/// A connection as the API shows it. `key` repeats `public_key` (SPEC §13 calls the web-chat
/// connection's public key `key`).
#[derive(Serialize, ToSchema)]
pub struct ConnectionView {
    #[serde(flatten)]
    pub connection: Connection,
    /// Web chat only: the public key used in widget URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl From<Connection> for ConnectionView {
    fn from(connection: Connection) -> Self {
        let key = connection.public_key.clone();
        ConnectionView { connection, key }
    }
}

/// One cadence delay: absent or within 0..=60000 ms.
pub fn delay(field: &str, value: Option<i64>) -> Result<Option<i64>, ValidationError> {
    match value {
        Some(ms) if !(0..=MAX_DELAY_MS).contains(&ms) => Err(ValidationError::field(
            field,
            format!("must be between 0 and {MAX_DELAY_MS} ms"),
        )),
        other => Ok(other),
    }
}

/// The effective pair must keep min ≤ max. The error names the field the caller changed (the
/// maximum when both or neither were changed).
pub fn delay_order(
    min: Option<i64>,
    max: Option<i64>,
    only_min_changed: bool,
) -> Result<(), ValidationError> {
    match (min, max) {
        (Some(min), Some(max)) if min > max => Err(if only_min_changed {
            ValidationError::field(
                "send_delay_min_ms",
                format!("must not exceed send_delay_max_ms ({max} ms)"),
            )
        } else {
            ValidationError::field(
                "send_delay_max_ms",
                format!("must be at least send_delay_min_ms ({min} ms)"),
            )
        }),
        _ => Ok(()),
    }
}

/// Credentials must be a JSON object; they are serialised and encrypted.
pub fn credentials(value: &Value) -> Result<Vec<u8>, ValidationError> {
    if !value.is_object() {
        return Err(ValidationError::field(
            "credentials",
            "must be a JSON object, e.g. {\"access_token\": \"…\"}",
        ));
    }
    serde_json::to_vec(value).map_err(|e| ValidationError::field("credentials", e.to_string()))
}

/// A fresh public key for a web-chat connection: `wc_` and 32 random hex characters (from the
/// same generator as login tokens).
fn webchat_key() -> String {
    let (token, _) = atende_engine::auth::new_token();
    let random: String = token.trim_start_matches("atd_").chars().take(32).collect();
    format!("wc_{random}")
}

fn new_connection(
    input: &ConnectionInput,
    secrets: &SecretBox,
) -> Result<NewConnection, ValidationError> {
    let send_delay_min_ms = delay("send_delay_min_ms", input.send_delay_min_ms)?;
    let send_delay_max_ms = delay("send_delay_max_ms", input.send_delay_max_ms)?;
    delay_order(
        send_delay_min_ms,
        send_delay_max_ms,
        input.send_delay_max_ms.is_none(),
    )?;
    Ok(NewConnection {
        kind: input.kind,
        name: validation::required_text("name", &input.name, MAX_NAME)?,
        default_queue_id: input.default_queue_id,
        default_flow_id: input.default_flow_id,
        public_key: (input.kind == ChannelKind::Webchat).then(webchat_key),
        credentials: input
            .credentials
            .as_ref()
            .filter(|v| !v.is_null())
            .map(|v| credentials(v).map(|bytes| secrets.encrypt(&bytes)))
            .transpose()?,
        send_delay_min_ms,
        send_delay_max_ms,
        cadence_enabled: input.cadence_enabled,
    })
}

fn connection_patch(
    input: &ConnectionUpdate,
    existing: &Connection,
    secrets: &SecretBox,
) -> Result<ConnectionPatch, ValidationError> {
    let send_delay_min_ms = input
        .send_delay_min_ms
        .map(|v| delay("send_delay_min_ms", v))
        .transpose()?;
    let send_delay_max_ms = input
        .send_delay_max_ms
        .map(|v| delay("send_delay_max_ms", v))
        .transpose()?;
    delay_order(
        send_delay_min_ms.unwrap_or(existing.send_delay_min_ms),
        send_delay_max_ms.unwrap_or(existing.send_delay_max_ms),
        send_delay_max_ms.is_none(),
    )?;
    Ok(ConnectionPatch {
        name: input
            .name
            .as_deref()
            .map(|n| validation::required_text("name", n, MAX_NAME))
            .transpose()?,
        default_queue_id: input.default_queue_id,
        default_flow_id: input.default_flow_id,
        credentials: match &input.credentials {
            None => None,
            Some(None) => Some(None),
            Some(Some(value)) => Some(Some(secrets.encrypt(&credentials(value)?))),
        },
        send_delay_min_ms,
        send_delay_max_ms,
        cadence_enabled: input.cadence_enabled,
        ..ConnectionPatch::default()
    })
}

#[utoipa::path(get, path = "/api/v1/connections", tag = "connections",
    responses((status = 200, body = Vec<ConnectionView>), (status = 401)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(principal): Auth,
) -> ApiResult<axum::Json<Vec<ConnectionView>>> {
    let tenant = principal.tenant()?;
    let all = connections::list(state.engine.db(), tenant).await?;
    Ok(axum::Json(
        all.into_iter().map(ConnectionView::from).collect(),
    ))
}

#[utoipa::path(get, path = "/api/v1/connections/{id}", tag = "connections", params(("id" = i64, Path)),
    responses((status = 200, body = ConnectionView), (status = 404)))]
pub async fn show(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<ConnectionView>> {
    let tenant = principal.tenant()?;
    let connection = connections::get(state.engine.db(), tenant, ConnectionId(id)).await?;
    Ok(axum::Json(connection.into()))
}

/// Admins only. A `webchat` connection gets its public key here (`public_key`, also as `key`).
#[utoipa::path(post, path = "/api/v1/connections", tag = "connections", request_body = ConnectionInput,
    responses((status = 201, body = ConnectionView), (status = 403),
        (status = 404, description = "the default queue or flow does not exist"), (status = 422)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(input): Json<ConnectionInput>,
) -> ApiResult<(StatusCode, axum::Json<ConnectionView>)> {
    let tenant = principal.require_admin()?;
    let new = new_connection(&input, state.engine.secrets()).map_err(EngineError::from)?;
    let connection = connections::create(state.engine.db(), tenant, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(connection.into())))
}

#[utoipa::path(patch, path = "/api/v1/connections/{id}", tag = "connections", params(("id" = i64, Path)),
    request_body = ConnectionUpdate,
    responses((status = 200, body = ConnectionView), (status = 403), (status = 404), (status = 422)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
    Json(input): Json<ConnectionUpdate>,
) -> ApiResult<axum::Json<ConnectionView>> {
    let tenant = principal.require_admin()?;
    let id = ConnectionId(id);
    let db = state.engine.db();
    let existing = connections::get(db, tenant, id).await?;
    let patch =
        connection_patch(&input, &existing, state.engine.secrets()).map_err(EngineError::from)?;
    let connection = connections::update(db, tenant, id, &patch).await?;
    Ok(axum::Json(connection.into()))
}

/// Admins only. A connection that already has tickets cannot be deleted (409): its conversations
/// would lose their channel.
#[utoipa::path(delete, path = "/api/v1/connections/{id}", tag = "connections", params(("id" = i64, Path)),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Path(id): Path<i64>,
) -> ApiResult<NoContent> {
    let tenant = principal.require_admin()?;
    match connections::delete(state.engine.db(), tenant, ConnectionId(id)).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        // The store refuses to delete a connection that has tickets (its conversations would go
        // with it); say so in words instead of naming the index.
        Err(DbError::Conflict { constraint }) if constraint.contains("tickets") => {
            Err(has_tickets().into())
        }
        Err(DbError::ForeignKey(_)) => Err(has_tickets().into()),
        Err(other) => Err(other.into()),
    }
}

fn has_tickets() -> EngineError {
    EngineError::Conflict(
        "this connection has tickets and cannot be deleted; rename it or leave it disconnected"
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field_of<T: std::fmt::Debug>(result: Result<T, ValidationError>) -> String {
        match result {
            Ok(value) => panic!("expected a validation error, got {value:?}"),
            Err(error) => error.0.first().map(|f| f.field.clone()).unwrap_or_default(),
        }
    }

    #[test]
    fn delays_must_be_within_zero_and_sixty_seconds() {
        assert_eq!(delay("send_delay_min_ms", Some(0)).ok(), Some(Some(0)));
        assert_eq!(
            delay("send_delay_min_ms", Some(60_000)).ok(),
            Some(Some(60_000))
        );
        assert_eq!(delay("send_delay_min_ms", None).ok(), Some(None));
        assert_eq!(
            field_of(delay("send_delay_min_ms", Some(-1))),
            "send_delay_min_ms"
        );
        assert_eq!(
            field_of(delay("send_delay_max_ms", Some(60_001))),
            "send_delay_max_ms"
        );
    }

    #[test]
    fn minimum_delay_may_not_exceed_maximum() {
        assert!(delay_order(Some(1000), Some(1000), false).is_ok());
        assert!(delay_order(Some(1000), None, true).is_ok());
        assert!(delay_order(None, Some(10), false).is_ok());
        assert_eq!(
            field_of(delay_order(Some(5000), Some(2000), false)),
            "send_delay_max_ms"
        );
        assert_eq!(
            field_of(delay_order(Some(5000), Some(2000), true)),
            "send_delay_min_ms"
        );
    }

    #[test]
    fn credentials_must_be_an_object() {
        let bytes = credentials(&json!({"token": "abc"})).ok();
        assert_eq!(bytes.as_deref(), Some(br#"{"token":"abc"}"#.as_slice()));
        assert_eq!(field_of(credentials(&json!("abc"))), "credentials");
        assert_eq!(field_of(credentials(&json!([1]))), "credentials");
    }

    #[test]
    fn webchat_keys_are_random_and_prefixed() {
        let a = webchat_key();
        let b = webchat_key();
        assert_ne!(a, b);
        assert!(a.starts_with("wc_"));
        assert_eq!(a.len(), 35);
        assert!(a[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn credentials_are_encrypted_before_storage() {
        let secrets = SecretBox::from_key([7; 32]);
        let input: ConnectionInput = serde_json::from_value(json!({
            "kind": "telegram", "name": "Bot", "credentials": {"bot_token": "123:abc"}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let new = new_connection(&input, &secrets).unwrap_or_else(|e| panic!("{e}"));
        let stored = new.credentials.unwrap_or_default();
        assert!(!String::from_utf8_lossy(&stored).contains("123:abc"));
        let plain = secrets.decrypt(&stored).unwrap_or_default();
        assert_eq!(plain, br#"{"bot_token":"123:abc"}"#.to_vec());
        assert_eq!(new.public_key, None);
    }

    #[test]
    fn webchat_connections_get_a_public_key() {
        let secrets = SecretBox::from_key([7; 32]);
        let input: ConnectionInput =
            serde_json::from_value(json!({"kind": "webchat", "name": "Site"}))
                .unwrap_or_else(|e| panic!("{e}"));
        let new = new_connection(&input, &secrets).unwrap_or_else(|e| panic!("{e}"));
        assert!(new.public_key.is_some_and(|k| k.starts_with("wc_")));
    }

    #[test]
    fn kind_cannot_be_patched() {
        let result = serde_json::from_value::<ConnectionUpdate>(json!({"kind": "telegram"}));
        assert!(result.is_err());
    }
}
