//! The community fair-price board: price items, proposals, votes, quorum and history.
//!
//! Rules in this file are pure; `store` applies them inside transactions.

pub mod store;

use serde::Serialize;

/// When a proposal passes by vote: at least `min_yes` yes votes AND strictly more than
/// `percent` % of the village's active shops (those with an owner who can vote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    pub min_yes: i64,
    pub percent: i64,
}

impl Quorum {
    pub fn reached(&self, yes: i64, active_shops: i64) -> bool {
        yes >= self.min_yes && yes * 100 > active_shops * self.percent
    }

    /// How many yes votes are needed with this many active shops.
    pub fn needed(&self, active_shops: i64) -> i64 {
        self.min_yes.max(active_shops * self.percent / 100 + 1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProposalStatus {
    Open,
    Approved,
    Rejected,
}

impl ProposalStatus {
    pub fn parse(s: &str) -> ProposalStatus {
        match s {
            "approved" => ProposalStatus::Approved,
            "rejected" => ProposalStatus::Rejected,
            _ => ProposalStatus::Open,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            ProposalStatus::Open => "Đang biểu quyết",
            ProposalStatus::Approved => "Đã thông qua",
            ProposalStatus::Rejected => "Không thông qua",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PriceItem {
    pub id: i64,
    pub village_id: i64,
    pub name: String,
    pub unit: String,
    pub price_vnd: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PriceChange {
    pub id: i64,
    pub price_item_id: i64,
    pub item_name: String,
    pub unit: String,
    pub old_price_vnd: Option<i64>,
    pub new_price_vnd: i64,
    /// created | imported | proposal | moderator
    pub source: String,
    pub proposal_id: Option<i64>,
    pub actor: Option<String>,
    pub at: i64,
}

impl PriceChange {
    pub fn source_label(&self) -> &'static str {
        match self.source.as_str() {
            "created" => "Thêm vào bảng giá",
            "imported" => "Nhập từ bảng tính của làng",
            "proposal" => "Biểu quyết thông qua",
            _ => "Điều phối viên duyệt",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Vote {
    pub shop_id: i64,
    pub shop_name: String,
    pub approve: bool,
    pub at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub id: i64,
    pub price_item_id: i64,
    pub village_id: i64,
    pub item_name: String,
    pub unit: String,
    #[serde(skip)]
    pub proposer_user_id: i64,
    pub proposer: String,
    pub proposer_shop: String,
    pub old_price_vnd: i64,
    pub new_price_vnd: i64,
    pub reason: String,
    pub status: ProposalStatus,
    pub decision: Option<String>,
    pub created_at: i64,
    pub closes_at: i64,
    pub decided_at: Option<i64>,
    pub yes: i64,
    pub no: i64,
    pub votes: Vec<Vote>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: Quorum = Quorum {
        min_yes: 3,
        percent: 50,
    };

    #[test]
    fn more_than_half_and_at_least_three() {
        // 4 active shops: 2 yes is exactly half, not more than half.
        assert!(!DEFAULT.reached(2, 4));
        assert!(DEFAULT.reached(3, 4));
        // 10 shops need 6.
        assert!(!DEFAULT.reached(5, 10));
        assert!(DEFAULT.reached(6, 10));
        assert_eq!(DEFAULT.needed(10), 6);
        // tiny village: majority is not enough below the minimum of 3
        assert!(!DEFAULT.reached(2, 2));
        assert_eq!(DEFAULT.needed(2), 3);
        assert_eq!(DEFAULT.needed(4), 3);
    }

    #[test]
    fn configurable_per_village() {
        let q = Quorum {
            min_yes: 2,
            percent: 66,
        };
        assert!(q.reached(2, 3)); // 66.7 % is more than 66 %
        assert!(!q.reached(2, 4)); // 50 % is not
        let q2 = Quorum {
            min_yes: 1,
            percent: 0,
        };
        assert!(q2.reached(1, 100));
    }
}
