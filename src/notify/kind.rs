//! What happened, as the outbox records it: one kind per business event, each expanded into
//! notices by its own renderer (`render::notices_for`). Events are written with a kind, never
//! a free string, so no event can be written that nothing renders.

/// The kinds of event the outbox carries (stored as `notice_events.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NoticeKind {
    OrderPaid,
    OrderClosed,
    RefundDue,
    UnmatchedTransfer,
    ProposalOpened,
    ProposalApproved,
    ProposalRejected,
    ProposalAwaitingModerator,
    ShopJoinRequest,
    ItemJoinRequest,
    PayoutSent,
    PayoutPaid,
    PayoutFailed,
    PayoutFlagged,
    Protection,
    RefundSent,
    RefundPaid,
    RefundFailed,
    PayoutAccountChanged,
    Test,
    ShopMembership,
    /// A carrier reports a parcel failed, lost or damaged (ref: the shipment).
    ShipmentProblem,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 22] = [
        NoticeKind::OrderPaid,
        NoticeKind::OrderClosed,
        NoticeKind::RefundDue,
        NoticeKind::UnmatchedTransfer,
        NoticeKind::ProposalOpened,
        NoticeKind::ProposalApproved,
        NoticeKind::ProposalRejected,
        NoticeKind::ProposalAwaitingModerator,
        NoticeKind::ShopJoinRequest,
        NoticeKind::ItemJoinRequest,
        NoticeKind::PayoutSent,
        NoticeKind::PayoutPaid,
        NoticeKind::PayoutFailed,
        NoticeKind::PayoutFlagged,
        NoticeKind::Protection,
        NoticeKind::RefundSent,
        NoticeKind::RefundPaid,
        NoticeKind::RefundFailed,
        NoticeKind::PayoutAccountChanged,
        NoticeKind::Test,
        NoticeKind::ShopMembership,
        NoticeKind::ShipmentProblem,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::OrderPaid => "order_paid",
            NoticeKind::OrderClosed => "order_closed",
            NoticeKind::RefundDue => "refund_due",
            NoticeKind::UnmatchedTransfer => "unmatched_transfer",
            NoticeKind::ProposalOpened => "proposal_opened",
            NoticeKind::ProposalApproved => "proposal_approved",
            NoticeKind::ProposalRejected => "proposal_rejected",
            NoticeKind::ProposalAwaitingModerator => "proposal_awaiting_moderator",
            NoticeKind::ShopJoinRequest => "shop_join_request",
            NoticeKind::ItemJoinRequest => "item_join_request",
            NoticeKind::PayoutSent => "payout_sent",
            NoticeKind::PayoutPaid => "payout_paid",
            NoticeKind::PayoutFailed => "payout_failed",
            NoticeKind::PayoutFlagged => "payout_flagged",
            NoticeKind::Protection => "protection",
            NoticeKind::RefundSent => "refund_sent",
            NoticeKind::RefundPaid => "refund_paid",
            NoticeKind::RefundFailed => "refund_failed",
            NoticeKind::PayoutAccountChanged => "payout_account_changed",
            NoticeKind::Test => "test",
            NoticeKind::ShopMembership => "shop_membership",
            NoticeKind::ShipmentProblem => "shipment_problem",
        }
    }

    pub fn parse(s: &str) -> Option<NoticeKind> {
        NoticeKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for NoticeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in NoticeKind::ALL {
            assert_eq!(NoticeKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(NoticeKind::parse("order_shipped"), None);
    }
}
