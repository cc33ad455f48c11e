//! Ticket lifecycle (SPEC §3) as one pure function: given where a ticket stands, who acts, what
//! they ask and the tenant's settings, [`decide`] answers the new state (status, owner, queue, bot,
//! cycle effects) with the system note and audit action to record, or a [`Refusal`] with the
//! reason. The store applies the answer, the API turns refusals into 409/403/422; nobody else
//! re-decides a move.
//!
//! Readings chosen where SPEC §3 is terse (documented here so code, tests and docs agree):
//! - A `user` acts on an open or paused ticket only when they own it; admins and supervisors act
//!   on any ticket they can see. Pending tickets may be accepted or transferred by anyone who sees
//!   them (visibility already decides who does).
//! - Transfer to a user of a *paused* ticket opens it for the new owner: the pause (and its reason)
//!   belonged to the agent who paused it.
//! - Any transfer and any accept or close ends a running chatbot session: a person took charge.
//! - An agent who reopens a closed ticket owns it, open, in a new cycle.

use crate::ids::{DemandId, QueueId, UserId};
use crate::model::{Profile, TicketStatus};
use crate::routing::overflows_when_owner_leaves;
use crate::settings::{Locale, Settings};

/// What the decision needs to know about the ticket as stored now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketState {
    pub status: TicketStatus,
    pub owner_id: Option<UserId>,
    pub queue_id: Option<QueueId>,
    /// A chatbot session holds the ticket.
    pub bot_active: bool,
    pub wallet_overflowed: bool,
    pub pause_reason: Option<String>,
}

/// Who asks for the move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    User {
        user_id: UserId,
        profile: Profile,
    },
    /// Timers and automations (auto-resolve, wallet overflow, the flow engine).
    System,
}

impl Actor {
    fn user_id(self) -> Option<UserId> {
        match self {
            Actor::User { user_id, .. } => Some(user_id),
            Actor::System => None,
        }
    }

    /// Admins, supervisors and the system act on any ticket they reach.
    fn manages(self) -> bool {
        match self {
            Actor::User { profile, .. } => matches!(profile, Profile::Admin | Profile::Supervisor),
            Actor::System => true,
        }
    }
}

/// The settings the lifecycle reads, copied out so the rule is cheap to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LifecycleSettings {
    pub keep_user_on_pending: bool,
    pub allow_pause: bool,
    pub require_demand_on_close: bool,
    /// `feature_controls` contains `force_close`: a `user` may close a pending ticket without
    /// accepting it.
    pub force_close: bool,
    pub force_admin_on_pending: bool,
    /// `designated_admin`, else the tenant's first admin (resolved by the caller).
    pub designated_admin: Option<UserId>,
    pub force_wallet_routing: bool,
    pub wallet_overflow: bool,
}

impl LifecycleSettings {
    /// From the tenant's settings; `first_admin` stands in when `designated_admin` is unset.
    pub fn from_settings(settings: &Settings, first_admin: Option<UserId>) -> Self {
        Self {
            keep_user_on_pending: settings.keep_user_on_pending,
            allow_pause: settings.allow_pause,
            require_demand_on_close: settings.require_demand_on_close,
            force_close: settings.feature_controls.force_close,
            force_admin_on_pending: settings.force_admin_on_pending,
            designated_admin: settings.designated_admin.or(first_admin),
            force_wallet_routing: settings.force_wallet_routing,
            wallet_overflow: settings.wallet_overflow,
        }
    }
}

crate::wire_enum!(
    /// Why the system closed a ticket (kept on the cycle instead of a demand).
    CloseReason { Inactivity = "inactivity" }
);

/// What is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// pending → open, owner = the acting agent.
    Accept,
    /// open → pending, back to the queue (the owner stays with `keep_user_on_pending`).
    Return,
    /// To a queue and/or a user, with an optional note.
    Transfer {
        queue_id: Option<QueueId>,
        user_id: Option<UserId>,
        note: Option<String>,
    },
    Pause {
        reason: Option<String>,
    },
    Resume,
    /// Closed by an agent, with a demand (required with `require_demand_on_close`) and a note.
    Close {
        demand_id: Option<DemandId>,
        note: Option<String>,
    },
    /// Closed by the system, recording the reason instead of a demand.
    AutoClose {
        reason: CloseReason,
    },
    /// An automatic open → pending move (e.g. a flow's "transfer to queue").
    MoveToPending,
    /// The owner of a pending wallet ticket went offline or paused (SPEC §6).
    OverflowWallet {
        leaving: UserId,
        default_queue: Option<QueueId>,
    },
    Reopen,
}

impl Command {
    /// The audit action of this command.
    pub fn audit_action(&self) -> &'static str {
        match self {
            Command::Accept => "ticket.accept",
            Command::Return => "ticket.return",
            Command::Transfer { .. } => "ticket.transfer",
            Command::Pause { .. } => "ticket.pause",
            Command::Resume => "ticket.resume",
            Command::Close { .. } => "ticket.close",
            Command::AutoClose { .. } => "ticket.auto_close",
            Command::MoveToPending => "ticket.move_to_pending",
            Command::OverflowWallet { .. } => "ticket.wallet_overflow",
            Command::Reopen => "ticket.reopen",
        }
    }
}

/// What happens to the ticket's attendance cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CycleEffect {
    /// The current cycle goes on; its owner and queue follow the ticket.
    Continue,
    /// The current cycle is accepted now (its first acceptance is kept).
    Accept,
    /// The current cycle closes.
    Close {
        demand_id: Option<DemandId>,
        note: Option<String>,
        closed_by: Option<UserId>,
        reason: Option<CloseReason>,
    },
    /// A new cycle starts (the out-of-hours counter starts over); `accepted` when it starts open
    /// with an owner.
    Start { accepted: bool },
}

/// The system note written in the chat for a transition; rendered with names by [`SystemNote::render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemNote {
    Accepted {
        by: UserId,
    },
    Returned {
        by: Option<UserId>,
        kept_owner: Option<UserId>,
    },
    Transferred {
        by: Option<UserId>,
        queue_id: Option<QueueId>,
        user_id: Option<UserId>,
        note: Option<String>,
    },
    Paused {
        by: Option<UserId>,
        reason: Option<String>,
    },
    Resumed {
        by: Option<UserId>,
    },
    Closed {
        by: Option<UserId>,
        demand_id: Option<DemandId>,
        note: Option<String>,
    },
    ClosedAutomatically {
        reason: CloseReason,
    },
    MovedToPending {
        owner: Option<UserId>,
    },
    WalletOverflowed {
        leaving: UserId,
    },
    Reopened {
        by: Option<UserId>,
    },
}

/// Something a note names, resolved to a display name by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameRef {
    User(UserId),
    Queue(QueueId),
    Demand(DemandId),
}

impl SystemNote {
    /// A stable key for the note (clients may translate by it).
    pub fn key(&self) -> &'static str {
        match self {
            SystemNote::Accepted { .. } => "ticket.accepted",
            SystemNote::Returned { .. } => "ticket.returned",
            SystemNote::Transferred { .. } => "ticket.transferred",
            SystemNote::Paused { .. } => "ticket.paused",
            SystemNote::Resumed { .. } => "ticket.resumed",
            SystemNote::Closed { .. } => "ticket.closed",
            SystemNote::ClosedAutomatically { .. } => "ticket.closed_automatically",
            SystemNote::MovedToPending { .. } => "ticket.moved_to_pending",
            SystemNote::WalletOverflowed { .. } => "ticket.wallet_overflowed",
            SystemNote::Reopened { .. } => "ticket.reopened",
        }
    }

    /// Everything the note names, so the caller can look the names up once.
    pub fn names(&self) -> Vec<NameRef> {
        let mut refs = Vec::new();
        let mut user = |id: Option<UserId>| {
            if let Some(id) = id {
                refs.push(NameRef::User(id));
            }
        };
        match self {
            SystemNote::Accepted { by } => user(Some(*by)),
            SystemNote::Returned { by, kept_owner } => {
                user(*by);
                user(*kept_owner);
            }
            SystemNote::Transferred { by, user_id, .. } => {
                user(*by);
                user(*user_id);
            }
            SystemNote::Paused { by, .. }
            | SystemNote::Resumed { by }
            | SystemNote::Closed { by, .. }
            | SystemNote::Reopened { by } => user(*by),
            SystemNote::MovedToPending { owner } => user(*owner),
            SystemNote::WalletOverflowed { leaving } => user(Some(*leaving)),
            SystemNote::ClosedAutomatically { .. } => {}
        }
        match self {
            SystemNote::Transferred {
                queue_id: Some(queue),
                ..
            } => refs.push(NameRef::Queue(*queue)),
            SystemNote::Closed {
                demand_id: Some(demand),
                ..
            } => refs.push(NameRef::Demand(*demand)),
            _ => {}
        }
        refs
    }

    /// The text shown in the chat. `name` gives the display name of what the note refers to.
    pub fn render(&self, locale: Locale, name: &dyn Fn(NameRef) -> String) -> String {
        let pt = locale == Locale::PtBr;
        let tr = |pt_text: String, en_text: String| if pt { pt_text } else { en_text };
        let who = |by: &Option<UserId>| match by {
            Some(id) => name(NameRef::User(*id)),
            None => tr("O sistema".into(), "The system".into()),
        };
        // " Aguardando Ana." when someone keeps the ticket.
        let waiting = |owner: &Option<UserId>| match owner {
            Some(owner) => {
                let owner = name(NameRef::User(*owner));
                tr(
                    format!(" Aguardando {owner}."),
                    format!(" Waiting for {owner}."),
                )
            }
            None => String::new(),
        };
        // " Observação: …" (or another label) when there is a text.
        let labelled = |note: &Option<String>, label_pt: &str, label_en: &str| match note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(note) => format!(" {}: {note}", if pt { label_pt } else { label_en }),
            None => String::new(),
        };
        match self {
            SystemNote::Accepted { by } => {
                let by = name(NameRef::User(*by));
                tr(
                    format!("Atendimento aceito por {by}."),
                    format!("Ticket accepted by {by}."),
                )
            }
            SystemNote::Returned { by, kept_owner } => {
                let by = who(by);
                tr(
                    format!("{by} devolveu o atendimento para a fila."),
                    format!("{by} returned the ticket to the queue."),
                ) + &waiting(kept_owner)
            }
            SystemNote::Transferred {
                by,
                queue_id,
                user_id,
                note,
            } => {
                let by = who(by);
                let queue = queue_id.map(|q| name(NameRef::Queue(q)));
                let user = user_id.map(|u| name(NameRef::User(u)));
                let target = match (queue, user) {
                    (Some(queue), Some(user)) => tr(
                        format!("{user} na fila {queue}"),
                        format!("{user} in queue {queue}"),
                    ),
                    (Some(queue), None) => tr(format!("a fila {queue}"), format!("queue {queue}")),
                    (None, Some(user)) => user,
                    (None, None) => "?".to_owned(),
                };
                tr(
                    format!("{by} transferiu o atendimento para {target}."),
                    format!("{by} transferred the ticket to {target}."),
                ) + &labelled(note, "Observação", "Note")
            }
            SystemNote::Paused { by, reason } => {
                let by = who(by);
                tr(
                    format!("{by} pausou o atendimento."),
                    format!("{by} paused the ticket."),
                ) + &labelled(reason, "Motivo", "Reason")
            }
            SystemNote::Resumed { by } => {
                let by = who(by);
                tr(
                    format!("{by} retomou o atendimento."),
                    format!("{by} resumed the ticket."),
                )
            }
            SystemNote::Closed {
                by,
                demand_id,
                note,
            } => {
                let by = who(by);
                let demand = demand_id.map(|d| name(NameRef::Demand(d)));
                tr(
                    format!("{by} encerrou o atendimento."),
                    format!("{by} closed the ticket."),
                ) + &labelled(&demand, "Demanda", "Demand")
                    + if demand.is_some() { "." } else { "" }
                    + &labelled(note, "Observação", "Note")
            }
            SystemNote::ClosedAutomatically {
                reason: CloseReason::Inactivity,
            } => tr(
                "Atendimento encerrado automaticamente por inatividade do contato.".into(),
                "Ticket closed automatically: the contact was inactive.".into(),
            ),
            SystemNote::MovedToPending { owner } => {
                tr(
                    "Atendimento movido para pendente.".into(),
                    "Ticket moved to pending.".into(),
                ) + &waiting(owner)
            }
            SystemNote::WalletOverflowed { leaving } => {
                let leaving = name(NameRef::User(*leaving));
                tr(
                    format!(
                        "Transbordo da carteira: {leaving} ficou indisponível e o atendimento voltou para a fila."
                    ),
                    format!(
                        "Wallet overflow: {leaving} became unavailable and the ticket went back to the queue."
                    ),
                )
            }
            SystemNote::Reopened { by } => {
                let by = who(by);
                tr(
                    format!("{by} reabriu o atendimento."),
                    format!("{by} reopened the ticket."),
                )
            }
        }
    }
}

/// The answer of [`decide`]: the ticket's state after the move and what to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub status: TicketStatus,
    pub owner_id: Option<UserId>,
    pub queue_id: Option<QueueId>,
    /// Stop the chatbot session (clear its columns).
    pub end_bot: bool,
    /// `Some` only while paused.
    pub pause_reason: Option<String>,
    /// The agent who accepted has seen the contact's messages.
    pub clear_unread: bool,
    /// `Some(v)`: set the ticket's wallet-overflow flag to `v`.
    pub wallet_overflowed: Option<bool>,
    pub cycle: CycleEffect,
    pub note: SystemNote,
    pub audit_action: &'static str,
}

/// Why a move is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The command does not apply to the ticket as it stands (409).
    InvalidState(String),
    /// The actor may not do this to this ticket (403).
    Forbidden(String),
    /// The command itself is incomplete (422 naming the field).
    Invalid {
        field: &'static str,
        message: String,
    },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::InvalidState(reason) | Refusal::Forbidden(reason) => f.write_str(reason),
            Refusal::Invalid { field, message } => write!(f, "{field}: {message}"),
        }
    }
}

fn invalid_state(reason: impl Into<String>) -> Refusal {
    Refusal::InvalidState(reason.into())
}

/// A plain `user` acts on an open or paused ticket only when they own it.
fn require_owner_or_manager(state: &TicketState, actor: Actor, what: &str) -> Result<(), Refusal> {
    if actor.manages() || (state.owner_id.is_some() && state.owner_id == actor.user_id()) {
        Ok(())
    } else {
        Err(Refusal::Forbidden(format!(
            "only the ticket's owner, an administrator or a supervisor can {what} it"
        )))
    }
}

/// Decides one lifecycle move (SPEC §3). Pure: the caller loads `state`, resolves `settings` and
/// applies the answer atomically (checking that the ticket did not change meanwhile).
pub fn decide(
    state: &TicketState,
    actor: Actor,
    command: &Command,
    settings: &LifecycleSettings,
) -> Result<Transition, Refusal> {
    use TicketStatus::*;
    let by = actor.user_id();
    // The common shape: nothing but what each command changes.
    let keep = Transition {
        status: state.status,
        owner_id: state.owner_id,
        queue_id: state.queue_id,
        end_bot: false,
        pause_reason: None,
        clear_unread: false,
        wallet_overflowed: None,
        cycle: CycleEffect::Continue,
        note: SystemNote::Resumed { by },
        audit_action: command.audit_action(),
    };
    match command {
        Command::Accept => {
            let Some(agent) = by else {
                return Err(invalid_state("only an agent can accept a ticket"));
            };
            if state.status != Pending {
                return Err(invalid_state(format!(
                    "only a pending ticket can be accepted (this one is {})",
                    state.status
                )));
            }
            Ok(Transition {
                status: Open,
                owner_id: Some(agent),
                end_bot: true,
                clear_unread: true,
                cycle: CycleEffect::Accept,
                note: SystemNote::Accepted { by: agent },
                ..keep
            })
        }
        Command::Return => {
            if state.status != Open {
                return Err(invalid_state(format!(
                    "only an open ticket can be returned to the queue (this one is {})",
                    state.status
                )));
            }
            require_owner_or_manager(state, actor, "return")?;
            let kept_owner = if settings.keep_user_on_pending {
                state.owner_id
            } else {
                None
            };
            Ok(Transition {
                status: Pending,
                owner_id: kept_owner,
                note: SystemNote::Returned { by, kept_owner },
                ..keep
            })
        }
        Command::Transfer {
            queue_id,
            user_id,
            note,
        } => {
            if queue_id.is_none() && user_id.is_none() {
                return Err(Refusal::Invalid {
                    field: "queue_id",
                    message: "give the queue_id, the user_id or both to transfer to".into(),
                });
            }
            if state.status == Closed {
                return Err(invalid_state(
                    "a closed ticket cannot be transferred; reopen it first",
                ));
            }
            if state.status != Pending {
                require_owner_or_manager(state, actor, "transfer")?;
            }
            let new_queue = queue_id.or(state.queue_id);
            let (status, owner) = match user_id {
                // The pause belonged to the agent who paused: the new owner gets it open.
                Some(user) if state.status == Paused && state.owner_id != Some(*user) => {
                    (Open, Some(*user))
                }
                Some(user) => (state.status, Some(*user)),
                None => (Pending, None),
            };
            if status == state.status && owner == state.owner_id && new_queue == state.queue_id {
                return Err(invalid_state(
                    "the ticket is already there: choose another queue or user",
                ));
            }
            let pause_reason = if status == Paused {
                state.pause_reason.clone()
            } else {
                None
            };
            Ok(Transition {
                status,
                owner_id: owner,
                queue_id: new_queue,
                end_bot: state.bot_active,
                pause_reason,
                note: SystemNote::Transferred {
                    by,
                    queue_id: *queue_id,
                    user_id: *user_id,
                    note: note.clone(),
                },
                ..keep
            })
        }
        Command::Pause { reason } => {
            if !settings.allow_pause {
                return Err(invalid_state("pausing is disabled (allow_pause)"));
            }
            if state.status != Open {
                return Err(invalid_state(format!(
                    "only an open ticket can be paused (this one is {})",
                    state.status
                )));
            }
            require_owner_or_manager(state, actor, "pause")?;
            let reason = reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned);
            Ok(Transition {
                status: Paused,
                pause_reason: reason.clone(),
                note: SystemNote::Paused { by, reason },
                ..keep
            })
        }
        Command::Resume => {
            if state.status != Paused {
                return Err(invalid_state(format!(
                    "only a paused ticket can be resumed (this one is {})",
                    state.status
                )));
            }
            require_owner_or_manager(state, actor, "resume")?;
            // A paused ticket always has an owner; the actor stands in if the data says otherwise.
            let owner = state.owner_id.or(by);
            if owner.is_none() {
                return Err(invalid_state(
                    "a paused ticket without an owner cannot be resumed: transfer it",
                ));
            }
            Ok(Transition {
                status: Open,
                owner_id: owner,
                note: SystemNote::Resumed { by },
                ..keep
            })
        }
        Command::Close { demand_id, note } => {
            let Some(agent) = by else {
                return Err(invalid_state("automatic closes must give a system reason"));
            };
            if state.status == Closed {
                return Err(invalid_state("the ticket is already closed"));
            }
            if settings.require_demand_on_close && demand_id.is_none() {
                return Err(invalid_state(
                    "a demand is required to close (require_demand_on_close)",
                ));
            }
            let mine = state.owner_id == Some(agent);
            if !actor.manages() && !mine {
                if state.status == Pending {
                    if !settings.force_close {
                        return Err(invalid_state(
                            "accept the ticket before closing it (closing a pending ticket needs force_close in feature_controls)",
                        ));
                    }
                } else {
                    require_owner_or_manager(state, actor, "close")?;
                }
            }
            let note = note
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned);
            Ok(Transition {
                status: Closed,
                end_bot: true,
                cycle: CycleEffect::Close {
                    demand_id: *demand_id,
                    note: note.clone(),
                    closed_by: Some(agent),
                    reason: None,
                },
                note: SystemNote::Closed {
                    by: Some(agent),
                    demand_id: *demand_id,
                    note,
                },
                ..keep
            })
        }
        Command::AutoClose { reason } => {
            match state.status {
                Closed => return Err(invalid_state("the ticket is already closed")),
                Paused => return Err(invalid_state("a paused ticket is not closed automatically")),
                Pending | Open => {}
            }
            Ok(Transition {
                status: Closed,
                end_bot: true,
                cycle: CycleEffect::Close {
                    demand_id: None,
                    note: None,
                    closed_by: None,
                    reason: Some(*reason),
                },
                note: SystemNote::ClosedAutomatically { reason: *reason },
                ..keep
            })
        }
        Command::MoveToPending => {
            if state.status != Open {
                return Err(invalid_state(format!(
                    "only an open ticket can move to pending (this one is {})",
                    state.status
                )));
            }
            let owner = if settings.keep_user_on_pending {
                state.owner_id
            } else if settings.force_admin_on_pending {
                settings.designated_admin
            } else {
                None
            };
            Ok(Transition {
                status: Pending,
                owner_id: owner,
                note: SystemNote::MovedToPending { owner },
                ..keep
            })
        }
        Command::OverflowWallet {
            leaving,
            default_queue,
        } => {
            if !settings.force_wallet_routing {
                return Err(invalid_state(
                    "wallet routing is off (force_wallet_routing)",
                ));
            }
            if !overflows_when_owner_leaves(
                settings.wallet_overflow,
                state.status,
                state.wallet_overflowed,
            ) {
                return Err(invalid_state(
                    "only a pending wallet ticket that did not overflow yet overflows (wallet_overflow)",
                ));
            }
            let owner = if state.owner_id == Some(*leaving) {
                None
            } else {
                state.owner_id
            };
            Ok(Transition {
                owner_id: owner,
                queue_id: state.queue_id.or(*default_queue),
                wallet_overflowed: Some(true),
                note: SystemNote::WalletOverflowed { leaving: *leaving },
                ..keep
            })
        }
        Command::Reopen => {
            if state.status != Closed {
                return Err(invalid_state(format!(
                    "only a closed ticket can be reopened (this one is {})",
                    state.status
                )));
            }
            match by {
                Some(agent) => Ok(Transition {
                    status: Open,
                    owner_id: Some(agent),
                    cycle: CycleEffect::Start { accepted: true },
                    note: SystemNote::Reopened { by },
                    ..keep
                }),
                None => {
                    let owner = if settings.force_admin_on_pending {
                        settings.designated_admin
                    } else {
                        None
                    };
                    Ok(Transition {
                        status: Pending,
                        owner_id: owner,
                        cycle: CycleEffect::Start { accepted: false },
                        note: SystemNote::Reopened { by: None },
                        ..keep
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
