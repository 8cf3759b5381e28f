//! A payout's life as a pure state machine (like `orders::state`): every write of a payout's
//! status checks its move here.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Created, money in transit: waiting for the treasurer (bank app) or for payOS to
    /// accept it.
    Pending,
    /// Accepted by payOS, not yet settled.
    Sent,
    /// Confirmed in the shop's bank.
    Paid,
    /// Failed, cancelled, or came back: the money is the shop's available money again.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("khoản chi không thể chuyển từ “{}” sang “{}”", from.label(), to.label())]
pub struct InvalidPayoutMove {
    pub from: PayoutStatus,
    pub to: PayoutStatus,
}

impl PayoutStatus {
    pub const ALL: [PayoutStatus; 4] = [
        PayoutStatus::Pending,
        PayoutStatus::Sent,
        PayoutStatus::Paid,
        PayoutStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Pending => "pending",
            PayoutStatus::Sent => "sent",
            PayoutStatus::Paid => "paid",
            PayoutStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<PayoutStatus> {
        PayoutStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            PayoutStatus::Pending => "Chờ chuyển",
            PayoutStatus::Sent => "Đang chuyển",
            PayoutStatus::Paid => "Đã chuyển",
            PayoutStatus::Failed => "Không thành công",
        }
    }

    /// Still open: money in transit, one per shop at a time.
    pub fn is_open(self) -> bool {
        matches!(self, PayoutStatus::Pending | PayoutStatus::Sent)
    }

    pub fn next(self) -> &'static [PayoutStatus] {
        use PayoutStatus::*;
        match self {
            Pending => &[Sent, Paid, Failed],
            Sent => &[Paid, Failed],
            // A transfer the bank sends back after it was confirmed.
            Paid => &[Failed],
            Failed => &[],
        }
    }

    pub fn transition(self, to: PayoutStatus) -> Result<PayoutStatus, InvalidPayoutMove> {
        if self.next().contains(&to) {
            Ok(to)
        } else {
            Err(InvalidPayoutMove { from: self, to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PayoutStatus::*;
    use super::*;

    #[test]
    fn every_pair_is_decided_by_the_table() {
        let allowed = [
            (Pending, Sent),
            (Pending, Paid),
            (Pending, Failed),
            (Sent, Paid),
            (Sent, Failed),
            (Paid, Failed),
        ];
        for from in PayoutStatus::ALL {
            for to in PayoutStatus::ALL {
                assert_eq!(
                    from.transition(to).is_ok(),
                    allowed.contains(&(from, to)),
                    "{from:?} → {to:?}"
                );
            }
        }
        assert!(Failed.next().is_empty(), "a failed payout never pays");
        assert!(Paid.transition(Paid).is_err(), "paid once");
    }

    #[test]
    fn names_match_the_schema() {
        let schema = include_str!("../../migrations/schema/0006_ledger_payouts.sql");
        for s in PayoutStatus::ALL {
            assert_eq!(PayoutStatus::parse(s.as_str()), Some(s));
            assert!(schema.contains(&format!("'{}'", s.as_str())), "{s:?}");
        }
    }
}
