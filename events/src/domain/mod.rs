//! One module per aggregate; each holds that aggregate's event enum.

mod account;
mod alerting;
mod device;
mod device_message;
mod message;
mod patient;
mod recording;
mod report;
mod telemetry;
mod treatment;

pub use account::{AccountEvent, AccountProfile, NotificationSettings, ProfileChanges, Role};
pub use alerting::{
    alert_stream_key, AlertEvent, AlertRuleChanges, AlertRuleEvent, AlertRuleSpec, Condition,
    Notification, Severity,
};
pub use device::{present, DeviceChanges, DeviceEvent, DeviceLifecycle, DeviceSpec};
pub use device_message::{DeviceChannel, DeviceMessageEvent, MAX_DEVICE_PAYLOAD_BYTES};
pub use message::MessageEvent;
pub use patient::{PatientChanges, PatientEvent, PatientProfile};
pub use recording::{
    RecordingEvent, SensorSample, SyncLogEntry, SyncLogEvent, MAX_LOGGED_SENSOR_TYPES,
    MAX_SAMPLE_BYTES, MAX_SENSOR_TYPE_CHARS,
};
pub use report::{AnalysisType, ReportEvent};
pub use telemetry::{
    Connectivity, TelemetryEvent, TelemetrySample, MAX_SAMPLES_PER_TELEMETRY_EVENT,
};
pub use treatment::{MovementSample, TreatmentEvent, TreatmentRecord};
