//! Pure decisions of the telemetry aggregate: who may record, what a valid sample is (DRF's
//! `DecimalField(max_digits=20, decimal_places=10)` rules, exactly), and the events of a
//! recording or a status report.

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use fleetstream_events::{
    Connectivity, TelemetryEvent, TelemetrySample, MAX_SAMPLES_PER_TELEMETRY_EVENT,
};
use rust_decimal::Decimal;

pub const MAX_METRIC_CHARS: usize = 50;
pub const MAX_UNIT_CHARS: usize = 20;
/// Samples one command may carry (MQTT batches included); larger ones are refused, not cut.
pub const MAX_SAMPLES_PER_COMMAND: usize = 10_000;
const MAX_DIGITS: u32 = 20;
const MAX_DECIMAL_PLACES: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelemetryError {
    DeviceNotFound,
    Forbidden,
    /// A field failed validation: (field, message).
    Invalid(&'static str, String),
}

fn invalid(field: &'static str, message: impl Into<String>) -> TelemetryError {
    TelemetryError::Invalid(field, message.into())
}

/// What the device registry says about the device a caller names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceFacts {
    pub device_id: i64,
    pub owner_id: Option<i64>,
}

/// The account behind a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub account_id: i64,
    pub is_manager: bool,
}

/// Managers and above, and the device's owner, may record (CONTRACT, further decisions).
pub fn authorize_record(device: Option<DeviceFacts>, actor: Actor) -> Result<i64, TelemetryError> {
    let device = device.ok_or(TelemetryError::DeviceNotFound)?;
    if actor.is_manager || device.owner_id == Some(actor.account_id) {
        Ok(device.device_id)
    } else {
        Err(TelemetryError::Forbidden)
    }
}

/// A sample as the wire gives it, before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleInput {
    pub metric: String,
    pub value: Decimal,
    pub unit: Option<String>,
    pub timestamp: Option<DateTime<Utc>>,
}

/// A sample that passed validation; only an id is missing.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidSample {
    pub metric: String,
    pub value: Decimal,
    pub unit: Option<String>,
    pub timestamp: DateTime<Utc>,
}

/// A JSON number's or string's text as an exact decimal (`1e3` and `-2.5E-4` included).
pub fn parse_decimal(raw: &str) -> Option<Decimal> {
    let raw = raw.trim();
    if raw.contains(['e', 'E']) {
        Decimal::from_scientific(raw).ok()
    } else {
        Decimal::from_str_exact(raw).ok()
    }
}

/// A decimal from a JSON value's raw text: a number as written, or a string holding one
/// (never through `f64`). `None` for anything else.
pub fn decimal_from_json(raw: &str) -> Option<Decimal> {
    let raw = raw.trim();
    if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw).ok()?;
        parse_decimal(&text)
    } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        parse_decimal(raw)
    } else {
        None
    }
}

/// DRF's digit rules for `NUMERIC(20,10)`, with its messages, in its order.
pub fn check_decimal(value: Decimal) -> Result<Decimal, String> {
    let mantissa = value.mantissa().unsigned_abs();
    let digits = if mantissa == 0 {
        1
    } else {
        mantissa.ilog10() + 1
    };
    let scale = value.scale();
    let (total, whole, places) = if scale == 0 {
        (digits, digits, 0)
    } else if digits > scale {
        (digits, digits - scale, scale)
    } else {
        (scale, 0, scale)
    };
    if total > MAX_DIGITS {
        return Err(format!(
            "Ensure that there are no more than {MAX_DIGITS} digits in total."
        ));
    }
    if places > MAX_DECIMAL_PLACES {
        return Err(format!(
            "Ensure that there are no more than {MAX_DECIMAL_PLACES} decimal places."
        ));
    }
    if whole > MAX_DIGITS - MAX_DECIMAL_PLACES {
        return Err(format!(
            "Ensure that there are no more than {} digits before the decimal point.",
            MAX_DIGITS - MAX_DECIMAL_PLACES
        ));
    }
    Ok(value)
}

pub const DATETIME_FORMAT_ERROR: &str = "Datetime has wrong format. Use one of these formats \
    instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].";

/// ISO 8601 with an offset, or naive (taken as UTC, as Django does with `TIME_ZONE = 'UTC'`).
pub fn parse_timestamp(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

/// The oldest timestamp a sample may carry: every month since holds at most one partition, so
/// a client cannot make the table grow partitions without bound.
pub fn earliest_timestamp() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()
}

pub fn validate_sample(
    input: SampleInput,
    now: DateTime<Utc>,
) -> Result<ValidSample, TelemetryError> {
    let metric = input.metric.trim().to_owned();
    if metric.is_empty() {
        return Err(invalid("metric", "This field may not be blank."));
    }
    if metric.chars().count() > MAX_METRIC_CHARS {
        return Err(invalid(
            "metric",
            format!("Ensure this field has no more than {MAX_METRIC_CHARS} characters."),
        ));
    }
    let unit = input
        .unit
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty());
    if unit
        .as_ref()
        .is_some_and(|u| u.chars().count() > MAX_UNIT_CHARS)
    {
        return Err(invalid(
            "unit",
            format!("Ensure this field has no more than {MAX_UNIT_CHARS} characters."),
        ));
    }
    let value = check_decimal(input.value).map_err(|m| invalid("value", m))?;
    let timestamp = input.timestamp.unwrap_or(now);
    if timestamp < earliest_timestamp() || timestamp > now + Duration::days(1) {
        return Err(invalid(
            "timestamp",
            "Timestamp must be between 2000-01-01 and one day from now.",
        ));
    }
    Ok(ValidSample {
        metric,
        value,
        unit,
        timestamp,
    })
}

/// A recording holds at least one and at most [`MAX_SAMPLES_PER_COMMAND`] samples.
pub fn check_sample_count(n: usize) -> Result<(), TelemetryError> {
    if n == 0 {
        return Err(invalid("samples", "No samples were sent."));
    }
    if n > MAX_SAMPLES_PER_COMMAND {
        return Err(invalid(
            "samples",
            format!("Ensure there are no more than {MAX_SAMPLES_PER_COMMAND} samples."),
        ));
    }
    Ok(())
}

/// RecordTelemetry: the samples with their ids, split into events of at most
/// [`MAX_SAMPLES_PER_TELEMETRY_EVENT`]. `ids` come from the sequence, one per sample.
pub fn decide_record(
    device_id: i64,
    ids: &[i64],
    samples: Vec<ValidSample>,
    now: DateTime<Utc>,
) -> Result<Vec<TelemetryEvent>, TelemetryError> {
    check_sample_count(samples.len())?;
    assert_eq!(ids.len(), samples.len(), "one id per sample");
    let samples: Vec<TelemetrySample> = samples
        .into_iter()
        .zip(ids)
        .map(|(s, id)| TelemetrySample {
            id: *id,
            metric: s.metric,
            value: s.value,
            unit: s.unit,
            timestamp: s.timestamp,
        })
        .collect();
    Ok(samples
        .chunks(MAX_SAMPLES_PER_TELEMETRY_EVENT)
        .map(|chunk| TelemetryEvent::TelemetryRecorded {
            device_id,
            samples: chunk.to_vec(),
            recorded_at: now,
        })
        .collect())
}

/// ReportDeviceStatus: every report is kept (uptime counts them), however often it repeats.
pub fn decide_status(
    device_id: i64,
    raw_status: &str,
    now: DateTime<Utc>,
) -> Result<Vec<TelemetryEvent>, TelemetryError> {
    let status = Connectivity::parse(raw_status.trim())
        .ok_or_else(|| invalid("status", "Status must be one of: online, offline"))?;
    Ok(vec![TelemetryEvent::DeviceStatusReported {
        device_id,
        status,
        reported_at: now,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use insta::assert_json_snapshot;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 11, 2, 10, 30, 0).unwrap()
    }

    fn dec(raw: &str) -> Decimal {
        parse_decimal(raw).unwrap()
    }

    fn input(metric: &str, value: &str) -> SampleInput {
        SampleInput {
            metric: metric.into(),
            value: dec(value),
            unit: Some("°C".into()),
            timestamp: None,
        }
    }

    #[test]
    fn given_a_device_when_authorizing_then_managers_and_the_owner_may_record() {
        let device = Some(DeviceFacts {
            device_id: 5,
            owner_id: Some(3),
        });
        let owner = Actor {
            account_id: 3,
            is_manager: false,
        };
        let other = Actor {
            account_id: 4,
            is_manager: false,
        };
        let manager = Actor {
            account_id: 9,
            is_manager: true,
        };
        assert_eq!(authorize_record(device, owner), Ok(5));
        assert_eq!(authorize_record(device, manager), Ok(5));
        assert_eq!(
            authorize_record(device, other),
            Err(TelemetryError::Forbidden)
        );
        assert_eq!(
            authorize_record(None, manager),
            Err(TelemetryError::DeviceNotFound)
        );
    }

    #[test]
    fn given_valid_samples_when_recording_then_one_event_with_ids_and_default_timestamp() {
        let samples = vec![
            validate_sample(input(" temperature ", "25.5"), now()).unwrap(),
            validate_sample(
                SampleInput {
                    timestamp: Some(now() - Duration::minutes(1)),
                    unit: Some("  ".into()),
                    ..input("humidity", "-1.25E1")
                },
                now(),
            )
            .unwrap(),
        ];
        assert_json_snapshot!(decide_record(5, &[100, 101], samples, now()).unwrap());
    }

    #[test]
    fn given_many_samples_when_recording_then_split_by_event_size() {
        let n = MAX_SAMPLES_PER_TELEMETRY_EVENT * 2 + 1;
        let samples: Vec<ValidSample> = (0..n)
            .map(|i| validate_sample(input("t", &i.to_string()), now()).unwrap())
            .collect();
        let ids: Vec<i64> = (1..=n as i64).collect();
        let events = decide_record(5, &ids, samples, now()).unwrap();
        let sizes: Vec<usize> = events
            .iter()
            .map(|e| match e {
                TelemetryEvent::TelemetryRecorded { samples, .. } => samples.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, vec![500, 500, 1]);
        for e in &events {
            assert!(serde_json::to_vec(e).unwrap().len() < 256 * 1024);
        }
    }

    #[test]
    fn given_no_or_too_many_samples_when_recording_then_refused() {
        assert_eq!(
            decide_record(5, &[], vec![], now()),
            Err(invalid("samples", "No samples were sent."))
        );
        let sample = validate_sample(input("t", "1"), now()).unwrap();
        let many = vec![sample; MAX_SAMPLES_PER_COMMAND + 1];
        let ids = vec![1; MAX_SAMPLES_PER_COMMAND + 1];
        assert_eq!(
            decide_record(5, &ids, many, now()),
            Err(invalid(
                "samples",
                "Ensure there are no more than 10000 samples."
            ))
        );
    }

    #[test]
    fn sample_validation_errors_are_drf_messages() {
        let err = |i: SampleInput| validate_sample(i, now()).unwrap_err();
        assert_eq!(
            err(input("  ", "1")),
            invalid("metric", "This field may not be blank.")
        );
        assert_eq!(
            err(input(&"m".repeat(51), "1")),
            invalid(
                "metric",
                "Ensure this field has no more than 50 characters."
            )
        );
        assert_eq!(
            err(SampleInput {
                unit: Some("u".repeat(21)),
                ..input("t", "1")
            }),
            invalid("unit", "Ensure this field has no more than 20 characters.")
        );
        assert_eq!(
            err(input("t", "12345678901")),
            invalid(
                "value",
                "Ensure that there are no more than 10 digits before the decimal point."
            )
        );
        assert_eq!(
            err(input("t", "1.12345678901")),
            invalid(
                "value",
                "Ensure that there are no more than 10 decimal places."
            )
        );
        assert_eq!(
            err(input("t", "1234567890.12345678901")),
            invalid(
                "value",
                "Ensure that there are no more than 20 digits in total."
            )
        );
        assert_eq!(
            err(SampleInput {
                timestamp: Some(Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap()),
                ..input("t", "1")
            }),
            invalid(
                "timestamp",
                "Timestamp must be between 2000-01-01 and one day from now."
            )
        );
        assert_eq!(
            err(SampleInput {
                timestamp: Some(now() + Duration::days(2)),
                ..input("t", "1")
            }),
            invalid(
                "timestamp",
                "Timestamp must be between 2000-01-01 and one day from now."
            )
        );
    }

    #[test]
    fn decimal_rules_accept_the_edges_of_numeric_20_10() {
        assert!(check_decimal(dec("9999999999.9999999999")).is_ok());
        assert!(check_decimal(dec("-9999999999.9999999999")).is_ok());
        assert!(check_decimal(dec("0.0000000001")).is_ok());
        assert!(check_decimal(dec("0")).is_ok());
        assert_eq!(dec("1e3"), Decimal::from(1000));
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_decimal("NaN"), None);
    }

    #[test]
    fn timestamps_parse_with_offset_or_naive_as_utc() {
        assert_eq!(parse_timestamp("2025-11-02T10:30:00Z"), Some(now()));
        assert_eq!(parse_timestamp("2025-11-02T19:30:00+09:00"), Some(now()));
        assert_eq!(parse_timestamp("2025-11-02T10:30:00"), Some(now()));
        assert_eq!(parse_timestamp("2025-11-02T10:30"), Some(now()));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn given_a_status_when_reporting_then_reported_or_refused() {
        assert_json_snapshot!(decide_status(5, "online", now()).unwrap());
        assert_eq!(
            decide_status(5, "rebooting", now()),
            Err(invalid("status", "Status must be one of: online, offline"))
        );
    }
}
