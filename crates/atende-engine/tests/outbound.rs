//! The sender against a scripted adapter (SPEC §7), on every backend: strict order per chat under
//! retries, the retry limit and resend, unknown outcomes never repeated, the cadence gap of one
//! connection without slowing another, `fast_send`, and a rate limit that pauses one connection.

mod support;

use atende_channels::ChannelError;
use atende_db::testing::TestDb;
use atende_domain::{ChannelKind, MessageStatus};
use atende_engine::outbound::SenderConfig;
use serde_json::json;
use std::time::Duration;
use support::{Call, fixture};

fn config() -> SenderConfig {
    SenderConfig {
        max_attempts: 3,
        backoff_base_ms: 200,
        backoff_max_ms: 400,
        max_idle: Duration::from_millis(50),
        ..SenderConfig::default()
    }
}

fn bodies(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.body.as_str()).collect()
}

#[tokio::test]
async fn a_chat_keeps_its_order_under_retries_and_other_chats_go_on() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        let chat = f.ticket(&site, "visitor-1").await;
        let other = f.ticket(&site, "visitor-2").await;
        let temporary = || ChannelError::Temporary("503 from the provider".into());
        f.transport.plan("m1", vec![temporary(), temporary()]);
        let m1 = f.reply(&chat, "m1").await;
        let m2 = f.reply(&chat, "m2").await;
        let m3 = f.reply(&chat, "m3").await;
        let elsewhere = f.reply(&other, "elsewhere").await;
        for id in [m1, m2, m3, elsewhere] {
            f.wait(id, MessageStatus::Sent).await;
        }
        let calls = f.transport.calls();
        let in_chat: Vec<&Call> = calls.iter().filter(|c| c.chat == "visitor-1").collect();
        assert_eq!(
            in_chat
                .iter()
                .map(|c| (c.body.as_str(), c.ok))
                .collect::<Vec<_>>(),
            vec![
                ("m1", false),
                ("m1", false),
                ("m1", true),
                ("m2", true),
                ("m3", true)
            ],
            "{}: nothing of the chat goes while m1 is retried",
            store.name
        );
        let done = |body: &str| calls.iter().find(|c| c.ok && c.body == body).map(|c| c.at);
        assert!(
            done("elsewhere") < done("m1"),
            "{}: another chat is not held up by m1's retries",
            store.name
        );
    }
}

#[tokio::test]
async fn a_temporary_failure_past_the_limit_fails_with_the_reason_and_can_be_resent() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(
            &store,
            SenderConfig {
                max_attempts: 2,
                backoff_base_ms: 20,
                backoff_max_ms: 40,
                ..config()
            },
        )
        .await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        let chat = f.ticket(&site, "visitor-1").await;
        let temporary = || ChannelError::Temporary("503 from the provider".into());
        f.transport.plan("oi", vec![temporary(), temporary()]);
        let id = f.reply(&chat, "oi").await;
        f.wait(id, MessageStatus::Failed).await;
        let (_, reason) = f.status(id).await;
        assert!(
            reason.as_deref().is_some_and(|r| r.contains("503")),
            "{}: the provider's reason is kept: {reason:?}",
            store.name
        );
        assert_eq!(
            f.transport.calls().len(),
            2,
            "{}: two tries, then failed",
            store.name
        );

        let again = f
            .engine
            .resend(&f.admin, chat.id, id)
            .await
            .expect("resend");
        assert_eq!(again.status, MessageStatus::Queued);
        f.wait(id, MessageStatus::Sent).await;
        assert_eq!(
            f.status(id).await.1,
            None,
            "{}: the reason is cleared",
            store.name
        );
        assert!(
            f.engine.resend(&f.admin, chat.id, id).await.is_err(),
            "{}: a sent message is not resent",
            store.name
        );
    }
}

#[tokio::test]
async fn a_send_with_an_unknown_outcome_stays_sending_and_is_not_repeated() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        let chat = f.ticket(&site, "visitor-1").await;
        f.transport.plan(
            "talvez",
            vec![ChannelError::OutcomeUnknown(
                "timeout after the request went out".into(),
            )],
        );
        let maybe = f.reply(&chat, "talvez").await;
        let next = f.reply(&chat, "depois").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, reason) = f.status(maybe).await;
        assert_eq!(
            status,
            MessageStatus::Sending,
            "{}: flagged, still sending",
            store.name
        );
        assert!(reason.is_some_and(|r| r.contains("timeout")));
        assert_eq!(
            bodies(&f.transport.calls()),
            vec!["talvez"],
            "{}: tried once; the next message of the chat waits",
            store.name
        );
        assert_eq!(f.status(next).await.0, MessageStatus::Queued);
    }
}

#[tokio::test]
async fn cadence_keeps_the_minimum_gap_per_connection_without_slowing_another() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        // Unofficial WhatsApp is cadenced by default.
        // Gaps wide enough that scheduling noise on a loaded machine stays well inside them.
        let a = f.connection(ChannelKind::Evolution, Some((400, 450))).await;
        let b = f.connection(ChannelKind::Evolution, Some((400, 450))).await;
        let mut tickets = Vec::new();
        for n in 0..3 {
            for connection in [&a, &b] {
                let chat = format!("chat-{}-{n}", connection.id);
                tickets.push(f.ticket(connection, &chat).await);
            }
        }
        let mut ids = Vec::new();
        for (n, ticket) in tickets.iter().enumerate() {
            ids.push(f.reply(ticket, &format!("msg {n}")).await);
        }
        for id in ids {
            f.wait(id, MessageStatus::Sent).await;
        }
        let sent_a = f.transport.successes(a.id);
        let sent_b = f.transport.successes(b.id);
        assert_eq!((sent_a.len(), sent_b.len()), (3, 3));
        for sends in [&sent_a, &sent_b] {
            for pair in sends.windows(2) {
                let gap = pair[1].at.duration_since(pair[0].at);
                assert!(
                    gap >= Duration::from_millis(398),
                    "{}: sends of one connection keep the gap: {gap:?}",
                    store.name
                );
            }
        }
        let start_gap = if sent_b[0].at > sent_a[0].at {
            sent_b[0].at.duration_since(sent_a[0].at)
        } else {
            sent_a[0].at.duration_since(sent_b[0].at)
        };
        // Held behind a, b's first send would come at least a's minimum gap (400 ms) later.
        assert!(
            start_gap < Duration::from_millis(400),
            "{}: connection b does not wait for a: {start_gap:?}",
            store.name
        );
    }
}

#[tokio::test]
async fn fast_send_lets_interactive_replies_skip_the_cadence() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        f.set("fast_send", json!(true)).await;
        let a = f.connection(ChannelKind::Evolution, Some((300, 400))).await;
        let mut ids = Vec::new();
        for n in 0..3 {
            let ticket = f.ticket(&a, &format!("chat-{n}")).await;
            ids.push(f.reply(&ticket, &format!("msg {n}")).await);
        }
        for id in ids {
            f.wait(id, MessageStatus::Sent).await;
        }
        let sent = f.transport.successes(a.id);
        let span = sent[2].at.duration_since(sent[0].at);
        assert!(
            span < Duration::from_millis(300),
            "{}: agent replies are not held by the cadence: {span:?}",
            store.name
        );
    }
}

#[tokio::test]
async fn a_rate_limit_pauses_only_that_connection() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        let a = f.connection(ChannelKind::Webchat, None).await;
        let b = f.connection(ChannelKind::Webchat, None).await;
        let a1 = f.ticket(&a, "a-1").await;
        let a2 = f.ticket(&a, "a-2").await;
        let b1 = f.ticket(&b, "b-1").await;
        f.transport.plan(
            "limited",
            vec![ChannelError::RateLimited {
                retry_after_ms: 1_000,
            }],
        );
        let limited = f.reply(&a1, "limited").await;
        for _ in 0..200 {
            if !f.transport.calls().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let refused_at = f.transport.calls()[0].at;
        // Let the worker take in the answer before more work arrives.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let same_connection = f.reply(&a2, "same connection").await;
        let other_connection = f.reply(&b1, "other connection").await;
        for id in [limited, same_connection, other_connection] {
            f.wait(id, MessageStatus::Sent).await;
        }
        let calls = f.transport.calls();
        let at = |body: &str| {
            calls
                .iter()
                .find(|c| c.ok && c.body == body)
                .map(|c| c.at.duration_since(refused_at))
                .expect("sent")
        };
        assert!(
            at("other connection") < Duration::from_millis(700),
            "{}: another connection is not paused: {:?}",
            store.name,
            at("other connection")
        );
        assert!(
            at("same connection") >= Duration::from_millis(990),
            "{}: the connection waits the time asked: {:?}",
            store.name,
            at("same connection")
        );
        assert!(at("limited") >= Duration::from_millis(990));
    }
}

#[tokio::test]
async fn every_status_change_is_announced_in_order() {
    for store in TestDb::all().await.expect("stores") {
        // Only the bell wakes the sender here (no poll between the write and its announcement).
        let quiet = SenderConfig {
            max_idle: Duration::from_secs(10),
            ..config()
        };
        let f = fixture(&store, quiet).await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        let chat = f.ticket(&site, "visitor-1").await;
        let mut events = f.engine.events().subscribe(f.tenant);
        let id = f.reply(&chat, "olá").await;
        f.wait(id, MessageStatus::Sent).await;
        let mut seen = Vec::new();
        while let Ok(Ok(event)) =
            tokio::time::timeout(Duration::from_millis(200), events.recv()).await
        {
            let kind = serde_json::to_value(event.kind).expect("kind");
            let about_message = kind.as_str().is_some_and(|k| k.starts_with("message."));
            if about_message && event.data["id"].as_i64() == Some(id.0) {
                seen.push((kind, event.data["status"].clone()));
            }
            if seen.len() == 3 {
                break;
            }
        }
        assert_eq!(
            seen,
            vec![
                (json!("message.created"), json!("queued")),
                (json!("message.updated"), json!("sending")),
                (json!("message.updated"), json!("sent")),
            ],
            "{}",
            store.name
        );
    }
}

#[tokio::test]
async fn automatic_messages_queued_by_the_lifecycle_are_sent_too() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, config()).await;
        let site = f.connection(ChannelKind::Webchat, None).await;
        let chat = f.ticket(&site, "visitor-1").await;
        let id = atende_db::lifecycle::queue_absence_message(
            f.engine.db(),
            f.tenant,
            chat.id,
            "Estamos fora do horário",
            1,
            atende_domain::Timestamp::now(),
        )
        .await
        .expect("absence")
        .expect("queued");
        // Nobody rang the bell: the sender's poll finds it.
        f.wait(id, MessageStatus::Sent).await;
        let calls = f.transport.calls();
        assert_eq!(
            bodies(&calls),
            vec!["Estamos fora do horário"],
            "{}",
            store.name
        );
        assert_eq!(calls[0].chat, "visitor-1");
    }
}
