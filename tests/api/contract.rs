//! The published API contract (issue 11): `/api/v1/openapi.json` generated from the
//! handlers, its shape, the answers of real calls checked against it, and `/api/docs`.
//! (`.ci/schemathesis` fuzzes every operation against the same document.)

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    the_document_covers_every_operation_with_its_errors_and_security,
    real_answers_match_the_documented_schemas,
    the_docs_page_is_served_by_us_without_scripts,
    a_malformed_path_parameter_gets_the_api_error_body,
);

async fn document(app: &TestApp) -> Value {
    let r = app.get("/api/v1/openapi.json").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    r.json().await.unwrap()
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((m.to_string(), path.clone(), op.clone()));
            }
        }
    }
    out
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_string());
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

async fn the_document_covers_every_operation_with_its_errors_and_security(b: Backend) {
    let app = TestApp::spawn_with(b, &[("CHOLANG_METRICS_ADDR", "127.0.0.1:0")]).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Chợ Làng API");

    // Every reference resolves.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100, "{}", all.len());
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").expect(r);
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling {r}"
        );
    }

    // Security schemes: the bearer token and each webhook's signature header.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    for (name, header) in [
        ("bank_signature", "x-cholang-signature"),
        ("casso_signature", "x-casso-signature"),
        ("stripe_signature", "stripe-signature"),
    ] {
        assert_eq!(schemes[name]["type"], "apiKey", "{name}");
        assert_eq!(schemes[name]["in"], "header", "{name}");
        assert_eq!(schemes[name]["name"], header, "{name}");
    }

    let ops = operations(&doc);
    let mut ids = BTreeSet::new();
    for (m, path, op) in &ops {
        let at = format!("{m} {path}");
        assert!(
            ids.insert(op["operationId"].as_str().unwrap().to_string()),
            "{at}: id twice"
        );
        assert!(op["tags"].as_array().is_some_and(|t| !t.is_empty()), "{at}");
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{at}: no success"
        );
        // Every error answer is the error body.
        for (status, resp) in responses {
            assert!(
                !resp["description"].as_str().unwrap().is_empty(),
                "{at} {status}"
            );
            if status.as_str() >= "400" {
                assert_eq!(
                    resp["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{at} {status}"
                );
            }
        }
        for s in ["400", "503"] {
            assert!(responses.contains_key(s), "{at}: {s}");
        }
        // Every route behind the per-address rate limit documents its 429.
        let limited = *m == "post"
            && (path.starts_with("/webhooks/")
                || [
                    "/api/v1/auth/register",
                    "/api/v1/checkout",
                    "/api/v1/orders/lookup",
                ]
                .contains(&path.as_str()));
        if limited {
            assert!(responses.contains_key("429"), "{at}: 429");
        }
        // Path parameters: each one in the template declared once, required.
        let declared: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{at}");
                p["name"].as_str().unwrap()
            })
            .collect();
        let in_template: Vec<&str> = path
            .split('{')
            .skip(1)
            .map(|s| s.split('}').next().unwrap())
            .collect();
        assert_eq!(declared, in_template, "{at}");
        if !in_template.is_empty() {
            assert!(responses.contains_key("404"), "{at}");
        }
        // Token-only operations say so and document 401/403.
        let security = op["security"].as_array().cloned().unwrap_or_default();
        if security == vec![json!({"bearer": []})] {
            assert!(
                responses.contains_key("401") && responses.contains_key("403"),
                "{at}"
            );
        }
        if path.starts_with("/webhooks/") {
            assert!(responses.contains_key("401"), "{at}");
            assert!(op["requestBody"].is_object(), "{at}");
        }
    }

    // What the pages do, the API does (issue 11's list), and the webhooks are documented.
    let have: BTreeSet<String> = ops.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    for want in [
        "post /api/v1/auth/login",
        "post /api/v1/checkout",
        "get /api/v1/payments/{code}",
        "get /api/v1/search",
        "post /api/v1/orders/lookup",
        "get /api/v1/orders",
        "post /api/v1/orders/{code}/transitions",
        "get /api/v1/reconciliation",
        "post /api/v1/transactions/{id}/assign",
        "post /api/v1/transactions/{id}/refund",
        "post /api/v1/payments/{code}/refund",
        "get /api/v1/notices/failed",
        "post /api/v1/notices/{id}/retry",
        "get /api/v1/shops/{slug}/notice-channels",
        "post /api/v1/shops/{slug}/test-notice",
        "put /api/v1/shops/{slug}/payout-account",
        "post /api/v1/products/{slug}/batches",
        "post /webhooks/bank",
        "post /webhooks/casso",
        "post /webhooks/payos",
        "post /webhooks/stripe",
    ] {
        assert!(have.contains(want), "undocumented: {want}");
    }
    assert!(ops.len() >= 68, "{}", ops.len());

    // Every documented operation is routed (the metrics count no request as unmatched) and
    // answers, without credentials and with an empty object, a status it documents.
    for (m, path, op) in &ops {
        let concrete = path
            .replace("{slug}", "khong-co")
            .replace("{code}", "KHONGCO")
            .replace("{id}", "999999");
        let r = app
            .new_browser()
            .request(m.to_uppercase().parse().unwrap(), app.url(&concrete))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16().to_string();
        assert!(
            op["responses"].get(&status).is_some(),
            "{m} {path} answered an undocumented {status}"
        );
        if r.status().as_u16() >= 400 {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            assert!(body["error"]["code"].is_string(), "{m} {path}: {body}");
        }
    }
    let metrics = reqwest::get(app.metrics_url.as_ref().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !metrics.contains("route=\"unmatched\""),
        "a documented operation is not routed:\n{metrics}"
    );

    // Stateful links: what a checkout creates can be followed.
    let links = &doc["paths"]["/api/v1/checkout"]["post"]["responses"]["201"]["links"];
    assert_eq!(links["payment"]["operationId"], "payment");
    assert_eq!(
        links["payment"]["parameters"]["code"],
        "$response.body#/payment/code"
    );
}

/// Validates `value` against the document's schema `name` (JSON Schema 2020-12, as
/// OpenAPI 3.1 uses), resolving references inside the document.
fn check(doc: &Value, name: &str, value: &Value) {
    let mut root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": format!("#/components/schemas/{name}"),
    });
    root["components"] = doc["components"].clone();
    let v = jsonschema::validator_for(&root).expect("a valid schema");
    let errors: Vec<String> = v.iter_errors(value).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{name}: {errors:?}\n{}",
        serde_json::to_string_pretty(value).unwrap()
    );
}

fn success_schema(doc: &Value, m: &str, path: &str, status: &str) -> String {
    doc["paths"][path][m]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{m} {path} {status}"))
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

async fn real_answers_match_the_documented_schemas(b: Backend) {
    let app = TestApp::with_demo(b).await;
    let doc = document(&app).await;
    let admin = app
        .api_login(cholang::demo::catalog::ADMIN_EMAIL, "cholang-demo")
        .await;

    // A buyer's checkout, its payment, a partial transfer, the look-up.
    let (s, v) = app.checkout(&[("man-tuyn-1m6-x-2m", 2)]).await;
    assert_eq!(s, StatusCode::CREATED);
    check(
        &doc,
        &success_schema(&doc, "post", "/api/v1/checkout", "201"),
        &v,
    );
    let code = v["payment"]["code"].as_str().unwrap().to_string();
    let w = app.transfer(50_000, &code).await;
    check(
        &doc,
        &success_schema(&doc, "post", "/webhooks/bank", "200"),
        &w,
    );
    let (s, p) = app
        .api("GET", &format!("/payments/{code}"), None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(p["amount_paid_vnd"], 50_000);
    check(
        &doc,
        &success_schema(&doc, "get", "/api/v1/payments/{code}", "200"),
        &p,
    );
    let phone = "0987654321";
    let checkout_code = v["checkout_code"].as_str().unwrap().to_string();
    let (s, l) = app
        .api(
            "POST",
            "/orders/lookup",
            None,
            Some(json!({"code": checkout_code, "phone": phone})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{l}");
    check(
        &doc,
        &success_schema(&doc, "post", "/api/v1/orders/lookup", "200"),
        &l,
    );

    // Reads anyone makes, and the admin's.
    for (path, token) in [
        ("/villages", None),
        ("/villages/phu-doi", None),
        ("/villages/phu-doi/price-items", None),
        ("/villages/phu-doi/categories", None),
        ("/villages/phu-doi/proposals", None),
        ("/shops", None),
        ("/shops/beo-bong-thu-trang", None),
        ("/shops/beo-bong-thu-trang", Some(admin.as_str())),
        ("/products?village=phu-doi", None),
        ("/products/man-tuyn-1m6-x-2m", None),
        ("/search?q=man%20tuyn&per_page=5", None),
        ("/me", Some(admin.as_str())),
        ("/orders", Some(admin.as_str())),
        ("/reconciliation", Some(admin.as_str())),
        ("/notices/failed", Some(admin.as_str())),
        ("/ledger/trial-balance", Some(admin.as_str())),
        (
            "/shops/beo-bong-thu-trang/notice-channels",
            Some(admin.as_str()),
        ),
        ("/shops/beo-bong-thu-trang/ledger", Some(admin.as_str())),
        ("/shops/beo-bong-thu-trang/balance", Some(admin.as_str())),
    ] {
        let (s, v) = app.api("GET", path, token, None).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        let template = doc["paths"]
            .as_object()
            .unwrap()
            .keys()
            .find(|t| matches(t, &format!("/api/v1{}", path.split('?').next().unwrap())))
            .unwrap_or_else(|| panic!("{path}"))
            .clone();
        check(&doc, &success_schema(&doc, "get", &template, "200"), &v);
    }
    // The public face of a shop is not the owner's view (the two schemas never both fit).
    let (_, public) = app
        .api("GET", "/shops/beo-bong-thu-trang", None, None)
        .await;
    assert!(public["shop"].get("email").is_none());
    let (_, owner) = app
        .api("GET", "/shops/beo-bong-thu-trang", Some(&admin), None)
        .await;
    assert!(owner["shop"].get("email").is_some());

    // Errors are the error body, with the status the document gives.
    let (s, e) = app
        .api(
            "POST",
            "/checkout",
            None,
            Some(json!({"items": [], "buyer": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    check(&doc, "ErrorBody", &e);
    assert!(
        e["error"]["fields"]
            .as_object()
            .is_some_and(|f| !f.is_empty())
    );
    let (s, e) = app.api("GET", "/payments/KHONGCO", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    check(&doc, "ErrorBody", &e);
    let (s, e) = app.api("GET", "/orders", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    check(&doc, "ErrorBody", &e);
}

/// `/api/v1/shops/{slug}` matches `/api/v1/shops/beo`.
fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| a == b || (a.starts_with('{') && !b.is_empty()))
        // A literal segment beats a parameter (`/orders/lookup` is not `/orders/{code}`).
        && !(template.contains('{') && p.contains(&"lookup"))
}

async fn the_docs_page_is_served_by_us_without_scripts(b: Backend) {
    let app = TestApp::spawn(b).await;
    let doc = document(&app).await;
    let r = app.get("/api/docs").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.headers().contains_key("content-security-policy"));
    let html = r.text().await.unwrap();
    for (m, path, _) in operations(&doc) {
        let line = format!("{} {}", m.to_uppercase(), path);
        assert!(html.contains(&line), "docs page lacks {line}");
    }
    assert!(html.contains("ErrorBody"));
    assert!(html.contains("/api/v1/openapi.json"));
    // Offline: nothing from elsewhere, no script at all.
    assert!(!html.contains("<script"));
    for attr in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(!html.contains(attr), "outside asset: {attr}");
    }
}

async fn a_malformed_path_parameter_gets_the_api_error_body(b: Backend) {
    let app = TestApp::spawn(b).await;
    // Too large for an id: the extractor refuses it, with our JSON body, not plain text.
    for path in [
        "/proposals/99999999999999999999",
        "/price-items/abc",
        "/transactions/1.5/refund",
    ] {
        let method = if path.ends_with("refund") {
            "POST"
        } else {
            "GET"
        };
        let (s, v) = app.api(method, path, None, None).await;
        if path.ends_with("refund") {
            // The token check comes first there.
            assert!(
                s == StatusCode::UNAUTHORIZED || s == StatusCode::BAD_REQUEST,
                "{path}: {s}"
            );
        } else {
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        }
        assert!(v["error"]["code"].is_string(), "{path}: {v}");
    }
}
