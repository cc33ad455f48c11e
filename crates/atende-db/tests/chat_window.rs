//! What the store tells the WhatsApp Business window rule (SPEC §7), on SQLite and, with
//! `TEST_DATABASE_URL`, on PostgreSQL: the contact's last message on the connection (by the
//! provider's time, over all of the contact's tickets there, never another connection's or ours),
//! whether a template went out in the ticket's current cycle, and the template call of a message.

use atende_db::connections::{self, NewConnection};
use atende_db::contacts::{self, NewContact};
use atende_db::ingest::{self, IngestInput, IngestMessage, IngestOutcome, NewTicketRoute};
use atende_db::outbox::{self, NewReply, Queued};
use atende_db::testing::TestDb;
use atende_db::{Db, DbError, templates, tenants, tickets, users};
use atende_domain::{
    ChannelKind, ConnectionId, ContactId, Message, MessageAuthor, MessageDirection, MessageId,
    MessageKind, MessageStatus, NameSource, Profile, TenantId, Ticket, TicketStatus, Timestamp,
    UserId,
};
use serde_json::json;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const HOUR_MS: i64 = 60 * 60 * 1000;

struct World {
    db: Db,
    tenant: TenantId,
    agent: UserId,
    contact: ContactId,
    now: Timestamp,
}

async fn connection(db: &Db, tenant: TenantId, name: &str) -> Result<ConnectionId> {
    let created = connections::create(
        db,
        tenant,
        &NewConnection {
            kind: ChannelKind::WhatsappCloud,
            name: name.into(),
            default_queue_id: None,
            default_flow_id: None,
            public_key: None,
            credentials: None,
            send_delay_min_ms: None,
            send_delay_max_ms: None,
            cadence_enabled: None,
        },
    )
    .await?;
    Ok(created.id)
}

impl World {
    async fn new(db: Db) -> Result<World> {
        let tenant = tenants::platform_create(&db, "acme", "Acme").await?.id;
        let agent = users::create(
            &db,
            tenant,
            &users::NewUser {
                email: "ana@acme.test".into(),
                name: "Ana".into(),
                password_hash: "x".into(),
                profile: Profile::Admin,
                ..Default::default()
            },
        )
        .await?
        .id;
        let contact = contacts::create(
            &db,
            tenant,
            &NewContact {
                name: "Cliente".into(),
                name_source: NameSource::Manual,
                phone: None,
                email: None,
                avatar_url: None,
                blocked: false,
                is_group: false,
                custom_fields: json!({}),
                identities: vec![(ChannelKind::WhatsappCloud, "5511900000001".into())],
                wallet_user_ids: vec![],
                tag_ids: vec![],
            },
        )
        .await?
        .id;
        Ok(World {
            db,
            tenant,
            agent,
            contact,
            now: Timestamp::now(),
        })
    }

    /// A message of the contact on `connection`, stamped by the provider `hours_ago` hours ago.
    async fn inbound(&self, connection: ConnectionId, hours_ago: i64, id: &str) -> Result<Ticket> {
        let input = IngestInput {
            contact_id: self.contact,
            connection_id: connection,
            is_group: false,
            reopen_window_minutes: 60,
            route: Some(NewTicketRoute {
                status: TicketStatus::Pending,
                owner_id: None,
                queue_id: None,
                bot_flow: None,
                wallet_overflowed: false,
            }),
            message: IngestMessage {
                direction: MessageDirection::In,
                author: MessageAuthor::Contact,
                kind: MessageKind::Text,
                body: "Oi".into(),
                media: None,
                provider_id: Some(id.into()),
                quoted_provider_id: None,
                status: MessageStatus::Delivered,
                sent_at: self.now.plus_millis(-hours_ago * HOUR_MS),
            },
            inbound_event: None,
            now: self.now,
        };
        match ingest::ingest(&self.db, self.tenant, &input).await? {
            IngestOutcome::Stored(stored) => Ok(stored.ticket),
            other => Err(format!("not stored: {other:?}").into()),
        }
    }

    async fn queue(&self, ticket: &Ticket, key: &str, template: Option<&str>) -> Result<Message> {
        let reply = NewReply {
            ticket_id: ticket.id,
            author_user_id: self.agent,
            kind: if template.is_some() {
                MessageKind::Template
            } else {
                MessageKind::Text
            },
            body: "Olá".into(),
            signature: String::new(),
            media: None,
            quoted_id: None,
            idempotency_key: key.into(),
            template_call: template.map(str::to_owned),
            auto_resolve_due: None,
            now: Timestamp::now(),
        };
        match outbox::queue_reply(&self.db, self.tenant, &reply).await? {
            Queued::Created(queued) => Ok(queued.message),
            Queued::Existing(_) => Err("the key was used before".into()),
        }
    }
}

async fn chat_window_story(db: Db) -> Result {
    let w = World::new(db).await?;
    let waba = connection(&w.db, w.tenant, "WABA").await?;
    let other = connection(&w.db, w.tenant, "Outro número").await?;
    let ticket = w.inbound(waba, 30, "wamid.1").await?;
    w.inbound(other, 1, "wamid.2").await?;
    let window = templates::chat_window(&w.db, w.tenant, ticket.id).await?;
    assert_eq!(
        window.last_inbound_at,
        Some(w.now.plus_millis(-30 * HOUR_MS)),
        "the other connection's message does not count"
    );
    assert!(!window.template_in_cycle);

    // Our own message and a late delivery of an older one move nothing.
    w.queue(&ticket, "free-1", None).await?;
    w.inbound(waba, 40, "wamid.3").await?;
    let window = templates::chat_window(&w.db, w.tenant, ticket.id).await?;
    assert_eq!(
        window.last_inbound_at,
        Some(w.now.plus_millis(-30 * HOUR_MS))
    );

    let call = r#"{"name":"retorno","language":"pt_BR","params":[]}"#;
    let template = w.queue(&ticket, "tpl-1", Some(call)).await?;
    assert!(
        templates::chat_window(&w.db, w.tenant, ticket.id)
            .await?
            .template_in_cycle
    );
    assert_eq!(
        templates::call_of(&w.db, w.tenant, template.id).await?,
        Some(call.to_owned())
    );
    let free = w.queue(&ticket, "free-2", None).await?;
    assert_eq!(templates::call_of(&w.db, w.tenant, free.id).await?, None);
    assert!(matches!(
        templates::call_of(&w.db, w.tenant, MessageId(i64::MAX)).await,
        Err(DbError::NotFound)
    ));

    // Closed and reopened: a new cycle has sent no template yet.
    let later = Timestamp::now();
    tickets::set_status(
        &w.db,
        w.tenant,
        ticket.id,
        TicketStatus::Closed,
        None,
        None,
        later,
    )
    .await?;
    tickets::set_status(
        &w.db,
        w.tenant,
        ticket.id,
        TicketStatus::Open,
        Some(w.agent),
        None,
        later,
    )
    .await?;
    assert!(
        !templates::chat_window(&w.db, w.tenant, ticket.id)
            .await?
            .template_in_cycle
    );

    // A ticket an agent opens for the contact has no message of its own: the contact's last one
    // on the connection, from the earlier ticket, still counts.
    tickets::set_status(
        &w.db,
        w.tenant,
        ticket.id,
        TicketStatus::Closed,
        None,
        None,
        later,
    )
    .await?;
    let fresh = tickets::create(
        &w.db,
        w.tenant,
        &tickets::NewTicket {
            contact_id: w.contact,
            connection_id: waba,
            status: TicketStatus::Open,
            owner_id: Some(w.agent),
            queue_id: None,
            is_group: false,
        },
    )
    .await?;
    let window = templates::chat_window(&w.db, w.tenant, fresh.id).await?;
    assert_eq!(
        window.last_inbound_at,
        Some(w.now.plus_millis(-30 * HOUR_MS))
    );
    assert!(matches!(
        templates::chat_window(&w.db, TenantId(i64::MAX), fresh.id).await,
        Err(DbError::NotFound)
    ));
    Ok(())
}

#[tokio::test]
async fn the_chat_window_reads_the_contacts_last_message_and_this_cycles_template() -> Result {
    Ok(TestDb::on_every_store(chat_window_story).await?)
}

/// What an agent's reply reads about its ticket in one round trip, and the reply's write: the
/// ticket as the write left it and the auto-resolve due time the engine computed.
async fn reply_context_story(db: Db) -> Result {
    let w = World::new(db).await?;
    let waba = connection(&w.db, w.tenant, "WABA").await?;
    let ticket = w.inbound(waba, 1, "wamid.ctx").await?;
    let second = users::create(
        &w.db,
        w.tenant,
        &users::NewUser {
            email: "bia@acme.test".into(),
            name: "Bia".into(),
            password_hash: "x".into(),
            profile: Profile::User,
            ..Default::default()
        },
    )
    .await?
    .id;
    contacts::set_wallet(&w.db, w.tenant, w.contact, &[second, w.agent]).await?;
    outbox::set_signature_disabled(&w.db, w.tenant, ticket.id, true).await?;

    let chat = outbox::reply_context(&w.db, w.tenant, ticket.id).await?;
    assert_eq!(chat.ticket, tickets::get(&w.db, w.tenant, ticket.id).await?);
    assert!(chat.signature_disabled);
    assert_eq!(chat.channel, ChannelKind::WhatsappCloud);
    assert_eq!(
        chat.wallet,
        vec![second, w.agent],
        "the wallet's order is kept"
    );
    let cycles = tickets::cycles(&w.db, w.tenant, ticket.id).await?;
    let opened = cycles.last().map(|c| c.opened_at).ok_or("no cycle")?;
    assert_eq!(chat.cycle_opened_at, opened);

    // The write answers the ticket as it left it and stores the due time it was given.
    let due = Timestamp(w.now.0 + HOUR_MS);
    let mut reply = NewReply {
        ticket_id: ticket.id,
        author_user_id: w.agent,
        kind: MessageKind::Text,
        body: "Olá".into(),
        signature: String::new(),
        media: None,
        quoted_id: None,
        idempotency_key: "ctx-1".into(),
        template_call: None,
        auto_resolve_due: Some(Some(due)),
        now: Timestamp::now(),
    };
    let Queued::Created(written) = outbox::queue_reply(&w.db, w.tenant, &reply).await? else {
        return Err("the first reply was not written".into());
    };
    assert_eq!(
        written.ticket,
        tickets::get(&w.db, w.tenant, ticket.id).await?
    );
    assert_eq!(written.ticket.last_message, "Olá");
    assert_eq!(written.message.ticket_id, ticket.id);
    let facts = atende_db::lifecycle::automation_facts(&w.db, w.tenant, ticket.id).await?;
    assert_eq!(facts.auto_resolve_due_at, Some(due));

    // `None` leaves the due time alone; `Some(None)` clears it.
    reply.idempotency_key = "ctx-2".into();
    reply.auto_resolve_due = None;
    outbox::queue_reply(&w.db, w.tenant, &reply).await?;
    let facts = atende_db::lifecycle::automation_facts(&w.db, w.tenant, ticket.id).await?;
    assert_eq!(facts.auto_resolve_due_at, Some(due));
    reply.idempotency_key = "ctx-3".into();
    reply.auto_resolve_due = Some(None);
    outbox::queue_reply(&w.db, w.tenant, &reply).await?;
    let facts = atende_db::lifecycle::automation_facts(&w.db, w.tenant, ticket.id).await?;
    assert_eq!(facts.auto_resolve_due_at, None);

    // Another tenant's id, or no such ticket: not found.
    let other = tenants::platform_create(&w.db, "outra", "Outra").await?.id;
    for (tenant, id) in [
        (other, ticket.id),
        (w.tenant, atende_domain::TicketId(i64::MAX)),
    ] {
        assert!(matches!(
            outbox::reply_context(&w.db, tenant, id).await,
            Err(DbError::NotFound)
        ));
    }
    Ok(())
}

#[tokio::test]
async fn a_reply_reads_its_ticket_in_one_go_and_writes_the_due_time_it_was_given() -> Result {
    Ok(TestDb::on_every_store(reply_context_story).await?)
}
