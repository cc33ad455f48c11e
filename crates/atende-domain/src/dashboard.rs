//! The dashboard's reporting rules (SPEC §12): which days a report covers, how instants fall into
//! the tenant's local days, and how a set of durations is summarised.
//!
//! Days are the tenant's (`timezone`). The store groups instants into local days with integer
//! arithmetic, `(t + offset) / DAY_MS`, which is exact only while the UTC offset stays the same;
//! so a period is cut into [`OffsetSpan`]s wherever the offset changes (daylight saving) and each
//! span is counted with its own offset. That keeps the counting inside the database, one pass over
//! an index, on SQLite (which knows no time zones) as on PostgreSQL.

use crate::{FieldError, Timestamp};
use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeDelta, TimeZone};
use chrono_tz::Tz;

/// Longest period a report may cover, in days (a leap year).
pub const MAX_DAYS: u64 = 366;
/// The period when none is asked for: the last 30 days, today included.
pub const DEFAULT_DAYS: u64 = 30;
/// One day in milliseconds: the unit of the store's day arithmetic.
pub const DAY_MS: i64 = 86_400_000;

/// How far apart the offset is probed when looking for its changes. Zones change offset at most
/// twice a year, never twice within hours, so a change can never hide between two probes.
const PROBE_MS: i64 = 6 * 3_600_000;

/// The earliest date a period may start: the store's integer division truncates toward zero,
/// which is the floor the day arithmetic needs only for local times after the epoch.
fn earliest_date() -> NaiveDate {
    DateTime::UNIX_EPOCH.date_naive()
}

/// A run of whole local days, `from` to `to` inclusive, in the tenant's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub tz: Tz,
}

/// A stretch `[start, end)` over which the zone's UTC offset does not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetSpan {
    pub start: Timestamp,
    pub end: Timestamp,
    /// Local time minus UTC, in milliseconds.
    pub offset_ms: i64,
}

impl Period {
    /// The period asked for with `from` / `to` (`YYYY-MM-DD`; absent or empty = not given):
    /// `to` defaults to today in `tz`, `from` to 29 days before `to`. `from` after `to`, a period
    /// longer than [`MAX_DAYS`], a malformed date or one before 1970 is refused naming the field.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        tz: Tz,
        now: Timestamp,
    ) -> Result<Period, FieldError> {
        let to = match given(to) {
            Some(text) => parse_date("to", text)?,
            None => now.to_utc().with_timezone(&tz).date_naive(),
        };
        let from = match given(from) {
            Some(text) => parse_date("from", text)?,
            None => to
                .checked_sub_days(Days::new(DEFAULT_DAYS - 1))
                .unwrap_or(to),
        };
        if from > to {
            return Err(FieldError::new(
                "from",
                format!("must not be after to ({to})"),
            ));
        }
        if from < earliest_date() {
            return Err(FieldError::new("from", "must be 1970-01-01 or later"));
        }
        let period = Period { from, to, tz };
        if period.day_count() > MAX_DAYS {
            return Err(FieldError::new(
                "to",
                format!("the period may cover at most {MAX_DAYS} days (from {from})"),
            ));
        }
        Ok(period)
    }

    /// How many days the period covers.
    pub fn day_count(&self) -> u64 {
        u64::try_from((self.to - self.from).num_days() + 1).unwrap_or(0)
    }

    /// Every day of the period, in order.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        self.from.iter_days().take_while({
            let to = self.to;
            move |day| *day <= to
        })
    }

    /// The first instant of `from`.
    pub fn start(&self) -> Timestamp {
        day_start(self.tz, self.from)
    }

    /// The first instant after `to` (the period is `[start, end)`).
    pub fn end(&self) -> Timestamp {
        match self.to.succ_opt() {
            Some(next) => day_start(self.tz, next),
            None => Timestamp(i64::MAX),
        }
    }

    /// `[start, end)` cut wherever the zone's offset changes, in order.
    pub fn spans(&self) -> Vec<OffsetSpan> {
        offset_spans(self.tz, self.start(), self.end())
    }
}

/// A date the caller gave; absent and empty alike mean "not given".
fn given(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

fn parse_date(field: &str, text: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| FieldError::new(field, format!("'{text}' is not a date like 2026-03-31")))
}

/// The number the store gives a local day: days since 1970-01-01 of the local calendar.
pub fn day_number(date: NaiveDate) -> i64 {
    (date - DateTime::UNIX_EPOCH.date_naive()).num_days()
}

/// The local day `at` falls on, as [`day_number`] counts it, given the offset in force at `at`:
/// the store's `(t + offset) / DAY_MS`, written once here for the tests to hold it to.
pub fn local_day_number(at: Timestamp, offset_ms: i64) -> i64 {
    (at.0 + offset_ms).div_euclid(DAY_MS)
}

fn offset_ms_at(tz: Tz, at: i64) -> i64 {
    let utc = DateTime::from_timestamp_millis(at).unwrap_or_default();
    i64::from(
        tz.offset_from_utc_datetime(&utc.naive_utc())
            .fix()
            .local_minus_utc(),
    ) * 1000
}

fn timestamp_of(local: NaiveDateTime, tz: Tz) -> Option<Timestamp> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => {
            Some(Timestamp(at.timestamp_millis()))
        }
        LocalResult::None => None,
    }
}

/// The first instant of `date` in `tz`. Midnight itself may not exist (a daylight-saving gap at
/// 00:00, as Brazil had until 2019): the day then starts at the first minute that does.
pub fn day_start(tz: Tz, date: NaiveDate) -> Timestamp {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    (0..24 * 60)
        .find_map(|minute| timestamp_of(midnight + TimeDelta::minutes(minute), tz))
        .unwrap_or(Timestamp(midnight.and_utc().timestamp_millis()))
}

/// `[start, end)` cut into runs of one UTC offset.
pub fn offset_spans(tz: Tz, start: Timestamp, end: Timestamp) -> Vec<OffsetSpan> {
    let mut spans = Vec::new();
    let mut span_start = start.0;
    while span_start < end.0 {
        let offset = offset_ms_at(tz, span_start);
        let last = end.0 - 1;
        let mut probe = span_start;
        let span_end = loop {
            let next = probe.saturating_add(PROBE_MS).min(last);
            if offset_ms_at(tz, next) != offset {
                // The change lies in (probe, next]: find its first instant.
                let (mut same, mut changed) = (probe, next);
                while changed - same > 1 {
                    let middle = same + (changed - same) / 2;
                    if offset_ms_at(tz, middle) == offset {
                        same = middle;
                    } else {
                        changed = middle;
                    }
                }
                break changed;
            }
            if next >= last {
                break end.0;
            }
            probe = next;
        };
        spans.push(OffsetSpan {
            start: Timestamp(span_start),
            end: Timestamp(span_end),
            offset_ms: offset,
        });
        span_start = span_end;
    }
    spans
}

/// Count, average, median and 90th percentile of a set of durations, in seconds.
///
/// The median of an even count is the mean of the two middle values; the 90th percentile is the
/// nearest rank (the smallest value with at least 90 % of the set at or below it), so it is
/// always a duration that happened. A negative duration (two clocks disagreeing) counts as zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DurationSummary {
    pub count: u64,
    pub average_seconds: f64,
    pub median_seconds: f64,
    pub p90_seconds: f64,
}

impl DurationSummary {
    /// The summary of `millis` (in any order); `None` for an empty set.
    pub fn of(mut millis: Vec<i64>) -> Option<DurationSummary> {
        for value in &mut millis {
            *value = (*value).max(0);
        }
        millis.sort_unstable();
        let n = millis.len();
        let last = n.checked_sub(1)?;
        let total: i128 = millis.iter().map(|&v| i128::from(v)).sum();
        let lower_middle = millis.get(last / 2).copied().unwrap_or_default();
        let upper_middle = millis.get(n / 2).copied().unwrap_or_default();
        // Nearest rank: ceil(0.9 n), 1-based.
        let p90 = millis
            .get((9 * n).div_ceil(10) - 1)
            .copied()
            .unwrap_or_default();
        let seconds = |ms: f64| ms / 1000.0;
        Some(DurationSummary {
            count: n as u64,
            average_seconds: seconds(total as f64 / n as f64),
            median_seconds: seconds((lower_middle as f64 + upper_middle as f64) / 2.0),
            p90_seconds: seconds(p90 as f64),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
    }

    fn at(text: &str) -> Timestamp {
        Timestamp(
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.timestamp_millis())
                .unwrap_or_default(),
        )
    }

    const SAO_PAULO: Tz = chrono_tz::America::Sao_Paulo;
    const NEW_YORK: Tz = chrono_tz::America::New_York;

    #[test]
    fn default_period_is_the_last_30_days_ending_today_in_the_tenant_zone() {
        // 02:00 UTC on 1 March is still 28 February in São Paulo (UTC−3).
        let period = Period::parse(None, None, SAO_PAULO, at("2025-03-01T02:00:00Z"));
        let period = period.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(period.to, date("2025-02-28"));
        assert_eq!(period.from, date("2025-01-30"));
        assert_eq!(period.day_count(), 30);
        assert_eq!(period.days().count(), 30);
    }

    #[test]
    fn from_after_to_is_refused_naming_from() {
        let error = Period::parse(
            Some("2025-03-02"),
            Some("2025-03-01"),
            SAO_PAULO,
            Timestamp(0),
        );
        assert_eq!(error.map_err(|e| e.field), Err("from".to_owned()));
    }

    #[test]
    fn a_period_longer_than_366_days_is_refused_naming_to() {
        let ok = Period::parse(
            Some("2024-01-01"),
            Some("2024-12-31"),
            SAO_PAULO,
            Timestamp(0),
        );
        assert_eq!(ok.map(|p| p.day_count()), Ok(366));
        let error = Period::parse(
            Some("2024-01-01"),
            Some("2025-01-01"),
            SAO_PAULO,
            Timestamp(0),
        );
        assert_eq!(error.map_err(|e| e.field), Err("to".to_owned()));
    }

    #[test]
    fn malformed_or_too_early_dates_are_refused_naming_the_field() {
        let bad = |from: Option<&str>, to: Option<&str>| {
            Period::parse(from, to, SAO_PAULO, at("2025-03-01T12:00:00Z")).map_err(|e| e.field)
        };
        assert_eq!(bad(Some("2025-13-01"), None), Err("from".to_owned()));
        assert_eq!(bad(None, Some("01/03/2025")), Err("to".to_owned()));
        assert_eq!(
            bad(Some("1969-12-31"), Some("1970-01-05")),
            Err("from".to_owned())
        );
        // Empty values count as not given.
        assert!(bad(Some(" "), Some("")).is_ok());
    }

    #[test]
    fn days_start_at_local_midnight() {
        let period = Period::parse(
            Some("2025-03-01"),
            Some("2025-03-02"),
            SAO_PAULO,
            Timestamp(0),
        );
        let period = period.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(period.start(), at("2025-03-01T03:00:00Z"));
        assert_eq!(period.end(), at("2025-03-03T03:00:00Z"));
        assert_eq!(
            period.spans(),
            vec![OffsetSpan {
                start: at("2025-03-01T03:00:00Z"),
                end: at("2025-03-03T03:00:00Z"),
                offset_ms: -3 * 3_600_000,
            }]
        );
    }

    #[test]
    fn a_day_whose_midnight_does_not_exist_starts_when_the_clock_jumps() {
        // São Paulo, 4 November 2018: clocks went from 00:00 straight to 01:00 (UTC−3 → UTC−2).
        assert_eq!(
            day_start(SAO_PAULO, date("2018-11-04")),
            at("2018-11-04T03:00:00Z")
        );
    }

    #[test]
    fn spans_are_cut_where_daylight_saving_changes_the_offset() {
        // New York, 9 March 2025: 02:00 EST (07:00 UTC) became 03:00 EDT.
        let period = Period::parse(
            Some("2025-03-08"),
            Some("2025-03-10"),
            NEW_YORK,
            Timestamp(0),
        );
        let period = period.unwrap_or_else(|e| panic!("{e}"));
        let spans = period.spans();
        assert_eq!(
            spans,
            vec![
                OffsetSpan {
                    start: at("2025-03-08T05:00:00Z"),
                    end: at("2025-03-09T07:00:00Z"),
                    offset_ms: -5 * 3_600_000,
                },
                OffsetSpan {
                    start: at("2025-03-09T07:00:00Z"),
                    end: at("2025-03-11T04:00:00Z"),
                    offset_ms: -4 * 3_600_000,
                },
            ]
        );
        // Either side of the change, an instant falls on the local day the wall clock shows.
        let day_of = |t: &str| {
            let t = at(t);
            let span = spans.iter().find(|s| s.start <= t && t < s.end);
            span.map(|s| local_day_number(t, s.offset_ms))
        };
        assert_eq!(
            day_of("2025-03-09T06:59:59Z"),
            Some(day_number(date("2025-03-09")))
        );
        assert_eq!(
            day_of("2025-03-10T03:59:59Z"),
            Some(day_number(date("2025-03-09")))
        );
        assert_eq!(
            day_of("2025-03-10T04:00:00Z"),
            Some(day_number(date("2025-03-10")))
        );
        assert_eq!(
            day_of("2025-03-08T05:00:00Z"),
            Some(day_number(date("2025-03-08")))
        );
    }

    #[test]
    fn a_year_of_spans_covers_the_period_without_gaps() {
        let period = Period::parse(
            Some("2024-06-01"),
            Some("2025-05-31"),
            NEW_YORK,
            Timestamp(0),
        );
        let period = period.unwrap_or_else(|e| panic!("{e}"));
        let spans = period.spans();
        assert_eq!(spans.len(), 3, "EDT, EST, EDT: {spans:?}");
        assert_eq!(spans.first().map(|s| s.start), Some(period.start()));
        assert_eq!(spans.last().map(|s| s.end), Some(period.end()));
        assert!(spans.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let summary = DurationSummary::of(vec![4_000, 1_000, 3_000, 2_000]);
        assert_eq!(
            summary,
            Some(DurationSummary {
                count: 4,
                average_seconds: 2.5,
                median_seconds: 2.5,
                p90_seconds: 4.0,
            })
        );
    }

    #[test]
    fn p90_is_the_nearest_rank() {
        // 1..=10 seconds: rank ceil(9) = 9 → 9 s; 1..=11: rank ceil(9.9) = 10 → 10 s.
        let ten: Vec<i64> = (1..=10).map(|s| s * 1000).collect();
        let summary = DurationSummary::of(ten);
        assert_eq!(
            summary.map(|s| (s.median_seconds, s.p90_seconds)),
            Some((5.5, 9.0))
        );
        let eleven: Vec<i64> = (1..=11).map(|s| s * 1000).collect();
        let summary = DurationSummary::of(eleven);
        assert_eq!(
            summary.map(|s| (s.median_seconds, s.p90_seconds)),
            Some((6.0, 10.0))
        );
        let one = DurationSummary::of(vec![1_500]);
        assert_eq!(
            one.map(|s| (s.median_seconds, s.p90_seconds)),
            Some((1.5, 1.5))
        );
    }

    #[test]
    fn no_durations_have_no_summary_and_negative_ones_count_as_zero() {
        assert_eq!(DurationSummary::of(Vec::new()), None);
        let summary = DurationSummary::of(vec![-500, 1_000]);
        assert_eq!(summary.map(|s| s.average_seconds), Some(0.5));
    }
}
