use super::*;
use proptest::prelude::*;

const ME: UserId = UserId(1);
const OTHER: UserId = UserId(2);
const ADMIN: UserId = UserId(9);
const Q1: QueueId = QueueId(10);
const Q2: QueueId = QueueId(20);

fn agent() -> Actor {
    Actor::User {
        user_id: ME,
        profile: Profile::User,
    }
}

fn admin() -> Actor {
    Actor::User {
        user_id: ADMIN,
        profile: Profile::Admin,
    }
}

fn pending() -> TicketState {
    TicketState {
        status: TicketStatus::Pending,
        owner_id: None,
        queue_id: Some(Q1),
        bot_active: false,
        wallet_overflowed: false,
        pause_reason: None,
    }
}

fn open_by(owner: UserId) -> TicketState {
    TicketState {
        status: TicketStatus::Open,
        owner_id: Some(owner),
        ..pending()
    }
}

fn settings() -> LifecycleSettings {
    LifecycleSettings::default()
}

fn refused(result: Result<Transition, Refusal>) -> Refusal {
    match result {
        Ok(transition) => panic!("expected a refusal, got {transition:?}"),
        Err(refusal) => refusal,
    }
}

fn allowed(result: Result<Transition, Refusal>) -> Transition {
    result.unwrap_or_else(|refusal| panic!("expected a transition, got {refusal:?}"))
}

#[test]
fn accept_opens_a_pending_ticket_for_the_acting_agent_ends_the_bot_and_clears_unread() {
    let state = TicketState {
        bot_active: true,
        ..pending()
    };
    let t = allowed(decide(&state, agent(), &Command::Accept, &settings()));
    assert_eq!(
        (t.status, t.owner_id, t.queue_id),
        (TicketStatus::Open, Some(ME), Some(Q1))
    );
    assert!(t.end_bot && t.clear_unread);
    assert_eq!(t.cycle, CycleEffect::Accept);
    assert_eq!(t.audit_action, "ticket.accept");
}

#[test]
fn only_a_pending_ticket_can_be_accepted() {
    let refusal = refused(decide(
        &open_by(OTHER),
        agent(),
        &Command::Accept,
        &settings(),
    ));
    assert_eq!(
        refusal,
        Refusal::InvalidState("only a pending ticket can be accepted (this one is open)".into())
    );
}

#[test]
fn return_clears_the_owner_unless_keep_user_on_pending() {
    let t = allowed(decide(&open_by(ME), agent(), &Command::Return, &settings()));
    assert_eq!((t.status, t.owner_id), (TicketStatus::Pending, None));
    let kept = LifecycleSettings {
        keep_user_on_pending: true,
        ..settings()
    };
    let t = allowed(decide(&open_by(ME), agent(), &Command::Return, &kept));
    assert_eq!((t.status, t.owner_id), (TicketStatus::Pending, Some(ME)));
}

#[test]
fn only_an_open_ticket_can_be_returned() {
    assert!(matches!(
        refused(decide(&pending(), agent(), &Command::Return, &settings())),
        Refusal::InvalidState(_)
    ));
}

#[test]
fn a_user_cannot_return_someone_elses_ticket_but_an_admin_can() {
    assert!(matches!(
        refused(decide(
            &open_by(OTHER),
            agent(),
            &Command::Return,
            &settings()
        )),
        Refusal::Forbidden(_)
    ));
    assert!(decide(&open_by(OTHER), admin(), &Command::Return, &settings()).is_ok());
}

#[test]
fn transfer_to_a_user_changes_the_owner_and_keeps_the_status() {
    let command = Command::Transfer {
        queue_id: None,
        user_id: Some(OTHER),
        note: Some("VIP".into()),
    };
    let t = allowed(decide(&open_by(ME), agent(), &command, &settings()));
    assert_eq!(
        (t.status, t.owner_id, t.queue_id),
        (TicketStatus::Open, Some(OTHER), Some(Q1))
    );
    let t = allowed(decide(&pending(), agent(), &command, &settings()));
    assert_eq!((t.status, t.owner_id), (TicketStatus::Pending, Some(OTHER)));
}

#[test]
fn transfer_to_a_queue_only_makes_the_ticket_pending_without_owner() {
    let command = Command::Transfer {
        queue_id: Some(Q2),
        user_id: None,
        note: None,
    };
    let t = allowed(decide(&open_by(ME), agent(), &command, &settings()));
    assert_eq!(
        (t.status, t.owner_id, t.queue_id),
        (TicketStatus::Pending, None, Some(Q2))
    );
}

#[test]
fn transfer_to_a_queue_and_a_user_sets_both() {
    let command = Command::Transfer {
        queue_id: Some(Q2),
        user_id: Some(OTHER),
        note: None,
    };
    let t = allowed(decide(&open_by(ME), agent(), &command, &settings()));
    assert_eq!(
        (t.status, t.owner_id, t.queue_id),
        (TicketStatus::Open, Some(OTHER), Some(Q2))
    );
}

#[test]
fn transfer_without_queue_or_user_is_invalid() {
    let command = Command::Transfer {
        queue_id: None,
        user_id: None,
        note: None,
    };
    assert!(matches!(
        refused(decide(&open_by(ME), agent(), &command, &settings())),
        Refusal::Invalid {
            field: "queue_id",
            ..
        }
    ));
}

#[test]
fn transfer_to_where_the_ticket_already_is_is_refused() {
    let command = Command::Transfer {
        queue_id: Some(Q1),
        user_id: None,
        note: None,
    };
    assert!(matches!(
        refused(decide(&pending(), agent(), &command, &settings())),
        Refusal::InvalidState(_)
    ));
}

#[test]
fn transfer_of_a_paused_ticket_to_another_user_opens_it_for_them() {
    let state = TicketState {
        status: TicketStatus::Paused,
        pause_reason: Some("lunch".into()),
        ..open_by(ME)
    };
    let command = Command::Transfer {
        queue_id: None,
        user_id: Some(OTHER),
        note: None,
    };
    let t = allowed(decide(&state, agent(), &command, &settings()));
    assert_eq!(
        (t.status, t.owner_id, t.pause_reason),
        (TicketStatus::Open, Some(OTHER), None)
    );
    let to_queue = Command::Transfer {
        queue_id: Some(Q2),
        user_id: Some(ME),
        note: None,
    };
    let t = allowed(decide(&state, agent(), &to_queue, &settings()));
    assert_eq!(
        (t.status, t.pause_reason.as_deref()),
        (TicketStatus::Paused, Some("lunch"))
    );
}

#[test]
fn transfer_ends_a_running_bot() {
    let state = TicketState {
        bot_active: true,
        ..pending()
    };
    let command = Command::Transfer {
        queue_id: Some(Q2),
        user_id: None,
        note: None,
    };
    assert!(allowed(decide(&state, agent(), &command, &settings())).end_bot);
}

#[test]
fn pausing_is_disabled_without_allow_pause() {
    let command = Command::Pause { reason: None };
    let refusal = refused(decide(&open_by(ME), agent(), &command, &settings()));
    assert_eq!(
        refusal,
        Refusal::InvalidState("pausing is disabled (allow_pause)".into())
    );
    let allow = LifecycleSettings {
        allow_pause: true,
        ..settings()
    };
    let t = allowed(decide(
        &open_by(ME),
        agent(),
        &Command::Pause {
            reason: Some(" almoço ".into()),
        },
        &allow,
    ));
    assert_eq!(
        (t.status, t.pause_reason.as_deref()),
        (TicketStatus::Paused, Some("almoço"))
    );
}

#[test]
fn resume_opens_a_paused_ticket_and_forgets_the_reason() {
    let state = TicketState {
        status: TicketStatus::Paused,
        pause_reason: Some("x".into()),
        ..open_by(ME)
    };
    let t = allowed(decide(&state, agent(), &Command::Resume, &settings()));
    assert_eq!(
        (t.status, t.owner_id, t.pause_reason),
        (TicketStatus::Open, Some(ME), None)
    );
    assert!(matches!(
        refused(decide(&open_by(ME), agent(), &Command::Resume, &settings())),
        Refusal::InvalidState(_)
    ));
}

#[test]
fn close_records_demand_note_and_closer_on_the_cycle() {
    let command = Command::Close {
        demand_id: Some(DemandId(5)),
        note: Some("ok".into()),
    };
    let t = allowed(decide(&open_by(ME), agent(), &command, &settings()));
    assert_eq!(t.status, TicketStatus::Closed);
    assert_eq!(
        t.owner_id,
        Some(ME),
        "the closed ticket keeps who attended it"
    );
    assert_eq!(
        t.cycle,
        CycleEffect::Close {
            demand_id: Some(DemandId(5)),
            note: Some("ok".into()),
            closed_by: Some(ME),
            reason: None
        }
    );
}

#[test]
fn a_demand_is_required_to_close_with_require_demand_on_close() {
    let strict = LifecycleSettings {
        require_demand_on_close: true,
        ..settings()
    };
    let command = Command::Close {
        demand_id: None,
        note: None,
    };
    let refusal = refused(decide(&open_by(ME), agent(), &command, &strict));
    assert_eq!(
        refusal,
        Refusal::InvalidState("a demand is required to close (require_demand_on_close)".into())
    );
}

#[test]
fn a_user_closing_a_pending_ticket_without_accepting_needs_force_close() {
    let command = Command::Close {
        demand_id: None,
        note: None,
    };
    assert!(matches!(
        refused(decide(&pending(), agent(), &command, &settings())),
        Refusal::InvalidState(_)
    ));
    let force = LifecycleSettings {
        force_close: true,
        ..settings()
    };
    assert!(decide(&pending(), agent(), &command, &force).is_ok());
    assert!(
        decide(&pending(), admin(), &command, &settings()).is_ok(),
        "admins need no force_close"
    );
}

#[test]
fn automatic_close_records_the_system_reason_and_skips_paused_tickets() {
    let command = Command::AutoClose {
        reason: CloseReason::Inactivity,
    };
    let t = allowed(decide(
        &open_by(ME),
        Actor::System,
        &command,
        &LifecycleSettings {
            require_demand_on_close: true,
            ..settings()
        },
    ));
    assert_eq!(
        t.cycle,
        CycleEffect::Close {
            demand_id: None,
            note: None,
            closed_by: None,
            reason: Some(CloseReason::Inactivity)
        }
    );
    let paused = TicketState {
        status: TicketStatus::Paused,
        ..open_by(ME)
    };
    assert!(decide(&paused, Actor::System, &command, &settings()).is_err());
}

#[test]
fn reopen_starts_a_new_cycle_owned_by_the_agent() {
    let closed = TicketState {
        status: TicketStatus::Closed,
        ..open_by(OTHER)
    };
    let t = allowed(decide(&closed, agent(), &Command::Reopen, &settings()));
    assert_eq!((t.status, t.owner_id), (TicketStatus::Open, Some(ME)));
    assert_eq!(t.cycle, CycleEffect::Start { accepted: true });
    assert!(matches!(
        refused(decide(&pending(), agent(), &Command::Reopen, &settings())),
        Refusal::InvalidState(_)
    ));
}

#[test]
fn automatic_move_to_pending_goes_to_the_designated_admin_with_force_admin_on_pending() {
    let forced = LifecycleSettings {
        force_admin_on_pending: true,
        designated_admin: Some(ADMIN),
        ..settings()
    };
    let t = allowed(decide(
        &open_by(ME),
        Actor::System,
        &Command::MoveToPending,
        &forced,
    ));
    assert_eq!((t.status, t.owner_id), (TicketStatus::Pending, Some(ADMIN)));
    let kept = LifecycleSettings {
        keep_user_on_pending: true,
        ..forced
    };
    let t = allowed(decide(
        &open_by(ME),
        Actor::System,
        &Command::MoveToPending,
        &kept,
    ));
    assert_eq!(
        t.owner_id,
        Some(ME),
        "keep_user_on_pending wins: the owner stays"
    );
    let t = allowed(decide(
        &open_by(ME),
        Actor::System,
        &Command::MoveToPending,
        &settings(),
    ));
    assert_eq!(t.owner_id, None);
}

#[test]
fn pending_wallet_ticket_overflows_to_the_default_queue_when_its_owner_leaves() {
    let wallet = LifecycleSettings {
        force_wallet_routing: true,
        wallet_overflow: true,
        ..settings()
    };
    let state = TicketState {
        owner_id: Some(ME),
        queue_id: None,
        ..pending()
    };
    let command = Command::OverflowWallet {
        leaving: ME,
        default_queue: Some(Q2),
    };
    let t = allowed(decide(&state, Actor::System, &command, &wallet));
    assert_eq!(
        (t.status, t.owner_id, t.queue_id, t.wallet_overflowed),
        (TicketStatus::Pending, None, Some(Q2), Some(true))
    );
    assert!(
        decide(
            &state,
            Actor::System,
            &command,
            &LifecycleSettings {
                wallet_overflow: false,
                ..wallet
            }
        )
        .is_err()
    );
    let already = TicketState {
        wallet_overflowed: true,
        ..state
    };
    assert!(decide(&already, Actor::System, &command, &wallet).is_err());
}

#[test]
fn notes_render_in_portuguese_and_english() {
    let name = |r: NameRef| match r {
        NameRef::User(id) => format!("user{id}"),
        NameRef::Queue(id) => format!("queue{id}"),
        NameRef::Demand(id) => format!("demand{id}"),
    };
    let note = SystemNote::Transferred {
        by: Some(ME),
        queue_id: Some(Q2),
        user_id: None,
        note: Some("urgente".into()),
    };
    assert_eq!(
        note.render(Locale::PtBr, &name),
        "user1 transferiu o atendimento para a fila queue20. Observação: urgente"
    );
    assert_eq!(
        note.render(Locale::En, &name),
        "user1 transferred the ticket to queue queue20. Note: urgente"
    );
    assert_eq!(note.names(), vec![NameRef::User(ME), NameRef::Queue(Q2)]);
}

fn any_status() -> impl Strategy<Value = TicketStatus> {
    prop::sample::select(TicketStatus::ALL.to_vec())
}

fn any_user() -> impl Strategy<Value = Option<UserId>> {
    prop::option::of(prop::sample::select(vec![ME, OTHER, ADMIN]))
}

fn any_queue() -> impl Strategy<Value = Option<QueueId>> {
    prop::option::of(prop::sample::select(vec![Q1, Q2]))
}

/// States the store can hold: open and paused tickets have an owner.
fn any_state() -> impl Strategy<Value = TicketState> {
    (
        any_status(),
        any_user(),
        any_queue(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of("[a-z]{1,5}"),
    )
        .prop_map(|(status, owner, queue, bot, overflowed, reason)| {
            let owner = match status {
                TicketStatus::Open | TicketStatus::Paused => owner.or(Some(OTHER)),
                _ => owner,
            };
            TicketState {
                status,
                owner_id: owner,
                queue_id: queue,
                bot_active: bot,
                wallet_overflowed: overflowed,
                pause_reason: (status == TicketStatus::Paused).then_some(reason).flatten(),
            }
        })
}

fn any_actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        Just(Actor::System),
        (
            prop::sample::select(vec![ME, OTHER, ADMIN]),
            prop::sample::select(Profile::ALL.to_vec())
        )
            .prop_map(|(user_id, profile)| Actor::User { user_id, profile }),
    ]
}

fn any_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Accept),
        Just(Command::Return),
        (any_queue(), any_user(), prop::option::of("[a-z]{0,5}")).prop_map(
            |(queue_id, user_id, note)| Command::Transfer {
                queue_id,
                user_id,
                note
            }
        ),
        prop::option::of("[a-z ]{0,5}").prop_map(|reason| Command::Pause { reason }),
        Just(Command::Resume),
        (
            prop::option::of(Just(DemandId(3))),
            prop::option::of("[a-z]{0,5}")
        )
            .prop_map(|(demand_id, note)| Command::Close { demand_id, note }),
        Just(Command::AutoClose {
            reason: CloseReason::Inactivity
        }),
        Just(Command::MoveToPending),
        (prop::sample::select(vec![ME, OTHER]), any_queue()).prop_map(
            |(leaving, default_queue)| Command::OverflowWallet {
                leaving,
                default_queue
            }
        ),
        Just(Command::Reopen),
    ]
}

fn any_settings() -> impl Strategy<Value = LifecycleSettings> {
    (any::<[bool; 7]>(), any_user()).prop_map(|(b, designated_admin)| LifecycleSettings {
        keep_user_on_pending: b[0],
        allow_pause: b[1],
        require_demand_on_close: b[2],
        force_close: b[3],
        force_admin_on_pending: b[4],
        designated_admin,
        force_wallet_routing: b[5],
        wallet_overflow: b[6],
    })
}

proptest! {
    #[test]
    fn no_command_yields_an_open_or_paused_ticket_without_an_owner(
        state in any_state(), actor in any_actor(), command in any_command(), settings in any_settings()
    ) {
        if let Ok(t) = decide(&state, actor, &command, &settings)
            && matches!(t.status, TicketStatus::Open | TicketStatus::Paused)
        {
            prop_assert!(t.owner_id.is_some(), "{state:?} {command:?} → {t:?}");
        }
    }

    #[test]
    fn closing_always_closes_the_cycle_and_only_closing_does(
        state in any_state(), actor in any_actor(), command in any_command(), settings in any_settings()
    ) {
        if let Ok(t) = decide(&state, actor, &command, &settings) {
            let closes_cycle = matches!(t.cycle, CycleEffect::Close { .. });
            prop_assert_eq!(t.status == TicketStatus::Closed, closes_cycle);
            prop_assert_eq!(state.status == TicketStatus::Closed, matches!(t.cycle, CycleEffect::Start { .. }));
            if closes_cycle {
                prop_assert!(t.end_bot);
            }
        }
    }

    #[test]
    fn only_a_paused_ticket_keeps_a_pause_reason(
        state in any_state(), actor in any_actor(), command in any_command(), settings in any_settings()
    ) {
        if let Ok(t) = decide(&state, actor, &command, &settings)
            && t.status != TicketStatus::Paused
        {
            prop_assert_eq!(t.pause_reason, None);
        }
    }

    #[test]
    fn a_demand_is_always_given_when_an_agent_closes_under_require_demand_on_close(
        state in any_state(), actor in any_actor(), command in any_command(), settings in any_settings()
    ) {
        if let Ok(Transition { cycle: CycleEffect::Close { demand_id, closed_by: Some(_), .. }, .. }) =
            decide(&state, actor, &command, &settings)
        {
            prop_assert!(!settings.require_demand_on_close || demand_id.is_some());
        }
    }
}
