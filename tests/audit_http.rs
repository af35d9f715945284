//! `GET /api/v1/audit/{stream}` (issue 15): a stream's audit trail, who may read it, what
//! withdrawal leaves of it, paging and the time filter.

use fleetstream::testing::{self, TestAccount, TestClient};
use fleetstream_events::Role;
use serde_json::{json, Value};

fn audit_path(stream: &str) -> String {
    format!("/api/v1/audit/{stream}")
}

/// The change of `field` in an entry, as `(old, new)`.
fn change<'e>(entry: &'e Value, field: &str) -> Option<(&'e Value, &'e Value)> {
    entry["changes"]
        .as_array()
        .expect("changes is a list")
        .iter()
        .find(|c| c["field"] == field)
        .map(|c| (&c["old"], &c["new"]))
}

async fn patch_me(c: &TestClient, who: &TestAccount, body: Value) {
    let reply = c
        .request("PATCH", "/api/v1/users/me", Some(&who.token), body)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

/// A device made by `admin`, then a patient of `parent` paired with it: the patient's id.
async fn patient(c: &TestClient, admin: &TestAccount, parent: &TestAccount, n: u32) -> i64 {
    let serial = format!("SL2040{n:04}");
    let mac = format!("AA:BB:CC:DD:{:02}:AD", n % 100);
    let device = c
        .post(
            "/api/v1/devices",
            Some(&admin.token),
            json!({"device_uid": format!("uid-{n}"), "name": "Auditnox", "device_type": "therapy",
                   "serial_code": serial, "mac_id": mac}),
        )
        .await;
    assert_eq!(device.status, 201, "{}", device.text);
    let created = c
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&parent.token),
            json!({"first_name": "Ana", "last_name": "Lee", "birthdate": "20150101", "gender": "F",
                   "serial_code": serial, "mac_id": format!("{:02}AD", n % 100)}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    created.body["real_user_id"]
        .as_i64()
        .expect("a real user id")
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_superadmin_sees_a_profile_change_old_to_new_with_its_personal_values(
    pool: sqlx::PgPool,
) {
    let state = testing::state(pool);
    let root = testing::account(&state, "root@example.com", Role::Superadmin).await;
    let kim = testing::account(&state, "kim@example.com", Role::User).await;
    let c = TestClient::new(state);
    patch_me(
        &c,
        &kim,
        json!({"email": "kim@new.example.com", "full_name": "Kim"}),
    )
    .await;

    let stream = format!("account-{}", kim.id);
    let reply = c.get(&audit_path(&stream), Some(&root.token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["stream"], stream.as_str());
    assert_eq!(reply.body["next_after"], Value::Null);
    let entries = reply.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", reply.text);

    let registered = &entries[0];
    assert_eq!(registered["event_type"], "AccountRegistered");
    assert_eq!(registered["version"], 1);
    assert_eq!(
        change(registered, "email"),
        Some((&Value::Null, &json!("kim@example.com")))
    );
    assert_eq!(
        change(registered, "password_hash"),
        Some((&Value::Null, &json!("[redacted]")))
    );
    assert_eq!(
        change(registered, "account_id"),
        None,
        "the stream's own id"
    );
    assert_eq!(change(registered, "email_key"), None, "the blind index");

    let edited = &entries[1];
    assert_eq!(edited["event_type"], "ProfileChanged");
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["actor"], kim.id);
    assert!(edited["request_id"].is_string(), "{edited}");
    assert!(edited["correlation_id"].is_string(), "{edited}");
    assert!(edited["recorded_at"].is_string(), "{edited}");
    assert!(edited["position"].as_i64().unwrap() > registered["position"].as_i64().unwrap());
    assert_eq!(
        change(edited, "email"),
        Some((&json!("kim@example.com"), &json!("kim@new.example.com")))
    );
    assert_eq!(
        change(edited, "full_name"),
        Some((&Value::Null, &json!("Kim")))
    );
    assert_eq!(change(edited, "changed_at"), None, "the event's own time");
    assert!(!reply.text.contains("$argon2"), "no password hash leaves");
    assert!(!reply.text.contains("$sealed"), "no ciphertext leaves");
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn an_account_reads_its_own_stream_and_its_patients_and_nothing_else(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let parent = testing::account(&state, "parent@example.com", Role::User).await;
    let other = testing::account(&state, "other@example.com", Role::User).await;
    let c = TestClient::new(state);
    let own_patient = patient(&c, &admin, &parent, 1).await;
    let foreign_patient = patient(&c, &admin, &other, 2).await;

    let own = c
        .get(
            &audit_path(&format!("account-{}", parent.id)),
            Some(&parent.token),
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    let kid = c
        .get(
            &audit_path(&format!("patient-{own_patient}")),
            Some(&parent.token),
        )
        .await;
    assert_eq!(kid.status, 200, "{}", kid.text);
    let created = &kid.body["entries"][0];
    assert_eq!(created["event_type"], "PatientCreated");
    assert_eq!(created["actor"], parent.id);
    assert_eq!(
        change(created, "first_name"),
        Some((&Value::Null, &json!("Ana")))
    );
    assert_eq!(
        change(created, "root_user_id"),
        Some((&Value::Null, &json!(parent.id)))
    );

    let forbidden = json!({"detail": "Not enough permissions"});
    for stream in [
        format!("account-{}", other.id),
        format!("patient-{foreign_patient}"),
        // A patient that does not exist is refused the same way: its existence is not told.
        "patient-999999".to_owned(),
        "account-999999".to_owned(),
        "device-1".to_owned(),
        format!("patient-{own_patient}x"),
    ] {
        let reply = c.get(&audit_path(&stream), Some(&parent.token)).await;
        assert_eq!(reply.status, 403, "{stream}: {}", reply.text);
        assert_eq!(reply.body, forbidden, "{stream}");
    }
    // An admin is not a superadmin: only its own stream.
    let by_admin = c
        .get(
            &audit_path(&format!("account-{}", parent.id)),
            Some(&admin.token),
        )
        .await;
    assert_eq!(by_admin.status, 403, "{}", by_admin.text);
    let anonymous = c
        .get(&audit_path(&format!("account-{}", parent.id)), None)
        .await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);

    // A deleted patient's stream stays its parent's (its personal fields are erased).
    let deleted = c
        .request(
            "DELETE",
            &format!(
                "/api/v1/lux/user/delete-real-user?real_user_id={own_patient}&unique_id=uid-1"
            ),
            Some(&parent.token),
            Value::Null,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let after = c
        .get(
            &audit_path(&format!("patient-{own_patient}")),
            Some(&parent.token),
        )
        .await;
    assert_eq!(after.status, 200, "{}", after.text);
    assert_eq!(
        change(&after.body["entries"][0], "first_name"),
        Some((&Value::Null, &json!("[erased]")))
    );
    assert!(!after.text.contains("Ana"), "{}", after.text);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn an_unknown_stream_is_404_for_a_superadmin(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let root = testing::account(&state, "root@example.com", Role::Superadmin).await;
    let c = TestClient::new(state);
    for stream in ["account-999999", "nothing-here"] {
        let reply = c.get(&audit_path(stream), Some(&root.token)).await;
        assert_eq!(reply.status, 404, "{stream}: {}", reply.text);
        assert_eq!(reply.body, json!({"detail": "Stream not found"}));
    }
    let own = c
        .get(
            &audit_path(&format!("account-{}", root.id)),
            Some(&root.token),
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn after_withdrawal_personal_values_read_erased_and_the_rest_stays(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let root = testing::account(&state, "root@example.com", Role::Superadmin).await;
    let admin = testing::account(&state, "admin@example.com", Role::Admin).await;
    let kim = testing::account(&state, "kim@example.com", Role::User).await;
    let c = TestClient::new(state);
    patch_me(
        &c,
        &kim,
        json!({"email": "kim@new.example.com", "full_name": "Kim"}),
    )
    .await;
    let kid = patient(&c, &admin, &kim, 3).await;
    let account = audit_path(&format!("account-{}", kim.id));
    let before = c.get(&account, Some(&root.token)).await;
    assert_eq!(before.status, 200, "{}", before.text);
    assert!(before.text.contains("kim@new.example.com"));

    let gone = c
        .request(
            "DELETE",
            "/api/v1/lux/user/root-user",
            Some(&kim.token),
            Value::Null,
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);

    let after = c.get(&account, Some(&root.token)).await;
    assert_eq!(after.status, 200, "{}", after.text);
    for personal in ["kim@example.com", "kim@new.example.com", "\"Kim\""] {
        assert!(!after.text.contains(personal), "{personal}: {}", after.text);
    }
    let old = before.body["entries"].as_array().unwrap();
    let new = after.body["entries"].as_array().unwrap();
    assert!(new.len() > old.len(), "the withdrawal is in the trail");
    assert!(new[old.len()..]
        .iter()
        .any(|e| e["event_type"] == "AccountWithdrawn" && e["actor"] == kim.id));
    // Who, when, which request and what kind of event stay as they were.
    for (was, is) in old.iter().zip(new) {
        for key in [
            "position",
            "version",
            "recorded_at",
            "actor",
            "request_id",
            "correlation_id",
            "causation_id",
            "door",
            "event_type",
        ] {
            assert_eq!(was[key], is[key], "{key} of version {}", was["version"]);
        }
    }
    assert_eq!(
        change(&new[0], "email"),
        Some((&Value::Null, &json!("[erased]")))
    );
    assert_eq!(
        change(&new[1], "email"),
        Some((&json!("[erased]"), &json!("[erased]")))
    );
    assert_eq!(
        change(&new[1], "full_name"),
        Some((&Value::Null, &json!("[erased]")))
    );
    // The patient removed with the withdrawal: erased too, still readable by a superadmin.
    let patient = c
        .get(&audit_path(&format!("patient-{kid}")), Some(&root.token))
        .await;
    assert_eq!(patient.status, 200, "{}", patient.text);
    assert_eq!(
        change(&patient.body["entries"][0], "first_name"),
        Some((&Value::Null, &json!("[erased]")))
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn pages_follow_next_after_and_the_time_filter_narrows(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let root = testing::account(&state, "root@example.com", Role::Superadmin).await;
    let kim = testing::account(&state, "kim@example.com", Role::User).await;
    let c = TestClient::new(state);
    for n in 1..=4 {
        patch_me(&c, &kim, json!({"full_name": format!("Kim {n}")})).await;
    }
    let base = audit_path(&format!("account-{}", kim.id));
    let versions = |reply: &testing::TestResponse| -> Vec<i64> {
        reply.body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["version"].as_i64().unwrap())
            .collect()
    };

    let mut pages = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let path = match after {
            Some(after) => format!("{base}?limit=2&after={after}"),
            None => format!("{base}?limit=2"),
        };
        let reply = c.get(&path, Some(&kim.token)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        pages.push(versions(&reply));
        match reply.body["next_after"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
        assert!(pages.len() < 5, "paging ends");
    }
    assert_eq!(pages, vec![vec![1, 2], vec![3, 4], vec![5]]);
    let change_3 = c
        .get(&format!("{base}?after=2&limit=1"), Some(&kim.token))
        .await;
    assert_eq!(change_3.body["next_after"], 3);
    assert_eq!(
        change(&change_3.body["entries"][0], "full_name"),
        Some((&json!("Kim 1"), &json!("Kim 2")))
    );

    let all = c.get(&base, Some(&kim.token)).await;
    let times: Vec<String> = all.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["recorded_at"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(times.len(), 5);
    let window = c
        .get(
            &format!("{base}?from={}&to={}", times[1], times[3]),
            Some(&kim.token),
        )
        .await;
    assert_eq!(window.status, 200, "{}", window.text);
    assert_eq!(versions(&window), vec![2, 3, 4]);
    assert_eq!(window.body["next_after"], Value::Null);
    let paged_window = c
        .get(
            &format!("{base}?from={}&limit=1&after=3", times[1]),
            Some(&kim.token),
        )
        .await;
    assert_eq!(versions(&paged_window), vec![4]);
    assert_eq!(paged_window.body["next_after"], 4);
    // An offset other than Z (`+` encoded) reads as the same instant.
    let future = c
        .get(
            &format!("{base}?from=2999-01-01T09:00:00%2B09:00"),
            Some(&kim.token),
        )
        .await;
    assert_eq!(future.status, 200, "{}", future.text);
    assert_eq!(versions(&future), Vec::<i64>::new());
    assert_eq!(future.body["next_after"], Value::Null);
    let root_view = c.get(&base, Some(&root.token)).await;
    assert_eq!(root_view.body, all.body);
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn bad_query_values_are_422_in_the_core_shape(pool: sqlx::PgPool) {
    let state = testing::state(pool);
    let kim = testing::account(&state, "kim@example.com", Role::User).await;
    let c = TestClient::new(state);
    let base = audit_path(&format!("account-{}", kim.id));
    for (query, field, kind) in [
        ("limit=0", "limit", "greater_than_equal"),
        ("limit=501", "limit", "less_than_equal"),
        ("limit=ten", "limit", "value_error"),
        ("after=-1", "after", "greater_than_equal"),
        ("after=x", "after", "value_error"),
        ("from=yesterday", "from", "datetime_parsing"),
        ("to=2026-13-01T00:00:00Z", "to", "datetime_parsing"),
    ] {
        let reply = c.get(&format!("{base}?{query}"), Some(&kim.token)).await;
        assert_eq!(reply.status, 422, "{query}: {}", reply.text);
        let item = &reply.body["detail"][0];
        assert_eq!(item["loc"], json!(["query", field]), "{query}");
        assert_eq!(item["type"], kind, "{query}");
        assert!(item["msg"].is_string(), "{query}");
    }
    let max = c.get(&format!("{base}?limit=500"), Some(&kim.token)).await;
    assert_eq!(max.status, 200, "{}", max.text);
}
