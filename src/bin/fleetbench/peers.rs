//! `fleetbench peers` (cargo feature `peers`): fleetstream's single-event commands against
//! cqrs-es 0.5 + postgres-es 0.5 on the same Postgres, in alternating rounds, plus a raw
//! single-row INSERT+commit loop into a copy of `events` as the physical baseline.
//!
//! Each system gets its own database (`fleetbench_peers_<pid>` migrated by fleetstream,
//! `fleetbench_peers_es_<pid>` with postgres-es' documented `events` table) and its own pool.
//! Workloads: a command on a fresh aggregate (load finds nothing, decide one event, commit) and
//! a command on an existing stream of 10–100 events (seeded identically in both systems; each
//! writer cycles through its own share of the streams so writers never conflict). 1 and 16
//! writers. Every round measures raw, peer, fleetstream and fleetstream's transaction path (the
//! one commands whose events feed an inline projection take) back to back for one phase each;
//! the median round by fleetstream/peer is reported, with every round's ratios, and p99
//! command latencies.

use fleetstream::es::{Aggregate, EventStore};
use fleetstream_events::store::{self, ExpectedVersion, NewEvent, StreamAppend};
use fleetstream_events::{EventMetadata, StoredEvent};
use fleetstream_projections::{Mode, Projection, ProjectionError};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Alternating rounds per writer count and workload.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Length of one phase (one system, one writer count, one workload), milliseconds.
    #[arg(long, default_value_t = 2_000)]
    pub phase_ms: u64,
    /// Writer counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    pub writers: Vec<usize>,
    /// Skip the index-cost measurement.
    #[arg(long)]
    pub no_index_costs: bool,
}
/// Existing streams per system; writer `w` of `n` uses those with `index % n == w`.
const SEEDED_STREAMS: usize = 1_600;
const SEED_MIN: usize = 10;
const SEED_MAX: usize = 100;

// --- fleetstream's side: the aggregate `fleetbench append` uses.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum BenchEvent {
    Ticked { by: i64 },
}
fleetstream_events::domain_event!(BenchEvent, "peer", [Ticked]);

#[derive(Default, Clone)]
struct Ticks {
    total: i64,
}

impl Aggregate for Ticks {
    type Event = BenchEvent;
    fn evolve(&mut self, event: &BenchEvent) {
        let BenchEvent::Ticked { by } = event;
        self.total += by;
    }
}

// --- the peer's side: the same aggregate as a cqrs-es one.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum PeerEvent {
    Ticked { by: i64 },
}

impl cqrs_es::DomainEvent for PeerEvent {
    fn event_type(&self) -> String {
        "Ticked".to_owned()
    }
    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("never raised")]
struct PeerError;

#[derive(Default, Serialize, Deserialize)]
struct PeerTicks {
    total: i64,
}

impl cqrs_es::Aggregate for PeerTicks {
    const TYPE: &'static str = "Ticks";
    type Command = i64;
    type Event = PeerEvent;
    type Error = PeerError;
    type Services = ();

    async fn handle(
        &mut self,
        by: i64,
        _services: &(),
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), PeerError> {
        sink.write(PeerEvent::Ticked { by }, self).await;
        Ok(())
    }

    fn apply(&mut self, event: PeerEvent) {
        let PeerEvent::Ticked { by } = event;
        self.total += by;
    }
}

type PeerCqrs = postgres_es::PostgresCqrs<PeerTicks>;

/// An inline projection of the bench category that writes nothing: it sends the commands down
/// the transaction path (BEGIN, load, `append_events`, COMMIT) that every command whose events
/// feed an inline projection takes, so both paths are measured in the same run.
struct InlineNothing;

#[async_trait::async_trait]
impl Projection for InlineNothing {
    fn name(&self) -> &'static str {
        "inline_nothing"
    }
    fn categories(&self) -> &'static [&'static str] {
        &["peer"]
    }
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }
    fn mode(&self) -> Mode {
        Mode::Inline
    }
    async fn apply(
        &self,
        _conn: &mut sqlx::PgConnection,
        _events: &[StoredEvent],
    ) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// postgres-es' documented table (its `db/init.sql`, without the optional snapshots).
const PEER_SCHEMA: &str = "CREATE TABLE events (
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
)";

pub async fn run(database_url: &str, options: Options) -> anyhow::Result<()> {
    let admin_options = PgConnectOptions::from_str(database_url)
        .map_err(|err| anyhow::anyhow!("DATABASE_URL: {err}"))?;
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin_options.clone())
        .await?;
    let ours = format!("fleetbench_peers_{}", std::process::id());
    let theirs = format!("fleetbench_peers_es_{}", std::process::id());
    for name in [&ours, &theirs] {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
    }
    let result = run_in(
        admin_options.clone().database(&ours),
        admin_options.database(&theirs),
        &options,
    )
    .await;
    for name in [&ours, &theirs] {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await?;
    }
    result
}

/// Which streams a command goes to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Fresh,
    Existing,
}

impl Workload {
    fn label(self) -> &'static str {
        match self {
            Self::Fresh => "fresh aggregate",
            Self::Existing => "stream of 10–100 events",
        }
    }
}

/// Seeded stream `index`'s aggregate id (the same in both systems) and its seeded length.
fn seeded(index: usize) -> (String, usize) {
    (
        format!("s{index:05}"),
        SEED_MIN + (index * 37) % (SEED_MAX - SEED_MIN + 1),
    )
}

/// The aggregate id for command `i` of writer `w` of `writers`.
fn target(workload: Workload, writers: usize, w: usize, i: u64) -> String {
    match workload {
        Workload::Fresh => Uuid::now_v7().simple().to_string(),
        Workload::Existing => {
            let share = SEEDED_STREAMS / writers;
            seeded(w + writers * (i as usize % share)).0
        }
    }
}

async fn run_in(
    ours: PgConnectOptions,
    theirs: PgConnectOptions,
    options: &Options,
) -> anyhow::Result<()> {
    let phase = Duration::from_millis(options.phase_ms);
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .connect_with(ours)
        .await?;
    fleetstream::db::MIGRATOR.run(&pool).await?;
    sqlx::raw_sql("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
        .execute(&pool)
        .await?;
    let peer_pool = PgPoolOptions::new()
        .max_connections(20)
        .connect_with(theirs)
        .await?;
    sqlx::raw_sql(PEER_SCHEMA).execute(&peer_pool).await?;
    seed(&pool, &peer_pool).await?;

    let settings: (String, String, String) = sqlx::query_as(
        "SELECT current_setting('synchronous_commit'), current_setting('fsync'), version()",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "fleetbench peers — fleetstream vs cqrs-es 0.5 + postgres-es 0.5, synchronous_commit={} fsync={}, {phase:?} per phase, {} alternating rounds (raw, peer, fleetstream, its transaction path), median round by fleetstream/peer",
        settings.0, settings.1, options.rounds
    );
    println!("{}", settings.2);

    let store_ = EventStore::new(pool.clone(), Vec::new());
    let in_tx = EventStore::new(pool.clone(), vec![Arc::new(InlineNothing)]);
    let peer = Arc::new(postgres_es::postgres_cqrs::<PeerTicks>(
        peer_pool.clone(),
        Vec::new(),
        (),
    ));
    for &writers in &options.writers {
        for workload in [Workload::Fresh, Workload::Existing] {
            let mut rounds = Vec::with_capacity(options.rounds);
            for _ in 0..options.rounds {
                let raw = measure(phase, writers, {
                    let pool = pool.clone();
                    move |_, _| raw_single(pool.clone())
                })
                .await?;
                let theirs = measure(phase, writers, {
                    let peer = peer.clone();
                    move |w, i| peer_command(peer.clone(), target(workload, writers, w, i))
                })
                .await?;
                let fleet = measure(phase, writers, {
                    let store_ = store_.clone();
                    move |w, i| fleet_command(store_.clone(), target(workload, writers, w, i))
                })
                .await?;
                let fleet_tx = measure(phase, writers, {
                    let store_ = in_tx.clone();
                    move |w, i| fleet_command(store_.clone(), target(workload, writers, w, i))
                })
                .await?;
                rounds.push(Round {
                    raw,
                    theirs,
                    fleet,
                    fleet_tx,
                });
            }
            report(writers, workload, rounds);
        }
    }
    if !options.no_index_costs {
        index_costs(&pool, phase, options.rounds).await?;
    }
    let lengths: (i64, i64) = sqlx::query_as(
        "SELECT min(n), max(n) FROM (SELECT count(*) AS n FROM events WHERE category = 'peer' \
         AND stream_id LIKE 'peer-s%' GROUP BY stream_id) AS s",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "seeded streams ended with {}–{} events (all rounds' commands included)",
        lengths.0, lengths.1
    );
    pool.close().await;
    peer_pool.close().await;
    Ok(())
}

/// The same streams, with the same number of events, in both logs.
async fn seed(pool: &PgPool, peer_pool: &PgPool) -> anyhow::Result<()> {
    let metadata = EventMetadata::default();
    for chunk in (0..SEEDED_STREAMS).collect::<Vec<_>>().chunks(100) {
        let appends: Vec<StreamAppend> = chunk
            .iter()
            .map(|&index| {
                let (id, len) = seeded(index);
                StreamAppend {
                    stream_id: format!("peer-{id}"),
                    expected: ExpectedVersion::NoStream,
                    events: (0..len)
                        .map(|_| NewEvent::from_domain(&BenchEvent::Ticked { by: 1 }, &metadata))
                        .collect(),
                }
            })
            .collect();
        let mut tx = pool.begin().await?;
        store::append_owned(&mut tx, appends).await?;
        tx.commit().await?;
    }
    let (ids, lengths): (Vec<String>, Vec<i64>) = (0..SEEDED_STREAMS)
        .map(|index| {
            let (id, len) = seeded(index);
            (id, len as i64)
        })
        .unzip();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Ticks', s.id, g, 'Ticked', '1.0', '{\"Ticked\":{\"by\":1}}', '{}'
         FROM unnest($1::text[], $2::bigint[]) AS s(id, len), generate_series(1, s.len) AS g",
    )
    .bind(ids)
    .bind(lengths)
    .execute(peer_pool)
    .await?;
    sqlx::raw_sql("ANALYZE events").execute(pool).await?;
    sqlx::raw_sql("ANALYZE events").execute(peer_pool).await?;
    Ok(())
}

/// One phase of each: commands (or rows) per second and p99 latency.
#[derive(Clone, Copy)]
struct Rate {
    per_sec: f64,
    p99: Duration,
}

#[derive(Clone, Copy)]
struct Round {
    raw: Rate,
    theirs: Rate,
    fleet: Rate,
    /// The same commands down the transaction path (an inline projection reads them).
    fleet_tx: Rate,
}

impl Round {
    fn vs_peer(&self) -> f64 {
        self.fleet.per_sec / self.theirs.per_sec
    }
}

fn report(writers: usize, workload: Workload, mut rounds: Vec<Round>) {
    rounds.sort_by(|a, b| a.vs_peer().total_cmp(&b.vs_peer()));
    let all: Vec<String> = rounds
        .iter()
        .map(|r| format!("{:.2}", r.vs_peer()))
        .collect();
    let raw_ratios: Vec<String> = rounds
        .iter()
        .map(|r| format!("{:.2}", r.fleet.per_sec / r.raw.per_sec))
        .collect();
    let m = rounds[rounds.len() / 2];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{writers:>2} writer(s), {:<24} raw {:>7.0}/s p99 {:>5.1} ms | postgres-es {:>7.0}/s p99 {:>5.1} ms | fleetstream {:>7.0}/s p99 {:>5.1} ms | fleetstream = {:.2}× postgres-es (rounds {}), {:.2}× raw (rounds {})",
        workload.label(),
        m.raw.per_sec,
        ms(m.raw.p99),
        m.theirs.per_sec,
        ms(m.theirs.p99),
        m.fleet.per_sec,
        ms(m.fleet.p99),
        m.vs_peer(),
        all.join(" "),
        m.fleet.per_sec / m.raw.per_sec,
        raw_ratios.join(" "),
    );
    let tx_ratios: Vec<String> = rounds
        .iter()
        .map(|r| format!("{:.2}", r.fleet_tx.per_sec / r.theirs.per_sec))
        .collect();
    println!(
        "{:>38} transaction path (inline projection) {:>7.0}/s p99 {:>5.1} ms = {:.2}× postgres-es (rounds {})",
        "",
        m.fleet_tx.per_sec,
        ms(m.fleet_tx.p99),
        m.fleet_tx.per_sec / m.theirs.per_sec,
        tx_ratios.join(" "),
    );
}

/// Runs `writers` concurrent loops of `op` for one phase.
async fn measure<F, Fut>(phase: Duration, writers: usize, op: F) -> anyhow::Result<Rate>
where
    F: Fn(usize, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let loops = crate::closed_loop::run(writers, phase, move |w, i| {
        let command = op(w, i);
        async move { command.await.map(|()| true) }
    })
    .await?;
    Ok(Rate {
        per_sec: loops.per_sec,
        p99: loops.p99,
    })
}

async fn raw_single(pool: PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO raw_events (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
         VALUES ($1, 1, $2, 'Ticked', 1, $3, '{}')",
    )
    .bind(format!("raw-{}", Uuid::now_v7().simple()))
    .bind(Uuid::now_v7())
    .bind(serde_json::json!({ "by": 1 }))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn peer_command(peer: Arc<PeerCqrs>, id: String) -> anyhow::Result<()> {
    peer.execute(&id, 1)
        .await
        .map_err(|err| anyhow::anyhow!("postgres-es: {err}"))
}

async fn fleet_command(store_: EventStore, id: String) -> anyhow::Result<()> {
    store_
        .execute::<Ticks, std::convert::Infallible>(id, EventMetadata::default(), |_| {
            Ok(vec![BenchEvent::Ticked { by: 1 }])
        })
        .await
        .map_err(|err| anyhow::anyhow!("fleetstream: {err}"))?;
    Ok(())
}

/// The indexes of `events` (migration 0001), each a statement on a copy named `{t}`.
const INDEXES: [(&str, &str); 5] = [
    (
        "primary key (global_position)",
        "ALTER TABLE {t} ADD PRIMARY KEY (global_position)",
    ),
    ("unique event_id", "ALTER TABLE {t} ADD UNIQUE (event_id)"),
    (
        "unique (stream_id, stream_version)",
        "ALTER TABLE {t} ADD UNIQUE (stream_id, stream_version)",
    ),
    (
        "events_reader_idx",
        "CREATE INDEX ON {t} (transaction_id, global_position)",
    ),
    (
        "events_category_idx",
        "CREATE INDEX ON {t} (category, transaction_id, global_position)",
    ),
];

/// What each index of `events` costs a single-row INSERT+commit at 16 connections: copies of
/// the table (columns, defaults, the generated category) with all five indexes and with each
/// one left out, measured in alternating rounds; the median round is reported.
async fn index_costs(pool: &PgPool, phase: Duration, rounds: usize) -> anyhow::Result<()> {
    let variants: Vec<(String, String)> = (0..=INDEXES.len())
        .map(|left_out| {
            let name = format!("idx_events_{left_out}");
            let mut ddl = format!(
                "CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS INCLUDING GENERATED INCLUDING IDENTITY);"
            );
            for (i, (_, statement)) in INDEXES.iter().enumerate() {
                if i != left_out {
                    ddl.push_str(&statement.replace("{t}", &name));
                    ddl.push(';');
                }
            }
            (name, ddl)
        })
        .collect();
    for (_, ddl) in &variants {
        sqlx::raw_sql(ddl).execute(pool).await?;
    }
    let mut measured: Vec<Vec<f64>> = Vec::new();
    for _ in 0..rounds {
        let mut round = Vec::new();
        for (table, _) in &variants {
            let table = table.clone();
            let rate = measure(phase, 16, {
                let pool = pool.clone();
                move |_, _| insert_into(pool.clone(), table.clone())
            })
            .await?;
            round.push(rate.per_sec);
        }
        measured.push(round);
    }
    let all = INDEXES.len();
    println!("index costs: single-row INSERT+commit, 16 connections, into copies of events (median of {rounds} alternating rounds)");
    for (left_out, (label, _)) in INDEXES.iter().enumerate() {
        let mut ratios: Vec<f64> = measured.iter().map(|r| r[left_out] / r[all]).collect();
        ratios.sort_by(f64::total_cmp);
        let mut rates: Vec<f64> = measured.iter().map(|r| r[left_out]).collect();
        rates.sort_by(f64::total_cmp);
        println!(
            "  without {label:<36} {:>7.0} rows/s = {:.2}× all five (rounds {})",
            rates[rates.len() / 2],
            ratios[ratios.len() / 2],
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let mut rates: Vec<f64> = measured.iter().map(|r| r[all]).collect();
    rates.sort_by(f64::total_cmp);
    println!("  with all five {:>45.0} rows/s", rates[rates.len() / 2]);
    Ok(())
}

async fn insert_into(pool: PgPool, table: String) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "INSERT INTO {table} (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
         VALUES ($1, 1, $2, 'Ticked', 1, $3, '{{}}')"
    ))
    .bind(format!("peer-{}", Uuid::now_v7().simple()))
    .bind(Uuid::now_v7())
    .bind(serde_json::json!({ "by": 1 }))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}
