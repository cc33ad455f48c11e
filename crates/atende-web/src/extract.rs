//! Request extractors that turn every malformed input into a clear 4xx (never a panic) and find
//! out who is calling.

use crate::error::ApiError;
use crate::state::AppState;
use atende_domain::settings::Locale;
use atende_engine::auth::{ClientInfo, Principal};
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

/// Name of the panel's session cookie.
pub const SESSION_COOKIE: &str = "atende_session";

/// JSON body with our error shape: syntax → 400, wrong content type → 415, too large → 413,
/// wrong fields or types → 422 naming the problem.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let detail = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            // serde's text names the field ("unknown field `x`", "missing field `y`", "invalid type …").
            let message = detail
                .trim_start_matches("Failed to deserialize the JSON body into the target type: ");
            let field = field_of(message);
            let mut error = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message.to_owned(),
            );
            error.field = field;
            error
        }
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request(format!("the body is not valid JSON: {detail}"))
        }
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        other => {
            let status = other.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "payload_too_large", "the body is too large")
            } else {
                ApiError::bad_request(format!("cannot read the body: {}", other.body_text()))
            }
        }
    }
}

/// Picks the field name out of serde's messages ("path: …", "… field `name` …" or both, as in
/// "identities[0]: missing field `channel`"). The path comes first: in "kind: unknown variant
/// `fax`" the quoted word is the rejected value, not the field (an unknown field is already the
/// last part of its path).
fn field_of(message: &str) -> Option<String> {
    let (path, rest) = match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') && !path.contains('`') => (Some(path), rest),
        _ => (None, message),
    };
    let named = if path.is_none() || rest.starts_with("missing field `") {
        rest.split('`').nth(1)
    } else {
        None
    };
    match (path, named) {
        (Some(path), Some(name)) => Some(format!("{path}.{name}")),
        (Some(path), None) => Some(path.to_owned()),
        (None, name) => name.map(str::to_owned),
    }
}

/// The authenticated caller. Bearer token first, then the session cookie; a cookie-authenticated
/// state-changing request must pass the CSRF check (`crate::csrf::check_api`).
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = bearer_token(parts) {
            let principal = state.engine.authenticate(&token).await?;
            return Ok(Auth(principal));
        }
        if let Some(token) = cookie(parts, SESSION_COOKIE) {
            if !is_safe_method(&parts.method)
                && let Err(refused) = crate::csrf::check_api(&parts.headers, &token)
            {
                return Err(ApiError::new(
                    crate::csrf::CsrfError::STATUS,
                    "csrf",
                    refused.message(),
                ));
            }
            let principal = state.engine.authenticate(&token).await?;
            return Ok(Auth(principal));
        }
        Err(atende_engine::EngineError::Unauthenticated.into())
    }
}

fn bearer_token(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Where the request comes from (peer address; proxies are not trusted by default).
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(300).collect());
        Ok(Client(ClientInfo { ip, user_agent }))
    }
}

/// The language of user-facing text: `?lang=`, else `Accept-Language`, else pt-BR.
pub struct Lang(pub Locale);

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let from_query = parts.uri.query().and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| *k == "lang")
                .map(|(_, v)| v.to_owned())
        });
        let from_header = || {
            parts
                .headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.split(';').next().unwrap_or_default().trim().to_owned())
        };
        let chosen = from_query.or_else(from_header).unwrap_or_default();
        Ok(Lang(Locale::parse(&chosen)))
    }
}

/// Path parameters; a malformed one (e.g. a non-numeric id) → 400 in our error shape.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "bad path parameter: {}",
                rejection.body_text()
            ))),
        }
    }
}

/// Query string; malformed values → 400 naming the parameter.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Query(value)),
            Err(rejection) => Err(ApiError::bad_request(format!(
                "bad query string: {}",
                rejection.body_text()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_found_in_serde_messages() {
        assert_eq!(
            field_of("unknown field `colour`, expected one of `name`").as_deref(),
            Some("colour")
        );
        assert_eq!(
            field_of("missing field `name` at line 1 column 2").as_deref(),
            Some("name")
        );
        assert_eq!(
            field_of("profile: unknown variant").as_deref(),
            Some("profile")
        );
        assert_eq!(
            field_of("kind: unknown variant `fax`, expected one of `webchat`").as_deref(),
            Some("kind")
        );
        assert_eq!(
            field_of("kind: unknown field `kind`, expected `name`").as_deref(),
            Some("kind")
        );
        assert_eq!(
            field_of("identities[0]: missing field `channel`").as_deref(),
            Some("identities[0].channel")
        );
    }
}
