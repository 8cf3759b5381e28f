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

/// What a line of the statement is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Order,
    Payout,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Line {
    pub at: i64,
    pub kind: LineKind,
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

/// What the ledger says is not yet in the shop's bank: released money waiting for the next
/// run, and money in a payout on its way.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unpaid {
    pub next_run_vnd: i64,
    pub sending_vnd: i64,
}

impl Line {
    /// What the line is, in words: "Đơn CL7K3QX9-1" or "Chuyển vào Agribank ••••3456".
    pub fn what(&self) -> String {
        match self.kind {
            LineKind::Order => format!("Đơn {}", self.code),
            LineKind::Payout => format!("Chuyển vào {}", self.to),
        }
    }
}

/// Newest first: each order with where its money is, each payout with how it went. Released
/// orders are matched from the newest back: the newest `unpaid.next_run_vnd` worth waits for
/// the next run, the next `unpaid.sending_vnd` worth is on its way, the rest was paid, by the
/// paid payouts from the newest back. Reading the ledger's balances (not the whole history)
/// keeps a long or truncated history from mislabelling recent orders.
pub fn lines(
    orders: &[OrderMoney],
    payouts: &[PayoutMoney],
    unpaid: Unpaid,
    next_run: &str,
) -> Vec<Line> {
    let mut paid: Vec<&PayoutMoney> = payouts
        .iter()
        .filter(|p| p.status == PayoutStatus::Paid)
        .collect();
    paid.sort_by_key(|p| std::cmp::Reverse((p.paid_at.unwrap_or(p.at), p.at)));
    let mut released: Vec<&OrderMoney> = orders
        .iter()
        .filter(|o| o.released.is_some() && !o.refunded)
        .collect();
    released.sort_by_key(|o| std::cmp::Reverse(o.released.map(|r| r.0)));
    let (mut next, mut sending) = (unpaid.next_run_vnd.max(0), unpaid.sending_vnd.max(0));
    let mut paid_back = 0i64;
    enum Where<'a> {
        NextRun,
        Sending,
        /// Paid, by this payout when it is among those read.
        Paid(Option<&'a PayoutMoney>),
    }
    let mut by_order: Vec<(&str, Where)> = Vec::new();
    for o in released {
        let net = o.released.map(|r| r.1).unwrap_or(0);
        let at = if next > 0 {
            next -= net;
            Where::NextRun
        } else if sending > 0 {
            sending -= net;
            Where::Sending
        } else {
            paid_back += net;
            let mut sum = 0i64;
            Where::Paid(
                paid.iter()
                    .find(|p| {
                        sum += p.amount_vnd;
                        paid_back <= sum
                    })
                    .copied(),
            )
        };
        by_order.push((o.code.as_str(), at));
    }
    let mut out = Vec::new();
    for o in orders {
        let (state, words) = if o.refunded {
            (
                LineState::Refunded,
                "đã trả lại tiền cho người mua".to_string(),
            )
        } else if o.released.is_some() {
            match by_order.iter().find(|(c, _)| *c == o.code).map(|(_, w)| w) {
                Some(Where::Paid(Some(p))) => (
                    LineState::Paid,
                    format!(
                        "đã chuyển ngày {}",
                        crate::domain::format_vn_date(p.paid_at.unwrap_or(p.at))
                    ),
                ),
                Some(Where::Paid(None)) => (LineState::Paid, "đã chuyển vào tài khoản".into()),
                Some(Where::Sending) => (LineState::Sending, "đang chuyển vào tài khoản".into()),
                _ => (
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
            kind: LineKind::Order,
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
            kind: LineKind::Payout,
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
    let s = sqlx::query(
        "SELECT bank_bin, bank_account_no, payout_hold_until, active FROM shops WHERE id = $1",
    )
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
            .bind(crate::domain::vn_midnight(vn_day(now)).unwrap_or(now))
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
    for r in &rows {
        use crate::orders::OrderStatus;
        let status = OrderStatus::parse(&r.try_get::<String, _>("status")?);
        let refunded = matches!(
            status,
            Some(OrderStatus::RefundDue | OrderStatus::Refunded | OrderStatus::Cancelled)
        );
        let total: i64 = r.try_get("total_vnd")?;
        let part: i64 = r.try_get("refund_owed_vnd")?;
        let released_at: Option<i64> = r.try_get("released_at")?;
        orders.push(OrderMoney {
            code: r.try_get("code")?,
            at: r.try_get("created_at")?,
            sold_vnd: total - part,
            refunded,
            shipped: r.try_get::<Option<i64>, _>("shipped_at")?.is_some()
                || matches!(status, Some(OrderStatus::Shipped | OrderStatus::Delivered)),
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
    // Everything sold and not given back, over the shop's whole history (the lines show
    // the latest 500 orders).
    let sold: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(total_vnd - refund_owed_vnd), 0) AS BIGINT) FROM orders
         WHERE shop_id = $1 AND status IN ('paid', 'accepted', 'shipped', 'delivered')",
    )
    .bind(shop)
    .fetch_one(&db.pool)
    .await?;
    // Whether the next run can pay it: the run's own rule, the account's hold aside (it
    // moves the day instead).
    let can_pay = super::store::decide(
        &super::store::ShopMoney {
            available: b.available_vnd,
            owed: b.owed_vnd,
            has_account: !account.is_empty(),
            active: s.try_get::<i64, _>("active")? == 1,
            hold_until: None,
            open_payout: false,
        },
        now,
        min_payout_vnd,
    )
    .is_ok();
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
        lines: lines(
            &orders,
            &payouts,
            Unpaid {
                next_run_vnd: b.available_vnd,
                sending_vnd: b.in_transit_vnd,
            },
            &next_words,
        ),
    })
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
        let unpaid = Unpaid {
            next_run_vnd: 0,
            sending_vnd: 49_000,
        };
        let l = lines(&orders, &payouts, unpaid, "thứ Hai 14/12");
        let of = |c: &str| l.iter().find(|x| x.code == c).unwrap().clone();
        assert_eq!(of("A-1").state, LineState::Paid);
        assert_eq!(of("A-1").words, "đã chuyển ngày 01/01");
        assert_eq!(of("A-1").amount_vnd, 98_000);
        assert_eq!(of("B-1").state, LineState::Paid);
        assert_eq!(of("C-1").state, LineState::Sending);
        assert_eq!(of("D-1").state, LineState::AwaitingBuyer);
        assert_eq!(of("D-1").words, "chờ người mua nhận hàng");
        assert_eq!(of("CLPO2").what(), "Chuyển vào Agribank ••••3456");
        assert_eq!(of("C-1").what(), "Đơn C-1");
        // Newest first, payouts among the orders.
        assert_eq!(l[0].code, "CLPO2");
        // Before the second payout: C-1 waits for the next run.
        let unpaid = Unpaid {
            next_run_vnd: 49_000,
            sending_vnd: 0,
        };
        let l = lines(&orders, &payouts[..1], unpaid, "thứ Hai 14/12");
        let c = l.iter().find(|x| x.code == "C-1").unwrap();
        assert_eq!(c.state, LineState::NextRun);
        assert_eq!(c.words, "sẽ chuyển đợt tới (thứ Hai 14/12)");
    }

    #[test]
    fn a_history_read_in_part_still_labels_the_newest_orders_right() {
        // Only the latest orders and payouts are read: what is unpaid comes from the ledger's
        // balances, so the newest order still waits although older payouts outweigh it.
        let orders = vec![
            order("Y-1", 1, 100_000, Some((10, 100_000))),
            order("Z-1", 2, 100_000, Some((20, 100_000))),
        ];
        let payouts = vec![payout("CLPO9", 15, 900_000, PayoutStatus::Paid)];
        let unpaid = Unpaid {
            next_run_vnd: 100_000,
            sending_vnd: 0,
        };
        let l = lines(&orders, &payouts, unpaid, "thứ Hai 14/12");
        let of = |c: &str| l.iter().find(|x| x.code == c).unwrap().state.clone();
        assert_eq!(of("Z-1"), LineState::NextRun);
        assert_eq!(of("Y-1"), LineState::Paid);
    }

    #[test]
    fn a_failed_payout_carries_nothing_and_says_the_money_is_still_hers() {
        let orders = vec![order("A-1", 1, 100_000, Some((10, 100_000)))];
        let payouts = vec![payout("CLPO1", 25, 100_000, PayoutStatus::Failed)];
        let unpaid = Unpaid {
            next_run_vnd: 100_000,
            sending_vnd: 0,
        };
        let l = lines(&orders, &payouts, unpaid, "thứ Hai 14/12");
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
