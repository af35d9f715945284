use fleetstream::testing::{self, TestClient};
use fleetstream_events::Role;
use serde_json::{json, Value};

async fn setup(
    pool: sqlx::PgPool,
) -> (
    TestClient,
    String,
    String,
    String,
    fleetstream::state::AppState,
) {
    let state = testing::state(pool);
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let a = testing::account(&state, "a@example.com", Role::User).await;
    let b = testing::account(&state, "b@example.com", Role::User).await;
    (
        TestClient::new(state.clone()),
        admin.token,
        a.token,
        b.token,
        state,
    )
}

async fn device(c: &TestClient, admin: &str, uid: &str, serial: &str, mac: &str) -> i64 {
    let r = c
        .post("/api/v1/devices", Some(admin), json!({"device_uid": uid, "name": "Withnox", "device_type": "therapy", "serial_code": serial, "mac_id": mac}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

fn real_user(serial: &str, mac: &str) -> Value {
    json!({"first_name": "test", "last_name": "", "birthdate": "19970101", "gender": "F", "serial_code": serial, "mac_id": mac})
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn create_real_user_pairs_or_rolls_back(pool: sqlx::PgPool) {
    let (c, admin, a, b, _) = setup(pool.clone()).await;
    let dev = device(&c, &admin, "uid-1", "SL20401000", "AA:BB:CC:DD:41:AD").await;
    let dup = c
        .post(
            "/api/v1/devices",
            Some(&admin),
            json!({"device_uid": "uid-1", "name": "Other"}),
        )
        .await;
    assert_eq!(dup.status, 409);

    let bad = c
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&a),
            real_user("SL-1", "41AD"),
        )
        .await;
    assert_eq!(
        (bad.status.as_u16(), bad.body.clone()),
        (400, json!({"detail": "Serial code is not valid"}))
    );
    let missing = c
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&a),
            real_user("SL20401000", "41AE"),
        )
        .await;
    assert_eq!(
        (missing.status.as_u16(), missing.body.clone()),
        (404, json!({"detail": "Not Found Device"}))
    );

    let ok = c
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&a),
            real_user("sl20401000", "41ad"),
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["device_id"], dev);
    assert_eq!(ok.body["last_log_file_id"], 0);
    let pid = ok.body["real_user_id"].as_i64().unwrap();

    // Another account's patient holds it: 409 and no patient is left behind.
    let taken = c
        .post(
            "/api/v2/addnox/user/create-real-user",
            Some(&b),
            real_user("SL20401000", "41AD"),
        )
        .await;
    assert_eq!(
        (taken.status.as_u16(), taken.body.clone()),
        (409, json!({"detail": "Already Connected Device"}))
    );
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM patients")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(count, 1);

    let all = c
        .get("/api/v1/addnox/device/get-all-device", Some(&a))
        .await;
    assert_eq!(all.body.as_array().unwrap().len(), 1);
    assert_eq!(all.body[0]["real_user_id"], pid);
    assert_eq!(all.body[0]["id"], dev);
    let none = c
        .get("/api/v1/addnox/device/get-all-device", Some(&b))
        .await;
    assert_eq!(none.body, json!([]));

    // Second account with the first account's ids fails and changes nothing.
    let r = c
        .get(&format!("/api/v1/lux/user/real-user/{pid}"), Some(&b))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (401, json!({"detail": "Not authorized user"}))
    );
    let r = c
        .request(
            "PATCH",
            &format!("/api/v1/addnox/device/un-connect?unique_id=uid-1&real_user_id={pid}"),
            Some(&b),
            Value::Null,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (401, json!({"detail": "Not authorized user"}))
    );
    let r = c
        .request(
            "PATCH",
            "/api/v1/addnox/device/update-alias",
            Some(&b),
            json!({"device_id": dev, "real_user_id": pid, "device_alias": "x"}),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = c
        .get(
            &format!("/api/v1/addnox/device/child-device?real_user_id={pid}"),
            Some(&b),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = c
        .request(
            "DELETE",
            &format!("/api/v1/lux/user/delete-real-user?real_user_id={pid}&unique_id=uid-1"),
            Some(&b),
            Value::Null,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (401, json!({"detail": "Not authorized user"}))
    );
    let r = c.get(&format!("/api/v1/devices/{dev}"), Some(&b)).await;
    assert_eq!(r.status, 404);
    let r = c
        .get(
            "/api/v1/addnox/device/check-device?unique_id=uid-1",
            Some(&b),
        )
        .await;
    assert_eq!(r.status, 409);
    let r = c
        .get(
            "/api/v1/addnox/device/check-device?unique_id=uid-1",
            Some(&a),
        )
        .await;
    assert_eq!(r.body["detail"], "Connection Confirmed");
    let r = c.get(&format!("/api/v1/devices/{dev}"), Some(&a)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "inactive");

    let r = c
        .request(
            "PATCH",
            "/api/v1/addnox/device/update-alias",
            Some(&a),
            json!({"device_id": dev, "real_user_id": pid, "device_alias": "Mom"}),
        )
        .await;
    assert_eq!(r.body["device_alias"], "Mom");
    let r = c
        .request(
            "PATCH",
            &format!("/api/v1/lux/device/un-connect?unique_id=uid-1&real_user_id={pid}"),
            Some(&a),
            Value::Null,
        )
        .await;
    assert_eq!(
        r.body,
        json!({"statusCode": 200, "message": "device unconnected"})
    );
    let r = c
        .request(
            "PATCH",
            &format!("/api/v1/addnox/device/un-connect?unique_id=uid-1&real_user_id={pid}"),
            Some(&a),
            Value::Null,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (409, json!({"detail": "Not Connected Device"}))
    );
    let r = c
        .get(
            "/api/v1/addnox/device/check-device?unique_id=uid-1",
            Some(&b),
        )
        .await;
    assert_eq!(r.body["detail"], "Device Registerable");
    let r = c.post(&format!("/api/v1/addnox/device/set-my-device?serial_code=SL20401000&mac_id=41AD&real_user_id={pid}"), Some(&a), Value::Null).await;
    assert_eq!(
        r.body,
        json!({"statuscode": 200, "message": "device connected"})
    );
    let r = c.post(&format!("/api/v1/addnox/device/set-my-device?serial_code=SL20401000&mac_id=41AD&real_user_id={pid}"), Some(&a), Value::Null).await;
    assert_eq!(r.status, 200);

    let r = c
        .request(
            "DELETE",
            "/api/v1/lux/user/delete-real-user",
            Some(&a),
            json!({"real_user_id": pid, "unique_id": "uid-1"}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"statusCode": 200, "message": "Real user deleted successfully"})
    );
    let r = c
        .get(&format!("/api/v1/lux/user/real-user/{pid}"), Some(&a))
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (404, json!({"detail": "Real user is not found"}))
    );
    let paired: Option<i64> = sqlx::query_scalar("SELECT real_user_id FROM devices WHERE id = $1")
        .bind(dev)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(paired, None);
}

fn log(
    pid: i64,
    dev: i64,
    date: &str,
    flag: Value,
    intensity: i64,
    time: i64,
    file: Option<i64>,
) -> Value {
    let mut v = json!({"real_user_id": pid, "device_id": dev, "unique_id": "uid-1",
        "detail_data": {"treatment_date": date, "finish_flag": flag, "last_intensity": intensity, "treatment_time": time}});
    if let Some(f) = file {
        v["log_file_id"] = json!(f);
    }
    v
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn v2_lifecycle_dedup_and_chart(pool: sqlx::PgPool) {
    let (c, admin, a, b, _) = setup(pool.clone()).await;
    let dev = device(&c, &admin, "uid-1", "SL20401000", "AA:BB:CC:DD:41:AD").await;
    let pid = c
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&a),
            real_user("SL20401000", "41AD"),
        )
        .await
        .body["real_user_id"]
        .as_i64()
        .unwrap();
    let url = "/api/v2/addnox/device/devlog";

    let r = c.post(url, Some(&b), json!({"log_arrays": [log(pid, dev, "2025-02-21T15:48:49", Value::Null, 2, 100, None)]})).await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (401, json!({"detail": "Not authorized user"}))
    );
    let r = c.post(url, Some(&a), json!({"log_arrays": [log(999, dev, "2025-02-21T15:48:49", Value::Null, 2, 100, None)]})).await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (404, json!({"detail": "Not Found User"}))
    );
    let r = c.post(url, Some(&a), json!({"log_arrays": [log(pid, 999, "2025-02-21T15:48:49", Value::Null, 2, 100, None)]})).await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (404, json!({"detail": "Not Found Device"}))
    );

    let r = c.post(url, Some(&a), json!({"log_arrays": [log(pid, dev, "2025-02-21T15:48:49", Value::Null, 2, 100, None)]})).await;
    assert_eq!(
        r.body,
        json!({"statusCode": 200, "message": "Temp devlog saved successfully"})
    );
    let r = c.post(url, Some(&a), json!({"log_arrays": [log(pid, dev, "2025-02-21T15:58:49", Value::Null, 3, 200, None)]})).await;
    assert_eq!(r.body["message"], "Temp devlog saved successfully");
    let (date, time): (chrono::NaiveDateTime, i64) =
        sqlx::query_as("SELECT treatment_date, treatment_time FROM treatment_logs WHERE is_temp")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(date.to_string(), "2025-02-21 15:48:19");
    assert_eq!(time, 200);

    let r = c
        .post(
            url,
            Some(&a),
            json!({"log_arrays": [
                log(pid, dev, "2025-02-20T10:00:00", json!(2), 4, 300, Some(1)),
                log(pid, dev, "2025-02-21T10:00:00", json!(1), 6, 400, Some(2)),
            ]}),
        )
        .await;
    assert_eq!(
        r.body,
        json!({"statusCode": 200, "message": "Devlog saved successfully"})
    );
    // A repeated log_file_id is not duplicated (v1 body, string finish_flag).
    let mut v1 = log(pid, dev, "2025-02-21T10:00:00", json!("1"), 6, 400, Some(2));
    v1["detail_data"]["movement"] = json!(5);
    v1["detail_data"]["log_data"] = json!("");
    let r = c
        .post("/api/v1/addnox/device/devlog", Some(&a), json!([v1]))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM treatment_logs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 2);
    let all = c
        .get("/api/v1/addnox/device/get-all-device", Some(&a))
        .await;
    assert_eq!(all.body[0]["last_log_file_id"], 2);

    let r = c.post("/api/v1/addnox/device/movement", Some(&a), json!({"real_user_id": pid, "device_id": dev, "movement_data": [{"val": 10, "timestamp": 1740132000}, {"val": 5, "timestamp": 1740132001}]})).await;
    assert_eq!(
        r.body,
        json!({"statusCode": 200, "message": "Movement log saved successfully"})
    );

    let r = c.get(&format!("/api/v1/addnox/chart/recent?real_user_id={pid}&select_mode=0&current_date=2025-02-21"), Some(&a)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({
            "treatment_time_data": [{"treatment_date": "2025-02-20", "treatment_time": 300}, {"treatment_date": "2025-02-21", "treatment_time": 400}],
            "treatment_intensity_data": [{"treatment_date": "2025-02-20", "last_intensity": 4.0}, {"treatment_date": "2025-02-21", "last_intensity": 6.0}],
            "movement_data": [{"treatment_date": "2025-02-20", "movement": 0}, {"treatment_date": "2025-02-21", "movement": 15}],
            "avg_treatment_time": 350.0, "avg_treatment_intensity": 5.0, "avg_movement": 7.5,
        })
    );
    let r = c
        .get(
            &format!(
                "/api/v1/lux/chart/recent?real_user_id={pid}&select_mode=2&current_date=2025-02-21"
            ),
            Some(&a),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body.clone()),
        (
            400,
            json!({"detail": "Invalid mode. Use 0 for recent 7 days or 1 for recent 30 days"})
        )
    );

    // Every read model rebuilds from the log to the same rows.
    for (name, sql) in [
        (
            "devices",
            "SELECT to_jsonb(d) - 'updated_at' FROM devices d ORDER BY id",
        ),
        ("patients", "SELECT to_jsonb(p) FROM patients p ORDER BY id"),
        (
            "treatment_logs",
            "SELECT to_jsonb(t) FROM treatment_logs t ORDER BY device_id, record_no",
        ),
    ] {
        let before: Vec<Value> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        let projection = fleetstream_projections::read_models::all()
            .into_iter()
            .find(|p| p.name() == name)
            .unwrap();
        fleetstream_projections::rebuild(
            &pool,
            projection.as_ref(),
            Some(&testing::keyring()),
            100,
            |_| {},
        )
        .await
        .unwrap();
        let after: Vec<Value> = sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap();
        assert_eq!(before, after, "{name}");
    }
}
