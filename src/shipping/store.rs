//! A shop's shipping settings in `shop_shipping`, and the options (with fees) a shop's order
//! has to a buyer's address.

use sqlx::Row;

use super::addresses::{Address, DATASET};
use super::carriers::{self, Packed};
use super::{Method, Quote, SelfFees, Settings};
use crate::accounts::User;
use crate::catalog::store::{authorize_shop, shop_by_slug};
use crate::catalog::{MAX_SIDE_CM, Parcel};
use crate::config::CarriersConfig;
use crate::db::{Db, Tx};
use crate::domain::now_ms;
use crate::error::{AppError, Result};

/// A shop's settings, if it set its ways to ship.
pub async fn load<'e, E>(ex: E, shop: i64) -> Result<Option<Settings>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let Some(r) = sqlx::query(
        "SELECT pickup_province, pickup_ward, pickup_street, methods, self_same_commune,
                self_same_province, self_elsewhere, self_free_from, ghn_token, ghn_shop_id, ghtk_token
         FROM shop_shipping WHERE shop_id = $1",
    )
    .bind(shop)
    .fetch_optional(ex)
    .await?
    else {
        return Ok(None);
    };
    let province: String = r.try_get("pickup_province")?;
    let ward: String = r.try_get("pickup_ward")?;
    let street: String = r.try_get("pickup_street")?;
    // A code the shipped list no longer holds leaves the shop to set its address again.
    let Some(pickup) = Address::from_codes(&province, &ward, &street) else {
        return Ok(None);
    };
    let methods = r
        .try_get::<String, _>("methods")?
        .split(',')
        .filter_map(Method::parse)
        .collect();
    Ok(Some(Settings {
        pickup,
        methods,
        self_fees: SelfFees {
            same_commune: r.try_get("self_same_commune")?,
            same_province: r.try_get("self_same_province")?,
            elsewhere: r.try_get("self_elsewhere")?,
            free_from: r.try_get("self_free_from")?,
        },
        own_ghn: r
            .try_get::<Option<String>, _>("ghn_token")?
            .zip(r.try_get::<Option<i64>, _>("ghn_shop_id")?),
        own_ghtk: r.try_get("ghtk_token")?,
    }))
}

/// Set a shop's pickup address and ways to ship: its owner or the admin (a shop's settings,
/// like its money, stay with [`authorize_shop`]).
pub async fn save(db: &Db, user: &User, slug: &str, s: &Settings) -> Result<()> {
    let shop = shop_by_slug(db, slug).await?;
    authorize_shop(user, &shop)?;
    let mut tx = db.begin().await?;
    let methods = put(&mut tx, shop.id.0, s).await?;
    crate::accounts::store::audit_action(&mut tx, user, "shop_shipping", slug, &methods).await?;
    tx.commit().await?;
    Ok(())
}

/// Write a shop's settings in the caller's transaction; returns the methods as stored.
pub async fn put(tx: &mut Tx, shop: i64, s: &Settings) -> Result<String> {
    let methods: Vec<&str> = s.methods.iter().map(|m| m.as_str()).collect();
    sqlx::query(
        "INSERT INTO shop_shipping (shop_id, pickup_province, pickup_ward, pickup_street, dataset,
            methods, self_same_commune, self_same_province, self_elsewhere, self_free_from, updated_at,
            ghn_token, ghn_shop_id, ghtk_token)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (shop_id) DO UPDATE SET pickup_province = excluded.pickup_province,
            pickup_ward = excluded.pickup_ward, pickup_street = excluded.pickup_street,
            dataset = excluded.dataset, methods = excluded.methods,
            self_same_commune = excluded.self_same_commune,
            self_same_province = excluded.self_same_province,
            self_elsewhere = excluded.self_elsewhere, self_free_from = excluded.self_free_from,
            updated_at = excluded.updated_at, ghn_token = excluded.ghn_token,
            ghn_shop_id = excluded.ghn_shop_id, ghtk_token = excluded.ghtk_token",
    )
    .bind(shop)
    .bind(s.pickup.province_code)
    .bind(s.pickup.ward_code)
    .bind(s.pickup.street.clone())
    .bind(DATASET)
    .bind(methods.join(","))
    .bind(s.self_fees.same_commune)
    .bind(s.self_fees.same_province)
    .bind(s.self_fees.elsewhere)
    .bind(s.self_fees.free_from)
    .bind(now_ms())
    .bind(s.own_ghn.as_ref().map(|g| g.0.clone()))
    .bind(s.own_ghn.as_ref().map(|g| g.1))
    .bind(s.own_ghtk.clone())
    .execute(&mut **tx)
    .await?;
    Ok(methods.join(","))
}

/// A parcel's facts when neither the product nor its category gives them.
pub const DEFAULT_PARCEL: Parcel = Parcel {
    weight_g: Some(500),
    length_cm: Some(20),
    width_cm: Some(15),
    height_cm: Some(10),
};

/// The parcel of an order's lines (product id, quantity, unit price): weights added, the
/// longest length and width, heights stacked; each product's own facts, else its
/// category's, else `DEFAULT_PARCEL`.
pub async fn packed(tx: &mut Tx, lines: &[(i64, i64, i64)]) -> Result<Packed> {
    let mut out = Packed {
        weight_g: 0,
        length_cm: 0,
        width_cm: 0,
        height_cm: 0,
        value_vnd: 0,
    };
    for (product, qty, price) in lines {
        let r = sqlx::query(
            "SELECT p.weight_g, p.length_cm, p.width_cm, p.height_cm,
                    c.weight_g AS c_weight_g, c.length_cm AS c_length_cm,
                    c.width_cm AS c_width_cm, c.height_cm AS c_height_cm
             FROM products p JOIN shops s ON s.id = p.shop_id
             LEFT JOIN categories c ON c.village_id = s.village_id AND c.name = p.category
             WHERE p.id = $1",
        )
        .bind(*product)
        .fetch_one(&mut **tx)
        .await?;
        let own = Parcel {
            weight_g: r.try_get("weight_g")?,
            length_cm: r.try_get("length_cm")?,
            width_cm: r.try_get("width_cm")?,
            height_cm: r.try_get("height_cm")?,
        };
        let category = Parcel {
            weight_g: r.try_get("c_weight_g")?,
            length_cm: r.try_get("c_length_cm")?,
            width_cm: r.try_get("c_width_cm")?,
            height_cm: r.try_get("c_height_cm")?,
        };
        let p = own.or(category).or(DEFAULT_PARCEL);
        let get = |v: Option<i64>| v.unwrap_or(1);
        out.weight_g += get(p.weight_g) * qty;
        out.length_cm = out.length_cm.max(get(p.length_cm));
        out.width_cm = out.width_cm.max(get(p.width_cm));
        out.height_cm = (out.height_cm + get(p.height_cm) * qty).min(MAX_SIDE_CM);
        out.value_vnd += price * qty;
    }
    Ok(out)
}

/// The shop's own delivery, when it offers it.
pub fn self_option(settings: &Settings, to: &Address, goods: i64) -> Option<Quote> {
    settings
        .methods
        .contains(&Method::SelfDelivery)
        .then(|| Quote {
            id: Method::SelfDelivery.as_str().to_string(),
            carrier: Method::SelfDelivery,
            fee_vnd: settings.self_fees.fee(&settings.pickup, to, goods),
            expected_on: None,
            shop_account: true,
        })
}

/// The ways a shop's order can reach `to`, with their fees: its own delivery, and each
/// carrier it ships with, asked at once and bounded by the timeout. A carrier that does not
/// answer is left out with a note (never a failed checkout). Empty when the shop has not set
/// its ways to ship (the seller then agrees the delivery with the buyer, as before).
pub async fn options(
    cfg: &CarriersConfig,
    settings: Option<&Settings>,
    to: &Address,
    parcel: &Packed,
) -> (Vec<Quote>, Vec<String>) {
    let Some(s) = settings else {
        return (Vec::new(), Vec::new());
    };
    let mut quotes: Vec<Quote> = self_option(s, to, parcel.value_vnd).into_iter().collect();
    let mut notes = Vec::new();
    let cfg = &s.carriers(cfg);
    let usable = carriers::available(cfg);
    let ask = |m: Method| {
        let wanted = s.methods.contains(&m) && usable.contains(&m);
        async move {
            if wanted {
                Some(
                    carriers::quote(cfg, m, &s.pickup, to, parcel)
                        .await
                        .map(|q| Quote {
                            shop_account: s.own_account(m),
                            ..q
                        }),
                )
            } else {
                None
            }
        }
    };
    let (ghn, ghtk) = tokio::join!(ask(Method::Ghn), ask(Method::Ghtk));
    for answer in [ghn, ghtk].into_iter().flatten() {
        match answer {
            Ok(q) => quotes.push(q),
            Err(e) => notes.push(format!("{e}; tạm thời không chọn được cách này.")),
        }
    }
    (quotes, notes)
}

/// The fee of the option a buyer chose for a shop's order, read again in the checkout's
/// transaction: `None` when the shop offers no way to ship (no fee, as before). A shop that
/// offers ways to ship needs a buyer's address from the lists and one of its options; a
/// carrier's fee is the one quoted within `carriers::QUOTE_TTL` (the checkout asks again
/// just before, outside its transaction).
#[allow(clippy::too_many_arguments)]
pub async fn fee_at_checkout(
    tx: &mut Tx,
    cfg: &CarriersConfig,
    shop: i64,
    shop_slug: &str,
    to: Option<&Address>,
    parcel: &Packed,
    chosen: Option<&str>,
) -> Result<Option<Quote>> {
    let Some(s) = load(&mut **tx, shop).await? else {
        return Ok(None);
    };
    let cfg = &s.carriers(cfg);
    let usable = carriers::available(cfg);
    if !s
        .methods
        .iter()
        .any(|m| *m == Method::SelfDelivery || usable.contains(m))
    {
        return Ok(None);
    }
    let Some(to) = to else {
        return Err(AppError::field(
            "buyer.ward_code",
            "chọn tỉnh và xã, phường nhận hàng để tính phí giao hàng",
        ));
    };
    let field = format!("shipping.{shop_slug}");
    let Some(id) = chosen else {
        return Err(AppError::field(
            &field,
            "chọn cách giao hàng cho cửa hàng này",
        ));
    };
    let method = Method::parse(id).filter(|m| s.methods.contains(m));
    match method {
        Some(Method::SelfDelivery) => Ok(self_option(&s, to, parcel.value_vnd)),
        Some(m) if usable.contains(&m) => carriers::kept(cfg, m, &s.pickup, to, parcel)
            .map(|q| {
                Some(Quote {
                    shop_account: s.own_account(m),
                    ..q
                })
            })
            .ok_or_else(|| {
                AppError::field(
                    &field,
                    format!(
                        "chưa có phí của {} cho địa chỉ này; bấm “Xem phí giao hàng” rồi chọn lại",
                        m.words()
                    ),
                )
            }),
        _ => Err(AppError::field(
            &field,
            "cách giao hàng này không còn, vui lòng chọn lại",
        )),
    }
}
