//! The admin pages and the settings page over HTTP (no browser): who may open them, what they
//! carry, that the settings page never holds a stored secret, and `PUT /api/v1/settings` (the
//! settings page's Save: several settings at once, all or nothing).

use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};

fn find<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|s| s["key"] == key))
        .unwrap_or(&Value::Null)
}

/// A page as the browser of the holder of `token` gets it (the panel's session cookie holds the
/// same kind of token the API takes).
async fn page(server: &TestServer, token: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let response = server
        .http
        .get(server.url(path))
        .header("cookie", format!("atende_session={token}"))
        .header("accept-language", "pt-BR")
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// The settings page's Save: `PUT /api/v1/settings` with `values`.
async fn save(server: &TestServer, token: &str, values: Value) -> anyhow::Result<(u16, Value)> {
    server
        .put("/api/v1/settings", token, json!({ "values": values }))
        .await
}

async fn agent(server: &TestServer, admin: &str, email: &str) -> anyhow::Result<String> {
    expect_status!(
        server
            .post(
                "/api/v1/users",
                admin,
                json!({"email": email, "name": "Agente", "password": "agent-password-1", "profile": "user"})
            )
            .await?,
        201
    );
    server.login(email, "agent-password-1").await
}

#[tokio::test]
async fn saving_several_settings_stores_all_of_them_or_none() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let token = server.admin_token().await?;
        let list = expect_status!(
            save(&server, &token, json!({"hide_others_tickets": true, "tickets_page_size": 60, "blocked_numbers": ["(11) 91234-5678"]})).await?,
            200
        );
        assert_eq!(find(&list, "hide_others_tickets")["value"], true);
        assert_eq!(find(&list, "tickets_page_size")["value"], 60);
        assert_eq!(
            find(&list, "blocked_numbers")["value"],
            json!(["+5511912345678"]),
            "the answer carries the stored, normalised values"
        );
        let audit = expect_status!(server.get("/api/v1/audit", &token).await?, 200);
        let audited: Vec<&str> = audit
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["action"] == "setting.update")
                    .filter_map(|e| e["entity_id"].as_str())
                    .collect()
            })
            .unwrap_or_default();
        for key in [
            "hide_others_tickets",
            "tickets_page_size",
            "blocked_numbers",
        ] {
            assert!(audited.contains(&key), "{key} audited: {audited:?}");
        }

        // One bad value: nothing of the request is stored, and the error names the field.
        let body = expect_status!(
            save(
                &server,
                &token,
                json!({"tab_counters": false, "tickets_page_size": 5})
            )
            .await?,
            422
        );
        assert_eq!(body["error"]["field"], "tickets_page_size");
        let list = expect_status!(server.get("/api/v1/settings", &token).await?, 200);
        assert_eq!(find(&list, "tab_counters")["value"], true);
        assert_eq!(find(&list, "tickets_page_size")["value"], 60);

        let body = expect_status!(
            save(
                &server,
                &token,
                json!({"tab_counters": false, "no_such_setting": 1})
            )
            .await?,
            404
        );
        assert_eq!(body["error"]["field"], "no_such_setting");
        let list = expect_status!(server.get("/api/v1/settings", &token).await?, 200);
        assert_eq!(find(&list, "tab_counters")["value"], true);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn the_cadence_pair_is_checked_after_the_whole_change() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let token = server.admin_token().await?;
        // From the defaults (2000..5000): a minimum above the old maximum is fine when the new
        // maximum is above it.
        let list = expect_status!(
            save(
                &server,
                &token,
                json!({"send_delay_min_ms": 8000, "send_delay_max_ms": 9000})
            )
            .await?,
            200
        );
        assert_eq!(find(&list, "send_delay_min_ms")["value"], 8000);
        assert_eq!(find(&list, "send_delay_max_ms")["value"], 9000);
        // Both within bounds, but min above max once both apply: refused, nothing stored.
        let body = expect_status!(
            save(
                &server,
                &token,
                json!({"send_delay_min_ms": 3000, "send_delay_max_ms": 2500})
            )
            .await?,
            422
        );
        assert_eq!(body["error"]["field"], "send_delay_min_ms");
        let list = expect_status!(server.get("/api/v1/settings", &token).await?, 200);
        assert_eq!(find(&list, "send_delay_min_ms")["value"], 8000);
        assert_eq!(find(&list, "send_delay_max_ms")["value"], 9000);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn only_admins_save_settings_and_secrets_come_back_as_set_only() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let admin = server.admin_token().await?;
    let agent = agent(&server, &admin, "agente@default.test").await?;
    let body = expect_status!(
        save(&server, &agent, json!({"hide_others_tickets": true})).await?,
        403
    );
    assert_eq!(body["error"]["code"], "forbidden");

    let list = expect_status!(
        save(
            &server,
            &admin,
            json!({"smtp_password": "s3cret-smtp-pass", "smtp_host": "smtp.example.com"})
        )
        .await?,
        200
    );
    let password = find(&list, "smtp_password");
    assert_eq!(password["is_set"], true);
    assert_eq!(password["value"], Value::Null);
    assert!(!list.to_string().contains("s3cret-smtp-pass"));
    let audit = expect_status!(server.get("/api/v1/audit", &admin).await?, 200);
    assert!(!audit.to_string().contains("s3cret-smtp-pass"));

    // `null` removes it.
    let list = expect_status!(
        save(&server, &admin, json!({"smtp_password": null})).await?,
        200
    );
    assert_eq!(find(&list, "smtp_password")["is_set"], false);

    let doc: Value = server
        .http
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await?
        .json()
        .await?;
    let settings = &doc["paths"]["/api/v1/settings"];
    assert!(
        settings.get("get").is_some() && settings.get("put").is_some(),
        "OpenAPI documents both methods of /api/v1/settings: {settings}"
    );
    server.stop().await
}

#[tokio::test]
async fn admin_pages_open_for_admins_and_refuse_agents() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let admin = server.admin_token().await?;
    let agent = agent(&server, &admin, "agente@default.test").await?;
    for (path, script) in [
        ("/users", "admin-users"),
        ("/queues", "admin-queues"),
        ("/connections", "admin-connections"),
        ("/demands", "admin-demands"),
        ("/tags", "admin-tags"),
        ("/settings", "settings"),
    ] {
        let (status, html) = page(&server, &admin, path).await?;
        assert_eq!(status, 200, "{path}");
        assert!(
            html.contains(&format!("/assets/{script}.")),
            "{path} loads {script}.js"
        );
        assert!(html.contains("/assets/admin."), "{path} loads admin.css");
        let (status, _) = page(&server, &agent, path).await?;
        assert_eq!(status, 403, "{path} is for admins");
    }
    // Contacts and quick replies are for everyone; merging and wallets only for managers.
    for path in ["/contacts", "/quick-replies"] {
        let (status, _) = page(&server, &agent, path).await?;
        assert_eq!(status, 200, "{path}");
    }
    let (_, as_admin) = page(&server, &admin, "/contacts").await?;
    let (_, as_agent) = page(&server, &agent, "/contacts").await?;
    assert!(as_admin.contains("id=\"merge-dialog\"") && as_admin.contains("id=\"contact-wallet\""));
    assert!(
        !as_agent.contains("id=\"merge-dialog\"") && !as_agent.contains("id=\"contact-wallet\"")
    );
    // The pairing area of WhatsApp connections is there, labelled, for the channel to fill.
    let (_, connections) = page(&server, &admin, "/connections").await?;
    assert!(connections.contains("id=\"connection-pairing-area\""));
    assert!(connections.contains("QR code"));
    server.stop().await
}

#[tokio::test]
async fn the_settings_page_is_the_registry_grouped_and_never_holds_the_smtp_password()
-> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let admin = server.admin_token().await?;
    let (status, html) = page(&server, &admin, "/settings").await?;
    assert_eq!(status, 200);
    let list = expect_status!(server.get("/api/v1/settings", &admin).await?, 200);
    let items = list.as_array().cloned().unwrap_or_default();
    assert!(items.len() >= 50);
    for item in &items {
        let key = item["key"].as_str().unwrap_or_default();
        assert!(
            html.contains(&format!("data-setting=\"{key}\"")),
            "{key} has a control"
        );
    }
    // Groups in the registry's order, SMTP last, with the registry's own labels.
    let at = |needle: &str| html.find(needle).unwrap_or(usize::MAX);
    assert!(at("id=\"group-visibility\"") < at("id=\"group-hours\""));
    assert!(at("id=\"group-hours\"") < at("id=\"group-smtp\""));
    assert!(html.contains("Não visualizar Tickets já atribuídos à outros usuários"));
    assert!(html.contains("Senha não definida"));
    // Controls by type: a switch, a bounded number, a select of the enum.
    assert!(html.contains("role=\"switch\" class=\"switch\" id=\"s-hide_others_tickets\""));
    assert!(html.contains(
        "id=\"s-tickets_page_size\" name=\"tickets_page_size\" value=\"40\" min=\"10\" max=\"200\""
    ));
    assert!(html.contains("<option value=\"starttls\" selected>"));

    expect_status!(
        server
            .put(
                "/api/v1/settings/smtp_password",
                &admin,
                json!({"value": "s3cret-smtp-pass"})
            )
            .await?,
        200
    );
    let (_, html) = page(&server, &admin, "/settings").await?;
    assert!(html.contains("Senha definida"));
    assert!(!html.contains("s3cret-smtp-pass"));
    server.stop().await
}
