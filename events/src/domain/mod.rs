//! One module per aggregate; each holds that aggregate's event enum.

mod account;

pub use account::{AccountEvent, AccountProfile, NotificationSettings, ProfileChanges, Role};

mod message;
pub use message::MessageEvent;
