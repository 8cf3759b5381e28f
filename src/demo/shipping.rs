//! The demo's delivery: every shop delivers itself ("tự giao") from its village's commune
//! (the 2025 list), at fees by distance, so a buyer sees shipping fees without carrier
//! accounts.

use crate::db::Db;

/// Each demo shop delivers itself ("tự giao") from its village, at fees by distance that fit
/// what it sells, so a buyer sees a shipping fee without any carrier account.
pub async fn load(db: &Db) -> anyhow::Result<()> {
    use crate::shipping::addresses::Address;
    use crate::shipping::{Method, SelfFees, Settings};
    // (village, ward code since 2025, street)
    const PICKUP: &[(&str, &str, &str)] = &[
        ("Chuyên Mỹ", "10330", "Thôn Chuyên Mỹ"),
        ("Phú Đôi", "10273", "Thôn Phú Đôi"),
        ("Phú Túc", "10273", "Thôn Phú Túc"),
        ("Tri Thủy", "10273", "Thôn Tri Thủy"),
        ("Vân Từ", "10273", "Thôn Vân Từ"),
    ];
    let shops = sqlx::query(
        "SELECT s.id, s.name, v.name AS village FROM shops s JOIN villages v ON v.id = s.village_id ORDER BY s.id",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut tx = db.begin().await?;
    for r in shops {
        use sqlx::Row;
        let village: String = r.try_get("village")?;
        let name: String = r.try_get("name")?;
        let Some((_, ward, street)) = PICKUP.iter().find(|(v, _, _)| *v == village) else {
            continue;
        };
        let heavy = name.contains("gỗ") || name.contains("Cơ khí");
        let settings = Settings {
            pickup: Address::from_codes("01", ward, street)
                .ok_or_else(|| anyhow::anyhow!("demo ward {ward} not in the list"))?,
            methods: vec![Method::SelfDelivery],
            own_ghn: None,
            own_ghtk: None,
            self_fees: if heavy {
                SelfFees {
                    same_commune: 0,
                    same_province: 80_000,
                    elsewhere: 250_000,
                    free_from: None,
                }
            } else {
                SelfFees {
                    same_commune: 0,
                    same_province: 20_000,
                    elsewhere: 40_000,
                    free_from: Some(1_000_000),
                }
            },
        };
        crate::shipping::store::put(&mut tx, r.try_get("id")?, &settings).await?;
    }
    tx.commit().await?;
    Ok(())
}
