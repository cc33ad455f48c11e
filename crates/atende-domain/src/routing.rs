//! Where a new ticket goes (SPEC §6): its wallet owner, the chatbot, or a queue.

use crate::ids::{FlowId, QueueId, UserId};
use crate::model::{Presence, TicketStatus};

/// One wallet owner of the contact, in wallet order, with what routing must know about them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletCandidate {
    pub user_id: UserId,
    pub presence: Presence,
    /// Within the user's own business hours (only read with `use_user_business_hours`).
    pub within_hours: bool,
}

/// Everything the decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingInput {
    pub force_wallet_routing: bool,
    pub wallet_overflow: bool,
    pub use_user_business_hours: bool,
    pub force_admin_on_pending: bool,
    pub is_group: bool,
    /// The contact's wallet owners, in wallet order.
    pub wallet: Vec<WalletCandidate>,
    pub default_queue: Option<QueueId>,
    /// The connection's flow, else the tenant's `active_bot_flow`.
    pub flow: Option<FlowId>,
    /// `designated_admin`, else the first admin of the tenant.
    pub designated_admin: Option<UserId>,
}

/// The outcome, ready to be written on the new ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingDecision {
    pub status: TicketStatus,
    pub owner_id: Option<UserId>,
    pub queue_id: Option<QueueId>,
    /// Start a chatbot session with this flow.
    pub bot_flow: Option<FlowId>,
    pub wallet_overflowed: bool,
    /// The ticket went to its wallet owner (integrations may be disabled for it).
    pub wallet_routed: bool,
    /// Wallet owners must be told that the ticket overflowed to the queue.
    pub notify_wallet_owners: bool,
}

pub fn route_new_ticket(input: &RoutingInput) -> RoutingDecision {
    let queue_only = RoutingDecision {
        status: TicketStatus::Pending,
        owner_id: None,
        queue_id: input.default_queue,
        bot_flow: None,
        wallet_overflowed: false,
        wallet_routed: false,
        notify_wallet_owners: false,
    };
    // 1. Wallet.
    if input.force_wallet_routing && !input.wallet.is_empty() {
        let available = input.wallet.iter().find(|candidate| {
            candidate.presence == Presence::Online
                && (!input.use_user_business_hours || candidate.within_hours)
        });
        if let Some(owner) = available {
            return RoutingDecision {
                status: TicketStatus::Open,
                owner_id: Some(owner.user_id),
                wallet_routed: true,
                ..queue_only
            };
        }
        if input.wallet_overflow {
            return RoutingDecision {
                wallet_overflowed: true,
                notify_wallet_owners: true,
                ..queue_only
            };
        }
        let first = input.wallet[0].user_id;
        return RoutingDecision {
            status: TicketStatus::Open,
            owner_id: Some(first),
            wallet_routed: true,
            ..queue_only
        };
    }
    // 2. Chatbot.
    if let Some(flow) = input.flow
        && !input.is_group
    {
        return RoutingDecision {
            bot_flow: Some(flow),
            ..queue_only
        };
    }
    // 3. Queue, with the designated admin when asked.
    if input.force_admin_on_pending {
        return RoutingDecision {
            owner_id: input.designated_admin,
            ..queue_only
        };
    }
    queue_only
}

/// Whether a pending wallet ticket must overflow now that its owner went offline or paused
/// (SPEC §6: "Overflow also happens when the owner of a pending wallet ticket goes offline or pauses").
pub fn overflows_when_owner_leaves(
    wallet_overflow: bool,
    status: TicketStatus,
    already_overflowed: bool,
) -> bool {
    wallet_overflow && status == TicketStatus::Pending && !already_overflowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> RoutingInput {
        RoutingInput {
            force_wallet_routing: true,
            wallet_overflow: false,
            use_user_business_hours: false,
            force_admin_on_pending: false,
            is_group: false,
            wallet: vec![
                WalletCandidate {
                    user_id: UserId(1),
                    presence: Presence::Offline,
                    within_hours: true,
                },
                WalletCandidate {
                    user_id: UserId(2),
                    presence: Presence::Online,
                    within_hours: false,
                },
            ],
            default_queue: Some(QueueId(7)),
            flow: Some(FlowId(3)),
            designated_admin: Some(UserId(9)),
        }
    }

    #[test]
    fn first_online_wallet_owner_gets_the_ticket_open() {
        let decision = route_new_ticket(&input());
        assert_eq!(decision.status, TicketStatus::Open);
        assert_eq!(decision.owner_id, Some(UserId(2)));
        assert_eq!(
            decision.bot_flow, None,
            "the bot does not start on wallet tickets"
        );
    }

    #[test]
    fn owner_outside_their_hours_does_not_qualify_with_use_user_business_hours() {
        let decision = route_new_ticket(&RoutingInput {
            use_user_business_hours: true,
            ..input()
        });
        assert_eq!(
            decision.owner_id,
            Some(UserId(1)),
            "nobody qualifies: the first owner anyway"
        );
        assert_eq!(decision.status, TicketStatus::Open);
    }

    #[test]
    fn paused_owner_does_not_qualify() {
        let mut routing = input();
        routing.wallet[1].presence = Presence::Paused;
        assert_eq!(route_new_ticket(&routing).owner_id, Some(UserId(1)));
    }

    #[test]
    fn wallet_overflow_sends_the_ticket_to_the_default_queue_pending() {
        let mut routing = RoutingInput {
            wallet_overflow: true,
            ..input()
        };
        routing.wallet[1].presence = Presence::Offline;
        let decision = route_new_ticket(&routing);
        assert_eq!(decision.status, TicketStatus::Pending);
        assert_eq!(decision.owner_id, None);
        assert_eq!(decision.queue_id, Some(QueueId(7)));
        assert!(decision.wallet_overflowed && decision.notify_wallet_owners);
    }

    #[test]
    fn bot_starts_when_no_wallet_applies_and_not_for_groups() {
        let decision = route_new_ticket(&RoutingInput {
            force_wallet_routing: false,
            ..input()
        });
        assert_eq!(decision.bot_flow, Some(FlowId(3)));
        assert_eq!(decision.status, TicketStatus::Pending);
        let group = route_new_ticket(&RoutingInput {
            force_wallet_routing: false,
            is_group: true,
            ..input()
        });
        assert_eq!(group.bot_flow, None);
    }

    #[test]
    fn designated_admin_gets_unrouted_pending_tickets_with_force_admin_on_pending() {
        let base = RoutingInput {
            force_wallet_routing: false,
            flow: None,
            ..input()
        };
        assert_eq!(route_new_ticket(&base).owner_id, None);
        let forced = route_new_ticket(&RoutingInput {
            force_admin_on_pending: true,
            ..base
        });
        assert_eq!(forced.owner_id, Some(UserId(9)));
        assert_eq!(forced.status, TicketStatus::Pending);
    }

    #[test]
    fn pending_wallet_ticket_overflows_when_its_owner_leaves() {
        assert!(overflows_when_owner_leaves(
            true,
            TicketStatus::Pending,
            false
        ));
        assert!(!overflows_when_owner_leaves(
            false,
            TicketStatus::Pending,
            false
        ));
        assert!(!overflows_when_owner_leaves(
            true,
            TicketStatus::Open,
            false
        ));
        assert!(!overflows_when_owner_leaves(
            true,
            TicketStatus::Pending,
            true
        ));
    }
}
