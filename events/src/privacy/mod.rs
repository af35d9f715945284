//! Crypto-shredding (ADR 0009): personal fields of events are stored sealed under their data
//! subject's own key, kept outside the log in `subject_keys` and wrapped by the master key.
//! Destroying a subject's key erases its personal data from the log for good while the log
//! stays append-only: from then on those fields read as [`ERASED`].
//!
//! A sealed field is `{"$sealed": {"k": "<key id>", "c": "<base64 nonce‖ciphertext‖tag>"}}`
//! in place of its value; the value sealed is its JSON. Older events still holding plaintext
//! are read as they are (the upcast of schema-1 payloads) until `fleetstream privacy migrate`
//! rewrites them once.

mod fields;
#[cfg(feature = "store")]
mod keyring;
#[cfg(feature = "store")]
mod store;

pub use fields::{
    blind_indexes, is_personal_category, normalized_email, normalized_phone, personal_paths,
    PERSONAL_CATEGORIES,
};
#[cfg(feature = "store")]
pub use keyring::{DataKey, Keyring};
#[cfg(feature = "store")]
pub use store::{
    email_key, holds_personal_data, load_rows_keyed, open_events, open_values, phone_subject, seal,
    shred, subject_key_exists, KeyCache, PrivacyError, SealedPlaintext,
};

use serde_json::Value;

/// What a personal field reads as once its subject's key is destroyed.
pub const ERASED: &str = "[erased]";

/// What a personal field reads as outside the log (NATS envelopes, logs): never its value,
/// sealed or clear.
pub const PERSONAL: &str = "[personal]";

/// The object key marking a sealed value.
pub const SEALED_TAG: &str = "$sealed";

/// Whether `value` is a sealed field.
pub fn is_sealed(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| o.contains_key(SEALED_TAG))
}

/// `Some(value)` unless it is the erased marker: read models store erased fields as NULL.
pub fn unless_erased(value: Option<&str>) -> Option<&str> {
    value.filter(|v| *v != ERASED)
}

/// The payload with every personal field replaced by [`PERSONAL`] (null stays null).
pub fn redact_personal(category: &str, event_type: &str, data: &mut Value) {
    for path in personal_paths(category, event_type) {
        if let Some(value) = fields::at_path_mut(data, path) {
            if !value.is_null() {
                *value = Value::String(PERSONAL.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redaction_leaves_nulls_and_clear_fields() {
        let mut data = json!({"account_id": 7, "profile": {"email": "kim@example.com",
            "phone": null, "device_id": "dev-1"}, "password_hash": "$argon2id$..."});
        redact_personal("account", "AccountRegistered", &mut data);
        insta::assert_json_snapshot!(data, @r###"
        {
          "account_id": 7,
          "password_hash": "[personal]",
          "profile": {
            "device_id": "dev-1",
            "email": "[personal]",
            "phone": null
          }
        }
        "###);
    }
}
