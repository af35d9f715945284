//! One module per aggregate; each holds that aggregate's event enum.

mod account;
mod device;
mod message;
mod patient;
mod recording;
mod treatment;

pub use account::{AccountEvent, AccountProfile, NotificationSettings, ProfileChanges, Role};
pub use device::{DeviceChanges, DeviceEvent, DeviceLifecycle, DeviceSpec};
pub use message::MessageEvent;
pub use patient::{PatientChanges, PatientEvent, PatientProfile};
pub use recording::{
    RecordingEvent, SensorSample, SyncLogEntry, SyncLogEvent, MAX_LOGGED_SENSOR_TYPES,
    MAX_SAMPLE_BYTES, MAX_SENSOR_TYPE_CHARS,
};
pub use treatment::{MovementSample, TreatmentEvent, TreatmentRecord};
