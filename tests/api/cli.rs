//! The binary as a newcomer and an operator use it: README's `serve --demo`, SIGTERM,
//! `admin create-user`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    serve_demo_answers_then_stops_cleanly_on_sigterm,
    admin_create_user_makes_a_working_admin
);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn serve_demo_answers_then_stops_cleanly_on_sigterm(b: Backend) {
    let app = TestApp::spawn(b).await;
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cholang"));
    cmd.args(["serve", "--demo"])
        .env("CHOLANG_DATA_DIR", data.path())
        .env("CHOLANG_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .env_remove("CHOLANG_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match b {
        // The embedded default: no DATABASE_URL at all.
        Backend::Sqlite => cmd.env_remove("DATABASE_URL"),
        Backend::Postgres => cmd.env("DATABASE_URL", &app.config.database_url),
    };
    let mut child = cmd.spawn().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await
            && r.status() == StatusCode::OK
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not come up"
        );
        assert!(child.try_wait().unwrap().is_none(), "server exited early");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let home = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("Làng Phú Đôi")
            && home.contains("Làng Chuyên Mỹ")
            && home.contains("Làng Tri Thủy")
    );
    let products: serde_json::Value = reqwest::get(format!("{base}/api/v1/products"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        products["products"].as_array().unwrap().len() >= 40,
        "at least 40 demo products"
    );
    // The demo's money: a shop due in the payout preview, one held, a refund owed, a
    // transfer nobody claimed — through the real checkout, bank feed and seller moves.
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"login": cholang::demo::catalog::ADMIN_EMAIL, "password": PW}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();
    let get = |path: &'static str| {
        http.get(format!("{base}/api/v1{path}"))
            .bearer_auth(token)
            .send()
    };
    let plan: serde_json::Value = get("/payout-runs/preview")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(plan["due"][0]["shop"]["slug"], "man-tuyn-ba-hanh", "{plan}");
    assert_eq!(plan["held"][0]["reason"], "no_account", "{plan}");
    let rec: serde_json::Value = get("/reconciliation").await.unwrap().json().await.unwrap();
    assert_eq!(
        rec["payments_needing_attention"][0]["reason"], "refund_due",
        "{rec}"
    );
    assert_eq!(
        rec["payments_needing_attention"][0]["refundable"]["payment_refundable_vnd"],
        95_000 + 20_000,
        "the goods and the shop's own delivery to Hoàn Kiếm (issue 32's demo)"
    );
    assert_eq!(rec["unmatched_transactions"].as_array().unwrap().len(), 1);
    // Issue 31, item 15: origin pages from the first minute — Tri Thủy's giò lụa has a printed
    // batch with scans, and its origin page answers.
    let batches: serde_json::Value = get("/products/gio-lua-thit-lon-1kg/batches")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let batch = &batches["batches"][0];
    assert_eq!(batch["labels_printed"], true, "{batches}");
    let code = batch["code"].as_str().unwrap().to_string();
    assert!(code.starts_with("TT-"), "{code}");
    let origin = reqwest::get(format!("{base}/truy-xuat/{code}"))
        .await
        .unwrap();
    assert_eq!(origin.status(), reqwest::StatusCode::OK);
    let scans: serde_json::Value = http
        .get(format!("{base}/api/v1/batches/{code}/scans"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(scans["total"].as_i64().unwrap() >= 10, "{scans}");
    // The notice worker inside `serve` delivers the demo proposal's notices as mail files.
    let started = Instant::now();
    while std::fs::read_dir(data.path().join("mail"))
        .map(|d| d.count())
        .unwrap_or(0)
        == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no notice delivered by the embedded worker"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if b == Backend::Sqlite {
        assert!(
            data.path().join("cholang.db").exists(),
            "SQLite file under the data dir"
        );
        let mode: String = {
            let db = cholang::db::Db::connect(&format!(
                "sqlite://{}",
                data.path().join("cholang.db").display()
            ))
            .await
            .unwrap();
            sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&db.pool)
                .await
                .unwrap()
        };
        assert_eq!(mode, "wal");
    }

    let exit = sigterm_within(&mut child, Duration::from_secs(20));
    assert!(exit.success(), "exit status {exit:?}");
}

async fn admin_create_user_makes_a_working_admin(b: Backend) {
    let app = TestApp::spawn(b).await;
    let args = [
        "admin",
        "create-user",
        "--role",
        "admin",
        "--login",
        "Chu.Tich@PhuDoi.vn",
        "--name",
        "Chủ tịch xã",
    ];
    let out = app.cli(&args, &[("CHOLANG_NEW_PASSWORD", "ngắn")]);
    assert!(!out.status.success(), "a short password is refused");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM users").await, 0);
    let out = app.cli(&args, &[("CHOLANG_NEW_PASSWORD", "mật-khẩu-đủ-dài")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = app.api_login("chu.tich@phudoi.vn", "mật-khẩu-đủ-dài").await;
    let (_, me) = app.api("GET", "/me", Some(&token), None).await;
    assert_eq!(me["user"]["role"], "admin");
    let out = app.cli(&args, &[("CHOLANG_NEW_PASSWORD", "mật-khẩu-đủ-dài")]);
    assert!(!out.status.success(), "the same login twice is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("đã được dùng"));
}
