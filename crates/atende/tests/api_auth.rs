//! Login, tokens, sessions, logout, password change, throttling and the platform operator, over
//! the real HTTP server on every backend.

use atende_testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer, expect_status};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn login_issues_a_token_that_identifies_the_user_and_logout_ends_it() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let (status, body) = server
            .call(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": "ADMIN@default.test", "password": ADMIN_PASSWORD})),
            )
            .await?;
        assert_eq!(status, 200, "{}: {body}", server.backend);
        let token = body["token"].as_str().unwrap_or_default().to_owned();
        assert!(token.starts_with("atd_"));
        assert_eq!(body["user"]["email"], ADMIN_EMAIL);
        assert_eq!(body["user"]["profile"], "admin");
        assert!(body["user"].get("password_hash").is_none());

        let me = expect_status!(server.get("/api/v1/auth/me", &token).await?, 200);
        assert_eq!(me["email"], ADMIN_EMAIL);

        expect_status!(
            server
                .post("/api/v1/auth/logout", &token, json!({}))
                .await?,
            204
        );
        let body = expect_status!(server.get("/api/v1/auth/me", &token).await?, 401);
        assert_eq!(body["error"]["code"], "unauthenticated");
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn wrong_password_unknown_email_and_missing_token_are_401() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let bad = json!({"email": ADMIN_EMAIL, "password": "nope-nope-nope"});
    let (status, body) = server
        .call(Method::POST, "/api/v1/auth/login", None, Some(&bad))
        .await?;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "bad_credentials");
    let unknown = json!({"email": "ghost@nowhere.test", "password": "whatever1"});
    assert_eq!(
        server
            .call(Method::POST, "/api/v1/auth/login", None, Some(&unknown))
            .await?
            .0,
        401
    );
    assert_eq!(
        server
            .call(Method::GET, "/api/v1/users", None, None)
            .await?
            .0,
        401
    );
    assert_eq!(server.get("/api/v1/users", "atd_0000").await?.0, 401);
    assert_eq!(server.get("/api/v1/users", "garbage").await?.0, 401);
    server.stop().await
}

#[tokio::test]
async fn repeated_failures_for_one_email_are_throttled_with_429() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let bad = json!({"email": ADMIN_EMAIL, "password": "wrong-password"});
    for _ in 0..5 {
        assert_eq!(
            server
                .call(Method::POST, "/api/v1/auth/login", None, Some(&bad))
                .await?
                .0,
            401
        );
    }
    let response = server
        .http
        .post(server.url("/api/v1/auth/login"))
        .json(&bad)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().get("retry-after").is_some());
    // Even the right password waits until the window passes.
    let good = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    assert_eq!(
        server
            .call(Method::POST, "/api/v1/auth/login", None, Some(&good))
            .await?
            .0,
        429
    );
    server.stop().await
}

#[tokio::test]
async fn password_change_ends_every_other_session_but_keeps_the_current_one() -> anyhow::Result<()>
{
    for server in TestServer::all().await? {
        let first = server.admin_token().await?;
        let second = server.admin_token().await?;
        let wrong =
            json!({"current_password": "not-it-at-all", "new_password": "brand-new-pass-1"});
        let body = expect_status!(
            server.put("/api/v1/auth/password", &second, wrong).await?,
            422
        );
        assert_eq!(body["error"]["field"], "current_password");
        let short = json!({"current_password": ADMIN_PASSWORD, "new_password": "short"});
        expect_status!(
            server.put("/api/v1/auth/password", &second, short).await?,
            422
        );

        let change =
            json!({"current_password": ADMIN_PASSWORD, "new_password": "brand-new-pass-1"});
        let body = expect_status!(
            server.put("/api/v1/auth/password", &second, change).await?,
            200
        );
        assert!(body["sessions_ended"].as_u64().unwrap_or_default() >= 1);
        assert_eq!(server.get("/api/v1/auth/me", &first).await?.0, 401);
        assert_eq!(server.get("/api/v1/auth/me", &second).await?.0, 200);
        assert!(server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.is_err());
        server.login(ADMIN_EMAIL, "brand-new-pass-1").await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn session_cookie_authenticates_and_refuses_cross_site_changes() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let response = server
        .http
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await?;
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("atende_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    assert!(cookie.len() > 20, "no session cookie");
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"));

    let me = server
        .http
        .get(server.url("/api/v1/auth/me"))
        .header("cookie", &cookie)
        .send()
        .await?;
    assert_eq!(me.status().as_u16(), 200);

    let body = json!({"name": "Vendas", "color": "#00aa00"});
    let cross = server
        .http
        .post(server.url("/api/v1/queues"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await?;
    assert_eq!(cross.status().as_u16(), 403);
    let same = server
        .http
        .post(server.url("/api/v1/queues"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .json(&body)
        .send()
        .await?;
    assert_eq!(same.status().as_u16(), 201);
    server.stop().await
}

#[tokio::test]
async fn superadmin_manages_tenants_and_sees_no_tenant_data() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        // A tenant admin is not a platform operator.
        expect_status!(server.get("/api/v1/platform/tenants", &admin).await?, 403);

        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_atende"))
            .args([
                "superadmin",
                "create",
                "--email",
                "ops@platform.test",
                "--password",
                "ops-password-1",
            ])
            .env("DATABASE_URL", database_url_of(&server))
            .env("ATENDE_DATA_DIR", &server.data_dir)
            .output()
            .await?;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let ops = server.login("ops@platform.test", "ops-password-1").await?;

        let tenants = expect_status!(server.get("/api/v1/platform/tenants", &ops).await?, 200);
        assert_eq!(tenants.as_array().map(Vec::len), Some(1));
        let created = expect_status!(
            server
                .post(
                    "/api/v1/platform/tenants",
                    &ops,
                    json!({"slug": "acme", "name": "Acme", "admin_email": "ana@acme.test", "admin_password": "acme-password-1"})
                )
                .await?,
            201
        );
        assert_eq!(created["tenant"]["slug"], "acme");
        let duplicate = json!({"slug": "acme", "name": "Again", "admin_email": "other@acme.test", "admin_password": "acme-password-1"});
        expect_status!(
            server
                .post("/api/v1/platform/tenants", &ops, duplicate)
                .await?,
            409
        );
        let bad_slug = json!({"slug": "Acme Corp", "name": "X", "admin_email": "x@acme.test", "admin_password": "acme-password-1"});
        let body = expect_status!(
            server
                .post("/api/v1/platform/tenants", &ops, bad_slug)
                .await?,
            422
        );
        assert_eq!(body["error"]["field"], "slug");

        // No tenant data for the operator.
        expect_status!(server.get("/api/v1/users", &ops).await?, 403);
        expect_status!(server.get("/api/v1/settings", &ops).await?, 403);

        // Suspension locks the tenant's users out.
        let ana = server.login("ana@acme.test", "acme-password-1").await?;
        expect_status!(server.get("/api/v1/users", &ana).await?, 200);
        let id = created["tenant"]["id"].as_i64().unwrap_or_default();
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/platform/tenants/{id}"),
                    &ops,
                    json!({"suspended": true})
                )
                .await?,
            200
        );
        expect_status!(server.get("/api/v1/users", &ana).await?, 401);
        assert!(
            server
                .login("ana@acme.test", "acme-password-1")
                .await
                .is_err()
        );
        server.stop().await?;
    }
    Ok(())
}

/// The database URL the test server uses, for running the CLI against the same store.
fn database_url_of(server: &TestServer) -> String {
    server.database_url.clone()
}
