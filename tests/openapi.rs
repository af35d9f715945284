//! The OpenAPI document (`GET /openapi.json`) and the docs page (`GET /docs`).

use fleetstream::testing::{self, TestClient};
use serde_json::Value;

/// Any change to the API shows in review as a change to this snapshot.
#[test]
fn openapi_document_snapshot() {
    let doc = serde_json::to_value(fleetstream::app::openapi()).unwrap();
    insta::assert_json_snapshot!("openapi", doc);
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

#[test]
fn every_operation_is_tagged_and_secured_ones_answer_401_in_their_shape() {
    let doc = serde_json::to_value(fleetstream::app::openapi()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = operations(&doc);
    assert!(ops.len() > 50, "{} operations", ops.len());
    for (method, path, op) in &ops {
        let tags = op["tags"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(tags, 1, "{method} {path} has one namespace tag");
        assert!(
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|s| s.starts_with('2')),
            "{method} {path} documents its success"
        );
        if op.get("security").is_some() {
            let unauthorized = &op["responses"]["401"]["content"]["application/json"]["schema"];
            assert!(unauthorized["$ref"].is_string(), "{method} {path} 401");
        }
    }
    let mut ids: Vec<&str> = ops
        .iter()
        .map(|(_, _, op)| op["operationId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let count = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids are unique");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(
        schemes["nueyne_form"]["flows"]["password"]["tokenUrl"],
        "/api/v1/lux/auth/email/signin"
    );
    let signin = &doc["paths"]["/api/v1/{app}/auth/email/signin"]["post"]["requestBody"];
    assert!(signin["content"]["application/x-www-form-urlencoded"].is_object());
}

fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r);
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = serde_json::to_value(fleetstream::app::openapi()).unwrap();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for r in found {
        let name = r.strip_prefix("#/components/schemas/").expect(r);
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} is not in components"
        );
    }
}

#[sqlx::test(migrator = "fleetstream::db::MIGRATOR")]
async fn openapi_json_and_docs_are_served(pool: sqlx::PgPool) {
    let client = TestClient::new(testing::state(pool));
    let r = client.get("/openapi.json", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        serde_json::to_value(fleetstream::app::openapi()).unwrap()
    );
    let page = client.get("/docs", None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("/openapi.json"), "{}", page.text);
    assert!(
        !page.text.contains("http"),
        "nothing from elsewhere: {}",
        page.text
    );
    for (file, content_type) in [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
    ] {
        let r = client.get(&format!("/docs/{file}"), None).await;
        assert_eq!(r.status, 200, "{file}");
        assert_eq!(r.headers["content-type"], content_type);
        assert!(r.text.len() > 100_000, "{file}");
    }
    let r = client.get("/docs/../Cargo.toml", None).await;
    assert_eq!(r.status, 404);
    let r = client.get("/docs/nope.js", None).await;
    assert_eq!(r.status, 404);
}
