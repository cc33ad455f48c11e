//! The panel over HTTP: login and logout, redirects, the CSRF checks of forms and of the API
//! called with the session cookie, the language choice and the hashed assets.

use atende_testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

/// A client that shows redirects instead of following them.
fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(Policy::none())
        .build()?)
}

fn location(headers: &HeaderMap) -> String {
    headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Logs in through the panel's form; answers the `atende_session=…` pair.
async fn panel_login(server: &TestServer, email: &str, password: &str) -> anyhow::Result<String> {
    let response = client()?
        .post(server.url("/login"))
        .header("origin", format!("http://{}", server.addr))
        .form(&[("email", email), ("password", password), ("next", "/")])
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 303, "login of {email}");
    let cookie = set_cookie(response.headers(), "atende_session").unwrap_or_default();
    let pair = cookie.split(';').next().unwrap_or_default().to_owned();
    assert!(pair.len() > 30, "a session cookie: {cookie}");
    Ok(pair)
}

/// The CSRF token a page hands to its scripts (`<meta name="csrf-token">`).
async fn csrf_token(server: &TestServer, cookie: &str) -> anyhow::Result<String> {
    let html = client()?
        .get(server.url("/"))
        .header("cookie", cookie)
        .send()
        .await?
        .text()
        .await?;
    let token = html
        .split("<meta name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(token.len(), 32, "token in the page");
    Ok(token)
}

#[tokio::test]
async fn pages_without_a_session_redirect_to_the_login_and_come_back_after_it() -> anyhow::Result<()>
{
    for server in TestServer::all().await? {
        let http = client()?;
        let response = http.get(server.url("/users")).send().await?;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(location(response.headers()), "/login?next=/users");
        let response = http.get(server.url("/")).send().await?;
        assert_eq!(location(response.headers()), "/login");

        let response = http
            .post(server.url("/login"))
            .form(&[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", "/users"),
            ])
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(location(response.headers()), "/users");
        let cookie = set_cookie(response.headers(), "atende_session").unwrap_or_default();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        let session = cookie.split(';').next().unwrap_or_default();
        let page = http
            .get(server.url("/users"))
            .header("cookie", session)
            .send()
            .await?;
        assert_eq!(page.status().as_u16(), 200);
        assert_eq!(
            page.headers()["cache-control"],
            "no-store",
            "pages hold a CSRF token"
        );
        let html = page.text().await?;
        assert!(
            html.contains("<h1 class=\"page-title\">Usuários</h1>"),
            "{html}"
        );

        // A logged-in visit to the login goes on; a foreign `next` is not followed.
        let again = http
            .get(server.url("/login?next=//evil.example"))
            .header("cookie", session)
            .send()
            .await?;
        assert_eq!(location(again.headers()), "/");
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn wrong_password_shows_the_error_on_the_login_page_in_the_chosen_language()
-> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let http = client()?;
    let wrong = [("email", ADMIN_EMAIL), ("password", "not-the-password")];
    let response = http.post(server.url("/login")).form(&wrong).send().await?;
    assert_eq!(response.status().as_u16(), 401);
    assert!(set_cookie(response.headers(), "atende_session").is_none());
    let html = response.text().await?;
    assert!(html.contains("E-mail ou senha incorretos."), "{html}");
    assert!(
        html.contains(&format!("value=\"{ADMIN_EMAIL}\"")),
        "the e-mail stays filled in"
    );

    let response = http
        .post(server.url("/login"))
        .header("accept-language", "en-US,en;q=0.9")
        .form(&wrong)
        .send()
        .await?;
    assert!(response.text().await?.contains("Wrong e-mail or password."));

    // The switch's cookie wins over the browser's language.
    let response = http
        .post(server.url("/login"))
        .header("accept-language", "en-US")
        .header("cookie", "lang=pt-BR")
        .form(&wrong)
        .send()
        .await?;
    assert!(
        response
            .text()
            .await?
            .contains("E-mail ou senha incorretos.")
    );
    server.stop().await
}

#[tokio::test]
async fn repeated_failed_logins_show_the_wait_message_with_429() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let http = client()?;
    let mut last = (0, String::new());
    for _ in 0..30 {
        let response = http
            .post(server.url("/login"))
            .form(&[("email", "nobody@default.test"), ("password", "wrong")])
            .send()
            .await?;
        last = (response.status().as_u16(), response.text().await?);
        if last.0 == 429 {
            break;
        }
    }
    assert_eq!(last.0, 429, "the login throttle answers");
    assert!(
        last.1
            .contains("Muitas tentativas sem sucesso. Tente novamente em"),
        "{}",
        last.1
    );
    server.stop().await
}

#[tokio::test]
async fn cross_site_login_is_refused() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let response = client()?
        .post(server.url("/login"))
        .header("origin", "https://evil.example")
        .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)])
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 403);
    assert!(set_cookie(response.headers(), "atende_session").is_none());
    server.stop().await
}

#[tokio::test]
async fn panel_forms_need_the_session_csrf_token() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let http = client()?;
        let cookie = panel_login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        let own = format!("http://{}", server.addr);

        let missing = http
            .post(server.url("/logout"))
            .header("cookie", &cookie)
            .header("origin", &own)
            .form(&[("x", "1")])
            .send()
            .await?;
        assert_eq!(missing.status().as_u16(), 403);
        assert!(
            missing
                .text()
                .await?
                .contains("falta o token de segurança do formulário")
        );

        let other = panel_login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        let wrong = http
            .post(server.url("/logout"))
            .header("cookie", &cookie)
            .header("origin", &own)
            .form(&[("_csrf", csrf_token(&server, &other).await?)])
            .send()
            .await?;
        assert_eq!(wrong.status().as_u16(), 403);
        assert!(wrong.text().await?.contains("não é desta sessão"));

        let token = csrf_token(&server, &cookie).await?;
        let cross = http
            .post(server.url("/logout"))
            .header("cookie", &cookie)
            .header("origin", "https://evil.example")
            .form(&[("_csrf", token.as_str())])
            .send()
            .await?;
        assert_eq!(
            cross.status().as_u16(),
            403,
            "cross-site even with the token"
        );

        let right = http
            .post(server.url("/logout"))
            .header("cookie", &cookie)
            .header("origin", &own)
            .form(&[("_csrf", token.as_str())])
            .send()
            .await?;
        assert_eq!(right.status().as_u16(), 303);
        assert_eq!(location(right.headers()), "/login");
        let cleared = set_cookie(right.headers(), "atende_session").unwrap_or_default();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
        let after = http
            .get(server.url("/"))
            .header("cookie", &cookie)
            .send()
            .await?;
        assert_eq!(location(after.headers()), "/login", "the session ended");
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn api_calls_with_the_session_cookie_need_the_csrf_token_or_a_same_origin_browser()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let http = client()?;
        let cookie = panel_login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
        let token = csrf_token(&server, &cookie).await?;
        let queue = |name: &str| json!({"name": name, "color": "#00aa00"});
        let send = |extra: &[(&str, &str)], body: Value| {
            let mut request = http
                .post(server.url("/api/v1/queues"))
                .header("cookie", &cookie)
                .json(&body);
            for (name, value) in extra {
                request = request.header(*name, *value);
            }
            request.send()
        };

        let missing = send(&[], queue("A")).await?;
        assert_eq!(missing.status().as_u16(), 403);
        let body: Value = missing.json().await?;
        assert_eq!(body["error"]["code"], "csrf");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("missing CSRF token: send the X-CSRF-Token header"),
            "{body}"
        );

        let wrong = send(&[("x-csrf-token", "0123456789abcdef")], queue("B")).await?;
        assert_eq!(wrong.status().as_u16(), 403);
        let body: Value = wrong.json().await?;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("wrong CSRF token"),
            "{body}"
        );

        let cross = send(
            &[("x-csrf-token", &token), ("sec-fetch-site", "cross-site")],
            queue("C"),
        )
        .await?;
        assert_eq!(cross.status().as_u16(), 403);

        let right = send(&[("x-csrf-token", &token)], queue("D")).await?;
        assert_eq!(right.status().as_u16(), 201, "{}", right.text().await?);
        let same_origin = send(&[("sec-fetch-site", "same-origin")], queue("E")).await?;
        assert_eq!(same_origin.status().as_u16(), 201);

        // Reading needs no token; Bearer calls are exempt (a browser never adds the header).
        let read = http
            .get(server.url("/api/v1/queues"))
            .header("cookie", &cookie)
            .send()
            .await?;
        assert_eq!(read.status().as_u16(), 200);
        let bearer = server.admin_token().await?;
        let (status, _) = server.post("/api/v1/queues", &bearer, queue("F")).await?;
        assert_eq!(status, 201);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn agents_see_no_admin_menu_and_get_403_on_admin_pages() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let admin = server.admin_token().await?;
    let (status, body) = server
        .post(
            "/api/v1/users",
            &admin,
            json!({"email": "agent@default.test", "name": "Ana", "password": "agent-password-1", "profile": "user"}),
        )
        .await?;
    assert_eq!(status, 201, "{body}");
    let cookie = panel_login(&server, "agent@default.test", "agent-password-1").await?;
    let http = client()?;
    let home = http
        .get(server.url("/"))
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    assert!(home.contains("href=\"/contacts\""), "agents have contacts");
    for admin_only in ["/settings", "/users", "/maintenance", "/dashboard"] {
        assert!(
            !home.contains(&format!("href=\"{admin_only}\"")),
            "{admin_only} in the menu"
        );
        let page = http
            .get(server.url(admin_only))
            .header("cookie", &cookie)
            .send()
            .await?;
        assert_eq!(page.status().as_u16(), 403, "{admin_only}");
        assert!(
            page.text()
                .await?
                .contains("Seu perfil não tem acesso a esta página.")
        );
    }
    server.stop().await
}

#[tokio::test]
async fn language_switch_sets_a_cookie_and_returns_to_the_page() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let http = client()?;
    let response = http
        .get(server.url("/lang/en?next=%2Fusers%3Fa%3D1"))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(response.headers()), "/users?a=1");
    let cookie = set_cookie(response.headers(), "lang").unwrap_or_default();
    assert!(cookie.starts_with("lang=en;"), "{cookie}");
    let response = http
        .get(server.url("/lang/pt-BR?next=https://evil.example"))
        .send()
        .await?;
    assert_eq!(location(response.headers()), "/");

    let login = |cookie: Option<&'static str>, accept: &'static str| {
        let mut request = http
            .get(server.url("/login"))
            .header("accept-language", accept);
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    let html = login(None, "pt-BR").await?.text().await?;
    assert!(html.contains("<html lang=\"pt-BR\">") && html.contains(">Entrar</button>"));
    let html = login(None, "en-GB,en").await?.text().await?;
    assert!(html.contains("<html lang=\"en\">") && html.contains(">Sign in</button>"));
    let html = login(Some("lang=en"), "pt-BR").await?.text().await?;
    assert!(html.contains(">Sign in</button>"), "the cookie wins");
    server.stop().await
}

#[tokio::test]
async fn assets_are_served_under_content_hashed_names_with_long_caching() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let http = client()?;
    let html = http.get(server.url("/login")).send().await?.text().await?;
    let css = html
        .split("href=\"/assets/panel.")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|rest| format!("/assets/panel.{rest}"))
        .unwrap_or_default();
    assert!(
        css.ends_with(".css") && css.len() == "/assets/panel..css".len() + 10,
        "{css}"
    );
    assert!(
        html.contains("\"/assets/common.js\":\"/assets/common."),
        "import map"
    );

    let response = http.get(server.url(&css)).send().await?;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(
        response.headers()["content-type"],
        "text/css; charset=utf-8"
    );
    let etag = response.headers()["etag"].to_str()?.to_owned();
    assert!(response.text().await?.contains(":focus-visible"));

    let plain = http.get(server.url("/assets/panel.css")).send().await?;
    assert_eq!(plain.status().as_u16(), 200);
    assert_eq!(plain.headers()["cache-control"], "no-cache");
    let revalidated = http
        .get(server.url("/assets/panel.css"))
        .header("if-none-match", &etag)
        .send()
        .await?;
    assert_eq!(revalidated.status().as_u16(), 304);

    let stale = http
        .get(server.url("/assets/panel.0000000000.css"))
        .send()
        .await?;
    assert_eq!(stale.status().as_u16(), 404);
    let js = http.get(server.url("/assets/common.js")).send().await?;
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    server.stop().await
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn panel_pages_carry_a_strict_csp_and_refuse_framing_but_the_widget_page_may_be_framed()
-> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let cookie = panel_login(&server, ADMIN_EMAIL, ADMIN_PASSWORD).await?;
    let http = client()?;
    for path in ["/", "/login", "/users", "/settings", "/dashboard"] {
        // A logged-in browser is sent on from the login page: ask for it without the cookie.
        let cookie = if path == "/login" {
            ""
        } else {
            cookie.as_str()
        };
        let response = http
            .get(server.url(path))
            .header("cookie", cookie)
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let headers = response.headers().clone();
        let html = response.text().await?;
        let csp = header(&headers, "content-security-policy");
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        assert!(
            directives.contains(&"frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(directives.contains(&"style-src 'self'"), "{path}: {csp}");
        assert!(directives.contains(&"object-src 'none'"), "{path}: {csp}");
        // Our files, and the import map by its hash: nothing inline, nothing from elsewhere.
        let script = directives
            .iter()
            .find(|d| d.starts_with("script-src "))
            .copied()
            .unwrap_or_default();
        let sources: Vec<&str> = script.split_whitespace().skip(1).collect();
        assert_eq!(sources.len(), 2, "{path}: {script}");
        assert_eq!(sources[0], "'self'");
        assert!(sources[1].starts_with("'sha256-"), "{path}: {script}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert_eq!(header(&headers, "x-frame-options"), "DENY");
        assert_eq!(header(&headers, "referrer-policy"), "same-origin");

        // The page as the CSP sees it: the only executable inline script is the import map,
        // and no markup styles itself or handles events inline.
        let inline_scripts = html
            .split("<script")
            .skip(1)
            .filter(|tag| {
                let open = tag.split('>').next().unwrap_or_default();
                !open.contains(" src=") && !open.contains("type=\"application/json\"")
            })
            .count();
        assert_eq!(inline_scripts, 1, "{path}: only the import map is inline");
        assert!(html.contains("<script type=\"importmap\">"), "{path}");
        assert!(
            !html.contains(" style=\""),
            "{path}: inline style attribute"
        );
        assert!(!html.contains("<style"), "{path}: inline stylesheet");
        for handler in [
            " onclick=",
            " onload=",
            " onerror=",
            " onsubmit=",
            " onchange=",
        ] {
            assert!(!html.contains(handler), "{path}: inline {handler}");
        }
    }

    // The web-chat widget is embedded by companies in an iframe on their own sites.
    let token = server.admin_token().await?;
    let (status, connection) = server
        .post(
            "/api/v1/connections",
            &token,
            json!({"kind": "webchat", "name": "Site"}),
        )
        .await?;
    assert_eq!(status, 201, "{connection}");
    let key = connection["key"].as_str().unwrap_or_default();
    let response = http
        .get(server.url(&format!("/widget/{key}")))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let csp = header(response.headers(), "content-security-policy");
    assert!(!csp.contains("frame-ancestors"), "{csp}");
    assert!(response.headers().get("x-frame-options").is_none());
    server.stop().await
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_the_proxy_says_https() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let form = [
        ("email", ADMIN_EMAIL),
        ("password", ADMIN_PASSWORD),
        ("next", "/"),
    ];
    for (proto, secure) in [(None, false), (Some("http"), false), (Some("https"), true)] {
        let mut request = client()?
            .post(server.url("/login"))
            .header("origin", format!("http://{}", server.addr))
            .form(&form);
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        let response = request.send().await?;
        assert_eq!(response.status().as_u16(), 303);
        let cookie = set_cookie(response.headers(), "atende_session").unwrap_or_default();
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert_eq!(
            cookie.split(';').any(|part| part.trim() == "Secure"),
            secure,
            "{proto:?}: {cookie}"
        );
    }
    // The API's login sets the same cookie.
    let response = client()?
        .post(server.url("/api/v1/auth/login"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let cookie = set_cookie(response.headers(), "atende_session").unwrap_or_default();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    server.stop().await
}
