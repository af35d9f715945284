//! `GET /docs`: Swagger UI over `/openapi.json`, its assets compiled into the binary (vendored
//! from npm `swagger-ui-dist` by `scripts/vendor-swagger-ui.sh`), so nothing is fetched from a
//! CDN and the build downloads nothing.

use crate::http::{ApiError, Namespace, Path};
use crate::openapi::tags;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>fleetstream API</title>
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      layout: "BaseLayout",
      deepLinking: true,
      persistAuthorization: true,
    });
  </script>
</body>
</html>
"##;

/// (file name, content type, bytes)
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "favicon-32x32.png",
        "image/png",
        include_bytes!("../assets/swagger-ui/favicon-32x32.png"),
    ),
    (
        "LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../assets/swagger-ui/LICENSE"),
    ),
];

/// The interactive documentation page.
#[utoipa::path(get, path = "/docs", tag = tags::SYSTEM,
    responses((status = 200, description = "Swagger UI", body = String, content_type = "text/html")))]
pub async fn swagger_ui() -> Html<&'static str> {
    Html(INDEX)
}

/// A file of the page (Swagger UI's script, style, icon and licence).
#[utoipa::path(get, path = "/docs/{file}", tag = tags::SYSTEM,
    params(("file" = String, Path, description = "swagger-ui-bundle.js, swagger-ui.css, favicon-32x32.png or LICENSE")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript"), (String = "text/css"), (String = "image/png"), (String = "text/plain"))),
        (status = 404, description = "Not Found", body = crate::openapi::Detail)))]
pub async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *bytes,
        )
            .into_response(),
        None => ApiError::not_found(Namespace::Core).into_response(),
    }
}
