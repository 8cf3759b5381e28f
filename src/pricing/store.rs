//! SQL for the price board. Every change of an agreed price goes through `apply_price`,
//! which writes the public history row in the same transaction.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::*;
use crate::accounts::User;
use crate::accounts::store::can_moderate;
use crate::catalog::Village;
use crate::db::{Db, Tx};
use crate::domain::text::clean_line;
use crate::domain::{Vnd, now_ms};
use crate::error::{AppError, FieldErrors, Result};

fn item_from_row(r: &AnyRow) -> Result<PriceItem> {
    Ok(PriceItem {
        id: r.try_get("id")?,
        village_id: r.try_get("village_id")?,
        name: r.try_get("name")?,
        unit: r.try_get("unit")?,
        price_vnd: r.try_get("price_vnd")?,
        updated_at: r.try_get("updated_at")?,
    })
}

pub async fn items_of_village(db: &Db, village_id: i64) -> Result<Vec<PriceItem>> {
    let rows = sqlx::query(
        "SELECT id, village_id, name, unit, price_vnd, updated_at FROM price_items
         WHERE village_id = $1 ORDER BY name",
    )
    .bind(village_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(item_from_row).collect()
}

pub async fn item_by_id(db: &Db, id: i64) -> Result<PriceItem> {
    let row = sqlx::query(
        "SELECT id, village_id, name, unit, price_vnd, updated_at FROM price_items WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    item_from_row(&row)
}

/// Set an item's agreed price and record the change in the public history.
/// Listings read the price through a join, so every listing of the item changes at once.
pub async fn apply_price(
    tx: &mut Tx,
    item_id: i64,
    new_price: Vnd,
    source: &str,
    proposal_id: Option<i64>,
    actor: Option<i64>,
) -> Result<()> {
    let old: i64 = sqlx::query_scalar("SELECT price_vnd FROM price_items WHERE id = $1")
        .bind(item_id)
        .fetch_one(&mut **tx)
        .await?;
    let now = now_ms();
    sqlx::query("UPDATE price_items SET price_vnd = $1, updated_at = $2 WHERE id = $3")
        .bind(new_price.get())
        .bind(now)
        .bind(item_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO price_changes (price_item_id, old_price_vnd, new_price_vnd, source, proposal_id, actor_user_id, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(item_id)
    .bind(old)
    .bind(new_price.get())
    .bind(source.to_string())
    .bind(proposal_id)
    .bind(actor)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    // Listings changed: touch them, and queue them for the search index.
    sqlx::query("UPDATE products SET updated_at = $1 WHERE price_item_id = $2")
        .bind(now)
        .bind(item_id)
        .execute(&mut **tx)
        .await?;
    crate::index_queue::enqueue(tx, crate::index_queue::Scope::PriceItem(item_id)).await?;
    Ok(())
}

/// Insert a new item with its first agreed price (history source `created` or `imported`).
pub async fn insert_item(
    tx: &mut Tx,
    village_id: i64,
    name: &str,
    unit: &str,
    price: Vnd,
    source: &str,
    actor: Option<i64>,
) -> Result<i64> {
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO price_items (village_id, name, unit, price_vnd, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(village_id)
    .bind(name.to_string())
    .bind(unit.to_string())
    .bind(price.get())
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO price_changes (price_item_id, old_price_vnd, new_price_vnd, source, actor_user_id, at)
         VALUES ($1, NULL, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(price.get())
    .bind(source.to_string())
    .bind(actor)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// A moderator adds an item to their village's board.
pub async fn create_item(
    db: &Db,
    user: &User,
    village: &Village,
    name: &str,
    unit: &str,
    price: &str,
) -> Result<PriceItem> {
    if !can_moderate(db, user, village.id.0).await? {
        return Err(AppError::Forbidden);
    }
    let mut e = FieldErrors::new();
    let name = e.check("name", clean_line(name, "tên mặt hàng", 120));
    let unit = e.check("unit", clean_line(unit, "đơn vị", 30));
    let price = e.check("price_vnd", Vnd::parse(price));
    e.into_result()?;
    let mut tx = db.begin().await?;
    let id = insert_item(
        &mut tx,
        village.id.0,
        &name.unwrap(),
        &unit.unwrap(),
        price.unwrap(),
        "created",
        Some(user.id.0),
    )
    .await?;
    tx.commit().await?;
    item_by_id(db, id).await
}

const CHANGE_SELECT: &str =
    "SELECT c.id, c.price_item_id, pi.name AS item_name, pi.unit, c.old_price_vnd,
        c.new_price_vnd, c.source, c.proposal_id, u.display_name AS actor, c.at
     FROM price_changes c JOIN price_items pi ON pi.id = c.price_item_id
     LEFT JOIN users u ON u.id = c.actor_user_id";

fn change_from_row(r: &AnyRow) -> Result<PriceChange> {
    Ok(PriceChange {
        id: r.try_get("id")?,
        price_item_id: r.try_get("price_item_id")?,
        item_name: r.try_get("item_name")?,
        unit: r.try_get("unit")?,
        old_price_vnd: r.try_get("old_price_vnd")?,
        new_price_vnd: r.try_get("new_price_vnd")?,
        source: r.try_get("source")?,
        proposal_id: r.try_get("proposal_id")?,
        actor: r.try_get("actor")?,
        at: r.try_get("at")?,
    })
}

pub async fn history_of_village(db: &Db, village_id: i64) -> Result<Vec<PriceChange>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{CHANGE_SELECT} WHERE pi.village_id = $1 ORDER BY c.at DESC, c.id DESC"
    )))
    .bind(village_id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(change_from_row).collect()
}

pub async fn history_of_item(
    conn: &mut sqlx::AnyConnection,
    item_id: i64,
) -> Result<Vec<PriceChange>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{CHANGE_SELECT} WHERE c.price_item_id = $1 ORDER BY c.at DESC, c.id DESC"
    )))
    .bind(item_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(change_from_row).collect()
}

const PROPOSAL_SELECT: &str =
    "SELECT p.id, p.price_item_id, pi.village_id, pi.name AS item_name, pi.unit, p.proposer_user_id,
        u.display_name AS proposer, s.name AS proposer_shop, p.old_price_vnd, p.new_price_vnd,
        p.reason, p.status, p.stage, p.decision, p.decision_reason, d.display_name AS decided_by,
        p.created_at, p.closes_at, p.decided_at, p.waits_for,
        (SELECT COUNT(*) FROM village_moderators vm JOIN users mu ON mu.id = vm.user_id
          WHERE vm.village_id = pi.village_id AND mu.role = 'moderator') AS moderators
     FROM proposals p JOIN price_items pi ON pi.id = p.price_item_id
     JOIN users u ON u.id = p.proposer_user_id JOIN shops s ON s.id = p.proposer_shop_id
     LEFT JOIN users d ON d.id = p.decided_by";

async fn proposal_from_row(db: &Db, r: &AnyRow) -> Result<Proposal> {
    let id: i64 = r.try_get("id")?;
    let vote_rows = sqlx::query(
        "SELECT v.shop_id, s.name AS shop_name, u.display_name AS voter, v.approve, v.at
         FROM votes v JOIN shops s ON s.id = v.shop_id JOIN users u ON u.id = v.user_id
         WHERE v.proposal_id = $1 ORDER BY v.at, s.name",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    let mut votes = Vec::new();
    for v in &vote_rows {
        votes.push(Vote {
            shop_id: v.try_get("shop_id")?,
            shop_name: v.try_get("shop_name")?,
            voter: v.try_get("voter")?,
            approve: v.try_get::<i64, _>("approve")? == 1,
            at: v.try_get("at")?,
        });
    }
    Ok(Proposal {
        id,
        price_item_id: r.try_get("price_item_id")?,
        village_id: r.try_get("village_id")?,
        item_name: r.try_get("item_name")?,
        unit: r.try_get("unit")?,
        proposer_user_id: r.try_get("proposer_user_id")?,
        proposer: r.try_get("proposer")?,
        proposer_shop: r.try_get("proposer_shop")?,
        old_price_vnd: r.try_get("old_price_vnd")?,
        new_price_vnd: r.try_get("new_price_vnd")?,
        reason: r.try_get("reason")?,
        status: ProposalStatus::parse(
            &r.try_get::<String, _>("status")?,
            &r.try_get::<String, _>("stage")?,
            r.try_get::<Option<String>, _>("decision")?.as_deref(),
        ),
        waits_for: if r.try_get::<String, _>("status")? == "open" {
            WaitsFor::parse(r.try_get::<Option<String>, _>("waits_for")?.as_deref())
        } else {
            None
        },
        decider: if r.try_get::<i64, _>("moderators")? > 0 {
            Decider::Moderator
        } else {
            Decider::Admin
        },
        decision: r.try_get("decision")?,
        decision_reason: r.try_get("decision_reason")?,
        decided_by: r.try_get("decided_by")?,
        created_at: r.try_get("created_at")?,
        closes_at: r.try_get("closes_at")?,
        decided_at: r.try_get("decided_at")?,
        yes: votes.iter().filter(|v| v.approve).count() as i64,
        no: votes.iter().filter(|v| !v.approve).count() as i64,
        votes,
    })
}

pub async fn proposal_by_id(db: &Db, id: i64) -> Result<Proposal> {
    close_expired(db).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PROPOSAL_SELECT} WHERE p.id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?
    .ok_or(AppError::NotFound)?;
    proposal_from_row(db, &row).await
}

pub async fn proposals_of_village(db: &Db, village_id: i64) -> Result<Vec<Proposal>> {
    close_expired(db).await?;
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{PROPOSAL_SELECT} WHERE pi.village_id = $1 ORDER BY p.created_at DESC, p.id DESC"
    )))
    .bind(village_id)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        out.push(proposal_from_row(db, r).await?);
    }
    Ok(out)
}

/// The caller's shops that give them a voice on the village's board: active and accepted
/// by the moderator. The first one is named on their proposals and votes.
async fn voting_shops(tx: &mut Tx, user: &User, village_id: i64) -> Result<Vec<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM shops WHERE owner_id = $1 AND village_id = $2 AND active = 1
           AND membership = 'accepted' ORDER BY id",
    )
    .bind(user.id.0)
    .bind(village_id)
    .fetch_all(&mut **tx)
    .await?;
    Ok(ids)
}

/// A seller without an accepted, active shop in the village has no voice on its board.
fn not_a_member() -> AppError {
    AppError::Forbidden
}

/// The people who count toward the quorum: sellers with an active, accepted shop here.
const VOTERS: &str = "SELECT COUNT(DISTINCT owner_id) FROM shops
     WHERE village_id = $1 AND active = 1 AND membership = 'accepted' AND owner_id IS NOT NULL";

async fn voter_count(tx: &mut Tx, village_id: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(VOTERS)
        .bind(village_id)
        .fetch_one(&mut **tx)
        .await?)
}

/// Open a proposal. A change smaller than the board's smallest step is refused; in a village
/// with too few sellers for the quorum it goes straight to the person who decides (the
/// moderator, or the admin), marked as waiting for them.
pub async fn propose(
    db: &Db,
    rules: &BoardRules,
    user: &User,
    item_id: i64,
    price: &str,
    reason: &str,
) -> Result<Proposal> {
    let item = item_by_id(db, item_id).await?;
    let village =
        crate::catalog::store::village_by_id(db, crate::catalog::VillageId(item.village_id))
            .await?;
    let mut e = FieldErrors::new();
    let price = e.check("price_vnd", Vnd::parse(price));
    let reason = e.check("reason", parse_reason(reason, "lý do"));
    if let Some(p) = price {
        let step = rules.min_step(item.price_vnd);
        if p.get() == item.price_vnd {
            e.add("price_vnd", "giá đề xuất trùng với giá đang áp dụng");
        } else if (p.get() - item.price_vnd).abs() < step {
            e.add(
                "price_vnd",
                format!(
                    "giá mới cần khác giá đang áp dụng ({}) ít nhất {}",
                    crate::domain::money::format_vnd(item.price_vnd),
                    crate::domain::money::format_vnd(step)
                ),
            );
        }
    }
    e.into_result()?;
    close_expired(db).await?;
    let mut tx = db.begin().await?;
    let shops = voting_shops(&mut tx, user, item.village_id).await?;
    let Some(shop) = shops.first() else {
        return Err(not_a_member());
    };
    let now = now_ms();
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO proposals (price_item_id, proposer_user_id, proposer_shop_id, old_price_vnd,
           new_price_vnd, reason, status, created_at, closes_at)
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8) RETURNING id",
    )
    .bind(item.id)
    .bind(user.id.0)
    .bind(*shop)
    .bind(item.price_vnd)
    .bind(price.unwrap().get())
    .bind(reason.unwrap())
    .bind(now)
    .bind(now + village.proposal_days * 86_400_000)
    .fetch_one(&mut *tx)
    .await?;
    crate::notify::event(&mut tx, crate::notify::NoticeKind::ProposalOpened, id).await?;
    let voters = voter_count(&mut tx, item.village_id).await?;
    let quorum = Quorum {
        min_yes: village.quorum_min_yes,
        percent: village.quorum_percent,
    };
    if !quorum_reachable(quorum, voters) {
        // The sellers may still say what they think; the decision is a person's.
        wait_for_person(&mut tx, id, WaitsFor::SmallVillage).await?;
    }
    tx.commit().await?;
    proposal_by_id(db, id).await
}

/// Hand an open proposal to the moderator (or the admin), saying why.
async fn wait_for_person(tx: &mut Tx, proposal_id: i64, why: WaitsFor) -> Result<()> {
    sqlx::query("UPDATE proposals SET stage = 'moderator', waits_for = $1 WHERE id = $2")
        .bind(why.code())
        .bind(proposal_id)
        .execute(&mut **tx)
        .await?;
    crate::notify::event(
        tx,
        crate::notify::NoticeKind::ProposalAwaitingModerator,
        proposal_id,
    )
    .await
}

/// The lowest and highest agreed price of an item over the band's days: the price in force
/// at the window's start, every price set within it, and today's.
async fn band_of(tx: &mut Tx, item_id: i64, rules: &BoardRules) -> Result<(i64, i64)> {
    let current: i64 = sqlx::query_scalar("SELECT price_vnd FROM price_items WHERE id = $1")
        .bind(item_id)
        .fetch_one(&mut **tx)
        .await?;
    let since = now_ms() - rules.band_days * 86_400_000;
    let rows: Vec<(Option<i64>, i64)> = sqlx::query_as(
        "SELECT old_price_vnd, new_price_vnd FROM price_changes WHERE price_item_id = $1 AND at >= $2",
    )
    .bind(item_id)
    .bind(since)
    .fetch_all(&mut **tx)
    .await?;
    let prices = rows
        .iter()
        .flat_map(|(old, new)| old.iter().copied().chain([*new]))
        .chain([current]);
    let lo = prices.clone().min().unwrap_or(current);
    let hi = prices.max().unwrap_or(current);
    Ok((lo, hi))
}

/// An open proposal, read under its row lock.
struct Locked {
    item_id: i64,
    village_id: i64,
    old_price: i64,
    new_price: i64,
    stage: String,
    waits_for: Option<WaitsFor>,
    proposer: i64,
}

/// Take the proposal's row lock (PostgreSQL) so concurrent voters are counted one after
/// another; on SQLite the write transaction already holds the database lock.
/// Voting needs an open proposal in its voting time; a moderator may also decide one that
/// waits for them after its voting time.
async fn lock_open(tx: &mut Tx, proposal_id: i64, for_moderator: bool) -> Result<Locked> {
    let locked = sqlx::query(
        "UPDATE proposals SET status = status
         WHERE id = $1 AND status = 'open' AND (closes_at > $2 OR ($3 = 1 AND stage = 'moderator'))",
    )
    .bind(proposal_id)
    .bind(now_ms())
    .bind(i64::from(for_moderator))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if locked == 0 {
        return Err(AppError::Conflict("Đề xuất này đã kết thúc".into()));
    }
    let r = sqlx::query(
        "SELECT p.price_item_id, pi.village_id, p.old_price_vnd, p.new_price_vnd, p.stage,
                p.waits_for, p.proposer_user_id FROM proposals p
         JOIN price_items pi ON pi.id = p.price_item_id WHERE p.id = $1",
    )
    .bind(proposal_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Locked {
        item_id: r.try_get(0)?,
        village_id: r.try_get(1)?,
        old_price: r.try_get(2)?,
        new_price: r.try_get(3)?,
        stage: r.try_get(4)?,
        waits_for: WaitsFor::parse(r.try_get::<Option<String>, _>(5)?.as_deref()),
        proposer: r.try_get(6)?,
    })
}

async fn approve_in_tx(
    tx: &mut Tx,
    proposal_id: i64,
    item_id: i64,
    new_price: i64,
    decision: &str,
    by: Option<i64>,
) -> Result<()> {
    sqlx::query(
        "UPDATE proposals SET status = 'approved', decision = $1, decided_at = $2, decided_by = $3
         WHERE id = $4 AND status = 'open'",
    )
    .bind(decision.to_string())
    .bind(now_ms())
    .bind(by)
    .bind(proposal_id)
    .execute(&mut **tx)
    .await?;
    crate::notify::event(tx, crate::notify::NoticeKind::ProposalApproved, proposal_id).await?;
    let source = if decision == "moderator" {
        "moderator"
    } else {
        "proposal"
    };
    let price = Vnd::new(new_price).map_err(|e| anyhow::anyhow!(e))?;
    apply_price(tx, item_id, price, source, Some(proposal_id), by).await
}

/// Record the caller's vote — one per person, whatever the number of shops they own; a new
/// vote replaces their earlier one — and decide the proposal the moment the vote decides it:
/// approved when the quorum of people is reached (handed to the moderator when the price
/// would leave the band of the last `band_days`), rejected as soon as the "no" votes leave
/// too few people to pass it. In a village too small for the quorum, votes are counsel for
/// the person who decides.
pub async fn vote(
    db: &Db,
    rules: &BoardRules,
    user: &User,
    proposal_id: i64,
    approve: bool,
) -> Result<Proposal> {
    close_expired(db).await?;
    let mut tx = db.begin().await?;
    let p = match lock_open(&mut tx, proposal_id, false).await {
        Err(AppError::Conflict(m)) => {
            let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM proposals WHERE id = $1")
                .bind(proposal_id)
                .fetch_one(&mut *tx)
                .await?;
            return Err(if exists == 0 {
                AppError::NotFound
            } else {
                AppError::Conflict(m)
            });
        }
        other => other?,
    };
    let counsel_only = p.waits_for == Some(WaitsFor::SmallVillage);
    if p.stage == "moderator" && !counsel_only {
        return Err(AppError::Conflict(
            "Biểu quyết đã đủ; đề xuất đang chờ điều phối viên quyết định".into(),
        ));
    }
    let shops = voting_shops(&mut tx, user, p.village_id).await?;
    let Some(shop) = shops.first() else {
        return Err(not_a_member());
    };
    let now = now_ms();
    sqlx::query(
        "INSERT INTO votes (proposal_id, shop_id, user_id, approve, at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (proposal_id, user_id) DO UPDATE SET approve = excluded.approve, at = excluded.at, shop_id = excluded.shop_id",
    )
    .bind(proposal_id)
    .bind(*shop)
    .bind(user.id.0)
    .bind(i64::from(approve))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // Yes votes of people who still have a voice here (a shop closed or refused since
    // does not count).
    if counsel_only {
        tx.commit().await?;
        return proposal_by_id(db, proposal_id).await;
    }
    let (yes, no): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(CASE WHEN v.approve = 1 THEN 1 END), COUNT(CASE WHEN v.approve = 0 THEN 1 END)
         FROM votes v
         WHERE v.proposal_id = $1
           AND EXISTS (SELECT 1 FROM shops s WHERE s.owner_id = v.user_id AND s.village_id = $2
                         AND s.active = 1 AND s.membership = 'accepted')",
    )
    .bind(proposal_id)
    .bind(p.village_id)
    .fetch_one(&mut *tx)
    .await?;
    let voters = voter_count(&mut tx, p.village_id).await?;
    let village = sqlx::query("SELECT quorum_min_yes, quorum_percent FROM villages WHERE id = $1")
        .bind(p.village_id)
        .fetch_one(&mut *tx)
        .await?;
    let quorum = Quorum {
        min_yes: village.try_get(0)?,
        percent: village.try_get(1)?,
    };
    if quorum.reached(yes, voters) {
        let (lo, hi) = band_of(&mut tx, p.item_id, rules).await?;
        if needs_moderator(p.old_price, p.new_price) || beyond_band(lo, hi, p.new_price) {
            wait_for_person(&mut tx, proposal_id, WaitsFor::Band).await?;
        } else {
            approve_in_tx(&mut tx, proposal_id, p.item_id, p.new_price, "quorum", None).await?;
        }
    } else if !can_still_pass(quorum, voters, no) {
        // Passing is impossible: close it now instead of locking the item for days.
        sqlx::query(
            "UPDATE proposals SET status = 'rejected', decision = 'votes', decided_at = $1
             WHERE id = $2 AND status = 'open'",
        )
        .bind(now_ms())
        .bind(proposal_id)
        .execute(&mut *tx)
        .await?;
        crate::notify::event(
            &mut tx,
            crate::notify::NoticeKind::ProposalRejected,
            proposal_id,
        )
        .await?;
    }
    tx.commit().await?;
    proposal_by_id(db, proposal_id).await
}

/// A moderator of the village (or an admin) approves, confirming it (pages ask first):
/// without waiting for the quorum, or after a vote that passed beyond ±30 %.
pub async fn approve_by_moderator(
    db: &Db,
    user: &User,
    proposal_id: i64,
    confirmed: bool,
) -> Result<Proposal> {
    let p = proposal_by_id(db, proposal_id).await?;
    if !can_moderate(db, user, p.village_id).await? {
        return Err(AppError::Forbidden);
    }
    // Nobody decides their own proposal: another moderator of the village or the admin.
    if p.proposer_user_id == user.id.0 && !user.is_admin() {
        return Err(AppError::Forbidden);
    }
    if !confirmed {
        return Err(AppError::field(
            "confirm",
            "Hãy xác nhận: giá mới sẽ áp dụng ngay cho mọi sản phẩm của mặt hàng này",
        ));
    }
    let mut tx = db.begin().await?;
    let l = lock_open(&mut tx, proposal_id, true).await?;
    approve_in_tx(
        &mut tx,
        proposal_id,
        l.item_id,
        l.new_price,
        "moderator",
        Some(user.id.0),
    )
    .await?;
    tx.commit().await?;
    proposal_by_id(db, proposal_id).await
}

/// A moderator of the village (or an admin) rejects an open proposal with a written
/// reason, shown on the public history.
pub async fn reject_by_moderator(
    db: &Db,
    user: &User,
    proposal_id: i64,
    reason: &str,
) -> Result<Proposal> {
    let p = proposal_by_id(db, proposal_id).await?;
    if !can_moderate(db, user, p.village_id).await? {
        return Err(AppError::Forbidden);
    }
    // Nobody decides their own proposal: another moderator of the village or the admin.
    if p.proposer_user_id == user.id.0 && !user.is_admin() {
        return Err(AppError::Forbidden);
    }
    let reason = parse_reason(reason, "lý do từ chối").map_err(|m| AppError::field("reason", m))?;
    let mut tx = db.begin().await?;
    lock_open(&mut tx, proposal_id, true).await?;
    sqlx::query(
        "UPDATE proposals SET status = 'rejected', decision = 'moderator', decision_reason = $1,
           decided_at = $2, decided_by = $3
         WHERE id = $4 AND status = 'open'",
    )
    .bind(reason)
    .bind(now_ms())
    .bind(user.id.0)
    .bind(proposal_id)
    .execute(&mut *tx)
    .await?;
    crate::notify::event(
        &mut tx,
        crate::notify::NoticeKind::ProposalRejected,
        proposal_id,
    )
    .await?;
    tx.commit().await?;
    proposal_by_id(db, proposal_id).await
}

/// The author takes back an open proposal (voting or waiting for the moderator).
pub async fn withdraw(db: &Db, user: &User, proposal_id: i64) -> Result<Proposal> {
    let mut tx = db.begin().await?;
    let p = match lock_open(&mut tx, proposal_id, true).await {
        Ok(p) => p,
        Err(e) => {
            drop(tx);
            // Unknown → 404; decided → 409.
            proposal_by_id(db, proposal_id).await?;
            return Err(e);
        }
    };
    if p.proposer != user.id.0 {
        return Err(AppError::Forbidden);
    }
    sqlx::query(
        "UPDATE proposals SET status = 'rejected', decision = 'withdrawn', decided_at = $1,
           decided_by = $2 WHERE id = $3 AND status = 'open'",
    )
    .bind(now_ms())
    .bind(user.id.0)
    .bind(proposal_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    proposal_by_id(db, proposal_id).await
}

/// Who decides what the vote cannot in a village.
pub async fn decider_of(db: &Db, village_id: i64) -> Result<Decider> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM village_moderators vm JOIN users u ON u.id = vm.user_id
         WHERE vm.village_id = $1 AND u.role = 'moderator'",
    )
    .bind(village_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(if n > 0 {
        Decider::Moderator
    } else {
        Decider::Admin
    })
}

/// Villages nobody moderates: what cannot be decided there falls to the admins.
pub async fn villages_without_moderator(db: &Db) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT v.name, v.slug FROM villages v
         WHERE NOT EXISTS (SELECT 1 FROM village_moderators vm JOIN users u ON u.id = vm.user_id
                           WHERE vm.village_id = v.id AND u.role = 'moderator')
         ORDER BY v.name",
    )
    .fetch_all(&db.pool)
    .await?)
}

/// Proposals whose voting time ran out without a quorum are rejected.
pub async fn close_expired(db: &Db) -> Result<u64> {
    let now = now_ms();
    // Reads call this: look first, so a quiet board never takes SQLite's write lock.
    let due: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM proposals WHERE status = 'open' AND stage = 'voting' AND closes_at <= $1",
    )
    .bind(now)
    .fetch_one(&db.pool)
    .await?;
    if due == 0 {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM proposals WHERE status = 'open' AND stage = 'voting' AND closes_at <= $1 ORDER BY id",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        let closed = sqlx::query(
            "UPDATE proposals SET status = 'rejected', decision = 'expired', decided_at = closes_at
             WHERE id = $1 AND status = 'open' AND stage = 'voting'",
        )
        .bind(*id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if closed == 1 {
            crate::notify::event(&mut tx, crate::notify::NoticeKind::ProposalRejected, *id).await?;
        }
    }
    tx.commit().await?;
    Ok(ids.len() as u64)
}

/// Quorum figures for display: (voters — sellers with an accepted shop, yes votes needed).
pub async fn quorum_status(db: &Db, village: &Village) -> Result<(i64, i64)> {
    let active: i64 = sqlx::query_scalar(VOTERS)
        .bind(village.id.0)
        .fetch_one(&db.pool)
        .await?;
    let q = Quorum {
        min_yes: village.quorum_min_yes,
        percent: village.quorum_percent,
    };
    Ok((active, q.needed(active)))
}
