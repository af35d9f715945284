//! Bounded load over real HTTP: several clients, each a KooDTX account with its own recording
//! session and a paired therapy device, sending a mix of commands of four namespaces (KooDTX
//! sync pushes and registrations, core and DRF device creates by the admin, nueyne devlogs) at a paced
//! rate until a deadline or a command budget, whichever comes first. Every 2xx is written to a
//! ledger with what it created, so a scenario can look for it in the log and its read model.

use super::procs::{ADMIN_EMAIL, ADMIN_PASSWORD};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pushes carry this many samples each.
pub const SAMPLES_PER_PUSH: i64 = 10;

pub struct Client {
    pub token: String,
    pub device_id: i64,
    pub device_uid: String,
    pub patient_id: i64,
    pub session: String,
}

/// The accounts, devices and pairings the load runs on, made over HTTP before it starts.
pub struct Fleet {
    pub base: String,
    pub http: reqwest::Client,
    pub admin: String,
    pub clients: Vec<Client>,
    pub tag: String,
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = http.post(url).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.expect("setup request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

impl Fleet {
    pub async fn setup(base: &str, clients: usize) -> Self {
        let http = http_client();
        let tag = uuid::Uuid::now_v7().simple().to_string()[20..].to_owned();
        let (status, body) = post(
            &http,
            format!("{base}/api/v1/auth/login"),
            None,
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
        assert_eq!(status, 200, "admin login: {body}");
        let admin = body["access_token"].as_str().unwrap().to_owned();
        let mut fleet = Self {
            base: base.to_owned(),
            http,
            admin,
            clients: Vec::new(),
            tag,
        };
        for i in 0..clients {
            let client = fleet.enrol(i).await;
            fleet.clients.push(client);
        }
        fleet
    }

    async fn enrol(&self, i: usize) -> Client {
        let (base, tag) = (&self.base, &self.tag);
        let name = format!("load{tag}c{i}");
        let (status, body) = post(
            &self.http,
            format!("{base}/api/auth/register"),
            None,
            json!({"username": name, "email": format!("{name}@fault.test"),
                   "password": "password123", "device_id": format!("phone-{name}")}),
        )
        .await;
        assert_eq!(status, 201, "register: {body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let serial = format!("SL{tag}{i:04}").to_uppercase();
        let mac = format!("AA:BB:CC:DD:{:02X}:{:02X}", i / 256, i % 256);
        let device_uid = format!("therapy-{tag}-{i}");
        let (status, body) = post(
            &self.http,
            format!("{base}/api/v1/devices"),
            Some(&self.admin),
            json!({"device_uid": device_uid, "name": "Withnox", "device_type": "therapy",
                   "serial_code": serial, "mac_id": mac}),
        )
        .await;
        assert_eq!(status, 201, "device: {body}");
        let device_id = body["id"].as_i64().unwrap();
        let (status, body) = post(
            &self.http,
            format!("{base}/api/v1/lux/user/create-real-user"),
            Some(&token),
            json!({"first_name": "load", "last_name": "", "birthdate": "20100101",
                   "gender": "F", "serial_code": serial, "mac_id": mac}),
        )
        .await;
        assert_eq!(status, 200, "create-real-user: {body}");
        Client {
            token,
            device_id,
            device_uid,
            patient_id: body["real_user_id"].as_i64().unwrap(),
            session: format!("session-{tag}-{i}"),
        }
    }
}

/// One sample key of a push: (session, sensor type, timestamp).
pub type SampleKey = (String, String, i64);

/// What the load got: every acknowledged command with what it created, and every other answer.
#[derive(Default, Debug)]
pub struct Ledger {
    pub sent: u64,
    pub devices: Vec<i64>,
    pub accounts: Vec<i64>,
    pub samples: Vec<SampleKey>,
    pub pushes: u64,
    pub devlogs: Vec<(i64, i64)>,
    pub statuses: BTreeMap<u16, u64>,
    /// No HTTP answer at all (refused, reset, timed out).
    pub transport_errors: u64,
    /// 503 in the namespace's shape with `Retry-After`.
    pub unavailable: u64,
    /// Anything else that is not a 2xx: a 500, a 503 in the wrong shape, a 4xx.
    pub unexpected: Vec<String>,
    pub slowest: Duration,
    /// When requests were answered (seconds since the load started, status or 0 for none).
    pub timeline: Vec<(f64, u16)>,
}

impl Ledger {
    pub fn acknowledged(&self) -> u64 {
        self.devices.len() as u64
            + self.accounts.len() as u64
            + self.pushes
            + self.devlogs.len() as u64
    }

    fn merge(&mut self, other: Ledger) {
        self.sent += other.sent;
        self.devices.extend(other.devices);
        self.accounts.extend(other.accounts);
        self.samples.extend(other.samples);
        self.pushes += other.pushes;
        self.devlogs.extend(other.devlogs);
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        self.transport_errors += other.transport_errors;
        self.unavailable += other.unavailable;
        self.unexpected.extend(other.unexpected);
        self.slowest = self.slowest.max(other.slowest);
        self.timeline.extend(other.timeline);
    }

    pub fn summary(&self) -> String {
        format!(
            "sent {} acknowledged {} (pushes {} = {} samples, devices {}, devlogs {}, registrations {}); \
             503 {}; no answer {}; unexpected {}; slowest {:.2} s; statuses {:?}",
            self.sent,
            self.acknowledged(),
            self.pushes,
            self.samples.len(),
            self.devices.len(),
            self.devlogs.len(),
            self.accounts.len(),
            self.unavailable,
            self.transport_errors,
            self.unexpected.len(),
            self.slowest.as_secs_f64(),
            self.statuses
        )
    }
}

pub struct Plan {
    /// Commands per second over all clients.
    pub rate: u32,
    pub duration: Duration,
    /// Hard cap on commands sent, whatever the rate did.
    pub max_commands: u64,
}

#[derive(Clone, Copy)]
enum Namespace {
    KooDtx,
    Other,
}

/// Runs the plan with one task per client; returns the merged ledger when all have stopped.
pub async fn run(fleet: Arc<Fleet>, plan: Plan) -> Ledger {
    let started = Instant::now();
    let per_client = plan.max_commands / fleet.clients.len() as u64;
    let interval = Duration::from_secs_f64(fleet.clients.len() as f64 / plan.rate as f64);
    let mut tasks = Vec::new();
    for index in 0..fleet.clients.len() {
        let fleet = fleet.clone();
        tasks.push(tokio::spawn(async move {
            let mut ledger = Ledger::default();
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for k in 0..per_client {
                tick.tick().await;
                if started.elapsed() >= plan.duration {
                    break;
                }
                one_command(&fleet, index, k as i64, started, &mut ledger).await;
            }
            ledger
        }));
    }
    let mut ledger = Ledger::default();
    for task in tasks {
        ledger.merge(task.await.expect("load task"));
    }
    ledger
}

/// What a 2xx of one command created.
enum Created {
    Samples(Vec<SampleKey>),
    Device,
    Devlog(i64, i64),
    Account,
}

async fn one_command(fleet: &Fleet, index: usize, k: i64, started: Instant, ledger: &mut Ledger) {
    let client = &fleet.clients[index];
    let base = &fleet.base;
    let tag = &fleet.tag;
    // Of every 50 commands: 20 pushes, 15 device creates (10 core, 5 DRF), 14 devlogs, 1
    // registration (argon2 makes registrations costly; a few keep that door in the mix).
    let (ns, url, token, body, created) = match k % 50 {
        49 => {
            let name = format!("load{tag}c{index}k{k}");
            (
                Namespace::KooDtx,
                format!("{base}/api/auth/register"),
                None,
                json!({"username": name, "email": format!("{name}@fault.test"),
                       "password": "password123", "device_id": format!("phone-{name}")}),
                Created::Account,
            )
        }
        n if n % 10 < 4 => {
            let from = 1_700_000_000_000 + k * 1000;
            let samples: Vec<Value> = (0..SAMPLES_PER_PUSH)
                .map(|i| {
                    json!({"sensor_type": "accelerometer", "timestamp": from + i,
                                "data": {"x": k, "y": i, "z": 9.8}})
                })
                .collect();
            let keys = (0..SAMPLES_PER_PUSH)
                .map(|i| (client.session.clone(), "accelerometer".to_owned(), from + i))
                .collect();
            (
                Namespace::KooDtx,
                format!("{base}/api/sync/push"),
                Some(client.token.as_str()),
                json!({"session": {"session_id": client.session, "start_time": "2025-11-13T00:00:00Z",
                                   "enabled_sensors": ["accelerometer"], "sample_rate": 100},
                       "sensor_data": samples}),
                Created::Samples(keys),
            )
        }
        n if n % 10 < 6 => (
            Namespace::Other,
            format!("{base}/api/v1/devices"),
            Some(fleet.admin.as_str()),
            json!({"device_uid": format!("sensor-{tag}-{index}-{k}"), "name": "Load sensor",
                   "device_type": "sensor"}),
            Created::Device,
        ),
        n if n % 10 < 7 => (
            Namespace::Other,
            format!("{base}/api/devices/"),
            Some(fleet.admin.as_str()),
            json!({"device_uid": format!("drf-{tag}-{index}-{k}"), "name": "Load sensor"}),
            Created::Device,
        ),
        _ => {
            let minute = k % 1440;
            let date = format!(
                "2025-03-{:02}T{:02}:{:02}:00",
                1 + k / 1440 % 28,
                minute / 60,
                minute % 60
            );
            (
                Namespace::Other,
                format!("{base}/api/v2/addnox/device/devlog"),
                Some(client.token.as_str()),
                json!({"log_arrays": [{"real_user_id": client.patient_id, "device_id": client.device_id,
                        "unique_id": client.device_uid, "log_file_id": k,
                        "detail_data": {"treatment_date": date, "finish_flag": 1,
                                        "last_intensity": 3, "treatment_time": 600}}]}),
                Created::Devlog(client.device_id, k),
            )
        }
    };
    let mut req = fleet.http.post(url.clone()).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    ledger.sent += 1;
    let sent_at = Instant::now();
    let result = req.send().await;
    let answer = match result {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry_after = r.headers().contains_key("retry-after");
            let body: Value = r.json().await.unwrap_or(Value::Null);
            Some((status, retry_after, body))
        }
        Err(_) => None,
    };
    ledger.slowest = ledger.slowest.max(sent_at.elapsed());
    let at = started.elapsed().as_secs_f64();
    let Some((status, retry_after, body)) = answer else {
        ledger.transport_errors += 1;
        ledger.timeline.push((at, 0));
        return;
    };
    ledger.timeline.push((at, status));
    *ledger.statuses.entry(status).or_default() += 1;
    match status {
        200..=299 => match created {
            Created::Samples(keys) => {
                ledger.pushes += 1;
                ledger.samples.extend(keys);
            }
            Created::Device => ledger.devices.push(body["id"].as_i64().expect("device id")),
            Created::Devlog(device, file) => ledger.devlogs.push((device, file)),
            Created::Account => ledger
                .accounts
                .push(body["user"]["id"].as_i64().expect("user id")),
        },
        503 => {
            let want = match ns {
                Namespace::KooDtx => json!({"error": "Service Unavailable"}),
                Namespace::Other => json!({"detail": "Service Unavailable"}),
            };
            if body == want && retry_after {
                ledger.unavailable += 1;
            } else {
                ledger.unexpected.push(format!(
                    "503 from {url} with {body} (Retry-After: {retry_after})"
                ));
            }
        }
        _ => ledger
            .unexpected
            .push(format!("{status} from {url}: {body}")),
    }
}
