//! Pure parts of analytics: the `interval` grammar, which roll-up answers a query, the trend
//! and uptime rules, and the event that stores an analysis.

use chrono::{DateTime, Utc};
use fleetstream_events::{AnalysisType, ReportEvent};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

/// At most this many buckets in one `analytics/telemetry` reply (per metric).
pub const MAX_BUCKETS: i64 = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnalyticsError {
    /// (query parameter, message, pydantic error type)
    Invalid(&'static str, String, &'static str),
}

fn invalid(field: &'static str, msg: impl Into<String>, kind: &'static str) -> AnalyticsError {
    AnalyticsError::Invalid(field, msg.into(), kind)
}

/// A bucket width: `<n><s|m|h|d>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub seconds: i64,
    pub days: bool,
}

pub fn parse_interval(raw: &str) -> Result<Interval, AnalyticsError> {
    let bad = || {
        invalid(
            "interval",
            "Interval must be a positive number followed by s, m, h or d (e.g. 1h)",
            "value_error",
        )
    };
    let raw = raw.trim();
    // The unit is the last character, which may take more than one byte.
    let unit_at = raw.char_indices().last().map_or(0, |(at, _)| at);
    let (digits, unit) = raw.split_at(unit_at);
    let n: i64 = digits
        .parse()
        .ok()
        .filter(|n| *n >= 1 && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(bad)?;
    let unit_seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let seconds = n.checked_mul(unit_seconds).ok_or_else(bad)?;
    if seconds > 366 * 86_400 {
        return Err(bad());
    }
    Ok(Interval {
        seconds,
        days: unit == "d",
    })
}

/// Where an answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Raw,
    /// A roll-up of this width in seconds (60 or 3600).
    Rollup(i64),
}

impl Source {
    pub fn table(self) -> Option<&'static str> {
        match self {
            Source::Raw => None,
            Source::Rollup(60) => Some("telemetry_rollup_1m"),
            Source::Rollup(_) => Some("telemetry_rollup_1h"),
        }
    }
}

/// The coarsest roll-up whose width divides the interval; raw rows below a minute. Day buckets
/// in a time zone other than UTC use minutes: every zone offset since 2000 is whole minutes,
/// not always whole hours.
pub fn choose_source(interval: Interval, local_days: bool) -> Source {
    if interval.seconds % 3_600 == 0 && !local_days {
        Source::Rollup(3_600)
    } else if interval.seconds % 60 == 0 {
        Source::Rollup(60)
    } else {
        Source::Raw
    }
}

/// The window checks: `end` after `start`, and not more than [`MAX_BUCKETS`] buckets.
pub fn check_window(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: Interval,
) -> Result<(), AnalyticsError> {
    if end <= start {
        return Err(invalid("end", "end must be after start", "value_error"));
    }
    let buckets = (end - start).num_seconds() / interval.seconds + 1;
    if buckets > MAX_BUCKETS {
        return Err(invalid(
            "interval",
            format!("The window holds more than {MAX_BUCKETS} intervals; use a larger interval"),
            "value_error",
        ));
    }
    Ok(())
}

/// `agg` of seed 002 analytics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Avg,
    Min,
    Max,
    Sum,
    Count,
}

impl Agg {
    pub fn parse(raw: &str) -> Result<Self, AnalyticsError> {
        Ok(match raw {
            "avg" => Self::Avg,
            "min" => Self::Min,
            "max" => Self::Max,
            "sum" => Self::Sum,
            "count" => Self::Count,
            _ => {
                return Err(invalid(
                    "agg",
                    "Input should be 'avg', 'min', 'max', 'sum' or 'count'",
                    "enum",
                ))
            }
        })
    }

    /// The bucket's value from its partial aggregates; averages keep 10 places (the column's).
    pub fn value(self, count: i64, sum: Decimal, min: Decimal, max: Decimal) -> Decimal {
        match self {
            Self::Avg => (sum / Decimal::from(count))
                .round_dp_with_strategy(10, RoundingStrategy::MidpointAwayFromZero),
            Self::Min => min,
            Self::Max => max,
            Self::Sum => sum,
            Self::Count => Decimal::from(count),
        }
    }
}

/// `uptime_ratio`: online reports / all reports in the window, 4 places; `None` without any.
pub fn uptime_ratio(online: i64, total: i64) -> Option<Decimal> {
    (total > 0).then(|| {
        (Decimal::from(online) / Decimal::from(total))
            .round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero)
    })
}

/// `increasing` / `decreasing` when |slope| (per hour) reaches the threshold, else `stable`.
pub fn classify_trend(slope: Option<Decimal>, threshold: Decimal) -> &'static str {
    match slope {
        Some(s) if s.abs() >= threshold && s > Decimal::ZERO => "increasing",
        Some(s) if s.abs() >= threshold => "decreasing",
        _ => "stable",
    }
}

/// An analysis as it was answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub analysis_type: AnalysisType,
    pub device_id: i64,
    pub device_uid: String,
    pub params: Value,
    pub result: Value,
}

/// GenerateReport / a status or trend analysis: stored as it was answered.
pub fn decide_record_analysis(
    result_id: i64,
    analysis: Analysis,
    now: DateTime<Utc>,
) -> Vec<ReportEvent> {
    vec![ReportEvent::AnalysisRecorded {
        result_id,
        analysis_type: analysis.analysis_type,
        device_id: analysis.device_id,
        device_uid: analysis.device_uid,
        params: analysis.params,
        result: analysis.result,
        created_at: now,
    }]
}

pub fn parse_analysis_type(raw: &str) -> Result<AnalysisType, AnalyticsError> {
    AnalysisType::parse(raw).ok_or_else(|| {
        invalid(
            "analysis_type",
            "Input should be 'report', 'status' or 'trend'",
            "enum",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use insta::assert_json_snapshot;
    use serde_json::json;

    #[test]
    fn intervals_parse_and_pick_the_coarsest_dividing_rollup() {
        let i = |raw| parse_interval(raw).unwrap();
        assert_eq!(i("1h").seconds, 3600);
        assert_eq!(i("90m").seconds, 5400);
        assert_eq!(
            i("1d"),
            Interval {
                seconds: 86400,
                days: true
            }
        );
        assert_eq!(choose_source(i("1h"), false), Source::Rollup(3600));
        assert_eq!(choose_source(i("2d"), false), Source::Rollup(3600));
        assert_eq!(choose_source(i("1d"), true), Source::Rollup(60));
        assert_eq!(choose_source(i("90m"), false), Source::Rollup(60));
        assert_eq!(choose_source(i("120s"), false), Source::Rollup(60));
        assert_eq!(choose_source(i("90s"), false), Source::Raw);
        assert_eq!(choose_source(i("30s"), false), Source::Raw);
        for bad in [
            "",
            "h",
            "0h",
            "-1h",
            "1w",
            "1.5h",
            "+1h",
            "367d",
            "99999999999999999d",
            "1é",
            "é",
            "1h°",
        ] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_must_be_ordered_and_bounded() {
        let t = |h| Utc.with_ymd_and_hms(2025, 1, 15, h, 0, 0).unwrap();
        let hour = parse_interval("1h").unwrap();
        assert!(check_window(t(0), t(10), hour).is_ok());
        assert_eq!(
            check_window(t(10), t(10), hour),
            Err(invalid("end", "end must be after start", "value_error"))
        );
        let second = parse_interval("1s").unwrap();
        assert!(check_window(t(0), t(10), second).is_err());
    }

    #[test]
    fn aggregates_trends_and_uptime() {
        let d = |v: i64| Decimal::from(v);
        assert_eq!(
            Agg::Avg.value(3, d(10), d(1), d(6)),
            Decimal::new(33333333333, 10)
        );
        assert_eq!(Agg::Count.value(3, d(10), d(1), d(6)), d(3));
        assert_eq!(
            Agg::parse("median").unwrap_err(),
            invalid(
                "agg",
                "Input should be 'avg', 'min', 'max', 'sum' or 'count'",
                "enum"
            )
        );
        assert_eq!(uptime_ratio(140, 150), Some(Decimal::new(9333, 4)));
        assert_eq!(uptime_ratio(0, 0), None);
        let threshold = Decimal::new(1, 2);
        assert_eq!(
            classify_trend(Some(Decimal::new(23, 4)), threshold),
            "stable"
        );
        assert_eq!(
            classify_trend(Some(Decimal::new(1, 2)), threshold),
            "increasing"
        );
        assert_eq!(
            classify_trend(Some(Decimal::new(-5, 1)), threshold),
            "decreasing"
        );
        assert_eq!(classify_trend(None, threshold), "stable");
    }

    #[test]
    fn given_an_analysis_when_recording_then_analysis_recorded() {
        let now = Utc.with_ymd_and_hms(2025, 1, 15, 12, 0, 0).unwrap();
        let analysis = Analysis {
            analysis_type: AnalysisType::Status,
            device_id: 5,
            device_uid: "sensor-temp-001".into(),
            params: json!({"start": null, "end": null}),
            result: json!({"total_events": 2, "status_counts": {"online": 1, "offline": 1}, "uptime_ratio": 0.5}),
        };
        assert_json_snapshot!(decide_record_analysis(7, analysis, now));
        assert_eq!(
            parse_analysis_type("summary"),
            Err(invalid(
                "analysis_type",
                "Input should be 'report', 'status' or 'trend'",
                "enum"
            ))
        );
    }
}
