//! Rendered public pages kept for a moment (`PAGE_CACHE_MS`, 1 s by default; 0 turns it off):
//! the home, village, shop, product and search pages as an anonymous visitor with an empty
//! cart sees them. A visitor who is logged in or has a cart always gets a fresh page.
//!
//! What is per visitor in such a page is its CSRF token: the page is kept cut where the token
//! stands and put together around each visitor's own token. An entry is dropped when this
//! process has answered any request that may have changed something (every method but
//! GET/HEAD), so a change made through this instance shows at once. Past its TTL, one request
//! renders the page again while the others are still given the old copy (single flight, for
//! at most `MAX_STALE`), so an expiring page is not rendered by every connection at once;
//! changes made elsewhere (another instance, the background jobs) show within the TTL plus
//! one render. A page with no copy at all (never asked, or dropped by a write) is rendered
//! by one request while the others asking for it wait (at most `MAX_WAIT`). Prices and stock
//! are checked again at checkout, never taken from a page.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};

use super::session::{CsrfSeed, SESSION_COOKIE, csrf_token};
use crate::web::AppState;

/// Pages larger than this are not kept.
const MAX_BODY: usize = 512 * 1024;
/// At most this many pages; when full, everything is dropped and kept again as asked.
const MAX_ENTRIES: usize = 4096;
/// How long past its TTL a kept page may still be served while one request renders its
/// successor; past this, every request renders.
const MAX_STALE: Duration = Duration::from_secs(10);
/// How long a request waits for another's first render of a page before rendering it itself.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// A kept page, split where the visitor's CSRF token goes: `pieces[0] token pieces[1] …`.
struct Entry {
    pieces: Vec<Bytes>,
    made: Instant,
    generation: u64,
    /// One request is rendering this page's successor (single flight).
    refreshing: AtomicBool,
}

#[derive(Default)]
pub struct PageCache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    generation: AtomicU64,
    /// Pages being rendered with no copy to serve meanwhile: others asking wait for them.
    rendering: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// How far this cache's clock runs ahead of the machine's (milliseconds): moved only by
    /// `advance`, so a test sees a page expire without waiting for it.
    ahead_ms: AtomicU64,
}

/// Who renders a page nobody has a usable copy of.
enum Turn<'a> {
    /// This request; the others wait until it is dropped.
    Lead(FirstRender<'a>),
    /// Another request, which wakes this one when done.
    Wait(tokio::sync::futures::OwnedNotified),
}

/// The one request rendering a page with no copy; dropped (kept, refused, failed or
/// cancelled), it wakes those waiting, who look again and render themselves if need be.
struct FirstRender<'a> {
    cache: &'a PageCache,
    key: String,
}

impl Drop for FirstRender<'_> {
    fn drop(&mut self) {
        if let Ok(mut rendering) = self.cache.rendering.lock()
            && let Some(done) = rendering.remove(&self.key)
        {
            done.notify_waiters();
        }
    }
}

enum Lookup {
    /// Within its TTL.
    Fresh(Arc<Entry>),
    /// Past its TTL while another request renders the next one: served as it is.
    Stale(Arc<Entry>),
    /// Render it; the guard (if any) lets others have the old copy meanwhile.
    Render(Option<Refreshing>),
}

/// This request renders a page others are served stale meanwhile; dropped (done, failed or
/// cancelled), it lets the next request try.
struct Refreshing(Arc<Entry>);

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

impl PageCache {
    /// This cache's time: the machine's, plus what `advance` added.
    fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.ahead_ms.load(Ordering::Relaxed))
    }

    /// Move this cache's clock forward, as if `by` had passed (the test clock: a page's
    /// lifetime is seen to end without sleeping through it).
    pub fn advance(&self, by: Duration) {
        self.ahead_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }

    /// Something may have changed: every kept page is stale.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    fn lookup(&self, key: &str, ttl: Duration) -> Lookup {
        let g = self.generation.load(Ordering::SeqCst);
        let Some(e) = self
            .entries
            .read()
            .ok()
            .and_then(|entries| entries.get(key).cloned())
        else {
            return Lookup::Render(None);
        };
        // After a write through this instance nobody gets the old page.
        if e.generation != g {
            return Lookup::Render(None);
        }
        let age = self.now().saturating_duration_since(e.made);
        if age < ttl {
            return Lookup::Fresh(e);
        }
        if age >= ttl + MAX_STALE {
            return Lookup::Render(None);
        }
        if e.refreshing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            Lookup::Render(Some(Refreshing(e)))
        } else {
            Lookup::Stale(e)
        }
    }

    /// Lead the first render of `key`, or wait for the one under way (`None`: too many under
    /// way, render without waiting).
    fn first_render(&self, key: &str) -> Option<Turn<'_>> {
        let mut rendering = self.rendering.lock().ok()?;
        if let Some(under_way) = rendering.get(key) {
            // Made under the lock, so the leader's wake-up cannot come before it.
            return Some(Turn::Wait(under_way.clone().notified_owned()));
        }
        if rendering.len() >= MAX_ENTRIES {
            return None;
        }
        rendering.insert(key.to_string(), Arc::default());
        Some(Turn::Lead(FirstRender {
            cache: self,
            key: key.to_string(),
        }))
    }

    fn put(&self, key: String, pieces: Vec<Bytes>, generation: u64) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key,
                Arc::new(Entry {
                    pieces,
                    made: self.now(),
                    generation,
                    refreshing: AtomicBool::new(false),
                }),
            );
        }
    }
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
    let key = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
    let token = csrf_token(&state, &seed);
    let (refreshing, first) = match state.pages.lookup(key, ttl) {
        Lookup::Fresh(e) => return page(&e, token, "hit"),
        Lookup::Stale(e) => return page(&e, token, "stale"),
        Lookup::Render(Some(guard)) => (Some(guard), None),
        Lookup::Render(None) => match state.pages.first_render(key) {
            Some(Turn::Lead(first)) => (None, Some(first)),
            Some(Turn::Wait(done)) => {
                let _ = tokio::time::timeout(MAX_WAIT, done).await;
                match state.pages.lookup(key, ttl) {
                    Lookup::Fresh(e) => return page(&e, token, "hit"),
                    Lookup::Stale(e) => return page(&e, token, "stale"),
                    Lookup::Render(guard) => (guard, None),
                }
            }
            None => (None, None),
        },
    };
    let key = key.to_string();
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
    if bytes.len() <= MAX_BODY && std::str::from_utf8(&bytes).is_ok() {
        state
            .pages
            .put(key, split_at_token(&bytes, token.as_bytes()), generation);
    }
    drop((refreshing, first));
    let mut resp = Response::from_parts(parts, Body::from(bytes));
    resp.headers_mut()
        .insert("x-page-cache", HeaderValue::from_static("miss"));
    resp
}

/// The page cut at every occurrence of the token (slices of one buffer, no copies).
fn split_at_token(page: &Bytes, token: &[u8]) -> Vec<Bytes> {
    let mut pieces = Vec::new();
    let mut from = 0;
    for at in memchr::memmem::find_iter(page, token) {
        pieces.push(page.slice(from..at));
        from = at + token.len();
    }
    pieces.push(page.slice(from..));
    pieces
}

/// A kept page for one visitor: its pieces with the visitor's token between them, handed to
/// the connection as they are (no copy of the page per request).
fn page(e: &Entry, token: String, how: &'static str) -> Response {
    let token = Bytes::from(token);
    let mut parts = VecDeque::with_capacity(e.pieces.len() * 2);
    for (i, piece) in e.pieces.iter().enumerate() {
        if i > 0 {
            parts.push_back(token.clone());
        }
        if !piece.is_empty() {
            parts.push_back(piece.clone());
        }
    }
    let len = parts.iter().map(|p| p.len() as u64).sum();
    let mut resp = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        Body::new(Pieces { parts, len }),
    )
        .into_response();
    resp.headers_mut()
        .insert("x-page-cache", HeaderValue::from_static(how));
    resp
}

/// A body of a few shared buffers with a known length.
struct Pieces {
    parts: VecDeque<Bytes>,
    len: u64,
}

impl http_body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let next = self.parts.pop_front();
        if let Some(p) = &next {
            self.len -= p.len() as u64;
        }
        Poll::Ready(next.map(|p| Ok(Frame::data(p))))
    }

    fn is_end_stream(&self) -> bool {
        self.parts.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}
