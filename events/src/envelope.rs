use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Who and what caused an event; stored in the log's `metadata` column.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One row of the log as read back.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "store", derive(sqlx::FromRow))]
pub struct StoredEvent {
    pub global_position: i64,
    pub transaction_id: i64,
    pub stream_id: String,
    pub stream_version: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub data: Value,
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    pub fn category(&self) -> &str {
        crate::category_of(&self.stream_id)
    }

    /// Decodes the payload as `E` when the stream belongs to `E`'s category.
    pub fn decode<E: crate::DomainEvent>(&self) -> Option<Result<E, crate::DecodeError>> {
        (self.category() == E::CATEGORY)
            .then(|| E::decode(&self.event_type, self.schema_version, &self.data))
    }
}

/// The JSON body published on NATS for every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub stream_id: String,
    pub category: String,
    pub stream_version: i64,
    pub global_position: i64,
    pub recorded_at: DateTime<Utc>,
    pub data: Value,
    pub metadata: Value,
    /// Set when the relay could not publish the event whole (`data` is then null): the event
    /// stays in the log, readable with `fleetstream events show` and the admin event read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_omitted: Option<OmittedPayload>,
}

/// Why and how much of an event's payload a NATS message leaves out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OmittedPayload {
    /// Bytes of the whole envelope that could not be published (0 when it could not be encoded).
    pub bytes: u64,
    /// `size` (over the server's or stream's message limit), `serialization`, or `refused`
    /// (JetStream refused the whole message).
    pub reason: String,
}

impl EventEnvelope {
    /// The envelope with its payload left out: ids, positions, type and metadata stay, so
    /// subscribers keep order and de-duplication and can fetch the event from the log.
    pub fn omitting_payload(mut self, bytes: u64, reason: &str) -> Self {
        self.data = Value::Null;
        self.payload_omitted = Some(OmittedPayload {
            bytes,
            reason: reason.to_owned(),
        });
        self
    }
}

/// Payload fields that stay in the log (replays need them) but never leave it: NATS
/// subscribers and CLI output see `"[redacted]"`.
pub const SECRET_FIELDS: &[&str] = &["password_hash", "token_hash", "code_hash", "validnum"];

fn redact(mut data: Value) -> Value {
    if let Value::Object(map) = &mut data {
        for (key, value) in map.iter_mut() {
            if SECRET_FIELDS.contains(&key.as_str()) {
                *value = Value::String("[redacted]".into());
            } else if value.is_object() {
                *value = redact(std::mem::take(value));
            }
        }
    }
    data
}

impl From<&StoredEvent> for EventEnvelope {
    fn from(e: &StoredEvent) -> Self {
        Self {
            event_id: e.event_id,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            stream_id: e.stream_id.clone(),
            category: e.category().to_owned(),
            stream_version: e.stream_version,
            global_position: e.global_position,
            recorded_at: e.recorded_at,
            data: redact(e.data.clone()),
            metadata: e.metadata.clone(),
            payload_omitted: None,
        }
    }
}
