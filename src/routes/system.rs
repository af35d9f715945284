//! Health and metrics: `/api/v1/system/health` (seed 002), `/health` (seed 003), `/metrics`;
//! this API's own description: `/openapi.json` and `/docs`.
use crate::auth::Caller;
use crate::health;
use crate::http::{ApiError, Namespace, Path};
use crate::openapi::tags;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use fleetstream_events::privacy;
use fleetstream_events::store::read_position;
use fleetstream_events::{EventEnvelope, Role};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(system_health))
        .routes(routes!(system_info))
        .routes(routes!(event_by_position))
        .routes(routes!(koodtx_health))
        .routes(routes!(prometheus_metrics))
        .routes(routes!(openapi_json))
        .routes(routes!(crate::docs::swagger_ui))
        .routes(routes!(crate::docs::asset))
}

/// The document served by `/openapi.json`, serialized once at start-up.
#[derive(Clone)]
pub struct OpenApiJson(pub Arc<String>);

#[derive(Serialize, ToSchema)]
pub struct SystemHealth {
    /// `ok`; `degraded` when Postgres does not answer (then 503), NATS is disconnected, or the
    /// relay or an async projection is failing or further behind than
    /// `FLEET_HEALTH_MAX_LAG_SECS` (then 200: the API still answers).
    #[schema(pattern = "^(ok|degraded)$")]
    status: &'static str,
    service: &'static str,
    version: &'static str,
    #[schema(pattern = "^(ok|down)$")]
    postgres: &'static str,
    #[schema(pattern = "^(connected|disconnected|disabled)$")]
    nats: &'static str,
    projections: Vec<health::ReaderHealth>,
    /// The NATS relay; null when NATS is disabled.
    relay: Option<health::ReaderHealth>,
    /// Why the service is degraded; empty when it is not.
    reasons: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KoodtxHealth {
    #[schema(pattern = "^(healthy|unhealthy)$")]
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

/// Seed 002 `GET /system/info`: the running configuration, never a secret.
#[derive(Serialize, ToSchema)]
pub struct SystemInfo {
    service: &'static str,
    version: &'static str,
    access_token_ttl_secs: u64,
    refresh_token_ttl_secs: u64,
    login_failures_per_account: u32,
    login_failures_per_ip: u32,
    body_limit_bytes: usize,
    sync_push_body_limit_bytes: usize,
    /// |slope| per hour from which a trend is increasing/decreasing (`FLEET_TREND_SLOPE`).
    trend_slope: String,
    /// Health is `degraded` when a log reader is further behind (`FLEET_HEALTH_MAX_LAG_SECS`).
    health_max_lag_secs: u64,
    #[schema(pattern = "^(ok|down)$")]
    postgres: &'static str,
    #[schema(pattern = "^(connected|disconnected|disabled)$")]
    nats: &'static str,
    projections: Vec<String>,
}

/// Superadmins only.
#[utoipa::path(get, path = "/api/v1/system/info", tag = tags::CORE, security(("bearer" = [])),
    responses((status = 200, body = SystemInfo),
        (status = 403, description = "Not enough permissions", body = crate::openapi::Detail)))]
async fn system_info(
    State(state): State<AppState>,
    caller: crate::auth::Caller,
) -> Result<Json<SystemInfo>, crate::http::ApiError> {
    if caller.role != fleetstream_events::Role::Superadmin {
        return Err(crate::http::ApiError::detail(
            StatusCode::FORBIDDEN,
            "Not enough permissions",
        ));
    }
    let config = &state.config;
    Ok(Json(SystemInfo {
        service: "core-api",
        version: env!("CARGO_PKG_VERSION"),
        access_token_ttl_secs: config.access_ttl.as_secs(),
        refresh_token_ttl_secs: config.refresh_ttl.as_secs(),
        login_failures_per_account: config.login_failures_per_account,
        login_failures_per_ip: config.login_failures_per_ip,
        body_limit_bytes: crate::http::middleware::BODY_LIMIT,
        sync_push_body_limit_bytes: crate::http::middleware::SYNC_PUSH_BODY_LIMIT,
        trend_slope: config.trend_slope.to_string(),
        health_max_lag_secs: config.health_max_lag.as_secs(),
        postgres: if postgres_ok(&state).await {
            "ok"
        } else {
            "down"
        },
        nats: health::nats_state(&state),
        projections: state
            .store
            .projections()
            .iter()
            .map(|p| p.name().to_string())
            .collect(),
    }))
}

async fn postgres_ok(state: &AppState) -> bool {
    sqlx::query("SELECT 1").execute(state.pool()).await.is_ok()
}

/// Service health; no authentication.
#[utoipa::path(get, path = "/api/v1/system/health", tag = tags::SYSTEM,
    responses((status = 200, body = SystemHealth), (status = 503, description = "Postgres does not answer", body = SystemHealth)))]
async fn system_health(State(state): State<AppState>) -> (StatusCode, Json<SystemHealth>) {
    let report = health::report(&state).await;
    let code = if report.postgres {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let status = report.status();
    (
        code,
        Json(SystemHealth {
            status,
            service: "core-api",
            version: env!("CARGO_PKG_VERSION"),
            postgres: if report.postgres { "ok" } else { "down" },
            nats: report.nats,
            projections: report.projections,
            relay: report.relay,
            reasons: report.reasons,
        }),
    )
}

// The document's view of `EventEnvelope` (the events crate does not depend on utoipa); the
// read below never leaves the payload out, so `payload_omitted` is not shown.
/// One event of the log, as a superadmin reads it (NATS subscribers get personal fields as
/// `"[personal]"`).
#[derive(ToSchema)]
#[schema(as = EventEnvelope)]
#[allow(dead_code)]
struct EventEnvelopeDoc {
    event_id: uuid::Uuid,
    /// The Rust variant name (`DeviceRegistered`).
    event_type: String,
    schema_version: i32,
    /// `<category>-<id>`.
    stream_id: String,
    category: String,
    stream_version: i64,
    global_position: i64,
    recorded_at: chrono::DateTime<chrono::Utc>,
    /// The payload, secret fields redacted (`"[redacted]"`), personal fields opened (or
    /// `"[erased]"`); null for an event without fields.
    data: serde_json::Value,
    /// Actor, request, correlation and causation ids.
    #[schema(value_type = Object)]
    metadata: serde_json::Value,
}

/// One event of the log by its global position, secret fields redacted, personal fields
/// opened while their subject's key exists (`"[erased]"` after); superadmins only.
///
/// What a NATS subscriber reads when the relay had to publish an event without its payload.
#[utoipa::path(get, path = "/api/v1/system/events/{position}", tag = tags::CORE, security(("bearer" = [])),
    params(("position" = i64, Path, description = "Global position in the log")),
    responses((status = 200, body = EventEnvelopeDoc),
        (status = 403, description = "Not enough permissions", body = crate::openapi::Detail),
        (status = 404, description = "No event at that position", body = crate::openapi::Detail)))]
pub(crate) async fn event_by_position(
    State(state): State<AppState>,
    caller: Caller,
    Path(position): Path<i64>,
) -> Result<Json<EventEnvelope>, ApiError> {
    if caller.role != Role::Superadmin {
        return Err(ApiError::detail(
            StatusCode::FORBIDDEN,
            "Not enough permissions",
        ));
    }
    let mut conn = state
        .pool()
        .acquire()
        .await
        .map_err(|e| ApiError::internal(Namespace::Core, e))?;
    let mut event: Vec<_> = read_position(&mut conn, position)
        .await
        .map_err(|e| ApiError::internal(Namespace::Core, e))?
        .into_iter()
        .collect();
    privacy::open_events(
        &mut conn,
        state.store.keyring(),
        &mut Default::default(),
        &mut event,
    )
    .await
    .map_err(|e| ApiError::internal(Namespace::Core, e))?;
    event
        .first()
        .map(|e| Json(EventEnvelope::opened(e)))
        .ok_or_else(|| ApiError::not_found(Namespace::Core))
}

/// Seed 003 health; no authentication.
#[utoipa::path(get, path = "/health", tag = tags::SYSTEM,
    responses((status = 200, body = KoodtxHealth), (status = 503, description = "Postgres does not answer", body = KoodtxHealth)))]
async fn koodtx_health(State(state): State<AppState>) -> (StatusCode, Json<KoodtxHealth>) {
    let postgres = postgres_ok(&state).await;
    let code = if postgres {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(KoodtxHealth {
            status: if postgres { "healthy" } else { "unhealthy" },
            service: "KooDTX Backend",
            version: env!("CARGO_PKG_VERSION"),
        }),
    )
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = tags::SYSTEM,
    responses((status = 200, description = "Prometheus metrics", body = String, content_type = "text/plain")))]
async fn prometheus_metrics(State(state): State<AppState>) -> impl IntoResponse {
    refresh_inline_positions(&state).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = tags::SYSTEM,
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
}

/// Inline projections have no worker to report their position; read it at scrape time (one
/// index step per category), so `/metrics` shows where they really are.
async fn refresh_inline_positions(state: &AppState) {
    let Ok(mut conn) = state.pool().acquire().await else {
        return;
    };
    for projection in state.store.projections() {
        if projection.mode() != fleetstream_projections::Mode::Inline {
            continue;
        }
        if let Ok(status) =
            fleetstream_projections::projection_status(&mut conn, projection.as_ref()).await
        {
            let name = projection.name();
            metrics::gauge!("fleet_projection_position", "projection" => name)
                .set(status.position as f64);
            metrics::gauge!("fleet_projection_lag_events", "projection" => name).set(0.0);
            metrics::gauge!("fleet_projection_lag_seconds", "projection" => name).set(0.0);
        }
    }
}
