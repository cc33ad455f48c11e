//! The settings API (SPEC §10, §13): every registry key listed, validated changes by admins only,
//! audit of each change, secrets never returned.

use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};

fn find<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.as_array()
        .and_then(|items| items.iter().find(|s| s["key"] == key))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn every_setting_is_listed_with_value_default_type_group_and_label() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let token = server.admin_token().await?;
    let list = expect_status!(server.get("/api/v1/settings", &token).await?, 200);
    let items = list.as_array().cloned().unwrap_or_default();
    assert!(items.len() >= 50, "only {} settings listed", items.len());
    for item in &items {
        for field in ["key", "type", "group", "label"] {
            assert!(item[field].is_string(), "{field} missing in {item}");
        }
        assert!(
            item.get("value").is_some() && item.get("default").is_some(),
            "{item}"
        );
    }
    let hide = find(&list, "hide_others_tickets");
    assert_eq!(hide["type"], "bool");
    assert_eq!(hide["value"], false);
    assert_eq!(hide["default"], false);
    assert_eq!(find(&list, "tickets_page_size")["value"], 40);
    assert_eq!(find(&list, "ignore_group_messages")["value"], true);
    assert_eq!(find(&list, "timezone")["value"], "America/Sao_Paulo");
    // pt-BR by default, English on request.
    assert_eq!(
        hide["label"],
        "Não visualizar Tickets já atribuídos à outros usuários"
    );
    let english = server
        .http
        .get(server.url("/api/v1/settings/hide_others_tickets"))
        .bearer_auth(&token)
        .header("accept-language", "en-US,en;q=0.9")
        .send()
        .await?
        .json::<Value>()
        .await?;
    assert_ne!(english["label"], hide["label"]);
    server.stop().await
}

#[tokio::test]
async fn admins_change_settings_with_validation_and_audit() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let token = server.admin_token().await?;
        let changed = expect_status!(
            server
                .put(
                    "/api/v1/settings/hide_others_tickets",
                    &token,
                    json!({"value": true})
                )
                .await?,
            200
        );
        assert_eq!(changed["value"], true);
        let read = expect_status!(
            server
                .get("/api/v1/settings/hide_others_tickets", &token)
                .await?,
            200
        );
        assert_eq!(
            read["value"], true,
            "the cache must be invalidated on change"
        );
        let audit = expect_status!(server.get("/api/v1/audit", &token).await?, 200);
        let entry = &audit[0];
        assert_eq!(entry["action"], "setting.update");
        assert_eq!(entry["entity_id"], "hide_others_tickets");
        assert_eq!(entry["detail"]["old"], false);
        assert_eq!(entry["detail"]["new"], true);
        assert_eq!(entry["ip"], "127.0.0.1");
        assert!(
            entry["user_id"].is_i64() && entry["created_at"].is_i64(),
            "{entry}"
        );

        let body = expect_status!(
            server
                .put("/api/v1/settings/no_such_key", &token, json!({"value": 1}))
                .await?,
            404
        );
        assert_eq!(body["error"]["code"], "not_found");
        let body = expect_status!(
            server
                .put(
                    "/api/v1/settings/tickets_page_size",
                    &token,
                    json!({"value": 5})
                )
                .await?,
            422
        );
        assert_eq!(body["error"]["field"], "tickets_page_size");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("10"),
            "{body}"
        );
        expect_status!(
            server
                .put(
                    "/api/v1/settings/tickets_page_size",
                    &token,
                    json!({"value": "many"})
                )
                .await?,
            422
        );
        expect_status!(
            server
                .put(
                    "/api/v1/settings/hide_bot_tickets",
                    &token,
                    json!({"value": "yes"})
                )
                .await?,
            422
        );
        expect_status!(
            server
                .put(
                    "/api/v1/settings/smtp_security",
                    &token,
                    json!({"value": "ssl3"})
                )
                .await?,
            422
        );
        expect_status!(
            server
                .put(
                    "/api/v1/settings/timezone",
                    &token,
                    json!({"value": "Mars/Olympus"})
                )
                .await?,
            422
        );
        expect_status!(
            server
                .put(
                    "/api/v1/settings/active_bot_flow",
                    &token,
                    json!({"value": 999_999})
                )
                .await?,
            422
        );
        expect_status!(
            server
                .put(
                    "/api/v1/settings/send_delay_min_ms",
                    &token,
                    json!({"value": 9000})
                )
                .await?,
            422
        );

        let numbers = expect_status!(
            server
                .put(
                    "/api/v1/settings/blocked_numbers",
                    &token,
                    json!({"value": ["(11) 98765-4321", "+55 11 98765-4321"]})
                )
                .await?,
            200
        );
        assert_eq!(numbers["value"], json!(["+5511987654321"]));
        let body = expect_status!(
            server
                .put(
                    "/api/v1/settings/blocked_numbers",
                    &token,
                    json!({"value": ["12ab"]})
                )
                .await?,
            422
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("12ab"),
            "{body}"
        );
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn smtp_password_is_stored_encrypted_and_never_returned() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let token = server.admin_token().await?;
    let before = expect_status!(
        server.get("/api/v1/settings/smtp_password", &token).await?,
        200
    );
    assert_eq!(before["is_set"], false);
    let after = expect_status!(
        server
            .put(
                "/api/v1/settings/smtp_password",
                &token,
                json!({"value": "s3cret-smtp-pass"})
            )
            .await?,
        200
    );
    assert_eq!(after["is_set"], true);
    assert_eq!(after["value"], Value::Null);
    let list = expect_status!(server.get("/api/v1/settings", &token).await?, 200);
    assert!(!list.to_string().contains("s3cret-smtp-pass"));
    let database = std::fs::read(server.data_dir.join("atende.db"))?;
    let wal = std::fs::read(server.data_dir.join("atende.db-wal")).unwrap_or_default();
    let needle = b"s3cret-smtp-pass";
    let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(&database) && !contains(&wal),
        "the password is stored in clear text"
    );
    server.stop().await
}

#[tokio::test]
async fn supervisors_and_users_cannot_change_settings() -> anyhow::Result<()> {
    let server = TestServer::sqlite().await?;
    let admin = server.admin_token().await?;
    for (email, profile) in [
        ("sup@default.test", "supervisor"),
        ("agent@default.test", "user"),
    ] {
        let user = json!({"email": email, "name": profile, "password": "agent-password-1", "profile": profile});
        expect_status!(server.post("/api/v1/users", &admin, user).await?, 201);
        let token = server.login(email, "agent-password-1").await?;
        expect_status!(server.get("/api/v1/settings", &token).await?, 200);
        let body = expect_status!(
            server
                .put(
                    "/api/v1/settings/hide_others_tickets",
                    &token,
                    json!({"value": true})
                )
                .await?,
            403
        );
        assert_eq!(body["error"]["code"], "forbidden");
    }
    server.stop().await
}
