//! The panel's words in every language, looked up per request (never a process-wide locale).
//!
//! One TOML file per page area in `src/panel/i18n/` (`common.toml`, `attendance.toml`, …), each
//! leaf a table with `pt` and `en`:
//!
//! ```toml
//! [login]
//! title = { pt = "Entrar", en = "Sign in" }
//! ```
//!
//! The key is the file's name, then the path: `common.login.title`. Files are embedded at build
//! time (see `build.rs`) and parsed once.

use atende_domain::settings::Locale;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// One key's text in each language.
#[derive(Debug, Clone)]
pub struct Entry {
    pub pt: String,
    pub en: String,
}

impl Entry {
    fn pick(&self, locale: Locale) -> &str {
        match locale {
            Locale::PtBr => &self.pt,
            Locale::En => &self.en,
        }
    }
}

pub type Catalog = HashMap<String, Entry>;

/// Parses every embedded file; an error names the file and the key at fault.
pub fn load() -> Result<Catalog, String> {
    let mut catalog = Catalog::new();
    for (area, text) in super::files::I18N_FILES {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| format!("i18n/{area}.toml: {e}"))?;
        collect(area, &table, &mut catalog).map_err(|e| format!("i18n/{area}.toml: {e}"))?;
    }
    Ok(catalog)
}

fn collect(prefix: &str, table: &toml::Table, into: &mut Catalog) -> Result<(), String> {
    for (name, value) in table {
        let key = format!("{prefix}.{name}");
        let Some(inner) = value.as_table() else {
            return Err(format!("`{key}` must be a table with `pt` and `en`"));
        };
        let is_leaf = inner.values().any(|v| !v.is_table());
        if !is_leaf {
            collect(&key, inner, into)?;
            continue;
        }
        let text = |lang: &str| {
            inner
                .get(lang)
                .and_then(|v| v.as_str())
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("`{key}` has no `{lang}` text"))
        };
        if let Some(extra) = inner.keys().find(|k| *k != "pt" && *k != "en") {
            return Err(format!("`{key}` has an unknown language `{extra}`"));
        }
        let entry = Entry {
            pt: text("pt")?,
            en: text("en")?,
        };
        into.insert(key, entry);
    }
    Ok(())
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        load().unwrap_or_else(|error| {
            // The unit tests load the same files, so this is reached only by a broken build.
            tracing::error!(%error, "panel translations cannot be read");
            Catalog::new()
        })
    })
}

/// The text of `key` in `locale`; an unknown key shows itself (and a unit test keeps every key
/// used in templates, scripts and panel code known).
pub fn t(locale: Locale, key: &str) -> &str {
    lookup(locale, key).unwrap_or_else(|| {
        tracing::warn!(key, "missing panel translation");
        key
    })
}

/// The text of `key` in `locale`, if the key exists.
pub fn lookup(locale: Locale, key: &str) -> Option<&'static str> {
    catalog().get(key).map(|entry| entry.pick(locale))
}

/// Every key under any of `prefixes` (e.g. `"attendance."`) with its text in `locale`, as JSON
/// safe to place inside a `<script type="application/json">` element.
pub fn json_for(locale: Locale, prefixes: &[&str]) -> String {
    let selected: BTreeMap<&str, &str> = catalog()
        .iter()
        .filter(|(key, _)| prefixes.iter().any(|p| key.starts_with(p)))
        .map(|(key, entry)| (key.as_str(), entry.pick(locale)))
        .collect();
    script_safe_json(&serde_json::to_string(&selected).unwrap_or_else(|_| "{}".into()))
}

/// JSON cannot end a `<script>` element or open a comment once `<`, `>` and `&` are escaped.
pub fn script_safe_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    #[test]
    fn every_key_has_portuguese_and_english() {
        let catalog = load().unwrap_or_else(|error| panic!("{error}"));
        assert!(catalog.len() > 20, "the common strings are there");
        for (key, entry) in &catalog {
            assert!(!entry.pt.trim().is_empty(), "{key}: pt");
            assert!(!entry.en.trim().is_empty(), "{key}: en");
        }
    }

    #[test]
    fn a_key_without_english_is_refused() {
        let table: toml::Table = toml::from_str("[a]\nb = { pt = \"x\" }\n").unwrap_or_default();
        let mut into = Catalog::new();
        let error = collect("t", &table, &mut into).err().unwrap_or_default();
        assert!(error.contains("`t.a.b` has no `en`"), "{error}");
    }

    #[test]
    fn lookup_is_per_locale() {
        assert_eq!(t(Locale::PtBr, "common.login.submit"), "Entrar");
        assert_eq!(t(Locale::En, "common.login.submit"), "Sign in");
        assert_eq!(t(Locale::En, "common.no.such.key"), "common.no.such.key");
    }

    #[test]
    fn strings_handed_to_scripts_cannot_close_the_script_element() {
        assert_eq!(
            script_safe_json("{\"a\":\"</script>&\"}"),
            "{\"a\":\"\\u003c/script\\u003e\\u0026\"}"
        );
        let json = json_for(Locale::En, &["common.js."]);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        assert!(parsed.get("common.js.network_error").is_some(), "{json}");
    }

    /// Every `t("key")` / `t(locale, "key")` in the templates, the panel's Rust code and its
    /// scripts names a key that exists.
    #[test]
    fn every_key_used_in_templates_scripts_and_code_exists() {
        let catalog = load().unwrap_or_else(|error| panic!("{error}"));
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut sources = Vec::new();
        gather(&root.join("templates"), &mut sources);
        gather(&root.join("src/panel"), &mut sources);
        assert!(sources.len() > 10, "templates and panel sources found");
        let mut missing = Vec::new();
        let mut used = 0;
        for path in &sources {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            for key in keys_used(&text) {
                used += 1;
                if !catalog.contains_key(&key) {
                    missing.push(format!("{}: {key}", path.display()));
                }
            }
        }
        assert!(used > 10, "the scanner finds the keys in use ({used})");
        assert!(
            missing.is_empty(),
            "keys without a translation:\n{}",
            missing.join("\n")
        );
    }

    fn gather(dir: &Path, into: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                gather(&path, into);
            } else if path.ends_with("panel/i18n.rs") {
                // This file's own tests hold made-up keys on purpose.
            } else if path
                .extension()
                .is_some_and(|e| e == "html" || e == "rs" || e == "js")
            {
                into.push(path);
            }
        }
    }

    /// The first string literal inside each `t(…)` call whose `t` is a whole word.
    fn keys_used(text: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let bytes = text.as_bytes();
        let mut from = 0;
        while let Some(found) = text[from..].find("t(") {
            let at = from + found;
            from = at + 2;
            let whole_word = at == 0 || {
                let before = bytes[at - 1];
                !(before.is_ascii_alphanumeric() || before == b'_')
            };
            if !whole_word {
                continue;
            }
            let call = &text[from..];
            let call = &call[..call.find(')').unwrap_or(call.len())];
            let mut quoted = call.split('"');
            if let (Some(_), Some(key)) = (quoted.next(), quoted.next())
                && key.contains('.')
                && !key.contains(' ')
            {
                keys.push(key.to_owned());
            }
        }
        keys
    }

    #[test]
    fn the_scanner_reads_calls_and_ignores_other_functions() {
        let found = keys_used(
            "page.t(\"common.a\") i18n::t(locale, \"common.b\") split(\".\") post(\"/x.y\") t(\"x.y\")",
        );
        assert_eq!(found, vec!["common.a", "common.b", "x.y"]);
    }
}
