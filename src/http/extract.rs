//! Json, Query and Form extractors whose rejections come out in the namespace's error shape
//! (never axum's plain-text rejections).

use super::{ApiError, Namespace};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub struct Json<T>(pub T);
pub struct Query<T>(pub T);
pub struct Form<T>(pub T);
/// Path parameters; a value that does not parse is the namespace's error, never axum's text.
pub struct Path<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

async fn read_body<S: Send + Sync>(
    req: Request,
    state: &S,
    ns: Namespace,
) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(ns, crate::http::middleware::body_limit_for(ns))
        } else {
            ApiError::in_namespace(
                ns,
                StatusCode::BAD_REQUEST,
                "Could not read the request body",
            )
        }
    })
}

/// Turns a serde failure (with its path) into the namespace's validation error.
fn deserialize_error(
    ns: Namespace,
    origin: &str,
    err: serde_path_to_error::Error<serde_json::Error>,
) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let message = inner.to_string();
    // serde reports a missing field at the parent's path; name the field itself.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned);
    let mut location: Vec<String> = vec![origin.to_owned()];
    location.extend(
        path.split('.')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(str::to_owned),
    );
    let (msg, kind) = match &missing {
        Some(field) => {
            location.push(field.clone());
            ("Field required".to_owned(), "missing")
        }
        None if inner.is_syntax() || inner.is_eof() => {
            ("JSON decode error".to_owned(), "json_invalid")
        }
        None => (strip_position(&message), "value_error"),
    };
    let location: Vec<&str> = location.iter().map(String::as_str).collect();
    match ns {
        Namespace::Drf if missing.is_some() => {
            ApiError::validation(ns, &location, "This field is required.", kind)
        }
        Namespace::Drf if inner.is_syntax() || inner.is_eof() => {
            ApiError::detail(StatusCode::BAD_REQUEST, "JSON parse error")
        }
        _ => ApiError::validation(ns, &location, msg, kind),
    }
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ns = Namespace::of_uri(req.uri());
        let bytes = read_body(req, state, ns).await?;
        let body: &[u8] = if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            b"null"
        } else {
            &bytes
        };
        let mut de = serde_json::Deserializer::from_slice(body);
        let value = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| deserialize_error(ns, "body", e))?;
        Ok(Json(value))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ns = Namespace::of_uri(req.uri());
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let bytes = read_body(req, state, ns).await?;
        if is_json {
            let mut de = serde_json::Deserializer::from_slice(&bytes);
            return serde_path_to_error::deserialize(&mut de)
                .map(Form)
                .map_err(|e| deserialize_error(ns, "body", e));
        }
        // Forms carry strings only; go through a JSON map so numbers and flags still parse.
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| ApiError::validation(ns, &["body"], "Invalid form body", "value_error"))?;
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_path_to_error::deserialize(serde_json::Value::Object(map))
            .map(Form)
            .map_err(|e| deserialize_error(ns, "body", e))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ns = Namespace::of_uri(&parts.uri);
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|err| {
                let field = err.path().to_string();
                let message = err.into_inner().to_string();
                let missing = message
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next())
                    .map(str::to_owned);
                let (field, msg, kind) = match missing {
                    Some(f) => (f, "Field required".to_owned(), "missing"),
                    None => (field, message, "value_error"),
                };
                ApiError::validation(ns, &["query", &field], msg, kind)
            })
    }
}

fn form_urlencoded_parse(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ns = Namespace::of_uri(&parts.uri);
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => {
                // A single value or a tuple is reported without its name; the route knows it.
                let names: Vec<String> =
                    axum::extract::RawPathParams::from_request_parts(parts, state)
                        .await
                        .map(|raw| raw.iter().map(|(k, _)| k.to_owned()).collect())
                        .unwrap_or_default();
                Err(path_error(ns, rejection, &names))
            }
        }
    }
}

/// FastAPI answers a path value of the wrong type with its 422 detail list; Django's and
/// Flask's `<int:…>` converters simply do not match the route, so those namespaces answer 404.
fn path_error(
    ns: Namespace,
    rejection: axum::extract::rejection::PathRejection,
    names: &[String],
) -> ApiError {
    use axum::extract::path::ErrorKind;
    use axum::extract::rejection::PathRejection;
    match ns {
        Namespace::Drf | Namespace::KooDtx => return ApiError::not_found(ns),
        Namespace::Core | Namespace::Nueyne => {}
    }
    let PathRejection::FailedToDeserializePathParams(err) = rejection else {
        return ApiError::internal(ns, rejection.body_text());
    };
    let (key, expected) = match err.kind() {
        ErrorKind::ParseErrorAtKey {
            key, expected_type, ..
        } => (key.clone(), *expected_type),
        ErrorKind::ParseError { expected_type, .. } => {
            (names.last().cloned().unwrap_or_default(), *expected_type)
        }
        ErrorKind::ParseErrorAtIndex {
            index,
            expected_type,
            ..
        } => (
            names.get(*index).cloned().unwrap_or_default(),
            *expected_type,
        ),
        _ => (String::new(), ""),
    };
    let integer = [
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "isize",
    ]
    .contains(&expected);
    let (msg, kind) = if integer {
        (
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing",
        )
    } else {
        ("Input should be a valid value", "value_error")
    };
    let mut location = vec!["path"];
    if !key.is_empty() {
        location.push(&key);
    }
    ApiError::validation(ns, &location, msg, kind)
}
