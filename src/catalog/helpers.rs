//! The village's community digital team ("Tổ công nghệ số cộng đồng"): helpers named by the
//! village's moderator, who bring households online with the household's consent (a code
//! sent to the household's own phone, typed by the helper) and then work on the household's
//! shop — products, stock, photos, batches, labels, accepting and shipping orders — never on
//! its payout account, password or money. Every action is recorded "by HELPER for SHOP" and
//! shown to the owner, who can revoke the helper at any time.

use serde::Serialize;
use sqlx::Row;

use super::{Shop, ShopId, ShopInput, Village};
use crate::accounts::phone::{self as codes, Pending, Purpose, Which};
use crate::accounts::store::can_moderate;
use crate::accounts::{Login, Role, User, UserId};
use crate::config::Config;
use crate::db::Db;
use crate::domain::text::clean_line;
use crate::domain::{PhoneVn, now_ms};
use crate::error::{AppError, FieldErrors, Result};

/// A member of a village's digital team.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Helper {
    /// The helper's login (phone or email).
    pub login: String,
    pub display_name: String,
    /// When the moderator named them (UTC, RFC 3339).
    pub named_at: String,
    /// Households whose shop they help now.
    pub households: i64,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

async fn user_by_login(db: &Db, login: &str) -> Result<User> {
    let parsed = Login::parse(login).map_err(|m| AppError::field("login", m))?;
    crate::accounts::store::find_by_login(db, &parsed)
        .await?
        .ok_or_else(|| {
            AppError::field(
                "login",
                "Chưa có tài khoản nào với email/số điện thoại này; người giúp cần đăng ký trước",
            )
        })
}

/// The moderator (or the admin) names a helper for the village.
pub async fn name_helper(db: &Db, actor: &User, village: &Village, login: &str) -> Result<Helper> {
    if !can_moderate(db, actor, village.id.0).await? {
        return Err(AppError::Forbidden);
    }
    let user = user_by_login(db, login).await?;
    user.require_proven_phone()
        .map_err(|_| AppError::field("login", "Người này chưa xác nhận số điện thoại bằng mã"))?;
    let now = now_ms();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO village_helpers (village_id, user_id, named_by, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (village_id, user_id) DO NOTHING",
    )
    .bind(village.id.0)
    .bind(user.id.0)
    .bind(actor.id.0)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    crate::accounts::reset::audit(
        &mut tx,
        user.id,
        Some(actor.id),
        crate::accounts::reset::AuditAction::HelperNamed,
        &format!("vào tổ công nghệ số của {}", village.name),
    )
    .await?;
    tx.commit().await?;
    helpers_of(db, actor, village)
        .await?
        .into_iter()
        .find(|h| h.display_name == user.display_name && login_of(&user) == h.login)
        .ok_or(AppError::NotFound)
}

fn login_of(u: &User) -> String {
    u.phone
        .clone()
        .or_else(|| u.email.clone())
        .unwrap_or_default()
}

/// The village's team, for its moderator (or the admin).
pub async fn helpers_of(db: &Db, actor: &User, village: &Village) -> Result<Vec<Helper>> {
    if !can_moderate(db, actor, village.id.0).await? {
        return Err(AppError::Forbidden);
    }
    let rows = sqlx::query(
        "SELECT u.phone, u.email, u.display_name, v.created_at,
           (SELECT COUNT(*) FROM shop_helpers h JOIN shops s ON s.id = h.shop_id
            WHERE h.user_id = u.id AND h.revoked_at IS NULL AND s.village_id = v.village_id) AS households
         FROM village_helpers v JOIN users u ON u.id = v.user_id
         WHERE v.village_id = $1 ORDER BY v.created_at, u.id",
    )
    .bind(village.id.0)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let phone: Option<String> = r.try_get("phone")?;
            let email: Option<String> = r.try_get("email")?;
            Ok(Helper {
                login: phone.or(email).unwrap_or_default(),
                display_name: r.try_get("display_name")?,
                named_at: rfc3339(r.try_get("created_at")?),
                households: r.try_get("households")?,
            })
        })
        .collect()
}

/// Take a helper off the village's team: their rights on its shops end with it.
pub async fn remove_helper(db: &Db, actor: &User, village: &Village, login: &str) -> Result<()> {
    if !can_moderate(db, actor, village.id.0).await? {
        return Err(AppError::Forbidden);
    }
    let user = user_by_login(db, login)
        .await
        .map_err(|_| AppError::NotFound)?;
    let mut tx = db.begin().await?;
    let n = sqlx::query("DELETE FROM village_helpers WHERE village_id = $1 AND user_id = $2")
        .bind(village.id.0)
        .bind(user.id.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(AppError::NotFound);
    }
    crate::accounts::reset::audit(
        &mut tx,
        user.id,
        Some(actor.id),
        crate::accounts::reset::AuditAction::HelperRemoved,
        &format!("rời tổ công nghệ số của {}", village.name),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The villages whose team this user is on.
pub async fn helper_villages(db: &Db, user: &User) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT village_id FROM village_helpers WHERE user_id = $1 ORDER BY village_id",
    )
    .bind(user.id.0)
    .fetch_all(&db.pool)
    .await?)
}

async fn require_helper(db: &Db, user: &User, village: i64) -> Result<()> {
    if helper_villages(db, user).await?.contains(&village) {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}

/// A household being brought online.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Household {
    pub id: i64,
    pub name: String,
    pub phone: String,
    pub shop_name: String,
    pub status: HouseholdStatus,
    /// The household's shop once confirmed.
    pub shop: Option<String>,
}

/// Where a household stands: waiting for the code its phone received, or online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HouseholdStatus {
    WaitingCode,
    Confirmed,
}

/// What a helper types to start: the household's name, its phone and the shop's name.
pub struct NewHousehold {
    pub name: String,
    pub phone: PhoneVn,
    pub shop_name: String,
}

impl NewHousehold {
    pub fn parse(name: &str, phone: &str, shop_name: &str) -> Result<NewHousehold> {
        let mut e = FieldErrors::new();
        let name = e.check("name", clean_line(name, "tên chủ hộ", 80));
        let phone = e.check("phone", PhoneVn::parse(phone));
        let shop_name = e.check("shop_name", clean_line(shop_name, "tên cửa hàng", 80));
        e.into_result()?;
        Ok(NewHousehold {
            name: name.expect("checked"),
            phone: phone.expect("checked"),
            shop_name: shop_name.expect("checked"),
        })
    }
}

/// A helper starts onboarding a household: the household's phone gets a code; the helper
/// types it in when the household agrees ([`confirm_household`]).
pub async fn start_household(
    db: &Db,
    cfg: &Config,
    helper: &User,
    village: &Village,
    new: NewHousehold,
) -> Result<Household> {
    require_helper(db, helper, village.id.0).await?;
    shop_name_free(db, village.id.0, &new.shop_name).await?;
    codes::reserve_send(db, &new.phone, codes::Asker::Account(helper.id.0)).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO households (village_id, helper_id, name, phone, shop_name, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(village.id.0)
    .bind(helper.id.0)
    .bind(new.name.clone())
    .bind(new.phone.as_str().to_string())
    .bind(new.shop_name.clone())
    .bind(now_ms())
    .fetch_one(&db.pool)
    .await?;
    let sent = codes::send(
        db,
        cfg,
        &new.phone,
        Purpose::Household,
        Pending {
            household_id: Some(id),
            ..Default::default()
        },
    )
    .await;
    if let Err(e) = sent {
        // No code reached the household: no household waiting for one either.
        sqlx::query("DELETE FROM households WHERE id = $1 AND confirmed_at IS NULL")
            .bind(id)
            .execute(&db.pool)
            .await?;
        return Err(e);
    }
    household(db, helper, id).await
}

/// A shop's name is unique in its village: checked before a code is sent or used, so a
/// household's code is never spent on a shop that cannot be made.
async fn shop_name_free(db: &Db, village: i64, name: &str) -> Result<()> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM shops WHERE village_id = $1 AND name = $2")
            .bind(village)
            .bind(name.to_string())
            .fetch_one(&db.pool)
            .await?;
    if n > 0 {
        return Err(AppError::field(
            "shop_name",
            "Làng đã có cửa hàng tên này; hãy thêm tên người hoặc tên xóm cho khác",
        ));
    }
    Ok(())
}

/// A household of this helper's.
pub async fn household(db: &Db, helper: &User, id: i64) -> Result<Household> {
    households_of(db, helper)
        .await?
        .into_iter()
        .find(|h| h.id == id)
        .ok_or(AppError::NotFound)
}

pub async fn households_of(db: &Db, helper: &User) -> Result<Vec<Household>> {
    let rows = sqlx::query(
        "SELECT h.id, h.name, h.phone, h.shop_name, h.confirmed_at, s.slug
         FROM households h LEFT JOIN shops s ON s.id = h.shop_id
         WHERE h.helper_id = $1 ORDER BY h.id DESC LIMIT 200",
    )
    .bind(helper.id.0)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let confirmed: Option<i64> = r.try_get("confirmed_at")?;
            Ok(Household {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                phone: r.try_get("phone")?,
                shop_name: r.try_get("shop_name")?,
                status: if confirmed.is_some() {
                    HouseholdStatus::Confirmed
                } else {
                    HouseholdStatus::WaitingCode
                },
                shop: r.try_get("slug")?,
            })
        })
        .collect()
}

/// The helper types the household's code: the household's account (proven phone; it sets
/// its own password later with "Quên mật khẩu") and shop exist, with the helper's rights on
/// the shop. A household that already had an account keeps it (and its shop in the village).
pub async fn confirm_household(
    db: &Db,
    cfg: &Config,
    helper: &User,
    id: i64,
    code: &str,
) -> Result<(User, Shop)> {
    let row = sqlx::query(
        "SELECT village_id, helper_id, name, phone, shop_name, confirmed_at FROM households WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    if row.try_get::<i64, _>("helper_id")? != helper.id.0 {
        return Err(AppError::NotFound);
    }
    let village_id: i64 = row.try_get("village_id")?;
    require_helper(db, helper, village_id).await?;
    if row.try_get::<Option<i64>, _>("confirmed_at")?.is_some() {
        return Err(AppError::Conflict("Hộ này đã được xác nhận rồi.".into()));
    }
    let name: String = row.try_get("name")?;
    let phone =
        PhoneVn::parse(&row.try_get::<String, _>("phone")?).map_err(|e| anyhow::anyhow!(e))?;
    let shop_name: String = row.try_get("shop_name")?;
    // The shop's fields are checked before the code is used up.
    let fields = ShopInput {
        name: shop_name,
        phone: phone.as_str().to_string(),
        notify_zalo: Some("1".into()),
        ..Default::default()
    }
    .parse()?;
    let phone_has_shop: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM shops s JOIN users u ON u.id = s.owner_id
         WHERE u.phone = $1 AND s.village_id = $2",
    )
    .bind(phone.as_str().to_string())
    .bind(village_id)
    .fetch_one(&db.pool)
    .await?;
    if phone_has_shop == 0 {
        shop_name_free(db, village_id, &fields.name).await?;
    }
    codes::check(db, cfg, Which::Household(id), code).await?;
    let login = Login::Phone(phone.clone());
    let owner = match crate::accounts::store::find_by_login(db, &login).await? {
        Some(u) => {
            // The code proved the household holds the phone.
            sqlx::query(
                "UPDATE users SET phone_verified_at = COALESCE(phone_verified_at, $1) WHERE id = $2",
            )
            .bind(now_ms())
            .bind(u.id.0)
            .execute(&db.pool)
            .await?;
            crate::accounts::store::find_by_login(db, &login)
                .await?
                .ok_or(AppError::NotFound)?
        }
        None => {
            // A password nobody knows: the household sets its own with "Quên mật khẩu".
            let secret = format!("{}{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
            let hash = crate::accounts::hash_password(secret).await?;
            crate::accounts::store::insert_user(
                db,
                None,
                Some(phone.as_str()),
                &name,
                &hash,
                Role::Seller,
                true,
            )
            .await?
        }
    };
    let village = super::store::village_by_id(db, super::VillageId(village_id)).await?;
    let existing = super::store::shops_of_owner(db, &owner)
        .await?
        .into_iter()
        .find(|s| s.village_id.0 == village_id);
    let shop = match existing {
        Some(s) => s,
        None => super::store::create_shop(db, cfg, &owner, &village, &fields).await?,
    };
    let now = now_ms();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO shop_helpers (shop_id, user_id, granted_at) VALUES ($1, $2, $3)
         ON CONFLICT (shop_id, user_id) DO UPDATE SET granted_at = $3, revoked_at = NULL",
    )
    .bind(shop.id.0)
    .bind(helper.id.0)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE households SET user_id = $1, shop_id = $2, confirmed_at = $3 WHERE id = $4",
    )
    .bind(owner.id.0)
    .bind(shop.id.0)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    record_tx(
        &mut tx,
        helper.id,
        shop.id,
        "mở cửa hàng cho hộ (hộ đã đồng ý bằng mã gửi tới điện thoại)",
    )
    .await?;
    tx.commit().await?;
    Ok((owner, shop))
}

/// A helper of a shop, as its owner sees them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShopHelper {
    pub login: String,
    pub display_name: String,
    pub granted_at: String,
}

/// Who helps a shop and what they did, for its owner (or the admin).
pub async fn for_owner(
    db: &Db,
    actor: &User,
    shop: &Shop,
    actions: i64,
) -> Result<(Vec<ShopHelper>, Vec<HelperAction>)> {
    super::store::authorize_shop(actor, shop)?;
    Ok((
        helpers_of_shop(db, shop.id).await?,
        actions_for_shop(db, shop.id, actions).await?,
    ))
}

pub async fn helpers_of_shop(db: &Db, shop: ShopId) -> Result<Vec<ShopHelper>> {
    let rows = sqlx::query(
        "SELECT u.phone, u.email, u.display_name, h.granted_at FROM shop_helpers h
         JOIN users u ON u.id = h.user_id
         WHERE h.shop_id = $1 AND h.revoked_at IS NULL ORDER BY h.granted_at",
    )
    .bind(shop.0)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let phone: Option<String> = r.try_get("phone")?;
            let email: Option<String> = r.try_get("email")?;
            Ok(ShopHelper {
                login: phone.or(email).unwrap_or_default(),
                display_name: r.try_get("display_name")?,
                granted_at: rfc3339(r.try_get("granted_at")?),
            })
        })
        .collect()
}

/// The owner (or the admin) takes a helper's rights on the shop away, at once.
pub async fn revoke(db: &Db, actor: &User, shop: &Shop, login: &str) -> Result<()> {
    super::store::authorize_shop(actor, shop)?;
    let user = user_by_login(db, login)
        .await
        .map_err(|_| AppError::NotFound)?;
    let n = sqlx::query(
        "UPDATE shop_helpers SET revoked_at = $1 WHERE shop_id = $2 AND user_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(shop.id.0)
    .bind(user.id.0)
    .execute(&db.pool)
    .await?
    .rows_affected();
    if n == 0 {
        return Err(AppError::NotFound);
    }
    Ok(())
}

/// Whether `user` works on `shop` as a helper (not as its owner or the admin): what they do
/// there is recorded for the owner.
pub fn acts_as_helper(user: &User, shop: &Shop) -> bool {
    !user.is_admin() && shop.owner_id != Some(user.id.0) && user.helps.contains(&shop.id.0)
}

/// Record what a helper did for a shop ("by HELPER for SHOP"); nothing for the owner.
pub async fn record(db: &Db, user: &User, shop: &Shop, action: &str) -> Result<()> {
    if !acts_as_helper(user, shop) {
        return Ok(());
    }
    let mut tx = db.begin().await?;
    record_tx(&mut tx, user.id, shop.id, action).await?;
    tx.commit().await?;
    Ok(())
}

/// The same inside the caller's transaction (the change and its record together).
pub async fn record_tx(
    tx: &mut crate::db::Tx,
    helper: UserId,
    shop: ShopId,
    action: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO helper_actions (shop_id, helper_id, action, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(shop.0)
    .bind(helper.0)
    .bind(action.chars().take(300).collect::<String>())
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// One recorded action, for the owner's dashboard.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HelperAction {
    pub helper: String,
    pub action: String,
    pub at: String,
    #[serde(skip)]
    pub at_ms: i64,
}

pub async fn actions_for_shop(db: &Db, shop: ShopId, limit: i64) -> Result<Vec<HelperAction>> {
    let rows = sqlx::query(
        "SELECT u.display_name, a.action, a.at FROM helper_actions a JOIN users u ON u.id = a.helper_id
         WHERE a.shop_id = $1 ORDER BY a.id DESC LIMIT $2",
    )
    .bind(shop.0)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            let at: i64 = r.try_get("at")?;
            Ok(HelperAction {
                helper: r.try_get("display_name")?,
                action: r.try_get("action")?,
                at: rfc3339(at),
                at_ms: at,
            })
        })
        .collect()
}

/// What needs doing at one household a helper helps.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HouseholdTasks {
    pub shop: String,
    pub shop_name: String,
    pub owner: String,
    pub phone: String,
    /// Paid orders not accepted within 24 hours.
    pub late_orders: i64,
    /// Paid orders waiting to be accepted.
    pub paid_orders: i64,
    pub out_of_stock: i64,
    /// Batches whose labels were never printed.
    pub unprinted_batches: i64,
    /// Buyers' return/refund requests waiting for the shop's answer.
    pub open_requests: i64,
}

/// The helper's dashboard: each household they help, with what needs doing.
pub async fn tasks(db: &Db, helper: &User) -> Result<Vec<HouseholdTasks>> {
    let day_ago = now_ms() - 86_400_000;
    let mut out = Vec::new();
    for shop_id in &helper.helps {
        let r = sqlx::query(
            "SELECT s.slug, s.name, s.phone, COALESCE(u.display_name, '') AS owner,
               (SELECT COUNT(*) FROM orders o WHERE o.shop_id = s.id AND o.status = 'paid'
                  AND o.updated_at < $2) AS late_orders,
               (SELECT COUNT(*) FROM orders o WHERE o.shop_id = s.id AND o.status = 'paid') AS paid_orders,
               (SELECT COUNT(*) FROM products p WHERE p.shop_id = s.id AND p.active = 1 AND p.stock <= 0) AS out_of_stock,
               (SELECT COUNT(*) FROM batches b WHERE b.shop_id = s.id AND b.labels_printed_at IS NULL) AS unprinted,
               (SELECT COUNT(*) FROM order_requests q JOIN orders o ON o.id = q.order_id
                  WHERE o.shop_id = s.id AND q.status = 'open') AS open_requests
             FROM shops s LEFT JOIN users u ON u.id = s.owner_id WHERE s.id = $1",
        )
        .bind(shop_id)
        .bind(day_ago)
        .fetch_one(&db.pool)
        .await?;
        out.push(HouseholdTasks {
            shop: r.try_get("slug")?,
            shop_name: r.try_get("name")?,
            owner: r.try_get("owner")?,
            phone: r.try_get("phone")?,
            late_orders: r.try_get("late_orders")?,
            paid_orders: r.try_get("paid_orders")?,
            out_of_stock: r.try_get("out_of_stock")?,
            unprinted_batches: r.try_get("unprinted")?,
            open_requests: r.try_get("open_requests")?,
        });
    }
    Ok(out)
}
