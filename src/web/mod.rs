//! Thin axum handlers: parse, authorize, call the domain, render. One file per area.

pub mod api;
pub mod auth;
pub mod board;
pub mod cart;
pub mod categories;
pub mod client;
pub mod dashboard;
pub mod figures;
pub mod json;
pub mod lookup;
pub mod money;
pub mod openapi;
pub mod orders;
pub mod origin;
pub mod page_cache;
pub mod pages;
pub mod product_cache;
pub mod protection;
pub mod search;
pub mod session;
pub mod share;
pub mod shipments;
pub mod shipping;
mod state;
pub mod team;
pub mod views;
pub mod webhooks;

use askama::Template;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Router, middleware};
use tower_http::services::ServeDir;

use crate::error::AppError;
pub use session::{CsrfSeed, Layout, MaybeUser, Share};
pub use state::{AppState, Shared};

/// Bodies of ordinary forms and JSON calls stay small; photo uploads have their own limit.
pub const FORM_BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router<AppState> {
    let photos = ServeDir::new(state.config.photos_dir());
    // The API's routes and its document come from the same handler list.
    let upload_limit = state.config.max_upload_bytes + 64 * 1024;
    let (api_routes, api_doc) =
        openapi::router(upload_limit * crate::protection::store::MAX_PHOTOS + 64 * 1024)
            .split_for_parts();
    let keep = || middleware::from_fn_with_state(state.clone(), page_cache::serve);
    Router::new()
        .merge(pages::router().route_layer(keep()))
        .merge(auth::router())
        .merge(board::router())
        .merge(categories::router())
        .merge(dashboard::router().layer(DefaultBodyLimit::max(FORM_BODY_LIMIT)))
        .merge(dashboard::upload_router().layer(DefaultBodyLimit::max(upload_limit)))
        .merge(cart::router())
        .merge(lookup::router())
        .merge(protection::page_router().layer(DefaultBodyLimit::max(FORM_BODY_LIMIT)))
        .merge(protection::upload_router().layer(DefaultBodyLimit::max(
            upload_limit * crate::protection::store::MAX_PHOTOS + 64 * 1024,
        )))
        .merge(orders::router())
        .merge(search::page_router().route_layer(keep()))
        .merge(origin::page_router())
        .merge(origin::upload_router().layer(DefaultBodyLimit::max(upload_limit)))
        .merge(money::page_router())
        .merge(team::page_router())
        .merge(share::page_router())
        .merge(shipping::page_router())
        .merge(shipments::page_router())
        .merge(figures::page_router().route_layer(keep()))
        .merge(api_routes)
        .merge(openapi::served(api_doc))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/static/app.css", get(css))
        .route("/static/pay.js", get(pay_js))
        .route("/static/forms.js", get(forms_js))
        .route("/favicon.svg", get(favicon))
        .route(
            "/favicon.ico",
            get(|| async { axum::response::Redirect::permanent("/favicon.svg") }),
        )
        .nest_service("/anh", photos)
        // After routing, so requests are counted under their route template.
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::metrics::track,
        ))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
        .layer(middleware::from_fn_with_state(state, frame))
}

/// What every answer carries whatever it is (`frame`).
const SECURITY_HEADERS: [(header::HeaderName, &str); 5] = [
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "same-origin"),
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (
        header::HeaderName::from_static("permissions-policy"),
        PERMISSIONS_POLICY,
    ),
];

/// Everything around every request, in one layer (each `from_fn` layer is a clone of the
/// route's stack and boxed futures per request; five of them were a large part of a kept
/// page's time, issue 12), in this order:
/// 1. the CSRF seed from the browser's cookie, or a new one, is put on the request;
/// 2. the routes scripts hammer are rate limited before any work (`rate_limit`);
/// 3. the request runs; if it may have written (any method but GET/HEAD), the public pages
///    kept by `page_cache` and the product data kept by `product_cache` are dropped;
/// 4. an error page is rendered again with the visitor's header (`error_page_for_visitor`);
/// 5. a new CSRF seed is set as a cookie; private answers get `Cache-Control: no-store`
///    (`is_private`); the security headers (and HSTS behind https) are added where absent.
async fn frame(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let private = is_private(&req);
    let (seed, new_seed) = session::csrf_seed(req.headers());
    let cookies: Vec<header::HeaderValue> = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .cloned()
        .collect();
    req.extensions_mut().insert(seed.clone());
    let write = !matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    let resp = match stale_form(&state, req, &seed, &cookies).await {
        Err(again) => again,
        Ok(req) => match rate_limit(&state, req).await {
            Err(refused) => refused,
            Ok(req) => {
                let resp = next.run(req).await;
                if write {
                    state.pages.changed();
                    state.products.changed();
                }
                resp
            }
        },
    };
    let mut resp = error_page_for_visitor(&state, resp, cookies, &seed).await;
    if new_seed {
        session::set_csrf_cookie(&state, &mut resp, &seed);
    }
    let headers = resp.headers_mut();
    if private {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    for (name, value) in SECURITY_HEADERS {
        headers
            .entry(name)
            .or_insert(header::HeaderValue::from_static(value));
    }
    // Browsers that reached us over https keep to it for a year.
    if state.config.secure_cookies() {
        headers.entry(header::STRICT_TRANSPORT_SECURITY).or_insert(
            header::HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    resp
}

#[derive(Template)]
#[template(path = "resubmit.html")]
struct ResubmitPage {
    layout: Layout,
    action: String,
    /// Every field as it was sent (passwords left out), to send again.
    fields: Vec<(String, String)>,
    /// What the person typed, shown so they see nothing is lost.
    shown: Vec<String>,
}

/// Fields never carried into a page: the person types them again. Passwords, and anything
/// named like a one-time code or token (a reset code is posted as `code`).
fn is_secret_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "mat_khau", "token", "secret", "otp"]
        .iter()
        .any(|s| n.contains(s))
        || n == "code"
        || n == "t"
}

/// A page form whose token no longer matches this browser (its cookie was lost, the page was
/// open across a restart) is not simply refused: when it came from our own pages (same
/// origin), it is shown again with everything typed kept, a fresh token and one sentence, so
/// one press sends it. Cross-site posts and forms without a token go on to their handler,
/// which refuses them; the handlers check the token themselves in every case.
async fn stale_form(
    state: &AppState,
    req: axum::extract::Request,
    seed: &CsrfSeed,
    cookies: &[header::HeaderValue],
) -> Result<axum::extract::Request, Response> {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if req.method() != axum::http::Method::POST
        || !is_form
        || req.uri().path().starts_with("/api/")
        || !same_origin(state, req.headers())
    {
        return Ok(req);
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, FORM_BODY_LIMIT).await else {
        return Err(PageError(AppError::PayloadTooLarge).into_response());
    };
    let fields: Vec<(String, String)> = form_urlencoded::parse(&bytes).into_owned().collect();
    let stale = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .is_some_and(|(_, t)| session::verify_csrf(state, seed, t).is_err());
    if !stale {
        return Ok(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(bytes),
        ));
    }
    let fields: Vec<(String, String)> = fields
        .into_iter()
        .filter(|(k, _)| k != "csrf" && !is_secret_field(k))
        .collect();
    let shown = fields
        .iter()
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| {
            !v.is_empty() && v.chars().count() > 1 && !v.chars().all(|c| c.is_ascii_digit())
        })
        .take(20)
        .collect();
    let mut lookup = axum::http::Request::builder().uri("/");
    for c in cookies {
        lookup = lookup.header(header::COOKIE, c.clone());
    }
    let user = match lookup.body(()) {
        Ok(r) => {
            let (mut head, ()) = r.into_parts();
            <MaybeUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(
                &mut head, state,
            )
            .await
            .map(|MaybeUser(u)| u)
            .unwrap_or(None)
        }
        Err(_) => None,
    };
    let page = ResubmitPage {
        layout: Layout::new(state, seed, &user, "Gửi lại biểu mẫu"),
        action: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into()),
        fields,
        shown,
    };
    let mut resp = match page.render() {
        Ok(html) => (StatusCode::FORBIDDEN, Html(html)).into_response(),
        Err(_) => PageError(AppError::Csrf).into_response(),
    };
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Err(resp)
}

/// Whether a post came from our own pages: its `Origin` (or, without one, its `Referer`) is
/// this site's public address or the host it was sent to.
fn same_origin(state: &AppState, headers: &header::HeaderMap) -> bool {
    // "scheme://host[:port][/…]" → (scheme, "host:port") with the scheme's default port.
    fn authority(u: &str) -> Option<(String, String)> {
        let (scheme, rest) = u.split_once("://")?;
        let hostport = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
        if hostport.is_empty() || hostport.contains('@') {
            return None;
        }
        let default = match scheme {
            "https" => "443",
            "http" => "80",
            _ => return None,
        };
        let full = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
            && !hostport.ends_with(']')
        {
            hostport
        } else {
            format!("{hostport}:{default}")
        };
        Some((scheme.to_string(), full))
    }
    let Some((scheme, from)) = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(authority)
    else {
        return false;
    };
    let ours = authority(&state.config.public_url).map(|(_, a)| a);
    let sent_to = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| authority(&format!("{scheme}://{h}")))
        .map(|(_, a)| a);
    Some(&from) == ours.as_ref() || Some(&from) == sent_to.as_ref()
}

/// Pages and answers that may carry a buyer's name, phone or address, or a seller's money,
/// are never kept by a browser or proxy cache: anything asked with a session (cookie or
/// bearer token), and the buyer's payment and order pages.
fn is_private(req: &axum::extract::Request) -> bool {
    let path = req.uri().path();
    req.headers().contains_key(header::AUTHORIZATION)
        || req.headers().get_all(header::COOKIE).iter().any(|c| {
            c.to_str()
                .is_ok_and(|c| c.contains(session::SESSION_COOKIE))
        })
        || [
            "/pay/",
            "/don-hang/",
            "/tra-cuu-don",
            "/quan-ly",
            "/quan-tri",
        ]
        .iter()
        .any(|p| path.starts_with(p))
}

async fn healthz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// The routes a script would hammer, and what each counts under.
fn rate_scope(method: &axum::http::Method, path: &str) -> Option<crate::limits::rate::Scope> {
    use crate::limits::rate::Scope;
    if method != axum::http::Method::POST {
        return None;
    }
    Some(match path {
        "/dang-ky" | "/api/v1/auth/register" => Scope::Register,
        "/thanh-toan" | "/api/v1/checkout" => Scope::Checkout,
        "/tra-cuu-don" | "/api/v1/orders/lookup" => Scope::Lookup,
        p if p.starts_with("/don-hang/") => Scope::Lookup,
        // A buyer proving an order with a phone or a link (buyer protection).
        p if p.starts_with("/api/v1/orders/")
            && (p.ends_with("/receipt") || p.ends_with("/extend") || p.ends_with("/requests")) =>
        {
            Scope::Lookup
        }
        p if p.starts_with("/api/v1/requests/") && p.ends_with("/escalate") => Scope::Lookup,
        p if p.starts_with("/webhooks/") => Scope::Webhook,
        _ => return None,
    })
}

/// 429 with `Retry-After` before any work, per client address (`limits::rate`): the API's
/// error body on the API and webhooks, the error page on pages.
async fn rate_limit(
    state: &AppState,
    req: axum::extract::Request,
) -> Result<axum::extract::Request, Response> {
    let Some(scope) = rate_scope(req.method(), req.uri().path()) else {
        return Ok(req);
    };
    let (mut parts, body) = req.into_parts();
    let ip =
        match <client::ClientIp as axum::extract::FromRequestParts<AppState>>::from_request_parts(
            &mut parts, state,
        )
        .await
        {
            Ok(ip) => ip,
            Err(e) => return Err(e.into_response()),
        };
    let verdict = match state.rates.check(&state.db, scope, &ip.key()).await {
        Ok(v) => v,
        Err(e)
            if parts.uri.path().starts_with("/api/")
                || parts.uri.path().starts_with("/webhooks/") =>
        {
            return Err(e.into_response());
        }
        Err(e) => return Err(PageError(e).into_response()),
    };
    if let Err(secs) = verdict {
        tracing::warn!(?scope, client = %ip.key(), "rate limited");
        let e = AppError::RateLimited(secs);
        let path = parts.uri.path();
        // Refused before routing: counted here, under the route's template.
        let route = if path.starts_with("/don-hang/") {
            "/don-hang/:code"
        } else {
            path
        };
        state
            .metrics
            .observe("POST", route, StatusCode::TOO_MANY_REQUESTS, 0.0);
        return Err(
            if path.starts_with("/api/") || path.starts_with("/webhooks/") {
                e.into_response()
            } else {
                PageError(e).into_response()
            },
        );
    }
    Ok(axum::extract::Request::from_parts(parts, body))
}

/// The payment page's live status: a file of its own, so the CSP needs no inline script.
async fn pay_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/pay.js"),
    )
        .into_response()
}

/// A query-string value, trimmed and percent-encoded.
pub(crate) fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.trim().as_bytes()).collect()
}

/// The site's icon (a market basket), for browser tabs and home screens.
async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../templates/favicon.svg"),
    )
        .into_response()
}

/// "Hiện mật khẩu" beside password fields.
async fn forms_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/forms.js"),
    )
        .into_response()
}

/// What a page may load: only our own scripts, styles, images and forms; nothing inline, no
/// frames. JSON-LD blocks (`type="application/ld+json"`) are data, not scripts, and need no
/// exception.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Browser features no page of ours uses.
pub const PERMISSIONS_POLICY: &str =
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()";

/// Ready for traffic: the database answers with every migration applied, and the search
/// engine answers. 503 with the reasons otherwise (a load balancer takes the instance out).
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let mut problems = Vec::new();
    match state.db.migration_versions().await {
        Ok((ours, Some(applied))) if applied >= ours => {}
        Ok((ours, applied)) => problems.push(format!(
            "database migrations behind: {} of {ours}",
            applied.unwrap_or(0)
        )),
        Err(e) => problems.push(format!("database does not answer: {e}")),
    }
    if let Err(e) = state.search.engine.health().await {
        problems.push(format!("search engine does not answer: {e}"));
    } else if let Some(p) = crate::search::store::not_caught_up(&state.db, &state.search).await {
        // A fresh or restored instance whose index does not hold the catalogue yet would
        // answer every search with nothing.
        problems.push(p);
    }
    // A broken ledger rule does not take the instance out of traffic (it is still 200),
    // but it is said here for whoever watches readiness.
    let ledger = crate::ledger::store::health(&state.db)
        .await
        .unwrap_or_default();
    let body = serde_json::json!({
        "ready": problems.is_empty(),
        "database": state.db.backend_name(),
        "search": state.search.engine.name(),
        "problems": problems,
        "ledger": {
            "ok": ledger.violations.is_empty(),
            "checked_at": ledger.checked_at,
            "violations": ledger.violations,
        },
    });
    if problems.is_empty() {
        (StatusCode::OK, axum::Json(body)).into_response()
    } else {
        tracing::warn!(?problems, "not ready");
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../templates/app.css"),
    )
        .into_response()
}

async fn not_found(
    axum::extract::State(state): axum::extract::State<AppState>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> Response {
    state
        .metrics
        .observe(method.as_str(), "unmatched", StatusCode::NOT_FOUND, 0.0);
    if uri.path().starts_with("/api/") {
        AppError::NotFound.into_response()
    } else {
        PageError(AppError::NotFound).into_response()
    }
}

/// An error on a page: the same statuses as the API, shown as an HTML page.
/// "Not logged in" sends the person to the login page instead.
pub struct PageError(pub AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0.normalized();
        e.log();
        if let AppError::Unauthorized = e {
            return Redirect::to("/dang-nhap").into_response();
        }
        let status = e.status();
        let title = match status {
            StatusCode::NOT_FOUND => "Không tìm thấy",
            StatusCode::FORBIDDEN => "Không có quyền",
            _ => "Có lỗi",
        };
        let message = crate::error::sentence(&e.to_string());
        let page = ErrorPage {
            layout: Layout::bare(title),
            status: status.as_u16(),
            message: message.clone(),
        };
        let mut resp = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message.clone()).into_response(),
        };
        if let Some(secs) = e.retry_after() {
            resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        // `error_page_for_visitor` renders it again with the visitor's header.
        resp.extensions_mut()
            .insert(ErrorPageParts { title, message });
        resp
    }
}

#[derive(Clone)]
struct ErrorPageParts {
    title: &'static str,
    message: String,
}

/// An error page is made without the request (`PageError: IntoResponse`), so its header
/// would show a logged-in seller as logged out; here, only for error pages, the visitor is
/// looked up and the page rendered again with their header, cart count and logout form.
async fn error_page_for_visitor(
    state: &AppState,
    resp: Response,
    cookies: Vec<header::HeaderValue>,
    seed: &CsrfSeed,
) -> Response {
    let Some(parts) = resp.extensions().get::<ErrorPageParts>().cloned() else {
        return resp;
    };
    let mut lookup = axum::http::Request::builder().uri("/");
    for c in cookies {
        lookup = lookup.header(header::COOKIE, c);
    }
    let Ok(lookup) = lookup.body(()) else {
        return resp;
    };
    let (mut head, ()) = lookup.into_parts();
    let user = match <MaybeUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut head, state,
    )
    .await
    {
        Ok(MaybeUser(u)) => u,
        Err(_) => return resp,
    };
    let page = ErrorPage {
        layout: Layout::new(state, seed, &user, parts.title),
        status: resp.status().as_u16(),
        message: parts.message,
    };
    let Ok(html) = page.render() else {
        return resp;
    };
    let (mut head, _) = resp.into_parts();
    head.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(head, axum::body::Body::from(html))
}

pub type PageResult = Result<Response, PageError>;

/// Render a page template, turning a template failure into a logged 500.
pub fn render<T: Template>(t: T) -> PageResult {
    let html = t
        .render()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("template: {e}")))?;
    Ok(Html(html).into_response())
}

/// A redirect after a successful form post (303 so the browser follows with GET).
pub fn see_other(to: &str) -> PageResult {
    Ok(Redirect::to(to).into_response())
}
