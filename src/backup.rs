//! `cholang backup FILE` and `cholang restore FILE` for the embedded (SQLite) shape.
//!
//! A backup is a gzipped tar: `cholang.db` (a consistent copy taken with `VACUUM INTO` inside
//! one read transaction, so `serve` keeps running and writing meanwhile), `secret.key`,
//! `photos/…` and `MANIFEST.json`. The search index is not copied: it is rebuilt from the
//! database at the first start after a restore. With PostgreSQL the database's own tools
//! (`pg_dump`) take the copy; photos are files under the data dir either way.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::db::{Backend, Db};

const DB_NAME: &str = "cholang.db";
const MANIFEST: &str = "MANIFEST.json";

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: String,
    pub migration: i64,
    pub orders: i64,
    pub products: i64,
    pub photos: usize,
    pub search: String,
}

/// The SQLite file a `sqlite://…` URL names.
pub fn sqlite_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

fn pg_message() -> anyhow::Error {
    anyhow::anyhow!(
        "cholang backup copies the embedded SQLite database. With PostgreSQL use its own tools: \
         `pg_dump --format=custom --file=cholang.dump \"$DATABASE_URL\"` (restore with \
         `pg_restore --dbname=\"$DATABASE_URL\" cholang.dump`), and copy $CHOLANG_DATA_DIR/photos \
         and secret.key beside it; the search index is rebuilt with `cholang reindex`."
    )
}

fn photo_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            out.extend(photo_files(&e.path())?);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Take a backup of a running (or stopped) embedded installation into `out`.
pub async fn backup(db: &Db, config: &Config, out: &Path) -> anyhow::Result<Manifest> {
    if db.backend == Backend::Postgres {
        return Err(pg_message());
    }
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let work = tempfile::tempdir_in(dir)
        .with_context(|| format!("making a work dir beside {}", out.display()))?;
    let copy = work.path().join(DB_NAME);
    let literal = copy.display().to_string().replace('\'', "''");
    // One statement, one read transaction: a consistent copy while writers go on (they wait
    // only for the moments SQLite needs, as with any reader).
    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{literal}'")))
        .execute(&db.pool)
        .await
        .context("copying the database (VACUUM INTO)")?;
    let copy_db = Db::connect(&format!("sqlite://{}?mode=rw", copy.display())).await?;
    let count = |sql: &'static str| {
        let pool = copy_db.pool.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await }
    };
    let orders = count("SELECT COUNT(*) FROM orders").await?;
    let products = count("SELECT COUNT(*) FROM products").await?;
    let migration = count("SELECT MAX(version) FROM _sqlx_migrations").await?;
    copy_db.pool.close().await;
    // Photos are written before their rows and never changed, so copying them after the
    // database holds every photo the copy names.
    let photos_dir = config.photos_dir();
    let photos = photo_files(&photos_dir)?;
    let manifest = Manifest {
        format: 1,
        created_at: chrono::Utc::now().to_rfc3339(),
        migration,
        orders,
        products,
        photos: photos.len(),
        search: "not copied: rebuilt from the database at the first start after restore".into(),
    };
    let partial = work.path().join("backup.tar.gz");
    {
        let gz = GzEncoder::new(File::create(&partial)?, Compression::default());
        let mut tar = tar::Builder::new(gz);
        tar.append_path_with_name(&copy, DB_NAME)?;
        let key = config.data_dir.join("secret.key");
        if key.exists() {
            tar.append_path_with_name(&key, "secret.key")?;
        }
        for p in &photos {
            let rel = p.strip_prefix(&photos_dir)?;
            tar.append_path_with_name(p, Path::new("photos").join(rel))?;
        }
        let json = serde_json::to_vec_pretty(&manifest)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, MANIFEST, json.as_slice())?;
        tar.into_inner()?.finish()?.sync_all()?;
    }
    // Whole or not at all: the file appears only once complete.
    std::fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(manifest)
}

/// Restore a backup into an empty data dir (no database file, no photos).
pub async fn restore(config: &Config, file: &Path) -> anyhow::Result<Manifest> {
    let Some(target) = sqlite_path(&config.database_url) else {
        return Err(pg_message());
    };
    if target.metadata().is_ok_and(|m| m.len() > 0) {
        bail!(
            "{} already holds a database: restore only into an empty data dir (move it away first)",
            target.display()
        );
    }
    if !photo_files(&config.photos_dir())?.is_empty() {
        bail!(
            "{} already holds photos: restore only into an empty data dir",
            config.photos_dir().display()
        );
    }
    let work = tempfile::tempdir_in(&config.data_dir)?;
    let mut archive = tar::Archive::new(GzDecoder::new(
        File::open(file).with_context(|| format!("opening {}", file.display()))?,
    ));
    // `unpack` refuses entries that would land outside the directory.
    archive
        .unpack(work.path())
        .with_context(|| format!("{} is not a Chợ Làng backup", file.display()))?;
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(work.path().join(MANIFEST)).context("the backup has no MANIFEST.json")?,
    )?;
    if manifest.format != 1 {
        bail!(
            "backup format {} is not known to this version",
            manifest.format
        );
    }
    let db_copy = work.path().join(DB_NAME);
    let check = Db::connect(&format!("sqlite://{}?mode=rw", db_copy.display())).await?;
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&check.pool)
        .await?;
    if verdict == "ok" {
        // Leases taken by the processes that ran when the backup was made belong to nobody
        // now: left as they were, the search worker would wait them out with an empty index.
        sqlx::query("UPDATE worker_leases SET holder = '', until_ms = 0")
            .execute(&check.pool)
            .await?;
    }
    check.pool.close().await;
    if verdict != "ok" {
        bail!("the backup's database fails its integrity check: {verdict}");
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(&db_copy, &target)?;
    let key = work.path().join("secret.key");
    if key.exists() {
        std::fs::rename(&key, config.data_dir.join("secret.key"))?;
    }
    let photos = work.path().join("photos");
    if photos.exists() {
        let _ = std::fs::remove_dir(config.photos_dir());
        std::fs::rename(&photos, config.photos_dir())?;
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_path("sqlite:///data/cholang.db?mode=rwc"),
            Some(PathBuf::from("/data/cholang.db"))
        );
        assert_eq!(
            sqlite_path("sqlite://data/x.db"),
            Some(PathBuf::from("data/x.db"))
        );
        assert_eq!(sqlite_path("postgres://u@h/db"), None);
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }
}
