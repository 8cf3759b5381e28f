//! The API contract: an OpenAPI 3.1 document generated from the handlers themselves
//! (`utoipa` path attributes, collected by `utoipa-axum` routers), so a route cannot exist
//! without being documented. Served at `/api/v1/openapi.json`; `/api/docs` renders it as a
//! page from our own template (no scripts, no outside assets).

use std::collections::BTreeMap;

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Header, OpenApi, Ref, RefOr, ResponseBuilder, Schema, SchemaFormat,
};
use utoipa::{Modify, OpenApi as _, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::web::AppState;

/// The error body every failure carries: `{"error":{"code","message","fields"}}`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// Machine-readable: `not_found`, `unauthorized`, `forbidden`, `validation`, `conflict`,
    /// `bad_request`, `bad_signature`, `too_many_attempts`, `rate_limited`,
    /// `payload_too_large`, `busy`, `unavailable`, `internal`.
    code: String,
    /// One sentence in Vietnamese for the person using the app.
    message: String,
    /// For `validation`: the message for each field that was refused, keyed by field name.
    fields: BTreeMap<String, String>,
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Chợ Làng API",
        description = "The marketplace's JSON API: villages and their fair-price boards, shops, \
products, search, checkout by VietQR transfer, payments, orders, payouts, origin tracing and the \
bank webhooks. Everything a page does can be done here with the same rules. Money is integer \
VND; times are Unix seconds (UTC). Log in with `POST /api/v1/auth/login` and send \
`Authorization: Bearer <token>`. Every failure answers `{\"error\":{\"code\",\"message\",\"fields\"}}`.",
        license(name = "AGPL-3.0-or-later"),
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "accounts", description = "Registration, login, sessions, passwords"),
        (name = "villages", description = "Villages, their categories and fair-price boards"),
        (name = "pricing", description = "Price items, proposals, votes, moderator decisions"),
        (name = "shops", description = "Shops, membership of the village, notice channels"),
        (name = "products", description = "Products (their price always comes from the board)"),
        (name = "search", description = "Catalogue search"),
        (name = "addresses", description = "Provinces and communes/wards since 1 July 2025 (official codes)"),
        (name = "checkout", description = "Checkout, shipping quotes, payments, buyer's order look-up"),
        (name = "orders", description = "A seller's orders and their moves"),
        (name = "money", description = "Ledger, balances, payout runs and payouts"),
        (name = "reconciliation", description = "The admin's unmatched transfers, refunds, failed notices"),
        (name = "origin", description = "Batches and origin tracing"),
        (name = "team", description = "The village's digital team: helpers, households brought online, their actions"),
        (name = "webhooks", description = "Bank and card provider callbacks (signed)"),
    )
)]
struct ApiDoc;

/// The whole documented API: `/api/v1/…` and `/webhooks/…`, with its document.
/// The API's routes and document; `photos_limit` bounds the bodies of the routes that take
/// several photos (the others keep the 64 KiB limit of `web::router`).
pub fn router(photos_limit: usize) -> OpenApiRouter<AppState> {
    let v1 = super::api::routes()
        .merge(super::search::api_routes())
        .merge(super::money::api_routes())
        .merge(super::team::api_routes())
        .merge(super::figures::api_routes())
        .merge(super::orders::api_routes())
        .merge(super::origin::api_routes())
        .merge(super::lookup::api_routes())
        .merge(super::shipping::api_routes())
        .merge(super::shipments::api_routes())
        .merge(super::protection::api_routes(photos_limit));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", v1)
        .merge(super::webhooks::routes())
        .merge(super::shipments::webhook_routes())
}

/// The finished document (after the routers added their paths).
pub fn finish(mut doc: OpenApi) -> OpenApi {
    Contract.modify(&mut doc);
    doc
}

/// Security schemes, and the error answers every operation shares, added to each operation
/// from what it declares: its security, its path parameters, its own error statuses.
struct Contract;

const SCHEMES: [(&str, &str, &str); 4] = [
    (
        "bank_signature",
        "x-cholang-signature",
        "HMAC-SHA256 of `timestamp.body` with the bank webhook secret: `t=<unix>,v1=<hex>`",
    ),
    (
        "casso_signature",
        "x-casso-signature",
        "Casso's webhook v2 signature: `t=<ms>,v1=<hex>` over the sorted data",
    ),
    (
        "stripe_signature",
        "stripe-signature",
        "Stripe's `t=…,v1=…` signature of the raw body",
    ),
    (
        "payos_signature",
        "x-payos-signature",
        "payOS signs inside the body (`signature` over the sorted `data`); this header is not read",
    ),
];

impl Modify for Contract {
    fn modify(&self, doc: &mut OpenApi) {
        let comps = doc.components.get_or_insert_with(Default::default);
        comps.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token from POST /api/v1/auth/login (opaque, not a JWT)",
                    ))
                    .build(),
            ),
        );
        for (name, header, what) in SCHEMES {
            comps.add_security_scheme(
                name,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(header, what))),
            );
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                (axum::http::Method::GET, &mut item.get),
                (axum::http::Method::POST, &mut item.post),
                (axum::http::Method::PUT, &mut item.put),
                (axum::http::Method::PATCH, &mut item.patch),
                (axum::http::Method::DELETE, &mut item.delete),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                name_operation(op);
                // The rate limiter's own list says which operations can answer 429.
                shared_errors(op, super::rate_scope(&method, path).is_some());
                add_links(path, op);
            }
        }
    }
}

/// Operation ids are the handlers' names; the batch handlers get names that say so.
fn name_operation(op: &mut Operation) {
    let Some(id) = op.operation_id.as_deref() else {
        return;
    };
    let id = match id {
        "api_get" => "get_batch",
        "api_update" => "update_batch",
        "api_scans" => "batch_scans",
        "api_list" => "list_batches",
        "api_create" => "create_batch",
        other => other.strip_prefix("api_").unwrap_or(other),
    };
    op.operation_id = Some(id.to_string());
}

/// OpenAPI links from what an operation creates to what can be done with it next, so a
/// client (and Schemathesis' stateful phase) can follow them.
/// (operation, status, link name, target operation, [(parameter, runtime expression)]).
type LinkSpec = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

const LINKS: &[LinkSpec] = &[
    (
        "checkout",
        "201",
        "payment",
        "payment",
        &[("code", "$response.body#/payment/code")],
    ),
    (
        "checkout",
        "201",
        "refund_payment",
        "refund_payment",
        &[("code", "$response.body#/payment/code")],
    ),
    (
        "checkout",
        "201",
        "move_order",
        "transition",
        &[("code", "$response.body#/orders/0/code")],
    ),
    (
        "checkout",
        "201",
        "refund_order",
        "refund_order",
        &[("code", "$response.body#/orders/0/code")],
    ),
    (
        "create_batch",
        "201",
        "batch",
        "get_batch",
        &[("code", "$response.body#/batch/code")],
    ),
    (
        "create_batch",
        "201",
        "update_batch",
        "update_batch",
        &[("code", "$response.body#/batch/code")],
    ),
    (
        "create_batch",
        "201",
        "batch_scans",
        "batch_scans",
        &[("code", "$response.body#/batch/code")],
    ),
    (
        "create_price_item",
        "201",
        "price_item",
        "price_item",
        &[("id", "$response.body#/price_item/id")],
    ),
    (
        "create_price_item",
        "201",
        "propose",
        "propose",
        &[("id", "$response.body#/price_item/id")],
    ),
    (
        "propose",
        "201",
        "proposal",
        "proposal",
        &[("id", "$response.body#/proposal/id")],
    ),
    (
        "propose",
        "201",
        "vote",
        "vote",
        &[("id", "$response.body#/proposal/id")],
    ),
    (
        "propose",
        "201",
        "approve",
        "approve",
        &[("id", "$response.body#/proposal/id")],
    ),
    (
        "propose",
        "201",
        "reject",
        "reject",
        &[("id", "$response.body#/proposal/id")],
    ),
    (
        "create_category",
        "201",
        "rename",
        "rename_category",
        &[
            ("slug", "$request.path.slug"),
            ("id", "$response.body#/category/id"),
        ],
    ),
    (
        "create_category",
        "201",
        "remove",
        "remove_category",
        &[
            ("slug", "$request.path.slug"),
            ("id", "$response.body#/category/id"),
        ],
    ),
    (
        "create_product",
        "201",
        "product",
        "product",
        &[("slug", "$response.body#/product/slug")],
    ),
    (
        "create_product",
        "201",
        "update_product",
        "update_product",
        &[("slug", "$response.body#/product/slug")],
    ),
    (
        "create_product",
        "201",
        "create_batch",
        "create_batch",
        &[("slug", "$response.body#/product/slug")],
    ),
    (
        "create_shop",
        "201",
        "shop",
        "shop",
        &[("slug", "$response.body#/shop/slug")],
    ),
    (
        "create_shop",
        "201",
        "update_shop",
        "update_shop",
        &[("slug", "$response.body#/shop/slug")],
    ),
    (
        "create_shop",
        "201",
        "balance",
        "balance",
        &[("slug", "$response.body#/shop/slug")],
    ),
    (
        "create_village",
        "201",
        "village",
        "village",
        &[("slug", "$response.body#/village/slug")],
    ),
    (
        "start_run",
        "201",
        "run",
        "run",
        &[("code", "$response.body#/code")],
    ),
];

fn add_links(_path: &str, op: &mut Operation) {
    let Some(id) = op.operation_id.clone() else {
        return;
    };
    for (from, status, name, target, params) in LINKS {
        if *from != id {
            continue;
        }
        if let Some(RefOr::T(r)) = op.responses.responses.get_mut(*status) {
            let mut link = utoipa::openapi::link::LinkBuilder::new().operation_id(*target);
            for (p, expr) in *params {
                link = link.parameter(*p, *expr);
            }
            r.links.insert(name.to_string(), RefOr::T(link.build()));
        }
    }
}

fn error_content() -> utoipa::openapi::Content {
    ContentBuilder::new()
        .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
        .build()
}

fn default_description(status: &str) -> &'static str {
    match status {
        "400" => "Malformed request: JSON, path or query parameter that cannot be read",
        "401" => "Not logged in, or the token has expired (webhooks: bad signature)",
        "403" => "Logged in, but this is not yours to do",
        "404" => "No such item (or not visible to you)",
        "409" => "The item is not in a state that allows this",
        "413" => "Body too large",
        "422" => "Validation failed: `fields` names each refused field",
        "429" => "Too many requests from this address; retry after `Retry-After` seconds",
        "503" => {
            "A dependency (database, search engine, password hashing pool) is unavailable; retry"
        }
        _ => "Error",
    }
}

fn shared_errors(op: &mut Operation, rate_limited: bool) {
    let secured = op.security.as_ref().is_some_and(|reqs| {
        // `security(())` alone or with other schemes means "optional".
        !reqs.is_empty()
            && !reqs
                .iter()
                .any(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
    });
    let has_path_params = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path)))
    });
    let mut statuses = vec!["400", "503"];
    if secured {
        statuses.extend(["401", "403"]);
    }
    if has_path_params {
        statuses.push("404");
    }
    if rate_limited {
        statuses.push("429");
    }
    for s in statuses {
        op.responses
            .responses
            .entry(s.to_string())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(default_description(s))
                        .build(),
                )
            });
    }
    for (status, resp) in op.responses.responses.iter_mut() {
        if let RefOr::T(r) = resp
            && status.as_str() < "400"
            && r.description.is_empty()
        {
            r.description = match status.as_str() {
                "201" => "Created",
                "202" => "Accepted",
                "204" => "Done; no body",
                _ => "Success",
            }
            .to_string();
        }
        if status.as_str() < "400" {
            continue;
        }
        if let RefOr::T(r) = resp {
            if r.description.is_empty() {
                r.description = default_description(status).to_string();
            }
            if r.content.is_empty() {
                r.content
                    .insert("application/json".to_string(), RefOr::T(error_content()));
            }
            if status == "429" || status == "503" {
                r.headers.insert(
                    "Retry-After".to_string(),
                    RefOr::T(Header::new(Schema::Object(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::Type::Integer)
                            .format(Some(SchemaFormat::KnownFormat(
                                utoipa::openapi::KnownFormat::Int64,
                            )))
                            .build(),
                    ))),
                );
            }
        }
    }
}

/// `{slug}` of a village.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct VillageSlug {
    /// The village's slug, such as `phu-doi`.
    #[param(example = "phu-doi")]
    slug: String,
}

/// `{slug}` of a shop.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ShopSlug {
    /// The shop's slug.
    #[param(example = "beo-bong-thu-trang")]
    slug: String,
}

/// `{slug}` of a product.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct ProductSlug {
    /// The product's slug.
    #[param(example = "ban-tra-go-mit-1m")]
    slug: String,
}

/// `{id}`: a numeric id.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct IdParam {
    #[param(minimum = 1, example = 1)]
    id: i64,
}

/// `{code}` of a payment, order, payout, payout run or batch (as the API returned it).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct CodeParam {
    code: String,
}

pub use crate::domain::text_or_number;

/// `/api/v1/openapi.json` and `/api/docs`, from the finished document.
pub fn served(doc: OpenApi) -> axum::Router<AppState> {
    use axum::http::header;
    use axum::response::IntoResponse;
    use axum::routing::get;
    let doc = finish(doc);
    let json: std::sync::Arc<str> = doc
        .to_pretty_json()
        .expect("the document serializes")
        .into();
    let page: std::sync::Arc<str> = askama::Template::render(&DocsPage::from(&doc))
        .expect("the docs page renders")
        .into();
    axum::Router::new()
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let json = json.clone();
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, "application/json"),
                            (header::CACHE_CONTROL, "public, max-age=300"),
                        ],
                        json.to_string(),
                    )
                        .into_response()
                }
            }),
        )
        .route(
            "/api/docs",
            get(move || {
                let page = page.clone();
                async move { axum::response::Html(page.to_string()) }
            }),
        )
}

/// The document as a page: operations by tag, their parameters, bodies and answers, then
/// every schema. Rendered once, on the server, with no script.
#[derive(askama::Template)]
#[template(path = "api_docs.html")]
struct DocsPage {
    title: String,
    version: String,
    description: String,
    groups: Vec<TagGroup>,
    schemas: Vec<(String, String)>,
}

struct TagGroup {
    name: String,
    description: String,
    ops: Vec<OpView>,
}

struct OpView {
    method: &'static str,
    path: String,
    anchor: String,
    summary: String,
    description: String,
    auth: String,
    params: Vec<ParamView>,
    body: Option<String>,
    responses: Vec<(String, String, String)>,
}

struct ParamView {
    name: String,
    location: &'static str,
    required: bool,
    kind: String,
    description: String,
}

/// `#/components/schemas/X` → `X`; an inline schema → its JSON.
fn schema_name(s: &RefOr<Schema>) -> String {
    match s {
        RefOr::Ref(r) => r.ref_location.rsplit('/').next().unwrap_or("").to_string(),
        RefOr::T(t) => serde_json::to_string(t).unwrap_or_default(),
    }
}

/// The schema of a body's first content type, by name.
fn first_schema<'a>(
    mut contents: impl Iterator<Item = &'a RefOr<utoipa::openapi::Content>>,
) -> String {
    contents
        .find_map(|c| match c {
            RefOr::T(c) => c.schema.as_ref().map(schema_name),
            RefOr::Ref(_) => None,
        })
        .unwrap_or_default()
}

impl From<&OpenApi> for DocsPage {
    fn from(doc: &OpenApi) -> Self {
        let tags = doc.tags.clone().unwrap_or_default();
        let mut groups: Vec<TagGroup> = tags
            .iter()
            .map(|t| TagGroup {
                name: t.name.clone(),
                description: t.description.clone().unwrap_or_default(),
                ops: Vec::new(),
            })
            .collect();
        for (path, item) in &doc.paths.paths {
            let ops = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                let tag = op
                    .tags
                    .as_ref()
                    .and_then(|t| t.first().cloned())
                    .unwrap_or_default();
                let view = op_view(method, path, op);
                match groups.iter_mut().find(|g| g.name == tag) {
                    Some(g) => g.ops.push(view),
                    None => groups.push(TagGroup {
                        name: tag,
                        description: String::new(),
                        ops: vec![view],
                    }),
                }
            }
        }
        let schemas = doc
            .components
            .as_ref()
            .map(|c| {
                c.schemas
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            serde_json::to_string_pretty(v).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        DocsPage {
            title: doc.info.title.clone(),
            version: doc.info.version.clone(),
            description: doc.info.description.clone().unwrap_or_default(),
            groups,
            schemas,
        }
    }
}

fn op_view(method: &'static str, path: &str, op: &Operation) -> OpView {
    let params = op
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(p) => Some(ParamView {
                name: p.name.clone(),
                location: match p.parameter_in {
                    ParameterIn::Path => "path",
                    ParameterIn::Query | ParameterIn::QueryString => "query",
                    ParameterIn::Header => "header",
                    ParameterIn::Cookie => "cookie",
                },
                required: matches!(p.required, utoipa::openapi::Required::True),
                kind: p.schema.as_ref().map(schema_name).unwrap_or_default(),
                description: p.description.clone().unwrap_or_default(),
            }),
            RefOr::Ref(_) => None,
        })
        .collect();
    let body = op.request_body.as_ref().and_then(|b| match b {
        RefOr::T(b) => Some(b),
        RefOr::Ref(_) => None,
    });
    let body = body.map(|b| {
        let schema = first_schema(b.content.values());
        match &b.description {
            Some(d) if !d.is_empty() => format!("{schema} — {d}"),
            _ => schema,
        }
    });
    let responses = op
        .responses
        .responses
        .iter()
        .map(|(status, r)| match r {
            RefOr::T(r) => {
                let schema = first_schema(r.content.values());
                (status.clone(), r.description.clone(), schema)
            }
            RefOr::Ref(r) => (status.clone(), r.ref_location.clone(), String::new()),
        })
        .collect();
    let auth = op
        .security
        .as_ref()
        .map(|reqs| {
            let v = serde_json::to_value(reqs).unwrap_or_default();
            let names: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    r.as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(" + "))
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "không cần".to_string())
                })
                .collect();
            names.join(" hoặc ")
        })
        .unwrap_or_else(|| "không cần".to_string());
    OpView {
        method,
        anchor: format!(
            "{}-{}",
            method.to_lowercase(),
            path.trim_matches('/').replace(['/', '{', '}'], "-")
        ),
        path: path.to_string(),
        summary: op.summary.clone().unwrap_or_default(),
        description: op.description.clone().unwrap_or_default(),
        auth,
        params,
        body,
        responses,
    }
}
