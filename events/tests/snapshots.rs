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

#[test]
fn telemetry_alert_and_report_payloads() {
    use fleetstream_events::{
        AlertEvent, AnalysisType, Connectivity, Notification, ReportEvent, Severity,
        TelemetryEvent, TelemetrySample,
    };
    use rust_decimal::Decimal;
    let recorded = TelemetryEvent::TelemetryRecorded {
        device_id: 5,
        samples: vec![TelemetrySample {
            id: 100,
            metric: "temperature".into(),
            value: Decimal::new(255, 1),
            unit: Some("°C".into()),
            timestamp: fixed_time(),
        }],
        recorded_at: fixed_time(),
    };
    let status = TelemetryEvent::DeviceStatusReported {
        device_id: 5,
        status: Connectivity::Online,
        reported_at: fixed_time(),
    };
    assert_eq!(TelemetryEvent::stream_id(5), "telemetry-5");
    let raised = AlertEvent::AlertRaised {
        alert_id: 1,
        rule_id: 3,
        device_id: 5,
        severity: Severity::Critical,
        metric: "temperature".into(),
        value: Decimal::new(4525, 2),
        message: "temperature 45.25 > 40 (hot)".into(),
        triggered_by: Uuid::from_u128(0xaa),
        owner_id: Some(2),
        notification: Notification {
            title: "Alert: hot".into(),
            message: "temperature 45.25 > 40 (hot)".into(),
            kind: "critical".into(),
        },
        raised_at: fixed_time(),
    };
    assert_eq!(
        AlertEvent::stream_id(fleetstream_events::alert_stream_key(3, 5)),
        "alert-3_5"
    );
    let report = ReportEvent::AnalysisRecorded {
        result_id: 9,
        analysis_type: AnalysisType::Trend,
        device_id: 5,
        device_uid: "sensor-temp-001".into(),
        params: serde_json::json!({"metric": "temperature"}),
        result: serde_json::json!({"trend": "stable"}),
        created_at: fixed_time(),
    };
    insta::assert_json_snapshot!(
        "telemetry_alert_report",
        serde_json::json!({
            "recorded": recorded.to_data(),
            "status": status.to_data(),
            "raised": raised.to_data(),
            "report": report.to_data(),
        })
    );
    // Decimals travel as strings and come back exact.
    let back = TelemetryEvent::decode("TelemetryRecorded", 1, &recorded.to_data()).unwrap();
    assert_eq!(back, recorded);
    let back = AlertEvent::decode("AlertRaised", 1, &raised.to_data()).unwrap();
    assert_eq!(back, raised);
}
