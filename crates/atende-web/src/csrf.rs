//! Cross-site request forgery defence for everything the session cookie authenticates: the
//! panel's forms and the JSON API called from the panel's scripts (Bearer-token calls are exempt:
//! a browser never attaches a Bearer header on its own).
//!
//! Two checks. The browser's word on where the request comes from (`Sec-Fetch-Site`, else
//! `Origin` against `Host`) refuses anything cross-site. The per-session token proves the caller
//! read one of our pages: it is derived from the session cookie, so it needs no storage, changes
//! with every login and cannot be computed without the (HttpOnly) cookie.

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};

/// Header the panel's `fetch` wrapper sends the token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Hidden field of every panel form.
pub const CSRF_FIELD: &str = "_csrf";

/// The form token of the session whose cookie value is `session`.
pub fn token_for(session: &str) -> String {
    let digest = Sha256::digest(format!("atende-csrf/v1\n{session}").as_bytes());
    hex::encode(&digest[..16])
}

/// Where the browser says a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// One of our pages (or the user typing the address).
    Same,
    /// Another site's page.
    Cross,
    /// No browser signal at all: not a browser, or a very old one.
    Unknown,
}

/// `Sec-Fetch-Site` (every current browser sends it), else `Origin` compared with `Host`.
pub fn site_of(headers: &HeaderMap) -> Site {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return if site == "same-origin" || site == "none" {
            Site::Same
        } else {
            Site::Cross
        };
    }
    match text(header::ORIGIN.as_str()) {
        None => Site::Unknown,
        Some(origin) => {
            let origin_host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            if origin_host.is_some() && origin_host == text(header::HOST.as_str()) {
                Site::Same
            } else {
                Site::Cross
            }
        }
    }
}

/// Why a state-changing request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfError {
    CrossSite,
    MissingToken,
    WrongToken,
}

impl CsrfError {
    pub const STATUS: StatusCode = StatusCode::FORBIDDEN;

    /// English, for the API; the panel shows the translation under [`CsrfError::i18n_key`].
    pub fn message(self) -> &'static str {
        match self {
            CsrfError::CrossSite => {
                "cross-site request refused: state changes with the session cookie must come from this site"
            }
            CsrfError::MissingToken => {
                "missing CSRF token: send the X-CSRF-Token header (the panel's pages carry it) or make the request from this site's pages"
            }
            CsrfError::WrongToken => {
                "wrong CSRF token: it belongs to another session; reload the page and try again"
            }
        }
    }

    pub fn i18n_key(self) -> &'static str {
        match self {
            CsrfError::CrossSite => "common.csrf.cross_site",
            CsrfError::MissingToken => "common.csrf.missing",
            CsrfError::WrongToken => "common.csrf.wrong",
        }
    }
}

/// A JSON API call authenticated by the session cookie: never cross-site; a token, when sent,
/// must be right; without one the browser must vouch that it comes from our own pages.
pub fn check_api(headers: &HeaderMap, session: &str) -> Result<(), CsrfError> {
    let site = site_of(headers);
    if site == Site::Cross {
        return Err(CsrfError::CrossSite);
    }
    match headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) {
        Some(sent) => matches(sent, session),
        None if site == Site::Same => Ok(()),
        None => Err(CsrfError::MissingToken),
    }
}

/// A panel form (or any panel state change): never cross-site, and always the session's token,
/// from the hidden field or the header.
pub fn check_form(
    headers: &HeaderMap,
    session: &str,
    field: Option<&str>,
) -> Result<(), CsrfError> {
    if site_of(headers) == Site::Cross {
        return Err(CsrfError::CrossSite);
    }
    let sent = field.or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
    match sent {
        Some(sent) => matches(sent, session),
        None => Err(CsrfError::MissingToken),
    }
}

fn matches(sent: &str, session: &str) -> Result<(), CsrfError> {
    let expected = token_for(session);
    // Constant time, so the token cannot be guessed byte by byte from response times.
    let same_length = sent.len() == expected.len();
    let difference = sent
        .bytes()
        .zip(expected.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if same_length && difference == 0 {
        Ok(())
    } else {
        Err(CsrfError::WrongToken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = HeaderValue::from_str(value) {
                map.insert(*name, value);
            }
        }
        map
    }

    #[test]
    fn token_depends_on_the_session_and_is_stable() {
        assert_eq!(token_for("atd_a"), token_for("atd_a"));
        assert_ne!(token_for("atd_a"), token_for("atd_b"));
        assert_eq!(token_for("atd_a").len(), 32);
    }

    #[test]
    fn browser_signals_decide_the_site() {
        let host = ("host", "panel.example:8080");
        assert_eq!(
            site_of(&headers(&[("sec-fetch-site", "same-origin")])),
            Site::Same
        );
        assert_eq!(
            site_of(&headers(&[("sec-fetch-site", "same-site")])),
            Site::Cross
        );
        assert_eq!(
            site_of(&headers(&[("sec-fetch-site", "cross-site")])),
            Site::Cross
        );
        assert_eq!(
            site_of(&headers(&[host, ("origin", "https://panel.example:8080")])),
            Site::Same
        );
        assert_eq!(
            site_of(&headers(&[host, ("origin", "https://evil.example")])),
            Site::Cross
        );
        assert_eq!(site_of(&headers(&[host, ("origin", "null")])), Site::Cross);
        assert_eq!(site_of(&headers(&[host])), Site::Unknown);
    }

    #[test]
    fn api_call_with_cookie_needs_the_token_or_a_same_origin_browser() {
        let token = token_for("atd_s");
        assert_eq!(
            check_api(&headers(&[]), "atd_s"),
            Err(CsrfError::MissingToken)
        );
        assert_eq!(
            check_api(&headers(&[("x-csrf-token", "nope")]), "atd_s"),
            Err(CsrfError::WrongToken)
        );
        assert_eq!(
            check_api(&headers(&[("x-csrf-token", &token)]), "atd_s"),
            Ok(())
        );
        assert_eq!(
            check_api(&headers(&[("sec-fetch-site", "same-origin")]), "atd_s"),
            Ok(())
        );
        assert_eq!(
            check_api(
                &headers(&[("sec-fetch-site", "cross-site"), ("x-csrf-token", &token)]),
                "atd_s"
            ),
            Err(CsrfError::CrossSite)
        );
    }

    #[test]
    fn panel_form_always_needs_the_token() {
        let same = headers(&[("sec-fetch-site", "same-origin")]);
        assert_eq!(
            check_form(&same, "atd_s", None),
            Err(CsrfError::MissingToken)
        );
        assert_eq!(
            check_form(&same, "atd_s", Some(&token_for("atd_other"))),
            Err(CsrfError::WrongToken)
        );
        assert_eq!(
            check_form(&same, "atd_s", Some(&token_for("atd_s"))),
            Ok(())
        );
    }
}
