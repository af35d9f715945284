use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Who and what caused an event; stored in the log's `metadata` column (CONTRACT §5).
/// `actor` is always written (null for self-registration and system work, with `door` saying
/// where it came from). Ids are strings: a client's `x-request-id` or `x-correlation-id` need
/// not be UUIDs, and a causation may be an event id or a NATS message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventMetadata {
    #[serde(default)]
    pub actor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub door: Option<String>,
}

impl EventMetadata {
    /// Metadata naming only the acting account.
    pub fn actor(account_id: i64) -> Self {
        Self {
            actor: Some(account_id),
            ..Self::default()
        }
    }

    /// Fills every field this metadata leaves empty from `other`.
    pub fn or(mut self, other: &EventMetadata) -> Self {
        self.actor = self.actor.or(other.actor);
        if self.request_id.is_none() {
            self.request_id.clone_from(&other.request_id);
        }
        if self.correlation_id.is_none() {
            self.correlation_id.clone_from(&other.correlation_id);
        }
        if self.causation_id.is_none() {
            self.causation_id.clone_from(&other.causation_id);
        }
        if self.door.is_none() && self.actor.is_none() {
            self.door.clone_from(&other.door);
        }
        self
    }

    /// Metadata for work caused by a stored event (process managers, ingest, projections that
    /// append): its correlation carries on (the event's own id starts one when it has none)
    /// and the event is the causation.
    pub fn caused_by(event: &StoredEvent) -> Self {
        let correlation = event
            .metadata
            .get("correlation_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| event.event_id.to_string());
        Self {
            actor: None,
            request_id: None,
            correlation_id: Some(correlation),
            causation_id: Some(event.event_id.to_string()),
            door: None,
        }
    }
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

/// The envelope every subscriber sees: secrets redacted, and personal fields (sealed or, in
/// events older than sealing, clear) shown as [`crate::privacy::PERSONAL`], never their value.
impl From<&StoredEvent> for EventEnvelope {
    fn from(e: &StoredEvent) -> Self {
        let mut data = e.data.clone();
        crate::privacy::redact_personal(e.category(), &e.event_type, &mut data);
        Self::with_data(e, redact(data))
    }
}

impl EventEnvelope {
    /// An event as a superadmin reads it from the log after opening its personal fields
    /// (`"[erased]"` once erased): secrets redacted, personal values shown. Never for the bus.
    pub fn opened(e: &StoredEvent) -> Self {
        Self::with_data(e, redact(e.data.clone()))
    }

    fn with_data(e: &StoredEvent, data: Value) -> Self {
        Self {
            event_id: e.event_id,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            stream_id: e.stream_id.clone(),
            category: e.category().to_owned(),
            stream_version: e.stream_version,
            global_position: e.global_position,
            recorded_at: e.recorded_at,
            data,
            metadata: e.metadata.clone(),
            payload_omitted: None,
        }
    }
}
