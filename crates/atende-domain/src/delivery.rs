//! Delivery rules of outbound messages (SPEC §7): lanes, cadence, retry backoff, who may reply to
//! a ticket in which state, and the WhatsApp Business 24 h window. The sender in `atende-engine`
//! carries them out.

use crate::model::{ChannelKind, Connection, Profile, TicketStatus};
use crate::time::Timestamp;

/// The delivery lane of an outbound message (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Agent and bot replies.
    Interactive,
    /// Absence, farewell, auto-close, call-reject messages.
    Automatic,
    /// Campaigns and other mass sends: always cadenced.
    Bulk,
}

impl Lane {
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Interactive => "interactive",
            Lane::Automatic => "automatic",
            Lane::Bulk => "bulk",
        }
    }

    /// Unknown or missing lanes are treated as bulk: the cautious choice (always cadenced).
    pub fn parse(text: Option<&str>) -> Lane {
        match text {
            Some("interactive") => Lane::Interactive,
            Some("automatic") => Lane::Automatic,
            _ => Lane::Bulk,
        }
    }
}

/// The reason given when a `user` replies to a pending ticket.
pub const ACCEPT_FIRST: &str = "accept the ticket before replying";
/// The reason given when someone replies to a closed ticket.
pub const TICKET_CLOSED: &str = "the ticket is closed: reopen it before replying";

/// Who may reply to a ticket in its status: `None` = yes, else the 409 reason. A `user` must
/// accept a pending ticket first; admins and supervisors may answer it as it is.
pub fn reply_refusal(profile: Profile, status: TicketStatus) -> Option<&'static str> {
    match status {
        TicketStatus::Closed => Some(TICKET_CLOSED),
        TicketStatus::Pending if profile == Profile::User => Some(ACCEPT_FIRST),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------

/// How a connection paces its sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// Whether sends wait between each other at all.
    pub enabled: bool,
    pub min_ms: u64,
    pub max_ms: u64,
    /// `fast_send`: interactive and automatic skip the wait.
    pub fast_send: bool,
}

impl Cadence {
    /// The connection's cadence: its own delays over the tenant's; on by default only for
    /// unofficial WhatsApp (Evolution), others opt in with `cadence_enabled`.
    pub fn of(connection: &Connection, fast_send: bool, min_ms: i64, max_ms: i64) -> Cadence {
        let enabled = connection
            .cadence_enabled
            .unwrap_or(connection.kind == ChannelKind::Evolution);
        let min = connection.send_delay_min_ms.unwrap_or(min_ms).max(0);
        let max = connection.send_delay_max_ms.unwrap_or(max_ms).max(min);
        Cadence {
            enabled,
            min_ms: u64::try_from(min).unwrap_or(0),
            max_ms: u64::try_from(max).unwrap_or(0),
            fast_send,
        }
    }

    /// Whether a message of `lane` waits for the connection's gap.
    pub fn waits(self, lane: Lane) -> bool {
        self.enabled && !(self.fast_send && lane != Lane::Bulk)
    }

    /// The gap after a send, for a random `roll` in [0, 1).
    pub fn gap_ms(self, roll: f64) -> u64 {
        let span = self.max_ms.saturating_sub(self.min_ms) as f64;
        self.min_ms + (span * roll.clamp(0.0, 1.0)) as u64
    }
}

/// Delay before retry number `attempts + 1`: `base · 2^(attempts-1)`, capped at `max`, with
/// jitter taking it down to half at random (`roll` in [0, 1)).
pub fn backoff_ms(attempts: i64, base_ms: u64, max_ms: u64, roll: f64) -> u64 {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = base_ms.saturating_mul(1u64 << exponent).min(max_ms);
    let half = full / 2;
    half + ((full - half) as f64 * roll.clamp(0.0, 1.0)) as u64
}

// ---------------------------------------------------------------------------------------------

/// How long after the contact's last message a WhatsApp Business chat accepts free-form messages.
pub const SERVICE_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// The reason given when a free-form message would go out with the window closed (SPEC §7).
pub const WINDOW_CLOSED: &str = "the window is closed: send a template";

/// What the 24 h window rule needs to know about a ticket's chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowFacts {
    pub channel: ChannelKind,
    /// The provider's time of the contact's last message on the ticket's connection (any
    /// ticket): a late delivery of an old message does not reopen the window.
    pub last_inbound_at: Option<Timestamp>,
    /// A template was sent in the ticket's current cycle.
    pub template_in_cycle: bool,
    /// The tenant's `waba_send_outside_window`.
    pub send_outside_window: bool,
}

/// Only the WhatsApp Cloud API limits free-form messages to a window; unofficial WhatsApp,
/// Instagram, Telegram and the web chat do not.
pub fn has_service_window(channel: ChannelKind) -> bool {
    channel == ChannelKind::WhatsappCloud
}

/// The window is open while the contact's last message is less than 24 h old.
pub fn window_open(last_inbound_at: Option<Timestamp>, now: Timestamp) -> bool {
    last_inbound_at.is_some_and(|at| now.millis().saturating_sub(at.millis()) < SERVICE_WINDOW_MS)
}

/// May a free-form message (anything but a template) go out on this chat at `now`? `None` = yes,
/// else the reason. Outside the window only with `waba_send_outside_window` once a template went
/// out in this cycle: then it is attempted and the provider's refusal (131047) shows as `failed`.
/// Templates themselves are always allowed and never ask.
pub fn free_form_refusal(facts: &WindowFacts, now: Timestamp) -> Option<&'static str> {
    if !has_service_window(facts.channel) || window_open(facts.last_inbound_at, now) {
        return None;
    }
    if facts.send_outside_window && facts.template_in_cycle {
        return None;
    }
    Some(WINDOW_CLOSED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConnectionId, TenantId};
    use crate::model::{ConnectionStatus, MessageStatus::*};
    use crate::time::Timestamp;
    use proptest::prelude::*;

    const HOUR: i64 = 60 * 60 * 1000;

    fn window(
        channel: ChannelKind,
        last: Option<Timestamp>,
        template: bool,
        setting: bool,
    ) -> WindowFacts {
        WindowFacts {
            channel,
            last_inbound_at: last,
            template_in_cycle: template,
            send_outside_window: setting,
        }
    }

    #[test]
    fn free_form_goes_out_inside_the_window_or_after_a_template_with_the_setting() {
        use ChannelKind::*;
        let now = Timestamp(1_000 * HOUR);
        let ago = |ms: i64| Some(Timestamp(now.0 - ms));
        // (channel, contact's last message, template in this cycle, setting, may go out)
        let table = [
            (WhatsappCloud, ago(HOUR), false, false, true),
            (WhatsappCloud, ago(24 * HOUR - 1), false, false, true),
            (WhatsappCloud, ago(24 * HOUR), false, false, false),
            (WhatsappCloud, None, false, false, false),
            (WhatsappCloud, ago(30 * HOUR), true, false, false),
            (WhatsappCloud, ago(30 * HOUR), false, true, false),
            (WhatsappCloud, ago(30 * HOUR), true, true, true),
            (WhatsappCloud, None, true, true, true),
            (WhatsappCloud, ago(-HOUR), false, false, true),
            (Evolution, None, false, false, true),
            (Webchat, ago(30 * HOUR), false, false, true),
            (Instagram, None, false, false, true),
            (Telegram, None, false, false, true),
        ];
        for (channel, last, template, setting, allowed) in table {
            let refusal = free_form_refusal(&window(channel, last, template, setting), now);
            assert_eq!(
                refusal.is_none(),
                allowed,
                "{channel} last={last:?} template={template} setting={setting}"
            );
            if !allowed {
                assert_eq!(refusal, Some(WINDOW_CLOSED));
            }
        }
    }

    fn channel() -> impl Strategy<Value = ChannelKind> {
        proptest::sample::select(ChannelKind::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn the_window_rule_holds_for_any_chat(
            channel in channel(),
            last in proptest::option::of(0i64..100 * HOUR),
            template: bool,
            setting: bool,
            now in 0i64..100 * HOUR,
            later in 0i64..100 * HOUR,
            newer in 0i64..100 * HOUR,
        ) {
            let last = last.map(Timestamp);
            let now = Timestamp(now);
            let facts = window(channel, last, template, setting);
            let refused = free_form_refusal(&facts, now).is_some();
            if channel != ChannelKind::WhatsappCloud || (template && setting) {
                prop_assert!(!refused, "no window to close here");
            }
            if last.is_some_and(|at| at <= now && now.0 - at.0 < 24 * HOUR) {
                prop_assert!(!refused, "a message of the last 24 h opens the window");
            }
            if refused {
                prop_assert!(
                    free_form_refusal(&facts, now.plus_millis(later)).is_some(),
                    "time alone never reopens a closed window"
                );
            } else {
                let newer_message = Some(last.map_or(Timestamp(newer), |at| at.plus_millis(newer)));
                let fresher = window(channel, newer_message, template, setting);
                prop_assert!(
                    free_form_refusal(&fresher, now).is_none(),
                    "a newer message of the contact never closes an open window"
                );
            }
        }
    }

    #[test]
    fn statuses_only_move_forward() {
        assert!(Queued.can_advance_to(Sending));
        assert!(Sending.can_advance_to(Sent));
        assert!(Sent.can_advance_to(Delivered));
        assert!(Delivered.can_advance_to(Read));
        assert!(Sent.can_advance_to(Read));
        assert!(
            !Read.can_advance_to(Delivered),
            "a late delivered never undoes read"
        );
        assert!(!Delivered.can_advance_to(Sent));
        assert!(!Sending.can_advance_to(Queued));
        assert!(!Sent.can_advance_to(Sent));
    }

    #[test]
    fn failed_is_terminal_except_for_proof_of_delivery() {
        assert!(Sending.can_advance_to(Failed));
        assert!(Sent.can_advance_to(Failed));
        assert!(
            !Delivered.can_advance_to(Failed),
            "a delivered message did not fail"
        );
        assert!(!Read.can_advance_to(Failed));
        assert!(!Failed.can_advance_to(Failed));
        assert!(
            !Failed.can_advance_to(Queued),
            "resend is a command, not a status"
        );
        assert!(!Failed.can_advance_to(Sent));
        assert!(Failed.can_advance_to(Delivered));
        assert!(Failed.can_advance_to(Read));
    }

    #[test]
    fn a_user_accepts_a_pending_ticket_before_replying() {
        assert_eq!(
            reply_refusal(Profile::User, TicketStatus::Pending),
            Some(ACCEPT_FIRST)
        );
        assert_eq!(reply_refusal(Profile::Admin, TicketStatus::Pending), None);
        assert_eq!(
            reply_refusal(Profile::Supervisor, TicketStatus::Pending),
            None
        );
        assert_eq!(reply_refusal(Profile::User, TicketStatus::Open), None);
        assert_eq!(reply_refusal(Profile::User, TicketStatus::Paused), None);
        for profile in [Profile::Admin, Profile::Supervisor, Profile::User] {
            assert_eq!(
                reply_refusal(profile, TicketStatus::Closed),
                Some(TICKET_CLOSED)
            );
        }
    }

    fn connection(kind: ChannelKind) -> Connection {
        Connection {
            id: ConnectionId(1),
            tenant_id: TenantId(1),
            kind,
            name: "c".into(),
            status: ConnectionStatus::Connected,
            default_queue_id: None,
            default_flow_id: None,
            public_key: None,
            has_credentials: false,
            send_delay_min_ms: None,
            send_delay_max_ms: None,
            cadence_enabled: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    #[test]
    fn cadence_applies_to_evolution_by_default_and_others_opt_in() {
        assert!(Cadence::of(&connection(ChannelKind::Evolution), false, 10, 20).enabled);
        assert!(!Cadence::of(&connection(ChannelKind::Webchat), false, 10, 20).enabled);
        let mut opted = connection(ChannelKind::WhatsappCloud);
        opted.cadence_enabled = Some(true);
        opted.send_delay_min_ms = Some(50);
        let cadence = Cadence::of(&opted, false, 10, 20);
        assert!(cadence.enabled);
        assert_eq!(
            (cadence.min_ms, cadence.max_ms),
            (50, 50),
            "max never below min"
        );
        assert_eq!(cadence.gap_ms(0.0), 50);
    }

    #[test]
    fn fast_send_skips_the_gap_for_interactive_and_automatic_never_for_bulk() {
        let slow = Cadence::of(&connection(ChannelKind::Evolution), false, 100, 200);
        let fast = Cadence {
            fast_send: true,
            ..slow
        };
        for lane in [Lane::Interactive, Lane::Automatic, Lane::Bulk] {
            assert!(slow.waits(lane));
        }
        assert!(!fast.waits(Lane::Interactive));
        assert!(!fast.waits(Lane::Automatic));
        assert!(fast.waits(Lane::Bulk));
        assert!((100..=200).contains(&slow.gap_ms(0.5)));
        assert_eq!(slow.gap_ms(0.999_999), 199);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_down_to_half() {
        assert_eq!(backoff_ms(1, 1000, 60_000, 1.0), 1000);
        assert_eq!(backoff_ms(1, 1000, 60_000, 0.0), 500);
        assert_eq!(backoff_ms(3, 1000, 60_000, 1.0), 4000);
        assert_eq!(backoff_ms(30, 1000, 60_000, 1.0), 60_000);
        assert_eq!(backoff_ms(30, 1000, 60_000, 0.0), 30_000);
        let jittered = backoff_ms(2, 1000, 60_000, 0.5);
        assert!((1000..=2000).contains(&jittered));
    }
}
