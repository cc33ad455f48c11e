//! The WhatsApp Business 24 h window at the sender (SPEC §7), on every backend: automatic
//! messages go out inside the window and fail with the reason outside it, never reaching the
//! provider; a template reaches the adapter as its call, and with `waba_send_outside_window` it
//! lets later messages of the cycle be attempted.

mod support;

use atende_db::ingest::{self, IngestInput, IngestMessage, IngestOutcome};
use atende_db::templates::{self, NewTemplate};
use atende_domain::delivery::WINDOW_CLOSED;
use atende_domain::template::TemplateCall;
use atende_domain::{
    ChannelKind, Connection, MessageAuthor, MessageDirection, MessageId, MessageKind,
    MessageStatus, Ticket, Timestamp,
};
use atende_engine::outbound::TemplateInput;
use serde_json::json;
use support::{Fixture, fixture, quick};

const HOUR_MS: i64 = 60 * 60 * 1000;

/// The contact of `ticket` wrote, stamped by the provider `hours_ago` hours ago.
async fn inbound(f: &Fixture, connection: &Connection, ticket: &Ticket, hours_ago: i64) {
    let now = Timestamp::now();
    let input = IngestInput {
        contact_id: ticket.contact_id,
        connection_id: connection.id,
        is_group: false,
        reopen_window_minutes: 0,
        route: None,
        message: IngestMessage {
            direction: MessageDirection::In,
            author: MessageAuthor::Contact,
            kind: MessageKind::Text,
            body: "Oi".into(),
            media: None,
            provider_id: Some(format!("wamid.{}.{hours_ago}", ticket.id)),
            quoted_provider_id: None,
            status: MessageStatus::Delivered,
            sent_at: now.plus_millis(-hours_ago * HOUR_MS),
        },
        inbound_event: None,
        now,
    };
    let stored = ingest::ingest(f.engine.db(), f.tenant, &input)
        .await
        .expect("inbound");
    assert!(matches!(stored, IngestOutcome::Stored(_)), "{stored:?}");
}

async fn absence(f: &Fixture, ticket: &Ticket) -> MessageId {
    let id = atende_db::lifecycle::queue_absence_message(
        f.engine.db(),
        f.tenant,
        ticket.id,
        &format!("Fora do horário ({})", ticket.id),
        10,
        Timestamp::now(),
    )
    .await
    .expect("absence")
    .expect("queued");
    f.engine.outbound().wake();
    id
}

#[tokio::test]
async fn automatic_messages_go_out_inside_the_window_and_fail_outside_it_unsent() {
    for store in atende_db::testing::TestDb::all().await.expect("stores") {
        let f = fixture(&store, quick()).await;
        let waba = f.connection(ChannelKind::WhatsappCloud, None).await;
        let recent = f.ticket(&waba, "5511900000001").await;
        let old = f.ticket(&waba, "5511900000002").await;
        let silent = f.ticket(&waba, "5511900000003").await;
        inbound(&f, &waba, &recent, 1).await;
        inbound(&f, &waba, &old, 25).await;

        let sent = absence(&f, &recent).await;
        let refused = absence(&f, &old).await;
        let never_wrote = absence(&f, &silent).await;
        f.wait(sent, MessageStatus::Sent).await;
        for id in [refused, never_wrote] {
            f.wait(id, MessageStatus::Failed).await;
            assert_eq!(
                f.status(id).await.1.as_deref(),
                Some(WINDOW_CLOSED),
                "{}",
                store.name
            );
        }
        let chats: Vec<String> = f.transport.calls().into_iter().map(|c| c.chat).collect();
        assert_eq!(
            chats,
            ["5511900000001"],
            "{}: only the open chat reached the provider",
            store.name
        );
    }
}

#[tokio::test]
async fn a_template_reaches_the_provider_as_its_call_and_with_the_setting_opens_the_cycle() {
    for store in atende_db::testing::TestDb::all().await.expect("stores") {
        let f = fixture(&store, quick()).await;
        let waba = f.connection(ChannelKind::WhatsappCloud, None).await;
        templates::upsert(
            f.engine.db(),
            f.tenant,
            &NewTemplate {
                connection_id: waba.id,
                name: "retorno".into(),
                language: "pt_BR".into(),
                category: "UTILITY".into(),
                status: "APPROVED".into(),
                components: json!([{"type": "BODY", "text": "Olá {{1}}, podemos continuar?"}]),
            },
        )
        .await
        .expect("template");
        let old = f.ticket(&waba, "5511900000004").await;
        inbound(&f, &waba, &old, 30).await;
        f.set("waba_send_outside_window", json!(true)).await;

        let before = absence(&f, &old).await;
        f.wait(before, MessageStatus::Failed).await;

        let outcome = f
            .engine
            .send_template(
                &f.admin,
                old.id,
                TemplateInput {
                    name: "retorno".into(),
                    language: "pt_BR".into(),
                    params: vec!["Ana".into()],
                    idempotency_key: None,
                },
            )
            .await
            .expect("template");
        assert_eq!(outcome.message.kind, MessageKind::Template);
        assert_eq!(outcome.message.body, "Olá Ana, podemos continuar?");
        f.wait(outcome.message.id, MessageStatus::Sent).await;
        let after = absence(&f, &old).await;
        f.wait(after, MessageStatus::Sent).await;

        let calls = f.transport.calls();
        assert_eq!(
            calls.len(),
            2,
            "{}: the template, then the absence",
            store.name
        );
        let call: TemplateCall = serde_json::from_str(&calls[0].body).expect("a template call");
        assert_eq!(
            call,
            TemplateCall {
                name: "retorno".into(),
                language: "pt_BR".into(),
                params: vec!["Ana".into()],
            },
            "{}",
            store.name
        );
        assert_eq!(calls[1].body, format!("Fora do horário ({})", old.id));
    }
}
