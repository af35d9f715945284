//! fleetstream's events: one enum per aggregate, the envelope every consumer sees (NATS
//! subscribers included), schema versions and upcasting. With the `store` feature this crate
//! is also the Postgres event log (`store`).

mod domain;
mod envelope;
#[cfg(feature = "store")]
pub mod group;
#[cfg(feature = "store")]
pub mod group_load;
#[cfg(feature = "store")]
pub mod notify;
pub mod privacy;
mod size;
#[cfg(feature = "store")]
pub mod store;

pub use domain::*;
pub use envelope::{EventEnvelope, EventMetadata, OmittedPayload, StoredEvent, SECRET_FIELDS};
#[doc(hidden)]
pub use serde_json::Value as __JsonValue;
pub use size::{
    chunk_by_encoded_size, encoded_len, ENVELOPE_OVERHEAD_BYTES, MAX_DATA_BYTES, MAX_EVENT_BYTES,
};

use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

/// An event of one aggregate. The enum is adjacently tagged (`{"type": .., "data": ..}`) so the
/// variant name is the event type and the payload is what the log stores in `data`.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// Stream category: streams are named `<category>-<id>`.
    const CATEGORY: &'static str;

    /// The Rust variant name (`DeviceRegistered`); also the NATS subject's last token.
    fn event_type(&self) -> &'static str;

    /// Schema version of the payload this code writes.
    fn event_version(&self) -> i32 {
        1
    }

    /// Rewrites an older payload into the current shape before decoding; `None` when the
    /// payload is current (the common case, which then decodes without a copy).
    fn upcast(_event_type: &str, _schema_version: i32, _data: &Value) -> Option<Value> {
        None
    }

    fn to_data(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut map)) => map.remove("data").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Decodes a stored payload, borrowing it: the adjacently tagged `{"type", "data"}` map
    /// the enum expects is presented to serde without building it.
    fn decode(event_type: &str, schema_version: i32, data: &Value) -> Result<Self, DecodeError> {
        use serde::de::value::MapDeserializer;
        let upcast = Self::upcast(event_type, schema_version, data);
        let data = upcast.as_ref().unwrap_or(data);
        let tag = Value::String(event_type.to_owned());
        let tagged = MapDeserializer::new([("type", &tag), ("data", data)].into_iter());
        Self::deserialize(tagged).map_err(|source: serde_json::Error| DecodeError {
            event_type: event_type.to_owned(),
            message: source.to_string(),
        })
    }

    fn stream_id(id: impl std::fmt::Display) -> String {
        format!("{}-{}", Self::CATEGORY, id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub event_type: String,
    pub message: String,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot decode {}: {}", self.event_type, self.message)
    }
}

impl std::error::Error for DecodeError {}

/// The category of a stream id (`device-12` → `device`).
pub fn category_of(stream_id: &str) -> &str {
    stream_id.split('-').next().unwrap_or(stream_id)
}

/// Implements [`DomainEvent`] for an adjacently tagged enum whose variants are listed.
/// Variants whose payload moved past schema 1 are listed under `versions`, with the function
/// that upcasts older payloads (see [`DomainEvent::upcast`]).
#[macro_export]
macro_rules! domain_event {
    (
        $enum:ident, $category:literal, [$($variant:ident),+ $(,)?]
        $(, versions { $($versioned:ident => $version:literal),+ $(,)? }, upcast = $upcast:path)?
        $(,)?
    ) => {
        impl $crate::DomainEvent for $enum {
            const CATEGORY: &'static str = $category;
            fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => stringify!($variant),)+
                }
            }
            $(
                fn event_version(&self) -> i32 {
                    match self {
                        $(Self::$versioned { .. } => $version,)+
                        #[allow(unreachable_patterns)]
                        _ => 1,
                    }
                }
                fn upcast(
                    event_type: &str,
                    schema_version: i32,
                    data: &$crate::__JsonValue,
                ) -> Option<$crate::__JsonValue> {
                    $upcast(event_type, schema_version, data)
                }
            )?
        }
    };
}
