//! One module per aggregate; each holds that aggregate's event enum.

mod account;
mod device;
mod patient;
mod treatment;

pub use account::{AccountEvent, AccountProfile, NotificationSettings, ProfileChanges, Role};

mod message;
pub use message::MessageEvent;
pub use device::{DeviceChanges, DeviceEvent, DeviceLifecycle, DeviceSpec};
pub use patient::{PatientChanges, PatientEvent, PatientProfile};
pub use treatment::{MovementSample, TreatmentEvent, TreatmentRecord};
