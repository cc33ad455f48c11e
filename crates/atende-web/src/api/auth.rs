//! Login, logout, the current user and password change.

use crate::error::ApiResult;
use crate::extract::{Auth, Client, Json};
use crate::panel::auth::session_cookie;
use crate::state::AppState;
use atende_domain::{TokenKind, User};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/auth/password", put(change_password))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    email: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct LoginOutput {
    /// Send as `Authorization: Bearer <token>`. Shown once; stored only as a hash.
    token: String,
    user: User,
}

/// Checks the credentials; answers the API token and also sets the panel's session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginInput,
    responses((status = 200, body = LoginOutput), (status = 401), (status = 429)))]
pub async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Json(input): Json<LoginInput>,
) -> ApiResult<Response> {
    let grant = state
        .engine
        .login(&input.email, &input.password, TokenKind::Api, &client)
        .await?;
    let session = state
        .engine
        .issue_token(&grant.user, TokenKind::Session, None, &client)
        .await?;
    let max_age = state.engine.config().session_ttl_ms / 1000;
    let cookie = session_cookie(&headers, &session, max_age);
    let mut response = axum::Json(LoginOutput {
        token: grant.token,
        user: grant.user,
    })
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// Ends the presented token (or session) and clears the cookie.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204), (status = 401)))]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Auth(principal): Auth,
) -> ApiResult<Response> {
    state.engine.logout(&principal).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let clear = session_cookie(&headers, "", 0);
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, body = User), (status = 401)))]
pub async fn me(Auth(principal): Auth) -> axum::Json<User> {
    axum::Json(principal.user)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordInput {
    current_password: String,
    new_password: String,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordOutput {
    /// How many other sessions and tokens of this user were ended.
    sessions_ended: u64,
}

/// Changes the caller's password; every other session and token of the caller ends.
#[utoipa::path(put, path = "/api/v1/auth/password", tag = "auth", request_body = PasswordInput,
    responses((status = 200, body = PasswordOutput), (status = 401), (status = 422)))]
pub async fn change_password(
    State(state): State<AppState>,
    Auth(principal): Auth,
    Json(input): Json<PasswordInput>,
) -> ApiResult<axum::Json<PasswordOutput>> {
    let sessions_ended = state
        .engine
        .change_password(&principal, &input.current_password, &input.new_password)
        .await?;
    Ok(axum::Json(PasswordOutput { sessions_ended }))
}
