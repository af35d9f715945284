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
/// The raw body, for handlers that read it themselves; over the limit is the namespace's 413.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ns = Namespace::of_uri(req.uri());
        read_body(req, state, ns).await.map(RawBody)
    }
}

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
    let limit = crate::http::middleware::body_limit_for_path(req.uri().path());
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(ns, limit)
        } else {
            ApiError::in_namespace(
                ns,
                StatusCode::BAD_REQUEST,
                "Could not read the request body",
            )
        }
    })
}

/// Where a JSON syntax error is, as FastAPI reports it: the character offset into the body.
fn char_offset(body: &[u8], line: usize, column: usize) -> usize {
    let text = String::from_utf8_lossy(body);
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(|l| l.chars().count())
        .sum();
    line_start + column.saturating_sub(1)
}

/// Malformed JSON: FastAPI's `json_invalid` with the character offset as the location and the
/// parser's complaint (with line and column) in `ctx.error`, instead of a location of `?`.
fn syntax_error(ns: Namespace, origin: &str, inner: &serde_json::Error, body: &[u8]) -> ApiError {
    let offset = char_offset(body, inner.line(), inner.column());
    let complaint = inner.to_string();
    match ns {
        Namespace::Nueyne | Namespace::Core => ApiError::with_body(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::json!({ "detail": [{
                "loc": [origin, offset],
                "msg": "JSON decode error",
                "type": "json_invalid",
                "ctx": { "error": complaint },
            }] }),
        ),
        Namespace::Drf => ApiError::detail(
            StatusCode::BAD_REQUEST,
            format!("JSON parse error - {complaint}"),
        ),
        Namespace::KooDtx => ApiError::error(StatusCode::BAD_REQUEST, "Invalid request format"),
    }
}

/// Turns a serde failure (with its path) into the namespace's validation error.
fn deserialize_error(
    ns: Namespace,
    origin: &str,
    err: serde_path_to_error::Error<serde_json::Error>,
    body: &[u8],
) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return syntax_error(ns, origin, &inner, body);
    }
    let message = inner.to_string();
    // serde reports a missing field at the parent's path; name the field itself.
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned);
    let mut location: Vec<String> = vec![origin.to_owned()];
    location.extend(
        // `?` is serde_path_to_error's "somewhere unknown": no use to a person.
        path.split('.')
            .filter(|s| !s.is_empty() && *s != "." && *s != "?")
            .map(str::to_owned),
    );
    let (msg, kind) = match &missing {
        Some(field) => {
            location.push(field.clone());
            ("Field required".to_owned(), "missing")
        }
        None => (strip_position(&message), "value_error"),
    };
    let location: Vec<&str> = location.iter().map(String::as_str).collect();
    match ns {
        Namespace::Drf if missing.is_some() => {
            ApiError::validation(ns, &location, "This field is required.", kind)
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
        refuse_array_for_object::<T>(ns, body)?;
        let mut de = serde_json::Deserializer::from_slice(body);
        let value = match serde_path_to_error::deserialize(&mut de) {
            Ok(value) => value,
            Err(err) => lax_integers(ns, body)
                .ok_or_else(|| deserialize_error(ns, "body", err, body))?
                .map_err(|e| deserialize_error(ns, "body", e, body))?,
        };
        if has_escaped_nul(body) {
            return Err(nul_error(ns, "body"));
        }
        Ok(Json(value))
    }
}

/// FastAPI (pydantic's lax mode) takes `3.0` for an integer field; serde does not. When a
/// FastAPI-namespace body fails, it is read again with every number written `<digits>.0…`
/// rewritten as its integer, in the text (no value passes through `f64` on the way).
fn lax_integers<T: DeserializeOwned>(
    ns: Namespace,
    body: &[u8],
) -> Option<Result<T, serde_path_to_error::Error<serde_json::Error>>> {
    if !matches!(ns, Namespace::Core | Namespace::Nueyne) {
        return None;
    }
    let rewritten = integral_floats_as_integers(body)?;
    let mut de = serde_json::Deserializer::from_slice(&rewritten);
    Some(serde_path_to_error::deserialize(&mut de))
}

/// JSON text with each number token of the form `-?digits.0+` replaced by `-?digits`; `None`
/// when there is none. Strings are skipped (with their escapes).
fn integral_floats_as_integers(json: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(json.len());
    let mut changed = false;
    let mut i = 0;
    while i < json.len() {
        let b = json[i];
        if b == b'"' {
            let start = i;
            i += 1;
            while i < json.len() && json[i] != b'"' {
                i += if json[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(json.len());
            out.extend_from_slice(&json[start..i]);
        } else if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < json.len()
                && matches!(json[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
            {
                i += 1;
            }
            let token = &json[start..i];
            match token.iter().position(|c| *c == b'.') {
                Some(dot)
                    if dot > 0
                        && !token[dot + 1..].is_empty()
                        && token[dot + 1..].iter().all(|c| *c == b'0')
                        && token[..dot]
                            .iter()
                            .enumerate()
                            .all(|(k, c)| c.is_ascii_digit() || (k == 0 && *c == b'-')) =>
                {
                    out.extend_from_slice(&token[..dot]);
                    changed = true;
                }
                _ => out.extend_from_slice(token),
            }
        } else {
            out.push(b);
            i += 1;
        }
    }
    changed.then_some(out)
}

/// Postgres text and jsonb cannot hold U+0000; a value carrying it would fail deep in a
/// command as a 500. It is refused at the door like any other invalid value.
fn nul_error(ns: Namespace, origin: &str) -> ApiError {
    ApiError::validation(
        ns,
        &[origin],
        "String should not contain the NUL character",
        "string_nul",
    )
}

/// A `\u0000` escape in JSON text (an escaped backslash before `u0000` is not one).
fn has_escaped_nul(json: &[u8]) -> bool {
    let needle = b"\\u0000";
    json.windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .any(|(at, _)| {
            let backslashes = json[..=at]
                .iter()
                .rev()
                .take_while(|b| **b == b'\\')
                .count();
            backslashes % 2 == 1
        })
}

/// serde lets a struct be read from a JSON array (its fields in order); FastAPI and DRF models
/// only take an object. A top-level array is refused when the handler expects an object.
fn refuse_array_for_object<T: DeserializeOwned>(
    ns: Namespace,
    body: &[u8],
) -> Result<(), ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') || !shape::expects_object::<T>() {
        return Ok(());
    }
    Err(match ns {
        Namespace::Drf => ApiError::with_body(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ),
        _ => ApiError::validation(
            ns,
            &["body"],
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
        ),
    })
}

mod shape {
    //! Asks a type how it wants to be deserialized, without any input: a derived struct calls
    //! `deserialize_struct`; `Option<T>` and newtypes are looked through.
    use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
    use std::cell::Cell;

    struct Probe<'a>(&'a Cell<bool>);

    fn stop<T>() -> Result<T, de::value::Error> {
        Err(de::Error::custom("probe"))
    }

    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            stop()
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            _: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.set(true);
            stop()
        }

        fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Self::Error> {
            v.visit_some(self)
        }

        fn deserialize_newtype_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            v: V,
        ) -> Result<V::Value, Self::Error> {
            v.visit_newtype_struct(self)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf unit unit_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    pub fn expects_object<T: DeserializeOwned>() -> bool {
        let is_struct = Cell::new(false);
        let _ = T::deserialize(Probe(&is_struct));
        is_struct.get()
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
            refuse_array_for_object::<T>(ns, &bytes)?;
            let mut de = serde_json::Deserializer::from_slice(&bytes);
            let value = serde_path_to_error::deserialize(&mut de)
                .map_err(|e| deserialize_error(ns, "body", e, &bytes))?;
            if has_escaped_nul(&bytes) {
                return Err(nul_error(ns, "body"));
            }
            return Ok(Form(value));
        }
        // Forms carry strings only; go through a JSON map so numbers and flags still parse.
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| ApiError::validation(ns, &["body"], "Invalid form body", "value_error"))?;
        if pairs
            .iter()
            .any(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            return Err(nul_error(ns, "body"));
        }
        let map: serde_json::Map<String, serde_json::Value> = pairs
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_path_to_error::deserialize(serde_json::Value::Object(map))
            .map(Form)
            .map_err(|e| deserialize_error(ns, "body", e, &[]))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ns = Namespace::of_uri(&parts.uri);
        let query = parts.uri.query().unwrap_or_default();
        if form_urlencoded_parse(query).any(|(k, v)| k.contains('\0') || v.contains('\0')) {
            return Err(nul_error(ns, "query"));
        }
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        let first = serde_path_to_error::deserialize(de);
        // As with bodies, FastAPI takes `3.0` for an integer parameter.
        let lax = || {
            let pairs: Vec<(String, String)> = form_urlencoded_parse(query)
                .map(|(k, v)| {
                    let v = match v.strip_suffix(".0").filter(|i| i.parse::<i64>().is_ok()) {
                        Some(integer) => integer.to_owned(),
                        None => v.into_owned(),
                    };
                    (k.into_owned(), v)
                })
                .collect();
            let encoded = serde_urlencoded::to_string(&pairs).ok()?;
            serde_urlencoded::from_str::<T>(&encoded).ok()
        };
        let retried = match (&first, ns) {
            (Err(_), Namespace::Core | Namespace::Nueyne) => lax(),
            _ => None,
        };
        if let Some(value) = retried {
            return Ok(Query(value));
        }
        first.map(Query).map_err(|err| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_become_integers_outside_strings_only() {
        let json = br#"{"a": 3.0, "b": "3.0", "c": -2.00, "d": 1.5, "e": 1e3, "f": 3758243138814178.0, "g": "x\"3.0", "h": [0.0,7.000]}"#;
        let out = integral_floats_as_integers(json).expect("changed");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a": 3, "b": "3.0", "c": -2, "d": 1.5, "e": 1e3, "f": 3758243138814178, "g": "x\"3.0", "h": [0,7]}"#
        );
        assert!(integral_floats_as_integers(br#"{"a": 1.5, "b": "2.0"}"#).is_none());
    }

    #[test]
    fn escaped_nul_is_found_but_not_an_escaped_backslash() {
        assert!(has_escaped_nul(br#"{"a": "x\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"a": "C:\\u0000"}"#));
        assert!(has_escaped_nul(br#"{"a": "C:\\\u0000"}"#));
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        a: i64,
    }

    #[test]
    fn structs_expect_objects_and_lists_do_not() {
        assert!(shape::expects_object::<Body>());
        assert!(shape::expects_object::<Option<Body>>());
        assert!(!shape::expects_object::<Vec<Body>>());
        assert!(!shape::expects_object::<serde_json::Value>());
    }
}
