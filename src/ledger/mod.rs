//! The ledger of the collecting account: append-only, double-entry.
//!
//! Every movement of money is one journal of postings that sum to zero, built here by a pure
//! function from the business event (a transfer matched, an order released, a payout sent…)
//! and appended by `store::post` in the caller's transaction. Amounts are signed whole đồng,
//! debit positive: the collecting account (an asset) grows with money in; what the
//! marketplace owes (a shop's pending or available money, refunds due) is credited.

pub mod store;

use serde::Serialize;

/// A ledger account; shop accounts are per shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub enum Account {
    /// The collecting bank account: money in − money out.
    Collect,
    /// Money received that matches no payment yet.
    Suspense,
    /// Money received for a payment that is not settled yet.
    PaymentsOpen,
    /// Owed back to buyers.
    RefundsDue,
    /// A refund sent to a buyer's bank, not yet confirmed.
    RefundsInTransit,
    /// Platform fees taken at release.
    Fees,
    ShopPending,
    ShopAvailable,
    ShopInTransit,
    /// Owed back by a shop (a refund after its money was released or paid out).
    ShopOwed,
    /// Shipping fees owed to the carriers the platform books with its own account.
    CarriersPayable,
}

impl Account {
    pub fn as_str(self) -> &'static str {
        match self {
            Account::Collect => "collect",
            Account::Suspense => "suspense",
            Account::PaymentsOpen => "payments_open",
            Account::RefundsDue => "refunds_due",
            Account::RefundsInTransit => "refunds_in_transit",
            Account::Fees => "fees",
            Account::ShopPending => "shop_pending",
            Account::ShopAvailable => "shop_available",
            Account::ShopInTransit => "shop_in_transit",
            Account::ShopOwed => "shop_owed",
            Account::CarriersPayable => "carriers_payable",
        }
    }

    pub fn label(name: &str) -> &'static str {
        match name {
            "collect" => "Tài khoản thu hộ",
            "suspense" => "Tiền chưa khớp",
            "payments_open" => "Tiền của thanh toán chưa đủ",
            "refunds_due" => "Phải hoàn cho người mua",
            "refunds_in_transit" => "Đang hoàn cho người mua",
            "fees" => "Phí nền tảng",
            "shop_pending" => "Chờ đối soát",
            "shop_available" => "Có thể rút",
            "shop_in_transit" => "Đang chuyển",
            "shop_owed" => "Cửa hàng còn nợ",
            "carriers_payable" => "Phí vận chuyển phải trả hãng",
            _ => "",
        }
    }
}

/// A journal's kind as the treasurer reads it.
pub fn kind_words(kind: &str) -> &str {
    match kind {
        "transfer_in" => "Tiền chuyển đến",
        "transfer_unmatched" => "Tiền đến chưa khớp đơn",
        "transfer_assigned" => "Gán tiền chưa khớp cho thanh toán",
        "payment_settled" => "Thanh toán đủ, tiền giữ cho cửa hàng",
        "payment_refund_due" => "Thanh toán phải hoàn",
        "order_refund_due" => "Đơn phải hoàn tiền",
        "order_part_refund_due" => "Hoàn một phần đơn",
        "order_released" => "Tiền đơn chuyển cho cửa hàng (trừ phí)",
        "refund_paid" => "Đã hoàn cho người mua",
        "refund_sent" => "Lệnh hoàn tiền",
        "refund_failed" => "Hoàn tiền không thành công",
        "payout_sent" => "Lệnh chi cho cửa hàng",
        "payout_paid" => "Chi cho cửa hàng thành công",
        "payout_failed" => "Chi không thành công, tiền trở lại",
        "payout_returned" => "Tiền chi bị ngân hàng trả lại",
        "payout_duplicate" => "Chi trùng",
        "owed_netted" => "Trừ nợ của cửa hàng",
        "transfer_returned" => "Trả lại tiền chưa khớp",
        "outflow_written_off" => "Tiền ra không rõ, đã ghi nhận",
        other => other,
    }
}

/// One line of a journal. `shop` tags shop accounts (and the shop's fee and payout lines);
/// `payment` tags money held for one payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    pub account: Account,
    pub amount: i64,
    pub shop: Option<i64>,
    pub payment: Option<i64>,
}

fn line(account: Account, amount: i64) -> Posting {
    Posting {
        account,
        amount,
        shop: None,
        payment: None,
    }
}

fn shop_line(account: Account, shop: i64, amount: i64) -> Posting {
    Posting {
        account,
        amount,
        shop: Some(shop),
        payment: None,
    }
}

fn payment_line(payment: i64, amount: i64) -> Posting {
    Posting {
        account: Account::PaymentsOpen,
        amount,
        shop: None,
        payment: Some(payment),
    }
}

/// A journal: its postings sum to zero (zero lines are dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct Journal {
    pub kind: &'static str,
    pub postings: Vec<Posting>,
}

impl Journal {
    fn new(kind: &'static str, postings: Vec<Posting>) -> Journal {
        let postings: Vec<Posting> = postings.into_iter().filter(|p| p.amount != 0).collect();
        Journal { kind, postings }
    }

    pub fn balanced(&self) -> bool {
        self.postings
            .iter()
            .try_fold(0i64, |acc, p| acc.checked_add(p.amount))
            == Some(0)
    }

    pub fn is_empty(&self) -> bool {
        self.postings.is_empty()
    }

    /// The postings as the database receives them: its triggers check they sum to zero and
    /// write the entries from this text.
    pub fn postings_json(&self) -> String {
        let v: Vec<serde_json::Value> = self
            .postings
            .iter()
            .map(|p| {
                serde_json::json!({
                    "account": p.account.as_str(),
                    "amount": p.amount,
                    "shop": p.shop,
                    "payment": p.payment,
                })
            })
            .collect();
        serde_json::Value::Array(v).to_string()
    }
}

/// Money arrived for a payment.
pub fn transfer_in(payment: i64, amount: i64) -> Journal {
    Journal::new(
        "transfer_in",
        vec![
            line(Account::Collect, amount),
            payment_line(payment, -amount),
        ],
    )
}

/// Money arrived that matches no payment: it waits in suspense.
pub fn transfer_unmatched(amount: i64) -> Journal {
    Journal::new(
        "transfer_unmatched",
        vec![
            line(Account::Collect, amount),
            line(Account::Suspense, -amount),
        ],
    )
}

/// An admin assigned a waiting transfer to a payment.
pub fn transfer_assigned(payment: i64, amount: i64) -> Journal {
    Journal::new(
        "transfer_assigned",
        vec![
            line(Account::Suspense, amount),
            payment_line(payment, -amount),
        ],
    )
}

/// A payment became paid: its money goes to each order's shop, by the order's total; what
/// is left over (an overpayment) is owed back. `open` must cover the orders.
pub fn payment_settled(payment: i64, open: i64, orders: &[(i64, i64)]) -> Option<Journal> {
    let to_shops: i64 = orders.iter().map(|(_, t)| *t).sum();
    if to_shops > open {
        return None;
    }
    let mut postings = vec![payment_line(payment, open)];
    for (shop, total) in orders {
        postings.push(shop_line(Account::ShopPending, *shop, -total));
    }
    postings.push(line(Account::RefundsDue, -(open - to_shops)));
    Some(Journal::new("payment_settled", postings))
}

/// Money held for a payment that will not be paid for (late, cancelled) or that came on top
/// of a settled payment: owed back to the buyer.
pub fn payment_to_refund(payment: i64, open: i64) -> Journal {
    Journal::new(
        "payment_refund_due",
        vec![
            payment_line(payment, open),
            line(Account::RefundsDue, -open),
        ],
    )
}

/// A paid order is cancelled by its seller: its money leaves the shop and is owed back.
/// Taken from pending before release; after release from available as far as it goes, and
/// the rest is owed by the shop (netted against its next releases).
pub fn order_refund(shop: i64, total: i64, released: bool, available: i64) -> Journal {
    let postings = if released {
        let from_available = total.min(available.max(0));
        vec![
            shop_line(Account::ShopAvailable, shop, from_available),
            shop_line(Account::ShopOwed, shop, total - from_available),
            line(Account::RefundsDue, -total),
        ]
    } else {
        vec![
            shop_line(Account::ShopPending, shop, total),
            line(Account::RefundsDue, -total),
        ]
    };
    Journal::new("order_refund_due", postings)
}

/// The fee on an order: `bps` basis points of its total, rounded half up to whole đồng.
pub fn fee(total: i64, bps: i64) -> i64 {
    (total * bps + 5_000) / 10_000
}

/// Who an order's shipping fee is owed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShippingPayee {
    /// The shop delivers itself or pays its carrier: the fee is its money.
    Shop,
    /// The platform booked the carrier with its own account: the fee is owed to the carrier.
    Platform,
}

/// An order's money becomes available to its shop, less the fee; whatever the shop owes is
/// netted first. The fee is taken on the goods only: `shipping` (inside `total`) goes whole
/// to the shop, or to the carriers' account when the platform booked the carrier.
pub fn release(
    shop: i64,
    total: i64,
    shipping: i64,
    payee: ShippingPayee,
    bps: i64,
    owed: i64,
) -> Journal {
    let shipping = shipping.clamp(0, total.max(0));
    let fee = fee(total - shipping, bps);
    let to_carriers = if payee == ShippingPayee::Platform {
        shipping
    } else {
        0
    };
    let net = total - fee - to_carriers;
    let netted = owed.clamp(0, net);
    Journal::new(
        "order_released",
        vec![
            shop_line(Account::ShopPending, shop, total),
            shop_line(Account::Fees, shop, -fee),
            shop_line(Account::CarriersPayable, shop, -to_carriers),
            shop_line(Account::ShopAvailable, shop, -(net - netted)),
            shop_line(Account::ShopOwed, shop, -netted),
        ],
    )
}

/// An admin sent money owed to a buyer back (a refund recorded).
pub fn refund_paid(amount: i64) -> Journal {
    Journal::new(
        "refund_paid",
        vec![
            line(Account::RefundsDue, amount),
            line(Account::Collect, -amount),
        ],
    )
}

/// Part of a live order goes back to its buyer (a request decided "partly refunded" or a
/// seller who accepted part): taken from the shop's pending money before release.
pub fn part_refund_due(shop: i64, amount: i64) -> Journal {
    Journal::new(
        "order_part_refund_due",
        vec![
            shop_line(Account::ShopPending, shop, amount),
            line(Account::RefundsDue, -amount),
        ],
    )
}

/// A refund payout to a buyer's bank was created: owed → on its way.
pub fn refund_sent(amount: i64) -> Journal {
    Journal::new(
        "refund_sent",
        vec![
            line(Account::RefundsDue, amount),
            line(Account::RefundsInTransit, -amount),
        ],
    )
}

/// A refund payout failed or came back: owed again.
pub fn refund_failed(amount: i64) -> Journal {
    Journal::new(
        "refund_failed",
        vec![
            line(Account::RefundsInTransit, amount),
            line(Account::RefundsDue, -amount),
        ],
    )
}

/// A refund payout reached the buyer's bank: it left the collecting account.
pub fn refund_paid_out(amount: i64) -> Journal {
    Journal::new(
        "refund_paid",
        vec![
            line(Account::RefundsInTransit, amount),
            line(Account::Collect, -amount),
        ],
    )
}

/// An admin sent an unmatched transfer back to its payer.
pub fn suspense_returned(amount: i64) -> Journal {
    Journal::new(
        "transfer_returned",
        vec![
            line(Account::Suspense, amount),
            line(Account::Collect, -amount),
        ],
    )
}

pub fn payout_sent(shop: i64, amount: i64) -> Journal {
    Journal::new(
        "payout_sent",
        vec![
            shop_line(Account::ShopAvailable, shop, amount),
            shop_line(Account::ShopInTransit, shop, -amount),
        ],
    )
}

/// The money reached the shop's bank: it left the collecting account.
pub fn payout_paid(shop: i64, amount: i64) -> Journal {
    Journal::new(
        "payout_paid",
        vec![
            shop_line(Account::ShopInTransit, shop, amount),
            shop_line(Account::Collect, shop, -amount),
        ],
    )
}

/// Money left the collecting account a second time for a payout already paid: the shop owes
/// it back (netted at its next release).
pub fn payout_duplicate(shop: i64, amount: i64) -> Journal {
    Journal::new(
        "payout_duplicate",
        vec![
            shop_line(Account::ShopOwed, shop, amount),
            shop_line(Account::Collect, shop, -amount),
        ],
    )
}

/// Money that left the collecting account and will not come back: the platform's loss.
pub fn outflow_written_off(amount: i64) -> Journal {
    Journal::new(
        "outflow_written_off",
        vec![line(Account::Fees, amount), line(Account::Collect, -amount)],
    )
}

/// A shop's debt is settled from its available money before a payout run pays the rest.
pub fn owed_netted(shop: i64, amount: i64) -> Journal {
    Journal::new(
        "owed_netted",
        vec![
            shop_line(Account::ShopAvailable, shop, amount),
            shop_line(Account::ShopOwed, shop, -amount),
        ],
    )
}

/// A payout already confirmed paid came back into the collecting account (the bank
/// returned it): the money is the shop's, available again.
pub fn payout_returned(shop: i64, amount: i64) -> Journal {
    Journal::new(
        "payout_returned",
        vec![
            shop_line(Account::Collect, shop, amount),
            shop_line(Account::ShopAvailable, shop, -amount),
        ],
    )
}

/// The payout failed or came back: the money is available again.
pub fn payout_failed(shop: i64, amount: i64) -> Journal {
    Journal::new(
        "payout_failed",
        vec![
            shop_line(Account::ShopInTransit, shop, amount),
            shop_line(Account::ShopAvailable, shop, -amount),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_journal_balances() {
        let all = [
            transfer_in(1, 300_000),
            transfer_unmatched(50_000),
            transfer_assigned(1, 50_000),
            payment_settled(1, 350_000, &[(7, 180_000), (8, 120_000)]).unwrap(),
            payment_to_refund(1, 20_000),
            order_refund(7, 180_000, false, 0),
            order_refund(7, 180_000, true, 100_000),
            release(7, 180_000, 0, ShippingPayee::Shop, 250, 0),
            release(7, 180_000, 0, ShippingPayee::Shop, 250, 30_000),
            refund_paid(70_000),
            part_refund_due(7, 40_000),
            refund_sent(40_000),
            refund_failed(40_000),
            refund_paid_out(40_000),
            suspense_returned(10_000),
            payout_sent(7, 175_500),
            payout_paid(7, 175_500),
            payout_failed(7, 175_500),
            owed_netted(7, 20_000),
            payout_returned(7, 175_500),
        ];
        for j in &all {
            assert!(j.balanced(), "{j:?}");
            assert!(j.postings.iter().all(|p| p.amount != 0), "{j:?}");
        }
    }

    #[test]
    fn settlement_splits_by_order_and_refunds_the_overpayment() {
        let j = payment_settled(1, 350_000, &[(7, 180_000), (8, 120_000)]).unwrap();
        let refund: i64 = j
            .postings
            .iter()
            .filter(|p| p.account == Account::RefundsDue)
            .map(|p| p.amount)
            .sum();
        assert_eq!(refund, -50_000);
        assert!(payment_settled(1, 100_000, &[(7, 180_000)]).is_none());
    }

    #[test]
    fn the_fee_is_taken_on_the_goods_not_the_delivery() {
        let j = release(7, 220_000, 40_000, ShippingPayee::Shop, 250, 0);
        assert!(j.balanced());
        let fees: i64 = j
            .postings
            .iter()
            .filter(|p| p.account == Account::Fees)
            .map(|p| p.amount)
            .sum();
        assert_eq!(fees, -4_500); // 2.5 % of 180,000
        let available: i64 = j
            .postings
            .iter()
            .filter(|p| p.account == Account::ShopAvailable)
            .map(|p| p.amount)
            .sum();
        assert_eq!(available, -215_500);
        // A refund larger than the goods leaves no fee to take.
        assert!(
            release(7, 30_000, 40_000, ShippingPayee::Shop, 250, 0)
                .postings
                .iter()
                .all(|p| p.account != Account::Fees)
        );
        // Booked with the platform's carrier account: the fee is owed to the carrier.
        let j = release(7, 220_000, 40_000, ShippingPayee::Platform, 250, 0);
        assert!(j.balanced());
        let of = |a: Account| -> i64 {
            j.postings
                .iter()
                .filter(|p| p.account == a)
                .map(|p| p.amount)
                .sum()
        };
        assert_eq!(of(Account::CarriersPayable), -40_000);
        assert_eq!(of(Account::ShopAvailable), -175_500);
        assert_eq!(of(Account::Fees), -4_500);
    }

    #[test]
    fn fee_rounds_half_up_to_whole_dong() {
        assert_eq!(fee(180_000, 0), 0);
        assert_eq!(fee(180_000, 250), 4_500);
        // 0.5 đồng rounds up, 0.4999 down.
        assert_eq!(fee(100, 50), 1); // 0.5
        assert_eq!(fee(99, 50), 0); // 0.495
        assert_eq!(fee(1_850_001, 100), 18_500); // 18,500.01
        assert_eq!(fee(1_850_050, 100), 18_501); // 18,500.5
    }

    #[test]
    fn a_refund_after_release_is_owed_and_netted_next_time() {
        let j = order_refund(7, 180_000, true, 100_000);
        let owed: i64 = j
            .postings
            .iter()
            .filter(|p| p.account == Account::ShopOwed)
            .map(|p| p.amount)
            .sum();
        assert_eq!(owed, 80_000);
        let r = release(7, 120_000, 0, ShippingPayee::Shop, 0, 80_000);
        let avail: i64 = r
            .postings
            .iter()
            .filter(|p| p.account == Account::ShopAvailable)
            .map(|p| p.amount)
            .sum();
        assert_eq!(
            avail, -40_000,
            "120,000 released, 80,000 of it pays the debt"
        );
    }
}
