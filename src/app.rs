//! The HTTP router: one router per client namespace, merged, and the OpenAPI document they
//! describe.

use crate::http::middleware;
use crate::routes;
use crate::state::AppState;
use axum::Router;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
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

pub fn router(state: AppState) -> Router {
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let (routes, doc) = api().split_for_parts();
    let doc = crate::openapi::document(doc);
    let doc_json = doc.to_json().expect("the OpenAPI document serializes");
    let slash_routes = middleware::SlashRoutes::new(doc.paths.paths.keys().map(String::as_str));
    routes
        .layer(axum::Extension(routes::system::OpenApiJson(Arc::new(doc_json))))
        .fallback(move |method, uri| middleware::not_found(slash_routes.clone(), method, uri))
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
        .layer(CatchPanicLayer::custom(middleware::panic_response))
        .layer(axum::middleware::from_fn(middleware::shape_panic))
        .with_state(state)
}
