use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Messages the system sends to people (SMS today). Stream `message-<id>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum MessageEvent {
    /// A verification SMS handed to the sender. `code` is kept so the phone check can compare.
    SmsQueued {
        message_id: i64,
        phone: String,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        queued_at: DateTime<Utc>,
    },
}

crate::domain_event!(MessageEvent, "message", [SmsQueued]);
