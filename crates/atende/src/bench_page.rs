//! `atende bench attendance-page`: the agent panel's attendance page at scale (issue 5,
//! "Numbers"). On the ticket-list data shape (see `bench_list`), an agent logs in through the
//! panel's login form, and the page `/` is fetched over loopback with the session cookie: its
//! server time (p50/p99, measured by the client) next to the raw-store baseline of the ticket
//! list it shows, and its weight, the HTML plus every script and stylesheet it loads (module
//! imports followed through the page's import map), against the 150 KB budget.

use crate::bench_list::{self, Answer, Http, Options, Sample, Shape};
use anyhow::{Context, bail};
use atende_db::Db;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Instant;

/// Budget of the page's HTML + JS + CSS, uncompressed (issue 5).
pub const PAGE_BUDGET_BYTES: usize = 150 * 1024;
const SESSION_COOKIE: &str = "atende_session";

pub async fn run(options: Options) -> anyhow::Result<String> {
    bench_list::with_server(
        "attendance-page",
        &options,
        async |db, shape, addr, report| measure(db, shape, &options, addr, report).await,
    )
    .await
}

async fn measure(
    db: &Db,
    shape: &Shape,
    options: &Options,
    addr: std::net::SocketAddr,
    report: &mut String,
) -> anyhow::Result<()> {
    let mut http = Http::connect(addr).await?;
    let session = panel_login(&mut http, &shape.agent_email).await?;
    let cookie = format!("{SESSION_COOKIE}={session}");
    let requests = options.requests.max(10);

    let first = get_page(&mut http, "/", &cookie).await?;
    let html = String::from_utf8(first.body).context("the page is not UTF-8")?;
    let rows = html.matches("<li class=\"ticket").count();

    for _ in 0..(requests / 10).max(20) {
        get_page(&mut http, "/", &cookie).await?;
    }
    let mut times = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        get_page(&mut http, "/", &cookie).await?;
        times.push(started.elapsed());
    }
    let page = Sample(times);
    let store = bench_list::time_store_open_page(db, shape, requests).await?;

    let PageAssets {
        loaded: assets,
        on_demand,
    } = page_assets(&mut http, &html).await?;
    let asset_bytes: usize = assets.values().sum();
    let total = html.len() + asset_bytes;

    let _ = writeln!(
        report,
        "agent in {} queues: the page lists {rows} tickets",
        shape.agent_queues.len()
    );
    let _ = writeln!(
        report,
        "{} (goal: p99 < 20 ms)",
        page.line("http attendance page / (session cookie)")
    );
    let _ = writeln!(
        report,
        "{}",
        store.line("store agent open page (raw-store baseline)")
    );
    let _ = writeln!(
        report,
        "ratio page/store p50 {:.1}x",
        page.percentile(50.0) / store.percentile(50.0).max(0.000_1)
    );
    let files: Vec<String> = assets
        .iter()
        .map(|(url, bytes)| format!("{} {bytes}", url.trim_start_matches("/assets/")))
        .collect();
    let _ = writeln!(
        report,
        "weight: html {} B + {} assets {asset_bytes} B = {total} B ({:.1} KB, budget {} KB)\n  {}",
        html.len(),
        assets.len(),
        total as f64 / 1024.0,
        PAGE_BUDGET_BYTES / 1024,
        files.join("\n  ")
    );
    for (url, bytes) in &on_demand {
        let _ = writeln!(
            report,
            "  on demand, not counted: {} {bytes}",
            url.trim_start_matches("/assets/")
        );
    }
    if total > PAGE_BUDGET_BYTES {
        bail!(
            "the attendance page weighs {total} bytes, over the {PAGE_BUDGET_BYTES}-byte budget:\n{report}"
        );
    }
    Ok(())
}

/// Logs in through the panel's form (as a browser would) and answers the session cookie's value.
async fn panel_login(http: &mut Http, email: &str) -> anyhow::Result<String> {
    let form = format!(
        "email={}&password={}&next=%2F",
        form_encode(email),
        form_encode(bench_list::PASSWORD)
    );
    let answer = http
        .send(
            "POST",
            "/login",
            &[("Sec-Fetch-Site", "same-origin")],
            Some(("application/x-www-form-urlencoded", form.as_bytes())),
        )
        .await?;
    if !(300..400).contains(&answer.status) {
        bail!(
            "panel login of {email} answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    answer
        .headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .find_map(|(_, value)| {
            let pair = value.split(';').next()?;
            let (name, value) = pair.split_once('=')?;
            (name.trim() == SESSION_COOKIE && !value.is_empty()).then(|| value.to_owned())
        })
        .context("the panel login set no session cookie")
}

fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

async fn get_page(http: &mut Http, path: &str, cookie: &str) -> anyhow::Result<Answer> {
    let answer = http.send("GET", path, &[("Cookie", cookie)], None).await?;
    if answer.status != 200 {
        bail!(
            "GET {path} answered {}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        );
    }
    Ok(answer)
}

/// What the page loads with it: every stylesheet and script, with its size (the `<link>`s and
/// `<script src>` of the HTML, then the modules those scripts import, resolved through the page's
/// import map as the browser does); and apart, the modules it loads only on demand (`import()`),
/// which are not part of the page's weight.
struct PageAssets {
    loaded: BTreeMap<String, usize>,
    on_demand: BTreeMap<String, usize>,
}

async fn page_assets(http: &mut Http, html: &str) -> anyhow::Result<PageAssets> {
    let import_map = import_map_of(html)?;
    let resolve = |url: String| import_map.get(&url).cloned().unwrap_or(url);
    let mut pending: Vec<(String, bool)> = referenced_urls(html)
        .into_iter()
        .map(|url| (resolve(url), false))
        .collect();
    let mut assets = PageAssets {
        loaded: BTreeMap::new(),
        on_demand: BTreeMap::new(),
    };
    // Static imports first, so a module both imported and lazily loaded counts as loaded.
    while let Some(index) = pending
        .iter()
        .position(|(_, lazy)| !lazy)
        .or_else(|| pending.len().checked_sub(1))
    {
        let (url, lazy) = pending.swap_remove(index);
        if assets.loaded.contains_key(&url) || assets.on_demand.contains_key(&url) {
            continue;
        }
        let answer = http.send("GET", &url, &[], None).await?;
        if answer.status != 200 {
            bail!(
                "GET {url} (referenced by the page) answered {}",
                answer.status
            );
        }
        if url.ends_with(".js") {
            let source = String::from_utf8_lossy(&answer.body);
            for (specifier, dynamic) in module_imports(&source) {
                pending.push((resolve(join(&url, &specifier)), lazy || dynamic));
            }
        }
        let into = if lazy {
            &mut assets.on_demand
        } else {
            &mut assets.loaded
        };
        into.insert(url, answer.body.len());
    }
    Ok(assets)
}

/// `imports` of the page's `<script type="importmap">`.
fn import_map_of(html: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(start) = html.find("<script type=\"importmap\">") else {
        return Ok(BTreeMap::new());
    };
    let rest = &html[start + "<script type=\"importmap\">".len()..];
    let json = rest
        .split("</script>")
        .next()
        .context("unterminated import map")?;
    let value: serde_json::Value = serde_json::from_str(json).context("bad import map")?;
    Ok(value["imports"]
        .as_object()
        .map(|imports| {
            imports
                .iter()
                .filter_map(|(from, to)| Some((from.clone(), to.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default())
}

/// `src` of `<script>` and `href` of stylesheet / module-preload `<link>` tags, in order.
fn referenced_urls(html: &str) -> BTreeSet<String> {
    let mut urls = BTreeSet::new();
    for (index, _) in html.match_indices('<') {
        let tag = &html[index..];
        let Some(end) = tag.find('>') else { break };
        let tag = &tag[..end];
        let wanted = if tag.starts_with("<script") {
            attribute(tag, "src")
        } else if tag.starts_with("<link")
            && matches!(
                attribute(tag, "rel").as_deref(),
                Some("stylesheet" | "modulepreload")
            )
        {
            attribute(tag, "href")
        } else {
            None
        };
        urls.extend(wanted);
    }
    urls
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let value = &tag[start..];
    Some(value[..value.find('"')?].to_owned())
}

/// Specifiers of `import … from "x"`, `export … from "x"`, `import "x"` and `import("x")`
/// (comment lines skipped), each with whether it is a dynamic `import()`.
fn module_imports(source: &str) -> Vec<(String, bool)> {
    let mut found = Vec::new();
    for line in source.lines() {
        let code = line.trim_start();
        if code.starts_with("//") || code.starts_with('*') || code.starts_with("/*") {
            continue;
        }
        for marker in ["from ", "import ", "import("] {
            for (index, _) in code.match_indices(marker) {
                let rest = code[index + marker.len()..].trim_start();
                let Some(quote) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') else {
                    continue;
                };
                let rest = &rest[1..];
                if let Some(end) = rest.find(quote) {
                    let specifier = &rest[..end];
                    if specifier.ends_with(".js") {
                        found.push((specifier.to_owned(), marker == "import("));
                    }
                }
            }
        }
    }
    found
}

/// `specifier` relative to the module at `base` (`/assets/a.js` + `./b.js` → `/assets/b.js`).
fn join(base: &str, specifier: &str) -> String {
    if specifier.starts_with('/') {
        return specifier.to_owned();
    }
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for part in specifier.split('/') {
        match part {
            "." => {}
            ".." => {
                if parts.len() > 1 {
                    parts.pop();
                }
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_imports_are_followed_and_comments_skipped() {
        let source = "// import from \"./nope.js\"\nimport { a } from \"./common.js\";\n\
                      export { b } from './util.js';\nconst m = await import(\"./lazy.js\");\n";
        assert_eq!(
            module_imports(source),
            vec![
                ("./common.js".to_owned(), false),
                ("./util.js".to_owned(), false),
                ("./lazy.js".to_owned(), true)
            ]
        );
        assert_eq!(
            join("/assets/page.abc.js", "./common.js"),
            "/assets/common.js"
        );
        assert_eq!(
            join("/assets/x/page.js", "../common.js"),
            "/assets/common.js"
        );
    }

    #[test]
    fn the_page_references_its_scripts_and_stylesheets_not_the_import_map() {
        let html = "<link rel=\"stylesheet\" href=\"/assets/panel.1.css\">\
                    <link rel=\"icon\" href=\"/favicon.ico\">\
                    <script type=\"importmap\">{\"imports\":{\"/assets/common.js\":\"/assets/common.2.js\"}}</script>\
                    <script type=\"module\" src=\"/assets/common.2.js\"></script>";
        let urls: Vec<String> = referenced_urls(html).into_iter().collect();
        assert_eq!(urls, vec!["/assets/common.2.js", "/assets/panel.1.css"]);
        let map = import_map_of(html).unwrap_or_default();
        assert_eq!(
            map.get("/assets/common.js").map(String::as_str),
            Some("/assets/common.2.js")
        );
    }
}
