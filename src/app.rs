//! The HTTP router: one router per client namespace, merged.

use crate::http::middleware;
use crate::routes;
use crate::state::AppState;
use axum::response::IntoResponse;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub fn router(state: AppState) -> Router {
    let cors = cors(&state.config.cors_origins);
    let router = Router::new()
        .merge(routes::system::router())
        .merge(routes::core::router())
        .merge(routes::nueyne::router())
        .merge(routes::koodtx::router())
        .merge(routes::drf::router())
        .fallback(middleware::not_found)
        .layer(axum::middleware::from_fn(
            middleware::shape_method_not_allowed,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::guard::protect,
        ))
        .layer(axum::middleware::from_fn(middleware::limit_body))
        .layer(axum::extract::DefaultBodyLimit::disable());
    // Preflights are answered before shedding and body reads, and still logged.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        .layer(axum::middleware::from_fn(middleware::observe))
        .layer(CatchPanicLayer::custom(|_| {
            crate::http::ApiError::detail(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
            )
            .into_response()
        }))
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
