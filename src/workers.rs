//! Background work of a server process: async projections, the NATS relay, lag metrics.

use crate::state::AppState;
use fleetstream_projections::{Projection, Runner, RunnerConfig, Wakeup};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which workers to start.
#[derive(Debug, Clone)]
pub struct WorkerSet {
    pub projections: bool,
    /// Only this projection (`project --only NAME`).
    pub only: Option<String>,
    pub relay: bool,
    /// The device ingress worker (`DEVICE_INGRESS` → telemetry, status, logs, responses).
    pub ingest: bool,
}

pub async fn spawn(
    state: &AppState,
    set: WorkerSet,
    shutdown: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let pool = state.pool().clone();
    let wakeup = Wakeup::listen(&pool, shutdown.clone()).await?;
    let mut handles = Vec::new();
    if set.projections {
        let selected: Vec<Arc<dyn Projection>> = state
            .store
            .projections()
            .iter()
            .filter(|p| set.only.as_deref().is_none_or(|only| only == p.name()))
            .cloned()
            .collect();
        handles.extend(
            Runner::new(pool.clone(), selected, RunnerConfig::default())
                .spawn(wakeup.clone(), shutdown.clone()),
        );
    }
    if set.projections
        && set
            .only
            .as_deref()
            .is_none_or(|only| only == crate::alerts::manager::NAME)
    {
        let manager = crate::alerts::manager::AlertManager::new(state.store.clone());
        handles.push(tokio::spawn(manager.run(wakeup.clone(), shutdown.clone())));
    }
    if set.relay {
        // The relay keeps its own NATS connection; `state.nats` only says NATS is configured.
        if state.nats.is_some() {
            handles.push(tokio::spawn(crate::relay::run(
                pool.clone(),
                state.config.nats_url.clone(),
                wakeup.clone(),
                shutdown.clone(),
            )));
        }
    }
    if set.ingest && state.nats.is_some() {
        handles.push(tokio::spawn(crate::ingest::run(
            state.clone(),
            crate::ingest::IngestConfig::default(),
            shutdown.clone(),
        )));
    }
    handles.push(tokio::spawn(report_lag(state.clone(), shutdown)));
    Ok(handles)
}

/// Publishes `fleet_projection_position` / `fleet_projection_lag_events` every few seconds.
async fn report_lag(state: AppState, shutdown: CancellationToken) {
    let set = |name: &str, status: &fleetstream_projections::ProjectionStatus| {
        let name = name.to_owned();
        metrics::gauge!("fleet_projection_position", "projection" => name.clone())
            .set(status.position as f64);
        metrics::gauge!("fleet_projection_lag_events", "projection" => name.clone())
            .set(status.lag_events as f64);
        metrics::gauge!("fleet_projection_lag_seconds", "projection" => name)
            .set(status.lag_seconds);
    };
    let alert_manager = [crate::alerts::manager::NAME.to_owned()];
    let telemetry = ["telemetry".to_owned()];
    loop {
        if let Ok(mut conn) = state.pool().acquire().await {
            for projection in state.store.projections() {
                if let Ok(status) =
                    fleetstream_projections::projection_status(&mut conn, projection.as_ref()).await
                {
                    set(projection.name(), &status);
                }
            }
            if let Ok(status) =
                fleetstream_projections::status(&mut conn, &alert_manager[0], Some(&telemetry))
                    .await
            {
                set(&alert_manager[0], &status);
            }
            if let Ok(status) =
                fleetstream_projections::status(&mut conn, crate::relay::RELAY_NAME, None).await
            {
                set(crate::relay::RELAY_NAME, &status);
                metrics::gauge!("fleet_relay_lag_events").set(status.lag_events as f64);
                metrics::gauge!("fleet_relay_lag_seconds").set(status.lag_seconds);
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
