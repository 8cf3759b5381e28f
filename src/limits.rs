//! Limits on what one client can make the server do: attempt counters reserved *before* the
//! expensive or risky work they guard (password checks, order look-ups, test notices,
//! checkout holds), and bounded pools for CPU- and memory-heavy work (password hashing,
//! photo decoding).
//!
//! A counter is one row of `attempt_counters`, bumped with a single
//! `INSERT … ON CONFLICT (key) DO UPDATE … RETURNING n`: PostgreSQL takes the row's lock and
//! SQLite its write lock, so N concurrent attempts read 1, 2, … N and exactly `max` of them
//! pass, however they race. A counter covers one fixed window from its first attempt.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::db::Db;
use crate::domain::now_ms;
use crate::error::{AppError, Result};

/// Reserve one attempt under `key` and return how many were made in the current window,
/// this one included.
pub async fn reserve(db: &Db, key: &str, window_ms: i64) -> Result<i64> {
    let now = now_ms();
    let n: i64 = sqlx::query_scalar(
        "INSERT INTO attempt_counters (key, window_start, n) VALUES ($1, $2, 1)
         ON CONFLICT (key) DO UPDATE SET
           n = CASE WHEN attempt_counters.window_start <= $3 THEN 1 ELSE attempt_counters.n + 1 END,
           window_start = CASE WHEN attempt_counters.window_start <= $3 THEN $2 ELSE attempt_counters.window_start END
         RETURNING n",
    )
    .bind(key.to_string())
    .bind(now)
    .bind(now - window_ms)
    .fetch_one(&db.pool)
    .await?;
    Ok(n)
}

/// Reserve an attempt and refuse it when it is beyond `max` in the window.
pub async fn take(db: &Db, key: &str, max: i64, window_ms: i64) -> Result<bool> {
    Ok(reserve(db, key, window_ms).await? <= max)
}

/// Give a reserved attempt back (it turned out not to be a failure).
pub async fn give_back(db: &Db, key: &str) -> Result<()> {
    sqlx::query("UPDATE attempt_counters SET n = n - 1 WHERE key = $1 AND n > 0")
        .bind(key.to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Forget a counter (a successful login clears its lockout counter).
pub async fn clear(db: &Db, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM attempt_counters WHERE key = $1")
        .bind(key.to_string())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Attempts counted under `key` in the current window (0 when none).
pub async fn count(db: &Db, key: &str, window_ms: i64) -> Result<i64> {
    let n: Option<i64> =
        sqlx::query_scalar("SELECT n FROM attempt_counters WHERE key = $1 AND window_start > $2")
            .bind(key.to_string())
            .bind(now_ms() - window_ms)
            .fetch_optional(&db.pool)
            .await?;
    Ok(n.unwrap_or(0))
}

/// Drop counters whose window ended before `before_ms`.
pub async fn sweep(db: &Db, before_ms: i64) -> Result<()> {
    sqlx::query("DELETE FROM attempt_counters WHERE window_start <= $1")
        .bind(before_ms)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A bounded pool for heavy work: at most `permits` jobs run at once, at most `max_waiting`
/// wait for a turn, each for at most `wait`; everyone else gets [`AppError::Busy`] at once,
/// which the API answers 503 with `Retry-After`.
pub struct Slots {
    permits: Semaphore,
    size: usize,
    waiting: AtomicUsize,
    max_waiting: usize,
    wait: Duration,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// A turn in a [`Slots`] pool; the turn ends when it is dropped.
pub struct Turn<'a> {
    _permit: SemaphorePermit<'a>,
    slots: &'a Slots,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.slots.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slots {
    pub const fn new(permits: usize, max_waiting: usize, wait: Duration) -> Slots {
        Slots {
            permits: Semaphore::const_new(permits),
            size: permits,
            waiting: AtomicUsize::new(0),
            max_waiting,
            wait,
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Wait (boundedly) for a turn.
    pub async fn turn(&self, what: &'static str) -> Result<Turn<'_>> {
        let permit = match self.permits.try_acquire() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                    return Err(AppError::Busy(what));
                }
                let got = tokio::time::timeout(self.wait, self.permits.acquire()).await;
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                match got {
                    Ok(Ok(p)) => p,
                    _ => return Err(AppError::Busy(what)),
                }
            }
        };
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Ok(Turn {
            _permit: permit,
            slots: self,
        })
    }

    /// The most jobs that ever ran at once (tests and benchmarks read it).
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// Cores this process may use (at least 1).
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn at_most_permits_run_and_the_queue_is_bounded() {
        // Turns are held until the gate opens: no timing decides anything (the wait bound
        // is a minute, never reached).
        let slots = Arc::new(Slots::new(2, 3, Duration::from_secs(60)));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (s, gate) = (slots.clone(), gate.clone());
            tasks.push(tokio::spawn(async move {
                match s.turn("test").await {
                    Ok(_t) => {
                        gate.acquire().await.expect("gate").forget();
                        true
                    }
                    Err(AppError::Busy(_)) => false,
                    Err(e) => panic!("{e}"),
                }
            }));
        }
        // Two hold a turn and three wait: the state awaited, then the other three were
        // refused at once.
        while !(slots.in_flight.load(Ordering::SeqCst) == 2
            && slots.waiting.load(Ordering::SeqCst) == 3
            && tasks.iter().filter(|t| t.is_finished()).count() == 3)
        {
            tokio::task::yield_now().await;
        }
        gate.add_permits(8);
        let mut ran = 0;
        for t in tasks {
            if t.await.unwrap() {
                ran += 1;
            }
        }
        assert_eq!(slots.peak(), 2, "never more than two at once");
        // 2 run at once, 3 wait for them, 3 refused.
        assert_eq!(ran, 5);
    }
}

/// Requests per client address on the routes a script would hammer (registration, checkout,
/// order look-ups, webhooks), refused with 429 and `Retry-After` before any work is done.
/// Kept in the database, so several instances share one allowance per address.
///
/// Per-address request rates, kept in the database (`rate_limits`) so that every
/// instance of `cholang serve` counts against the same allowance: a generic cell rate
/// algorithm (GCRA), the one governor implements in memory, as a single upsert. The row
/// holds the key's theoretical arrival time `tat`; a request at `now` passes when
/// `max(tat, now) - now <= period - period/N` and pushes `tat` on by `period/N`, so a
/// burst of N passes and the allowance refills evenly. PostgreSQL locks the row and
/// SQLite its database for the statement, so concurrent requests on any instance are
/// counted one after the other.
pub mod rate {
    use std::time::Duration;

    use crate::db::Db;
    use crate::domain::now_ms;
    use crate::error::Result;

    /// What a route is counted under.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Scope {
        Register,
        Checkout,
        Lookup,
        Webhook,
    }

    impl Scope {
        fn name(self) -> &'static str {
            match self {
                Scope::Register => "register",
                Scope::Checkout => "checkout",
                Scope::Lookup => "lookup",
                Scope::Webhook => "webhook",
            }
        }
    }

    /// `N/s`, `N/min` or `N/h` (a burst of N, refilled evenly over the period), or `off`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Rate {
        pub n: u32,
        pub period: Duration,
    }

    impl Rate {
        pub fn parse(s: &str) -> Result<Option<Rate>, String> {
            let s = s.trim();
            if s == "off" {
                return Ok(None);
            }
            let (n, unit) = s
                .split_once('/')
                .ok_or_else(|| format!("{s:?}: expected N/s, N/min, N/h or off"))?;
            let n: u32 = n
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{s:?}: N must be a whole number above 0"))?;
            let period = match unit.trim() {
                "s" => Duration::from_secs(1),
                "min" => Duration::from_secs(60),
                "h" => Duration::from_secs(3600),
                u => return Err(format!("{s:?}: unit {u:?} is not s, min or h")),
            };
            Ok(Some(Rate { n, period }))
        }

        /// (emission interval, burst tolerance) in ms: one request per interval, N at once.
        fn cell(&self) -> (i64, i64) {
            let period = self.period.as_millis() as i64;
            let interval = (period / i64::from(self.n)).max(1);
            (interval, period - interval)
        }
    }

    /// The configured rates (`None`: no limit).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Rates {
        pub register: Option<Rate>,
        pub checkout: Option<Rate>,
        pub lookup: Option<Rate>,
        pub webhook: Option<Rate>,
    }

    pub struct Limiters {
        rates: Rates,
    }

    impl Limiters {
        pub fn new(r: &Rates) -> Limiters {
            Limiters { rates: *r }
        }

        /// `Ok(Ok(()))` to go on, `Ok(Err(secs))` with the whole seconds to wait.
        pub async fn check(
            &self,
            db: &Db,
            scope: Scope,
            key: &str,
        ) -> Result<std::result::Result<(), u64>> {
            let rate = match scope {
                Scope::Register => self.rates.register,
                Scope::Checkout => self.rates.checkout,
                Scope::Lookup => self.rates.lookup,
                Scope::Webhook => self.rates.webhook,
            };
            let Some(rate) = rate else {
                return Ok(Ok(()));
            };
            let (interval, tolerance) = rate.cell();
            let now = now_ms();
            // Every expression on the right reads the row as it was before this statement.
            let (tat, ok): (i64, i32) = sqlx::query_as(
                "INSERT INTO rate_limits (key, tat, ok) VALUES ($1, $2, 1)
                 ON CONFLICT (key) DO UPDATE SET
                   tat = CASE WHEN rate_limits.tat - $3 <= $4
                              THEN (CASE WHEN rate_limits.tat > $3 THEN rate_limits.tat ELSE $3 END) + $5
                              ELSE rate_limits.tat END,
                   ok = CASE WHEN rate_limits.tat - $3 <= $4 THEN 1 ELSE 0 END
                 RETURNING tat, ok",
            )
            .bind(format!("{}:{key}", scope.name()))
            .bind(now + interval)
            .bind(now)
            .bind(tolerance)
            .bind(interval)
            .fetch_one(&db.pool)
            .await?;
            if ok == 1 {
                return Ok(Ok(()));
            }
            // The next request passes once `tat - now <= tolerance`.
            let wait_ms = (tat - now - tolerance).max(1);
            Ok(Err(((wait_ms + 999) / 1000) as u64))
        }
    }

    /// Forget keys whose allowance is whole again.
    pub async fn sweep(db: &Db) -> Result<()> {
        sqlx::query("DELETE FROM rate_limits WHERE tat < $1")
            .bind(now_ms())
            .execute(&db.pool)
            .await?;
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rates_parse() {
            assert_eq!(
                Rate::parse("10/min").unwrap(),
                Some(Rate {
                    n: 10,
                    period: Duration::from_secs(60)
                })
            );
            assert_eq!(Rate::parse("off").unwrap(), None);
            for bad in ["", "10", "0/min", "x/min", "10/day", "-1/s"] {
                assert!(Rate::parse(bad).is_err(), "{bad}");
            }
        }

        #[tokio::test]
        async fn a_burst_then_refused_with_the_wait_on_any_instance() {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
            let db = Db::connect(&url).await.unwrap();
            db.migrate().await.unwrap();
            let rates = Rates {
                register: Rate::parse("3/h").unwrap(),
                checkout: None,
                lookup: None,
                webhook: None,
            };
            // Two limiters on one database: two instances of the server.
            let (a, b) = (Limiters::new(&rates), Limiters::new(&rates));
            for l in [&a, &b, &a] {
                assert_eq!(
                    l.check(&db, Scope::Register, "1.2.3.4").await.unwrap(),
                    Ok(())
                );
            }
            let wait = b
                .check(&db, Scope::Register, "1.2.3.4")
                .await
                .unwrap()
                .unwrap_err();
            assert!((1100..=1200).contains(&wait), "20 min for the next: {wait}");
            let again = a
                .check(&db, Scope::Register, "1.2.3.4")
                .await
                .unwrap()
                .unwrap_err();
            assert!(again <= wait, "a refusal does not push the wait on");
            assert_eq!(
                a.check(&db, Scope::Register, "5.6.7.8").await.unwrap(),
                Ok(()),
                "per address"
            );
            assert_eq!(
                a.check(&db, Scope::Checkout, "1.2.3.4").await.unwrap(),
                Ok(()),
                "no limit set"
            );
            sweep(&db).await.unwrap();
            let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rate_limits")
                .fetch_one(&db.pool)
                .await
                .unwrap();
            assert_eq!(rows, 2, "allowances still in use are kept");
        }
    }
}
