//! Application state and the HTTP router: one router per client namespace, merged.

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::es::EventStore;
use crate::http::middleware;
use crate::routes;
use axum::response::IntoResponse;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

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
}

impl AppState {
    pub fn new(pool: PgPool, config: Config, nats: Option<async_nats::Client>) -> Self {
        let jwt = JwtKeys::new(&config.jwt_secret, config.access_ttl, config.refresh_ttl);
        let throttle = crate::auth::throttle::LoginThrottle::new(
            config.login_failures_per_account,
            config.login_failures_per_ip,
        );
        Self {
            throttle: Arc::new(throttle),
            sms: Arc::new(crate::accounts::sms::RecordingSmsSender),
            store: EventStore::new(pool, fleetstream_projections::read_models::all()),
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

pub fn router(state: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .merge(routes::system::router())
        .merge(routes::core::router())
        .merge(routes::nueyne::router())
        .merge(routes::koodtx::router())
        .merge(routes::drf::router())
        .fallback(middleware::not_found)
        .layer(axum::middleware::from_fn(middleware::shape_method_not_allowed))
        .layer(axum::middleware::from_fn(middleware::limit_body))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(middleware::record_metrics))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(CatchPanicLayer::custom(|_| {
            crate::http::ApiError::detail(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
            )
            .into_response()
        }))
        .with_state(state)
}
