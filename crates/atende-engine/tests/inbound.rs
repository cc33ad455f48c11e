//! The inbound pipeline (SPEC §4) with synthetic events, on SQLite and, with `TEST_DATABASE_URL`,
//! PostgreSQL: filters keep the event with its reason and make nothing else, duplicates change
//! nothing, the push-name rule, routing of new tickets, events for the live push, failures kept in
//! the log.

use atende_channels::{Inbound, InboundCall, InboundEvent, InboundMessage, StatusUpdate};
use atende_db::connections::{self, NewConnection};
use atende_db::contacts::{self, ContactPatch, NewContact};
use atende_db::queues::{self, NewQueue};
use atende_db::testing::TestDb;
use atende_db::{Db, flows, inbound_events, users};
use atende_domain::settings::Locale;
use atende_domain::{
    ChannelKind, Connection, InboundOutcome, MessageKind, NameSource, Presence, QueueId, TenantId,
    TicketStatus, Timestamp, TokenKind,
};
use atende_engine::auth::{ClientInfo, Principal};
use atende_engine::events::EventKind;
use atende_engine::inbound::{DropReason, Handled};
use atende_engine::{Engine, EngineConfig};
use serde_json::{Value, json};
use std::future::Future;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ADMIN_EMAIL: &str = "admin@acme.test";
const ADMIN_PASSWORD: &str = "admin-password-1";

struct Harness {
    engine: Engine,
    tenant: TenantId,
    admin: Principal,
    queue: QueueId,
    /// Web chat, default queue `queue`.
    web: Connection,
    /// Phone-based channel (identities are E.164 numbers).
    whatsapp: Connection,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(db: Db) -> Result<Harness> {
        let dir = tempfile::tempdir()?;
        let engine = Engine::start(
            db.clone(),
            EngineConfig {
                data_dir: dir.path().to_path_buf(),
                secret_key: None,
                session_ttl_ms: 3_600_000,
            },
        )
        .await?;
        let (tenant, _) = engine
            .create_tenant("acme", "Acme", ADMIN_EMAIL, ADMIN_PASSWORD, None)
            .await?;
        let client = ClientInfo {
            ip: "127.0.0.1".into(),
            user_agent: None,
        };
        let grant = engine
            .login(ADMIN_EMAIL, ADMIN_PASSWORD, TokenKind::Api, &client)
            .await?;
        let admin = engine.authenticate(&grant.token).await?;
        let queue = queues::create(
            &db,
            tenant.id,
            &NewQueue {
                name: "Suporte".into(),
                color: "#336699".into(),
                greeting: String::new(),
                absence_message: String::new(),
                business_hours: None,
            },
        )
        .await?
        .id;
        let connection = |kind, name: &str, key: Option<&str>| NewConnection {
            kind,
            name: name.into(),
            default_queue_id: Some(queue),
            default_flow_id: None,
            public_key: key.map(str::to_owned),
            credentials: None,
            send_delay_min_ms: None,
            send_delay_max_ms: None,
            cadence_enabled: None,
        };
        let web = connections::create(
            &db,
            tenant.id,
            &connection(ChannelKind::Webchat, "Site", Some("wc_engine_test")),
        )
        .await?;
        let whatsapp = connections::create(
            &db,
            tenant.id,
            &connection(ChannelKind::WhatsappCloud, "WhatsApp", None),
        )
        .await?;
        Ok(Harness {
            engine,
            tenant: tenant.id,
            admin,
            queue,
            web,
            whatsapp,
            _dir: dir,
        })
    }

    fn db(&self) -> &Db {
        self.engine.db()
    }

    async fn set(&self, key: &str, value: Value) -> Result {
        self.engine
            .put_setting(
                &self.admin,
                key,
                &value,
                &ClientInfo::default(),
                Locale::PtBr,
            )
            .await?;
        Ok(())
    }

    async fn deliver(&self, connection: &Connection, event: InboundEvent) -> Result<Handled> {
        Ok(self
            .engine
            .ingest_event(
                connection,
                Inbound {
                    event,
                    raw: r#"{"synthetic":true}"#.into(),
                },
            )
            .await?)
    }

    async fn log_of(&self, handled: &Handled) -> Result<(InboundOutcome, Option<String>)> {
        let event = inbound_events::get(self.db(), self.tenant, handled.event_id()).await?;
        Ok((event.outcome, event.reason))
    }

    async fn contact_count(&self) -> Result<usize> {
        Ok(contacts::list(self.db(), self.tenant, &Default::default())
            .await?
            .len())
    }
}

async fn on_every_store<F, Fut>(story: F) -> Result
where
    F: Fn(Harness) -> Fut,
    Fut: Future<Output = Result>,
{
    let mut failures = Vec::new();
    for store in TestDb::all().await? {
        let name = store.name;
        let outcome = match Harness::start(store.db.clone()).await {
            Ok(harness) => story(harness).await,
            Err(error) => Err(error),
        };
        if let Err(error) = outcome {
            failures.push(format!("{name}: {error}"));
        }
        store.cleanup().await;
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}

fn message(provider_id: &str, chat: &str, body: &str) -> InboundMessage {
    InboundMessage {
        provider_id: provider_id.into(),
        chat_id: chat.into(),
        sender_name: Some("Ana".into()),
        phone: None,
        is_group: false,
        kind: MessageKind::Text,
        body: body.into(),
        media: None,
        quoted_provider_id: None,
        provider_timestamp: Timestamp::now(),
        from_me: false,
    }
}

fn phone_message(provider_id: &str, phone: &str, body: &str) -> InboundMessage {
    InboundMessage {
        phone: Some(phone.into()),
        ..message(provider_id, phone.trim_start_matches('+'), body)
    }
}

fn stored(handled: &Handled) -> (&atende_domain::Ticket, &atende_domain::Message, bool) {
    match handled {
        Handled::Stored {
            ticket,
            message,
            created,
            ..
        } => (ticket, message, *created),
        other => panic!("expected the message to be stored, got {other:?}"),
    }
}

fn dropped(handled: &Handled) -> DropReason {
    match handled {
        Handled::Dropped { reason, .. } => *reason,
        other => panic!("expected a drop, got {other:?}"),
    }
}

#[tokio::test]
async fn group_messages_are_ignored_by_default_and_stored_when_allowed() -> Result {
    on_every_store(|h| async move {
        let group = InboundMessage {
            is_group: true,
            ..message("g1", "group-1", "oi grupo")
        };
        let handled = h
            .deliver(&h.whatsapp, InboundEvent::Message(group.clone()))
            .await?;
        assert_eq!(dropped(&handled), DropReason::GroupMessage);
        assert_eq!(
            h.log_of(&handled).await?,
            (
                InboundOutcome::Dropped,
                Some("group message (ignore_group_messages)".into())
            )
        );
        assert_eq!(
            h.contact_count().await?,
            0,
            "a dropped event makes no contact"
        );

        h.set("ignore_group_messages", json!(false)).await?;
        let handled = h
            .deliver(
                &h.whatsapp,
                InboundEvent::Message(InboundMessage {
                    provider_id: "g2".into(),
                    ..group
                }),
            )
            .await?;
        let (ticket, _, created) = stored(&handled);
        assert!(created && ticket.is_group);
        let group_contact = contacts::get(h.db(), h.tenant, ticket.contact_id).await?;
        assert!(group_contact.is_group);
        assert_ne!(
            group_contact.name, "Ana",
            "a participant's name does not name the group"
        );
        assert_eq!(ticket.bot_flow_id, None);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn blocked_number_is_dropped_with_its_reason_matched_on_the_normalised_identity() -> Result {
    on_every_store(|h| async move {
        h.set("blocked_numbers", json!(["(11) 98765-4321"])).await?;
        let handled = h
            .deliver(
                &h.whatsapp,
                InboundEvent::Message(phone_message("b1", "+5511987654321", "oi")),
            )
            .await?;
        assert_eq!(dropped(&handled), DropReason::BlockedNumber);
        assert_eq!(h.log_of(&handled).await?.0, InboundOutcome::Dropped);
        assert_eq!(h.contact_count().await?, 0);
        let other = h
            .deliver(
                &h.whatsapp,
                InboundEvent::Message(phone_message("b2", "+5511911112222", "oi")),
            )
            .await?;
        stored(&other);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn blocked_contact_is_dropped() -> Result {
    on_every_store(|h| async move {
        let first = h
            .deliver(&h.web, InboundEvent::Message(message("c1", "v_ana", "oi")))
            .await?;
        let contact = stored(&first).0.contact_id;
        contacts::update(
            h.db(),
            h.tenant,
            contact,
            &ContactPatch {
                blocked: Some(true),
                ..Default::default()
            },
        )
        .await?;
        let handled = h
            .deliver(
                &h.web,
                InboundEvent::Message(message("c2", "v_ana", "oi de novo")),
            )
            .await?;
        assert_eq!(dropped(&handled), DropReason::BlockedContact);
        assert_eq!(
            h.log_of(&handled).await?,
            (InboundOutcome::Dropped, Some("blocked contact".into()))
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn story_mentions_and_reactions_are_dropped_with_ignore_instagram_stories_but_a_story_reply_is_kept()
-> Result {
    on_every_store(|h| async move {
        let mention = InboundEvent::StoryMention(message("s1", "ig-1", "mentioned you"));
        stored(&h.deliver(&h.whatsapp, mention).await?);

        h.set("ignore_instagram_stories", json!(true)).await?;
        let mention = h
            .deliver(
                &h.whatsapp,
                InboundEvent::StoryMention(message("s2", "ig-1", "mentioned you")),
            )
            .await?;
        assert_eq!(dropped(&mention), DropReason::InstagramStory);
        let reaction = h
            .deliver(
                &h.whatsapp,
                InboundEvent::StoryReaction(message("s3", "ig-1", "❤")),
            )
            .await?;
        assert_eq!(dropped(&reaction), DropReason::InstagramStory);
        let reply = InboundMessage {
            quoted_provider_id: Some("story-9".into()),
            ..message("s4", "ig-1", "que lindo!")
        };
        let handled = h.deliver(&h.whatsapp, InboundEvent::Message(reply)).await?;
        let (_, stored_reply, _) = stored(&handled);
        assert_eq!(stored_reply.body, "que lindo!");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn calls_are_dropped_and_make_no_ticket() -> Result {
    on_every_store(|h| async move {
        for reject in [false, true] {
            h.set("reject_calls", json!(reject)).await?;
            let call = InboundCall {
                provider_id: format!("call-{reject}"),
                chat_id: "5511987654321".into(),
                sender_name: Some("Ana".into()),
                phone: Some("+5511987654321".into()),
                is_group: false,
                video: false,
                at: Timestamp::now(),
            };
            let handled = h.deliver(&h.whatsapp, InboundEvent::Call(call)).await?;
            assert_eq!(dropped(&handled), DropReason::Call);
            assert_eq!(
                h.log_of(&handled).await?,
                (InboundOutcome::Dropped, Some("call".into()))
            );
        }
        assert_eq!(h.contact_count().await?, 0);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn repeated_delivery_is_a_duplicate_and_changes_nothing() -> Result {
    on_every_store(|h| async move {
        let first = h
            .deliver(
                &h.web,
                InboundEvent::Message(message("same", "v_ana", "oi")),
            )
            .await?;
        let (ticket, _, _) = stored(&first);
        let ticket_id = ticket.id;
        let again = h
            .deliver(
                &h.web,
                InboundEvent::Message(message("same", "v_ana", "oi")),
            )
            .await?;
        assert_eq!(
            again,
            Handled::Duplicate {
                event: first.event_id()
            }
        );
        let ticket = atende_db::tickets::get(h.db(), h.tenant, ticket_id).await?;
        assert_eq!(ticket.unread, 1);
        assert_eq!(
            inbound_events::list(h.db(), h.tenant, None, 10)
                .await?
                .len(),
            1,
            "one log row"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn push_name_updates_the_contact_name_unless_keep_contact_name() -> Result {
    on_every_store(|h| async move {
        let first = h
            .deliver(&h.web, InboundEvent::Message(message("n1", "v_ana", "oi")))
            .await?;
        let contact = stored(&first).0.contact_id;
        assert_eq!(contacts::get(h.db(), h.tenant, contact).await?.name, "Ana");

        let renamed = InboundMessage {
            sender_name: Some("Ana Paula".into()),
            ..message("n2", "v_ana", "oi")
        };
        h.deliver(&h.web, InboundEvent::Message(renamed)).await?;
        let now = contacts::get(h.db(), h.tenant, contact).await?;
        assert_eq!(
            (now.name.as_str(), now.name_source),
            ("Ana Paula", NameSource::Push)
        );

        h.set("keep_contact_name", json!(true)).await?;
        let ignored = InboundMessage {
            sender_name: Some("Aninha".into()),
            ..message("n3", "v_ana", "oi")
        };
        h.deliver(&h.web, InboundEvent::Message(ignored)).await?;
        assert_eq!(
            contacts::get(h.db(), h.tenant, contact).await?.name,
            "Ana Paula"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn new_ticket_goes_pending_to_the_connection_default_queue_and_events_are_published() -> Result
{
    on_every_store(|h| async move {
        let mut live = h.engine.events().subscribe(h.tenant);
        let first = h
            .deliver(&h.web, InboundEvent::Message(message("e1", "v_ana", "oi")))
            .await?;
        let (ticket, stored_message, created) = stored(&first);
        assert!(created);
        assert_eq!(
            (ticket.status, ticket.queue_id, ticket.owner_id),
            (TicketStatus::Pending, Some(h.queue), None)
        );
        assert_eq!(stored_message.queue_stamp, Some(h.queue));
        assert_eq!(h.log_of(&first).await?.0, InboundOutcome::Processed);

        let created_event = live.recv().await?;
        assert_eq!(created_event.kind, EventKind::TicketCreated);
        assert_eq!(created_event.data["id"], json!(ticket.id));
        let message_event = live.recv().await?;
        assert_eq!(message_event.kind, EventKind::MessageCreated);
        assert_eq!(message_event.data["id"], json!(stored_message.id));

        h.deliver(
            &h.web,
            InboundEvent::Message(message("e2", "v_ana", "tudo bem?")),
        )
        .await?;
        let updated = live.recv().await?;
        assert_eq!(updated.kind, EventKind::TicketUpdated);
        assert_eq!(updated.data["unread"], json!(2));
        assert_eq!(live.recv().await?.kind, EventKind::MessageCreated);
        assert!(updated.id > created_event.id, "event ids increase");
        Ok(())
    })
    .await
}

#[tokio::test]
async fn wallet_routing_opens_the_ticket_for_the_online_owner() -> Result {
    on_every_store(|h| async move {
        let agent = h
            .engine
            .create_user(
                h.tenant,
                atende_engine::people::UserDraft {
                    email: "bruno@acme.test".into(),
                    name: "Bruno".into(),
                    password: "agent-password-1".into(),
                    profile: atende_domain::Profile::User,
                    queue_ids: vec![h.queue],
                    business_hours: None,
                    timezone: None,
                    locale: None,
                },
            )
            .await?
            .id;
        contacts::create(
            h.db(),
            h.tenant,
            &NewContact {
                name: "Cliente".into(),
                name_source: NameSource::Manual,
                phone: None,
                email: None,
                avatar_url: None,
                blocked: false,
                is_group: false,
                custom_fields: json!({}),
                identities: vec![(ChannelKind::Webchat, "v_wallet".into())],
                wallet_user_ids: vec![agent],
                tag_ids: vec![],
            },
        )
        .await?;
        h.set("force_wallet_routing", json!(true)).await?;

        // Owner offline, no overflow: assigned to the first owner anyway.
        let offline = h
            .deliver(
                &h.web,
                InboundEvent::Message(message("w1", "v_wallet", "oi")),
            )
            .await?;
        let (ticket, _, _) = stored(&offline);
        assert_eq!(
            (ticket.status, ticket.owner_id),
            (TicketStatus::Open, Some(agent))
        );
        atende_db::tickets::set_status(
            h.db(),
            h.tenant,
            ticket.id,
            TicketStatus::Closed,
            Some(agent),
            None,
            Timestamp::now().plus_minutes(-500),
        )
        .await?;

        // With overflow: pending in the default queue, marked overflowed.
        h.set("wallet_overflow", json!(true)).await?;
        let overflow = h
            .deliver(
                &h.web,
                InboundEvent::Message(message("w2", "v_wallet", "oi")),
            )
            .await?;
        let (ticket, _, created) = stored(&overflow);
        assert!(created);
        assert_eq!(
            (ticket.status, ticket.owner_id, ticket.queue_id),
            (TicketStatus::Pending, None, Some(h.queue))
        );
        assert!(ticket.wallet_overflowed);
        atende_db::tickets::set_status(
            h.db(),
            h.tenant,
            ticket.id,
            TicketStatus::Closed,
            None,
            None,
            Timestamp::now().plus_minutes(-500),
        )
        .await?;

        // Online: the owner gets it, open.
        users::set_presence(h.db(), h.tenant, agent, Presence::Online, None).await?;
        let online = h
            .deliver(
                &h.web,
                InboundEvent::Message(message("w3", "v_wallet", "oi")),
            )
            .await?;
        let (ticket, _, _) = stored(&online);
        assert_eq!(
            (ticket.status, ticket.owner_id),
            (TicketStatus::Open, Some(agent))
        );
        assert!(!ticket.wallet_overflowed);
        assert_eq!(
            contacts::get(h.db(), h.tenant, ticket.contact_id)
                .await?
                .name,
            "Cliente",
            "a manual name stays"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn connection_flow_starts_the_bot_and_force_admin_assigns_unrouted_tickets() -> Result {
    on_every_store(|h| async move {
        let flow = flows::create(
            h.db(),
            h.tenant,
            &flows::NewFlow {
                name: "Menu".into(),
                active: true,
                graph: json!({}),
            },
        )
        .await?;
        h.set("active_bot_flow", json!(flow.id)).await?;
        let bot = h
            .deliver(&h.web, InboundEvent::Message(message("f1", "v_bot", "oi")))
            .await?;
        let (ticket, _, _) = stored(&bot);
        assert_eq!(
            (ticket.status, ticket.bot_flow_id),
            (TicketStatus::Pending, Some(flow.id))
        );

        h.set("active_bot_flow", Value::Null).await?;
        h.set("force_admin_on_pending", json!(true)).await?;
        let admin_ticket = h
            .deliver(
                &h.web,
                InboundEvent::Message(message("f2", "v_other", "oi")),
            )
            .await?;
        let (ticket, _, _) = stored(&admin_ticket);
        assert_eq!(
            ticket.owner_id,
            Some(h.admin.user_id()),
            "the first admin when none is designated"
        );
        assert_eq!(ticket.status, TicketStatus::Pending);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn status_updates_move_our_message_forward() -> Result {
    on_every_store(|h| async move {
        let reply = InboundMessage {
            from_me: true,
            sender_name: Some("Our account".into()),
            ..message("out-1", "v_ana", "olá!")
        };
        let handled = h.deliver(&h.web, InboundEvent::Message(reply)).await?;
        let (ticket, sent, _) = stored(&handled);
        assert_eq!(sent.direction, atende_domain::MessageDirection::Out);
        assert_eq!(ticket.unread, 0);
        let contact = contacts::get(h.db(), h.tenant, ticket.contact_id).await?;
        assert_eq!(
            contact.name, "v_ana",
            "our own name is not the contact's push name"
        );
        let status = StatusUpdate {
            provider_id: "st-1".into(),
            message_provider_id: "out-1".into(),
            status: atende_domain::MessageStatus::Read,
            reason: None,
            at: Timestamp::now(),
        };
        match h.deliver(&h.web, InboundEvent::Status(status)).await? {
            Handled::StatusApplied {
                message: Some(message),
                ..
            } => assert_eq!(message.status, atende_domain::MessageStatus::Read),
            other => panic!("expected the status applied, got {other:?}"),
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_delivery_logged_by_a_process_that_died_is_finished_by_its_redelivery() -> Result {
    on_every_store(|h| async move {
        // The process logged these deliveries and died before the work (no 2xx went back).
        for provider_id in ["lost-msg", "lost-status"] {
            inbound_events::record(
                h.db(),
                h.tenant,
                h.web.id,
                provider_id,
                Timestamp::now(),
                "{}",
            )
            .await?;
        }
        let redelivered = h
            .deliver(
                &h.web,
                InboundEvent::Message(message("lost-msg", "v_rui", "ainda aí?")),
            )
            .await?;
        let (ticket, stored_message, _) = stored(&redelivered);
        assert_eq!(stored_message.body, "ainda aí?");
        assert_eq!(ticket.unread, 1);

        let reply = InboundMessage {
            from_me: true,
            ..message("out-lost", "v_rui", "sim!")
        };
        h.deliver(&h.web, InboundEvent::Message(reply)).await?;
        let status = StatusUpdate {
            provider_id: "lost-status".into(),
            message_provider_id: "out-lost".into(),
            status: atende_domain::MessageStatus::Delivered,
            reason: None,
            at: Timestamp::now(),
        };
        match h
            .deliver(&h.web, InboundEvent::Status(status.clone()))
            .await?
        {
            Handled::StatusApplied {
                message: Some(message),
                ..
            } => assert_eq!(message.status, atende_domain::MessageStatus::Delivered),
            other => panic!("the redelivered status is applied, got {other:?}"),
        }
        // Once done, a further repeat is a plain duplicate.
        assert!(matches!(
            h.deliver(&h.web, InboundEvent::Status(status)).await?,
            Handled::Duplicate { .. }
        ));
        let log = inbound_events::list(h.db(), h.tenant, None, 10).await?;
        assert_eq!(log.len(), 3, "one log row per provider id");
        assert!(
            log.iter()
                .all(|event| event.outcome == InboundOutcome::Processed),
            "{log:?}"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_delivery_that_cannot_be_processed_is_kept_as_failed_with_the_error() -> Result {
    on_every_store(|h| async move {
        // A connection whose default queue does not exist: logging works, storing the ticket
        // cannot.
        let broken = Connection {
            default_queue_id: Some(QueueId(987_654)),
            ..h.web.clone()
        };
        let handled = h
            .deliver(&broken, InboundEvent::Message(message("x1", "v_ana", "oi")))
            .await?;
        let error = match &handled {
            Handled::Failed { error, .. } => error.clone(),
            other => panic!("expected a failure, got {other:?}"),
        };
        assert!(!error.is_empty());
        assert_eq!(
            h.log_of(&handled).await?,
            (InboundOutcome::Failed, Some(error))
        );
        assert!(
            atende_db::ingest::find_contact(h.db(), h.tenant, ChannelKind::Webchat, "v_ana")
                .await?
                .is_some(),
            "the contact came before the failing step"
        );
        Ok(())
    })
    .await
}
