//! Overload and slow-client protection (issue 17): bounded concurrency with load shedding,
//! a deadline for the request body, a deadline for the handler. Each refusal answers in the
//! namespace's shape and is counted.

use super::middleware::body_limit_for_path;
use super::{ApiError, Namespace};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// Probes answer even under overload: an orchestrator must see the process alive and
/// Prometheus must see the overload.
fn is_probe(path: &str) -> bool {
    matches!(path, "/metrics" | "/health" | "/api/v1/system/health")
}

/// Seconds a shed client is asked to wait.
const SHED_RETRY_AFTER_SECS: u64 = 1;

/// True when a body error is (or wraps) a length-limit refusal: the outer `limit_body` layer's
/// refusal arrives wrapped in axum's body error.
fn over_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

pub async fn protect(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ns = Namespace::of_uri(req.uri());
    let path = req.uri().path().to_owned();
    let _permit = if is_probe(&path) {
        None
    } else {
        let waiting = state.in_flight.clone().acquire_owned();
        match tokio::time::timeout(state.config.queue_wait, waiting).await {
            Ok(Ok(permit)) => Some(permit),
            _ => {
                metrics::counter!("fleet_http_refused_total", "reason" => "overloaded")
                    .increment(1);
                let mut err = ApiError::in_namespace(
                    ns,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Server is busy; retry later",
                );
                err.retry_after_secs = Some(SHED_RETRY_AFTER_SECS);
                return err.into_response();
            }
        }
    };

    // The whole body within its deadline, so a trickling client holds no handler (and no
    // pooled connection) while it sends.
    let (parts, body) = req.into_parts();
    let limit = body_limit_for_path(&path);
    let read = tokio::time::timeout(
        state.config.body_timeout,
        Limited::new(body, limit).collect(),
    );
    let bytes = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(err)) if over_limit(err.as_ref()) => {
            return ApiError::payload_too_large(ns, limit).into_response()
        }
        Ok(Err(_)) => {
            return ApiError::in_namespace(
                ns,
                StatusCode::BAD_REQUEST,
                "Could not read the request body",
            )
            .into_response()
        }
        Err(_) => {
            metrics::counter!("fleet_http_refused_total", "reason" => "slow_body").increment(1);
            return ApiError::in_namespace(
                ns,
                StatusCode::REQUEST_TIMEOUT,
                "Request body was not received in time",
            )
            .into_response();
        }
    };
    let req = Request::from_parts(parts, Body::from(bytes));

    // A panicking handler answers the namespace's bare 500 (the panic hook has printed it; the
    // reply carries nothing of it).
    let run = std::panic::AssertUnwindSafe(next.run(req)).catch_unwind();
    match tokio::time::timeout(state.config.handler_timeout, run).await {
        Ok(Ok(response)) => response,
        Ok(Err(_)) => ApiError::internal(ns, "the handler panicked").into_response(),
        Err(_) => {
            metrics::counter!("fleet_http_refused_total", "reason" => "handler_timeout")
                .increment(1);
            tracing::warn!(
                timeout_secs = state.config.handler_timeout.as_secs_f64(),
                "handler timed out; answered 503"
            );
            ApiError::in_namespace(
                ns,
                StatusCode::SERVICE_UNAVAILABLE,
                "The server did not answer in time",
            )
            .into_response()
        }
    }
}
