use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// One therapy record as the device reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreatmentRecord {
    pub real_user_id: i64,
    /// Start of the treatment, device-local wall time as sent.
    pub treatment_date: NaiveDateTime,
    pub last_intensity: i64,
    pub treatment_time: i64,
    #[serde(default)]
    pub movement: i64,
    #[serde(default)]
    pub finish_flag: Option<i64>,
    #[serde(default)]
    pub log_file_id: Option<i64>,
    #[serde(default)]
    pub log_data: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MovementSample {
    pub val: i64,
    /// Unix seconds.
    pub timestamp: i64,
}

/// Events of a device's treatment stream (`treatment-<device id>`). Records are numbered
/// within the stream (`record_no`), so read models key rows the same way on every rebuild.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum TreatmentEvent {
    TempTreatmentStarted {
        device_id: i64,
        record_no: i64,
        record: TreatmentRecord,
        at: DateTime<Utc>,
    },
    TempTreatmentUpdated {
        device_id: i64,
        record_no: i64,
        last_intensity: i64,
        treatment_time: i64,
        at: DateTime<Utc>,
    },
    /// A completed log: either the open temporary record (`record_no` of it) completed, or a
    /// new record.
    TreatmentCompleted {
        device_id: i64,
        record_no: i64,
        completes_temp: bool,
        record: TreatmentRecord,
        at: DateTime<Utc>,
    },
    MovementRecorded {
        device_id: i64,
        real_user_id: i64,
        samples: Vec<MovementSample>,
        at: DateTime<Utc>,
    },
}

crate::domain_event!(
    TreatmentEvent,
    "treatment",
    [
        TempTreatmentStarted,
        TempTreatmentUpdated,
        TreatmentCompleted,
        MovementRecorded
    ]
);
