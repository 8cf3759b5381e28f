//! SQL for villages, shops, products and photos.

use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::*;
use crate::accounts::User;
use crate::db::{Backend, Db, Tx};
use crate::domain::{Slug, now_ms};
use crate::error::{AppError, Result};

fn village_from_row(r: &AnyRow) -> Result<Village> {
    Ok(Village {
        id: VillageId(r.try_get("id")?),
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        commune: r.try_get("commune")?,
        district: r.try_get("district")?,
        province: r.try_get("province")?,
        story: r.try_get("story")?,
        quorum_min_yes: r.try_get("quorum_min_yes")?,
        quorum_percent: r.try_get("quorum_percent")?,
        proposal_days: r.try_get("proposal_days")?,
    })
}

const VILLAGE_COLS: &str = "id, slug, name, commune, district, province, story, quorum_min_yes, quorum_percent, proposal_days";

pub async fn list_villages(db: &Db) -> Result<Vec<Village>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {VILLAGE_COLS} FROM villages ORDER BY name"
    )))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(village_from_row).collect()
}

pub async fn village_by_slug(db: &Db, slug: &str) -> Result<Village> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {VILLAGE_COLS} FROM villages WHERE slug = $1"
    )))
    .bind(slug.to_string())
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    village_from_row(&row)
}

pub async fn village_by_id(db: &Db, id: VillageId) -> Result<Village> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {VILLAGE_COLS} FROM villages WHERE id = $1"
    )))
    .bind(id.0)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    village_from_row(&row)
}

pub struct NewVillage {
    pub name: String,
    pub commune: String,
    pub district: String,
    pub province: String,
    pub story: String,
}

/// Pick the first free slug among `base`, `base-<extra>`, `base-2`, `base-3`, …
/// The slugs a new row may take, in order: the name's, then with `extra` (the shop's or the
/// village's name), then numbered.
pub fn slug_candidates(base: &Slug, extra: &str) -> impl Iterator<Item = String> {
    let with_extra = (!extra.is_empty()).then(|| format!("{}-{}", base, Slug::from_name(extra)));
    std::iter::once(base.as_str().to_string())
        .chain(with_extra)
        .chain((2..1000).map(|n| base.with_suffix(n).as_str().to_string()))
}

pub async fn free_slug(
    tx: &mut Tx,
    table: &'static str,
    base: &Slug,
    extra: &str,
) -> Result<String> {
    let sql = match table {
        "villages" => "SELECT COUNT(*) FROM villages WHERE slug = $1",
        "shops" => "SELECT COUNT(*) FROM shops WHERE slug = $1",
        _ => "SELECT COUNT(*) FROM products WHERE slug = $1",
    };
    for c in slug_candidates(base, extra) {
        let n: i64 = sqlx::query_scalar(sql)
            .bind(c.clone())
            .fetch_one(&mut **tx)
            .await?;
        if n == 0 {
            return Ok(c);
        }
    }
    Err(AppError::Conflict("không tạo được đường dẫn".into()))
}

pub async fn insert_village(tx: &mut Tx, v: &NewVillage) -> Result<VillageId> {
    let slug = free_slug(tx, "villages", &Slug::from_name(&v.name), &v.commune).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO villages (slug, name, commune, district, province, story, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(slug)
    .bind(v.name.clone())
    .bind(v.commune.clone())
    .bind(v.district.clone())
    .bind(v.province.clone())
    .bind(v.story.clone())
    .bind(now_ms())
    .fetch_one(&mut **tx)
    .await?;
    Ok(VillageId(id))
}

/// A new village as an admin gives it, checked field by field (the quorum of people and the
/// voting time default to 3 yes, 50 % and 7 days).
pub struct VillageInput {
    pub village: NewVillage,
    pub quorum_min_yes: i64,
    pub quorum_percent: i64,
    pub proposal_days: i64,
}

impl VillageInput {
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        name: &str,
        commune: &str,
        district: &str,
        province: &str,
        story: &str,
        quorum_min_yes: Option<i64>,
        quorum_percent: Option<i64>,
        proposal_days: Option<i64>,
    ) -> Result<VillageInput> {
        use crate::domain::text::{clean_line, clean_text};
        let mut e = crate::error::FieldErrors::new();
        let name = e.check("name", clean_line(name, "tên làng", 80));
        let commune = e.check("commune", clean_line(commune, "xã", 80));
        let district = e.check("district", clean_line(district, "huyện", 80));
        let province = e.check("province", clean_line(province, "tỉnh/thành phố", 80));
        let story = e.check("story", clean_text(story, "giới thiệu", 4000));
        let min_yes = quorum_min_yes.unwrap_or(3);
        let percent = quorum_percent.unwrap_or(50);
        let days = proposal_days.unwrap_or(7);
        if !(1..=1000).contains(&min_yes) {
            e.add("quorum_min_yes", "số phiếu tối thiểu từ 1 đến 1000");
        }
        if !(0..=99).contains(&percent) {
            e.add("quorum_percent", "tỷ lệ từ 0 đến 99 (%)");
        }
        if !(1..=60).contains(&days) {
            e.add("proposal_days", "thời gian biểu quyết từ 1 đến 60 ngày");
        }
        e.into_result()?;
        Ok(VillageInput {
            village: NewVillage {
                name: name.expect("checked"),
                commune: commune.expect("checked"),
                district: district.expect("checked"),
                province: province.expect("checked"),
                story: story.expect("checked"),
            },
            quorum_min_yes: min_yes,
            quorum_percent: percent,
            proposal_days: days,
        })
    }
}

/// An admin creates a village with its board's quorum, in one transaction: a village never
/// exists without the quorum it was given.
/// `input` is read only once the user may create villages (a non-admin learns nothing about
/// their fields).
pub async fn create_village(
    db: &Db,
    user: &User,
    input: impl FnOnce() -> Result<VillageInput>,
) -> Result<Village> {
    if !user.is_admin() {
        return Err(AppError::Forbidden);
    }
    let v = input()?;
    let mut tx = db.begin().await?;
    let id = insert_village(&mut tx, &v.village).await?;
    sqlx::query(
        "UPDATE villages SET quorum_min_yes = $1, quorum_percent = $2, proposal_days = $3 WHERE id = $4",
    )
    .bind(v.quorum_min_yes)
    .bind(v.quorum_percent)
    .bind(v.proposal_days)
    .bind(id.0)
    .execute(&mut *tx)
    .await?;
    tx.commit().await.map_err(|e| {
        if crate::db::is_unique_violation(&e, "villages_slug_key") {
            AppError::Conflict("làng đã tồn tại".into())
        } else {
            e.into()
        }
    })?;
    village_by_id(db, id).await
}

/// Change a village's quorum of people and voting time.
pub async fn set_quorum(
    db: &Db,
    id: VillageId,
    min_yes: i64,
    percent: i64,
    days: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE villages SET quorum_min_yes = $1, quorum_percent = $2, proposal_days = $3 WHERE id = $4",
    )
    .bind(min_yes)
    .bind(percent)
    .bind(days)
    .bind(id.0)
    .execute(&db.pool)
    .await?;
    Ok(())
}

fn shop_from_row(r: &AnyRow) -> Result<Shop> {
    Ok(Shop {
        id: ShopId(r.try_get("id")?),
        slug: r.try_get("slug")?,
        village_id: VillageId(r.try_get("village_id")?),
        owner_id: r.try_get("owner_id")?,
        name: r.try_get("name")?,
        phone: r.try_get("phone")?,
        email: r.try_get("email")?,
        zalo_phone: r.try_get("zalo_phone")?,
        telegram_chat_id: r.try_get("telegram_chat_id")?,
        bank_bin: r.try_get("bank_bin")?,
        bank_account_no: r.try_get("bank_account_no")?,
        bank_account_name: r.try_get("bank_account_name")?,
        story: r.try_get("story")?,
        active: r.try_get::<i64, _>("active")? == 1,
        membership: r.try_get("membership")?,
        membership_at: r.try_get("membership_at")?,
        email_confirmed: r.try_get::<i64, _>("email_confirmed")? == 1,
        payout_hold_until: r.try_get("payout_hold_until")?,
        notify_email: r.try_get::<i64, _>("notify_email")? == 1,
        notify_zalo: r.try_get::<i64, _>("notify_zalo")? == 1,
        notify_telegram: r.try_get::<i64, _>("notify_telegram")? == 1,
    })
}

const SHOP_COLS: &str = "id, slug, village_id, owner_id, name, phone, email, zalo_phone, telegram_chat_id, bank_bin, bank_account_no, bank_account_name, story, active, membership, membership_at, email_confirmed, payout_hold_until, notify_email, notify_zalo, notify_telegram";

pub async fn shop_by_slug(db: &Db, slug: &str) -> Result<Shop> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SHOP_COLS} FROM shops WHERE slug = $1"
    )))
    .bind(slug.to_string())
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    shop_from_row(&row)
}

pub async fn shop_by_id(db: &Db, id: ShopId) -> Result<Shop> {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SHOP_COLS} FROM shops WHERE id = $1"
    )))
    .bind(id.0)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    shop_from_row(&row)
}

pub async fn shops_of_village(db: &Db, village: VillageId) -> Result<Vec<Shop>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SHOP_COLS} FROM shops WHERE village_id = $1 AND active = 1 AND membership = 'accepted' ORDER BY name"
    )))
    .bind(village.0)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(shop_from_row).collect()
}

pub async fn shops_of_owner(db: &Db, owner: &User) -> Result<Vec<Shop>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SHOP_COLS} FROM shops WHERE owner_id = $1 ORDER BY name"
    )))
    .bind(owner.id.0)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(shop_from_row).collect()
}

/// The shops this user works on: their own, then those they help for households.
pub async fn shops_worked_by(db: &Db, user: &User) -> Result<Vec<Shop>> {
    let mut shops = shops_of_owner(db, user).await?;
    for id in &user.helps {
        if !shops.iter().any(|s| s.id.0 == *id) {
            shops.push(shop_by_id(db, ShopId(*id)).await?);
        }
    }
    Ok(shops)
}

pub async fn all_shops(db: &Db) -> Result<Vec<Shop>> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT {SHOP_COLS} FROM shops WHERE active = 1 AND membership = 'accepted' ORDER BY name"
    )))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(shop_from_row).collect()
}

/// A seller touches only their own shop; admins may touch any.
pub fn authorize_shop(user: &User, shop: &Shop) -> Result<()> {
    if user.is_admin() || shop.owner_id == Some(user.id.0) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// Work on a shop's listings, stock, photos, batches, labels and orders: its owner, the
/// admin, or a helper of the village's digital team the household let in. Money, payout
/// accounts, the shop's settings and passwords stay with [`authorize_shop`].
pub fn authorize_shop_work(user: &User, shop: &Shop) -> Result<()> {
    if authorize_shop(user, shop).is_ok() || user.helps.contains(&shop.id.0) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// A seller opens a shop in a village. It waits for the village's moderator (an admin's
/// own shop is accepted at once); its email waits for confirmation.
pub async fn create_shop(
    db: &Db,
    cfg: &crate::config::Config,
    owner: &User,
    village: &Village,
    f: &ShopFields,
) -> Result<Shop> {
    owner.require_proven_phone()?;
    let mut tx = db.begin().await?;
    let membership = if owner.is_admin() {
        "accepted"
    } else {
        "pending"
    };
    let slug = free_slug(&mut tx, "shops", &Slug::from_name(&f.name), &village.name).await?;
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO shops (slug, village_id, owner_id, name, phone, email, zalo_phone,
           telegram_chat_id, story, active, created_at, updated_at, membership, email_confirmed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $11, 0) RETURNING id",
    )
    .bind(slug)
    .bind(village.id.0)
    .bind(owner.id.0)
    .bind(f.name.clone())
    .bind(f.phone.as_str().to_string())
    .bind(f.email.as_ref().map(|e| e.as_str().to_string()))
    .bind(f.zalo_phone.as_ref().map(|p| p.as_str().to_string()))
    .bind(f.telegram_chat_id.clone())
    .bind(f.story.clone())
    .bind(now)
    .bind(membership)
    .fetch_one(&mut *tx)
    .await?;
    if let Some(email) = &f.email {
        ask_email_confirmation(&mut tx, cfg, ShopId(id), email.as_str()).await?;
    }
    if membership == "pending" {
        crate::notify::event(&mut tx, crate::notify::NoticeKind::ShopJoinRequest, id).await?;
    }
    tx.commit().await?;
    shop_by_id(db, ShopId(id)).await
}

fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Mark the shop's email unconfirmed and mail a confirmation link to it (only a hash of
/// the link's token is kept).
async fn ask_email_confirmation(
    tx: &mut Tx,
    cfg: &crate::config::Config,
    shop: ShopId,
    email: &str,
) -> Result<()> {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    sqlx::query("UPDATE shops SET email_confirmed = 0, email_token_hash = $1 WHERE id = $2")
        .bind(token_hash(&token))
        .bind(shop.0)
        .execute(&mut **tx)
        .await?;
    crate::notify::render::shop_email_confirmation(tx, cfg, shop.0, email, &token).await
}

/// The link from the confirmation mail: the shop's email now receives notices.
pub async fn confirm_email(db: &Db, token: &str) -> Result<Shop> {
    if token.len() > 100 {
        return Err(AppError::NotFound);
    }
    let id: i64 = sqlx::query_scalar(
        "UPDATE shops SET email_confirmed = 1, email_token_hash = NULL, email_previous = NULL
         WHERE email_token_hash = $1 RETURNING id",
    )
    .bind(token_hash(token))
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    shop_by_id(db, ShopId(id)).await
}

/// Shops waiting for the village moderator: (slug, name, owner's display name).
/// A shop asking to join its village's board, as the moderator needs to judge it: who is
/// behind it, how to call them, what they make.
pub struct JoinRequest {
    pub slug: String,
    pub name: String,
    pub owner: String,
    pub phone: String,
    /// What the shop says it makes (its story), shortened.
    pub makes: String,
}

pub async fn join_requests(db: &Db, village: VillageId) -> Result<Vec<JoinRequest>> {
    let rows = sqlx::query(
        "SELECT s.slug, s.name, COALESCE(u.display_name, '') AS owner, s.phone, s.story FROM shops s
         LEFT JOIN users u ON u.id = s.owner_id
         WHERE s.village_id = $1 AND s.membership = 'pending' ORDER BY s.created_at, s.id",
    )
    .bind(village.0)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let story: String = r.try_get("story")?;
            let mut makes: String = story.chars().take(160).collect();
            if story.chars().count() > 160 {
                makes.push('…');
            }
            Ok(JoinRequest {
                slug: r.try_get("slug")?,
                name: r.try_get("name")?,
                owner: r.try_get("owner")?,
                phone: r.try_get("phone")?,
                makes,
            })
        })
        .collect()
}

/// The village's moderator (or an admin) accepts a shop onto the board or refuses it.
pub async fn decide_membership(
    db: &Db,
    user: &User,
    shop: &Shop,
    accept: bool,
    reason: &str,
) -> Result<Shop> {
    if !crate::accounts::store::can_moderate(db, user, shop.village_id.0).await? {
        return Err(AppError::Forbidden);
    }
    // A moderator's own shop would add a voter of their choosing: another moderator of the
    // village or the platform admin decides it.
    if shop.owner_id == Some(user.id.0) && !user.is_admin() {
        return Err(AppError::Forbidden);
    }
    let reason = crate::domain::text::clean_text(reason, "lý do", 500)
        .map_err(|m| AppError::field("reason", m))?;
    let mut tx = db.begin().await?;
    let n = sqlx::query(
        "UPDATE shops SET membership = $1, membership_by = $2, membership_at = $3,
           membership_reason = $4, updated_at = $3 WHERE id = $5 AND membership = 'pending'",
    )
    .bind(if accept { "accepted" } else { "rejected" })
    .bind(user.id.0)
    .bind(now_ms())
    .bind(reason)
    .bind(shop.id.0)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n != 1 {
        return Err(AppError::Conflict(
            "Cửa hàng này không còn chờ duyệt".into(),
        ));
    }
    refresh_search_text(&mut tx, Some(shop.id), None).await?;
    // The shop hears the answer on its channels.
    crate::notify::event(
        &mut tx,
        crate::notify::NoticeKind::ShopMembership,
        shop.id.0,
    )
    .await?;
    tx.commit().await?;
    shop_by_id(db, shop.id).await
}

/// Change a shop's details. The payout account is not changed here: that needs the password
/// again (`payouts::store::set_account`). A new email needs `password` too, and the old
/// confirmed address is told of the change (so a stolen session cannot quietly move the
/// shop's notices — and the payout-account alert — elsewhere).
pub async fn update_shop(
    db: &Db,
    cfg: &crate::config::Config,
    user: &User,
    shop: &Shop,
    f: &ShopFields,
    password: &str,
) -> Result<Shop> {
    let new_email = f.email.as_ref().map(|e| e.as_str());
    let email_changes = new_email != shop.email.as_deref();
    if email_changes && shop.email.is_some() {
        if password.is_empty() {
            return Err(AppError::field(
                "password",
                "Nhập mật khẩu của bạn để đổi email cửa hàng",
            ));
        }
        crate::accounts::store::confirm_password(db, user.id, password).await?;
    }
    let mut tx = db.begin().await?;
    sqlx::query(
        "UPDATE shops SET name = $1, phone = $2, email = $3, zalo_phone = $4, telegram_chat_id = $5,
           story = $6, updated_at = $7, notify_email = $9, notify_zalo = $10, notify_telegram = $11
         WHERE id = $8",
    )
    .bind(f.name.clone())
    .bind(f.phone.as_str().to_string())
    .bind(f.email.as_ref().map(|e| e.as_str().to_string()))
    .bind(f.zalo_phone.as_ref().map(|p| p.as_str().to_string()))
    .bind(f.telegram_chat_id.clone())
    .bind(f.story.clone())
    .bind(now_ms())
    .bind(shop.id.0)
    .bind(i64::from(f.notify.0))
    .bind(i64::from(f.notify.1))
    .bind(i64::from(f.notify.2))
    .execute(&mut *tx)
    .await?;
    if email_changes {
        if let (Some(old), true) = (shop.email.as_deref(), shop.email_confirmed) {
            crate::notify::render::email_changed(&mut tx, cfg, shop.id.0, old, new_email).await?;
            // Until the new address is confirmed, security notices still reach this one.
            sqlx::query("UPDATE shops SET email_previous = $1 WHERE id = $2")
                .bind(old.to_string())
                .bind(shop.id.0)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(email) = new_email {
            ask_email_confirmation(&mut tx, cfg, shop.id, email).await?;
        } else {
            sqlx::query("UPDATE shops SET email_confirmed = 0 WHERE id = $1")
                .bind(shop.id.0)
                .execute(&mut *tx)
                .await?;
        }
    }
    refresh_search_text(&mut tx, Some(shop.id), None).await?;
    tx.commit().await?;
    shop_by_id(db, shop.id).await
}

/// Give a shop (e.g. an imported one) to an account: only one whose phone, if it has one,
/// was proven, so nobody who merely typed a seller's public number gets the seller's shop.
pub async fn assign_owner(db: &Db, shop: ShopId, owner: &User) -> Result<()> {
    owner.require_proven_phone()?;
    sqlx::query("UPDATE shops SET owner_id = $1, updated_at = $2 WHERE id = $3")
        .bind(owner.id.0)
        .bind(now_ms())
        .bind(shop.0)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Every product list reads the price from the price board through this join.
macro_rules! card_select {
    () => {
        "SELECT p.id, p.slug, p.name, pi.price_vnd, pi.unit, p.stock, p.ocop_stars, p.category,
                p.price_item_id, s.slug AS shop_slug, s.name AS shop_name, v.slug AS village_slug,
                v.name AS village_name, p.active, p.ocop_verified_at,
                (SELECT ph.thumb_name FROM product_photos ph WHERE ph.product_id = p.id
                 ORDER BY ph.position, ph.id LIMIT 1) AS thumb
         FROM products p
         JOIN price_items pi ON pi.id = p.price_item_id
         JOIN shops s ON s.id = p.shop_id
         JOIN villages v ON v.id = s.village_id"
    };
}

fn card_from_row(r: &AnyRow) -> Result<ProductCard> {
    Ok(ProductCard {
        id: ProductId(r.try_get("id")?),
        slug: r.try_get("slug")?,
        name: r.try_get("name")?,
        price_vnd: r.try_get("price_vnd")?,
        unit: r.try_get("unit")?,
        stock: r.try_get("stock")?,
        ocop_stars: r.try_get("ocop_stars")?,
        ocop_verified: r.try_get::<Option<i64>, _>("ocop_verified_at")?.is_some(),
        category: r.try_get("category")?,
        price_item_id: r.try_get("price_item_id")?,
        shop_slug: r.try_get("shop_slug")?,
        shop_name: r.try_get("shop_name")?,
        village_slug: r.try_get("village_slug")?,
        village_name: r.try_get("village_name")?,
        thumb: r.try_get("thumb")?,
        active: r.try_get::<i64, _>("active")? == 1,
    })
}

pub async fn newest_products(db: &Db, limit: i64) -> Result<Vec<ProductCard>> {
    let rows = sqlx::query(concat!(
        card_select!(),
        " WHERE p.active = 1 AND s.active = 1 ORDER BY p.created_at DESC, p.id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(card_from_row).collect()
}

pub async fn products_of_shop(
    db: &Db,
    shop: ShopId,
    include_inactive: bool,
) -> Result<Vec<ProductCard>> {
    let rows = sqlx::query(concat!(
        card_select!(),
        " WHERE p.shop_id = $1 AND (p.active = 1 OR $2 = 1) ORDER BY p.name"
    ))
    .bind(shop.0)
    .bind(i64::from(include_inactive))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(card_from_row).collect()
}

/// One page of a storefront's products, by name, and how many there are in all (the village
/// and shop pages show `limit` at a time: a village may hold thousands).
pub async fn storefront_page(
    db: &Db,
    of: Storefront,
    limit: i64,
    offset: i64,
) -> Result<(Vec<ProductCard>, i64)> {
    let (filter, id) = match of {
        Storefront::Village(v) => ("s.village_id = $1", v.0),
        Storefront::Shop(s) => ("p.shop_id = $1", s.0),
    };
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{} WHERE {filter} AND p.active = 1 AND s.active = 1 ORDER BY p.name, p.id LIMIT $2 OFFSET $3",
        card_select!()
    )))
    .bind(id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&db.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM products p JOIN shops s ON s.id = p.shop_id
          WHERE {filter} AND p.active = 1 AND s.active = 1"
    )))
    .bind(id)
    .fetch_one(&db.pool)
    .await?;
    Ok((
        rows.iter().map(card_from_row).collect::<Result<_>>()?,
        total,
    ))
}

/// Whose products a storefront page lists.
#[derive(Debug, Clone, Copy)]
pub enum Storefront {
    Village(VillageId),
    Shop(ShopId),
}

pub async fn product_by_id(db: &Db, id: i64) -> Result<ProductCard> {
    let row = sqlx::query(concat!(card_select!(), " WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or(AppError::NotFound)?;
    card_from_row(&row)
}

pub async fn products_of_item(db: &Db, item_id: i64) -> Result<Vec<ProductCard>> {
    let rows = sqlx::query(concat!(
        card_select!(),
        " WHERE p.price_item_id = $1 AND p.active = 1 ORDER BY p.name"
    ))
    .bind(item_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(card_from_row).collect()
}

/// Cards of these products in the given order, active ones in active shops only: search
/// hits are shown with the price and stock the product page shows.
pub async fn cards_by_ids(db: &Db, ids: &[i64]) -> Result<Vec<ProductCard>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let list = crate::db::id_list(ids);
    let rows = sqlx::query(AssertSqlSafe(format!(
        "{} WHERE p.active = 1 AND s.active = 1 AND p.id IN ({list})",
        card_select!()
    )))
    .fetch_all(&db.pool)
    .await?;
    let mut by_id: std::collections::HashMap<i64, ProductCard> = rows
        .iter()
        .map(card_from_row)
        .map(|c| c.map(|c| (c.id.0, c)))
        .collect::<Result<_>>()?;
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// Each product's own words (name, category, materials, description) and the names it is
/// sold under (its shop's and village's), by id: what search checks a result against.
pub async fn own_texts(
    db: &Db,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, (String, String)>> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let list = crate::db::id_list(ids);
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT p.id, p.name, p.category, p.materials, p.description, s.name AS shop, v.name AS village
         FROM products p JOIN shops s ON s.id = p.shop_id JOIN villages v ON v.id = s.village_id
         WHERE p.id IN ({list})"
    )))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let part = |c: &str| -> Result<String> {
                Ok(r.try_get::<Option<String>, _>(c)?.unwrap_or_default())
            };
            Ok((
                r.try_get("id")?,
                (
                    format!(
                        "{} {} {} {}",
                        part("name")?,
                        part("category")?,
                        part("materials")?,
                        part("description")?
                    ),
                    format!("{} / {}", part("shop")?, part("village")?),
                ),
            ))
        })
        .collect()
}

/// A product's photos in its own row, as a JSON array of `[id, file_name, thumb_name]` in
/// their order (an ordered aggregate on both databases: SQLite's since 3.44, bundled by sqlx):
/// a product page asks the database once, not twice.
fn photos_json(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "(SELECT json_group_array(json_array(ph.id, ph.file_name, ph.thumb_name)
                                      ORDER BY ph.position, ph.id)
              FROM product_photos ph WHERE ph.product_id = p.id)"
        }
        Backend::Postgres => {
            "(SELECT COALESCE(json_agg(json_build_array(ph.id, ph.file_name, ph.thumb_name)
                                ORDER BY ph.position, ph.id), '[]')::text
              FROM product_photos ph WHERE ph.product_id = p.id)"
        }
    }
}

pub async fn product_by_slug(db: &Db, slug: &str) -> Result<ProductDetail> {
    product_by_slug_on(&mut *db.conn().await?, db.backend, slug).await
}

/// `product_by_slug` on a connection the caller holds (`Db::conn`).
pub async fn product_by_slug_on(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    slug: &str,
) -> Result<ProductDetail> {
    let sql = format!(
        "SELECT q.*, p.description, p.maker, p.materials, p.made_in, p.shop_id, p.gtin,
                p.ocop_cert_no, p.ocop_cert_year, p.created_at, p.item_join, p.item_join_reason,
                p.weight_g, p.length_cm, p.width_cm, p.height_cm,
                p.updated_at, pi.name AS price_item_name, pi.village_id,
                {} AS photos
         FROM ({} WHERE p.slug = $1) q
         JOIN products p ON p.id = q.id
         JOIN price_items pi ON pi.id = p.price_item_id",
        photos_json(backend),
        card_select!()
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(slug.to_string())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppError::NotFound)?;
    let card = card_from_row(&row)?;
    let photos: Vec<(i64, String, String)> =
        serde_json::from_str(&row.try_get::<String, _>("photos")?)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("product photos: {e}")))?;
    let photos = photos
        .into_iter()
        .map(|(id, file_name, thumb_name)| Photo {
            id,
            file_name,
            thumb_name,
        })
        .collect();
    Ok(ProductDetail {
        description: row.try_get("description")?,
        maker: row.try_get("maker")?,
        materials: row.try_get("materials")?,
        made_in: row.try_get("made_in")?,
        price_item_name: row.try_get("price_item_name")?,
        shop_id: ShopId(row.try_get("shop_id")?),
        village_id: VillageId(row.try_get("village_id")?),
        gtin: row.try_get("gtin")?,
        ocop_cert_no: row.try_get("ocop_cert_no")?,
        ocop_cert_year: row.try_get("ocop_cert_year")?,
        parcel: super::Parcel {
            weight_g: row.try_get("weight_g")?,
            length_cm: row.try_get("length_cm")?,
            width_cm: row.try_get("width_cm")?,
            height_cm: row.try_get("height_cm")?,
        },
        item_request: match row.try_get::<Option<String>, _>("item_join")?.as_deref() {
            Some(status @ ("pending" | "refused")) => Some(super::ItemRequest {
                status: status.to_string(),
                item_name: row.try_get("price_item_name")?,
                reason: row.try_get("item_join_reason")?,
            }),
            _ => None,
        },
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        photos,
        card,
    })
}

/// How a product may take its price item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemFit {
    /// Its name carries the item's name.
    Named,
    /// The moderator accepted this name on this item.
    Accepted,
    /// Another name: the moderator decides; the product is not listed until then.
    Ask,
}

/// The price item must be on the board of the shop's own village and of the product's
/// category (that of the item's other listings); a product takes the item whose name it
/// carries, under another name it asks the moderator.
async fn item_fit(
    tx: &mut Tx,
    f: &ProductFields,
    village: VillageId,
    category: &str,
    this: Option<&ProductDetail>,
) -> Result<ItemFit> {
    let item: Option<String> =
        sqlx::query_scalar("SELECT name FROM price_items WHERE id = $1 AND village_id = $2")
            .bind(f.price_item_id)
            .bind(village.0)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(item) = item else {
        return Err(AppError::field(
            "price_item_id",
            "mặt hàng này không có trên bảng giá của làng",
        ));
    };
    let others: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT category FROM products
         WHERE price_item_id = $1 AND id <> $2 AND active = 1
           AND (item_join IS NULL OR item_join = 'accepted')",
    )
    .bind(f.price_item_id)
    .bind(this.map(|p| p.card.id.0).unwrap_or(0))
    .fetch_all(&mut **tx)
    .await?;
    let folded = crate::domain::text::fold(category);
    if let Some(theirs) = others.first()
        && !others
            .iter()
            .any(|c| crate::domain::text::fold(c) == folded)
    {
        return Err(AppError::field(
            "price_item_id",
            format!(
                "Mặt hàng “{item}” là loại hàng “{theirs}”; sản phẩm loại “{category}” không dùng giá của mặt hàng này"
            ),
        ));
    }
    if super::carries_name(&f.name, &item) {
        return Ok(ItemFit::Named);
    }
    if let Some(p) = this {
        let accepted: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM products WHERE id = $1 AND item_join = 'accepted'
               AND item_join_name = $2 AND item_join_item = $3",
        )
        .bind(p.card.id.0)
        .bind(f.name.clone())
        .bind(f.price_item_id)
        .fetch_one(&mut **tx)
        .await?;
        if accepted > 0 {
            return Ok(ItemFit::Accepted);
        }
    }
    Ok(ItemFit::Ask)
}

/// Record how the product takes its item: asking hides it until the moderator decides; a
/// product that asked and now carries the item's name (or was accepted) is listed again.
async fn apply_item_fit(tx: &mut Tx, product: i64, f: &ProductFields, fit: ItemFit) -> Result<()> {
    match fit {
        ItemFit::Ask => {
            let already: Option<String> =
                sqlx::query_scalar("SELECT item_join FROM products WHERE id = $1")
                    .bind(product)
                    .fetch_one(&mut **tx)
                    .await?;
            sqlx::query(
                "UPDATE products SET item_join = 'pending', item_join_name = $1, item_join_item = $2,
                   item_join_reason = NULL, item_join_by = NULL, item_join_at = NULL, active = 0
                 WHERE id = $3",
            )
            .bind(f.name.clone())
            .bind(f.price_item_id)
            .bind(product)
            .execute(&mut **tx)
            .await?;
            // The moderators hear once per request, not on every save while it waits.
            if already.as_deref() != Some("pending") {
                crate::notify::event(tx, crate::notify::NoticeKind::ItemJoinRequest, product)
                    .await?;
            }
        }
        ItemFit::Named => {
            sqlx::query(
                "UPDATE products SET active = CASE WHEN item_join IN ('pending', 'refused') THEN 1 ELSE active END,
                   item_join = NULL, item_join_name = NULL, item_join_item = NULL, item_join_reason = NULL
                 WHERE id = $1",
            )
            .bind(product)
            .execute(&mut **tx)
            .await?;
        }
        ItemFit::Accepted => {}
    }
    Ok(())
}

/// Products of a village asking to take an item under another name:
/// (slug, product name, shop, item name).
pub async fn item_requests(
    db: &Db,
    village: VillageId,
) -> Result<Vec<(String, String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT p.slug, p.name, s.name, pi.name FROM products p
         JOIN shops s ON s.id = p.shop_id JOIN price_items pi ON pi.id = p.price_item_id
         WHERE s.village_id = $1 AND p.item_join = 'pending' ORDER BY p.updated_at, p.id",
    )
    .bind(village.0)
    .fetch_all(&db.pool)
    .await?)
}

/// The village's moderator (or an admin; never on their own shop) lets a product take an
/// item under its own name — it is listed at once — or refuses with a reason the seller sees.
pub async fn decide_item_request(
    db: &Db,
    moderator: &User,
    slug: &str,
    accept: bool,
    reason: &str,
) -> Result<ProductDetail> {
    let p = product_by_slug(db, slug).await?;
    if !crate::accounts::store::can_moderate(db, moderator, p.village_id.0).await? {
        return Err(AppError::Forbidden);
    }
    let owner: Option<i64> = sqlx::query_scalar("SELECT owner_id FROM shops WHERE id = $1")
        .bind(p.shop_id.0)
        .fetch_one(&db.pool)
        .await?;
    if owner == Some(moderator.id.0) && !moderator.is_admin() {
        // Another moderator of the village or the admin decides on a moderator's own shop.
        return Err(AppError::Forbidden);
    }
    let reason = if accept {
        None
    } else {
        let r = crate::domain::text::clean_line(reason, "lý do từ chối", 300)
            .map_err(|m| AppError::field("reason", m))?;
        if r.chars().count() < 10 {
            return Err(AppError::field(
                "reason",
                "Lý do từ chối cần ít nhất 10 ký tự để người bán hiểu",
            ));
        }
        Some(r)
    };
    let mut tx = db.begin().await?;
    let n = sqlx::query(
        "UPDATE products SET item_join = $1, item_join_reason = $2, item_join_by = $3,
           item_join_at = $4, active = $5, updated_at = $4
         WHERE id = $6 AND item_join = 'pending'",
    )
    .bind(if accept { "accepted" } else { "refused" })
    .bind(reason)
    .bind(moderator.id.0)
    .bind(now_ms())
    .bind(i64::from(accept))
    .bind(p.card.id.0)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(AppError::Conflict(
            "Yêu cầu dùng giá mặt hàng của sản phẩm này đã được xử lý".into(),
        ));
    }
    crate::index_queue::enqueue(&mut tx, crate::index_queue::Scope::Product(p.card.id.0)).await?;
    tx.commit().await?;
    product_by_slug(db, slug).await
}

/// Products of a village whose OCOP stars wait for the moderator:
/// (slug, name, shop, stars, certificate number, year).
pub async fn ocop_to_verify(
    db: &Db,
    village: VillageId,
) -> Result<Vec<(String, String, String, i64, String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT p.slug, p.name, s.name, p.ocop_stars, COALESCE(p.ocop_cert_no, ''),
                COALESCE(p.ocop_cert_year, 0)
         FROM products p JOIN shops s ON s.id = p.shop_id
         WHERE s.village_id = $1 AND p.ocop_stars IS NOT NULL AND p.ocop_verified_at IS NULL
           AND p.active = 1
         ORDER BY p.updated_at",
    )
    .bind(village.0)
    .fetch_all(&db.pool)
    .await?)
}

/// The village's moderator (or an admin) confirms a product's OCOP stars, or refuses them
/// (the stars and certificate are removed; the seller may claim again with the right one).
pub async fn decide_ocop(db: &Db, moderator: &User, slug: &str, confirm: bool) -> Result<()> {
    let p = product_by_slug(db, slug).await?;
    if !crate::accounts::store::can_moderate(db, moderator, p.village_id.0).await? {
        return Err(AppError::Forbidden);
    }
    if p.card.ocop_stars.is_none() {
        return Err(AppError::Conflict(
            "Sản phẩm này không khai hạng OCOP".into(),
        ));
    }
    let mut tx = db.begin().await?;
    let n = if confirm {
        sqlx::query(
            "UPDATE products SET ocop_verified_at = $1, ocop_verified_by = $2
             WHERE id = $3 AND ocop_stars IS NOT NULL AND ocop_verified_at IS NULL",
        )
        .bind(now_ms())
        .bind(moderator.id.0)
        .bind(p.card.id.0)
        .execute(&mut *tx)
        .await?
    } else {
        sqlx::query(
            "UPDATE products SET ocop_stars = NULL, ocop_cert_no = NULL, ocop_cert_year = NULL,
               ocop_verified_at = NULL, ocop_verified_by = NULL, updated_at = $1
             WHERE id = $2 AND ocop_stars IS NOT NULL",
        )
        .bind(now_ms())
        .bind(p.card.id.0)
        .execute(&mut *tx)
        .await?
    }
    .rows_affected();
    if n == 0 {
        return Err(AppError::Conflict(
            "Hạng OCOP của sản phẩm này đã được xử lý".into(),
        ));
    }
    crate::index_queue::enqueue(&mut tx, crate::index_queue::Scope::Product(p.card.id.0)).await?;
    tx.commit().await?;
    Ok(())
}

/// Stars that came through the admin's importer count as confirmed by that admin.
pub async fn mark_ocop_verified(tx: &mut Tx, slug: &str) -> Result<()> {
    sqlx::query(
        "UPDATE products SET ocop_verified_at = CASE WHEN ocop_stars IS NULL THEN NULL ELSE $1 END
         WHERE slug = $2",
    )
    .bind(now_ms())
    .bind(slug.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A GTIN names one trade item: no two products share it.
async fn check_gtin_free(tx: &mut Tx, f: &ProductFields, this: Option<ProductId>) -> Result<()> {
    let Some(g) = &f.gtin else { return Ok(()) };
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products WHERE gtin = $1 AND id <> $2")
        .bind(g.to_string())
        .bind(this.map(|p| p.0).unwrap_or(0))
        .fetch_one(&mut **tx)
        .await?;
    if n > 0 {
        return Err(AppError::field(
            "gtin",
            "Mã GTIN này đã gắn với một sản phẩm khác",
        ));
    }
    Ok(())
}

/// Why a shop that the village has not accepted lists nothing.
pub fn require_member(shop: &Shop) -> Result<()> {
    if shop.is_member() {
        Ok(())
    } else {
        Err(AppError::Conflict(
            "Cửa hàng chưa được điều phối viên của làng chấp nhận nên chưa thể đăng hoặc sửa sản phẩm".into(),
        ))
    }
}

pub async fn create_product(db: &Db, shop: &Shop, f: &ProductFields) -> Result<ProductDetail> {
    require_member(shop)?;
    let mut tx = db.begin().await?;
    let slug = insert_product(&mut tx, shop, f).await?;
    tx.commit().await?;
    product_by_slug(db, &slug).await
}

/// Insert inside a caller's transaction (used by the form, the API and the importer).
pub async fn insert_product(tx: &mut Tx, shop: &Shop, f: &ProductFields) -> Result<String> {
    let category = super::categories::resolve(tx, shop.village_id, &f.category).await?;
    let fit = item_fit(tx, f, shop.village_id, &category, None).await?;
    check_gtin_free(tx, f, None).await?;
    let slug = free_slug(tx, "products", &Slug::from_name(&f.name), &shop.name).await?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO products (slug, shop_id, price_item_id, name, description, category, stock,
           ocop_stars, maker, materials, made_in, search_text, active, created_at, updated_at, gtin,
           ocop_cert_no, ocop_cert_year, weight_g, length_cm, width_cm, height_cm)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', 1, $12, $12, $13, $14, $15,
           $16, $17, $18, $19)",
    )
    .bind(slug.clone())
    .bind(shop.id.0)
    .bind(f.price_item_id)
    .bind(f.name.clone())
    .bind(f.description.clone())
    .bind(category)
    .bind(f.stock)
    .bind(f.ocop_stars)
    .bind(f.maker.clone())
    .bind(f.materials.clone())
    .bind(f.made_in.clone())
    .bind(now)
    .bind(f.gtin.as_ref().map(|g| g.to_string()))
    .bind(f.ocop_cert.as_ref().map(|c| c.0.clone()))
    .bind(f.ocop_cert.as_ref().map(|c| c.1))
    .bind(f.parcel.weight_g)
    .bind(f.parcel.length_cm)
    .bind(f.parcel.width_cm)
    .bind(f.parcel.height_cm)
    .execute(&mut **tx)
    .await?;
    if fit == ItemFit::Ask {
        let id: i64 = sqlx::query_scalar("SELECT id FROM products WHERE slug = $1")
            .bind(slug.clone())
            .fetch_one(&mut **tx)
            .await?;
        apply_item_fit(tx, id, f, fit).await?;
    }
    refresh_search_text(tx, None, Some(&slug)).await?;
    Ok(slug)
}

pub async fn update_product(
    db: &Db,
    shop: &Shop,
    product: &ProductDetail,
    f: &ProductFields,
) -> Result<ProductDetail> {
    require_member(shop)?;
    let mut tx = db.begin().await?;
    let category = super::categories::resolve(&mut tx, shop.village_id, &f.category).await?;
    let fit = item_fit(&mut tx, f, shop.village_id, &category, Some(product)).await?;
    check_gtin_free(&mut tx, f, Some(product.card.id)).await?;
    sqlx::query(
        "UPDATE products SET name = $1, description = $2, category = $3, stock = $4, ocop_stars = $5,
           maker = $6, materials = $7, made_in = $8, price_item_id = $9, updated_at = $10, gtin = $12,
           ocop_cert_no = $13, ocop_cert_year = $14,
           weight_g = $16, length_cm = $17, width_cm = $18, height_cm = $19,
           ocop_verified_at = CASE WHEN $15 = 1 THEN ocop_verified_at END,
           ocop_verified_by = CASE WHEN $15 = 1 THEN ocop_verified_by END
         WHERE id = $11",
    )
    .bind(f.name.clone())
    .bind(f.description.clone())
    .bind(category)
    .bind(f.stock)
    .bind(f.ocop_stars)
    .bind(f.maker.clone())
    .bind(f.materials.clone())
    .bind(f.made_in.clone())
    .bind(f.price_item_id)
    .bind(now_ms())
    .bind(product.card.id.0)
    .bind(f.gtin.as_ref().map(|g| g.to_string()))
    .bind(f.ocop_cert.as_ref().map(|c| c.0.clone()))
    .bind(f.ocop_cert.as_ref().map(|c| c.1))
    // Other stars or another certificate: the moderator checks again.
    .bind(i64::from(f.same_ocop_claim(product)))
    .bind(f.parcel.weight_g)
    .bind(f.parcel.length_cm)
    .bind(f.parcel.width_cm)
    .bind(f.parcel.height_cm)
    .execute(&mut *tx)
    .await?;
    apply_item_fit(&mut tx, product.card.id.0, f, fit).await?;
    refresh_search_text(&mut tx, None, Some(&product.card.slug)).await?;
    tx.commit().await?;
    product_by_slug(db, &product.card.slug).await
}

pub async fn set_product_active(db: &Db, product: ProductId, active: bool) -> Result<()> {
    let mut tx = db.begin().await?;
    if active {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM products WHERE id = $1 AND item_join IN ('pending', 'refused')",
        )
        .bind(product.0)
        .fetch_one(&mut *tx)
        .await?;
        if waiting > 0 {
            return Err(AppError::Conflict(
                "Sản phẩm chưa được điều phối viên đồng ý cho dùng giá của mặt hàng nên chưa thể hiện lên chợ".into(),
            ));
        }
    }
    sqlx::query("UPDATE products SET active = $1, updated_at = $2 WHERE id = $3")
        .bind(i64::from(active))
        .bind(now_ms())
        .bind(product.0)
        .execute(&mut *tx)
        .await?;
    crate::index_queue::enqueue(&mut tx, crate::index_queue::Scope::Product(product.0)).await?;
    tx.commit().await?;
    Ok(())
}

/// Recompute the folded search text of the products of a shop, or of one product, and queue
/// them for the search index: every product or shop change goes through here.
pub async fn refresh_search_text(
    tx: &mut Tx,
    shop: Option<ShopId>,
    product_slug: Option<&str>,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT p.id, p.name, p.description, p.category, pi.name AS item_name, s.name AS shop_name,
                v.name AS village_name
         FROM products p JOIN price_items pi ON pi.id = p.price_item_id
         JOIN shops s ON s.id = p.shop_id JOIN villages v ON v.id = s.village_id
         WHERE p.shop_id = $1 OR p.slug = $2",
    )
    .bind(shop.map(|s| s.0).unwrap_or(-1))
    .bind(product_slug.unwrap_or("").to_string())
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let text = search_text(&[
            &r.try_get::<String, _>("name")?,
            &r.try_get::<String, _>("category")?,
            &r.try_get::<String, _>("item_name")?,
            &r.try_get::<String, _>("shop_name")?,
            &r.try_get::<String, _>("village_name")?,
            &r.try_get::<String, _>("description")?,
        ]);
        let id: i64 = r.try_get("id")?;
        sqlx::query("UPDATE products SET search_text = $1 WHERE id = $2")
            .bind(text)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        if shop.is_none() {
            crate::index_queue::enqueue(tx, crate::index_queue::Scope::Product(id)).await?;
        }
    }
    if let Some(shop) = shop {
        crate::index_queue::enqueue(tx, crate::index_queue::Scope::Shop(shop.0)).await?;
    }
    Ok(())
}

/// Remove one of a product's photos; returns its (full, thumbnail) files for the caller to
/// delete once the row is gone.
pub async fn remove_photo(db: &Db, product: ProductId, photo_id: i64) -> Result<(String, String)> {
    let mut tx = db.begin().await?;
    let files: Option<(String, String)> = sqlx::query_as(
        "SELECT file_name, thumb_name FROM product_photos WHERE id = $1 AND product_id = $2",
    )
    .bind(photo_id)
    .bind(product.0)
    .fetch_optional(&mut *tx)
    .await?;
    let files = files.ok_or(AppError::NotFound)?;
    sqlx::query("DELETE FROM product_photos WHERE id = $1")
        .bind(photo_id)
        .execute(&mut *tx)
        .await?;
    touch_product(&mut tx, product).await?;
    tx.commit().await?;
    Ok(files)
}

/// Move a photo one place earlier; the first photo is the product's main picture.
pub async fn move_photo_earlier(db: &Db, product: ProductId, photo_id: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    let mut ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM product_photos WHERE product_id = $1 ORDER BY position, id",
    )
    .bind(product.0)
    .fetch_all(&mut *tx)
    .await?;
    let i = ids
        .iter()
        .position(|id| *id == photo_id)
        .ok_or(AppError::NotFound)?;
    if i > 0 {
        ids.swap(i, i - 1);
    }
    for (pos, id) in ids.iter().enumerate() {
        sqlx::query("UPDATE product_photos SET position = $1 WHERE id = $2")
            .bind(pos as i64)
            .bind(*id)
            .execute(&mut *tx)
            .await?;
    }
    touch_product(&mut tx, product).await?;
    tx.commit().await?;
    Ok(())
}

async fn touch_product(tx: &mut Tx, product: ProductId) -> Result<()> {
    sqlx::query("UPDATE products SET updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(product.0)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn add_photo(db: &Db, product: ProductId, file: &str, thumb: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    let (count, pos): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(MAX(position) + 1, 0) FROM product_photos WHERE product_id = $1",
    )
    .bind(product.0)
    .fetch_one(&mut *tx)
    .await?;
    if count >= super::photos::MAX_PHOTOS {
        return Err(AppError::field(
            "photo",
            format!("mỗi sản phẩm có tối đa {} ảnh", super::photos::MAX_PHOTOS),
        ));
    }
    sqlx::query(
        "INSERT INTO product_photos (product_id, file_name, thumb_name, position, created_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(product.0)
    .bind(file.to_string())
    .bind(thumb.to_string())
    .bind(pos)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    touch_product(&mut tx, product).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn counts(db: &Db) -> Result<(i64, i64, i64)> {
    let v: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM villages")
        .fetch_one(&db.pool)
        .await?;
    let s: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM shops")
        .fetch_one(&db.pool)
        .await?;
    let p: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM products")
        .fetch_one(&db.pool)
        .await?;
    Ok((v, s, p))
}
