//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations.
//!
//! Every namespace router is a `utoipa_axum::router::OpenApiRouter` and adds its handlers with
//! `.routes(routes!(handler))`, so a route and its description are registered together (ADR
//! 0004). What every operation of a namespace shares — its error shapes for a bad token, a bad
//! parameter or body, an oversized body — is added here from the operation's path and security,
//! so annotations only list the answers that are particular to the operation.

use crate::http::Namespace;
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, ToSchema};

/// String schemas with the patterns the domain checks, so the document says what is accepted.
pub mod patterns {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;

    macro_rules! pattern {
        ($(#[$doc:meta])* $name:ident = $re:expr) => {
            $(#[$doc])*
            pub struct $name;

            impl utoipa::PartialSchema for $name {
                fn schema() -> RefOr<Schema> {
                    super::schema_from_json(serde_json::json!({"type": "string", "pattern": $re}))
                }
            }

            impl utoipa::ToSchema for $name {}
        };
    }

    pattern!(
        /// At least 3 characters once trimmed (seed 004 device names).
        Name3 = r"^\s*\S[\s\S]+\S\s*$"
    );
    pattern!(
        /// `yyyymmdd`, a real calendar date.
        Birthdate = r"^(\d{4}(0[13578]|1[02])(0[1-9]|[12]\d|3[01])|\d{4}(0[469]|11)(0[1-9]|[12]\d|30)|\d{4}02(0[1-9]|1\d|2[0-8])|(\d\d(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)0229)$"
    );
    pattern!(
        /// `M`, `F`, `N` (non-binary) or `P` (prefers not to say).
        Gender = "^[MFNP]$"
    );
    pattern!(
        /// 6–20 letters and digits (upper-cased by the server; CONTRACT §3).
        SerialCode = r"^\s*[A-Za-z0-9]{6,20}\s*$"
    );
    pattern!(Role = "^(superadmin|admin|manager|user)$");
    pattern!(Lifecycle = "^(active|inactive|maintenance|error)$");
    pattern!(
        /// E.164: `+` and 8–15 digits, not starting with 0.
        E164 = r"^\+[1-9]\d{7,14}$"
    );
    pattern!(
        /// Not blank.
        NotBlank = r"\S"
    );

    pattern!(
        /// An email as the server checks it (`accounts::domain::is_plausible_email`): something,
        /// `@`, a dotted domain; no spaces or control characters once trimmed.
        Email = r"^\s*[^@\s\x00-\x1f\x7f-\x9f]+@[^\s.\x00-\x1f\x7f-\x9f][^\s\x00-\x1f\x7f-\x9f]*\.[^\s\x00-\x1f\x7f-\x9f]*[^\s.\x00-\x1f\x7f-\x9f]\s*$"
    );
}

/// Tags, one per client namespace (CONTRACT table).
pub mod tags {
    pub const SYSTEM: &str = "system";
    pub const CORE: &str = "core (seed 002)";
    pub const NUEYNE: &str = "addnox/lux (seeds 000, 001)";
    pub const KOODTX: &str = "koodtx (seed 003)";
    pub const DRF: &str = "devices (seed 004)";
}

/// Name of the bearer JWT security scheme; annotate with `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";
/// The nueyne sign-in form as an OAuth2 password flow, so the docs page can sign in with it.
pub const NUEYNE_FORM: &str = "nueyne_form";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "fleetstream",
        description = "One event-sourced backend serving five client contracts. Each tag is \
            one namespace with its own error shapes (CONTRACT §2).",
        license(name = "MIT"),
    ),
    tags(
        (name = "system", description = "Health, metrics and this document"),
        (name = "core (seed 002)", description = "IoT core API under /api/v1 (FastAPI shapes)"),
        (name = "addnox/lux (seeds 000, 001)", description = "Therapy app under /api/v1|v2/{app} (FastAPI shapes; `app` is addnox or lux)"),
        (name = "koodtx (seed 003)", description = "KooDTX sensor sync under /api/auth, /api/sync (Flask shapes)"),
        (name = "devices (seed 004)", description = "Django REST clients under /api/token/, /api/devices/ (DRF shapes)"),
    ),
    components(schemas(
        Detail, ValidationError, ValidationItem, LocPart, KoodtxError, JwtMsg, DrfError, DrfFieldErrors
    )),
)]
pub struct ApiDoc;

/// `{"detail": "..."}` — FastAPI and DRF messages.
#[derive(Serialize, ToSchema)]
pub struct Detail {
    pub detail: String,
}

/// FastAPI request validation failure (422).
#[derive(Serialize, ToSchema)]
pub struct ValidationError {
    pub detail: Vec<ValidationItem>,
}

#[derive(Serialize, ToSchema)]
pub struct ValidationItem {
    /// Where: `body`, `query` or `path`, then the field names (or, for a body that is not
    /// JSON, the character offset where parsing failed).
    pub loc: Vec<LocPart>,
    pub msg: String,
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
}

/// One step of a validation location: a name, or an index / character offset.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocPart {
    Name(String),
    Index(i64),
}

/// `{"error": "..."}` — KooDTX messages.
#[derive(Serialize, ToSchema)]
pub struct KoodtxError {
    pub error: String,
}

/// `{"msg": "..."}` — flask-jwt-extended token errors.
#[derive(Serialize, ToSchema)]
pub struct JwtMsg {
    pub msg: String,
}

/// DRF message, with simplejwt's `code` on token errors.
#[derive(Serialize, ToSchema)]
pub struct DrfError {
    pub detail: String,
    pub code: Option<String>,
}

/// DRF validation failure (400): a list of messages per field (or `detail` for a body that is
/// not JSON).
#[derive(Serialize, ToSchema)]
pub struct DrfFieldErrors(pub std::collections::HashMap<String, serde_json::Value>);

/// The generated document: the routers' paths under this file's header, the shared parts added.
pub fn document(paths: OpenApi) -> OpenApi {
    let mut doc = <ApiDoc as utoipa::OpenApi>::openapi();
    doc.merge(paths);
    // `merge` brings the paths; the modifiers run again so they see them.
    SecuritySchemes.modify(&mut doc);
    NamespaceErrors.modify(&mut doc);
    doc
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from any door (CONTRACT §1); every namespace accepts it.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            NUEYNE_FORM,
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::Password(Password::new(
                    "/api/v1/lux/auth/email/signin",
                    Scopes::new(),
                ))],
                "The nueyne sign-in form (`username` = email, `password`).",
            )),
        );
    }
}

fn json_response(description: &str, schema: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build(),
    )
}

/// Adds the namespace's shared answers to every operation that does not describe them itself.
struct NamespaceErrors;

impl NamespaceErrors {
    fn fill(path: &str, op: &mut Operation) {
        let ns = Namespace::of_path(path);
        let secured = op
            .security
            .as_ref()
            .is_some_and(|reqs| !reqs.is_empty() && path != "/api/auth/refresh");
        let has_body = op.request_body.is_some();
        let params = op.parameters.as_ref().map_or(0, Vec::len);
        let has_path_param = path.contains('{');
        let responses = &mut op.responses.responses;
        let mut add = |status: &str, description: &str, schema: &str| {
            responses
                .entry(status.to_owned())
                .or_insert_with(|| json_response(description, schema));
        };
        let (plain, validation_status, validation) = match ns {
            Namespace::Core | Namespace::Nueyne => ("Detail", "422", "ValidationError"),
            Namespace::KooDtx => ("KoodtxError", "400", "KoodtxError"),
            Namespace::Drf => ("DrfError", "400", "DrfFieldErrors"),
        };
        if secured {
            match ns {
                Namespace::KooDtx => {
                    add("401", "Missing, expired or revoked token", "JwtMsg");
                    add("422", "Token that does not verify", "JwtMsg");
                }
                _ => add(
                    "401",
                    "Missing, invalid or expired token, or an unusable account",
                    plain,
                ),
            }
        }
        if has_body || params > 0 {
            add(validation_status, "Invalid parameters or body", validation);
        }
        if has_body {
            add("413", "Request body over the limit", plain);
        }
        if has_path_param {
            add("404", "Not found", plain);
        }
    }
}

impl Modify for NamespaceErrors {
    fn modify(&self, doc: &mut OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
                ("head", &mut item.head),
                ("options", &mut item.options),
                ("trace", &mut item.trace),
            ] {
                if let Some(op) = op {
                    Self::fill(path, op);
                    op.operation_id = Some(operation_id(method, path));
                }
            }
        }
    }
}

/// A unique operation id from the method and path (`get_api_v1_app_user_me`): handler names
/// repeat across namespaces (`me`, `login`, `list`).
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_owned();
    for part in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !part.is_empty() {
            id.push('_');
            id.push_str(part);
        }
    }
    id
}

/// A schema written as JSON, for shapes the derive cannot say (one-of of literals).
pub fn schema_from_json(value: serde_json::Value) -> RefOr<utoipa::openapi::schema::Schema> {
    RefOr::T(serde_json::from_value(value).expect("a valid schema literal"))
}

/// A boolean as the seed 001 app sends it: `true`/`false`, `0`/`1`, or those as strings.
pub struct Flag;

impl utoipa::PartialSchema for Flag {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        schema_from_json(serde_json::json!({
            "oneOf": [
                {"type": "boolean"},
                {"type": "integer", "enum": [0, 1]},
                {"type": "string", "enum": ["true", "false", "0", "1"]}
            ]
        }))
    }
}

impl ToSchema for Flag {}
