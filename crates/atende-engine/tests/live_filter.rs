//! The live push reaches exactly the users allowed to see the ticket (SPEC §4 step 7, §5): the
//! pure filter `live_filter::deliver` applied to events as the engine publishes them.

use atende_domain::visibility::{Plan, TicketFacts, Viewer, VisibilitySettings};
use atende_domain::{Profile, QueueId, TenantId, TicketId, TicketStatus, Timestamp, UserId};
use atende_engine::events::{Audience, Event, EventKind};
use atende_engine::live_filter::{Frame, LiveViewer, deliver};
use serde_json::{Value, json};
use std::sync::Arc;

const SALES: QueueId = QueueId(1);
const SUPPORT: QueueId = QueueId(2);
const AGENT: UserId = UserId(10);
const OTHER_AGENT: UserId = UserId(11);
const ADMIN: UserId = UserId(1);

fn viewer(
    user: UserId,
    profile: Profile,
    queues: &[QueueId],
    settings: VisibilitySettings,
    spy: bool,
) -> LiveViewer {
    let viewer = Viewer {
        user_id: user,
        profile,
        queue_ids: queues.to_vec(),
    };
    LiveViewer::new(Plan::for_viewer(&viewer, &settings, true), settings, spy)
}

fn agent_of_sales() -> LiveViewer {
    viewer(
        AGENT,
        Profile::User,
        &[SALES],
        VisibilitySettings::default(),
        false,
    )
}

fn admin() -> LiveViewer {
    viewer(
        ADMIN,
        Profile::Admin,
        &[],
        VisibilitySettings::default(),
        false,
    )
}

fn ticket(status: TicketStatus, queue: Option<QueueId>, owner: Option<UserId>) -> TicketFacts {
    TicketFacts {
        status,
        owner_id: owner,
        queue_id: queue,
        is_group: false,
        bot_active: false,
        wallet_overflowed: false,
        wallet_owner_ids: Vec::new(),
    }
}

fn event(kind: EventKind, data: Value, audience: Audience) -> Arc<Event> {
    Arc::new(Event {
        id: 42,
        tenant: TenantId(1),
        kind,
        at: Timestamp(1_700_000_000_000),
        data,
        audience,
    })
}

fn about_ticket(kind: EventKind, facts: TicketFacts, before: Option<TicketFacts>) -> Arc<Event> {
    event(
        kind,
        json!({"id": 7, "status": "open"}),
        Audience::Ticket {
            ticket_id: TicketId(7),
            facts,
            before,
        },
    )
}

fn message(facts: TicketFacts) -> Arc<Event> {
    event(
        EventKind::MessageCreated,
        json!({"id": 99, "ticket_id": 7, "body": "meu CPF é 123", "direction": "in", "sent_at": 5, "created_at": 6}),
        Audience::Ticket {
            ticket_id: TicketId(7),
            facts,
            before: None,
        },
    )
}

fn wire(frame: Option<Frame>) -> Option<Value> {
    frame.map(|f| serde_json::from_str(&f.to_json()).unwrap_or(Value::Null))
}

#[test]
fn ticket_event_in_my_queue_reaches_me_and_the_admin_as_published() {
    let sent = about_ticket(
        EventKind::TicketCreated,
        ticket(TicketStatus::Pending, Some(SALES), None),
        None,
    );
    for viewer in [agent_of_sales(), admin()] {
        let frame = wire(deliver(&viewer, &sent));
        assert_eq!(
            frame,
            Some(
                json!({"id": 42, "type": "ticket.created", "at": 1_700_000_000_000_i64, "data": {"id": 7, "status": "open"}})
            )
        );
    }
}

#[test]
fn ticket_event_of_another_queue_reaches_only_the_admin() {
    let sent = about_ticket(
        EventKind::TicketUpdated,
        ticket(TicketStatus::Open, Some(SUPPORT), None),
        None,
    );
    assert!(deliver(&agent_of_sales(), &sent).is_none());
    assert!(deliver(&admin(), &sent).is_some());
}

#[test]
fn transfer_out_of_my_queue_tells_me_to_drop_the_ticket() {
    let before = ticket(TicketStatus::Pending, Some(SALES), None);
    let after = ticket(TicketStatus::Pending, Some(SUPPORT), None);
    let sent = about_ticket(EventKind::TicketUpdated, after, Some(before));
    assert_eq!(
        wire(deliver(&agent_of_sales(), &sent)),
        Some(
            json!({"id": 42, "type": "ticket.hidden", "at": 1_700_000_000_000_i64, "data": {"ticket_id": 7}})
        )
    );
    // The admin still sees it: the full event.
    assert_eq!(
        wire(deliver(&admin(), &sent)).map(|f| f["type"].clone()),
        Some(json!("ticket.updated"))
    );
    // An agent of the target queue gets the ticket itself.
    let support_agent = viewer(
        OTHER_AGENT,
        Profile::User,
        &[SUPPORT],
        VisibilitySettings::default(),
        false,
    );
    assert_eq!(
        wire(deliver(&support_agent, &sent)).map(|f| f["type"].clone()),
        Some(json!("ticket.updated"))
    );
}

#[test]
fn a_ticket_i_never_saw_and_still_do_not_see_is_not_mentioned() {
    let before = ticket(TicketStatus::Pending, Some(SUPPORT), None);
    let after = ticket(TicketStatus::Open, Some(SUPPORT), Some(OTHER_AGENT));
    let sent = about_ticket(EventKind::TicketStatusChanged, after, Some(before));
    assert!(deliver(&agent_of_sales(), &sent).is_none());
}

#[test]
fn someone_elses_ticket_hides_live_when_hide_others_tickets() {
    let settings = VisibilitySettings {
        hide_others_tickets: true,
        ..VisibilitySettings::default()
    };
    let me = viewer(AGENT, Profile::User, &[SALES], settings, false);
    let before = ticket(TicketStatus::Pending, Some(SALES), None);
    let accepted = ticket(TicketStatus::Open, Some(SALES), Some(OTHER_AGENT));
    let sent = about_ticket(EventKind::TicketStatusChanged, accepted, Some(before));
    assert!(matches!(
        deliver(&me, &sent),
        Some(Frame::Hidden {
            ticket_id: TicketId(7),
            ..
        })
    ));
}

#[test]
fn pending_message_body_is_stripped_for_a_user_without_spy() {
    let sent = message(ticket(TicketStatus::Pending, Some(SALES), None));
    let frame = wire(deliver(&agent_of_sales(), &sent)).unwrap_or(Value::Null);
    assert_eq!(
        frame["type"], "message.created",
        "the panel still counts it"
    );
    assert_eq!(
        frame["data"],
        json!({"id": 99, "ticket_id": 7, "sent_at": 5, "created_at": 6, "redacted": true})
    );
}

#[test]
fn pending_message_body_reaches_users_with_spy_and_the_admin() {
    let sent = message(ticket(TicketStatus::Pending, Some(SALES), None));
    let spy = viewer(
        AGENT,
        Profile::User,
        &[SALES],
        VisibilitySettings::default(),
        true,
    );
    for viewer in [spy, admin()] {
        let frame = wire(deliver(&viewer, &sent)).unwrap_or(Value::Null);
        assert_eq!(frame["data"]["body"], "meu CPF é 123");
    }
}

#[test]
fn message_of_my_open_ticket_arrives_whole() {
    let sent = message(ticket(TicketStatus::Open, Some(SALES), Some(AGENT)));
    let frame = wire(deliver(&agent_of_sales(), &sent)).unwrap_or(Value::Null);
    assert_eq!(frame["data"]["body"], "meu CPF é 123");
}

#[test]
fn message_of_a_ticket_i_cannot_see_does_not_arrive() {
    let sent = message(ticket(TicketStatus::Open, Some(SUPPORT), Some(OTHER_AGENT)));
    assert!(deliver(&agent_of_sales(), &sent).is_none());
}

#[test]
fn tenant_events_reach_everyone_and_user_events_only_their_user() {
    let presence = event(
        EventKind::Presence,
        json!({"user_id": 11, "presence": "online"}),
        Audience::Tenant,
    );
    assert!(deliver(&agent_of_sales(), &presence).is_some());
    assert!(deliver(&admin(), &presence).is_some());
    let private = event(EventKind::TicketUpdated, json!({}), Audience::User(AGENT));
    assert!(deliver(&agent_of_sales(), &private).is_some());
    assert!(deliver(&admin(), &private).is_none());
}
