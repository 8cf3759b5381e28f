//! The order lifecycle as a pure state machine: every change of an order's status is
//! checked here, so an invalid move (shipping an unpaid order, refunding twice) cannot happen.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Accepted,
    Shipped,
    Delivered,
    Cancelled,
    Expired,
    RefundDue,
    Refunded,
}

/// Who moves an order: rules differ for the payment system, the seller and an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// Payment matching and the expiry sweep.
    System,
    Seller,
    Admin,
    /// The buyer, proven by the receipt link or the checkout phone: confirms receipt.
    Buyer,
    /// A carrier's status, read from its API (never a webhook's word alone): picked up,
    /// delivered.
    Carrier,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("không thể chuyển đơn từ “{}” sang “{}”", from.label(), to.label())]
pub struct InvalidTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 9] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Accepted,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::RefundDue,
        OrderStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Accepted => "accepted",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::RefundDue => "refund_due",
            OrderStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "Chờ thanh toán",
            OrderStatus::Paid => "Đã thanh toán",
            OrderStatus::Accepted => "Người bán đã nhận đơn",
            OrderStatus::Shipped => "Đang giao",
            OrderStatus::Delivered => "Đã giao",
            OrderStatus::Cancelled => "Đã hủy",
            OrderStatus::Expired => "Hết hạn thanh toán",
            OrderStatus::RefundDue => "Chờ hoàn tiền",
            OrderStatus::Refunded => "Đã hoàn tiền",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Refunded)
    }

    /// The moves `actor` may make from this status.
    pub fn next(self, actor: Actor) -> &'static [OrderStatus] {
        use OrderStatus::*;
        match (self, actor) {
            // Money arrives, the buyer or seller cancels before paying, time runs out.
            (PendingPayment, Actor::System) => &[Paid, Expired, Cancelled],
            (PendingPayment, Actor::Seller | Actor::Admin) => &[Cancelled],
            // Late money: paid if the stock can be reserved again, else owed back.
            (Expired, Actor::System) => &[Paid, RefundDue],
            (Cancelled, Actor::System) => &[RefundDue],
            // The seller works the order; before shipping they may still cancel (refund).
            (Paid, Actor::Seller | Actor::Admin) => &[Accepted, RefundDue],
            (Accepted, Actor::Seller | Actor::Admin) => &[Shipped, RefundDue],
            // The carrier picked the parcel up (it may already report it delivered).
            (Accepted, Actor::Carrier) => &[Shipped],
            (Shipped, Actor::Carrier) => &[Delivered],
            // The seller's or the buyer's word that the goods arrived (buyer protection
            // decides when the money moves, not this).
            (Shipped, Actor::Seller | Actor::Buyer) => &[Delivered],
            // A return the cooperative accepts after shipping or delivery: the shop's money
            // (pending, available, or already paid out) is owed back to the buyer.
            (Shipped, Actor::Admin) => &[Delivered, RefundDue],
            (Delivered, Actor::Admin) => &[RefundDue],
            // A return/refund request settled for the buyer (buyer protection).
            (Shipped | Delivered, Actor::System) => &[RefundDue],
            // Only an admin records that money went back.
            // A refund payout confirmed by the bank feed or payOS counts as one too.
            (RefundDue, Actor::Admin | Actor::System) => &[Refunded],
            _ => &[],
        }
    }

    /// Whether the shop sees who bought and where to send (name, phone, address, note):
    /// for orders paid or later, never for an unpaid or abandoned checkout.
    pub fn shows_buyer(self) -> bool {
        !matches!(
            self,
            OrderStatus::PendingPayment | OrderStatus::Expired | OrderStatus::Cancelled
        )
    }

    /// A move as a seller asks for it, on the page and in the API alike: accept, ship,
    /// deliver or cancel.
    pub fn seller_asks(word: &str) -> Option<OrderStatus> {
        match word {
            "accepted" => Some(OrderStatus::Accepted),
            "shipped" => Some(OrderStatus::Shipped),
            "delivered" => Some(OrderStatus::Delivered),
            "cancelled" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }

    /// What a seller's move from this status means: cancelling an order already paid is
    /// the refund path (its money owed back to the buyer); every other move is itself.
    pub fn seller_meant(self, asked: OrderStatus) -> OrderStatus {
        if asked == OrderStatus::Cancelled && self != OrderStatus::PendingPayment {
            OrderStatus::RefundDue
        } else {
            asked
        }
    }

    pub fn transition(
        self,
        to: OrderStatus,
        actor: Actor,
    ) -> Result<OrderStatus, InvalidTransition> {
        if self.next(actor).contains(&to) {
            Ok(to)
        } else {
            Err(InvalidTransition { from: self, to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OrderStatus::*;
    use super::*;

    #[test]
    fn the_happy_path() {
        let mut s = PendingPayment;
        s = s.transition(Paid, Actor::System).unwrap();
        s = s.transition(Accepted, Actor::Seller).unwrap();
        s = s.transition(Shipped, Actor::Seller).unwrap();
        s = s.transition(Delivered, Actor::Seller).unwrap();
        assert!(s.next(Actor::Seller).is_empty());
        // Only the cooperative takes a return after delivery.
        assert_eq!(s.next(Actor::Admin), &[RefundDue]);
    }

    #[test]
    fn invalid_moves_are_refused() {
        assert!(
            PendingPayment.transition(Shipped, Actor::Seller).is_err(),
            "ship unpaid"
        );
        assert!(
            PendingPayment.transition(Paid, Actor::Seller).is_err(),
            "seller marks paid"
        );
        assert!(Paid.transition(Paid, Actor::System).is_err(), "paid twice");
        assert!(
            Refunded.transition(Refunded, Actor::Admin).is_err(),
            "refund twice"
        );
        assert!(
            RefundDue.transition(Refunded, Actor::Seller).is_err(),
            "only admins refund"
        );
        assert!(
            Shipped.transition(RefundDue, Actor::Seller).is_err(),
            "no cancel after shipping"
        );
        assert!(Delivered.transition(Accepted, Actor::Admin).is_err());
        assert!(
            Paid.transition(Shipped, Actor::Carrier).is_err(),
            "a carrier never moves an order the seller has not accepted"
        );
        assert!(
            Shipped.transition(RefundDue, Actor::Carrier).is_err(),
            "a carrier's return goes through buyer protection"
        );
        assert!(
            Paid.transition(Delivered, Actor::Buyer).is_err(),
            "the buyer confirms only what was shipped"
        );
        assert!(Shipped.transition(RefundDue, Actor::Buyer).is_err());
        assert_eq!(Shipped.transition(Delivered, Actor::Buyer), Ok(Delivered));
        let e = PendingPayment
            .transition(Delivered, Actor::Seller)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "không thể chuyển đơn từ “Chờ thanh toán” sang “Đã giao”"
        );
    }

    #[test]
    fn late_and_cancelled_money() {
        assert_eq!(Expired.transition(Paid, Actor::System), Ok(Paid));
        assert_eq!(Expired.transition(RefundDue, Actor::System), Ok(RefundDue));
        assert_eq!(
            Cancelled.transition(RefundDue, Actor::System),
            Ok(RefundDue)
        );
        assert_eq!(RefundDue.transition(Refunded, Actor::Admin), Ok(Refunded));
    }

    #[test]
    fn every_status_round_trips_and_terminal_states_have_no_exit() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
            if s.is_final() {
                for a in [Actor::System, Actor::Seller, Actor::Admin, Actor::Buyer] {
                    assert!(s.next(a).is_empty());
                }
            }
        }
        assert_eq!(OrderStatus::parse("lost"), None);
    }

    #[test]
    fn a_sellers_cancel_of_a_paid_order_is_a_refund() {
        assert_eq!(OrderStatus::seller_asks("cancelled"), Some(Cancelled));
        assert_eq!(OrderStatus::seller_asks("refund_due"), None);
        assert_eq!(OrderStatus::seller_asks("paid"), None);
        assert_eq!(PendingPayment.seller_meant(Cancelled), Cancelled);
        for paid in [Paid, Accepted, Shipped] {
            assert_eq!(paid.seller_meant(Cancelled), RefundDue);
            assert_eq!(paid.seller_meant(Shipped), Shipped);
        }
    }

    #[test]
    fn buyer_details_only_once_paid() {
        for s in OrderStatus::ALL {
            assert_eq!(
                s.shows_buyer(),
                !matches!(s, PendingPayment | Expired | Cancelled),
                "{s:?}"
            );
        }
    }
}
