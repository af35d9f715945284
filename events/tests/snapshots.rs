//! The wire shapes outside subscribers depend on: the NATS envelope and each event's payload.
//! A change to any of them shows up here as a snapshot diff.

use chrono::{DateTime, TimeZone, Utc};
use fleetstream_events::{
    AccountEvent, AccountProfile, DomainEvent, EventEnvelope, EventMetadata, Role, StoredEvent,
};
use uuid::Uuid;

fn fixed_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 17, 9, 30, 0).unwrap()
}

fn registered() -> AccountEvent {
    AccountEvent::AccountRegistered {
        account_id: 42,
        role: Role::Manager,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        profile: AccountProfile {
            email: "ada@example.com".into(),
            username: Some("ada".into()),
            full_name: Some("Ada Lovelace".into()),
            phone: Some("+44 20 7946 0000".into()),
            organization: Some("Analytical Engines".into()),
            birthdate: Some("18151210".into()),
            gender: Some("F".into()),
            register_type: Some("E".into()),
            is_push_agree: true,
            ..Default::default()
        },
        registered_at: fixed_time(),
    }
}

#[test]
fn account_registered_event() {
    let event = registered();
    assert_eq!(event.event_type(), "AccountRegistered");
    assert_eq!(AccountEvent::stream_id(42), "account-42");
    insta::assert_json_snapshot!("account_registered", event);
    // What the log stores in `data`, and that it decodes back to the same event.
    let data = event.to_data();
    insta::assert_json_snapshot!("account_registered_data", data);
    let decoded = AccountEvent::decode("AccountRegistered", 1, &data).unwrap();
    assert_eq!(decoded, event);
}

#[test]
fn event_envelope() {
    let metadata = EventMetadata {
        actor: Some(7),
        correlation_id: Some("01900000-0000-7000-8000-000000000001".into()),
        causation_id: None,
        request_id: Some("req-1".into()),
        door: None,
    };
    let stored = StoredEvent {
        global_position: 1001,
        transaction_id: 777,
        stream_id: "account-42".into(),
        stream_version: 1,
        event_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_00aa),
        event_type: "AccountRegistered".into(),
        schema_version: 1,
        data: registered().to_data(),
        metadata: serde_json::to_value(&metadata).unwrap(),
        recorded_at: fixed_time(),
    };
    let envelope = EventEnvelope::from(&stored);
    assert_eq!(envelope.category, "account");
    insta::assert_json_snapshot!("event_envelope", envelope);
    let back: EventEnvelope =
        serde_json::from_value(serde_json::to_value(&envelope).unwrap()).unwrap();
    assert_eq!(back, envelope);
}

#[test]
fn unknown_event_types_fail_to_decode_with_their_name() {
    let err = AccountEvent::decode("AccountVanished", 1, &serde_json::json!({})).unwrap_err();
    assert_eq!(err.event_type, "AccountVanished");
}
