//! Configuration: defaults, then an optional TOML file (`ATENDE_CONFIG`), then `ATENDE_*`
//! environment variables (and `DATABASE_URL`); secrets may come from `*_FILE` variables.
//! Passed to `serve` as a value, never read from a global.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://PATH?mode=rwc` (default, under the data directory) or `postgres://…`.
    pub database_url: String,
    /// Address to listen on.
    pub listen: String,
    /// Key files and media live here.
    pub data_dir: PathBuf,
    /// 32 bytes, base64 or hex; when absent a key file is created in `data_dir`.
    pub secret_key: Option<String>,
    /// First-run admin of the `default` tenant; a password is generated and printed when unset.
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// Panel session lifetime in hours.
    pub session_hours: i64,
    /// `tracing` filter, e.g. `info,atende=debug`.
    pub log: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://data/atende.db?mode=rwc".to_owned(),
            listen: "127.0.0.1:8080".to_owned(),
            data_dir: PathBuf::from("data"),
            secret_key: None,
            admin_email: None,
            admin_password: None,
            session_hours: 7 * 24,
            log: "info".to_owned(),
        }
    }
}

impl Config {
    /// Reads the file named by `ATENDE_CONFIG` (if any), then the environment.
    pub fn load() -> anyhow::Result<Config> {
        let mut config = match std::env::var("ATENDE_CONFIG") {
            Ok(path) if !path.is_empty() => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read config file {path}"))?;
                toml::from_str(&text).with_context(|| format!("config file {path} is not valid"))?
            }
            _ => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// Applies environment overrides through `get`, so tests can pass their own variables.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let value = |name: &str| -> anyhow::Result<Option<String>> {
            if let Some(value) = get(name).filter(|v| !v.is_empty()) {
                return Ok(Some(value));
            }
            let file_var = format!("{name}_FILE");
            match get(&file_var).filter(|v| !v.is_empty()) {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {file_var}={path}"))?;
                    Ok(Some(text.trim().to_owned()))
                }
                None => Ok(None),
            }
        };
        let data_dir_changed = if let Some(dir) = value("ATENDE_DATA_DIR")? {
            self.data_dir = PathBuf::from(dir);
            true
        } else {
            false
        };
        if let Some(url) = value("DATABASE_URL")?.or(value("ATENDE_DATABASE_URL")?) {
            self.database_url = url;
        } else if data_dir_changed && self.database_url == Config::default().database_url {
            self.database_url = format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("atende.db").display()
            );
        }
        if let Some(listen) = value("ATENDE_LISTEN")? {
            self.listen = listen;
        }
        if let Some(key) = value("ATENDE_SECRET_KEY")? {
            self.secret_key = Some(key);
        }
        if let Some(email) = value("ATENDE_ADMIN_EMAIL")? {
            self.admin_email = Some(email);
        }
        if let Some(password) = value("ATENDE_ADMIN_PASSWORD")? {
            self.admin_password = Some(password);
        }
        if let Some(hours) = value("ATENDE_SESSION_HOURS")? {
            self.session_hours = hours
                .parse()
                .with_context(|| format!("ATENDE_SESSION_HOURS={hours} is not a number"))?;
        }
        if let Some(log) = value("ATENDE_LOG")?.or(value("RUST_LOG")?) {
            self.log = log;
        }
        if !(1..=24 * 365).contains(&self.session_hours) {
            bail!("session_hours must be between 1 and 8760");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn environment_overrides_defaults() {
        let mut config = Config::default();
        config
            .apply_env(env(&[
                ("DATABASE_URL", "postgres://x@127.0.0.1/db"),
                ("ATENDE_LISTEN", "0.0.0.0:9000"),
            ]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.database_url, "postgres://x@127.0.0.1/db");
        assert_eq!(config.listen, "0.0.0.0:9000");
    }

    #[test]
    fn data_dir_moves_the_default_sqlite_file() {
        let mut config = Config::default();
        config
            .apply_env(env(&[("ATENDE_DATA_DIR", "/srv/atende")]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            config.database_url,
            "sqlite:///srv/atende/atende.db?mode=rwc"
        );
    }

    #[test]
    fn secrets_can_come_from_files() {
        let dir = std::env::temp_dir().join(format!("atende-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("key");
        std::fs::write(&path, "c2VjcmV0\n").unwrap_or_else(|e| panic!("{e}"));
        let mut config = Config::default();
        let path_text = path.display().to_string();
        config
            .apply_env(env(&[("ATENDE_SECRET_KEY_FILE", &path_text)]))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.secret_key.as_deref(), Some("c2VjcmV0"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
