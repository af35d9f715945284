//! Withdrawal of a root user (seed 001 `DELETE root-user`) removes its patients and unpairs
//! their devices in the same transaction as the withdrawal itself.

use fleetstream::testing::{self, TestClient};
use fleetstream_events::Role;
use serde_json::json;

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn withdrawing_a_root_user_removes_its_patients_and_unpairs_their_devices(
    pool: sqlx::PgPool,
) {
    let state = testing::state(pool.clone());
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let parent = testing::account(&state, "parent@example.com", Role::User).await;
    let c = TestClient::new(state);

    let device = c
        .post(
            "/api/v1/devices",
            Some(&admin.token),
            json!({"device_uid": "uid-w", "name": "Withnox", "device_type": "therapy",
                   "serial_code": "SL20401999", "mac_id": "AA:BB:CC:DD:41:AD"}),
        )
        .await;
    assert_eq!(device.status, 201, "{}", device.text);
    let device_id = device.body["id"].as_i64().unwrap();
    let patient = c
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&parent.token),
            json!({"first_name": "kid", "last_name": "", "birthdate": "20150101", "gender": "F",
                   "serial_code": "SL20401999", "mac_id": "41AD"}),
        )
        .await;
    assert_eq!(patient.status, 200, "{}", patient.text);

    let gone = c
        .request(
            "DELETE",
            "/api/v1/lux/user/root-user",
            Some(&parent.token),
            json!(null),
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);

    let live_patients: i64 =
        sqlx::query_scalar("SELECT count(*) FROM patients WHERE root_user_id = $1")
            .bind(parent.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(live_patients, 0);
    let paired: Option<i64> = sqlx::query_scalar("SELECT real_user_id FROM devices WHERE id = $1")
        .bind(device_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(paired, None, "the device is free for another family");

    // The withdrawn account's token no longer opens any door.
    let me = c.get("/api/v1/lux/user/me", Some(&parent.token)).await;
    assert_eq!(me.status, 401);
}
