//! Bad input never panics: each kind of malformed request gets its own clear 4xx in the JSON error
//! shape of SPEC §13.

use atende_testkit::{TestServer, expect_status};
use serde_json::json;

#[tokio::test]
async fn malformed_requests_get_clear_client_errors() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let token = server.admin_token().await?;
    let url = server.url("/api/v1/queues");

    let syntax = server
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await?;
    assert_eq!(syntax.status().as_u16(), 400);
    let body: serde_json::Value = syntax.json().await?;
    assert_eq!(body["error"]["code"], "bad_request");

    let text = server
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await?;
    assert_eq!(text.status().as_u16(), 415);

    let huge = "x".repeat(2 * 1024 * 1024);
    let big = server
        .http
        .post(&url)
        .bearer_auth(&token)
        .json(&json!({"name": huge}))
        .send()
        .await?;
    assert_eq!(big.status().as_u16(), 413);

    let body = expect_status!(
        server
            .post(
                "/api/v1/queues",
                &token,
                json!({"name": "A", "colour": "#fff"})
            )
            .await?,
        422
    );
    assert_eq!(body["error"]["field"], "colour");
    let body = expect_status!(
        server
            .post("/api/v1/queues", &token, json!({"color": "#fff"}))
            .await?,
        422
    );
    assert_eq!(body["error"]["field"], "name");
    let body = expect_status!(
        server
            .post("/api/v1/queues", &token, json!({"name": 5}))
            .await?,
        422
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid type"),
        "{body}"
    );
    let body = expect_status!(
        server
            .post("/api/v1/queues", &token, json!({"name": "  "}))
            .await?,
        422
    );
    assert_eq!(body["error"]["field"], "name");
    let body = expect_status!(
        server
            .post(
                "/api/v1/queues",
                &token,
                json!({"name": "Q", "color": "blue"})
            )
            .await?,
        422
    );
    assert_eq!(body["error"]["field"], "color");

    expect_status!(
        server.get("/api/v1/queues/not-a-number", &token).await?,
        400
    );
    let body = expect_status!(server.get("/api/v1/no-such-route", &token).await?, 404);
    assert_eq!(body["error"]["code"], "not_found");
    expect_status!(server.get("/api/v1/queues/999999", &token).await?, 404);

    // Still alive after all that.
    expect_status!(server.get("/healthz", &token).await?, 200);
    server.stop().await
}

#[tokio::test]
async fn health_metrics_and_openapi_are_served() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    assert_eq!(
        server
            .http
            .get(server.url("/healthz"))
            .send()
            .await?
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        server
            .http
            .get(server.url("/readyz"))
            .send()
            .await?
            .status()
            .as_u16(),
        200
    );
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("atende_http_requests_total{class=\"2xx\"}"),
        "{metrics}"
    );
    let doc: serde_json::Value = server
        .http
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    assert!(
        doc["openapi"]
            .as_str()
            .unwrap_or_default()
            .starts_with("3.")
    );
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for path in [
        "/api/v1/auth/login",
        "/api/v1/settings/{key}",
        "/api/v1/users/{id}",
        "/api/v1/queues",
        "/api/v1/contacts",
        "/api/v1/connections/{id}",
        "/api/v1/demands",
        "/api/v1/tags",
        "/api/v1/quick-replies",
        "/api/v1/flows",
        "/api/v1/platform/tenants",
        "/api/v1/jobs/{id}",
    ] {
        assert!(paths.contains_key(path), "OpenAPI misses {path}");
    }
    server.stop().await
}
