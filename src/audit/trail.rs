//! The audit trail of one stream, as a pure function of its opened events (issue 15): who did
//! what, when, under which request, and which fields went from what to what.
//!
//! A change names a field by its own key: the wrappers the domain nests state in (`profile`,
//! `changes`, `spec`, `settings`) are looked through, so `profile.email` of a registration and
//! `changes.email` of a later edit are both `email`, and `is_push_agree` of a registration and
//! of a policy change are one field. Other nested objects keep their dotted path; arrays are
//! values. A change is listed when the event sets a field to a value other than the last one
//! the stream gave it (`old` is null the first time, and a field first set to null is no
//! change). Left out: the stream's own id field (`account_id` of `account-7`) and the event's
//! own timestamp (`changed_at`, `registered_at`: the entry's `recorded_at` says when), and the
//! e-mail blind index written beside a sealed address (ADR 0009: derived, never set by anyone).
//!
//! Secret fields ([`SECRET_FIELDS`]) are compared on their value but shown as `[redacted]`.
//! Personal fields show what the log opens them to: their value while the subject's key exists,
//! [`ERASED`] after; an erased personal field the event sets is always listed, since whether it
//! differed from the last value can no longer be told.

use chrono::{DateTime, Utc};
use fleetstream_events::privacy::{blind_indexes, is_sealed, personal_paths, ERASED, PERSONAL};
use fleetstream_events::{category_of, EventMetadata, StoredEvent, SECRET_FIELDS};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use utoipa::ToSchema;

/// What a secret field shows instead of its value.
pub const REDACTED: &str = "[redacted]";

/// Top-level objects holding an aggregate's state, looked through when naming a field.
const WRAPPERS: &[&str] = &["profile", "changes", "spec", "settings"];

/// One event of a stream, as the audit trail shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = AuditEntry)]
pub struct Entry {
    /// The event's global position in the log.
    pub position: i64,
    /// The event's version in its stream (1 = the first).
    pub version: i64,
    /// When the event was committed (RFC 3339, UTC, microseconds).
    pub recorded_at: DateTime<Utc>,
    /// The acting account; null for self-registration and system work (see `door`).
    pub actor: Option<i64>,
    pub request_id: Option<String>,
    pub correlation_id: Option<String>,
    /// The event or message that caused this one, for work no request did.
    pub causation_id: Option<String>,
    /// Where work without an actor came from (a door or a tool).
    pub door: Option<String>,
    pub event_type: String,
    /// The fields this event set to a new value, by field name.
    pub changes: Vec<Change>,
}

/// One field an event changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(as = AuditChange)]
pub struct Change {
    pub field: String,
    /// The field's last value before this event; null the first time.
    pub old: Value,
    /// The value this event set.
    pub new: Value,
}

/// Builds the entries of one stream event by event, remembering each field's last value.
pub struct Trail {
    stream_id: String,
    last: HashMap<String, Value>,
}

impl Trail {
    pub fn new(stream_id: &str) -> Self {
        Self {
            stream_id: stream_id.to_owned(),
            last: HashMap::new(),
        }
    }

    /// The entry of the stream's next event (events are given oldest first).
    pub fn entry(&mut self, event: &StoredEvent) -> Entry {
        let metadata = EventMetadata::deserialize(&event.metadata).unwrap_or_default();
        let mut changes = Vec::new();
        for leaf in leaves(&self.stream_id, &event.event_type, &event.data) {
            let new = if is_sealed(leaf.value) {
                // Not opened (never the case for events read through `open_events`): the
                // ciphertext is no one's business either.
                Value::String(PERSONAL.to_owned())
            } else {
                leaf.value.clone()
            };
            let old = self.last.get(&leaf.field).cloned().unwrap_or(Value::Null);
            let erased = leaf.personal && new.as_str() == Some(ERASED);
            if old != new || erased {
                changes.push(Change {
                    old: shown(leaf.secret, old),
                    new: shown(leaf.secret, new.clone()),
                    field: leaf.field.clone(),
                });
            }
            self.last.insert(leaf.field, new);
        }
        changes.sort_by(|a, b| a.field.cmp(&b.field));
        Entry {
            position: event.global_position,
            version: event.stream_version,
            recorded_at: event.recorded_at,
            actor: metadata.actor,
            request_id: metadata.request_id,
            correlation_id: metadata.correlation_id,
            causation_id: metadata.causation_id,
            door: metadata.door,
            event_type: event.event_type.clone(),
            changes,
        }
    }
}

/// The entries of a stream's opened events, oldest first.
pub fn entries(events: &[StoredEvent]) -> Vec<Entry> {
    let Some(first) = events.first() else {
        return Vec::new();
    };
    let mut trail = Trail::new(&first.stream_id);
    events.iter().map(|e| trail.entry(e)).collect()
}

fn shown(secret: bool, value: Value) -> Value {
    if secret && !value.is_null() {
        Value::String(REDACTED.to_owned())
    } else {
        value
    }
}

/// A leaf field of a payload.
struct Leaf<'v> {
    /// Its name in the trail (wrappers looked through).
    field: String,
    value: &'v Value,
    /// Listed in [`SECRET_FIELDS`].
    secret: bool,
    /// A personal field of this event type (ADR 0009).
    personal: bool,
}

fn leaves<'v>(stream_id: &str, event_type: &str, data: &'v Value) -> Vec<Leaf<'v>> {
    let Value::Object(top) = data else {
        return Vec::new();
    };
    let category = category_of(stream_id);
    let personal = personal_paths(category, event_type);
    let derived: Vec<&str> = blind_indexes(category, event_type)
        .iter()
        .map(|(_, key)| *key)
        .collect();
    let id_field = id_field(stream_id, top);
    let mut out = Vec::new();
    let mut walk = Walk {
        personal,
        derived: &derived,
        out: &mut out,
    };
    for (key, value) in top {
        if Some(key.as_str()) == id_field || is_timestamp(key, value) {
            continue;
        }
        let name = if WRAPPERS.contains(&key.as_str()) && value.is_object() && !is_sealed(value) {
            String::new()
        } else {
            key.clone()
        };
        walk.visit(key, name, value);
    }
    out
}

struct Walk<'a, 'v> {
    personal: &'static [&'static str],
    derived: &'a [&'a str],
    out: &'a mut Vec<Leaf<'v>>,
}

impl<'v> Walk<'_, 'v> {
    /// `path` is the dotted path in the payload, `name` the field's name in the trail (empty
    /// for a wrapper).
    fn visit(&mut self, path: &str, name: String, value: &'v Value) {
        match value {
            Value::Object(map) if !is_sealed(value) => {
                for (key, inner) in map {
                    let inner_name = if name.is_empty() {
                        key.clone()
                    } else {
                        format!("{name}.{key}")
                    };
                    self.visit(&format!("{path}.{key}"), inner_name, inner);
                }
            }
            _ => {
                if self.derived.contains(&path) {
                    return;
                }
                let key = path.rsplit('.').next().unwrap_or(path);
                self.out.push(Leaf {
                    field: name,
                    value,
                    secret: SECRET_FIELDS.contains(&key),
                    personal: self.personal.contains(&path),
                });
            }
        }
    }
}

/// The payload field naming the stream's own aggregate: `<category>_id` (`account_id` of
/// `account-7`), else the one top-level `*_id` holding the stream's id (`device_id` of
/// `treatment-12`, `session_id` of `recording-<uuid>`).
fn id_field<'m>(stream_id: &str, top: &'m serde_json::Map<String, Value>) -> Option<&'m str> {
    let category = category_of(stream_id);
    let own = format!("{category}_id");
    if let Some((key, _)) = top.get_key_value(&own) {
        return Some(key.as_str());
    }
    let id = stream_id.strip_prefix(category)?.strip_prefix('-')?;
    let mut matching = top.iter().filter(|(key, value)| {
        key.ends_with("_id")
            && match value {
                Value::Number(n) => n.to_string() == id,
                Value::String(s) => s == id,
                _ => false,
            }
    });
    match (matching.next(), matching.next()) {
        (Some((key, _)), None) => Some(key.as_str()),
        _ => None,
    }
}

/// The event's own timestamp: a top-level `*_at` holding an RFC 3339 time.
fn is_timestamp(key: &str, value: &Value) -> bool {
    key.ends_with("_at")
        && value
            .as_str()
            .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;
    use uuid::Uuid;

    fn event(
        stream: &str,
        version: i64,
        event_type: &str,
        data: Value,
        meta: Value,
    ) -> StoredEvent {
        StoredEvent {
            global_position: 100 + version,
            transaction_id: 1,
            stream_id: stream.to_owned(),
            stream_version: version,
            event_id: Uuid::from_u128(version as u128),
            event_type: event_type.to_owned(),
            schema_version: 1,
            data,
            metadata: meta,
            recorded_at: Utc
                .with_ymd_and_hms(2026, 1, 1, 9, 0, version as u32)
                .unwrap(),
        }
    }

    /// An account's life: registration, profile edits, a password change, a policy change,
    /// withdrawal.
    fn account_stream(
        email: &str,
        new_email: &str,
        name: &str,
        hashes: [&str; 2],
    ) -> Vec<StoredEvent> {
        vec![
            event(
                "account-7",
                1,
                "AccountRegistered",
                json!({"account_id": 7, "role": "user", "password_hash": hashes[0],
                    "profile": {"email": email, "email_key": "k1", "full_name": null,
                        "phone": null, "is_push_agree": false, "is_marketing_agree": false},
                    "registered_at": "2026-01-01T09:00:01Z"}),
                json!({"actor": null, "request_id": "req-1", "correlation_id": "req-1",
                    "door": "core"}),
            ),
            event(
                "account-7",
                2,
                "ProfileChanged",
                json!({"account_id": 7, "changes": {"email": new_email, "email_key": "k2",
                    "full_name": name}, "changed_at": "2026-01-01T09:00:02Z"}),
                json!({"actor": 7, "request_id": "req-2", "correlation_id": "corr-2"}),
            ),
            event(
                "account-7",
                3,
                "ProfileChanged",
                // The same name again, a new organization.
                json!({"account_id": 7, "changes": {"full_name": name, "organization": "Acme"},
                    "changed_at": "2026-01-01T09:00:03Z"}),
                json!({"actor": 1, "request_id": "req-3", "correlation_id": "req-3"}),
            ),
            event(
                "account-7",
                4,
                "PasswordChanged",
                json!({"account_id": 7, "password_hash": hashes[1],
                    "changed_at": "2026-01-01T09:00:04Z"}),
                json!({"actor": 7, "request_id": "req-4", "correlation_id": "req-4"}),
            ),
            event(
                "account-7",
                5,
                "PolicyChanged",
                json!({"account_id": 7, "is_push_agree": true,
                    "changed_at": "2026-01-01T09:00:05Z"}),
                json!({"actor": 7, "request_id": "req-5", "correlation_id": "req-5"}),
            ),
            event(
                "account-7",
                6,
                "AccountWithdrawn",
                json!({"account_id": 7, "withdrawn_at": "2026-01-01T09:00:06Z"}),
                json!({"actor": 7, "request_id": "req-6", "correlation_id": "req-6",
                    "causation_id": "cause-6"}),
            ),
        ]
    }

    #[test]
    fn an_account_stream_while_its_key_exists() {
        let events = account_stream(
            "kim@example.com",
            "kim@new.example.com",
            "Kim",
            ["$argon2id$one", "$argon2id$two"],
        );
        insta::assert_json_snapshot!(entries(&events));
    }

    #[test]
    fn an_account_stream_after_its_key_was_destroyed() {
        // Password hashes are personal too (ADR 0009): erased, and still shown as secrets.
        let events = account_stream(ERASED, ERASED, ERASED, [ERASED, ERASED]);
        insta::assert_json_snapshot!(entries(&events));
    }

    #[test]
    fn a_patient_stream_names_fields_through_profile_and_changes() {
        let events = vec![
            event(
                "patient-3",
                1,
                "PatientCreated",
                json!({"patient_id": 3, "root_user_id": 3, "profile": {"first_name": "Ana",
                    "last_name": "Lee", "birthdate": "20150101", "gender": "F"},
                    "created_at": "2026-01-01T09:00:01Z"}),
                json!({"actor": 9, "request_id": "r1"}),
            ),
            event(
                "patient-3",
                2,
                "PatientUpdated",
                json!({"patient_id": 3, "changes": {"first_name": "Anna", "gender": "F"},
                    "updated_at": "2026-01-01T09:00:02Z"}),
                json!({"actor": 9, "request_id": "r2"}),
            ),
            event(
                "patient-3",
                3,
                "PatientDeviceAssigned",
                json!({"patient_id": 3, "device_id": 3, "assigned_at": "2026-01-01T09:00:03Z"}),
                json!({"actor": 9, "request_id": "r3"}),
            ),
        ];
        insta::assert_json_snapshot!(entries(&events));
    }

    #[test]
    fn streams_keyed_by_another_id_drop_it_and_keep_nested_paths() {
        let events = [
            event(
                "alertrule-4",
                1,
                "AlertRuleCreated",
                json!({"rule_id": 4, "spec": {"name": "hot", "threshold": "40",
                    "device_group_id": null}, "created_at": "2026-01-01T09:00:01Z"}),
                json!({"actor": 1}),
            ),
            event(
                "alertrule-4",
                2,
                "AlertRuleUpdated",
                json!({"rule_id": 4, "changes": {"threshold": "42", "device_group_id": null},
                    "updated_at": "2026-01-01T09:00:02Z"}),
                json!({"actor": 1}),
            ),
            event(
                "treatment-4",
                1,
                "TempTreatmentStarted",
                json!({"device_id": 4, "record_no": 4, "limits": {"max": 2},
                    "samples": [1, 2]}),
                json!({}),
            ),
        ];
        let (rules, treatment) = events.split_at(2);
        insta::assert_json_snapshot!((entries(rules), entries(treatment)));
    }

    #[test]
    fn an_unopened_sealed_field_shows_no_ciphertext() {
        let events = vec![event(
            "account-7",
            1,
            "PushTokenSet",
            json!({"account_id": 7, "push_token": {"$sealed": {"k": "x", "c": "abc"}},
                "set_at": "2026-01-01T09:00:01Z"}),
            json!({"actor": 7}),
        )];
        let changes = &entries(&events)[0].changes;
        assert_eq!(
            changes,
            &[Change {
                field: "push_token".into(),
                old: Value::Null,
                new: json!(PERSONAL),
            }]
        );
        assert!(entries(&[]).is_empty());
    }
}
