//! Origin page views, tallied in memory and added to `batch_scans` every few seconds: a
//! public page a QR code sends crowds to should not take the database's write lock per view.
//! Counts are additive upserts, so any number of instances flush into the same rows; a crash
//! loses at most the last few seconds of views of that instance.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::db::Db;
use crate::error::Result;

/// Visitors remembered per Hà Nội day, at most (beyond, views of that day are not counted:
/// a flood cannot grow memory).
const MAX_SEEN: usize = 500_000;

/// Views not yet written, per (batch id, Hà Nội day); and who was already counted today.
#[derive(Default)]
pub struct Tally(Mutex<HashMap<(i64, String), i64>>, Mutex<Seen>);

/// Today's visitors as keyed hashes: the key is random, made each day, never stored or
/// logged; with it gone the hashes say nothing about anyone.
#[derive(Default)]
pub struct Seen {
    day: String,
    key: [u8; 32],
    visitors: std::collections::HashSet<(i64, u64)>,
}

/// Obvious robots by their user agent (an empty one included): not counted.
pub fn is_bot(user_agent: &str) -> bool {
    let ua = user_agent.to_ascii_lowercase();
    ua.trim().is_empty()
        || [
            "bot",
            "crawl",
            "spider",
            "slurp",
            "curl/",
            "wget/",
            "python",
            "go-http",
            "java/",
            "httpclient",
            "okhttp",
            "scrapy",
            "headlesschrome",
            "phantomjs",
            "facebookexternalhit",
            "zalo-link",
        ]
        .iter()
        .any(|b| ua.contains(b))
}

impl Tally {
    /// Count a view of a batch's origin page once per visitor (address and user agent) per
    /// batch per Hà Nội day; robots are not counted. Returns whether it counted.
    pub fn record(&self, batch_id: i64, address: &str, user_agent: &str) -> bool {
        if is_bot(user_agent) {
            return false;
        }
        let day = super::today_vn().format("%Y-%m-%d").to_string();
        {
            let mut seen = self.1.lock().unwrap_or_else(|e| e.into_inner());
            if seen.day != day {
                seen.day = day.clone();
                rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seen.key);
                seen.visitors.clear();
            }
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&seen.key).expect("hmac key");
            mac.update(address.as_bytes());
            mac.update(b"\n");
            mac.update(user_agent.as_bytes());
            let h = mac.finalize().into_bytes();
            let visitor = u64::from_le_bytes(h[..8].try_into().expect("8 bytes"));
            if seen.visitors.len() >= MAX_SEEN || !seen.visitors.insert((batch_id, visitor)) {
                return false;
            }
        }
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((batch_id, day)).or_insert(0) += 1;
        true
    }

    /// This instance's views of a batch not yet written, per day.
    pub fn pending(&self, batch_id: i64) -> Vec<(String, i64)> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .filter(|((b, _), _)| *b == batch_id)
            .map(|((_, d), n)| (d.clone(), *n))
            .collect()
    }

    /// Write what was tallied; on failure the counts are kept for the next flush.
    pub async fn flush(&self, db: &Db) -> Result<usize> {
        let taken = std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()));
        if taken.is_empty() {
            return Ok(0);
        }
        match write(db, &taken).await {
            Ok(()) => Ok(taken.len()),
            Err(e) => {
                let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
                for (k, n) in taken {
                    *m.entry(k).or_insert(0) += n;
                }
                Err(e)
            }
        }
    }
}

async fn write(db: &Db, counts: &HashMap<(i64, String), i64>) -> Result<()> {
    let mut tx = db.begin().await?;
    for ((batch, day), n) in counts {
        sqlx::query(
            "INSERT INTO batch_scans (batch_id, day, n) VALUES ($1, $2, $3)
             ON CONFLICT (batch_id, day) DO UPDATE SET n = batch_scans.n + EXCLUDED.n",
        )
        .bind(*batch)
        .bind(day.clone())
        .bind(*n)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_visitor_counts_once_per_batch_and_robots_not_at_all() {
        let t = Tally::default();
        let phone = "Mozilla/5.0 (Linux; Android 14) Mobile";
        assert!(t.record(1, "203.0.113.7", phone));
        for _ in 0..300 {
            assert!(!t.record(1, "203.0.113.7", phone));
        }
        assert!(t.record(2, "203.0.113.7", phone), "another batch");
        assert!(t.record(1, "203.0.113.8", phone), "another visitor");
        assert!(!t.record(1, "203.0.113.9", "Googlebot/2.1"));
        assert!(!t.record(1, "203.0.113.9", ""));
        assert!(!t.record(1, "203.0.113.9", "curl/8.5.0"));
        assert_eq!(t.pending(1).iter().map(|(_, n)| n).sum::<i64>(), 2);
    }
}
