//! A fresh PostgreSQL database for a bench run, on the server `admin_url` names (its query
//! string, if any, kept).

use cholang::db::Db;

pub async fn fresh_pg(admin_url: &str) -> String {
    let name = format!("cholang_bench_{}", uuid::Uuid::new_v4().simple());
    let admin = Db::connect(admin_url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin.pool)
        .await
        .unwrap();
    let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
    let cut = base.rfind('/').unwrap();
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{name}{q}", &base[..cut])
}
