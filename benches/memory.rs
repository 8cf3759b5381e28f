//! `cargo bench --bench memory`: what one client can make the server hold in memory.
//!
//! Starts the real `cholang serve --demo` binary (release build, fresh SQLite data dir,
//! `CHOLANG_TRUSTED_PROXIES=127.0.0.1` so a client can play many addresses) and reports its
//! resident set (VmRSS) at rest, at its peak during each flood (VmHWM, reset between
//! scenarios through /proc/PID/clear_refs), and after `BENCH_SETTLE_SECS` (default 60):
//! - login flood, one address: `BENCH_CONCURRENCY` (default 128) connections for
//!   `BENCH_SECS` (default 6) seconds posting logins with new phone numbers and a wrong
//!   password (the attack of issue 14);
//! - login flood, many addresses: the same with a new `X-Forwarded-For` per request, so no
//!   attempt limit applies and every request reaches the password hash;
//! - upload flood: 6 concurrent uploads, repeated, of a 233 KB PNG declaring 10000 × 8000
//!   pixels (refused from its header), then of a real 24-megapixel photo (the largest
//!   accepted, decoded two at a time).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn status(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| {
            l[key.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

/// Reset the process's peak RSS (VmHWM) so the next scenario measures its own peak.
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_cholang"))
        .args(["serve", "--demo"])
        .env("CHOLANG_DATA_DIR", dir.path())
        .env_remove("DATABASE_URL")
        .env_remove("MEILI_URL")
        .env("CHOLANG_ADDR", format!("127.0.0.1:{port}"))
        .env("CHOLANG_TRUSTED_PROXIES", "127.0.0.1")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Server {
        child,
        base,
        _dir: dir,
    }
}

/// Post logins for `secs` seconds from `conc` connections; returns statuses seen.
async fn login_flood(
    base: &str,
    conc: usize,
    secs: u64,
    many_addresses: bool,
) -> Vec<(u16, usize)> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(conc)
        .build()
        .unwrap();
    let counter = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (client, counter, base) = (client.clone(), counter.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            let mut seen: Vec<u16> = Vec::new();
            while Instant::now() < until {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let mut req = client
                    .post(format!("{base}/api/v1/auth/login"))
                    .json(&serde_json::json!({"login": format!("09{:08}", 10_000_000 + n), "password": "sai-mat-khau"}));
                if many_addresses {
                    req = req.header("x-forwarded-for", format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255));
                }
                match req.send().await {
                    Ok(r) => seen.push(r.status().as_u16()),
                    Err(_) => seen.push(0),
                }
            }
            seen
        }));
    }
    let mut all: Vec<u16> = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let mut counts: Vec<(u16, usize)> = Vec::new();
    for s in all {
        match counts.iter_mut().find(|(c, _)| *c == s) {
            Some(e) => e.1 += 1,
            None => counts.push((s, 1)),
        }
    }
    counts.sort();
    counts
}

fn bomb_png() -> Vec<u8> {
    let (w, h) = (10_000u32, 8_000u32);
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_compression(png::Compression::Fast);
    let mut writer = enc.write_header().unwrap();
    writer
        .write_image_data(&vec![0u8; (w * h) as usize])
        .unwrap();
    writer.finish().unwrap();
    out
}

fn big_jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_fn(6000, 4000, |x, y| {
        image::Rgb([(x / 24) as u8, (y / 16) as u8, ((x + y) / 40) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&img)
        .unwrap();
    out
}

/// A logged-in seller's browser: (client, csrf token).
async fn seller(base: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let token = |html: String| {
        let i = html.find("name=\"csrf\" value=\"").unwrap() + 19;
        html[i..i + 64].to_string()
    };
    let page = client
        .get(format!("{base}/dang-nhap"))
        .send()
        .await
        .unwrap();
    let csrf = token(page.text().await.unwrap());
    let r = client
        .post(format!("{base}/dang-nhap"))
        .header("x-forwarded-for", "192.0.2.200")
        .form(&[
            ("csrf", csrf.as_str()),
            ("login", "0912000101"),
            ("password", cholang::demo::catalog::DEMO_PASSWORD),
            ("next", "/quan-ly"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "seller login");
    (client, csrf)
}

async fn upload_flood(base: &str, bytes: Vec<u8>, rounds: usize) -> Vec<(u16, usize)> {
    let (client, csrf) = seller(base).await;
    let mut counts: Vec<(u16, usize)> = Vec::new();
    for _ in 0..rounds {
        let mut tasks = Vec::new();
        for _ in 0..6 {
            let (client, csrf, bytes, base) = (
                client.clone(),
                csrf.clone(),
                bytes.clone(),
                base.to_string(),
            );
            tasks.push(tokio::spawn(async move {
                let form = reqwest::multipart::Form::new().text("csrf", csrf).part(
                    "photo",
                    reqwest::multipart::Part::bytes(bytes).file_name("anh"),
                );
                client
                    .post(format!("{base}/quan-ly/san-pham/man-tuyn-1m6-x-2m/anh"))
                    .multipart(form)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }));
        }
        for t in tasks {
            let s = t.await.unwrap();
            match counts.iter_mut().find(|(c, _)| *c == s) {
                Some(e) => e.1 += 1,
                None => counts.push((s, 1)),
            }
        }
    }
    counts.sort();
    counts
}

fn main() {
    let conc = env_num("BENCH_CONCURRENCY", 128) as usize;
    let secs = env_num("BENCH_SECS", 6);
    let settle = env_num("BENCH_SETTLE_SECS", 60);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut rows = vec![
            "| scenario | requests | peak RSS | RSS after |".to_string(),
            "|---|---|---|---|".to_string(),
        ];
        let server = start().await;
        let pid = server.child.id();
        tokio::time::sleep(Duration::from_secs(3)).await;
        rows.push(format!(
            "| `serve --demo` at rest | | {} | {} |",
            mb(status(pid, "VmHWM:")),
            mb(status(pid, "VmRSS:"))
        ));
        for (name, many) in [
            ("login flood, one address", false),
            ("login flood, many addresses", true),
        ] {
            reset_peak(pid);
            let counts = login_flood(&server.base, conc, secs, many).await;
            let peak = status(pid, "VmHWM:");
            tokio::time::sleep(Duration::from_secs(settle)).await;
            rows.push(format!(
                "| {name}, {conc} connections × {secs} s | {} | {} | {} (after {settle} s) |",
                counts
                    .iter()
                    .map(|(s, n)| format!("{n}× {s}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                mb(peak),
                mb(status(pid, "VmRSS:"))
            ));
        }
        for (name, bytes, rounds) in [
            ("upload flood, PNG declaring 10000 × 8000", bomb_png(), 5),
            (
                "upload flood, 6000 × 4000 JPEG (largest accepted)",
                big_jpeg(),
                1,
            ),
        ] {
            reset_peak(pid);
            let size = bytes.len();
            let counts = upload_flood(&server.base, bytes, rounds).await;
            let peak = status(pid, "VmHWM:");
            tokio::time::sleep(Duration::from_secs(settle.min(10))).await;
            rows.push(format!(
                "| {name} ({} KB), 6 at once × {rounds} | {} | {} | {} |",
                size / 1024,
                counts
                    .iter()
                    .map(|(s, n)| format!("{n}× {s}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                mb(peak),
                mb(status(pid, "VmRSS:"))
            ));
        }
        for r in rows {
            println!("{r}");
        }
    });
}
