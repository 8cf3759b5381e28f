//! A seller's money in her words: what she sold, what Chợ Làng will pay her and when, one
//! line per order and per payout. No accounts, no double entries: `lines` (pure) walks the
//! orders in the order their money was released and the payouts in the order they were
//! made, so each released order is told which payout carried it (first released, first
//! paid); `load` reads the facts of one shop.

use serde::Serialize;
use sqlx::Row;

use super::schedule::{Schedule, day_words, vn_day};
use super::state::PayoutStatus;
use crate::db::Db;
use crate::error::Result;

/// One order's money, as the ledger recorded it.
#[derive(Debug, Clone)]
pub struct OrderMoney {
    pub code: String,
    pub at: i64,
    /// What the buyer paid for it, less any part given back.
    pub sold_vnd: i64,
    /// Given back to the buyer in full (cancelled after payment, refund decided).
    pub refunded: bool,
    pub shipped: bool,
    /// A buyer's request holds the money.
    pub held: bool,
    /// When its money became the shop's, and how much (after the fee and any debt).
    pub released: Option<(i64, i64)>,
}

/// One payout to the shop's bank.
#[derive(Debug, Clone)]
pub struct PayoutMoney {
    pub code: String,
    pub at: i64,
    pub amount_vnd: i64,
    pub status: PayoutStatus,
    pub paid_at: Option<i64>,
    /// "Agribank ••••3456".
    pub to: String,
}

/// Where an order's money is, in the words the page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    /// Paid; the seller has not sent it yet.
    ToShip,
    /// Sent; Chợ Làng holds the money until the buyer has the goods.
    AwaitingBuyer,
    /// A buyer's request holds it.
    Held,
    /// The shop's; goes out in the next payout run.
    NextRun,
    /// In a payout on its way to the bank.
    Sending,
    /// Paid into the bank (the payout's day).
    Paid,
    /// Given back to the buyer.
    Refunded,
    /// A payout that did not go through: the money is back and goes out next time.
    Failed,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Line {
    pub at: i64,
    /// `order` or `payout`.
    pub kind: &'static str,
    pub code: String,
    /// What the line is worth to the shop: the order's amount, or the payout's.
    pub amount_vnd: i64,
    pub state: LineState,
    /// The state in words, with its date: "đã chuyển ngày 07/12".
    pub words: String,
    /// For a payout: where it went ("Agribank ••••3456").
    #[serde(skip_serializing_if = "String::is_empty")]
    pub to: String,
}

/// Newest first: each order with where its money is, each payout with how it went.
pub fn lines(orders: &[OrderMoney], payouts: &[PayoutMoney], next_run: &str) -> Vec<Line> {
    // Money that left by payout, first made first: paid ones, then those on their way.
    let mut sent: Vec<&PayoutMoney> = payouts
        .iter()
        .filter(|p| p.status != PayoutStatus::Failed)
        .collect();
    sent.sort_by_key(|p| (p.status != PayoutStatus::Paid, p.at));
    let mut carried: Vec<(i64, &PayoutMoney)> = Vec::new();
    let mut sum = 0i64;
    for p in sent {
        sum += p.amount_vnd;
        carried.push((sum, p));
    }
    let mut released: Vec<&OrderMoney> = orders.iter().filter(|o| o.released.is_some()).collect();
    released.sort_by_key(|o| o.released.map(|r| r.0));
    let mut running = 0i64;
    let mut by_payout: Vec<(&str, Option<&PayoutMoney>)> = Vec::new();
    for o in released {
        running += o.released.map(|r| r.1).unwrap_or(0);
        let p = carried.iter().find(|(c, _)| running <= *c).map(|(_, p)| *p);
        by_payout.push((o.code.as_str(), p));
    }
    let mut out = Vec::new();
    for o in orders {
        let (state, words) = if o.refunded {
            (
                LineState::Refunded,
                "đã trả lại tiền cho người mua".to_string(),
            )
        } else if o.released.is_some() {
            match by_payout
                .iter()
                .find(|(c, _)| *c == o.code)
                .and_then(|(_, p)| *p)
            {
                Some(p) if p.status == PayoutStatus::Paid => (
                    LineState::Paid,
                    format!(
                        "đã chuyển ngày {}",
                        crate::domain::format_vn_date(p.paid_at.unwrap_or(p.at))
                    ),
                ),
                Some(_) => (LineState::Sending, "đang chuyển vào tài khoản".into()),
                None => (
                    LineState::NextRun,
                    format!("sẽ chuyển đợt tới ({next_run})"),
                ),
            }
        } else if o.held {
            (
                LineState::Held,
                "người mua đang hỏi về đơn này — tạm giữ".into(),
            )
        } else if o.shipped {
            (LineState::AwaitingBuyer, "chờ người mua nhận hàng".into())
        } else {
            (LineState::ToShip, "chờ bạn gửi hàng".into())
        };
        let amount = match o.released {
            Some((_, net)) if !o.refunded => net,
            _ => o.sold_vnd,
        };
        out.push(Line {
            at: o.at,
            kind: "order",
            code: o.code.clone(),
            amount_vnd: amount,
            state,
            words,
            to: String::new(),
        });
    }
    for p in payouts {
        let (state, words) = match p.status {
            PayoutStatus::Paid => (
                LineState::Paid,
                format!(
                    "đã chuyển ngày {}",
                    crate::domain::format_vn_date(p.paid_at.unwrap_or(p.at))
                ),
            ),
            PayoutStatus::Failed => (
                LineState::Failed,
                "không chuyển được — tiền vẫn là của bạn, sẽ chuyển lại".into(),
            ),
            _ => (LineState::Sending, "đang chuyển vào tài khoản".into()),
        };
        out.push(Line {
            at: p.at,
            kind: "payout",
            code: p.code.clone(),
            amount_vnd: p.amount_vnd,
            state,
            words,
            to: p.to.clone(),
        });
    }
    out.sort_by_key(|l| std::cmp::Reverse(l.at));
    out
}

/// The page's and the API's answer for one shop.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Statement {
    /// Sold and not given back, since the shop began.
    pub sold_vnd: i64,
    /// The shop's, waiting for the next run.
    pub next_payout_vnd: i64,
    /// The day of the next run that can pay it ("thứ Hai 07/12"), or empty when nothing
    /// can be paid (no account, below the smallest payout).
    pub next_payout_on: String,
    /// "Agribank ••••3456", or empty without an account.
    pub account: String,
    /// Paid by buyers, held until they have the goods.
    pub waiting_vnd: i64,
    /// On its way to the bank.
    pub sending_vnd: i64,
    /// What the shop owes (given back after its money was released), taken from the next payout.
    pub owed_vnd: i64,
    /// Chợ Làng's fee taken so far.
    pub fees_vnd: i64,
    /// The smallest payout: less waits.
    pub min_payout_vnd: i64,
    /// "thứ Hai" — the days the treasurer pays.
    pub schedule: String,
    pub lines: Vec<Line>,
}

impl Statement {
    /// The sentence the page leads with.
    pub fn headline(&self) -> Vec<String> {
        use crate::domain::money::format_vnd;
        let mut out = vec![format!("Bạn đã bán {}.", format_vnd(self.sold_vnd))];
        let net = self.next_payout_vnd - self.owed_vnd;
        if net > 0 {
            if self.account.is_empty() {
                out.push(format!(
                    "Chợ Làng đang giữ {} cho bạn. Hãy thêm tài khoản ngân hàng ở dưới để nhận tiền.",
                    format_vnd(net)
                ));
            } else if net < self.min_payout_vnd {
                out.push(format!(
                    "Chợ Làng đang giữ {} cho bạn; khi đủ {} sẽ chuyển vào {}.",
                    format_vnd(net),
                    format_vnd(self.min_payout_vnd),
                    self.account
                ));
            } else {
                out.push(format!(
                    "Chợ Làng sẽ chuyển {} vào {} trong đợt chi ngày {}.",
                    format_vnd(net),
                    self.account,
                    self.next_payout_on
                ));
            }
        }
        if self.sending_vnd > 0 {
            out.push(format!(
                "{} đang được chuyển vào tài khoản của bạn.",
                format_vnd(self.sending_vnd)
            ));
        }
        if self.waiting_vnd > 0 {
            out.push(format!(
                "Còn {} chờ người mua nhận hàng rồi mới chuyển cho bạn.",
                format_vnd(self.waiting_vnd)
            ));
        }
        if self.owed_vnd > 0 {
            out.push(format!(
                "Bạn còn phải trả lại {} cho người mua; số này được trừ vào lần chuyển tới.",
                format_vnd(self.owed_vnd)
            ));
        }
        out
    }
}

/// Everything one shop's money page shows.
pub async fn load(
    db: &Db,
    shop: i64,
    schedule: &Schedule,
    min_payout_vnd: i64,
    now: i64,
) -> Result<Statement> {
    let b = crate::ledger::store::shop_balance(db, shop).await?;
    let s =
        sqlx::query("SELECT bank_bin, bank_account_no, payout_hold_until FROM shops WHERE id = $1")
            .bind(shop)
            .fetch_one(&db.pool)
            .await?;
    let account = match (
        s.try_get::<Option<String>, _>("bank_bin")?,
        s.try_get::<Option<String>, _>("bank_account_no")?,
    ) {
        (Some(bin), Some(no)) => super::masked_account(&bin, &no),
        _ => String::new(),
    };
    let hold: Option<i64> = s.try_get("payout_hold_until")?;
    let today = vn_day(now);
    let ran_today: bool =
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM payout_runs WHERE created_at >= $1")
            .bind(start_of_vn_day(now))
            .fetch_one(&db.pool)
            .await?
            > 0;
    let mut next = schedule.next_run(today, ran_today);
    if let Some(h) = hold.filter(|h| *h > now) {
        next = next.max(schedule.first_after(vn_day(h)));
    }
    let next_words = day_words(next);

    let rows = sqlx::query(
        "SELECT o.id, o.code, o.created_at, o.status, o.total_vnd, o.refund_owed_vnd, o.shipped_at,
           o.released_at,
           (SELECT COUNT(*) FROM order_requests r WHERE r.order_id = o.id
              AND r.status IN ('open', 'replied', 'escalated', 'awaiting_return', 'return_sent'))
              AS open_requests,
           (SELECT CAST(COALESCE(-SUM(e.amount_vnd), 0) AS BIGINT) FROM ledger_entries e
              JOIN ledger_journals j ON j.id = e.journal_id
              WHERE j.order_id = o.id AND j.kind = 'order_released'
                AND e.account IN ('shop_available', 'shop_owed')) AS net
         FROM orders o
         WHERE o.shop_id = $1 AND o.status NOT IN ('pending_payment', 'expired')
           AND (o.status <> 'cancelled' OR EXISTS (SELECT 1 FROM ledger_journals j
                 WHERE j.order_id = o.id))
         ORDER BY o.id DESC LIMIT 500",
    )
    .bind(shop)
    .fetch_all(&db.pool)
    .await?;
    let mut orders = Vec::new();
    let mut sold = 0i64;
    for r in &rows {
        let status: String = r.try_get("status")?;
        let refunded = matches!(status.as_str(), "refund_due" | "refunded" | "cancelled");
        let total: i64 = r.try_get("total_vnd")?;
        let part: i64 = r.try_get("refund_owed_vnd")?;
        let released_at: Option<i64> = r.try_get("released_at")?;
        if !refunded {
            sold += total - part;
        }
        orders.push(OrderMoney {
            code: r.try_get("code")?,
            at: r.try_get("created_at")?,
            sold_vnd: total - part,
            refunded,
            shipped: r.try_get::<Option<i64>, _>("shipped_at")?.is_some()
                || matches!(status.as_str(), "shipped" | "delivered"),
            held: r.try_get::<i64, _>("open_requests")? > 0,
            released: match released_at {
                Some(at) => Some((at, r.try_get("net")?)),
                None => None,
            },
        });
    }
    let payouts: Vec<PayoutMoney> = super::store::payouts_of_shop(db, shop, 200)
        .await?
        .into_iter()
        .map(|p| PayoutMoney {
            to: super::masked_account(&p.bank.bin, &p.bank.account_no),
            code: p.code,
            at: p.created_at,
            amount_vnd: p.amount_vnd,
            status: p.status,
            paid_at: p.paid_at,
        })
        .collect();
    let can_pay = !account.is_empty() && b.available_vnd - b.owed_vnd >= min_payout_vnd;
    Ok(Statement {
        sold_vnd: sold,
        next_payout_vnd: b.available_vnd,
        next_payout_on: if can_pay {
            next_words.clone()
        } else {
            String::new()
        },
        account,
        waiting_vnd: b.pending_vnd,
        sending_vnd: b.in_transit_vnd,
        owed_vnd: b.owed_vnd,
        fees_vnd: b.fees_vnd,
        min_payout_vnd,
        schedule: schedule.words(),
        lines: lines(&orders, &payouts, &next_words),
    })
}

/// Midnight in Hà Nội of the day `ms` falls on, as a stored time.
fn start_of_vn_day(ms: i64) -> i64 {
    let day = vn_day(ms);
    day.and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_local_timezone(crate::domain::vn_offset())
        .single()
        .map(|t| t.timestamp_millis())
        .unwrap_or(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(code: &str, at: i64, sold: i64, released: Option<(i64, i64)>) -> OrderMoney {
        OrderMoney {
            code: code.into(),
            at,
            sold_vnd: sold,
            refunded: false,
            shipped: true,
            held: false,
            released,
        }
    }

    fn payout(code: &str, at: i64, amount: i64, status: PayoutStatus) -> PayoutMoney {
        PayoutMoney {
            code: code.into(),
            at,
            amount_vnd: amount,
            status,
            paid_at: (status == PayoutStatus::Paid).then_some(at + 1),
            to: "Agribank ••••3456".into(),
        }
    }

    #[test]
    fn released_orders_are_told_which_payout_carried_them() {
        let orders = vec![
            order("A-1", 1, 100_000, Some((10, 98_000))),
            order("B-1", 2, 200_000, Some((20, 196_000))),
            order("C-1", 3, 50_000, Some((30, 49_000))),
            order("D-1", 4, 70_000, None),
        ];
        let payouts = vec![
            payout("CLPO1", 25, 294_000, PayoutStatus::Paid),
            payout("CLPO2", 35, 49_000, PayoutStatus::Sent),
        ];
        let l = lines(&orders, &payouts, "thứ Hai 14/12");
        let of = |c: &str| l.iter().find(|x| x.code == c).unwrap().clone();
        assert_eq!(of("A-1").state, LineState::Paid);
        assert_eq!(of("A-1").amount_vnd, 98_000);
        assert_eq!(of("B-1").state, LineState::Paid);
        assert_eq!(of("C-1").state, LineState::Sending);
        assert_eq!(of("D-1").state, LineState::AwaitingBuyer);
        assert_eq!(of("D-1").words, "chờ người mua nhận hàng");
        // Newest first, payouts among the orders.
        assert_eq!(l[0].code, "CLPO2");
        // Without the second payout, C-1 waits for the next run.
        let l = lines(&orders, &payouts[..1], "thứ Hai 14/12");
        let c = l.iter().find(|x| x.code == "C-1").unwrap();
        assert_eq!(c.state, LineState::NextRun);
        assert_eq!(c.words, "sẽ chuyển đợt tới (thứ Hai 14/12)");
    }

    #[test]
    fn a_failed_payout_carries_nothing_and_says_the_money_is_still_hers() {
        let orders = vec![order("A-1", 1, 100_000, Some((10, 100_000)))];
        let payouts = vec![payout("CLPO1", 25, 100_000, PayoutStatus::Failed)];
        let l = lines(&orders, &payouts, "thứ Hai 14/12");
        assert_eq!(l[1].state, LineState::NextRun);
        assert!(l[0].words.contains("tiền vẫn là của bạn"));
    }

    #[test]
    fn the_headline_promises_a_day_only_when_money_can_go() {
        let mut s = Statement {
            sold_vnd: 360_000,
            next_payout_vnd: 180_000,
            next_payout_on: "thứ Hai 07/12".into(),
            account: "Agribank ••••3456".into(),
            waiting_vnd: 180_000,
            sending_vnd: 0,
            owed_vnd: 0,
            fees_vnd: 0,
            min_payout_vnd: 50_000,
            schedule: "thứ Hai".into(),
            lines: vec![],
        };
        let h = s.headline();
        assert_eq!(h[0], "Bạn đã bán 360.000 ₫.");
        assert_eq!(
            h[1],
            "Chợ Làng sẽ chuyển 180.000 ₫ vào Agribank ••••3456 trong đợt chi ngày thứ Hai 07/12."
        );
        assert!(h[2].contains("chờ người mua nhận hàng"));
        s.account.clear();
        assert!(s.headline()[1].contains("Hãy thêm tài khoản"));
    }
}
