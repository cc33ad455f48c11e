//! Cadence as the provider sees it (SPEC §7, issue 4 item 8), on every backend: the recorded call
//! times of one cadenced connection keep its minimum gap, failed tries and retries included; a
//! busy connection does not slow another; and the order inside each chat holds while temporary
//! failures are retried on a paced connection. Gaps of 30–60 ms keep the tests quick.

mod support;

use atende_channels::ChannelError;
use atende_db::testing::TestDb;
use atende_domain::{ChannelKind, MessageStatus, Ticket, Timestamp};
use atende_engine::outbound::SenderConfig;
use serde_json::json;
use std::time::Duration;
use support::{Call, fixture, held, quick};

/// Slack for the instant the adapter records against the instant the sender starts the gap from.
const SLACK: Duration = Duration::from_millis(2);

fn temporary() -> ChannelError {
    ChannelError::Temporary("503 from the provider".into())
}

fn gaps(calls: &[Call]) -> Vec<Duration> {
    calls
        .windows(2)
        .map(|pair| pair[1].at.duration_since(pair[0].at))
        .collect()
}

fn successes_in(calls: &[Call], chat: &str) -> Vec<String> {
    calls
        .iter()
        .filter(|c| c.ok && c.chat == chat)
        .map(|c| c.body.clone())
        .collect()
}

fn index_of(calls: &[Call], body: &str) -> usize {
    calls
        .iter()
        .position(|c| c.ok && c.body == body)
        .unwrap_or(usize::MAX)
}

#[tokio::test]
async fn every_call_of_a_cadenced_connection_keeps_the_minimum_gap_retries_included() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, quick()).await;
        let paced = f.connection(ChannelKind::Evolution, Some((40, 60))).await;
        f.transport.plan("m1.0", vec![temporary()]);
        let mut ids = Vec::new();
        for chat in 0..3 {
            let ticket = f.ticket(&paced, &format!("chat-{chat}")).await;
            for n in 0..2 {
                ids.push(f.reply(&ticket, &format!("m{chat}.{n}")).await);
            }
        }
        for id in ids {
            f.wait(id, MessageStatus::Sent).await;
        }
        let calls = f.transport.calls_to(paced.id);
        assert_eq!(calls.len(), 7, "{}: six messages, one retried", store.name);
        for gap in gaps(&calls) {
            assert!(
                gap + SLACK >= Duration::from_millis(40),
                "{}: two calls {gap:?} apart, under the 40 ms minimum",
                store.name
            );
        }
    }
}

#[tokio::test]
async fn a_busy_cadenced_connection_does_not_slow_another() {
    for store in TestDb::all().await.expect("stores") {
        let mut f = held(&store, quick()).await;
        // Far apart, so the brisk pace stands out from the time a send itself takes on a busy
        // machine (a paced connection has one send in flight at a time).
        let slow = f.connection(ChannelKind::Evolution, Some((250, 250))).await;
        let brisk = f.connection(ChannelKind::Evolution, Some((30, 30))).await;
        let mut chats = Vec::new();
        for n in 0..4 {
            if n < 3 {
                chats.push((f.ticket(&slow, &format!("slow-{n}")).await, "slow"));
            }
            chats.push((f.ticket(&brisk, &format!("brisk-{n}")).await, "brisk"));
        }
        let mut ids = Vec::new();
        for (n, (ticket, name)) in chats.iter().enumerate() {
            ids.push(f.reply(ticket, &format!("{name} {n}")).await);
        }
        f.release();
        for id in ids {
            f.wait(id, MessageStatus::Sent).await;
        }
        let slow_calls = f.transport.calls_to(slow.id);
        let brisk_calls = f.transport.calls_to(brisk.id);
        assert_eq!((slow_calls.len(), brisk_calls.len()), (3, 4));
        for (calls, min) in [(&slow_calls, 250), (&brisk_calls, 30)] {
            for gap in gaps(calls) {
                assert!(
                    gap + SLACK >= Duration::from_millis(min),
                    "{}: {gap:?} under the connection's {min} ms",
                    store.name
                );
            }
        }
        // Paced with the slow connection, or taking turns with it, the brisk one could not
        // make its four sends while the slow one makes two gaps.
        assert!(
            brisk_calls[3].at < slow_calls[2].at,
            "{}: the brisk connection kept its own pace: {:?} against the slow one's {:?}",
            store.name,
            gaps(&brisk_calls),
            gaps(&slow_calls)
        );
    }
}

#[tokio::test]
async fn each_chat_keeps_its_order_under_retries_on_a_paced_connection() {
    for store in TestDb::all().await.expect("stores") {
        // A retry is due 60–120 ms after a failure, later than the connection's next free slot.
        let sender = SenderConfig {
            backoff_base_ms: 120,
            backoff_max_ms: 120,
            ..quick()
        };
        let mut f = held(&store, sender).await;
        let paced = f.connection(ChannelKind::Evolution, Some((30, 40))).await;
        let x = f.ticket(&paced, "x").await;
        let y = f.ticket(&paced, "y").await;
        f.transport.plan("x1", vec![temporary(), temporary()]);
        f.transport.plan("x3", vec![temporary()]);
        f.transport.plan("y2", vec![temporary()]);
        let mut ids = Vec::new();
        for n in 1..=4 {
            ids.push(f.reply(&x, &format!("x{n}")).await);
        }
        for n in 1..=3 {
            ids.push(f.reply(&y, &format!("y{n}")).await);
        }
        f.release();
        for id in ids {
            f.wait(id, MessageStatus::Sent).await;
        }
        let calls = f.transport.calls_to(paced.id);
        assert_eq!(
            successes_in(&calls, "x"),
            ["x1", "x2", "x3", "x4"],
            "{}",
            store.name
        );
        assert_eq!(
            successes_in(&calls, "y"),
            ["y1", "y2", "y3"],
            "{}",
            store.name
        );
        for chat in ["x", "y"] {
            let tries: Vec<&str> = calls
                .iter()
                .filter(|c| c.chat == chat)
                .map(|c| c.body.as_str())
                .collect();
            let mut sorted = tries.clone();
            sorted.sort_unstable();
            assert_eq!(
                tries, sorted,
                "{}: nothing of chat {chat} is tried before its earlier message is sent",
                store.name
            );
        }
        assert!(
            index_of(&calls, "y1") < index_of(&calls, "x1"),
            "{}: chat y goes on while x1 waits for its retry",
            store.name
        );
        for gap in gaps(&calls) {
            assert!(
                gap + SLACK >= Duration::from_millis(30),
                "{}: retries keep the connection's gap too: {gap:?}",
                store.name
            );
        }
    }
}

#[tokio::test]
async fn automatic_messages_keep_the_cadence_unless_fast_send() {
    for store in TestDb::all().await.expect("stores") {
        let f = fixture(&store, quick()).await;
        // A wide gap, so a loaded machine cannot make fast sends look paced.
        let paced = f.connection(ChannelKind::Evolution, Some((300, 300))).await;
        let mut chats = Vec::new();
        for n in 0..6 {
            chats.push(f.ticket(&paced, &format!("chat-{n}")).await);
        }
        // Absence messages, queued back to back by the automations (which ring the sender).
        let absences = |tickets: &[Ticket]| {
            let tickets = tickets.to_vec();
            let f = &f;
            async move {
                let mut ids = Vec::new();
                for ticket in &tickets {
                    let queued = atende_db::lifecycle::queue_absence_message(
                        f.engine.db(),
                        f.tenant,
                        ticket.id,
                        "Estamos fora do horário",
                        1,
                        Timestamp::now(),
                    )
                    .await
                    .expect("absence");
                    ids.push(queued.expect("queued"));
                }
                f.engine.outbound().wake();
                for id in &ids {
                    f.wait(*id, MessageStatus::Sent).await;
                }
            }
        };
        absences(&chats[..3]).await;
        let paced_calls = f.transport.calls_to(paced.id);
        assert_eq!(paced_calls.len(), 3);
        for gap in gaps(&paced_calls) {
            assert!(
                gap + SLACK >= Duration::from_millis(300),
                "{}: automatic messages wait the gap: {gap:?}",
                store.name
            );
        }

        f.set("fast_send", json!(true)).await;
        absences(&chats[3..]).await;
        let all = f.transport.calls_to(paced.id);
        let fast_calls = &all[paced_calls.len()..];
        let span = fast_calls[2].at.duration_since(fast_calls[0].at);
        assert!(
            span < Duration::from_millis(300),
            "{}: with fast_send automatic messages skip the 2 × 300 ms: {span:?}",
            store.name
        );
    }
}
