//! The alert process manager: a checkpointed reader of `telemetry` (like an async projection)
//! that evaluates each recorded sample against the active rules and issues RaiseAlert.
//!
//! Alerts are appended in their own transactions, before the checkpoint moves. A crash between
//! the two replays the batch; the replayed raise carries the same event id (derived from rule,
//! device and triggering event), so the log keeps the first one and nothing is raised twice —
//! even if the first alert was acknowledged in between.

use super::domain::{self, ActiveRule, AlertError, AlertStream, RaiseAlert};
use crate::es::{next_id, CommandError, EventStore, MAX_CONFLICT_RETRIES};
use chrono::Utc;
use fleetstream_events::store::{read_all, Checkpoint, ExpectedVersion, NewEvent, StreamAppend};
use fleetstream_events::{
    alert_stream_key, AlertEvent, DomainEvent, EventMetadata, StoredEvent, TelemetryEvent,
};
use fleetstream_projections::{ensure_checkpoint, load_checkpoint, save_checkpoint, Wakeup};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

pub const NAME: &str = "alert_manager";
const CATEGORIES: &[&str] = &["telemetry"];

#[derive(Clone)]
pub struct AlertManager {
    store: EventStore,
    /// Test hook: fail every batch after its alerts are appended, before the checkpoint.
    pub fail_after_append: Arc<AtomicBool>,
}

/// The event id of the alert `rule` raises for `device` because of `trigger`.
pub fn raise_event_id(rule_id: i64, device_id: i64, trigger: Uuid) -> Uuid {
    let digest = Sha256::digest(format!("alert:{rule_id}:{device_id}:{trigger}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A rule broken by a sample of a device, with the event that carried it.
#[derive(Debug, Clone)]
struct Breach {
    rule: ActiveRule,
    device_id: i64,
    value: rust_decimal::Decimal,
    trigger: Uuid,
    /// The triggering event's flow: causation = that event, correlation = its correlation.
    cause: EventMetadata,
}

impl AlertManager {
    pub fn new(store: EventStore) -> Self {
        Self {
            store,
            fail_after_append: Arc::new(AtomicBool::new(false)),
        }
    }

    /// One batch: read after the checkpoint, raise, then move the checkpoint. Returns how many
    /// events were read (`None`: another worker holds the manager).
    pub async fn step(&self, batch_size: i64) -> Result<Option<usize>, CommandError<AlertError>> {
        let pool = &self.store.pool;
        ensure_checkpoint(pool, NAME).await?;
        let mut tx = pool.begin().await?;
        let Some(from) = load_checkpoint(&mut tx, NAME).await? else {
            return Ok(None);
        };
        let categories: Vec<String> = CATEGORIES.iter().map(|c| c.to_string()).collect();
        let events = read_all(&mut tx, from, batch_size, Some(&categories)).await?;
        let Some(last) = events.last() else {
            return Ok(Some(0));
        };
        let to = Checkpoint::after(last);
        let rules: Vec<ActiveRule> = sqlx::query_as(
            "SELECT id, name, metric, condition, threshold, severity, device_group_id \
             FROM alert_rules WHERE is_active ORDER BY id",
        )
        .fetch_all(&mut *tx)
        .await?;
        if !rules.is_empty() {
            let breaches = self.breaches(&mut tx, &rules, &events).await?;
            let owners = owners(&mut tx, &breaches).await?;
            for breach in breaches {
                let owner = owners.get(&breach.device_id).copied().flatten();
                self.raise(breach, owner).await?;
            }
        }
        if self.fail_after_append.load(Ordering::SeqCst) {
            return Err(CommandError::Cascade(
                "injected failure between append and checkpoint".into(),
            ));
        }
        save_checkpoint(&mut tx, NAME, to).await?;
        tx.commit().await?;
        Ok(Some(events.len()))
    }

    /// The first breach per (rule, device) in the batch: later ones would find it open.
    async fn breaches(
        &self,
        conn: &mut sqlx::PgConnection,
        rules: &[ActiveRule],
        events: &[StoredEvent],
    ) -> Result<Vec<Breach>, CommandError<AlertError>> {
        let mut decoded = Vec::new();
        for stored in events
            .iter()
            .filter(|e| e.event_type == "TelemetryRecorded")
        {
            match stored.decode::<TelemetryEvent>().transpose() {
                Ok(Some(TelemetryEvent::TelemetryRecorded {
                    device_id, samples, ..
                })) => decoded.push((stored, device_id, samples)),
                Ok(_) => {}
                // It would fail the same way every time: stepped past, recorded, the batch
                // goes on (health says so until a rebuild).
                Err(err) => {
                    fleetstream_projections::skip_event(conn, NAME, stored, &err.to_string())
                        .await?
                }
            }
        }
        let devices: Vec<i64> = decoded.iter().map(|(_, d, _)| *d).collect();
        let groups: HashMap<i64, Option<i64>> = sqlx::query_as::<_, (i64, Option<i64>)>(
            "SELECT id, group_id FROM devices WHERE id = ANY($1)",
        )
        .bind(&devices)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .collect();
        let mut first: BTreeMap<(i64, i64), Breach> = BTreeMap::new();
        for (stored, device_id, samples) in decoded {
            let group = groups.get(&device_id).copied().flatten();
            for sample in &samples {
                for rule in rules {
                    if rule.breached_by(&sample.metric, sample.value, group) {
                        first.entry((rule.id, device_id)).or_insert_with(|| Breach {
                            rule: rule.clone(),
                            device_id,
                            value: sample.value,
                            trigger: stored.event_id,
                            cause: EventMetadata::caused_by(stored),
                        });
                    }
                }
            }
        }
        Ok(first.into_values().collect())
    }

    /// RaiseAlert on the (rule, device) stream, with the deterministic event id.
    async fn raise(
        &self,
        breach: Breach,
        owner_id: Option<i64>,
    ) -> Result<(), CommandError<AlertError>> {
        let stream_id = AlertEvent::stream_id(alert_stream_key(breach.rule.id, breach.device_id));
        let metadata = breach.cause.clone();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut uow = self.store.begin(metadata.clone()).await?;
            let (state, version) = uow.load::<AlertStream>(&stream_id).await?;
            let alert_id = next_id(uow.conn(), "alert_id_seq").await?;
            let events = domain::decide_raise(
                &state,
                RaiseAlert {
                    alert_id,
                    rule: breach.rule.clone(),
                    device_id: breach.device_id,
                    owner_id,
                    value: breach.value,
                    triggered_by: breach.trigger,
                    now: Utc::now(),
                },
            )
            .map_err(CommandError::Domain)?;
            if events.is_empty() {
                return Ok(());
            }
            let id = raise_event_id(breach.rule.id, breach.device_id, breach.trigger);
            let new_events: Vec<NewEvent> = events
                .iter()
                .map(|e| NewEvent {
                    event_id: id,
                    ..NewEvent::from_domain(e, &metadata)
                })
                .collect();
            uow.stage_appends([StreamAppend {
                stream_id: stream_id.clone(),
                expected: ExpectedVersion::from_loaded(version),
                events: new_events,
            }]);
            match uow.commit::<AlertError>().await {
                Err(CommandError::Conflict(_)) if attempt <= MAX_CONFLICT_RETRIES => continue,
                Err(e) => return Err(e),
                Ok(stored) => {
                    if !stored.is_empty() {
                        metrics::counter!("fleet_alerts_raised_total").increment(1);
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Runs until `shutdown`, woken by appends, polling as a fallback.
    pub async fn run(self, mut wakeup: Wakeup, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let batch = self
                .step(500)
                .instrument(tracing::info_span!("alert_manager_batch"));
            match batch.await {
                Ok(Some(n)) if n >= 500 => continue,
                Ok(_) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = wakeup.wait_for(Duration::from_millis(250)) => {}
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "alert manager batch failed; it will be retried");
                    // The log readers' one way to record a failure (when it began, how
                    // often), so health reports the manager as it reports projections.
                    let _ = fleetstream_projections::record_error(
                        &self.store.pool,
                        NAME,
                        &err.to_string(),
                    )
                    .await;
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }
}

async fn owners(
    conn: &mut sqlx::PgConnection,
    breaches: &[Breach],
) -> Result<HashMap<i64, Option<i64>>, sqlx::Error> {
    let devices: Vec<i64> = breaches.iter().map(|b| b.device_id).collect();
    Ok(sqlx::query_as::<_, (i64, Option<i64>)>(
        "SELECT id, owner_id FROM devices WHERE id = ANY($1)",
    )
    .bind(&devices)
    .fetch_all(conn)
    .await?
    .into_iter()
    .collect())
}
