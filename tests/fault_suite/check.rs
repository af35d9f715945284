//! What a scenario checks after its fault: every acknowledged command is in the log and in its
//! read model, every reader of the log is at its end, and `FLEET_EVENTS` holds each event of the
//! log exactly once, in log order.

use super::load::{Ledger, SampleKey};
use fleetstream::relay::{RELAY_NAME, STREAM_NAME};
use futures::StreamExt;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Acknowledged commands missing from the log and from the read models.
#[derive(Debug, Default)]
pub struct Audit {
    pub acknowledged: u64,
    pub missing_from_log: Vec<String>,
    pub missing_from_read_model: Vec<String>,
}

impl Audit {
    pub fn lost(&self) -> usize {
        self.missing_from_log
            .len()
            .max(self.missing_from_read_model.len())
    }

    pub fn assert_nothing_lost(&self) {
        assert!(
            self.missing_from_log.is_empty() && self.missing_from_read_model.is_empty(),
            "acknowledged but lost: log {:?}, read model {:?}",
            &self.missing_from_log[..self.missing_from_log.len().min(10)],
            &self.missing_from_read_model[..self.missing_from_read_model.len().min(10)]
        );
    }
}

fn missing<T: std::hash::Hash + Eq + std::fmt::Debug>(
    want: impl IntoIterator<Item = T>,
    have: &HashSet<T>,
    kind: &str,
) -> Vec<String> {
    want.into_iter()
        .filter(|w| !have.contains(w))
        .map(|w| format!("{kind} {w:?}"))
        .collect()
}

pub async fn audit(pool: &PgPool, ledger: &Ledger) -> Audit {
    let mut audit = Audit {
        acknowledged: ledger.acknowledged(),
        ..Default::default()
    };

    let device_streams: Vec<String> = ledger
        .devices
        .iter()
        .map(|id| format!("device-{id}"))
        .collect();
    let logged: HashSet<String> = sqlx::query_scalar(
        "SELECT stream_id FROM events WHERE stream_id = ANY($1) AND event_type = 'DeviceRegistered'",
    )
    .bind(&device_streams)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    audit
        .missing_from_log
        .extend(missing(device_streams, &logged, "device"));
    let rows: HashSet<i64> = sqlx::query_scalar("SELECT id FROM devices WHERE id = ANY($1)")
        .bind(&ledger.devices)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    audit
        .missing_from_read_model
        .extend(missing(ledger.devices.iter().copied(), &rows, "device"));

    let account_streams: Vec<String> = ledger
        .accounts
        .iter()
        .map(|id| format!("account-{id}"))
        .collect();
    let logged: HashSet<String> = sqlx::query_scalar(
        "SELECT stream_id FROM events WHERE stream_id = ANY($1) AND stream_version = 1",
    )
    .bind(&account_streams)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    audit
        .missing_from_log
        .extend(missing(account_streams, &logged, "account"));
    let rows: HashSet<i64> = sqlx::query_scalar("SELECT id FROM accounts WHERE id = ANY($1)")
        .bind(&ledger.accounts)
        .fetch_all(pool)
        .await
        .unwrap()
        .into_iter()
        .collect();
    audit.missing_from_read_model.extend(missing(
        ledger.accounts.iter().copied(),
        &rows,
        "account",
    ));

    let sessions: Vec<String> = ledger
        .samples
        .iter()
        .map(|(s, _, _)| format!("recording-{s}"))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let logged: HashSet<SampleKey> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT substr(e.stream_id, length('recording-') + 1), s->>'sensor_type', (s->>'timestamp')::bigint
         FROM events e
         CROSS JOIN LATERAL jsonb_array_elements((e.data->'inserted') || (e.data->'updated')) s
         WHERE e.stream_id = ANY($1) AND e.event_type = 'SamplesPushed'",
    )
    .bind(&sessions)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    audit
        .missing_from_log
        .extend(missing(ledger.samples.iter().cloned(), &logged, "sample"));
    let plain: Vec<String> = sessions
        .iter()
        .map(|s| s["recording-".len()..].to_owned())
        .collect();
    let rows: HashSet<SampleKey> = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT session_id, sensor_type, timestamp FROM sensor_samples WHERE session_id = ANY($1)",
    )
    .bind(&plain)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    audit
        .missing_from_read_model
        .extend(missing(ledger.samples.iter().cloned(), &rows, "sample"));

    let devices: Vec<i64> = ledger
        .devlogs
        .iter()
        .map(|(d, _)| *d)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let streams: Vec<String> = devices.iter().map(|d| format!("treatment-{d}")).collect();
    let logged: HashSet<(i64, i64)> = sqlx::query_as::<_, (i64, i64)>(
        "SELECT (data->>'device_id')::bigint, (data->'record'->>'log_file_id')::bigint
         FROM events WHERE stream_id = ANY($1) AND event_type = 'TreatmentCompleted'
           AND data->'record'->>'log_file_id' IS NOT NULL",
    )
    .bind(&streams)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    audit
        .missing_from_log
        .extend(missing(ledger.devlogs.iter().copied(), &logged, "devlog"));
    let rows: HashSet<(i64, i64)> = sqlx::query_as::<_, (i64, i64)>(
        "SELECT device_id, log_file_id FROM treatment_logs
         WHERE device_id = ANY($1) AND log_file_id IS NOT NULL AND NOT is_temp",
    )
    .bind(&devices)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    audit
        .missing_from_read_model
        .extend(missing(ledger.devlogs.iter().copied(), &rows, "devlog"));
    audit
}

/// Every projection and the relay, with its lag in events.
pub async fn lags(pool: &PgPool) -> Vec<(String, i64, Option<String>)> {
    let mut conn = pool.acquire().await.unwrap();
    let mut out = Vec::new();
    for p in fleetstream_projections::read_models::all() {
        let categories: Vec<String> = p.categories().iter().map(|c| c.to_string()).collect();
        let s = fleetstream_projections::status(&mut conn, p.name(), Some(&categories))
            .await
            .unwrap();
        out.push((s.name, s.lag_events, s.last_error));
    }
    let s = fleetstream_projections::status(&mut conn, RELAY_NAME, None)
        .await
        .unwrap();
    out.push((s.name, s.lag_events, s.last_error));
    out
}

/// Waits until every reader of the log is at its end (the relay's checkpoint row must exist and
/// point at the last event); returns how long that took.
pub async fn converge(pool: &PgPool, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let lags = lags(pool).await;
        // The relay reads in (transaction id, position) order, so its last event need not have
        // the largest position: at the end means nothing is after its checkpoint pair.
        let relay_at_end: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM projection_checkpoints c WHERE c.name = $1
                AND NOT EXISTS (SELECT 1 FROM events e
                    WHERE (e.transaction_id, e.global_position)
                        > (c.transaction_id::text::xid8, c.global_position)))",
        )
        .bind(RELAY_NAME)
        .fetch_one(pool)
        .await
        .unwrap();
        if relay_at_end && lags.iter().all(|(_, lag, _)| *lag == 0) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "readers did not reach the end of the log within {within:?}: {lags:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One message of `FLEET_EVENTS` as a subscriber sees it.
#[derive(Debug, Clone)]
pub struct Published {
    pub msg_id: String,
    pub payload_omitted: Option<String>,
    pub payload_len: usize,
    /// `Fleet-Position` and `Fleet-Event-Type` both present.
    pub has_fleet_headers: bool,
}

/// Every message of `FLEET_EVENTS`, in stream order, read with an ordered consumer.
pub async fn jetstream_messages(nats_url: &str) -> Vec<Published> {
    // A JetStream API request can time out while a cluster elects a new stream leader after a
    // node was killed, or on a busy machine: read again from the start, within a bound.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match read_stream(nats_url).await {
            Ok(messages) => return messages,
            Err(err) => {
                assert!(Instant::now() < deadline, "cannot read FLEET_EVENTS: {err}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn read_stream(nats_url: &str) -> Result<Vec<Published>, String> {
    let client = async_nats::connect(nats_url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream(STREAM_NAME)
        .await
        .map_err(|e| format!("get stream: {e}"))?;
    let total = stream
        .info()
        .await
        .map_err(|e| format!("stream info: {e}"))?
        .state
        .messages;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .map_err(|e| format!("ordered consumer: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("messages: {e}"))?;
    let mut out = Vec::with_capacity(total as usize);
    while (out.len() as u64) < total {
        let message = tokio::time::timeout(Duration::from_secs(15), messages.next())
            .await
            .map_err(|_| format!("stopped delivering after {} of {total}", out.len()))?
            .ok_or("consumer ended")?
            .map_err(|e| format!("message: {e}"))?;
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        out.push(Published {
            msg_id: message
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_else(|| panic!("no Nats-Msg-Id: {:?}", message.headers)),
            payload_omitted: header("Fleet-Payload-Omitted"),
            payload_len: message.payload.len(),
            has_fleet_headers: header("Fleet-Position").is_some()
                && header("Fleet-Event-Type").is_some(),
        });
    }
    Ok(out)
}

/// How `FLEET_EVENTS` compares with the log.
#[derive(Debug)]
pub struct Delivery {
    pub events: usize,
    pub messages: usize,
    pub missing: usize,
    pub duplicates: usize,
    pub in_log_order: bool,
    pub reduced: usize,
    /// The largest payload a subscriber got, in bytes.
    pub largest_payload: usize,
    /// Messages without the position and type headers.
    pub without_headers: usize,
    /// Of each reduced message: the bytes its header says were omitted, the payload it carries.
    pub reduced_sizes: Vec<(u64, usize)>,
}

impl Delivery {
    pub fn assert_exactly_once(&self) {
        assert!(
            self.missing == 0
                && self.duplicates == 0
                && self.in_log_order
                && self.without_headers == 0,
            "FLEET_EVENTS does not hold the log exactly once in order: {self:?}"
        );
    }
}

pub async fn delivery(pool: &PgPool, nats_url: &str) -> Delivery {
    let log: Vec<String> = sqlx::query_scalar(
        "SELECT event_id::text FROM events ORDER BY transaction_id, global_position",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let published = jetstream_messages(nats_url).await;
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for p in &published {
        *seen.entry(p.msg_id.as_str()).or_default() += 1;
    }
    let duplicates = seen.values().map(|n| n - 1).sum();
    let missing = log
        .iter()
        .filter(|id| !seen.contains_key(id.as_str()))
        .count();
    let mut first_seen = HashSet::new();
    let order: Vec<&str> = published
        .iter()
        .map(|p| p.msg_id.as_str())
        .filter(|id| first_seen.insert(*id))
        .collect();
    let log_order: Vec<&str> = log.iter().map(String::as_str).collect();
    Delivery {
        events: log.len(),
        messages: published.len(),
        missing,
        duplicates,
        in_log_order: order == log_order,
        reduced: published
            .iter()
            .filter(|p| p.payload_omitted.is_some())
            .count(),
        largest_payload: published.iter().map(|p| p.payload_len).max().unwrap_or(0),
        without_headers: published.iter().filter(|p| !p.has_fleet_headers).count(),
        reduced_sizes: published
            .iter()
            .filter_map(|p| {
                let omitted = p.payload_omitted.as_ref()?;
                Some((omitted.parse().unwrap_or(0), p.payload_len))
            })
            .collect(),
    }
}
