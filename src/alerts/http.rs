//! Seed 002 `/api/v1/monitoring`: health, alerts (unacknowledged, newest first), acknowledge,
//! alert rules. Every operation is for managers and above (the seed's RBAC for the section).

use super::domain::{AlertError, AlertRule, AlertState};
use crate::auth::Caller;
use crate::es::CommandError;
use crate::http::{ApiError, Json, Namespace, Query};
use crate::measurements::domain::decimal_from_json;
use crate::openapi::{tags, Detail};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use fleetstream_events::{AlertRuleChanges, AlertRuleSpec, Condition, EventMetadata, Severity};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

const NS: Namespace = Namespace::Core;
pub const MAX_LIMIT: i64 = 200;

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::internal(NS, err)
}

fn meta(caller: &Caller) -> EventMetadata {
    EventMetadata {
        actor: Some(caller.account_id),
        ..Default::default()
    }
}

pub fn forbidden() -> ApiError {
    ApiError::detail(StatusCode::FORBIDDEN, "Not enough permissions")
}

pub fn require_manager(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_manager() {
        Ok(())
    } else {
        Err(forbidden())
    }
}

fn iso(at: DateTime<Utc>) -> String {
    crate::devices::views::iso(at)
}

/// `skip` ≥ 0 and 1 ≤ `limit` ≤ `max`, with FastAPI's messages.
pub fn page(
    skip: Option<i64>,
    limit: Option<i64>,
    default: i64,
    max: i64,
) -> Result<(i64, i64), ApiError> {
    let skip = skip.unwrap_or(0);
    if skip < 0 {
        return Err(ApiError::validation(
            NS,
            &["query", "skip"],
            "Input should be greater than or equal to 0",
            "greater_than_equal",
        ));
    }
    let limit = limit.unwrap_or(default);
    if limit < 1 {
        return Err(ApiError::validation(
            NS,
            &["query", "limit"],
            "Input should be greater than or equal to 1",
            "greater_than_equal",
        ));
    }
    if limit > max {
        return Err(ApiError::validation(
            NS,
            &["query", "limit"],
            format!("Input should be less than or equal to {max}"),
            "less_than_equal",
        ));
    }
    Ok((skip, limit))
}

/// Seed 002 monitoring health.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MonitoringHealth)]
pub struct HealthReply {
    /// `degraded` when NATS is disconnected.
    #[schema(pattern = "^(ok|degraded)$")]
    pub status: &'static str,
    #[schema(pattern = "^connected$")]
    pub postgres: &'static str,
    #[schema(pattern = "^(connected|disconnected|disabled)$")]
    pub nats: &'static str,
    /// The NATS server's MQTT listener: the NATS connection's state.
    #[schema(pattern = "^(connected|disconnected|disabled)$")]
    pub mqtt: &'static str,
    pub projections: Vec<ProjectionLag>,
    /// Online devices.
    pub active_devices: i64,
    /// Unacknowledged alerts.
    pub active_alerts: i64,
}

/// How far a projection is behind the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionLag {
    pub name: String,
    pub position: i64,
    pub lag_events: i64,
}

fn nats_state(state: &AppState) -> &'static str {
    match &state.nats {
        None => "disabled",
        Some(client) => match client.connection_state() {
            async_nats::connection::State::Connected => "connected",
            _ => "disconnected",
        },
    }
}

/// The system's state in detail; managers and above.
///
/// MQTT is the NATS server's MQTT listener, so its state is the NATS connection's.
#[utoipa::path(get, path = "/api/v1/monitoring/health", tag = tags::CORE, security(("bearer" = [])),
    responses((status = 200, body = HealthReply),
        (status = 403, description = "Not enough permissions", body = Detail)))]
pub async fn health(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<HealthReply>, ApiError> {
    require_manager(&caller)?;
    let mut conn = state.pool().acquire().await.map_err(internal)?;
    let mut projections = Vec::new();
    for p in state.store.projections() {
        let categories: Vec<String> = p.categories().iter().map(|c| c.to_string()).collect();
        let s = fleetstream_projections::status(&mut conn, p.name(), Some(&categories))
            .await
            .map_err(internal)?;
        projections.push(ProjectionLag {
            name: s.name,
            position: s.position,
            lag_events: s.lag_events,
        });
    }
    let (active_devices, active_alerts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM devices d JOIN device_presence p ON p.device_id = d.id \
                 WHERE d.deleted_at IS NULL AND p.connectivity = 'online'), \
                (SELECT count(*) FROM alerts WHERE NOT is_acknowledged)",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(internal)?;
    let nats = nats_state(&state);
    Ok(Json(HealthReply {
        status: if nats == "disconnected" {
            "degraded"
        } else {
            "ok"
        },
        postgres: "connected",
        nats,
        mqtt: nats,
        projections,
        active_devices,
        active_alerts,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Alerts to skip (default 0).
    #[serde(default)]
    #[param(minimum = 0)]
    pub skip: Option<i64>,
    /// At most this many (default 50, at most 200).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// Seed 002 alert.
#[derive(Debug, Serialize, ToSchema, sqlx::FromRow)]
pub struct AlertView {
    pub id: i64,
    pub rule_id: i64,
    pub device_id: i64,
    #[schema(pattern = "^(info|warning|critical)$")]
    pub severity: String,
    pub message: String,
    pub is_acknowledged: bool,
    pub acknowledged_by: Option<i64>,
    /// UTC without an offset (`2025-01-15T10:30:00`).
    #[serde(serialize_with = "iso_opt")]
    #[schema(value_type = Option<String>)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// UTC without an offset (`2025-01-15T10:30:00`).
    #[serde(serialize_with = "iso_ser")]
    #[schema(value_type = String)]
    pub created_at: DateTime<Utc>,
}

fn iso_ser<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&iso(*at))
}

fn iso_opt<S: serde::Serializer>(at: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&iso(*at)),
        None => s.serialize_none(),
    }
}

impl From<AlertState> for AlertView {
    fn from(a: AlertState) -> Self {
        Self {
            id: a.id,
            rule_id: a.rule_id,
            device_id: a.device_id,
            severity: a.severity.as_str().to_owned(),
            message: a.message,
            is_acknowledged: a.acknowledged_by.is_some(),
            acknowledged_by: a.acknowledged_by,
            acknowledged_at: a.acknowledged_at,
            created_at: a.created_at,
        }
    }
}

/// Unacknowledged alerts, newest first; managers and above.
#[utoipa::path(get, path = "/api/v1/monitoring/alerts", tag = tags::CORE, security(("bearer" = [])),
    params(AlertsQuery),
    responses((status = 200, body = Vec<AlertView>),
        (status = 403, description = "Not enough permissions", body = Detail)))]
pub async fn alerts(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AlertsQuery>, ApiError>,
) -> Result<Json<Vec<AlertView>>, ApiError> {
    // FastAPI resolves the role dependency before it reports validation errors.
    require_manager(&caller)?;
    let Query(q) = query?;
    let (skip, limit) = page(q.skip, q.limit, 50, MAX_LIMIT)?;
    let rows: Vec<AlertView> = sqlx::query_as(
        "SELECT id, rule_id, device_id, severity, message, is_acknowledged, acknowledged_by, \
         acknowledged_at, created_at FROM alerts WHERE NOT is_acknowledged \
         ORDER BY created_at DESC, id DESC OFFSET $1 LIMIT $2",
    )
    .bind(skip)
    .bind(limit)
    .fetch_all(state.pool())
    .await
    .map_err(internal)?;
    Ok(Json(rows))
}

fn alert_error(err: CommandError<AlertError>) -> ApiError {
    match err {
        CommandError::Domain(AlertError::AlertNotFound) => {
            ApiError::detail(StatusCode::NOT_FOUND, "Alert not found")
        }
        CommandError::Domain(AlertError::RuleNotFound) => {
            ApiError::detail(StatusCode::NOT_FOUND, "Alert rule not found")
        }
        CommandError::Domain(AlertError::Invalid(field, msg, kind)) => {
            ApiError::validation(NS, &["body", field], msg, kind)
        }
        CommandError::Conflict(_) => {
            ApiError::in_namespace(NS, StatusCode::CONFLICT, "Conflicting update, try again")
        }
        e => ApiError::command_failed(NS, e),
    }
}

/// FastAPI answers a path parameter that is not an integer with 422.
fn int_path(raw: &str, name: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::validation(
            NS,
            &["path", name],
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing",
        )
    })
}

/// Acknowledges an alert and answers it (200); managers and above.
#[utoipa::path(post, path = "/api/v1/monitoring/alerts/{alert_id}/acknowledge", tag = tags::CORE,
    security(("bearer" = [])), params(("alert_id" = i64, Path, description = "Alert id")),
    responses((status = 200, body = AlertView),
        (status = 403, description = "Not enough permissions", body = Detail),
        (status = 404, description = "Alert not found", body = Detail),
        (status = 409, description = "Conflicting update, try again", body = Detail)))]
pub async fn acknowledge(
    State(state): State<AppState>,
    caller: Caller,
    Path(alert_id): Path<String>,
) -> Result<Json<AlertView>, ApiError> {
    require_manager(&caller)?;
    let alert_id = int_path(&alert_id, "alert_id")?;
    let alert = super::acknowledge(&state.store, meta(&caller), alert_id, caller.account_id)
        .await
        .map_err(alert_error)?;
    Ok(Json(alert.into()))
}

/// An alert rule as the seed shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertRule)]
pub struct RuleView {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub metric: String,
    #[schema(pattern = "^(gt|gte|lt|lte|eq|neq)$")]
    pub condition: &'static str,
    #[serde(with = "rust_decimal::serde::float")]
    #[schema(value_type = f64)]
    pub threshold: Decimal,
    #[schema(pattern = "^(info|warning|critical)$")]
    pub severity: &'static str,
    pub device_group_id: Option<i64>,
    pub is_active: bool,
    /// UTC without an offset (`2025-01-15T10:30:00`).
    pub created_at: String,
    /// UTC without an offset.
    pub updated_at: String,
}

impl RuleView {
    fn of(rule: &AlertRule) -> Option<Self> {
        let spec = rule.spec.as_ref()?;
        Some(Self {
            id: rule.id?,
            name: spec.name.clone(),
            description: spec.description.clone(),
            metric: spec.metric.clone(),
            condition: spec.condition.as_str(),
            threshold: spec.threshold.normalize(),
            severity: spec.severity.as_str(),
            device_group_id: spec.device_group_id,
            is_active: spec.is_active,
            created_at: iso(rule.created_at?),
            updated_at: iso(rule.updated_at?),
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct RuleRow {
    id: i64,
    name: String,
    description: Option<String>,
    metric: String,
    condition: String,
    threshold: Decimal,
    severity: String,
    device_group_id: Option<i64>,
    is_active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Alert rules by id; managers and above.
#[utoipa::path(get, path = "/api/v1/monitoring/alert-rules", tag = tags::CORE, security(("bearer" = [])),
    responses((status = 200, body = Vec<RuleView>),
        (status = 403, description = "Not enough permissions", body = Detail)))]
pub async fn list_rules(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<RuleView>>, ApiError> {
    require_manager(&caller)?;
    let rows: Vec<RuleRow> = sqlx::query_as(
        "SELECT id, name, description, metric, condition, threshold, severity, device_group_id, \
         is_active, created_at, updated_at FROM alert_rules ORDER BY id",
    )
    .fetch_all(state.pool())
    .await
    .map_err(internal)?;
    Ok(Json(
        rows.into_iter()
            .map(|r| RuleView {
                id: r.id,
                name: r.name,
                description: r.description,
                metric: r.metric,
                condition: Condition::parse(&r.condition).map_or("gt", |c| c.as_str()),
                threshold: r.threshold.normalize(),
                severity: Severity::parse(&r.severity).map_or("warning", |s| s.as_str()),
                device_group_id: r.device_group_id,
                is_active: r.is_active,
                created_at: iso(r.created_at),
                updated_at: iso(r.updated_at),
            })
            .collect(),
    ))
}

fn raw_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// Missing → `None`, `null` → `Some(None)`.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `gt`, `gte`, `lt`, `lte`, `eq` or `neq`.
pub struct AlertCondition;

impl utoipa::PartialSchema for AlertCondition {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(
            serde_json::json!({"type": "string", "enum": ["gt", "gte", "lt", "lte", "eq", "neq"]}),
        )
    }
}

impl ToSchema for AlertCondition {}

/// `info`, `warning` or `critical`.
pub struct AlertSeverity;

impl utoipa::PartialSchema for AlertSeverity {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::openapi::schema_from_json(
            serde_json::json!({"type": "string", "enum": ["info", "warning", "critical"]}),
        )
    }
}

impl ToSchema for AlertSeverity {}

/// A new rule. Texts are trimmed: what is left is 1–100 characters (`name`), 1–50 (`metric`)
/// or at most 500 (`description`).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = AlertRuleCreate)]
pub struct CreateRule {
    #[schema(pattern = r"^\s*\S([\s\S]{0,98}\S)?\s*$")]
    pub name: String,
    /// Blank is no description.
    #[serde(default)]
    #[schema(pattern = r"^\s*(\S([\s\S]{0,498}\S)?)?\s*$")]
    pub description: Option<String>,
    #[schema(pattern = r"^\s*\S([\s\S]{0,48}\S)?\s*$")]
    pub metric: String,
    #[schema(value_type = AlertCondition)]
    pub condition: String,
    #[schema(value_type = crate::measurements::http::DecimalValue)]
    pub threshold: Box<RawValue>,
    /// Default `warning`.
    #[serde(default)]
    #[schema(value_type = Option<AlertSeverity>)]
    pub severity: Option<String>,
    #[serde(default)]
    pub device_group_id: Option<i64>,
    /// Default true.
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// The fields to change. An absent field is left as it is, and so is a `null` one but for
/// `description` and `device_group_id` (`null` clears them); `threshold` may not be `null`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = AlertRulePatch)]
pub struct PatchRule {
    #[serde(default)]
    #[schema(pattern = r"^\s*\S([\s\S]{0,98}\S)?\s*$")]
    pub name: Option<String>,
    /// `null` or blank clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, pattern = r"^\s*(\S([\s\S]{0,498}\S)?)?\s*$")]
    pub description: Option<Option<String>>,
    #[serde(default)]
    #[schema(pattern = r"^\s*\S([\s\S]{0,48}\S)?\s*$")]
    pub metric: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<AlertCondition>)]
    pub condition: Option<String>,
    #[serde(default, deserialize_with = "raw_field")]
    #[schema(value_type = crate::measurements::http::DecimalValue)]
    pub threshold: Option<Box<RawValue>>,
    #[serde(default)]
    #[schema(value_type = Option<AlertSeverity>)]
    pub severity: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>)]
    pub device_group_id: Option<Option<i64>>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

fn condition(raw: &str) -> Result<Condition, ApiError> {
    Condition::parse(raw).ok_or_else(|| {
        ApiError::validation(
            NS,
            &["body", "condition"],
            "Input should be 'gt', 'gte', 'lt', 'lte', 'eq' or 'neq'",
            "enum",
        )
    })
}

fn severity(raw: &str) -> Result<Severity, ApiError> {
    Severity::parse(raw).ok_or_else(|| {
        ApiError::validation(
            NS,
            &["body", "severity"],
            "Input should be 'info', 'warning' or 'critical'",
            "enum",
        )
    })
}

fn threshold(raw: &RawValue) -> Result<Decimal, ApiError> {
    decimal_from_json(raw.get()).ok_or_else(|| {
        ApiError::validation(
            NS,
            &["body", "threshold"],
            "Input should be a valid decimal",
            "decimal_parsing",
        )
    })
}

fn rule_reply(rule: &AlertRule) -> Result<RuleView, ApiError> {
    RuleView::of(rule).ok_or_else(|| internal("a rule command left no rule"))
}

// The reply is built from the command's own events.
/// Managers and above.
#[utoipa::path(post, path = "/api/v1/monitoring/alert-rules", tag = tags::CORE, security(("bearer" = [])),
    request_body = CreateRule,
    responses((status = 201, body = RuleView),
        (status = 403, description = "Not enough permissions", body = Detail)))]
pub async fn create_rule(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<CreateRule>, ApiError>,
) -> Result<Response, ApiError> {
    require_manager(&caller)?;
    let Json(body) = body?;
    let spec = AlertRuleSpec {
        name: body.name,
        description: body.description,
        metric: body.metric,
        condition: condition(&body.condition)?,
        threshold: threshold(&body.threshold)?,
        severity: body
            .severity
            .as_deref()
            .map_or(Ok(Severity::Warning), severity)?,
        device_group_id: body.device_group_id,
        is_active: body.is_active.unwrap_or(true),
    };
    let rule = super::create_rule(&state.store, meta(&caller), spec)
        .await
        .map_err(alert_error)?;
    Ok((StatusCode::CREATED, axum::Json(rule_reply(&rule)?)).into_response())
}

/// Answers the rule; managers and above.
#[utoipa::path(patch, path = "/api/v1/monitoring/alert-rules/{rule_id}", tag = tags::CORE,
    security(("bearer" = [])), params(("rule_id" = i64, Path, description = "Alert rule id")),
    request_body(content = Option<PatchRule>),
    responses((status = 200, body = RuleView),
        (status = 403, description = "Not enough permissions", body = Detail),
        (status = 404, description = "Alert rule not found", body = Detail),
        (status = 409, description = "Conflicting update, try again", body = Detail)))]
pub async fn patch_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(rule_id): Path<String>,
    body: Result<Json<Option<PatchRule>>, ApiError>,
) -> Result<Json<RuleView>, ApiError> {
    require_manager(&caller)?;
    let Json(body) = body?;
    let rule_id = int_path(&rule_id, "rule_id")?;
    let body = body.unwrap_or_default();
    let changes = AlertRuleChanges {
        name: body.name,
        description: body.description,
        metric: body.metric,
        condition: body.condition.as_deref().map(condition).transpose()?,
        threshold: body.threshold.as_deref().map(threshold).transpose()?,
        severity: body.severity.as_deref().map(severity).transpose()?,
        device_group_id: body.device_group_id,
        is_active: body.is_active,
    };
    let rule = super::update_rule(&state.store, meta(&caller), rule_id, changes)
        .await
        .map_err(alert_error)?;
    Ok(Json(rule_reply(&rule)?))
}

/// Managers and above.
#[utoipa::path(delete, path = "/api/v1/monitoring/alert-rules/{rule_id}", tag = tags::CORE,
    security(("bearer" = [])), params(("rule_id" = i64, Path, description = "Alert rule id")),
    responses((status = 204, description = "Deleted"),
        (status = 403, description = "Not enough permissions", body = Detail),
        (status = 404, description = "Alert rule not found", body = Detail),
        (status = 409, description = "Conflicting update, try again", body = Detail)))]
pub async fn delete_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(rule_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_manager(&caller)?;
    let rule_id = int_path(&rule_id, "rule_id")?;
    super::delete_rule(&state.store, meta(&caller), rule_id)
        .await
        .map_err(alert_error)?;
    Ok(StatusCode::NO_CONTENT)
}
