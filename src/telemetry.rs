//! Structured logs and the Prometheus recorder.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// JSON logs when `FLEET_LOG_FORMAT=json`, compact text otherwise; `RUST_LOG` filters.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    // Colour codes only for a person at a terminal, never into a file or a pipe.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("FLEET_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}

/// The process-wide Prometheus recorder (installed once; later calls share it).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("fleet_http_request_duration_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (e.g. by a test harness); keep ours
            // rendering either way.
            let _ = metrics::set_global_recorder(recorder);
            describe_metrics();
            handle
        })
        .clone()
}

/// `# HELP` for every series the process exports; a series added without a line here fails
/// the metrics test.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        "fleet_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method, route template and status"
    );
    describe_counter!(
        "fleet_http_refused_total",
        "Requests refused before their handler finished, by reason (overloaded = shed with 503, slow_body = 408, handler_timeout = 503)"
    );
    describe_counter!("fleet_events_appended_total", "Events appended to the log");
    describe_gauge!(
        "fleet_projection_position",
        "Global log position each projection (and the NATS relay) has processed; inline projections are at the newest event of their categories"
    );
    describe_gauge!(
        "fleet_projection_lag_events",
        "Events in a projection's categories not yet processed (0 for inline projections)"
    );
    describe_gauge!(
        "fleet_projection_lag_seconds",
        "Age of the oldest event a projection has not yet processed"
    );
    describe_histogram!(
        "fleet_password_hash_wait_seconds",
        Unit::Seconds,
        "Time a password hash or verification waited for a hashing slot (FLEET_PASSWORD_HASH_CONCURRENCY)"
    );
    describe_counter!(
        "fleet_sms_refused_total",
        "Verification SMS refused by a limit (phone, account or ip)"
    );
}
