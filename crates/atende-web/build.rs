//! Lists the panel's asset and translation files at build time, so a page adds its script, style
//! or strings by dropping a file into `src/panel/assets/` or `src/panel/i18n/`: no shared list to
//! edit, and each file is embedded in the binary with `include_bytes!`/`include_str!`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let assets = root.join("src/panel/assets");
    let i18n = root.join("src/panel/i18n");
    // A directory here makes Cargo rerun this script when any file under it changes or appears.
    println!("cargo:rerun-if-changed={}", assets.display());
    println!("cargo:rerun-if-changed={}", i18n.display());

    let mut out = String::new();
    out.push_str("/// `(file name, bytes)` of every file in `src/panel/assets/`.\n");
    out.push_str("pub static ASSET_FILES: &[(&str, &[u8])] = &[\n");
    for (name, path) in files(&assets, None) {
        let _ = writeln!(out, "    ({name:?}, include_bytes!({path:?})),");
    }
    out.push_str("];\n");
    out.push_str("/// `(area, TOML text)` of every file in `src/panel/i18n/`.\n");
    out.push_str("pub static I18N_FILES: &[(&str, &str)] = &[\n");
    for (name, path) in files(&i18n, Some("toml")) {
        let area = name.trim_end_matches(".toml");
        let _ = writeln!(out, "    ({area:?}, include_str!({path:?})),");
    }
    out.push_str("];\n");

    let target = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()))
        .join("panel_files.rs");
    if let Err(error) = std::fs::write(&target, out) {
        println!("cargo:warning=cannot write {}: {error}", target.display());
    }
}

/// Plain files of `dir` (sorted, hidden ones skipped), optionally only those with `extension`.
fn files(dir: &Path, extension: Option<&str>) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_owned();
            let wanted = !name.starts_with('.')
                && extension.is_none_or(|ext| name.ends_with(&format!(".{ext}")));
            wanted.then(|| (name, entry.path().display().to_string()))
        })
        .collect();
    found.sort();
    found
}
