//! Suite `privacy` (issue #15): what crypto-shredding costs. The same feature functions run
//! through an `EventStore` that seals personal fields (`.with_keyring`, as every server runs)
//! and through one writing plaintext (`EventStore::new`, the baseline), each on its own fresh
//! database seeded with the same accounts, devices and patients, in alternating rounds (the
//! side that goes first flips every round). The median round by sealed/plain is reported with
//! every round's ratio. Target of the issue: account and patient commands ≥ 0.90× plain.
//!
//! Measured, 1 and 8 writers (each writer on its own share of the seeded streams, so writers
//! never conflict): profile changes on existing accounts (`accounts::change`), registration
//! with the argon2 hash computed once beforehand (a real registration spends most of its time
//! in argon2, printed for scale, which hides everything else), patient creation
//! (`therapy::service::create_real_user`: create + pair a free device) and patient updates
//! (`update_patient`), and as a control KooDTX sync pushes (`sync::push`, no personal fields:
//! sealing only looks the category up), which should be ~1.0. Then rebuilds of the `accounts`
//! and `patients` read models over the seeded logs (the sealed log opened with the keyring vs
//! the plain log without). To tell where a difference comes from: the CPU per command of
//! this process and of the database's Postgres backends (from /proc, so only with Postgres on
//! this host), each round trip of one command at a time counted and timed by a proxy reading
//! the Postgres wire protocol between a pool and the server, and the in-process cost of
//! sealing and opening alone.

use crate::bench_db::{drop as drop_database, fresh};
use crate::closed_loop;
use anyhow::{anyhow, bail, Context};
use chrono::Utc;
use fleetstream::accounts::domain::{self as account_domain, Account, AccountError};
use fleetstream::devices::domain::{self as device_domain, Device, RegisterDevice};
use fleetstream::es::{next_id, Aggregate, EventStore};
use fleetstream::therapy::pairing;
use fleetstream::therapy::patients::{self, CreatePatient, Patient};
use fleetstream::therapy::service::{self, CreateRealUser};
use fleetstream_events::privacy::{self, Keyring};
use fleetstream_events::store::{ExpectedVersion, NewEvent, StreamAppend};
use fleetstream_events::{
    AccountEvent, AccountProfile, DeviceEvent, DeviceSpec, DomainEvent, EventMetadata,
    PatientChanges, PatientEvent, PatientProfile, ProfileChanges, Role, SensorSample,
};
use fleetstream_projections::Projection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;
use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

const PLAIN_DB: &str = "fleetbench_privacy_plain";
const SEALED_DB: &str = "fleetbench_privacy_sealed";
const WRITERS: [usize; 2] = [1, 8];
/// Accounts (and patients) staged per seeding transaction.
const SEED_BATCH: usize = 100;
/// Samples per sync push of the control.
const PUSH_SAMPLES: usize = 100;
/// The rebuild batch of `fleetstream projections rebuild`.
const REBUILD_BATCH: i64 = 2_000;
/// Commands of each kind whose round trips are counted, per side.
const TRACED: usize = 20;
/// How long a traced command's trailing round trips (pings, NOTIFY) are waited for.
const SETTLE: Duration = Duration::from_millis(30);
/// A `Sync` with no statement before it: sqlx's connection check.
const PING: &str = "(ping)";

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Alternating plain/sealed rounds per measurement.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Length of one phase (one side, one command kind, one writer count), milliseconds.
    #[arg(long, default_value_t = 1_000)]
    pub phase_ms: u64,
    /// Accounts seeded in each database (each registered and changed twice: the rebuild's log).
    #[arg(long, default_value_t = 2_000)]
    pub accounts: usize,
    /// Patients seeded in each database (created, paired with a device, updated once).
    #[arg(long, default_value_t = 2_000)]
    pub patients: usize,
    /// At most this many patients created per phase (each needs a free seeded device).
    #[arg(long, default_value_t = 500)]
    pub creates_per_phase: usize,
    /// Also measure, in the same rounds, the plain store plus the one statement the sealed
    /// store adds (the key fetch, or the key creation), run through the unit of work's
    /// connection: how much of the difference the extra round trip alone explains.
    #[arg(long)]
    pub probe: bool,
}

/// The command kinds measured in alternating rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    ProfileChange,
    Register,
    PatientCreate,
    PatientUpdate,
    SyncPush,
}

impl Workload {
    const ALL: [Workload; 5] = [
        Self::ProfileChange,
        Self::Register,
        Self::PatientCreate,
        Self::PatientUpdate,
        Self::SyncPush,
    ];

    /// Whether `--probe` has a plain command with the sealed one's extra statement for it.
    fn probed(self) -> bool {
        matches!(
            self,
            Self::ProfileChange | Self::Register | Self::PatientUpdate
        )
    }

    fn label(self) -> &'static str {
        match self {
            Self::ProfileChange => "account profile change",
            Self::Register => "account registration (pre-hashed)",
            Self::PatientCreate => "patient create + pair",
            Self::PatientUpdate => "patient update",
            Self::SyncPush => "control: sync push (100 samples)",
        }
    }
}

/// One database and the store writing to it.
#[derive(Clone)]
struct Side {
    label: &'static str,
    pool: PgPool,
    store: EventStore,
    keyring: Option<Keyring>,
    /// Seeded account ids.
    accounts: Arc<Vec<i64>>,
    /// Seeded (patient id, owner account id).
    patients: Arc<Vec<(i64, i64)>>,
    /// Seeded unpaired devices (serial code, MAC) and the next one to pair.
    free_devices: Arc<Vec<(String, String)>>,
    next_free: Arc<AtomicUsize>,
    /// Source of unique e-mails and session ids.
    serial: Arc<AtomicU64>,
    /// The argon2 hash every pre-hashed registration stores.
    password_hash: Arc<String>,
    /// A plain store running the sealed store's extra statement too (`--probe`).
    probe: bool,
    /// For the probe: a stand-in key id per seeded stream, kept in the plain database's
    /// `subject_keys` like the sealed database's keys (same table size, same plans).
    probe_keys: Arc<HashMap<String, Uuid>>,
}

impl Side {
    fn new(label: &'static str, pool: PgPool, keyring: Option<Keyring>, hash: Arc<String>) -> Self {
        let store = store_on(pool.clone(), keyring.clone());
        Self {
            label,
            pool,
            store,
            keyring,
            accounts: Arc::default(),
            patients: Arc::default(),
            free_devices: Arc::default(),
            next_free: Arc::default(),
            serial: Arc::default(),
            password_hash: hash,
            probe: false,
            probe_keys: Arc::default(),
        }
    }
}

/// The store every server builds (with its read models), sealing when given a keyring.
fn store_on(pool: PgPool, keyring: Option<Keyring>) -> EventStore {
    let store = EventStore::new(pool, fleetstream_projections::read_models::all());
    match keyring {
        Some(keyring) => store.with_keyring(keyring),
        None => store.without_sealing(),
    }
}

pub async fn run(database_url: &str, options: Options) -> anyhow::Result<()> {
    let result = run_in(database_url, &options).await;
    for name in [PLAIN_DB, SEALED_DB] {
        drop_database(database_url, name).await?;
    }
    result
}

async fn run_in(database_url: &str, options: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let phase = Duration::from_millis(options.phase_ms);
    let hash_started = Instant::now();
    let hash = Arc::new(fleetstream::auth::password::hash("password123").await);
    let mut argon2 = vec![hash_started.elapsed()];
    for _ in 0..2 {
        let t = Instant::now();
        fleetstream::auth::password::hash("password123").await;
        argon2.push(t.elapsed());
    }
    argon2.sort();

    let plain_pool = fresh(database_url, PLAIN_DB, 12).await?;
    let sealed_pool = fresh(database_url, SEALED_DB, 12).await?;
    let settings: (String, String) =
        sqlx::query_as("SELECT current_setting('synchronous_commit'), current_setting('fsync')")
            .fetch_one(&plain_pool)
            .await?;
    println!(
        "fleetbench privacy — sealed (EventStore::with_keyring) vs plain (EventStore::new), one fresh database each, synchronous_commit={} fsync={}, {phase:?} per phase, {} alternating rounds, median round by sealed/plain",
        settings.0, settings.1, options.rounds
    );
    let keyring = fleetstream::testing::keyring();
    let mut plain = Side::new("plain", plain_pool, None, hash.clone());
    let mut sealed = Side::new("sealed", sealed_pool, Some(keyring), hash);

    // Free devices for every create phase and its warm-up, with a margin.
    let free = options.creates_per_phase * (options.rounds * WRITERS.len() + WRITERS.len() + 1);
    let seeding = Instant::now();
    for side in [&mut plain, &mut sealed] {
        seed(side, options.accounts, options.patients, free).await?;
    }
    if options.probe {
        plain.probe_keys = Arc::new(stand_in_keys(&plain.pool).await?);
    }
    println!(
        "seeded each database in {:.1}s: {} accounts (registered + 2 profile changes), {} patients (created, paired, updated once), {free} free devices",
        seeding.elapsed().as_secs_f64() / 2.0,
        options.accounts,
        options.patients
    );
    check_sealing(&plain, &sealed).await?;

    rebuild_rounds(&plain, &sealed, options).await?;

    println!(
        "commands (ops/s; p99 latency), median round by sealed/plain, every round's ratio lowest first; CPU per command (median of the rounds) of this process + the database's Postgres backends; argon2 hash of one registration: median {:.1} ms of 3, not part of the pre-hashed registration below",
        argon2[1].as_secs_f64() * 1e3
    );
    println!(
        "  {:<35} {:>7} {:>9} {:>8} {:>9} {:>8} {:>8}  {:>16} {:>16}  rounds",
        "command",
        "writers",
        "plain/s",
        "p99 ms",
        "sealed/s",
        "p99 ms",
        "ratio",
        "plain cpu µs/op",
        "sealed cpu µs/op"
    );
    let probe = Side {
        label: "probe",
        probe: true,
        ..plain.clone()
    };
    let mut probes = Vec::new();
    for workload in Workload::ALL {
        for writers in WRITERS {
            let mut sides = vec![&plain, &sealed];
            if options.probe && workload.probed() {
                sides.push(&probe);
            }
            // Warm every side's connections and statement caches with this command.
            for side in &sides {
                measure(
                    side,
                    workload,
                    writers,
                    phase / 4,
                    options.creates_per_phase / 4,
                )
                .await?;
            }
            let mut rounds = Vec::with_capacity(options.rounds);
            let mut probe_rounds = Vec::new();
            for round in 0..options.rounds {
                // Who goes first rotates (with two sides: alternates).
                let mut order = sides.clone();
                order.rotate_left(round % sides.len());
                let mut rates = HashMap::new();
                for side in order {
                    let rate =
                        measure(side, workload, writers, phase, options.creates_per_phase).await?;
                    rates.insert(side.label, rate);
                }
                rounds.push(Round {
                    baseline: rates["plain"],
                    measured: rates["sealed"],
                });
                if let Some(probed) = rates.get("probe") {
                    probe_rounds.push(Round {
                        baseline: rates["plain"],
                        measured: *probed,
                    });
                }
            }
            report(workload, writers, rounds);
            if !probe_rounds.is_empty() {
                probes.push((workload, writers, probe_rounds));
            }
        }
    }
    if !probes.is_empty() {
        println!(
            "probe (in the columns of sealed): the plain store plus the sealed store's extra statement (key fetch after the load, or key creation before the commit) in the same unit of work, measured in the same rounds; ratio probe/plain"
        );
        for (workload, writers, rounds) in probes {
            report(workload, writers, rounds);
        }
    }

    round_trips(database_url, &plain, &sealed).await?;
    crypto_costs(&sealed).await?;
    plain.pool.close().await;
    sealed.pool.close().await;
    println!("suite took {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}

// --- seeding: the same accounts, devices and patients in both databases.

fn seeded_profile(i: usize) -> AccountProfile {
    AccountProfile {
        email: format!("seed-{i}@example.com"),
        full_name: Some(format!("Seed Person {i}")),
        first_name: Some("Seed".into()),
        last_name: Some(format!("Person {i}")),
        organization: Some("Fleet Clinic".into()),
        birthdate: Some("19900101".into()),
        gender: Some("F".into()),
        ..Default::default()
    }
}

fn serial_of(kind: char, n: usize) -> (String, String) {
    (
        format!("P{kind}{n:08}"),
        format!(
            "AA:BB:{:02X}:{:02X}:{:02X}:{:02X}",
            kind as u8,
            (n >> 16) & 0xff,
            (n >> 8) & 0xff,
            n & 0xff
        ),
    )
}

fn device_events(device_id: i64, kind: char, n: usize) -> anyhow::Result<Vec<DeviceEvent>> {
    let (serial, mac) = serial_of(kind, n);
    device_domain::decide_register(
        &Device::default(),
        RegisterDevice {
            device_id,
            public_id: Uuid::new_v4(),
            spec: DeviceSpec {
                unique_id: format!("pb-{kind}-{n}"),
                name: format!("Bench {kind} {n}"),
                serial_code: Some(serial),
                mac_id: Some(mac),
                ..Default::default()
            },
            status: None,
            now: Utc::now(),
        },
    )
    .map_err(|e| anyhow!("registering a device: {e:?}"))
}

async fn seed(
    side: &mut Side,
    accounts: usize,
    patients: usize,
    free: usize,
) -> anyhow::Result<()> {
    let store = &side.store;
    let mut ids = Vec::with_capacity(accounts);
    for chunk in (0..accounts).collect::<Vec<_>>().chunks(SEED_BATCH) {
        let mut uow = store.begin(EventMetadata::default()).await?;
        for &i in chunk {
            let account_id = next_id(uow.conn(), "account_id_seq").await?;
            let now = Utc::now();
            let mut events = account_domain::decide_register(
                &Account::default(),
                account_domain::RegisterAccount {
                    account_id,
                    role: Role::User,
                    password_hash: side.password_hash.to_string(),
                    profile: seeded_profile(i),
                    now,
                },
            )
            .map_err(|e| anyhow!("seeding account {i}: {e:?}"))?;
            for change in 0..2 {
                let state = Account::fold(&events);
                let changes = ProfileChanges {
                    full_name: Some(format!("Seed Person {i} ({change})")),
                    ..Default::default()
                };
                events.extend(
                    account_domain::decide_change_profile(&state, changes, now)
                        .map_err(|e| anyhow!("seeding account {i}: {e:?}"))?,
                );
            }
            uow.stage(
                &AccountEvent::stream_id(account_id),
                ExpectedVersion::NoStream,
                &events,
            );
            ids.push(account_id);
        }
        uow.commit::<AccountError>().await?;
    }
    anyhow::ensure!(!ids.is_empty(), "seed at least one account");

    let mut seeded = Vec::with_capacity(patients);
    for chunk in (0..patients).collect::<Vec<_>>().chunks(SEED_BATCH) {
        let mut uow = store.begin(EventMetadata::default()).await?;
        for &p in chunk {
            let now = Utc::now();
            let owner = ids[p % ids.len()];
            let device_id = next_id(uow.conn(), "device_id_seq").await?;
            let mut device_stream = device_events(device_id, 'S', p)?;
            let device = Device::fold(&device_stream);
            let patient_id = next_id(uow.conn(), "patient_id_seq").await?;
            let mut patient_stream = patients::decide_create(
                &Patient::default(),
                CreatePatient {
                    patient_id,
                    root_user_id: owner,
                    profile: PatientProfile {
                        first_name: format!("p{p}"),
                        last_name: "bench".into(),
                        birthdate: "20000101".into(),
                        gender: "F".into(),
                    },
                    now,
                },
            )
            .map_err(|e| anyhow!("seeding patient {p}: {e:?}"))?;
            let (connected, assigned) =
                pairing::decide_connect(&device, &Patient::fold(&patient_stream), now)
                    .map_err(|e| anyhow!("pairing seeded patient {p}: {e:?}"))?;
            device_stream.extend(connected);
            patient_stream.extend(assigned);
            let changes = PatientChanges {
                last_name: Some(format!("bench {p}")),
                ..Default::default()
            };
            patient_stream.extend(
                patients::decide_update(&Patient::fold(&patient_stream), owner, changes, now)
                    .map_err(|e| anyhow!("updating seeded patient {p}: {e:?}"))?,
            );
            uow.stage(
                &DeviceEvent::stream_id(device_id),
                ExpectedVersion::NoStream,
                &device_stream,
            );
            uow.stage(
                &PatientEvent::stream_id(patient_id),
                ExpectedVersion::NoStream,
                &patient_stream,
            );
            seeded.push((patient_id, owner));
        }
        uow.commit::<()>().await?;
    }

    let mut free_devices = Vec::with_capacity(free);
    for chunk in (0..free).collect::<Vec<_>>().chunks(4 * SEED_BATCH) {
        let mut uow = store.begin(EventMetadata::default()).await?;
        for &n in chunk {
            let device_id = next_id(uow.conn(), "device_id_seq").await?;
            uow.stage(
                &DeviceEvent::stream_id(device_id),
                ExpectedVersion::NoStream,
                &device_events(device_id, 'F', n)?,
            );
            free_devices.push(serial_of('F', n));
        }
        uow.commit::<()>().await?;
    }
    sqlx::raw_sql("ANALYZE").execute(&side.pool).await?;
    side.accounts = Arc::new(ids);
    side.patients = Arc::new(seeded);
    side.free_devices = Arc::new(free_devices);
    Ok(())
}

/// The sealed log holds sealed personal fields and the plain one none, and the read models
/// hold the same plaintext on both sides.
async fn check_sealing(plain: &Side, sealed: &Side) -> anyhow::Result<()> {
    const SQL: &str = "SELECT count(*) FILTER (WHERE data::text LIKE '%\"$sealed\"%'), count(*) \
                       FROM events WHERE category IN ('account', 'patient')";
    const READ_MODEL: &str =
        "SELECT (SELECT count(*) FROM accounts WHERE email LIKE 'seed-%@example.com') \
                              + (SELECT count(*) FROM patients WHERE last_name LIKE 'bench %')";
    let mut line = String::from("log check:");
    for side in [plain, sealed] {
        let (with_sealed, total): (i64, i64) = sqlx::query_as(SQL).fetch_one(&side.pool).await?;
        let readable: i64 = sqlx::query_scalar(READ_MODEL).fetch_one(&side.pool).await?;
        line.push_str(&format!(
            " {} log {with_sealed} of {total} account/patient events carry sealed fields, {readable} read-model rows in plaintext;",
            side.label
        ));
        let expected = (side.accounts.len() + side.patients.len()) as i64;
        anyhow::ensure!(
            readable == expected,
            "{} read models: {readable} of {expected} rows",
            side.label
        );
    }
    println!("{}", line.trim_end_matches(';'));
    const SIZES: &str = "SELECT event_type, avg(pg_column_size(data))::float8 FROM events \
                         WHERE category IN ('account', 'patient') GROUP BY event_type ORDER BY event_type";
    let plain_sizes: Vec<(String, f64)> = sqlx::query_as(SIZES).fetch_all(&plain.pool).await?;
    let sealed_sizes: HashMap<String, f64> = sqlx::query_as(SIZES)
        .fetch_all(&sealed.pool)
        .await?
        .into_iter()
        .collect();
    let sizes: Vec<String> = plain_sizes
        .iter()
        .map(|(event_type, bytes)| {
            let sealed = sealed_sizes.get(event_type).copied().unwrap_or_default();
            format!("{event_type} {bytes:.0} → {sealed:.0}")
        })
        .collect();
    println!(
        "payload bytes (pg_column_size of data, mean), plain → sealed: {}",
        sizes.join(", ")
    );
    let (plain_sealed, _): (i64, i64) = sqlx::query_as(SQL).fetch_one(&plain.pool).await?;
    let (sealed_sealed, _): (i64, i64) = sqlx::query_as(SQL).fetch_one(&sealed.pool).await?;
    anyhow::ensure!(
        plain_sealed == 0 && sealed_sealed > 0,
        "the plain log must hold no sealed field and the sealed one some"
    );
    Ok(())
}

// --- the commands, as the HTTP handlers call them.

async fn command(
    side: &Side,
    workload: Workload,
    writers: usize,
    w: usize,
    i: u64,
) -> anyhow::Result<()> {
    let store = &side.store;
    let n = side.serial.fetch_add(1, Ordering::Relaxed);
    if side.probe {
        return probe_command(side, workload, writers, w, i, n).await;
    }
    match workload {
        Workload::ProfileChange => {
            let account = own_share(&side.accounts, writers, w, i);
            let changes = ProfileChanges {
                full_name: Some(format!("Changed Name {n}")),
                ..Default::default()
            };
            fleetstream::accounts::change(store, EventMetadata::default(), account, |a| {
                account_domain::decide_change_profile(a, changes.clone(), Utc::now())
            })
            .await
            .map_err(|e| anyhow!("profile change of account {account}: {e}"))?;
        }
        Workload::Register => register_prehashed(side, n).await?,
        Workload::PatientCreate => {
            let k = side.next_free.fetch_add(1, Ordering::Relaxed);
            let Some((serial_code, mac_id)) = side.free_devices.get(k) else {
                bail!("out of free devices; seed more (--creates-per-phase)");
            };
            let caller = own_share(&side.accounts, writers, w, i);
            let cmd = CreateRealUser {
                profile: PatientProfile {
                    first_name: format!("new{n}"),
                    last_name: "bench".into(),
                    birthdate: "20010203".into(),
                    gender: "M".into(),
                },
                serial_code: serial_code.clone(),
                mac_id: mac_id.clone(),
                unique_id: None,
            };
            service::create_real_user(store, &EventMetadata::default(), caller, &cmd)
                .await
                .map_err(|e| anyhow!("create_real_user: {e:?}"))?;
        }
        Workload::PatientUpdate => {
            let (patient, owner) = own_share(&side.patients, writers, w, i);
            let changes = PatientChanges {
                first_name: Some(format!("upd{n}")),
                ..Default::default()
            };
            service::update_patient(store, EventMetadata::default(), owner, patient, changes)
                .await
                .map_err(|e| anyhow!("update_patient {patient}: {e:?}"))?;
        }
        Workload::SyncPush => {
            let account_id = own_share(&side.accounts, writers, w, i);
            sync_push(store, account_id, n).await?;
        }
    }
    Ok(())
}

/// Item `i` of writer `w`'s share (`index % writers == w`): writers never share a stream.
fn own_share<T: Copy>(items: &[T], writers: usize, w: usize, i: u64) -> T {
    let share = (items.len() / writers).max(1);
    items[(w + writers * (i as usize % share)) % items.len()]
}

/// `accounts::register` without its argon2 hash (computed once by the caller): next id,
/// decide, stage, commit, exactly as the function runs them.
async fn register_prehashed(side: &Side, n: u64) -> anyhow::Result<()> {
    let mut uow = side.store.begin(EventMetadata::default()).await?;
    let account_id = next_id(uow.conn(), "account_id_seq").await?;
    let events = account_domain::decide_register(
        &Account::default(),
        account_domain::RegisterAccount {
            account_id,
            role: Role::User,
            password_hash: side.password_hash.to_string(),
            profile: AccountProfile {
                email: format!("new-{n}@example.com"),
                full_name: Some(format!("New Person {n}")),
                birthdate: Some("19851224".into()),
                gender: Some("M".into()),
                ..Default::default()
            },
            now: Utc::now(),
        },
    )
    .map_err(|e| anyhow!("registering: {e:?}"))?;
    let stream_id = AccountEvent::stream_id(account_id);
    if side.probe {
        create_key_probe(uow.conn(), &stream_id).await?;
    }
    uow.stage(&stream_id, ExpectedVersion::NoStream, &events);
    uow.commit::<AccountError>()
        .await
        .map_err(|e| anyhow!("registering: {e}"))?;
    Ok(())
}

/// A command of the plain store with the statement the sealed store adds, run through the
/// unit of work's connection: `EventStore::execute`'s steps (load, decide, stage, commit)
/// with the key fetch after the load, or registration with the key creation.
async fn probe_command(
    side: &Side,
    workload: Workload,
    writers: usize,
    w: usize,
    i: u64,
    n: u64,
) -> anyhow::Result<()> {
    let store = &side.store;
    match workload {
        Workload::ProfileChange => {
            let account = own_share(&side.accounts, writers, w, i);
            let stream_id = AccountEvent::stream_id(account);
            let mut uow = store.begin(EventMetadata::default()).await?;
            let (state, version) = uow.load::<Account>(&stream_id).await?;
            fetch_key_probe(uow.conn(), side, &stream_id).await?;
            let changes = ProfileChanges {
                full_name: Some(format!("Changed Name {n}")),
                ..Default::default()
            };
            let events = account_domain::decide_change_profile(&state, changes, Utc::now())
                .map_err(|e| anyhow!("profile change: {e:?}"))?;
            uow.stage(&stream_id, ExpectedVersion::from_loaded(version), &events);
            uow.commit::<AccountError>()
                .await
                .map_err(|e| anyhow!("profile change: {e}"))?;
        }
        Workload::PatientUpdate => {
            let (patient, owner) = own_share(&side.patients, writers, w, i);
            let stream_id = PatientEvent::stream_id(patient);
            let mut uow = store.begin(EventMetadata::default()).await?;
            let (state, version) = uow.load::<Patient>(&stream_id).await?;
            fetch_key_probe(uow.conn(), side, &stream_id).await?;
            let changes = PatientChanges {
                first_name: Some(format!("upd{n}")),
                ..Default::default()
            };
            let events = patients::decide_update(&state, owner, changes, Utc::now())
                .map_err(|e| anyhow!("update patient: {e:?}"))?;
            uow.stage(&stream_id, ExpectedVersion::from_loaded(version), &events);
            uow.commit::<()>()
                .await
                .map_err(|e| anyhow!("update patient: {e}"))?;
        }
        Workload::Register => register_prehashed(side, n).await?,
        other => bail!("no probe for {other:?}"),
    }
    Ok(())
}

/// The statement a sealed load adds: the data keys of the sealed fields it met.
async fn fetch_key_probe(
    conn: &mut sqlx::PgConnection,
    side: &Side,
    stream_id: &str,
) -> anyhow::Result<()> {
    let key_id = side
        .probe_keys
        .get(stream_id)
        .copied()
        .with_context(|| format!("no stand-in key for {stream_id}"))?;
    let rows: Vec<(String, Uuid, Option<Vec<u8>>)> =
        sqlx::query_as(include_str!("../../../events/sql/subject_keys_fetch.sql"))
            .bind(vec![key_id])
            .fetch_all(conn)
            .await?;
    anyhow::ensure!(
        rows.len() == 1,
        "the stand-in key of {stream_id} is missing"
    );
    Ok(())
}

/// Fills the plain database's `subject_keys` as the sealed one's is (a key per seeded
/// account and patient, random bytes for the wrapped key) and returns them by subject; then
/// ANALYZE, as after seeding.
async fn stand_in_keys(pool: &PgPool) -> anyhow::Result<HashMap<String, Uuid>> {
    let keys: Vec<(String, Uuid)> = sqlx::query_as(
        "INSERT INTO subject_keys (key_id, subject, wrapped_key) \
         SELECT gen_random_uuid(), stream_id, gen_random_uuid()::text::bytea \
         FROM (SELECT DISTINCT stream_id FROM events WHERE category IN ('account', 'patient')) s \
         RETURNING subject, key_id",
    )
    .fetch_all(pool)
    .await?;
    sqlx::raw_sql("ANALYZE subject_keys").execute(pool).await?;
    Ok(keys.into_iter().collect())
}

/// The statement a sealed append of a new subject adds: its key created.
async fn create_key_probe(conn: &mut sqlx::PgConnection, subject: &str) -> anyhow::Result<()> {
    let wrapped: Vec<u8> = (0..72).map(|_| rand::random::<u8>()).collect();
    let rows: Vec<(String, Uuid, Option<Vec<u8>>)> =
        sqlx::query_as(include_str!("../../../events/sql/subject_keys_ensure.sql"))
            .bind(vec![subject.to_owned()])
            .bind(vec![Uuid::now_v7()])
            .bind(vec![wrapped])
            .fetch_all(conn)
            .await?;
    anyhow::ensure!(rows.len() == 1, "the probe's key was not created");
    Ok(())
}

async fn sync_push(store: &EventStore, account_id: i64, n: u64) -> anyhow::Result<()> {
    let samples = (0..PUSH_SAMPLES)
        .map(|i| SensorSample {
            sensor_type: ["accelerometer", "gyroscope", "gps"][i % 3].to_owned(),
            timestamp: 1_699_876_543_210 + i as i64,
            data: serde_json::json!({"x": 0.1 + i as f64, "y": 0.2, "z": 9.8}),
        })
        .collect();
    crate::sync::push(store, account_id, &format!("privacy-{n}"), samples).await
}

// --- measuring.

#[derive(Clone, Copy, Default)]
struct Rate {
    per_sec: f64,
    p99: Duration,
    /// CPU per command of this process (the commands' own work: encoding, sealing, opening,
    /// the driver) and of the side's Postgres backends (`None` when their /proc is not ours
    /// to read, e.g. a remote server).
    client_cpu: Duration,
    server_cpu: Option<Duration>,
}

#[derive(Clone, Copy)]
struct Round {
    baseline: Rate,
    measured: Rate,
}

impl Round {
    fn ratio(&self) -> f64 {
        self.measured.per_sec / self.baseline.per_sec
    }
}

/// `writers` concurrent loops of the command for one phase (patient creation stops early after
/// `limit` commands: each takes a seeded device); commands per second and p99 latency.
async fn measure(
    side: &Side,
    workload: Workload,
    writers: usize,
    phase: Duration,
    limit: usize,
) -> anyhow::Result<Rate> {
    let limited = workload == Workload::PatientCreate;
    let started_ops = Arc::new(AtomicUsize::new(0));
    let before = CpuUse::now(&side.pool).await?;
    let (ops, mut rate) = run_writers(writers, phase, {
        let side = side.clone();
        move |w, i| {
            let (side, started_ops) = (side.clone(), started_ops.clone());
            async move {
                if limited && started_ops.fetch_add(1, Ordering::Relaxed) >= limit {
                    return Ok(false);
                }
                command(&side, workload, writers, w, i).await?;
                Ok(true)
            }
        }
    })
    .await?;
    let after = CpuUse::now(&side.pool).await?;
    let ops = ops.max(1) as u32;
    rate.client_cpu = after.process.saturating_sub(before.process) / ops;
    rate.server_cpu = after.backends_since(&before).map(|cpu| cpu / ops);
    Ok(rate)
}

/// CPU used so far by this process and by each backend of a database.
struct CpuUse {
    process: Duration,
    /// Backend pid → CPU, from /proc (so only for a server on this host).
    backends: Option<HashMap<i32, Duration>>,
}

impl CpuUse {
    async fn now(pool: &PgPool) -> anyhow::Result<Self> {
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
             AND backend_type = 'client backend'",
        )
        .fetch_all(pool)
        .await?;
        let backends: HashMap<i32, Duration> = pids
            .into_iter()
            .filter_map(|pid| Some((pid, proc_cpu(pid)?)))
            .collect();
        Ok(Self {
            process: process_cpu(),
            backends: (!backends.is_empty()).then_some(backends),
        })
    }

    /// CPU the backends used since `before` (a backend that connected since counts whole).
    fn backends_since(&self, before: &CpuUse) -> Option<Duration> {
        let (now, then) = (self.backends.as_ref()?, before.backends.as_ref()?);
        Some(
            now.iter()
                .map(|(pid, cpu)| cpu.saturating_sub(then.get(pid).copied().unwrap_or_default()))
                .sum(),
        )
    }
}

/// User + system CPU of this process.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// User + system CPU of process `pid` (utime and stime of /proc/<pid>/stat, in clock ticks).
fn proc_cpu(pid: i32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends with the last ')': state is field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some(Duration::from_micros(ticks * 1_000_000 / per_sec))
}

/// Runs `op` in `writers` loops until `phase` is over or it returns `false`; the commands run
/// and their rate.
async fn run_writers<F, Fut>(
    writers: usize,
    phase: Duration,
    op: F,
) -> anyhow::Result<(usize, Rate)>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<bool>> + Send,
{
    let loops = closed_loop::run(writers, phase, op).await?;
    Ok((
        loops.commands,
        Rate {
            per_sec: loops.per_sec,
            p99: loops.p99,
            ..Rate::default()
        },
    ))
}

fn ratios(rounds: &[Round]) -> String {
    rounds
        .iter()
        .map(|r| format!("{:.2}", r.ratio()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn report(workload: Workload, writers: usize, mut rounds: Vec<Round>) {
    rounds.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    let m = rounds[rounds.len() / 2];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  {:<35} {writers:>7} {:>9.0} {:>8.1} {:>9.0} {:>8.1} {:>7.2}×  {:>16} {:>16}  {}",
        workload.label(),
        m.baseline.per_sec,
        ms(m.baseline.p99),
        m.measured.per_sec,
        ms(m.measured.p99),
        m.ratio(),
        cpu_per_op(rounds.iter().map(|r| r.baseline)),
        cpu_per_op(rounds.iter().map(|r| r.measured)),
        ratios(&rounds)
    );
}

/// Median CPU µs per command over the rounds: this process + the side's Postgres backends.
fn cpu_per_op(rates: impl Iterator<Item = Rate>) -> String {
    let rates: Vec<Rate> = rates.collect();
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_micros()
    };
    let client = median(rates.iter().map(|r| r.client_cpu).collect());
    match rates
        .iter()
        .map(|r| r.server_cpu)
        .collect::<Option<Vec<_>>>()
    {
        Some(server) => format!("{client} + {}", median(server)),
        None => format!("{client} + n/a"),
    }
}

// --- rebuilds.

async fn rebuild_rounds(plain: &Side, sealed: &Side, options: &Options) -> anyhow::Result<()> {
    let projections = fleetstream_projections::read_models::all();
    println!(
        "rebuild (events/s, batches of {REBUILD_BATCH}) of the seeded log: sealed log opened with the keyring vs plain log, median round by sealed/plain"
    );
    for name in ["accounts", "patients"] {
        let projection = projections
            .iter()
            .find(|p| p.name() == name)
            .with_context(|| format!("no read model {name}"))?;
        // Warm both (caches, statements).
        for side in [plain, sealed] {
            rebuild_rate(side, projection.as_ref()).await?;
        }
        let mut rounds = Vec::with_capacity(options.rounds);
        let mut events = 0;
        for round in 0..options.rounds {
            let order = if round % 2 == 0 {
                [plain, sealed]
            } else {
                [sealed, plain]
            };
            let mut rates = HashMap::new();
            for side in order {
                let (rate, applied) = rebuild_rate(side, projection.as_ref()).await?;
                events = applied;
                rates.insert(side.label, rate);
            }
            rounds.push(Round {
                baseline: rates["plain"],
                measured: rates["sealed"],
            });
        }
        rounds.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
        let m = rounds[rounds.len() / 2];
        println!(
            "  {name:<9} {events:>6} events  plain {:>8.0} events/s  sealed {:>8.0} events/s  sealed/plain {:.2}×  rounds {}",
            m.baseline.per_sec,
            m.measured.per_sec,
            m.ratio(),
            ratios(&rounds)
        );
    }
    Ok(())
}

/// One rebuild; events/s and the events applied. The read model must come back whole.
async fn rebuild_rate(side: &Side, projection: &dyn Projection) -> anyhow::Result<(Rate, u64)> {
    let started = Instant::now();
    let applied = fleetstream_projections::rebuild(
        &side.pool,
        projection,
        side.keyring.as_ref(),
        REBUILD_BATCH,
        |_| {},
    )
    .await?;
    let took = started.elapsed();
    let (rows, expected): (i64, usize) = match projection.name() {
        "accounts" => (
            sqlx::query_scalar(
                "SELECT count(*) FROM accounts WHERE email LIKE 'seed-%@example.com'",
            )
            .fetch_one(&side.pool)
            .await?,
            side.accounts.len(),
        ),
        _ => (
            sqlx::query_scalar("SELECT count(*) FROM patients WHERE last_name LIKE 'bench %'")
                .fetch_one(&side.pool)
                .await?,
            side.patients.len(),
        ),
    };
    anyhow::ensure!(
        rows as usize == expected,
        "{} rebuild of {} left {rows} of {expected} seeded rows readable",
        side.label,
        projection.name()
    );
    let rate = Rate {
        per_sec: applied as f64 / took.as_secs_f64(),
        ..Rate::default()
    };
    Ok((rate, applied))
}

// --- round trips per command, counted and timed on the wire.

/// One round trip a client of a [`wire_proxy`] made: a `Sync` of the extended protocol or a
/// simple `Query`, named by its statement, from when the proxy passed it on to when the
/// server's `ReadyForQuery` came back through it.
struct Exchange {
    label: String,
    sent: Instant,
    took: Duration,
}

/// What the proxy saw while recording.
#[derive(Default)]
struct Wire {
    recording: AtomicBool,
    exchanges: Mutex<Vec<Exchange>>,
}

impl Wire {
    fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.exchanges.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A TCP proxy to `upstream` that reads the Postgres protocol both ways (passing every byte
/// on as it is); returns its port.
async fn wire_proxy(upstream: String, wire: Arc<Wire>) -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (upstream, wire) = (upstream.clone(), wire.clone());
            tokio::spawn(async move {
                if let Err(err) = relay(client, &upstream, wire).await {
                    eprintln!("wire proxy: {err}");
                }
            });
        }
    });
    Ok(port)
}

fn cstr(bytes: &[u8]) -> (String, &[u8]) {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let rest = bytes.get(end + 1..).unwrap_or_default();
    (String::from_utf8_lossy(&bytes[..end]).into_owned(), rest)
}

/// A statement as one short line: comments dropped, whitespace collapsed.
fn short(sql: &str) -> String {
    let text: Vec<&str> = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .flat_map(str::split_whitespace)
        .collect();
    let text = text.join(" ");
    match text.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

/// One typed protocol message: tag, then the whole message as sent (tag and length included).
async fn read_message(from: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<(u8, Vec<u8>)> {
    let tag = from.read_u8().await?;
    let len = from.read_u32().await? as usize;
    let mut message = Vec::with_capacity(len + 1);
    message.push(tag);
    message.extend_from_slice(&(len as u32).to_be_bytes());
    message.resize(len + 1, 0);
    from.read_exact(&mut message[5..]).await?;
    Ok((tag, message))
}

/// Round trips sent and not answered yet, oldest first: (label, sent, recorded).
type InFlight = Arc<Mutex<std::collections::VecDeque<(String, Instant, bool)>>>;

async fn relay(client: TcpStream, upstream: &str, wire: Arc<Wire>) -> anyhow::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let in_flight = InFlight::default();
    tokio::spawn({
        let (in_flight, wire) = (in_flight.clone(), wire.clone());
        async move {
            while let Ok((tag, message)) = read_message(&mut from_server).await {
                if to_client.write_all(&message).await.is_err() {
                    break;
                }
                if tag != b'Z' {
                    continue;
                }
                // The startup's ReadyForQuery answers no Sync.
                let answered = in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pop_front();
                if let Some((label, sent, true)) = answered {
                    wire.exchanges
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Exchange {
                            label,
                            sent,
                            took: sent.elapsed(),
                        });
                }
            }
        }
    });
    // The startup message has no type byte.
    let len = from_client.read_u32().await? as usize;
    let mut body = vec![0; len.saturating_sub(4)];
    from_client.read_exact(&mut body).await?;
    to_server.write_u32(len as u32).await?;
    to_server.write_all(&body).await?;
    let mut statements: HashMap<String, String> = HashMap::new();
    let (mut bound, mut parsed): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    loop {
        let Ok((tag, message)) = read_message(&mut from_client).await else {
            return Ok(());
        };
        let body = &message[5..];
        let mut exchange = None;
        match tag {
            b'P' => {
                let (name, rest) = cstr(body);
                let (sql, _) = cstr(rest);
                parsed.push(short(&sql));
                statements.insert(name, sql);
            }
            b'B' => {
                let (_portal, rest) = cstr(body);
                let (name, _) = cstr(rest);
                bound.push(statements.get(&name).map(|s| short(s)).unwrap_or(name));
            }
            b'Q' => exchange = Some(short(&cstr(body).0)),
            b'S' => {
                exchange = Some(if !bound.is_empty() {
                    bound.join(" + ")
                } else if !parsed.is_empty() {
                    format!("(prepare) {}", parsed.join(" + "))
                } else {
                    PING.to_owned()
                });
                bound.clear();
                parsed.clear();
            }
            _ => {}
        }
        if let Some(label) = exchange {
            let recording = wire.recording.load(Ordering::Relaxed);
            in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back((label, Instant::now(), recording));
        }
        to_server.write_all(&message).await?;
    }
}

/// Round trips and times of one kind of command on one side, over the traced commands.
#[derive(Default)]
struct Traced {
    commands: u32,
    wall: Duration,
    /// Within the commands: time waiting on round trips, statements and pings.
    on_wire: Duration,
    statements: usize,
    pings_inside: usize,
    /// Pings after the command returned (connections going back to the pool) and the NOTIFY's.
    pings_after: usize,
    /// Statement → (round trips, time).
    by_statement: HashMap<String, (u32, Duration)>,
    /// The statements of the last command, in order.
    last: Vec<String>,
}

impl Traced {
    fn add(&mut self, began: Instant, wall: Duration, exchanges: Vec<Exchange>) {
        let ended = began + wall;
        self.commands += 1;
        self.wall += wall;
        self.last.clear();
        for exchange in exchanges {
            let inside = exchange.sent < ended;
            if exchange.label == PING {
                if inside {
                    self.pings_inside += 1;
                    self.on_wire += exchange.took;
                } else {
                    self.pings_after += 1;
                }
                continue;
            }
            if exchange.label.contains("pg_notify") {
                continue;
            }
            if inside {
                self.on_wire += exchange.took;
            }
            self.statements += 1;
            let entry = self.by_statement.entry(exchange.label.clone()).or_default();
            entry.0 += 1;
            entry.1 += exchange.took;
            self.last.push(exchange.label);
        }
    }

    fn mean_ms(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1e3 / self.commands.max(1) as f64
    }

    fn summary(&self) -> String {
        let n = self.commands.max(1) as f64;
        format!(
            "{:.2} ms = {:.2} waiting on {:.2} statements + {:.2} pings, {:.2} in the process ({:.2} pings after)",
            self.mean_ms(self.wall),
            self.mean_ms(self.on_wire),
            self.statements as f64 / n,
            self.pings_inside as f64 / n,
            self.mean_ms(self.wall.saturating_sub(self.on_wire)),
            self.pings_after as f64 / n,
        )
    }

    /// Mean ms of one round trip of `label` and how many a command makes, or "-".
    fn statement(&self, label: &str) -> String {
        match self.by_statement.get(label) {
            Some((count, took)) => format!(
                "{:.3} ×{:.0}",
                took.as_secs_f64() * 1e3 / *count as f64,
                *count as f64 / self.commands.max(1) as f64
            ),
            None => "-".to_owned(),
        }
    }
}

/// Runs `TRACED` commands of each kind one at a time on each side through a [`wire_proxy`]
/// (after a warm-up, so statements are prepared already) and prints what a command waits on:
/// each statement's round trip as the proxy timed it, the pool's pings, the time in between.
async fn round_trips(database_url: &str, plain: &Side, sealed: &Side) -> anyhow::Result<()> {
    let options = PgConnectOptions::from_str(database_url)?;
    let upstream = format!("{}:{}", options.get_host(), options.get_port());
    let wire = Arc::new(Wire::default());
    let port = wire_proxy(upstream, wire.clone()).await?;
    let mut sides = Vec::new();
    for (side, name) in [(plain, PLAIN_DB), (sealed, SEALED_DB)] {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect_with(
                options
                    .clone()
                    .host("127.0.0.1")
                    .port(port)
                    .database(name)
                    .ssl_mode(PgSslMode::Disable),
            )
            .await?;
        let mut through = side.clone();
        through.store = store_on(pool.clone(), side.keyring.clone());
        through.pool = pool;
        sides.push(through);
    }
    println!(
        "one command at a time through a proxy timing each round trip (mean of {TRACED} per side): the command's wall time = waiting on statements and on sqlx's pool pings (one when it hands out a connection; one more after, when it takes it back) + time in the process between them; the log's asynchronous NOTIFY left out"
    );
    for workload in Workload::ALL {
        let mut traced = Vec::new();
        for side in &sides {
            for i in 0..3 {
                command(side, workload, 1, 0, i).await?;
            }
            tokio::time::sleep(SETTLE).await;
            let mut t = Traced::default();
            for i in 0..TRACED as u64 {
                wire.take();
                wire.recording.store(true, Ordering::Relaxed);
                let began = Instant::now();
                command(side, workload, 1, 0, 3 + i).await?;
                let wall = began.elapsed();
                // Connections going back to the pool ping after the command returns.
                tokio::time::sleep(SETTLE).await;
                wire.recording.store(false, Ordering::Relaxed);
                t.add(began, wall, wire.take());
            }
            traced.push(t);
        }
        let [plain, sealed] = &traced[..] else {
            unreachable!("two sides")
        };
        println!("  {}", workload.label());
        println!("    plain   {}", plain.summary());
        println!("    sealed  {}", sealed.summary());
        println!("    {:>14} {:>14}  statement", "plain ms", "sealed ms");
        let mut labels: Vec<&String> = Vec::new();
        for label in sealed.last.iter().chain(&plain.last) {
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
        for label in labels {
            println!(
                "    {:>14} {:>14}  {label}",
                plain.statement(label),
                sealed.statement(label)
            );
        }
    }
    for side in sides {
        side.pool.close().await;
    }
    Ok(())
}

// --- the in-process work of sealing and opening alone.

/// Runs `$body` `$n` times, five times over; the median µs per run.
macro_rules! per_call {
    ($n:expr, $body:expr) => {{
        let mut runs = Vec::with_capacity(5);
        for _ in 0..5 {
            let started = Instant::now();
            for _ in 0..$n {
                $body;
            }
            runs.push(started.elapsed().as_secs_f64() * 1e6 / $n as f64);
        }
        runs.sort_by(f64::total_cmp);
        runs[2]
    }};
}

/// What opening a stream and sealing an append cost in this process, with the stream's key
/// already in the unit of work's cache (so no statement is sent): the CPU part of a sealed
/// command, apart from its extra round trip.
async fn crypto_costs(sealed: &Side) -> anyhow::Result<()> {
    const N: u32 = 400;
    let keyring = sealed
        .keyring
        .clone()
        .context("the sealed side has a keyring")?;
    let keyring = &keyring;
    let mut conn = sealed.pool.acquire().await?;
    let conn = &mut *conn;
    println!(
        "in-process CPU of sealing and opening alone (key cached in the unit of work, no statement sent; median of 5 × {N}, copying the input subtracted):"
    );
    let account = sealed.accounts[0];
    let (patient, owner) = sealed.patients[0];
    let now = Utc::now();
    let registered = account_domain::decide_register(
        &Account::default(),
        account_domain::RegisterAccount {
            account_id: account,
            role: Role::User,
            password_hash: sealed.password_hash.to_string(),
            profile: seeded_profile(0),
            now,
        },
    )
    .map_err(|e| anyhow!("{e:?}"))?;
    let changed = vec![AccountEvent::ProfileChanged {
        account_id: account,
        changes: ProfileChanges {
            full_name: Some("Changed Name".into()),
            ..Default::default()
        },
        changed_at: now,
    }];
    let created = patients::decide_create(
        &Patient::default(),
        CreatePatient {
            patient_id: patient,
            root_user_id: owner,
            profile: PatientProfile {
                first_name: "new".into(),
                last_name: "bench".into(),
                birthdate: "20010203".into(),
                gender: "M".into(),
            },
            now,
        },
    )
    .map_err(|e| anyhow!("{e:?}"))?;
    let updated = vec![PatientEvent::PatientUpdated {
        patient_id: patient,
        changes: PatientChanges {
            first_name: Some("upd".into()),
            ..Default::default()
        },
        updated_at: now,
    }];
    let streams = [
        (
            "account",
            AccountEvent::stream_id(account),
            vec![
                (
                    "seal AccountRegistered",
                    appends_of(&AccountEvent::stream_id(account), &registered),
                ),
                (
                    "seal ProfileChanged",
                    appends_of(&AccountEvent::stream_id(account), &changed),
                ),
            ],
        ),
        (
            "patient",
            PatientEvent::stream_id(patient),
            vec![
                (
                    "seal PatientCreated",
                    appends_of(&PatientEvent::stream_id(patient), &created),
                ),
                (
                    "seal PatientUpdated",
                    appends_of(&PatientEvent::stream_id(patient), &updated),
                ),
            ],
        ),
    ];
    for (category, stream_id, appends) in streams {
        let rows = fleetstream_events::store::load_rows(conn, &stream_id).await?;
        let sealed_fields = rows
            .iter()
            .map(|r| r.3.to_string().matches("\"$sealed\"").count())
            .sum::<usize>();
        let mut cache = privacy::KeyCache::default();
        open_rows(conn, keyring, &mut cache, category, rows.clone()).await?;
        let copy = per_call!(N, std::hint::black_box(rows.clone()));
        let open = per_call!(
            N,
            open_rows(conn, keyring, &mut cache, category, rows.clone()).await?
        );
        let label = format!(
            "open a {category} stream of {} events ({sealed_fields} sealed fields)",
            rows.len()
        );
        println!("  {label:<58} {:>8.1} µs", open - copy);
        for (label, append) in appends {
            let copy = per_call!(N, std::hint::black_box(vec![append.clone()]));
            let seal = per_call!(N, {
                let mut streams = vec![append.clone()];
                privacy::seal(conn, keyring, &mut cache, &mut streams).await?;
                std::hint::black_box(streams)
            });
            println!("  {label:<58} {:>8.1} µs", seal - copy);
        }
    }
    let subject = AccountEvent::stream_id(account);
    let (_, wrapped) = keyring.new_data_key(&subject);
    let create = per_call!(N, std::hint::black_box(keyring.new_data_key(&subject)));
    let unwrap = per_call!(
        N,
        std::hint::black_box(keyring.unwrap_key(&subject, &wrapped))
    );
    println!(
        "  {:<58} {create:>8.1} µs",
        "create and wrap a data key (registration, patient create)"
    );
    println!(
        "  {:<58} {unwrap:>8.1} µs",
        "unwrap a data key (once per loaded stream)"
    );
    Ok(())
}

fn appends_of<E: DomainEvent>(stream_id: &str, events: &[E]) -> StreamAppend {
    let metadata = EventMetadata::default();
    StreamAppend {
        stream_id: stream_id.to_owned(),
        expected: ExpectedVersion::Any,
        events: events
            .iter()
            .map(|e| NewEvent::from_domain(e, &metadata))
            .collect(),
    }
}

/// Opens loaded rows as `UnitOfWork::load` does.
async fn open_rows(
    conn: &mut sqlx::PgConnection,
    keyring: &Keyring,
    cache: &mut privacy::KeyCache,
    category: &str,
    mut rows: Vec<fleetstream_events::store::LoadedRow>,
) -> anyhow::Result<()> {
    let payloads = rows
        .iter_mut()
        .map(|(_, event_type, _, data)| (privacy::personal_paths(category, event_type), data));
    privacy::open_values(conn, Some(keyring), cache, payloads).await?;
    std::hint::black_box(rows);
    Ok(())
}
