//! What every handler shares: the event store, configuration, keys and clients. It sits below
//! the handlers and routers (they import it; it imports none of them).

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::es::EventStore;
use fleetstream_events::privacy::Keyring;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: EventStore,
    pub config: Arc<Config>,
    pub jwt: Arc<JwtKeys>,
    pub nats: Option<async_nats::Client>,
    pub metrics: PrometheusHandle,
    /// Failed-login throttling, sized from `config.login_failures_per_*`.
    pub throttle: Arc<crate::auth::throttle::LoginThrottle>,
    /// Where verification SMS go (default: recorded in the log and `outbound_messages`).
    pub sms: Arc<dyn crate::accounts::sms::SmsSender>,
    /// Group-committing appender of telemetry (HTTP measurements, MQTT ingest).
    pub telemetry: crate::measurements::ingest::TelemetryWriter,
    /// Verification SMS per phone, account and IP, sized from `config.sms_*`.
    pub sms_limits: Arc<crate::accounts::sms_limit::SmsLimits>,
    /// Requests handled at once (`config.max_in_flight`); past it, load is shed.
    pub in_flight: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, nats: Option<async_nats::Client>) -> Self {
        let jwt = JwtKeys::new(&config.jwt_secret, config.access_ttl, config.refresh_ttl);
        let throttle = crate::auth::throttle::LoginThrottle::new(
            config.login_failures_per_account,
            config.login_failures_per_ip,
        );
        let mut store = EventStore::new(pool, fleetstream_projections::read_models::all());
        if let Some(master_key) = &config.master_key {
            store = store.with_keyring(Keyring::from_secret(master_key.as_bytes()));
        }
        crate::auth::password::configure(config.password_hash_concurrency);
        let sms_limits = crate::accounts::sms_limit::SmsLimits::new(
            config.sms_per_phone,
            config.sms_per_account,
            config.sms_per_ip,
            config.sms_window,
        );
        Self {
            sms_limits: Arc::new(sms_limits),
            in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_in_flight.max(1))),
            throttle: Arc::new(throttle),
            sms: Arc::new(crate::accounts::sms::RecordingSmsSender),
            telemetry: crate::measurements::ingest::TelemetryWriter::new(
                store.clone(),
                Default::default(),
            ),
            store,
            config: Arc::new(config),
            jwt: Arc::new(jwt),
            nats,
            metrics: crate::telemetry::metrics_handle(),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.store.pool
    }
}
