//! Which payload fields are personal data, and whose: the field-by-field decision of
//! ADR 0009, in one table. Everything not listed stays clear (ids, roles, timestamps, device
//! ids, treatment numbers, telemetry and sync samples).

use serde_json::Value;

/// Personal fields of one event type, as dotted paths into its payload.
pub fn personal_paths(category: &str, event_type: &str) -> &'static [&'static str] {
    match (category, event_type) {
        ("account", "AccountRegistered") => &[
            "password_hash",
            "profile.email",
            "profile.username",
            "profile.full_name",
            "profile.phone",
            "profile.organization",
            "profile.first_name",
            "profile.last_name",
            "profile.birthdate",
            "profile.gender",
            "profile.national_code",
        ],
        ("account", "ProfileChanged") => &[
            "changes.email",
            "changes.username",
            "changes.full_name",
            "changes.organization",
            "changes.avatar_url",
            "changes.first_name",
            "changes.last_name",
            "changes.birthdate",
            "changes.gender",
            "changes.phone",
        ],
        ("account", "PasswordChanged") => &["password_hash"],
        ("account", "PushTokenSet") => &["push_token"],
        ("account", "PhoneChanged") => &["phone"],
        ("patient", "PatientCreated") => &[
            "profile.first_name",
            "profile.last_name",
            "profile.birthdate",
            "profile.gender",
        ],
        ("patient", "PatientUpdated") => &[
            "changes.first_name",
            "changes.last_name",
            "changes.birthdate",
            "changes.gender",
        ],
        ("message", "SmsQueued") => &["phone"],
        _ => &[],
    }
}

/// Keyed hashes written beside a personal field before it is sealed, as (field, hash field):
/// they outlive the field's erasure, so a withdrawn e-mail stays known as taken (and as the
/// address of a deleted account) without being kept.
pub fn blind_indexes(category: &str, event_type: &str) -> &'static [(&'static str, &'static str)] {
    match (category, event_type) {
        ("account", "AccountRegistered") => &[("profile.email", "profile.email_key")],
        ("account", "ProfileChanged") => &[("changes.email", "changes.email_key")],
        _ => &[],
    }
}

/// An e-mail address as its blind index compares it.
pub fn normalized_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Whether any event of `category` can carry personal data.
pub fn is_personal_category(category: &str) -> bool {
    PERSONAL_CATEGORIES.contains(&category)
}

/// The categories [`personal_paths`] names.
pub const PERSONAL_CATEGORIES: &[&str] = &["account", "patient", "message"];

/// Whose data an event of a personal category holds: the account or patient of the stream,
/// or for an SMS the phone number itself (by its keyed hash, see [`phone_subject`]).
pub(crate) enum Subject<'a> {
    Stream(&'a str),
    Phone(&'a str),
}

pub(crate) fn subject_of<'a>(category: &str, stream_id: &'a str, data: &'a Value) -> Subject<'a> {
    match category {
        "message" => match data.get("phone").and_then(Value::as_str) {
            Some(phone) => Subject::Phone(phone),
            None => Subject::Stream(stream_id),
        },
        _ => Subject::Stream(stream_id),
    }
}

/// The value at a dotted path, if the payload has one.
pub(crate) fn at_path<'v>(data: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(data, |value, key| value.get(key))
}

/// [`at_path`], to change the value.
pub(crate) fn at_path_mut<'v>(data: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    let mut value = data;
    for key in path.split('.') {
        value = value.as_object_mut()?.get_mut(key)?;
    }
    Some(value)
}

/// The phone number as it is compared: digits and a leading `+` only.
pub fn normalized_phone(phone: &str) -> String {
    phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_reach_nested_fields_and_stop_at_missing_ones() {
        let mut data = json!({"profile": {"email": "a@b.c"}, "account_id": 1});
        assert_eq!(
            at_path_mut(&mut data, "profile.email").cloned(),
            Some(json!("a@b.c"))
        );
        assert!(at_path_mut(&mut data, "profile.phone").is_none());
        assert!(at_path_mut(&mut data, "account_id.x").is_none());
    }

    #[test]
    fn only_personal_categories_have_personal_fields() {
        for category in ["device", "treatment", "telemetry", "recording", "synclog"] {
            assert!(!is_personal_category(category));
            assert!(personal_paths(category, "DeviceRegistered").is_empty());
        }
        assert!(personal_paths("account", "AccountWithdrawn").is_empty());
        assert_eq!(normalized_phone("+82 10-1234-5678"), "+821012345678");
    }
}
