//! Turning an event into notices: who hears about it, on which channels, with what text.
//! Emails are askama structs with a plain-text and an HTML template.

use askama::Template;
use serde_json::{Value, json};
use sqlx::Row;

use super::NoticeKind;
use super::store::{NewNotice, PendingEvent};
use crate::config::Config;
use crate::db::{Db, Tx};
use crate::domain::PhoneVn;
use crate::domain::money::format_vnd;
use crate::error::Result;

#[derive(Template)]
#[template(path = "emails/notice.txt")]
pub struct EmailText<'a> {
    pub title: &'a str,
    pub greeting: &'a str,
    pub lines: &'a [String],
    pub items: &'a [Item],
    pub total: &'a str,
    pub link: Option<(String, String)>,
    /// (label, URL) of the origin pages of the batches sold.
    pub origins: &'a [(String, String)],
}

#[derive(Template)]
#[template(path = "emails/notice.html")]
pub struct EmailHtml<'a> {
    pub title: &'a str,
    pub greeting: &'a str,
    pub lines: &'a [String],
    pub items: &'a [Item],
    pub total: &'a str,
    pub link: Option<(String, String)>,
    /// (label, URL) of the origin pages of the batches sold.
    pub origins: &'a [(String, String)],
}

/// A line of a message's list: a thing sold ("Màn tuyn × 2 chiếc — 180.000 ₫ — 360.000 ₫"),
/// or the heading of a shop's order on a receipt.
#[derive(Debug, Clone)]
pub struct Item {
    pub heading: bool,
    pub text: String,
}

impl Item {
    pub fn line(text: String) -> Item {
        Item {
            heading: false,
            text,
        }
    }
}

/// One message's content, rendered for every channel.
pub struct Message {
    pub subject: String,
    pub greeting: String,
    pub lines: Vec<String>,
    /// One line per thing sold, headed per shop's order on a receipt of several shops.
    pub items: Vec<Item>,
    pub total: String,
    pub link: Option<(String, String)>,
    /// (label, URL) of the origin pages of the batches sold (the buyer's receipt).
    pub origins: Vec<(String, String)>,
}

impl Message {
    pub fn email(&self) -> Result<Value> {
        let text = EmailText {
            title: &self.subject,
            greeting: &self.greeting,
            lines: &self.lines,
            items: &self.items,
            total: &self.total,
            origins: &self.origins,
            link: self.link.clone(),
        }
        .render()
        .map_err(|e| anyhow::anyhow!("email text: {e}"))?;
        let html = EmailHtml {
            title: &self.subject,
            greeting: &self.greeting,
            lines: &self.lines,
            items: &self.items,
            total: &self.total,
            origins: &self.origins,
            link: self.link.clone(),
        }
        .render()
        .map_err(|e| anyhow::anyhow!("email html: {e}"))?;
        Ok(json!({"subject": self.subject, "text": text, "html": html}))
    }

    /// Telegram HTML: only `<`, `>` and `&` need escaping.
    pub fn telegram(&self) -> Value {
        let esc = crate::domain::text::escape_html;
        let mut t = format!("<b>{}</b>\n", esc(&self.subject));
        for l in &self.lines {
            t.push_str(&esc(l));
            t.push('\n');
        }
        for l in &self.items {
            if l.heading {
                t.push_str(&format!("<b>{}</b>\n", esc(&l.text)));
            } else {
                t.push_str(&format!("• {}\n", esc(&l.text)));
            }
        }
        if !self.total.is_empty() {
            t.push_str(&format!("<b>Tổng: {}</b>\n", esc(&self.total)));
        }
        for (label, url) in &self.origins {
            t.push_str(&format!("<a href=\"{}\">{}</a>\n", esc(url), esc(label)));
        }
        if let Some((url, label)) = &self.link {
            t.push_str(&format!("<a href=\"{}\">{}</a>", esc(url), esc(label)));
        }
        json!({"text": t})
    }
}

struct ShopTarget {
    id: i64,
    name: String,
    /// The owner's name: mails greet the person, not the shop.
    person: Option<String>,
    email: Option<String>,
    phone: String,
    zalo_phone: Option<String>,
    telegram: Option<String>,
    notify_email: bool,
    notify_zalo: bool,
    notify_telegram: bool,
}

async fn shop_target(tx: &mut Tx, shop_id: i64) -> Result<ShopTarget> {
    let r = sqlx::query(
        "SELECT s.id, s.name, CASE WHEN s.email_confirmed = 1 THEN s.email END AS email, s.phone,
           s.zalo_phone, s.telegram_chat_id, s.notify_email, s.notify_zalo, s.notify_telegram,
           u.display_name
         FROM shops s LEFT JOIN users u ON u.id = s.owner_id WHERE s.id = $1",
    )
    .bind(shop_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(ShopTarget {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        person: r
            .try_get::<Option<String>, _>("display_name")?
            .filter(|n| !n.trim().is_empty()),
        email: r.try_get("email")?,
        phone: r.try_get("phone")?,
        zalo_phone: r.try_get("zalo_phone")?,
        telegram: r.try_get("telegram_chat_id")?,
        notify_email: r.try_get::<i64, _>("notify_email")? == 1,
        notify_zalo: r.try_get::<i64, _>("notify_zalo")? == 1,
        notify_telegram: r.try_get::<i64, _>("notify_telegram")? == 1,
    })
}

impl ShopTarget {
    /// "Chào Nguyễn Thị Hạnh," (the owner), or the shop's name when it has no owner yet.
    fn greeting(&self) -> String {
        format!("Chào {},", self.person.as_deref().unwrap_or(&self.name))
    }
}

/// Notices for a shop's chosen channels. `zalo` carries template data when the message has
/// a Zalo template (only paid orders do). `force_all` ignores the shop's choices (fallback).
fn for_shop(
    cfg: &Config,
    shop: &ShopTarget,
    key: &str,
    kind: &str,
    msg: &Message,
    zalo: Option<Value>,
    force_all: bool,
) -> Result<Vec<NewNotice>> {
    let mut out = Vec::new();
    if let Some(email) = shop
        .email
        .as_ref()
        .filter(|_| shop.notify_email || force_all)
    {
        out.push(NewNotice {
            key: format!("{key}:email"),
            kind: kind.into(),
            channel: "email",
            recipient: email.clone(),
            shop_id: Some(shop.id),
            payload: msg.email()?,
        });
    }
    if cfg.notify.telegram.is_some()
        && let Some(chat) = shop
            .telegram
            .as_ref()
            .filter(|_| shop.notify_telegram || force_all)
    {
        out.push(NewNotice {
            key: format!("{key}:telegram"),
            kind: kind.into(),
            channel: "telegram",
            recipient: chat.clone(),
            shop_id: Some(shop.id),
            payload: msg.telegram(),
        });
    }
    if let (Some(z), Some(data)) = (&cfg.notify.zalo, zalo)
        && shop.notify_zalo
        && !force_all
    {
        let phone = shop
            .zalo_phone
            .clone()
            .unwrap_or_else(|| shop.phone.clone());
        if let Ok(p) = PhoneVn::parse(&phone) {
            out.push(NewNotice {
                key: format!("{key}:zalo"),
                kind: kind.into(),
                channel: "zalo",
                recipient: p.international(),
                shop_id: Some(shop.id),
                payload: json!({"template_id": z.template_order_paid, "template_data": data}),
            });
        }
    }
    Ok(out)
}

/// Notices about a seller's account itself (password reset codes, a registration tried with
/// their login): the account's email if it has one, else every shop of theirs on its
/// confirmed email and Telegram (with `everywhere`, both). Written straight into the outbox in the caller's
/// transaction (the content carries a one-time code, so it cannot be rendered later).
pub async fn account_notices(
    tx: &mut Tx,
    cfg: &Config,
    user_id: i64,
    key: &str,
    kind: &str,
    msg: &Message,
    everywhere: bool,
) -> Result<usize> {
    let email: Option<String> = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(&mut **tx)
        .await?;
    let mut out = Vec::new();
    if let Some(email) = email {
        out.push(NewNotice {
            key: format!("{key}:email"),
            kind: kind.into(),
            channel: "email",
            recipient: email,
            shop_id: None,
            payload: msg.email()?,
        });
    }
    if out.is_empty() || everywhere {
        let shops: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM shops WHERE owner_id = $1 ORDER BY id")
                .bind(user_id)
                .fetch_all(&mut **tx)
                .await?;
        for shop_id in shops {
            let shop = shop_target(tx, shop_id).await?;
            out.extend(for_shop(
                cfg,
                &shop,
                &format!("{key}:shop-{shop_id}"),
                kind,
                msg,
                None,
                true,
            )?);
        }
    }
    let mut n = 0;
    for notice in &out {
        if super::store::insert(tx, notice).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// A shop's email was changed: the old (confirmed) address is told, with the new one
/// masked, so an owner whose session was stolen hears of it before anything else moves.
pub async fn email_changed(
    tx: &mut Tx,
    cfg: &Config,
    shop: i64,
    old: &str,
    new: Option<&str>,
) -> Result<()> {
    let shown = match new {
        Some(n) => {
            let (user, domain) = n.split_once('@').unwrap_or((n, ""));
            let first: String = user.chars().take(1).collect();
            format!("{first}•••@{domain}")
        }
        None => "(không còn email)".into(),
    };
    let msg = Message {
        subject: "Email của cửa hàng vừa được đổi — Chợ Làng".into(),
        greeting: shop_target(tx, shop).await?.greeting(),
        lines: vec![
            format!("Email nhận thông báo của cửa hàng vừa được đổi sang {shown}."),
            "Từ nay thông báo không gửi về địa chỉ này nữa.".into(),
            "Nếu không phải bạn đổi, hãy đổi mật khẩu và báo cho Chợ Làng ngay.".into(),
        ],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: Some((
            format!("{}/quan-ly", cfg.public_url),
            "Mở trang quản lý".into(),
        )),
    };
    super::store::insert(
        tx,
        &NewNotice {
            key: format!("shop-email-changed:{}:{}", shop, crate::domain::now_ms()),
            kind: "shop_email_changed".into(),
            channel: "email",
            recipient: old.to_string(),
            shop_id: Some(shop),
            payload: msg.email()?,
        },
    )
    .await?;
    Ok(())
}

/// The link that confirms a shop's new email address, mailed to that address only.
pub async fn shop_email_confirmation(
    tx: &mut Tx,
    cfg: &Config,
    shop_id: i64,
    email: &str,
    token: &str,
) -> Result<()> {
    let name: String = sqlx::query_scalar("SELECT name FROM shops WHERE id = $1")
        .bind(shop_id)
        .fetch_one(&mut **tx)
        .await?;
    let msg = Message {
        subject: "Xác nhận email nhận thông báo — Chợ Làng".into(),
        greeting: format!("Chào {name},"),
        lines: vec![
            "Email này vừa được đặt làm nơi nhận thông báo đơn hàng của cửa hàng trên Chợ Làng."
                .into(),
            "Nếu đúng là bạn, hãy bấm liên kết dưới đây. Nếu không, hãy bỏ qua thư này.".into(),
        ],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: Some((
            format!("{}/xac-nhan-email/{token}", cfg.public_url),
            "Xác nhận email".into(),
        )),
    };
    super::store::insert(
        tx,
        &NewNotice {
            key: format!("shop-email:{shop_id}:{}", &token[..12]),
            kind: "shop_email_confirm".into(),
            channel: "email",
            recipient: email.to_string(),
            shop_id: Some(shop_id),
            payload: msg.email()?,
        },
    )
    .await?;
    Ok(())
}

/// A shop's notices: on the channels it chose; when none of those can deliver, on any channel
/// that can; when none can, the case is kept for the admin (never silently dropped).
#[allow(clippy::too_many_arguments)]
async fn reach_shop(
    tx: &mut Tx,
    cfg: &Config,
    shop: &ShopTarget,
    key: &str,
    kind: &str,
    msg: &Message,
    zalo: Option<Value>,
) -> Result<Vec<NewNotice>> {
    let mut out = for_shop(cfg, shop, key, kind, msg, zalo, false)?;
    if out.is_empty() {
        out = for_shop(cfg, shop, key, kind, msg, None, true)?;
    }
    if out.is_empty() {
        sqlx::query(
            "INSERT INTO unreachable_notices (shop_id, kind, event_key, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (event_key) DO NOTHING",
        )
        .bind(shop.id)
        .bind(kind.to_string())
        .bind(key.to_string())
        .bind(crate::domain::now_ms())
        .execute(&mut **tx)
        .await?;
        tracing::warn!(shop = shop.id, kind, "no channel can reach this shop");
    }
    Ok(out)
}

async fn admins_emails(tx: &mut Tx) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT email FROM users WHERE role = 'admin' AND email IS NOT NULL ORDER BY id",
    )
    .fetch_all(&mut **tx)
    .await?)
}

/// An alert to every admin by email (a platform-side failure someone must look at).
pub async fn admin_alert(
    tx: &mut Tx,
    key: &str,
    kind: &str,
    subject: &str,
    text: &str,
) -> Result<()> {
    let admins = admins_emails(tx).await?;
    let msg = Message {
        subject: subject.into(),
        greeting: "Chào ban quản lý,".into(),
        lines: vec![text.into()],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: None,
    };
    for n in admin_notices(&admins, key, kind, &msg)? {
        super::store::insert(tx, &n).await?;
    }
    Ok(())
}

fn admin_notices(
    admins: &[String],
    key: &str,
    kind: &str,
    msg: &Message,
) -> Result<Vec<NewNotice>> {
    admins
        .iter()
        .map(|a| {
            Ok(NewNotice {
                key: format!("{key}:admin:{a}"),
                kind: kind.into(),
                channel: "email",
                recipient: a.clone(),
                shop_id: None,
                payload: msg.email()?,
            })
        })
        .collect()
}

/// "Màn tuyn 1m6 × 2 chiếc — 180.000 ₫ — 360.000 ₫" from an `order_lines` row.
fn item_line(l: &sqlx::any::AnyRow) -> Result<String> {
    let qty: i64 = l.try_get("quantity")?;
    let price: i64 = l.try_get("unit_price_vnd")?;
    Ok(format!(
        "{} × {} {} — {} — {}",
        l.try_get::<String, _>("name")?,
        qty,
        l.try_get::<String, _>("unit")?,
        format_vnd(price),
        format_vnd(price.saturating_mul(qty))
    ))
}

/// "Giao hàng: Người bán tự giao — 20.000 ₫" for an order with a way to ship.
fn shipping_line(o: &sqlx::any::AnyRow) -> Result<Option<String>> {
    let Some(way) = o
        .try_get::<Option<String>, _>("shipping_method")?
        .as_deref()
        .and_then(crate::domain::shipping_method::Method::parse)
    else {
        return Ok(None);
    };
    let fee: i64 = o.try_get("shipping_vnd")?;
    let fee = if fee == 0 {
        "miễn phí".to_string()
    } else {
        format_vnd(fee)
    };
    Ok(Some(format!("Giao hàng: {} — {fee}", way.words())))
}

/// The buyer's one receipt for a payment: every shop's order (its code, the shop, its
/// phone, each line with unit price and amount), the purchase code, the delivery address,
/// the origin pages of the batches and the signed link to the order page. `None` unless
/// `order` is the first paid order of its purchase (the receipt goes out once; an order the
/// seller cancelled before payment is neither on it nor its sender).
async fn receipt(tx: &mut Tx, cfg: &Config, order: i64) -> Result<Option<Message>> {
    let base = &cfg.public_url;
    let c = sqlx::query(
        "SELECT c.id, c.buyer_name, c.buyer_address, p.code AS pay_code, p.amount_paid_vnd,
           (SELECT MIN(o2.id) FROM orders o2 WHERE o2.checkout_id = c.id
              AND o2.status NOT IN ('pending_payment', 'cancelled', 'expired')) AS first
         FROM orders o JOIN checkouts c ON c.id = o.checkout_id
         JOIN payments p ON p.checkout_id = c.id WHERE o.id = $1",
    )
    .bind(order)
    .fetch_one(&mut **tx)
    .await?;
    if c.try_get::<Option<i64>, _>("first")? != Some(order) {
        return Ok(None);
    }
    let pay: String = c.try_get("pay_code")?;
    let orders = sqlx::query(
        "SELECT o.id, o.code, o.total_vnd, o.shipping_vnd, o.shipping_method, s.name, s.phone
         FROM orders o JOIN shops s ON s.id = o.shop_id
         WHERE o.checkout_id = $1 AND o.status NOT IN ('pending_payment', 'cancelled', 'expired')
         ORDER BY o.id",
    )
    .bind(c.try_get::<i64, _>("id")?)
    .fetch_all(&mut **tx)
    .await?;
    let mut items = Vec::new();
    let mut origins: Vec<(String, String)> = Vec::new();
    for o in &orders {
        let phone: String = o.try_get("phone")?;
        items.push(Item {
            heading: true,
            text: format!(
                "Đơn {} — {} — điện thoại {} — {}",
                o.try_get::<String, _>("code")?,
                o.try_get::<String, _>("name")?,
                crate::domain::format_phone(&phone),
                format_vnd(o.try_get("total_vnd")?)
            ),
        });
        let lines = sqlx::query(
            "SELECT name, unit, quantity, unit_price_vnd, batch_code FROM order_lines
             WHERE order_id = $1 ORDER BY id",
        )
        .bind(o.try_get::<i64, _>("id")?)
        .fetch_all(&mut **tx)
        .await?;
        for l in &lines {
            items.push(Item::line(item_line(l)?));
            if let Some(b) = l.try_get::<Option<String>, _>("batch_code")? {
                let name: String = l.try_get("name")?;
                let entry = (
                    format!("Nguồn gốc {name} (lô {b})"),
                    format!("{base}/truy-xuat/{b}"),
                );
                if !origins.contains(&entry) {
                    origins.push(entry);
                }
            }
        }
        if let Some(way) = shipping_line(o)? {
            items.push(Item::line(way));
        }
    }
    let paid = format_vnd(c.try_get("amount_paid_vnd")?);
    Ok(Some(Message {
        subject: format!("Biên nhận đơn hàng {pay} — Chợ Làng"),
        greeting: format!("Chào {},", c.try_get::<String, _>("buyer_name")?),
        lines: vec![
            format!("Chợ Làng đã nhận {paid} cho đơn {pay}. Cảm ơn bạn!"),
            "Chợ Làng giữ số tiền này cho đến khi bạn nhận được hàng.".into(),
            format!("Giao đến: {}", c.try_get::<String, _>("buyer_address")?),
        ],
        items,
        total: paid,
        origins,
        // The signed link proves the buyer without an account (buyer protection: confirm
        // receipt, raise a request, give a refund account).
        link: Some((
            format!(
                "{base}/don-hang/{pay}?t={}",
                crate::domain::buyer_token(&cfg.secret_key, &pay)
            ),
            "Theo dõi đơn hàng, xác nhận đã nhận hàng".into(),
        )),
    }))
}

/// The notices an event produces (computed inside the expanding transaction): each kind has
/// its renderer, and the match has no catch-all, so a new kind cannot go unrendered.
pub async fn notices_for(tx: &mut Tx, cfg: &Config, ev: &PendingEvent) -> Result<Vec<NewNotice>> {
    let Some(kind) = NoticeKind::parse(&ev.kind) else {
        // Only a row written by hand (or by a newer version) can get here.
        tracing::warn!(kind = %ev.kind, "unknown notice event ignored");
        return Ok(vec![]);
    };
    let key = format!("{}:{}", ev.kind, ev.ref_id);
    match kind {
        NoticeKind::OrderPaid | NoticeKind::OrderClosed => {
            order_notices(tx, cfg, ev, kind, &key).await
        }
        NoticeKind::RefundDue | NoticeKind::UnmatchedTransfer => {
            money_back_notices(tx, cfg, ev, kind, &key).await
        }
        NoticeKind::ProposalOpened
        | NoticeKind::ProposalApproved
        | NoticeKind::ProposalRejected => proposal_notices(tx, cfg, ev, kind, &key).await,
        NoticeKind::ProposalAwaitingModerator
        | NoticeKind::ShopJoinRequest
        | NoticeKind::ItemJoinRequest => moderator_notices(tx, cfg, ev, kind, &key).await,
        NoticeKind::PayoutSent
        | NoticeKind::PayoutPaid
        | NoticeKind::PayoutFailed
        | NoticeKind::PayoutFlagged => payout_notices(tx, cfg, ev, kind, &key).await,
        NoticeKind::Protection => protection_notices(tx, cfg, ev, &key).await,
        NoticeKind::RefundSent | NoticeKind::RefundPaid | NoticeKind::RefundFailed => {
            refund_payout_notices(tx, cfg, ev, kind, &key).await
        }
        NoticeKind::PayoutAccountChanged => payout_account_notices(tx, cfg, ev, &key).await,
        NoticeKind::Test => test_notices(tx, cfg, ev, &key).await,
        NoticeKind::ShopMembership => membership_notices(tx, cfg, ev, &key).await,
        NoticeKind::ShipmentProblem => shipment_problem_notices(tx, cfg, ev, &key).await,
    }
}

/// A paid order (seller, buyer's receipt) or one closed unpaid.
async fn order_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    kind: NoticeKind,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let base = &cfg.public_url;
    let o = sqlx::query(
        "SELECT o.code, o.shop_id, o.status, o.total_vnd, o.shipping_vnd, o.shipping_method,
                c.buyer_name, c.buyer_phone, c.buyer_address, c.buyer_email, c.note
         FROM orders o JOIN checkouts c ON c.id = o.checkout_id WHERE o.id = $1",
    )
    .bind(ev.ref_id)
    .fetch_one(&mut **tx)
    .await?;
    let code: String = o.try_get("code")?;
    let total = format_vnd(o.try_get("total_vnd")?);
    let lines = sqlx::query("SELECT name, unit, quantity, unit_price_vnd, batch_code FROM order_lines WHERE order_id = $1 ORDER BY id")
        .bind(ev.ref_id)
        .fetch_all(&mut **tx)
        .await?;
    let mut items: Vec<Item> = lines
        .iter()
        .map(|l| item_line(l).map(Item::line))
        .collect::<Result<_>>()?;
    // The way to ship the buyer chose, and its fee (inside the total).
    if let Some(way) = shipping_line(&o)? {
        items.push(Item::line(way));
    }
    let shop = shop_target(tx, o.try_get("shop_id")?).await?;
    let buyer_name: String = o.try_get("buyer_name")?;
    let paid = kind == NoticeKind::OrderPaid;
    let seller_msg = Message {
        subject: if paid {
            format!("Đơn hàng mới đã thanh toán — {code}")
        } else {
            format!("Đơn {code} đã hết hạn hoặc bị hủy")
        },
        greeting: shop.greeting(),
        lines: if paid {
            vec![
                format!(
                    "Người mua: {buyer_name} · {}",
                    o.try_get::<String, _>("buyer_phone")?
                ),
                format!("Giao đến: {}", o.try_get::<String, _>("buyer_address")?),
                format!("Ghi chú: {}", o.try_get::<String, _>("note")?),
                "Tiền đã về tài khoản Chợ Làng; hãy nhận đơn và chuẩn bị hàng.".into(),
            ]
        } else {
            vec!["Đơn chưa được thanh toán và đã đóng; hàng đã được trả lại kho.".into()]
        },
        items: items.clone(),
        total: total.clone(),
        origins: Vec::new(),
        link: Some((
            format!("{base}/quan-ly/don-hang#don-{code}"),
            "Xem đơn trong trang quản lý".into(),
        )),
    };
    let zalo =
        paid.then(|| json!({"order_code": code, "customer_name": buyer_name, "amount": total}));
    let mut out = reach_shop(
        tx,
        cfg,
        &shop,
        &format!("{key}:seller"),
        &ev.kind,
        &seller_msg,
        zalo,
    )
    .await?;
    // A buyer's typed address is mailed only about money that actually arrived:
    // otherwise anyone could make us mail any address ("order closed").
    let money_in: i64 = sqlx::query_scalar(
        "SELECT p.amount_paid_vnd FROM payments p JOIN orders o ON o.checkout_id = p.checkout_id WHERE o.id = $1",
    )
    .bind(ev.ref_id)
    .fetch_one(&mut **tx)
    .await?;
    let buyer_email = o
        .try_get::<Option<String>, _>("buyer_email")?
        .filter(|_| paid || money_in > 0);
    if let Some(email) = buyer_email.clone().filter(|_| paid) {
        // One receipt per payment, sent with its first shop's order.
        if let Some(receipt) = receipt(tx, cfg, ev.ref_id).await? {
            out.push(NewNotice {
                key: format!("{key}:buyer:email"),
                kind: ev.kind.clone(),
                channel: "email",
                recipient: email,
                shop_id: None,
                payload: receipt.email()?,
            });
        }
    } else if let Some(email) = buyer_email {
        let buyer_msg = Message {
            subject: format!("Đơn {code} đã đóng"),
            greeting: format!("Chào {buyer_name},"),
            lines: vec![
                format!("Đơn {code} đã đóng (hết hạn hoặc người bán đã hủy)."),
                "Số tiền bạn đã chuyển sẽ được Chợ Làng hoàn lại vào tài khoản đã chuyển.".into(),
            ],
            items,
            total,
            origins: Vec::new(),
            // The signed link proves the buyer without an account (a refund account).
            link: Some((
                format!(
                    "{base}/don-hang/{code}?t={}",
                    crate::domain::buyer_token(&cfg.secret_key, &code)
                ),
                "Mở đơn hàng".into(),
            )),
        };
        out.push(NewNotice {
            key: format!("{key}:buyer:email"),
            kind: ev.kind.clone(),
            channel: "email",
            recipient: email,
            shop_id: None,
            payload: buyer_msg.email()?,
        });
    }
    Ok(out)
}

/// Money owed back (the buyer asked for a refund account; admins) or a transfer nothing matched.
async fn money_back_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    kind: NoticeKind,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let base = &cfg.public_url;
    let admins = admins_emails(tx).await?;
    // The buyer of a cancelled paid order is asked where the money should go back.
    let mut out = Vec::new();
    if kind == NoticeKind::RefundDue
        && let Some(r) = sqlx::query(
            "SELECT c.buyer_name, c.buyer_email, o.code FROM payments p
             JOIN checkouts c ON c.id = p.checkout_id
             JOIN orders o ON o.checkout_id = c.id AND o.status = 'refund_due'
             WHERE p.id = $1 AND c.buyer_email IS NOT NULL ORDER BY o.id LIMIT 1",
        )
        .bind(ev.ref_id)
        .fetch_optional(&mut **tx)
        .await?
    {
        let code: String = r.try_get("code")?;
        let msg = Message {
            subject: format!("Đơn {code} đã hủy — Chợ Làng sẽ hoàn tiền cho bạn"),
            greeting: format!("Chào {},", r.try_get::<String, _>("buyer_name")?),
            lines: vec![
                format!("Người bán đã hủy đơn {code}. Số tiền bạn đã trả sẽ được hoàn lại."),
                "Hãy mở đơn hàng và cho Chợ Làng số tài khoản nhận tiền hoàn.".into(),
            ],
            items: vec![],
            total: String::new(),
            origins: Vec::new(),
            link: Some((
                format!(
                    "{base}/don-hang/{code}?t={}",
                    crate::domain::buyer_token(&cfg.secret_key, &code)
                ),
                "Cho số tài khoản nhận tiền hoàn".into(),
            )),
        };
        out.push(NewNotice {
            key: format!("{key}:buyer:email"),
            kind: ev.kind.clone(),
            channel: "email",
            recipient: r.try_get("buyer_email")?,
            shop_id: None,
            payload: msg.email()?,
        });
    }
    let msg = if kind == NoticeKind::RefundDue {
        let r =
            sqlx::query("SELECT code, amount_paid_vnd, refunded_vnd FROM payments WHERE id = $1")
                .bind(ev.ref_id)
                .fetch_one(&mut **tx)
                .await?;
        let code: String = r.try_get("code")?;
        Message {
            subject: format!("Cần hoàn tiền cho thanh toán {code}"),
            greeting: "Chào quản trị viên,".into(),
            lines: vec![format!(
                "Thanh toán {code} đã nhận {} và cần được hoàn lại.",
                format_vnd(r.try_get::<i64, _>("amount_paid_vnd")?)
            )],
            items: vec![],
            total: String::new(),
            origins: Vec::new(),
            link: Some((
                format!("{base}/quan-tri/doi-soat"),
                "Mở trang đối soát".into(),
            )),
        }
    } else {
        let r = sqlx::query("SELECT amount_vnd, description FROM bank_transactions WHERE id = $1")
            .bind(ev.ref_id)
            .fetch_one(&mut **tx)
            .await?;
        Message {
            subject: "Có chuyển khoản chưa khớp đơn".into(),
            greeting: "Chào quản trị viên,".into(),
            lines: vec![format!(
                "Số tiền {} với nội dung “{}” chưa khớp thanh toán nào.",
                format_vnd(r.try_get("amount_vnd")?),
                r.try_get::<String, _>("description")?
            )],
            items: vec![],
            total: String::new(),
            origins: Vec::new(),
            link: Some((
                format!("{base}/quan-tri/doi-soat"),
                "Mở trang đối soát".into(),
            )),
        }
    };
    out.extend(admin_notices(&admins, key, &ev.kind, &msg)?);
    Ok(out)
}

/// A price proposal opened, approved or rejected on the village's board.
async fn proposal_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    kind: NoticeKind,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let base = &cfg.public_url;
    let p = sqlx::query(
        "SELECT pi.name, pi.unit, pi.village_id, p.old_price_vnd, p.new_price_vnd, p.reason, v.slug,
           p.decision, p.decision_reason
         FROM proposals p JOIN price_items pi ON pi.id = p.price_item_id JOIN villages v ON v.id = pi.village_id WHERE p.id = $1",
    )
    .bind(ev.ref_id)
    .fetch_one(&mut **tx)
    .await?;
    let item: String = p.try_get("name")?;
    let change = format!(
        "{} → {}",
        format_vnd(p.try_get("old_price_vnd")?),
        format_vnd(p.try_get("new_price_vnd")?)
    );
    let (subject, line) = match kind {
        NoticeKind::ProposalOpened => (
            format!("Đề xuất giá mới: {item}"),
            format!(
                "Đề xuất {change}. Lý do: {}. Mời cửa hàng biểu quyết.",
                p.try_get::<String, _>("reason")?
            ),
        ),
        NoticeKind::ProposalApproved => (
            format!("Giá mới đã được thông qua: {item}"),
            format!("Giá {change} áp dụng từ bây giờ cho mọi sản phẩm của mặt hàng."),
        ),
        _ => (
            format!("Đề xuất giá không được thông qua: {item}"),
            match p.try_get::<Option<String>, _>("decision_reason")? {
                Some(reason) => {
                    format!("Điều phối viên từ chối đề xuất {change}. Lý do: {reason}.")
                }
                None if p.try_get::<Option<String>, _>("decision")?.as_deref() == Some("votes") => {
                    format!("Đề xuất {change} không thể đủ phiếu vì đã đủ số người không đồng ý.")
                }
                None => format!("Đề xuất {change} đã kết thúc mà không đủ phiếu."),
            },
        ),
    };
    let shop_ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM shops WHERE village_id = $1 AND active = 1 AND membership = 'accepted' AND owner_id IS NOT NULL ORDER BY id")
        .bind(p.try_get::<i64, _>("village_id")?)
        .fetch_all(&mut **tx)
        .await?;
    let mut out = Vec::new();
    for sid in shop_ids {
        let shop = shop_target(tx, sid).await?;
        let msg = Message {
            subject: subject.clone(),
            greeting: shop.greeting(),
            lines: vec![line.clone()],
            items: vec![],
            total: String::new(),
            origins: Vec::new(),
            link: Some((
                format!("{base}/lang/{}/bang-gia", p.try_get::<String, _>("slug")?),
                "Xem bảng giá của làng".into(),
            )),
        };
        out.extend(
            reach_shop(
                tx,
                cfg,
                &shop,
                &format!("{key}:shop-{sid}"),
                &ev.kind,
                &msg,
                None,
            )
            .await?,
        );
    }
    Ok(out)
}

/// Something waits for the village's moderator: a proposal, a shop asking to join, a product under another item's name.
async fn moderator_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    kind: NoticeKind,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let base = &cfg.public_url;
    // The village's moderators (and the admins) who have an email address.
    let (village_id, slug, subject, line): (i64, String, String, String) = if kind
        == NoticeKind::ItemJoinRequest
    {
        let r = sqlx::query(
            "SELECT s.village_id, v.slug, p.name, pi.name AS item, s.name AS shop
                 FROM products p JOIN shops s ON s.id = p.shop_id
                 JOIN villages v ON v.id = s.village_id
                 JOIN price_items pi ON pi.id = p.price_item_id WHERE p.id = $1",
        )
        .bind(ev.ref_id)
        .fetch_one(&mut **tx)
        .await?;
        let name: String = r.try_get("name")?;
        let item: String = r.try_get("item")?;
        (
            r.try_get("village_id")?,
            r.try_get("slug")?,
            format!("Sản phẩm xin dùng giá của mặt hàng: {name}"),
            format!(
                "Cửa hàng “{}” đăng “{name}” với giá của mặt hàng “{item}” (tên khác nhau). Sản phẩm chưa hiện lên chợ cho đến khi điều phối viên đồng ý hoặc từ chối.",
                r.try_get::<String, _>("shop")?
            ),
        )
    } else if kind == NoticeKind::ShopJoinRequest {
        let r = sqlx::query(
            "SELECT s.village_id, v.slug, s.name, COALESCE(u.display_name, '') AS owner
                 FROM shops s JOIN villages v ON v.id = s.village_id
                 LEFT JOIN users u ON u.id = s.owner_id WHERE s.id = $1",
        )
        .bind(ev.ref_id)
        .fetch_one(&mut **tx)
        .await?;
        let name: String = r.try_get("name")?;
        (
            r.try_get("village_id")?,
            r.try_get("slug")?,
            format!("Cửa hàng xin tham gia bảng giá: {name}"),
            format!(
                "{} mở cửa hàng “{name}” và chờ điều phối viên chấp nhận.",
                r.try_get::<String, _>("owner")?
            ),
        )
    } else {
        let r = sqlx::query(
            "SELECT pi.village_id, v.slug, pi.name, p.old_price_vnd, p.new_price_vnd, p.waits_for
                 FROM proposals p JOIN price_items pi ON pi.id = p.price_item_id
                 JOIN villages v ON v.id = pi.village_id WHERE p.id = $1",
        )
        .bind(ev.ref_id)
        .fetch_one(&mut **tx)
        .await?;
        let item: String = r.try_get("name")?;
        (
            r.try_get("village_id")?,
            r.try_get("slug")?,
            format!("Đề xuất giá chờ điều phối viên: {item}"),
            if r.try_get::<Option<String>, _>("waits_for")?.as_deref() == Some("small") {
                format!(
                    "Đề xuất {} → {}: làng chưa đủ người bán để tự biểu quyết, nên cần điều phối viên (hoặc quản trị) duyệt hoặc từ chối.",
                    format_vnd(r.try_get("old_price_vnd")?),
                    format_vnd(r.try_get("new_price_vnd")?)
                )
            } else {
                format!(
                    "Đề xuất {} → {} đã đủ phiếu nhưng lệch quá 30% so với giá gần đây: cần điều phối viên duyệt hoặc từ chối.",
                    format_vnd(r.try_get("old_price_vnd")?),
                    format_vnd(r.try_get("new_price_vnd")?)
                )
            },
        )
    };
    let emails: Vec<String> = sqlx::query_scalar(
        "SELECT u.email FROM users u WHERE u.email IS NOT NULL AND (u.role = 'admin'
           OR u.id IN (SELECT user_id FROM village_moderators WHERE village_id = $1))
         ORDER BY u.id",
    )
    .bind(village_id)
    .fetch_all(&mut **tx)
    .await?;
    let msg = Message {
        subject,
        greeting: "Chào điều phối viên,".into(),
        lines: vec![line],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: Some((
            format!("{base}/lang/{slug}/bang-gia"),
            "Mở bảng giá của làng".into(),
        )),
    };
    let mut out = Vec::new();
    for email in emails {
        out.push(NewNotice {
            key: format!("{key}:moderator:{email}"),
            kind: ev.kind.clone(),
            channel: "email",
            recipient: email,
            shop_id: None,
            payload: msg.email()?,
        });
    }
    Ok(out)
}

/// A payout sent, paid, failed or flagged.
async fn payout_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    kind: NoticeKind,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let base = &cfg.public_url;
    let r = sqlx::query(
        "SELECT code, shop_id, amount_vnd, account_no, bank_bin, last_error, flag FROM payouts WHERE id = $1",
    )
    .bind(ev.ref_id)
    .fetch_one(&mut **tx)
    .await?;
    let code: String = r.try_get("code")?;
    let amount = format_vnd(r.try_get("amount_vnd")?);
    let account: String = r.try_get("account_no")?;
    let tail = format!(
        "{} ••••{}",
        crate::domain::banks::bank_name(&r.try_get::<String, _>("bank_bin")?),
        &account[account.len().saturating_sub(4)..]
    );
    let shop = shop_target(tx, r.try_get("shop_id")?).await?;
    let (subject, line) = match kind {
        NoticeKind::PayoutSent => (
            format!("Chợ Làng đang chuyển {amount} cho cửa hàng"),
            format!("Khoản chi {code}: {amount} đang được chuyển vào tài khoản {tail}."),
        ),
        NoticeKind::PayoutPaid => (
            format!("Đã chuyển {amount} vào tài khoản của cửa hàng"),
            format!("Khoản chi {code}: {amount} đã vào tài khoản {tail}."),
        ),
        NoticeKind::PayoutFailed => (
            format!("Khoản chi {code} chưa chuyển được"),
            format!(
                "Khoản chi {code} ({amount}) không chuyển được ({}); số tiền đã trở lại số dư có thể rút và sẽ được chi ở đợt sau. Hãy kiểm tra tài khoản nhận tiền.",
                r.try_get::<Option<String>, _>("last_error")?
                    .unwrap_or_default()
            ),
        ),
        _ => (
            format!("Khoản chi {code} cần kiểm tra"),
            r.try_get::<Option<String>, _>("flag")?.unwrap_or_default(),
        ),
    };
    let msg = Message {
        subject,
        greeting: shop.greeting(),
        lines: vec![line],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: Some((format!("{base}/quan-ly/doanh-thu"), "Xem doanh thu".into())),
    };
    let mut out = Vec::new();
    if kind != NoticeKind::PayoutFlagged {
        out.extend(
            reach_shop(
                tx,
                cfg,
                &shop,
                &format!("{key}:seller"),
                &ev.kind,
                &msg,
                None,
            )
            .await?,
        );
    }
    if kind == NoticeKind::PayoutSent
        && let (Some(_), Some(template)) = (&cfg.notify.zalo, &cfg.payouts.zalo_template_sent)
        && shop.notify_zalo
        && let Ok(p) = PhoneVn::parse(shop.zalo_phone.as_deref().unwrap_or(&shop.phone))
    {
        out.push(NewNotice {
            key: format!("{key}:seller:zalo"),
            kind: ev.kind.clone(),
            channel: "zalo",
            recipient: p.international(),
            shop_id: Some(shop.id),
            payload: json!({"template_id": template, "template_data": {"payout_code": code, "amount": amount}}),
        });
    }
    if matches!(kind, NoticeKind::PayoutFailed | NoticeKind::PayoutFlagged) {
        let admins = admins_emails(tx).await?;
        out.extend(admin_notices(&admins, key, &ev.kind, &msg)?);
    }
    Ok(out)
}

/// A refund payout to a buyer sent, paid or failed.
async fn refund_payout_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    kind: NoticeKind,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let base = &cfg.public_url;
    let r = sqlx::query(
        "SELECT rp.code, rp.amount_vnd, rp.bank_bin, rp.account_no, rp.last_error, c.buyer_name,
           c.buyer_email, COALESCE(o.code, (SELECT MIN(o2.code) FROM orders o2 WHERE o2.checkout_id = c.id)) AS order_code
         FROM refund_payouts rp JOIN payments p ON p.id = rp.payment_id
         JOIN checkouts c ON c.id = p.checkout_id LEFT JOIN orders o ON o.id = rp.order_id
         WHERE rp.id = $1",
    )
    .bind(ev.ref_id)
    .fetch_one(&mut **tx)
    .await?;
    let Some(email) = r.try_get::<Option<String>, _>("buyer_email")? else {
        return Ok(Vec::new());
    };
    let code: String = r.try_get("code")?;
    let order_code: String = r.try_get("order_code")?;
    let amount = format_vnd(r.try_get("amount_vnd")?);
    let account = crate::domain::banks::masked_account(
        &r.try_get::<String, _>("bank_bin")?,
        &r.try_get::<String, _>("account_no")?,
    );
    let (subject, line) = match kind {
        NoticeKind::RefundSent => (
            format!("Chợ Làng đang hoàn {amount} cho bạn"),
            format!("Khoản hoàn {code}: {amount} đang được chuyển vào {account}."),
        ),
        NoticeKind::RefundPaid => (
            format!("Đã hoàn {amount} vào tài khoản của bạn"),
            format!("Khoản hoàn {code}: {amount} đã vào {account}."),
        ),
        _ => (
            format!("Chưa hoàn được {amount} — cần số tài khoản khác"),
            format!(
                "Khoản hoàn {code} vào {account} không thành công. Hãy mở đơn hàng và cho số tài khoản khác; Chợ Làng sẽ chuyển lại."
            ),
        ),
    };
    let msg = Message {
        subject,
        greeting: format!("Chào {},", r.try_get::<String, _>("buyer_name")?),
        lines: vec![line],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: Some((
            format!(
                "{base}/don-hang/{order_code}?t={}",
                crate::domain::buyer_token(&cfg.secret_key, &order_code)
            ),
            "Mở đơn hàng".into(),
        )),
    };
    Ok(vec![NewNotice {
        key: format!("{key}:buyer:email"),
        kind: ev.kind.clone(),
        channel: "email",
        recipient: email,
        shop_id: None,
        payload: msg.email()?,
    }])
}

/// A shop's payout account changed (held a while, the owner told on every channel).
async fn payout_account_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let base = &cfg.public_url;
    let shop = shop_target(tx, ev.ref_id).await?;
    let r = sqlx::query(
        "SELECT s.bank_bin, s.bank_account_no, s.payout_hold_until, u.email AS owner_email,
           s.email_previous
         FROM shops s LEFT JOIN users u ON u.id = s.owner_id WHERE s.id = $1",
    )
    .bind(ev.ref_id)
    .fetch_one(&mut **tx)
    .await?;
    let account: String = r
        .try_get::<Option<String>, _>("bank_account_no")?
        .unwrap_or_default();
    let tail = account[account.len().saturating_sub(4)..].to_string();
    let bank = crate::domain::banks::bank_name(
        &r.try_get::<Option<String>, _>("bank_bin")?
            .unwrap_or_default(),
    );
    let from = crate::domain::format_vn_time(
        r.try_get::<Option<i64>, _>("payout_hold_until")?
            .unwrap_or(0),
    );
    let msg = Message {
        subject: "Tài khoản nhận tiền của cửa hàng vừa được đổi".into(),
        greeting: shop.greeting(),
        lines: vec![
            format!("Tài khoản nhận tiền vừa được đổi sang {bank}, số tài khoản ••••{tail}."),
            format!("Để an toàn, tiền chỉ được chuyển vào tài khoản mới từ {from}."),
            "Nếu không phải bạn đổi, hãy đổi mật khẩu và báo cho Chợ Làng ngay.".into(),
        ],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: Some((format!("{base}/quan-ly/doanh-thu"), "Xem doanh thu".into())),
    };
    // Every channel of the shop, whatever the seller chose (an attacker may have):
    // its confirmed email, the one it had before an unconfirmed change, the owner's
    // own login email, Telegram, Zalo.
    let event_key = format!("{key}:event-{}", ev.id);
    let mut out = for_shop(cfg, &shop, &event_key, &ev.kind, &msg, None, true)?;
    for (label, column) in [
        ("previous-email", "email_previous"),
        ("owner-email", "owner_email"),
    ] {
        if let Some(address) = r.try_get::<Option<String>, _>(column)?
            && !out.iter().any(|n| n.recipient == address)
        {
            out.push(NewNotice {
                key: format!("{event_key}:{label}"),
                kind: ev.kind.clone(),
                channel: "email",
                recipient: address,
                shop_id: Some(shop.id),
                payload: msg.email()?,
            });
        }
    }
    if let (Some(_), Some(template)) = (&cfg.notify.zalo, &cfg.payouts.zalo_template_account)
        && let Ok(p) = PhoneVn::parse(shop.zalo_phone.as_deref().unwrap_or(&shop.phone))
    {
        out.push(NewNotice {
            key: format!("{event_key}:zalo"),
            kind: ev.kind.clone(),
            channel: "zalo",
            recipient: p.international(),
            shop_id: Some(shop.id),
            payload: json!({"template_id": template,
                "template_data": {"bank": bank, "account_tail": tail, "from": from}}),
        });
    }
    if out.is_empty() {
        // Nobody can be told: kept for the admins, who are told now.
        sqlx::query(
            "INSERT INTO unreachable_notices (shop_id, kind, event_key, at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (event_key) DO NOTHING",
        )
        .bind(shop.id)
        .bind(ev.kind.clone())
        .bind(event_key.clone())
        .bind(crate::domain::now_ms())
        .execute(&mut **tx)
        .await?;
        tracing::warn!(
            shop = shop.id,
            "payout account changed and no channel reaches the shop"
        );
        let admins = admins_emails(tx).await?;
        let admin_msg = Message {
            subject: format!(
                "Không báo được cho cửa hàng {}: tài khoản nhận tiền vừa đổi",
                shop.name
            ),
            greeting: "Chào quản trị viên,".into(),
            lines: vec![
                format!(
                    "Tài khoản nhận tiền của {} vừa được đổi sang {bank} ••••{tail}, nhưng cửa hàng không có kênh nào nhận được thông báo.",
                    shop.name
                ),
                format!(
                    "Hãy gọi cho cửa hàng ({}) để xác nhận trước {from}.",
                    shop.phone
                ),
            ],
            items: vec![],
            total: String::new(),
            origins: Vec::new(),
            link: Some((
                format!("{base}/quan-tri/thong-bao"),
                "Xem thông báo lỗi".into(),
            )),
        };
        out.extend(admin_notices(&admins, &event_key, &ev.kind, &admin_msg)?);
    }
    Ok(out)
}

/// A seller's test notice, on every channel.
async fn test_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let base = &cfg.public_url;
    let shop = shop_target(tx, ev.ref_id).await?;
    let msg = Message {
        subject: "Thông báo thử từ Chợ Làng".into(),
        greeting: shop.greeting(),
        lines: vec!["Nếu bạn nhận được tin này, kênh thông báo đã hoạt động.".into()],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: Some((format!("{base}/quan-ly"), "Trang quản lý cửa hàng".into())),
    };
    let zalo = Some(json!({"order_code": "THU", "customer_name": "Chợ Làng", "amount": "0 ₫"}));
    reach_shop(
        tx,
        cfg,
        &shop,
        &format!("{key}:event-{}", ev.id),
        "test",
        &msg,
        zalo,
    )
    .await
}

/// The village's moderator decided a shop's request to join its board.
async fn membership_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let base = &cfg.public_url;
    // The village's moderator decided a shop's request to join its board.
    let r = sqlx::query(
        "SELECT s.membership, COALESCE(s.membership_reason, '') AS reason, v.name AS village
         FROM shops s JOIN villages v ON v.id = s.village_id WHERE s.id = $1",
    )
    .bind(ev.ref_id)
    .fetch_one(&mut **tx)
    .await?;
    let shop = shop_target(tx, ev.ref_id).await?;
    let village: String = r.try_get("village")?;
    let reason: String = r.try_get("reason")?;
    let accepted = r.try_get::<String, _>("membership")? == "accepted";
    let msg = Message {
        subject: if accepted {
            format!("Cửa hàng {} đã được làng {village} chấp nhận", shop.name)
        } else {
            format!("Làng {village} chưa chấp nhận cửa hàng {}", shop.name)
        },
        greeting: shop.greeting(),
        lines: if accepted {
            vec!["Từ nay bạn có thể đăng sản phẩm theo bảng giá của làng và biểu quyết giá.".into()]
        } else {
            let mut l = vec!["Điều phối viên của làng chưa chấp nhận cửa hàng này.".into()];
            if !reason.is_empty() {
                l.push(format!("Lý do: {reason}"));
            }
            l.push("Hãy liên hệ trưởng thôn hoặc tổ công nghệ số của làng.".into());
            l
        },
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: Some((format!("{base}/quan-ly"), "Mở trang quản lý".into())),
    };
    reach_shop(tx, cfg, &shop, key, &ev.kind, &msg, None).await
}

/// A carrier reports a parcel failed, lost or damaged: the shop and the admins are told.
async fn shipment_problem_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let r = sqlx::query(
        "SELECT o.code, o.shop_id, sh.carrier, sh.carrier_code, COALESCE(sh.carrier_status, '') AS status
         FROM shipments sh JOIN orders o ON o.id = sh.order_id WHERE sh.id = $1",
    )
    .bind(ev.ref_id)
    .fetch_one(&mut **tx)
    .await?;
    let code: String = r.try_get("code")?;
    let carrier = r.try_get::<String, _>("carrier")?.to_uppercase();
    let parcel: Option<String> = r.try_get("carrier_code")?;
    let status: String = r.try_get("status")?;
    let shop = shop_target(tx, r.try_get("shop_id")?).await?;
    let what = format!(
        "{carrier} báo đơn {code} (mã vận đơn {}) gặp sự cố: {status}.",
        parcel.as_deref().unwrap_or("—")
    );
    let msg = Message {
        subject: format!("Đơn {code} gửi {carrier} gặp sự cố"),
        greeting: shop.greeting(),
        lines: vec![
            what.clone(),
            "Hãy gọi cho hãng vận chuyển và người mua; ban quản lý Chợ Làng cũng đã được báo."
                .into(),
        ],
        items: vec![],
        total: String::new(),
        origins: Vec::new(),
        link: Some((
            format!("{}/quan-ly/don-hang#don-{code}", cfg.public_url),
            "Mở đơn hàng".into(),
        )),
    };
    let mut out = reach_shop(tx, cfg, &shop, key, &ev.kind, &msg, None).await?;
    let admin = Message {
        greeting: "Chào ban quản lý,".into(),
        link: None,
        ..msg
    };
    out.extend(admin_notices(
        &admins_emails(tx).await?,
        key,
        &ev.kind,
        &admin,
    )?);
    Ok(out)
}

/// After a permanent Zalo failure, reach the shop on its other channels even if the seller
/// had turned them off (the same idempotency keys, so nothing is sent twice).
pub async fn fallback_for_shop(
    db: &Db,
    cfg: &Config,
    key: &str,
    kind: &str,
    shop_id: i64,
    payload: &Value,
) -> Result<usize> {
    let mut tx = db.begin().await?;
    let shop = shop_target(&mut tx, shop_id).await?;
    let data = &payload["template_data"];
    let msg = Message {
        subject: format!(
            "Đơn hàng mới đã thanh toán — {}",
            data["order_code"].as_str().unwrap_or("")
        ),
        greeting: shop.greeting(),
        lines: vec![
            format!(
                "Người mua: {}",
                data["customer_name"].as_str().unwrap_or("")
            ),
            "Tin Zalo không gửi được tới số của bạn, nên Chợ Làng báo qua kênh này.".into(),
        ],
        items: vec![],
        total: data["amount"].as_str().unwrap_or("").to_string(),
        origins: Vec::new(),
        link: Some((
            format!("{}/quan-ly/don-hang", cfg.public_url),
            "Xem đơn trong trang quản lý".into(),
        )),
    };
    let base_key = key.trim_end_matches(":zalo");
    let mut n = 0;
    for notice in for_shop(cfg, &shop, base_key, kind, &msg, None, true)? {
        if super::store::insert(&mut tx, &notice).await? {
            n += 1;
        }
    }
    tx.commit().await?;
    Ok(n)
}

/// A step of buyer protection (`protection_events`): the seller hears of the buyer's steps on
/// every channel it has, the buyer (by email, when given) of the seller's and the decision,
/// the village's moderators and the admins of escalations.
async fn protection_notices(
    tx: &mut Tx,
    cfg: &Config,
    ev: &PendingEvent,
    key: &str,
) -> Result<Vec<NewNotice>> {
    let base = &cfg.public_url;
    let r = sqlx::query(
        "SELECT e.action, e.actor, e.text, e.amount_vnd, o.code, o.shop_id, c.buyer_name, c.buyer_email,
           s.village_id
         FROM protection_events e JOIN orders o ON o.id = e.order_id
         JOIN checkouts c ON c.id = o.checkout_id JOIN shops s ON s.id = o.shop_id WHERE e.id = $1",
    )
    .bind(ev.ref_id)
    .fetch_one(&mut **tx)
    .await?;
    let action: String = r.try_get("action")?;
    let actor: String = r.try_get("actor")?;
    let code: String = r.try_get("code")?;
    let words = step_words(
        &action,
        &actor,
        &r.try_get::<String, _>("text")?,
        r.try_get("amount_vnd")?,
    );
    let to_seller = matches!(
        action.as_str(),
        "received"
            | "extended"
            | "request_opened"
            | "buyer_accepted_reply"
            | "escalated"
            | "decided"
            | "return_sent"
    );
    let to_buyer = matches!(
        action.as_str(),
        "seller_accepted"
            | "seller_replied"
            | "escalated"
            | "decided"
            | "return_received"
            | "return_never_sent"
    );
    let subject = match action.as_str() {
        "request_opened" => format!("Đơn {code}: người mua gửi yêu cầu trả hàng / hoàn tiền"),
        "received" => format!("Đơn {code}: người mua đã nhận được hàng"),
        "escalated" => format!("Đơn {code}: yêu cầu cần ban quản lý quyết định"),
        "decided" => format!("Đơn {code}: đã có quyết định về yêu cầu"),
        _ => format!("Đơn {code}: cập nhật bảo vệ người mua"),
    };
    let mut out = Vec::new();
    if to_seller {
        let shop = shop_target(tx, r.try_get("shop_id")?).await?;
        let msg = Message {
            subject: subject.clone(),
            greeting: shop.greeting(),
            lines: vec![words.clone()],
            items: vec![],
            total: String::new(),
            origins: Vec::new(),
            link: Some((
                format!("{base}/quan-ly/don-hang#don-{code}"),
                "Mở đơn hàng".into(),
            )),
        };
        out.extend(
            reach_shop(
                tx,
                cfg,
                &shop,
                &format!("{key}:seller"),
                &ev.kind,
                &msg,
                None,
            )
            .await?,
        );
    }
    if to_buyer && let Some(email) = r.try_get::<Option<String>, _>("buyer_email")? {
        let msg = Message {
            subject: subject.clone(),
            greeting: format!("Chào {},", r.try_get::<String, _>("buyer_name")?),
            lines: vec![words.clone()],
            items: vec![],
            total: String::new(),
            origins: Vec::new(),
            link: Some((
                format!(
                    "{base}/don-hang/{code}?t={}",
                    crate::domain::buyer_token(&cfg.secret_key, &code)
                ),
                "Mở đơn hàng".into(),
            )),
        };
        out.push(NewNotice {
            key: format!("{key}:buyer:email"),
            kind: ev.kind.clone(),
            channel: "email",
            recipient: email,
            shop_id: None,
            payload: msg.email()?,
        });
    }
    if action == "escalated" {
        let mut emails: Vec<String> = sqlx::query_scalar(
            "SELECT u.email FROM village_moderators m JOIN users u ON u.id = m.user_id
             WHERE m.village_id = $1 AND u.email IS NOT NULL ORDER BY u.id",
        )
        .bind(r.try_get::<i64, _>("village_id")?)
        .fetch_all(&mut **tx)
        .await?;
        for a in admins_emails(tx).await? {
            if !emails.contains(&a) {
                emails.push(a);
            }
        }
        let msg = Message {
            subject,
            greeting: "Chào ban quản lý,".into(),
            lines: vec![words],
            items: vec![],
            total: String::new(),
            origins: Vec::new(),
            link: Some((
                format!("{base}/quan-tri/yeu-cau"),
                "Xem và quyết định".into(),
            )),
        };
        out.extend(admin_notices(&emails, key, &ev.kind, &msg)?);
    }
    Ok(out)
}

pub fn step_words(action: &str, actor: &str, text: &str, amount: Option<i64>) -> String {
    let money = amount.map(format_vnd).unwrap_or_default();
    let who = match actor {
        "buyer" => "Người mua",
        "seller" => "Người bán",
        "moderator" => "Người điều phối của làng",
        "admin" => "Ban quản trị Chợ Làng",
        _ => "Chợ Làng",
    };
    match action {
        "received" => "Người mua xác nhận đã nhận được hàng".into(),
        "extended" => "Người mua báo chưa nhận được hàng: gia hạn thêm 3 ngày".into(),
        "request_opened" => {
            format!("Người mua gửi yêu cầu trả hàng / hoàn tiền ({money}) — {text}")
        }
        "seller_accepted" => format!("Người bán đồng ý hoàn {money}"),
        "seller_replied" => format!("Người bán trả lời: {text}"),
        "buyer_accepted_reply" => "Người mua chấp nhận trả lời của người bán".into(),
        "escalated" if text.is_empty() => "Người mua nhờ ban quản lý quyết định".into(),
        "escalated" => format!("Chuyển ban quản lý quyết định: {text}"),
        "decided" => format!("{who} quyết định — {text}"),
        "return_sent" => format!("Người mua đã gửi trả hàng, mã vận đơn {text}"),
        "return_received" => format!("{who}: người bán đã nhận lại hàng; hoàn {money}"),
        "return_never_sent" => text.to_string(),
        "refund_account" => format!("Người mua cho số tài khoản nhận tiền hoàn: {text}"),
        _ => format!("{who}: {text}"),
    }
}
