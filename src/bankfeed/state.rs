//! An incoming bank transaction's states as a pure state machine: every write of its status
//! goes through `transition` (like `orders::state`).

use serde::{Deserialize, Serialize};

/// What became of an incoming bank transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TxnStatus {
    /// Money in that matches no payment yet: waiting for an admin.
    Unmatched,
    /// Counted into a payment.
    Matched,
    /// Not money in: an outgoing transfer, a provider's failure notice, a second feed's
    /// report of a transfer already counted, or a payout coming back.
    Ignored,
    /// An unmatched transfer an admin sent back.
    Refunded,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("giao dịch không thể chuyển từ “{}” sang “{}”", from.as_str(), to.as_str())]
pub struct InvalidTxnMove {
    pub from: TxnStatus,
    pub to: TxnStatus,
}

impl TxnStatus {
    pub const ALL: [TxnStatus; 4] = [
        TxnStatus::Unmatched,
        TxnStatus::Matched,
        TxnStatus::Ignored,
        TxnStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TxnStatus::Unmatched => "unmatched",
            TxnStatus::Matched => "matched",
            TxnStatus::Ignored => "ignored",
            TxnStatus::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<TxnStatus> {
        TxnStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// A transaction is recorded `Unmatched`, then matched (by the feed or an admin),
    /// set aside as not money, or sent back; those three are final.
    pub fn next(self) -> &'static [TxnStatus] {
        use TxnStatus::*;
        match self {
            Unmatched => &[Matched, Ignored, Refunded],
            Matched | Ignored | Refunded => &[],
        }
    }

    pub fn transition(self, to: TxnStatus) -> Result<TxnStatus, InvalidTxnMove> {
        if self.next().contains(&to) {
            Ok(to)
        } else {
            Err(InvalidTxnMove { from: self, to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transaction_pair_is_decided_by_the_table() {
        use TxnStatus::*;
        let allowed = [
            (Unmatched, Matched),
            (Unmatched, Ignored),
            (Unmatched, Refunded),
        ];
        for from in TxnStatus::ALL {
            for to in TxnStatus::ALL {
                let ok = allowed.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), ok, "{from:?} → {to:?}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in TxnStatus::ALL {
            assert_eq!(TxnStatus::parse(s.as_str()), Some(s));
        }
    }
}
