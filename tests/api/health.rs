use reqwest::StatusCode;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    healthz_answers_when_the_database_does,
    unknown_paths_are_404_in_the_right_shape
);

async fn healthz_answers_when_the_database_does(b: Backend) {
    let app = TestApp::spawn(b).await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    app.db.pool.close().await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

async fn unknown_paths_are_404_in_the_right_shape(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (status, body) = app.api("GET", "/nothing-here", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let r = app.get("/lang/khong-co-lang-nay").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let html = r.text().await.unwrap();
    assert!(html.contains("Không tìm thấy trang hoặc mục này"), "{html}");
    assert!(html.contains("<html lang=\"vi\">"));
}
