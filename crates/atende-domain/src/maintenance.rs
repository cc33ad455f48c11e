//! The maintenance actions of SPEC §10: the admin's repair buttons, each run as a background job
//! that is safe to run twice. This module names them and decides, row by row, what each one
//! changes; the engine carries the decisions out and the store applies them with guards.
//!
//! Every decision here is a fixed point: applied once, asking again answers "nothing to do", which
//! is what makes a second run change nothing.

use crate::phone::{self, PhoneError};
use crate::{ContactId, MessageStatus, Timestamp};

crate::wire_enum!(
    /// A maintenance action (SPEC §10), by the name used in `POST /api/v1/maintenance/{action}`.
    MaintenanceAction {
        SendStuckMessages = "send_stuck_messages",
        ResolveFailedMessages = "resolve_failed_messages",
        ValidateContacts = "validate_contacts",
        FixImportedMessageDates = "fix_imported_message_dates",
        FixTicketDates = "fix_ticket_dates",
    }
);

/// Start of the job kind of every maintenance action: the maintenance worker claims only these.
pub const JOB_KIND_PREFIX: &str = "maintenance.";

impl MaintenanceAction {
    /// The kind of the job that runs this action (`maintenance.<action>`).
    pub fn job_kind(self) -> String {
        format!("{JOB_KIND_PREFIX}{}", self.as_str())
    }

    /// The action a job kind runs, if it is a maintenance job.
    pub fn of_job_kind(kind: &str) -> Option<MaintenanceAction> {
        kind.strip_prefix(JOB_KIND_PREFIX)
            .and_then(MaintenanceAction::parse)
    }
}

/// An outbound message that has waited this long (overdue in `queued`, or untouched in
/// `sending`) is stuck (SPEC §10: "longer than 5 min").
pub const STUCK_AFTER_MS: i64 = 5 * 60_000;

/// What `send_stuck_messages` does with one stuck outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StuckFix {
    /// The provider accepted it (we hold its id): record it `sent`; never hand it over again.
    MarkSent,
    /// Put it back in the queue, due now.
    Requeue,
    /// Leave it `sending` (flagged) for the provider's status or echo to settle, or the sender's
    /// timeout to fail; the agent may then resend it knowingly.
    Leave,
}

/// The fix for a stuck message.
///
/// - `queued`: making it due now hands nothing to the provider that was not going there anyway.
/// - `sending` with the provider's id: the provider has it. Sending it again is exactly the
///   duplicate SPEC §7 forbids, so it is recorded `sent`.
/// - `sending` without an id: whether the provider got it is unknown (the sender died, or the
///   request timed out after it went out). Re-sending is safe only where a repeat under the same
///   idempotency key cannot reach the contact twice (`resend_is_idempotent`: the web chat, whose
///   "send" is storing under our own key, so there is no provider id that could ever come to
///   reconcile it and waiting would leave it stuck for good). Everywhere else the provider's
///   status webhook or echo is the only proof, and a blind repeat could duplicate a message the
///   contact already has: it is left for that reconciliation.
pub fn stuck_fix(
    status: MessageStatus,
    has_provider_id: bool,
    resend_is_idempotent: bool,
) -> StuckFix {
    match status {
        MessageStatus::Queued => StuckFix::Requeue,
        MessageStatus::Sending if has_provider_id => StuckFix::MarkSent,
        MessageStatus::Sending if resend_is_idempotent => StuckFix::Requeue,
        _ => StuckFix::Leave,
    }
}

/// The reason `resolve_failed_messages` records on a message that errored without one (a send
/// interrupted or unanswered).
pub const UNSETTLED_SEND_REASON: &str =
    "the send was never confirmed: the provider may or may not have received it";

/// What `validate_contacts` finds in a contact's stored phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneCheck {
    /// Already E.164 (or no phone at all).
    Valid,
    /// A real number written another way: store this E.164 form instead.
    Fix(String),
    /// Not a phone number: reported, left as it is for a person to correct.
    Invalid(PhoneError),
}

pub fn check_phone(stored: &str) -> PhoneCheck {
    if stored.trim().is_empty() {
        return PhoneCheck::Valid;
    }
    match phone::normalize_e164(stored) {
        Ok(normal) if normal == stored => PhoneCheck::Valid,
        Ok(normal) => PhoneCheck::Fix(normal),
        Err(error) => PhoneCheck::Invalid(error),
    }
}

/// What `validate_contacts` does with one identity after asking the channel's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityFix {
    /// The provider knows it under the id we store (or the contact has the canonical id too).
    Keep,
    /// The provider knows the account under another id (e.g. the JID that fixes a Brazilian
    /// number's 9th digit) that no contact has yet: store that one.
    Rename(String),
    /// The canonical id belongs to another contact: both are one person. The older contact is
    /// kept (its id is the one wallets, links and history most likely refer to).
    Merge { keep: ContactId, absorb: ContactId },
    /// No account on the channel has this id: reported, not deleted (history stays reachable).
    Missing,
}

/// `canonical`: the id the provider answered, `None` when it has no such account;
/// `owner_of_canonical`: the contact that already holds the canonical id on this channel.
pub fn identity_fix(
    contact: ContactId,
    stored: &str,
    canonical: Option<&str>,
    owner_of_canonical: Option<ContactId>,
) -> IdentityFix {
    let Some(canonical) = canonical else {
        return IdentityFix::Missing;
    };
    if canonical == stored {
        return IdentityFix::Keep;
    }
    match owner_of_canonical {
        None => IdentityFix::Rename(canonical.to_owned()),
        Some(owner) if owner == contact => IdentityFix::Keep,
        Some(owner) => IdentityFix::Merge {
            keep: owner.min(contact),
            absorb: owner.max(contact),
        },
    }
}

/// The dates of a ticket that `fix_ticket_dates` recomputes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketDates {
    pub last_message_at: Option<Timestamp>,
    pub last_inbound_at: Option<Timestamp>,
    pub updated_at: Timestamp,
}

/// What the ticket's messages say: the latest `sent_at` of any message, and of inbound ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageDates {
    pub latest: Option<Timestamp>,
    pub latest_inbound: Option<Timestamp>,
}

/// The dates a ticket should have, or `None` when its dates already agree with its messages.
///
/// The live paths keep `last_message_at` at the latest message's `sent_at` and `last_inbound_at`
/// at the latest inbound one's; `updated_at` is never older than the last message. A ticket that
/// breaks any of these (imported history stamped with the import time, a lost bump) gets all
/// three from its messages, `updated_at` included: for imported history the ticket's last
/// activity is its last provider time (reference/channels.md §6.5). A ticket that agrees is left
/// alone, so the later activity that legitimately moved its `updated_at` is kept.
pub fn ticket_dates_fix(current: TicketDates, messages: MessageDates) -> Option<TicketDates> {
    let agrees = current.last_message_at == messages.latest
        && current.last_inbound_at == messages.latest_inbound
        && messages
            .latest
            .is_none_or(|latest| current.updated_at >= latest);
    if agrees {
        return None;
    }
    Some(TicketDates {
        last_message_at: messages.latest,
        last_inbound_at: messages.latest_inbound,
        updated_at: messages.latest.unwrap_or(current.updated_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_round_trips_through_its_job_kind() {
        for action in MaintenanceAction::ALL {
            assert_eq!(
                MaintenanceAction::of_job_kind(&action.job_kind()),
                Some(*action)
            );
        }
        assert_eq!(MaintenanceAction::of_job_kind("send_stuck_messages"), None);
        assert_eq!(MaintenanceAction::of_job_kind("maintenance.nope"), None);
    }

    #[test]
    fn a_stuck_message_the_provider_accepted_is_marked_sent_never_requeued() {
        for idempotent in [false, true] {
            assert_eq!(
                stuck_fix(MessageStatus::Sending, true, idempotent),
                StuckFix::MarkSent
            );
        }
    }

    #[test]
    fn an_unconfirmed_send_is_requeued_only_where_a_repeat_cannot_duplicate() {
        assert_eq!(
            stuck_fix(MessageStatus::Sending, false, true),
            StuckFix::Requeue
        );
        assert_eq!(
            stuck_fix(MessageStatus::Sending, false, false),
            StuckFix::Leave
        );
    }

    #[test]
    fn an_overdue_queued_message_is_made_due() {
        assert_eq!(
            stuck_fix(MessageStatus::Queued, false, false),
            StuckFix::Requeue
        );
    }

    #[test]
    fn settled_messages_are_never_touched() {
        for status in [
            MessageStatus::Sent,
            MessageStatus::Delivered,
            MessageStatus::Read,
            MessageStatus::Failed,
        ] {
            assert_eq!(stuck_fix(status, false, true), StuckFix::Leave);
        }
    }

    #[test]
    fn phones_are_fixed_to_e164_and_garbage_is_reported() {
        assert_eq!(check_phone("+5511987654321"), PhoneCheck::Valid);
        assert_eq!(check_phone(""), PhoneCheck::Valid);
        assert_eq!(
            check_phone("(11) 98765-4321"),
            PhoneCheck::Fix("+5511987654321".into())
        );
        assert!(matches!(
            check_phone("ligar depois"),
            PhoneCheck::Invalid(_)
        ));
        assert!(matches!(check_phone("123"), PhoneCheck::Invalid(_)));
    }

    #[test]
    fn a_fixed_phone_needs_no_second_fix() {
        let PhoneCheck::Fix(fixed) = check_phone("011 3265-4321") else {
            panic!("expected a fix");
        };
        assert_eq!(check_phone(&fixed), PhoneCheck::Valid);
    }

    #[test]
    fn identities_are_kept_renamed_merged_into_the_older_contact_or_reported() {
        let me = ContactId(7);
        assert_eq!(
            identity_fix(me, "551188887777", None, None),
            IdentityFix::Missing
        );
        assert_eq!(
            identity_fix(me, "5511988887777", Some("5511988887777"), Some(me)),
            IdentityFix::Keep
        );
        assert_eq!(
            identity_fix(me, "551188887777", Some("5511988887777"), None),
            IdentityFix::Rename("5511988887777".into())
        );
        assert_eq!(
            identity_fix(me, "551188887777", Some("5511988887777"), Some(me)),
            IdentityFix::Keep,
            "the contact already has the canonical id as well"
        );
        assert_eq!(
            identity_fix(
                me,
                "551188887777",
                Some("5511988887777"),
                Some(ContactId(3))
            ),
            IdentityFix::Merge {
                keep: ContactId(3),
                absorb: me
            }
        );
        assert_eq!(
            identity_fix(
                me,
                "551188887777",
                Some("5511988887777"),
                Some(ContactId(9))
            ),
            IdentityFix::Merge {
                keep: me,
                absorb: ContactId(9)
            }
        );
    }

    fn dates(last: Option<i64>, inbound: Option<i64>, updated: i64) -> TicketDates {
        TicketDates {
            last_message_at: last.map(Timestamp),
            last_inbound_at: inbound.map(Timestamp),
            updated_at: Timestamp(updated),
        }
    }

    fn from_messages(latest: Option<i64>, inbound: Option<i64>) -> MessageDates {
        MessageDates {
            latest: latest.map(Timestamp),
            latest_inbound: inbound.map(Timestamp),
        }
    }

    #[test]
    fn a_ticket_that_agrees_with_its_messages_is_left_alone() {
        let later_transfer = dates(Some(100), Some(90), 500);
        assert_eq!(
            ticket_dates_fix(later_transfer, from_messages(Some(100), Some(90))),
            None
        );
        assert_eq!(
            ticket_dates_fix(dates(None, None, 5), from_messages(None, None)),
            None
        );
    }

    #[test]
    fn imported_history_takes_its_dates_from_the_provider_times() {
        let imported = dates(Some(9_000), Some(9_000), 9_000);
        let fixed = ticket_dates_fix(imported, from_messages(Some(100), Some(80)));
        assert_eq!(fixed, Some(dates(Some(100), Some(80), 100)));
        let again =
            fixed.and_then(|fixed| ticket_dates_fix(fixed, from_messages(Some(100), Some(80))));
        assert_eq!(again, None, "a second run changes nothing");
    }

    #[test]
    fn a_lost_bump_is_recomputed_and_updated_at_never_stays_behind() {
        assert_eq!(
            ticket_dates_fix(
                dates(Some(50), None, 50),
                from_messages(Some(100), Some(100))
            ),
            Some(dates(Some(100), Some(100), 100))
        );
        assert_eq!(
            ticket_dates_fix(dates(Some(100), None, 40), from_messages(Some(100), None)),
            Some(dates(Some(100), None, 100))
        );
        assert_eq!(
            ticket_dates_fix(dates(Some(100), Some(100), 300), from_messages(None, None)),
            Some(dates(None, None, 300)),
            "without messages the dates are cleared and updated_at is kept"
        );
    }
}
