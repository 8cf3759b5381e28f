//! `cargo bench --bench payouts`: a payout run over many shops.
//!
//! Builds a SQLite database (and a PostgreSQL one when `BENCH_POSTGRES_URL` is set) with
//! `BENCH_SHOPS` (default 10000) shops, each with a payout account and money available
//! (one paid and delivered order's worth, posted through the ledger as the app does), then
//! times one bank-app payout run: one payout per shop, each moved to in transit by its own
//! journal in the run's transaction. Prints the time, payouts and journals per second.

use std::time::Instant;

use cholang::accounts::{NewUser, Role};
use cholang::config::{Config, Settings};
use cholang::db::Db;
use cholang::ledger::store::{Refs, post};

async fn seed(db: &Db, shops: usize) -> cholang::accounts::User {
    let admin = cholang::accounts::store::create_user(
        db,
        NewUser::parse(
            "bench@cholang.local",
            "Bench",
            "mat-khau-bench",
            Role::Admin,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let now = cholang::domain::now_ms();
    let mut tx = db.begin().await.unwrap();
    let village: i64 = sqlx::query_scalar(
        "INSERT INTO villages (slug, name, commune, district, province, created_at)
         VALUES ('bench', 'Bench', 'X', 'Y', 'Z', $1) RETURNING id",
    )
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    for n in 0..shops {
        let shop: i64 = sqlx::query_scalar(
            "INSERT INTO shops (slug, village_id, name, phone, bank_bin, bank_account_no, bank_account_name,
               created_at, updated_at)
             VALUES ($1, $2, $3, '0912000101', '970436', $4, 'NGUYEN VAN A', $5, $5) RETURNING id",
        )
        .bind(format!("shop-{n}"))
        .bind(village)
        .bind(format!("Shop {n}"))
        .bind(format!("{:013}", 10_000_000_000u64 + n as u64))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        // Money in, settled to the shop and released: what a delivered order leaves behind.
        let amount = 100_000 + (n as i64 % 50) * 1_000;
        let journal = cholang::ledger::Journal {
            kind: "bench_seed",
            postings: vec![
                cholang::ledger::Posting {
                    account: cholang::ledger::Account::Collect,
                    amount,
                    shop: None,
                    payment: None,
                },
                cholang::ledger::Posting {
                    account: cholang::ledger::Account::ShopAvailable,
                    amount: -amount,
                    shop: Some(shop),
                    payment: None,
                },
            ],
        };
        post(
            &mut tx,
            &journal,
            Refs::default(),
            &format!("bench:seed:{n}"),
            "",
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    admin
}

async fn bench(label: &str, url: &str, shops: usize) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::from_pairs(vec![
        (
            "CHOLANG_DATA_DIR".to_string(),
            dir.path().display().to_string(),
        ),
        ("DATABASE_URL".to_string(), url.to_string()),
        ("PAYOUT_ACCOUNT_HOLD_HOURS".to_string(), "0".to_string()),
    ]);
    let cfg = Config::load(&settings).unwrap();
    let db = Db::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    let t = Instant::now();
    let admin = seed(&db, shops).await;
    let seeded = t.elapsed();
    let t = Instant::now();
    let run = cholang::payouts::store::start_run(&db, &cfg, &admin, "bank_app")
        .await
        .unwrap();
    let took = t.elapsed().as_secs_f64();
    let journals: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM ledger_journals WHERE kind = 'payout_sent'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(run.payouts.len(), shops);
    assert_eq!(journals as usize, shops);
    println!(
        "| {label} | {shops} shops | seeded in {:.1} s | run {:.2} s | {:.0} payouts/s | {:.0} journals/s |",
        seeded.as_secs_f64(),
        took,
        shops as f64 / took,
        journals as f64 / took
    );
    assert!(
        cholang::ledger::store::check_invariants(&db)
            .await
            .unwrap()
            .len()
            <= 1
    );
}

fn main() {
    let shops: usize = std::env::var("BENCH_SHOPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!("| backend | size | seeding | run | payouts | journals |");
        println!("|---|---|---|---|---|---|");
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        );
        bench("SQLite", &url, shops).await;
        if let Ok(pg) = std::env::var("BENCH_POSTGRES_URL") {
            let name = format!("cholang_bench_{}", uuid::Uuid::new_v4().simple());
            let admin = Db::connect(&pg).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin.pool)
                .await
                .unwrap();
            let url = match pg.rsplit_once('/') {
                Some((base, _)) => format!("{base}/{name}"),
                None => pg.clone(),
            };
            bench("PostgreSQL", &url, shops).await;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {name} WITH (FORCE)"
            )))
            .execute(&admin.pool)
            .await
            .unwrap();
        }
    });
}
