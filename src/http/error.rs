use crate::es::CommandError;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// The five client contracts share handlers but not error shapes; the path decides the shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// `/api/v1|v2/{addnox,lux}/…` (FastAPI): `{"detail": ..}`, validation 422 detail list.
    Nueyne,
    /// `/api/v1/…` core (FastAPI): `{"detail": ..}`, validation 422 detail list.
    Core,
    /// `/api/auth`, `/api/sync`, `/health` (Flask): `{"error": ..}`; token errors `{"msg": ..}`.
    KooDtx,
    /// `/api/token`, `/api/devices` (Django REST framework): `{"detail": ..}`, 400 field map.
    Drf,
}

impl Namespace {
    pub fn of_path(path: &str) -> Self {
        let p = path.trim_end_matches('/');
        let under = |prefix: &str| p == prefix || p.starts_with(&format!("{prefix}/"));
        if [
            "/api/v1/addnox",
            "/api/v1/lux",
            "/api/v2/addnox",
            "/api/v2/lux",
        ]
        .iter()
        .any(|prefix| under(prefix))
        {
            Self::Nueyne
        } else if under("/api/auth") || under("/api/sync") || p == "/health" {
            Self::KooDtx
        } else if under("/api/token") || under("/api/devices") {
            Self::Drf
        } else {
            Self::Core
        }
    }

    pub fn of_uri(uri: &Uri) -> Self {
        Self::of_path(uri.path())
    }
}

/// An error reply in the shape of the namespace that produced it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn with_body(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            body,
            retry_after_secs: None,
        }
    }

    /// `{"detail": message}`
    pub fn detail(status: StatusCode, message: impl Into<String>) -> Self {
        Self::with_body(status, json!({ "detail": message.into() }))
    }

    /// `{"error": message}` (KooDTX)
    pub fn error(status: StatusCode, message: impl Into<String>) -> Self {
        Self::with_body(status, json!({ "error": message.into() }))
    }

    /// `{"msg": message}` (flask-jwt-extended token errors)
    pub fn msg(status: StatusCode, message: impl Into<String>) -> Self {
        Self::with_body(status, json!({ "msg": message.into() }))
    }

    /// A message in the namespace's plain shape.
    pub fn in_namespace(ns: Namespace, status: StatusCode, message: impl Into<String>) -> Self {
        match ns {
            Namespace::KooDtx => Self::error(status, message),
            _ => Self::detail(status, message),
        }
    }

    /// A request-validation failure on one field, in the namespace's validation shape:
    /// FastAPI 422 detail list, DRF 400 field map, KooDTX 400 `{"error"}`.
    pub fn validation(
        ns: Namespace,
        location: &[&str],
        message: impl Into<String>,
        kind: &str,
    ) -> Self {
        let message = message.into();
        match ns {
            Namespace::Nueyne | Namespace::Core => Self::with_body(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "detail": [{ "loc": location, "msg": message, "type": kind }] }),
            ),
            Namespace::Drf => {
                let field = location.last().copied().unwrap_or("non_field_errors");
                Self::with_body(StatusCode::BAD_REQUEST, json!({ field: [message] }))
            }
            Namespace::KooDtx => Self::error(StatusCode::BAD_REQUEST, "Invalid request format"),
        }
    }

    pub fn not_found(ns: Namespace) -> Self {
        match ns {
            Namespace::KooDtx => Self::error(StatusCode::NOT_FOUND, "Not found"),
            Namespace::Drf => Self::detail(StatusCode::NOT_FOUND, "Not found."),
            // Seeds 000/001, common errors.
            Namespace::Nueyne => Self::detail(StatusCode::NOT_FOUND, "Resource not found"),
            Namespace::Core => Self::detail(StatusCode::NOT_FOUND, "Not Found"),
        }
    }

    pub fn payload_too_large(ns: Namespace, limit_bytes: usize) -> Self {
        let message = format!(
            "Request body is larger than {} MiB",
            limit_bytes / (1024 * 1024)
        );
        Self::in_namespace(ns, StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    pub fn too_many_requests(ns: Namespace, retry_after_secs: u64) -> Self {
        let mut err = Self::in_namespace(
            ns,
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed login attempts",
        );
        err.retry_after_secs = Some(retry_after_secs.max(1));
        err
    }

    /// The database cannot be reached: 503 with `Retry-After`, so clients retry the request
    /// as it is instead of treating it as their own fault or as a server bug.
    pub fn unavailable(ns: Namespace) -> Self {
        let mut err =
            Self::in_namespace(ns, StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        err.retry_after_secs = Some(1);
        err
    }

    /// The answer to a command that failed for a reason of no domain's: over the size bound
    /// of one event → 413; the database out of reach → 503; anything else → a bare 500.
    pub fn command_failed<E: std::fmt::Debug>(ns: Namespace, err: CommandError<E>) -> Self {
        match err {
            CommandError::TooLarge(cause) => {
                tracing::info!(%cause, "command refused: event over the size bound");
                Self::in_namespace(
                    ns,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request payload is too large to record",
                )
            }
            CommandError::Database(cause) if crate::db::is_unavailable(&cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Self::unavailable(ns)
            }
            other => Self::internal(ns, other),
        }
    }

    /// Logs the cause and answers a bare 500 that leaks nothing, or a 503 when the cause is a
    /// database outage rather than a failure of this request.
    pub fn internal(ns: Namespace, cause: impl std::fmt::Display) -> Self {
        let cause = cause.to_string();
        if crate::db::is_unavailable_message(&cause) {
            tracing::warn!(error = %cause, "database unavailable");
            return Self::unavailable(ns);
        }
        tracing::error!(error = %cause, "internal error");
        Self::server_error(ns)
    }

    /// The namespace's 500 (seeds 000/001 spell theirs out).
    pub fn server_error(ns: Namespace) -> Self {
        let message = match ns {
            Namespace::Nueyne => "Internal server error. Please try again later.",
            _ => "Internal Server Error",
        };
        Self::in_namespace(ns, StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
