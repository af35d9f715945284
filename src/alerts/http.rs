//! Seed 002 `/api/v1/monitoring`: health, alerts (unacknowledged, newest first), acknowledge,
//! alert rules. Every operation is for managers and above (the seed's RBAC for the section).

use super::domain::{AlertError, AlertRule, AlertState};
use crate::auth::Caller;
use crate::es::CommandError;
use crate::http::{ApiError, Json, Namespace, Query};
use crate::measurements::domain::decimal_from_json;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use fleetstream_events::{AlertRuleChanges, AlertRuleSpec, Condition, EventMetadata, Severity};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

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

#[derive(Debug, Serialize)]
pub struct HealthReply {
    pub status: &'static str,
    pub postgres: &'static str,
    pub nats: &'static str,
    pub mqtt: &'static str,
    pub projections: Vec<ProjectionLag>,
    pub active_devices: i64,
    pub active_alerts: i64,
}

#[derive(Debug, Serialize)]
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

/// `GET /api/v1/monitoring/health`. MQTT is the NATS server's MQTT listener, so its state is
/// the NATS connection's.
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

#[derive(Debug, Deserialize)]
pub struct AlertsQuery {
    #[serde(default)]
    pub skip: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct AlertView {
    pub id: i64,
    pub rule_id: i64,
    pub device_id: i64,
    pub severity: String,
    pub message: String,
    pub is_acknowledged: bool,
    pub acknowledged_by: Option<i64>,
    #[serde(serialize_with = "iso_opt")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "iso_ser")]
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

/// `GET /api/v1/monitoring/alerts`: unacknowledged alerts, newest first.
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
        e => internal(e),
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

/// `POST /api/v1/monitoring/alerts/{alert_id}/acknowledge` → 200 with the alert.
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
#[derive(Debug, Serialize)]
pub struct RuleView {
    pub id: i64,
    pub name: String,
    pub description: Option<String>,
    pub metric: String,
    pub condition: &'static str,
    #[serde(with = "rust_decimal::serde::float")]
    pub threshold: Decimal,
    pub severity: &'static str,
    pub device_group_id: Option<i64>,
    pub is_active: bool,
    pub created_at: String,
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

/// `GET /api/v1/monitoring/alert-rules`, by id.
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

#[derive(Debug, Deserialize)]
pub struct CreateRule {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub metric: String,
    pub condition: String,
    pub threshold: Box<RawValue>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub device_group_id: Option<i64>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
pub struct PatchRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub description: Option<Option<String>>,
    #[serde(default)]
    pub metric: Option<String>,
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default, deserialize_with = "raw_field")]
    pub threshold: Option<Box<RawValue>>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
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

/// `POST /api/v1/monitoring/alert-rules` → 201, built from the command's own events.
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

/// `PATCH /api/v1/monitoring/alert-rules/{rule_id}` → the rule.
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

/// `DELETE /api/v1/monitoring/alert-rules/{rule_id}` → 204.
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
