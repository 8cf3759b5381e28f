//! Parcels booked with a carrier (GHN, GHTK) for orders whose buyer chose one: booked when
//! the seller takes the order ("Nhận đơn"), never twice (a lost answer is looked up by our
//! order code before asking again), cancelled at the carrier before pickup, printed from the
//! carrier's label. The carrier's status, read from its API after every webhook (a hint)
//! and by the poller, moves the order: picked up → shipped, delivered → delivered by the
//! carrier (buyer protection's window starts), returned → the buyer's refund; failed, lost or
//! damaged → the seller and the admins are told. Above `protection` and `payments`, whose
//! moves it makes.

pub mod store;

use crate::orders::OrderStatus;
use crate::shipping::carriers::Progress;

/// What a carrier's confirmed status does to its order (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The order is shipped (the carrier has the parcel).
    Ship,
    /// Shipped, then delivered at the carrier's word (both moves when the carrier's first
    /// report we read is "delivered").
    Deliver,
    /// The carrier's delivery date replaces the seller's word (already delivered).
    ConfirmDelivery,
    /// The parcel came back: the buyer's money is owed back.
    Return,
    /// Tell the seller and the admins.
    Alert,
}

/// The order move a confirmed status calls for, if any.
pub fn effect(
    progress: Progress,
    order: OrderStatus,
    delivered_by_carrier: bool,
) -> Option<Effect> {
    use OrderStatus::*;
    match (progress, order) {
        (Progress::InTransit | Progress::Returning, Accepted) => Some(Effect::Ship),
        (Progress::Delivered, Accepted | Shipped) => Some(Effect::Deliver),
        (Progress::Delivered, Delivered) if !delivered_by_carrier => Some(Effect::ConfirmDelivery),
        (Progress::Returned, Accepted | Shipped | Delivered) => Some(Effect::Return),
        (Progress::Problem, Accepted | Shipped | Delivered) => Some(Effect::Alert),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmed_statuses_move_orders_forward_only() {
        use OrderStatus::*;
        assert_eq!(
            effect(Progress::InTransit, Accepted, false),
            Some(Effect::Ship)
        );
        assert_eq!(effect(Progress::InTransit, Shipped, false), None);
        assert_eq!(
            effect(Progress::Delivered, Accepted, false),
            Some(Effect::Deliver)
        );
        assert_eq!(
            effect(Progress::Delivered, Shipped, false),
            Some(Effect::Deliver)
        );
        assert_eq!(
            effect(Progress::Delivered, Delivered, false),
            Some(Effect::ConfirmDelivery),
            "the carrier's date counts more than the seller's word"
        );
        assert_eq!(effect(Progress::Delivered, Delivered, true), None);
        assert_eq!(
            effect(Progress::Returned, Delivered, true),
            Some(Effect::Return)
        );
        assert_eq!(effect(Progress::Returned, RefundDue, true), None);
        assert_eq!(
            effect(Progress::Problem, Shipped, false),
            Some(Effect::Alert)
        );
        assert_eq!(effect(Progress::Booked, Accepted, false), None);
        assert_eq!(effect(Progress::Unknown, Shipped, false), None);
        assert_eq!(
            effect(Progress::Delivered, Paid, false),
            None,
            "not accepted yet"
        );
    }
}
