//! The panel's CSS, scripts, sounds and images: embedded in the binary (every file of
//! `src/panel/assets/`, listed by `build.rs`) and served under content-hashed names
//! (`/assets/common.3fa9c1d2e4.js`) that browsers may keep for a year. A new build changes the name
//! of what changed and nothing else.
//!
//! Scripts are ES modules importing each other by relative name (`import { api } from
//! "./common.js"`): the import map every page carries turns those names into the hashed ones.

use super::i18n::script_safe_json;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// A year: hashed names never change content.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Unhashed names (old links, hand-typed URLs) are revalidated every time.
const REVALIDATE: &str = "no-cache";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/assets/{file}", get(serve))
}

struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    hash: String,
    url: String,
}

struct Registry {
    by_name: HashMap<&'static str, Asset>,
    /// Hashed file name → plain name.
    by_hashed: HashMap<String, &'static str>,
    import_map: String,
    /// `'sha256-…'` of `import_map`: the one inline script the page's CSP lets run.
    import_map_source: String,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut by_name = HashMap::new();
        let mut by_hashed = HashMap::new();
        let mut imports = BTreeMap::new();
        for (name, bytes) in super::files::ASSET_FILES {
            let hash = hex::encode(&Sha256::digest(bytes)[..5]);
            let hashed = hashed_name(name, &hash);
            let url = format!("/assets/{hashed}");
            if name.ends_with(".js") {
                imports.insert(format!("/assets/{name}"), url.clone());
            }
            by_hashed.insert(hashed, *name);
            by_name.insert(
                *name,
                Asset {
                    bytes,
                    content_type: content_type(name),
                    hash,
                    url,
                },
            );
        }
        let map = serde_json::json!({ "imports": imports });
        let import_map = script_safe_json(&map.to_string());
        let import_map_source = format!(
            "'sha256-{}'",
            BASE64_STANDARD.encode(Sha256::digest(import_map.as_bytes()))
        );
        Registry {
            by_name,
            by_hashed,
            import_map,
            import_map_source,
        }
    })
}

/// `common.js` + `3fa9c1d2e4` → `common.3fa9c1d2e4.js`.
fn hashed_name(name: &str, hash: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("wav") => "audio/wav",
        Some("ogg") => "audio/ogg",
        Some("mp3") => "audio/mpeg",
        Some("json") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The URL to put in a page for the asset `name` (a file name in `src/panel/assets/`).
pub fn url(name: &str) -> &'static str {
    match registry().by_name.get(name) {
        Some(asset) => &asset.url,
        None => {
            tracing::warn!(name, "unknown panel asset");
            "/assets/missing"
        }
    }
}

/// `{"imports":{"/assets/common.js":"/assets/common.<hash>.js",…}}`, safe inside `<script>`.
pub fn import_map() -> &'static str {
    &registry().import_map
}

/// The CSP source that allows the import map (and no other inline script): `base.html` writes
/// [`import_map`] verbatim as the whole text of its `<script type="importmap">`.
pub fn import_map_csp_source() -> &'static str {
    &registry().import_map_source
}

async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let registry = registry();
    let (name, cache) = match registry.by_hashed.get(&file) {
        Some(name) => (*name, IMMUTABLE),
        None => (file.as_str(), REVALIDATE),
    };
    let Some(asset) = registry.by_name.get(name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{}\"", asset.hash);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.bytes.into_response()
    };
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_carry_the_content_hash() {
        let css = url("panel.css");
        assert!(
            css.starts_with("/assets/panel.") && css.ends_with(".css"),
            "{css}"
        );
        assert_eq!(css.len(), "/assets/panel..css".len() + 10);
        let hash = &registry().by_name["panel.css"].hash;
        let expected = hex::encode(&Sha256::digest(include_bytes!("assets/panel.css"))[..5]);
        assert_eq!(hash, &expected);
        assert_eq!(url("no-such.js"), "/assets/missing");
    }

    #[test]
    fn import_map_points_plain_script_names_to_hashed_ones() {
        let map: serde_json::Value = serde_json::from_str(import_map()).unwrap_or_default();
        assert_eq!(map["imports"]["/assets/common.js"], url("common.js"));
        assert!(map["imports"].get("/assets/panel.css").is_none());
    }

    #[test]
    fn the_csp_source_is_the_hash_of_the_import_map() {
        let digest = BASE64_STANDARD.encode(Sha256::digest(import_map().as_bytes()));
        assert_eq!(import_map_csp_source(), format!("'sha256-{digest}'"));
    }

    #[test]
    fn hashed_name_goes_before_the_extension() {
        assert_eq!(hashed_name("common.js", "abc"), "common.abc.js");
        assert_eq!(hashed_name("LICENSE", "abc"), "LICENSE.abc");
    }
}
