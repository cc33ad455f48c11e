//! The dashboard (SPEC §12): attendance episodes (ticket cycles) opened and closed per day of the
//! tenant's `timezone`, tickets by status now, and first-response and resolution times per queue
//! and per agent, for a period of at most 366 days (`atende_domain::dashboard`).
//!
//! Who sees what (SPEC §1, §5): admins, and supervisors unless `supervisor_sees_as_user`, see the
//! whole tenant and may narrow it to a queue and/or an agent. Everyone else sees only their own
//! figures: the cycles and tickets they own (asking for another agent's → 403); a queue filter
//! narrows those further.
//!
//! A cycle belongs to the queue and agent it has at the end (or now, while open): a transferred
//! attendance counts for whoever took it over.

use crate::auth::Principal;
use crate::{Engine, EngineError, EngineResult};
use atende_db::dashboard::{self, DurationSamples, Labels, Measure, Scope};
use atende_domain::dashboard::{DurationSummary, Period, day_number};
use atende_domain::{Profile, QueueId, TicketStatus, Timestamp, UserId, ValidationError};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::HashMap;
use utoipa::ToSchema;

/// The refusal of an agent asking for someone else's figures.
pub const OWN_FIGURES_ONLY: &str =
    "you may see only your own figures: leave user_id out or use your own id";

/// `GET /api/v1/dashboard` parameters, parsed by the edge.
#[derive(Debug, Clone, Default)]
pub struct DashboardQuery {
    /// `YYYY-MM-DD`, the first day; default 29 days before `to`.
    pub from: Option<String>,
    /// `YYYY-MM-DD`, the last day; default today in the tenant's zone.
    pub to: Option<String>,
    pub queue_id: Option<QueueId>,
    pub user_id: Option<UserId>,
}

/// Whose figures a dashboard shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DashboardScope {
    /// The whole tenant (admins; supervisors unless `supervisor_sees_as_user`).
    Tenant,
    /// Only the caller's own attendances.
    Own,
}

/// Attendances opened and closed on one day of the tenant's zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayFigures {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Cycles that started that day: new tickets and reopened ones.
    pub opened: i64,
    pub closed: i64,
}

/// Tickets in each status now (not bound to the period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusFigures {
    pub pending: i64,
    pub open: i64,
    pub paused: i64,
    pub closed: i64,
}

/// Count, average, median and 90th percentile of a set of durations, in seconds; the three
/// values are `null` when the count is 0. Median of an even count: the mean of the middle two;
/// p90: nearest rank.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimeStats {
    pub count: u64,
    pub average_seconds: Option<f64>,
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
}

impl From<Option<DurationSummary>> for TimeStats {
    fn from(summary: Option<DurationSummary>) -> Self {
        match summary {
            Some(s) => TimeStats {
                count: s.count,
                average_seconds: Some(s.average_seconds),
                median_seconds: Some(s.median_seconds),
                p90_seconds: Some(s.p90_seconds),
            },
            None => TimeStats {
                count: 0,
                average_seconds: None,
                median_seconds: None,
                p90_seconds: None,
            },
        }
    }
}

/// One queue's times; `queue_id` `null` = attendances without a queue.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct QueueTimes {
    pub queue_id: Option<QueueId>,
    pub name: Option<String>,
    #[serde(flatten)]
    pub stats: TimeStats,
}

/// One agent's times; `user_id` `null` = attendances nobody owned.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentTimes {
    pub user_id: Option<UserId>,
    pub name: Option<String>,
    #[serde(flatten)]
    pub stats: TimeStats,
}

/// One duration over the period: overall, and per queue and agent with at least one sample,
/// ordered by name (the unnamed group last).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TimeFigures {
    pub overall: TimeStats,
    pub by_queue: Vec<QueueTimes>,
    pub by_agent: Vec<AgentTimes>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Dashboard {
    /// First day, `YYYY-MM-DD`.
    pub from: String,
    /// Last day (included), `YYYY-MM-DD`.
    pub to: String,
    /// The IANA zone the days are counted in (the tenant's `timezone`).
    pub timezone: String,
    pub scope: DashboardScope,
    /// The queue filter applied, if any.
    pub queue_id: Option<QueueId>,
    /// The agent filter applied, if any (always the caller for `own`).
    pub user_id: Option<UserId>,
    /// Every day of the period in order, zeros included.
    pub per_day: Vec<DayFigures>,
    pub by_status: StatusFigures,
    /// Cycle opened → first agent reply, for first replies within the period.
    pub first_response: TimeFigures,
    /// Cycle opened → closed, for cycles closed within the period.
    pub resolution: TimeFigures,
}

impl Engine {
    /// `GET /api/v1/dashboard`. A bad period → 422 naming `from` or `to`; a queue or user of
    /// another tenant → 404 naming it; an agent asking for someone else → 403.
    pub async fn dashboard(
        &self,
        principal: &Principal,
        query: &DashboardQuery,
    ) -> EngineResult<Dashboard> {
        let tenant = principal.tenant()?;
        let settings = self.settings(tenant).await?;
        let period = Period::parse(
            query.from.as_deref(),
            query.to.as_deref(),
            settings.timezone,
            Timestamp::now(),
        )
        .map_err(ValidationError::from)?;
        let whole_tenant = match principal.profile()? {
            Profile::Admin => true,
            Profile::Supervisor => !settings.supervisor_sees_as_user,
            Profile::User => false,
        };
        let me = principal.user_id();
        let owner_id = match query.user_id {
            Some(other) if !whole_tenant && other != me => {
                return Err(EngineError::Forbidden(OWN_FIGURES_ONLY.to_owned()));
            }
            _ if !whole_tenant => Some(me),
            asked => asked,
        };
        let db = self.db();
        let labels = dashboard::labels(db, tenant).await?;
        if let Some(queue) = query.queue_id
            && !labels.queues.contains_key(&queue)
        {
            return Err(EngineError::UnknownReference {
                field: "queue_id",
                id: queue.0,
            });
        }
        if let Some(user) = owner_id
            && !labels.users.contains_key(&user)
        {
            return Err(EngineError::UnknownReference {
                field: "user_id",
                id: user.0,
            });
        }
        let scope = Scope {
            queue_id: query.queue_id,
            owner_id,
        };
        let (start, end) = (period.start(), period.end());
        let spans = period.spans();
        let (days, statuses, first_responses, resolutions) = tokio::try_join!(
            dashboard::cycles_per_day(db, tenant, &spans, &scope),
            dashboard::status_counts(db, tenant, &scope),
            dashboard::durations(db, tenant, Measure::FirstResponse, start, end, &scope),
            dashboard::durations(db, tenant, Measure::Resolution, start, end, &scope),
        )?;

        let by_day: HashMap<i64, (i64, i64)> = days
            .into_iter()
            .map(|d| (d.day, (d.opened, d.closed)))
            .collect();
        let per_day = period
            .days()
            .map(|date| {
                let (opened, closed) = by_day.get(&day_number(date)).copied().unwrap_or_default();
                DayFigures {
                    date: date.to_string(),
                    opened,
                    closed,
                }
            })
            .collect();
        let count_of = |wanted: TicketStatus| {
            statuses
                .iter()
                .find(|(status, _)| *status == wanted)
                .map_or(0, |(_, count)| *count)
        };
        Ok(Dashboard {
            from: period.from.to_string(),
            to: period.to.to_string(),
            timezone: period.tz.name().to_owned(),
            scope: if whole_tenant {
                DashboardScope::Tenant
            } else {
                DashboardScope::Own
            },
            queue_id: query.queue_id,
            user_id: owner_id,
            per_day,
            by_status: StatusFigures {
                pending: count_of(TicketStatus::Pending),
                open: count_of(TicketStatus::Open),
                paused: count_of(TicketStatus::Paused),
                closed: count_of(TicketStatus::Closed),
            },
            first_response: time_figures(first_responses, &labels),
            resolution: time_figures(resolutions, &labels),
        })
    }
}

/// Orders groups by name (then id), the unnamed one last.
fn named_first<K: Ord>(a: (Option<&str>, Option<K>), b: (Option<&str>, Option<K>)) -> Ordering {
    (a.0.is_none(), a.0, a.1).cmp(&(b.0.is_none(), b.0, b.1))
}

fn time_figures(samples: DurationSamples, labels: &Labels) -> TimeFigures {
    let mut by_queue: Vec<QueueTimes> = samples
        .by_queue
        .into_iter()
        .map(|(queue_id, millis)| QueueTimes {
            queue_id,
            name: queue_id.and_then(|q| labels.queues.get(&q).cloned()),
            stats: DurationSummary::of(millis).into(),
        })
        .collect();
    by_queue.sort_by(|a, b| {
        named_first(
            (a.name.as_deref(), a.queue_id),
            (b.name.as_deref(), b.queue_id),
        )
    });
    let mut by_agent: Vec<AgentTimes> = samples
        .by_owner
        .into_iter()
        .map(|(user_id, millis)| AgentTimes {
            user_id,
            name: user_id.and_then(|u| labels.users.get(&u).cloned()),
            stats: DurationSummary::of(millis).into(),
        })
        .collect();
    by_agent.sort_by(|a, b| {
        named_first(
            (a.name.as_deref(), a.user_id),
            (b.name.as_deref(), b.user_id),
        )
    });
    TimeFigures {
        overall: DurationSummary::of(samples.all).into(),
        by_queue,
        by_agent,
    }
}
