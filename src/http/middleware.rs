//! Request-level middleware: namespace-shaped body limits (checked before authentication),
//! request context, span, log line and timing, and the 404 fallback.

use super::{ApiError, Namespace};
use crate::es::context;
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fleetstream_events::EventMetadata;
use std::time::Instant;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const CORRELATION_ID: HeaderName = HeaderName::from_static("x-correlation-id");

/// Default request body limit (CONTRACT §7).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;
/// KooDTX pushes carry up to 10,000 samples and more.
pub const SYNC_PUSH_BODY_LIMIT: usize = 32 * 1024 * 1024;

pub fn body_limit_for(ns: Namespace) -> usize {
    match ns {
        Namespace::KooDtx => SYNC_PUSH_BODY_LIMIT,
        _ => BODY_LIMIT,
    }
}

pub fn body_limit_for_path(path: &str) -> usize {
    if path.trim_end_matches('/') == "/api/sync/push" {
        SYNC_PUSH_BODY_LIMIT
    } else {
        BODY_LIMIT
    }
}

/// Refuses an oversized declared body at once and caps streamed ones, before any extractor
/// (authentication included) runs.
pub async fn limit_body(req: Request, next: Next) -> Response {
    let ns = Namespace::of_uri(req.uri());
    let limit = body_limit_for_path(req.uri().path());
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return ApiError::payload_too_large(ns, limit).into_response();
    }
    let req = req.map(|body| Body::new(http_body_util::Limited::new(body, limit)));
    next.run(req).await
}

/// Longest `x-request-id` / `x-correlation-id` taken from a client; anything longer or not
/// plain visible ASCII is replaced (it would otherwise be copied into every event).
const MAX_CLIENT_ID_LEN: usize = 128;

fn usable_id(value: Option<&HeaderValue>) -> Option<String> {
    let raw = value?.to_str().ok()?.trim();
    (!raw.is_empty() && raw.len() <= MAX_CLIENT_ID_LEN && raw.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| raw.to_owned())
}

/// Per request: the event-metadata context (request id = the incoming `x-request-id` or a
/// generated one, correlation id = the incoming `x-correlation-id` or the request id, door =
/// method and route), a tracing span, `fleet_http_request_duration_seconds`, and one `info`
/// line when the reply leaves (method, route, status, latency, request id, actor).
pub async fn observe(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let request_id = usable_id(req.headers().get(REQUEST_ID)).unwrap_or_else(|| {
        // Time-ordered, so the correlation index (which holds request ids) grows at its right edge.
        let id = uuid::Uuid::now_v7().to_string();
        if let Ok(value) = HeaderValue::from_str(&id) {
            req.headers_mut().insert(REQUEST_ID, value);
        }
        id
    });
    let correlation_id =
        usable_id(req.headers().get(CORRELATION_ID)).unwrap_or_else(|| request_id.clone());
    let metadata = EventMetadata {
        actor: None,
        request_id: Some(request_id.clone()),
        correlation_id: Some(correlation_id.clone()),
        causation_id: None,
        door: Some(format!("{method} {route}")),
    };
    let span = tracing::info_span!("request", %method, %route, %request_id);
    let (mut response, actor) = context::scope(metadata, async {
        let response = next.run(req).await;
        (response, context::current().and_then(|m| m.actor))
    })
    .instrument(span.clone())
    .await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    metrics::histogram!(
        "fleet_http_request_duration_seconds",
        "method" => method.clone(),
        "route" => route.clone(),
        "status" => status.to_string(),
    )
    .record(latency.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            %method,
            %route,
            status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            %request_id,
            actor,
            "request"
        );
    });
    for (name, id) in [(REQUEST_ID, &request_id), (CORRELATION_ID, &correlation_id)] {
        if let Ok(value) = HeaderValue::from_str(id) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Every route template, to tell a path that only differs from a route by its trailing slash
/// from an unknown one.
#[derive(Clone, Default)]
pub struct SlashRoutes(std::sync::Arc<matchit::Router<()>>);

impl SlashRoutes {
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        let mut router = matchit::Router::new();
        for template in templates {
            // Templates come from the router itself, so they are valid and distinct.
            let _ = router.insert(template, ());
        }
        Self(std::sync::Arc::new(router))
    }

    fn matches(&self, path: &str) -> bool {
        self.0.at(path).is_ok()
    }
}

/// Unknown routes: 404 in the namespace's shape, except a path one slash away from a route,
/// answered as each seed's framework does:
/// - DRF (Django `APPEND_SLASH`): a missing trailing slash redirects to the route, 301 for
///   GET/HEAD and 308 for the other methods, so the client repeats its method and body
///   (Django's debug mode would raise instead);
/// - FastAPI (Starlette `redirect_slashes`): an extra or missing trailing slash, 307;
/// - Flask routes without a trailing slash do not match one: 404.
pub async fn not_found(
    slash_routes: SlashRoutes,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    use axum::http::{Method, StatusCode};
    let ns = Namespace::of_uri(&uri);
    let path = uri.path();
    let other = match path.strip_suffix('/') {
        Some(trimmed) if !trimmed.is_empty() => trimmed.to_owned(),
        Some(_) => String::new(),
        None => format!("{path}/"),
    };
    let status = match ns {
        Namespace::Drf if !path.ends_with('/') => {
            if method == Method::GET || method == Method::HEAD {
                Some(StatusCode::MOVED_PERMANENTLY)
            } else {
                Some(StatusCode::PERMANENT_REDIRECT)
            }
        }
        Namespace::Core | Namespace::Nueyne => Some(StatusCode::TEMPORARY_REDIRECT),
        _ => None,
    };
    if let Some(status) = status.filter(|_| !other.is_empty() && slash_routes.matches(&other)) {
        let location = match uri.query() {
            Some(q) => format!("{other}?{q}"),
            None => other,
        };
        if let Ok(location) = axum::http::HeaderValue::from_str(&location) {
            return (status, [(header::LOCATION, location)]).into_response();
        }
    }
    ApiError::not_found(ns).into_response()
}

/// Marks the 500 that `CatchPanicLayer` makes of a panic, so [`shape_panic`] can give it the
/// namespace's shape (the panic handler does not see the request).
#[derive(Clone, Copy)]
pub struct Panicked;

pub fn panic_response(_: Box<dyn std::any::Any + Send>) -> Response {
    let mut response = axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response.extensions_mut().insert(Panicked);
    response
}

pub async fn shape_panic(req: Request, next: Next) -> Response {
    let ns = Namespace::of_uri(req.uri());
    let response = next.run(req).await;
    if response.extensions().get::<Panicked>().is_some() {
        return ApiError::server_error(ns).into_response();
    }
    response
}

/// A 405 from the router carries no body; give it the namespace's shape (DRF names the method).
pub async fn shape_method_not_allowed(req: Request, next: Next) -> Response {
    let ns = Namespace::of_uri(req.uri());
    let method = req.method().clone();
    let response = next.run(req).await;
    if response.status() == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        let allow = response.headers().get(header::ALLOW).cloned();
        let message = match ns {
            Namespace::Drf => format!("Method \"{method}\" not allowed."),
            _ => "Method Not Allowed".to_owned(),
        };
        let mut shaped = ApiError::in_namespace(ns, response.status(), message).into_response();
        if let Some(allow) = allow {
            shaped.headers_mut().insert(header::ALLOW, allow);
        }
        return shaped;
    }
    response
}
