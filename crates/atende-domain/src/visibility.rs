//! Who may see which ticket (SPEC §5): ONE rule for the list, the counters, the detail, the
//! messages, search, notifications and the live push.
//!
//! The rule is first turned into a [`Plan`] for one viewer under one set of settings: a union of
//! branches, each a conjunction of simple facts about a ticket. [`Plan::admits`] evaluates it in
//! memory (API checks, live push) and the store renders the same plan to SQL (one `UNION` branch per
//! [`Branch`], each index-friendly). [`can_see`] is the plain reading of the spec, kept as the
//! reference the plan is tested against.

use crate::ids::{QueueId, UserId};
use crate::model::{Profile, TicketStatus};
use crate::settings::Settings;

/// The person looking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: UserId,
    pub profile: Profile,
    /// The viewer's queues (any order).
    pub queue_ids: Vec<QueueId>,
}

/// The settings the rule reads, copied out so the rule is cheap to test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VisibilitySettings {
    pub supervisor_sees_as_user: bool,
    pub show_groups_to_all: bool,
    pub show_closed_to_all: bool,
    pub show_unassigned_to_all: bool,
    pub hide_bot_tickets: bool,
    pub force_wallet_routing: bool,
    pub hide_others_tickets: bool,
}

impl From<&Settings> for VisibilitySettings {
    fn from(settings: &Settings) -> Self {
        Self {
            supervisor_sees_as_user: settings.supervisor_sees_as_user,
            show_groups_to_all: settings.show_groups_to_all,
            show_closed_to_all: settings.show_closed_to_all,
            show_unassigned_to_all: settings.show_unassigned_to_all,
            hide_bot_tickets: settings.hide_bot_tickets,
            force_wallet_routing: settings.force_wallet_routing,
            hide_others_tickets: settings.hide_others_tickets,
        }
    }
}

/// What the rule needs to know about one ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub status: TicketStatus,
    pub owner_id: Option<UserId>,
    pub queue_id: Option<QueueId>,
    pub is_group: bool,
    /// A chatbot session or an external integration holds the ticket.
    pub bot_active: bool,
    pub wallet_overflowed: bool,
    /// The contact's wallet owners (any order).
    pub wallet_owner_ids: Vec<UserId>,
}

/// The reference reading of SPEC §5, rule by rule, in order.
pub fn can_see(
    viewer: &Viewer,
    ticket: &TicketFacts,
    settings: &VisibilitySettings,
    tenant_has_queues: bool,
) -> bool {
    // 1. admin; supervisor unless told to see as a user.
    match viewer.profile {
        Profile::Admin => return true,
        Profile::Supervisor if !settings.supervisor_sees_as_user => return true,
        _ => {}
    }
    // 2. mine.
    if ticket.owner_id == Some(viewer.user_id) {
        return true;
    }
    // 3. groups / closed shown to all.
    if ticket.is_group && settings.show_groups_to_all {
        return true;
    }
    if ticket.status == TicketStatus::Closed && settings.show_closed_to_all {
        return true;
    }
    // 4. nobody's and no queue's, shown to all (overrides what follows).
    if settings.show_unassigned_to_all
        && ticket.status != TicketStatus::Closed
        && ticket.owner_id.is_none()
        && ticket.queue_id.is_none()
    {
        return true;
    }
    // 5. held by a bot or integration with no owner: administrators only.
    if ticket.bot_active && ticket.owner_id.is_none() && settings.hide_bot_tickets {
        return false;
    }
    // 6. wallet.
    if settings.force_wallet_routing
        && !ticket.wallet_owner_ids.is_empty()
        && !ticket.wallet_overflowed
    {
        return ticket.wallet_owner_ids.contains(&viewer.user_id);
    }
    // 7. queue gate.
    if tenant_has_queues {
        match ticket.queue_id {
            Some(queue) if viewer.queue_ids.contains(&queue) => {}
            _ => return false,
        }
    }
    // 8. someone else's.
    if ticket.owner_id.is_some() && settings.hide_others_tickets {
        return false;
    }
    // 9.
    true
}

/// A simple fact about a ticket, each with a direct SQL form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fact {
    /// `owner_id = viewer`
    OwnerIsViewer,
    /// `owner_id IS NULL`
    OwnerIsNull,
    /// `queue_id IS NULL`
    QueueIsNull,
    /// `queue_id IN (viewer's queues)` (false when the viewer has none)
    QueueInViewers,
    /// `is_group`
    IsGroup,
    /// `status = 'closed'`
    IsClosed,
    /// A bot session or integration holds it.
    BotActive,
    /// `wallet_overflowed`
    WalletOverflowed,
    /// The contact has at least one wallet owner.
    WalletHasOwners,
    /// The viewer is one of the contact's wallet owners.
    ViewerInWallet,
}

/// A fact or its negation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Literal {
    pub fact: Fact,
    pub holds: bool,
}

impl Literal {
    pub const fn is(fact: Fact) -> Self {
        Self { fact, holds: true }
    }

    pub const fn not(fact: Fact) -> Self {
        Self { fact, holds: false }
    }
}

/// All literals must hold. An empty branch admits every ticket.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Branch {
    pub all: Vec<Literal>,
}

/// Visible iff some branch admits the ticket. No branches = sees nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub viewer: Viewer,
    pub branches: Vec<Branch>,
}

impl Plan {
    /// Compiles SPEC §5 for one viewer: settings and the viewer's profile are decided here, so only
    /// facts about the ticket remain.
    pub fn for_viewer(
        viewer: &Viewer,
        settings: &VisibilitySettings,
        tenant_has_queues: bool,
    ) -> Plan {
        use Fact::*;
        let sees_all = match viewer.profile {
            Profile::Admin => true,
            Profile::Supervisor => !settings.supervisor_sees_as_user,
            Profile::User => false,
        };
        let mut branches = Vec::new();
        if sees_all {
            branches.push(Branch::default());
            return Plan {
                viewer: viewer.clone(),
                branches,
            };
        }
        // Rules 2–4: each admits on its own.
        branches.push(Branch {
            all: vec![Literal::is(OwnerIsViewer)],
        });
        if settings.show_groups_to_all {
            branches.push(Branch {
                all: vec![Literal::is(IsGroup)],
            });
        }
        if settings.show_closed_to_all {
            branches.push(Branch {
                all: vec![Literal::is(IsClosed)],
            });
        }
        if settings.show_unassigned_to_all {
            branches.push(Branch {
                all: vec![
                    Literal::not(IsClosed),
                    Literal::is(OwnerIsNull),
                    Literal::is(QueueIsNull),
                ],
            });
        }
        // Rules 5–9 for what rules 2–4 did not admit. Rule 5 ("bot-held and unowned → hidden")
        // becomes: not bot-held, or owned.
        let bot_cases: Vec<Vec<Literal>> = if settings.hide_bot_tickets {
            vec![
                vec![Literal::not(BotActive)],
                vec![Literal::is(BotActive), Literal::not(OwnerIsNull)],
            ]
        } else {
            vec![Vec::new()]
        };
        // Rule 8: someone else's → hidden; the viewer's own are admitted above, so "unowned".
        let others_rule: Vec<Literal> = if settings.hide_others_tickets {
            vec![Literal::is(OwnerIsNull)]
        } else {
            Vec::new()
        };
        let queue_gate: Vec<Literal> = if tenant_has_queues {
            vec![Literal::is(QueueInViewers)]
        } else {
            Vec::new()
        };
        for bot in &bot_cases {
            if settings.force_wallet_routing {
                // Rule 6 applies: visible iff the viewer is an owner.
                let mut wallet = bot.clone();
                wallet.extend([
                    Literal::is(WalletHasOwners),
                    Literal::not(WalletOverflowed),
                    Literal::is(ViewerInWallet),
                ]);
                branches.push(Branch { all: wallet });
                // Rule 6 does not apply: no owners, or overflowed.
                for escape in [Literal::not(WalletHasOwners), Literal::is(WalletOverflowed)] {
                    let mut rest = bot.clone();
                    rest.push(escape);
                    rest.extend(queue_gate.iter().copied());
                    rest.extend(others_rule.iter().copied());
                    branches.push(Branch { all: rest });
                }
            } else {
                let mut rest = bot.clone();
                rest.extend(queue_gate.iter().copied());
                rest.extend(others_rule.iter().copied());
                branches.push(Branch { all: rest });
            }
        }
        Plan {
            viewer: viewer.clone(),
            branches,
        }
    }

    /// Whether the viewer sees every ticket (admins, supervisors by default).
    pub fn sees_all(&self) -> bool {
        self.branches.iter().any(|b| b.all.is_empty())
    }

    pub fn admits(&self, ticket: &TicketFacts) -> bool {
        self.branches.iter().any(|branch| {
            branch
                .all
                .iter()
                .all(|lit| self.fact(lit.fact, ticket) == lit.holds)
        })
    }

    fn fact(&self, fact: Fact, ticket: &TicketFacts) -> bool {
        match fact {
            Fact::OwnerIsViewer => ticket.owner_id == Some(self.viewer.user_id),
            Fact::OwnerIsNull => ticket.owner_id.is_none(),
            Fact::QueueIsNull => ticket.queue_id.is_none(),
            Fact::QueueInViewers => ticket
                .queue_id
                .is_some_and(|q| self.viewer.queue_ids.contains(&q)),
            Fact::IsGroup => ticket.is_group,
            Fact::IsClosed => ticket.status == TicketStatus::Closed,
            Fact::BotActive => ticket.bot_active,
            Fact::WalletOverflowed => ticket.wallet_overflowed,
            Fact::WalletHasOwners => !ticket.wallet_owner_ids.is_empty(),
            Fact::ViewerInWallet => ticket.wallet_owner_ids.contains(&self.viewer.user_id),
        }
    }
}

/// Which messages of a visible ticket the viewer may read (SPEC §5, "Messages").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAccess {
    /// Nothing: a `user` looking at a pending ticket without `spy`.
    None,
    /// Every message (admins; supervisors seeing as admins).
    All,
    /// The ticket's own messages, and messages of the contact's earlier tickets (history) only
    /// when stamped with no queue or with one of the viewer's queues.
    ViewerQueuesOnly,
}

/// Message access for a ticket the viewer can see. Owners always read their own ticket.
pub fn message_access(
    viewer: &Viewer,
    ticket: &TicketFacts,
    settings: &VisibilitySettings,
    spy_enabled: bool,
) -> MessageAccess {
    let sees_all = match viewer.profile {
        Profile::Admin => true,
        Profile::Supervisor => !settings.supervisor_sees_as_user,
        Profile::User => false,
    };
    if sees_all {
        return MessageAccess::All;
    }
    let owner = ticket.owner_id == Some(viewer.user_id);
    if viewer.profile == Profile::User
        && ticket.status == TicketStatus::Pending
        && !owner
        && !spy_enabled
    {
        return MessageAccess::None;
    }
    MessageAccess::ViewerQueuesOnly
}

/// Whether a history message (of another ticket) stamped with `queue_stamp` may be shown under
/// `ViewerQueuesOnly`.
pub fn message_stamp_visible(viewer: &Viewer, queue_stamp: Option<QueueId>) -> bool {
    stamp_in_queues(&viewer.queue_ids, queue_stamp)
}

/// [`message_stamp_visible`] for a viewer in `queues`: no stamp, or one of them.
pub fn stamp_in_queues(queues: &[QueueId], queue_stamp: Option<QueueId>) -> bool {
    queue_stamp.is_none_or(|queue| queues.contains(&queue))
}

#[cfg(test)]
mod tests;
