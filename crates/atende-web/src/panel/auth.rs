//! The panel's login and logout (a session cookie, as the API's login sets) and the language
//! switch.

use super::{LANG_COOKIE, Page, PanelError, Submitted, local_path, request_locale};
use crate::csrf::{self, CsrfError, Site};
use crate::extract::{Client, SESSION_COOKIE, cookie};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use atende_domain::TokenKind;
use atende_domain::settings::Locale;
use atende_engine::EngineError;
use axum::Router;
use axum::extract::{Form, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/lang/{code}", get(switch_language))
}

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub page: Page,
    pub email: String,
    pub next: String,
    /// Translated reason the last attempt failed.
    pub error: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// The login form; someone already logged in goes straight on.
async fn login_page(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _) = request.into_parts();
    let next = Query::<NextQuery>::from_request_parts(&mut parts, &state)
        .await
        .ok()
        .and_then(|Query(q)| q.next);
    if let Some(session) = cookie(&parts, SESSION_COOKIE)
        && state.engine.authenticate(&session).await.is_ok()
    {
        return Redirect::to(&local_path(next.as_deref())).into_response();
    }
    let locale = request_locale(&mut parts, None).await;
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/login");
    login_form(
        locale,
        path,
        String::new(),
        local_path(next.as_deref()),
        None,
    )
    .into_response()
}

fn login_form(
    locale: Locale,
    path: &str,
    email: String,
    next: String,
    error: Option<String>,
) -> LoginPage {
    LoginPage {
        page: Page::public(locale, "login", "common.login.title", path),
        email,
        next,
        error,
    }
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

/// Checks the credentials and starts a session. There is no session yet to bind a token to, so
/// the browser's origin signal is the CSRF check here (a cross-site login is refused).
async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let locale = request_locale(&mut parts, None).await;
    let headers = parts.headers.clone();
    if csrf::site_of(&parts.headers) == Site::Cross {
        return PanelError::Csrf {
            locale,
            error: CsrfError::CrossSite,
        }
        .into_response();
    }
    let Ok(Form(form)) =
        Form::<LoginForm>::from_request(Request::from_parts(parts, body), &state).await
    else {
        return PanelError::Status {
            locale,
            status: StatusCode::BAD_REQUEST,
            key: "common.error.bad_form",
        }
        .into_response();
    };
    let next = local_path(form.next.as_deref());
    let failed = |status: StatusCode, message: String| {
        let page = login_form(
            locale,
            "/login",
            form.email.clone(),
            next.clone(),
            Some(message),
        );
        (status, page).into_response()
    };
    let t = |key| super::i18n::t(locale, key).to_owned();
    match state
        .engine
        .login(&form.email, &form.password, TokenKind::Session, &client)
        .await
    {
        Ok(grant) => {
            let max_age = state.engine.config().session_ttl_ms / 1000;
            let cookie = session_cookie(&headers, &grant.token, max_age);
            with_cookie(Redirect::to(&next).into_response(), &cookie)
        }
        Err(EngineError::BadCredentials) => {
            failed(StatusCode::UNAUTHORIZED, t("common.login.bad_credentials"))
        }
        Err(EngineError::RateLimited { retry_after_secs }) => {
            let message =
                t("common.login.rate_limited").replace("{secs}", &retry_after_secs.to_string());
            let mut response = failed(StatusCode::TOO_MANY_REQUESTS, message);
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Err(EngineError::Forbidden(_)) => {
            failed(StatusCode::FORBIDDEN, t("common.login.suspended"))
        }
        Err(other) => PanelError::from_engine(locale, other).into_response(),
    }
}

#[derive(Deserialize)]
struct NoFields {}

/// Ends the session and clears the cookie.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    submitted: Submitted<NoFields>,
) -> Response {
    let Submitted { viewer, .. } = submitted;
    if let Err(error) = state.engine.logout(&viewer.principal).await {
        return PanelError::from_engine(viewer.locale, error).into_response();
    }
    let clear = session_cookie(&headers, "", 0);
    with_cookie(Redirect::to("/login").into_response(), &clear)
}

/// Whether the browser reached us over HTTPS. atende serves plain HTTP; TLS ends at a proxy in
/// front of it, which says so with `X-Forwarded-Proto: https` (or `Forwarded: proto=https`).
/// The header is believed from any peer: all it changes is the `Secure` flag of the cookie sent
/// back to that same client, which gains nothing by lying.
pub fn came_over_https(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(proto) = text("x-forwarded-proto") {
        // A chain of proxies appends; the first entry is what the browser used.
        return proto
            .split(',')
            .next()
            .is_some_and(|first| first.trim().eq_ignore_ascii_case("https"));
    }
    text(header::FORWARDED.as_str()).is_some_and(|forwarded| {
        forwarded
            .split(',')
            .next()
            .into_iter()
            .flat_map(|first| first.split(';'))
            .filter_map(|pair| pair.split_once('='))
            .any(|(name, value)| {
                name.trim().eq_ignore_ascii_case("proto")
                    && value.trim().trim_matches('"').eq_ignore_ascii_case("https")
            })
    })
}

/// The `Set-Cookie` value of the session cookie (`value` empty and `max_age` 0 clears it);
/// `Secure` when the request came over HTTPS, so the browser never sends it over plain HTTP.
pub fn session_cookie(headers: &HeaderMap, value: &str, max_age: i64) -> String {
    let secure = if came_over_https(headers) {
        "; Secure"
    } else {
        ""
    };
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

/// Remembers the chosen language for a year and goes back to the page it was chosen on.
async fn switch_language(
    Path(code): Path<String>,
    Query(query): Query<NextQuery>,
    headers: HeaderMap,
) -> Response {
    let locale = Locale::parse(&code);
    let secure = if came_over_https(&headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000{secure}",
        locale.as_str()
    );
    with_cookie(
        Redirect::to(&local_path(query.next.as_deref())).into_response(),
        &cookie,
    )
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_session_cookie_is_secure_only_behind_https() {
        let plain = session_cookie(&headers(&[]), "abc", 60);
        assert_eq!(
            plain,
            "atende_session=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60"
        );
        for https in [
            headers(&[("x-forwarded-proto", "https")]),
            headers(&[("x-forwarded-proto", "HTTPS, http")]),
            headers(&[("forwarded", "for=1.2.3.4;proto=https, proto=http")]),
        ] {
            assert!(session_cookie(&https, "abc", 60).ends_with("; Secure"));
        }
        for http in [
            headers(&[("x-forwarded-proto", "http")]),
            headers(&[("x-forwarded-proto", "http, https")]),
            headers(&[("forwarded", "proto=http")]),
        ] {
            assert!(!came_over_https(&http));
        }
    }
}
