//! Origin tracing in the demo: every village's shops have a batch of their first product,
//! its labels printed and a few days of scans, so a newcomer sees an origin page at once.

use chrono::Duration;

use crate::catalog::store as catalog;
use crate::db::Db;
use crate::error::Result;
use crate::origin::{BatchInput, store};

/// Where each demo village's makers take their materials from (inputs of the batches).
fn inputs_for(category: &str) -> &'static str {
    let c = crate::domain::text::fold(category);
    if c.contains("man") {
        "Sợi polyester: Công ty Dệt Nam Định\nChỉ viền: chợ Phú Đôi"
    } else if c.contains("go") {
        "Gỗ: xưởng gỗ Đại Thắng\nDầu mộc: cửa hàng vật liệu Phú Xuyên"
    } else if c.contains("co khi") {
        "Thép tấm: đại lý thép Thường Tín"
    } else if c.contains("kham") || c.contains("son mai") {
        "Vỏ trai: chợ Chuyên Mỹ\nSơn ta: Phú Thọ"
    } else if c.contains("nong san") || c.contains("ong") || c.contains("thuc pham") {
        "Nguyên liệu: ruộng và vườn của hợp tác xã"
    } else {
        "Nguyên liệu: các hộ trong làng"
    }
}

pub async fn load(db: &Db) -> Result<usize> {
    let today = crate::origin::today_vn();
    let mut made = 0;
    for v in catalog::list_villages(db).await? {
        for shop in catalog::shops_of_village(db, v.id).await? {
            let Some(owner) = shop.owner_id else { continue };
            let Some(card) = catalog::products_of_shop(db, shop.id, false)
                .await?
                .into_iter()
                .next()
            else {
                continue;
            };
            let product = catalog::product_by_slug(db, &card.slug).await?;
            let rules = store::rules_for(&product);
            let produced = today - Duration::days(6);
            let input = BatchInput {
                produced_on: produced.format("%Y-%m-%d").to_string(),
                quantity: "60".into(),
                maker: format!("Hộ sản xuất của {}", shop.name),
                inputs: inputs_for(&product.card.category).into(),
                notes: "Lô minh họa của chợ mẫu.".into(),
                expires_on: if rules.food {
                    (today + Duration::days(180)).format("%Y-%m-%d").to_string()
                } else {
                    String::new()
                },
                ..Default::default()
            };
            let fields = input.parse(rules, today)?;
            let batch = store::create(db, &shop, &product, &v.name, &fields, owner).await?;
            store::mark_printed(db, batch.id).await?;
            for (days_ago, n) in [(2, 3), (1, 5), (0, 2)] {
                sqlx::query("INSERT INTO batch_scans (batch_id, day, n) VALUES ($1, $2, $3)")
                    .bind(batch.id)
                    .bind(
                        (today - Duration::days(days_ago))
                            .format("%Y-%m-%d")
                            .to_string(),
                    )
                    .bind(n)
                    .execute(&db.pool)
                    .await?;
            }
            made += 1;
        }
    }
    Ok(made)
}
