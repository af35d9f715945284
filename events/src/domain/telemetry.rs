//! The `telemetry` aggregate: one stream per device (`telemetry-<device_id>`), appended without
//! a version check. It carries measurements and the device's own status reports (online /
//! offline); both are facts about the device's past that no later command can contradict.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// At most this many samples travel in one `TelemetryRecorded` event. Metric and unit are
/// bounded by the command, so an event stays far below 256 KiB of JSON.
pub const MAX_SAMPLES_PER_TELEMETRY_EVENT: usize = 500;

/// One measurement. `value` is exact (NUMERIC(20,10)), serialized as a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySample {
    /// Assigned at command time from `measurement_id_seq`.
    pub id: i64,
    pub metric: String,
    pub value: Decimal,
    #[serde(default)]
    pub unit: Option<String>,
    pub timestamp: DateTime<Utc>,
}

/// A device's connectivity as it reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Connectivity {
    Online,
    Offline,
}

impl Connectivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "online" => Some(Self::Online),
            "offline" => Some(Self::Offline),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TelemetryEvent {
    TelemetryRecorded {
        device_id: i64,
        samples: Vec<TelemetrySample>,
        recorded_at: DateTime<Utc>,
    },
    DeviceStatusReported {
        device_id: i64,
        status: Connectivity,
        reported_at: DateTime<Utc>,
    },
}

crate::domain_event!(
    TelemetryEvent,
    "telemetry",
    [TelemetryRecorded, DeviceStatusReported]
);
