//! Application state, router assembly and the server with its background tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderName;
use tokio::net::TcpListener;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::Config;
use crate::db::Db;

pub use crate::web::{AppState, Shared};

/// Paths whose last part is a secret (an email confirmation token, GHN's webhook secret): the
/// secret never reaches a log. Signed buyer links and GHTK's hash are in the query, which is
/// not logged.
const SECRET_PATHS: [&str; 2] = ["/xac-nhan-email/", "/webhooks/ghn/"];

/// The path as logs show it: a secret part replaced by `…`.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in SECRET_PATHS {
        if let Some(rest) = path.strip_prefix(prefix)
            && !rest.is_empty()
        {
            return format!("{prefix}…").into();
        }
    }
    path.into()
}

pub fn router(state: AppState) -> Router {
    crate::web::router(state.clone())
        // Every log line of a request sits in this span, so it carries the request id.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        request_id = %id,
                        method = %req.method(),
                        path = %loggable_path(req.uri().path()),
                    )
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
        .layer(tower::util::MapRequestLayer::new(drop_odd_request_id))
        .with_state(state)
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A random (v4) UUID per request from the thread's CSPRNG: `MakeRequestUuid` asks the
/// operating system for every one (a system call per request, seen in the page profile).
#[derive(Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut buf = uuid::Uuid::encode_buffer();
        axum::http::HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
            .ok()
            .map(RequestId::new)
    }
}

/// A request id from the client (a proxy's) is kept when it is a plain token of at most 64
/// characters; anything else is replaced by a generated one, so logs hold no client junk.
fn drop_odd_request_id(mut req: Request) -> Request {
    let ok = req.headers().get(REQUEST_ID).is_none_or(|v| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 64
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
    });
    if !ok {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// Start-up, before anything serves or works: the schema (`Db::migrate`), then the data
/// steps that bring an older database's rows up to it (`backfill`). `serve`, `worker` and
/// `migrate` all run it; several instances may run it at once.
pub async fn prepare(db: &Db, config: &Config) -> anyhow::Result<()> {
    db.migrate().await?;
    backfill(db, config).await
}

/// The data steps, each claimed once in `data_migrations` (or idempotent): the ledger's
/// journals for money recorded before the ledger, the village categories adopted from the
/// products' free text, and the fee fixed on orders placed before fees were per order.
pub async fn backfill(db: &Db, config: &Config) -> anyhow::Result<()> {
    crate::payments::settle::backfill(db)
        .await
        .map_err(|e| anyhow::anyhow!("ledger backfill: {e:?}"))?;
    crate::catalog::categories::adopt_existing(db)
        .await
        .map_err(|e| anyhow::anyhow!("categories from products: {e:?}"))?;
    // Orders from before fees were fixed per order keep the fee in force now.
    let fixed = crate::orders::money::fix_missing_fees(db, config.payouts.fee_bps)
        .await
        .map_err(|e| anyhow::anyhow!("fixing order fees: {e:?}"))?;
    if fixed > 0 {
        tracing::info!(
            orders = fixed,
            fee_bps = config.payouts.fee_bps,
            "fee fixed on older orders"
        );
    }
    Ok(())
}

/// A server bound to its port, ready to run (tests bind port 0 and read the address).
pub struct Server {
    listener: TcpListener,
    /// `CHOLANG_METRICS_ADDR`: `/metrics` on a listener of its own.
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

impl Server {
    pub async fn bind(config: Config, db: Db) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(config.addr).await?;
        let metrics_listener = match config.metrics_addr {
            Some(a) => Some(TcpListener::bind(a).await?),
            None => None,
        };
        // What product pages and search hits read, kept until the database says it changed.
        let catalog = Arc::new(crate::db::CatalogEpoch::default());
        let search = crate::search::Search::open(&config.search, db.clone())?
            .with_kept(catalog.clone(), config.product_cache_entries);
        let product_cache_entries = config.product_cache_entries;
        Ok(Server {
            listener,
            metrics_listener,
            state: AppState::new(Shared {
                metrics: Arc::default(),
                db,
                rates: Arc::new(crate::limits::rate::Limiters::new(&config.rates)),
                config: Arc::new(config),
                search,
                scans: Arc::default(),
                pages: Arc::default(),
                products: Arc::new(crate::web::product_cache::ProductCache::new(
                    catalog,
                    product_cache_entries,
                )),
            }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// What every handler shares (tests read the page cache's clock through it).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// Where `/metrics` is served, when it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serve until `shutdown` resolves, with the housekeeping task beside the server.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let housekeeping = self.state.config.housekeeping_in_serve.then(|| {
            tokio::spawn(housekeeping(
                self.state.db.clone(),
                self.state.config.clone(),
            ))
        });
        let scans = tokio::spawn(flush_scans(self.state.clone()));
        let catalog = (self.state.config.product_cache_entries > 0).then(|| {
            tokio::spawn(crate::db::watch_catalog(
                self.state.db.clone(),
                self.state.config.database_url.clone(),
                self.state.products.epoch(),
            ))
        });
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = if self.state.config.notify.embedded_worker {
            let n = crate::notify::worker::Notifier::new(
                self.state.db.clone(),
                self.state.config.clone(),
            )?;
            Some(tokio::spawn(n.run(stop_rx)))
        } else {
            None
        };
        let search_sync = if self.state.config.search.embedded_worker {
            let sync = crate::search::sync::SearchSync::new(self.state.search.clone());
            let every = Duration::from_millis(self.state.config.search.sync_interval_ms);
            let mut stop = stop_tx.subscribe();
            Some(tokio::spawn(sync.run(every, async move {
                let _ = stop.wait_for(|s| *s).await;
            })))
        } else {
            None
        };
        let metrics = self.metrics_listener.map(|l| {
            let app = metrics_router(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(l, app).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            })
        });
        let app = router(self.state.clone());
        axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
        if let Some(h) = housekeeping {
            h.abort();
        }
        scans.abort();
        if let Some(c) = catalog {
            c.abort();
        }
        if let Some(m) = metrics {
            m.abort();
        }
        if let Err(e) = self.state.scans.flush(&self.state.db).await {
            tracing::warn!(error = %e, "origin page views not written at shutdown");
        }
        // Let the notice worker finish the notice in hand; unsent ones stay in the outbox.
        let _ = stop_tx.send(true);
        if let Some(w) = worker {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(20), w).await;
        }
        if let Some(w) = search_sync {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(20), w).await;
        }
        Ok(())
    }
}

/// Every 5 seconds: add the origin page views tallied in memory to the database.
async fn flush_scans(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        if let Err(e) = state.scans.flush(&state.db).await {
            tracing::warn!(error = %e, "writing origin page views failed; kept for the next try");
        }
    }
}

/// Every 15 seconds, `housekeeping_once`: in `serve` unless `HOUSEKEEPING=off`, and in every
/// `cholang worker`. Each step is safe with several processes at once (conditional updates,
/// row claims and leases), so instances and workers may all run it.
pub async fn housekeeping(db: Db, config: Arc<Config>) {
    let mut tick = tokio::time::interval(Duration::from_secs(15));
    let mut last_check: Option<std::time::Instant> = None;
    loop {
        tick.tick().await;
        housekeeping_once(&db, &config).await;
        // The ledger's invariants every LEDGER_CHECK_SECS (and at start): a violation is
        // logged, kept for admin pages, /readyz and /metrics (`ledger::store::run_check`).
        if last_check.is_none_or(|t| t.elapsed().as_secs() >= config.ledger_check_secs) {
            last_check = Some(std::time::Instant::now());
            if let Err(e) = crate::ledger::store::run_check(&db).await {
                tracing::warn!(error = %e, "ledger check failed to run");
            }
        }
    }
}

/// Expire unpaid payments (releasing their stock), release the money of orders whose buyer
/// protection window is over (and escalate unanswered requests), send and follow payOS payouts, close proposals whose vote ran
/// out, ask carriers about parcels not heard of in 12 hours, drop expired sessions and old attempt counters. Failures are logged and tried again
/// at the next tick.
pub async fn housekeeping_once(db: &Db, config: &Config) {
    match crate::payments::store::expire_due(db).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(expired = n, "unpaid payments expired, stock released"),
        Err(e) => tracing::warn!(error = %e, "payment expiry sweep failed"),
    }
    match crate::protection::store::sweep(db, config, crate::domain::now_ms()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            released = n,
            "orders released to their shops (buyer protection)"
        ),
        Err(e) => tracing::warn!(error = %e, "buyer protection sweep failed"),
    }
    if let Err(e) =
        crate::payouts::payos::run_once(db, config, crate::refund_payouts::PAYOS_BOOKS).await
    {
        tracing::warn!(error = %e, "payOS payout follow-up failed");
    }
    if let Err(e) = crate::pricing::store::close_expired(db).await {
        tracing::warn!(error = %e, "closing expired proposals failed");
    }
    // Parcels not heard of for 12 hours: the carrier is asked (a webhook can be lost).
    match crate::shipments::store::poll(db, &config.carriers, crate::domain::now_ms()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(asked = n, "carriers asked about quiet parcels"),
        Err(e) => tracing::warn!(error = %e, "shipment poll failed"),
    }
    if let Err(e) = crate::limits::rate::sweep(db).await {
        tracing::warn!(error = %e, "rate limit sweep failed");
    }
    let keep_from = crate::domain::now_ms() - config.login_window_minutes * 60_000;
    if let Err(e) = crate::accounts::store::sweep(db, keep_from).await {
        tracing::warn!(error = %e, "session sweep failed");
    }
}

/// The process's allocator (`#[global_allocator]` in main.rs): allocations under 1 MiB from
/// mimalloc (per-thread heaps without locks: glibc's malloc, two arenas, was the largest item
/// of a kept page's profile, and pages served 21–23 % of a bare axum "hello" on it against
/// 36–39 % on mimalloc), larger ones from the system's malloc, which maps each on its own and
/// returns it when freed (`tune_allocator`): argon2's 19 MiB blocks and photo buffers. In the
/// memory bench this lowered the peak of the largest-photo flood from 358 to 262 MB; what
/// brought the resting size down (122 → 76 MB) was building mimalloc without transparent huge
/// pages (`no_thp` in Cargo.toml).
pub struct SplitAllocator;

const LARGE_ALLOCATION: usize = 1024 * 1024;

// SAFETY: each block is freed by the allocator that made it: both are chosen by the layout's
// size, which `dealloc` and `realloc` receive unchanged; a `realloc` across the line
// allocates in the other, copies and frees the old block.
unsafe impl std::alloc::GlobalAlloc for SplitAllocator {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() >= LARGE_ALLOCATION {
            unsafe { std::alloc::System.alloc(layout) }
        } else {
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() >= LARGE_ALLOCATION {
            unsafe { std::alloc::System.alloc_zeroed(layout) }
        } else {
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        if layout.size() >= LARGE_ALLOCATION {
            unsafe { std::alloc::System.dealloc(ptr, layout) }
        } else {
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        match (
            layout.size() >= LARGE_ALLOCATION,
            new_size >= LARGE_ALLOCATION,
        ) {
            (false, false) => unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) },
            (true, true) => unsafe { std::alloc::System.realloc(ptr, layout, new_size) },
            _ => {
                // SAFETY: the caller guarantees new_size, rounded up to the alignment, fits.
                let new_layout = unsafe {
                    std::alloc::Layout::from_size_align_unchecked(new_size, layout.align())
                };
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

/// Keep the process small at rest (glibc's malloc). Two settings, made before any thread
/// starts:
/// - a fixed mmap threshold of 1 MiB: every larger block (argon2's 19 MiB per password
///   hash, a photo being decoded, a search segment being built) is mapped on its own and
///   handed back to the system when freed. Left dynamic, glibc raises the threshold after
///   the first such free and keeps later ones in per-thread heaps for good — `serve --demo`
///   sat at 250 MB after hashing a dozen demo passwords, a login flood at gigabytes;
/// - at most two malloc arenas per process, so a burst of blocking threads does not leave
///   one hoarded heap each behind.
///
/// And one for mimalloc (the blocks under 1 MiB): a page freed is handed back at once
/// (`purge_delay` 0). With its default (10 ms) the purge waits for the owning thread's next
/// allocation, so what a thread freed stayed resident while the thread sat idle: `serve
/// --demo` held 62 MB a minute after start, 51 MB with this (peak 87 → 64 MB); a product
/// page and the search API under wrk -c32 served the same requests per second within noise.
pub fn tune_allocator() {
    /// `mi_option_purge_delay` in mimalloc v2's `mi_option_t` (its bindings name no
    /// constant for it).
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one mimalloc option; called from main before any other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called from main before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 4 * 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// `GET /metrics` on the metrics listener.
async fn scrape(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match st.metrics.render(&st.db, st.search.engine.name()).await {
        Ok(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The metrics listener's router.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    /// GHN's webhook secret is a part of its path: never in a log line.
    #[test]
    fn the_ghn_webhook_secret_never_reaches_a_log() {
        assert_eq!(
            super::loggable_path("/webhooks/ghn/a-long-secret-0123456789"),
            "/webhooks/ghn/…"
        );
        assert_eq!(super::loggable_path("/webhooks/ghtk"), "/webhooks/ghtk");
    }

    use super::{LARGE_ALLOCATION, SplitAllocator};

    /// A block keeps its bytes when it grows across the line into the system's malloc and
    /// shrinks back into mimalloc, and each allocator frees its own.
    #[test]
    fn blocks_keep_their_bytes_across_the_allocator_line() {
        let a = SplitAllocator;
        let small = Layout::from_size_align(4096, 16).unwrap();
        let pattern = |i: usize| (i * 31 % 251) as u8;
        unsafe {
            let p = a.alloc(small);
            assert!(!p.is_null());
            for i in 0..small.size() {
                *p.add(i) = pattern(i);
            }
            let big = 3 * LARGE_ALLOCATION;
            let q = a.realloc(p, small, big);
            assert!(!q.is_null());
            for i in 0..small.size() {
                assert_eq!(*q.add(i), pattern(i), "grown, byte {i}");
            }
            *q.add(big - 1) = 7;
            let big_layout = Layout::from_size_align(big, 16).unwrap();
            let r = a.realloc(q, big_layout, 1000);
            assert!(!r.is_null());
            for i in 0..1000 {
                assert_eq!(*r.add(i), pattern(i), "shrunk, byte {i}");
            }
            assert_eq!(r as usize % 16, 0, "alignment kept");
            a.dealloc(r, Layout::from_size_align(1000, 16).unwrap());
            let z = a.alloc_zeroed(big_layout);
            assert!((0..big).step_by(4093).all(|i| *z.add(i) == 0));
            a.dealloc(z, big_layout);
        }
    }
}
