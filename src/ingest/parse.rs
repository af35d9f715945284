//! Pure reading of one device message: its subject (`devices.{uid}.{kind}`) and payload, into
//! what the ingest records — or the reason it is refused. Nothing here touches the database.

use crate::measurements::domain::{validate_sample, SampleInput, ValidSample};
use chrono::{DateTime, Duration, TimeZone, Utc};
use fleetstream_events::{encoded_len, MAX_DEVICE_PAYLOAD_BYTES};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::str::FromStr;

/// What a device publishes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressKind {
    Telemetry,
    Status,
    Log,
    Response,
}

/// One message, understood.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceMessage {
    Telemetry(Vec<ValidSample>),
    Status(String),
    Log { event_type: String, payload: Value },
    Response { command_id: String, payload: Value },
}

/// Why a message is not recorded; the label of `fleet_ingest_rejected_total{reason}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    UnknownSubject,
    UnknownDevice,
    MalformedJson,
    NotAnObject,
    NonNumericValue(String),
    InvalidSample(String),
    TimestampOutOfRange,
    NoMeasurements,
    InvalidStatus,
    MissingField(&'static str),
    TooLarge,
}

impl Rejection {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownSubject => "unknown_subject",
            Self::UnknownDevice => "unknown_device",
            Self::MalformedJson => "malformed_json",
            Self::NotAnObject => "not_an_object",
            Self::NonNumericValue(_) => "non_numeric_value",
            Self::InvalidSample(_) => "invalid_sample",
            Self::TimestampOutOfRange => "ts_out_of_range",
            Self::NoMeasurements => "no_measurements",
            Self::InvalidStatus => "invalid_status",
            Self::MissingField(_) => "missing_field",
            Self::TooLarge => "too_large",
        }
    }

    pub fn detail(&self) -> String {
        match self {
            Self::NonNumericValue(metric) => format!("{metric} is not a number"),
            Self::InvalidSample(message) => message.clone(),
            Self::MissingField(field) => format!("{field} is missing"),
            other => other.reason().replace('_', " "),
        }
    }
}

/// `devices.{uid}.{kind}` → the device uid and the kind.
pub fn parse_subject(subject: &str) -> Result<(&str, IngressKind), Rejection> {
    let mut parts = subject.split('.');
    let (Some("devices"), Some(uid), Some(kind), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::UnknownSubject);
    };
    let kind = match kind {
        "telemetry" => IngressKind::Telemetry,
        "status" => IngressKind::Status,
        "log" => IngressKind::Log,
        "response" => IngressKind::Response,
        _ => return Err(Rejection::UnknownSubject),
    };
    if uid.is_empty() {
        return Err(Rejection::UnknownSubject);
    }
    Ok((uid, kind))
}

/// Earliest `ts` accepted (2000-01-01) and how far ahead of the server clock a device may be.
const EARLIEST_TS_MS: i64 = 946_684_800_000;
const MAX_CLOCK_AHEAD: Duration = Duration::hours(24);

/// Reads a payload of `kind`. Telemetry is `{"<metric>": number, ..., "ts": ms?}`: every
/// value must be a JSON number (read exactly as a decimal, never through f64).
pub fn parse_payload(
    kind: IngressKind,
    payload: &[u8],
    now: DateTime<Utc>,
) -> Result<DeviceMessage, Rejection> {
    if payload.len() > MAX_DEVICE_PAYLOAD_BYTES {
        return Err(Rejection::TooLarge);
    }
    match kind {
        IngressKind::Telemetry => parse_telemetry(payload, now).map(DeviceMessage::Telemetry),
        IngressKind::Status => {
            let object = object(payload)?;
            match object.get("status").and_then(Value::as_str) {
                Some(status @ ("online" | "offline")) => Ok(DeviceMessage::Status(status.into())),
                Some(_) => Err(Rejection::InvalidStatus),
                None => Err(Rejection::MissingField("status")),
            }
        }
        IngressKind::Log => {
            let object = object(payload)?;
            let event_type = match object.get("event_type") {
                Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 100 => {
                    s.clone()
                }
                _ => return Err(Rejection::MissingField("event_type")),
            };
            Ok(DeviceMessage::Log {
                event_type,
                payload: Value::Object(object),
            })
        }
        IngressKind::Response => {
            let object = object(payload)?;
            let command_id = match object.get("command_id") {
                Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 100 => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return Err(Rejection::MissingField("command_id")),
            };
            Ok(DeviceMessage::Response {
                command_id,
                payload: Value::Object(object),
            })
        }
    }
}

fn object(payload: &[u8]) -> Result<Map<String, Value>, Rejection> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(map)) if encoded_len(&map) <= MAX_DEVICE_PAYLOAD_BYTES => Ok(map),
        Ok(Value::Object(_)) => Err(Rejection::TooLarge),
        Ok(_) => Err(Rejection::NotAnObject),
        Err(_) => Err(Rejection::MalformedJson),
    }
}

fn parse_telemetry(payload: &[u8], now: DateTime<Utc>) -> Result<Vec<ValidSample>, Rejection> {
    let fields: BTreeMap<String, &RawValue> = match serde_json::from_slice(payload) {
        Ok(fields) => fields,
        Err(_) => {
            // Valid JSON that is not an object, or not JSON at all.
            return Err(match serde_json::from_slice::<Value>(payload) {
                Ok(_) => Rejection::NotAnObject,
                Err(_) => Rejection::MalformedJson,
            });
        }
    };
    let timestamp = match fields.get("ts") {
        None => now,
        Some(raw) => {
            let ms: i64 = raw
                .get()
                .parse()
                .map_err(|_| Rejection::TimestampOutOfRange)?;
            let at = Utc
                .timestamp_millis_opt(ms)
                .single()
                .ok_or(Rejection::TimestampOutOfRange)?;
            if ms < EARLIEST_TS_MS || at > now + MAX_CLOCK_AHEAD {
                return Err(Rejection::TimestampOutOfRange);
            }
            at
        }
    };
    let mut samples = Vec::new();
    for (metric, raw) in fields.iter().filter(|(name, _)| name.as_str() != "ts") {
        let text = raw.get();
        let value = number(text).ok_or_else(|| {
            if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
                Rejection::InvalidSample(format!("{metric}: value out of range"))
            } else {
                Rejection::NonNumericValue(metric.clone())
            }
        })?;
        let sample = validate_sample(
            SampleInput {
                metric: metric.clone(),
                value,
                unit: None,
                timestamp: Some(timestamp),
            },
            now,
        )
        .map_err(|err| Rejection::InvalidSample(format!("{metric}: {err:?}")))?;
        samples.push(sample);
    }
    if samples.is_empty() {
        return Err(Rejection::NoMeasurements);
    }
    Ok(samples)
}

/// A JSON number's text as an exact decimal (`23.5`, `-4`, `1.5e3`); anything else is `None`.
fn number(raw: &str) -> Option<Decimal> {
    let first = raw.chars().next()?;
    if !(first == '-' || first.is_ascii_digit()) {
        return None;
    }
    if raw.contains(['e', 'E']) {
        Decimal::from_scientific(raw).ok()
    } else {
        Decimal::from_str(raw).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
    }

    #[test]
    fn subjects_name_the_device_and_the_kind() {
        assert_eq!(
            parse_subject("devices.abc-1.telemetry"),
            Ok(("abc-1", IngressKind::Telemetry))
        );
        assert_eq!(
            parse_subject("devices.abc.response"),
            Ok(("abc", IngressKind::Response))
        );
        assert_eq!(
            parse_subject("devices.abc.command"),
            Err(Rejection::UnknownSubject)
        );
        assert_eq!(
            parse_subject("devices.a.b.telemetry"),
            Err(Rejection::UnknownSubject)
        );
    }

    #[test]
    fn telemetry_values_are_exact_decimals_at_the_devices_time() {
        let parsed = parse_payload(
            IngressKind::Telemetry,
            br#"{"temperature": 23.1234567891, "humidity": 40, "pressure": 1.0135e3, "ts": 1764504000000}"#,
            now(),
        )
        .unwrap();
        let DeviceMessage::Telemetry(samples) = parsed else {
            panic!("telemetry");
        };
        let values: Vec<(String, String)> = samples
            .iter()
            .map(|s| (s.metric.clone(), s.value.to_string()))
            .collect();
        assert_eq!(
            values,
            vec![
                ("humidity".into(), "40".into()),
                ("pressure".into(), "1013.5".into()),
                ("temperature".into(), "23.1234567891".into()),
            ]
        );
        assert!(samples
            .iter()
            .all(|s| s.timestamp == Utc.timestamp_millis_opt(1_764_504_000_000).unwrap()));
    }

    #[test]
    fn telemetry_without_ts_is_recorded_now() {
        let DeviceMessage::Telemetry(samples) =
            parse_payload(IngressKind::Telemetry, br#"{"t": 1}"#, now()).unwrap()
        else {
            panic!("telemetry");
        };
        assert_eq!(samples[0].timestamp, now());
    }

    #[test]
    fn bad_telemetry_is_refused_with_its_reason() {
        let refused = |payload: &[u8]| {
            parse_payload(IngressKind::Telemetry, payload, now())
                .unwrap_err()
                .reason()
        };
        assert_eq!(refused(b"{not json"), "malformed_json");
        assert_eq!(refused(b"[1, 2]"), "not_an_object");
        assert_eq!(refused(br#"{"t": "hot"}"#), "non_numeric_value");
        assert_eq!(refused(br#"{"t": null}"#), "non_numeric_value");
        assert_eq!(refused(br#"{"t": 1, "ts": 5}"#), "ts_out_of_range");
        assert_eq!(
            refused(br#"{"t": 1, "ts": 99999999999999}"#),
            "ts_out_of_range"
        );
        assert_eq!(refused(br#"{"t": 1, "ts": "soon"}"#), "ts_out_of_range");
        assert_eq!(refused(br#"{"ts": 1764504000000}"#), "no_measurements");
        assert_eq!(refused(br#"{"t": 1e30}"#), "invalid_sample");
        assert_eq!(
            refused(format!("{{\"t\": 1, \"pad\": \"{}\"}}", "x".repeat(70_000)).as_bytes()),
            "too_large"
        );
    }

    #[test]
    fn status_log_and_response_payloads() {
        assert_eq!(
            parse_payload(IngressKind::Status, br#"{"status": "online"}"#, now()),
            Ok(DeviceMessage::Status("online".into()))
        );
        assert_eq!(
            parse_payload(IngressKind::Status, br#"{"status": "asleep"}"#, now())
                .unwrap_err()
                .reason(),
            "invalid_status"
        );
        let log = parse_payload(
            IngressKind::Log,
            br#"{"event_type": "boot", "fw": "1.2"}"#,
            now(),
        )
        .unwrap();
        assert!(matches!(log, DeviceMessage::Log { ref event_type, .. } if event_type == "boot"));
        assert_eq!(
            parse_payload(IngressKind::Log, br#"{"fw": "1.2"}"#, now())
                .unwrap_err()
                .reason(),
            "missing_field"
        );
        let response = parse_payload(
            IngressKind::Response,
            br#"{"command_id": "c-1", "ok": true}"#,
            now(),
        )
        .unwrap();
        assert!(
            matches!(response, DeviceMessage::Response { ref command_id, .. } if command_id == "c-1")
        );
    }
}
