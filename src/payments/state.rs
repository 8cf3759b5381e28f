//! A payment's states as a pure state machine (an incoming bank transaction's are
//! `bankfeed::state`). Every write of a status goes through `transition` (like `orders::state`), so no code path
//! can move money into a state the rules do not allow.

use serde::{Deserialize, Serialize};

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Waiting for the transfer.
    Pending,
    /// Part of the money arrived; the rest is awaited until the payment expires.
    Underpaid,
    /// All the money arrived (an overpayment stays paid and is owed back).
    Paid,
    /// Time ran out (or every order was cancelled) before the money arrived.
    Expired,
    /// Money arrived that nothing is left to pay for: owed back to the buyer.
    RefundDue,
    /// Everything owed back was paid back.
    Refunded,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("không thể chuyển thanh toán từ “{}” sang “{}”", from.label(), to.label())]
pub struct InvalidPaymentMove {
    pub from: PaymentStatus,
    pub to: PaymentStatus,
}

impl PaymentStatus {
    pub const ALL: [PaymentStatus; 6] = [
        PaymentStatus::Pending,
        PaymentStatus::Underpaid,
        PaymentStatus::Paid,
        PaymentStatus::Expired,
        PaymentStatus::RefundDue,
        PaymentStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Underpaid => "underpaid",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Expired => "expired",
            PaymentStatus::RefundDue => "refund_due",
            PaymentStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<PaymentStatus> {
        PaymentStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// In the words buyers and admins read.
    pub fn label(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "chờ chuyển khoản",
            PaymentStatus::Underpaid => "đã nhận một phần",
            PaymentStatus::Paid => "đã thanh toán",
            PaymentStatus::Expired => "hết hạn thanh toán",
            PaymentStatus::RefundDue => "chờ hoàn tiền",
            PaymentStatus::Refunded => "đã hoàn tiền",
        }
    }

    /// Still collecting money.
    pub fn is_open(self) -> bool {
        matches!(self, PaymentStatus::Pending | PaymentStatus::Underpaid)
    }

    /// The statuses this one may become. A status listed for itself is a change that keeps
    /// it (more money on an underpaid, paid or refund-due payment).
    pub fn next(self) -> &'static [PaymentStatus] {
        use PaymentStatus::*;
        match self {
            Pending => &[Underpaid, Paid, Expired, RefundDue],
            Underpaid => &[Underpaid, Paid, Expired, RefundDue],
            // Money on top stays paid (owed back); an overpayment refund keeps it paid.
            Paid => &[Paid],
            // Late money: paid if the stock can be taken again, else owed back.
            Expired => &[Paid, RefundDue],
            RefundDue => &[RefundDue, Refunded],
            // Money arriving after the refund is owed back again.
            Refunded => &[RefundDue],
        }
    }

    pub fn transition(self, to: PaymentStatus) -> Result<PaymentStatus, InvalidPaymentMove> {
        if self.next().contains(&to) {
            Ok(to)
        } else {
            Err(InvalidPaymentMove { from: self, to })
        }
    }
}

pub use crate::bankfeed::state::{InvalidTxnMove, TxnStatus};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payment_pair_is_decided_by_the_table() {
        use PaymentStatus::*;
        let allowed = [
            (Pending, Underpaid),
            (Pending, Paid),
            (Pending, Expired),
            (Pending, RefundDue),
            (Underpaid, Underpaid),
            (Underpaid, Paid),
            (Underpaid, Expired),
            (Underpaid, RefundDue),
            (Paid, Paid),
            (Expired, Paid),
            (Expired, RefundDue),
            (RefundDue, RefundDue),
            (RefundDue, Refunded),
            (Refunded, RefundDue),
        ];
        for from in PaymentStatus::ALL {
            for to in PaymentStatus::ALL {
                let ok = allowed.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), ok, "{from:?} → {to:?}");
            }
        }
        // Never back to waiting, never "paid" out of a refund.
        assert!(Paid.transition(Pending).is_err());
        assert!(Refunded.transition(Paid).is_err());
        assert!(
            Paid.transition(Refunded).is_err(),
            "paid orders are refunded per order"
        );
    }

    #[test]
    fn names_round_trip_and_match_the_schema() {
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::String(s.as_str().into())
            );
        }
        // The names the database's CHECK constraints allow (migrations 0002).
        let schema = include_str!("../../migrations/schema/0002_checkout_payments.sql");
        for s in PaymentStatus::ALL {
            assert!(schema.contains(&format!("'{}'", s.as_str())), "{s:?}");
        }
        assert!(PaymentStatus::parse("partially_paid").is_none());
    }
}
