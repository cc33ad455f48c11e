//! The CRUD resources of SPEC §13 (`/api/v1/{users,queues,contacts,connections,flows,demands,tags,
//! quick-replies}`) end to end over real HTTP on every backend: what is stored is what comes back,
//! input is normalised the way SPEC §1–§2 says, and each refusal has its status and field.

use atende_testkit::{ADMIN_EMAIL, ADMIN_PASSWORD, TestServer, expect_status};
use serde_json::{Value, json};

fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {value}"))
}

/// The `id`s of a JSON list of objects, in order.
fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(id)
        .collect()
}

/// The values of `key` in a JSON list of objects, in order.
fn strings(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|item| item[key].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn error_field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or_default()
}

fn sorted(mut values: Vec<i64>) -> Vec<i64> {
    values.sort_unstable();
    values
}

/// The weekly schedule of SPEC §8 used throughout: two windows on Monday and one holiday.
fn weekly_schedule() -> Value {
    json!({
        "days": {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "13:00", "end": "18:00"}]},
        "holidays": ["2026-12-25"]
    })
}

async fn me(server: &TestServer, token: &str) -> anyhow::Result<i64> {
    Ok(id(&expect_status!(
        server.get("/api/v1/auth/me", token).await?,
        200
    )))
}

/// Creates a user with `profile` and logs them in: `(id, token)`.
async fn person(
    server: &TestServer,
    admin: &str,
    email: &str,
    profile: &str,
) -> anyhow::Result<(i64, String)> {
    let password = "person-password-1";
    let body = json!({"email": email, "name": email, "password": password, "profile": profile});
    let user = expect_status!(server.post("/api/v1/users", admin, body).await?, 201);
    let token = server.login(email, password).await?;
    Ok((id(&user), token))
}

async fn create(server: &TestServer, token: &str, path: &str, body: Value) -> anyhow::Result<i64> {
    Ok(id(&expect_status!(
        server.post(path, token, body).await?,
        201
    )))
}

// ---- users ----

#[tokio::test]
async fn user_created_with_queues_shows_them_and_patches_queues_profile_and_preferences()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let support = create(
            &server,
            &admin,
            "/api/v1/queues",
            json!({"name": "Suporte"}),
        )
        .await?;
        let sales = create(&server, &admin, "/api/v1/queues", json!({"name": "Vendas"})).await?;

        let created = expect_status!(
            server
                .post(
                    "/api/v1/users",
                    &admin,
                    json!({"email": "  Carla@Default.TEST ", "name": " Carla ", "password": "carla-password-1",
                           "profile": "user", "queue_ids": [sales, support, sales]})
                )
                .await?,
            201
        );
        let carla = id(&created);
        assert_eq!(created["email"], "carla@default.test", "{}", server.backend);
        assert_eq!(created["name"], "Carla");
        assert_eq!(created["profile"], "user");
        assert_eq!(created["presence"], "offline");
        assert_eq!(created["locale"], "pt-BR");
        assert_eq!(created["business_hours"], Value::Null);
        assert_eq!(created["timezone"], Value::Null);
        assert_eq!(created["queue_ids"], json!(sorted(vec![support, sales])));
        assert!(created.get("password_hash").is_none());
        assert!(!created.to_string().contains("carla-password-1"));

        let path = format!("/api/v1/users/{carla}");
        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown["queue_ids"], json!(sorted(vec![support, sales])));
        let list = expect_status!(server.get("/api/v1/users", &admin).await?, 200);
        let listed = list
            .as_array()
            .and_then(|l| l.iter().find(|u| id(u) == carla).cloned())
            .unwrap_or_default();
        assert_eq!(listed["queue_ids"], shown["queue_ids"]);
        // The new user logs in with the e-mail in any case.
        server
            .login("CARLA@default.test", "carla-password-1")
            .await?;

        let patched = expect_status!(
            server
                .patch(&path, &admin, json!({"queue_ids": [support]}))
                .await?,
            200
        );
        assert_eq!(patched["queue_ids"], json!([support]));
        assert_eq!(patched["name"], "Carla", "untouched fields stay");

        let patched = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"profile": "supervisor", "name": "Carla Dias", "timezone": "America/Manaus", "locale": "EN"})
                )
                .await?,
            200
        );
        assert_eq!(patched["profile"], "supervisor");
        assert_eq!(patched["name"], "Carla Dias");
        assert_eq!(patched["timezone"], "America/Manaus");
        assert_eq!(patched["locale"], "en");
        assert_eq!(patched["queue_ids"], json!([support]));

        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown["profile"], "supervisor");
        assert_eq!(shown["timezone"], "America/Manaus");

        let cleared = expect_status!(
            server
                .patch(&path, &admin, json!({"queue_ids": [], "timezone": null}))
                .await?,
            200
        );
        assert_eq!(cleared["queue_ids"], json!([]));
        assert_eq!(cleared["timezone"], Value::Null);
        assert_eq!(cleared["locale"], "en");
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn user_business_hours_round_trip_and_overlapping_windows_name_the_field()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let (agent, agent_token) = person(&server, &admin, "hours@default.test", "user").await?;
        let path = format!("/api/v1/users/{agent}");

        let patched = expect_status!(
            server
                .patch(&path, &admin, json!({"business_hours": weekly_schedule()}))
                .await?,
            200
        );
        assert_eq!(
            patched["business_hours"],
            weekly_schedule(),
            "{}",
            server.backend
        );
        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown["business_hours"], weekly_schedule());

        // Windows come back sorted and in HH:MM; repeated holidays once.
        let patched = expect_status!(
            server
                .patch(
                    &path,
                    &agent_token,
                    json!({"business_hours": {"days": {"tue": [{"start": "14:00", "end": "18:00"}, {"start": "8:00", "end": "12:00"}]},
                                              "holidays": ["2026-12-25", "2026-01-01", "2026-12-25"]}})
                )
                .await?,
            200
        );
        assert_eq!(
            patched["business_hours"],
            json!({"days": {"tue": [{"start": "08:00", "end": "12:00"}, {"start": "14:00", "end": "18:00"}]},
                   "holidays": ["2026-01-01", "2026-12-25"]})
        );

        let overlapping = json!({"days": {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "14:00"}]}});
        let body = expect_status!(
            server
                .patch(&path, &admin, json!({"business_hours": overlapping}))
                .await?,
            422
        );
        assert_eq!(body["error"]["code"], "validation_failed");
        assert!(
            error_field(&body).starts_with("business_hours"),
            "field of {body}"
        );
        assert_eq!(error_field(&body), "business_hours.days.mon[1]");
        let body = expect_status!(
            server
                .post(
                    "/api/v1/users",
                    &admin,
                    json!({"email": "overlap@default.test", "name": "O", "password": "overlap-password-1",
                           "profile": "user", "business_hours": overlapping})
                )
                .await?,
            422
        );
        assert_eq!(error_field(&body), "business_hours.days.mon[1]");
        let body = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"business_hours": {"days": {"mon": [{"start": "18:00", "end": "08:00"}]}}})
                )
                .await?,
            422
        );
        assert_eq!(error_field(&body), "business_hours.days.mon[0].end");

        // Refusals left the stored hours alone; null goes back to the tenant's hours.
        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown["business_hours"]["days"]["tue"][0]["start"], "08:00");
        let cleared = expect_status!(
            server
                .patch(&path, &admin, json!({"business_hours": null}))
                .await?,
            200
        );
        assert_eq!(cleared["business_hours"], Value::Null);

        // Created with hours and a timezone, they are there from the start.
        let created = expect_status!(
            server
                .post(
                    "/api/v1/users",
                    &admin,
                    json!({"email": "early@default.test", "name": "Early", "password": "early-password-1",
                           "profile": "user", "business_hours": weekly_schedule(), "timezone": "America/Sao_Paulo"})
                )
                .await?,
            201
        );
        assert_eq!(created["business_hours"], weekly_schedule());
        assert_eq!(created["timezone"], "America/Sao_Paulo");
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn user_emails_are_unique_case_insensitively_and_timezone_and_locale_are_checked()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let maria = create(
            &server,
            &admin,
            "/api/v1/users",
            json!({"email": "maria@default.test", "name": "Maria", "password": "maria-password-1", "profile": "user"}),
        )
        .await?;
        let joana = create(
            &server,
            &admin,
            "/api/v1/users",
            json!({"email": "joana@default.test", "name": "Joana", "password": "joana-password-1", "profile": "user"}),
        )
        .await?;

        for email in [
            "MARIA@Default.Test",
            " maria@default.test ",
            "Admin@DEFAULT.test",
        ] {
            let body = expect_status!(
                server
                    .post(
                        "/api/v1/users",
                        &admin,
                        json!({"email": email, "name": "Dup", "password": "dup-password-1", "profile": "user"})
                    )
                    .await?,
                409
            );
            assert_eq!(body["error"]["code"], "conflict", "{}", server.backend);
        }
        let body = expect_status!(
            server
                .patch(
                    &format!("/api/v1/users/{joana}"),
                    &admin,
                    json!({"email": "Maria@DEFAULT.test"})
                )
                .await?,
            409
        );
        assert_eq!(body["error"]["code"], "conflict");
        let joana_now = expect_status!(
            server
                .get(&format!("/api/v1/users/{joana}"), &admin)
                .await?,
            200
        );
        assert_eq!(joana_now["email"], "joana@default.test");

        let invalid: Vec<(Value, &str)> = vec![
            (
                json!({"email": "tz@default.test", "name": "T", "password": "tz-password-1", "profile": "user", "timezone": "Mars/Olympus_Mons"}),
                "timezone",
            ),
            (
                json!({"email": "lc@default.test", "name": "L", "password": "lc-password-1", "profile": "user", "locale": "fr"}),
                "locale",
            ),
            (
                json!({"email": "not-an-email", "name": "E", "password": "e-password-1", "profile": "user"}),
                "email",
            ),
            (
                json!({"email": "pw@default.test", "name": "P", "password": "short", "profile": "user"}),
                "password",
            ),
            (
                json!({"email": "pf@default.test", "name": "P", "password": "pf-password-1", "profile": "owner"}),
                "profile",
            ),
        ];
        for (input, field) in invalid {
            let body = expect_status!(server.post("/api/v1/users", &admin, input).await?, 422);
            assert_eq!(error_field(&body), field, "{body}");
        }
        let path = format!("/api/v1/users/{maria}");
        for (patch, field) in [
            (json!({"timezone": "Nowhere/City"}), "timezone"),
            (json!({"timezone": ""}), "timezone"),
            (json!({"locale": "klingon"}), "locale"),
            (json!({"name": "   "}), "name"),
        ] {
            let body = expect_status!(server.patch(&path, &admin, patch).await?, 422);
            assert_eq!(error_field(&body), field, "{body}");
        }
        let body = expect_status!(
            server
                .post(
                    "/api/v1/users",
                    &admin,
                    json!({"email": "queue@default.test", "name": "Q", "password": "q-password-1", "profile": "user", "queue_ids": [987_654]})
                )
                .await?,
            404
        );
        assert_eq!(error_field(&body), "queue_ids");
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_refused_user_patch_changes_nothing() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let queue = create(
            &server,
            &admin,
            "/api/v1/queues",
            json!({"name": "Suporte"}),
        )
        .await?;
        let (agent, agent_token) = person(&server, &admin, "steady@default.test", "user").await?;
        let path = format!("/api/v1/users/{agent}");
        expect_status!(
            server
                .patch(&path, &admin, json!({"queue_ids": [queue]}))
                .await?,
            200
        );

        let body = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"name": "Renamed", "password": "short"})
                )
                .await?,
            422
        );
        assert_eq!(error_field(&body), "password");
        let body = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"name": "Renamed", "profile": "supervisor", "queue_ids": [987_654]})
                )
                .await?,
            404
        );
        assert_eq!(error_field(&body), "queue_ids");

        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown["name"], "steady@default.test", "{}", server.backend);
        assert_eq!(shown["profile"], "user");
        assert_eq!(shown["queue_ids"], json!([queue]));
        // The refused password change ended no session.
        expect_status!(server.get("/api/v1/auth/me", &agent_token).await?, 200);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn admin_password_reset_ends_the_users_sessions_and_the_new_password_logs_in()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let (agent, old_token) = person(&server, &admin, "reset@default.test", "user").await?;
        let second_old_token = server
            .login("reset@default.test", "person-password-1")
            .await?;
        let path = format!("/api/v1/users/{agent}");

        let body = expect_status!(
            server
                .patch(&path, &admin, json!({"password": "fresh-password-2"}))
                .await?,
            200
        );
        assert!(body.get("password_hash").is_none());
        assert!(!body.to_string().contains("fresh-password-2"));
        for token in [&old_token, &second_old_token] {
            let body = expect_status!(server.get("/api/v1/auth/me", token).await?, 401);
            assert_eq!(
                body["error"]["code"], "unauthenticated",
                "{}",
                server.backend
            );
        }
        assert!(
            server
                .login("reset@default.test", "person-password-1")
                .await
                .is_err()
        );
        let new_token = server
            .login("reset@default.test", "fresh-password-2")
            .await?;
        assert_eq!(me(&server, &new_token).await?, agent);
        // The admin who reset it is still logged in.
        expect_status!(server.get("/api/v1/auth/me", &admin).await?, 200);

        // An agent cannot reset anyone's password this way, not even their own.
        let body = expect_status!(
            server
                .patch(&path, &new_token, json!({"password": "agent-choice-3"}))
                .await?,
            403
        );
        assert_eq!(body["error"]["code"], "forbidden");
        server
            .login("reset@default.test", "fresh-password-2")
            .await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn users_are_deleted_but_not_yourself_and_the_last_admin_keeps_the_admin_profile()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let first = server.admin_token().await?;
        let first_id = me(&server, &first).await?;
        let first_path = format!("/api/v1/users/{first_id}");

        let body = expect_status!(
            server
                .patch(&first_path, &first, json!({"profile": "supervisor"}))
                .await?,
            409
        );
        assert_eq!(body["error"]["code"], "invalid_state", "{}", server.backend);
        let shown = expect_status!(server.get(&first_path, &first).await?, 200);
        assert_eq!(shown["profile"], "admin");
        // Keeping the profile while editing oneself is fine.
        let renamed = expect_status!(
            server
                .patch(
                    &first_path,
                    &first,
                    json!({"profile": "admin", "name": "Chefe"})
                )
                .await?,
            200
        );
        assert_eq!(renamed["name"], "Chefe");

        let body = expect_status!(server.delete(&first_path, &first).await?, 409);
        assert_eq!(body["error"]["code"], "invalid_state");

        // With a second admin the first may step down; then the second is the last one.
        let (second_id, second) = person(&server, &first, "boss2@default.test", "admin").await?;
        let stepped_down = expect_status!(
            server
                .patch(&first_path, &first, json!({"profile": "user"}))
                .await?,
            200
        );
        assert_eq!(stepped_down["profile"], "user");
        let second_path = format!("/api/v1/users/{second_id}");
        expect_status!(
            server
                .patch(&second_path, &second, json!({"profile": "user"}))
                .await?,
            409
        );
        expect_status!(server.delete(&second_path, &second).await?, 409);

        expect_status!(server.delete(&first_path, &second).await?, 204);
        let body = expect_status!(server.get(&first_path, &second).await?, 404);
        assert_eq!(body["error"]["code"], "not_found");
        expect_status!(server.delete(&first_path, &second).await?, 404);
        expect_status!(
            server
                .patch(&first_path, &second, json!({"name": "Ghost"}))
                .await?,
            404
        );
        // Their sessions went with them.
        expect_status!(server.get("/api/v1/auth/me", &first).await?, 401);
        assert!(server.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.is_err());
        let list = expect_status!(server.get("/api/v1/users", &second).await?, 200);
        assert_eq!(ids(&list), vec![second_id]);
        server.stop().await?;
    }
    Ok(())
}

// ---- queues ----

#[tokio::test]
async fn queues_are_listed_by_name_with_normalised_colours_and_unique_names() -> anyhow::Result<()>
{
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let sales = expect_status!(
            server
                .post(
                    "/api/v1/queues",
                    &admin,
                    json!({"name": "Vendas", "color": "#ABC"})
                )
                .await?,
            201
        );
        assert_eq!(sales["color"], "#aabbcc", "{}", server.backend);
        assert_eq!(sales["greeting"], "");
        assert_eq!(sales["business_hours"], Value::Null);
        let service = expect_status!(
            server
                .post("/api/v1/queues", &admin, json!({"name": "Atendimento"}))
                .await?,
            201
        );
        assert_eq!(service["color"], "#5b6cff");
        let finance = expect_status!(
            server
                .post(
                    "/api/v1/queues",
                    &admin,
                    json!({"name": " Financeiro ", "color": "#12AB9F", "greeting": "  Olá! Em que posso ajudar?  ",
                           "absence_message": "Voltamos às 8h", "business_hours": weekly_schedule()})
                )
                .await?,
            201
        );
        assert_eq!(finance["name"], "Financeiro");
        assert_eq!(finance["color"], "#12ab9f");
        assert_eq!(finance["greeting"], "Olá! Em que posso ajudar?");
        assert_eq!(finance["absence_message"], "Voltamos às 8h");
        assert_eq!(finance["business_hours"], weekly_schedule());

        let list = expect_status!(server.get("/api/v1/queues", &admin).await?, 200);
        assert_eq!(
            strings(&list, "name"),
            ["Atendimento", "Financeiro", "Vendas"]
        );
        let shown = expect_status!(
            server
                .get(&format!("/api/v1/queues/{}", id(&finance)), &admin)
                .await?,
            200
        );
        assert_eq!(shown, finance);

        let body = expect_status!(
            server
                .post("/api/v1/queues", &admin, json!({"name": "Vendas"}))
                .await?,
            409
        );
        assert_eq!(body["error"]["code"], "conflict");
        for (input, field) in [
            (json!({"name": "Azul", "color": "blue"}), "color"),
            (json!({"name": "Curta", "color": "#abcd"}), "color"),
            (json!({"name": "  "}), "name"),
            (
                json!({"name": "Horas", "business_hours": {"days": {"sun": [{"start": "10:00", "end": "25:00"}]}}}),
                "business_hours.days.sun[0].end",
            ),
        ] {
            let body = expect_status!(server.post("/api/v1/queues", &admin, input).await?, 422);
            assert_eq!(error_field(&body), field, "{body}");
        }

        let sales_path = format!("/api/v1/queues/{}", id(&sales));
        let patched = expect_status!(
            server
                .patch(
                    &sales_path,
                    &admin,
                    json!({"name": "Comercial", "color": "#FFF", "absence_message": "Fora do horário"})
                )
                .await?,
            200
        );
        assert_eq!(patched["name"], "Comercial");
        assert_eq!(patched["color"], "#ffffff");
        assert_eq!(patched["absence_message"], "Fora do horário");
        let list = expect_status!(server.get("/api/v1/queues", &admin).await?, 200);
        assert_eq!(
            strings(&list, "name"),
            ["Atendimento", "Comercial", "Financeiro"]
        );
        expect_status!(
            server
                .patch(&sales_path, &admin, json!({"name": "Atendimento"}))
                .await?,
            409
        );
        let finance_path = format!("/api/v1/queues/{}", id(&finance));
        let patched = expect_status!(
            server
                .patch(&finance_path, &admin, json!({"business_hours": null}))
                .await?,
            200
        );
        assert_eq!(patched["business_hours"], Value::Null);
        assert_eq!(patched["greeting"], "Olá! Em que posso ajudar?");

        // Deleting a queue takes it out of users and connections that named it.
        let (agent, _) = person(&server, &admin, "member@default.test", "user").await?;
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/users/{agent}"),
                    &admin,
                    json!({"queue_ids": [id(&sales), id(&service)]})
                )
                .await?,
            200
        );
        let connection = create(
            &server,
            &admin,
            "/api/v1/connections",
            json!({"kind": "webchat", "name": "Site", "default_queue_id": id(&sales)}),
        )
        .await?;
        expect_status!(server.delete(&sales_path, &admin).await?, 204);
        expect_status!(server.get(&sales_path, &admin).await?, 404);
        expect_status!(server.delete(&sales_path, &admin).await?, 404);
        expect_status!(
            server
                .patch(&sales_path, &admin, json!({"name": "Volta"}))
                .await?,
            404
        );
        let user = expect_status!(
            server
                .get(&format!("/api/v1/users/{agent}"), &admin)
                .await?,
            200
        );
        assert_eq!(user["queue_ids"], json!([id(&service)]));
        let connection = expect_status!(
            server
                .get(&format!("/api/v1/connections/{connection}"), &admin)
                .await?,
            200
        );
        assert_eq!(connection["default_queue_id"], Value::Null);
        let list = expect_status!(server.get("/api/v1/queues", &admin).await?, 200);
        assert_eq!(strings(&list, "name"), ["Atendimento", "Financeiro"]);
        server.stop().await?;
    }
    Ok(())
}

// ---- contacts ----

#[tokio::test]
async fn contact_phone_is_normalised_to_e164_and_searchable_by_digits() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let paulo = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Paulo", "phone": "(11) 98765-4321", "email": " Paulo@Example.COM "})
                )
                .await?,
            201
        );
        assert_eq!(paulo["phone"], "+5511987654321", "{}", server.backend);
        assert_eq!(paulo["email"], "paulo@example.com");
        assert_eq!(paulo["name_source"], "manual");
        assert_eq!(paulo["blocked"], false);
        assert_eq!(paulo["custom_fields"], json!({}));
        let rita = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Rita", "phone": "+55 21 3333-4444"})
                )
                .await?,
            201
        );
        assert_eq!(rita["phone"], "+552133334444");
        let london = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Oliver", "phone": "0044 20 7946 0958"})
                )
                .await?,
            201
        );
        assert_eq!(london["phone"], "+442079460958");
        // A WhatsApp identity's phone is normalised too, and found by its digits.
        let no_phone = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Sem Telefone", "identities": [{"channel": "whatsapp_cloud", "external_id": "11 99999-0000"}]})
                )
                .await?,
            201
        );
        assert_eq!(no_phone["phone"], Value::Null);
        assert_eq!(no_phone["identities"][0]["external_id"], "+5511999990000");

        let search = |q: &str| format!("/api/v1/contacts?search={q}");
        for (query, expected) in [
            ("98765", vec![id(&paulo)]),
            ("98765-4321", vec![id(&paulo)]),
            ("%2B5511987654321", vec![id(&paulo)]),
            ("33334444", vec![id(&rita)]),
            ("2079460958", vec![id(&london)]),
            ("999990000", vec![id(&no_phone)]),
            ("55", vec![id(&paulo), id(&rita), id(&no_phone)]),
            ("12121212", vec![]),
        ] {
            let page = expect_status!(server.get(&search(query), &admin).await?, 200);
            assert_eq!(
                ids(&page["contacts"]),
                expected,
                "{} search={query}",
                server.backend
            );
        }
        let page = expect_status!(server.get(&search("paulo%40example"), &admin).await?, 200);
        assert_eq!(ids(&page["contacts"]), vec![id(&paulo)]);

        let path = format!("/api/v1/contacts/{}", id(&rita));
        let patched = expect_status!(
            server
                .patch(&path, &admin, json!({"phone": "011 91234-5678"}))
                .await?,
            200
        );
        assert_eq!(patched["phone"], "+5511912345678");
        let body = expect_status!(
            server
                .patch(&path, &admin, json!({"phone": "call me"}))
                .await?,
            422
        );
        assert_eq!(error_field(&body), "phone");
        let body = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Curto", "phone": "123"})
                )
                .await?,
            422
        );
        assert_eq!(error_field(&body), "phone");
        let body = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Zap", "identities": [{"channel": "evolution", "external_id": "not a phone"}]})
                )
                .await?,
            422
        );
        assert_eq!(error_field(&body), "identities[0].external_id");
        let cleared = expect_status!(
            server.patch(&path, &admin, json!({"phone": null})).await?,
            200
        );
        assert_eq!(cleared["phone"], Value::Null);
        let page = expect_status!(server.get(&search("33334444"), &admin).await?, 200);
        assert_eq!(ids(&page["contacts"]), Vec::<i64>::new());
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn contact_search_matches_name_substrings_case_insensitively() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let mut made = Vec::new();
        for name in [
            "Maria Souza",
            "Ana MARIA Lima",
            "Marianne Costa",
            "José Pereira",
            "100% Cliente",
        ] {
            made.push(create(&server, &admin, "/api/v1/contacts", json!({"name": name})).await?);
        }
        let [souza, ana, marianne, jose, percent] = made[..] else {
            anyhow::bail!("five contacts expected");
        };
        for (query, expected) in [
            ("maria", vec![souza, ana, marianne]),
            ("MARIA", vec![souza, ana, marianne]),
            ("lima", vec![ana]),
            ("jos%C3%A9", vec![jose]),
            ("JOS%C3%89", vec![jose]),
            ("JOS%C3%89%20P", vec![jose]),
            ("pereira", vec![jose]),
            ("%25", vec![percent]),
            ("_", vec![]),
            ("nobody", vec![]),
        ] {
            let page = expect_status!(
                server
                    .get(&format!("/api/v1/contacts?search={query}"), &admin)
                    .await?,
                200
            );
            assert_eq!(
                ids(&page["contacts"]),
                expected,
                "{} search={query}",
                server.backend
            );
            assert_eq!(page["next_cursor"], Value::Null);
        }
        // An empty search is no filter.
        let page = expect_status!(server.get("/api/v1/contacts?search=", &admin).await?, 200);
        assert_eq!(ids(&page["contacts"]).len(), 5);
        server.stop().await?;
    }
    Ok(())
}

/// Search folds case and accents on every store ("joao" finds "JOÃO"), through the folded
/// `search_text` column written by the application.
#[tokio::test]
async fn contact_search_folds_case_and_accents_on_every_backend() -> anyhow::Result<()> {
    let mut failing = Vec::new();
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let joao = create(
            &server,
            &admin,
            "/api/v1/contacts",
            json!({"name": "JOÃO ÁVILA"}),
        )
        .await?;
        for query in ["jo%C3%A3o", "%C3%A1vila", "joao", "AVILA"] {
            let page = expect_status!(
                server
                    .get(&format!("/api/v1/contacts?search={query}"), &admin)
                    .await?,
                200
            );
            if ids(&page["contacts"]) != vec![joao] {
                failing.push(format!("{} search={query}", server.backend));
            }
        }
        server.stop().await?;
    }
    assert!(failing.is_empty(), "not found on: {failing:?}");
    Ok(())
}

#[tokio::test]
async fn contact_pages_follow_next_cursor_without_duplicates_or_gaps() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let mut all = Vec::new();
        for n in 1..=7 {
            let name = format!("Cliente {n}");
            all.push(create(&server, &admin, "/api/v1/contacts", json!({"name": name})).await?);
        }
        create(
            &server,
            &admin,
            "/api/v1/contacts",
            json!({"name": "Fornecedor"}),
        )
        .await?;

        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        let mut cursor: Option<i64> = None;
        for _ in 0..10 {
            let path = match cursor {
                None => "/api/v1/contacts?search=cliente&limit=3".to_owned(),
                Some(after) => format!("/api/v1/contacts?search=cliente&limit=3&after={after}"),
            };
            let page = expect_status!(server.get(&path, &admin).await?, 200);
            let page_ids = ids(&page["contacts"]);
            sizes.push(page_ids.len());
            seen.extend(page_ids.iter().copied());
            match page["next_cursor"].as_i64() {
                Some(next) => {
                    assert_eq!(Some(&next), page_ids.last(), "cursor is the page's last id");
                    cursor = Some(next);
                }
                None => break,
            }
        }
        assert_eq!(sizes, [3, 3, 1], "{}", server.backend);
        assert_eq!(seen, all, "every contact once, in id order");

        // Without a search the extra contact is the eighth and a page of 4 ends exactly.
        let first = expect_status!(server.get("/api/v1/contacts?limit=4", &admin).await?, 200);
        let second = expect_status!(
            server
                .get(
                    &format!(
                        "/api/v1/contacts?limit=4&after={}",
                        first["next_cursor"].as_i64().unwrap_or_default()
                    ),
                    &admin
                )
                .await?,
            200
        );
        let mut everyone = ids(&first["contacts"]);
        everyone.extend(ids(&second["contacts"]));
        assert_eq!(everyone.len(), 8);
        let mut unique = everyone.clone();
        unique.dedup();
        assert_eq!(unique, everyone);
        let rest = expect_status!(
            server
                .get(
                    &format!(
                        "/api/v1/contacts?limit=4&after={}",
                        second["next_cursor"].as_i64().unwrap_or_default()
                    ),
                    &admin
                )
                .await?,
            200
        );
        assert_eq!(rest["contacts"], json!([]));
        assert_eq!(rest["next_cursor"], Value::Null);
        // limit is clamped to 1..=200.
        let one = expect_status!(server.get("/api/v1/contacts?limit=0", &admin).await?, 200);
        assert_eq!(ids(&one["contacts"]), vec![all[0]]);
        let big = expect_status!(
            server.get("/api/v1/contacts?limit=5000", &admin).await?,
            200
        );
        assert_eq!(ids(&big["contacts"]).len(), 8);
        assert_eq!(big["next_cursor"], Value::Null);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn contact_identities_wallet_order_and_tags_round_trip() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let (first, _) = person(&server, &admin, "first@default.test", "user").await?;
        let (second, _) = person(&server, &admin, "second@default.test", "user").await?;
        let (third, _) = person(&server, &admin, "third@default.test", "user").await?;
        let vip = create(
            &server,
            &admin,
            "/api/v1/tags",
            json!({"name": "VIP", "color": "#f00"}),
        )
        .await?;
        let late = create(&server, &admin, "/api/v1/tags", json!({"name": "Atrasado"})).await?;

        let contact = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Loja Central",
                           "identities": [
                               {"channel": "whatsapp_cloud", "external_id": "+55 11 98765-4321"},
                               {"channel": "telegram", "external_id": " 123456789 "},
                               {"channel": "webchat", "external_id": "visitor-abc"},
                               {"channel": "whatsapp_cloud", "external_id": "(11) 98765-4321"}
                           ],
                           "wallet_user_ids": [third, first, third],
                           "tag_ids": [late, vip]})
                )
                .await?,
            201
        );
        let pairs: Vec<(String, String)> = contact["identities"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|i| {
                        (
                            i["channel"].as_str().unwrap_or_default().to_owned(),
                            i["external_id"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            pairs,
            [
                ("whatsapp_cloud".to_owned(), "+5511987654321".to_owned()),
                ("telegram".to_owned(), "123456789".to_owned()),
                ("webchat".to_owned(), "visitor-abc".to_owned()),
            ],
            "{}",
            server.backend
        );
        assert!(
            contact["identities"]
                .as_array()
                .is_some_and(|l| l.iter().all(|i| i["contact_id"] == contact["id"]))
        );
        assert_eq!(contact["wallet_user_ids"], json!([third, first]));
        assert_eq!(
            sorted(serde_json::from_value(contact["tag_ids"].clone())?),
            sorted(vec![vip, late])
        );
        let path = format!("/api/v1/contacts/{}", id(&contact));
        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown, contact);

        // One identity belongs to one contact.
        let body = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Copia", "identities": [{"channel": "telegram", "external_id": "123456789"}]})
                )
                .await?,
            409
        );
        assert_eq!(body["error"]["code"], "conflict");

        let body = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Sem canal", "identities": [{"external_id": "42"}]})
                )
                .await?,
            422
        );
        assert_eq!(error_field(&body), "identities[0].channel", "{body}");

        // Lists replace: the kept identity keeps its id, the wallet takes the new order.
        let telegram_id = contact["identities"][1]["id"].clone();
        let patched = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"identities": [{"channel": "instagram", "external_id": "ig-777"}, {"channel": "telegram", "external_id": "123456789"}],
                           "wallet_user_ids": [second, third, first],
                           "tag_ids": [vip]})
                )
                .await?,
            200
        );
        assert_eq!(patched["wallet_user_ids"], json!([second, third, first]));
        assert_eq!(patched["tag_ids"], json!([vip]));
        let identities = patched["identities"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(identities.len(), 2, "{patched}");
        assert!(
            identities
                .iter()
                .any(|i| i["id"] == telegram_id && i["external_id"] == "123456789")
        );
        assert!(
            identities
                .iter()
                .any(|i| i["channel"] == "instagram" && i["external_id"] == "ig-777")
        );
        // The dropped identity is free for another contact now.
        let other = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Visitante", "identities": [{"channel": "webchat", "external_id": "visitor-abc"}]})
                )
                .await?,
            201
        );
        assert_eq!(other["identities"][0]["external_id"], "visitor-abc");

        // Name only: lists stay as they were.
        let renamed = expect_status!(
            server
                .patch(&path, &admin, json!({"name": "Loja Nova"}))
                .await?,
            200
        );
        assert_eq!(renamed["name"], "Loja Nova");
        assert_eq!(renamed["wallet_user_ids"], json!([second, third, first]));
        assert_eq!(renamed["identities"].as_array().map(Vec::len), Some(2));
        let cleared = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"wallet_user_ids": [], "tag_ids": [], "identities": []})
                )
                .await?,
            200
        );
        assert_eq!(cleared["wallet_user_ids"], json!([]));
        assert_eq!(cleared["tag_ids"], json!([]));
        assert_eq!(cleared["identities"], json!([]));

        for (patch, field) in [
            (json!({"wallet_user_ids": [987_654]}), "wallet_user_ids"),
            (json!({"tag_ids": [987_654]}), "tag_ids"),
        ] {
            let body = expect_status!(server.patch(&path, &admin, patch).await?, 404);
            assert_eq!(error_field(&body), field);
        }
        // A wallet owner who is deleted leaves the wallet.
        expect_status!(
            server
                .patch(&path, &admin, json!({"wallet_user_ids": [third, first]}))
                .await?,
            200
        );
        expect_status!(
            server
                .delete(&format!("/api/v1/users/{third}"), &admin)
                .await?,
            204
        );
        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown["wallet_user_ids"], json!([first]));

        expect_status!(server.delete(&path, &admin).await?, 204);
        expect_status!(server.get(&path, &admin).await?, 404);
        expect_status!(server.delete(&path, &admin).await?, 404);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn contact_custom_fields_must_be_an_object_of_scalars() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let fields = json!({"cpf": "123.456.789-00", "idade": 42, "vip": true});
        let contact = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Com Campos", "custom_fields": fields})
                )
                .await?,
            201
        );
        assert_eq!(contact["custom_fields"], fields, "{}", server.backend);
        let path = format!("/api/v1/contacts/{}", id(&contact));
        assert_eq!(
            expect_status!(server.get(&path, &admin).await?, 200)["custom_fields"],
            fields
        );

        for (value, field) in [
            (json!("cpf=123"), "custom_fields"),
            (json!([1, 2]), "custom_fields"),
            (json!(7), "custom_fields"),
            (
                json!({"endereco": {"cidade": "SP"}}),
                "custom_fields.endereco",
            ),
            (json!({"lista": [1]}), "custom_fields.lista"),
        ] {
            let body = expect_status!(
                server
                    .post(
                        "/api/v1/contacts",
                        &admin,
                        json!({"name": "Errado", "custom_fields": value.clone()})
                    )
                    .await?,
                422
            );
            assert_eq!(error_field(&body), field, "{body}");
            let body = expect_status!(
                server
                    .patch(&path, &admin, json!({"custom_fields": value}))
                    .await?,
                422
            );
            assert_eq!(error_field(&body), field, "{body}");
        }
        assert_eq!(
            expect_status!(server.get(&path, &admin).await?, 200)["custom_fields"],
            fields
        );

        let replaced = expect_status!(
            server
                .patch(&path, &admin, json!({"custom_fields": {"plano": "ouro"}}))
                .await?,
            200
        );
        assert_eq!(replaced["custom_fields"], json!({"plano": "ouro"}));
        let cleared = expect_status!(
            server
                .patch(&path, &admin, json!({"custom_fields": null}))
                .await?,
            200
        );
        assert_eq!(cleared["custom_fields"], json!({}));
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn merging_contacts_moves_identities_wallet_and_tags_and_removes_the_duplicate()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let (ana, _) = person(&server, &admin, "ana@default.test", "user").await?;
        let (bia, _) = person(&server, &admin, "bia@default.test", "user").await?;
        let vip = create(&server, &admin, "/api/v1/tags", json!({"name": "VIP"})).await?;
        let new_client = create(&server, &admin, "/api/v1/tags", json!({"name": "Novo"})).await?;

        let keep = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Carlos", "identities": [{"channel": "webchat", "external_id": "visitor-1"}],
                           "wallet_user_ids": [ana], "tag_ids": [vip], "custom_fields": {"cpf": "111"}})
                )
                .await?,
            201
        );
        let absorb = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Carlos (WhatsApp)", "phone": "(11) 98888-7777", "email": "carlos@example.com",
                           "identities": [{"channel": "whatsapp_cloud", "external_id": "11988887777"},
                                          {"channel": "telegram", "external_id": "555"}],
                           "wallet_user_ids": [bia, ana], "tag_ids": [new_client, vip],
                           "custom_fields": {"cpf": "222", "plano": "ouro"}})
                )
                .await?,
            201
        );
        let keep_path = format!("/api/v1/contacts/{}", id(&keep));
        let absorb_path = format!("/api/v1/contacts/{}", id(&absorb));

        let body = expect_status!(
            server
                .post(
                    &format!("{keep_path}/merge"),
                    &admin,
                    json!({"absorb_id": id(&keep)})
                )
                .await?,
            422
        );
        assert_eq!(error_field(&body), "absorb_id");
        expect_status!(
            server
                .post(
                    &format!("{keep_path}/merge"),
                    &admin,
                    json!({"absorb_id": 987_654})
                )
                .await?,
            404
        );

        let merged = expect_status!(
            server
                .post(
                    &format!("{keep_path}/merge"),
                    &admin,
                    json!({"absorb_id": id(&absorb)})
                )
                .await?,
            200
        );
        assert_eq!(merged["id"], keep["id"], "{}", server.backend);
        assert_eq!(merged["name"], "Carlos");
        let mut external: Vec<String> = merged["identities"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|i| i["external_id"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        external.sort();
        assert_eq!(external, ["+5511988887777", "555", "visitor-1"]);
        assert!(
            merged["identities"]
                .as_array()
                .is_some_and(|l| l.iter().all(|i| i["contact_id"] == keep["id"]))
        );
        assert_eq!(merged["wallet_user_ids"], json!([ana, bia]));
        assert_eq!(
            sorted(serde_json::from_value(merged["tag_ids"].clone())?),
            sorted(vec![vip, new_client])
        );
        // What the kept contact lacked is filled in from the duplicate; its own values stay.
        assert_eq!(merged["phone"], "+5511988887777");
        assert_eq!(merged["email"], "carlos@example.com");
        assert_eq!(
            merged["custom_fields"],
            json!({"cpf": "111", "plano": "ouro"})
        );
        assert_eq!(
            expect_status!(server.get(&keep_path, &admin).await?, 200),
            merged
        );

        let body = expect_status!(server.get(&absorb_path, &admin).await?, 404);
        assert_eq!(body["error"]["code"], "not_found");
        let page = expect_status!(
            server.get("/api/v1/contacts?search=carlos", &admin).await?,
            200
        );
        assert_eq!(ids(&page["contacts"]), vec![id(&keep)]);
        // The moved identity is found through the kept contact.
        let page = expect_status!(
            server.get("/api/v1/contacts?search=555", &admin).await?,
            200
        );
        assert_eq!(ids(&page["contacts"]), vec![id(&keep)]);
        expect_status!(
            server
                .post(
                    &format!("{keep_path}/merge"),
                    &admin,
                    json!({"absorb_id": id(&absorb)})
                )
                .await?,
            404
        );
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn contacts_are_filtered_by_blocked_flag_and_tag() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let spam = create(&server, &admin, "/api/v1/tags", json!({"name": "Spam"})).await?;
        let open = create(
            &server,
            &admin,
            "/api/v1/contacts",
            json!({"name": "Aberto"}),
        )
        .await?;
        let blocked = expect_status!(
            server
                .post(
                    "/api/v1/contacts",
                    &admin,
                    json!({"name": "Bloqueado", "blocked": true, "tag_ids": [spam]})
                )
                .await?,
            201
        );
        assert_eq!(blocked["blocked"], true, "{}", server.backend);
        let later = create(
            &server,
            &admin,
            "/api/v1/contacts",
            json!({"name": "Depois"}),
        )
        .await?;

        let only_blocked = expect_status!(
            server.get("/api/v1/contacts?blocked=true", &admin).await?,
            200
        );
        assert_eq!(ids(&only_blocked["contacts"]), vec![id(&blocked)]);
        let not_blocked = expect_status!(
            server.get("/api/v1/contacts?blocked=false", &admin).await?,
            200
        );
        assert_eq!(ids(&not_blocked["contacts"]), vec![open, later]);
        let everyone = expect_status!(server.get("/api/v1/contacts?blocked=", &admin).await?, 200);
        assert_eq!(ids(&everyone["contacts"]).len(), 3);
        let tagged = expect_status!(
            server
                .get(&format!("/api/v1/contacts?tag_id={spam}"), &admin)
                .await?,
            200
        );
        assert_eq!(ids(&tagged["contacts"]), vec![id(&blocked)]);
        let body = expect_status!(
            server.get("/api/v1/contacts?blocked=maybe", &admin).await?,
            400
        );
        assert_eq!(body["error"]["code"], "bad_request");

        // Unblocking and blocking move contacts between the two lists.
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/contacts/{}", id(&blocked)),
                    &admin,
                    json!({"blocked": false})
                )
                .await?,
            200
        );
        expect_status!(
            server
                .patch(
                    &format!("/api/v1/contacts/{later}"),
                    &admin,
                    json!({"blocked": true})
                )
                .await?,
            200
        );
        let only_blocked = expect_status!(
            server
                .get("/api/v1/contacts?blocked=true&search=depois", &admin)
                .await?,
            200
        );
        assert_eq!(ids(&only_blocked["contacts"]), vec![later]);
        let not_blocked = expect_status!(
            server.get("/api/v1/contacts?blocked=false", &admin).await?,
            200
        );
        assert_eq!(ids(&not_blocked["contacts"]), vec![open, id(&blocked)]);
        server.stop().await?;
    }
    Ok(())
}

// ---- connections ----

#[tokio::test]
async fn webchat_connection_gets_a_public_key_and_other_kinds_none() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let site = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &admin,
                    json!({"kind": "webchat", "name": "Site"})
                )
                .await?,
            201
        );
        let key = site["public_key"].as_str().unwrap_or_default().to_owned();
        assert!(key.starts_with("wc_") && key.len() == 35, "{site}");
        assert_eq!(site["key"], site["public_key"]);
        assert_eq!(site["kind"], "webchat");
        assert_eq!(
            site["status"], "connected",
            "the web chat is served by us: up from the start"
        );
        assert_eq!(site["has_credentials"], false);
        assert_eq!(site["default_queue_id"], Value::Null);
        assert_eq!(site["cadence_enabled"], Value::Null);

        let blog = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &admin,
                    json!({"kind": "webchat", "name": "Blog"})
                )
                .await?,
            201
        );
        assert_ne!(blog["key"], site["key"], "{}", server.backend);
        let bot = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &admin,
                    json!({"kind": "telegram", "name": "Bot", "cadence_enabled": false})
                )
                .await?,
            201
        );
        assert_eq!(bot["public_key"], Value::Null);
        assert!(bot.get("key").is_none());
        assert_eq!(bot["cadence_enabled"], false);

        let shown = expect_status!(
            server
                .get(&format!("/api/v1/connections/{}", id(&site)), &admin)
                .await?,
            200
        );
        assert_eq!(shown, site);
        // Renaming keeps the key; the kind cannot change.
        let path = format!("/api/v1/connections/{}", id(&site));
        let renamed = expect_status!(
            server
                .patch(&path, &admin, json!({"name": "Site novo"}))
                .await?,
            200
        );
        assert_eq!(renamed["key"], site["key"]);
        let body = expect_status!(
            server
                .patch(&path, &admin, json!({"kind": "telegram"}))
                .await?,
            422
        );
        assert_eq!(error_field(&body), "kind");
        let list = expect_status!(server.get("/api/v1/connections", &admin).await?, 200);
        assert_eq!(strings(&list, "name"), ["Blog", "Bot", "Site novo"]);
        for (input, field) in [
            (json!({"kind": "fax", "name": "X"}), "kind"),
            (json!({"kind": "webchat", "name": " "}), "name"),
        ] {
            let body = expect_status!(
                server.post("/api/v1/connections", &admin, input).await?,
                422
            );
            assert_eq!(error_field(&body), field, "{body}");
        }
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn connection_credentials_are_accepted_and_never_returned() -> anyhow::Result<()> {
    const SECRET: &str = "7355608:AAF-very-secret-bot-token";
    const APP_SECRET: &str = "meta-app-secret-9f8e7d";
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let bot = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &admin,
                    json!({"kind": "telegram", "name": "Bot", "credentials": {"bot_token": SECRET}})
                )
                .await?,
            201
        );
        assert_eq!(bot["has_credentials"], true, "{}", server.backend);
        assert!(bot.get("credentials").is_none());
        let path = format!("/api/v1/connections/{}", id(&bot));
        let cloud = create(
            &server,
            &admin,
            "/api/v1/connections",
            json!({"kind": "whatsapp_cloud", "name": "Oficial"}),
        )
        .await?;
        let cloud_path = format!("/api/v1/connections/{cloud}");
        let patched = expect_status!(
            server
                .patch(
                    &cloud_path,
                    &admin,
                    json!({"credentials": {"access_token": "EAAG-token", "app_secret": APP_SECRET}})
                )
                .await?,
            200
        );
        assert_eq!(patched["has_credentials"], true);

        let (_, agent) = person(&server, &admin, "reader@default.test", "user").await?;
        for token in [&admin, &agent] {
            let shown = expect_status!(server.get(&path, token).await?, 200);
            let list = expect_status!(server.get("/api/v1/connections", token).await?, 200);
            let cloud_shown = expect_status!(server.get(&cloud_path, token).await?, 200);
            for text in [shown.to_string(), list.to_string(), cloud_shown.to_string()] {
                for secret in [SECRET, APP_SECRET, "bot_token", "access_token", "EAAG"] {
                    assert!(!text.contains(secret), "{secret} leaked in {text}");
                }
            }
            assert_eq!(shown["has_credentials"], true);
        }

        // Other edits keep the credentials; null removes them; they must be an object.
        let renamed = expect_status!(
            server
                .patch(&path, &admin, json!({"name": "Bot de vendas"}))
                .await?,
            200
        );
        assert_eq!(renamed["has_credentials"], true);
        let body = expect_status!(
            server
                .patch(&path, &admin, json!({"credentials": SECRET}))
                .await?,
            422
        );
        assert_eq!(error_field(&body), "credentials");
        assert!(!body.to_string().contains(SECRET));
        let body = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &admin,
                    json!({"kind": "telegram", "name": "X", "credentials": ["a"]})
                )
                .await?,
            422
        );
        assert_eq!(error_field(&body), "credentials");
        let removed = expect_status!(
            server
                .patch(&path, &admin, json!({"credentials": null}))
                .await?,
            200
        );
        assert_eq!(removed["has_credentials"], false);
        assert_eq!(
            expect_status!(server.get(&path, &admin).await?, 200)["has_credentials"],
            false
        );
        // Agents read connections but do not change them.
        expect_status!(
            server
                .patch(&path, &agent, json!({"credentials": {"bot_token": "x"}}))
                .await?,
            403
        );
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn connection_send_delays_stay_within_bounds_with_min_at_most_max() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let body = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &admin,
                    json!({"kind": "evolution", "name": "Zap", "send_delay_min_ms": 5000, "send_delay_max_ms": 2000})
                )
                .await?,
            422
        );
        assert_eq!(
            error_field(&body),
            "send_delay_max_ms",
            "{}",
            server.backend
        );
        for (input, field) in [
            (json!({"send_delay_min_ms": -1}), "send_delay_min_ms"),
            (json!({"send_delay_max_ms": 60_001}), "send_delay_max_ms"),
        ] {
            let mut full = json!({"kind": "evolution", "name": "Zap"});
            if let (Some(full), Some(extra)) = (full.as_object_mut(), input.as_object()) {
                full.extend(extra.clone());
            }
            let body = expect_status!(server.post("/api/v1/connections", &admin, full).await?, 422);
            assert_eq!(error_field(&body), field);
        }

        let zap = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &admin,
                    json!({"kind": "evolution", "name": "Zap", "send_delay_min_ms": 1000, "send_delay_max_ms": 3000, "cadence_enabled": true})
                )
                .await?,
            201
        );
        assert_eq!(zap["send_delay_min_ms"], 1000);
        assert_eq!(zap["send_delay_max_ms"], 3000);
        assert_eq!(zap["cadence_enabled"], true);
        let path = format!("/api/v1/connections/{}", id(&zap));

        // A change is judged against the stored other half, naming the field that was changed.
        let body = expect_status!(
            server
                .patch(&path, &admin, json!({"send_delay_min_ms": 4000}))
                .await?,
            422
        );
        assert_eq!(error_field(&body), "send_delay_min_ms");
        let body = expect_status!(
            server
                .patch(&path, &admin, json!({"send_delay_max_ms": 500}))
                .await?,
            422
        );
        assert_eq!(error_field(&body), "send_delay_max_ms");
        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown["send_delay_min_ms"], 1000);
        assert_eq!(shown["send_delay_max_ms"], 3000);

        let equal = expect_status!(
            server
                .patch(&path, &admin, json!({"send_delay_min_ms": 3000}))
                .await?,
            200
        );
        assert_eq!(equal["send_delay_min_ms"], 3000);
        let both = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"send_delay_min_ms": 0, "send_delay_max_ms": 60_000})
                )
                .await?,
            200
        );
        assert_eq!(both["send_delay_min_ms"], 0);
        assert_eq!(both["send_delay_max_ms"], 60_000);
        let cleared = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"send_delay_min_ms": null, "send_delay_max_ms": null, "cadence_enabled": null})
                )
                .await?,
            200
        );
        assert_eq!(cleared["send_delay_min_ms"], Value::Null);
        assert_eq!(cleared["send_delay_max_ms"], Value::Null);
        assert_eq!(cleared["cadence_enabled"], Value::Null);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn connection_default_queue_and_flow_are_set_cleared_and_the_connection_deleted()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let queue = create(
            &server,
            &admin,
            "/api/v1/queues",
            json!({"name": "Suporte"}),
        )
        .await?;
        let flow = create(&server, &admin, "/api/v1/flows", json!({"name": "Menu"})).await?;
        let other_flow = create(
            &server,
            &admin,
            "/api/v1/flows",
            json!({"name": "Pesquisa"}),
        )
        .await?;
        let site = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &admin,
                    json!({"kind": "webchat", "name": "Site", "default_queue_id": queue, "default_flow_id": flow})
                )
                .await?,
            201
        );
        assert_eq!(site["default_queue_id"], queue, "{}", server.backend);
        assert_eq!(site["default_flow_id"], flow);
        let path = format!("/api/v1/connections/{}", id(&site));

        let cleared = expect_status!(
            server
                .patch(&path, &admin, json!({"default_queue_id": null}))
                .await?,
            200
        );
        assert_eq!(cleared["default_queue_id"], Value::Null);
        assert_eq!(cleared["default_flow_id"], flow, "absent fields stay");
        let set = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"default_queue_id": queue, "default_flow_id": other_flow})
                )
                .await?,
            200
        );
        assert_eq!(set["default_queue_id"], queue);
        assert_eq!(set["default_flow_id"], other_flow);
        for (patch, field) in [
            (json!({"default_queue_id": 987_654}), "default_queue_id"),
            (json!({"default_flow_id": 987_654}), "default_flow_id"),
        ] {
            let body = expect_status!(server.patch(&path, &admin, patch).await?, 404);
            assert_eq!(error_field(&body), field);
        }
        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown["default_queue_id"], queue);
        assert_eq!(shown["default_flow_id"], other_flow);

        // A deleted flow is no connection's default any more.
        expect_status!(
            server
                .delete(&format!("/api/v1/flows/{other_flow}"), &admin)
                .await?,
            204
        );
        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown["default_flow_id"], Value::Null);
        assert_eq!(shown["default_queue_id"], queue);

        expect_status!(server.delete(&path, &admin).await?, 204);
        expect_status!(server.get(&path, &admin).await?, 404);
        expect_status!(server.delete(&path, &admin).await?, 404);
        expect_status!(
            server
                .patch(&path, &admin, json!({"name": "Volta"}))
                .await?,
            404
        );
        let list = expect_status!(server.get("/api/v1/connections", &admin).await?, 200);
        assert_eq!(list, json!([]));
        // The queue and flow it named are still there.
        expect_status!(
            server
                .get(&format!("/api/v1/queues/{queue}"), &admin)
                .await?,
            200
        );
        expect_status!(
            server.get(&format!("/api/v1/flows/{flow}"), &admin).await?,
            200
        );
        server.stop().await?;
    }
    Ok(())
}

// ---- demands and tags ----

#[tokio::test]
async fn demands_are_created_listed_patched_and_deleted_with_unique_names() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let (_, supervisor) = person(&server, &admin, "sup@default.test", "supervisor").await?;
        let (_, agent) = person(&server, &admin, "agent@default.test", "user").await?;
        let question = expect_status!(
            server
                .post("/api/v1/demands", &admin, json!({"name": " Dúvida "}))
                .await?,
            201
        );
        assert_eq!(question["name"], "Dúvida", "{}", server.backend);
        assert_eq!(question["active"], true, "active by default");
        let complaint = expect_status!(
            server
                .post(
                    "/api/v1/demands",
                    &supervisor,
                    json!({"name": "Reclamação", "active": false})
                )
                .await?,
            201
        );
        assert_eq!(complaint["active"], false);
        create(
            &server,
            &admin,
            "/api/v1/demands",
            json!({"name": "Compra"}),
        )
        .await?;

        let body = expect_status!(
            server
                .post("/api/v1/demands", &admin, json!({"name": "Dúvida"}))
                .await?,
            409
        );
        assert_eq!(body["error"]["code"], "conflict");
        let body = expect_status!(
            server
                .post("/api/v1/demands", &admin, json!({"name": ""}))
                .await?,
            422
        );
        assert_eq!(error_field(&body), "name");

        // Everyone reads them (agents pick one when closing).
        let list = expect_status!(server.get("/api/v1/demands", &agent).await?, 200);
        assert_eq!(strings(&list, "name"), ["Compra", "Dúvida", "Reclamação"]);

        let path = format!("/api/v1/demands/{}", id(&question));
        let patched = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"name": "Dúvida geral", "active": false})
                )
                .await?,
            200
        );
        assert_eq!(patched["name"], "Dúvida geral");
        assert_eq!(patched["active"], false);
        assert_eq!(
            expect_status!(server.get(&path, &agent).await?, 200),
            patched
        );
        expect_status!(
            server
                .patch(&path, &admin, json!({"name": "Reclamação"}))
                .await?,
            409
        );
        expect_status!(
            server.patch(&path, &agent, json!({"active": true})).await?,
            403
        );

        expect_status!(server.delete(&path, &supervisor).await?, 204);
        expect_status!(server.get(&path, &admin).await?, 404);
        expect_status!(server.delete(&path, &admin).await?, 404);
        // The name is free again.
        create(
            &server,
            &admin,
            "/api/v1/demands",
            json!({"name": "Dúvida geral"}),
        )
        .await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn tags_are_created_listed_patched_and_deleted_with_unique_names() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let vip = expect_status!(
            server
                .post(
                    "/api/v1/tags",
                    &admin,
                    json!({"name": "VIP", "color": "#F00"})
                )
                .await?,
            201
        );
        assert_eq!(vip["color"], "#ff0000", "{}", server.backend);
        let late = expect_status!(
            server
                .post("/api/v1/tags", &admin, json!({"name": "Atrasado"}))
                .await?,
            201
        );
        assert_eq!(late["color"], "#5b6cff");
        let body = expect_status!(
            server
                .post("/api/v1/tags", &admin, json!({"name": "VIP"}))
                .await?,
            409
        );
        assert_eq!(body["error"]["code"], "conflict");
        let body = expect_status!(
            server
                .post(
                    "/api/v1/tags",
                    &admin,
                    json!({"name": "Cor", "color": "vermelho"})
                )
                .await?,
            422
        );
        assert_eq!(error_field(&body), "color");

        let list = expect_status!(server.get("/api/v1/tags", &admin).await?, 200);
        assert_eq!(strings(&list, "name"), ["Atrasado", "VIP"]);

        let path = format!("/api/v1/tags/{}", id(&vip));
        let patched = expect_status!(
            server
                .patch(
                    &path,
                    &admin,
                    json!({"name": "Cliente VIP", "color": "#00AA00"})
                )
                .await?,
            200
        );
        assert_eq!(patched["name"], "Cliente VIP");
        assert_eq!(patched["color"], "#00aa00");
        assert_eq!(
            expect_status!(server.get(&path, &admin).await?, 200),
            patched
        );
        expect_status!(
            server
                .patch(&path, &admin, json!({"name": "Atrasado"}))
                .await?,
            409
        );

        // A deleted tag leaves every contact that had it.
        let contact = create(
            &server,
            &admin,
            "/api/v1/contacts",
            json!({"name": "Marcado", "tag_ids": [id(&vip), id(&late)]}),
        )
        .await?;
        expect_status!(server.delete(&path, &admin).await?, 204);
        expect_status!(server.get(&path, &admin).await?, 404);
        expect_status!(server.delete(&path, &admin).await?, 404);
        let shown = expect_status!(
            server
                .get(&format!("/api/v1/contacts/{contact}"), &admin)
                .await?,
            200
        );
        assert_eq!(shown["tag_ids"], json!([id(&late)]));
        let list = expect_status!(server.get("/api/v1/tags", &admin).await?, 200);
        assert_eq!(ids(&list), vec![id(&late)]);
        server.stop().await?;
    }
    Ok(())
}

// ---- quick replies ----

#[tokio::test]
async fn quick_reply_shortcuts_are_single_words_stored_without_the_slash() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let admin_id = me(&server, &admin).await?;
        let greeting = expect_status!(
            server
                .post(
                    "/api/v1/quick-replies",
                    &admin,
                    json!({"shortcut": "/saudacao", "body": "  Olá! Como posso ajudar?  "})
                )
                .await?,
            201
        );
        assert_eq!(greeting["shortcut"], "saudacao", "{}", server.backend);
        assert_eq!(greeting["body"], "Olá! Como posso ajudar?");
        assert_eq!(greeting["user_id"], admin_id, "personal unless global");

        for shortcut in ["saudacao", "/saudacao", " saudacao "] {
            let body = expect_status!(
                server
                    .post(
                        "/api/v1/quick-replies",
                        &admin,
                        json!({"shortcut": shortcut, "body": "x", "global": true})
                    )
                    .await?,
                409
            );
            assert_eq!(body["error"]["code"], "conflict");
        }
        let too_long = "a".repeat(33);
        for shortcut in ["bom dia", "/", "", "oi!", "//oi", too_long.as_str()] {
            let body = expect_status!(
                server
                    .post(
                        "/api/v1/quick-replies",
                        &admin,
                        json!({"shortcut": shortcut, "body": "x"})
                    )
                    .await?,
                422
            );
            assert_eq!(error_field(&body), "shortcut", "{shortcut:?}: {body}");
        }
        let body = expect_status!(
            server
                .post(
                    "/api/v1/quick-replies",
                    &admin,
                    json!({"shortcut": "vazio", "body": "   "})
                )
                .await?,
            422
        );
        assert_eq!(error_field(&body), "body");
        let accented = expect_status!(
            server
                .post(
                    "/api/v1/quick-replies",
                    &admin,
                    json!({"shortcut": "atenção_2-b", "body": "Atenção!"})
                )
                .await?,
            201
        );
        assert_eq!(accented["shortcut"], "atenção_2-b");

        let path = format!("/api/v1/quick-replies/{}", id(&greeting));
        let body = expect_status!(
            server
                .patch(&path, &admin, json!({"shortcut": "bom dia"}))
                .await?,
            422
        );
        assert_eq!(error_field(&body), "shortcut");
        let patched = expect_status!(
            server
                .patch(&path, &admin, json!({"shortcut": "/ola", "body": "Oi!"}))
                .await?,
            200
        );
        assert_eq!(patched["shortcut"], "ola");
        assert_eq!(patched["body"], "Oi!");
        let list = expect_status!(server.get("/api/v1/quick-replies", &admin).await?, 200);
        assert_eq!(strings(&list, "shortcut"), ["atenção_2-b", "ola"]);

        expect_status!(server.delete(&path, &admin).await?, 204);
        expect_status!(server.get(&path, &admin).await?, 404);
        // The shortcut is free again.
        create(
            &server,
            &admin,
            "/api/v1/quick-replies",
            json!({"shortcut": "ola", "body": "De novo"}),
        )
        .await?;
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn personal_quick_replies_are_invisible_to_other_agents_and_managers_create_global_ones()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let (alice_id, alice) = person(&server, &admin, "alice@default.test", "user").await?;
        let (_, bruno) = person(&server, &admin, "bruno@default.test", "user").await?;
        let (_, supervisor) = person(&server, &admin, "chefe@default.test", "supervisor").await?;

        let hours = expect_status!(
            server
                .post(
                    "/api/v1/quick-replies",
                    &supervisor,
                    json!({"shortcut": "horario", "body": "Atendemos das 8h às 18h.", "global": true})
                )
                .await?,
            201
        );
        assert_eq!(hours["user_id"], Value::Null, "{}", server.backend);
        let signature = expect_status!(
            server
                .post(
                    "/api/v1/quick-replies",
                    &alice,
                    json!({"shortcut": "assinatura", "body": "Alice, suporte"})
                )
                .await?,
            201
        );
        assert_eq!(signature["user_id"], alice_id);
        let body = expect_status!(
            server
                .post(
                    "/api/v1/quick-replies",
                    &alice,
                    json!({"shortcut": "todos", "body": "x", "global": true})
                )
                .await?,
            403
        );
        assert_eq!(body["error"]["code"], "forbidden");

        let alice_list = expect_status!(server.get("/api/v1/quick-replies", &alice).await?, 200);
        assert_eq!(strings(&alice_list, "shortcut"), ["assinatura", "horario"]);
        let bruno_list = expect_status!(server.get("/api/v1/quick-replies", &bruno).await?, 200);
        assert_eq!(strings(&bruno_list, "shortcut"), ["horario"]);

        // For Bruno, Alice's reply does not exist.
        let path = format!("/api/v1/quick-replies/{}", id(&signature));
        let body = expect_status!(server.get(&path, &bruno).await?, 404);
        assert_eq!(body["error"]["code"], "not_found");
        expect_status!(
            server
                .patch(&path, &bruno, json!({"body": "Bruno esteve aqui"}))
                .await?,
            404
        );
        expect_status!(server.delete(&path, &bruno).await?, 404);
        let unchanged = expect_status!(server.get(&path, &alice).await?, 200);
        assert_eq!(unchanged["body"], "Alice, suporte");

        // Alice edits her own; she may not make it global nor edit the global one.
        let edited = expect_status!(
            server
                .patch(&path, &alice, json!({"body": "Alice Souza, suporte"}))
                .await?,
            200
        );
        assert_eq!(edited["body"], "Alice Souza, suporte");
        assert_eq!(edited["user_id"], alice_id);
        expect_status!(
            server.patch(&path, &alice, json!({"global": true})).await?,
            403
        );
        let hours_path = format!("/api/v1/quick-replies/{}", id(&hours));
        expect_status!(server.get(&hours_path, &bruno).await?, 200);
        expect_status!(
            server
                .patch(&hours_path, &bruno, json!({"body": "Sempre abertos"}))
                .await?,
            403
        );
        expect_status!(server.delete(&hours_path, &bruno).await?, 403);

        // Managers see any reply and change the global ones.
        expect_status!(server.get(&path, &supervisor).await?, 200);
        let changed = expect_status!(
            server
                .patch(
                    &hours_path,
                    &admin,
                    json!({"body": "Atendemos das 8h às 20h."})
                )
                .await?,
            200
        );
        assert_eq!(changed["body"], "Atendemos das 8h às 20h.");
        assert_eq!(changed["user_id"], Value::Null);
        let bruno_sees = expect_status!(server.get(&hours_path, &bruno).await?, 200);
        assert_eq!(bruno_sees["body"], "Atendemos das 8h às 20h.");

        expect_status!(server.delete(&path, &alice).await?, 204);
        expect_status!(server.get(&path, &alice).await?, 404);
        let alice_list = expect_status!(server.get("/api/v1/quick-replies", &alice).await?, 200);
        assert_eq!(strings(&alice_list, "shortcut"), ["horario"]);
        server.stop().await?;
    }
    Ok(())
}

// ---- flows ----

#[tokio::test]
async fn flow_graph_changes_bump_the_version_and_bad_graphs_are_422() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let admin = server.admin_token().await?;
        let graph = json!({
            "nodes": [{"id": "start", "type": "message", "text": "Olá! 1 - Vendas, 2 - Suporte"},
                      {"id": "menu", "type": "menu", "options": ["1", "2"]}],
            "edges": [{"from": "start", "to": "menu"}]
        });
        let flow = expect_status!(
            server
                .post(
                    "/api/v1/flows",
                    &admin,
                    json!({"name": "Menu principal", "active": true, "graph": graph})
                )
                .await?,
            201
        );
        assert_eq!(flow["version"], 1, "{}", server.backend);
        assert_eq!(flow["active"], true);
        assert_eq!(flow["graph"], graph);
        let empty = expect_status!(
            server
                .post("/api/v1/flows", &admin, json!({"name": "Rascunho"}))
                .await?,
            201
        );
        assert_eq!(empty["graph"], json!({"nodes": [], "edges": []}));
        assert_eq!(empty["active"], false);
        let list = expect_status!(server.get("/api/v1/flows", &admin).await?, 200);
        assert_eq!(strings(&list, "name"), ["Menu principal", "Rascunho"]);

        let path = format!("/api/v1/flows/{}", id(&flow));
        let renamed = expect_status!(
            server
                .patch(&path, &admin, json!({"name": "Menu", "active": false}))
                .await?,
            200
        );
        assert_eq!(renamed["version"], 1, "no new graph, no new version");
        assert_eq!(renamed["name"], "Menu");
        assert_eq!(renamed["active"], false);
        assert_eq!(renamed["graph"], graph);

        let second =
            json!({"nodes": [{"id": "start", "type": "message", "text": "Oi"}], "edges": []});
        let bumped = expect_status!(
            server
                .patch(&path, &admin, json!({"graph": second}))
                .await?,
            200
        );
        assert_eq!(bumped["version"], 2);
        assert_eq!(bumped["graph"], second);
        assert_eq!(bumped["name"], "Menu");
        let bumped = expect_status!(
            server
                .patch(&path, &admin, json!({"graph": second}))
                .await?,
            200
        );
        assert_eq!(bumped["version"], 3, "every stored graph is a new version");
        assert_eq!(
            expect_status!(server.get(&path, &admin).await?, 200),
            bumped
        );

        for (bad, field) in [
            (json!([]), "graph"),
            (json!("nodes"), "graph"),
            (json!({"edges": []}), "graph.nodes"),
            (json!({"nodes": [], "edges": {}}), "graph.edges"),
        ] {
            let body = expect_status!(
                server
                    .patch(&path, &admin, json!({"graph": bad.clone()}))
                    .await?,
                422
            );
            assert_eq!(error_field(&body), field, "{body}");
            let body = expect_status!(
                server
                    .post(
                        "/api/v1/flows",
                        &admin,
                        json!({"name": "Ruim", "graph": bad})
                    )
                    .await?,
                422
            );
            assert_eq!(error_field(&body), field, "{body}");
        }
        let shown = expect_status!(server.get(&path, &admin).await?, 200);
        assert_eq!(shown["version"], 3);
        assert_eq!(shown["graph"], second);
        let list = expect_status!(server.get("/api/v1/flows", &admin).await?, 200);
        assert_eq!(list.as_array().map(Vec::len), Some(2));

        // The active bot flow cannot go; any other can.
        expect_status!(
            server
                .put(
                    "/api/v1/settings/active_bot_flow",
                    &admin,
                    json!({"value": id(&flow)})
                )
                .await?,
            200
        );
        let body = expect_status!(server.delete(&path, &admin).await?, 409);
        assert_eq!(body["error"]["code"], "conflict");
        expect_status!(
            server
                .put(
                    "/api/v1/settings/active_bot_flow",
                    &admin,
                    json!({"value": null})
                )
                .await?,
            200
        );
        expect_status!(server.delete(&path, &admin).await?, 204);
        expect_status!(server.get(&path, &admin).await?, 404);
        expect_status!(
            server
                .patch(&path, &admin, json!({"graph": second}))
                .await?,
            404
        );
        server.stop().await?;
    }
    Ok(())
}
