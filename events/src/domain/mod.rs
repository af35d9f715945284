//! One module per aggregate; each holds that aggregate's event enum.

mod account;
mod recording;

pub use account::{AccountEvent, AccountProfile, Role};
pub use recording::{
    RecordingEvent, SensorSample, SyncLogEntry, SyncLogEvent, MAX_SAMPLES_PER_EVENT,
};
