//! The agent panel (SPEC §12): server-rendered pages (askama templates in `templates/`), one
//! small ES module per page, assets embedded in the binary, words from `i18n/`.
//!
//! Every page handler takes a [`Viewer`] (the session cookie's user; none → redirect to
//! `/login`), builds a [`Page`] for its [`Section`] (which also checks the profile may open it)
//! and renders its template. Pages read through the same engine services as the API; their
//! scripts call the JSON API with the session cookie and the CSRF token (`common.js`).

pub mod admin;
pub mod assets;
pub mod attendance;
pub mod auth;
pub mod dashboard;
pub mod i18n;
pub mod maintenance;
pub mod settings;

use crate::csrf::{self, CsrfError};
use crate::extract::{Lang, SESSION_COOKIE, cookie};
use crate::state::AppState;
use askama::Template;
use askama_web::WebTemplate;
use atende_domain::settings::Locale;
use atende_domain::{Profile, User};
use atende_engine::EngineError;
use atende_engine::auth::Principal;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;

/// `(file name, bytes)` of the assets and `(area, text)` of the translation files.
mod files {
    include!(concat!(env!("OUT_DIR"), "/panel_files.rs"));
}

/// Cookie holding the language picked with the switch (`pt-BR` or `en`).
pub const LANG_COOKIE: &str = "lang";

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(auth::routes())
        .merge(attendance::routes())
        .merge(admin::routes())
        .merge(settings::routes())
        .merge(maintenance::routes())
        .merge(dashboard::routes())
        .layer(axum::middleware::from_fn(page_headers))
        .merge(assets::routes())
}

/// Pages hold a CSRF token and personal data: never cached, never framed by another site.
/// Their CSP lets only our own files run and style them, so injected markup stays inert.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| content_security_policy().clone());
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
    response
}

/// The panel pages' Content-Security-Policy. Scripts and stylesheets come only from this site
/// (`/assets/`), with one inline exception, the import map, allowed by its hash. No inline
/// `style` attributes or event handlers: the markup carries data (`data-*`) and the modules act
/// on it. Images and audio may also be `blob:`/`data:` (recorder previews, pasted files);
/// `connect-src 'self'` covers the live WebSocket of the same host. `frame-ancestors 'none'`:
/// no other site may frame the panel (the embeddable `/widget/{key}` page is not a panel page
/// and has its own policy).
pub fn content_security_policy() -> &'static HeaderValue {
    static POLICY: std::sync::OnceLock<HeaderValue> = std::sync::OnceLock::new();
    POLICY.get_or_init(|| {
        let policy = format!(
            "default-src 'self'; script-src 'self' {}; style-src 'self'; \
             img-src 'self' data: blob:; media-src 'self' data: blob:; connect-src 'self'; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            assets::import_map_csp_source()
        );
        HeaderValue::from_str(&policy).unwrap_or_else(|_| {
            // The hash is base64: every character is valid in a header; keep a strict policy
            // (no import map, so no module resolves) rather than none if that ever changes.
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'")
        })
    })
}

/// Who may open a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Everyone,
    /// Administrators and supervisors.
    Manager,
    Admin,
}

/// The panel's pages, in menu order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Attendance,
    Contacts,
    Queues,
    Users,
    Connections,
    Demands,
    Tags,
    QuickReplies,
    Settings,
    Maintenance,
    Dashboard,
}

impl Section {
    pub const ALL: [Section; 11] = [
        Section::Attendance,
        Section::Contacts,
        Section::Queues,
        Section::Users,
        Section::Connections,
        Section::Demands,
        Section::Tags,
        Section::QuickReplies,
        Section::Settings,
        Section::Maintenance,
        Section::Dashboard,
    ];

    /// Also the `data-page` of `<body>` and the last part of its menu label's key.
    pub fn id(self) -> &'static str {
        match self {
            Section::Attendance => "attendance",
            Section::Contacts => "contacts",
            Section::Queues => "queues",
            Section::Users => "users",
            Section::Connections => "connections",
            Section::Demands => "demands",
            Section::Tags => "tags",
            Section::QuickReplies => "quick_replies",
            Section::Settings => "settings",
            Section::Maintenance => "maintenance",
            Section::Dashboard => "dashboard",
        }
    }

    pub fn href(self) -> &'static str {
        match self {
            Section::Attendance => "/",
            Section::Contacts => "/contacts",
            Section::Queues => "/queues",
            Section::Users => "/users",
            Section::Connections => "/connections",
            Section::Demands => "/demands",
            Section::Tags => "/tags",
            Section::QuickReplies => "/quick-replies",
            Section::Settings => "/settings",
            Section::Maintenance => "/maintenance",
            Section::Dashboard => "/dashboard",
        }
    }

    pub fn label_key(self) -> String {
        format!("common.nav.{}", self.id())
    }

    pub fn access(self) -> Access {
        match self {
            Section::Attendance | Section::Contacts | Section::QuickReplies => Access::Everyone,
            Section::Dashboard => Access::Manager,
            Section::Queues
            | Section::Users
            | Section::Connections
            | Section::Demands
            | Section::Tags
            | Section::Settings
            | Section::Maintenance => Access::Admin,
        }
    }

    pub fn allows(self, user: &User) -> bool {
        matches!(
            (self.access(), user.profile),
            (Access::Everyone, _)
                | (Access::Manager, Some(Profile::Admin | Profile::Supervisor))
                | (Access::Admin, Some(Profile::Admin))
        )
    }
}

/// The language of a panel request: the switch's cookie, else the user's stored language, else
/// the browser's (`Accept-Language`, see [`Lang`]), else pt-BR.
pub async fn request_locale(parts: &mut Parts, user: Option<&User>) -> Locale {
    if let Some(chosen) = cookie(parts, LANG_COOKIE) {
        return Locale::parse(&chosen);
    }
    if let Some(user) = user
        && !user.locale.trim().is_empty()
    {
        return Locale::parse(&user.locale);
    }
    match Lang::from_request_parts(parts, &()).await {
        Ok(Lang(locale)) => locale,
        Err(never) => match never {},
    }
}

/// The logged-in user of a page request. Without a valid session cookie the request is
/// redirected to `/login` (and comes back here after it).
pub struct Viewer {
    pub principal: Principal,
    pub locale: Locale,
    /// The session's CSRF token: in every form (`_csrf`) and in `<meta name="csrf-token">`.
    pub csrf: String,
    /// Path and query of this request (the language switch comes back to it).
    pub path: String,
    session: String,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = PanelError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PanelError> {
        let path = parts
            .uri
            .path_and_query()
            .map(|pq| pq.as_str().to_owned())
            .unwrap_or_else(|| "/".into());
        let Some(session) = cookie(parts, SESSION_COOKIE) else {
            return Err(PanelError::Login { next: path });
        };
        let principal = match state.engine.authenticate(&session).await {
            Ok(principal) => principal,
            Err(EngineError::Unauthenticated) => return Err(PanelError::Login { next: path }),
            Err(other) => {
                let locale = request_locale(parts, None).await;
                return Err(PanelError::from_engine(locale, other));
            }
        };
        let locale = request_locale(parts, Some(&principal.user)).await;
        Ok(Viewer {
            csrf: csrf::token_for(&session),
            principal,
            locale,
            path,
            session,
        })
    }
}

impl Viewer {
    /// The CSRF check of a state change made by this viewer (see `crate::csrf::check_form`).
    pub fn check_csrf(&self, headers: &HeaderMap, field: Option<&str>) -> Result<(), PanelError> {
        csrf::check_form(headers, &self.session, field).map_err(|error| PanelError::Csrf {
            locale: self.locale,
            error,
        })
    }
}

/// A form posted by a logged-in user, CSRF-checked: the hidden `_csrf` field (or the
/// `X-CSRF-Token` header) must hold the session's token. `T` is the rest of the fields; do not
/// put `#[serde(deny_unknown_fields)]` on it (the token is one more field).
pub struct Submitted<T> {
    pub viewer: Viewer,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for Submitted<T> {
    type Rejection = PanelError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PanelError> {
        let (mut parts, body) = request.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let bad_form = || PanelError::Status {
            locale: viewer.locale,
            status: StatusCode::BAD_REQUEST,
            key: "common.error.bad_form",
        };
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|_| bad_form())?;
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| bad_form())?;
        let token = pairs
            .iter()
            .find(|(name, _)| name == csrf::CSRF_FIELD)
            .map(|(_, value)| value.as_str());
        viewer.check_csrf(&parts.headers, token)?;
        let form = serde_urlencoded::from_bytes(&bytes).map_err(|_| bad_form())?;
        Ok(Submitted { viewer, form })
    }
}

/// A link of the menu.
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The language switch's entries (each language named in itself).
pub struct LangLink {
    pub code: &'static str,
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// The logged-in user as the layout shows them.
pub struct PageUser {
    pub name: String,
    pub email: String,
}

impl PageUser {
    /// The avatar's letter.
    pub fn initial(&self) -> String {
        self.name
            .chars()
            .next()
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default()
    }
}

/// What the layout (`templates/base.html`) needs; every page template has a `page: Page` field.
pub struct Page {
    pub locale: Locale,
    /// `data-page` of `<body>`: the section id, or `login`/`error`.
    pub id: &'static str,
    pub title: String,
    pub user: Option<PageUser>,
    /// Empty when nobody is logged in.
    pub csrf: String,
    pub nav: Vec<NavLink>,
    pub path: String,
    /// The page's ES module (a file name in `src/panel/assets/`), if it has one.
    pub module: Option<&'static str>,
    strings: String,
}

impl Page {
    /// The page of `section` for `viewer`; 403 when their profile may not open it.
    pub fn for_section(viewer: &Viewer, section: Section) -> Result<Page, PanelError> {
        let user = &viewer.principal.user;
        if !section.allows(user) {
            return Err(PanelError::Status {
                locale: viewer.locale,
                status: StatusCode::FORBIDDEN,
                key: "common.error.forbidden",
            });
        }
        let locale = viewer.locale;
        let nav = Section::ALL
            .into_iter()
            .filter(|s| s.allows(user))
            .map(|s| NavLink {
                href: s.href(),
                label: section_label(locale, s),
                current: s == section,
            })
            .collect();
        Ok(Page {
            locale,
            id: section.id(),
            title: section_label(locale, section).to_owned(),
            user: Some(PageUser {
                name: user.name.clone(),
                email: user.email.clone(),
            }),
            csrf: viewer.csrf.clone(),
            nav,
            path: viewer.path.clone(),
            module: None,
            strings: i18n::json_for(locale, &["common.js."]),
        })
    }

    /// A page shown without a session (login, errors).
    pub fn public(locale: Locale, id: &'static str, title_key: &str, path: &str) -> Page {
        Page {
            locale,
            id,
            title: i18n::t(locale, title_key).to_owned(),
            user: None,
            csrf: String::new(),
            nav: Vec::new(),
            path: path.to_owned(),
            module: None,
            strings: i18n::json_for(locale, &["common.js."]),
        }
    }

    /// Loads `name` (in `src/panel/assets/`) as the page's ES module.
    pub fn module(mut self, name: &'static str) -> Page {
        self.module = Some(name);
        self
    }

    /// Hands every key under these prefixes (e.g. `"attendance."`) to the page's scripts,
    /// besides `common.js.*`; scripts read them with `t(key)` from `common.js`.
    pub fn strings(mut self, prefixes: &[&str]) -> Page {
        let mut all = vec!["common.js."];
        all.extend_from_slice(prefixes);
        self.strings = i18n::json_for(self.locale, &all);
        self
    }

    // Called from templates.

    pub fn t<'a>(&self, key: &'a str) -> &'a str {
        i18n::t(self.locale, key)
    }

    pub fn asset(&self, name: &str) -> &'static str {
        assets::url(name)
    }

    pub fn import_map(&self) -> &'static str {
        assets::import_map()
    }

    pub fn strings_json(&self) -> &str {
        &self.strings
    }

    pub fn lang(&self) -> &'static str {
        self.locale.as_str()
    }

    pub fn lang_links(&self) -> Vec<LangLink> {
        Locale::ALL
            .iter()
            .map(|locale| LangLink {
                code: locale.as_str(),
                label: match locale {
                    Locale::PtBr => "Português",
                    Locale::En => "English",
                },
                href: format!(
                    "/lang/{}?next={}",
                    locale.as_str(),
                    encode_component(&self.path)
                ),
                current: *locale == self.locale,
            })
            .collect()
    }
}

fn section_label(locale: Locale, section: Section) -> &'static str {
    // `every_section_has_a_label_in_both_languages` keeps these keys present.
    i18n::lookup(locale, &section.label_key()).unwrap_or(section.id())
}

/// Percent-encodes a query parameter value.
pub fn encode_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Where a page may send the browser after login or the language switch: a path of this site.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Why a page could not be shown; rendered as a redirect to the login or an HTML error page.
#[derive(Debug)]
pub enum PanelError {
    /// Not logged in (or the session ended): go to the login, then back to `next`.
    Login {
        next: String,
    },
    Csrf {
        locale: Locale,
        error: CsrfError,
    },
    /// A status with a translated message (`key`).
    Status {
        locale: Locale,
        status: StatusCode,
        key: &'static str,
    },
}

impl PanelError {
    pub fn from_engine(locale: Locale, error: EngineError) -> PanelError {
        let (status, key) = match error {
            EngineError::Unauthenticated => {
                return PanelError::Login { next: "/".into() };
            }
            EngineError::Forbidden(_) => (StatusCode::FORBIDDEN, "common.error.forbidden"),
            EngineError::NotFound | EngineError::UnknownReference { .. } => {
                (StatusCode::NOT_FOUND, "common.error.not_found")
            }
            other => {
                tracing::error!(error = %other, "panel page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "common.error.internal")
            }
        };
        PanelError::Status {
            locale,
            status,
            key,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub page: Page,
    pub message: String,
}

impl IntoResponse for PanelError {
    fn into_response(self) -> Response {
        let (locale, status, key) = match self {
            PanelError::Login { next } => {
                let target = if next == "/" {
                    "/login".to_owned()
                } else {
                    format!("/login?next={}", encode_component(&next))
                };
                return Redirect::to(&target).into_response();
            }
            PanelError::Csrf { locale, error } => (locale, CsrfError::STATUS, error.i18n_key()),
            PanelError::Status {
                locale,
                status,
                key,
            } => (locale, status, key),
        };
        let page = Page::public(locale, "error", "common.error.title", "/");
        let message = i18n::t(locale, key).to_owned();
        (status, ErrorPage { page, message }).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_has_a_label_in_both_languages() {
        let catalog = i18n::load().unwrap_or_default();
        for section in Section::ALL {
            assert!(
                catalog.contains_key(&section.label_key()),
                "{}",
                section.label_key()
            );
        }
    }

    #[test]
    fn after_login_only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/users?x=1")), "/users?x=1");
        assert_eq!(local_path(Some("//evil.example")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(Some("https://evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn admin_pages_are_for_admins_and_the_dashboard_for_managers() {
        assert_eq!(Section::Settings.access(), Access::Admin);
        assert_eq!(Section::Dashboard.access(), Access::Manager);
        assert_eq!(Section::Attendance.access(), Access::Everyone);
    }
}
