use super::*;
use proptest::prelude::*;

const ME: UserId = UserId(1);
const OTHER: UserId = UserId(2);
const MY_QUEUE: QueueId = QueueId(10);
const OTHER_QUEUE: QueueId = QueueId(20);

fn agent() -> Viewer {
    Viewer {
        user_id: ME,
        profile: Profile::User,
        queue_ids: vec![MY_QUEUE],
    }
}

fn ticket() -> TicketFacts {
    TicketFacts {
        status: TicketStatus::Pending,
        owner_id: None,
        queue_id: Some(MY_QUEUE),
        is_group: false,
        bot_active: false,
        wallet_overflowed: false,
        wallet_owner_ids: Vec::new(),
    }
}

/// Checks the reference rule and the compiled plan together, so every table test covers both.
fn sees(viewer: &Viewer, ticket: &TicketFacts, settings: VisibilitySettings) -> bool {
    let reference = can_see(viewer, ticket, &settings, true);
    let planned = Plan::for_viewer(viewer, &settings, true).admits(ticket);
    assert_eq!(
        reference, planned,
        "plan and rule disagree for {viewer:?} {ticket:?} {settings:?}"
    );
    reference
}

#[test]
fn admin_sees_everything() {
    let admin = Viewer {
        profile: Profile::Admin,
        queue_ids: vec![],
        ..agent()
    };
    let hidden = TicketFacts {
        queue_id: Some(OTHER_QUEUE),
        owner_id: Some(OTHER),
        ..ticket()
    };
    let strict = VisibilitySettings {
        hide_others_tickets: true,
        hide_bot_tickets: true,
        ..Default::default()
    };
    assert!(sees(&admin, &hidden, strict));
}

#[test]
fn supervisor_sees_like_a_user_when_supervisor_sees_as_user() {
    let supervisor = Viewer {
        profile: Profile::Supervisor,
        ..agent()
    };
    let elsewhere = TicketFacts {
        queue_id: Some(OTHER_QUEUE),
        ..ticket()
    };
    assert!(sees(&supervisor, &elsewhere, VisibilitySettings::default()));
    let as_user = VisibilitySettings {
        supervisor_sees_as_user: true,
        ..Default::default()
    };
    assert!(!sees(&supervisor, &elsewhere, as_user));
}

#[test]
fn own_ticket_is_visible_even_in_another_queue() {
    let mine = TicketFacts {
        owner_id: Some(ME),
        queue_id: Some(OTHER_QUEUE),
        status: TicketStatus::Open,
        ..ticket()
    };
    assert!(sees(
        &agent(),
        &mine,
        VisibilitySettings {
            hide_others_tickets: true,
            ..Default::default()
        }
    ));
}

#[test]
fn ticket_of_another_queue_is_hidden() {
    assert!(!sees(
        &agent(),
        &TicketFacts {
            queue_id: Some(OTHER_QUEUE),
            ..ticket()
        },
        VisibilitySettings::default()
    ));
}

#[test]
fn ticket_without_queue_is_hidden_when_the_tenant_has_queues() {
    let no_queue = TicketFacts {
        queue_id: None,
        ..ticket()
    };
    assert!(!sees(&agent(), &no_queue, VisibilitySettings::default()));
    let settings = VisibilitySettings::default();
    assert!(
        can_see(&agent(), &no_queue, &settings, false),
        "a tenant without queues has no queue gate"
    );
    assert!(Plan::for_viewer(&agent(), &settings, false).admits(&no_queue));
}

#[test]
fn unassigned_ticket_is_visible_to_all_with_show_unassigned_to_all() {
    let unassigned = TicketFacts {
        queue_id: None,
        ..ticket()
    };
    let settings = VisibilitySettings {
        show_unassigned_to_all: true,
        hide_bot_tickets: true,
        ..Default::default()
    };
    assert!(sees(&agent(), &unassigned, settings));
    let closed = TicketFacts {
        status: TicketStatus::Closed,
        ..unassigned
    };
    assert!(
        !sees(&agent(), &closed, settings),
        "closed tickets are not 'unassigned work'"
    );
}

#[test]
fn group_ticket_is_visible_to_all_with_show_groups_to_all() {
    let group = TicketFacts {
        is_group: true,
        queue_id: Some(OTHER_QUEUE),
        ..ticket()
    };
    assert!(sees(
        &agent(),
        &group,
        VisibilitySettings {
            show_groups_to_all: true,
            ..Default::default()
        }
    ));
    assert!(!sees(&agent(), &group, VisibilitySettings::default()));
}

#[test]
fn closed_ticket_of_other_user_is_hidden_unless_show_closed_to_all() {
    let closed = TicketFacts {
        status: TicketStatus::Closed,
        owner_id: Some(OTHER),
        queue_id: Some(OTHER_QUEUE),
        ..ticket()
    };
    assert!(!sees(&agent(), &closed, VisibilitySettings::default()));
    assert!(sees(
        &agent(),
        &closed,
        VisibilitySettings {
            show_closed_to_all: true,
            ..Default::default()
        }
    ));
}

#[test]
fn bot_ticket_without_owner_is_hidden_from_users_when_hide_bot_tickets() {
    let bot = TicketFacts {
        bot_active: true,
        ..ticket()
    };
    assert!(sees(&agent(), &bot, VisibilitySettings::default()));
    assert!(!sees(
        &agent(),
        &bot,
        VisibilitySettings {
            hide_bot_tickets: true,
            ..Default::default()
        }
    ));
    let owned = TicketFacts {
        owner_id: Some(OTHER),
        ..bot
    };
    assert!(sees(
        &agent(),
        &owned,
        VisibilitySettings {
            hide_bot_tickets: true,
            ..Default::default()
        }
    ));
}

#[test]
fn wallet_ticket_is_hidden_from_non_owner_when_force_wallet_routing() {
    let wallet = TicketFacts {
        wallet_owner_ids: vec![OTHER],
        ..ticket()
    };
    let settings = VisibilitySettings {
        force_wallet_routing: true,
        ..Default::default()
    };
    assert!(!sees(&agent(), &wallet, settings));
    assert!(
        sees(&agent(), &wallet, VisibilitySettings::default()),
        "without the setting the wallet does not hide"
    );
}

#[test]
fn wallet_ticket_is_visible_to_owner_in_any_queue_when_force_wallet_routing() {
    let wallet = TicketFacts {
        wallet_owner_ids: vec![OTHER, ME],
        queue_id: Some(OTHER_QUEUE),
        ..ticket()
    };
    assert!(sees(
        &agent(),
        &wallet,
        VisibilitySettings {
            force_wallet_routing: true,
            ..Default::default()
        }
    ));
}

#[test]
fn overflowed_wallet_ticket_follows_the_queue_rules() {
    let overflowed = TicketFacts {
        wallet_owner_ids: vec![OTHER],
        wallet_overflowed: true,
        ..ticket()
    };
    assert!(sees(
        &agent(),
        &overflowed,
        VisibilitySettings {
            force_wallet_routing: true,
            ..Default::default()
        }
    ));
}

#[test]
fn ticket_owned_by_someone_else_is_hidden_with_hide_others_tickets() {
    let others = TicketFacts {
        owner_id: Some(OTHER),
        status: TicketStatus::Open,
        ..ticket()
    };
    assert!(sees(&agent(), &others, VisibilitySettings::default()));
    assert!(!sees(
        &agent(),
        &others,
        VisibilitySettings {
            hide_others_tickets: true,
            ..Default::default()
        }
    ));
}

#[test]
fn pending_messages_need_spy_for_users() {
    let settings = VisibilitySettings::default();
    assert_eq!(
        message_access(&agent(), &ticket(), &settings, false),
        MessageAccess::None
    );
    assert_eq!(
        message_access(&agent(), &ticket(), &settings, true),
        MessageAccess::ViewerQueuesOnly
    );
    let open = TicketFacts {
        status: TicketStatus::Open,
        owner_id: Some(ME),
        ..ticket()
    };
    assert_eq!(
        message_access(&agent(), &open, &settings, false),
        MessageAccess::ViewerQueuesOnly
    );
    let admin = Viewer {
        profile: Profile::Admin,
        ..agent()
    };
    assert_eq!(
        message_access(&admin, &ticket(), &settings, false),
        MessageAccess::All
    );
}

#[test]
fn history_messages_of_other_queues_are_hidden() {
    assert!(message_stamp_visible(&agent(), None));
    assert!(message_stamp_visible(&agent(), Some(MY_QUEUE)));
    assert!(!message_stamp_visible(&agent(), Some(OTHER_QUEUE)));
}

fn arb_status() -> impl Strategy<Value = TicketStatus> {
    prop_oneof![
        Just(TicketStatus::Pending),
        Just(TicketStatus::Open),
        Just(TicketStatus::Paused),
        Just(TicketStatus::Closed)
    ]
}

fn arb_profile() -> impl Strategy<Value = Profile> {
    prop_oneof![
        Just(Profile::Admin),
        Just(Profile::Supervisor),
        Just(Profile::User)
    ]
}

prop_compose! {
    fn arb_settings()(bits in 0u8..128) -> VisibilitySettings {
        VisibilitySettings {
            supervisor_sees_as_user: bits & 1 != 0,
            show_groups_to_all: bits & 2 != 0,
            show_closed_to_all: bits & 4 != 0,
            show_unassigned_to_all: bits & 8 != 0,
            hide_bot_tickets: bits & 16 != 0,
            force_wallet_routing: bits & 32 != 0,
            hide_others_tickets: bits & 64 != 0,
        }
    }
}

prop_compose! {
    fn arb_ticket()(
        status in arb_status(),
        owner in prop::option::of(1i64..4),
        queue in prop::option::of(10i64..13),
        is_group in any::<bool>(),
        bot_active in any::<bool>(),
        wallet_overflowed in any::<bool>(),
        wallet in prop::collection::vec(1i64..4, 0..3),
    ) -> TicketFacts {
        TicketFacts {
            status,
            owner_id: owner.map(UserId),
            queue_id: queue.map(QueueId),
            is_group,
            bot_active,
            wallet_overflowed,
            wallet_owner_ids: wallet.into_iter().map(UserId).collect(),
        }
    }
}

prop_compose! {
    fn arb_viewer()(user in 1i64..4, profile in arb_profile(), queues in prop::collection::vec(10i64..13, 0..3)) -> Viewer {
        Viewer { user_id: UserId(user), profile, queue_ids: queues.into_iter().map(QueueId).collect() }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn compiled_plan_agrees_with_the_rule(
        viewer in arb_viewer(),
        ticket in arb_ticket(),
        settings in arb_settings(),
        tenant_has_queues in any::<bool>(),
    ) {
        let plan = Plan::for_viewer(&viewer, &settings, tenant_has_queues);
        prop_assert_eq!(plan.admits(&ticket), can_see(&viewer, &ticket, &settings, tenant_has_queues));
    }
}
