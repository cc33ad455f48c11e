//! Tenants are walls (SPEC §1): with a token of tenant B, every route given ids of tenant A answers
//! 404, ids of tenant A inside request bodies are refused, and nothing of A changes. Role limits
//! answer 403.

use atende_testkit::{ADMIN_PASSWORD, TestServer, expect_status};
use serde_json::{Value, json};

async fn cli(server: &TestServer, args: &[&str]) -> anyhow::Result<()> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_atende"))
        .args(args)
        .env("DATABASE_URL", &server.database_url)
        .env("ATENDE_DATA_DIR", &server.data_dir)
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// Everything tenant A has, by route.
struct TenantA {
    queue: i64,
    agent: i64,
    admin: i64,
    contact: i64,
    identity: i64,
    connection: i64,
    demand: i64,
    tag: i64,
    quick_reply: i64,
    flow: i64,
}

async fn seed_tenant_a(server: &TestServer, token: &str) -> anyhow::Result<TenantA> {
    let queue = id(&expect_status!(
        server
            .post(
                "/api/v1/queues",
                token,
                json!({"name": "Suporte A", "color": "#112233"})
            )
            .await?,
        201
    ));
    let agent = id(&expect_status!(
        server
            .post("/api/v1/users", token, json!({"email": "agent@a.test", "name": "Agent A", "password": "agent-password-1", "profile": "user", "queue_ids": [queue]}))
            .await?,
        201
    ));
    let me = expect_status!(server.get("/api/v1/auth/me", token).await?, 200);
    let tag = id(&expect_status!(
        server
            .post(
                "/api/v1/tags",
                token,
                json!({"name": "VIP", "color": "#ff0000"})
            )
            .await?,
        201
    ));
    let contact_body = expect_status!(
        server
            .post(
                "/api/v1/contacts",
                token,
                json!({"name": "Cliente A", "phone": "(11) 98765-4321", "identities": [{"channel": "webchat", "external_id": "visitor-a"}], "wallet_user_ids": [agent], "tag_ids": [tag]})
            )
            .await?,
        201
    );
    let identity = contact_body["identities"][0]["id"]
        .as_i64()
        .unwrap_or_default();
    let flow = id(&expect_status!(
        server
            .post(
                "/api/v1/flows",
                token,
                json!({"name": "Menu A", "active": true, "graph": {"nodes": [], "edges": []}})
            )
            .await?,
        201
    ));
    let connection = id(&expect_status!(
        server
            .post("/api/v1/connections", token, json!({"kind": "webchat", "name": "Site A", "default_queue_id": queue, "default_flow_id": flow}))
            .await?,
        201
    ));
    let demand = id(&expect_status!(
        server
            .post(
                "/api/v1/demands",
                token,
                json!({"name": "Dúvida", "active": true})
            )
            .await?,
        201
    ));
    let quick_reply = id(&expect_status!(
        server
            .post(
                "/api/v1/quick-replies",
                token,
                json!({"shortcut": "ola", "body": "Olá!", "global": true})
            )
            .await?,
        201
    ));
    Ok(TenantA {
        queue,
        agent,
        admin: id(&me),
        contact: id(&contact_body),
        identity,
        connection,
        demand,
        tag,
        quick_reply,
        flow,
    })
}

#[tokio::test]
async fn a_token_of_tenant_b_reaches_nothing_of_tenant_a() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let token_a = server.admin_token().await?;
        let a = seed_tenant_a(&server, &token_a).await?;
        cli(
            &server,
            &[
                "tenant",
                "create",
                "--slug",
                "bravo",
                "--name",
                "Bravo",
                "--admin-email",
                "admin@b.test",
                "--admin-password",
                ADMIN_PASSWORD,
            ],
        )
        .await?;
        let token_b = server.login("admin@b.test", ADMIN_PASSWORD).await?;

        // Reads, updates and deletes of A's ids: 404 on every route.
        let routes: Vec<(String, Value)> = vec![
            (
                format!("/api/v1/queues/{}", a.queue),
                json!({"name": "hacked"}),
            ),
            (
                format!("/api/v1/users/{}", a.agent),
                json!({"name": "hacked"}),
            ),
            (
                format!("/api/v1/users/{}", a.admin),
                json!({"name": "hacked"}),
            ),
            (
                format!("/api/v1/contacts/{}", a.contact),
                json!({"name": "hacked"}),
            ),
            (
                format!("/api/v1/connections/{}", a.connection),
                json!({"name": "hacked"}),
            ),
            (
                format!("/api/v1/demands/{}", a.demand),
                json!({"name": "hacked"}),
            ),
            (format!("/api/v1/tags/{}", a.tag), json!({"name": "hacked"})),
            (
                format!("/api/v1/quick-replies/{}", a.quick_reply),
                json!({"body": "hacked"}),
            ),
            (
                format!("/api/v1/flows/{}", a.flow),
                json!({"name": "hacked"}),
            ),
        ];
        for (path, patch) in &routes {
            let (status, body) = server.get(path, &token_b).await?;
            assert_eq!(status, 404, "{} GET {path}: {body}", server.backend);
            let (status, body) = server.patch(path, &token_b, patch.clone()).await?;
            assert_eq!(status, 404, "{} PATCH {path}: {body}", server.backend);
            let (status, body) = server.delete(path, &token_b).await?;
            assert_eq!(status, 404, "{} DELETE {path}: {body}", server.backend);
        }
        let (status, _) = server
            .post(
                &format!("/api/v1/contacts/{}/merge", a.contact),
                &token_b,
                json!({"absorb_id": a.contact}),
            )
            .await?;
        assert_eq!(status, 404);

        // Lists show none of A's rows.
        for (path, a_id) in [
            ("/api/v1/queues", a.queue),
            ("/api/v1/users", a.agent),
            ("/api/v1/connections", a.connection),
            ("/api/v1/demands", a.demand),
            ("/api/v1/tags", a.tag),
            ("/api/v1/quick-replies", a.quick_reply),
            ("/api/v1/flows", a.flow),
        ] {
            let list = expect_status!(server.get(path, &token_b).await?, 200);
            let ids: Vec<i64> = list
                .as_array()
                .map(|l| l.iter().filter_map(|x| x["id"].as_i64()).collect())
                .unwrap_or_default();
            assert!(!ids.contains(&a_id), "{path} of B lists A's {a_id}");
        }
        let contacts = expect_status!(
            server
                .get("/api/v1/contacts?search=Cliente", &token_b)
                .await?,
            200
        );
        assert_eq!(
            contacts["contacts"].as_array().map(Vec::len),
            Some(0),
            "{contacts}"
        );

        // Ids of A inside request bodies are refused with 404 naming the field.
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "/api/v1/users",
                json!({"email": "x@b.test", "name": "X", "password": "x-password-1", "profile": "user", "queue_ids": [a.queue]}),
                "queue_ids",
            ),
            (
                "/api/v1/contacts",
                json!({"name": "X", "wallet_user_ids": [a.agent]}),
                "wallet_user_ids",
            ),
            (
                "/api/v1/contacts",
                json!({"name": "X", "tag_ids": [a.tag]}),
                "tag_ids",
            ),
            (
                "/api/v1/connections",
                json!({"kind": "webchat", "name": "X", "default_queue_id": a.queue}),
                "default_queue_id",
            ),
            (
                "/api/v1/connections",
                json!({"kind": "webchat", "name": "X", "default_flow_id": a.flow}),
                "default_flow_id",
            ),
        ];
        for (path, body, field) in cases {
            let (status, answer) = server.post(path, &token_b, body).await?;
            assert_eq!(status, 404, "{} POST {path}: {answer}", server.backend);
            assert_eq!(answer["error"]["field"], field, "{answer}");
        }
        let me_b = expect_status!(server.get("/api/v1/auth/me", &token_b).await?, 200);
        let (status, answer) = server
            .patch(
                &format!("/api/v1/users/{}", id(&me_b)),
                &token_b,
                json!({"queue_ids": [a.queue]}),
            )
            .await?;
        assert_eq!(status, 404, "{answer}");
        let own_contact = id(&expect_status!(
            server
                .post("/api/v1/contacts", &token_b, json!({"name": "B's"}))
                .await?,
            201
        ));
        let (status, _) = server
            .patch(
                &format!("/api/v1/contacts/{own_contact}"),
                &token_b,
                json!({"wallet_user_ids": [a.agent]}),
            )
            .await?;
        assert_eq!(status, 404);
        let (status, _) = server
            .post(
                &format!("/api/v1/contacts/{own_contact}/merge"),
                &token_b,
                json!({"absorb_id": a.contact}),
            )
            .await?;
        assert_eq!(status, 404);
        let (status, _) = server
            .delete(
                &format!("/api/v1/contacts/{own_contact}/identities/{}", a.identity),
                &token_b,
            )
            .await?;
        assert!(
            status == 404 || status == 405,
            "identity of A removed through B's contact: {status}"
        );
        // Settings that name A's flow or admin are invalid in B.
        expect_status!(
            server
                .put(
                    "/api/v1/settings/active_bot_flow",
                    &token_b,
                    json!({"value": a.flow})
                )
                .await?,
            422
        );
        expect_status!(
            server
                .put(
                    "/api/v1/settings/designated_admin",
                    &token_b,
                    json!({"value": a.admin})
                )
                .await?,
            422
        );
        // B's settings are B's alone.
        expect_status!(
            server
                .put(
                    "/api/v1/settings/hide_others_tickets",
                    &token_b,
                    json!({"value": true})
                )
                .await?,
            200
        );
        let in_a = expect_status!(
            server
                .get("/api/v1/settings/hide_others_tickets", &token_a)
                .await?,
            200
        );
        assert_eq!(in_a["value"], false);

        // A is untouched.
        let queue = expect_status!(
            server
                .get(&format!("/api/v1/queues/{}", a.queue), &token_a)
                .await?,
            200
        );
        assert_eq!(queue["name"], "Suporte A");
        let contact = expect_status!(
            server
                .get(&format!("/api/v1/contacts/{}", a.contact), &token_a)
                .await?,
            200
        );
        assert_eq!(contact["name"], "Cliente A");
        assert_eq!(contact["wallet_user_ids"], json!([a.agent]));
        assert_eq!(contact["identities"].as_array().map(Vec::len), Some(1));
        for path in [
            format!("/api/v1/flows/{}", a.flow),
            format!("/api/v1/connections/{}", a.connection),
            format!("/api/v1/quick-replies/{}", a.quick_reply),
        ] {
            expect_status!(server.get(&path, &token_a).await?, 200);
        }
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn role_limits_answer_403() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let queue = id(&expect_status!(
            server
                .post("/api/v1/queues", &admin, json!({"name": "Vendas"}))
                .await?,
            201
        ));
        let other_queue = id(&expect_status!(
            server
                .post("/api/v1/queues", &admin, json!({"name": "Financeiro"}))
                .await?,
            201
        ));
        for (email, profile) in [
            ("sup@default.test", "supervisor"),
            ("agent@default.test", "user"),
        ] {
            let body = json!({"email": email, "name": profile, "password": "agent-password-1", "profile": profile, "queue_ids": [queue]});
            expect_status!(server.post("/api/v1/users", &admin, body).await?, 201);
        }
        let supervisor = server.login("sup@default.test", "agent-password-1").await?;
        let agent = server
            .login("agent@default.test", "agent-password-1")
            .await?;
        let agent_id = id(&expect_status!(
            server.get("/api/v1/auth/me", &agent).await?,
            200
        ));
        let admin_id = id(&expect_status!(
            server.get("/api/v1/auth/me", &admin).await?,
            200
        ));
        let contact = id(&expect_status!(
            server
                .post("/api/v1/contacts", &agent, json!({"name": "Maria"}))
                .await?,
            201
        ));

        // A user cannot raise their own profile or move queues, nor edit others.
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/users/{agent_id}"),
                    &agent,
                    json!({"profile": "admin"})
                )
                .await?,
            403
        );
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/users/{agent_id}"),
                    &agent,
                    json!({"queue_ids": [other_queue]})
                )
                .await?,
            403
        );
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/users/{admin_id}"),
                    &agent,
                    json!({"name": "x"})
                )
                .await?,
            403
        );
        let own = expect_status!(
            server
                .patch(
                    &format!("/api/v1/users/{agent_id}"),
                    &agent,
                    json!({"name": "Agente Um"})
                )
                .await?,
            200
        );
        assert_eq!(own["profile"], "user");
        assert_eq!(own["name"], "Agente Um");
        // Presence is read-only.
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/users/{agent_id}"),
                    &agent,
                    json!({"presence": "online"})
                )
                .await?,
            422
        );

        for token in [&agent, &supervisor] {
            expect_status!(
                server
                    .put(
                        "/api/v1/settings/hide_others_tickets",
                        token,
                        json!({"value": true})
                    )
                    .await?,
                403
            );
            expect_status!(server.post("/api/v1/users", token, json!({"email": "n@d.test", "name": "N", "password": "n-password-1", "profile": "admin"})).await?, 403);
            expect_status!(
                server
                    .post("/api/v1/queues", token, json!({"name": "Nova"}))
                    .await?,
                403
            );
            expect_status!(
                server
                    .post(
                        "/api/v1/connections",
                        token,
                        json!({"kind": "webchat", "name": "X"})
                    )
                    .await?,
                403
            );
            expect_status!(
                server
                    .post(
                        "/api/v1/flows",
                        token,
                        json!({"name": "F", "active": true, "graph": {"nodes": [], "edges": []}})
                    )
                    .await?,
                403
            );
        }
        // Agents do not manage catalogues, wallets or blocking.
        expect_status!(
            server
                .post(
                    "/api/v1/demands",
                    &agent,
                    json!({"name": "X", "active": true})
                )
                .await?,
            403
        );
        expect_status!(
            server
                .post(
                    "/api/v1/tags",
                    &agent,
                    json!({"name": "X", "color": "#000000"})
                )
                .await?,
            403
        );
        expect_status!(
            server
                .delete(&format!("/api/v1/contacts/{contact}"), &agent)
                .await?,
            403
        );
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/contacts/{contact}"),
                    &agent,
                    json!({"blocked": true})
                )
                .await?,
            403
        );
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/contacts/{contact}"),
                    &agent,
                    json!({"wallet_user_ids": [agent_id]})
                )
                .await?,
            403
        );
        expect_status!(
            server
                .post(
                    "/api/v1/quick-replies",
                    &agent,
                    json!({"shortcut": "g", "body": "x", "global": true})
                )
                .await?,
            403
        );
        // Supervisors edit only their own queues.
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/queues/{queue}"),
                    &supervisor,
                    json!({"greeting": "Oi"})
                )
                .await?,
            200
        );
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/queues/{other_queue}"),
                    &supervisor,
                    json!({"greeting": "Oi"})
                )
                .await?,
            403
        );
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/contacts/{contact}"),
                    &supervisor,
                    json!({"blocked": true})
                )
                .await?,
            200
        );
        server.stop().await?;
    }
    Ok(())
}
