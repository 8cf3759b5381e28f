//! Rendered public pages kept for a moment (`PAGE_CACHE_MS`, 1 s by default; 0 turns it off):
//! the home, village, shop, product and search pages as an anonymous visitor with an empty
//! cart sees them. A visitor who is logged in or has a cart always gets a fresh page.
//!
//! What is per visitor in such a page is its CSRF token: it is stored as a marker and put
//! back for each visitor. An entry is dropped after the TTL and when this process has
//! answered any request that may have changed something (every method but GET/HEAD), so a
//! change made through this instance shows at once; changes made elsewhere (another
//! instance, the background jobs) show within the TTL. Prices and stock are checked again at
//! checkout, never taken from a page.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::session::{CsrfSeed, SESSION_COOKIE, csrf_token};
use crate::app::AppState;

/// Where a visitor's CSRF token stands in a kept page.
const MARKER: &str = "\u{1}csrf\u{1}";
/// Pages larger than this are not kept.
const MAX_BODY: usize = 512 * 1024;
/// At most this many pages; when full, everything is dropped and kept again as asked.
const MAX_ENTRIES: usize = 4096;

struct Entry {
    body: String,
    made: Instant,
    generation: u64,
}

#[derive(Default)]
pub struct PageCache {
    entries: RwLock<HashMap<String, Entry>>,
    generation: AtomicU64,
}

impl PageCache {
    /// Something may have changed: every kept page is stale.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn get(&self, key: &str, ttl: Duration) -> Option<String> {
        let g = self.generation.load(Ordering::SeqCst);
        let entries = self.entries.read().ok()?;
        let e = entries.get(key)?;
        (e.generation == g && e.made.elapsed() < ttl).then(|| e.body.clone())
    }

    fn put(&self, key: String, body: String, generation: u64) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key,
                Entry {
                    body,
                    made: Instant::now(),
                    generation,
                },
            );
        }
    }
}

/// After any request that is not a read, drop what is kept (it ran on this instance, after
/// its transaction committed).
pub async fn forget_on_write(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let write = !matches!(*req.method(), Method::GET | Method::HEAD);
    let resp = next.run(req).await;
    if write {
        state.pages.changed();
    }
    resp
}

/// Serve a kept page, or render and keep it (route layer on the public pages).
pub async fn serve(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let ttl = Duration::from_millis(state.config.page_cache_ms);
    let seed = req.extensions().get::<CsrfSeed>().cloned();
    let anonymous = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .all(|v| !v.contains(SESSION_COOKIE))
        && req.headers().get(header::AUTHORIZATION).is_none();
    let Some(seed) = seed
        .filter(|s| ttl > Duration::ZERO && req.method() == Method::GET && anonymous && s.1 == 0)
    else {
        return next.run(req).await;
    };
    let key = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let token = csrf_token(&state, &seed);
    if let Some(kept) = state.pages.get(&key, ttl) {
        return page(kept.replace(MARKER, &token), "hit");
    }
    let generation = state.pages.generation.load(Ordering::SeqCst);
    let resp = next.run(req).await;
    let html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if resp.status() != StatusCode::OK || !html || resp.headers().contains_key(header::SET_COOKIE) {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(text) = std::str::from_utf8(&bytes)
        .map_err(|_| ())
        .and_then(|t| if t.len() <= MAX_BODY { Ok(t) } else { Err(()) })
    else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    state
        .pages
        .put(key, text.replace(&token, MARKER), generation);
    let mut resp = Response::from_parts(parts, Body::from(Bytes::clone(&bytes)));
    resp.headers_mut()
        .insert("x-page-cache", HeaderValue::from_static("miss"));
    resp
}

fn page(body: String, how: &'static str) -> Response {
    let mut resp = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    resp.headers_mut()
        .insert("x-page-cache", HeaderValue::from_static(how));
    resp
}
