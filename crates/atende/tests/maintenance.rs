//! The maintenance actions over real HTTP (SPEC §10, §13), on SQLite and, with
//! `TEST_DATABASE_URL`, on PostgreSQL: `POST /api/v1/maintenance/{action}` is admin-only and
//! answers the job at once (202); `GET /api/v1/jobs/{id}` shows its progress and result; an action
//! already running answers the running job; no tenant sees another's job; and each action fixes
//! the broken rows it is for (set up directly in the store, where the API cannot produce them)
//! and changes nothing when run a second time.

use atende_db::messages::{self, NewMessage};
use atende_db::tickets::{self, NewTicket};
use atende_db::{Db, contacts, jobs, tenants, write};
use atende_domain::{
    ChannelKind, ConnectionId, ContactId, MessageAuthor, MessageDirection, MessageId, MessageKind,
    MessageStatus, NameSource, TenantId, TicketId, TicketStatus, Timestamp,
};
use atende_testkit::{TestServer, expect_status};
use serde_json::{Value, json};
use std::time::Duration;

struct Setup {
    admin: String,
    db: Db,
    tenant: TenantId,
    /// A web-chat connection made through the API (the real adapter sends on it).
    webchat: ConnectionId,
}

async fn setup(server: &TestServer) -> anyhow::Result<Setup> {
    let admin = server.admin_token().await?;
    let connection = expect_status!(
        server
            .post(
                "/api/v1/connections",
                &admin,
                json!({"kind": "webchat", "name": "Site"})
            )
            .await?,
        201
    );
    let db = Db::connect(&server.database_url).await?;
    let tenant = tenants::platform_find_by_slug(&db, "default")
        .await?
        .map(|t| t.id)
        .ok_or_else(|| anyhow::anyhow!("no default tenant"))?;
    Ok(Setup {
        admin,
        db,
        tenant,
        webchat: ConnectionId(connection["id"].as_i64().unwrap_or_default()),
    })
}

impl Setup {
    /// Starts `action` and polls its job until it ends; answers the finished job.
    async fn run(&self, server: &TestServer, action: &str) -> anyhow::Result<Value> {
        let path = format!("/api/v1/maintenance/{action}");
        let started = expect_status!(server.post(&path, &self.admin, json!({})).await?, 202);
        assert_eq!(started["already_running"], false, "{started}");
        assert_eq!(started["kind"], format!("maintenance.{action}"));
        let id = started["job_id"].as_i64().unwrap_or_default();
        assert_eq!(started["id"].as_i64(), Some(id));
        for _ in 0..500 {
            let job = expect_status!(
                server
                    .get(&format!("/api/v1/jobs/{id}"), &self.admin)
                    .await?,
                200
            );
            match job["status"].as_str() {
                Some("done") => {
                    assert_eq!(job["progress"], job["total"], "all done: {job}");
                    return Ok(job);
                }
                Some("failed") => anyhow::bail!("{action} failed: {job}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        anyhow::bail!("{action} never finished")
    }

    /// A contact with one identity and an open ticket on `connection`.
    async fn chat(
        &self,
        connection: ConnectionId,
        channel: ChannelKind,
        external_id: &str,
        phone: Option<&str>,
    ) -> anyhow::Result<(ContactId, TicketId)> {
        let contact = contacts::create(
            &self.db,
            self.tenant,
            &contacts::NewContact {
                name: external_id.into(),
                name_source: NameSource::Manual,
                phone: phone.map(str::to_owned),
                email: None,
                avatar_url: None,
                blocked: false,
                is_group: false,
                custom_fields: json!({}),
                identities: vec![(channel, external_id.to_owned())],
                wallet_user_ids: vec![],
                tag_ids: vec![],
            },
        )
        .await?;
        let ticket = tickets::create(
            &self.db,
            self.tenant,
            &NewTicket {
                contact_id: contact.id,
                connection_id: connection,
                status: TicketStatus::Pending,
                owner_id: None,
                queue_id: None,
                is_group: false,
            },
        )
        .await?;
        Ok((contact.id, ticket.id))
    }

    async fn message(
        &self,
        ticket: TicketId,
        direction: MessageDirection,
        body: &str,
        sent_at: Timestamp,
    ) -> anyhow::Result<MessageId> {
        let found = tickets::get(&self.db, self.tenant, ticket).await?;
        let author = match direction {
            MessageDirection::In => MessageAuthor::Contact,
            MessageDirection::Out => MessageAuthor::Bot,
        };
        let stored = messages::insert(
            &self.db,
            self.tenant,
            &NewMessage {
                ticket_id: ticket,
                connection_id: found.connection_id,
                contact_id: found.contact_id,
                direction,
                author,
                author_user_id: None,
                kind: MessageKind::Text,
                body: body.into(),
                provider_id: None,
                quoted_id: None,
                status: MessageStatus::Sent,
                failure_reason: None,
                idempotency_key: None,
                queue_stamp: None,
                imported: false,
                sent_at,
            },
        )
        .await?;
        Ok(stored.id)
    }

    /// Leaves an outbound message as a sender that crashed or timed out would.
    async fn set_outbox(&self, id: MessageId, state: Outbox<'_>) -> anyhow::Result<()> {
        const SQL: &str = "UPDATE messages SET status = $2, provider_id = $3,
            outcome_unknown = $4, next_attempt_at = $5, updated_at = $6, failure_reason = $7
            WHERE id = $1";
        write!(&self.db, pool => {
            sqlx::query(SQL)
                .bind(id.0)
                .bind(state.status)
                .bind(state.provider_id)
                .bind(state.outcome_unknown)
                .bind(state.next_attempt_at.map(|t| t.0))
                .bind(state.updated_at.0)
                .bind(state.failure_reason)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    async fn get_message(&self, id: MessageId) -> anyhow::Result<atende_domain::Message> {
        Ok(messages::get(&self.db, self.tenant, id).await?)
    }

    async fn wait_status(&self, id: MessageId, status: MessageStatus) -> anyhow::Result<()> {
        for _ in 0..250 {
            if self.get_message(id).await?.status == status {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("message {id} never became {status}")
    }

    async fn count_messages(&self) -> anyhow::Result<i64> {
        let count: i64 = write!(&self.db, pool => {
            sqlx::query_scalar("SELECT COUNT(*) FROM messages").fetch_one(pool).await?
        });
        Ok(count)
    }
}

struct Outbox<'a> {
    status: &'a str,
    provider_id: Option<&'a str>,
    outcome_unknown: bool,
    next_attempt_at: Option<Timestamp>,
    updated_at: Timestamp,
    failure_reason: Option<&'a str>,
}

#[tokio::test]
async fn maintenance_actions_are_admin_only_and_an_unknown_action_is_named() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let s = setup(&server).await?;
        for (email, profile) in [
            ("ana@default.test", "user"),
            ("sara@default.test", "supervisor"),
        ] {
            expect_status!(
                server
                    .post(
                        "/api/v1/users",
                        &s.admin,
                        json!({"email": email, "name": profile, "password": "pass-word-123", "profile": profile})
                    )
                    .await?,
                201
            );
            let token = server.login(email, "pass-word-123").await?;
            let refused = expect_status!(
                server
                    .post("/api/v1/maintenance/fix_ticket_dates", &token, json!({}))
                    .await?,
                403
            );
            assert_eq!(refused["error"]["code"], "forbidden");
        }
        let unknown = expect_status!(
            server
                .post("/api/v1/maintenance/defragment", &s.admin, json!({}))
                .await?,
            404
        );
        assert_eq!(unknown["error"]["field"], "action");
        let message = unknown["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("defragment") && message.contains("send_stuck_messages"),
            "{message}"
        );
        let doc: Value = server
            .http
            .get(server.url("/api/v1/openapi.json"))
            .send()
            .await?
            .json()
            .await?;
        assert!(
            doc["paths"]["/api/v1/maintenance/{action}"]["post"].is_object(),
            "OpenAPI lists the maintenance actions"
        );
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_running_action_answers_its_job_and_only_a_real_start_is_audited() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let s = setup(&server).await?;
        // Queued for later by an earlier click: still live, so it is the answer.
        let live = jobs::create(
            &s.db,
            s.tenant,
            &jobs::NewJob {
                kind: "maintenance.validate_contacts".into(),
                payload: json!({"action": "validate_contacts"}),
                total: 0,
                due_at: Timestamp::now().plus_minutes(60),
                dedupe_key: Some("maintenance.validate_contacts".into()),
            },
        )
        .await?;
        let again = expect_status!(
            server
                .post("/api/v1/maintenance/validate_contacts", &s.admin, json!({}))
                .await?,
            202
        );
        assert_eq!(again["job_id"].as_i64(), Some(live.id.0), "{again}");
        assert_eq!(again["already_running"], true);
        assert_eq!(again["status"], "queued");

        let done = s.run(&server, "fix_ticket_dates").await?;
        assert_eq!(done["result"]["fixed"], 0, "{done}");
        let audit = expect_status!(server.get("/api/v1/audit", &s.admin).await?, 200);
        let starts: Vec<&Value> = audit
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["action"] == "maintenance.start")
            .collect();
        assert_eq!(starts.len(), 1, "one real start: {audit}");
        assert_eq!(starts[0]["detail"]["action"], "fix_ticket_dates");
        assert_eq!(starts[0]["entity_id"], done["id"].to_string());
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_job() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let s = setup(&server).await?;
        let other = tenants::platform_create(&s.db, "outra", "Outra").await?.id;
        let theirs = jobs::create(
            &s.db,
            other,
            &jobs::NewJob {
                kind: "maintenance.fix_ticket_dates".into(),
                payload: json!({}),
                total: 0,
                due_at: Timestamp::now().plus_minutes(60),
                dedupe_key: None,
            },
        )
        .await?;
        let hidden = server
            .get(&format!("/api/v1/jobs/{}", theirs.id.0), &s.admin)
            .await?;
        assert_eq!(hidden.0, 404, "{}", hidden.1);
        let ours = s.run(&server, "fix_ticket_dates").await?;
        assert_ne!(ours["id"].as_i64(), Some(theirs.id.0));
        assert_eq!(ours["tenant_id"].as_i64(), Some(s.tenant.0));
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn send_stuck_messages_requeues_unconfirmed_sends_and_never_resends_accepted_ones()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let s = setup(&server).await?;
        let whatsapp = atende_db::connections::create(
            &s.db,
            s.tenant,
            &atende_db::connections::NewConnection {
                kind: ChannelKind::WhatsappCloud,
                name: "WhatsApp".into(),
                default_queue_id: None,
                default_flow_id: None,
                public_key: None,
                credentials: None,
                send_delay_min_ms: None,
                send_delay_max_ms: None,
                cadence_enabled: None,
            },
        )
        .await?
        .id;
        let (_, web_ticket) = s
            .chat(s.webchat, ChannelKind::Webchat, "visitor-1", None)
            .await?;
        let (_, wa_ticket) = s
            .chat(whatsapp, ChannelKind::WhatsappCloud, "5511988887777", None)
            .await?;
        let old = Timestamp::now().plus_minutes(-10);
        let out = MessageDirection::Out;
        let accepted = s.message(web_ticket, out, "accepted", old).await?;
        let unconfirmed = s.message(web_ticket, out, "unconfirmed", old).await?;
        let wa_unconfirmed = s
            .message(wa_ticket, out, "unconfirmed on WhatsApp", old)
            .await?;
        let behind = s.message(wa_ticket, out, "waiting behind", old).await?;
        let flagged = |provider_id| Outbox {
            status: "sending",
            provider_id,
            outcome_unknown: true,
            next_attempt_at: None,
            updated_at: old,
            failure_reason: Some("the provider did not answer in time"),
        };
        s.set_outbox(accepted, flagged(Some("out/first-try")))
            .await?;
        s.set_outbox(unconfirmed, flagged(None)).await?;
        s.set_outbox(wa_unconfirmed, flagged(None)).await?;
        s.set_outbox(
            behind,
            Outbox {
                status: "queued",
                provider_id: None,
                outcome_unknown: false,
                next_attempt_at: Some(old),
                updated_at: old,
                failure_reason: None,
            },
        )
        .await?;
        let stored = s.count_messages().await?;

        let first = s.run(&server, "send_stuck_messages").await?;
        let result = &first["result"];
        assert_eq!(first["total"], 4, "{first}");
        assert_eq!(result["marked_sent"], 1, "{first}");
        assert_eq!(result["requeued"], 2, "{first}");
        assert_eq!(result["left_unconfirmed"], 1, "{first}");

        let kept = s.get_message(accepted).await?;
        assert_eq!(kept.status, MessageStatus::Sent);
        assert_eq!(
            kept.provider_id.as_deref(),
            Some("out/first-try"),
            "accepted once, never handed over again"
        );
        s.wait_status(unconfirmed, MessageStatus::Sent).await?;
        let left = s.get_message(wa_unconfirmed).await?;
        assert_eq!(
            (left.status, left.provider_id),
            (MessageStatus::Sending, None),
            "no proof a repeat is harmless: left for the provider's status"
        );
        assert_eq!(
            s.get_message(behind).await?.status,
            MessageStatus::Queued,
            "made due, still behind the unconfirmed send of its chat"
        );
        assert_eq!(s.count_messages().await?, stored, "no message duplicated");

        let second = s.run(&server, "send_stuck_messages").await?;
        let result = &second["result"];
        assert_eq!(
            (&result["requeued"], &result["marked_sent"]),
            (&json!(0), &json!(0)),
            "{second}"
        );
        assert_eq!(result["left_unconfirmed"], 1, "{second}");
        assert_eq!(
            s.get_message(wa_unconfirmed).await?.status,
            MessageStatus::Sending
        );
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn resolve_failed_messages_fails_errored_sends_with_their_reason_and_unblocks_the_chat()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let s = setup(&server).await?;
        let (_, ticket) = s
            .chat(s.webchat, ChannelKind::Webchat, "visitor-2", None)
            .await?;
        let now = Timestamp::now();
        let out = MessageDirection::Out;
        let retrying = s.message(ticket, out, "retry in an hour", now).await?;
        let timed_out = s.message(ticket, out, "timed out", now).await?;
        let waiting = s.message(ticket, out, "waiting behind", now).await?;
        s.set_outbox(
            retrying,
            Outbox {
                status: "queued",
                provider_id: None,
                outcome_unknown: false,
                next_attempt_at: Some(now.plus_minutes(60)),
                updated_at: now,
                failure_reason: Some("temporary failure: 503 from the provider"),
            },
        )
        .await?;
        s.set_outbox(
            timed_out,
            Outbox {
                status: "sending",
                provider_id: None,
                outcome_unknown: true,
                next_attempt_at: None,
                updated_at: now,
                failure_reason: Some("outcome unknown: the provider did not answer in time"),
            },
        )
        .await?;
        s.set_outbox(
            waiting,
            Outbox {
                status: "queued",
                provider_id: None,
                outcome_unknown: false,
                next_attempt_at: Some(now),
                updated_at: now,
                failure_reason: None,
            },
        )
        .await?;
        let stored = s.count_messages().await?;

        let first = s.run(&server, "resolve_failed_messages").await?;
        assert_eq!(first["result"]["failed"], 2, "{first}");
        let failed = s.get_message(retrying).await?;
        assert_eq!(
            (failed.status, failed.failure_reason.as_deref()),
            (
                MessageStatus::Failed,
                Some("temporary failure: 503 from the provider")
            )
        );
        let failed = s.get_message(timed_out).await?;
        assert_eq!(
            (failed.status, failed.failure_reason.as_deref()),
            (
                MessageStatus::Failed,
                Some("outcome unknown: the provider did not answer in time")
            )
        );
        s.wait_status(waiting, MessageStatus::Sent).await?;
        assert_eq!(s.count_messages().await?, stored, "nothing deleted");

        let second = s.run(&server, "resolve_failed_messages").await?;
        assert_eq!(second["result"]["failed"], 0, "{second}");
        assert_eq!(s.get_message(retrying).await?.status, MessageStatus::Failed);
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn validate_contacts_fixes_phones_reports_invalid_numbers_and_skips_web_chat()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let s = setup(&server).await?;
        let (fixable, _) = s
            .chat(
                s.webchat,
                ChannelKind::Webchat,
                "v-fix",
                Some("(11) 98765-4321"),
            )
            .await?;
        let (invalid, _) = s
            .chat(
                s.webchat,
                ChannelKind::Webchat,
                "v-bad",
                Some("ligar depois"),
            )
            .await?;
        let (fine, _) = s
            .chat(
                s.webchat,
                ChannelKind::Webchat,
                "v-ok",
                Some("+5511912345678"),
            )
            .await?;

        let first = s.run(&server, "validate_contacts").await?;
        let result = &first["result"];
        assert_eq!(first["total"], 3, "{first}");
        assert_eq!(result["contacts"], 3, "{first}");
        assert_eq!(result["phones_fixed"], 1, "{first}");
        assert_eq!(result["invalid_phones"], 1, "{first}");
        assert_eq!(result["invalid_phone_samples"][0]["contact_id"], invalid.0);
        assert_eq!(result["invalid_phone_samples"][0]["phone"], "ligar depois");
        assert_eq!(
            result["skipped_unsupported"], 3,
            "web chat has no directory: {first}"
        );
        let (db, tenant) = (&s.db, s.tenant);
        let phone = |id| async move {
            let contact = contacts::get(db, tenant, id).await?;
            anyhow::Ok(contact.phone)
        };
        assert_eq!(phone(fixable).await?.as_deref(), Some("+5511987654321"));
        assert_eq!(phone(invalid).await?.as_deref(), Some("ligar depois"));
        assert_eq!(phone(fine).await?.as_deref(), Some("+5511912345678"));

        let second = s.run(&server, "validate_contacts").await?;
        assert_eq!(second["result"]["phones_fixed"], 0, "{second}");
        assert_eq!(
            second["result"]["invalid_phones"], 1,
            "still reported: {second}"
        );
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn fix_imported_message_dates_takes_the_provider_timestamp_and_the_ticket_follows()
-> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let s = setup(&server).await?;
        let (_, ticket) = s
            .chat(s.webchat, ChannelKind::Webchat, "imported", None)
            .await?;
        let import_time = Timestamp::now();
        let provider_time = import_time.plus_minutes(-3 * 24 * 60);
        let first_in = s
            .message(ticket, MessageDirection::In, "mensagem antiga", import_time)
            .await?;
        let last_out = s
            .message(
                ticket,
                MessageDirection::Out,
                "resposta antiga",
                import_time,
            )
            .await?;
        const IMPORT: &str =
            "UPDATE messages SET imported = TRUE, provider_timestamp = $2 WHERE id = $1";
        const STAMP: &str = "UPDATE tickets SET last_message = 'resposta antiga',
            last_message_at = $2, last_inbound_at = $2, updated_at = $2 WHERE id = $1";
        write!(&s.db, pool => {
            sqlx::query(IMPORT).bind(first_in.0).bind(provider_time.0).execute(pool).await?;
            sqlx::query(IMPORT)
                .bind(last_out.0)
                .bind(provider_time.plus_millis(60_000).0)
                .execute(pool)
                .await?;
            sqlx::query(STAMP).bind(ticket.0).bind(import_time.0).execute(pool).await?;
        });

        let first = s.run(&server, "fix_imported_message_dates").await?;
        let result = &first["result"];
        assert_eq!(result["fixed"], 2, "{first}");
        assert_eq!(result["tickets_fixed"], 1, "{first}");
        assert_eq!(s.get_message(first_in).await?.sent_at, provider_time);
        assert_eq!(
            s.get_message(last_out).await?.sent_at,
            provider_time.plus_millis(60_000)
        );
        let fixed = tickets::get(&s.db, s.tenant, ticket).await?;
        assert_eq!(
            fixed.last_message_at,
            Some(provider_time.plus_millis(60_000))
        );
        assert_eq!(fixed.last_inbound_at, Some(provider_time));

        let second = s.run(&server, "fix_imported_message_dates").await?;
        assert_eq!(second["result"]["fixed"], 0, "{second}");
        assert_eq!(second["result"]["tickets_fixed"], 0, "{second}");
        server.stop().await?;
    }
    Ok(())
}

#[tokio::test]
async fn fix_ticket_dates_recomputes_the_dates_from_the_messages() -> anyhow::Result<()> {
    for server in TestServer::all().await? {
        let s = setup(&server).await?;
        let (_, broken) = s
            .chat(s.webchat, ChannelKind::Webchat, "broken", None)
            .await?;
        let t0 = Timestamp::now().plus_minutes(-30);
        s.message(broken, MessageDirection::In, "Oi, preciso de ajuda", t0)
            .await?;
        s.message(
            broken,
            MessageDirection::Out,
            "Claro!",
            t0.plus_millis(2_000),
        )
        .await?;
        // A ticket that lived through the real pipeline and lifecycle (accept and close leave
        // system notes after its last message) already agrees with its messages.
        let site = expect_status!(
            server
                .post(
                    "/api/v1/connections",
                    &s.admin,
                    json!({"kind": "webchat", "name": "Loja"})
                )
                .await?,
            201
        );
        let key = site["key"].as_str().unwrap_or_default();
        let visitor = json!({"visitor_id": "v-lived", "name": "Rita", "body": "Bom dia"});
        let response = server
            .http
            .post(server.url(&format!("/api/widget/v1/{key}/messages")))
            .json(&visitor)
            .send()
            .await?;
        assert_eq!(response.status().as_u16(), 201);
        let pending = expect_status!(
            server.get("/api/v1/tickets?tab=pending", &s.admin).await?,
            200
        );
        let lived = TicketId(
            pending["tickets"][0]["id"]
                .as_i64()
                .ok_or_else(|| anyhow::anyhow!("no pending ticket in {pending}"))?,
        );
        for command in ["accept", "close"] {
            expect_status!(
                server
                    .post(
                        &format!("/api/v1/tickets/{}/{command}", lived.0),
                        &s.admin,
                        json!({})
                    )
                    .await?,
                200
            );
        }
        let closed = tickets::get(&s.db, s.tenant, lived).await?;
        const BREAK: &str = "UPDATE tickets SET last_message = '', last_message_at = NULL,
            last_inbound_at = NULL, updated_at = $2 WHERE id = $1";
        write!(&s.db, pool => {
            sqlx::query(BREAK).bind(broken.0).bind(t0.plus_millis(-60_000).0).execute(pool).await?;
        });

        let first = s.run(&server, "fix_ticket_dates").await?;
        assert_eq!(first["result"]["tickets"], 2, "{first}");
        assert_eq!(first["result"]["fixed"], 1, "{first}");
        assert_eq!(
            tickets::get(&s.db, s.tenant, lived).await?,
            closed,
            "the closed ticket keeps its dates"
        );
        let ticket = expect_status!(
            server
                .get(&format!("/api/v1/tickets/{}", broken.0), &s.admin)
                .await?,
            200
        );
        let fixed = tickets::get(&s.db, s.tenant, broken).await?;
        assert_eq!(
            fixed.last_message_at,
            Some(t0.plus_millis(2_000)),
            "{ticket}"
        );
        assert_eq!(fixed.last_inbound_at, Some(t0));
        assert_eq!(fixed.last_message, "Claro!");

        let second = s.run(&server, "fix_ticket_dates").await?;
        assert_eq!(second["result"]["fixed"], 0, "{second}");
        let unchanged = tickets::get(&s.db, s.tenant, broken).await?;
        assert_eq!(unchanged, fixed, "a second run changes nothing");
        server.stop().await?;
    }
    Ok(())
}
