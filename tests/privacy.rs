//! Issue 15: crypto-shredding. A withdrawn account's personal values are nowhere in clear —
//! no table (the log included) and no NATS message — while read models still rebuild and the
//! data that needs no person (treatment counts, devices) stays as it was.

mod support;

use fleetstream::es::EventStore;
use fleetstream::testing::{self, TestClient};
use fleetstream_events::Role;
use serde_json::{json, Value};
use sqlx::PgPool;
use support::nats::NatsServer;

/// One family's personal values, distinctive enough that finding one anywhere is a leak.
struct Person {
    email: &'static str,
    phone: &'static str,
    first_name: &'static str,
    last_name: &'static str,
    birthdate: &'static str,
    push_token: &'static str,
    child_first_name: &'static str,
    child_last_name: &'static str,
    child_birthdate: &'static str,
}

const LEAVING: Person = Person {
    email: "seraphina.withdraws@example.com",
    phone: "+821055501234",
    first_name: "Seraphina",
    last_name: "Kowalczyk",
    birthdate: "19770313",
    push_token: "fcm-token-seraphina-xyzzy",
    child_first_name: "Bartholomew",
    child_last_name: "Quixotewright",
    child_birthdate: "20150817",
};

const STAYING: Person = Person {
    email: "ottoline.stays@example.com",
    phone: "+821066602345",
    first_name: "Ottoline",
    last_name: "Vanderwald",
    birthdate: "19810629",
    push_token: "fcm-token-ottoline-plugh",
    child_first_name: "Peregrine",
    child_last_name: "Ashcombe",
    child_birthdate: "20160402",
};

impl Person {
    fn values(&self) -> [&'static str; 9] {
        [
            self.email,
            self.phone,
            self.first_name,
            self.last_name,
            self.birthdate,
            self.push_token,
            self.child_first_name,
            self.child_last_name,
            self.child_birthdate,
        ]
    }
}

/// The signed-in account withdraws (seed 001 `DELETE /api/v1/lux/user/root-user`).
async fn withdraw(c: &TestClient, token: &str) {
    let gone = c
        .request(
            "DELETE",
            "/api/v1/lux/user/root-user",
            Some(token),
            json!(null),
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text);
}
async fn last_code(pool: &PgPool, phone: &str) -> String {
    sqlx::query_scalar(
        "SELECT code FROM outbound_messages WHERE recipient = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(phone)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Seed 001 sign-up through SMS, a profile edit, a push token, a patient paired with the
/// device `serial`, and a completed treatment log. Returns (access token, patient id).
async fn family(
    c: &TestClient,
    pool: &PgPool,
    p: &Person,
    serial: &str,
    mac: &str,
    device_id: i64,
) -> (String, i64) {
    let base = "/api/v1/lux/auth";
    let sent = c
        .post(
            &format!("{base}/send-sms-auth"),
            None,
            json!({"phone": p.phone}),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    let code = last_code(pool, p.phone).await;
    let valid = c
        .post(
            &format!("{base}/phone-number-validation"),
            None,
            json!({"phone": p.phone, "validnum": code}),
        )
        .await;
    assert_eq!(valid.status, 200, "{}", valid.text);
    let valid_token = valid.body["valid_token"].as_str().unwrap().to_owned();
    let signup = c
        .post(
            &format!("{base}/email/signup"),
            Some(&valid_token),
            json!({"email": p.email, "password": "password123", "first_name": "temp", "last_name": "temp",
                   "birthdate": p.birthdate, "gender": "F", "phone": p.phone, "register_type": "E",
                   "is_push_agree": true, "is_marketing_agree": false, "national_code": "KR"}),
        )
        .await;
    assert_eq!(signup.status, 200, "{}", signup.text);
    let token = signup.body["access_token"].as_str().unwrap().to_owned();
    let edit = c
        .request(
            "PATCH",
            "/api/v1/lux/user/root-user",
            Some(&token),
            json!({"first_name": p.first_name, "last_name": p.last_name}),
        )
        .await;
    assert_eq!(edit.status, 200, "{}", edit.text);
    let push = c
        .post(
            "/api/v1/lux/user/push/set-token",
            Some(&token),
            json!({"token": p.push_token}),
        )
        .await;
    assert_eq!(push.status, 200, "{}", push.text);
    let child = c
        .post(
            "/api/v1/lux/user/create-real-user",
            Some(&token),
            json!({"first_name": p.child_first_name, "last_name": p.child_last_name,
                   "birthdate": p.child_birthdate, "gender": "M", "serial_code": serial, "mac_id": mac}),
        )
        .await;
    assert_eq!(child.status, 200, "{}", child.text);
    let patient_id = child.body["real_user_id"].as_i64().unwrap();
    let log = c
        .post(
            "/api/v2/addnox/device/devlog",
            Some(&token),
            json!({"log_arrays": [{"real_user_id": patient_id, "device_id": device_id,
                "detail_data": {"treatment_date": "2025-02-21T15:48:49", "finish_flag": 1,
                                "last_intensity": 3, "treatment_time": 600}}]}),
        )
        .await;
    assert_eq!(log.status, 200, "{}", log.text);
    (token, patient_id)
}

async fn device(c: &TestClient, admin: &str, uid: &str, serial: &str, mac: &str) -> i64 {
    let r = c
        .post(
            "/api/v1/devices",
            Some(admin),
            json!({"device_uid": uid, "name": "Withnox",
            "device_type": "therapy", "serial_code": serial, "mac_id": mac}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

/// Every row of every table in the schema, as text (the log, the keys, every read model).
async fn every_row(pool: &PgPool) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() > 15, "{tables:?}");
    let mut rows = Vec::new();
    for table in tables {
        let texts: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
            .fetch_all(pool)
            .await
            .unwrap();
        rows.extend(texts.into_iter().map(|t| (table.clone(), t)));
    }
    rows
}

fn leaks(haystack: impl IntoIterator<Item = (String, String)>, person: &Person) -> Vec<String> {
    let mut found = Vec::new();
    for (place, text) in haystack {
        for value in person.values() {
            if text.contains(value) {
                found.push(format!(
                    "{value} in {place}: {}",
                    &text[..text.len().min(300)]
                ));
            }
        }
    }
    found
}

/// Every message the relay publishes for the whole log, from a private NATS server.
async fn published(pool: &PgPool, nats: &NatsServer) -> Vec<(String, String)> {
    let client = async_nats::connect(nats.url()).await.unwrap();
    fleetstream::relay::republish(pool, client.clone(), 1, |_, _| {})
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(fleetstream::relay::STREAM_NAME)
        .await
        .unwrap();
    let info = stream.info().await.unwrap();
    let mut messages = Vec::new();
    for seq in info.state.first_sequence.max(1)..=info.state.last_sequence {
        if let Ok(m) = stream.get_raw_message(seq).await {
            let headers = format!("{:?}", m.headers);
            messages.push((
                m.subject.to_string(),
                format!("{headers} {}", String::from_utf8_lossy(&m.payload)),
            ));
        }
    }
    assert!(!messages.is_empty());
    messages
}

/// What needs no person: every treatment log and movement sample as stored, and the devices.
async fn treatment_counts(pool: &PgPool) -> Value {
    sqlx::query_scalar(
        "SELECT jsonb_build_object( \
           'logs', (SELECT jsonb_agg(to_jsonb(t) ORDER BY device_id, record_no) FROM treatment_logs t), \
           'devices', (SELECT jsonb_agg(jsonb_build_object('id', id, 'uid', unique_id) ORDER BY id) \
                       FROM devices WHERE deleted_at IS NULL))",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_withdrawn_family_is_nowhere_in_clear_and_everything_still_rebuilds(pool: PgPool) {
    let nats = NatsServer::start().await;
    let state = testing::state(pool.clone());
    let admin = testing::account(&state, "admin@example.com", Role::Superadmin).await;
    let c = TestClient::new(state.clone());
    let dev_a = device(&c, &admin.token, "uid-a", "SL20401001", "AA:BB:CC:DD:41:A1").await;
    let dev_b = device(&c, &admin.token, "uid-b", "SL20401002", "AA:BB:CC:DD:41:B2").await;
    let (leaving, _) = family(&c, &pool, &LEAVING, "SL20401001", "41A1", dev_a).await;
    let (staying, staying_child) = family(&c, &pool, &STAYING, "SL20401002", "41B2", dev_b).await;

    // Before: both families' values are in their read models, none in the log in clear.
    let before = every_row(&pool).await;
    let log_rows = before.iter().filter(|(t, _)| t == "events").cloned();
    assert_eq!(leaks(log_rows.clone(), &LEAVING), Vec::<String>::new());
    assert_eq!(leaks(log_rows, &STAYING), Vec::<String>::new());
    assert!(
        !leaks(before.clone(), &LEAVING).is_empty(),
        "the read models hold the live data"
    );
    let counts = treatment_counts(&pool).await;

    withdraw(&c, &leaving).await;

    let after = every_row(&pool).await;
    assert_eq!(leaks(after.clone(), &LEAVING), Vec::<String>::new());
    assert_eq!(
        leaks(published(&pool, &nats).await, &LEAVING),
        Vec::<String>::new()
    );
    assert_eq!(
        leaks(published(&pool, &nats).await, &STAYING),
        Vec::<String>::new(),
        "NATS never carries personal values, of anyone"
    );
    assert_eq!(
        treatment_counts(&pool).await,
        counts,
        "treatment data needs no person"
    );

    // Every read model rebuilds from the log, and still holds nothing of the withdrawn family.
    let keyring = testing::keyring();
    for projection in state.store.projections() {
        fleetstream_projections::rebuild(&pool, projection.as_ref(), Some(&keyring), 500, |_| {})
            .await
            .unwrap_or_else(|e| panic!("rebuilding {}: {e}", projection.name()));
    }
    assert_eq!(
        leaks(every_row(&pool).await, &LEAVING),
        Vec::<String>::new()
    );
    assert_eq!(treatment_counts(&pool).await, counts);

    // The other family is untouched: its profile reads back whole.
    let me = c.get("/api/v1/lux/user/me", Some(&staying)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(
        (
            &me.body["first_name"],
            &me.body["last_name"],
            &me.body["phone"],
            &me.body["birthdate"]
        ),
        (
            &json!(STAYING.first_name),
            &json!(STAYING.last_name),
            &json!(STAYING.phone),
            &json!(STAYING.birthdate)
        )
    );
    let kids = c
        .get(
            &format!("/api/v1/lux/user/real-user/{staying_child}"),
            Some(&staying),
        )
        .await;
    assert!(
        kids.text.contains(STAYING.child_first_name),
        "{}",
        kids.text
    );

    // The withdrawn address is still known as deleted (by its keyed hash) and stays taken.
    let signin = c
        .post_form(
            "/api/v1/addnox/auth/email/signin",
            None,
            &[("username", LEAVING.email), ("password", "password123")],
        )
        .await;
    assert_eq!(
        (signin.status.as_u16(), signin.body),
        (410, json!({"detail": "User is Deleted"}))
    );
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn a_destroyed_key_cannot_be_restored(pool: PgPool) {
    let state = testing::state(pool.clone());
    let parent = testing::account(&state, "parent@example.com", Role::User).await;
    let c = TestClient::new(state.clone());
    let (wrapped, key_id): (Vec<u8>, uuid::Uuid) =
        sqlx::query_as("SELECT wrapped_key, key_id FROM subject_keys WHERE subject = $1")
            .bind(format!("account-{}", parent.id))
            .fetch_one(&pool)
            .await
            .unwrap();
    withdraw(&c, &parent.token).await;

    // Not even the database owner can put the key material back.
    let restore = sqlx::query(
        "UPDATE subject_keys SET wrapped_key = $1, shredded_at = NULL WHERE key_id = $2",
    )
    .bind(&wrapped)
    .bind(key_id)
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(
        restore.to_string().contains("cannot be restored"),
        "{restore}"
    );

    // The log reads the account's personal fields as erased; a new key for the same subject
    // (any later write) cannot open the old fields either.
    let mut conn = pool.acquire().await.unwrap();
    let mut events =
        fleetstream_events::store::read_stream(&mut conn, &format!("account-{}", parent.id), 1)
            .await
            .unwrap();
    fleetstream_events::privacy::open_events(
        &mut conn,
        state.store.keyring(),
        &mut Default::default(),
        &mut events,
    )
    .await
    .unwrap();
    assert_eq!(
        events[0].data["profile"]["email"],
        json!(fleetstream_events::privacy::ERASED)
    );
    let live = fleetstream_events::privacy::subject_key_exists(
        &mut conn,
        &format!("account-{}", parent.id),
    )
    .await
    .unwrap();
    assert!(!live, "the key stays destroyed");
}

/// A log written before sealing existed: plaintext events, one account already withdrawn.
#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn privacy_migrate_seals_an_older_log_once(pool: PgPool) {
    let mut old = testing::state(pool.clone());
    old.store = EventStore::new(pool.clone(), fleetstream_projections::read_models::all())
        .without_sealing();
    let admin = testing::account(&old, "admin@example.com", Role::Superadmin).await;
    let c = TestClient::new(old.clone());
    let dev_a = device(&c, &admin.token, "uid-a", "SL20401001", "AA:BB:CC:DD:41:A1").await;
    let dev_b = device(&c, &admin.token, "uid-b", "SL20401002", "AA:BB:CC:DD:41:B2").await;
    let (leaving, _) = family(&c, &pool, &LEAVING, "SL20401001", "41A1", dev_a).await;
    family(&c, &pool, &STAYING, "SL20401002", "41B2", dev_b).await;
    withdraw(&c, &leaving).await;
    let log_rows = |rows: Vec<(String, String)>| rows.into_iter().filter(|(t, _)| t == "events");
    assert!(
        !leaks(log_rows(every_row(&pool).await), &LEAVING).is_empty(),
        "the old log is plaintext"
    );
    let counts = treatment_counts(&pool).await;

    // The upgraded server reads the plaintext log as it is (the upcast of unsealed events).
    let state = testing::state(pool.clone());
    let c = TestClient::new(state.clone());
    let staying = c
        .post_form(
            "/api/v1/addnox/auth/email/signin",
            None,
            &[("username", STAYING.email), ("password", "password123")],
        )
        .await;
    assert_eq!(staying.status, 200, "{}", staying.text);
    let staying = staying.body["access_token"].as_str().unwrap().to_owned();

    let mut progress = Vec::new();
    let report = fleetstream::privacy::migrate::migrate(&state, 7, |done, total| {
        progress.push((done, total))
    })
    .await
    .unwrap();
    assert!(report.sealed > 10, "{report:?}");
    assert!(
        report.shredded >= 2,
        "the withdrawn account and its phone: {report:?}"
    );
    assert!(
        progress.len() > 2 && progress.last().map(|(d, t)| d == t) == Some(true),
        "{progress:?}"
    );

    let rows = every_row(&pool).await;
    assert_eq!(leaks(rows.clone(), &LEAVING), Vec::<String>::new());
    assert_eq!(
        leaks(log_rows(rows), &STAYING),
        Vec::<String>::new(),
        "the log holds no clear value"
    );
    assert_eq!(treatment_counts(&pool).await, counts);
    let me = c.get("/api/v1/lux/user/me", Some(&staying)).await;
    assert_eq!(
        (me.status.as_u16(), &me.body["last_name"]),
        (200, &json!(STAYING.last_name))
    );
    // Changes after the migration seal and open as usual.
    let edit = c
        .request(
            "PATCH",
            "/api/v1/lux/user/root-user",
            Some(&staying),
            json!({"first_name": "Ottilie"}),
        )
        .await;
    assert_eq!(edit.status, 200, "{}", edit.text);
    assert_eq!(
        c.get("/api/v1/lux/user/me", Some(&staying)).await.body["first_name"],
        json!("Ottilie")
    );

    let again = fleetstream::privacy::migrate::migrate(&state, 7, |_, _| {})
        .await
        .unwrap_err();
    assert!(again.to_string().contains("runs once"), "{again}");
}
