//! Origin page views, tallied in memory and added to `batch_scans` every few seconds: a
//! public page a QR code sends crowds to should not take the database's write lock per view.
//! Counts are additive upserts, so any number of instances flush into the same rows; a crash
//! loses at most the last few seconds of views of that instance.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::db::Db;
use crate::error::Result;

/// Views not yet written, per (batch id, Hà Nội day).
#[derive(Default)]
pub struct Tally(Mutex<HashMap<(i64, String), i64>>);

impl Tally {
    pub fn record(&self, batch_id: i64) {
        let day = super::today_vn().format("%Y-%m-%d").to_string();
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((batch_id, day)).or_insert(0) += 1;
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
