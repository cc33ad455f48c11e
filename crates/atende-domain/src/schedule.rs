//! Which business hours apply to a ticket, whether an inbound message earns the absence message,
//! and when an idle ticket is due to be resolved (SPEC §8). Pure, so the inbound automations, the
//! auto-resolve worker and their tests all ask the same functions.
//!
//! Readings chosen where SPEC §8 is terse:
//! - The effective *schedule* is the first level that defines one: the ticket's queue, then its
//!   owner (with `use_user_business_hours`), then the tenant. The absence *text* is the queue's
//!   `absence_message` when it has one, else the tenant's `out_of_hours_message`.
//! - Group chats never get the absence message (one bot reply per member would flood the group).
//! - "Our last message" for auto-resolve is the last message an agent or the bot sent that did not
//!   fail. Automatic system messages (absence, call-reject) and system notes do not count: an
//!   absence message at night is not an answer, and closing that ticket before anyone read it
//!   would lose the contact's question.

use chrono_tz::Tz;

use crate::hours::{WeeklySchedule, parse_timezone};
use crate::model::{Queue, TicketStatus, User};
use crate::settings::Settings;
use crate::time::Timestamp;

/// Where the effective schedule came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleSource {
    Queue,
    User,
    Tenant,
}

/// The hours that apply to one ticket and the text to send outside them.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveSchedule {
    pub schedule: WeeklySchedule,
    pub timezone: Tz,
    /// Empty = send nothing.
    pub absence_message: String,
    pub source: ScheduleSource,
}

impl EffectiveSchedule {
    pub fn is_open_at(&self, at: Timestamp) -> bool {
        self.schedule.is_open_at(at.to_utc(), self.timezone)
    }
}

/// A stored schedule; one that no longer parses counts as "not set" (it was validated on write).
fn stored_schedule(value: Option<&serde_json::Value>) -> Option<WeeklySchedule> {
    value
        .filter(|v| !v.is_null())
        .and_then(|v| WeeklySchedule::from_json(v, "business_hours").ok())
}

/// What a queue contributes to the schedule (from a [`Queue`] or straight from the store).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueHours<'a> {
    /// `None` = the queue has no hours of its own.
    pub business_hours: Option<&'a serde_json::Value>,
    /// Empty = use the tenant's text.
    pub absence_message: &'a str,
}

impl<'a> From<&'a Queue> for QueueHours<'a> {
    fn from(queue: &'a Queue) -> Self {
        Self {
            business_hours: queue.business_hours.as_ref(),
            absence_message: &queue.absence_message,
        }
    }
}

/// What the ticket's owner contributes (read only with `use_user_business_hours`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UserHours<'a> {
    pub business_hours: Option<&'a serde_json::Value>,
    /// `None` = the tenant's timezone.
    pub timezone: Option<&'a str>,
}

impl<'a> From<&'a User> for UserHours<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            business_hours: user.business_hours.as_ref(),
            timezone: user.timezone.as_deref(),
        }
    }
}

/// The schedule of a ticket in `queue` owned by `owner` (SPEC §8: queue → user → tenant).
pub fn effective_schedule(
    queue: Option<QueueHours<'_>>,
    owner: Option<UserHours<'_>>,
    settings: &Settings,
) -> EffectiveSchedule {
    let absence_message = queue
        .map(|q| q.absence_message.trim())
        .filter(|text| !text.is_empty())
        .unwrap_or(settings.out_of_hours_message.as_str())
        .to_owned();
    if let Some(schedule) = queue.and_then(|q| stored_schedule(q.business_hours)) {
        return EffectiveSchedule {
            schedule,
            timezone: settings.timezone,
            absence_message,
            source: ScheduleSource::Queue,
        };
    }
    if settings.use_user_business_hours
        && let Some(user) = owner
        && let Some(schedule) = stored_schedule(user.business_hours)
    {
        let timezone = user
            .timezone
            .and_then(|name| parse_timezone(name).ok())
            .unwrap_or(settings.timezone);
        return EffectiveSchedule {
            schedule,
            timezone,
            absence_message,
            source: ScheduleSource::User,
        };
    }
    EffectiveSchedule {
        schedule: settings.business_hours.clone(),
        timezone: settings.timezone,
        absence_message,
        source: ScheduleSource::Tenant,
    }
}

/// The absence message to queue for an inbound message received at `at`, if any: outside the
/// effective hours, not a group, fewer than `max` sent in this cycle (`0` = never), and there is
/// a text to send.
pub fn absence_message(
    effective: &EffectiveSchedule,
    at: Timestamp,
    is_group: bool,
    sent_this_cycle: i64,
    max: i64,
) -> Option<&str> {
    let text = effective.absence_message.trim();
    let allowed = !is_group && max > 0 && sent_this_cycle < max && !text.is_empty();
    (allowed && !effective.is_open_at(at)).then_some(text)
}

/// The auto-resolve settings (`auto_resolve_idle`, `auto_resolve_after_minutes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoResolve {
    pub enabled: bool,
    pub after_minutes: i64,
}

impl From<&Settings> for AutoResolve {
    fn from(settings: &Settings) -> Self {
        Self {
            enabled: settings.auto_resolve_idle,
            after_minutes: settings.auto_resolve_after_minutes,
        }
    }
}

/// The last message of the conversation that counts for auto-resolve (see the module note).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastMessage {
    /// Sent by us (an agent or the bot); `false` = the contact wrote last.
    pub ours: bool,
    pub sent_at: Timestamp,
}

/// What the auto-resolve rule reads about a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleFacts {
    pub status: TicketStatus,
    pub is_group: bool,
    pub last_message: Option<LastMessage>,
    /// When the current cycle opened: a reopened ticket is not idle since before it reopened.
    pub cycle_opened_at: Timestamp,
}

/// When the ticket is due to be closed for inactivity (SPEC §8), or `None`: open or pending, not a
/// group, our message last, due `after_minutes` after it (or after the cycle opened, if later).
pub fn auto_resolve_due_at(rule: AutoResolve, facts: &IdleFacts) -> Option<Timestamp> {
    if !rule.enabled
        || facts.is_group
        || !matches!(facts.status, TicketStatus::Open | TicketStatus::Pending)
    {
        return None;
    }
    let last = facts.last_message.filter(|m| m.ours)?;
    Some(
        last.sent_at
            .max(facts.cycle_opened_at)
            .plus_minutes(rule.after_minutes.max(0)),
    )
}

/// Whether the ticket must be closed for inactivity at `now`.
pub fn auto_resolve_is_due(rule: AutoResolve, facts: &IdleFacts, now: Timestamp) -> bool {
    auto_resolve_due_at(rule, facts).is_some_and(|due| due <= now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{QueueId, TenantId, UserId};
    use crate::model::Presence;
    use serde_json::json;

    // 2026-03-02 is a Monday; 15:00 UTC = 12:00 in São Paulo (UTC−3).
    const MONDAY_NOON_SP: Timestamp = Timestamp(1_772_463_600_000);
    const MONDAY_22H_SP: Timestamp = Timestamp(1_772_499_600_000);

    fn weekdays_8_to_18() -> serde_json::Value {
        let day = json!([{"start": "08:00", "end": "18:00"}]);
        json!({"days": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day}})
    }

    fn queue(hours: Option<serde_json::Value>, absence: &str) -> Queue {
        Queue {
            id: QueueId(1),
            tenant_id: TenantId(1),
            name: "Suporte".into(),
            color: "#000000".into(),
            greeting: String::new(),
            absence_message: absence.into(),
            business_hours: hours,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn user(hours: Option<serde_json::Value>, timezone: Option<&str>) -> User {
        User {
            id: UserId(1),
            tenant_id: Some(TenantId(1)),
            email: "a@b.c".into(),
            name: "Ana".into(),
            profile: Some(crate::model::Profile::User),
            is_superadmin: false,
            queue_ids: vec![],
            business_hours: hours,
            timezone: timezone.map(str::to_owned),
            presence: Presence::Online,
            pause_reason: None,
            locale: "pt-BR".into(),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    fn tenant_closed_at_night() -> Settings {
        Settings {
            business_hours: WeeklySchedule::from_json(&weekdays_8_to_18(), "business_hours")
                .unwrap(),
            out_of_hours_message: "Estamos fora do horário.".into(),
            ..Settings::default()
        }
    }

    #[test]
    fn queue_hours_win_over_user_and_tenant_hours() {
        let settings = Settings {
            use_user_business_hours: true,
            ..tenant_closed_at_night()
        };
        let q = queue(Some(json!({"always_open": true})), "");
        let u = user(Some(json!({"days": {}})), None);
        let effective = effective_schedule(Some((&q).into()), Some((&u).into()), &settings);
        assert_eq!(effective.source, ScheduleSource::Queue);
        assert!(effective.is_open_at(MONDAY_22H_SP));
    }

    #[test]
    fn user_hours_apply_only_with_use_user_business_hours_and_an_owner() {
        let q = queue(None, "");
        let u = user(Some(json!({"always_open": true})), Some("Europe/Lisbon"));
        let off = effective_schedule(
            Some((&q).into()),
            Some((&u).into()),
            &tenant_closed_at_night(),
        );
        assert_eq!(off.source, ScheduleSource::Tenant);
        let settings = Settings {
            use_user_business_hours: true,
            ..tenant_closed_at_night()
        };
        let on = effective_schedule(Some((&q).into()), Some((&u).into()), &settings);
        assert_eq!(on.source, ScheduleSource::User);
        assert_eq!(on.timezone, chrono_tz::Europe::Lisbon);
        assert_eq!(
            effective_schedule(Some((&q).into()), None, &settings).source,
            ScheduleSource::Tenant
        );
    }

    #[test]
    fn the_queue_absence_text_wins_over_the_tenant_text() {
        let settings = tenant_closed_at_night();
        assert_eq!(
            effective_schedule(Some((&queue(None, "Fila fechada")).into()), None, &settings)
                .absence_message,
            "Fila fechada"
        );
        assert_eq!(
            effective_schedule(Some((&queue(None, "  ")).into()), None, &settings).absence_message,
            "Estamos fora do horário."
        );
    }

    #[test]
    fn absence_message_goes_out_of_hours_at_most_max_times_per_cycle_and_never_with_max_zero() {
        let effective = effective_schedule(None, None, &tenant_closed_at_night());
        assert_eq!(
            absence_message(&effective, MONDAY_22H_SP, false, 0, 1),
            Some("Estamos fora do horário.")
        );
        assert_eq!(
            absence_message(&effective, MONDAY_22H_SP, false, 1, 1),
            None
        );
        assert_eq!(
            absence_message(&effective, MONDAY_22H_SP, false, 1, 2),
            Some("Estamos fora do horário.")
        );
        assert_eq!(
            absence_message(&effective, MONDAY_22H_SP, false, 0, 0),
            None
        );
        assert_eq!(
            absence_message(&effective, MONDAY_NOON_SP, false, 0, 1),
            None,
            "within hours"
        );
        assert_eq!(
            absence_message(&effective, MONDAY_22H_SP, true, 0, 1),
            None,
            "groups"
        );
    }

    #[test]
    fn no_absence_message_when_the_text_is_empty() {
        let settings = Settings {
            out_of_hours_message: String::new(),
            ..tenant_closed_at_night()
        };
        let effective = effective_schedule(None, None, &settings);
        assert_eq!(
            absence_message(&effective, MONDAY_22H_SP, false, 0, 5),
            None
        );
    }

    fn idle(status: TicketStatus, last: Option<LastMessage>) -> IdleFacts {
        IdleFacts {
            status,
            is_group: false,
            last_message: last,
            cycle_opened_at: Timestamp(0),
        }
    }

    const RULE: AutoResolve = AutoResolve {
        enabled: true,
        after_minutes: 30,
    };

    #[test]
    fn idle_ticket_whose_last_message_was_ours_is_due_after_the_silence() {
        let ours = Some(LastMessage {
            ours: true,
            sent_at: Timestamp(1_000_000),
        });
        let due = auto_resolve_due_at(RULE, &idle(TicketStatus::Open, ours));
        assert_eq!(due, Some(Timestamp(1_000_000 + 30 * 60_000)));
        assert!(auto_resolve_is_due(
            RULE,
            &idle(TicketStatus::Pending, ours),
            Timestamp(1_000_000 + 30 * 60_000)
        ));
        assert!(!auto_resolve_is_due(
            RULE,
            &idle(TicketStatus::Pending, ours),
            Timestamp(1_000_000 + 30 * 60_000 - 1)
        ));
    }

    #[test]
    fn no_auto_resolve_when_the_contact_wrote_last_or_the_rule_is_off() {
        let theirs = Some(LastMessage {
            ours: false,
            sent_at: Timestamp(1),
        });
        assert_eq!(
            auto_resolve_due_at(RULE, &idle(TicketStatus::Open, theirs)),
            None
        );
        assert_eq!(
            auto_resolve_due_at(RULE, &idle(TicketStatus::Open, None)),
            None
        );
        let ours = Some(LastMessage {
            ours: true,
            sent_at: Timestamp(1),
        });
        let off = AutoResolve {
            enabled: false,
            ..RULE
        };
        assert_eq!(
            auto_resolve_due_at(off, &idle(TicketStatus::Open, ours)),
            None
        );
    }

    #[test]
    fn groups_paused_and_closed_tickets_are_never_auto_resolved() {
        let ours = Some(LastMessage {
            ours: true,
            sent_at: Timestamp(1),
        });
        assert_eq!(
            auto_resolve_due_at(RULE, &idle(TicketStatus::Paused, ours)),
            None
        );
        assert_eq!(
            auto_resolve_due_at(RULE, &idle(TicketStatus::Closed, ours)),
            None
        );
        let group = IdleFacts {
            is_group: true,
            ..idle(TicketStatus::Open, ours)
        };
        assert_eq!(auto_resolve_due_at(RULE, &group), None);
    }

    #[test]
    fn a_reopened_ticket_is_idle_only_since_it_reopened() {
        let old = Some(LastMessage {
            ours: true,
            sent_at: Timestamp(1_000),
        });
        let facts = IdleFacts {
            cycle_opened_at: Timestamp(5_000_000),
            ..idle(TicketStatus::Open, old)
        };
        assert_eq!(
            auto_resolve_due_at(RULE, &facts),
            Some(Timestamp(5_000_000 + 30 * 60_000))
        );
    }
}
