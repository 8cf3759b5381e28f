//! Buyer protection: the money of an order waits until the buyer has the goods (the rule is
//! `orders::release`); a buyer confirms receipt, extends the window once, or raises a
//! return/refund request; the seller answers; the village moderator or an admin decides;
//! refunds are paid to the buyer's bank (`refund_payouts`). The request's life is a pure
//! state machine here; `store` applies it.

pub mod store;

use serde::{Deserialize, Serialize};

/// Why the buyer asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    NotReceived,
    Damaged,
    WrongItem,
    MissingItems,
    NotAsDescribed,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::NotReceived,
        Reason::Damaged,
        Reason::WrongItem,
        Reason::MissingItems,
        Reason::NotAsDescribed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotReceived => "not_received",
            Reason::Damaged => "damaged",
            Reason::WrongItem => "wrong_item",
            Reason::MissingItems => "missing_items",
            Reason::NotAsDescribed => "not_as_described",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Reason::NotReceived => "Chưa nhận được hàng",
            Reason::Damaged => "Hàng bị hỏng",
            Reason::WrongItem => "Giao sai hàng",
            Reason::MissingItems => "Thiếu hàng",
            Reason::NotAsDescribed => "Không đúng mô tả",
        }
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for the seller's answer (until `answer_due_at`).
    Open,
    /// The seller replied without accepting: the buyer accepts the reply or escalates.
    Replied,
    /// Waiting for the village moderator or an admin.
    Escalated,
    /// Decided: the buyer sends the goods back first (tracking code).
    AwaitingReturn,
    /// The goods are on their way back: refunded when the seller has them, or `RETURN_DAYS` on.
    ReturnSent,
    /// Money goes back to the buyer (all or part).
    Refunded,
    /// Decided for the seller: the money is released.
    Released,
    /// The buyer accepted the seller's reply or withdrew.
    Closed,
}

/// What moves a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    SellerAccepts,
    SellerReplies,
    BuyerAcceptsReply,
    BuyerEscalates,
    /// The seller did not answer in time.
    AnswerOverdue,
    DecideRefund,
    DecideRelease,
    DecideReturnFirst,
    ReturnShipped,
    /// The seller has the goods back, or the return window ran out after shipping.
    ReturnReceived,
    /// The buyer never sent the goods back.
    ReturnNeverSent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Yêu cầu đang “{}”: không thể làm bước này", from.label())]
pub struct InvalidStep {
    pub from: RequestStatus,
    pub step: Step,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 8] = [
        RequestStatus::Open,
        RequestStatus::Replied,
        RequestStatus::Escalated,
        RequestStatus::AwaitingReturn,
        RequestStatus::ReturnSent,
        RequestStatus::Refunded,
        RequestStatus::Released,
        RequestStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Open => "open",
            RequestStatus::Replied => "replied",
            RequestStatus::Escalated => "escalated",
            RequestStatus::AwaitingReturn => "awaiting_return",
            RequestStatus::ReturnSent => "return_sent",
            RequestStatus::Refunded => "refunded",
            RequestStatus::Released => "released",
            RequestStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<RequestStatus> {
        RequestStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            RequestStatus::Open => "Chờ người bán trả lời",
            RequestStatus::Replied => "Người bán đã trả lời",
            RequestStatus::Escalated => "Chờ ban quản lý quyết định",
            RequestStatus::AwaitingReturn => "Chờ người mua gửi trả hàng",
            RequestStatus::ReturnSent => "Hàng đang được gửi trả",
            RequestStatus::Refunded => "Hoàn tiền cho người mua",
            RequestStatus::Released => "Tiền chuyển cho người bán",
            RequestStatus::Closed => "Đã đóng",
        }
    }

    /// Still open: the order's money is frozen.
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            RequestStatus::Refunded | RequestStatus::Released | RequestStatus::Closed
        )
    }

    /// The transition table.
    pub fn after(self, step: Step) -> Result<RequestStatus, InvalidStep> {
        use RequestStatus::*;
        use Step::*;
        let to = match (self, step) {
            (Open | Replied, SellerAccepts) => Some(Refunded),
            (Open, SellerReplies) => Some(Replied),
            (Replied, BuyerAcceptsReply) => Some(Closed),
            (Replied, BuyerEscalates) => Some(Escalated),
            (Open, AnswerOverdue) => Some(Escalated),
            (Escalated, DecideRefund) => Some(Refunded),
            (Escalated, DecideRelease) => Some(Released),
            (Escalated, DecideReturnFirst) => Some(AwaitingReturn),
            (AwaitingReturn, ReturnShipped) => Some(ReturnSent),
            (AwaitingReturn, ReturnNeverSent) => Some(Released),
            (ReturnSent, ReturnReceived) => Some(Refunded),
            _ => None,
        };
        to.ok_or(InvalidStep { from: self, step })
    }
}

/// A moderator's or admin's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = RequestOutcome)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// All the order's money back.
    Refund,
    /// Part of it back, the rest to the seller.
    Partial,
    /// All of it to the seller.
    Release,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Refund => "refund",
            Outcome::Partial => "partial",
            Outcome::Release => "release",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [Outcome::Refund, Outcome::Partial, Outcome::Release]
            .into_iter()
            .find(|o| o.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Refund => "Hoàn toàn bộ tiền cho người mua",
            Outcome::Partial => "Hoàn một phần tiền cho người mua",
            Outcome::Release => "Chuyển tiền cho người bán",
        }
    }
}

/// What a decision gives back: the whole order's remaining money, a part (between 1 đồng and
/// less than the rest), or nothing. `rest` is what the order still holds for its shop.
pub fn refund_of(outcome: Outcome, amount: Option<i64>, rest: i64) -> Result<i64, &'static str> {
    match outcome {
        Outcome::Refund => Ok(rest),
        Outcome::Release => Ok(0),
        Outcome::Partial => match amount {
            Some(a) if a > 0 && a < rest => Ok(a),
            Some(a) if a >= rest => {
                Err("Số tiền hoàn một phần phải nhỏ hơn số tiền của đơn (chọn hoàn toàn bộ)")
            }
            _ => Err("Nhập số tiền hoàn cho người mua"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::RequestStatus::*;
    use super::Step::*;
    use super::*;

    #[test]
    fn the_paths_a_request_takes() {
        assert_eq!(Open.after(SellerAccepts), Ok(Refunded));
        assert_eq!(Open.after(SellerReplies), Ok(Replied));
        assert_eq!(Replied.after(BuyerAcceptsReply), Ok(Closed));
        assert_eq!(Replied.after(BuyerEscalates), Ok(Escalated));
        assert_eq!(Open.after(AnswerOverdue), Ok(Escalated));
        assert_eq!(Escalated.after(DecideRefund), Ok(Refunded));
        assert_eq!(Escalated.after(DecideRelease), Ok(Released));
        assert_eq!(Escalated.after(DecideReturnFirst), Ok(AwaitingReturn));
        assert_eq!(AwaitingReturn.after(ReturnShipped), Ok(ReturnSent));
        assert_eq!(ReturnSent.after(ReturnReceived), Ok(Refunded));
        assert_eq!(AwaitingReturn.after(ReturnNeverSent), Ok(Released));
    }

    #[test]
    fn wrong_steps_are_refused_and_final_states_have_no_exit() {
        assert!(
            Open.after(DecideRefund).is_err(),
            "decide before escalation"
        );
        assert!(Open.after(BuyerEscalates).is_err(), "escalate before reply");
        assert!(Escalated.after(SellerAccepts).is_err());
        assert!(Replied.after(AnswerOverdue).is_err());
        let all = [
            SellerAccepts,
            SellerReplies,
            BuyerAcceptsReply,
            BuyerEscalates,
            AnswerOverdue,
            DecideRefund,
            DecideRelease,
            DecideReturnFirst,
            ReturnShipped,
            ReturnReceived,
            ReturnNeverSent,
        ];
        for s in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(s.as_str()), Some(s));
            if !s.is_open() {
                for step in all {
                    assert!(s.after(step).is_err(), "{s:?} {step:?}");
                }
            }
        }
    }

    #[test]
    fn what_a_decision_gives_back() {
        assert_eq!(refund_of(Outcome::Refund, None, 180_000), Ok(180_000));
        assert_eq!(refund_of(Outcome::Release, Some(5), 180_000), Ok(0));
        assert_eq!(
            refund_of(Outcome::Partial, Some(60_000), 180_000),
            Ok(60_000)
        );
        assert!(refund_of(Outcome::Partial, Some(180_000), 180_000).is_err());
        assert!(refund_of(Outcome::Partial, None, 180_000).is_err());
        assert!(refund_of(Outcome::Partial, Some(0), 180_000).is_err());
    }
}
