//! Business hours (SPEC §8) as plain values, so the out-of-hours message, the bot, wallet routing and
//! the settings page all answer "is it open now?" with the same function.
//!
//! JSON shape (the same for the tenant setting, queues and users):
//! `{"days":{"mon":[{"start":"08:00","end":"12:00"},{"start":"13:00","end":"18:00"}]},"holidays":["2026-12-25"]}`.
//! A missing weekday is closed all day. "Always open" is `{"always_open":true}` rather than `null`,
//! because `null` already means "use the tenant's hours" on queues and users.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use utoipa::ToSchema;

use crate::validation::FieldError;

/// More would not fit the settings page and nobody asked for it (SPEC §8: "two per day allowed").
pub const MAX_WINDOWS_PER_DAY: usize = 2;

/// Several years of holidays; the cap only guards the settings row against absurd input.
pub const MAX_HOLIDAYS: usize = 1000;

/// The tenant default of SPEC §10.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::America::Sao_Paulo;

const MINUTES_PER_DAY: u16 = 24 * 60;

const WEEKDAYS: [(Weekday, &str); 7] = [
    (Weekday::Mon, "mon"),
    (Weekday::Tue, "tue"),
    (Weekday::Wed, "wed"),
    (Weekday::Thu, "thu"),
    (Weekday::Fri, "fri"),
    (Weekday::Sat, "sat"),
    (Weekday::Sun, "sun"),
];

/// A wall-clock time with minute precision, from 00:00 to 24:00 inclusive so a window can run
/// until midnight without a special case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    pub const MIDNIGHT: ClockTime = ClockTime(0);
    pub const END_OF_DAY: ClockTime = ClockTime(MINUTES_PER_DAY);

    pub fn from_hm(hour: u32, minute: u32) -> Option<Self> {
        match (hour, minute) {
            (24, 0) => Some(Self::END_OF_DAY),
            (0..=23, 0..=59) => u16::try_from(hour * 60 + minute).ok().map(Self),
            _ => None,
        }
    }

    /// Accepts `H:MM` and `HH:MM`.
    pub fn parse(text: &str) -> Option<Self> {
        let (hour, minute) = text.trim().split_once(':')?;
        let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        if !all_digits(hour) || hour.len() > 2 || !all_digits(minute) || minute.len() != 2 {
            return None;
        }
        Self::from_hm(hour.parse().ok()?, minute.parse().ok()?)
    }

    pub fn minutes_since_midnight(self) -> u16 {
        self.0
    }
}

impl fmt::Display for ClockTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

const TIME_FORMAT_HINT: &str = "must be a time like 08:30, from 00:00 to 24:00";

/// Open from `start` (inclusive) to `end` (exclusive), so 08:00–12:00 and 12:00–18:00 touch
/// without overlapping. Windows never cross midnight: split them over two days instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
pub struct TimeWindow {
    #[schema(value_type = String, example = "08:00")]
    pub start: ClockTime,
    #[schema(value_type = String, example = "18:00")]
    pub end: ClockTime,
}

impl TimeWindow {
    pub fn new(start: ClockTime, end: ClockTime) -> Self {
        Self { start, end }
    }

    pub fn contains(&self, time: ClockTime) -> bool {
        self.start <= time && time < self.end
    }

    fn overlaps(&self, other: &TimeWindow) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl fmt::Display for TimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// The windows of each weekday; an empty list means closed that day.
#[derive(Debug, Clone, Default, PartialEq, Eq, ToSchema)]
pub struct WeekDays {
    #[schema(required = false)]
    pub mon: Vec<TimeWindow>,
    #[schema(required = false)]
    pub tue: Vec<TimeWindow>,
    #[schema(required = false)]
    pub wed: Vec<TimeWindow>,
    #[schema(required = false)]
    pub thu: Vec<TimeWindow>,
    #[schema(required = false)]
    pub fri: Vec<TimeWindow>,
    #[schema(required = false)]
    pub sat: Vec<TimeWindow>,
    #[schema(required = false)]
    pub sun: Vec<TimeWindow>,
}

impl WeekDays {
    pub fn get(&self, day: Weekday) -> &[TimeWindow] {
        match day {
            Weekday::Mon => &self.mon,
            Weekday::Tue => &self.tue,
            Weekday::Wed => &self.wed,
            Weekday::Thu => &self.thu,
            Weekday::Fri => &self.fri,
            Weekday::Sat => &self.sat,
            Weekday::Sun => &self.sun,
        }
    }

    pub fn get_mut(&mut self, day: Weekday) -> &mut Vec<TimeWindow> {
        match day {
            Weekday::Mon => &mut self.mon,
            Weekday::Tue => &mut self.tue,
            Weekday::Wed => &mut self.wed,
            Weekday::Thu => &mut self.thu,
            Weekday::Fri => &mut self.fri,
            Weekday::Sat => &mut self.sat,
            Weekday::Sun => &mut self.sun,
        }
    }

    fn is_empty(&self) -> bool {
        WEEKDAYS.iter().all(|(day, _)| self.get(*day).is_empty())
    }
}

/// Weekly opening windows plus the dates on which the place is closed.
///
/// Deserialising validates (through [`WeeklySchedule::from_json`]), so a value of this type that
/// came from JSON always satisfies [`WeeklySchedule::validate`]. Serialising goes through
/// [`WeeklySchedule::to_json`], so there is one shape.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
pub struct WeeklySchedule {
    /// Open every hour of every day except `holidays`; `days` must then be empty.
    #[schema(required = false)]
    pub always_open: bool,
    pub days: WeekDays,
    /// Local dates (in the schedule's timezone) on which it is closed all day.
    #[schema(value_type = Vec<String>, example = json!(["2026-12-25"]))]
    pub holidays: Vec<NaiveDate>,
}

impl Default for WeeklySchedule {
    fn default() -> Self {
        Self::always_open()
    }
}

impl WeeklySchedule {
    /// The tenant default: nobody configured hours yet, so nothing is ever "out of hours".
    pub fn always_open() -> Self {
        Self {
            always_open: true,
            days: WeekDays::default(),
            holidays: Vec::new(),
        }
    }

    /// Closed every day; add windows to [`WeeklySchedule::days`].
    pub fn closed() -> Self {
        Self {
            always_open: false,
            days: WeekDays::default(),
            holidays: Vec::new(),
        }
    }

    /// Checks the rules with field names under `business_hours`, the field's name on the tenant,
    /// queues and users alike.
    pub fn validate(&self) -> Result<(), FieldError> {
        self.validate_at("business_hours")
    }

    /// Same as [`WeeklySchedule::validate`], with field names under `field`.
    pub fn validate_at(&self, field: &str) -> Result<(), FieldError> {
        if self.always_open && !self.days.is_empty() {
            return Err(FieldError::new(
                format!("{field}.days"),
                "must be empty when always_open is true",
            ));
        }
        for (day, name) in WEEKDAYS {
            let windows = self.days.get(day);
            let day_field = format!("{field}.days.{name}");
            if windows.len() > MAX_WINDOWS_PER_DAY {
                return Err(FieldError::new(
                    day_field,
                    format!(
                        "at most {MAX_WINDOWS_PER_DAY} windows per day, got {}",
                        windows.len()
                    ),
                ));
            }
            for (index, window) in windows.iter().enumerate() {
                if window.start == ClockTime::END_OF_DAY {
                    return Err(FieldError::new(
                        format!("{day_field}[{index}].start"),
                        "must be before 24:00",
                    ));
                }
                if window.end <= window.start {
                    return Err(FieldError::new(
                        format!("{day_field}[{index}].end"),
                        format!("must be later than start ({})", window.start),
                    ));
                }
                if let Some((earlier_index, earlier)) = windows[..index]
                    .iter()
                    .enumerate()
                    .find(|(_, earlier)| earlier.overlaps(window))
                {
                    return Err(FieldError::new(
                        format!("{day_field}[{index}]"),
                        format!("{window} overlaps window {earlier_index} ({earlier})"),
                    ));
                }
            }
        }
        if self.holidays.len() > MAX_HOLIDAYS {
            return Err(FieldError::new(
                format!("{field}.holidays"),
                format!("at most {MAX_HOLIDAYS} dates, got {}", self.holidays.len()),
            ));
        }
        Ok(())
    }

    /// Parses, validates and normalises (windows sorted by start, holidays sorted and unique),
    /// naming the exact offending path under `field` when the input is wrong.
    pub fn from_json(value: &Value, field: &str) -> Result<Self, FieldError> {
        let Some(object) = value.as_object() else {
            return Err(FieldError::new(
                field,
                r#"must be an object like {"days":{"mon":[{"start":"08:00","end":"18:00"}]},"holidays":["2026-12-25"]}"#,
            ));
        };
        let mut schedule = Self::closed();
        for (name, item) in object {
            match name.as_str() {
                "always_open" => {
                    schedule.always_open = item.as_bool().ok_or_else(|| {
                        FieldError::new(format!("{field}.always_open"), "must be true or false")
                    })?;
                }
                "days" => schedule.days = parse_days(item, &format!("{field}.days"))?,
                "holidays" => {
                    schedule.holidays = parse_holidays(item, &format!("{field}.holidays"))?
                }
                _ => {
                    return Err(FieldError::new(
                        format!("{field}.{name}"),
                        "unknown field; expected always_open, days or holidays",
                    ));
                }
            }
        }
        schedule.validate_at(field)?;
        for (day, _) in WEEKDAYS {
            schedule
                .days
                .get_mut(day)
                .sort_by_key(|window| window.start);
        }
        schedule.holidays.sort_unstable();
        schedule.holidays.dedup();
        Ok(schedule)
    }

    /// Whether `instant` falls inside a window, judged by the wall clock and date of `tz`.
    pub fn is_open_at(&self, instant: DateTime<Utc>, tz: Tz) -> bool {
        let local = instant.with_timezone(&tz);
        if self.holidays.contains(&local.date_naive()) {
            return false;
        }
        if self.always_open {
            return true;
        }
        let Some(time) = ClockTime::from_hm(local.hour(), local.minute()) else {
            return false;
        };
        self.days
            .get(local.weekday())
            .iter()
            .any(|window| window.contains(time))
    }

    /// The canonical JSON: `always_open` only when true, weekdays without windows left out.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        if self.always_open {
            object.insert("always_open".to_owned(), Value::Bool(true));
        }
        let mut days = Map::new();
        for (day, name) in WEEKDAYS {
            let windows = self.days.get(day);
            if !windows.is_empty() {
                let list = windows
                    .iter()
                    .map(|window| {
                        let mut item = Map::new();
                        item.insert("start".to_owned(), Value::String(window.start.to_string()));
                        item.insert("end".to_owned(), Value::String(window.end.to_string()));
                        Value::Object(item)
                    })
                    .collect();
                days.insert(name.to_owned(), Value::Array(list));
            }
        }
        object.insert("days".to_owned(), Value::Object(days));
        object.insert(
            "holidays".to_owned(),
            Value::Array(
                self.holidays
                    .iter()
                    .map(|date| Value::String(date.format("%Y-%m-%d").to_string()))
                    .collect(),
            ),
        );
        Value::Object(object)
    }
}

impl Serialize for WeeklySchedule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WeeklySchedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value, "business_hours").map_err(serde::de::Error::custom)
    }
}

fn parse_days(value: &Value, field: &str) -> Result<WeekDays, FieldError> {
    let mut days = WeekDays::default();
    if value.is_null() {
        return Ok(days);
    }
    let Some(object) = value.as_object() else {
        return Err(FieldError::new(
            field,
            "must be an object keyed by mon, tue, wed, thu, fri, sat, sun",
        ));
    };
    for (name, windows) in object {
        let Some((day, _)) = WEEKDAYS.iter().find(|(_, wire)| wire == name) else {
            return Err(FieldError::new(
                format!("{field}.{name}"),
                "not a weekday; use mon, tue, wed, thu, fri, sat or sun",
            ));
        };
        *days.get_mut(*day) = parse_windows(windows, &format!("{field}.{name}"))?;
    }
    Ok(days)
}

fn parse_windows(value: &Value, field: &str) -> Result<Vec<TimeWindow>, FieldError> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    let Some(items) = value.as_array() else {
        return Err(FieldError::new(
            field,
            r#"must be a list of windows like {"start":"08:00","end":"12:00"}"#,
        ));
    };
    // Checked here as well as in validate so a huge list is refused before it is parsed.
    if items.len() > MAX_WINDOWS_PER_DAY {
        return Err(FieldError::new(
            field,
            format!(
                "at most {MAX_WINDOWS_PER_DAY} windows per day, got {}",
                items.len()
            ),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_window(item, &format!("{field}[{index}]")))
        .collect()
}

fn parse_window(value: &Value, field: &str) -> Result<TimeWindow, FieldError> {
    let Some(object) = value.as_object() else {
        return Err(FieldError::new(
            field,
            r#"must be an object like {"start":"08:00","end":"12:00"}"#,
        ));
    };
    if let Some(name) = object
        .keys()
        .find(|name| !matches!(name.as_str(), "start" | "end"))
    {
        return Err(FieldError::new(
            format!("{field}.{name}"),
            "unknown field; expected start and end",
        ));
    }
    let time = |name: &str| -> Result<ClockTime, FieldError> {
        object
            .get(name)
            .and_then(Value::as_str)
            .and_then(ClockTime::parse)
            .ok_or_else(|| FieldError::new(format!("{field}.{name}"), TIME_FORMAT_HINT))
    };
    Ok(TimeWindow {
        start: time("start")?,
        end: time("end")?,
    })
}

fn parse_holidays(value: &Value, field: &str) -> Result<Vec<NaiveDate>, FieldError> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    let Some(items) = value.as_array() else {
        return Err(FieldError::new(
            field,
            "must be a list of dates like 2026-12-25",
        ));
    };
    if items.len() > MAX_HOLIDAYS {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_HOLIDAYS} dates, got {}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            item.as_str()
                .and_then(|text| NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok())
                .ok_or_else(|| {
                    FieldError::new(
                        format!("{field}[{index}]"),
                        "must be a date like 2026-12-25",
                    )
                })
        })
        .collect()
}

/// Parses an IANA time zone name such as `America/Sao_Paulo` (exact spelling, as the tz database
/// writes it).
pub fn parse_timezone(name: &str) -> Result<Tz, FieldError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new(
            "timezone",
            "must not be empty; use an IANA name like America/Sao_Paulo",
        ));
    }
    trimmed.parse::<Tz>().map_err(|_| {
        FieldError::new(
            "timezone",
            format!("'{trimmed}' is not an IANA time zone name; use one like America/Sao_Paulo"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn at(hm: &str) -> ClockTime {
        ClockTime::parse(hm).unwrap()
    }

    fn window(start: &str, end: &str) -> TimeWindow {
        TimeWindow::new(at(start), at(end))
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// Mon–Fri 08:00–12:00 and 13:00–18:00, as on a typical Brazilian helpdesk.
    fn office() -> WeeklySchedule {
        WeeklySchedule::from_json(
            &json!({"days": {
                "mon": [{"start":"08:00","end":"12:00"},{"start":"13:00","end":"18:00"}],
                "tue": [{"start":"08:00","end":"12:00"},{"start":"13:00","end":"18:00"}],
                "wed": [{"start":"08:00","end":"12:00"},{"start":"13:00","end":"18:00"}],
                "thu": [{"start":"08:00","end":"12:00"},{"start":"13:00","end":"18:00"}],
                "fri": [{"start":"08:00","end":"12:00"},{"start":"13:00","end":"18:00"}]
            }, "holidays": ["2026-12-25"]}),
            "business_hours",
        )
        .unwrap()
    }

    fn all_day_every_day() -> WeeklySchedule {
        let mut schedule = WeeklySchedule::closed();
        for (day, _) in WEEKDAYS {
            schedule.days.get_mut(day).push(window("00:00", "24:00"));
        }
        schedule
    }

    const UTC: Tz = chrono_tz::UTC;
    const SP: Tz = chrono_tz::America::Sao_Paulo;

    // 2026-03-02 is a Monday.
    #[test]
    fn open_in_first_window_of_the_day() {
        assert!(office().is_open_at(utc(2026, 3, 2, 9, 0), UTC));
    }

    #[test]
    fn open_in_second_window_of_the_day() {
        assert!(office().is_open_at(utc(2026, 3, 2, 14, 30), UTC));
    }

    #[test]
    fn closed_between_the_two_windows() {
        assert!(!office().is_open_at(utc(2026, 3, 2, 12, 30), UTC));
    }

    #[test]
    fn window_start_is_inclusive_and_end_exclusive() {
        let schedule = office();
        assert!(schedule.is_open_at(utc(2026, 3, 2, 8, 0), UTC));
        assert!(schedule.is_open_at(utc(2026, 3, 2, 11, 59), UTC));
        assert!(!schedule.is_open_at(utc(2026, 3, 2, 12, 0), UTC));
        assert!(!schedule.is_open_at(utc(2026, 3, 2, 18, 0), UTC));
    }

    #[test]
    fn missing_weekday_is_closed() {
        // 2026-03-07 is a Saturday.
        assert!(!office().is_open_at(utc(2026, 3, 7, 10, 0), UTC));
    }

    #[test]
    fn closed_on_holiday() {
        let schedule = all_day_every_day();
        let mut with_holiday = schedule.clone();
        with_holiday
            .holidays
            .push(NaiveDate::from_ymd_opt(2026, 12, 25).unwrap());
        assert!(schedule.is_open_at(utc(2026, 12, 25, 15, 0), UTC));
        assert!(!with_holiday.is_open_at(utc(2026, 12, 25, 15, 0), UTC));
        assert!(with_holiday.is_open_at(utc(2026, 12, 26, 15, 0), UTC));
    }

    #[test]
    fn holiday_is_a_local_date() {
        let mut schedule = all_day_every_day();
        schedule
            .holidays
            .push(NaiveDate::from_ymd_opt(2026, 12, 25).unwrap());
        // 01:00 UTC on the 26th is still 22:00 on the 25th in São Paulo.
        assert!(!schedule.is_open_at(utc(2026, 12, 26, 1, 0), SP));
        assert!(schedule.is_open_at(utc(2026, 12, 26, 1, 0), UTC));
    }

    #[test]
    fn sao_paulo_local_time_is_used() {
        let schedule = office();
        // São Paulo is UTC-3: 10:30 UTC is 07:30 there, 11:30 UTC is 08:30.
        assert!(!schedule.is_open_at(utc(2026, 3, 2, 10, 30), SP));
        assert!(schedule.is_open_at(utc(2026, 3, 2, 11, 30), SP));
        // 20:00 UTC is 17:00 there: open, although 20:00 is outside the windows in UTC.
        assert!(schedule.is_open_at(utc(2026, 3, 2, 20, 0), SP));
        assert!(!schedule.is_open_at(utc(2026, 3, 2, 20, 0), UTC));
    }

    #[test]
    fn local_weekday_is_used() {
        // 02:00 UTC on Saturday is 23:00 on Friday in São Paulo.
        let mut schedule = WeeklySchedule::closed();
        schedule.days.fri.push(window("22:00", "24:00"));
        assert!(schedule.is_open_at(utc(2026, 3, 7, 2, 0), SP));
        assert!(!schedule.is_open_at(utc(2026, 3, 7, 2, 0), UTC));
    }

    #[test]
    fn end_of_day_window_covers_until_midnight() {
        let mut schedule = WeeklySchedule::closed();
        schedule.days.mon.push(window("18:00", "24:00"));
        assert!(schedule.validate().is_ok());
        assert!(schedule.is_open_at(utc(2026, 3, 2, 23, 59), UTC));
        assert!(!schedule.is_open_at(utc(2026, 3, 3, 0, 0), UTC));
    }

    #[test]
    fn always_open_is_open_at_any_time_except_holidays() {
        let mut schedule = WeeklySchedule::always_open();
        assert!(schedule.is_open_at(utc(2026, 3, 7, 3, 17), SP));
        schedule
            .holidays
            .push(NaiveDate::from_ymd_opt(2026, 3, 7).unwrap());
        assert!(!schedule.is_open_at(utc(2026, 3, 7, 15, 0), SP));
    }

    #[test]
    fn overlapping_windows_are_rejected() {
        let mut schedule = WeeklySchedule::closed();
        schedule.days.mon = vec![window("08:00", "12:30"), window("12:00", "18:00")];
        let error = schedule.validate().unwrap_err();
        assert_eq!(error.field, "business_hours.days.mon[1]");
        assert_eq!(error.message, "12:00-18:00 overlaps window 0 (08:00-12:30)");
    }

    #[test]
    fn touching_windows_are_accepted() {
        let mut schedule = WeeklySchedule::closed();
        schedule.days.mon = vec![window("08:00", "12:00"), window("12:00", "18:00")];
        assert!(schedule.validate().is_ok());
    }

    #[test]
    fn third_window_of_a_day_is_rejected() {
        let mut schedule = WeeklySchedule::closed();
        schedule.days.wed = vec![
            window("08:00", "09:00"),
            window("10:00", "11:00"),
            window("12:00", "13:00"),
        ];
        let error = schedule.validate().unwrap_err();
        assert_eq!(error.field, "business_hours.days.wed");
        assert_eq!(error.message, "at most 2 windows per day, got 3");
    }

    #[test]
    fn end_before_start_is_rejected() {
        let mut schedule = WeeklySchedule::closed();
        schedule.days.mon = vec![window("08:00", "12:00"), window("18:00", "13:00")];
        let error = schedule.validate().unwrap_err();
        assert_eq!(error.field, "business_hours.days.mon[1].end");
        assert_eq!(error.message, "must be later than start (18:00)");
        schedule.days.mon = vec![window("08:00", "08:00")];
        assert_eq!(
            schedule.validate().unwrap_err().field,
            "business_hours.days.mon[0].end"
        );
    }

    #[test]
    fn start_at_24_00_is_rejected() {
        let mut schedule = WeeklySchedule::closed();
        schedule.days.sun = vec![window("24:00", "24:00")];
        let error = schedule.validate().unwrap_err();
        assert_eq!(error.field, "business_hours.days.sun[0].start");
    }

    #[test]
    fn always_open_with_days_is_rejected() {
        let mut schedule = WeeklySchedule::always_open();
        schedule.days.mon.push(window("08:00", "12:00"));
        assert_eq!(
            schedule.validate().unwrap_err().field,
            "business_hours.days"
        );
    }

    #[test]
    fn clock_times_parse_strictly() {
        assert_eq!(
            ClockTime::parse("8:05").map(|t| t.to_string()).as_deref(),
            Some("08:05")
        );
        assert_eq!(ClockTime::parse("24:00"), Some(ClockTime::END_OF_DAY));
        for bad in [
            "24:01", "25:00", "12:60", "12", "12:5", "aa:bb", "-1:00", "123:00", "",
        ] {
            assert_eq!(ClockTime::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_round_trips_in_the_documented_shape() {
        let value = json!({
            "days": {"mon": [{"start":"08:00","end":"12:00"},{"start":"13:00","end":"18:00"}]},
            "holidays": ["2026-12-25"]
        });
        let schedule: WeeklySchedule = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(serde_json::to_value(&schedule).unwrap(), value);
        assert_eq!(schedule.to_json(), value);
        assert_eq!(
            WeeklySchedule::always_open().to_json(),
            json!({"always_open": true, "days": {}, "holidays": []})
        );
        assert_eq!(
            serde_json::to_value(WeeklySchedule::always_open()).unwrap(),
            WeeklySchedule::always_open().to_json()
        );
    }

    #[test]
    fn parsing_sorts_windows_and_holidays() {
        let schedule = WeeklySchedule::from_json(
            &json!({
                "days": {"tue": [{"start":"13:00","end":"18:00"},{"start":"8:00","end":"12:00"}], "sat": null},
                "holidays": ["2026-12-25", "2026-01-01", "2026-12-25"]
            }),
            "business_hours",
        )
        .unwrap();
        assert_eq!(
            schedule.days.tue,
            vec![window("08:00", "12:00"), window("13:00", "18:00")]
        );
        assert_eq!(
            schedule.to_json()["holidays"],
            json!(["2026-01-01", "2026-12-25"])
        );
    }

    #[test]
    fn parsing_names_the_offending_path() {
        let cases = [
            (json!([]), "business_hours"),
            (json!({"day": {}}), "business_hours.day"),
            (
                json!({"days": {"monday": []}}),
                "business_hours.days.monday",
            ),
            (
                json!({"days": {"mon": [{"start":"08:00","end":"25:00"}]}}),
                "business_hours.days.mon[0].end",
            ),
            (
                json!({"days": {"mon": [{"start":"08:00"}]}}),
                "business_hours.days.mon[0].end",
            ),
            (
                json!({"days": {"mon": [{"start":"08:00","end":"09:00","note":"x"}]}}),
                "business_hours.days.mon[0].note",
            ),
            (
                json!({"holidays": ["25/12/2026"]}),
                "business_hours.holidays[0]",
            ),
            (json!({"always_open": "yes"}), "business_hours.always_open"),
        ];
        for (value, field) in cases {
            let error = WeeklySchedule::from_json(&value, "business_hours").unwrap_err();
            assert_eq!(error.field, field, "{value}");
        }
        let error = serde_json::from_value::<WeeklySchedule>(
            json!({"days": {"fri": [{"start":"9","end":"10:00"}]}}),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("business_hours.days.fri[0].start"),
            "{error}"
        );
    }

    #[test]
    fn timezones_are_iana_names() {
        assert_eq!(parse_timezone("America/Sao_Paulo"), Ok(SP));
        assert_eq!(
            parse_timezone(" Europe/Lisbon "),
            Ok(chrono_tz::Europe::Lisbon)
        );
        let error = parse_timezone("Brasilia").unwrap_err();
        assert_eq!(error.field, "timezone");
        assert!(
            error
                .message
                .contains("'Brasilia' is not an IANA time zone name"),
            "{}",
            error.message
        );
        assert!(parse_timezone("").is_err());
    }
}
