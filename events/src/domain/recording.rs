//! The `recording` aggregate: one KooDTX sensor-recording session (stream
//! `recording-<session_id>`, the client's session id used as-is), its pushed samples and the
//! log of every push. Pull logs belong to no session and go to `synclog-<account_id>`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest sample (its JSON) a push may carry; larger ones are refused (counted in
/// `errors`). Pushes are split into `SamplesPushed` events by encoded size, so every event stays
/// under [`crate::MAX_EVENT_BYTES`] however large the push.
pub const MAX_SAMPLE_BYTES: usize = 64 * 1024;

/// Longest `sensor_type` a sample may name (longer: counted in `errors`).
pub const MAX_SENSOR_TYPE_CHARS: usize = 64;

/// A sync log lists at most this many sensor types (the first, sorted); the counts stay exact.
pub const MAX_LOGGED_SENSOR_TYPES: usize = 256;

/// One sensor reading, keyed `(session, sensor_type, timestamp)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorSample {
    pub sensor_type: String,
    /// Milliseconds since the epoch, as the client sent it.
    pub timestamp: i64,
    pub data: Value,
}

/// What one push or pull did, as shown by `GET /api/sync/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncLogEntry {
    pub sync_log_id: i64,
    pub account_id: i64,
    #[serde(default)]
    pub session_id: Option<String>,
    /// `push` | `pull`
    pub sync_type: String,
    /// `success` | `failed`
    pub status: String,
    pub total_records: i64,
    pub inserted: i64,
    pub updated: i64,
    pub duplicates: i64,
    pub errors: i64,
    pub sensor_types: Vec<String>,
    pub bytes: i64,
    pub logged_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum RecordingEvent {
    SessionStarted {
        session_id: String,
        owner_id: i64,
        start_time: DateTime<Utc>,
        end_time: Option<DateTime<Utc>>,
        is_active: bool,
        enabled_sensors: Vec<String>,
        sample_rate: Option<i64>,
        notes: Option<String>,
        started_at: DateTime<Utc>,
    },
    /// Only the fields a later push may change.
    SessionUpdated {
        session_id: String,
        owner_id: i64,
        end_time: Option<DateTime<Utc>>,
        is_active: bool,
        notes: Option<String>,
        updated_at: DateTime<Utc>,
    },
    /// The samples of a push that are new or changed (identical ones are left out: they change
    /// nothing): `inserted` keys the session did not hold, `updated` keys whose data the push
    /// replaces (last write wins). Replaying these in log order rebuilds the sample table
    /// exactly. Schema 2; schema 1 held one `samples` list, upcast into `updated`.
    SamplesPushed {
        session_id: String,
        inserted: Vec<SensorSample>,
        updated: Vec<SensorSample>,
        pushed_at: DateTime<Utc>,
    },
    SyncLogged {
        log: SyncLogEntry,
    },
}

crate::domain_event!(
    RecordingEvent,
    "recording",
    [SessionStarted, SessionUpdated, SamplesPushed, SyncLogged],
    versions { SamplesPushed => 2 },
    upcast = upcast_recording_event,
);

/// `SamplesPushed` 1 → 2: schema 1 did not say which samples were new, so all of them are
/// applied as `updated` (insert or overwrite), which is what schema 1 meant.
fn upcast_recording_event(event_type: &str, schema_version: i32, data: &Value) -> Option<Value> {
    if event_type != "SamplesPushed" || schema_version >= 2 {
        return None;
    }
    let mut upcast = data.clone();
    if let Value::Object(fields) = &mut upcast {
        let samples = fields.remove("samples").unwrap_or(Value::Array(Vec::new()));
        fields.insert("inserted".into(), Value::Array(Vec::new()));
        fields.insert("updated".into(), samples);
    }
    Some(upcast)
}

/// Pull logs of one account (stream `synclog-<account_id>`, appended without a version check).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum SyncLogEvent {
    SyncLogged { log: SyncLogEntry },
}

crate::domain_event!(SyncLogEvent, "synclog", [SyncLogged]);
