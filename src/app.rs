//! The HTTP router: one router per client namespace, merged, and the OpenAPI document they
//! describe.

use crate::http::middleware;
use crate::routes;
use crate::state::AppState;
use axum::Router;
use socketioxide::layer::SocketIoLayer;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa_axum::router::OpenApiRouter;

/// Every namespace's routes with their descriptions. A new namespace router is merged here.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(routes::system::router())
        .merge(routes::core::router())
        .merge(routes::nueyne::router())
        .merge(routes::koodtx::router())
        .merge(routes::drf::router())
}

/// The OpenAPI document of every route the server has.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = api().split_for_parts();
    crate::openapi::document(doc)
}

/// Every namespace's routes behind the request middleware (no Socket.IO: tests drive it
/// without a socket).
pub fn router(state: AppState) -> Router {
    build(state, None)
}

/// [`router`] with Socket.IO at `/socket.io/`, inside the request logging and CORS layers
/// (the browser dashboard connects from the origins REST allows) and outside load shedding
/// and body limits (its long-lived connections are not requests in flight).
pub fn router_with_realtime(state: AppState, socket_io: SocketIoLayer) -> Router {
    build(state, Some(socket_io))
}

fn build(state: AppState, socket_io: Option<SocketIoLayer>) -> Router {
    let cors = cors(&state.config.cors_origins);
    let (routes, doc) = api().split_for_parts();
    let doc = crate::openapi::document(doc);
    let doc_json = doc.to_json().expect("the OpenAPI document serializes");
    let slash_routes = middleware::SlashRoutes::new(doc.paths.paths.keys().map(String::as_str));
    let router = routes
        .layer(axum::Extension(routes::system::OpenApiJson(Arc::new(
            doc_json,
        ))))
        .fallback(move |method, uri| middleware::not_found(slash_routes.clone(), method, uri))
        .layer(axum::middleware::from_fn(
            middleware::shape_method_not_allowed,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::guard::protect,
        ))
        .layer(axum::middleware::from_fn(middleware::limit_body))
        .layer(axum::extract::DefaultBodyLimit::disable());
    let router = match socket_io {
        Some(layer) => router.layer(layer),
        None => router,
    };
    // Preflights are answered before shedding and body reads, and still logged.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(axum::middleware::from_fn(middleware::observe))
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::shape_panic))
        .with_state(state)
}

/// CORS for the browser dashboard (seed 002): only the origins in `FLEET_CORS_ORIGINS` (none by
/// default, so browsers on other origins are refused). Listed origins are echoed, never `*`,
/// which is what the Fetch spec requires for requests with credentials.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let ids = [
        HeaderName::from_static("x-request-id"),
        HeaderName::from_static("x-correlation-id"),
    ];
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                ids[0].clone(),
                ids[1].clone(),
            ])
            .expose_headers([ids[0].clone(), ids[1].clone(), header::RETRY_AFTER])
            .allow_credentials(true)
            .max_age(std::time::Duration::from_secs(600)),
    )
}
