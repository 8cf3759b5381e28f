//! Prometheus metrics, served on `CHOLANG_METRICS_ADDR` (a listener of its own, never the
//! public one). Counted as requests pass (`track`): requests and latency per route template
//! and status, webhook deliveries per provider and outcome. Read from the database at each
//! scrape: payments per status, notices pending / failed and the age of the oldest due one,
//! the search queue's depth and age, the pool's connections in use, and build info.
//!
//! One registry per `AppState` (`prometheus-client`, no global recorder), so two servers in
//! one process — the tests — never mix their figures.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::db::Db;
use crate::domain::now_ms;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: String,
    /// The route's template (`/san-pham/:slug`), never the raw path; `unmatched` for 404s.
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub provider: String,
    /// accepted (2xx), refused (4xx but 429), rate_limited (429), error (5xx)
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub database: String,
    pub search: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RouteLabels, Counter>,
    latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    webhooks: Family<WebhookLabels, Counter>,
    payments: Family<StatusLabels, Gauge>,
    notices: Family<StatusLabels, Gauge>,
    notice_oldest_due: Gauge,
    notice_events: Gauge,
    search_queue: Gauge,
    search_queue_age: Gauge,
    ledger_violations: Gauge,
    pool_in_use: Gauge,
    pool_size: Gauge,
    build: Family<BuildLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("cholang");
        let requests = Family::<RouteLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let webhooks = Family::<WebhookLabels, Counter>::default();
        let payments = Family::<StatusLabels, Gauge>::default();
        let notices = Family::<StatusLabels, Gauge>::default();
        let notice_oldest_due = Gauge::default();
        let notice_events = Gauge::default();
        let search_queue = Gauge::default();
        let search_queue_age = Gauge::default();
        let ledger_violations = Gauge::default();
        let pool_in_use = Gauge::default();
        let pool_size = Gauge::default();
        let build = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method and route template",
            latency.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Payment webhook deliveries by provider and outcome",
            webhooks.clone(),
        );
        registry.register("payments", "Payments by status", payments.clone());
        registry.register(
            "notices",
            "Notices by status (pending, sending, failed, delivered)",
            notices.clone(),
        );
        registry.register(
            "notice_oldest_due_seconds",
            "Age of the oldest notice due and not delivered",
            notice_oldest_due.clone(),
        );
        registry.register(
            "notice_events_pending",
            "Events (order paid, proposal opened, …) not yet turned into notices",
            notice_events.clone(),
        );
        registry.register(
            "search_queue_depth",
            "Changes waiting for the search index",
            search_queue.clone(),
        );
        registry.register(
            "search_queue_oldest_seconds",
            "Age of the oldest change waiting for the search index",
            search_queue_age.clone(),
        );
        registry.register(
            "ledger_invariant_violations",
            "Ledger rules broken at the last check (0 when the books hold)",
            ledger_violations.clone(),
        );
        registry.register(
            "db_pool_in_use",
            "Database connections in use",
            pool_in_use.clone(),
        );
        registry.register(
            "db_pool_size",
            "Database connections open",
            pool_size.clone(),
        );
        registry.register("build_info", "Version and backends", build.clone());
        Metrics {
            registry,
            requests,
            latency,
            webhooks,
            payments,
            notices,
            notice_oldest_due,
            notice_events,
            search_queue,
            search_queue_age,
            ledger_violations,
            pool_in_use,
            pool_size,
            build,
        }
    }

    pub fn observe(&self, method: &str, route: &str, status: StatusCode, seconds: f64) {
        self.requests
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
                status: status.as_u16().to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(seconds);
        if let Some(provider) = route.strip_prefix("/webhooks/") {
            let outcome = match status.as_u16() {
                200..=299 => "accepted",
                429 => "rate_limited",
                400..=499 => "refused",
                _ => "error",
            };
            self.webhooks
                .get_or_create(&WebhookLabels {
                    provider: provider.to_string(),
                    outcome: outcome.to_string(),
                })
                .inc();
        }
    }

    /// Read the database's figures into the gauges, then the whole registry as text.
    pub async fn render(
        &self,
        db: &Db,
        search_engine: &str,
    ) -> Result<String, crate::error::AppError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM payments GROUP BY status")
                .fetch_all(&db.pool)
                .await?;
        self.payments.clear();
        for (status, n) in rows {
            self.payments.get_or_create(&StatusLabels { status }).set(n);
        }
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM notices GROUP BY status")
                .fetch_all(&db.pool)
                .await?;
        self.notices.clear();
        for status in ["pending", "sending", "failed", "delivered"] {
            let n = rows
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            self.notices
                .get_or_create(&StatusLabels {
                    status: status.into(),
                })
                .set(n);
        }
        let now = now_ms();
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(run_after) FROM notices WHERE status IN ('pending', 'sending') AND run_after <= $1",
        )
        .bind(now)
        .fetch_one(&db.pool)
        .await?;
        let (events, oldest_event): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM notice_events WHERE expanded_at IS NULL",
        )
        .fetch_one(&db.pool)
        .await?;
        self.notice_events.set(events);
        // The oldest thing a person is still waiting to hear about: an event not yet turned
        // into notices, or a notice due and not delivered.
        let oldest = [oldest, oldest_event].into_iter().flatten().min();
        self.notice_oldest_due
            .set(oldest.map_or(0, |t| (now - t).max(0) / 1000));
        let ledger = crate::ledger::store::health(db).await?;
        self.ledger_violations.set(ledger.violations.len() as i64);
        let (depth, age_ms) = crate::index_queue::depth(db).await?;
        self.search_queue.set(depth);
        self.search_queue_age.set(age_ms / 1000);
        let size = i64::from(db.pool.size());
        self.pool_size.set(size);
        self.pool_in_use.set(size - db.pool.num_idle() as i64);
        self.build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                database: db.backend_name().into(),
                search: search_engine.into(),
            })
            .set(1);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| anyhow::anyhow!("encoding metrics: {e}"))?;
        Ok(out)
    }
}

/// A route template as a label: `/san-pham/{slug}` → `/san-pham/:slug` (braces in label
/// values trip some scrapers' parsers).
pub fn label_route(template: &str) -> String {
    template.replace('{', ":").replace('}', "")
}

/// Count every request under its route template (middleware on the public router).
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| label_route(p.as_str()))
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    m.observe(
        &method,
        &route,
        resp.status(),
        started.elapsed().as_secs_f64(),
    );
    resp
}
